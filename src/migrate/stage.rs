//! Step 2, stage: insert the rewritten rows into the local engine's metadata in one
//! transaction, then copy the day's raw segment files from short-term storage into the
//! local engine's storage (checksummed while copying). Short-term is only read.
//!
//! Short-term index files are not copied: the engine rebuilds the index from the raw
//! vectors (`.rv`/`.uid`) of RAW, TO_INDEX and BACKUP files (docs/milvus-1.1.1-source-notes.md,
//! section 4: flush, merge, index build).

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::meta::{EngineType, FileRow, FileType, MetaDb, TableRow, WriteMode};
use crate::plan::DayPlan;
use crate::segments::ProgressFn;
use crate::segments::layout::{raw_filter, segments_of};
use crate::segments::{self, CopyOptions, Existing, FileDigest};

/// What stage did.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// Files copied, with BLAKE3.
    pub files: Vec<FileDigest>,
    /// Combined digest of `files`.
    pub digest: String,
    /// Bytes copied.
    pub bytes: u64,
    /// Rows inserted into the local metadata.
    pub rows_inserted: usize,
}

/// The engine type of unindexed data: BIN_FLAT for binary metrics, FLAT otherwise (as
/// `CreateCollectionRequest` sets it).
fn raw_engine(plan: &DayPlan) -> EngineType {
    use crate::meta::MetricType;
    match plan.long_collection.metric_type {
        MetricType::L2 | MetricType::Ip => EngineType::Flat,
        _ => EngineType::BinFlat,
    }
}

/// The local engine's collection row: the long-term collection with no index yet, so that
/// create_index is a change the engine acts on.
pub fn local_collection(plan: &DayPlan) -> TableRow {
    TableRow {
        id: 0,
        engine_type: raw_engine(plan),
        index_params: "{}".into(),
        ..plan.long_collection.clone()
    }
}

/// Local partition and file rows for the day (docs/milvus-1.1.1-source-notes.md, 2.2 and
/// 4.1): partitions owned by the
/// long-term collection with its index_file_size and params `{}`; files RAW with engine FLAT.
pub fn local_rows(plan: &DayPlan) -> (Vec<TableRow>, Vec<FileRow>) {
    let mut tables = vec![local_collection(plan)];
    tables.extend(plan.partitions.iter().map(|p| TableRow {
        engine_type: raw_engine(plan),
        index_params: "{}".into(),
        ..p.target.clone()
    }));
    let files = plan
        .input_files
        .iter()
        .map(|f| FileRow {
            id: 0,
            file_type: FileType::Raw,
            engine_type: raw_engine(plan),
            ..f.clone()
        })
        .collect();
    (tables, files)
}

/// Remove the local collection, every partition it owns (earlier days included) and their
/// files from the local engine (scratch), so each day starts from an engine holding only
/// that day: Milvus's create_index drops and rebuilds every partition's index when the
/// root's index changes (`DBImpl::CreateIndex` → `UpdateCollectionIndexRecursively`).
pub async fn wipe_local(plan: &DayPlan, local: &MetaDb, local_storage: &Path) -> Result<()> {
    let root = plan.long_collection.table_id.clone();
    let owned = local.partitions(&root).await?;
    let mut ids: std::collections::BTreeSet<String> =
        owned.into_iter().map(|t| t.table_id).collect();
    ids.extend(plan.partition_ids());
    ids.insert(root);
    for id in &ids {
        local.delete_table(id).await?;
        let dir = local_storage.join("db").join("tables").join(id);
        if dir.exists() {
            tokio::fs::remove_dir_all(&dir)
                .await
                .map_err(|e| Error::io("remove", &dir, e))?;
        }
    }
    Ok(())
}

/// Copy and insert; the local engine's copy of the day is replaced.
pub async fn stage(
    plan: &DayPlan,
    short_storage: &Path,
    local: &MetaDb,
    local_storage: &Path,
    concurrency: usize,
    bandwidth: Option<u64>,
    progress: Option<ProgressFn>,
) -> Result<StageReport> {
    wipe_local(plan, local, local_storage).await?;
    // Rows first, then files: a TTL pass of the running engine removes a segment folder no
    // row names, and a table folder once the table has no file row (`CleanUpFilesWithTTL`);
    // a pass that picked up the rows the wipe removed would otherwise take the fresh copy
    // with it. The engine does nothing with RAW rows until create_index (no timed merge).
    let (tables, files) = local_rows(plan);
    let report = local
        .write_rows(&tables, &files, WriteMode::Replace)
        .await?;
    failpoint("stage.after_rows");
    let opts = CopyOptions {
        concurrency,
        bandwidth_bytes_per_s: bandwidth,
        include: Some(raw_filter(&plan.input_files)),
        existing: Existing::Replace,
        fsync: false,
        progress,
        prehashed: None,
    };
    let copied = segments::copy_segments(
        short_storage,
        local_storage,
        &segments_of(&plan.input_files),
        &opts,
    )
    .await;
    let copied = match copied {
        Ok(c) => c,
        Err(e) => {
            // No engine rows for files that were not staged.
            if let Err(w) = wipe_local(plan, local, local_storage).await {
                tracing::warn!(error = %w, "could not remove the rows of a failed stage");
            }
            return Err(e.into());
        }
    };
    failpoint("stage.after_copy");
    Ok(StageReport {
        digest: segments::combined_digest(&copied.files),
        bytes: copied.bytes_copied,
        files: copied.files,
        rows_inserted: report.tables.len() + report.files.len(),
    })
}
