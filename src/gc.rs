//! `gc`: remove what long-term storage holds but no long-term row needs: segment folders no
//! `TableFiles` row references (e.g. left by an interrupted run), folders referenced only by
//! TO_DELETE rows (read-only nodes never clean those; the rows go too), and temporary
//! folders of the copier. Nothing is removed while a run is in flight (a running journal
//! entry, or a live lease of a run that writes long-term folders), nor before the grace
//! period has passed, nor anything gc could not read.
//!
//! gc holds the storage-wide lease [`GC_LOCK`] for its whole run. Before each removal it
//! proves, in one transaction, that it still holds that lease (the fencing update every
//! fenced write does), that no run is in flight and that the folder is still garbage; then
//! it removes the folder. A writer of long-term folders (publish, restore's repair) first
//! makes itself visible (its day's lease, its running journal entry), then waits until no
//! gc holds [`GC_LOCK`] ([`wait_until_gc_ends`]), then writes: either gc sees the writer,
//! or the writer sees gc. So gc never removes a folder a live publish or restore writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use crate::config::{Config, Tier};
use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::journal::{Journal, now_micros};
use crate::lock::Lease;
use crate::meta::{FileType, MetaDb};

/// Name of the lease gc holds for its run. One name for the whole long-term storage: gc
/// walks and removes folders of every collection under `db/tables/`, and the lock table
/// lives in the long-term metadata database, one per long-term storage.
pub const GC_LOCK: &str = "gc";

/// Prefix of the leases held by runs that write long-term folders (migrate's publish,
/// restore and its repair, archive): `migrate/<collection>/<day>`.
const WRITER_LOCKS: &str = "migrate/%";

/// [`Candidate::kept`] of a folder a dry run would remove.
pub const DRY_RUN: &str = "dry run: would be removed";

/// Options of a gc run.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// List only.
    pub dry_run: bool,
    /// Keep anything younger than this.
    pub grace: Duration,
}

/// Why a folder is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No `TableFiles` row references the segment.
    Unreferenced,
    /// Only TO_DELETE rows reference it.
    ToDelete,
    /// A temporary folder of the copier (`.<segment>.tmp`, `.<segment>.old`).
    Temporary,
    /// A partition folder gc could not list: what it holds is unknown, and it is kept.
    Unreadable,
}

/// One folder found.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// The folder.
    pub path: PathBuf,
    /// Why.
    pub reason: Reason,
    /// Bytes in it (unknown when the folder could not be read).
    pub bytes: Option<u64>,
    /// Seconds since it (or its rows) last changed (unknown when it could not be read).
    pub age_secs: Option<u64>,
    /// TO_DELETE row ids removed with it.
    pub rows: Vec<i64>,
    /// Why its entries or times could not be read; such a folder is never removed.
    pub unreadable: Option<String>,
    /// Whether it was removed now.
    pub removed: bool,
    /// Why it was kept (None when removed).
    pub kept: Option<String>,
}

/// What gc found and did.
#[derive(Debug, Clone, Serialize)]
pub struct GcReport {
    /// Every folder found.
    pub candidates: Vec<Candidate>,
    /// Runs in flight (running journal entries `collection day step run`, live leases of
    /// runs that write long-term folders); nothing is removed while any is.
    pub in_flight: Vec<String>,
    /// Folders removed.
    pub removed: usize,
    /// Bytes removed.
    pub bytes_removed: u64,
}

#[derive(Default, Clone)]
struct SegRows {
    live: bool,
    to_delete: Vec<i64>,
    updated: i64,
}

/// Run gc on long-term storage.
pub async fn gc(config: &Config, opts: &GcOptions) -> Result<GcReport> {
    // As migrate and restore: the root must exist and be Milvus storage, never created.
    let root = config.tier(Tier::LongTerm)?.storage_path;
    crate::check::require_storage_root(Tier::LongTerm, &root)?;
    let (long, storage, _) = crate::context::connect(config, Tier::LongTerm).await?;
    long.check_schema().await?;
    Journal::open(&long).await?;
    if opts.dry_run {
        return collect(config, &long, &storage, opts, None).await;
    }
    let holder = format!(
        "{}:{}:gc-{:x}",
        crate::lock::hostname(),
        std::process::id(),
        now_micros()
    );
    let lease = Lease::acquire_waiting(
        &long,
        GC_LOCK,
        &holder,
        config.lease_ttl(),
        config.lock_wait(),
    )
    .await?;
    let result = collect(config, &long, &storage, opts, Some(&lease)).await;
    lease.release_after(result).await
}

/// Walk, then (holding `lease`; none on a dry run) remove what may go.
async fn collect(
    config: &Config,
    long: &MetaDb,
    storage: &Path,
    opts: &GcOptions,
    lease: Option<&Lease>,
) -> Result<GcReport> {
    let in_flight = in_flight(long, None).await?;
    let rows = segment_rows(long).await?;
    // Folders of days archived within `archive.grace_hours`: read-only nodes may still
    // have their files open.
    let held = crate::archive::held_folders(long, storage, config.archive.grace_hours).await?;
    let tables = storage.join("db").join("tables");
    // The walk reads every folder of long-term storage: on a blocking thread.
    let mut candidates = tokio::task::spawn_blocking(move || find(&tables, &rows))
        .await
        .map_err(|e| Error::Io {
            op: "walk",
            path: storage.join("db").join("tables"),
            source: std::io::Error::other(e.to_string()),
        })??;
    let mut report = GcReport {
        candidates: Vec::new(),
        in_flight,
        removed: 0,
        bytes_removed: 0,
    };
    let grace = opts.grace.as_secs();
    for c in &mut candidates {
        let kept = if let Some(why) = &c.unreadable {
            Some(format!("unreadable: {why}"))
        } else if !report.in_flight.is_empty() {
            Some("run in flight".to_string())
        } else if c.age_secs.is_none_or(|a| a < grace) {
            Some("within grace period".to_string())
        } else if held.contains(&c.path) {
            Some("archived within archive.grace_hours".to_string())
        } else {
            None
        };
        if kept.is_some() {
            c.kept = kept;
            continue;
        }
        let Some(lease) = lease.filter(|_| !opts.dry_run) else {
            c.kept = Some(DRY_RUN.to_string());
            continue;
        };
        c.kept = remove(long, lease, c, &mut report.in_flight).await?;
        if c.kept.is_none() {
            c.removed = true;
            report.removed += 1;
            report.bytes_removed += c.bytes.unwrap_or(0);
        }
    }
    report.candidates = candidates;
    Ok(report)
}

/// Remove one folder (and its TO_DELETE rows), in a transaction that first proves gc
/// still holds its lease, that no run is in flight and that the folder is still garbage.
/// Returns why it was kept, or None once removed.
async fn remove(
    long: &MetaDb,
    lease: &Lease,
    c: &Candidate,
    in_flight_seen: &mut Vec<String>,
) -> Result<Option<String>> {
    failpoint("gc.before_remove");
    let mut tx = long
        .begin_write()
        .await
        .map_err(|e| Error::meta(long.target(), "begin gc transaction", e))?;
    // The fencing token: a gc that lost its lease stops here, before removing anything.
    lease.fence().hold(&mut tx).await?;
    let busy = in_flight(long, Some(&mut tx)).await?;
    if !busy.is_empty() {
        for b in busy {
            if !in_flight_seen.contains(&b) {
                in_flight_seen.push(b);
            }
        }
        tx.rollback()
            .await
            .map_err(|e| Error::meta(long.target(), "roll back gc transaction", e))?;
        return Ok(Some("run in flight".to_string()));
    }
    if let Some(changed) = rows_changed(long, &mut tx, c).await? {
        tx.rollback()
            .await
            .map_err(|e| Error::meta(long.target(), "roll back gc transaction", e))?;
        return Ok(Some(changed));
    }
    for id in &c.rows {
        long.delete_to_delete_file_in(&mut tx, *id).await?;
    }
    tracing::info!(folder = %c.path.display(), reason = ?c.reason, "gc removes a folder");
    match tokio::fs::remove_dir_all(&c.path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io("remove", &c.path, e));
        }
        _ => {}
    }
    tx.commit()
        .await
        .map_err(|e| Error::meta(long.target(), "commit gc transaction", e))?;
    Ok(None)
}

/// Whether the rows of `c`'s segment changed since the walk (a publish committed it
/// meanwhile, or its TO_DELETE rows changed): why it is kept, or None.
async fn rows_changed(
    long: &MetaDb,
    tx: &mut Transaction<'static, Any>,
    c: &Candidate,
) -> Result<Option<String>> {
    if c.reason == Reason::Temporary {
        return Ok(None);
    }
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (table, seg) = (name(c.path.parent()), name(Some(&c.path)));
    let mut ids = Vec::new();
    for r in long.segment_refs_in(tx, &table, &seg).await? {
        if r.file_type != Some(FileType::ToDelete) {
            return Ok(Some(format!(
                "referenced now by TableFiles row id {}",
                r.id
            )));
        }
        ids.push(r.id);
    }
    let mut before = c.rows.clone();
    before.sort_unstable();
    Ok((ids != before).then(|| "its TO_DELETE rows changed since the walk".to_string()))
}

/// Runs in flight: running journal entries, and live leases of runs that write long-term
/// folders. Read in `tx` when given (the removal's fenced transaction).
async fn in_flight(
    long: &MetaDb,
    mut tx: Option<&mut Transaction<'static, Any>>,
) -> Result<Vec<String>> {
    let q = sqlx::query(
        "SELECT collection, day, step, run_id FROM milvus_tier_journal WHERE state = ? ORDER BY collection, day, step",
    )
    .bind("running");
    let rows = match tx.as_deref_mut() {
        Some(tx) => q.fetch_all(&mut **tx).await,
        None => q.fetch_all(long.pool()).await,
    }
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
    let q = sqlx::query(
        "SELECT name, holder FROM milvus_tier_lock WHERE name LIKE ? AND expires_at > ? ORDER BY name",
    )
    .bind(WRITER_LOCKS)
    .bind(now_micros());
    let rows = match tx {
        Some(tx) => q.fetch_all(&mut **tx).await,
        None => q.fetch_all(long.pool()).await,
    }
    .map_err(|e| Error::meta(long.target(), "read held locks", e))?;
    for r in rows {
        let dec = |e| Error::meta(long.target(), "decode lock", e);
        let name: String = r.try_get(0).map_err(dec)?;
        let holder: String = r.try_get(1).map_err(dec)?;
        out.push(format!("lock {name} held by {holder}"));
    }
    Ok(out)
}

/// For a run about to write long-term folders, after it made itself visible to gc (its
/// day's lease, its running journal entry): wait until no gc holds [`GC_LOCK`], up to
/// `wait`. A gc still holding it then is [`Error::NotReady`] (retryable): nothing was
/// written, and a later run can write.
pub async fn wait_until_gc_ends(long: &MetaDb, wait: Duration) -> Result<()> {
    let deadline = now_micros().saturating_add(i64::try_from(wait.as_micros()).unwrap_or(i64::MAX));
    let mut logged = false;
    loop {
        let row = sqlx::query("SELECT holder, expires_at FROM milvus_tier_lock WHERE name = ?")
            .bind(GC_LOCK)
            .fetch_optional(long.pool())
            .await
            .map_err(long.err(format!("read lock {GC_LOCK}")))?;
        let now = now_micros();
        let Some(row) = row else {
            return Ok(());
        };
        let holder: String = row.try_get(0).map_err(long.err("decode lock"))?;
        let expires: i64 = row.try_get(1).map_err(long.err("decode lock"))?;
        if expires <= now || crate::lock::holder_is_dead(&holder) {
            return Ok(());
        }
        if now >= deadline {
            return Err(Error::NotReady(format!(
                "gc holds long-term storage (lock `{GC_LOCK}` held by {holder} until {}); nothing was written to long-term storage; retry once it ends",
                chrono::DateTime::from_timestamp_micros(expires)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            )));
        }
        if !logged {
            tracing::info!(lock = GC_LOCK, %holder, "gc holds long-term storage; waiting for it to end before writing");
            logged = true;
        }
        let left = Duration::from_micros((deadline - now).max(0) as u64);
        tokio::time::sleep(left.min(Duration::from_millis(200))).await;
    }
}

async fn segment_rows(long: &MetaDb) -> Result<BTreeMap<(String, String), SegRows>> {
    let mut map: BTreeMap<(String, String), SegRows> = BTreeMap::new();
    for r in long.all_file_refs().await? {
        let e = map.entry((r.table_id, r.segment_id)).or_default();
        if r.file_type == Some(FileType::ToDelete) {
            e.to_delete.push(r.id);
            e.updated = e.updated.max(r.updated_time);
        } else {
            e.live = true;
        }
    }
    Ok(map)
}

/// The walk (blocking: run it on a blocking thread). A partition folder that cannot be
/// listed is reported as [`Reason::Unreadable`]; a segment folder whose entries or times
/// cannot be read is reported with `unreadable` set. Neither is ever removed.
fn find(tables: &Path, rows: &BTreeMap<(String, String), SegRows>) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    let list = |dir: &Path| -> std::io::Result<Vec<std::fs::DirEntry>> {
        let mut v = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
        v.sort_by_key(|e| e.file_name());
        Ok(v)
    };
    let unreadable = |path: PathBuf, reason: Reason, e: std::io::Error| Candidate {
        unreadable: Some(format!("{}: {e}", path.display())),
        path,
        reason,
        bytes: None,
        age_secs: None,
        rows: Vec::new(),
        removed: false,
        kept: None,
    };
    let now_us = now_micros();
    let is_dir = |e: &std::fs::DirEntry| e.file_type().map(|t| t.is_dir());
    for t in list(tables).map_err(|e| Error::io("list", tables, e))? {
        match is_dir(&t) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                out.push(unreadable(t.path(), Reason::Unreadable, e));
                continue;
            }
        }
        let table = t.file_name().to_string_lossy().into_owned();
        let segs = match list(&t.path()) {
            Ok(s) => s,
            Err(e) => {
                out.push(unreadable(t.path(), Reason::Unreadable, e));
                continue;
            }
        };
        for s in segs {
            let path = s.path();
            let seg = s.file_name().to_string_lossy().into_owned();
            let dir = is_dir(&s);
            if matches!(dir, Ok(false)) {
                continue;
            }
            let (reason, rows_age, ids) =
                if seg.starts_with('.') && (seg.ends_with(".tmp") || seg.ends_with(".old")) {
                    (Reason::Temporary, None, Vec::new())
                } else {
                    match rows.get(&(table.clone(), seg.clone())) {
                        Some(r) if r.live => continue,
                        Some(r) => (
                            Reason::ToDelete,
                            Some(((now_us - r.updated).max(0) / 1_000_000) as u64),
                            r.to_delete.clone(),
                        ),
                        None => (Reason::Unreferenced, None, Vec::new()),
                    }
                };
            let read = dir.and_then(|_| read_folder(&path));
            let mut c = match read {
                Ok((bytes, age)) => Candidate {
                    path,
                    reason,
                    bytes: Some(bytes),
                    age_secs: Some(rows_age.map_or(age, |r: u64| r.min(age))),
                    rows: Vec::new(),
                    unreadable: None,
                    removed: false,
                    kept: None,
                },
                Err(e) => unreadable(path, reason, e),
            };
            c.rows = ids;
            out.push(c);
        }
    }
    Ok(out)
}

/// A segment folder's bytes (its regular files) and age (seconds since the newest time of
/// the folder and its entries). Any entry or time that cannot be read is an error: an
/// unknown age must never look old.
fn read_folder(path: &Path) -> std::io::Result<(u64, u64)> {
    read_failpoint(path)?;
    let mut newest = std::fs::symlink_metadata(path)?.modified()?;
    let mut bytes = 0;
    for e in std::fs::read_dir(path)? {
        let m = e?.metadata()?;
        newest = newest.max(m.modified()?);
        if m.is_file() {
            bytes += m.len();
        }
    }
    let age = SystemTime::now()
        .duration_since(newest)
        .unwrap_or_default()
        .as_secs();
    Ok((bytes, age))
}

/// The I/O failpoint `gc.read_folder/<table_id>/<segment_id>`: reading the folder fails.
fn read_failpoint(path: &Path) -> std::io::Result<()> {
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    crate::failpoint::failpoint_io(&format!(
        "gc.read_folder/{}/{}",
        name(path.parent()),
        name(Some(path))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_that_cannot_be_read_has_no_age() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("t").join("1999");
        let e = read_folder(&gone).expect_err("a missing folder cannot be read");
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        std::fs::create_dir_all(&gone).unwrap();
        std::fs::write(gone.join("a"), [1u8; 5]).unwrap();
        let (bytes, age) = read_folder(&gone).unwrap();
        assert_eq!((bytes, age < 3600), (5, true));
    }

    #[test]
    fn the_walk_lists_segment_folders_and_skips_what_is_not_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let tables = dir.path().join("db/tables");
        std::fs::create_dir_all(tables.join("7/9")).unwrap();
        // A partition "folder" that is a dangling symbolic link is not a folder: skipped.
        std::os::unix::fs::symlink(dir.path().join("nowhere"), tables.join("8")).unwrap();
        let found = find(&tables, &BTreeMap::new()).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, tables.join("7/9"));
        assert_eq!(found[0].reason, Reason::Unreferenced);
        assert!(found[0].unreadable.is_none());
        assert_eq!(found[0].bytes, Some(0));
    }
}
