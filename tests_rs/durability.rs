//! Promise: *acknowledged means kept* — once a write call returns, its record
//! has been handed to the OS under every fsync policy, so another open of the
//! file sees it without any flush or close; under `Always` concurrent writers
//! share syncs (group commit) and all succeed; and many threads of one process
//! may read and write at once with every read returning a value some writer
//! actually wrote.
//!
//! Power loss cannot be simulated in-process; what is checked here is the
//! half of the promise a `kill -9` exercises (data in the OS) plus the
//! concurrency rules. Real `kill -9` tests live in the Python suite.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use ferrumdb::{Database, FsyncPolicy};

use crate::{config, contents, get, json, open, open_ro, temp_db};

const POLICIES: [FsyncPolicy; 4] = [
    FsyncPolicy::Always,
    FsyncPolicy::Never,
    FsyncPolicy::Periodic(Duration::from_millis(1)),
    // Long enough that the flusher never runs during the test.
    FsyncPolicy::Periodic(Duration::from_secs(3600)),
];

fn write_some(db: &Database) -> BTreeMap<String, String> {
    let mut expected = BTreeMap::new();
    for i in 0..200 {
        let (k, v) = (format!("k{i:03}"), json(i));
        db.put_raw(&k, v.as_bytes()).expect("put");
        expected.insert(k, v);
    }
    for i in (0..200).step_by(10) {
        let k = format!("k{i:03}");
        assert!(db.delete(&k).expect("delete"));
        expected.remove(&k);
    }
    db.put_raw("k001", b"\"overwritten\"").expect("overwrite");
    expected.insert("k001".into(), "\"overwritten\"".into());
    expected
}

#[test]
fn every_policy_hands_each_write_to_the_os() {
    for policy in POLICIES {
        let (_dir, path) = temp_db();
        let db = Database::open(&config(&path).with_fsync_policy(policy)).expect("open");
        assert_eq!(db.fsync_policy(), policy);
        let expected = write_some(&db);
        // No flush, no close: a separate open of the file must already see it all.
        let ro = open_ro(&path);
        assert_eq!(contents(&ro), expected, "{policy}: write not in the OS yet");
        // The file may be longer than the log (preallocated slack), never shorter.
        assert!(
            std::fs::metadata(&path).expect("stat").len() >= db.stats().expect("stats").file_bytes,
            "{policy}"
        );
        // And each single write is visible as soon as it returns.
        db.put_raw("last", b"42").expect("put");
        assert_eq!(
            get(&open_ro(&path), "last").as_deref(),
            Some("42"),
            "{policy}"
        );
        db.close().expect("close");
    }
}

#[test]
fn every_policy_survives_reopen_without_flush() {
    for policy in POLICIES {
        let (_dir, path) = temp_db();
        let cfg = config(&path).with_fsync_policy(policy);
        let db = Database::open(&cfg).expect("open");
        let expected = write_some(&db);
        // Release the handle without flush() or close().
        drop(db);
        let db = Database::open(&cfg).expect("reopen after drop");
        assert_eq!(contents(&db), expected, "{policy}");
        db.close().expect("close");
    }
}

#[test]
fn dropping_a_periodic_handle_releases_the_lock_at_once() {
    // The periodic flusher thread must not keep the database (and its writer
    // lock) alive after the last handle is dropped: an immediate reopen works.
    let (_dir, path) = temp_db();
    let cfg = config(&path).with_fsync_policy(FsyncPolicy::Periodic(Duration::from_nanos(1)));
    for i in 0..300 {
        let db = Database::open(&cfg).unwrap_or_else(|e| panic!("open #{i}: {e}"));
        db.put_raw("k", i.to_string().as_bytes()).expect("put");
        drop(db);
    }
    let db = open(&path);
    assert_eq!(get(&db, "k").as_deref(), Some("299"));
    db.close().expect("close");
}

#[test]
fn flush_and_close_under_every_policy() {
    for policy in POLICIES {
        let (_dir, path) = temp_db();
        let cfg = config(&path).with_fsync_policy(policy);
        let db = Database::open(&cfg).expect("open");
        let expected = write_some(&db);
        db.flush().expect("flush");
        db.close().expect("close");
        db.close().expect("close is idempotent");
        let db = Database::open(&cfg).expect("reopen");
        assert_eq!(contents(&db), expected, "{policy}");
        db.close().expect("close");
    }
}

#[test]
fn group_commit_eight_writers_under_always() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 50;
    let (_dir, path) = temp_db();
    let cfg = config(&path).with_fsync_policy(FsyncPolicy::Always);
    let db = Database::open(&cfg).expect("open");
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    let v = format!(r#"{{"t":{t},"i":{i}}}"#);
                    db.put_raw(&format!("t{t}:{i:03}"), v.as_bytes())
                        .expect("put under Always");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread");
    }
    let expected: BTreeMap<String, String> = (0..THREADS)
        .flat_map(|t| {
            (0..PER_THREAD)
                .map(move |i| (format!("t{t}:{i:03}"), format!(r#"{{"t":{t},"i":{i}}}"#)))
        })
        .collect();
    assert_eq!(contents(&db), expected);
    assert_eq!(
        db.stats().expect("stats").sets,
        (THREADS * PER_THREAD) as u64
    );
    drop(db);
    let db = Database::open(&cfg).expect("reopen");
    assert_eq!(contents(&db), expected);
    db.close().expect("close");
}

#[test]
fn concurrent_readers_see_only_written_values() {
    const WRITERS: usize = 2;
    const READERS: usize = 2;
    const KEYS: usize = 16;
    const WRITES: usize = 3000;
    let (_dir, path) = temp_db();
    let db = open(&path);
    let barrier = Arc::new(Barrier::new(WRITERS + READERS));
    let writers_done = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for n in 0..WRITES {
                    let k = format!("shared:{:02}", n % KEYS);
                    let v = format!(
                        r#"{{"key":"{k}","w":{w},"n":{n},"pad":"{}"}}"#,
                        "p".repeat(n % 64)
                    );
                    db.put_raw(&k, v.as_bytes()).expect("put");
                    // A private key that is written and deleted in turn.
                    let own = format!("own:{w}");
                    if n % 2 == 0 {
                        db.put_raw(&own, v.as_bytes()).expect("put own");
                    } else {
                        assert!(db.delete(&own).expect("delete own"));
                    }
                }
            })
        })
        .collect();

    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (db, barrier, writers_done) = (db.clone(), barrier.clone(), writers_done.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // Per key and writer, the newest n seen: a later read of the
                // same writer's value for that key must not go back in time.
                let mut seen = vec![[None::<u64>; WRITERS]; KEYS];
                let mut rounds = 0usize;
                while rounds < 200 || !writers_done.load(Ordering::Acquire) {
                    for (slot, seen_k) in seen.iter_mut().enumerate() {
                        let k = format!("shared:{slot:02}");
                        let Some(text) = get(&db, &k) else { continue };
                        let v: serde_json::Value = serde_json::from_str(&text)
                            .unwrap_or_else(|e| panic!("{k}: torn value {text:?}: {e}"));
                        assert_eq!(v["key"], k.as_str(), "value of another key served");
                        let w = v["w"].as_u64().expect("w") as usize;
                        let n = v["n"].as_u64().expect("n");
                        assert!(w < WRITERS && n < WRITES as u64 && n as usize % KEYS == slot);
                        if let Some(prev) = seen_k[w] {
                            assert!(n >= prev, "{k}: writer {w} went back from {prev} to {n}");
                        }
                        seen_k[w] = Some(n);
                    }
                    for (k, v) in db.items_page("", None, 100).expect("scan") {
                        let v: serde_json::Value =
                            serde_json::from_slice(v.as_bytes()).expect("json");
                        if k.starts_with("shared:") {
                            assert_eq!(v["key"], k.as_str());
                        }
                    }
                    rounds += 1;
                }
            })
        })
        .collect();

    for h in writers {
        h.join().expect("writer thread");
    }
    writers_done.store(true, Ordering::Release);
    for h in readers {
        h.join().expect("reader saw an inconsistent value");
    }
    // Each writer's last write of a key is the largest n < WRITES with
    // n % KEYS == slot; the final value is one of the writers' last writes.
    for slot in 0..KEYS {
        let k = format!("shared:{slot:02}");
        let v: serde_json::Value =
            serde_json::from_str(&get(&db, &k).expect("present")).expect("json");
        let last_n = (WRITES - 1 - slot) / KEYS * KEYS + slot;
        assert_eq!(v["n"].as_u64(), Some(last_n as u64), "{k}");
    }
    // WRITES is even, so every writer's last own-key operation was a delete.
    for w in 0..WRITERS {
        assert_eq!(get(&db, &format!("own:{w}")), None);
    }
    let before = contents(&db);
    db.close().expect("close");
    let db = open(&path);
    assert_eq!(contents(&db), before);
    db.close().expect("close");
}
