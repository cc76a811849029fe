//! The hint file (`PATH.hint`): the key directory of a data file's prefix,
//! so an open reads one small entry per key instead of every record.
//!
//! ```text
//! Hint header (64 bytes)
//!   0  magic          8  b"FERRUMHI"
//!   8  version        u16  1
//!  10  reserved       u16  0
//!  12  reserved       u32  0
//!  16  generation     u64  generation of the data file it describes
//!  24  data_end       u64  the entries describe every record before this offset
//!  32  anchor_offset  u64  offset of the last record before data_end
//!  40  anchor_crc     u32  that record's stored checksum
//!  44  reserved       u32  0
//!  48  entries        u64  number of entries
//!  56  body_crc       u32  CRC32C of every entry byte
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
//! ```
//!
//! A hint is used only if it matches the data file exactly: same generation,
//! and the data file's record at `anchor_offset` carries `anchor_crc` and ends
//! at `data_end`. Records after `data_end` are replayed as usual. A hint that
//! fails any check is ignored (the open replays the whole log).

use super::record::{DecodeError, RecordKind};
use super::MAX_KEY_BYTES;

/// First eight bytes of a hint file.
pub const HINT_MAGIC: &[u8; 8] = b"FERRUMHI";
/// Hint format version.
pub const HINT_VERSION: u16 = 1;
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
    /// Offset of the last record before `data_end`.
    pub anchor_offset: u64,
    /// That record's stored checksum.
    pub anchor_crc: u32,
    /// Number of entries.
    pub entries: u64,
    /// CRC32C of the entry bytes.
    pub body_crc: u32,
}

impl HintHeader {
    /// Encode to [`HINT_HEADER_LEN`] bytes.
    pub fn encode(&self) -> [u8; HINT_HEADER_LEN] {
        let mut b = [0u8; HINT_HEADER_LEN];
        b[0..8].copy_from_slice(HINT_MAGIC);
        b[8..10].copy_from_slice(&HINT_VERSION.to_le_bytes());
        b[16..24].copy_from_slice(&self.generation.to_le_bytes());
        b[24..32].copy_from_slice(&self.data_end.to_le_bytes());
        b[32..40].copy_from_slice(&self.anchor_offset.to_le_bytes());
        b[40..44].copy_from_slice(&self.anchor_crc.to_le_bytes());
        b[48..56].copy_from_slice(&self.entries.to_le_bytes());
        b[56..60].copy_from_slice(&self.body_crc.to_le_bytes());
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
            anchor_offset: u64_at(32),
            anchor_crc: u32_at(40),
            entries: u64_at(48),
            body_crc: u32_at(56),
        })
    }
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
            anchor_offset: 900,
            anchor_crc: 0xDEAD_BEEF,
            entries: 2,
            body_crc: crc32c::crc32c(&body),
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
