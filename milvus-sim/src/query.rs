//! Reads served to clients: search, row counts, `?info=stat`, segments and segment ids.
//!
//! Search is brute force over the raw vectors of the searchable files (RAW, TO_INDEX, and
//! INDEX through the raw data of its BACKUP in the same segment folder), re-reading the
//! metadata on every request, as `DBImpl::Query` does (source notes §7.2).

use milvus_tier::meta::{FileRow, FileType, MetricType, TableRow};
use serde_json::{Value, json};

use crate::catalog;
use crate::error::{Result, SimError, code};
use crate::index;
use crate::sim::{DEFAULT_TAG, Sim};

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
    /// Tables of `name` selected by `tags` (all when empty; `_default` is the root).
    async fn tables_for_tags(&self, name: &str, tags: &[String]) -> Result<Vec<TableRow>> {
        let all = catalog::collection_tables(&self.db, name).await?;
        if tags.is_empty() {
            return Ok(all);
        }
        let mut out = Vec::new();
        for tag in tags {
            let found = all.iter().find(|t| {
                (tag == DEFAULT_TAG && t.owner_table.is_empty()) || &t.partition_tag == tag
            });
            match found {
                Some(t) => out.push(t.clone()),
                None => {
                    return Err(SimError::api(
                        code::COLLECTION_NOT_EXISTS,
                        format!("Partition {tag} of collection {name} does not exist"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Searchable files of `tables`.
    async fn searchable(&self, tables: &[TableRow]) -> Result<Vec<FileRow>> {
        let ids: Vec<String> = tables.iter().map(|t| t.table_id.clone()).collect();
        Ok(self.db.files(&ids, SEARCHABLE).await?)
    }

    /// Top-`topk` hits per query vector.
    pub async fn search(
        &self,
        name: &str,
        tags: &[String],
        file_ids: &[String],
        topk: i64,
        queries: &[Vec<f32>],
    ) -> Result<Vec<Vec<Hit>>> {
        let root = catalog::live_collection(&self.db, name).await?;
        if !(1..=16384).contains(&topk) {
            return Err(SimError::api(
                code::ILLEGAL_ARGUMENT,
                format!("Invalid topk: {topk}. Should be in range 1 ~ 16384."),
            ));
        }
        let dim = root.dimension as usize;
        if queries.is_empty() {
            return Err(SimError::api(code::ILLEGAL_ARGUMENT, "No query vectors"));
        }
        if let Some(q) = queries.iter().find(|q| q.len() != dim) {
            return Err(SimError::api(
                code::ILLEGAL_DIMENSION,
                format!(
                    "The vector dimension must be equal to the collection dimension: {} != {dim}",
                    q.len()
                ),
            ));
        }
        let tables = self.tables_for_tags(name, tags).await?;
        let mut files = self.searchable(&tables).await?;
        if !file_ids.is_empty() {
            files.retain(|f| file_ids.contains(&f.file_id));
        }
        let ip = root.metric_type == MetricType::Ip;
        let mut best: Vec<Vec<Hit>> = vec![Vec::new(); queries.len()];
        for f in &files {
            let data = match self
                .storage
                .read_raw(&f.table_id, &f.segment_id, &f.segment_id, dim)
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(file_id = %f.file_id, error = %e, "search skips unreadable file");
                    continue;
                }
            };
            for (qi, q) in queries.iter().enumerate() {
                for (row, id) in data.ids.iter().enumerate() {
                    let v = &data.vectors[row * dim..(row + 1) * dim];
                    let d = if ip {
                        q.iter().zip(v).map(|(a, b)| a * b).sum::<f32>()
                    } else {
                        q.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum::<f32>()
                    };
                    best[qi].push(Hit {
                        id: *id,
                        distance: d,
                    });
                }
                let hits = &mut best[qi];
                if ip {
                    hits.sort_by(|a, b| b.distance.total_cmp(&a.distance).then(a.id.cmp(&b.id)));
                } else {
                    hits.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
                }
                hits.truncate(topk as usize);
            }
        }
        Ok(best)
    }

    /// The stored vector of each id (empty when not found), searching the tables of `tag`
    /// (all when `None`), as `GetVectorsByID`.
    pub async fn vectors_by_id(
        &self,
        name: &str,
        tag: Option<&str>,
        ids: &[i64],
    ) -> Result<Vec<Vec<f32>>> {
        let root = catalog::live_collection(&self.db, name).await?;
        let tags: Vec<String> = tag.map(str::to_string).into_iter().collect();
        let tables = self.tables_for_tags(name, &tags).await?;
        let dim = root.dimension as usize;
        let mut out = vec![Vec::new(); ids.len()];
        for f in self.searchable(&tables).await? {
            let Ok(data) = self
                .storage
                .read_raw(&f.table_id, &f.segment_id, &f.segment_id, dim)
            else {
                continue;
            };
            for (row, id) in data.ids.iter().enumerate() {
                for (i, want) in ids.iter().enumerate() {
                    if want == id && out[i].is_empty() {
                        out[i] = data.vectors[row * dim..(row + 1) * dim].to_vec();
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
        let data = self.storage.read_raw(
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
