//! Replay: reading a log's frames in order from an offset to its end, and
//! deciding where the log ends. Opening a database replays its whole log (or
//! the part a hint file does not cover); backup verifies its copy the same
//! way; `check` walks a log with the same end-of-log rule
//! ([`after_failure`]). A frame that does not read is either the end of
//! what is written (a torn tail after a crash, or a record a writer beside
//! us is still copying) or damage, and the rule that tells them apart is
//! here once.

use std::io;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{DecodeError, RecordHeader, RecordKind};

use super::frame::{self, read_frame, FrameError, ReadWindow};
use super::log::{map_decode, Log};
use super::Medium;

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
    /// The value (JSON; empty for a delete).
    pub value: &'a [u8],
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
    visit: impl FnMut(ReplayItem<'_>),
) -> Result<Replayed> {
    replay_between(log, name, (start, None), start_seq, repair, visit)
}

/// [`replay_from`] that stops at `until` (a committed end another process
/// published, see `storage::shared`), never cutting anything: the records
/// a follower takes in.
///
/// # Errors
/// As [`replay`].
pub fn replay_until(
    log: &Log,
    name: &Path,
    start: u64,
    until: u64,
    start_seq: Option<u64>,
    visit: impl FnMut(ReplayItem<'_>),
) -> Result<Replayed> {
    replay_between(log, name, (start, Some(until)), start_seq, false, visit)
}

fn replay_between(
    log: &Log,
    name: &Path,
    (start, until): (u64, Option<u64>),
    start_seq: Option<u64>,
    repair: bool,
    mut visit: impl FnMut(ReplayItem<'_>),
) -> Result<Replayed> {
    let mut file_len = log.medium.len().map_err(|e| Error::io(name, e))?;
    if let Some(until) = until {
        file_len = file_len.min(until);
    }
    let mut window = ReadWindow::new(&log.medium, file_len);
    let seal = log.seal.as_deref();
    let mut pos = start;
    let mut last_seq = start_seq;
    let mut last_record = None;
    let mut scratch = Vec::new();
    // The offset whose failure was already re-read once (see `after_failure`).
    let mut reread = None;
    while pos < file_len {
        let failed = match read_frame(&mut window, seal, &mut scratch, pos)
            .map_err(|e| Error::io(name, e))?
        {
            Ok(frame) => {
                for write in frame.writes() {
                    let write = write.map_err(|e| map_decode(name, pos, e))?;
                    visit(ReplayItem {
                        offset: write.offset,
                        header: write.record.header,
                        key: write.record.key,
                        value: write.record.value,
                    });
                }
                last_seq = Some(frame.record.header.seq);
                last_record = Some(pos);
                pos += frame.len as u64;
                continue;
            }
            Err(FrameError::Unreadable { header_ok, err, .. }) => (pos, last_seq, header_ok, err),
            // Intact but not openable, or malformed inside: never a torn write.
            Err(other) => return Err(other.into_error(name, pos)),
        };
        if let Some(end) = end_of_log(log, &mut window, name, failed, repair, &mut reread)? {
            return Ok(Replayed { end, last_record });
        }
    }
    Ok(Replayed {
        end: pos,
        last_record,
    })
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
    let fixed = frame::fixed_len(sealed);
    let mut at = from;
    while at <= last && at + fixed as u64 <= file_len {
        let head = window.at(at, fixed)?;
        if let Ok(len) = frame::frame_len(sealed, head) {
            let inner_of_torn_batch = !sealed
                && RecordHeader::parse(head).is_ok_and(|h| {
                    h.seq == torn_seq && matches!(h.kind, RecordKind::Put | RecordKind::Delete)
                });
            if !inner_of_torn_batch
                && at + len as u64 <= file_len
                && frame::passes_checksum(sealed, window.at(at, len)?)
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
