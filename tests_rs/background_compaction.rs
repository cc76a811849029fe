//! Background compaction: once the garbage passes the configured rule the
//! database compacts itself while readers and writers keep going, keeps
//! exactly the live data, and never outlives `close()`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Barrier};

use ferrumdb::{AutoCompact, Config, Database};

use crate::{compact_leftover, config, contents, get, temp_db};

/// Compact at 50% garbage once there is at least 64 KiB of it.
fn eager() -> Option<AutoCompact> {
    Some(AutoCompact {
        ratio: 0.5,
        min_garbage_bytes: 64 << 10,
    })
}

fn open_with(path: &Path, rule: Option<AutoCompact>) -> Database {
    Database::open(&config(path).with_auto_compact(rule)).expect("open")
}

/// Overwrite `keys` keys `rounds` times with ~500-byte values; returns the model.
fn churn(db: &Database, keys: usize, rounds: usize) -> BTreeMap<String, String> {
    let mut model = BTreeMap::new();
    for r in 0..rounds {
        for k in 0..keys {
            let (key, value) = (format!("k{k:04}"), format!("\"{r}-{}\"", "v".repeat(480)));
            db.put_raw(&key, value.as_bytes()).expect("put");
            model.insert(key, value);
        }
    }
    model
}

#[test]
fn garbage_past_the_ratio_is_compacted_away_in_the_background() {
    let (_dir, path) = temp_db();
    let db = open_with(&path, eager());
    let model = churn(&db, 100, 20); // ~1 MB written, ~50 KB live
    db.wait_for_background_compaction();
    let stats = db.stats().expect("stats");
    assert!(stats.compactions >= 1, "no background compaction ran");
    // Whatever was written after the last compaction is at most one rule's
    // worth of garbage.
    assert!(
        stats.file_bytes - stats.live_bytes < (64 << 10) + stats.file_bytes / 2,
        "{stats:?}"
    );
    assert_eq!(contents(&db), model);
    db.close().expect("close");
    assert!(!compact_leftover(&path).exists());
    assert_eq!(contents(&open_with(&path, None)), model);
}

#[test]
fn without_a_rule_nothing_compacts_by_itself() {
    let (_dir, path) = temp_db();
    let db = open_with(&path, None);
    churn(&db, 100, 20);
    db.wait_for_background_compaction();
    assert_eq!(db.stats().expect("stats").compactions, 0);
    db.compact().expect("forced compaction");
    assert_eq!(db.compactions(), 1);
}

#[test]
fn writers_and_readers_keep_going_through_background_compactions() {
    const THREADS: usize = 3;
    let (_dir, path) = temp_db();
    let db = open_with(&path, eager());
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (db, start) = (db.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut last = BTreeMap::new();
                for r in 0..40 {
                    for k in 0..50 {
                        let key = format!("t{t}:{k:03}");
                        let value = format!("\"{r}{}\"", "x".repeat(400));
                        db.put_raw(&key, value.as_bytes()).expect("put");
                        assert_eq!(get(&db, &key).as_deref(), Some(value.as_str()));
                        last.insert(key, value);
                    }
                }
                last
            })
        })
        .collect();
    let mut model = BTreeMap::new();
    for h in handles {
        model.extend(h.join().expect("writer"));
    }
    db.wait_for_background_compaction();
    assert!(db.compactions() >= 1);
    assert_eq!(contents(&db), model);
    db.close().expect("close");
    assert_eq!(contents(&open_with(&path, None)), model);
}

#[test]
fn close_stops_a_background_compaction_and_keeps_the_data() {
    let (_dir, path) = temp_db();
    let db = open_with(&path, eager());
    let model = churn(&db, 100, 20);
    // Whether the compaction finished, gave up or never started, close
    // returns with no compaction left and the data intact.
    db.close().expect("close");
    assert!(!compact_leftover(&path).exists());
    let reopened = open_with(&path, None);
    assert_eq!(contents(&reopened), model);
}

#[test]
fn read_only_and_in_memory_handles_follow_the_rule_safely() {
    let (_dir, path) = temp_db();
    open_with(&path, None).close().expect("create");
    let ro = Database::open(
        &config(&path)
            .with_read_only(true)
            .with_auto_compact(eager()),
    )
    .expect("read-only");
    ro.wait_for_background_compaction();
    assert_eq!(ro.compactions(), 0);

    let mem =
        Database::open(&Config::new().in_memory().with_auto_compact(eager())).expect("memory");
    let model = churn(&mem, 50, 30);
    mem.wait_for_background_compaction();
    assert!(mem.compactions() >= 1);
    assert_eq!(contents(&mem), model);
}

#[test]
fn the_rule_rejects_ratios_outside_zero_to_one() {
    for bad in [0.0, 1.0, -0.5, 2.0, f64::NAN] {
        assert!(AutoCompact::with_ratio(bad).is_err(), "{bad}");
    }
    let rule = AutoCompact::with_ratio(0.25).expect("valid");
    assert!(
        !rule.is_due(100 << 20, 90 << 20),
        "10% garbage is not due at 25%"
    );
    assert!(rule.is_due(100 << 20, 50 << 20));
    assert!(!rule.is_due(1 << 20, 0), "under the 16 MiB minimum");
}
