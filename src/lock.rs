//! One run per collection and day across machines: a lease row in milvus-tier's own
//! `milvus_tier_lock` table (long-term metadata database), the same on MySQL and SQLite.
//!
//! The holder renews the lease in the background; a crashed holder's lease expires after
//! its TTL, and the next run takes it over with a compare-and-set on the old expiry.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::journal::now_micros;
use crate::meta::MetaDb;

/// A held lease; released on [`Lease::release`] (or left to expire if the process dies).
#[derive(Debug)]
pub struct Lease {
    db: MetaDb,
    name: String,
    holder: String,
    stop: Arc<Notify>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

/// Why a lease could not be taken.
#[derive(Debug, thiserror::Error)]
#[error("lock `{name}` is held by {holder} until {expires_at_utc}")]
pub struct Held {
    /// Lock name.
    pub name: String,
    /// Holder (host, pid, run id).
    pub holder: String,
    /// When the lease expires unless renewed.
    pub expires_at_utc: String,
}

impl Lease {
    /// Take the lease `name` for `ttl`, renewing it every `ttl / 3` until released.
    pub async fn acquire(
        db: &MetaDb,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<std::result::Result<Lease, Held>> {
        db.migrate_journal().await?;
        let ttl_us = ttl.as_micros() as i64;
        let now = now_micros();
        let inserted = sqlx::query("INSERT INTO milvus_tier_lock (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(name)
            .bind(holder)
            .bind(now)
            .bind(now + ttl_us)
            .execute(db.pool())
            .await;
        if inserted.is_err() {
            // Present: take it over only if expired, with a compare-and-set on the old expiry.
            let row = sqlx::query("SELECT holder, expires_at FROM milvus_tier_lock WHERE name = ?")
                .bind(name)
                .fetch_optional(db.pool())
                .await
                .map_err(db.err(format!("read lock {name}")))?;
            let Some(row) = row else {
                // No row: the insert failed for another reason than a held lock.
                let e = inserted.expect_err("insert failed");
                return Err(Error::meta(db.target(), format!("take lock {name}"), e));
            };
            let old_holder: String = row.try_get(0).map_err(db.err("decode lock"))?;
            let expires: i64 = row.try_get(1).map_err(db.err("decode lock"))?;
            if expires > now && !holder_is_dead(&old_holder) {
                return Ok(Err(Held {
                    name: name.to_string(),
                    holder: old_holder,
                    expires_at_utc: chrono::DateTime::from_timestamp_micros(expires)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default(),
                }));
            }
            let taken = sqlx::query(
                "UPDATE milvus_tier_lock SET holder = ?, acquired_at = ?, expires_at = ? WHERE name = ? AND expires_at = ?",
            )
            .bind(holder)
            .bind(now)
            .bind(now + ttl_us)
            .bind(name)
            .bind(expires)
            .execute(db.pool())
            .await
            .map_err(db.err(format!("take over lock {name}")))?;
            if taken.rows_affected() != 1 {
                return Ok(Err(Held {
                    name: name.to_string(),
                    holder: "another run (taken over just now)".into(),
                    expires_at_utc: String::new(),
                }));
            }
            tracing::warn!(lock = name, previous = %old_holder, "took over an expired lock");
        }
        let stop = Arc::new(Notify::new());
        let renewer = {
            let (db, name, holder, stop) = (
                db.clone(),
                name.to_string(),
                holder.to_string(),
                stop.clone(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.notified() => return,
                        _ = tokio::time::sleep(ttl / 3) => {}
                    }
                    let r = sqlx::query(
                        "UPDATE milvus_tier_lock SET expires_at = ? WHERE name = ? AND holder = ?",
                    )
                    .bind(now_micros() + ttl_us)
                    .bind(&name)
                    .bind(&holder)
                    .execute(db.pool())
                    .await;
                    if let Err(e) = r {
                        tracing::warn!(lock = %name, error = %e, "could not renew lock lease");
                    }
                }
            })
        };
        Ok(Ok(Lease {
            db: db.clone(),
            name: name.to_string(),
            holder: holder.to_string(),
            stop,
            renewer: Some(renewer),
        }))
    }

    /// Whether this process still holds the lease (checked before irreversible writes).
    pub async fn check(&self) -> Result<()> {
        let row = sqlx::query("SELECT holder FROM milvus_tier_lock WHERE name = ?")
            .bind(&self.name)
            .fetch_optional(self.db.pool())
            .await
            .map_err(self.db.err(format!("read lock {}", self.name)))?;
        match row.map(|r| r.try_get::<String, _>(0)) {
            Some(Ok(h)) if h == self.holder => Ok(()),
            _ => Err(Error::LockLost(self.name.clone())),
        }
    }

    /// Release the lease after the work that held it, keeping the work's own result: a
    /// failed release is logged (the lease then expires after its TTL), never returned in
    /// place of the work's error or success.
    pub async fn release_after<T>(self, result: Result<T>) -> Result<T> {
        let name = self.name.clone();
        if let Err(e) = self.release().await {
            tracing::warn!(lock = %name, error = %e, "could not release the lock; it expires after its lease time");
        }
        result
    }

    /// Release the lease.
    pub async fn release(mut self) -> Result<()> {
        self.stop.notify_one();
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        sqlx::query("DELETE FROM milvus_tier_lock WHERE name = ? AND holder = ?")
            .bind(&self.name)
            .bind(&self.holder)
            .execute(self.db.pool())
            .await
            .map_err(self.db.err(format!("release lock {}", self.name)))?;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
    }
}

/// Whether `holder` (`host:pid:run`) names a process on this host that no longer exists:
/// its lease can be taken over at once instead of waiting for the TTL.
fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (_run, pid, host) = (parts.next(), parts.next(), parts.next());
    match (host, pid.and_then(|p| p.parse::<u32>().ok())) {
        (Some(h), Some(pid)) if h == crate::migrate::hostname() && pid != std::process::id() => {
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}
