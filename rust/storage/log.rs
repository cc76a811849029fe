//! A log file as a whole: create it with a header, open and validate it, replay
//! its records in order (recovering a torn tail), and read one record back.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::{
    BatchRecords, DecodeError, FileHeader, Record, RecordHeader, RecordKind, HEADER_LEN,
    RECORD_HEADER_LEN,
};

use super::{sync_parent_dir, Medium};

/// A log opened and validated, ready for replay.
#[derive(Debug)]
pub struct OpenedLog {
    /// The bytes.
    pub medium: Medium,
    /// Its header.
    pub header: FileHeader,
}

/// `app.db` -> `app.db.compact`, the file a compaction writes before renaming it into place.
pub fn compact_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".compact");
    PathBuf::from(s)
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

/// Write a fresh log containing only a header at `path`, durably.
///
/// # Errors
/// I/O errors, with the path.
pub fn create_log(path: &Path, generation: u64) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    write_header(&file, generation)
        .and_then(|()| sync_parent_dir(path))
        .map_err(|e| Error::io(path, e))?;
    Ok(file)
}

fn write_header(file: &File, generation: u64) -> io::Result<()> {
    let mut f = file;
    f.write_all(&FileHeader::new(generation).encode())?;
    f.sync_data()
}

/// Open the log at `path` and validate its header. A missing file is created
/// (unless `read_only`); an empty file (e.g. from `tempfile.mkstemp`) gets a header.
///
/// # Errors
/// [`Error::Corruption`] / [`Error::UnsupportedVersion`] for a bad header, I/O errors otherwise.
pub fn open_log(path: &Path, read_only: bool) -> Result<OpenedLog> {
    let opened = OpenOptions::new().read(true).write(!read_only).open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !read_only => create_log(path, 0)?,
        Err(e) => return Err(Error::io(path, e)),
    };
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 && !read_only {
        write_header(&file, 0).map_err(|e| Error::io(path, e))?;
    }
    let medium = Medium::Disk(file);
    let mut head = [0u8; HEADER_LEN];
    let got = read_up_to(&medium, &mut head, 0).map_err(|e| Error::io(path, e))?;
    let header = FileHeader::decode(head.get(..got).unwrap_or_default())
        .map_err(|e| map_decode(path, 0, e))?;
    Ok(OpenedLog { medium, header })
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
    /// Offset of the record's first byte.
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
/// [`Error::Corruption`] naming `name` and the offset.
///
/// # Errors
/// Corruption or I/O errors.
pub fn replay(
    medium: &Medium,
    name: &Path,
    start: u64,
    repair: bool,
    visit: impl FnMut(ReplayItem<'_>),
) -> Result<u64> {
    replay_from(medium, name, start, None, repair, visit).map(|r| r.end)
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
    medium: &Medium,
    name: &Path,
    start: u64,
    start_seq: Option<u64>,
    repair: bool,
    mut visit: impl FnMut(ReplayItem<'_>),
) -> Result<Replayed> {
    let file_len = medium.len().map_err(|e| Error::io(name, e))?;
    let mut window = ReadWindow::new(medium, file_len);
    let mut pos = start;
    let mut last_seq = start_seq;
    let mut last_record = None;
    while pos < file_len {
        let head = window
            .at(pos, RECORD_HEADER_LEN)
            .map_err(|e| Error::io(name, e))?;
        let header = match RecordHeader::parse(head) {
            Ok(h) => h,
            Err(e) => {
                return end_of_log(medium, name, pos, file_len, last_seq, None, e, repair)
                    .map(|end| Replayed { end, last_record })
            }
        };
        let bytes = window
            .at(pos, header.record_len())
            .map_err(|e| Error::io(name, e))?;
        match Record::decode(bytes) {
            Ok(rec) if rec.header.kind == RecordKind::Batch => {
                // A transaction: its records are replayed in order, at their
                // own offsets (where the key directory will point).
                for inner in BatchRecords::new(rec) {
                    let (at, inner) = inner.map_err(|e| map_decode(name, pos, e))?;
                    visit(ReplayItem {
                        offset: pos + at as u64,
                        header: inner.header,
                        key: inner.key,
                    });
                }
                last_seq = Some(rec.header.seq);
                last_record = Some(pos);
                pos += header.record_len() as u64;
            }
            Ok(rec) => {
                visit(ReplayItem {
                    offset: pos,
                    header: rec.header,
                    key: rec.key,
                });
                last_seq = Some(rec.header.seq);
                last_record = Some(pos);
                pos += header.record_len() as u64;
            }
            Err(e) => {
                return end_of_log(
                    medium,
                    name,
                    pos,
                    file_len,
                    last_seq,
                    Some(header),
                    e,
                    repair,
                )
                .map(|end| Replayed { end, last_record })
            }
        }
    }
    Ok(Replayed {
        end: pos,
        last_record,
    })
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

    /// Up to `len` bytes starting at `pos` (fewer only at the end of the file).
    pub(super) fn at(&mut self, pos: u64, len: usize) -> io::Result<&[u8]> {
        let want = usize::try_from(self.file_len.saturating_sub(pos))
            .unwrap_or(usize::MAX)
            .min(len);
        let buf_end = self.buf_start + self.buf.len() as u64;
        if pos < self.buf_start || pos + want as u64 > buf_end {
            let fill = usize::try_from(self.file_len - pos)
                .unwrap_or(usize::MAX)
                .min(want.max(Self::CHUNK));
            self.buf.resize(fill, 0);
            self.medium.read_exact_at(&mut self.buf, pos)?;
            self.buf_start = pos;
        }
        let rel = usize::try_from(pos - self.buf_start).unwrap_or(0);
        Ok(self.buf.get(rel..rel + want).unwrap_or_default())
    }
}

/// Decide whether a record that failed to decode at `pos` is a torn tail or
/// corruption, and act on it.
///
/// The writer appends one record (or one batch) at a time, each strictly
/// after the previous one has been copied out, so a crash leaves at most one
/// incomplete record, and it is the last thing in the file. The copy does not
/// necessarily land front to back (a `memcpy` into the mapping may store its
/// first bytes last), so the torn record may have an unreadable header and
/// written bytes after it, and its declared length cannot be trusted. What
/// can be trusted: no record written *after* it can be intact, because none
/// was started. So the failure is a torn tail when no checksum-valid record
/// starts anywhere in the non-zero bytes after `pos`, except the inner
/// records of the torn batch itself (puts/deletes carrying the seq that
/// follows `last_seq`; any later write carries a higher one). Otherwise it is
/// corruption, reported with file and offset.
#[allow(clippy::too_many_arguments)]
fn end_of_log(
    medium: &Medium,
    name: &Path,
    pos: u64,
    file_len: u64,
    last_seq: Option<u64>,
    parsed: Option<RecordHeader>,
    err: DecodeError,
    repair: bool,
) -> Result<u64> {
    let last = last_nonzero(medium, pos, file_len).map_err(|e| Error::io(name, e))?;
    if let Some(last) = last {
        let torn_seq = last_seq.map_or(1, |s| s + 1);
        let mut window = ReadWindow::new(medium, file_len);
        if next_intact(&mut window, pos + 1, last, torn_seq)
            .map_err(|e| Error::io(name, e))?
            .is_some()
        {
            let why = match parsed {
                Some(_) => format!("record {err} (intact records follow it)"),
                None => format!("record {err}"),
            };
            return Err(Error::corruption(name, pos, why));
        }
    }
    if repair {
        medium.truncate(pos).map_err(|e| Error::io(name, e))?;
    }
    Ok(pos)
}

/// The first offset in `from..=last` where a record that passes its checksum
/// starts, other than a put/delete of `torn_seq` (the inner records of a
/// torn batch: a later write always has a higher seq). Runs only when a
/// record failed to decode: over the remains of one write for a torn tail,
/// and up to the next intact record for damage (most offsets are rejected at
/// once by the header's kind byte).
pub(super) fn next_intact(
    window: &mut ReadWindow<'_>,
    from: u64,
    last: u64,
    torn_seq: u64,
) -> io::Result<Option<u64>> {
    let file_len = window.file_len;
    let mut at = from;
    while at <= last && at + RECORD_HEADER_LEN as u64 <= file_len {
        if let Ok(h) = RecordHeader::parse(window.at(at, RECORD_HEADER_LEN)?) {
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
    let mut end = to;
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
/// key directory) into `buf`, verify it, and check it holds `key`.
/// Returns the range of the value inside `buf`.
///
/// # Errors
/// [`Error::Corruption`] if the record fails its checksum or holds another key.
pub fn read_record(
    medium: &Medium,
    name: &Path,
    offset: u64,
    key: &str,
    value_len: u32,
    buf: &mut Vec<u8>,
) -> Result<std::ops::Range<usize>> {
    let total = RECORD_HEADER_LEN + key.len() + value_len as usize;
    buf.clear();
    buf.resize(total, 0);
    medium.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Error::corruption(
                name,
                offset,
                "record cut short (file truncated while open?)",
            )
        } else {
            Error::io(name, e)
        }
    })?;
    let rec = Record::decode(buf).map_err(|e| map_decode(name, offset, e))?;
    if rec.key != key || !matches!(rec.header.kind, RecordKind::Put | RecordKind::Meta) {
        return Err(Error::corruption(
            name,
            offset,
            "record does not hold the expected key",
        ));
    }
    let start = RECORD_HEADER_LEN + key.len();
    Ok(start..total)
}
