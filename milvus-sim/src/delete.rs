//! Delete by id, as Milvus 1.1.1 does it: the request removes the ids from the unflushed
//! vectors at once (`MemTableFile::Delete`) and remembers them per table; the next flush
//! (`MemTable::ApplyDeletes`) finds them in the RAW, TO_INDEX and BACKUP segments on disk,
//! appends their row offsets to the segment's `deleted_docs`, rewrites its `bloom_filter`
//! and lowers `row_count` of every RAW, TO_INDEX, INDEX and BACKUP row of that segment.
//! `.rv`, `.uid` and `file_size` stay as they were; merges drop the deleted rows.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use milvus_tier::meta::{FileRow, FileType};

use crate::catalog;
use crate::error::{Result, SimError, code};
use crate::sim::{DEFAULT_TAG, Sim, check_name};
use crate::validate;

/// Ids waiting for the next flush, per table_id, with the time of the first request.
#[derive(Debug, Default)]
pub struct PendingDeletes(Mutex<BTreeMap<String, (HashSet<i64>, Instant)>>);

impl PendingDeletes {
    fn add(&self, table_id: &str, ids: &HashSet<i64>) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let e = m
            .entry(table_id.to_string())
            .or_insert_with(|| (HashSet::new(), Instant::now()));
        e.0.extend(ids.iter().copied());
    }

    /// Take the pending ids of the tables `pick` selects (by table_id and request time).
    pub fn take(&self, pick: impl Fn(&String, Instant) -> bool) -> Vec<(String, HashSet<i64>)> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let keys: Vec<String> = m
            .iter()
            .filter(|(k, (_, since))| pick(k, *since))
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| m.remove(&k).map(|(ids, _)| (k, ids)))
            .collect()
    }

    /// Whether any delete waits for a flush.
    pub fn is_empty(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }
}

impl Sim {
    /// `DeleteByIDRequest`: delete `ids` from the partition `tag`, or from the collection and
    /// all its partitions when no tag is given. Applied to disk by the next flush.
    pub async fn delete_by_id(&self, name: &str, tag: Option<&str>, ids: &[i64]) -> Result<()> {
        check_name("collection", name)?;
        let tag = match tag.filter(|t| !t.is_empty()) {
            Some(t) => Some(validate::partition_tag(t)?),
            None => None,
        };
        let root = catalog::live_collection(&self.db, name).await?;
        if !root.owner_table.is_empty() {
            return Err(SimError::no_collection(name));
        }
        let tables: Vec<String> = match tag.as_deref() {
            None => catalog::collection_tables(&self.db, name)
                .await?
                .into_iter()
                .map(|t| t.table_id)
                .collect(),
            Some(DEFAULT_TAG) => vec![root.table_id.clone()],
            Some(t) => vec![
                self.partition(name, t)
                    .await
                    .map_err(|_| {
                        SimError::api(
                            code::UNEXPECTED,
                            format!("Partition {t} of collection {name} does not exist"),
                        )
                    })?
                    .table_id,
            ],
        };
        if self.cfg.role != crate::sim::Role::Rw {
            return Err(SimError::api(
                code::UNEXPECTED,
                "delete is not allowed on a read-only node",
            ));
        }
        let ids: HashSet<i64> = ids.iter().copied().collect();
        let buffered = self.delete_buffered(&tables, &ids);
        for t in &tables {
            self.deletes.add(t, &ids);
        }
        tracing::info!(collection = name, ids = ids.len(), buffered, "delete by id");
        Ok(())
    }

    /// Apply the pending deletes `pick` selects to the segments on disk; returns the rows
    /// deleted.
    pub async fn apply_deletes(&self, pick: impl Fn(&String, Instant) -> bool) -> Result<i64> {
        let mut total = 0;
        for (table_id, ids) in self.deletes.take(pick) {
            total += self.apply_table_deletes(&table_id, &ids).await?;
        }
        Ok(total)
    }

    async fn apply_table_deletes(&self, table_id: &str, ids: &HashSet<i64>) -> Result<i64> {
        let files = self
            .db
            .files(
                &[table_id.to_string()],
                &[FileType::Raw, FileType::ToIndex, FileType::Backup],
            )
            .await?;
        let Some(table) = self
            .db
            .tables_by_id(&[table_id.to_string()])
            .await?
            .into_iter()
            .next()
        else {
            return Ok(0);
        };
        let dim = table.dimension as usize;
        let mut total = 0;
        for f in &files {
            let data = self
                .storage
                .read_raw(&f.table_id, &f.segment_id, &f.file_id, dim)?;
            let mut deleted = self.storage.read_deleted(&f.table_id, &f.segment_id)?;
            let already: HashSet<i32> = deleted.iter().copied().collect();
            let before = deleted.len();
            for (row, id) in data.ids.iter().enumerate() {
                if ids.contains(id) && !already.contains(&(row as i32)) {
                    deleted.push(row as i32);
                }
            }
            let n = (deleted.len() - before) as i64;
            if n == 0 {
                continue;
            }
            self.storage
                .write_deleted(&f.table_id, &f.segment_id, &deleted)?;
            let live = data.without(&deleted);
            self.storage
                .write_bloom(&f.table_id, &f.segment_id, &live.ids)?;
            lower_segment_row_count(self, f, n).await?;
            total += n;
            tracing::info!(table_id = %f.table_id, segment_id = %f.segment_id, rows = n,
                "deleted_docs updated");
        }
        Ok(total)
    }
}

/// `UpdateCollectionFilesRowCount` for the RAW, TO_INDEX, INDEX and BACKUP rows of `f`'s
/// segment.
async fn lower_segment_row_count(sim: &Sim, f: &FileRow, n: i64) -> Result<()> {
    let types = [
        FileType::Raw,
        FileType::ToIndex,
        FileType::Index,
        FileType::Backup,
    ];
    for row in sim
        .db
        .files(std::slice::from_ref(&f.table_id), &types)
        .await?
        .iter()
        .filter(|r| r.segment_id == f.segment_id)
    {
        catalog::set_row_count(&sim.db, &row.table_id, &row.file_id, row.row_count - n).await?;
    }
    Ok(())
}
