//! Where the command line gets the key of an encrypted database, without
//! ever taking a secret as an argument (it would land in shell history and
//! in `ps`): `--key-file FILE`, else the `FERRUMDB_PASSPHRASE` environment
//! variable, else, for an existing encrypted file with a person at the
//! terminal, a passphrase prompt without echo.
//!
//! A key file holding exactly 32 bytes is a raw key; anything else is a
//! passphrase, taken from its first line without the line ending (so
//! `echo "my passphrase" > key` works, and `head -c 32 /dev/urandom > key`
//! makes a raw key). The file header, which storage reads for us
//! (`storage::peek_header`), says whether a database is encrypted and with
//! which kind of key, so a missing key, a key for a plain file or a
//! key of the wrong kind is reported here with what to do, before any open.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::Path;

use zeroize::Zeroizing;

use crate::crypto::{CryptoError, EncryptionKey, Kdf};
use crate::format::FileHeader;
use crate::storage::{self, PeekedHeader, Seal};

use super::secret::{read_secret, Secret};

/// The environment variable holding a passphrase.
pub const PASSPHRASE_ENV: &str = "FERRUMDB_PASSPHRASE";

/// A key file larger than this is surely not one (a database given by
/// mistake, say): it is refused rather than read into memory.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// How many passphrases the prompt accepts before giving up.
const PROMPT_ATTEMPTS: u32 = 3;

/// What the file at a database path is, as far as keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// No file yet (or an empty one, or `:memory:`): opening creates it,
    /// encrypted if a key is given.
    New,
    /// A FerrumDB file without encryption.
    Plain,
    /// An encrypted FerrumDB file and how its key is turned into the master key.
    Encrypted(Kdf),
    /// Not readable as a FerrumDB header: opening it reports why.
    Unknown,
}

/// Whether prompting for a passphrase is possible: stdin and stderr are a
/// terminal (the prompt goes to stderr, so stdout stays clean for output).
fn can_prompt() -> bool {
    io::stdin().is_terminal() && io::stderr().is_terminal()
}

/// [`resolve`] for the command line, which every form starts with: the key
/// (`None` for a plain or new database), or, after printing why there is
/// none, the exit status 1.
pub fn resolve_or_report(db: &Path, key_file: Option<&Path>) -> Result<Option<EncryptionKey>, i32> {
    resolve(db, key_file, can_prompt()).map_err(|msg| {
        eprintln!("error: {msg}");
        1
    })
}

/// The key to open the database at `db` with: `None` for a plain (or new,
/// unencrypted) database. A key given by `key_file` or `FERRUMDB_PASSPHRASE`
/// for a new database makes it encrypted. With `prompt`, an existing
/// passphrase-encrypted database without a given key asks for it.
///
/// # Errors
/// A message saying what is wrong and what to do: an unreadable key file, a
/// key for a plain database, a key of the wrong kind, an encrypted database
/// and no key, a wrong passphrase at the prompt.
fn resolve(
    db: &Path,
    key_file: Option<&Path>,
    prompt: bool,
) -> Result<Option<EncryptionKey>, String> {
    resolve_with(db, key_file, std::env::var_os(PASSPHRASE_ENV), prompt)
}

/// [`resolve`] with the value of `FERRUMDB_PASSPHRASE` passed in (tests run
/// in parallel and must not set the process environment).
fn resolve_with(
    db: &Path,
    key_file: Option<&Path>,
    env: Option<OsString>,
    prompt: bool,
) -> Result<Option<EncryptionKey>, String> {
    let given = match key_file {
        Some(file) => Some((read_key_file(file)?, "--key-file")),
        None => env_passphrase(env)?.map(|k| (k, PASSPHRASE_ENV)),
    };
    let found = inspect(db);
    let name = db.display();
    match (found, given) {
        (Found::New | Found::Unknown, given) => Ok(given.map(|(key, _)| key)),
        (Found::Plain, None) => Ok(None),
        (Found::Plain, Some((_, from))) => Err(format!(
            "{name} is not encrypted, but a key was given ({from}); open it without one{}",
            if from == PASSPHRASE_ENV {
                " (unset FERRUMDB_PASSPHRASE)"
            } else {
                ""
            }
        )),
        (Found::Encrypted(kdf), Some((key, from))) => match (kdf, &key) {
            (Kdf::Raw, EncryptionKey::Passphrase(_)) => Err(format!(
                "{name} is encrypted with a raw 32-byte key, but {from} gave a passphrase; \
                 give --key-file FILE with the 32 key bytes (a file of exactly 32 bytes)"
            )),
            (Kdf::Argon2id { .. }, EncryptionKey::Raw(_)) => Err(format!(
                "{name} is encrypted with a passphrase, but the key file holds exactly 32 bytes, \
                 which is read as a raw key; end the passphrase with a newline in the key file"
            )),
            _ => Ok(Some(key)),
        },
        (Found::Encrypted(_), None) if !prompt => Err(format!(
            "{name} is encrypted; give its key with --key-file FILE or the {PASSPHRASE_ENV} \
             environment variable (there is no terminal to ask for a passphrase)"
        )),
        (Found::Encrypted(Kdf::Raw), None) => Err(format!(
            "{name} is encrypted with a raw 32-byte key; give it with --key-file FILE"
        )),
        (Found::Encrypted(_), None) => ask_passphrase(db).map(Some),
    }
}

/// Read a key file: exactly 32 bytes is a raw key, else the first line is
/// the passphrase.
fn read_key_file(path: &Path) -> Result<EncryptionKey, String> {
    let name = path.display();
    let cannot = |e: io::Error| format!("cannot read the key file {name}: {e}");
    let file = File::open(path).map_err(cannot)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "the key file {name} is larger than {} KiB, so it is not a key file; it must hold \
             exactly 32 raw key bytes, or a passphrase on its first line",
            MAX_KEY_FILE_BYTES / 1024
        ));
    }
    if bytes.len() == 32 {
        return EncryptionKey::try_from(&bytes[..]).map_err(|e| e.to_string());
    }
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(format!(
            "the key file {name} holds no passphrase on its first line (and is not \
             exactly 32 raw key bytes)"
        ));
    }
    let text = std::str::from_utf8(line).map_err(|_| {
        format!(
            "the key file {name} is neither exactly 32 bytes (a raw key) nor a UTF-8 \
             passphrase on its first line"
        )
    })?;
    Ok(EncryptionKey::from(text))
}

/// The passphrase in `FERRUMDB_PASSPHRASE` (its value `env`), when set.
fn env_passphrase(env: Option<OsString>) -> Result<Option<EncryptionKey>, String> {
    let Some(value) = env else {
        return Ok(None);
    };
    match value.into_string() {
        Ok(value) if value.is_empty() => Err(format!(
            "{PASSPHRASE_ENV} is set but empty; set it to the passphrase, or unset it"
        )),
        Ok(value) => Ok(Some(EncryptionKey::from(value))),
        Err(_) => Err(format!("{PASSPHRASE_ENV} is not valid UTF-8")),
    }
}

/// What the file at `db` is, from its header ([`storage::peek_header`]).
fn inspect(db: &Path) -> Found {
    if db.as_os_str() == ":memory:" {
        return Found::New;
    }
    match storage::peek_header(db) {
        Ok(PeekedHeader::New) => Found::New,
        Ok(PeekedHeader::Database(header)) => match header.encryption {
            Some(enc) => Found::Encrypted(enc.kdf),
            None => Found::Plain,
        },
        // Opening it reports why (not a database, a directory, unreadable).
        Ok(PeekedHeader::NotADatabase(_)) | Err(_) => Found::Unknown,
    }
}

/// Ask for the passphrase of the encrypted database at `db` on the terminal,
/// without echo, checking each answer against the file's key check.
fn ask_passphrase(db: &Path) -> Result<EncryptionKey, String> {
    let name = db.display();
    let header = read_header(db)?;
    for attempt in 1..=PROMPT_ATTEMPTS {
        let answer = read_secret(&format!("Passphrase for {name}: "))
            .map_err(|e| format!("cannot read a passphrase from the terminal: {e}"))?;
        let line = match answer {
            Secret::Line(line) => line,
            Secret::Cancelled => return Err(format!("cancelled; {name} was not opened")),
        };
        if line.is_empty() {
            return Err(format!("no passphrase entered; {name} was not opened"));
        }
        let key = EncryptionKey::from(line.as_str());
        match Seal::unlock(&header, &key) {
            Ok(_) => return Ok(key),
            Err(CryptoError::Authentication) if attempt < PROMPT_ATTEMPTS => {
                eprintln!("wrong passphrase; try again");
            }
            Err(CryptoError::Authentication) => {
                return Err(format!(
                    "wrong passphrase for {name} ({PROMPT_ATTEMPTS} attempts); nothing was read or written"
                ))
            }
            Err(e) => return Err(format!("{name}: {e}")),
        }
    }
    Err(format!("no passphrase accepted for {name}"))
}

fn read_header(db: &Path) -> Result<FileHeader, String> {
    match storage::peek_header(db) {
        Ok(PeekedHeader::Database(header)) => Ok(header),
        Ok(PeekedHeader::New) => Err(format!("{}: no database file", db.display())),
        Ok(PeekedHeader::NotADatabase(e)) => Err(format!("{}: bad file header: {e}", db.display())),
        Err(e) => Err(format!("cannot read {}: {e}", db.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::Database;

    fn make_db(path: &Path, key: Option<EncryptionKey>) {
        let mut config = Config::new().with_path(path);
        if let Some(key) = key {
            config = config.with_encryption(key);
        }
        let db = Database::open(&config).unwrap();
        db.put_raw("k", b"1").unwrap();
        db.close().unwrap();
    }

    fn write<'a>(path: &'a Path, bytes: &[u8]) -> &'a Path {
        std::fs::write(path, bytes).unwrap();
        path
    }

    #[test]
    fn key_files_hold_32_raw_bytes_or_a_passphrase_line() {
        let dir = tempfile::tempdir().unwrap();
        let raw = read_key_file(write(&dir.path().join("raw"), &[7u8; 32])).unwrap();
        assert_eq!(raw, EncryptionKey::from([7u8; 32]));
        for (content, expected) in [
            (&b"hunter2\n"[..], "hunter2"),
            (b"hunter2", "hunter2"),
            (b"hunter2\r\nignored second line\n", "hunter2"),
            (b"  spaces kept \n", "  spaces kept "),
            // 33 bytes: a 32-character passphrase and its newline.
            (
                b"0123456789abcdef0123456789abcdef\n",
                "0123456789abcdef0123456789abcdef",
            ),
        ] {
            let key = read_key_file(write(&dir.path().join("p"), content)).unwrap();
            assert_eq!(key, EncryptionKey::from(expected), "{content:?}");
        }
        for (content, why) in [
            (&b""[..], "no passphrase"),
            (b"\nsecond", "no passphrase"),
            (b"\xff\xfe\n", "UTF-8"),
        ] {
            let err = read_key_file(write(&dir.path().join("bad"), content)).unwrap_err();
            assert!(err.contains(why), "{content:?}: {err}");
        }
        let big = vec![b'a'; 70_000];
        let err = read_key_file(write(&dir.path().join("big"), &big)).unwrap_err();
        assert!(err.contains("not a key file"), "{err}");
        let err = read_key_file(&dir.path().join("missing")).unwrap_err();
        assert!(err.contains("cannot read the key file"), "{err}");
    }

    #[test]
    fn inspects_the_file_header() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(inspect(&dir.path().join("none.db")), Found::New);
        assert_eq!(inspect(Path::new(":memory:")), Found::New);
        assert_eq!(
            inspect(write(&dir.path().join("empty.db"), b"")),
            Found::New
        );
        assert_eq!(
            inspect(write(&dir.path().join("text"), b"hello world")),
            Found::Unknown
        );
        let plain = dir.path().join("plain.db");
        make_db(&plain, None);
        assert_eq!(inspect(&plain), Found::Plain);
        let raw = dir.path().join("raw.db");
        make_db(&raw, Some([3u8; 32].into()));
        assert_eq!(inspect(&raw), Found::Encrypted(Kdf::Raw));
        let pass = dir.path().join("pass.db");
        make_db(&pass, Some("pw".into()));
        assert!(matches!(
            inspect(&pass),
            Found::Encrypted(Kdf::Argon2id { .. })
        ));
    }

    #[test]
    fn resolves_keys_and_explains_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.db");
        make_db(&plain, None);
        let raw_db = dir.path().join("raw.db");
        make_db(&raw_db, Some([3u8; 32].into()));
        let pass_db = dir.path().join("pass.db");
        make_db(&pass_db, Some("pw".into()));
        let raw_file = write(&dir.path().join("raw.key"), &[3u8; 32]).to_path_buf();
        let pass_file = write(&dir.path().join("pass.key"), b"pw\n").to_path_buf();

        let resolve = |db: &Path, file: Option<&Path>, prompt| resolve_with(db, file, None, prompt);
        assert_eq!(resolve(&plain, None, false), Ok(None));
        assert_eq!(
            resolve(&raw_db, Some(&raw_file), false),
            Ok(Some([3u8; 32].into()))
        );
        assert_eq!(
            resolve(&pass_db, Some(&pass_file), true),
            Ok(Some("pw".into()))
        );
        // A new database is encrypted with the key given.
        let new = dir.path().join("new.db");
        assert_eq!(
            resolve(&new, Some(&pass_file), false),
            Ok(Some("pw".into()))
        );
        let err = resolve(&plain, Some(&pass_file), false).unwrap_err();
        assert!(
            err.contains("is not encrypted, but a key was given (--key-file)"),
            "{err}"
        );
        let err = resolve(&raw_db, Some(&pass_file), false).unwrap_err();
        assert!(
            err.contains("raw 32-byte key, but --key-file gave a passphrase"),
            "{err}"
        );
        let err = resolve(&pass_db, Some(&raw_file), false).unwrap_err();
        assert!(err.contains("read as a raw key"), "{err}");
        let err = resolve(&pass_db, None, false).unwrap_err();
        assert!(
            err.contains(
                "is encrypted; give its key with --key-file FILE or the FERRUMDB_PASSPHRASE"
            ),
            "{err}"
        );
        // A raw key cannot be typed at a prompt.
        let err = resolve(&raw_db, None, true).unwrap_err();
        assert!(err.contains("give it with --key-file FILE"), "{err}");

        let env = |db: &Path, file: Option<&Path>, value: &str| {
            resolve_with(db, file, Some(value.into()), false)
        };
        assert_eq!(env(&pass_db, None, "pw"), Ok(Some("pw".into())));
        // --key-file wins over the environment.
        assert_eq!(
            env(&raw_db, Some(&raw_file), "pw"),
            Ok(Some([3u8; 32].into()))
        );
        let err = env(&plain, None, "pw").unwrap_err();
        assert!(err.contains("unset FERRUMDB_PASSPHRASE"), "{err}");
        let err = env(&pass_db, None, "").unwrap_err();
        assert!(err.contains("set but empty"), "{err}");
    }
}
