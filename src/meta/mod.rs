//! Milvus 1.1.1 metadata (`Tables`, `TableFiles`) on MySQL/MariaDB or SQLite.
//!
//! One code path for both back ends through sqlx's `Any` driver; every value is bound,
//! no SQL text is built from values. Milvus's own tables are only read and written row
//! by row, never altered (Milvus refuses to start if their columns differ).

mod digest;
mod query;
mod remove;
mod scan;
pub mod schema;
mod summary;
mod types;
mod write;

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};

pub use digest::{
    ROWS_DIGEST_PREFIX, RowsDigestCheck, RowsDigestVersion, Value as DigestValue,
    check_rows_digest, encode_row, file_columns, rows_digest, table_columns,
};
pub use scan::{FileRef, PartitionFile};
pub use summary::{DaySummary, PartitionSummary, Totals, TypeTotals};
pub use types::{EngineType, FileRow, FileType, MetricType, MilvusDate, TableRow, TableState};
pub use write::{RowOutcome, WriteMode, WriteReport};

use crate::error::{Error, Result};
use crate::redact;
use crate::retry::Policy;

/// Which database engine holds the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// MySQL or MariaDB.
    MySql,
    /// SQLite file.
    Sqlite,
}

/// A connection pool to one Milvus metadata database.
#[derive(Debug, Clone)]
pub struct MetaDb {
    pool: AnyPool,
    backend: Backend,
    target: String,
    /// SQLite with a busy timeout (milvus-tier's own connections): write transactions
    /// begin IMMEDIATE.
    immediate: bool,
}

/// Options for [`MetaDb::connect_with`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// How long to wait for a connection.
    pub timeout: Duration,
    /// Pool size.
    pub max_connections: u32,
    /// SQLite only: no busy timeout (`PRAGMA busy_timeout = 0`), so a statement that meets
    /// another writer's lock fails at once with "database is locked", as in Milvus's
    /// `SqliteMetaImpl`, which sets none (and its transactions stay deferred). `false`, for
    /// milvus-tier's own connections: a statement waits up to [`SQLITE_BUSY_TIMEOUT`] for
    /// another writer, and write transactions begin IMMEDIATE ([`MetaDb::begin_write`]).
    pub sqlite_no_busy_timeout: bool,
}

/// How long milvus-tier's own SQLite connections wait for another writer's lock.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts to connect (within [`ConnectOptions::timeout`] in all) when a connection fails
/// in a way a retry can help (it breaks off, the server is not up yet).
pub const CONNECT_ATTEMPTS: u32 = 3;

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(10),
            max_connections: 4,
            sqlite_no_busy_timeout: false,
        }
    }
}

impl MetaDb {
    /// Connect with default options. `url` is `mysql://…` or `sqlite://…`.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &ConnectOptions::default()).await
    }

    /// Connect to `url` (`mysql://user:pass@host:port/db` or `sqlite://path`).
    pub async fn connect_with(url: &str, opts: &ConnectOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let target = redact::url(url);
        let no_busy_timeout = backend == Backend::Sqlite && opts.sqlite_no_busy_timeout;
        let busy_timeout = backend == Backend::Sqlite && !opts.sqlite_no_busy_timeout;
        // sqlx itself waits for a server that refuses connections (still starting) up to
        // the timeout; a connection that fails otherwise is tried again, within it too.
        let policy = Policy::new(
            Duration::from_millis(250),
            Duration::from_secs(2),
            CONNECT_ATTEMPTS,
        )
        .with_max_elapsed(opts.timeout);
        let shown = match backend {
            Backend::MySql => redact::endpoint(url),
            Backend::Sqlite => target.clone(),
        };
        let shown = &shown;
        let pool = policy
            .run("metadata connect", |_| async move {
                Self::open_pool(url, opts, no_busy_timeout, busy_timeout)
                    .await
                    .map_err(|e| Error::MetaConnect {
                        target: shown.clone(),
                        reason: connect_reason(&e),
                        refused: refused(&e),
                    })
            })
            .await?;
        Ok(MetaDb {
            pool,
            backend,
            target,
            immediate: busy_timeout,
        })
    }

    /// One attempt of [`MetaDb::connect_with`]: a pool with one connection open.
    async fn open_pool(
        url: &str,
        opts: &ConnectOptions,
        no_busy_timeout: bool,
        busy_timeout: bool,
    ) -> std::result::Result<AnyPool, sqlx::Error> {
        AnyPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.timeout)
            .after_connect(move |c, _| {
                Box::pin(async move {
                    if no_busy_timeout {
                        sqlx::query("PRAGMA busy_timeout = 0").execute(c).await?;
                    } else if busy_timeout {
                        // PRAGMA takes no bound parameter: the literal is SQLITE_BUSY_TIMEOUT.
                        sqlx::query("PRAGMA busy_timeout = 30000")
                            .execute(c)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
    }

    /// The back end in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The redacted URL, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Begin a transaction that writes. On SQLite (milvus-tier's own connections) it is
    /// `BEGIN IMMEDIATE`: the write lock is taken first, waiting up to the busy timeout for
    /// another writer, as a deferred transaction that has read cannot wait for it and fails
    /// "database is locked".
    pub async fn begin_write(&self) -> std::result::Result<Transaction<'static, Any>, sqlx::Error> {
        if self.immediate {
            self.pool.begin_with("BEGIN IMMEDIATE").await
        } else {
            self.pool.begin().await
        }
    }

    /// The underlying pool (for transactions spanning several calls).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Close the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn err(&self, what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error + '_ {
        let what = what.into();
        move |e| Error::meta(&self.target, what, e)
    }
}

/// The back end named by a metadata URL's scheme.
pub fn backend_of(url: &str) -> Result<Backend> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "mysql" | "mariadb" => Ok(Backend::MySql),
        "sqlite" => Ok(Backend::Sqlite),
        _ => Err(Error::Config(format!(
            "metadata URL `{}` must start with mysql:// or sqlite://",
            redact::url(url)
        ))),
    }
}

/// Whether the server refused the connection's user, password or database (MySQL
/// `ER_DBACCESS_DENIED_ERROR` 1044, `ER_ACCESS_DENIED_ERROR` 1045, `ER_BAD_DB_ERROR` 1049,
/// `ER_ACCESS_DENIED_NO_PASSWORD_ERROR` 1698): the same URL will be refused again.
fn refused(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        .is_some_and(|m| matches!(m.number(), 1044 | 1045 | 1049 | 1698))
}

fn connect_reason(e: &sqlx::Error) -> String {
    // Driver messages do not include the URL; keep only the message.
    match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "timed out".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A "database" that accepts connections and closes them at once (a server that is
    /// restarting, or a proxy in front of it): the count of connections it got.
    async fn hanging_up() -> (u16, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                drop(s);
            }
        });
        (port, count)
    }

    #[tokio::test]
    async fn a_connection_that_breaks_off_is_tried_again_and_the_error_has_no_password() {
        let (port, count) = hanging_up().await;
        let url = format!("mysql://tier:s3cret-pw@127.0.0.1:{port}/milvus");
        let err = MetaDb::connect_with(&url, &ConnectOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::MetaConnect { .. }), "{err}");
        assert_eq!(err.kind(), crate::error::ErrorKind::Failure);
        assert!(!err.to_string().contains("s3cret-pw"), "{err}");
        assert_eq!(count.load(Ordering::SeqCst), CONNECT_ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn a_url_of_another_scheme_is_refused_without_a_connection() {
        let (port, count) = hanging_up().await;
        let err = MetaDb::connect_with(
            &format!("postgres://tier@127.0.0.1:{port}/milvus"),
            &ConnectOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::BadInput, "{err}");
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }
}
