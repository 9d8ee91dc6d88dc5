//! The lifecycle's own journal rows: the outcome of `verify` and of `archive`, stored in
//! `milvus_tier_journal` beside the migration steps under the step names `verify` and
//! `archive` (the migration's reader skips step names it does not know).
//!
//! Reads treat an absent journal table as an empty journal (a long-term database nothing
//! has migrated to yet); any other database error, a lost connection included, is an
//! error. Writing a verify outcome never creates the journal tables.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::day::Day;
use crate::error::Result;
use crate::meta::MetaDb;

/// Step name of a recorded `verify`.
pub const VERIFY: &str = "verify";
/// Step name of a recorded `archive`.
pub const ARCHIVE: &str = "archive";

/// One journal row as stored, whatever its step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawEntry {
    /// Day, YYYY-MM-DD.
    pub day: String,
    /// Step name (`stage`, `build`, `publish`, `backup`, `verify`, `archive`).
    pub step: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// The run that wrote it.
    pub run_id: String,
    /// Microseconds since the epoch.
    pub started_at: i64,
    /// Microseconds since the epoch, when done or failed.
    pub finished_at: Option<i64>,
    /// Files handled.
    pub files: i64,
    /// Rows handled (for `verify`: the number of findings).
    pub rows: i64,
    /// Bytes handled.
    pub bytes: i64,
    /// JSON detail.
    pub detail: Option<String>,
}

/// Whether a database error says the table does not exist (MySQL/MariaDB 1146 / SQLSTATE
/// 42S02, SQLite "no such table").
pub fn is_missing_table(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.code().as_deref() == Some("42S02")
                || d.message().contains("no such table")
                || d.message().contains("doesn't exist")
        }
        _ => false,
    }
}

fn text_or_blob(
    r: &sqlx::any::AnyRow,
    idx: usize,
) -> std::result::Result<Option<String>, sqlx::Error> {
    match r.try_get::<Option<String>, _>(idx) {
        Ok(v) => Ok(v),
        Err(_) => Ok(r
            .try_get::<Option<Vec<u8>>, _>(idx)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())),
    }
}

/// Every journal row of `collection` for days `from..=to`, in one query; empty when the
/// journal table does not exist yet.
pub async fn read_range(
    db: &MetaDb,
    collection: &str,
    from: Day,
    to: Day,
) -> Result<Vec<RawEntry>> {
    let rows = sqlx::query(
        "SELECT day, step, state, run_id, started_at, finished_at, files, row_count, bytes, detail \
         FROM milvus_tier_journal WHERE collection = ? AND day >= ? AND day <= ?",
    )
    .bind(collection)
    .bind(from.to_string())
    .bind(to.to_string())
    .fetch_all(db.pool())
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) if is_missing_table(&e) => return Ok(Vec::new()),
        Err(e) => return Err(db.err(format!("read journal of {collection}"))(e)),
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let dec = || db.err("decode journal");
        out.push(RawEntry {
            day: r.try_get(0).map_err(dec())?,
            step: r.try_get(1).map_err(dec())?,
            state: r.try_get(2).map_err(dec())?,
            run_id: r.try_get(3).map_err(dec())?,
            started_at: r.try_get(4).map_err(dec())?,
            finished_at: r.try_get(5).map_err(dec())?,
            files: r.try_get(6).map_err(dec())?,
            rows: r.try_get(7).map_err(dec())?,
            bytes: r.try_get(8).map_err(dec())?,
            detail: text_or_blob(&r, 9).map_err(dec())?,
        });
    }
    Ok(out)
}

/// Whether the journal table exists (one query that reads no row).
pub async fn journal_exists(db: &MetaDb) -> Result<bool> {
    match sqlx::query("SELECT 1 FROM milvus_tier_journal WHERE 1 = 0")
        .fetch_all(db.pool())
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_missing_table(&e) => Ok(false),
        Err(e) => Err(db.err("look for the journal")(e)),
    }
}

/// What a lifecycle record holds.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Long-term collection.
    pub collection: &'a str,
    /// Day.
    pub day: Day,
    /// [`VERIFY`] or [`ARCHIVE`].
    pub step: &'static str,
    /// `done` or `failed`.
    pub state: &'static str,
    /// The run.
    pub run_id: &'a str,
    /// Microseconds since the epoch.
    pub started_at: i64,
    /// Microseconds since the epoch.
    pub finished_at: i64,
    /// Files.
    pub files: i64,
    /// Rows (findings for `verify`).
    pub rows: i64,
    /// Bytes.
    pub bytes: i64,
    /// JSON detail.
    pub detail: Option<String>,
}

/// Write `rec` (replacing the day's previous row of that step) inside `tx`.
pub async fn put_in(
    db: &MetaDb,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    rec: &Record<'_>,
) -> Result<()> {
    let day = rec.day.to_string();
    sqlx::query("DELETE FROM milvus_tier_journal WHERE collection = ? AND day = ? AND step = ?")
        .bind(rec.collection)
        .bind(&day)
        .bind(rec.step)
        .execute(&mut **tx)
        .await
        .map_err(db.err(format!("write journal ({})", rec.step)))?;
    sqlx::query(
        "INSERT INTO milvus_tier_journal (collection, day, step, state, run_id, started_at, updated_at, \
         finished_at, files, row_count, bytes, checksum_digest, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(rec.collection)
    .bind(&day)
    .bind(rec.step)
    .bind(rec.state)
    .bind(rec.run_id)
    .bind(rec.started_at)
    .bind(rec.finished_at)
    .bind(rec.finished_at)
    .bind(rec.files)
    .bind(rec.rows)
    .bind(rec.bytes)
    .bind("")
    .bind(&rec.detail)
    .execute(&mut **tx)
    .await
    .map_err(db.err(format!("write journal ({})", rec.step)))?;
    Ok(())
}

/// Write `rec` in a transaction of its own.
pub async fn put(db: &MetaDb, rec: &Record<'_>) -> Result<()> {
    let mut tx = db
        .begin_write()
        .await
        .map_err(db.err("begin journal write"))?;
    put_in(db, &mut tx, rec).await?;
    tx.commit().await.map_err(db.err("commit journal write"))
}

/// Record a verify outcome, only when the journal already exists: a read-only check never
/// creates tables. Returns whether it was recorded.
pub async fn record_verify(db: &MetaDb, rec: &Record<'_>) -> Result<bool> {
    if !journal_exists(db).await? {
        return Ok(false);
    }
    put(db, rec).await?;
    Ok(true)
}
