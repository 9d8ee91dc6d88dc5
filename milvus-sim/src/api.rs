//! Handlers of the web API, one per path and method. Bodies are read as raw bytes (pymilvus
//! sends some without a content type) and parsed with the helpers of [`crate::http`].

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::catalog;
use crate::error::{SimError, code};
use crate::faults::FaultSettings;
use crate::http::{
    AppState, Reply, as_ids, as_int, as_rows, as_str, as_strings, field, json_reply, no_content,
    ok, paging, parse_body,
};
use crate::query::describe_json;
use crate::sim::{DEFAULT_TAG, VERSION};

type Q = Query<HashMap<String, String>>;

/// `GET /state`.
pub async fn state() -> Reply {
    Ok(json_reply(
        StatusCode::OK,
        json!({"code": 0, "message": "Success"}),
    ))
}

/// `GET /system/{cmd}` (`WebRequestHandler::SystemInfo` → `CmdRequest::OnExecute`): a
/// command it does not know is answered "Unknown command" with code 0, as Milvus does.
/// `config` (`GetConfig`) is not simulated.
pub async fn system(Path(cmd): Path<String>) -> Reply {
    let reply = match cmd.as_str() {
        "version" => VERSION.to_string(),
        "status" => "OK".to_string(),
        // The CPU build (image tag 1.1.1-cpu-…); GPU resources are not simulated.
        "mode" => "CPU".to_string(),
        "info" | "get_system_info" => {
            let used = crate::memory::rss_kib().unwrap_or(0) * 1024;
            let total = crate::memory::total_kib().unwrap_or(0) * 1024;
            json!({"memory_total": total.to_string(), "memory_used": used.to_string()}).to_string()
        }
        "config" => {
            return Err(SimError::api(
                code::UNEXPECTED,
                "config commands are not simulated (see docs/milvus-sim.md)",
            ));
        }
        _ => "Unknown command".to_string(),
    };
    Ok(json_reply(
        StatusCode::OK,
        json!({"code": 0, "message": "OK", "reply": reply}),
    ))
}

/// `PUT /system/task`: `flush`, `compact`, `load`, `release`.
pub async fn task(State(sim): State<AppState>, body: Bytes) -> Reply {
    let v = parse_body(&body)?;
    if let Some(f) = v.get("flush") {
        let names = match f.get("collection_names") {
            None | Some(Value::Null) => Vec::new(),
            Some(n) => as_strings(n, "collection_names")?,
        };
        for n in &names {
            catalog::live_collection(&sim.db, n).await?;
        }
        if sim.cfg.role == crate::sim::Role::Rw {
            let flushed = sim.flush(&names).await?;
            // Each flush that wrote data starts a (LAYERED) merge task of those tables.
            if !flushed.is_empty() {
                let sim = sim.clone();
                tokio::spawn(async move {
                    if let Err(e) =
                        crate::merge::merge_tables(&sim, &flushed, crate::merge::Strategy::Layered)
                            .await
                    {
                        tracing::warn!(error = %e, "merge after flush failed");
                    }
                });
            }
        }
        return Ok(ok(StatusCode::OK));
    }
    for key in ["compact", "load", "release"] {
        if let Some(t) = v.get(key) {
            let name = as_str(field(t, "collection_name")?, "collection_name")?;
            catalog::live_collection(&sim.db, name).await?;
            if let Some(tags) = t.get("partition_tags").filter(|x| !x.is_null()) {
                for tag in as_strings(tags, "partition_tags")? {
                    sim.table_for_tag(name, Some(&tag)).await?;
                }
            }
            // Compact waits for the index thread's batch and for flush/merge
            // (`DBImpl::Compact` takes `build_index_mutex_`, then
            // `flush_merge_compact_mutex_`), then rewrites segments with deleted rows; load
            // and release only concern Milvus's data cache.
            if key == "compact" {
                let root = catalog::live_collection(&sim.db, name).await?;
                let _build = sim.locks.build.lock().await;
                let _merge = sim.locks.merge.lock().await;
                crate::compact::compact(&sim, &root, crate::compact::WEB_THRESHOLD).await?;
            }
            tracing::info!(collection = name, task = key, "task");
            return Ok(ok(StatusCode::OK));
        }
    }
    Err(SimError::api(
        code::ILLEGAL_BODY,
        "Unknown task: expected one of flush, compact, load, release",
    ))
}

/// `POST /collections`.
pub async fn create_collection(State(sim): State<AppState>, body: Bytes) -> Reply {
    let v = parse_body(&body)?;
    let name = as_str(field(&v, "collection_name")?, "collection_name")?;
    let dim = as_int(field(&v, "dimension")?, "dimension")?;
    let ifs = match v.get("index_file_size").filter(|x| !x.is_null()) {
        Some(x) => as_int(x, "index_file_size")?,
        None => 1024,
    };
    let metric = match v.get("metric_type").filter(|x| !x.is_null()) {
        Some(x) => as_str(x, "metric_type")?,
        None => "L2",
    };
    sim.create_collection(name, dim, ifs, metric).await?;
    Ok(ok(StatusCode::CREATED))
}

/// `GET /collections?offset&page_size`.
pub async fn list_collections(State(sim): State<AppState>, Query(q): Q) -> Reply {
    let (offset, size) = paging(&q, 10)?;
    let all = catalog::live_collections(&sim.db).await?;
    let mut page = Vec::new();
    for t in all.iter().skip(offset).take(size) {
        page.push(describe_json(t, sim.count(&t.table_id).await?));
    }
    Ok(json_reply(
        StatusCode::OK,
        json!({"collections": page, "count": all.len()}),
    ))
}

/// `GET /collections/{name}` and `?info=stat`.
pub async fn get_collection(
    State(sim): State<AppState>,
    Path(name): Path<String>,
    Query(q): Q,
) -> Reply {
    let body = match q.get("info").map(String::as_str) {
        Some("stat") => sim.stat(&name).await?,
        None => sim.describe(&name).await?,
        Some(other) => {
            return Err(SimError::api(
                code::ILLEGAL_QUERY_PARAM,
                format!("Query param 'info' must be 'stat', not '{other}'"),
            ));
        }
    };
    Ok(json_reply(StatusCode::OK, body))
}

/// `DELETE /collections/{name}`.
pub async fn drop_collection(State(sim): State<AppState>, Path(name): Path<String>) -> Reply {
    sim.drop_collection(&name).await?;
    Ok(no_content())
}

/// `POST /collections/{name}/partitions`.
pub async fn create_partition(
    State(sim): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    let v = parse_body(&body)?;
    let tag = as_str(field(&v, "partition_tag")?, "partition_tag")?;
    sim.create_partition(&name, tag).await?;
    Ok(ok(StatusCode::CREATED))
}

/// `GET /collections/{name}/partitions?offset&page_size`.
pub async fn list_partitions(
    State(sim): State<AppState>,
    Path(name): Path<String>,
    Query(q): Q,
) -> Reply {
    let (offset, size) = paging(&q, 10)?;
    catalog::live_collection(&sim.db, &name).await?;
    let mut tags = vec![DEFAULT_TAG.to_string()];
    tags.extend(
        catalog::live_partitions(&sim.db, &name)
            .await?
            .into_iter()
            .map(|p| p.partition_tag),
    );
    let page: Vec<Value> = tags
        .iter()
        .skip(offset)
        .take(size)
        .map(|t| json!({"partition_tag": t}))
        .collect();
    Ok(json_reply(
        StatusCode::OK,
        json!({"partitions": page, "count": tags.len()}),
    ))
}

/// `DELETE /collections/{name}/partitions` with `{"partition_tag"}`.
pub async fn drop_partition(
    State(sim): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    let v = parse_body(&body)?;
    let tag = as_str(field(&v, "partition_tag")?, "partition_tag")?;
    sim.drop_partition(&name, tag).await?;
    Ok(no_content())
}

/// `POST /collections/{name}/vectors`: insert.
pub async fn insert(State(sim): State<AppState>, Path(name): Path<String>, body: Bytes) -> Reply {
    if body.is_empty() {
        return Err(SimError::api(
            code::BODY_FIELD_LOSS,
            "Request payload is required.",
        ));
    }
    let v = parse_body(&body)?;
    let rows = as_rows(field(&v, "vectors")?, "vectors")?;
    let ids = match v.get("ids").filter(|x| !x.is_null()) {
        Some(x) => Some(as_ids(x, "ids")?),
        None => None,
    };
    let tag = match v.get("partition_tag").filter(|x| !x.is_null()) {
        Some(x) => Some(as_str(x, "partition_tag")?),
        None => None,
    };
    let ids = sim.insert(&name, tag, ids, &rows).await?;
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    Ok(json_reply(StatusCode::CREATED, json!({"ids": ids})))
}

/// `PUT /collections/{name}/vectors`: `delete` or `search` (`WebRequestHandler::VectorsOp`).
pub async fn vectors_put(
    State(sim): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    let v = parse_body(&body)?;
    if let Some(d) = v.get("delete") {
        let ids = d.get("ids").ok_or_else(|| {
            SimError::api(
                code::BODY_FIELD_LOSS,
                "Field \"delete\" must contains \"ids\"",
            )
        })?;
        let ids = ids
            .as_array()
            .ok_or_else(|| SimError::api(code::BODY_FIELD_LOSS, "\"ids\" must be an array"))?
            .iter()
            .map(|x| {
                x.as_str()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(|| {
                        SimError::api(
                            code::ILLEGAL_BODY,
                            "Members in \"ids\" must be integer string",
                        )
                    })
            })
            .collect::<Result<Vec<i64>, SimError>>()?;
        let tag = match d.get("partition_tag").filter(|x| !x.is_null()) {
            Some(t) => Some(as_str(t, "partition_tag")?),
            None => None,
        };
        sim.delete_by_id(&name, tag, &ids).await?;
        return Ok(ok(StatusCode::OK));
    }
    if let Some(s) = v.get("search") {
        let topk = as_int(field(s, "topk")?, "topk")?;
        let params = s
            .get("params")
            .ok_or_else(|| SimError::api(code::BODY_FIELD_LOSS, "Field 'params' is required"))?;
        let tags = match s.get("partition_tags").filter(|x| !x.is_null()) {
            Some(t) => as_strings(t, "partition_tags")?,
            None => Vec::new(),
        };
        if s.get("ids").is_some() {
            return Err(SimError::api(
                code::UNEXPECTED,
                "search by ids is not supported by milvus-sim",
            ));
        }
        let file_ids = match s.get("file_ids").filter(|x| !x.is_null()) {
            Some(f) => as_strings(f, "file_ids")?,
            None => Vec::new(),
        };
        catalog::live_collection(&sim.db, &name).await?;
        let rows = as_rows(field(s, "vectors")?, "vectors")?;
        let Some(hits) = sim
            .search(&name, &tags, &file_ids, topk, params, &rows)
            .await?
        else {
            return Ok(json_reply(StatusCode::OK, json!({"num": 0, "result": []})));
        };
        let result: Vec<Value> = hits
            .iter()
            .map(|row| {
                Value::Array(
                    row.iter()
                        .map(|h| json!({"id": h.id.to_string(), "distance": h.distance}))
                        .collect(),
                )
            })
            .collect();
        return Ok(json_reply(
            StatusCode::OK,
            json!({"num": hits.len(), "result": result}),
        ));
    }
    Err(SimError::api(code::ILLEGAL_BODY, "Unknown body"))
}

/// `GET /collections/{name}/vectors?ids=1,2[&partition_tag=t]`: vectors by id.
pub async fn vectors_get(
    State(sim): State<AppState>,
    Path(name): Path<String>,
    Query(q): Q,
) -> Reply {
    let raw = q
        .get("ids")
        .ok_or_else(|| SimError::api(code::ILLEGAL_QUERY_PARAM, "Query param 'ids' is required"))?;
    let ids: Vec<i64> = raw
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            SimError::api(
                code::ILLEGAL_QUERY_PARAM,
                "Query param 'ids' must be integers",
            )
        })?;
    let tag = q.get("partition_tag").map(String::as_str);
    let vectors = sim.vectors_by_id(&name, tag, &ids).await?;
    let body: Vec<Value> = ids
        .iter()
        .zip(vectors)
        .map(|(id, v)| json!({"id": id.to_string(), "vector": v}))
        .collect();
    Ok(json_reply(
        StatusCode::OK,
        json!({"code": 0, "message": "OK", "vectors": body}),
    ))
}

/// `POST /collections/{name}/indexes`.
pub async fn create_index(
    State(sim): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    let v = parse_body(&body)?;
    let index_type = as_str(field(&v, "index_type")?, "index_type")?;
    let params = v
        .get("params")
        .cloned()
        .ok_or_else(|| SimError::api(code::BODY_FIELD_LOSS, "Field 'params' is required"))?;
    // The build runs in its own task: a client that goes away does not stop it (Milvus
    // goes on building in the background), and the reply waits for the whole build.
    let (task_sim, index_type) = (sim.clone(), index_type.to_string());
    tokio::spawn(async move { task_sim.create_index(&name, &index_type, &params).await })
        .await
        .map_err(|e| SimError::api(code::UNEXPECTED, format!("create index task failed: {e}")))??;
    Ok(ok(StatusCode::CREATED))
}

/// `GET /collections/{name}/indexes`.
pub async fn get_index(State(sim): State<AppState>, Path(name): Path<String>) -> Reply {
    let root = catalog::live_collection(&sim.db, &name).await?;
    let params: Value = serde_json::from_str(&root.index_params).unwrap_or_else(|_| json!({}));
    Ok(json_reply(
        StatusCode::OK,
        json!({"index_type": crate::index::web_name(root.engine_type), "params": params}),
    ))
}

/// `DELETE /collections/{name}/indexes`.
pub async fn drop_index(State(sim): State<AppState>, Path(name): Path<String>) -> Reply {
    sim.drop_index(&name).await?;
    Ok(no_content())
}

/// `GET /collections/{name}/segments?offset&page_size`.
pub async fn segments(State(sim): State<AppState>, Path(name): Path<String>, Query(q): Q) -> Reply {
    let (offset, size) = paging(&q, 10)?;
    let all = sim.segments(&name).await?;
    let page: Vec<Value> = all.iter().skip(offset).take(size).cloned().collect();
    Ok(json_reply(
        StatusCode::OK,
        json!({"count": all.len(), "segments": page}),
    ))
}

/// `GET /collections/{name}/segments/{seg}/ids?offset&page_size`.
pub async fn segment_ids(
    State(sim): State<AppState>,
    Path((name, seg)): Path<(String, String)>,
    Query(q): Q,
) -> Reply {
    let (offset, size) = paging(&q, 10)?;
    let all = sim.segment_ids(&name, &seg).await?;
    let page: Vec<String> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(i64::to_string)
        .collect();
    Ok(json_reply(
        StatusCode::OK,
        json!({"count": all.len(), "ids": page}),
    ))
}

/// `GET /admin/faults`.
pub async fn get_faults(State(sim): State<AppState>) -> Reply {
    Ok(json_reply(StatusCode::OK, json!(sim.faults.get())))
}

/// `PUT /admin/faults` with `{"fault","http_500_share","slow_ms"}`.
pub async fn set_faults(State(sim): State<AppState>, body: Bytes) -> Reply {
    let v = parse_body(&body)?;
    let f: FaultSettings = serde_json::from_value(v)
        .map_err(|e| SimError::api(code::ILLEGAL_BODY, format!("Invalid faults: {e}")))?;
    if !(0.0..=1.0).contains(&f.http_500_share) {
        return Err(SimError::api(
            code::ILLEGAL_BODY,
            "http_500_share must be in 0..1",
        ));
    }
    sim.faults.set(f);
    tracing::info!(faults = ?f, "faults set");
    Ok(json_reply(StatusCode::OK, json!(f)))
}

/// Unknown path.
pub async fn not_found() -> Reply {
    Ok(json_reply(
        StatusCode::NOT_FOUND,
        json!({"code": code::UNEXPECTED, "message": "Requested path is not found"}),
    ))
}
