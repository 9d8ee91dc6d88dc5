//! Restore trusts only what backup wrote, and repairs long-term files that went missing or
//! changed: a folder backup target, one seeded day, the `milvus-tier` binary.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::cluster::*;
use milvus_tier::meta::MetaDb;
use serde_json::Value;

const D1: &str = "2026-11-20";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output, json: &Value) {
    assert!(o.status.success(), "{}\n{json:#}", stderr(o));
}

/// One day migrated and backed up into a folder target; returns the day's backup folder.
fn migrated(c: &Cluster) -> PathBuf {
    let dest = c.dir.path().join("fsbackup");
    // A file:// target must exist: milvus-tier never creates it.
    std::fs::create_dir_all(&dest).unwrap();
    c.set_backup(&format!("target = \"file://{}\"", dest.display()));
    let (o, json) = c.migrate(&["--date", D1]);
    ok(&o, &json);
    dest.join(COLL_LONG).join(D1)
}

async fn wipe_long_term(c: &Cluster) {
    c.servers[1].sql("DROP DATABASE milvus");
    c.servers[1].sql("CREATE DATABASE milvus");
    std::fs::remove_dir_all(c.storage("long")).unwrap();
    std::fs::create_dir_all(c.storage("long").join("db/tables")).unwrap();
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    long.install_milvus_schema().await.unwrap();
    long.close().await;
}

async fn long_has_collection(c: &Cluster) -> bool {
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let has = long.collection(COLL_LONG).await.unwrap().is_some();
    long.close().await;
    has
}

fn read_manifest(day_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(day_dir.join("manifest.json")).unwrap()).unwrap()
}

fn write_manifest(day_dir: &Path, m: &Value) {
    std::fs::write(
        day_dir.join("manifest.json"),
        serde_json::to_vec(m).unwrap(),
    )
    .unwrap();
}

/// Restore of `D1` with the manifest `m`: must be refused with exit 5, naming each of
/// `want`, writing nothing to long-term.
async fn refused(c: &Cluster, day_dir: &Path, m: &Value, want: &[&str]) {
    write_manifest(day_dir, m);
    let (o, json) = c.run("restore", &["--date", D1], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(5), "{err}\n{json:#}");
    for w in want {
        assert!(err.contains(w), "want {w}: {err}");
    }
    assert!(!long_has_collection(c).await, "nothing written");
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_refuses_a_tampered_manifest_and_paths_outside_the_backup() {
    let c = cluster_days(1);
    let day_dir = migrated(&c);
    let original = read_manifest(&day_dir);
    let manifest_path = day_dir.join("manifest.json").display().to_string();
    wipe_long_term(&c).await;

    // One TableFiles row edited: the rows no longer match rows_digest.
    let mut m = original.clone();
    let rc = m["table_files"][0]["row_count"].as_i64().unwrap();
    m["table_files"][0]["row_count"] = (rc + 1).into();
    refused(&c, &day_dir, &m, &[&manifest_path, "rows_digest"]).await;

    // A backup object replaced and its checksum edited to match: files_digest disagrees.
    let mut m = original.clone();
    let rel = m["files"][0]["path"].as_str().unwrap().to_string();
    let object = day_dir.join(&rel);
    let bytes = std::fs::read(&object).unwrap();
    let mut bad = bytes.clone();
    bad[0] ^= 0x01;
    std::fs::write(&object, &bad).unwrap();
    m["files"][0]["blake3"] = blake3::hash(&bad).to_hex().to_string().into();
    refused(&c, &day_dir, &m, &[&manifest_path, "files_digest"]).await;
    std::fs::write(&object, &bytes).unwrap();

    // A path leading out of the day's folder (to an identical copy) or an absolute one.
    let outside = c.dir.path().join("fsbackup").join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::copy(&object, outside.join("f")).unwrap();
    let mut m = original.clone();
    m["files"][0]["path"] = "../../outside/f".into();
    refused(&c, &day_dir, &m, &["../../outside/f"]).await;
    let mut m = original.clone();
    let abs = object.display().to_string();
    m["files"][0]["path"] = abs.clone().into();
    refused(&c, &day_dir, &m, &[&abs]).await;

    // The manifest as backup wrote it restores.
    write_manifest(&day_dir, &original);
    let (o, json) = c.run("restore", &["--date", D1], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "restored", "{json:#}");
    let (o, json) = c.run("verify", &["--date", D1, "--deep"], &[]);
    ok(&o, &json);
}

/// The first index file of the day on long-term storage and its backup copy.
fn index_file(c: &Cluster, day_dir: &Path) -> (PathBuf, PathBuf) {
    let m = read_manifest(day_dir);
    let f = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            let n = f["name"].as_str().unwrap();
            n.chars().all(|ch| ch.is_ascii_digit())
        })
        .expect("an index file")
        .clone();
    let long = c
        .storage("long")
        .join("db/tables")
        .join(f["table_id"].as_str().unwrap())
        .join(f["segment_id"].as_str().unwrap())
        .join(f["name"].as_str().unwrap());
    (long, day_dir.join(f["path"].as_str().unwrap()))
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_repairs_missing_and_changed_long_term_files() {
    let c = cluster_days(1);
    let day_dir = migrated(&c);
    let (path, backup) = index_file(&c, &day_dir);
    let good = std::fs::read(&backup).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), good);

    // A deleted long-term file: put back from the backup.
    std::fs::remove_file(&path).unwrap();
    let (o, json) = c.run("restore", &["--date", D1], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "repaired", "{json:#}");
    assert_eq!(std::fs::read(&path).unwrap(), good);
    let (o, json) = c.run("verify", &["--date", D1, "--deep"], &[]);
    ok(&o, &json);

    // A flipped byte (same size): a plain restore checks sizes only...
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    // ...a dry run names it and writes nothing...
    let (o, json) = c.run("restore", &["--date", D1, "--deep", "--dry-run"], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "planned", "{json:#}");
    let listed = json["days"][0]["repair"].to_string();
    assert!(listed.contains(&path.display().to_string()), "{json:#}");
    assert_eq!(std::fs::read(&path).unwrap(), bad);
    // ...and --deep repairs it.
    let (o, json) = c.run("restore", &["--date", D1, "--deep"], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "repaired", "{json:#}");
    assert_eq!(std::fs::read(&path).unwrap(), good);
    let (o, json) = c.run("verify", &["--date", D1, "--deep"], &[]);
    ok(&o, &json);

    // After a verify that found the change, a plain restore re-hashes and repairs.
    std::fs::write(&path, &bad).unwrap();
    let (o, json) = c.run("verify", &["--date", D1, "--deep"], &[]);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    let (o, json) = c.run("restore", &["--date", D1], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "repaired", "{json:#}");
    assert_eq!(std::fs::read(&path).unwrap(), good);
    let (o, json) = c.run("verify", &["--date", D1, "--deep"], &[]);
    ok(&o, &json);
    // Nothing left to repair: a no-op, and no temporary folder is left behind.
    let (o, json) = c.run("restore", &["--date", D1, "--deep"], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "identical", "{json:#}");
    let seg = path.parent().unwrap();
    let hidden: Vec<_> = std::fs::read_dir(seg.parent().unwrap())
        .unwrap()
        .chain(std::fs::read_dir(c.storage("long")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

/// The collection row of a manifest is covered by `collection_row_digest`: restore into an
/// empty long-term, which creates the collection from that row, refuses a manifest whose
/// collection row was changed (or whose digest was removed) and writes nothing. A manifest
/// written before digests had versions (format 1: legacy rows digest, no collection row
/// digest) still restores, verifies and reruns as a no-op.
#[tokio::test(flavor = "multi_thread")]
async fn restore_refuses_a_tampered_collection_row_and_reads_a_legacy_manifest() {
    use milvus_tier::meta::{FileRow, RowsDigestVersion, TableRow};
    let c = cluster_days(1);
    let day_dir = migrated(&c);
    let original = read_manifest(&day_dir);
    let manifest_path = day_dir.join("manifest.json").display().to_string();
    assert_eq!(original["format_version"], 2);
    wipe_long_term(&c).await;

    // The collection row's dimension edited: restore would create a collection of another
    // dimension than the day's vectors.
    let mut m = original.clone();
    let dim = m["collection_row"]["dimension"].as_i64().unwrap();
    m["collection_row"]["dimension"] = (dim * 2).into();
    refused(&c, &day_dir, &m, &[&manifest_path, "collection_row_digest"]).await;
    // ... and with its digest removed as well.
    m.as_object_mut().unwrap().remove("collection_row_digest");
    refused(
        &c,
        &day_dir,
        &m,
        &[&manifest_path, "has no collection_row_digest"],
    )
    .await;

    // The same day as a format 1 manifest: legacy rows digest, no collection row digest.
    let mut legacy = original.clone();
    let tables: Vec<TableRow> = serde_json::from_value(original["tables"].clone()).unwrap();
    let files: Vec<FileRow> = serde_json::from_value(original["table_files"].clone()).unwrap();
    legacy["format_version"] = 1.into();
    legacy["rows_digest"] = RowsDigestVersion::Legacy.digest(&tables, &files).into();
    legacy
        .as_object_mut()
        .unwrap()
        .remove("collection_row_digest");
    // A format 1 manifest is still checked against its rows, in the legacy encoding.
    let mut bad = legacy.clone();
    let rc = bad["table_files"][0]["row_count"].as_i64().unwrap();
    bad["table_files"][0]["row_count"] = (rc + 1).into();
    refused(
        &c,
        &day_dir,
        &bad,
        &[&manifest_path, "rows_digest", "legacy"],
    )
    .await;

    write_manifest(&day_dir, &legacy);
    let (o, json) = c.run("restore", &["--date", D1], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "restored", "{json:#}");
    assert_eq!(json["days"][0]["created_collection"], true, "{json:#}");
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let coll = long.collection(COLL_LONG).await.unwrap().unwrap();
    assert_eq!(coll.dimension, dim);
    long.close().await;
    let (o, json) = c.run("verify", &["--date", D1, "--deep"], &[]);
    ok(&o, &json);
    let (o, json) = c.run("restore", &["--date", D1], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "identical", "{json:#}");
    let (o, json) = c.migrate(&["--date", D1]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "already_done", "{json:#}");
}

/// Staging folders of restores under long-term storage.
fn staging_folders(c: &Cluster) -> Vec<String> {
    std::fs::read_dir(c.storage("long"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".milvus-tier-restore-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_to_a_collection_with_another_index_is_refused_or_takes_its_index() {
    use milvus_tier::meta::{EngineType, FileType, TableRow, WriteMode};
    let c = cluster_days(1);
    let _day_dir = migrated(&c);
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let src = long.collection(COLL_LONG).await.unwrap().unwrap();
    let built = long
        .files(
            &long
                .partitions(COLL_LONG)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.table_id)
                .collect::<Vec<_>>(),
            &[FileType::Index],
        )
        .await
        .unwrap();
    assert!(!built.is_empty(), "the day has built index files");
    long.close().await;
    wipe_long_term(&c).await;
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let other_type = if src.engine_type == EngineType::IvfFlat {
        EngineType::IvfSq8
    } else {
        EngineType::IvfFlat
    };
    let collections = [
        TableRow {
            id: 0,
            table_id: "other_index".into(),
            engine_type: other_type,
            index_params: r#"{"nlist":16}"#.into(),
            ..src.clone()
        },
        TableRow {
            id: 0,
            table_id: "other_dim".into(),
            dimension: src.dimension * 2,
            ..src.clone()
        },
        TableRow {
            id: 0,
            table_id: "same_index".into(),
            index_file_size: src.index_file_size * 2,
            flush_lsn: src.flush_lsn + 5,
            ..src.clone()
        },
    ];
    let w = long
        .write_rows(&collections, &[], WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    assert!(w.committed);

    // Index files built as one index type are not files of another: refused, naming both
    // collections and the field; nothing written.
    for (target, field) in [("other_index", "engine_type"), ("other_dim", "dimension")] {
        for dry in [true, false] {
            let mut args = vec!["--date", D1, "--to-collection", target];
            if dry {
                args.push("--dry-run");
            }
            let (o, json) = c.run("restore", &args, &[]);
            let err = stderr(&o);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{target} dry={dry}: {err}\n{json:#}"
            );
            assert!(
                err.contains(&format!("`{target}`"))
                    && err.contains(&format!("`{COLL_LONG}`"))
                    && err.contains(field),
                "{target}: names both collections and {field}: {err}"
            );
            assert!(
                long.partitions(target).await.unwrap().is_empty(),
                "{target}"
            );
            assert_eq!(
                c.servers[1]
                    .sql("SELECT COUNT(*) FROM milvus.TableFiles")
                    .trim(),
                "0",
                "{target}: no file rows"
            );
            assert_eq!(staging_folders(&c), Vec::<String>::new(), "{target}");
        }
    }

    // The same index (other index_file_size and flush_lsn): the partitions become the
    // target's, as migrate writes them for the long-term collection.
    let (o, json) = c.run(
        "restore",
        &["--date", D1, "--to-collection", "same_index"],
        &[],
    );
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "restored", "{json:#}");
    let parts = long.partitions("same_index").await.unwrap();
    assert_eq!(parts.len(), 1, "{parts:?}");
    let want = &collections[2];
    assert_eq!(parts[0].owner_table, "same_index");
    assert_eq!(parts[0].index_file_size, want.index_file_size);
    assert_eq!(parts[0].flush_lsn, want.flush_lsn);
    assert_eq!(parts[0].engine_type, want.engine_type);
    assert_eq!(parts[0].index_params, want.index_params);
    // A rerun finds exactly these rows: a no-op.
    let (o, json) = c.run(
        "restore",
        &["--date", D1, "--to-collection", "same_index"],
        &[],
    );
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "identical", "{json:#}");
}

/// The process state letter from /proc (`T` = stopped).
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

/// Start a restore of `D1` that stops itself (SIGSTOP) at its download writes (at each
/// one), and wait until it has stopped at the first.
fn restore_stopped_in_download(c: &Cluster, lease_ttl_secs: &str) -> std::process::Child {
    let mut a = c
        .command("restore")
        .args(["--date", D1, "--json"])
        .env("MILVUS_TIER_FAILPOINT", "backup.write:stop")
        .env("MILVUS_TIER_LIMITS__LEASE_TTL_SECS", lease_ttl_secs)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while process_state(a.id()) != Some('T') {
        if a.try_wait().unwrap().is_some() {
            let o = a.wait_with_output().unwrap();
            panic!("the restore ended before its download: {}", stderr(&o));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never reached its download"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    a
}

/// Resume `a` (SIGCONT) each time it stops, until it ends; its output.
fn resume_until_done(mut a: std::process::Child) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    while a.try_wait().unwrap().is_none() {
        if process_state(a.id()) == Some('T') {
            signal(a.id(), libc::SIGCONT);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the resumed restore never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    a.wait_with_output().unwrap()
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill sends a signal to a child this test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

/// Restore of `D1` with a manifest whose first file row has one row more than backup
/// wrote: refused (exit 5) before the day's lease; the manifest is put back after.
fn refused_by_a_tampered_manifest(c: &Cluster, day_dir: &Path) {
    let original = read_manifest(day_dir);
    let mut m = original.clone();
    let n = m["table_files"][0]["row_count"].as_i64().unwrap();
    m["table_files"][0]["row_count"] = (n + 1).into();
    write_manifest(day_dir, &m);
    let (o, json) = c.run("restore", &["--date", D1], &[]);
    write_manifest(day_dir, &original);
    assert_eq!(o.status.code(), Some(5), "{}\n{json:#}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_restore_keeps_staging_the_next_lease_holder_removes_it() {
    let c = cluster_days(1);
    let day_dir = migrated(&c);
    let want = canonical(&c).await;
    wipe_long_term(&c).await;

    // A live restore, paused in its download with the day's lease (long enough to outlast
    // the test) and its staging folder.
    let a = restore_stopped_in_download(&c, "600");
    let live = staging_folders(&c);
    assert_eq!(live.len(), 1, "{live:?}");
    // Refused before the lease: leaves the live run's staging alone.
    refused_by_a_tampered_manifest(&c, &day_dir);
    assert_eq!(
        staging_folders(&c),
        live,
        "a refused run touched live staging"
    );
    // Refused at the lease (held, and for longer than the lock wait): the same.
    let (o, json) = c.run("restore", &["--date", D1], &[]);
    assert_eq!(o.status.code(), Some(3), "{}\n{json:#}", stderr(&o));
    assert_eq!(
        staging_folders(&c),
        live,
        "a locked-out run touched live staging"
    );
    // The live run goes on and completes from its staging (the failpoint stops it at
    // every write: resume it each time).
    let o = resume_until_done(a);
    let json: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "restored", "{json:#}");
    assert_eq!(staging_folders(&c), Vec::<String>::new());
    assert_eq!(canonical(&c).await, want);

    // A restore killed in its download leaves its staging (and its lease, 2 s)...
    wipe_long_term(&c).await;
    let a = restore_stopped_in_download(&c, "2");
    signal(a.id(), libc::SIGKILL);
    let _ = a.wait_with_output().unwrap();
    let left = staging_folders(&c);
    assert_eq!(left.len(), 1, "{left:?}");
    // ...a refused run keeps it (it cannot know the run is gone)...
    refused_by_a_tampered_manifest(&c, &day_dir);
    assert_eq!(staging_folders(&c), left);
    // ...and the next run that holds the day's lease removes it.
    let (o, json) = c.run("restore", &["--date", D1], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "restored", "{json:#}");
    assert_eq!(staging_folders(&c), Vec::<String>::new());
    assert_eq!(canonical(&c).await, want);

    // A migrate of the day holds the same lease: it removes such a leftover too (here of a
    // repair killed in its download), even when it then refuses the day (a long-term file
    // is missing: exit 5, naming it).
    let (path, _) = index_file(&c, &day_dir);
    std::fs::remove_file(&path).unwrap();
    let a = restore_stopped_in_download(&c, "2");
    signal(a.id(), libc::SIGKILL);
    let _ = a.wait_with_output().unwrap();
    assert_eq!(staging_folders(&c).len(), 1);
    let (o, json) = c.migrate(&["--date", D1]);
    assert_eq!(o.status.code(), Some(5), "{}\n{json:#}", stderr(&o));
    assert!(
        json.to_string().contains(&path.display().to_string()),
        "{json:#}"
    );
    assert_eq!(staging_folders(&c), Vec::<String>::new());
    let (o, json) = c.run("restore", &["--date", D1], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "repaired", "{json:#}");
    assert_eq!(staging_folders(&c), Vec::<String>::new());
    assert_eq!(canonical(&c).await, want);
}
