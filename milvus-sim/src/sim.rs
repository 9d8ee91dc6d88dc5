//! The simulated node: collections, partitions, the insert buffer, flush and index settings.
//!
//! The only in-memory state is the insert buffer (as in Milvus, unflushed vectors live in
//! memory); everything else is re-read from the metadata database and the storage folder on
//! every call. The HTTP layer and `seed` call the same functions.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use milvus_tier::meta::{
    EngineType, FileRow, FileType, MetaDb, MetricType, TableRow, TableState, WriteMode,
};

use crate::catalog;
use crate::error::{Result, SimError, code};
use crate::faults::Faults;
use crate::ids;
use crate::indexing;
use crate::locks::EngineLocks;
use crate::metric::Query;
use crate::storage::{RawData, Storage};
use crate::validate;

/// Bytes in one MB (the API unit of `index_file_size`).
pub const MB: i64 = 1024 * 1024;
/// The tag that names the root collection itself.
pub const DEFAULT_TAG: &str = "_default";
/// `MILVUS_VERSION` written to `Tables.version`.
pub const VERSION: &str = "1.1.1";
/// `FLAG_MASK_NO_USERID`: the collection's ids are generated.
const FLAG_NO_USER_ID: i64 = 0x1;
/// `FLAG_MASK_HAS_USERID`: the collection's ids are given by the user.
const FLAG_HAS_USER_ID: i64 = 0x2;
/// Milvus's `engine.max_partition_num`.
const MAX_PARTITIONS: usize = 4096;

/// Node role (`cluster.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Writable: flush, merge, index build and cleanup run here.
    Rw,
    /// Read-only: serves search and stats from metadata and files only.
    Ro,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Node role.
    pub role: Role,
    /// RAW files with at least this many rows are indexed.
    pub build_index_threshold: i64,
    /// Merge throughput in MB/s (0 = unlimited).
    pub merge_mb_per_s: f64,
    /// Index build throughput in MB/s (0 = unlimited).
    pub index_mb_per_s: f64,
    /// Background tick.
    pub tick: Duration,
    /// TO_DELETE files older than this are removed.
    pub ttl_secs: i64,
    /// Buffered vectors older than this are flushed automatically.
    pub auto_flush: Duration,
    /// Pause of a TTL pass between removing rows and removing folders (test knob that
    /// widens the window in which other writers race the pass).
    pub ttl_pause: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            role: Role::Rw,
            build_index_threshold: 4096,
            merge_mb_per_s: 0.0,
            index_mb_per_s: 0.0,
            tick: Duration::from_millis(100),
            ttl_secs: 10,
            auto_flush: Duration::from_secs(1),
            ttl_pause: Duration::ZERO,
        }
    }
}

#[derive(Debug)]
struct Pending {
    dim: usize,
    data: RawData,
    since: Instant,
}

/// One simulated Milvus node.
#[derive(Debug)]
pub struct Sim {
    /// Metadata database.
    pub db: MetaDb,
    /// Segment storage.
    pub storage: Storage,
    /// Settings.
    pub cfg: SimConfig,
    /// Injected faults.
    pub faults: Faults,
    /// The engine's build and merge locks.
    pub locks: EngineLocks,
    buffer: Mutex<BTreeMap<String, Pending>>,
    /// Deletes waiting for the next flush.
    pub(crate) deletes: crate::delete::PendingDeletes,
}

fn name_error(what: &str, name: &str) -> SimError {
    SimError::api(
        code::ILLEGAL_COLLECTION_NAME,
        format!("Invalid {what} name: `{name}`"),
    )
}

/// Milvus's `ValidateCollectionName`: a letter or `_` first, then letters, digits, `_`, at most 255.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || name.len() > 255 || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(name_error(what, name));
    }
    Ok(())
}

impl Sim {
    /// A node over `db` and `storage`.
    pub fn new(db: MetaDb, storage: Storage, cfg: SimConfig, faults: Faults) -> Self {
        Sim {
            db,
            storage,
            cfg,
            faults,
            locks: EngineLocks::default(),
            buffer: Mutex::new(BTreeMap::new()),
            deletes: Default::default(),
        }
    }

    fn writable(&self, what: &str) -> Result<()> {
        match self.cfg.role {
            Role::Rw => Ok(()),
            Role::Ro => Err(SimError::api(
                code::UNEXPECTED,
                format!("{what} is not allowed on a read-only node"),
            )),
        }
    }

    /// Create a collection (`CreateCollection`); `index_file_size_mb` is stored in bytes.
    pub async fn create_collection(
        &self,
        name: &str,
        dim: i64,
        index_file_size_mb: i64,
        metric: &str,
    ) -> Result<TableRow> {
        check_name("collection", name)?;
        if !(1..=32768).contains(&dim) {
            return Err(SimError::api(
                code::ILLEGAL_DIMENSION,
                format!("Invalid dimension: {dim}. Should be in range 1 ~ 32768."),
            ));
        }
        if !(1..=131072).contains(&index_file_size_mb) {
            return Err(SimError::api(
                code::ILLEGAL_ARGUMENT,
                format!(
                    "Invalid index file size: {index_file_size_mb}. Should be in range 1 ~ 131072 MB."
                ),
            ));
        }
        let Some(metric_type) = MetricType::from_label(metric) else {
            return Err(SimError::api(
                code::ILLEGAL_METRIC_TYPE,
                format!("Invalid metric type: {metric}"),
            ));
        };
        let binary = crate::metric::is_binary(metric_type);
        if binary && dim % 8 != 0 {
            return Err(SimError::api(
                code::ILLEGAL_DIMENSION,
                format!(
                    "Invalid collection dimension: {dim}. The collection dimension must be a multiple of 8"
                ),
            ));
        }
        if let Some(existing) = self.db.collection(name).await? {
            let msg = if existing.state == TableState::ToDelete {
                format!(
                    "Collection {name} already exists and it is in delete state, please wait a second"
                )
            } else {
                format!("Collection {name} already exists")
            };
            return Err(SimError::api(code::UNEXPECTED, msg));
        }
        let row = TableRow {
            id: 0,
            table_id: name.to_string(),
            state: TableState::Normal,
            dimension: dim,
            created_on: ids::now_micros(),
            flag: 0,
            index_file_size: index_file_size_mb * MB,
            engine_type: if binary {
                EngineType::BinFlat
            } else {
                EngineType::Flat
            },
            index_params: "{}".into(),
            metric_type,
            owner_table: String::new(),
            partition_tag: String::new(),
            version: Some(VERSION.into()),
            flush_lsn: 0,
        };
        let report = self
            .db
            .write_rows(std::slice::from_ref(&row), &[], WriteMode::InsertIfAbsent)
            .await?;
        if !report.committed {
            return Err(SimError::api(
                code::UNEXPECTED,
                format!("Collection {name} already exists"),
            ));
        }
        self.storage.create_table_dir(name)?;
        tracing::info!(collection = name, dim, "create collection");
        Ok(row)
    }

    /// Soft-delete a collection and its partitions (state TO_DELETE, files TO_DELETE).
    pub async fn drop_collection(&self, name: &str) -> Result<()> {
        let tables = catalog::collection_tables(&self.db, name).await?;
        let ids: Vec<String> = tables.into_iter().map(|t| t.table_id).collect();
        self.discard_buffer(&ids);
        catalog::soft_delete(&self.db, &ids, ids::now_micros()).await?;
        tracing::info!(collection = name, "drop collection");
        Ok(())
    }

    /// Create partition `tag` of `name` (`CreatePartition`): a numeric table_id and the
    /// parent's state, dimension, index_file_size, engine_type, index_params, metric, version.
    pub async fn create_partition(&self, name: &str, tag: &str) -> Result<TableRow> {
        let parent = catalog::live_collection(&self.db, name).await?;
        let tag = tag.trim();
        if tag.is_empty() || tag == DEFAULT_TAG || tag.len() > 255 {
            return Err(SimError::api(
                code::ILLEGAL_ARGUMENT,
                format!("Invalid partition tag: `{tag}`"),
            ));
        }
        let existing = self.db.partitions(name).await?;
        if existing.iter().any(|p| p.partition_tag == tag) {
            return Err(SimError::api(
                code::UNEXPECTED,
                format!("Duplicate partition tag {tag} in collection {name}"),
            ));
        }
        if existing.len() >= MAX_PARTITIONS {
            return Err(SimError::api(
                code::ILLEGAL_ARGUMENT,
                format!("Collection {name} already has {MAX_PARTITIONS} partitions"),
            ));
        }
        let row = TableRow {
            id: 0,
            table_id: ids::next_id(),
            created_on: ids::now_micros(),
            flag: 0,
            owner_table: parent.table_id.clone(),
            partition_tag: tag.to_string(),
            flush_lsn: parent.flush_lsn,
            ..parent
        };
        self.db
            .write_rows(std::slice::from_ref(&row), &[], WriteMode::InsertIfAbsent)
            .await?;
        self.storage.create_table_dir(&row.table_id)?;
        tracing::info!(collection = name, tag, table_id = %row.table_id, "create partition");
        Ok(row)
    }

    /// Soft-delete partition `tag` of `name`.
    pub async fn drop_partition(&self, name: &str, tag: &str) -> Result<()> {
        catalog::live_collection(&self.db, name).await?;
        if tag == DEFAULT_TAG {
            return Err(SimError::api(
                code::ILLEGAL_ARGUMENT,
                "Default partition cannot be dropped",
            ));
        }
        let p = self.partition(name, tag).await?;
        self.discard_buffer(std::slice::from_ref(&p.table_id));
        catalog::soft_delete(&self.db, &[p.table_id], ids::now_micros()).await?;
        tracing::info!(collection = name, tag, "drop partition");
        Ok(())
    }

    /// The live partition `tag` of `name`, or code 4.
    pub async fn partition(&self, name: &str, tag: &str) -> Result<TableRow> {
        catalog::live_partitions(&self.db, name)
            .await?
            .into_iter()
            .find(|p| p.partition_tag == tag)
            .ok_or_else(|| {
                SimError::api(
                    code::COLLECTION_NOT_EXISTS,
                    format!("Partition {tag} of collection {name} does not exist"),
                )
            })
    }

    /// The table a tag names: the root for none or `_default`, else the partition.
    pub async fn table_for_tag(&self, name: &str, tag: Option<&str>) -> Result<TableRow> {
        match tag {
            None | Some("") | Some(DEFAULT_TAG) => catalog::live_collection(&self.db, name).await,
            Some(t) => self.partition(name, t).await,
        }
    }

    /// Buffer vectors for `name` / `tag`; returns their ids (generated when not given).
    /// Checks follow `InsertRequest::OnExecute`: vectors present, as many ids as vectors,
    /// the collection (not a partition) and the partition exist, the id mode of the
    /// collection (`Tables.flag`: user ids or generated ids, never both), the vectors.
    pub async fn insert(
        &self,
        name: &str,
        tag: Option<&str>,
        ids_in: Option<Vec<i64>>,
        rows: &[Vec<f64>],
    ) -> Result<Vec<i64>> {
        self.writable("insert")?;
        check_name("collection", name)?;
        if rows.is_empty() || rows.iter().all(|r| r.is_empty()) {
            return Err(SimError::api(
                code::ILLEGAL_ROWRECORD,
                "The vector array is empty. Make sure you have entered vector records.",
            ));
        }
        let ids_in = ids_in.filter(|i| !i.is_empty());
        if ids_in.as_ref().is_some_and(|i| i.len() != rows.len()) {
            return Err(SimError::api(
                code::ILLEGAL_VECTOR_ID,
                "The size of vector ID array must be equal to the size of the vector.",
            ));
        }
        let root = catalog::live_collection(&self.db, name).await?;
        if !root.owner_table.is_empty() {
            return Err(SimError::no_collection(name));
        }
        let table = self.table_for_tag(name, tag).await?;
        let user_ids = ids_in.is_some();
        if root.flag & FLAG_HAS_USER_ID != 0 && !user_ids {
            return Err(SimError::api(
                code::ILLEGAL_VECTOR_ID,
                "Entities IDs are user-defined. Please provide IDs for all entities of the collection.",
            ));
        }
        if root.flag & FLAG_NO_USER_ID != 0 && user_ids {
            return Err(SimError::api(
                code::ILLEGAL_VECTOR_ID,
                "Entities IDs are auto-generated. All vectors of this collection must use auto-generated IDs.",
            ));
        }
        let vectors = validate::vectors(rows, root.dimension, root.metric_type, true)?;
        let dim = table.dimension as usize;
        let new_ids = ids_in.unwrap_or_else(|| ids::next_vector_ids(vectors.len()));
        {
            let mut buf = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            let p = buf
                .entry(table.table_id.clone())
                .or_insert_with(|| Pending {
                    dim,
                    data: RawData::default(),
                    since: Instant::now(),
                });
            p.data.ids.extend_from_slice(&new_ids);
            for v in &vectors {
                match v {
                    Query::Float(f) => p.data.vectors.extend_from_slice(f),
                    Query::Binary(b) => p.data.bits.extend_from_slice(b),
                }
            }
        }
        let flag = root.flag
            | if user_ids {
                FLAG_HAS_USER_ID
            } else {
                FLAG_NO_USER_ID
            };
        if flag != root.flag {
            catalog::set_table_flag(&self.db, &root.table_id, flag).await?;
        }
        Ok(new_ids)
    }

    /// Remove `ids` from the unflushed vectors of `table_ids` (`MemTableFile::Delete`);
    /// returns how many rows went.
    pub fn delete_buffered(
        &self,
        table_ids: &[String],
        ids: &std::collections::HashSet<i64>,
    ) -> usize {
        let mut buf = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        let mut gone = 0;
        for t in table_ids {
            if let Some(p) = buf.get_mut(t) {
                let before = p.data.rows();
                let mut kept = RawData::default();
                for row in 0..before {
                    if !ids.contains(&p.data.ids[row]) {
                        kept.push_row(&p.data, row);
                    }
                }
                gone += before - kept.rows();
                p.data = kept;
            }
        }
        gone
    }

    fn discard_buffer(&self, table_ids: &[String]) {
        let mut buf = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        for id in table_ids {
            buf.remove(id);
        }
    }

    /// Whether vectors wait in the buffer.
    pub fn has_buffered(&self) -> bool {
        !self
            .buffer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
            || !self.deletes.is_empty()
    }

    /// Flush the buffers of the named collections (all collections when empty); returns
    /// the table_ids that had buffered data.
    pub async fn flush(&self, names: &[String]) -> Result<Vec<String>> {
        let mut table_ids = None;
        if !names.is_empty() {
            let mut all = Vec::new();
            for n in names {
                for t in catalog::collection_tables(&self.db, n).await? {
                    all.push(t.table_id);
                }
            }
            table_ids = Some(all);
        }
        self.flush_where(|id, _| table_ids.as_ref().is_none_or(|ids| ids.contains(id)))
            .await
    }

    /// Flush buffers older than the auto-flush interval (`storage.auto_flush_interval`);
    /// returns the table_ids flushed.
    pub async fn auto_flush(&self) -> Result<Vec<String>> {
        let age = self.cfg.auto_flush;
        self.flush_where(|_, since| since.elapsed() >= age).await
    }

    /// Serialize the picked buffers under the engine's merge lock (`ExecWalRecord` holds
    /// `flush_merge_compact_mutex_` while it flushes).
    async fn flush_where(&self, pick: impl Fn(&String, Instant) -> bool) -> Result<Vec<String>> {
        let _merge = self.locks.merge.lock().await;
        // `MemTable::Serialize` applies deletes before it writes the buffered vectors.
        self.apply_deletes(&pick).await?;
        let taken: Vec<(String, Pending)> = {
            let mut buf = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<String> = buf
                .iter()
                .filter(|(k, p)| pick(k, p.since))
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| buf.remove(&k).map(|p| (k, p)))
                .collect()
        };
        let flushed: Vec<String> = taken.iter().map(|(k, _)| k.clone()).collect();
        for (table_id, p) in taken {
            let Some(table) = self
                .db
                .tables_by_id(std::slice::from_ref(&table_id))
                .await?
                .into_iter()
                .find(|t| t.state == TableState::Normal)
            else {
                continue;
            };
            debug_assert_eq!(p.dim as i64, table.dimension);
            self.write_segment(&table, &p.data).await?;
        }
        Ok(flushed)
    }

    /// Serialize `data` as a new segment of `table` (`MemTableFile::Serialize`): a NEW row,
    /// the segment folder, then RAW (or TO_INDEX when the engine is not raw and the size
    /// reaches index_file_size).
    pub async fn write_segment(&self, table: &TableRow, data: &RawData) -> Result<FileRow> {
        let mut row = catalog::create_file(&self.db, table, FileType::New).await?;
        row.file_size =
            self.storage
                .write_raw(&table.table_id, &row.segment_id, &row.file_id, data)?;
        row.row_count = data.rows() as i64;
        row.file_type = if !table.engine_type.is_raw() && row.file_size >= table.index_file_size {
            FileType::ToIndex
        } else {
            FileType::Raw
        };
        let mut c = self.db.pool().acquire().await?;
        catalog::finish_file(&mut c, &row, row.file_type, ids::now_micros()).await?;
        tracing::info!(table_id = %row.table_id, file_id = %row.file_id, rows = row.row_count,
            bytes = row.file_size, file_type = %row.file_type, "flush NEW -> {}", row.file_type);
        Ok(row)
    }

    /// `DBImpl::CreateIndex`: blocks until the collection and its partitions are built
    /// (see [`crate::indexing`]).
    pub async fn create_index(
        &self,
        name: &str,
        index_type: &str,
        params: &serde_json::Value,
    ) -> Result<()> {
        indexing::create_index(self, name, index_type, params).await
    }

    /// Drop the index of `name` and its partitions (`DBImpl::DropIndex`).
    pub async fn drop_index(&self, name: &str) -> Result<()> {
        indexing::drop_index(self, name).await
    }
}
