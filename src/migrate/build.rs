//! Step 3, build: have the local engine merge and index the day through its HTTP API, and
//! watch its metadata until every file is INDEX or BACKUP, or RAW under the build threshold.
//!
//! Polls adaptively (50 ms rising to 1 s, so completion is noticed within about a second),
//! enforces separate merge and index limits plus a no-progress limit, and tells success,
//! timeout and engine error (HTTP 5xx, crash, leftover NEW_MERGE/NEW_INDEX rows) apart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::{Engine, EngineError};
use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::meta::{FileRow, FileType, MetaDb};
use crate::plan::DayPlan;
use crate::progress::Status;

/// Time limits of the build.
#[derive(Debug, Clone, Copy)]
pub struct BuildLimits {
    /// Until the first file reaches TO_INDEX/NEW_INDEX/INDEX (or the day is done).
    pub merge: Duration,
    /// From then until done.
    pub index: Duration,
    /// Without any change in the day's file rows.
    pub no_progress: Duration,
    /// RAW files with fewer rows are never indexed.
    pub threshold: i64,
}

/// What build produced.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    /// Result file rows (RAW, INDEX, BACKUP) in the local engine.
    pub files: Vec<FileRow>,
    /// Seconds until merge finished.
    pub merge_secs: f64,
    /// Seconds in total.
    pub total_secs: f64,
    /// Metadata polls made.
    pub polls: u64,
}

/// Where the day stands in the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Progress {
    counts: BTreeMap<FileType, (usize, i64)>,
}

impl Progress {
    fn of(files: &[FileRow]) -> Progress {
        let mut counts = BTreeMap::new();
        for f in files {
            let e = counts.entry(f.file_type).or_insert((0, 0));
            e.0 += 1;
            e.1 += f.file_size;
        }
        Progress { counts }
    }
    fn has(&self, t: FileType) -> bool {
        self.counts.get(&t).is_some_and(|c| c.0 > 0)
    }
    fn describe(&self) -> String {
        self.counts
            .iter()
            .map(|(t, (n, _))| format!("{t}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Whether the engine has finished with these rows: every file INDEX or BACKUP, or RAW
/// under the build threshold, and no partition left with two RAW files it would still merge
/// (files under `index_file_size`; Milvus's create_index merges those first).
pub fn is_done(files: &[FileRow], threshold: i64, index_file_size: i64) -> bool {
    let settled = files.iter().all(|f| match f.file_type {
        FileType::Index | FileType::Backup | FileType::ToDelete => true,
        FileType::Raw => f.row_count < threshold,
        _ => false,
    });
    let mut small_raw: BTreeMap<&str, usize> = BTreeMap::new();
    for f in files
        .iter()
        .filter(|f| f.file_type == FileType::Raw && f.file_size < index_file_size)
    {
        *small_raw.entry(&f.table_id).or_default() += 1;
    }
    settled && small_raw.values().all(|n| *n < 2)
}

/// Result rows: what long-term will hold.
pub fn result_rows(files: &[FileRow]) -> Vec<FileRow> {
    files
        .iter()
        .filter(|f| {
            matches!(
                f.file_type,
                FileType::Raw | FileType::Index | FileType::Backup
            )
        })
        .cloned()
        .collect()
}

/// Drive the engine and wait for it.
pub async fn build(
    plan: &DayPlan,
    local: &MetaDb,
    engine: &Engine,
    limits: BuildLimits,
    status: &Status,
) -> Result<BuildReport> {
    let start = Instant::now();
    let collection = plan.long_collection.table_id.clone();
    let ids = plan.partition_ids();
    engine.health().await?;
    let params: serde_json::Value = serde_json::from_str(&plan.long_collection.index_params)
        .map_err(|e| {
            Error::BadInput(format!(
                "long-term collection `{collection}` has index_params that are not JSON ({e}): {}",
                plan.long_collection.index_params
            ))
        })?;
    let create = {
        let (engine, collection, kind) = (
            engine.clone(),
            collection.clone(),
            plan.long_collection.engine_type,
        );
        let timeout = limits.merge + limits.index;
        tokio::spawn(async move {
            engine
                .create_index(&collection, kind, &params, timeout)
                .await
        })
    };
    // create_index flushes and blocks until the build is done; it runs beside the watch so
    // that a long build neither times out the run nor hides an engine error.
    let mut create = Some(create);
    failpoint("build.after_create_index");

    let mut interval = Duration::from_millis(50);
    let mut last = Progress {
        counts: BTreeMap::new(),
    };
    let mut last_change = Instant::now();
    let mut merge_done: Option<Instant> = None;
    let mut polls = 0u64;
    loop {
        polls += 1;
        let files = local.files(&ids, &[]).await?;
        let progress = Progress::of(&files);
        // A build in progress (NEW_INDEX) or a merge (NEW_MERGE) changes no row for as
        // long as it runs: for a day of millions of vectors, many minutes.
        let working = progress.has(FileType::NewIndex) || progress.has(FileType::NewMerge);
        if working {
            last_change = Instant::now();
        }
        if progress != last {
            tracing::info!(state = %progress.describe(), elapsed_s = start.elapsed().as_secs_f64(), "engine progress");
            status.set(progress.describe());
            last = progress.clone();
            last_change = Instant::now();
            interval = Duration::from_millis(50);
        }
        if merge_done.is_none()
            && (progress.has(FileType::ToIndex)
                || progress.has(FileType::NewIndex)
                || progress.has(FileType::Index)
                || is_done(
                    &files,
                    limits.threshold,
                    plan.long_collection.index_file_size,
                ))
        {
            merge_done = Some(Instant::now());
        }
        if is_done(
            &files,
            limits.threshold,
            plan.long_collection.index_file_size,
        ) && !progress.has(FileType::NewMerge)
        {
            let result = result_rows(&files);
            let rows: i64 = result
                .iter()
                .filter(|f| f.file_type != FileType::Backup)
                .map(|f| f.row_count)
                .sum();
            if rows != plan.rows {
                return Err(Error::EngineState(format!(
                    "engine finished day {} with {rows} searchable rows, the input had {}",
                    plan.day, plan.rows
                )));
            }
            if let Some(task) = create.take() {
                task.abort();
            }
            tracing::info!(
                polls,
                elapsed_s = start.elapsed().as_secs_f64(),
                "engine build complete"
            );
            failpoint("build.done");
            let merge_at = merge_done.unwrap_or_else(Instant::now);
            return Ok(BuildReport {
                files: result,
                merge_secs: (merge_at - start).as_secs_f64(),
                total_secs: start.elapsed().as_secs_f64(),
                polls,
            });
        }
        // The background create_index call ended: an error is an engine error.
        if create.as_ref().is_some_and(|t| t.is_finished()) {
            let task = create.take().expect("present");
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(engine_failure(e, &progress)),
                Err(join) => {
                    return Err(Error::EngineState(format!(
                        "create_index task failed: {join}"
                    )));
                }
            }
        }
        match merge_done {
            None if start.elapsed() > limits.merge => {
                return Err(Error::Timeout(format!(
                    "engine did not merge day {} within {}s ({})",
                    plan.day,
                    limits.merge.as_secs(),
                    progress.describe()
                )));
            }
            Some(at) if at.elapsed() > limits.index => {
                return Err(Error::Timeout(format!(
                    "engine did not index day {} within {}s ({})",
                    plan.day,
                    limits.index.as_secs(),
                    progress.describe()
                )));
            }
            _ => {}
        }
        let stalled = last_change.elapsed();
        if stalled > limits.no_progress {
            // Tell a dead engine from a stuck one.
            if let Err(e) = engine.health().await {
                return Err(engine_failure(e, &progress));
            }
            let stuck: Vec<String> = files
                .iter()
                .filter(|f| f.file_type == FileType::Raw && f.row_count >= limits.threshold)
                .map(|f| format!("{}/{} ({} rows)", f.table_id, f.file_id, f.row_count))
                .collect();
            let hint = if stuck.is_empty() || progress.has(FileType::ToIndex) {
                String::new()
            } else {
                format!(
                    "; RAW files at or above build_index_threshold {} are not being indexed: {} (is the engine's threshold higher?)",
                    limits.threshold,
                    stuck.join(", ")
                )
            };
            return Err(Error::Timeout(format!(
                "engine made no progress on day {} for {}s ({}){hint}",
                plan.day,
                limits.no_progress.as_secs(),
                progress.describe()
            )));
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 3 / 2).min(Duration::from_secs(1));
    }
}

fn engine_failure(e: EngineError, progress: &Progress) -> Error {
    let leftovers = [FileType::NewMerge, FileType::NewIndex]
        .iter()
        .filter(|t| progress.has(**t))
        .map(|t| t.label())
        .collect::<Vec<_>>();
    match e {
        EngineError::Unreachable { .. } if !leftovers.is_empty() => Error::EngineState(format!(
            "engine crashed: {e}; it left {} rows behind",
            leftovers.join(" and ")
        )),
        EngineError::Unreachable { .. } => Error::EngineState(format!("engine unreachable: {e}")),
        other => Error::Engine(other),
    }
}
