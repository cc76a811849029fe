//! Script mode (stdin is not a terminal): run commands line by line, print each
//! result, report errors with their line number and keep going, and exit 1 at
//! the end if any command failed. With [`Mode::Json`] (stdout is a pipe) every
//! command that succeeds prints exactly one line of JSON, errors go to stderr.
//! Generic over reader and writers so tests drive it without a real stdin.
//! Never touches the REPL history.

use std::io::{self, BufRead, Write};

use crate::backend::Backend;

use super::commands::{self, Outcome};
use super::render::Mode;

/// Run every command in `input`; results go to `out`, errors to `err`.
/// Blank lines and lines starting with `#` are skipped; `EXIT` stops early.
///
/// Returns the exit status: 0 if every command succeeded, 1 otherwise (also
/// when `input` cannot be read or `out` cannot be written).
pub fn run_script<R: BufRead, W: Write, E: Write>(
    docs: &dyn Backend,
    mut input: R,
    out: &mut W,
    err: &mut E,
    mode: Mode,
) -> i32 {
    let mut failed = false;
    let mut raw = Vec::new();
    let mut line_no = 0u64;
    loop {
        raw.clear();
        match input.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = writeln!(err, "error: reading commands: {e}");
                failed = true;
                break;
            }
        }
        line_no += 1;
        let Ok(line) = std::str::from_utf8(&raw) else {
            let _ = writeln!(err, "error: line {line_no}: not valid UTF-8");
            failed = true;
            continue;
        };
        if commands::is_blank_or_comment(line) {
            continue;
        }
        let written = match commands::run_line(docs, line, mode) {
            Ok(Outcome::Output(text)) if text.is_empty() => Ok(()),
            Ok(Outcome::Output(text)) => writeln!(out, "{text}"),
            Ok(Outcome::Exit) => break,
            Err(e) => {
                failed = true;
                // Flush results so far, keeping them in order with the error.
                let _ = out.flush();
                let _ = writeln!(err, "error: line {line_no}: {e}");
                Ok(())
            }
        };
        if let Err(e) = written {
            return output_failed(err, &e);
        }
    }
    if let Err(e) = out.flush() {
        return output_failed(err, &e);
    }
    i32::from(failed)
}

/// The reader went away (e.g. `| head`) or the disk is full: stop, exit 1.
fn output_failed<E: Write>(err: &mut E, e: &io::Error) -> i32 {
    if e.kind() != io::ErrorKind::BrokenPipe {
        let _ = writeln!(err, "error: writing output: {e}");
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::Documents;
    use crate::engine::Database;
    use crate::Config;

    fn db() -> Documents {
        Documents::open(Database::open(&Config::new().in_memory()).unwrap()).unwrap()
    }

    fn script(db: &Documents, input: &[u8]) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_script(db, input, &mut out, &mut err, Mode::Json);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn runs_all_lines_and_succeeds() {
        let db = db();
        let input = b"# load some users\n\nSET user:1 {\"name\": \"alice\"}\n  set user:2 {\"name\":\"bob\"}\r\n   # indented comment\nGET user:1\nKEYS user:\nDELETE user:2\nDELETE user:2\nCOUNT\n";
        let (code, out, err) = script(&db, input);
        assert_eq!(err, "");
        assert_eq!(code, 0);
        assert_eq!(
            out,
            "\"OK\"\n\"OK\"\n{\"name\":\"alice\"}\n[\"user:1\",\"user:2\"]\n1\n0\n1\n"
        );
    }

    #[test]
    fn keeps_going_after_errors_and_fails_at_the_end() {
        let db = db();
        let input = b"SET a 1\nGET missing\nFROB\nSET b {bad\nSET c 3\nCOUNT";
        let (code, out, err) = script(&db, input);
        assert_eq!(code, 1);
        assert_eq!(out, "\"OK\"\n\"OK\"\n2\n");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert_eq!(lines[0], "error: line 2: key not found: missing");
        assert!(
            lines[1].starts_with("error: line 3: unknown command \"FROB\""),
            "{err}"
        );
        assert!(
            lines[2].starts_with("error: line 4: invalid JSON value: "),
            "{err}"
        );
    }

    #[test]
    fn index_find_query_explain() {
        let db = db();
        let input = b"SET u:1 {\"role\": \"admin\", \"age\": 40}\n\
                      SET u:2 {\"role\": \"user\", \"age\": 20}\n\
                      INDEX role\n\
                      FIND role \"admin\"\n\
                      QUERY {\"age\": {\"$lt\": 30}}\n\
                      EXPLAIN {\"role\": \"user\"}\n";
        let (code, out, err) = script(&db, input);
        assert_eq!((code, err.as_str()), (0, ""));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[..5],
            [
                "\"OK\"",
                "\"OK\"",
                "\"OK\"",
                "[\"u:1\"]",
                "[[\"u:2\",{\"role\":\"user\",\"age\":20}]]"
            ]
        );
        let plan: serde_json::Value = serde_json::from_str(lines[5]).unwrap();
        assert_eq!(plan["index"], "role");
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn bad_filters_fail_the_script() {
        let db = db();
        let input = b"SET a {\"n\": 1}\nQUERY {\"n\": {\"$bad\": 1}}\nQUERY {bad\nEXPLAIN 5\nFIND n\nINDEX \"\"\nQUERY {\"n\": 1}\n";
        let (code, out, err) = script(&db, input);
        assert_eq!(code, 1);
        assert_eq!(out, "\"OK\"\n[[\"a\",{\"n\":1}]]\n");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 5, "{err}");
        assert!(
            lines[0].starts_with("error: line 2: invalid filter at filter.n"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("error: line 3: invalid JSON value: "),
            "{err}"
        );
        assert!(
            lines[2].starts_with("error: line 4: invalid filter at filter: expected an object"),
            "{err}"
        );
        assert!(
            lines[3].starts_with("error: line 5: FIND needs a JSON value"),
            "{err}"
        );
        assert!(
            lines[4].starts_with("error: line 6: invalid field"),
            "{err}"
        );
    }

    #[test]
    fn every_output_line_is_json() {
        let db = db();
        let input = b"SET \"my key\" {\"a\": [1, 2]}\nGET \"my key\"\nKEYS\nCOUNT\nINDEX a\nFIND a 1\n\
                      QUERY {}\nEXPLAIN {\"a\": 1}\nSTATS\nCOMPACT\nHELP\nHELP get\nDELETE \"my key\"\n";
        let (code, out, err) = script(&db, input);
        assert_eq!((code, err.as_str()), (0, ""));
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        assert_eq!(lines.len(), 13, "one line per command: {out}");
        assert_eq!(lines[0], "OK");
        assert_eq!(lines[1], serde_json::json!({"a": [1, 2]}));
        assert_eq!(lines[2], serde_json::json!(["my key"]));
        assert_eq!(lines[6], serde_json::json!([["my key", {"a": [1, 2]}]]));
        assert_eq!(lines[12], 1);
    }

    #[test]
    fn json_cut_short_is_reported_with_a_hint() {
        let db = db();
        let (code, out, err) = script(&db, b"SET a {\"x\":\n  1}\nCOUNT\n");
        assert_eq!(code, 1);
        assert_eq!(out, "0\n");
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines[0].starts_with("error: line 1: invalid JSON value: the text ends"),
            "{err}"
        );
        assert!(lines[0].contains("must be on one line"), "{err}");
        assert!(
            lines[1].starts_with("error: line 2: unknown command \"1}\""),
            "{err}"
        );
    }

    #[test]
    fn exit_stops_reading() {
        let db = db();
        let (code, out, err) = script(&db, b"SET a 1\nquit\nSET b 2\n");
        assert_eq!((code, out.as_str(), err.as_str()), (0, "\"OK\"\n", ""));
        assert_eq!(db.database().len(), 1);
        // A failure before EXIT still fails the script.
        let (code, _, _) = script(&db, b"GET nope\nEXIT\n");
        assert_eq!(code, 1);
    }

    #[test]
    fn empty_input_and_bad_utf8() {
        let db = db();
        assert_eq!(script(&db, b""), (0, String::new(), String::new()));
        assert_eq!(
            script(&db, b"\n\n# only comments\n"),
            (0, String::new(), String::new())
        );
        let (code, out, err) = script(&db, b"SET a \"\xff\"\nCOUNT\n");
        assert_eq!(code, 1);
        assert_eq!(out, "0\n");
        assert_eq!(err, "error: line 1: not valid UTF-8\n");
    }

    #[test]
    fn output_errors_stop_the_script() {
        struct Broken(io::ErrorKind);
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(self.0))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let db = db();
        let mut err = Vec::new();
        let code = run_script(
            &db,
            &b"SET a 1\nSET b 2\n"[..],
            &mut Broken(io::ErrorKind::BrokenPipe),
            &mut err,
            Mode::Json,
        );
        assert_eq!(
            (code, err.as_slice(), db.database().len()),
            (1, &b""[..], 1)
        );
        let code = run_script(
            &db,
            &b"COUNT\n"[..],
            &mut Broken(io::ErrorKind::StorageFull),
            &mut err,
            Mode::Json,
        );
        assert_eq!(code, 1);
        assert!(String::from_utf8(err)
            .unwrap()
            .starts_with("error: writing output: "));
    }
}
