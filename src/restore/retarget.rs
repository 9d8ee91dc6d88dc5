//! `--to-collection`: the backup's partition rows rewritten as partitions of another
//! long-term collection, or refused when its vectors or built index files do not fit it.

use crate::day::Day;
use crate::error::{Error, Result};
use crate::meta::{FileRow, FileType, TableRow};

/// The backup's partition rows of `day` (of collection `source`) as partitions of the
/// existing long-term collection `target`, as `migrate` writes them for the long-term
/// collection: owned by it, with its `index_file_size` and `flush_lsn`, and its index
/// (`engine_type`, `index_params`) where no file of the partition is an index built with
/// another one (RAW files are indexed by no one in long-term and carry their own engine).
///
/// Refused as bad input, naming both collections and the field: another dimension or
/// metric (the vectors and every distance would be wrong), and another index type or other
/// index parameters for a partition holding INDEX files (an index file built as one type
/// or with other parameters is not a file of the other: relabelling it would make the
/// engine load it as what it is not).
pub(super) fn retarget_partitions(
    source: &str,
    target: &TableRow,
    partitions: &[TableRow],
    files: &[FileRow],
    day: Day,
) -> Result<Vec<TableRow>> {
    let refuse = |field: &str, backup: String, have: String| {
        Error::BadInput(format!(
            "cannot restore day {day} of `{source}` into collection `{}`: the backup's {field} is {backup}, `{}` has {field} {have}; restore into a collection with the same {field}, or into a new one (--to-collection with a name long-term does not have)",
            target.table_id, target.table_id
        ))
    };
    let mut out = Vec::with_capacity(partitions.len());
    for p in partitions {
        if p.dimension != target.dimension {
            return Err(refuse(
                "dimension",
                p.dimension.to_string(),
                target.dimension.to_string(),
            ));
        }
        if p.metric_type != target.metric_type {
            return Err(refuse(
                "metric_type",
                p.metric_type.to_string(),
                target.metric_type.to_string(),
            ));
        }
        let built = files
            .iter()
            .any(|f| f.table_id == p.table_id && f.file_type == FileType::Index);
        if built && p.engine_type != target.engine_type {
            return Err(refuse(
                "engine_type (index type of the built index files)",
                p.engine_type.to_string(),
                target.engine_type.to_string(),
            ));
        }
        if built && !same_params(&p.index_params, &target.index_params) {
            return Err(refuse(
                "index_params (of the built index files)",
                p.index_params.clone(),
                target.index_params.clone(),
            ));
        }
        out.push(TableRow {
            id: 0,
            owner_table: target.table_id.clone(),
            index_file_size: target.index_file_size,
            engine_type: target.engine_type,
            index_params: if built {
                // Equal as JSON: keep the backup's text, which its digests cover.
                p.index_params.clone()
            } else {
                target.index_params.clone()
            },
            // What `DBImpl::CreatePartition` writes, as migrate does: the owner's
            // flush_lsn (a partition of the same collection keeps the one it had).
            flush_lsn: if p.owner_table == target.table_id {
                p.flush_lsn
            } else {
                target.flush_lsn
            },
            ..p.clone()
        });
    }
    Ok(out)
}

/// Whether two `index_params` texts hold the same JSON (or are the same text).
fn same_params(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (
                serde_json::from_str::<serde_json::Value>(a),
                serde_json::from_str::<serde_json::Value>(b),
            ),
            (Ok(x), Ok(y)) if x == y
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{EngineType, MetricType, MilvusDate, TableState};

    fn coll(id: &str, engine: EngineType, params: &str) -> TableRow {
        TableRow {
            id: 7,
            table_id: id.into(),
            state: TableState::Normal,
            dimension: 8,
            created_on: 1,
            flag: 0,
            index_file_size: 1 << 20,
            engine_type: engine,
            index_params: params.into(),
            metric_type: MetricType::L2,
            owner_table: String::new(),
            partition_tag: String::new(),
            version: Some("1.1.1".into()),
            flush_lsn: 11,
        }
    }

    fn part(owner: &TableRow) -> TableRow {
        TableRow {
            table_id: "p1".into(),
            owner_table: owner.table_id.clone(),
            partition_tag: "day_2026-11-20".into(),
            ..owner.clone()
        }
    }

    fn file(table_id: &str, file_type: FileType, engine: EngineType) -> FileRow {
        FileRow {
            id: 0,
            table_id: table_id.into(),
            segment_id: "1".into(),
            engine_type: engine,
            file_id: "1".into(),
            file_type,
            file_size: 10,
            row_count: 1,
            updated_time: 1,
            created_on: 1,
            date: MilvusDate::EMPTY,
            flush_lsn: 0,
        }
    }

    const DAY: &str = "2026-11-20";

    #[test]
    fn raw_partitions_take_the_target_collections_index() {
        let src = coll("live", EngineType::IvfFlat, r#"{"nlist":16}"#);
        let dst = TableRow {
            index_file_size: 2 << 20,
            flush_lsn: 99,
            ..coll("other", EngineType::IvfPq, r#"{"nlist":32,"m":4}"#)
        };
        let raw = [file("p1", FileType::Raw, EngineType::Flat)];
        let day: Day = DAY.parse().unwrap();
        let out = retarget_partitions("live", &dst, &[part(&src)], &raw, day).unwrap();
        assert_eq!(
            out,
            [TableRow {
                id: 0,
                owner_table: "other".into(),
                index_file_size: 2 << 20,
                engine_type: EngineType::IvfPq,
                index_params: r#"{"nlist":32,"m":4}"#.into(),
                flush_lsn: 99,
                ..part(&src)
            }]
        );
    }

    #[test]
    fn built_index_files_of_another_index_are_refused() {
        let src = coll("live", EngineType::IvfFlat, r#"{"nlist":16}"#);
        let day: Day = DAY.parse().unwrap();
        let built = [
            file("p1", FileType::Index, EngineType::IvfFlat),
            file("p1", FileType::Backup, EngineType::Flat),
        ];
        let cases = [
            (
                coll("other", EngineType::IvfPq, r#"{"nlist":16}"#),
                "engine_type",
            ),
            (
                coll("other", EngineType::IvfFlat, r#"{"nlist":32}"#),
                "index_params",
            ),
            (
                TableRow {
                    dimension: 16,
                    ..coll("other", EngineType::IvfFlat, r#"{"nlist":16}"#)
                },
                "dimension",
            ),
            (
                TableRow {
                    metric_type: MetricType::Ip,
                    ..coll("other", EngineType::IvfFlat, r#"{"nlist":16}"#)
                },
                "metric_type",
            ),
        ];
        for (dst, field) in cases {
            let err = retarget_partitions("live", &dst, &[part(&src)], &built, day).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{field}: {err}");
            let msg = err.to_string();
            assert!(
                msg.contains("`live`") && msg.contains("`other`") && msg.contains(field),
                "{field}: {msg}"
            );
        }
        // The same index written differently is the same index.
        let dst = coll("other", EngineType::IvfFlat, r#"{ "nlist": 16 }"#);
        let out = retarget_partitions("live", &dst, &[part(&src)], &built, day).unwrap();
        assert_eq!(out[0].engine_type, EngineType::IvfFlat);
        assert_eq!(out[0].owner_table, "other");
    }
}
