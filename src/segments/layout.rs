//! Milvus 1.1.1's segment layout as milvus-tier reads it: which file types a day's input
//! and published result hold, which files of a segment folder each file row implies, and
//! the name filters the copier uses for them.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::SegmentRef;
use crate::meta::{FileRow, FileType};

/// Input file types: what the local engine needs to rebuild the day.
pub const INPUT_TYPES: &[FileType] = &[FileType::Raw, FileType::ToIndex, FileType::Backup];

/// Types that mean the short-term engine is still writing the day.
pub const IN_FLIGHT_TYPES: &[FileType] = &[FileType::New, FileType::NewMerge, FileType::NewIndex];

/// File types a published day holds in long-term metadata.
pub const PUBLISHED_TYPES: &[FileType] = &[FileType::Raw, FileType::Index, FileType::Backup];

/// Bytes of the size header at the start of `.rv` and `.uid` files.
pub const HEADER_BYTES: u64 = 8;

/// Names in a segment folder that belong to the segment, not to one file row.
pub const SEGMENT_SIDE_FILES: &[&str] = &["deleted_docs", "bloom_filter"];

/// Names a raw file row owns in its segment folder.
pub fn raw_names(f: &FileRow) -> [String; 2] {
    [format!("{}.rv", f.file_id), format!("{}.uid", f.file_id)]
}

/// The segments of a set of file rows.
pub fn segments_of(files: &[FileRow]) -> Vec<SegmentRef> {
    let set: BTreeSet<SegmentRef> = files
        .iter()
        .map(|f| SegmentRef {
            table_id: f.table_id.clone(),
            segment_id: f.segment_id.clone(),
        })
        .collect();
    set.into_iter().collect()
}

/// A file-name filter that keeps the raw files of `files` and the segment side files.
pub fn raw_filter(files: &[FileRow]) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
    let mut names: BTreeSet<String> = SEGMENT_SIDE_FILES.iter().map(|s| s.to_string()).collect();
    for f in files {
        names.extend(raw_names(f));
    }
    Arc::new(move |n: &str| names.contains(n))
}

/// Names the result rows own in their segment folders.
pub fn result_filter(files: &[FileRow]) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
    let mut names: BTreeSet<String> = SEGMENT_SIDE_FILES.iter().map(|s| s.to_string()).collect();
    for f in files {
        match f.file_type {
            FileType::Index => {
                names.insert(f.file_id.clone());
            }
            _ => names.extend(raw_names(f)),
        }
    }
    Arc::new(move |n: &str| names.contains(n))
}
