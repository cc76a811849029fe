//! Promise: *`exclusive=True` makes one writer, safely* — beside an
//! exclusive writer, a second writer is refused at once with `Error::Locked`
//! naming the path (and, for a second handle of this process, saying so), as
//! is an exclusive open beside sharing writers; read-only opens are allowed
//! beside it; closing releases the lock. By default writers share the file:
//! several open at once and see each other's writes. The lock follows the
//! file ("the file is the database"): symlinks, hard links and relative
//! paths all meet it, and no `PATH.lock` sidecar is created or consulted.
//!
//! These run inside one process (the OS lock is per open file description, so
//! a second open in the same process is refused just like another process's).
//! Cross-process behaviour is tested with real processes in
//! tests_rs/processes.rs and from Python.

use std::sync::{Arc, Barrier};

use ferrumdb::{Database, Error, FsyncPolicy};

use crate::{compact_leftover, get, open_ro, temp_db};

/// An exclusive writer's config.
fn config(path: &std::path::Path) -> ferrumdb::Config {
    crate::config(path).with_exclusive(true)
}

/// Open `path` as its exclusive writer.
fn open(path: &std::path::Path) -> Database {
    Database::open(&config(path)).expect("open exclusively")
}

fn expect_locked(result: ferrumdb::Result<Database>, path: &std::path::Path) {
    match result {
        Err(Error::Locked {
            path: p,
            pid,
            this_process,
        }) => {
            assert_eq!(p, path);
            assert_eq!(
                pid,
                Some(std::process::id()),
                "the lock should name our pid"
            );
            assert!(this_process, "a handle of this process holds it");
        }
        other => panic!("expected Error::Locked, got {other:?}"),
    }
}

#[test]
fn second_writer_is_locked_out_with_our_pid() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("k", b"1").expect("put");
    expect_locked(Database::open(&config(&path)), &path);
    // Refused again, and told it is this process, not another one.
    let err = Database::open(&config(&path)).expect_err("still locked");
    let shown = err.to_string();
    assert!(
        shown.contains("another handle in this process") && !shown.contains("another process"),
        "{shown}"
    );
    // It says what to do (wording may change; the read-only escape hatch stays).
    assert!(
        shown.contains("read-only") || shown.contains("read_only"),
        "message should say what to do: {shown}"
    );
    // The holder is unaffected.
    db.put_raw("k2", b"2").expect("writer still writes");
    assert_eq!(get(&db, "k").as_deref(), Some("1"));
    db.close().expect("close");
}

#[test]
fn every_fsync_policy_takes_the_lock() {
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::Never,
        FsyncPolicy::Periodic(std::time::Duration::from_secs(3600)),
    ] {
        let (_dir, path) = temp_db();
        let db = Database::open(&config(&path).with_fsync_policy(policy)).expect("open");
        expect_locked(Database::open(&config(&path)), &path);
        db.close().expect("close");
    }
}

#[test]
fn racing_writers_exactly_one_wins() {
    let (_dir, path) = temp_db();
    let threads = 4;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let result = Database::open(&config(&path));
                // Everyone has tried before anyone lets go of the lock.
                barrier.wait();
                result
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, Error::Locked { .. }), "{e:?}");
        }
    }
}

#[test]
fn read_only_open_beside_the_writer_works() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("k", b"1").expect("put");
    let ro = open_ro(&path);
    assert!(ro.is_read_only());
    assert_eq!(get(&ro, "k").as_deref(), Some("1"));
    assert!(matches!(ro.put_raw("k", b"2"), Err(Error::ReadOnly)));
    assert!(matches!(ro.delete("k"), Err(Error::ReadOnly)));
    assert!(matches!(ro.compact(), Err(Error::ReadOnly)));
    // A second reader, and the writer keeps writing.
    let ro2 = open_ro(&path);
    db.put_raw("k", b"3").expect("writer writes beside readers");
    assert_eq!(get(&db, "k").as_deref(), Some("3"));
    assert_eq!(ro2.len(), 1);
    ro.close().expect("close reader");
    // Closing a reader releases nothing the writer holds.
    expect_locked(Database::open(&config(&path)), &path);
    db.close().expect("close");
}

#[test]
fn read_only_open_does_not_lock_out_a_writer() {
    let (_dir, path) = temp_db();
    open(&path).close().expect("create");
    let ro = open_ro(&path);
    let db = open(&path);
    db.put_raw("k", b"1").expect("put");
    db.close().expect("close");
    drop(ro);
}

#[test]
fn writer_can_open_again_after_close() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("k", b"1").expect("put");
    let clone = db.clone();
    db.close().expect("close");
    // Closing one handle closes all its clones.
    assert!(matches!(clone.put_raw("k", b"2"), Err(Error::Closed)));
    let db2 = open(&path);
    assert_eq!(get(&db2, "k").as_deref(), Some("1"));
    db2.close().expect("close");
    // Clones still alive do not hold the lock after close.
    drop(clone);
    let db3 = open(&path);
    db3.close().expect("close");
}

#[test]
fn writer_can_open_again_after_drop() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("k", b"1").expect("put");
    let clone = db.clone();
    drop(db);
    // A clone still holds the database open.
    expect_locked(Database::open(&config(&path)), &path);
    drop(clone);
    let db = open(&path);
    assert_eq!(get(&db, "k").as_deref(), Some("1"));
    db.close().expect("close");
}

#[test]
fn refused_writer_does_not_clean_up_a_running_compaction() {
    // Only the lock holder may delete `<db>.compact`; a refused opener must not
    // touch files the holder may be writing.
    let (_dir, path) = temp_db();
    let db = open(&path);
    let leftover = compact_leftover(&path);
    std::fs::write(&leftover, b"in progress").expect("fake compaction file");
    expect_locked(Database::open(&config(&path)), &path);
    assert!(
        leftover.exists(),
        "a refused opener deleted the compaction file"
    );
    db.close().expect("close");
}

#[test]
fn writers_share_the_file_by_default_and_see_each_others_writes() {
    let (_dir, path) = temp_db();
    let a = crate::open(&path);
    let b = crate::open(&path);
    a.put_raw("a", b"1").expect("put");
    b.put_raw("b", b"2").expect("put");
    assert_eq!(get(&b, "a").as_deref(), Some("1"));
    assert_eq!(get(&a, "b").as_deref(), Some("2"));
    assert!(b.delete("a").expect("delete"), "b sees a's key as live");
    assert_eq!(get(&a, "a"), None);
    assert_eq!((a.len(), b.len()), (1, 1));
    a.close().expect("close");
    b.put_raw("c", b"3").expect("b writes on after a left");
    b.close().expect("close");
    let again = crate::open(&path);
    assert_eq!(get(&again, "b").as_deref(), Some("2"));
    assert_eq!(get(&again, "c").as_deref(), Some("3"));
    assert_eq!(again.len(), 2);
    again.close().expect("close");
}

#[test]
fn exclusive_and_sharing_writers_refuse_each_other_at_once() {
    let (_dir, path) = temp_db();
    let sharing = crate::open(&path);
    // An exclusive open beside a sharing writer (here: of this process).
    expect_locked(Database::open(&config(&path)), &path);
    sharing.close().expect("close");
    let exclusive = open(&path);
    // A sharing open beside an exclusive writer is refused, not kept waiting.
    expect_locked(Database::open(&crate::config(&path)), &path);
    exclusive.close().expect("close");
    crate::open(&path).close().expect("free again");
}

#[test]
fn a_joining_writer_does_not_clean_up_a_running_compaction() {
    let (_dir, path) = temp_db();
    let db = crate::open(&path);
    let leftover = compact_leftover(&path);
    std::fs::write(&leftover, b"in progress").expect("fake compaction file");
    let joined = crate::open(&path);
    assert!(
        leftover.exists(),
        "a joining writer deleted the compaction file"
    );
    joined.close().expect("close");
    db.close().expect("close");
}
