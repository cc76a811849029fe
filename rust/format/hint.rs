//! The hint file (`PATH.hint`): the key directory of a data file's prefix,
//! so an open reads one small entry per key instead of every record.
//!
//! ```text
//! Hint header (64 bytes)
//!   0  magic          8  b"FERRUMHI"
//!   8  version        u16  2
//!  10  reserved       u16  0
//!  12  reserved       u32  0
//!  16  generation     u64  generation of the data file it describes
//!  24  data_end       u64  the entries describe every record before this offset
//!  32  digest_offset  u64  where the data file's hint-digest record starts (>= data_end)
//!  40  last_seq       u64  seq of the last record before data_end
//!  48  entries        u64  number of entries
//!  56  reserved       u32  0
//!  60  crc32c         u32  CRC32C of bytes 0..60
//!
//! Entry (28 bytes + key), one per live key or metadata entry
//!   0  kind           u8   1 = user key, 4 = metadata entry
//!   1  reserved       3    0
//!   4  key_len        u32
//!   8  offset         u64  where the key's record starts in the data file
//!  16  value_len      u32
//!  20  expires_at     u64  Unix ms, 0 = never
//!  28  key bytes
//!
//! Hint-digest record (in the data file): a meta record whose key is
//! HINT_DIGEST_KEY ("\0ferrumdb:hint", a key no user can write) and whose
//! 32-byte value is SHA-256 of "FERRUMHI" + version (u16) + generation +
//! data_end + last_seq + entries (u64 each, little-endian) + every entry byte.
//! Replay skips it: it is never a key.
//! ```
//!
//! Threat model: the hint is a sidecar anyone who can write the directory
//! can replace: a stale, damaged or crafted sidecar, e.g. an edited hint
//! with its CRCs recomputed (the format is documented), or a hint copied
//! from another database or an earlier state. None of those may change what
//! an open serves. So a hint is trusted only if the data file, the source
//! of truth, vouches for it: when a hint is written, a record carrying the
//! SHA-256 of its content is appended to the data file, and an open uses
//! the hint only if the record at `digest_offset` is such a record with the
//! same digest. Forging a hint then means rewriting the database itself.
//! Even a vouched-for hint is bounds-checked entry by entry (record inside
//! the described prefix, value length within `MAX_VALUE_BYTES`) before any
//! entry is used, so no location taken from a hint can make a read allocate
//! past the file. Records after `data_end` are replayed as usual. A hint
//! that fails any check is ignored (the open replays the whole log);
//! version 1 hints (CRC-only) fail the version check and are ignored.

use sha2::{Digest, Sha256};

use super::record::{encode_record, DecodeError, Record, RecordKind, RECORD_HEADER_LEN};
use super::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// First eight bytes of a hint file.
pub const HINT_MAGIC: &[u8; 8] = b"FERRUMHI";
/// Hint format version.
pub const HINT_VERSION: u16 = 2;
/// Size of the hint header.
pub const HINT_HEADER_LEN: usize = 64;
const ENTRY_FIXED: usize = 28;

/// The hint header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HintHeader {
    /// Generation of the data file described.
    pub generation: u64,
    /// Every record before this offset is described.
    pub data_end: u64,
    /// Where the data file's hint-digest record starts.
    pub digest_offset: u64,
    /// Sequence number of the last record before `data_end`.
    pub last_seq: u64,
    /// Number of entries.
    pub entries: u64,
}

impl HintHeader {
    /// Encode to [`HINT_HEADER_LEN`] bytes.
    pub fn encode(&self) -> [u8; HINT_HEADER_LEN] {
        let mut b = [0u8; HINT_HEADER_LEN];
        b[0..8].copy_from_slice(HINT_MAGIC);
        b[8..10].copy_from_slice(&HINT_VERSION.to_le_bytes());
        b[16..24].copy_from_slice(&self.generation.to_le_bytes());
        b[24..32].copy_from_slice(&self.data_end.to_le_bytes());
        b[32..40].copy_from_slice(&self.digest_offset.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_seq.to_le_bytes());
        b[48..56].copy_from_slice(&self.entries.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode and verify a header.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let b: &[u8; HINT_HEADER_LEN] = b
            .get(..HINT_HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Truncated)?;
        if &b[0..8] != HINT_MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        if crc32c::crc32c(&b[..60]) != u32_at(60) {
            return Err(DecodeError::Checksum);
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != HINT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        Ok(HintHeader {
            generation: u64_at(16),
            data_end: u64_at(24),
            digest_offset: u64_at(32),
            last_seq: u64_at(40),
            entries: u64_at(48),
        })
    }
}

/// Key of the hint-digest record: starts with NUL, which no user key or
/// index name can (keys are validated), so it never collides.
pub const HINT_DIGEST_KEY: &str = "\0ferrumdb:hint";
/// Length of a hint digest (SHA-256).
pub const HINT_DIGEST_LEN: usize = 32;
/// Bytes a hint-digest record takes in a plain log.
pub const HINT_DIGEST_RECORD_LEN: usize =
    RECORD_HEADER_LEN + HINT_DIGEST_KEY.len() + HINT_DIGEST_LEN;

/// Running SHA-256 of a hint's entry bytes (fed as they are written or
/// read), finished with the header fields it commits to.
#[derive(Debug, Clone, Default)]
pub struct HintDigest(Sha256);

impl HintDigest {
    /// Feed entry bytes, in order.
    pub fn update(&mut self, body: &[u8]) {
        self.0.update(body);
    }

    /// The digest of the entries fed so far under `header`'s generation,
    /// data_end, last_seq and entry count.
    pub fn finish(mut self, header: &HintHeader) -> [u8; HINT_DIGEST_LEN] {
        self.0.update(HINT_MAGIC);
        self.0.update(HINT_VERSION.to_le_bytes());
        for v in [
            header.generation,
            header.data_end,
            header.last_seq,
            header.entries,
        ] {
            self.0.update(v.to_le_bytes());
        }
        self.0.finalize().into()
    }
}

/// Append the hint-digest record (a meta record of [`HINT_DIGEST_KEY`]
/// holding `digest`) with sequence number `seq` to `out`.
pub fn encode_hint_digest_record(out: &mut Vec<u8>, seq: u64, digest: &[u8; HINT_DIGEST_LEN]) {
    encode_record(out, RecordKind::Meta, seq, 0, HINT_DIGEST_KEY, digest);
}

/// Whether `rec` is a hint-digest record (replay and scans skip it).
pub fn is_hint_digest(rec: &Record<'_>) -> bool {
    rec.header.kind == RecordKind::Meta && rec.key == HINT_DIGEST_KEY
}

/// The digest a hint-digest record carries, if `rec` is one.
pub fn hint_digest_of<'r>(rec: &Record<'r>) -> Option<&'r [u8]> {
    (is_hint_digest(rec) && rec.value.len() == HINT_DIGEST_LEN).then_some(rec.value)
}

/// One key's location, as a hint stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HintEntry<'a> {
    /// [`RecordKind::Put`] for a user key, [`RecordKind::Meta`] for metadata.
    pub kind: RecordKind,
    /// The key.
    pub key: &'a str,
    /// Where its record starts.
    pub offset: u64,
    /// Its value length.
    pub value_len: u32,
    /// Its expiry (Unix ms, 0 = never).
    pub expires_at: u64,
}

/// Append one entry to `out`.
pub fn encode_hint_entry(out: &mut Vec<u8>, e: &HintEntry<'_>) {
    out.push(e.kind as u8);
    out.extend_from_slice(&[0u8; 3]);
    out.extend_from_slice(&(e.key.len() as u32).to_le_bytes());
    out.extend_from_slice(&e.offset.to_le_bytes());
    out.extend_from_slice(&e.value_len.to_le_bytes());
    out.extend_from_slice(&e.expires_at.to_le_bytes());
    out.extend_from_slice(e.key.as_bytes());
}

/// Iterate the entries of a verified hint body.
#[derive(Debug)]
pub struct HintEntries<'a> {
    body: &'a [u8],
    pos: usize,
}

impl<'a> HintEntries<'a> {
    /// Entries of `body` (whose checksum the caller verified).
    pub fn new(body: &'a [u8]) -> Self {
        HintEntries { body, pos: 0 }
    }
}

impl<'a> Iterator for HintEntries<'a> {
    type Item = Result<HintEntry<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.body.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let entry = (|| {
            let fixed = rest.get(..ENTRY_FIXED).ok_or(DecodeError::Truncated)?;
            let kind = match fixed[0] {
                1 => RecordKind::Put,
                4 => RecordKind::Meta,
                _ => return Err(DecodeError::Malformed("unknown hint entry kind")),
            };
            let u32_at =
                |i: usize| u32::from_le_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
            let key_len = u32_at(4) as usize;
            if key_len == 0 || key_len > MAX_KEY_BYTES {
                return Err(DecodeError::Malformed("hint key length out of range"));
            }
            if u32_at(16) as usize > MAX_VALUE_BYTES {
                return Err(DecodeError::Malformed("hint value length out of range"));
            }
            let mut off = [0u8; 8];
            off.copy_from_slice(&fixed[8..16]);
            let mut exp = [0u8; 8];
            exp.copy_from_slice(&fixed[20..28]);
            let key = rest
                .get(ENTRY_FIXED..ENTRY_FIXED + key_len)
                .ok_or(DecodeError::Truncated)?;
            let key = std::str::from_utf8(key)
                .map_err(|_| DecodeError::Malformed("hint key is not UTF-8"))?;
            Ok((
                ENTRY_FIXED + key_len,
                HintEntry {
                    kind,
                    key,
                    offset: u64::from_le_bytes(off),
                    value_len: u32_at(16),
                    expires_at: u64::from_le_bytes(exp),
                },
            ))
        })();
        match entry {
            Ok((len, e)) => {
                self.pos += len;
                Some(Ok(e))
            }
            Err(e) => {
                self.pos = self.body.len();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_entries_round_trip_and_damage_is_caught() {
        let mut body = Vec::new();
        let entries = [
            HintEntry {
                kind: RecordKind::Put,
                key: "user:1",
                offset: 64,
                value_len: 17,
                expires_at: 0,
            },
            HintEntry {
                kind: RecordKind::Meta,
                key: "index:name",
                offset: 123_456_789_012,
                value_len: 2,
                expires_at: u64::MAX - 1,
            },
        ];
        for e in &entries {
            encode_hint_entry(&mut body, e);
        }
        let got: Vec<_> = HintEntries::new(&body)
            .map(|e| e.expect("entry decodes"))
            .collect();
        assert_eq!(got, entries);

        let header = HintHeader {
            generation: 3,
            data_end: 999,
            digest_offset: 1000,
            last_seq: 41,
            entries: 2,
        };
        let bytes = header.encode();
        assert_eq!(HintHeader::decode(&bytes), Ok(header));
        for i in 0..HINT_HEADER_LEN {
            let mut c = bytes;
            c[i] ^= 0x04;
            assert!(
                HintHeader::decode(&c).is_err(),
                "flip at {i} went unnoticed"
            );
        }
        // A cut body yields an error, never a bogus entry.
        let cut: Vec<_> = HintEntries::new(&body[..body.len() - 1]).collect();
        assert!(cut.last().expect("items").is_err());
    }
}
