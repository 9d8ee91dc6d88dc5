//! `restore`: bring a backed-up day back into long-term. Reads the manifest, downloads every
//! file into a staging folder checking size and BLAKE3, then runs the same publish as
//! `migrate` (temporary folder names, verify, rename; rows and journal in one transaction,
//! under the day's lease). Identical rows already in long-term make it a no-op; different
//! ones a refusal.

mod check;
mod publish;
mod repair;
mod retarget;
mod staging;

use serde::Serialize;

use crate::backup::manifest::{manifest_key, read_manifest};
use crate::backup::store::Store;
use crate::config::{Config, Tier};
use crate::day::Day;
use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::lock::Lease;
use crate::meta::{FileRow, TableRow};
use check::{damaged_files, identical_or_absent, verify_found_something};
use publish::{RestoreCtx, restore_locked};
use repair::repair_day;
use retarget::retarget_partitions;
use staging::{clean_staging_of_finished_restore, remove_stale_staging};

pub(crate) use staging::remove_crashed_restore_staging;

/// Options of a restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Restore into this collection instead of the configured long-term one.
    pub to_collection: Option<String>,
    /// Read and check the manifest and long-term; write nothing.
    pub dry_run: bool,
    /// Re-hash the day's long-term files (BLAKE3) against the manifest, not only sizes.
    pub deep: bool,
}

/// How a day's restore ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreOutcome {
    /// Files placed and rows inserted.
    Restored,
    /// Long-term already holds exactly these rows and files: nothing done.
    Identical,
    /// Long-term held exactly these rows; missing or different files were put back.
    Repaired,
    /// Dry run: checked only.
    Planned,
}

/// What a day's restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The day.
    pub day: Day,
    /// Collection restored into.
    pub collection: String,
    /// The manifest read.
    pub manifest: String,
    /// How it ended.
    pub outcome: RestoreOutcome,
    /// Files in the backup.
    pub files: usize,
    /// Bytes in the backup.
    pub bytes: u64,
    /// Rows inserted (collection row, partitions, files).
    pub rows_inserted: usize,
    /// Combined digest of the files.
    pub digest: String,
    /// Whether the collection row was created from the manifest.
    pub created_collection: bool,
    /// Long-term files missing or different from the backup (repaired, or to repair in a
    /// dry run), each with what is wrong.
    pub repair: Vec<String>,
}

/// Restore one day.
pub async fn restore_day(
    config: &Config,
    day: Day,
    opts: &RestoreOptions,
) -> Result<RestoreReport> {
    if let Some(name) = &opts.to_collection
        && let Some(problem) = crate::milvus_name::collection_name_problem(name)
    {
        return Err(Error::Usage(format!(
            "--to-collection `{name}` is not a collection name Milvus accepts: {problem}"
        )));
    }
    let Some(bcfg) = &config.backup else {
        return Err(Error::Config(
            "no [backup] section: set backup.target to restore".into(),
        ));
    };
    let store = Store::open(bcfg).await?;
    let (long, long_storage, source) = crate::context::connect(config, Tier::LongTerm).await?;
    crate::check::require_storage_root(Tier::LongTerm, &long_storage)?;
    let target = opts.to_collection.clone().unwrap_or_else(|| source.clone());
    let day_s = day.to_string();
    let m = read_manifest(&store, &source, &day_s).await?;
    long.check_schema().await?;

    let coll_row = TableRow {
        id: 0,
        table_id: target.clone(),
        ..m.collection_row.clone()
    };
    let files: Vec<FileRow> = m
        .table_files
        .iter()
        .map(|f| FileRow { id: 0, ..f.clone() })
        .collect();
    let existing_coll = long.collection(&target).await?;
    let tables = match &existing_coll {
        Some(c) => retarget_partitions(&source, c, &m.tables, &files, day)?,
        // A new collection is created from the backup's row: the partitions agree with it.
        None => m
            .tables
            .iter()
            .map(|t| TableRow {
                id: 0,
                owner_table: target.clone(),
                ..t.clone()
            })
            .collect(),
    };
    let mut report = RestoreReport {
        day,
        collection: target.clone(),
        manifest: store.describe(&manifest_key(&source, &day_s)),
        outcome: RestoreOutcome::Planned,
        files: m.files.len(),
        bytes: m.files.iter().map(|f| f.size).sum(),
        rows_inserted: 0,
        digest: m.files_digest.clone(),
        created_collection: false,
        repair: Vec::new(),
    };
    if identical_or_absent(&long, &tables, &files, day).await? {
        // The rows are there: the files must be too, as the backup holds them.
        let hash = opts.deep || verify_found_something(&long, &target, day).await?;
        let damaged = damaged_files(&long_storage, &m, hash).await?;
        if damaged.is_empty() {
            report.outcome = RestoreOutcome::Identical;
            if !opts.dry_run {
                clean_staging_of_finished_restore(config, &long, &long_storage, &target, day)
                    .await?;
            }
            return Ok(report);
        }
        report.repair = damaged.iter().map(|(_, why)| why.clone()).collect();
        if opts.dry_run {
            return Ok(report);
        }
        repair_day(
            config,
            &store,
            &long,
            &long_storage,
            &source,
            &target,
            day,
            &m,
            &damaged,
        )
        .await?;
        report.outcome = RestoreOutcome::Repaired;
        return Ok(report);
    }
    if opts.dry_run {
        return Ok(report);
    }

    let holder = holder();
    let lease = Lease::acquire_waiting(
        &long,
        &format!("migrate/{target}/{day}"),
        &holder,
        config.lease_ttl(),
        config.lock_wait(),
    )
    .await?;
    let journal = Journal::open(&long).await?.fenced(lease.fence());
    let stem = format!(".milvus-tier-restore-{target}-{day}-");
    remove_stale_staging(&long_storage, &stem).await;
    let staging = long_storage.join(format!("{stem}{}", std::process::id()));
    let result = restore_locked(
        config,
        &RestoreCtx {
            store: &store,
            long: &long,
            long_storage: &long_storage,
            journal: &journal,
            lease: &lease,
            run_id: &holder,
            staging: &staging,
            source: &source,
            target: &target,
            day: &day_s,
        },
        &m,
        existing_coll.is_none().then_some(&coll_row),
        &tables,
        &files,
        &mut report,
    )
    .await;
    if staging.exists()
        && let Err(e) = tokio::fs::remove_dir_all(&staging).await
    {
        tracing::warn!(folder = %staging.display(), error = %e, "could not remove the restore staging folder");
    }
    lease.release_after(result).await?;
    report.outcome = RestoreOutcome::Restored;
    Ok(report)
}

/// This run's lease holder name.
fn holder() -> String {
    format!(
        "{}:{}:restore-{:x}",
        crate::lock::hostname(),
        std::process::id(),
        crate::journal::now_micros()
    )
}
