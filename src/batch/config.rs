//! The `[batch]` configuration section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::WaitOptions;
use crate::error::{Error, Result};

/// AWS Batch settings for `submit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Job queue name or ARN.
    pub queue: String,
    /// Job definition: name, `name:revision` or ARN.
    pub job_definition: String,
    /// Batch API endpoint URL (default: the AWS endpoint of the region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// AWS region (default: from the AWS environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `submit --wait` gives up after this long, seconds.
    #[serde(default = "default_wait_timeout")]
    pub wait_timeout_secs: u64,
    /// First delay between status polls, seconds (doubles up to `poll_max_secs`).
    #[serde(default = "default_poll_initial")]
    pub poll_initial_secs: f64,
    /// Longest delay between status polls, seconds.
    #[serde(default = "default_poll_max")]
    pub poll_max_secs: f64,
    /// Where the job uploads its JSON reports (the job's `REPORT_TARGET`: `s3://bucket/prefix`
    /// or `file:///dir`); when set, notices include the rows and bytes migrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_target: Option<String>,
}

fn default_wait_timeout() -> u64 {
    4 * 3600
}

fn default_poll_initial() -> f64 {
    2.0
}

fn default_poll_max() -> f64 {
    30.0
}

impl BatchConfig {
    /// Check values the types do not.
    pub fn validate(&self) -> Result<()> {
        for (key, v) in [
            ("batch.queue", &self.queue),
            ("batch.job_definition", &self.job_definition),
        ] {
            if v.trim().is_empty() {
                return Err(Error::Config(format!("key `{key}` must not be empty")));
            }
        }
        if let Some(e) = &self.endpoint {
            url::Url::parse(e)
                .map_err(|err| Error::Config(format!("key `batch.endpoint`: `{e}`: {err}")))?;
        }
        if let Some(t) = &self.report_target
            && !(t.starts_with("s3://") || t.starts_with("file://"))
        {
            return Err(Error::Config(format!(
                "key `batch.report_target`: `{t}` must start with s3:// or file://"
            )));
        }
        let ok = |v: f64| v.is_finite() && v > 0.0 && v <= 3600.0;
        if !ok(self.poll_initial_secs) || !ok(self.poll_max_secs) {
            return Err(Error::Config(
                "keys `batch.poll_initial_secs` and `batch.poll_max_secs` must be between 0 and 3600 seconds"
                    .into(),
            ));
        }
        if self.poll_max_secs < self.poll_initial_secs {
            return Err(Error::Config(
                "key `batch.poll_max_secs` must not be below `batch.poll_initial_secs`".into(),
            ));
        }
        Ok(())
    }

    /// The poll schedule and limit.
    pub fn wait_options(&self) -> WaitOptions {
        WaitOptions {
            initial: Duration::from_secs_f64(self.poll_initial_secs),
            max: Duration::from_secs_f64(self.poll_max_secs),
            timeout: Duration::from_secs(self.wait_timeout_secs),
        }
    }
}
