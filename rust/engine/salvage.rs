//! Salvage: rebuild a damaged database from every record that is still intact.
//!
//! The storage scan skips damaged regions and hands over the intact records
//! in file order; replaying them into a fresh database (later writes win,
//! deletes and index definitions included, expired keys dropped) recovers
//! everything the damage did not touch. What was lost is reported as byte
//! ranges: the keys that lived there cannot be named, since their records
//! are exactly what is unreadable.
//!
//! Salvaging a database in place ([`Database::salvage_in_place`]) holds the
//! writer lock on the damaged file for its whole run and locks the rebuilt
//! file before renaming it into place: several processes salvaging at once
//! never move aside a file that another one has already made live.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, FsyncPolicy};
use crate::crypto::EncryptionKey;
use crate::error::{Error, Result};
use crate::format::RecordKind;
use crate::storage::{self, CheckReport, WriterLock};

use super::db::Database;

/// What a salvage recovered and what it could not; serialized as the check
/// report's fields plus `keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SalvageReport {
    /// The scan of the damaged file: intact records, damaged regions
    /// (its fields are serialized inline, beside `keys`).
    #[serde(flatten)]
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
        let out = Database::open(&quiet_config(dest, key))?;
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

    /// Rebuild the damaged database at `path` in place: salvage its intact
    /// records into a new file, keep the damaged original as `PATH.damaged`
    /// (`.damaged.1`, ... if taken) and move the new file to `path`. Returns
    /// the report and where the original was kept; `None`, changing nothing, if the file opens without damage (another
    /// process may have salvaged it already).
    ///
    /// The writer lock on the damaged file is held throughout, and the new
    /// file is locked before its rename, so no other writer can have either
    /// open meanwhile; the lock is released on return.
    ///
    /// # Errors
    /// [`Error::Locked`] if another handle has the database open for
    /// writing; as [`Database::salvage`] otherwise.
    pub fn salvage_in_place(
        path: &Path,
        key: Option<&EncryptionKey>,
    ) -> Result<Option<(SalvageReport, PathBuf)>> {
        let path = &storage::resolve(path).map_err(|e| Error::io(path, e))?;
        let lock = WriterLock::acquire(path)?;
        // Damaged still? Under the lock, the open says for certain.
        match Database::open_with_lock(&quiet_config(path, key), Some(lock.clone())) {
            Ok(db) => return db.close().map(|()| None),
            Err(Error::Corruption { .. }) => {}
            Err(e) => return Err(e),
        }
        let rebuilt = storage::paths::salvage_path(path);
        let report = Database::salvage(path, &rebuilt, key)?;
        let kept = storage::paths::damaged_path(path);
        let swapped = WriterLock::acquire(&rebuilt).and_then(|_new_lock| {
            std::fs::rename(path, &kept).map_err(|e| Error::io(path, e))?;
            if let Err(e) = std::fs::rename(&rebuilt, path) {
                // Put the original back rather than leave no database.
                let _ = std::fs::rename(&kept, path);
                return Err(Error::io(path, e));
            }
            storage::sync_parent_dir(path).map_err(|e| Error::io(path, e))
        });
        if swapped.is_err() {
            let _ = std::fs::remove_file(&rebuilt);
        }
        drop(lock);
        swapped.map(|()| Some((report, kept)))
    }
}

/// A writer config for salvage's own opens: no syncing until the final
/// flush, no background compaction, encrypted under `key` if given.
fn quiet_config(path: &Path, key: Option<&EncryptionKey>) -> Config {
    let config = Config::new()
        .with_path(path)
        .with_fsync_policy(FsyncPolicy::Never)
        .with_auto_compact(None);
    match key {
        Some(key) => config.with_encryption(key.clone()),
        None => config,
    }
}
