//! `migrate`: move one day from short-term to long-term. plan → stage → build → publish
//! → backup (when `[backup]` is configured). Each step is its own module; typed values
//! flow between them.
//!
//! Safe to rerun at any point: one run per collection and day holds a lease; a day already
//! published is a verified no-op; a crash anywhere leaves long-term either without the
//! day's rows or with all of them (the rows and the journal commit together).

pub mod build;
pub mod idle;
pub mod plan;
pub mod stage;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backup::{self, store::Store};
use crate::config::{Config, Tier};
use crate::context::connect;
use crate::day::Day;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::journal::{Journal, State, Step};
use crate::lock::Lease;
use crate::meta::{ConnectOptions, MetaDb};
use crate::progress::Progress;
use crate::publish;
use plan::{DayPlan, LongTermState, PlanInput};

/// How a day ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Migrated now.
    Migrated,
    /// Already in long-term exactly; nothing done.
    AlreadyDone,
    /// Dry run: planned only.
    Planned,
    /// Failed.
    Failed,
    /// Not migrated: the day is not over yet (still being written); a later run can do it.
    NotReady,
}

/// One step's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Step name.
    pub step: &'static str,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Files handled.
    pub files: usize,
    /// Vectors handled.
    pub rows: i64,
    /// Bytes handled.
    pub bytes: u64,
    /// Combined checksum of the files.
    pub digest: String,
    /// What happened (`done`, `verified`, `skipped`).
    pub outcome: &'static str,
}

/// The report of one day.
#[derive(Debug, Clone, Serialize)]
pub struct DayReport {
    /// The day.
    pub day: Day,
    /// Long-term collection.
    pub collection: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The plan (None if planning failed).
    pub plan: Option<DayPlan>,
    /// Steps run.
    pub steps: Vec<StepReport>,
    /// Error message, if failed.
    pub error: Option<String>,
    /// Exit code this day maps to.
    pub exit_code: i32,
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// Plan only; write nothing anywhere.
    pub dry_run: bool,
    /// Where progress goes.
    pub progress: Progress,
}

/// Connections and paths of one run.
struct Ctx {
    short: MetaDb,
    long: MetaDb,
    local: Option<MetaDb>,
    short_storage: PathBuf,
    long_storage: PathBuf,
    local_storage: PathBuf,
    short_collection: String,
    long_collection: String,
    /// The day's tag in long-term.
    long_tag: String,
}

/// Migrate one day; errors are turned into a failed report (with its exit code).
pub async fn migrate_day(config: &Config, day: Day, opts: &MigrateOptions) -> DayReport {
    let collection = config.long_term.collection.clone();
    let mut steps = Vec::new();
    let mut planned = None;
    match run(config, day, opts, &mut steps, &mut planned).await {
        Ok(outcome) => DayReport {
            day,
            collection,
            outcome,
            plan: planned,
            steps,
            error: None,
            exit_code: 0,
        },
        Err(e) => DayReport {
            day,
            collection,
            outcome: if e.kind() == crate::error::ErrorKind::NotReady {
                Outcome::NotReady
            } else {
                Outcome::Failed
            },
            plan: planned,
            steps,
            error: Some(e.to_string()),
            exit_code: e.exit_code(),
        },
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
    let (long, long_storage, long_collection) = connect(config, Tier::LongTerm).await?;
    let tag = config.tier(Tier::ShortTerm)?.tag_format.tag(day);
    let mut cx = Ctx {
        short,
        long,
        local: None,
        short_storage,
        long_storage,
        local_storage: config.engine.storage_path.clone(),
        short_collection,
        long_collection,
        long_tag: config.tier(Tier::LongTerm)?.tag_format.tag(day),
    };
    if opts.dry_run {
        let p = plan::plan(day, &plan_input(&cx, tag, None)).await?;
        *planned = Some(p);
        return Ok(Outcome::Planned);
    }

    let holder = crate::context::holder_id();
    let lock_name = format!("migrate/{}/{day}", cx.long_collection);
    let lease = Lease::acquire_waiting(
        &cx.long,
        &lock_name,
        &holder,
        config.lease_ttl(),
        config.lock_wait(),
    )
    .await?;
    // Holding the day's lease (restore takes the same one): a restore of the day that
    // crashed left its staging folder, which no one else will remove.
    crate::restore::remove_crashed_restore_staging(&cx.long_storage, &cx.long_collection, day)
        .await;
    let journal = Journal::open(&cx.long).await?.fenced(lease.fence());
    let result = run_locked(
        config,
        day,
        &mut cx,
        &journal,
        &lease,
        &holder,
        tag,
        &opts.progress,
        steps,
        planned,
    )
    .await;
    if let Err(e) = &result {
        // Best effort: the error itself is what the caller must see.
        if let Err(je) = journal
            .record_failure(&cx.long_collection, day, &holder, e)
            .await
        {
            tracing::warn!(error = %je, "could not record the failure in the journal");
        }
    }
    lease.release_after(result).await
}

#[allow(clippy::too_many_arguments)]
async fn run_locked(
    config: &Config,
    day: Day,
    cx: &mut Ctx,
    journal: &Journal,
    lease: &Lease,
    run_id: &str,
    tag: String,
    progress: &Progress,
    steps: &mut Vec<StepReport>,
    planned: &mut Option<DayPlan>,
) -> Result<Outcome> {
    let t = Instant::now();
    let p = plan::plan(day, &plan_input(cx, tag.clone(), Some(journal))).await?;
    *planned = Some(p.clone());
    steps.push(StepReport {
        step: "plan",
        seconds: t.elapsed().as_secs_f64(),
        files: p.input_files.len(),
        rows: p.rows,
        bytes: p.stage_bytes,
        digest: String::new(),
        outcome: "done",
    });
    if let LongTermState::Done { files_digest, .. } = &p.long_term {
        steps.push(StepReport {
            step: "publish",
            seconds: 0.0,
            files: 0,
            rows: p.rows,
            bytes: 0,
            digest: files_digest.clone(),
            outcome: "verified",
        });
        backup_step(config, cx, journal, run_id, day, false, steps).await?;
        return Ok(Outcome::AlreadyDone);
    }
    failpoint("plan.done");

    let local_target = config.tier(Tier::Local)?;
    let local = MetaDb::connect_with(
        &local_target.meta_url,
        &ConnectOptions {
            timeout: config.connect_timeout(),
            max_connections: 4,
            ..ConnectOptions::default()
        },
    )
    .await?;
    local.check_schema().await?;
    cx.local = Some(local.clone());
    let day_s = day.to_string();
    let bandwidth = (config.limits.bandwidth_mb_per_s > 0)
        .then(|| config.limits.bandwidth_mb_per_s * 1_000_000);

    // The engine's own metadata writes fail on SQLite while we hold a write lock: stage
    // only while it is idle.
    let waited = idle::wait_idle(
        &local,
        &p.long_collection.table_id,
        Duration::from_secs(config.limits.index_timeout_secs),
        Duration::from_millis(200),
    )
    .await?;
    tracing::info!(
        waited_s = waited.as_secs_f64(),
        "local engine idle, staging"
    );
    // stage
    let t = Instant::now();
    journal
        .mark(
            &cx.long_collection,
            &day_s,
            Step::Stage,
            State::Running,
            run_id,
            None,
        )
        .await?;
    let meter = progress.bytes("stage", p.stage_bytes);
    let staged = stage::stage(
        &p,
        &cx.short_storage,
        &local,
        &cx.local_storage,
        config.limits.copy_concurrency,
        bandwidth,
        Some(meter.callback()),
    )
    .await;
    meter.finish();
    let staged = staged?;
    journal
        .mark(
            &cx.long_collection,
            &day_s,
            Step::Stage,
            State::Done,
            run_id,
            Some((staged.files.len(), p.rows, staged.bytes, &staged.digest)),
        )
        .await?;
    steps.push(StepReport {
        step: "stage",
        seconds: t.elapsed().as_secs_f64(),
        files: staged.files.len(),
        rows: p.rows,
        bytes: staged.bytes,
        digest: staged.digest.clone(),
        outcome: "done",
    });

    // build
    let t = Instant::now();
    journal
        .mark(
            &cx.long_collection,
            &day_s,
            Step::Build,
            State::Running,
            run_id,
            None,
        )
        .await?;
    let engine = Engine::new(&config.engine.http_url);
    let limits = build::BuildLimits {
        merge: Duration::from_secs(config.limits.merge_timeout_secs),
        index: Duration::from_secs(config.limits.index_timeout_secs),
        no_progress: Duration::from_secs(config.limits.no_progress_timeout_secs),
        threshold: config.engine.build_index_threshold,
    };
    // A build can wait on the engine for hours: a lost lease stops it at once.
    let status = progress.status("build");
    let built = tokio::select! {
        built = build::build(&p, &local, &engine, limits, &status) => built?,
        () = lease.fence().lost() => return Err(Error::LockLost(lease.fence().name().to_string())),
    };
    let built_bytes: i64 = built.files.iter().map(|f| f.file_size).sum();
    journal
        .mark(
            &cx.long_collection,
            &day_s,
            Step::Build,
            State::Done,
            run_id,
            Some((built.files.len(), p.rows, built_bytes as u64, "")),
        )
        .await?;
    steps.push(StepReport {
        step: "build",
        seconds: t.elapsed().as_secs_f64(),
        files: built.files.len(),
        rows: p.rows,
        bytes: built_bytes as u64,
        digest: String::new(),
        outcome: "done",
    });

    // The short-term day must still be what was planned, else part of a growing day would
    // be published.
    plan::recheck_source(&p, &plan_input(cx, tag, None)).await?;

    // publish
    let t = Instant::now();
    let tables = p.target_tables();
    let meter = progress.bytes(
        "publish",
        built.files.iter().map(|f| f.file_size.max(0) as u64).sum(),
    );
    let published = publish::publish(&publish::PublishInput {
        collection: &cx.long_collection,
        day: &day_s,
        tables: &tables,
        files: &built.files,
        source_storage: &cx.local_storage,
        long_storage: &cx.long_storage,
        long: &cx.long,
        journal,
        lease,
        run_id,
        concurrency: config.limits.copy_concurrency,
        bandwidth,
        progress: Some(meter.callback()),
        prehashed: None,
        gc_wait: config.lock_wait(),
    })
    .await;
    meter.finish();
    let published = published?;
    steps.push(StepReport {
        step: "publish",
        seconds: t.elapsed().as_secs_f64(),
        files: published.files.len(),
        rows: p.rows,
        bytes: published.bytes_copied + published.bytes_verified,
        digest: published.digest.clone(),
        outcome: "done",
    });
    backup_step(config, cx, journal, run_id, day, true, steps).await?;
    failpoint("migrate.done");
    Ok(Outcome::Migrated)
}

/// The backup step: when `[backup]` is configured, back the published day up (always after
/// a fresh publish; otherwise unless the journal already records it done).
async fn backup_step(
    config: &Config,
    cx: &Ctx,
    journal: &Journal,
    run_id: &str,
    day: Day,
    fresh: bool,
    steps: &mut Vec<StepReport>,
) -> Result<()> {
    let Some(bcfg) = &config.backup else {
        return Ok(());
    };
    let day_s = day.to_string();
    if !fresh
        && let Some(e) = journal
            .get(&cx.long_collection, &day_s, Step::Backup)
            .await?
        && e.state == State::Done
    {
        steps.push(StepReport {
            step: "backup",
            seconds: 0.0,
            files: e.files as usize,
            rows: e.rows,
            bytes: e.bytes as u64,
            digest: e.checksum_digest.clone(),
            outcome: "skipped",
        });
        return Ok(());
    }
    let t = Instant::now();
    let store = Store::open(bcfg).await?;
    journal
        .mark(
            &cx.long_collection,
            &day_s,
            Step::Backup,
            State::Running,
            run_id,
            None,
        )
        .await?;
    let tag = config.tier(Tier::LongTerm)?.tag_format.tag(day);
    let r = backup::backup_day(&backup::BackupInput {
        collection: &cx.long_collection,
        day: &day_s,
        tag: &tag,
        long: &cx.long,
        long_storage: &cx.long_storage,
        journal,
        store: &store,
        concurrency: config.limits.copy_concurrency,
    })
    .await?;
    journal
        .mark(
            &cx.long_collection,
            &day_s,
            Step::Backup,
            State::Done,
            run_id,
            Some((r.files, r.rows, r.bytes, &r.digest)),
        )
        .await?;
    steps.push(StepReport {
        step: "backup",
        seconds: t.elapsed().as_secs_f64(),
        files: r.files,
        rows: r.rows,
        bytes: r.bytes_uploaded,
        digest: r.digest.clone(),
        outcome: if r.uploaded == 0 { "verified" } else { "done" },
    });
    Ok(())
}

/// Back up one already-published day (`milvus-tier backup`): reads long-term rows and
/// storage, holds the day's lease, journals the step. Errors become a failed report.
pub async fn backup_published_day(config: &Config, day: Day) -> DayReport {
    let collection = config.long_term.collection.clone();
    let mut steps = Vec::new();
    let result = async {
        let Some(_) = &config.backup else {
            return Err(Error::Config(
                "no [backup] section: set backup.target to back up".into(),
            ));
        };
        let (long, long_storage, long_collection) = connect(config, Tier::LongTerm).await?;
        let holder = crate::context::holder_id();
        let lock_name = format!("migrate/{long_collection}/{day}");
        let lease = Lease::acquire_waiting(
            &long,
            &lock_name,
            &holder,
            config.lease_ttl(),
            config.lock_wait(),
        )
        .await?;
        let journal = Journal::open(&long).await?.fenced(lease.fence());
        let cx = Ctx {
            short: long.clone(),
            long,
            local: None,
            short_storage: PathBuf::new(),
            long_storage,
            local_storage: PathBuf::new(),
            short_collection: String::new(),
            long_collection,
            long_tag: config.tier(Tier::LongTerm)?.tag_format.tag(day),
        };
        let r = backup_step(config, &cx, &journal, &holder, day, true, &mut steps).await;
        if let Err(e) = &r
            && let Err(je) = journal
                .record_failure(&cx.long_collection, day, &holder, e)
                .await
        {
            tracing::warn!(error = %je, "could not record the failure in the journal");
        }
        lease.release_after(r).await
    }
    .await;
    let (outcome, error, exit_code) = match result {
        Ok(()) => (Outcome::Migrated, None, 0),
        Err(e) => (Outcome::Failed, Some(e.to_string()), e.exit_code()),
    };
    DayReport {
        day,
        collection,
        outcome,
        plan: None,
        steps,
        error,
        exit_code,
    }
}

fn plan_input<'a>(cx: &'a Ctx, tag: String, journal: Option<&'a Journal>) -> PlanInput<'a> {
    PlanInput {
        short: &cx.short,
        short_storage: &cx.short_storage,
        short_collection: &cx.short_collection,
        tag,
        long_tag: cx.long_tag.clone(),
        long: &cx.long,
        long_storage: &cx.long_storage,
        long_collection: &cx.long_collection,
        journal,
    }
}
