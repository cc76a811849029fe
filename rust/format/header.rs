//! The file header: 64 bytes (magic, format version, flags, generation,
//! checksum), plus an encryption block for encrypted files.

use super::DecodeError;
use crate::crypto::Kdf;

/// First eight bytes of every FerrumDB data file.
pub const MAGIC: &[u8; 8] = b"FERRUMDB";
/// The format version this build writes and the newest it reads.
pub const VERSION: u16 = 1;
/// Size of the file header in bytes (of a plain file; see [`FileHeader::header_len`]).
pub const HEADER_LEN: usize = 64;
/// Size of an encrypted file's header: the 64 bytes plus the encryption block.
pub const ENCRYPTED_HEADER_LEN: usize = 144;
/// Header flag: records are sealed in AES-256-GCM envelopes.
pub const FLAG_ENCRYPTED: u16 = 1;

const CRC_AT: usize = 60;
/// Where the key check starts in an encrypted header: what precedes it is its AAD.
pub const KEY_CHECK_AT: usize = 112;
const EXT_CRC_AT: usize = 140;

/// The encryption block of a header (bytes 64..144).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptionHeader {
    /// Random id of this file; every record's associated data includes it.
    pub file_id: [u8; 16],
    /// How the master key is obtained from the user's key.
    pub kdf: Kdf,
    /// Nonce of the key check.
    pub check_nonce: [u8; 12],
    /// Tag of the key check: a seal of nothing over the header's first 112 bytes.
    pub check_tag: [u8; 16],
}

/// Decoded file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// Format version.
    pub version: u16,
    /// Feature flags (bit 0 reserved for encryption).
    pub flags: u16,
    /// Rewrite generation, bumped by each compaction.
    pub generation: u64,
    /// The encryption block, for encrypted files.
    pub encryption: Option<EncryptionHeader>,
}

impl FileHeader {
    /// A header for a fresh file of this build's version.
    pub fn new(generation: u64) -> Self {
        FileHeader {
            version: VERSION,
            flags: 0,
            generation,
            encryption: None,
        }
    }

    /// A header for a fresh encrypted file.
    pub fn new_encrypted(generation: u64, encryption: EncryptionHeader) -> Self {
        FileHeader {
            version: VERSION,
            flags: FLAG_ENCRYPTED,
            generation,
            encryption: Some(encryption),
        }
    }

    /// Bytes the header occupies; records start right after it.
    pub fn header_len(&self) -> usize {
        if self.encryption.is_some() {
            ENCRYPTED_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Encode to exactly [`FileHeader::header_len`] bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.header_len()];
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..16].copy_from_slice(&(self.header_len() as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.generation.to_le_bytes());
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        b[CRC_AT..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        if let Some(e) = &self.encryption {
            b[64..80].copy_from_slice(&e.file_id);
            let (id, m, t, p, salt) = match e.kdf {
                Kdf::Raw => (0u8, 0, 0, 0, [0u8; 16]),
                Kdf::Argon2id { m_kib, t, p, salt } => (1u8, m_kib, t, p, salt),
            };
            b[80] = id;
            b[84..88].copy_from_slice(&m.to_le_bytes());
            b[88..92].copy_from_slice(&t.to_le_bytes());
            b[92..96].copy_from_slice(&p.to_le_bytes());
            b[96..112].copy_from_slice(&salt);
            b[112..124].copy_from_slice(&e.check_nonce);
            b[124..140].copy_from_slice(&e.check_tag);
            let crc = crc32c::crc32c(&b[HEADER_LEN..EXT_CRC_AT]);
            b[EXT_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        }
        b
    }

    /// The bytes the key check authenticates: the encoded header up to the check.
    pub fn key_check_aad(&self) -> Vec<u8> {
        let mut b = self.encode();
        b.truncate(KEY_CHECK_AT);
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
        if flags & !FLAG_ENCRYPTED != 0 {
            return Err(DecodeError::Malformed("unknown header flags"));
        }
        let expected_len = if flags & FLAG_ENCRYPTED != 0 {
            ENCRYPTED_HEADER_LEN
        } else {
            HEADER_LEN
        };
        let header_len = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        if header_len as usize != expected_len {
            return Err(DecodeError::Malformed("unexpected header length"));
        }
        let mut gen = [0u8; 8];
        gen.copy_from_slice(&b[16..24]);
        let encryption = if flags & FLAG_ENCRYPTED != 0 {
            Some(decode_encryption(bytes)?)
        } else {
            None
        };
        Ok(FileHeader {
            version,
            flags,
            generation: u64::from_le_bytes(gen),
            encryption,
        })
    }
}

fn decode_encryption(bytes: &[u8]) -> Result<EncryptionHeader, DecodeError> {
    let b = bytes
        .get(..ENCRYPTED_HEADER_LEN)
        .ok_or(DecodeError::Truncated)?;
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    if crc32c::crc32c(&b[HEADER_LEN..EXT_CRC_AT]) != u32_at(EXT_CRC_AT) {
        return Err(DecodeError::Checksum);
    }
    let arr16 = |i: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[i..i + 16]);
        a
    };
    if b[81..84] != [0, 0, 0] {
        return Err(DecodeError::Malformed("reserved bits set"));
    }
    let kdf = match b[80] {
        0 => Kdf::Raw,
        1 => Kdf::Argon2id {
            m_kib: u32_at(84),
            t: u32_at(88),
            p: u32_at(92),
            salt: arr16(96),
        },
        _ => return Err(DecodeError::Malformed("unknown key derivation function")),
    };
    let mut check_nonce = [0u8; 12];
    check_nonce.copy_from_slice(&b[112..124]);
    Ok(EncryptionHeader {
        file_id: arr16(64),
        kdf,
        check_nonce,
        check_tag: arr16(124),
    })
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
    fn encrypted_round_trip_and_damage() {
        let e = EncryptionHeader {
            file_id: [9; 16],
            kdf: Kdf::Argon2id {
                m_kib: 19456,
                t: 2,
                p: 1,
                salt: [5; 16],
            },
            check_nonce: [1; 12],
            check_tag: [2; 16],
        };
        let h = FileHeader::new_encrypted(3, e);
        let b = h.encode();
        assert_eq!(b.len(), ENCRYPTED_HEADER_LEN);
        assert_eq!(FileHeader::decode(&b), Ok(h));
        assert_eq!(h.key_check_aad(), b[..KEY_CHECK_AT].to_vec());
        assert_eq!(FileHeader::decode(&b[..100]), Err(DecodeError::Truncated));
        for i in HEADER_LEN..ENCRYPTED_HEADER_LEN {
            let mut c = b.clone();
            c[i] ^= 0x04;
            assert!(FileHeader::decode(&c).is_err(), "flip at {i}");
        }
        let raw = FileHeader::new_encrypted(0, EncryptionHeader { kdf: Kdf::Raw, ..e });
        assert_eq!(FileHeader::decode(&raw.encode()), Ok(raw));
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
