//! One run per collection and day across machines: a lease row in milvus-tier's own
//! `milvus_tier_lock` table (long-term metadata database), the same on MySQL and SQLite.
//!
//! The holder renews the lease in the background; a crashed holder's lease expires after
//! its TTL, and the next run takes it over with a compare-and-set on the old expiry.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Any, Row, Transaction};
use tokio::sync::{Notify, watch};

use crate::error::{Error, Result};
use crate::meta::MetaDb;

/// A held lease; released on [`Lease::release`] (or left to expire if the process dies).
#[derive(Debug)]
pub struct Lease {
    fence: Fence,
    stop: Arc<Notify>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

/// The lease as a fencing token: every write that the lease protects proves, inside its
/// own transaction, that this run still holds it (and extends it), or does not happen.
#[derive(Debug, Clone)]
pub struct Fence {
    db: MetaDb,
    name: String,
    holder: String,
    ttl_us: i64,
    lost: Arc<watch::Sender<bool>>,
}

impl Fence {
    /// Inside `tx`: extend the lease if and only if this run still holds it. Any other
    /// outcome is [`Error::LockLost`] and the caller must roll back (dropping `tx` does).
    /// The lease row stays locked by `tx` until it ends, so no other run can take the
    /// lease over while the fenced transaction is open.
    pub async fn hold(&self, tx: &mut Transaction<'static, Any>) -> Result<()> {
        if self.is_lost() {
            return Err(Error::LockLost(self.name.clone()));
        }
        let r =
            sqlx::query("UPDATE milvus_tier_lock SET expires_at = ? WHERE name = ? AND holder = ?")
                .bind(now_micros() + self.ttl_us)
                .bind(&self.name)
                .bind(&self.holder)
                .execute(&mut **tx)
                .await
                .map_err(self.db.err(format!("hold lock {}", self.name)))?;
        if r.rows_affected() != 1 {
            self.lost.send_replace(true);
            return Err(Error::LockLost(self.name.clone()));
        }
        Ok(())
    }

    /// [`Fence::hold`] in a transaction of its own: checked right before a write the
    /// database cannot fence (files on long-term storage).
    pub async fn hold_now(&self) -> Result<()> {
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(self.db.err(format!("begin hold of lock {}", self.name)))?;
        self.hold(&mut tx).await?;
        tx.commit()
            .await
            .map_err(self.db.err(format!("commit hold of lock {}", self.name)))
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this run already knows it lost the lease.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Resolves once this run knows it lost the lease (the renewer or a fenced write found
    /// another holder): long waits (the engine's build) select on it to stop at once.
    pub async fn lost(&self) {
        let mut rx = self.lost.subscribe();
        // The sender lives as long as this fence, so waiting cannot fail.
        let _ = rx.wait_for(|lost| *lost).await;
    }
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
    /// The same, in microseconds since the epoch (0 when unknown).
    pub expires_at: i64,
}

impl Lease {
    /// Take the lease `name`; when it is held, wait for it while it is not being renewed
    /// (its holder crashed or is paused: a Batch retry that starts inside the crashed
    /// attempt's lease), up to `wait` in all. A holder seen renewing its lease is alive:
    /// that is [`Error::LockHeld`] at once, as is a lease that ends after the wait.
    pub async fn acquire_waiting(
        db: &MetaDb,
        name: &str,
        holder: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Lease> {
        let deadline = now_micros() + wait.as_micros() as i64;
        let mut seen: Option<(String, i64)> = None;
        loop {
            let held = match Lease::acquire(db, name, holder, ttl).await? {
                Ok(lease) => return Ok(lease),
                Err(held) => held,
            };
            let now = now_micros();
            if held.expires_at == 0 {
                // Released or taken over just now: look again.
                if now >= deadline {
                    return Err(Error::LockHeld(held));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let renewed = seen
                .as_ref()
                .is_some_and(|(h, e)| *h == held.holder && held.expires_at > *e);
            if renewed || now >= deadline || held.expires_at > deadline {
                return Err(Error::LockHeld(held));
            }
            if seen.as_ref().is_none_or(|(h, _)| *h != held.holder) {
                tracing::info!(lock = name, holder = %held.holder, expires = %held.expires_at_utc, "lock held; waiting to see whether its lease is renewed or ends");
                seen = Some((held.holder.clone(), held.expires_at));
            }
            let until_expiry = (held.expires_at - now).max(0) as u64 + 50_000;
            tokio::time::sleep(Duration::from_micros(until_expiry.min(500_000))).await;
        }
    }

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
                // Gone since the insert (released just now): try again soon.
                return Ok(Err(Held {
                    name: name.to_string(),
                    holder: "another run (released just now)".into(),
                    expires_at_utc: String::new(),
                    expires_at: 0,
                }));
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
                    expires_at: expires,
                }));
            }
            let now = now_micros();
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
                    holder: "another run (renewed or taken over just now)".into(),
                    expires_at_utc: String::new(),
                    expires_at: 0,
                }));
            }
            tracing::warn!(lock = name, previous = %old_holder, "took over an expired lock");
        }
        let fence = Fence {
            db: db.clone(),
            name: name.to_string(),
            holder: holder.to_string(),
            ttl_us,
            lost: Arc::new(watch::channel(false).0),
        };
        let stop = Arc::new(Notify::new());
        let renewer = {
            let (fence, stop) = (fence.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.notified() => return,
                        _ = tokio::time::sleep(ttl / 3) => {}
                    }
                    match fence.hold_now().await {
                        Ok(()) => {}
                        Err(Error::LockLost(_)) => {
                            tracing::error!(lock = %fence.name, "lock lease lost (expired and taken by another run); this run stops before its next write");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(lock = %fence.name, error = %e, "could not renew lock lease");
                        }
                    }
                }
            })
        };
        Ok(Ok(Lease {
            fence,
            stop,
            renewer: Some(renewer),
        }))
    }

    /// The lease as a fencing token for writes.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Whether this process still holds the lease (checked before irreversible writes).
    pub async fn check(&self) -> Result<()> {
        self.fence.hold_now().await
    }

    /// Release the lease after the work that held it, keeping the work's own result: a
    /// failed release is logged (the lease then expires after its TTL), never returned in
    /// place of the work's error or success.
    pub async fn release_after<T>(self, result: Result<T>) -> Result<T> {
        let name = self.fence.name.clone();
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
        let f = &self.fence;
        sqlx::query("DELETE FROM milvus_tier_lock WHERE name = ? AND holder = ?")
            .bind(&f.name)
            .bind(&f.holder)
            .execute(f.db.pool())
            .await
            .map_err(f.db.err(format!("release lock {}", f.name)))?;
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
pub(crate) fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (_run, pid, host) = (parts.next(), parts.next(), parts.next());
    match (host, pid.and_then(|p| p.parse::<u32>().ok())) {
        (Some(h), Some(pid)) if h == hostname() && pid != std::process::id() => {
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
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
