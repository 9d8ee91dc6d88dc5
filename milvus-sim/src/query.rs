//! Reads served to clients: search, row counts, `?info=stat`, segments and segment ids.
//!
//! Search is brute force over the raw vectors of the searchable files (RAW, TO_INDEX, and
//! INDEX through the raw data of its BACKUP in the same segment folder), re-reading the
//! metadata on every request, as `DBImpl::Query` does (source notes §7.2).

use milvus_tier::meta::{EngineType, FileRow, FileType, MetricType, TableRow};
use serde_json::{Value, json};

use crate::catalog;
use crate::error::{Result, SimError, code};
use crate::index;
use crate::metric;
use crate::sim::{DEFAULT_TAG, Sim};
use crate::storage::RawData;
use crate::validate;

/// `MAX_COUNT_RETURNED`: ids one get-by-id may ask for.
const MAX_COUNT_RETURNED: usize = 1000;

/// File types a search reads and counts.
pub const SEARCHABLE: &[FileType] = &[FileType::Raw, FileType::ToIndex, FileType::Index];

/// One hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Vector id.
    pub id: i64,
    /// Squared L2 distance or inner product.
    pub distance: f32,
}

impl Sim {
    /// Tables of `name` selected by `tags` (all when empty), as `GetPartitionsByTags`: each
    /// tag is trimmed, `_default` is the root, any other tag is a regular expression that a
    /// partition tag must match whole; nothing selected is an error.
    async fn tables_for_tags(&self, name: &str, tags: &[String]) -> Result<Vec<TableRow>> {
        let all = catalog::collection_tables(&self.db, name).await?;
        if tags.is_empty() {
            return Ok(all);
        }
        let mut out: Vec<TableRow> = Vec::new();
        for tag in tags {
            let tag = tag.trim();
            for t in &all {
                let hit = if t.owner_table.is_empty() {
                    tag == DEFAULT_TAG
                } else {
                    tag != DEFAULT_TAG && validate::tag_matches(&t.partition_tag, tag)?
                };
                if hit && !out.iter().any(|o| o.table_id == t.table_id) {
                    out.push(t.clone());
                }
            }
        }
        if out.is_empty() {
            return Err(SimError::api(
                code::COLLECTION_NOT_EXISTS,
                format!(
                    "The specified partition does not exist: {}",
                    tags.join(", ")
                ),
            ));
        }
        Ok(out)
    }

    /// Searchable files of `tables`.
    async fn searchable(&self, tables: &[TableRow]) -> Result<Vec<FileRow>> {
        let ids: Vec<String> = tables.iter().map(|t| t.table_id.clone()).collect();
        Ok(self.db.files(&ids, SEARCHABLE).await?)
    }

    /// Load the live rows of a file for a search, as `ExecutionEngineImpl::Load` needs them:
    /// an INDEX row needs its index file, every row the segment's `.uid` and `deleted_docs`.
    /// A file that stopped being searchable meanwhile (merged, indexed, dropped) is skipped.
    async fn load_for_search(&self, f: &FileRow, dim: usize) -> Result<Option<RawData>> {
        let loaded = (|| {
            if f.file_type == FileType::Index {
                let p = self
                    .storage
                    .index_path(&f.table_id, &f.segment_id, &f.file_id);
                if !p.is_file() {
                    return Err(SimError::api(
                        code::UNEXPECTED,
                        format!("Failed to load index file {}: not found", p.display()),
                    ));
                }
            }
            self.storage
                .read_live(&f.table_id, &f.segment_id, &f.segment_id, dim)
        })();
        match loaded {
            Ok(d) => Ok(Some(d)),
            Err(e) => {
                let still = self
                    .db
                    .files(std::slice::from_ref(&f.table_id), SEARCHABLE)
                    .await?
                    .iter()
                    .any(|x| x.file_id == f.file_id);
                if still {
                    tracing::warn!(file_id = %f.file_id, error = %e, "search cannot load a file");
                    Err(e)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Top-`topk` hits per query vector (`SearchRequest::OnExecute`); `None` when there was
    /// no file to search (Milvus answers `num 0` then).
    pub async fn search(
        &self,
        name: &str,
        tags: &[String],
        file_ids: &[String],
        topk: i64,
        params: &Value,
        rows: &[Vec<f64>],
    ) -> Result<Option<Vec<Vec<Hit>>>> {
        crate::sim::check_name("collection", name)?;
        validate::topk(topk)?;
        validate::result_size(rows.len(), topk)?;
        for t in tags {
            validate::partition_tag(t)?;
        }
        let root = catalog::live_collection(&self.db, name).await?;
        if !root.owner_table.is_empty() {
            return Err(SimError::no_collection(name));
        }
        validate::search_params(root.engine_type, params, topk)?;
        let queries = validate::vectors(rows, root.dimension, root.metric_type, false)?;
        let files = if file_ids.is_empty() {
            let tables = self.tables_for_tags(name, tags).await?;
            self.searchable(&tables).await?
        } else {
            let tables = catalog::collection_tables(&self.db, name).await?;
            let found: Vec<FileRow> = self
                .searchable(&tables)
                .await?
                .into_iter()
                .filter(|f| file_ids.contains(&f.file_id))
                .collect();
            if found.is_empty() {
                return Err(SimError::api(code::UNEXPECTED, "Invalid file id"));
            }
            found
        };
        if files.is_empty() {
            return Ok(None);
        }
        let dim = root.dimension as usize;
        let asked = asked_metric(params)?;
        let mut best: Vec<Vec<Hit>> = vec![Vec::new(); queries.len()];
        for f in &files {
            let m = file_metric(root.metric_type, f, asked)?;
            let Some(data) = self.load_for_search(f, dim).await? else {
                continue;
            };
            for (qi, q) in queries.iter().enumerate() {
                let hits = &mut best[qi];
                for (row, id) in data.ids.iter().enumerate() {
                    if let Some(distance) = metric::distance(m, q, &data, row) {
                        hits.push(Hit { id: *id, distance });
                    }
                }
                if metric::larger_first(m) {
                    hits.sort_by(|a, b| b.distance.total_cmp(&a.distance).then(a.id.cmp(&b.id)));
                } else {
                    hits.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
                }
                hits.truncate(topk as usize);
            }
        }
        Ok(Some(best))
    }

    /// The stored vector of each id (empty when not found), searching the tables of `tag`
    /// (all when `None`), as `GetVectorsByID`.
    pub async fn vectors_by_id(
        &self,
        name: &str,
        tag: Option<&str>,
        ids: &[i64],
    ) -> Result<Vec<Value>> {
        if ids.is_empty() {
            return Err(SimError::api(
                code::ILLEGAL_ARGUMENT,
                "No vector id specified",
            ));
        }
        if ids.len() > MAX_COUNT_RETURNED {
            return Err(SimError::api(
                code::ILLEGAL_ARGUMENT,
                format!("Input id array size cannot exceed: {MAX_COUNT_RETURNED}"),
            ));
        }
        let root = catalog::live_collection(&self.db, name).await?;
        if !root.owner_table.is_empty() {
            return Err(SimError::no_collection(name));
        }
        let tags: Vec<String> = tag
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .into_iter()
            .collect();
        let tables = self.tables_for_tags(name, &tags).await?;
        let table_ids: Vec<String> = tables.iter().map(|t| t.table_id.clone()).collect();
        let holding = self
            .db
            .files(
                &table_ids,
                &[FileType::Raw, FileType::ToIndex, FileType::Backup],
            )
            .await?;
        if holding.is_empty() {
            return Err(SimError::api(
                code::COLLECTION_NOT_EXISTS,
                "Collection or partition is empty",
            ));
        }
        let dim = root.dimension as usize;
        let mut out = vec![json!([]); ids.len()];
        for f in self.searchable(&tables).await? {
            let Some(data) = self.load_for_search(&f, dim).await? else {
                continue;
            };
            let n = data.rows().max(1);
            let (fw, bw) = (data.vectors.len() / n, data.bits.len() / n);
            for (row, id) in data.ids.iter().enumerate() {
                for (i, want) in ids.iter().enumerate() {
                    if want == id && out[i].as_array().is_some_and(Vec::is_empty) {
                        out[i] = if bw > 0 {
                            json!(data.bits[row * bw..(row + 1) * bw])
                        } else {
                            json!(data.vectors[row * fw..(row + 1) * fw])
                        };
                    }
                }
            }
        }
        Ok(out)
    }

    /// Rows in searchable files of `name` and its partitions (`GetCollectionRowCount`).
    pub async fn count(&self, name: &str) -> Result<i64> {
        let tables = catalog::collection_tables(&self.db, name).await?;
        Ok(self
            .searchable(&tables)
            .await?
            .iter()
            .map(|f| f.row_count)
            .sum())
    }

    /// `GET /collections/{name}` body.
    pub async fn describe(&self, name: &str) -> Result<Value> {
        let root = catalog::live_collection(&self.db, name).await?;
        Ok(describe_json(&root, self.count(name).await?))
    }

    /// Segment entries (partition tag, file) of `name`, root first, as `GetCollectionInfo`.
    async fn segments_of(&self, name: &str) -> Result<Vec<(String, FileRow)>> {
        let tables = catalog::collection_tables(&self.db, name).await?;
        let mut out = Vec::new();
        for t in &tables {
            let tag = if t.owner_table.is_empty() {
                DEFAULT_TAG.to_string()
            } else {
                t.partition_tag.clone()
            };
            for f in self.searchable(std::slice::from_ref(t)).await? {
                out.push((tag.clone(), f));
            }
        }
        Ok(out)
    }

    /// `GET /collections/{name}?info=stat` body.
    pub async fn stat(&self, name: &str) -> Result<Value> {
        let tables = catalog::collection_tables(&self.db, name).await?;
        let mut partitions = Vec::new();
        let mut total = 0;
        for t in &tables {
            let files = self.searchable(std::slice::from_ref(t)).await?;
            let rows: i64 = files.iter().map(|f| f.row_count).sum();
            total += rows;
            let segments: Vec<Value> = files.iter().map(segment_json).collect();
            let tag = if t.owner_table.is_empty() {
                DEFAULT_TAG
            } else {
                &t.partition_tag
            };
            partitions.push(json!({"tag": tag, "row_count": rows, "segments": segments}));
        }
        Ok(json!({"row_count": total, "partitions": partitions}))
    }

    /// `GET /collections/{name}/segments` entries.
    pub async fn segments(&self, name: &str) -> Result<Vec<Value>> {
        Ok(self
            .segments_of(name)
            .await?
            .iter()
            .map(|(tag, f)| {
                let mut v = segment_json(f);
                v["partition_tag"] = json!(tag);
                v
            })
            .collect())
    }

    /// Vector ids stored in segment `segment` of `name`.
    pub async fn segment_ids(&self, name: &str, segment: &str) -> Result<Vec<i64>> {
        let root = catalog::live_collection(&self.db, name).await?;
        let seg = self
            .segments_of(name)
            .await?
            .into_iter()
            .map(|(_, f)| f)
            .find(|f| f.segment_id == segment)
            .ok_or_else(|| {
                SimError::api(
                    code::ILLEGAL_ARGUMENT,
                    format!("Segment {segment} of collection {name} does not exist"),
                )
            })?;
        // `GetVectorIDs` leaves out the offsets listed in deleted_docs.
        let data = self.storage.read_live(
            &seg.table_id,
            &seg.segment_id,
            &seg.segment_id,
            root.dimension as usize,
        )?;
        Ok(data.ids)
    }
}

/// One segment in `?info=stat` and `/segments`.
fn segment_json(f: &FileRow) -> Value {
    let index_name = if f.segment_id == f.file_id {
        "IDMAP"
    } else {
        index::stat_name(f.engine_type)
    };
    json!({"name": f.segment_id, "row_count": f.row_count, "index_name": index_name,
           "data_size": f.file_size})
}

/// The `metric_type` a search asks for in its params (an integer `MetricType`), if any.
fn asked_metric(params: &Value) -> Result<Option<i64>> {
    match params.get("metric_type") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(illegal_metric),
    }
}

fn illegal_metric() -> SimError {
    SimError::api(code::ILLEGAL_ARGUMENT, "Illegal metric type")
}

/// The metric file `f` is searched with (`XSearchTask::Execute`): a file searched by IDMAP or
/// BIN_IDMAP (any file but a built index of another type) takes the asked metric, IP or L2
/// for float vectors, a binary metric for binary ones; any other is "Illegal metric type".
fn file_metric(collection: MetricType, f: &FileRow, asked: Option<i64>) -> Result<MetricType> {
    let Some(code) = asked else {
        return Ok(collection);
    };
    let idmap = f.file_type != FileType::Index
        || matches!(f.engine_type, EngineType::Flat | EngineType::BinFlat);
    if !idmap {
        return Ok(collection);
    }
    let m = MetricType::decode("search params", 0, code).map_err(|_| illegal_metric())?;
    if metric::is_binary(m) != metric::is_binary(collection) {
        return Err(illegal_metric());
    }
    Ok(m)
}

/// The describe body of a collection row.
pub fn describe_json(root: &TableRow, count: i64) -> Value {
    json!({
        "collection_name": root.table_id,
        "dimension": root.dimension,
        "index_file_size": root.index_file_size / crate::sim::MB,
        "metric_type": root.metric_type.label(),
        "count": count,
        "index": index::web_name(root.engine_type),
        "index_params": root.index_params,
    })
}
