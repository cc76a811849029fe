//! `ferrumdb._native.FerrumDB`: the engine as a Python class. It reports itself
//! as `ferrumdb.FerrumDB`, the name users know, in errors and reprs.
//!
//! The hot methods (`__getitem__`, `__setitem__`, `get`, `__contains__`) live
//! here so Python resolves them straight to Rust with no extra frame; the
//! `ferrumdb.FerrumDB` subclass adds the mapping mixins, context manager,
//! repr and warnings. Values are transcoded while attached, then the
//! interpreter is detached for the file I/O.

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::config::{AutoCompact, Config, FsyncPolicy};
use crate::documents::{Documents, QueryOptions, UpdateTarget};
use crate::engine::Database;
use crate::error::Error;
use crate::server::{Studio, StudioOptions};
use crate::Clock;

use super::clock::PyManualClock;
use super::convert::{json_to_py, py_to_json, py_to_value, str_list, validate_json};
use super::found::FoundCache;
use super::iter::{PyScanIter, Yield};
use super::watch::PyWatch;
use super::FORK_GENERATION;

/// Largest serialisation buffer kept for reuse between sets.
const JSON_BUF_KEEP: usize = 1 << 20;

thread_local! {
    /// Reused serialisation buffer: a set allocates nothing for the JSON.
    static JSON_BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

/// Open handle to a FerrumDB database (use `ferrumdb.open`).
#[pyclass(name = "FerrumDB", module = "ferrumdb", subclass, frozen)]
pub(crate) struct PyDatabase {
    /// The database with its index layer (`docs.database()` is the engine).
    docs: ManuallyDrop<Documents>,
    fork_generation: u64,
    /// Ferrum Studio serving this handle, with the options it was started with.
    studio: parking_lot::Mutex<Option<(StudioOptions, Studio)>>,
    /// Recent index-answered `find` results, as strs (see python::found).
    found: FoundCache,
}

impl Drop for PyDatabase {
    fn drop(&mut self) {
        // In a forked child the engine's threads and lock belong to the parent:
        // running its destructor here could join a thread that does not exist.
        if FORK_GENERATION.load(Ordering::Relaxed) == self.fork_generation {
            // Studio first: it holds a clone of the handle.
            drop(self.studio.get_mut().take());
            // SAFETY: dropped exactly once, here.
            unsafe { ManuallyDrop::drop(&mut self.docs) }
        } else {
            // The server thread exists only in the parent: never join it here.
            std::mem::forget(self.studio.get_mut().take());
        }
    }
}

/// The one path of a set from Python: encode, then write up to the
/// sync, returning its group-commit ticket ([`Database::make_durable`]).
fn store_unsynced(
    db: &Database,
    py: Python<'_>,
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    ttl: Option<Duration>,
) -> PyResult<u64> {
    let key = key_str(key)?;
    JSON_BUF.with(|cell| {
        let mut buf = cell
            .try_borrow_mut()
            .map_err(|_| PyTypeError::new_err("re-entrant set"))?;
        buf.clear();
        let result = match py_to_json(value, &mut buf) {
            Ok(()) => {
                let bytes: &[u8] = &buf;
                py.detach(|| {
                    let expires_at = ttl.map_or(Ok(0), |ttl| db.expiry_after(ttl))?;
                    db.put_raw_unsynced(key, bytes, expires_at)
                })
                .map_err(PyErr::from)
            }
            Err(e) => Err(e.into_pyerr()),
        };
        // Do not keep a huge document's buffer (up to the value limit and
        // beyond, for a rejected one) alive in this thread forever.
        if buf.capacity() > JSON_BUF_KEEP {
            *buf = Vec::with_capacity(1024);
        }
        result
    })
}

/// A `ttl=` argument: `None` (or absent) for no expiry, else as
/// [`ttl_duration`].
pub(super) fn optional_ttl(ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    ttl.filter(|t| !t.is_none()).map(ttl_duration).transpose()
}

/// A TTL argument as a duration: a positive, finite number of seconds.
pub(super) fn ttl_duration(ttl: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if ttl.is_instance_of::<PyBool>()
        || !(ttl.is_instance_of::<PyInt>() || ttl.is_instance_of::<PyFloat>())
    {
        return Err(PyTypeError::new_err(format!(
            "ttl must be a number of seconds (int or float), not {}",
            ttl.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into())
        )));
    }
    let seconds: f64 = ttl.extract()?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(PyValueError::new_err(format!(
            "ttl must be a positive, finite number of seconds, not {seconds}; use delete() to remove a key now"
        )));
    }
    if seconds < 0.001 {
        return Err(PyValueError::new_err(format!(
            "ttl must be at least 0.001 seconds (expiry has millisecond precision), not {seconds}"
        )));
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|e| PyValueError::new_err(format!("ttl {seconds} is out of range: {e}")))
}

/// A progress bar on standard error for long work started with `progress=True`.
fn progress_bar(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    let style =
        indicatif::ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} documents ({eta})");
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// A progress bar in records for a compaction started with `progress=True`.
fn records_progress_bar(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    let style = indicatif::ProgressStyle::with_template(
        "{msg} {wide_bar} {human_pos}/{human_len} records ({eta})",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// A progress bar in bytes for long file work started with `progress=True`.
fn bytes_progress_bar(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    let style = indicatif::ProgressStyle::with_template(
        "{msg} {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// A query argument (`filter`, `sort`, a `find` value) as JSON, by the same
/// rules as stored values, converted directly (no JSON text in between): a
/// set, bytes, NaN/inf or an int out of range is a `TypeError`/`ValueError`
/// naming where it is (`filter.tags["$in"][1]`), never silently turned into a
/// list or a null that would match missing fields.
fn json_arg(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    Ok(py_to_value(obj, what)?)
}

/// A query filter as JSON; it must be a dict.
fn filter_value(filter: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    if !filter.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "a filter is a dict such as {{\"role\": \"admin\"}}, not {}",
            filter
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into())
        )));
    }
    json_arg("filter", filter)
}

/// A document computed in Rust, as a Python object (through its JSON bytes,
/// the same converter reads use).
fn value_to_py(py: Python<'_>, what: &str, value: &serde_json::Value) -> PyResult<Py<PyAny>> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::InvalidValue {
        path: what.to_owned(),
        reason: e.to_string(),
    })?;
    json_to_py(py, &bytes)
}

/// An optional filter: None (or omitted) for every document.
fn optional_filter(filter: Option<&Bound<'_, PyAny>>) -> PyResult<Option<serde_json::Value>> {
    match filter {
        Some(f) if !f.is_none() => Ok(Some(filter_value(f)?)),
        _ => Ok(None),
    }
}

/// A `fields=` projection: a list (or tuple) of dotted-path strings; a bare
/// string is refused rather than read as a list of one-letter paths.
fn fields_value(fields: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    if fields.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "fields is a list of dotted paths such as [\"name\", \"address.city\"], not a str",
        ));
    }
    json_arg("fields", fields)
}

/// A non-negative count argument (`limit`, `skip`).
fn count_arg(name: &str, n: i64) -> PyResult<usize> {
    usize::try_from(n).map_err(|_| {
        PyValueError::new_err(format!("{name} must be a non-negative integer, not {n}"))
    })
}

/// The key as `&str`, or `TypeError` naming the type.
pub(super) fn key_str<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<&'a str> {
    match key.cast::<PyString>() {
        Ok(s) => s.to_str(),
        Err(_) => Err(PyTypeError::new_err(format!(
            "keys must be str, not {}",
            key.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into())
        ))),
    }
}

/// An `encryption_key` argument: 32 raw bytes (`bytes`, `bytearray` or a
/// `memoryview`), or a non-empty passphrase `str`. Copies are wiped on drop.
pub(super) fn encryption_key_arg(key: &Bound<'_, PyAny>) -> PyResult<crate::EncryptionKey> {
    use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};
    if let Ok(s) = key.cast::<PyString>() {
        let pass = s.to_str()?;
        if pass.is_empty() {
            return Err(PyValueError::new_err(
                "an encryption passphrase must not be empty",
            ));
        }
        return Ok(crate::EncryptionKey::from(pass));
    }
    let raw: zeroize::Zeroizing<Vec<u8>> = if let Ok(b) = key.cast::<PyBytes>() {
        zeroize::Zeroizing::new(b.as_bytes().to_vec())
    } else if let Ok(b) = key.cast::<PyByteArray>() {
        zeroize::Zeroizing::new(b.to_vec())
    } else if key.is_instance_of::<PyMemoryView>() {
        let bytes = key.call_method0("tobytes")?;
        zeroize::Zeroizing::new(bytes.cast::<PyBytes>()?.as_bytes().to_vec())
    } else {
        return Err(PyTypeError::new_err(format!(
            "encryption_key must be 32 bytes (bytes, bytearray or memoryview) or a passphrase str, not {}",
            key.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into())
        )));
    };
    crate::EncryptionKey::try_from(&raw[..]).map_err(|e| {
        PyValueError::new_err(match e {
            crate::crypto::CryptoError::BadKey(why) => why,
            other => other.to_string(),
        })
    })
}

/// A key to look up (read or delete): `None` for a `str` that has no UTF-8
/// form (a lone surrogate such as `"\ud800"`). No stored key can equal it,
/// so lookups answer "missing" as a dict would (`in` is False, `get` gives
/// the default, `[]` and `del` raise `KeyError`) instead of raising
/// `UnicodeEncodeError`. Writes keep `key_str`, which refuses it. The check
/// costs nothing on the hot path: it is only the error branch of `to_str`.
pub(super) fn lookup_key<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<Option<&'a str>> {
    match key_str(key) {
        Ok(k) => Ok(Some(k)),
        Err(e)
            if key.is_instance_of::<PyString>()
                && e.is_instance_of::<pyo3::exceptions::PyUnicodeEncodeError>(key.py()) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn key_error(key: &Bound<'_, PyAny>) -> PyErr {
    PyKeyError::new_err(key.clone().unbind())
}

impl PyDatabase {
    /// The engine, unless this handle crossed a fork or was closed. (The
    /// engine's `len()` does not check, so `len(db)`, `count()`, `iter(db)`
    /// and `scan()` would otherwise keep answering after `close()`.)
    pub(super) fn db(&self) -> PyResult<&Database> {
        if FORK_GENERATION.load(Ordering::Relaxed) != self.fork_generation {
            return Err(Error::Forked.into());
        }
        let db = self.docs.database();
        if db.is_closed() {
            return Err(Error::Closed.into());
        }
        Ok(db)
    }

    /// The index layer, unless this handle crossed a fork or was closed.
    fn docs(&self) -> PyResult<&Documents> {
        self.db()?;
        Ok(&self.docs)
    }

    fn store(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<Duration>,
    ) -> PyResult<()> {
        let db = self.db()?;
        let ticket = store_unsynced(db, py, key, value, ttl)?;
        if db.fsync_policy() == FsyncPolicy::Always {
            py.detach(|| db.make_durable(ticket))?;
        }
        Ok(())
    }

    fn load(&self, py: Python<'_>, key: &str) -> PyResult<Option<Py<PyAny>>> {
        let db = self.db()?;
        // A read from the shared mapping is a memcpy of a few hundred bytes:
        // handing the GIL to another thread and taking it back costs more than
        // that and made two reader threads slower than one. Reads that are
        // syscalls (read-only handles) release it.
        let found = if db.reads_from_memory() {
            db.get_raw(key)?
        } else {
            py.detach(|| db.get_raw(key))?
        };
        match found {
            None => Ok(None),
            Some(buf) => Ok(Some(json_to_py(py, buf.as_bytes())?)),
        }
    }
}

#[pymethods]
impl PyDatabase {
    /// Open (creating if missing) the database at `path`.
    #[new]
    #[pyo3(signature = (path = PathBuf::from(crate::DEFAULT_PATH), *, fsync = None, read_only = false, clock = None, auto_compact = Some(0.5), encryption_key = None, exclusive = false))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of ferrumdb.open
    fn new(
        py: Python<'_>,
        path: PathBuf,
        fsync: Option<&str>,
        read_only: bool,
        clock: Option<PyRef<'_, PyManualClock>>,
        auto_compact: Option<f64>,
        encryption_key: Option<&Bound<'_, PyAny>>,
        exclusive: bool,
    ) -> PyResult<Self> {
        let auto_compact = auto_compact.map(AutoCompact::with_ratio).transpose()?;
        let policy: FsyncPolicy = match fsync {
            Some(s) => s.parse()?,
            None => FsyncPolicy::default(),
        };
        let mut config = Config::new()
            .with_path(path)
            .with_fsync_policy(policy)
            .with_read_only(read_only)
            .with_exclusive(exclusive)
            .with_clock(clock.map_or(Clock::System, |c| c.clock.clone()))
            .with_auto_compact(auto_compact);
        if let Some(key) = encryption_key.filter(|k| !k.is_none()) {
            config = config.with_encryption(encryption_key_arg(key)?);
        }
        let docs = py.detach(|| Database::open(&config).and_then(Documents::open))?;
        Ok(PyDatabase {
            docs: ManuallyDrop::new(docs),
            fork_generation: FORK_GENERATION.load(Ordering::Relaxed),
            studio: parking_lot::Mutex::new(None),
            found: FoundCache::default(),
        })
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Some(k) = lookup_key(key)? else {
            self.db()?;
            return Err(key_error(key));
        };
        match self.load(py, k)? {
            Some(v) => Ok(v),
            None => Err(key_error(key)),
        }
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.store(py, key, value, None)
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let k = lookup_key(key)?;
        let db = self.db()?;
        let Some(k) = k else {
            return Err(key_error(key));
        };
        if py.detach(|| db.delete(k))? {
            Ok(())
        } else {
            Err(key_error(key))
        }
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        // `1 in db` is False rather than an error, as for dict.
        let db = self.db()?;
        match key.cast::<PyString>() {
            Ok(_) => match lookup_key(key)? {
                Some(k) => Ok(db.contains(k)?),
                None => Ok(false),
            },
            Err(_) => Ok(false),
        }
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.db()?.len())
    }

    fn __iter__(&self) -> PyResult<PyScanIter> {
        Ok(PyScanIter::new(
            self.db()?.clone(),
            String::new(),
            Yield::Keys,
        ))
    }

    /// Value under `key`, or `default` when it is missing.
    #[pyo3(signature = (key, default = None))]
    fn get(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let found = match lookup_key(key)? {
            Some(k) => self.load(py, k)?,
            None => {
                self.db()?;
                None
            }
        };
        Ok(found.unwrap_or_else(|| default.unwrap_or_else(|| py.None())))
    }

    /// Store `value` under `key`.
    #[pyo3(signature = (key, value, ttl = None))]
    fn set(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let ttl = optional_ttl(ttl)?;
        self.store(py, key, value, ttl)
    }

    /// `set` up to the sync that `fsync="always"` makes before returning:
    /// the write is made and visible; pass the returned ticket to
    /// `_make_durable` to wait for it to reach the disk. For
    /// `ferrumdb.aio`, which lets every coroutine's write share one sync.
    #[pyo3(signature = (key, value, ttl = None))]
    fn _set_unsynced(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let ttl = optional_ttl(ttl)?;
        store_unsynced(self.db()?, py, key, value, ttl)
    }

    /// Wait (GIL released) until the write that returned `ticket` is as
    /// durable as the fsync policy promises; concurrent waiters share one
    /// sync. The sync's `OSError` poisons the handle, as for `set`.
    fn _make_durable(&self, py: Python<'_>, ticket: u64) -> PyResult<()> {
        let db = self.db()?;
        Ok(py.detach(|| db.make_durable(ticket))?)
    }

    /// Seconds until `key` expires (sub-second precision), or None if it never does.
    fn ttl(&self, key: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
        let k = lookup_key(key)?;
        let db = self.db()?;
        match k.map(|k| db.ttl(k)).transpose()?.flatten() {
            Some(left) => Ok(left),
            None => Err(key_error(key)),
        }
    }

    /// Remove `key`; returns whether it existed.
    fn delete(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let k = lookup_key(key)?;
        let db = self.db()?;
        match k {
            Some(k) => Ok(py.detach(|| db.delete(k))?),
            None => Ok(false),
        }
    }

    /// All keys, in key order, as a list.
    fn keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let db = self.db()?;
        Ok(py.detach(|| db.keys_page("", None, usize::MAX))?)
    }

    /// Number of documents matching `filter` (every live key when None)
    /// whose key starts with `prefix`; `count()` is `len(db)`. Answered
    /// without reading documents where it can (no filter, or one indexed
    /// equality, `$in` or range).
    #[pyo3(signature = (filter = None, *, prefix = None))]
    fn count(
        &self,
        py: Python<'_>,
        filter: Option<&Bound<'_, PyAny>>,
        prefix: Option<&str>,
    ) -> PyResult<usize> {
        let filter = optional_filter(filter)?;
        let prefix = prefix.unwrap_or("");
        if filter.is_none() && prefix.is_empty() {
            return Ok(self.db()?.len());
        }
        let docs = self.docs()?;
        Ok(py.detach(|| docs.count(filter.as_ref(), prefix))?)
    }

    /// The distinct values of `field` (a dotted path) among the documents
    /// matching `filter` whose key starts with `prefix`, in query sort order;
    /// array elements count one by one.
    #[pyo3(signature = (field, filter = None, *, prefix = None))]
    fn distinct<'py>(
        &self,
        py: Python<'py>,
        field: &str,
        filter: Option<&Bound<'py, PyAny>>,
        prefix: Option<&str>,
    ) -> PyResult<Bound<'py, PyList>> {
        let filter = optional_filter(filter)?;
        let docs = self.docs()?;
        let values = py.detach(|| docs.distinct(field, filter.as_ref(), prefix.unwrap_or("")))?;
        let out = PyList::empty(py);
        for (i, value) in values.into_iter().enumerate() {
            let_other_threads_run(py, i);
            out.append(value_to_py(py, field, &value)?)?;
        }
        Ok(out)
    }

    /// Iterate `(key, value)` for keys starting with `prefix`, in key order.
    #[pyo3(signature = (prefix = ""))]
    fn scan(&self, prefix: &str) -> PyResult<PyScanIter> {
        Ok(PyScanIter::new(
            self.db()?.clone(),
            prefix.to_owned(),
            Yield::Items,
        ))
    }

    fn _iter_values(&self) -> PyResult<PyScanIter> {
        Ok(PyScanIter::new(
            self.db()?.clone(),
            String::new(),
            Yield::Values,
        ))
    }

    fn _iter_items(&self) -> PyResult<PyScanIter> {
        Ok(PyScanIter::new(
            self.db()?.clone(),
            String::new(),
            Yield::Items,
        ))
    }

    /// Store raw JSON text under `key` after checking it is one valid document.
    fn set_json(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        text: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let k = key_str(key)?;
        let text = text
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("set_json() takes the JSON document as a str"))?
            .to_str()?;
        validate_json(text)?;
        let db = self.db()?;
        Ok(py.detach(|| db.put_raw(k, text.as_bytes()))?)
    }

    /// The stored JSON text under `key`, or `default` when it is missing.
    #[pyo3(signature = (key, default = None))]
    fn get_json(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let k = lookup_key(key)?;
        let db = self.db()?;
        let Some(k) = k else {
            return Ok(default.unwrap_or_else(|| py.None()));
        };
        match py.detach(|| db.get_raw(k))? {
            None => Ok(default.unwrap_or_else(|| py.None())),
            Some(buf) => {
                let text =
                    std::str::from_utf8(buf.as_bytes()).map_err(|_| Error::InvalidValue {
                        path: "$".into(),
                        reason: "stored JSON is not UTF-8".into(),
                    })?;
                Ok(PyString::new(py, text).into_any().unbind())
            }
        }
    }

    /// Create a secondary index on `field` (a dotted path reaches into nested
    /// objects); built from the existing documents, kept exact on every write,
    /// remembered across reopen. Creating an existing index does nothing.
    /// `unique=True` refuses writes that would give two documents one value
    /// (`DuplicateKeyError`).
    #[pyo3(signature = (field, *, unique = false, progress = false))]
    fn create_index(
        &self,
        py: Python<'_>,
        field: &str,
        unique: bool,
        progress: bool,
    ) -> PyResult<()> {
        let docs = self.docs()?;
        if progress {
            let bar = progress_bar(&format!("indexing {field}"));
            let result = py.detach(|| {
                docs.create_index_with(field, unique, &mut |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })
            });
            bar.finish();
            result?;
        } else {
            py.detach(|| docs.create_index_with(field, unique, &mut |_, _| {}))?;
        }
        Ok(())
    }

    /// Remove the index on `field` (nothing happens if there is none).
    fn drop_index(&self, py: Python<'_>, field: &str) -> PyResult<()> {
        let docs = self.docs()?;
        py.detach(|| docs.drop_index(field))?;
        Ok(())
    }

    /// Indexed field names, sorted.
    fn indexes(&self) -> PyResult<Vec<String>> {
        Ok(self.docs()?.indexes())
    }

    /// `(field, unique)` for every index, sorted by field: for the notebook
    /// summary and the PostgreSQL backend's import (not public API).
    fn _index_definitions(&self) -> PyResult<Vec<(String, bool)>> {
        let docs = self.docs()?;
        Ok(docs
            .indexes()
            .into_iter()
            .map(|field| {
                let unique = docs.index_is_unique(&field).unwrap_or(false);
                (field, unique)
            })
            .collect())
    }

    /// Keys whose document has `field == value` (an array field matches if any
    /// element does), in key order; uses the index on `field` when there is one.
    fn find<'py>(
        &self,
        py: Python<'py>,
        field: &str,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let value = json_arg("value", value)?;
        let docs = self.docs()?;
        // The strs of an earlier identical find, while no index changed.
        let text = value.to_string();
        let version = py.detach(|| docs.index_version())?;
        if let Some(list) = self.found.get(py, field, &text, version)? {
            docs.count_find();
            return Ok(list);
        }
        let (keys, indexed) = py.detach(|| docs.find_keys_indexed(field, &value))?;
        // Straight from the index's keys to Python strs: one copy per key.
        let list = str_list(py, &keys)?;
        if indexed {
            self.found.put(field, text, version, &list);
        }
        Ok(list)
    }

    /// `(key, document)` pairs matching a Mongo-style `filter` (every
    /// document when None), for keys starting with `prefix`, each document
    /// cut down to the dotted paths in `fields` when given.
    #[pyo3(signature = (filter = None, *, sort = None, limit = None, skip = 0, prefix = None, fields = None))]
    #[allow(clippy::too_many_arguments)]
    fn query<'py>(
        &self,
        py: Python<'py>,
        filter: Option<&Bound<'py, PyAny>>,
        sort: Option<&Bound<'py, PyAny>>,
        limit: Option<i64>,
        skip: i64,
        prefix: Option<&str>,
        fields: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let filter = optional_filter(filter)?.unwrap_or_else(|| serde_json::json!({}));
        let sort: Option<serde_json::Value> = match sort {
            Some(s) if !s.is_none() => Some(json_arg("sort", s)?),
            _ => None,
        };
        let fields = match fields {
            Some(f) if !f.is_none() => Some(fields_value(f)?),
            _ => None,
        };
        let options = QueryOptions {
            sort,
            limit: limit.map(|l| count_arg("limit", l)).transpose()?,
            skip: count_arg("skip", skip)?,
            prefix: prefix.unwrap_or("").to_owned(),
            fields,
        };
        let docs = self.docs()?;
        let rows = py.detach(|| docs.query_raw(&filter, &options))?;
        let out = PyList::empty(py);
        for (i, row) in rows.into_iter().enumerate() {
            let_other_threads_run(py, i);
            // Whole documents go straight from the stored bytes (never
            // parsed into a serde value); projected ones are re-encoded from
            // the cut-down value.
            let doc = match &row.projected {
                Some(doc) => value_to_py(py, &row.key, doc)?,
                None => json_to_py(py, row.raw.as_bytes())?,
            };
            out.append((row.key, doc))?;
        }
        Ok(out)
    }

    /// Apply update operators (`{"$set": ..., "$inc": ...}`) to one
    /// document atomically: a str names the key, a dict filter picks the
    /// first match in key order. Returns the new document, or None if
    /// nothing matched; `upsert=True` with a key starts from `{}`.
    #[pyo3(signature = (key_or_filter, update, *, upsert = false))]
    fn update_one(
        &self,
        py: Python<'_>,
        key_or_filter: &Bound<'_, PyAny>,
        update: &Bound<'_, PyAny>,
        upsert: bool,
    ) -> PyResult<Option<Py<PyAny>>> {
        let filter = if key_or_filter.is_instance_of::<PyString>() {
            None
        } else if key_or_filter.is_instance_of::<PyDict>() {
            Some(filter_value(key_or_filter)?)
        } else {
            return Err(PyTypeError::new_err(format!(
                "update_one() takes a key (str) or a filter (dict), not {}",
                key_or_filter
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into())
            )));
        };
        let target = match &filter {
            Some(f) => UpdateTarget::Filter(f),
            None => UpdateTarget::Key(key_str(key_or_filter)?),
        };
        let update = json_arg("update", update)?;
        let docs = self.docs()?;
        let doc = py.detach(|| docs.update_one_with_bytes(target, &update, upsert))?;
        // From the bytes just written: the document is not encoded twice.
        doc.map(|(_, bytes)| json_to_py(py, &bytes)).transpose()
    }

    /// Apply update operators to every document matching `filter` whose key
    /// starts with `prefix`, all or nothing; returns how many changed.
    #[pyo3(signature = (filter, update, *, prefix = None))]
    fn update_many(
        &self,
        py: Python<'_>,
        filter: &Bound<'_, PyAny>,
        update: &Bound<'_, PyAny>,
        prefix: Option<&str>,
    ) -> PyResult<usize> {
        let filter = filter_value(filter)?;
        let update = json_arg("update", update)?;
        let docs = self.docs()?;
        Ok(py.detach(|| docs.update_many(&filter, &update, prefix.unwrap_or("")))?)
    }

    /// Delete every document matching `filter` whose key starts with
    /// `prefix`, all or nothing; returns how many.
    #[pyo3(signature = (filter, *, prefix = None))]
    fn delete_many(
        &self,
        py: Python<'_>,
        filter: &Bound<'_, PyAny>,
        prefix: Option<&str>,
    ) -> PyResult<usize> {
        let filter = filter_value(filter)?;
        let docs = self.docs()?;
        Ok(py.detach(|| docs.delete_many(&filter, prefix.unwrap_or("")))?)
    }

    /// The plan `query(filter)` would use: a dict with `index` (field or
    /// None), `scan` (bool), `estimated_rows` and details of the probe.
    fn explain<'py>(
        &self,
        py: Python<'py>,
        filter: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = filter_value(filter)?;
        let docs = self.docs()?;
        let plan = py.detach(|| docs.explain(&filter))?;
        Ok(pythonize::pythonize(py, &plan)?)
    }

    /// Iterate over the changes committed after this call, as
    /// ``(op, key, value)`` tuples in commit order, for keys starting with
    /// ``prefix`` (every key by default).
    ///
    /// ``op`` is ``"set"`` (``value`` is the new document) or ``"delete"``
    /// (``value`` is None); a key whose TTL ran out is reported as a
    /// ``"delete"`` once the database notices the expiry (a waiting watch
    /// checks every 0.1 s). Changes from every thread of this process are
    /// reported; those before the call are not.
    ///
    /// ``next()`` blocks until a change arrives (without holding the GIL;
    /// Ctrl-C interrupts it). Iteration ends when the watch is closed
    /// (``close()``, or leaving ``with db.watch() as changes:``; another thread
    /// may do this to stop a consumer) or when the database is closed, after
    /// the changes committed before that.
    ///
    /// A watch buffers at most 10,000 unread changes (and 64 MiB of values);
    /// writers never wait for it. A consumer that falls further behind loses
    /// the buffered changes and gets ``WatchOverflowError`` (a ``FerrumError``)
    /// from ``next()``: start a new watch and re-read the state it shows.
    #[pyo3(signature = (prefix = ""))]
    fn watch(&self, py: Python<'_>, prefix: &str) -> PyResult<PyWatch> {
        let docs = self.docs()?;
        let watch = py.detach(|| docs.watch(prefix))?;
        Ok(PyWatch::new(watch, docs.clone(), self.fork_generation))
    }

    /// Write a consistent copy of the database to `path` while it stays in
    /// use (replacing `path` atomically); the copy is verified before it
    /// takes the name. `progress=True` shows a progress bar.
    #[pyo3(signature = (path, *, progress = false))]
    fn backup(&self, py: Python<'_>, path: PathBuf, progress: bool) -> PyResult<()> {
        let db = self.db()?;
        let bar = progress.then(|| bytes_progress_bar("backup"));
        let result = py.detach(|| {
            db.backup_with_progress(&path, &mut |done, total| {
                if let Some(bar) = &bar {
                    bar.set_length(total);
                    bar.set_position(done);
                }
            })
        });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        result?;
        Ok(())
    }

    /// Re-encrypt the database under ``new_key`` (32 bytes or a passphrase
    /// str), or encrypt a plain one. Rewrites the file like ``compact()``; if
    /// interrupted, the old file is intact and opens with the old key.
    fn rekey(&self, py: Python<'_>, new_key: &Bound<'_, PyAny>) -> PyResult<()> {
        let key = encryption_key_arg(new_key)?;
        let db = self.db()?;
        Ok(py.detach(|| db.rekey(&key))?)
    }

    /// Rewrite the file with live data only. `progress=True` shows a
    /// progress bar (records copied) on standard error at a terminal.
    #[pyo3(signature = (*, progress = false))]
    fn compact(&self, py: Python<'_>, progress: bool) -> PyResult<()> {
        let db = self.db()?;
        if !progress {
            return Ok(py.detach(|| db.compact())?);
        }
        let bar = records_progress_bar("compacting");
        let result = py.detach(|| {
            db.compact_with_progress(&mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
        });
        bar.finish();
        Ok(result?)
    }

    /// Write every live key starting with `prefix` to `path` as JSON Lines
    /// (`{"key": ..., "value": ...}` plus `"expires_at"` in Unix seconds for
    /// keys with a TTL) and return how many records were written. A database
    /// with indexes gets a first line recording them (an entry that expired
    /// in 1970, which older importers skip). The file is written under a
    /// temporary name and renamed, so `path` is never left half-written.
    #[pyo3(signature = (path, *, prefix = "", progress = false))]
    fn export_jsonl(
        &self,
        py: Python<'_>,
        path: PathBuf,
        prefix: &str,
        progress: bool,
    ) -> PyResult<u64> {
        let db = self.db()?;
        let mut bar = progress.then(crate::ops::progress::Bar::new);
        let result = py.detach(|| {
            crate::ops::export_jsonl(db, &path, prefix, &mut |stage, done, total| {
                if let Some(bar) = bar.as_mut() {
                    bar.update(stage, done, total);
                }
            })
        });
        if let Some(bar) = &bar {
            bar.finish();
        }
        Ok(result?)
    }

    /// Read JSON Lines written by `export_jsonl` into the database and return
    /// how many records were stored (entries whose `expires_at` has passed are
    /// skipped). Every line is checked before anything is written: a bad line
    /// raises `ValueError` naming the line, and the database is unchanged.
    /// The indexes the export recorded are created first (`indexes=False`
    /// skips them); a failed import drops those it created.
    #[pyo3(signature = (path, *, indexes = true, progress = false))]
    fn import_jsonl(
        &self,
        py: Python<'_>,
        path: PathBuf,
        indexes: bool,
        progress: bool,
    ) -> PyResult<u64> {
        let docs = self.docs()?;
        let mut bar = progress.then(crate::ops::progress::Bar::new);
        let result = py.detach(|| {
            crate::ops::import_jsonl_with_indexes(
                docs,
                &path,
                indexes,
                &mut |stage, done, total| {
                    if let Some(bar) = bar.as_mut() {
                        bar.update(stage, done, total);
                    }
                },
            )
        });
        if let Some(bar) = &bar {
            bar.finish();
        }
        Ok(result?.imported)
    }

    /// Force everything written to stable storage now.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let db = self.db()?;
        Ok(py.detach(|| db.flush())?)
    }

    /// Counters and sizes as a dict: `engine::Stats`, field by field (the
    /// same shape as Studio's `/api/stats` and the CLI's `STATS`).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.db()?.stats()?;
        Ok(pythonize::pythonize(py, &s)?)
    }

    /// Block until no background compaction is scheduled or running (for tests).
    fn _wait_for_compaction(&self, py: Python<'_>) -> PyResult<()> {
        let db = self.db()?;
        py.detach(|| db.wait_for_background_compaction());
        Ok(())
    }

    /// Flush and release the database; idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if FORK_GENERATION.load(Ordering::Relaxed) != self.fork_generation {
            return Ok(());
        }
        // Also ends every watch (after the changes committed before).
        let docs = &*self.docs;
        let slot = &self.studio;
        Ok(py.detach(|| {
            drop(slot.lock().take());
            docs.close()
        })?)
    }

    /// Start Ferrum Studio for this database in the background; returns its URL.
    ///
    /// At most one Studio serves a handle: calling again with the same
    /// arguments returns the running one's URL, with other arguments it
    /// stops that one and starts anew. `close()` stops it.
    // 7474 is server::DEFAULT_PORT, written out so the text signature (and stubtest) shows it.
    #[pyo3(signature = (port = 7474, host = "127.0.0.1", token = None, read_only = false))]
    fn studio(
        &self,
        py: Python<'_>,
        port: u16,
        host: &str,
        token: Option<String>,
        read_only: bool,
    ) -> PyResult<String> {
        let docs = self.docs()?.clone();
        let options = StudioOptions {
            host: host.to_string(),
            port,
            token,
            read_only,
        };
        // The slot is only ever locked with the interpreter detached: a thread
        // waiting for it must not hold the GIL the holder needs to return.
        let slot = &self.studio;
        Ok(py.detach(move || {
            let mut slot = slot.lock();
            if let Some((running, studio)) = slot.as_ref() {
                if *running == options {
                    return Ok::<_, crate::server::StudioError>(studio.url().to_string());
                }
            }
            drop(slot.take());
            let studio = Studio::start(docs, options.clone())?;
            let url = studio.url().to_string();
            *slot = Some((options, studio));
            Ok(url)
        })?)
    }

    /// Stop the Studio serving this handle, if any; returns whether one ran.
    fn stop_studio(&self, py: Python<'_>) -> bool {
        let slot = &self.studio;
        py.detach(move || slot.lock().take().is_some())
    }

    /// Whether `close()` has run (or the handle crossed a fork).
    #[getter]
    fn closed(&self) -> bool {
        FORK_GENERATION.load(Ordering::Relaxed) != self.fork_generation
            || self.docs.database().is_closed()
    }

    /// The database file, or `":memory:"`.
    #[getter]
    fn path(&self) -> String {
        self.docs
            .database()
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| ":memory:".into())
    }

    /// Whether writes are refused.
    #[getter]
    fn read_only(&self) -> bool {
        self.docs.database().is_read_only()
    }

    /// Whether this handle sees writes other processes make after it
    /// opened: always for a writer; for a `read_only` handle, unless the
    /// shared page beside the database (`PATH.shm`) could not be opened
    /// (a read-only directory), when it shows the file as it was at open.
    #[getter]
    fn is_live(&self) -> bool {
        self.docs.database().is_live()
    }

    /// The fsync policy, as the string `open()` accepts.
    #[getter]
    fn fsync(&self) -> String {
        self.docs.database().fsync_policy().to_string()
    }
}

/// Rows turned into Python objects between two chances for other threads
/// to take the GIL: about a millisecond of conversion.
const ROWS_PER_GIL_HOLD: usize = 256;

/// Called before converting row `i` of a large result: every
/// [`ROWS_PER_GIL_HOLD`] rows, let go of the GIL for a moment. Conversion
/// needs the GIL, and a native call holding it for a 100k-row result would
/// stall every other thread for its whole length, an asyncio loop waiting
/// on a pool thread's `query` included; CPython then hands the GIL to a
/// thread that has waited for its switch interval.
#[inline]
fn let_other_threads_run(py: Python<'_>, i: usize) {
    if i > 0 && i.is_multiple_of(ROWS_PER_GIL_HOLD) {
        py.detach(|| ());
    }
}
