//! Step 4, publish: copy the engine's result folders to long-term storage (temporary name,
//! fsync, rename; existing identical folders are verified and kept), then insert the rows into
//! long-term metadata together with the journal's `publish done` entry in one transaction.
//!
//! Before copying, the journal records which folders this run will write, so a rerun after a
//! crash removes folders no committed row references. The same code publishes a restored
//! backup.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::journal::{Entry, Journal, PublishDetail, State, Step, now_micros};
use crate::lock::Lease;
use crate::meta::{FileRow, FileType, MetaDb, TableRow, WriteMode, rows_digest};
use crate::segments::layout::{result_filter, segments_of};
use crate::segments::{self, CopyOptions, Existing, FileDigest, Prehashed, ProgressFn};

/// What publish did.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    /// Files published, with BLAKE3.
    pub files: Vec<FileDigest>,
    /// Combined digest of `files`.
    pub digest: String,
    /// Digest of the rows inserted.
    pub rows_digest: String,
    /// Bytes copied (0 for folders already present and verified).
    pub bytes_copied: u64,
    /// Bytes already present and verified.
    pub bytes_verified: u64,
    /// Rows inserted (Tables + TableFiles).
    pub rows_inserted: usize,
}

/// Everything publish needs.
pub struct PublishInput<'a> {
    /// Long-term collection name.
    pub collection: &'a str,
    /// The day, YYYY-MM-DD.
    pub day: &'a str,
    /// Partition rows to insert (long-term form).
    pub tables: &'a [TableRow],
    /// File rows to insert.
    pub files: &'a [FileRow],
    /// Where the files are now (engine storage, or a restored backup's staging folder).
    pub source_storage: &'a Path,
    /// Long-term storage path.
    pub long_storage: &'a Path,
    /// Long-term metadata.
    pub long: &'a MetaDb,
    /// The journal.
    pub journal: &'a Journal,
    /// This run's lease: fences the folder cleanup, the copy and the publish transaction.
    pub lease: &'a Lease,
    /// This run's id.
    pub run_id: &'a str,
    /// Files copied at once.
    pub concurrency: usize,
    /// Bandwidth cap, bytes/s.
    pub bandwidth: Option<u64>,
    /// Told the bytes copied or verified.
    pub progress: Option<ProgressFn>,
    /// Source files already hashed on long-term's file system (a restore's downloads):
    /// linked, not copied.
    pub prehashed: Option<Arc<Prehashed>>,
    /// How long to wait for a running gc to end before writing folders (then a retryable
    /// error, nothing written).
    pub gc_wait: Duration,
}

/// Every result segment folder holds `deleted_docs`: Milvus cannot load a segment without
/// it (`SegmentReader::LoadDeletedDocs`), so long-term would fail every search of the day.
fn require_deleted_docs(root: &Path, segs: &[segments::SegmentRef]) -> Result<()> {
    for s in segs {
        let dir = root
            .join("db")
            .join("tables")
            .join(&s.table_id)
            .join(&s.segment_id);
        if !dir.join("deleted_docs").is_file() {
            return Err(Error::BadInput(format!(
                "segment folder {} has no deleted_docs; Milvus cannot load a segment without it, refusing to publish it",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Publish one day.
pub async fn publish(input: &PublishInput<'_>) -> Result<PublishReport> {
    let segs = segments_of(input.files);
    let seg_names: Vec<String> = segs
        .iter()
        .map(|s| format!("{}/{}", s.table_id, s.segment_id))
        .collect();
    let digest_rows = rows_digest(input.tables, input.files);
    require_deleted_docs(input.source_storage, &segs)?;
    clean_crashed_publish(input, &seg_names).await?;

    let started = now_micros();
    let mut entry = Entry {
        collection: input.collection.to_string(),
        day: input.day.to_string(),
        step: Step::Publish,
        state: State::Running,
        run_id: input.run_id.to_string(),
        started_at: started,
        updated_at: started,
        finished_at: None,
        files: 0,
        rows: 0,
        bytes: 0,
        checksum_digest: String::new(),
        detail: Some(detail(&digest_rows, &seg_names, &[])),
    };
    input.journal.put(&entry).await?;
    failpoint("publish.before_copy");
    // gc removes folders no row references yet. Now that this publish is visible to gc
    // (its day's lease, its running entry), write only while no gc runs.
    crate::gc::wait_until_gc_ends(input.long, input.gc_wait).await?;

    let opts = CopyOptions {
        concurrency: input.concurrency,
        bandwidth_bytes_per_s: input.bandwidth,
        include: Some(result_filter(input.files)),
        existing: Existing::Verify,
        fsync: true,
        progress: input.progress.clone(),
        prehashed: input.prehashed.clone(),
    };
    // Files on long-term storage cannot be fenced by the database: prove the lease is held
    // right before writing them (a run that lost it stops here).
    input.lease.fence().hold_now().await?;
    let copied =
        segments::copy_segments(input.source_storage, input.long_storage, &segs, &opts).await?;
    failpoint("publish.after_copy");
    let files_digest = segments::combined_digest(&copied.files);

    let db = input.long;
    let mut tx = db
        .begin_write()
        .await
        .map_err(db.err("begin publish transaction"))?;
    // The fencing token: the lease row stays locked by this transaction until it commits,
    // so the rows go in only while this run holds the lease.
    input.lease.fence().hold(&mut tx).await?;
    let foreign = db
        .foreign_rows_of_day_in(&mut tx, input.tables, input.files)
        .await?;
    if !foreign.is_empty() {
        tx.rollback().await.map_err(db.err("roll back publish"))?;
        return Err(Error::Conflict(format!(
            "long-term already holds day {} from another build: {}; this build's partition is {}; refusing to publish it twice",
            input.day,
            foreign.join(", "),
            input
                .tables
                .iter()
                .map(|t| t.table_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let report = db
        .write_rows_in(
            &mut tx,
            input.tables,
            input.files,
            WriteMode::InsertIfAbsent,
        )
        .await?;
    if !report.committed {
        tx.rollback().await.map_err(db.err("roll back publish"))?;
        return Err(Error::Conflict(format!(
            "long-term rows changed while day {} was being published: {}",
            input.day,
            report.conflicts().join(", ")
        )));
    }
    let now = now_micros();
    entry.state = State::Done;
    entry.updated_at = now;
    entry.finished_at = Some(now);
    entry.files = input.files.len() as i64;
    entry.rows = input
        .files
        .iter()
        .filter(|f| f.file_type != FileType::Backup)
        .map(|f| f.row_count)
        .sum();
    entry.bytes = copied.files.iter().map(|f| f.size as i64).sum();
    entry.checksum_digest = files_digest.clone();
    entry.detail = Some(detail(&digest_rows, &seg_names, &copied.files));
    input.journal.put_in(&mut tx, &entry).await?;
    failpoint("publish.before_commit");
    tx.commit()
        .await
        .map_err(db.err("commit publish transaction"))?;
    failpoint("publish.after_commit");
    let (inserted, ..) = report.counts();
    Ok(PublishReport {
        files: copied.files,
        digest: files_digest,
        rows_digest: digest_rows,
        bytes_copied: copied.bytes_copied,
        bytes_verified: copied.bytes_skipped,
        rows_inserted: inserted,
    })
}

fn detail(rows_digest: &str, segments: &[String], files: &[FileDigest]) -> String {
    serde_json::to_string(&PublishDetail {
        rows_digest: rows_digest.to_string(),
        segments: segments.to_vec(),
        files: files.to_vec(),
    })
    .expect("detail serializes")
}

/// A crashed publish of this day may have left folders that no committed row references
/// (its build produced other file ids than this run's): remove them.
async fn clean_crashed_publish(input: &PublishInput<'_>, ours: &[String]) -> Result<()> {
    let Some(prev) = input
        .journal
        .get(input.collection, input.day, Step::Publish)
        .await?
    else {
        return Ok(());
    };
    if prev.state == State::Done {
        return Ok(());
    }
    let referenced: BTreeSet<String> = {
        let mut ids: Vec<String> = prev
            .detail_segments()?
            .iter()
            .filter_map(|s| s.split('/').next().map(str::to_string))
            .collect();
        ids.sort();
        ids.dedup();
        input
            .long
            .files(&ids, &[])
            .await?
            .iter()
            .map(|f| format!("{}/{}", f.table_id, f.segment_id))
            .collect()
    };
    for seg in prev.detail_segments()? {
        remove_copy_debris(input, &seg).await?;
        if ours.contains(&seg) || referenced.contains(&seg) {
            continue;
        }
        let dir = input.long_storage.join("db").join("tables").join(&seg);
        if dir.exists() {
            failpoint("publish.clean");
            // Only the lease holder cleans: a run that lost its lease must not delete the
            // folders of the run that holds it now.
            input.lease.fence().hold_now().await?;
            tracing::warn!(folder = %dir.display(), "removing a segment folder left by an interrupted publish");
            tokio::fs::remove_dir_all(&dir)
                .await
                .map_err(|e| Error::io("remove", &dir, e))?;
        }
    }
    Ok(())
}

/// Remove the hidden temporary folders (`.<segment>.tmp`, `.<segment>.old`) a killed copy
/// of segment `table_id/segment_id` left in long-term storage, holding the lease.
async fn remove_copy_debris(input: &PublishInput<'_>, seg: &str) -> Result<()> {
    let Some((table, segment)) = seg.split_once('/') else {
        return Ok(());
    };
    // Only plain names from the journal become paths.
    let plain = |s: &str| !s.is_empty() && !s.starts_with('.') && !s.contains(['/', '\\', '\0']);
    if !plain(table) || !plain(segment) {
        return Ok(());
    }
    let table_dir = input.long_storage.join("db").join("tables").join(table);
    for name in [format!(".{segment}.tmp"), format!(".{segment}.old")] {
        let dir = table_dir.join(name);
        if tokio::fs::symlink_metadata(&dir).await.is_err() {
            continue;
        }
        input.lease.fence().hold_now().await?;
        tracing::warn!(folder = %dir.display(), "removing a temporary folder left by an interrupted publish");
        let removed = if tokio::fs::symlink_metadata(&dir)
            .await
            .is_ok_and(|m| m.is_dir())
        {
            tokio::fs::remove_dir_all(&dir).await
        } else {
            tokio::fs::remove_file(&dir).await
        };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", &dir, e));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_segment_without_deleted_docs_is_bad_input() {
        let root = tempfile::tempdir().unwrap();
        let seg = segments::SegmentRef {
            table_id: "7".into(),
            segment_id: "9".into(),
        };
        let dir = root.path().join("db/tables/7/9");
        std::fs::create_dir_all(&dir).unwrap();
        let err = require_deleted_docs(root.path(), std::slice::from_ref(&seg)).unwrap_err();
        assert!(matches!(err, Error::BadInput(_)), "{err}");
        assert!(
            err.to_string().contains(&dir.display().to_string()),
            "{err}"
        );
        std::fs::write(dir.join("deleted_docs"), 0u64.to_le_bytes()).unwrap();
        require_deleted_docs(root.path(), &[seg]).unwrap();
    }
}
