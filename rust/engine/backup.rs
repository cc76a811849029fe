//! Online backup: a consistent copy of the database while it stays in use.
//!
//! The log is append-only, so every byte before the current end is final
//! until a compaction rewrites the file. A backup therefore holds off
//! compaction, notes the end of the log under the writer mutex (a boundary
//! between two commits), and copies the bytes before it while writers keep
//! appending after it. The copy goes to `DEST.tmp-backup`, is verified by a
//! replay (every record's checksum), synced and renamed into place, so `DEST`
//! is either the previous file or a complete, verified snapshot.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::storage::{self, Medium, Seal};

use super::db::Database;

/// Bytes copied per read.
const CHUNK: usize = 4 << 20;

impl Database {
    /// Write a consistent snapshot of the database to `dest` (replacing it
    /// atomically if it exists). Readers and writers keep going; only a
    /// compaction waits for the copy. Works for in-memory databases too
    /// (which makes the copy their first file).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `dest` is the database itself or is open
    /// for writing by someone; [`Error::Closed`]; corruption found in the
    /// copy; I/O errors (`dest` is then left as it was).
    pub fn backup(&self, dest: &Path) -> Result<u64> {
        self.backup_with_progress(dest, &mut |_, _| {})
    }

    /// [`Database::backup`], calling `progress(copied, total)` in bytes as it
    /// goes. Returns the size of the copy.
    ///
    /// # Errors
    /// As [`Database::backup`].
    pub fn backup_with_progress(
        &self,
        dest: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<u64> {
        self.check_open()?;
        // The file `dest` names (a backup through a symlink replaces the
        // link's target, and the link stays a link).
        let dest = &storage::resolve(dest).map_err(|e| Error::io(dest, e))?;
        if self.file_path() == Some(dest.as_path()) {
            return Err(Error::InvalidConfig(format!(
                "cannot back up {} onto itself; choose another file",
                dest.display()
            )));
        }
        // Someone writing `dest` as a database would lose it under the
        // rename. Its lock is on the file itself (nothing is created here).
        let _dest_lock = storage::WriterLock::acquire_existing(dest).map_err(|e| match e {
            Error::Locked { path, pid, .. } => Error::InvalidConfig(format!(
                "{} is open for writing{}; close it or back up to another file",
                path.display(),
                pid.map(|p| format!(" by process {p}")).unwrap_or_default()
            )),
            other => other,
        })?;

        // No compaction may swap the file while its bytes are copied.
        let _no_compaction = self.inner.compacting.lock();
        self.check_open()?;
        let (end, log) = {
            let w = self.inner.writer.lock();
            (w.end, w.log.clone())
        };
        let tmp = storage::paths::backup_temp_path(dest);
        let result = copy_prefix(&log, self.name(), &tmp, end, progress).and_then(|()| {
            verify(&tmp, end, log.seal.clone())?;
            storage::fault::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
            storage::sync_parent_dir(dest).map_err(|e| Error::io(dest, e))
        });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| end)
    }
}

/// Copy bytes `0..end` of `medium` into a new file at `to`, synced.
fn copy_prefix(
    medium: &Medium,
    name: &Path,
    to: &Path,
    end: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    // Never through a symlink planted at the temporary name.
    let file = storage::paths::create_sidecar(to).map_err(|e| Error::io(to, e))?;
    let out = Medium::Disk(file);
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    while at < end {
        let n = usize::try_from(end - at).unwrap_or(CHUNK).min(CHUNK);
        let chunk = buf.get_mut(..n).unwrap_or_default();
        medium
            .read_exact_at(chunk, at)
            .map_err(|e| Error::io(name, e))?;
        out.write_all_at(chunk, at).map_err(|e| Error::io(to, e))?;
        at += n as u64;
        progress(at, end);
    }
    out.sync_data().map_err(|e| Error::io(to, e))
}

/// Replay the copy at `path`, checking every record's checksum, and that
/// the records end exactly at `end` (a copy has no torn tail to forgive).
fn verify(path: &Path, end: u64, seal: Option<Arc<Seal>>) -> Result<()> {
    let log = storage::open_log_sealed(path, seal)?;
    let good = storage::replay(&log.medium, path, log.medium.data_start(), false, |_| {})?;
    if good != end {
        return Err(Error::corruption(
            path,
            good,
            "the backup copy does not read back intact (source or disk damaged?)",
        ));
    }
    Ok(())
}
