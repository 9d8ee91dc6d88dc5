//! The archive drill: five days migrated with an S3 backup (moto), the three oldest
//! archived (rows at once, folders by gc after the grace), a fourth kept because one byte
//! of its backup changed, an archived day restored identical and found again by a search
//! on a read-only node; status follows each day's phase.

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::cluster::*;
use common::ops::block_text;
use common::s3;
use milvus_tier::meta::{FileType, MetaDb};
use serde_json::Value;
use test_support::{Moto, SlackServer};

const DAYS: [&str; 5] = [
    "2026-11-20",
    "2026-11-21",
    "2026-11-22",
    "2026-11-23",
    "2026-11-24",
];

/// Long-term rows of a day (without generated ids) and the BLAKE3 of every file of its
/// segment folders, by path under db/tables.
async fn snapshot(c: &Cluster, day: &str) -> (Vec<String>, BTreeMap<String, String>, Vec<PathBuf>) {
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let parts = long
        .partitions_tagged(COLL_LONG, &format!("day_{day}"))
        .await
        .unwrap();
    let ids: Vec<String> = parts.iter().map(|p| p.table_id.clone()).collect();
    let files = long.files(&ids, &[]).await.unwrap();
    let mut rows: Vec<String> = parts
        .iter()
        .map(|p| {
            format!(
                "{:?}",
                milvus_tier::meta::TableRow {
                    id: 0,
                    created_on: 0,
                    ..p.clone()
                }
            )
        })
        .chain(files.iter().map(|f| {
            format!(
                "{} {} {} {} {} {}",
                f.table_id, f.segment_id, f.file_id, f.file_type, f.row_count, f.file_size
            )
        }))
        .collect();
    rows.sort();
    let mut sums = BTreeMap::new();
    let mut folders = Vec::new();
    for f in &files {
        let seg = c
            .storage("long")
            .join("db/tables")
            .join(&f.table_id)
            .join(&f.segment_id);
        if folders.contains(&seg) {
            continue;
        }
        for e in std::fs::read_dir(&seg).unwrap() {
            let p = e.unwrap().path();
            sums.insert(
                format!(
                    "{}/{}/{}",
                    f.table_id,
                    f.segment_id,
                    p.file_name().unwrap().to_string_lossy()
                ),
                blake3_file(&p),
            );
        }
        folders.push(seg);
    }
    long.close().await;
    (rows, sums, folders)
}

fn phase<'a>(json: &'a Value, day: &str) -> &'a Value {
    &json["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["day"] == day)
        .unwrap()["phase"]
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_drill_three_days_out_one_kept_one_restored() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    s3::create_bucket(&ep, "arch").await;
    let mut c = cluster_days(5);
    c.env = s3::aws_env();
    let slack = SlackServer::start();
    for (k, v) in common::ops::slack_bot_env(&slack.api_url()) {
        c.env.push((k.to_string(), v));
    }
    c.set_backup(&s3::backup_toml("arch", "bk", &ep));
    let (o, json) = c.migrate(&["--from", DAYS[0], "--to", DAYS[4]]);
    assert!(o.status.success(), "{json:#}");
    let mut before = BTreeMap::new();
    for d in DAYS {
        before.insert(d, snapshot(&c, d).await);
    }

    // A byte of one backup object of day 23 flipped: only a deep verify sees it.
    let client = s3::client(&ep).await;
    let key = s3::keys(&ep, "arch", &format!("bk/{COLL_LONG}/{}/files/", DAYS[3]))
        .await
        .into_iter()
        .next()
        .unwrap();
    let mut body = s3::get(&client, "arch", &key).await;
    let last = body.len() - 1;
    body[last] ^= 0x01;
    s3::put(&client, "arch", &key, body).await;

    // Days older than 11 days today (2026-12-05 or later): 20..23 are due; 24 is not.
    let age = |d: &str| {
        (chrono::Utc::now().date_naive() - d.parse::<chrono::NaiveDate>().unwrap()).num_days()
    };
    let older_than = (age(DAYS[3]) - 1).to_string();
    let (o, dry) = c.run("archive", &["--older-than", &older_than, "--dry-run"], &[]);
    assert_eq!(o.status.code(), Some(5), "{dry:#}");
    assert_eq!(dry["archived"].as_array().unwrap().len(), 3, "{dry:#}");
    assert_eq!(
        snapshot(&c, DAYS[0]).await,
        before[DAYS[0]],
        "dry run changed nothing"
    );

    let (o, json) = c.run("archive", &["--older-than", &older_than], &[]);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    let archived: Vec<&str> = json["archived"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["day"].as_str().unwrap())
        .collect();
    assert_eq!(archived, DAYS[..3].to_vec(), "{json:#}");
    assert_eq!(json["archived"][0]["rows"], 6000);
    assert_eq!(json["kept"][0]["day"], DAYS[3], "{json:#}");
    let reason = json["kept"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("object_mismatch") && reason.contains(&key),
        "{reason}"
    );
    let reqs = slack.requests();
    let text = block_text(&reqs.last().unwrap().body);
    assert!(
        text.contains("DAYS KEPT") && text.contains(DAYS[3]) && text.contains(DAYS[0]),
        "{text}"
    );

    // Rows of the three days gone at once; folders still there; days 23 and 24 untouched.
    for d in &DAYS[..3] {
        let (rows, _, _) = snapshot(&c, d).await;
        assert!(rows.is_empty(), "{d}: {rows:?}");
        for f in &before[d].2 {
            assert!(f.is_dir(), "{} removed before the grace", f.display());
        }
    }
    for d in &DAYS[3..] {
        assert_eq!(snapshot(&c, d).await, before[d], "{d} untouched");
    }
    let (_, st) = c.run("status", &["--from", DAYS[0], "--to", DAYS[4]], &[]);
    assert_eq!(phase(&st, DAYS[0]), "archived", "{st:#}");
    assert_eq!(phase(&st, DAYS[3]), "backed_up", "{st:#}");

    // gc inside the archive grace keeps the folders; after it, removes them.
    let (o, g) = c.run("gc", &["--grace-hours", "0"], &[]);
    assert!(o.status.success(), "{g:#}");
    for f in &before[DAYS[0]].2 {
        assert!(
            f.is_dir(),
            "{} removed inside the archive grace",
            f.display()
        );
    }
    let (o, g) = c.run(
        "gc",
        &["--grace-hours", "0"],
        &[("MILVUS_TIER_ARCHIVE__GRACE_HOURS", "0")],
    );
    assert!(o.status.success(), "{g:#}");
    for d in &DAYS[..3] {
        for f in &before[d].2 {
            assert!(!f.exists(), "{} left after the grace", f.display());
        }
    }
    for d in &DAYS[3..] {
        assert_eq!(snapshot(&c, d).await, before[d], "{d} untouched by gc");
    }

    // Restore an archived day: rows and files as before; verify makes it verified again.
    let (o, r) = c.run("restore", &["--date", DAYS[1]], &[]);
    assert!(o.status.success(), "{r:#}");
    let after = snapshot(&c, DAYS[1]).await;
    assert_eq!(after.0, before[DAYS[1]].0, "rows identical");
    assert_eq!(after.1, before[DAYS[1]].1, "file checksums identical");
    let (o, v) = c.run("verify", &["--date", DAYS[1]], &[]);
    assert_eq!(o.status.code(), Some(0), "{v:#}");
    let (_, st) = c.run("status", &["--from", DAYS[0], "--to", DAYS[4]], &[]);
    assert_eq!(phase(&st, DAYS[1]), "verified", "{st:#}");
    assert_eq!(phase(&st, DAYS[0]), "archived", "{st:#}");

    // A read-only node finds the restored day's vectors again.
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let part = long
        .partitions_tagged(COLL_LONG, &format!("day_{}", DAYS[1]))
        .await
        .unwrap()
        .remove(0);
    let f = long
        .files(std::slice::from_ref(&part.table_id), &[FileType::Backup])
        .await
        .unwrap()
        .remove(0);
    long.close().await;
    let ro = Sim::start(&c.long_url, &c.storage("long"), "ro", &[]);
    let seg = c
        .storage("long")
        .join("db/tables")
        .join(&f.table_id)
        .join(&f.segment_id);
    let rv = std::fs::read(seg.join(format!("{}.rv", f.file_id))).unwrap();
    let uid = std::fs::read(seg.join(format!("{}.uid", f.file_id))).unwrap();
    let row = 77;
    let vector: Vec<f32> = (0..DIM)
        .map(|i| f32::from_le_bytes(rv[8 + (row * DIM + i) * 4..][..4].try_into().unwrap()))
        .collect();
    let id = i64::from_le_bytes(uid[8 + row * 8..][..8].try_into().unwrap());
    let res = reqwest::blocking_put(
        &format!("{}/collections/{COLL_LONG}/vectors", ro.url),
        &serde_json::json!({"search": {"topk": 1, "partition_tags": [part.partition_tag], "vectors": [vector], "params": {"nprobe": 16}}}),
    )
    .unwrap();
    assert_eq!(
        res["result"][0][0]["id"].as_str(),
        Some(id.to_string().as_str()),
        "{res}"
    );
    drop(ro);
}

#[test]
fn archive_needs_a_backup_target() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::ops::ops_config(dir.path(), "http://127.0.0.1:9", "");
    let o = common::ops::tier(&config, &["archive", "--dry-run"], &[]);
    let (_, err) = common::ops::texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("[backup]"), "{err}");
}
