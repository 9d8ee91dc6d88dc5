//! A long-running node stays bounded in memory across large inserts served on many
//! connections at once (the Milvus 1.1 suite's large-nq tests drove an unbounded node past
//! 23 GB), while every inserted row stays countable.

mod support;

use serde_json::json;
use support::start;

const DIM: usize = 128;
const PER_INSERT: usize = 20_000;
const INSERTS: usize = 12;
const CONNECTIONS: usize = 4;

fn body(batch: usize) -> String {
    let v: Vec<Vec<f32>> = (0..PER_INSERT)
        .map(|i| {
            (0..DIM)
                .map(|d| ((batch * PER_INSERT + i) * 31 + d) as f32 / 7.0)
                .collect()
        })
        .collect();
    json!({ "vectors": v }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_inserts_on_many_connections_leave_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let meta = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = std::sync::Arc::new(start(&meta, &dir.path().join("s"), &[]).await);
    sim.ok(
        "POST",
        "/collections",
        &json!({"collection_name": "big", "dimension": DIM, "index_file_size": 1024}).to_string(),
    )
    .await;
    let before = sim.rss_kib();

    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let sim = sim.clone();
        tasks.push(tokio::spawn(async move {
            for batch in (c..INSERTS).step_by(CONNECTIONS) {
                let (status, v) = sim
                    .call("POST", "/collections/big/vectors", Some(&body(batch)))
                    .await;
                assert_eq!(status, 201, "insert {batch}: {v}");
                assert_eq!(v["ids"].as_array().map(Vec::len), Some(PER_INSERT));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":["big"]}}"#,
    )
    .await;
    let (_, v) = sim.call("GET", "/collections/big", None).await;
    assert_eq!(v["count"], json!(PER_INSERT * INSERTS), "{v}");

    let after = sim.rss_kib();
    let grown_mib = after.saturating_sub(before) / 1024;
    // The inserted data itself is 12 × 20 000 × 128 × 4 B ≈ 117 MiB of JSON per request
    // at most in flight on 4 connections; what stays after the last reply must be far less.
    assert!(
        grown_mib < 150,
        "node grew by {grown_mib} MiB over {INSERTS} inserts of {PER_INSERT}×{DIM} \
         (before {before} KiB, after {after} KiB)"
    );
}
