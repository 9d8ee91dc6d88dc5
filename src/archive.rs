//! `archive`: the third tier. Days older than `archive.after_days` leave long-term storage
//! and live only in their backup, restorable with `restore`.
//!
//! A day is archived only when its journal says published and backed up and a deep verify
//! (every long-term file and every backup object re-read and re-hashed) finds nothing.
//! Its rows go first, in one transaction with the journal's `archive` row (the day stops
//! being searched at once); its folders stay until `archive.grace_hours` have passed
//! (read-only nodes may still have them open), then `gc` removes them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Tier};
use crate::day::Day;
use crate::error::{Error, Result};
use crate::journal::now_micros;
use crate::lifecycle::read::tier_days;
use crate::lifecycle::record::{self, ARCHIVE, RawEntry, Record};
use crate::lock::Lease;
use crate::meta::MetaDb;
use crate::verify::Verifier;

/// What `archive` does.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveOptions {
    /// Archive days more than this many days before today.
    pub older_than_days: u32,
    /// List only.
    pub dry_run: bool,
    /// Today in the configured timezone.
    pub today: Day,
}

/// A day archived (or, in a dry run, that would be).
#[derive(Debug, Clone, Serialize)]
pub struct ArchivedDay {
    /// The day.
    pub day: Day,
    /// Its partitions (table_ids) removed from long-term metadata.
    pub partitions: Vec<String>,
    /// Searchable rows removed.
    pub rows: i64,
    /// File rows removed.
    pub file_rows: usize,
    /// Segment folders left for `gc` after the grace period.
    pub folders: usize,
}

/// A day due for archiving but kept.
#[derive(Debug, Clone, Serialize)]
pub struct KeptDay {
    /// The day.
    pub day: Day,
    /// Why.
    pub reason: String,
}

/// What an archive run did.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveReport {
    /// Long-term collection.
    pub collection: String,
    /// Today.
    pub today: Day,
    /// Days older than this were due.
    pub older_than_days: u32,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Archived days.
    pub archived: Vec<ArchivedDay>,
    /// Days kept, with the reason.
    pub kept: Vec<KeptDay>,
    /// `archive.grace_hours`: folders of archived days stay this long.
    pub grace_hours: u64,
}

/// What the journal's `archive` row records in its detail.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ArchiveDetail {
    /// Partitions removed.
    pub partitions: Vec<String>,
    /// Segment folders, as `table_id/segment_id`, that `gc` removes after the grace.
    pub folders: Vec<String>,
}

/// Archive the due days.
pub async fn archive(config: &Config, opts: &ArchiveOptions) -> Result<ArchiveReport> {
    if config.backup.is_none() {
        return Err(Error::Config(
            "archive needs a `[backup]` section: an archived day lives only in its backup".into(),
        ));
    }
    let long_t = config.tier(Tier::LongTerm)?;
    // As migrate, restore and verify: the long-term storage root must be there (an
    // unmounted volume would make every day's files look missing).
    crate::check::require_storage_root(Tier::LongTerm, &long_t.storage_path)?;
    let (long, _, coll) = crate::context::connect(config, Tier::LongTerm).await?;
    let mut report = ArchiveReport {
        collection: coll.clone(),
        today: opts.today,
        older_than_days: opts.older_than_days,
        dry_run: opts.dry_run,
        archived: Vec::new(),
        kept: Vec::new(),
        grace_hours: config.archive.grace_hours,
    };
    let cutoff = Day(opts.today.0 - chrono::Days::new(u64::from(opts.older_than_days) + 1));
    let epoch = Day(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date"));
    let entries = record::read_range(&long, &coll, epoch, cutoff).await?;
    let mut by_day: BTreeMap<Day, Vec<RawEntry>> = BTreeMap::new();
    for e in entries {
        if let Ok(d) = e.day.parse::<Day>() {
            by_day.entry(d).or_default().push(e);
        }
    }
    let days: Vec<Day> = by_day.keys().copied().collect();
    let mut q = 0;
    let long_days = tier_days(&long, &coll, &long_t.tag_format, &days, &mut q).await?;
    let due: Vec<Day> = days
        .into_iter()
        .filter(|d| long_days.get(d).is_some_and(|l| l.partitions > 0))
        .collect();
    if due.is_empty() {
        return Ok(report);
    }
    let verifier = Verifier::connect(config).await?;
    for day in due {
        let entries = &by_day[&day];
        let done = |step: &str| entries.iter().any(|e| e.step == step && e.state == "done");
        let reason = if !done("publish") {
            Some(format!("journal has no `publish done` for day {day}"))
        } else if !done("backup") {
            Some(format!("journal has no `backup done` for day {day}"))
        } else {
            let v = verifier.verify_day(day, true).await?;
            (!v.ok).then(|| {
                let shown: Vec<String> = v
                    .findings
                    .iter()
                    .take(3)
                    .map(|f| format!("{} {}: {}", f.kind, f.subject, f.detail))
                    .collect();
                format!(
                    "verify --deep found {} problem(s): {}",
                    v.findings.len(),
                    shown.join("; ")
                )
            })
        };
        if let Some(reason) = reason {
            report.kept.push(KeptDay { day, reason });
            continue;
        }
        report
            .archived
            .push(archive_day(&long, &coll, &long_t.tag_format.tag(day), day, opts.dry_run).await?);
    }
    long.close().await;
    Ok(report)
}

async fn archive_day(
    long: &MetaDb,
    coll: &str,
    tag: &str,
    day: Day,
    dry_run: bool,
) -> Result<ArchivedDay> {
    let holder = format!("{}:{}:archive", crate::lock::hostname(), std::process::id());
    let lease = if dry_run {
        None
    } else {
        Some(
            Lease::acquire(
                long,
                &format!("migrate/{coll}/{day}"),
                &holder,
                Duration::from_secs(120),
            )
            .await??,
        )
    };
    let parts = long.partitions_tagged(coll, tag).await?;
    let ids: Vec<String> = parts.iter().map(|p| p.table_id.clone()).collect();
    let files = long.files(&ids, &[]).await?;
    let folders: BTreeSet<String> = files
        .iter()
        .map(|f| format!("{}/{}", f.table_id, f.segment_id))
        .collect();
    let rows = files
        .iter()
        .filter(|f| crate::segments::layout::PUBLISHED_TYPES.contains(&f.file_type))
        .filter(|f| f.file_type != crate::meta::FileType::Backup)
        .map(|f| f.row_count)
        .sum();
    let out = ArchivedDay {
        day,
        partitions: ids.clone(),
        rows,
        file_rows: files.len(),
        folders: folders.len(),
    };
    let Some(lease) = lease else {
        return Ok(out);
    };
    let started = now_micros();
    let result = async {
        lease.check().await?;
        let mut tx = long
            .begin_write()
            .await
            .map_err(long.err("begin archive transaction"))?;
        for id in &ids {
            long.delete_partition_in(&mut tx, id, coll).await?;
        }
        let detail = ArchiveDetail {
            partitions: ids.clone(),
            folders: folders.iter().cloned().collect(),
        };
        record::put_in(
            long,
            &mut tx,
            &Record {
                collection: coll,
                day,
                step: ARCHIVE,
                state: "done",
                run_id: &holder,
                started_at: started,
                finished_at: now_micros(),
                files: files.len() as i64,
                rows,
                bytes: files.iter().map(|f| f.file_size).sum(),
                detail: Some(serde_json::to_string(&detail).expect("detail serializes")),
            },
        )
        .await?;
        tx.commit()
            .await
            .map_err(long.err("commit archive transaction"))
    }
    .await;
    // The archive's own error wins over a failed release (the lease then expires).
    lease.release_after(result).await.map(|()| out)
}

/// Segment folders (`<storage>/db/tables/<table>/<segment>`) of days archived less than
/// `grace_hours` ago, which `gc` must leave in place; read from the journal.
pub async fn held_folders(
    long: &MetaDb,
    storage: &std::path::Path,
    grace_hours: u64,
) -> Result<BTreeSet<PathBuf>> {
    let rows = sqlx::query(
        "SELECT finished_at, detail, collection, day FROM milvus_tier_journal WHERE step = ? AND state = ?",
    )
    .bind(ARCHIVE)
    .bind("done")
    .fetch_all(long.pool())
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) if record::is_missing_table(&e) => return Ok(BTreeSet::new()),
        Err(e) => return Err(long.err("read archived days")(e)),
    };
    let grace_us = i64::try_from(grace_hours)
        .unwrap_or(i64::MAX)
        .saturating_mul(3_600_000_000);
    let now = now_micros();
    let mut out = BTreeSet::new();
    for r in rows {
        use sqlx::Row;
        let finished: Option<i64> = r.try_get(0).map_err(long.err("decode journal"))?;
        if finished.unwrap_or(0).saturating_add(grace_us) <= now {
            continue;
        }
        let detail: Option<String> = match r.try_get::<Option<String>, _>(1) {
            Ok(v) => v,
            Err(_) => r
                .try_get::<Option<Vec<u8>>, _>(1)
                .map_err(long.err("decode journal"))?
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        };
        // A detail that does not parse would hide the folders gc must keep: an error
        // naming the entry, as for a publish entry's detail.
        let d: ArchiveDetail = match detail.as_deref() {
            None => ArchiveDetail::default(),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                let col = |i| r.try_get::<String, _>(i).unwrap_or_else(|_| "?".into());
                Error::Conflict(format!(
                    "journal entry {}/{}/{ARCHIVE}: detail is not an archive record ({e}); \
                     inspect milvus_tier_journal before running gc",
                    col(2),
                    col(3)
                ))
            })?,
        };
        for f in d.folders {
            out.insert(storage.join("db").join("tables").join(f));
        }
    }
    Ok(out)
}
