//! `status` over a year: 365 published, backed up and verified days of long-term metadata
//! in MariaDB (partition and file rows, journal rows), against `status` of one day of the
//! same database in the same run (process start and connections, the fixed cost).

use std::time::Instant;

use milvus_tier::day::Day;
use milvus_tier::journal::{Entry, Journal, State, Step};
use milvus_tier::lifecycle::record::{self, Record};
use milvus_tier::meta::{
    EngineType, FileRow, FileType, MetaDb, MetricType, MilvusDate, TableRow, TableState, WriteMode,
};
use test_support::MariaDb;

/// Days of long-term metadata.
pub const DAYS: u64 = 365;
const LAST: &str = "2026-11-20";

fn coll(name: &str) -> TableRow {
    TableRow {
        id: 0,
        table_id: name.into(),
        state: TableState::Normal,
        dimension: 128,
        created_on: 1_764_000_000_000_000,
        flag: 0,
        index_file_size: 4096 << 20,
        engine_type: EngineType::IvfPq,
        index_params: "{}".into(),
        metric_type: MetricType::L2,
        owner_table: String::new(),
        partition_tag: String::new(),
        version: Some("1.1.1".into()),
        flush_lsn: 0,
    }
}

/// Seed `DAYS` days ending at 2026-11-20 (one partition, one INDEX file and its BACKUP raw
/// file per day; journal rows of the four steps and a verify), then time `status` of the
/// whole range and of one day, `runs` times each. Returns (one day s, year s) medians.
pub async fn bench(w: &std::path::Path, runs: usize) -> (f64, f64) {
    let db = MariaDb::start();
    let (short_url, long_url) = (db.database("short"), db.database("long"));
    let short = MetaDb::connect(&short_url).await.expect("short");
    let long = MetaDb::connect(&long_url).await.expect("long");
    short.install_milvus_schema().await.expect("schema");
    long.install_milvus_schema().await.expect("schema");
    short
        .write_rows(&[coll("live")], &[], WriteMode::InsertIfAbsent)
        .await
        .expect("rows");
    let last: Day = LAST.parse().expect("day");
    let first = Day(last.0 - chrono::Days::new(DAYS - 1));
    let days = Day::range(first, last).expect("range");
    let mut tables = vec![coll("archive")];
    let mut files = Vec::new();
    for (i, d) in days.iter().enumerate() {
        let table_id = format!("{}", 1_700_000_000_000_000_000u64 + i as u64 * 1000);
        tables.push(TableRow {
            table_id: table_id.clone(),
            owner_table: "archive".into(),
            partition_tag: format!("day_{d}"),
            ..coll("archive")
        });
        for (n, ft) in [(1, FileType::Index), (2, FileType::Backup)] {
            let id = format!("{}", 1_700_000_000_000_000_000u64 + i as u64 * 1000 + n);
            files.push(FileRow {
                id: 0,
                table_id: table_id.clone(),
                segment_id: id.clone(),
                engine_type: EngineType::IvfPq,
                file_id: id,
                file_type: ft,
                file_size: 1 << 30,
                row_count: 1_000_000,
                updated_time: 0,
                created_on: 0,
                date: MilvusDate::from_day(d.0),
                flush_lsn: 0,
            });
        }
    }
    long.write_rows(&tables, &files, WriteMode::InsertIfAbsent)
        .await
        .expect("rows");
    let journal = Journal::open(&long).await.expect("journal");
    let t0 = 1_764_000_000_000_000i64;
    for d in &days {
        for step in [Step::Stage, Step::Build, Step::Publish, Step::Backup] {
            journal
                .put(&Entry {
                    collection: "archive".into(),
                    day: d.to_string(),
                    step,
                    state: State::Done,
                    run_id: "bench".into(),
                    started_at: t0,
                    updated_at: t0 + 1,
                    finished_at: Some(t0 + 1),
                    files: 2,
                    rows: 1_000_000,
                    bytes: 2 << 30,
                    checksum_digest: String::new(),
                    detail: None,
                })
                .await
                .expect("journal");
        }
        record::put(
            &long,
            &Record {
                collection: "archive",
                day: *d,
                step: record::VERIFY,
                state: "done",
                run_id: "bench",
                started_at: t0 + 2,
                finished_at: t0 + 3,
                files: 2,
                rows: 0,
                bytes: 0,
                detail: None,
            },
        )
        .await
        .expect("verify row");
    }
    // milvus-tier never creates a storage path: they must exist, as Milvus storage paths.
    for d in [
        "status-short/db/tables",
        "status-long/db/tables",
        "status-local/db/tables",
    ] {
        std::fs::create_dir_all(w.join(d)).expect("mkdir");
    }
    let cfg = w.join("status365.toml");
    let no_password = |url: &str| url.replace(&format!(":{}@", test_support::PASSWORD), "@");
    crate::sim::write_tier_config(
        &cfg,
        [
            (&no_password(&short_url), &w.join("status-short")),
            (&no_password(&long_url), &w.join("status-long")),
            (
                &crate::sim::sqlite(w, "status-local.sqlite"),
                &w.join("status-local"),
            ),
        ],
        "http://127.0.0.1:9",
        "",
    );
    let time = |args: &[&str], expect_days: usize| {
        let mut c = crate::sim::migrate_cmd(&cfg, args);
        for s in ["SHORT_TERM", "LONG_TERM"] {
            c.env(
                format!("MILVUS_TIER_{s}__META_PASSWORD"),
                test_support::PASSWORD,
            );
        }
        let t = Instant::now();
        let o = c.output().expect("status");
        let s = t.elapsed().as_secs_f64();
        assert!(
            o.status.code() == Some(0),
            "status: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        let shown = json["days"].as_array().map(Vec::len);
        assert_eq!(shown, Some(expect_days));
        assert_eq!(json["phases"]["rotated"].as_u64(), Some(expect_days as u64));
        s
    };
    let (from, to) = (first.to_string(), last.to_string());
    let (mut one, mut year) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(3) {
        one.push(time(&["status", "--date", LAST, "--json"], 1));
        year.push(time(
            &["status", "--from", &from, "--to", &to, "--json"],
            DAYS as usize,
        ));
    }
    (crate::measure::median(one), crate::measure::median(year))
}
