//! The per-day figures of one tier for a whole range of days, in one query per 500 days:
//! partitions with their files' types, rows and sizes, joined and aggregated in memory.

use std::collections::{BTreeMap, BTreeSet};

use crate::day::{Day, TagFormat};
use crate::error::Result;
use crate::meta::{FileType, MetaDb, TableState};

/// How many tags go into one `IN (…)` list.
const CHUNK: usize = 500;

/// One day's partitions and files in one tier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierDay {
    /// Partitions in state NORMAL.
    pub partitions: u32,
    /// Partitions soft-deleted (TO_DELETE).
    pub deleted_partitions: u32,
    /// Searchable rows (RAW, TO_INDEX, INDEX files of NORMAL partitions).
    pub rows: i64,
    /// Searchable files.
    pub files: u32,
    /// INDEX files.
    pub index_files: u32,
    /// RAW and TO_INDEX files.
    pub raw_files: u32,
    /// Bytes of the searchable files and the raw files kept beside their index (BACKUP).
    pub bytes: i64,
    /// Files the engine is still writing (NEW, NEW_MERGE, NEW_INDEX).
    pub writing_files: u32,
}

/// The figures of `days` in `collection`, keyed by day; one query per 500 days.
/// `queries` counts the statements sent.
pub async fn tier_days(
    db: &MetaDb,
    collection: &str,
    tags: &TagFormat,
    days: &[Day],
    queries: &mut u32,
) -> Result<BTreeMap<Day, TierDay>> {
    let by_tag: BTreeMap<String, Day> = days.iter().map(|d| (tags.tag(*d), *d)).collect();
    let mut out: BTreeMap<Day, TierDay> = BTreeMap::new();
    let tag_list: Vec<&String> = by_tag.keys().collect();
    for chunk in tag_list.chunks(CHUNK) {
        *queries += 1;
        let rows = db.partition_files_tagged(collection, chunk).await?;
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for r in rows {
            let Some(day) = by_tag.get(&r.tag) else {
                continue;
            };
            let entry = out.entry(*day).or_default();
            if seen.insert(r.table_id.clone()) {
                if r.state == TableState::Normal {
                    entry.partitions += 1;
                } else {
                    entry.deleted_partitions += 1;
                }
            }
            let Some((ft, row_count, size)) = r.file else {
                continue;
            };
            if r.state != TableState::Normal {
                continue;
            }
            match ft {
                FileType::Raw | FileType::ToIndex | FileType::Index => {
                    entry.rows += row_count;
                    entry.bytes += size;
                    entry.files += 1;
                    if ft == FileType::Index {
                        entry.index_files += 1;
                    } else {
                        entry.raw_files += 1;
                    }
                }
                FileType::New | FileType::NewMerge | FileType::NewIndex => entry.writing_files += 1,
                // The raw file kept beside its index: on storage, not searched.
                FileType::Backup => entry.bytes += size,
                FileType::ToDelete => {}
            }
        }
    }
    Ok(out)
}
