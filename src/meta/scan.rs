//! Narrow reads of `TableFiles` across a whole database, for the checks that look at every
//! segment or every busy file rather than one collection's rows.

use sqlx::{Any, Row, Transaction};

use super::MetaDb;
use super::types::{FileType, TableState};
use crate::error::{Error, Result};

/// One `TableFiles` row, reduced to where it lives and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// `TableFiles.id`.
    pub id: i64,
    /// Owning table (a collection or a partition).
    pub table_id: String,
    /// Segment folder.
    pub segment_id: String,
    /// `TableFiles.file_id`.
    pub file_id: String,
    /// Its type (`None`: a code this version does not know).
    pub file_type: Option<FileType>,
    /// `updated_time`, microseconds.
    pub updated_time: i64,
}

/// A partition with one of its files (`None` for a partition with no file rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionFile {
    /// Partition table_id.
    pub table_id: String,
    /// Its tag.
    pub tag: String,
    /// Its state.
    pub state: TableState,
    /// The file's type, rows and size.
    pub file: Option<(FileType, i64, i64)>,
}

impl MetaDb {
    /// Up to `limit` rows of types `types` outside collection `ours` and its partitions,
    /// ordered by table and file.
    pub async fn files_outside(
        &self,
        ours: &str,
        types: &[FileType],
        limit: usize,
    ) -> Result<Vec<FileRef>> {
        let mut qb = sqlx::QueryBuilder::<Any>::new(
            "SELECT id, table_id, segment_id, file_id, file_type, updated_time FROM TableFiles \
             WHERE file_type IN (",
        );
        let mut sep = qb.separated(", ");
        for t in types {
            sep.push_bind(t.code());
        }
        qb.push(") AND table_id <> ");
        qb.push_bind(ours.to_string());
        qb.push(" AND table_id NOT IN (SELECT table_id FROM Tables WHERE owner_table = ");
        qb.push_bind(ours.to_string());
        qb.push(") ORDER BY table_id, file_id");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("read busy TableFiles rows"))?;
        rows.iter()
            .take(limit)
            .map(|r| self.decode_ref(r))
            .collect()
    }

    /// Every `TableFiles` row of the database (narrow: no sizes or rows).
    pub async fn all_file_refs(&self) -> Result<Vec<FileRef>> {
        let rows = sqlx::query(
            "SELECT id, table_id, segment_id, file_id, file_type, updated_time FROM TableFiles",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("read TableFiles segments"))?;
        rows.iter().map(|r| self.decode_ref(r)).collect()
    }

    /// In `tx`: the rows of segment `table/segment`, ordered by id.
    pub async fn segment_refs_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        table: &str,
        segment: &str,
    ) -> Result<Vec<FileRef>> {
        let rows = sqlx::query(
            "SELECT id, table_id, segment_id, file_id, file_type, updated_time FROM TableFiles \
             WHERE table_id = ? AND segment_id = ? ORDER BY id",
        )
        .bind(table)
        .bind(segment)
        .fetch_all(&mut **tx)
        .await
        .map_err(self.err(format!("read TableFiles rows of {table}/{segment}")))?;
        rows.iter().map(|r| self.decode_ref(r)).collect()
    }

    /// The partitions of `collection` tagged with one of `tags`, each joined with its file
    /// rows; one statement.
    pub async fn partition_files_tagged(
        &self,
        collection: &str,
        tags: &[&String],
    ) -> Result<Vec<PartitionFile>> {
        let mut qb = sqlx::QueryBuilder::<Any>::new(
            "SELECT t.table_id, t.partition_tag, t.state, f.file_type, f.row_count, f.file_size \
             FROM Tables t LEFT JOIN TableFiles f ON f.table_id = t.table_id \
             WHERE t.owner_table = ",
        );
        qb.push_bind(collection.to_string());
        qb.push(" AND t.partition_tag IN (");
        let mut sep = qb.separated(", ");
        for t in tags {
            sep.push_bind((*t).clone());
        }
        qb.push(")");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(self.err(format!("read the partitions of {collection}")))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let dec = || self.err(format!("decode the partitions of {collection}"));
            let table_id: String = r.try_get(0).map_err(dec())?;
            let tag: String = r.try_get(1).map_err(dec())?;
            let state: i64 = r.try_get(2).map_err(dec())?;
            let file_type: Option<i64> = r.try_get(3).map_err(dec())?;
            let row_count: Option<i64> = r.try_get(4).map_err(dec())?;
            let size: Option<i64> = r.try_get(5).map_err(dec())?;
            let state = TableState::decode("Tables", -1, state)?;
            let file = match file_type {
                None => None,
                Some(ft) => {
                    let ft = FileType::decode("TableFiles", -1, ft).map_err(|e| match e {
                        Error::UnknownEnum { value, .. } => Error::BadInput(format!(
                            "partition {table_id} ({tag}) of {collection}: unknown file_type {value}"
                        )),
                        other => other,
                    })?;
                    Some((ft, row_count.unwrap_or(0), size.unwrap_or(0)))
                }
            };
            out.push(PartitionFile {
                table_id,
                tag,
                state,
                file,
            });
        }
        Ok(out)
    }

    fn decode_ref(&self, r: &sqlx::any::AnyRow) -> Result<FileRef> {
        let dec = || self.err("decode TableFiles");
        let id: i64 = r.try_get(0).map_err(dec())?;
        let t: i64 = r.try_get(4).map_err(dec())?;
        Ok(FileRef {
            id,
            table_id: r.try_get(1).map_err(dec())?,
            segment_id: r.try_get(2).map_err(dec())?,
            file_id: r.try_get(3).map_err(dec())?,
            file_type: FileType::decode("TableFiles", id, t).ok(),
            updated_time: r.try_get(5).map_err(dec())?,
        })
    }
}
