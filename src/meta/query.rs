//! Reads of `Tables` and `TableFiles`, all with bound parameters.

use sqlx::any::AnyRow;
use sqlx::{Any, QueryBuilder, Row};

use super::MetaDb;
use super::types::{EngineType, FileRow, FileType, MetricType, MilvusDate, TableRow, TableState};
use crate::error::{Error, Result};

/// Column list of `Tables`, as a literal so that queries are `concat!`ed constants.
macro_rules! table_columns {
    () => {
        "id, table_id, state, dimension, created_on, flag, index_file_size, engine_type, \
         index_params, metric_type, owner_table, partition_tag, version, flush_lsn"
    };
}
/// Column list of `TableFiles`, as a literal.
macro_rules! file_columns {
    () => {
        "id, table_id, segment_id, engine_type, file_id, file_type, file_size, row_count, \
         updated_time, created_on, date, flush_lsn"
    };
}
pub(crate) use {file_columns, table_columns};

/// How many values go into one `IN (…)` list.
pub(crate) const CHUNK: usize = 500;

impl MetaDb {
    /// The root collection row named `name` (any state), if present.
    pub async fn collection(&self, name: &str) -> Result<Option<TableRow>> {
        const SQL: &str = concat!(
            "SELECT ",
            table_columns!(),
            " FROM Tables WHERE table_id = ? AND owner_table = ''"
        );
        let row = sqlx::query(SQL)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err(format!("read collection {name}")))?;
        row.map(|r| decode_table(&r)).transpose()
    }

    /// Every partition row of collection `owner` (any state), ordered by tag.
    pub async fn partitions(&self, owner: &str) -> Result<Vec<TableRow>> {
        const SQL: &str = concat!(
            "SELECT ",
            table_columns!(),
            " FROM Tables WHERE owner_table = ? ORDER BY partition_tag, id"
        );
        let rows = sqlx::query(SQL)
            .bind(owner)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err(format!("read partitions of {owner}")))?;
        rows.iter().map(decode_table).collect()
    }

    /// Partition rows of collection `owner` carrying exactly `tag` (any state).
    pub async fn partitions_tagged(&self, owner: &str, tag: &str) -> Result<Vec<TableRow>> {
        const SQL: &str = concat!(
            "SELECT ",
            table_columns!(),
            " FROM Tables WHERE owner_table = ? AND partition_tag = ? ORDER BY id"
        );
        let rows = sqlx::query(SQL)
            .bind(owner)
            .bind(tag)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err(format!("read partition {tag} of {owner}")))?;
        rows.iter().map(decode_table).collect()
    }

    /// `Tables` rows with the given table_ids (any owner, any state).
    pub async fn tables_by_id(&self, table_ids: &[String]) -> Result<Vec<TableRow>> {
        let mut out = Vec::new();
        for chunk in table_ids.chunks(CHUNK) {
            let mut qb: QueryBuilder<Any> = QueryBuilder::new(concat!(
                "SELECT ",
                table_columns!(),
                " FROM Tables WHERE table_id IN ("
            ));
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            qb.push(") ORDER BY table_id");
            let rows = qb
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(self.err("read Tables rows"))?;
            for r in &rows {
                out.push(decode_table(r)?);
            }
        }
        Ok(out)
    }

    /// `TableFiles` rows of the given tables whose file_type is in `types`
    /// (all types if `types` is empty), ordered by table, segment and file.
    pub async fn files(&self, table_ids: &[String], types: &[FileType]) -> Result<Vec<FileRow>> {
        let mut out = Vec::new();
        for chunk in table_ids.chunks(CHUNK) {
            let mut qb: QueryBuilder<Any> = QueryBuilder::new(concat!(
                "SELECT ",
                file_columns!(),
                " FROM TableFiles WHERE table_id IN ("
            ));
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            qb.push(")");
            if !types.is_empty() {
                qb.push(" AND file_type IN (");
                let mut sep = qb.separated(", ");
                for t in types {
                    sep.push_bind(t.code());
                }
                qb.push(")");
            }
            qb.push(" ORDER BY table_id, segment_id, file_id");
            let rows = qb
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(self.err("read TableFiles rows"))?;
            for r in &rows {
                out.push(decode_file(r)?);
            }
        }
        Ok(out)
    }
}

fn get<'r, T>(row: &'r AnyRow, table: &'static str, id: i64, column: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get::<T, _>(column).map_err(|e| Error::BadRow {
        table,
        column,
        row_id: id,
        reason: e.to_string(),
    })
}

/// Decode one `Tables` row selected with `table_columns!()`.
pub(crate) fn decode_table(r: &AnyRow) -> Result<TableRow> {
    const T: &str = "Tables";
    let id: i64 = get(r, T, -1, "id")?;
    Ok(TableRow {
        id,
        table_id: get(r, T, id, "table_id")?,
        state: TableState::decode(T, id, get(r, T, id, "state")?)?,
        dimension: get(r, T, id, "dimension")?,
        created_on: get(r, T, id, "created_on")?,
        flag: get(r, T, id, "flag")?,
        index_file_size: get(r, T, id, "index_file_size")?,
        engine_type: EngineType::decode(T, id, get(r, T, id, "engine_type")?)?,
        index_params: get(r, T, id, "index_params")?,
        metric_type: MetricType::decode(T, id, get(r, T, id, "metric_type")?)?,
        owner_table: get(r, T, id, "owner_table")?,
        partition_tag: get(r, T, id, "partition_tag")?,
        version: get(r, T, id, "version")?,
        flush_lsn: get(r, T, id, "flush_lsn")?,
    })
}

/// Decode one `TableFiles` row selected with `file_columns!()`.
pub(crate) fn decode_file(r: &AnyRow) -> Result<FileRow> {
    const T: &str = "TableFiles";
    let id: i64 = get(r, T, -1, "id")?;
    let date: i64 = get(r, T, id, "date")?;
    Ok(FileRow {
        id,
        table_id: get(r, T, id, "table_id")?,
        segment_id: get(r, T, id, "segment_id")?,
        engine_type: EngineType::decode(T, id, get(r, T, id, "engine_type")?)?,
        file_id: get(r, T, id, "file_id")?,
        file_type: FileType::decode(T, id, get(r, T, id, "file_type")?)?,
        file_size: get(r, T, id, "file_size")?,
        row_count: get(r, T, id, "row_count")?,
        updated_time: get(r, T, id, "updated_time")?,
        created_on: get(r, T, id, "created_on")?,
        date: MilvusDate(i32::try_from(date).map_err(|e| Error::BadRow {
            table: T,
            column: "date",
            row_id: id,
            reason: e.to_string(),
        })?),
        flush_lsn: get(r, T, id, "flush_lsn")?,
    })
}
