//! Module-level operations on database files: `check` and `_salvage_in_place`.
//!
//! They work on a path, not an open handle: a damaged database cannot be
//! opened, and checking needs no writer lock. Their dicts are the serialized
//! `storage::CheckReport` / `engine::SalvageReport` (pythonize), the same
//! shape `ferrumdb check` prints.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::crypto::EncryptionKey;
use crate::engine::Database;
use crate::storage;

use super::db::encryption_key_arg;

/// Verify every record of the database file at `path` (no lock needed) and
/// return a report: `ok` (no damage), counts, and each damaged region as
/// `{"offset", "length", "reason"}`.
/// An encrypted file needs its `encryption_key`.
#[pyfunction]
#[pyo3(signature = (path, *, encryption_key = None))]
pub(super) fn check<'py>(
    py: Python<'py>,
    path: PathBuf,
    encryption_key: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let key = key_arg(encryption_key)?;
    let report = py.detach(|| storage::check_log(&path, key.as_ref()))?;
    Ok(pythonize::pythonize(py, &report)?)
}

fn key_arg(key: Option<&Bound<'_, PyAny>>) -> PyResult<Option<EncryptionKey>> {
    key.filter(|k| !k.is_none())
        .map(encryption_key_arg)
        .transpose()
}

/// Rebuild the damaged database at `path` in place, under its writer lock
/// (see `Database::salvage_in_place`); returns the check report of the
/// damaged file plus `keys` and `kept` (where the original now is), or
/// `None` if the file turned out intact.
#[pyfunction]
#[pyo3(signature = (path, *, encryption_key = None))]
pub(super) fn _salvage_in_place<'py>(
    py: Python<'py>,
    path: PathBuf,
    encryption_key: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let key = key_arg(encryption_key)?;
    let Some((report, kept)) = py.detach(|| Database::salvage_in_place(&path, key.as_ref()))?
    else {
        return Ok(None);
    };
    let out = pythonize::pythonize(py, &report)?.cast_into::<PyDict>()?;
    out.set_item("kept", kept.to_string_lossy())?;
    Ok(Some(out))
}
