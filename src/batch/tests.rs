//! The submit rules and the watch loop, driven by an in-process fake of the Batch API that
//! walks a job through scripted statuses (RUNNABLE → RUNNING → FAILED …), which a real
//! service shows only over minutes.

use std::sync::Mutex;
use std::time::Duration;

use super::*;

/// A Batch API in memory: fixed queues and definitions, listed jobs, and for `describe` a
/// script of statuses (the last one repeats).
struct Fake {
    queues: Vec<String>,
    definitions: Vec<String>,
    listed: Vec<JobSummary>,
    script: Vec<JobState>,
    polls: Mutex<usize>,
    submitted: Mutex<Vec<JobRequest>>,
}

impl Fake {
    fn new(script: Vec<JobState>) -> Fake {
        Fake {
            queues: vec!["q".into()],
            definitions: vec!["jd".into()],
            listed: Vec::new(),
            script,
            polls: Mutex::new(0),
            submitted: Mutex::new(Vec::new()),
        }
    }
}

impl BatchApi for Fake {
    fn endpoint(&self) -> String {
        "fake".into()
    }
    async fn check_queue(&self, queue: &str) -> Result<()> {
        if self.queues.iter().any(|q| q == queue) {
            Ok(())
        } else {
            Err(Error::BadInput(format!("job queue `{queue}` not found")))
        }
    }
    async fn check_job_definition(&self, d: &str) -> Result<()> {
        if self.definitions.iter().any(|x| x == d) {
            Ok(())
        } else {
            Err(Error::BadInput(format!("job definition `{d}` not found")))
        }
    }
    async fn jobs_named(&self, _queue: &str, prefix: &str) -> Result<Vec<JobSummary>> {
        Ok(self
            .listed
            .iter()
            .filter(|j| j.name.starts_with(prefix))
            .cloned()
            .collect())
    }
    async fn submit(&self, request: &JobRequest) -> Result<String> {
        let mut s = self.submitted.lock().unwrap();
        s.push(request.clone());
        Ok(format!("job-{}", s.len()))
    }
    async fn describe(&self, job_id: &str) -> Result<JobInfo> {
        let mut n = self.polls.lock().unwrap();
        let state = self.script[(*n).min(self.script.len() - 1)].clone();
        *n += 1;
        let failed = state == JobState::Failed;
        Ok(JobInfo {
            id: job_id.into(),
            name: "milvus-tier-vectors-20261120".into(),
            state,
            reason: failed.then(|| "Essential container in task exited".to_string()),
            log_stream: failed.then(|| "milvus-tier/default/abc123".to_string()),
            exit_code: failed.then_some(5),
            started_at: Some(1_000),
            stopped_at: failed.then_some(61_000),
        })
    }
}

fn cfg() -> BatchConfig {
    BatchConfig {
        queue: "q".into(),
        job_definition: "jd".into(),
        endpoint: None,
        region: None,
        wait_timeout_secs: 60,
        poll_initial_secs: 2.0,
        poll_max_secs: 30.0,
        report_target: None,
    }
}

fn day(s: &str) -> Day {
    s.parse().unwrap()
}

fn fast(timeout_ms: u64) -> WaitOptions {
    WaitOptions {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(4),
        timeout: Duration::from_millis(timeout_ms),
    }
}

#[tokio::test]
async fn wait_reports_each_change_and_ends_on_failed_with_reason_and_log_stream() {
    use JobState::*;
    let fake = Fake::new(vec![Runnable, Runnable, Running, Running, Running, Failed]);
    let mut seen = Vec::new();
    let info = wait(&fake, "job-1", fast(10_000), |i| seen.push(i.state.clone()))
        .await
        .unwrap();
    assert_eq!(seen, vec![Runnable, Running, Failed]);
    assert_eq!(info.state, Failed);
    assert_eq!(
        info.reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(
        info.log_stream.as_deref(),
        Some("milvus-tier/default/abc123")
    );
    assert_eq!(
        *fake.polls.lock().unwrap(),
        6,
        "polled until final, then stopped"
    );
}

#[tokio::test]
async fn wait_times_out_naming_the_job_and_its_status() {
    let fake = Fake::new(vec![JobState::Runnable, JobState::Running]);
    let err = wait(&fake, "job-7", fast(30), |_| {}).await.unwrap_err();
    assert_eq!(err.exit_code(), crate::error::exit::TIMEOUT);
    let msg = err.to_string();
    assert!(msg.contains("job-7") && msg.contains("RUNNING"), "{msg}");
}

#[tokio::test]
async fn submit_refuses_an_active_job_for_an_overlapping_day() {
    let mut fake = Fake::new(vec![JobState::Succeeded]);
    fake.listed = vec![
        JobSummary {
            id: "old-done".into(),
            name: "milvus-tier-vectors-20261121".into(),
            state: JobState::Succeeded,
        },
        JobSummary {
            id: "busy-range".into(),
            name: "milvus-tier-vectors-20261118-20261121".into(),
            state: JobState::Runnable,
        },
        JobSummary {
            id: "other-collection".into(),
            name: "milvus-tier-vectors2-20261122".into(),
            state: JobState::Running,
        },
    ];
    let days = vec![day("2026-11-21")];
    let req = request_for(&cfg(), "vectors", &days).unwrap();
    let err = submit(&fake, "vectors", &days, req.clone(), false)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), crate::error::exit::LOCKED);
    let msg = err.to_string();
    assert!(
        msg.contains("busy-range") && msg.contains("RUNNABLE"),
        "{msg}"
    );
    assert!(fake.submitted.lock().unwrap().is_empty());

    // A day no active job covers is submitted; so is a duplicate when allowed.
    let days22 = vec![day("2026-11-22")];
    let req22 = request_for(&cfg(), "vectors", &days22).unwrap();
    submit(&fake, "vectors", &days22, req22, false)
        .await
        .unwrap();
    let s = submit(&fake, "vectors", &days, req, true).await.unwrap();
    assert_eq!(s.job_id, "job-2");
    assert_eq!(fake.submitted.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn submit_names_an_unknown_queue_or_definition() {
    let fake = Fake::new(vec![JobState::Succeeded]);
    let days = vec![day("2026-11-21")];
    let mut req = request_for(&cfg(), "vectors", &days).unwrap();
    req.queue = "nope".into();
    let e = submit(&fake, "vectors", &days, req, false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("`nope`"), "{e}");
    let mut req = request_for(&cfg(), "vectors", &days).unwrap();
    req.job_definition = "gone".into();
    let e = submit(&fake, "vectors", &days, req, false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("`gone`"), "{e}");
    assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT);
}

#[test]
fn one_day_is_a_plain_job_and_a_range_an_array_job() {
    let one = request_for(&cfg(), "vectors", &[day("2026-11-20")]).unwrap();
    assert_eq!(one.command, ["migrate", "--date", "2026-11-20"]);
    assert_eq!(one.array_size, None);
    let days = Day::range(day("2026-11-20"), day("2026-11-24")).unwrap();
    let r = request_for(&cfg(), "vectors", &days).unwrap();
    assert_eq!(r.array_size, Some(5));
    assert_eq!(r.name, "milvus-tier-vectors-20261120-20261124");
    assert_eq!(
        r.command,
        [
            "migrate",
            "--from",
            "2026-11-20",
            "--to",
            "2026-11-24",
            "--day-from-array-index"
        ]
    );
}
