//! Metrics: runs push their figures to a real Prometheus Pushgateway (Debian package
//! `prometheus-pushgateway`) on loopback, read back from its `/metrics`; a gateway that is
//! down leaves the exit code alone; the example alert rules pass `promtool` offline.

use crate::common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::*;
use test_support::free_port;

struct Pushgateway {
    child: Child,
    url: String,
}

impl Pushgateway {
    fn start() -> Pushgateway {
        let port = free_port();
        let child = Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-pushgateway (scripts/test installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::blocking_get(&format!("{url}/-/ready")).is_err() {
            assert!(Instant::now() < deadline, "pushgateway did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Pushgateway { child, url }
    }

    /// The value of `name` in the series whose labels include every one of `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let text = reqwest::blocking_get(&format!("{}/metrics", self.url)).unwrap();
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .find(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(|v| v.parse().unwrap())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        self.stop();
    }
}

fn now() -> f64 {
    chrono::Utc::now().timestamp() as f64
}

#[test]
fn runs_push_their_figures_and_a_down_gateway_changes_no_exit_code() {
    let mut c = cluster();
    let mut gw = Pushgateway::start();
    c.env.push((
        "MILVUS_TIER_METRICS__PUSHGATEWAY_URL".into(),
        gw.url.clone(),
    ));
    let before = now();
    let (o, m) = c.migrate(&["--date", "2026-11-20"]);
    assert!(o.status.success(), "{m:#}");
    let migrate = [
        ("job", "milvus-tier"),
        ("command", "migrate"),
        ("collection", COLL_LONG),
    ];
    let ok = gw
        .value("milvus_tier_last_success_timestamp_seconds", &migrate)
        .expect("last success pushed");
    assert!(ok >= before - 1.0 && ok <= now() + 1.0, "{ok}");
    assert_eq!(gw.value("milvus_tier_last_exit_code", &migrate), Some(0.0));
    let publish = [
        ("command", "migrate"),
        ("step", "publish"),
        ("day", "2026-11-20"),
    ];
    assert_eq!(gw.value("milvus_tier_step_rows", &publish), Some(6000.0));
    let published_bytes = m["days"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "publish")
        .unwrap()["bytes"]
        .as_f64()
        .unwrap();
    assert_eq!(
        gw.value("milvus_tier_step_bytes", &publish),
        Some(published_bytes)
    );

    // verify pushes its findings; a failed run its failure, the success stays.
    let (o, _) = c.run("verify", &["--date", "2026-11-20"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        gw.value(
            "milvus_tier_verify_findings",
            &[("command", "verify"), ("day", "2026-11-20")]
        ),
        Some(0.0)
    );
    let (o, _) = c.migrate(&["--date", "2026-11-25"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        gw.value("milvus_tier_last_failure_timestamp_seconds", &migrate)
            .is_some()
    );
    assert_eq!(gw.value("milvus_tier_last_exit_code", &migrate), Some(2.0));
    assert_eq!(
        gw.value("milvus_tier_last_success_timestamp_seconds", &migrate),
        Some(ok)
    );

    // status pushes the lifecycle gauges: day 21 is behind.
    let (o, _) = c.run(
        "status",
        &["--from", "2026-11-20", "--to", "2026-11-21"],
        &[],
    );
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(
        gw.value(
            "milvus_tier_days_behind",
            &[("command", "status"), ("collection", COLL_LONG)]
        ),
        Some(1.0)
    );

    // Gateway down: a warning, the exit code is the run's own.
    gw.stop();
    let (o, v) = c.run("verify", &["--date", "2026-11-20"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{v:#} {err}");
    assert!(err.contains("warning: metrics not pushed"), "{err}");
}

fn promtool(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool (Debian package prometheus; scripts/test installs it)")
}

#[test]
fn the_alert_rules_validate_and_fire_offline() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    let o = Command::new(test_support::venv_python())
        .arg("-c")
        .arg("import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert d['kind'] == 'PrometheusRule', d['kind']; yaml.safe_dump(d['spec'], open(sys.argv[2], 'w'))")
        .arg(test_support::workspace_root().join("deploy/k8s/monitoring/prometheusrule.yaml"))
        .arg(&rules)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = promtool(&["check", "rules", "rules.yaml"], dir.path());
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // Unit test of the rules: a day behind for 30 minutes, a failure newer than the last
    // success, a command that never succeeded; a recovered command does not fire.
    std::fs::write(
        dir.path().join("test.yaml"),
        r#"rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'milvus_tier_days_behind{collection="archive"}'
        values: '1x40'
      - series: 'milvus_tier_last_success_timestamp_seconds{collection="archive",command="migrate"}'
        values: '100x40'
      - series: 'milvus_tier_last_failure_timestamp_seconds{collection="archive",command="migrate"}'
        values: '200x40'
      - series: 'milvus_tier_last_failure_timestamp_seconds{collection="archive",command="backup"}'
        values: '50x40'
      - series: 'milvus_tier_last_success_timestamp_seconds{collection="live",command="partitions_rotate"}'
        values: '300x40'
      - series: 'milvus_tier_last_failure_timestamp_seconds{collection="live",command="partitions_rotate"}'
        values: '200x40'
    alert_rule_test:
      - eval_time: 10m
        alertname: MilvusTierDayBehind
        exp_alerts: []
      - eval_time: 35m
        alertname: MilvusTierDayBehind
        exp_alerts:
          - exp_labels: {severity: warning, collection: archive}
            exp_annotations:
              summary: "milvus-tier: 1 day(s) of archive behind"
              description: "A day older than status.max_lag_days is not yet published and backed up. Run `milvus-tier status` to see which and why (phase, failed step)."
      - eval_time: 5m
        alertname: MilvusTierRunFailed
        exp_alerts:
          - exp_labels: {severity: critical, collection: archive, command: backup}
            exp_annotations:
              summary: "milvus-tier: the last backup of archive failed"
              description: "Its last failure is newer than its last success. The exit code is in milvus_tier_last_exit_code; the run's log and Slack notice say why."
          - exp_labels: {severity: critical, collection: archive, command: migrate}
            exp_annotations:
              summary: "milvus-tier: the last migrate of archive failed"
              description: "Its last failure is newer than its last success. The exit code is in milvus_tier_last_exit_code; the run's log and Slack notice say why."
"#,
    )
    .unwrap();
    let o = promtool(&["test", "rules", "test.yaml"], dir.path());
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
