//! User keys, how they are stretched into a master key, and the KDF description
//! stored in the file header.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::CryptoError;

/// A key as the user gives it: 32 raw bytes, or a passphrase to stretch.
///
/// Both forms are wiped from memory when dropped. `Debug` never prints them.
#[derive(Clone, PartialEq, Eq)]
pub enum EncryptionKey {
    /// 32 bytes of key material, used as they are (no KDF).
    Raw(Zeroizing<[u8; 32]>),
    /// A passphrase, stretched with Argon2id.
    Passphrase(Zeroizing<String>),
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncryptionKey::Raw(_) => write!(f, "EncryptionKey::Raw(<redacted>)"),
            EncryptionKey::Passphrase(_) => write!(f, "EncryptionKey::Passphrase(<redacted>)"),
        }
    }
}

impl From<[u8; 32]> for EncryptionKey {
    fn from(bytes: [u8; 32]) -> Self {
        EncryptionKey::Raw(Zeroizing::new(bytes))
    }
}

impl From<&str> for EncryptionKey {
    fn from(passphrase: &str) -> Self {
        EncryptionKey::Passphrase(Zeroizing::new(passphrase.to_owned()))
    }
}

impl From<String> for EncryptionKey {
    fn from(passphrase: String) -> Self {
        EncryptionKey::Passphrase(Zeroizing::new(passphrase))
    }
}

impl TryFrom<&[u8]> for EncryptionKey {
    type Error = CryptoError;

    /// 32 raw bytes; any other length is refused.
    fn try_from(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| {
            CryptoError::BadKey(format!(
                "a raw encryption key is exactly 32 bytes, not {}; pass a str to use a passphrase",
                bytes.len()
            ))
        })?;
        Ok(EncryptionKey::from(arr))
    }
}

/// How the master key of a file was obtained; stored in the file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// The user's 32 raw bytes are the master key.
    Raw,
    /// Argon2id (version 0x13) of the passphrase.
    Argon2id {
        /// Memory in KiB.
        m_kib: u32,
        /// Passes.
        t: u32,
        /// Lanes.
        p: u32,
        /// Random per-database salt.
        salt: [u8; 16],
    },
}

/// Argon2id cost used for new passphrase-protected files: the `argon2` crate's
/// defaults (19 MiB, 2 passes, 1 lane), the OWASP recommendation.
pub const ARGON2_DEFAULT: (u32, u32, u32) = (
    Params::DEFAULT_M_COST,
    Params::DEFAULT_T_COST,
    Params::DEFAULT_P_COST,
);

/// Largest Argon2 memory cost accepted from a file header (1 GiB), so a forged
/// header cannot make opening allocate without bound.
const MAX_M_KIB: u32 = 1 << 20;
/// Largest pass count accepted from a file header.
const MAX_T: u32 = 64;
/// Largest lane count accepted from a file header.
const MAX_P: u32 = 64;

/// The 32-byte key every file key is derived from; wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; 32]>,
    kdf: Kdf,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("kdf", &self.kdf)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A master key for a new file: raw keys as they are, passphrases through
    /// Argon2id with a fresh random salt and the default cost.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no salt can be drawn.
    pub fn create(key: &EncryptionKey) -> Result<Self, CryptoError> {
        let kdf = match key {
            EncryptionKey::Raw(_) => Kdf::Raw,
            EncryptionKey::Passphrase(_) => {
                let mut salt = [0u8; 16];
                super::random_bytes(&mut salt)?;
                let (m_kib, t, p) = ARGON2_DEFAULT;
                Kdf::Argon2id { m_kib, t, p, salt }
            }
        };
        Self::derive(key, kdf)
    }

    /// The master key `key` gives under the KDF recorded in a file header.
    ///
    /// # Errors
    /// [`CryptoError::BadKey`] when the key's form does not match the file's
    /// (a passphrase for a raw-key file or the reverse), or the parameters are
    /// out of range.
    pub fn derive(key: &EncryptionKey, kdf: Kdf) -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        match (key, kdf) {
            (EncryptionKey::Raw(raw), Kdf::Raw) => bytes.copy_from_slice(&raw[..]),
            (EncryptionKey::Passphrase(pass), Kdf::Argon2id { m_kib, t, p, salt }) => {
                if m_kib > MAX_M_KIB || t > MAX_T || p > MAX_P {
                    return Err(CryptoError::BadKey(format!(
                        "Argon2id parameters m={m_kib} KiB, t={t}, p={p} exceed this build's limits"
                    )));
                }
                let params = Params::new(m_kib, t, p, Some(32))
                    .map_err(|e| CryptoError::BadKey(format!("Argon2id parameters: {e}")))?;
                Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                    .hash_password_into(pass.as_bytes(), &salt, &mut bytes[..])
                    .map_err(|e| CryptoError::BadKey(format!("Argon2id: {e}")))?;
            }
            (EncryptionKey::Passphrase(_), Kdf::Raw) => {
                return Err(CryptoError::BadKey(
                    "this database was encrypted with a raw 32-byte key, but a passphrase (str) was given".into(),
                ))
            }
            (EncryptionKey::Raw(_), Kdf::Argon2id { .. }) => {
                return Err(CryptoError::BadKey(
                    "this database was encrypted with a passphrase (str), but 32 raw bytes were given".into(),
                ))
            }
        }
        Ok(MasterKey { bytes, kdf })
    }

    /// How this key was obtained (written to the header of files it protects).
    pub fn kdf(&self) -> Kdf {
        self.kdf
    }

    pub(super) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(salt: u8) -> Kdf {
        Kdf::Argon2id {
            m_kib: 64,
            t: 1,
            p: 1,
            salt: [salt; 16],
        }
    }

    #[test]
    fn raw_keys_are_used_as_given() {
        let key = EncryptionKey::from([7u8; 32]);
        let m = MasterKey::create(&key).expect("master");
        assert_eq!(m.bytes(), &[7u8; 32]);
        assert_eq!(m.kdf(), Kdf::Raw);
    }

    #[test]
    fn passphrases_depend_on_salt_and_text() {
        let a = MasterKey::derive(&"hunter2".into(), cheap(1)).expect("a");
        let again = MasterKey::derive(&"hunter2".into(), cheap(1)).expect("again");
        let other_salt = MasterKey::derive(&"hunter2".into(), cheap(2)).expect("salt");
        let other_text = MasterKey::derive(&"hunter3".into(), cheap(1)).expect("text");
        assert_eq!(a, again);
        assert_ne!(a.bytes(), other_salt.bytes());
        assert_ne!(a.bytes(), other_text.bytes());
    }

    #[test]
    fn new_passphrase_files_get_default_cost_and_fresh_salt() {
        let key = EncryptionKey::from("correct horse");
        let a = MasterKey::create(&key).expect("a");
        let b = MasterKey::create(&key).expect("b");
        match (a.kdf(), b.kdf()) {
            (Kdf::Argon2id { m_kib, t, p, salt }, Kdf::Argon2id { salt: salt_b, .. }) => {
                assert_eq!((m_kib, t, p), ARGON2_DEFAULT);
                assert_ne!(salt, salt_b);
            }
            other => panic!("expected Argon2id, got {other:?}"),
        }
        assert_ne!(a.bytes(), b.bytes());
    }

    #[test]
    fn form_mismatch_and_hostile_params_are_refused() {
        assert!(MasterKey::derive(&"pw".into(), Kdf::Raw).is_err());
        assert!(MasterKey::derive(&EncryptionKey::from([1u8; 32]), cheap(1)).is_err());
        let huge = Kdf::Argon2id {
            m_kib: u32::MAX,
            t: 1,
            p: 1,
            salt: [0; 16],
        };
        assert!(matches!(
            MasterKey::derive(&"pw".into(), huge),
            Err(CryptoError::BadKey(_))
        ));
    }

    #[test]
    fn raw_keys_must_be_32_bytes_and_never_print() {
        assert!(EncryptionKey::try_from(&[0u8; 31][..]).is_err());
        assert!(EncryptionKey::try_from(&[0u8; 33][..]).is_err());
        let k = EncryptionKey::try_from(&[0x41u8; 32][..]).expect("32 bytes");
        assert!(!format!("{k:?}").contains("65"));
        let p = EncryptionKey::from("s3cret");
        assert!(!format!("{p:?}").contains("s3cret"));
    }
}
