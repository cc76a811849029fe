//! README "Promises", many processes: a read-only handle sees what a writer
//! appends after it opened (new keys, overwrites, deletes, transactions,
//! TTLs, index answers and change events), across the writer's compaction
//! too, and a damaged or crafted shared page never makes it crash or serve
//! anything the log does not hold. The writer and the reader are two
//! handles in this process: they meet only through the file and the shared
//! page, exactly as two processes do (tests_py/test_followers.py does the
//! same with real processes).

use std::time::Duration;

use ferrumdb::documents::{ChangeOp, Documents, Recv};
use ferrumdb::engine::ReadStamp;
use ferrumdb::{Config, Database, EncryptionKey, WriteBatch};
use serde_json::json;

use crate::{config, get, open, open_ro, populate, temp_db};

#[test]
fn a_reader_sees_new_keys_overwrites_deletes_and_counts() {
    let (_dir, path) = temp_db();
    let writer = open(&path);
    writer.put_raw("before", b"1").expect("put");
    let reader = open_ro(&path);
    assert!(reader.is_live());
    assert_eq!(reader.len(), 1);

    writer.put_raw("new", b"2").expect("put");
    assert_eq!(get(&reader, "new").as_deref(), Some("2"));
    writer.put_raw("new", b"3").expect("overwrite");
    assert_eq!(get(&reader, "new").as_deref(), Some("3"));
    assert!(writer.delete("before").expect("delete"));
    assert_eq!(get(&reader, "before"), None);
    assert!(!reader.contains("before").expect("contains"));
    assert_eq!(reader.len(), 1);
    assert_eq!(
        reader.keys_page("", None, 10).expect("keys"),
        vec!["new".to_owned()]
    );

    let expected = populate(&writer, 300);
    let mut seen = crate::contents(&reader);
    seen.remove("new");
    assert_eq!(seen, expected);
}

#[test]
fn a_transaction_arrives_whole_and_ttls_hold() {
    let (_dir, path) = temp_db();
    let writer = open(&path);
    let reader = open_ro(&path);
    let mut batch = WriteBatch::new();
    batch.put("a", b"1".to_vec()).expect("put");
    batch.put("b", b"2".to_vec()).expect("put");
    writer
        .commit(&batch, std::iter::empty::<(&str, &ReadStamp)>())
        .expect("commit");
    assert_eq!(get(&reader, "a").as_deref(), Some("1"));
    assert_eq!(get(&reader, "b").as_deref(), Some("2"));

    writer
        .put_raw_with_ttl("t", b"3", Duration::from_secs(3600))
        .expect("put ttl");
    let left = reader
        .ttl("t")
        .expect("ttl")
        .expect("present")
        .expect("expiring");
    assert!(left > 3500.0 && left <= 3600.0, "{left}");
}

#[test]
fn a_reader_follows_the_writer_across_compactions() {
    let (_dir, path) = temp_db();
    let writer = open(&path);
    let expected = populate(&writer, 200);
    let reader = open_ro(&path);
    assert_eq!(crate::contents(&reader), expected);
    // Written after the reader last looked, then compacted away under it.
    writer.put_raw("late", b"\"x\"").expect("put");
    writer.compact().expect("compact");
    writer.put_raw("after", b"\"y\"").expect("put");
    let mut want = expected.clone();
    want.insert("late".into(), "\"x\"".into());
    want.insert("after".into(), "\"y\"".into());
    assert_eq!(crate::contents(&reader), want);
    // Twice more, with writes in between and none at all.
    writer.compact().expect("compact");
    writer.compact().expect("compact");
    assert!(writer.delete("late").expect("delete"));
    want.remove("late");
    assert_eq!(crate::contents(&reader), want);
}

#[test]
fn an_encrypted_reader_follows_a_compaction() {
    let (_dir, path) = temp_db();
    let key = EncryptionKey::from([4u8; 32]);
    let writer = Database::open(&config(&path).with_encryption(key.clone())).expect("open");
    writer.put_raw("a", b"1").expect("put");
    let reader =
        Database::open(&config(&path).with_encryption(key).with_read_only(true)).expect("open ro");
    writer.put_raw("b", b"2").expect("put");
    writer.compact().expect("compact");
    writer.put_raw("c", b"3").expect("put");
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
        assert_eq!(get(&reader, k).as_deref(), Some(v), "{k}");
    }
}

#[test]
fn index_answers_and_change_events_follow_the_writer() {
    let (_dir, path) = temp_db();
    let docs = Documents::open(open(&path)).expect("docs");
    docs.create_index("role").expect("index");
    let writer = docs.database().clone();
    let set = |k: &str, v: serde_json::Value| {
        writer.put_raw(k, v.to_string().as_bytes()).expect("set");
    };
    set("u:1", json!({"role": "admin"}));
    let reader = Documents::open(open_ro(&path)).expect("docs ro");
    let watch = reader.watch("u:").expect("watch");
    set("u:2", json!({"role": "admin"}));
    set("u:1", json!({"role": "user"}));
    assert_eq!(
        reader.find("role", &json!("admin")).expect("find"),
        vec!["u:2".to_owned()]
    );
    assert_eq!(
        reader.find("role", &json!("user")).expect("find"),
        vec!["u:1".to_owned()]
    );
    assert!(writer.delete("u:2").expect("delete"));
    let mut events = Vec::new();
    while events.len() < 3 {
        match watch.recv_timeout(Duration::from_secs(10)) {
            Recv::Change(c) => events.push((c.op, c.key.to_string())),
            other => panic!("expected a change, got {other:?}"),
        }
    }
    assert_eq!(
        events,
        vec![
            (ChangeOp::Set, "u:2".to_owned()),
            (ChangeOp::Set, "u:1".to_owned()),
            (ChangeOp::Delete, "u:2".to_owned()),
        ]
    );
}

#[test]
fn a_damaged_or_crafted_page_is_harmless() {
    let (_dir, path) = temp_db();
    let writer = open(&path);
    writer.put_raw("a", b"1").expect("put");
    let reader = open_ro(&path);
    let page = ferrumdb::storage::shm_path(&path);
    // Garbage in every field, including an end far beyond the file.
    let mut bytes = std::fs::read(&page).expect("page");
    for b in bytes.iter_mut().skip(8) {
        *b = 0x5A;
    }
    bytes[8..16].copy_from_slice(&2u64.to_le_bytes()); // an even counter
    std::fs::write(&page, &bytes).expect("craft");
    assert_eq!(get(&reader, "a").as_deref(), Some("1"));
    // An end past the data, naming the reader's own file: nothing to read there.
    let file_id = ferrumdb::storage::paths::path_id(&path).expect("id");
    bytes[16..24].copy_from_slice(&file_id.0.to_le_bytes());
    bytes[24..32].copy_from_slice(&file_id.1.to_le_bytes());
    bytes[32..40].copy_from_slice(&0u64.to_le_bytes());
    bytes[40..48].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    bytes[8..16].copy_from_slice(&4u64.to_le_bytes());
    std::fs::write(&page, &bytes).expect("craft");
    assert_eq!(get(&reader, "a").as_deref(), Some("1"));
    assert_eq!(reader.len(), 1);
    // The writer's next append publishes the truth again.
    writer.put_raw("b", b"2").expect("put");
    assert_eq!(get(&reader, "b").as_deref(), Some("2"));
}

#[test]
fn a_reader_opened_before_any_writer_follows_the_one_that_comes() {
    let (_dir, path) = temp_db();
    drop(open(&path)); // the file exists, nobody has it open
    let _ = std::fs::remove_file(ferrumdb::storage::shm_path(&path));
    let reader = open_ro(&path);
    assert!(reader.is_live());
    let writer = open(&path);
    writer.put_raw("k", b"1").expect("put");
    assert_eq!(get(&reader, "k").as_deref(), Some("1"));
}

#[test]
fn a_reader_in_a_read_only_directory_is_a_snapshot_and_says_so() {
    let (_dir, path) = temp_db();
    let writer = open(&path);
    writer.put_raw("k", b"1").expect("put");
    // No page can be created or opened: a symlink stands at its name.
    let page = ferrumdb::storage::shm_path(&path);
    std::fs::remove_file(&page).expect("unlink page");
    #[cfg(unix)]
    std::os::unix::fs::symlink("/nonexistent", &page).expect("plant");
    let reader =
        Database::open(&Config::new().with_path(&path).with_read_only(true)).expect("open ro");
    assert!(!reader.is_live());
    assert_eq!(get(&reader, "k").as_deref(), Some("1"));
}
