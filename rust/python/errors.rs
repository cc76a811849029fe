//! The one place that decides which Python exception a Rust error becomes.
//!
//! FerrumDB's own classes are defined in `ferrumdb/errors.py` (plain Python
//! classes with docstrings) and imported here; standard classes keep their
//! meaning: `ValueError` for a bad key or value, `OSError` (with its errno
//! subclass and the file name) for I/O.

use pyo3::exceptions::{PyBlockingIOError, PyOSError, PyTypeError, PyValueError};
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
pyo3::import_exception!(ferrumdb.errors, DuplicateKeyError);

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
            Error::DuplicateKey { .. } => DuplicateKeyError::new_err(msg),
            Error::InvalidKey { .. }
            | Error::InvalidValue { .. }
            | Error::InvalidFilter { .. }
            | Error::InvalidUpdate { .. }
            | Error::InvalidConfig(_)
            | Error::NotAFile { .. } => PyValueError::new_err(msg),
            Error::UpdateTypeMismatch { .. } => PyTypeError::new_err(msg),
            // Only inside `_without_waiting` (ferrumdb.aio), which then
            // runs the call off the loop.
            Error::WouldWait => PyBlockingIOError::new_err((libc::EAGAIN, msg)),
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
    let errno = errno_of(source);
    let filename = path.map(|p| p.to_string_lossy().into_owned());
    PyOSError::new_err((errno, message, filename))
}

/// The errno behind `e`. Crates that add context to an OS error (tempfile
/// wraps it with the path, for one) return a custom `io::Error` whose own
/// `raw_os_error` is `None`, which made export errors `OSError(0, ...)`
/// instead of `PermissionError` or EMFILE: so the wrapped errors are
/// searched too, and an error with no OS code at all gets the errno of its
/// kind. 0 only when nothing fits.
fn errno_of(e: &std::io::Error) -> i32 {
    if let Some(code) = e.raw_os_error() {
        return code;
    }
    let mut inner: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(err) = inner {
        if let Some(code) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
        {
            return code;
        }
        inner = err.source();
    }
    errno_of_kind(e.kind())
}

fn errno_of_kind(kind: std::io::ErrorKind) -> i32 {
    use std::io::ErrorKind::*;
    match kind {
        NotFound => libc::ENOENT,
        PermissionDenied => libc::EACCES,
        AlreadyExists => libc::EEXIST,
        StorageFull => libc::ENOSPC,
        ReadOnlyFilesystem => libc::EROFS,
        IsADirectory => libc::EISDIR,
        NotADirectory => libc::ENOTDIR,
        QuotaExceeded => libc::EDQUOT,
        FileTooLarge => libc::EFBIG,
        InvalidFilename => libc::ENAMETOOLONG,
        TimedOut => libc::ETIMEDOUT,
        Interrupted => libc::EINTR,
        _ => 0,
    }
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
