//! `backup`: a consistent snapshot while writers keep writing; the copy opens
//! and verifies; bad destinations are refused and leave everything as it was.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ferrumdb::engine::ReadStamp;
use ferrumdb::{Config, Database, Error, WriteBatch};

use crate::{contents, json, open, open_ro, temp_db};

#[test]
fn a_backup_holds_everything_and_opens_on_its_own() {
    let (dir, path) = temp_db();
    let db = open(&path);
    for i in 0..500 {
        db.put_raw(&format!("k{i}"), json(i).as_bytes())
            .expect("put");
    }
    db.delete("k7").expect("delete");
    db.put_meta("index:x", b"{}").expect("meta");
    let dest = dir.path().join("copy.db");
    let mut calls = Vec::new();
    let bytes = db
        .backup_with_progress(&dest, &mut |done, total| calls.push((done, total)))
        .expect("backup");
    assert_eq!(bytes, fs::metadata(&dest).expect("copy").len());
    assert_eq!(calls.last(), Some(&(bytes, bytes)));
    let copy = open(&dest);
    assert_eq!(contents(&copy), contents(&db));
    assert_eq!(copy.meta_entries("index:").expect("meta").len(), 1);
    // The copy is independent: writing it changes nothing in the source.
    copy.put_raw("only-in-copy", b"1").expect("put");
    assert!(db.get_raw("only-in-copy").expect("get").is_none());
}

#[test]
fn backups_taken_during_transfers_always_balance() {
    // Writers move amounts between accounts in transactions; every backup
    // taken meanwhile must be one consistent state: the total is unchanged.
    const ACCOUNTS: usize = 10;
    let (dir, path) = temp_db();
    let db = open(&path);
    for a in 0..ACCOUNTS {
        db.put_raw(&format!("acct:{a}"), b"100").expect("put");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0usize;
            // Bounded, so the log stays small in a debug build.
            while !stop.load(Ordering::Relaxed) && i < 40_000 {
                let (from, to) = (
                    format!("acct:{}", i % ACCOUNTS),
                    format!("acct:{}", (i * 7 + 3) % ACCOUNTS),
                );
                i += 1;
                if from == to {
                    continue;
                }
                let (a, b) = (
                    db.read_stamped(&from).expect("read"),
                    db.read_stamped(&to).expect("read"),
                );
                let num = |s: &ReadStamp| -> i64 {
                    serde_json::from_slice(s.value().expect("present")).expect("number")
                };
                let mut batch = WriteBatch::new();
                batch
                    .put(&from, (num(&a) - 1).to_string().into_bytes())
                    .expect("put");
                batch
                    .put(&to, (num(&b) + 1).to_string().into_bytes())
                    .expect("put");
                match db.commit(&batch, [(from.as_str(), &a), (to.as_str(), &b)]) {
                    Ok(()) | Err(Error::TransactionConflict { .. }) => {}
                    Err(e) => panic!("commit: {e}"),
                }
            }
            i
        })
    };
    for round in 0..5 {
        let dest = dir.path().join(format!("b{round}.db"));
        db.backup(&dest).expect("backup");
        let copy = open_ro(&dest);
        let total: i64 = contents(&copy)
            .values()
            .map(|v| v.parse::<i64>().expect("number"))
            .sum();
        assert_eq!(
            total,
            100 * ACCOUNTS as i64,
            "backup {round} is not one consistent state"
        );
    }
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().expect("writer") > 0);
}

#[test]
fn an_in_memory_database_can_be_backed_up_to_a_file() {
    let (_dir, path) = temp_db();
    let mem = Database::open(&Config::new().in_memory()).expect("open");
    mem.put_raw("a", b"[1]").expect("put");
    mem.backup(&path).expect("backup");
    assert_eq!(crate::get(&open(&path), "a").as_deref(), Some("[1]"));
}

#[test]
fn bad_destinations_are_refused_and_leave_files_alone() {
    let (dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("a", b"1").expect("put");
    let before = contents(&db);
    assert!(
        matches!(db.backup(&path), Err(Error::InvalidConfig(_))),
        "onto itself"
    );

    let other_path = dir.path().join("other.db");
    let other = open(&other_path);
    other.put_raw("theirs", b"1").expect("put");
    match db.backup(&other_path) {
        Err(Error::InvalidConfig(msg)) => assert!(msg.contains("open for writing"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(crate::get(&other, "theirs").as_deref(), Some("1"));

    let missing_dir = dir.path().join("no-such-dir").join("b.db");
    assert!(matches!(db.backup(&missing_dir), Err(Error::Io { .. })));
    assert!(!dir.path().join("no-such-dir").exists());

    db.close().expect("close");
    assert!(matches!(
        db.backup(&dir.path().join("late.db")),
        Err(Error::Closed)
    ));
    assert_eq!(contents(&open(&path)), before);
}

#[test]
fn an_existing_backup_is_replaced_whole() {
    let (dir, path) = temp_db();
    let dest = dir.path().join("copy.db");
    let db = open(&path);
    db.put_raw("v", b"1").expect("put");
    db.backup(&dest).expect("first");
    db.put_raw("v", b"2").expect("put");
    db.backup(&dest).expect("second");
    assert_eq!(crate::get(&open_ro(&dest), "v").as_deref(), Some("2"));
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("tmp-backup"))
        .collect();
    assert!(leftovers.is_empty());
}
