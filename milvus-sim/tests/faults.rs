//! Injected faults are observable and distinct from success: hang, crash, http-500, slow;
//! and a read-only node sees rows written by the writable node without a restart.

mod support;

use std::time::{Duration, Instant};

use milvus_tier::meta::{FileType, MetaDb};
use serde_json::json;
use support::{count, files_of, start, wait_until};

fn rows(n: usize, offset: usize) -> String {
    let v: Vec<Vec<f32>> = (0..n).map(|i| vec![(i + offset) as f32; 8]).collect();
    let ids: Vec<String> = (0..n).map(|i| (i + offset).to_string()).collect();
    json!({"vectors": v, "ids": ids}).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn hang_keeps_to_index_until_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let url_meta = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(
        &url_meta,
        &dir.path().join("s"),
        &["--fault", "hang", "--tick-ms", "50"],
    )
    .await;
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"c","dimension":8,"index_file_size":1}"#,
    )
    .await;
    sim.ok("POST", "/collections/c/vectors", &rows(5000, 0))
        .await;
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":["c"]}}"#,
    )
    .await;
    // create_index blocks until the build is done (`WaitCollectionIndexRecursively`).
    let url = format!("{}/collections/c/indexes", sim.base);
    let create = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .body(r#"{"index_type":"IVFSQ8","params":{"nlist":16}}"#)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    let db = MetaDb::connect(&url_meta).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let f = files_of(&db, "c").await;
    assert_eq!(
        (count(&f, FileType::ToIndex), count(&f, FileType::Index)),
        (1, 0)
    );
    assert!(!create.is_finished(), "create_index waits for the build");
    sim.ok("PUT", "/admin/faults", r#"{"fault":"none"}"#).await;
    assert_eq!(create.await.unwrap(), 201);
    let built = count(&files_of(&db, "c").await, FileType::Index) == 1;
    assert!(built, "{}", sim.log_text());
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_exits_non_zero_and_leaves_new_merge() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let storage = dir.path().join("s");
    let mut sim = start(&url, &storage, &["--fault", "crash", "--tick-ms", "50"]).await;
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"c","dimension":8}"#,
    )
    .await;
    for batch in 0..2 {
        sim.ok("POST", "/collections/c/vectors", &rows(100, batch * 100))
            .await;
        sim.ok(
            "PUT",
            "/system/task",
            r#"{"flush":{"collection_names":["c"]}}"#,
        )
        .await;
    }
    let status = sim
        .wait_exit(Duration::from_secs(10))
        .expect("process exits");
    assert_eq!(status.code(), Some(3), "{}", sim.log_text());
    let db = MetaDb::connect(&url).await.unwrap();
    let f = files_of(&db, "c").await;
    assert_eq!(count(&f, FileType::NewMerge), 1);
    assert_eq!(count(&f, FileType::Raw), 2);

    // A restart removes the shadow row and merges again.
    let _sim = start(&url, &storage, &["--tick-ms", "50"]).await;
    let merged = wait_until(Duration::from_secs(10), || async {
        let f = files_of(&db, "c").await;
        count(&f, FileType::NewMerge) == 0 && count(&f, FileType::Raw) == 1
    })
    .await;
    assert!(merged);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_500_and_slow_are_visible() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(&url, &dir.path().join("s"), &["--fault", "http-500:1"]).await;
    let (s, b) = sim.call("GET", "/system/version", None).await;
    assert_eq!(s, 500);
    assert_eq!(b["code"], 1);
    assert!(b["message"].as_str().unwrap().contains("injected"));
    let f = sim
        .ok("PUT", "/admin/faults", r#"{"http_500_share":0.5}"#)
        .await;
    assert_eq!(f["http_500_share"], 0.5);
    let mut failed = 0;
    for _ in 0..40 {
        let (s, _) = sim.call("GET", "/system/status", None).await;
        assert!(s == 200 || s == 500);
        failed += usize::from(s == 500);
    }
    assert!((5..=35).contains(&failed), "{failed} of 40 failed");
    sim.ok("PUT", "/admin/faults", r#"{"slow_ms":300}"#).await;
    let t = Instant::now();
    sim.ok("GET", "/system/version", "").await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    sim.ok("PUT", "/admin/faults", r#"{"fault":"none"}"#).await;
    let t = Instant::now();
    sim.ok("GET", "/system/version", "").await;
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_flag_delays_every_response() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(&url, &dir.path().join("s"), &["--fault", "slow:200"]).await;
    let t = Instant::now();
    let (s, _) = sim.call("GET", "/collections", None).await;
    assert_eq!(s, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_node_sees_new_rows_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let storage = dir.path().join("s");
    let rw = start(&url, &storage, &[]).await;
    rw.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"c","dimension":8}"#,
    )
    .await;
    let ro = start(&url, &storage, &["--role", "ro"]).await;
    let q = r#"{"search":{"topk":1,"params":{},"vectors":[[7,7,7,7,7,7,7,7]]}}"#;
    let r = ro.ok("PUT", "/collections/c/vectors", q).await;
    // Nothing to search: Milvus answers num 0 and an empty result list.
    assert_eq!(r, json!({"num": 0, "result": []}));
    rw.ok("POST", "/collections/c/vectors", &rows(10, 0)).await;
    rw.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":["c"]}}"#,
    )
    .await;
    let r = ro.ok("PUT", "/collections/c/vectors", q).await;
    assert_eq!(r["result"][0][0]["id"], "7");
    assert_eq!(ro.ok("GET", "/collections/c", "").await["count"], 10);
    let (s, b) = ro
        .call("POST", "/collections/c/vectors", Some(&rows(1, 0)))
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(!ro.log_text().contains("clean up shadow files"));
}

#[tokio::test(flavor = "multi_thread")]
async fn merge_takes_time_at_the_configured_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    // 2 x 100 rows of dim 8 = 8000 bytes at 0.01 MB/s: about 0.76 s.
    let sim = start(
        &url,
        &dir.path().join("s"),
        &["--merge-mb-per-s", "0.01", "--tick-ms", "20"],
    )
    .await;
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"c","dimension":8}"#,
    )
    .await;
    for batch in 0..2 {
        sim.ok("POST", "/collections/c/vectors", &rows(100, batch * 100))
            .await;
        sim.ok(
            "PUT",
            "/system/task",
            r#"{"flush":{"collection_names":["c"]}}"#,
        )
        .await;
    }
    let t = Instant::now();
    let db = MetaDb::connect(&url).await.unwrap();
    let merged = wait_until(Duration::from_secs(10), || async {
        let f = files_of(&db, "c").await;
        count(&f, FileType::Raw) == 1 && count(&f, FileType::ToDelete) == 2
    })
    .await;
    assert!(merged, "{}", sim.log_text());
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
}
