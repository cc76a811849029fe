//! Promise: `update_one`, `update_many` and `delete_many` are atomic: racing
//! increments lose nothing, a failing update or a batch writes nothing (also
//! after reopen), and an update keeps the key's exact expiry.

use std::sync::{Arc, Barrier};
use std::thread;

use ferrumdb::documents::{Documents, UpdateTarget};
use ferrumdb::{Clock, Database, Error};
use serde_json::{json, Value};

use super::{config, temp_db};

fn put(db: &Database, key: &str, doc: &Value) {
    db.put_raw(key, doc.to_string().as_bytes()).expect("put");
}

fn get(db: &Database, key: &str) -> Option<Value> {
    db.get_raw(key)
        .expect("get")
        .map(|v| serde_json::from_slice(v.as_bytes()).expect("json"))
}

#[test]
fn racing_increments_lose_nothing() {
    let (_dir, path) = temp_db();
    let docs = Documents::open(Database::open(&config(&path)).expect("open")).expect("docs");
    docs.create_index("n").expect("index");
    put(docs.database(), "counter", &json!({"n": 0}));
    let (threads, each) = (8, 500);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let docs = docs.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for _ in 0..each {
                    docs.update_one(
                        UpdateTarget::Key("counter"),
                        &json!({"$inc": {"n": 1}}),
                        false,
                    )
                    .expect("update");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let total = threads * each;
    assert_eq!(get(docs.database(), "counter"), Some(json!({"n": total})));
    assert_eq!(docs.find("n", &json!(total)).expect("find"), ["counter"]);
}

#[test]
fn a_failing_update_writes_nothing_even_after_reopen() {
    let (_dir, path) = temp_db();
    let before = [
        ("a", json!({"n": 1})),
        ("b", json!({"n": "text"})),
        ("c", json!({"n": 3})),
    ];
    {
        let docs = Documents::open(Database::open(&config(&path)).expect("open")).expect("docs");
        for (k, v) in &before {
            put(docs.database(), k, v);
        }
        let err = docs
            .update_many(&json!({}), &json!({"$inc": {"n": 1}}), "")
            .unwrap_err();
        match &err {
            Error::UpdateTypeMismatch { key, path, .. } => {
                assert_eq!((key.as_str(), path.as_str()), ("b", "n"));
            }
            other => panic!("{other:?}"),
        }
        let err = docs
            .update_one(
                UpdateTarget::Key("a"),
                &json!({"$set": {"x": 1}, "y": 2}),
                false,
            )
            .unwrap_err();
        assert!(matches!(err, Error::InvalidUpdate { .. }), "{err:?}");
        for (k, v) in &before {
            assert_eq!(get(docs.database(), k).as_ref(), Some(v));
        }
        docs.close().expect("close");
    }
    let db = Database::open(&config(&path)).expect("reopen");
    for (k, v) in &before {
        assert_eq!(get(&db, k).as_ref(), Some(v));
    }
}

#[test]
fn updates_keep_the_exact_expiry_and_many_calls_are_one_batch() {
    let (_dir, path) = temp_db();
    let clock = Clock::manual(1_800_000_000_000);
    let docs =
        Documents::open(Database::open(&config(&path).with_clock(clock.clone())).expect("open"))
            .expect("docs");
    let db = docs.database().clone();
    db.put_raw_with_ttl("s", br#"{"n":0}"#, std::time::Duration::from_millis(10_000))
        .expect("put");
    put(&db, "t", &json!({"n": 0}));
    clock.advance_ms(3_333);
    let new = docs
        .update_one(
            UpdateTarget::Filter(&json!({"n": 0})),
            &json!({"$inc": {"n": 5}}),
            false,
        )
        .expect("update");
    assert_eq!(new, Some(json!({"n": 5})));
    assert_eq!(
        docs.update_many(&json!({}), &json!({"$inc": {"n": 1}}), "")
            .expect("many"),
        2
    );
    assert_eq!(db.ttl("s").expect("ttl"), Some(Some(6.667)));
    assert_eq!(db.ttl("t").expect("ttl"), Some(None));
    assert_eq!(
        docs.delete_many(&json!({"n": {"$gte": 1}}), "")
            .expect("delete"),
        2
    );
    assert!(db.is_empty());
}
