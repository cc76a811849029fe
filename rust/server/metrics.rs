//! Live metrics for Studio's chart: a sampler that reads the engine's
//! counters once a second and keeps the last ten minutes of samples, with
//! ops/sec computed from the counter deltas between samples (so the chart
//! shows what happened in each second, not a moving average).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::documents::Documents;
use crate::engine::Database;
use crate::error::{Error, Result};

/// Time between samples.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
/// Samples kept (ten minutes at one a second).
const HISTORY: usize = 600;

/// One reading of the counters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    /// Seconds since Studio started.
    t: f64,
    ops_per_sec: f64,
    gets: u64,
    sets: u64,
    deletes: u64,
    keys: u64,
    file_bytes: u64,
    live_bytes: u64,
}

/// The sample history, shared by the sampler task and the API.
#[derive(Debug)]
pub(crate) struct Metrics {
    started: Instant,
    /// The newest sample's time and total op count, for the next delta.
    last: Mutex<Option<(Instant, u64)>>,
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
    pub fn sample_if_due(&self, db: &Database) -> Result<()> {
        let due = self
            .last
            .lock()
            .is_none_or(|(t, _)| t.elapsed() >= INTERVAL.mul_f64(1.5));
        if due {
            self.sample(db)?;
        }
        Ok(())
    }

    /// Read the counters and append a sample.
    pub fn sample(&self, db: &Database) -> Result<()> {
        let stats = db.stats()?;
        let now = Instant::now();
        let total = stats.gets + stats.sets + stats.deletes;
        let ops_per_sec = {
            let mut last = self.last.lock();
            let rate = match *last {
                Some((t, ops)) if now > t => {
                    total.saturating_sub(ops) as f64 / now.duration_since(t).as_secs_f64()
                }
                _ => stats.ops_per_sec,
            };
            *last = Some((now, total));
            rate
        };
        let mut history = self.history.lock();
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(Sample {
            t: now.duration_since(self.started).as_secs_f64(),
            ops_per_sec,
            gets: stats.gets,
            sets: stats.sets,
            deletes: stats.deletes,
            keys: stats.keys,
            file_bytes: stats.file_bytes,
            live_bytes: stats.live_bytes,
        });
        Ok(())
    }

    /// The history as JSON: `{"interval_s", "samples": [{t, ops_per_sec, ...}]}`,
    /// oldest first.
    pub fn to_json(&self) -> Value {
        let samples: Vec<Value> = self
            .history
            .lock()
            .iter()
            .map(|s| {
                json!({
                    "t": s.t,
                    "ops_per_sec": s.ops_per_sec,
                    "gets": s.gets,
                    "sets": s.sets,
                    "deletes": s.deletes,
                    "keys": s.keys,
                    "file_bytes": s.file_bytes,
                    "live_bytes": s.live_bytes,
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
pub(crate) async fn run_sampler(metrics: Arc<Metrics>, docs: Documents) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (m, d) = (metrics.clone(), docs.clone());
        // stats() may purge expired keys (a short write): off the async thread.
        let result = tokio::task::spawn_blocking(move || m.sample(d.database())).await;
        if let Ok(Err(Error::Closed)) = result {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn rate_comes_from_counter_deltas() {
        let db = Database::open(&Config::new().in_memory()).unwrap();
        let m = Metrics::new();
        m.sample(&db).unwrap();
        for i in 0..10 {
            db.put_raw(&format!("k{i}"), b"1").unwrap();
        }
        m.sample(&db).unwrap();
        let j = m.to_json();
        let samples = j["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[1]["sets"], 10);
        assert_eq!(samples[1]["keys"], 10);
        assert!(samples[1]["ops_per_sec"].as_f64().unwrap() > 0.0);
        // A sample right after another is not due.
        m.sample_if_due(&db).unwrap();
        assert_eq!(m.to_json()["samples"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn history_is_bounded() {
        let db = Database::open(&Config::new().in_memory()).unwrap();
        let m = Metrics::new();
        for _ in 0..HISTORY + 5 {
            m.sample(&db).unwrap();
        }
        assert_eq!(m.to_json()["samples"].as_array().unwrap().len(), HISTORY);
    }
}
