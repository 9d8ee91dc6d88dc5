//! Every `docker/server_config.*.yaml` against the rules Milvus 1.1.1 applies when it loads
//! a config (`Server::LoadConfig` -> `Config::ValidateConfig`, core/src/config/Config.cpp at
//! the image's commit 330cc61be) and against what its role needs; and each rule shown to
//! refuse a bad value, by editing a real file.

use std::path::PathBuf;

use milvus_tier::config::Tier;
use milvus_tier::server_config::{Finding, Level, ServerConfig};
use test_support::workspace_root;

/// The deployment's server configs and the role each one runs.
fn configs() -> Vec<(PathBuf, Tier)> {
    let dir = workspace_root().join("docker");
    let mut out: Vec<(PathBuf, Tier)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("server_config.") && n.ends_with(".yaml")
        })
        .map(|p| {
            let role = p.file_name().unwrap().to_string_lossy().to_string();
            let tier = match role.as_str() {
                "server_config.short.yaml" => Tier::ShortTerm,
                "server_config.long.yaml" => Tier::LongTerm,
                // The compose local engine and the Batch image's engine.
                "server_config.local.yaml" | "server_config.batch.yaml" => Tier::Local,
                other => panic!("{other}: no role known for this server config"),
            };
            (p, tier)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn text(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join("docker").join(name)).unwrap()
}

/// The findings for `yaml` run as `tier`, as `key: message` lines.
fn findings(yaml: &str, tier: Tier) -> Vec<Finding> {
    ServerConfig::parse(yaml).check_for(tier)
}

fn refused(yaml: &str, tier: Tier, key: &str) -> String {
    let f = findings(yaml, tier);
    let hit = f
        .iter()
        .find(|f| f.level == Level::Fail && f.key == key)
        .unwrap_or_else(|| panic!("`{key}` not refused; findings: {f:#?}\n{yaml}"));
    hit.to_string()
}

/// Replace one line (matched after trimming) of `yaml`, which must be there.
fn with(yaml: &str, line: &str, new: &str) -> String {
    let mut hit = false;
    let out: Vec<String> = yaml
        .lines()
        .map(|l| {
            if l.trim() == line {
                hit = true;
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}{new}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(hit, "no line `{line}`");
    out.join("\n") + "\n"
}

#[test]
fn every_deployment_server_config_loads_under_the_1_1_1_rules_and_fits_its_role() {
    let files = configs();
    assert_eq!(files.len(), 4, "{files:?}");
    let mut wrong = Vec::new();
    for (path, tier) in &files {
        let sc = ServerConfig::load(path).unwrap();
        for f in sc.check_for(*tier) {
            let name = path.file_name().unwrap().to_string_lossy();
            wrong.push(format!("{name} ({tier}): {:?} {f}", f.level));
        }
        // Config.cpp:228 SERVER_CONFIG_VERSION "0.5".
        assert_eq!(sc.get("version"), Some("0.5"));
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn the_log_file_size_must_be_512mb_to_4096mb() {
    // Config::CheckLogsMaxLogFileSize (Config.cpp:1978) with CONFIG_LOGS_MAX_LOG_FILE_SIZE_MIN
    // 536870912 and _MAX 4294967296 (Config.cpp:205-206); core/unittest/server/test_config.cpp
    // refuses 511MB.
    let base = text("server_config.short.yaml");
    let line = "max_log_file_size: 1024MB";
    for bad in ["256MB", "511MB", "4097MB", "5GB", "1024XB"] {
        let y = with(&base, line, &format!("max_log_file_size: {bad}"));
        let msg = refused(&y, Tier::ShortTerm, "logs.max_log_file_size");
        assert!(msg.contains("Config.cpp:1978"), "{msg}");
    }
    for good in ["512MB", "4096MB", "4GB", "536870912", "1g"] {
        let y = with(&base, line, &format!("max_log_file_size: {good}"));
        assert!(findings(&y, Tier::ShortTerm).is_empty(), "{good}");
    }
}

#[test]
fn each_load_rule_refuses_a_bad_value() {
    let short = text("server_config.short.yaml");
    let cases = [
        // Config::CheckConfigVersion (Config.cpp:979): only "0.5".
        ("version: 0.5", "version: 0.4", "version"),
        // Config::CheckClusterConfigEnable (Config.cpp:992) -> ValidateStringIsBool.
        ("enable: false", "enable: maybe", "cluster.enable"),
        // Config::CheckClusterConfigRole (Config.cpp:997): rw or ro.
        ("role: rw", "role: rx", "cluster.role"),
        // Config::CheckGeneralConfigTimezone (Config.cpp:1009): UTC[+-]H[:MM].
        (
            "timezone: UTC+0",
            "timezone: Asia/Seoul",
            "general.timezone",
        ),
        // Config::CheckGeneralConfigMetaURI (Config.cpp:1030) -> ValidateDbURI: the
        // `user:password@` part is required even when empty.
        (
            "meta_uri: mysql://root:milvus-e2e@mariadb:3306/short_term",
            "meta_uri: mysql://root@mariadb:3306/short_term",
            "general.meta_uri",
        ),
        (
            "meta_uri: mysql://root:milvus-e2e@mariadb:3306/short_term",
            "meta_uri: postgres://root:x@db:5432/short_term",
            "general.meta_uri",
        ),
        // Config::CheckNetworkConfigBindAddress (Config.cpp:1045): IPv4 (inet_pton).
        (
            "bind.address: 0.0.0.0",
            "bind.address: localhost",
            "network.bind.address",
        ),
        // Config::CheckNetworkConfigBindPort (Config.cpp:1057): (1024, 65535).
        ("bind.port: 19530", "bind.port: 1024", "network.bind.port"),
        // Config::CheckNetworkConfigHTTPPort (Config.cpp:1085).
        ("http.port: 19121", "http.port: 80", "network.http.port"),
        // Config::CheckStorageConfigPath (Config.cpp:1242) -> ValidateStoragePath.
        (
            "path: /milvus/storage",
            "path: milvus/storage",
            "storage.path",
        ),
        // Config::CheckStorageConfigAutoFlushInterval (Config.cpp:1252): a natural number.
        (
            "auto_flush_interval: 1",
            "auto_flush_interval: -1",
            "storage.auto_flush_interval",
        ),
        // Config::CheckStorageConfigFileCleanupTimeout (Config.cpp:1266): [0, 3600].
        (
            "file_cleanup_timeout: 10",
            "file_cleanup_timeout: 7200",
            "storage.file_cleanup_timeout",
        ),
        // Config::CheckCacheConfigCpuCacheCapacity (Config.cpp:1412): parse_bytes > 0.
        ("cache_size: 1GB", "cache_size: 0", "cache.cache_size"),
        // Config::CheckWalConfigEnable (Config.cpp:1896).
        ("enable: true", "enable: sometimes", "wal.enable"),
        // Config::CheckWalConfigWalPath (Config.cpp:1936).
        ("path: /milvus/run/wal", "path: /milvus//wal", "wal.path"),
        // Config::CheckLogsLevel (Config.cpp:1947) -> ValidateLogLevel: "warning", not "warn".
        ("level: info", "level: warn", "logs.level"),
        // Config::CheckLogsLogRotateNum (Config.cpp:2002): [0, 1024].
        (
            "log_rotate_num: 0",
            "log_rotate_num: 2000",
            "logs.log_rotate_num",
        ),
    ];
    for (line, bad, key) in cases {
        let y = with(&short, line, bad);
        let msg = refused(&y, Tier::ShortTerm, key);
        assert!(msg.contains("Config"), "cites its rule: {msg}");
    }
    // A value of the wrong shape: a list where the engine reads a string (ConfigNode::GetValue).
    let y = with(&short, "level: info", "level: [info]");
    refused(&y, Tier::ShortTerm, "logs.level");
    // Not YAML at all: YamlConfigMgr::LoadConfigFile fails.
    refused("version: 0.5\ncluster: [\n", Tier::ShortTerm, "(file)");
    // A misspelled key is ignored by the engine (its default applies): a warning.
    let y = with(
        &short,
        "max_log_file_size: 1024MB",
        "max_log_file_sise: 1024MB",
    );
    let f = findings(&y, Tier::ShortTerm);
    assert!(
        f.iter()
            .any(|f| f.level == Level::Warn && f.key == "logs.max_log_file_sise"),
        "{f:#?}"
    );
}

#[test]
fn each_role_needs_its_mode_and_wal_off_where_rows_are_copied_in() {
    // DBWrapper::StartService (DBWrapper.cpp:85-99): cluster.enable false is SINGLE (writable),
    // true + ro is CLUSTER_READONLY; DBImpl::Start runs merge/index/TTL unless read-only.
    let long = text("server_config.long.yaml");
    let y = with(&long, "enable: true", "enable: false");
    refused(&y, Tier::LongTerm, "cluster");
    let y = with(&long, "role: ro", "role: rw");
    refused(&y, Tier::LongTerm, "cluster");
    let local = text("server_config.local.yaml");
    let y = with(
        &with(&local, "enable: false", "enable: true"),
        "role: rw",
        "role: ro",
    );
    refused(&y, Tier::Local, "cluster.role");

    // WAL (CONFIG_WAL_ENABLE_DEFAULT "true", Config.cpp:185) on a node that receives copied
    // partition rows: WalManager::Flush returns lsn 0 for tables it does not track and
    // WalManager::Init fails on the foreign flush_lsn values ("Wal init error!",
    // DBImpl.cpp:136). A warning on long-term and local; short-term may keep it.
    for (name, tier) in [
        ("server_config.long.yaml", Tier::LongTerm),
        ("server_config.local.yaml", Tier::Local),
        ("server_config.batch.yaml", Tier::Local),
    ] {
        let y = text(name);
        assert!(y.contains("wal:\n  enable: false\n"), "{name}: WAL off");
        let y = y.replace("wal:\n  enable: false\n", "wal:\n  enable: true\n");
        let wal_on = ServerConfig::parse(&y);
        assert_eq!(wal_on.get("wal.enable"), Some("true"), "{name}");
        let f = wal_on.check_for(tier);
        assert!(
            f.iter()
                .any(|f| f.level == Level::Warn && f.key == "wal.enable"),
            "{name}: {f:#?}"
        );
        // No `wal` section at all: WAL is on by default.
        let start = y.find("wal:").unwrap();
        let end = start + y[start..].find("\n\n").unwrap();
        let no_wal = format!("{}{}", &y[..start], &y[end + 2..]);
        assert!(
            findings(&no_wal, tier)
                .iter()
                .any(|f| f.level == Level::Warn && f.key == "wal.enable"),
            "{name} without a wal section"
        );
    }
    let short = text("server_config.short.yaml");
    assert_eq!(ServerConfig::parse(&short).get("wal.enable"), Some("true"));
    assert!(findings(&short, Tier::ShortTerm).is_empty());
}

#[test]
fn compose_runs_milvus_as_the_invoking_user_with_every_written_path_on_a_mount() {
    // Milvus creates folders with mode 0744 (CommonUtil::CreateDirectory,
    // core/src/utils/CommonUtil.cpp:120): a root-run Milvus leaves folders the host-side steps
    // of scripts/e2e-real (seed, migrate, teardown) cannot enter as a normal user. So Milvus
    // runs as the invoking user, and every path it writes (storage.path; logs.path; wal.path
    // with its lock, InstanceLockCheck in Server::Start) is bind-mounted from a folder the
    // script creates as that user.
    use yaml_rust2::{Yaml, YamlLoader};
    let compose = text("compose.yml");
    let doc = &YamlLoader::load_from_str(&compose).unwrap()[0];
    let script = std::fs::read_to_string(workspace_root().join("scripts/e2e-real")).unwrap();
    assert!(
        script.contains("E2E_UID=\"$(id -u)\"") && script.contains("export E2E_UID E2E_GID"),
        "scripts/e2e-real passes the invoking user to compose"
    );
    let mut checked = 0;
    for role in ["short", "local", "long"] {
        let svc = &doc["services"][role];
        // `<<: *milvus` merges the anchor; yaml-rust2 keeps the merge key, so look in both.
        let user = svc["user"]
            .as_str()
            .or_else(|| svc["<<"]["user"].as_str())
            .unwrap_or_else(|| panic!("service {role}: no `user`, so Milvus runs as root"));
        assert!(
            user.contains("E2E_UID") && user.contains("E2E_GID"),
            "{role}: {user}"
        );
        let mounts: Vec<(String, String)> = svc["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|v| {
                let v = v.as_str().unwrap();
                let mut it = v.split(':');
                (it.next().unwrap().into(), it.next().unwrap().into())
            })
            .collect();
        let conf_src = &mounts
            .iter()
            .find(|(_, dst)| dst == "/var/lib/milvus/conf/server_config.yaml")
            .unwrap()
            .0;
        let sc = ServerConfig::parse(&text(conf_src.trim_start_matches("./")));
        let wal_on = !matches!(sc.get("wal.enable"), Some("false"));
        let mut written = vec![
            ("storage.path", sc.get("storage.path").unwrap().to_string()),
            ("logs.path", sc.get("logs.path").unwrap().to_string()),
        ];
        if wal_on {
            written.push(("wal.path", sc.get("wal.path").unwrap().to_string()));
        }
        for (key, path) in written {
            let (src, _) = mounts
                .iter()
                .find(|(_, dst)| path == *dst || path.starts_with(&format!("{dst}/")))
                .unwrap_or_else(|| {
                    panic!("{role}: {key} {path} is not on a bind mount ({mounts:?})")
                });
            let dir = src.trim_start_matches("./data/");
            assert!(src.starts_with("./data/"), "{role}: {src}");
            let in_loop = script.contains("for role in short local long; do");
            let created = script.contains(&format!("\"$DOCKER_DIR/data/{dir}\""))
                || (in_loop && dir == role && script.contains("\"$DOCKER_DIR/data/$role\""))
                || (in_loop
                    && dir == format!("{role}-run")
                    && script.contains("\"$DOCKER_DIR/data/$role-run\""));
            assert!(created, "{role}: scripts/e2e-real does not create {src}");
            checked += 1;
        }
    }
    assert!(checked >= 7, "{checked}");
    let _ = Yaml::Null;
}
