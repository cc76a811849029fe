//! Studio's maintenance operations: compact, backup to a file on the server,
//! and export to JSON Lines for download. Each runs as a background job on
//! tokio's blocking pool and reports progress, so the page can show a bar
//! and the request that starts it returns at once. One job runs at a time
//! (a second start is 409): they all read the whole file, and two at once
//! would only slow each other down.
//!
//! Routes: `POST /api/ops/compact`, `POST /api/ops/backup` (body `{"path"}`,
//! absolute), `POST /api/ops/export` (body `{"prefix"}`, optional) start a
//! job and answer its status (202); `GET /api/ops` answers the running or
//! last job's status; `GET /api/ops/export/{id}` downloads a finished
//! export. An export is written to a private temporary directory and kept
//! until the next export or until Studio stops.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::api::AppState;
use super::error::ApiError;

/// Bytes per chunk of an export download.
const DOWNLOAD_CHUNK: usize = 256 * 1024;

/// What a job is doing, or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobState {
    Running,
    Done,
    Failed,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
}

/// One operation and its progress.
#[derive(Debug, Clone)]
struct Job {
    id: u64,
    kind: &'static str,
    state: JobState,
    /// Progress: `done` of `total` `unit`s (`total` 0 when unknown).
    done: u64,
    total: u64,
    unit: &'static str,
    started: Instant,
    elapsed_s: Option<f64>,
    /// What the finished job reports (`{"bytes", "path"}`, `{"records"}`, ...).
    result: Value,
    error: Option<String>,
    /// A finished export's file.
    file: Option<PathBuf>,
}

impl Job {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "kind": self.kind,
            "state": self.state.as_str(),
            "done": self.done,
            "total": self.total,
            "unit": self.unit,
            "elapsed_s": self.elapsed_s.unwrap_or_else(|| self.started.elapsed().as_secs_f64()),
            "result": self.result,
            "error": self.error,
            "download": (self.kind == "export" && self.state == JobState::Done)
                .then(|| format!("/api/ops/export/{}", self.id)),
        })
    }
}

/// The jobs of one Studio: the running or last one, and where exports go.
#[derive(Debug, Default)]
pub(crate) struct Ops {
    job: Mutex<Option<Job>>,
    next_id: Mutex<u64>,
    /// Created at the first export, removed with Studio.
    export_dir: Mutex<Option<tempfile::TempDir>>,
}

impl Ops {
    /// Register a new job, or 409 while one runs.
    fn begin(&self, kind: &'static str, unit: &'static str) -> Result<u64, ApiError> {
        let mut job = self.job.lock();
        if let Some(j) = job.as_ref().filter(|j| j.state == JobState::Running) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "a {} is already running (job {}); wait for it to finish",
                    j.kind, j.id
                ),
            ));
        }
        let id = {
            let mut next = self.next_id.lock();
            *next += 1;
            *next
        };
        *job = Some(Job {
            id,
            kind,
            state: JobState::Running,
            done: 0,
            total: 0,
            unit,
            started: Instant::now(),
            elapsed_s: None,
            result: Value::Null,
            error: None,
            file: None,
        });
        Ok(id)
    }

    fn progress(&self, id: u64, done: u64, total: u64) {
        if let Some(j) = self.job.lock().as_mut().filter(|j| j.id == id) {
            j.done = done;
            j.total = total;
        }
    }

    fn finish(&self, id: u64, outcome: Result<(Value, Option<PathBuf>), String>) {
        if let Some(j) = self.job.lock().as_mut().filter(|j| j.id == id) {
            j.elapsed_s = Some(j.started.elapsed().as_secs_f64());
            match outcome {
                Ok((result, file)) => {
                    j.state = JobState::Done;
                    j.result = result;
                    j.file = file;
                    if j.total == 0 || j.done < j.total {
                        j.done = j.total.max(j.done);
                    }
                }
                Err(e) => {
                    j.state = JobState::Failed;
                    j.error = Some(e);
                }
            }
        }
    }

    fn status(&self) -> Value {
        self.job.lock().as_ref().map_or(Value::Null, Job::to_json)
    }

    /// A fresh path for export `id` in the private directory (the previous
    /// export's file is removed first: one is kept at a time).
    fn export_path(&self, id: u64) -> Result<PathBuf, ApiError> {
        let mut dir = self.export_dir.lock();
        if dir.is_none() {
            let made = tempfile::Builder::new()
                .prefix("ferrum-studio-export-")
                .tempdir()
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot create a temporary directory for the export: {e}"),
                    )
                })?;
            *dir = Some(made);
        }
        let dir = dir.as_ref().map(tempfile::TempDir::path).ok_or_else(|| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no export directory")
        })?;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                // Best effort: a leftover file only costs disk until Studio stops.
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(dir.join(format!("export-{id}.jsonl")))
    }
}

/// The operations' routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/ops", get(status))
        .route("/api/ops/compact", post(compact))
        .route("/api/ops/backup", post(backup))
        .route("/api/ops/export", post(export))
        .route("/api/ops/export/{id}", get(download))
}

/// `GET /api/ops`: `{"job": status or null}`.
async fn status(State(st): State<AppState>) -> Response {
    Json(json!({ "job": st.ops.status() })).into_response()
}

fn started(st: &AppState) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({ "job": st.ops.status() })),
    )
        .into_response()
}

/// Run `work` on the blocking pool as job `id`, recording its outcome.
fn spawn_job(
    st: &AppState,
    id: u64,
    work: impl FnOnce(&dyn Fn(u64, u64)) -> crate::Result<(Value, Option<PathBuf>)> + Send + 'static,
) {
    let ops = st.ops.clone();
    tokio::task::spawn_blocking(move || {
        let report = |done: u64, total: u64| ops.progress(id, done, total);
        let outcome = work(&report).map_err(|e| e.to_string());
        ops.finish(id, outcome);
    });
}

/// An optional JSON object body (empty means `{}`).
fn optional_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// `POST /api/ops/compact`: rewrite the file with only live records.
async fn compact(State(st): State<AppState>) -> Result<Response, ApiError> {
    let id = st.ops.begin("compact", "records")?;
    let docs = st.docs.clone();
    spawn_job(&st, id, move |report| {
        let (before, after) = docs.compact(&mut |done, total| report(done, total))?;
        Ok((
            json!({ "file_bytes_before": before, "file_bytes_after": after }),
            None,
        ))
    });
    Ok(started(&st))
}

/// `POST /api/ops/backup` (body `{"path": "/abs/file.db"}`): a consistent
/// copy to a file on the server.
async fn backup(State(st): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let map = optional_object(&body)?;
    let path = match map.get("path") {
        Some(Value::String(p)) if Path::new(p).is_absolute() => PathBuf::from(p),
        Some(Value::String(p)) if !p.is_empty() => {
            return Err(ApiError::bad_request(format!(
                "the backup path must be absolute (it is a file on the server), not {p:?}"
            )))
        }
        _ => {
            return Err(ApiError::bad_request(
                "path is missing: {\"path\": \"/absolute/path/backup.db\"}",
            ))
        }
    };
    let id = st.ops.begin("backup", "bytes")?;
    let docs = st.docs.clone();
    spawn_job(&st, id, move |report| {
        let bytes = docs.backup(&path, &mut |done, total| report(done, total))?;
        Ok((
            json!({ "bytes": bytes, "path": path.display().to_string() }),
            None,
        ))
    });
    Ok(started(&st))
}

/// `POST /api/ops/export` (body `{"prefix"}`, optional): JSON Lines of every
/// key (or those under `prefix`) into a temporary file, then downloadable.
async fn export(State(st): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let map = optional_object(&body)?;
    let prefix = match map.get("prefix") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(p)) => p.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "prefix must be a string, not {other}"
            )))
        }
    };
    let id = st.ops.begin("export", "records")?;
    let path = match st.ops.export_path(id) {
        Ok(p) => p,
        Err(e) => {
            st.ops.finish(id, Err(e.message.clone()));
            return Err(e);
        }
    };
    let docs = st.docs.clone();
    spawn_job(&st, id, move |report| {
        let records = docs.export_jsonl(&path, &prefix, &mut |done, total| report(done, total))?;
        Ok((json!({ "records": records }), Some(path)))
    });
    Ok(started(&st))
}

/// The chunks of a file, read on the blocking pool.
struct FileChunks(tokio::sync::mpsc::Receiver<io::Result<Bytes>>);

impl futures_core::Stream for FileChunks {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Read `file` in chunks into a channel (the download's body).
fn stream_file(mut file: File) -> FileChunks {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || loop {
        let mut chunk = vec![0u8; DOWNLOAD_CHUNK];
        match file.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                    return; // The client went away.
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    });
    FileChunks(rx)
}

/// `GET /api/ops/export/{id}`: the finished export as a JSON Lines download.
async fn download(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let gone = || {
        ApiError::not_found(format!(
            "no finished export {id:?}: Studio keeps only the last one; export again"
        ))
    };
    let wanted: u64 = id.parse().map_err(|_| gone())?;
    let path = st
        .ops
        .job
        .lock()
        .as_ref()
        .filter(|j| j.id == wanted && j.kind == "export" && j.state == JobState::Done)
        .and_then(|j| j.file.clone())
        .ok_or_else(gone)?;
    let file = File::open(&path).map_err(|_| gone())?;
    let length = file.metadata().map(|m| m.len()).ok();
    let mut response = Body::from_stream(stream_file(file)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        header::HeaderValue::from_static("attachment; filename=\"ferrumdb-export.jsonl\""),
    );
    if let Some(n) = length {
        headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(n));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_job_at_a_time() {
        let ops = Ops::default();
        let first = ops.begin("compact", "bytes").unwrap();
        let err = ops.begin("backup", "bytes").unwrap_err();
        assert_eq!(err.status, StatusCode::CONFLICT);
        ops.progress(first, 5, 10);
        assert_eq!(ops.status()["done"], 5);
        ops.finish(first, Ok((json!({}), None)));
        assert_eq!(ops.status()["state"], "done");
        assert_eq!(ops.status()["done"], 10);
        let second = ops.begin("backup", "bytes").unwrap();
        assert!(second > first);
        ops.finish(second, Err("disk full".into()));
        assert_eq!(ops.status()["state"], "failed");
        assert_eq!(ops.status()["error"], "disk full");
    }
}
