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
use crate::format::Record;

use super::frame::{read_frame, ReadWindow};
use super::log::{open_log, Log};
use super::replay::{after_failure, last_nonzero, Failure};
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
    let mut scratch = Vec::new();
    let mut pos = log.data_start();
    let mut last_seq = None;
    // The offset whose failure was already re-read once (see `after_failure`).
    let mut reread = None;
    while pos < file_len {
        let failure = match read_frame(&mut window, log.seal.as_deref(), &mut scratch, pos)
            .map_err(io_err)?
        {
            Ok(frame) => {
                let len = frame.len as u64;
                report.records += 1;
                if frame.is_batch() {
                    report.transactions += 1;
                }
                for write in frame.writes() {
                    match write {
                        Ok(write) => {
                            report.writes += 1;
                            visit(write.offset, write.record);
                        }
                        // The batch checksum held: a forged or buggy batch.
                        Err(e) => report.damage.push(Damage {
                            offset: pos,
                            len,
                            reason: format!("transaction holds a bad record: {e}"),
                        }),
                    }
                }
                last_seq = Some(frame.record.header.seq);
                pos += len;
                continue;
            }
            Err(e) => e.to_string(),
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
