//! A Milvus 1.1.1 `server_config.yaml`, checked offline against the rules the engine applies
//! when it loads one, plus what each milvus-tier role needs of it.
//!
//! `milvus_server` reads the file (`Config::LoadConfigFile`), then `Server::LoadConfig`
//! calls `Config::ValidateConfig`; any refused value prints "Config check fail: …" and the
//! server exits 1 (`core/src/server/Server.cpp`, `Server::LoadConfig`). A key that is absent
//! takes its default (`Config::GetConfigStr`), and every default passes. Line numbers below
//! are `core/src/config/Config.cpp` (or the file named) at the image's commit `330cc61be`.
//! Two checks depend on the host and are left to the engine: `cache.cache_size` and
//! `cache.insert_buffer_size` against the machine's memory, and `engine_config.omp_thread_num`
//! against its cores.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use crate::config::Tier;
use crate::error::{Error, Result};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The engine refuses the file, or starts in a mode the role cannot work with.
    Fail,
    /// The engine starts, but the setting breaks milvus-tier's use of the node later.
    Warn,
}

/// One thing wrong with a server config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Fail or warn.
    pub level: Level,
    /// The key at fault, `section.key` (or `(file)` for the document as a whole).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// Where the engine applies the rule (Milvus source file and function).
    pub rule: &'static str,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.key, self.message, self.rule)
    }
}

/// Keys of a 1.1.1 config (CPU build), by section: `Config.cpp` lines 42-214.
const KNOWN: &[(&str, &[&str])] = &[
    ("cluster", &["enable", "role"]),
    ("general", &["timezone", "meta_uri"]),
    (
        "network",
        &["bind.address", "bind.port", "http.enable", "http.port"],
    ),
    (
        "db_config",
        &["archive_disk_threshold", "archive_days_threshold"],
    ),
    (
        "storage",
        &["path", "auto_flush_interval", "file_cleanup_timeout"],
    ),
    (
        "cache",
        &[
            "cache_size",
            "cpu_cache_threshold",
            "insert_buffer_size",
            "cache_insert_data",
            "preload_collection",
        ],
    ),
    (
        "metric",
        &[
            "enable",
            "address",
            "port",
            "cluster_label",
            "instance_label",
        ],
    ),
    (
        "engine_config",
        &[
            "use_blas_threshold",
            "omp_thread_num",
            "simd_type",
            "search_combine_nq",
            "max_partition_num",
        ],
    ),
    (
        "gpu",
        &[
            "enable",
            "cache.enable",
            "cache_size",
            "cache_threshold",
            "gpu_search_threshold",
            "search_devices",
            "build_index_devices",
        ],
    ),
    (
        "fpga",
        &["enable", "cache_size", "cache_threshold", "search_devices"],
    ),
    ("tracing_config", &["json_config_path"]),
    (
        "wal",
        &["enable", "recovery_error_ignore", "buffer_size", "path"],
    ),
    (
        "logs",
        &[
            "level",
            "trace.enable",
            "path",
            "max_log_file_size",
            "log_rotate_num",
            "log_to_stdout",
            "log_to_file",
        ],
    ),
];

/// `SERVER_CONFIG_VERSION` (Config.cpp:228): 1.x reads config version 0.5 only.
pub const CONFIG_VERSION: &str = "0.5";
/// `CONFIG_LOGS_MAX_LOG_FILE_SIZE_MIN` (Config.cpp:205): 512 MB.
pub const MAX_LOG_FILE_SIZE_MIN: i64 = 536_870_912;
/// `CONFIG_LOGS_MAX_LOG_FILE_SIZE_MAX` (Config.cpp:206): 4096 MB.
pub const MAX_LOG_FILE_SIZE_MAX: i64 = 4_294_967_296;

/// A parsed server config: every scalar as the string the engine reads
/// (`ConfigNode::GetValue`), keyed `section.key`.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    values: BTreeMap<String, String>,
    findings: Vec<Finding>,
}

impl ServerConfig {
    /// Read and check the file at `path`; an unreadable file is a config error naming it.
    pub fn load(path: &Path) -> Result<ServerConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "Milvus server config {}: cannot read: {e}",
                path.display()
            ))
        })?;
        Ok(ServerConfig::parse(&text))
    }

    /// Parse `text`. A document the engine's YAML reader refuses, or a value of the wrong
    /// shape, is kept as a finding rather than an error.
    pub fn parse(text: &str) -> ServerConfig {
        let mut sc = ServerConfig::default();
        let docs = match YamlLoader::load_from_str(text) {
            Ok(d) => d,
            Err(e) => {
                sc.fail(
                    "(file)",
                    format!("not YAML: {e}"),
                    "YamlConfigMgr::LoadConfigFile",
                );
                return sc;
            }
        };
        let Some(Yaml::Hash(root)) = docs.into_iter().next() else {
            sc.fail(
                "(file)",
                "the document is not a mapping of sections".into(),
                "YamlConfigMgr::LoadConfigFile",
            );
            return sc;
        };
        for (k, v) in root {
            let Some(section) = scalar(&k) else {
                sc.fail(
                    "(file)",
                    "a section name is not a plain string".into(),
                    "YamlConfigMgr::LoadConfigFile",
                );
                continue;
            };
            if section == "version" {
                match scalar(&v) {
                    Some(s) => {
                        sc.values.insert(section, s);
                    }
                    None => sc.fail(
                        "version",
                        "must be the plain value 0.5".into(),
                        "Config::CheckConfigVersion (Config.cpp:979)",
                    ),
                }
                continue;
            }
            let Some(keys) = KNOWN.iter().find(|(s, _)| *s == section).map(|(_, k)| k) else {
                sc.warn(
                    &section,
                    "not a Milvus 1.1.1 section: the engine ignores it (a misspelling?)".into(),
                    "Config.cpp:42-214",
                );
                continue;
            };
            let map = match v {
                Yaml::Hash(m) => m,
                Yaml::Null => continue,
                _ => {
                    sc.fail(
                        &section,
                        "must be a mapping of keys".into(),
                        "Config::GetConfigNode",
                    );
                    continue;
                }
            };
            for (k, v) in map {
                let Some(key) = scalar(&k) else {
                    sc.fail(
                        &section,
                        "a key is not a plain string".into(),
                        "Config::GetConfigNode",
                    );
                    continue;
                };
                let full = format!("{section}.{key}");
                if !keys.contains(&key.as_str()) {
                    sc.warn(
                        &full,
                        "not a Milvus 1.1.1 key: the engine ignores it and uses its default (a misspelling?)"
                            .into(),
                        "Config.cpp:42-214",
                    );
                    continue;
                }
                if matches!(v, Yaml::Array(_)) && key.ends_with("_devices") {
                    // GPU/FPGA device lists (`ConfigNode::GetSequence`); not read by a CPU build.
                    continue;
                }
                match scalar(&v) {
                    Some(s) => {
                        sc.values.insert(full, s);
                    }
                    None => sc.fail(
                        &full,
                        "must be a plain value, not a list or a mapping".into(),
                        "ConfigNode::GetValue",
                    ),
                }
            }
        }
        sc.validate();
        sc
    }

    /// The value of `section.key` as the engine reads it, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// What the engine does with this file at load: every refused value (none when it starts).
    pub fn engine_findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Everything wrong for a node of `tier`: what the engine refuses, then what the role
    /// needs (writable or read-only mode, WAL off where rows are copied in).
    pub fn check_for(&self, tier: Tier) -> Vec<Finding> {
        let mut out = self.findings.clone();
        let enable = self.bool_or("cluster.enable", true);
        let role = self.get("cluster.role").unwrap_or("rw");
        // DBWrapper::StartService (core/src/server/DBWrapper.cpp:85-99): cluster off is SINGLE
        // (writable); on, `ro` is CLUSTER_READONLY. DBImpl::Start (DBImpl.cpp:153-188) runs
        // merge, index build and TTL cleanup only when the mode is not CLUSTER_READONLY.
        let read_only = enable && role == "ro";
        let mode_rule = "DBWrapper::StartService (DBWrapper.cpp:85-99), DBImpl::Start";
        match tier {
            Tier::LongTerm if !read_only => out.push(Finding {
                level: Level::Fail,
                key: "cluster".into(),
                message: format!(
                    "a long-term node must be read-only (cluster.enable: true, cluster.role: ro); \
                     cluster.enable {enable} / role {role} runs merges, index builds and TTL cleanup \
                     on the published days"
                ),
                rule: mode_rule,
            }),
            Tier::ShortTerm | Tier::Local if read_only => out.push(Finding {
                level: Level::Fail,
                key: "cluster.role".into(),
                message: format!(
                    "a {tier} node must be writable (cluster.enable: false, or cluster.role: rw); \
                     role ro never flushes, merges or builds an index"
                ),
                rule: mode_rule,
            }),
            _ => {}
        }
        // CONFIG_WAL_ENABLE_DEFAULT is "true" (Config.cpp:185): WAL is on unless turned off.
        if matches!(tier, Tier::LongTerm | Tier::Local) && self.bool_or("wal.enable", true) {
            out.push(Finding {
                level: Level::Warn,
                key: "wal.enable".into(),
                message: format!(
                    "WAL is on, but a {tier} node receives copied partition rows: \
                     DBImpl::Flush -> WalManager::Flush returns lsn 0 for tables the WAL does not \
                     track (the flush that should start the merge merges nothing), and the foreign \
                     flush_lsn values make the next start fail with \"Wal init error!\"; \
                     set wal.enable: false"
                ),
                rule: "DBImpl::Flush (DBImpl.cpp:929) -> WalManager::Flush (db/wal/WalManager.cpp:448); WalManager::Init (WalManager.cpp:54) -> DBImpl::Start (DBImpl.cpp:136)",
            });
        }
        out
    }

    fn fail(&mut self, key: &str, message: String, rule: &'static str) {
        self.findings.push(Finding {
            level: Level::Fail,
            key: key.into(),
            message,
            rule,
        });
    }

    fn warn(&mut self, key: &str, message: String, rule: &'static str) {
        self.findings.push(Finding {
            level: Level::Warn,
            key: key.into(),
            message,
            rule,
        });
    }

    /// `ValidationUtil::ValidateStringIsBool` (ValidationUtil.cpp:608), defaulting when absent.
    fn bool_or(&self, key: &str, default: bool) -> bool {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            Some("true" | "on" | "yes" | "1") => true,
            Some("false" | "off" | "no" | "0" | "") => false,
            _ => default,
        }
    }

    /// The checks `Config::ValidateConfig` (Config.cpp:300-486) runs, in its order, on the
    /// keys that are set.
    fn validate(&mut self) {
        type Rule = (&'static str, fn(&str) -> Option<String>, &'static str);
        let rules: &[Rule] = &[
            (
                "cluster.enable",
                is_bool,
                "Config::CheckClusterConfigEnable (Config.cpp:992)",
            ),
            (
                "cluster.role",
                |v| (v != "rw" && v != "ro").then(|| "is not one of rw and ro".into()),
                "Config::CheckClusterConfigRole (Config.cpp:997)",
            ),
            (
                "general.timezone",
                timezone,
                "Config::CheckGeneralConfigTimezone (Config.cpp:1009)",
            ),
            (
                "general.meta_uri",
                meta_uri,
                "Config::CheckGeneralConfigMetaURI (Config.cpp:1030), ValidationUtil::ValidateDbURI (ValidationUtil.cpp:633)",
            ),
            (
                "network.bind.address",
                ipv4,
                "Config::CheckNetworkConfigBindAddress (Config.cpp:1045)",
            ),
            (
                "network.bind.port",
                port,
                "Config::CheckNetworkConfigBindPort (Config.cpp:1057)",
            ),
            (
                "network.http.enable",
                is_bool,
                "Config::CheckNetworkConfigHTTPEnable (Config.cpp:1080)",
            ),
            (
                "network.http.port",
                port,
                "Config::CheckNetworkConfigHTTPPort (Config.cpp:1085)",
            ),
            (
                "db_config.archive_disk_threshold",
                number,
                "Config::CheckDBConfigArchiveDiskThreshold (Config.cpp:1215)",
            ),
            (
                "db_config.archive_days_threshold",
                number,
                "Config::CheckDBConfigArchiveDaysThreshold (Config.cpp:1228)",
            ),
            (
                "storage.path",
                storage_path,
                "Config::CheckStorageConfigPath (Config.cpp:1242), ValidationUtil::ValidateStoragePath (ValidationUtil.cpp:684)",
            ),
            (
                "storage.auto_flush_interval",
                number,
                "Config::CheckStorageConfigAutoFlushInterval (Config.cpp:1252)",
            ),
            (
                "storage.file_cleanup_timeout",
                |v| {
                    number(v).or_else(|| {
                        (v.parse::<i64>().ok()? > 3600).then(|| "is not in range [0, 3600]".into())
                    })
                },
                "Config::CheckStorageConfigFileCleanupTimeout (Config.cpp:1266), read by DBWrapper::StartService",
            ),
            (
                "metric.enable",
                is_bool,
                "Config::CheckMetricConfigEnableMonitor (Config.cpp:1356)",
            ),
            (
                "metric.address",
                ipv4,
                "Config::CheckMetricConfigAddress (Config.cpp:1368)",
            ),
            (
                "metric.port",
                port,
                "Config::CheckMetricConfigPort (Config.cpp:1377)",
            ),
            (
                "cache.cache_size",
                positive_bytes,
                "Config::CheckCacheConfigCpuCacheCapacity (Config.cpp:1412)",
            ),
            (
                "cache.cpu_cache_threshold",
                |v| match v.trim().parse::<f32>() {
                    Ok(t) if t > 0.0 && t < 1.0 => None,
                    _ => Some("is not in range (0.0, 1.0)".into()),
                },
                "Config::CheckCacheConfigCpuCacheThreshold (Config.cpp:1497)",
            ),
            (
                "cache.insert_buffer_size",
                positive_bytes,
                "Config::CheckCacheConfigInsertBufferSize (Config.cpp:1516)",
            ),
            (
                "cache.cache_insert_data",
                is_bool,
                "Config::CheckCacheConfigCacheInsertData (Config.cpp:1574)",
            ),
            (
                "engine_config.use_blas_threshold",
                number,
                "Config::CheckEngineConfigUseBlasThreshold (Config.cpp:1622)",
            ),
            (
                "engine_config.omp_thread_num",
                number,
                "Config::CheckEngineConfigOmpThreadNum (Config.cpp:1634)",
            ),
            (
                "engine_config.simd_type",
                |v| {
                    (!["avx512", "avx2", "sse", "auto"].contains(&v))
                        .then(|| "is not one of avx512, avx2, sse and auto".into())
                },
                "Config::CheckEngineConfigSimdType (Config.cpp:1655)",
            ),
            (
                "engine_config.max_partition_num",
                number,
                "Config::CheckEngineConfigMaxPartitionNum (Config.cpp:1678)",
            ),
            (
                "tracing_config.json_config_path",
                |v| {
                    (!v.is_empty()).then(|| {
                        "names a tracer config file; the image ships none (leave it empty)".into()
                    })
                },
                "Config::GetTracingConfigJsonConfigPath (Config.cpp:2624)",
            ),
            (
                "wal.enable",
                is_bool,
                "Config::CheckWalConfigEnable (Config.cpp:1896)",
            ),
            (
                "wal.recovery_error_ignore",
                is_bool,
                "Config::CheckWalConfigRecoveryErrorIgnore (Config.cpp:1908)",
            ),
            (
                "wal.buffer_size",
                |v| parse_bytes(v).err(),
                "Config::CheckWalConfigBufferSize (Config.cpp:1921)",
            ),
            (
                "wal.path",
                storage_path,
                "Config::CheckWalConfigWalPath (Config.cpp:1936)",
            ),
            (
                "logs.level",
                |v| {
                    (!["debug", "info", "warning", "error", "fatal"].contains(&v))
                        .then(|| "is not one of debug, info, warning, error and fatal".into())
                },
                "Config::CheckLogsLevel (Config.cpp:1947), ValidationUtil::ValidateLogLevel (ValidationUtil.cpp:697)",
            ),
            (
                "logs.trace.enable",
                is_bool,
                "Config::CheckLogsTraceEnable (Config.cpp:1956)",
            ),
            (
                "logs.path",
                storage_path,
                "Config::CheckLogsPath (Config.cpp:1968)",
            ),
            (
                "logs.max_log_file_size",
                max_log_file_size,
                "Config::CheckLogsMaxLogFileSize (Config.cpp:1978)",
            ),
            (
                "logs.log_rotate_num",
                |v| {
                    number(v).or_else(|| {
                        (v.parse::<i64>().ok()? > 1024).then(|| "is not in range [0, 1024]".into())
                    })
                },
                "Config::CheckLogsLogRotateNum (Config.cpp:2002)",
            ),
        ];
        match self.get("version") {
            Some(CONFIG_VERSION) => {}
            v => {
                let v = v.unwrap_or("(absent)").to_string();
                self.fail(
                    "version",
                    format!("`{v}`: Milvus 1.1.1 reads config version {CONFIG_VERSION} only"),
                    "Config::CheckConfigVersion (Config.cpp:979)",
                );
            }
        }
        for (key, check, rule) in rules {
            let Some(value) = self.get(key).map(str::to_string) else {
                continue;
            };
            if let Some(why) = check(&value) {
                self.fail(key, format!("`{value}` {why}"), rule);
            }
        }
    }
}

/// A YAML scalar as yaml-cpp hands it to `ConfigNode` (its text); None for lists and maps.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

/// `ValidationUtil::ValidateStringIsBool` (ValidationUtil.cpp:608).
fn is_bool(v: &str) -> Option<String> {
    let l = v.to_ascii_lowercase();
    (!["true", "on", "yes", "1", "false", "off", "no", "0", ""].contains(&l.as_str()))
        .then(|| "is not a boolean".into())
}

/// `ValidationUtil::ValidateStringIsNumber` (ValidationUtil.cpp:591): digits only.
fn number(v: &str) -> Option<String> {
    (v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || v.parse::<i64>().is_err())
        .then(|| "is not a natural number".into())
}

/// Port checks (Config.cpp:1057): a number strictly between 1024 and 65535.
fn port(v: &str) -> Option<String> {
    number(v).or_else(|| {
        let p: i64 = v.parse().ok()?;
        (!(p > 1024 && p < 65535)).then(|| "is not in range (1024, 65535)".into())
    })
}

/// `ValidationUtil::ValidateIpAddress` (ValidationUtil.cpp:556): `inet_pton(AF_INET, …)`.
fn ipv4(v: &str) -> Option<String> {
    v.parse::<std::net::Ipv4Addr>()
        .is_err()
        .then(|| "is not an IPv4 address".into())
}

/// Config.cpp:1009: `UTC` then `[+-]` and an hour (0-23), optionally `:MM`.
fn timezone(v: &str) -> Option<String> {
    let bad = || Some("is not UTC+H, UTC+HH:MM or UTC-… (e.g. UTC+0)".to_string());
    let Some(rest) = v.strip_prefix("UTC") else {
        return bad();
    };
    let Some(offset) = rest.strip_prefix('+').or_else(|| rest.strip_prefix('-')) else {
        return bad();
    };
    let (h, m) = match offset.split_once(':') {
        Some((h, m)) => (h, Some(m)),
        None => (offset, None),
    };
    let hour_ok = (1..=2).contains(&h.len())
        && h.bytes().all(|b| b.is_ascii_digit())
        && h.parse::<u32>().is_ok_and(|h| h <= 23);
    let min_ok = m.is_none_or(|m| {
        m.len() == 2 && m.bytes().all(|b| b.is_ascii_digit()) && m.as_bytes()[0] <= b'5'
    });
    if hour_ok && min_ok { None } else { bad() }
}

/// `ValidationUtil::ValidateDbURI` (ValidationUtil.cpp:633): `dialect://user:password@host:port/db`
/// with every separator present, a dialect containing mysql or sqlite, and a numeric port
/// when one is given.
fn meta_uri(v: &str) -> Option<String> {
    let form = "must look like sqlite://:@:/ or mysql://user:password@host:3306/db";
    // The engine's regex is greedy `(.*)` groups; the last separator of each kind wins.
    let parse = || -> Option<(String, String)> {
        let (dialect, rest) = v.split_once("://")?;
        let (_, rest) = rest.split_once(':')?;
        let at = rest.rfind('@')?;
        let hostport_db = &rest[at + 1..];
        let slash = hostport_db.rfind('/')?;
        let hostport = &hostport_db[..slash];
        let colon = hostport.rfind(':')?;
        Some((
            dialect.to_ascii_lowercase(),
            hostport[colon + 1..].to_string(),
        ))
    };
    let Some((dialect, port)) = parse() else {
        return Some(form.to_string());
    };
    if !dialect.contains("mysql") && !dialect.contains("sqlite") {
        return Some(format!("has dialect `{dialect}`: {form}"));
    }
    if !port.is_empty() && number(&port).is_some() {
        return Some(format!("has port `{port}`, not a number"));
    }
    None
}

/// `ValidationUtil::ValidateStoragePath` (ValidationUtil.cpp:684): `^\/(\w+-?\/?)+$`, an
/// absolute path of word characters with single `-` or `/` between them.
fn storage_path(v: &str) -> Option<String> {
    let bad = || Some("is not an absolute path of letters, digits, `_`, single `-` and `/`".into());
    let Some(rest) = v.strip_prefix('/') else {
        return bad();
    };
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = rest.as_bytes();
    if b.is_empty() || !word(b[0]) {
        return bad();
    }
    for i in 1..b.len() {
        let ok = match b[i] {
            c if word(c) => true,
            b'-' => word(b[i - 1]),
            b'/' => word(b[i - 1]) || b[i - 1] == b'-',
            _ => false,
        };
        if !ok {
            return bad();
        }
    }
    None
}

/// `parse_bytes` (core/src/config/Utils.cpp:45): digits, optionally followed by one of
/// b/k/m/g (any case) and an optional trailing `B`.
pub fn parse_bytes(v: &str) -> std::result::Result<i64, String> {
    let err = || format!("`{v}` is not a size (digits with an optional unit b, k, m or g)");
    if v.is_empty() {
        return Ok(0);
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().map_err(|_| err());
    }
    let mut s = v;
    let n = s.len();
    if n >= 2
        && s.as_bytes()[n - 2].is_ascii_alphabetic()
        && matches!(s.as_bytes()[n - 1], b'b' | b'B')
    {
        s = &s[..n - 1];
    }
    let (digits, unit) = s.split_at(s.len() - 1);
    let mult: i64 = match unit.to_ascii_lowercase().as_str() {
        "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(err()),
    };
    // std::stoll reads a leading number and ignores what follows it.
    let lead: String = digits
        .chars()
        .enumerate()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
        .map(|(_, c)| c)
        .collect();
    lead.parse::<i64>()
        .map(|d| d.saturating_mul(mult))
        .map_err(|_| err())
}

fn positive_bytes(v: &str) -> Option<String> {
    match parse_bytes(v) {
        Err(e) => Some(e),
        Ok(n) if n <= 0 => Some("is not a positive size".into()),
        Ok(_) => None,
    }
}

fn max_log_file_size(v: &str) -> Option<String> {
    match parse_bytes(v) {
        Err(e) => Some(e),
        Ok(n) if !(MAX_LOG_FILE_SIZE_MIN..=MAX_LOG_FILE_SIZE_MAX).contains(&n) => {
            Some(format!("is {} MB, not in range [512MB, 4096MB]", n >> 20))
        }
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_bytes_follows_utils_cpp() {
        assert_eq!(parse_bytes("1024MB"), Ok(1 << 30));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("4GB"), Ok(4 << 30));
        assert_eq!(parse_bytes("1073741824"), Ok(1 << 30));
        assert!(parse_bytes("12XB").is_err());
    }

    #[test]
    fn the_small_validators_follow_validation_util() {
        assert!(storage_path("/var/lib/milvus/logs").is_none());
        assert!(storage_path("/a-b/c_d/").is_none());
        for bad in ["var/lib", "/a//a", "/a--/a", "/-a/a", "/a@#/a", "/"] {
            assert!(storage_path(bad).is_some(), "{bad}");
        }
        assert!(meta_uri("sqlite://:@:/").is_none());
        assert!(meta_uri("mysql://root:pw@mariadb:3306/db").is_none());
        assert!(meta_uri("mysql://root@mariadb:3306/db").is_some());
        assert!(meta_uri("postgres://a:b@h:1/d").is_some());
        assert!(meta_uri("mysql://a:b@h:x1/d").is_some());
        assert!(timezone("UTC+0").is_none() && timezone("UTC-05:30").is_none());
        assert!(timezone("UTC").is_some() && timezone("UTC+24").is_some());
        assert!(timezone("Asia/Seoul").is_some());
        assert!(port("19121").is_none() && port("1024").is_some() && port("80").is_some());
    }
}
