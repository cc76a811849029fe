//! The one frame reader. A *frame* is what the writer appends in one piece
//! (`engine/write.rs`): a plain record (a put, delete, meta entry, hint
//! digest, or a transaction's batch) or, in an encrypted log, the envelope
//! that seals one. Every reader of a log reads frames through here: replay
//! at open ([`super::replay`]), point reads of one value ([`read_record`]),
//! `check` and salvage ([`super::check`]), and compaction's copy of the tail
//! a writer appended while it ran ([`walk_frames`]). So the plain/sealed
//! difference, the checks a frame must pass, and where the key directory
//! finds a transaction's records are each written once.

use std::io;
use std::ops::Range;
use std::path::Path;

use crate::crypto::CryptoError;
use crate::error::{Error, Result};
use crate::format::{
    batch_record_offset, is_hint_digest, BatchRecords, DecodeError, EnvelopeHeader, Record,
    RecordHeader, RecordKind, ENVELOPE_HEADER_LEN, MAX_VALUE_BYTES, RECORD_HEADER_LEN,
};

use super::log::{map_decode, read_up_to, Log};
use super::{Medium, Seal};

/// Length of the fixed header that starts every frame of a log: a record
/// header, or an envelope header when `sealed`.
pub(super) fn fixed_len(sealed: bool) -> usize {
    if sealed {
        ENVELOPE_HEADER_LEN
    } else {
        RECORD_HEADER_LEN
    }
}

/// The whole frame's length on disk, from its fixed header `head`.
///
/// # Errors
/// The fixed header is cut short or impossible.
pub(super) fn frame_len(sealed: bool, head: &[u8]) -> std::result::Result<usize, DecodeError> {
    if sealed {
        EnvelopeHeader::parse(head).map(|h| h.envelope_len())
    } else {
        RecordHeader::parse(head).map(|h| h.record_len())
    }
}

/// Whether `bytes` (exactly one frame's length) pass the frame's checksum:
/// the cheap test of "an intact frame starts here", without decrypting.
pub(super) fn passes_checksum(sealed: bool, bytes: &[u8]) -> bool {
    if sealed {
        EnvelopeHeader::parse(bytes).is_ok_and(|h| h.verify(bytes).is_ok())
    } else {
        Record::decode(bytes).is_ok()
    }
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// It fails its checksum, or its fixed header does not parse: torn by a
    /// crash, still being copied by a writer beside the reader, or damaged.
    /// Which of these it is depends on what follows it (see
    /// `replay::after_failure`).
    Unreadable {
        /// An envelope (encrypted log), not a plain record.
        sealed: bool,
        /// Whether the fixed header parsed (only the rest failed).
        header_ok: bool,
        /// What failed.
        err: DecodeError,
    },
    /// An envelope whose checksum holds but which does not open: sealed under
    /// another key, moved from another offset or file, or forged.
    Sealed(CryptoError),
    /// It opened, but the record inside does not decode: a writer bug or a
    /// forged file, never a torn write.
    Malformed(DecodeError),
}

impl FrameError {
    /// As the crate's error, naming the file `name` and the frame's `offset`.
    pub fn into_error(self, name: &Path, offset: u64) -> Error {
        match self {
            FrameError::Unreadable { err, .. } | FrameError::Malformed(err) => {
                map_decode(name, offset, err)
            }
            FrameError::Sealed(CryptoError::Authentication) => {
                Error::encryption(name, Some(offset), "encrypted record failed authentication")
            }
            // Not about this record (the key was wiped by close): no offset to blame.
            FrameError::Sealed(other) => Error::encryption(name, None, other.to_string()),
        }
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Unreadable {
                sealed,
                header_ok,
                err,
            } => {
                let what = if *sealed { "envelope" } else { "record" };
                let part = if *header_ok { "" } else { " header" };
                write!(f, "{what}{part}: {err}")
            }
            FrameError::Sealed(e) => write!(f, "encrypted record: {e}"),
            FrameError::Malformed(e) => write!(f, "record: {e}"),
        }
    }
}

/// A frame read and verified (and, when sealed, opened).
#[derive(Debug, Clone, Copy)]
pub struct Frame<'b> {
    /// Where it starts in the log.
    pub offset: u64,
    /// Its length on disk (the envelope's, when sealed).
    pub len: usize,
    /// Whether it is an envelope.
    pub sealed: bool,
    /// The plain record it holds.
    pub record: Record<'b>,
    /// The plain record's encoding (header, key and value).
    pub plain: &'b [u8],
    /// Where `plain` starts in the bytes the frame was opened in.
    plain_start: usize,
}

/// One put, delete or meta record carried by a frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameWrite<'b> {
    /// Where the key directory finds it ([`batch_record_offset`]).
    pub offset: u64,
    /// Its first byte within the frame's plain record.
    pub within: usize,
    /// The record.
    pub record: Record<'b>,
}

impl<'b> Frame<'b> {
    /// Whether this frame is a transaction.
    pub fn is_batch(&self) -> bool {
        self.record.header.kind == RecordKind::Batch
    }

    /// The puts, deletes and meta entries it carries, in order: the record
    /// itself, or a transaction's records one by one; none for a hint
    /// digest. An inner record that does not decode ends the walk with an
    /// error (the batch's checksum held, so that is a bug or a forged file).
    pub fn writes(&self) -> impl Iterator<Item = std::result::Result<FrameWrite<'b>, DecodeError>> {
        let (offset, sealed, record) = (self.offset, self.sealed, self.record);
        let single = (!self.is_batch() && !is_hint_digest(&record)).then_some(Ok(FrameWrite {
            offset,
            within: 0,
            record,
        }));
        let batch = self
            .is_batch()
            .then(|| BatchRecords::new(record))
            .into_iter();
        single.into_iter().chain(batch.flatten().map(move |inner| {
            inner.map(|(at, record)| FrameWrite {
                offset: batch_record_offset(offset, at, sealed),
                within: at,
                record,
            })
        }))
    }

    /// The byte range of `write` within the buffer the frame was opened in.
    pub fn range_of(&self, write: &FrameWrite<'_>) -> Range<usize> {
        let start = self.plain_start + write.within;
        start..start + write.record.header.record_len()
    }
}

/// Open the complete frame `bytes` read from `offset`, in place: a plain
/// record is decoded where it lies, an envelope is decrypted where it lies.
///
/// # Errors
/// As [`FrameError`].
pub fn open_in_place<'b>(
    seal: Option<&Seal>,
    bytes: &'b mut [u8],
    offset: u64,
) -> std::result::Result<Frame<'b>, FrameError> {
    match seal {
        None => open_plain(bytes, offset),
        Some(seal) => {
            verify_envelope(bytes)?;
            open_envelope(seal, bytes, offset)
        }
    }
}

/// [`open_in_place`] on bytes that must stay as they are (a read window):
/// an envelope is checked first and only then copied into `scratch` and
/// decrypted there.
///
/// # Errors
/// As [`FrameError`].
pub(super) fn open_copy<'b>(
    seal: Option<&Seal>,
    bytes: &'b [u8],
    scratch: &'b mut Vec<u8>,
    offset: u64,
) -> std::result::Result<Frame<'b>, FrameError> {
    match seal {
        None => open_plain(bytes, offset),
        Some(seal) => {
            verify_envelope(bytes)?;
            scratch.clear();
            scratch.extend_from_slice(bytes);
            open_envelope(seal, scratch, offset)
        }
    }
}

/// Decrypt the envelope `bytes` (its checksum verified) in place.
fn open_envelope<'b>(
    seal: &Seal,
    bytes: &'b mut [u8],
    offset: u64,
) -> std::result::Result<Frame<'b>, FrameError> {
    let len = bytes.len();
    let body = seal
        .open_envelope(bytes, offset)
        .map_err(FrameError::Sealed)?;
    let plain_start = body.start;
    let plain: &'b [u8] = bytes.get(body).unwrap_or_default();
    let record = Record::decode(plain).map_err(FrameError::Malformed)?;
    Ok(Frame {
        offset,
        len,
        sealed: true,
        record,
        plain,
        plain_start,
    })
}

fn open_plain(bytes: &[u8], offset: u64) -> std::result::Result<Frame<'_>, FrameError> {
    let record = Record::decode(bytes).map_err(|err| FrameError::Unreadable {
        sealed: false,
        header_ok: RecordHeader::parse(bytes).is_ok(),
        err,
    })?;
    let len = record.header.record_len();
    Ok(Frame {
        offset,
        len,
        sealed: false,
        record,
        plain: bytes.get(..len).unwrap_or_default(),
        plain_start: 0,
    })
}

fn verify_envelope(bytes: &[u8]) -> std::result::Result<(), FrameError> {
    let unreadable = |header_ok, err| FrameError::Unreadable {
        sealed: true,
        header_ok,
        err,
    };
    let env = EnvelopeHeader::parse(bytes).map_err(|e| unreadable(false, e))?;
    env.verify(bytes).map_err(|e| unreadable(true, e))
}

/// Read the frame at `pos` through `window`: the frame, or why it failed.
///
/// # Errors
/// I/O errors only; a frame that does not read is the inner `Err`.
pub(super) fn read_frame<'b>(
    window: &'b mut ReadWindow<'_>,
    seal: Option<&Seal>,
    scratch: &'b mut Vec<u8>,
    pos: u64,
) -> io::Result<std::result::Result<Frame<'b>, FrameError>> {
    let sealed = seal.is_some();
    let len = match frame_len(sealed, window.at(pos, fixed_len(sealed))?) {
        Ok(len) => len,
        Err(err) => {
            return Ok(Err(FrameError::Unreadable {
                sealed,
                header_ok: false,
                err,
            }))
        }
    };
    let bytes = window.at(pos, len)?;
    Ok(open_copy(seal, bytes, scratch, pos))
}

/// Walk the complete frames in `bytes`, which were read from `base` of
/// `log` (the part of a log written while a compaction copied the rest),
/// calling `visit` with each.
///
/// # Errors
/// Corruption or encryption errors naming the offset; whatever `visit` returns.
pub fn walk_frames(
    log: &Log,
    name: &Path,
    base: u64,
    bytes: &[u8],
    mut visit: impl FnMut(&Frame<'_>) -> Result<()>,
) -> Result<()> {
    let sealed = log.seal.is_some();
    let mut scratch = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let offset = base + at as u64;
        let rest = bytes.get(at..).unwrap_or_default();
        let len = frame_len(sealed, rest).map_err(|e| map_decode(name, offset, e))?;
        let whole = rest
            .get(..len)
            .ok_or_else(|| map_decode(name, offset, DecodeError::Truncated))?;
        let frame = open_copy(log.seal.as_deref(), whole, &mut scratch, offset)
            .map_err(|e| e.into_error(name, offset))?;
        visit(&frame)?;
        at += len;
    }
    Ok(())
}

/// Read the whole record of `key` at `offset` (whose value length the
/// caller knows from the key directory) into `buf`, verify it (and, in an
/// encrypted log, decrypt and authenticate it), and check it holds `key`.
/// Returns the range of the value inside `buf`.
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
    // A plain record's length is known from the key directory; an envelope
    // (which may hold this record alone or a whole transaction) says its own.
    let len = match &log.seal {
        None => RECORD_HEADER_LEN + key.len() + value_len as usize,
        Some(_) => {
            let mut head = [0u8; ENVELOPE_HEADER_LEN];
            log.medium
                .read_exact_at(&mut head, offset)
                .map_err(cut_short)?;
            frame_len(true, &head).map_err(|e| map_decode(name, offset, e))?
        }
    };
    check_span(log, name, offset, len)?;
    buf.clear();
    buf.resize(len, 0);
    log.medium.read_exact_at(buf, offset).map_err(cut_short)?;
    let frame =
        open_in_place(log.seal.as_deref(), buf, offset).map_err(|e| e.into_error(name, offset))?;
    let found = if frame.is_batch() && frame.sealed {
        // Inside an encrypted transaction: find this key's record.
        frame
            .writes()
            .filter_map(std::result::Result::ok)
            .find(|w| w.record.key == key)
    } else {
        frame.writes().next().and_then(std::result::Result::ok)
    };
    match found {
        Some(w)
            if w.record.key == key
                && w.record.header.value_len == value_len
                && matches!(w.record.header.kind, RecordKind::Put | RecordKind::Meta) =>
        {
            Ok(frame.range_of(&w))
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

/// Sequential reader over a medium in large chunks, so replay issues few
/// syscalls however small the records are.
pub(super) struct ReadWindow<'m> {
    pub(super) medium: &'m Medium,
    pub(super) file_len: u64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::EncryptionKey;
    use crate::format::{encode_record, BatchEncoder};
    use crate::storage::memory_log;

    fn append(log: &Log, end: &mut u64, mut buf: Vec<u8>) -> u64 {
        let at = *end;
        log.seal_record(Path::new("t"), &mut buf, at).expect("seal");
        log.write_all_at(&buf, at).expect("write");
        *end += buf.len() as u64;
        at
    }

    /// A log in memory holding `n` single puts, then a transaction of two
    /// puts; returns the log, each single put's offset and the batch's.
    fn log_with(n: usize, key: Option<&EncryptionKey>) -> (Log, Vec<u64>, u64) {
        let log = memory_log(Path::new("t"), key).expect("log").medium;
        let mut end = log.data_start();
        let mut offsets = Vec::new();
        for i in 0..n {
            let mut buf = Vec::new();
            let value = format!("{i}");
            let key = format!("k{i}");
            encode_record(
                &mut buf,
                RecordKind::Put,
                i as u64,
                0,
                &key,
                value.as_bytes(),
            );
            offsets.push(append(&log, &mut end, buf));
        }
        let mut buf = Vec::new();
        let batch = BatchEncoder::begin(&mut buf, n as u64);
        batch.push(&mut buf, RecordKind::Put, 0, "tx-a", b"\"a\"");
        batch.push(&mut buf, RecordKind::Put, 0, "tx-b", b"\"bb\"");
        batch.finish(&mut buf);
        let batch_at = append(&log, &mut end, buf);
        (log, offsets, batch_at)
    }

    #[test]
    fn walk_frames_opens_each_frame_at_its_offset() {
        let key = EncryptionKey::from([9u8; 32]);
        for key in [None, Some(&key)] {
            let (log, offsets, batch_at) = log_with(5, key);
            let len = log.len().expect("len");
            let base = offsets[2];
            let mut tail = vec![0u8; (len - base) as usize];
            log.read_exact_at(&mut tail, base).expect("read");
            let mut seen = Vec::new();
            walk_frames(&log, Path::new("t"), base, &tail, |frame| {
                for w in frame.writes() {
                    let w = w.expect("write");
                    seen.push((frame.offset, w.record.key.to_owned()));
                }
                Ok(())
            })
            .expect("walk");
            let mut want: Vec<(u64, String)> =
                (2..5).map(|i| (offsets[i], format!("k{i}"))).collect();
            want.push((batch_at, "tx-a".into()));
            want.push((batch_at, "tx-b".into()));
            assert_eq!(seen, want);
            if key.is_some() {
                // The same bytes claimed to sit elsewhere fail authentication.
                let moved = walk_frames(&log, Path::new("t"), base + 1, &tail, |_| Ok(()));
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

    #[test]
    fn a_transactions_keys_are_found_where_the_writer_said() {
        let key = EncryptionKey::from([7u8; 32]);
        for key in [None, Some(&key)] {
            let (log, _, batch_at) = log_with(1, key);
            let sealed = key.is_some();
            let len = log.len().expect("len");
            let mut window = ReadWindow::new(&log.medium, len);
            let mut scratch = Vec::new();
            let frame = read_frame(&mut window, log.seal.as_deref(), &mut scratch, batch_at)
                .expect("io")
                .expect("frame");
            let writes: Vec<(u64, String)> = frame
                .writes()
                .map(|w| w.expect("write"))
                .map(|w| (w.offset, w.record.key.to_owned()))
                .collect();
            // Plain: each key points at its own record inside the batch;
            // sealed: at the envelope.
            let first = batch_record_offset(batch_at, RECORD_HEADER_LEN, sealed);
            assert_eq!(writes[0], (first, "tx-a".to_owned()));
            assert_eq!(writes[1].1, "tx-b");
            assert_eq!(writes[1].0 == batch_at, sealed);
            // A point read at that offset finds the value.
            let mut buf = Vec::new();
            for (offset, key, value) in [
                (writes[0].0, "tx-a", &b"\"a\""[..]),
                (writes[1].0, "tx-b", &b"\"bb\""[..]),
            ] {
                let at = read_record(
                    &log,
                    Path::new("t"),
                    offset,
                    key,
                    value.len() as u32,
                    &mut buf,
                )
                .expect("read");
                assert_eq!(&buf[at], value);
            }
            // Asking for a key the record does not hold is corruption.
            let wrong = read_record(&log, Path::new("t"), writes[0].0, "tx-c", 3, &mut buf);
            assert!(matches!(wrong, Err(Error::Corruption { .. })), "{wrong:?}");
        }
    }

    #[test]
    fn why_a_frame_failed_is_said_as_check_reports_it() {
        let key = EncryptionKey::from([5u8; 32]);
        for key in [None, Some(&key)] {
            let (log, offsets, _) = log_with(1, key);
            let sealed = key.is_some();
            let len = log.len().expect("len") as usize;
            let mut bytes = vec![0u8; len - offsets[0] as usize];
            log.read_exact_at(&mut bytes, offsets[0]).expect("read");
            let seal = log.seal.as_deref();
            let mut scratch = Vec::new();
            let what = if sealed { "envelope" } else { "record" };

            let mut flipped = bytes.clone();
            let last = fixed_len(sealed) + 2;
            flipped[last] ^= 1;
            let err = open_copy(seal, &flipped, &mut scratch, offsets[0]).expect_err("checksum");
            assert_eq!(err.to_string(), format!("{what}: checksum mismatch"));

            let err = open_copy(seal, &bytes[..3], &mut scratch, offsets[0]).expect_err("short");
            assert_eq!(err.to_string(), format!("{what} header: truncated data"));

            if sealed {
                let err = open_copy(seal, &bytes, &mut scratch, offsets[0] + 8).expect_err("moved");
                assert_eq!(err, FrameError::Sealed(CryptoError::Authentication));
                assert_eq!(err.to_string(), "encrypted record: authentication failed");
            }
        }
    }
}
