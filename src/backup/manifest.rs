//! `manifest.json`: what one backed-up day holds, written last (a day without it is an
//! incomplete backup). Rows carry Milvus 1.1.1 column names and exact values, so the day can
//! be restored by this tool or by hand.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::meta::{FileRow, RowsDigestCheck, TableRow, check_rows_digest, rows_digest};
use crate::segments::{FileDigest, combined_digest};

/// The format this version writes: 2, whose `collection_row_digest` covers the collection
/// row and whose digests are `v2:<hex>` (see `docs/digests.md`).
pub const FORMAT_VERSION: u32 = 2;
/// The formats this version reads: 1 (digests of the legacy encoding, no
/// `collection_row_digest`: the collection row is covered by no digest) and 2.
pub const READ_FORMAT_VERSIONS: &[u32] = &[1, 2];
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
    /// Digest of the rows ([`crate::meta::rows_digest`]): `tables` and `table_files`, the
    /// value the journal records for the day.
    pub rows_digest: String,
    /// Digest of `collection_row` alone ([`crate::meta::rows_digest`] of that one `Tables`
    /// row). Format 2 has it; format 1 did not, and its collection row is trusted as read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_row_digest: Option<String>,
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
            Some(v) if READ_FORMAT_VERSIONS.iter().any(|r| u64::from(*r) == v) => {}
            Some(v) => {
                let reads: Vec<String> = READ_FORMAT_VERSIONS.iter().map(u32::to_string).collect();
                return Err(Error::Manifest {
                    target: target.to_string(),
                    reason: format!(
                        "unknown format_version {v} (this version of milvus-tier reads {})",
                        reads.join(", ")
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
    /// read outside the day's folder), rows, collection row or files that do not match
    /// `rows_digest`, `collection_row_digest` and `files_digest` (each recomputed in the
    /// encoding the recorded value names), or a format 2 manifest without
    /// `collection_row_digest`.
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
        check_digest(
            "rows_digest",
            &self.rows_digest,
            &self.tables,
            &self.table_files,
        )
        .map_err(bad)?;
        match &self.collection_row_digest {
            Some(d) => check_digest(
                "collection_row_digest",
                d,
                std::slice::from_ref(&self.collection_row),
                &[],
            )
            .map_err(bad)?,
            None if self.format_version >= 2 => {
                return Err(bad(format!(
                    "format_version {} has no collection_row_digest: the manifest was changed after backup wrote it",
                    self.format_version
                )));
            }
            // Format 1 covered the collection row by no digest.
            None => {}
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

    /// The digests of a new manifest of these rows: `rows_digest` of the day's rows and
    /// `collection_row_digest` of the collection row, both in the current encoding.
    pub fn rows_digests(
        collection_row: &TableRow,
        tables: &[TableRow],
        table_files: &[FileRow],
    ) -> (String, String) {
        (
            rows_digest(tables, table_files),
            rows_digest(std::slice::from_ref(collection_row), &[]),
        )
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

/// Check one recorded rows digest of the manifest (named `field`) against its rows.
fn check_digest(
    field: &str,
    recorded: &str,
    tables: &[TableRow],
    files: &[FileRow],
) -> std::result::Result<(), String> {
    match check_rows_digest(recorded, tables, files) {
        RowsDigestCheck::Matches(_) => Ok(()),
        RowsDigestCheck::Differs {
            version,
            recomputed,
        } => Err(format!(
            "{field} {recorded} does not match its rows (in the {} encoding the value names, they hash to {recomputed}): the manifest was changed after backup wrote it",
            version.name()
        )),
        RowsDigestCheck::UnknownVersion => Err(format!(
            "{field} `{recorded}` is of no digest encoding this version of milvus-tier reads (written by a newer version, or changed after backup wrote it)"
        )),
    }
}

/// Read and check the manifest of `day` of `collection` in `store`.
pub async fn read_manifest(
    store: &super::store::Store,
    collection: &str,
    day: &str,
) -> Result<Manifest> {
    let key = manifest_key(collection, day);
    let target = store.describe(&key);
    let Some(bytes) = store.get_bytes(&key).await? else {
        return Err(Error::Manifest {
            target,
            reason: "not found: the day has no backup or its backup is incomplete".into(),
        });
    };
    let m = Manifest::parse(&bytes, &target)?;
    m.check_integrity(&target)?;
    if m.day != day || m.collection != collection {
        return Err(Error::Manifest {
            target,
            reason: format!(
                "describes collection `{}` day {}, expected `{collection}` day {day}",
                m.collection, m.day
            ),
        });
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::RowsDigestVersion;

    /// A manifest as milvus-tier wrote it before digests had versions (format 1, rows
    /// digest of the legacy encoding, no collection_row_digest).
    const FORMAT1: &str = include_str!("testdata/manifest-format1.json");
    /// The documented example, as this version writes one.
    const EXAMPLE: &str = include_str!("../../docs/backup-manifest-example.json");

    fn refused(m: &Manifest) -> String {
        m.check_integrity("m").unwrap_err().to_string()
    }

    #[test]
    fn a_format1_manifest_with_a_legacy_digest_still_checks() {
        let m = Manifest::parse(FORMAT1.as_bytes(), "m").unwrap();
        assert_eq!(m.format_version, 1);
        assert_eq!(
            RowsDigestVersion::of(&m.rows_digest),
            Some(RowsDigestVersion::Legacy)
        );
        assert_eq!(m.collection_row_digest, None);
        m.check_integrity("m").unwrap();
        // Its rows are still checked, in the legacy encoding.
        let mut bad = m.clone();
        bad.table_files[0].row_count += 1;
        let err = refused(&bad);
        assert!(
            err.contains("rows_digest 1b7d168e") && err.contains("legacy encoding"),
            "{err}"
        );
    }

    #[test]
    fn the_example_is_a_current_manifest_and_covers_its_collection_row() {
        let m = Manifest::parse(EXAMPLE.as_bytes(), "m").unwrap();
        assert_eq!(m.format_version, FORMAT_VERSION);
        m.check_integrity("m").unwrap();
        let (rows, coll) = Manifest::rows_digests(&m.collection_row, &m.tables, &m.table_files);
        assert_eq!(
            (&rows, Some(&coll)),
            (&m.rows_digest, m.collection_row_digest.as_ref())
        );
        assert!(rows.starts_with("v2:") && coll.starts_with("v2:"));
        // The same day's rows as the format 1 manifest (written from the same long-term).
        let old = Manifest::parse(FORMAT1.as_bytes(), "m").unwrap();
        assert_eq!((&old.tables, &old.table_files), (&m.tables, &m.table_files));

        let mut bad = m.clone();
        bad.collection_row.dimension += 1;
        let err = refused(&bad);
        assert!(err.contains("collection_row_digest v2:"), "{err}");
        let mut bad = m.clone();
        bad.collection_row_digest = None;
        let err = refused(&bad);
        assert!(
            err.contains("format_version 2 has no collection_row_digest"),
            "{err}"
        );
        let mut bad = m.clone();
        bad.rows_digest = format!("v9:{}", &m.rows_digest[3..]);
        let err = refused(&bad);
        assert!(err.contains("rows_digest `v9:"), "{err}");
    }
}
