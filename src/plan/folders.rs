//! The check of a day's short-term segment folders: each holds the raw files its rows
//! imply, with matching sizes, a well-formed `deleted_docs`, only regular files, and
//! nothing no row accounts for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::meta::FileRow;
use crate::segments::layout::{HEADER_BYTES, SEGMENT_SIDE_FILES, raw_names};

/// Check each input segment folder holds the raw files the rows imply, with matching
/// sizes, and nothing unknown. Returns the bytes to stage.
pub(super) fn check_segments(root: &Path, all: &[FileRow], input: &[FileRow]) -> Result<u64> {
    let mut by_segment: BTreeMap<(&str, &str), Vec<&FileRow>> = BTreeMap::new();
    for f in input {
        by_segment
            .entry((&f.table_id, &f.segment_id))
            .or_default()
            .push(f);
    }
    // Every row (any type) by segment: which names a folder may hold.
    let mut all_by_segment: BTreeMap<(&str, &str), Vec<&FileRow>> = BTreeMap::new();
    for f in all {
        all_by_segment
            .entry((&f.table_id, &f.segment_id))
            .or_default()
            .push(f);
    }
    let mut total = 0u64;
    for ((table, seg), rows) in by_segment {
        let dir = root.join("db").join("tables").join(table).join(seg);
        let listing = list_dir(&dir).map_err(|e| match e {
            ListError::Io(e) => Error::BadInput(format!(
                "segment folder {} for TableFiles row {}/{} is missing or unreadable: {e}",
                dir.display(),
                table,
                rows[0].file_id
            )),
            ListError::Refused(why) => Error::BadInput(why),
        })?;
        let mut known: BTreeSet<String> =
            SEGMENT_SIDE_FILES.iter().map(|s| s.to_string()).collect();
        for f in all_by_segment.get(&(table, seg)).into_iter().flatten() {
            known.insert(f.file_id.clone());
            known.extend(raw_names(f));
        }
        if let Some((extra, _)) = listing.iter().find(|(n, _)| !known.contains(n)) {
            return Err(Error::BadInput(format!(
                "segment folder {} holds {extra}, which no TableFiles row of segment {seg} accounts for",
                dir.display()
            )));
        }
        // deleted_docs lists the rows deleted by id; `.rv`, `.uid` and file_size keep them
        // while row_count does not, so the rows on disk are row_count + deleted.
        let deleted = deleted_docs(&dir, &listing)?;
        for f in rows {
            let [rv, uid] = raw_names(f);
            let size = |name: &str| listing.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
            let (Some(rv_size), Some(uid_size)) = (size(&rv), size(&uid)) else {
                return Err(Error::BadInput(format!(
                    "segment folder {} lacks {rv} or {uid} of TableFiles row {}/{} ({} rows)",
                    dir.display(),
                    table,
                    f.file_id,
                    f.row_count
                )));
            };
            let stored = f.row_count as u64 + deleted.len() as u64;
            let want_uid = HEADER_BYTES + stored * 8;
            let data =
                (rv_size.saturating_sub(HEADER_BYTES)) + (uid_size.saturating_sub(HEADER_BYTES));
            if uid_size != want_uid || data != f.file_size as u64 {
                return Err(Error::BadInput(format!(
                    "file {} or {} in {} does not match TableFiles row {}/{}: row says {} rows ({} more deleted in deleted_docs), {} bytes; files hold {} + {} bytes (with {}-byte headers)",
                    rv,
                    uid,
                    dir.display(),
                    table,
                    f.file_id,
                    f.row_count,
                    deleted.len(),
                    f.file_size,
                    rv_size,
                    uid_size,
                    HEADER_BYTES
                )));
            }
            if let Some(bad) = deleted.iter().find(|o| **o < 0 || **o as u64 >= stored) {
                return Err(Error::BadInput(format!(
                    "deleted_docs in {} lists row offset {bad}, outside the {stored} rows of {}",
                    dir.display(),
                    uid
                )));
            }
            total += rv_size + uid_size;
        }
        for side in SEGMENT_SIDE_FILES {
            if let Some((_, s)) = listing.iter().find(|(n, _)| n == side) {
                total += s;
            }
        }
    }
    Ok(total)
}

/// The offsets of a segment's `deleted_docs` (`DefaultDeletedDocsFormat`: an 8-byte byte
/// count, then i32 offsets). Milvus cannot load a segment without it, so a missing or
/// malformed file is bad input naming the folder.
fn deleted_docs(dir: &Path, listing: &[(String, u64)]) -> Result<Vec<i32>> {
    let path = dir.join("deleted_docs");
    if !listing.iter().any(|(n, _)| n == "deleted_docs") {
        return Err(Error::BadInput(format!(
            "segment folder {} has no deleted_docs; Milvus cannot load a segment without it",
            dir.display()
        )));
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::Io {
        op: "read deleted_docs",
        path: path.clone(),
        source: e,
    })?;
    // A file shorter than its header has no body; the header check below refuses it.
    let body = bytes.get(8..).unwrap_or_default();
    let header = bytes
        .get(..8)
        .and_then(|h| <[u8; 8]>::try_from(h).ok())
        .map(u64::from_le_bytes);
    if header != Some(body.len() as u64) || body.len() % 4 != 0 {
        return Err(Error::BadInput(format!(
            "deleted_docs in {} is malformed: {} bytes, header {:?}",
            dir.display(),
            bytes.len(),
            header
        )));
    }
    let offsets: Vec<i32> = body
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let unique: BTreeSet<i32> = offsets.iter().copied().collect();
    if unique.len() != offsets.len() {
        return Err(Error::BadInput(format!(
            "deleted_docs in {} lists a row offset twice",
            dir.display()
        )));
    }
    Ok(offsets)
}

/// Why a segment folder cannot be listed.
enum ListError {
    /// It cannot be read (missing, permissions).
    Io(std::io::Error),
    /// It holds something Milvus does not write there.
    Refused(String),
}

impl From<std::io::Error> for ListError {
    fn from(e: std::io::Error) -> Self {
        ListError::Io(e)
    }
}

/// Names and sizes of a segment folder's entries. The folder and every entry must be what
/// Milvus writes: a real folder of regular files. A symbolic link (even to a file) or any
/// other kind of entry would bring bytes from outside storage into long-term: an error
/// naming it (links are never followed).
fn list_dir(dir: &Path) -> std::result::Result<Vec<(String, u64)>, ListError> {
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(ListError::Refused(format!(
            "segment folder {} is a symbolic link or not a folder; refusing to follow it",
            dir.display()
        )));
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        // `DirEntry::metadata` does not follow symbolic links.
        let m = e.metadata()?;
        let kind = m.file_type();
        if !kind.is_file() {
            let what = if kind.is_symlink() {
                "is a symbolic link"
            } else {
                "is not a regular file"
            };
            return Err(ListError::Refused(format!(
                "{} {what}; a segment folder holds only regular files, refusing to read it",
                e.path().display()
            )));
        }
        out.push((e.file_name().to_string_lossy().into_owned(), m.len()));
    }
    out.sort();
    Ok(out)
}
