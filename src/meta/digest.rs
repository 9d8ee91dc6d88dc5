//! The rows digest: one BLAKE3 value for a set of `Tables` and `TableFiles` rows, recorded by
//! the journal (publish) and the backup manifest, and compared on every rerun, verify and
//! restore.
//!
//! The digest is computed from Milvus 1.1.1's columns, named one by one in a fixed order with
//! a defined encoding of each value, never from the serde form of [`TableRow`] / [`FileRow`]:
//! a field added to those structs cannot change a digest already recorded. The stored value
//! names its encoding (`v2:<hex>`); a bare 64-digit hex value is the first encoding (the JSON
//! of the whole row structs, as milvus-tier wrote it before versions existed), still accepted
//! through a frozen encoder that spells out that JSON field by field.
//!
//! Only two functions are used by the rest of the crate: [`rows_digest`] (compute, current
//! encoding) and [`check_rows_digest`] (compare a recorded value with rows, in the encoding
//! the value names). The encodings are documented in `docs/digests.md`.

use super::types::{FileRow, TableRow};

/// The prefix of a digest in the current encoding: `v2:` then 64 lowercase hex digits.
pub const ROWS_DIGEST_PREFIX: &str = "v2:";

/// What the current encoding hashes first (domain separation from every other BLAKE3 use).
const V2_HEADER: &[u8] = b"milvus-tier rows digest v2\n";

/// The encoding a recorded rows digest names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsDigestVersion {
    /// Bare 64-digit hex: the JSON of the whole row structs (milvus-tier before `v2`).
    Legacy,
    /// `v2:<hex>`: Milvus columns by name, length-prefixed values.
    V2,
}

impl RowsDigestVersion {
    /// The version of a recorded digest; `None` for a value of no known form (written by a
    /// newer milvus-tier, or not a digest at all).
    pub fn of(recorded: &str) -> Option<RowsDigestVersion> {
        let hex64 =
            |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        match recorded.strip_prefix(ROWS_DIGEST_PREFIX) {
            Some(h) if hex64(h) => Some(RowsDigestVersion::V2),
            Some(_) => None,
            None if hex64(recorded) => Some(RowsDigestVersion::Legacy),
            None => None,
        }
    }

    /// The digest of `tables` and `files` in this encoding, as it is stored.
    pub fn digest(self, tables: &[TableRow], files: &[FileRow]) -> String {
        match self {
            RowsDigestVersion::Legacy => legacy::digest(tables, files),
            RowsDigestVersion::V2 => format!("{ROWS_DIGEST_PREFIX}{}", v2_hex(tables, files)),
        }
    }

    /// The version's name, for messages (`legacy`, `v2`).
    pub fn name(self) -> &'static str {
        match self {
            RowsDigestVersion::Legacy => "legacy",
            RowsDigestVersion::V2 => "v2",
        }
    }
}

/// How a recorded rows digest compares with a set of rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowsDigestCheck {
    /// The rows hash to the recorded value in the encoding it names.
    Matches(RowsDigestVersion),
    /// They do not; `recomputed` is what the rows hash to in that encoding.
    Differs {
        /// The encoding the recorded value names.
        version: RowsDigestVersion,
        /// The rows' digest in that encoding.
        recomputed: String,
    },
    /// The recorded value names no encoding this version of milvus-tier knows.
    UnknownVersion,
}

impl RowsDigestCheck {
    /// Whether the rows match the recorded digest.
    pub fn matches(&self) -> bool {
        matches!(self, RowsDigestCheck::Matches(_))
    }
}

/// The digest of `tables` and `files` in the current encoding (`v2:<hex>`): what publish
/// records in the journal and backup in the manifest. Independent of row order and of the
/// local `id` column.
pub fn rows_digest(tables: &[TableRow], files: &[FileRow]) -> String {
    RowsDigestVersion::V2.digest(tables, files)
}

/// Compare a recorded rows digest (any version: legacy hex or `v2:<hex>`) with `tables` and
/// `files`, hashing them in the encoding the recorded value names.
pub fn check_rows_digest(
    recorded: &str,
    tables: &[TableRow],
    files: &[FileRow],
) -> RowsDigestCheck {
    let Some(version) = RowsDigestVersion::of(recorded) else {
        return RowsDigestCheck::UnknownVersion;
    };
    let recomputed = version.digest(tables, files);
    if recomputed == recorded {
        RowsDigestCheck::Matches(version)
    } else {
        RowsDigestCheck::Differs {
            version,
            recomputed,
        }
    }
}

/// One column value as the `v2` encoding writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer column (enums as Milvus's integers): `i<decimal>`.
    Int(i64),
    /// A string column: `s<byte length>:<UTF-8 bytes>`.
    Str(&'a str),
    /// SQL NULL: `n`.
    Null,
}

impl Value<'_> {
    fn encode(self, out: &mut Vec<u8>) {
        match self {
            Value::Int(v) => {
                out.push(b'i');
                out.extend_from_slice(v.to_string().as_bytes());
            }
            Value::Str(s) => {
                out.push(b's');
                out.extend_from_slice(s.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(s.as_bytes());
            }
            Value::Null => out.push(b'n'),
        }
    }
}

/// Names of the columns whose values differ between two rows' column lists (what
/// [`table_columns`] or [`file_columns`] give): the columns a conflict names.
pub fn differing<const N: usize>(
    a: &[(&'static str, Value<'_>); N],
    b: &[(&'static str, Value<'_>); N],
) -> Vec<&'static str> {
    a.iter()
        .zip(b)
        .filter(|(x, y)| x.1 != y.1)
        .map(|(x, _)| x.0)
        .collect()
}

/// The digested columns of a `Tables` row, in the `v2` order (Milvus 1.1.1's column order,
/// without the local `id`). The destructuring names every field: a field added to
/// [`TableRow`] does not compile here until someone decides whether it is a Milvus column
/// (a new encoding version) or not (`field: _`).
pub fn table_columns(t: &TableRow) -> [(&'static str, Value<'_>); 13] {
    let TableRow {
        id: _,
        table_id,
        state,
        dimension,
        created_on,
        flag,
        index_file_size,
        engine_type,
        index_params,
        metric_type,
        owner_table,
        partition_tag,
        version,
        flush_lsn,
    } = t;
    [
        ("table_id", Value::Str(table_id)),
        ("state", Value::Int(state.code().into())),
        ("dimension", Value::Int(*dimension)),
        ("created_on", Value::Int(*created_on)),
        ("flag", Value::Int(*flag)),
        ("index_file_size", Value::Int(*index_file_size)),
        ("engine_type", Value::Int(engine_type.code().into())),
        ("index_params", Value::Str(index_params)),
        ("metric_type", Value::Int(metric_type.code().into())),
        ("owner_table", Value::Str(owner_table)),
        ("partition_tag", Value::Str(partition_tag)),
        (
            "version",
            version.as_deref().map_or(Value::Null, Value::Str),
        ),
        ("flush_lsn", Value::Int(*flush_lsn)),
    ]
}

/// The digested columns of a `TableFiles` row, in the `v2` order (Milvus 1.1.1's column
/// order, without the local `id`). Every field is named, as in [`table_columns`].
pub fn file_columns(f: &FileRow) -> [(&'static str, Value<'_>); 11] {
    let FileRow {
        id: _,
        table_id,
        segment_id,
        engine_type,
        file_id,
        file_type,
        file_size,
        row_count,
        updated_time,
        created_on,
        date,
        flush_lsn,
    } = f;
    [
        ("table_id", Value::Str(table_id)),
        ("segment_id", Value::Str(segment_id)),
        ("engine_type", Value::Int(engine_type.code().into())),
        ("file_id", Value::Str(file_id)),
        ("file_type", Value::Int(file_type.code().into())),
        ("file_size", Value::Int(*file_size)),
        ("row_count", Value::Int(*row_count)),
        ("updated_time", Value::Int(*updated_time)),
        ("created_on", Value::Int(*created_on)),
        ("date", Value::Int(date.0.into())),
        ("flush_lsn", Value::Int(*flush_lsn)),
    ]
}

/// One row in the `v2` encoding: the table name, then per column `\t<name>=<value>`, then
/// `\n`.
pub fn encode_row(table: &str, columns: &[(&str, Value<'_>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(table.as_bytes());
    for (name, value) in columns {
        out.push(b'\t');
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        value.encode(&mut out);
    }
    out.push(b'\n');
    out
}

/// BLAKE3 of the header, then every row's encoding, sorted bytewise.
fn v2_hex(tables: &[TableRow], files: &[FileRow]) -> String {
    let mut rows: Vec<Vec<u8>> = tables
        .iter()
        .map(|t| encode_row("Tables", &table_columns(t)))
        .chain(
            files
                .iter()
                .map(|f| encode_row("TableFiles", &file_columns(f))),
        )
        .collect();
    rows.sort();
    let mut h = blake3::Hasher::new();
    h.update(V2_HEADER);
    for r in &rows {
        h.update(r);
    }
    h.finalize().to_hex().to_string()
}

/// The first encoding, frozen: each row as the one-line JSON serde wrote for the whole
/// [`TableRow`] / [`FileRow`] structs (with `id` 0) when this encoding was current, lines
/// sorted, each followed by `\n`, hashed with BLAKE3, stored as bare hex. The field list is
/// written out here, so changing the structs cannot change it.
mod legacy {
    use super::{FileRow, TableRow};

    /// A JSON string literal as serde_json writes one (quotes, backslash and control
    /// characters escaped, everything else verbatim UTF-8).
    fn string(s: &str) -> String {
        serde_json::to_string(s).expect("a string serializes")
    }

    fn table(t: &TableRow) -> String {
        format!(
            concat!(
                "{{\"id\":0,\"table_id\":{},\"state\":{},\"dimension\":{},\"created_on\":{},",
                "\"flag\":{},\"index_file_size\":{},\"engine_type\":{},\"index_params\":{},",
                "\"metric_type\":{},\"owner_table\":{},\"partition_tag\":{},\"version\":{},",
                "\"flush_lsn\":{}}}"
            ),
            string(&t.table_id),
            t.state.code(),
            t.dimension,
            t.created_on,
            t.flag,
            t.index_file_size,
            t.engine_type.code(),
            string(&t.index_params),
            t.metric_type.code(),
            string(&t.owner_table),
            string(&t.partition_tag),
            t.version
                .as_deref()
                .map_or_else(|| "null".to_string(), string),
            t.flush_lsn,
        )
    }

    fn file(f: &FileRow) -> String {
        format!(
            concat!(
                "{{\"id\":0,\"table_id\":{},\"segment_id\":{},\"engine_type\":{},",
                "\"file_id\":{},\"file_type\":{},\"file_size\":{},\"row_count\":{},",
                "\"updated_time\":{},\"created_on\":{},\"date\":{},\"flush_lsn\":{}}}"
            ),
            string(&f.table_id),
            string(&f.segment_id),
            f.engine_type.code(),
            string(&f.file_id),
            f.file_type.code(),
            f.file_size,
            f.row_count,
            f.updated_time,
            f.created_on,
            f.date.0,
            f.flush_lsn,
        )
    }

    pub(super) fn lines(tables: &[TableRow], files: &[FileRow]) -> Vec<String> {
        let mut lines: Vec<String> = tables
            .iter()
            .map(table)
            .chain(files.iter().map(file))
            .collect();
        lines.sort();
        lines
    }

    pub(super) fn digest(tables: &[TableRow], files: &[FileRow]) -> String {
        let mut h = blake3::Hasher::new();
        for l in lines(tables, files) {
            h.update(l.as_bytes());
            h.update(b"\n");
        }
        h.finalize().to_hex().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{EngineType, FileType, MetricType, MilvusDate, TableState};

    /// A collection row, two partition rows (one with awkward strings and a NULL version)
    /// and two file rows.
    pub(crate) fn fixture() -> (TableRow, Vec<TableRow>, Vec<FileRow>) {
        let coll = TableRow {
            id: 3,
            table_id: "vectors".into(),
            state: TableState::Normal,
            dimension: 768,
            created_on: 1_764_000_000_000_000,
            flag: 0,
            index_file_size: 268_435_456,
            engine_type: EngineType::IvfPq,
            index_params: "{\"m\": 96, \"nlist\": 4096}".into(),
            metric_type: MetricType::L2,
            owner_table: String::new(),
            partition_tag: String::new(),
            version: Some("1.1.1".into()),
            flush_lsn: 0,
        };
        let p1 = TableRow {
            id: 7,
            table_id: "1764000000000000300".into(),
            owner_table: "vectors".into(),
            partition_tag: "day_2026-11-25".into(),
            flush_lsn: 9,
            ..coll.clone()
        };
        let p2 = TableRow {
            id: 8,
            table_id: "p\"q\\r/s".into(),
            state: TableState::ToDelete,
            dimension: -1,
            created_on: -5,
            flag: 1,
            index_file_size: 0,
            engine_type: EngineType::Flat,
            index_params: "tab\there\nnewline \u{1} ünï 漢".into(),
            metric_type: MetricType::Ip,
            owner_table: "vectors".into(),
            partition_tag: String::new(),
            version: None,
            flush_lsn: i64::MAX,
        };
        let f1 = FileRow {
            id: 11,
            table_id: "1764000000000000300".into(),
            segment_id: "1764000000000000400".into(),
            engine_type: EngineType::IvfPq,
            file_id: "1764000000000000500".into(),
            file_type: FileType::Index,
            file_size: 123_456_789,
            row_count: 100_000,
            updated_time: 1_764_000_000_123_456,
            created_on: 1_764_000_000_000_001,
            date: MilvusDate(1_261_024),
            flush_lsn: 42,
        };
        let f2 = FileRow {
            id: 12,
            segment_id: "1764000000000000401".into(),
            engine_type: EngineType::Flat,
            file_id: "1764000000000000401".into(),
            file_type: FileType::Raw,
            file_size: 0,
            row_count: 0,
            updated_time: i64::MIN,
            date: MilvusDate::EMPTY,
            flush_lsn: 0,
            ..f1.clone()
        };
        (coll, vec![p1, p2], vec![f1, f2])
    }

    /// Recorded with milvus-tier's code before the digest had versions (`rows_digest` hashed
    /// `serde_json::to_string` of the whole structs): the values journals and manifests
    /// written by it hold.
    const LEGACY_DAY: &str = "ee32de13881b2e0b98ece70c65740825597a0c6e33efa833ff544fa576b0bcd0";
    const LEGACY_COLLECTION: &str =
        "6f0377eac9e78b3b55f9de134a320b9c4e2b3ed125d5bd643cbbc4b3792a0de2";

    #[test]
    fn legacy_digest_is_the_one_recorded_before_versions() {
        let (coll, tables, files) = fixture();
        assert_eq!(legacy::digest(&tables, &files), LEGACY_DAY);
        assert_eq!(legacy::digest(&[coll], &[]), LEGACY_COLLECTION);
        assert_eq!(
            legacy::digest(&[], &[]),
            blake3::hash(b"").to_hex().to_string()
        );
        // The frozen encoder writes, line for line, the JSON serde wrote then.
        let lines = legacy::lines(&tables[1..], &files[1..]);
        assert_eq!(
            lines,
            [
                r#"{"id":0,"table_id":"1764000000000000300","segment_id":"1764000000000000401","engine_type":1,"file_id":"1764000000000000401","file_type":1,"file_size":0,"row_count":0,"updated_time":-9223372036854775808,"created_on":1764000000000001,"date":-1,"flush_lsn":0}"#,
                r#"{"id":0,"table_id":"p\"q\\r/s","state":1,"dimension":-1,"created_on":-5,"flag":1,"index_file_size":0,"engine_type":1,"index_params":"tab\there\nnewline \u0001 ünï 漢","metric_type":2,"owner_table":"vectors","partition_tag":"","version":null,"flush_lsn":9223372036854775807}"#,
            ]
        );
        // A legacy value is checked in the legacy encoding.
        assert_eq!(
            check_rows_digest(LEGACY_DAY, &tables, &files),
            RowsDigestCheck::Matches(RowsDigestVersion::Legacy)
        );
        let mut changed = files.clone();
        changed[0].row_count += 1;
        assert!(matches!(
            check_rows_digest(LEGACY_DAY, &tables, &changed),
            RowsDigestCheck::Differs { version: RowsDigestVersion::Legacy, ref recomputed }
                if recomputed.len() == 64 && recomputed != LEGACY_DAY
        ));
    }

    /// The current encoding of the fixture, pinned: a change of this value is a new
    /// encoding version, never an edit of `v2`.
    const V2_DAY: &str = "v2:275172f1b7115790d380eacbbd45009d4854131bdf1c05d6befcf2c628140a11";

    #[test]
    fn current_digest_is_pinned_and_spelled_out() {
        let (coll, tables, files) = fixture();
        let digest = rows_digest(&tables, &files);
        assert_eq!(digest, V2_DAY);
        assert_eq!(
            check_rows_digest(&digest, &tables, &files),
            RowsDigestCheck::Matches(RowsDigestVersion::V2)
        );
        // The same value from the encoding as docs/digests.md spells it, byte by byte.
        let mut rows: Vec<&[u8]> = vec![
            b"Tables\ttable_id=s19:1764000000000000300\tstate=i0\tdimension=i768\tcreated_on=i1764000000000000\tflag=i0\tindex_file_size=i268435456\tengine_type=i6\tindex_params=s24:{\"m\": 96, \"nlist\": 4096}\tmetric_type=i1\towner_table=s7:vectors\tpartition_tag=s14:day_2026-11-25\tversion=s5:1.1.1\tflush_lsn=i9\n",
            "Tables\ttable_id=s7:p\"q\\r/s\tstate=i1\tdimension=i-1\tcreated_on=i-5\tflag=i1\tindex_file_size=i0\tengine_type=i1\tindex_params=s28:tab\there\nnewline \u{1} ünï 漢\tmetric_type=i2\towner_table=s7:vectors\tpartition_tag=s0:\tversion=n\tflush_lsn=i9223372036854775807\n".as_bytes(),
            b"TableFiles\ttable_id=s19:1764000000000000300\tsegment_id=s19:1764000000000000400\tengine_type=i6\tfile_id=s19:1764000000000000500\tfile_type=i3\tfile_size=i123456789\trow_count=i100000\tupdated_time=i1764000000123456\tcreated_on=i1764000000000001\tdate=i1261024\tflush_lsn=i42\n",
            b"TableFiles\ttable_id=s19:1764000000000000300\tsegment_id=s19:1764000000000000401\tengine_type=i1\tfile_id=s19:1764000000000000401\tfile_type=i1\tfile_size=i0\trow_count=i0\tupdated_time=i-9223372036854775808\tcreated_on=i1764000000000001\tdate=i-1\tflush_lsn=i0\n",
        ];
        rows.sort();
        let mut h = blake3::Hasher::new();
        h.update(b"milvus-tier rows digest v2\n");
        for r in rows {
            h.update(r);
        }
        assert_eq!(digest, format!("v2:{}", h.finalize().to_hex()));
        // Order and the local id do not count; any column does.
        let mut shuffled = files.clone();
        shuffled.reverse();
        shuffled[0].id = 999;
        assert_eq!(rows_digest(&tables, &shuffled), digest);
        let mut other = tables.clone();
        other[1].version = Some(String::new());
        assert_ne!(
            rows_digest(&other, &files),
            digest,
            "NULL is not the empty string"
        );
        // The collection row alone, as a manifest's collection_row_digest holds it.
        assert!(rows_digest(&[coll], &[]).starts_with("v2:"));
    }

    #[test]
    fn the_digest_reads_named_milvus_columns_not_the_structs_serde() {
        let (_, tables, files) = fixture();
        // A newer writer's row with a field that is no Milvus column: this version reads it
        // (serde ignores the unknown key) and its digest is the digest of the Milvus
        // columns, so a day recorded by one version is the same day for the other.
        let mut json = serde_json::to_value(&tables[0]).unwrap();
        json["archived_at"] = 1_765_000_000_000_000i64.into();
        let wider: TableRow = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(
            rows_digest(&[wider], &files),
            rows_digest(&tables[..1], &files)
        );
        // What is hashed is this list of Milvus columns, not the struct's serde form (which
        // also carries `id`, and would carry any field added later).
        let names: Vec<&str> = table_columns(&tables[0]).iter().map(|c| c.0).collect();
        assert_eq!(
            names,
            [
                "table_id",
                "state",
                "dimension",
                "created_on",
                "flag",
                "index_file_size",
                "engine_type",
                "index_params",
                "metric_type",
                "owner_table",
                "partition_tag",
                "version",
                "flush_lsn"
            ]
        );
        let names: Vec<&str> = file_columns(&files[0]).iter().map(|c| c.0).collect();
        assert_eq!(
            names,
            [
                "table_id",
                "segment_id",
                "engine_type",
                "file_id",
                "file_type",
                "file_size",
                "row_count",
                "updated_time",
                "created_on",
                "date",
                "flush_lsn"
            ]
        );
        assert!(json.as_object().unwrap().len() > names.len() + 1);
    }

    #[test]
    fn recorded_values_of_no_known_form_are_told_apart() {
        let (_, tables, files) = fixture();
        for bad in [
            "",
            "v3:5e7dbd2d1d44f2bcd6f4f1e4c6aa4b6f0b1b6c8b0d0b9b6e0c9c4f2f9d7a1c3e",
            "v2:short",
            "EE32DE13881B2E0B98ECE70C65740825597A0C6E33EFA833FF544FA576B0BCD0",
        ] {
            assert_eq!(
                check_rows_digest(bad, &tables, &files),
                RowsDigestCheck::UnknownVersion,
                "{bad}"
            );
        }
    }
}
