//! The backup step of a migrate run, and `milvus-tier backup` of a day already published:
//! the day's lease, the journal's backup entry and the backup itself.

use std::time::Instant;

use super::store::Store;
use crate::config::{Config, Tier};
use crate::context::DayContext;
use crate::day::Day;
use crate::error::{Error, Result};
use crate::journal::{State, Step};
use crate::run_report::{DayReport, Figures, Outcome, Recorder};

/// The backup step: when `[backup]` is configured, back the published day up (always after
/// a fresh publish; otherwise unless the journal already records it done).
pub(crate) async fn backup_step(
    config: &Config,
    cx: &DayContext,
    rec: &mut Recorder<'_>,
    fresh: bool,
) -> Result<()> {
    let Some(bcfg) = &config.backup else {
        return Ok(());
    };
    if !fresh
        && let Some(e) = rec
            .journal
            .get(&cx.collection, &rec.day, Step::Backup)
            .await?
        && e.state == State::Done
    {
        let f = Figures {
            files: e.files as usize,
            rows: e.rows,
            bytes: e.bytes as u64,
            digest: e.checksum_digest.clone(),
        };
        rec.line("backup", 0.0, &f, "skipped");
        return Ok(());
    }
    let t = Instant::now();
    let store = Store::open(bcfg).await?;
    rec.mark(Step::Backup, State::Running, None).await?;
    let tag = config.tier(Tier::LongTerm)?.tag_format.tag(cx.day);
    let r = super::backup_day(&super::BackupInput {
        collection: &cx.collection,
        day: &rec.day,
        tag: &tag,
        long: &cx.long,
        long_storage: &cx.long_storage,
        journal: rec.journal,
        store: &store,
        concurrency: config.limits.copy_concurrency,
    })
    .await?;
    let f = Figures {
        files: r.files,
        rows: r.rows,
        bytes: r.bytes,
        digest: r.digest.clone(),
    };
    rec.mark(Step::Backup, State::Done, Some(&f)).await?;
    // The report counts the bytes uploaded now, the journal the day's bytes.
    let line = Figures {
        bytes: r.bytes_uploaded,
        ..f
    };
    rec.line(
        "backup",
        t.elapsed().as_secs_f64(),
        &line,
        if r.uploaded == 0 { "verified" } else { "done" },
    );
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
        let cx = DayContext::open(config, day).await?;
        let (lease, journal) = cx.lock(config).await?;
        let mut rec = Recorder {
            journal: &journal,
            collection: &cx.collection,
            day: day.to_string(),
            run_id: &cx.holder,
            steps: &mut steps,
        };
        let r = backup_step(config, &cx, &mut rec, true).await;
        if let Err(e) = &r
            && let Err(je) = journal
                .record_failure(&cx.collection, day, &cx.holder, e)
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
