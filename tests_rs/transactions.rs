//! Promise: *a transaction is applied whole or not at all, also across a
//! crash*, and a transaction whose reads went stale writes nothing.
//!
//! Crash atomicity is tested by fault injection on the file a committed
//! transaction left: every prefix of its batch record (a crash cut the append
//! at that byte) and zeroed spans inside it (pages that never reached the
//! disk) must reopen to all of its writes or none of them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use ferrumdb::documents::Documents;
use ferrumdb::engine::ReadStamp;
use ferrumdb::format::{RecordHeader, RecordKind};
use ferrumdb::Clock;
use ferrumdb::{Config, Database, Error, FerrumDB, Transaction, WriteBatch};
use serde_json::json;

use crate::{config, contents, get, json, open, record_starts, temp_db};

/// Keys `t0..t{n}` written by one transaction, each to `value`.
fn batch_of(n: usize, value: &str) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for i in 0..n {
        batch
            .put(&format!("t{i}"), value.as_bytes().to_vec())
            .expect("valid write");
    }
    batch
}

fn commit(db: &Database, batch: &WriteBatch) -> ferrumdb::Result<()> {
    db.commit(batch, std::iter::empty::<(&str, &ReadStamp)>())
}

#[test]
fn a_commit_applies_every_write_and_survives_reopen() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("t1", b"\"old\"").expect("put");
    db.put_raw("gone", b"1").expect("put");
    let mut batch = batch_of(3, "\"new\"");
    batch.delete("gone").expect("delete");
    batch.delete("never-existed").expect("delete");
    commit(&db, &batch).expect("commit");
    let want: BTreeMap<String, String> = (0..3)
        .map(|i| (format!("t{i}"), "\"new\"".to_string()))
        .collect();
    assert_eq!(contents(&db), want);
    let stats = db.stats().expect("stats");
    assert_eq!((stats.sets, stats.deletes), (5, 1));
    db.close().expect("close");

    // One batch record on disk after the two plain puts, holding exactly the
    // three puts and the one delete (the delete of a missing key wrote nothing).
    let starts = record_starts(&path);
    assert_eq!(starts.len(), 3);
    let bytes = fs::read(&path).expect("read");
    let last = RecordHeader::parse(&bytes[starts[2] as usize..]).expect("header");
    assert_eq!(last.kind, RecordKind::Batch);
    assert_eq!(contents(&open(&path)), want);
}

#[test]
fn the_last_write_to_a_key_wins_and_an_empty_commit_writes_nothing() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    let mut batch = WriteBatch::new();
    batch.put("k", b"1".to_vec()).expect("put");
    batch.delete("k").expect("delete");
    batch.put("k", b"3".to_vec()).expect("put");
    assert_eq!(batch.len(), 1);
    commit(&db, &batch).expect("commit");
    assert_eq!(get(&db, "k").as_deref(), Some("3"));

    let end = db.stats().expect("stats").file_bytes;
    commit(&db, &WriteBatch::new()).expect("empty commit");
    let mut only_missing = WriteBatch::new();
    only_missing.delete("missing").expect("delete");
    commit(&db, &only_missing).expect("delete of a missing key");
    assert_eq!(db.stats().expect("stats").file_bytes, end);
}

#[test]
fn bad_writes_are_refused_at_the_call_and_leave_the_batch_as_it_was() {
    let mut batch = batch_of(2, "1");
    assert!(matches!(
        batch.put("", b"1".to_vec()),
        Err(Error::InvalidKey { .. })
    ));
    let long_key = "k".repeat(ferrumdb::MAX_KEY_BYTES + 1);
    assert!(matches!(
        batch.delete(&long_key),
        Err(Error::InvalidKey { .. })
    ));
    let huge = vec![b' '; ferrumdb::MAX_VALUE_BYTES + 1];
    assert!(matches!(
        batch.put("big", huge),
        Err(Error::InvalidValue { .. })
    ));
    assert!(matches!(
        batch.put_with_ttl("k", b"1".to_vec(), std::time::Duration::ZERO),
        Err(Error::InvalidValue { .. })
    ));
    assert_eq!(batch.len(), 2);
    assert!(batch.get("big").is_none());
}

#[test]
fn a_transaction_over_the_size_limit_is_refused_before_anything_is_written() {
    let mut batch = WriteBatch::new();
    let chunk = vec![b'1'; 200 * 1024 * 1024];
    for i in 0..5 {
        batch
            .put(&format!("k{i}"), chunk.clone())
            .expect("under the limit");
    }
    let err = batch.put("k5", chunk).expect_err("over 1 GiB");
    assert!(err.to_string().contains("1 GiB"), "{err}");
    assert_eq!(batch.len(), 5);
}

/// Build a database whose last record is one committed transaction over keys
/// that already held "old" values. Returns the offset where the batch starts
/// and what the database holds before and after it.
fn committed_batch(path: &Path) -> (u64, BTreeMap<String, String>, BTreeMap<String, String>) {
    let db = open(path);
    for i in 0..6 {
        db.put_raw(&format!("t{i}"), json(i).as_bytes())
            .expect("put");
    }
    db.put_raw("doomed", b"0").expect("put");
    let before = contents(&db);
    let mut batch = batch_of(6, "\"new\"");
    batch.put("fresh", b"[1,2,3]".to_vec()).expect("put");
    batch.delete("doomed").expect("delete");
    commit(&db, &batch).expect("commit");
    let after = contents(&db);
    db.close().expect("close");
    let start = *record_starts(path).last().expect("records");
    (start, before, after)
}

#[test]
fn a_crash_at_any_byte_of_the_commit_leaves_all_or_nothing() {
    let (dir, path) = temp_db();
    let (start, before, after) = committed_batch(&path);
    let full = fs::read(&path).expect("read");
    let cut_path = dir.path().join("cut.db");
    for cut in start as usize..=full.len() {
        fs::write(&cut_path, &full[..cut]).expect("write cut file");
        let db = Database::open(&config(&cut_path))
            .unwrap_or_else(|e| panic!("cut at {cut}: open failed: {e}"));
        let got = contents(&db);
        let want = if cut == full.len() { &after } else { &before };
        assert_eq!(&got, want, "cut at byte {cut} of {}", full.len());
    }
}

#[test]
fn unwritten_pages_inside_the_commit_leave_all_or_nothing() {
    let (dir, path) = temp_db();
    let (start, before, _) = committed_batch(&path);
    let full = fs::read(&path).expect("read");
    let hole_path = dir.path().join("hole.db");
    let len = full.len() - start as usize;
    // Zero spans of several sizes at every position inside the batch, its
    // header included, as if those bytes never reached the file while the
    // ones after them did (a `memcpy` into the mapping may store its first
    // bytes last).
    for span in [1usize, 7, 32, 64, 200] {
        for at in (start as usize..full.len()).step_by(3) {
            let mut bytes = full.clone();
            let end = (at + span).min(full.len());
            if bytes[at..end].iter().all(|&b| b == 0) {
                continue;
            }
            bytes[at..end].fill(0);
            fs::write(&hole_path, &bytes).expect("write");
            let db = Database::open(&config(&hole_path)).unwrap_or_else(|e| {
                panic!("zeroed {at}..{end} of a {len}-byte batch: open failed: {e}")
            });
            assert_eq!(contents(&db), before, "zeroed {at}..{end}");
        }
    }
}

#[test]
fn a_stale_read_makes_the_commit_fail_and_write_nothing() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("counter", b"1").expect("put");
    let stamp = db.read_stamped("counter").expect("read");
    assert_eq!(stamp.value(), Some(&b"1"[..]));
    db.put_raw("counter", b"5").expect("another writer");
    let end = db.stats().expect("stats").file_bytes;

    let mut batch = WriteBatch::new();
    batch.put("counter", b"2".to_vec()).expect("put");
    batch.put("other", b"true".to_vec()).expect("put");
    match db.commit(&batch, [("counter", &stamp)]) {
        Err(Error::TransactionConflict { key }) => assert_eq!(key, "counter"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(get(&db, "counter").as_deref(), Some("5"));
    assert_eq!(get(&db, "other"), None);
    assert_eq!(db.stats().expect("stats").file_bytes, end);

    // Read again, commit: fine.
    let stamp = db.read_stamped("counter").expect("read");
    db.commit(&batch, [("counter", &stamp)])
        .expect("fresh read commits");
    assert_eq!(get(&db, "counter").as_deref(), Some("2"));
}

#[test]
fn reads_of_missing_keys_are_checked_too() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    let stamp = db.read_stamped("slot").expect("read");
    assert_eq!(stamp.value(), None);
    db.put_raw("slot", b"\"taken\"")
        .expect("another writer claims it");
    let mut batch = WriteBatch::new();
    batch.put("slot", b"\"mine\"".to_vec()).expect("put");
    assert!(matches!(
        db.commit(&batch, [("slot", &stamp)]),
        Err(Error::TransactionConflict { .. })
    ));
    // A delete by another writer of a key read as present conflicts as well.
    let stamp = db.read_stamped("slot").expect("read");
    db.delete("slot").expect("delete");
    assert!(matches!(
        db.commit(&batch, [("slot", &stamp)]),
        Err(Error::TransactionConflict { .. })
    ));
}

#[test]
fn an_overwrite_with_the_same_value_still_conflicts() {
    // Between compactions a read is checked by record identity: any write
    // to the key after the read counts, even one that stored the same bytes.
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("k", b"1").expect("put");
    let stamp = db.read_stamped("k").expect("read");
    db.put_raw("k", b"1").expect("same value again");
    assert!(matches!(
        db.commit(&batch_of(1, "2"), [("k", &stamp)]),
        Err(Error::TransactionConflict { .. })
    ));
}

#[test]
fn a_compaction_between_read_and_commit_is_not_a_conflict_unless_the_value_changed() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    for i in 0..50 {
        db.put_raw(&format!("k{i}"), json(i).as_bytes())
            .expect("put");
    }
    db.put_raw("k0", b"\"overwritten\"")
        .expect("garbage for compaction");
    let unchanged = db.read_stamped("k1").expect("read");
    let missing = db.read_stamped("nope").expect("read");
    let changed = db.read_stamped("k2").expect("read");
    db.put_raw("k2", b"\"changed\"").expect("put");
    db.compact().expect("compact");

    let batch = batch_of(1, "true");
    db.commit(&batch, [("k1", &unchanged), ("nope", &missing)])
        .expect("records moved, values did not: commits");
    assert!(matches!(
        db.commit(&batch, [("k2", &changed)]),
        Err(Error::TransactionConflict { .. })
    ));
}

#[test]
fn a_key_that_expired_after_the_read_conflicts() {
    let clock = Clock::manual(1_000_000);
    let (_dir, path) = temp_db();
    let db = Database::open(&config(&path).with_clock(clock.clone())).expect("open");
    db.put_raw_with_ttl("session", b"1", std::time::Duration::from_secs(10))
        .expect("put");
    let stamp = db.read_stamped("session").expect("read");
    clock.advance_ms(11_000);
    assert!(matches!(
        db.commit(&batch_of(1, "1"), [("session", &stamp)]),
        Err(Error::TransactionConflict { .. })
    ));
}

#[test]
fn ttls_in_a_transaction_count_from_the_commit_and_survive_reopen() {
    let clock = Clock::manual(5_000_000);
    let (_dir, path) = temp_db();
    let cfg = config(&path).with_clock(clock.clone());
    let db = Database::open(&cfg).expect("open");
    let mut batch = WriteBatch::new();
    batch
        .put_with_ttl("short", b"1".to_vec(), std::time::Duration::from_secs(5))
        .expect("put");
    batch.put("long", b"2".to_vec()).expect("put");
    clock.advance_ms(100_000);
    commit(&db, &batch).expect("commit");
    assert_eq!(db.ttl("short").expect("ttl"), Some(Some(5.0)));
    db.close().expect("close");

    let db = Database::open(&cfg).expect("reopen");
    assert_eq!(get(&db, "short").as_deref(), Some("1"));
    clock.advance_ms(5_000);
    assert_eq!(get(&db, "short"), None);
    assert_eq!(get(&db, "long").as_deref(), Some("2"));
    db.close().expect("close");
    let db = Database::open(&cfg).expect("reopen after expiry");
    assert_eq!(db.len(), 1);
}

#[test]
fn indexes_follow_commits_live_and_after_reopen() {
    let (_dir, path) = temp_db();
    let docs = Documents::open(open(&path)).expect("documents");
    docs.create_index("role").expect("index");
    let db = docs.database();
    db.put_raw("u1", br#"{"role":"admin"}"#).expect("put");
    db.put_raw("u2", br#"{"role":"user"}"#).expect("put");
    let mut batch = WriteBatch::new();
    batch
        .put("u1", br#"{"role":"user"}"#.to_vec())
        .expect("put");
    batch
        .put("u3", br#"{"role":"admin"}"#.to_vec())
        .expect("put");
    batch.delete("u2").expect("delete");
    commit(db, &batch).expect("commit");
    let admins = docs.find("role", &json!("admin")).expect("find");
    let users = docs.find("role", &json!("user")).expect("find");
    assert_eq!(
        (admins, users),
        (vec!["u3".to_string()], vec!["u1".to_string()])
    );
    docs.close().expect("close");

    let docs = Documents::open(open(&path)).expect("reopen");
    assert_eq!(
        docs.find("role", &json!("admin")).expect("find"),
        vec!["u3"]
    );
    assert_eq!(docs.find("role", &json!("user")).expect("find"), vec!["u1"]);
}

#[test]
fn watchers_see_each_write_of_a_commit() {
    let docs = Documents::open(Database::open(&Config::new().in_memory()).expect("open"))
        .expect("documents");
    let db = docs.database();
    db.put_raw("a", b"0").expect("put");
    let watch = docs.watch("").expect("watch");
    let mut batch = batch_of(2, "7");
    batch.delete("a").expect("delete");
    commit(db, &batch).expect("commit");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let change = match watch.try_recv() {
            ferrumdb::documents::Recv::Change(c) => c,
            other => panic!("expected a change, got {other:?}"),
        };
        seen.push((format!("{:?}", change.op), change.key.to_string()));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("Delete".to_string(), "a".to_string()),
            ("Set".to_string(), "t0".to_string()),
            ("Set".to_string(), "t1".to_string()),
        ]
    );
}

#[test]
fn increments_from_many_threads_with_retry_lose_no_update() {
    const THREADS: usize = 4;
    const EACH: usize = 250;
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("counter", b"0").expect("put");
    let conflicts = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (db, conflicts, start) = (db.clone(), conflicts.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..EACH {
                    loop {
                        let stamp = db.read_stamped("counter").expect("read");
                        let n: u64 = serde_json::from_slice(stamp.value().expect("present"))
                            .expect("a number");
                        let mut batch = WriteBatch::new();
                        batch
                            .put("counter", (n + 1).to_string().into_bytes())
                            .expect("put");
                        match db.commit(&batch, [("counter", &stamp)]) {
                            Ok(()) => break,
                            Err(Error::TransactionConflict { .. }) => {
                                conflicts.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("commit failed: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let want = (THREADS * EACH).to_string();
    assert_eq!(get(&db, "counter").as_deref(), Some(want.as_str()));
    db.close().expect("close");
    assert_eq!(get(&open(&path), "counter").as_deref(), Some(want.as_str()));
    eprintln!("{} conflicts retried", conflicts.load(Ordering::Relaxed));
}

#[test]
fn the_rust_api_builder_commits_and_reports_bad_writes() {
    let (_dir, path) = temp_db();
    let db = FerrumDB::open(config(&path)).expect("open");
    ferrumdb::block_on(async {
        db.set("gone", &json!(1)).await?;
        db.create_index("n").await?;
        let tx = Transaction::new()
            .set("a", &json!({"n": 1}))
            .set("b", &json!({"n": 1}))
            .delete("gone");
        db.commit(tx).await?;
        assert_eq!(db.get("gone").await?, None);
        assert_eq!(db.find("n", &json!(1)).await?, vec!["a", "b"]);
        let bad = Transaction::new().set("c", &json!(1)).set("", &json!(2));
        assert!(matches!(
            db.commit(bad).await,
            Err(Error::InvalidKey { .. })
        ));
        assert_eq!(
            db.get("c").await?,
            None,
            "nothing of a bad transaction is written"
        );
        db.close().await
    })
    .expect("rust api");
}

#[test]
fn a_damaged_commit_followed_by_later_writes_is_corruption_not_a_tail() {
    let (_dir, path) = temp_db();
    let (start, ..) = committed_batch(&path);
    let db = open(&path);
    db.put_raw("later", b"1").expect("a write after the commit");
    db.close().expect("close");
    let mut bytes = fs::read(&path).expect("read");
    let inner = start as usize + ferrumdb::format::RECORD_HEADER_LEN + 40;
    bytes[inner] ^= 0x01;
    fs::write(&path, &bytes).expect("write");
    let (_, offset, _) = crate::expect_corruption(Database::open(&config(&path)));
    assert_eq!(offset, start);
}

// -- encrypted databases: a transaction is sealed whole as one envelope -----------

fn encrypted(path: &Path) -> Database {
    Database::open(&config(path).with_encryption([7u8; 32])).expect("open encrypted")
}

#[test]
fn an_encrypted_commit_reads_back_survives_reopen_compaction_and_rekey() {
    let (_dir, path) = temp_db();
    let db = encrypted(&path);
    db.put_raw("solo", b"0").expect("put");
    let mut batch = batch_of(5, "\"sealed\"");
    batch.delete("solo").expect("delete");
    commit(&db, &batch).expect("commit");
    let want = contents(&db);
    assert_eq!(want.len(), 5);
    // Nothing of it in the clear.
    let raw = fs::read(&path).expect("read");
    assert!(!raw.windows(8).any(|w| w == b"\"sealed\""));
    db.close().expect("close");

    let db = encrypted(&path);
    assert_eq!(contents(&db), want);
    // A compaction copies each record of the transaction on its own.
    db.put_raw("t0", b"\"changed\"").expect("overwrite one");
    let want = contents(&db);
    db.compact().expect("compact");
    assert_eq!(contents(&db), want);
    db.rekey(&ferrumdb::EncryptionKey::from([8u8; 32]))
        .expect("rekey");
    assert_eq!(contents(&db), want);
    db.close().expect("close");
    let db = Database::open(&config(&path).with_encryption([8u8; 32])).expect("new key");
    assert_eq!(contents(&db), want);
    assert!(
        !ferrumdb::storage::hint_path(&path).exists(),
        "no hints for encrypted files"
    );
}

#[test]
fn encrypting_a_plain_database_with_transactions_keeps_them() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    commit(&db, &batch_of(4, "1")).expect("commit before");
    db.compact().expect("plain compaction");
    // A plain hint beside it (a close writes one for a big log), which the
    // encryption must not leave behind.
    std::fs::write(ferrumdb::storage::hint_path(&path), b"plain hint").expect("hint");
    commit(&db, &batch_of(6, "2")).expect("commit after");
    let want = contents(&db);
    db.rekey(&ferrumdb::EncryptionKey::from([3u8; 32]))
        .expect("encrypt");
    assert!(
        !ferrumdb::storage::hint_path(&path).exists(),
        "the plain hint is gone"
    );
    assert_eq!(contents(&db), want);
    db.close().expect("close");
    let db = Database::open(&config(&path).with_encryption([3u8; 32])).expect("open");
    assert_eq!(contents(&db), want);
}

#[test]
fn a_crash_at_any_byte_of_an_encrypted_commit_leaves_all_or_nothing() {
    let (dir, path) = temp_db();
    let db = encrypted(&path);
    db.put_raw("t1", b"\"old\"").expect("put");
    let before = contents(&db);
    commit(&db, &batch_of(3, "\"new\"")).expect("commit");
    let after = contents(&db);
    db.close().expect("close");
    let full = fs::read(&path).expect("read");
    let start = full.len() - 3 * 40 - 60; // somewhere inside the last envelope
    let cut_path = dir.path().join("cut.db");
    for cut in start..=full.len() {
        fs::write(&cut_path, &full[..cut]).expect("write");
        let got = contents(&encrypted(&cut_path));
        assert!(
            got == before || got == after,
            "cut at {cut}: a partial transaction"
        );
        assert_eq!(got == after, cut == full.len(), "cut at {cut}");
    }
}
