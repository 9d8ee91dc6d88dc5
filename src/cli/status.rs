//! `milvus-tier status`: one line per day with its phase, or one JSON document; exit 5
//! when a day is behind.

use milvus_tier::config::Config;
use milvus_tier::day::Day;
use milvus_tier::error::{Error, Result, exit};
use milvus_tier::lifecycle::{DayStatus, StatusOptions, StatusReport, status};

/// Days shown when none are given: this many, up to yesterday.
const DEFAULT_DAYS: u64 = 14;

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// One day, YYYY-MM-DD (default: the last 14 days up to yesterday).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub date: Option<String>,
    /// First day of a range (with --to).
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// Last day of a range.
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Print one JSON document.
    #[arg(long, conflicts_with = "metrics")]
    pub json: bool,
    /// Print the lifecycle gauges in Prometheus text format.
    #[arg(long)]
    pub metrics: bool,
}

impl StatusArgs {
    fn range(&self, today: Day) -> Result<(Day, Day)> {
        match (&self.date, &self.from, &self.to) {
            (Some(d), _, _) => {
                let d: Day = d.parse()?;
                Ok((d, d))
            }
            (None, Some(f), Some(t)) => {
                let (f, t): (Day, Day) = (f.parse()?, t.parse()?);
                if t < f {
                    return Err(Error::Usage(format!(
                        "date range {f}..{t} is empty: --to is before --from"
                    )));
                }
                Ok((f, t))
            }
            _ => {
                let to = Day(today.0.pred_opt().expect("date in range"));
                let from = Day(to.0 - chrono::Days::new(DEFAULT_DAYS - 1));
                Ok((from, to))
            }
        }
    }
}

/// Print the status of the days; exit 5 when one is behind.
pub async fn run(config: &Config, args: &StatusArgs) -> Result<i32> {
    let today = Day::today(config.tz()?);
    let (from, to) = args.range(today)?;
    let report = status(config, &StatusOptions { from, to, today }).await?;
    if let Some(base) = &config.metrics.pushgateway_url {
        let job = config.metrics.job.as_deref().unwrap_or("milvus-tier");
        let timeout = std::time::Duration::from_secs(config.metrics.timeout_secs.unwrap_or(10));
        let body = milvus_tier::metrics::lifecycle_text(&report);
        if let Err(e) =
            milvus_tier::metrics::push(base, job, "status", &report.collection, body, timeout).await
        {
            tracing::warn!(error = %e, "metrics push failed");
            eprintln!("warning: metrics not pushed: {e}");
        }
    }
    if args.metrics {
        out!("{}", milvus_tier::metrics::lifecycle_text(&report));
    } else if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print_text(&report);
    }
    Ok(if report.behind.is_empty() {
        exit::OK
    } else {
        exit::MISMATCH
    })
}

fn short_col(d: &DayStatus) -> String {
    let s = &d.short_term;
    if s.partitions == 0 {
        return if s.dropped {
            "dropped".into()
        } else {
            "-".into()
        };
    }
    format!(
        "{} rows {} files{}",
        s.rows,
        s.files,
        if s.writing { " (writing)" } else { "" }
    )
}

fn long_col(d: &DayStatus) -> String {
    let l = &d.long_term;
    if l.partitions == 0 {
        return "-".into();
    }
    format!(
        "{} rows {} index/{} raw {}",
        l.rows,
        l.index_files,
        l.raw_files,
        super::human(l.bytes)
    )
}

fn run_col(d: &DayStatus) -> String {
    match &d.last_run {
        None => "-".into(),
        Some(r) => format!(
            "{}{} {} {:.1}s",
            r.outcome,
            r.failed_step
                .as_ref()
                .map(|s| format!(" at {s}"))
                .unwrap_or_default(),
            r.started_at,
            r.seconds
        ),
    }
}

fn print_text(r: &StatusReport) {
    outln!(
        "collection `{}` (short-term `{}`), {}..{}, today {}, behind when older than {} day(s)",
        r.collection,
        r.short_term_collection,
        r.from,
        r.to,
        r.today,
        r.max_lag_days
    );
    outln!(
        "{:<10}  {:<15}  {:<28}  {:<36}  {:<38}  {:<22}  {:<20}  archive",
        "day",
        "phase",
        "short-term",
        "long-term",
        "last run",
        "backup",
        "verify"
    );
    for d in &r.days {
        let backup = d
            .backup
            .as_ref()
            .map(|b| {
                format!(
                    "{} {}",
                    super::human(b.bytes),
                    b.at.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_else(|| "-".into());
        let verify = d
            .verify
            .as_ref()
            .map(|v| {
                format!(
                    "{}{} {}",
                    if v.findings == 0 {
                        "ok".to_string()
                    } else {
                        format!("{} finding(s)", v.findings)
                    },
                    if v.deep { " deep" } else { "" },
                    &v.at[..10.min(v.at.len())]
                )
            })
            .unwrap_or_else(|| "-".into());
        let archive = d
            .archive
            .as_ref()
            .filter(|a| a.current)
            .map(|a| format!("{} (folders after {})", &a.at, a.folders_removable_after))
            .unwrap_or_else(|| "-".into());
        outln!(
            "{:<10}  {:<15}  {:<28}  {:<36}  {:<38}  {:<22}  {:<20}  {}{}",
            d.day.to_string(),
            d.phase.label(),
            short_col(d),
            long_col(d),
            run_col(d),
            backup,
            verify,
            archive,
            if d.behind { "  BEHIND" } else { "" }
        );
    }
    let phases: Vec<String> = r
        .phases
        .iter()
        .map(|(p, n)| format!("{n} {}", p.label()))
        .collect();
    outln!("{} day(s): {}", r.days.len(), phases.join(", "));
    match r.oldest_behind {
        Some(d) => outln!(
            "BEHIND: {} day(s) older than {} day(s) not yet published{}; oldest {d}",
            r.behind.len(),
            r.max_lag_days,
            if r.backup_configured {
                " and backed up"
            } else {
                ""
            }
        ),
        None => outln!("no day behind"),
    }
}
