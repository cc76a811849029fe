//! `ferrumdb check PATH [--salvage OUT] [--key-file FILE]`: verify every
//! record of a database file ([`crate::storage::check_log`], the same scan as
//! `ferrumdb.check`) and, with `--salvage`, copy every intact record into a
//! new database ([`Database::salvage`]). The report is a few aligned lines at
//! a terminal and one JSON object when piped. Exit status: 0 when no damage
//! was found (a torn tail alone is what a crash leaves, not damage), 1 when
//! damage was found (even if the salvage succeeded: the original is still
//! damaged, and a script must notice) or the check could not run, 2 for bad
//! arguments.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::engine::Database;
use crate::error::Error;
use crate::storage::{self, CheckReport};

use super::args::CheckArgs;
use super::key;

/// `ferrumdb check`: the exit status.
pub fn run(args: &CheckArgs) -> i32 {
    let key = match key::resolve_or_report(&args.db, args.key.file.as_deref()) {
        Ok(key) => key,
        Err(status) => return status,
    };
    let check = Check {
        db: args.db.clone(),
        salvage: args.salvage.clone(),
    };
    let human = io::stdout().is_terminal();
    match execute(&check, key.as_ref()) {
        Ok(outcome) => {
            println!("{}", outcome.render(human));
            i32::from(!outcome.check.is_clean())
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            1
        }
    }
}

/// The database to check, and where to salvage it to.
#[derive(Debug, PartialEq)]
struct Check {
    db: PathBuf,
    salvage: Option<PathBuf>,
}

/// What a check (and salvage) found.
#[derive(Debug)]
struct Outcome {
    check: CheckReport,
    /// With `--salvage`: where, and how many live keys the new database holds.
    salvaged: Option<(PathBuf, u64)>,
}

fn execute(check: &Check, key: Option<&crate::crypto::EncryptionKey>) -> Result<Outcome, String> {
    if !check.db.exists() {
        return Err(format!("{}: no such database file", check.db.display()));
    }
    let explain = |e: Error| explain(&check.db, e);
    match &check.salvage {
        None => Ok(Outcome {
            check: storage::check_log(&check.db, key).map_err(explain)?,
            salvaged: None,
        }),
        Some(out) => {
            if out.exists() {
                return Err(format!(
                    "{} already exists; --salvage writes a new database, so choose a new file \
                     (nothing was written)",
                    out.display()
                ));
            }
            let report = Database::salvage(&check.db, out, key).map_err(explain)?;
            Ok(Outcome {
                check: report.check,
                salvaged: Some((out.clone(), report.keys)),
            })
        }
    }
}

/// An error that stops the check: a header that does not read is not
/// damage to list but a file that is not (or no longer) a database.
fn explain(db: &Path, e: Error) -> String {
    match e {
        Error::Corruption {
            offset: 0, reason, ..
        } => format!(
            "{} is not a readable FerrumDB database ({reason}); nothing to check",
            db.display()
        ),
        other => other.to_string(),
    }
}

impl Outcome {
    fn lost_bytes(&self) -> u64 {
        self.check.damaged_bytes() + self.check.torn_tail.as_ref().map_or(0, |t| t.len)
    }

    fn render(&self, human: bool) -> String {
        if human {
            self.text()
        } else {
            self.json().to_string()
        }
    }

    /// The serialized `CheckReport` (the dict Python's `check()` returns),
    /// plus `salvage` with `--salvage`.
    fn json(&self) -> Value {
        // Cannot fail: the report holds no map with non-string keys.
        let mut out = serde_json::to_value(&self.check).unwrap_or(Value::Null);
        if let (Some((path, keys)), Some(obj)) = (&self.salvaged, out.as_object_mut()) {
            obj.insert(
                "salvage".into(),
                json!({"out": path.to_string_lossy(), "keys": keys, "lost_bytes": self.lost_bytes()}),
            );
        }
        out
    }

    fn text(&self) -> String {
        let r = &self.check;
        let mut lines = vec![
            format!(
                "file:         {} ({} bytes)",
                r.file.display(),
                r.file_bytes
            ),
            format!(
                "records:      {} intact ({} writes, {} transactions)",
                r.records, r.writes, r.transactions
            ),
        ];
        if r.damage.is_empty() {
            lines.push("damage:       none".to_owned());
        } else {
            lines.push(format!(
                "damage:       {} bytes in {} {}",
                r.damaged_bytes(),
                r.damage.len(),
                if r.damage.len() == 1 {
                    "region"
                } else {
                    "regions"
                }
            ));
            for d in &r.damage {
                lines.push(format!(
                    "  at offset {}, {} bytes: {}",
                    d.offset, d.len, d.reason
                ));
            }
        }
        if let Some(t) = &r.torn_tail {
            lines.push(format!(
                "torn tail:    {} bytes at offset {} ({}): the unfinished last write of a crash \
                 (or damage to the last record); not counted as damage, the next open cuts it off",
                t.len, t.offset, t.reason
            ));
        }
        if let Some((out, keys)) = &self.salvaged {
            let lost = match self.lost_bytes() {
                0 => "nothing was lost".to_owned(),
                n => format!(
                    "{n} unreadable bytes were left out (the keys stored there cannot be named)"
                ),
            };
            lines.push(format!(
                "salvage:      wrote {keys} keys from {} intact writes to {}; {lost}",
                r.writes,
                out.display()
            ));
        }
        lines.push(match (r.is_clean(), &self.salvaged) {
            (true, _) => "result:       OK, no damage".to_owned(),
            (false, Some(_)) => format!(
                "result:       DAMAGED; the intact records are saved, {} itself is unchanged",
                r.file.display()
            ),
            (false, None) => format!(
                "result:       DAMAGED; `ferrumdb check {} --salvage NEW.db` copies every \
                 intact record into NEW.db",
                r.file.display()
            ),
        });
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn damaged_db(dir: &Path) -> (PathBuf, u64) {
        let path = dir.join("app.db");
        let db = Database::open(&Config::new().with_path(&path)).unwrap();
        db.put_raw("a", b"\"first\"").unwrap();
        db.put_raw("b", b"\"second, to be damaged\"").unwrap();
        db.put_raw("c", b"\"third\"").unwrap();
        db.close().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let b_at = find(&bytes, b"second").unwrap();
        bytes[b_at] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        (path, b_at as u64)
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn reports_damage_and_salvages() {
        let dir = tempfile::tempdir().unwrap();
        let (path, flipped) = damaged_db(dir.path());
        let check = Check {
            db: path.clone(),
            salvage: None,
        };
        let outcome = execute(&check, None).unwrap();
        assert_eq!(outcome.check.status(), "damaged");
        let v = outcome.json();
        assert_eq!(v["ok"], false);
        assert_eq!(v["records"], 2);
        let region = &v["damage"][0];
        let (offset, length) = (
            region["offset"].as_u64().unwrap(),
            region["length"].as_u64().unwrap(),
        );
        assert!(offset <= flipped && flipped < offset + length, "{v}");
        assert!(outcome.text().contains("DAMAGED"));

        let out = dir.path().join("saved.db");
        let salvage = Check {
            salvage: Some(out.clone()),
            ..check
        };
        let outcome = execute(&salvage, None).unwrap();
        assert_eq!(outcome.json()["salvage"]["keys"], 2);
        assert_eq!(outcome.json()["salvage"]["lost_bytes"], length);
        let db = Database::open(&Config::new().with_path(&out)).unwrap();
        assert_eq!(db.get_raw("a").unwrap().unwrap().as_bytes(), b"\"first\"");
        assert!(db.get_raw("b").unwrap().is_none());
        assert_eq!(db.get_raw("c").unwrap().unwrap().as_bytes(), b"\"third\"");
        db.close().unwrap();
        // OUT exists now: refused before anything is written.
        let before = std::fs::read(&out).unwrap();
        let err = execute(&salvage, None).unwrap_err();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&out).unwrap(), before);
    }

    #[test]
    fn clean_files_torn_tails_and_non_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ok.db");
        let db = Database::open(&Config::new().with_path(&path)).unwrap();
        db.put_raw("a", b"1").unwrap();
        db.close().unwrap();
        let check = |db: &Path| {
            execute(
                &Check {
                    db: db.to_path_buf(),
                    salvage: None,
                },
                None,
            )
        };
        let clean = check(&path).unwrap();
        assert_eq!(clean.check.status(), "clean");
        assert!(clean.text().contains("OK, no damage"));
        // Half a record appended: a torn tail, reported but not damage.
        let mut bytes = std::fs::read(&path).unwrap();
        let end = bytes.len();
        bytes.extend_from_slice(&bytes[64..end].to_vec()[..10]);
        std::fs::write(&path, &bytes).unwrap();
        let torn = check(&path).unwrap();
        assert_eq!(torn.check.status(), "torn_tail");
        assert!(torn.check.is_clean());
        assert_eq!(torn.json()["torn_tail"]["offset"], end as u64);
        assert!(torn.text().contains("not counted as damage"));

        let err = check(&dir.path().join("missing.db")).unwrap_err();
        assert!(err.contains("no such database file"), "{err}");
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello, not a database at all\n".repeat(10)).unwrap();
        let err = check(&text).unwrap_err();
        assert!(
            err.contains(
                "is not a readable FerrumDB database (not a FerrumDB database file (bad magic))"
            ),
            "{err}"
        );
    }
}
