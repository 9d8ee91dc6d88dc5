//! Deployment files, checked offline: Kubernetes manifests against the API schemas
//! (kubernetes-validate --strict), their cron schedules and timezones, the Batch job
//! definition's retry rules, the IAM policies' scope, the Dockerfile (hadolint) and the job
//! entrypoint (shellcheck, and run for real with `milvus-sim` as the engine).

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use test_support::{free_port, sqlite_url, venv_bin, venv_python, workspace_bin, workspace_root};

fn root(p: &str) -> PathBuf {
    workspace_root().join(p)
}

fn json(p: &str) -> Value {
    let text = std::fs::read_to_string(root(p)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn manifests() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root("deploy/k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn kubernetes_manifests_pass_strict_offline_validation() {
    let files = manifests();
    assert!(files.len() >= 5, "{files:?}");
    let o = Command::new(venv_bin("kubernetes-validate"))
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // The validator does reject a wrong manifest (an unknown field).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(root("deploy/k8s/cronjob-submit.yaml"))
        .unwrap()
        .replace(
            "concurrencyPolicy: Forbid",
            "concurrencyPolicy: Forbid\n  concurency: 1",
        );
    std::fs::write(&bad, text).unwrap();
    let o = Command::new(venv_bin("kubernetes-validate"))
        .arg("--strict")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!o.status.success());
}

/// A standard 5-field cron expression: each field a list of `*`, `N`, `N-M`, with an
/// optional `/step`, within the field's range.
fn cron_ok(expr: &str) -> bool {
    let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    let fields: Vec<&str> = expr.split_whitespace().collect();
    fields.len() == 5
        && fields.iter().zip(ranges).all(|(f, (lo, hi))| {
            f.split(',').all(|item| {
                let (base, step) = match item.split_once('/') {
                    Some((b, s)) => (b, Some(s)),
                    None => (item, None),
                };
                let num = |s: &str| s.parse::<u32>().ok().filter(|n| (lo..=hi).contains(n));
                let step_ok = step.is_none_or(|s| s.parse::<u32>().is_ok_and(|n| n > 0));
                let base_ok = base == "*"
                    || num(base).is_some()
                    || base.split_once('-').is_some_and(
                        |(a, b)| matches!((num(a), num(b)), (Some(a), Some(b)) if a <= b),
                    );
                step_ok && base_ok
            })
        })
}

#[test]
fn cronjobs_have_valid_schedules_timezones_and_safety_settings() {
    assert!(cron_ok("30 1 * * *") && cron_ok("*/15 0-6 1,15 * 1-5"));
    assert!(!cron_ok("61 1 * * *") && !cron_ok("30 1 * *") && !cron_ok("0 0 * * MON-"));
    for name in ["cronjob-submit.yaml", "cronjob-rotate.yaml"] {
        let text = std::fs::read_to_string(root("deploy/k8s").join(name)).unwrap();
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
                .map(|v| v.trim().trim_matches('"').to_string())
                .unwrap_or_else(|| panic!("{name}: no {key}"))
        };
        let schedule = value("schedule");
        assert!(cron_ok(&schedule), "{name}: schedule `{schedule}`");
        let tz = value("timeZone");
        assert!(
            tz.parse::<chrono_tz::Tz>().is_ok(),
            "{name}: timeZone `{tz}`"
        );
        assert_eq!(value("concurrencyPolicy"), "Forbid", "{name}");
        assert!(
            value("startingDeadlineSeconds").parse::<u32>().is_ok(),
            "{name}"
        );
        assert!(value("backoffLimit").parse::<u32>().is_ok(), "{name}");
    }
}

#[test]
fn the_job_definition_never_retries_bad_input_lock_or_conflict_exits() {
    let jd = json("batch-job/job-definition.json");
    let rs = &jd["retryStrategy"];
    assert!(rs["attempts"].as_u64().unwrap() > 1);
    let rules = rs["evaluateOnExit"].as_array().unwrap();
    assert!(rules.len() <= 5, "Batch allows at most 5 rules");
    // The first rule matching an exit code decides (Batch's order); unmatched codes retry.
    let action_for_code = |code: &str| {
        rules
            .iter()
            .find(|r| {
                r["onExitCode"]
                    .as_str()
                    .is_some_and(|p| match p.strip_suffix('*') {
                        Some(prefix) => code.starts_with(prefix),
                        None => p == code,
                    })
            })
            .map(|r| r["action"].as_str().unwrap().to_ascii_uppercase())
            .unwrap_or_else(|| "RETRY".into())
    };
    for code in ["2", "3", "5"] {
        assert_eq!(action_for_code(code), "EXIT", "exit {code}");
    }
    for code in ["1", "4"] {
        assert_eq!(
            action_for_code(code),
            "RETRY",
            "exit {code} (safe to rerun)"
        );
    }
    assert!(
        rules
            .iter()
            .any(|r| r["onStatusReason"] == "Host EC2*" && r["action"] == "RETRY")
    );
    let c = &jd["containerProperties"];
    let mounts = c["mountPoints"].as_array().unwrap();
    assert_eq!(mounts.len(), 2);
    let short = mounts
        .iter()
        .find(|m| m["sourceVolume"] == "efs-short-term")
        .unwrap();
    assert_eq!(short["readOnly"], true, "short-term is only ever read");
    for v in c["volumes"].as_array().unwrap() {
        assert!(v["efsVolumeConfiguration"]["fileSystemId"].is_string());
    }
    let secret_names: Vec<&str> = c["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(secret_names.contains(&"MILVUS_TIER_LONG_TERM__META_PASSWORD"));
    for e in c["environment"].as_array().unwrap() {
        let n = e["name"].as_str().unwrap();
        assert!(
            !n.contains("PASSWORD") && !n.contains("TOKEN"),
            "secret {n} in plain env"
        );
    }
    assert!(
        c["timeout"].is_null() && jd["timeout"]["attemptDurationSeconds"].as_u64().unwrap() > 0
    );
}

#[test]
fn iam_policies_are_scoped() {
    for p in [
        "batch-job/iam-policy.json",
        "batch-job/iam-policy-execution.json",
        "batch-job/iam-policy-submitter.json",
    ] {
        let doc = json(p);
        for st in doc["Statement"].as_array().unwrap() {
            let actions: Vec<String> = match &st["Action"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
                _ => panic!("{p}: no Action"),
            };
            for a in &actions {
                assert!(a != "*" && !a.ends_with(":*"), "{p}: wildcard action {a}");
            }
            let resources: Vec<String> = match &st["Resource"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
                _ => panic!("{p}: no Resource"),
            };
            for r in resources.iter().filter(|r| r.starts_with("arn:aws:s3:::")) {
                assert!(
                    r == "arn:aws:s3:::milvus-tier-backup"
                        || r.starts_with("arn:aws:s3:::milvus-tier-backup/long-term/"),
                    "{p}: S3 resource {r} outside the backup prefix"
                );
            }
            if resources.iter().any(|r| r == "*") {
                // Only actions that have no resource-level scope in AWS.
                for a in &actions {
                    assert!(
                        [
                            "batch:DescribeJobs",
                            "batch:ListJobs",
                            "batch:DescribeJobQueues",
                            "batch:DescribeJobDefinitions",
                            "ecr:GetAuthorizationToken"
                        ]
                        .contains(&a.as_str()),
                        "{p}: {a} on Resource *"
                    );
                }
            }
        }
    }
    for p in [
        "batch-job/compute-environment.json",
        "batch-job/job-queue.json",
    ] {
        json(p);
    }
}

#[test]
fn the_configmap_config_loads() {
    // Extract milvus-tier.toml from the ConfigMap with the venv's YAML parser (PyYAML, a
    // moto dependency), then let the binary load it: a config error exits 2 naming the
    // key; a loaded config reaches the date check, which refuses a day not over yet.
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("milvus-tier.toml");
    let o = Command::new(venv_python())
        .arg("-c")
        .arg("import sys, yaml; open(sys.argv[2], 'w').write(yaml.safe_load(open(sys.argv[1]))['data']['milvus-tier.toml'])")
        .arg(root("deploy/k8s/configmap.yaml"))
        .arg(&toml)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = common::ops::tier(
        &toml,
        &["submit", "--date", "2999-01-01"],
        &[("MILVUS_TIER_SLACK__BOT_TOKEN", "xoxb-x")],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not over yet"), "{err}");
}

#[test]
fn dockerfile_and_entrypoint_pass_their_linters() {
    let o = Command::new(venv_bin("hadolint"))
        .arg(root("docker/Dockerfile"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let o = Command::new(venv_bin("shellcheck"))
        .arg(root("batch-job/entrypoint.sh"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

/// A short-term cluster of two days and an empty long-term collection, all on SQLite.
struct Job {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn sim(args: &[&str]) {
    let o = Command::new(workspace_bin("milvus-sim"))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn job_setup() -> Job {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for t in ["short", "long", "local"] {
        std::fs::create_dir_all(d.join(t).join("db")).unwrap();
    }
    let meta = |t: &str| sqlite_url(&d.join(t).join("db"), "meta.sqlite");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    sim(&[
        "seed",
        "--meta",
        &meta("short"),
        "--storage",
        &s(&d.join("short")),
        "--collection",
        "live",
        "--days",
        "2",
        "--first-day",
        "2026-11-20",
        "--rows-per-day",
        "3000",
        "--segment-rows",
        "1500",
        "--dim",
        "8",
        "--tag-format",
        "day_%Y-%m-%d",
        "--index-file-size",
        "1",
    ]);
    sim(&[
        "seed-long-term",
        "--meta",
        &meta("long"),
        "--storage",
        &s(&d.join("long")),
        "--collection",
        "archive",
        "--dim",
        "8",
        "--index-file-size",
        "4096",
        "--index-type",
        "IVF_PQ",
        "--params",
        r#"{"m":4,"nlist":16}"#,
    ]);
    let config = d.join("milvus-tier.toml");
    std::fs::write(
        &config,
        format!(
            r#"timezone = "UTC"
[short_term]
meta_url = "{}"
storage_path = "{}"
collection = "live"
partition_tag_format = "day_%Y-%m-%d"
[long_term]
meta_url = "{}"
storage_path = "{}"
collection = "archive"
[engine]
meta_url = "{}"
storage_path = "{}"
http_url = "http://127.0.0.1:1"
[limits]
merge_timeout_secs = 60
index_timeout_secs = 60
no_progress_timeout_secs = 30
"#,
            meta("short"),
            s(&d.join("short")),
            meta("long"),
            s(&d.join("long")),
            meta("local"),
            s(&d.join("local")),
        ),
    )
    .unwrap();
    Job { dir, config }
}

impl Job {
    /// Run the entrypoint with `milvus-sim serve` as the engine command.
    fn entrypoint(&self, args: &[&str], env: &[(&str, &str)]) -> (Output, u16) {
        let port = free_port();
        let d = self.dir.path();
        let engine = format!(
            "{} serve --meta {} --storage {} --port {port} --tick-ms 50",
            workspace_bin("milvus-sim").display(),
            sqlite_url(&d.join("local").join("db"), "meta.sqlite"),
            d.join("local").display()
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new("bash");
        cmd.arg(root("batch-job/entrypoint.sh")).args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MILVUS_TIER_")) {
            cmd.env_remove(k);
        }
        cmd.env("ENGINE_CMD", engine)
            .env("ENGINE_URL", &url)
            .env("ENGINE_START_TIMEOUT_SECS", "30")
            .env("ENGINE_STOP_TIMEOUT_SECS", "10")
            .env("TIER_BIN", env!("CARGO_BIN_EXE_milvus-tier"))
            .env("WORK_DIR", d)
            .env("MILVUS_TIER_CONFIG", &self.config)
            .env("MILVUS_TIER_ENGINE__HTTP_URL", &url)
            .env("MILVUS_TIER_LOG_FORMAT", "text")
            .env(
                "REPORT_TARGET",
                format!("file://{}", d.join("reports").display()),
            );
        for (k, v) in env {
            cmd.env(k, v);
        }
        (cmd.output().unwrap(), port)
    }
}

fn stopped(port: u16, err: &str) {
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "engine still listening on {port}"
    );
    let pid: u32 = err
        .lines()
        .find_map(|l| {
            l.strip_prefix("entrypoint: engine pid ")?
                .strip_suffix(" stopped")
        })
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no stop line in {err}"));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "engine pid {pid} still there"
    );
}

#[test]
fn entrypoint_runs_an_array_child_migration_and_stops_the_engine() {
    let job = job_setup();
    let (o, port) = job.entrypoint(
        &[
            "migrate",
            "--from",
            "2026-11-20",
            "--to",
            "2026-11-21",
            "--day-from-array-index",
        ],
        &[
            ("AWS_BATCH_JOB_ARRAY_INDEX", "1"),
            ("AWS_BATCH_JOB_ID", "abc-123:1"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{err}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(err.contains("engine healthy"), "{err}");
    stopped(port, &err);
    let report = job
        .dir
        .path()
        .join("reports/milvus-tier-report-abc-123-1.json");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let days = r["days"].as_array().unwrap();
    assert_eq!(days.len(), 1, "the child ran only its own day: {r:#}");
    assert_eq!(days[0]["day"], "2026-11-21");
    assert_eq!(days[0]["outcome"], "migrated");
    assert_eq!(days[0]["plan"]["rows"], 3000);
}

#[test]
fn entrypoint_exits_with_migrates_code_and_stops_the_engine_on_failure() {
    let job = job_setup();
    // No partition for that day: bad input, exit 2, never retried by Batch.
    let (o, port) = job.entrypoint(&["migrate", "--date", "2026-11-10"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("day_2026-11-10"), "{err}");
    stopped(port, &err);

    // An engine that never answers: exit 1 within the limit, engine stopped.
    let (o, _) = job.entrypoint(
        &["migrate", "--date", "2026-11-20"],
        &[
            ("ENGINE_CMD", "sleep 60"),
            ("ENGINE_START_TIMEOUT_SECS", "1"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("did not answer") && err.contains("within 1s"),
        "{err}"
    );
    assert!(err.contains("stopped"), "{err}");

    // Anything but `migrate …` is refused.
    let (o, _) = job.entrypoint(&["submit"], &[]);
    assert_eq!(o.status.code(), Some(2));
}
