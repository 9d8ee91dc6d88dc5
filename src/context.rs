//! What every day-level command (migrate, backup, restore, verify, gc, archive, status)
//! opens first: a tier's metadata connection, storage root and collection; for a day of the
//! long-term collection, its lease and the journal fenced by it.

use std::path::PathBuf;

use crate::config::{Config, Tier};
use crate::day::Day;
use crate::error::Result;
use crate::journal::Journal;
use crate::lock::{Lease, holder_id};
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

/// One day of the long-term collection: its metadata, storage root and the holder id this
/// run takes the day's lease with.
#[derive(Debug, Clone)]
pub struct DayContext {
    /// Long-term metadata.
    pub long: MetaDb,
    /// Long-term storage root.
    pub long_storage: PathBuf,
    /// Long-term collection.
    pub collection: String,
    /// The day.
    pub day: Day,
    /// This run's holder id (`host:pid:run`), also the run id of its journal entries.
    pub holder: String,
}

impl DayContext {
    /// Connect to long-term for `day`.
    pub async fn open(config: &Config, day: Day) -> Result<DayContext> {
        let (long, long_storage, collection) = connect(config, Tier::LongTerm).await?;
        Ok(DayContext {
            long,
            long_storage,
            collection,
            day,
            holder: holder_id(),
        })
    }

    /// The day's lease name: migrate, backup and restore of a day take the same one.
    pub fn lock_name(&self) -> String {
        format!("migrate/{}/{}", self.collection, self.day)
    }

    /// Take the day's lease (waiting up to `limits.lock_wait_secs` for a holder that is
    /// gone) and open the journal fenced by it.
    pub async fn lock(&self, config: &Config) -> Result<(Lease, Journal)> {
        let lease = Lease::acquire_waiting(
            &self.long,
            &self.lock_name(),
            &self.holder,
            config.lease_ttl(),
            config.lock_wait(),
        )
        .await?;
        let journal = Journal::open(&self.long).await?.fenced(lease.fence());
        Ok((lease, journal))
    }
}
