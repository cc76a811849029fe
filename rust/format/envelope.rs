//! The encrypted record envelope: framing only (lengths, checksum); the
//! cipher itself lives in `crate::crypto`.
//!
//! The checksum lets replay tell a torn tail (a half-written envelope) from a
//! complete one exactly as for plain records; the tag inside is what detects
//! tampering.

use super::{DecodeError, MAX_BATCH_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES, RECORD_HEADER_LEN};

/// Bytes before the sealed body: crc32c, body length, nonce.
pub const ENVELOPE_PREFIX_LEN: usize = 20;
/// Bytes an envelope adds to the record it seals (prefix and tag).
pub const ENVELOPE_OVERHEAD: usize = ENVELOPE_PREFIX_LEN + 16;
/// Bytes of the envelope's fixed part that replay must read to learn its length.
pub const ENVELOPE_HEADER_LEN: usize = 8;

const NONCE_AT: usize = 8;

/// The checksum and length at the start of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeHeader {
    /// CRC32C of every byte after it.
    pub crc: u32,
    /// Length of the sealed record.
    pub body_len: u32,
}

impl EnvelopeHeader {
    /// Parse the first 8 bytes, checking the length is one a record can have.
    pub fn parse(b: &[u8]) -> Result<Self, DecodeError> {
        let h: &[u8; ENVELOPE_HEADER_LEN] = b
            .get(..ENVELOPE_HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Truncated)?;
        let body_len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        // The largest plain record: a single put, or a whole transaction.
        let max = RECORD_HEADER_LEN + (MAX_KEY_BYTES + MAX_VALUE_BYTES).max(MAX_BATCH_BYTES);
        if (body_len as usize) <= RECORD_HEADER_LEN || body_len as usize > max {
            return Err(DecodeError::Malformed("envelope length out of range"));
        }
        Ok(EnvelopeHeader {
            crc: u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
            body_len,
        })
    }

    /// Total bytes of the envelope on disk.
    pub fn envelope_len(&self) -> usize {
        self.body_len as usize + ENVELOPE_OVERHEAD
    }

    /// Check the crc of the whole envelope `b` (exactly [`Self::envelope_len`] bytes).
    pub fn verify(&self, b: &[u8]) -> Result<(), DecodeError> {
        let body = b
            .get(4..self.envelope_len())
            .ok_or(DecodeError::Truncated)?;
        if crc32c::crc32c(body) != self.crc {
            return Err(DecodeError::Checksum);
        }
        Ok(())
    }
}

/// Turn `buf`, holding one plain record, into an envelope frame around it:
/// the record moves to the body slot and the length is filled in. The caller
/// encrypts the body, then calls [`finish_envelope`]. Returns the body range.
pub fn begin_envelope(buf: &mut Vec<u8>) -> std::ops::Range<usize> {
    let n = buf.len();
    buf.resize(n + ENVELOPE_OVERHEAD, 0);
    buf.copy_within(0..n, ENVELOPE_PREFIX_LEN);
    if let Some(len) = buf.get_mut(4..8) {
        len.copy_from_slice(&(n as u32).to_le_bytes());
    }
    ENVELOPE_PREFIX_LEN..ENVELOPE_PREFIX_LEN + n
}

/// Store nonce and tag in a frame made by [`begin_envelope`] and seal it with its checksum.
pub fn finish_envelope(buf: &mut [u8], nonce: &[u8; 12], tag: &[u8; 16]) {
    let n = buf.len();
    if let Some(slot) = buf.get_mut(NONCE_AT..ENVELOPE_PREFIX_LEN) {
        slot.copy_from_slice(nonce);
    }
    if let Some(slot) = buf.get_mut(n.saturating_sub(16)..) {
        slot.copy_from_slice(tag);
    }
    let crc = crc32c::crc32c(buf.get(4..).unwrap_or_default());
    if let Some(slot) = buf.get_mut(..4) {
        slot.copy_from_slice(&crc.to_le_bytes());
    }
}

/// Nonce, body range and tag of a checked envelope.
pub fn split_envelope(b: &[u8]) -> Option<([u8; 12], std::ops::Range<usize>, [u8; 16])> {
    let n = b.len().checked_sub(ENVELOPE_OVERHEAD)?;
    let nonce: [u8; 12] = b.get(NONCE_AT..ENVELOPE_PREFIX_LEN)?.try_into().ok()?;
    let tag: [u8; 16] = b.get(ENVELOPE_PREFIX_LEN + n..)?.try_into().ok()?;
    Some((nonce, ENVELOPE_PREFIX_LEN..ENVELOPE_PREFIX_LEN + n, tag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_record, RecordKind};

    #[test]
    fn frame_round_trip_and_crc() {
        let mut buf = Vec::new();
        encode_record(&mut buf, RecordKind::Put, 1, 0, "k", b"1");
        let plain = buf.clone();
        let body = begin_envelope(&mut buf);
        assert_eq!(buf.get(body.clone()), Some(&plain[..]));
        finish_envelope(&mut buf, &[3; 12], &[4; 16]);
        let h = EnvelopeHeader::parse(&buf).expect("parse");
        assert_eq!(h.envelope_len(), buf.len());
        assert_eq!(h.verify(&buf), Ok(()));
        let (nonce, range, tag) = split_envelope(&buf).expect("split");
        assert_eq!((nonce, range, tag), ([3; 12], body, [4; 16]));
        for i in 4..buf.len() {
            let mut c = buf.clone();
            c[i] ^= 0x10;
            let ok = EnvelopeHeader::parse(&c).is_ok_and(|h| h.verify(&c).is_ok());
            assert!(!ok, "flip at {i} passed the crc");
        }
    }

    #[test]
    fn zero_and_absurd_lengths_are_not_envelopes() {
        assert!(EnvelopeHeader::parse(&[0u8; 8]).is_err());
        assert!(EnvelopeHeader::parse(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert_eq!(
            EnvelopeHeader::parse(&[0u8; 4]),
            Err(DecodeError::Truncated)
        );
    }
}
