//! Promise: the document calls beyond `query` (`query_with` prefix and
//! projection, `count`, `distinct`, `find` refusing operators) give the same
//! answers with and without indexes, and `count` on an indexed equality reads
//! no document.

use ferrumdb::documents::Documents;
use ferrumdb::{Database, Error, QueryOptions};
use serde_json::{json, Value};

use super::{config, temp_db};

fn open(path: &std::path::Path) -> Documents {
    Documents::open(Database::open(&config(path)).expect("open")).expect("docs")
}

fn fill(docs: &Documents) {
    let db = docs.database();
    for (key, doc) in [
        (
            "order:1",
            json!({"status": "new", "total": 5, "tags": ["a", "b"], "who": {"name": "ann", "age": 3}}),
        ),
        (
            "order:2",
            json!({"status": "paid", "total": 9, "tags": ["b"], "who": {"name": "bob"}}),
        ),
        (
            "order:3",
            json!({"status": "new", "total": 1.0, "tags": [], "who": 7}),
        ),
        ("user:1", json!({"status": "new", "total": 1})),
        ("zzz", json!({"other": true})),
    ] {
        db.put_raw(key, doc.to_string().as_bytes()).expect("put");
    }
}

#[test]
fn prefix_count_distinct_and_projection_agree_with_and_without_index() {
    let (_dir, path) = temp_db();
    let docs = open(&path);
    fill(&docs);
    for indexed in [false, true] {
        if indexed {
            docs.create_index("status").expect("index");
            docs.create_index("total").expect("index");
        }
        let options = QueryOptions {
            prefix: "order:".into(),
            fields: Some(json!(["who.name", "total"])),
            sort: Some(json!("-total")),
            ..QueryOptions::default()
        };
        let rows = docs
            .query_with(&json!({"status": "new"}), &options)
            .expect("query");
        let got: Vec<(String, Value)> = rows.into_iter().map(|r| (r.key, r.doc)).collect();
        assert_eq!(
            got,
            [
                (
                    "order:1".to_owned(),
                    json!({"total": 5, "who": {"name": "ann"}})
                ),
                ("order:3".to_owned(), json!({"total": 1.0})),
            ],
            "indexed: {indexed}"
        );
        assert_eq!(docs.count(None, "").expect("count"), 5);
        assert_eq!(docs.count(None, "order:").expect("count"), 3);
        assert_eq!(
            docs.count(Some(&json!({"status": "new"})), "")
                .expect("count"),
            3
        );
        assert_eq!(
            docs.count(Some(&json!({"status": "new"})), "order:")
                .expect("count"),
            2
        );
        assert_eq!(
            docs.count(Some(&json!({"total": {"$gte": 5}})), "")
                .expect("count"),
            2
        );
        assert_eq!(
            docs.count(Some(&json!({"status": "new", "tags": {"$size": 0}})), "")
                .expect("count"),
            1
        );
        assert_eq!(
            docs.distinct("tags", None, "").expect("distinct"),
            [json!("a"), json!("b")]
        );
        assert_eq!(
            docs.distinct("total", Some(&json!({"status": "new"})), "")
                .expect("distinct"),
            [json!(1.0), json!(5)],
            "1 and 1.0 are one value, as first met in key order"
        );
        assert_eq!(
            docs.distinct("status", None, "order:").expect("distinct"),
            [json!("new"), json!("paid")]
        );
        assert!(docs
            .distinct("nope", None, "")
            .expect("distinct")
            .is_empty());
    }
}

#[test]
fn count_on_an_indexed_equality_reads_no_document() {
    let (_dir, path) = temp_db();
    let docs = open(&path);
    fill(&docs);
    docs.create_index("status").expect("index");
    let gets = || docs.database().stats().expect("stats").gets;
    let before = gets();
    assert_eq!(
        docs.count(Some(&json!({"status": "new"})), "")
            .expect("count"),
        3
    );
    assert_eq!(
        docs.count(Some(&json!({"status": {"$in": ["paid", "x"]}})), "")
            .expect("count"),
        1
    );
    assert_eq!(gets(), before, "no document read");
    // A residual condition needs the documents: the counter moves.
    assert_eq!(
        docs.count(Some(&json!({"status": "new", "total": 5})), "")
            .expect("count"),
        1
    );
    assert!(gets() > before);
}

#[test]
fn find_with_an_operator_value_points_to_query() {
    let (_dir, path) = temp_db();
    let docs = open(&path);
    fill(&docs);
    let err = docs.find("total", &json!({"$gt": 3})).unwrap_err();
    assert!(matches!(err, Error::InvalidFilter { .. }), "{err:?}");
    assert!(err.to_string().contains("query("), "{err}");
    // A plain object value is still equality.
    assert_eq!(
        docs.find("who", &json!({"name": "bob"})).expect("find"),
        ["order:2"]
    );
}

#[test]
fn malformed_fields_and_paths_name_the_part() {
    let (_dir, path) = temp_db();
    let docs = open(&path);
    let options = QueryOptions {
        fields: Some(json!(["a", 3])),
        ..QueryOptions::default()
    };
    let err = docs.query_with(&json!({}), &options).unwrap_err();
    assert!(err.to_string().contains("fields[1]"), "{err}");
    let err = docs.distinct("a..b", None, "").unwrap_err();
    assert!(matches!(err, Error::InvalidFilter { .. }), "{err:?}");
}
