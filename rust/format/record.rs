//! One log record: encode into a caller's buffer, decode and verify in place.
//!
//! Decoding never allocates: it returns borrowed key and value slices so the
//! read path can verify the checksum and hand the JSON bytes straight to the
//! caller.

use std::fmt;

use super::{MAX_BATCH_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// Size of the fixed record header in bytes.
pub const RECORD_HEADER_LEN: usize = 32;

/// What a record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Store `value` under `key`.
    Put = 1,
    /// Remove `key` (a tombstone; value is empty).
    Delete = 2,
    /// A transaction: no key, and a value made of complete put/delete
    /// records (see [`super::batch`]), applied all together or not at all.
    Batch = 3,
    /// Database metadata (index definitions), in its own key namespace: a
    /// non-empty value sets the entry, an empty one removes it.
    Meta = 4,
}

impl RecordKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(RecordKind::Put),
            2 => Some(RecordKind::Delete),
            3 => Some(RecordKind::Batch),
            4 => Some(RecordKind::Meta),
            _ => None,
        }
    }
}

/// Why bytes failed to decode. The storage layer adds file and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the structure needs.
    Truncated,
    /// The file does not start with the FerrumDB magic.
    BadMagic,
    /// Written by a format version this build cannot read.
    UnsupportedVersion(u16),
    /// Stored checksum does not match the bytes.
    Checksum,
    /// Structurally impossible field values.
    Malformed(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "truncated data"),
            DecodeError::BadMagic => write!(f, "not a FerrumDB file (bad magic)"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            DecodeError::Checksum => write!(f, "checksum mismatch"),
            DecodeError::Malformed(what) => write!(f, "malformed record: {what}"),
        }
    }
}

/// The fixed part of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Stored checksum.
    pub crc: u32,
    /// Put, delete, batch or meta.
    pub kind: RecordKind,
    /// Sequence number.
    pub seq: u64,
    /// Expiry in Unix milliseconds, 0 for none.
    pub expires_at: u64,
    /// Key length in bytes.
    pub key_len: u32,
    /// Value length in bytes.
    pub value_len: u32,
}

impl RecordHeader {
    /// Total encoded size of the record this header starts.
    pub fn record_len(&self) -> usize {
        RECORD_HEADER_LEN + self.key_len as usize + self.value_len as usize
    }

    /// Parse the fixed header and sanity-check lengths, without the checksum
    /// (which needs the whole record).
    pub fn parse(b: &[u8]) -> Result<Self, DecodeError> {
        let h: &[u8; RECORD_HEADER_LEN] = b
            .get(..RECORD_HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Truncated)?;
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let kind =
            RecordKind::from_byte(h[4]).ok_or(DecodeError::Malformed("unknown record kind"))?;
        if h[5] != 0 || h[6] != 0 || h[7] != 0 {
            return Err(DecodeError::Malformed("reserved bits set"));
        }
        let key_len = u32_at(24);
        let value_len = u32_at(28);
        if kind == RecordKind::Batch {
            // A batch has no key of its own, holds at least one whole record
            // and never expires as a whole (its records carry their own expiry).
            if key_len != 0 || u64_at(16) != 0 {
                return Err(DecodeError::Malformed("batch with a key or an expiry"));
            }
            if (value_len as usize) <= RECORD_HEADER_LEN || value_len as usize > MAX_BATCH_BYTES {
                return Err(DecodeError::Malformed("batch length out of range"));
            }
        } else {
            if key_len == 0 || key_len as usize > MAX_KEY_BYTES {
                return Err(DecodeError::Malformed("key length out of range"));
            }
            if value_len as usize > MAX_VALUE_BYTES
                || (kind == RecordKind::Delete && value_len != 0)
            {
                return Err(DecodeError::Malformed("value length out of range"));
            }
        }
        Ok(RecordHeader {
            crc: u32_at(0),
            kind,
            seq: u64_at(8),
            expires_at: u64_at(16),
            key_len,
            value_len,
        })
    }
}

/// A decoded, checksum-verified record borrowing from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Fixed header.
    pub header: RecordHeader,
    /// Key bytes (UTF-8, validated).
    pub key: &'a str,
    /// Value bytes (JSON); empty for a delete.
    pub value: &'a [u8],
}

impl<'a> Record<'a> {
    /// Decode the record at the start of `b`, verifying the checksum and the key's UTF-8.
    pub fn decode(b: &'a [u8]) -> Result<Self, DecodeError> {
        let header = RecordHeader::parse(b)?;
        let total = header.record_len();
        let body = b.get(4..total).ok_or(DecodeError::Truncated)?;
        if crc32c::crc32c(body) != header.crc {
            return Err(DecodeError::Checksum);
        }
        let key_end = RECORD_HEADER_LEN + header.key_len as usize;
        let key = b
            .get(RECORD_HEADER_LEN..key_end)
            .ok_or(DecodeError::Truncated)?;
        let key =
            std::str::from_utf8(key).map_err(|_| DecodeError::Malformed("key is not UTF-8"))?;
        let value = b.get(key_end..total).ok_or(DecodeError::Truncated)?;
        Ok(Record { header, key, value })
    }
}

/// Append one encoded record to `out`. Lengths must already be validated by
/// the caller (keys ≤ [`MAX_KEY_BYTES`], values ≤ [`MAX_VALUE_BYTES`]).
pub fn encode_record(
    out: &mut Vec<u8>,
    kind: RecordKind,
    seq: u64,
    expires_at: u64,
    key: &str,
    value: &[u8],
) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    out.push(kind as u8);
    out.extend_from_slice(&[0u8; 3]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&expires_at.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    let crc = crc32c::crc32c(out.get(start + 4..).unwrap_or_default());
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&crc.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        encode_record(
            &mut v,
            RecordKind::Put,
            42,
            0,
            "user:1",
            br#"{"name":"alice"}"#,
        );
        v
    }

    #[test]
    fn round_trip() {
        let b = sample();
        let r = Record::decode(&b).expect("decodes");
        assert_eq!(r.key, "user:1");
        assert_eq!(r.value, br#"{"name":"alice"}"#);
        assert_eq!(r.header.seq, 42);
        assert_eq!(r.header.kind, RecordKind::Put);
        assert_eq!(r.header.record_len(), b.len());
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let b = sample();
        for i in 0..b.len() {
            for bit in [0x01u8, 0x80] {
                let mut c = b.clone();
                c[i] ^= bit;
                assert!(
                    Record::decode(&c).is_err(),
                    "flip of byte {i} bit {bit:#x} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn truncated_record() {
        let b = sample();
        for cut in 0..b.len() {
            assert!(Record::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(RecordHeader::parse(&b[..10]), Err(DecodeError::Truncated));
    }

    #[test]
    fn delete_carries_no_value() {
        let mut v = Vec::new();
        encode_record(&mut v, RecordKind::Delete, 1, 0, "k", b"");
        let r = Record::decode(&v).expect("decodes");
        assert_eq!(r.header.kind, RecordKind::Delete);
        assert!(r.value.is_empty());
    }

    #[test]
    fn rejects_unknown_kind_and_zero_key() {
        let mut b = sample();
        b[4] = 9;
        assert_eq!(
            Record::decode(&b),
            Err(DecodeError::Malformed("unknown record kind"))
        );
        let zeros = [0u8; 64];
        assert!(Record::decode(&zeros).is_err());
    }
}
