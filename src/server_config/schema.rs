//! The schema Milvus 1.1.1 accepts: its sections and keys, the config version, and the
//! rules `Config::ValidateConfig` applies to each key that is set.

use super::ServerConfig;
use super::values::{
    ipv4, is_bool, max_log_file_size, meta_uri, number, parse_bytes, port, positive_bytes,
    storage_path, timezone,
};

/// Keys of a 1.1.1 config (CPU build), by section: `Config.cpp` lines 42-214.
pub(super) const KNOWN: &[(&str, &[&str])] = &[
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

impl ServerConfig {
    /// The checks `Config::ValidateConfig` (Config.cpp:300-486) runs, in its order, on the
    /// keys that are set.
    pub(super) fn validate(&mut self) {
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
