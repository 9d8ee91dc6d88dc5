//! Segment-folder copier: copies whole Milvus 1.1.1 segment folders between storage roots.
//!
//! Milvus 1.1.1 keeps the files of a segment under
//! `<storage.path>/db/tables/<table_id>/<segment_id>/`: `<file_id>.rv`, `<file_id>.uid`,
//! `deleted_docs`, `bloom_filter`, and index files named by a bare numeric file id. The
//! migrator copies such folders from short-term storage into a local engine ("stage") and
//! from the local engine to long-term storage ("publish").
//!
//! # Guarantees
//! - **All or nothing.** Each segment is written into a hidden sibling
//!   `<table_id>/.<segment_id>.tmp` (a stale one left by a crash is removed first), then
//!   renamed to `<segment_id>`. A destination segment folder therefore either does not
//!   exist or is complete. With [`CopyOptions::fsync`] every file and the temporary folder
//!   are synced before the rename, and the parent folder after it.
//! - **One read.** Every file is hashed with BLAKE3 while it is copied; the size read must
//!   equal the size the source had when it was opened, otherwise the copy fails naming the
//!   file ([`CopyError::SizeChanged`]).
//! - **Constant memory.** Files are streamed through one reused buffer per copy
//!   ([`BUF_LEN`]); at most [`CopyOptions::concurrency`] files are read at once across all
//!   segments of a call.
//! - **Linking verified scratch files.** With [`CopyOptions::prehashed`], files the caller
//!   already wrote and hashed on the destination's file system are hard-linked, not
//!   copied (restore downloads next to long-term storage, then publishes).
//! - **Bandwidth cap.** [`CopyOptions::bandwidth_bytes_per_s`] drives a token bucket
//!   shared by every concurrent copy of a call; it counts bytes read from the source
//!   (copies and the source side of verifications). Uncapped copies never sleep.
//! - **Resumable.** With [`Existing::Verify`] a segment already present at the destination
//!   is re-hashed and compared with the source: identical means done (skipped), different
//!   is a [`CopyError::Conflict`]. With [`Existing::Replace`] it is copied again and swapped
//!   in (old folder renamed to `.<segment_id>.old`, new one renamed into place, old one
//!   removed).
//! - **Fail fast.** The first error stops the other copies of the call at their next
//!   buffer; every unfinished temporary folder is removed before the error is returned.
//!   Segments completed before the error stay in place (they are complete).
//!
//! # Failpoints
//! For crash tests (see [`crate::failpoint`]): `segments.after_file` fires after each file
//! is written (and synced), `segments.before_rename` just before each temporary folder is
//! renamed into place. Setting `MILVUS_TIER_FAILPOINT` to one of them aborts the process
//! there.

mod copy;
mod digest;
mod fsio;
pub mod layout;
mod throttle;
pub(crate) mod writeback;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fail;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use copy::copy_segments;
pub use digest::{combined_digest, digest_segments};

/// Size of the buffer each file copy streams through.
pub const BUF_LEN: usize = 2 * 1024 * 1024;

/// One segment: a folder `db/tables/<table_id>/<segment_id>` under a storage root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SegmentRef {
    /// Milvus table id (a collection or partition table name).
    pub table_id: String,
    /// Milvus segment id.
    pub segment_id: String,
}

impl SegmentRef {
    /// A segment reference from its table and segment ids.
    pub fn new(table_id: impl Into<String>, segment_id: impl Into<String>) -> Self {
        SegmentRef {
            table_id: table_id.into(),
            segment_id: segment_id.into(),
        }
    }
}

impl fmt::Display for SegmentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.table_id, self.segment_id)
    }
}

/// The folder holding a segment's files: `<storage_root>/db/tables/<table_id>/<segment_id>`.
pub fn segment_dir(storage_root: &Path, seg: &SegmentRef) -> PathBuf {
    storage_root
        .join("db")
        .join("tables")
        .join(&seg.table_id)
        .join(&seg.segment_id)
}

/// Size and BLAKE3 digest of one file of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileDigest {
    /// Milvus table id.
    pub table_id: String,
    /// Milvus segment id.
    pub segment_id: String,
    /// File name inside the segment folder.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 digest, lowercase hex.
    pub blake3: String,
}

/// What to do when a destination segment folder already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Existing {
    /// Re-hash it: identical to the source means done (skipped); different is a
    /// [`CopyError::Conflict`] naming the folder and the first differing file. Only the
    /// source files kept by [`CopyOptions::include`] are compared, and any other file in
    /// the destination folder counts as a difference.
    #[default]
    Verify,
    /// Copy the segment again and swap the new folder in.
    Replace,
}

/// A file-name filter: `true` keeps the file.
pub type IncludeFn = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// How [`copy_segments`] copies.
#[derive(Clone)]
pub struct CopyOptions {
    /// Files copied at once, across all segments of the call (0 is taken as 1).
    pub concurrency: usize,
    /// Cap on bytes read per second, shared by all concurrent copies; `None` = no cap.
    pub bandwidth_bytes_per_s: Option<u64>,
    /// File-name filter applied to every segment folder; `None` copies all files.
    pub include: Option<IncludeFn>,
    /// What to do with a destination segment folder that already exists.
    pub existing: Existing,
    /// Sync each file and the folder before the rename, and the parent after it (for
    /// publishing); `false` for scratch destinations.
    pub fsync: bool,
    /// Told the bytes of every buffer read (copied or verified), for progress display.
    pub progress: Option<ProgressFn>,
    /// Source files the caller wrote and hashed itself on the destination's file system
    /// (restore's verified downloads): each is hard-linked into the temporary folder
    /// instead of copied, and its recorded size and digest stand for it (the size is
    /// checked). Where linking fails (another file system) the file is copied.
    pub prehashed: Option<Arc<Prehashed>>,
}

/// Size and BLAKE3 of source files, by path; see [`CopyOptions::prehashed`].
pub type Prehashed = std::collections::HashMap<PathBuf, (u64, blake3::Hash)>;

/// A progress callback: bytes just handled.
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            concurrency: 4,
            bandwidth_bytes_per_s: None,
            include: None,
            existing: Existing::Verify,
            fsync: false,
            progress: None,
            prehashed: None,
        }
    }
}

impl fmt::Debug for CopyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyOptions")
            .field("concurrency", &self.concurrency)
            .field("bandwidth_bytes_per_s", &self.bandwidth_bytes_per_s)
            .field("include", &self.include.as_ref().map(|_| "<filter>"))
            .field("existing", &self.existing)
            .field("fsync", &self.fsync)
            .field("progress", &self.progress.as_ref().map(|_| "<callback>"))
            .field("prehashed", &self.prehashed.as_ref().map(|p| p.len()))
            .finish()
    }
}

/// What [`copy_segments`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReport {
    /// Every file of every segment (copied or verified), sorted.
    pub files: Vec<FileDigest>,
    /// Bytes written to the destination.
    pub bytes_copied: u64,
    /// Bytes of segments found identical at the destination and left alone.
    pub bytes_skipped: u64,
    /// Segments copied.
    pub segments_copied: usize,
    /// Segments already present and identical.
    pub segments_skipped: usize,
}

/// Every failure of the segment copier; each one names the path at fault.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A segment folder does not exist.
    #[error("segment folder {path} does not exist")]
    MissingSegment {
        /// The missing folder.
        path: PathBuf,
    },

    /// A segment id is unusable as a folder name, or its path is not a folder.
    #[error("segment folder {path}: {reason}")]
    InvalidSegment {
        /// The segment folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A segment folder holds something other than a regular file with a UTF-8 name.
    #[error("{path}: {reason}")]
    UnsupportedEntry {
        /// The entry.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// An I/O operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// Operation (open, read, write, fsync, rename...).
        op: &'static str,
        /// File or folder involved.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },

    /// A source file changed size while it was being copied or hashed.
    #[error("{path}: size changed while reading ({expected} bytes when opened, {actual} read)")]
    SizeChanged {
        /// The source file.
        path: PathBuf,
        /// Size when opened.
        expected: u64,
        /// Bytes actually read (at least this many when the file grew).
        actual: u64,
    },

    /// A destination segment folder exists and differs from the source.
    #[error("segment folder {path} differs from the source: {detail}")]
    Conflict {
        /// The destination segment folder.
        path: PathBuf,
        /// The first differing file and how it differs.
        detail: String,
    },

    /// A worker thread failed (panicked) while working on a file.
    #[error("worker failed on {path}: {detail}")]
    Task {
        /// The file or folder being worked on.
        path: PathBuf,
        /// The failure.
        detail: String,
    },

    /// Work on a file stopped because another copy of the same call failed first.
    #[error("{path}: stopped because another copy failed")]
    Aborted {
        /// The file or folder whose work stopped.
        path: PathBuf,
    },
}

impl CopyError {
    /// Wrap an I/O error with the operation and the path it concerns.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CopyError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Check that a segment's ids are plain folder names (no separators, not `.`/`..`).
fn validate(root: &Path, seg: &SegmentRef) -> Result<(), CopyError> {
    for (what, id) in [("table id", &seg.table_id), ("segment id", &seg.segment_id)] {
        let bad = id.is_empty()
            || id == "."
            || id == ".."
            || id.contains(['/', '\\', '\0'])
            || id.starts_with('.');
        if bad {
            return Err(CopyError::InvalidSegment {
                path: segment_dir(root, seg),
                reason: format!("{what} {id:?} is not a plain folder name"),
            });
        }
    }
    Ok(())
}

/// Names and sizes of the files in a segment folder, sorted by name.
///
/// Symbolic links are never followed: a link, or anything else that is not a regular file
/// (a sub-folder, a socket), or a non-UTF-8 name is an error naming the entry. A missing
/// folder is [`CopyError::MissingSegment`]; a folder that is itself a link is
/// [`CopyError::InvalidSegment`].
pub fn list_segment_files(root: &Path, seg: &SegmentRef) -> Result<Vec<(String, u64)>, CopyError> {
    validate(root, seg)?;
    list_dir_files(&segment_dir(root, seg))
}

/// [`list_segment_files`] for a folder path.
fn list_dir_files(dir: &Path) -> Result<Vec<(String, u64)>, CopyError> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(m) if m.file_type().is_symlink() => {
            return Err(CopyError::InvalidSegment {
                path: dir.to_path_buf(),
                reason: "is a symbolic link; refusing to follow it".into(),
            });
        }
        Ok(_) => {
            return Err(CopyError::InvalidSegment {
                path: dir.to_path_buf(),
                reason: "not a folder".into(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CopyError::MissingSegment {
                path: dir.to_path_buf(),
            });
        }
        Err(e) => return Err(CopyError::io("stat", dir, e)),
    }
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| CopyError::io("list", dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| CopyError::io("list", dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(CopyError::UnsupportedEntry {
                path,
                reason: "file name is not UTF-8".into(),
            });
        };
        // Never followed: a link would bring bytes from outside storage.
        let meta = std::fs::symlink_metadata(&path).map_err(|e| CopyError::io("stat", &path, e))?;
        if meta.file_type().is_symlink() {
            return Err(CopyError::UnsupportedEntry {
                path,
                reason: "is a symbolic link; a segment folder holds only regular files".into(),
            });
        }
        if !meta.is_file() {
            return Err(CopyError::UnsupportedEntry {
                path,
                reason: "is not a regular file".into(),
            });
        }
        out.push((name, meta.len()));
    }
    out.sort();
    Ok(out)
}

/// Sorted, de-duplicated copy of `segments`, each checked by [`validate`].
fn normalize(root: &Path, segments: &[SegmentRef]) -> Result<Vec<SegmentRef>, CopyError> {
    let mut segs = segments.to_vec();
    segs.sort();
    segs.dedup();
    for seg in &segs {
        validate(root, seg)?;
    }
    Ok(segs)
}
