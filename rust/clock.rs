//! Wall-clock time for expiring keys, replaceable in tests.
//!
//! Expiry times are stored on disk as Unix milliseconds, so the clock is the
//! system's wall clock. Tests use a manual clock they advance themselves,
//! which keeps TTL tests free of sleeps.
//!
//! It sits at the top of the crate, beside `config`, because both the
//! configuration and the engine use it: `config` importing the engine was
//! the one upward arrow in the layering.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Source of "now" for expiry decisions.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system wall clock.
    #[default]
    System,
    /// A clock that only moves when told to (tests).
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A manual clock starting at `start_ms` Unix milliseconds.
    pub fn manual(start_ms: u64) -> Self {
        Clock::Manual(Arc::new(AtomicU64::new(start_ms)))
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            Clock::Manual(t) => t.load(Ordering::Acquire),
        }
    }

    /// Move a manual clock forward by `ms`; returns false for the system clock.
    pub fn advance_ms(&self, ms: u64) -> bool {
        match self {
            Clock::System => false,
            Clock::Manual(t) => {
                t.fetch_add(ms, Ordering::AcqRel);
                true
            }
        }
    }
}

impl PartialEq for Clock {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Clock::System, Clock::System) => true,
            (Clock::Manual(a), Clock::Manual(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Clock {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual(1_000);
        assert_eq!(c.now_ms(), 1_000);
        assert!(c.advance_ms(500));
        assert_eq!(c.now_ms(), 1_500);
        assert!(!Clock::System.advance_ms(1));
        assert!(Clock::System.now_ms() > 1_600_000_000_000);
    }
}
