//! Promise: an expiring key is invisible to every read path from the instant
//! of its expiry, survives neither reopen nor compaction, and keeps its
//! expiry time across reopen while it lives. Time comes from a manual clock.

use std::time::Duration;

use ferrumdb::{Clock, Database};

use super::{config, get, temp_db};

const T0: u64 = 1_800_000_000_000;

fn open_at(path: &std::path::Path, clock: &Clock) -> Database {
    Database::open(&config(path).with_clock(clock.clone())).expect("open")
}

#[test]
fn expires_at_the_instant() {
    let (_dir, path) = temp_db();
    let clock = Clock::manual(T0);
    let db = open_at(&path, &clock);
    db.put_raw_with_ttl("k", b"1", Duration::from_millis(1500))
        .expect("set");
    db.put_raw("p", b"2").expect("set");
    clock.advance_ms(1499);
    assert_eq!(get(&db, "k").as_deref(), Some("1"));
    assert_eq!(db.ttl("k").expect("ttl"), Some(Some(0.001)));
    assert_eq!(db.len(), 2);
    clock.advance_ms(1);
    assert_eq!(get(&db, "k"), None);
    assert!(!db.contains("k").expect("contains"));
    assert_eq!(db.len(), 1);
    assert_eq!(
        db.keys_page("", None, 10).expect("keys"),
        vec!["p".to_string()]
    );
    assert_eq!(db.items_page("", None, 10).expect("items").len(), 1);
    assert!(!db.delete("k").expect("delete"));
    assert_eq!(db.ttl("k").expect("ttl"), None);
    assert_eq!(db.ttl("p").expect("ttl"), Some(None));
    db.close().expect("close");
}

#[test]
fn zero_ttl_is_refused() {
    let (_dir, path) = temp_db();
    let db = open_at(&path, &Clock::manual(T0));
    assert!(db.put_raw_with_ttl("k", b"1", Duration::ZERO).is_err());
    assert_eq!(db.len(), 0);
    db.close().expect("close");
}

#[test]
fn expiry_survives_reopen_and_expired_keys_do_not() {
    let (_dir, path) = temp_db();
    let db = open_at(&path, &Clock::manual(T0));
    db.put_raw("k", b"\"old\"").expect("set");
    db.put_raw_with_ttl("k", b"\"new\"", Duration::from_secs(60))
        .expect("set");
    db.put_raw_with_ttl("short", b"1", Duration::from_secs(1))
        .expect("set");
    db.close().expect("close");

    let later = Clock::manual(T0 + 30_000);
    let db = open_at(&path, &later);
    assert_eq!(get(&db, "k").as_deref(), Some("\"new\""));
    assert_eq!(db.ttl("k").expect("ttl"), Some(Some(30.0)));
    assert_eq!(get(&db, "short"), None, "expired before reopen");
    assert_eq!(db.len(), 1);
    db.close().expect("close");

    // Past the expiry the newer, expiring put hides the older permanent one.
    let db = open_at(&path, &Clock::manual(T0 + 61_000));
    assert_eq!(get(&db, "k"), None);
    assert!(db.is_empty());
    db.close().expect("close");
}

#[test]
fn compaction_drops_expired_records_for_good() {
    let (_dir, path) = temp_db();
    let clock = Clock::manual(T0);
    let db = open_at(&path, &clock);
    db.put_raw_with_ttl("gone", &[b'1'; 1000], Duration::from_secs(1))
        .expect("set");
    db.put_raw("kept", b"2").expect("set");
    clock.advance_ms(1000);
    let before = db.stats().expect("stats").file_bytes;
    db.compact().expect("compact");
    let after = db.stats().expect("stats").file_bytes;
    assert!(after < before, "{after} < {before}");
    assert_eq!(
        db.keys_page("", None, 10).expect("keys"),
        vec!["kept".to_string()]
    );
    db.close().expect("close");
    // Even a clock from before the expiry finds nothing: the record is gone.
    let db = open_at(&path, &Clock::manual(T0));
    assert_eq!(get(&db, "gone"), None);
    db.close().expect("close");
}
