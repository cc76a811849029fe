//! Tab completion for the REPL: command names for the first word and for
//! `HELP`'s argument, keys (the first 50 in order with the typed prefix,
//! from `keys_page`, so a huge database costs no more) for commands whose table
//! row says their first argument is a key, `INDEX` and the indexed fields after
//! `DROP`, and a command's option words (`SORT`, `LIMIT`, ...) once what precedes
//! them is a complete command. Pure, so it is tested without a terminal; `repl`
//! plugs it into rustyline.

use rustyline::completion::Pair;

use crate::backend::Backend;

use super::commands::{self, lookup, CommandSpec, COMMANDS};
use super::render::display_key;

/// Keys offered per completion.
const KEY_CANDIDATES: usize = 50;

/// Completions for the text before `pos` in `line`: the byte offset the
/// candidates replace from, and the candidates.
pub fn complete(docs: &dyn Backend, line: &str, pos: usize) -> (usize, Vec<Pair>) {
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
                Some(prefix) if wants_key => return (arg_start, key_candidates(docs, &prefix)),
                _ => {}
            }
            let Some(spec) = spec else {
                return (pos, Vec::new());
            };
            // The word being typed, and the line before it.
            let word_at = before
                .rfind(char::is_whitespace)
                .map_or(before.len(), |at| at + 1);
            let word = &before[word_at..];
            if spec.name == "DROP" {
                return (
                    word_at,
                    drop_candidates(docs, &before[arg_start..word_at], word),
                );
            }
            let complete_before = commands::parse(&before[..word_at]).is_ok();
            if complete_before && !word.starts_with(['{', '[', '"']) {
                return (word_at, option_candidates(spec, word));
            }
            (pos, Vec::new())
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

/// Case-follow `word`: lower case if `typed` has a lower-case letter.
fn in_case_of(typed: &str, word: &str) -> String {
    if typed.chars().any(|c| c.is_ascii_lowercase()) {
        word.to_ascii_lowercase()
    } else {
        word.to_owned()
    }
}

/// After `DROP`: the word `INDEX`, then the indexed fields.
fn drop_candidates(docs: &dyn Backend, typed_before: &str, word: &str) -> Vec<Pair> {
    match typed_before
        .split_whitespace()
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] if "INDEX".len() >= word.len() && "INDEX"[..word.len()].eq_ignore_ascii_case(word) => {
            let display = in_case_of(word, "INDEX");
            vec![Pair {
                replacement: format!("{display} "),
                display,
            }]
        }
        [index] if index.eq_ignore_ascii_case("INDEX") => docs
            .indexes()
            .unwrap_or_default()
            .into_iter()
            .map(|index| index.field)
            .filter(|field| field.starts_with(word))
            .map(|field| Pair {
                replacement: display_key(&field),
                display: field,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `spec`'s option words starting with `word`; those that take a value get
/// a trailing space.
fn option_candidates(spec: &CommandSpec, word: &str) -> Vec<Pair> {
    spec.options
        .iter()
        .filter(|o| o.len() >= word.len() && o[..word.len()].eq_ignore_ascii_case(word))
        .map(|o| {
            let display = in_case_of(word, o);
            let flag = matches!(*o, "UPSERT" | "UNIQUE");
            Pair {
                replacement: if flag {
                    display.clone()
                } else {
                    format!("{display} ")
                },
                display,
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

fn key_candidates(db: &dyn Backend, prefix: &str) -> Vec<Pair> {
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
    use crate::documents::Documents;
    use crate::engine::Database;
    use crate::Config;

    fn db() -> Documents {
        let db = Database::open(&Config::new().in_memory()).unwrap();
        for key in ["user:1", "user:2", "user:10", "my key", "other"] {
            db.put_raw(key, b"1").unwrap();
        }
        Documents::open(db).unwrap()
    }

    fn replacements(db: &Documents, line: &str) -> (usize, Vec<String>) {
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
            (0, vec!["count ".to_string(), "compact".to_string()])
        );
        assert_eq!(
            replacements(&db, "Q"),
            (0, vec!["QUERY ".to_string(), "QUIT".to_string()])
        );
        assert_eq!(
            replacements(&db, "e"),
            (0, vec!["explain ".to_string(), "exit".to_string()])
        );
        let aliases: usize = COMMANDS.iter().map(|c| c.aliases.len()).sum();
        assert_eq!(replacements(&db, "").1.len(), COMMANDS.len() + aliases);
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
        assert_eq!(
            replacements(&db, "help D"),
            (
                5,
                [
                    "DELETE",
                    "DEL",
                    "DROP",
                    "DISTINCT",
                    "DELETEMANY",
                    "DELETE_MANY"
                ]
                .map(String::from)
                .to_vec()
            )
        );
    }

    #[test]
    fn update_completes_keys_and_drop_completes_indexes() {
        let db = db();
        assert_eq!(
            replacements(&db, "UPDATE oth"),
            (7, vec!["other".to_string()])
        );
        assert_eq!(replacements(&db, "DROP "), (5, vec!["INDEX ".to_string()]));
        assert_eq!(
            replacements(&db, "drop in"),
            (5, vec!["index ".to_string()])
        );
        assert!(replacements(&db, "DROP INDEX ").1.is_empty());
        db.create_index("age").unwrap();
        db.create_index("address.city").unwrap();
        assert_eq!(
            replacements(&db, "DROP INDEX "),
            (11, vec!["address.city".to_string(), "age".to_string()])
        );
        assert_eq!(
            replacements(&db, "DROP INDEX ag"),
            (11, vec!["age".to_string()])
        );
        assert!(replacements(&db, "DROP INDEX age ").1.is_empty());
    }

    #[test]
    fn option_words_once_the_command_is_complete() {
        let db = db();
        assert_eq!(
            replacements(&db, "SET k {a: 1} e"),
            (13, vec!["ex ".to_string()])
        );
        assert_eq!(
            replacements(&db, "KEYS user: L"),
            (11, vec!["LIMIT ".to_string()])
        );
        assert_eq!(
            replacements(&db, "QUERY {} "),
            (
                9,
                ["SORT ", "LIMIT ", "SKIP ", "FIELDS ", "PREFIX "]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(
            replacements(&db, "query {\"a\": 1} li"),
            (15, vec!["limit ".to_string()])
        );
        assert_eq!(
            replacements(&db, "QUERY {} SORT -age S"),
            (19, vec!["SORT ".to_string(), "SKIP ".to_string()])
        );
        // Not inside the JSON, nor where an option's value goes.
        assert!(replacements(&db, "QUERY {\"a\": ").1.is_empty());
        assert!(replacements(&db, "QUERY {} LIMIT ").1.is_empty());
        assert_eq!(
            replacements(&db, "UPDATE k {\"$inc\": {\"n\": 1}} up"),
            (28, vec!["upsert".to_string()])
        );
        assert_eq!(
            replacements(&db, "INDEX age U"),
            (10, vec!["UNIQUE".to_string()])
        );
        assert_eq!(
            replacements(&db, "COUNT "),
            (6, vec!["PREFIX ".to_string()])
        );
        assert!(replacements(&db, "STATS ").1.is_empty());
    }

    #[test]
    fn key_candidates_are_bounded() {
        let db = Database::open(&Config::new().in_memory()).unwrap();
        for i in 0..500 {
            db.put_raw(&format!("k{i:04}"), b"1").unwrap();
        }
        let db = Documents::open(db).unwrap();
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
