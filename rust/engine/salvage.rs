//! Salvage: rebuild a damaged database from every record that is still intact.
//!
//! The storage scan skips damaged regions and hands over the intact records
//! in file order; replaying them into a fresh database (later writes win,
//! deletes and index definitions included, expired keys dropped) recovers
//! everything the damage did not touch. What was lost is reported as byte
//! ranges: the keys that lived there cannot be named, since their records
//! are exactly what is unreadable.

use std::path::Path;

use crate::config::{Config, FsyncPolicy};
use crate::crypto::EncryptionKey;
use crate::error::{Error, Result};
use crate::format::RecordKind;
use crate::storage::{self, CheckReport};

use super::db::Database;

/// What a salvage recovered and what it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalvageReport {
    /// The scan of the damaged file: intact records, damaged regions.
    pub check: CheckReport,
    /// Live keys in the new database.
    pub keys: u64,
}

impl Database {
    /// Copy every intact record of the database file `src` into a new
    /// database at `dest` (which must not exist), skipping damaged regions.
    /// `src` is only read, never changed, and needs no lock.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `dest` exists, [`Error::Corruption`] if
    /// the file header of `src` is unreadable, I/O errors.
    /// An encrypted `src` needs its `key`; the new database is encrypted
    /// under the same key.
    pub fn salvage(src: &Path, dest: &Path, key: Option<&EncryptionKey>) -> Result<SalvageReport> {
        if dest.exists() {
            return Err(Error::InvalidConfig(format!(
                "{} already exists; salvage writes a new database, so choose a new file",
                dest.display()
            )));
        }
        let log = storage::open_log(src, true, key)?;
        let mut config = Config::new()
            .with_path(dest)
            .with_fsync_policy(FsyncPolicy::Never)
            .with_auto_compact(None);
        if let Some(key) = key {
            config = config.with_encryption(key.clone());
        }
        let out = Database::open(&config)?;
        let now = out.clock().now_ms();
        let mut failed = None;
        let check = storage::scan_log(&log.medium, src, &mut |_, rec| {
            if failed.is_some() {
                return;
            }
            let (key, value, expires_at) = (rec.key, rec.value, rec.header.expires_at);
            let applied = match rec.header.kind {
                RecordKind::Put if expires_at == 0 || expires_at > now => {
                    out.put_raw_expiring(key, value, expires_at)
                }
                RecordKind::Put | RecordKind::Delete => out.delete(key).map(|_| ()),
                RecordKind::Meta if value.is_empty() => out.delete_meta(key).map(|_| ()),
                RecordKind::Meta => out.put_meta(key, value),
                RecordKind::Batch => Ok(()),
            };
            if let Err(e) = applied {
                failed = Some(e);
            }
        });
        let result = match (check, failed) {
            (Err(e), _) | (Ok(_), Some(e)) => Err(e),
            (Ok(check), None) => out.flush().map(|()| SalvageReport {
                keys: out.len() as u64,
                check,
            }),
        };
        let closed = out.close();
        if result.is_err() {
            let _ = std::fs::remove_file(dest);
        }
        let report = result?;
        closed?;
        Ok(report)
    }
}
