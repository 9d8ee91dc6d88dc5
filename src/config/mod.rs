//! Configuration: one TOML file layered under environment variables.
//!
//! Every key can be set by `MILVUS_TIER_<SECTION>__<KEY>` (e.g.
//! `MILVUS_TIER_LONG_TERM__META_URL`). Secrets (metadata passwords) come only from the
//! environment or a file named in the TOML, never from the TOML itself, and are masked
//! whenever the configuration is printed.

mod env;
mod secret;
mod sections;
mod tier;

use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;
use figment::Figment;
use figment::providers::{Format, Toml};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::redact;

pub use env::{ENV_PREFIX, TOP_LEVEL_KEYS, ignored_env};
pub use secret::Secret;
use secret::has_password;
pub use sections::{
    BackupConfig, ClusterConfig, EngineConfig, Limits, MILVUS_BUILD_INDEX_THRESHOLD,
};
pub use tier::{Tier, TierTarget};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// IANA timezone that defines "a day" (e.g. `Asia/Seoul`).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The writable cluster that receives inserts (read only by milvus-tier).
    pub short_term: ClusterConfig,
    /// The read-only cluster that holds every day before today.
    pub long_term: ClusterConfig,
    /// The local Milvus that merges and indexes one day.
    pub engine: EngineConfig,
    /// Where backups go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupConfig>,
    /// Time limits, concurrency, bandwidth.
    #[serde(default)]
    pub limits: Limits,
    /// AWS Batch queue and job definition for `submit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<crate::batch::BatchConfig>,
    /// Slack notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<crate::notify::SlackConfig>,
    /// Short-term partition rotation.
    #[serde(default)]
    pub partitions: crate::partitions::PartitionsConfig,
    /// `status`: when a day counts as behind.
    #[serde(default)]
    pub status: crate::lifecycle::config::StatusConfig,
    /// Prometheus Pushgateway for the runs' figures.
    #[serde(default)]
    pub metrics: crate::lifecycle::config::MetricsConfig,
    /// `archive`: when days leave long-term storage.
    #[serde(default)]
    pub archive: crate::lifecycle::config::ArchiveConfig,
}

fn default_timezone() -> String {
    "UTC".to_string()
}

impl Config {
    /// Load `path`, then apply `MILVUS_TIER_*` environment overrides, then validate.
    /// Variables whose name starts with no section of the configuration are not read (and
    /// named in a warning), see [`ignored_env`].
    pub fn load(path: &Path) -> Result<Config> {
        for name in ignored_env(std::env::vars_os().map(|(k, _)| k)) {
            tracing::warn!(
                variable = %name,
                "ignoring {name}: {ENV_PREFIX}<SECTION>__<KEY> names no configuration section (sections: {})",
                TOP_LEVEL_KEYS.join(", ")
            );
        }
        if !path.is_file() {
            return Err(Error::Config(format!(
                "config file {} not found",
                path.display()
            )));
        }
        let toml = Toml::file_exact(path);
        let figment = Figment::new().merge(toml).merge(Self::env());
        let config: Config = figment.extract().map_err(|e| figment_error(e, path))?;
        for key in ["short_term", "long_term", "engine"] {
            let key = format!("{key}.meta_password");
            if let Some(md) = figment.find_metadata(&key)
                && md.source.as_ref().and_then(|s| s.file_path()).is_some()
            {
                return Err(Error::Config(format!(
                    "key `{key}` in {}: secrets must come from the environment ({}{}) or meta_password_file, not the TOML file",
                    path.display(),
                    ENV_PREFIX,
                    key.replace('.', "__").to_ascii_uppercase()
                )));
            }
            let url_key = key.replace("meta_password", "meta_url");
            // Absent or not a string: extract() above already reported a missing or bad URL.
            let value: Option<String> = figment.extract_inner(&url_key).ok();
            let from_file = figment
                .find_metadata(&url_key)
                .and_then(|m| m.source.as_ref().and_then(|s| s.file_path()))
                .is_some();
            if from_file && value.as_deref().is_some_and(has_password) {
                return Err(Error::Config(format!(
                    "key `{url_key}` in {}: the URL holds a password; set it in {}{} or meta_password_file instead",
                    path.display(),
                    ENV_PREFIX,
                    key.replace('.', "__").to_ascii_uppercase()
                )));
            }
        }
        for key in crate::notify::SECRET_KEYS {
            let from_file = figment
                .find_metadata(key)
                .and_then(|m| m.source.as_ref().and_then(|s| s.file_path()))
                .is_some();
            if from_file {
                return Err(Error::Config(format!(
                    "key `{key}` in {}: secrets must come from the environment ({}{}) or {key}_file, not the TOML file",
                    path.display(),
                    ENV_PREFIX,
                    key.replace('.', "__").to_ascii_uppercase()
                )));
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Check values that types alone do not.
    pub fn validate(&self) -> Result<()> {
        self.tz()?;
        if self.short_term.partition_tag_format.is_none() {
            return Err(Error::Config(
                "key `short_term.partition_tag_format` is required".into(),
            ));
        }
        for (key, name) in [
            ("short_term.collection", &self.short_term.collection),
            ("long_term.collection", &self.long_term.collection),
        ] {
            if let Some(problem) = crate::milvus_name::collection_name_problem(name) {
                return Err(Error::Config(format!(
                    "key `{key}`: `{name}` is not a collection name Milvus accepts: {problem}"
                )));
            }
        }
        for (key, url) in [
            ("short_term.meta_url", &self.short_term.meta_url),
            ("long_term.meta_url", &self.long_term.meta_url),
            ("engine.meta_url", &self.engine.meta_url),
        ] {
            crate::meta::backend_of(url).map_err(|_| {
                Error::Config(format!(
                    "key `{key}`: `{}` must start with mysql:// or sqlite://",
                    redact::url(url)
                ))
            })?;
        }
        url::Url::parse(&self.engine.http_url).map_err(|e| {
            Error::Config(format!(
                "key `engine.http_url`: `{}`: {e}",
                self.engine.http_url
            ))
        })?;
        if let Some(b) = &self.backup {
            if !(b.target.starts_with("s3://") || b.target.starts_with("file://")) {
                return Err(Error::Config(format!(
                    "key `backup.target`: `{}` must start with s3:// or file://",
                    b.target
                )));
            }
            if b.max_attempts == 0 || b.part_concurrency == 0 {
                return Err(Error::Config(
                    "keys `backup.max_attempts` and `backup.part_concurrency` must be at least 1"
                        .into(),
                ));
            }
        }
        if let Some(b) = &self.batch {
            b.validate()?;
        }
        if let Some(s) = &self.slack {
            s.validate()?;
        }
        self.partitions.validate()?;
        self.status.validate()?;
        self.metrics.validate()?;
        self.archive.validate()?;
        if let Some(u) = &self.short_term.http_url {
            url::Url::parse(u)
                .map_err(|e| Error::Config(format!("key `short_term.http_url`: `{u}`: {e}")))?;
        }
        if self.engine.build_index_threshold != MILVUS_BUILD_INDEX_THRESHOLD
            && !self.engine.custom_build
        {
            return Err(Error::Config(format!(
                "key `engine.build_index_threshold`: {} is not the {MILVUS_BUILD_INDEX_THRESHOLD} compiled into Milvus 1.1.1 (MetaConsts.h; the engine has no config key for it); set `engine.custom_build = true` only if the engine was built with that value",
                self.engine.build_index_threshold
            )));
        }
        if self.limits.copy_concurrency == 0 {
            return Err(Error::Config(
                "key `limits.copy_concurrency` must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The configured timezone.
    pub fn tz(&self) -> Result<Tz> {
        self.timezone.parse::<Tz>().map_err(|_| {
            Error::Config(format!(
                "key `timezone`: `{}` is not an IANA timezone name",
                self.timezone
            ))
        })
    }

    /// How long to wait for a metadata connection.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.connect_timeout_secs)
    }

    /// The lock lease time.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.limits.lease_ttl_secs.max(1))
    }

    /// The longest wait for a lock whose holder is dead or about to expire.
    pub fn lock_wait(&self) -> Duration {
        Duration::from_secs(self.limits.lock_wait_secs)
    }

    /// The configuration as TOML with every secret masked.
    pub fn redacted_toml(&self) -> String {
        let mut c = self.clone();
        for url in [
            &mut c.short_term.meta_url,
            &mut c.long_term.meta_url,
            &mut c.engine.meta_url,
        ] {
            *url = redact::url(url);
        }
        c.engine.http_url = redact::url(&c.engine.http_url);
        if let Some(b) = c.backup.as_mut() {
            b.target = redact::url(&b.target);
        }
        if let Some(u) = c.metrics.pushgateway_url.as_mut() {
            *u = redact::url(u);
        }
        for u in [&mut c.short_term.http_url, &mut c.long_term.http_url]
            .into_iter()
            .flatten()
        {
            *u = redact::url(u);
        }
        toml::to_string_pretty(&c)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

fn figment_error(e: figment::Error, path: &Path) -> Error {
    let mut lines = Vec::new();
    for err in e {
        let key = if err.path.is_empty() {
            String::from("(top level)")
        } else {
            err.path.join(".")
        };
        let source = err
            .metadata
            .as_ref()
            .and_then(|m| m.source.as_ref())
            .map(|s| s.to_string())
            .unwrap_or_else(|| path.display().to_string());
        lines.push(format!("key `{key}` in {source}: {}", err.kind));
    }
    Error::Config(lines.join("; "))
}
