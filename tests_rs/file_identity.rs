//! Promise: *the file is the database, and it is handled with care* — the
//! writer lock follows the file (symlink, hard link, a compaction's rename),
//! work done through a symlinked path changes the real file, sidecar and
//! temporary files never write through a planted symlink, and something that
//! is not a database file is refused at once, leaving nothing behind.
//!
//! Faults are real: real symlinks, hard links and FIFOs in a temp directory.
//! (The read-only FIFO open, which used to hang, runs in a subprocess with a
//! timeout in `tests_py/test_file_identity.py`.)

#![cfg(unix)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use ferrumdb::{Database, Error};

use crate::{compact_leftover, config, contents, get, open, populate, temp_db};

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}

fn expect_locked_here(result: ferrumdb::Result<Database>) {
    match result {
        Err(Error::Locked {
            this_process: true, ..
        }) => {}
        other => panic!("expected Error::Locked by this process, got {other:?}"),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A victim file that a planted symlink points at, with known bytes.
fn victim(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("victim.txt");
    let bytes = b"precious bytes that FerrumDB must never touch\n".repeat(100);
    fs::write(&path, &bytes).expect("write victim");
    (path, bytes)
}

#[test]
fn symlinks_and_hard_links_meet_the_same_lock() {
    let (dir, path) = temp_db();
    let db = Database::open(&config(&path).with_exclusive(true)).expect("open exclusively");
    db.put_raw("k", b"1").expect("put");
    let soft = dir.path().join("soft.db");
    symlink(&path, &soft).expect("symlink");
    let hard = dir.path().join("hard.db");
    fs::hard_link(&path, &hard).expect("hard link");
    expect_locked_here(Database::open(&config(&soft).with_exclusive(true)));
    expect_locked_here(Database::open(&config(&hard).with_exclusive(true)));
    // A dotted, non-canonical spelling of the same path.
    let dotted = dir.path().join(".").join("test.db");
    expect_locked_here(Database::open(&config(&dotted).with_exclusive(true)));
    db.close().expect("close");
    // Closed: any name opens it.
    let again = open(&hard);
    assert_eq!(contents(&again).len(), 1);
    again.close().expect("close");
}

#[test]
fn sharing_writers_meet_through_symlinks_and_refuse_a_hard_link() {
    let (dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("k", b"1").expect("put");
    let soft = dir.path().join("soft.db");
    symlink(&path, &soft).expect("symlink");
    let hard = dir.path().join("hard.db");
    fs::hard_link(&path, &hard).expect("hard link");
    // A symlink resolves to the same file and the same shared page.
    let through_link = open(&soft);
    through_link
        .put_raw("k", b"2")
        .expect("put through the link");
    assert_eq!(get(&db, "k").as_deref(), Some("2"));
    // A hard link has a page of its own: writing through it beside the
    // other name would not be serialized with it, so it is refused.
    let err = Database::open(&config(&hard)).expect_err("hard link refused");
    assert!(err.to_string().contains("another name"), "{err}");
    through_link.close().expect("close");
    db.close().expect("close");
}

#[test]
fn no_lock_sidecar_is_created_and_a_stale_one_changes_nothing() {
    let (dir, path) = temp_db();
    let lock_file = with_suffix(&path, ".lock");
    // An older version's sidecar, even one naming a pid, is ignored.
    fs::write(&lock_file, b"999999").expect("stale lock file");
    let db = Database::open(&config(&path).with_exclusive(true)).expect("open exclusively");
    fs::remove_file(&lock_file).expect("delete the 'stale' lock file");
    expect_locked_here(Database::open(&config(&path).with_exclusive(true)));
    db.close().expect("close");
    let db = open(&path);
    db.close().expect("close");
    // The shared page (storage::shared) is the one file beside it.
    assert_eq!(
        names(dir.path()),
        BTreeSet::from(["test.db".to_string(), "test.db.shm".to_string()])
    );
}

#[test]
fn the_lock_follows_the_file_through_compaction() {
    let (dir, path) = temp_db();
    let db = Database::open(&config(&path).with_exclusive(true)).expect("open exclusively");
    let want = populate(&db, 300);
    db.compact().expect("compact");
    // The compacted file, reached by a name made only now, is locked.
    let hard = dir.path().join("hard.db");
    fs::hard_link(&path, &hard).expect("hard link");
    expect_locked_here(Database::open(&config(&hard).with_exclusive(true)));
    expect_locked_here(Database::open(&config(&path).with_exclusive(true)));
    db.put_raw("after", b"2").expect("write after compaction");
    db.close().expect("close");
    let db = open(&path);
    assert_eq!(contents(&db).len(), want.len() + 1);
    db.close().expect("close");
}

#[test]
fn compaction_through_a_symlink_changes_the_real_file() {
    let (dir, real) = temp_db();
    let link = dir.path().join("link.db");
    symlink(&real, &link).expect("symlink");
    let db = open(&link);
    let mut want = populate(&db, 300);
    db.compact().expect("compact");
    db.put_raw("after", b"2").expect("put");
    want.insert("after".into(), "2".into());
    db.close().expect("close");
    assert!(is_symlink(&link), "compaction replaced the symlink");
    let db = open(&real);
    assert_eq!(contents(&db), want);
    db.close().expect("close");
    assert!(!compact_leftover(&real).exists() && !compact_leftover(&link).exists());
}

#[test]
fn rekey_through_a_symlink_encrypts_the_real_file() {
    let (dir, real) = temp_db();
    let link = dir.path().join("link.db");
    symlink(&real, &link).expect("symlink");
    let db = open(&link);
    let want = populate(&db, 50);
    db.rekey(&ferrumdb::EncryptionKey::from([7u8; 32]))
        .expect("rekey");
    db.close().expect("close");
    assert!(is_symlink(&link));
    assert!(
        matches!(
            Database::open(&config(&real)),
            Err(Error::Encryption { .. })
        ),
        "the real file is still plaintext"
    );
    let db = Database::open(&config(&real).with_encryption([7u8; 32])).expect("open with key");
    assert_eq!(contents(&db), want);
    db.close().expect("close");
}

#[test]
fn a_dangling_symlink_creates_its_target_and_stays_a_link() {
    let (dir, _) = temp_db();
    let target = dir.path().join("target.db");
    let link = dir.path().join("link.db");
    symlink("target.db", &link).expect("relative dangling symlink");
    let db = open(&link);
    db.put_raw("k", b"1").expect("put");
    db.compact().expect("compact");
    db.close().expect("close");
    assert!(is_symlink(&link));
    assert!(fs::symlink_metadata(&target).expect("target").is_file());
    let db = open(&target);
    assert_eq!(contents(&db).len(), 1);
    db.close().expect("close");
}

#[test]
fn planted_symlinks_at_sidecar_names_are_never_written_through() {
    for sidecar in [".lock", ".compact", ".hint.tmp"] {
        let (dir, path) = temp_db();
        let (victim, bytes) = victim(dir.path());
        // `.lock` was opened at open by older versions; the others are
        // planted while the database is open, so the open's own cleanup
        // (which unlinks a leftover `.compact`) cannot save the day.
        if sidecar == ".lock" {
            symlink(&victim, with_suffix(&path, sidecar)).expect("plant symlink");
        }
        let db = open(&path);
        let want = populate(&db, 300);
        if sidecar != ".lock" {
            symlink(&victim, with_suffix(&path, sidecar)).expect("plant symlink");
        }
        db.compact()
            .expect("compaction works around the planted link");
        db.close().expect("close");
        assert_eq!(fs::read(&victim).expect("victim"), bytes, "{sidecar}");
        let db = open(&path);
        assert_eq!(contents(&db), want, "{sidecar}");
        db.close().expect("close");
    }
}

#[test]
fn close_writing_a_hint_never_writes_through_a_planted_temp_link() {
    let (dir, path) = temp_db();
    let (victim, bytes) = victim(dir.path());
    let db = open(&path);
    // More than the 8 MiB of unhinted log that makes a close write a hint.
    let value = format!("\"{}\"", "v".repeat(1024));
    for i in 0..9_000 {
        db.put_raw(&format!("k{i:05}"), value.as_bytes())
            .expect("put");
    }
    symlink(&victim, with_suffix(&path, ".hint.tmp")).expect("plant symlink");
    db.close().expect("close");
    assert_eq!(fs::read(&victim).expect("victim"), bytes);
    let db = open(&path);
    assert!(
        db.opened_with_hint(),
        "the close wrote its hint all the same"
    );
    assert_eq!(db.len(), 9_000);
    db.close().expect("close");
}

#[test]
fn a_symlinked_hint_is_not_followed() {
    let (dir, path) = temp_db();
    let db = open(&path);
    // More than the 8 MiB of unhinted log that makes a close write a hint.
    let value = format!("\"{}\"", "v".repeat(1024));
    for i in 0..9_000 {
        db.put_raw(&format!("k{i:05}"), value.as_bytes())
            .expect("put");
    }
    db.close().expect("close writes a hint");
    assert!(
        open(&path).opened_with_hint(),
        "the hint is usable as it is"
    );
    let hint = with_suffix(&path, ".hint");
    let elsewhere = dir.path().join("hint-elsewhere");
    fs::rename(&hint, &elsewhere).expect("move the hint away");
    symlink(&elsewhere, &hint).expect("plant a link to a valid hint");
    let (victim, bytes) = victim(dir.path());
    let db = open(&path);
    assert!(!db.opened_with_hint(), "a hint was read through a symlink");
    db.close().expect("close");
    assert_eq!(fs::read(&victim).expect("victim"), bytes);
}

#[test]
fn backup_never_writes_through_a_planted_temp_link_and_leaves_no_lock() {
    let (dir, path) = temp_db();
    let (victim, bytes) = victim(dir.path());
    let dest = dir.path().join("copy.db");
    symlink(&victim, with_suffix(&dest, ".tmp-backup")).expect("plant symlink");
    let db = open(&path);
    let want = populate(&db, 100);
    db.backup(&dest).expect("backup");
    db.close().expect("close");
    assert_eq!(fs::read(&victim).expect("victim"), bytes);
    assert!(
        !with_suffix(&dest, ".lock").exists(),
        "backup left dest.lock"
    );
    let copy = open(&dest);
    assert_eq!(contents(&copy), want);
    copy.close().expect("close");
}

#[test]
fn backup_refuses_a_destination_open_for_writing_through_another_name() {
    let (dir, path) = temp_db();
    let other = dir.path().join("other.db");
    let holder = open(&other);
    let alias = dir.path().join("alias.db");
    symlink(&other, &alias).expect("symlink");
    let db = open(&path);
    let err = db.backup(&alias).expect_err("dest is open for writing");
    assert!(err.to_string().contains("is open for writing"), "{err}");
    db.close().expect("close");
    holder.close().expect("close");
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

#[test]
fn a_fifo_a_device_or_a_directory_is_refused_at_once_leaving_nothing() {
    let (dir, _) = temp_db();
    let fifo = dir.path().join("pipe.db");
    mkfifo(&fifo);
    let sub = dir.path().join("sub.db");
    fs::create_dir(&sub).expect("dir");
    let before = names(dir.path());
    match Database::open(&config(&fifo)) {
        Err(Error::NotAFile { kind, .. }) => assert!(kind.contains("FIFO"), "{kind}"),
        other => panic!("expected NotAFile, got {other:?}"),
    }
    for read_only in [false, true] {
        match Database::open(&config(&sub).with_read_only(read_only)) {
            Err(Error::Io { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::EISDIR), "{source}");
            }
            other => panic!("expected EISDIR, got {other:?}"),
        }
    }
    assert_eq!(
        names(dir.path()),
        before,
        "a refused open left files behind"
    );
    let null = Path::new("/dev/null");
    let stray = Path::new("/dev/null.lock");
    let existed = stray.exists();
    for read_only in [false, true] {
        match Database::open(&config(null).with_read_only(read_only)) {
            Err(Error::NotAFile { kind, .. }) => assert!(kind.contains("device"), "{kind}"),
            other => panic!("expected NotAFile, got {other:?}"),
        }
    }
    assert!(
        existed || !stray.exists(),
        "opening /dev/null created /dev/null.lock"
    );
}

#[test]
fn salvage_in_place_refuses_while_a_writer_holds_the_file() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("k", b"1").expect("put");
    match Database::salvage_in_place(&path, None) {
        Err(Error::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    db.close().expect("close");
    // Intact: nothing to do, nothing moved.
    assert!(Database::salvage_in_place(&path, None)
        .expect("salvage")
        .is_none());
    let db = open(&path);
    assert_eq!(contents(&db).len(), 1);
    db.close().expect("close");
}
