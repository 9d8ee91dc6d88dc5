//! Segment folders on disk, laid out as Milvus 1.1.1 lays them out.
//!
//! `<storage>/db/tables/<table_id>/<segment_id>/` holds `<name>.rv` (8-byte little-endian
//! byte count, then f32 vectors), `<name>.uid` (8-byte byte count, then i64 ids),
//! `deleted_docs` (8-byte byte count, no offsets) and `bloom_filter`; an index file is
//! `<segment dir>/<index file_id>` with no extension (source notes §6).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Result, SimError, io};

/// Raw vectors and ids of one segment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawData {
    /// Vector ids, one per row.
    pub ids: Vec<i64>,
    /// Row-major vectors, `ids.len() * dim` values.
    pub vectors: Vec<f32>,
}

impl RawData {
    /// Rows held.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    /// `TableFiles.file_size` of a raw file with this data: vector bytes plus 8 bytes per id
    /// (`SegmentWriter::Size`, headers excluded).
    pub fn file_size(&self) -> i64 {
        (self.vectors.len() * 4 + self.ids.len() * 8) as i64
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
        write_framed(&dir.join(format!("{name}.rv")), &f32_bytes(&data.vectors))?;
        write_framed(&dir.join(format!("{name}.uid")), &i64_bytes(&data.ids))?;
        write_framed(&dir.join("deleted_docs"), &[])?;
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
        let bytes = f32_bytes(&data.vectors);
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
        let vectors: Vec<f32> = rv
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let ids: Vec<i64> = uid
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        if dim == 0 || vectors.len() != ids.len() * dim {
            return Err(SimError::BadFile {
                path: dir,
                problem: format!(
                    "{} floats for {} ids does not fit dimension {dim}",
                    vectors.len(),
                    ids.len()
                ),
            });
        }
        Ok(RawData { ids, vectors })
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
