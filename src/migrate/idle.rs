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
    let rows = local.files_outside(ours, BUSY_TYPES, limit).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let t = r.file_type.map_or("?", FileType::label);
            format!("{}/{} ({t})", r.table_id, r.file_id)
        })
        .collect())
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
