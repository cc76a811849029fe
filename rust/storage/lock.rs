//! Who may write: an OS lock (`flock`/`LockFileEx`, via `std::fs::File`'s
//! `try_lock`/`try_lock_shared`) on the data file itself, held for the
//! writer handle's life.
//!
//! Writers share the file by default: each holds a shared lock, and their
//! appends are serialized by the write lock in the shared page (see
//! `storage::shared`), held only while one write is appended. An
//! `exclusive` writer holds an exclusive lock, so every other writer open is
//! refused at once. An opener that gets the exclusive lock without asking
//! for it is *alone*: no other writer has the file open, so it may repair a
//! torn tail (cutting the file) before it lets others in by turning its lock
//! into a shared one; a closing writer that finds itself alone the same way
//! may trim the file and write a hint. Nobody else ever shortens the file,
//! so no process loses a region it has mapped.
//!
//! The lock follows the file, not its name: every path that reaches the file
//! (symlink, hard link, relative path) meets the same lock, and there is no
//! sidecar to delete or to plant. `flock` belongs to one open file
//! description, so readers opening the file (read-only handles, check,
//! backup, export) never disturb it, unlike `fcntl` locks. Compaction
//! replaces the data file by rename, so it locks the new file before the
//! rename and hands the handle over to that lock afterwards; the other
//! writers take the new file's lock when they move to it.
//!
//! A lock taken on a file that was renamed or unlinked meanwhile is worth
//! nothing, hence the classic lock-then-verify loop: after locking, the path
//! must still name the locked inode, else try again. Within one process a
//! registry of exclusively locked files tells a second handle it is the same
//! process.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, Result};

use super::paths::{self, Access};

/// Attempts before giving up on a file that keeps being replaced under us.
const MAX_ATTEMPTS: usize = 100;

/// How long a sharing opener waits while another opener holds the file
/// alone for a moment (repairing it at open, or trimming it at close)
/// before it gives up with [`Error::Locked`].
const ALONE_WAIT: Duration = Duration::from_secs(30);

/// Files (device, inode) locked exclusively by this process, with the pid
/// that locked them: a child made by `fork()` inherits this memory, but the
/// locks in it are its parent's.
static LOCKED: Mutex<Option<HashMap<(u64, u64), u32>>> = Mutex::new(None);

/// How a writer holds the data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// The only writer: every other writer open is refused.
    Exclusive,
    /// One of any number of writers.
    Shared,
}

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
    mode: LockMode,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Unlock before forgetting it: a handle of this process opening the
        // file right now is told "this process" rather than racing the OS lock.
        let _ = self.file.unlock();
        if self.mode == LockMode::Exclusive {
            if let Some(locked) = LOCKED.lock().as_mut() {
                locked.remove(&self.id);
            }
        }
    }
}

/// A shared writer lock just taken, and whether its taker is alone.
#[derive(Debug)]
pub struct Joined {
    /// The lock. While `alone`, it is still held exclusively: call
    /// [`WriterLock::share`] once the file is repaired.
    pub lock: WriterLock,
    /// No other writer has the file open: the file may be repaired.
    pub alone: bool,
}

impl WriterLock {
    /// Take the exclusive lock on the file at `path` (resolved; created
    /// empty if missing) without waiting.
    ///
    /// # Errors
    /// [`Error::Locked`] naming the path and, where it can be found, the
    /// holder's pid (or saying it is this process); [`Error::NotAFile`] for
    /// a FIFO or device; I/O errors opening the file.
    pub fn acquire(path: &Path) -> Result<Self> {
        Self::take(path, Access::Write, LockMode::Exclusive, &|| false).map(|j| j.lock)
    }

    /// Take the lock on the file at `path` (created empty if missing) in
    /// `mode`. A sharing opener that finds another holding the file
    /// exclusively waits while that is a passing moment (an opener repairing
    /// it alone, a writer trimming it at close), and is refused at once when
    /// `exclusive_holder()` says an exclusive writer holds it.
    ///
    /// # Errors
    /// As [`WriterLock::acquire`].
    pub fn join(
        path: &Path,
        mode: LockMode,
        exclusive_holder: &dyn Fn() -> bool,
    ) -> Result<Joined> {
        Self::take(path, Access::Write, mode, exclusive_holder)
    }

    /// Take the exclusive lock on the file at `path` if there is one
    /// (creating nothing): `None` if there is no file.
    ///
    /// # Errors
    /// As [`WriterLock::acquire`].
    pub fn acquire_existing(path: &Path) -> Result<Option<Self>> {
        match Self::take(path, Access::Read, LockMode::Exclusive, &|| false) {
            Ok(joined) => Ok(Some(joined.lock)),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn take(
        path: &Path,
        access: Access,
        mode: LockMode,
        exclusive_holder: &dyn Fn() -> bool,
    ) -> Result<Joined> {
        let started = Instant::now();
        let mut pause = Duration::from_micros(200);
        let mut attempts = 0;
        while attempts < MAX_ATTEMPTS {
            let file = paths::open_data_file(path, access)?;
            let id = paths::file_id(&file).map_err(|e| Error::io(path, e))?;
            let pid = std::process::id();
            let mut registry = LOCKED.lock();
            let locked = registry.get_or_insert_with(HashMap::new);
            let locked_out = |this_process: bool| {
                let holder = if this_process {
                    Some(pid)
                } else {
                    holder_pid(id)
                };
                Error::Locked {
                    path: path.to_path_buf(),
                    pid: holder,
                    this_process: holder == Some(pid),
                }
            };
            if locked.get(&id) == Some(&pid) {
                return Err(locked_out(true));
            }
            let alone = match file.try_lock() {
                Ok(()) => true,
                Err(std::fs::TryLockError::WouldBlock) if mode == LockMode::Exclusive => {
                    return Err(locked_out(false))
                }
                Err(std::fs::TryLockError::WouldBlock) => match file.try_lock_shared() {
                    Ok(()) => false,
                    Err(std::fs::TryLockError::WouldBlock) => {
                        // Held exclusively: by an exclusive writer (refused
                        // at once), or alone for a moment (wait for it).
                        if exclusive_holder() || started.elapsed() > ALONE_WAIT {
                            return Err(locked_out(false));
                        }
                        drop(registry);
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(10));
                        continue;
                    }
                    Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
                },
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
            };
            attempts += 1;
            // Still the file the path names? If it was renamed away or
            // unlinked between our open and our lock, this lock guards
            // nothing: let go and take the file that is there now.
            if paths::path_id(path).ok() == Some(id) {
                if mode == LockMode::Exclusive {
                    locked.insert(id, pid);
                }
                return Ok(Joined {
                    lock: WriterLock {
                        held: Arc::new(Held { file, id, mode }),
                    },
                    alone,
                });
            }
        }
        Err(Error::io(
            path,
            std::io::Error::other("the file kept being replaced while it was being locked"),
        ))
    }

    /// Let other sharing writers in: turn the exclusive hold of an opener
    /// that was alone into a shared one (no-op for an exclusive writer).
    ///
    /// # Errors
    /// I/O errors from the OS lock.
    pub fn share(&self) -> std::io::Result<()> {
        if self.held.mode == LockMode::Shared {
            self.held.file.lock_shared()?;
        }
        Ok(())
    }

    /// Whether this writer is alone on the file now: an exclusive writer
    /// always is; a sharing one is when no other writer holds the file, and
    /// then holds it exclusively until [`WriterLock::share`] or the drop.
    pub fn try_alone(&self) -> bool {
        match self.held.mode {
            LockMode::Exclusive => true,
            LockMode::Shared => self.held.file.try_lock().is_ok(),
        }
    }

    /// Whether this is an exclusive writer's lock.
    pub fn mode(&self) -> LockMode {
        self.held.mode
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
                [_, "FLOCK", _, "WRITE" | "READ", pid, file, ..] if *file == wanted => {
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
