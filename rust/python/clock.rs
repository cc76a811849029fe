//! `ferrumdb.ManualClock`: a clock for tests of code that uses TTLs.
//!
//! Passing one to `ferrumdb.open(..., clock=...)` makes expiry follow it
//! instead of the wall clock, so a test advances time instead of sleeping.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::Clock;

/// A clock that moves only when `advance()` is called, for testing TTLs.
#[pyclass(name = "ManualClock", module = "ferrumdb", frozen)]
pub(crate) struct PyManualClock {
    pub(crate) clock: Clock,
}

/// Seconds (finite, non-negative) as whole milliseconds.
pub(crate) fn seconds_to_ms(what: &str, seconds: f64) -> PyResult<u64> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(PyValueError::new_err(format!(
            "{what} must be a finite, non-negative number of seconds, not {seconds}"
        )));
    }
    Ok((seconds * 1000.0).round() as u64)
}

#[pymethods]
impl PyManualClock {
    /// A manual clock starting at `start` (Unix seconds; default: now).
    #[new]
    #[pyo3(signature = (start = None))]
    fn new(start: Option<f64>) -> PyResult<Self> {
        let start_ms = match start {
            Some(s) => seconds_to_ms("start", s)?,
            None => Clock::System.now_ms(),
        };
        Ok(PyManualClock {
            clock: Clock::manual(start_ms),
        })
    }

    /// Move the clock forward by `seconds`.
    fn advance(&self, seconds: f64) -> PyResult<()> {
        self.clock.advance_ms(seconds_to_ms("seconds", seconds)?);
        Ok(())
    }

    /// The clock's time, in Unix seconds.
    fn now(&self) -> f64 {
        self.clock.now_ms() as f64 / 1000.0
    }

    fn __repr__(&self) -> String {
        format!("ManualClock({:.3})", self.now())
    }
}
