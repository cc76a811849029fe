//! A log file as a whole: create it with a header, open and validate it, replay
//! its records in order (recovering a torn tail), and read one record back.
//! For an encrypted file every record is an envelope (see `crate::format`),
//! sealed and opened here, so the engine never sees the difference.

use std::fs::File;
use std::io::{self, Write};
use std::ops::{Deref, Range};
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::crypto::{CryptoError, EncryptionKey};
use crate::error::{Error, Result};
use crate::format::{
    is_hint_digest, BatchRecords, DecodeError, EnvelopeHeader, FileHeader, Record, RecordHeader,
    RecordKind, ENCRYPTED_HEADER_LEN, ENVELOPE_HEADER_LEN, ENVELOPE_OVERHEAD, MAX_VALUE_BYTES,
    RECORD_HEADER_LEN,
};

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

fn map_decode(file: &Path, offset: u64, e: DecodeError) -> Error {
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
    let mut head = [0u8; ENCRYPTED_HEADER_LEN];
    let got = read_up_to(&medium, &mut head, 0).map_err(|e| Error::io(path, e))?;
    let header = FileHeader::decode(head.get(..got).unwrap_or_default())
        .map_err(|e| map_decode(path, 0, e))?;
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
    let mut head = [0u8; ENCRYPTED_HEADER_LEN];
    let got = read_up_to(&medium, &mut head, 0).map_err(|e| Error::io(path, e))?;
    let header = FileHeader::decode(head.get(..got).unwrap_or_default())
        .map_err(|e| map_decode(path, 0, e))?;
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

fn read_up_to(m: &Medium, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let len = m.len()?;
    let avail = usize::try_from(len.saturating_sub(offset))
        .unwrap_or(usize::MAX)
        .min(buf.len());
    if let Some(b) = buf.get_mut(..avail) {
        m.read_exact_at(b, offset)?;
    }
    Ok(avail)
}

/// One put, delete or meta record met during replay (the records of a batch
/// are met one by one, never the batch itself).
#[derive(Debug)]
pub struct ReplayItem<'a> {
    /// Where the key directory finds the record: its first byte, or for a
    /// record inside an encrypted batch, the batch's envelope (which is
    /// opened whole to read it).
    pub offset: u64,
    /// Decoded header.
    pub header: RecordHeader,
    /// The key.
    pub key: &'a str,
}

/// Read records from `start` to the end of the log, in order, calling `visit`
/// for each. Returns the offset just past the last good record.
///
/// A torn tail (see the format docs) ends the replay: with `repair` it is cut
/// off the file; without, it is only skipped. Damage before the tail is
/// [`Error::Corruption`] naming `name` and the offset; in an encrypted log, an
/// envelope that is intact but fails authentication is [`Error::Encryption`].
///
/// # Errors
/// Corruption, encryption or I/O errors.
pub fn replay(
    log: &Log,
    name: &Path,
    start: u64,
    repair: bool,
    visit: impl FnMut(ReplayItem<'_>),
) -> Result<u64> {
    replay_from(log, name, start, None, repair, visit).map(|r| r.end)
}

/// Where a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Offset just past the last good record.
    pub end: u64,
    /// Offset of the last good (top-level) record read, if any.
    pub last_record: Option<u64>,
}

/// [`replay`] starting at `start`, where the record before it (if any) had
/// sequence number `start_seq` (a hint covered everything before `start`).
///
/// # Errors
/// As [`replay`].
pub fn replay_from(
    log: &Log,
    name: &Path,
    start: u64,
    start_seq: Option<u64>,
    repair: bool,
    mut visit: impl FnMut(ReplayItem<'_>),
) -> Result<Replayed> {
    let medium = &log.medium;
    let file_len = medium.len().map_err(|e| Error::io(name, e))?;
    let mut window = ReadWindow::new(medium, file_len);
    let mut pos = start;
    let mut last_seq = start_seq;
    let mut last_record = None;
    let mut plain = Vec::new();
    // The offset whose failure was already re-read once (see `after_failure`).
    let mut reread = None;
    while pos < file_len {
        // The record at `pos`, or why it failed (and whether its fixed
        // header was readable).
        let decoded = if let Some(seal) = &log.seal {
            let head = window
                .at(pos, ENVELOPE_HEADER_LEN)
                .map_err(|e| Error::io(name, e))?;
            match EnvelopeHeader::parse(head) {
                Err(e) => Err((false, e)),
                Ok(env) => {
                    let len = env.envelope_len();
                    let bytes = window.at(pos, len).map_err(|e| Error::io(name, e))?;
                    match env.verify(bytes) {
                        Err(e) => Err((true, e)),
                        Ok(()) => {
                            plain.clear();
                            plain.extend_from_slice(bytes);
                            let body = open_sealed(seal, name, &mut plain, pos)?;
                            let rec = Record::decode(plain.get(body).unwrap_or_default())
                                .map_err(|e| map_decode(name, pos, e))?;
                            Ok((len, rec))
                        }
                    }
                }
            }
        } else {
            let head = window
                .at(pos, RECORD_HEADER_LEN)
                .map_err(|e| Error::io(name, e))?;
            match RecordHeader::parse(head) {
                Err(e) => Err((false, e)),
                Ok(header) => {
                    let bytes = window
                        .at(pos, header.record_len())
                        .map_err(|e| Error::io(name, e))?;
                    Record::decode(bytes)
                        .map(|rec| (header.record_len(), rec))
                        .map_err(|e| (true, e))
                }
            }
        };
        let (len, rec) = match decoded {
            Ok(decoded) => decoded,
            Err((parsed, e)) => {
                let failed = (pos, last_seq, parsed, e);
                match end_of_log(log, &mut window, name, failed, repair, &mut reread)? {
                    Some(end) => return Ok(Replayed { end, last_record }),
                    None => continue,
                }
            }
        };
        if rec.header.kind == RecordKind::Batch {
            // A transaction: its records are replayed in order. The key
            // directory points at each record in a plain log, and at the
            // batch's envelope in an encrypted one (it is sealed whole).
            for inner in BatchRecords::new(rec) {
                let (at, inner) = inner.map_err(|e| map_decode(name, pos, e))?;
                let offset = if log.seal.is_some() {
                    pos
                } else {
                    pos + at as u64
                };
                visit(ReplayItem {
                    offset,
                    header: inner.header,
                    key: inner.key,
                });
            }
        } else if !is_hint_digest(&rec) {
            visit(ReplayItem {
                offset: pos,
                header: rec.header,
                key: rec.key,
            });
        }
        last_seq = Some(rec.header.seq);
        last_record = Some(pos);
        pos += len as u64;
    }
    Ok(Replayed {
        end: pos,
        last_record,
    })
}

/// Decrypt the envelope in `env` read from `offset`; where the plain record is.
fn open_sealed(seal: &Seal, name: &Path, env: &mut [u8], offset: u64) -> Result<Range<usize>> {
    seal.open_envelope(env, offset).map_err(|e| match e {
        CryptoError::Authentication => {
            Error::encryption(name, Some(offset), "encrypted record failed authentication")
        }
        // Not about this record (the key was wiped by close): no offset to blame.
        other => Error::encryption(name, None, other.to_string()),
    })
}

/// Walk the complete records in `bytes`, which were read from `base` of `log`
/// (the part of a log written while a compaction copied the rest), calling
/// `visit` with each record's offset and its plain encoding.
///
/// # Errors
/// Corruption or encryption errors naming the offset; whatever `visit` returns.
pub fn walk_records(
    log: &Log,
    name: &Path,
    base: u64,
    bytes: &mut [u8],
    mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut at = 0usize;
    while at < bytes.len() {
        let offset = base + at as u64;
        let rest = bytes.get_mut(at..).unwrap_or_default();
        let (len, plain) = match &log.seal {
            Some(seal) => {
                let env = EnvelopeHeader::parse(rest).map_err(|e| map_decode(name, offset, e))?;
                let len = env.envelope_len();
                let whole = rest
                    .get_mut(..len)
                    .ok_or_else(|| map_decode(name, offset, DecodeError::Truncated))?;
                let body = open_sealed(seal, name, whole, offset)?;
                (len, whole.get(body).unwrap_or_default())
            }
            None => {
                let h = RecordHeader::parse(rest).map_err(|e| map_decode(name, offset, e))?;
                let len = h.record_len();
                let whole = rest
                    .get(..len)
                    .ok_or_else(|| map_decode(name, offset, DecodeError::Truncated))?;
                (len, whole)
            }
        };
        Record::decode(plain).map_err(|e| map_decode(name, offset, e))?;
        visit(offset, plain)?;
        at += len;
    }
    Ok(())
}

/// Sequential reader over a medium in large chunks, so replay issues few
/// syscalls however small the records are.
pub(super) struct ReadWindow<'m> {
    medium: &'m Medium,
    file_len: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'m> ReadWindow<'m> {
    const CHUNK: usize = 4 << 20;

    pub(super) fn new(medium: &'m Medium, file_len: u64) -> Self {
        ReadWindow {
            medium,
            file_len,
            buf: Vec::with_capacity(Self::CHUNK),
            buf_start: 0,
        }
    }

    /// Forget the buffered bytes: the next read goes to the file.
    pub(super) fn invalidate(&mut self) {
        self.buf.clear();
        self.buf_start = 0;
    }

    /// Up to `len` bytes starting at `pos` (fewer only at the end of the file).
    ///
    /// Bytes past the file's current end read as zeros: a writer beside a
    /// reader cuts its zero slack on close, so a file may shrink under a
    /// reader that measured it earlier, and what it cut is the end of the
    /// log, not an I/O error.
    pub(super) fn at(&mut self, pos: u64, len: usize) -> io::Result<&[u8]> {
        let want = usize::try_from(self.file_len.saturating_sub(pos))
            .unwrap_or(usize::MAX)
            .min(len);
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.buf.is_empty() || pos < self.buf_start || pos + want as u64 > buf_end {
            let fill = usize::try_from(self.file_len - pos)
                .unwrap_or(usize::MAX)
                .min(want.max(Self::CHUNK));
            self.buf.resize(fill, 0);
            match self.medium.read_exact_at(&mut self.buf, pos) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.buf.fill(0);
                    read_up_to(self.medium, &mut self.buf, pos)?;
                }
                other => other?,
            }
            self.buf_start = pos;
        }
        let rel = usize::try_from(pos - self.buf_start).unwrap_or(0);
        Ok(self.buf.get(rel..rel + want).unwrap_or_default())
    }
}

/// What a reader does about a record that failed to decode at `pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// Read it again: intact records follow it, so if a writer was copying
    /// it a moment ago, it is complete now (the window has been emptied, so
    /// the next read of `pos` is fresh).
    Reread,
    /// The end of what is written so far: nothing intact follows it (a torn
    /// tail after a crash, a record still being copied by a writer, or the
    /// zero slack of a mapped log).
    End,
    /// Damage: it still fails after a fresh read, and an intact record
    /// starts at `next`.
    Damage {
        /// Where the next intact record starts.
        next: u64,
    },
}

/// Classify a record that failed to decode at `pos`: the one decision every
/// reader of a log makes (replay at open, read-only or not; `check`;
/// salvage; backup's verification), so none of them mistakes a record a
/// writer beside it is still copying for damage.
///
/// The writer appends one record (or one batch) at a time, each strictly
/// after the previous one has been copied out, so a crash leaves at most one
/// incomplete record, and it is the last thing in the file. The copy does not
/// necessarily land front to back (a `memcpy` into the mapping may store its
/// first bytes last), so the torn record may have an unreadable header and
/// written bytes after it, and its declared length cannot be trusted. What
/// can be trusted: no record written *after* it can be intact, because none
/// was started. So the failure is the end of the log when no checksum-valid
/// record (envelope, in an encrypted log) starts anywhere in the non-zero
/// bytes after `pos`, except the inner records of the torn batch itself
/// (puts/deletes carrying the seq that follows `last_seq`; any later write
/// carries a higher one; an encrypted batch is one envelope, so it has none
/// to show).
///
/// A reader without the writer lock may also meet a record that a live
/// writer is copying *while* it reads, and newer intact records after it a
/// moment later. Those newer records prove it complete (records are copied
/// in order under the writer's mutex), so the first time a failure is
/// followed by intact records the answer is [`Failure::Reread`]; only a
/// failure that persists on the fresh read (`reread == Some(pos)`) is
/// [`Failure::Damage`].
pub(super) fn after_failure(
    window: &mut ReadWindow<'_>,
    sealed: bool,
    pos: u64,
    last_seq: Option<u64>,
    reread: &mut Option<u64>,
) -> io::Result<Failure> {
    // Fresh bytes from here on: the window may hold the half-copied record.
    window.invalidate();
    let file_len = window.file_len;
    let Some(last) = last_nonzero(window.medium, pos, file_len)? else {
        return Ok(Failure::End);
    };
    let torn_seq = last_seq.map_or(1, |s| s + 1);
    match next_intact(window, sealed, pos + 1, last, torn_seq)? {
        None => Ok(Failure::End),
        Some(next) if *reread == Some(pos) => Ok(Failure::Damage { next }),
        Some(_) => {
            *reread = Some(pos);
            window.invalidate();
            Ok(Failure::Reread)
        }
    }
}

/// Act on a record that failed to decode at `pos` during replay (see
/// [`after_failure`]; `last_seq` is the seq of the record before it):
/// `None` to read it again, `Some(end)` where the log
/// ends (with `repair`, a torn tail is cut off the file there; without, it
/// is only skipped, so a reader never cuts what a writer is writing), or
/// [`Error::Corruption`] naming the file and offset. `parsed` says whether
/// its fixed header was readable.
fn end_of_log(
    log: &Log,
    window: &mut ReadWindow<'_>,
    name: &Path,
    (pos, last_seq, parsed, err): (u64, Option<u64>, bool, DecodeError),
    repair: bool,
    reread: &mut Option<u64>,
) -> Result<Option<u64>> {
    match after_failure(window, log.seal.is_some(), pos, last_seq, reread)
        .map_err(|e| Error::io(name, e))?
    {
        Failure::Reread => Ok(None),
        Failure::Damage { .. } => {
            let why = if parsed {
                format!("record {err} (intact records follow it)")
            } else {
                format!("record {err}")
            };
            Err(Error::corruption(name, pos, why))
        }
        Failure::End => {
            if repair {
                log.medium.truncate(pos).map_err(|e| Error::io(name, e))?;
            }
            Ok(Some(pos))
        }
    }
}

/// The first offset in `from..=last` where a record (an envelope, when
/// `sealed`) that passes its checksum starts, other than a plain put/delete
/// of `torn_seq` (the inner records of a torn batch). Runs only when a record
/// failed to decode: over the remains of one write for a torn tail, and up to
/// the next intact record for damage (most offsets are rejected at once by
/// the fixed header's checks; in an encrypted log, ciphertext matches an
/// envelope's checksum only by a 2^-32 chance).
pub(super) fn next_intact(
    window: &mut ReadWindow<'_>,
    sealed: bool,
    from: u64,
    last: u64,
    torn_seq: u64,
) -> io::Result<Option<u64>> {
    let file_len = window.file_len;
    let fixed = if sealed {
        ENVELOPE_HEADER_LEN
    } else {
        RECORD_HEADER_LEN
    };
    let mut at = from;
    while at <= last && at + fixed as u64 <= file_len {
        let head = window.at(at, fixed)?;
        if sealed {
            if let Ok(h) = EnvelopeHeader::parse(head) {
                let len = h.envelope_len();
                if at + len as u64 <= file_len && h.verify(window.at(at, len)?).is_ok() {
                    return Ok(Some(at));
                }
            }
        } else if let Ok(h) = RecordHeader::parse(head) {
            let len = h.record_len();
            let inner_of_torn_batch =
                h.seq == torn_seq && matches!(h.kind, RecordKind::Put | RecordKind::Delete);
            if !inner_of_torn_batch
                && at + len as u64 <= file_len
                && Record::decode(window.at(at, len)?).is_ok()
            {
                return Ok(Some(at));
            }
        }
        at += 1;
    }
    Ok(None)
}

/// Offset of the last non-zero byte in `from..to`, scanning backwards.
pub(super) fn last_nonzero(medium: &Medium, from: u64, to: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; 1 << 16];
    // A writer beside us may have cut its zero slack since `to` was measured.
    let mut end = to.min(medium.len()?);
    while end > from {
        let n = usize::try_from(end - from)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let start = end - n as u64;
        let chunk = buf.get_mut(..n).unwrap_or_default();
        medium.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b != 0) {
            return Ok(Some(start + i as u64));
        }
        end = start;
    }
    Ok(None)
}

/// Read the whole record at `offset` (whose size the caller knows from the
/// key directory) into `buf`, verify it (and, in an encrypted log, decrypt
/// and authenticate it), and check it holds `key`. Returns the range of the
/// value inside `buf`.
///
/// # Errors
/// [`Error::Corruption`] if the record fails its checksum or holds another key,
/// [`Error::Encryption`] if an encrypted record fails authentication.
pub fn read_record(
    log: &Log,
    name: &Path,
    offset: u64,
    key: &str,
    value_len: u32,
    buf: &mut Vec<u8>,
) -> Result<Range<usize>> {
    let record = read_plain_record(log, name, offset, key, value_len, buf)?;
    let start = record.start + RECORD_HEADER_LEN + key.len();
    Ok(start..record.end)
}

/// As [`read_record`], returning the range of the whole plain record (header,
/// key and value), as compaction copies it.
///
/// # Errors
/// As [`read_record`].
pub fn read_plain_record(
    log: &Log,
    name: &Path,
    offset: u64,
    key: &str,
    value_len: u32,
    buf: &mut Vec<u8>,
) -> Result<Range<usize>> {
    let cut_short = |e: io::Error| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Error::corruption(
                name,
                offset,
                "record cut short (file truncated while open?)",
            )
        } else {
            Error::io(name, e)
        }
    };
    if value_len as usize > MAX_VALUE_BYTES {
        return Err(Error::corruption(
            name,
            offset,
            "record length out of range",
        ));
    }
    let plain_len = RECORD_HEADER_LEN + key.len() + value_len as usize;
    let record = match &log.seal {
        Some(seal) => {
            // The envelope may hold this record alone or a whole transaction:
            // its own header says how long it is.
            let mut head = [0u8; ENVELOPE_HEADER_LEN];
            log.medium
                .read_exact_at(&mut head, offset)
                .map_err(cut_short)?;
            let env = EnvelopeHeader::parse(&head).map_err(|e| map_decode(name, offset, e))?;
            check_span(log, name, offset, env.envelope_len())?;
            buf.clear();
            buf.resize(env.envelope_len(), 0);
            log.medium.read_exact_at(buf, offset).map_err(cut_short)?;
            open_sealed(seal, name, buf, offset)?
        }
        None => {
            check_span(log, name, offset, plain_len)?;
            buf.clear();
            buf.resize(plain_len, 0);
            log.medium.read_exact_at(buf, offset).map_err(cut_short)?;
            0..plain_len
        }
    };
    let rec = Record::decode(buf.get(record.clone()).unwrap_or_default())
        .map_err(|e| map_decode(name, offset, e))?;
    let found = if rec.header.kind == RecordKind::Batch && log.seal.is_some() {
        // Inside an encrypted transaction: find this key's record.
        BatchRecords::new(rec)
            .filter_map(std::result::Result::ok)
            .find(|(_, r)| r.key == key)
            .map(|(at, r)| {
                let start = record.start + at;
                (r, start..start + r.header.record_len())
            })
    } else {
        Some((rec, record))
    };
    match found {
        Some((r, range))
            if r.key == key
                && r.header.value_len == value_len
                && matches!(r.header.kind, RecordKind::Put | RecordKind::Meta) =>
        {
            Ok(range)
        }
        _ => Err(Error::corruption(
            name,
            offset,
            "record does not hold the expected key",
        )),
    }
}

/// Refuse, before anything is allocated for it, a read of `len` bytes at
/// `offset` that would run past the end of the log: whatever a key
/// directory location claims (it may come from a hint), a read never
/// allocates beyond the file. Free on the hot path: inside a writer's
/// mapping the bound is its length, and a read of at most 64 KiB is simply
/// attempted (it fails with end-of-file if short); only larger reads ask
/// the file for its length.
fn check_span(log: &Log, name: &Path, offset: u64, len: usize) -> Result<()> {
    const UNCHECKED: u64 = 64 << 10;
    let end = offset.saturating_add(len as u64);
    let fits = match log.medium.capacity() {
        Some(cap) if end <= cap => true,
        _ if len as u64 <= UNCHECKED => true,
        _ => end <= log.medium.len().map_err(|e| Error::io(name, e))?,
    };
    if fits {
        Ok(())
    } else {
        Err(Error::corruption(
            name,
            offset,
            "record runs past the end of the file (file truncated while open, or a bad hint?)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::encode_record;

    /// A log in memory holding `n` records written at their offsets.
    fn log_with(n: usize, key: Option<&EncryptionKey>) -> (Log, Vec<u64>) {
        let opened = memory_log(Path::new("t"), key).expect("log");
        let log = opened.medium;
        let mut end = log.data_start();
        let mut offsets = Vec::new();
        for i in 0..n {
            let mut buf = Vec::new();
            let value = format!("{i}");
            encode_record(
                &mut buf,
                RecordKind::Put,
                i as u64,
                0,
                &format!("k{i}"),
                value.as_bytes(),
            );
            log.seal_record(Path::new("t"), &mut buf, end)
                .expect("seal");
            log.write_all_at(&buf, end).expect("write");
            offsets.push(end);
            end += buf.len() as u64;
        }
        (log, offsets)
    }

    #[test]
    fn walk_records_opens_each_record_at_its_offset() {
        let key = EncryptionKey::from([9u8; 32]);
        for key in [None, Some(&key)] {
            let (log, offsets) = log_with(5, key);
            let len = log.len().expect("len");
            let base = offsets[2];
            let mut tail = vec![0u8; (len - base) as usize];
            log.read_exact_at(&mut tail, base).expect("read");
            let mut seen = Vec::new();
            walk_records(&log, Path::new("t"), base, &mut tail, |off, plain| {
                let rec = Record::decode(plain).expect("plain record");
                seen.push((off, rec.key.to_owned()));
                Ok(())
            })
            .expect("walk");
            let want: Vec<(u64, String)> = (2..5).map(|i| (offsets[i], format!("k{i}"))).collect();
            assert_eq!(seen, want);
            if key.is_some() {
                // The same bytes claimed to sit elsewhere fail authentication.
                let mut again = vec![0u8; (len - base) as usize];
                log.read_exact_at(&mut again, base).expect("read");
                let moved = walk_records(&log, Path::new("t"), base + 1, &mut again, |_, _| Ok(()));
                assert!(matches!(
                    moved,
                    Err(Error::Encryption {
                        offset: Some(_),
                        ..
                    })
                ));
            }
        }
    }
}
