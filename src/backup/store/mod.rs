//! The backup store: an S3 bucket and prefix (`s3://bucket/prefix`, aws-sdk-s3) or a local
//! folder (`file:///path`) with the same layout. Keys are relative to the target.
//!
//! Uploads stream from the file: one PUT for small files, a multipart upload for large ones
//! whose parts are read from the file by offset, a few at a time, so memory stays constant
//! whatever the size. The file is hashed while its parts go out, and the upload is completed
//! only if it has the BLAKE3 the caller expects. Retries are the SDK's standard mode
//! (`backup.max_attempts`). Downloads ([`download`]) use ranged GETs in parallel into a
//! temporary file, hashed as it fills, then renamed.

mod download;
mod local;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::{ByteStream, Length};

/// Read size of an upload body. The SDK's default (4 KiB) costs one blocking-pool round trip
/// per 4 KiB, which left the uploader waiting on thread hand-offs; 256 KiB keeps the memory
/// per in-flight part small and the hand-offs rare.
const READ_BUF: usize = 256 * 1024;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::config::BackupConfig;
use crate::error::{Error, Result};
pub use download::RANGE_LEN;
pub use local::{LocalStore, hash_file};

/// Object metadata key holding the BLAKE3 of an object (`x-amz-meta-blake3`).
pub const META_BLAKE3: &str = "blake3";
/// Smallest multipart part; files up to this size go in one PUT.
pub const MIN_PART: u64 = 8 << 20;
/// Parts a file is split into at most (S3 allows 10 000; the rest is headroom).
pub const TARGET_PARTS: u64 = 9000;
const BUF: usize = 1 << 20;

/// Part size for a file of `size` bytes: at least [`MIN_PART`], at most
/// [`TARGET_PARTS`] parts, rounded up to whole MiB.
pub fn part_size(size: u64) -> u64 {
    let mib = 1u64 << 20;
    let per_part = size.div_ceil(TARGET_PARTS).div_ceil(mib) * mib;
    per_part.max(MIN_PART)
}

/// What the store knows of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 recorded with the object, if any.
    pub blake3: Option<String>,
    /// Entity tag or modification stamp (changes when the object is rewritten).
    pub version: String,
}

/// A backup target.
#[derive(Debug, Clone)]
pub enum Store {
    /// An S3 bucket and key prefix.
    S3(S3Store),
    /// A local folder.
    Local(LocalStore),
}

/// `s3://bucket/prefix`.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    part_concurrency: usize,
    /// Attempts per ranged GET whose body breaks off (the SDK retries the request itself).
    max_attempts: u32,
}

impl Store {
    /// The store named by `backup.target`.
    pub async fn open(cfg: &BackupConfig) -> Result<Store> {
        if let Some(path) = cfg.target.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(Error::Config(format!(
                    "key `backup.target`: `{}` must be file:///absolute/path",
                    cfg.target
                )));
            }
            return Ok(Store::Local(LocalStore {
                root: PathBuf::from(path),
            }));
        }
        let Some(rest) = cfg.target.strip_prefix("s3://") else {
            return Err(Error::Config(format!(
                "key `backup.target`: `{}` must start with s3:// or file://",
                cfg.target
            )));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Config(format!(
                "key `backup.target`: `{}` names no bucket",
                cfg.target
            )));
        }
        let loader = crate::aws::loader(cfg.region.as_deref(), cfg.endpoint.as_deref())
            .retry_config(RetryConfig::standard().with_max_attempts(cfg.max_attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .build(),
            );
        let shared = loader.load().await;
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(cfg.force_path_style)
            .build();
        Ok(Store::S3(S3Store {
            client: Client::from_conf(conf),
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            part_concurrency: cfg.part_concurrency.max(1),
            max_attempts: cfg.max_attempts.max(1),
        }))
    }

    /// Full name of `key`, for messages: `s3://bucket/prefix/key` or a path.
    pub fn describe(&self, key: &str) -> String {
        match self {
            Store::S3(s) => format!("s3://{}/{}", s.bucket, s.key(key)),
            Store::Local(l) => l.root.join(key).display().to_string(),
        }
    }

    /// Check the target is usable: the bucket exists and answers, or the folder exists and
    /// can be written (it is never created).
    pub async fn check(&self) -> Result<()> {
        match self {
            Store::S3(s) => s.check().await,
            Store::Local(l) => l.check().await,
        }
    }

    /// Size and recorded BLAKE3 of `key`, or None when absent.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        match self {
            Store::S3(s) => s.head(key).await,
            Store::Local(l) => l.head(key).await,
        }
    }

    /// Upload the file at `path` as `key`. The file must still have `size` bytes and BLAKE3
    /// `blake3` (what publish recorded): it is hashed while it is sent, and an upload of
    /// anything else is abandoned with [`Error::Conflict`] naming the file.
    pub async fn put_file(&self, key: &str, path: &Path, size: u64, blake3: &str) -> Result<()> {
        match self {
            Store::S3(s) => s.put_file(key, path, size, blake3).await,
            Store::Local(l) => l.put_file(key, path, size, blake3).await,
        }
    }

    /// Write a small object (the manifest) as `key`.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Store::S3(s) => s.put_bytes(key, bytes).await,
            Store::Local(l) => l.put_bytes(key, &bytes).await,
        }
    }

    /// Read a small object (the manifest); None when absent.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Store::S3(s) => s.get_bytes(key).await,
            Store::Local(l) => l.get_bytes(key).await,
        }
    }

    /// Download `key`, which should be `size` bytes, into `dest` (a temporary file beside
    /// it, renamed once complete); returns its size and BLAKE3.
    ///
    /// `dest` is not synced: downloads land in restore's staging folder, which only the
    /// downloading process reads (a crash leaves it to be removed, never reused), and
    /// publish syncs what it takes from it. Writeback starts while it downloads.
    pub async fn download(&self, key: &str, dest: &Path, size: u64) -> Result<(u64, String)> {
        match self {
            Store::S3(s) => s.download(key, dest, size).await,
            Store::Local(l) => l.download(key, Some(dest)).await,
        }
    }

    /// Size and BLAKE3 of the object `key`, streamed.
    pub async fn hash_object(&self, key: &str) -> Result<(u64, String)> {
        match self {
            Store::S3(s) => s.hash_object(key).await,
            Store::Local(l) => l.download(key, None).await,
        }
    }
}

/// A file that no longer has the size and BLAKE3 publish recorded.
pub(super) fn changed_file(
    path: &Path,
    size: u64,
    blake3: &str,
    want_size: u64,
    want: &str,
) -> Error {
    Error::Conflict(format!(
        "long-term file {} has {size} bytes, BLAKE3 {blake3}; publish recorded {want_size} bytes, BLAKE3 {want}: refusing to back up a changed file",
        path.display()
    ))
}

fn s3_err<E>(
    target: String,
) -> impl FnOnce(aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Error
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| Error::Store {
        target,
        reason: crate::error::aws_reason(&e),
    }
}

impl S3Store {
    fn key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn name(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(key))
    }

    async fn check(&self) -> Result<()> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Err(Error::Store {
                target: format!("s3://{}", self.bucket),
                reason: format!("bucket `{}` does not exist", self.bucket),
            }),
            Err(e) => Err(s3_err(format!("s3://{}", self.bucket))(e)),
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
        {
            Ok(o) => Ok(Some(ObjectInfo {
                size: o.content_length().unwrap_or(0).max(0) as u64,
                blake3: o.metadata().and_then(|m| m.get(META_BLAKE3).cloned()),
                version: o.e_tag().unwrap_or_default().to_string(),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(s3_err(self.name(key))(e)),
        }
    }

    /// `len` bytes of the file at `path` from `offset`, streamed as a request body.
    async fn body(&self, key: &str, path: &Path, offset: u64, len: u64) -> Result<ByteStream> {
        ByteStream::read_from()
            .path(path)
            .buffer_size(READ_BUF)
            .offset(offset)
            .length(Length::Exact(len))
            .build()
            .await
            .map_err(|e| Error::Store {
                target: self.name(key),
                reason: format!("read {} at {offset}: {e}", path.display()),
            })
    }

    async fn put_file(&self, key: &str, path: &Path, size: u64, blake3: &str) -> Result<()> {
        // The file's checksum, computed while it is sent (its parts are read from the same
        // page cache); a mismatch abandons the upload before it completes.
        let check = async {
            let (n, h) = hash_file(path).await?;
            if (n, h.as_str()) == (size, blake3) {
                Ok(())
            } else {
                Err(changed_file(path, n, &h, size, blake3))
            }
        };
        let part = part_size(size);
        if size <= part {
            // One small PUT cannot be abandoned half-way: check first.
            check.await?;
            let body = self.body(key, path, 0, size).await?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(self.key(key))
                .metadata(META_BLAKE3, blake3)
                .content_length(size as i64)
                .body(body)
                .send()
                .await
                .map_err(s3_err(self.name(key)))?;
            return Ok(());
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(self.key(key))
            .metadata(META_BLAKE3, blake3)
            .send()
            .await
            .map_err(s3_err(self.name(key)))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let result =
            futures::future::try_join(self.upload_parts(key, path, size, part, &upload_id), check)
                .await
                .map(|(parts, ())| parts);
        match result {
            Ok(parts) => {
                let t = std::time::Instant::now();
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(self.key(key))
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(s3_err(self.name(key)))?;
                tracing::debug!(object = %self.name(key), parts = size.div_ceil(part), seconds = t.elapsed().as_secs_f64(), "multipart upload completed");
                Ok(())
            }
            Err(e) => {
                // Best effort: the upload error is what the caller must see.
                if let Err(ae) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(self.key(key))
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(object = %self.name(key), error = %DisplayErrorContext(&ae), "could not abort a failed multipart upload");
                }
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        part: u64,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>> {
        let count = size.div_ceil(part);
        let mut parts: Vec<CompletedPart> = stream::iter(0..count)
            .map(|i| async move {
                let offset = i * part;
                let len = part.min(size - offset);
                let body = self.body(key, path, offset, len).await?;
                let number = (i + 1) as i32;
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(self.key(key))
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(len as i64)
                    .body(body)
                    .send()
                    .await
                    .map_err(s3_err(format!("{} part {number}", self.name(key))))?;
                Ok::<_, Error>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .build(),
                )
            })
            .buffer_unordered(self.part_concurrency)
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(s3_err(self.name(key)))?;
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Store {
            target: what.to_string(),
            reason: format!("worker failed: {e}"),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_fits_ten_thousand_parts() {
        assert_eq!(part_size(0), MIN_PART);
        assert_eq!(part_size(20 << 20), MIN_PART);
        let big = 128u64 << 30;
        let p = part_size(big);
        assert!(big.div_ceil(p) <= 10_000, "{p}");
        assert_eq!(p % (1 << 20), 0);
        assert!(p >= MIN_PART);
    }
}
