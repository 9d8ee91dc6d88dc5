//! The start-up WAL check of `WalManager::Init` (`core/src/db/wal/WalManager.cpp`), run by
//! `DBImpl::Start` on every node (writable or read-only) when `wal.enable` is true (the
//! 1.1.1 default); a failure throws "Wal init error!" and the server does not start.
//!
//! Init reads `Environment.global_lsn` and the `flush_lsn` of every live Tables row
//! (collections and partitions). Recovery starts at `max(global_lsn, min flush_lsn)` and
//! ends at `max(applied lsn of the WAL folder, max flush_lsn)`. When they differ,
//! `MXLogBuffer::Init` needs the node's WAL files for that range; when it has not got them
//! the start fails, or, with `wal.recovery_error_ignore = true`, the WAL is reset to the end
//! lsn (inserts that were not flushed are dropped).
//!
//! The simulator keeps no WAL records: its WAL folder (`<storage>/wal/mxlog.meta`) only
//! records the lsn range its own files would cover, so foreign `flush_lsn` values (copied
//! from another cluster) fail exactly where the engine's would.

use std::path::{Path, PathBuf};

use sqlx::Row;

use crate::catalog;
use crate::error::{Result, SimError, code};
use crate::sim::Sim;

/// WAL settings (`wal.enable`, `wal.recovery_error_ignore`).
#[derive(Debug, Clone, Copy)]
pub struct WalSettings {
    /// `wal.enable`.
    pub enable: bool,
    /// `wal.recovery_error_ignore`.
    pub recovery_error_ignore: bool,
}

/// The lsn range this node's WAL files cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WalMeta {
    first: u64,
    applied: u64,
}

fn meta_path(storage: &Path) -> PathBuf {
    storage.join("wal").join("mxlog.meta")
}

fn read_meta(storage: &Path) -> Option<WalMeta> {
    let text = std::fs::read_to_string(meta_path(storage)).ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<u64>().ok());
    Some(WalMeta {
        first: it.next()??,
        applied: it.next()??,
    })
}

fn write_meta(storage: &Path, m: WalMeta) -> Result<()> {
    let p = meta_path(storage);
    std::fs::create_dir_all(p.parent().expect("wal folder"))
        .and_then(|_| std::fs::write(&p, format!("{} {}\n", m.first, m.applied)))
        .map_err(|e| SimError::api(code::UNEXPECTED, format!("write {}: {e}", p.display())))
}

/// `WalManager::Init` over the node's metadata and WAL folder. Errors name the Tables row
/// whose `flush_lsn` the node's WAL cannot account for.
pub async fn init(sim: &Sim, storage: &Path, s: WalSettings) -> Result<()> {
    if !s.enable {
        return Ok(());
    }
    let global: u64 = sqlx::query("SELECT global_lsn FROM Environment")
        .fetch_optional(sim.db.pool())
        .await?
        .map(|r| r.try_get::<i64, _>(0))
        .transpose()?
        .unwrap_or(0) as u64;
    let tables = catalog::live_tables(&sim.db).await?;
    let meta = read_meta(storage);
    let mut start = global;
    let mut end = meta.map_or(0, |m| m.applied);
    let lowest = tables.iter().min_by_key(|t| t.flush_lsn as u64);
    let highest = tables.iter().max_by_key(|t| t.flush_lsn as u64);
    if let (Some(lo), Some(hi)) = (lowest, highest) {
        end = end.max(hi.flush_lsn as u64);
        start = start.max(lo.flush_lsn as u64);
    }
    if end < start {
        end = start;
    }
    let covered = meta.is_some_and(|m| m.first <= start && end <= m.applied);
    if start == end || covered {
        write_meta(
            storage,
            WalMeta {
                first: meta.map_or(end, |m| m.first.min(end)),
                applied: end,
            },
        )?;
        tracing::info!(recovery_start = start, applied_lsn = end, "wal init");
        return Ok(());
    }
    let row = |lsn: u64| {
        tables
            .iter()
            .find(|t| t.flush_lsn as u64 == lsn)
            .map(|t| {
                let owner = if t.owner_table.is_empty() {
                    "collection".to_string()
                } else {
                    format!("partition `{}` of {}", t.partition_tag, t.owner_table)
                };
                format!("Tables row {} ({owner}) flush_lsn {lsn}", t.table_id)
            })
            .unwrap_or_else(|| format!("Environment.global_lsn {lsn}"))
    };
    let why = format!(
        "recovery from lsn {start} ({}) to {end} ({}) needs WAL files this node does not have",
        row(start),
        row(end)
    );
    if s.recovery_error_ignore {
        tracing::warn!(%why, "wal.recovery_error_ignore: WAL reset, inserts not flushed are dropped");
        write_meta(
            storage,
            WalMeta {
                first: end,
                applied: end,
            },
        )?;
        return Ok(());
    }
    Err(SimError::api(
        code::UNEXPECTED,
        format!("Wal init error!: {why}"),
    ))
}
