//! `milvus-tier migrate` end to end: three separate MariaDB servers (short-term, long-term,
//! local engine metadata), `milvus-sim` as the local build engine and as a read-only
//! long-term node, real files on disk.

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::cluster::*;
use milvus_tier::meta::{FileType, MetaDb, TableState};
use serde_json::Value;
use test_support::PASSWORD;

#[tokio::test(flavor = "multi_thread")]
async fn migrates_two_days_and_reruns_as_a_verified_noop() {
    let c = cluster();
    // Dry run writes nothing.
    let (o, json) = c.migrate(&["--from", "2026-11-20", "--to", "2026-11-21", "--dry-run"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json["days"][0]["outcome"], "planned");
    assert_eq!(json["days"][0]["plan"]["rows"], 6000);
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    assert!(
        long.partitions(COLL_LONG).await.unwrap().is_empty(),
        "dry run wrote nothing"
    );

    let (o, json) = c.migrate(&["--from", "2026-11-20", "--to", "2026-11-21"]);
    assert!(
        o.status.success(),
        "{}\n{json:#}",
        String::from_utf8_lossy(&o.stderr)
    );
    for d in 0..2 {
        assert_eq!(json["days"][d]["outcome"], "migrated", "{json:#}");
    }

    // Long-term rows are the expected rewrite of short-term's partitions.
    let short = MetaDb::connect(&c.short_url).await.unwrap();
    let local = MetaDb::connect(&c.local_url).await.unwrap();
    let long_coll = long.collection(COLL_LONG).await.unwrap().unwrap();
    let parts = long.partitions(COLL_LONG).await.unwrap();
    assert_eq!(parts.len(), 2);
    for p in &parts {
        let src = &short
            .partitions_tagged(COLL_SHORT, &p.partition_tag)
            .await
            .unwrap()[0];
        assert_eq!(p.table_id, src.table_id, "table_id copied verbatim");
        assert_eq!(p.owner_table, COLL_LONG);
        assert_eq!(p.index_file_size, long_coll.index_file_size);
        assert_eq!(p.engine_type, long_coll.engine_type);
        assert_eq!(p.index_params, long_coll.index_params);
        assert_eq!(p.state, TableState::Normal);
        assert_eq!(
            (p.created_on, p.dimension, &p.version),
            (src.created_on, src.dimension, &src.version)
        );
        let files = long
            .files(std::slice::from_ref(&p.table_id), &[])
            .await
            .unwrap();
        let local_files = local
            .files(
                std::slice::from_ref(&p.table_id),
                &[FileType::Raw, FileType::Index, FileType::Backup],
            )
            .await
            .unwrap();
        // The local engine holds only the last day: each day starts from an engine wiped
        // of every partition (create_index rebuilds all of them when the root changes).
        let last_day = p.partition_tag == "day_2026-11-21";
        if !last_day {
            assert!(local_files.is_empty(), "{local_files:?}");
        }
        let index: Vec<_> = files
            .iter()
            .filter(|f| f.file_type == FileType::Index)
            .collect();
        assert_eq!(index.len(), 1, "one index file per day: {files:?}");
        assert_eq!(index[0].row_count, 6000);
        assert_eq!(index[0].engine_type, long_coll.engine_type);
        if !last_day {
            continue;
        }
        assert_eq!(files.len(), local_files.len());
        for f in &files {
            let lf = local_files
                .iter()
                .find(|l| l.file_id == f.file_id)
                .expect("same file ids as the engine");
            assert!(f.same_content(lf), "{f:?} vs {lf:?}");
        }
        // Files byte-identical to the engine's output.
        for f in &files {
            let seg = |root: PathBuf| root.join("db/tables").join(&f.table_id).join(&f.segment_id);
            let names = if f.file_type == FileType::Index {
                vec![f.file_id.clone()]
            } else {
                vec![format!("{}.rv", f.file_id), format!("{}.uid", f.file_id)]
            };
            for n in names {
                assert_eq!(
                    blake3_file(&seg(c.storage("long")).join(&n)),
                    blake3_file(&seg(c.storage("local")).join(&n)),
                    "{n}"
                );
            }
        }
    }

    // Rerun: verified no-op, nothing rewritten.
    let before = long
        .files(
            &parts.iter().map(|p| p.table_id.clone()).collect::<Vec<_>>(),
            &[],
        )
        .await
        .unwrap();
    let (o, json) = c.migrate(&["--from", "2026-11-20", "--to", "2026-11-21"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json["days"][0]["outcome"], "already_done");
    assert_eq!(json["days"][1]["outcome"], "already_done");
    let after = long
        .files(
            &parts.iter().map(|p| p.table_id.clone()).collect::<Vec<_>>(),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(before, after, "no row touched, no duplicate");

    // A read-only node on long-term finds migrated vectors by search.
    let ro = Sim::start(&c.long_url, &c.storage("long"), "ro", &[]);
    let f = before
        .iter()
        .find(|f| f.file_type == FileType::Backup)
        .unwrap();
    let seg = c
        .storage("long")
        .join("db/tables")
        .join(&f.table_id)
        .join(&f.segment_id);
    let rv = std::fs::read(seg.join(format!("{}.rv", f.file_id))).unwrap();
    let uid = std::fs::read(seg.join(format!("{}.uid", f.file_id))).unwrap();
    let row = 123;
    let vector: Vec<f32> = (0..DIM)
        .map(|i| f32::from_le_bytes(rv[8 + (row * DIM + i) * 4..][..4].try_into().unwrap()))
        .collect();
    let id = i64::from_le_bytes(uid[8 + row * 8..][..8].try_into().unwrap());
    let tag = &parts
        .iter()
        .find(|p| p.table_id == f.table_id)
        .unwrap()
        .partition_tag;
    let res = reqwest::blocking_put(
        &format!("{}/collections/{COLL_LONG}/vectors", ro.url),
        &serde_json::json!({"search": {"topk": 1, "partition_tags": [tag], "vectors": [vector], "params": {"nprobe": 16}}}),
    )
    .unwrap();
    assert_eq!(
        res["result"][0][0]["id"].as_str(),
        Some(id.to_string().as_str()),
        "{res}"
    );
    drop(c.engine);
}

fn migrate_with_failpoint(c: &Cluster, fp: &str) -> Output {
    c.command("migrate")
        .args(["--date", "2026-11-20", "--json"])
        .env("MILVUS_TIER_FAILPOINT", fp)
        .output()
        .unwrap()
}

const FAILPOINTS: &[&str] = &[
    "plan.done",
    "segments.after_file",
    "stage.after_copy",
    "stage.after_rows",
    "build.after_create_index",
    "build.done",
    "publish.before_copy",
    "segments.before_rename",
    "publish.after_copy",
    "publish.before_commit",
    "publish.after_commit",
    "migrate.done",
];

#[tokio::test(flavor = "multi_thread")]
async fn killed_at_every_failpoint_rerun_equals_clean_run() {
    let clean = cluster();
    let (o, _) = clean.migrate(&["--date", "2026-11-20"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = canonical(&clean).await;
    assert!(want.len() >= 3, "{want:?}");
    drop(clean);
    for fp in FAILPOINTS {
        let c = cluster();
        let o = migrate_with_failpoint(&c, fp);
        assert_eq!(
            o.status.code(),
            None,
            "{fp}: the process must die at the failpoint: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (o, json) = c.migrate(&["--date", "2026-11-20"]);
        assert!(
            o.status.success(),
            "{fp}: rerun failed: {}\n{json:#}",
            String::from_utf8_lossy(&o.stderr)
        );
        let outcome = json["days"][0]["outcome"].as_str().unwrap().to_string();
        let want_outcome = if matches!(*fp, "publish.after_commit" | "migrate.done") {
            "already_done"
        } else {
            "migrated"
        };
        assert_eq!(outcome, want_outcome, "{fp}");
        assert_eq!(
            canonical(&c).await,
            want,
            "{fp}: rerun differs from the clean run"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_runs_exactly_one_publishes() {
    let c = cluster();
    let spawn = || {
        c.command("migrate")
            .args(["--date", "2026-11-21", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let outcomes: Vec<(Option<i32>, String)> = outs
        .iter()
        .map(|o| {
            let j: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
            (
                o.status.code(),
                j["days"][0]["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        outcomes.iter().filter(|(_, o)| o == "migrated").count(),
        1,
        "{outcomes:?}"
    );
    let other = outcomes.iter().find(|(_, o)| o != "migrated").unwrap();
    let errs = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect::<String>();
    assert!(
        other.0 == Some(3) || other.1 == "already_done",
        "the other run is refused by the lock or finds the day done: {outcomes:?} {errs}"
    );
    if other.0 == Some(3) {
        let err = outs
            .iter()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .collect::<String>();
        assert!(err.contains("is held by"), "names the holder: {err}");
    }
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let parts = long.partitions(COLL_LONG).await.unwrap();
    assert_eq!(parts.len(), 1);
    let files = long.files(&[parts[0].table_id.clone()], &[]).await.unwrap();
    assert_eq!(
        files
            .iter()
            .filter(|f| f.file_type == FileType::Index)
            .count(),
        1,
        "no duplicate rows: {files:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_long_term_rows_and_engine_faults_are_refused() {
    let c = cluster();
    let short = MetaDb::connect(&c.short_url).await.unwrap();
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    // Something else in long-term under this day's partition id: refused, named, untouched.
    let src = short
        .partitions_tagged(COLL_SHORT, "day_2026-11-20")
        .await
        .unwrap()
        .remove(0);
    let mut other = src.clone();
    other.owner_table = COLL_LONG.into();
    other.partition_tag = "someone_else".into();
    long.write_rows(&[other], &[], milvus_tier::meta::WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    let (o, _) = c.migrate(&["--date", "2026-11-20"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(
        err.contains(&format!("Tables row {}", src.table_id)),
        "{err}"
    );
    assert!(
        long.files(std::slice::from_ref(&src.table_id), &[])
            .await
            .unwrap()
            .is_empty()
    );

    // Day with no partition: bad input.
    let (o, _) = c.migrate(&["--date", "2026-11-10"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no partition tagged `day_2026-11-10`"));

    // Engine hangs (accepts create_index, never builds): a timeout, exit 4.
    let engine = c.engine.as_ref().unwrap();
    reqwest::blocking_put(
        &format!("{}/admin/faults", engine.url),
        &serde_json::json!({"fault": "hang"}),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_milvus-tier"));
    cmd.arg("--config")
        .arg(&c.config)
        .args(["migrate", "--date", "2026-11-21"]);
    for s in ["SHORT_TERM", "LONG_TERM", "ENGINE"] {
        cmd.env(format!("MILVUS_TIER_{s}__META_PASSWORD"), PASSWORD);
    }
    let o = cmd
        .env("MILVUS_TIER_LIMITS__NO_PROGRESS_TIMEOUT_SECS", "2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("made no progress"), "{err}");
    assert!(
        long.partitions(COLL_LONG)
            .await
            .unwrap()
            .iter()
            .all(|p| p.partition_tag == "someone_else"),
        "nothing published"
    );

    // Engine answers 500 to everything: an engine error, exit 1.
    reqwest::blocking_put(
        &format!("{}/admin/faults", engine.url),
        &serde_json::json!({"http_500_share": 1.0}),
    )
    .unwrap();
    let (o, _) = c.migrate(&["--date", "2026-11-21"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("HTTP 500"), "{err}");

    // Engine down: unreachable, exit 1, named.
    let url = c.engine.as_ref().unwrap().url.clone();
    let mut c = c;
    drop(c.engine.take());
    let (o, _) = c.migrate(&["--date", "2026-11-21"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("unreachable") && err.contains(&url), "{err}");
}

/// Copy `from`'s segment folders to partition `to` in `storage`.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_day_long_term_holds_under_another_id_or_short_term_holds_twice_is_refused() {
    let c = cluster();
    let short = MetaDb::connect(&c.short_url).await.unwrap();
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let long_coll = long.collection(COLL_LONG).await.unwrap().unwrap();
    let src20 = short
        .partitions_tagged(COLL_SHORT, "day_2026-11-20")
        .await
        .unwrap()
        .remove(0);

    // Long-term already holds day 20 under another table_id (an old script published it):
    // the plan refuses, naming both partitions; nothing is written.
    let mut old = src20.clone();
    old.table_id = "old_script_20".into();
    old.owner_table = COLL_LONG.into();
    old.engine_type = long_coll.engine_type;
    old.index_params = long_coll.index_params.clone();
    long.write_rows(&[old], &[], milvus_tier::meta::WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    for args in [
        &["--date", "2026-11-20", "--dry-run"][..],
        &["--date", "2026-11-20"][..],
    ] {
        let (o, json) = c.migrate(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(5), "{args:?}: {err}\n{json:#}");
        assert!(
            err.contains("old_script_20") && err.contains(&src20.table_id),
            "{args:?}: {err}"
        );
    }
    assert!(
        long.tables_by_id(std::slice::from_ref(&src20.table_id))
            .await
            .unwrap()
            .is_empty(),
        "day 20 not published a second time"
    );

    // Long-term uses its own tag format: a partition carrying day 21's long-term tag is
    // the day's, whatever its table_id.
    let lt = [("MILVUS_TIER_LONG_TERM__PARTITION_TAG_FORMAT", "lt_%Y%m%d")];
    let mut old21 = src20.clone();
    old21.table_id = "old_script_21".into();
    old21.owner_table = COLL_LONG.into();
    old21.partition_tag = "lt_20261121".into();
    long.write_rows(&[old21], &[], milvus_tier::meta::WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    let (o, json) = c.run("migrate", &["--date", "2026-11-21"], &lt);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(5), "{err}\n{json:#}");
    assert!(err.contains("old_script_21"), "{err}");
    let tags: Vec<String> = long
        .partitions(COLL_LONG)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.partition_tag)
        .collect();
    assert_eq!(tags.len(), 2, "nothing published: {tags:?}");

    // Without the foreign partition the day is published under long-term's tag, and a rerun
    // is a verified no-op.
    for id in ["old_script_20", "old_script_21"] {
        sqlx::query("DELETE FROM Tables WHERE table_id = ?")
            .bind(id)
            .execute(long.pool())
            .await
            .unwrap();
    }
    let (o, json) = c.run("migrate", &["--date", "2026-11-21"], &lt);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json["days"][0]["outcome"], "migrated", "{json:#}");
    assert_eq!(
        long.partitions_tagged(COLL_LONG, "lt_20261121")
            .await
            .unwrap()
            .len(),
        1
    );
    let (o, json) = c.run("migrate", &["--date", "2026-11-21"], &lt);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json["days"][0]["outcome"], "already_done", "{json:#}");

    // Two NORMAL short-term partitions carry day 20's tag (Milvus never makes this): both
    // would be migrated. Refused, naming both.
    let mut dup = src20.clone();
    dup.table_id = format!("{}_dup", src20.table_id);
    let files: Vec<_> = short
        .files(std::slice::from_ref(&src20.table_id), &[])
        .await
        .unwrap()
        .into_iter()
        .map(|mut f| {
            f.id = 0;
            f.table_id = dup.table_id.clone();
            f
        })
        .collect();
    short
        .write_rows(
            &[dup.clone()],
            &files,
            milvus_tier::meta::WriteMode::InsertIfAbsent,
        )
        .await
        .unwrap();
    let tables = c.storage("short").join("db/tables");
    copy_tree(&tables.join(&src20.table_id), &tables.join(&dup.table_id));
    let (o, json) = c.migrate(&["--date", "2026-11-20", "--dry-run"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(5), "{err}\n{json:#}");
    assert!(
        err.contains(&dup.table_id) && err.contains(&format!("{}, ", src20.table_id)),
        "{err}"
    );
}

/// A publish entry whose `detail` does not parse is an error naming the entry (exit 5), not
/// a record with no digest: verify would otherwise skip the rows check and pass, and a
/// rerun would lose the segment folders it lists.
#[tokio::test(flavor = "multi_thread")]
async fn a_journal_detail_that_does_not_parse_is_an_error_naming_the_entry() {
    let c = cluster();
    let (o, json) = c.migrate(&["--date", "2026-11-20"]);
    assert!(o.status.success(), "{json:#}");
    let (o, json) = c.run("verify", &["--date", "2026-11-20"], &[]);
    assert_eq!(o.status.code(), Some(0), "{json:#}");
    // Wide enough for a day of many files (TEXT stops at 64 KiB on MySQL).
    let kind = c.servers[1].sql(
        "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'milvus' \
         AND TABLE_NAME = 'milvus_tier_journal' AND COLUMN_NAME = 'detail'",
    );
    assert_eq!(kind.trim(), "mediumtext");
    c.servers[1].sql(
        "UPDATE milvus.milvus_tier_journal SET detail = '{\"rows_digest\": 5' \
         WHERE day = '2026-11-20' AND step = 'publish'",
    );
    for cmd in [
        ("verify", vec!["--date", "2026-11-20"]),
        ("migrate", vec!["--date", "2026-11-20"]),
    ] {
        let (o, json) = c.run(cmd.0, &cmd.1, &[]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(5), "{}: {err}\n{json:#}", cmd.0);
        let all = format!("{err}{json}");
        assert!(
            all.contains(&format!("journal entry {COLL_LONG}/2026-11-20/publish")),
            "{}: {all}",
            cmd.0
        );
    }
}

/// The day's publish entry's detail, as the journal holds it.
async fn publish_detail(long: &MetaDb) -> String {
    milvus_tier::journal::Journal::open(long)
        .await
        .unwrap()
        .get(COLL_LONG, "2026-11-20", milvus_tier::journal::Step::Publish)
        .await
        .unwrap()
        .unwrap()
        .detail
        .unwrap()
}

/// The publish entry's rows digest, and the day's long-term rows (as verify reads them).
async fn recorded_rows_digest(
    long: &MetaDb,
) -> (
    String,
    Vec<milvus_tier::meta::TableRow>,
    Vec<milvus_tier::meta::FileRow>,
) {
    let detail = publish_detail(long).await;
    let detail: Value = serde_json::from_str(&detail).unwrap();
    let day = milvus_tier::backup::PublishedDay::read(long, COLL_LONG, "day_2026-11-20")
        .await
        .unwrap()
        .unwrap();
    (
        detail["rows_digest"].as_str().unwrap().to_string(),
        day.tables,
        day.files,
    )
}

/// Replace the rows digest recorded by the day's publish entry.
async fn set_recorded_rows_digest(long: &MetaDb, digest: &str) {
    let detail = publish_detail(long).await;
    let mut detail: Value = serde_json::from_str(&detail).unwrap();
    detail["rows_digest"] = digest.into();
    let done = sqlx::query(
        "UPDATE milvus_tier_journal SET detail = ? WHERE collection = ? AND day = ? AND step = 'publish'",
    )
    .bind(detail.to_string())
    .bind(COLL_LONG)
    .bind("2026-11-20")
    .execute(long.pool())
    .await
    .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

/// A day published before rows digests had versions holds a bare hex digest of the legacy
/// encoding in its journal entry: verify still passes and a rerun is a no-op, not a
/// conflict. A legacy digest of other rows is still a difference.
#[tokio::test(flavor = "multi_thread")]
async fn a_publish_entry_with_a_legacy_rows_digest_still_verifies_and_reruns_as_a_no_op() {
    use milvus_tier::meta::RowsDigestVersion;
    let c = cluster();
    let (o, json) = c.migrate(&["--date", "2026-11-20"]);
    assert!(o.status.success(), "{json:#}");
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let (recorded, tables, files) = recorded_rows_digest(&long).await;
    // Publish records the current encoding, the digest of the long-term rows.
    assert_eq!(recorded, RowsDigestVersion::V2.digest(&tables, &files));
    assert!(recorded.starts_with("v2:"), "{recorded}");

    // As milvus-tier recorded it before versions: bare hex of the legacy encoding.
    let legacy = RowsDigestVersion::Legacy.digest(&tables, &files);
    assert_eq!(
        RowsDigestVersion::of(&legacy),
        Some(RowsDigestVersion::Legacy)
    );
    set_recorded_rows_digest(&long, &legacy).await;
    let (o, json) = c.run("verify", &["--date", "2026-11-20"], &[]);
    assert_eq!(o.status.code(), Some(0), "{json:#}");
    assert_eq!(json["ok"], true, "{json:#}");
    let before = long
        .files(
            &tables
                .iter()
                .map(|t| t.table_id.clone())
                .collect::<Vec<_>>(),
            &[],
        )
        .await
        .unwrap();
    let (o, json) = c.migrate(&["--date", "2026-11-20"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json["days"][0]["outcome"], "already_done", "{json:#}");
    let after = long
        .files(
            &tables
                .iter()
                .map(|t| t.table_id.clone())
                .collect::<Vec<_>>(),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(before, after, "no row touched");
    let (still, _, _) = recorded_rows_digest(&long).await;
    assert_eq!(still, legacy, "the recorded entry is left as it was");

    // A legacy digest of other rows (one row count changed) does not match.
    let mut other = files.clone();
    other[0].row_count += 1;
    set_recorded_rows_digest(&long, &RowsDigestVersion::Legacy.digest(&tables, &other)).await;
    let (o, json) = c.run("verify", &["--date", "2026-11-20"], &[]);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    assert!(json.to_string().contains("rows_changed"), "{json:#}");
    let (o, json) = c.migrate(&["--date", "2026-11-20"]);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not this day's recorded result"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    long.close().await;
}
