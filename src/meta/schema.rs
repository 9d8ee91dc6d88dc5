//! The Milvus 1.1.1 metadata schema: the DDL in `sql/milvus/`, a check that a database
//! holds it, and milvus-tier's own tables (`sql/migrations/`).

use sqlx::Row;

use super::{Backend, MetaDb};
use crate::error::{Error, Result};

/// Milvus's MySQL DDL (`sql/milvus/mysql.sql`).
pub const MYSQL_DDL: &str = include_str!("../../sql/milvus/mysql.sql");
/// Milvus's SQLite DDL (`sql/milvus/sqlite.sql`).
pub const SQLITE_DDL: &str = include_str!("../../sql/milvus/sqlite.sql");

/// One Milvus column: name, MySQL type, SQLite declared type.
pub type Column = (&'static str, &'static str, &'static str);

/// Milvus's metadata tables and their columns, in creation order.
pub const MILVUS_TABLES: &[(&str, &[Column])] = &[
    (
        "Tables",
        &[
            ("id", "BIGINT", "INTEGER"),
            ("table_id", "VARCHAR", "TEXT"),
            ("state", "INT", "INTEGER"),
            ("dimension", "SMALLINT", "INTEGER"),
            ("created_on", "BIGINT", "INTEGER"),
            ("flag", "BIGINT", "INTEGER"),
            ("index_file_size", "BIGINT", "INTEGER"),
            ("engine_type", "INT", "INTEGER"),
            ("index_params", "VARCHAR", "TEXT"),
            ("metric_type", "INT", "INTEGER"),
            ("owner_table", "VARCHAR", "TEXT"),
            ("partition_tag", "VARCHAR", "TEXT"),
            ("version", "VARCHAR", "TEXT"),
            ("flush_lsn", "BIGINT", "INTEGER"),
        ],
    ),
    (
        "TableFiles",
        &[
            ("id", "BIGINT", "INTEGER"),
            ("table_id", "VARCHAR", "TEXT"),
            ("segment_id", "VARCHAR", "TEXT"),
            ("engine_type", "INT", "INTEGER"),
            ("file_id", "VARCHAR", "TEXT"),
            ("file_type", "INT", "INTEGER"),
            ("file_size", "BIGINT", "INTEGER"),
            ("row_count", "BIGINT", "INTEGER"),
            ("updated_time", "BIGINT", "INTEGER"),
            ("created_on", "BIGINT", "INTEGER"),
            ("date", "INT", "INTEGER"),
            ("flush_lsn", "BIGINT", "INTEGER"),
        ],
    ),
    ("Environment", &[("global_lsn", "BIGINT", "INTEGER")]),
    (
        "Fields",
        &[
            ("collection_id", "VARCHAR", "TEXT"),
            ("field_name", "VARCHAR", "TEXT"),
            ("field_type", "INT", "INTEGER"),
            ("field_params", "VARCHAR", "TEXT"),
        ],
    ),
];

static MYSQL_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("sql/migrations/mysql");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("sql/migrations/sqlite");

impl MetaDb {
    /// The columns a table has as (name, type), in order (empty if the table does not exist).
    /// MySQL types are `DATA_TYPE` (`bigint`), SQLite types the declared type (`INTEGER`).
    pub async fn columns(&self, table: &str) -> Result<Vec<(String, String)>> {
        let sql = match self.backend {
            Backend::MySql => {
                "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
            }
            Backend::Sqlite => "SELECT name, type FROM pragma_table_info(?) ORDER BY cid",
        };
        let rows = sqlx::query(sql)
            .bind(table)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err(format!("list columns of {table}")))?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect::<std::result::Result<_, _>>()
            .map_err(self.err(format!("list columns of {table}")))
    }

    /// Check that every Milvus table exists with Milvus 1.1.1's columns and types, as Milvus's
    /// own `ValidateMetaSchema` does (extra columns are tolerated, as Milvus tolerates them).
    /// Returns one error naming the first table and column at fault.
    pub async fn check_schema(&self) -> Result<()> {
        for (table, expected) in MILVUS_TABLES {
            let have = self.columns(table).await?;
            if have.is_empty() {
                return Err(self.schema_err(format!(
                    "table {table} is missing (not a Milvus 1.1.1 metadata database?)"
                )));
            }
            for (col, mysql_type, sqlite_type) in *expected {
                let want = match self.backend {
                    Backend::MySql => mysql_type,
                    Backend::Sqlite => sqlite_type,
                };
                match have.iter().find(|(c, _)| c.eq_ignore_ascii_case(col)) {
                    None => {
                        return Err(
                            self.schema_err(format!("table {table} lacks Milvus column `{col}`"))
                        );
                    }
                    Some((_, ty)) if !ty.eq_ignore_ascii_case(want) => {
                        return Err(self.schema_err(format!(
                            "table {table} column `{col}` has type {ty}, Milvus 1.1.1 creates {want}"
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    fn schema_err(&self, problem: String) -> Error {
        Error::Schema {
            target: self.target.clone(),
            problem,
        }
    }

    /// Create Milvus's tables if absent, exactly as Milvus 1.1.1 does (used for the local
    /// engine, empty long-term clusters and tests).
    pub async fn install_milvus_schema(&self) -> Result<()> {
        let ddl = match self.backend {
            Backend::MySql => MYSQL_DDL,
            Backend::Sqlite => SQLITE_DDL,
        };
        for stmt in statements(ddl) {
            sqlx::query(&stmt)
                .execute(&self.pool)
                .await
                .map_err(self.err("create Milvus tables"))?;
        }
        Ok(())
    }

    /// Create or upgrade milvus-tier's own tables (journal, lock).
    pub async fn migrate_journal(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::MySql => &MYSQL_MIGRATIONS,
            Backend::Sqlite => &SQLITE_MIGRATIONS,
        };
        // Two runs starting at once may race on the first migration; the loser's retry finds
        // it applied.
        let policy = crate::retry::Policy::new(
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(1),
            4,
        );
        policy
            .run("journal migration", |_| async move {
                migrator
                    .run(&self.pool)
                    .await
                    .map_err(|e| Error::meta(&self.target, "migrate milvus-tier tables", e.into()))
            })
            .await
    }
}

/// Split a DDL file into statements (comments dropped).
pub fn statements(ddl: &str) -> Vec<String> {
    let body: String = ddl
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    body.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
