//! The local engine on SQLite, as in the Batch image: Milvus's `SqliteMetaImpl` sets no busy
//! timeout, so its own metadata writes fail while another program holds a write lock.
//! `migrate` stages (its only writes into the engine's metadata) while the engine is idle.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::*;
use milvus_tier::meta::{FileType, MetaDb};
use serde_json::json;
use sqlx::Row;
use test_support::{free_port, workspace_bin};

#[tokio::test(flavor = "multi_thread")]
async fn staging_waits_until_a_busy_sqlite_engine_is_idle() {
    let mut c = cluster();
    drop(c.engine.take());
    let local = c.storage("local");
    std::fs::create_dir_all(local.join("db")).unwrap();
    let local_url = format!("sqlite://{}/db/meta.sqlite?mode=rwc", local.display());
    let log_path = c.dir.path().join("engine.log");
    let port = free_port();
    // A slow index build keeps the engine busy for several seconds.
    let mut engine = Command::new(workspace_bin("milvus-sim"))
        .args(["serve", "--meta", &local_url, "--storage"])
        .arg(&local)
        .args(["--port", &port.to_string(), "--tick-ms", "50"])
        .args(["--index-mb-per-s", "0.05"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::blocking_get(&format!("{url}/state")).is_err() {
        assert!(Instant::now() < deadline, "milvus-sim did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let old_engine = c.engine_url_in_config();
    let cfg = std::fs::read_to_string(&c.config).unwrap();
    let cfg = cfg
        .replace(&old_engine.0, &url)
        .replace(&old_engine.1, &local_url);
    std::fs::write(&c.config, cfg).unwrap();

    let post = |path: &str, body: serde_json::Value| {
        let u = format!("{url}{path}");
        std::thread::spawn(move || {
            reqwest::blocking_post(&u, &body).unwrap();
        })
    };
    post(
        "/collections",
        json!({"collection_name":"scratch","dimension":DIM,"index_file_size":1,"metric_type":"L2"}),
    )
    .join()
    .unwrap();
    let vectors: Vec<Vec<f32>> = (0..5000).map(|i| vec![(i % 97) as f32; DIM]).collect();
    let ids: Vec<String> = (0..5000).map(|i: i64| i.to_string()).collect();
    post(
        "/collections/scratch/vectors",
        json!({"vectors": vectors, "ids": ids}),
    )
    .join()
    .unwrap();
    reqwest::blocking_put(
        &format!("{url}/system/task"),
        &json!({"flush":{"collection_names":["scratch"]}}),
    )
    .unwrap();
    // create_index may block until the build ends (as Milvus does): do not wait for it.
    let _build = post(
        "/collections/scratch/indexes",
        json!({"index_type":"IVFFLAT","params":{"nlist":16}}),
    );
    let db = MetaDb::connect(&local_url).await.unwrap();
    let building = async {
        loop {
            let f = db
                .files(&["scratch".to_string()], &[FileType::NewIndex])
                .await
                .unwrap();
            if !f.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), building)
        .await
        .expect("the engine starts the scratch index build");

    let o = c
        .command("migrate")
        .env_remove("MILVUS_TIER_ENGINE__META_PASSWORD")
        .args(["--date", "2026-11-20", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let _ = engine.kill();
    let _ = engine.wait();

    // The build finished before staging began, and no engine write met a lock.
    let built = db
        .files(&["scratch".to_string()], &[FileType::Index])
        .await
        .unwrap();
    assert_eq!(built.len(), 1, "scratch index built once: {built:?}");
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let stage_started: i64 = sqlx::query(
        "SELECT started_at FROM milvus_tier_journal WHERE collection = ? AND day = ? AND step = ?",
    )
    .bind(COLL_LONG)
    .bind("2026-11-20")
    .bind("stage")
    .fetch_one(long.pool())
    .await
    .unwrap()
    .get(0);
    assert!(
        built[0].updated_time <= stage_started,
        "staging began at {stage_started} while the engine was still building (done at {})",
        built[0].updated_time
    );
    assert!(
        err.contains("waiting for the local engine to be idle"),
        "{err}"
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains("database is locked"), "{log}");
}
