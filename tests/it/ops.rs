//! `milvus-tier submit` against moto's AWS Batch API, and Slack notifications recorded by a
//! loopback Slack endpoint.

use crate::common;

use std::time::Duration;

use common::ops::*;
use milvus_tier::batch::{JobInfo, JobState};
use milvus_tier::notify::{Level, Notice, Notifier, SlackConfig};
use test_support::proxy::FaultyProxy;
use test_support::slack::Reply;
use test_support::{Moto, SlackServer};

const DAY: &str = "2026-11-20";

fn env_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, s)| (*k, s.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_wait_succeeds_on_moto_and_notifies_success_when_asked() {
    common::init();
    let moto = Moto::start();
    let batch = batch_setup(&moto).await;
    let slack = SlackServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = ops_config(dir.path(), &moto.endpoint(), "");
    let mut env = slack_bot_env(&slack.api_url());
    env.push(("MILVUS_TIER_SLACK__NOTIFY_SUCCESS", "true".into()));
    let o = tier(
        &config,
        &["submit", "--date", DAY, "--wait", "--json"],
        &env_refs(&env),
    );
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["status"], "SUCCEEDED");
    assert_eq!(json["job_name"], "milvus-tier-vectors-20261120");
    assert_eq!(json["exit_code"], 0);

    // The job on the Batch side: name, queue, command override and parameters.
    let id = json["job_id"].as_str().unwrap();
    let d = batch.describe_jobs().jobs(id).send().await.unwrap();
    let job = &d.jobs()[0];
    assert_eq!(job.job_name(), Some("milvus-tier-vectors-20261120"));
    assert!(job.job_queue().unwrap().ends_with(QUEUE));
    assert_eq!(
        job.container().unwrap().command(),
        ["migrate", "--date", DAY]
    );
    assert_eq!(job.parameters().unwrap()["date"], DAY);

    // Success is notified because notify_success is on.
    let reqs = slack.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/chat.postMessage")
    );
    assert_eq!(r.header("authorization"), Some("Bearer xoxb-test-token"));
    assert_eq!(r.body["channel"], "C0TEST");
    let text = block_text(&r.body);
    for want in ["SUCCEEDED", "vectors", DAY, id, "Duration"] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
    assert!(!err.contains("xoxb-test-token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_wait_reports_a_failed_job_with_exit_1_and_a_slack_message() {
    common::init();
    let moto = Moto::start_with_env(&[("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")]);
    batch_setup(&moto).await;
    let slack = SlackServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = ops_config(dir.path(), &moto.endpoint(), "");
    let env = slack_bot_env(&slack.api_url());
    let o = tier(
        &config,
        &["submit", "--date", DAY, "--wait"],
        &env_refs(&env),
    );
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(out.contains(": FAILED"), "status change printed: {out}");
    assert!(
        err.contains("FAILED") && err.contains("log stream"),
        "{err}"
    );
    let job_id = out
        .split_whitespace()
        .nth(3)
        .expect("submitted Batch job <id>")
        .to_string();
    let reqs = slack.requests();
    assert_eq!(reqs.len(), 1);
    let text = block_text(&reqs[0].body);
    for want in ["FAILED", "vectors", DAY, job_id.as_str(), "Reason"] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slack_outage_never_hides_the_job_result() {
    common::init();
    for (fail, code) in [(false, 0), (true, 1)] {
        let moto = if fail {
            Moto::start_with_env(&[("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")])
        } else {
            Moto::start()
        };
        batch_setup(&moto).await;
        let mut slack = SlackServer::start();
        let api = slack.api_url();
        slack.stop();
        let dir = tempfile::tempdir().unwrap();
        let config = ops_config(dir.path(), &moto.endpoint(), "");
        let mut env = slack_bot_env(&api);
        env.push(("MILVUS_TIER_SLACK__NOTIFY_SUCCESS", "true".into()));
        let o = tier(
            &config,
            &["submit", "--date", DAY, "--wait"],
            &env_refs(&env),
        );
        let (out, err) = texts(&o);
        assert_eq!(o.status.code(), Some(code), "{out}\n{err}");
        assert!(
            err.contains("Slack notification failed") && err.contains("chat.postMessage"),
            "{err}"
        );
        assert!(!err.contains("xoxb-test-token"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_range_is_one_array_job_of_one_child_per_day() {
    common::init();
    let moto = Moto::start();
    let batch = batch_setup(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ops_config(dir.path(), &moto.endpoint(), "");
    let o = tier(
        &config,
        &[
            "submit",
            "--from",
            "2026-11-20",
            "--to",
            "2026-11-24",
            "--json",
        ],
        &[],
    );
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["array_size"], 5);
    let id = json["job_id"].as_str().unwrap();
    let d = batch.describe_jobs().jobs(id).send().await.unwrap();
    let job = &d.jobs()[0];
    assert_eq!(
        job.job_name(),
        Some("milvus-tier-vectors-20261120-20261124")
    );
    assert_eq!(job.array_properties().unwrap().size(), Some(5));
    assert_eq!(
        job.container().unwrap().command(),
        [
            "migrate",
            "--from",
            "2026-11-20",
            "--to",
            "2026-11-24",
            "--day-from-array-index"
        ]
    );
    // One child per day.
    let children = batch.list_jobs().array_job_id(id).send().await.unwrap();
    let mut ids: Vec<String> = children
        .job_summary_list()
        .iter()
        .map(|j| j.job_id().unwrap().to_string())
        .collect();
    ids.sort();
    let want: Vec<String> = (0..5).map(|i| format!("{id}:{i}")).collect();
    assert_eq!(ids, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_still_running_for_the_day_refuses_a_second_submit() {
    common::init();
    // With a fail delay moto keeps the first job active (SUBMITTED) for that long inside
    // its SubmitJob call; our submit meanwhile must see it and refuse.
    let moto = Moto::start_with_env(&[("MOTO_SIMPLE_BATCH_FAIL_AFTER", "4")]);
    let batch = batch_setup(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ops_config(dir.path(), &moto.endpoint(), "");
    let b2 = batch.clone();
    let first = tokio::spawn(async move {
        b2.submit_job()
            .job_name("milvus-tier-vectors-20261118-20261121")
            .job_queue(QUEUE)
            .job_definition(JOB_DEFINITION)
            .send()
            .await
    });
    let mut running = None;
    for _ in 0..100 {
        let l = batch
            .list_jobs()
            .job_queue(QUEUE)
            .filters(
                aws_sdk_batch::types::KeyValuesPair::builder()
                    .name("JOB_NAME")
                    .values("milvus-tier-*")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        if let Some(j) = l
            .job_summary_list()
            .iter()
            .find(|j| j.status().is_some_and(|s| s.as_str() != "FAILED"))
        {
            running = j.job_id().map(str::to_string);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let running = running.expect("first job listed while active");
    let config2 = config.clone();
    let o = tokio::task::spawn_blocking(move || tier(&config2, &["submit", "--date", DAY], &[]))
        .await
        .unwrap();
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(
        err.contains(&running) && err.contains("--allow-duplicate"),
        "{err}"
    );
    first.await.unwrap().unwrap();
    let all = batch
        .list_jobs()
        .job_queue(QUEUE)
        .job_status(aws_sdk_batch::types::JobStatus::Failed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        all.job_summary_list().len(),
        1,
        "nothing else was submitted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_queue_or_definition_and_a_down_endpoint_are_named() {
    common::init();
    let moto = Moto::start();
    batch_setup(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ops_config(dir.path(), &moto.endpoint(), "");
    let o = tier(
        &config,
        &["submit", "--date", DAY],
        &[("MILVUS_TIER_BATCH__QUEUE", "no-such-queue")],
    );
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("job queue `no-such-queue` not found"), "{err}");
    let o = tier(
        &config,
        &["submit", "--date", DAY],
        &[("MILVUS_TIER_BATCH__JOB_DEFINITION", "no-such-def")],
    );
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("job definition `no-such-def` not found"),
        "{err}"
    );

    let down = format!("http://127.0.0.1:{}", test_support::free_port());
    let o = tier(
        &config,
        &["submit", "--date", DAY],
        &[("MILVUS_TIER_BATCH__ENDPOINT", down.as_str())],
    );
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&down) && err.contains("unreachable"), "{err}");
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "{err}"
    );
}

#[test]
fn batch_calls_retry_throttling_but_not_a_refusal() {
    common::init();
    let dir = tempfile::tempdir().unwrap();
    // No request gets through either proxy: the upstream port is never reached.
    let nowhere = test_support::free_port();
    // 503 on every request: the first Batch call is tried three times (the SDK's standard
    // retry mode), then the command fails with exit 1.
    let slow = FaultyProxy::start(nowhere, 1);
    let config = ops_config(dir.path(), &slow.endpoint(), "");
    let o = tier(&config, &["submit", "--date", DAY], &[]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("503"), "{err}");
    assert_eq!(slow.requests(), 3, "{err}");
    // 403 AccessDenied: not retried, one request.
    let denied = FaultyProxy::forbidding(nowhere, 1);
    let config = ops_config(dir.path(), &denied.endpoint(), "");
    let o = tier(&config, &["submit", "--date", DAY], &[]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("403"), "{err}");
    assert_eq!(denied.requests(), 1, "{err}");
}

#[test]
fn days_not_over_yet_are_refused_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    // No Batch server at all: the date check comes first.
    let config = ops_config(dir.path(), "http://127.0.0.1:9", "");
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let o = tier(&config, &["submit", "--date", &tomorrow], &[]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not over yet"), "{err}");
}

#[test]
fn slack_secrets_in_the_toml_and_a_bad_timezone_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = ops_config(
        dir.path(),
        "http://127.0.0.1:9",
        "[slack]\nbot_token = \"xoxb-in-file\"\nchannel = \"C1\"\n",
    );
    let o = tier(&config, &["submit", "--date", DAY], &[]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("slack.bot_token") && !err.contains("xoxb-in-file"),
        "{err}"
    );

    let config = ops_config(dir.path(), "http://127.0.0.1:9", "");
    let o = tier(
        &config,
        &["submit", "--date", DAY],
        &[("MILVUS_TIER_TIMEZONE", "Mars/Olympus_Mons")],
    );
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("Mars/Olympus_Mons"), "{err}");
}

fn failed_job() -> JobInfo {
    JobInfo {
        id: "4b1c-job".into(),
        name: "milvus-tier-vectors-20261120".into(),
        state: JobState::Failed,
        reason: Some("Essential container in task exited: exit 5".into()),
        log_stream: Some("milvus-tier/default/0a1b2c".into()),
        exit_code: Some(5),
        started_at: Some(1_000),
        stopped_at: Some(3_726_000),
    }
}

fn slack_config(api_url: Option<&str>, webhook: Option<&str>) -> SlackConfig {
    let toml = match (api_url, webhook) {
        (Some(api), _) => format!("channel = \"C0TEST\"\napi_url = \"{api}\"\n"),
        _ => String::new(),
    };
    let mut c: SlackConfig = toml::from_str(&toml).unwrap();
    if api_url.is_some() {
        c.bot_token = Some(milvus_tier::config::Secret::new("xoxb-test-token"));
    }
    if let Some(w) = webhook {
        c.webhook_url = Some(milvus_tier::config::Secret::new(w));
    }
    c
}

fn notice() -> Notice {
    let mut n = Notice {
        level: Level::Failure,
        what: "migration".into(),
        collection: "vectors".into(),
        days: DAY.into(),
        job_id: Some(failed_job().id),
        status: "FAILED".into(),
        reason: failed_job().reason,
        duration: Some(Duration::from_secs(3725)),
        rows: Some(6000),
        bytes: Some(432_000),
        extra: Vec::new(),
    };
    n.extra
        .push(("Log stream".into(), "milvus-tier/default/0a1b2c".into()));
    n
}

#[tokio::test]
async fn a_failure_notice_carries_every_field_as_block_kit() {
    common::init();
    let slack = SlackServer::start();
    let n = Notifier::new(&slack_config(Some(&slack.api_url()), None)).unwrap();
    assert!(n.wants(Level::Failure) && !n.wants(Level::Success));
    n.send(&notice()).await.unwrap();
    let r = &slack.requests()[0];
    assert_eq!(r.body["blocks"][0]["type"], "header");
    assert_eq!(r.body["blocks"][1]["type"], "section");
    let text = block_text(&r.body);
    for want in [
        "FAILED",
        "*Collection*\nvectors",
        "*Date(s)*\n2026-11-20",
        "*Job id*\n4b1c-job",
        "*Duration*\n1h 02m 05s",
        "*Rows migrated*\n6000",
        "*Bytes migrated*\n432000",
        "*Reason*\nEssential container in task exited: exit 5",
        "milvus-tier/default/0a1b2c",
    ] {
        assert!(text.contains(want), "{want:?} missing from {text}");
    }
    assert!(r.body["text"].as_str().unwrap().contains("exit 5"));
}

#[tokio::test]
async fn rate_limited_once_is_retried_after_retry_after() {
    common::init();
    let slack = SlackServer::start();
    slack.script(&[Reply::RateLimited(1)]);
    let n = Notifier::new(&slack_config(Some(&slack.api_url()), None)).unwrap();
    n.send(&notice()).await.unwrap();
    let reqs = slack.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].at - reqs[0].at >= Duration::from_secs(1));
    assert_eq!(reqs[0].body, reqs[1].body);

    // Twice in a row: one retry only, then an error.
    slack.script(&[Reply::RateLimited(0), Reply::RateLimited(0)]);
    let e = n.send(&notice()).await.unwrap_err();
    assert!(e.to_string().contains("429"), "{e}");
    assert_eq!(slack.requests().len(), 4);

    slack.script(&[Reply::ApiError("channel_not_found".into())]);
    let e = n.send(&notice()).await.unwrap_err();
    assert!(e.to_string().contains("channel_not_found"), "{e}");
    assert!(!e.to_string().contains("xoxb"), "{e}");
}

#[tokio::test]
async fn slack_refusals_are_not_retried_and_server_errors_are_retried_once() {
    common::init();
    let slack = SlackServer::start();
    for n in [
        Notifier::new(&slack_config(Some(&slack.api_url()), None)).unwrap(),
        Notifier::new(&slack_config(None, Some(&slack.webhook_url()))).unwrap(),
    ] {
        // A refused message (HTTP 400) or an API error: one request, then the error.
        let before = slack.requests().len();
        slack.script(&[Reply::BadRequest]);
        let e = n.send(&notice()).await.unwrap_err();
        assert!(e.to_string().contains("HTTP 400"), "{e}");
        assert_eq!(slack.requests().len(), before + 1);
        slack.script(&[Reply::ApiError("channel_not_found".into())]);
        n.send(&notice()).await.unwrap_err();
        assert_eq!(slack.requests().len(), before + 2);
        // A server error is worth one retry: the notice gets through.
        slack.script(&[Reply::ServerError]);
        n.send(&notice()).await.unwrap();
        let reqs = slack.requests();
        assert_eq!(reqs.len(), before + 4);
        assert_eq!(reqs[before + 2].body, reqs[before + 3].body);
    }
}

#[tokio::test]
async fn webhooks_get_the_same_blocks_and_errors_hide_the_secret_path() {
    common::init();
    let mut slack = SlackServer::start();
    let hook = slack.webhook_url();
    let n = Notifier::new(&slack_config(None, Some(&hook))).unwrap();
    n.send(&notice()).await.unwrap();
    let r = &slack.requests()[0];
    assert_eq!(r.path, "/services/T000/B000/XXXXSECRET");
    assert!(r.header("authorization").is_none());
    assert!(block_text(&r.body).contains("4b1c-job"));
    slack.stop();
    let e = n.send(&notice()).await.unwrap_err().to_string();
    assert!(
        e.contains("webhook on 127.0.0.1") && !e.contains("XXXXSECRET"),
        "{e}"
    );
}

#[test]
fn the_submit_notice_of_a_failed_job_names_reason_and_log_stream() {
    let info = failed_job();
    // Build through the same path `submit --wait` uses.
    let n = milvus_tier::batch::notice::notice_for(
        "vectors",
        &[DAY.parse().unwrap()],
        &info,
        Duration::from_secs(3725),
    );
    assert_eq!(n.level, Level::Failure);
    assert_eq!(n.reason.as_deref(), info.reason.as_deref());
    assert!(
        n.extra
            .iter()
            .any(|(k, v)| k == "Log stream" && v == "milvus-tier/default/0a1b2c")
    );
}
