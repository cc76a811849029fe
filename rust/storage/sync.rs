//! Group commit: many threads waiting for durability share one `fdatasync`.
//!
//! Every append takes a ticket (a running count of appends). A thread that needs
//! its ticket durable either finds it already covered, waits for a sync in
//! flight, or becomes the syncer for everything appended so far. So N threads
//! writing under `fsync="always"` pay for about one sync per round, not N.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

#[derive(Debug, Default)]
struct State {
    durable: u64,
    syncing: bool,
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
    /// waiting threads.
    ///
    /// # Errors
    /// The error of the sync this thread ran; waiters of a failed sync retry.
    pub fn sync_until<E>(&self, ticket: u64, sync: impl Fn() -> Result<(), E>) -> Result<(), E> {
        let mut st = self.state.lock();
        loop {
            if st.durable >= ticket {
                return Ok(());
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
            if result.is_ok() {
                st.durable = st.durable.max(target);
            }
            self.done.notify_all();
            result?;
        }
    }

    /// Sync everything written so far.
    ///
    /// # Errors
    /// The sync's error.
    pub fn sync_all<E>(&self, sync: impl Fn() -> Result<(), E>) -> Result<(), E> {
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
    fn covered_ticket_does_not_sync() {
        let g = GroupSync::default();
        let t = g.note_write();
        let calls = AtomicUsize::new(0);
        let sync = || -> Result<(), ()> {
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
                    g.sync_until(t, || -> Result<(), ()> {
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
    fn failed_sync_is_retried() {
        let g = GroupSync::default();
        let t = g.note_write();
        assert!(g.sync_until(t, || Err::<(), _>("disk on fire")).is_err());
        assert!(g.is_dirty());
        g.sync_until(t, || Ok::<(), ()>(()))
            .expect("retry succeeds");
        assert!(!g.is_dirty());
    }
}
