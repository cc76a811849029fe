//! All indexes of one database, kept exact by the engine's change hook, and
//! the change feeds (`watch`) that hook also feeds.
//!
//! The engine calls [`IndexSet`] under its writer mutex for every put,
//! delete and expiration, with old and new JSON; this parses both once and
//! updates every index, then hands the change to the watchers (which only
//! need the key and the new bytes, and never block the writer). Readers take the read lock only to collect candidate
//! keys, never while reading documents, so the lock order is always
//! engine writer -> index set, and queries cannot deadlock with writers.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;

use crate::engine::{ChangeObserver, Database, Loc, PendingChange};
use crate::error::{Error, Result};
use crate::format::HintHeader;

use super::docs::Documents;
use super::field::FieldIndex;
use super::watch::{ChangeOp, Watchers};

/// Field path -> index, behind one lock; plus the watchers of changes.
#[derive(Debug, Default)]
pub struct IndexSet {
    pub(super) indexes: RwLock<BTreeMap<String, FieldIndex>>,
    /// Mirrors `!indexes.is_empty()` so writes without indexes skip all work.
    active: AtomicBool,
    /// Mirrors "some index is unique", so only then does a write pay for
    /// the uniqueness check.
    unique: AtomicBool,
    /// Change feeds; while any exists the engine reports changes even
    /// without indexes.
    pub(super) watchers: Arc<Watchers>,
    /// Reads through the document layer (query, count, distinct, find)
    /// since open: Studio's per-operation rates. The engine counts gets,
    /// sets and deletes itself; queries exist only up here.
    pub(super) queries: AtomicU64,
    /// The engine's `meta_writes` when the index definitions were last read.
    pub(super) seen_meta: AtomicU64,
    /// The fields whose definitions were stored when last read: an index
    /// whose definition is gone since (another process dropped it) is
    /// dropped here too, but not one this handle is still creating (its
    /// definition is stored once it is built).
    pub(super) defined: RwLock<HashSet<String>>,
    /// Whether the open loaded indexes from the index file.
    pub(super) from_file: AtomicBool,
    /// Moves on every change to any index's contents or to the set of
    /// indexes (see `Documents::index_version`).
    pub(super) version: AtomicU64,
}

impl IndexSet {
    /// Whether any index exists (writes then pay for index upkeep).
    pub(super) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Record whether any index exists (call after adding or removing one).
    pub(super) fn refresh_active(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        let indexes = self.indexes.read();
        self.active.store(!indexes.is_empty(), Ordering::Release);
        let unique = indexes.values().any(FieldIndex::is_unique);
        self.unique.store(unique, Ordering::Release);
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

/// A write whose old and new documents the writer has parsed already (an
/// update by operator reads, parses and changes the document before it
/// commits), offered to [`IndexSet`]'s `on_put` on the same thread so that
/// index upkeep does not parse both once more. It is used only for a change
/// of this very key from exactly these old bytes to exactly these new ones,
/// so a hint that does not fit (the commit lost a race, another process's
/// write taken in first) is simply not used.
pub(super) struct Parsed {
    pub key: String,
    pub old: Vec<u8>,
    pub old_doc: Value,
    pub new: Vec<u8>,
    pub new_doc: Value,
}

thread_local! {
    static PARSED: RefCell<Option<Parsed>> = const { RefCell::new(None) };
}

/// Run `write` with `parsed` offered to index upkeep (see [`Parsed`]), and
/// give it back afterwards.
pub(super) fn with_parsed<R>(parsed: Parsed, write: impl FnOnce() -> R) -> (R, Parsed) {
    /// Takes the hint back even if `write` panics.
    struct Offered;
    impl Drop for Offered {
        fn drop(&mut self) {
            PARSED.with_borrow_mut(Option::take);
        }
    }
    PARSED.set(Some(parsed));
    let offered = Offered;
    let result = write();
    let parsed = PARSED.with_borrow_mut(Option::take);
    drop(offered);
    match parsed {
        Some(parsed) => (result, parsed),
        // Only `on_put` reads the slot, and it never empties it.
        None => unreachable!("the parsed documents were taken while offered"),
    }
}

fn parse(bytes: &[u8]) -> Option<Value> {
    // Stored values were validated on the way in; a value that does not parse
    // here is damaged, and the query layer re-checks documents it returns.
    serde_json::from_slice(bytes).ok()
}

impl ChangeObserver for IndexSet {
    fn wants_check(&self) -> bool {
        self.unique.load(Ordering::Acquire)
    }

    /// Refuse changes that would give two live documents one value in a
    /// unique index: against the documents the changes leave alone, and
    /// among the changes themselves (a transaction may swap two values).
    fn check(&self, changes: &[PendingChange<'_>], is_live: &dyn Fn(&str) -> bool) -> Result<()> {
        let touched: HashSet<&str> = changes
            .iter()
            .map(|c| match c {
                PendingChange::Put { key, .. } | PendingChange::Delete { key } => *key,
            })
            .collect();
        let puts: Vec<(&str, Value)> = changes
            .iter()
            .filter_map(|c| match c {
                PendingChange::Put { key, value } => parse(value).map(|doc| (*key, doc)),
                PendingChange::Delete { .. } => None,
            })
            .collect();
        let indexes = self.indexes.read();
        for (field, index) in indexes.iter().filter(|(_, ix)| ix.is_unique()) {
            let mut claimed: HashMap<Vec<u8>, &str> = HashMap::new();
            for (key, doc) in &puts {
                for (encoded, value) in index.claims(doc) {
                    let held = index
                        .holders(&encoded)
                        .find(|k| !touched.contains(k.as_str()) && is_live(k))
                        .map(|k| k.to_string());
                    let existing = match held {
                        Some(k) => Some(k),
                        None => claimed
                            .insert(encoded, key)
                            .filter(|other| other != key)
                            .map(str::to_owned),
                    };
                    if let Some(existing) = existing {
                        return Err(Error::DuplicateKey {
                            field: field.clone(),
                            value: value.to_string(),
                            key: (*key).to_owned(),
                            existing,
                        });
                    }
                }
            }
        }
        Ok(())
    }

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

    fn follow_definitions(self: Arc<Self>, db: &Database) -> Result<()> {
        let writes = db.meta_writes();
        Documents {
            db: db.clone(),
            indexes: self,
        }
        .build_missing(writes, false)
    }

    /// Leave the index file for the next open (see `documents::persist`):
    /// called under the writer lock, so the indexes agree with `live`.
    fn persist_at_close(
        &self,
        file: &std::path::Path,
        basis: &HintHeader,
        live: &mut dyn Iterator<Item = (&str, Loc)>,
    ) -> Option<[u8; 32]> {
        let indexes = self.indexes.read();
        // A cache: a failure costs the next open a rebuild, nothing more.
        super::persist::write(file, basis, &indexes, live)
            .ok()
            .flatten()
    }

    fn on_put(&self, key: &str, old: Option<&[u8]>, new: &[u8]) {
        // `active` only changes with writes paused, so it is stable here.
        if self.active.load(Ordering::Acquire) {
            PARSED.with_borrow(|hint| {
                let hint = hint
                    .as_ref()
                    .filter(|h| h.key == key && h.new == new && old == Some(h.old.as_slice()));
                let (old, parsed) = match hint {
                    Some(h) => (
                        Some(Cow::Borrowed(&h.old_doc)),
                        Some(Cow::Borrowed(&h.new_doc)),
                    ),
                    None => (
                        old.and_then(parse).map(Cow::Owned),
                        parse(new).map(Cow::Owned),
                    ),
                };
                let mut indexes = self.indexes.write();
                self.version.fetch_add(1, Ordering::AcqRel);
                for index in indexes.values_mut() {
                    if let Some(old) = &old {
                        index.remove(key, old);
                    }
                    if let Some(new) = &parsed {
                        index.insert(key, new);
                    }
                }
            });
        }
        if self.watchers.any() {
            self.watchers.publish(ChangeOp::Set, key, Some(new));
        }
    }

    fn on_remove(&self, key: &str, old: Option<&[u8]>) {
        if self.active.load(Ordering::Acquire) {
            if let Some(old) = old.and_then(parse) {
                let mut indexes = self.indexes.write();
                self.version.fetch_add(1, Ordering::AcqRel);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{key_bytes, FieldPath, IndexProbe};
    use serde_json::json;

    fn indexed_on_g() -> IndexSet {
        let set = IndexSet::default();
        let path = FieldPath::parse("g").expect("path");
        set.indexes
            .write()
            .insert("g".to_owned(), FieldIndex::new(path));
        set.refresh_active();
        set
    }

    fn holders(set: &IndexSet, g: i64) -> Vec<String> {
        let probe = IndexProbe::Keys(vec![key_bytes(&json!(g))]);
        let indexes = set.indexes.read();
        indexes["g"]
            .probe(&probe)
            .iter()
            .map(|k| k.to_string())
            .collect()
    }

    /// A hint carrying documents that differ from its bytes shows which of
    /// the two the upkeep used.
    fn hint(key: &str, old: &[u8], new: &[u8]) -> Parsed {
        Parsed {
            key: key.to_owned(),
            old: old.to_vec(),
            old_doc: json!({"g": 1}),
            new: new.to_vec(),
            new_doc: json!({"g": 9}),
        }
    }

    #[test]
    fn upkeep_uses_parsed_documents_only_for_the_exact_change() {
        let set = indexed_on_g();
        set.on_put("a", None, br#"{"g":1}"#);
        // Exactly the change the hint names: its documents are used.
        let (_, back) = with_parsed(hint("a", br#"{"g":1}"#, br#"{"g":2}"#), || {
            set.on_put("a", Some(br#"{"g":1}"#), br#"{"g":2}"#)
        });
        assert_eq!(back.new_doc, json!({"g": 9}));
        assert_eq!(holders(&set, 9), ["a"]);
        assert!(holders(&set, 1).is_empty());
        // Another key, other old bytes, other new bytes: parsed from the bytes.
        set.on_put("a", Some(br#"{"g":9}"#), br#"{"g":1}"#);
        set.on_put("b", None, br#"{"g":1}"#);
        let cases: [(&str, &[u8], &[u8]); 3] = [
            ("b", br#"{"g":1}"#, br#"{"g":3}"#),
            ("a", br#"{"g":5}"#, br#"{"g":3}"#),
            ("a", br#"{"g":1}"#, br#"{"g":4}"#),
        ];
        for (key, old, new) in cases {
            with_parsed(hint(key, old, new), || {
                set.on_put("a", Some(br#"{"g":1}"#), br#"{"g":3}"#)
            });
            assert_eq!(holders(&set, 3), ["a"], "{key} {old:?} {new:?}");
            assert!(holders(&set, 9).is_empty());
            set.on_put("a", Some(br#"{"g":3}"#), br#"{"g":1}"#);
        }
        // Nothing is left offered afterwards.
        set.on_put("a", Some(br#"{"g":1}"#), br#"{"g":2}"#);
        assert_eq!(holders(&set, 2), ["a"]);
    }
}
