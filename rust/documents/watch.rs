//! Change feeds: `watch(prefix)` delivers every change committed after it
//! starts, as `(op, key, value)` events, for live views.
//!
//! The engine has one change hook, the [`super::set::IndexSet`] observer; it
//! fans each change out to the registered watchers here, under the engine's
//! writer mutex, so every watcher sees changes in commit order. Each watcher
//! has its own bounded queue. A writer never waits for a consumer: pushing is
//! a short mutex section with no allocation beyond the event itself, and a
//! queue that is full (more than [`DEFAULT_WATCH_EVENTS`] events or
//! [`DEFAULT_WATCH_BYTES`] bytes waiting) is *overflowed*: its queued events
//! are dropped at once (freeing their memory), it receives nothing more, and
//! its consumer gets [`Recv::Overflowed`] instead of a silently incomplete
//! stream. Such a consumer starts a new watch and re-reads the state it shows.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::engine::Follower;

/// Events a watcher may have waiting before it overflows.
pub const DEFAULT_WATCH_EVENTS: usize = 10_000;
/// Bytes of keys and values a watcher may have waiting before it overflows
/// (64 MiB). A single event larger than this is still delivered when it is the
/// only one waiting.
pub const DEFAULT_WATCH_BYTES: usize = 64 << 20;

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// The key was stored (created or overwritten).
    Set,
    /// The key was deleted, or expired.
    Delete,
}

impl ChangeOp {
    /// `"set"` or `"delete"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Set => "set",
            ChangeOp::Delete => "delete",
        }
    }
}

/// One committed change. Key and value are shared by every watcher that
/// receives the event, so fanning out costs no copy per watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Set or delete.
    pub op: ChangeOp,
    /// The key.
    pub key: Arc<str>,
    /// The new JSON bytes for [`ChangeOp::Set`]; `None` for a delete.
    pub value: Option<Arc<[u8]>>,
}

impl Change {
    fn bytes(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, |v| v.len())
    }
}

/// The answer of [`Watch::recv_timeout`] and [`Watch::try_recv`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recv {
    /// The next change, in commit order.
    Change(Change),
    /// Nothing arrived in time (or, for `try_recv`, nothing is waiting).
    Empty,
    /// The watch was closed (by [`Watch::close`], or the database was closed
    /// and every change before that has been received). Final.
    Closed,
    /// The consumer fell behind by more than `limit` events (or the byte
    /// bound); queued events were dropped. Final: start a new watch.
    Overflowed {
        /// The event bound that was exceeded.
        limit: usize,
    },
}

#[derive(Debug, Default)]
struct QueueState {
    events: VecDeque<Change>,
    bytes: usize,
    overflowed: bool,
    /// No more events will be pushed (database closed, or watch closed).
    closed: bool,
    /// Closed by its consumer: nothing more is delivered, not even queued events.
    discarded: bool,
}

/// One watcher's queue, shared by the hub (producer) and its [`Watch`].
#[derive(Debug)]
struct Queue {
    prefix: String,
    max_events: usize,
    max_bytes: usize,
    state: Mutex<QueueState>,
    ready: Condvar,
}

impl Queue {
    /// Queue `change`; false when this queue takes no more events (so the hub
    /// drops it).
    fn push(&self, change: &Change) -> bool {
        let mut st = self.state.lock();
        if st.closed || st.overflowed {
            return false;
        }
        let bytes = change.bytes();
        let full = st.events.len() >= self.max_events
            || (!st.events.is_empty() && st.bytes.saturating_add(bytes) > self.max_bytes);
        if full {
            st.overflowed = true;
            st.events = VecDeque::new();
            st.bytes = 0;
            drop(st);
            self.ready.notify_all();
            return false;
        }
        st.events.push_back(change.clone());
        st.bytes += bytes;
        drop(st);
        self.ready.notify_one();
        true
    }

    fn take(&self, st: &mut QueueState) -> Option<Recv> {
        if st.discarded {
            return Some(Recv::Closed);
        }
        if let Some(change) = st.events.pop_front() {
            st.bytes -= change.bytes();
            return Some(Recv::Change(change));
        }
        if st.overflowed {
            return Some(Recv::Overflowed {
                limit: self.max_events,
            });
        }
        st.closed.then_some(Recv::Closed)
    }

    /// Stop accepting events; queued ones stay to be received.
    fn finish(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }
}

/// Every watcher of one database. Publishing runs under the engine's writer
/// mutex; lock order: engine writer -> hub list -> one queue.
#[derive(Debug, Default)]
pub(crate) struct Watchers {
    list: Mutex<Vec<Arc<Queue>>>,
    /// `list.len()`, readable without the lock (the engine asks on every write).
    count: AtomicUsize,
}

impl Watchers {
    /// Whether any watcher is registered.
    pub(crate) fn any(&self) -> bool {
        self.len() > 0
    }

    /// How many watchers are registered.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    fn register(&self, prefix: &str, max_events: usize, max_bytes: usize) -> Arc<Queue> {
        let queue = Arc::new(Queue {
            prefix: prefix.to_owned(),
            max_events: max_events.max(1),
            max_bytes: max_bytes.max(1),
            state: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
        });
        let mut list = self.list.lock();
        list.push(queue.clone());
        self.count.store(list.len(), Ordering::Release);
        queue
    }

    fn unregister(&self, queue: &Arc<Queue>) {
        let mut list = self.list.lock();
        list.retain(|q| !Arc::ptr_eq(q, queue));
        self.count.store(list.len(), Ordering::Release);
    }

    /// Deliver a change to every watcher whose prefix matches `key`.
    pub(crate) fn publish(&self, op: ChangeOp, key: &str, value: Option<&[u8]>) {
        let mut list = self.list.lock();
        let mut change: Option<Change> = None;
        let before = list.len();
        list.retain(|queue| {
            if !key.starts_with(queue.prefix.as_str()) {
                return true;
            }
            let change = change.get_or_insert_with(|| Change {
                op,
                key: Arc::from(key),
                value: value.map(Arc::from),
            });
            queue.push(change)
        });
        if list.len() != before {
            self.count.store(list.len(), Ordering::Release);
        }
    }

    /// End every watch: they deliver what is queued, then [`Recv::Closed`].
    pub(crate) fn close_all(&self) {
        let mut list = self.list.lock();
        for queue in list.drain(..) {
            queue.finish();
        }
        self.count.store(0, Ordering::Release);
    }

    /// A new watch on keys starting with `prefix`. The caller registers it
    /// with writes paused, so it sees exactly the changes committed after.
    pub(crate) fn watch(
        self: &Arc<Self>,
        prefix: &str,
        (max_events, max_bytes): (usize, usize),
        follower: Option<Follower>,
    ) -> Watch {
        let queue = self.register(prefix, max_events, max_bytes);
        Watch {
            queue,
            hub: self.clone(),
            follower,
        }
    }
}

/// A live change feed (see [`crate::documents::Documents::watch`]). Receiving is
/// `&self`, so one thread may wait in [`Watch::recv_timeout`] while another
/// calls [`Watch::close`] to stop it. Dropping the watch unregisters it.
#[derive(Debug)]
pub struct Watch {
    queue: Arc<Queue>,
    hub: Arc<Watchers>,
    /// On a read-only handle following a writer in another process: its
    /// changes arrive when the handle looks for them, so a waiting receive
    /// looks every [`FOLLOW_POLL`].
    follower: Option<Follower>,
}

/// How often a receive waiting on a following handle looks for another
/// process's writes.
const FOLLOW_POLL: Duration = Duration::from_millis(20);

impl Watch {
    /// The key prefix this watch reports.
    pub fn prefix(&self) -> &str {
        &self.queue.prefix
    }

    /// Events that may wait before the watch overflows.
    pub fn max_events(&self) -> usize {
        self.queue.max_events
    }

    /// The next change if one is waiting, without blocking.
    pub fn try_recv(&self) -> Recv {
        let mut st = self.queue.state.lock();
        self.queue.take(&mut st).unwrap_or(Recv::Empty)
    }

    /// The next change, waiting up to `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Recv {
        let Some(follower) = &self.follower else {
            let mut st = self.queue.state.lock();
            if let Some(r) = self.queue.take(&mut st) {
                return r;
            }
            let _ = self.queue.ready.wait_for(&mut st, timeout);
            return self.queue.take(&mut st).unwrap_or(Recv::Empty);
        };
        let deadline = std::time::Instant::now() + timeout;
        loop {
            // Not under the queue's lock: taking in news feeds this queue.
            follower.catch_up();
            let mut st = self.queue.state.lock();
            if let Some(r) = self.queue.take(&mut st) {
                return r;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Recv::Empty;
            }
            let _ = self.queue.ready.wait_for(&mut st, left.min(FOLLOW_POLL));
            if let Some(r) = self.queue.take(&mut st) {
                return r;
            }
        }
    }

    /// Stop the watch: queued changes are discarded, later ones not recorded,
    /// and every receive (also one waiting in another thread, which wakes at
    /// once) answers [`Recv::Closed`]. Idempotent.
    pub fn close(&self) {
        {
            let mut st = self.queue.state.lock();
            st.closed = true;
            st.discarded = true;
            st.events = VecDeque::new();
            st.bytes = 0;
        }
        self.queue.ready.notify_all();
        self.hub.unregister(&self.queue);
    }

    /// Whether [`Watch::close`] ran, or the database was closed.
    pub fn is_closed(&self) -> bool {
        self.queue.state.lock().closed
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Arc<Watchers> {
        Arc::new(Watchers::default())
    }

    fn set(key: &str, value: &str) -> Recv {
        Recv::Change(Change {
            op: ChangeOp::Set,
            key: Arc::from(key),
            value: Some(Arc::from(value.as_bytes())),
        })
    }

    fn del(key: &str) -> Recv {
        Recv::Change(Change {
            op: ChangeOp::Delete,
            key: Arc::from(key),
            value: None,
        })
    }

    #[test]
    fn delivers_in_order_filtered_by_prefix() {
        let hub = hub();
        let all = hub.watch("", (10, 1 << 20), None);
        let users = hub.watch("user:", (10, 1 << 20), None);
        assert!(hub.any());
        hub.publish(ChangeOp::Set, "user:1", Some(b"1"));
        hub.publish(ChangeOp::Set, "order:1", Some(b"2"));
        hub.publish(ChangeOp::Delete, "user:1", None);
        assert_eq!(all.try_recv(), set("user:1", "1"));
        assert_eq!(all.try_recv(), set("order:1", "2"));
        assert_eq!(all.try_recv(), del("user:1"));
        assert_eq!(all.try_recv(), Recv::Empty);
        assert_eq!(users.try_recv(), set("user:1", "1"));
        assert_eq!(users.try_recv(), del("user:1"));
        assert_eq!(users.recv_timeout(Duration::from_millis(1)), Recv::Empty);
        drop(all);
        drop(users);
        assert!(!hub.any());
    }

    #[test]
    fn overflow_drops_queue_and_unregisters() {
        let hub = hub();
        let w = hub.watch("", (3, 1 << 20), None);
        let other = hub.watch("", (100, 1 << 20), None);
        for i in 0..3 {
            hub.publish(ChangeOp::Set, &format!("k{i}"), Some(b"1"));
        }
        assert_eq!(hub.count.load(Ordering::Relaxed), 2);
        hub.publish(ChangeOp::Set, "k3", Some(b"1"));
        // Overflowed: unregistered, nothing queued, the error is sticky.
        assert_eq!(hub.count.load(Ordering::Relaxed), 1);
        assert_eq!(w.try_recv(), Recv::Overflowed { limit: 3 });
        hub.publish(ChangeOp::Set, "k4", Some(b"1"));
        assert_eq!(w.try_recv(), Recv::Overflowed { limit: 3 });
        assert_eq!(w.state_len(), 0);
        // The other watcher is unaffected.
        for i in 0..5 {
            assert_eq!(other.try_recv(), set(&format!("k{i}"), "1"));
        }
    }

    #[test]
    fn byte_bound_but_one_big_event_passes() {
        let hub = hub();
        let w = hub.watch("", (100, 10), None);
        hub.publish(ChangeOp::Set, "k", Some(&[b'1'; 50]));
        assert!(matches!(w.try_recv(), Recv::Change(_)));
        hub.publish(ChangeOp::Set, "a", Some(b"1234"));
        hub.publish(ChangeOp::Set, "b", Some(b"1234"));
        hub.publish(ChangeOp::Set, "c", Some(b"1234"));
        assert_eq!(w.try_recv(), Recv::Overflowed { limit: 100 });
    }

    #[test]
    fn close_all_drains_then_closes() {
        let hub = hub();
        let w = hub.watch("", (10, 1 << 20), None);
        hub.publish(ChangeOp::Set, "k", Some(b"1"));
        hub.close_all();
        assert!(!hub.any());
        hub.publish(ChangeOp::Set, "late", Some(b"1"));
        assert!(w.is_closed());
        assert_eq!(w.try_recv(), set("k", "1"));
        assert_eq!(w.try_recv(), Recv::Closed);
        assert_eq!(w.recv_timeout(Duration::from_secs(5)), Recv::Closed);
    }

    #[test]
    fn close_wakes_a_waiting_thread_and_discards() {
        let hub = hub();
        let w = Arc::new(hub.watch("", (10, 1 << 20), None));
        let waiter = {
            let w = w.clone();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                let mut got = Vec::new();
                loop {
                    match w.recv_timeout(Duration::from_secs(60)) {
                        Recv::Change(c) => got.push(c.key.to_string()),
                        other => return (got, other, started.elapsed()),
                    }
                }
            })
        };
        hub.publish(ChangeOp::Set, "x", Some(b"1"));
        hub.publish(ChangeOp::Set, "y", Some(b"1"));
        w.close();
        let (got, end, waited) = waiter.join().unwrap();
        // Whatever was not received before close() is discarded, in order.
        let sent = ["x".to_string(), "y".to_string()];
        assert!(sent.starts_with(&got), "{got:?}");
        assert_eq!(end, Recv::Closed);
        assert!(
            waited < Duration::from_secs(30),
            "close() did not wake the waiter"
        );
        assert_eq!(w.try_recv(), Recv::Closed);
        assert!(!hub.any());
    }

    impl Watch {
        fn state_len(&self) -> usize {
            self.queue.state.lock().events.len()
        }
    }
}

/// The feed through the engine: every write path reaches watchers exactly once.
#[cfg(test)]
mod engine_tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::documents::Documents;
    use crate::engine::Database;
    use crate::Clock;
    use crate::Config;

    fn docs(clock: Clock) -> Documents {
        let db = Database::open(&Config::new().in_memory().with_clock(clock)).unwrap();
        Documents::open(db).unwrap()
    }

    fn drain(w: &Watch) -> Vec<(ChangeOp, String, Option<String>)> {
        let mut out = Vec::new();
        while let Recv::Change(c) = w.try_recv() {
            let value = c.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
            out.push((c.op, c.key.to_string(), value));
        }
        out
    }

    fn s(op: ChangeOp, key: &str, value: Option<&str>) -> (ChangeOp, String, Option<String>) {
        (op, key.to_owned(), value.map(str::to_owned))
    }

    #[test]
    fn set_overwrite_delete_expire_in_commit_order() {
        let clock = Clock::manual(1_000_000);
        let docs = docs(clock.clone());
        let db = docs.database();
        db.put_raw("before", b"0").unwrap();
        let w = docs.watch("").unwrap();
        db.put_raw("a", b"1").unwrap();
        db.put_raw("a", br#"{"x":2}"#).unwrap();
        db.put_raw_with_ttl("t", b"3", Duration::from_secs(5))
            .unwrap();
        assert!(db.delete("a").unwrap());
        assert!(!db.delete("a").unwrap()); // nothing deleted: no event
        assert!(!db.delete("never").unwrap());
        clock.advance_ms(5_000);
        assert_eq!(db.len(), 1); // the purge reports the expiry
        use ChangeOp::{Delete, Set};
        assert_eq!(
            drain(&w),
            vec![
                s(Set, "a", Some("1")),
                s(Set, "a", Some(r#"{"x":2}"#)),
                s(Set, "t", Some("3")),
                s(Delete, "a", None),
                s(Delete, "t", None),
            ]
        );
        // Metadata (index definitions) is not a change to a key.
        docs.create_index("x").unwrap();
        docs.drop_index("x").unwrap();
        assert_eq!(drain(&w), vec![]);
    }

    #[test]
    fn indexes_stay_exact_beside_watchers() {
        let docs = docs(Clock::System);
        let db = docs.database();
        let w = docs.watch("u:").unwrap();
        db.put_raw("u:1", br#"{"r":"a"}"#).unwrap();
        docs.create_index("r").unwrap();
        db.put_raw("u:2", br#"{"r":"a"}"#).unwrap();
        db.put_raw("v:1", br#"{"r":"a"}"#).unwrap();
        db.put_raw("u:1", br#"{"r":"b"}"#).unwrap();
        assert_eq!(docs.find("r", &json!("a")).unwrap(), vec!["u:2", "v:1"]);
        drop(w);
        // Without watchers the index alone still follows writes.
        db.delete("u:2").unwrap();
        assert_eq!(docs.find("r", &json!("a")).unwrap(), vec!["v:1"]);
        assert_eq!(docs.watch_count(), 0);
    }

    #[test]
    fn overflow_never_blocks_the_writer() {
        let docs = docs(Clock::System);
        let db = docs.database();
        let w = docs.watch_with_limits("", 100, 1 << 20).unwrap();
        for i in 0..1_000 {
            db.put_raw(&format!("k{i}"), b"1").unwrap();
        }
        assert_eq!(w.try_recv(), Recv::Overflowed { limit: 100 });
        assert_eq!(docs.watch_count(), 0);
        // A new watch starts clean.
        let w = docs.watch("").unwrap();
        db.put_raw("k", b"2").unwrap();
        assert_eq!(drain(&w), vec![s(ChangeOp::Set, "k", Some("2"))]);
    }

    #[test]
    fn close_ends_watches_after_pending_changes() {
        let docs = docs(Clock::System);
        let w = docs.watch("").unwrap();
        docs.database().put_raw("k", b"1").unwrap();
        docs.close().unwrap();
        assert_eq!(drain(&w), vec![s(ChangeOp::Set, "k", Some("1"))]);
        assert_eq!(w.recv_timeout(Duration::from_secs(10)), Recv::Closed);
        assert!(matches!(docs.watch(""), Err(crate::Error::Closed)));
        docs.close().unwrap();
    }

    #[test]
    fn writes_from_other_threads_arrive() {
        let docs = docs(Clock::System);
        let w = docs.watch("").unwrap();
        let writer = {
            let db = docs.database().clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    db.put_raw(&format!("k{i:03}"), b"1").unwrap();
                }
            })
        };
        let mut keys = Vec::new();
        while keys.len() < 500 {
            match w.recv_timeout(Duration::from_secs(30)) {
                Recv::Change(c) => keys.push(c.key.to_string()),
                other => panic!("{other:?}"),
            }
        }
        writer.join().unwrap();
        let expected: Vec<String> = (0..500).map(|i| format!("k{i:03}")).collect();
        assert_eq!(keys, expected);
    }

    #[test]
    fn create_index_with_expired_keys_does_not_deadlock() {
        let clock = Clock::manual(1_000_000);
        let docs = docs(clock.clone());
        let w = docs.watch("").unwrap();
        docs.database()
            .put_raw_with_ttl("t", br#"{"a":1}"#, Duration::from_secs(1))
            .unwrap();
        docs.database().put_raw("k", br#"{"a":1}"#).unwrap();
        clock.advance_ms(2_000);
        let (tx, rx) = std::sync::mpsc::channel();
        let builder = docs.clone();
        std::thread::spawn(move || tx.send(builder.create_index("a").map(|_| ())));
        rx.recv_timeout(Duration::from_secs(30))
            .expect("create_index hung")
            .unwrap();
        assert_eq!(docs.find("a", &json!(1)).unwrap(), vec!["k"]);
        let events = drain(&w);
        assert_eq!(events.last(), Some(&s(ChangeOp::Delete, "t", None)));
    }
}
