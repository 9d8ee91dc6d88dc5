//! Typed rows of Milvus 1.1.1's `Tables` and `TableFiles`, the integer enums they hold,
//! and the `date` column encoding.
//!
//! Integers are exactly those of Milvus 1.1.1 (`MetaTypes.h`, `ExecutionEngine.h`); see
//! `docs/milvus-1.1.1-source-notes.md`. An integer outside an enum is an error that names the
//! table, row and value, never a panic.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

macro_rules! milvus_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $column:literal { $($(#[$vmeta:meta])* $variant:ident = $value:literal => $label:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(into = "i32", try_from = "i32")]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value),+
        }

        impl $name {
            /// Every value, in integer order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The integer Milvus stores.
            pub fn code(self) -> i32 {
                self as i32
            }

            /// Milvus's name for the value.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }

            /// Decode the integer stored in `table` row `row_id`.
            pub fn decode(table: &'static str, row_id: i64, value: i64) -> Result<Self> {
                match value {
                    $($value => Ok($name::$variant),)+
                    _ => Err(Error::UnknownEnum { table, column: $column, row_id, value }),
                }
            }

            /// Parse Milvus's name for the value (case-insensitive).
            pub fn from_label(label: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.label().eq_ignore_ascii_case(label))
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 {
                v.code()
            }
        }

        impl TryFrom<i32> for $name {
            type Error = Error;
            fn try_from(v: i32) -> Result<Self> {
                Self::decode("?", -1, v.into())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

milvus_enum! {
    /// `TableFiles.file_type` (`SegmentSchema::FILE_TYPE`).
    FileType, "file_type" {
        /// Being written by a flush.
        New = 0 => "NEW",
        /// Raw vectors, searchable by brute force.
        Raw = 1 => "RAW",
        /// Queued for index build.
        ToIndex = 2 => "TO_INDEX",
        /// An index file.
        Index = 3 => "INDEX",
        /// Scheduled for deletion.
        ToDelete = 4 => "TO_DELETE",
        /// Being written by a merge.
        NewMerge = 5 => "NEW_MERGE",
        /// Being written by an index build.
        NewIndex = 6 => "NEW_INDEX",
        /// Raw file kept beside its index.
        Backup = 7 => "BACKUP",
    }
}

milvus_enum! {
    /// `engine_type` (`EngineType` in `ExecutionEngine.h`).
    EngineType, "engine_type" {
        /// Invalid.
        Invalid = 0 => "INVALID",
        /// FLAT (FAISS_IDMAP).
        Flat = 1 => "FLAT",
        /// IVF_FLAT.
        IvfFlat = 2 => "IVF_FLAT",
        /// IVF_SQ8.
        IvfSq8 = 3 => "IVF_SQ8",
        /// RNSG (NSG_MIX).
        Rnsg = 4 => "RNSG",
        /// IVF_SQ8H.
        IvfSq8h = 5 => "IVF_SQ8H",
        /// IVF_PQ (FAISS_PQ).
        IvfPq = 6 => "IVF_PQ",
        /// SPTAG_KDT.
        SptagKdt = 7 => "SPTAG_KDT",
        /// SPTAG_BKT.
        SptagBkt = 8 => "SPTAG_BKT",
        /// BIN_FLAT (FAISS_BIN_IDMAP).
        BinFlat = 9 => "BIN_FLAT",
        /// BIN_IVF_FLAT.
        BinIvfFlat = 10 => "BIN_IVF_FLAT",
        /// HNSW.
        Hnsw = 11 => "HNSW",
        /// ANNOY.
        Annoy = 12 => "ANNOY",
    }
}

milvus_enum! {
    /// `metric_type` (`MetricType` in `ExecutionEngine.h`).
    MetricType, "metric_type" {
        /// Euclidean distance.
        L2 = 1 => "L2",
        /// Inner product.
        Ip = 2 => "IP",
        /// Hamming.
        Hamming = 3 => "HAMMING",
        /// Jaccard.
        Jaccard = 4 => "JACCARD",
        /// Tanimoto.
        Tanimoto = 5 => "TANIMOTO",
        /// Substructure.
        Substructure = 6 => "SUBSTRUCTURE",
        /// Superstructure.
        Superstructure = 7 => "SUPERSTRUCTURE",
    }
}

milvus_enum! {
    /// `Tables.state`.
    TableState, "state" {
        /// Live.
        Normal = 0 => "NORMAL",
        /// Soft-deleted, waiting for cleanup.
        ToDelete = 1 => "TO_DELETE",
    }
}

impl EngineType {
    /// Raw (un-indexed) engine types, whose merged files never go to TO_INDEX.
    pub fn is_raw(self) -> bool {
        matches!(self, EngineType::Flat | EngineType::BinFlat)
    }
}

/// The `TableFiles.date` column: `tm_year * 10000 + tm_mon * 100 + tm_mday`
/// (years since 1900, 0-based month), or -1 for an empty date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MilvusDate(pub i32);

impl MilvusDate {
    /// Milvus's `EmptyDate`.
    pub const EMPTY: MilvusDate = MilvusDate(-1);

    /// Encode a calendar day.
    pub fn from_day(day: NaiveDate) -> Self {
        MilvusDate((day.year() - 1900) * 10000 + (day.month0() as i32) * 100 + day.day() as i32)
    }

    /// Decode to a calendar day; `None` for the empty date or a value that is no day.
    pub fn to_day(self) -> Option<NaiveDate> {
        if self.0 < 0 {
            return None;
        }
        let year = self.0 / 10000 + 1900;
        let month0 = (self.0 / 100) % 100;
        let mday = self.0 % 100;
        NaiveDate::from_ymd_opt(year, (month0 + 1) as u32, mday as u32)
    }
}

/// One row of Milvus's `Tables`: a collection (owner_table empty) or a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRow {
    /// Auto-increment key; local to one database, not copied between clusters.
    pub id: i64,
    /// Collection or partition id (the folder name under `db/tables/`).
    pub table_id: String,
    /// Live or soft-deleted.
    pub state: TableState,
    /// Vector dimension.
    pub dimension: i64,
    /// Creation time, microseconds since the epoch.
    pub created_on: i64,
    /// `FLAG_MASK_*` bits (user-supplied ids or not).
    pub flag: i64,
    /// Merge target size, bytes.
    pub index_file_size: i64,
    /// Index type.
    pub engine_type: EngineType,
    /// Index build parameters, JSON text.
    pub index_params: String,
    /// Distance metric.
    pub metric_type: MetricType,
    /// Parent collection's table_id for a partition, empty for a collection.
    pub owner_table: String,
    /// Partition tag, empty for a collection.
    pub partition_tag: String,
    /// Milvus version string (nullable in the schema).
    pub version: Option<String>,
    /// WAL LSN.
    pub flush_lsn: i64,
}

impl TableRow {
    /// Whether two rows agree on every column but the local `id`.
    pub fn same_content(&self, other: &TableRow) -> bool {
        TableRow {
            id: 0,
            ..self.clone()
        } == TableRow {
            id: 0,
            ..other.clone()
        }
    }

    /// Names of the columns (other than `id`) whose values differ.
    pub fn differing_columns(&self, other: &TableRow) -> Vec<&'static str> {
        super::digest::differing(
            &super::digest::table_columns(self),
            &super::digest::table_columns(other),
        )
    }
}

/// One row of Milvus's `TableFiles`: a segment file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRow {
    /// Auto-increment key; local to one database, not copied between clusters.
    pub id: i64,
    /// Owning collection or partition.
    pub table_id: String,
    /// Segment folder name.
    pub segment_id: String,
    /// Engine the file is built for.
    pub engine_type: EngineType,
    /// File name inside the segment folder (index files) or segment name.
    pub file_id: String,
    /// Lifecycle state.
    pub file_type: FileType,
    /// Bytes.
    pub file_size: i64,
    /// Vectors in the file.
    pub row_count: i64,
    /// Last update, microseconds since the epoch.
    pub updated_time: i64,
    /// Creation time, microseconds since the epoch.
    pub created_on: i64,
    /// Creation day, Milvus encoding.
    pub date: MilvusDate,
    /// WAL LSN.
    pub flush_lsn: i64,
}

impl FileRow {
    /// Natural key across clusters: (table_id, file_id).
    pub fn key(&self) -> (&str, &str) {
        (&self.table_id, &self.file_id)
    }

    /// Whether two rows agree on every column but the local `id`.
    pub fn same_content(&self, other: &FileRow) -> bool {
        FileRow {
            id: 0,
            ..self.clone()
        } == FileRow {
            id: 0,
            ..other.clone()
        }
    }

    /// Names of the columns (other than `id`) whose values differ.
    pub fn differing_columns(&self, other: &FileRow) -> Vec<&'static str> {
        super::digest::differing(
            &super::digest::file_columns(self),
            &super::digest::file_columns(other),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_encoding_matches_milvus() {
        let d = NaiveDate::from_ymd_opt(2021, 3, 15).unwrap();
        assert_eq!(MilvusDate::from_day(d), MilvusDate(1210215));
        assert_eq!(MilvusDate(1210215).to_day(), Some(d));
        assert_eq!(MilvusDate::EMPTY.to_day(), None);
        let jan1 = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert_eq!(MilvusDate::from_day(jan1).0, 1260001);
        assert_eq!(MilvusDate(1261301).to_day(), None, "month 13 is not a day");
    }

    #[test]
    fn enums_have_milvus_integers() {
        assert_eq!(FileType::Backup.code(), 7);
        assert_eq!(FileType::NewMerge.code(), 5);
        assert_eq!(EngineType::IvfPq.code(), 6);
        assert_eq!(EngineType::Hnsw.code(), 11);
        assert_eq!(MetricType::Ip.code(), 2);
        assert_eq!(TableState::ToDelete.code(), 1);
        let err = FileType::decode("TableFiles", 42, 9)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "TableFiles row id 42: unknown file_type value 9");
        assert_eq!(EngineType::from_label("ivf_pq"), Some(EngineType::IvfPq));
    }

    #[test]
    fn serde_uses_integers() {
        assert_eq!(serde_json::to_string(&FileType::Index).unwrap(), "3");
        assert_eq!(
            serde_json::from_str::<FileType>("7").unwrap(),
            FileType::Backup
        );
        assert!(serde_json::from_str::<FileType>("8").is_err());
    }
}
