//! `gc`: remove what long-term storage holds but no long-term row needs: segment folders no
//! `TableFiles` row references (e.g. left by an interrupted run), folders referenced only by
//! TO_DELETE rows (read-only nodes never clean those; the rows go too), and temporary
//! folders of the copier. Nothing is removed while a journal entry is running, nor before
//! the grace period has passed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sqlx::Row;

use crate::config::{Config, Tier};
use crate::error::{Error, Result};
use crate::journal::{Journal, now_micros};
use crate::meta::{FileType, MetaDb};
use crate::migrate;

/// Options of a gc run.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// List only.
    pub dry_run: bool,
    /// Keep anything younger than this.
    pub grace: Duration,
}

/// Why a folder is garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No `TableFiles` row references the segment.
    Unreferenced,
    /// Only TO_DELETE rows reference it.
    ToDelete,
    /// A temporary folder of the copier (`.<segment>.tmp`, `.<segment>.old`).
    Temporary,
}

/// One folder found.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// The folder.
    pub path: PathBuf,
    /// Why.
    pub reason: Reason,
    /// Bytes in it.
    pub bytes: u64,
    /// Seconds since it (or its rows) last changed.
    pub age_secs: u64,
    /// TO_DELETE row ids removed with it.
    pub rows: Vec<i64>,
    /// Whether it was removed now.
    pub removed: bool,
}

/// What gc found and did.
#[derive(Debug, Clone, Serialize)]
pub struct GcReport {
    /// Every folder found.
    pub candidates: Vec<Candidate>,
    /// Running journal entries (`collection day step run`); when any, nothing is removed.
    pub in_flight: Vec<String>,
    /// Folders removed.
    pub removed: usize,
    /// Bytes removed.
    pub bytes_removed: u64,
}

#[derive(Default)]
struct SegRows {
    live: bool,
    to_delete: Vec<i64>,
    updated: i64,
}

/// Run gc on long-term storage.
pub async fn gc(config: &Config, opts: &GcOptions) -> Result<GcReport> {
    let (long, storage, _) = migrate::connect(config, Tier::LongTerm).await?;
    long.check_schema().await?;
    Journal::open(&long).await?;
    let in_flight = running_entries(&long).await?;
    let rows = segment_rows(&long).await?;
    // Folders of days archived within `archive.grace_hours`: read-only nodes may still
    // have their files open.
    let held = crate::archive::held_folders(&long, &storage, config.archive.grace_hours).await?;
    let mut candidates = find(&storage.join("db").join("tables"), &rows)?;
    let mut report = GcReport {
        candidates: Vec::new(),
        in_flight,
        removed: 0,
        bytes_removed: 0,
    };
    let grace = opts.grace.as_secs();
    for c in &mut candidates {
        if opts.dry_run
            || !report.in_flight.is_empty()
            || c.age_secs < grace
            || held.contains(&c.path)
        {
            continue;
        }
        if !c.rows.is_empty() {
            delete_to_delete_rows(&long, &c.rows).await?;
        }
        tokio::fs::remove_dir_all(&c.path)
            .await
            .map_err(|e| Error::io("remove", &c.path, e))?;
        c.removed = true;
        report.removed += 1;
        report.bytes_removed += c.bytes;
    }
    report.candidates = candidates;
    Ok(report)
}

async fn running_entries(long: &MetaDb) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT collection, day, step, run_id FROM milvus_tier_journal WHERE state = ? ORDER BY collection, day, step",
    )
    .bind("running")
    .fetch_all(long.pool())
    .await
    .map_err(|e| Error::meta(long.target(), "read running journal entries", e))?;
    let mut out = Vec::new();
    for r in rows {
        let get = |i: usize| -> Result<String> {
            r.try_get::<String, _>(i)
                .map_err(|e| Error::meta(long.target(), "decode journal", e))
        };
        out.push(format!(
            "{} {} {} run {}",
            get(0)?,
            get(1)?,
            get(2)?,
            get(3)?
        ));
    }
    Ok(out)
}

async fn segment_rows(long: &MetaDb) -> Result<BTreeMap<(String, String), SegRows>> {
    let rows =
        sqlx::query("SELECT id, table_id, segment_id, file_type, updated_time FROM TableFiles")
            .fetch_all(long.pool())
            .await
            .map_err(|e| Error::meta(long.target(), "read TableFiles segments", e))?;
    let mut map: BTreeMap<(String, String), SegRows> = BTreeMap::new();
    for r in rows {
        let dec = |e| Error::meta(long.target(), "decode TableFiles", e);
        let id: i64 = r.try_get(0).map_err(dec)?;
        let table: String = r.try_get(1).map_err(dec)?;
        let seg: String = r.try_get(2).map_err(dec)?;
        let t: i64 = r.try_get(3).map_err(dec)?;
        let updated: i64 = r.try_get(4).map_err(dec)?;
        let e = map.entry((table, seg)).or_default();
        if t == FileType::ToDelete.code() as i64 {
            e.to_delete.push(id);
            e.updated = e.updated.max(updated);
        } else {
            e.live = true;
        }
    }
    Ok(map)
}

async fn delete_to_delete_rows(long: &MetaDb, ids: &[i64]) -> Result<()> {
    let mut tx = long
        .begin_write()
        .await
        .map_err(|e| Error::meta(long.target(), "begin gc transaction", e))?;
    for id in ids {
        sqlx::query("DELETE FROM TableFiles WHERE id = ? AND file_type = ?")
            .bind(*id)
            .bind(FileType::ToDelete.code())
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::meta(long.target(), format!("delete TO_DELETE row id {id}"), e))?;
    }
    tx.commit()
        .await
        .map_err(|e| Error::meta(long.target(), "commit gc transaction", e))
}

fn find(tables: &Path, rows: &BTreeMap<(String, String), SegRows>) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    let list = |dir: &Path| -> Result<Vec<std::fs::DirEntry>> {
        let mut v: Vec<_> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|e| Error::io("list", dir, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("list", dir, e)),
        };
        v.sort_by_key(|e| e.file_name());
        Ok(v)
    };
    let now_us = now_micros();
    for t in list(tables)? {
        if !t.path().is_dir() {
            continue;
        }
        let table = t.file_name().to_string_lossy().into_owned();
        for s in list(&t.path())? {
            let path = s.path();
            if !path.is_dir() {
                continue;
            }
            let seg = s.file_name().to_string_lossy().into_owned();
            let age = age_secs(&path);
            let (reason, rows_age, ids) =
                if seg.starts_with('.') && (seg.ends_with(".tmp") || seg.ends_with(".old")) {
                    (Reason::Temporary, age, Vec::new())
                } else {
                    match rows.get(&(table.clone(), seg.clone())) {
                        Some(r) if r.live => continue,
                        Some(r) => (
                            Reason::ToDelete,
                            ((now_us - r.updated).max(0) / 1_000_000) as u64,
                            r.to_delete.clone(),
                        ),
                        None => (Reason::Unreferenced, age, Vec::new()),
                    }
                };
            out.push(Candidate {
                bytes: folder_bytes(&path),
                path,
                reason,
                age_secs: age.min(rows_age),
                rows: ids,
                removed: false,
            });
        }
    }
    Ok(out)
}

fn age_secs(path: &Path) -> u64 {
    let newest = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .chain(std::fs::metadata(path).ok().and_then(|m| m.modified().ok()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    SystemTime::now()
        .duration_since(newest)
        .unwrap_or_default()
        .as_secs()
}

fn folder_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
