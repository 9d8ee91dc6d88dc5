//! The backup store: an S3 bucket and prefix (`s3://bucket/prefix`, aws-sdk-s3) or a local
//! folder (`file:///path`) with the same layout. Keys are relative to the target.
//!
//! Uploads stream from the file: one PUT for small files, a multipart upload for large ones
//! whose parts are read from the file by offset, a few at a time, so memory stays constant
//! whatever the size. Retries are the SDK's standard mode (`backup.max_attempts`).
//! Downloads stream into a temporary file while hashing (BLAKE3), then rename.

use std::io::{Read, Write};
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
}

/// `file:///path`.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
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
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(cfg.max_attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .build(),
            );
        if let Some(r) = &cfg.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(e) = &cfg.endpoint {
            loader = loader.endpoint_url(e.clone());
        }
        let shared = loader.load().await;
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(cfg.force_path_style)
            .build();
        Ok(Store::S3(S3Store {
            client: Client::from_conf(conf),
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            part_concurrency: cfg.part_concurrency.max(1),
        }))
    }

    /// Full name of `key`, for messages: `s3://bucket/prefix/key` or a path.
    pub fn describe(&self, key: &str) -> String {
        match self {
            Store::S3(s) => format!("s3://{}/{}", s.bucket, s.key(key)),
            Store::Local(l) => l.root.join(key).display().to_string(),
        }
    }

    /// Check the target is usable: the bucket exists and answers, or the folder can be
    /// created and written.
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

    /// Upload the file at `path` (`size` bytes, BLAKE3 `blake3`) as `key`.
    pub async fn put_file(&self, key: &str, path: &Path, size: u64, blake3: &str) -> Result<()> {
        match self {
            Store::S3(s) => s.put_file(key, path, size, blake3).await,
            Store::Local(l) => l.put_file(key, path).await,
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

    /// Download `key` into `dest` (temporary file, then rename) while hashing it;
    /// returns size and BLAKE3. With `dest` None the bytes are only hashed.
    ///
    /// `dest` is not synced: downloads land in restore's staging folder, which only the
    /// downloading process reads (a crash leaves it to be removed, never reused), and
    /// publish syncs what it copies out of it.
    pub async fn download(&self, key: &str, dest: Option<&Path>) -> Result<(u64, String)> {
        match self {
            Store::S3(s) => s.download(key, dest).await,
            Store::Local(l) => l.download(key, dest).await,
        }
    }
}

fn s3_err<E>(target: String) -> impl FnOnce(E) -> Error
where
    E: std::error::Error,
{
    move |e| Error::Store {
        target,
        reason: DisplayErrorContext(&e).to_string(),
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
        let part = part_size(size);
        if size <= part {
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
        let result = self.upload_parts(key, path, size, part, &upload_id).await;
        match result {
            Ok(parts) => {
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

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
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
        let bytes = out.body.collect().await.map_err(|e| Error::Store {
            target: self.name(key),
            reason: format!("read body: {e}"),
        })?;
        Ok(Some(bytes.to_vec()))
    }

    async fn download(&self, key: &str, dest: Option<&Path>) -> Result<(u64, String)> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_no_such_key() => Error::Store {
                    target: self.name(key),
                    reason: "object does not exist".into(),
                },
                _ => s3_err(self.name(key))(e),
            })?;
        let mut sink = Sink::create(dest, false)?;
        let mut body = out.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| Error::Store {
            target: self.name(key),
            reason: format!("read body: {e}"),
        })? {
            sink.write(&chunk)?;
        }
        sink.finish()
    }
}

/// A write destination: a temporary file beside `dest` (renamed at the end) or nothing,
/// hashing everything written.
struct Sink {
    file: Option<(std::fs::File, PathBuf, PathBuf)>,
    hasher: blake3::Hasher,
    size: u64,
    /// Sync the file before the rename (backup copies); downloads are scratch.
    durable: bool,
}

impl Sink {
    fn create(dest: Option<&Path>, durable: bool) -> Result<Sink> {
        let file = match dest {
            Some(d) => {
                if let Some(parent) = d.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| Error::io("create folder", parent, e))?;
                }
                let tmp = tmp_path(d);
                let f = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
                Some((f, tmp, d.to_path_buf()))
            }
            None => None,
        };
        Ok(Sink {
            file,
            hasher: blake3::Hasher::new(),
            size: 0,
            durable,
        })
    }

    fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        if let Some((f, tmp, _)) = self.file.as_mut() {
            f.write_all(chunk)
                .map_err(|e| Error::io("write", &*tmp, e))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(u64, String)> {
        if let Some((f, tmp, dest)) = self.file {
            if self.durable {
                f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
            }
            drop(f);
            std::fs::rename(&tmp, &dest).map_err(|e| Error::io("rename", &tmp, e))?;
        }
        Ok((self.size, self.hasher.finalize().to_hex().to_string()))
    }
}

fn tmp_path(dest: &Path) -> PathBuf {
    // `dest` is always a file path built from a key; without a name the temporary file is
    // still unique (dot, pid) beside it.
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Size and BLAKE3 of a local file, streamed.
pub async fn hash_file(path: &Path) -> Result<(u64, String)> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&p).map_err(|e| Error::io("open", &p, e))?;
        let mut sink = Sink::create(None, false)?;
        let mut buf = vec![0u8; BUF];
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io("read", &p, e))?;
            if n == 0 {
                break;
            }
            sink.write(&buf[..n])?;
        }
        sink.finish()
    })
    .await
    .map_err(|e| Error::Store {
        target: path.display().to_string(),
        reason: format!("hashing task failed: {e}"),
    })?
}

impl LocalStore {
    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    async fn check(&self) -> Result<()> {
        let root = self.root.clone();
        blocking(&root.display().to_string(), move || {
            std::fs::create_dir_all(&root)
                .map_err(|e| Error::io("create backup folder", &root, e))?;
            let probe = root.join(format!(".write-probe-{}", std::process::id()));
            std::fs::write(&probe, b"")
                .map_err(|e| Error::io("write to backup folder", &root, e))?;
            std::fs::remove_file(&probe).map_err(|e| Error::io("remove", &probe, e))
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let p = self.path(key);
        match tokio::fs::metadata(&p).await {
            Ok(m) => Ok(Some(ObjectInfo {
                size: m.len(),
                blake3: None,
                version: format!("{:?}", m.modified().ok()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("stat", p, e)),
        }
    }

    async fn put_file(&self, key: &str, src: &Path) -> Result<()> {
        let (src, dest) = (src.to_path_buf(), self.path(key));
        blocking(&dest.display().to_string(), move || {
            let mut input = std::fs::File::open(&src).map_err(|e| Error::io("open", &src, e))?;
            let mut sink = Sink::create(Some(&dest), true)?;
            let mut buf = vec![0u8; BUF];
            loop {
                let n = input
                    .read(&mut buf)
                    .map_err(|e| Error::io("read", &src, e))?;
                if n == 0 {
                    break;
                }
                sink.write(&buf[..n])?;
            }
            sink.finish().map(|_| ())
        })
        .await
    }

    async fn put_bytes(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path(key);
        let bytes = bytes.to_vec();
        blocking(&dest.display().to_string(), move || {
            let mut sink = Sink::create(Some(&dest), true)?;
            sink.write(&bytes)?;
            sink.finish().map(|_| ())
        })
        .await
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let p = self.path(key);
        match tokio::fs::read(&p).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", p, e)),
        }
    }

    async fn download(&self, key: &str, dest: Option<&Path>) -> Result<(u64, String)> {
        let src = self.path(key);
        let dest = dest.map(Path::to_path_buf);
        blocking(&src.display().to_string(), move || {
            let mut input = std::fs::File::open(&src).map_err(|e| Error::io("open", &src, e))?;
            let mut sink = Sink::create(dest.as_deref(), false)?;
            let mut buf = vec![0u8; BUF];
            loop {
                let n = input
                    .read(&mut buf)
                    .map_err(|e| Error::io("read", &src, e))?;
                if n == 0 {
                    break;
                }
                sink.write(&buf[..n])?;
            }
            sink.finish()
        })
        .await
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
