//! Promise: a unique index refuses every write that would give two live
//! documents one value (a set, an update, a transaction commit), writing
//! nothing; a document without the field counts as null; creating one over
//! duplicates fails naming a value; the definition survives reopen.

use std::time::Duration;

use ferrumdb::documents::{Documents, UpdateTarget};
use ferrumdb::engine::WriteBatch;
use ferrumdb::{Clock, Database, Error};
use serde_json::{json, Value};

use super::{config, temp_db};

fn put(db: &Database, key: &str, doc: &Value) -> ferrumdb::Result<()> {
    db.put_raw(key, doc.to_string().as_bytes())
}

fn duplicate(result: ferrumdb::Result<impl std::fmt::Debug>) -> (String, String, String) {
    match result {
        Err(Error::DuplicateKey {
            value,
            key,
            existing,
            ..
        }) => (value, key, existing),
        other => panic!("expected DuplicateKey, got {other:?}"),
    }
}

#[test]
fn every_kind_of_write_is_refused_and_writes_nothing() {
    let (_dir, path) = temp_db();
    let clock = Clock::manual(1_800_000_000_000);
    {
        let docs = Documents::open(
            Database::open(&config(&path).with_clock(clock.clone())).expect("open"),
        )
        .expect("docs");
        let db = docs.database().clone();
        put(&db, "a", &json!({"email": "a@x", "n": 1})).expect("put");
        put(&db, "b", &json!({"email": "b@x", "n": 2})).expect("put");
        assert!(docs
            .create_index_with("email", true, &mut |_, _| {})
            .expect("create"));

        let (value, key, existing) = duplicate(put(&db, "c", &json!({"email": "a@x"})));
        assert_eq!(
            (value.as_str(), key.as_str(), existing.as_str()),
            ("\"a@x\"", "c", "a")
        );
        assert!(db.get_raw("c").expect("get").is_none());
        // Overwriting a document with its own value is fine.
        put(&db, "a", &json!({"email": "a@x", "n": 5})).expect("same key");

        duplicate(docs.update_one(
            UpdateTarget::Key("b"),
            &json!({"$set": {"email": "a@x"}}),
            false,
        ));
        let mut batch = WriteBatch::new();
        batch
            .put("c", br#"{"email":"c@x"}"#.to_vec())
            .expect("batch");
        batch
            .put("d", br#"{"email":"c@x"}"#.to_vec())
            .expect("batch");
        let (_, key, existing) = duplicate(db.commit(&batch, []));
        assert_eq!(
            (key.as_str(), existing.as_str()),
            ("d", "c"),
            "within one batch"
        );
        assert!(
            db.get_raw("c").expect("get").is_none(),
            "nothing of the batch"
        );

        // A transaction may swap two values, or move one from a deleted key.
        let mut swap = WriteBatch::new();
        swap.put("a", br#"{"email":"b@x"}"#.to_vec())
            .expect("batch");
        swap.put("b", br#"{"email":"a@x"}"#.to_vec())
            .expect("batch");
        db.commit(&swap, []).expect("swap");
        let mut moved = WriteBatch::new();
        moved.delete("a").expect("batch");
        moved
            .put("e", br#"{"email":"b@x"}"#.to_vec())
            .expect("batch");
        db.commit(&moved, []).expect("move");
        assert_eq!(docs.find("email", &json!("b@x")).expect("find"), ["e"]);

        // Missing counts as null: one document may lack the field, not two.
        put(&db, "m1", &json!({"other": 1})).expect("first missing");
        let (value, _, existing) = duplicate(put(&db, "m2", &json!({"email": null})));
        assert_eq!((value.as_str(), existing.as_str()), ("null", "m1"));
        duplicate(docs.update_many(&json!({}), &json!({"$unset": {"email": ""}}), ""));
        // An expired holder does not block its value.
        db.put_raw_with_ttl("t", br#"{"email":"t@x"}"#, Duration::from_secs(1))
            .expect("ttl");
        clock.advance_ms(1000);
        put(&db, "t2", &json!({"email": "t@x"})).expect("the old holder expired");
        docs.close().expect("close");
    }
    let docs = Documents::open(Database::open(&config(&path)).expect("reopen")).expect("docs");
    assert_eq!(docs.index_is_unique("email"), Some(true));
    duplicate(put(docs.database(), "z", &json!({"email": "t@x"})));
    assert!(docs.drop_index("email").expect("drop"));
    put(docs.database(), "z", &json!({"email": "t@x"})).expect("no longer unique");
}

#[test]
fn creating_over_duplicates_names_a_value_and_creates_nothing() {
    let (_dir, path) = temp_db();
    let docs = Documents::open(Database::open(&config(&path)).expect("open")).expect("docs");
    let db = docs.database().clone();
    put(&db, "a", &json!({"tags": ["x", "y"]})).expect("put");
    put(&db, "b", &json!({"tags": ["y", "z"]})).expect("put");
    let err = docs
        .create_index_with("tags", true, &mut |_, _| {})
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("\"y\""), "{message}");
    let (value, _, existing) = duplicate(Err::<(), _>(err));
    assert_eq!((value.as_str(), existing.as_str()), ("\"y\"", "a"));
    assert!(docs.indexes().is_empty());
    docs.close().expect("close");
    drop((docs, db));
    let docs = Documents::open(Database::open(&config(&path)).expect("reopen")).expect("docs");
    assert!(docs.indexes().is_empty(), "no definition stored");
    // Two documents without the field are duplicates too.
    put(docs.database(), "c", &json!({})).expect("put");
    put(docs.database(), "d", &json!({})).expect("put");
    let (value, _, _) = duplicate(docs.create_index_with("email", true, &mut |_, _| {}));
    assert_eq!(value, "null");
    // The same field as a plain index, then asking for unique, is refused.
    docs.create_index("tags").expect("plain");
    assert!(matches!(
        docs.create_index_with("tags", true, &mut |_, _| {}),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn a_duplicating_import_writes_nothing() {
    let (dir, path) = temp_db();
    let docs = Documents::open(Database::open(&config(&path)).expect("open")).expect("docs");
    let db = docs.database().clone();
    put(&db, "a", &json!({"email": "a@x"})).expect("put");
    docs.create_index_with("email", true, &mut |_, _| {})
        .expect("create");
    let file = dir.path().join("in.jsonl");
    std::fs::write(
        &file,
        "{\"key\":\"b\",\"value\":{\"email\":\"b@x\"}}\n{\"key\":\"c\",\"value\":{\"email\":\"a@x\"}}\n",
    )
    .expect("write");
    let (value, _, existing) =
        duplicate(ferrumdb::ops::import_jsonl(&db, &file, &mut |_, _, _| {}));
    assert_eq!((value.as_str(), existing.as_str()), ("\"a@x\"", "a"));
    assert!(db.get_raw("b").expect("get").is_none(), "no line written");
    std::fs::write(
        &file,
        "{\"key\":\"b\",\"value\":{\"email\":\"a@x\"}}\n{\"key\":\"a\",\"value\":{\"email\":\"moved\"}}\n",
    )
    .expect("write");
    let report = ferrumdb::ops::import_jsonl(&db, &file, &mut |_, _, _| {}).expect("import");
    assert_eq!(report.imported, 2);
    assert_eq!(docs.find("email", &json!("a@x")).expect("find"), ["b"]);
}
