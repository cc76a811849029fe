//! Operation counters: relaxed atomics on the hot path, and a rate that is
//! computed only when someone asks for it; and [`Stats`], the one shape of
//! the stats report. `db.stats()` (pythonize), Studio's `/api/stats` and the
//! CLI's `STATS` (serde_json) all serialize this struct, so their keys agree
//! by construction.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

/// A snapshot of counters and sizes, as returned by `Database::stats`.
/// Serialized field by field, in this order, as the stats dict / JSON object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Live keys.
    pub keys: u64,
    /// Reads since open.
    pub gets: u64,
    /// Writes since open.
    pub sets: u64,
    /// Deletes since open.
    pub deletes: u64,
    /// Operations per second over roughly the last second (over the time
    /// since open, counted as at least one second, until a second has passed).
    pub ops_per_sec: f64,
    /// Seconds since open.
    pub uptime_s: f64,
    /// Bytes of log data (header and records; excludes preallocated space).
    pub file_bytes: u64,
    /// Bytes of the header and of the records that are still live.
    pub live_bytes: u64,
    /// Approximate memory held by secondary indexes, as reported by the
    /// change observer (0 without one: a bare `Database` has no indexes).
    pub index_bytes: u64,
    /// Compactions finished since open (forced and background).
    pub compactions: u64,
}

/// How far back rate samples are kept.
const SAMPLE_HORIZON: Duration = Duration::from_secs(10);
/// The rate is measured over at least this long.
const RATE_WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Counters {
    pub gets: AtomicU64,
    pub sets: AtomicU64,
    pub deletes: AtomicU64,
    /// Writes appended without first taking in the other processes' (see
    /// `engine::follow`).
    pub deferred: AtomicU64,
    pub started: Instant,
    /// (when, total ops then), oldest first. Every reader adds a sample but
    /// measures against one at least RATE_WINDOW old, so several readers
    /// (CLI, Studio, Python) do not skew each other.
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl Counters {
    pub fn new() -> Self {
        let now = Instant::now();
        Counters {
            gets: AtomicU64::new(0),
            sets: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            deferred: AtomicU64::new(0),
            started: now,
            samples: Mutex::new(VecDeque::from([(now, 0)])),
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

    /// Operations per second over the most recent window of at least a second.
    pub fn rate(&self) -> f64 {
        let now = Instant::now();
        let total = self.total();
        let mut samples = self.samples.lock();
        // Drop samples too old to matter, keeping the newest one that is at
        // least a window old as the baseline.
        while samples.len() > 1
            && samples
                .get(1)
                .is_some_and(|&(t, _)| now.duration_since(t) >= RATE_WINDOW)
        {
            samples.pop_front();
        }
        let rate = match samples.front() {
            Some(&(t, ops)) if now.duration_since(t) >= RATE_WINDOW => {
                (total - ops) as f64 / now.duration_since(t).as_secs_f64()
            }
            // Less than a second of history: average since open, over at least a second.
            _ => total as f64 / now.duration_since(self.started).as_secs_f64().max(1.0),
        };
        if samples
            .back()
            .is_none_or(|&(t, _)| now.duration_since(t) >= Duration::from_millis(100))
        {
            samples.push_back((now, total));
        }
        while samples
            .front()
            .is_some_and(|&(t, _)| now.duration_since(t) > SAMPLE_HORIZON)
            && samples.len() > 1
        {
            samples.pop_front();
        }
        rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_rate_is_not_inflated() {
        let c = Counters::new();
        for _ in 0..100 {
            Counters::bump(&c.sets);
        }
        // Within the first second the average is taken over a full second.
        assert!(c.rate() <= 100.0);
        assert_eq!(c.total(), 100);
    }
}
