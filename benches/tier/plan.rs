//! `migrate --dry-run` (the whole process) for a day of 10 000 file rows in MariaDB.

use std::path::Path;
use std::time::Instant;

use milvus_tier::meta::{
    EngineType, FileRow, FileType, MetaDb, MetricType, MilvusDate, TableRow, TableState, WriteMode,
};
use test_support::MariaDb;

use crate::measure::{median, rm};
use crate::results::Row;
use crate::sim::{migrate_cmd, sqlite, write_tier_config};
use crate::{DAY, MIB};

/// Median wall time of `migrate --dry-run` (the whole process) for a day of 10 000 file
/// rows in MariaDB.
pub(crate) async fn bench_plan_10k(w: &Path, runs: usize) -> f64 {
    let db = MariaDb::start();
    let (short_url, long_url) = (db.database("short"), db.database("long"));
    let short = MetaDb::connect(&short_url).await.expect("short");
    let long = MetaDb::connect(&long_url).await.expect("long");
    short.install_milvus_schema().await.expect("schema");
    long.install_milvus_schema().await.expect("schema");
    let coll = |name: &str| TableRow {
        id: 0,
        table_id: name.into(),
        state: TableState::Normal,
        dimension: 4,
        created_on: 1_764_000_000_000_000,
        flag: 0,
        index_file_size: 256 * MIB as i64,
        engine_type: EngineType::Flat,
        index_params: "{}".into(),
        metric_type: MetricType::L2,
        owner_table: String::new(),
        partition_tag: String::new(),
        version: Some("1.1.1".into()),
        flush_lsn: 0,
    };
    let part = TableRow {
        table_id: "p_live_20261120".into(),
        owner_table: "live".into(),
        partition_tag: "day_2026-11-20".into(),
        ..coll("live")
    };
    let storage = w.join("plan10k");
    let date = MilvusDate::from_day(DAY.parse().expect("day"));
    let files: Vec<FileRow> = (0..10_000)
        .map(|i| {
            let id = format!("{}", 1_700_000_000_000_000_000u64 + i);
            FileRow {
                id: 0,
                table_id: part.table_id.clone(),
                segment_id: id.clone(),
                engine_type: EngineType::Flat,
                file_id: id,
                file_type: FileType::Raw,
                file_size: 16 + 8,
                row_count: 1,
                updated_time: 0,
                created_on: 0,
                date,
                flush_lsn: 0,
            }
        })
        .collect();
    for f in &files {
        let d = storage
            .join("db/tables")
            .join(&f.table_id)
            .join(&f.segment_id);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join(format!("{}.rv", f.file_id)), [0u8; 8 + 16]).expect("rv");
        std::fs::write(d.join(format!("{}.uid", f.file_id)), [0u8; 8 + 8]).expect("uid");
        // No row deleted: the 8-byte length header of an empty offset list (Milvus cannot
        // load a segment without deleted_docs, and milvus-tier refuses one).
        std::fs::write(d.join("deleted_docs"), 0u64.to_le_bytes()).expect("deleted_docs");
    }
    short
        .write_rows(&[coll("live"), part], &files, WriteMode::InsertIfAbsent)
        .await
        .expect("rows");
    long.write_rows(&[coll("archive")], &[], WriteMode::InsertIfAbsent)
        .await
        .expect("rows");
    // milvus-tier never creates a storage path: they must exist, as Milvus storage paths.
    for d in ["plan10k-long/db/tables", "plan10k-local/db/tables"] {
        std::fs::create_dir_all(w.join(d)).expect("mkdir");
    }
    let cfg = w.join("plan10k.toml");
    let no_password = |url: &str| url.replace(&format!(":{}@", test_support::PASSWORD), "@");
    write_tier_config(
        &cfg,
        [
            (&no_password(&short_url), &storage),
            (&no_password(&long_url), &w.join("plan10k-long")),
            (&sqlite(w, "plan10k-local.sqlite"), &w.join("plan10k-local")),
        ],
        // A dry run never calls the engine.
        "http://127.0.0.1:9",
        "",
    );
    let mut v = Vec::new();
    for _ in 0..runs.max(3) {
        let mut c = migrate_cmd(&cfg, &["migrate", "--date", DAY, "--dry-run", "--json"]);
        for s in ["SHORT_TERM", "LONG_TERM"] {
            c.env(
                format!("MILVUS_TIER_{s}__META_PASSWORD"),
                test_support::PASSWORD,
            );
        }
        let t = Instant::now();
        let o = c.output().expect("migrate --dry-run");
        v.push(t.elapsed().as_secs_f64());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(
            json["days"][0]["plan"]["input_files"]
                .as_array()
                .map(Vec::len),
            Some(10_000)
        );
    }
    rm(&storage);
    median(v)
}

/// The row of the dry-run plan of a day with 10 000 file rows in MariaDB.
pub(crate) async fn plan_row(w: &Path, runs: usize) -> Row {
    let plan_s = bench_plan_10k(w, runs).await;
    Row {
        what: "`migrate --dry-run` plan, 10 000 file rows in MariaDB (whole process)".into(),
        baseline: "—".into(),
        base_s: None,
        ours_s: plan_s,
        figure: format!("{plan_s:.2} s"),
        target: "< 1 s".into(),
        met: plan_s < 1.0,
    }
}
