//! Files milvus-tier reads are checked before they can reach long-term: no symbolic link or
//! other non-regular entry in a segment folder is published, storage roots are never
//! created, and debris an interrupted publish leaves in long-term is removed by the rerun.

use crate::common;

use common::cluster::*;
use milvus_tier::meta::{FileType, MetaDb};

const DAY: &str = "2026-11-20";

#[tokio::test(flavor = "multi_thread")]
async fn symlink_in_segment_folder_is_refused() {
    let c = cluster();
    let short = MetaDb::connect(&c.short_url).await.unwrap();
    let part = short
        .partitions_tagged(COLL_SHORT, "day_2026-11-20")
        .await
        .unwrap()
        .remove(0);
    let f = short
        .files(std::slice::from_ref(&part.table_id), &[])
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.file_type == FileType::Raw)
        .expect("a RAW file");
    let seg = c
        .storage("short")
        .join("db/tables")
        .join(&f.table_id)
        .join(&f.segment_id);
    // A file outside any storage, linked in as the segment's bloom filter.
    let outside = c.dir.path().join("outside-secret");
    std::fs::write(&outside, b"bytes that are not Milvus data").unwrap();
    let bloom = seg.join("bloom_filter");
    let _ = std::fs::remove_file(&bloom);
    std::os::unix::fs::symlink(&outside, &bloom).unwrap();

    for (case, args) in [
        ("dry run", vec!["--date", DAY, "--dry-run"]),
        ("run", vec!["--date", DAY]),
    ] {
        let (o, _) = c.migrate(&args);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{case}: {all}");
        assert!(
            all.contains(&bloom.display().to_string()) && all.contains("symbolic link"),
            "{case}: the error names the link: {all}"
        );
        assert_long_term_untouched(&c, case).await;
    }
    // A sub-folder is no regular file either.
    std::fs::remove_file(&bloom).unwrap();
    std::fs::create_dir(&bloom).unwrap();
    let (o, _) = c.migrate(&["--date", DAY]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "folder: {all}");
    assert!(
        all.contains(&bloom.display().to_string()) && all.contains("not a regular file"),
        "folder: {all}"
    );
    assert_long_term_untouched(&c, "folder").await;
}

/// Point `key` of `[section]` in the cluster's config at `value`.
fn set_storage(c: &Cluster, section: &str, value: &std::path::Path) {
    let s = std::fs::read_to_string(&c.config).unwrap();
    let mut out = String::new();
    let mut current = String::new();
    for line in s.lines() {
        if line.starts_with('[') {
            current = line.to_string();
        }
        if current == format!("[{section}]") && line.starts_with("storage_path = ") {
            out.push_str(&format!("storage_path = \"{}\"\n", value.display()));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(&c.config, out).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_storage_root_is_refused_never_created() {
    let c = cluster();
    let missing = c.dir.path().join("efs-not-mounted").join("milvus");
    set_storage(&c, "long_term", &missing);
    for (case, args) in [
        ("dry run", vec!["--date", DAY, "--dry-run"]),
        ("run", vec!["--date", DAY]),
    ] {
        let (o, _) = c.migrate(&args);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{case}: {all}");
        assert!(
            all.contains(&missing.display().to_string()),
            "{case}: the error names the path: {all}"
        );
        assert!(
            !missing.exists(),
            "{case}: {} was created",
            missing.display()
        );
        assert_eq!(
            c.servers[1]
                .sql("SELECT COUNT(*) FROM milvus.TableFiles")
                .trim(),
            "0",
            "{case}: long-term got file rows"
        );
    }
    // A folder that exists but is no Milvus storage (no db/tables) is refused as well.
    let empty = c.dir.path().join("empty-mount");
    std::fs::create_dir(&empty).unwrap();
    set_storage(&c, "long_term", &empty);
    let (o, _) = c.migrate(&["--date", DAY]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "no db/tables: {all}");
    assert!(all.contains(&empty.display().to_string()), "{all}");
    assert!(!empty.join("db").exists(), "db/tables was created");
    // config check agrees.
    let (o, _) = c.run("config", &["check"], &[]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    // The short-term root is checked the same way.
    set_storage(&c, "long_term", &c.storage("long"));
    set_storage(&c, "short_term", &missing);
    let (o, _) = c.migrate(&["--date", DAY]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "short-term: {all}");
    assert!(all.contains(&missing.display().to_string()), "{all}");
    assert!(!missing.exists());
    assert_long_term_untouched(&c, "short-term missing").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rerun_removes_temporary_folders_of_an_interrupted_publish() {
    let clean = cluster();
    let (o, _) = clean.migrate(&["--date", DAY]);
    assert!(o.status.success(), "{}", text(&o));
    let want = canonical(&clean).await;
    drop(clean);

    let c = cluster();
    let o = c
        .command("migrate")
        .args(["--date", DAY, "--json"])
        .env("MILVUS_TIER_FAILPOINT", "publish.before_copy")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), None, "{}", text(&o));
    // What the killed copy would have left: a partial temporary folder per segment it
    // recorded, and one of a segment that is not this day's (left alone).
    let detail = c.servers[1].sql(&format!(
        "SELECT detail FROM milvus.milvus_tier_journal WHERE day = '{DAY}' AND step = 'publish'"
    ));
    let detail: serde_json::Value = serde_json::from_str(detail.trim()).unwrap();
    let segs: Vec<String> = detail["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert!(!segs.is_empty(), "{detail}");
    let tables = c.storage("long").join("db/tables");
    let mut debris = Vec::new();
    for s in &segs {
        let (t, seg) = s.split_once('/').unwrap();
        let tmp = tables.join(t).join(format!(".{seg}.tmp"));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("deleted_docs"), b"partial").unwrap();
        debris.push(tmp);
    }
    let foreign = tables.join(COLL_LONG).join(".999.tmp");
    std::fs::create_dir_all(&foreign).unwrap();

    let (o, json) = c.migrate(&["--date", DAY]);
    assert!(o.status.success(), "{}\n{json:#}", text(&o));
    for d in &debris {
        assert!(!d.exists(), "{} is left after the rerun", d.display());
    }
    assert!(foreign.exists(), "a folder not of this day was removed");
    std::fs::remove_dir(&foreign).unwrap();
    assert_eq!(canonical(&c).await, want, "rerun differs from a clean run");
}

/// Every hidden partial file (`.<name>.tmp-<pid>`) under `dir`.
fn partial_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap().to_string_lossy().contains(".tmp-") {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn full_folder_backup_leaves_no_partial_file_and_rerun_removes_old_ones() {
    let c = cluster();
    let dest = c.dir.path().join("fsbackup");
    // A file:// target must exist: milvus-tier never creates it.
    std::fs::create_dir_all(&dest).unwrap();
    c.set_backup(&format!("target = \"file://{}\"", dest.display()));
    // The backup folder fills up while the day is backed up.
    let (o, json) = c.run(
        "migrate",
        &["--date", DAY],
        &[("MILVUS_TIER_FAILPOINT", "backup.write:enospc")],
    );
    assert_eq!(o.status.code(), Some(1), "{}\n{json:#}", text(&o));
    assert!(text(&o).contains("No space left"), "{}", text(&o));
    let left = partial_files(&dest);
    assert!(left.is_empty(), "a failed write left {left:?}");
    // What a killed run leaves: a partial manifest of a process that no longer runs.
    let day_dir = dest.join(COLL_LONG).join(DAY);
    std::fs::create_dir_all(&day_dir).unwrap();
    let stale = day_dir.join(".manifest.json.tmp-4194305");
    std::fs::write(&stale, b"{\"partial").unwrap();

    let (o, json) = c.migrate(&["--date", DAY]);
    assert!(o.status.success(), "{}\n{json:#}", text(&o));
    let left = partial_files(&dest);
    assert!(left.is_empty(), "the rerun left {left:?}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(day_dir.join("manifest.json")).unwrap()).unwrap();
    for f in m["files"].as_array().unwrap() {
        let p = day_dir.join(f["path"].as_str().unwrap());
        assert_eq!(Some(blake3_file(&p).as_str()), f["blake3"].as_str());
    }
}

/// Every restore staging folder (`.milvus-tier-restore-*`) in long-term storage.
fn staging_folders(c: &Cluster) -> Vec<String> {
    std::fs::read_dir(c.storage("long"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".milvus-tier-restore-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_killed_after_commit_leaves_no_staging_after_the_rerun() {
    let c = cluster();
    let dest = c.dir.path().join("fsbackup");
    // A file:// target must exist: milvus-tier never creates it.
    std::fs::create_dir_all(&dest).unwrap();
    c.set_backup(&format!("target = \"file://{}\"", dest.display()));
    let (o, json) = c.migrate(&["--date", DAY]);
    assert!(o.status.success(), "{}\n{json:#}", text(&o));
    let want = canonical(&c).await;
    // Long-term is lost; a restore is killed once its rows are committed, before it
    // removes its staging folder.
    c.servers[1].sql("DROP DATABASE milvus");
    c.servers[1].sql("CREATE DATABASE milvus");
    std::fs::remove_dir_all(c.storage("long")).unwrap();
    std::fs::create_dir_all(c.storage("long").join("db/tables")).unwrap();
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    long.install_milvus_schema().await.unwrap();
    long.close().await;
    let o = c
        .command("restore")
        .args(["--date", DAY, "--json"])
        .env("MILVUS_TIER_FAILPOINT", "publish.after_commit")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), None, "{}", text(&o));
    assert!(!staging_folders(&c).is_empty(), "the kill left no staging");
    // The rerun finds the day restored and removes what the killed run left.
    let (o, json) = c.run("restore", &["--date", DAY], &[]);
    assert!(o.status.success(), "{}\n{json:#}", text(&o));
    assert_eq!(json["days"][0]["outcome"], "identical", "{json:#}");
    assert_eq!(staging_folders(&c), Vec::<String>::new());
    assert_eq!(canonical(&c).await, want);
}

/// The first published `.rv` file on long-term storage.
fn a_published_file(c: &Cluster) -> std::path::PathBuf {
    let tables = c.storage("long").join("db/tables");
    let mut stack = vec![tables];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap().to_string_lossy().ends_with(".rv") {
                return p;
            }
        }
    }
    panic!("no published .rv file in long-term storage");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_in_long_term_is_reported_not_followed_by_the_rerun_check() {
    let c = cluster_days(1);
    let (o, json) = c.migrate(&["--date", DAY]);
    assert!(o.status.success(), "{}\n{json:#}", text(&o));
    // A published file moved out of storage and linked back in: same size, same bytes,
    // but long-term no longer holds it (the link's target can change or go away).
    let published = a_published_file(&c);
    let outside = c.dir.path().join("outside-copy.rv");
    std::fs::rename(&published, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &published).unwrap();
    let (o, json) = c.migrate(&["--date", DAY]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(5), "{all}\n{json:#}");
    assert_ne!(json["days"][0]["outcome"], "already_done", "{json:#}");
    assert!(
        all.contains(&published.display().to_string()) && all.contains("symbolic link"),
        "the error names the link: {all}"
    );
    // verify reports it too, rather than hashing the file it points at.
    let (o, json) = c.run("verify", &["--date", DAY, "--deep"], &[]);
    assert_eq!(o.status.code(), Some(5), "{}\n{json:#}", text(&o));
    let listed = json.to_string();
    assert!(
        listed.contains("not_regular_file") && listed.contains(&published.display().to_string()),
        "{json:#}"
    );
    // Not followed: the file outside storage is untouched, the link still there.
    assert!(outside.is_file());
    assert!(
        std::fs::symlink_metadata(&published)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_and_archive_require_the_long_term_storage_root() {
    let c = cluster_days(1);
    let dest = c.dir.path().join("fsbackup");
    // A file:// target must exist: milvus-tier never creates it.
    std::fs::create_dir_all(&dest).unwrap();
    c.set_backup(&format!("target = \"file://{}\"", dest.display()));
    let (o, json) = c.migrate(&["--date", DAY]);
    assert!(o.status.success(), "{}\n{json:#}", text(&o));
    let missing = c.dir.path().join("efs-not-mounted").join("milvus");
    let empty = c.dir.path().join("empty-mount");
    std::fs::create_dir(&empty).unwrap();
    for (root, why) in [(&missing, "does not exist"), (&empty, "has no db/tables")] {
        set_storage(&c, "long_term", root);
        for (case, args) in [
            ("verify", vec!["--date", DAY]),
            ("verify --deep", vec!["--date", DAY, "--deep"]),
        ] {
            let (o, json) = c.run("verify", &args, &[]);
            let all = text(&o);
            assert_eq!(o.status.code(), Some(2), "{case}, {why}: {all}\n{json:#}");
            assert!(
                all.contains(&root.display().to_string()) && all.contains(why),
                "{case}: the error names the path: {all}"
            );
        }
        for (case, args) in [
            ("archive --dry-run", vec!["--older-than", "0", "--dry-run"]),
            ("archive", vec!["--older-than", "0"]),
        ] {
            let (o, json) = c.run("archive", &args, &[]);
            let all = text(&o);
            assert_eq!(o.status.code(), Some(2), "{case}, {why}: {all}\n{json:#}");
            assert!(
                all.contains(&root.display().to_string()) && all.contains(why),
                "{case}: the error names the path: {all}"
            );
        }
        assert!(!missing.exists(), "{} was created", missing.display());
        assert!(!empty.join("db").exists(), "db/tables was created");
    }
    // Nothing was archived: long-term still holds the day.
    set_storage(&c, "long_term", &c.storage("long"));
    let (o, json) = c.run("verify", &["--date", DAY, "--deep"], &[]);
    assert!(o.status.success(), "{}\n{json:#}", text(&o));
}
