//! Batched, transactional writes of `Tables` and `TableFiles` rows.
//!
//! Rows are matched across clusters by natural key: `Tables.table_id`, and
//! `(TableFiles.table_id, TableFiles.file_id)`. The auto-increment `id` is local to each
//! database and is never copied (copying it could overwrite an unrelated row).

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{Any, QueryBuilder, Transaction};

use super::query::{CHUNK, decode_file, decode_table, file_columns, table_columns};
use super::types::{FileRow, FileType, TableRow, TableState};
use super::{Backend, MetaDb};
use crate::error::Result;

/// What to do with a row whose key already exists with other values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Insert absent rows; any conflicting row aborts the whole batch (nothing written).
    InsertIfAbsent,
    /// Insert absent rows and overwrite conflicting ones.
    Replace,
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RowOutcome {
    /// The key was absent; the row was inserted.
    Inserted,
    /// The key existed with identical values; nothing written.
    Identical,
    /// The key exists with other values in these columns; not written.
    Conflict {
        /// Columns that differ.
        columns: Vec<&'static str>,
    },
    /// The key existed with other values in these columns; overwritten.
    Replaced {
        /// Columns that differed.
        columns: Vec<&'static str>,
    },
}

/// Per-row outcomes of one batch, in input order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriteReport {
    /// `Tables` rows by table_id.
    pub tables: Vec<(String, RowOutcome)>,
    /// `TableFiles` rows by (table_id, file_id).
    pub files: Vec<((String, String), RowOutcome)>,
    /// Whether the transaction was committed.
    pub committed: bool,
}

impl WriteReport {
    /// Rows that conflicted, described as `Tables:<id>` / `TableFiles:<table>/<file>` with columns.
    pub fn conflicts(&self) -> Vec<String> {
        let t = self.tables.iter().filter_map(|(k, o)| match o {
            RowOutcome::Conflict { columns } => Some(format!(
                "Tables row {k} (differs in {})",
                columns.join(", ")
            )),
            _ => None,
        });
        let f = self.files.iter().filter_map(|((t, f), o)| match o {
            RowOutcome::Conflict { columns } => Some(format!(
                "TableFiles row {t}/{f} (differs in {})",
                columns.join(", ")
            )),
            _ => None,
        });
        t.chain(f).collect()
    }

    /// Count of rows with each outcome: (inserted, identical, conflicting, replaced).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for o in self
            .tables
            .iter()
            .map(|x| &x.1)
            .chain(self.files.iter().map(|x| &x.1))
        {
            match o {
                RowOutcome::Inserted => c.0 += 1,
                RowOutcome::Identical => c.1 += 1,
                RowOutcome::Conflict { .. } => c.2 += 1,
                RowOutcome::Replaced { .. } => c.3 += 1,
            }
        }
        c
    }
}

impl MetaDb {
    /// Write `tables` then `files` in one transaction and report per row. With
    /// [`WriteMode::InsertIfAbsent`], any conflict rolls everything back (`committed == false`).
    pub async fn write_rows(
        &self,
        tables: &[TableRow],
        files: &[FileRow],
        mode: WriteMode,
    ) -> Result<WriteReport> {
        let mut tx = self
            .begin_write()
            .await
            .map_err(self.err("begin transaction"))?;
        let report = self.write_rows_in(&mut tx, tables, files, mode).await?;
        if report.committed {
            tx.commit().await.map_err(self.err("commit rows"))?;
        } else {
            tx.rollback().await.map_err(self.err("roll back rows"))?;
        }
        Ok(report)
    }

    /// As [`MetaDb::write_rows`] inside a caller's transaction; `committed` in the report
    /// says whether the caller should commit.
    pub async fn write_rows_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        tables: &[TableRow],
        files: &[FileRow],
        mode: WriteMode,
    ) -> Result<WriteReport> {
        let lock = match self.backend {
            Backend::MySql => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        // Existing Tables rows by table_id.
        let ids: Vec<String> = tables.iter().map(|t| t.table_id.clone()).collect();
        let mut existing_tables: HashMap<String, TableRow> = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let mut qb: QueryBuilder<Any> = QueryBuilder::new(concat!(
                "SELECT ",
                table_columns!(),
                " FROM Tables WHERE table_id IN ("
            ));
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            qb.push(")").push(lock);
            let rows = qb
                .build()
                .fetch_all(&mut **tx)
                .await
                .map_err(self.err("read Tables rows"))?;
            for r in &rows {
                let t = decode_table(r)?;
                existing_tables.insert(t.table_id.clone(), t);
            }
        }
        // Existing TableFiles rows by (table_id, file_id).
        let mut file_tables: Vec<String> = files.iter().map(|f| f.table_id.clone()).collect();
        file_tables.sort();
        file_tables.dedup();
        let mut existing_files: HashMap<(String, String), FileRow> = HashMap::new();
        for chunk in file_tables.chunks(CHUNK) {
            let mut qb: QueryBuilder<Any> = QueryBuilder::new(concat!(
                "SELECT ",
                file_columns!(),
                " FROM TableFiles WHERE table_id IN ("
            ));
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            qb.push(")").push(lock);
            let rows = qb
                .build()
                .fetch_all(&mut **tx)
                .await
                .map_err(self.err("read TableFiles rows"))?;
            for r in &rows {
                let f = decode_file(r)?;
                existing_files.insert((f.table_id.clone(), f.file_id.clone()), f);
            }
        }

        let mut report = WriteReport::default();
        let mut new_tables = Vec::new();
        let mut replace_tables = Vec::new();
        for t in tables {
            let outcome = match existing_tables.get(&t.table_id) {
                None => {
                    new_tables.push(t);
                    RowOutcome::Inserted
                }
                Some(old) if old.same_content(t) => RowOutcome::Identical,
                Some(old) => {
                    let columns = old.differing_columns(t);
                    match mode {
                        WriteMode::InsertIfAbsent => RowOutcome::Conflict { columns },
                        WriteMode::Replace => {
                            replace_tables.push(t);
                            RowOutcome::Replaced { columns }
                        }
                    }
                }
            };
            report.tables.push((t.table_id.clone(), outcome));
        }
        let mut new_files = Vec::new();
        let mut replace_files = Vec::new();
        for f in files {
            let key = (f.table_id.clone(), f.file_id.clone());
            let outcome = match existing_files.get(&key) {
                None => {
                    new_files.push(f);
                    RowOutcome::Inserted
                }
                Some(old) if old.same_content(f) => RowOutcome::Identical,
                Some(old) => {
                    let columns = old.differing_columns(f);
                    match mode {
                        WriteMode::InsertIfAbsent => RowOutcome::Conflict { columns },
                        WriteMode::Replace => {
                            replace_files.push(f);
                            RowOutcome::Replaced { columns }
                        }
                    }
                }
            };
            // A key given twice in one batch must not be inserted twice.
            existing_files
                .entry(key.clone())
                .or_insert_with(|| f.clone());
            report.files.push((key, outcome));
        }
        if mode == WriteMode::InsertIfAbsent && report.counts().2 > 0 {
            report.committed = false;
            return Ok(report);
        }

        for chunk in new_tables.chunks(CHUNK / 4) {
            let mut qb: QueryBuilder<Any> = QueryBuilder::new(
                "INSERT INTO Tables (table_id, state, dimension, created_on, flag, index_file_size, engine_type, \
                 index_params, metric_type, owner_table, partition_tag, version, flush_lsn) ",
            );
            qb.push_values(chunk, |mut b, t| {
                b.push_bind(t.table_id.clone())
                    .push_bind(t.state.code())
                    .push_bind(t.dimension)
                    .push_bind(t.created_on)
                    .push_bind(t.flag)
                    .push_bind(t.index_file_size)
                    .push_bind(t.engine_type.code())
                    .push_bind(t.index_params.clone())
                    .push_bind(t.metric_type.code())
                    .push_bind(t.owner_table.clone())
                    .push_bind(t.partition_tag.clone())
                    .push_bind(t.version.clone())
                    .push_bind(t.flush_lsn);
            });
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(self.err("insert Tables rows"))?;
        }
        for t in replace_tables {
            sqlx::query(
                "UPDATE Tables SET state = ?, dimension = ?, created_on = ?, flag = ?, index_file_size = ?, \
                 engine_type = ?, index_params = ?, metric_type = ?, owner_table = ?, partition_tag = ?, \
                 version = ?, flush_lsn = ? WHERE table_id = ?",
            )
            .bind(t.state.code())
            .bind(t.dimension)
            .bind(t.created_on)
            .bind(t.flag)
            .bind(t.index_file_size)
            .bind(t.engine_type.code())
            .bind(t.index_params.clone())
            .bind(t.metric_type.code())
            .bind(t.owner_table.clone())
            .bind(t.partition_tag.clone())
            .bind(t.version.clone())
            .bind(t.flush_lsn)
            .bind(t.table_id.clone())
            .execute(&mut **tx)
            .await
            .map_err(self.err(format!("replace Tables row {}", t.table_id)))?;
        }
        for chunk in new_files.chunks(CHUNK / 4) {
            let mut qb: QueryBuilder<Any> = QueryBuilder::new(
                "INSERT INTO TableFiles (table_id, segment_id, engine_type, file_id, file_type, file_size, \
                 row_count, updated_time, created_on, date, flush_lsn) ",
            );
            qb.push_values(chunk, |mut b, f| {
                b.push_bind(f.table_id.clone())
                    .push_bind(f.segment_id.clone())
                    .push_bind(f.engine_type.code())
                    .push_bind(f.file_id.clone())
                    .push_bind(f.file_type.code())
                    .push_bind(f.file_size)
                    .push_bind(f.row_count)
                    .push_bind(f.updated_time)
                    .push_bind(f.created_on)
                    .push_bind(f.date.0)
                    .push_bind(f.flush_lsn);
            });
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(self.err("insert TableFiles rows"))?;
        }
        for f in replace_files {
            sqlx::query(
                "UPDATE TableFiles SET segment_id = ?, engine_type = ?, file_type = ?, file_size = ?, \
                 row_count = ?, updated_time = ?, created_on = ?, date = ?, flush_lsn = ? \
                 WHERE table_id = ? AND file_id = ?",
            )
            .bind(f.segment_id.clone())
            .bind(f.engine_type.code())
            .bind(f.file_type.code())
            .bind(f.file_size)
            .bind(f.row_count)
            .bind(f.updated_time)
            .bind(f.created_on)
            .bind(f.date.0)
            .bind(f.flush_lsn)
            .bind(f.table_id.clone())
            .bind(f.file_id.clone())
            .execute(&mut **tx)
            .await
            .map_err(self.err(format!("replace TableFiles row {}/{}", f.table_id, f.file_id)))?;
        }
        report.committed = true;
        Ok(report)
    }

    /// Inside `tx` (rows locked on MySQL): the long-term rows of the days of `tables` (same
    /// owner and partition tag) that are not exactly this batch's keys: another build's
    /// partition or files of the same day. Publishing next to them would make the day's
    /// vectors searchable twice.
    pub async fn foreign_rows_of_day_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        tables: &[TableRow],
        files: &[FileRow],
    ) -> Result<Vec<String>> {
        let lock = match self.backend {
            Backend::MySql => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let ours: std::collections::BTreeSet<&str> =
            tables.iter().map(|t| t.table_id.as_str()).collect();
        let our_files: std::collections::BTreeSet<(&str, &str)> = files
            .iter()
            .map(|f| (f.table_id.as_str(), f.file_id.as_str()))
            .collect();
        let mut days: Vec<(&str, &str)> = tables
            .iter()
            .filter(|t| !t.owner_table.is_empty())
            .map(|t| (t.owner_table.as_str(), t.partition_tag.as_str()))
            .collect();
        days.sort();
        days.dedup();
        let mut foreign = Vec::new();
        for (owner, tag) in days {
            let sql = format!(
                concat!(
                    "SELECT ",
                    table_columns!(),
                    " FROM Tables WHERE owner_table = ? AND partition_tag = ?{}"
                ),
                lock
            );
            let rows = sqlx::query(&sql)
                .bind(owner)
                .bind(tag)
                .fetch_all(&mut **tx)
                .await
                .map_err(self.err(format!("read partition {tag} of {owner}")))?;
            for r in &rows {
                let t = decode_table(r)?;
                if t.state == TableState::Normal && !ours.contains(t.table_id.as_str()) {
                    foreign.push(format!("partition {} (tag {tag} of `{owner}`)", t.table_id));
                }
            }
        }
        let ids: Vec<String> = ours.iter().map(|s| s.to_string()).collect();
        for chunk in ids.chunks(CHUNK) {
            let mut qb: QueryBuilder<Any> = QueryBuilder::new(concat!(
                "SELECT ",
                file_columns!(),
                " FROM TableFiles WHERE table_id IN ("
            ));
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            qb.push(")").push(lock);
            let rows = qb
                .build()
                .fetch_all(&mut **tx)
                .await
                .map_err(self.err("read TableFiles rows of the day"))?;
            for r in &rows {
                let f = decode_file(r)?;
                if f.file_type != FileType::ToDelete
                    && !our_files.contains(&(f.table_id.as_str(), f.file_id.as_str()))
                {
                    foreign.push(format!(
                        "TableFiles row {}/{} ({})",
                        f.table_id, f.file_id, f.file_type
                    ));
                }
            }
        }
        Ok(foreign)
    }
}
