//! Index types as the web API names them, their parameter checks, and the deterministic
//! content of simulated index files.
//!
//! An index file is `MSIMIDX1`, the engine type (i32), dimension (u32), rows (u64), the
//! parameter JSON (u32 length + bytes), then a body whose size follows the index type:
//! IVF_PQ holds a 256-entry codebook plus `m` code bytes and an 8-byte id per row (much
//! smaller than raw), IVF_SQ8 one byte per value (about a quarter of raw), the others the
//! raw vectors and ids. Identical inputs give byte-identical files.

use milvus_tier::meta::EngineType;
use serde_json::Value;

use crate::error::{Result, SimError, code};
use crate::storage::{RawData, f32_bytes};

/// Web API name of an engine type (`index_type` in requests and `GET .../indexes`).
pub fn web_name(e: EngineType) -> &'static str {
    match e {
        EngineType::Flat | EngineType::BinFlat => "FLAT",
        EngineType::IvfFlat | EngineType::BinIvfFlat => "IVFFLAT",
        EngineType::IvfSq8 => "IVFSQ8",
        EngineType::IvfSq8h => "IVFSQ8H",
        EngineType::IvfPq => "IVFPQ",
        EngineType::Rnsg => "RNSG",
        EngineType::Hnsw => "HNSW",
        EngineType::Annoy => "ANNOY",
        other => other.label(),
    }
}

/// Name `GetIndexName` reports for segments in `?info=stat`.
pub fn stat_name(e: EngineType) -> &'static str {
    match e {
        EngineType::Flat | EngineType::BinFlat => "IDMAP",
        EngineType::IvfFlat | EngineType::BinIvfFlat => "IVFFLAT",
        EngineType::IvfSq8 => "IVFSQ8",
        EngineType::Rnsg => "NSG",
        EngineType::IvfSq8h => "IVFSQ8H",
        EngineType::IvfPq => "PQ",
        EngineType::SptagKdt => "KDT",
        EngineType::SptagBkt => "BKT",
        EngineType::Hnsw => "HNSW",
        EngineType::Annoy => "ANNOY",
        EngineType::Invalid => "INVALID",
    }
}

/// Parse an `index_type` from a request (web names and engine labels, any case).
pub fn parse_index_type(name: &str) -> Result<EngineType> {
    let up = name.to_ascii_uppercase();
    let e = match up.as_str() {
        "FLAT" | "IDMAP" => EngineType::Flat,
        "IVFFLAT" | "IVF_FLAT" => EngineType::IvfFlat,
        "IVFSQ8" | "IVF_SQ8" => EngineType::IvfSq8,
        "IVFSQ8H" | "IVF_SQ8H" => EngineType::IvfSq8h,
        "IVFPQ" | "IVF_PQ" => EngineType::IvfPq,
        "RNSG" | "NSG" => EngineType::Rnsg,
        "HNSW" => EngineType::Hnsw,
        "ANNOY" => EngineType::Annoy,
        _ => {
            return Err(SimError::api(
                code::ILLEGAL_INDEX_TYPE,
                format!("Invalid index type: {name}"),
            ));
        }
    };
    Ok(e)
}

/// The bytes of an index file built from `data`.
pub fn build(engine: EngineType, params: &str, dim: usize, data: &RawData) -> Vec<u8> {
    let mut out = b"MSIMIDX1".to_vec();
    out.extend_from_slice(&engine.code().to_le_bytes());
    out.extend_from_slice(&(dim as u32).to_le_bytes());
    out.extend_from_slice(&(data.rows() as u64).to_le_bytes());
    out.extend_from_slice(&(params.len() as u32).to_le_bytes());
    out.extend_from_slice(params.as_bytes());
    let parsed: Value = serde_json::from_str(params).unwrap_or(Value::Null);
    match engine {
        EngineType::IvfPq => {
            let m = parsed
                .get("m")
                .and_then(Value::as_u64)
                .filter(|m| *m > 0 && dim.is_multiple_of(*m as usize))
                .unwrap_or(1) as usize;
            pq_body(&mut out, m, dim, data);
        }
        EngineType::IvfSq8 | EngineType::IvfSq8h => sq8_body(&mut out, dim, data),
        _ => {
            for id in &data.ids {
                out.extend_from_slice(&id.to_le_bytes());
            }
            out.extend_from_slice(&f32_bytes(&data.vectors));
            out.extend_from_slice(&data.bits);
        }
    }
    out
}

fn min_max(data: &RawData) -> (f32, f32) {
    let lo = data.vectors.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = data
        .vectors
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

fn quantize(x: f32, lo: f32, hi: f32) -> u8 {
    (((x - lo) / (hi - lo)) * 255.0).round().clamp(0.0, 255.0) as u8
}

/// Codebook of 256 levels per dimension, then per row its id and `m` codes, each code
/// the quantized mean of one sub-vector.
fn pq_body(out: &mut Vec<u8>, m: usize, dim: usize, data: &RawData) {
    let (lo, hi) = min_max(data);
    for _ in 0..dim {
        for level in 0..256 {
            let c = lo + (hi - lo) * level as f32 / 255.0;
            out.extend_from_slice(&c.to_le_bytes());
        }
    }
    let sub = dim / m;
    for (row, id) in data.ids.iter().enumerate() {
        out.extend_from_slice(&id.to_le_bytes());
        let v = &data.vectors[row * dim..(row + 1) * dim];
        for s in 0..m {
            let mean = v[s * sub..(s + 1) * sub].iter().sum::<f32>() / sub as f32;
            out.push(quantize(mean, lo, hi));
        }
    }
}

/// Range, then one byte per value.
fn sq8_body(out: &mut Vec<u8>, _dim: usize, data: &RawData) {
    let (lo, hi) = min_max(data);
    out.extend_from_slice(&lo.to_le_bytes());
    out.extend_from_slice(&hi.to_le_bytes());
    out.extend(data.vectors.iter().map(|x| quantize(*x, lo, hi)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_sizes_follow_type() {
        let dim = 16;
        let rows = 5000;
        let data = RawData {
            ids: (0..rows as i64).collect(),
            vectors: (0..rows * dim).map(|i| (i % 97) as f32 / 97.0).collect(),
            bits: Vec::new(),
        };
        let raw = data.file_size() as usize;
        let pq = build(EngineType::IvfPq, r#"{"m":4,"nlist":16}"#, dim, &data);
        let flat = build(EngineType::IvfFlat, r#"{"nlist":16}"#, dim, &data);
        let sq8 = build(EngineType::IvfSq8, r#"{"nlist":16}"#, dim, &data);
        assert!(pq.len() < raw / 2, "pq {} raw {raw}", pq.len());
        assert!(flat.len() >= raw);
        assert!(sq8.len() < raw / 3);
        assert_eq!(
            pq,
            build(EngineType::IvfPq, r#"{"m":4,"nlist":16}"#, dim, &data)
        );
    }
}
