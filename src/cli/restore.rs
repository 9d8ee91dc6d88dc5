//! `milvus-tier restore`: bring backed-up days back into long-term.

use milvus_tier::config::Config;
use milvus_tier::error::Result;
use milvus_tier::restore::{RestoreOptions, RestoreOutcome, restore_day};

/// Arguments of `restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The day, YYYY-MM-DD.
    #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present = "from")]
    pub date: Option<String>,
    /// First day of a range (with --to); stops at the first failure.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// Last day of a range.
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Restore into this long-term collection instead of the configured one.
    #[arg(long)]
    pub to_collection: Option<String>,
    /// Read and check the manifests and long-term; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Re-hash the day's long-term files (BLAKE3) against the backup, not only sizes, and
    /// put back any that differ.
    #[arg(long)]
    pub deep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Restore the days in order.
pub async fn run(config: &Config, args: &RestoreArgs) -> Result<i32> {
    let days = super::days::DayArgs {
        date: args.date.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
    }
    .days(config)?;
    let opts = RestoreOptions {
        to_collection: args.to_collection.clone(),
        dry_run: args.dry_run,
        deep: args.deep,
    };
    let mut reports = Vec::new();
    for day in days {
        let r = restore_day(config, day, &opts).await;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                if args.json {
                    outln!(
                        "{}",
                        serde_json::to_string_pretty(&super::Days { days: &reports })
                            .expect("report serializes")
                    );
                }
                return Err(e);
            }
        };
        if !args.json {
            let what = match r.outcome {
                RestoreOutcome::Restored => "restored",
                RestoreOutcome::Identical => {
                    "long-term already holds exactly this day; nothing to do"
                }
                RestoreOutcome::Repaired => {
                    "rows already there; missing or different files put back from the backup"
                }
                RestoreOutcome::Planned => "checked (dry run, nothing written)",
            };
            outln!(
                "day {} → long-term collection `{}`: {what}\n  from {}: {} files, {}, {} rows inserted{}  blake3 {}",
                r.day,
                r.collection,
                r.manifest,
                r.files,
                super::human(r.bytes),
                r.rows_inserted,
                if r.created_collection {
                    " (collection row created)"
                } else {
                    ""
                },
                super::short_digest(&r.digest)
            );
            for f in &r.repair {
                let verb = if r.outcome == RestoreOutcome::Repaired {
                    "repaired"
                } else {
                    "to repair"
                };
                println!("  {verb}: {f}");
            }
        }
        for (name, v) in [
            ("milvus_tier_step_files", r.files as f64),
            ("milvus_tier_step_rows", r.rows_inserted as f64),
            ("milvus_tier_step_bytes", r.bytes as f64),
        ] {
            milvus_tier::metrics::note(name, Some("restore"), Some(r.day), v);
        }
        reports.push(r);
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&super::Days { days: &reports })
                .expect("report serializes")
        );
    }
    Ok(0)
}
