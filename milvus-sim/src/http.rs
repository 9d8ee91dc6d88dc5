//! The Milvus 1.x web server (port 19121): router, body parsing, error JSON and the fault
//! middleware. Paths, bodies and answers follow the Milvus web README and what pymilvus
//! 1.1.2's HTTP handler sends and parses; handlers are in [`crate::api`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};

use crate::api;
use crate::error::{SimError, code};
use crate::sim::Sim;

/// Shared state of the handlers.
pub type AppState = Arc<Sim>;

/// A handler result.
pub type Reply = Result<Response, SimError>;

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        json_reply(
            status,
            json!({"code": self.code(), "message": self.to_string()}),
        )
    }
}

/// A JSON response.
pub fn json_reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `{"code":0,"message":"OK"}` with `status`.
pub fn ok(status: StatusCode) -> Response {
    json_reply(status, json!({"code": 0, "message": "OK"}))
}

/// An empty 204.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Parse a request body as a JSON object (36 if not JSON, 35 if not an object).
pub fn parse_body(bytes: &[u8]) -> Result<Value, SimError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        SimError::api(
            code::BODY_PARSE_FAIL,
            format!("Cannot parse request body as JSON: {e}"),
        )
    })?;
    if !v.is_object() {
        return Err(SimError::api(
            code::ILLEGAL_BODY,
            "Request body must be a JSON object",
        ));
    }
    Ok(v)
}

/// A required field (34 when missing).
pub fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, SimError> {
    v.get(name)
        .filter(|x| !x.is_null())
        .ok_or_else(|| SimError::api(code::BODY_FIELD_LOSS, format!("Field '{name}' is required")))
}

fn illegal(name: &str, want: &str) -> SimError {
    SimError::api(code::ILLEGAL_BODY, format!("Field '{name}' must be {want}"))
}

/// An integer field (numbers or numeric strings).
pub fn as_int(v: &Value, name: &str) -> Result<i64, SimError> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| illegal(name, "an integer"))
}

/// A string field.
pub fn as_str<'a>(v: &'a Value, name: &str) -> Result<&'a str, SimError> {
    v.as_str().ok_or_else(|| illegal(name, "a string"))
}

/// A list of vectors as numbers (float values, or the bytes of binary vectors).
pub fn as_rows(v: &Value, name: &str) -> Result<Vec<Vec<f64>>, SimError> {
    let rows = v
        .as_array()
        .ok_or_else(|| illegal(name, "a list of vectors"))?;
    rows.iter()
        .map(|r| {
            r.as_array()
                .ok_or_else(|| illegal(name, "a list of vectors"))?
                .iter()
                .map(|x| {
                    x.as_f64()
                        .ok_or_else(|| illegal(name, "a list of number lists"))
                })
                .collect()
        })
        .collect()
}

/// A list of ids given as strings or numbers.
pub fn as_ids(v: &Value, name: &str) -> Result<Vec<i64>, SimError> {
    v.as_array()
        .ok_or_else(|| illegal(name, "a list of ids"))?
        .iter()
        .map(|x| as_int(x, name))
        .collect()
}

/// A list of strings.
pub fn as_strings(v: &Value, name: &str) -> Result<Vec<String>, SimError> {
    v.as_array()
        .ok_or_else(|| illegal(name, "a list of strings"))?
        .iter()
        .map(|x| as_str(x, name).map(str::to_string))
        .collect()
}

/// `offset` and `page_size` query parameters (37 when not numbers).
pub fn paging(
    q: &HashMap<String, String>,
    default_size: usize,
) -> Result<(usize, usize), SimError> {
    let get = |k: &str, d: usize| -> Result<usize, SimError> {
        match q.get(k) {
            None => Ok(d),
            Some(s) => s.parse().map_err(|_| {
                SimError::api(
                    code::ILLEGAL_QUERY_PARAM,
                    format!("Query param '{k}' must be a non-negative integer"),
                )
            }),
        }
    };
    Ok((get("offset", 0)?, get("page_size", default_size)?))
}

/// Build the router.
pub fn router(sim: AppState) -> Router {
    Router::new()
        .route("/state", get(api::state))
        .route("/system/task", put(api::task))
        .route("/system/{cmd}", get(api::system))
        .route(
            "/collections",
            get(api::list_collections).post(api::create_collection),
        )
        .route(
            "/collections/{name}",
            get(api::get_collection).delete(api::drop_collection),
        )
        .route(
            "/collections/{name}/partitions",
            get(api::list_partitions)
                .post(api::create_partition)
                .delete(api::drop_partition),
        )
        .route(
            "/collections/{name}/vectors",
            put(api::vectors_put)
                .post(api::insert)
                .get(api::vectors_get),
        )
        .route(
            "/collections/{name}/indexes",
            get(api::get_index)
                .post(api::create_index)
                .delete(api::drop_index),
        )
        .route("/collections/{name}/segments", get(api::segments))
        .route(
            "/collections/{name}/segments/{seg}/ids",
            get(api::segment_ids),
        )
        .route("/admin/faults", get(api::get_faults).put(api::set_faults))
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(sim.clone(), faults))
        .layer(middleware::from_fn(run_to_completion))
        // Milvus's web server reads a body of any size; inserts over 256 MB are refused by
        // `ValidateVectorDataSize`, not by the server.
        .layer(DefaultBodyLimit::disable())
        .with_state(sim)
}

/// Run each request on its own task and wait for it: a client that disconnects mid-request
/// (a timeout) cancels only the wait, never the handler, so no metadata transaction is left
/// half-done, as Milvus's request threads also run to the end. After a large body the
/// memory it took is handed back ([`crate::memory`]).
async fn run_to_completion(req: Request<Body>, next: Next) -> Response {
    let large = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n >= crate::memory::TRIM_AFTER_BODY_BYTES);
    let done = tokio::spawn(next.run(req)).await;
    if large {
        crate::memory::trim();
    }
    match done {
        Ok(r) => r,
        Err(e) => json_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"code": code::UNEXPECTED, "message": format!("request handler failed: {e}")}),
        ),
    }
}

/// Apply `slow` and `http-500` to every request but `/admin/*`.
async fn faults(State(sim): State<AppState>, req: Request<Body>, next: Next) -> Response {
    if req.uri().path().starts_with("/admin/") {
        return next.run(req).await;
    }
    let f = sim.faults.get();
    if f.slow_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.slow_ms)).await;
    }
    if sim.faults.roll_500() {
        return json_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"code": code::UNEXPECTED, "message": "injected fault: internal server error"}),
        );
    }
    next.run(req).await
}
