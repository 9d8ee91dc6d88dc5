//! `milvus-tier submit`: run a day's (or a range's) migration as an AWS Batch job, and with
//! `--wait` watch it to the end and notify Slack.

use std::time::Instant;

use serde::Serialize;

use milvus_tier::batch::notice::{days_label, job_duration, notice_for};
use milvus_tier::batch::{self, BatchApi, JobState, aws::AwsBatch};
use milvus_tier::config::Config;
use milvus_tier::day::Day;
use milvus_tier::error::{Error, Result, exit};
use milvus_tier::notify::{self, Level, Notice};

/// Arguments of `submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The days.
    #[command(flatten)]
    pub days: super::days::DayArgs,
    /// Watch the job until it succeeds or fails (limit: batch.wait_timeout_secs).
    #[arg(long)]
    pub wait: bool,
    /// Submit even when a job for the same collection and day is queued or running.
    #[arg(long)]
    pub allow_duplicate: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `submit --json` without `--wait`: the job as submitted.
#[derive(Serialize)]
struct Submitted<'a> {
    job_id: &'a str,
    job_name: &'a str,
    days: &'a [Day],
    array_size: Option<i32>,
    status: &'static str,
}

/// `submit --wait --json`: the job as it ended, with the rows and bytes of its reports.
#[derive(Serialize)]
struct Finished<'a> {
    job_id: &'a str,
    job_name: &'a str,
    days: &'a [Day],
    array_size: Option<i32>,
    status: JobState,
    reason: Option<&'a str>,
    log_stream: Option<&'a str>,
    container_exit_code: Option<i32>,
    duration_secs: f64,
    rows: Option<i64>,
    bytes: Option<u64>,
    exit_code: i32,
}

/// Submit (and watch); returns the exit code: the job's result with `--wait`.
pub async fn run(config: &Config, args: &SubmitArgs) -> Result<i32> {
    let days = args.days.days(config)?;
    let batch_config = config.batch.as_ref().ok_or_else(|| {
        Error::Config("section [batch] (queue, job_definition) is required by submit".into())
    })?;
    let api = AwsBatch::new(batch_config).await;
    let collection = config.long_term.collection.clone();
    let started = Instant::now();
    let result = submit_and_wait(&api, config, &collection, &days, args, started).await;
    match result {
        Ok(code) => Ok(code),
        Err((job_id, e)) => {
            let status = match (&job_id, e.exit_code()) {
                (_, exit::TIMEOUT) => "TIMEOUT",
                (Some(_), _) => "UNKNOWN (watch failed)",
                (None, _) => "NOT SUBMITTED",
            };
            let notice = Notice {
                level: Level::Failure,
                what: "migration".into(),
                collection,
                days: days_label(&days),
                job_id,
                status: status.into(),
                reason: Some(e.to_string()),
                duration: Some(started.elapsed()),
                rows: None,
                bytes: None,
                extra: Vec::new(),
            };
            notify::notify(config, &notice).await;
            Err(e)
        }
    }
}

async fn submit_and_wait<B: BatchApi>(
    api: &B,
    config: &Config,
    collection: &str,
    days: &[Day],
    args: &SubmitArgs,
    started: Instant,
) -> std::result::Result<i32, (Option<String>, Error)> {
    let batch_config = config.batch.as_ref().expect("checked by the caller");
    let request = batch::request_for(batch_config, collection, days).map_err(|e| (None, e))?;
    let submitted = batch::submit(api, collection, days, request, args.allow_duplicate)
        .await
        .map_err(|e| (None, e))?;
    let job_id = submitted.job_id.clone();
    if !args.json {
        outln!(
            "submitted Batch job {} ({}){} to queue `{}`",
            job_id,
            submitted.request.name,
            submitted
                .request
                .array_size
                .map(|n| format!(", array of {n}"))
                .unwrap_or_default(),
            submitted.request.queue
        );
    }
    if !args.wait {
        if args.json {
            let report = Submitted {
                job_id: &job_id,
                job_name: &submitted.request.name,
                days,
                array_size: submitted.request.array_size,
                status: "SUBMITTED",
            };
            outln!(
                "{}",
                serde_json::to_string_pretty(&report).expect("serializes")
            );
        }
        return Ok(exit::OK);
    }
    let json_out = args.json;
    let info = batch::wait(api, &job_id, batch_config.wait_options(), |i| {
        if !json_out {
            outln!("job {}: {}", i.id, i.state);
        }
    })
    .await
    .map_err(|e| (Some(job_id.clone()), e))?;
    let code = if info.state == JobState::Succeeded {
        exit::OK
    } else {
        exit::FAILURE
    };
    let duration = job_duration(&info).unwrap_or_else(|| started.elapsed());
    let totals = match &batch_config.report_target {
        None => None,
        Some(target) => batch::report::job_totals(
            target,
            config.backup.as_ref(),
            &info.id,
            submitted.request.array_size,
        )
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "job report not readable; notice without rows and bytes"))
        .ok(),
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&Finished {
                job_id: &info.id,
                job_name: &info.name,
                days,
                array_size: submitted.request.array_size,
                status: info.state.clone(),
                reason: info.reason.as_deref(),
                log_stream: info.log_stream.as_deref(),
                container_exit_code: info.exit_code,
                duration_secs: duration.as_secs_f64(),
                rows: totals.map(|t| t.rows),
                bytes: totals.map(|t| t.bytes),
                exit_code: code,
            })
            .expect("serializes")
        );
    } else if code != exit::OK {
        eprintln!(
            "error: Batch job {} ({}) FAILED: {}; log stream: {}",
            info.id,
            info.name,
            info.reason.as_deref().unwrap_or("no reason given"),
            info.log_stream.as_deref().unwrap_or("none")
        );
    }
    let mut notice = notice_for(collection, days, &info, duration);
    notice.rows = totals.map(|t| t.rows);
    notice.bytes = totals.map(|t| t.bytes);
    if let Some(t) = &totals {
        milvus_tier::metrics::note("milvus_tier_step_rows", Some("job"), None, t.rows as f64);
        milvus_tier::metrics::note("milvus_tier_step_bytes", Some("job"), None, t.bytes as f64);
    }
    notify::notify(config, &notice).await;
    Ok(code)
}
