//! Publish of a restored day under its lease: download into staging, create the collection
//! row when long-term lacks it, then the same publish as `migrate` (and the day's backup
//! recorded as done when restoring into the backed-up collection).

use std::path::Path;
use std::sync::Arc;

use super::RestoreReport;
use super::staging::download_files;
use crate::backup::manifest::Manifest;
use crate::backup::store::Store;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::journal::{Journal, State, Step};
use crate::lock::Lease;
use crate::meta::{FileRow, MetaDb, TableRow, WriteMode};
use crate::publish;

/// What the locked part of a restore works with.
pub(super) struct RestoreCtx<'a> {
    pub(super) store: &'a Store,
    pub(super) long: &'a MetaDb,
    pub(super) long_storage: &'a Path,
    pub(super) journal: &'a Journal,
    pub(super) lease: &'a Lease,
    pub(super) run_id: &'a str,
    pub(super) staging: &'a Path,
    pub(super) source: &'a str,
    pub(super) target: &'a str,
    pub(super) day: &'a str,
}

pub(super) async fn restore_locked(
    config: &Config,
    cx: &RestoreCtx<'_>,
    m: &Manifest,
    create_collection: Option<&TableRow>,
    tables: &[TableRow],
    files: &[FileRow],
    report: &mut RestoreReport,
) -> Result<()> {
    let started = std::time::Instant::now();
    let downloaded = download_files(
        cx.store,
        cx.source,
        cx.day,
        cx.staging,
        m.files.iter().collect(),
        config.limits.copy_concurrency,
    )
    .await?;
    tracing::info!(
        day = cx.day,
        files = m.files.len(),
        bytes = report.bytes,
        seconds = started.elapsed().as_secs_f64(),
        "downloaded and verified the backup"
    );
    if let Some(c) = create_collection {
        let w = cx
            .long
            .write_rows(std::slice::from_ref(c), &[], WriteMode::InsertIfAbsent)
            .await?;
        if !w.committed {
            return Err(Error::Conflict(format!(
                "long-term collection row `{}` changed during the restore: {}",
                c.table_id,
                w.conflicts().join(", ")
            )));
        }
        report.created_collection = true;
        report.rows_inserted += 1;
    }
    let bandwidth = (config.limits.bandwidth_mb_per_s > 0)
        .then(|| config.limits.bandwidth_mb_per_s * 1_000_000);
    let published = publish::publish(&publish::PublishInput {
        collection: cx.target,
        day: cx.day,
        tables,
        files,
        source_storage: cx.staging,
        long_storage: cx.long_storage,
        long: cx.long,
        journal: cx.journal,
        lease: cx.lease,
        run_id: cx.run_id,
        concurrency: config.limits.copy_concurrency,
        bandwidth,
        progress: None,
        // The staging folder is on long-term's file system: link, do not copy again.
        prehashed: Some(Arc::new(downloaded)),
        gc_wait: config.lock_wait(),
    })
    .await?;
    tracing::info!(
        day = cx.day,
        seconds = started.elapsed().as_secs_f64(),
        "published the restored day"
    );
    report.rows_inserted += published.rows_inserted;
    report.digest = published.digest.clone();
    if cx.source == cx.target {
        // The day's backup exists (it was just read): record it so migrate does not redo it.
        cx.journal
            .mark(
                cx.target,
                cx.day,
                Step::Backup,
                State::Done,
                cx.run_id,
                Some((m.files.len(), 0, report.bytes, &m.files_digest)),
            )
            .await?;
    }
    Ok(())
}
