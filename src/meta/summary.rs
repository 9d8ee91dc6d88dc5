//! A day's metadata at a glance: partitions, and files by type with rows and bytes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::types::{FileRow, FileType, TableRow};

/// Files, rows and bytes of a set of file rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Number of file rows.
    pub files: u64,
    /// Sum of `row_count`.
    pub rows: i64,
    /// Sum of `file_size`.
    pub bytes: i64,
}

impl Totals {
    fn add(&mut self, f: &FileRow) {
        self.files += 1;
        self.rows += f.row_count;
        self.bytes += f.file_size;
    }
}

/// One file type's totals within a partition.
#[derive(Debug, Clone, Serialize)]
pub struct TypeTotals {
    /// Milvus name of the file type.
    pub file_type: &'static str,
    /// Its integer code.
    pub code: i32,
    /// Its totals.
    #[serde(flatten)]
    pub totals: Totals,
}

/// One partition of the day.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionSummary {
    /// Partition table_id.
    pub table_id: String,
    /// Partition tag.
    pub tag: String,
    /// Table state name.
    pub state: &'static str,
    /// Totals per file type, in file-type order.
    pub by_file_type: Vec<TypeTotals>,
    /// Totals over every file row.
    pub total: Totals,
    /// Rows in searchable files (RAW, TO_INDEX, INDEX); BACKUP repeats INDEX data.
    pub searchable_rows: i64,
}

/// A day's partitions and files in one tier.
#[derive(Debug, Clone, Serialize)]
pub struct DaySummary {
    /// Tier name.
    pub tier: String,
    /// Collection name.
    pub collection: String,
    /// The day (YYYY-MM-DD).
    pub day: String,
    /// The tag the day's partitions carry.
    pub tag: String,
    /// Partitions, by table_id.
    pub partitions: Vec<PartitionSummary>,
    /// Totals over every partition.
    pub total: Totals,
    /// Searchable rows over every partition.
    pub searchable_rows: i64,
}

impl DaySummary {
    /// Build from the day's partition rows and all their file rows.
    pub fn new(
        tier: &str,
        collection: &str,
        day: &str,
        tag: &str,
        partitions: &[TableRow],
        files: &[FileRow],
    ) -> Self {
        let mut out = DaySummary {
            tier: tier.to_string(),
            collection: collection.to_string(),
            day: day.to_string(),
            tag: tag.to_string(),
            partitions: Vec::new(),
            total: Totals::default(),
            searchable_rows: 0,
        };
        for p in partitions {
            let mut by: BTreeMap<FileType, Totals> = BTreeMap::new();
            let mut total = Totals::default();
            let mut searchable = 0;
            for f in files.iter().filter(|f| f.table_id == p.table_id) {
                by.entry(f.file_type).or_default().add(f);
                total.add(f);
                out.total.add(f);
                if matches!(
                    f.file_type,
                    FileType::Raw | FileType::ToIndex | FileType::Index
                ) {
                    searchable += f.row_count;
                }
            }
            out.searchable_rows += searchable;
            out.partitions.push(PartitionSummary {
                table_id: p.table_id.clone(),
                tag: p.partition_tag.clone(),
                state: p.state.label(),
                by_file_type: by
                    .into_iter()
                    .map(|(t, totals)| TypeTotals {
                        file_type: t.label(),
                        code: t.code(),
                        totals,
                    })
                    .collect(),
                total,
                searchable_rows: searchable,
            });
        }
        out
    }
}
