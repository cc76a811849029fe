//! A look at a data file's header without opening it as a database: no lock is taken, nothing
//! is created or written, no key is needed. The command line asks this before an open, to tell
//! a missing key or a key of the wrong kind from a wrong one, and to check a typed passphrase
//! against the file's key check. The header is decoded by the same `FileHeader::decode` the
//! open uses, so the two cannot disagree about what a file is.

use std::io::{ErrorKind, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{DecodeError, FileHeader, ENCRYPTED_HEADER_LEN};

use super::paths::{self, Access};

/// What the file at a database path holds, judged from its header alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeekedHeader {
    /// No file, or an empty one: an open creates the header (encrypted if given a key).
    New,
    /// A FerrumDB header: plain when `encryption` is `None`, else with the key derivation
    /// and the key check an encryption key is tested against.
    Database(FileHeader),
    /// Bytes that are not a FerrumDB header (or one this build cannot read); opening the file
    /// reports the same reason.
    NotADatabase(DecodeError),
}

/// Read and decode the header of the data file at `path` (already resolved, not `:memory:`).
/// Like an open, it never blocks on a FIFO and refuses anything but a regular file.
///
/// # Errors
/// [`Error::NotAFile`] for a FIFO, device or socket; I/O errors (a missing file is not one:
/// that is [`PeekedHeader::New`]).
pub fn peek_header(path: &Path) -> Result<PeekedHeader> {
    let file = match paths::open_data_file(path, Access::Read) {
        Ok(file) => file,
        Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
            return Ok(PeekedHeader::New)
        }
        Err(e) => return Err(e),
    };
    let mut head = Vec::with_capacity(ENCRYPTED_HEADER_LEN);
    file.take(ENCRYPTED_HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    if head.is_empty() {
        return Ok(PeekedHeader::New);
    }
    Ok(match FileHeader::decode(&head) {
        Ok(header) => PeekedHeader::Database(header),
        Err(e) => PeekedHeader::NotADatabase(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::crypto::Kdf;
    use crate::engine::Database;

    #[test]
    fn tells_new_plain_encrypted_and_foreign_files_apart() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        assert_eq!(peek_header(&at("none.db")).unwrap(), PeekedHeader::New);
        std::fs::write(at("empty.db"), b"").unwrap();
        assert_eq!(peek_header(&at("empty.db")).unwrap(), PeekedHeader::New);
        std::fs::write(at("short"), b"hello").unwrap();
        assert_eq!(
            peek_header(&at("short")).unwrap(),
            PeekedHeader::NotADatabase(DecodeError::Truncated)
        );
        std::fs::write(at("text"), "hello, not a database\n".repeat(10)).unwrap();
        assert_eq!(
            peek_header(&at("text")).unwrap(),
            PeekedHeader::NotADatabase(DecodeError::BadMagic)
        );
        let plain = at("plain.db");
        Database::open(&Config::new().with_path(&plain))
            .unwrap()
            .close()
            .unwrap();
        assert!(matches!(
            peek_header(&plain).unwrap(),
            PeekedHeader::Database(FileHeader {
                encryption: None,
                ..
            })
        ));
        let raw = at("raw.db");
        Database::open(&Config::new().with_path(&raw).with_encryption([3u8; 32]))
            .unwrap()
            .close()
            .unwrap();
        match peek_header(&raw).unwrap() {
            PeekedHeader::Database(FileHeader {
                encryption: Some(enc),
                ..
            }) => assert_eq!(enc.kdf, Kdf::Raw),
            other => panic!("{other:?}"),
        }
        // A directory is an error, not a new database.
        assert!(peek_header(dir.path()).is_err());
    }
}
