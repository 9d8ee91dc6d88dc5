//! The simulator's own metadata statements, beyond the shared library's reads and writes.
//!
//! Every value is bound; the same SQL runs on MySQL/MariaDB and SQLite. Nothing is cached:
//! callers re-read rows each time, so rows written by other programs are seen at once.

use milvus_tier::meta::{EngineType, FileRow, FileType, MetaDb, TableRow, TableState};
use sqlx::{AnyConnection, Row};

use crate::error::{Result, SimError};

/// The live (state NORMAL) root collection `name`, or error code 4.
pub async fn live_collection(db: &MetaDb, name: &str) -> Result<TableRow> {
    match db.collection(name).await? {
        Some(t) if t.state == TableState::Normal => Ok(t),
        _ => Err(SimError::no_collection(name)),
    }
}

/// Live partitions of collection `owner`, ordered by tag.
pub async fn live_partitions(db: &MetaDb, owner: &str) -> Result<Vec<TableRow>> {
    Ok(db
        .partitions(owner)
        .await?
        .into_iter()
        .filter(|p| p.state == TableState::Normal)
        .collect())
}

/// The collection row followed by its live partitions.
pub async fn collection_tables(db: &MetaDb, name: &str) -> Result<Vec<TableRow>> {
    let root = live_collection(db, name).await?;
    let mut all = vec![root];
    all.extend(live_partitions(db, name).await?);
    Ok(all)
}

/// Live root collections, ordered by name.
pub async fn live_collections(db: &MetaDb) -> Result<Vec<TableRow>> {
    let ids: Vec<String> = sqlx::query(
        "SELECT table_id FROM Tables WHERE owner_table = ? AND state = ? ORDER BY table_id",
    )
    .bind("")
    .bind(TableState::Normal.code())
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<std::result::Result<_, _>>()?;
    Ok(db.tables_by_id(&ids).await?)
}

/// Every live table (collections and partitions).
pub async fn live_tables(db: &MetaDb) -> Result<Vec<TableRow>> {
    let ids: Vec<String> = sqlx::query("SELECT table_id FROM Tables WHERE state = ?")
        .bind(TableState::Normal.code())
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<std::result::Result<_, _>>()?;
    Ok(db.tables_by_id(&ids).await?)
}

/// Every table_id that has TableFiles rows.
pub async fn file_table_ids(db: &MetaDb) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT DISTINCT table_id FROM TableFiles")
        .fetch_all(db.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<std::result::Result<_, _>>()?)
}

/// Insert a new, empty file of `table` in a segment of its own, with type `file_type`
/// (`CreateCollectionFile`: segment_id = file_id, a fresh id); returns the row.
pub async fn create_file(db: &MetaDb, table: &TableRow, file_type: FileType) -> Result<FileRow> {
    let now = crate::ids::now_micros();
    let file_id = crate::ids::next_id();
    let row = FileRow {
        id: 0,
        table_id: table.table_id.clone(),
        segment_id: file_id.clone(),
        engine_type: table.engine_type,
        file_id,
        file_type,
        file_size: 0,
        row_count: 0,
        updated_time: now,
        created_on: now,
        date: crate::ids::today(),
        flush_lsn: 0,
    };
    let mut c = db.pool().acquire().await?;
    insert_file(&mut c, &row).await?;
    Ok(row)
}

/// Insert one TableFiles row (all columns but the auto-increment id, in Milvus's order).
pub async fn insert_file(c: &mut AnyConnection, f: &FileRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO TableFiles (table_id, segment_id, engine_type, file_id, file_type, file_size, \
         row_count, updated_time, created_on, date, flush_lsn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(f.table_id.clone())
    .bind(f.segment_id.clone())
    .bind(f.engine_type.code())
    .bind(f.file_id.clone())
    .bind(f.file_type.code())
    .bind(f.file_size)
    .bind(f.row_count)
    .bind(f.updated_time)
    .bind(f.created_on)
    .bind(f.date.0)
    .bind(f.flush_lsn)
    .execute(c)
    .await?;
    Ok(())
}

/// Set a file's type, size and row count (`UpdateCollectionFile`); returns rows changed.
pub async fn finish_file(
    c: &mut AnyConnection,
    f: &FileRow,
    file_type: FileType,
    now: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE TableFiles SET file_type = ?, file_size = ?, row_count = ?, updated_time = ? \
         WHERE table_id = ? AND file_id = ?",
    )
    .bind(file_type.code())
    .bind(f.file_size)
    .bind(f.row_count)
    .bind(now)
    .bind(f.table_id.clone())
    .bind(f.file_id.clone())
    .execute(c)
    .await?
    .rows_affected())
}

/// Move one file from type `from` to `to` (only if it still has type `from`); returns rows changed.
pub async fn move_file(
    c: &mut AnyConnection,
    table_id: &str,
    file_id: &str,
    from: FileType,
    to: FileType,
    now: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE TableFiles SET file_type = ?, updated_time = ? \
         WHERE table_id = ? AND file_id = ? AND file_type = ?",
    )
    .bind(to.code())
    .bind(now)
    .bind(table_id)
    .bind(file_id)
    .bind(from.code())
    .execute(c)
    .await?
    .rows_affected())
}

/// Every file of segment `segment_id` of `table_id` becomes TO_DELETE (a compacted segment).
pub async fn segment_to_delete(
    c: &mut AnyConnection,
    table_id: &str,
    segment_id: &str,
    now: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE TableFiles SET file_type = ?, updated_time = ? WHERE table_id = ? AND segment_id = ?",
    )
    .bind(FileType::ToDelete.code())
    .bind(now)
    .bind(table_id)
    .bind(segment_id)
    .execute(c)
    .await?
    .rows_affected())
}

/// Move every file of `table_id` with type `from` to `to`, setting `updated_time`.
pub async fn move_table_files(
    c: &mut AnyConnection,
    table_id: &str,
    from: FileType,
    to: FileType,
    now: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE TableFiles SET file_type = ?, updated_time = ? WHERE table_id = ? AND file_type = ?",
    )
    .bind(to.code())
    .bind(now)
    .bind(table_id)
    .bind(from.code())
    .execute(c)
    .await?
    .rows_affected())
}

/// Soft-delete tables: state TO_DELETE, and every file not yet TO_DELETE becomes TO_DELETE
/// (`DropCollections` + `DeleteCollectionFiles`).
pub async fn soft_delete(db: &MetaDb, table_ids: &[String], now: i64) -> Result<()> {
    let mut tx = db.pool().begin().await?;
    for id in table_ids {
        sqlx::query("UPDATE Tables SET state = ? WHERE table_id = ?")
            .bind(TableState::ToDelete.code())
            .bind(id.clone())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE TableFiles SET file_type = ?, updated_time = ? WHERE table_id = ? AND file_type <> ?",
        )
        .bind(FileType::ToDelete.code())
        .bind(now)
        .bind(id.clone())
        .bind(FileType::ToDelete.code())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Set a table's index (`UpdateCollectionIndex`).
pub async fn set_table_index(
    c: &mut AnyConnection,
    table_id: &str,
    engine: EngineType,
    params: &str,
) -> Result<()> {
    sqlx::query("UPDATE Tables SET engine_type = ?, index_params = ? WHERE table_id = ?")
        .bind(engine.code())
        .bind(params)
        .bind(table_id)
        .execute(c)
        .await?;
    Ok(())
}

/// RAW files of `table_id` with at least `threshold` rows become TO_INDEX
/// (`UpdateCollectionFilesToIndex`; `updated_time` is not touched, as in Milvus).
pub async fn raw_to_index(c: &mut AnyConnection, table_id: &str, threshold: i64) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE TableFiles SET file_type = ? WHERE table_id = ? AND file_type = ? AND row_count >= ?",
    )
    .bind(FileType::ToIndex.code())
    .bind(table_id)
    .bind(FileType::Raw.code())
    .bind(threshold)
    .execute(c)
    .await?
    .rows_affected())
}

/// Delete rows of the given types (`CleanUpShadowFiles` for NEW, NEW_MERGE, NEW_INDEX).
pub async fn delete_files_of_types(db: &MetaDb, types: &[FileType]) -> Result<u64> {
    let mut n = 0;
    for t in types {
        n += sqlx::query("DELETE FROM TableFiles WHERE file_type = ?")
            .bind(t.code())
            .execute(db.pool())
            .await?
            .rows_affected();
    }
    Ok(n)
}

/// Delete one TableFiles row.
pub async fn delete_file_row(db: &MetaDb, table_id: &str, file_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM TableFiles WHERE table_id = ? AND file_id = ?")
        .bind(table_id)
        .bind(file_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// How many TableFiles rows have `segment_id` (any table, as Milvus's query is not scoped).
pub async fn rows_with_segment(db: &MetaDb, segment_id: &str) -> Result<i64> {
    let r = sqlx::query("SELECT COUNT(*) FROM TableFiles WHERE segment_id = ?")
        .bind(segment_id)
        .fetch_one(db.pool())
        .await?;
    Ok(r.try_get::<i64, _>(0)?)
}

/// How many TableFiles rows `table_id` has.
pub async fn rows_of_table(db: &MetaDb, table_id: &str) -> Result<i64> {
    let r = sqlx::query("SELECT COUNT(*) FROM TableFiles WHERE table_id = ?")
        .bind(table_id)
        .fetch_one(db.pool())
        .await?;
    Ok(r.try_get::<i64, _>(0)?)
}

/// Table ids of soft-deleted tables.
pub async fn deleted_tables(db: &MetaDb) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT table_id FROM Tables WHERE state = ?")
        .bind(TableState::ToDelete.code())
        .fetch_all(db.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<std::result::Result<_, _>>()?)
}

/// Delete a soft-deleted Tables row.
pub async fn delete_table_row(db: &MetaDb, table_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM Tables WHERE table_id = ? AND state = ?")
        .bind(table_id)
        .bind(TableState::ToDelete.code())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Set `Tables.flag` of `table_id` (`UpdateCollectionFlag`).
pub async fn set_table_flag(db: &MetaDb, table_id: &str, flag: i64) -> Result<()> {
    sqlx::query("UPDATE Tables SET flag = ? WHERE table_id = ?")
        .bind(flag)
        .bind(table_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Set `row_count` of one file row (`UpdateCollectionFilesRowCount`).
pub async fn set_row_count(db: &MetaDb, table_id: &str, file_id: &str, rows: i64) -> Result<()> {
    sqlx::query(
        "UPDATE TableFiles SET row_count = ?, updated_time = ? WHERE table_id = ? AND file_id = ?",
    )
    .bind(rows)
    .bind(crate::ids::now_micros())
    .bind(table_id)
    .bind(file_id)
    .execute(db.pool())
    .await?;
    Ok(())
}
