//! `milvus-tier backup`: back up already-published days.

use milvus_tier::config::Config;
use milvus_tier::error::{Result, exit};
use milvus_tier::run_report::Outcome;

/// Arguments of `backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The days.
    #[command(flatten)]
    pub days: super::days::DayArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Back up the days in order.
pub async fn run(config: &Config, args: &BackupArgs) -> Result<i32> {
    let days = args.days.days(config)?;
    let mut reports = Vec::new();
    for day in days {
        let r = milvus_tier::backup::day::backup_published_day(config, day).await;
        for st in &r.steps {
            milvus_tier::metrics::note_step(r.day, st);
        }
        if !args.json {
            match &r.error {
                None => outln!("day {} of `{}`: backed up", r.day, r.collection),
                Some(_) => outln!("day {} of `{}`: FAILED", r.day, r.collection),
            }
            for s in &r.steps {
                super::print_step(s, "sent");
            }
        }
        let failed = r.outcome == Outcome::Failed;
        reports.push(r);
        if failed {
            break;
        }
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&super::Days { days: &reports })
                .expect("report serializes")
        );
    }
    if let Some(err) = reports.iter().find_map(|r| r.error.as_ref()) {
        eprintln!("error: {err}");
    }
    Ok(reports
        .iter()
        .map(|r| r.exit_code)
        .find(|c| *c != exit::OK)
        .unwrap_or(exit::OK))
}
