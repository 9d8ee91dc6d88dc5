//! HTTP client for the local Milvus 1.1.1 build engine (web API, port 19121).
//!
//! What the build step needs (health, create_index, flush, compact) and partition
//! listing, creation and dropping for `partitions rotate`. Idempotent calls are retried
//! with [`ENGINE_RETRY`] when the error's kind is retryable; every error says which call failed
//! and how (unreachable, HTTP status with Milvus's error JSON, or a malformed reply), so a
//! migration can tell an engine fault from success or a timeout.

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::ErrorKind;
use crate::meta::EngineType;
use crate::retry::{Policy, Retryable};

/// Retries of idempotent engine calls: 5 attempts, waits up to 0.2, 0.4, 0.8, 1.6 s.
pub const ENGINE_RETRY: Policy = Policy::new(Duration::from_millis(200), Duration::from_secs(2), 5);

/// Errors from the engine's HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No connection (engine down or crashed).
    #[error("engine {url} unreachable during {call}: {reason}")]
    Unreachable {
        /// Engine base URL.
        url: String,
        /// API call.
        call: &'static str,
        /// Transport error.
        reason: String,
    },
    /// The engine answered with an error status.
    #[error("engine {url} answered {call} with HTTP {status}: {body}")]
    Status {
        /// Engine base URL.
        url: String,
        /// API call.
        call: &'static str,
        /// HTTP status.
        status: u16,
        /// Response body (Milvus error JSON).
        body: String,
    },
    /// The engine answered with a body that is not the reply the call expects.
    #[error("engine {url} answered {call} with an unexpected reply: {detail}")]
    BadReply {
        /// Engine base URL.
        url: String,
        /// API call.
        call: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The engine cannot build this index type over HTTP.
    #[error("index type {0} cannot be requested through the Milvus HTTP API")]
    UnsupportedIndex(EngineType),
}

impl EngineError {
    /// The kind of this failure. An engine that cannot be reached, answers with an error
    /// status (Milvus answers 400 to failures of its own too, such as a metadata error) or
    /// with a reply cut short may answer the call when asked again; an index type the HTTP
    /// API cannot build is bad input.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::UnsupportedIndex(_) => ErrorKind::BadInput,
            EngineError::Unreachable { .. }
            | EngineError::Status { .. }
            | EngineError::BadReply { .. } => ErrorKind::Failure,
        }
    }
}

impl Retryable for EngineError {
    fn kind(&self) -> ErrorKind {
        EngineError::kind(self)
    }
}

/// The Milvus HTTP API name of an engine type (pymilvus's `IndexValue2NameMap`).
pub fn index_name(engine: EngineType) -> Result<&'static str, EngineError> {
    Ok(match engine {
        EngineType::Flat | EngineType::BinFlat => "FLAT",
        EngineType::IvfFlat | EngineType::BinIvfFlat => "IVFFLAT",
        EngineType::IvfSq8 => "IVFSQ8",
        EngineType::IvfSq8h => "IVFSQ8H",
        EngineType::IvfPq => "IVFPQ",
        EngineType::Rnsg => "RNSG",
        EngineType::Hnsw => "HNSW",
        EngineType::Annoy => "ANNOY",
        other => return Err(EngineError::UnsupportedIndex(other)),
    })
}

/// `name` as one URL path segment: every byte outside RFC 3986's unreserved set, and `.`
/// (a name `..` would be a dot-segment), percent-encoded, so `/`, `..`, quotes or spaces
/// in a name cannot change the path.
fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Client of one engine.
#[derive(Debug, Clone)]
pub struct Engine {
    base: String,
    http: reqwest::Client,
}

impl Engine {
    /// A client for `base_url` (e.g. `http://127.0.0.1:19121`).
    pub fn new(base_url: &str) -> Engine {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client builds");
        Engine {
            base: base_url.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// Base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET /state`: the engine is up.
    pub async fn health(&self) -> Result<(), EngineError> {
        self.call(
            "health",
            reqwest::Method::GET,
            "/state",
            None,
            Duration::from_secs(5),
            true,
        )
        .await
        .map(|_| ())
    }

    /// `POST /collections/{name}/indexes`. In Milvus 1.x this call returns only when the
    /// index is built, so it is given `timeout` and usually run in the background while the
    /// caller watches the metadata.
    pub async fn create_index(
        &self,
        collection: &str,
        engine: EngineType,
        params: &Value,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        let body = json!({ "index_type": index_name(engine)?, "params": params });
        let path = format!("/collections/{}/indexes", segment(collection));
        self.call(
            "create_index",
            reqwest::Method::POST,
            &path,
            Some(body),
            timeout,
            false,
        )
        .await
        .map(|_| ())
    }

    /// `PUT /system/task {"flush": …}`.
    pub async fn flush(&self, collection: &str) -> Result<(), EngineError> {
        let body = json!({ "flush": { "collection_names": [collection] } });
        self.call(
            "flush",
            reqwest::Method::PUT,
            "/system/task",
            Some(body),
            Duration::from_secs(600),
            true,
        )
        .await
        .map(|_| ())
    }

    /// `PUT /system/task {"compact": …}`.
    pub async fn compact(&self, collection: &str) -> Result<(), EngineError> {
        let body = json!({ "compact": { "collection_name": collection } });
        self.call(
            "compact",
            reqwest::Method::PUT,
            "/system/task",
            Some(body),
            Duration::from_secs(600),
            true,
        )
        .await
        .map(|_| ())
    }

    /// `GET /collections/{name}/partitions`, every page: the partition tags
    /// (`_default` included, as Milvus lists it).
    pub async fn list_partitions(&self, collection: &str) -> Result<Vec<String>, EngineError> {
        const PAGE: usize = 100;
        let mut tags = Vec::new();
        loop {
            let path = format!(
                "/collections/{}/partitions?offset={}&page_size={PAGE}",
                segment(collection),
                tags.len()
            );
            let v = self
                .call(
                    "list_partitions",
                    reqwest::Method::GET,
                    &path,
                    None,
                    Duration::from_secs(30),
                    true,
                )
                .await?;
            let bad = |detail: &str| EngineError::BadReply {
                url: self.base.clone(),
                call: "list_partitions",
                detail: format!("{detail}: {v}"),
            };
            let page: Vec<String> = v["partitions"]
                .as_array()
                .ok_or_else(|| bad("no `partitions` list"))?
                .iter()
                .map(|p| p["partition_tag"].as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a partition without `partition_tag`"))?;
            let count = v["count"].as_u64().ok_or_else(|| bad("no `count`"))? as usize;
            let done = page.is_empty();
            tags.extend(page);
            if done || tags.len() >= count {
                return Ok(tags);
            }
        }
    }

    /// `POST /collections/{name}/partitions {"partition_tag"}`.
    pub async fn create_partition(&self, collection: &str, tag: &str) -> Result<(), EngineError> {
        self.partition_call("create_partition", reqwest::Method::POST, collection, tag)
            .await
    }

    /// `DELETE /collections/{name}/partitions {"partition_tag"}`.
    pub async fn drop_partition(&self, collection: &str, tag: &str) -> Result<(), EngineError> {
        self.partition_call("drop_partition", reqwest::Method::DELETE, collection, tag)
            .await
    }

    /// A not-retried partition change (`{"partition_tag"}` body) whose reply is ignored.
    async fn partition_call(
        &self,
        call: &'static str,
        method: reqwest::Method,
        collection: &str,
        tag: &str,
    ) -> Result<(), EngineError> {
        let path = format!("/collections/{}/partitions", segment(collection));
        self.call(
            call,
            method,
            &path,
            Some(json!({ "partition_tag": tag })),
            Duration::from_secs(60),
            false,
        )
        .await
        .map(|_| ())
    }

    /// The JSON of a 2xx reply; an empty body (Milvus's DELETE answers 204) is `Null`.
    fn reply(
        &self,
        call: &'static str,
        text: reqwest::Result<String>,
    ) -> Result<Value, EngineError> {
        let bad = |detail: String| EngineError::BadReply {
            url: self.base.clone(),
            call,
            detail,
        };
        let text = text.map_err(|e| bad(format!("unreadable body: {e}")))?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e}): {text}")))
    }

    async fn call(
        &self,
        call: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
        idempotent: bool,
    ) -> Result<Value, EngineError> {
        let policy = if idempotent {
            ENGINE_RETRY
        } else {
            Policy {
                max_attempts: 1,
                ..ENGINE_RETRY
            }
        };
        policy
            .run(call, |_| {
                self.call_once(call, &method, path, body.as_ref(), timeout)
            })
            .await
    }

    /// One request of [`Engine::call`].
    async fn call_once(
        &self,
        call: &'static str,
        method: &reqwest::Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value, EngineError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .timeout(timeout);
        if let Some(b) = body {
            req = req.json(b);
        }
        match req.send().await {
            Err(e) => Err(EngineError::Unreachable {
                url: self.base.clone(),
                call,
                reason: e.to_string(),
            }),
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await;
                if status.is_success() {
                    self.reply(call, text)
                } else {
                    Err(EngineError::Status {
                        url: self.base.clone(),
                        call,
                        status: status.as_u16(),
                        // The status is the error; an unreadable body only makes the
                        // message shorter.
                        body: text.unwrap_or_default(),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-request HTTP server answering `{}`; returns its base URL and the request line.
    async fn one_request() -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            text.lines().next().unwrap_or_default().to_string()
        });
        (url, task)
    }

    /// An HTTP server answering its requests with `statuses` in order (`{}` as body), then
    /// 200 `{}`; returns its base URL and the count of requests it got.
    async fn scripted(statuses: &[u16]) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let (statuses, seen) = (statuses.to_vec(), count.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                if s.read(&mut buf).await.unwrap_or(0) == 0 {
                    continue;
                }
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let status = statuses.get(n).copied().unwrap_or(200);
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                );
                // Test server: a client that hung up needs no answer.
                let _ = s.write_all(head.as_bytes()).await;
            }
        });
        (url, count)
    }

    #[tokio::test]
    async fn idempotent_calls_are_retried_on_retryable_errors() {
        let (url, count) = scripted(&[503, 502]).await;
        Engine::new(&url).health().await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 3);
        // A server error on every attempt: five attempts, then the last error.
        let (url, count) = scripted(&[500; 10]).await;
        let err = Engine::new(&url).flush("c").await.unwrap_err();
        assert!(
            matches!(err, EngineError::Status { status: 500, .. }),
            "{err}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_client_error_status_is_retried_like_any_engine_failure() {
        // Milvus 1.1.1 answers 400 to failures of its own (a metadata error, say): for an
        // idempotent call it is worth asking again, and it stays exit 1 (Batch retries).
        let (url, count) = scripted(&[400]).await;
        Engine::new(&url).health().await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2);
        let (url, _) = scripted(&[400; 10]).await;
        let err = crate::error::Error::from(Engine::new(&url).compact("c").await.unwrap_err());
        assert_eq!(err.exit_code(), crate::error::exit::FAILURE, "{err}");
    }

    #[tokio::test]
    async fn an_index_type_the_api_cannot_build_is_bad_input_and_sends_nothing() {
        let (url, count) = scripted(&[]).await;
        let err = Engine::new(&url)
            .create_index(
                "c",
                EngineType::SptagKdt,
                &json!({}),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::UnsupportedIndex(_)), "{err}");
        let err = crate::error::Error::from(err);
        assert_eq!(err.exit_code(), crate::error::exit::BAD_INPUT, "{err}");
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn calls_that_are_not_idempotent_are_not_retried() {
        let (url, count) = scripted(&[500]).await;
        let err = Engine::new(&url)
            .create_index(
                "c",
                EngineType::IvfFlat,
                &json!({"nlist": 16}),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, EngineError::Status { status: 500, .. }),
            "{err}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let (url, count) = scripted(&[503]).await;
        Engine::new(&url)
            .drop_partition("c", "t")
            .await
            .unwrap_err();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn collection_names_are_one_path_segment() {
        let (url, task) = one_request().await;
        Engine::new(&url)
            .create_partition("x/../y'z é", "day_2026-11-20")
            .await
            .unwrap();
        assert_eq!(
            task.await.unwrap(),
            "POST /collections/x%2F%2E%2E%2Fy%27z%20%C3%A9/partitions HTTP/1.1"
        );
    }
}
