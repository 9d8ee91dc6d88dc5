//! Configuration: one TOML file layered under environment variables.
//!
//! Every key can be set by `MILVUS_TIER_<SECTION>__<KEY>` (e.g.
//! `MILVUS_TIER_LONG_TERM__META_URL`). Secrets (metadata passwords) come only from the
//! environment or a file named in the TOML, never from the TOML itself, and are masked
//! whenever the configuration is printed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

use crate::day::TagFormat;
use crate::error::{Error, Result};
use crate::redact;

/// Environment variable prefix for every key.
pub const ENV_PREFIX: &str = "MILVUS_TIER_";

/// The top-level keys of [`Config`] (sections and `timezone`). An environment variable is
/// configuration only when its name, after the prefix, starts with one of them.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "timezone",
    "short_term",
    "long_term",
    "engine",
    "backup",
    "limits",
    "batch",
    "slack",
    "partitions",
    "status",
    "metrics",
    "archive",
];

/// `MILVUS_TIER_*` variables the programs read themselves, not configuration keys.
const OWN_VARIABLES: &[&str] = &[
    "config",
    "log",
    "log_format",
    "failpoint",
    "test_venv",
    "test_failpoint_child",
    "test_crash_base",
    "bench_s",
];

/// Whether the figment key (after the prefix, `__` turned into `.`, lower case) names a
/// configuration key: its first part is a top-level key of [`Config`].
fn is_config_key(key: &str) -> bool {
    let first = key.split('.').next().unwrap_or_default();
    TOP_LEVEL_KEYS.contains(&first)
}

/// The `MILVUS_TIER_*` names among `names` that are neither configuration nor read by the
/// programs: e.g. `MILVUS_TIER_SERVICE_HOST`, which Kubernetes sets in every pod of a
/// namespace holding a Service named `milvus-tier`. They are ignored, with a warning.
pub fn ignored_env(names: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<String> {
    let mut out: Vec<String> = names
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| {
            let Some(rest) = n.strip_prefix(ENV_PREFIX) else {
                return false;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            !is_config_key(&key) && !OWN_VARIABLES.contains(&key.as_str())
        })
        .collect();
    out.sort();
    out
}

/// A secret value: deserialized normally, always serialized and debug-printed masked.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value read from the environment or a file.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value of `secret`, else the first line of `file`, else None; `key` names the
    /// setting in errors.
    pub fn resolve(
        secret: Option<&Secret>,
        file: Option<&Path>,
        key: &str,
    ) -> Result<Option<Secret>> {
        match (secret, file) {
            (Some(s), _) => Ok(Some(s.clone())),
            (None, Some(f)) => Ok(Some(Secret(read_secret_file(f, &format!("{key}_file"))?))),
            (None, None) => Ok(None),
        }
    }

    /// The secret itself, for building a connection; never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(redact::MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(redact::MASK)
    }
}

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

/// One Milvus cluster: its metadata database, storage and collection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `mysql://user@host:port/db` or `sqlite:///path/meta.sqlite`.
    pub meta_url: String,
    /// Password added to `meta_url` (environment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_password: Option<Secret>,
    /// File whose first line is the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_password_file: Option<PathBuf>,
    /// Milvus `storage.path` (segments live under `<path>/db/tables/`).
    pub storage_path: PathBuf,
    /// Collection name.
    pub collection: String,
    /// Partition tag format, a prefix plus strftime fields, e.g. `day_%Y-%m-%d`.
    /// Optional for the long-term cluster (defaults to the short-term one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_tag_format: Option<TagFormat>,
    /// Milvus HTTP API base URL of the cluster's writable node (port 19121); needed by
    /// `partitions rotate` on the short-term cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_url: Option<String>,
    /// The Milvus `server_config.yaml` its nodes run with; `config check` checks it against
    /// the 1.1.1 rules and the tier's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_config: Option<PathBuf>,
}

/// The local build engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Milvus HTTP API base URL (port 19121).
    pub http_url: String,
    /// Its metadata database URL.
    pub meta_url: String,
    /// Password added to `meta_url` (environment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_password: Option<Secret>,
    /// File whose first line is the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_password_file: Option<PathBuf>,
    /// Its `storage.path`.
    pub storage_path: PathBuf,
    /// The engine's build threshold: RAW files with fewer rows are never indexed. Milvus
    /// 1.1.1 compiles it in (`BUILD_INDEX_THRESHOLD = 4096`, `db/meta/MetaConsts.h`) and has
    /// no config key for it, so any other value needs `custom_build = true`.
    #[serde(default = "default_build_threshold")]
    pub build_index_threshold: i64,
    /// The engine's `server_config.yaml`; `config check` checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_config: Option<PathBuf>,
    /// The engine was built from modified source with another `BUILD_INDEX_THRESHOLD`.
    #[serde(default)]
    pub custom_build: bool,
}

/// Backup target.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// `s3://bucket/prefix` or `file:///path`.
    pub target: String,
    /// Custom S3 endpoint (S3-compatible servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// S3 region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Path-style S3 addressing (needed by most S3-compatible servers).
    #[serde(default)]
    pub force_path_style: bool,
    /// Attempts per S3 request (the SDK's standard retry mode: backoff on 5xx,
    /// throttling and connection errors).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Parts of one multipart upload sent at once, and ranged GETs of one file fetched at
    /// once by restore.
    #[serde(default = "default_part_concurrency")]
    pub part_concurrency: usize,
}

fn default_max_attempts() -> u32 {
    5
}

fn default_part_concurrency() -> usize {
    8
}

/// Time limits, concurrency and bandwidth.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connecting to a metadata database, seconds.
    pub connect_timeout_secs: u64,
    /// Waiting for the engine to merge a day, seconds.
    pub merge_timeout_secs: u64,
    /// Waiting for the engine to index a day, seconds.
    pub index_timeout_secs: u64,
    /// Failing when the engine shows no progress for this long, seconds.
    pub no_progress_timeout_secs: u64,
    /// Files copied at once.
    pub copy_concurrency: usize,
    /// Copy bandwidth cap in MB/s (0 = unlimited).
    pub bandwidth_mb_per_s: u64,
    /// How long a run's lock lease lasts unless renewed (renewed every third of it), seconds.
    pub lease_ttl_secs: u64,
    /// How long a run waits for the day's lock when its holder is dead or its lease ends
    /// within this time (a crashed attempt's lease), seconds.
    pub lock_wait_secs: u64,
    /// Minutes after a day's end (in the configured timezone) before it is migrated: late
    /// inserts and flushes of the day land in short-term meanwhile.
    pub settle_minutes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout_secs: 10,
            merge_timeout_secs: 3600,
            index_timeout_secs: 3600,
            no_progress_timeout_secs: 900,
            copy_concurrency: 4,
            bandwidth_mb_per_s: 0,
            lease_ttl_secs: 120,
            lock_wait_secs: 300,
            settle_minutes: 60,
        }
    }
}

fn default_timezone() -> String {
    "UTC".to_string()
}

/// `BUILD_INDEX_THRESHOLD` of Milvus 1.1.1 (`core/src/db/meta/MetaConsts.h`).
pub const MILVUS_BUILD_INDEX_THRESHOLD: i64 = 4096;

fn default_build_threshold() -> i64 {
    MILVUS_BUILD_INDEX_THRESHOLD
}

/// Which cluster a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// The writable short-term cluster.
    ShortTerm,
    /// The read-only long-term cluster.
    LongTerm,
    /// The local build engine.
    Local,
}

impl Tier {
    /// Every tier, in the order commands list them.
    pub const ALL: [Tier; 3] = [Tier::ShortTerm, Tier::LongTerm, Tier::Local];
}

impl std::str::FromStr for Tier {
    type Err = String;

    /// `short-term`, `long-term` or `local`, as [`fmt::Display`] writes them.
    fn from_str(s: &str) -> std::result::Result<Tier, String> {
        Tier::ALL
            .into_iter()
            .find(|t| t.to_string() == s)
            .ok_or_else(|| format!("unknown tier `{s}` (short-term, long-term, local)"))
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::ShortTerm => "short-term",
            Tier::LongTerm => "long-term",
            Tier::Local => "local",
        })
    }
}

/// What a command needs to know of one tier.
#[derive(Debug, Clone)]
pub struct TierTarget {
    /// Which tier.
    pub tier: Tier,
    /// Metadata URL with the password filled in (never print it: use `redacted_url`).
    pub meta_url: String,
    /// Metadata URL with the password masked.
    pub redacted_url: String,
    /// Storage path.
    pub storage_path: PathBuf,
    /// Collection name in this tier.
    pub collection: String,
    /// Partition tag format.
    pub tag_format: TagFormat,
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

    fn env() -> Env {
        Env::prefixed(ENV_PREFIX)
            .split("__")
            .filter(|k| is_config_key(&k.as_str().to_ascii_lowercase()))
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

    /// Everything a command needs to address `tier`.
    pub fn tier(&self, tier: Tier) -> Result<TierTarget> {
        let short_fmt = self
            .short_term
            .partition_tag_format
            .clone()
            .expect("validated");
        let long_fmt = self
            .long_term
            .partition_tag_format
            .clone()
            .unwrap_or_else(|| short_fmt.clone());
        let (url, pw, pw_file, storage, collection, fmt, section) = match tier {
            Tier::ShortTerm => {
                let c = &self.short_term;
                (
                    &c.meta_url,
                    &c.meta_password,
                    &c.meta_password_file,
                    &c.storage_path,
                    &c.collection,
                    short_fmt,
                    "short_term",
                )
            }
            Tier::LongTerm => {
                let c = &self.long_term;
                (
                    &c.meta_url,
                    &c.meta_password,
                    &c.meta_password_file,
                    &c.storage_path,
                    &c.collection,
                    long_fmt,
                    "long_term",
                )
            }
            Tier::Local => {
                let e = &self.engine;
                (
                    &e.meta_url,
                    &e.meta_password,
                    &e.meta_password_file,
                    &e.storage_path,
                    &self.long_term.collection,
                    long_fmt,
                    "engine",
                )
            }
        };
        let meta_url = with_password(url, pw.as_ref(), pw_file.as_deref(), section)?;
        Ok(TierTarget {
            tier,
            redacted_url: redact::url(&meta_url),
            meta_url,
            storage_path: storage.clone(),
            collection: collection.clone(),
            tag_format: fmt,
        })
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

fn has_password(url: &str) -> bool {
    url::Url::parse(url)
        .map(|u| u.password().is_some())
        .unwrap_or(false)
}

/// `url` with the password from `secret` or `file` filled in.
fn with_password(
    url: &str,
    secret: Option<&Secret>,
    file: Option<&Path>,
    section: &str,
) -> Result<String> {
    let password = match (secret, file) {
        (Some(s), _) => Some(s.expose().to_string()),
        (None, Some(f)) => Some(read_secret_file(
            f,
            &format!("{section}.meta_password_file"),
        )?),
        (None, None) => None,
    };
    let Some(password) = password else {
        return Ok(url.to_string());
    };
    let mut u = url::Url::parse(url).map_err(|e| {
        Error::Config(format!(
            "key `{section}.meta_url`: `{}`: {e}",
            redact::url(url)
        ))
    })?;
    u.set_password(Some(&password)).map_err(|_| {
        Error::Config(format!(
            "key `{section}.meta_url`: this URL cannot carry a password"
        ))
    })?;
    Ok(u.to_string())
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

/// The secret in a file (a Kubernetes or Batch secret mounted as a file): its first line
/// without the line ending (`\n` or `\r\n`). Nothing else is trimmed, as a password may
/// begin or end with spaces. `key` names the setting in errors.
fn read_secret_file(path: &Path, key: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("key `{key}`: cannot read {}: {e}", path.display())))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_keys_are_the_fields_of_config() {
        // serde's unknown-field error lists every field the struct accepts.
        let e = serde_json::from_str::<Config>(r#"{"zz_not_a_key": 1}"#).unwrap_err();
        let msg = e.to_string();
        let listed = msg
            .split("expected one of ")
            .nth(1)
            .unwrap_or_else(|| panic!("no field list in: {msg}"));
        let mut fields: Vec<&str> = listed
            .split(", ")
            .map(|f| f.trim_matches(|c: char| c == '`' || !c.is_ascii() || c.is_whitespace()))
            .map(|f| f.split('`').next().unwrap_or(f))
            .collect();
        fields.sort();
        let mut keys = TOP_LEVEL_KEYS.to_vec();
        keys.sort();
        assert_eq!(fields, keys, "{msg}");
    }

    #[test]
    fn only_names_of_no_section_are_ignored() {
        let names = [
            "MILVUS_TIER_SERVICE_HOST",
            "MILVUS_TIER_PORT_8080_TCP",
            "MILVUS_TIER_LONG_TERM__META_URL",
            "MILVUS_TIER_TIMEZONE",
            "MILVUS_TIER_LOG_FORMAT",
            "MILVUS_TIER_LIMITS__NO_SUCH_KEY",
            "PATH",
        ];
        let got = ignored_env(names.iter().map(std::ffi::OsString::from));
        assert_eq!(
            got,
            ["MILVUS_TIER_PORT_8080_TCP", "MILVUS_TIER_SERVICE_HOST"]
        );
    }

    #[test]
    fn a_secret_file_gives_its_first_line_without_the_line_ending_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("password");
        for (body, want) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\nsecond line\n", "s3cret"),
            (" pass word \n", " pass word "),
            ("no newline", "no newline"),
        ] {
            std::fs::write(&f, body).unwrap();
            assert_eq!(read_secret_file(&f, "k").unwrap(), want, "{body:?}");
            let s = Secret::resolve(None, Some(&f), "k").unwrap().unwrap();
            assert_eq!(s.expose(), want, "{body:?}");
        }
        let e = read_secret_file(&dir.path().join("missing"), "long_term.meta_password_file")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("long_term.meta_password_file") && e.contains("missing"),
            "{e}"
        );
    }
}
