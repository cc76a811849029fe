//! PostgreSQL for the REPL and Studio: a [`Backend`] that calls the Python
//! `PostgresDB` handle (`ferrumdb/postgres.py`), so `ferrumdb postgresql://…`
//! and `ferrumdb studio postgresql://…` run the very same commands and routes
//! as on a file, with the semantics the Python handle already has.
//!
//! Every call runs on one thread of its own (`ferrum-pg`), which stays known
//! to the interpreter for its whole life and holds the GIL only while a call
//! runs. One thread, because the handle keeps a connection per thread: calls
//! from Studio's pool of short-lived threads would each open (and leave open)
//! a connection of their own. The REPL, the key completion and Studio's
//! requests queue their calls to it and wait for the answer.
//!
//! [`serve_studio`] serves Studio for a handle inside the application's own
//! process (`PostgresDB.studio()`), as `FerrumDB.studio()` does for a file.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{
    PyConnectionError, PyKeyError, PyNotImplementedError, PyPermissionError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{json, Map, Value};

use crate::backend::{
    Activity, Backend, Entry, Found, IndexInfo, Progress, Put, SharedBackend, TtlChange,
};
use crate::documents::QueryOptions;
use crate::engine::ValueBuf;
use crate::error::{BackendErrorKind, Error, Result};
use crate::server::{Studio, StudioOptions};

use super::convert::{json_to_py, py_to_value};
use super::errors::{ClosedError, DuplicateKeyError, ReadOnlyError, TransactionConflict};

/// A row of `PostgresDB._entries_page`: key, JSON text (when asked for), seconds left.
type RawEntry = (String, Option<String>, Option<f64>);

/// A call waiting for the `ferrum-pg` thread, given the handle.
type Job = Box<dyn for<'py> FnOnce(&Bound<'py, PyAny>) + Send>;

/// A `PostgresDB` handle as a [`Backend`].
pub(crate) struct PyBackend {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    location: String,
    read_only: bool,
    queries: AtomicU64,
}

/// Open `url` with `ferrumdb.open` (the Python package's own routing, so a
/// missing driver gives its `pip install ferrumdb[postgres]` message) and
/// wrap the handle: the command line's [`crate::cli::UrlOpener`].
pub(crate) fn open_url(url: &str, read_only: bool) -> std::result::Result<SharedBackend, String> {
    Python::attach(|py| {
        let opened = (|| {
            let kwargs = PyDict::new(py);
            kwargs.set_item("read_only", read_only)?;
            let db = py
                .import("ferrumdb")?
                .getattr("open")?
                .call((url,), Some(&kwargs))?;
            let location: String = db.getattr("path")?.extract()?;
            Ok::<_, PyErr>((db.unbind(), location))
        })();
        let (db, location) = opened.map_err(|e| message(py, &e))?;
        PyBackend::start(db, location, read_only)
            .map(|b| Arc::new(b) as SharedBackend)
            .map_err(|e| format!("cannot start the PostgreSQL worker thread: {e}"))
    })
}

/// The text of a Python exception (for `KeyError`, its key without quotes).
fn message(py: Python<'_>, e: &PyErr) -> String {
    let value = e.value(py);
    if e.is_instance_of::<PyKeyError>(py) {
        if let Ok(arg) = value.getattr("args").and_then(|a| a.get_item(0)) {
            if let Ok(text) = arg.str() {
                return format!("key not found: {text}");
            }
        }
    }
    match value.str() {
        Ok(text) if !text.to_string_lossy().is_empty() => text.to_string_lossy().into_owned(),
        _ => value.get_type().name().map_or_else(
            |_| "the PostgreSQL backend failed".to_owned(),
            |n| n.to_string(),
        ),
    }
}

/// FerrumDB's error for a Python exception raised by the handle.
fn to_error(py: Python<'_>, e: &PyErr) -> Error {
    if e.is_instance_of::<ClosedError>(py) {
        return Error::Closed;
    }
    let kind = if e.is_instance_of::<ReadOnlyError>(py) {
        BackendErrorKind::ReadOnly
    } else if e.is_instance_of::<DuplicateKeyError>(py)
        || e.is_instance_of::<TransactionConflict>(py)
    {
        BackendErrorKind::Conflict
    } else if e.is_instance_of::<PyConnectionError>(py) || e.is_instance_of::<PyPermissionError>(py)
    {
        BackendErrorKind::Unavailable
    } else if e.is_instance_of::<PyNotImplementedError>(py) {
        BackendErrorKind::Unsupported
    } else if e.is_instance_of::<PyValueError>(py)
        || e.is_instance_of::<PyTypeError>(py)
        || e.is_instance_of::<PyKeyError>(py)
    {
        BackendErrorKind::BadInput
    } else {
        BackendErrorKind::Failed
    };
    Error::Backend {
        kind,
        message: message(py, e),
    }
}

/// A JSON value as a Python object.
fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    let bytes = serde_json::to_vec(value).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(json_to_py(py, &bytes)?.into_bound(py))
}

/// A Python object the handle returned, as JSON.
fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    py_to_value(obj, "$").map_err(super::convert::ConvertError::into_pyerr)
}

/// `prefix` as the handle's keyword (`None` for every key).
fn prefix_arg(prefix: &str) -> Option<&str> {
    (!prefix.is_empty()).then_some(prefix)
}

impl PyBackend {
    /// Start the `ferrum-pg` thread, which owns `db` from now on.
    fn start(db: Py<PyAny>, location: String, read_only: bool) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let worker = std::thread::Builder::new()
            .name("ferrum-pg".into())
            .spawn(move || {
                // Only this thread receives; the mutex makes the wait `Sync`
                // for `detach`.
                let rx = Mutex::new(rx);
                Python::attach(|py| {
                    let db = db.into_bound(py);
                    // Wait for work with the GIL released; run it with the GIL held.
                    while let Ok(job) = py.detach(|| rx.lock().recv()) {
                        job(&db);
                    }
                });
            })?;
        Ok(PyBackend {
            jobs: Mutex::new(Some(tx)),
            worker: Mutex::new(Some(worker)),
            location,
            read_only,
            queries: AtomicU64::new(0),
        })
    }

    /// Run `f` with the handle on the `ferrum-pg` thread and wait for its answer.
    fn call<T: Send + 'static>(
        &self,
        f: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = mpsc::sync_channel::<Result<T>>(1);
        let job: Job = Box::new(move |db| {
            let answer = f(db).map_err(|e| to_error(db.py(), &e));
            // The caller waits for this; if it went away there is no one to tell.
            let _ = tx.send(answer);
        });
        self.jobs
            .lock()
            .as_ref()
            .ok_or(Error::Closed)?
            .send(job)
            .map_err(|_| Error::Closed)?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    fn count_query(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }

    /// `{field: {"unique": bool}}` of the handle, sorted by field.
    fn index_definitions(&self) -> Result<Vec<(String, bool)>> {
        self.call(|db| {
            let defs = db.call_method0("index_definitions")?;
            let defs = defs.cast::<PyDict>()?;
            let mut out = Vec::with_capacity(defs.len());
            for (field, definition) in defs.iter() {
                let unique = definition
                    .get_item("unique")
                    .and_then(|u| u.is_truthy())
                    .unwrap_or(false);
                out.push((field.extract::<String>()?, unique));
            }
            out.sort();
            Ok(out)
        })
    }

    fn entries(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        with_values: bool,
    ) -> Result<Vec<RawEntry>> {
        let (prefix, after) = (prefix.to_owned(), after.map(str::to_owned));
        self.call(move |db| {
            db.call_method1("_entries_page", (prefix, after, limit, with_values))?
                .extract()
        })
    }

    fn file_bytes(&self) -> Result<u64> {
        Ok(self.stats()?["file_bytes"].as_u64().unwrap_or(0))
    }
}

impl Drop for PyBackend {
    fn drop(&mut self) {
        // No more jobs: the thread ends, releasing the handle with the GIL held.
        drop(self.jobs.get_mut().take());
        if let Some(worker) = self.worker.get_mut().take() {
            // A panic there was reported on stderr already.
            let _ = worker.join();
        }
    }
}

impl Backend for PyBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn len(&self) -> Result<usize> {
        self.call(|db| db.len())
    }

    fn get(&self, key: &str) -> Result<Option<ValueBuf>> {
        let key = key.to_owned();
        self.call(move |db| {
            let text: Option<String> = db.call_method1("get_json", (key,))?.extract()?;
            Ok(text.map(|t| ValueBuf::from(t.into_bytes())))
        })
    }

    fn set(&self, key: &str, json: &[u8], ttl: Option<Duration>) -> Result<()> {
        let (key, json) = (key.to_owned(), json.to_vec());
        self.call(move |db| {
            let value = json_to_py(db.py(), &json)?;
            let kwargs = PyDict::new(db.py());
            kwargs.set_item("ttl", ttl.map(|t| t.as_secs_f64()))?;
            db.call_method("set", (key, value), Some(&kwargs))?;
            Ok(())
        })
    }

    fn put(&self, key: &str, json: &[u8], change: TtlChange, create_only: bool) -> Result<Put> {
        let key = key.to_owned();
        let text = String::from_utf8_lossy(json).into_owned();
        let (mode, seconds) = match change {
            TtlChange::Keep => ("keep", None),
            TtlChange::Clear => ("clear", None),
            TtlChange::Set(ttl) => ("set", Some(ttl.as_secs_f64())),
        };
        self.call(move |db| {
            let done: Option<(bool, Option<f64>)> = db
                .call_method1("_put", (key, text, mode, seconds, create_only))?
                .extract()?;
            Ok(match done {
                None => Put::Exists,
                Some((created, ttl)) => Put::Stored { created, ttl },
            })
        })
    }

    fn delete(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.call(move |db| db.call_method1("delete", (key,))?.is_truthy())
    }

    fn ttl(&self, key: &str) -> Result<Option<Option<f64>>> {
        let key = key.to_owned();
        self.call(move |db| match db.call_method1("ttl", (key,)) {
            Ok(left) => Ok(Some(left.extract()?)),
            Err(e) if e.is_instance_of::<PyKeyError>(db.py()) => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn persist(&self, key: &str) -> Result<Option<bool>> {
        let key = key.to_owned();
        self.call(move |db| db.call_method1("_persist", (key,))?.extract())
    }

    fn keys_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        Ok(self
            .entries(prefix, after, limit, false)?
            .into_iter()
            .map(|(key, ..)| key)
            .collect())
    }

    fn entries_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<Entry>> {
        Ok(self
            .entries(prefix, after, limit, true)?
            .into_iter()
            .map(|(key, text, ttl)| Entry {
                key,
                raw: ValueBuf::from(text.unwrap_or_default().into_bytes()),
                ttl,
            })
            .collect())
    }

    fn count(&self, filter: Option<&Value>, prefix: &str) -> Result<usize> {
        if filter.is_some() || !prefix.is_empty() {
            self.count_query();
        }
        let (filter, prefix) = (filter.cloned(), prefix.to_owned());
        self.call(move |db| {
            let py = db.py();
            let filter = filter.map(|f| to_py(py, &f)).transpose()?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("prefix", prefix_arg(&prefix))?;
            db.call_method("count", (filter,), Some(&kwargs))?.extract()
        })
    }

    fn query(&self, filter: &Value, options: &QueryOptions) -> Result<Vec<Found>> {
        self.count_query();
        let (filter, options) = (filter.clone(), options.clone());
        self.call(move |db| {
            let py = db.py();
            let kwargs = PyDict::new(py);
            kwargs.set_item("sort", options.sort.map(|s| to_py(py, &s)).transpose()?)?;
            kwargs.set_item("limit", options.limit)?;
            kwargs.set_item("skip", options.skip)?;
            kwargs.set_item("prefix", prefix_arg(&options.prefix))?;
            kwargs.set_item("fields", options.fields.map(|f| to_py(py, &f)).transpose()?)?;
            let rows = db.call_method("query", (to_py(py, &filter)?,), Some(&kwargs))?;
            let rows = rows.cast::<PyList>()?;
            let mut found = Vec::with_capacity(rows.len());
            for row in rows.iter() {
                let (key, doc): (String, Bound<'_, PyAny>) = row.extract()?;
                found.push(Found::new(key, to_value(&doc)?, None));
            }
            Ok(found)
        })
    }

    fn distinct(&self, field: &str, filter: Option<&Value>, prefix: &str) -> Result<Vec<Value>> {
        self.count_query();
        let (field, filter, prefix) = (field.to_owned(), filter.cloned(), prefix.to_owned());
        self.call(move |db| {
            let py = db.py();
            let filter = filter.map(|f| to_py(py, &f)).transpose()?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("prefix", prefix_arg(&prefix))?;
            let values = db.call_method("distinct", (field, filter), Some(&kwargs))?;
            values.try_iter()?.map(|v| to_value(&v?)).collect()
        })
    }

    fn explain(&self, filter: &Value) -> Result<Value> {
        let filter = filter.clone();
        self.call(move |db| to_value(&db.call_method1("explain", (to_py(db.py(), &filter)?,))?))
    }

    fn find(&self, field: &str, value: &Value) -> Result<Vec<String>> {
        self.count_query();
        let (field, value) = (field.to_owned(), value.clone());
        self.call(move |db| {
            db.call_method1("find", (field, to_py(db.py(), &value)?))?
                .extract()
        })
    }

    fn update_one(&self, key: &str, update: &Value, upsert: bool) -> Result<Option<Value>> {
        let (key, update) = (key.to_owned(), update.clone());
        self.call(move |db| {
            let py = db.py();
            let kwargs = PyDict::new(py);
            kwargs.set_item("upsert", upsert)?;
            let doc = db.call_method("update_one", (key, to_py(py, &update)?), Some(&kwargs))?;
            if doc.is_none() {
                Ok(None)
            } else {
                to_value(&doc).map(Some)
            }
        })
    }

    fn update_many(&self, filter: &Value, update: &Value, prefix: &str) -> Result<usize> {
        let (filter, update, prefix) = (filter.clone(), update.clone(), prefix.to_owned());
        self.call(move |db| {
            let py = db.py();
            let kwargs = PyDict::new(py);
            kwargs.set_item("prefix", prefix_arg(&prefix))?;
            db.call_method(
                "update_many",
                (to_py(py, &filter)?, to_py(py, &update)?),
                Some(&kwargs),
            )?
            .extract()
        })
    }

    fn delete_many(&self, filter: &Value, prefix: &str) -> Result<usize> {
        let (filter, prefix) = (filter.clone(), prefix.to_owned());
        self.call(move |db| {
            let py = db.py();
            let kwargs = PyDict::new(py);
            kwargs.set_item("prefix", prefix_arg(&prefix))?;
            db.call_method("delete_many", (to_py(py, &filter)?,), Some(&kwargs))?
                .extract()
        })
    }

    /// PostgreSQL does not say how many entries an index holds: `entries` is `None`.
    fn indexes(&self) -> Result<Vec<IndexInfo>> {
        Ok(self
            .index_definitions()?
            .into_iter()
            .map(|(field, unique)| IndexInfo {
                field,
                unique,
                entries: None,
            })
            .collect())
    }

    /// The server builds the index in one statement: no progress to show.
    fn create_index(&self, field: &str, unique: bool, _progress: Progress<'_>) -> Result<bool> {
        let existed = self.index_definitions()?.iter().any(|(f, _)| f == field);
        let field = field.to_owned();
        self.call(move |db| {
            let kwargs = PyDict::new(db.py());
            kwargs.set_item("unique", unique)?;
            db.call_method("create_index", (field,), Some(&kwargs))?;
            Ok(())
        })?;
        Ok(!existed)
    }

    fn drop_index(&self, field: &str) -> Result<bool> {
        let existed = self.index_definitions()?.iter().any(|(f, _)| f == field);
        let field = field.to_owned();
        self.call(move |db| {
            db.call_method1("drop_index", (field,))?;
            Ok(())
        })?;
        Ok(existed)
    }

    fn stats(&self) -> Result<Value> {
        self.call(|db| to_value(&db.call_method0("stats")?))
    }

    /// Sets and deletes are the table's, by every process (PostgreSQL's
    /// statistics, flushed by each session about once a second): the chart
    /// shows the applications' writes. Gets and queries are Studio's own.
    fn activity(&self) -> Result<Activity> {
        let queries = self.queries.load(Ordering::Relaxed);
        self.call(move |db| {
            let reading = db.call_method0("_activity")?;
            let n = |name: &str| -> PyResult<u64> { reading.get_item(name)?.extract() };
            Ok(Activity {
                gets: n("gets")?,
                sets: n("sets")?,
                deletes: n("deletes")?,
                queries,
                keys: n("keys")?,
                file_bytes: n("file_bytes")?,
                live_bytes: n("live_bytes")?,
                ops_per_sec: reading.get_item("ops_per_sec")?.extract()?,
            })
        })
    }

    fn details(&self) -> Result<Map<String, Value>> {
        let (fsync, table): (String, String) = self.call(|db| {
            Ok((
                db.getattr("fsync")?.extract()?,
                db.getattr("table")?.extract()?,
            ))
        })?;
        let details = json!({
            "backend": "postgresql",
            "path": self.location,
            "table": table,
            "fsync": fsync,
            "database_read_only": self.read_only,
            // Every call reads the server's current state.
            "database_live": true,
            "watches": 0,
        });
        Ok(match details {
            Value::Object(map) => map,
            _ => Map::new(),
        })
    }

    /// `db.compact()` on PostgreSQL: expired rows purged, then `VACUUM`.
    fn compact(&self, _progress: Progress<'_>) -> Result<(u64, u64)> {
        let before = self.file_bytes()?;
        self.call(|db| {
            db.call_method0("compact")?;
            Ok(())
        })?;
        Ok((before, self.file_bytes()?))
    }

    fn backup(&self, dest: &Path, _progress: Progress<'_>) -> Result<u64> {
        let dest = dest.to_path_buf();
        self.call(move |db| {
            db.call_method1("backup", (dest,))?;
            Ok(0)
        })
    }

    fn export_jsonl(&self, dest: &Path, prefix: &str, _progress: Progress<'_>) -> Result<u64> {
        let (dest, prefix) = (dest.to_path_buf(), prefix.to_owned());
        self.call(move |db| {
            let kwargs = PyDict::new(db.py());
            kwargs.set_item("prefix", prefix)?;
            db.call_method("export_jsonl", (dest,), Some(&kwargs))?
                .extract()
        })
    }

    fn close(&self) -> Result<()> {
        self.call(|db| {
            db.call_method0("close")?;
            Ok(())
        })
    }
}

/// Ferrum Studio serving a Python `PostgresDB` handle in this process (its
/// `studio()` method), as `FerrumDB.studio()` serves a file: the same router,
/// over a [`PyBackend`] of the handle. Stopped by [`PyRemoteStudio::stop`]
/// (the handle's `stop_studio()` and `close()`), or when collected.
#[pyclass(name = "RemoteStudio", module = "ferrumdb._native")]
pub(crate) struct PyRemoteStudio {
    studio: Mutex<Option<Studio>>,
    url: String,
}

#[pymethods]
impl PyRemoteStudio {
    /// The address to open in a browser (with `?token=` when a token is set).
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// Stop serving; whether it was running.
    fn stop(&self, py: Python<'_>) -> bool {
        let studio = self.studio.lock().take();
        let running = studio.is_some();
        // Requests in flight wait for the handle's thread, which needs the GIL.
        py.detach(move || drop(studio));
        running
    }
}

impl Drop for PyRemoteStudio {
    fn drop(&mut self) {
        if let Some(studio) = self.studio.get_mut().take() {
            // Collected with the GIL held, which a request in flight may be waiting
            // for: stop it from a thread of its own instead of waiting here.
            let _ = std::thread::Builder::new()
                .name("ferrum-studio-stop".into())
                .spawn(move || drop(studio));
        }
    }
}

/// Serve Ferrum Studio for the PostgreSQL handle `db` in the background.
#[pyfunction]
#[pyo3(signature = (db, port = 7474, host = "127.0.0.1", token = None, read_only = false))]
pub(crate) fn serve_studio(
    py: Python<'_>,
    db: Bound<'_, PyAny>,
    port: u16,
    host: &str,
    token: Option<String>,
    read_only: bool,
) -> PyResult<PyRemoteStudio> {
    let location: String = db.getattr("path")?.extract()?;
    let handle_read_only: bool = db.getattr("read_only")?.extract()?;
    let backend = PyBackend::start(db.unbind(), location, handle_read_only)?;
    let options = StudioOptions {
        host: host.to_owned(),
        port,
        token,
        // A read-only handle's Studio refuses edits up front.
        read_only: read_only || handle_read_only,
    };
    // Detached: a failed start drops the backend, which joins its thread.
    let studio = py.detach(move || Studio::start_backend(Arc::new(backend), options))?;
    Ok(PyRemoteStudio {
        url: studio.url().to_owned(),
        studio: Mutex::new(Some(studio)),
    })
}
