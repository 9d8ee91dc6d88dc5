//! Step 1, plan: read one day from short-term, check its segment folders, read the
//! long-term collection, and find out what long-term already holds. Reads only.

mod folders;
mod long_term;
mod recheck;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::day::Day;
use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::meta::{FileRow, MetaDb, TableRow, TableState};
use crate::segments::layout::{IN_FLIGHT_TYPES, INPUT_TYPES};
use folders::check_segments;
use long_term::long_term_state;

pub use long_term::LongTermState;
pub use recheck::recheck_source;

/// One partition of the day, as read and as it will be written.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionPlan {
    /// The short-term row.
    pub source: TableRow,
    /// The row long-term will hold (owner, index_file_size, engine, params and tag rewritten).
    pub target: TableRow,
    /// Input files of the partition.
    pub files: usize,
    /// Vectors in them.
    pub rows: i64,
    /// Bytes in them (the rows' file_size).
    pub bytes: i64,
}

/// The plan of one day: a value that can be printed (text, JSON) and drives the steps.
#[derive(Debug, Clone, Serialize)]
pub struct DayPlan {
    /// The day.
    pub day: Day,
    /// The partition tag of the day.
    pub tag: String,
    /// Short-term collection row.
    pub short_collection: TableRow,
    /// Long-term collection row.
    pub long_collection: TableRow,
    /// Partitions of the day.
    pub partitions: Vec<PartitionPlan>,
    /// Input file rows (RAW, TO_INDEX, BACKUP), ordered by table, segment, file.
    pub input_files: Vec<FileRow>,
    /// Rows of the day not used (INDEX rebuilt anyway, TO_DELETE leftovers), by type name.
    pub skipped: BTreeMap<String, usize>,
    /// Total vectors in the input files.
    pub rows: i64,
    /// Total bytes of the input files (rows' file_size).
    pub bytes: i64,
    /// Bytes on disk to stage (raw files with headers).
    pub stage_bytes: u64,
    /// What long-term holds.
    pub long_term: LongTermState,
}

impl DayPlan {
    /// Partition table_ids.
    pub fn partition_ids(&self) -> Vec<String> {
        self.partitions
            .iter()
            .map(|p| p.source.table_id.clone())
            .collect()
    }

    /// Target Tables rows (long-term form).
    pub fn target_tables(&self) -> Vec<TableRow> {
        self.partitions.iter().map(|p| p.target.clone()).collect()
    }
}

/// Everything plan needs.
pub struct PlanInput<'a> {
    /// Short-term metadata.
    pub short: &'a MetaDb,
    /// Short-term storage path.
    pub short_storage: &'a Path,
    /// Short-term collection name.
    pub short_collection: &'a str,
    /// Tag of the day in short-term.
    pub tag: String,
    /// Tag of the day in long-term: the published partitions carry it, and any long-term
    /// partition carrying it is part of the day's state there.
    pub long_tag: String,
    /// Long-term metadata.
    pub long: &'a MetaDb,
    /// Long-term storage path.
    pub long_storage: &'a Path,
    /// Long-term collection name.
    pub long_collection: &'a str,
    /// The journal (long-term DB); None in dry runs where its tables may not exist yet.
    pub journal: Option<&'a Journal>,
}

/// Build the plan of `day`.
pub async fn plan(day: Day, input: &PlanInput<'_>) -> Result<DayPlan> {
    input.short.check_schema().await?;
    input.long.check_schema().await?;
    let short_coll = live_collection(input.short, input.short_collection, "short-term").await?;
    let long_coll = live_collection(input.long, input.long_collection, "long-term").await?;
    if short_coll.dimension != long_coll.dimension
        || short_coll.metric_type != long_coll.metric_type
    {
        return Err(Error::BadInput(format!(
            "collection mismatch: short-term `{}` has dimension {} metric {}, long-term `{}` has dimension {} metric {}",
            short_coll.table_id,
            short_coll.dimension,
            short_coll.metric_type,
            long_coll.table_id,
            long_coll.dimension,
            long_coll.metric_type
        )));
    }

    let parts: Vec<TableRow> = input
        .short
        .partitions_tagged(&short_coll.table_id, &input.tag)
        .await?
        .into_iter()
        .filter(|p| p.state == TableState::Normal)
        .collect();
    if parts.is_empty() {
        return Err(Error::NoPartition {
            collection: short_coll.table_id.clone(),
            tag: input.tag.clone(),
            day: day.to_string(),
            tier: "short-term".into(),
        });
    }
    if parts.len() > 1 {
        let ids: Vec<&str> = parts.iter().map(|p| p.table_id.as_str()).collect();
        return Err(Error::Conflict(format!(
            "collection `{}` has {} NORMAL short-term partitions tagged `{}` (day {day}): {}; Milvus keeps one partition per tag, refusing to migrate the day until one is dropped",
            short_coll.table_id,
            parts.len(),
            input.tag,
            ids.join(", ")
        )));
    }
    let ids: Vec<String> = parts.iter().map(|p| p.table_id.clone()).collect();
    let all = input.short.files(&ids, &[]).await?;
    if let Some(f) = all.iter().find(|f| IN_FLIGHT_TYPES.contains(&f.file_type)) {
        return Err(Error::NotReady(format!(
            "short-term TableFiles row id {} (partition {}, file {}) is {}: the short-term engine is still writing day {day}; retry when it has finished",
            f.id, f.table_id, f.file_id, f.file_type
        )));
    }
    let mut skipped = BTreeMap::new();
    for f in all.iter().filter(|f| !INPUT_TYPES.contains(&f.file_type)) {
        *skipped.entry(f.file_type.label().to_string()).or_insert(0) += 1;
    }
    let input_files: Vec<FileRow> = all
        .iter()
        .filter(|f| INPUT_TYPES.contains(&f.file_type))
        .cloned()
        .collect();

    let mut partitions = Vec::new();
    for p in &parts {
        let files: Vec<&FileRow> = input_files
            .iter()
            .filter(|f| f.table_id == p.table_id)
            .collect();
        if files.is_empty() {
            return Err(Error::BadInput(format!(
                "partition {} (tag {}) of `{}` has no RAW, TO_INDEX or BACKUP files for day {day}",
                p.table_id, p.partition_tag, short_coll.table_id
            )));
        }
        partitions.push(PartitionPlan {
            source: p.clone(),
            target: TableRow {
                partition_tag: input.long_tag.clone(),
                ..target_partition(p, &long_coll)
            },
            files: files.len(),
            rows: files.iter().map(|f| f.row_count).sum(),
            bytes: files.iter().map(|f| f.file_size).sum(),
        });
    }
    // Thousands of folder listings: off the async workers.
    let stage_bytes = {
        let (root, all, input_files) = (
            input.short_storage.to_path_buf(),
            all.clone(),
            input_files.clone(),
        );
        let at = root.clone();
        tokio::task::spawn_blocking(move || check_segments(&root, &all, &input_files))
            .await
            .map_err(|e| Error::Io {
                op: "check segment folders",
                path: at,
                source: std::io::Error::other(e.to_string()),
            })??
    };
    let long_term = long_term_state(day, input, &long_coll, &ids, &partitions).await?;
    Ok(DayPlan {
        day,
        tag: input.tag.clone(),
        rows: input_files.iter().map(|f| f.row_count).sum(),
        bytes: input_files.iter().map(|f| f.file_size).sum(),
        stage_bytes,
        short_collection: short_coll,
        long_collection: long_coll,
        partitions,
        input_files,
        skipped,
        long_term,
    })
}

async fn live_collection(db: &MetaDb, name: &str, tier: &str) -> Result<TableRow> {
    match db.collection(name).await? {
        Some(c) if c.state == TableState::Normal => Ok(c),
        _ => Err(Error::CollectionNotFound {
            collection: name.to_string(),
            tier: tier.to_string(),
        }),
    }
}

/// The long-term form of a short-term partition row: owner, index_file_size, engine type
/// and index params of the long-term collection; everything else verbatim.
pub fn target_partition(p: &TableRow, long: &TableRow) -> TableRow {
    TableRow {
        id: 0,
        state: TableState::Normal,
        owner_table: long.table_id.clone(),
        index_file_size: long.index_file_size,
        engine_type: long.engine_type,
        index_params: long.index_params.clone(),
        // What `DBImpl::CreatePartition` writes: the owner's flush_lsn. A short-term lsn
        // would make the long-term node's `WalManager::Init` fail at its next start.
        flush_lsn: long.flush_lsn,
        ..p.clone()
    }
}
