//! Deployment files, checked offline: Kubernetes manifests against the API schemas
//! (kubernetes-validate --strict), their cron schedules and timezones, the Batch job
//! definition's retry rules, the IAM policies' scope, the Dockerfile (hadolint, no package
//! manager) and the scripts (shellcheck). The entrypoint runs for real in `tests/entrypoint.rs`.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use test_support::{venv_bin, venv_python, workspace_root};

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
        // No MILVUS_TIER_SERVICE_HOST-style variables from a Service named milvus-tier.
        assert_eq!(value("enableServiceLinks"), "false", "{name}");
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

/// Shell scripts of the repository, by their `#!` line.
fn shell_scripts() -> Vec<PathBuf> {
    let mut out = vec![root("batch-job/entrypoint.sh"), root(".ci/run")];
    for e in std::fs::read_dir(root("scripts")).unwrap() {
        let p = e.unwrap().path();
        let head = std::fs::read_to_string(&p).unwrap_or_default();
        if head.starts_with("#!/usr/bin/env bash") || head.starts_with("#!/bin/sh") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Package-manager calls in the `RUN` instructions of the Dockerfile's last stage (the one
/// the job runs), continuation lines joined.
fn runtime_package_manager_calls(dockerfile: &str) -> Vec<String> {
    let mut stage: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let t = line.trim();
        if t.starts_with('#') {
            continue;
        }
        current.push_str(t.trim_end_matches('\\'));
        current.push(' ');
        if !t.ends_with('\\') {
            if current.to_ascii_uppercase().starts_with("FROM ") {
                stage.clear();
            }
            stage.push(std::mem::take(&mut current));
        }
    }
    let managers = [
        "apt-get",
        "apt ",
        "aptitude",
        "dpkg -i",
        "yum",
        "dnf",
        "microdnf",
        "rpm -i",
        "rpm -U",
        "apk ",
        "pip",
        "easy_install",
        "conda",
        "gem install",
        "npm install",
        "curl",
        "wget",
    ];
    stage
        .iter()
        .filter(|i| i.to_ascii_uppercase().starts_with("RUN "))
        .filter(|i| managers.iter().any(|m| i.contains(m)))
        .cloned()
        .collect()
}

#[test]
fn dockerfile_and_scripts_pass_their_linters_and_the_image_installs_nothing() {
    let o = Command::new(venv_bin("hadolint"))
        .arg(root("docker/Dockerfile"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let scripts = shell_scripts();
    assert!(scripts.len() >= 5, "{scripts:?}");
    let o = Command::new(venv_bin("shellcheck"))
        .args(&scripts)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    // The runtime image is Milvus 1.1's CentOS 7 (docker/deploy/cpu/centos7/Dockerfile at
    // 330cc61be), whose repositories are end of life: the job stage runs no package manager.
    let dockerfile = std::fs::read_to_string(root("docker/Dockerfile")).unwrap();
    let calls = runtime_package_manager_calls(&dockerfile);
    assert!(
        calls.is_empty(),
        "runtime stage installs packages: {calls:#?}"
    );
    assert!(
        dockerfile.contains("FROM milvusdb/milvus:1.1.1-cpu-d061621-330cc6"),
        "runtime stage is the engine image"
    );
    // The check does catch one (the builder stage's `apk add` is fine, a later one is not).
    let bad = format!("{dockerfile}RUN yum install -y awscli \\\n    && yum clean all\n");
    assert_eq!(runtime_package_manager_calls(&bad).len(), 1);
    assert!(
        runtime_package_manager_calls(&dockerfile.replace("FROM milvusdb", "#")).len() == 1,
        "the builder's apk counts once it is the last stage"
    );

    // The build context leaves out build output, test data and virtualenvs.
    let ignore = std::fs::read_to_string(root(".dockerignore")).unwrap();
    for entry in ["target/", "docker/data/", ".venv*/"] {
        assert!(ignore.lines().any(|l| l.trim() == entry), "{entry}");
    }
}

/// Failpoints can abort a process: the image's build must not turn them on, nor may they be
/// a default feature (src/failpoint.rs ignores the variable without the feature).
#[test]
fn release_builds_have_no_failpoints() {
    let dockerfile = std::fs::read_to_string(root("docker/Dockerfile")).unwrap();
    let build: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.contains("cargo build"))
        .collect();
    assert!(!build.is_empty(), "the Dockerfile builds milvus-tier");
    for l in build {
        assert!(
            !l.contains("failpoints") && !l.contains("--all-features"),
            "{l}"
        );
    }
    let manifest = std::fs::read_to_string(root("Cargo.toml")).unwrap();
    let features = manifest
        .split("[features]")
        .nth(1)
        .expect("Cargo.toml has a [features] section");
    let features = features.split("\n[").next().unwrap();
    assert!(features.contains("failpoints = []"), "{features}");
    assert!(
        !features
            .lines()
            .any(|l| l.trim_start().starts_with("default") && l.contains("failpoints")),
        "{features}"
    );
}
