//! Failed syncs and failed rewrites, injected for real through the storage
//! fault layer (rust/storage/fault.rs): README "Promises": "Failures are loud, and lose
//! nothing acknowledged". A rewrite (compaction, rekey) that fails at any
//! step leaves the handle on whichever file is the database, or refusing
//! work; the first failed sync poisons the handle (every later call but
//! close() raises with the same errno), and background failures reach the
//! next call.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ferrumdb::storage::fault::{FaultPlan, Op};
use ferrumdb::{AutoCompact, Config, Database, EncryptionKey, Error, FsyncPolicy};

use crate::{compact_leftover, contents, get, populate, temp_db};

fn open_with(path: &Path, fsync: FsyncPolicy) -> Database {
    Database::open(&Config::new().with_path(path).with_fsync_policy(fsync)).expect("open")
}

fn errno(e: &Error) -> Option<i32> {
    match e {
        Error::Io { source, .. } | Error::Poisoned { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// Files in the database's directory other than the database and its lock
/// (and, when `hint` is true, its hint): temporaries left behind.
fn leftovers(dir: &Path, hint: bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        // The shared page stays beside the database (see storage::shared).
        .filter(|n| n != "test.db" && n != "test.db.shm" && !(hint && n == "test.db.hint"))
        .collect();
    names.sort();
    names
}

/// Whether this process has `path` mapped.
fn mapped(path: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let name = path.to_string_lossy();
    maps.lines().any(|l| l.ends_with(&*name))
}

/// A database at `path` holding `populate(300)` (written without syncs,
/// which would only slow the test), reopened under `fsync`.
fn prepared(path: &Path, fsync: FsyncPolicy) -> (Database, BTreeMap<String, String>) {
    let db = open_with(path, FsyncPolicy::Never);
    let expected = populate(&db, 300);
    db.close().expect("close");
    (open_with(path, fsync), expected)
}

/// How many calls of `op` a compaction of a `prepared` database makes.
fn count_in_compaction(op: Op) -> u64 {
    let (dir, path) = temp_db();
    let (db, _) = prepared(&path, FsyncPolicy::Always);
    let plan = FaultPlan::arm(dir.path());
    db.compact().expect("clean compaction");
    plan.count(op)
}

#[test]
fn compaction_that_cannot_map_its_new_file_keeps_the_old_one_working() {
    // The allocation of the new file's append room is the fallible step the
    // old code ran after the rename: the handle then kept appending to the
    // old, unlinked file and every later write was lost at reopen.
    let allocations = count_in_compaction(Op::Allocate);
    assert!(allocations >= 1, "compaction maps its new file");
    for n in 1..=allocations {
        let (dir, path) = temp_db();
        let (db, mut expected) = prepared(&path, FsyncPolicy::Always);
        let plan = FaultPlan::arm(dir.path()).fail_nth(Op::Allocate, n, libc::ENOSPC);
        let e = db.compact().expect_err("ENOSPC");
        assert_eq!(errno(&e), Some(libc::ENOSPC), "{e}");
        assert!(!compact_leftover(&path).exists(), "partial file removed");
        assert_eq!(leftovers(dir.path(), true), Vec::<String>::new());
        // The handle keeps working, on the file that is the database.
        db.put_raw("after", b"\"acknowledged\"")
            .expect("write after");
        expected.insert("after".into(), "\"acknowledged\"".into());
        drop(plan);
        db.close().expect("close");
        assert_eq!(contents(&open_with(&path, FsyncPolicy::Never)), expected);
    }
}

#[test]
fn every_failure_of_a_compaction_before_its_rename_leaves_the_old_file_working() {
    for op in [
        Op::Write,
        Op::Sync,
        Op::Allocate,
        Op::Create,
        Op::Rename,
        Op::DirSync,
    ] {
        let calls = count_in_compaction(op);
        for n in 1..=calls {
            let (dir, path) = temp_db();
            let (db, mut expected) = prepared(&path, FsyncPolicy::Always);
            let plan = FaultPlan::arm(dir.path()).fail_nth(op, n, libc::EIO);
            let result = db.compact();
            let poisoned = db.is_poisoned();
            match &result {
                Ok(()) => {}
                Err(Error::HintNotWritten { .. }) => assert!(!poisoned),
                Err(e) => assert_eq!(errno(e), Some(libc::EIO), "{op:?} #{n}: {e}"),
            }
            assert!(!compact_leftover(&path).exists(), "{op:?} #{n}");
            assert_eq!(
                leftovers(dir.path(), true),
                Vec::<String>::new(),
                "{op:?} #{n}"
            );
            if poisoned {
                // Only the directory sync after the rename poisons.
                assert_eq!(op, Op::DirSync, "{op:?} #{n}: {result:?}");
                let e = db.put_raw("after", b"1").expect_err("poisoned");
                assert!(matches!(e, Error::Poisoned { .. }), "{e}");
                assert_eq!(errno(&e), Some(libc::EIO));
                assert!(matches!(
                    db.get_raw("key:00001"),
                    Err(Error::Poisoned { .. })
                ));
            } else {
                db.put_raw("after", b"\"acknowledged\"")
                    .expect("write after");
                expected.insert("after".into(), "\"acknowledged\"".into());
            }
            drop(plan);
            let _ = db.close();
            assert_eq!(
                contents(&open_with(&path, FsyncPolicy::Never)),
                expected,
                "{op:?} #{n}"
            );
        }
    }
}

#[test]
fn a_failed_directory_sync_after_the_rename_switches_and_poisons() {
    let dir_syncs = count_in_compaction(Op::DirSync);
    let (dir, path) = temp_db();
    let (db, expected) = prepared(&path, FsyncPolicy::Always);
    // The last directory sync of a compaction is the one after its rename.
    let plan = FaultPlan::arm(dir.path()).fail_nth(Op::DirSync, dir_syncs, libc::EIO);
    let e = db.compact().expect_err("EIO");
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert_eq!(errno(&e), Some(libc::EIO));
    assert!(db.is_poisoned());
    for e in [
        db.put_raw("x", b"1").expect_err("write refused"),
        db.get_raw("key:00001").expect_err("read refused"),
        db.flush().expect_err("flush refused"),
        db.compact().expect_err("compact refused"),
    ] {
        assert!(matches!(e, Error::Poisoned { .. }), "{e}");
        assert_eq!(errno(&e), Some(libc::EIO));
        let text = e.to_string();
        assert!(text.contains("an earlier sync of"), "{text}");
        assert!(text.contains("EIO"), "{text}");
        assert!(text.contains("reopen"), "{text}");
    }
    drop(plan);
    // Already raised by the compaction: close just releases.
    db.close().expect("close");
    db.close().expect("closing twice is a no-op");
    let db = open_with(&path, FsyncPolicy::Never);
    assert_eq!(contents(&db), expected);
}

#[test]
fn a_failed_sync_under_always_poisons_the_handle() {
    let (dir, path) = temp_db();
    let db = open_with(&path, FsyncPolicy::Always);
    let expected = populate(&db, 20);
    let plan = FaultPlan::arm(dir.path()).fail_nth(Op::Sync, 1, libc::EIO);
    let e = db
        .put_raw("lost?", b"\"unknown\"")
        .expect_err("sync failed");
    assert!(
        matches!(&e, Error::Io { path: Some(p), .. } if p == &path),
        "{e}"
    );
    assert_eq!(errno(&e), Some(libc::EIO));
    // Linux would now report the next sync as a success: the handle must
    // not trust it, nor serve the value whose sync failed.
    for e in [
        db.put_raw("later", b"1").expect_err("write refused"),
        db.get_raw("lost?").expect_err("read refused"),
        db.get_raw("key:00001").expect_err("read refused"),
        db.flush().expect_err("flush refused"),
        db.delete("key:00001").expect_err("delete refused"),
    ] {
        assert!(matches!(e, Error::Poisoned { .. }), "{e}");
        assert_eq!(errno(&e), Some(libc::EIO));
    }
    assert_eq!(plan.count(Op::Sync), 1, "no sync after the failed one");
    drop(plan);
    // close() releases everything without trimming (the file keeps its
    // preallocated slack) and without a hint.
    let len_before = std::fs::metadata(&path).expect("stat").len();
    let clone = db.clone();
    assert!(mapped(&path), "a writer maps its file");
    db.close().expect("close: the error was already raised");
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), len_before);
    // The mapping goes with close(), though a clone of the handle lives on.
    assert!(!mapped(&path), "close() released the mapping");
    assert!(matches!(clone.get_raw("k"), Err(Error::Closed)));
    assert!(!dir.path().join("test.db.hint").exists());
    // The lock is released: this process can open it again.
    let db = open_with(&path, FsyncPolicy::Never);
    let mut got = contents(&db);
    // Not acknowledged: may or may not be there, like a crash mid-call.
    got.remove("lost?");
    assert_eq!(got, expected);
}

#[test]
fn a_failed_flush_poisons_and_close_does_not_report_success() {
    let (dir, path) = temp_db();
    let db = open_with(&path, FsyncPolicy::Never);
    populate(&db, 20);
    let plan = FaultPlan::arm(dir.path()).fail_nth(Op::Sync, 1, libc::EIO);
    let e = db.flush().expect_err("flush failed");
    assert_eq!(errno(&e), Some(libc::EIO));
    let e = db
        .flush()
        .expect_err("a second flush must not report success");
    assert!(matches!(e, Error::Poisoned { .. }), "{e}");
    drop(plan);
    db.close().expect("already raised");
}

#[test]
fn a_failed_periodic_flush_reaches_the_next_call_and_close() {
    for call_first in [true, false] {
        let (dir, path) = temp_db();
        let db = open_with(&path, FsyncPolicy::Periodic(Duration::from_millis(1)));
        let plan = FaultPlan::arm(dir.path()).fail_nth(Op::Sync, 1, libc::EIO);
        db.put_raw("k", b"1").expect("write");
        // Wait for the flusher to meet the failure (an event, not a delay).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !db.is_poisoned() {
            assert!(std::time::Instant::now() < deadline, "flusher never synced");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(plan);
        if call_first {
            let e = db.get_raw("k").expect_err("the next call raises");
            assert!(matches!(e, Error::Poisoned { .. }), "{e}");
            assert_eq!(errno(&e), Some(libc::EIO));
            db.close().expect("already raised");
        } else {
            let e = db.close().expect_err("close raises what nobody has seen");
            assert!(matches!(e, Error::Poisoned { .. }), "{e}");
            assert_eq!(errno(&e), Some(libc::EIO));
            db.close().expect("closing twice is a no-op");
        }
    }
}

#[test]
fn a_failed_background_compaction_is_raised_once_by_the_next_call() {
    let (dir, path) = temp_db();
    let rule = Some(AutoCompact {
        ratio: 0.5,
        min_garbage_bytes: 64 << 10,
    });
    let db = Database::open(
        &Config::new()
            .with_path(&path)
            .with_fsync_policy(FsyncPolicy::Never)
            .with_auto_compact(rule),
    )
    .expect("open");
    // Every allocation fails: the first round stops before its rename.
    let plan = FaultPlan::arm(dir.path()).fail_nth(Op::Allocate, 1, libc::ENOSPC);
    let value = format!("\"{}\"", "v".repeat(480));
    let mut i = 0;
    let mut raised = false;
    while !plan.fired() {
        match db.put_raw(&format!("k{:03}", i % 100), value.as_bytes()) {
            Ok(()) => {}
            // The round failed while this loop still wrote: this write
            // raised it (and wrote nothing).
            Err(e) if errno(&e) == Some(libc::ENOSPC) => raised = true,
            Err(e) => panic!("{e}"),
        }
        i += 1;
        assert!(i < 100_000, "no background compaction started");
    }
    db.wait_for_background_compaction();
    drop(plan);
    assert!(!compact_leftover(&path).exists());
    assert!(!db.is_poisoned());
    if !raised {
        let e = db.get_raw("k000").expect_err("the next call raises it");
        assert_eq!(errno(&e), Some(libc::ENOSPC), "{e}");
    }
    // Raised once, then the handle works again.
    assert_eq!(get(&db, "k000"), Some(value.clone()));
    db.put_raw("after", b"1").expect("write after");
    db.close().expect("close");
    let db = open_with(&path, FsyncPolicy::Never);
    assert_eq!(get(&db, "after").as_deref(), Some("1"));
}

#[test]
fn a_close_whose_hint_cannot_be_published_completes_and_says_so() {
    let (dir, path) = temp_db();
    let db = open_with(&path, FsyncPolicy::Never);
    // More than the 8 MiB of unhinted log that makes a close write a hint.
    let value = format!("\"{}\"", "v".repeat(1024));
    for i in 0..9_000 {
        db.put_raw(&format!("k{i:05}"), value.as_bytes())
            .expect("put");
    }
    // The hint's publishing rename is the only rename a close makes.
    let plan = FaultPlan::arm(dir.path()).fail_nth(Op::Rename, 1, libc::ENOSPC);
    let e = db.close().expect_err("hint not written");
    assert!(plan.fired());
    drop(plan);
    assert!(matches!(e, Error::HintNotWritten { .. }), "{e}");
    assert!(e.to_string().contains("the data is safe"), "{e}");
    assert!(db.close().is_ok(), "closing twice is a no-op");
    assert_eq!(leftovers(dir.path(), false), Vec::<String>::new());
    let db = open_with(&path, FsyncPolicy::Never);
    assert!(!db.opened_with_hint());
    assert_eq!(db.len(), 9_000);
    assert_eq!(get(&db, "k08999"), Some(value));
    db.close().expect("close");
}

#[test]
fn a_rekey_that_fails_before_its_rename_keeps_the_old_key() {
    let allocations = count_in_compaction(Op::Allocate);
    let (dir, path) = temp_db();
    let (db, mut expected) = prepared(&path, FsyncPolicy::Always);
    let plan = FaultPlan::arm(dir.path()).fail_nth(Op::Allocate, allocations, libc::ENOSPC);
    let e = db
        .rekey(&EncryptionKey::from("new passphrase"))
        .expect_err("ENOSPC");
    assert_eq!(errno(&e), Some(libc::ENOSPC), "{e}");
    db.put_raw("after", b"2")
        .expect("still plain, still working");
    expected.insert("after".into(), "2".into());
    drop(plan);
    db.close().expect("close");
    assert_eq!(leftovers(dir.path(), true), Vec::<String>::new());
    assert_eq!(contents(&open_with(&path, FsyncPolicy::Never)), expected);
}
