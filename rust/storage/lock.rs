//! The single-writer rule: an exclusive OS lock (`flock`/`LockFileEx`, via
//! `std::fs::File::try_lock`) on a sidecar `<db>.lock` file.
//!
//! The lock lives on a sidecar rather than the data file because compaction
//! replaces the data file by rename, which would silently drop a lock held on
//! the old inode. The holder writes its pid into the file so a refused opener
//! can say who holds it. The lock file is never deleted: deleting lock files
//! races with openers that already hold a descriptor to them.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Holds the writer lock until dropped (the OS releases it when the file closes,
/// also on `kill -9`).
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

/// `app.db` -> `app.db.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

impl WriterLock {
    /// Take the lock for `db` without waiting.
    ///
    /// # Errors
    /// [`Error::Locked`] naming the path and the holder's pid when another
    /// process has it; [`Error::Io`] when the lock file cannot be created.
    pub fn acquire(db: &Path) -> Result<Self> {
        let path = lock_path(db);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Error::Locked {
                    path: db.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        // Best effort: the pid is only used for the error message of others.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| write!(file, "{}", std::process::id()));
        Ok(WriterLock { _file: file })
    }
}
