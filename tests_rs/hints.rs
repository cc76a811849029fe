//! Hint files: an open reads the key directory of the log's prefix from
//! `PATH.hint` instead of replaying every record, and a hint is untrusted
//! input: one the data file does not vouch for (its hint-digest record), or
//! whose entries do not fit the file, is ignored, whoever crafted it.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use ferrumdb::format::{
    encode_hint_digest_record, HintDigest, HintHeader, RecordHeader, HINT_HEADER_LEN,
    RECORD_HEADER_LEN,
};
use ferrumdb::storage::fault::FaultPlan;
use ferrumdb::storage::{hint_path, open_log, read_record};
use ferrumdb::Clock;
use ferrumdb::{Database, MAX_VALUE_BYTES};

use crate::{config, contents, json, open, record_starts, temp_db};

/// A log a close leaves a hint for: over 8 MiB of large values, small keys
/// half overwritten and some deleted, an index definition. Returns the
/// contents.
fn closed_with_hint(db: Database, path: &Path) -> std::collections::BTreeMap<String, String> {
    let big = format!("\"{}\"", "v".repeat(4000));
    for i in 0..2200 {
        db.put_raw(&format!("big{i:04}"), big.as_bytes())
            .expect("put");
    }
    for i in 0..500 {
        db.put_raw(&format!("k{i:03}"), json(i).as_bytes())
            .expect("put");
    }
    for i in (0..500).step_by(2) {
        db.put_raw(&format!("k{i:03}"), b"\"again\"")
            .expect("overwrite");
    }
    for i in (0..500).step_by(7) {
        db.delete(&format!("k{i:03}")).expect("delete");
    }
    db.put_meta("index:name", b"{}").expect("meta");
    let want = contents(&db);
    db.close().expect("close");
    assert!(hint_path(path).exists(), "the close left no hint");
    want
}

/// The hint's entries: (where the entry starts in the hint file, key,
/// record offset, value length).
fn hint_entries(hint: &[u8]) -> Vec<(usize, String, u64, u32)> {
    let mut out = Vec::new();
    let mut at = HINT_HEADER_LEN;
    while at < hint.len() {
        let u32_at = |i: usize| u32::from_le_bytes(hint[i..i + 4].try_into().expect("4"));
        let key_len = u32_at(at + 4) as usize;
        let offset = u64::from_le_bytes(hint[at + 8..at + 16].try_into().expect("8"));
        let key = String::from_utf8(hint[at + 28..at + 28 + key_len].to_vec()).expect("utf-8");
        out.push((at, key, offset, u32_at(at + 16)));
        at += 28 + key_len;
    }
    out
}

/// Recompute the header checksum, as anyone can (the format is documented).
fn recrc(hint: &mut [u8]) {
    let crc = crc32c::crc32c(&hint[..60]);
    hint[60..64].copy_from_slice(&crc.to_le_bytes());
}

/// Also rewrite the data file's hint-digest record so it vouches for
/// `hint`: what forging a hint takes once the log carries its digest.
fn forge_digest(path: &Path, hint: &[u8]) {
    let header = HintHeader::decode(hint).expect("header");
    let mut digest = HintDigest::default();
    digest.update(&hint[HINT_HEADER_LEN..]);
    let digest = digest.finish(&header);
    let mut data = fs::read(path).expect("read");
    let at = header.digest_offset as usize;
    let seq = u64::from_le_bytes(data[at + 8..at + 16].try_into().expect("8"));
    let mut record = Vec::new();
    encode_hint_digest_record(&mut record, seq, &digest);
    data[at..at + record.len()].copy_from_slice(&record);
    fs::write(path, data).expect("write");
}

#[test]
fn a_hint_left_by_close_is_used_and_agrees_with_replay() {
    let (_dir, path) = temp_db();
    closed_with_hint(open(&path), &path);
    // Writes after the hinted part are replayed on top of it.
    let db = open(&path);
    assert!(db.opened_with_hint());
    db.put_raw("k001", b"\"after\"").expect("put");
    db.delete("k003").expect("delete");
    db.put_raw("new", b"1").expect("put");
    let want = contents(&db);
    db.close().expect("close");

    let hinted = open(&path);
    assert!(hinted.opened_with_hint());
    assert_eq!(contents(&hinted), want);
    assert_eq!(hinted.meta_entries("index:").expect("meta").len(), 1);
    let stats = hinted.stats().expect("stats");
    hinted.close().expect("close");

    fs::remove_file(hint_path(&path)).expect("remove hint");
    let replayed = open(&path);
    assert!(!replayed.opened_with_hint());
    assert_eq!(contents(&replayed), want);
    assert_eq!(replayed.meta_entries("index:").expect("meta").len(), 1);
    let again = replayed.stats().expect("stats");
    assert_eq!(
        (stats.live_bytes, stats.file_bytes),
        (again.live_bytes, again.file_bytes)
    );
    // Writes continue with higher sequence numbers: a later replay agrees.
    replayed.put_raw("k001", b"\"latest\"").expect("put");
    replayed.close().expect("close");
    assert_eq!(
        crate::get(&open(&path), "k001").as_deref(),
        Some("\"latest\"")
    );
}

#[test]
fn a_damaged_old_or_foreign_hint_is_ignored_and_removed() {
    let (dir, path) = temp_db();
    let want = closed_with_hint(open(&path), &path);
    let good = fs::read(hint_path(&path)).expect("hint");
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for at in [0, 20, 30, 41, 70, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x08;
        cases.push((format!("flip at {at}"), bad));
    }
    // Body edits with the header checksum recomputed: caught by the digest.
    let mut edited = good.clone();
    edited[HINT_HEADER_LEN + 20] ^= 0x01;
    recrc(&mut edited);
    cases.push(("edited value length".into(), edited));
    // A version 1 hint (checksums only) is not read.
    let mut v1 = good.clone();
    v1[8..10].copy_from_slice(&1u16.to_le_bytes());
    recrc(&mut v1);
    cases.push(("version 1".into(), v1));
    for (what, bad) in cases {
        fs::write(hint_path(&path), &bad).expect("write");
        let db = open(&path);
        assert!(!db.opened_with_hint(), "{what}");
        assert_eq!(contents(&db), want, "{what}");
        db.close().expect("close");
        // Removed at open; the close (of an unhinted 9 MB log) wrote a new one.
        let now = fs::read(hint_path(&path)).expect("a fresh hint");
        assert_ne!(now, bad, "{what}: stale hint left");
        assert!(open(&path).opened_with_hint(), "{what}: the fresh hint");
    }

    // Another database of the same generation and shape, one value apart:
    // this file does not vouch for its hint.
    let other_path = dir.path().join("other.db");
    let other = open(&other_path);
    other.put_raw("k002", b"\"different\"").expect("put");
    other.delete("k002").expect("delete");
    closed_with_hint(other, &other_path);
    fs::copy(hint_path(&other_path), hint_path(&path)).expect("copy foreign hint");
    let db = open(&path);
    assert!(!db.opened_with_hint());
    assert_eq!(contents(&db), want);
}

#[test]
fn a_hint_pointing_at_an_older_record_of_a_key_is_never_used() {
    let (_dir, path) = temp_db();
    let want = closed_with_hint(open(&path), &path);
    assert_eq!(want["k002"], "\"again\"");
    let mut hint = fs::read(hint_path(&path)).expect("hint");
    let entries = hint_entries(&hint);
    let (at, _, newest, _) = entries
        .iter()
        .find(|(_, k, _, _)| k == "k002")
        .cloned()
        .expect("k002 hinted");
    // The first k002 record (json(2)), which the overwrite superseded.
    let data = fs::read(&path).expect("read");
    let older = record_starts(&path)
        .into_iter()
        .find(|&o| {
            let h = RecordHeader::parse(&data[o as usize..]).expect("header");
            let key = o as usize + RECORD_HEADER_LEN;
            h.key_len == 4 && &data[key..key + 4] == b"k002" && o != newest
        })
        .expect("older k002 record");
    hint[at + 8..at + 16].copy_from_slice(&older.to_le_bytes());
    hint[at + 16..at + 20].copy_from_slice(&(json(2).len() as u32).to_le_bytes());
    recrc(&mut hint);
    fs::write(hint_path(&path), &hint).expect("write");
    let db = open(&path);
    assert!(!db.opened_with_hint());
    assert_eq!(crate::get(&db, "k002").as_deref(), Some("\"again\""));
    assert_eq!(contents(&db), want);
}

#[test]
fn an_earlier_hint_of_the_same_file_still_yields_the_newest_values() {
    let (_dir, path) = temp_db();
    closed_with_hint(open(&path), &path);
    let earlier = fs::read(hint_path(&path)).expect("hint");
    // A later session overwrites keys the earlier hint describes, and its
    // close leaves a newer hint.
    let db = open(&path);
    let want = closed_with_hint(db, &path);
    let db = open(&path);
    db.put_raw("k001", b"\"newest\"").expect("put");
    db.delete("big0000").expect("delete");
    let want = {
        let mut w = want;
        w.insert("k001".into(), "\"newest\"".into());
        w.remove("big0000");
        w
    };
    db.close().expect("close");
    fs::write(hint_path(&path), earlier).expect("put the earlier hint back");
    // It describes a prefix of this very log exactly (the log still vouches
    // for it), and everything after that prefix is replayed on top.
    let db = open(&path);
    assert_eq!(contents(&db), want);
}

/// Child half of the test below: opens under a 1 GiB address-space limit.
fn open_forged_under_limit(path: &Path) {
    let db = open(path);
    assert!(!db.opened_with_hint(), "a hint with a 4 GiB value was used");
    assert_eq!(crate::get(&db, "k002").as_deref(), Some("\"again\""));
    drop(db);
    // And the one record-read function refuses such a location outright.
    let log = open_log(path, true, None).expect("open log");
    let mut buf = Vec::new();
    for claimed in [u32::MAX, MAX_VALUE_BYTES as u32] {
        let got = read_record(&log.medium, path, 64, "big0000", claimed, &mut buf);
        assert!(
            matches!(got, Err(ferrumdb::Error::Corruption { .. })),
            "{got:?}"
        );
        assert!(buf.capacity() < 1 << 20, "allocated {}", buf.capacity());
    }
    println!("CHILD-OK");
}

#[test]
fn a_hint_claiming_a_4_gib_value_is_never_used_even_when_vouched_for() {
    if let Ok(path) = std::env::var("FERRUMDB_TEST_FORGED_HINT") {
        open_forged_under_limit(Path::new(&path));
        return;
    }
    let (_dir, path) = temp_db();
    closed_with_hint(open(&path), &path);
    let mut hint = fs::read(hint_path(&path)).expect("hint");
    let (at, _, _, _) = hint_entries(&hint)[0].clone();
    hint[at + 16..at + 20].copy_from_slice(&u32::MAX.to_le_bytes());
    recrc(&mut hint);
    // The worst case: the attacker also rewrote the log's digest record.
    forge_digest(&path, &hint);
    fs::write(hint_path(&path), &hint).expect("write");
    let limit = 1u64 << 30;
    let mut child = Command::new(std::env::current_exe().expect("test binary"));
    child
        .args([
            "--exact",
            "hints::a_hint_claiming_a_4_gib_value_is_never_used_even_when_vouched_for",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FERRUMDB_TEST_FORGED_HINT", &path);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child
    // between fork and exec.
    unsafe {
        child.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = child.output().expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn keys_that_expired_since_the_hint_are_dropped() {
    let clock = Clock::manual(1_000_000);
    let (_dir, path) = temp_db();
    let cfg = config(&path).with_clock(clock.clone());
    let db = Database::open(&cfg).expect("open");
    db.put_raw_with_ttl("short", b"1", std::time::Duration::from_secs(5))
        .expect("put");
    db.put_raw("long", b"2").expect("put");
    closed_with_hint(db, &path);
    clock.advance_ms(6_000);
    let db = Database::open(&cfg).expect("reopen");
    assert!(db.opened_with_hint());
    assert!(crate::get(&db, "short").is_none());
    assert_eq!(crate::get(&db, "long").as_deref(), Some("2"));
}

#[test]
fn a_torn_tail_after_the_hinted_part_is_still_cut() {
    let (_dir, path) = temp_db();
    closed_with_hint(open(&path), &path);
    let db = open(&path);
    db.put_raw("tail", json(9).as_bytes()).expect("put");
    let before_tail = contents(&db);
    db.put_raw("torn", json(10).as_bytes()).expect("put");
    db.close().expect("close");
    let len = fs::metadata(&path).expect("meta").len();
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(len - 5).expect("cut the last record");
    drop(file);
    let db = open(&path);
    assert!(db.opened_with_hint());
    assert_eq!(contents(&db), before_tail);
}

#[test]
fn compaction_removes_the_old_hint_and_the_next_close_writes_one() {
    let (_dir, path) = temp_db();
    let want = closed_with_hint(open(&path), &path);
    let db = open(&path);
    db.compact().expect("compact");
    assert!(!hint_path(&path).exists(), "a hint of the old generation");
    db.close().expect("close");
    let db = open(&path);
    assert!(db.opened_with_hint());
    assert_eq!(contents(&db), want);
}

#[test]
fn a_close_leaves_a_hint_only_when_much_of_the_log_is_unhinted() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("small", b"1").expect("put");
    db.close().expect("close");
    assert!(!hint_path(&path).exists(), "a small log replays quickly");

    let db = open(&path);
    let value = format!("\"{}\"", "v".repeat(4000));
    for i in 0..3000 {
        db.put_raw(&format!("big{i:05}"), value.as_bytes())
            .expect("put");
    }
    let want = contents(&db);
    db.close().expect("close");
    assert!(
        hint_path(&path).exists(),
        "12 MB unhinted: close writes a hint"
    );
    let db = open(&path);
    assert!(db.opened_with_hint());
    assert_eq!(contents(&db), want);
}

#[test]
fn an_encrypted_database_never_gets_a_hint_at_close() {
    let (_dir, path) = temp_db();
    let cfg = config(&path).with_encryption([5u8; 32]);
    let db = Database::open(&cfg).expect("open");
    let big = format!("\"{}\"", "v".repeat(4000));
    for i in 0..2200 {
        db.put_raw(&format!("secret-key-{i:04}"), big.as_bytes())
            .expect("put");
    }
    db.close().expect("close");
    // A hint would hold every key in the clear beside the encrypted file.
    assert!(
        !hint_path(&path).exists(),
        "plaintext hint of an encrypted file"
    );
    let db = Database::open(&cfg).expect("reopen");
    assert_eq!(db.len(), 2200);
}

#[test]
fn a_temporary_hint_left_by_a_dead_close_is_removed_by_the_next_writer() {
    let (_dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("k", b"1").expect("put");
    db.close().expect("close");
    // What a process killed while its close wrote the hint leaves behind.
    let temp = ferrumdb::storage::paths::temp_hint_path(&path);
    fs::write(&temp, b"half a hint").expect("plant");
    let reader = Database::open(&config(&path).with_read_only(true)).expect("read-only open");
    assert!(temp.exists(), "a read-only open changes nothing");
    drop(reader);
    let db = open(&path);
    assert!(!temp.exists(), "the writer removed the leftover");
    assert_eq!(contents(&db).len(), 1);
}

#[test]
fn a_power_loss_after_close_keeps_the_digest_record_that_vouches_for_the_hint() {
    // Everything written is durable before the close (a flush), so the
    // close's only append is the hint's digest record, which the close
    // must make durable like any other append (its ticket, and the syncs
    // around the trim). Otherwise a power loss after a close that kept the
    // hint's rename (the directory entry may reach the disk without the
    // log's unsynced tail) leaves a hint nothing vouches for, and every
    // later open replays the whole log.
    let (dir, path) = temp_db();
    let db = open(&path);
    let big = format!("\"{}\"", "v".repeat(4000));
    for i in 0..2200 {
        db.put_raw(&format!("big{i:04}"), big.as_bytes())
            .expect("put");
    }
    let want = contents(&db);
    db.flush().expect("flush");
    let plan = FaultPlan::arm(dir.path());
    db.close().expect("close");
    drop(db);
    let closed = fs::read(&path).expect("read the closed file");
    let hint = fs::read(hint_path(&path)).expect("the close left a hint");
    // The power goes: the disk keeps what was synced, and this time the
    // hint's rename too.
    plan.restore_power_cut().expect("restore the disk image");
    let durable = fs::read(&path).expect("read the restored file");
    assert!(
        durable.get(..closed.len()) == Some(&closed[..]),
        "bytes the close wrote to the database file were never synced"
    );
    fs::write(hint_path(&path), hint).expect("put the hint back");
    let db = open(&path);
    assert!(db.opened_with_hint(), "the hint is vouched for");
    assert_eq!(contents(&db), want);
}
