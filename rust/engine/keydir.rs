//! The key directory: every live key and where its latest record lives.
//!
//! An ordered map (B-tree) rather than a hash map, so `scan(prefix)` and key
//! paging walk keys in order without sorting. Values are never held here, only
//! a small location, which is what lets a database outgrow memory. Keys are
//! `CompactString`s: up to 24 bytes live inline in the tree node, so a lookup
//! compares keys without chasing a pointer per comparison, and short keys cost
//! no allocation. [`Keyspace`] is the one place that applies a put or a delete,
//! used alike by replay at open and by live writes.

use std::collections::{BTreeMap, BTreeSet};

use compact_str::CompactString;

use crate::format::{DecodeError, HintEntry, RecordKind, RECORD_HEADER_LEN};

use crate::clock::Clock;

/// Where a key's live record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Offset of the record's first byte.
    pub offset: u64,
    /// Length of the JSON value.
    pub value_len: u32,
    /// Unix milliseconds at which the key expires; 0 = never.
    pub expires_at: u64,
}

impl Loc {
    /// Bytes the whole record occupies on disk.
    pub fn record_len(&self, key: &str) -> u64 {
        (RECORD_HEADER_LEN + key.len()) as u64 + u64::from(self.value_len)
    }

    /// Whether the key is still visible at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at == 0 || self.expires_at > now_ms
    }

    /// Whether the key is visible now; reads the clock only for keys with a
    /// TTL, so point reads of permanent keys never pay for it.
    pub fn is_live_by(&self, clock: &Clock) -> bool {
        self.expires_at == 0 || self.expires_at > clock.now_ms()
    }
}

/// Ordered map from key to location.
pub type Keydir = BTreeMap<CompactString, Loc>;

/// The keydir plus what must change with it: the expiry queue and the count
/// of live bytes.
#[derive(Debug, Default)]
pub struct Keyspace {
    /// Every key not deleted (possibly expired but not yet purged).
    pub keydir: Keydir,
    /// `(expires_at, key)` for keys with a TTL, soonest first.
    pub expiry: BTreeSet<(u64, CompactString)>,
    /// Bytes of the records in `keydir` and `meta`.
    pub live_bytes: u64,
    /// Metadata entries (index definitions): a namespace apart from user keys.
    pub meta: Keydir,
    /// Bumped whenever records move without changing (compaction), so a
    /// location remembered before is no longer proof that a key is unchanged.
    pub relocations: u64,
    /// Bumped by every metadata write taken in (this handle's or another
    /// process's), so the layers above know to re-read their definitions.
    pub meta_writes: u64,
}

impl Keyspace {
    /// Build from the entries of a hint (each already checked against the
    /// data file by `storage::LoadedHint::entries`), dropping keys expired
    /// by `now_ms`. `None` if an entry fails its checks, a key appears twice
    /// or two entries share a record. `entries` (the header's count) sizes
    /// the buffer exactly, so it never doubles past what is needed; it is
    /// capped at what a body of `body_len` bytes could hold (every entry
    /// takes more than 16 bytes).
    pub fn from_hint<'a>(
        hint: impl IntoIterator<Item = Result<HintEntry<'a>, DecodeError>>,
        entries: u64,
        body_len: usize,
        now_ms: u64,
    ) -> Option<Self> {
        let mut ks = Keyspace::default();
        // Collected, then built in one pass: a bulk-built B-tree is faster
        // to make and denser than one grown by inserts.
        let capacity = usize::try_from(entries).unwrap_or(0).min(body_len / 16);
        let mut keys: Vec<(CompactString, Loc)> = Vec::with_capacity(capacity);
        let mut offsets: Vec<u64> = Vec::with_capacity(capacity);
        for entry in hint {
            let e = entry.ok()?;
            offsets.push(e.offset);
            let loc = Loc {
                offset: e.offset,
                value_len: e.value_len,
                expires_at: e.expires_at,
            };
            match e.kind {
                RecordKind::Meta => ks.put_meta(e.key, loc),
                _ if loc.is_live(now_ms) => {
                    ks.live_bytes += loc.record_len(e.key);
                    if loc.expires_at != 0 {
                        ks.expiry
                            .insert((loc.expires_at, CompactString::new(e.key)));
                    }
                    keys.push((CompactString::new(e.key), loc));
                }
                _ => {}
            }
        }
        // Hints are written in key order, so one pass usually proves the keys
        // strictly increasing (sorted, no duplicate); anything else is sorted
        // and checked for duplicates the long way.
        if !keys.is_sorted_by(|a, b| a.0 < b.0) {
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            if keys.windows(2).any(|w| w[0].0 == w[1].0) {
                return None;
            }
        }
        // Two keys on one record: the hint cannot be describing this log.
        offsets.sort_unstable();
        if offsets.windows(2).any(|w| w[0] == w[1]) {
            return None;
        }
        ks.keydir = keys.into_iter().collect();
        Some(ks)
    }

    /// Take in one record read back from the log (replay at open, or the
    /// records another process appended): the one rule for what a record
    /// does to the key space. A put that has expired by `now_ms` supersedes
    /// older puts of the key and then vanishes, exactly like a delete.
    /// Returns what a user key held before, and whether it holds a value now.
    pub fn take_in(
        &mut self,
        kind: RecordKind,
        key: &str,
        loc: Loc,
        now_ms: u64,
    ) -> (Option<Loc>, bool) {
        match kind {
            RecordKind::Meta if loc.value_len == 0 => {
                self.remove_meta(key);
                (None, false)
            }
            RecordKind::Meta => {
                self.put_meta(key, loc);
                (None, false)
            }
            RecordKind::Put if loc.is_live(now_ms) => (self.put(key, loc), true),
            RecordKind::Put | RecordKind::Delete => (self.remove(key), false),
            // Replay hands over a batch's records one by one instead.
            RecordKind::Batch => (None, false),
        }
    }

    /// Point `key` at `loc`; returns the location it replaced.
    pub fn put(&mut self, key: &str, loc: Loc) -> Option<Loc> {
        let old = match self.keydir.get_mut(key) {
            Some(slot) => Some(std::mem::replace(slot, loc)),
            None => {
                self.keydir.insert(CompactString::new(key), loc);
                None
            }
        };
        if let Some(old) = old {
            self.forget(key, old);
        }
        if loc.expires_at != 0 {
            self.expiry
                .insert((loc.expires_at, CompactString::new(key)));
        }
        self.live_bytes += loc.record_len(key);
        old
    }

    /// Remove `key`; returns its location if it was there.
    pub fn remove(&mut self, key: &str) -> Option<Loc> {
        let old = self.keydir.remove(key)?;
        self.forget(key, old);
        Some(old)
    }

    fn forget(&mut self, key: &str, old: Loc) {
        if old.expires_at != 0 {
            self.expiry
                .remove(&(old.expires_at, CompactString::new(key)));
        }
        self.live_bytes -= old.record_len(key);
    }

    /// Point metadata entry `key` at `loc`.
    pub fn put_meta(&mut self, key: &str, loc: Loc) {
        self.meta_writes += 1;
        if let Some(old) = self.meta.insert(CompactString::new(key), loc) {
            self.live_bytes -= old.record_len(key);
        }
        self.live_bytes += loc.record_len(key);
    }

    /// Remove metadata entry `key`.
    pub fn remove_meta(&mut self, key: &str) {
        self.meta_writes += 1;
        if let Some(old) = self.meta.remove(key) {
            self.live_bytes -= old.record_len(key);
        }
    }

    /// Keys that have expired by `now_ms` (still in the keydir), soonest first.
    pub fn expired(&self, now_ms: u64) -> Vec<(CompactString, Loc)> {
        self.expiry
            .iter()
            .take_while(|(t, _)| *t <= now_ms)
            .filter_map(|(_, k)| self.keydir.get(k).map(|loc| (k.clone(), *loc)))
            .collect()
    }

    /// Whether some key has expired by `now_ms` and is still in the keydir.
    pub fn has_expired(&self, now_ms: u64) -> bool {
        self.expiry.first().is_some_and(|(t, _)| *t <= now_ms)
    }

    /// Drop every key expired by `now_ms` from memory (their records stay on
    /// disk until compaction; replay skips them). Returns how many.
    pub fn purge_expired(&mut self, now_ms: u64) -> usize {
        let mut purged = 0;
        while let Some((t, key)) = self.expiry.first().cloned() {
            if t > now_ms {
                break;
            }
            self.expiry.pop_first();
            if let Some(loc) = self.keydir.remove(&key) {
                self.live_bytes -= loc.record_len(&key);
                purged += 1;
            }
        }
        purged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(offset: u64, expires_at: u64) -> Loc {
        Loc {
            offset,
            value_len: 10,
            expires_at,
        }
    }

    #[test]
    fn put_remove_track_bytes_and_expiry() {
        let mut ks = Keyspace::default();
        ks.put("a", loc(64, 0));
        ks.put("b", loc(100, 5_000));
        assert_eq!(ks.expiry.len(), 1);
        // Overwriting without a TTL takes the key off the expiry queue.
        ks.put("b", loc(200, 0));
        assert!(ks.expiry.is_empty());
        ks.put("c", loc(300, 1_000));
        assert!(!ks.has_expired(999));
        assert!(ks.has_expired(1_000));
        assert_eq!(ks.purge_expired(1_000), 1);
        assert!(!ks.keydir.contains_key("c"));
        ks.remove("a");
        ks.remove("b");
        assert_eq!(ks.live_bytes, 0);
        assert!(ks.keydir.is_empty());
    }

    fn from_body(body: &[u8], entries: u64) -> Option<Keyspace> {
        Keyspace::from_hint(
            crate::format::HintEntries::new(body),
            entries,
            body.len(),
            0,
        )
    }

    fn hint_body(keys: &[&str]) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            crate::format::encode_hint_entry(
                &mut body,
                &crate::format::HintEntry {
                    kind: RecordKind::Put,
                    key,
                    offset: 64 + 100 * i as u64,
                    value_len: 10,
                    expires_at: 0,
                },
            );
        }
        body
    }

    #[test]
    fn from_hint_takes_keys_in_any_order_and_refuses_duplicates() {
        // In key order (as written): the fast path.
        let ks = from_body(&hint_body(&["a", "b", "c"]), 3).expect("sorted");
        assert_eq!(ks.keydir.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        // Out of order: sorted, each key keeps its own location.
        let ks = from_body(&hint_body(&["c", "a", "b"]), 3).expect("unsorted");
        assert_eq!(ks.keydir.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(ks.keydir.get("c").map(|l| l.offset), Some(64));
        assert_eq!(ks.keydir.get("a").map(|l| l.offset), Some(164));
        // A key twice, adjacent or not, means the hint is not trusted.
        assert!(from_body(&hint_body(&["a", "b", "b"]), 3).is_none());
        assert!(from_body(&hint_body(&["b", "a", "b"]), 3).is_none());
        // A wrong entry count only sizes the buffer: never trusted for more.
        let ks = from_body(&hint_body(&["a", "b"]), u64::MAX).expect("big count");
        assert_eq!(ks.keydir.len(), 2);
        let ks = from_body(&hint_body(&["a", "b"]), 0).expect("zero count");
        assert_eq!(ks.keydir.len(), 2);
    }
}
