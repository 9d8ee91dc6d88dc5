//! What long-term holds of a restored day: the rows (none, exactly the backup's, or a
//! conflict), the files (missing or different from the backup), and the last `verify`.

use std::path::Path;

use crate::backup::manifest::{Manifest, ManifestFile};
use crate::day::Day;
use crate::error::{Error, Result};
use crate::lifecycle::record::{VERIFY, read_range};
use crate::meta::{FileRow, MetaDb, TableRow};
use crate::segments::{SegmentRef, segment_dir};

/// Whether the last `verify` recorded for the day found something.
pub(super) async fn verify_found_something(
    long: &MetaDb,
    collection: &str,
    day: Day,
) -> Result<bool> {
    Ok(read_range(long, collection, day, day)
        .await?
        .iter()
        .any(|e| e.step == VERIFY && e.rows > 0))
}

/// Files of the manifest that long-term storage lacks or holds differently (size; BLAKE3
/// too when `hash`), each with a sentence naming the file.
pub(super) async fn damaged_files<'m>(
    storage: &Path,
    m: &'m Manifest,
    hash: bool,
) -> Result<Vec<(&'m ManifestFile, String)>> {
    let mut out = Vec::new();
    for f in &m.files {
        let path = segment_dir(storage, &SegmentRef::new(&f.table_id, &f.segment_id)).join(&f.name);
        let why = match tokio::fs::symlink_metadata(&path).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("missing".to_string()),
            Err(e) => return Err(Error::io("stat", &path, e)),
            Ok(meta) if !meta.file_type().is_file() => Some("not a regular file".to_string()),
            Ok(meta) if meta.len() != f.size => {
                Some(format!("{} bytes, the backup holds {}", meta.len(), f.size))
            }
            Ok(_) if hash => {
                let (_, b3) = crate::backup::store::hash_file(&path).await?;
                (b3 != f.blake3).then(|| format!("BLAKE3 {b3}, the backup holds {}", f.blake3))
            }
            Ok(_) => None,
        };
        if let Some(why) = why {
            out.push((f, format!("{}: {why}", path.display())));
        }
    }
    Ok(out)
}

/// False when long-term holds none of the day's rows; true when it holds exactly them;
/// a conflict naming the rows otherwise.
pub(super) async fn identical_or_absent(
    long: &MetaDb,
    tables: &[TableRow],
    files: &[FileRow],
    day: Day,
) -> Result<bool> {
    let ids: Vec<String> = tables.iter().map(|t| t.table_id.clone()).collect();
    let have_tables = long.tables_by_id(&ids).await?;
    let have_files = long.files(&ids, &[]).await?;
    if have_tables.is_empty() && have_files.is_empty() {
        return Ok(false);
    }
    let mut diffs = Vec::new();
    for t in tables {
        match have_tables.iter().find(|h| h.table_id == t.table_id) {
            Some(h) if h.same_content(t) => {}
            Some(h) => diffs.push(format!(
                "Tables row {} differs in {}",
                t.table_id,
                h.differing_columns(t).join(", ")
            )),
            None => diffs.push(format!("Tables row {} is missing", t.table_id)),
        }
    }
    for f in files {
        match have_files.iter().find(|h| h.key() == f.key()) {
            Some(h) if h.same_content(f) => {}
            Some(h) => diffs.push(format!(
                "TableFiles row {}/{} differs in {}",
                f.table_id,
                f.file_id,
                h.differing_columns(f).join(", ")
            )),
            None => diffs.push(format!(
                "TableFiles row {}/{} is missing",
                f.table_id, f.file_id
            )),
        }
    }
    for h in &have_files {
        if !files.iter().any(|f| f.key() == h.key()) {
            diffs.push(format!(
                "TableFiles row {}/{} is not in the backup",
                h.table_id, h.file_id
            ));
        }
    }
    if diffs.is_empty() {
        return Ok(true);
    }
    diffs.truncate(6);
    Err(Error::Conflict(format!(
        "long-term holds rows for day {day} that differ from the backup: {}; refusing to restore",
        diffs.join("; ")
    )))
}
