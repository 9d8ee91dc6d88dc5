//! S3 helpers over a throwaway moto server: an SDK client, buckets, the environment a
//! `milvus-tier` child needs to reach it, and a `[backup]` section pointing at it.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use test_support::moto::{ACCESS_KEY, REGION, SECRET_KEY};

/// An SDK client for the server at `endpoint` (path-style, static test credentials).
pub async fn client(endpoint: &str) -> Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .http_client(milvus_tier::aws::https_client())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

/// Create `bucket`.
pub async fn create_bucket(endpoint: &str, bucket: &str) {
    client(endpoint)
        .await
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("create bucket");
}

/// Every key under `prefix`, sorted.
pub async fn keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let c = client(endpoint).await;
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let r = c
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list objects");
        out.extend(
            r.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match r.next_continuation_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    out.sort();
    out
}

/// The standard AWS chain's environment for a child process: static test credentials,
/// region, no instance metadata lookups, no shared config files.
pub fn aws_env() -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A `[backup]` section body for `s3://bucket/prefix` at `endpoint`.
pub fn backup_toml(bucket: &str, prefix: &str, endpoint: &str) -> String {
    format!(
        "target = \"s3://{bucket}/{prefix}\"\nendpoint = \"{endpoint}\"\nregion = \"{REGION}\"\nforce_path_style = true\nmax_attempts = 2\n"
    )
}

/// The bytes of object `key` in `bucket`.
pub async fn get(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get object")
        .body
        .collect()
        .await
        .expect("read object")
        .to_vec()
}

/// Write `body` to object `key` in `bucket`.
pub async fn put(client: &Client, bucket: &str, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("put object");
}
