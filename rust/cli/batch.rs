//! Batch subcommands: `ferrumdb export PATH OUT.jsonl [--prefix P]` and
//! `ferrumdb import PATH IN.jsonl [--no-indexes]`, thin wrappers over [`crate::ops`]
//! (the same code as `db.export_jsonl` / `db.import_jsonl`). A progress bar
//! shows on a terminal; the summary is a sentence at a terminal and one line of
//! JSON when piped, like the REPL's results. `--key-file FILE` (or
//! `FERRUMDB_PASSPHRASE`, or a prompt) opens an encrypted database, see `key`.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::config::{Config, FsyncPolicy};
use crate::crypto::EncryptionKey;
use crate::documents::Documents;
use crate::engine::Database;
use crate::ops::{self, progress::Bar};

use super::args::{ExportArgs, ImportArgs};
use super::key;

/// `ferrumdb export`: the exit status.
pub fn export(args: &ExportArgs) -> i32 {
    run(&Batch {
        export: true,
        db: args.db.clone(),
        file: args.file.clone(),
        prefix: args.prefix.clone(),
        indexes: false,
        key_file: args.key.file.clone(),
    })
}

/// `ferrumdb import`: the exit status.
pub fn import(args: &ImportArgs) -> i32 {
    run(&Batch {
        export: false,
        db: args.db.clone(),
        file: args.file.clone(),
        prefix: String::new(),
        indexes: !args.no_indexes,
        key_file: args.key.file.clone(),
    })
}

/// Export or import, what the two share: the key, the work, the summary.
fn run(batch: &Batch) -> i32 {
    let key = match key::resolve_or_report(&batch.db, batch.key_file.as_deref()) {
        Ok(key) => key,
        Err(status) => return status,
    };
    match execute(batch, key) {
        Ok(summary) => {
            println!("{summary}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

#[derive(Debug, PartialEq)]
struct Batch {
    export: bool,
    db: PathBuf,
    file: PathBuf,
    prefix: String,
    /// Import: create the indexes the file records.
    indexes: bool,
    key_file: Option<PathBuf>,
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
    let (result, closed) = if batch.export {
        let result = ops::export_jsonl(&db, &batch.file, &batch.prefix, &mut report)
            .map(|n| summary_export(n, &batch.db, &batch.file));
        (result, db.close())
    } else {
        // The index layer, so that the database's unique indexes (and the
        // ones the file records) hold for what is imported.
        let docs = Documents::open(db)?;
        let result = ops::import_jsonl_with_indexes(&docs, &batch.file, batch.indexes, &mut report)
            .map(|r| summary_import(&r, &batch.file, &batch.db));
        (result, docs.close())
    };
    bar.finish();
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

fn summary_import(r: &ops::ImportReport, file: &Path, db: &Path) -> String {
    if io::stdout().is_terminal() {
        let created = if r.indexes_created.is_empty() {
            String::new()
        } else {
            format!("; created indexes on {}", r.indexes_created.join(", "))
        };
        format!(
            "imported {} records from {} into {} ({} expired, skipped){created}",
            r.imported,
            file.display(),
            db.display(),
            r.expired
        )
    } else {
        json!({"imported": r.imported, "expired": r.expired, "indexes_created": r.indexes_created})
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let batch = |export, db: &Path| Batch {
            export,
            db: db.to_path_buf(),
            file: out.clone(),
            prefix: String::new(),
            indexes: true,
            key_file: None,
        };
        assert_eq!(run(&batch(true, &src)), 0);
        assert_eq!(run(&batch(false, &dst)), 0);
        let db = Database::open(&Config::new().with_path(&dst)).unwrap();
        assert_eq!(db.len(), 2);
        assert_eq!(db.get_raw("a").unwrap().unwrap().as_bytes(), b"{\"x\":1}");
        db.close().unwrap();
        // A missing database to export from is an error, not a new empty file.
        let missing = dir.path().join("missing.db");
        assert_eq!(run(&batch(true, &missing)), 1);
        assert!(!missing.exists());
    }
}
