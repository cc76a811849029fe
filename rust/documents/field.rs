//! One secondary index: encoded field value -> the keys of the documents that
//! reach it.
//!
//! Values are stored as order-preserving bytes ([`crate::query::encode_key`]):
//! a hash map from value to keys answers equality in O(1), and an ordered set
//! of the distinct values answers a range in O(log n + k). A document whose
//! field holds an array is entered once per distinct element (and once for
//! the array itself); documents without the field are simply absent, except
//! that a unique index also keeps their keys aside, because for uniqueness a
//! missing field counts as `null` (MongoDB).
//!
//! An index loaded from the index file (`documents::persist`) is built
//! lazily: the open only checks the file and notes which of its keys it can
//! trust ([`Listed`]); the key sets are built from the mapped file on the
//! index's first use (a read, or a write that changes it), which is the
//! state as of the open, since every write since goes through this index.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ops::{Bound, Range};
use std::sync::{Arc, OnceLock};

use compact_str::CompactString;
use parking_lot::Mutex;
use serde_json::Value;

use crate::query::{index_entries, key_bytes, reaches_many, FieldPath, IndexProbe};

/// A document key as an index holds it: ordered by bytes like `str`, but
/// compared a word at a time (as the key directory's keys are), since
/// building and walking key sets is mostly comparisons of short keys, and a
/// call into `memcmp` for each cost more than the comparison. Looked up by
/// `&str` (same order).
#[derive(Debug, Clone)]
pub(super) struct IndexKey(CompactString);

impl PartialEq for IndexKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for IndexKey {}

impl IndexKey {
    pub(super) fn new(key: &str) -> Self {
        IndexKey(CompactString::new(key))
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for IndexKey {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        crate::engine::key_order(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl PartialOrd for IndexKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Borrow<str> for IndexKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// An index on one (possibly dotted) field path.
#[derive(Debug)]
pub struct FieldIndex {
    path: FieldPath,
    /// Whether two documents may not share a value (see [`FieldIndex::claims`]).
    unique: bool,
    /// The contents, once built (at once for a new index; on first use for
    /// one loaded from the index file).
    built: OnceLock<Built>,
    /// What builds them, for an index loaded from the index file and not
    /// used yet.
    pending: Mutex<Option<Listed>>,
}

/// An index file's body, mapped, and where the names of the keys it can
/// vouch for start in it (see `documents::persist`): shared by the indexes
/// loaded from it until each is built.
#[derive(Debug)]
pub(super) struct ListedFile {
    pub map: memmap2::Mmap,
    /// Where the body starts in `map`.
    pub body: usize,
    /// Per key number: the body offset of its length-prefixed name, or
    /// `None` when its entries are not trusted (left out).
    pub names: Vec<Option<usize>>,
}

impl ListedFile {
    fn body(&self) -> &[u8] {
        self.map.get(self.body..).unwrap_or_default()
    }

    /// The name of key number `number`, if trusted.
    fn name(&self, number: usize) -> Option<&str> {
        let at = (*self.names.get(number)?)?;
        let body = self.body();
        let len = u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
        std::str::from_utf8(body.get(at + 4..at + 4 + len)?).ok()
    }

    /// The trusted keys among the key numbers encoded in `range`, in order.
    fn key_set(&self, range: &Range<usize>) -> BTreeSet<IndexKey> {
        let raw = self.body().get(range.clone()).unwrap_or_default();
        let mut keys = Vec::with_capacity(raw.len() / 4);
        for word in raw.chunks_exact(4) {
            let number = u32::from_le_bytes([word[0], word[1], word[2], word[3]]) as usize;
            if let Some(name) = self.name(number) {
                keys.push(IndexKey::new(name));
            }
        }
        // In key order already: the set is built in one pass.
        keys.into_iter().collect()
    }
}

/// One index as an index file holds it, not built yet.
#[derive(Debug)]
pub(super) struct Listed {
    pub file: Arc<ListedFile>,
    pub multikey: bool,
    /// Per distinct value in order: its encoded bytes and its key numbers,
    /// as body ranges.
    pub values: Vec<(Range<usize>, Range<usize>)>,
    /// Unique indexes: the key numbers of the documents without the field.
    pub missing: Range<usize>,
    /// Documents the file could not vouch for, read at the open (only the
    /// top-level fields the loaded indexes read), to add once built.
    pub stale: Arc<Vec<(String, Value)>>,
}

/// The contents of an index.
#[derive(Debug, Default)]
struct Built {
    /// Encoded value -> keys of the documents reaching it (equality).
    entries: HashMap<Vec<u8>, BTreeSet<IndexKey>>,
    /// The distinct encoded values, in order (ranges).
    order: BTreeSet<Vec<u8>>,
    /// Whether some document ever reached several values here (never reset
    /// until a rebuild); the planner merges range bounds only when false.
    multikey: bool,
    /// Number of (value, key) pairs.
    pairs: usize,
    /// Unique indexes only: keys of the documents where the path reaches
    /// nothing, which claim `null`.
    missing: BTreeSet<IndexKey>,
    /// Bytes of encoded values and keys held, for `stats()`.
    bytes: usize,
}

/// Rough per-entry overhead of the hash map, B-tree nodes and sets, for memory reports.
const ENTRY_OVERHEAD: usize = 48;

impl FieldIndex {
    /// An empty index on `path`.
    pub fn new(path: FieldPath) -> Self {
        FieldIndex {
            path,
            unique: false,
            built: OnceLock::from(Built::default()),
            pending: Mutex::new(None),
        }
    }

    /// An empty unique index on `path`.
    pub fn new_unique(path: FieldPath) -> Self {
        FieldIndex {
            unique: true,
            ..FieldIndex::new(path)
        }
    }

    /// An index on `path` as the index file lists it, built on first use
    /// (see the module docs): how an index file is loaded (`documents::persist`).
    pub(super) fn listed(path: FieldPath, unique: bool, listed: Listed) -> Self {
        FieldIndex {
            path,
            unique,
            built: OnceLock::new(),
            pending: Mutex::new(Some(listed)),
        }
    }

    /// The contents, built first if they are still listed.
    fn built(&self) -> &Built {
        self.built.get_or_init(|| {
            let mut pending = self.pending.lock();
            // Taken only once built: a build that panicked is tried again.
            let built = pending
                .as_ref()
                .map_or_else(Built::default, |l| build(&self.path, self.unique, l));
            *pending = None;
            built
        })
    }

    /// The distinct encoded values in order, each with its keys (what an
    /// index file stores).
    pub(super) fn values(&self) -> impl Iterator<Item = (&Vec<u8>, &BTreeSet<IndexKey>)> {
        let built = self.built();
        built
            .order
            .iter()
            .filter_map(|v| built.entries.get(v).map(|keys| (v, keys)))
    }

    /// Unique indexes only: the keys of the documents without the field.
    pub(super) fn missing(&self) -> &BTreeSet<IndexKey> {
        &self.built().missing
    }

    /// Whether this index refuses two documents with one value.
    pub fn is_unique(&self) -> bool {
        self.unique
    }

    /// The values `doc` claims in a unique index, encoded and as JSON: the
    /// distinct values its path reaches, or `null` when it reaches none.
    pub fn claims(&self, doc: &Value) -> Vec<(Vec<u8>, Value)> {
        let mut out: Vec<(Vec<u8>, Value)> = Vec::new();
        for value in self.path.values(doc) {
            let encoded = key_bytes(value);
            if !out.iter().any(|(e, _)| *e == encoded) {
                out.push((encoded, value.clone()));
            }
        }
        if out.is_empty() {
            out.push((key_bytes(&Value::Null), Value::Null));
        }
        out
    }

    /// The keys of the documents that claim an encoded value (see
    /// [`FieldIndex::claims`]; `null` includes documents without the field
    /// in a unique index).
    pub fn holders<'a>(&'a self, encoded: &[u8]) -> impl Iterator<Item = &'a CompactString> + 'a {
        let null = self.unique && encoded == key_bytes(&Value::Null).as_slice();
        let built = self.built();
        built
            .entries
            .get(encoded)
            .into_iter()
            .flatten()
            .chain(built.missing.iter().filter(move |_| null))
            .map(|k| &k.0)
    }

    /// Unique indexes: each encoded value that several documents claim, with
    /// their keys (expired documents not purged yet included). Empty while
    /// every write was checked; another process's write that raced the
    /// index's creation is how one appears (see `Documents::create_index_with`).
    pub fn shared_claims(&self) -> Vec<(Vec<u8>, Vec<CompactString>)> {
        let null = key_bytes(&Value::Null);
        let mut out: Vec<(Vec<u8>, Vec<CompactString>)> = self
            .built()
            .entries
            .iter()
            .filter(|(encoded, keys)| keys.len() > 1 && **encoded != null)
            .map(|(encoded, keys)| (encoded.clone(), keys.iter().map(|k| k.0.clone()).collect()))
            .collect();
        let nulls: Vec<CompactString> = self.holders(&null).cloned().collect();
        if nulls.len() > 1 {
            out.push((null, nulls));
        }
        out
    }

    /// The indexed path.
    pub fn path(&self) -> &FieldPath {
        &self.path
    }

    /// Whether some document reached several values at this path.
    pub fn is_multikey(&self) -> bool {
        self.built().multikey
    }

    /// Add `doc`'s entries under `key`.
    pub fn insert(&mut self, key: &str, doc: &Value) {
        let (path, unique, built) = self.for_change();
        built.insert(path, unique, key, doc);
    }

    /// Remove `doc`'s entries under `key`.
    pub fn remove(&mut self, key: &str, doc: &Value) {
        let (path, unique, built) = self.for_change();
        built.remove(path, unique, key, doc);
    }

    /// The path, the unique flag and the key sets (built first if the index
    /// was only listed), for a change.
    fn for_change(&mut self) -> (&FieldPath, bool, &mut Built) {
        let FieldIndex {
            path,
            unique,
            built,
            pending,
        } = self;
        (path, *unique, built_mut(built, pending, path, *unique))
    }

    /// Keys of the documents a probe selects, sorted and distinct. One
    /// value (an equality, the common case) is its key set as it is; several
    /// (`$in`, a range) are gathered, then sorted once and deduplicated (a
    /// multikey document may sit under several): far cheaper than inserting
    /// each key into an ordered set.
    pub fn probe(&self, probe: &IndexProbe) -> Vec<CompactString> {
        let built = self.built();
        let values: Box<dyn Iterator<Item = &Vec<u8>>> = match probe {
            IndexProbe::Keys(values) => Box::new(values.iter()),
            IndexProbe::Range(lo, hi) => Box::new(built.range(lo, hi)),
        };
        let mut sets = values.filter_map(|v| built.entries.get(v));
        let Some(first) = sets.next() else {
            return Vec::new();
        };
        let mut out: Vec<CompactString> = first.iter().map(|k| k.0.clone()).collect();
        let mut merged = false;
        for keys in sets {
            out.extend(keys.iter().map(|k| k.0.clone()));
            merged = true;
        }
        if merged {
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    /// How many documents a probe selects, exactly, reading no key where it
    /// can: one value is its key set's length, and several are summed when
    /// no document reached two values here (not multikey); otherwise the
    /// keys are gathered and deduplicated as [`FieldIndex::probe`] does.
    pub fn count(&self, probe: &IndexProbe) -> usize {
        let built = self.built();
        let size = |v: &Vec<u8>| built.entries.get(v).map_or(0, BTreeSet::len);
        match probe {
            IndexProbe::Keys(values) if values.len() <= 1 || !built.multikey => {
                let mut distinct: Vec<&Vec<u8>> = values.iter().collect();
                distinct.sort_unstable();
                distinct.dedup();
                distinct.into_iter().map(size).sum()
            }
            IndexProbe::Range(lo, hi) if !built.multikey => built.range(lo, hi).map(size).sum(),
            _ => self.probe(probe).len(),
        }
    }

    /// How many documents a probe would select (an upper bound for ranges
    /// over multikey documents).
    pub fn estimate(&self, probe: &IndexProbe) -> u64 {
        let built = self.built();
        let count = |v: &Vec<u8>| built.entries.get(v).map_or(0, |k| k.len() as u64);
        match probe {
            IndexProbe::Keys(values) => values.iter().map(count).sum(),
            IndexProbe::Range(lo, hi) => built.range(lo, hi).map(count).sum(),
        }
    }

    /// Approximate bytes of memory held.
    pub fn memory_bytes(&self) -> u64 {
        self.built().bytes as u64
    }

    /// Number of (value, key) pairs.
    pub fn len(&self) -> usize {
        self.built().pairs
    }

    /// Whether the index holds nothing.
    pub fn is_empty(&self) -> bool {
        self.built().pairs == 0
    }
}

/// The contents of an index on `path` to change, built first if they are
/// still listed.
fn built_mut<'a>(
    built: &'a mut OnceLock<Built>,
    pending: &mut Mutex<Option<Listed>>,
    path: &FieldPath,
    unique: bool,
) -> &'a mut Built {
    if built.get().is_none() {
        let listed = pending.get_mut();
        *built = OnceLock::from(
            listed
                .as_ref()
                .map_or_else(Built::default, |l| build(path, unique, l)),
        );
        *listed = None;
    }
    match built.get_mut() {
        Some(built) => built,
        None => unreachable!("set just above"),
    }
}

/// The contents of an index on `path` that an index file lists, with its
/// stale documents added.
fn build(path: &FieldPath, unique: bool, listed: &Listed) -> Built {
    let file = &listed.file;
    let body = file.body();
    let mut entries: HashMap<Vec<u8>, BTreeSet<IndexKey>> =
        HashMap::with_capacity(listed.values.len());
    for (value, numbers) in &listed.values {
        let keys = file.key_set(numbers);
        if !keys.is_empty() {
            let value = body.get(value.clone()).unwrap_or_default();
            entries.insert(value.to_vec(), keys);
        }
    }
    let missing = if unique {
        file.key_set(&listed.missing)
    } else {
        BTreeSet::new()
    };
    let mut built = Built::from_parts(listed.multikey, entries, missing);
    for (key, doc) in listed.stale.iter() {
        built.insert(path, unique, key, doc);
    }
    built
}

impl Built {
    /// Contents holding `entries` (encoded value -> keys, none empty) and
    /// `missing` (unique indexes: the keys of the documents without the field).
    fn from_parts(
        multikey: bool,
        entries: HashMap<Vec<u8>, BTreeSet<IndexKey>>,
        missing: BTreeSet<IndexKey>,
    ) -> Self {
        let mut pairs = 0;
        let mut bytes = 0;
        for (value, keys) in &entries {
            pairs += keys.len();
            bytes += value.len() + ENTRY_OVERHEAD;
            bytes += keys
                .iter()
                .map(|k| value.len() + k.0.len() + ENTRY_OVERHEAD)
                .sum::<usize>();
        }
        Built {
            order: entries.keys().cloned().collect(),
            entries,
            multikey,
            pairs,
            missing,
            bytes,
        }
    }

    /// Add `doc`'s entries under `key` (the index is on `path`, `unique` or not).
    fn insert(&mut self, path: &FieldPath, unique: bool, key: &str, doc: &Value) {
        if !self.multikey && reaches_many(path, doc) {
            self.multikey = true;
        }
        if unique && !path.any_value(doc, |_| true) {
            self.missing.insert(IndexKey::new(key));
        }
        for value in index_entries(path, doc) {
            let len = value.len();
            if !self.entries.contains_key(&value) {
                // A new distinct value: one copy in the ordered set.
                self.order.insert(value.clone());
                self.bytes += len + ENTRY_OVERHEAD;
            }
            if self
                .entries
                .entry(value)
                .or_default()
                .insert(IndexKey::new(key))
            {
                self.pairs += 1;
                self.bytes += len + key.len() + ENTRY_OVERHEAD;
            }
        }
    }

    /// Remove `doc`'s entries under `key`.
    fn remove(&mut self, path: &FieldPath, unique: bool, key: &str, doc: &Value) {
        if unique {
            self.missing.remove(key);
        }
        for value in index_entries(path, doc) {
            let Some(keys) = self.entries.get_mut(&value) else {
                continue;
            };
            if keys.remove(key) {
                self.pairs -= 1;
                self.bytes -= value.len() + key.len() + ENTRY_OVERHEAD;
            }
            if keys.is_empty() {
                self.entries.remove(&value);
                self.order.remove(&value);
                self.bytes -= value.len() + ENTRY_OVERHEAD;
            }
        }
    }

    /// The distinct values inside a range, in order.
    fn range<'a>(
        &'a self,
        lo: &'a Bound<Vec<u8>>,
        hi: &'a Bound<Vec<u8>>,
    ) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        self.order
            .range::<Vec<u8>, (Bound<&Vec<u8>>, Bound<&Vec<u8>>)>((lo.as_ref(), hi.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::key_bytes;
    use serde_json::json;

    fn index(field: &str) -> FieldIndex {
        FieldIndex::new(FieldPath::parse(field).expect("path"))
    }

    #[test]
    fn arrays_index_each_element_and_remove_cleanly() {
        let mut ix = index("tags");
        ix.insert("a", &json!({"tags": ["red", "blue"]}));
        ix.insert("b", &json!({"tags": "red"}));
        ix.insert("c", &json!({"other": 1}));
        assert!(ix.is_multikey());
        let red = IndexProbe::Keys(vec![key_bytes(&json!("red"))]);
        let keys: Vec<_> = ix.probe(&red).into_iter().collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(ix.estimate(&red), 2);
        // "a" is under both values: counted once.
        let both = IndexProbe::Keys(vec![key_bytes(&json!("blue")), key_bytes(&json!("red"))]);
        assert_eq!(ix.count(&both), 2);
        assert_eq!(ix.count(&red), 2);
        ix.remove("a", &json!({"tags": ["red", "blue"]}));
        ix.remove("b", &json!({"tags": "red"}));
        assert!(ix.is_empty());
        assert_eq!(ix.memory_bytes(), 0);
    }

    #[test]
    fn nested_paths_and_ranges() {
        let mut ix = index("address.city");
        for (k, city) in [("1", "Berlin"), ("2", "Lyon"), ("3", "Paris")] {
            ix.insert(k, &json!({"address": {"city": city}}));
        }
        let range = IndexProbe::Range(
            Bound::Excluded(key_bytes(&json!("Berlin"))),
            Bound::Included(key_bytes(&json!("Paris"))),
        );
        let keys: Vec<_> = ix.probe(&range).into_iter().collect();
        assert_eq!(keys, ["2", "3"]);
        assert_eq!(ix.count(&range), 2);
        assert!(!ix.is_multikey());
    }
}
