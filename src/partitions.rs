//! `partitions rotate`: keep the short-term cluster's daily partitions in step with the
//! calendar, through the Milvus HTTP API of its writable node.
//!
//! Creates the partitions of today and the next `create_ahead_days` days when absent, and
//! drops partitions older than `retention_days` only when a [`DayCheck`] confirms the day is
//! safely in long-term (and in the backup, when one is configured). Today and yesterday are
//! never dropped. A day that cannot be confirmed is kept and reported: the command then
//! exits non-zero so the scheduler alerts.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::day::{Day, TagFormat};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::journal::{Journal, State, Step};
use crate::meta::{FileType, MetaDb, TableState};

/// The `[partitions]` configuration section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartitionsConfig {
    /// Create the partitions of today and this many following days.
    pub create_ahead_days: u32,
    /// Drop partitions of days more than this many days before today (at least 1; today
    /// and yesterday are never dropped whatever the value).
    pub retention_days: u32,
    /// Drop a day only when the last `verify --deep` of it recorded in long-term's journal
    /// found nothing and finished at most this many hours ago (0 turns the requirement off).
    pub deep_verify_max_age_hours: u32,
}

impl Default for PartitionsConfig {
    fn default() -> Self {
        PartitionsConfig {
            create_ahead_days: 2,
            retention_days: 2,
            deep_verify_max_age_hours: 24,
        }
    }
}

impl PartitionsConfig {
    /// Check the bounds.
    pub fn validate(&self) -> Result<()> {
        if self.retention_days == 0 {
            return Err(Error::Config(
                "key `partitions.retention_days` must be at least 1".into(),
            ));
        }
        if self.create_ahead_days > 31 {
            return Err(Error::Config(
                "key `partitions.create_ahead_days` must be at most 31".into(),
            ));
        }
        Ok(())
    }
}

/// Whether a day may leave short-term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// In long-term (and the backup): safe to drop.
    Confirmed,
    /// Not safe; the reason names what is missing.
    NotConfirmed(String),
}

/// Confirms that a day's data is safe elsewhere before its short-term partition is dropped.
pub trait DayCheck {
    /// The verdict for `day`.
    fn check(&self, day: Day) -> impl Future<Output = Result<Verdict>> + Send;
}

/// The journal part of the check: the journal says `publish` is done (and `backup`, when
/// `[backup]` is configured), and every short-term partition of the day has a long-term
/// partition with the same table_id and the same searchable row count.
pub struct JournalCheck {
    /// Short-term metadata.
    pub short: MetaDb,
    /// Long-term metadata (holds the journal).
    pub long: MetaDb,
    /// Short-term collection.
    pub short_collection: String,
    /// Long-term collection (the journal's key).
    pub long_collection: String,
    /// Short-term tag format.
    pub short_tags: TagFormat,
    /// Long-term tag format.
    pub long_tags: TagFormat,
    /// Require `backup done` too.
    pub backup_required: bool,
}

async fn searchable_rows(db: &MetaDb, table_id: &str) -> Result<i64> {
    let files = db
        .files(
            &[table_id.to_string()],
            &[FileType::Raw, FileType::ToIndex, FileType::Index],
        )
        .await?;
    Ok(files.iter().map(|f| f.row_count).sum())
}

impl DayCheck for JournalCheck {
    async fn check(&self, day: Day) -> Result<Verdict> {
        let journal = Journal::open(&self.long).await?;
        let day_s = day.to_string();
        let journal = &journal;
        let day_ref = &day_s;
        let done = |step| async move {
            Ok::<_, Error>(
                journal
                    .get(&self.long_collection, day_ref, step)
                    .await?
                    .is_some_and(|e| e.state == State::Done),
            )
        };
        if !done(Step::Publish).await? {
            return Ok(Verdict::NotConfirmed(format!(
                "journal has no `publish done` for long-term collection `{}` day {day}",
                self.long_collection
            )));
        }
        if self.backup_required && !done(Step::Backup).await? {
            return Ok(Verdict::NotConfirmed(format!(
                "journal has no `backup done` for day {day}"
            )));
        }
        let short = self
            .short
            .partitions_tagged(&self.short_collection, &self.short_tags.tag(day))
            .await?;
        let long = self
            .long
            .partitions_tagged(&self.long_collection, &self.long_tags.tag(day))
            .await?;
        for p in short.iter().filter(|p| p.state == TableState::Normal) {
            let Some(lp) = long
                .iter()
                .find(|l| l.table_id == p.table_id && l.state == TableState::Normal)
            else {
                return Ok(Verdict::NotConfirmed(format!(
                    "short-term partition {} ({}) has no long-term partition",
                    p.table_id, p.partition_tag
                )));
            };
            let (s, l) = (
                searchable_rows(&self.short, &p.table_id).await?,
                searchable_rows(&self.long, &lp.table_id).await?,
            );
            if s != l {
                return Ok(Verdict::NotConfirmed(format!(
                    "partition {} ({}): short-term has {s} rows, long-term {l}",
                    p.table_id, p.partition_tag
                )));
            }
        }
        Ok(Verdict::Confirmed)
    }
}

/// The check rotation uses: [`JournalCheck`], then a full `verify` of the day (long-term
/// rows ↔ files on long-term storage ↔ the backup manifest and objects ↔ short-term counts).
/// Any finding keeps the day, and the reason names the first findings.
pub struct VerifiedCheck {
    /// The journal and row-count check, run first (cheap).
    pub journal: JournalCheck,
    /// The verifier of published days.
    pub verifier: crate::verify::Verifier,
    /// [`PartitionsConfig::deep_verify_max_age_hours`].
    pub deep_verify_max_age_hours: u32,
}

impl VerifiedCheck {
    /// The last recorded `verify` of the day must be deep, clean and recent enough: only a
    /// re-hash of long-term sees a changed byte in a file of the right size.
    async fn deep_verified(&self, day: Day) -> Result<Verdict> {
        use crate::lifecycle::record::{VERIFY, read_range};
        let hours = self.deep_verify_max_age_hours;
        if hours == 0 {
            return Ok(Verdict::Confirmed);
        }
        let rows = read_range(&self.journal.long, &self.journal.long_collection, day, day).await?;
        let Some(v) = rows.iter().find(|e| e.step == VERIFY) else {
            return Ok(Verdict::NotConfirmed(format!(
                "no `verify --deep` of day {day} is recorded; rotation needs one that passed within {hours} hour(s)"
            )));
        };
        let deep = v
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .and_then(|d| d["deep"].as_bool())
            .unwrap_or(false);
        if !deep {
            return Ok(Verdict::NotConfirmed(format!(
                "no `verify --deep` of day {day} is recorded (the last verify, run {}, was not deep); rotation needs one that passed within {hours} hour(s)",
                v.run_id
            )));
        }
        if v.rows > 0 || v.state != "done" {
            return Ok(Verdict::NotConfirmed(format!(
                "the last `verify --deep` of day {day} (run {}) found {} problem(s)",
                v.run_id, v.rows
            )));
        }
        let finished = v.finished_at.unwrap_or(v.started_at);
        let oldest = crate::journal::now_micros() - i64::from(hours) * 3_600_000_000;
        if finished < oldest {
            return Ok(Verdict::NotConfirmed(format!(
                "the last `verify --deep` of day {day} finished at {}, more than {hours} hour(s) ago",
                crate::lifecycle::status::rfc3339(finished)
            )));
        }
        Ok(Verdict::Confirmed)
    }
}

impl DayCheck for VerifiedCheck {
    async fn check(&self, day: Day) -> Result<Verdict> {
        if let Verdict::NotConfirmed(why) = self.journal.check(day).await? {
            return Ok(Verdict::NotConfirmed(why));
        }
        let v = self.verifier.verify_day(day, false).await?;
        if v.ok {
            return self.deep_verified(day).await;
        }
        let shown: Vec<String> = v
            .findings
            .iter()
            .take(3)
            .map(|f| format!("{} {}: {}", f.kind, f.subject, f.detail))
            .collect();
        let more = v.findings.len().saturating_sub(shown.len());
        Ok(Verdict::NotConfirmed(format!(
            "verify found {} problem(s): {}{}",
            v.findings.len(),
            shown.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        )))
    }
}

/// A partition kept although due for dropping.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    /// Partition tag.
    pub tag: String,
    /// Its day.
    pub day: Day,
    /// Why it was kept.
    pub reason: String,
}

/// What a rotation did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct RotateReport {
    /// Short-term collection.
    pub collection: String,
    /// Today in the configured timezone.
    pub today: Day,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Tags created.
    pub created: Vec<String>,
    /// Tags dropped.
    pub dropped: Vec<String>,
    /// Tags due for dropping but kept.
    pub kept: Vec<Kept>,
    /// Day partitions left as they are (inside the retention or ahead).
    pub retained: Vec<String>,
}

/// Rotation settings.
#[derive(Debug, Clone, Copy)]
pub struct RotateOptions {
    /// Today (configured timezone).
    pub today: Day,
    /// See [`PartitionsConfig::create_ahead_days`].
    pub create_ahead_days: u32,
    /// See [`PartitionsConfig::retention_days`].
    pub retention_days: u32,
    /// List the actions only.
    pub dry_run: bool,
}

/// Whether `day` is past the retention: more than `retention_days` days before `today`.
/// Today, yesterday and future days never are, whatever the retention says.
pub fn due_for_drop(today: Day, day: Day, retention_days: u32) -> bool {
    let min_age = i64::from(retention_days.max(1)) + 1;
    (today.0 - day.0).num_days() >= min_age
}

/// Rotate the partitions of `collection` on `engine` (the short-term writable node).
pub async fn rotate<C: DayCheck>(
    engine: &Engine,
    collection: &str,
    tags: &TagFormat,
    opts: RotateOptions,
    check: &C,
) -> Result<RotateReport> {
    let existing = engine.list_partitions(collection).await?;
    let mut report = RotateReport {
        collection: collection.to_string(),
        today: opts.today,
        dry_run: opts.dry_run,
        created: Vec::new(),
        dropped: Vec::new(),
        kept: Vec::new(),
        retained: Vec::new(),
    };
    let mut day = opts.today;
    for _ in 0..=opts.create_ahead_days {
        let tag = tags.tag(day);
        if !existing.contains(&tag) {
            if !opts.dry_run {
                engine.create_partition(collection, &tag).await?;
            }
            report.created.push(tag);
        }
        day = day.succ();
    }
    let mut dated: Vec<(Day, String)> = existing
        .iter()
        .filter_map(|t| tags.parse(t).map(|d| (d, t.clone())))
        .collect();
    dated.sort();
    for (day, tag) in dated {
        if !due_for_drop(opts.today, day, opts.retention_days) {
            report.retained.push(tag);
            continue;
        }
        match check.check(day).await? {
            Verdict::Confirmed => {
                if !opts.dry_run {
                    engine.drop_partition(collection, &tag).await?;
                }
                report.dropped.push(tag);
            }
            Verdict::NotConfirmed(reason) => report.kept.push(Kept { tag, day, reason }),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_must_keep_at_least_yesterday() {
        let c = PartitionsConfig {
            create_ahead_days: 2,
            retention_days: 0,
            ..PartitionsConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("retention_days")
        );
        assert!(PartitionsConfig::default().validate().is_ok());
    }

    #[test]
    fn today_yesterday_and_the_future_are_never_due() {
        let d = |s: &str| s.parse::<Day>().unwrap();
        let today = d("2026-11-26");
        for retention in [0, 1, 2] {
            assert!(!due_for_drop(today, today, retention));
            assert!(!due_for_drop(today, d("2026-11-25"), retention));
            assert!(!due_for_drop(today, d("2026-11-27"), retention));
        }
        assert!(due_for_drop(today, d("2026-11-24"), 1));
        assert!(!due_for_drop(today, d("2026-11-24"), 2));
        assert!(due_for_drop(today, d("2026-11-23"), 2));
    }
}
