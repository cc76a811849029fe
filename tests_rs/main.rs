//! Integration tests for the promises of README "Promises", one module per promise.
//!
//! A single test target (instead of one binary per file) keeps link time low on
//! small CI machines. The helpers below are shared by every module: temporary
//! databases, deterministic JSON values, and a reader for record boundaries.

mod api;
mod background_compaction;
mod backup;
mod check_salvage;
mod compaction_atomic;
mod documents_calls;
mod documents_unique;
mod documents_update;
mod durability;
mod encryption;
mod fault_sweeps;
mod faults;
mod file_identity;
mod follow;
mod format_edges;
mod hints;
mod index_file;
mod indexes;
mod jsonl;
mod lock_second_writer;
mod recovery_torn_tail;
mod shared_lock;
mod sharing;
mod stored_not_json;
mod studio_api;
mod transactions;
mod ttl_expiry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferrumdb::format::{RecordHeader, HEADER_LEN};
use ferrumdb::{Config, Database, Error, FsyncPolicy};

/// A fresh directory and the path of a (not yet existing) database in it.
/// Keep the `TempDir` alive for as long as the path is used.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("test.db");
    (dir, path)
}

/// Writer config for `path`; `Never` keeps tests fast (durability has its own module).
pub fn config(path: &Path) -> Config {
    Config::new()
        .with_path(path)
        .with_fsync_policy(FsyncPolicy::Never)
}

/// Open `path` for writing.
pub fn open(path: &Path) -> Database {
    Database::open(&config(path)).expect("open database for writing")
}

/// Open `path` read-only.
pub fn open_ro(path: &Path) -> Database {
    Database::open(&config(path).with_read_only(true)).expect("open database read-only")
}

/// A JSON document of roughly 60 to 160 bytes that depends on `i`.
pub fn json(i: usize) -> String {
    format!(
        r#"{{"id":{i},"name":"user-{i}","tags":["a","b"],"pad":"{}"}}"#,
        "x".repeat(i % 100)
    )
}

/// Fill `db` with live keys, overwritten keys and deleted keys, so a
/// compaction has both records to keep and records to drop.
pub fn populate(db: &Database, n: usize) -> BTreeMap<String, String> {
    let mut expected = BTreeMap::new();
    for i in 0..n {
        let (k, v) = (format!("key:{i:05}"), json(i));
        db.put_raw(&k, v.as_bytes()).expect("put");
        expected.insert(k, v);
    }
    for i in (0..n).step_by(3) {
        let (k, v) = (format!("key:{i:05}"), json(i + 1));
        db.put_raw(&k, v.as_bytes()).expect("overwrite");
        expected.insert(k, v);
    }
    for i in (0..n).step_by(5) {
        let k = format!("key:{i:05}");
        assert!(db.delete(&k).expect("delete"));
        expected.remove(&k);
    }
    expected
}

/// The stored JSON under `key`, as text.
pub fn get(db: &Database, key: &str) -> Option<String> {
    db.get_raw(key)
        .expect("get")
        .map(|v| String::from_utf8(v.as_bytes().to_vec()).expect("stored value is UTF-8"))
}

/// Every live key and value, in key order, read through the paging API.
pub fn contents(db: &Database) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = db
            .items_page("", after.as_deref(), 500)
            .expect("items_page");
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, v) in page {
            let text = String::from_utf8(v.as_bytes().to_vec()).expect("stored value is UTF-8");
            assert!(
                out.insert(k, text).is_none(),
                "a key appeared twice in a scan"
            );
        }
    }
    assert_eq!(out.len(), db.len(), "scan and len() disagree");
    out
}

/// Offsets of every record in the (intact) log at `path`.
pub fn record_starts(path: &Path) -> Vec<u64> {
    let bytes = std::fs::read(path).expect("read log");
    let mut starts = Vec::new();
    let mut pos = HEADER_LEN;
    while pos < bytes.len() {
        let header = RecordHeader::parse(&bytes[pos..]).expect("intact record header");
        starts.push(pos as u64);
        pos += header.record_len();
    }
    assert_eq!(
        pos,
        bytes.len(),
        "last record runs past the end of the file"
    );
    starts
}

/// `<db>.compact`, the leftover of an interrupted compaction.
pub fn compact_leftover(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".compact");
    PathBuf::from(s)
}

/// Unpack a `Corruption` error, failing the test on anything else.
pub fn expect_corruption(result: ferrumdb::Result<Database>) -> (PathBuf, u64, String) {
    match result {
        Err(Error::Corruption {
            file,
            offset,
            reason,
        }) => (file, offset, reason),
        Err(other) => panic!("expected Error::Corruption, got {other:?}"),
        Ok(db) => panic!("expected Error::Corruption, but the open succeeded: {db:?}"),
    }
}
