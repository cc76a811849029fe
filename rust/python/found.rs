//! Reuse of `find` results as Python strs.
//!
//! A `find` answered by an index returns keys the index already holds, and
//! making (and later freeing) a Python str per key is most of its cost
//! (some 15–20 ns each, even written straight into CPython's layout by
//! `convert::str_list`, against a few for handing out a str that exists).
//! So the last few
//! index-answered results are kept as strs, tagged with the index layer's
//! version ([`crate::documents::Documents::index_version`], which moves on
//! every change to any index, including other processes' writes taken in
//! and keys expiring). A call whose field, value and version match gets a new
//! list of the same strs; any change makes every kept result miss. Results
//! over [`MAX_KEYS`] keys are not kept.

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyList;

/// Results kept.
const SLOTS: usize = 4;
/// Largest result kept, in keys.
pub(super) const MAX_KEYS: usize = 1 << 16;

struct Found {
    field: String,
    /// The value as canonical JSON text.
    value: String,
    version: u64,
    /// A private copy of the result list (never handed out: each hit gets
    /// a copy of it, made in C, where collecting the strs one by one into a
    /// Rust vector cost more).
    keys: Py<PyList>,
}

/// The kept results of one handle (most recent last).
#[derive(Default)]
pub(super) struct FoundCache(Mutex<Vec<Found>>);

impl FoundCache {
    /// A new list of the kept keys for `field == value` at `version`.
    pub(super) fn get<'py>(
        &self,
        py: Python<'py>,
        field: &str,
        value: &str,
        version: u64,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let slots = self.0.lock();
        let Some(found) = slots
            .iter()
            .find(|f| f.version == version && f.field == field && f.value == value)
        else {
            return Ok(None);
        };
        let keys = found.keys.bind(py);
        Ok(Some(keys.get_slice(0, keys.len())))
    }

    /// Keep the strs of `list` (a fresh `find` result) for `field == value`
    /// at `version`, dropping results of older versions and the oldest.
    pub(super) fn put(&self, field: &str, value: String, version: u64, list: &Bound<'_, PyList>) {
        if list.len() > MAX_KEYS {
            return;
        }
        let keys = list.get_slice(0, list.len()).unbind();
        let mut slots = self.0.lock();
        slots.retain(|f| f.version == version && !(f.field == field && f.value == value));
        if slots.len() >= SLOTS {
            slots.remove(0);
        }
        slots.push(Found {
            field: field.to_owned(),
            value,
            version,
            keys,
        });
    }
}
