//! What every day-level command (migrate, backup, restore, verify, gc, archive, status)
//! opens first: a tier's metadata connection, storage root and collection, and who this run
//! is (the holder id of its leases, the run id of its journal entries).

use std::path::PathBuf;

use crate::config::{Config, Tier};
use crate::error::Result;
use crate::meta::{ConnectOptions, MetaDb};

/// A tier's metadata connection, storage root and collection.
pub async fn connect(config: &Config, tier: Tier) -> Result<(MetaDb, PathBuf, String)> {
    let t = config.tier(tier)?;
    let opts = ConnectOptions {
        timeout: config.connect_timeout(),
        max_connections: 4,
        ..ConnectOptions::default()
    };
    Ok((
        MetaDb::connect_with(&t.meta_url, &opts).await?,
        t.storage_path,
        t.collection,
    ))
}

/// This host's name (lock holders are `host:pid:run`).
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A run id: the start time in microseconds, in hex.
pub fn run_id() -> String {
    format!("{:x}", now_micros())
}

/// The holder id of this run's leases: `host:pid:run`.
pub fn holder_id() -> String {
    format!("{}:{}:{}", hostname(), std::process::id(), run_id())
}

/// Now, in microseconds since the epoch (Milvus's time unit).
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
