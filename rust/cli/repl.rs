//! The interactive REPL (stdin is a terminal): line editing and history in
//! `$HOME/.ferrumdb_history` via rustyline (appended after every command, so
//! it survives a killed session and two sessions do not clobber each other;
//! lines typed with a leading space are not recorded), Tab completion from
//! `complete`, and each line run through `commands`. A command whose JSON is
//! still open (`SET k {` + Enter) continues on the next line. Ctrl-C clears
//! the line, Ctrl-D on an empty line (or EXIT) leaves. For an encrypted
//! database no history file is read or written (it would hold the keys and
//! values typed, in plain text); Up/Down still recall the session's lines.

use std::path::PathBuf;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{CompletionType, Context, Editor, Helper};

use crate::backend::SharedBackend;

use super::commands::{self, Outcome, Progress};
use super::complete;
use super::render::{self, Mode};

/// History file name, in the home directory.
const HISTORY_FILE: &str = ".ferrumdb_history";

const PROMPT: &str = "ferrumdb> ";

/// Run the REPL until EXIT or Ctrl-D. Returns the exit status: 0, or 1 if the
/// terminal could not be used (failed commands are reported, not fatal).
/// `history_file`: read and append `$HOME/.ferrumdb_history`.
pub fn run_repl(docs: &SharedBackend, mode: Mode, history_file: bool) -> i32 {
    let config = rustyline::Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .history_ignore_space(true)
        .build();
    let mut editor: Editor<ReplHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("error: cannot start the line editor: {e}");
            return 1;
        }
    };
    editor.set_helper(Some(ReplHelper { docs: docs.clone() }));
    let mut history = history_path().filter(|_| history_file);
    if let Some(path) = &history {
        match editor.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "warning: could not read history from {}: {e}",
                path.display()
            ),
        }
    }
    let error = render::error_prefix(console::colors_enabled_stderr());
    let name = docs.location();
    let keys = match docs.len() {
        Ok(n) => n.to_string(),
        Err(e) => {
            eprintln!("{error} {e}");
            return 1;
        }
    };
    println!(
        "FerrumDB {} — {name} ({} keys{}). Type HELP for commands, EXIT or Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION"),
        keys,
        if history_file {
            ""
        } else {
            "; encrypted, so no history file"
        }
    );
    let mut hinted_exit = false;
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                if commands::is_blank_or_comment(&line) {
                    continue;
                }
                let _ = editor.add_history_entry(line.trim_end());
                if let Some(path) = &history {
                    if let Err(e) = editor.append_history(path) {
                        eprintln!(
                            "warning: could not save history to {}: {e}; history is off for this session",
                            path.display()
                        );
                        history = None;
                    }
                }
                match commands::run_line_with(docs.as_ref(), &line, mode, Progress::Bar) {
                    Ok(Outcome::Output(text)) if text.is_empty() => {}
                    Ok(Outcome::Output(text)) => println!("{text}"),
                    Ok(Outcome::Exit) => return 0,
                    Err(e) => eprintln!("{error} {e}"),
                }
            }
            Err(ReadlineError::Interrupted) => {
                if !hinted_exit {
                    eprintln!("(Ctrl-C clears the line; type EXIT or press Ctrl-D to leave)");
                    hinted_exit = true;
                }
            }
            Err(ReadlineError::Eof) => return 0,
            Err(e) => {
                eprintln!("{error} reading input: {e}");
                return 1;
            }
        }
    }
}

fn history_path() -> Option<PathBuf> {
    std::env::home_dir().map(|home| home.join(HISTORY_FILE))
}

/// Connects rustyline to the database for key and index completion.
struct ReplHelper {
    docs: SharedBackend,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(complete::complete(self.docs.as_ref(), line, pos))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {
    /// Enter inside an open JSON value starts a new line instead of running it.
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if commands::is_incomplete(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Helper for ReplHelper {}
