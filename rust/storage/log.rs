//! A log file as a whole: create it with a header, open it and validate the
//! header, and unlock an encrypted one. Its records are read by
//! [`super::frame`] (one at a time) and [`super::replay`] (in order); for an
//! encrypted file every record is an envelope (see `crate::format`), sealed
//! and opened there, so the engine never sees the difference.

use std::fs::File;
use std::io::{self, Write};
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::crypto::{CryptoError, EncryptionKey};
use crate::error::{Error, Result};
use crate::format::{DecodeError, FileHeader, ENCRYPTED_HEADER_LEN, ENVELOPE_OVERHEAD};

use super::fault::{self, Op};
use super::paths::{self, Access};
use super::{sync_parent_dir, Medium, Seal};

/// A log's bytes ([`Medium`], which it dereferences to), plus the seal of an
/// encrypted file and where its records start.
#[derive(Debug)]
pub struct Log {
    /// The bytes.
    pub medium: Medium,
    /// Present for an encrypted file.
    pub seal: Option<Arc<Seal>>,
    data_start: u64,
}

impl Deref for Log {
    type Target = Medium;

    fn deref(&self) -> &Medium {
        &self.medium
    }
}

impl Log {
    /// A log over `medium` whose header is `header`.
    pub fn new(medium: Medium, header: &FileHeader, seal: Option<Arc<Seal>>) -> Self {
        Log {
            medium,
            seal,
            data_start: header.header_len() as u64,
        }
    }

    /// An empty log that holds no file: what a closed handle keeps, so
    /// closing releases the file's mapping at once, not when the last
    /// clone of the handle is dropped.
    pub fn released() -> Self {
        Log {
            medium: Medium::Memory(RwLock::new(Vec::new())),
            seal: None,
            data_start: 0,
        }
    }

    /// Offset of the first record (the header's length).
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Bytes each record takes on disk beyond its plain encoding.
    pub fn record_overhead(&self) -> u64 {
        if self.seal.is_some() {
            ENVELOPE_OVERHEAD as u64
        } else {
            0
        }
    }

    /// Seal `buf` (exactly one encoded record, to be written at `offset`) into
    /// its envelope when the file is encrypted; leave it as is otherwise.
    ///
    /// # Errors
    /// [`Error::Encryption`] if no nonce can be drawn or the key was wiped.
    pub fn seal_record(&self, name: &Path, buf: &mut Vec<u8>, offset: u64) -> Result<()> {
        match &self.seal {
            None => Ok(()),
            Some(seal) => seal
                .seal_record(buf, offset)
                .map_err(|e| Error::encryption(name, None, e.to_string())),
        }
    }

    /// The same log with room to append `needed` bytes (see [`Medium::grow`]).
    ///
    /// # Errors
    /// As [`Medium::grow`].
    pub fn grow(&self, needed: u64) -> io::Result<Log> {
        Ok(Log {
            medium: self.medium.grow(needed)?,
            seal: self.seal.clone(),
            data_start: self.data_start,
        })
    }

    /// Switch a file log to appends through a shared mapping (see
    /// [`Medium::map_for_append`]); other media are returned as they are.
    ///
    /// # Errors
    /// As [`Medium::map_for_append`].
    pub fn map_for_append(self, end: u64) -> io::Result<Log> {
        let Log {
            medium,
            seal,
            data_start,
        } = self;
        let medium = match medium {
            Medium::Disk(file) => Medium::map_for_append(file, end)?,
            other => other,
        };
        Ok(Log {
            medium,
            seal,
            data_start,
        })
    }

    /// Destroy the key material of an encrypted log (on close).
    pub fn wipe_key(&self) {
        if let Some(seal) = &self.seal {
            seal.wipe();
        }
    }
}

/// A log opened and validated, ready for replay.
#[derive(Debug)]
pub struct OpenedLog {
    /// The bytes.
    pub medium: Log,
    /// Its header.
    pub header: FileHeader,
}

pub(super) fn map_decode(file: &Path, offset: u64, e: DecodeError) -> Error {
    match e {
        DecodeError::UnsupportedVersion(found) => Error::UnsupportedVersion {
            file: file.to_path_buf(),
            found,
            supported: crate::format::VERSION,
        },
        DecodeError::BadMagic => {
            Error::corruption(file, offset, "not a FerrumDB database file (bad magic)")
        }
        DecodeError::Truncated if offset == 0 => {
            Error::corruption(file, 0, "truncated file header")
        }
        DecodeError::Checksum if offset == 0 => {
            Error::corruption(file, 0, "file header checksum mismatch")
        }
        other => Error::corruption(file, offset, format!("record {other}")),
    }
}

/// The header of a new file: plain, or encrypted under `seal`.
///
/// # Errors
/// [`Error::Encryption`] if the key check cannot be made.
pub fn new_header(name: &Path, generation: u64, seal: Option<&Seal>) -> Result<FileHeader> {
    match seal {
        None => Ok(FileHeader::new(generation)),
        Some(seal) => seal
            .header(generation)
            .map_err(|e| Error::encryption(name, None, e.to_string())),
    }
}

/// Write a fresh log containing only `header` at `path`, durably. A
/// leftover at `path` (a file or a planted symlink) is unlinked, never
/// written through (see [`paths::create_sidecar`]).
///
/// # Errors
/// I/O errors, with the path.
pub fn create_log(path: &Path, header: &FileHeader) -> Result<File> {
    let file = paths::create_sidecar(path).map_err(|e| Error::io(path, e))?;
    write_header(&file, header)
        .and_then(|()| sync_parent_dir(path))
        .map_err(|e| Error::io(path, e))?;
    Ok(file)
}

fn write_header(file: &File, header: &FileHeader) -> io::Result<()> {
    fault::check(Op::Write, file)?;
    let mut f = file;
    f.write_all(&header.encode())?;
    fault::sync(file, || file.sync_data())
}

/// Open the log at `path` read-only with a seal already at hand (a copy of
/// an open database's file, which shares its file id and so its seal).
///
/// # Errors
/// As [`open_log`]; [`Error::Encryption`] if the file is encrypted and
/// `seal` is `None`, or the other way round.
pub fn open_log_sealed(path: &Path, seal: Option<Arc<Seal>>) -> Result<OpenedLog> {
    let file = paths::open_data_file(path, Access::Read)?;
    let medium = Medium::Disk(file);
    let header = read_header(&medium, path)?;
    if header.encryption.is_some() != seal.is_some() {
        return Err(Error::encryption(
            path,
            None,
            "the file's encryption does not match the database it was copied from",
        ));
    }
    Ok(OpenedLog {
        medium: Log::new(medium, &header, seal),
        header,
    })
}

/// Open the log at `path` (read-only, or for a writer that will append to
/// it, `writable`) as another file of the database whose current log is
/// sealed by `seal` (`None`: a plain one): the file a compaction in another
/// process renamed into place. Its key is checked against the header before
/// anything else is read.
///
/// # Errors
/// As [`open_log`]; [`Error::Encryption`] if that file is under another key
/// (re-keyed by another process) or its encryption differs.
pub fn open_sibling(path: &Path, seal: Option<&Seal>, writable: bool) -> Result<OpenedLog> {
    let access = if writable {
        Access::Write
    } else {
        Access::Read
    };
    let file = paths::open_data_file(path, access)?;
    let medium = Medium::Disk(file);
    let header = read_header(&medium, path)?;
    let seal = match (seal, header.encryption.is_some()) {
        (None, false) => None,
        (Some(seal), true) => Some(Arc::new(seal.sibling(&header).map_err(|_| {
            Error::encryption(
                path,
                None,
                "another process re-encrypted the database under a new key; reopen it with that key",
            )
        })?)),
        _ => {
            return Err(Error::encryption(
                path,
                None,
                "another process changed whether the database is encrypted; reopen it",
            ))
        }
    };
    Ok(OpenedLog {
        medium: Log::new(medium, &header, seal),
        header,
    })
}

/// Read and check the header at the start of `medium` (the file at `path`).
fn read_header(medium: &Medium, path: &Path) -> Result<FileHeader> {
    let mut head = [0u8; ENCRYPTED_HEADER_LEN];
    let got = read_up_to(medium, &mut head, 0).map_err(|e| Error::io(path, e))?;
    FileHeader::decode(head.get(..got).unwrap_or_default()).map_err(|e| map_decode(path, 0, e))
}

/// A log held in memory (`:memory:` databases), encrypted under `key` if given.
///
/// # Errors
/// [`Error::Encryption`] if the key cannot be used.
pub fn memory_log(name: &Path, key: Option<&EncryptionKey>) -> Result<OpenedLog> {
    let seal = key.map(|k| new_seal(name, k)).transpose()?;
    let header = new_header(name, 0, seal.as_ref())?;
    let medium = Medium::Memory(RwLock::new(header.encode()));
    Ok(OpenedLog {
        medium: Log::new(medium, &header, seal.map(Arc::new)),
        header,
    })
}

/// A seal for a new file under the user's `key`.
///
/// # Errors
/// [`Error::Encryption`] if the key cannot be used or no randomness is available.
pub fn new_seal(name: &Path, key: &EncryptionKey) -> Result<Seal> {
    Seal::for_key(key).map_err(|e| Error::encryption(name, None, e.to_string()))
}

/// Open the log at `path` and validate its header. A missing file is created
/// (unless `read_only`); an empty file (e.g. from `tempfile.mkstemp`) gets a
/// header. With `key`, a new file is created encrypted and an existing one
/// must be encrypted under that key; this is checked from the header alone,
/// before any record is read or anything written. Anything but a regular
/// file is refused at once (see [`paths::open_data_file`]).
///
/// # Errors
/// [`Error::Corruption`] / [`Error::UnsupportedVersion`] for a bad header,
/// [`Error::Encryption`] for a wrong, missing or unexpected key,
/// [`Error::NotAFile`] for a FIFO or device, I/O errors otherwise.
pub fn open_log(path: &Path, read_only: bool, key: Option<&EncryptionKey>) -> Result<OpenedLog> {
    let access = if read_only {
        Access::Read
    } else {
        Access::Write
    };
    open_log_file(paths::open_data_file(path, access)?, path, read_only, key)
}

/// [`open_log`] on `file`, already open (read-write unless `read_only`) on
/// the data file at `path`.
///
/// # Errors
/// As [`open_log`].
pub fn open_log_file(
    file: File,
    path: &Path,
    read_only: bool,
    key: Option<&EncryptionKey>,
) -> Result<OpenedLog> {
    let mut fresh: Option<Seal> = None;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 && !read_only {
        // A new database (created empty by the open) or an empty file.
        fresh = key.map(|k| new_seal(path, k)).transpose()?;
        write_header(&file, &new_header(path, 0, fresh.as_ref())?)
            .and_then(|()| sync_parent_dir(path))
            .map_err(|e| Error::io(path, e))?;
    }
    let medium = Medium::Disk(file);
    let header = read_header(&medium, path)?;
    let seal = match (fresh, header.encryption.is_some(), key) {
        (Some(seal), _, _) => Some(seal),
        (None, false, None) => None,
        (None, true, Some(key)) => Some(Seal::unlock(&header, key).map_err(|e| match e {
            CryptoError::Authentication => Error::encryption(
                path,
                None,
                "wrong encryption key (or a damaged file header); nothing was read or written",
            ),
            other => Error::encryption(path, None, other.to_string()),
        })?),
        (None, true, None) => {
            return Err(Error::encryption(
                path,
                None,
                "the database is encrypted; open it with its key (encryption_key=...)",
            ))
        }
        (None, false, Some(_)) => {
            return Err(Error::encryption(
                path,
                None,
                "the database is not encrypted, but an encryption key was given; open it without one, or encrypt it first with ferrumdb.encrypt(path, key) (Rust: Database::rekey)",
            ))
        }
    };
    Ok(OpenedLog {
        medium: Log::new(medium, &header, seal.map(Arc::new)),
        header,
    })
}

pub(super) fn read_up_to(m: &Medium, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let len = m.len()?;
    let avail = usize::try_from(len.saturating_sub(offset))
        .unwrap_or(usize::MAX)
        .min(buf.len());
    if let Some(b) = buf.get_mut(..avail) {
        m.read_exact_at(b, offset)?;
    }
    Ok(avail)
}
