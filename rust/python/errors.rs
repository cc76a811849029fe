//! The one place that decides which Python exception a Rust error becomes.
//!
//! FerrumDB's own classes are defined in `ferrumdb/errors.py` (plain Python
//! classes with docstrings) and imported here; standard classes keep their
//! meaning: `ValueError` for a bad key or value, `OSError` (with its errno
//! subclass and the file name) for I/O.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::error::Error;

pyo3::import_exception!(ferrumdb.errors, FerrumError);
pyo3::import_exception!(ferrumdb.errors, CorruptionError);
pyo3::import_exception!(ferrumdb.errors, EncryptionError);
pyo3::import_exception!(ferrumdb.errors, LockedError);
pyo3::import_exception!(ferrumdb.errors, ClosedError);
pyo3::import_exception!(ferrumdb.errors, ReadOnlyError);
pyo3::import_exception!(ferrumdb.errors, WatchOverflowError);
pyo3::import_exception!(ferrumdb.errors, TransactionConflict);

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        let msg = err.to_string();
        match err {
            Error::Corruption { .. } => CorruptionError::new_err(msg),
            Error::Encryption { .. } => EncryptionError::new_err(msg),
            Error::Locked { .. } => LockedError::new_err(msg),
            Error::Closed => ClosedError::new_err(msg),
            Error::ReadOnly => ReadOnlyError::new_err(msg),
            Error::TransactionConflict { .. } => TransactionConflict::new_err(msg),
            Error::InvalidKey { .. }
            | Error::InvalidValue { .. }
            | Error::InvalidFilter { .. }
            | Error::InvalidConfig(_)
            | Error::NotAFile { .. } => PyValueError::new_err(msg),
            Error::Io { path, source } => os_error(&source, source.to_string(), path),
            // The message says why (and what to do); the errno is the sync's.
            Error::Poisoned { path, source } | Error::HintNotWritten { path, source } => {
                os_error(&source, msg, Some(path))
            }
            _ => FerrumError::new_err(msg),
        }
    }
}

/// OSError(errno, strerror, filename) picks the errno subclass
/// (FileNotFoundError, PermissionError, ...) by itself.
fn os_error(source: &std::io::Error, message: String, path: Option<std::path::PathBuf>) -> PyErr {
    let errno = source.raw_os_error().unwrap_or(0);
    let filename = path.map(|p| p.to_string_lossy().into_owned());
    PyOSError::new_err((errno, message, filename))
}

impl From<crate::server::StudioError> for PyErr {
    fn from(err: crate::server::StudioError) -> PyErr {
        use crate::server::StudioError;
        let msg = err.to_string();
        match err {
            StudioError::TokenRequired { .. } | StudioError::InvalidOptions(_) => {
                PyValueError::new_err(msg)
            }
            // OSError(errno, message): "port in use" becomes OSError with errno EADDRINUSE.
            StudioError::Bind { source, .. } | StudioError::Runtime(source) => {
                PyOSError::new_err((source.raw_os_error().unwrap_or(0), msg))
            }
        }
    }
}
