//! The web API on SQLite: schema creation, collection and partition life cycle, insert,
//! flush, search, stats, and the error shapes of bad requests.

mod support;

use milvus_tier::meta::{FileType, MetaDb, TableState};
use serde_json::{Value, json};
use sqlx::Row;
use support::{files_of, start};

async fn sqlite_ddl(url: &str) -> Vec<(String, String)> {
    let db = MetaDb::connect(url).await.unwrap();
    sqlx::query("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect()
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: i64) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_schema_equals_sql_files() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let _sim = start(&url, &dir.path().join("storage"), &[]).await;
    let reference = test_support::sqlite_url(dir.path(), "reference.sqlite");
    MetaDb::connect(&reference)
        .await
        .unwrap()
        .install_milvus_schema()
        .await
        .unwrap();
    MetaDb::connect(&url)
        .await
        .unwrap()
        .check_schema()
        .await
        .unwrap();
    let ddl = sqlite_ddl(&url).await;
    assert_eq!(ddl.len(), 4);
    assert_eq!(ddl, sqlite_ddl(&reference).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn collections_partitions_insert_search_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(&url, &dir.path().join("storage"), &[]).await;
    let v = sim
        .ok(
            "POST",
            "/collections",
            r#"{"collection_name":"a","dimension":4,"index_file_size":2,"metric_type":"L2"}"#,
        )
        .await;
    assert_eq!(v, json!({"code":0,"message":"OK"}));
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"b","dimension":4,"metric_type":"IP"}"#,
    )
    .await;
    let d = sim.ok("GET", "/collections/a", "").await;
    assert_eq!(d["index_file_size"], 2);
    assert_eq!(d["metric_type"], "L2");
    assert_eq!(d["index"], "FLAT");
    let db = MetaDb::connect(&url).await.unwrap();
    assert_eq!(
        db.collection("a").await.unwrap().unwrap().index_file_size,
        2 * 1024 * 1024
    );
    let list = sim
        .ok("GET", "/collections?offset=0&page_size=10", "")
        .await;
    assert_eq!(list["count"], 2);
    assert_eq!(list["collections"][1]["collection_name"], "b");

    sim.ok(
        "POST",
        "/collections/a/partitions",
        r#"{"partition_tag":"p1"}"#,
    )
    .await;
    let parts = sim.ok("GET", "/collections/a/partitions", "").await;
    assert_eq!(
        parts,
        json!({"partitions":[{"partition_tag":"_default"},{"partition_tag":"p1"}],"count":2})
    );

    let vecs: Vec<Vec<f32>> = (0..20).map(|i| vec![i as f32, 0.0, 0.0, 1.0]).collect();
    let ids: Vec<String> = (100..120).map(|i: i64| i.to_string()).collect();
    let r = sim
        .ok(
            "POST",
            "/collections/a/vectors",
            &json!({"partition_tag":"p1","vectors":vecs,"ids":ids}).to_string(),
        )
        .await;
    assert_eq!(r["ids"][0], "100");
    // The collection took user ids: inserts without ids are refused (Tables.flag).
    let (st, b) = sim
        .call(
            "POST",
            "/collections/a/vectors",
            Some(&json!({"vectors":[[5.0,5.0,5.0,5.0]]}).to_string()),
        )
        .await;
    assert_error(st, &b, 400, 12);
    let r = sim
        .ok(
            "POST",
            "/collections/a/vectors",
            &json!({"vectors":[[5.0,5.0,5.0,5.0]],"ids":["7"]}).to_string(),
        )
        .await;
    let auto_id: i64 = r["ids"][0].as_str().unwrap().parse().unwrap();
    assert_eq!(auto_id, 7);
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":["a"]}}"#,
    )
    .await;
    assert_eq!(sim.ok("GET", "/collections/a", "").await["count"], 21);

    let q = json!({"search":{"topk":2,"partition_tags":["p1"],"vectors":[[3.1,0.0,0.0,1.0]],"params":{"nprobe":1}}});
    let r = sim
        .ok("PUT", "/collections/a/vectors", &q.to_string())
        .await;
    assert_eq!(r["num"], 1);
    assert_eq!(r["result"][0][0]["id"], "103");
    assert_eq!(r["result"][0][1]["id"], "104");
    let q = json!({"search":{"topk":1,"params":{},"vectors":[[5.0,5.0,5.0,5.0]]}});
    let r = sim
        .ok("PUT", "/collections/a/vectors", &q.to_string())
        .await;
    assert_eq!(r["result"][0][0]["id"], auto_id.to_string());

    let got = sim
        .ok(
            "GET",
            "/collections/a/vectors?ids=103,999&partition_tag=p1",
            "",
        )
        .await;
    assert_eq!(
        got["vectors"][0],
        json!({"id":"103","vector":[3.0,0.0,0.0,1.0]})
    );
    assert_eq!(got["vectors"][1]["vector"], json!([]));
    let stat = sim.ok("GET", "/collections/a?info=stat", "").await;
    let p1_file = stat["partitions"][1]["segments"][0]["name"].clone();
    let q =
        json!({"search":{"topk":1,"params":{},"file_ids":[p1_file],"vectors":[[5.0,5.0,5.0,5.0]]}});
    let r = sim
        .ok("PUT", "/collections/a/vectors", &q.to_string())
        .await;
    assert_eq!(
        r["result"][0][0]["id"], "105",
        "only the p1 file is searched"
    );

    // IP ranks by the largest inner product.
    sim.ok(
        "POST",
        "/collections/b/vectors",
        r#"{"vectors":[[1,0,0,0],[2,0,0,0]],"ids":["1","2"]}"#,
    )
    .await;
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":[]}}"#,
    )
    .await;
    let r = sim
        .ok(
            "PUT",
            "/collections/b/vectors",
            r#"{"search":{"topk":2,"params":{},"vectors":[[1,0,0,0]]}}"#,
        )
        .await;
    assert_eq!(r["result"][0][0]["id"], "2");
    assert_eq!(r["result"][0][0]["distance"], 2.0);

    let stat = sim.ok("GET", "/collections/a?info=stat", "").await;
    assert_eq!(stat["row_count"], 21);
    assert_eq!(stat["partitions"][0]["tag"], "_default");
    assert_eq!(stat["partitions"][1]["tag"], "p1");
    let seg = &stat["partitions"][1]["segments"][0];
    assert_eq!(seg["row_count"], 20);
    assert_eq!(seg["data_size"], 20 * (4 * 4 + 8));
    assert_eq!(seg["index_name"], "IDMAP");
    let segs = sim.ok("GET", "/collections/a/segments", "").await;
    assert_eq!(segs["count"], 2);
    let name = seg["name"].as_str().unwrap();
    let ids = sim
        .ok(
            "GET",
            &format!("/collections/a/segments/{name}/ids?page_size=100"),
            "",
        )
        .await;
    assert_eq!(ids["count"], 20);
    assert_eq!(ids["ids"][19], "119");
    let ok = sim
        .ok(
            "PUT",
            "/system/task",
            r#"{"compact":{"collection_name":"a"}}"#,
        )
        .await;
    assert_eq!(ok["code"], 0);
    sim.ok("PUT", "/system/task", r#"{"load":{"collection_name":"a"}}"#)
        .await;

    // Drop partition and collection are soft deletes.
    let (s, _) = sim
        .call(
            "DELETE",
            "/collections/a/partitions",
            Some(r#"{"partition_tag":"p1"}"#),
        )
        .await;
    assert_eq!(s, 204);
    let p1 = db.partitions_tagged("a", "p1").await.unwrap();
    assert_eq!(p1[0].state, TableState::ToDelete);
    let (s, _) = sim.call("DELETE", "/collections/a", None).await;
    assert_eq!(s, 204);
    assert_eq!(
        db.collection("a").await.unwrap().unwrap().state,
        TableState::ToDelete
    );
    assert!(
        files_of(&db, "a")
            .await
            .iter()
            .all(|f| f.file_type == FileType::ToDelete)
    );
    let (s, body) = sim.call("GET", "/collections/a", None).await;
    assert_error(s, &body, 404, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_milvus_error_json() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(&url, &dir.path().join("storage"), &[]).await;
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"c","dimension":8}"#,
    )
    .await;

    let (s, b) = sim.call("POST", "/collections", Some("{not json")).await;
    assert_error(s, &b, 400, 36);
    let (s, b) = sim
        .call("POST", "/collections", Some(r#"{"dimension":8}"#))
        .await;
    assert_error(s, &b, 400, 34);
    let (s, b) = sim
        .call(
            "POST",
            "/collections",
            Some(r#"{"collection_name":"d","dimension":"x"}"#),
        )
        .await;
    assert_error(s, &b, 400, 35);
    let (s, b) = sim
        .call(
            "POST",
            "/collections",
            Some(r#"{"collection_name":"d","dimension":0}"#),
        )
        .await;
    assert_error(s, &b, 400, 7);
    let (s, b) = sim
        .call(
            "POST",
            "/collections",
            Some(r#"{"collection_name":"1bad","dimension":8}"#),
        )
        .await;
    assert_error(s, &b, 400, 9);
    let (s, b) = sim
        .call(
            "POST",
            "/collections",
            Some(r#"{"collection_name":"d","dimension":8,"metric_type":"COSINE"}"#),
        )
        .await;
    assert_error(s, &b, 400, 23);
    let (s, b) = sim
        .call(
            "POST",
            "/collections",
            Some(r#"{"collection_name":"c","dimension":8}"#),
        )
        .await;
    assert_error(s, &b, 400, 1);

    let (s, b) = sim.call("GET", "/collections/nope", None).await;
    assert_error(s, &b, 404, 4);
    let (s, b) = sim
        .call(
            "POST",
            "/collections/nope/vectors",
            Some(r#"{"vectors":[[1,2,3,4,5,6,7,8]]}"#),
        )
        .await;
    assert_error(s, &b, 404, 4);
    let (s, b) = sim
        .call(
            "POST",
            "/collections/c/vectors",
            Some(r#"{"partition_tag":"nope","vectors":[[1,2,3,4,5,6,7,8]]}"#),
        )
        .await;
    assert_error(s, &b, 404, 4);
    let (s, b) = sim
        .call(
            "POST",
            "/collections/c/vectors",
            Some(r#"{"vectors":[[1,2,3]]}"#),
        )
        .await;
    assert_error(s, &b, 400, 7);
    let (s, b) = sim
        .call(
            "PUT",
            "/collections/c/vectors",
            Some(r#"{"search":{"topk":1,"params":{},"vectors":[[1,2]]}}"#),
        )
        .await;
    assert_error(s, &b, 400, 7);
    let (s, b) = sim
        .call(
            "PUT",
            "/collections/c/vectors",
            Some(r#"{"search":{"vectors":[[1,2]]}}"#),
        )
        .await;
    assert_error(s, &b, 400, 34);
    let (s, b) = sim
        .call(
            "PUT",
            "/collections/c/vectors",
            Some(r#"{"delete":{"ids":[1]}}"#),
        )
        .await;
    assert_error(s, &b, 400, 35);

    let (s, b) = sim
        .call(
            "POST",
            "/collections/c/indexes",
            Some(r#"{"index_type":"NOPE","params":{}}"#),
        )
        .await;
    assert_error(s, &b, 400, 8);
    let (s, b) = sim
        .call(
            "POST",
            "/collections/c/indexes",
            Some(r#"{"index_type":"IVFPQ","params":{"m":3,"nlist":16}}"#),
        )
        .await;
    assert_error(s, &b, 400, 7);
    let (s, b) = sim
        .call(
            "POST",
            "/collections/c/indexes",
            Some(r#"{"index_type":"IVFFLAT","params":{"nlist":0}}"#),
        )
        .await;
    assert_error(s, &b, 400, 5);
    let (s, b) = sim
        .call(
            "POST",
            "/collections/c/indexes",
            Some(r#"{"index_type":"HNSW","params":{}}"#),
        )
        .await;
    assert_error(s, &b, 400, 5);
    let (s, b) = sim
        .call(
            "DELETE",
            "/collections/c/partitions",
            Some(r#"{"partition_tag":"_default"}"#),
        )
        .await;
    assert_error(s, &b, 400, 5);
    let (s, b) = sim
        .call("PUT", "/system/task", Some(r#"{"explode":{}}"#))
        .await;
    assert_error(s, &b, 400, 35);
    let (s, b) = sim.call("GET", "/collections?page_size=x", None).await;
    assert_error(s, &b, 400, 37);
    let (s, b) = sim.call("GET", "/no/such/path", None).await;
    assert_eq!(s, 404, "{b}");
    // The server is still up.
    assert_eq!(sim.ok("GET", "/system/version", "").await["reply"], "1.1.1");
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_writes_identical_segments_on_identical_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut contents = Vec::new();
    for run in ["a", "b"] {
        let url = test_support::sqlite_url(dir.path(), &format!("{run}.sqlite"));
        let storage = dir.path().join(run);
        let args = [
            "--collection",
            "c",
            "--days",
            "2",
            "--rows-per-day",
            "300",
            "--dim",
            "16",
            "--first-day",
            "2024-05-01",
            "--tag-format",
            "p_%Y%m%d",
        ];
        let out = support::seed(&url, &storage, &args);
        assert!(
            out.contains("2 partitions, 2 files, 600 rows, 43200 bytes"),
            "{out}"
        );
        let db = MetaDb::connect(&url).await.unwrap();
        let tags: Vec<String> = db
            .partitions("c")
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.partition_tag)
            .collect();
        assert_eq!(tags, ["p_20240501", "p_20240502"]);
        let mut bytes = Vec::new();
        for f in files_of(&db, "c").await {
            let seg = storage
                .join("db/tables")
                .join(&f.table_id)
                .join(&f.segment_id);
            for ext in ["rv", "uid"] {
                bytes.push(std::fs::read(seg.join(format!("{}.{ext}", f.file_id))).unwrap());
            }
        }
        contents.push(bytes);
    }
    assert_eq!(contents[0], contents[1]);
}

/// `ValidationUtil::ValidateResultSize`: a search whose result (nq × topk × 12 bytes) would
/// reach 2 GB − 1 MB is refused before anything is read (code 10), even on an empty
/// collection; one query vector fewer is accepted.
#[tokio::test(flavor = "multi_thread")]
async fn search_refuses_a_result_over_the_rpc_limit_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(&url, &dir.path().join("storage"), &[]).await;
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"big_nq","dimension":2,"index_file_size":1}"#,
    )
    .await;
    // (2 GB − 1 MB) / (16384 × 12) = 10917.3
    let search = |nq: usize| {
        json!({"search": {"topk": 16384, "params": {}, "vectors": vec![[1.0, 2.0]; nq]}})
            .to_string()
    };
    let (s, b) = sim
        .call("PUT", "/collections/big_nq/vectors", Some(&search(10918)))
        .await;
    assert_error(s, &b, 400, 10);
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("nq 10918 topk 16384"),
        "{b}"
    );
    let (s, b) = sim
        .call("PUT", "/collections/big_nq/vectors", Some(&search(10917)))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["num"], 0, "{b}");
}

/// `DBImpl::GetVectorsByID`: ids are looked up in RAW, TO_INDEX and BACKUP files of the
/// collection or of the partition asked for; when there is none, the answer is
/// DB_NOT_FOUND "Collection or partition is empty" (web code 4), not an empty list.
#[tokio::test(flavor = "multi_thread")]
async fn get_vectors_from_an_empty_partition_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(&url, &dir.path().join("storage"), &[]).await;
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"g","dimension":4,"index_file_size":1}"#,
    )
    .await;
    sim.ok(
        "POST",
        "/collections/g/partitions",
        r#"{"partition_tag":"empty"}"#,
    )
    .await;
    let (s, b) = sim.call("GET", "/collections/g/vectors?ids=1", None).await;
    assert_error(s, &b, 404, 4);
    sim.ok(
        "POST",
        "/collections/g/vectors",
        r#"{"vectors":[[1,2,3,4],[5,6,7,8]],"ids":["1","2"]}"#,
    )
    .await;
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":["g"]}}"#,
    )
    .await;
    let (s, b) = sim
        .call(
            "GET",
            "/collections/g/vectors?ids=1&partition_tag=empty",
            None,
        )
        .await;
    assert_error(s, &b, 404, 4);
    assert!(b["message"].as_str().unwrap().contains("empty"), "{b}");
    let v = sim.ok("GET", "/collections/g/vectors?ids=2", "").await;
    assert_eq!(
        v["vectors"][0]["vector"],
        json!([5.0, 6.0, 7.0, 8.0]),
        "{v}"
    );
}

/// `XSearchTask::Execute`: on files searched by IDMAP (raw files, FLAT), a `metric_type` in the
/// search params replaces the collection's metric: IP ranks by inner product; a binary metric
/// on a float collection is refused (code 5) as "Illegal metric type".
#[tokio::test(flavor = "multi_thread")]
async fn search_params_metric_type_replaces_the_metric_on_flat_files() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(&url, &dir.path().join("storage"), &[]).await;
    sim.ok(
        "POST",
        "/collections",
        r#"{"collection_name":"m","dimension":2,"index_file_size":1,"metric_type":"L2"}"#,
    )
    .await;
    sim.ok(
        "POST",
        "/collections/m/vectors",
        r#"{"vectors":[[1,0],[10,10]],"ids":["1","2"]}"#,
    )
    .await;
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":["m"]}}"#,
    )
    .await;
    let search = |params: Value| {
        json!({"search": {"topk": 2, "params": params, "vectors": [[1.0, 0.0]]}}).to_string()
    };
    let hits = |v: &Value| -> Vec<(String, f64)> {
        v["result"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["id"].as_str().unwrap().to_string(),
                    h["distance"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let l2 = sim
        .ok("PUT", "/collections/m/vectors", &search(json!({})))
        .await;
    assert_eq!(
        hits(&l2),
        [("1".to_string(), 0.0), ("2".to_string(), 181.0)]
    );
    let ip = sim
        .ok(
            "PUT",
            "/collections/m/vectors",
            &search(json!({"metric_type": 2})),
        )
        .await;
    assert_eq!(hits(&ip), [("2".to_string(), 10.0), ("1".to_string(), 1.0)]);
    let (s, b) = sim
        .call(
            "PUT",
            "/collections/m/vectors",
            Some(&search(json!({"metric_type": 3}))),
        )
        .await;
    assert_error(s, &b, 400, 5);
}

/// `CmdRequest::OnExecute` through `WebRequestHandler::SystemInfo`: `status` answers "OK",
/// `mode` "CPU", `info` is `get_system_info`, and any other command is answered, not
/// refused: code 0 with the reply "Unknown command".
#[tokio::test(flavor = "multi_thread")]
async fn system_commands_answer_as_cmd_request_does() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = start(&url, &dir.path().join("storage"), &[]).await;
    for (cmd, want) in [
        ("version", "1.1.1"),
        ("status", "OK"),
        ("mode", "CPU"),
        ("rm%20-rf%20test", "Unknown command"),
        ("lalala", "Unknown command"),
    ] {
        let (s, b) = sim.call("GET", &format!("/system/{cmd}"), None).await;
        assert_eq!(s, 200, "{cmd}: {b}");
        assert_eq!(b["code"], 0, "{cmd}: {b}");
        assert_eq!(b["reply"], want, "{cmd}: {b}");
    }
    let (s, b) = sim.call("GET", "/system/info", None).await;
    assert_eq!(s, 200, "{b}");
    let info: Value = serde_json::from_str(b["reply"].as_str().unwrap()).unwrap();
    assert!(info.is_object(), "{info}");
}
