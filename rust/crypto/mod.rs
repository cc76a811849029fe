//! Key material and the cipher for encryption at rest; pure functions, no files.
//!
//! A user key ([`EncryptionKey`]: 32 raw bytes or a passphrase) becomes a
//! 32-byte [`MasterKey`] (the raw bytes, or Argon2id of the passphrase with the
//! salt and parameters stored in the file header). Each file then gets its own
//! AES-256-GCM key, HKDF-SHA256(master, file id), held by a [`FileCipher`]:
//! a compaction writes a new file under a new id and so a fresh subkey, which
//! bounds how many random 96-bit nonces are drawn under any one key. Every type
//! holding key bytes wipes them when dropped (`zeroize`).

mod cipher;
mod key;

pub use cipher::{random_bytes, FileCipher, NONCE_LEN, TAG_LEN};
pub use key::{EncryptionKey, Kdf, MasterKey, ARGON2_DEFAULT};

/// Why a cryptographic step failed; the storage layer adds file and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// The authentication tag did not verify: wrong key, or altered bytes.
    Authentication,
    /// The key cannot be used this way (wrong length, KDF parameters refused).
    BadKey(String),
    /// The operating system's random number generator failed.
    Random(String),
}

impl std::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CryptoError::Authentication => write!(f, "authentication failed"),
            CryptoError::BadKey(why) => write!(f, "unusable key: {why}"),
            CryptoError::Random(why) => write!(f, "OS random number generator failed: {why}"),
        }
    }
}
