//! Checking a log end to end, and finding the intact records around damage.
//!
//! Replay at open stops at the first damaged record (serving nothing after
//! it); this scan instead keeps going: after a record that fails to decode it
//! looks for the next offset where a checksum-valid record starts, reports
//! the bytes in between as damaged, and carries on from there. `ferrumdb
//! check` prints the result; salvage copies every record it finds into a new
//! database. A tail that does not decode and is not followed by any intact
//! record is what a crash leaves (or damage to the very last record; the two
//! cannot be told apart) and is reported separately from damage.
//!
//! [`CheckReport`] is the one shape of the report: Python's `check()` and
//! `ferrumdb check` (piped) both serialize it, and a salvage report embeds it.

use std::io;
use std::path::{Path, PathBuf};

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::crypto::EncryptionKey;
use crate::error::{Error, Result};
use crate::format::{
    is_hint_digest, BatchRecords, EnvelopeHeader, Record, RecordHeader, RecordKind,
    ENVELOPE_HEADER_LEN, RECORD_HEADER_LEN,
};

use super::log::{after_failure, last_nonzero, open_log, Failure, Log, ReadWindow};
use super::Medium;

/// A run of bytes that holds no readable record; serialized as
/// `{"offset", "length", "reason"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    /// First damaged byte.
    pub offset: u64,
    /// Number of bytes skipped.
    #[serde(rename = "length")]
    pub len: u64,
    /// Why the record there failed.
    pub reason: String,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The file checked.
    pub file: PathBuf,
    /// Its size in bytes.
    pub file_bytes: u64,
    /// Intact records (a transaction counts once).
    pub records: u64,
    /// Intact puts, deletes and metadata entries (a transaction's each).
    pub writes: u64,
    /// Intact transactions (batch records).
    pub transactions: u64,
    /// Damaged regions, in file order, each followed by intact records.
    pub damage: Vec<Damage>,
    /// An undecodable tail with nothing intact after it: a write cut off by
    /// a crash (cut at the next open), or damage to the last record.
    pub torn_tail: Option<Damage>,
}

impl CheckReport {
    /// Whether every byte before the tail is intact.
    pub fn is_clean(&self) -> bool {
        self.damage.is_empty()
    }

    /// Bytes in damaged regions (not counting a torn tail).
    pub fn damaged_bytes(&self) -> u64 {
        self.damage.iter().map(|d| d.len).sum()
    }

    /// `"damaged"`, `"torn_tail"` (a torn tail alone is not damage) or `"clean"`.
    pub fn status(&self) -> &'static str {
        match (self.is_clean(), &self.torn_tail) {
            (false, _) => "damaged",
            (true, Some(_)) => "torn_tail",
            (true, None) => "clean",
        }
    }
}

/// The report as a map: `file`, `file_bytes`, `status`, `ok`, `records`,
/// `writes`, `transactions`, `damage` (a list of [`Damage`]),
/// `damaged_bytes`, `torn_tail` (a [`Damage`] or null). Written out by hand
/// only because `status`, `ok` and `damaged_bytes` are derived, not stored.
impl Serialize for CheckReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = serializer.serialize_struct("CheckReport", 10)?;
        st.serialize_field("file", &self.file.to_string_lossy())?;
        st.serialize_field("file_bytes", &self.file_bytes)?;
        st.serialize_field("status", self.status())?;
        st.serialize_field("ok", &self.is_clean())?;
        st.serialize_field("records", &self.records)?;
        st.serialize_field("writes", &self.writes)?;
        st.serialize_field("transactions", &self.transactions)?;
        st.serialize_field("damage", &self.damage)?;
        st.serialize_field("damaged_bytes", &self.damaged_bytes())?;
        st.serialize_field("torn_tail", &self.torn_tail)?;
        st.end()
    }
}

/// Check every record of the log at `path` without taking the writer lock
/// (an encrypted log needs its `key`: records are authenticated too).
///
/// # Errors
/// [`Error::Corruption`] if the file header itself is unreadable (nothing
/// after it can be trusted to be a FerrumDB log), [`Error::Encryption`] for
/// a missing or wrong key, I/O errors.
pub fn check_log(path: &Path, key: Option<&EncryptionKey>) -> Result<CheckReport> {
    let log = open_log(path, true, key)?;
    scan_log(&log.medium, path, &mut |_, _| {})
}

/// Read every record from the end of the header on, calling `visit(offset,
/// record)` for each intact put, delete or meta record (the records of a
/// transaction one by one) in file order, skipping over damage.
///
/// # Errors
/// I/O errors only: damage is reported, not raised.
pub fn scan_log(
    log: &Log,
    name: &Path,
    visit: &mut dyn FnMut(u64, Record<'_>),
) -> Result<CheckReport> {
    let medium: &Medium = log;
    let io_err = |e: io::Error| Error::io(name, e);
    let file_len = medium.len().map_err(io_err)?;
    let mut report = CheckReport {
        file: name.to_path_buf(),
        file_bytes: file_len,
        records: 0,
        writes: 0,
        transactions: 0,
        damage: Vec::new(),
        torn_tail: None,
    };
    let mut window = ReadWindow::new(medium, file_len);
    let mut plain = Vec::new();
    let mut pos = log.data_start();
    let mut last_seq = None;
    // The offset whose failure was already re-read once (see `after_failure`).
    let mut reread = None;
    while pos < file_len {
        let failure = match decode_at(log, &mut window, &mut plain, pos).map_err(io_err)? {
            Ok((len, rec)) => {
                let len = len as u64;
                report.records += 1;
                if rec.header.kind == RecordKind::Batch {
                    report.transactions += 1;
                    for inner in BatchRecords::new(rec) {
                        match inner {
                            Ok((at, r)) => {
                                report.writes += 1;
                                // Sealed, the batch is one envelope at `pos`.
                                let offset = if log.seal.is_some() {
                                    pos
                                } else {
                                    pos + at as u64
                                };
                                visit(offset, r);
                            }
                            // The batch checksum held: a forged or buggy batch.
                            Err(e) => report.damage.push(Damage {
                                offset: pos,
                                len,
                                reason: format!("transaction holds a bad record: {e}"),
                            }),
                        }
                    }
                } else if !is_hint_digest(&rec) {
                    report.writes += 1;
                    visit(pos, rec);
                }
                last_seq = Some(rec.header.seq);
                pos += len;
                continue;
            }
            Err(reason) => reason,
        };
        // The intact records inside a damaged transaction are skipped with
        // it: a transaction is recovered whole or not at all.
        let sealed = log.seal.is_some();
        match after_failure(&mut window, sealed, pos, last_seq, &mut reread).map_err(io_err)? {
            // A writer beside us was copying it: read it again.
            Failure::Reread => continue,
            Failure::Damage { next } => {
                report.damage.push(Damage {
                    offset: pos,
                    len: next - pos,
                    reason: failure,
                });
                pos = next;
            }
            Failure::End => {
                if let Some(last) = last_nonzero(medium, pos, file_len).map_err(io_err)? {
                    report.torn_tail = Some(Damage {
                        offset: pos,
                        len: last + 1 - pos,
                        reason: failure,
                    });
                }
                break;
            }
        }
    }
    Ok(report)
}

/// Decode the record (envelope, when sealed) at `pos`: its length on disk
/// and the plain record, or why it failed.
fn decode_at<'b>(
    log: &Log,
    window: &'b mut ReadWindow<'_>,
    plain: &'b mut Vec<u8>,
    pos: u64,
) -> io::Result<std::result::Result<(usize, Record<'b>), String>> {
    let Some(seal) = &log.seal else {
        let header = match RecordHeader::parse(window.at(pos, RECORD_HEADER_LEN)?) {
            Ok(h) => h,
            Err(e) => return Ok(Err(format!("record header: {e}"))),
        };
        let len = header.record_len();
        return Ok(Record::decode(window.at(pos, len)?)
            .map(|r| (len, r))
            .map_err(|e| format!("record: {e}")));
    };
    let env = match EnvelopeHeader::parse(window.at(pos, ENVELOPE_HEADER_LEN)?) {
        Ok(h) => h,
        Err(e) => return Ok(Err(format!("envelope header: {e}"))),
    };
    let len = env.envelope_len();
    let bytes = window.at(pos, len)?;
    if let Err(e) = env.verify(bytes) {
        return Ok(Err(format!("envelope: {e}")));
    }
    plain.clear();
    plain.extend_from_slice(bytes);
    let body = match seal.open_envelope(plain, pos) {
        Ok(body) => body,
        Err(e) => return Ok(Err(format!("encrypted record: {e}"))),
    };
    Ok(Record::decode(plain.get(body).unwrap_or_default())
        .map(|r| (len, r))
        .map_err(|e| format!("record: {e}")))
}
