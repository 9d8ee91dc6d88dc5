//! milvus-tier: operations sidecar and day-by-day migrator for two-tier Milvus 1.1.1
//! clusters (a writable short-term cluster and a read-only long-term cluster).
//!
//! The library holds the logic; the `milvus-tier` binary parses arguments, calls it and
//! maps errors to exit codes. Data flows one way: plan → stage → build → publish → backup.

pub mod archive;
pub mod aws;
pub mod backup;
pub mod batch;
pub mod check;
pub mod config;
pub mod context;
pub mod day;
pub mod engine;
pub mod error;
pub mod failpoint;
pub mod gc;
pub mod journal;
pub mod lifecycle;
pub mod lock;
pub mod meta;
pub mod metrics;
pub mod migrate;
pub mod milvus_name;
pub mod notify;
pub mod partitions;
pub mod plan;
pub mod progress;
pub mod publish;
pub mod redact;
pub mod report;
pub mod restore;
pub mod retry;
pub mod run_report;
pub mod segments;
pub mod server_config;
pub mod verify;

pub use error::{Error, Result};

/// Install the process-wide rustls crypto provider (ring, the only one built in: reqwest,
/// sqlx, the Slack client and the AWS clients all use it). Calling it again is harmless.
pub fn init_crypto() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
