//! Hint files: an open reads the key directory of the log's prefix from
//! `PATH.hint` instead of replaying every record, and any hint that does not
//! match its data file exactly is ignored (never trusted).

use std::fs;
use std::path::Path;

use ferrumdb::engine::Clock;
use ferrumdb::storage::hint_path;
use ferrumdb::Database;

use crate::{config, contents, json, open, temp_db};

/// 500 keys, half overwritten, some deleted, an index definition, compacted.
fn compacted(path: &Path) -> Database {
    let db = open(path);
    for i in 0..500 {
        db.put_raw(&format!("k{i:03}"), json(i).as_bytes())
            .expect("put");
    }
    for i in (0..500).step_by(2) {
        db.put_raw(&format!("k{i:03}"), b"\"again\"")
            .expect("overwrite");
    }
    for i in (0..500).step_by(7) {
        db.delete(&format!("k{i:03}")).expect("delete");
    }
    db.put_meta("index:name", b"{}").expect("meta");
    db.compact().expect("compact");
    db
}

#[test]
fn compaction_writes_a_hint_and_the_next_open_uses_it() {
    let (_dir, path) = temp_db();
    let db = compacted(&path);
    assert!(hint_path(&path).exists());
    // Writes after the compaction are replayed on top of the hint.
    db.put_raw("k001", b"\"after\"").expect("put");
    db.delete("k003").expect("delete");
    db.put_raw("new", b"1").expect("put");
    let want = contents(&db);
    db.close().expect("close");

    let hinted = open(&path);
    assert!(hinted.opened_with_hint());
    assert_eq!(contents(&hinted), want);
    assert_eq!(hinted.meta_entries("index:").expect("meta").len(), 1);
    let stats = hinted.stats().expect("stats");
    hinted.close().expect("close");

    fs::remove_file(hint_path(&path)).expect("remove hint");
    let replayed = open(&path);
    assert!(!replayed.opened_with_hint());
    assert_eq!(contents(&replayed), want);
    let again = replayed.stats().expect("stats");
    assert_eq!(
        (stats.live_bytes, stats.file_bytes),
        (again.live_bytes, again.file_bytes)
    );
    // Writes continue with higher sequence numbers: a later replay agrees.
    replayed.put_raw("k001", b"\"latest\"").expect("put");
    replayed.close().expect("close");
    assert_eq!(
        crate::get(&open(&path), "k001").as_deref(),
        Some("\"latest\"")
    );
}

#[test]
fn a_damaged_or_foreign_hint_is_ignored_and_removed() {
    let (dir, path) = temp_db();
    let db = compacted(&path);
    let want = contents(&db);
    db.close().expect("close");
    let good = fs::read(hint_path(&path)).expect("hint");
    for at in [0, 20, 30, 41, 70, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x08;
        fs::write(hint_path(&path), &bad).expect("write");
        let db = open(&path);
        assert!(!db.opened_with_hint(), "flip at {at}");
        assert_eq!(contents(&db), want, "flip at {at}");
        db.close().expect("close");
        assert!(!hint_path(&path).exists(), "flip at {at}: stale hint left");
    }

    // Another database of the same generation and shape: its hint does not
    // describe this file, whose last record differs.
    let other_path = dir.path().join("other.db");
    let other = compacted(&other_path);
    other.put_raw("k002", b"\"different\"").expect("put");
    other.compact().expect("compact twice: generation 2");
    other.close().expect("close");
    let db = open(&path);
    db.compact().expect("generation 2 here too");
    db.close().expect("close");
    fs::copy(hint_path(&other_path), hint_path(&path)).expect("copy foreign hint");
    let db = open(&path);
    assert!(!db.opened_with_hint());
    assert_eq!(contents(&db), want);
}

#[test]
fn keys_that_expired_since_the_hint_are_dropped() {
    let clock = Clock::manual(1_000_000);
    let (_dir, path) = temp_db();
    let cfg = config(&path).with_clock(clock.clone());
    let db = Database::open(&cfg).expect("open");
    db.put_raw_with_ttl("short", b"1", std::time::Duration::from_secs(5))
        .expect("put");
    db.put_raw("long", b"2").expect("put");
    db.compact().expect("compact");
    db.close().expect("close");
    clock.advance_ms(6_000);
    let db = Database::open(&cfg).expect("reopen");
    assert!(db.opened_with_hint());
    assert_eq!(contents(&db).into_keys().collect::<Vec<_>>(), vec!["long"]);
}

#[test]
fn a_torn_tail_after_the_hinted_part_is_still_cut() {
    let (_dir, path) = temp_db();
    let db = compacted(&path);
    db.put_raw("tail", json(9).as_bytes()).expect("put");
    let before_tail = contents(&db);
    db.put_raw("torn", json(10).as_bytes()).expect("put");
    db.close().expect("close");
    let len = fs::metadata(&path).expect("meta").len();
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(len - 5).expect("cut the last record");
    drop(file);
    let db = open(&path);
    assert!(db.opened_with_hint());
    assert_eq!(contents(&db), before_tail);
}

#[test]
fn a_close_leaves_a_hint_only_when_much_of_the_log_is_unhinted() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("small", b"1").expect("put");
    db.close().expect("close");
    assert!(!hint_path(&path).exists(), "a small log replays quickly");

    let db = open(&path);
    let value = format!("\"{}\"", "v".repeat(4000));
    for i in 0..3000 {
        db.put_raw(&format!("big{i:05}"), value.as_bytes())
            .expect("put");
    }
    let want = contents(&db);
    db.close().expect("close");
    assert!(
        hint_path(&path).exists(),
        "12 MB unhinted: close writes a hint"
    );
    let db = open(&path);
    assert!(db.opened_with_hint());
    assert_eq!(contents(&db), want);
}
