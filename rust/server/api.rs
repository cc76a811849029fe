//! Studio's JSON API under `/api/`: one handler per route, each a thin
//! translation between HTTP and a [`Backend`] call (a FerrumDB file or a
//! PostgreSQL table). Engine work runs on
//! tokio's blocking pool so a long query or index build never stalls the
//! other requests. Routes and answers are documented in README ("Ferrum
//! Studio", "The JSON API").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::backend::{Backend, Put, SharedBackend, TtlChange};
use crate::documents::QueryOptions;

use super::error::ApiError;
use super::metrics::Metrics;

/// Keys per page when `limit` is not given, and the most one page may ask for.
pub(super) const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// The tree view lists more per level than the key list shows per page.
const DEFAULT_TREE_PAGE: usize = 200;

/// The `limit` query parameter of a paged endpoint: `default` when absent,
/// else an integer from 1 to [`MAX_PAGE`].
pub(super) fn page_limit(
    params: &HashMap<String, String>,
    default: usize,
) -> Result<usize, ApiError> {
    match params.get("limit").map(String::as_str) {
        None | Some("") => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit must be an integer from 1 to {MAX_PAGE}, not {raw:?}"
                ))
            }),
    }
}
/// Query results returned when `limit` is not given, and the most allowed.
const DEFAULT_RESULTS: usize = 100;
const MAX_RESULTS: usize = 10_000;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub docs: SharedBackend,
    pub metrics: Arc<Metrics>,
    /// Compact, backup and export jobs.
    pub ops: Arc<super::ops::Ops>,
    /// Studio's own read-only mode (shown by the UI; enforced by the guard).
    pub read_only: bool,
}

type ApiResult = Result<Response, ApiError>;

/// The API router.
pub(crate) fn routes(state: AppState) -> Router {
    Router::new()
        .route("/api/stats", get(stats))
        .route("/api/overview", get(overview))
        .route("/api/metrics", get(metrics))
        .route("/api/keys", get(keys))
        .route("/api/entries", get(super::browse::entries))
        .route("/api/tree", get(tree))
        .route(
            "/api/docs/",
            get(missing_key).put(missing_key).delete(missing_key),
        )
        .route(
            "/api/docs/{*key}",
            get(get_doc).put(put_doc).delete(delete_doc),
        )
        .route("/api/query", post(query))
        .route("/api/explain", post(explain))
        .route("/api/find", post(find))
        .route("/api/indexes", get(list_indexes).post(create_index))
        .route("/api/indexes/{*field}", delete(drop_index))
        .merge(super::ops::routes())
        .fallback(no_route)
        .with_state(state)
}

/// Run engine work on the blocking pool; a panic there becomes a 500.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error while handling the request: {e}"),
        )
    })?
}

fn ok(value: Value) -> ApiResult {
    Ok(Json(value).into_response())
}

/// The body as a JSON value, or 400 naming the problem.
fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty: send JSON",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// The body as a JSON object.
fn parse_object(body: &Bytes, example: &str) -> Result<Map<String, Value>, ApiError> {
    match parse_body(body)? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(format!(
            "the request body must be a JSON object such as {example}"
        ))),
    }
}

/// An optional non-negative integer field of a JSON body, capped.
fn count_field(
    map: &Map<String, Value>,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name} must be an integer from 0 to {max}, not {v}"
                ))
            }),
    }
}

/// `{"error"}` 404 for an unknown route under `/api/` or elsewhere.
async fn no_route() -> ApiError {
    ApiError::not_found("no such page or API route (see docs/studio.md, \"The JSON API\")")
}

async fn missing_key() -> ApiError {
    ApiError::bad_request("the key is missing: /api/docs/{key}")
}

/// `engine::Stats` as JSON: the same fields as `db.stats()` and the CLI's `STATS`.
fn stats_json(docs: &dyn Backend) -> Result<Value, ApiError> {
    Ok(docs.stats()?)
}

/// `GET /api/stats`: the same dict as `db.stats()`.
async fn stats(State(st): State<AppState>) -> ApiResult {
    ok(blocking(move || stats_json(st.docs.as_ref())).await?)
}

fn index_list(docs: &dyn Backend) -> Result<Value, ApiError> {
    Ok(Value::Array(
        docs.indexes()?
            .into_iter()
            .map(|index| json!({ "field": index.field, "entries": index.entries }))
            .collect(),
    ))
}

/// `GET /api/overview`: what the overview page shows.
async fn overview(State(st): State<AppState>) -> ApiResult {
    let read_only = st.read_only;
    let value = blocking(move || {
        let docs = st.docs.as_ref();
        // Every stats field, plus what only the overview page shows.
        let mut value = docs.stats()?;
        let details = docs.details()?;
        if let Value::Object(obj) = &mut value {
            let bytes = |name: &str| obj.get(name).and_then(Value::as_u64).unwrap_or(0);
            let garbage = bytes("file_bytes").saturating_sub(bytes("live_bytes"));
            obj.extend(details);
            let extra = json!({
                "version": env!("CARGO_PKG_VERSION"),
                "studio_read_only": read_only,
                "garbage_bytes": garbage,
                "indexes": index_list(docs)?,
            });
            if let Value::Object(extra) = extra {
                obj.extend(extra);
            }
        }
        Ok(value)
    })
    .await?;
    ok(value)
}

/// `GET /api/metrics`: the ops/sec history and counters, oldest first.
async fn metrics(State(st): State<AppState>) -> ApiResult {
    let value = blocking(move || {
        st.metrics.sample_if_due(st.docs.as_ref())?;
        let mut value = st.metrics.to_json();
        value["stats"] = stats_json(st.docs.as_ref())?;
        Ok(value)
    })
    .await?;
    ok(value)
}

/// A paging cursor: the hex of the last key of the previous page.
pub(super) fn encode_cursor(key: &str) -> String {
    hex::encode(key.as_bytes())
}

pub(super) fn decode_cursor(cursor: &str, prefix: &str) -> Result<String, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "bad paging cursor {cursor:?}: {why}; pass the \"next\" value of the previous page"
        ))
    };
    let bytes = hex::decode(cursor).map_err(|_| bad("not a cursor Studio made"))?;
    let key = String::from_utf8(bytes).map_err(|_| bad("not a cursor Studio made"))?;
    if key.is_empty() {
        return Err(bad("empty"));
    }
    if !key.starts_with(prefix) {
        return Err(bad("it belongs to another prefix"));
    }
    Ok(key)
}

/// `GET /api/keys?prefix=&after=&limit=`: one page of keys in key order.
async fn keys(
    State(st): State<AppState>,
    Query(mut params): Query<HashMap<String, String>>,
) -> ApiResult {
    let prefix = params.remove("prefix").unwrap_or_default();
    let limit = page_limit(&params, DEFAULT_PAGE)?;
    let after = match params.get("after").map(String::as_str) {
        None | Some("") => None,
        Some(c) => Some(decode_cursor(c, &prefix)?),
    };
    let value = blocking(move || {
        let mut keys = st.docs.keys_page(&prefix, after.as_deref(), limit + 1)?;
        let more = keys.len() > limit;
        keys.truncate(limit);
        let next = match keys.last() {
            Some(last) if more => Value::String(encode_cursor(last)),
            _ => Value::Null,
        };
        Ok(json!({ "keys": keys, "next": next }))
    })
    .await?;
    ok(value)
}

/// Keys counted per group before its count is reported as a lower bound.
const TREE_COUNT_CAP: usize = 10_000;
/// Keys read per tree request, in all, before it stops with `more: true`.
const TREE_SCAN_BUDGET: usize = 200_000;
/// The largest character: `group + MAX_CHAR` sorts after the group's keys
/// (all but pathological ones, which the walk then steps over one by one).
const MAX_CHAR: char = char::MAX;

/// One level of the key tree under `prefix`: the groups (next segment up to
/// and including `:`) with their key counts, and the keys that end there.
fn tree_level(docs: &dyn Backend, prefix: &str, limit: usize) -> Result<Value, ApiError> {
    let db = docs;
    let mut groups: Vec<Value> = Vec::new();
    let mut leaves: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let mut scanned = 0usize;
    let mut more = false;
    'walk: loop {
        let page = db.keys_page(prefix, after.as_deref(), 256)?;
        if page.is_empty() {
            break;
        }
        for key in page {
            if groups.len() + leaves.len() >= limit || scanned >= TREE_SCAN_BUDGET {
                more = true;
                break 'walk;
            }
            scanned += 1;
            let rest = &key[prefix.len()..];
            let Some(colon) = rest.find(':') else {
                after = Some(key.clone());
                leaves.push(key);
                continue;
            };
            let group = format!("{prefix}{}", &rest[..=colon]);
            if groups.last().and_then(|g| g["prefix"].as_str()) == Some(group.as_str()) {
                // A key past `group + MAX_CHAR`: already counted, step over it.
                after = Some(key);
                continue;
            }
            // Count the group's keys (up to the cap), then jump past it.
            let mut count = 0usize;
            let mut cursor: Option<String> = None;
            while count < TREE_COUNT_CAP {
                let keys = db.keys_page(&group, cursor.as_deref(), 1024)?;
                let Some(last) = keys.last() else { break };
                count += keys.len();
                cursor = Some(last.clone());
                if keys.len() < 1024 {
                    break;
                }
            }
            scanned += count;
            let capped = count >= TREE_COUNT_CAP;
            groups.push(json!({
                "prefix": group,
                "name": &rest[..colon],
                "count": count.min(TREE_COUNT_CAP),
                "capped": capped,
            }));
            after = Some(if capped {
                format!("{group}{MAX_CHAR}")
            } else {
                cursor.unwrap_or(key)
            });
            continue 'walk;
        }
    }
    Ok(json!({ "prefix": prefix, "groups": groups, "keys": leaves, "more": more }))
}

/// `GET /api/tree?prefix=&limit=`: the key tree one level at a time.
async fn tree(
    State(st): State<AppState>,
    Query(mut params): Query<HashMap<String, String>>,
) -> ApiResult {
    let prefix = params.remove("prefix").unwrap_or_default();
    let limit = page_limit(&params, DEFAULT_TREE_PAGE)?;
    ok(blocking(move || tree_level(st.docs.as_ref(), &prefix, limit)).await?)
}

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(format!("no document under key {key:?}"))
}

/// `GET /api/docs/{key}`: `{"key", "value", "ttl"}` (ttl in seconds or null).
async fn get_doc(State(st): State<AppState>, Path(key): Path<String>) -> ApiResult {
    let value = blocking(move || {
        let db = st.docs.as_ref();
        let raw = db.get(&key)?.ok_or_else(|| not_found(&key))?;
        let value: Value = serde_json::from_slice(raw.as_bytes()).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the stored value under {key:?} is not JSON: {e}"),
            )
        })?;
        let ttl = db.ttl(&key)?.flatten();
        Ok(json!({ "key": key, "value": value, "ttl": ttl }))
    })
    .await?;
    ok(value)
}

/// The `ttl` query parameter of a PUT: absent keeps the key's TTL, `none`
/// (or empty) clears it, a positive number of seconds sets it.
fn ttl_change(params: &HashMap<String, String>) -> Result<TtlChange, ApiError> {
    let Some(raw) = params.get("ttl") else {
        return Ok(TtlChange::Keep);
    };
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("none") || raw == "null" {
        return Ok(TtlChange::Clear);
    }
    raw.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.001)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(TtlChange::Set)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "ttl must be a number of seconds of at least 0.001, or \"none\" to never \
                 expire, not {raw:?}"
            ))
        })
}

/// `PUT /api/docs/{key}?ttl=` (body: the JSON value): store, keeping the
/// key's TTL unless `ttl` is given (see [`ttl_change`]). With
/// `If-None-Match: *` only when the key is new (else 412), for "insert".
/// Answers `{"key", "created", "ttl"}`.
async fn put_doc(
    State(st): State<AppState>,
    Path(key): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let value = parse_body(&body)?;
    let change = ttl_change(&params)?;
    let create_only = headers
        .get(axum::http::header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == b"*");
    let answer = blocking(move || {
        let bytes = serde_json::to_vec(&value)
            .map_err(|e| ApiError::bad_request(format!("the value cannot be stored: {e}")))?;
        match st.docs.put(&key, &bytes, change, create_only)? {
            Put::Exists => Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                format!("a document already exists under key {key:?}"),
            )),
            Put::Stored { created, ttl } => {
                Ok(json!({ "key": key, "created": created, "ttl": ttl }))
            }
        }
    })
    .await?;
    ok(answer)
}

/// `DELETE /api/docs/{key}`: remove; 404 if there was nothing to remove.
async fn delete_doc(State(st): State<AppState>, Path(key): Path<String>) -> ApiResult {
    let answer = blocking(move || {
        if st.docs.delete(&key)? {
            Ok(json!({ "key": key, "deleted": true }))
        } else {
            Err(not_found(&key))
        }
    })
    .await?;
    ok(answer)
}

/// The `filter` field of a query body (`{}` when absent).
fn filter_field(map: &Map<String, Value>) -> Result<Value, ApiError> {
    match map.get("filter") {
        None | Some(Value::Null) => Ok(json!({})),
        Some(f @ Value::Object(_)) => Ok(f.clone()),
        Some(other) => Err(ApiError::bad_request(format!(
            "filter must be a JSON object such as {{\"role\": \"admin\"}}, not {other}"
        ))),
    }
}

/// `POST /api/query` (body: `{"filter", "sort", "limit", "skip", "fields",
/// "prefix"}`): `{"results": [[key, doc], ...], "total", "plan", "more",
/// "elapsed_ms"}`, where `total` counts every match (as `db.count`), not
/// only this page.
async fn query(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let map = parse_object(&body, r#"{"filter": {"role": "admin"}, "limit": 20}"#)?;
    let filter = filter_field(&map)?;
    let limit = count_field(&map, "limit", DEFAULT_RESULTS, MAX_RESULTS)?;
    let prefix = match map.get("prefix") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(p)) => p.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "prefix must be a string such as \"user:\", not {other}"
            )))
        }
    };
    let options = QueryOptions {
        sort: map.get("sort").filter(|s| !s.is_null()).cloned(),
        limit: Some(limit + 1),
        skip: count_field(&map, "skip", 0, usize::MAX)?,
        prefix,
        fields: map.get("fields").filter(|f| !f.is_null()).cloned(),
    };
    let answer = blocking(move || {
        let started = Instant::now();
        let plan = st.docs.explain(&filter)?;
        let mut rows = st.docs.query(&filter, &options)?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let total = if options.skip == 0 && !more {
            rows.len()
        } else {
            st.docs.count(Some(&filter), &options.prefix)?
        };
        let results: Vec<Value> = rows.into_iter().map(|r| json!([r.key, r.doc])).collect();
        Ok(json!({
            "results": results,
            "total": total,
            "plan": plan,
            "more": more,
            "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
        }))
    })
    .await?;
    ok(answer)
}

/// `POST /api/explain` (body: `{"filter"}`): `{"plan"}`.
async fn explain(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let map = parse_object(&body, r#"{"filter": {"role": "admin"}}"#)?;
    let filter = filter_field(&map)?;
    let plan = blocking(move || Ok(st.docs.explain(&filter)?)).await?;
    ok(json!({ "plan": plan }))
}

/// `POST /api/find` (body: `{"field", "value"}`): `{"keys", "count", "more"}`
/// (at most 10,000 keys listed).
async fn find(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let map = parse_object(&body, r#"{"field": "role", "value": "admin"}"#)?;
    let field = match map.get("field") {
        Some(Value::String(f)) if !f.is_empty() => f.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "field must be a non-empty string such as \"address.city\"",
            ))
        }
    };
    let Some(value) = map.get("value").cloned() else {
        return Err(ApiError::bad_request(
            "value is missing: {\"field\": ..., \"value\": ...}",
        ));
    };
    let answer = blocking(move || {
        let started = Instant::now();
        let filter = json!({ field.clone(): value.clone() });
        let plan = st.docs.explain(&filter).ok();
        let mut keys = st.docs.find(&field, &value)?;
        let count = keys.len();
        keys.truncate(MAX_RESULTS);
        Ok(json!({
            "keys": keys,
            "count": count,
            "more": count > MAX_RESULTS,
            "plan": plan,
            "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
        }))
    })
    .await?;
    ok(answer)
}

/// `GET /api/indexes`: `{"indexes": [{"field", "entries"}]}`.
async fn list_indexes(State(st): State<AppState>) -> ApiResult {
    let list = blocking(move || index_list(st.docs.as_ref())).await?;
    ok(json!({ "indexes": list }))
}

/// `POST /api/indexes` (body: `{"field"}`): create; 201 when new, 200 when
/// it existed.
async fn create_index(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let map = parse_object(&body, r#"{"field": "address.city"}"#)?;
    let field = match map.get("field") {
        Some(Value::String(f)) if !f.is_empty() => f.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "field must be a non-empty string such as \"address.city\"",
            ))
        }
    };
    let created = blocking({
        let field = field.clone();
        move || Ok(st.docs.create_index(&field, false, &mut |_, _| {})?)
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "field": field, "created": created }))).into_response())
}

/// `DELETE /api/indexes/{field}`: drop; 404 if there was none.
async fn drop_index(State(st): State<AppState>, Path(field): Path<String>) -> ApiResult {
    let answer = blocking(move || {
        if st.docs.drop_index(&field)? {
            Ok(json!({ "field": field, "dropped": true }))
        } else {
            Err(ApiError::not_found(format!("no index on {field:?}")))
        }
    })
    .await?;
    ok(answer)
}
