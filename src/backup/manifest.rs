//! `manifest.json`: what one backed-up day holds, written last (a day without it is an
//! incomplete backup). Rows carry Milvus 1.1.1 column names and exact values, so the day can
//! be restored by this tool or by hand.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::meta::{FileRow, TableRow, rows_digest};
use crate::segments::{FileDigest, combined_digest};

/// The only format this version reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the manifest object in a day's folder.
pub const MANIFEST: &str = "manifest.json";

/// Folder of one day under the backup target: `<collection>/<YYYY-MM-DD>`.
pub fn day_prefix(collection: &str, day: &str) -> String {
    format!("{collection}/{day}")
}

/// Key of a file of a day: `<collection>/<day>/files/<table_id>/<segment_id>/<name>`.
pub fn file_key(collection: &str, day: &str, path: &str) -> String {
    format!("{}/{path}", day_prefix(collection, day))
}

/// Key of a day's manifest.
pub fn manifest_key(collection: &str, day: &str) -> String {
    format!("{}/{MANIFEST}", day_prefix(collection, day))
}

/// One backed-up file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the day's folder: `files/<table_id>/<segment_id>/<name>`.
    pub path: String,
    /// Milvus table id.
    pub table_id: String,
    /// Segment id.
    pub segment_id: String,
    /// File name in the segment folder.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// BLAKE3, lowercase hex.
    pub blake3: String,
}

impl ManifestFile {
    /// The relative path of a segment file.
    pub fn path_of(table_id: &str, segment_id: &str, name: &str) -> String {
        format!("files/{table_id}/{segment_id}/{name}")
    }
}

/// The manifest of one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Tool that wrote it.
    pub tool: String,
    /// Its version.
    pub tool_version: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Long-term collection name.
    pub collection: String,
    /// The day, YYYY-MM-DD.
    pub day: String,
    /// The long-term `Tables` row of the collection.
    pub collection_row: TableRow,
    /// The day's partition `Tables` rows.
    pub tables: Vec<TableRow>,
    /// The day's `TableFiles` rows.
    pub table_files: Vec<FileRow>,
    /// Every file of the day's segment folders.
    pub files: Vec<ManifestFile>,
    /// Digest of the rows ([`crate::meta::rows_digest`]).
    pub rows_digest: String,
    /// Digest of the files ([`crate::segments::combined_digest`]).
    pub files_digest: String,
}

impl Manifest {
    /// Parse and check a manifest read from `target`.
    pub fn parse(bytes: &[u8], target: &str) -> Result<Manifest> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::Manifest {
                target: target.to_string(),
                reason: format!("not valid JSON (truncated or corrupted?): {e}"),
            })?;
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == FORMAT_VERSION as u64 => {}
            Some(v) => {
                return Err(Error::Manifest {
                    target: target.to_string(),
                    reason: format!(
                        "unknown format_version {v} (this version of milvus-tier reads {FORMAT_VERSION})"
                    ),
                });
            }
            None => {
                return Err(Error::Manifest {
                    target: target.to_string(),
                    reason: "no format_version".into(),
                });
            }
        }
        serde_json::from_value(value).map_err(|e| Error::Manifest {
            target: target.to_string(),
            reason: format!("bad content: {e}"),
        })
    }

    /// Refuse a manifest backup did not write as it is: a file `path` other than
    /// `files/<table_id>/<segment_id>/<name>` of plain names (`..` or an absolute path would
    /// read outside the day's folder), or rows and files that do not match `rows_digest`
    /// and `files_digest` (computed as backup computes them).
    pub fn check_integrity(&self, target: &str) -> Result<()> {
        let bad = |reason: String| Error::Manifest {
            target: target.to_string(),
            reason,
        };
        for f in &self.files {
            let plain = [&f.table_id, &f.segment_id, &f.name]
                .iter()
                .all(|s| !s.is_empty() && !s.contains(['/', '\\', '\0']) && !s.starts_with('.'));
            if !plain || f.path != ManifestFile::path_of(&f.table_id, &f.segment_id, &f.name) {
                return Err(bad(format!(
                    "file path `{}` is not files/<table_id>/<segment_id>/<name> of plain names (table `{}`, segment `{}`, name `{}`): refusing to read outside the backup",
                    f.path, f.table_id, f.segment_id, f.name
                )));
            }
        }
        let rows = rows_digest(&self.tables, &self.table_files);
        if rows != self.rows_digest {
            return Err(bad(format!(
                "rows_digest {} does not match its rows (they hash to {rows}): the manifest was changed after backup wrote it",
                self.rows_digest
            )));
        }
        let files = combined_digest(&self.file_digests());
        if files != self.files_digest {
            return Err(bad(format!(
                "files_digest {} does not match its files (they hash to {files}): the manifest was changed after backup wrote it",
                self.files_digest
            )));
        }
        Ok(())
    }

    /// The listed files as digests.
    pub fn file_digests(&self) -> Vec<FileDigest> {
        self.files
            .iter()
            .map(|f| FileDigest {
                table_id: f.table_id.clone(),
                segment_id: f.segment_id.clone(),
                name: f.name.clone(),
                size: f.size,
                blake3: f.blake3.clone(),
            })
            .collect()
    }

    /// Pretty JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec_pretty(self).expect("manifest serializes");
        b.push(b'\n');
        b
    }
}
