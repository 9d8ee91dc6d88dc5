//! Reading objects from S3: small objects whole, checksums streamed, and downloads into a
//! file with ranged GETs. A download asks for [`RANGE_LEN`] bytes per GET, a few GETs at
//! once, and writes each at its offset; a follower thread hashes (BLAKE3) the file's
//! contiguous written prefix as it grows and starts its writeback, so hashing and the disk
//! keep pace with the network instead of following it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, mpsc};

use futures::stream::{self, StreamExt, TryStreamExt};

use super::local::tmp_path;
use super::{BUF, S3Store, blocking, s3_err};
use crate::error::{Error, Result};
use crate::segments::writeback;

/// Bytes asked for by one ranged GET.
pub const RANGE_LEN: u64 = 16 << 20;
/// Bytes gathered from a response before one positional write.
const WRITE_LEN: usize = 1 << 20;

/// Why a ranged GET failed: a body that broke off is worth asking for again.
enum Failure {
    Body(Error),
    Other(Error),
}

impl S3Store {
    pub(super) async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(s3_err(self.name(key))(e)),
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

    /// GET `key`, or the `range` of it.
    async fn get(
        &self,
        key: &str,
        range: Option<String>,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .set_range(range)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_no_such_key() => Error::Store {
                    target: self.name(key),
                    reason: "object does not exist".into(),
                },
                _ => s3_err(self.name(key))(e),
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
                // Read back by the follower, which hashes it.
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)
                    .map_err(|e| Error::io("create", &tmp, e))?;
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

    /// Fetch every range of `key` into `file` while the follower hashes it.
    async fn fill(
        &self,
        key: &str,
        file: &Arc<File>,
        path: &Path,
        size: u64,
    ) -> Result<(u64, String)> {
        let ranges = size.div_ceil(RANGE_LEN).max(1);
        let (tx, rx) = mpsc::channel::<u64>();
        let follower = {
            let (file, path) = (Arc::clone(file), path.to_path_buf());
            tokio::task::spawn_blocking(move || follow(&file, &path, size, &rx))
        };
        let fetched = async {
            let mut done = vec![false; ranges as usize];
            let mut next = 0usize;
            let mut pending = stream::iter(0..ranges)
                .map(|i| self.fetch_range(key, file, path, i, size))
                .buffer_unordered(self.part_concurrency);
            while let Some(i) = pending.try_next().await? {
                done[i as usize] = true;
                while next < done.len() && done[next] {
                    next += 1;
                }
                if tx.send((next as u64 * RANGE_LEN).min(size)).is_err() {
                    // The follower stopped on an error: it is reported below.
                    break;
                }
            }
            Ok::<_, Error>(())
        }
        .await;
        drop(tx);
        let hashed = follower.await.map_err(|e| Error::Store {
            target: path.display().to_string(),
            reason: format!("hashing task failed: {e}"),
        })?;
        fetched?;
        hashed
    }

    /// Fetch range `i` and write it at its offset, asking again (up to `max_attempts`)
    /// when the body breaks off. Returns `i`.
    async fn fetch_range(
        &self,
        key: &str,
        file: &Arc<File>,
        path: &Path,
        i: u64,
        size: u64,
    ) -> Result<u64> {
        let mut attempt = 1;
        loop {
            match self.fetch_once(key, file, path, i, size).await {
                Ok(()) => return Ok(i),
                Err(Failure::Body(e)) if attempt < self.max_attempts => {
                    tracing::warn!(object = %self.name(key), range = i, attempt, error = %e, "download broke off; asking again");
                    attempt += 1;
                }
                Err(Failure::Body(e) | Failure::Other(e)) => return Err(e),
            }
        }
    }

    async fn fetch_once(
        &self,
        key: &str,
        file: &Arc<File>,
        path: &Path,
        i: u64,
        size: u64,
    ) -> std::result::Result<(), Failure> {
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
        let (mut written, mut got) = (start, 0u64);
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
                let n = buf.len() as u64;
                buf = write_at(file, path, buf, written)
                    .await
                    .map_err(Failure::Other)?;
                written += n;
            }
        }
        if !buf.is_empty() {
            write_at(file, path, buf, written)
                .await
                .map_err(Failure::Other)?;
        }
        if got != len {
            return Err(Failure::Body(self.body_err(
                key,
                format!("{got} of the {len} bytes at offset {start}"),
            )));
        }
        Ok(())
    }
}

/// The object size in a `Content-Range: bytes a-b/size` header.
fn range_total(h: &str) -> Option<u64> {
    h.rsplit_once('/').and_then(|(_, t)| t.parse().ok())
}

/// Write `buf` at `offset` of `file` on a blocking thread; gives the buffer back, emptied.
async fn write_at(file: &Arc<File>, path: &Path, mut buf: Vec<u8>, offset: u64) -> Result<Vec<u8>> {
    let (file, p) = (Arc::clone(file), path.to_path_buf());
    blocking(&path.display().to_string(), move || {
        file.write_all_at(&buf, offset)
            .map_err(|e| Error::io("write", &p, e))?;
        buf.clear();
        Ok(buf)
    })
    .await
}

/// Hash `file` (`size` bytes) from the start, reading only below the offsets received (the
/// written prefix), and start its writeback as it goes. Fails if the sender goes away before
/// the end (the download failed).
fn follow(file: &File, path: &Path, size: u64, rx: &mpsc::Receiver<u64>) -> Result<(u64, String)> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; BUF];
    let mut pos = 0u64;
    let mut wb = writeback::Progress::default();
    while pos < size {
        let Ok(mut ready) = rx.recv() else {
            return Err(Error::Store {
                target: path.display().to_string(),
                reason: "download stopped before the end".into(),
            });
        };
        while let Ok(r) = rx.try_recv() {
            ready = r;
        }
        while pos < ready {
            let n = (ready - pos).min(BUF as u64) as usize;
            file.read_exact_at(&mut buf[..n], pos)
                .map_err(|e| Error::io("read", path, e))?;
            hasher.update(&buf[..n]);
            pos += n as u64;
            wb.advance(file, n as u64);
        }
    }
    Ok((size, hasher.finalize().to_hex().to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn range_total_reads_the_size() {
        assert_eq!(super::range_total("bytes 0-9/1234"), Some(1234));
        assert_eq!(super::range_total("bytes 0-9/*"), None);
    }
}
