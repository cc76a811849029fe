//! The single-writer rule: an exclusive OS lock (`flock`/`LockFileEx`, via
//! `std::fs::File::try_lock`) on the data file itself, held for the writer
//! handle's life.
//!
//! The lock follows the file, not its name: every path that reaches the file
//! (symlink, hard link, relative path) meets the same lock, and there is no
//! sidecar to delete or to plant. `flock` belongs to one open file
//! description, so readers opening the file (read-only handles, check,
//! backup, export) never disturb it, unlike `fcntl` locks. Compaction
//! replaces the data file by rename, so it locks the new file before the
//! rename and hands the handle over to that lock afterwards.
//!
//! A lock taken on a file that was renamed or unlinked meanwhile is worth
//! nothing, hence the classic lock-then-verify loop: after locking, the path
//! must still name the locked inode, else try again. Within one process a
//! registry of locked files tells a second handle it is the same process.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};

use super::paths::{self, Access};

/// Attempts before giving up on a file that keeps being replaced under us.
const MAX_ATTEMPTS: usize = 100;

/// Files (device, inode) locked for writing by this process, with the pid
/// that locked them: a child made by `fork()` inherits this memory, but the
/// locks in it are its parent's.
static LOCKED: Mutex<Option<HashMap<(u64, u64), u32>>> = Mutex::new(None);

/// Holds the writer lock until the last clone is dropped (the OS releases it
/// when the file closes, also on `kill -9`).
#[derive(Debug, Clone)]
pub struct WriterLock {
    held: Arc<Held>,
}

#[derive(Debug)]
struct Held {
    file: File,
    id: (u64, u64),
}

impl Drop for Held {
    fn drop(&mut self) {
        // Unlock before forgetting it: a handle of this process opening the
        // file right now is told "this process" rather than racing the OS lock.
        let _ = self.file.unlock();
        if let Some(locked) = LOCKED.lock().as_mut() {
            locked.remove(&self.id);
        }
    }
}

impl WriterLock {
    /// Take the lock on the file at `path` (resolved; created empty if
    /// missing) without waiting.
    ///
    /// # Errors
    /// [`Error::Locked`] naming the path and, where it can be found, the
    /// holder's pid (or saying it is this process); [`Error::NotAFile`] for
    /// a FIFO or device; I/O errors opening the file.
    pub fn acquire(path: &Path) -> Result<Self> {
        Self::take(path, Access::Write)
    }

    /// Take the lock on the file at `path` if there is one (creating
    /// nothing): `None` if there is no file.
    ///
    /// # Errors
    /// As [`WriterLock::acquire`].
    pub fn acquire_existing(path: &Path) -> Result<Option<Self>> {
        match Self::take(path, Access::Read) {
            Ok(lock) => Ok(Some(lock)),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn take(path: &Path, access: Access) -> Result<Self> {
        for _ in 0..MAX_ATTEMPTS {
            let file = paths::open_data_file(path, access)?;
            let id = paths::file_id(&file).map_err(|e| Error::io(path, e))?;
            let pid = std::process::id();
            let mut registry = LOCKED.lock();
            let locked = registry.get_or_insert_with(HashMap::new);
            if locked.get(&id) == Some(&pid) {
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                    pid: Some(pid),
                    this_process: true,
                });
            }
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Locked {
                        path: path.to_path_buf(),
                        pid: holder_pid(id),
                        this_process: false,
                    })
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
            }
            // Still the file the path names? If it was renamed away or
            // unlinked between our open and our lock, this lock guards
            // nothing: let go and take the file that is there now.
            if paths::path_id(path).ok() == Some(id) {
                locked.insert(id, pid);
                return Ok(WriterLock {
                    held: Arc::new(Held { file, id }),
                });
            }
        }
        Err(Error::io(
            path,
            std::io::Error::other("the file kept being replaced while it was being locked"),
        ))
    }

    /// The (device, inode) of the locked file.
    pub fn file_id(&self) -> (u64, u64) {
        self.held.id
    }
}

/// The pid holding an `flock` on file `id`, from `/proc/locks` (Linux; best
/// effort: `None` where it cannot be read or the pid is not visible here).
fn holder_pid(id: (u64, u64)) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        let (dev, ino) = id;
        let wanted = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
        let text = std::fs::read_to_string("/proc/locks").ok()?;
        // "1: FLOCK  ADVISORY  WRITE 4242 fd:01:131090 0 EOF"; waiters are
        // listed as "1: -> FLOCK ..." and are not holders.
        text.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, "FLOCK", _, "WRITE", pid, file, ..] if *file == wanted => {
                    pid.parse().ok().filter(|p| *p != 0)
                }
                _ => None,
            }
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = id;
        None
    }
}
