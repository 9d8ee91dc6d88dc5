//! Step 1, plan: read one day from short-term, check its segment folders, read the
//! long-term collection, and find out what long-term already holds. Reads only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::day::Day;
use crate::error::{Error, Result};
use crate::journal::{Journal, State, Step};
use crate::meta::{FileRow, MetaDb, TableRow, TableState};
use crate::segments::layout::{
    HEADER_BYTES, IN_FLIGHT_TYPES, INPUT_TYPES, SEGMENT_SIDE_FILES, raw_names,
};

/// One partition of the day, as read and as it will be written.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionPlan {
    /// The short-term row.
    pub source: TableRow,
    /// The row long-term will hold (owner, index_file_size, engine, params and tag rewritten).
    pub target: TableRow,
    /// Input files of the partition.
    pub files: usize,
    /// Vectors in them.
    pub rows: i64,
    /// Bytes in them (the rows' file_size).
    pub bytes: i64,
}

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

/// The plan of one day: a value that can be printed (text, JSON) and drives the steps.
#[derive(Debug, Clone, Serialize)]
pub struct DayPlan {
    /// The day.
    pub day: Day,
    /// The partition tag of the day.
    pub tag: String,
    /// Short-term collection row.
    pub short_collection: TableRow,
    /// Long-term collection row.
    pub long_collection: TableRow,
    /// Partitions of the day.
    pub partitions: Vec<PartitionPlan>,
    /// Input file rows (RAW, TO_INDEX, BACKUP), ordered by table, segment, file.
    pub input_files: Vec<FileRow>,
    /// Rows of the day not used (INDEX rebuilt anyway, TO_DELETE leftovers), by type name.
    pub skipped: BTreeMap<String, usize>,
    /// Total vectors in the input files.
    pub rows: i64,
    /// Total bytes of the input files (rows' file_size).
    pub bytes: i64,
    /// Bytes on disk to stage (raw files with headers).
    pub stage_bytes: u64,
    /// What long-term holds.
    pub long_term: LongTermState,
}

impl DayPlan {
    /// Partition table_ids.
    pub fn partition_ids(&self) -> Vec<String> {
        self.partitions
            .iter()
            .map(|p| p.source.table_id.clone())
            .collect()
    }

    /// Target Tables rows (long-term form).
    pub fn target_tables(&self) -> Vec<TableRow> {
        self.partitions.iter().map(|p| p.target.clone()).collect()
    }
}

/// Everything plan needs.
pub struct PlanInput<'a> {
    /// Short-term metadata.
    pub short: &'a MetaDb,
    /// Short-term storage path.
    pub short_storage: &'a Path,
    /// Short-term collection name.
    pub short_collection: &'a str,
    /// Tag of the day in short-term.
    pub tag: String,
    /// Tag of the day in long-term: the published partitions carry it, and any long-term
    /// partition carrying it is part of the day's state there.
    pub long_tag: String,
    /// Long-term metadata.
    pub long: &'a MetaDb,
    /// Long-term storage path.
    pub long_storage: &'a Path,
    /// Long-term collection name.
    pub long_collection: &'a str,
    /// The journal (long-term DB); None in dry runs where its tables may not exist yet.
    pub journal: Option<&'a Journal>,
}

/// Build the plan of `day`.
pub async fn plan(day: Day, input: &PlanInput<'_>) -> Result<DayPlan> {
    input.short.check_schema().await?;
    input.long.check_schema().await?;
    let short_coll = live_collection(input.short, input.short_collection, "short-term").await?;
    let long_coll = live_collection(input.long, input.long_collection, "long-term").await?;
    if short_coll.dimension != long_coll.dimension
        || short_coll.metric_type != long_coll.metric_type
    {
        return Err(Error::BadInput(format!(
            "collection mismatch: short-term `{}` has dimension {} metric {}, long-term `{}` has dimension {} metric {}",
            short_coll.table_id,
            short_coll.dimension,
            short_coll.metric_type,
            long_coll.table_id,
            long_coll.dimension,
            long_coll.metric_type
        )));
    }

    let parts: Vec<TableRow> = input
        .short
        .partitions_tagged(&short_coll.table_id, &input.tag)
        .await?
        .into_iter()
        .filter(|p| p.state == TableState::Normal)
        .collect();
    if parts.is_empty() {
        return Err(Error::NoPartition {
            collection: short_coll.table_id.clone(),
            tag: input.tag.clone(),
            day: day.to_string(),
            tier: "short-term".into(),
        });
    }
    if parts.len() > 1 {
        let ids: Vec<&str> = parts.iter().map(|p| p.table_id.as_str()).collect();
        return Err(Error::Conflict(format!(
            "collection `{}` has {} NORMAL short-term partitions tagged `{}` (day {day}): {}; Milvus keeps one partition per tag, refusing to migrate the day until one is dropped",
            short_coll.table_id,
            parts.len(),
            input.tag,
            ids.join(", ")
        )));
    }
    let ids: Vec<String> = parts.iter().map(|p| p.table_id.clone()).collect();
    let all = input.short.files(&ids, &[]).await?;
    if let Some(f) = all.iter().find(|f| IN_FLIGHT_TYPES.contains(&f.file_type)) {
        return Err(Error::NotReady(format!(
            "short-term TableFiles row id {} (partition {}, file {}) is {}: the short-term engine is still writing day {day}; retry when it has finished",
            f.id, f.table_id, f.file_id, f.file_type
        )));
    }
    let mut skipped = BTreeMap::new();
    for f in all.iter().filter(|f| !INPUT_TYPES.contains(&f.file_type)) {
        *skipped.entry(f.file_type.label().to_string()).or_insert(0) += 1;
    }
    let input_files: Vec<FileRow> = all
        .iter()
        .filter(|f| INPUT_TYPES.contains(&f.file_type))
        .cloned()
        .collect();

    let mut partitions = Vec::new();
    for p in &parts {
        let files: Vec<&FileRow> = input_files
            .iter()
            .filter(|f| f.table_id == p.table_id)
            .collect();
        if files.is_empty() {
            return Err(Error::BadInput(format!(
                "partition {} (tag {}) of `{}` has no RAW, TO_INDEX or BACKUP files for day {day}",
                p.table_id, p.partition_tag, short_coll.table_id
            )));
        }
        partitions.push(PartitionPlan {
            source: p.clone(),
            target: TableRow {
                partition_tag: input.long_tag.clone(),
                ..target_partition(p, &long_coll)
            },
            files: files.len(),
            rows: files.iter().map(|f| f.row_count).sum(),
            bytes: files.iter().map(|f| f.file_size).sum(),
        });
    }
    // Thousands of folder listings: off the async workers.
    let stage_bytes = {
        let (root, all, input_files) = (
            input.short_storage.to_path_buf(),
            all.clone(),
            input_files.clone(),
        );
        let at = root.clone();
        tokio::task::spawn_blocking(move || check_segments(&root, &all, &input_files))
            .await
            .map_err(|e| Error::Io {
                op: "check segment folders",
                path: at,
                source: std::io::Error::other(e.to_string()),
            })??
    };
    let long_term = long_term_state(day, input, &long_coll, &ids, &partitions).await?;
    Ok(DayPlan {
        day,
        tag: input.tag.clone(),
        rows: input_files.iter().map(|f| f.row_count).sum(),
        bytes: input_files.iter().map(|f| f.file_size).sum(),
        stage_bytes,
        short_collection: short_coll,
        long_collection: long_coll,
        partitions,
        input_files,
        skipped,
        long_term,
    })
}

/// Read the day from short-term again and compare it with the plan: a day still being
/// written (a partition, a file row, a row count or a segment folder added or changed since
/// the plan) is not over yet, and publishing the plan would put part of it in long-term.
pub async fn recheck_source(plan: &DayPlan, input: &PlanInput<'_>) -> Result<()> {
    let day = plan.day;
    let parts: Vec<String> = input
        .short
        .partitions_tagged(&plan.short_collection.table_id, &input.tag)
        .await?
        .into_iter()
        .filter(|p| p.state == TableState::Normal)
        .map(|p| p.table_id)
        .collect();
    let changed = |what: String| {
        Err(Error::NotReady(format!(
            "short-term day {day} changed after it was planned ({what}): the day is still growing; nothing published, retry when it is over"
        )))
    };
    if parts != plan.partition_ids() {
        return changed(format!(
            "partitions now {}, planned {}",
            parts.join(", "),
            plan.partition_ids().join(", ")
        ));
    }
    let all = input.short.files(&parts, &[]).await?;
    if let Some(f) = all.iter().find(|f| IN_FLIGHT_TYPES.contains(&f.file_type)) {
        return changed(format!(
            "TableFiles row {}/{} is {}",
            f.table_id, f.file_id, f.file_type
        ));
    }
    let key = |f: &FileRow| {
        (
            f.table_id.clone(),
            f.segment_id.clone(),
            f.file_id.clone(),
            f.row_count,
            f.file_size,
        )
    };
    let now: BTreeSet<_> = all
        .iter()
        .filter(|f| INPUT_TYPES.contains(&f.file_type))
        .map(key)
        .collect();
    let planned: BTreeSet<_> = plan.input_files.iter().map(key).collect();
    if let Some((t, _, f, rows, _)) = now.symmetric_difference(&planned).next() {
        let how = if planned.iter().any(|p| p.0 == *t && p.2 == *f) {
            "changed"
        } else if now.iter().any(|p| p.0 == *t && p.2 == *f) {
            "added"
        } else {
            "gone"
        };
        return changed(format!(
            "TableFiles row {t}/{f} ({rows} rows) {how}; {} input files now, {} planned",
            now.len(),
            planned.len()
        ));
    }
    let (root, input_files) = (input.short_storage.to_path_buf(), plan.input_files.clone());
    let at = root.clone();
    let bytes = tokio::task::spawn_blocking(move || check_segments(&root, &all, &input_files))
        .await
        .map_err(|e| Error::Io {
            op: "check segment folders",
            path: at,
            source: std::io::Error::other(e.to_string()),
        })?;
    match bytes {
        Ok(b) if b == plan.stage_bytes => Ok(()),
        Ok(b) => changed(format!(
            "segment folders hold {b} bytes, planned {}",
            plan.stage_bytes
        )),
        Err(e) => changed(e.to_string()),
    }
}

async fn live_collection(db: &MetaDb, name: &str, tier: &str) -> Result<TableRow> {
    match db.collection(name).await? {
        Some(c) if c.state == TableState::Normal => Ok(c),
        _ => Err(Error::CollectionNotFound {
            collection: name.to_string(),
            tier: tier.to_string(),
        }),
    }
}

/// The long-term form of a short-term partition row: owner, index_file_size, engine type
/// and index params of the long-term collection; everything else verbatim.
pub fn target_partition(p: &TableRow, long: &TableRow) -> TableRow {
    TableRow {
        id: 0,
        state: TableState::Normal,
        owner_table: long.table_id.clone(),
        index_file_size: long.index_file_size,
        engine_type: long.engine_type,
        index_params: long.index_params.clone(),
        // What `DBImpl::CreatePartition` writes: the owner's flush_lsn. A short-term lsn
        // would make the long-term node's `WalManager::Init` fail at its next start.
        flush_lsn: long.flush_lsn,
        ..p.clone()
    }
}

/// Check each input segment folder holds the raw files the rows imply, with matching
/// sizes, and nothing unknown. Returns the bytes to stage.
fn check_segments(root: &Path, all: &[FileRow], input: &[FileRow]) -> Result<u64> {
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

async fn long_term_state(
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
