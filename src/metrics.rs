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
        "Days older than status.max_lag_days not yet published and backed up",
        &coll,
        r.behind.len() as f64,
    );
    g.set(
        "milvus_tier_oldest_behind_day_timestamp_seconds",
        "Midnight UTC of the oldest day behind, 0 when none is",
        &coll,
        r.oldest_behind.map_or(0.0, day_seconds),
    );
    g.set(
        "milvus_tier_last_published_day_timestamp_seconds",
        "Midnight UTC of the newest day published in long-term, 0 when none in the range",
        &coll,
        r.last_published.map_or(0.0, day_seconds),
    );
    g.set(
        "milvus_tier_last_verified_day_timestamp_seconds",
        "Midnight UTC of the newest day whose last verify found nothing, 0 when none",
        &coll,
        r.last_verified.map_or(0.0, day_seconds),
    );
    g.set(
        "milvus_tier_backup_bytes",
        "Bytes of the backups recorded for the days in the range",
        &coll,
        r.backup_bytes as f64,
    );
    for p in Phase::ALL {
        g.set(
            "milvus_tier_days",
            "Days of the range in each lifecycle phase",
            &[("collection", c), ("phase", p.key())],
            f64::from(r.phases.get(p).copied().unwrap_or(0)),
        );
    }
    g.text()
}

/// A figure noted by a command while it runs, pushed when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Noted {
    /// Gauge name (one of [`RUN_GAUGES`]).
    pub name: &'static str,
    /// Step, for per-step figures.
    pub step: Option<&'static str>,
    /// Day, where the figure is about one day.
    pub day: Option<Day>,
    /// Value.
    pub value: f64,
}

/// The run gauges and their help texts.
pub const RUN_GAUGES: &[(&str, &str)] = &[
    (
        "milvus_tier_last_success_timestamp_seconds",
        "Unix time the last successful run of the command ended",
    ),
    (
        "milvus_tier_last_failure_timestamp_seconds",
        "Unix time the last failed run of the command ended",
    ),
    (
        "milvus_tier_last_exit_code",
        "Exit code of the last run of the command",
    ),
    (
        "milvus_tier_run_duration_seconds",
        "Wall time of the last run of the command",
    ),
    (
        "milvus_tier_step_duration_seconds",
        "Wall time of each step of the last run, per day",
    ),
    (
        "milvus_tier_step_rows",
        "Rows handled by each step of the last run, per day",
    ),
    (
        "milvus_tier_step_bytes",
        "Bytes handled by each step of the last run, per day",
    ),
    (
        "milvus_tier_step_files",
        "Files handled by each step of the last run, per day",
    ),
    (
        "milvus_tier_verify_findings",
        "Findings of the last verify, per day",
    ),
    (
        "milvus_tier_partitions_dropped",
        "Short-term partitions dropped by the last rotation",
    ),
    (
        "milvus_tier_partitions_kept",
        "Short-term partitions past retention kept by the last rotation",
    ),
    (
        "milvus_tier_days_archived",
        "Days archived by the last archive run",
    ),
    (
        "milvus_tier_days_kept",
        "Days due for archiving kept by the last archive run",
    ),
];

static NOTED: std::sync::Mutex<Vec<Noted>> = std::sync::Mutex::new(Vec::new());

/// Note a figure of the running command (pushed by [`push_run`] when it ends).
pub fn note(name: &'static str, step: Option<&'static str>, day: Option<Day>, value: f64) {
    debug_assert!(RUN_GAUGES.iter().any(|(n, _)| *n == name), "{name}");
    NOTED.lock().unwrap_or_else(|e| e.into_inner()).push(Noted {
        name,
        step,
        day,
        value,
    });
}

/// Note the figures of one step of one day.
pub fn note_step(day: Day, s: &crate::run_report::StepReport) {
    let step = Some(s.step);
    note(
        "milvus_tier_step_duration_seconds",
        step,
        Some(day),
        s.seconds,
    );
    note("milvus_tier_step_rows", step, Some(day), s.rows as f64);
    note("milvus_tier_step_bytes", step, Some(day), s.bytes as f64);
    note("milvus_tier_step_files", step, Some(day), s.files as f64);
}

fn take_noted() -> Vec<Noted> {
    std::mem::take(&mut *NOTED.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The end of one run: what the push carries besides the noted figures.
#[derive(Debug, Clone)]
pub struct RunEnd<'a> {
    /// Command, e.g. `migrate` or `partitions_rotate` (a grouping label).
    pub command: &'a str,
    /// Collection (a grouping label).
    pub collection: &'a str,
    /// The process exit code.
    pub exit_code: i32,
    /// Wall time.
    pub seconds: f64,
    /// When it ended, Unix seconds.
    pub ended_at: f64,
}

/// The exposition a run pushes: its end and every noted figure.
pub fn run_text(end: &RunEnd<'_>, noted: &[Noted]) -> String {
    let help = |name: &str| {
        RUN_GAUGES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, h)| h)
    };
    let mut g = Gauges::default();
    let stamp = if end.exit_code == 0 {
        "milvus_tier_last_success_timestamp_seconds"
    } else {
        "milvus_tier_last_failure_timestamp_seconds"
    };
    g.set(stamp, help(stamp), &[], end.ended_at);
    for (name, v) in [
        ("milvus_tier_last_exit_code", f64::from(end.exit_code)),
        ("milvus_tier_run_duration_seconds", end.seconds),
    ] {
        g.set(name, help(name), &[], v);
    }
    for n in noted {
        let day = n.day.map(|d| d.to_string());
        let mut l: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = n.step {
            l.push(("step", s));
        }
        if let Some(d) = &day {
            l.push(("day", d));
        }
        g.set(n.name, help(n.name), &l, n.value);
    }
    g.text()
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
#[error("push to the Pushgateway {url}: {reason}")]
pub struct PushError {
    /// The group URL (credentials masked).
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

/// The Pushgateway URL of the group `job`/`command`/`collection`.
fn group_url(base: &str, job: &str, command: &str, collection: &str) -> Result<url::Url, String> {
    let mut u = url::Url::parse(base).map_err(|e| e.to_string())?;
    u.path_segments_mut()
        .map_err(|_| "the URL cannot take a path".to_string())?
        .pop_if_empty()
        .extend([
            "metrics",
            "job",
            job,
            "command",
            command,
            "collection",
            collection,
        ]);
    Ok(u)
}

/// POST `body` to the group (replacing the group's metrics of the same names, keeping the
/// others, so the last success stays when a failure is pushed).
pub async fn push(
    base: &str,
    job: &str,
    command: &str,
    collection: &str,
    body: String,
    timeout: std::time::Duration,
) -> std::result::Result<(), PushError> {
    let err = |url: &str, reason: String| PushError {
        url: crate::redact::url(url),
        reason,
    };
    let url = group_url(base, job, command, collection).map_err(|r| err(base, r))?;
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| err(url.as_str(), e.to_string()))?;
    let resp = client
        .post(url.clone())
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(body)
        .send()
        .await
        .map_err(|e| err(url.as_str(), e.to_string()))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(err(url.as_str(), format!("HTTP {status}: {}", text.trim())));
    }
    Ok(())
}

/// Push the figures of the run that just ended, when `[metrics] pushgateway_url` is set.
/// A failure is a warning on stderr and in the log, never an error: the exit code stays
/// the run's own.
pub async fn push_run(config: &crate::config::Config, end: &RunEnd<'_>) {
    let noted = take_noted();
    let Some(base) = &config.metrics.pushgateway_url else {
        return;
    };
    let job = config.metrics.job.as_deref().unwrap_or("milvus-tier");
    let timeout = std::time::Duration::from_secs(config.metrics.timeout_secs.unwrap_or(10));
    let body = run_text(end, &noted);
    if let Err(e) = push(base, job, end.command, end.collection, body, timeout).await {
        tracing::warn!(error = %e, "metrics push failed");
        eprintln!("warning: metrics not pushed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_text_carries_the_end_and_the_noted_figures() {
        let end = RunEnd {
            command: "migrate",
            collection: "archive",
            exit_code: 1,
            seconds: 2.5,
            ended_at: 1_795_219_200.0,
        };
        let day: Day = "2026-11-20".parse().unwrap();
        let noted = vec![Noted {
            name: "milvus_tier_step_rows",
            step: Some("publish"),
            day: Some(day),
            value: 6000.0,
        }];
        let t = run_text(&end, &noted);
        assert!(
            t.contains("milvus_tier_last_failure_timestamp_seconds{} 1795219200"),
            "{t}"
        );
        assert!(!t.contains("last_success"), "{t}");
        assert!(t.contains("milvus_tier_last_exit_code{} 1"), "{t}");
        assert!(
            t.contains("milvus_tier_step_rows{step=\"publish\",day=\"2026-11-20\"} 6000"),
            "{t}"
        );
    }

    #[test]
    fn group_url_escapes_its_labels() {
        let u = group_url("http://gw:9091/", "milvus-tier", "migrate", "a b").unwrap();
        assert_eq!(
            u.as_str(),
            "http://gw:9091/metrics/job/milvus-tier/command/migrate/collection/a%20b"
        );
    }
}
