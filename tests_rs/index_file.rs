//! Promise: the index file (`PATH.index`) a clean close leaves makes the
//! next open load the indexes instead of parsing every document, and never
//! changes an answer: a stale, damaged, truncated or crafted file, or one
//! built on another hint, is ignored (the indexes are rebuilt), and keys
//! written since the file was made (by this handle before a crash, or by
//! another writer still holding the file), or expired since, are taken
//! into account.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrumdb::documents::Documents;
use ferrumdb::{Clock, Database};
use serde_json::{json, Value};

use super::{config, temp_db};

/// Documents this big make a close leave a hint (past 8 MiB of log), which
/// the index file is built on.
const DOCS: usize = 220;
const PAD: usize = 40_000;

fn index_file(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".index");
    PathBuf::from(s)
}

fn open_docs(path: &Path, clock: &Clock) -> Documents {
    let db = Database::open(&config(path).with_clock(clock.clone())).expect("open");
    Documents::open(db).expect("documents")
}

fn doc(group: u64) -> Value {
    json!({"g": group, "pad": "x".repeat(PAD)})
}

/// A database of `DOCS` documents indexed on `g`, closed; returns the
/// model (key -> group).
fn build(path: &Path, clock: &Clock) -> BTreeMap<String, u64> {
    build_shifted(path, clock, 0)
}

/// [`build`] with every group moved on by `shift` (the same shape: the
/// same keys at the same places, values of the same lengths).
fn build_shifted(path: &Path, clock: &Clock, shift: usize) -> BTreeMap<String, u64> {
    let docs = open_docs(path, clock);
    let mut model = BTreeMap::new();
    for i in 0..DOCS {
        let key = format!("k{i:04}");
        let group = ((i + shift) % 7) as u64;
        docs.database()
            .put_raw(&key, doc(group).to_string().as_bytes())
            .expect("put");
        model.insert(key, group);
    }
    docs.create_index("g").expect("index");
    docs.close().expect("close");
    assert!(
        index_file(path).exists(),
        "a clean close leaves the index file"
    );
    model
}

/// Every group's keys and count answer as the model says.
fn assert_answers(docs: &Documents, model: &BTreeMap<String, u64>) {
    for group in 0..8u64 {
        let want: Vec<String> = model
            .iter()
            .filter(|(_, g)| **g == group)
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(
            docs.find("g", &json!(group)).expect("find"),
            want,
            "g = {group}"
        );
        assert_eq!(
            docs.count(Some(&json!({"g": group})), "").expect("count"),
            want.len()
        );
    }
    let ranged = model.values().filter(|g| (2..5).contains(*g)).count();
    assert_eq!(
        docs.count(Some(&json!({"g": {"$gte": 2, "$lt": 5}})), "")
            .expect("count"),
        ranged
    );
}

#[test]
fn a_reopen_loads_the_index_file_and_answers_as_a_rebuild() {
    let (_dir, path) = temp_db();
    let clock = Clock::manual(1_800_000_000_000);
    let model = build(&path, &clock);
    let docs = open_docs(&path, &clock);
    assert!(docs.opened_with_index_file());
    assert_answers(&docs, &model);
    docs.close().expect("close");
    // Without the file the same answers come from a rebuild.
    std::fs::remove_file(index_file(&path)).expect("remove");
    let docs = open_docs(&path, &clock);
    assert!(!docs.opened_with_index_file());
    assert_answers(&docs, &model);
}

#[test]
fn writes_before_the_first_read_after_a_load_are_indexed() {
    // A loaded index is built on first use; here the first use is a write.
    let (_dir, path) = temp_db();
    let clock = Clock::manual(1_800_000_000_000);
    let mut model = build(&path, &clock);
    let docs = open_docs(&path, &clock);
    assert!(docs.opened_with_index_file());
    let db = docs.database();
    db.put_raw("k0000", doc(6).to_string().as_bytes())
        .expect("move");
    db.delete("k0001").expect("delete");
    db.put_raw("new", doc(3).to_string().as_bytes())
        .expect("add");
    model.insert("k0000".into(), 6);
    model.remove("k0001");
    model.insert("new".into(), 3);
    assert_answers(&docs, &model);
    docs.close().expect("close");
    // The next open loads what this one left, unused indexes included.
    let docs = open_docs(&path, &clock);
    assert!(docs.opened_with_index_file());
    docs.close().expect("close");
    let docs = open_docs(&path, &clock);
    assert!(docs.opened_with_index_file());
    assert_answers(&docs, &model);
}

#[test]
fn damaged_truncated_crafted_or_foreign_files_are_ignored() {
    let (_dir, path) = temp_db();
    let clock = Clock::manual(1_800_000_000_000);
    let model = build(&path, &clock);
    let good = std::fs::read(index_file(&path)).expect("read");
    let mut other_basis = good.clone();
    other_basis[24] ^= 1; // the hint's data_end, header checksum left stale
    let mut crafted = good.clone();
    // A body byte changed with both checksums recomputed is still refused
    // when it breaks the structure (here: a key's length).
    crafted[80 + 4] = 0xff;
    let body_crc = crc32c(&crafted[80..]);
    crafted[64..68].copy_from_slice(&body_crc.to_le_bytes());
    let head_crc = crc32c(&crafted[..72]);
    crafted[72..76].copy_from_slice(&head_crc.to_le_bytes());
    let variants: [(&str, Vec<u8>); 5] = [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("flipped", {
            let mut b = good.clone();
            let at = b.len() - 10;
            b[at] ^= 0x10;
            b
        }),
        ("other basis", other_basis),
        ("crafted", crafted),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in variants {
        std::fs::write(index_file(&path), &bytes).expect("write");
        let docs = open_docs(&path, &clock);
        assert!(!docs.opened_with_index_file(), "{what} file used");
        assert_answers(&docs, &model);
        // Its close writes a good file again.
        docs.close().expect("close");
        let docs = open_docs(&path, &clock);
        assert!(docs.opened_with_index_file(), "after {what}");
        docs.close().expect("close");
    }
}

#[test]
fn a_file_from_another_database_of_the_same_shape_is_refused() {
    // Same keys at the same places and equal hint headers: only the
    // values differ, so the file's own checks all pass; it must still not
    // answer for this database.
    let (_dir, path) = temp_db();
    let (_other_dir, other) = temp_db();
    let clock = Clock::manual(1_800_000_000_000);
    let model = build(&path, &clock);
    build_shifted(&other, &clock, 1);
    let hint = |p: &Path| {
        let mut s = p.as_os_str().to_owned();
        s.push(".hint");
        std::fs::read(PathBuf::from(s)).expect("hint")
    };
    assert_eq!(hint(&path)[..64], hint(&other)[..64], "same shape");
    std::fs::copy(index_file(&other), index_file(&path)).expect("copy");
    let docs = open_docs(&path, &clock);
    assert!(!docs.opened_with_index_file());
    assert_answers(&docs, &model);
}

fn crc32c(bytes: &[u8]) -> u32 {
    // CRC-32C (Castagnoli), bit by bit: test code, independent of the crate.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn writes_after_the_file_by_a_handle_that_never_closed_are_taken_in() {
    let (_dir, path) = temp_db();
    let clock = Clock::manual(1_800_000_000_000);
    let mut model = build(&path, &clock);
    // Another writer opens the file, changes documents and keeps it open
    // (as a process that crashed, or still runs, would): the index file
    // stays the one the close left.
    let other = open_docs(&path, &clock);
    let db = other.database().clone();
    for key in ["k0003", "k0010", "k0100"] {
        db.put_raw(key, doc(7).to_string().as_bytes()).expect("put");
        model.insert(key.to_owned(), 7);
    }
    assert!(db.delete("k0004").expect("delete"));
    model.remove("k0004");
    db.put_raw("new", doc(3).to_string().as_bytes())
        .expect("put");
    model.insert("new".into(), 3);
    // A key whose document loses the field.
    db.put_raw("k0005", br#"{"other": 1}"#).expect("put");
    model.remove("k0005");
    let docs = open_docs(&path, &clock);
    assert!(docs.opened_with_index_file());
    assert_answers(&docs, &model);
    // Both handles still agree after more writes.
    db.put_raw("k0006", doc(0).to_string().as_bytes())
        .expect("put");
    model.insert("k0006".into(), 0);
    assert_answers(&docs, &model);
    assert_answers(&other, &model);
    drop(docs);
    drop(other);
}

#[test]
fn a_file_made_before_a_compaction_is_ignored_and_the_next_close_writes_one() {
    let (_dir, path) = temp_db();
    let clock = Clock::manual(1_800_000_000_000);
    let mut model = build(&path, &clock);
    let stale = std::fs::read(index_file(&path)).expect("read");
    let docs = open_docs(&path, &clock);
    docs.database()
        .put_raw("k0001", doc(5).to_string().as_bytes())
        .expect("put");
    model.insert("k0001".into(), 5);
    docs.database().compact().expect("compact");
    assert!(!index_file(&path).exists(), "compaction removes it");
    // An old file put back names the old file's hint: ignored.
    std::fs::write(index_file(&path), &stale).expect("write");
    docs.close().expect("close");
    let docs = open_docs(&path, &clock);
    assert!(
        docs.opened_with_index_file(),
        "the close after the compaction wrote one"
    );
    assert_answers(&docs, &model);
    docs.close().expect("close");
    // With the stale one back instead, the open rebuilds.
    std::fs::write(index_file(&path), &stale).expect("write");
    let docs = open_docs(&path, &clock);
    assert!(!docs.opened_with_index_file());
    assert_answers(&docs, &model);
}

#[test]
fn keys_expired_since_the_file_was_made_are_not_answered() {
    let (_dir, path) = temp_db();
    let clock = Clock::manual(1_800_000_000_000);
    let mut model = build(&path, &clock);
    let docs = open_docs(&path, &clock);
    docs.database()
        .put_raw_with_ttl(
            "short",
            doc(2).to_string().as_bytes(),
            Duration::from_secs(5),
        )
        .expect("put");
    docs.close().expect("close");
    let with_short = {
        let mut m = model.clone();
        m.insert("short".into(), 2);
        m
    };
    let docs = open_docs(&path, &clock);
    assert!(docs.opened_with_index_file());
    assert_answers(&docs, &with_short);
    docs.close().expect("close");
    clock.advance_ms(10_000);
    let docs = open_docs(&path, &clock);
    assert!(docs.opened_with_index_file());
    assert_answers(&docs, &model);
    model.insert("k0000".into(), 1);
    docs.database()
        .put_raw("k0000", doc(1).to_string().as_bytes())
        .expect("put");
    assert_answers(&docs, &model);
}
