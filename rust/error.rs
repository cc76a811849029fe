//! The one public error type of the crate and its `Result` alias.
//!
//! Every variant is something a caller can act on; messages say what happened,
//! where, and what to do. Lower layers' private errors gain file and offset
//! context before they cross into this type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Crate-wide result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in FerrumDB.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A record or header failed its checksum or is malformed somewhere other than
    /// the torn tail of the log. Nothing past `offset` is served; `ferrumdb check`
    /// lists the intact records.
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the first damaged record.
        offset: u64,
        /// What exactly failed.
        reason: String,
    },
    /// Encryption at rest refused the data: a wrong or missing key, a key given
    /// for a plain file, or an encrypted record that fails authentication
    /// (tampered with, moved, or copied from another file). Never served.
    Encryption {
        /// The database file.
        file: PathBuf,
        /// Offset of the record that failed, when a record did.
        offset: Option<u64>,
        /// What failed and what to do.
        reason: String,
    },
    /// The file was written by a newer format version than this build reads.
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Version found in the header.
        found: u16,
        /// Newest version this build understands.
        supported: u16,
    },
    /// Another handle holds the single-writer lock on the database file
    /// (the lock follows the file, whatever path reached it).
    Locked {
        /// The database path.
        path: PathBuf,
        /// The holder's process id, when it can be found (Linux: `/proc/locks`).
        pid: Option<u32>,
        /// The holder is another handle in this very process.
        this_process: bool,
    },
    /// The path names something that is not a regular file (a FIFO, a
    /// device, a socket), so it cannot be a database; nothing was created.
    NotAFile {
        /// The path given.
        path: PathBuf,
        /// What it is instead ("a FIFO (named pipe)", ...).
        kind: &'static str,
    },
    /// The handle was closed; open the database again.
    Closed,
    /// A write was attempted on a handle opened with `read_only`.
    ReadOnly,
    /// The handle was inherited through `fork()` and must not be used in the child.
    Forked,
    /// A write made inside [`crate::engine::without_waiting`] found the
    /// write lock held (by another thread or process) or an index to build
    /// first: it would have waited, so it wrote nothing.
    WouldWait,
    /// A key is empty or longer than [`crate::MAX_KEY_BYTES`].
    InvalidKey {
        /// Why it was rejected.
        reason: String,
    },
    /// A value cannot be stored (not JSON, or too large).
    InvalidValue {
        /// Where in the value (`$` for the whole value).
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A query filter, sort or field path is malformed; `path` names the part
    /// (`filter.score.$gt`).
    InvalidFilter {
        /// Where in the filter.
        path: String,
        /// What is wrong there.
        reason: String,
    },
    /// An update document is malformed (no operators, plain fields beside
    /// them, an unknown operator, a bad operand, two operators on one path),
    /// or its result is out of range in the document `key` (an integer
    /// overflow); `path` names the part (`update.$inc.n`, or the key and
    /// field). Nothing was written.
    InvalidUpdate {
        /// Where in the update, or which key and field.
        path: String,
        /// What is wrong there.
        reason: String,
    },
    /// An update operator met a value of the wrong type in the document
    /// `key` (`$inc` on a string, `$push` on an object, a path through a
    /// number). Nothing was written.
    UpdateTypeMismatch {
        /// The document's key.
        key: String,
        /// The dotted field path.
        path: String,
        /// What was found and what the operator needs.
        reason: String,
    },
    /// A unique index refused a write: `key` would hold `value` at `field`,
    /// which `existing` already holds (for a document without the field,
    /// `value` is `null`, as in MongoDB). Nothing was written.
    DuplicateKey {
        /// The uniquely indexed field.
        field: String,
        /// The duplicated value, as JSON text.
        value: String,
        /// The key whose write was refused (empty when creating the index).
        key: String,
        /// A key that already holds the value.
        existing: String,
    },
    /// A transaction read `key`, and another write changed it before the
    /// transaction committed; nothing was written. Run the transaction again.
    TransactionConflict {
        /// The first key found changed.
        key: String,
    },
    /// A configuration string (fsync policy, env var) could not be parsed.
    InvalidConfig(String),
    /// An earlier sync of the database file failed, so this handle refuses
    /// all work (see docs/promises.md: after a failed sync nothing of unknown durability
    /// is acknowledged or served). Close it and open the database again.
    Poisoned {
        /// The database file.
        path: PathBuf,
        /// The error of the failed sync (its errno is kept).
        source: io::Error,
    },
    /// A compaction (or close) finished and the data is safe, but the hint
    /// file that speeds up the next open could not be written; the next
    /// open reads the whole log instead.
    HintNotWritten {
        /// The database file.
        path: PathBuf,
        /// The error writing the hint.
        source: io::Error,
    },
    /// Another backend behind the REPL and Studio (PostgreSQL, reached
    /// through the Python driver, see [`crate::backend`]) refused or failed;
    /// `message` is its own, naming the backend where that helps.
    Backend {
        /// What kind of failure, so callers can answer it (Studio's status code).
        kind: BackendErrorKind,
        /// What happened and what to do, as the backend put it.
        message: String,
    },
    /// An operating-system I/O error, with the file it happened on.
    Io {
        /// The file involved, when known.
        path: Option<PathBuf>,
        /// The underlying error.
        source: io::Error,
    },
}

/// The kinds of [`Error::Backend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendErrorKind {
    /// The input was refused (a bad key, value, filter, update or argument).
    BadInput,
    /// The data refuses it as it stands (a unique index, a transaction conflict).
    Conflict,
    /// The handle is read-only.
    ReadOnly,
    /// The backend cannot be reached now (a lost connection, a closed handle).
    Unavailable,
    /// The backend has no such operation (a file backup of a PostgreSQL table).
    Unsupported,
    /// Anything else.
    Failed,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: Some(path.into()),
            source,
        }
    }

    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}

impl Error {
    pub(crate) fn encryption(
        file: impl Into<PathBuf>,
        offset: Option<u64>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Encryption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Corruption { file, offset, reason } => write!(
                f,
                "{reason} in {} at offset {offset}; run `ferrumdb check {}` to list intact records",
                file.display(),
                file.display()
            ),
            Error::Encryption { file, offset: Some(offset), reason } => write!(
                f,
                "{reason} in {} at offset {offset}: the encrypted record was tampered with, moved or copied from another file; it is never served",
                file.display()
            ),
            Error::Encryption { file, offset: None, reason } => {
                write!(f, "{}: {reason}", file.display())
            }
            Error::UnsupportedVersion { file, found, supported } => write!(
                f,
                "{} uses on-disk format version {found}, but this FerrumDB reads versions up to {supported}; upgrade ferrumdb",
                file.display()
            ),
            Error::Locked { path, this_process: true, .. } => write!(
                f,
                "{} is already open for writing by another handle in this process; close it or share that handle (or open this one read-only)",
                path.display()
            ),
            Error::NotAFile { path, kind } => write!(
                f,
                "{} is {kind}, not a database file; give the path of a FerrumDB file (or of a new one to create)",
                path.display()
            ),
            Error::Locked { path, pid, .. } => {
                write!(f, "{} is open for writing by another process", path.display())?;
                if let Some(pid) = pid {
                    write!(f, " (pid {pid})")?;
                }
                write!(f, "; close it there, or open this one read-only")
            }
            Error::Closed => write!(f, "the database is closed; open it again to keep using it"),
            Error::ReadOnly => write!(f, "the database was opened read-only; open it without read_only to write"),
            Error::WouldWait => write!(
                f,
                "the write would wait for the write lock (held by another thread or process); nothing was written"
            ),
            Error::Forked => write!(
                f,
                "this handle was opened in the parent process and cannot be used after fork(); open the database again in the child"
            ),
            Error::InvalidKey { reason } => write!(f, "invalid key: {reason}"),
            Error::InvalidValue { path, reason } => write!(f, "invalid value at {path}: {reason}"),
            Error::InvalidFilter { path, reason } => write_query_error(f, path, reason),
            Error::InvalidUpdate { path, reason } => {
                write!(f, "invalid update at {path}: {reason}; nothing was written")
            }
            Error::UpdateTypeMismatch { key, path, reason } => write!(
                f,
                "cannot update {key:?} at {path}: {reason}; nothing was written"
            ),
            Error::DuplicateKey { field, value, key, existing } if key.is_empty() => write!(
                f,
                "cannot create the unique index on {field:?}: {existing:?} and another document both hold {value} there; change or delete one of them first"
            ),
            Error::DuplicateKey { field, value, key, existing } => write!(
                f,
                "duplicate key: the unique index on {field:?} already has {value} (in {existing:?}), so {key:?} cannot hold it too; nothing was written"
            ),
            Error::TransactionConflict { key } => write!(
                f,
                "transaction conflict: {key:?} was changed by another write after this transaction read it; nothing was written, run the transaction again"
            ),
            Error::InvalidConfig(msg) => write!(f, "invalid configuration: {msg}"),
            Error::Poisoned { path, source } => write!(
                f,
                "{}: an earlier sync of {} failed ({}: {source}); this handle refuses all work so that nothing of unknown durability is acknowledged or served: close it and reopen the database, which recovers from what is on disk",
                path.display(),
                path.display(),
                errno_name(source)
            ),
            Error::HintNotWritten { path, source } => write!(
                f,
                "{}: the data is safe, but its hint file could not be written ({}: {source}); the next open reads the whole log instead, which only takes longer",
                path.display(),
                errno_name(source)
            ),
            Error::Backend { message, .. } => f.write_str(message),
            Error::Io { path: Some(p), source } => write!(f, "I/O error on {}: {source}", p.display()),
            Error::Io { path: None, source } => write!(f, "I/O error: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. }
            | Error::Poisoned { source, .. }
            | Error::HintNotWritten { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::Io { path: None, source }
    }
}

/// The symbolic name of an OS error ("EIO"), for messages.
/// A malformed part of a query, named by what the user passed: `invalid
/// filter at filter.age.$gt: …`, `invalid sort: …`, `invalid sort at
/// sort[1]: …`, `invalid fields at fields[0]: …`, `invalid field "a..b": …`
/// (an index or `find` field). The one wording for [`Error::InvalidFilter`]
/// and the query layer's own error.
pub(crate) fn write_query_error(
    f: &mut fmt::Formatter<'_>,
    path: &str,
    reason: &str,
) -> fmt::Result {
    for part in ["sort", "fields"] {
        if path == part {
            return write!(f, "invalid {part}: {reason}");
        }
        if path.starts_with(part) && path[part.len()..].starts_with('[') {
            return write!(f, "invalid {part} at {path}: {reason}");
        }
    }
    if path.starts_with("field ") {
        return write!(f, "invalid {path}: {reason}");
    }
    write!(f, "invalid filter at {path}: {reason}")
}

fn errno_name(e: &io::Error) -> String {
    #[cfg(unix)]
    {
        let name = match e.raw_os_error() {
            Some(libc::EIO) => Some("EIO"),
            Some(libc::ENOSPC) => Some("ENOSPC"),
            Some(libc::EDQUOT) => Some("EDQUOT"),
            Some(libc::EROFS) => Some("EROFS"),
            Some(libc::EBADF) => Some("EBADF"),
            Some(libc::EINVAL) => Some("EINVAL"),
            Some(libc::EFBIG) => Some("EFBIG"),
            Some(libc::ENOMEM) => Some("ENOMEM"),
            Some(libc::EACCES) => Some("EACCES"),
            Some(libc::EPERM) => Some("EPERM"),
            _ => None,
        };
        if let Some(name) = name {
            return name.to_string();
        }
    }
    match e.raw_os_error() {
        Some(n) => format!("errno {n}"),
        None => format!("{:?}", e.kind()),
    }
}
