//! Tab completion for the REPL: command names for the first word and for
//! `HELP`'s argument, and keys (the first 50 in order with the typed prefix,
//! from `keys_page`, so a huge database costs no more) for commands whose table
//! row says their first argument is a key. Pure, so it is tested without a terminal; `repl`
//! plugs it into rustyline.

use rustyline::completion::Pair;

use crate::engine::Database;

use super::commands::{lookup, COMMANDS};
use super::render::display_key;

/// Keys offered per completion.
const KEY_CANDIDATES: usize = 50;

/// Completions for the text before `pos` in `line`: the byte offset the
/// candidates replace from, and the candidates.
pub fn complete(db: &Database, line: &str, pos: usize) -> (usize, Vec<Pair>) {
    let before = line.get(..pos).unwrap_or(line);
    let word_start = before.len() - before.trim_start().len();
    let typed = &before[word_start..];
    match typed.find(char::is_whitespace) {
        None => (word_start, command_candidates(typed)),
        Some(at) => {
            let rest = &typed[at..];
            let arg_start = word_start + at + (rest.len() - rest.trim_start().len());
            let spec = lookup(&typed[..at]);
            let arg = &before[arg_start..];
            if spec.is_some_and(|s| s.name == "HELP") && !arg.contains(char::is_whitespace) {
                let words = command_candidates(arg)
                    .into_iter()
                    .map(|p| Pair {
                        replacement: p.display.clone(),
                        display: p.display,
                    })
                    .collect();
                return (arg_start, words);
            }
            let wants_key = spec.is_some_and(|spec| spec.completes_key);
            match key_prefix(arg) {
                Some(prefix) if wants_key => (arg_start, key_candidates(db, &prefix)),
                _ => (pos, Vec::new()),
            }
        }
    }
}

/// Command words starting with `typed`, in the case the user is typing in.
fn command_candidates(typed: &str) -> Vec<Pair> {
    let lower = typed.chars().any(|c| c.is_ascii_lowercase());
    COMMANDS
        .iter()
        .flat_map(|spec| {
            std::iter::once(spec.name)
                .chain(spec.aliases.iter().copied())
                .map(move |w| (spec, w))
        })
        .filter(|(_, word)| {
            word.len() >= typed.len() && word[..typed.len()].eq_ignore_ascii_case(typed)
        })
        .map(|(spec, word)| {
            let display = if lower {
                word.to_ascii_lowercase()
            } else {
                word.to_owned()
            };
            let replacement = if spec.takes_args() {
                format!("{display} ")
            } else {
                display.clone()
            };
            Pair {
                display,
                replacement,
            }
        })
        .collect()
}

/// The key prefix typed so far in the first argument, or `None` once the
/// argument is finished (a closing quote, or whitespace after a bare word).
fn key_prefix(arg: &str) -> Option<String> {
    let Some(quoted) = arg.strip_prefix('"') else {
        return (!arg.contains(char::is_whitespace)).then(|| arg.to_owned());
    };
    let mut escaped = false;
    for c in quoted.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return None,
            _ => {}
        }
    }
    if !quoted.contains('\\') {
        return Some(quoted.to_owned());
    }
    // Decode escapes typed so far; a dangling backslash is dropped.
    let complete = quoted
        .strip_suffix('\\')
        .filter(|_| escaped)
        .unwrap_or(quoted);
    serde_json::from_str(&format!("\"{complete}\"")).ok()
}

fn key_candidates(db: &Database, prefix: &str) -> Vec<Pair> {
    db.keys_page(prefix, None, KEY_CANDIDATES)
        .unwrap_or_default()
        .into_iter()
        .map(|key| Pair {
            replacement: display_key(&key),
            display: key,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn db() -> Database {
        let db = Database::open(&Config::new().in_memory()).unwrap();
        for key in ["user:1", "user:2", "user:10", "my key", "other"] {
            db.put_raw(key, b"1").unwrap();
        }
        db
    }

    fn replacements(db: &Database, line: &str) -> (usize, Vec<String>) {
        let (start, pairs) = complete(db, line, line.len());
        (start, pairs.into_iter().map(|p| p.replacement).collect())
    }

    #[test]
    fn command_words() {
        let db = db();
        assert_eq!(replacements(&db, "G"), (0, vec!["GET ".to_string()]));
        assert_eq!(replacements(&db, "  ge"), (2, vec!["get ".to_string()]));
        assert_eq!(
            replacements(&db, "co"),
            (0, vec!["count".to_string(), "compact".to_string()])
        );
        assert_eq!(
            replacements(&db, "Q"),
            (0, vec!["QUERY ".to_string(), "QUIT".to_string()])
        );
        assert_eq!(
            replacements(&db, "e"),
            (0, vec!["explain ".to_string(), "exit".to_string()])
        );
        assert_eq!(replacements(&db, "").1.len(), COMMANDS.len() + 1);
        assert!(replacements(&db, "xyz").1.is_empty());
        // Display has no trailing space.
        let (_, pairs) = complete(&db, "DEL", 3);
        assert_eq!(pairs[0].display, "DELETE");
    }

    #[test]
    fn keys_for_get_and_delete() {
        let db = db();
        assert_eq!(
            replacements(&db, "GET user:"),
            (
                4,
                vec![
                    "user:1".to_string(),
                    "user:10".to_string(),
                    "user:2".to_string()
                ]
            )
        );
        assert_eq!(
            replacements(&db, "delete   oth"),
            (9, vec!["other".to_string()])
        );
        assert_eq!(
            replacements(&db, "GET my"),
            (4, vec!["\"my key\"".to_string()])
        );
        assert_eq!(
            replacements(&db, "GET \"my k"),
            (4, vec!["\"my key\"".to_string()])
        );
        assert_eq!(replacements(&db, "GET ").1.len(), 5);
        // Cursor in the middle of the line: only the text before it counts.
        let (start, pairs) = complete(&db, "GET us trailing", 6);
        assert_eq!((start, pairs.len()), (4, 3));
    }

    #[test]
    fn no_key_completion_elsewhere() {
        let db = db();
        assert!(replacements(&db, "GET user:1 ").1.is_empty());
        assert!(replacements(&db, "GET \"my key\" ").1.is_empty());
        assert!(replacements(&db, "COUNT us").1.is_empty());
        assert!(replacements(&db, "FIND us").1.is_empty());
        assert!(replacements(&db, "FROB us").1.is_empty());
        assert!(replacements(&db, "SET user:1 {").1.is_empty());
        assert!(replacements(&db, "HELP GET x").1.is_empty());
    }

    #[test]
    fn keys_for_set_and_keys() {
        let db = db();
        assert_eq!(replacements(&db, "SET user:1").1.len(), 2);
        assert_eq!(
            replacements(&db, "keys oth"),
            (5, vec!["other".to_string()])
        );
    }

    #[test]
    fn help_completes_command_names() {
        let db = db();
        assert_eq!(
            replacements(&db, "HELP ex"),
            (5, vec!["explain".to_string(), "exit".to_string()])
        );
        assert_eq!(replacements(&db, "help D"), (5, vec!["DELETE".to_string()]));
    }

    #[test]
    fn key_candidates_are_bounded() {
        let db = Database::open(&Config::new().in_memory()).unwrap();
        for i in 0..500 {
            db.put_raw(&format!("k{i:04}"), b"1").unwrap();
        }
        let (_, keys) = replacements(&db, "GET k");
        assert_eq!(keys.len(), KEY_CANDIDATES);
        assert_eq!(keys[0], "k0000");
    }

    #[test]
    fn partial_quoted_prefixes() {
        assert_eq!(key_prefix(""), Some(String::new()));
        assert_eq!(key_prefix("ab"), Some("ab".into()));
        assert_eq!(key_prefix("ab "), None);
        assert_eq!(key_prefix("\"a b"), Some("a b".into()));
        assert_eq!(key_prefix("\"a\\\"b"), Some("a\"b".into()));
        assert_eq!(key_prefix("\"a\\"), Some("a".into()));
        assert_eq!(key_prefix("\"a\""), None);
    }
}
