//! The interactive REPL (stdin is a terminal): line editing and history in
//! `~/.ferrumdb_history` via rustyline, Tab completion from `complete`, and
//! each line run through `commands`. Ctrl-C clears the line, Ctrl-D leaves.

use std::path::PathBuf;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Context, Editor, Helper};

use crate::engine::Database;
use crate::index::Documents;

use super::commands::{self, Outcome};
use super::complete;
use super::render::JsonStyle;

/// History file name, in the home directory.
const HISTORY_FILE: &str = ".ferrumdb_history";

const PROMPT: &str = "ferrumdb> ";

/// Run the REPL until EXIT or Ctrl-D. Returns the exit status: 0, or 1 if the
/// terminal could not be used (failed commands are reported, not fatal).
pub fn run_repl(docs: &Documents, style: JsonStyle) -> i32 {
    let db = docs.database();
    let config = rustyline::Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<ReplHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("error: cannot start the line editor: {e}");
            return 1;
        }
    };
    editor.set_helper(Some(ReplHelper { db: db.clone() }));
    let history = history_path();
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
    let name = db
        .path()
        .map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string());
    println!(
        "FerrumDB {} — {name} ({} keys). Type HELP for commands, EXIT or Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION"),
        db.len()
    );
    let code = loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                if commands::is_blank_or_comment(&line) {
                    continue;
                }
                let _ = editor.add_history_entry(line.trim());
                match commands::run_line(docs, &line, style) {
                    Ok(Outcome::Output(text)) if text.is_empty() => {}
                    Ok(Outcome::Output(text)) => println!("{text}"),
                    Ok(Outcome::Exit) => break 0,
                    Err(e) => eprintln!("error: {e}"),
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break 0,
            Err(e) => {
                eprintln!("error: reading input: {e}");
                break 1;
            }
        }
    };
    if let Some(path) = &history {
        if let Err(e) = editor.save_history(path) {
            eprintln!("warning: could not save history to {}: {e}", path.display());
        }
    }
    code
}

fn history_path() -> Option<PathBuf> {
    std::env::home_dir().map(|home| home.join(HISTORY_FILE))
}

/// Connects rustyline to the database for key completion.
struct ReplHelper {
    db: Database,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(complete::complete(&self.db, line, pos))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {}

impl Helper for ReplHelper {}
