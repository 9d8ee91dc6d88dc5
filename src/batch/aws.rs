//! [`BatchApi`] over aws-sdk-batch. Credentials come from the AWS default chain
//! (environment, web identity / IRSA, instance profile); the endpoint and region from
//! `[batch]` when set.

use aws_sdk_batch::Client;
use aws_sdk_batch::error::{DisplayErrorContext, SdkError};
use aws_sdk_batch::types::{ArrayProperties, ContainerOverrides, JobStatus, KeyValuesPair};

use super::{BatchApi, BatchConfig, JobInfo, JobRequest, JobState, JobSummary};
use crate::error::{Error, Result};

/// A Batch client built from `[batch]`.
#[derive(Debug, Clone)]
pub struct AwsBatch {
    client: Client,
    endpoint: String,
}

impl AwsBatch {
    /// Build the client (no request is made yet).
    pub async fn new(config: &BatchConfig) -> AwsBatch {
        let shared = crate::aws::loader(config.region.as_deref(), config.endpoint.as_deref())
            .load()
            .await;
        let endpoint = config.endpoint.clone().unwrap_or_else(|| {
            format!(
                "AWS Batch ({})",
                shared
                    .region()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "no region".into())
            )
        });
        AwsBatch {
            client: Client::new(&shared),
            endpoint,
        }
    }

    fn error<E>(&self, call: &str, e: SdkError<E>) -> Error
    where
        E: aws_sdk_batch::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match &e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Error::Batch(format!(
                "Batch endpoint {} unreachable during {call}: {}",
                self.endpoint,
                DisplayErrorContext(&e)
            )),
            _ => Error::Batch(format!(
                "Batch endpoint {} answered {call} with an error: {}",
                self.endpoint,
                crate::error::aws_reason(&e)
            )),
        }
    }
}

impl BatchApi for AwsBatch {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    async fn check_queue(&self, queue: &str) -> Result<()> {
        let out = self
            .client
            .describe_job_queues()
            .job_queues(queue)
            .send()
            .await
            .map_err(|e| self.error("DescribeJobQueues", e))?;
        if out.job_queues().is_empty() {
            return Err(Error::BadInput(format!(
                "job queue `{queue}` not found at {} (key batch.queue)",
                self.endpoint
            )));
        }
        Ok(())
    }

    async fn check_job_definition(&self, definition: &str) -> Result<()> {
        let req = self.client.describe_job_definitions();
        let req = if definition.contains(':') {
            req.job_definitions(definition)
        } else {
            req.job_definition_name(definition).status("ACTIVE")
        };
        let out = req
            .send()
            .await
            .map_err(|e| self.error("DescribeJobDefinitions", e))?;
        let active = out
            .job_definitions()
            .iter()
            .any(|d| d.status().is_none_or(|s| s == "ACTIVE"));
        if !active {
            return Err(Error::BadInput(format!(
                "job definition `{definition}` not found (or not active) at {} (key batch.job_definition)",
                self.endpoint
            )));
        }
        Ok(())
    }

    async fn jobs_named(&self, queue: &str, prefix: &str) -> Result<Vec<JobSummary>> {
        // With a name filter Batch returns jobs of every status.
        let filter = KeyValuesPair::builder()
            .name("JOB_NAME")
            .values(format!("{prefix}*"))
            .build();
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .list_jobs()
                .job_queue(queue)
                .filters(filter.clone())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| self.error("ListJobs", e))?;
            for j in page.job_summary_list() {
                // Batch always sends both; a summary without a name cannot match the prefix
                // and is skipped, one without an id is listed with an empty id.
                let name = j.job_name().unwrap_or_default();
                if !name.starts_with(prefix) {
                    continue;
                }
                out.push(JobSummary {
                    id: j.job_id().unwrap_or_default().to_string(),
                    name: name.to_string(),
                    state: state(j.status()),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn submit(&self, request: &JobRequest) -> Result<String> {
        let mut req = self
            .client
            .submit_job()
            .job_name(&request.name)
            .job_queue(&request.queue)
            .job_definition(&request.job_definition)
            .container_overrides(
                ContainerOverrides::builder()
                    .set_command(Some(request.command.clone()))
                    .build(),
            );
        for (k, v) in &request.parameters {
            req = req.parameters(k, v);
        }
        if let Some(size) = request.array_size {
            req = req.array_properties(ArrayProperties::builder().size(size).build());
        }
        let out = req.send().await.map_err(|e| self.error("SubmitJob", e))?;
        out.job_id().map(str::to_string).ok_or_else(|| {
            Error::Batch(format!(
                "Batch endpoint {} accepted job {} without a job id",
                self.endpoint, request.name
            ))
        })
    }

    async fn describe(&self, job_id: &str) -> Result<JobInfo> {
        let out = self
            .client
            .describe_jobs()
            .jobs(job_id)
            .send()
            .await
            .map_err(|e| self.error("DescribeJobs", e))?;
        let Some(j) = out.jobs().first() else {
            return Err(Error::Batch(format!(
                "Batch job {job_id} not found at {}",
                self.endpoint
            )));
        };
        let container = j.container();
        let attempt_stream = j
            .attempts()
            .last()
            .and_then(|a| a.container())
            .and_then(|c| c.log_stream_name());
        let reason = j
            .status_reason()
            .or_else(|| container.and_then(|c| c.reason()))
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(JobInfo {
            id: j.job_id().unwrap_or(job_id).to_string(),
            name: j.job_name().unwrap_or_default().to_string(),
            state: state(j.status()),
            reason,
            log_stream: container
                .and_then(|c| c.log_stream_name())
                .or(attempt_stream)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            exit_code: container.and_then(|c| c.exit_code()),
            started_at: j.started_at(),
            stopped_at: j.stopped_at(),
        })
    }
}

fn state(s: Option<&JobStatus>) -> JobState {
    JobState::parse(s.map(|s| s.as_str()).unwrap_or("UNKNOWN"))
}
