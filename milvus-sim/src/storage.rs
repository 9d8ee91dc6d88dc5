//! Segment folders on disk, laid out as Milvus 1.1.1 lays them out.
//!
//! `<storage>/db/tables/<table_id>/<segment_id>/` holds `<name>.rv` (8-byte little-endian
//! byte count, then f32 vectors, or `dim / 8` bytes per row for binary vectors), `<name>.uid`
//! (8-byte byte count, then i64 ids), `deleted_docs` (8-byte byte count, then the i32 row
//! offsets deleted, `DefaultDeletedDocsFormat`) and `bloom_filter`; an index file is
//! `<segment dir>/<index file_id>` with no extension (source notes §6).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Result, SimError, io};

/// Name of the deleted-offsets file of a segment.
pub const DELETED_DOCS: &str = "deleted_docs";

/// Raw vectors and ids of one segment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawData {
    /// Vector ids, one per row.
    pub ids: Vec<i64>,
    /// Row-major float vectors, `ids.len() * dim` values (empty for binary vectors).
    pub vectors: Vec<f32>,
    /// Row-major binary vectors, `ids.len() * dim / 8` bytes (empty for float vectors).
    pub bits: Vec<u8>,
}

impl RawData {
    /// Rows held.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    /// `TableFiles.file_size` of a raw file with this data: vector bytes plus 8 bytes per id
    /// (`SegmentWriter::Size`, headers excluded).
    pub fn file_size(&self) -> i64 {
        (self.vectors.len() * 4 + self.bits.len() + self.ids.len() * 8) as i64
    }

    /// Bytes of the `.rv` body.
    fn rv_bytes(&self) -> Vec<u8> {
        let mut out = f32_bytes(&self.vectors);
        out.extend_from_slice(&self.bits);
        out
    }

    /// Append row `row` of `other` (same kind of vectors).
    pub fn push_row(&mut self, other: &RawData, row: usize) {
        let n = other.ids.len().max(1);
        let fw = other.vectors.len() / n;
        let bw = other.bits.len() / n;
        self.ids.push(other.ids[row]);
        self.vectors
            .extend_from_slice(&other.vectors[row * fw..(row + 1) * fw]);
        self.bits
            .extend_from_slice(&other.bits[row * bw..(row + 1) * bw]);
    }

    /// Append all rows of `other`.
    pub fn extend(&mut self, other: RawData) {
        self.ids.extend(other.ids);
        self.vectors.extend(other.vectors);
        self.bits.extend(other.bits);
    }

    /// The rows whose offsets are not in `deleted`.
    pub fn without(&self, deleted: &[i32]) -> RawData {
        if deleted.is_empty() {
            return self.clone();
        }
        let gone: std::collections::HashSet<i32> = deleted.iter().copied().collect();
        let mut out = RawData::default();
        for row in 0..self.rows() {
            if !gone.contains(&(row as i32)) {
                out.push_row(self, row);
            }
        }
        out
    }
}

/// The storage root of one simulated node.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    /// Storage under `root` (`storage.path`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Storage { root: root.into() }
    }

    /// `<root>/db/tables`.
    pub fn tables_dir(&self) -> PathBuf {
        self.root.join("db").join("tables")
    }

    /// `<root>/db/tables/<table_id>`.
    pub fn table_dir(&self, table_id: &str) -> PathBuf {
        self.tables_dir().join(table_id)
    }

    /// `<root>/db/tables/<table_id>/<segment_id>`.
    pub fn segment_dir(&self, table_id: &str, segment_id: &str) -> PathBuf {
        self.table_dir(table_id).join(segment_id)
    }

    /// Create the folder of a new table (a collection or partition).
    pub fn create_table_dir(&self, table_id: &str) -> Result<()> {
        let dir = self.table_dir(table_id);
        fs::create_dir_all(&dir).map_err(io(dir))
    }

    /// Write a complete raw segment named `name` and return its `file_size`.
    pub fn write_raw(
        &self,
        table_id: &str,
        segment_id: &str,
        name: &str,
        data: &RawData,
    ) -> Result<i64> {
        let dir = self.segment_dir(table_id, segment_id);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        write_framed(&dir.join(format!("{name}.rv")), &data.rv_bytes())?;
        write_framed(&dir.join(format!("{name}.uid")), &i64_bytes(&data.ids))?;
        write_framed(&dir.join(DELETED_DOCS), &[])?;
        let bloom = bloom_filter(&data.ids);
        let path = dir.join("bloom_filter");
        fs::write(&path, bloom).map_err(io(path))?;
        Ok(data.file_size())
    }

    /// Write only the first half of a segment's vector file, as a process dying in the middle
    /// of a merge would leave it.
    pub fn write_partial(
        &self,
        table_id: &str,
        segment_id: &str,
        name: &str,
        data: &RawData,
    ) -> Result<()> {
        let dir = self.segment_dir(table_id, segment_id);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let bytes = data.rv_bytes();
        let mut out = (bytes.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&bytes[..bytes.len() / 2]);
        let path = dir.join(format!("{name}.rv"));
        fs::write(&path, out).map_err(io(path))
    }

    /// Read the raw data of a segment. The files are looked up as `<file_id>.rv`, then
    /// `<segment_id>.rv`, then any `*.rv` in the folder (copied segments keep their names).
    pub fn read_raw(
        &self,
        table_id: &str,
        segment_id: &str,
        file_id: &str,
        dim: usize,
    ) -> Result<RawData> {
        let dir = self.segment_dir(table_id, segment_id);
        let name = [file_id, segment_id]
            .into_iter()
            .find(|n| dir.join(format!("{n}.rv")).is_file())
            .map(str::to_string)
            .or_else(|| any_rv_name(&dir))
            .ok_or_else(|| SimError::BadFile {
                path: dir.clone(),
                problem: "no .rv file in segment folder".into(),
            })?;
        let rv = read_framed(&dir.join(format!("{name}.rv")))?;
        let uid = read_framed(&dir.join(format!("{name}.uid")))?;
        let ids: Vec<i64> = uid
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        // Float rows take 4 * dim bytes, binary rows dim / 8: the length tells which.
        if dim > 0 && rv.len() == ids.len() * dim * 4 {
            let vectors = rv
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            return Ok(RawData {
                ids,
                vectors,
                bits: Vec::new(),
            });
        }
        if dim.is_multiple_of(8) && dim > 0 && rv.len() == ids.len() * dim / 8 {
            return Ok(RawData {
                ids,
                vectors: Vec::new(),
                bits: rv,
            });
        }
        Err(SimError::BadFile {
            path: dir,
            problem: format!(
                "{} vector bytes for {} ids does not fit dimension {dim}",
                rv.len(),
                ids.len()
            ),
        })
    }

    /// The offsets listed in a segment's `deleted_docs`; a missing file is an error, as
    /// `SegmentReader::LoadDeletedDocs` fails without it.
    pub fn read_deleted(&self, table_id: &str, segment_id: &str) -> Result<Vec<i32>> {
        let path = self.segment_dir(table_id, segment_id).join(DELETED_DOCS);
        let body = read_framed(&path)?;
        Ok(body
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Rewrite a segment's `deleted_docs` with `offsets`, through `temp_del` and a rename
    /// when the file exists (`DefaultDeletedDocsFormat::write`).
    pub fn write_deleted(&self, table_id: &str, segment_id: &str, offsets: &[i32]) -> Result<()> {
        let dir = self.segment_dir(table_id, segment_id);
        let path = dir.join(DELETED_DOCS);
        let body: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        if path.exists() {
            let tmp = dir.join("temp_del");
            write_framed(&tmp, &body)?;
            fs::rename(&tmp, &path).map_err(io(path))
        } else {
            write_framed(&path, &body)
        }
    }

    /// Rewrite a segment's `bloom_filter` over `ids` (the ids still live).
    pub fn write_bloom(&self, table_id: &str, segment_id: &str, ids: &[i64]) -> Result<()> {
        let path = self.segment_dir(table_id, segment_id).join("bloom_filter");
        fs::write(&path, bloom_filter(ids)).map_err(io(path))
    }

    /// The raw data of a segment without its deleted rows (`deleted_docs` required).
    pub fn read_live(
        &self,
        table_id: &str,
        segment_id: &str,
        file_id: &str,
        dim: usize,
    ) -> Result<RawData> {
        let data = self.read_raw(table_id, segment_id, file_id, dim)?;
        let deleted = self.read_deleted(table_id, segment_id)?;
        Ok(data.without(&deleted))
    }

    /// Path of an index file.
    pub fn index_path(&self, table_id: &str, segment_id: &str, file_id: &str) -> PathBuf {
        self.segment_dir(table_id, segment_id).join(file_id)
    }

    /// Write an index file and return its size in bytes.
    pub fn write_index(
        &self,
        table_id: &str,
        segment_id: &str,
        file_id: &str,
        bytes: &[u8],
    ) -> Result<i64> {
        let dir = self.segment_dir(table_id, segment_id);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(file_id);
        fs::write(&path, bytes).map_err(io(path))?;
        Ok(bytes.len() as i64)
    }

    /// Remove one file if present.
    pub fn remove_file(&self, path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
            _ => Ok(()),
        }
    }

    /// Remove a whole folder if present.
    pub fn remove_dir(&self, path: &Path) -> Result<()> {
        match fs::remove_dir_all(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
            _ => Ok(()),
        }
    }
}

fn any_rv_name(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.strip_suffix(".rv").map(str::to_string))
        .collect();
    names.sort();
    names.into_iter().next()
}

fn write_framed(path: &Path, body: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    fs::write(path, out).map_err(io(path))
}

fn read_framed(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).map_err(io(path))?;
    let bad = |problem: String| SimError::BadFile {
        path: path.to_path_buf(),
        problem,
    };
    let header: [u8; 8] = bytes
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| bad("shorter than its 8-byte header".into()))?;
    let len = u64::from_le_bytes(header) as usize;
    if bytes.len() - 8 != len {
        return Err(bad(format!(
            "header says {len} bytes, file holds {}",
            bytes.len() - 8
        )));
    }
    Ok(bytes[8..].to_vec())
}

/// Little-endian bytes of f32 values.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A small deterministic bit set over the ids (256 bytes).
fn bloom_filter(ids: &[i64]) -> Vec<u8> {
    let mut bits = vec![0u8; 256];
    for id in ids {
        let h = (*id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 53;
        bits[(h / 8) as usize] |= 1 << (h % 8);
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_segment_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::new(dir.path());
        let data = RawData {
            ids: vec![1, 2],
            vectors: vec![0.5; 8],
            bits: Vec::new(),
        };
        let size = s.write_raw("t", "s1", "s1", &data).unwrap();
        assert_eq!(size, 2 * 4 * 4 + 2 * 8);
        let rv = fs::read(s.segment_dir("t", "s1").join("s1.rv")).unwrap();
        assert_eq!(rv.len(), 8 + 32);
        assert_eq!(&rv[..8], &32u64.to_le_bytes());
        assert_eq!(s.read_raw("t", "s1", "other", 4).unwrap(), data);
        assert!(s.read_raw("t", "s1", "s1", 3).is_err());
    }
}
