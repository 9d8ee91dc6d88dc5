//! `milvus-tier verify`: one line per finding, a summary, exit 5 on any mismatch.

use crate::backup::verify::Verifier;
use crate::config::Config;
use crate::error::{Result, exit};

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

/// Record the outcome in the journal (where it exists), for `status`.
async fn record(
    long: &crate::meta::MetaDb,
    v: &crate::backup::verify::DayVerification,
    deep: bool,
    run_id: &str,
    started_at: i64,
) -> Result<()> {
    use crate::lifecycle::record::{Record, VERIFY, record_verify};
    let kinds: Vec<&str> = v.findings.iter().take(20).map(|f| f.kind).collect();
    record_verify(
        long,
        &Record {
            collection: &v.collection,
            day: v.day,
            step: VERIFY,
            state: "done",
            run_id,
            started_at,
            finished_at: crate::journal::now_micros(),
            files: v.files_checked as i64,
            rows: v.findings.len() as i64,
            bytes: 0,
            detail: Some(serde_json::json!({"deep": deep, "findings": kinds}).to_string()),
        },
    )
    .await?;
    Ok(())
}

/// Verify the days.
pub async fn run(config: &Config, args: &VerifyArgs) -> Result<i32> {
    let days = args.days.days(config)?;
    let verifier = Verifier::connect(config).await?;
    let (long, _, _) = crate::migrate::connect(config, crate::config::Tier::LongTerm).await?;
    let run_id = format!(
        "{}:{}:verify",
        crate::migrate::hostname(),
        std::process::id()
    );
    let mut reports = Vec::new();
    for day in days {
        let started_at = crate::journal::now_micros();
        let v = verifier.verify_day(day, args.deep).await?;
        record(&long, &v, args.deep, &run_id, started_at).await?;
        crate::metrics::note(
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
            serde_json::to_string_pretty(&serde_json::json!({
                "days": reports,
                "ok": bad == 0,
            }))
            .expect("report serializes")
        );
    } else {
        outln!("{} day(s) verified, {bad} with findings", reports.len());
    }
    Ok(if bad == 0 { exit::OK } else { exit::MISMATCH })
}
