//! `migrate`: move one day from short-term to long-term. plan → stage → build → publish
//! → backup (when `[backup]` is configured). Each step is its own module; typed values
//! flow between them, and [`steps`] runs them in order, journaling each.
//!
//! Safe to rerun at any point: one run per collection and day holds a lease; a day already
//! published is a verified no-op; a crash anywhere leaves long-term either without the
//! day's rows or with all of them (the rows and the journal commit together).

pub mod build;
pub mod idle;
pub mod stage;
mod steps;

use std::path::PathBuf;

pub use crate::run_report::{DayReport, Figures, Outcome, StepReport};

use crate::config::{Config, Tier};
use crate::context::{DayContext, connect};
use crate::day::Day;
use crate::error::{Error, ErrorKind, Result};
use crate::journal::Journal;
use crate::meta::MetaDb;
use crate::plan::{self, DayPlan, PlanInput};
use crate::progress::Progress;
use crate::run_report::Recorder;

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// Plan only; write nothing anywhere.
    pub dry_run: bool,
    /// Where progress goes.
    pub progress: Progress,
}

/// What a run reads: short-term's day and the long-term day it becomes.
struct Sources {
    short: MetaDb,
    short_storage: PathBuf,
    short_collection: String,
    /// The day's tag in short-term.
    tag: String,
    /// The day's tag in long-term.
    long_tag: String,
    /// The long-term side of the day.
    long: DayContext,
}

impl Sources {
    fn plan_input<'a>(&'a self, journal: Option<&'a Journal>) -> PlanInput<'a> {
        PlanInput {
            short: &self.short,
            short_storage: &self.short_storage,
            short_collection: &self.short_collection,
            tag: self.tag.clone(),
            long_tag: self.long_tag.clone(),
            long: &self.long.long,
            long_storage: &self.long.long_storage,
            long_collection: &self.long.collection,
            journal,
        }
    }
}

/// Migrate one day; errors are turned into a failed report (with its exit code).
pub async fn migrate_day(config: &Config, day: Day, opts: &MigrateOptions) -> DayReport {
    let collection = config.long_term.collection.clone();
    let mut steps = Vec::new();
    let mut planned = None;
    let result = run(config, day, opts, &mut steps, &mut planned).await;
    let (outcome, error, exit_code) = match result {
        Ok(outcome) => (outcome, None, 0),
        Err(e) if e.kind() == ErrorKind::NotReady => {
            (Outcome::NotReady, Some(e.to_string()), e.exit_code())
        }
        Err(e) => (Outcome::Failed, Some(e.to_string()), e.exit_code()),
    };
    DayReport {
        day,
        collection,
        outcome,
        plan: planned,
        steps,
        error,
        exit_code,
    }
}

/// A day is migrated only once it ended `limits.settle_minutes` ago in the configured
/// timezone: before that, short-term may still receive its late inserts and flushes.
fn check_settled(config: &Config, day: Day) -> Result<()> {
    use chrono::TimeZone;
    let tz = config.tz()?;
    let midnight = day.succ().0.and_hms_opt(0, 0, 0).expect("valid time");
    let end = tz
        .from_local_datetime(&midnight)
        .earliest()
        .unwrap_or_else(|| chrono::Utc.from_utc_datetime(&midnight).with_timezone(&tz));
    let settle = config.limits.settle_minutes;
    let ready_at = i64::try_from(settle)
        .ok()
        .and_then(chrono::Duration::try_minutes)
        .and_then(|d| end.checked_add_signed(d));
    if ready_at.is_none_or(|at| chrono::Utc::now() < at) {
        return Err(Error::NotReady(format!(
            "day {day} ended at {} and is migrated {settle} minutes after its end (limits.settle_minutes), from {}: short-term may still be receiving it; retry then",
            end.format("%Y-%m-%d %H:%M %Z"),
            ready_at.map_or("never".to_string(), |at| at
                .format("%Y-%m-%d %H:%M %Z")
                .to_string())
        )));
    }
    Ok(())
}

async fn run(
    config: &Config,
    day: Day,
    opts: &MigrateOptions,
    steps: &mut Vec<StepReport>,
    planned: &mut Option<DayPlan>,
) -> Result<Outcome> {
    check_settled(config, day)?;
    // As `config check` says: storage roots must exist, and are never created.
    crate::check::require_storage_roots(config)?;
    let (short, short_storage, short_collection) = connect(config, Tier::ShortTerm).await?;
    let src = Sources {
        short,
        short_storage,
        short_collection,
        tag: config.tier(Tier::ShortTerm)?.tag_format.tag(day),
        long_tag: config.tier(Tier::LongTerm)?.tag_format.tag(day),
        long: DayContext::open(config, day).await?,
    };
    if opts.dry_run {
        *planned = Some(plan::plan(day, &src.plan_input(None)).await?);
        return Ok(Outcome::Planned);
    }
    let (lease, journal) = src.long.lock(config).await?;
    let cx = &src.long;
    // Holding the day's lease (restore takes the same one): a restore of the day that
    // crashed left its staging folder, which no one else will remove.
    crate::restore::remove_crashed_restore_staging(&cx.long_storage, &cx.collection, day).await;
    let mut rec = Recorder {
        journal: &journal,
        collection: &cx.collection,
        day: day.to_string(),
        run_id: &cx.holder,
        steps,
    };
    let result = steps::Run {
        config,
        src: &src,
        lease: &lease,
        progress: &opts.progress,
    }
    .run(&mut rec, planned)
    .await;
    if let Err(e) = &result {
        // Best effort: the error itself is what the caller must see.
        if let Err(je) = journal
            .record_failure(&cx.collection, day, &cx.holder, e)
            .await
        {
            tracing::warn!(error = %je, "could not record the failure in the journal");
        }
    }
    lease.release_after(result).await
}
