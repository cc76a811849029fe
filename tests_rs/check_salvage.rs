//! `check` verifies every record and reports damage without stopping at it;
//! salvage rebuilds a database from every intact record around the damage.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use ferrumdb::engine::ReadStamp;
use ferrumdb::storage::check_log;
use ferrumdb::{Database, Error, WriteBatch};

use crate::{contents, json, open, record_starts, temp_db};

/// 20 keys, an overwrite, a delete, an index definition and a transaction.
fn build(path: &Path) -> BTreeMap<String, String> {
    let db = open(path);
    for i in 0..20 {
        db.put_raw(&format!("k{i:02}"), json(i).as_bytes())
            .expect("put");
    }
    db.put_raw("k03", b"\"second version\"").expect("overwrite");
    db.delete("k04").expect("delete");
    db.put_meta("index:name", b"{}").expect("meta");
    let mut batch = WriteBatch::new();
    batch.put("tx:a", b"1".to_vec()).expect("put");
    batch.put("tx:b", b"2".to_vec()).expect("put");
    db.commit(&batch, std::iter::empty::<(&str, &ReadStamp)>())
        .expect("commit");
    let want = contents(&db);
    db.close().expect("close");
    want
}

fn flip(path: &Path, at: u64) {
    let mut bytes = fs::read(path).expect("read");
    bytes[at as usize] ^= 0x40;
    fs::write(path, bytes).expect("write");
}

#[test]
fn a_clean_file_checks_clean() {
    let (_dir, path) = temp_db();
    build(&path);
    let report = check_log(&path, None).expect("check");
    assert!(
        report.is_clean() && report.torn_tail.is_none(),
        "{report:?}"
    );
    // 20 puts + overwrite + delete + meta + one transaction of two.
    assert_eq!(
        (report.records, report.writes, report.transactions),
        (24, 25, 1)
    );
    assert_eq!(report.file_bytes, fs::metadata(&path).expect("meta").len());
}

#[test]
fn damage_in_the_middle_is_reported_and_the_rest_is_checked() {
    let (_dir, path) = temp_db();
    build(&path);
    let starts = record_starts(&path);
    flip(&path, starts[5] + 40);
    flip(&path, starts[12] + 3);
    let report = check_log(&path, None).expect("check");
    let regions: Vec<(u64, u64)> = report.damage.iter().map(|d| (d.offset, d.len)).collect();
    assert_eq!(
        regions,
        vec![
            (starts[5], starts[6] - starts[5]),
            (starts[12], starts[13] - starts[12])
        ]
    );
    assert_eq!(report.records, 22);
    assert!(!report.is_clean());
    // The database itself refuses to open: damage is never served.
    assert!(matches!(
        Database::open(&crate::config(&path)),
        Err(Error::Corruption { .. })
    ));
}

#[test]
fn salvage_recovers_every_intact_record_and_says_what_was_lost() {
    let (dir, path) = temp_db();
    let mut want = build(&path);
    let starts = record_starts(&path);
    flip(&path, starts[7] + 50); // k07's only record
    flip(&path, starts[20] + 33); // the overwrite of k03: the first version comes back
    let before = fs::read(&path).expect("read");
    let out = dir.path().join("salvaged.db");
    let report = Database::salvage(&path, &out, None).expect("salvage");
    assert_eq!(
        fs::read(&path).expect("read"),
        before,
        "the damaged file is left alone"
    );
    assert_eq!(report.check.damage.len(), 2);
    assert_eq!(
        report.check.damaged_bytes(),
        (starts[8] - starts[7]) + (starts[21] - starts[20])
    );
    want.remove("k07");
    want.insert("k03".into(), json(3));
    let db = open(&out);
    assert_eq!(contents(&db), want);
    assert_eq!(report.keys, want.len() as u64);
    assert_eq!(
        db.meta_entries("index:").expect("meta").len(),
        1,
        "index definitions survive"
    );
    assert!(db.get_raw("k04").expect("get").is_none(), "deletes survive");
}

#[test]
fn a_torn_tail_is_not_damage() {
    let (_dir, path) = temp_db();
    build(&path);
    let full = fs::read(&path).expect("read");
    let last = *record_starts(&path).last().expect("records");
    fs::write(&path, &full[..full.len() - 3]).expect("cut");
    let report = check_log(&path, None).expect("check");
    assert!(report.is_clean());
    let tail = report.torn_tail.expect("a torn tail");
    assert_eq!(tail.offset, last);
    assert_eq!(tail.offset + tail.len, full.len() as u64 - 3);
}

#[test]
fn a_damaged_file_header_is_an_error_and_salvage_refuses_existing_files() {
    let (dir, path) = temp_db();
    build(&path);
    let other = dir.path().join("exists.db");
    fs::write(&other, b"").expect("create");
    assert!(matches!(
        Database::salvage(&path, &other, None),
        Err(Error::InvalidConfig(_))
    ));
    flip(&path, 20);
    assert!(matches!(
        check_log(&path, None),
        Err(Error::Corruption { offset: 0, .. })
    ));
    assert!(matches!(
        Database::salvage(&path, &dir.path().join("new.db"), None),
        Err(Error::Corruption { .. })
    ));
}

#[test]
fn encrypted_files_are_checked_salvaged_and_backed_up_with_their_key() {
    let (dir, path) = temp_db();
    let cfg = crate::config(&path).with_encryption([5u8; 32]);
    let key = ferrumdb::EncryptionKey::from([5u8; 32]);
    let db = Database::open(&cfg).expect("open");
    for i in 0..30 {
        db.put_raw(&format!("k{i:02}"), json(i).as_bytes())
            .expect("put");
    }
    let backup = dir.path().join("backup.db");
    db.backup(&backup).expect("backup of an encrypted database");
    let want = contents(&db);
    db.close().expect("close");
    let copy =
        Database::open(&crate::config(&backup).with_encryption([5u8; 32])).expect("open copy");
    assert_eq!(contents(&copy), want);

    assert!(matches!(
        check_log(&path, None),
        Err(Error::Encryption { .. })
    ));
    let report = check_log(&path, Some(&key)).expect("check with key");
    assert!(report.is_clean());
    assert_eq!(report.records, 30);

    // Damage one envelope in the middle: reported, and salvage keeps the rest.
    let size = fs::metadata(&path).expect("meta").len();
    flip(&path, size / 2);
    let report = check_log(&path, Some(&key)).expect("check");
    assert_eq!(report.damage.len(), 1);
    let out = dir.path().join("salvaged.db");
    let salvaged = Database::salvage(&path, &out, Some(&key)).expect("salvage");
    assert_eq!(salvaged.keys, 29);
    let db =
        Database::open(&crate::config(&out).with_encryption([5u8; 32])).expect("open salvaged");
    assert_eq!(db.len(), 29);
    assert!(
        Database::open(&crate::config(&out)).is_err(),
        "the salvaged copy is encrypted too"
    );
}
