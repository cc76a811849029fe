//! Background compaction: when enough of the log is dead records (the
//! [`AutoCompact`] rule), a short-lived thread runs the ordinary online
//! compaction, so readers and writers only ever wait for its final swap.
//!
//! The thread holds the database only weakly until it starts, and gives up
//! (leaving the old file untouched) as soon as the database is closed or
//! every user handle is gone, so it never keeps the writer lock alive for
//! long after the user let go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::config::AutoCompact;

use super::db::Database;

/// The background compaction state of one database.
#[derive(Debug)]
pub(super) struct Background {
    rule: Option<AutoCompact>,
    /// Whether a background compaction is scheduled or running.
    busy: Mutex<bool>,
    idle: Condvar,
    /// Compactions finished since open (forced and background).
    pub completed: AtomicU64,
}

impl Background {
    pub fn new(rule: Option<AutoCompact>) -> Self {
        Background {
            rule,
            busy: Mutex::new(false),
            idle: Condvar::new(),
            completed: AtomicU64::new(0),
        }
    }

    fn finish(&self) {
        *self.busy.lock() = false;
        self.idle.notify_all();
    }
}

impl Database {
    /// Start a background compaction if the rule says the log is due and
    /// none is under way. Called by writers after they publish, with the log
    /// size and the live bytes they just saw.
    pub(super) fn compact_if_due(&self, file_bytes: u64, live_bytes: u64) {
        let bg = &self.inner.background;
        let Some(rule) = bg.rule else { return };
        if !rule.is_due(file_bytes, live_bytes) {
            return;
        }
        {
            let mut busy = bg.busy.lock();
            if *busy {
                return;
            }
            *busy = true;
        }
        let (weak, bg) = (Arc::downgrade(&self.inner), bg.clone());
        let spawned = std::thread::Builder::new()
            .name("ferrumdb-compact".into())
            .spawn({
                let bg = bg.clone();
                move || {
                    if let Some(inner) = weak.upgrade() {
                        // An error leaves the old file in place; the next
                        // write that finds the log due tries again.
                        let _ = Database { inner }.compact_in_background();
                    }
                    bg.finish();
                }
            });
        if spawned.is_err() {
            bg.finish();
        }
    }

    /// Block until no background compaction is scheduled or running.
    pub fn wait_for_background_compaction(&self) {
        let bg = &self.inner.background;
        let mut busy = bg.busy.lock();
        while *busy {
            bg.idle.wait(&mut busy);
        }
    }

    /// Compactions finished since open (forced and background).
    pub fn compactions(&self) -> u64 {
        self.inner.background.completed.load(Ordering::Relaxed)
    }
}
