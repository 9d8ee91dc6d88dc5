//! Backups of published days: upload (the last step of `migrate`, also `milvus-tier
//! backup`), `restore`, `verify` and `gc`.
//!
//! A day's backup lives under `<target>/<collection>/<YYYY-MM-DD>/`: every published file at
//! `files/<table_id>/<segment_id>/<name>` and `manifest.json` (rows and checksums), written
//! last. Uploads skip objects already present with the same size and checksum, so a rerun
//! after a crash sends only what is missing.

pub mod day;
pub mod manifest;
pub mod store;

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::journal::{Journal, State, Step};
use crate::meta::{FileRow, FileType, MetaDb, TableRow, TableState};
use crate::segments::layout::{PUBLISHED_TYPES, result_filter, segments_of};
use crate::segments::{self, FileDigest};
use manifest::{Manifest, ManifestFile, file_key, manifest_key};
use store::Store;

/// A published day as long-term holds it: rows and files.
#[derive(Debug, Clone)]
pub struct PublishedDay {
    /// The collection row.
    pub collection_row: TableRow,
    /// Partition rows of the day.
    pub tables: Vec<TableRow>,
    /// File rows (RAW, INDEX, BACKUP).
    pub files: Vec<FileRow>,
}

impl PublishedDay {
    /// Read the day's rows (partitions tagged `tag` of `collection`) from long-term.
    /// None when long-term holds no partition for the day.
    pub async fn read(long: &MetaDb, collection: &str, tag: &str) -> Result<Option<Self>> {
        let Some(collection_row) = long.collection(collection).await? else {
            return Err(Error::CollectionNotFound {
                collection: collection.to_string(),
                tier: "long-term".into(),
            });
        };
        let tables: Vec<TableRow> = long
            .partitions_tagged(collection, tag)
            .await?
            .into_iter()
            .filter(|t| t.state == TableState::Normal)
            .collect();
        if tables.is_empty() {
            return Ok(None);
        }
        let ids: Vec<String> = tables.iter().map(|t| t.table_id.clone()).collect();
        let files = long.files(&ids, PUBLISHED_TYPES).await?;
        Ok(Some(PublishedDay {
            collection_row,
            tables,
            files,
        }))
    }

    /// Hash the day's files on long-term storage (the names publish wrote), sorted.
    pub async fn digest_files(
        &self,
        storage: &Path,
        concurrency: usize,
    ) -> Result<Vec<FileDigest>> {
        let filter = result_filter(&self.files);
        Ok(segments::digest_segments(
            storage,
            &segments_of(&self.files),
            Some(&*filter),
            concurrency,
        )
        .await?)
    }
}

/// Table id, segment id, file name and size of each file, sorted.
type Listing = Vec<(String, String, String, u64)>;

fn listing_of(files: &[FileDigest]) -> Listing {
    let mut l: Listing = files
        .iter()
        .map(|f| {
            (
                f.table_id.clone(),
                f.segment_id.clone(),
                f.name.clone(),
                f.size,
            )
        })
        .collect();
    l.sort();
    l
}

impl PublishedDay {
    /// Names and sizes of the day's files on long-term storage (the names publish wrote),
    /// without reading them.
    async fn listing(&self, storage: &Path) -> Result<Listing> {
        let filter = result_filter(&self.files);
        let (segs, storage) = (segments_of(&self.files), storage.to_path_buf());
        let listed = tokio::task::spawn_blocking(move || {
            let mut out = Listing::new();
            for seg in &segs {
                for (name, size) in segments::list_segment_files(&storage, seg)? {
                    if filter(&name) {
                        out.push((seg.table_id.clone(), seg.segment_id.clone(), name, size));
                    }
                }
            }
            out.sort();
            Ok::<_, segments::CopyError>(out)
        })
        .await
        .map_err(|e| Error::Store {
            target: "long-term storage".into(),
            reason: format!("listing task failed: {e}"),
        })??;
        Ok(listed)
    }
}

/// What a day's backup did.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// Where the manifest is.
    pub manifest: String,
    /// Files in the backup.
    pub files: usize,
    /// Files uploaded now.
    pub uploaded: usize,
    /// Files already present (same size and checksum), not sent again.
    pub skipped: usize,
    /// Bytes uploaded now.
    pub bytes_uploaded: u64,
    /// Bytes of all files.
    pub bytes: u64,
    /// Vectors of the day (RAW + INDEX rows).
    pub rows: i64,
    /// Combined digest of the files.
    pub digest: String,
}

/// Everything one day's backup needs.
pub struct BackupInput<'a> {
    /// Long-term collection.
    pub collection: &'a str,
    /// The day, YYYY-MM-DD.
    pub day: &'a str,
    /// Long-term partition tag of the day.
    pub tag: &'a str,
    /// Long-term metadata.
    pub long: &'a MetaDb,
    /// Long-term storage path.
    pub long_storage: &'a Path,
    /// The journal (its publish entry holds the checksums recorded at publish time).
    pub journal: &'a Journal,
    /// Where to.
    pub store: &'a Store,
    /// Files uploaded at once.
    pub concurrency: usize,
}

/// Back up one published day: upload every file not already present, then the manifest.
pub async fn backup_day(input: &BackupInput<'_>) -> Result<BackupReport> {
    let Some(day) = PublishedDay::read(input.long, input.collection, input.tag).await? else {
        return Err(Error::NoPartition {
            collection: input.collection.to_string(),
            tag: input.tag.to_string(),
            day: input.day.to_string(),
            tier: "long-term".into(),
        });
    };
    let recorded = input
        .journal
        .get(input.collection, input.day, Step::Publish)
        .await?
        .filter(|p| p.state == State::Done)
        .map(|p| p.detail_files())
        .transpose()?;
    let digests = match recorded {
        // The files on disk are the ones publish recorded (names and sizes): use its
        // checksums, which the upload checks as it reads each file.
        Some(r) if day.listing(input.long_storage).await? == listing_of(&r) => r,
        recorded => {
            let found = day
                .digest_files(input.long_storage, input.concurrency)
                .await?;
            if let Some(r) = recorded {
                check_against_publish(input.long_storage, &found, &r)?;
            }
            found
        }
    };
    input.store.check().await?;

    let uploaded = AtomicUsize::new(0);
    let bytes_uploaded = AtomicU64::new(0);
    let (uploaded_ref, bytes_ref) = (&uploaded, &bytes_uploaded);
    let files: Vec<ManifestFile> = stream::iter(digests.iter())
        .map(|d| async move {
            let path = ManifestFile::path_of(&d.table_id, &d.segment_id, &d.name);
            let key = file_key(input.collection, input.day, &path);
            if !already_there(input.store, &key, d).await? {
                let local = file_path(input.long_storage, d);
                input
                    .store
                    .put_file(&key, &local, d.size, &d.blake3)
                    .await?;
                uploaded_ref.fetch_add(1, Ordering::Relaxed);
                bytes_ref.fetch_add(d.size, Ordering::Relaxed);
                failpoint("backup.after_file");
            }
            Ok::<_, Error>(ManifestFile {
                path,
                table_id: d.table_id.clone(),
                segment_id: d.segment_id.clone(),
                name: d.name.clone(),
                size: d.size,
                blake3: d.blake3.clone(),
            })
        })
        .buffer_unordered(input.concurrency.max(1))
        .try_collect()
        .await?;
    let mut files = files;
    files.sort_by(|a, b| a.path.cmp(&b.path));

    failpoint("backup.before_manifest");
    let digest = segments::combined_digest(&digests);
    let (rows_digest, collection_row_digest) =
        Manifest::rows_digests(&day.collection_row, &day.tables, &day.files);
    let manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        tool: env!("CARGO_PKG_NAME").to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: chrono::Utc::now(),
        collection: input.collection.to_string(),
        day: input.day.to_string(),
        rows_digest,
        collection_row_digest: Some(collection_row_digest),
        files_digest: digest.clone(),
        collection_row: day.collection_row.clone(),
        tables: day.tables.clone(),
        table_files: day.files.clone(),
        files,
    };
    let key = manifest_key(input.collection, input.day);
    input.store.put_bytes(&key, manifest.to_bytes()).await?;
    let uploaded = uploaded.into_inner();
    Ok(BackupReport {
        manifest: input.store.describe(&key),
        files: digests.len(),
        uploaded,
        skipped: digests.len() - uploaded,
        bytes_uploaded: bytes_uploaded.into_inner(),
        bytes: digests.iter().map(|d| d.size).sum(),
        rows: day
            .files
            .iter()
            .filter(|f| f.file_type != FileType::Backup)
            .map(|f| f.row_count)
            .sum(),
        digest,
    })
}

/// Whether `key` already holds the file `d` (same size and checksum).
async fn already_there(store: &Store, key: &str, d: &FileDigest) -> Result<bool> {
    let Some(info) = store.head(key).await? else {
        return Ok(false);
    };
    if info.size != d.size {
        return Ok(false);
    }
    match info.blake3 {
        Some(b) => Ok(b == d.blake3),
        // The folder store keeps no metadata: hash what is there.
        None => Ok(store.hash_object(key).await?.1 == d.blake3),
    }
}

/// Files on long-term storage must be those publish recorded: never back up a changed file.
fn check_against_publish(
    storage: &Path,
    found: &[FileDigest],
    recorded: &[FileDigest],
) -> Result<()> {
    for r in recorded {
        let path = file_path(storage, r);
        match found
            .iter()
            .find(|f| f.table_id == r.table_id && f.segment_id == r.segment_id && f.name == r.name)
        {
            Some(f) if f.size == r.size && f.blake3 == r.blake3 => {}
            Some(f) => {
                return Err(store::changed_file(
                    &path, f.size, &f.blake3, r.size, &r.blake3,
                ));
            }
            None => {
                return Err(Error::Conflict(format!(
                    "long-term file {} recorded by publish is missing",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Where the file `d` is on long-term storage.
fn file_path(storage: &Path, d: &FileDigest) -> std::path::PathBuf {
    segments::segment_dir(
        storage,
        &segments::SegmentRef::new(&d.table_id, &d.segment_id),
    )
    .join(&d.name)
}
