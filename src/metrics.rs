//! Prometheus figures: the lifecycle gauges `status --metrics` prints, and the run figures
//! pushed to a Pushgateway after each run. The exposition format comes from the
//! `prometheus-client` crate; pushes use the existing HTTP client (reqwest).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::day::Day;
use crate::lifecycle::{Phase, StatusReport};

/// A label set: name and value pairs.
type Labels = Vec<(String, String)>;
/// A float gauge family.
type FGauge = Family<Labels, Gauge<f64, AtomicU64>>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Midnight UTC of `day`, as Unix seconds (how the gauges give a day).
pub fn day_seconds(day: Day) -> f64 {
    day.0
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp() as f64
}

/// A registry of float gauge families, registered by name.
#[derive(Default)]
pub struct Gauges {
    registry: Registry,
    families: Vec<(String, FGauge)>,
}

impl Gauges {
    /// Set gauge `name` (registered on first use with `help`) at `labels` to `value`.
    pub fn set(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let fam = match self.families.iter().find(|(n, _)| n == name) {
            Some((_, f)) => f.clone(),
            None => {
                let f = FGauge::default();
                self.registry.register(name, help, f.clone());
                self.families.push((name.to_string(), f.clone()));
                f
            }
        };
        fam.get_or_create(&self::labels(labels)).set(value);
    }

    /// The Prometheus text exposition.
    pub fn text(&self) -> String {
        let mut out = String::new();
        encode_registry(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// The lifecycle gauges of a status report, in Prometheus text format.
pub fn lifecycle_text(r: &StatusReport) -> String {
    let mut g = Gauges::default();
    let c = r.collection.as_str();
    let coll = [("collection", c)];
    g.set(
        "milvus_tier_days_behind",
        "Days older than status.max_lag_days not yet published and backed up.",
        &coll,
        r.behind.len() as f64,
    );
    g.set(
        "milvus_tier_oldest_behind_day_timestamp_seconds",
        "Midnight UTC of the oldest day behind, 0 when none is.",
        &coll,
        r.oldest_behind.map_or(0.0, day_seconds),
    );
    g.set(
        "milvus_tier_last_published_day_timestamp_seconds",
        "Midnight UTC of the newest day published in long-term, 0 when none in the range.",
        &coll,
        r.last_published.map_or(0.0, day_seconds),
    );
    g.set(
        "milvus_tier_last_verified_day_timestamp_seconds",
        "Midnight UTC of the newest day whose last verify found nothing, 0 when none.",
        &coll,
        r.last_verified.map_or(0.0, day_seconds),
    );
    g.set(
        "milvus_tier_backup_bytes",
        "Bytes of the backups recorded for the days in the range.",
        &coll,
        r.backup_bytes as f64,
    );
    for p in Phase::ALL {
        g.set(
            "milvus_tier_days",
            "Days of the range in each lifecycle phase.",
            &[("collection", c), ("phase", p.key())],
            f64::from(r.phases.get(p).copied().unwrap_or(0)),
        );
    }
    g.text()
}
