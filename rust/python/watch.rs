//! `db.watch(prefix="")`: a blocking iterator of `(op, key, value)` change
//! events, on top of [`crate::documents::Watch`].
//!
//! `__next__` waits with the interpreter detached, waking every
//! [`TICK`] to run signal handlers (so Ctrl-C interrupts it), to notice a
//! database closed elsewhere, and to let the engine purge expired keys (so a
//! TTL expiry is reported even when nothing else touches the database). The
//! class is frozen and its state lives behind the watch's own mutex, so
//! another thread may call `close()` while one waits in `__next__`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::documents::{Documents, Recv, Watch};
use crate::error::Error;

use super::convert::json_to_py;
use super::errors::WatchOverflowError;
use super::FORK_GENERATION;

/// How long `__next__` waits between checks for signals, a closed database
/// and expired keys.
const TICK: Duration = Duration::from_millis(100);

/// Iterator of change events returned by `db.watch(prefix)`.
#[pyclass(name = "WatchIterator", module = "ferrumdb", frozen)]
pub(crate) struct PyWatch {
    watch: Watch,
    docs: Documents,
    fork_generation: u64,
}

impl PyWatch {
    pub(crate) fn new(watch: Watch, docs: Documents, fork_generation: u64) -> Self {
        PyWatch {
            watch,
            docs,
            fork_generation,
        }
    }

    /// Turn one answer of the watch into the iterator's result: `Some` event
    /// tuple, `None` for StopIteration, or the overflow error.
    fn event(&self, py: Python<'_>, recv: Recv) -> PyResult<Option<Option<Py<PyTuple>>>> {
        match recv {
            Recv::Change(change) => {
                let op = PyString::intern(py, change.op.as_str());
                let key = PyString::new(py, &change.key);
                let value = match &change.value {
                    Some(bytes) => json_to_py(py, bytes)?,
                    None => py.None(),
                };
                let tuple =
                    PyTuple::new(py, [op.into_any().unbind(), key.into_any().unbind(), value])?;
                Ok(Some(Some(tuple.unbind())))
            }
            Recv::Closed => Ok(Some(None)),
            Recv::Overflowed { limit } => Err(WatchOverflowError::new_err(format!(
                "watch(prefix={}) fell behind by more than {limit} unread changes (or 64 MiB of \
                 values), so its buffered changes were dropped; start a new watch and re-read the \
                 current state",
                py_repr(py, self.watch.prefix())
            ))),
            Recv::Empty => Ok(None),
        }
    }
}

/// `text` as Python's `repr()` shows it (`'user:'`).
fn py_repr(py: Python<'_>, text: &str) -> String {
    PyString::new(py, text)
        .repr()
        .map_or_else(|_| format!("{text:?}"), |r| r.to_string())
}

#[pymethods]
impl PyWatch {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next `(op, key, value)`, waiting for one; StopIteration once the
    /// watch or the database is closed.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyTuple>>> {
        if FORK_GENERATION.load(Ordering::Relaxed) != self.fork_generation {
            return Err(Error::Forked.into());
        }
        // Fast path: an event is already waiting (no detaching).
        if let Some(out) = self.event(py, self.watch.try_recv())? {
            return Ok(out);
        }
        let (watch, db) = (&self.watch, self.docs.database());
        loop {
            let recv = py.detach(|| {
                if db.is_closed() {
                    // Closed by some other path than our close(): end after
                    // what is queued.
                    match watch.try_recv() {
                        Recv::Empty => {
                            watch.close();
                            Recv::Closed
                        }
                        other => other,
                    }
                } else {
                    // Lets the engine purge (and so report) expired keys.
                    let _ = db.len();
                    watch.recv_timeout(TICK)
                }
            });
            if let Some(out) = self.event(py, recv)? {
                return Ok(out);
            }
            py.check_signals()?;
        }
    }

    /// Every change already waiting, in commit order, without waiting for
    /// more (`[]` if none). On a read-only handle following another process,
    /// each of that process's commits is taken in whole by `next()`, so
    /// `[next(w), *w.take_ready()]` holds whole transactions (what
    /// `ferrumdb push --follow` applies as one PostgreSQL transaction).
    fn take_ready(&self, py: Python<'_>) -> PyResult<Vec<Py<PyTuple>>> {
        if FORK_GENERATION.load(Ordering::Relaxed) != self.fork_generation {
            return Err(Error::Forked.into());
        }
        let mut out = Vec::new();
        while let Some(Some(event)) = self.event(py, self.watch.try_recv())? {
            out.push(event);
        }
        Ok(out)
    }

    /// Stop the watch: later (and currently waiting) `next()` calls end the
    /// iteration, and unread changes are discarded. Idempotent.
    fn close(&self) {
        self.watch.close();
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, _exc_info: &Bound<'_, PyTuple>) -> bool {
        self.watch.close();
        false
    }

    /// The key prefix this watch reports ("" for every key).
    #[getter]
    fn prefix(&self) -> &str {
        self.watch.prefix()
    }

    /// Whether the watch takes no more changes (it or its database was
    /// closed); changes committed before may still be waiting to be read.
    #[getter]
    fn closed(&self) -> bool {
        self.watch.is_closed() || self.docs.database().is_closed()
    }

    /// Most changes that may wait unread before the watch overflows.
    #[getter]
    fn max_events(&self) -> usize {
        self.watch.max_events()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let state = if self.closed() { "closed" } else { "open" };
        format!(
            "<WatchIterator prefix={} {state}>",
            py_repr(py, self.watch.prefix())
        )
    }
}
