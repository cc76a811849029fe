//! Promise: *corruption is detected, never served* — at the file header.
//!
//! Opening a file that is not a FerrumDB log (bad magic), one from a newer
//! format version, one with a truncated header or a header failing its
//! checksum is refused with `Error::Corruption { offset: 0, .. }` or
//! `Error::UnsupportedVersion`, and the refused file is left byte for byte as
//! it was. An empty (0-byte) file becomes a fresh database.

use std::fs;
use std::path::Path;

use ferrumdb::format::{FileHeader, HEADER_LEN, RECORD_HEADER_LEN, VERSION};
use ferrumdb::{Database, Error};

use crate::{config, expect_corruption, get, open, open_ro, temp_db};

/// A closed database at `path` holding one key.
fn make_db(path: &Path) {
    let db = open(path);
    db.put_raw("k", br#"{"v":1}"#).expect("put");
    db.close().expect("close");
}

/// Apply `edit` to the 64-byte header; when `fix_crc`, recompute its checksum
/// so only the edited field is wrong.
fn edit_header(path: &Path, fix_crc: bool, edit: impl FnOnce(&mut [u8])) {
    let mut bytes = fs::read(path).expect("read");
    edit(&mut bytes[..HEADER_LEN]);
    if fix_crc {
        let crc = crc32c(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    }
    fs::write(path, bytes).expect("write");
}

/// CRC32C (Castagnoli), bitwise; the tests must not share the engine's code path.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Both a writer and a read-only open refuse the file with a header corruption,
/// and neither changes a byte of it.
fn assert_header_corruption(path: &Path, reason_part: &str) {
    let before = fs::read(path).expect("read");
    for read_only in [false, true] {
        let (file, offset, reason) =
            expect_corruption(Database::open(&config(path).with_read_only(read_only)));
        assert_eq!(file, path);
        assert_eq!(offset, 0);
        assert!(
            reason.contains(reason_part),
            "reason {reason:?} should mention {reason_part:?}"
        );
        assert_eq!(
            fs::read(path).expect("read"),
            before,
            "a refused open modified the file"
        );
    }
}

#[test]
fn header_round_trips_through_a_real_file() {
    let (_dir, path) = temp_db();
    make_db(&path);
    let bytes = fs::read(&path).expect("read");
    assert_eq!(&bytes[..8], b"FERRUMDB");
    assert_eq!(crc32c(&bytes[..60]).to_le_bytes(), bytes[60..64]);
    let header = FileHeader::decode(&bytes).expect("valid header");
    assert_eq!(header, FileHeader::new(0));
}

#[test]
fn bad_magic_is_corruption_at_offset_zero() {
    let (_dir, path) = temp_db();
    make_db(&path);
    edit_header(&path, true, |h| h[0] = b'X');
    assert_header_corruption(&path, "magic");
}

#[test]
fn foreign_file_is_corruption_not_overwritten() {
    let (_dir, path) = temp_db();
    fs::write(&path, "id,name\n1,alice\n2,bob\n".repeat(10)).expect("write csv");
    assert_header_corruption(&path, "magic");
}

#[test]
fn newer_version_is_unsupported() {
    let (_dir, path) = temp_db();
    make_db(&path);
    let newer = VERSION + 1;
    edit_header(&path, true, |h| {
        h[8..10].copy_from_slice(&newer.to_le_bytes())
    });
    let before = fs::read(&path).expect("read");
    for read_only in [false, true] {
        match Database::open(&config(&path).with_read_only(read_only)) {
            Err(Error::UnsupportedVersion {
                file,
                found,
                supported,
            }) => {
                assert_eq!(file, path);
                assert_eq!(found, newer);
                assert_eq!(supported, VERSION);
            }
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
    }
    assert_eq!(fs::read(&path).expect("read"), before);
}

#[test]
fn newer_version_wins_over_a_bad_checksum() {
    // A newer writer may lay the header out differently; the version must be
    // reported rather than a confusing checksum error.
    let (_dir, path) = temp_db();
    make_db(&path);
    edit_header(&path, false, |h| {
        h[8..10].copy_from_slice(&7u16.to_le_bytes())
    });
    assert!(matches!(
        Database::open(&config(&path)),
        Err(Error::UnsupportedVersion { found: 7, .. })
    ));
}

#[test]
fn truncated_header_is_corruption() {
    let (_dir, path) = temp_db();
    make_db(&path);
    let full = fs::read(&path).expect("read");
    for cut in [1, 8, 10, 40, HEADER_LEN - 1] {
        fs::write(&path, &full[..cut]).expect("write");
        assert_header_corruption(&path, "truncated");
    }
}

#[test]
fn flipped_header_checksum_byte_is_corruption() {
    let (_dir, path) = temp_db();
    make_db(&path);
    let good = fs::read(&path).expect("read");
    for at in 60..64 {
        fs::write(&path, &good).expect("write");
        edit_header(&path, false, |h| h[at] ^= 0x01);
        assert_header_corruption(&path, "checksum");
    }
}

#[test]
fn flipped_covered_header_byte_is_corruption() {
    // Bytes 10..60 (flags, header_len, generation, reserved) are under the checksum.
    let (_dir, path) = temp_db();
    make_db(&path);
    let good = fs::read(&path).expect("read");
    for at in 10..60 {
        fs::write(&path, &good).expect("write");
        edit_header(&path, false, |h| h[at] ^= 0x80);
        assert_header_corruption(&path, "checksum");
    }
}

#[test]
fn unknown_header_flags_are_refused() {
    let (_dir, path) = temp_db();
    make_db(&path);
    edit_header(&path, true, |h| h[10] |= 0x02);
    assert_header_corruption(&path, "flags");
    // Bit 0 (encrypted) on a 64-byte header: no encryption block, never read as plain.
    let (_dir, path) = temp_db();
    make_db(&path);
    edit_header(&path, true, |h| h[10] |= 0x01);
    assert_header_corruption(&path, "header length");
}

#[test]
fn empty_file_becomes_a_fresh_database() {
    // e.g. a path from `tempfile.mkstemp()`.
    let (_dir, path) = temp_db();
    fs::write(&path, b"").expect("create empty file");
    let db = open(&path);
    assert!(db.is_empty());
    assert_eq!(db.stats().expect("stats").file_bytes, HEADER_LEN as u64);
    let header =
        FileHeader::decode(&fs::read(&path).expect("read")).expect("the empty file got a header");
    assert_eq!(header, FileHeader::new(0));
    db.put_raw("k", b"1").expect("put");
    db.close().expect("close");
    assert_eq!(
        fs::metadata(&path).expect("stat").len(),
        (HEADER_LEN + RECORD_HEADER_LEN + 2) as u64,
        "closed file is the header plus one record"
    );
    let db = open(&path);
    assert_eq!(get(&db, "k").as_deref(), Some("1"));
    db.close().expect("close");
}

#[test]
fn missing_file_is_created_for_writers_only() {
    let (_dir, path) = temp_db();
    match Database::open(&config(&path).with_read_only(true)) {
        Err(Error::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a not-found I/O error, got {other:?}"),
    }
    assert!(!path.exists(), "a read-only open created the file");
    let db = open(&path);
    assert!(db.is_empty());
    db.close().expect("close");
    let header = FileHeader::decode(&fs::read(&path).expect("read")).expect("valid header");
    assert_eq!(header.version, VERSION);
}

#[test]
fn refused_open_releases_the_writer_lock() {
    let (_dir, path) = temp_db();
    make_db(&path);
    let good = fs::read(&path).expect("read");
    edit_header(&path, true, |h| h[0] = b'X');
    assert!(Database::open(&config(&path)).is_err());
    fs::write(&path, good).expect("restore");
    let db = open(&path);
    assert_eq!(get(&db, "k").as_deref(), Some(r#"{"v":1}"#));
    db.close().expect("close");
    let ro = open_ro(&path);
    assert_eq!(ro.len(), 1);
}
