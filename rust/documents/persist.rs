//! The index file (`PATH.index`): every secondary index as of the last
//! clean close, so an open loads them instead of parsing every document.
//!
//! It is a cache, never the truth. An open uses it only when it hashes to
//! the SHA-256 the close that wrote it appended to the log (the metadata
//! entry [`crate::engine::SIDECAR_DIGEST_META`]), so no other file can stand
//! in for it, not even one crafted to pass every check below or left by
//! another database of the same shape; and when it names, as its basis, the
//! very hint file the open used (same header: generation,
//! `data_end`, digest position, last seq, entry count); that hint is itself
//! vouched for by a digest record in the log, so the log's prefix is the one
//! the file was built from. Even then each key's entries are trusted only if
//! the key still lives at the record the file names (offset and value
//! length): a key written since (by this process before a crash, or by
//! another process sharing the file), or expired, is re-read and re-indexed
//! from its document, and keys gone since are dropped. Any failed check
//! (digest, magic, version, header checksum, basis, a length or index out
//! of bounds, keys out of order, a duplicated value) ignores the whole file
//! and the indexes are rebuilt by a scan, as without one. (The body
//! checksum is still written; the digest does its job at open.)
//!
//! The open does all those checks and reads the stale documents, but builds
//! no key set: the file stays mapped and each index builds its sets from it
//! on first use ([`FieldIndex::listed`]), so an open that only reads keys
//! costs little more than one without indexes.
//!
//! ```text
//! Header (80 bytes)
//!   0  magic          8  b"FERRUMIX"
//!   8  version        u16  1
//!  10  reserved       6    0
//!  16  basis          5 x u64: the hint header's generation, data_end,
//!                     digest_offset, last_seq, entries
//!  56  body_len       u64
//!  64  body_crc32c    u32
//!  68  reserved       u32  0
//!  72  header_crc32c  u32  CRC32C of bytes 0..72
//!  76  reserved       u32  0
//! Body (integers little-endian)
//!   keys: u32 count, then per live key in key order:
//!         u32 len, UTF-8 bytes, u64 record offset, u32 value length
//!   indexes: u32 count, then per index:
//!         u32 len, field path bytes, u8 unique, u8 multikey,
//!         u32 values, per distinct encoded value in order:
//!             u32 len, bytes, u32 holders, that many ascending key numbers (u32)
//!         u32 missing (unique: documents without the field), ascending key numbers
//! ```

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::engine::{key_order, Loc};
use crate::format::HintHeader;
use crate::query::FieldPath;
use crate::storage::{self, paths};

use super::field::{FieldIndex, IndexKey, Listed, ListedFile};

const MAGIC: &[u8; 8] = b"FERRUMIX";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 80;

fn basis_words(basis: &HintHeader) -> [u64; 5] {
    [
        basis.generation,
        basis.data_end,
        basis.digest_offset,
        basis.last_seq,
        basis.entries,
    ]
}

fn header(basis: &HintHeader, body: &[u8]) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..8].copy_from_slice(MAGIC);
    b[8..10].copy_from_slice(&VERSION.to_le_bytes());
    for (i, word) in basis_words(basis).iter().enumerate() {
        b[16 + 8 * i..24 + 8 * i].copy_from_slice(&word.to_le_bytes());
    }
    b[56..64].copy_from_slice(&(body.len() as u64).to_le_bytes());
    b[64..68].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    let crc = crc32c::crc32c(&b[..72]);
    b[72..76].copy_from_slice(&crc.to_le_bytes());
    b
}

fn put_u32(out: &mut Vec<u8>, n: usize) -> io::Result<()> {
    let n = u32::try_from(n).map_err(|_| io::Error::other("too many entries for an index file"))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> io::Result<()> {
    put_u32(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// Write the index file of the database at `db` for `indexes`, with `live`
/// every live key and its location in key order, on the hint `basis`
/// (written under a temporary name, then renamed over the old one). With no
/// index, any old file is removed instead.
///
/// Returns the file's SHA-256 (`None` when it was removed), for the log to
/// vouch for it (see [`crate::engine::SIDECAR_DIGEST_META`]).
///
/// # Errors
/// I/O errors (the temporary file is removed; the old file, if any, stays:
/// its basis no longer matches once a newer hint exists).
pub(super) fn write(
    db: &Path,
    basis: &HintHeader,
    indexes: &BTreeMap<String, FieldIndex>,
    live: &mut dyn Iterator<Item = (&str, Loc)>,
) -> io::Result<Option<[u8; 32]>> {
    if indexes.is_empty() {
        return match std::fs::remove_file(storage::index_path(db)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(None),
        };
    }
    let keys: Vec<(&str, Loc)> = live.collect();
    // A set's keys come in order: each is sought forward from the last one
    // found, by galloping (a few steps for a dense set, log n for a sparse
    // one), comparing a word at a time.
    let numbers = |set: &mut dyn Iterator<Item = &IndexKey>| -> Vec<usize> {
        let mut out = Vec::new();
        let mut from = 0;
        for key in set {
            let rest = keys.get(from..).unwrap_or_default();
            let mut step = 1;
            while step < rest.len()
                && key_order(rest[step].0.as_bytes(), key.as_str().as_bytes()) == Ordering::Less
            {
                step *= 2;
            }
            let window = &rest[..rest.len().min(step + 1)];
            match window.binary_search_by(|(k, _)| key_order(k.as_bytes(), key.as_str().as_bytes()))
            {
                Ok(i) => {
                    out.push(from + i);
                    from += i + 1;
                }
                Err(i) => from += i, // no longer live: left out
            }
        }
        out
    };
    let mut body = Vec::with_capacity(keys.len() * 32);
    put_u32(&mut body, keys.len())?;
    for (key, loc) in &keys {
        put_bytes(&mut body, key.as_bytes())?;
        body.extend_from_slice(&loc.offset.to_le_bytes());
        body.extend_from_slice(&loc.value_len.to_le_bytes());
    }
    put_u32(&mut body, indexes.len())?;
    let mut holders = Vec::new();
    for (field, index) in indexes {
        put_bytes(&mut body, field.as_bytes())?;
        body.push(u8::from(index.is_unique()));
        body.push(u8::from(index.is_multikey()));
        // Keys the index holds that are no longer live (expired, not yet
        // purged) are left out: they are not in `keys`.
        let values: Vec<(&Vec<u8>, Vec<usize>)> = index
            .values()
            .map(|(value, keys)| (value, numbers(&mut keys.iter())))
            .filter(|(_, numbers): &(_, Vec<usize>)| !numbers.is_empty())
            .collect();
        put_u32(&mut body, values.len())?;
        for (value, numbers) in values {
            put_bytes(&mut body, value)?;
            put_u32(&mut body, numbers.len())?;
            for n in numbers {
                put_u32(&mut body, n)?;
            }
        }
        holders.clear();
        holders.extend(numbers(&mut index.missing().iter()));
        put_u32(&mut body, holders.len())?;
        for &n in &holders {
            put_u32(&mut body, n)?;
        }
    }
    let temp = storage::temp_index_path(db);
    let head = header(basis, &body);
    let written = (|| {
        let mut file = paths::create_sidecar(&temp)?;
        file.write_all(&head)?;
        file.write_all(&body)?;
        drop(file);
        storage::fault::rename(&temp, &storage::index_path(db))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.map(|()| {
        Some(
            Sha256::new()
                .chain_update(head)
                .chain_update(&body)
                .finalize()
                .into(),
        )
    })
}

/// Indexes read from an index file, not built yet, and the live keys whose
/// entries it could not vouch for (to be re-read by the caller and handed
/// to the indexes as [`Listed::stale`]).
#[derive(Debug)]
pub(super) struct Loaded {
    /// Field, path, unique, and the index as the file lists it.
    pub indexes: Vec<(String, FieldPath, bool, Listed)>,
    pub stale: Vec<String>,
}

/// What [`parse`] finds in a body: per key number, where its name starts
/// when its entries are trusted; per wanted index its field, path, unique
/// and multikey flags, value and key-number ranges, and missing range; the
/// stale keys.
struct Parsed {
    names: Vec<Option<usize>>,
    indexes: Vec<ParsedIndex>,
    stale: Vec<String>,
}

type ParsedIndex = (
    String,
    FieldPath,
    bool,
    bool,
    Vec<(Range<usize>, Range<usize>)>,
    Range<usize>,
);

/// A bounds-checked reader over the body.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.buf.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    /// A count of items at least `min_size` bytes each, refused if the rest
    /// of the body could not hold them (so no allocation exceeds the file).
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.checked_mul(min_size)? <= self.remaining()).then_some(n)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.count(1)?;
        self.take(n)
    }

    /// [`Cursor::bytes`], as a range of the body.
    fn bytes_range(&mut self) -> Option<Range<usize>> {
        let n = self.count(1)?;
        let start = self.at;
        self.take(n)?;
        Some(start..self.at)
    }

    fn flag(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// A list of key numbers, checked to be ascending and below `keys`,
    /// left encoded, as a range of the body (see [`FieldIndex::listed`]).
    fn numbers(&mut self, keys: usize) -> Option<Range<usize>> {
        let n = self.count(4)?;
        let start = self.at;
        let raw = self.take(n * 4)?;
        let mut last: Option<u32> = None;
        for word in raw.chunks_exact(4) {
            let i = u32::from_le_bytes(word.try_into().ok()?);
            if last.is_some_and(|l| i <= l) || i as usize >= keys {
                return None;
            }
            last = Some(i);
        }
        Some(start..self.at)
    }
}

/// Load the indexes named in `wanted` (`(field, unique)`) from the index
/// file of `db`, if there is one built on `basis` that hashes to `digest`
/// (what the log recorded at the close that wrote it) and every check
/// passes (see the module docs); `live` gives every live key's location in
/// key order, and writers must be paused throughout. `None`: no usable file.
pub(super) fn load(
    db: &Path,
    basis: &HintHeader,
    digest: &[u8],
    wanted: &[(String, bool)],
    live: &mut dyn Iterator<Item = (&str, Loc)>,
) -> Option<Loaded> {
    let mut file = paths::open_sidecar(&storage::index_path(db)).ok()?;
    let mut head = [0u8; HEADER_LEN];
    file.read_exact(&mut head).ok()?;
    let u32_at = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&head[i..i + 8]);
        u64::from_le_bytes(a)
    };
    if &head[0..8] != MAGIC
        || u16::from_le_bytes([head[8], head[9]]) != VERSION
        || crc32c::crc32c(&head[..72]) != u32_at(72)
    {
        return None;
    }
    let named: Vec<u64> = (0..5).map(|i| u64_at(16 + 8 * i)).collect();
    if named != basis_words(basis) {
        return None; // built on another hint: stale
    }
    let body_len = usize::try_from(u64_at(56)).ok()?;
    if file.metadata().ok()?.len() != (HEADER_LEN as u64).checked_add(body_len as u64)? {
        return None;
    }
    // SAFETY: an index file is never modified in place: a close writes a
    // new one under a temporary name and renames it over the old, so this
    // inode keeps its bytes while mapped (only an outside process
    // truncating it could fault a read, as for the log itself, which stays
    // mapped too). The mapping lives until every index loaded from it is
    // built (on first use; see `FieldIndex::listed`).
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let body = map.get(HEADER_LEN..)?;
    // The digest covers the body checksum's job too.
    if body.len() != body_len || Sha256::digest(&map[..]).as_slice() != digest {
        return None;
    }
    let parsed = parse(body, wanted, live)?;
    let file = Arc::new(ListedFile {
        map,
        body: HEADER_LEN,
        names: parsed.names,
    });
    let indexes = parsed
        .indexes
        .into_iter()
        .map(|(field, path, unique, multikey, values, missing)| {
            let listed = Listed {
                file: file.clone(),
                multikey,
                values,
                missing,
                stale: Arc::default(),
            };
            (field, path, unique, listed)
        })
        .collect();
    Some(Loaded {
        indexes,
        stale: parsed.stale,
    })
}

fn parse(
    body: &[u8],
    wanted: &[(String, bool)],
    live: &mut dyn Iterator<Item = (&str, Loc)>,
) -> Option<Parsed> {
    let mut at = Cursor { buf: body, at: 0 };
    let n = at.count(16)?;
    // The file's keys, borrowed from it, walked beside the live keys (both
    // in key order): a key's entries are trusted only where it still lives
    // at the record the file names; every other live key is re-read by the
    // caller.
    // `names[i]`: where the name of the file's key number `i` starts, when
    // its entries are trusted. Out of order, repeated or malformed (not
    // UTF-8) names cannot mislead: a live key is trusted only on meeting its
    // own name and record, so such a file only makes more keys stale.
    let mut names: Vec<Option<usize>> = Vec::with_capacity(n);
    let mut stale = Vec::new();
    let mut live = live.peekable();
    for _ in 0..n {
        let name_at = at.at;
        let name = at.bytes()?;
        let (offset, value_len) = (at.u64()?, at.u32()?);
        let mut trusted = None;
        while let Some((now, loc)) = live.peek() {
            match key_order(now.as_bytes(), name) {
                Ordering::Less => stale.push((*now).to_owned()),
                Ordering::Equal if loc.offset == offset && loc.value_len == value_len => {
                    trusted = Some(name_at);
                }
                Ordering::Equal => stale.push((*now).to_owned()),
                Ordering::Greater => break,
            }
            live.next();
        }
        names.push(trusted);
    }
    stale.extend(live.map(|(key, _)| key.to_owned()));
    // Read and check everything; the key sets are built on first use.
    let mut indexes = Vec::new();
    for _ in 0..at.count(10)? {
        let field = std::str::from_utf8(at.bytes()?).ok()?.to_owned();
        let unique = at.flag()?;
        let multikey = at.flag()?;
        let count = at.count(8)?;
        let want = wanted.iter().any(|(f, u)| *f == field && *u == unique);
        let mut values = Vec::with_capacity(if want { count } else { 0 });
        let mut previous: Option<Range<usize>> = None;
        for _ in 0..count {
            let value = at.bytes_range()?;
            if previous.is_some_and(|p| body.get(p) >= body.get(value.clone())) {
                return None; // values are stored in order, once each
            }
            previous = Some(value.clone());
            let numbers = at.numbers(n)?;
            if want {
                values.push((value, numbers));
            }
        }
        let missing = at.numbers(n)?;
        if want {
            let path = FieldPath::parse(&field).ok()?;
            indexes.push((field, path, unique, multikey, values, missing));
        }
    }
    if at.remaining() != 0 {
        return None;
    }
    Some(Parsed {
        names,
        indexes,
        stale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn loc(offset: u64) -> Loc {
        Loc {
            offset,
            value_len: 10,
            expires_at: 0,
        }
    }

    fn basis() -> HintHeader {
        HintHeader {
            generation: 1,
            data_end: 100,
            digest_offset: 100,
            last_seq: 7,
            entries: 3,
        }
    }

    fn indexes() -> BTreeMap<String, FieldIndex> {
        let mut ix = FieldIndex::new(FieldPath::parse("g").expect("path"));
        ix.insert("a", &json!({"g": 1}));
        ix.insert("b", &json!({"g": [1, 2]}));
        ix.insert("c", &json!({"other": 1}));
        BTreeMap::from([("g".to_owned(), ix)])
    }

    /// The written file's database path and digest (what the log records).
    fn written(dir: &Path) -> (std::path::PathBuf, [u8; 32]) {
        let db = dir.join("t.db");
        let live = [("a", loc(10)), ("b", loc(20)), ("c", loc(30))];
        let digest = write(&db, &basis(), &indexes(), &mut live.into_iter())
            .expect("write")
            .expect("a file");
        let on_disk = std::fs::read(storage::index_path(&db)).expect("read");
        assert_eq!(Sha256::digest(&on_disk).as_slice(), digest);
        (db, digest)
    }

    fn wanted() -> Vec<(String, bool)> {
        vec![("g".to_owned(), false)]
    }

    #[test]
    fn round_trip_and_stale_keys() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, digest) = written(dir.path());
        // "b" moved, "c" is gone, "d" is new.
        let live = [("a", loc(10)), ("b", loc(40)), ("d", loc(50))];
        let loaded = load(&db, &basis(), &digest, &wanted(), &mut live.into_iter()).expect("load");
        assert_eq!(loaded.stale, ["b", "d"]);
        let (field, path, unique, mut listed) = loaded.indexes.into_iter().next().expect("index");
        assert_eq!((field.as_str(), unique), ("g", false));
        // The stale documents, as the caller reads them, join on first use.
        listed.stale = Arc::new(vec![("d".to_owned(), json!({"g": [2, 1]}))]);
        let mut ix = FieldIndex::listed(path, unique, listed);
        assert!(ix.is_multikey());
        let probe =
            |v: i64| crate::query::IndexProbe::Keys(vec![crate::query::key_bytes(&json!(v))]);
        assert_eq!(ix.probe(&probe(1)), ["a", "d"]);
        assert_eq!(ix.probe(&probe(2)), ["d"]);
        // "a" under 1; "d" under 1, 2 and the array itself.
        assert_eq!(ix.len(), 4);
        // A write to a listed index builds it first.
        let mut fresh = listed_index(&db, &digest);
        fresh.remove("a", &json!({"g": 1}));
        assert_eq!(fresh.probe(&probe(1)), ["b"]);
        assert_eq!(fresh.len(), 3); // "b" under 1, 2 and its array
        ix.insert("e", &json!({"g": 2}));
        assert_eq!(ix.probe(&probe(2)), ["d", "e"]);
    }

    /// The index file of `db` loaded with every key trusted, not built yet.
    fn listed_index(db: &Path, digest: &[u8]) -> FieldIndex {
        let live = [("a", loc(10)), ("b", loc(20)), ("c", loc(30))];
        let loaded = load(db, &basis(), digest, &wanted(), &mut live.into_iter()).expect("load");
        assert!(loaded.stale.is_empty());
        let (_, path, unique, listed) = loaded.indexes.into_iter().next().expect("index");
        FieldIndex::listed(path, unique, listed)
    }

    #[test]
    fn other_basis_damage_and_truncation_are_ignored() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, digest) = written(dir.path());
        let live = || [("a", loc(10))].into_iter();
        assert!(load(&db, &basis(), &digest, &wanted(), &mut live()).is_some());
        let mut other = basis();
        other.data_end += 1;
        assert!(load(&db, &other, &digest, &wanted(), &mut live()).is_none());
        // A digest the log did not record for this file.
        let mut foreign = digest;
        foreign[0] ^= 1;
        assert!(load(&db, &basis(), &foreign, &wanted(), &mut live()).is_none());
        assert!(load(&db, &basis(), &[], &wanted(), &mut live()).is_none());
        let path = storage::index_path(&db);
        let good = std::fs::read(&path).expect("read");
        for cut in [0, 10, HEADER_LEN, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).expect("write");
            assert!(
                load(&db, &basis(), &digest, &wanted(), &mut live()).is_none(),
                "cut {cut}"
            );
        }
        for flip in [3, 20, 70, HEADER_LEN + 2, good.len() - 3] {
            let mut bad = good.clone();
            bad[flip] ^= 0x40;
            std::fs::write(&path, &bad).expect("write");
            assert!(
                load(&db, &basis(), &digest, &wanted(), &mut live()).is_none(),
                "flip {flip}"
            );
        }
    }

    #[test]
    fn crafted_counts_with_valid_checksums_are_refused() {
        // A body claiming four billion keys: refused before allocating.
        let mut body = Vec::new();
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&body, &wanted(), &mut std::iter::empty()).is_none());
        // A holder number past the keys.
        let mut body = Vec::new();
        put_u32(&mut body, 0).expect("n");
        put_u32(&mut body, 1).expect("n");
        put_bytes(&mut body, b"g").expect("field");
        body.extend_from_slice(&[0, 0]);
        put_u32(&mut body, 1).expect("n");
        put_bytes(&mut body, b"v").expect("value");
        put_u32(&mut body, 1).expect("n");
        put_u32(&mut body, 5).expect("n");
        put_u32(&mut body, 0).expect("n");
        assert!(parse(&body, &wanted(), &mut std::iter::empty()).is_none());
    }
}
