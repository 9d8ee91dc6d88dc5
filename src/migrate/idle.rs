//! Wait for the local engine to be idle before staging writes into its metadata.
//!
//! On SQLite (the Batch image) Milvus's `SqliteMetaImpl` sets no busy timeout, so a write of
//! the engine that meets milvus-tier's write lock fails at once ("database is locked") and the
//! merge or index build it belonged to is lost. The engine writes its metadata only while it
//! flushes, merges or builds; all of that shows as NEW, NEW_MERGE, NEW_INDEX or TO_INDEX rows.
//! Staging starts once none is left over two reads in a row. Rows of the local collection and
//! its partitions are not waited for: staging removes them first (a day left half-built by an
//! earlier run).

use std::time::{Duration, Instant};

use sqlx::Row;

use crate::error::{Error, Result};
use crate::meta::{FileType, MetaDb};

/// File types that mean the engine is working or about to work.
pub const BUSY_TYPES: &[FileType] = &[
    FileType::New,
    FileType::NewMerge,
    FileType::NewIndex,
    FileType::ToIndex,
];

/// `table_id/file_id (TYPE)` of every busy row outside collection `ours` and its
/// partitions, at most `limit`.
async fn busy_rows(local: &MetaDb, ours: &str, limit: usize) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT table_id, file_id, file_type FROM TableFiles WHERE file_type IN (?, ?, ?, ?) \
         AND table_id <> ? AND table_id NOT IN (SELECT table_id FROM Tables WHERE owner_table = ?) \
         ORDER BY table_id, file_id",
    )
    .bind(BUSY_TYPES[0].code())
    .bind(BUSY_TYPES[1].code())
    .bind(BUSY_TYPES[2].code())
    .bind(BUSY_TYPES[3].code())
    .bind(ours)
    .bind(ours)
    .fetch_all(local.pool())
    .await
    .map_err(local.err("read busy TableFiles rows"))?;
    let mut out = Vec::new();
    for r in rows.iter().take(limit) {
        let table: String = r.try_get(0).map_err(local.err("read table_id"))?;
        let file: String = r.try_get(1).map_err(local.err("read file_id"))?;
        let t: i32 = r.try_get(2).map_err(local.err("read file_type"))?;
        let t = FileType::try_from(t).map(|t| t.label()).unwrap_or("?");
        out.push(format!("{table}/{file} ({t})"));
    }
    Ok(out)
}

/// Wait until the engine's metadata shows no flush, merge or build in flight outside the
/// local collection `ours`, read twice `interval` apart; returns how long it waited. After
/// `limit` it is a timeout naming the rows still in flight.
pub async fn wait_idle(
    local: &MetaDb,
    ours: &str,
    limit: Duration,
    interval: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    let mut quiet = 0;
    loop {
        let busy = busy_rows(local, ours, 5).await?;
        if busy.is_empty() {
            quiet += 1;
            if quiet >= 2 {
                return Ok(start.elapsed());
            }
        } else {
            quiet = 0;
            if start.elapsed() >= limit {
                return Err(Error::Timeout(format!(
                    "the local engine stayed busy for {}s before staging: {}",
                    limit.as_secs(),
                    busy.join(", ")
                )));
            }
            tracing::info!(busy = %busy.join(", "), "waiting for the local engine to be idle before staging");
        }
        tokio::time::sleep(interval).await;
    }
}
