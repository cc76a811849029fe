//! Promise: a secondary index is exact after every kind of write (set,
//! overwrite, delete, expiry, compaction), survives reopen, and never changes
//! a query's answer: results with and without indexes are identical.

use std::time::Duration;

use ferrumdb::documents::Documents;
use ferrumdb::{Clock, Database, Error};
use serde_json::{json, Value};

use super::{config, temp_db};

fn put(db: &Database, key: &str, doc: &Value) {
    db.put_raw(key, doc.to_string().as_bytes()).expect("put");
}

fn keys(rows: Vec<ferrumdb::documents::Row>) -> Vec<String> {
    rows.into_iter().map(|r| r.key).collect()
}

#[test]
fn index_follows_every_write_and_survives_reopen() {
    let (_dir, path) = temp_db();
    let clock = Clock::manual(1_800_000_000_000);
    let docs =
        Documents::open(Database::open(&config(&path).with_clock(clock.clone())).expect("open"))
            .expect("docs");
    let db = docs.database().clone();
    put(
        &db,
        "u1",
        &json!({"role": "admin", "tags": ["red", "blue"]}),
    );
    put(&db, "u2", &json!({"role": "user"}));
    assert!(docs.create_index("role").expect("create"));
    assert!(
        !docs.create_index("role").expect("again"),
        "second create is a no-op"
    );
    docs.create_index("tags").expect("create");
    assert_eq!(docs.indexes(), ["role", "tags"]);
    assert_eq!(docs.find("role", &json!("admin")).expect("find"), ["u1"]);
    assert_eq!(docs.find("tags", &json!("red")).expect("find"), ["u1"]);

    put(&db, "u2", &json!({"role": "admin"})); // overwrite
    put(&db, "u3", &json!({"role": "admin", "tags": "red"})); // insert
    assert!(db.delete("u1").expect("delete"));
    db.put_raw_with_ttl("u4", br#"{"role":"admin"}"#, Duration::from_secs(1))
        .expect("ttl put");
    assert_eq!(
        docs.find("role", &json!("admin")).expect("find"),
        ["u2", "u3", "u4"]
    );
    clock.advance_ms(1000);
    assert_eq!(
        docs.find("role", &json!("admin")).expect("find"),
        ["u2", "u3"]
    );
    assert_eq!(docs.find("tags", &json!("red")).expect("find"), ["u3"]);
    db.compact().expect("compact");
    assert_eq!(
        docs.find("role", &json!("admin")).expect("find"),
        ["u2", "u3"]
    );
    assert!(docs.index_memory_bytes() > 0);
    db.close().expect("close");

    let docs = Documents::open(Database::open(&config(&path).with_clock(clock)).expect("reopen"))
        .expect("docs");
    assert_eq!(
        docs.indexes(),
        ["role", "tags"],
        "definitions survive reopen"
    );
    assert_eq!(
        docs.find("role", &json!("admin")).expect("find"),
        ["u2", "u3"]
    );
    let plan = docs.explain(&json!({"role": "admin"})).expect("explain");
    assert_eq!(plan["index"], json!("role"));
    assert_eq!(plan["scan"], json!(false));
    assert_eq!(plan["estimated_rows"], json!(2));
    assert!(docs.drop_index("role").expect("drop"));
    assert!(!docs.drop_index("role").expect("drop again"));
    assert_eq!(
        docs.explain(&json!({"role": "admin"})).expect("explain")["scan"],
        json!(true)
    );
    docs.database().close().expect("close");
    let docs = Documents::open(Database::open(&config(&path)).expect("reopen")).expect("docs");
    assert_eq!(docs.indexes(), ["tags"], "drop is remembered too");
    docs.database().close().expect("close");
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_doc(rng: &mut Rng) -> Value {
    let mut doc = serde_json::Map::new();
    if rng.below(5) > 0 {
        let score = match rng.below(4) {
            0 => json!(rng.below(100)),
            1 => json!(rng.below(100) as f64 + 0.5),
            2 => json!(format!("s{}", rng.below(5))),
            _ => json!([rng.below(100), rng.below(100)]),
        };
        doc.insert("score".into(), score);
    }
    if rng.below(4) > 0 {
        let role = ["admin", "user", "guest"][rng.below(3) as usize];
        doc.insert("role".into(), json!(role));
    }
    if rng.below(2) == 0 {
        let city = ["Paris", "Lyon", "Berlin"][rng.below(3) as usize];
        doc.insert("address".into(), json!({ "city": city }));
    }
    Value::Object(doc)
}

fn random_filter(rng: &mut Rng) -> Value {
    let n = rng.below(100);
    match rng.below(8) {
        0 => {
            let role = ["admin", "user", "guest", "nobody"][rng.below(4) as usize];
            json!({ "role": role })
        }
        1 => json!({"score": {"$gte": n}}),
        2 => json!({"score": {"$gt": n, "$lt": n + 30}}),
        3 => json!({"score": {"$in": [n, n + 1, "s1"]}, "role": "admin"}),
        4 => json!({"address.city": "Paris", "score": {"$lte": n}}),
        5 => json!({"role": {"$ne": "admin"}}),
        6 => json!({"$or": [{"role": "guest"}, {"score": {"$lt": n}}]}),
        _ => json!({"score": {"$exists": rng.below(2) == 0}}),
    }
}

#[test]
fn results_are_identical_with_and_without_indexes() {
    let (_dir, path_a) = temp_db();
    let (_dir2, path_b) = temp_db();
    let plain = Documents::open(Database::open(&config(&path_a)).expect("open")).expect("docs");
    let indexed = Documents::open(Database::open(&config(&path_b)).expect("open")).expect("docs");
    for field in ["score", "role", "address.city"] {
        indexed.create_index(field).expect("index");
    }
    let mut rng = Rng(42);
    for i in 0..400 {
        let key = format!("k{:03}", rng.below(300));
        let doc = random_doc(&mut rng);
        if i % 7 == 0 {
            plain.database().delete(&key).expect("delete");
            indexed.database().delete(&key).expect("delete");
        } else {
            put(plain.database(), &key, &doc);
            put(indexed.database(), &key, &doc);
        }
    }
    let mut used_index = 0;
    for _ in 0..300 {
        let filter = random_filter(&mut rng);
        let a = keys(plain.query(&filter, None, None, 0).expect("query"));
        let b = keys(indexed.query(&filter, None, None, 0).expect("query"));
        assert_eq!(a, b, "filter {filter}");
        if indexed.explain(&filter).expect("explain")["scan"] == json!(false) {
            used_index += 1;
        }
        let sort = json!([["score", -1]]);
        let a = keys(
            plain
                .query(&filter, Some(&sort), Some(5), 2)
                .expect("query"),
        );
        let b = keys(
            indexed
                .query(&filter, Some(&sort), Some(5), 2)
                .expect("query"),
        );
        assert_eq!(a, b, "sorted {filter}");
    }
    assert!(
        used_index > 100,
        "the planner used an index for {used_index} of 300 filters"
    );
    plain.database().close().expect("close");
    indexed.database().close().expect("close");
}

#[test]
fn malformed_filters_name_the_part() {
    let docs = Documents::open(Database::open(&ferrumdb::Config::new().in_memory()).expect("open"))
        .expect("docs");
    for (filter, part) in [
        (json!({"score": {"$between": 1}}), "filter.score.$between"),
        (json!({"tags": {"$in": 5}}), "filter.tags.$in"),
        (json!([1, 2]), "filter"),
    ] {
        match docs.query(&filter, None, None, 0) {
            Err(Error::InvalidFilter { path, .. }) => assert_eq!(path, part, "{filter}"),
            other => panic!("{filter}: expected InvalidFilter, got {other:?}"),
        }
    }
    assert!(matches!(
        docs.create_index(""),
        Err(Error::InvalidFilter { .. })
    ));
    assert!(matches!(
        docs.query(&json!({}), Some(&json!(5)), None, 0),
        Err(Error::InvalidFilter { .. })
    ));
}

#[test]
fn a_database_takes_one_index_layer() {
    let db = Database::open(&ferrumdb::Config::new().in_memory()).expect("open");
    let _docs = Documents::open(db.clone()).expect("first");
    assert!(Documents::open(db).is_err());
}
