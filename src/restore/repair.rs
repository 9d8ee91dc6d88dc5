//! Repair of a day whose rows long-term holds but whose files are missing or different:
//! the affected segment folders are rebuilt from the backup and swapped in.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::holder;
use super::staging::{download_files, remove_stale_staging};
use crate::backup::manifest::{Manifest, ManifestFile};
use crate::backup::store::Store;
use crate::config::Config;
use crate::day::Day;
use crate::error::{Error, Result};
use crate::lock::Lease;
use crate::meta::MetaDb;
use crate::segments::{self, CopyOptions, Existing, SegmentRef};

/// Put back the damaged files of a day whose rows long-term holds: under the day's lease,
/// download every file of each affected segment folder from the backup (checked), build the
/// folder beside the old one and swap it in with a rename.
#[allow(clippy::too_many_arguments)]
pub(super) async fn repair_day(
    config: &Config,
    store: &Store,
    long: &MetaDb,
    long_storage: &Path,
    source: &str,
    target: &str,
    day: Day,
    m: &Manifest,
    damaged: &[(&ManifestFile, String)],
) -> Result<()> {
    let holder = holder();
    let lease = Lease::acquire_waiting(
        long,
        &format!("migrate/{target}/{day}"),
        &holder,
        config.lease_ttl(),
        config.lock_wait(),
    )
    .await?;
    let stem = format!(".milvus-tier-restore-{target}-{day}-");
    remove_stale_staging(long_storage, &stem).await;
    let staging = long_storage.join(format!("{stem}{}", std::process::id()));
    let result = async {
        let segs: BTreeSet<SegmentRef> = damaged
            .iter()
            .map(|(f, _)| SegmentRef::new(&f.table_id, &f.segment_id))
            .collect();
        let files: Vec<&ManifestFile> = m
            .files
            .iter()
            .filter(|f| segs.contains(&SegmentRef::new(&f.table_id, &f.segment_id)))
            .collect();
        let day_s = day.to_string();
        let downloaded = download_files(
            store,
            source,
            &day_s,
            &staging,
            files,
            config.limits.copy_concurrency,
        )
        .await?;
        let segs: Vec<SegmentRef> = segs.into_iter().collect();
        let opts = CopyOptions {
            concurrency: config.limits.copy_concurrency,
            include: Some(crate::segments::layout::result_filter(&m.table_files)),
            existing: Existing::Replace,
            fsync: true,
            prehashed: Some(Arc::new(downloaded)),
            ..CopyOptions::default()
        };
        // The repair writes temporary folders gc would remove: its day's lease makes it
        // visible to gc, and it writes only while no gc runs.
        crate::gc::wait_until_gc_ends(long, config.lock_wait()).await?;
        // Prove the lease is held right before touching long-term files.
        lease.fence().hold_now().await?;
        segments::copy_segments(&staging, long_storage, &segs, &opts).await?;
        for (_, why) in damaged {
            tracing::warn!(day = %day, file = %why, "repaired a long-term file from the backup");
        }
        Ok::<_, Error>(())
    }
    .await;
    if staging.exists()
        && let Err(e) = tokio::fs::remove_dir_all(&staging).await
    {
        tracing::warn!(folder = %staging.display(), error = %e, "could not remove the restore staging folder");
    }
    lease.release_after(result).await
}
