//! The key directory: every live key and where its latest record lives.
//!
//! An ordered map (B-tree) rather than a hash map, so `scan(prefix)` and key
//! paging walk keys in order without sorting. Values are never held here, only
//! a small location, which is what lets a database outgrow memory. Keys are
//! `CompactString`s: up to 24 bytes live inline in the tree node, so a lookup
//! compares keys without chasing a pointer per comparison, and short keys cost
//! no allocation. They compare eight bytes at a time ([`Key`]) rather than
//! through a `memcmp` call per comparison: a B-tree insert compares some
//! forty keys, and every process sharing a database inserts every key any of
//! them writes, so this is most of what taking in another process's write
//! costs (it halved it). [`Keyspace`] is the one place that applies a put or
//! a delete, used alike by replay at open and by live writes.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{btree_map, BTreeMap, BTreeSet};
use std::ops::Bound;

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

/// A key as the keydir holds it, in the same order as `str` (by bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Key(CompactString);

/// A borrowed key, to look one up in the keydir without building a [`Key`].
#[derive(PartialEq, Eq)]
#[repr(transparent)]
pub struct KeyStr(str);

impl KeyStr {
    fn new(key: &str) -> &KeyStr {
        // SAFETY: `KeyStr` is `repr(transparent)` over `str`, so the two
        // pointers have the same layout and metadata.
        unsafe { &*(std::ptr::from_ref::<str>(key) as *const KeyStr) }
    }
}

impl Ord for KeyStr {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        key_order(self.0.as_bytes(), other.0.as_bytes())
    }
}

/// Byte order, as `str`'s, compared a word at a time: keys are short and a
/// call into `memcmp` per comparison cost more than the comparison. The one
/// order of keys everywhere (key directory, indexes, the index file).
#[inline]
pub fn key_order(a: &[u8], b: &[u8]) -> Ordering {
    let common = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= common {
        let x = u64::from_be_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < common {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

impl PartialOrd for KeyStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Borrow<KeyStr> for Key {
    fn borrow(&self) -> &KeyStr {
        KeyStr::new(&self.0)
    }
}

impl Ord for Key {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        KeyStr::new(&self.0).cmp(KeyStr::new(&other.0))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::ops::Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

/// Ordered map from key to location.
#[derive(Debug, Default)]
pub struct Keydir(BTreeMap<Key, Loc>);

impl Keydir {
    /// Where `key`'s record is.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Loc> {
        self.0.get(KeyStr::new(key))
    }

    /// Whether `key` is here.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(KeyStr::new(key))
    }

    /// Point `key` at `loc`; returns the location it replaced. One descent of
    /// the tree for a key short enough to live inline; a longer key (whose
    /// copy allocates) is looked up first, so an overwrite never allocates.
    #[inline]
    pub fn insert(&mut self, key: &str, loc: Loc) -> Option<Loc> {
        if key.len() <= std::mem::size_of::<CompactString>() {
            return self.0.insert(Key(CompactString::new(key)), loc);
        }
        match self.0.get_mut(KeyStr::new(key)) {
            Some(slot) => Some(std::mem::replace(slot, loc)),
            None => self.0.insert(Key(CompactString::new(key)), loc),
        }
    }

    /// Remove `key`; returns its location if it was there.
    pub fn remove(&mut self, key: &str) -> Option<Loc> {
        self.0.remove(KeyStr::new(key))
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Every key and location, in key order.
    pub fn iter(&self) -> btree_map::Iter<'_, Key, Loc> {
        self.0.iter()
    }

    /// Every key live at `now_ms`, in order, with its location.
    pub fn live(&self, now_ms: u64) -> impl Iterator<Item = (&str, Loc)> + '_ {
        self.0
            .iter()
            .filter(move |(_, loc)| loc.is_live(now_ms))
            .map(|(k, loc)| (&**k, *loc))
    }

    /// Every key in order, with its location to change in place.
    pub fn iter_mut(&mut self) -> btree_map::IterMut<'_, Key, Loc> {
        self.0.iter_mut()
    }

    /// Keys from `prefix` on in order (strictly after `after`, when that is
    /// not before `prefix`); the caller stops where the prefix ends.
    pub fn range_from<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
    ) -> btree_map::Range<'a, Key, Loc> {
        match after {
            Some(a) if a >= prefix => self
                .0
                .range::<KeyStr, _>((Bound::Excluded(KeyStr::new(a)), Bound::Unbounded)),
            _ => self
                .0
                .range::<KeyStr, _>((Bound::Included(KeyStr::new(prefix)), Bound::Unbounded)),
        }
    }
}

impl FromIterator<(CompactString, Loc)> for Keydir {
    fn from_iter<I: IntoIterator<Item = (CompactString, Loc)>>(iter: I) -> Self {
        Keydir(iter.into_iter().map(|(k, loc)| (Key(k), loc)).collect())
    }
}

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
        let old = self.keydir.insert(key, loc);
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
        if let Some(old) = self.meta.insert(key, loc) {
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
        assert_eq!(ks.keydir.len(), 0);
    }

    fn keys(ks: &Keyspace) -> Vec<&str> {
        ks.keydir.iter().map(|(k, _)| &**k).collect()
    }

    #[test]
    fn keys_order_as_str_does() {
        let mut words = vec![
            "",
            "a",
            "ab",
            "ab\0",
            "ab\0c",
            "abc",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "abcdefgg~",
            "abcdefgi",
            "user:10",
            "user:2",
            "user:100000000",
            "user:99999999",
            "é",
            "e\u{301}",
            "z",
            "\u{7f}",
            "\u{80}",
            "\u{10ffff}",
            "abcdefghabcdefgh",
            "abcdefghabcdefgi",
            "abcdefghabcdefg",
        ];
        for i in 0..200u32 {
            words.push(Box::leak(
                format!("k{}:{}", i % 7, i * 7919).into_boxed_str(),
            ));
        }
        for a in &words {
            for b in &words {
                assert_eq!(
                    KeyStr::new(a).cmp(KeyStr::new(b)),
                    a.cmp(b),
                    "{a:?} against {b:?}"
                );
            }
        }
        let mut dir = Keydir::default();
        for (i, w) in words.iter().enumerate() {
            dir.insert(w, loc(i as u64, 0));
        }
        let mut sorted = words.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(dir.iter().map(|(k, _)| &**k).collect::<Vec<_>>(), sorted);
        // A long key (not inline) overwritten keeps one entry.
        let long = "x".repeat(100);
        assert_eq!(dir.insert(&long, loc(1, 0)), None);
        assert_eq!(dir.insert(&long, loc(2, 0)).map(|l| l.offset), Some(1));
        assert_eq!(dir.get(&long).map(|l| l.offset), Some(2));
        let from: Vec<&str> = dir
            .range_from("user:", None)
            .map(|(k, _)| &**k)
            .take(2)
            .collect();
        assert_eq!(from, ["user:10", "user:100000000"]);
        let after: Vec<&str> = dir
            .range_from("user:", Some("user:10"))
            .map(|(k, _)| &**k)
            .take(1)
            .collect();
        assert_eq!(after, ["user:100000000"]);
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
        assert_eq!(keys(&ks), ["a", "b", "c"]);
        // Out of order: sorted, each key keeps its own location.
        let ks = from_body(&hint_body(&["c", "a", "b"]), 3).expect("unsorted");
        assert_eq!(keys(&ks), ["a", "b", "c"]);
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
