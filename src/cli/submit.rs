//! `milvus-tier submit`: run a day's (or a range's) migration as an AWS Batch job, and with
//! `--wait` watch it to the end and notify Slack.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::batch::{self, BatchApi, JobInfo, JobState, aws::AwsBatch};
use crate::config::Config;
use crate::day::Day;
use crate::error::{Error, Result, exit};
use crate::notify::{self, Level, Notice};

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

fn days_label(days: &[Day]) -> String {
    match (days.first(), days.last()) {
        (Some(f), Some(l)) if f != l => format!("{f}..{l}"),
        (Some(f), _) => f.to_string(),
        _ => String::new(),
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
            outln!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "job_id": job_id,
                    "job_name": submitted.request.name,
                    "days": days,
                    "array_size": submitted.request.array_size,
                    "status": "SUBMITTED",
                }))
                .expect("serializes")
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
            serde_json::to_string_pretty(&json!({
                "job_id": info.id,
                "job_name": info.name,
                "days": days,
                "array_size": submitted.request.array_size,
                "status": info.state,
                "reason": info.reason,
                "log_stream": info.log_stream,
                "container_exit_code": info.exit_code,
                "duration_secs": duration.as_secs_f64(),
                "rows": totals.map(|t| t.rows),
                "bytes": totals.map(|t| t.bytes),
                "exit_code": code,
            }))
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
        crate::metrics::note("milvus_tier_step_rows", Some("job"), None, t.rows as f64);
        crate::metrics::note("milvus_tier_step_bytes", Some("job"), None, t.bytes as f64);
    }
    notify::notify(config, &notice).await;
    Ok(code)
}

fn job_duration(info: &JobInfo) -> Option<Duration> {
    match (info.started_at, info.stopped_at) {
        (Some(a), Some(b)) if b >= a && a > 0 => {
            Some(Duration::from_millis(u64::try_from(b - a).ok()?))
        }
        _ => None,
    }
}

/// The Slack notice of a finished job (rows and bytes are added by the caller when the
/// job's reports are readable).
pub fn notice_for(collection: &str, days: &[Day], info: &JobInfo, duration: Duration) -> Notice {
    let failed = info.state != JobState::Succeeded;
    let mut extra = Vec::new();
    if let Some(s) = &info.log_stream {
        extra.push(("Log stream".to_string(), s.clone()));
    }
    if let Some(c) = info.exit_code {
        extra.push(("Container exit code".to_string(), c.to_string()));
    }
    Notice {
        level: if failed {
            Level::Failure
        } else {
            Level::Success
        },
        what: "migration".into(),
        collection: collection.to_string(),
        days: days_label(days),
        job_id: Some(info.id.clone()),
        status: info.state.to_string(),
        reason: if failed {
            Some(
                info.reason
                    .clone()
                    .unwrap_or_else(|| "no reason given by Batch".into()),
            )
        } else {
            None
        },
        duration: Some(duration),
        rows: None,
        bytes: None,
        extra,
    }
}
