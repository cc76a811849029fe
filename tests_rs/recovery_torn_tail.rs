//! Promise: *a torn tail from a crash is truncated on open; damage anywhere
//! else raises `CorruptionError` naming file and offset* (and acknowledged
//! records before the tail are kept).
//!
//! A crash can leave the last record cut at any byte, zero-filled, or as a
//! partial record. A writer open keeps every record before it and cuts the
//! file back to the end of the last good one; a read-only open skips the tail
//! without touching the file. A damaged record followed by intact ones is
//! corruption: the open fails, naming the file and the record's offset.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use ferrumdb::format::{encode_record, RecordKind, RECORD_HEADER_LEN};
use ferrumdb::{Database, Error};

use crate::{config, contents, expect_corruption, json, open, open_ro, record_starts, temp_db};

const N: usize = 8;

/// Write `n` records (keys `k0..`), close, and return the expected contents
/// after each prefix: `expected[i]` holds the first `i` records.
fn build_log(path: &Path, n: usize) -> Vec<BTreeMap<String, String>> {
    let db = open(path);
    let mut expected = vec![BTreeMap::new()];
    for i in 0..n {
        let (k, v) = (format!("k{i}"), json(i * 37));
        db.put_raw(&k, v.as_bytes()).expect("put");
        let mut next = expected[i].clone();
        next.insert(k, v);
        expected.push(next);
    }
    db.close().expect("close");
    assert_eq!(record_starts(path).len(), n);
    expected
}

/// Open a writer on `path`, check it holds exactly `want`, check the bytes
/// past `good_len` were cut (an open log may carry preallocated zero slack, so
/// "cut" means: the good prefix is intact and nothing non-zero follows it),
/// check the log takes appends afterwards, and that a closed file holds
/// exactly the good prefix plus the new record.
fn assert_recovers(path: &Path, want: &BTreeMap<String, String>, good_len: u64, what: &str) {
    let good = good_len as usize;
    let prefix = fs::read(path).expect("read")[..good].to_vec();
    let db = Database::open(&config(path)).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    assert_eq!(&contents(&db), want, "{what}: wrong contents");
    assert_eq!(db.stats().expect("stats").file_bytes, good_len, "{what}");
    let now = fs::read(path).expect("read");
    assert_eq!(&now[..good], &prefix[..], "{what}: good records changed");
    assert!(
        now[good..].iter().all(|&b| b == 0),
        "{what}: torn tail not truncated"
    );
    db.put_raw("after", b"true").expect("append after recovery");
    db.close().expect("close");
    let closed = fs::read(path).expect("read");
    assert_eq!(&closed[..good], &prefix[..], "{what}: good records changed");
    assert_eq!(
        closed.len(),
        good + RECORD_HEADER_LEN + "after".len() + "true".len(),
        "{what}: closed file is not good records + the new one"
    );
    let db = open(path);
    let mut want = want.clone();
    want.insert("after".into(), "true".into());
    assert_eq!(
        contents(&db),
        want,
        "{what}: append after recovery not replayed"
    );
    db.close().expect("close");
}

#[test]
fn cut_at_every_byte_of_the_last_record() {
    let (dir, path) = temp_db();
    let expected = build_log(&path, N);
    let full = fs::read(&path).expect("read");
    let last = record_starts(&path)[N - 1];
    let target = dir.path().join("cut.db");
    for cut in last..=full.len() as u64 {
        fs::write(&target, &full[..cut as usize]).expect("write cut copy");
        if cut == full.len() as u64 {
            assert_recovers(&target, &expected[N], cut, "uncut file");
        } else {
            assert_recovers(&target, &expected[N - 1], last, &format!("cut at {cut}"));
        }
    }
}

/// Append each `(label, tail)` to a fresh log of `N` records and check that
/// opening it cuts exactly the tail and keeps every record.
fn assert_tails_cut(file: &str, tails: Vec<(String, Vec<u8>)>) {
    let (dir, path) = temp_db();
    let expected = build_log(&path, N);
    let full = fs::read(&path).expect("read");
    let target = dir.path().join(file);
    for (label, tail) in tails {
        let mut bytes = full.clone();
        bytes.extend_from_slice(&tail);
        fs::write(&target, bytes).expect("write");
        assert_recovers(&target, &expected[N], full.len() as u64, &label);
    }
}

/// One encoded put record, as a crash could leave a prefix of it behind.
fn record(key: &str, value: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_record(&mut bytes, RecordKind::Put, 99, 0, key, value);
    bytes
}

#[test]
fn trailing_zero_bytes_are_cut() {
    let tails = [1, 7, 31, 32, 33, 200, 4096, 70_000]
        .into_iter()
        .map(|zeros| (format!("{zeros} zero bytes"), vec![0u8; zeros]))
        .collect();
    assert_tails_cut("zeros.db", tails);
}

#[test]
fn partial_record_after_the_last_is_cut() {
    let extra = record("half-written", json(77).as_bytes());
    let tails = (1..extra.len())
        .map(|keep| {
            (
                format!("{keep} bytes of a partial record"),
                extra[..keep].to_vec(),
            )
        })
        .collect();
    assert_tails_cut("partial.db", tails);
}

#[test]
fn a_last_record_whose_first_bytes_never_landed_is_cut() {
    // A `memcpy` into the mapping may store the first bytes of a record last
    // (glibc stores the leading vector after the loop), so a crash can leave
    // the header zero while the rest of the record is there.
    let extra = record("header-lost", "v".repeat(600).as_bytes());
    let tails = [1, 4, 8, 16, 24, 31, 32, 33, 64, 300]
        .into_iter()
        .map(|zeroed| {
            let mut tail = extra.clone();
            tail[..zeroed].fill(0);
            (format!("first {zeroed} bytes missing"), tail)
        })
        .collect();
    assert_tails_cut("header-lost.db", tails);
}

#[test]
fn record_header_with_garbage_body_running_past_the_end_is_cut() {
    // Power loss can persist the record header (and the new file size) but
    // leave the rest of the record as garbage.
    let extra = record("torn", "y".repeat(1000).as_bytes());
    let tails = [40, 500, extra.len() - 1, extra.len()]
        .into_iter()
        .map(|keep| {
            let mut tail = extra[..keep].to_vec();
            // Garble everything after the 32-byte header, and the checksum.
            for (i, b) in tail[32..].iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(31).wrapping_add(7);
            }
            tail[0] ^= 0xFF;
            (format!("header + {keep} garbage bytes"), tail)
        })
        .collect();
    assert_tails_cut("garbage.db", tails);
}

#[test]
fn damaged_middle_record_is_corruption_at_its_offset() {
    // Every byte of a middle record, flipped in a low, middle and high bit,
    // must be reported as corruption of that record, never treated as a torn
    // tail (which would silently drop the intact records after it).
    let (dir, path) = temp_db();
    build_log(&path, N);
    let full = fs::read(&path).expect("read");
    let starts = record_starts(&path);
    let (middle, next) = (starts[N / 2], starts[N / 2 + 1]);
    let target = dir.path().join("flipped.db");
    let mut failures = Vec::new();
    for at in middle..next {
        for bit in [0x01u8, 0x10, 0x80] {
            let mut bytes = full.clone();
            bytes[at as usize] ^= bit;
            fs::write(&target, &bytes).expect("write");
            for read_only in [false, true] {
                let opened = Database::open(&config(&target).with_read_only(read_only));
                match opened {
                    Err(Error::Corruption { file, offset, .. })
                        if file == target && offset == middle => {}
                    other => failures.push(format!(
                        "byte {} (+{}) bit {bit:#04x} read_only={read_only}: {}",
                        at,
                        at - middle,
                        match other {
                            Ok(db) => format!("opened with {} keys", db.len()),
                            Err(e) => format!("{e:?}"),
                        }
                    )),
                }
            }
            assert_eq!(
                fs::read(&target).expect("read"),
                bytes,
                "a refused open changed the file (byte {at})"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} flips not reported as corruption at {middle}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corruption_error_names_file_and_offset() {
    let (_dir, path) = temp_db();
    build_log(&path, N);
    let starts = record_starts(&path);
    let mut bytes = fs::read(&path).expect("read");
    let victim = starts[2];
    bytes[victim as usize + 40] ^= 0x01; // a key/value byte: checksum mismatch
    fs::write(&path, &bytes).expect("write");
    let (file, offset, reason) = expect_corruption(Database::open(&config(&path)));
    assert_eq!((file.as_path(), offset), (path.as_path(), victim));
    assert!(reason.contains("checksum"), "{reason}");
    let shown = Database::open(&config(&path))
        .expect_err("still corrupt")
        .to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(shown.contains(&victim.to_string()), "{shown}");
}

#[test]
fn read_only_open_of_a_torn_file_leaves_it_alone() {
    let (_dir, path) = temp_db();
    let expected = build_log(&path, N);
    let mut bytes = fs::read(&path).expect("read");
    let last = record_starts(&path)[N - 1] as usize;
    bytes.truncate(last + 20);
    bytes.extend_from_slice(&[0u8; 100]);
    fs::write(&path, &bytes).expect("write");

    let ro = open_ro(&path);
    assert_eq!(contents(&ro), expected[N - 1]);
    assert_eq!(
        ro.get_raw(&format!("k{}", N - 1)).expect("get").map(|_| ()),
        None
    );
    assert!(matches!(ro.put_raw("x", b"1"), Err(Error::ReadOnly)));
    ro.close().expect("close");
    drop(ro);
    assert_eq!(
        fs::read(&path).expect("read"),
        bytes,
        "read-only open changed the file"
    );

    // The next writer does the repair.
    assert_recovers(
        &path,
        &expected[N - 1],
        last as u64,
        "writer after read-only",
    );
}

#[test]
fn damage_found_at_read_time_is_not_served() {
    // A record damaged after open (bit rot, another program) fails its checksum
    // on get; the other records stay readable.
    let (_dir, path) = temp_db();
    let expected = build_log(&path, N);
    let starts = record_starts(&path);
    let db = open(&path);
    let victim = starts[3];
    {
        use std::io::{Seek, SeekFrom, Write};
        let at = victim + 40;
        let byte = fs::read(&path).expect("read")[at as usize];
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open for damage");
        f.seek(SeekFrom::Start(at)).expect("seek");
        f.write_all(&[byte ^ 0x04]).expect("flip byte");
    }
    match db.get_raw("k3") {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!((file.as_path(), offset), (path.as_path(), victim));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    for (k, v) in expected[N].iter().filter(|(k, _)| *k != "k3") {
        assert_eq!(crate::get(&db, k).as_ref(), Some(v));
    }
    assert!(
        db.items_page("", None, 100).is_err(),
        "a scan served a damaged value"
    );
}
