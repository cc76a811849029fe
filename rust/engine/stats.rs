//! Operation counters: relaxed atomics on the hot path, and a rate that is
//! computed only when someone asks for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

/// A snapshot of counters and sizes, as returned by `Database::stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Live keys.
    pub keys: u64,
    /// Reads since open.
    pub gets: u64,
    /// Writes since open.
    pub sets: u64,
    /// Deletes since open.
    pub deletes: u64,
    /// Operations per second over the last measured window (about a second).
    pub ops_per_sec: f64,
    /// Seconds since open.
    pub uptime_s: f64,
    /// Bytes in the log file.
    pub file_bytes: u64,
    /// Bytes of the records that are still live.
    pub live_bytes: u64,
}

#[derive(Debug)]
pub(crate) struct Counters {
    pub gets: AtomicU64,
    pub sets: AtomicU64,
    pub deletes: AtomicU64,
    pub started: Instant,
    window: Mutex<(Instant, u64, f64)>,
}

impl Counters {
    pub fn new() -> Self {
        let now = Instant::now();
        Counters {
            gets: AtomicU64::new(0),
            sets: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            started: now,
            window: Mutex::new((now, 0, 0.0)),
        }
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn total(&self) -> u64 {
        self.gets.load(Ordering::Relaxed)
            + self.sets.load(Ordering::Relaxed)
            + self.deletes.load(Ordering::Relaxed)
    }

    /// Ops/sec over the window since the last call that closed a window
    /// (windows close after at least one second); before the first window
    /// closes, the average since open.
    pub fn rate(&self) -> f64 {
        let now = Instant::now();
        let total = self.total();
        let mut w = self.window.lock();
        let elapsed = now.duration_since(w.0).as_secs_f64();
        if elapsed >= 1.0 {
            w.2 = (total - w.1) as f64 / elapsed;
            *w = (now, total, w.2);
            w.2
        } else if w.1 == 0 && w.2 == 0.0 {
            let up = now.duration_since(self.started).as_secs_f64();
            if up > 0.0 {
                total as f64 / up
            } else {
                0.0
            }
        } else {
            w.2
        }
    }
}
