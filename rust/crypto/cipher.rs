//! AES-256-GCM under one file's subkey: seal and open record bytes in place,
//! and the key check that lets a wrong key fail before anything is read.

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{AeadInPlace, OsRng};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{CryptoError, MasterKey};

/// Bytes of a GCM nonce (96 bits, drawn at random for every seal).
pub const NONCE_LEN: usize = 12;
/// Bytes of a GCM authentication tag.
pub const TAG_LEN: usize = 16;

/// HKDF `info` for a file's record key; a new format would change it.
const SUBKEY_INFO: &[u8] = b"ferrumdb v1 record key";
/// Prefix of every record's associated data (domain separation from the key check).
const RECORD_AAD: &[u8; 4] = b"FDBR";
/// Prefix of the key check's associated data.
const CHECK_AAD: &[u8] = b"ferrumdb key check";

/// Fill `out` from the operating system's random number generator.
///
/// # Errors
/// [`CryptoError::Random`] if the OS cannot provide randomness.
pub fn random_bytes(out: &mut [u8]) -> Result<(), CryptoError> {
    OsRng
        .try_fill_bytes(out)
        .map_err(|e| CryptoError::Random(e.to_string()))
}

/// The cipher of one file: AES-256-GCM keyed with HKDF-SHA256(master, file id).
/// The expanded key schedule is wiped on drop (`aes-gcm`'s `zeroize` feature).
pub struct FileCipher {
    aead: Aes256Gcm,
    file_id: [u8; 16],
}

impl std::fmt::Debug for FileCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCipher")
            .field("file_id", &self.file_id)
            .finish_non_exhaustive()
    }
}

impl FileCipher {
    /// The cipher for the file identified by `file_id`.
    pub fn new(master: &MasterKey, file_id: [u8; 16]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(&file_id), master.bytes());
        let mut subkey = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
        let _ = hk.expand(SUBKEY_INFO, &mut subkey[..]);
        let aead = Aes256Gcm::new((&*subkey).into());
        FileCipher { aead, file_id }
    }

    /// The file id this cipher is bound to.
    pub fn file_id(&self) -> [u8; 16] {
        self.file_id
    }

    fn record_aad(&self, offset: u64) -> [u8; 28] {
        let mut aad = [0u8; 28];
        aad[..4].copy_from_slice(RECORD_AAD);
        aad[4..20].copy_from_slice(&self.file_id);
        aad[20..].copy_from_slice(&offset.to_le_bytes());
        aad
    }

    /// Encrypt `data` in place as the record at `offset` of this file, under a
    /// fresh random nonce. Returns the nonce and the tag.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no nonce can be drawn.
    pub fn seal(
        &self,
        offset: u64,
        data: &mut [u8],
    ) -> Result<([u8; NONCE_LEN], [u8; TAG_LEN]), CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let tag = self
            .aead
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &self.record_aad(offset), data)
            .map_err(|_| CryptoError::BadKey("record too large to encrypt".into()))?;
        Ok((nonce, tag.into()))
    }

    /// Decrypt `data` in place, verifying it was sealed by this key as the
    /// record at `offset` of this very file.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] for a wrong key, altered bytes, or a
    /// record moved from another offset or another file (`data` is then garbage).
    pub fn open(
        &self,
        offset: u64,
        nonce: &[u8; NONCE_LEN],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        self.aead
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &self.record_aad(offset),
                data,
                Tag::from_slice(tag),
            )
            .map_err(|_| CryptoError::Authentication)
    }

    fn check_aad(header: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(CHECK_AAD.len() + header.len());
        aad.extend_from_slice(CHECK_AAD);
        aad.extend_from_slice(header);
        aad
    }

    /// The key check for a header whose bytes before the check are `header`:
    /// a seal of nothing that also authenticates the header (KDF parameters,
    /// file id, generation).
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no nonce can be drawn.
    pub fn key_check(
        &self,
        header: &[u8],
    ) -> Result<([u8; NONCE_LEN], [u8; TAG_LEN]), CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let tag = self
            .aead
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &Self::check_aad(header), &mut [])
            .map_err(|_| CryptoError::Authentication)?;
        Ok((nonce, tag.into()))
    }

    /// Whether the key check stored after `header` verifies under this key.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] for a wrong key or an altered header.
    pub fn verify_key_check(
        &self,
        header: &[u8],
        nonce: &[u8; NONCE_LEN],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        self.aead
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &Self::check_aad(header),
                &mut [],
                Tag::from_slice(tag),
            )
            .map_err(|_| CryptoError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::EncryptionKey;

    fn cipher(key: u8, id: u8) -> FileCipher {
        let master = MasterKey::create(&EncryptionKey::from([key; 32])).expect("master");
        FileCipher::new(&master, [id; 16])
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let c = cipher(1, 1);
        let mut a = b"user:1 {\"name\":\"alice\"}".to_vec();
        let mut b = a.clone();
        let (na, ta) = c.seal(100, &mut a).expect("seal");
        let (nb, _) = c.seal(100, &mut b).expect("seal");
        assert_ne!(na, nb, "every seal draws a new nonce");
        assert_ne!(a, b, "so equal plaintexts give different ciphertexts");
        assert!(!a.windows(5).any(|w| w == b"alice"));
        c.open(100, &na, &mut a, &ta).expect("open");
        assert_eq!(a, b"user:1 {\"name\":\"alice\"}");
    }

    #[test]
    fn wrong_offset_file_key_or_byte_fails() {
        let c = cipher(1, 1);
        let plain = b"some record bytes".to_vec();
        let mut sealed = plain.clone();
        let (n, t) = c.seal(64, &mut sealed).expect("seal");
        let fails = |c: &FileCipher, off: u64, data: &[u8], tag: &[u8; 16]| {
            let mut d = data.to_vec();
            c.open(off, &n, &mut d, tag) == Err(CryptoError::Authentication)
        };
        assert!(fails(&c, 65, &sealed, &t), "moved to another offset");
        assert!(fails(&cipher(1, 2), 64, &sealed, &t), "another file");
        assert!(fails(&cipher(2, 1), 64, &sealed, &t), "another key");
        for i in 0..sealed.len() {
            let mut d = sealed.clone();
            d[i] ^= 1;
            assert!(fails(&c, 64, &d, &t), "flipped byte {i}");
        }
        let mut bad_tag = t;
        bad_tag[0] ^= 1;
        assert!(fails(&c, 64, &sealed, &bad_tag));
    }

    #[test]
    fn key_check_binds_key_and_header() {
        let c = cipher(1, 1);
        let (n, t) = c.key_check(b"header bytes").expect("check");
        assert!(c.verify_key_check(b"header bytes", &n, &t).is_ok());
        assert!(c.verify_key_check(b"header bytez", &n, &t).is_err());
        assert!(cipher(2, 1)
            .verify_key_check(b"header bytes", &n, &t)
            .is_err());
    }
}
