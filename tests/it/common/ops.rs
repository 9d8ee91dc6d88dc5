//! Fixtures for the operations commands: a Batch queue and job definition on moto, a
//! config that points `[batch]` (and optionally `[slack]`) at loopback servers, and a
//! runner for the `milvus-tier` binary with AWS test credentials.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_batch::types::{
    CeState, CeType, ComputeEnvironmentOrder, ContainerProperties, JobDefinitionType, JqState,
    ResourceRequirement, ResourceType,
};
use test_support::Moto;
use test_support::moto::{ACCESS_KEY, REGION, SECRET_KEY};

/// Queue and job definition every Batch fixture creates.
pub const QUEUE: &str = "milvus-tier-queue";
/// See [`QUEUE`].
pub const JOB_DEFINITION: &str = "milvus-tier-migrate";

/// An aws-sdk-batch client on moto.
pub async fn batch_client(moto: &Moto) -> aws_sdk_batch::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(milvus_tier::aws::https_client())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_batch::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "static",
        ))
        .endpoint_url(moto.endpoint())
        .load()
        .await;
    aws_sdk_batch::Client::new(&shared)
}

/// Switch moto to Docker-free Batch and create a compute environment, [`QUEUE`] and
/// [`JOB_DEFINITION`].
pub async fn batch_setup(moto: &Moto) -> aws_sdk_batch::Client {
    moto.batch_without_docker();
    let role = moto.iam_role("milvus-tier-batch");
    let b = batch_client(moto).await;
    b.create_compute_environment()
        .compute_environment_name("milvus-tier-ce")
        .r#type(CeType::Unmanaged)
        .state(CeState::Enabled)
        .service_role(role)
        .send()
        .await
        .expect("create compute environment");
    b.create_job_queue()
        .job_queue_name(QUEUE)
        .state(JqState::Enabled)
        .priority(1)
        .compute_environment_order(
            ComputeEnvironmentOrder::builder()
                .order(1)
                .compute_environment("milvus-tier-ce")
                .build(),
        )
        .send()
        .await
        .expect("create job queue");
    b.register_job_definition()
        .job_definition_name(JOB_DEFINITION)
        .r#type(JobDefinitionType::Container)
        .container_properties(
            ContainerProperties::builder()
                .image("milvus-tier-batch:latest")
                .resource_requirements(
                    ResourceRequirement::builder()
                        .r#type(ResourceType::Vcpu)
                        .value("1")
                        .build(),
                )
                .resource_requirements(
                    ResourceRequirement::builder()
                        .r#type(ResourceType::Memory)
                        .value("512")
                        .build(),
                )
                .command("migrate")
                .build(),
        )
        .send()
        .await
        .expect("register job definition");
    b
}

/// Write a config whose clusters are (unused) SQLite files and whose `[batch]` points at
/// `endpoint`; `extra` is appended (e.g. a `[slack]` section).
pub fn ops_config(dir: &Path, endpoint: &str, extra: &str) -> PathBuf {
    let path = dir.join("milvus-tier.toml");
    super::write_config(
        &path,
        &test_support::sqlite_url(dir, "short.sqlite"),
        &test_support::sqlite_url(dir, "long.sqlite"),
        &test_support::sqlite_url(dir, "local.sqlite"),
        dir,
    );
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        r#"
[batch]
queue = "{QUEUE}"
job_definition = "{JOB_DEFINITION}"
endpoint = "{endpoint}"
region = "{REGION}"
wait_timeout_secs = 30
poll_initial_secs = 0.05
poll_max_secs = 0.2
{extra}"#
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// `milvus-tier ARGS` with `config`, only the given `MILVUS_TIER_*` variables, and AWS
/// test credentials.
pub fn tier(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_milvus-tier"));
    cmd.arg("--config").arg(config).args(args);
    for (k, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("MILVUS_TIER_") || k.starts_with("AWS_"))
    {
        cmd.env_remove(k);
    }
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("MILVUS_TIER_LOG_FORMAT", "text");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run milvus-tier")
}

/// Environment that points `[slack]` at a bot token, channel and API URL.
pub fn slack_bot_env(api_url: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "MILVUS_TIER_SLACK__BOT_TOKEN",
            "xoxb-test-token".to_string(),
        ),
        ("MILVUS_TIER_SLACK__CHANNEL", "C0TEST".to_string()),
        ("MILVUS_TIER_SLACK__API_URL", api_url.to_string()),
    ]
}

/// Stdout and stderr as text.
pub fn texts(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Every text of a recorded Block Kit message (header, fields, sections), joined.
pub fn block_text(body: &serde_json::Value) -> String {
    let mut out = Vec::new();
    for b in body["blocks"].as_array().into_iter().flatten() {
        if let Some(t) = b["text"]["text"].as_str() {
            out.push(t.to_string());
        }
        for f in b["fields"].as_array().into_iter().flatten() {
            if let Some(t) = f["text"].as_str() {
                out.push(t.to_string());
            }
        }
    }
    out.join("\n")
}
