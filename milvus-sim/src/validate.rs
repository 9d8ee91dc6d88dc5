//! Request checks of Milvus 1.1's `ValidationUtil` and web handler, applied before a request
//! touches anything: index names and parameters, search parameters by index type, partition
//! tags, binary vectors (source notes, "Request validation").

use milvus_tier::meta::{EngineType, MetricType};
use serde_json::Value;

use crate::error::{Result, SimError, code};
use crate::metric::{self, Query};

/// `QUERY_MAX_TOPK`.
pub const MAX_TOPK: i64 = 16384;
/// `MAX_INSERT_DATA_SIZE`: the vector bytes one insert may carry.
pub const MAX_INSERT_BYTES: usize = 256 * 1024 * 1024;

fn invalid(message: String) -> SimError {
    SimError::api(code::ILLEGAL_ARGUMENT, message)
}

/// The value of `name` as nlohmann's `int64_t` conversion reads it (numbers, floats
/// truncated, booleans as 0/1); strings and other types are refused.
fn int_value(params: &Value, name: &str) -> Option<Result<i64>> {
    let v = params.as_object()?.get(name)?;
    Some(match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| invalid(format!("Invalid {name}: number out of range"))),
        Value::Bool(b) => Ok(i64::from(*b)),
        other => Err(invalid(format!(
            "Invalid {name}: [json.exception.type_error.302] type must be number, but is {}",
            type_name(other)
        ))),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `CheckParameterRange`: `name` must be present (unless `optional`) and in `[min, max]`.
fn range(params: &Value, name: &str, min: i64, max: i64, optional: bool) -> Result<()> {
    match int_value(params, name) {
        None if optional => Ok(()),
        None => Err(invalid(format!("Parameter list must contain: {name}"))),
        Some(v) => {
            let v = v?;
            if v < min || v > max {
                return Err(invalid(format!(
                    "Invalid {name} value: {v}. Valid range is [{min}, {max}]"
                )));
            }
            Ok(())
        }
    }
}

/// `WebRequestHandler::CreateIndex` and `ValidateCollectionIndexType`: the web names of
/// `IndexNameMap`, exactly; IVFSQ8H needs the GPU build and is refused on CPU.
pub fn index_type(name: &str) -> Result<EngineType> {
    let e = match name {
        "FLAT" => EngineType::Flat,
        "IVFFLAT" => EngineType::IvfFlat,
        "IVFSQ8" => EngineType::IvfSq8,
        "IVFSQ8H" => EngineType::IvfSq8h,
        "RNSG" => EngineType::Rnsg,
        "IVFPQ" => EngineType::IvfPq,
        "HNSW" => EngineType::Hnsw,
        "ANNOY" => EngineType::Annoy,
        _ => {
            return Err(SimError::api(
                code::ILLEGAL_INDEX_TYPE,
                "The index type is invalid.",
            ));
        }
    };
    if e == EngineType::IvfSq8h {
        return Err(SimError::api(
            code::ILLEGAL_INDEX_TYPE,
            format!("Unsupported index type: {}", e.code()),
        ));
    }
    Ok(e)
}

/// `ValidateIndexParams`.
pub fn index_params(engine: EngineType, params: &Value, dim: i64) -> Result<()> {
    match engine {
        EngineType::IvfFlat | EngineType::IvfSq8 | EngineType::IvfSq8h | EngineType::BinIvfFlat => {
            range(params, "nlist", 1, 65536, false)
        }
        EngineType::IvfPq => {
            range(params, "nlist", 1, 65536, false)?;
            range(params, "nbits", 1, 16, true)?;
            let m = match int_value(params, "m") {
                None => return Err(invalid("Parameter list must contain: m".into())),
                Some(m) => m?,
            };
            if m < 0 {
                return Err(invalid(format!("Invalid m value: {m}")));
            }
            // IVFPQConfAdapter::IsValidForCPU: m divides the dimension.
            if m == 0 || dim % m != 0 {
                return Err(SimError::api(
                    code::ILLEGAL_DIMENSION,
                    "Invalid collection dimension, dimension can not be divided by m",
                ));
            }
            Ok(())
        }
        EngineType::Rnsg => {
            range(params, "search_length", 10, 300, false)?;
            range(params, "out_degree", 5, 300, false)?;
            range(params, "candidate_pool_size", 50, 1000, false)?;
            range(params, "knng", 5, 300, false)
        }
        EngineType::Hnsw => {
            range(params, "M", 4, 64, false)?;
            range(params, "efConstruction", 8, 512, false)
        }
        EngineType::Annoy => range(params, "n_trees", 1, 1024, false),
        _ => Ok(()),
    }
}

/// `CreateIndexRequest`: binary collections take FLAT and IVFFLAT only, as their binary
/// engines.
pub fn adapt_to_metric(engine: EngineType, metric: MetricType) -> Result<EngineType> {
    if !metric::is_binary(metric) {
        return Ok(engine);
    }
    match engine {
        EngineType::Flat => Ok(EngineType::BinFlat),
        EngineType::IvfFlat => Ok(EngineType::BinIvfFlat),
        _ => Err(SimError::api(
            code::ILLEGAL_INDEX_TYPE,
            "Invalid index type for collection metric type",
        )),
    }
}

/// `ValidateSearchParams`: the parameters the root collection's index needs.
pub fn search_params(engine: EngineType, params: &Value, topk: i64) -> Result<()> {
    match engine {
        EngineType::IvfFlat
        | EngineType::IvfSq8
        | EngineType::IvfSq8h
        | EngineType::BinIvfFlat
        | EngineType::IvfPq => range(params, "nprobe", 1, 65536, false),
        EngineType::Rnsg => range(params, "search_length", 10, 300, false),
        EngineType::Hnsw => range(params, "ef", topk, 32768, false),
        EngineType::Annoy => range(params, "search_k", i64::MIN, i64::MAX, false),
        _ => Ok(()),
    }
}

/// `ValidateSearchTopk`.
pub fn topk(topk: i64) -> Result<()> {
    if !(1..=MAX_TOPK).contains(&topk) {
        return Err(SimError::api(
            code::ILLEGAL_TOPK,
            format!("Invalid topk: {topk}. The topk must be within the range of 1 ~ {MAX_TOPK}."),
        ));
    }
    Ok(())
}

/// The largest search result Milvus sends: 2 GB − 1 MB (`MAX_SEARCH_RESULT_SIZE`).
const MAX_SEARCH_RESULT_SIZE: i64 = 2 * 1024 * 1024 * 1024 - 1024 * 1024;

/// `ValidateResultSize`: `nq` × `topk` id-distance pairs of 12 bytes must stay under
/// [`MAX_SEARCH_RESULT_SIZE`].
pub fn result_size(nq: usize, topk: i64) -> Result<()> {
    let size = i64::try_from(nq)
        .unwrap_or(i64::MAX)
        .saturating_mul(topk)
        .saturating_mul(12);
    if size >= MAX_SEARCH_RESULT_SIZE {
        return Err(SimError::api(
            code::ILLEGAL_TOPK,
            format!(
                "Invalid nq {nq} topk {topk}. The search result size may exceed the RPC transmission limit."
            ),
        ));
    }
    Ok(())
}

/// `ValidatePartitionTags` on one tag: trimmed, not empty, at most 255 characters.
pub fn partition_tag(tag: &str) -> Result<String> {
    let t = tag.trim();
    if t.is_empty() {
        return Err(invalid(format!(
            "Invalid partition tag: {t}. Partition tag should not be empty."
        )));
    }
    if t.len() > 255 {
        return Err(invalid(format!(
            "Invalid partition tag: {t}. Partition tag exceed max length(255)."
        )));
    }
    Ok(t.to_string())
}

/// `IsRegexMatch(partition_tag, pattern)`: equal, or the whole tag matches the pattern.
pub fn tag_matches(tag: &str, pattern: &str) -> Result<bool> {
    if tag == pattern {
        return Ok(true);
    }
    let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        SimError::api(
            code::UNEXPECTED,
            format!("Invalid partition tag {pattern}: {e}"),
        )
    })?;
    Ok(re.is_match(tag))
}

/// `CopyRecordsFromJson` + `ValidateVectorData` (+ `ValidateVectorDataSize` for inserts):
/// float rows of `dim` values, or binary rows of `dim / 8` bytes for a binary metric.
pub fn vectors(
    rows: &[Vec<f64>],
    dim: i64,
    metric: MetricType,
    insert: bool,
) -> Result<Vec<Query>> {
    if rows.is_empty() || rows.iter().all(|r| r.is_empty()) {
        return Err(SimError::api(
            code::ILLEGAL_ROWRECORD,
            "The vector array is empty. Make sure you have entered vector records.",
        ));
    }
    let binary = metric::is_binary(metric);
    let width = if binary { dim / 8 } else { dim } as usize;
    let total: usize = rows.iter().map(Vec::len).sum();
    let dim_error = || {
        SimError::api(
            code::ILLEGAL_DIMENSION,
            "The vector dimension must be equal to the collection dimension.",
        )
    };
    if !total.is_multiple_of(rows.len()) {
        return Err(SimError::api(
            code::ILLEGAL_ROWRECORD,
            "The vector dimension must be equal to the collection dimension.",
        ));
    }
    if rows.iter().any(|r| r.len() != width) {
        return Err(dim_error());
    }
    let bytes = if binary { total } else { total * 4 };
    if insert && bytes > MAX_INSERT_BYTES {
        return Err(SimError::api(
            code::ILLEGAL_ROWRECORD,
            "The amount of data inserted each time cannot exceed 256 MB",
        ));
    }
    rows.iter()
        .map(|r| {
            if binary {
                r.iter()
                    .map(|x| {
                        if x.fract() == 0.0 && (0.0..=255.0).contains(x) {
                            Ok(*x as u8)
                        } else {
                            Err(SimError::api(
                                code::BODY_PARSE_FAIL,
                                format!("A binary vector value must be a byte (0 ~ 255), not {x}"),
                            ))
                        }
                    })
                    .collect::<Result<Vec<u8>>>()
                    .map(Query::Binary)
            } else {
                Ok(Query::Float(r.iter().map(|x| *x as f32).collect()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn search_params_follow_the_index() {
        assert!(search_params(EngineType::Flat, &Value::Null, 10).is_ok());
        assert!(search_params(EngineType::IvfFlat, &json!({}), 10).is_err());
        assert!(search_params(EngineType::IvfFlat, &json!({"nprobe": 0}), 10).is_err());
        assert!(search_params(EngineType::IvfFlat, &json!({"nprobe": "8"}), 10).is_err());
        assert!(search_params(EngineType::IvfPq, &json!({"nprobe": 8}), 10).is_ok());
        assert!(search_params(EngineType::Hnsw, &json!({"ef": 9}), 10).is_err());
        assert!(search_params(EngineType::Hnsw, &json!({"ef": 10}), 10).is_ok());
        assert!(search_params(EngineType::Rnsg, &json!({"search_length": 9}), 10).is_err());
        assert!(search_params(EngineType::Annoy, &json!({"search_k": -1}), 10).is_ok());
    }

    #[test]
    fn index_checks() {
        assert_eq!(
            index_type("IVFSQ8H").unwrap_err().code(),
            code::ILLEGAL_INDEX_TYPE
        );
        assert_eq!(
            index_type("IVF_PQ").unwrap_err().code(),
            code::ILLEGAL_INDEX_TYPE
        );
        let pq = |p: Value| index_params(EngineType::IvfPq, &p, 128);
        assert!(pq(json!({"nlist": 16, "m": 16})).is_ok());
        assert!(pq(json!({"nlist": 16, "m": 16, "nbits": 17})).is_err());
        assert!(pq(json!({"nlist": 16, "m": 7})).is_err());
        assert!(pq(json!({"nlist": 16})).is_err());
        assert!(adapt_to_metric(EngineType::IvfPq, MetricType::Jaccard).is_err());
        assert_eq!(
            adapt_to_metric(EngineType::Flat, MetricType::Hamming).unwrap(),
            EngineType::BinFlat
        );
    }

    #[test]
    fn tags_match_as_regex() {
        assert!(tag_matches("day_1", "day_.*").unwrap());
        assert!(!tag_matches("xday_1", "day_.*").unwrap());
        assert!(tag_matches("a+b", "a+b").unwrap());
    }

    #[test]
    fn binary_rows() {
        let rows = vec![vec![1.0, 255.0]];
        assert_eq!(
            vectors(&rows, 16, MetricType::Jaccard, true).unwrap(),
            vec![Query::Binary(vec![1, 255])]
        );
        assert!(vectors(&rows, 8, MetricType::Jaccard, true).is_err());
        assert!(vectors(&[vec![256.0, 0.0]], 16, MetricType::Jaccard, true).is_err());
    }
}
