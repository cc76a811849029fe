//! Module-level operations on database files: `check` and `_salvage_in_place`.
//!
//! They work on a path, not an open handle: a damaged database cannot be
//! opened, and checking needs no writer lock.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::crypto::EncryptionKey;
use crate::engine::Database;
use crate::storage::{self, CheckReport, Damage};

use super::db::encryption_key_arg;

fn damage_dict<'py>(py: Python<'py>, d: &Damage) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("offset", d.offset)?;
    out.set_item("length", d.len)?;
    out.set_item("reason", &d.reason)?;
    Ok(out)
}

fn report_dict<'py>(py: Python<'py>, r: &CheckReport) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("file", r.file.to_string_lossy())?;
    out.set_item("file_bytes", r.file_bytes)?;
    out.set_item("ok", r.is_clean())?;
    out.set_item("records", r.records)?;
    out.set_item("writes", r.writes)?;
    out.set_item("transactions", r.transactions)?;
    let damage = PyList::empty(py);
    for d in &r.damage {
        damage.append(damage_dict(py, d)?)?;
    }
    out.set_item("damage", damage)?;
    out.set_item("damaged_bytes", r.damaged_bytes())?;
    match &r.torn_tail {
        Some(t) => out.set_item("torn_tail", damage_dict(py, t)?)?,
        None => out.set_item("torn_tail", py.None())?,
    }
    Ok(out)
}

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
) -> PyResult<Bound<'py, PyDict>> {
    let key = key_arg(encryption_key)?;
    let report = py.detach(|| storage::check_log(&path, key.as_ref()))?;
    report_dict(py, &report)
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
    let out = report_dict(py, &report.check)?;
    out.set_item("keys", report.keys)?;
    out.set_item("kept", kept.to_string_lossy())?;
    Ok(Some(out))
}
