//! Live metrics for Studio's charts: a sampler that reads the engine's
//! counters (and the document layer's query count) once a second and keeps
//! the last ten minutes of samples, with per-operation rates computed from
//! the counter deltas between samples (so the chart shows what happened in
//! each second, not a moving average), and the file size and garbage at each
//! sample (so compaction and growth show over time).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::backend::{Activity, Backend, SharedBackend};
use crate::error::{Error, Result};

/// Time between samples.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
/// Samples kept (ten minutes at one a second).
const HISTORY: usize = 600;

/// The counters one sample reads; rates are deltas of these.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Counters {
    gets: u64,
    sets: u64,
    deletes: u64,
    queries: u64,
}

impl Counters {
    /// The counters, and the reading they came from.
    fn read(docs: &dyn Backend) -> Result<(Self, Activity)> {
        let stats = docs.activity()?;
        let counters = Counters {
            gets: stats.gets,
            sets: stats.sets,
            deletes: stats.deletes,
            queries: stats.queries,
        };
        Ok((counters, stats))
    }

    /// Per-second rates of each counter between `earlier` and `self`.
    fn rates_since(&self, earlier: &Counters, seconds: f64) -> Rates {
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / seconds;
        Rates {
            get: rate(self.gets, earlier.gets),
            set: rate(self.sets, earlier.sets),
            delete: rate(self.deletes, earlier.deletes),
            query: rate(self.queries, earlier.queries),
        }
    }
}

/// Operations per second by type over one sample interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Rates {
    get: f64,
    set: f64,
    delete: f64,
    query: f64,
}

/// One reading of the counters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    /// Seconds since Studio started.
    t: f64,
    /// Gets, sets and deletes per second together (what `ops_per_sec` in
    /// `db.stats()` counts).
    ops_per_sec: f64,
    rates: Rates,
    counters: Counters,
    keys: u64,
    file_bytes: u64,
    live_bytes: u64,
}

/// The sample history, shared by the sampler task and the API.
#[derive(Debug)]
pub(crate) struct Metrics {
    started: Instant,
    /// The newest sample's time and counters, for the next delta.
    last: Mutex<Option<(Instant, Counters)>>,
    history: Mutex<VecDeque<Sample>>,
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            started: Instant::now(),
            last: Mutex::new(None),
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    /// Take a sample unless the newest is younger than one and a half
    /// intervals: the API tops up the history when no sampler task runs
    /// (a bare router), and stays out of the way of one that does (two
    /// samplers a fraction of a second apart would make the rate saw-toothed).
    pub fn sample_if_due(&self, docs: &dyn Backend) -> Result<()> {
        let due = self
            .last
            .lock()
            .is_none_or(|(t, _)| t.elapsed() >= INTERVAL.mul_f64(1.5));
        if due {
            self.sample(docs)?;
        }
        Ok(())
    }

    /// Read the counters and append a sample.
    pub fn sample(&self, docs: &dyn Backend) -> Result<()> {
        let (counters, stats) = Counters::read(docs)?;
        let now = Instant::now();
        let (rates, ops_per_sec) = {
            let mut last = self.last.lock();
            let measured = match *last {
                Some((t, earlier)) if now > t => {
                    let rates = counters.rates_since(&earlier, now.duration_since(t).as_secs_f64());
                    (rates, rates.get + rates.set + rates.delete)
                }
                // The first sample has no earlier one: the engine's average.
                _ => (Rates::default(), stats.ops_per_sec),
            };
            *last = Some((now, counters));
            measured
        };
        let mut history = self.history.lock();
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(Sample {
            t: now.duration_since(self.started).as_secs_f64(),
            ops_per_sec,
            rates,
            counters,
            keys: stats.keys,
            file_bytes: stats.file_bytes,
            live_bytes: stats.live_bytes,
        });
        Ok(())
    }

    /// The history as JSON: `{"interval_s", "studio_uptime_s", "samples":
    /// [{t, ops_per_sec, get_per_sec, set_per_sec, delete_per_sec,
    /// query_per_sec, gets, sets, deletes, queries, keys, file_bytes,
    /// live_bytes, garbage_bytes}]}`, oldest first.
    pub fn to_json(&self) -> Value {
        let samples: Vec<Value> = self
            .history
            .lock()
            .iter()
            .map(|s| {
                json!({
                    "t": s.t,
                    "ops_per_sec": s.ops_per_sec,
                    "get_per_sec": s.rates.get,
                    "set_per_sec": s.rates.set,
                    "delete_per_sec": s.rates.delete,
                    "query_per_sec": s.rates.query,
                    "gets": s.counters.gets,
                    "sets": s.counters.sets,
                    "deletes": s.counters.deletes,
                    "queries": s.counters.queries,
                    "keys": s.keys,
                    "file_bytes": s.file_bytes,
                    "live_bytes": s.live_bytes,
                    "garbage_bytes": s.file_bytes.saturating_sub(s.live_bytes),
                })
            })
            .collect();
        json!({
            "interval_s": INTERVAL.as_secs_f64(),
            "studio_uptime_s": self.started.elapsed().as_secs_f64(),
            "samples": samples,
        })
    }
}

/// Sample every [`INTERVAL`] until the database is closed (or the task is
/// aborted when Studio stops).
pub(crate) async fn run_sampler(metrics: Arc<Metrics>, docs: SharedBackend) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (m, d) = (metrics.clone(), docs.clone());
        // stats() may purge expired keys (a short write): off the async thread.
        let result = tokio::task::spawn_blocking(move || m.sample(d.as_ref())).await;
        if let Ok(Err(Error::Closed)) = result {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::documents::Documents;
    use crate::engine::Database;

    fn open() -> Documents {
        Documents::open(Database::open(&Config::new().in_memory()).unwrap()).unwrap()
    }

    #[test]
    fn rate_comes_from_counter_deltas() {
        let docs = open();
        let db = docs.database().clone();
        let m = Metrics::new();
        m.sample(&docs).unwrap();
        for i in 0..10 {
            db.put_raw(&format!("k{i}"), b"1").unwrap();
        }
        m.sample(&docs).unwrap();
        let j = m.to_json();
        let samples = j["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[1]["sets"], 10);
        assert_eq!(samples[1]["keys"], 10);
        assert!(samples[1]["ops_per_sec"].as_f64().unwrap() > 0.0);
        assert!(samples[1]["set_per_sec"].as_f64().unwrap() > 0.0);
        assert_eq!(samples[1]["get_per_sec"], 0.0);
        // A sample right after another is not due.
        m.sample_if_due(&docs).unwrap();
        assert_eq!(m.to_json()["samples"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn queries_get_their_own_rate() {
        let docs = open();
        let m = Metrics::new();
        m.sample(&docs).unwrap();
        docs.query(&json!({}), None, None, 0).unwrap();
        docs.count(None, "").unwrap();
        m.sample(&docs).unwrap();
        let j = m.to_json();
        let newest = &j["samples"][1];
        assert_eq!(newest["queries"], 2);
        assert!(newest["query_per_sec"].as_f64().unwrap() > 0.0);
        assert_eq!(newest["set_per_sec"], 0.0);
    }

    #[test]
    fn garbage_is_sampled() {
        let docs = open();
        let db = docs.database().clone();
        let m = Metrics::new();
        db.put_raw("k", b"1").unwrap();
        db.put_raw("k", b"2").unwrap();
        m.sample(&docs).unwrap();
        let s = &m.to_json()["samples"][0];
        let garbage = s["garbage_bytes"].as_u64().unwrap();
        assert!(garbage > 0);
        assert_eq!(
            garbage,
            s["file_bytes"].as_u64().unwrap() - s["live_bytes"].as_u64().unwrap()
        );
    }

    #[test]
    fn history_is_bounded() {
        let docs = open();
        let m = Metrics::new();
        for _ in 0..HISTORY + 5 {
            m.sample(&docs).unwrap();
        }
        assert_eq!(m.to_json()["samples"].as_array().unwrap().len(), HISTORY);
    }
}
