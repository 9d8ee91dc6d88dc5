//! `milvus-tier verify`: one line per finding, a summary, exit 5 on any mismatch.

use milvus_tier::config::Config;
use milvus_tier::error::{Result, exit};
use milvus_tier::verify::{DayVerification, Verifier};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The days.
    #[command(flatten)]
    pub days: super::days::DayArgs,
    /// Re-hash long-term files and re-read backup objects.
    #[arg(long)]
    pub deep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `verify --json`.
#[derive(serde::Serialize)]
struct VerifyReport<'a> {
    days: &'a [DayVerification],
    ok: bool,
}

/// Verify the days.
pub async fn run(config: &Config, args: &VerifyArgs) -> Result<i32> {
    let days = args.days.days(config)?;
    let verifier = Verifier::connect(config).await?;
    let (long, _, _) =
        milvus_tier::context::connect(config, milvus_tier::config::Tier::LongTerm).await?;
    let run_id = format!(
        "{}:{}:verify",
        milvus_tier::lock::hostname(),
        std::process::id()
    );
    let mut reports = Vec::new();
    for day in days {
        let started_at = milvus_tier::journal::now_micros();
        let v = verifier.verify_day(day, args.deep).await?;
        milvus_tier::verify::record(&long, &v, args.deep, &run_id, started_at).await?;
        milvus_tier::metrics::note(
            "milvus_tier_verify_findings",
            None,
            Some(v.day),
            v.findings.len() as f64,
        );
        if !args.json {
            for f in &v.findings {
                outln!(
                    "MISMATCH {} {}: {} — {}",
                    v.day,
                    f.kind,
                    f.subject,
                    f.detail
                );
            }
            outln!(
                "{} day {} of `{}`: {} files checked{}{}{}, {} finding(s)",
                if v.ok { "ok  " } else { "FAIL" },
                v.day,
                v.collection,
                v.files_checked,
                if args.deep { " (deep)" } else { "" },
                if v.backup_checked {
                    ", backup compared"
                } else {
                    ""
                },
                if v.short_term_checked {
                    ", short-term counts compared"
                } else {
                    ""
                },
                v.findings.len()
            );
        }
        reports.push(v);
    }
    let bad = reports.iter().filter(|v| !v.ok).count();
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&VerifyReport {
                days: &reports,
                ok: bad == 0,
            })
            .expect("report serializes")
        );
    } else {
        outln!("{} day(s) verified, {bad} with findings", reports.len());
    }
    Ok(if bad == 0 { exit::OK } else { exit::MISMATCH })
}
