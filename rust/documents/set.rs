//! All indexes of one database, kept exact by the engine's change hook, and
//! the change feeds (`watch`) that hook also feeds.
//!
//! The engine calls [`IndexSet`] under its writer mutex for every put,
//! delete and expiration, with old and new JSON; this parses both once and
//! updates every index, then hands the change to the watchers (which only
//! need the key and the new bytes, and never block the writer). Readers take the read lock only to collect candidate
//! keys, never while reading documents, so the lock order is always
//! engine writer -> index set, and queries cannot deadlock with writers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;

use crate::engine::ChangeObserver;

use super::field::FieldIndex;
use super::watch::{ChangeOp, Watchers};

/// Field path -> index, behind one lock; plus the watchers of changes.
#[derive(Debug, Default)]
pub struct IndexSet {
    pub(super) indexes: RwLock<BTreeMap<String, FieldIndex>>,
    /// Mirrors `!indexes.is_empty()` so writes without indexes skip all work.
    active: AtomicBool,
    /// Change feeds; while any exists the engine reports changes even
    /// without indexes.
    pub(super) watchers: Arc<Watchers>,
}

impl IndexSet {
    /// Record whether any index exists (call after adding or removing one).
    pub(super) fn refresh_active(&self) {
        let any = !self.indexes.read().is_empty();
        self.active.store(any, Ordering::Release);
    }

    /// Approximate memory held by all indexes, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.indexes
            .read()
            .values()
            .map(FieldIndex::memory_bytes)
            .sum()
    }
}

fn parse(bytes: &[u8]) -> Option<Value> {
    // Stored values were validated on the way in; a value that does not parse
    // here is damaged, and the query layer re-checks documents it returns.
    serde_json::from_slice(bytes).ok()
}

impl ChangeObserver for IndexSet {
    fn wants_changes(&self) -> bool {
        self.active.load(Ordering::Acquire) || self.watchers.any()
    }

    fn wants_old_values(&self) -> bool {
        // Only indexes need them; watchers report the new value alone.
        self.active.load(Ordering::Acquire)
    }

    fn memory_bytes(&self) -> u64 {
        IndexSet::memory_bytes(self)
    }

    fn on_put(&self, key: &str, old: Option<&[u8]>, new: &[u8]) {
        // `active` only changes with writes paused, so it is stable here.
        if self.active.load(Ordering::Acquire) {
            let old = old.and_then(parse);
            let parsed = parse(new);
            let mut indexes = self.indexes.write();
            for index in indexes.values_mut() {
                if let Some(old) = &old {
                    index.remove(key, old);
                }
                if let Some(new) = &parsed {
                    index.insert(key, new);
                }
            }
        }
        if self.watchers.any() {
            self.watchers.publish(ChangeOp::Set, key, Some(new));
        }
    }

    fn on_remove(&self, key: &str, old: Option<&[u8]>) {
        if self.active.load(Ordering::Acquire) {
            if let Some(old) = old.and_then(parse) {
                let mut indexes = self.indexes.write();
                for index in indexes.values_mut() {
                    index.remove(key, &old);
                }
            }
        }
        if self.watchers.any() {
            self.watchers.publish(ChangeOp::Delete, key, None);
        }
    }
}
