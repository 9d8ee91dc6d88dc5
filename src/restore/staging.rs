//! The restore's staging folder on long-term storage: the download of a day's backed-up
//! files into it (size and BLAKE3 checked), and the removal of folders crashed or finished
//! restores left.

use std::path::{Path, PathBuf};

use futures::stream::{self, StreamExt, TryStreamExt};

use super::holder;
use crate::backup::manifest::{ManifestFile, file_key, manifest_key};
use crate::backup::store::Store;
use crate::config::Config;
use crate::day::Day;
use crate::error::{Error, Result};
use crate::lock::Lease;
use crate::meta::MetaDb;
use crate::segments::Prehashed;

/// Download `files` of the manifest of `source`'s `day` into the staging folder, checking
/// size and BLAKE3; returns them by path, for publish (or a repair) to link.
pub(super) async fn download_files(
    store: &Store,
    source: &str,
    day: &str,
    staging: &Path,
    files: Vec<&ManifestFile>,
    concurrency: usize,
) -> Result<Prehashed> {
    stream::iter(files)
        .map(|f| async move {
            let key = file_key(source, day, &f.path);
            let dest: PathBuf = staging
                .join("db")
                .join("tables")
                .join(&f.table_id)
                .join(&f.segment_id)
                .join(&f.name);
            if [&f.table_id, &f.segment_id, &f.name]
                .iter()
                .any(|s| s.is_empty() || s.contains('/') || s.starts_with('.'))
            {
                return Err(Error::Manifest {
                    target: store.describe(&manifest_key(source, day)),
                    reason: format!("file entry {} is not a plain segment file path", f.path),
                });
            }
            let (size, blake3) = store.download(&key, &dest, f.size).await?;
            if size != f.size || blake3 != f.blake3 {
                return Err(Error::Conflict(format!(
                    "backup object {} has {size} bytes, BLAKE3 {blake3}; the manifest lists {} bytes, BLAKE3 {}: refusing to restore day {}",
                    store.describe(&key),
                    f.size,
                    f.blake3,
                    day
                )));
            }
            // Our own hex digest: it parses.
            let hash = blake3::Hash::from_hex(&blake3).map_err(|e| Error::Store {
                target: dest.display().to_string(),
                reason: format!("digest {blake3}: {e}"),
            })?;
            Ok((dest, (size, hash)))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
}

/// A restore killed after its commit leaves its staging folder, and its rerun finds the
/// day already restored: remove the folder, holding the day's lease (no restore of the day
/// runs meanwhile). Nothing is locked when no such folder exists.
pub(super) async fn clean_staging_of_finished_restore(
    config: &Config,
    long: &MetaDb,
    long_storage: &Path,
    target: &str,
    day: Day,
) -> Result<()> {
    let stem = format!(".milvus-tier-restore-{target}-{day}-");
    let Ok(mut rd) = tokio::fs::read_dir(long_storage).await else {
        return Ok(());
    };
    let mut found = false;
    while let Ok(Some(e)) = rd.next_entry().await {
        found |= e.file_name().to_string_lossy().starts_with(&stem);
    }
    if !found {
        return Ok(());
    }
    let lease = Lease::acquire_waiting(
        long,
        &format!("migrate/{target}/{day}"),
        &holder(),
        config.lease_ttl(),
        config.lock_wait(),
    )
    .await?;
    remove_stale_staging(long_storage, &stem).await;
    lease.release_after(Ok(())).await
}

/// Remove the staging folders crashed restores of `collection`'s `day` left under the
/// long-term storage root. Call only while holding the day's lease (`migrate/<collection>/
/// <day>`, which restore and migrate share): no restore of the day can be running then, so
/// what is there is debris. A run refused before it takes the lease calls nothing (the
/// folder may be a live run's). Best effort.
pub(crate) async fn remove_crashed_restore_staging(
    long_storage: &Path,
    collection: &str,
    day: Day,
) {
    remove_stale_staging(
        long_storage,
        &format!(".milvus-tier-restore-{collection}-{day}-"),
    )
    .await;
}

/// Staging folders of this day left by a crashed restore (the lease is held: no other
/// restore of the day runs). Best effort: a leftover only costs space.
pub(super) async fn remove_stale_staging(root: &Path, stem: &str) {
    let Ok(mut rd) = tokio::fs::read_dir(root).await else {
        return;
    };
    while let Ok(Some(e)) = rd.next_entry().await {
        if e.file_name().to_string_lossy().starts_with(stem) {
            tracing::warn!(folder = %e.path().display(), "removing the staging folder of an interrupted restore");
            if let Err(err) = tokio::fs::remove_dir_all(e.path()).await {
                tracing::warn!(folder = %e.path().display(), error = %err, "could not remove it");
            }
        }
    }
}
