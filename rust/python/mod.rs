//! The CPython extension `ferrumdb._native` (only with the `python` feature).
//!
//! Thin by design: argument checking, Python <-> JSON transcoding while the
//! interpreter is attached, and every file operation with it detached. The
//! pure-Python package `ferrumdb/` builds the user-facing class on top.

mod clock;
mod convert;
mod db;
mod errors;
mod found;
mod iter;
mod ops;
mod remote;
mod txn;
mod watch;

use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;

/// Bumped in a forked child (via `os.register_at_fork`), so handles opened
/// before the fork refuse to run there instead of sharing file offsets and the
/// writer lock with the parent.
pub(crate) static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Called in the child after `fork()`.
/// `f(*args, **kwargs)` with every write it makes on this thread refusing
/// to wait for a lock: one that would wait raises `BlockingIOError` and
/// writes nothing. For `ferrumdb.aio`, which writes inline on the event
/// loop and hands a write that would wait to its thread pool.
#[pyfunction]
#[pyo3(signature = (f, /, *args, **kwargs))]
fn _without_waiting(
    f: &Bound<'_, PyAny>,
    args: &Bound<'_, pyo3::types::PyTuple>,
    kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
) -> PyResult<Py<PyAny>> {
    crate::engine::without_waiting(|| f.call(args, kwargs).map(Bound::unbind))
}

#[pyfunction]
fn _after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Run the command-line interface with `argv` (without the program name) and
/// return its exit status. The interpreter is detached for the whole session;
/// a `postgresql://` PATH is opened through the Python handle (`remote`).
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| crate::cli::main_with_opener(argv, Some(&remote::open_url)))
}

#[pymodule]
#[pyo3(name = "_native", gil_used = true)]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<db::PyDatabase>()?;
    m.add_class::<iter::PyScanIter>()?;
    m.add_class::<clock::PyManualClock>()?;
    m.add_class::<watch::PyWatch>()?;
    m.add_class::<txn::PyTransaction>()?;
    m.add_class::<remote::PyRemoteStudio>()?;
    m.add_function(wrap_pyfunction!(remote::serve_studio, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(_without_waiting, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(ops::check, m)?)?;
    m.add_function(wrap_pyfunction!(ops::_salvage_in_place, m)?)?;
    m.add("MAX_KEY_BYTES", crate::MAX_KEY_BYTES)?;
    m.add("MAX_VALUE_BYTES", crate::MAX_VALUE_BYTES)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
