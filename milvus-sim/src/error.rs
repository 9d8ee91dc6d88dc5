//! The simulator's error type and the Milvus web error codes it answers with.
//!
//! Codes are those of Milvus 1.1's `web_impl/Types.h` (`StatusCode`); see
//! `docs/milvus-1.1.1-source-notes.md` §8.3.

use std::path::PathBuf;

/// Milvus web status codes used by the simulator.
pub mod code {
    /// Unmapped server errors.
    pub const UNEXPECTED: i32 = 1;
    /// Collection (or partition) does not exist.
    pub const COLLECTION_NOT_EXISTS: i32 = 4;
    /// An argument is invalid.
    pub const ILLEGAL_ARGUMENT: i32 = 5;
    /// Dimension out of range or not matching the collection.
    pub const ILLEGAL_DIMENSION: i32 = 7;
    /// Unknown index type.
    pub const ILLEGAL_INDEX_TYPE: i32 = 8;
    /// Invalid collection name.
    pub const ILLEGAL_COLLECTION_NAME: i32 = 9;
    /// topk out of range.
    pub const ILLEGAL_TOPK: i32 = 10;
    /// Empty or malformed vectors.
    pub const ILLEGAL_ROWRECORD: i32 = 11;
    /// Vector ids missing, extra or of the wrong id mode.
    pub const ILLEGAL_VECTOR_ID: i32 = 12;
    /// Unknown or unsupported metric.
    pub const ILLEGAL_METRIC_TYPE: i32 = 23;
    /// A required body field is missing.
    pub const BODY_FIELD_LOSS: i32 = 34;
    /// A body field has an invalid value.
    pub const ILLEGAL_BODY: i32 = 35;
    /// The body is not JSON.
    pub const BODY_PARSE_FAIL: i32 = 36;
    /// A query parameter is invalid.
    pub const ILLEGAL_QUERY_PARAM: i32 = 37;
}

/// Result alias.
pub type Result<T, E = SimError> = std::result::Result<T, E>;

/// Every failure inside the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A request Milvus would refuse, with its web code.
    #[error("{message}")]
    Api {
        /// Milvus web status code.
        code: i32,
        /// Human-readable reason.
        message: String,
    },
    /// A metadata operation of the shared library failed.
    #[error(transparent)]
    Meta(#[from] milvus_tier::Error),
    /// A direct SQL statement failed.
    #[error("metadata SQL failed: {0}")]
    Sql(#[from] sqlx::Error),
    /// A segment file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A segment file has unexpected content.
    #[error("{path}: {problem}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl SimError {
    /// An API error with `code`.
    pub fn api(code: i32, message: impl Into<String>) -> Self {
        SimError::Api {
            code,
            message: message.into(),
        }
    }

    /// Collection not found (code 4).
    pub fn no_collection(name: &str) -> Self {
        Self::api(
            code::COLLECTION_NOT_EXISTS,
            format!("Collection {name} does not exist"),
        )
    }

    /// The Milvus web code of this error.
    pub fn code(&self) -> i32 {
        match self {
            SimError::Api { code, .. } => *code,
            _ => code::UNEXPECTED,
        }
    }

    /// The HTTP status Milvus's web server answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            SimError::Api { code, .. } if *code == code::COLLECTION_NOT_EXISTS => 404,
            SimError::Api { .. } => 400,
            _ => 500,
        }
    }
}

/// Attach the path to an I/O error.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SimError {
    let path = path.into();
    move |source| SimError::Io { path, source }
}
