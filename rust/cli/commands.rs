//! REPL commands: the command table, parsing one line into a [`Command`], and
//! executing it against [`Documents`] (the database with its indexes) to
//! produce output text or an error.
//!
//! No terminal and no stdout here, so the REPL, script mode and tests share it.
//! To add a command: a row in [`COMMANDS`], a [`Command`] variant, an arm in [`execute`].

use std::fmt;

use serde_json::{json, Value};

use crate::documents::Documents;
use crate::engine::{Database, Stats};
use crate::error::Error;

use super::render::{self, display_key, Mode, Reply};

/// Keys fetched per `keys_page` call by `KEYS`.
const KEYS_PAGE: usize = 1000;

/// One row of the command table: everything HELP, parsing and completion need.
pub struct CommandSpec {
    /// Canonical (upper-case) command word.
    pub name: &'static str,
    /// Other words accepted for the same command.
    pub aliases: &'static [&'static str],
    /// Synopsis, e.g. `GET <key>`.
    pub usage: &'static str,
    /// One line for the HELP list.
    pub summary: &'static str,
    /// Longer description for `HELP <command>`.
    pub details: &'static str,
    /// An example invocation.
    pub example: &'static str,
    /// The first argument is a key (or key prefix), so the REPL tab-completes it from the database.
    pub completes_key: bool,
    /// Turns the text after the command word into a [`Command`].
    parse: fn(&'static CommandSpec, &str) -> Result<Command, CommandError>,
}

impl CommandSpec {
    /// Whether `word` names this command (case-insensitive).
    pub fn matches(&self, word: &str) -> bool {
        self.name.eq_ignore_ascii_case(word)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(word))
    }

    /// Whether the command takes any arguments.
    pub fn takes_args(&self) -> bool {
        self.usage.len() > self.name.len()
    }
}

/// Every REPL command, in the order HELP lists them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "SET",
        aliases: &[],
        usage: "SET <key> <json>",
        summary: "store a JSON document under a key",
        details: "Stores <json> (the rest of the line, any JSON value) under <key>, replacing any previous value. \
                  The key is the first word, or a double-quoted JSON string if it contains spaces. \
                  Strings need double quotes: SET name \"alice\".",
        example: "SET user:1 {\"name\": \"alice\", \"age\": 30}",
        completes_key: true,
        parse: parse_set,
    },
    CommandSpec {
        name: "GET",
        aliases: &[],
        usage: "GET <key>",
        summary: "show the document stored under a key",
        details: "Prints the JSON stored under <key>: indented at a terminal, on one line when piped. \
                  A missing key is an error. Quote keys that contain spaces: GET \"my key\".",
        example: "GET user:1",
        completes_key: true,
        parse: parse_one_key,
    },
    CommandSpec {
        name: "DELETE",
        aliases: &[],
        usage: "DELETE <key>",
        summary: "remove a key (prints 1 if it existed, 0 if not)",
        details: "Removes <key> and prints 1, or prints 0 if there was no such key (not an error).",
        example: "DELETE user:1",
        completes_key: true,
        parse: parse_one_key,
    },
    CommandSpec {
        name: "KEYS",
        aliases: &[],
        usage: "KEYS [prefix]",
        summary: "list keys, optionally only those starting with a prefix",
        details: "Prints every key (or every key starting with [prefix]) in order, one per line; \
                  keys that contain spaces are shown quoted, as you would type them. When piped: \
                  one JSON array of the keys.",
        example: "KEYS user:",
        completes_key: true,
        parse: parse_keys,
    },
    CommandSpec {
        name: "COUNT",
        aliases: &[],
        usage: "COUNT",
        summary: "number of keys",
        details: "Prints the number of live keys.",
        example: "COUNT",
        completes_key: false,
        parse: |spec, args| no_args(spec, args, Command::Count),
    },
    CommandSpec {
        name: "INDEX",
        aliases: &[],
        usage: "INDEX <field>",
        summary: "create a secondary index on a document field",
        details: "Creates an index on <field> (a dotted path such as address.city reaches into nested \
                  objects), built from the existing documents, kept up to date on every write and \
                  remembered when the database is reopened. FIND and QUERY use it. Prints OK, also \
                  when the index already exists.",
        example: "INDEX address.city",
        completes_key: false,
        parse: parse_index,
    },
    CommandSpec {
        name: "FIND",
        aliases: &[],
        usage: "FIND <field> <json>",
        summary: "keys of the documents whose field equals a JSON value",
        details: "Prints, one per line in key order, the key of every document whose <field> equals \
                  <json> (the rest of the line). An array field matches if any element equals the value. \
                  FIND <field> null also matches documents without the field, as in MongoDB. \
                  Uses the index on <field> when there is one, else scans. Strings need double quotes. \
                  When piped: one JSON array of the keys.",
        example: "FIND address.city \"Paris\"",
        completes_key: false,
        parse: parse_find,
    },
    CommandSpec {
        name: "QUERY",
        aliases: &[],
        usage: "QUERY <json-filter>",
        summary: "documents matching a Mongo-style filter",
        details: "Prints each matching document in key order: the key, a tab, and the document, \
                  indented (when piped: one line, [[key, document], ...]). The filter is a JSON object: \
                  {\"field\": value} for equality, or operators $eq $ne $gt $gte $lt $lte $in $nin $exists, \
                  combined with $and and $or. Dotted fields reach into nested objects.",
        example: "QUERY {\"role\": \"admin\", \"age\": {\"$gte\": 30}}",
        completes_key: false,
        parse: parse_query,
    },
    CommandSpec {
        name: "EXPLAIN",
        aliases: &[],
        usage: "EXPLAIN <json-filter>",
        summary: "show how QUERY would run a filter",
        details: "Prints the plan QUERY would use for <json-filter> as JSON: index (the field whose index \
                  is used, or null), scan (whether every document is read), estimated_rows, and the probe.",
        example: "EXPLAIN {\"age\": {\"$gte\": 30}}",
        completes_key: false,
        parse: parse_query,
    },
    CommandSpec {
        name: "COMPACT",
        aliases: &[],
        usage: "COMPACT",
        summary: "rewrite the file with live data only",
        details: "Rewrites the database file keeping only the current value of each key, reclaiming the \
                  space of overwritten and deleted records, and prints the file size before and after \
                  (when piped: {\"file_bytes_before\": ..., \"file_bytes_after\": ...}).",
        example: "COMPACT",
        completes_key: false,
        parse: |spec, args| no_args(spec, args, Command::Compact),
    },
    CommandSpec {
        name: "STATS",
        aliases: &[],
        usage: "STATS",
        summary: "counters and sizes as JSON",
        details: "Prints a JSON object: keys, gets, sets, deletes (since open), ops_per_sec, uptime_s, \
                  file_bytes (size of the file) and live_bytes (size of the live records).",
        example: "STATS",
        completes_key: false,
        parse: |spec, args| no_args(spec, args, Command::Stats),
    },
    CommandSpec {
        name: "HELP",
        aliases: &[],
        usage: "HELP [command]",
        summary: "list commands, or show one command's usage and an example",
        details: "Without an argument, lists the commands. With one, shows its usage, what it does and an example.",
        example: "HELP SET",
        completes_key: false,
        parse: parse_help,
    },
    CommandSpec {
        name: "EXIT",
        aliases: &["QUIT"],
        usage: "EXIT",
        summary: "leave (also QUIT, or Ctrl-D)",
        details: "Closes the database and leaves. In a script, the lines after it are not run.",
        example: "EXIT",
        completes_key: false,
        parse: |spec, args| no_args(spec, args, Command::Exit),
    },
];

/// The table row for `word`, if it names a command.
pub fn lookup(word: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|spec| spec.matches(word))
}

/// A parsed command, ready to execute.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `SET <key> <json>`.
    Set {
        /// The key.
        key: String,
        /// The parsed document.
        value: Value,
    },
    /// `GET <key>`.
    Get {
        /// The key.
        key: String,
    },
    /// `DELETE <key>`.
    Delete {
        /// The key.
        key: String,
    },
    /// `KEYS [prefix]` (empty prefix: every key).
    Keys {
        /// Only keys starting with this.
        prefix: String,
    },
    /// `COUNT`.
    Count,
    /// `INDEX <field>`.
    Index {
        /// The field path.
        field: String,
    },
    /// `FIND <field> <json>`.
    Find {
        /// The field path.
        field: String,
        /// The value it must equal.
        value: Value,
    },
    /// `QUERY <json-filter>`.
    Query {
        /// The filter, not yet checked (the index layer says what is wrong).
        filter: Value,
    },
    /// `EXPLAIN <json-filter>`.
    Explain {
        /// The filter.
        filter: Value,
    },
    /// `COMPACT`.
    Compact,
    /// `STATS`.
    Stats,
    /// `HELP [command]`.
    Help {
        /// The command asked about, as typed.
        topic: Option<String>,
    },
    /// `EXIT` / `QUIT`.
    Exit,
}

/// What running a command asks the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Print this (nothing when empty; the caller adds the final newline).
    Output(String),
    /// Stop reading commands.
    Exit,
}

/// Why a command failed. Displayed after `error: `.
#[derive(Debug)]
pub enum CommandError {
    /// The command word is not in the table.
    Unknown(String),
    /// `HELP <topic>` names no command.
    UnknownTopic(String),
    /// The arguments do not fit the command.
    Usage {
        /// What is wrong.
        message: String,
        /// The command's synopsis.
        usage: &'static str,
    },
    /// `SET` was given something that is not JSON.
    InvalidJson(String),
    /// The JSON argument stops before it is complete (an open `{`, `[` or
    /// string): the REPL reads another line; a script reports it.
    IncompleteJson(String),
    /// `GET` of a key that does not exist (shown as typed).
    NotFound(String),
    /// The stored value under a key is not valid JSON.
    BadStoredValue {
        /// The key, shown as typed.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database refused.
    Db(Error),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown(word) => {
                write!(f, "unknown command {word:?}")?;
                if let Some(name) = closest_command(word) {
                    write!(f, " (did you mean {name}?)")?;
                }
                write!(f, "; type HELP for the list of commands")
            }
            CommandError::UnknownTopic(word) => {
                write!(f, "HELP: there is no command {word:?}")?;
                if let Some(name) = closest_command(word) {
                    write!(f, " (did you mean {name}?)")?;
                }
                let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
                write!(f, "; the commands are {}", names.join(" "))
            }
            CommandError::Usage { message, usage } => write!(f, "{message} (usage: {usage})"),
            CommandError::InvalidJson(msg) => write!(f, "invalid JSON value: {msg}"),
            CommandError::IncompleteJson(msg) => write!(
                f,
                "invalid JSON value: {msg} (the JSON is cut short; a command and its JSON \
                 must be on one line here)"
            ),
            CommandError::NotFound(key) => write!(f, "key not found: {key}"),
            CommandError::BadStoredValue { key, reason } => {
                write!(
                    f,
                    "the value stored under {key} is not valid JSON: {reason}"
                )
            }
            CommandError::Db(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CommandError {}

impl From<Error> for CommandError {
    fn from(e: Error) -> Self {
        CommandError::Db(e)
    }
}

/// Whether `line` is a command whose JSON argument is still open (so the REPL
/// should read another line rather than report an error).
pub fn is_incomplete(line: &str) -> bool {
    matches!(parse(line), Err(CommandError::IncompleteJson(_)))
}

/// Whether a line holds no command: blank, or a `#` comment.
pub fn is_blank_or_comment(line: &str) -> bool {
    let line = line.trim();
    line.is_empty() || line.starts_with('#')
}

/// Parse one command line (surrounding whitespace ignored).
///
/// # Errors
/// [`CommandError::Unknown`], [`CommandError::Usage`], [`CommandError::InvalidJson`].
pub fn parse(line: &str) -> Result<Command, CommandError> {
    let line = line.trim();
    let (word, args) = match line.find(char::is_whitespace) {
        Some(at) => (&line[..at], line[at..].trim_start()),
        None => (line, ""),
    };
    if word.is_empty() {
        return Err(CommandError::Usage {
            message: "empty command".into(),
            usage: "HELP",
        });
    }
    let spec = lookup(word).ok_or_else(|| CommandError::Unknown(word.to_owned()))?;
    (spec.parse)(spec, args)
}

/// Parse and execute one line, and lay out the reply for `mode`.
///
/// # Errors
/// See [`parse`] and [`execute`].
pub fn run_line(docs: &Documents, line: &str, mode: Mode) -> Result<Outcome, CommandError> {
    Ok(match execute(docs, &parse(line)?)? {
        None => Outcome::Exit,
        Some(reply) => Outcome::Output(render::reply(&reply, mode)),
    })
}

/// Execute `cmd` against `docs`: its reply, or `None` for `EXIT`.
///
/// # Errors
/// [`CommandError::NotFound`] for `GET` of a missing key, [`CommandError::Db`]
/// when the database refuses (including a malformed filter or field path),
/// [`CommandError::UnknownTopic`] for `HELP` of an unknown command.
pub fn execute(docs: &Documents, cmd: &Command) -> Result<Option<Reply>, CommandError> {
    let db = docs.database();
    let reply = match cmd {
        Command::Set { key, value } => {
            let bytes =
                serde_json::to_vec(value).map_err(|e| CommandError::InvalidJson(e.to_string()))?;
            db.put_raw(key, &bytes)?;
            Reply::Ok
        }
        Command::Get { key } => match db.get_raw(key)? {
            None => return Err(CommandError::NotFound(display_key(key))),
            Some(buf) => Reply::Json(render::checked_json(buf.as_bytes()).map_err(|reason| {
                CommandError::BadStoredValue {
                    key: display_key(key),
                    reason,
                }
            })?),
        },
        Command::Delete { key } => Reply::Deleted(db.delete(key)?),
        Command::Keys { prefix } => Reply::Keys(list_keys(db, prefix)?),
        Command::Count => Reply::Count(db.len()),
        Command::Index { field } => {
            docs.create_index(field)?;
            Reply::Ok
        }
        Command::Find { field, value } => Reply::Keys(docs.find(field, value)?),
        Command::Query { filter } => Reply::Rows(query_rows(docs, filter)?),
        Command::Explain { filter } => Reply::Json(docs.explain(filter)?.to_string()),
        Command::Compact => {
            let before = db.stats()?.file_bytes;
            db.compact()?;
            let after = db.stats()?.file_bytes;
            Reply::Compacted { before, after }
        }
        Command::Stats => Reply::Json(stats_json(&db.stats()?)?),
        Command::Help { topic: None } => help_list(),
        Command::Help { topic: Some(topic) } => {
            help_topic(lookup(topic).ok_or_else(|| CommandError::UnknownTopic(topic.clone()))?)
        }
        Command::Exit => return Ok(None),
    };
    Ok(Some(reply))
}

/// `QUERY` results: `(key, document)` pairs in key order. The query parsed
/// every document it returns, so each is JSON already: only the bytes' text is
/// taken, not checked again.
fn query_rows(docs: &Documents, filter: &Value) -> Result<Vec<(String, String)>, CommandError> {
    docs.query(filter, None, None, 0)?
        .into_iter()
        .map(|row| {
            let doc = String::from_utf8_lossy(row.raw.as_bytes()).into_owned();
            Ok((row.key, doc))
        })
        .collect()
}

fn list_keys(db: &Database, prefix: &str) -> Result<Vec<String>, CommandError> {
    let mut out = Vec::new();
    loop {
        let page = db.keys_page(prefix, out.last().map(String::as_str), KEYS_PAGE)?;
        let done = page.len() < KEYS_PAGE;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// `engine::Stats` as one compact JSON object: the same fields as
/// `db.stats()` and Studio's `/api/stats` (NaN/inf become null).
fn stats_json(s: &Stats) -> Result<String, CommandError> {
    serde_json::to_string(s).map_err(|e| CommandError::Db(std::io::Error::from(e).into()))
}

/// The HELP list: one line per command (as JSON, one object per command).
pub fn help_list() -> Reply {
    let width = COMMANDS.iter().map(|c| c.usage.len()).max().unwrap_or(0);
    let mut text = String::from("Commands (case-insensitive):\n");
    for spec in COMMANDS {
        text.push_str(&format!("  {:width$}  {}\n", spec.usage, spec.summary));
    }
    text.push_str("Type HELP <command> for details and an example.");
    let json: Vec<Value> = COMMANDS
        .iter()
        .map(|spec| json!({"command": spec.name, "usage": spec.usage, "summary": spec.summary}))
        .collect();
    Reply::Help {
        text,
        json: Value::from(json).to_string(),
    }
}

/// `HELP <command>`: usage, description, aliases and an example.
fn help_topic(spec: &CommandSpec) -> Reply {
    let mut text = format!("{}\n", spec.usage);
    wrap_into(&mut text, spec.details, "  ", HELP_WIDTH);
    if !spec.aliases.is_empty() {
        text.push_str(&format!("  Also: {}\n", spec.aliases.join(", ")));
    }
    text.push_str(&format!("Example:\n  {}", spec.example));
    let json = json!({
        "command": spec.name,
        "usage": spec.usage,
        "summary": spec.summary,
        "description": spec.details.split_whitespace().collect::<Vec<_>>().join(" "),
        "aliases": spec.aliases,
        "example": spec.example,
    });
    Reply::Help {
        text,
        json: json.to_string(),
    }
}

/// The command word closest to `word` (a likely typo), if any is close.
fn closest_command(word: &str) -> Option<&'static str> {
    let upper = word.to_ascii_uppercase();
    COMMANDS
        .iter()
        .flat_map(|spec| std::iter::once(spec.name).chain(spec.aliases.iter().copied()))
        .map(|name| (strsim::damerau_levenshtein(&upper, name), name))
        .filter(|(distance, name)| *distance <= 2 && *distance < name.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Line width HELP text is wrapped to.
const HELP_WIDTH: usize = 80;

/// Append `text` word-wrapped to `width` columns, each line starting with `indent`.
fn wrap_into(out: &mut String, text: &str, indent: &str, width: usize) {
    let mut col = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if col > 0 && col + 1 + len > width {
            out.push('\n');
            col = 0;
        }
        if col == 0 {
            out.push_str(indent);
            col = indent.len();
        } else {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += len;
    }
    out.push('\n');
}

fn usage_error(spec: &CommandSpec, message: impl Into<String>) -> CommandError {
    CommandError::Usage {
        message: message.into(),
        usage: spec.usage,
    }
}

/// Split the first argument off `args` (already left-trimmed): a JSON string
/// when it starts with `"`, otherwise the text up to the next whitespace.
/// Returns `None` when `args` is empty.
fn take_token(args: &str) -> Result<Option<(String, &str)>, String> {
    if args.is_empty() {
        return Ok(None);
    }
    if !args.starts_with('"') {
        let end = args.find(char::is_whitespace).unwrap_or(args.len());
        return Ok(Some((args[..end].to_owned(), args[end..].trim_start())));
    }
    let bytes = args.as_bytes();
    let mut i = 1;
    let close = loop {
        match bytes.get(i) {
            None => return Err(format!("missing closing quote in {args}")),
            Some(b'\\') => i += 2,
            Some(b'"') => break i,
            Some(_) => i += 1,
        }
    };
    let literal = &args[..=close];
    let token: String =
        serde_json::from_str(literal).map_err(|e| format!("bad quoted string {literal}: {e}"))?;
    let rest = &args[close + 1..];
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return Err(format!(
            "expected a space after the quoted string {literal}"
        ));
    }
    Ok(Some((token, rest.trim_start())))
}

/// The key argument every keyed command starts with.
fn required_key<'a>(spec: &CommandSpec, args: &'a str) -> Result<(String, &'a str), CommandError> {
    match take_token(args) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(usage_error(spec, format!("{} needs a key", spec.name))),
        Err(msg) => Err(usage_error(spec, msg)),
    }
}

/// `json` (already trimmed, not empty) as a JSON value.
fn parse_json(json: &str) -> Result<Value, CommandError> {
    serde_json::from_str(json).map_err(|e| {
        if e.is_eof() {
            return CommandError::IncompleteJson(e.to_string());
        }
        let looks_like_word = json.starts_with(|c: char| c.is_alphabetic() || c == '\'');
        let hint = if looks_like_word {
            " (strings need double quotes, e.g. \"hello\")"
        } else {
            ""
        };
        CommandError::InvalidJson(format!("{e}{hint}"))
    })
}

fn parse_set(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (key, json) = required_key(spec, args)?;
    let json = json.trim();
    if json.is_empty() {
        return Err(usage_error(spec, "SET needs a JSON value after the key"));
    }
    let value = parse_json(json)?;
    Ok(Command::Set { key, value })
}

/// The field argument of `INDEX` and `FIND` (quoted if it contains spaces).
fn required_field<'a>(
    spec: &CommandSpec,
    args: &'a str,
) -> Result<(String, &'a str), CommandError> {
    match take_token(args) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(usage_error(
            spec,
            format!("{} needs a field name, e.g. age or address.city", spec.name),
        )),
        Err(msg) => Err(usage_error(spec, msg)),
    }
}

fn parse_index(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (field, rest) = required_field(spec, args)?;
    if !rest.is_empty() {
        return Err(usage_error(
            spec,
            "INDEX takes one field; use a dotted path such as address.city for nested fields",
        ));
    }
    Ok(Command::Index { field })
}

fn parse_find(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (field, json) = required_field(spec, args)?;
    let json = json.trim();
    if json.is_empty() {
        return Err(usage_error(spec, "FIND needs a JSON value after the field"));
    }
    let value = parse_json(json)?;
    Ok(Command::Find { field, value })
}

/// `QUERY` and `EXPLAIN`: the rest of the line is a JSON filter object.
fn parse_query(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let json = args.trim();
    if json.is_empty() {
        return Err(usage_error(
            spec,
            format!(
                "{} needs a JSON filter, e.g. {{\"role\": \"admin\"}}",
                spec.name
            ),
        ));
    }
    let filter = parse_json(json)?;
    Ok(match spec.name {
        "EXPLAIN" => Command::Explain { filter },
        _ => Command::Query { filter },
    })
}

fn parse_one_key(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (key, rest) = required_key(spec, args)?;
    if !rest.is_empty() {
        return Err(usage_error(
            spec,
            format!(
                "{} takes one key; quote keys that contain spaces, e.g. {} \"my key\"",
                spec.name, spec.name
            ),
        ));
    }
    Ok(match spec.name {
        "DELETE" => Command::Delete { key },
        _ => Command::Get { key },
    })
}

fn parse_keys(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    match take_token(args) {
        Ok(None) => Ok(Command::Keys {
            prefix: String::new(),
        }),
        Ok(Some((prefix, ""))) => Ok(Command::Keys { prefix }),
        Ok(Some(_)) => Err(usage_error(
            spec,
            "KEYS takes at most one prefix; quote prefixes that contain spaces",
        )),
        Err(msg) => Err(usage_error(spec, msg)),
    }
}

fn parse_help(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let mut words = args.split_whitespace();
    let topic = words.next().map(str::to_owned);
    if words.next().is_some() {
        return Err(usage_error(spec, "HELP takes at most one command name"));
    }
    Ok(Command::Help { topic })
}

fn no_args(spec: &CommandSpec, args: &str, cmd: Command) -> Result<Command, CommandError> {
    if args.is_empty() {
        Ok(cmd)
    } else {
        Err(usage_error(
            spec,
            format!("{} takes no arguments", spec.name),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use serde_json::json;

    fn db() -> Documents {
        Documents::open(Database::open(&Config::new().in_memory()).unwrap()).unwrap()
    }

    fn run(db: &Documents, line: &str) -> Result<String, String> {
        match run_line(db, line, Mode::Json) {
            Ok(Outcome::Output(text)) => Ok(text),
            Ok(Outcome::Exit) => Ok("<exit>".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn ok(db: &Documents, line: &str) -> String {
        run(db, line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    /// The output a person at a terminal sees (without colour).
    fn human(db: &Documents, line: &str) -> String {
        match run_line(db, line, Mode::Human { color: false }) {
            Ok(Outcome::Output(text)) => text,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn err(db: &Documents, line: &str) -> String {
        match run(db, line) {
            Ok(out) => panic!("{line}: expected an error, got {out:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_every_command_case_insensitively() {
        assert_eq!(
            parse("set k {\"a\": 1}").unwrap(),
            Command::Set {
                key: "k".into(),
                value: json!({"a": 1})
            }
        );
        assert_eq!(
            parse("  Get   k  ").unwrap(),
            Command::Get { key: "k".into() }
        );
        assert_eq!(
            parse("delete k").unwrap(),
            Command::Delete { key: "k".into() }
        );
        assert_eq!(
            parse("KEYS").unwrap(),
            Command::Keys {
                prefix: String::new()
            }
        );
        assert_eq!(
            parse("keys user:").unwrap(),
            Command::Keys {
                prefix: "user:".into()
            }
        );
        assert_eq!(parse("count").unwrap(), Command::Count);
        assert_eq!(parse("Compact").unwrap(), Command::Compact);
        assert_eq!(parse("stats").unwrap(), Command::Stats);
        assert_eq!(parse("help").unwrap(), Command::Help { topic: None });
        assert_eq!(
            parse("help get").unwrap(),
            Command::Help {
                topic: Some("get".into())
            }
        );
        assert_eq!(
            parse("index age").unwrap(),
            Command::Index {
                field: "age".into()
            }
        );
        assert_eq!(
            parse("Find address.city \"Paris\"").unwrap(),
            Command::Find {
                field: "address.city".into(),
                value: json!("Paris")
            }
        );
        assert_eq!(
            parse("query {\"a\": {\"$gt\": 1}}").unwrap(),
            Command::Query {
                filter: json!({"a": {"$gt": 1}})
            }
        );
        assert_eq!(
            parse("EXPLAIN {}").unwrap(),
            Command::Explain { filter: json!({}) }
        );
        assert_eq!(parse("exit").unwrap(), Command::Exit);
        assert_eq!(parse("QUIT").unwrap(), Command::Exit);
        assert_eq!(parse("quit").unwrap(), Command::Exit);
    }

    #[test]
    fn quoted_keys() {
        assert_eq!(
            parse(r#"SET "my key" [1, 2]"#).unwrap(),
            Command::Set {
                key: "my key".into(),
                value: json!([1, 2])
            }
        );
        assert_eq!(
            parse(r#"GET "a \"b\" c""#).unwrap(),
            Command::Get {
                key: "a \"b\" c".into()
            }
        );
        assert_eq!(
            parse(r#"GET "tab\there""#).unwrap(),
            Command::Get {
                key: "tab\there".into()
            }
        );
        assert_eq!(
            parse(r#"KEYS "user 1""#).unwrap(),
            Command::Keys {
                prefix: "user 1".into()
            }
        );
        // A quote inside a bare key is just a character.
        assert_eq!(
            parse(r#"GET a"b"#).unwrap(),
            Command::Get { key: "a\"b".into() }
        );
        // The value may start right after the key's whitespace, and be a string.
        assert_eq!(
            parse("SET \"k\" \"v w\"").unwrap(),
            Command::Set {
                key: "k".into(),
                value: json!("v w")
            }
        );
    }

    #[test]
    fn quoting_errors() {
        let e = parse(r#"GET "unterminated"#).unwrap_err().to_string();
        assert!(e.contains("missing closing quote"), "{e}");
        let e = parse(r#"SET "k"{"a":1}"#).unwrap_err().to_string();
        assert!(e.contains("expected a space after"), "{e}");
        let e = parse(r#"GET "bad \q escape""#).unwrap_err().to_string();
        assert!(e.contains("bad quoted string"), "{e}");
        let e = parse(r#"GET "ends with backslash\"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing closing quote"), "{e}");
    }

    #[test]
    fn missing_and_extra_arguments() {
        for (line, needle) in [
            ("SET", "SET needs a key (usage: SET <key> <json>)"),
            ("SET k", "SET needs a JSON value after the key"),
            ("SET k    ", "SET needs a JSON value after the key"),
            ("GET", "GET needs a key (usage: GET <key>)"),
            ("DELETE", "DELETE needs a key"),
            (
                "GET my key",
                "GET takes one key; quote keys that contain spaces",
            ),
            ("DELETE a b", "DELETE takes one key"),
            ("KEYS a b", "KEYS takes at most one prefix"),
            ("COUNT 1", "COUNT takes no arguments (usage: COUNT)"),
            ("COMPACT now", "COMPACT takes no arguments"),
            ("STATS x", "STATS takes no arguments"),
            ("EXIT now", "EXIT takes no arguments"),
            ("HELP a b", "HELP takes at most one command name"),
            (
                "INDEX",
                "INDEX needs a field name, e.g. age or address.city (usage: INDEX <field>)",
            ),
            ("INDEX a b", "INDEX takes one field"),
            ("FIND", "FIND needs a field name"),
            ("FIND age", "FIND needs a JSON value after the field"),
            (
                "QUERY",
                "QUERY needs a JSON filter, e.g. {\"role\": \"admin\"} (usage: QUERY <json-filter>)",
            ),
            ("EXPLAIN  ", "EXPLAIN needs a JSON filter"),
        ] {
            let e = parse(line).unwrap_err().to_string();
            assert!(e.contains(needle), "{line}: {e}");
        }
    }

    #[test]
    fn bad_json() {
        let e = parse("SET k {\"a\": }").unwrap_err();
        assert!(matches!(e, CommandError::InvalidJson(_)), "{e:?}");
        assert!(e.to_string().starts_with("invalid JSON value: "), "{e}");
        let e = parse("SET k hello").unwrap_err().to_string();
        assert!(e.contains("strings need double quotes"), "{e}");
        let e = parse("SET k {} {}").unwrap_err().to_string();
        assert!(e.contains("trailing characters"), "{e}");
        let e = parse("SET k 'single'").unwrap_err().to_string();
        assert!(e.contains("strings need double quotes"), "{e}");
        // Nothing is stored.
        let db = db();
        err(&db, "SET k [1,");
        assert_eq!(db.database().len(), 0);
    }

    #[test]
    fn open_json_asks_for_more_input() {
        for line in [
            "SET k {",
            "SET k {\"a\": [1,",
            "SET k \"abc",
            "QUERY {\"a\":\n",
            "FIND f [",
        ] {
            assert!(is_incomplete(line), "{line}");
        }
        for line in [
            "SET k {}",
            "SET k {bad",
            "SET k",
            "GET \"open",
            "FROB {",
            "SET k {\"a\":\n 1}",
        ] {
            assert!(!is_incomplete(line), "{line}");
        }
        // The continued line parses as one command.
        assert_eq!(
            parse("SET k {\n  \"a\": 1\n}").unwrap(),
            Command::Set {
                key: "k".into(),
                value: json!({"a": 1})
            }
        );
    }

    #[test]
    fn unknown_commands_suggest_help() {
        let e = parse("FROB x").unwrap_err();
        assert!(matches!(&e, CommandError::Unknown(w) if w == "FROB"));
        assert_eq!(
            e.to_string(),
            "unknown command \"FROB\"; type HELP for the list of commands"
        );
        assert!(parse("   ").is_err());
        let db = db();
        let e = err(&db, "HELP frob");
        assert!(e.contains("there is no command \"frob\""), "{e}");
        assert!(e.contains("the commands are SET GET DELETE"), "{e}");
        assert!(err(&db, "HELP gte").contains("(did you mean GET?)"));
        assert_eq!(
            err(&db, "GTE k"),
            "unknown command \"GTE\" (did you mean GET?); type HELP for the list of commands"
        );
        assert!(err(&db, "stast").contains("did you mean STATS?"));
        assert!(!err(&db, "xyzzy").contains("did you mean"));
    }

    #[test]
    fn set_get_delete() {
        let db = db();
        assert_eq!(
            ok(
                &db,
                r#"SET user:1 {"name": "alice", "tags": ["a", "b"], "age": 30}"#
            ),
            "\"OK\""
        );
        // Stored compact, fields in the order they were typed.
        let stored = db.database().get_raw("user:1").unwrap().unwrap();
        assert_eq!(
            stored.as_bytes(),
            br#"{"name":"alice","tags":["a","b"],"age":30}"#
        );
        assert_eq!(
            ok(&db, "GET user:1"),
            r#"{"name":"alice","tags":["a","b"],"age":30}"#
        );
        let pretty = run_line(&db, "get user:1", Mode::Human { color: false }).unwrap();
        assert_eq!(
            pretty,
            Outcome::Output("{\n  \"name\": \"alice\",\n  \"tags\": [\n    \"a\",\n    \"b\"\n  ],\n  \"age\": 30\n}".into())
        );
        assert_eq!(ok(&db, "SET user:1 \"replaced\""), "\"OK\"");
        assert_eq!(ok(&db, "GET user:1"), "\"replaced\"");
        assert_eq!(ok(&db, "DELETE user:1"), "1");
        assert_eq!(ok(&db, "DELETE user:1"), "0");
        assert_eq!(err(&db, "GET user:1"), "key not found: user:1");
        assert!(matches!(
            run_line(&db, "GET user:1", Mode::Json),
            Err(CommandError::NotFound(_))
        ));
    }

    #[test]
    fn scalar_values_and_spaced_keys() {
        let db = db();
        for (line, shown) in [
            ("SET n 42", "42"),
            ("SET b true", "true"),
            ("SET z null", "null"),
            ("SET f -1.5e3", "-1500.0"),
        ] {
            assert_eq!(ok(&db, line), "\"OK\"");
            let key = line.split(' ').nth(1).unwrap();
            assert_eq!(ok(&db, &format!("GET {key}")), shown);
        }
        assert_eq!(ok(&db, "SET \"my key\" 1"), "\"OK\"");
        assert_eq!(ok(&db, "GET \"my key\""), "1");
        assert_eq!(
            err(&db, "GET \"other key\""),
            "key not found: \"other key\""
        );
        // The engine's key rules come through as errors.
        assert!(err(&db, "SET \"\" 1").contains("invalid key"));
    }

    #[test]
    fn keys_lists_everything_in_pages() {
        let db = db();
        assert_eq!(ok(&db, "KEYS"), "[]");
        assert_eq!(human(&db, "KEYS"), "(no keys)");
        let n = 2 * KEYS_PAGE + 17;
        for i in 0..n {
            db.database().put_raw(&format!("k{i:05}"), b"1").unwrap();
        }
        db.database().put_raw("other", b"1").unwrap();
        db.database().put_raw("k with space", b"1").unwrap();
        let all = human(&db, "KEYS");
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(lines.len(), n + 2);
        assert_eq!(lines[0], "\"k with space\"");
        assert_eq!(lines[1], "k00000");
        assert_eq!(lines[n], &format!("k{:05}", n - 1));
        assert_eq!(lines[n + 1], "other");
        assert!(lines.windows(2).all(|w| w[0] != w[1]));
        let some = human(&db, "KEYS k0001");
        assert_eq!(some.lines().count(), 10);
        assert_eq!(human(&db, "keys oth"), "other");
        assert_eq!(human(&db, "KEYS \"k with\""), "\"k with space\"");
        // For a program: one line, a JSON array of the keys as stored.
        assert_eq!(ok(&db, "KEYS \"k with\""), "[\"k with space\"]");
        let keys: Vec<String> = serde_json::from_str(&ok(&db, "KEYS")).unwrap();
        assert_eq!(keys.len(), n + 2);
        assert_eq!(keys[0], "k with space");
        assert_eq!(ok(&db, "KEYS nomatch"), "[]");
    }

    #[test]
    fn count_compact_stats() {
        let db = db();
        assert_eq!(ok(&db, "COUNT"), "0");
        for i in 0..20 {
            ok(&db, &format!("SET k {i}"));
        }
        ok(&db, "SET other {}");
        assert_eq!(ok(&db, "count"), "2");
        let before = db.database().stats().unwrap().file_bytes;
        let out = human(&db, "COMPACT");
        let after = db.database().stats().unwrap().file_bytes;
        assert!(after < before, "{before} -> {after}");
        assert_eq!(out, format!("{before} → {after} bytes"));
        let again: Value = serde_json::from_str(&ok(&db, "COMPACT")).unwrap();
        assert_eq!(
            again,
            json!({"file_bytes_before": after, "file_bytes_after": after})
        );
        assert_eq!(ok(&db, "GET k"), "19");

        let stats: Value = serde_json::from_str(&ok(&db, "STATS")).unwrap();
        let obj = stats.as_object().unwrap();
        for field in [
            "keys",
            "gets",
            "sets",
            "deletes",
            "ops_per_sec",
            "uptime_s",
            "file_bytes",
            "live_bytes",
        ] {
            assert!(obj.contains_key(field), "{field} missing from {stats}");
        }
        assert_eq!(stats["keys"], json!(2));
        assert_eq!(stats["sets"], json!(21));
        assert_eq!(stats["file_bytes"], json!(after));
        let pretty = run_line(&db, "STATS", Mode::Human { color: false }).unwrap();
        assert!(
            matches!(pretty, Outcome::Output(t) if t.starts_with("{\n  \"keys\": 2,\n  \"gets\": "))
        );
    }

    #[test]
    fn help_and_exit() {
        let db = db();
        let list = human(&db, "HELP");
        for spec in COMMANDS {
            assert!(list.contains(spec.usage), "{} missing from HELP", spec.name);
        }
        let set = human(&db, "help set");
        assert!(set.starts_with("SET <key> <json>\n"), "{set}");
        assert!(set.contains("Example:\n  SET user:1 "), "{set}");
        assert!(human(&db, "HELP quit").contains("Also: QUIT"));
        // For a program: one JSON line, an array of commands or one command.
        let list: Value = serde_json::from_str(&ok(&db, "HELP")).unwrap();
        assert_eq!(list.as_array().unwrap().len(), COMMANDS.len());
        assert_eq!(list[1]["usage"], json!("GET <key>"));
        let get: Value = serde_json::from_str(&ok(&db, "HELP get")).unwrap();
        assert_eq!(get["command"], json!("GET"));
        assert_eq!(get["example"], json!("GET user:1"));
        assert!(get["description"].as_str().unwrap().contains("missing key"));
        for spec in COMMANDS {
            let text = human(&db, &format!("HELP {}", spec.name));
            assert!(
                text.lines().all(|l| l.chars().count() <= HELP_WIDTH),
                "{text}"
            );
        }
        assert_eq!(run_line(&db, "EXIT", Mode::Json).unwrap(), Outcome::Exit);
    }

    #[test]
    fn every_example_parses() {
        for spec in COMMANDS {
            let cmd = parse(spec.example).unwrap_or_else(|e| panic!("{}: {e}", spec.example));
            assert!(
                spec.matches(spec.example.split(' ').next().unwrap()),
                "{cmd:?}"
            );
        }
    }

    fn people(db: &Documents) {
        for (key, doc) in [
            (
                "p:1",
                r#"{"name":"ann","age":31,"tags":["a","b"],"address":{"city":"Paris"}}"#,
            ),
            (
                "p:2",
                r#"{"name":"bob","age":25,"tags":["b"],"address":{"city":"Oslo"}}"#,
            ),
            (
                "p 3",
                r#"{"name":"cy","age":40,"address":{"city":"Paris"}}"#,
            ),
            ("other", r#"[1, 2]"#),
        ] {
            assert_eq!(ok(db, &format!("SET {} {doc}", display_key(key))), "\"OK\"");
        }
    }

    #[test]
    fn index_and_find() {
        let db = db();
        people(&db);
        // Without an index FIND scans; with one it probes; same answer.
        let scanned = human(&db, "FIND address.city \"Paris\"");
        assert_eq!(scanned, "\"p 3\"\np:1");
        assert_eq!(ok(&db, "FIND address.city \"Paris\""), "[\"p 3\",\"p:1\"]");
        assert_eq!(ok(&db, "INDEX address.city"), "\"OK\"");
        assert_eq!(ok(&db, "index address.city"), "\"OK\"");
        assert_eq!(db.indexes(), vec!["address.city".to_string()]);
        assert_eq!(human(&db, "FIND address.city \"Paris\""), scanned);
        // Array fields match on any element; no match prints an empty array.
        assert_eq!(ok(&db, "FIND tags \"b\""), "[\"p:1\",\"p:2\"]");
        assert_eq!(ok(&db, "FIND age 25"), "[\"p:2\"]");
        assert_eq!(ok(&db, "FIND age \"25\""), "[]");
        assert_eq!(human(&db, "FIND nosuch 1"), "(no keys)");
        // As in MongoDB, null also matches documents without the field.
        assert_eq!(human(&db, "FIND nosuch null").lines().count(), 4);
        // The index follows later writes.
        ok(&db, "SET p:2 {\"address\": {\"city\": \"Paris\"}}");
        assert_eq!(
            human(&db, "FIND address.city \"Paris\""),
            "\"p 3\"\np:1\np:2"
        );
        ok(&db, "DELETE p:1");
        assert_eq!(human(&db, "FIND address.city \"Paris\""), "\"p 3\"\np:2");
    }

    #[test]
    fn index_and_find_errors() {
        let db = db();
        people(&db);
        let e = err(&db, "INDEX a..b");
        assert!(e.starts_with("invalid filter at field \"a..b\""), "{e}");
        assert!(db.indexes().is_empty());
        let e = err(&db, "FIND age paris");
        assert!(e.contains("strings need double quotes"), "{e}");
        assert!(matches!(
            run_line(&db, "FIND age [1,", Mode::Json),
            Err(CommandError::IncompleteJson(_))
        ));
        assert!(matches!(
            run_line(&db, "FIND age [1,]", Mode::Json),
            Err(CommandError::InvalidJson(_))
        ));
    }

    #[test]
    fn query_prints_key_tab_document() {
        let db = db();
        people(&db);
        // For a program: one line, [[key, document], ...] in key order.
        assert_eq!(
            ok(&db, "QUERY {\"age\": {\"$gte\": 30}}"),
            "[[\"p 3\",{\"name\":\"cy\",\"age\":40,\"address\":{\"city\":\"Paris\"}}],\
             [\"p:1\",{\"name\":\"ann\",\"age\":31,\"tags\":[\"a\",\"b\"],\"address\":{\"city\":\"Paris\"}}]]"
        );
        ok(&db, "INDEX age");
        let out = ok(
            &db,
            "query {\"age\": {\"$lt\": 30}, \"tags\": {\"$in\": [\"b\"]}}",
        );
        assert_eq!(
            out,
            "[[\"p:2\",{\"name\":\"bob\",\"age\":25,\"tags\":[\"b\"],\"address\":{\"city\":\"Oslo\"}}]]"
        );
        assert_eq!(ok(&db, "QUERY {\"age\": 99}"), "[]");
        assert_eq!(human(&db, "QUERY {\"age\": 99}"), "(no documents)");
        // Every document matches the empty filter, non-objects included.
        let all: Vec<(String, Value)> = serde_json::from_str(&ok(&db, "QUERY {}")).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0], ("other".to_string(), json!([1, 2])));
        // At a terminal the document is indented after the tab.
        let pretty = run_line(
            &db,
            "QUERY {\"name\": \"bob\"}",
            Mode::Human { color: false },
        )
        .unwrap();
        assert_eq!(
            pretty,
            Outcome::Output(
                "p:2\t{\n  \"name\": \"bob\",\n  \"age\": 25,\n  \"tags\": [\n    \"b\"\n  ],\n  \"address\": {\n    \"city\": \"Oslo\"\n  }\n}"
                    .into()
            )
        );
    }

    #[test]
    fn query_and_explain_errors() {
        let db = db();
        people(&db);
        for cmd in ["QUERY", "EXPLAIN"] {
            let e = err(&db, &format!("{cmd} {{\"age\": {{\"$foo\": 1}}}}"));
            assert!(e.starts_with("invalid filter at filter.age"), "{e}");
            let e = err(&db, &format!("{cmd} [1, 2]"));
            assert!(e.contains("expected an object"), "{e}");
            assert!(matches!(
                run_line(&db, &format!("{cmd} {{\"age\": "), Mode::Json),
                Err(CommandError::IncompleteJson(_))
            ));
            let e = err(&db, &format!("{cmd} {{\"a\": 1}} extra"));
            assert!(e.contains("trailing characters"), "{e}");
        }
    }

    #[test]
    fn explain_shows_the_plan() {
        let db = db();
        people(&db);
        let plan: Value = serde_json::from_str(&ok(&db, "EXPLAIN {\"age\": 31}")).unwrap();
        assert_eq!(plan["index"], Value::Null);
        assert_eq!(plan["scan"], json!(true));
        ok(&db, "INDEX age");
        let plan: Value = serde_json::from_str(&ok(&db, "explain {\"age\": 31}")).unwrap();
        assert_eq!(plan["index"], json!("age"));
        assert_eq!(plan["scan"], json!(false));
        assert_eq!(plan["estimated_rows"], json!(1));
        let compact = ok(&db, "EXPLAIN {\"age\": 31}");
        assert_eq!(compact.lines().count(), 1);
        let Outcome::Output(pretty) =
            run_line(&db, "EXPLAIN {\"age\": 31}", Mode::Human { color: false }).unwrap()
        else {
            panic!("no output")
        };
        assert!(pretty.starts_with("{\n  \"index\": \"age\",\n"), "{pretty}");
    }

    #[test]
    fn database_errors_surface() {
        let db = db();
        db.database().close().unwrap();
        assert!(err(&db, "GET k").contains("closed"));
        assert!(err(&db, "SET k 1").contains("closed"));
        assert!(err(&db, "STATS").contains("closed"));
        assert!(err(&db, "INDEX age").contains("closed"));
        assert!(err(&db, "FIND age 1").contains("closed"));
        assert!(err(&db, "QUERY {}").contains("closed"));
    }
}
