//! What long-term already holds of the day (`LongTermState`): nothing, or exactly the
//! result the journal recorded (rows and published files checked); anything else refused.

use std::path::Path;

use serde::Serialize;

use super::{PartitionPlan, PlanInput};
use crate::day::Day;
use crate::error::{Error, Result};
use crate::journal::{State, Step};
use crate::meta::{TableRow, TableState};

/// What long-term already holds for the day.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LongTermState {
    /// Nothing: the normal case.
    Empty,
    /// Exactly this day's published result (journal and rows agree): nothing to do.
    Done {
        /// Digest of the published rows, as the journal recorded it (`v2:<hex>`, or bare hex
        /// when recorded before digests had versions).
        rows_digest: String,
        /// Digest of the published files.
        files_digest: String,
    },
}

pub(super) async fn long_term_state(
    day: Day,
    input: &PlanInput<'_>,
    long_coll: &TableRow,
    ids: &[String],
    partitions: &[PartitionPlan],
) -> Result<LongTermState> {
    // The day in long-term is every partition carrying its long-term tag, whatever its
    // table_id: one published by another tool (or restored under another id) would make a
    // second copy of every vector of the day.
    let foreign: Vec<String> = input
        .long
        .partitions_tagged(&long_coll.table_id, &input.long_tag)
        .await?
        .into_iter()
        .filter(|t| t.state == TableState::Normal && !ids.contains(&t.table_id))
        .map(|t| t.table_id)
        .collect();
    if !foreign.is_empty() {
        return Err(Error::Conflict(format!(
            "long-term collection `{}` already holds day {day} as partition {} (tag `{}`), not as this day's short-term partition {}; refusing to publish the day twice",
            long_coll.table_id,
            foreign.join(", "),
            input.long_tag,
            ids.join(", ")
        )));
    }
    let tables = input.long.tables_by_id(ids).await?;
    let files = input.long.files(ids, &[]).await?;
    let publish = match input.journal {
        Some(j) => {
            j.get(input.long_collection, &day.to_string(), Step::Publish)
                .await?
        }
        None => None,
    };
    if tables.is_empty() && files.is_empty() {
        if let Some(p) = publish.filter(|p| p.state == State::Done) {
            return Err(Error::Conflict(format!(
                "journal says day {day} of `{}` was published by run {} but long-term holds none of its rows; restore it from the backup or clear the journal",
                input.long_collection, p.run_id
            )));
        }
        return Ok(LongTermState::Empty);
    }
    if let Some(p) = publish.filter(|p| p.state == State::Done) {
        let want_tables: Vec<TableRow> = partitions.iter().map(|p| p.target.clone()).collect();
        let tables_match = tables.len() == want_tables.len()
            && want_tables
                .iter()
                .all(|w| tables.iter().any(|t| t.same_content(w)));
        if p.rows_match(&tables, &files)? == Some(true) && tables_match {
            check_published_files(input.long_storage, &p)?;
            return Ok(LongTermState::Done {
                rows_digest: p.detail_rows_digest()?.unwrap_or_default(),
                files_digest: p.checksum_digest.clone(),
            });
        }
    }
    let mut names: Vec<String> = tables
        .iter()
        .map(|t| format!("Tables row {}", t.table_id))
        .collect();
    names.extend(
        files
            .iter()
            .take(5)
            .map(|f| format!("TableFiles row {}/{}", f.table_id, f.file_id)),
    );
    if files.len() > 5 {
        names.push(format!("… {} more TableFiles rows", files.len() - 5));
    }
    Err(Error::Conflict(format!(
        "long-term already holds rows for day {day} that are not this day's recorded result: {}; refusing to touch them",
        names.join(", ")
    )))
}

/// The published files the journal lists still exist on long-term storage with their sizes,
/// as regular files in real folders: nothing on the way is followed (`lstat`), so a
/// symbolic link in long-term (to a file anywhere, of any size) is reported, not read
/// through.
fn check_published_files(root: &Path, entry: &crate::journal::Entry) -> Result<()> {
    let tables = root.join("db").join("tables");
    for f in entry.detail_files()? {
        let table = tables.join(&f.table_id);
        let segment = table.join(&f.segment_id);
        for dir in [&table, &segment] {
            match std::fs::symlink_metadata(dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::Conflict(format!(
                        "published folder {} is a symbolic link; long-term holds only real folders and files: refusing to follow it",
                        dir.display()
                    )));
                }
                Ok(m) if !m.is_dir() => {
                    return Err(Error::Conflict(format!(
                        "published folder {} is not a folder",
                        dir.display()
                    )));
                }
                // A missing folder is reported with the file below.
                _ => {}
            }
        }
        let path = segment.join(&f.name);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::Conflict(format!(
                    "published file {} is a symbolic link; long-term holds only regular files: refusing to follow it",
                    path.display()
                )));
            }
            Ok(m) if !m.is_file() => {
                return Err(Error::Conflict(format!(
                    "published file {} is not a regular file",
                    path.display()
                )));
            }
            Ok(m) if m.len() == f.size => {}
            Ok(m) => {
                return Err(Error::Conflict(format!(
                    "published file {} has {} bytes, the journal recorded {}",
                    path.display(),
                    m.len(),
                    f.size
                )));
            }
            Err(e) => {
                return Err(Error::Conflict(format!(
                    "published file {} is missing: {e}",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}
