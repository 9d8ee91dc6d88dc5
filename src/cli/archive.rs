//! `milvus-tier archive`: days past `archive.after_days` leave long-term storage; kept days
//! are named with the reason, posted to Slack, and make the exit code 5.

use milvus_tier::archive::{ArchiveOptions, ArchiveReport, archive};
use milvus_tier::config::Config;
use milvus_tier::day::Day;
use milvus_tier::error::{Result, exit};
use milvus_tier::notify::{self, Level, Notice};

/// Arguments of `archive`.
#[derive(Debug, clap::Args)]
pub struct ArchiveArgs {
    /// Archive days more than this many days old (default: `archive.after_days`).
    #[arg(long)]
    pub older_than: Option<u32>,
    /// List what would be archived and kept; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Archive the due days.
pub async fn run(config: &Config, args: &ArchiveArgs) -> Result<i32> {
    let today = Day::today(config.tz()?);
    let opts = ArchiveOptions {
        older_than_days: args.older_than.unwrap_or(config.archive.after_days),
        dry_run: args.dry_run,
        today,
    };
    let r = archive(config, &opts).await?;
    milvus_tier::metrics::note(
        "milvus_tier_days_archived",
        None,
        None,
        r.archived.len() as f64,
    );
    milvus_tier::metrics::note("milvus_tier_days_kept", None, None, r.kept.len() as f64);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&r).expect("report serializes")
        );
    } else {
        print_text(&r);
    }
    if !r.dry_run && (!r.archived.is_empty() || !r.kept.is_empty()) {
        notify::notify(config, &notice(&r)).await;
    }
    Ok(if r.kept.is_empty() {
        exit::OK
    } else {
        exit::MISMATCH
    })
}

fn notice(r: &ArchiveReport) -> Notice {
    let list = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join("\n")
        }
    };
    Notice {
        level: if r.kept.is_empty() {
            Level::Success
        } else {
            Level::Failure
        },
        what: "archive".into(),
        collection: r.collection.clone(),
        days: format!("older than {} days", r.older_than_days),
        job_id: None,
        status: if r.kept.is_empty() {
            "ARCHIVED".into()
        } else {
            "DAYS KEPT".into()
        },
        reason: (!r.kept.is_empty()).then(|| {
            format!(
                "{} day(s) due for archiving kept: not confirmed in the backup",
                r.kept.len()
            )
        }),
        duration: None,
        rows: Some(r.archived.iter().map(|a| a.rows).sum()),
        bytes: None,
        extra: vec![
            (
                "Archived".into(),
                list(r.archived.iter().map(|a| a.day.to_string()).collect()),
            ),
            (
                "Kept".into(),
                list(
                    r.kept
                        .iter()
                        .map(|k| format!("{}: {}", k.day, k.reason))
                        .collect(),
                ),
            ),
        ],
    }
}

fn print_text(r: &ArchiveReport) {
    outln!(
        "long-term collection `{}`, today {}, days older than {} day(s){}",
        r.collection,
        r.today,
        r.older_than_days,
        if r.dry_run {
            " (dry run, nothing changed)"
        } else {
            ""
        }
    );
    for a in &r.archived {
        outln!(
            "  {} {}: {} partition(s), {} rows, {} file rows; {} folder(s) left for gc after {} h",
            if r.dry_run {
                "would archive"
            } else {
                "archived"
            },
            a.day,
            a.partitions.len(),
            a.rows,
            a.file_rows,
            a.folders,
            r.grace_hours
        );
    }
    for k in &r.kept {
        outln!("  kept {}: {}", k.day, k.reason);
    }
    outln!(
        "{} day(s) archived, {} kept",
        r.archived.len(),
        r.kept.len()
    );
}
