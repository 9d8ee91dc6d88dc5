//! `status`: one line per day with both tiers, the journal, the backup, the last verify and
//! the archive, and the day's phase; read in a bounded number of queries for any range
//! (one per tier and one for the journal per 500 days).

use std::collections::BTreeMap;

use serde::Serialize;

use super::phase::{self, Facts, Phase};
use super::read::{TierDay, tier_days};
use super::record::{self, RawEntry};
use crate::config::{Config, Tier};
use crate::day::Day;
use crate::error::Result;

/// What `status` reads.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// First day.
    pub from: Day,
    /// Last day.
    pub to: Day,
    /// Today in the configured timezone (ages and lag are counted from it).
    pub today: Day,
}

/// The short-term side of a day.
#[derive(Debug, Clone, Serialize)]
pub struct ShortTerm {
    /// NORMAL partitions.
    pub partitions: u32,
    /// Searchable rows.
    pub rows: i64,
    /// Searchable files.
    pub files: u32,
    /// Bytes of those files.
    pub bytes: i64,
    /// The engine still writes the day (NEW, NEW_MERGE, NEW_INDEX files).
    pub writing: bool,
    /// The day's partitions were dropped (TO_DELETE, or gone after the publish).
    pub dropped: bool,
}

/// The long-term side of a day.
#[derive(Debug, Clone, Serialize)]
pub struct LongTerm {
    /// NORMAL partitions.
    pub partitions: u32,
    /// Published, searchable rows.
    pub rows: i64,
    /// Files.
    pub files: u32,
    /// INDEX files.
    pub index_files: u32,
    /// RAW and TO_INDEX files.
    pub raw_files: u32,
    /// Bytes on storage (searchable files and the raw files kept beside their index).
    pub bytes: i64,
}

/// The last migration run of a day (stage, build, publish, backup rows of one run id).
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    /// Run id.
    pub run_id: String,
    /// `done`, `running`, `failed`, or `not_ready` (it stopped because the day was not
    /// ready: still growing; a later run takes it).
    pub outcome: String,
    /// Last step the run reached.
    pub step: String,
    /// The step that failed, if any.
    pub failed_step: Option<String>,
    /// The error recorded by the failed step.
    pub error: Option<String>,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended, if it did.
    pub finished_at: Option<String>,
    /// Seconds from start to end (or to the last update).
    pub seconds: f64,
}

/// The day's backup, as the journal's `backup done` records it (the manifest is written
/// last, so a done backup has its manifest).
#[derive(Debug, Clone, Serialize)]
pub struct BackupState {
    /// The manifest was written.
    pub manifest: bool,
    /// When.
    pub at: Option<String>,
    /// Bytes uploaded or present.
    pub bytes: i64,
    /// Files.
    pub files: i64,
}

/// The last recorded `verify` of a day.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyState {
    /// When it finished.
    pub at: String,
    /// Findings (0 = everything agreed).
    pub findings: i64,
    /// `--deep` (files and objects re-hashed).
    pub deep: bool,
    /// It ran after the current publish (an earlier verify says nothing about a re-publish).
    pub current: bool,
}

/// The day's archive.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveState {
    /// When the rows were removed from long-term.
    pub at: String,
    /// From when `gc` may remove the folders.
    pub folders_removable_after: String,
    /// Rows removed.
    pub rows: i64,
    /// Files (of long-term storage) the folders hold.
    pub files: i64,
    /// The archive is still in force (no publish or restore since).
    pub current: bool,
}

/// One day.
#[derive(Debug, Clone, Serialize)]
pub struct DayStatus {
    /// The day.
    pub day: Day,
    /// Days between it and today.
    pub age_days: i64,
    /// Derived phase.
    pub phase: Phase,
    /// Older than `status.max_lag_days` and not yet published (and backed up).
    pub behind: bool,
    /// Short-term.
    pub short_term: ShortTerm,
    /// Long-term.
    pub long_term: LongTerm,
    /// Last migration run, if any.
    pub last_run: Option<LastRun>,
    /// Backup, if recorded.
    pub backup: Option<BackupState>,
    /// Last verify, if recorded.
    pub verify: Option<VerifyState>,
    /// Archive, if recorded.
    pub archive: Option<ArchiveState>,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Format of this document.
    pub format_version: u32,
    /// Long-term collection (the journal's key).
    pub collection: String,
    /// Short-term collection.
    pub short_term_collection: String,
    /// Today in the configured timezone.
    pub today: Day,
    /// First day shown.
    pub from: Day,
    /// Last day shown.
    pub to: Day,
    /// `status.max_lag_days`.
    pub max_lag_days: u32,
    /// A backup target is configured (then "published" needs "backed up" too).
    pub backup_configured: bool,
    /// Database queries the report took.
    pub queries: u32,
    /// Days, oldest first.
    pub days: Vec<DayStatus>,
    /// Days per phase (phases with none left out).
    pub phases: BTreeMap<Phase, u32>,
    /// Days behind, oldest first.
    pub behind: Vec<Day>,
    /// The oldest day behind.
    pub oldest_behind: Option<Day>,
    /// The newest day published in long-term.
    pub last_published: Option<Day>,
    /// The newest day verified.
    pub last_verified: Option<Day>,
    /// Bytes of the backups recorded in the range.
    pub backup_bytes: i64,
}

/// Microseconds since the epoch as RFC 3339 (UTC, seconds).
pub fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

const MIGRATION_STEPS: [&str; 4] = ["stage", "build", "publish", "backup"];

fn step_rank(s: &str) -> usize {
    MIGRATION_STEPS.iter().position(|x| *x == s).unwrap_or(0)
}

/// The parsed `detail` of a journal entry, if it holds JSON.
fn detail_json(e: &RawEntry) -> Option<serde_json::Value> {
    e.detail
        .as_deref()
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
}

/// A failed entry whose run stopped because the day was not ready (the error kind the run
/// recorded), not because something went wrong.
fn failed_not_ready(e: &RawEntry) -> bool {
    e.state == "failed"
        && detail_json(e).is_some_and(|d| d["kind"] == crate::error::ErrorKind::NotReady.name())
}

fn last_run(entries: &[&RawEntry]) -> Option<LastRun> {
    let latest = entries
        .iter()
        .filter(|e| MIGRATION_STEPS.contains(&e.step.as_str()))
        .max_by_key(|e| e.started_at)?;
    let run: Vec<&&RawEntry> = entries
        .iter()
        .filter(|e| MIGRATION_STEPS.contains(&e.step.as_str()) && e.run_id == latest.run_id)
        .collect();
    // A real failure says more than "not ready" when a run recorded both.
    let failed = run
        .iter()
        .find(|e| e.state == "failed" && !failed_not_ready(e))
        .or_else(|| run.iter().find(|e| e.state == "failed"));
    let running = run.iter().any(|e| e.state == "running");
    let started = run.iter().map(|e| e.started_at).min().unwrap_or(0);
    let finished = if running {
        None
    } else {
        run.iter().filter_map(|e| e.finished_at).max()
    };
    let end = finished.unwrap_or_else(|| run.iter().map(|e| e.started_at).max().unwrap_or(0));
    let step = run
        .iter()
        .max_by_key(|e| step_rank(&e.step))
        .map(|e| e.step.clone())
        .unwrap_or_default();
    let error = failed.and_then(|e| {
        e.detail.as_deref().map(|d| {
            detail_json(e)
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| d.to_string())
        })
    });
    Some(LastRun {
        run_id: latest.run_id.clone(),
        outcome: if failed.is_some_and(|e| failed_not_ready(e)) {
            "not_ready"
        } else if failed.is_some() {
            "failed"
        } else if running {
            "running"
        } else {
            "done"
        }
        .to_string(),
        step,
        failed_step: failed.map(|e| e.step.clone()),
        error,
        started_at: rfc3339(started),
        finished_at: finished.map(rfc3339),
        seconds: (end - started).max(0) as f64 / 1e6,
    })
}

/// Read the status of `opts.from..=opts.to`.
pub async fn status(config: &Config, opts: &StatusOptions) -> Result<StatusReport> {
    let days = Day::range(opts.from, opts.to)?;
    let short_t = config.tier(Tier::ShortTerm)?;
    let long_t = config.tier(Tier::LongTerm)?;
    let (short, _, short_coll) = crate::context::connect(config, Tier::ShortTerm).await?;
    let (long, _, long_coll) = crate::context::connect(config, Tier::LongTerm).await?;
    let mut queries = 0u32;
    let short_days = tier_days(
        &short,
        &short_coll,
        &short_t.tag_format,
        &days,
        &mut queries,
    )
    .await?;
    let long_days = tier_days(&long, &long_coll, &long_t.tag_format, &days, &mut queries).await?;
    queries += 1;
    let journal = record::read_range(&long, &long_coll, opts.from, opts.to).await?;
    short.close().await;
    long.close().await;
    let mut by_day: BTreeMap<String, Vec<&RawEntry>> = BTreeMap::new();
    for e in &journal {
        by_day.entry(e.day.clone()).or_default().push(e);
    }
    let backup_configured = config.backup.is_some();
    let grace_us = i64::try_from(config.archive.grace_hours)
        .unwrap_or(i64::MAX / 7_200_000_000)
        .saturating_mul(3_600_000_000);
    let mut out = Vec::with_capacity(days.len());
    for day in &days {
        let none = Vec::new();
        let entries = by_day.get(&day.to_string()).unwrap_or(&none);
        let step = |name: &str| entries.iter().find(|e| e.step == name).copied();
        let s = short_days.get(day).cloned().unwrap_or_default();
        let l = long_days.get(day).cloned().unwrap_or_default();
        let publish = step("publish").filter(|e| e.state == "done");
        let publish_at = publish.and_then(|p| p.finished_at).unwrap_or(i64::MIN);
        let backup = step("backup").filter(|e| e.state == "done");
        let verify = step(record::VERIFY).filter(|e| e.state == "done");
        let archive = step(record::ARCHIVE).filter(|e| e.state == "done");
        let migration: Vec<&&RawEntry> = entries
            .iter()
            .filter(|e| MIGRATION_STEPS.contains(&e.step.as_str()))
            .collect();
        let verify_current = verify.is_some_and(|v| v.finished_at.unwrap_or(0) >= publish_at);
        let archive_current = archive.is_some_and(|a| a.finished_at.unwrap_or(0) >= publish_at);
        let short_dropped = s.partitions == 0 && (s.deleted_partitions > 0 || publish.is_some());
        let facts = Facts {
            short_partitions: s.partitions,
            short_dropped,
            long_partitions: l.partitions,
            running: migration.iter().any(|e| e.state == "running"),
            failed: migration
                .iter()
                .any(|e| e.state == "failed" && !failed_not_ready(e)),
            not_ready: migration.iter().any(|e| failed_not_ready(e)),
            started: !migration.is_empty(),
            published: publish.is_some(),
            backed_up: backup.is_some(),
            backup_configured,
            verified: verify_current && verify.is_some_and(|v| v.rows == 0),
            archived: archive_current,
        };
        let phase = phase::derive(&facts);
        let age_days = (opts.today.0 - day.0).num_days();
        let safe = facts.published && (facts.backed_up || !backup_configured);
        let has_data = s.partitions > 0 || !migration.is_empty();
        let behind = age_days > i64::from(config.status.max_lag_days)
            && has_data
            && !safe
            && phase != Phase::Archived;
        out.push(DayStatus {
            day: *day,
            age_days,
            phase,
            behind,
            short_term: ShortTerm {
                partitions: s.partitions,
                rows: s.rows,
                files: s.files,
                bytes: s.bytes,
                writing: s.writing_files > 0,
                dropped: short_dropped,
            },
            long_term: long_of(&l),
            last_run: last_run(entries),
            backup: backup.map(|b| BackupState {
                manifest: true,
                at: b.finished_at.map(rfc3339),
                bytes: b.bytes,
                files: b.files,
            }),
            verify: verify.map(|v| VerifyState {
                at: rfc3339(v.finished_at.unwrap_or(v.started_at)),
                findings: v.rows,
                deep: v
                    .detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                    .and_then(|d| d["deep"].as_bool())
                    .unwrap_or(false),
                current: verify_current,
            }),
            archive: archive.map(|a| {
                let at = a.finished_at.unwrap_or(a.started_at);
                ArchiveState {
                    at: rfc3339(at),
                    folders_removable_after: rfc3339(at.saturating_add(grace_us)),
                    rows: a.rows,
                    files: a.files,
                    current: archive_current,
                }
            }),
        });
    }
    let mut phases = BTreeMap::new();
    for d in &out {
        *phases.entry(d.phase).or_insert(0) += 1;
    }
    let behind: Vec<Day> = out.iter().filter(|d| d.behind).map(|d| d.day).collect();
    let last_published = out
        .iter()
        .rev()
        .find(|d| d.phase >= Phase::Published && d.phase != Phase::Archived)
        .map(|d| d.day);
    let last_verified = out
        .iter()
        .rev()
        .find(|d| {
            d.verify
                .as_ref()
                .is_some_and(|v| v.current && v.findings == 0)
        })
        .map(|d| d.day);
    Ok(StatusReport {
        format_version: 1,
        collection: long_coll,
        short_term_collection: short_coll,
        today: opts.today,
        from: opts.from,
        to: opts.to,
        max_lag_days: config.status.max_lag_days,
        backup_configured,
        queries,
        backup_bytes: out
            .iter()
            .filter_map(|d| d.backup.as_ref())
            .map(|b| b.bytes)
            .sum(),
        oldest_behind: behind.first().copied(),
        behind,
        last_published,
        last_verified,
        phases,
        days: out,
    })
}

fn long_of(l: &TierDay) -> LongTerm {
    LongTerm {
        partitions: l.partitions,
        rows: l.rows,
        files: l.files,
        index_files: l.index_files,
        raw_files: l.raw_files,
        bytes: l.bytes,
    }
}
