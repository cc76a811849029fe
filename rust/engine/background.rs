//! Background compaction: when enough of the log is dead records (the
//! [`AutoCompact`] rule), a short-lived thread runs the ordinary online
//! compaction, so readers and writers only ever wait for its final swap.
//!
//! Its errors are not swallowed: they reach the next call on the handle.
//!
//! The thread holds the database only weakly until it starts, and gives up
//! (leaving the old file untouched) as soon as the database is closed or
//! every user handle is gone, so it never keeps the writer lock alive for
//! long after the user let go.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

use crate::config::AutoCompact;

use super::db::{Database, Inner};

#[derive(Debug, Default)]
struct RunState {
    /// A background run is scheduled or under way.
    busy: bool,
    /// A write found the log due while the run was busy: run once more.
    pending: bool,
}

/// The background compaction state of one database.
#[derive(Debug)]
pub(super) struct Background {
    rule: Option<AutoCompact>,
    state: Mutex<RunState>,
    idle: Condvar,
    /// Compactions finished since open (forced and background).
    pub completed: AtomicU64,
}

impl Background {
    pub fn new(rule: Option<AutoCompact>) -> Self {
        Background {
            rule,
            state: Mutex::new(RunState::default()),
            idle: Condvar::new(),
            completed: AtomicU64::new(0),
        }
    }

    /// After a round: whether to run another (a write asked meanwhile, and
    /// the log is still due now that the round has removed what it could);
    /// otherwise the run is over and waiters are woken.
    fn another_round(&self, still_due: bool) -> bool {
        let mut st = self.state.lock();
        if st.pending && still_due {
            st.pending = false;
            return true;
        }
        *st = RunState::default();
        self.idle.notify_all();
        false
    }
}

impl Inner {
    /// Start a background compaction if the rule says the log is due and
    /// none is under way (or ask the one under way for another round).
    /// Called by writers after they publish, with the log size and the live
    /// bytes they just saw.
    pub(super) fn compact_if_due(&self, file_bytes: u64, live_bytes: u64) {
        let bg = &self.background;
        let Some(rule) = bg.rule else { return };
        if !rule.is_due(file_bytes, live_bytes) {
            return;
        }
        {
            let mut st = bg.state.lock();
            if st.busy {
                st.pending = true;
                return;
            }
            st.busy = true;
        }
        let (weak, bg) = (self.me.clone(), bg.clone());
        let spawned = std::thread::Builder::new()
            .name("ferrumdb-compact".into())
            .spawn({
                let bg = bg.clone();
                move || {
                    // One round per request: writers that find the log due
                    // while a round runs ask for the next one.
                    loop {
                        // Holding the database only while compacting: once every
                        // user handle is gone, the compaction gives up and the
                        // last reference (this one) closes it.
                        let still_due = weak.upgrade().is_some_and(|inner| {
                            let db = Database { inner };
                            // A failed round reaches the next call on the
                            // handle (see engine::health); one that failed
                            // before its rename left the old file working,
                            // and the next write that finds the log due
                            // tries again.
                            match db.compact_in_background() {
                                Ok(()) => {
                                    // Not through stats(): that is a call on
                                    // the handle, and would take an error
                                    // meant for the user's next call.
                                    let file_bytes = db.inner.writer.lock().end;
                                    let live_bytes = db.inner.state.read().live_total();
                                    rule.is_due(file_bytes, live_bytes)
                                }
                                Err(e) => {
                                    db.inner.health.defer(e);
                                    false
                                }
                            }
                        });
                        if !bg.another_round(still_due) {
                            break;
                        }
                    }
                }
            });
        if spawned.is_err() {
            *bg.state.lock() = RunState::default();
            bg.idle.notify_all();
        }
    }
}

impl Database {
    /// Block until no background compaction is scheduled or running.
    pub fn wait_for_background_compaction(&self) {
        let bg = &self.inner.background;
        let mut st = bg.state.lock();
        while st.busy {
            bg.idle.wait(&mut st);
        }
    }

    /// Compactions finished since open (forced and background).
    pub fn compactions(&self) -> u64 {
        self.inner.background.completed.load(Ordering::Relaxed)
    }
}
