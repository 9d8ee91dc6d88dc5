//! AWS Batch: submit a day's (or a range's) migration as a Batch job and watch it.
//!
//! The Batch API sits behind [`BatchApi`] so the watch loop can be driven by an in-process
//! fake through state transitions that a real service takes minutes to show; [`aws::AwsBatch`]
//! is the implementation over aws-sdk-batch. Job names carry the collection and the day(s)
//! (`milvus-tier-<collection>-<YYYYMMDD>[-<YYYYMMDD>]`), which is how a job already active
//! for the same day is found and a duplicate refused.

pub mod aws;
mod config;
mod name;
pub mod notice;
pub mod report;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use config::BatchConfig;
pub use name::{job_name, job_name_prefix, name_days};

use crate::day::Day;
use crate::error::{Error, Result};

/// A Batch job status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum JobState {
    /// Accepted by Batch.
    Submitted,
    /// Waiting on dependencies.
    Pending,
    /// Waiting for compute.
    Runnable,
    /// Being placed on a host.
    Starting,
    /// Running.
    Running,
    /// Finished with exit code 0.
    Succeeded,
    /// Finished otherwise.
    Failed,
    /// A status this version does not know.
    Other(String),
}

impl JobState {
    /// Parse Batch's status name.
    pub fn parse(s: &str) -> JobState {
        match s {
            "SUBMITTED" => JobState::Submitted,
            "PENDING" => JobState::Pending,
            "RUNNABLE" => JobState::Runnable,
            "STARTING" => JobState::Starting,
            "RUNNING" => JobState::Running,
            "SUCCEEDED" => JobState::Succeeded,
            "FAILED" => JobState::Failed,
            other => JobState::Other(other.to_string()),
        }
    }

    /// Batch's status name.
    pub fn as_str(&self) -> &str {
        match self {
            JobState::Submitted => "SUBMITTED",
            JobState::Pending => "PENDING",
            JobState::Runnable => "RUNNABLE",
            JobState::Starting => "STARTING",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::Other(s) => s,
        }
    }

    /// Queued or running: a second job for the same day would collide with it.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            JobState::Submitted
                | JobState::Pending
                | JobState::Runnable
                | JobState::Starting
                | JobState::Running
        )
    }

    /// SUCCEEDED or FAILED.
    pub fn is_final(&self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

impl From<JobState> for String {
    fn from(s: JobState) -> String {
        s.as_str().to_string()
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as listed by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    /// Job id.
    pub id: String,
    /// Job name.
    pub name: String,
    /// Status.
    pub state: JobState,
}

/// A job's details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobInfo {
    /// Job id.
    pub id: String,
    /// Job name.
    pub name: String,
    /// Status.
    pub state: JobState,
    /// Batch's status reason (or the container's reason), if any.
    pub reason: Option<String>,
    /// CloudWatch log stream of the (last) container attempt.
    pub log_stream: Option<String>,
    /// Container exit code, when it ran.
    pub exit_code: Option<i32>,
    /// Started, ms since the epoch.
    pub started_at: Option<i64>,
    /// Stopped, ms since the epoch.
    pub stopped_at: Option<i64>,
}

/// What to submit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRequest {
    /// Job name.
    pub name: String,
    /// Job queue.
    pub queue: String,
    /// Job definition (name, name:revision or ARN).
    pub job_definition: String,
    /// Container command override (the arguments of the image's entrypoint).
    pub command: Vec<String>,
    /// Job parameters (shown in the console; the command carries the same values).
    pub parameters: BTreeMap<String, String>,
    /// Array size for a range (one child per day), None for one day.
    pub array_size: Option<i32>,
}

/// The Batch calls milvus-tier makes.
pub trait BatchApi {
    /// Where the API is (for messages).
    fn endpoint(&self) -> String;
    /// Fail with an error naming `queue` unless it exists.
    fn check_queue(&self, queue: &str) -> impl Future<Output = Result<()>> + Send;
    /// Fail with an error naming `definition` unless an active revision exists.
    fn check_job_definition(&self, definition: &str) -> impl Future<Output = Result<()>> + Send;
    /// Jobs of `queue` whose name starts with `prefix`, in every status.
    fn jobs_named(
        &self,
        queue: &str,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<JobSummary>>> + Send;
    /// Submit; returns the job id.
    fn submit(&self, request: &JobRequest) -> impl Future<Output = Result<String>> + Send;
    /// Describe one job.
    fn describe(&self, job_id: &str) -> impl Future<Output = Result<JobInfo>> + Send;
}

/// The request that migrates `days` of `collection`: one job for one day, an array job of
/// one child per day for a range (children pick their day from `AWS_BATCH_JOB_ARRAY_INDEX`).
pub fn request_for(config: &BatchConfig, collection: &str, days: &[Day]) -> Result<JobRequest> {
    let (first, last) = match (days.first(), days.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => return Err(Error::Usage("no day to submit".into())),
    };
    let mut parameters = BTreeMap::new();
    let (command, array_size) = if days.len() == 1 {
        parameters.insert("date".to_string(), first.to_string());
        (
            vec!["migrate".into(), "--date".into(), first.to_string()],
            None,
        )
    } else {
        parameters.insert("from".to_string(), first.to_string());
        parameters.insert("to".to_string(), last.to_string());
        let size = i32::try_from(days.len())
            .ok()
            .filter(|n| *n <= 10_000)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "range {first}..{last} has {} days; a Batch array job holds at most 10000",
                    days.len()
                ))
            })?;
        (
            vec![
                "migrate".into(),
                "--from".into(),
                first.to_string(),
                "--to".into(),
                last.to_string(),
                "--day-from-array-index".into(),
            ],
            Some(size),
        )
    };
    Ok(JobRequest {
        name: job_name(collection, first, last),
        queue: config.queue.clone(),
        job_definition: config.job_definition.clone(),
        command,
        parameters,
        array_size,
    })
}

/// A submitted job.
#[derive(Debug, Clone, Serialize)]
pub struct Submitted {
    /// Job id.
    pub job_id: String,
    /// What was submitted.
    pub request: JobRequest,
}

/// Check the queue and job definition, refuse a duplicate of an active job for any of the
/// same days (unless `allow_duplicate`), then submit.
pub async fn submit<B: BatchApi>(
    api: &B,
    collection: &str,
    days: &[Day],
    request: JobRequest,
    allow_duplicate: bool,
) -> Result<Submitted> {
    api.check_queue(&request.queue).await?;
    api.check_job_definition(&request.job_definition).await?;
    if !allow_duplicate {
        let prefix = job_name_prefix(collection);
        let jobs = api.jobs_named(&request.queue, &prefix).await?;
        let clash = jobs.iter().find(|j| {
            j.state.is_active()
                && name_days(collection, &j.name)
                    .is_some_and(|(a, b)| days.iter().any(|d| *d >= a && *d <= b))
        });
        if let Some(j) = clash {
            return Err(Error::DuplicateJob(format!(
                "job {} ({}) for the same collection and day is already {} in queue `{}`; not submitting (use --allow-duplicate to submit anyway)",
                j.id, j.name, j.state, request.queue
            )));
        }
    }
    let job_id = api.submit(&request).await?;
    Ok(Submitted { job_id, request })
}

/// How to poll.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    /// First delay between polls.
    pub initial: Duration,
    /// Longest delay between polls.
    pub max: Duration,
    /// Give up after this long.
    pub timeout: Duration,
}

/// Poll `job_id` until SUCCEEDED or FAILED, doubling the delay from `initial` up to `max`;
/// `on_change` sees every status change (the first poll included). Exceeding the timeout
/// is [`Error::Timeout`] naming the job and its last status.
pub async fn wait<B: BatchApi>(
    api: &B,
    job_id: &str,
    opts: WaitOptions,
    mut on_change: impl FnMut(&JobInfo),
) -> Result<JobInfo> {
    let start = Instant::now();
    let mut delay = opts.initial;
    let mut last: Option<JobState> = None;
    loop {
        let info = api.describe(job_id).await?;
        if last.as_ref() != Some(&info.state) {
            on_change(&info);
            last = Some(info.state.clone());
        }
        if info.state.is_final() {
            return Ok(info);
        }
        let elapsed = start.elapsed();
        if elapsed >= opts.timeout {
            return Err(Error::Timeout(format!(
                "Batch job {job_id} ({}) still {} after {}s (limit batch.wait_timeout_secs)",
                info.name,
                info.state,
                elapsed.as_secs()
            )));
        }
        tokio::time::sleep(delay.min(opts.timeout - elapsed)).await;
        delay = (delay * 2).min(opts.max);
    }
}
