//! Promise: one rule for a stored value that is not JSON (only the raw Rust
//! API, whose caller vouches for the bytes, can store one). Every read that
//! needs the document fails with `Error::InvalidValue` naming the key, on each
//! path that parses documents: the async `get`, a scanning `query` and `find`,
//! `create_index`, and the index build at open. Nothing is skipped silently,
//! and it is not reported as file corruption (the record passed its checksum).

use ferrumdb::documents::Documents;
use ferrumdb::{block_on, Database, Error, FerrumDB};
use serde_json::json;

use super::{config, temp_db};

const BAD: &[u8] = b"{not json";

/// `err` is the one rule's error for key `bad`.
fn assert_not_json(err: Error, path: &str) {
    match &err {
        Error::InvalidValue { reason, .. } => assert!(
            reason.contains("\"bad\"") && reason.contains("not JSON"),
            "{path}: {err}"
        ),
        other => panic!("{path}: expected InvalidValue naming the key, got {other:?}"),
    }
}

#[test]
fn async_get_reports_invalid_value_not_corruption() {
    let (_dir, path) = temp_db();
    let db = FerrumDB::open(config(&path)).expect("open");
    db.database().put_raw("bad", BAD).expect("put raw");
    let err = block_on(db.get("bad")).expect_err("get of a non-JSON value");
    assert_not_json(err, "get");
    block_on(db.close()).expect("close");
}

#[test]
fn scanning_query_and_find_report_it() {
    let (_dir, path) = temp_db();
    let docs = Documents::open(Database::open(&config(&path)).expect("open")).expect("docs");
    let db = docs.database().clone();
    db.put_raw("a", br#"{"x":1}"#).expect("put");
    db.put_raw("bad", BAD).expect("put raw");
    db.put_raw("c", br#"{"x":1}"#).expect("put");
    assert_not_json(
        docs.query(&json!({}), None, None, 0).expect_err("query"),
        "query scan",
    );
    assert_not_json(
        docs.query(&json!({"x": 1}), Some(&json!("x")), None, 0)
            .expect_err("sorted query"),
        "sorted query scan",
    );
    assert_not_json(docs.find("x", &json!(1)).expect_err("find"), "find scan");
    docs.close().expect("close");
}

#[test]
fn index_build_reports_it_at_create_and_at_open() {
    let (_dir, path) = temp_db();
    {
        let docs = Documents::open(Database::open(&config(&path)).expect("open")).expect("docs");
        docs.create_index("x").expect("index on an empty database");
        docs.database().put_raw("bad", BAD).expect("put raw");
        assert_not_json(
            docs.create_index("y").expect_err("create_index"),
            "create_index",
        );
        docs.close().expect("close");
    }
    let db = Database::open(&config(&path)).expect("open");
    assert_not_json(
        Documents::open(db).expect_err("index build at open"),
        "open",
    );
}
