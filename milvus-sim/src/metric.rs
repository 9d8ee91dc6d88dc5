//! Distances of the seven Milvus 1.1 metrics, brute force over raw rows.
//!
//! Float vectors: L2 (squared, smaller first) and IP (larger first). Binary vectors, as
//! faiss's binary indexes used by Milvus compute them: HAMMING (differing bits), JACCARD
//! (`1 - |a & b| / |a | b|`), TANIMOTO (`-log2(|a & b| / |a | b|)`), all smaller first, and
//! the structure metrics, which keep only matches (distance 0): SUBSTRUCTURE keeps rows that
//! hold every bit of the query, SUPERSTRUCTURE rows whose bits all lie in the query.

use milvus_tier::meta::MetricType;

use crate::storage::RawData;

/// A query vector.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Float values.
    Float(Vec<f32>),
    /// `dim / 8` bytes.
    Binary(Vec<u8>),
}

/// Whether `m` is one of the binary metrics.
pub fn is_binary(m: MetricType) -> bool {
    !matches!(m, MetricType::L2 | MetricType::Ip)
}

/// Whether larger distances rank first (IP only).
pub fn larger_first(m: MetricType) -> bool {
    m == MetricType::Ip
}

/// Distance from `q` to row `row` of `data`, or `None` when the row is not a match (structure
/// metrics) or the kinds of vectors differ.
pub fn distance(m: MetricType, q: &Query, data: &RawData, row: usize) -> Option<f32> {
    match q {
        Query::Float(q) => {
            let dim = q.len();
            let v = data.vectors.get(row * dim..(row + 1) * dim)?;
            Some(match m {
                MetricType::Ip => q.iter().zip(v).map(|(a, b)| a * b).sum(),
                _ => q.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum(),
            })
        }
        Query::Binary(q) => {
            let w = q.len();
            let v = data.bits.get(row * w..(row + 1) * w)?;
            let (mut and, mut or, mut xor, mut qn, mut vn) = (0u32, 0u32, 0u32, 0u32, 0u32);
            for (a, b) in q.iter().zip(v) {
                and += (a & b).count_ones();
                or += (a | b).count_ones();
                xor += (a ^ b).count_ones();
                qn += a.count_ones();
                vn += b.count_ones();
            }
            let ratio = if or == 0 { 1.0 } else { and as f64 / or as f64 };
            match m {
                MetricType::Hamming => Some(xor as f32),
                MetricType::Jaccard => Some((1.0 - ratio) as f32),
                MetricType::Tanimoto => Some(-ratio.log2() as f32),
                MetricType::Substructure => (and == qn).then_some(0.0),
                MetricType::Superstructure => (and == vn).then_some(0.0),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(rows: &[&[u8]]) -> RawData {
        RawData {
            ids: (0..rows.len() as i64).collect(),
            vectors: Vec::new(),
            bits: rows.concat(),
        }
    }

    #[test]
    fn binary_metrics() {
        let data = bits(&[&[0b1111_0000], &[0b0011_0000]]);
        let q = Query::Binary(vec![0b0011_0000]);
        assert_eq!(distance(MetricType::Hamming, &q, &data, 0), Some(2.0));
        assert_eq!(distance(MetricType::Jaccard, &q, &data, 0), Some(0.5));
        assert_eq!(distance(MetricType::Tanimoto, &q, &data, 0), Some(1.0));
        assert_eq!(distance(MetricType::Substructure, &q, &data, 0), Some(0.0));
        assert_eq!(distance(MetricType::Superstructure, &q, &data, 0), None);
        assert_eq!(
            distance(MetricType::Superstructure, &q, &data, 1),
            Some(0.0)
        );
        let f = RawData {
            ids: vec![7],
            vectors: vec![1.0, 2.0],
            bits: Vec::new(),
        };
        let q = Query::Float(vec![0.0, 1.0]);
        assert_eq!(distance(MetricType::L2, &q, &f, 0), Some(2.0));
        assert_eq!(distance(MetricType::Ip, &q, &f, 0), Some(2.0));
    }
}
