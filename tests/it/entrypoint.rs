//! The Batch job entrypoint (`batch-job/entrypoint.sh`) run for real with `milvus-sim` as the
//! engine: an array child's migration, migrate's exit codes, the report uploaded through
//! `milvus-tier report upload` (to a moto S3, with no AWS CLI on the PATH), and an engine that
//! signals its whole process group at start as Milvus 1.1.1's `DBWrapper` does.

use crate::common;

use std::net::TcpStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use test_support::moto::Moto;
use test_support::{free_port, sqlite_url, workspace_bin, workspace_root};

fn root(p: &str) -> PathBuf {
    workspace_root().join(p)
}

/// The PATH of the job image as far as the entrypoint is concerned: this machine's PATH
/// without any folder holding an `aws` program (the Milvus image has no AWS CLI).
fn path_without_aws() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|d| !d.join("aws").exists())
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
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
        std::fs::create_dir_all(d.join(t).join("db/tables")).unwrap();
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
        // Its own process group, as the job's PID 1 has: a signal sent to the engine's group
        // must not reach the test.
        cmd.arg(root("batch-job/entrypoint.sh"))
            .args(args)
            .process_group(0)
            .env("PATH", path_without_aws());
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

#[test]
fn entrypoint_uploads_the_report_to_s3_through_milvus_tier() {
    let job = job_setup();
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(common::s3::create_bucket(&moto.endpoint(), "job-reports"));
    let mut env: Vec<(String, String)> = common::s3::aws_env();
    for (k, v) in [
        ("REPORT_TARGET", "s3://job-reports/batch/"),
        ("AWS_BATCH_JOB_ID", "job-7"),
        ("MILVUS_TIER_BACKUP__TARGET", "s3://job-reports/backups"),
        ("MILVUS_TIER_BACKUP__ENDPOINT", moto.endpoint().as_str()),
        ("MILVUS_TIER_BACKUP__REGION", test_support::moto::REGION),
        ("MILVUS_TIER_BACKUP__FORCE_PATH_STYLE", "true"),
    ] {
        env.push((k.into(), v.into()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (o, port) = job.entrypoint(&["migrate", "--date", "2026-11-20"], &env);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("uploaded to s3://job-reports/batch/milvus-tier-report-job-7.json"),
        "{err}"
    );
    stopped(port, &err);
    let body = rt.block_on(async {
        let c = common::s3::client(&moto.endpoint()).await;
        let o = c
            .get_object()
            .bucket("job-reports")
            .key("batch/milvus-tier-report-job-7.json")
            .send()
            .await
            .expect("report object");
        o.body.collect().await.unwrap().into_bytes()
    });
    let r: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(r["days"][0]["day"], "2026-11-20", "{r:#}");
    assert_eq!(r["days"][0]["outcome"], "migrated", "{r:#}");
    assert_eq!(r["days"][0]["plan"]["rows"], 3000);
}

#[test]
fn an_engine_that_signals_its_process_group_does_not_kill_the_entrypoint() {
    // Milvus 1.1.1's DBWrapper::StartService calls kill(0, SIGUSR1) when the database cannot
    // be opened ("Wal init error!"): the whole process group gets SIGUSR1.
    let job = job_setup();
    let (o, _) = job.entrypoint(
        &["migrate", "--date", "2026-11-20"],
        &[
            ("MILVUS_SIM_SIGNAL_GROUP", "1"),
            ("AWS_BATCH_JOB_ID", "job-8"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.signal(),
        None,
        "entrypoint killed by signal {:?}: {err}",
        o.status.signal()
    );
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Wal init error!"),
        "the engine's own message: {err}"
    );
    assert!(
        err.contains("engine exited with code 1 before answering"),
        "{err}"
    );
    // The report says why, and went where reports go.
    let report = job.dir.path().join("reports/milvus-tier-report-job-8.json");
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no report {}: {e}\n{err}", report.display()));
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["days"], Value::Array(vec![]), "{r:#}");
    assert_eq!(r["engine"]["exit_code"], 1, "{r:#}");
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("engine exited with code 1 before answering")),
        "{r:#}"
    );

    // An engine killed by a signal is named by the signal.
    let dies = job.dir.path().join("dies.sh");
    std::fs::write(&dies, "#!/bin/sh\nkill -USR1 $$\n").unwrap();
    let (o, _) = job.entrypoint(
        &["migrate", "--date", "2026-11-20"],
        &[
            ("ENGINE_CMD", &format!("sh {}", dies.display())),
            ("AWS_BATCH_JOB_ID", "job-9"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("engine killed by signal USR1"), "{err}");
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(job.dir.path().join("reports/milvus-tier-report-job-9.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r["engine"]["signal"], "USR1", "{r:#}");
}

#[test]
fn report_upload_refuses_bad_input_and_writes_nothing() {
    let job = job_setup();
    let d = job.dir.path();
    let run = |file: &Path, to: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_milvus-tier"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MILVUS_TIER_")) {
            cmd.env_remove(k);
        }
        cmd.arg("--config")
            .arg(&job.config)
            .args(["report", "upload"])
            .arg(file)
            .args(["--to", to])
            .output()
            .unwrap()
    };
    let out = d.join("out");
    let to = format!("file://{}/", out.display());
    let not_json = d.join("r.json");
    std::fs::write(&not_json, "{\"days\": [").unwrap();
    let o = run(&not_json, &to);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "report {}: not a JSON document",
            not_json.display()
        )),
        "{err}"
    );
    let o = run(&d.join("absent.json"), &to);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("absent.json: cannot read"));
    std::fs::write(&not_json, "{\"days\": []}").unwrap();
    let o = run(&not_json, "ftp://host/x.json");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("report target `ftp://host/x.json`"), "{err}");
    assert!(!out.exists(), "nothing written");
    // And a good one lands byte for byte.
    let o = run(&not_json, &to);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read(out.join("r.json")).unwrap(),
        b"{\"days\": []}".to_vec()
    );
}
