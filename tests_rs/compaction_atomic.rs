//! Promise: *atomic* compaction — a compaction interrupted at any point leaves
//! exactly the live data it started with, and a completed one keeps every
//! live value (including writes made by other threads while it ran) and
//! reclaims the space of dead records.
//!
//! Crashes are simulated by power cuts at every sync of a compaction (the
//! storage fault layer, rust/storage/fault.rs): the files are then rebuilt
//! as a disk would hold them. The next writer open must see the
//! pre-compaction data and remove the `<db>.compact` leftover.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use ferrumdb::format::{FileHeader, RecordHeader, HEADER_LEN};
use ferrumdb::storage::fault::FaultPlan;
use ferrumdb::{Database, Error};
use tempfile::TempDir;

use crate::{compact_leftover, contents, get, json, open, populate, record_starts, temp_db};

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").len()
}

fn generation(path: &Path) -> u64 {
    FileHeader::decode(&fs::read(path).expect("read"))
        .expect("valid header")
        .generation
}

/// A database of 500 keys (with overwrites and deletes), the data it holds,
/// and its log as written so far.
fn prepared() -> (
    TempDir,
    PathBuf,
    Database,
    BTreeMap<String, String>,
    Vec<u8>,
) {
    let (dir, path) = temp_db();
    let db = open(&path);
    let expected = populate(&db, 500);
    let log_end = db.stats().expect("stats").file_bytes as usize;
    let old_log = fs::read(&path).expect("read")[..log_end].to_vec();
    (dir, path, db, expected, old_log)
}

#[test]
fn power_cut_at_every_step_keeps_the_pre_compaction_data() {
    // The durability barriers (file and directory syncs) of a compaction,
    // and of the compaction and the close after it.
    let (compaction, total) = {
        let (dir, _path, db, _, _) = prepared();
        let plan = FaultPlan::arm(dir.path());
        db.compact().expect("compact");
        let compaction = plan.barriers();
        db.close().expect("close");
        (compaction, plan.barriers())
    };
    for n in 1..=total {
        let (dir, path, db, expected, old_log) = prepared();
        let plan = FaultPlan::arm(dir.path()).power_cut_at(n);
        let compacted = db.compact();
        let _ = db.close();
        drop(db);
        plan.restore_power_cut().expect("restore the disk image");
        let leftover = compact_leftover(&path);
        if n <= compaction {
            // Up to the directory sync after the rename, the rename is not
            // durable: the old file is the database, untouched.
            assert!(compacted.is_err(), "power cut at sync {n}");
            assert_eq!(generation(&path), 0, "power cut at sync {n}");
            assert_eq!(
                fs::read(&path).expect("read")[..old_log.len()],
                old_log[..],
                "power cut at sync {n}: old file changed"
            );
        } else {
            compacted.expect("compaction completed before the power cut");
            assert!(!leftover.exists(), "rename done, nothing left over");
            assert_eq!(
                generation(&path),
                1,
                "power cut at sync {n}: new file in place"
            );
            let bytes = fs::read(&path).expect("read");
            let records_end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            assert!(
                records_end < old_log.len(),
                "power cut at sync {n}: new file is smaller"
            );
        }

        let db = open(&path);
        assert_eq!(
            contents(&db),
            expected,
            "power cut at sync {n}: data changed"
        );
        assert!(
            !leftover.exists(),
            "power cut at sync {n}: leftover not cleaned on open"
        );

        // The database carries on normally: write, compact fully, reopen.
        db.put_raw("after", b"1").expect("put after crash");
        db.compact().expect("full compaction after crash");
        db.close().expect("close");
        let db = open(&path);
        let mut want = expected.clone();
        want.insert("after".into(), "1".into());
        assert_eq!(
            contents(&db),
            want,
            "power cut at sync {n}: data after recompaction"
        );
        db.close().expect("close");
    }
}

#[test]
fn power_cut_before_the_rename_is_durable_keeps_late_writes() {
    // Writes made after the first records were compacted live in the old
    // file; until the rename is durable, the old file stays authoritative.
    let compaction = {
        let (dir, _path, db, _, _) = prepared();
        let plan = FaultPlan::arm(dir.path());
        db.compact().expect("compact");
        plan.barriers()
    };
    let (dir, path, db, mut expected, _) = prepared();
    for i in 0..50 {
        let (k, v) = (format!("late:{i}"), json(i));
        db.put_raw(&k, v.as_bytes()).expect("put");
        expected.insert(k, v);
    }
    db.flush().expect("flush");
    // The last sync of a compaction is the directory sync after its rename.
    let plan = FaultPlan::arm(dir.path()).power_cut_at(compaction);
    db.compact().expect_err("the power went");
    drop(db);
    plan.restore_power_cut().expect("restore the disk image");
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
    db.close().expect("close");
    assert!(matches!(db.compact(), Err(Error::Closed)));
    assert!(!compact_leftover(&path).exists());
}

#[test]
fn progress_counts_the_snapshot_and_changes_nothing_else() {
    // Two databases with the same history: one compacted with a progress
    // callback, one without. Values of ~1 KiB, so the copy spans several
    // 1 MiB chunks and reports between its first and last call.
    let build = |path: &Path| {
        let db = open(path);
        let mut expected = populate(&db, 400);
        for i in 0..3000 {
            let (k, v) = (format!("big:{i:05}"), format!("\"{}\"", "x".repeat(1000)));
            db.put_raw(&k, v.as_bytes()).expect("put");
            expected.insert(k, v);
        }
        (db, expected)
    };
    let (_dir, plain_path) = temp_db();
    let (_dir2, progress_path) = temp_db();
    let (plain, expected) = build(&plain_path);
    let (with_progress, same) = build(&progress_path);
    assert_eq!(expected, same);
    let live = with_progress.len() as u64;

    let mut calls = Vec::new();
    with_progress
        .compact_with_progress(&mut |done, total| calls.push((done, total)))
        .expect("compact with progress");
    plain.compact().expect("compact");

    assert_eq!(calls.first(), Some(&(0, live)));
    assert_eq!(calls.last(), Some(&(live, live)));
    assert!(calls.len() >= 4, "one report per chunk: {calls:?}");
    assert!(calls
        .windows(2)
        .all(|w| w[0].0 <= w[1].0 && w[0].1 == w[1].1));
    assert_eq!(contents(&with_progress), expected);
    assert_eq!(contents(&plain), expected);
    let (a, b) = (
        with_progress.stats().expect("stats"),
        plain.stats().expect("stats"),
    );
    assert_eq!((a.file_bytes, a.live_bytes), (b.file_bytes, b.live_bytes));
    assert_eq!(generation(&progress_path), generation(&plain_path));
}
