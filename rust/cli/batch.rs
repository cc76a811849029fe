//! Batch subcommands: `ferrumdb export PATH OUT.jsonl [--prefix P]` and
//! `ferrumdb import PATH IN.jsonl`, thin wrappers over [`crate::ops`]
//! (the same code as `db.export_jsonl` / `db.import_jsonl`). A progress bar
//! shows on a terminal; the summary is a sentence at a terminal and one line of
//! JSON when piped, like the REPL's results. `--key-file FILE` (or
//! `FERRUMDB_PASSPHRASE`, or a prompt) opens an encrypted database, see `key`.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::config::{Config, FsyncPolicy};
use crate::crypto::EncryptionKey;
use crate::engine::Database;
use crate::ops::{self, progress::Bar};

use super::key;

/// Usage of the batch subcommands.
pub const USAGE: &str =
    "Usage: ferrumdb export PATH OUT.jsonl [--prefix P] [--key-file FILE]\n       \
                         ferrumdb import PATH IN.jsonl [--key-file FILE]";

/// Run `args` if they start with a batch subcommand: `Some(exit status)`,
/// else `None` (the caller runs the REPL).
pub fn run(args: &[String]) -> Option<i32> {
    let sub = args.first()?.as_str();
    if sub != "export" && sub != "import" {
        return None;
    }
    let (parsed, key) = match key::prepare(
        parse(sub, &args[1..]),
        || help(sub),
        USAGE,
        |b: &Batch| (b.db.as_path(), b.key_file.as_deref()),
    ) {
        Ok(ready) => ready,
        Err(status) => return Some(status),
    };
    Some(match execute(&parsed, key) {
        Ok(summary) => {
            println!("{summary}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    })
}

#[derive(Debug, PartialEq)]
struct Batch {
    export: bool,
    db: PathBuf,
    file: PathBuf,
    prefix: String,
    key_file: Option<PathBuf>,
}

/// `Ok(None)` for `--help`.
fn parse(sub: &str, args: &[String]) -> Result<Option<Batch>, String> {
    let mut positional = Vec::new();
    let mut prefix = None;
    let mut key_file = None;
    let mut iter = args.iter();
    let mut options_done = false;
    while let Some(arg) = iter.next() {
        if options_done || !arg.starts_with("--") && arg != "-h" {
            positional.push(arg);
            continue;
        }
        match arg.split_once('=') {
            _ if arg == "--" => options_done = true,
            _ if arg == "-h" || arg == "--help" => return Ok(None),
            Some(("--prefix", value)) if sub == "export" => prefix = Some(value.to_owned()),
            None if arg == "--prefix" && sub == "export" => {
                let value = iter.next().ok_or("--prefix needs a value")?;
                prefix = Some(value.clone());
            }
            Some(("--key-file", value)) if !value.is_empty() => key_file = Some(value.into()),
            None if arg == "--key-file" => {
                let value = iter.next().ok_or("--key-file needs a value")?;
                key_file = Some(PathBuf::from(value));
            }
            Some(("--key-file", _)) => return Err("--key-file needs a value".to_owned()),
            _ => return Err(format!("unknown option {arg} for `ferrumdb {sub}`")),
        }
    }
    let what = if sub == "export" {
        "OUT.jsonl"
    } else {
        "IN.jsonl"
    };
    match positional.as_slice() {
        [db, file] => Ok(Some(Batch {
            export: sub == "export",
            db: PathBuf::from(db),
            file: PathBuf::from(file),
            prefix: prefix.unwrap_or_default(),
            key_file,
        })),
        [] | [_] => Err(format!(
            "`ferrumdb {sub}` needs the database PATH and {what}"
        )),
        [_, _, extra, ..] => Err(format!("unexpected argument {extra:?}")),
    }
}

fn help(sub: &str) -> String {
    if sub == "export" {
        "Usage: ferrumdb export PATH OUT.jsonl [--prefix P] [--key-file FILE]\n\
         \n\
         Write every key of the database at PATH (or only those starting with P) to\n\
         OUT.jsonl, one {\"key\": ..., \"value\": ...} object per line, with \"expires_at\"\n\
         (Unix seconds) for keys with a TTL. OUT.jsonl is written under a temporary name\n\
         and renamed when complete. Opens the database read-only, so it works beside a\n\
         running writer. An encrypted database needs its key: --key-file FILE (exactly\n\
         32 bytes = raw key, else a passphrase on the first line), or FERRUMDB_PASSPHRASE,\n\
         or, at a terminal, the passphrase prompt.\n"
            .to_owned()
    } else {
        "Usage: ferrumdb import PATH IN.jsonl [--key-file FILE]\n\
         \n\
         Store every line of IN.jsonl (as written by `ferrumdb export`) in the database at\n\
         PATH, created if missing. Every line is checked first: a bad line is reported\n\
         with its number and nothing is written. Entries whose expires_at has passed are\n\
         skipped; when a key appears twice, the later line wins. An encrypted database\n\
         needs its key (--key-file FILE or FERRUMDB_PASSPHRASE, as for export); a key\n\
         given for a new PATH creates it encrypted.\n"
            .to_owned()
    }
}

fn execute(batch: &Batch, key: Option<EncryptionKey>) -> crate::Result<String> {
    // Import syncs once at the end (`close`) rather than per record: until
    // the command returns the import is not complete anyway.
    let mut config = Config::new()
        .with_path(&batch.db)
        .with_read_only(batch.export)
        .with_fsync_policy(FsyncPolicy::Never);
    if let Some(key) = key {
        config = config.with_encryption(key);
    }
    let db = Database::open(&config)?;
    let mut bar = Bar::new();
    let mut report = |stage, done, total| bar.update(stage, done, total);
    let result = if batch.export {
        ops::export_jsonl(&db, &batch.file, &batch.prefix, &mut report)
            .map(|n| summary_export(n, &batch.db, &batch.file))
    } else {
        ops::import_jsonl(&db, &batch.file, &mut report)
            .map(|r| summary_import(r, &batch.file, &batch.db))
    };
    bar.finish();
    let closed = db.close();
    let summary = result?;
    closed?;
    Ok(summary)
}

fn summary_export(n: u64, db: &Path, file: &Path) -> String {
    if io::stdout().is_terminal() {
        format!(
            "exported {n} records from {} to {}",
            db.display(),
            file.display()
        )
    } else {
        json!({"exported": n}).to_string()
    }
}

fn summary_import(r: ops::ImportReport, file: &Path, db: &Path) -> String {
    if io::stdout().is_terminal() {
        format!(
            "imported {} records from {} into {} ({} expired, skipped)",
            r.imported,
            file.display(),
            db.display(),
            r.expired
        )
    } else {
        json!({"imported": r.imported, "expired": r.expired}).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_export_and_import() {
        assert_eq!(
            parse("export", &args(&["a.db", "out.jsonl", "--prefix", "user:"])),
            Ok(Some(Batch {
                export: true,
                db: "a.db".into(),
                file: "out.jsonl".into(),
                prefix: "user:".into(),
                key_file: None,
            }))
        );
        assert_eq!(
            parse("export", &args(&["--prefix=u", "a.db", "o"]))
                .unwrap()
                .unwrap()
                .prefix,
            "u"
        );
        assert!(
            !parse("import", &args(&["a.db", "in.jsonl"]))
                .unwrap()
                .unwrap()
                .export
        );
        assert_eq!(parse("import", &args(&["--help"])), Ok(None));
        for list in [
            &["a.db", "in", "--key-file", "k"][..],
            &["--key-file=k", "a.db", "in"],
        ] {
            assert_eq!(
                parse("import", &args(list)).unwrap().unwrap().key_file,
                Some(PathBuf::from("k"))
            );
        }
        assert_eq!(
            parse("import", &args(&["--", "--odd.db", "in"]))
                .unwrap()
                .unwrap()
                .db,
            PathBuf::from("--odd.db")
        );
    }

    #[test]
    fn usage_errors() {
        assert!(parse("export", &args(&["a.db"]))
            .unwrap_err()
            .contains("needs the database PATH and OUT.jsonl"));
        assert!(parse("import", &args(&[]))
            .unwrap_err()
            .contains("IN.jsonl"));
        assert!(parse("import", &args(&["a", "b", "c"]))
            .unwrap_err()
            .contains("unexpected argument \"c\""));
        assert!(parse("import", &args(&["a", "b", "--prefix=x"]))
            .unwrap_err()
            .contains("unknown option --prefix=x"));
        assert!(parse("export", &args(&["a", "b", "--prefix"]))
            .unwrap_err()
            .contains("--prefix needs a value"));
        assert!(parse("export", &args(&["a", "b", "--key-file"]))
            .unwrap_err()
            .contains("--key-file needs a value"));
        assert!(parse("import", &args(&["a", "b", "--key-file="]))
            .unwrap_err()
            .contains("--key-file needs a value"));
        assert_eq!(run(&args(&["export"])), Some(2));
        assert_eq!(run(&args(&["import", "--help"])), Some(0));
        assert_eq!(run(&args(&["app.db"])), None);
        assert_eq!(run(&args(&[])), None);
    }

    #[test]
    fn round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.db");
        let dst = dir.path().join("dst.db");
        let out = dir.path().join("out.jsonl");
        {
            let db = Database::open(&Config::new().with_path(&src)).unwrap();
            db.put_raw("a", b"{\"x\":1}").unwrap();
            db.put_raw("b", b"[true]").unwrap();
            db.close().unwrap();
        }
        let p = |p: &Path| p.to_str().unwrap().to_owned();
        assert_eq!(run(&["export".into(), p(&src), p(&out)]), Some(0));
        assert_eq!(run(&["import".into(), p(&dst), p(&out)]), Some(0));
        let db = Database::open(&Config::new().with_path(&dst)).unwrap();
        assert_eq!(db.len(), 2);
        assert_eq!(db.get_raw("a").unwrap().unwrap().as_bytes(), b"{\"x\":1}");
        db.close().unwrap();
        // A missing database to export from is an error, not a new empty file.
        let missing = dir.path().join("missing.db");
        assert_eq!(run(&["export".into(), p(&missing), p(&out)]), Some(1));
        assert!(!missing.exists());
    }
}
