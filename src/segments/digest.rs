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
/// the hash of the lines `table_id \t segment_id \t name \t size \t blake3 \n`, sorted by
/// table id, segment id, name, size and BLAKE3 (strings bytewise). The fields and the order
/// are named here, not taken from [`FileDigest`]'s derives, so a field added to it cannot
/// change a recorded digest (`docs/digests.md`).
pub fn combined_digest(files: &[FileDigest]) -> String {
    let mut sorted: Vec<&FileDigest> = files.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.table_id, &a.segment_id, &a.name, a.size, &a.blake3).cmp(&(
            &b.table_id,
            &b.segment_id,
            &b.name,
            b.size,
            &b.blake3,
        ))
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The files digest of a fixed set of files, pinned: journals and manifests hold such
    /// values, so the encoding (docs/digests.md) never changes.
    #[test]
    fn combined_digest_is_pinned() {
        let f = |table: &str, seg: &str, name: &str, size: u64, bytes: &[u8]| FileDigest {
            table_id: table.into(),
            segment_id: seg.into(),
            name: name.into(),
            size,
            blake3: blake3::hash(bytes).to_hex().to_string(),
        };
        let files = vec![
            f("t2", "1", "a", 9, b"z"),
            f("t1", "2", "1.rv", 3, b"abc"),
            f("t1", "10", "1.uid", 20, b"q"),
            f("t1", "2", "1.uid", 100, b"r"),
        ];
        let digest = combined_digest(&files);
        assert_eq!(
            digest,
            "4d262fc6aa438d86309df08d0eec0e51176062a60750aad08a5a82b90ad481a9"
        );
        // Spelled out: one line per file, sorted by table, segment, name.
        let mut h = blake3::Hasher::new();
        for i in [2, 1, 3, 0] {
            let x = &files[i];
            h.update(
                format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    x.table_id, x.segment_id, x.name, x.size, x.blake3
                )
                .as_bytes(),
            );
        }
        assert_eq!(digest, h.finalize().to_hex().to_string());
    }
}
