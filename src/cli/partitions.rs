//! `milvus-tier partitions rotate`.

use milvus_tier::config::{Config, Tier};
use milvus_tier::day::Day;
use milvus_tier::engine::Engine;
use milvus_tier::error::{Error, Result, exit};
use milvus_tier::meta::{ConnectOptions, MetaDb};
use milvus_tier::notify::{self, Level, Notice};
use milvus_tier::partitions::{self, JournalCheck, RotateOptions, RotateReport, VerifiedCheck};
use milvus_tier::verify::Verifier;

/// Arguments of `partitions rotate`.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// List the actions only; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Rotate; exit 5 when a partition due for dropping was kept. Failures go to Slack.
pub async fn run(config: &Config, args: &RotateArgs) -> Result<i32> {
    let today = Day::today(config.tz()?);
    let result = rotate(config, args, today).await;
    let notice = |level, status: &str, reason: Option<String>, r: Option<&RotateReport>| Notice {
        level,
        what: "partition rotation".into(),
        collection: config.short_term.collection.clone(),
        days: format!("today {today}"),
        job_id: None,
        status: status.into(),
        reason,
        duration: None,
        rows: None,
        bytes: None,
        extra: r.map(details).unwrap_or_default(),
    };
    match result {
        Err(e) => {
            notify::notify(
                config,
                &notice(Level::Failure, "FAILED", Some(e.to_string()), None),
            )
            .await;
            Err(e)
        }
        Ok(report) => {
            if args.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serializes")
                );
            } else {
                print_text(&report);
            }
            if report.dry_run {
                return Ok(exit::OK);
            }
            milvus_tier::metrics::note(
                "milvus_tier_partitions_dropped",
                None,
                None,
                report.dropped.len() as f64,
            );
            milvus_tier::metrics::note(
                "milvus_tier_partitions_kept",
                None,
                None,
                report.kept.len() as f64,
            );
            if report.kept.is_empty() {
                notify::notify(config, &notice(Level::Success, "OK", None, Some(&report))).await;
                Ok(exit::OK)
            } else {
                let reason = format!(
                    "{} partition(s) past retention kept: not confirmed in long-term/backup",
                    report.kept.len()
                );
                eprintln!("error: {reason}");
                notify::notify(
                    config,
                    &notice(
                        Level::Failure,
                        "PARTITIONS KEPT",
                        Some(reason),
                        Some(&report),
                    ),
                )
                .await;
                Ok(exit::MISMATCH)
            }
        }
    }
}

async fn rotate(config: &Config, args: &RotateArgs, today: Day) -> Result<RotateReport> {
    let url = config.short_term.http_url.as_deref().ok_or_else(|| {
        Error::Config(
            "key `short_term.http_url` (the short-term writable node's HTTP API) is required by partitions rotate"
                .into(),
        )
    })?;
    let short = config.tier(Tier::ShortTerm)?;
    let long = config.tier(Tier::LongTerm)?;
    let opts = ConnectOptions {
        timeout: config.connect_timeout(),
        max_connections: 2,
        ..ConnectOptions::default()
    };
    let journal = JournalCheck {
        short: MetaDb::connect_with(&short.meta_url, &opts).await?,
        long: MetaDb::connect_with(&long.meta_url, &opts).await?,
        short_collection: short.collection.clone(),
        long_collection: long.collection,
        short_tags: short.tag_format.clone(),
        long_tags: long.tag_format,
        backup_required: config.backup.is_some(),
    };
    let check = VerifiedCheck {
        journal,
        verifier: Verifier::connect(config).await?,
        deep_verify_max_age_hours: config.partitions.deep_verify_max_age_hours,
    };
    partitions::rotate(
        &Engine::new(url),
        &short.collection,
        &short.tag_format,
        RotateOptions {
            today,
            create_ahead_days: config.partitions.create_ahead_days,
            retention_days: config.partitions.retention_days,
            dry_run: args.dry_run,
        },
        &check,
    )
    .await
}

fn details(r: &RotateReport) -> Vec<(String, String)> {
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut out = vec![
        ("Created".to_string(), list(&r.created)),
        ("Dropped".to_string(), list(&r.dropped)),
    ];
    if !r.kept.is_empty() {
        let kept: Vec<String> = r
            .kept
            .iter()
            .map(|k| format!("{}: {}", k.tag, k.reason))
            .collect();
        out.push(("Kept".to_string(), kept.join("\n")));
    }
    out
}

fn print_text(r: &RotateReport) {
    let verb = |done: &'static str, planned: &'static str| if r.dry_run { planned } else { done };
    outln!(
        "short-term collection `{}`, today {}{}",
        r.collection,
        r.today,
        if r.dry_run {
            " (dry run, nothing changed)"
        } else {
            ""
        }
    );
    for t in &r.created {
        outln!("  {} {t}", verb("created ", "would create"));
    }
    for t in &r.dropped {
        outln!("  {} {t}", verb("dropped ", "would drop"));
    }
    for k in &r.kept {
        outln!("  kept     {}: {}", k.tag, k.reason);
    }
    for t in &r.retained {
        outln!("  retained {t}");
    }
}
