//! `milvus-tier migrate` over what a real Milvus 1.1.1 short-term holds beyond plain inserts:
//! rows deleted by id (`deleted_docs` offsets, lowered `row_count`), a missing `deleted_docs`,
//! and binary-vector collections. Long-term answers are compared with short-term's through
//! `milvus-sim` nodes serving each side read-only.

use crate::common;

use common::cluster::*;
use milvus_tier::meta::{FileType, MetaDb};
use serde_json::{Value, json};

/// First vector id of `day` as `milvus-sim seed` numbers them.
fn first_id(day: &str) -> i64 {
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    (d - epoch).num_days() * 10_000_000
}

/// Sum of `row_count` over the searchable files of the partitions tagged `tag` (any tag
/// when `None`) of `collection`.
async fn live_rows(db: &MetaDb, collection: &str, tag: Option<&str>) -> i64 {
    let parts: Vec<String> = db
        .partitions(collection)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| tag.is_none_or(|t| p.partition_tag == t))
        .map(|p| p.table_id)
        .collect();
    db.files(&parts, &[FileType::Raw, FileType::ToIndex, FileType::Index])
        .await
        .unwrap()
        .iter()
        .map(|f| f.row_count)
        .sum()
}

/// Hit ids of one search on a node.
fn search_ids(url: &str, collection: &str, body: Value) -> Vec<i64> {
    let r = reqwest::blocking_put(
        &format!("{url}/collections/{collection}/vectors"),
        &json!({ "search": body }),
    )
    .unwrap();
    r["result"][0]
        .as_array()
        .unwrap_or_else(|| panic!("search answer {r}"))
        .iter()
        .map(|h| h["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn delete_ids(c: &Cluster, tag: &str, ids: &str) {
    sim_cmd(&[
        "delete",
        "--meta",
        &c.short_url,
        "--storage",
        c.storage("short").to_str().unwrap(),
        "--collection",
        COLL_SHORT,
        "--tag",
        tag,
        "--ids",
        ids,
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_rows_leave_long_term_agreeing_with_short_term() {
    let c = cluster();
    let (day, tag) = ("2026-11-20", "day_2026-11-20");
    let first = first_id(day);
    // 1 000 ids across the first two 2 000-row segments.
    let (gone_from, gone_to) = (first + 1500, first + 2500);
    delete_ids(&c, tag, &format!("{gone_from}..{gone_to}"));
    let short = MetaDb::connect(&c.short_url).await.unwrap();
    assert_eq!(live_rows(&short, COLL_SHORT, Some(tag)).await, 5000);

    let (o, json) = c.migrate(&["--date", day]);
    assert!(
        o.status.success(),
        "{}\n{json:#}",
        String::from_utf8_lossy(&o.stderr)
    );
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    assert_eq!(live_rows(&long, COLL_LONG, None).await, 5000);

    let short_node = Sim::start(&c.short_url, &c.storage("short"), "ro", &[]);
    let long_node = Sim::start(&c.long_url, &c.storage("long"), "ro", &[]);
    let count = |url: &str, coll: &str| -> i64 {
        let body = reqwest::blocking_get(&format!("{url}/collections/{coll}?info=stat")).unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["tag"] != "day_2026-11-21")
            .map(|p| p["row_count"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(count(&short_node.url, COLL_SHORT), 5000);
    assert_eq!(count(&long_node.url, COLL_LONG), 5000);
    let query = vec![vec![0.5f32; DIM]];
    let short_hits = search_ids(
        &short_node.url,
        COLL_SHORT,
        json!({"topk": 200, "params": {}, "vectors": query, "partition_tags": [tag]}),
    );
    let long_hits = search_ids(
        &long_node.url,
        COLL_LONG,
        json!({"topk": 200, "params": {"nprobe": 16}, "vectors": query}),
    );
    assert_eq!(short_hits.len(), 200);
    assert_eq!(long_hits, short_hits);
    assert!(
        long_hits
            .iter()
            .all(|id| !(gone_from..gone_to).contains(id)),
        "a deleted id came back: {long_hits:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_deleted_docs_is_bad_input_naming_the_folder() {
    let c = cluster();
    let short = MetaDb::connect(&c.short_url).await.unwrap();
    let part = short
        .partitions_tagged(COLL_SHORT, "day_2026-11-20")
        .await
        .unwrap()
        .remove(0);
    let f = short
        .files(std::slice::from_ref(&part.table_id), &[FileType::Raw])
        .await
        .unwrap()
        .remove(0);
    let dir = c
        .storage("short")
        .join("db/tables")
        .join(&f.table_id)
        .join(&f.segment_id);
    std::fs::remove_file(dir.join("deleted_docs")).unwrap();
    let (o, _) = c.migrate(&["--date", "2026-11-20"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&dir.display().to_string()) && err.contains("deleted_docs"),
        "{err}"
    );
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    assert!(long.partitions(COLL_LONG).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_vector_collection_migrates() {
    let c = cluster_metric(1, "JACCARD", "IVF_FLAT", r#"{"nlist":16}"#);
    let (day, tag) = ("2026-11-20", "day_2026-11-20");
    let first = first_id(day);
    delete_ids(&c, tag, &format!("{first}..{}", first + 100));
    let (o, json) = c.migrate(&["--date", day]);
    assert!(
        o.status.success(),
        "{}\n{json:#}",
        String::from_utf8_lossy(&o.stderr)
    );
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    assert_eq!(live_rows(&long, COLL_LONG, None).await, 5900);
    let short_node = Sim::start(&c.short_url, &c.storage("short"), "ro", &[]);
    let long_node = Sim::start(&c.long_url, &c.storage("long"), "ro", &[]);
    // DIM bits = DIM / 8 bytes per vector.
    let query = vec![vec![0b1010_0110u8; DIM / 8]];
    let body = json!({"topk": 50, "params": {"nprobe": 16}, "vectors": query});
    let short_hits = search_ids(&short_node.url, COLL_SHORT, body.clone());
    let long_hits = search_ids(&long_node.url, COLL_LONG, body);
    assert_eq!(short_hits.len(), 50);
    assert_eq!(long_hits, short_hits);
    assert!(long_hits.iter().all(|id| *id >= first + 100));
}
