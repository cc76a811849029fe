//! The health of one handle, consulted by every call before it does anything:
//! open, closed, poisoned by a failed sync, or holding a background error for
//! the next call.
//!
//! The policy is PostgreSQL's (and LMDB's `MDB_PANIC`): after a failed
//! `fdatasync`/`msync`/directory `fsync`, Linux may have marked the unwritten
//! pages clean, so a later sync that "succeeds" proves nothing. The first
//! failed sync of the log therefore poisons the handle: the call that met it
//! raises the OS error, and every later call except `close()` raises an error
//! with the same errno telling the user to reopen (reads too, so a write of
//! unknown durability is never served). Reopening recovers from what is on
//! disk. A background failure (the periodic flusher, auto-compaction) reaches
//! the next call: a poisoning one stays, any other is raised once.
//!
//! The open, healthy case costs one relaxed atomic load per call.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::Mutex;

use crate::error::{Error, Result};

const CLOSED: u8 = 1;
const POISONED: u8 = 2;
const PENDING: u8 = 4;

/// A failed sync, kept so every later call can describe it.
#[derive(Debug)]
struct Poison {
    errno: Option<i32>,
    kind: io::ErrorKind,
    detail: String,
    /// Some call has raised it (the one that met it, or a later one).
    reported: bool,
}

impl Poison {
    fn source(&self) -> io::Error {
        match self.errno {
            Some(errno) => io::Error::from_raw_os_error(errno),
            None => io::Error::new(self.kind, self.detail.clone()),
        }
    }
}

#[derive(Debug)]
pub(super) struct Health {
    bits: AtomicU8,
    /// The database file (for messages).
    name: PathBuf,
    poison: Mutex<Option<Poison>>,
    /// A background error that did not poison, for the next call.
    pending: Mutex<Option<Error>>,
}

impl Health {
    pub fn new(name: PathBuf) -> Self {
        Health {
            bits: AtomicU8::new(0),
            name,
            poison: Mutex::new(None),
            pending: Mutex::new(None),
        }
    }

    /// Ok while the handle is open and healthy; otherwise the error this
    /// call must raise.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Poisoned`], or a pending background error.
    #[inline]
    pub fn check(&self) -> Result<()> {
        match self.bits.load(Ordering::Relaxed) {
            0 => Ok(()),
            bits => self.unhealthy(bits),
        }
    }

    #[cold]
    fn unhealthy(&self, bits: u8) -> Result<()> {
        if bits & CLOSED != 0 {
            return Err(Error::Closed);
        }
        if bits & POISONED != 0 {
            if let Some(e) = self.raise_poison() {
                return Err(e);
            }
        }
        if bits & PENDING != 0 {
            // Cleared before the take: an error deferred in between is taken
            // here, or leaves the bit set for the next call; none is lost.
            self.bits.fetch_and(!PENDING, Ordering::AcqRel);
            if let Some(e) = self.pending.lock().take() {
                return Err(e);
            }
        }
        Ok(())
    }

    fn raise_poison(&self) -> Option<Error> {
        let mut poison = self.poison.lock();
        let p = poison.as_mut()?;
        p.reported = true;
        Some(Error::Poisoned {
            path: self.name.clone(),
            source: p.source(),
        })
    }

    pub fn is_closed(&self) -> bool {
        self.bits.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Mark the handle closed; returns whether it already was.
    pub fn set_closed(&self) -> bool {
        self.bits.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED != 0
    }

    pub fn is_poisoned(&self) -> bool {
        self.bits.load(Ordering::Acquire) & POISONED != 0
    }

    /// A sync of the log failed with `e`: poison the handle (the first
    /// failure is the one kept). `reported` says whether the caller raises
    /// `e` to the user itself (false for background threads).
    pub fn poison(&self, e: &io::Error, reported: bool) {
        let mut poison = self.poison.lock();
        match poison.as_mut() {
            Some(p) => p.reported |= reported,
            None => {
                *poison = Some(Poison {
                    errno: e.raw_os_error(),
                    kind: e.kind(),
                    detail: e.to_string(),
                    reported,
                });
            }
        }
        self.bits.fetch_or(POISONED, Ordering::AcqRel);
    }

    /// A background job failed with `e`: keep it for the next call. A
    /// poisoning failure is already recorded (and stays); a closed handle
    /// has nobody to tell.
    pub fn defer(&self, e: Error) {
        if matches!(e, Error::Closed) || self.is_closed() {
            return;
        }
        if self.is_poisoned() {
            return;
        }
        *self.pending.lock() = Some(e);
        self.bits.fetch_or(PENDING, Ordering::AcqRel);
    }

    /// For close(): the poison if no call has raised it yet, else a pending
    /// background error, if any.
    pub fn take_unreported(&self) -> Option<Error> {
        {
            let poison = self.poison.lock();
            if poison.as_ref().is_some_and(|p| !p.reported) {
                drop(poison);
                return self.raise_poison();
            }
        }
        self.pending.lock().take()
    }
}
