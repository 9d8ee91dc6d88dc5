//! The `[status]`, `[metrics]` and `[archive]` configuration sections.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `[status]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// A day older than this many days that is not yet published (and backed up, when
    /// `[backup]` is set) is behind: `status` exits 5.
    pub max_lag_days: u32,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig { max_lag_days: 2 }
    }
}

/// The `[metrics]` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Prometheus Pushgateway base URL; runs push their figures there when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushgateway_url: Option<String>,
    /// Value of the `job` grouping label (default `milvus-tier`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Seconds a push may take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// The `[archive]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Days older than this many days leave long-term storage (kept in the backup only).
    pub after_days: u32,
    /// Hours between an archive removing a day's rows and `gc` removing its folders
    /// (read-only nodes may still hold the files open).
    pub grace_hours: u64,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            after_days: 90,
            grace_hours: 24,
        }
    }
}

impl StatusConfig {
    /// Check the bounds.
    pub fn validate(&self) -> Result<()> {
        if self.max_lag_days > 3650 {
            return Err(Error::Config(
                "key `status.max_lag_days` must be at most 3650".into(),
            ));
        }
        Ok(())
    }
}

impl MetricsConfig {
    /// Check the URL.
    pub fn validate(&self) -> Result<()> {
        if let Some(u) = &self.pushgateway_url {
            let parsed = url::Url::parse(u).map_err(|e| {
                Error::Config(format!(
                    "key `metrics.pushgateway_url`: `{}`: {e}",
                    crate::redact::url(u)
                ))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Error::Config(format!(
                    "key `metrics.pushgateway_url`: `{}` must start with http:// or https://",
                    crate::redact::url(u)
                )));
            }
        }
        if self
            .job
            .as_deref()
            .is_some_and(|j| j.is_empty() || j.contains('/'))
        {
            return Err(Error::Config(
                "key `metrics.job` must be non-empty and hold no `/`".into(),
            ));
        }
        Ok(())
    }
}

impl ArchiveConfig {
    /// Check the bounds: archiving needs a day to be older than the partition rotation's
    /// window anyway, so fewer than 2 days is refused.
    pub fn validate(&self) -> Result<()> {
        if self.after_days < 2 {
            return Err(Error::Config(
                "key `archive.after_days` must be at least 2".into(),
            ));
        }
        Ok(())
    }
}
