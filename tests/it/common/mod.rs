//! Shared fixtures for the integration tests.
#![allow(dead_code)]

pub mod cluster;
pub mod ops;
pub mod s3;

use std::path::Path;

use milvus_tier::meta::{
    EngineType, FileRow, FileType, MetaDb, MetricType, MilvusDate, TableRow, TableState, WriteMode,
};

/// Collection name used by fixtures.
pub const COLLECTION: &str = "vectors";
/// Tag format used by fixtures.
pub const TAG_FORMAT: &str = "day_%Y-%m-%d";
/// Dimension used by fixtures.
pub const DIM: i64 = 16;

/// Install the rustls provider the whole dependency set needs (idempotent).
pub fn init() {
    milvus_tier::init_crypto();
}

/// A collection row.
pub fn collection_row(name: &str, engine: EngineType, index_file_size: i64) -> TableRow {
    TableRow {
        id: 0,
        table_id: name.to_string(),
        state: TableState::Normal,
        dimension: DIM,
        created_on: 1_764_000_000_000_000,
        flag: 0,
        index_file_size,
        engine_type: engine,
        index_params: "{}".to_string(),
        metric_type: MetricType::L2,
        owner_table: String::new(),
        partition_tag: String::new(),
        version: Some("1.1.1".to_string()),
        flush_lsn: 0,
    }
}

/// A partition row of `owner`.
pub fn partition_row(owner: &TableRow, table_id: &str, tag: &str, state: TableState) -> TableRow {
    TableRow {
        table_id: table_id.to_string(),
        state,
        owner_table: owner.table_id.clone(),
        partition_tag: tag.to_string(),
        ..owner.clone()
    }
}

/// A file row; file_size = rows × (dim × 4 + 8) unless an index file.
pub fn file_row(table_id: &str, n: u32, file_type: FileType, rows: i64) -> FileRow {
    let file_id = format!("{}{:04}", 1_764_000_000_000_000_000u64 / 10_000, n);
    let size = if file_type == FileType::Index {
        rows * 24 + 65_536
    } else {
        rows * (DIM * 4 + 8)
    };
    FileRow {
        id: 0,
        table_id: table_id.to_string(),
        segment_id: file_id.clone(),
        engine_type: EngineType::Flat,
        file_id,
        file_type,
        file_size: size,
        row_count: rows,
        updated_time: 1_764_000_000_000_000 + n as i64,
        created_on: 1_764_000_000_000_000 + n as i64,
        date: MilvusDate(1261024),
        flush_lsn: 0,
    }
}

/// The fixture: a collection, two days (2026-11-24 and 2026-11-25), several partitions
/// (day one also has a soft-deleted partition with the same tag) and files of every type.
pub struct Fixture {
    /// Every Tables row.
    pub tables: Vec<TableRow>,
    /// Every TableFiles row.
    pub files: Vec<FileRow>,
}

/// Build the fixture rows.
pub fn fixture() -> Fixture {
    let coll = collection_row(COLLECTION, EngineType::Flat, 256 << 20);
    let p0 = partition_row(
        &coll,
        "1764000000000000100",
        "day_2026-11-24",
        TableState::ToDelete,
    );
    let p1 = partition_row(
        &coll,
        "1764000000000000200",
        "day_2026-11-24",
        TableState::Normal,
    );
    let p2 = partition_row(
        &coll,
        "1764000000000000300",
        "day_2026-11-25",
        TableState::Normal,
    );
    let p3 = partition_row(
        &coll,
        "1764000000000000400",
        "day_2026-11-26",
        TableState::Normal,
    );
    let mut files = vec![file_row(COLLECTION, 1, FileType::Raw, 42)];
    files.push(file_row(&p0.table_id, 2, FileType::ToDelete, 70));
    let day1 = [
        (FileType::New, 10),
        (FileType::Raw, 100),
        (FileType::Raw, 200),
        (FileType::ToIndex, 5000),
        (FileType::Index, 6000),
        (FileType::ToDelete, 50),
        (FileType::NewMerge, 300),
        (FileType::NewIndex, 5000),
        (FileType::Backup, 6000),
    ];
    for (i, (t, rows)) in day1.iter().enumerate() {
        files.push(file_row(&p1.table_id, 10 + i as u32, *t, *rows));
    }
    // The INDEX file shares the BACKUP file's segment.
    let backup_seg = files.last().expect("backup").segment_id.clone();
    files
        .iter_mut()
        .filter(|f| f.file_type == FileType::Index)
        .for_each(|f| f.segment_id = backup_seg.clone());
    for (i, rows) in [4096, 1000, 7].iter().enumerate() {
        files.push(file_row(&p2.table_id, 30 + i as u32, FileType::Raw, *rows));
    }
    files.push(file_row(&p3.table_id, 40, FileType::Raw, 5));
    Fixture {
        tables: vec![coll, p0, p1, p2, p3],
        files,
    }
}

/// Create the Milvus schema in `db` and write the fixture rows.
pub async fn load(db: &MetaDb) -> Fixture {
    db.install_milvus_schema().await.expect("schema");
    let f = fixture();
    let report = db
        .write_rows(&f.tables, &f.files, WriteMode::InsertIfAbsent)
        .await
        .expect("write fixture");
    assert!(report.committed);
    f
}

/// Create the storage folder layout for every file row of the fixture.
pub fn make_storage(root: &Path, f: &Fixture) {
    for file in &f.files {
        let dir = root
            .join("db")
            .join("tables")
            .join(&file.table_id)
            .join(&file.segment_id);
        std::fs::create_dir_all(&dir).expect("segment dir");
    }
}

/// Expected (files, rows, bytes) of the fixture for one partition and file type.
pub fn expected(f: &Fixture, table_id: &str, t: Option<FileType>) -> (u64, i64, i64) {
    let sel: Vec<&FileRow> = f
        .files
        .iter()
        .filter(|x| x.table_id == table_id && t.is_none_or(|t| x.file_type == t))
        .collect();
    (
        sel.len() as u64,
        sel.iter().map(|x| x.row_count).sum(),
        sel.iter().map(|x| x.file_size).sum(),
    )
}

/// Write a milvus-tier config file for the given URLs and storage paths.
pub fn write_config(path: &Path, short_url: &str, long_url: &str, local_url: &str, storage: &Path) {
    let s = storage.display();
    let text = format!(
        r#"timezone = "Asia/Seoul"

[short_term]
meta_url = "{short_url}"
storage_path = "{s}/short"
collection = "{COLLECTION}"
partition_tag_format = "{TAG_FORMAT}"

[long_term]
meta_url = "{long_url}"
storage_path = "{s}/long"
collection = "{COLLECTION}"

[engine]
http_url = "http://127.0.0.1:19121"
meta_url = "{local_url}"
storage_path = "{s}/local"

[limits]
connect_timeout_secs = 3
"#
    );
    for sub in ["short", "long", "local"] {
        std::fs::create_dir_all(storage.join(sub).join("db/tables")).expect("storage dir");
    }
    std::fs::write(path, text).expect("write config");
}
