//! The sections of the configuration other than the top level: the clusters, the build
//! engine, the backup target and the limits, with their defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Secret;
use crate::day::TagFormat;

/// One Milvus cluster: its metadata database, storage and collection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `mysql://user@host:port/db` or `sqlite:///path/meta.sqlite`.
    pub meta_url: String,
    /// Password added to `meta_url` (environment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_password: Option<Secret>,
    /// File whose first line is the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_password_file: Option<PathBuf>,
    /// Milvus `storage.path` (segments live under `<path>/db/tables/`).
    pub storage_path: PathBuf,
    /// Collection name.
    pub collection: String,
    /// Partition tag format, a prefix plus strftime fields, e.g. `day_%Y-%m-%d`.
    /// Optional for the long-term cluster (defaults to the short-term one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_tag_format: Option<TagFormat>,
    /// Milvus HTTP API base URL of the cluster's writable node (port 19121); needed by
    /// `partitions rotate` on the short-term cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_url: Option<String>,
    /// The Milvus `server_config.yaml` its nodes run with; `config check` checks it against
    /// the 1.1.1 rules and the tier's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_config: Option<PathBuf>,
}

/// The local build engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Milvus HTTP API base URL (port 19121).
    pub http_url: String,
    /// Its metadata database URL.
    pub meta_url: String,
    /// Password added to `meta_url` (environment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_password: Option<Secret>,
    /// File whose first line is the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_password_file: Option<PathBuf>,
    /// Its `storage.path`.
    pub storage_path: PathBuf,
    /// The engine's build threshold: RAW files with fewer rows are never indexed. Milvus
    /// 1.1.1 compiles it in (`BUILD_INDEX_THRESHOLD = 4096`, `db/meta/MetaConsts.h`) and has
    /// no config key for it, so any other value needs `custom_build = true`.
    #[serde(default = "default_build_threshold")]
    pub build_index_threshold: i64,
    /// The engine's `server_config.yaml`; `config check` checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_config: Option<PathBuf>,
    /// The engine was built from modified source with another `BUILD_INDEX_THRESHOLD`.
    #[serde(default)]
    pub custom_build: bool,
}

/// Backup target.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// `s3://bucket/prefix` or `file:///path`.
    pub target: String,
    /// Custom S3 endpoint (S3-compatible servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// S3 region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Path-style S3 addressing (needed by most S3-compatible servers).
    #[serde(default)]
    pub force_path_style: bool,
    /// Attempts per S3 request (the SDK's standard retry mode: backoff on 5xx,
    /// throttling and connection errors).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Parts of one multipart upload sent at once, and ranged GETs of one file fetched at
    /// once by restore.
    #[serde(default = "default_part_concurrency")]
    pub part_concurrency: usize,
}

fn default_max_attempts() -> u32 {
    5
}

fn default_part_concurrency() -> usize {
    8
}

/// Time limits, concurrency and bandwidth.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connecting to a metadata database, seconds.
    pub connect_timeout_secs: u64,
    /// Waiting for the engine to merge a day, seconds.
    pub merge_timeout_secs: u64,
    /// Waiting for the engine to index a day, seconds.
    pub index_timeout_secs: u64,
    /// Failing when the engine shows no progress for this long, seconds.
    pub no_progress_timeout_secs: u64,
    /// Files copied at once.
    pub copy_concurrency: usize,
    /// Copy bandwidth cap in MB/s (0 = unlimited).
    pub bandwidth_mb_per_s: u64,
    /// How long a run's lock lease lasts unless renewed (renewed every third of it), seconds.
    pub lease_ttl_secs: u64,
    /// How long a run waits for the day's lock when its holder is dead or its lease ends
    /// within this time (a crashed attempt's lease), seconds.
    pub lock_wait_secs: u64,
    /// Minutes after a day's end (in the configured timezone) before it is migrated: late
    /// inserts and flushes of the day land in short-term meanwhile.
    pub settle_minutes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout_secs: 10,
            merge_timeout_secs: 3600,
            index_timeout_secs: 3600,
            no_progress_timeout_secs: 900,
            copy_concurrency: 4,
            bandwidth_mb_per_s: 0,
            lease_ttl_secs: 120,
            lock_wait_secs: 300,
            settle_minutes: 60,
        }
    }
}

/// `BUILD_INDEX_THRESHOLD` of Milvus 1.1.1 (`core/src/db/meta/MetaConsts.h`).
pub const MILVUS_BUILD_INDEX_THRESHOLD: i64 = 4096;

fn default_build_threshold() -> i64 {
    MILVUS_BUILD_INDEX_THRESHOLD
}
