//! Promise: *atomic* compaction — a compaction interrupted at any point leaves
//! exactly the live data it started with, and a completed one keeps every
//! live value (including writes made by other threads while it ran) and
//! reclaims the space of dead records.
//!
//! Crashes are simulated with the `compact_until` test hook, which stops at a
//! crash point, leaves the files as a dying process would, and closes the
//! handle. The next writer open must see the pre-compaction data and remove
//! the `<db>.compact` leftover.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use ferrumdb::engine::CompactCrashPoint;
use ferrumdb::format::{FileHeader, RecordHeader, HEADER_LEN};
use ferrumdb::Error;

use crate::{compact_leftover, contents, get, json, open, populate, record_starts, temp_db};

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").len()
}

fn generation(path: &Path) -> u64 {
    FileHeader::decode(&fs::read(path).expect("read"))
        .expect("valid header")
        .generation
}

#[test]
fn crash_at_every_point_keeps_the_pre_compaction_data() {
    for point in [
        CompactCrashPoint::AfterCopy,
        CompactCrashPoint::BeforeRename,
        CompactCrashPoint::AfterRename,
    ] {
        let (_dir, path) = temp_db();
        let db = open(&path);
        let expected = populate(&db, 500);
        let log_end = db.stats().expect("stats").file_bytes as usize;
        let old_log = fs::read(&path).expect("read")[..log_end].to_vec();

        db.compact_until(point).expect("simulated crash");
        assert!(
            db.is_closed(),
            "{point:?}: the hook should close the handle"
        );
        assert!(matches!(db.get_raw("key:00001"), Err(Error::Closed)));
        assert!(matches!(db.put_raw("x", b"1"), Err(Error::Closed)));
        let leftover = compact_leftover(&path);
        match point {
            CompactCrashPoint::AfterRename => {
                assert!(
                    !leftover.exists(),
                    "{point:?}: rename done, nothing left over"
                );
                assert_eq!(generation(&path), 1, "{point:?}: new file in place");
                // The new file is mapped for appends before the rename, so
                // it carries preallocated zeros (cut at the next open): its
                // records end before the old log's did.
                let bytes = fs::read(&path).expect("read");
                let records_end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                assert!(records_end < log_end, "{point:?}: new file is smaller");
            }
            _ => {
                assert!(
                    leftover.exists(),
                    "{point:?}: crash leaves the new file behind"
                );
                assert_eq!(
                    fs::read(&path).expect("read")[..log_end],
                    old_log[..],
                    "{point:?}: old file changed"
                );
                assert_eq!(generation(&path), 0);
            }
        }

        let db = open(&path);
        assert_eq!(contents(&db), expected, "{point:?}: data changed");
        assert!(
            !leftover.exists(),
            "{point:?}: leftover not cleaned on open"
        );

        // The database carries on normally: write, compact fully, reopen.
        db.put_raw("after", b"1").expect("put after crash");
        db.compact().expect("full compaction after crash");
        db.close().expect("close");
        let db = open(&path);
        let mut want = expected.clone();
        want.insert("after".into(), "1".into());
        assert_eq!(contents(&db), want, "{point:?}: data after recompaction");
        db.close().expect("close");
    }
}

#[test]
fn crash_after_copy_with_writes_in_flight_keeps_them() {
    // Writes made after the crashed compaction's snapshot live only in the old
    // file; the old file stays authoritative.
    let (_dir, path) = temp_db();
    let db = open(&path);
    let mut expected = populate(&db, 200);
    for i in 0..50 {
        let (k, v) = (format!("late:{i}"), json(i));
        db.put_raw(&k, v.as_bytes()).expect("put");
        expected.insert(k, v);
    }
    db.compact_until(CompactCrashPoint::BeforeRename)
        .expect("simulated crash");
    let db = open(&path);
    assert_eq!(contents(&db), expected);
    db.close().expect("close");
}

#[test]
fn full_compaction_keeps_data_and_shrinks_the_file() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    let expected = populate(&db, 2000);
    let before = db.stats().expect("stats");
    assert!(before.live_bytes < before.file_bytes);
    db.close().expect("close");
    // A closed file holds exactly its log (no preallocated slack).
    let closed_before = file_len(&path);
    assert_eq!(closed_before, before.file_bytes);

    let db = open(&path);
    db.compact().expect("compact");
    let after = db.stats().expect("stats");
    assert_eq!(contents(&db), expected, "data changed by compaction");
    assert_eq!(after.keys, expected.len() as u64);
    assert_eq!(
        after.live_bytes, before.live_bytes,
        "live data changed size"
    );
    assert_eq!(
        after.file_bytes, after.live_bytes,
        "dead records survived compaction"
    );
    assert!(!compact_leftover(&path).exists());
    assert_eq!(generation(&path), 1);
    db.close().expect("close");
    assert_eq!(file_len(&path), after.file_bytes);
    assert!(
        file_len(&path) < closed_before,
        "compaction did not shrink the file"
    );

    // Writes after compaction land in the new file and survive reopen.
    let db = open(&path);
    db.compact().expect("compacting a compact file");
    db.put_raw("new", b"[1,2,3]").expect("put after compaction");
    assert!(db.delete("key:00001").expect("delete after compaction"));
    db.close().expect("close");
    let db = open(&path);
    let mut want = expected;
    want.insert("new".into(), "[1,2,3]".into());
    want.remove("key:00001");
    assert_eq!(contents(&db), want, "data changed across reopen");
    db.compact().expect("third compaction");
    assert_eq!(generation(&path), 3);
    db.close().expect("close");
}

#[test]
fn compacted_file_is_a_valid_log_with_increasing_sequence_numbers() {
    // The format promises seq strictly increasing within a file; compaction
    // must not reorder records (e.g. into key order) when it copies them.
    let (_dir, path) = temp_db();
    let db = open(&path);
    // Write keys in descending order so key order and write order differ.
    for i in (0..300).rev() {
        db.put_raw(&format!("k{i:03}"), json(i).as_bytes())
            .expect("put");
    }
    for i in (0..300).step_by(7) {
        db.put_raw(&format!("k{i:03}"), b"0").expect("overwrite");
    }
    db.compact().expect("compact");
    db.close().expect("close");
    let bytes = fs::read(&path).expect("read");
    let mut last_seq = None;
    for start in record_starts(&path) {
        let h = RecordHeader::parse(&bytes[start as usize..]).expect("header");
        if let Some(prev) = last_seq {
            assert!(
                h.seq > prev,
                "seq {} at offset {start} follows seq {prev}",
                h.seq
            );
        }
        last_seq = Some(h.seq);
    }
    assert!(bytes.len() > HEADER_LEN);
}

#[test]
fn concurrent_writes_during_compaction_survive() {
    const WRITERS: usize = 2;
    const MIN_OPS: usize = 3000;
    let (_dir, path) = temp_db();
    let db = open(&path);
    // Enough data that copying takes a while, so writes land during the copy.
    let base = populate(&db, 20_000);
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(WRITERS + 1));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, done, barrier) = (db.clone(), done.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut mine = BTreeMap::new();
                barrier.wait();
                let mut i = 0;
                // Keep writing until the compactions are over (and at least MIN_OPS).
                while i < MIN_OPS || !done.load(Ordering::Acquire) {
                    let k = format!("w{w}:{:04}", i % 1000);
                    if i % 7 == 3 {
                        db.delete(&k).expect("delete during compaction");
                        mine.remove(&k);
                    } else {
                        let v = format!(r#"{{"w":{w},"i":{i}}}"#);
                        db.put_raw(&k, v.as_bytes()).expect("put during compaction");
                        mine.insert(k, v);
                    }
                    i += 1;
                }
                mine
            })
        })
        .collect();

    barrier.wait();
    for _ in 0..3 {
        db.compact().expect("compact under concurrent writes");
    }
    done.store(true, Ordering::Release);

    let mut expected = base;
    for h in writers {
        expected.extend(h.join().expect("writer thread"));
    }
    assert_eq!(contents(&db), expected, "a concurrent write was lost");
    db.close().expect("close");
    assert!(!compact_leftover(&path).exists());
    let db = open(&path);
    assert_eq!(
        contents(&db),
        expected,
        "a concurrent write was lost on reopen"
    );
    // And once more, with nothing running beside it.
    db.compact().expect("quiet compaction");
    let stats = db.stats().expect("stats");
    assert_eq!(stats.file_bytes, stats.live_bytes);
    db.close().expect("close");
    let db = open(&path);
    assert_eq!(contents(&db), expected);
    db.close().expect("close");
}

#[test]
fn reads_during_compaction_see_every_value() {
    const READERS: usize = 2;
    let (_dir, path) = temp_db();
    let db = open(&path);
    let expected = Arc::new(populate(&db, 10_000));
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(READERS + 1));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (db, done, barrier, expected) =
                (db.clone(), done.clone(), barrier.clone(), expected.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let keys: Vec<&String> = expected.keys().collect();
                let mut n = r;
                let mut reads = 0usize;
                while reads < 2000 || !done.load(Ordering::Acquire) {
                    let k = keys[n % keys.len()];
                    assert_eq!(get(&db, k).as_ref(), expected.get(k), "read of {k}");
                    n += 7919;
                    reads += 1;
                }
            })
        })
        .collect();
    barrier.wait();
    db.compact().expect("compact");
    db.compact().expect("compact again");
    done.store(true, Ordering::Release);
    for h in readers {
        h.join().expect("reader saw a wrong value");
    }
    assert_eq!(contents(&db), *expected);
    db.close().expect("close");
}

#[test]
fn compaction_refused_on_closed_and_read_only_handles() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("k", b"1").expect("put");
    let ro = crate::open_ro(&path);
    assert!(matches!(ro.compact(), Err(Error::ReadOnly)));
    assert!(matches!(
        ro.compact_until(CompactCrashPoint::AfterCopy),
        Err(Error::ReadOnly)
    ));
    db.close().expect("close");
    assert!(matches!(db.compact(), Err(Error::Closed)));
    assert!(!compact_leftover(&path).exists());
}
