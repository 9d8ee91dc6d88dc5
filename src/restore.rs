//! `restore`: bring a backed-up day back into long-term. Reads the manifest, downloads every
//! file into a staging folder checking size and BLAKE3, then runs the same publish as
//! `migrate` (temporary folder names, verify, rename; rows and journal in one transaction,
//! under the day's lease). Identical rows already in long-term make it a no-op; different
//! ones a refusal.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use std::collections::BTreeSet;

use crate::backup::manifest::{Manifest, ManifestFile, file_key, manifest_key, read_manifest};
use crate::backup::store::Store;
use crate::config::{Config, Tier};
use crate::day::Day;
use crate::error::{Error, Result};
use crate::journal::{Journal, State, Step};
use crate::lifecycle::record::{VERIFY, read_range};
use crate::lock::Lease;
use crate::meta::{FileRow, FileType, MetaDb, TableRow, WriteMode};
use crate::publish;
use crate::segments::{self, CopyOptions, Existing, Prehashed, SegmentRef, segment_dir};

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

/// The backup's partition rows of `day` (of collection `source`) as partitions of the
/// existing long-term collection `target`, as `migrate` writes them for the long-term
/// collection: owned by it, with its `index_file_size` and `flush_lsn`, and its index
/// (`engine_type`, `index_params`) where no file of the partition is an index built with
/// another one (RAW files are indexed by no one in long-term and carry their own engine).
///
/// Refused as bad input, naming both collections and the field: another dimension or
/// metric (the vectors and every distance would be wrong), and another index type or other
/// index parameters for a partition holding INDEX files (an index file built as one type
/// or with other parameters is not a file of the other: relabelling it would make the
/// engine load it as what it is not).
fn retarget_partitions(
    source: &str,
    target: &TableRow,
    partitions: &[TableRow],
    files: &[FileRow],
    day: Day,
) -> Result<Vec<TableRow>> {
    let refuse = |field: &str, backup: String, have: String| {
        Error::BadInput(format!(
            "cannot restore day {day} of `{source}` into collection `{}`: the backup's {field} is {backup}, `{}` has {field} {have}; restore into a collection with the same {field}, or into a new one (--to-collection with a name long-term does not have)",
            target.table_id, target.table_id
        ))
    };
    let mut out = Vec::with_capacity(partitions.len());
    for p in partitions {
        if p.dimension != target.dimension {
            return Err(refuse(
                "dimension",
                p.dimension.to_string(),
                target.dimension.to_string(),
            ));
        }
        if p.metric_type != target.metric_type {
            return Err(refuse(
                "metric_type",
                p.metric_type.to_string(),
                target.metric_type.to_string(),
            ));
        }
        let built = files
            .iter()
            .any(|f| f.table_id == p.table_id && f.file_type == FileType::Index);
        if built && p.engine_type != target.engine_type {
            return Err(refuse(
                "engine_type (index type of the built index files)",
                p.engine_type.to_string(),
                target.engine_type.to_string(),
            ));
        }
        if built && !same_params(&p.index_params, &target.index_params) {
            return Err(refuse(
                "index_params (of the built index files)",
                p.index_params.clone(),
                target.index_params.clone(),
            ));
        }
        out.push(TableRow {
            id: 0,
            owner_table: target.table_id.clone(),
            index_file_size: target.index_file_size,
            engine_type: target.engine_type,
            index_params: if built {
                // Equal as JSON: keep the backup's text, which its digests cover.
                p.index_params.clone()
            } else {
                target.index_params.clone()
            },
            // What `DBImpl::CreatePartition` writes, as migrate does: the owner's
            // flush_lsn (a partition of the same collection keeps the one it had).
            flush_lsn: if p.owner_table == target.table_id {
                p.flush_lsn
            } else {
                target.flush_lsn
            },
            ..p.clone()
        });
    }
    Ok(out)
}

/// Whether two `index_params` texts hold the same JSON (or are the same text).
fn same_params(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (
                serde_json::from_str::<serde_json::Value>(a),
                serde_json::from_str::<serde_json::Value>(b),
            ),
            (Ok(x), Ok(y)) if x == y
        )
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

/// Whether the last `verify` recorded for the day found something.
async fn verify_found_something(long: &MetaDb, collection: &str, day: Day) -> Result<bool> {
    Ok(read_range(long, collection, day, day)
        .await?
        .iter()
        .any(|e| e.step == VERIFY && e.rows > 0))
}

/// Files of the manifest that long-term storage lacks or holds differently (size; BLAKE3
/// too when `hash`), each with a sentence naming the file.
async fn damaged_files<'m>(
    storage: &Path,
    m: &'m Manifest,
    hash: bool,
) -> Result<Vec<(&'m ManifestFile, String)>> {
    let mut out = Vec::new();
    for f in &m.files {
        let path = segment_dir(storage, &SegmentRef::new(&f.table_id, &f.segment_id)).join(&f.name);
        let why = match tokio::fs::symlink_metadata(&path).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("missing".to_string()),
            Err(e) => return Err(Error::io("stat", &path, e)),
            Ok(meta) if !meta.file_type().is_file() => Some("not a regular file".to_string()),
            Ok(meta) if meta.len() != f.size => {
                Some(format!("{} bytes, the backup holds {}", meta.len(), f.size))
            }
            Ok(_) if hash => {
                let (_, b3) = crate::backup::store::hash_file(&path).await?;
                (b3 != f.blake3).then(|| format!("BLAKE3 {b3}, the backup holds {}", f.blake3))
            }
            Ok(_) => None,
        };
        if let Some(why) = why {
            out.push((f, format!("{}: {why}", path.display())));
        }
    }
    Ok(out)
}

/// Put back the damaged files of a day whose rows long-term holds: under the day's lease,
/// download every file of each affected segment folder from the backup (checked), build the
/// folder beside the old one and swap it in with a rename.
#[allow(clippy::too_many_arguments)]
async fn repair_day(
    config: &Config,
    store: &Store,
    long: &MetaDb,
    long_storage: &Path,
    source: &str,
    target: &str,
    day: Day,
    m: &Manifest,
    damaged: &[(&ManifestFile, String)],
) -> Result<()> {
    let holder = holder();
    let lease = Lease::acquire_waiting(
        long,
        &format!("migrate/{target}/{day}"),
        &holder,
        config.lease_ttl(),
        config.lock_wait(),
    )
    .await?;
    let stem = format!(".milvus-tier-restore-{target}-{day}-");
    remove_stale_staging(long_storage, &stem).await;
    let staging = long_storage.join(format!("{stem}{}", std::process::id()));
    let result = async {
        let segs: BTreeSet<SegmentRef> = damaged
            .iter()
            .map(|(f, _)| SegmentRef::new(&f.table_id, &f.segment_id))
            .collect();
        let files: Vec<&ManifestFile> = m
            .files
            .iter()
            .filter(|f| segs.contains(&SegmentRef::new(&f.table_id, &f.segment_id)))
            .collect();
        let day_s = day.to_string();
        let downloaded = download_files(
            store,
            source,
            &day_s,
            &staging,
            files,
            config.limits.copy_concurrency,
        )
        .await?;
        let segs: Vec<SegmentRef> = segs.into_iter().collect();
        let opts = CopyOptions {
            concurrency: config.limits.copy_concurrency,
            include: Some(crate::segments::layout::result_filter(&m.table_files)),
            existing: Existing::Replace,
            fsync: true,
            prehashed: Some(Arc::new(downloaded)),
            ..CopyOptions::default()
        };
        // The repair writes temporary folders gc would remove: its day's lease makes it
        // visible to gc, and it writes only while no gc runs.
        crate::gc::wait_until_gc_ends(long, config.lock_wait()).await?;
        // Prove the lease is held right before touching long-term files.
        lease.fence().hold_now().await?;
        segments::copy_segments(&staging, long_storage, &segs, &opts).await?;
        for (_, why) in damaged {
            tracing::warn!(day = %day, file = %why, "repaired a long-term file from the backup");
        }
        Ok::<_, Error>(())
    }
    .await;
    if staging.exists()
        && let Err(e) = tokio::fs::remove_dir_all(&staging).await
    {
        tracing::warn!(folder = %staging.display(), error = %e, "could not remove the restore staging folder");
    }
    lease.release_after(result).await
}

/// A restore killed after its commit leaves its staging folder, and its rerun finds the
/// day already restored: remove the folder, holding the day's lease (no restore of the day
/// runs meanwhile). Nothing is locked when no such folder exists.
async fn clean_staging_of_finished_restore(
    config: &Config,
    long: &MetaDb,
    long_storage: &Path,
    target: &str,
    day: Day,
) -> Result<()> {
    let stem = format!(".milvus-tier-restore-{target}-{day}-");
    let Ok(mut rd) = tokio::fs::read_dir(long_storage).await else {
        return Ok(());
    };
    let mut found = false;
    while let Ok(Some(e)) = rd.next_entry().await {
        found |= e.file_name().to_string_lossy().starts_with(&stem);
    }
    if !found {
        return Ok(());
    }
    let lease = Lease::acquire_waiting(
        long,
        &format!("migrate/{target}/{day}"),
        &holder(),
        config.lease_ttl(),
        config.lock_wait(),
    )
    .await?;
    remove_stale_staging(long_storage, &stem).await;
    lease.release_after(Ok(())).await
}

/// Remove the staging folders crashed restores of `collection`'s `day` left under the
/// long-term storage root. Call only while holding the day's lease (`migrate/<collection>/
/// <day>`, which restore and migrate share): no restore of the day can be running then, so
/// what is there is debris. A run refused before it takes the lease calls nothing (the
/// folder may be a live run's). Best effort.
pub(crate) async fn remove_crashed_restore_staging(
    long_storage: &Path,
    collection: &str,
    day: Day,
) {
    remove_stale_staging(
        long_storage,
        &format!(".milvus-tier-restore-{collection}-{day}-"),
    )
    .await;
}

/// Staging folders of this day left by a crashed restore (the lease is held: no other
/// restore of the day runs). Best effort: a leftover only costs space.
async fn remove_stale_staging(root: &Path, stem: &str) {
    let Ok(mut rd) = tokio::fs::read_dir(root).await else {
        return;
    };
    while let Ok(Some(e)) = rd.next_entry().await {
        if e.file_name().to_string_lossy().starts_with(stem) {
            tracing::warn!(folder = %e.path().display(), "removing the staging folder of an interrupted restore");
            if let Err(err) = tokio::fs::remove_dir_all(e.path()).await {
                tracing::warn!(folder = %e.path().display(), error = %err, "could not remove it");
            }
        }
    }
}

struct RestoreCtx<'a> {
    store: &'a Store,
    long: &'a MetaDb,
    long_storage: &'a Path,
    journal: &'a Journal,
    lease: &'a Lease,
    run_id: &'a str,
    staging: &'a Path,
    source: &'a str,
    target: &'a str,
    day: &'a str,
}

async fn restore_locked(
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

/// Download `files` of the manifest of `source`'s `day` into the staging folder, checking
/// size and BLAKE3; returns them by path, for publish (or a repair) to link.
async fn download_files(
    store: &Store,
    source: &str,
    day: &str,
    staging: &Path,
    files: Vec<&ManifestFile>,
    concurrency: usize,
) -> Result<Prehashed> {
    stream::iter(files)
        .map(|f| async move {
            let key = file_key(source, day, &f.path);
            let dest: PathBuf = staging
                .join("db")
                .join("tables")
                .join(&f.table_id)
                .join(&f.segment_id)
                .join(&f.name);
            if [&f.table_id, &f.segment_id, &f.name]
                .iter()
                .any(|s| s.is_empty() || s.contains('/') || s.starts_with('.'))
            {
                return Err(Error::Manifest {
                    target: store.describe(&manifest_key(source, day)),
                    reason: format!("file entry {} is not a plain segment file path", f.path),
                });
            }
            let (size, blake3) = store.download(&key, &dest, f.size).await?;
            if size != f.size || blake3 != f.blake3 {
                return Err(Error::Conflict(format!(
                    "backup object {} has {size} bytes, BLAKE3 {blake3}; the manifest lists {} bytes, BLAKE3 {}: refusing to restore day {}",
                    store.describe(&key),
                    f.size,
                    f.blake3,
                    day
                )));
            }
            // Our own hex digest: it parses.
            let hash = blake3::Hash::from_hex(&blake3).map_err(|e| Error::Store {
                target: dest.display().to_string(),
                reason: format!("digest {blake3}: {e}"),
            })?;
            Ok((dest, (size, hash)))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
}

/// False when long-term holds none of the day's rows; true when it holds exactly them;
/// a conflict naming the rows otherwise.
async fn identical_or_absent(
    long: &MetaDb,
    tables: &[TableRow],
    files: &[FileRow],
    day: Day,
) -> Result<bool> {
    let ids: Vec<String> = tables.iter().map(|t| t.table_id.clone()).collect();
    let have_tables = long.tables_by_id(&ids).await?;
    let have_files = long.files(&ids, &[]).await?;
    if have_tables.is_empty() && have_files.is_empty() {
        return Ok(false);
    }
    let mut diffs = Vec::new();
    for t in tables {
        match have_tables.iter().find(|h| h.table_id == t.table_id) {
            Some(h) if h.same_content(t) => {}
            Some(h) => diffs.push(format!(
                "Tables row {} differs in {}",
                t.table_id,
                h.differing_columns(t).join(", ")
            )),
            None => diffs.push(format!("Tables row {} is missing", t.table_id)),
        }
    }
    for f in files {
        match have_files.iter().find(|h| h.key() == f.key()) {
            Some(h) if h.same_content(f) => {}
            Some(h) => diffs.push(format!(
                "TableFiles row {}/{} differs in {}",
                f.table_id,
                f.file_id,
                h.differing_columns(f).join(", ")
            )),
            None => diffs.push(format!(
                "TableFiles row {}/{} is missing",
                f.table_id, f.file_id
            )),
        }
    }
    for h in &have_files {
        if !files.iter().any(|f| f.key() == h.key()) {
            diffs.push(format!(
                "TableFiles row {}/{} is not in the backup",
                h.table_id, h.file_id
            ));
        }
    }
    if diffs.is_empty() {
        return Ok(true);
    }
    diffs.truncate(6);
    Err(Error::Conflict(format!(
        "long-term holds rows for day {day} that differ from the backup: {}; refusing to restore",
        diffs.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{EngineType, MetricType, MilvusDate, TableState};

    fn coll(id: &str, engine: EngineType, params: &str) -> TableRow {
        TableRow {
            id: 7,
            table_id: id.into(),
            state: TableState::Normal,
            dimension: 8,
            created_on: 1,
            flag: 0,
            index_file_size: 1 << 20,
            engine_type: engine,
            index_params: params.into(),
            metric_type: MetricType::L2,
            owner_table: String::new(),
            partition_tag: String::new(),
            version: Some("1.1.1".into()),
            flush_lsn: 11,
        }
    }

    fn part(owner: &TableRow) -> TableRow {
        TableRow {
            table_id: "p1".into(),
            owner_table: owner.table_id.clone(),
            partition_tag: "day_2026-11-20".into(),
            ..owner.clone()
        }
    }

    fn file(table_id: &str, file_type: FileType, engine: EngineType) -> FileRow {
        FileRow {
            id: 0,
            table_id: table_id.into(),
            segment_id: "1".into(),
            engine_type: engine,
            file_id: "1".into(),
            file_type,
            file_size: 10,
            row_count: 1,
            updated_time: 1,
            created_on: 1,
            date: MilvusDate::EMPTY,
            flush_lsn: 0,
        }
    }

    const DAY: &str = "2026-11-20";

    #[test]
    fn raw_partitions_take_the_target_collections_index() {
        let src = coll("live", EngineType::IvfFlat, r#"{"nlist":16}"#);
        let dst = TableRow {
            index_file_size: 2 << 20,
            flush_lsn: 99,
            ..coll("other", EngineType::IvfPq, r#"{"nlist":32,"m":4}"#)
        };
        let raw = [file("p1", FileType::Raw, EngineType::Flat)];
        let day: Day = DAY.parse().unwrap();
        let out = retarget_partitions("live", &dst, &[part(&src)], &raw, day).unwrap();
        assert_eq!(
            out,
            [TableRow {
                id: 0,
                owner_table: "other".into(),
                index_file_size: 2 << 20,
                engine_type: EngineType::IvfPq,
                index_params: r#"{"nlist":32,"m":4}"#.into(),
                flush_lsn: 99,
                ..part(&src)
            }]
        );
    }

    #[test]
    fn built_index_files_of_another_index_are_refused() {
        let src = coll("live", EngineType::IvfFlat, r#"{"nlist":16}"#);
        let day: Day = DAY.parse().unwrap();
        let built = [
            file("p1", FileType::Index, EngineType::IvfFlat),
            file("p1", FileType::Backup, EngineType::Flat),
        ];
        let cases = [
            (
                coll("other", EngineType::IvfPq, r#"{"nlist":16}"#),
                "engine_type",
            ),
            (
                coll("other", EngineType::IvfFlat, r#"{"nlist":32}"#),
                "index_params",
            ),
            (
                TableRow {
                    dimension: 16,
                    ..coll("other", EngineType::IvfFlat, r#"{"nlist":16}"#)
                },
                "dimension",
            ),
            (
                TableRow {
                    metric_type: MetricType::Ip,
                    ..coll("other", EngineType::IvfFlat, r#"{"nlist":16}"#)
                },
                "metric_type",
            ),
        ];
        for (dst, field) in cases {
            let err = retarget_partitions("live", &dst, &[part(&src)], &built, day).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{field}: {err}");
            let msg = err.to_string();
            assert!(
                msg.contains("`live`") && msg.contains("`other`") && msg.contains(field),
                "{field}: {msg}"
            );
        }
        // The same index written differently is the same index.
        let dst = coll("other", EngineType::IvfFlat, r#"{ "nlist": 16 }"#);
        let out = retarget_partitions("live", &dst, &[part(&src)], &built, day).unwrap();
        assert_eq!(out[0].engine_type, EngineType::IvfFlat);
        assert_eq!(out[0].owner_table, "other");
    }
}
