//! `seed` and `seed-long-term`: build test clusters through the simulator's own insert and
//! flush paths, with deterministic vectors and ids.
//!
//! Ids are `days_since_epoch(day) * 10_000_000 + row`, unique across days and runs; each
//! vector comes from a SplitMix64 stream seeded by `--seed` and its id.

use chrono::NaiveDate;
use milvus_tier::meta::FileType;
use serde::Serialize;

use crate::catalog;
use crate::error::{Result, SimError, code};
use crate::ids::SplitMix64;
use crate::sim::Sim;

/// Rows one day can hold with the id scheme.
const IDS_PER_DAY: i64 = 10_000_000;

/// What `seed` is asked to build.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    /// Collection name.
    pub collection: String,
    /// First day (oldest partition).
    pub first_day: NaiveDate,
    /// Number of days (partitions).
    pub days: u32,
    /// Rows per day.
    pub rows_per_day: i64,
    /// Rows per flushed segment.
    pub segment_rows: i64,
    /// Dimension.
    pub dim: i64,
    /// strftime format of partition tags.
    pub tag_format: String,
    /// index_file_size in MB.
    pub index_file_size_mb: i64,
    /// PRNG seed.
    pub seed: u64,
    /// Metric name.
    pub metric: String,
}

/// What `seed` built.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SeedSummary {
    /// Partitions created.
    pub partitions: usize,
    /// Segment files written.
    pub files: usize,
    /// Rows written.
    pub rows: i64,
    /// Sum of `file_size`.
    pub bytes: i64,
}

/// The deterministic vector of `id`.
pub fn vector_of(seed: u64, id: i64, dim: usize) -> Vec<f32> {
    let mut g = SplitMix64::new(seed ^ (id as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    (0..dim).map(|_| g.next_f32()).collect()
}

/// The id of row `row` of `day`.
pub fn id_of(day: NaiveDate, row: i64) -> i64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (day - epoch).num_days() * IDS_PER_DAY + row
}

/// Build the collection and one partition per day.
pub async fn seed(sim: &Sim, p: &SeedPlan) -> Result<SeedSummary> {
    if p.rows_per_day < 1 || p.rows_per_day >= IDS_PER_DAY || p.segment_rows < 1 {
        return Err(SimError::api(
            code::ILLEGAL_ARGUMENT,
            format!("rows per day must be in 1..{IDS_PER_DAY} and segment rows at least 1"),
        ));
    }
    match catalog::live_collection(&sim.db, &p.collection).await {
        Ok(t) if t.dimension != p.dim => {
            return Err(SimError::api(
                code::ILLEGAL_DIMENSION,
                format!(
                    "collection {} exists with dimension {}",
                    p.collection, t.dimension
                ),
            ));
        }
        Ok(_) => {}
        Err(_) => {
            sim.create_collection(&p.collection, p.dim, p.index_file_size_mb, &p.metric)
                .await?;
        }
    }
    let mut summary = SeedSummary::default();
    // Binary metrics store dim / 8 bytes per row: one byte from each of that many values.
    let binary =
        milvus_tier::meta::MetricType::from_label(&p.metric).is_some_and(crate::metric::is_binary);
    let width = if binary {
        p.dim as usize / 8
    } else {
        p.dim as usize
    };
    for d in 0..p.days {
        let day = p.first_day + chrono::Days::new(d.into());
        let tag = day.format(&p.tag_format).to_string();
        let part = sim.create_partition(&p.collection, &tag).await?;
        summary.partitions += 1;
        let mut row = 0;
        while row < p.rows_per_day {
            let n = p.segment_rows.min(p.rows_per_day - row);
            let ids: Vec<i64> = (row..row + n).map(|r| id_of(day, r)).collect();
            let vectors: Vec<Vec<f64>> = ids
                .iter()
                .map(|id| {
                    vector_of(p.seed, *id, width)
                        .into_iter()
                        .map(|x| {
                            if binary {
                                (f64::from(x) * 256.0).floor()
                            } else {
                                f64::from(x)
                            }
                        })
                        .collect()
                })
                .collect();
            sim.insert(&p.collection, Some(&tag), Some(ids), &vectors)
                .await?;
            sim.flush(std::slice::from_ref(&p.collection)).await?;
            row += n;
        }
        let files = sim
            .db
            .files(
                std::slice::from_ref(&part.table_id),
                &[FileType::Raw, FileType::ToIndex],
            )
            .await?;
        summary.files += files.len();
        summary.rows += files.iter().map(|f| f.row_count).sum::<i64>();
        summary.bytes += files.iter().map(|f| f.file_size).sum::<i64>();
        tracing::info!(tag, table_id = %part.table_id, files = files.len(), "seeded day");
    }
    Ok(summary)
}

/// Create an empty long-term collection with an index already set.
pub async fn seed_long_term(
    sim: &Sim,
    collection: &str,
    dim: i64,
    index_file_size_mb: i64,
    index_type: &str,
    params: &serde_json::Value,
    metric: &str,
) -> Result<()> {
    sim.create_collection(collection, dim, index_file_size_mb, metric)
        .await?;
    // Seeding takes engine labels too (IVF_PQ); the web API takes only its own names.
    let engine = crate::index::parse_index_type(index_type)?;
    sim.create_index(collection, crate::index::web_name(engine), params)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_vectors_are_deterministic() {
        let day = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        assert_eq!(id_of(day, 5), 19724 * IDS_PER_DAY + 5);
        assert_eq!(vector_of(42, 7, 8), vector_of(42, 7, 8));
        assert_ne!(vector_of(42, 7, 8), vector_of(42, 8, 8));
    }
}
