//! The background engine on a real (throwaway) MariaDB: schema, seed, merge, index build,
//! TTL cleanup, and rows plus folders inserted by another program.

mod support;

use std::time::Duration;

use milvus_tier::meta::{EngineType, FileRow, FileType, MetaDb, TableRow, WriteMode};
use serde_json::json;
use support::{count, files_of, seed, start, wait_until};
use test_support::MariaDb;

const T: Duration = Duration::from_secs(20);

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn first_vector(dir: &std::path::Path, name: &str, dim: usize) -> (i64, Vec<f32>) {
    let rv = std::fs::read(dir.join(format!("{name}.rv"))).unwrap();
    let uid = std::fs::read(dir.join(format!("{name}.uid"))).unwrap();
    let v = rv[8..8 + dim * 4]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (i64::from_le_bytes(uid[8..16].try_into().unwrap()), v)
}

/// `SHOW CREATE TABLE` without the `AUTO_INCREMENT=<next id>` counter.
fn strip_counter(ddl: &str) -> String {
    ddl.split(' ')
        .filter(|w| !w.starts_with("AUTO_INCREMENT="))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_merges_indexes_and_cleans_up_on_mariadb() {
    let maria = MariaDb::start();
    let url = maria.database("short_term");
    let reference = maria.database("reference");
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");

    // A seeded day: 2 partitions of 5000 rows, flushed as 2500-row segments.
    let out = seed(
        &url,
        &storage,
        &[
            "--collection",
            "c",
            "--days",
            "2",
            "--rows-per-day",
            "5000",
            "--dim",
            "8",
            "--segment-rows",
            "2500",
            "--index-file-size",
            "1",
            "--first-day",
            "2024-03-01",
        ],
    );
    assert!(
        out.contains("seeded c: 2 partitions, 4 files, 10000 rows, 400000 bytes"),
        "{out}"
    );
    let db = MetaDb::connect(&url).await.unwrap();
    let parts = db.partitions("c").await.unwrap();
    let tags: Vec<&str> = parts.iter().map(|p| p.partition_tag.as_str()).collect();
    assert_eq!(tags, ["day_2024-03-01", "day_2024-03-02"]);
    let root = db.collection("c").await.unwrap().unwrap();
    assert_eq!(root.index_file_size, 1024 * 1024);
    for p in &parts {
        assert!(p.table_id.parse::<i64>().is_ok(), "numeric partition id");
        assert_eq!(p.owner_table, "c");
        assert_eq!(p.index_file_size, root.index_file_size);
        assert_eq!(p.version, root.version);
    }
    let files = files_of(&db, "c").await;
    assert_eq!(files.len(), 4);
    for f in &files {
        assert_eq!(
            (f.file_type, f.row_count, f.file_size),
            (FileType::Raw, 2500, 100_000)
        );
        assert_eq!(f.segment_id, f.file_id);
        let seg = storage
            .join("db/tables")
            .join(&f.table_id)
            .join(&f.segment_id);
        let rv = std::fs::metadata(seg.join(format!("{}.rv", f.file_id))).unwrap();
        assert_eq!(rv.len(), 8 + 2500 * 8 * 4);
        let uid = std::fs::metadata(seg.join(format!("{}.uid", f.file_id))).unwrap();
        assert_eq!(uid.len(), 8 + 2500 * 8);
        assert_eq!(
            std::fs::read(seg.join("deleted_docs")).unwrap(),
            0u64.to_le_bytes()
        );
        assert!(seg.join("bloom_filter").is_file());
    }

    // The schema the simulator created is the one sql/ creates.
    let ref_db = MetaDb::connect(&reference).await.unwrap();
    ref_db.install_milvus_schema().await.unwrap();
    db.check_schema().await.unwrap();
    for table in ["Tables", "TableFiles", "Environment", "Fields"] {
        let a = maria.sql(&format!("SHOW CREATE TABLE short_term.{table}"));
        let b = maria.sql(&format!("SHOW CREATE TABLE reference.{table}"));
        assert_eq!(strip_counter(&a), strip_counter(&b), "DDL of {table}");
    }

    // Serve: the 2500-row segments merge into one 5000-row RAW per partition.
    let sim = start(&url, &storage, &["--ttl-secs", "1", "--tick-ms", "50"]).await;
    let merged = wait_until(T, || async {
        let f = files_of(&db, "c").await;
        count(&f, FileType::Raw) == 2
            && f.iter()
                .all(|x| x.file_type != FileType::Raw || x.row_count == 5000)
    })
    .await;
    assert!(merged, "{}", sim.log_text());

    // A small partition stays RAW after create_index.
    sim.ok(
        "POST",
        "/collections/c/partitions",
        r#"{"partition_tag":"small"}"#,
    )
    .await;
    let small: Vec<Vec<f32>> = (0..100).map(|i| vec![i as f32; 8]).collect();
    // The seeded collection took user ids, so these give theirs too (Tables.flag).
    let small_ids: Vec<String> = (0..100).map(|i| (900_000_000 + i).to_string()).collect();
    sim.ok(
        "POST",
        "/collections/c/vectors",
        &json!({"partition_tag":"small","vectors":small,"ids":small_ids}).to_string(),
    )
    .await;
    sim.ok(
        "PUT",
        "/system/task",
        r#"{"flush":{"collection_names":["c"]}}"#,
    )
    .await;
    let v = sim
        .ok(
            "POST",
            "/collections/c/indexes",
            r#"{"index_type":"IVFPQ","params":{"m":4,"nlist":16}}"#,
        )
        .await;
    assert_eq!(v["code"], 0);
    let indexed = wait_until(T, || async {
        let f = files_of(&db, "c").await;
        count(&f, FileType::Index) == 2 && count(&f, FileType::Backup) == 2
    })
    .await;
    assert!(indexed, "{}", sim.log_text());
    let files = files_of(&db, "c").await;
    for f in files.iter().filter(|f| f.file_type == FileType::Index) {
        assert_eq!(f.engine_type, EngineType::IvfPq);
        assert_eq!(f.row_count, 5000);
        let backup = files
            .iter()
            .find(|b| b.file_type == FileType::Backup && b.segment_id == f.segment_id)
            .expect("BACKUP beside INDEX");
        assert!(f.file_size < backup.file_size / 2, "PQ index is small");
        let p = storage
            .join("db/tables")
            .join(&f.table_id)
            .join(&f.segment_id)
            .join(&f.file_id);
        assert_eq!(std::fs::metadata(p).unwrap().len() as i64, f.file_size);
    }
    let raws: Vec<&FileRow> = files
        .iter()
        .filter(|f| f.file_type == FileType::Raw)
        .collect();
    assert_eq!(raws.len(), 1);
    assert_eq!(raws[0].row_count, 100);

    // TO_DELETE rows and their folders disappear after the TTL; BACKUP stays. The cleaner
    // deletes the rows first and then the folders no row names (as CleanUpFilesWithTTL
    // does), so the wait covers both.
    let folders = |p: &TableRow| {
        std::fs::read_dir(storage.join("db/tables").join(&p.table_id))
            .unwrap()
            .count()
    };
    let cleaned = wait_until(T, || async {
        count(&files_of(&db, "c").await, FileType::ToDelete) == 0
            && parts.iter().all(|p| folders(p) == 1)
    })
    .await;
    assert!(cleaned, "{}", sim.log_text());
    for p in &parts {
        assert_eq!(folders(p), 1, "only the merged segment folder is left");
    }
    assert_eq!(count(&files_of(&db, "c").await, FileType::Backup), 2);

    // Rows and folders inserted by another program are merged and indexed.
    let other = dir.path().join("other");
    let other_url = test_support::sqlite_url(dir.path(), "other.sqlite");
    seed(
        &other_url,
        &other,
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
    let other_db = MetaDb::connect(&other_url).await.unwrap();
    let ext = sim
        .ok(
            "POST",
            "/collections/c/partitions",
            r#"{"partition_tag":"ext"}"#,
        )
        .await;
    assert_eq!(ext["code"], 0);
    let ext_id = db.partitions_tagged("c", "ext").await.unwrap()[0]
        .table_id
        .clone();
    let mut rows = Vec::new();
    let mut probe = None;
    for f in files_of(&other_db, "x").await {
        let from = other
            .join("db/tables")
            .join(&f.table_id)
            .join(&f.segment_id);
        let to = storage.join("db/tables").join(&ext_id).join(&f.segment_id);
        copy_dir(&from, &to);
        probe.get_or_insert_with(|| first_vector(&to, &f.segment_id, 8));
        rows.push(FileRow {
            table_id: ext_id.clone(),
            engine_type: EngineType::Flat,
            file_type: FileType::Raw,
            ..f
        });
    }
    assert_eq!(rows.len(), 2);
    let report = db
        .write_rows(&[], &rows, WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    assert!(report.committed);
    sim.ok(
        "POST",
        "/collections/c/indexes",
        r#"{"index_type":"IVFPQ","params":{"m":4,"nlist":16}}"#,
    )
    .await;
    let done = wait_until(T, || async {
        let f = db.files(std::slice::from_ref(&ext_id), &[]).await.unwrap();
        count(&f, FileType::Index) == 1
            && count(&f, FileType::Backup) == 1
            && count(&f, FileType::Raw) == 0
    })
    .await;
    assert!(done, "{}", sim.log_text());

    // Search reads the INDEX file's raw data (its BACKUP) and finds the copied vector.
    let (id, v) = probe.unwrap();
    let r = sim
        .ok("PUT", "/collections/c/vectors", &json!({"search":{"topk":1,"partition_tags":["ext"],"vectors":[v],"params":{"nprobe":8}}}).to_string())
        .await;
    assert_eq!(r["result"][0][0]["id"], id.to_string());
    assert_eq!(r["result"][0][0]["distance"], 0.0);
    assert!(sim.log_text().contains("engine idle"));
}
