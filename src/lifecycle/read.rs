//! The per-day figures of one tier for a whole range of days, in one query per 500 days:
//! partitions with their files' types, rows and sizes, joined and aggregated in memory.

use std::collections::BTreeMap;

use sqlx::{Any, QueryBuilder, Row};

use crate::day::{Day, TagFormat};
use crate::error::{Error, Result};
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
        let mut qb: QueryBuilder<Any> = QueryBuilder::new(
            "SELECT t.table_id, t.partition_tag, t.state, f.file_type, f.row_count, f.file_size \
             FROM Tables t LEFT JOIN TableFiles f ON f.table_id = t.table_id \
             WHERE t.owner_table = ",
        );
        qb.push_bind(collection.to_string());
        qb.push(" AND t.partition_tag IN (");
        let mut sep = qb.separated(", ");
        for t in chunk {
            sep.push_bind((*t).clone());
        }
        qb.push(")");
        *queries += 1;
        let rows = qb
            .build()
            .fetch_all(db.pool())
            .await
            .map_err(db.err(format!("read the partitions of {collection}")))?;
        let mut seen: BTreeMap<String, bool> = BTreeMap::new();
        for r in &rows {
            let dec = || db.err(format!("decode the partitions of {collection}"));
            let table_id: String = r.try_get(0).map_err(dec())?;
            let tag: String = r.try_get(1).map_err(dec())?;
            let state: i64 = r.try_get(2).map_err(dec())?;
            let file_type: Option<i64> = r.try_get(3).map_err(dec())?;
            let row_count: Option<i64> = r.try_get(4).map_err(dec())?;
            let size: Option<i64> = r.try_get(5).map_err(dec())?;
            let Some(day) = by_tag.get(&tag) else {
                continue;
            };
            let state = TableState::decode("Tables", -1, state)?;
            let entry = out.entry(*day).or_default();
            if seen.insert(table_id.clone(), true).is_none() {
                if state == TableState::Normal {
                    entry.partitions += 1;
                } else {
                    entry.deleted_partitions += 1;
                }
            }
            let Some(ft) = file_type else {
                continue;
            };
            let ft = FileType::decode("TableFiles", -1, ft).map_err(|e| match e {
                Error::UnknownEnum { value, .. } => Error::BadInput(format!(
                    "partition {table_id} ({tag}) of {collection}: unknown file_type {value}"
                )),
                other => other,
            })?;
            if state != TableState::Normal {
                continue;
            }
            match ft {
                FileType::Raw | FileType::ToIndex | FileType::Index => {
                    entry.rows += row_count.unwrap_or(0);
                    entry.bytes += size.unwrap_or(0);
                    entry.files += 1;
                    if ft == FileType::Index {
                        entry.index_files += 1;
                    } else {
                        entry.raw_files += 1;
                    }
                }
                FileType::New | FileType::NewMerge | FileType::NewIndex => entry.writing_files += 1,
                // The raw file kept beside its index: on storage, not searched.
                FileType::Backup => entry.bytes += size.unwrap_or(0),
                FileType::ToDelete => {}
            }
        }
    }
    Ok(out)
}
