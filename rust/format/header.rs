//! The 64-byte file header: magic, format version, flags, generation, checksum.

use super::DecodeError;

/// First eight bytes of every FerrumDB data file.
pub const MAGIC: &[u8; 8] = b"FERRUMDB";
/// The format version this build writes and the newest it reads.
pub const VERSION: u16 = 1;
/// Size of the file header in bytes.
pub const HEADER_LEN: usize = 64;

const CRC_AT: usize = 60;

/// Decoded file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// Format version.
    pub version: u16,
    /// Feature flags (bit 0 reserved for encryption).
    pub flags: u16,
    /// Rewrite generation, bumped by each compaction.
    pub generation: u64,
}

impl FileHeader {
    /// A header for a fresh file of this build's version.
    pub fn new(generation: u64) -> Self {
        FileHeader {
            version: VERSION,
            flags: 0,
            generation,
        }
    }

    /// Encode to exactly [`HEADER_LEN`] bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.generation.to_le_bytes());
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        b[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode and validate a header. Checks magic first (so a foreign file is
    /// named as such), then the version (so a newer file is refused with a clear
    /// reason rather than a checksum error), then the checksum.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Truncated)?;
        if &b[0..8] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version == 0 || version > VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let stored = u32::from_le_bytes([b[60], b[61], b[62], b[63]]);
        if crc32c::crc32c(&b[..CRC_AT]) != stored {
            return Err(DecodeError::Checksum);
        }
        let flags = u16::from_le_bytes([b[10], b[11]]);
        if flags != 0 {
            return Err(DecodeError::Malformed(
                "unknown header flags (encrypted database?)",
            ));
        }
        let header_len = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        if header_len as usize != HEADER_LEN {
            return Err(DecodeError::Malformed("unexpected header length"));
        }
        let mut gen = [0u8; 8];
        gen.copy_from_slice(&b[16..24]);
        Ok(FileHeader {
            version,
            flags,
            generation: u64::from_le_bytes(gen),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = FileHeader::new(7);
        assert_eq!(FileHeader::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn bad_magic() {
        let mut b = FileHeader::new(1).encode();
        b[0] = b'X';
        assert_eq!(FileHeader::decode(&b), Err(DecodeError::BadMagic));
    }

    #[test]
    fn unknown_version() {
        let mut b = FileHeader::new(1).encode();
        b[8..10].copy_from_slice(&9u16.to_le_bytes());
        assert_eq!(
            FileHeader::decode(&b),
            Err(DecodeError::UnsupportedVersion(9))
        );
    }

    #[test]
    fn truncated() {
        let b = FileHeader::new(1).encode();
        assert_eq!(FileHeader::decode(&b[..40]), Err(DecodeError::Truncated));
    }

    #[test]
    fn flipped_checksum_byte() {
        let mut b = FileHeader::new(1).encode();
        b[61] ^= 0x01;
        assert_eq!(FileHeader::decode(&b), Err(DecodeError::Checksum));
        let mut b = FileHeader::new(1).encode();
        b[20] ^= 0x80;
        assert_eq!(FileHeader::decode(&b), Err(DecodeError::Checksum));
    }
}
