//! Python value <-> JSON bytes for the document hot path, and the value rules that go with it.
//! `encode` writes Python objects as compact JSON (or, for query arguments, straight into a
//! `serde_json::Value` by the same rules); `decode` builds Python objects from JSON
//! through [`crate::json`], a hand-written single-pass parser that accepts exactly what
//! serde_json accepts (it needs no Python, so it lives outside this feature). Transcoding
//! directly, with no `serde_json::Value` or Python `json` module in between, is what keeps
//! set/get at orjson speed. Nesting is limited to [`crate::json::MAX_DEPTH`] both ways, so
//! every value written reads back.

mod decode;
mod encode;

use std::fmt;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::PyErr;

pub use decode::{json_to_py, str_list, validate_json};
pub use encode::{py_to_json, py_to_value};

/// Why a Python value was rejected.
///
/// `path` names the offending place, like `$`, `$.address.city`, `$.tags[2]` or
/// `$["a key with spaces"]`. `message` is the complete sentence shown to the user and already
/// contains `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    /// Which exception this becomes.
    pub kind: ConvertErrorKind,
    /// Where in the value the problem is, `$` being the value itself.
    pub path: String,
    /// The full sentence for the user, path included.
    pub message: String,
}

/// Which Python exception a [`ConvertError`] becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertErrorKind {
    /// The value has a type JSON cannot hold (-> `TypeError`).
    Type,
    /// The type is fine but this value is not (NaN, huge int, lone surrogate, cycle, too deep)
    /// (-> `ValueError`).
    Value,
}

impl ConvertError {
    /// The Python exception for this error: `TypeError` or `ValueError` carrying `message`.
    pub fn into_pyerr(self) -> PyErr {
        match self.kind {
            ConvertErrorKind::Type => PyTypeError::new_err(self.message),
            ConvertErrorKind::Value => PyValueError::new_err(self.message),
        }
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConvertError {}

impl From<ConvertError> for PyErr {
    fn from(err: ConvertError) -> PyErr {
        err.into_pyerr()
    }
}
