//! [`copy_segments`]: whole-folder copies through a hidden temporary folder and a rename.

use std::path::Path;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use super::fsio::{self, Shared};
use super::throttle::{Clock, SystemClock, Throttle};
use super::{
    CopyError, CopyOptions, CopyReport, Existing, FileDigest, SegmentRef, list_dir_files,
    normalize, segment_dir,
};
use crate::failpoint::failpoint;

/// State shared by every segment and file of one [`copy_segments`] call.
struct Run {
    shared: Arc<Shared>,
    /// Bounds the files being read at once, across all segments.
    permits: Arc<Semaphore>,
    concurrency: usize,
    /// Source files linked rather than copied.
    prehashed: Option<Arc<super::Prehashed>>,
}

/// What happened to one segment.
enum Outcome {
    Copied(Vec<FileDigest>),
    Skipped(Vec<FileDigest>),
}

/// Copy whole segment folders from `src_root` to `dst_root` (both Milvus storage roots).
///
/// `segments` is sorted and de-duplicated first. Each segment is copied into
/// `<dst>/db/tables/<table_id>/.<segment_id>.tmp` and renamed into place once complete;
/// see the [module documentation](super) for the guarantees, [`Existing`] for a
/// destination that is already there, and [`CopyOptions`] for the knobs. On error the
/// first failure is returned; no temporary folder of the call is left behind, and
/// segments completed before it stay in place.
pub async fn copy_segments(
    src_root: &Path,
    dst_root: &Path,
    segments: &[SegmentRef],
    opts: &CopyOptions,
) -> Result<CopyReport, CopyError> {
    copy_segments_on(src_root, dst_root, segments, opts, Arc::new(SystemClock)).await
}

/// [`copy_segments`] with the bandwidth cap keeping time on `clock`.
pub(super) async fn copy_segments_on(
    src_root: &Path,
    dst_root: &Path,
    segments: &[SegmentRef],
    opts: &CopyOptions,
    clock: Arc<dyn Clock>,
) -> Result<CopyReport, CopyError> {
    let segs = normalize(src_root, segments)?;
    let concurrency = opts.concurrency.max(1);
    let run = Run {
        shared: Arc::new(Shared {
            progress: opts.progress.clone(),
            throttle: opts
                .bandwidth_bytes_per_s
                .map(|rate| Throttle::with_clock(rate, clock)),
            ..Shared::new(None, opts.fsync)
        }),
        permits: Arc::new(Semaphore::new(concurrency)),
        concurrency,
        prehashed: opts.prehashed.clone(),
    };
    let run = &run;
    let outcomes: Vec<Result<Outcome, CopyError>> = stream::iter(segs)
        .map(|seg| async move {
            let res = copy_one(run, src_root, dst_root, &seg, opts).await;
            if res.is_err() {
                run.shared.cancel();
            }
            res
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;

    let mut report = CopyReport::default();
    let mut errors = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(Outcome::Copied(files)) => {
                report.segments_copied += 1;
                report.bytes_copied += files.iter().map(|f| f.size).sum::<u64>();
                report.files.extend(files);
            }
            Ok(Outcome::Skipped(files)) => {
                report.segments_skipped += 1;
                report.bytes_skipped += files.iter().map(|f| f.size).sum::<u64>();
                report.files.extend(files);
            }
            Err(e) => errors.push(e),
        }
    }
    if let Some(e) = first_error(errors) {
        return Err(e);
    }
    report.files.sort();
    Ok(report)
}

/// The first error that is not [`CopyError::Aborted`] (an abort only follows another
/// failure), or the first abort.
pub(super) fn first_error(errors: Vec<CopyError>) -> Option<CopyError> {
    let mut aborted = None;
    for e in errors {
        if matches!(e, CopyError::Aborted { .. }) {
            aborted.get_or_insert(e);
        } else {
            return Some(e);
        }
    }
    aborted
}

/// Run blocking file-system work on the blocking pool; `path` names it if the worker dies.
pub(super) async fn blocking<T, F>(path: &Path, f: F) -> Result<T, CopyError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CopyError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CopyError::Task {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?
}

/// Copy (or verify) one segment.
async fn copy_one(
    run: &Run,
    src_root: &Path,
    dst_root: &Path,
    seg: &SegmentRef,
    opts: &CopyOptions,
) -> Result<Outcome, CopyError> {
    let src_dir = segment_dir(src_root, seg);
    let mut files = {
        let dir = src_dir.clone();
        blocking(&src_dir, move || list_dir_files(&dir)).await?
    };
    if let Some(include) = &opts.include {
        files.retain(|(name, _)| include(name));
    }
    if run.shared.cancelled() {
        return Err(CopyError::Aborted { path: src_dir });
    }

    let dst_dir = segment_dir(dst_root, seg);
    let table_dir = dst_dir
        .parent()
        .expect("a segment folder has a parent")
        .to_path_buf();
    let dst_exists = {
        let d = dst_dir.clone();
        blocking(&dst_dir, move || fsio::exists(&d)).await?
    };
    if dst_exists && opts.existing == Existing::Verify {
        return verify(run, seg, &src_dir, &files, &dst_dir)
            .await
            .map(Outcome::Skipped);
    }

    let tmp = table_dir.join(format!(".{}.tmp", seg.segment_id));
    let old = table_dir.join(format!(".{}.old", seg.segment_id));
    let fsync = opts.fsync;
    let prepared = {
        let (table_dir, tmp, old) = (table_dir.clone(), tmp.clone(), old.clone());
        blocking(&table_dir.clone(), move || {
            fsio::create_dir_all_durable(&table_dir, fsync)?;
            // Leftovers of a crashed earlier run.
            fsio::remove_path(&tmp)?;
            fsio::remove_path(&old)?;
            std::fs::create_dir(&tmp).map_err(|e| CopyError::io("create folder", &tmp, e))
        })
        .await
    };
    let copied = match prepared {
        Ok(()) => copy_files(run, seg, &src_dir, &tmp, files).await,
        Err(e) => Err(e),
    };
    let digests = match copied {
        Ok(d) => d,
        Err(e) => {
            run.shared.cancel();
            cleanup(&tmp).await;
            return Err(e);
        }
    };

    let finished = {
        let (tmp, dst, old, table_dir) = (tmp.clone(), dst_dir.clone(), old, table_dir);
        blocking(&dst_dir, move || {
            finish(&tmp, &dst, &old, &table_dir, dst_exists, fsync)
        })
        .await
    };
    if let Err(e) = finished {
        cleanup(&tmp).await;
        return Err(e);
    }
    Ok(Outcome::Copied(digests))
}

/// Remove a temporary folder after a failure; the original error matters more than a
/// failure to clean up, which is only logged.
async fn cleanup(tmp: &Path) {
    let t = tmp.to_path_buf();
    if let Err(e) = blocking(tmp, move || fsio::remove_path(&t)).await {
        tracing::warn!("cannot remove temporary segment folder: {e}");
    }
}

/// Sync the complete temporary folder and rename it into place (swapping out an existing
/// destination when replacing).
fn finish(
    tmp: &Path,
    dst: &Path,
    old: &Path,
    table_dir: &Path,
    replace: bool,
    fsync: bool,
) -> Result<(), CopyError> {
    if fsync {
        fsio::fsync_dir(tmp)?;
    }
    failpoint("segments.before_rename");
    if replace {
        fsio::rename(dst, old)?;
    }
    if let Err(e) = fsio::rename(tmp, dst) {
        if replace {
            // Put the previous folder back rather than leave the name empty.
            let _ = std::fs::rename(old, dst);
        }
        return Err(e);
    }
    if fsync {
        fsio::fsync_dir(table_dir)?;
    }
    if replace && let Err(e) = fsio::remove_path(old) {
        // The new folder is in place; the hidden leftover is removed by the next copy.
        tracing::warn!("cannot remove replaced segment folder: {e}");
    }
    Ok(())
}

/// Copy every file of a segment into `tmp`, at most `concurrency` files at once across
/// the call. Waits for all started copies before returning, so the caller may remove
/// `tmp` safely.
async fn copy_files(
    run: &Run,
    seg: &SegmentRef,
    src_dir: &Path,
    tmp: &Path,
    files: Vec<(String, u64)>,
) -> Result<Vec<FileDigest>, CopyError> {
    let results: Vec<Result<FileDigest, CopyError>> = stream::iter(files)
        .map(|(name, _)| {
            let src = src_dir.join(&name);
            let dst = tmp.join(&name);
            let known = run.prehashed.as_ref().and_then(|p| p.get(&src)).copied();
            async move {
                let (size, hash) = with_permit(run, &src, {
                    let shared = Arc::clone(&run.shared);
                    let src = src.clone();
                    move || match known {
                        Some(k) => fsio::link_file(&src, &dst, k, &shared),
                        None => fsio::copy_file(&src, &dst, &shared),
                    }
                })
                .await?;
                Ok(FileDigest {
                    table_id: seg.table_id.clone(),
                    segment_id: seg.segment_id.clone(),
                    name,
                    size,
                    blake3: hash.to_hex().to_string(),
                })
            }
        })
        .buffer_unordered(run.concurrency)
        .collect()
        .await;
    collect(results)
}

/// Run blocking work on `path` once a file permit is free, unless the call was cancelled;
/// a failure cancels the rest of the call.
async fn with_permit<T, F>(run: &Run, path: &Path, f: F) -> Result<T, CopyError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CopyError> + Send + 'static,
{
    let aborted = || CopyError::Aborted {
        path: path.to_path_buf(),
    };
    if run.shared.cancelled() {
        return Err(aborted());
    }
    let _permit = run.permits.acquire().await.map_err(|_| aborted())?;
    if run.shared.cancelled() {
        return Err(aborted());
    }
    let res = blocking(path, f).await;
    if res.is_err() {
        run.shared.cancel();
    }
    res
}

/// All values, sorted, or the first real error.
fn collect<T: Ord>(results: Vec<Result<T, CopyError>>) -> Result<Vec<T>, CopyError> {
    let mut ok = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => errors.push(e),
        }
    }
    if let Some(e) = first_error(errors) {
        return Err(e);
    }
    ok.sort();
    Ok(ok)
}

/// Compare an existing destination segment folder with the source files; identical
/// means the digests of its files, different is a [`CopyError::Conflict`].
async fn verify(
    run: &Run,
    seg: &SegmentRef,
    src_dir: &Path,
    files: &[(String, u64)],
    dst_dir: &Path,
) -> Result<Vec<FileDigest>, CopyError> {
    let dst_files = {
        let d = dst_dir.to_path_buf();
        blocking(dst_dir, move || list_dir_files(&d)).await?
    };
    let conflict = |detail: String| CopyError::Conflict {
        path: dst_dir.to_path_buf(),
        detail,
    };
    if let Some(detail) = listing_difference(files, &dst_files) {
        return Err(conflict(detail));
    }
    type Pair = (String, u64, [u8; 32], u64, [u8; 32]);
    let results: Vec<Result<Pair, CopyError>> = stream::iter(files.iter().cloned())
        .map(|(name, _)| {
            let src = src_dir.join(&name);
            let dst = dst_dir.join(&name);
            async move {
                let shared = Arc::clone(&run.shared);
                let s = src.clone();
                let ((ss, sh), (ds, dh)) = with_permit(run, &src, move || {
                    Ok((
                        fsio::hash_file(&s, &shared, true)?,
                        fsio::hash_file(&dst, &shared, false)?,
                    ))
                })
                .await?;
                Ok((name, ss, *sh.as_bytes(), ds, *dh.as_bytes()))
            }
        })
        .buffer_unordered(run.concurrency)
        .collect()
        .await;
    let pairs = collect(results)?;
    let mut digests = Vec::with_capacity(pairs.len());
    for (name, ss, sh, ds, dh) in pairs {
        if ss != ds {
            return Err(conflict(format!(
                "file {name}: {ss} bytes in the source, {ds} at the destination"
            )));
        }
        if sh != dh {
            return Err(conflict(format!(
                "file {name}: content differs (source blake3 {}, destination {})",
                blake3::Hash::from_bytes(sh).to_hex(),
                blake3::Hash::from_bytes(dh).to_hex()
            )));
        }
        digests.push(FileDigest {
            table_id: seg.table_id.clone(),
            segment_id: seg.segment_id.clone(),
            name,
            size: ss,
            blake3: blake3::Hash::from_bytes(sh).to_hex().to_string(),
        });
    }
    Ok(digests)
}

/// The first difference (in name order) between two sorted listings, if any.
fn listing_difference(src: &[(String, u64)], dst: &[(String, u64)]) -> Option<String> {
    let (mut i, mut j) = (0, 0);
    loop {
        match (src.get(i), dst.get(j)) {
            (None, None) => return None,
            (Some((s, _)), None) => return Some(format!("file {s} is missing")),
            (None, Some((d, _))) => return Some(format!("file {d} is not in the source")),
            (Some((s, ss)), Some((d, ds))) => match s.cmp(d) {
                std::cmp::Ordering::Less => return Some(format!("file {s} is missing")),
                std::cmp::Ordering::Greater => {
                    return Some(format!("file {d} is not in the source"));
                }
                std::cmp::Ordering::Equal if ss != ds => {
                    return Some(format!(
                        "file {s}: {ss} bytes in the source, {ds} at the destination"
                    ));
                }
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
            },
        }
    }
}
