//! Iteration over keys, values or items in key order, a page at a time.
//!
//! Each page is fetched with the interpreter detached and is bounded, so
//! iterating a huge database holds neither all keys in memory nor the GIL
//! during reads. Writes made while iterating are seen or not depending on
//! whether the cursor has passed them; iteration never fails because of them.
//! After the database is closed, the next step raises `ClosedError`, even
//! with a page still buffered.

use std::collections::VecDeque;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::engine::{Database, ValueBuf};

use super::convert::json_to_py;

const PAGE: usize = 512;

/// What each step of the iterator yields.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Yield {
    Keys,
    Values,
    Items,
}

/// Iterator returned by `iter(db)`, `scan()`, `values()` and `items()`.
#[pyclass(name = "ScanIterator", module = "ferrumdb")]
pub(crate) struct PyScanIter {
    db: Database,
    prefix: String,
    after: Option<String>,
    mode: Yield,
    keys: VecDeque<String>,
    items: VecDeque<(String, ValueBuf)>,
    done: bool,
}

impl PyScanIter {
    pub(crate) fn new(db: Database, prefix: String, mode: Yield) -> Self {
        PyScanIter {
            db,
            prefix,
            after: None,
            mode,
            keys: VecDeque::new(),
            items: VecDeque::new(),
            done: false,
        }
    }

    fn refill(&mut self, py: Python<'_>) -> PyResult<()> {
        let (db, prefix, after) = (&self.db, self.prefix.as_str(), self.after.as_deref());
        if self.mode == Yield::Keys {
            let page = py.detach(|| db.keys_page(prefix, after, PAGE))?;
            self.done = page.len() < PAGE;
            self.after = page.last().cloned().or(self.after.take());
            self.keys.extend(page);
        } else {
            let page = py.detach(|| db.items_page(prefix, after, PAGE))?;
            self.done = page.len() < PAGE;
            self.after = page.last().map(|(k, _)| k.clone()).or(self.after.take());
            self.items.extend(page);
        }
        Ok(())
    }
}

#[pymethods]
impl PyScanIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        // A page fetched before close() must not be served after it: every
        // step checks (one atomic load), not only the steps that refill.
        if self.db.is_closed() {
            return Err(crate::error::Error::Closed.into());
        }
        if self.keys.is_empty() && self.items.is_empty() {
            if self.done {
                return Ok(None);
            }
            self.refill(py)?;
        }
        match self.mode {
            Yield::Keys => Ok(self
                .keys
                .pop_front()
                .map(|k| k.into_pyobject(py).map(|s| s.into_any().unbind()))
                .transpose()?),
            Yield::Values => match self.items.pop_front() {
                None => Ok(None),
                Some((_, v)) => Ok(Some(json_to_py(py, v.as_bytes())?)),
            },
            Yield::Items => match self.items.pop_front() {
                None => Ok(None),
                Some((k, v)) => {
                    let value = json_to_py(py, v.as_bytes())?;
                    Ok(Some(
                        PyTuple::new(py, [k.into_pyobject(py)?.into_any().unbind(), value])?
                            .into_any()
                            .unbind(),
                    ))
                }
            },
        }
    }
}
