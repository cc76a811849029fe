//! JSON Lines export and import (`ferrumdb::ops`): a round trip keeps every
//! key, value and expiry; export pages through more than one page and never
//! leaves a half file under the final name; a bad import line names its line
//! and writes nothing; expired entries are skipped and counted.

use std::fs;
use std::path::Path;
use std::time::Duration;

use ferrumdb::ops::{export_jsonl, import_jsonl, ImportReport, Stage};
use ferrumdb::{Clock, Database, Error};

use super::{config, contents, get, json, open, open_ro, temp_db};

const T0: u64 = 1_800_000_000_000;

fn quiet() -> impl FnMut(Stage, u64, u64) {
    |_, _, _| {}
}

fn open_at(path: &Path, clock: &Clock) -> Database {
    Database::open(&config(path).with_clock(clock.clone())).expect("open")
}

#[test]
fn round_trip_keeps_keys_values_and_expiry() {
    let (dir, path) = temp_db();
    let clock = Clock::manual(T0);
    let src = open_at(&path, &clock);
    // More than one export page (1000), unicode and awkward keys, nested values.
    for i in 0..2500 {
        src.put_raw(&format!("k{i:05}"), json(i).as_bytes())
            .expect("set");
    }
    src.put_raw("é \"quoted\"\n", br#"{"big":18446744073709551615,"neg":-9223372036854775808,"f":1.5e300,"s":"\u00e9\ud83d\ude00"}"#)
        .expect("set");
    src.put_raw_with_ttl("ttl:1", b"[1,[2,[3]]]", Duration::from_millis(90_500))
        .expect("set");
    let out = dir.path().join("out.jsonl");
    let mut seen = Vec::new();
    let n = export_jsonl(&src, &out, "", &mut |stage, done, total| {
        seen.push((stage, done, total));
    })
    .expect("export");
    assert_eq!(n, 2502);
    assert_eq!(seen.last(), Some(&(Stage::Exporting, 2502, 2502)));
    let text = fs::read_to_string(&out).expect("read export");
    assert_eq!(text.lines().count(), 2502);
    assert!(text.contains(r#"{"key":"ttl:1","value":[1,[2,[3]]],"expires_at":1800000090.5}"#));

    let dst_path = dir.path().join("dst.db");
    let dst = open_at(&dst_path, &clock);
    let report = import_jsonl(&dst, &out, &mut quiet()).expect("import");
    assert_eq!(
        report,
        ImportReport {
            imported: 2502,
            expired: 0,
            ..ImportReport::default()
        }
    );
    assert_eq!(contents(&dst), contents(&src));
    assert_eq!(dst.ttl("ttl:1").expect("ttl"), Some(Some(90.5)));
    assert_eq!(dst.ttl("k00000").expect("ttl"), Some(None));
}

#[test]
fn export_with_prefix_and_from_a_read_only_handle() {
    let (dir, path) = temp_db();
    let db = open(&path);
    for key in ["user:1", "user:2", "other"] {
        db.put_raw(key, b"1").expect("set");
    }
    db.close().expect("close");
    let ro = open_ro(&path);
    let out = dir.path().join("users.jsonl");
    assert_eq!(
        export_jsonl(&ro, &out, "user:", &mut quiet()).expect("export"),
        2
    );
    assert_eq!(
        fs::read_to_string(&out).expect("read"),
        "{\"key\":\"user:1\",\"value\":1}\n{\"key\":\"user:2\",\"value\":1}\n"
    );
    // Importing into a read-only handle is refused before reading anything.
    assert!(matches!(
        import_jsonl(&ro, &out, &mut quiet()),
        Err(Error::ReadOnly)
    ));
}

#[test]
fn export_replaces_atomically_and_leaves_no_temp_files() {
    let (dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("a", b"1").expect("set");
    let out = dir.path().join("out.jsonl");
    fs::write(&out, "old contents\n").expect("write");
    export_jsonl(&db, &out, "", &mut quiet()).expect("export");
    assert_eq!(
        fs::read_to_string(&out).expect("read"),
        "{\"key\":\"a\",\"value\":1}\n"
    );
    // Into a directory that does not exist: an error naming the file, nothing created.
    let bad = dir.path().join("no/such/dir/out.jsonl");
    let e = export_jsonl(&db, &bad, "", &mut quiet()).expect_err("missing dir");
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    // Onto the database file itself: refused, the database intact.
    let e = export_jsonl(&db, &path, "", &mut quiet()).expect_err("own file");
    assert!(e.to_string().contains("is the database file itself"), "{e}");
    assert_eq!(get(&db, "a").as_deref(), Some("1"));
    let names: Vec<String> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn a_bad_line_names_itself_and_writes_nothing() {
    let (dir, path) = temp_db();
    let db = open(&path);
    db.put_raw("keep", b"0").expect("set");
    let file = dir.path().join("in.jsonl");
    for (body, needle) in [
        (
            "{\"key\":\"a\",\"value\":1}\n{\"key\":\"b\"}\n",
            "line 2: missing field `value`",
        ),
        (
            "{\"key\":\"a\",\"value\":1}\n\n{\"key\":\"b\",\"value\":{bad}\n",
            "line 3: key must be a string",
        ),
        (
            "{\"key\":\"a\",\"value\":1}\nnot json\n",
            "line 2: expected an object",
        ),
        ("{\"key\":\"\",\"value\":1}\n", "line 1: invalid key"),
        (
            "{\"key\":\"a\",\"value\":1,\"expires_at\":\"x\"}\n",
            "line 1: invalid type: string",
        ),
    ] {
        fs::write(&file, body).expect("write");
        let e = import_jsonl(&db, &file, &mut quiet()).expect_err(body);
        assert!(matches!(e, Error::InvalidValue { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(&format!("in.jsonl {needle}")), "{body}: {msg}");
        assert_eq!(contents(&db).len(), 1, "{body}: something was written");
    }
    fs::write(&file, [b'{', 0xff, b'}', b'\n']).expect("write");
    let msg = import_jsonl(&db, &file, &mut quiet())
        .expect_err("utf8")
        .to_string();
    assert!(msg.contains("line 1: not valid UTF-8"), "{msg}");
    let missing = dir.path().join("missing.jsonl");
    let e = import_jsonl(&db, &missing, &mut quiet()).expect_err("missing");
    assert!(
        matches!(&e, Error::Io { path: Some(p), .. } if p == &missing),
        "{e:?}"
    );
}

#[test]
fn expired_entries_are_skipped_and_counted_and_later_lines_win() {
    let (dir, path) = temp_db();
    let clock = Clock::manual(T0);
    let db = open_at(&path, &clock);
    let file = dir.path().join("in.jsonl");
    fs::write(
        &file,
        "{\"key\":\"past\",\"value\":1,\"expires_at\":1799999999.999}\n\
         {\"key\":\"now\",\"value\":1,\"expires_at\":1800000000}\n\
         {\"key\":\"soon\",\"value\":2,\"expires_at\":1800000000.001}\n\
         \r\n\
         {\"key\":\"dup\",\"value\":\"first\"}\r\n\
         {\"expires_at\":null,\"value\":\"second\",\"key\":\"dup\"}\n",
    )
    .expect("write");
    let mut stages = Vec::new();
    let report = import_jsonl(&db, &file, &mut |stage, done, total| {
        stages.push((stage, done, total));
    })
    .expect("import");
    assert_eq!(
        report,
        ImportReport {
            imported: 3,
            expired: 2,
            ..ImportReport::default()
        }
    );
    assert_eq!(get(&db, "dup").as_deref(), Some("\"second\""));
    assert_eq!(db.ttl("soon").expect("ttl"), Some(Some(0.001)));
    assert_eq!(db.len(), 2, "soon and dup");
    assert!(stages.contains(&(Stage::Importing, 5, 5)), "{stages:?}");
    assert!(stages.iter().any(|s| s.0 == Stage::Checking));
}

#[test]
fn import_keeps_indexes_exact() {
    let (dir, path) = temp_db();
    let docs = ferrumdb::documents::Documents::open(open(&path)).expect("documents");
    docs.create_index("role").expect("index");
    let file = dir.path().join("in.jsonl");
    fs::write(
        &file,
        "{\"key\":\"u1\",\"value\":{\"role\":\"admin\"}}\n{\"key\":\"u2\",\"value\":{\"role\":\"user\"}}\n",
    )
    .expect("write");
    import_jsonl(docs.database(), &file, &mut quiet()).expect("import");
    assert_eq!(
        docs.find("role", &serde_json::json!("admin"))
            .expect("find"),
        vec!["u1".to_string()]
    );
}
