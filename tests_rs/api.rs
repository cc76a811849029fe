//! Promise: the Rust API keeps its documented contract — the async
//! `ferrumdb::FerrumDB` facade stores and returns JSON documents, rejects what
//! it documents it rejects with the documented `Error` variant (`Closed`,
//! `ReadOnly`, `InvalidKey`, `InvalidValue`), pages keys in order with prefix
//! and cursor, reports stats that move with each operation, and an in-memory
//! database behaves like a file-backed one (compaction included).

use serde_json::{json, Value};

use ferrumdb::format::{HEADER_LEN, RECORD_HEADER_LEN};
use ferrumdb::{block_on, Config, Error, FerrumDB, FsyncPolicy, MAX_KEY_BYTES, MAX_VALUE_BYTES};

use crate::temp_db;

/// Run `check` against a file-backed and an in-memory database.
fn each_backend(check: impl Fn(&FerrumDB, &str)) {
    let (_dir, path) = temp_db();
    let disk = FerrumDB::open(
        Config::new()
            .with_path(&path)
            .with_fsync_policy(FsyncPolicy::Never),
    )
    .expect("open file database");
    check(&disk, "file");
    block_on(disk.close()).expect("close");

    let mem = FerrumDB::open(Config::new().in_memory()).expect("open in-memory database");
    assert_eq!(mem.database().path(), None);
    check(&mem, "memory");
    block_on(mem.close()).expect("close");
}

fn set(db: &FerrumDB, k: &str, v: &Value) {
    block_on(db.set(k, v)).unwrap_or_else(|e| panic!("set {k:?}: {e}"));
}

fn get(db: &FerrumDB, k: &str) -> Option<Value> {
    block_on(db.get(k)).unwrap_or_else(|e| panic!("get {k:?}: {e}"))
}

fn record_len(key: &str, value: &Value) -> u64 {
    (RECORD_HEADER_LEN + key.len() + serde_json::to_vec(value).expect("json").len()) as u64
}

#[test]
fn set_get_delete_round_trip() {
    each_backend(|db, kind| {
        let docs = [
            json!(null),
            json!(true),
            json!(-17),
            json!(1.5e300),
            json!("text with \"quotes\", \\ and ünïcödé ✓"),
            json!([1, [2, [3]], {"a": null}]),
            json!({"name": "alice", "age": 30, "tags": ["x"], "nested": {"deep": {"er": []}}}),
        ];
        for (i, doc) in docs.iter().enumerate() {
            set(db, &format!("doc:{i}"), doc);
        }
        for (i, doc) in docs.iter().enumerate() {
            assert_eq!(get(db, &format!("doc:{i}")).as_ref(), Some(doc), "{kind}");
        }
        assert_eq!(get(db, "missing"), None, "{kind}");
        set(db, "doc:0", &json!({"replaced": true}));
        assert_eq!(get(db, "doc:0"), Some(json!({"replaced": true})), "{kind}");
        assert!(block_on(db.delete("doc:0")).expect("delete"), "{kind}");
        assert!(
            !block_on(db.delete("doc:0")).expect("delete again"),
            "{kind}"
        );
        assert_eq!(get(db, "doc:0"), None, "{kind}");
        // Unicode keys, and the clone shares the database.
        let clone = db.clone();
        set(&clone, "ключ/🔑", &json!(1));
        assert_eq!(get(db, "ключ/🔑"), Some(json!(1)), "{kind}");
        assert!(db.database().contains("ключ/🔑").expect("contains"));
        block_on(db.flush()).expect("flush");
    });
}

#[test]
fn file_database_persists_across_reopen() {
    let (_dir, path) = temp_db();
    let cfg = Config::new().with_path(&path);
    let db = FerrumDB::open(cfg.clone()).expect("open");
    set(&db, "a", &json!({"x": [1, 2]}));
    set(&db, "b", &json!("two"));
    assert!(block_on(db.delete("b")).expect("delete"));
    block_on(db.close()).expect("close");
    let db = FerrumDB::open(cfg).expect("reopen");
    assert_eq!(get(&db, "a"), Some(json!({"x": [1, 2]})));
    assert_eq!(get(&db, "b"), None);
    block_on(db.close()).expect("close");
}

#[test]
fn closed_handle_returns_closed() {
    each_backend(|db, kind| {
        set(db, "k", &json!(1));
        let clone = db.clone();
        block_on(db.close()).expect("close");
        block_on(db.close()).expect("second close is a no-op");
        for h in [db, &clone] {
            assert!(
                matches!(block_on(h.set("k", &json!(2))), Err(Error::Closed)),
                "{kind}"
            );
            assert!(matches!(block_on(h.get("k")), Err(Error::Closed)), "{kind}");
            assert!(
                matches!(block_on(h.delete("k")), Err(Error::Closed)),
                "{kind}"
            );
            assert!(
                matches!(block_on(h.compact()), Err(Error::Closed)),
                "{kind}"
            );
            assert!(matches!(block_on(h.flush()), Err(Error::Closed)), "{kind}");
            let d = h.database();
            assert!(d.is_closed());
            assert!(matches!(d.stats(), Err(Error::Closed)), "{kind}");
            assert!(matches!(d.contains("k"), Err(Error::Closed)), "{kind}");
            assert!(
                matches!(d.keys_page("", None, 10), Err(Error::Closed)),
                "{kind}"
            );
            assert!(
                matches!(d.items_page("", None, 10), Err(Error::Closed)),
                "{kind}"
            );
            assert!(matches!(d.put_raw("k", b"1"), Err(Error::Closed)), "{kind}");
        }
    });
}

#[test]
fn read_only_handle_returns_read_only() {
    let (_dir, path) = temp_db();
    let writer = FerrumDB::open(Config::new().with_path(&path)).expect("open");
    set(&writer, "k", &json!({"v": 1}));
    block_on(writer.close()).expect("close");

    let ro = FerrumDB::open(Config::new().with_path(&path).with_read_only(true))
        .expect("open read-only");
    assert_eq!(get(&ro, "k"), Some(json!({"v": 1})));
    assert!(matches!(
        block_on(ro.set("k", &json!(2))),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(
        block_on(ro.set("new", &json!(2))),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(block_on(ro.delete("k")), Err(Error::ReadOnly)));
    assert!(matches!(block_on(ro.compact()), Err(Error::ReadOnly)));
    block_on(ro.flush()).expect("flush of a reader is a no-op");
    assert_eq!(
        get(&ro, "k"),
        Some(json!({"v": 1})),
        "refused writes changed nothing"
    );
    block_on(ro.close()).expect("close");

    let mem_ro = FerrumDB::open(Config::new().in_memory().with_read_only(true)).expect("open");
    assert!(matches!(
        block_on(mem_ro.set("k", &json!(1))),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(block_on(mem_ro.compact()), Err(Error::ReadOnly)));
}

#[test]
fn invalid_keys_are_rejected() {
    each_backend(|db, kind| {
        let too_long = "k".repeat(MAX_KEY_BYTES + 1);
        // Multi-byte characters count in bytes: 32768 two-byte chars is the limit.
        let too_long_utf8 = format!("{}a", "é".repeat(MAX_KEY_BYTES / 2));
        for bad in ["", too_long.as_str(), too_long_utf8.as_str()] {
            assert!(
                matches!(
                    block_on(db.set(bad, &json!(1))),
                    Err(Error::InvalidKey { .. })
                ),
                "{kind}: set with a {}-byte key",
                bad.len()
            );
            assert!(
                matches!(block_on(db.delete(bad)), Err(Error::InvalidKey { .. })),
                "{kind}: delete with a {}-byte key",
                bad.len()
            );
        }
        let msg = block_on(db.set("", &json!(1)))
            .expect_err("empty key")
            .to_string();
        assert!(msg.contains("non-empty"), "{msg}");
        // Exactly at the limit is fine.
        for ok in ["k".repeat(MAX_KEY_BYTES), "é".repeat(MAX_KEY_BYTES / 2)] {
            set(db, &ok, &json!("edge"));
            assert_eq!(get(db, &ok), Some(json!("edge")), "{kind}");
        }
        assert_eq!(db.database().len(), 2, "{kind}: a rejected key was stored");
    });
}

#[test]
fn oversized_value_is_rejected() {
    each_backend(|db, kind| {
        let engine = db.database();
        let before = engine.stats().expect("stats");
        // Zeroed allocations are lazily mapped: this costs no 256 MiB of writes.
        let huge = vec![0u8; MAX_VALUE_BYTES + 1];
        match engine.put_raw("big", &huge) {
            Err(Error::InvalidValue { path, reason }) => {
                assert_eq!(path, "$");
                assert!(reason.contains("256 MiB"), "{reason}");
            }
            other => panic!("{kind}: expected InvalidValue, got {other:?}"),
        }
        drop(huge);
        let after = engine.stats().expect("stats");
        assert_eq!(
            (after.sets, after.file_bytes, after.keys),
            (before.sets, before.file_bytes, before.keys),
            "{kind}"
        );
        assert_eq!(get(db, "big"), None);
    });
}

#[test]
fn keys_and_items_page_in_order_with_prefix_and_cursor() {
    each_backend(|db, kind| {
        let keys = [
            "user:10", "user:2", "order:1", "user:1", "user;", "users", "user:", "a", "user:3",
        ];
        for (i, k) in keys.iter().enumerate() {
            set(db, k, &json!({"k": k, "i": i}));
        }
        let d = db.database();
        let mut all: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        all.sort();
        assert_eq!(d.keys_page("", None, 100).expect("page"), all, "{kind}");
        let users = vec!["user:", "user:1", "user:10", "user:2", "user:3"];
        assert_eq!(
            d.keys_page("user:", None, 100).expect("page"),
            users,
            "{kind}"
        );
        assert_eq!(
            d.keys_page("user:", None, 2).expect("page"),
            users[..2],
            "{kind}"
        );
        assert_eq!(
            d.keys_page("user:", Some("user:10"), 2).expect("page"),
            users[3..5],
            "{kind}"
        );
        assert_eq!(
            d.keys_page("user:", Some("user:3"), 10).expect("page"),
            Vec::<String>::new()
        );
        // A cursor before the prefix starts at the prefix; one after it is empty;
        // a cursor that is not a key resumes at the next key.
        assert_eq!(
            d.keys_page("user:", Some("a"), 100).expect("page"),
            users,
            "{kind}"
        );
        assert_eq!(
            d.keys_page("user:", Some("zzz"), 100).expect("page"),
            Vec::<String>::new()
        );
        assert_eq!(
            d.keys_page("user:", Some("user:15"), 100).expect("page"),
            users[3..],
            "{kind}"
        );
        assert_eq!(
            d.keys_page("", None, 0).expect("page"),
            Vec::<String>::new()
        );
        assert_eq!(
            d.keys_page("nope", None, 10).expect("page"),
            Vec::<String>::new()
        );

        // Paging through everything with the cursor visits each key once, in order.
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = d.keys_page("", after.as_deref(), 2).expect("page");
            if page.is_empty() {
                break;
            }
            after = page.last().cloned();
            paged.extend(page);
        }
        assert_eq!(paged, all, "{kind}");

        let items = d.items_page("user:", Some("user:1"), 100).expect("items");
        let got: Vec<(String, Value)> = items
            .into_iter()
            .map(|(k, v)| (k, serde_json::from_slice(v.as_bytes()).expect("json")))
            .collect();
        let want: Vec<(String, Value)> = users[2..]
            .iter()
            .map(|k| {
                let i = keys.iter().position(|x| x == k).expect("known key");
                (k.to_string(), json!({"k": k, "i": i}))
            })
            .collect();
        assert_eq!(got, want, "{kind}");

        // Deleted keys disappear from pages.
        assert!(block_on(db.delete("user:1")).expect("delete"));
        assert_eq!(
            d.keys_page("user:", None, 100).expect("page"),
            ["user:", "user:10", "user:2", "user:3"],
            "{kind}"
        );
    });
}

#[test]
fn stats_move_with_each_operation() {
    each_backend(|db, kind| {
        let d = db.database();
        let header = HEADER_LEN as u64;
        let s = d.stats().expect("stats");
        assert_eq!((s.keys, s.sets, s.gets, s.deletes), (0, 0, 0, 0), "{kind}");
        assert_eq!((s.file_bytes, s.live_bytes), (header, header), "{kind}");
        assert!(s.uptime_s >= 0.0 && s.ops_per_sec >= 0.0);

        let v1 = json!({"n": 1});
        set(db, "a", &v1);
        let s = d.stats().expect("stats");
        let a1 = record_len("a", &v1);
        assert_eq!((s.keys, s.sets), (1, 1), "{kind}");
        assert_eq!(
            (s.file_bytes, s.live_bytes),
            (header + a1, header + a1),
            "{kind}"
        );

        let v2 = json!({"n": 2, "more": "data"});
        set(db, "a", &v2);
        set(db, "b", &v1);
        let (a2, b1) = (record_len("a", &v2), record_len("b", &v1));
        let s = d.stats().expect("stats");
        assert_eq!((s.keys, s.sets), (2, 3), "{kind}");
        assert_eq!(s.file_bytes, header + a1 + a2 + b1, "{kind}");
        assert_eq!(
            s.live_bytes,
            header + a2 + b1,
            "{kind}: overwrite not counted dead"
        );

        assert_eq!(get(db, "a"), Some(v2.clone()));
        assert_eq!(get(db, "nope"), None);
        assert_eq!(
            d.stats().expect("stats").gets,
            2,
            "{kind}: misses count as gets"
        );

        assert!(block_on(db.delete("a")).expect("delete"));
        assert!(!block_on(db.delete("a")).expect("delete missing"));
        let tombstone = (RECORD_HEADER_LEN + 1) as u64;
        let s = d.stats().expect("stats");
        assert_eq!(
            (s.keys, s.deletes),
            (1, 1),
            "{kind}: only real deletes count"
        );
        assert_eq!(s.file_bytes, header + a1 + a2 + b1 + tombstone, "{kind}");
        assert_eq!(s.live_bytes, header + b1, "{kind}");

        block_on(db.compact()).expect("compact");
        let s = d.stats().expect("stats");
        assert_eq!((s.keys, s.sets, s.gets, s.deletes), (1, 3, 2, 1), "{kind}");
        assert_eq!(
            (s.file_bytes, s.live_bytes),
            (header + b1, header + b1),
            "{kind}"
        );
        assert_eq!(get(db, "b"), Some(v1.clone()), "{kind}");
    });
}

#[test]
fn compaction_keeps_data_on_both_backends() {
    each_backend(|db, kind| {
        for i in 0..300 {
            set(
                db,
                &format!("k{i:03}"),
                &json!({"i": i, "pad": "x".repeat(50)}),
            );
        }
        for i in 0..300 {
            if i % 2 == 0 {
                set(db, &format!("k{i:03}"), &json!({"i": i, "v": 2}));
            } else if i % 3 == 0 {
                assert!(block_on(db.delete(&format!("k{i:03}"))).expect("delete"));
            }
        }
        let before = db.database().stats().expect("stats");
        block_on(db.compact()).expect("compact");
        let after = db.database().stats().expect("stats");
        assert!(
            after.file_bytes < before.file_bytes,
            "{kind}: nothing reclaimed"
        );
        assert_eq!(after.file_bytes, after.live_bytes, "{kind}");
        for i in 0..300 {
            let want = if i % 2 == 0 {
                Some(json!({"i": i, "v": 2}))
            } else if i % 3 == 0 {
                None
            } else {
                Some(json!({"i": i, "pad": "x".repeat(50)}))
            };
            assert_eq!(get(db, &format!("k{i:03}")), want, "{kind}: k{i:03}");
        }
        // Writes after compaction, and a second compaction.
        set(db, "late", &json!([1]));
        block_on(db.compact()).expect("compact again");
        assert_eq!(get(db, "late"), Some(json!([1])), "{kind}");
        assert_eq!(db.database().len(), 300 - 50 + 1, "{kind}");
    });
}

#[test]
fn in_memory_databases_are_independent() {
    let a = FerrumDB::open(Config::new().with_path(":memory:")).expect("open");
    let b = FerrumDB::open(Config::new().in_memory()).expect("open");
    set(&a, "k", &json!("a"));
    assert_eq!(get(&b, "k"), None, "in-memory databases share nothing");
    assert_eq!(a.database().path(), None);
    block_on(a.close()).expect("close");
    let a2 = FerrumDB::open(Config::new().in_memory()).expect("open");
    assert_eq!(
        get(&a2, "k"),
        None,
        "an in-memory database ends with its handle"
    );
}
