//! Behaviours of the real Milvus 1.1.1 engine the simulator follows (source notes §4, §5,
//! §9): create_index blocks until built and compact waits for the index batch; only the
//! root's index is compared; merge runs after flushes, at startup and in create_index,
//! never on a timer; the start-up WAL check; TTL cleanup.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use milvus_tier::meta::{FileType, MetaDb, TableState};
use serde_json::json;
use support::{Sim, count, files_of, seed, start, wait_until};

const T: Duration = Duration::from_secs(20);

fn rows(n: usize, offset: usize) -> String {
    let v: Vec<Vec<f32>> = (0..n).map(|i| vec![(i + offset) as f32; 8]).collect();
    json!({ "vectors": v }).to_string()
}

fn rows_in(tag: &str, n: usize, offset: usize) -> String {
    let v: Vec<Vec<f32>> = (0..n).map(|i| vec![(i + offset) as f32; 8]).collect();
    json!({ "partition_tag": tag, "vectors": v }).to_string()
}

/// POST create_index in its own task (it blocks until the build is done); the HTTP status.
fn create_index(sim: &Sim, collection: &str, body: &str) -> tokio::task::JoinHandle<u16> {
    let url = format!("{}/collections/{collection}/indexes", sim.base);
    let body = body.to_string();
    tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// Files that keep `WaitCollectionIndexRecursively` waiting.
fn pending(f: &[milvus_tier::meta::FileRow]) -> usize {
    f.iter()
        .filter(|f| match f.file_type {
            FileType::Raw => f.row_count >= 4096,
            FileType::New | FileType::NewMerge | FileType::NewIndex | FileType::ToIndex => true,
            _ => false,
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_index_waits_for_the_build_and_compact_waits_for_the_index_batch() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    // 5000 rows of dim 8 are 200 000 bytes: about 4 s of build at 0.05 MB/s.
    let sim = start(
        &url,
        &dir.path().join("s"),
        &["--tick-ms", "50", "--index-mb-per-s", "0.05"],
    )
    .await;
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"c","dimension":8}"#,
    )
    .await;
    sim.ok("POST", "/collections/c/vectors", &rows(5000, 0))
        .await;
    let db = MetaDb::connect(&url).await.unwrap();
    let create = create_index(
        &sim,
        "c",
        r#"{"index_type":"IVFSQ8","params":{"nlist":16}}"#,
    );
    let building = wait_until(T, || async {
        count(&files_of(&db, "c").await, FileType::NewIndex) == 1
    })
    .await;
    assert!(building, "{}", sim.log_text());
    assert!(!create.is_finished(), "create_index waits for the build");
    // Compact takes the build lock: it returns only once the batch is done.
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"compact":{"collection_name":"c"}}"#,
    )
    .await;
    let f = files_of(&db, "c").await;
    assert_eq!(
        (count(&f, FileType::NewIndex), count(&f, FileType::Index)),
        (0, 1),
        "{f:?}"
    );
    assert_eq!(create.await.unwrap(), 201);
    assert_eq!(pending(&files_of(&db, "c").await), 0);

    // Promotion to TO_INDEX happens only in create_index: a flushed 5000-row file stays RAW.
    sim.ok("POST", "/collections/c/vectors", &rows(5000, 5000))
        .await;
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":["c"]}}"#,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let f = files_of(&db, "c").await;
    assert_eq!(
        (count(&f, FileType::Raw), count(&f, FileType::ToIndex)),
        (1, 0),
        "{f:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_index_compares_only_the_root_and_rebuilds_every_partition_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(&url, &dir.path().join("s"), &["--tick-ms", "50"]).await;
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"c","dimension":8}"#,
    )
    .await;
    for (i, tag) in ["p1", "p2"].iter().enumerate() {
        sim.ok(
            "POST",
            "/collections/c/partitions",
            &json!({ "partition_tag": tag }).to_string(),
        )
        .await;
        sim.ok(
            "POST",
            "/collections/c/vectors",
            &rows_in(tag, 5000, i * 5000),
        )
        .await;
    }
    let builds = || sim.log_text().matches("index build start").count();
    let nlist16 = r#"{"index_type":"IVFSQ8","params":{"nlist":16}}"#;
    assert_eq!(create_index(&sim, "c", nlist16).await.unwrap(), 201);
    assert_eq!(builds(), 2);
    // A partition whose own index differs is not looked at: the root's is the same.
    let db = MetaDb::connect(&url).await.unwrap();
    let p2 = db.partitions_tagged("c", "p2").await.unwrap()[0].clone();
    sqlx::query("UPDATE Tables SET index_params = ? WHERE table_id = ?")
        .bind(r#"{"nlist":99}"#)
        .bind(&p2.table_id)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(create_index(&sim, "c", nlist16).await.unwrap(), 201);
    assert_eq!(builds(), 2, "{}", sim.log_text());
    // Another index on the root: every partition is dropped and rebuilt.
    let nlist32 = r#"{"index_type":"IVFSQ8","params":{"nlist":32}}"#;
    assert_eq!(create_index(&sim, "c", nlist32).await.unwrap(), 201);
    assert_eq!(builds(), 4, "{}", sim.log_text());
    let f = files_of(&db, "c").await;
    assert_eq!(count(&f, FileType::Index), 2);
    for p in db.partitions("c").await.unwrap() {
        assert_eq!(p.index_params, r#"{"nlist":32}"#);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn merge_follows_flushes_startup_and_create_index_never_a_timer() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let storage = dir.path().join("s");
    let sim = start(&url, &storage, &["--tick-ms", "50"]).await;
    let db = MetaDb::connect(&url).await.unwrap();
    // Two small flushes land in one layer (< 4 MB): the second flush merges them.
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"y","dimension":8}"#,
    )
    .await;
    for batch in 0..2 {
        sim.ok("POST", "/collections/y/vectors", &rows(100, batch * 100))
            .await;
        sim.ok(
            "PUT",
            "/system/task",
            r#"{"flush":{"collection_names":["y"]}}"#,
        )
        .await;
    }
    let merged = wait_until(T, || async {
        let f = files_of(&db, "y").await;
        count(&f, FileType::Raw) == 1 && f.iter().any(|x| x.row_count == 200)
    })
    .await;
    assert!(merged, "{}", sim.log_text());

    // Segments written by another program are not merged on a timer...
    seed(
        &url,
        &storage,
        &[
            "--collection",
            "x",
            "--days",
            "1",
            "--rows-per-day",
            "5000",
            "--dim",
            "8",
            "--segment-rows",
            "2500",
            "--first-day",
            "2024-04-01",
        ],
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(count(&files_of(&db, "x").await, FileType::Raw), 2);
    // ...but create_index force-merges them first and builds one index.
    let code = create_index(
        &sim,
        "x",
        r#"{"index_type":"IVFSQ8","params":{"nlist":16}}"#,
    );
    assert_eq!(code.await.unwrap(), 201);
    let f = files_of(&db, "x").await;
    assert_eq!(count(&f, FileType::Index), 1, "{f:?}");
    assert_eq!(count(&f, FileType::Raw), 0, "{f:?}");
    drop(sim);

    // At startup every table is force-merged.
    seed(
        &url,
        &storage,
        &[
            "--collection",
            "z",
            "--days",
            "1",
            "--rows-per-day",
            "300",
            "--dim",
            "8",
            "--segment-rows",
            "100",
            "--first-day",
            "2024-04-01",
        ],
    );
    assert_eq!(count(&files_of(&db, "z").await, FileType::Raw), 3);
    let sim = start(&url, &storage, &["--tick-ms", "50"]).await;
    let merged = wait_until(T, || async {
        count(&files_of(&db, "z").await, FileType::Raw) == 1
    })
    .await;
    assert!(merged, "{}", sim.log_text());
}

/// Run `milvus-sim serve` until it serves (Ok(sim)) or exits (Err(log)).
async fn try_start(meta: &str, storage: &Path, extra: &[&str]) -> Result<Sim, String> {
    let port = test_support::free_port();
    let log = storage.with_extension(format!("{port}.try.log"));
    let mut child = Command::new(test_support::workspace_bin("milvus-sim"))
        .args(["serve", "--meta", meta, "--port", &port.to_string()])
        .arg("--storage")
        .arg(storage)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    for _ in 0..400 {
        if let Ok(Some(s)) = child.try_wait() {
            return Err(format!("{s}: {}", std::fs::read_to_string(&log).unwrap()));
        }
        if reqwest::get(format!("http://127.0.0.1:{port}/state"))
            .await
            .is_ok()
        {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(start(meta, storage, extra).await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("milvus-sim neither served nor exited");
}

#[tokio::test(flavor = "multi_thread")]
async fn wal_init_refuses_a_flush_lsn_its_wal_cannot_account_for() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let storage = dir.path().join("s");
    let sim = start(&url, &storage, &[]).await;
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"c","dimension":8}"#,
    )
    .await;
    sim.ok(
        "POST",
        "/collections/c/partitions",
        r#"{"partition_tag":"p"}"#,
    )
    .await;
    drop(sim);
    // A partition row copied from another cluster, with that cluster's lsn.
    let db = MetaDb::connect(&url).await.unwrap();
    let p = db.partitions_tagged("c", "p").await.unwrap()[0].clone();
    sqlx::query("UPDATE Tables SET flush_lsn = ? WHERE table_id = ?")
        .bind(4_294_967_360_i64)
        .bind(&p.table_id)
        .execute(db.pool())
        .await
        .unwrap();
    let err = try_start(&url, &storage, &[]).await.err().expect("refused");
    assert!(err.contains("Wal init error!"), "{err}");
    assert!(err.contains(&p.table_id), "names the row: {err}");
    // The same on a read-only node (WalManager::Init runs there too).
    let err = try_start(&url, &storage, &["--role", "ro"])
        .await
        .err()
        .expect("refused");
    assert!(err.contains("Wal init error!"), "{err}");
    // Without WAL there is no check; with recovery_error_ignore the WAL is reset.
    assert!(
        try_start(&url, &storage, &["--wal-enable", "false"])
            .await
            .is_ok()
    );
    let sim = try_start(&url, &storage, &["--wal-recovery-error-ignore", "true"])
        .await
        .expect("starts");
    assert!(sim.log_text().contains("WAL reset"), "{}", sim.log_text());
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_removes_soft_deleted_tables_at_once_and_keeps_backup() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let storage = dir.path().join("s");
    let sim = start(&url, &storage, &["--tick-ms", "50", "--ttl-secs", "1"]).await;
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"c","dimension":8}"#,
    )
    .await;
    for tag in ["keep", "gone"] {
        sim.ok(
            "POST",
            "/collections/c/partitions",
            &json!({ "partition_tag": tag }).to_string(),
        )
        .await;
        sim.ok("POST", "/collections/c/vectors", &rows_in(tag, 5000, 0))
            .await;
    }
    let code = create_index(
        &sim,
        "c",
        r#"{"index_type":"IVFSQ8","params":{"nlist":16}}"#,
    );
    assert_eq!(code.await.unwrap(), 201);
    let db = MetaDb::connect(&url).await.unwrap();
    let gone = db.partitions_tagged("c", "gone").await.unwrap()[0].clone();
    let (s, _) = sim
        .call(
            "DELETE",
            "/collections/c/partitions",
            Some(r#"{"partition_tag":"gone"}"#),
        )
        .await;
    assert_eq!(s, 204);
    // The soft-deleted Tables row goes at once; its files after the TTL, with the folder.
    let table_gone = wait_until(T, || async {
        db.tables_by_id(std::slice::from_ref(&gone.table_id))
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    assert!(table_gone, "{}", sim.log_text());
    let files_gone = wait_until(T, || async {
        db.files(std::slice::from_ref(&gone.table_id), &[])
            .await
            .unwrap()
            .is_empty()
            && !storage.join("db/tables").join(&gone.table_id).exists()
    })
    .await;
    assert!(files_gone, "{}", sim.log_text());
    // BACKUP is never removed by TTL.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let f = files_of(&db, "c").await;
    assert_eq!(
        (count(&f, FileType::Backup), count(&f, FileType::Index)),
        (1, 1),
        "{f:?}"
    );
    let keep = db.partitions_tagged("c", "keep").await.unwrap()[0].clone();
    assert_eq!(keep.state, TableState::Normal);
}

/// `SqliteMetaImpl::Initialize` puts `meta.sqlite` in WAL mode: another program holding a
/// read transaction open (as `migrate` polling the engine's rows) does not make the engine's
/// writes fail, although the engine sets no busy timeout.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_metadata_is_in_wal_mode_so_readers_never_block_the_engine() {
    use sqlx::{Connection, Executor, Row};
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(&url, &dir.path().join("s"), &["--tick-ms", "50"]).await;
    let mut reader = sqlx::SqliteConnection::connect(&url).await.unwrap();
    reader.execute("PRAGMA busy_timeout = 0").await.unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut reader)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    reader.execute("BEGIN").await.unwrap();
    let n: i64 = sqlx::query("SELECT count(*) FROM Tables")
        .fetch_one(&mut reader)
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // The read transaction stays open while the engine writes.
    let (status, body) = sim
        .call(
            "POST",
            "/collections",
            Some(r#"{"collection_name":"c","dimension":8}"#),
        )
        .await;
    assert!(
        status < 300,
        "create collection under a reader: {status} {body}"
    );
    let (status, body) = sim
        .call("POST", "/collections/c/vectors", Some(&rows(100, 0)))
        .await;
    assert!(status < 300, "insert under a reader: {status} {body}");
    reader.execute("COMMIT").await.unwrap();
    let n: i64 = sqlx::query("SELECT count(*) FROM Tables WHERE table_id = 'c'")
        .fetch_one(&mut reader)
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// `DBImpl::Compact` over the web API (threshold 0.1): a segment with at least 10 % of its
/// rows deleted is rewritten without them into a new segment and every file of the old one
/// becomes TO_DELETE; a segment under the threshold is left alone; after an index build the
/// BACKUP raw file is the one compacted and the new file waits as TO_INDEX.
#[tokio::test(flavor = "multi_thread")]
async fn compact_rewrites_segments_whose_deleted_rows_reach_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(&url, &dir.path().join("s"), &["--tick-ms", "50"]).await;
    let db = MetaDb::connect(&url).await.unwrap();
    let segments = |v: &serde_json::Value| -> Vec<(String, i64, i64)> {
        v["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["row_count"].as_i64().unwrap(),
                    s["data_size"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    for c in ["few", "many"] {
        sim.ok(
            "POST",
            "/collections",
            &json!({"collection_name": c, "dimension": 8, "index_file_size": 1024}).to_string(),
        )
        .await;
        let v: Vec<Vec<f32>> = (0..6000).map(|i| vec![i as f32; 8]).collect();
        let ids: Vec<String> = (0..6000).map(|i| i.to_string()).collect();
        sim.ok(
            "POST",
            &format!("/collections/{c}/vectors"),
            &json!({"vectors": v, "ids": ids}).to_string(),
        )
        .await;
    }
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":["few","many"]}}"#,
    )
    .await;
    // 500 of 6000 deleted (7.7 %): under the threshold. 1000 (14.3 %): compacted.
    for (c, n) in [("few", 500), ("many", 1000)] {
        let del: Vec<String> = (0..n).map(|i: i64| i.to_string()).collect();
        sim.ok(
            "PUT",
            &format!("/collections/{c}/vectors"),
            &json!({"delete": {"ids": del}}).to_string(),
        )
        .await;
    }
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":["few","many"]}}"#,
    )
    .await;
    let before = segments(&sim.ok("GET", "/collections/many?info=stat", "").await["partitions"][0]);
    let (_, before_few) = sim.call("GET", "/collections/few?info=stat", None).await;
    for c in ["few", "many"] {
        sim.ok(
            "PUT",
            "/system/task",
            &json!({"compact": {"collection_name": c}}).to_string(),
        )
        .await;
    }
    let (_, after_few) = sim.call("GET", "/collections/few?info=stat", None).await;
    assert_eq!(after_few, before_few, "under the threshold nothing changes");
    let after = segments(&sim.ok("GET", "/collections/many?info=stat", "").await["partitions"][0]);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after[0].0, before[0].0, "a new segment");
    assert_eq!(after[0].1, 5000);
    assert_eq!(after[0].2, 5000 * (8 * 4 + 8) as i64, "{after:?}");
    assert!(after[0].2 < before[0].2);
    let files = files_of(&db, "many").await;
    assert_eq!(count(&files, FileType::Raw), 1, "{files:?}");
    assert!(
        files
            .iter()
            .filter(|f| f.segment_id == before[0].0)
            .all(|f| f.file_type == FileType::ToDelete),
        "{files:?}"
    );
    let (_, v) = sim.call("GET", "/collections/many", None).await;
    assert_eq!(v["count"], 5000);

    // After an index build: the BACKUP raw file is compacted; INDEX and BACKUP go.
    sim.ok(
        "POST",
        "/collections/few/indexes",
        r#"{"index_type":"IVFFLAT","params":{"nlist":16}}"#,
    )
    .await;
    let files = files_of(&db, "few").await;
    assert_eq!(count(&files, FileType::Index), 1, "{files:?}");
    let del: Vec<String> = (500..1000).map(|i: i64| i.to_string()).collect();
    sim.ok(
        "PUT",
        "/collections/few/vectors",
        &json!({"delete": {"ids": del}}).to_string(),
    )
    .await;
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":["few"]}}"#,
    )
    .await;
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"compact":{"collection_name":"few"}}"#,
    )
    .await;
    // The index thread may already be building the new TO_INDEX file (a NEW_INDEX row of
    // the new segment), so only the settled facts are checked.
    let files = files_of(&db, "few").await;
    let old = &files[0].segment_id;
    assert!(
        files
            .iter()
            .filter(|f| &f.segment_id == old)
            .all(|f| f.file_type == FileType::ToDelete),
        "{files:?}"
    );
    let compacted: Vec<_> = files
        .iter()
        .filter(|f| &f.segment_id != old && f.file_id == f.segment_id)
        .collect();
    assert_eq!(compacted.len(), 1, "{files:?}");
    assert_eq!(compacted[0].row_count, 5000, "{files:?}");
    assert!(
        matches!(compacted[0].file_type, FileType::ToIndex | FileType::Backup),
        "{files:?}"
    );
    let (_, v) = sim.call("GET", "/collections/few", None).await;
    assert_eq!(v["count"], 5000);
}
