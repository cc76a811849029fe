//! One file's encryption state: seal records into envelopes on the way to
//! disk, open them on the way back, and write or check the header's key check.
//!
//! The key material sits behind a lock only so that [`Seal::wipe`] can destroy
//! it when the database is closed while other handles still hold the log;
//! plain logs have no `Seal` and pay nothing.

use std::ops::Range;

use parking_lot::RwLock;

use crate::crypto::{random_bytes, CryptoError, EncryptionKey, FileCipher, MasterKey};
use crate::format::{
    begin_envelope, finish_envelope, split_envelope, EncryptionHeader, FileHeader,
};

struct Keys {
    cipher: FileCipher,
    master: MasterKey,
}

/// The cipher of one encrypted log file, and the master key it came from.
pub struct Seal {
    keys: RwLock<Option<Keys>>,
    file_id: [u8; 16],
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seal")
            .field("file_id", &self.file_id)
            .finish_non_exhaustive()
    }
}

fn wiped() -> CryptoError {
    CryptoError::BadKey("the database was closed and its key wiped".into())
}

impl Seal {
    /// A seal for a new file under `master`, with a fresh random file id.
    ///
    /// # Errors
    /// [`CryptoError::Random`].
    pub fn create(master: MasterKey) -> Result<Self, CryptoError> {
        let mut file_id = [0u8; 16];
        random_bytes(&mut file_id)?;
        let cipher = FileCipher::new(&master, file_id);
        Ok(Seal {
            keys: RwLock::new(Some(Keys { cipher, master })),
            file_id,
        })
    }

    /// A seal for a new file under a new user key (new salt for a passphrase).
    ///
    /// # Errors
    /// [`CryptoError::Random`], or Argon2 failing.
    pub fn for_key(key: &EncryptionKey) -> Result<Self, CryptoError> {
        Self::create(MasterKey::create(key)?)
    }

    /// Unlock an existing file: derive the master key as its header says and
    /// verify the key check. Reads nothing but the header.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] for a wrong key (or an altered header),
    /// [`CryptoError::BadKey`] for a key of the wrong form.
    pub fn unlock(header: &FileHeader, key: &EncryptionKey) -> Result<Self, CryptoError> {
        let enc = header
            .encryption
            .ok_or_else(|| CryptoError::BadKey("the file is not encrypted".into()))?;
        let master = MasterKey::derive(key, enc.kdf)?;
        let cipher = FileCipher::new(&master, enc.file_id);
        cipher.verify_key_check(&header.key_check_aad(), &enc.check_nonce, &enc.check_tag)?;
        Ok(Seal {
            keys: RwLock::new(Some(Keys { cipher, master })),
            file_id: enc.file_id,
        })
    }

    /// Unlock another file of the same database (one a compaction in
    /// another process wrote) with this seal's master key, verifying its key
    /// check.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] if that file is under another key (it
    /// was re-keyed); an error if the key was wiped.
    pub fn sibling(&self, header: &FileHeader) -> Result<Self, CryptoError> {
        let enc = header
            .encryption
            .ok_or_else(|| CryptoError::BadKey("the file is not encrypted".into()))?;
        let master = self
            .keys
            .read()
            .as_ref()
            .map(|k| k.master.clone())
            .ok_or_else(wiped)?;
        let cipher = FileCipher::new(&master, enc.file_id);
        cipher.verify_key_check(&header.key_check_aad(), &enc.check_nonce, &enc.check_tag)?;
        Ok(Seal {
            keys: RwLock::new(Some(Keys { cipher, master })),
            file_id: enc.file_id,
        })
    }

    /// A seal for the next file of the same database (a compaction): same
    /// master key and KDF, new file id, so a new subkey.
    ///
    /// # Errors
    /// [`CryptoError::Random`]; an error if the key was wiped.
    pub fn rotate(&self) -> Result<Self, CryptoError> {
        let master = self
            .keys
            .read()
            .as_ref()
            .map(|k| k.master.clone())
            .ok_or_else(wiped)?;
        Self::create(master)
    }

    /// The header of a new file protected by this seal, with its key check.
    ///
    /// # Errors
    /// [`CryptoError::Random`]; an error if the key was wiped.
    pub fn header(&self, generation: u64) -> Result<FileHeader, CryptoError> {
        let keys = self.keys.read();
        let keys = keys.as_ref().ok_or_else(wiped)?;
        let mut header = FileHeader::new_encrypted(
            generation,
            EncryptionHeader {
                file_id: self.file_id,
                kdf: keys.master.kdf(),
                check_nonce: [0; 12],
                check_tag: [0; 16],
            },
        );
        let (nonce, tag) = keys.cipher.key_check(&header.key_check_aad())?;
        if let Some(e) = header.encryption.as_mut() {
            e.check_nonce = nonce;
            e.check_tag = tag;
        }
        Ok(header)
    }

    /// Turn `buf`, holding exactly one plain record, into its envelope as the
    /// record at `offset` of this file.
    ///
    /// # Errors
    /// [`CryptoError::Random`]; an error if the key was wiped.
    pub fn seal_record(&self, buf: &mut Vec<u8>, offset: u64) -> Result<(), CryptoError> {
        let keys = self.keys.read();
        let keys = keys.as_ref().ok_or_else(wiped)?;
        let body = begin_envelope(buf);
        let data = buf.get_mut(body).unwrap_or_default();
        let (nonce, tag) = keys.cipher.seal(offset, data)?;
        finish_envelope(buf, &nonce, &tag);
        Ok(())
    }

    /// Decrypt the envelope `env` (read from `offset`) in place; returns where
    /// the plain record now sits in it.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] if it was not sealed at this offset of
    /// this file under this key, or was altered.
    pub fn open_envelope(&self, env: &mut [u8], offset: u64) -> Result<Range<usize>, CryptoError> {
        let keys = self.keys.read();
        let keys = keys.as_ref().ok_or_else(wiped)?;
        let (nonce, body, tag) = split_envelope(env).ok_or(CryptoError::Authentication)?;
        let data = env.get_mut(body.clone()).unwrap_or_default();
        keys.cipher.open(offset, &nonce, data, &tag)?;
        Ok(body)
    }

    /// Destroy the key material now (close). Later seals and opens fail.
    pub fn wipe(&self) {
        drop(self.keys.write().take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_record, Record, RecordKind};

    #[test]
    fn unlock_checks_the_key_and_seals_round_trip() {
        let key = EncryptionKey::from([3u8; 32]);
        let seal = Seal::for_key(&key).expect("seal");
        let header = seal.header(0).expect("header");
        let back = FileHeader::decode(&header.encode()).expect("decode");
        assert!(Seal::unlock(&back, &EncryptionKey::from([4u8; 32])).is_err());
        let opened = Seal::unlock(&back, &key).expect("unlock");

        let mut buf = Vec::new();
        encode_record(&mut buf, RecordKind::Put, 1, 0, "key", b"\"value\"");
        seal.seal_record(&mut buf, 144).expect("seal");
        let mut moved = buf.clone();
        assert!(opened.open_envelope(&mut moved, 145).is_err());
        let body = opened.open_envelope(&mut buf, 144).expect("open");
        let rec = Record::decode(&buf[body]).expect("record");
        assert_eq!((rec.key, rec.value), ("key", &b"\"value\""[..]));

        let next = seal.rotate().expect("rotate");
        let mut other = Vec::new();
        encode_record(&mut other, RecordKind::Put, 1, 0, "key", b"1");
        next.seal_record(&mut other, 144).expect("seal");
        assert!(opened.open_envelope(&mut other, 144).is_err(), "other file");

        seal.wipe();
        assert!(seal.seal_record(&mut Vec::from(&b"x"[..]), 144).is_err());
    }
}
