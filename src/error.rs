//! The library's error type and the process exit codes it maps to.
//!
//! Every error names the thing at fault (collection, date, file, row, key) and never
//! carries a secret: metadata URLs are redacted before they enter an error.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Process exit codes, documented in the README.
pub mod exit {
    /// Everything succeeded.
    pub const OK: i32 = 0;
    /// A runtime failure (I/O, database, engine).
    pub const FAILURE: i32 = 1;
    /// Bad input: usage, configuration, unknown collection or date.
    pub const BAD_INPUT: i32 = 2;
    /// Another run holds the lock for this collection and day.
    pub const LOCKED: i32 = 3;
    /// A time limit was exceeded.
    pub const TIMEOUT: i32 = 4;
    /// Data disagrees: conflicting rows, failed verification.
    pub const MISMATCH: i32 = 5;
    /// The input is not ready yet (the short-term engine is still writing the day).
    pub const NOT_READY: i32 = 6;
}

/// What kind of failure an error is: decides the exit code and whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A runtime failure (I/O, database, engine): a retry may succeed.
    Failure,
    /// Usage, configuration or data that cannot be migrated as it is: a retry cannot help.
    BadInput,
    /// Another run holds (or took over) the day's lock: that run does the work.
    Locked,
    /// A time limit was exceeded: a retry may succeed.
    Timeout,
    /// Data disagrees (conflicting rows, failed verification): needs a person.
    Mismatch,
    /// A temporary condition (the short-term engine is still writing the day): retry later.
    NotReady,
}

impl ErrorKind {
    /// Every kind, in exit-code order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Failure,
        ErrorKind::BadInput,
        ErrorKind::Locked,
        ErrorKind::Timeout,
        ErrorKind::Mismatch,
        ErrorKind::NotReady,
    ];

    /// The process exit code of this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Failure => exit::FAILURE,
            ErrorKind::BadInput => exit::BAD_INPUT,
            ErrorKind::Locked => exit::LOCKED,
            ErrorKind::Timeout => exit::TIMEOUT,
            ErrorKind::Mismatch => exit::MISMATCH,
            ErrorKind::NotReady => exit::NOT_READY,
        }
    }

    /// Whether running again later can succeed (Batch retries these exit codes).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Failure | ErrorKind::Timeout | ErrorKind::NotReady
        )
    }

    /// The kind's name, as the README's exit-code table spells it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Failure => "failure",
            ErrorKind::BadInput => "bad_input",
            ErrorKind::Locked => "locked",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::NotReady => "not_ready",
        }
    }
}

/// Every failure the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration could not be loaded or is invalid.
    #[error("configuration: {0}")]
    Config(String),

    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),

    /// A metadata database could not be reached.
    #[error("cannot connect to metadata database {target}: {reason}")]
    MetaConnect {
        /// Redacted URL (scheme, host, port, database; never the password).
        target: String,
        /// Driver message.
        reason: String,
        /// The server answered and refused the user, password or database: trying again
        /// cannot help ([`ErrorKind::BadInput`]). Otherwise the server could not be reached
        /// or hung up ([`ErrorKind::Failure`], retried).
        refused: bool,
    },

    /// A metadata query failed.
    #[error("metadata query on {target} failed ({what}): {source}")]
    Meta {
        /// Redacted URL of the database.
        target: String,
        /// What was being done.
        what: String,
        /// Driver error.
        #[source]
        source: sqlx::Error,
    },

    /// A Milvus table or column is missing from a metadata database.
    #[error("metadata database {target}: {problem}")]
    Schema {
        /// Redacted URL of the database.
        target: String,
        /// Which table/column is missing or different.
        problem: String,
    },

    /// A row holds a value outside a Milvus enum.
    #[error("{table} row id {row_id}: unknown {column} value {value}")]
    UnknownEnum {
        /// Milvus table name (`Tables` or `TableFiles`).
        table: &'static str,
        /// Column name.
        column: &'static str,
        /// The row's `id` column.
        row_id: i64,
        /// The offending integer.
        value: i64,
    },

    /// A row holds a value that cannot be decoded.
    #[error("{table} row id {row_id}: bad {column}: {reason}")]
    BadRow {
        /// Milvus table name.
        table: &'static str,
        /// Column name.
        column: &'static str,
        /// The row's `id` column.
        row_id: i64,
        /// What is wrong.
        reason: String,
    },

    /// The collection does not exist (or is soft-deleted).
    #[error("collection `{collection}` not found in the {tier} metadata")]
    CollectionNotFound {
        /// Collection name.
        collection: String,
        /// Which tier was asked.
        tier: String,
    },

    /// No partition exists for the requested day.
    #[error(
        "collection `{collection}` has no partition tagged `{tag}` (day {day}) in the {tier} metadata"
    )]
    NoPartition {
        /// Collection name.
        collection: String,
        /// Tag derived from the tag format.
        tag: String,
        /// The day asked for.
        day: String,
        /// Which tier was asked.
        tier: String,
    },

    /// A local path is missing or unusable.
    #[error("{what} {path}: {reason}")]
    Path {
        /// What the path is for.
        what: String,
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// Another run holds the lock.
    #[error("another run is in progress: {0}")]
    LockHeld(#[from] crate::lock::Held),

    /// This run lost its lock lease (it expired and another run took it).
    #[error(
        "lock `{0}` was lost (lease expired and taken by another run); stopping before any further write"
    )]
    LockLost(String),

    /// The local build engine failed.
    #[error("{0}")]
    Engine(#[from] crate::engine::EngineError),

    /// The engine did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),

    /// The engine reached a state that cannot finish (error, crash leftovers).
    #[error("engine error: {0}")]
    EngineState(String),

    /// The input day is not in a state that can be migrated.
    #[error("{0}")]
    BadInput(String),

    /// The input day is not ready yet (a temporary condition worth retrying).
    #[error("{0}")]
    NotReady(String),

    /// Long-term or the backup holds something that disagrees with this day's data.
    #[error("{0}")]
    Conflict(String),

    /// Copying segment folders failed.
    #[error("{0}")]
    Copy(#[from] crate::segments::CopyError),

    /// The AWS Batch API failed or could not be reached.
    #[error("{0}")]
    Batch(String),

    /// A Batch job for the same collection and day is already queued or running.
    #[error("{0}")]
    DuplicateJob(String),

    /// The backup store (S3 bucket or backup folder) failed or refused a request.
    #[error("backup store {target}: {reason}")]
    Store {
        /// The object or folder involved (`s3://bucket/key` or a path).
        target: String,
        /// What went wrong.
        reason: String,
    },

    /// A backup manifest is missing, unreadable or of an unknown format.
    #[error("backup manifest {target}: {reason}")]
    Manifest {
        /// The manifest (`s3://bucket/key` or a path).
        target: String,
        /// What is wrong.
        reason: String,
    },

    /// An I/O error on a named file.
    #[error("{op} {path}: {source}")]
    Io {
        /// Operation (read, write, create...).
        op: &'static str,
        /// File involved.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_)
            | Error::Usage(_)
            | Error::CollectionNotFound { .. }
            | Error::NoPartition { .. }
            | Error::BadInput(_) => ErrorKind::BadInput,
            Error::LockHeld(_) | Error::LockLost(_) | Error::DuplicateJob(_) => ErrorKind::Locked,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::NotReady(_) => ErrorKind::NotReady,
            Error::Conflict(_) | Error::Manifest { .. } => ErrorKind::Mismatch,
            // A symbolic link or other non-regular entry in a segment folder: the data is
            // not what Milvus writes, a retry cannot help.
            Error::Copy(crate::segments::CopyError::UnsupportedEntry { .. }) => ErrorKind::BadInput,
            Error::Engine(e) => e.kind(),
            Error::MetaConnect { refused: true, .. } => ErrorKind::BadInput,
            Error::MetaConnect { .. }
            | Error::Meta { .. }
            | Error::Schema { .. }
            | Error::UnknownEnum { .. }
            | Error::BadRow { .. }
            | Error::Path { .. }
            | Error::EngineState(_)
            | Error::Copy(_)
            | Error::Batch(_)
            | Error::Store { .. }
            | Error::Io { .. } => ErrorKind::Failure,
        }
    }

    /// Whether running again later can succeed.
    pub fn retryable(&self) -> bool {
        self.kind().retryable()
    }

    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }

    /// Wrap a driver error with the database and the action.
    pub fn meta(target: &str, what: impl Into<String>, source: sqlx::Error) -> Self {
        Error::Meta {
            target: target.to_string(),
            what: what.into(),
            source,
        }
    }

    /// Wrap an I/O error with the file it concerns.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// One line telling why an AWS SDK request failed: for an error the service answered, its
/// status, error code and message (`404 NoSuchBucket: The specified bucket does not exist`);
/// otherwise the error and its causes. Never the SDK's dump of the raw response.
pub fn aws_reason<E>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::SdkError;
    let text = match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            let status = s.raw().status().as_u16();
            let code = err.code().unwrap_or("no error code");
            match err.message() {
                Some(m) if !m.is_empty() => format!("{status} {code}: {m}"),
                _ => format!("{status} {code}"),
            }
        }
        SdkError::ResponseError(r) => {
            format!("HTTP {} response not understood", r.raw().status().as_u16())
        }
        other => {
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(c) = cause {
                text.push_str(": ");
                text.push_str(&c.to_string());
                cause = c.source();
            }
            text
        }
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
