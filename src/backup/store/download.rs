//! Reading objects from S3: small objects whole, checksums streamed, and downloads into a
//! file with ranged GETs. A download asks for [`RANGE_LEN`] bytes per GET, a few GETs at
//! once, and writes each at its offset. Each range is hashed as it arrives, as its own
//! BLAKE3 subtree (a range is a power-of-two multiple of BLAKE3's chunk, so it is exactly
//! one subtree of the file's hash tree); the subtrees are merged into the file's BLAKE3 at
//! the end. Hashing therefore runs in parallel like the GETs, and nothing is read back.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::local::tmp_path;
use super::{S3Store, blocking, s3_err};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{Policy, Retryable};
use crate::segments::writeback;

/// Bytes asked for by one ranged GET: a power of two (one BLAKE3 subtree).
pub const RANGE_LEN: u64 = 16 << 20;
/// Bytes gathered from a response before one positional write.
const WRITE_LEN: usize = 1 << 20;

/// Why a ranged GET failed: a body that broke off is worth asking for again.
enum Failure {
    Body(Error),
    Other(Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Body(e) | Failure::Other(e) => e.fmt(f),
        }
    }
}

impl Retryable for Failure {
    fn kind(&self) -> ErrorKind {
        match self {
            Failure::Body(e) | Failure::Other(e) => e.kind(),
        }
    }

    /// A body that broke off, when its kind is retryable. The request itself was already
    /// retried by the SDK (its standard mode, `backup.max_attempts` attempts); a size that
    /// disagrees or a local write that failed is not a transfer to ask for again.
    fn retryable(&self) -> bool {
        match self {
            Failure::Body(e) => e.kind().retryable(),
            Failure::Other(_) => false,
        }
    }
}

/// Waits before asking again for a range whose body broke off (attempts: `backup.max_attempts`).
const BODY_RETRY: Policy = Policy::new(Duration::from_millis(200), Duration::from_secs(5), 1);

impl S3Store {
    pub(super) async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let Some(out) = self.get_if_present(key, None).await? else {
            return Ok(None);
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| self.body_err(key, e))?;
        Ok(Some(bytes.to_vec()))
    }

    fn body_err(&self, key: &str, e: impl std::fmt::Display) -> Error {
        Error::Store {
            target: self.name(key),
            reason: format!("read body: {e}"),
        }
    }

    /// GET `key`, or the `range` of it; None when the object does not exist.
    async fn get_if_present(
        &self,
        key: &str,
        range: Option<String>,
    ) -> Result<Option<GetObjectOutput>> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .set_range(range)
            .send()
            .await
        {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(s3_err(self.name(key))(e)),
        }
    }

    /// GET `key`, or the `range` of it; an absent object is an error naming it.
    async fn get(&self, key: &str, range: Option<String>) -> Result<GetObjectOutput> {
        self.get_if_present(key, range)
            .await?
            .ok_or_else(|| Error::Store {
                target: self.name(key),
                reason: "object does not exist".into(),
            })
    }

    pub(super) async fn hash_object(&self, key: &str) -> Result<(u64, String)> {
        let mut body = self.get(key, None).await?.body;
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        while let Some(chunk) = body.try_next().await.map_err(|e| self.body_err(key, e))? {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((size, hasher.finalize().to_hex().to_string()))
    }

    pub(super) async fn download(
        &self,
        key: &str,
        dest: &Path,
        size: u64,
    ) -> Result<(u64, String)> {
        let tmp = tmp_path(dest);
        let file = {
            let (dest, tmp) = (dest.to_path_buf(), tmp.clone());
            blocking(&tmp.display().to_string(), move || {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| Error::io("create folder", parent, e))?;
                }
                let f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
                f.set_len(size).map_err(|e| Error::io("size", &tmp, e))?;
                Ok(Arc::new(f))
            })
            .await?
        };
        let result = self.fill(key, &file, &tmp, size).await;
        drop(file);
        let (tmp2, dest2) = (tmp.clone(), dest.to_path_buf());
        blocking(&tmp.display().to_string(), move || match result {
            Ok(r) => std::fs::rename(&tmp2, &dest2)
                .map(|()| r)
                .map_err(|e| Error::io("rename", &tmp2, e)),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp2);
                Err(e)
            }
        })
        .await
    }

    /// Fetch every range of `key` into `file`; size and BLAKE3 of the whole.
    async fn fill(
        &self,
        key: &str,
        file: &Arc<File>,
        path: &Path,
        size: u64,
    ) -> Result<(u64, String)> {
        let ranges = size.div_ceil(RANGE_LEN).max(1);
        let to = Download {
            key,
            file,
            path,
            size,
        };
        let mut hashed: Vec<(u64, blake3::Hasher)> = stream::iter(0..ranges)
            .map(|i| self.fetch_range(&to, i))
            .buffer_unordered(self.part_concurrency)
            .try_collect()
            .await?;
        let hash = if ranges == 1 {
            hashed[0].1.finalize()
        } else {
            hashed.sort_by_key(|(i, _)| *i);
            let cvs: Vec<ChainingValue> =
                hashed.iter().map(|(_, h)| h.finalize_non_root()).collect();
            merge_ranges(&cvs, size, RANGE_LEN)
        };
        Ok((size, hash.to_hex().to_string()))
    }

    /// Fetch range `i` and write it at its offset, asking again ([`BODY_RETRY`], up to
    /// `max_attempts` attempts) when the body breaks off. Returns `i` and the range's hasher (its subtree).
    async fn fetch_range(&self, to: &Download<'_>, i: u64) -> Result<(u64, blake3::Hasher)> {
        let policy = Policy {
            max_attempts: self.max_attempts,
            ..BODY_RETRY
        };
        let call = format!("GET {} range {i}", self.name(to.key));
        match policy.run(&call, |_| self.fetch_once(to, i)).await {
            Ok(h) => Ok((i, h)),
            Err(Failure::Body(e) | Failure::Other(e)) => Err(e),
        }
    }

    async fn fetch_once(
        &self,
        to: &Download<'_>,
        i: u64,
    ) -> std::result::Result<blake3::Hasher, Failure> {
        let Download {
            key,
            file,
            path,
            size,
        } = *to;
        let start = i * RANGE_LEN;
        let len = RANGE_LEN.min(size - start);
        // An empty object has no byte range to ask for.
        let range = (size > 0).then(|| format!("bytes={start}-{}", start + len - 1));
        let out = self.get(key, range).await.map_err(Failure::Other)?;
        if let Some(total) = out.content_range().and_then(range_total)
            && total != size
        {
            return Err(Failure::Other(Error::Conflict(format!(
                "backup object {} has {total} bytes; the manifest lists {size}",
                self.name(key)
            ))));
        }
        let mut body = out.body;
        let mut buf = Vec::with_capacity(WRITE_LEN);
        let mut hasher = blake3::Hasher::new();
        hasher.set_input_offset(start);
        let mut part = Part {
            file,
            path,
            start,
            written: start,
        };
        let mut got = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| Failure::Body(self.body_err(key, e)))?
        {
            got += chunk.len() as u64;
            if got > len {
                return Err(Failure::Other(Error::Conflict(format!(
                    "backup object {}: more than the {len} bytes asked for at offset {start} (it should have {size} bytes)",
                    self.name(key)
                ))));
            }
            buf.extend_from_slice(&chunk);
            if buf.len() >= WRITE_LEN {
                (buf, hasher) = part
                    .write(buf, hasher, false)
                    .await
                    .map_err(Failure::Other)?;
            }
        }
        if got != len {
            return Err(Failure::Body(self.body_err(
                key,
                format!("{got} of the {len} bytes at offset {start}"),
            )));
        }
        (_, hasher) = part
            .write(buf, hasher, true)
            .await
            .map_err(Failure::Other)?;
        Ok(hasher)
    }
}

/// One download: the object, the file it goes into, and the object's expected size.
#[derive(Clone, Copy)]
struct Download<'a> {
    key: &'a str,
    file: &'a Arc<File>,
    path: &'a Path,
    size: u64,
}

/// The object size in a `Content-Range: bytes a-b/size` header.
fn range_total(h: &str) -> Option<u64> {
    h.rsplit_once('/').and_then(|(_, t)| t.parse().ok())
}

/// The part of the file one range is written to.
struct Part<'a> {
    file: &'a Arc<File>,
    path: &'a Path,
    start: u64,
    written: u64,
}

impl Part<'_> {
    /// On a blocking thread: write `buf` after what is written, hash it, and with `last`
    /// start the range's writeback. Gives the buffer back, emptied, and the hasher.
    async fn write(
        &mut self,
        mut buf: Vec<u8>,
        mut hasher: blake3::Hasher,
        last: bool,
    ) -> Result<(Vec<u8>, blake3::Hasher)> {
        let (file, p, offset, start) = (
            Arc::clone(self.file),
            self.path.to_path_buf(),
            self.written,
            self.start,
        );
        self.written += buf.len() as u64;
        blocking(&self.path.display().to_string(), move || {
            file.write_all_at(&buf, offset)
                .map_err(|e| Error::io("write", &p, e))?;
            hasher.update(&buf);
            if last {
                writeback::start(&file, start, offset + buf.len() as u64 - start);
            }
            buf.clear();
            Ok((buf, hasher))
        })
        .await
    }
}

/// The BLAKE3 of `size` bytes from the chaining values of its consecutive `range_len`-byte
/// subtrees (at least two; `range_len` a power of two of at least one chunk, so every split
/// of the tree falls between ranges).
fn merge_ranges(cvs: &[ChainingValue], size: u64, range_len: u64) -> blake3::Hash {
    fn subtree(cvs: &[ChainingValue], len: u64, range_len: u64) -> ChainingValue {
        if cvs.len() == 1 {
            return cvs[0];
        }
        let (l, r) = halves(cvs, len, range_len);
        merge_subtrees_non_root(&l, &r, Mode::Hash)
    }
    fn halves(cvs: &[ChainingValue], len: u64, range_len: u64) -> (ChainingValue, ChainingValue) {
        let left = left_subtree_len(len);
        let n = (left / range_len) as usize;
        (
            subtree(&cvs[..n], left, range_len),
            subtree(&cvs[n..], len - left, range_len),
        )
    }
    let (l, r) = halves(cvs, size, range_len);
    merge_subtrees_root(&l, &r, Mode::Hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Range-by-range hashing equals BLAKE3 of the whole, for sizes around every boundary.
    #[test]
    fn merged_ranges_equal_the_whole_hash() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for range_len in [1024u64, 4096] {
            for size in [
                range_len + 1,
                2 * range_len - 1,
                2 * range_len,
                2 * range_len + 1,
                3 * range_len,
                5 * range_len + 17,
                8 * range_len,
                8 * range_len + 1,
                13 * range_len + 999,
                data.len() as u64,
            ] {
                let bytes = &data[..size as usize];
                let cvs: Vec<ChainingValue> = bytes
                    .chunks(range_len as usize)
                    .enumerate()
                    .map(|(i, c)| {
                        let mut h = blake3::Hasher::new();
                        h.set_input_offset(i as u64 * range_len);
                        h.update(c);
                        h.finalize_non_root()
                    })
                    .collect();
                assert_eq!(
                    merge_ranges(&cvs, size, range_len),
                    blake3::hash(bytes),
                    "size {size}, ranges of {range_len}"
                );
            }
        }
        assert_eq!(RANGE_LEN.count_ones(), 1, "a power of two");
    }

    #[test]
    fn range_total_reads_the_size() {
        assert_eq!(range_total("bytes 0-9/1234"), Some(1234));
        assert_eq!(range_total("bytes 0-9/*"), None);
    }
}
