//! `ferrumdb._native.Transaction`: buffered writes committed all at once.
//!
//! Two ways in: `db.transaction()` gives one bound to a database, used as a
//! context manager whose reads see its own writes and are remembered for the
//! conflict check; `Transaction()` alone is the write-only builder of the
//! seed API (`db.commit(Transaction().set(k, v).delete(k2))`). Values are
//! converted to JSON at the call, so a bad value raises there and the rest of
//! the transaction is untouched. Commit detaches from the interpreter for the
//! write; the state lock is never held across that.

use std::collections::HashMap;

use parking_lot::Mutex;
use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

use crate::engine::{BatchOp, Database, ReadStamp, WriteBatch};

use super::convert::{json_to_py, py_to_json};
use super::db::{key_str, lookup_key, optional_ttl, PyDatabase};

#[derive(Default)]
struct TxState {
    batch: WriteBatch,
    reads: HashMap<String, ReadStamp>,
    finished: bool,
}

/// What a read inside the transaction found.
enum Seen {
    Value(Py<PyAny>),
    Missing,
}

/// Writes applied together or not at all (`db.transaction()` or `Transaction()`).
#[pyclass(name = "Transaction", module = "ferrumdb", subclass, frozen)]
pub(crate) struct PyTransaction {
    db: Option<Py<PyDatabase>>,
    state: Mutex<TxState>,
}

const FINISHED: &str =
    "this transaction was already committed or discarded; start a new one with db.transaction()";

fn key_error(key: &str) -> PyErr {
    PyKeyError::new_err(key.to_string())
}

impl PyTransaction {
    /// Run `f` on the open state, or fail if the transaction is over.
    fn with_state<T>(&self, f: impl FnOnce(&mut TxState) -> PyResult<T>) -> PyResult<T> {
        let mut st = self.state.lock();
        if st.finished {
            return Err(PyRuntimeError::new_err(FINISHED));
        }
        f(&mut st)
    }

    fn engine(&self) -> PyResult<&Database> {
        match &self.db {
            Some(db) => db.get().db(),
            None => {
                Err(PyRuntimeError::new_err(
                    "Transaction() is a write-only builder: pass it to db.commit(); use `with db.transaction() as tx:` to read inside a transaction",
                ))
            }
        }
    }

    /// Read `key` as the transaction sees it: its own write if it made one,
    /// else the database's value, remembered for the conflict check (and
    /// served from that memory on later reads, so reads repeat).
    fn read(&self, py: Python<'_>, key: &str) -> PyResult<Seen> {
        self.with_state(|st| {
            if let Some(op) = st.batch.get(key) {
                return Ok(match op {
                    BatchOp::Put { value, .. } => Seen::Value(json_to_py(py, value)?),
                    BatchOp::Delete => Seen::Missing,
                });
            }
            if !st.reads.contains_key(key) {
                let stamp = self.engine()?.read_stamped(key)?;
                st.reads.insert(key.to_string(), stamp);
            }
            match st.reads.get(key).and_then(ReadStamp::value) {
                Some(bytes) => Ok(Seen::Value(json_to_py(py, bytes)?)),
                None => Ok(Seen::Missing),
            }
        })
    }

    fn put(
        &self,
        key: &str,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let ttl = optional_ttl(ttl)?;
        let mut json = Vec::new();
        py_to_json(value, &mut json).map_err(|e| e.into_pyerr())?;
        self.with_state(|st| {
            match ttl {
                None => st.batch.put(key, json),
                Some(ttl) => st.batch.put_with_ttl(key, json, ttl),
            }
            .map_err(PyErr::from)
        })
    }

    fn blind_delete(&self, key: &str) -> PyResult<()> {
        self.with_state(|st| st.batch.delete(key).map_err(PyErr::from))
    }
}

#[pymethods]
impl PyTransaction {
    /// A transaction on `db` (as `db.transaction()` makes), or with no
    /// database a write-only builder for `db.commit(...)`.
    #[new]
    #[pyo3(signature = (db = None))]
    fn new(db: Option<Py<PyDatabase>>) -> Self {
        PyTransaction {
            db,
            state: Mutex::new(TxState::default()),
        }
    }

    /// Store `value` under `key` at commit (`ttl` in seconds counts from the
    /// commit). Returns the transaction, so calls chain.
    #[pyo3(signature = (key, value, ttl = None))]
    fn set<'py>(
        slf: Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        slf.get().put(key_str(key)?, value, ttl)?;
        Ok(slf)
    }

    /// Remove `key` at commit (nothing happens if it is missing then).
    /// Returns the transaction, so calls chain.
    fn delete<'py>(slf: Bound<'py, Self>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        match lookup_key(key)? {
            Some(k) => slf.get().blind_delete(k)?,
            // No key can be that str: nothing to delete.
            None => slf.get().with_state(|_| Ok(()))?,
        }
        Ok(slf)
    }

    /// The value under `key` as this transaction sees it, or `default`.
    #[pyo3(signature = (key, default = None))]
    fn get(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let seen = match lookup_key(key)? {
            Some(k) => self.read(py, k)?,
            None => self.with_state(|_| Ok(Seen::Missing))?,
        };
        match seen {
            Seen::Value(v) => Ok(v),
            Seen::Missing => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Some(k) = lookup_key(key)? else {
            self.with_state(|_| Ok(()))?;
            return Err(PyKeyError::new_err(key.clone().unbind()));
        };
        match self.read(py, k)? {
            Seen::Value(v) => Ok(v),
            Seen::Missing => Err(key_error(k)),
        }
    }

    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.put(key_str(key)?, value, None)
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let Some(k) = lookup_key(key)? else {
            self.with_state(|_| Ok(()))?;
            return Err(PyKeyError::new_err(key.clone().unbind()));
        };
        match self.read(py, k)? {
            Seen::Value(_) => self.blind_delete(k),
            Seen::Missing => Err(key_error(k)),
        }
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        match key.cast::<PyString>() {
            Ok(_) => match lookup_key(key)? {
                Some(k) => Ok(matches!(self.read(py, k)?, Seen::Value(_))),
                None => self.with_state(|_| Ok(false)),
            },
            Err(_) => Ok(false),
        }
    }

    /// Number of keys this transaction writes.
    fn __len__(&self) -> usize {
        self.state.lock().batch.len()
    }

    /// Whether the transaction was committed or discarded.
    #[getter]
    fn finished(&self) -> bool {
        self.state.lock().finished
    }

    /// Apply every write at once (to `db`, or to the database this
    /// transaction belongs to). Raises `TransactionConflict`, writing
    /// nothing, if a key it read has changed since.
    #[pyo3(signature = (db = None))]
    fn commit(&self, py: Python<'_>, db: Option<Py<PyDatabase>>) -> PyResult<()> {
        let target = match (&self.db, db) {
            (Some(own), Some(other)) if !own.is(&other) => {
                return Err(PyValueError::new_err(
                    "this transaction belongs to another database; commit it there",
                ))
            }
            (Some(own), _) => own.clone_ref(py),
            (None, Some(other)) => other,
            (None, None) => {
                return Err(PyRuntimeError::new_err(
                    "Transaction() has no database: use db.commit(tx)",
                ))
            }
        };
        let engine = target.get().db()?;
        let (batch, reads) = self.with_state(|st| {
            st.finished = true;
            Ok((std::mem::take(&mut st.batch), std::mem::take(&mut st.reads)))
        })?;
        py.detach(|| engine.commit(&batch, reads.iter().map(|(k, s)| (k.as_str(), s))))?;
        Ok(())
    }

    /// Drop every buffered write; the transaction is over.
    fn discard(&self) {
        let mut st = self.state.lock();
        st.finished = true;
        st.batch = WriteBatch::new();
        st.reads.clear();
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        if slf.get().db.is_none() {
            return Err(PyRuntimeError::new_err(
                "Transaction() is a write-only builder; use `with db.transaction() as tx:`",
            ));
        }
        Ok(slf)
    }

    /// Commit when the block ends normally; discard when it raised.
    #[pyo3(signature = (exc_type, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if exc_type.is_some() {
            self.discard();
        } else if !self.state.lock().finished {
            self.commit(py, None)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let st = self.state.lock();
        let state = if st.finished { "finished" } else { "open" };
        let on = match &self.db {
            Some(db) => match db.get().db() {
                Ok(engine) => format!(
                    " on {}",
                    engine.path().map_or(":memory:".into(), |p| format!(
                        "{:?}",
                        p.display().to_string()
                    ))
                ),
                Err(_) => " on a closed database".into(),
            },
            None => " (builder)".into(),
        };
        format!(
            "<ferrumdb.Transaction {state}{on}: {} writes, {} reads>",
            st.batch.len(),
            st.reads.len()
        )
    }
}
