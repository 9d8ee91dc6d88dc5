//! `config check` with each tier's Milvus `server_config.yaml` named (`server_config = …`):
//! ok for the deployment's files, FAIL (exit 1) for a file Milvus 1.1.1 refuses at load,
//! WARN (exit 0) for WAL on a node that receives copied rows.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::{sqlite_url, workspace_bin, workspace_root};

fn sim(args: &[&str]) {
    let o = Command::new(workspace_bin("milvus-sim"))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Three SQLite tiers that pass every other check, and a config naming `server_configs`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for t in ["short", "long", "local"] {
            std::fs::create_dir_all(d.join(t).join("db/tables")).unwrap();
        }
        let s = |p: PathBuf| p.to_str().unwrap().to_string();
        sim(&[
            "seed",
            "--meta",
            &sqlite_url(&d.join("short/db"), "meta.sqlite"),
            "--storage",
            &s(d.join("short")),
            "--collection",
            "live",
            "--days",
            "1",
            "--first-day",
            "2026-11-20",
            "--rows-per-day",
            "100",
            "--dim",
            "4",
            "--tag-format",
            "day_%Y-%m-%d",
        ]);
        for t in ["long", "local"] {
            sim(&[
                "seed-long-term",
                "--meta",
                &sqlite_url(&d.join(t).join("db"), "meta.sqlite"),
                "--storage",
                &s(d.join(t)),
                "--collection",
                "archive",
                "--dim",
                "4",
                "--index-file-size",
                "1024",
                "--index-type",
                "IVF_FLAT",
                "--params",
                r#"{"nlist":16}"#,
            ]);
        }
        Setup { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Run `config check` with these server configs (short, long, engine).
    fn check(&self, short: &Path, long: &Path, engine: &Path) -> (Output, String) {
        let d = self.dir.path();
        let meta = |t: &str| sqlite_url(&d.join(t).join("db"), "meta.sqlite");
        let cfg = d.join("milvus-tier.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"[short_term]
meta_url = "{}"
storage_path = "{}"
collection = "live"
partition_tag_format = "day_%Y-%m-%d"
server_config = "{}"
[long_term]
meta_url = "{}"
storage_path = "{}"
collection = "archive"
server_config = "{}"
[engine]
meta_url = "{}"
storage_path = "{}"
http_url = "http://127.0.0.1:1"
server_config = "{}"
"#,
                meta("short"),
                d.join("short").display(),
                short.display(),
                meta("long"),
                d.join("long").display(),
                long.display(),
                meta("local"),
                d.join("local").display(),
                engine.display(),
            ),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_milvus-tier"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MILVUS_TIER_")) {
            cmd.env_remove(k);
        }
        let o = cmd
            .arg("--config")
            .arg(&cfg)
            .args(["config", "check"])
            .output()
            .unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o, out)
    }
}

fn docker(name: &str) -> PathBuf {
    workspace_root().join("docker").join(name)
}

#[test]
fn the_deployment_server_configs_pass() {
    let s = Setup::new();
    let (short, long, local) = (
        docker("server_config.short.yaml"),
        docker("server_config.long.yaml"),
        docker("server_config.batch.yaml"),
    );
    let (o, out) = s.check(&short, &long, &local);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for (tier, file) in [
        ("short-term", &short),
        ("long-term", &long),
        ("local", &local),
    ] {
        assert!(
            out.contains(&format!(
                "ok   {tier} server config {}: Milvus 1.1.1 accepts it; fits the {tier} role",
                file.display()
            )),
            "{out}"
        );
    }
    assert!(out.contains(", 0 failed, 0 with warnings"), "{out}");
}

#[test]
fn a_config_milvus_refuses_fails_and_wal_on_a_copy_target_warns() {
    let s = Setup::new();
    // Milvus 1.1.1 refuses a log file size under 512 MB at load
    // (Config::CheckLogsMaxLogFileSize, core/src/config/Config.cpp:1978).
    let small_logs = s.path("engine.yaml");
    std::fs::write(
        &small_logs,
        std::fs::read_to_string(docker("server_config.batch.yaml"))
            .unwrap()
            .replace("max_log_file_size: 1024MB", "max_log_file_size: 256MB"),
    )
    .unwrap();
    // WAL on a long-term node: starts, but copied flush_lsn values break it (warning).
    let long_wal = s.path("long.yaml");
    let text = std::fs::read_to_string(docker("server_config.long.yaml")).unwrap();
    assert!(text.contains("wal:\n  enable: false\n"));
    std::fs::write(
        &long_wal,
        text.replace("wal:\n  enable: false\n", "wal:\n  enable: true\n"),
    )
    .unwrap();
    let short = docker("server_config.short.yaml");

    let (o, out) = s.check(&short, &long_wal, &small_logs);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "FAIL local server config {}: logs.max_log_file_size: `256MB` is 256 MB, not in range [512MB, 4096MB] (Config::CheckLogsMaxLogFileSize (Config.cpp:1978))",
            small_logs.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "WARN long-term server config {}: wal.enable: WAL is on, but a long-term node receives copied partition rows",
            long_wal.display()
        )),
        "{out}"
    );
    assert!(out.contains(", 1 failed, 1 with warnings"), "{out}");

    // The warning alone does not fail the check.
    let (o, out) = s.check(&short, &long_wal, &docker("server_config.batch.yaml"));
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("WARN long-term server config"), "{out}");

    // A file that is not there is a failure naming it.
    let missing = s.path("nope.yaml");
    let (o, out) = s.check(&short, &missing, &docker("server_config.batch.yaml"));
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "FAIL long-term server config {}: configuration: Milvus server config {}: cannot read",
            missing.display(),
            missing.display()
        )),
        "{out}"
    );
}
