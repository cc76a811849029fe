//! Group commit: many threads waiting for durability share one `fdatasync`.
//!
//! Every append takes a ticket (a running count of appends). A thread that needs
//! its ticket durable either finds it already covered, waits for a sync in
//! flight, or becomes the syncer for everything appended so far. So N threads
//! writing under `fsync="always"` pay for about one sync per round, not N.
//!
//! A failed sync is final: after it, Linux may report the next sync of the
//! same file as a success although the failed pages were dropped
//! ("fsyncgate"). So no later round runs: the waiters of the failed round
//! and every later caller get the same error, and no ticket written before
//! the failure is ever reported durable by a retry.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

#[derive(Debug, Default)]
struct State {
    durable: u64,
    syncing: bool,
    /// The first failed sync: errno (or kind and text, for errors without one).
    failed: Option<(Option<i32>, io::ErrorKind, String)>,
}

fn failure(f: &(Option<i32>, io::ErrorKind, String)) -> io::Error {
    match f {
        (Some(errno), _, _) => io::Error::from_raw_os_error(*errno),
        (None, kind, text) => io::Error::new(*kind, text.clone()),
    }
}

/// Tracks which appends are durable and coordinates who syncs.
#[derive(Debug, Default)]
pub struct GroupSync {
    written: AtomicU64,
    state: Mutex<State>,
    done: Condvar,
}

impl GroupSync {
    /// Record that one more append has reached the OS; returns its ticket.
    /// Call while holding the writer lock, after the `write` returned.
    pub fn note_write(&self) -> u64 {
        self.written.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Whether anything appended is not yet known durable.
    pub fn is_dirty(&self) -> bool {
        self.state.lock().durable < self.written.load(Ordering::Acquire)
    }

    /// Mark everything written so far durable without syncing (after a
    /// compaction swap to a fully synced file).
    pub fn mark_all_durable(&self) {
        let mut st = self.state.lock();
        st.durable = st.durable.max(self.written.load(Ordering::Acquire));
    }

    /// Make `ticket` durable, calling `sync` at most once per round for all
    /// waiting threads. A ticket past every append made (never issued) is
    /// taken as the last one: a round can only ever cover what was written,
    /// so waiting for more would sync forever.
    ///
    /// # Errors
    /// The error of the sync this thread ran, or of an earlier failed sync
    /// (waiters of a failed round get it too; nothing is retried).
    pub fn sync_until(&self, ticket: u64, sync: impl Fn() -> io::Result<()>) -> io::Result<()> {
        let ticket = ticket.min(self.written.load(Ordering::Acquire));
        let mut st = self.state.lock();
        loop {
            if st.durable >= ticket {
                return Ok(());
            }
            if let Some(f) = &st.failed {
                return Err(failure(f));
            }
            if st.syncing {
                self.done.wait(&mut st);
                continue;
            }
            st.syncing = true;
            let target = self.written.load(Ordering::Acquire);
            drop(st);
            let result = sync();
            st = self.state.lock();
            st.syncing = false;
            match &result {
                Ok(()) => st.durable = st.durable.max(target),
                Err(e) => st.failed = Some((e.raw_os_error(), e.kind(), e.to_string())),
            }
            self.done.notify_all();
            result?;
        }
    }

    /// Sync everything written so far.
    ///
    /// # Errors
    /// The sync's error.
    pub fn sync_all(&self, sync: impl Fn() -> io::Result<()>) -> io::Result<()> {
        let ticket = self.written.load(Ordering::Acquire);
        self.sync_until(ticket, sync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Barrier};

    #[test]
    fn a_ticket_never_issued_waits_for_what_was_written_only() {
        let group = GroupSync::default();
        let syncs = AtomicUsize::new(0);
        let sync = || {
            syncs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        // Nothing written: nothing to sync, however large the ticket.
        group
            .sync_until(u64::MAX, sync)
            .expect("nothing to wait for");
        assert_eq!(syncs.load(Ordering::SeqCst), 0);
        group.note_write();
        group.sync_until(1 << 40, sync).expect("one round");
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
        assert!(!group.is_dirty());
    }

    #[test]
    fn covered_ticket_does_not_sync() {
        let g = GroupSync::default();
        let t = g.note_write();
        let calls = AtomicUsize::new(0);
        let sync = || -> io::Result<()> {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        g.sync_until(t, sync).expect("sync");
        g.sync_until(t, sync).expect("sync");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!g.is_dirty());
    }

    #[test]
    fn concurrent_waiters_share_syncs() {
        let threads = 8;
        let g = Arc::new(GroupSync::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (g, calls, barrier) = (g.clone(), calls.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let t = g.note_write();
                    barrier.wait();
                    g.sync_until(t, || -> io::Result<()> {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                })
            })
            .collect();
        for h in handles {
            h.join().expect("join").expect("sync");
        }
        // Every ticket was written before the first sync started, so the
        // first sync covers them all.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn failed_sync_is_final() {
        let g = GroupSync::default();
        let early = g.note_write();
        g.sync_until(early, || Ok(())).expect("first round");
        let (t1, t2) = (g.note_write(), g.note_write());
        let eio = || Err(io::Error::from_raw_os_error(libc::EIO));
        let e = g.sync_until(t1, eio).expect_err("failed round");
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        // A later sync would "succeed" (Linux marked the pages clean): it
        // must not run, and neither the failed round's tickets nor later
        // ones are acknowledged.
        let calls = AtomicUsize::new(0);
        let ok = || {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        for t in [t1, t2, g.note_write()] {
            let e = g.sync_until(t, ok).expect_err("no retry after a failure");
            assert_eq!(e.raw_os_error(), Some(libc::EIO));
        }
        assert!(g.sync_all(ok).is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert!(g.is_dirty());
        // What was durable before the failure stays so.
        g.sync_until(early, ok).expect("synced before the failure");
    }
}
