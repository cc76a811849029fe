//! Promise: *encryption at rest* — an encrypted database keeps no user data in
//! the clear, refuses a wrong, missing or unexpected key at open before reading
//! or writing anything, and never serves a record that was altered, moved,
//! duplicated, dropped from the middle or spliced in from another file. Torn
//! tails recover as for plain files; compaction, rekey and encrypting a plain
//! database keep every live record, also when interrupted.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;

use ferrumdb::format::{EnvelopeHeader, FileHeader, ENCRYPTED_HEADER_LEN};
use ferrumdb::storage::fault::FaultPlan;
use ferrumdb::{Clock, Config, Database, EncryptionKey, Error};

use crate::{compact_leftover, config, contents, get, json, open, populate, temp_db};

const KEY: [u8; 32] = [0x5a; 32];
const OTHER_KEY: [u8; 32] = [0xa5; 32];

fn enc_config(path: &Path, key: impl Into<EncryptionKey>) -> Config {
    config(path).with_encryption(key)
}

fn open_enc(path: &Path, key: impl Into<EncryptionKey>) -> Database {
    Database::open(&enc_config(path, key)).expect("open encrypted database")
}

/// Offsets and lengths of every envelope in the (intact) encrypted file.
fn envelopes(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = ENCRYPTED_HEADER_LEN;
    while pos < bytes.len() {
        let h = EnvelopeHeader::parse(&bytes[pos..]).expect("envelope header");
        out.push((pos, h.envelope_len()));
        pos += h.envelope_len();
    }
    assert_eq!(pos, bytes.len(), "last envelope runs past the end");
    out
}

/// Recompute an envelope's crc, as an attacker who knows the format would.
fn fix_crc(bytes: &mut [u8], at: usize, len: usize) {
    let crc = crc32c_sw(&bytes[at + 4..at + len]);
    bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Bitwise CRC32C, independent of the engine's code.
fn crc32c_sw(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A closed encrypted database with `n` records of equal size (so records
/// can be swapped without breaking the framing), and its bytes.
fn equal_records(path: &Path, key: [u8; 32], n: usize) -> Vec<u8> {
    let db = open_enc(path, key);
    for i in 0..n {
        db.put_raw(&format!("k{i:03}"), format!("{{\"v\":{i:03}}}").as_bytes())
            .expect("put");
    }
    db.close().expect("close");
    fs::read(path).expect("read")
}

fn expect_encryption_error(result: ferrumdb::Result<Database>) -> (Option<u64>, String) {
    match result {
        Err(Error::Encryption { offset, reason, .. }) => (offset, reason),
        Err(other) => panic!("expected Error::Encryption, got {other:?}"),
        Ok(db) => panic!("expected Error::Encryption, but the open succeeded: {db:?}"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn round_trip_and_reopen_with_raw_key_and_passphrase() {
    for key in [
        EncryptionKey::from(KEY),
        EncryptionKey::from("correct horse battery staple"),
    ] {
        let (_dir, path) = temp_db();
        let db = open_enc(&path, key.clone());
        let expected = populate(&db, 300);
        assert_eq!(contents(&db), expected);
        db.close().expect("close");

        let header = FileHeader::decode(&fs::read(&path).expect("read")).expect("header");
        assert!(header.encryption.is_some(), "the file is marked encrypted");
        let db = open_enc(&path, key.clone());
        assert_eq!(contents(&db), expected);
        db.put_raw("after", b"1").expect("write after reopen");
        db.close().expect("close");
        let ro = Database::open(&enc_config(&path, key.clone()).with_read_only(true))
            .expect("read-only open with the key");
        assert_eq!(get(&ro, "after").as_deref(), Some("1"));
        assert_eq!(ro.len(), expected.len() + 1);
    }
}

#[test]
fn wrong_key_fails_at_open_and_changes_nothing() {
    let (_dir, path) = temp_db();
    let db = open_enc(&path, KEY);
    populate(&db, 50);
    db.close().expect("close");
    let before = fs::read(&path).expect("read");
    for read_only in [false, true] {
        let (offset, reason) = expect_encryption_error(Database::open(
            &enc_config(&path, OTHER_KEY).with_read_only(read_only),
        ));
        assert_eq!(offset, None);
        assert!(reason.contains("wrong encryption key"), "{reason}");
        let (_, reason) = expect_encryption_error(Database::open(
            &enc_config(&path, "a passphrase").with_read_only(read_only),
        ));
        assert!(reason.contains("raw 32-byte key"), "{reason}");
    }
    assert_eq!(
        fs::read(&path).expect("read"),
        before,
        "a refused open wrote"
    );
    // The right key still works afterwards.
    assert_eq!(open_enc(&path, KEY).len(), 40);
}

#[test]
fn wrong_passphrase_fails_at_open() {
    let (_dir, path) = temp_db();
    open_enc(&path, "right").close().expect("close");
    let (_, reason) = expect_encryption_error(Database::open(&enc_config(&path, "wrong")));
    assert!(reason.contains("wrong encryption key"), "{reason}");
    let (_, reason) = expect_encryption_error(Database::open(&enc_config(&path, KEY)));
    assert!(reason.contains("passphrase"), "{reason}");
}

#[test]
fn missing_key_and_key_on_plain_file_are_clear_errors() {
    let (_dir, path) = temp_db();
    open_enc(&path, KEY).close().expect("close");
    let (_, reason) = expect_encryption_error(Database::open(&config(&path)));
    assert!(reason.contains("is encrypted"), "{reason}");

    let (_dir2, plain) = temp_db();
    let db = open(&plain);
    db.put_raw("k", b"1").expect("put");
    db.close().expect("close");
    let (_, reason) = expect_encryption_error(Database::open(&enc_config(&plain, KEY)));
    assert!(reason.contains("not encrypted"), "{reason}");
    assert!(
        reason.contains("encrypt"),
        "says how to encrypt it: {reason}"
    );
    assert_eq!(get(&open(&plain), "k").as_deref(), Some("1"));
}

#[test]
fn no_user_data_in_plaintext_on_disk() {
    let (_dir, path) = temp_db();
    let clock = Clock::manual(1_700_000_000_000);
    let db = Database::open(&enc_config(&path, KEY).with_clock(clock.clone())).expect("open");
    let docs = ferrumdb::documents::Documents::open(db.clone()).expect("docs");
    docs.create_index("zebrafield").expect("index");
    db.put_raw("secretkey:alpha", br#"{"zebrafield":"marmalade-value"}"#)
        .expect("put");
    let ttl = std::time::Duration::from_millis(123_456_789);
    db.put_raw_with_ttl("expiringkey", br#""ephemeral-text""#, ttl)
        .expect("put ttl");
    let expires = (1_700_000_000_000u64 + 123_456_789).to_le_bytes();
    let check = |bytes: &[u8], when: &str| {
        for needle in [
            &b"secretkey"[..],
            b"marmalade",
            b"zebrafield",
            b"expiringkey",
            b"ephemeral",
            &expires[..6],
        ] {
            assert!(
                !contains(bytes, needle),
                "{when}: {:?} is in the file in the clear",
                String::from_utf8_lossy(needle)
            );
        }
    };
    db.flush().expect("flush");
    check(&fs::read(&path).expect("read"), "after writes");
    db.compact().expect("compact");
    check(&fs::read(&path).expect("read"), "after compaction");
    drop(docs);
    db.close().expect("close");
    check(&fs::read(&path).expect("read"), "after close");
    // And the same data in a plain file is visible, so the check can fail.
    let (_dir2, plain) = temp_db();
    let p = open(&plain);
    p.put_raw("secretkey:alpha", br#"{"zebrafield":"marmalade-value"}"#)
        .expect("put");
    p.close().expect("close");
    assert!(contains(&fs::read(&plain).expect("read"), b"marmalade"));
}

#[test]
fn flipped_byte_in_a_middle_record_is_an_error_naming_the_offset() {
    let (_dir, path) = temp_db();
    let good = equal_records(&path, KEY, 10);
    let envs = envelopes(&good);
    let (at, len) = envs[4];
    for fix in [false, true] {
        let mut bytes = good.clone();
        bytes[at + 30] ^= 0x01;
        if fix {
            fix_crc(&mut bytes, at, len);
        }
        fs::write(&path, &bytes).expect("write");
        let result = Database::open(&enc_config(&path, KEY));
        match (fix, result) {
            // The crc catches plain damage, as in a plain file.
            (false, Err(Error::Corruption { offset, .. })) => assert_eq!(offset, at as u64),
            // With the crc forged, the tag catches it.
            (true, Err(Error::Encryption { offset, .. })) => assert_eq!(offset, Some(at as u64)),
            (fix, other) => panic!("crc fixed: {fix}: unexpected {other:?}"),
        }
        assert_eq!(fs::read(&path).expect("read"), bytes, "nothing was cut");
    }
}

#[test]
fn swapped_records_are_detected() {
    let (_dir, path) = temp_db();
    let good = equal_records(&path, KEY, 10);
    let envs = envelopes(&good);
    let ((a, len), (b, len_b)) = (envs[2], envs[6]);
    assert_eq!(len, len_b, "the test needs records of equal size");
    let mut bytes = good.clone();
    let rec_a = good[a..a + len].to_vec();
    bytes.copy_within(b..b + len, a);
    bytes[b..b + len].copy_from_slice(&rec_a);
    fs::write(&path, &bytes).expect("write");
    let (offset, _) = expect_encryption_error(Database::open(&enc_config(&path, KEY)));
    assert_eq!(offset, Some(a as u64));
}

#[test]
fn duplicated_record_is_detected() {
    let (_dir, path) = temp_db();
    let good = equal_records(&path, KEY, 10);
    let envs = envelopes(&good);
    let (at, len) = envs[3];
    // Replayed right after itself: a second "write" of the same record.
    let mut bytes = good[..at + len].to_vec();
    bytes.extend_from_slice(&good[at..at + len]);
    bytes.extend_from_slice(&good[at + len..]);
    fs::write(&path, &bytes).expect("write");
    let (offset, _) = expect_encryption_error(Database::open(&enc_config(&path, KEY)));
    assert_eq!(offset, Some((at + len) as u64));
    // Replayed at the end, where a new record would go.
    let mut bytes = good.clone();
    bytes.extend_from_slice(&good[at..at + len]);
    fs::write(&path, &bytes).expect("write");
    let (offset, _) = expect_encryption_error(Database::open(&enc_config(&path, KEY)));
    assert_eq!(offset, Some(good.len() as u64));
}

#[test]
fn record_dropped_from_the_middle_is_detected() {
    let (_dir, path) = temp_db();
    let good = equal_records(&path, KEY, 10);
    let envs = envelopes(&good);
    let (at, len) = envs[5];
    let mut bytes = good[..at].to_vec();
    bytes.extend_from_slice(&good[at + len..]);
    fs::write(&path, &bytes).expect("write");
    let (offset, _) = expect_encryption_error(Database::open(&enc_config(&path, KEY)));
    assert_eq!(offset, Some(at as u64));
}

#[test]
fn record_spliced_from_another_database_with_the_same_key_is_detected() {
    let (_dir, path) = temp_db();
    let (_dir2, other) = temp_db();
    let good = equal_records(&path, KEY, 10);
    let theirs = equal_records(&other, KEY, 10);
    let envs = envelopes(&good);
    let (at, len) = envs[4];
    assert_eq!(envelopes(&theirs)[4], (at, len), "same place in both files");
    let mut bytes = good.clone();
    bytes[at..at + len].copy_from_slice(&theirs[at..at + len]);
    fs::write(&path, &bytes).expect("write");
    let (offset, _) = expect_encryption_error(Database::open(&enc_config(&path, KEY)));
    assert_eq!(offset, Some(at as u64));
    // The other file's header (with its key check) does not help either.
    let mut bytes = theirs[..ENCRYPTED_HEADER_LEN].to_vec();
    bytes.extend_from_slice(&good[ENCRYPTED_HEADER_LEN..]);
    fs::write(&path, &bytes).expect("write");
    let (offset, _) = expect_encryption_error(Database::open(&enc_config(&path, KEY)));
    assert_eq!(offset, Some(ENCRYPTED_HEADER_LEN as u64));
}

#[test]
fn tampering_found_at_read_time_is_not_served() {
    let (_dir, path) = temp_db();
    let good = equal_records(&path, KEY, 10);
    let ro = Database::open(&enc_config(&path, KEY).with_read_only(true)).expect("open");
    let envs = envelopes(&good);
    let (at, len) = envs[7];
    let mut bytes = good.clone();
    bytes[at + len - 20] ^= 0x40;
    fix_crc(&mut bytes, at, len);
    fs::write(&path, &bytes).expect("write");
    match ro.get_raw("k007") {
        Err(Error::Encryption { offset, .. }) => assert_eq!(offset, Some(at as u64)),
        other => panic!("expected an encryption error, got {other:?}"),
    }
    assert_eq!(get(&ro, "k006").as_deref(), Some(r#"{"v":006}"#));
}

#[test]
fn torn_tail_of_an_encrypted_file_recovers_like_a_plain_one() {
    let (_dir, path) = temp_db();
    let good = equal_records(&path, KEY, 6);
    let envs = envelopes(&good);
    let (last, len) = *envs.last().expect("records");
    for cut in [1, 4, 8, 19, 20, len / 2, len - 1] {
        fs::write(&path, &good[..last + cut]).expect("write");
        let db = open_enc(&path, KEY);
        assert_eq!(db.len(), 5, "cut {cut}: the last record is dropped");
        assert_eq!(get(&db, "k004").as_deref(), Some(r#"{"v":004}"#));
        db.put_raw("new", b"2").expect("write after recovery");
        db.close().expect("close");
        assert_eq!(get(&open_enc(&path, KEY), "new").as_deref(), Some("2"));
    }
    // Zero slack after the last record (a crash with the mapping preallocated).
    let mut bytes = good.clone();
    bytes.extend_from_slice(&[0u8; 4096]);
    fs::write(&path, &bytes).expect("write");
    assert_eq!(open_enc(&path, KEY).len(), 6);
}

#[test]
fn compaction_keeps_data_and_reseals_under_a_new_file_id() {
    let (_dir, path) = temp_db();
    let db = open_enc(&path, "pass phrase");
    let expected = populate(&db, 400);
    db.flush().expect("flush");
    let before = FileHeader::decode(&fs::read(&path).expect("read")).expect("header");
    db.compact().expect("compact");
    assert_eq!(contents(&db), expected);
    db.put_raw("after", b"3").expect("write after compaction");
    let stats = db.stats().expect("stats");
    db.close().expect("close");
    let bytes = fs::read(&path).expect("read");
    let after = FileHeader::decode(&bytes).expect("header");
    let (b, a) = (
        before.encryption.expect("enc"),
        after.encryption.expect("enc"),
    );
    assert_ne!(b.file_id, a.file_id, "a new file gets a new id");
    assert_eq!(
        b.kdf, a.kdf,
        "same passphrase salt and cost: no new Argon2 run needed"
    );
    assert_eq!(after.generation, before.generation + 1);
    let last = envelopes(&bytes).len();
    assert_eq!(last, expected.len() + 1, "only live records remain");
    assert_eq!(stats.file_bytes, bytes.len() as u64);
    assert_eq!(
        stats.live_bytes, stats.file_bytes,
        "live bytes count envelopes"
    );
    let db = open_enc(&path, "pass phrase");
    let mut want = expected;
    want.insert("after".into(), "3".into());
    assert_eq!(contents(&db), want);
}

/// Durability barriers (file and directory syncs) a rekey of a database
/// like the tests' makes, and with the close after it.
fn rekey_barriers(plain: bool, new_key: &EncryptionKey) -> (u64, u64) {
    let (dir, path) = temp_db();
    let db = if plain {
        open(&path)
    } else {
        open_enc(&path, KEY)
    };
    populate(&db, 200);
    let plan = FaultPlan::arm(dir.path());
    db.rekey(new_key).expect("rekey");
    let rekey = plan.barriers();
    db.close().expect("close");
    (rekey, plan.barriers())
}

#[test]
fn rekey_switches_keys_and_survives_a_power_cut_at_every_step() {
    let (rekey, total) = rekey_barriers(false, &EncryptionKey::from(OTHER_KEY));
    // None: no power cut; Some(n): the power goes at the nth sync (of the
    // rekey, then of the close after it).
    for cut in std::iter::once(None).chain((1..=total).map(Some)) {
        // A passphrase (a fresh salt) once; a raw key keeps the many
        // power-cut runs quick (no key stretching), with the same I/O.
        let new_key = match cut {
            None => EncryptionKey::from("new passphrase"),
            Some(_) => EncryptionKey::from(OTHER_KEY),
        };
        let (dir, path) = temp_db();
        let db = open_enc(&path, KEY);
        let expected = populate(&db, 200);
        let plan = FaultPlan::arm(dir.path());
        let plan = match cut {
            Some(n) => plan.power_cut_at(n),
            None => plan,
        };
        let rekeyed = db.rekey(&new_key);
        let mut want = expected.clone();
        match cut {
            None => {
                rekeyed.expect("rekey");
                assert_eq!(contents(&db), expected, "the live handle keeps working");
                db.put_raw("during", b"1").expect("write after rekey");
                want.insert("during".into(), "1".into());
                db.close().expect("close");
                drop(plan);
            }
            Some(_) => {
                let _ = db.close();
                drop(db);
                plan.restore_power_cut().expect("restore the disk image");
            }
        }
        // Until the directory sync after its rename succeeds, the rekey is
        // not durable and the old key opens the database.
        let new_works = cut.is_none_or(|n| n > rekey);
        let with_new = Database::open(&enc_config(&path, new_key.clone()));
        assert_eq!(with_new.is_ok(), new_works, "{cut:?}: new key");
        if let Ok(db) = with_new {
            assert_eq!(contents(&db), want, "{cut:?}");
            db.close().expect("close");
        }
        let with_old = Database::open(&enc_config(&path, KEY));
        assert_eq!(with_old.is_ok(), !new_works, "{cut:?}: old key");
        if let Ok(db) = with_old {
            assert_eq!(contents(&db), want, "{cut:?}");
        }
        assert!(!compact_leftover(&path).exists(), "{cut:?}");
    }
}

#[test]
fn encrypting_a_plain_database_keeps_everything_and_survives_a_power_cut() {
    let key = EncryptionKey::from(KEY);
    let (rekey, _) = rekey_barriers(true, &key);
    // No power cut, and one at the directory sync after the rename (the
    // last sync of the rekey): the new file is then not yet the database.
    for cut in [None, Some(rekey)] {
        let (dir, path) = temp_db();
        let db = open(&path);
        let expected = populate(&db, 200);
        db.put_meta("index:field", b"{}").expect("meta");
        let plan = FaultPlan::arm(dir.path());
        let plan = match cut {
            Some(n) => plan.power_cut_at(n),
            None => plan,
        };
        let encrypted = db.rekey(&key);
        drop(db);
        if cut.is_none() {
            encrypted.expect("encrypt");
            drop(plan);
            let bytes = fs::read(&path).expect("read");
            assert!(!contains(&bytes, b"user-1"), "values are now sealed");
            assert!(!contains(&bytes, b"index:field"));
            expect_encryption_error(Database::open(&config(&path)));
            let db = open_enc(&path, KEY);
            assert_eq!(contents(&db), expected);
            assert_eq!(db.meta_entries("index:").expect("meta").len(), 1);
        } else {
            assert!(encrypted.is_err(), "the power went during the rekey");
            plan.restore_power_cut().expect("restore the disk image");
            // Interrupted: still the plain database, intact.
            let db = open(&path);
            assert_eq!(contents(&db), expected);
        }
    }
}

#[test]
fn writes_during_compaction_and_rekey_are_resealed() {
    // The tail written while a compaction copies is re-sealed record by record
    // (new offsets, new file id, and for a rekey a new key).
    let (_dir, path) = temp_db();
    let db = open_enc(&path, KEY);
    let mut expected = populate(&db, 20_000);
    let done = AtomicBool::new(false);
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut mine = BTreeMap::new();
            barrier.wait();
            let mut i = 0;
            while i < 3000 || !done.load(Ordering::Acquire) {
                let k = format!("live:{:04}", i % 1000);
                if i % 7 == 3 {
                    db.delete(&k).expect("delete during compaction");
                    mine.remove(&k);
                } else {
                    let v = json(i);
                    db.put_raw(&k, v.as_bytes()).expect("put during compaction");
                    mine.insert(k, v);
                }
                i += 1;
            }
            mine
        });
        barrier.wait();
        db.compact().expect("compact");
        db.rekey(&EncryptionKey::from(OTHER_KEY)).expect("rekey");
        db.compact().expect("compact again");
        done.store(true, Ordering::Release);
        expected.extend(writer.join().expect("writer"));
    });
    assert_eq!(contents(&db), expected);
    db.close().expect("close");
    expect_encryption_error(Database::open(&enc_config(&path, KEY)));
    assert_eq!(contents(&open_enc(&path, OTHER_KEY)), expected);
}

#[test]
fn in_memory_databases_accept_a_key() {
    let db = Database::open(&Config::new().in_memory().with_encryption(KEY)).expect("open");
    let expected = populate(&db, 100);
    db.compact().expect("compact");
    assert_eq!(contents(&db), expected);
    db.rekey(&EncryptionKey::from(OTHER_KEY)).expect("rekey");
    assert_eq!(contents(&db), expected);
}

#[test]
fn closed_handle_refuses_work() {
    let (_dir, path) = temp_db();
    let db = open_enc(&path, KEY);
    db.put_raw("k", b"1").expect("put");
    db.close().expect("close");
    assert!(matches!(db.get_raw("k"), Err(Error::Closed)));
    assert!(matches!(
        db.rekey(&EncryptionKey::from(OTHER_KEY)),
        Err(Error::Closed)
    ));
}

#[test]
fn async_face_opens_and_rekeys() {
    let (_dir, path) = temp_db();
    let db = ferrumdb::FerrumDB::open(enc_config(&path, "pw")).expect("open");
    ferrumdb::block_on(async {
        db.set("k", &serde_json::json!({"a": 1})).await?;
        db.rekey(KEY).await?;
        db.close().await
    })
    .expect("set, rekey, close");
    let db = ferrumdb::FerrumDB::open(enc_config(&path, KEY)).expect("reopen with the new key");
    let got = ferrumdb::block_on(db.get("k")).expect("get");
    assert_eq!(got, Some(serde_json::json!({"a": 1})));
}
