//! Re-hashing segments already on disk, and the one-line digest of a set of files.

use std::path::Path;
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use super::copy::{blocking, first_error};
use super::fsio::{self, Shared};
use super::{CopyError, FileDigest, SegmentRef, list_dir_files, normalize, segment_dir};

/// Hash every file (kept by `include`, if given) of the given segments under `root`,
/// `concurrency` files at once (0 is taken as 1). The result is sorted; a missing
/// segment is [`CopyError::MissingSegment`], and a file changing size while hashed is
/// [`CopyError::SizeChanged`].
pub async fn digest_segments(
    root: &Path,
    segments: &[SegmentRef],
    include: Option<&(dyn Fn(&str) -> bool + Send + Sync)>,
    concurrency: usize,
) -> Result<Vec<FileDigest>, CopyError> {
    let segs = normalize(root, segments)?;
    let mut jobs = Vec::new();
    for seg in segs {
        let dir = segment_dir(root, &seg);
        let files = {
            let d = dir.clone();
            blocking(&dir, move || list_dir_files(&d)).await?
        };
        for (name, _) in files {
            if include.is_none_or(|f| f(&name)) {
                jobs.push((seg.clone(), dir.join(&name), name));
            }
        }
    }
    let shared = Arc::new(Shared::new(None, false));
    let shared = &shared;
    let results: Vec<Result<FileDigest, CopyError>> = stream::iter(jobs)
        .map(|(seg, path, name)| async move {
            if shared.cancelled() {
                return Err(CopyError::Aborted { path });
            }
            let sh = Arc::clone(shared);
            let p = path.clone();
            let res = blocking(&path, move || fsio::hash_file(&p, &sh, false)).await;
            let (size, hash) = res.inspect_err(|_| shared.cancel())?;
            Ok(FileDigest {
                table_id: seg.table_id,
                segment_id: seg.segment_id,
                name,
                size,
                blake3: hash.to_hex().to_string(),
            })
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut digests = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(d) => digests.push(d),
            Err(e) => errors.push(e),
        }
    }
    if let Some(e) = first_error(errors) {
        return Err(e);
    }
    digests.sort();
    Ok(digests)
}

/// One BLAKE3 digest (lowercase hex) for a set of files, independent of their order:
/// the hash of the sorted lines `table_id \t segment_id \t name \t size \t blake3 \n`.
pub fn combined_digest(files: &[FileDigest]) -> String {
    let mut sorted: Vec<&FileDigest> = files.iter().collect();
    sorted.sort();
    let mut hasher = blake3::Hasher::new();
    for f in sorted {
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\n",
            f.table_id, f.segment_id, f.name, f.size, f.blake3
        );
        hasher.update(line.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}
