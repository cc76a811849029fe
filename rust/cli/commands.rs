//! REPL commands: the command table, parsing one line into a [`Command`], and
//! executing it against a [`Backend`] (a FerrumDB file with its indexes, or
//! a PostgreSQL table) to produce output text or an error.
//!
//! No terminal and no stdout here, so the REPL, script mode and tests share it.
//! To add a command: a row in [`COMMANDS`], a [`Command`] variant, an arm in [`execute`].

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::backend::Backend;
use crate::documents::QueryOptions;
use crate::error::Error;
use crate::json::relaxed::{self, RelaxedError};

use super::render::{self, display_key, Mode, Reply};

/// Keys fetched per `keys_page` call by `KEYS`.
const KEYS_PAGE: usize = 1000;

/// How many keys (`KEYS`) or documents (`QUERY`) a person at a terminal sees
/// when they give no `LIMIT`: a screenful or two, then how many more there
/// are, rather than 11,000 lines scrolling by. Piped output is never cut.
/// (The HELP text of `KEYS` and `QUERY` says 100.)
pub const SCREEN_LIMIT: usize = 100;

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
    /// Option words accepted after the command's arguments (`SORT`, `LIMIT`,
    /// ...), each at most once; the REPL tab-completes them.
    pub options: &'static [&'static str],
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
        usage: "SET <key> <json> [EX seconds]",
        summary: "store a JSON document under a key",
        details: "Stores <json> (any JSON value) under <key>, replacing any previous value and TTL. \
                  With EX seconds the key expires that many seconds from now (fractions allowed, \
                  at least 0.001). The key is the first word, or a double-quoted JSON string if it \
                  contains spaces. Strings need quotes: SET name \"alice\". As typed JSON, single \
                  quotes and unquoted keys are accepted too: SET user:2 {name: 'bob'}.",
        example: "SET session:9 {\"user\": \"alice\"} EX 3600",
        completes_key: true,
        options: &["EX"],
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
        options: &[],
        parse: parse_one_key,
    },
    CommandSpec {
        name: "DELETE",
        aliases: &["DEL"],
        usage: "DELETE <key>",
        summary: "remove a key (prints 1 if it existed, 0 if not)",
        details: "Removes <key> and prints 1, or prints 0 if there was no such key (not an error).",
        example: "DELETE user:1",
        completes_key: true,
        options: &[],
        parse: parse_one_key,
    },
    CommandSpec {
        name: "KEYS",
        aliases: &[],
        usage: "KEYS [prefix] [LIMIT n]",
        summary: "list keys, optionally only those starting with a prefix",
        details: "Prints every key (or every key starting with [prefix]) in order, one per line; \
                  keys that contain spaces are shown quoted, as you would type them. At a terminal \
                  it stops after 100 keys and says how many more there are; LIMIT n shows n \
                  instead. When piped: one JSON array of all the keys (or the first n).",
        example: "KEYS user: LIMIT 500",
        completes_key: true,
        options: &["LIMIT"],
        parse: parse_keys,
    },
    CommandSpec {
        name: "TTL",
        aliases: &[],
        usage: "TTL <key>",
        summary: "seconds until a key expires",
        details: "Prints the seconds left before <key> expires (with millisecond precision), or \
                  (no expiry) for a key without a TTL (when piped: the number, or null). A missing \
                  key is an error. Set a TTL with SET <key> <json> EX seconds; remove it with PERSIST.",
        example: "TTL session:9",
        completes_key: true,
        options: &[],
        parse: parse_one_key,
    },
    CommandSpec {
        name: "PERSIST",
        aliases: &[],
        usage: "PERSIST <key>",
        summary: "remove a key's TTL (prints 1 if it had one, 0 if not)",
        details: "Makes <key> permanent, keeping its value, and prints 1, or 0 if it had no TTL. \
                  A missing key is an error. The value is rewritten only if nobody changed it \
                  in between (another process's write is never lost).",
        example: "PERSIST session:9",
        completes_key: true,
        options: &[],
        parse: parse_one_key,
    },
    CommandSpec {
        name: "COUNT",
        aliases: &[],
        usage: "COUNT [json-filter] [PREFIX p]",
        summary: "number of keys, or of the documents matching a filter",
        details: "Without arguments, prints the number of live keys. With a JSON filter (as for QUERY), \
                  prints how many documents match it; PREFIX p counts only keys starting with p. An \
                  indexed equality, $in or range is counted from the index without reading documents.",
        example: "COUNT {\"role\": \"admin\"} PREFIX user:",
        completes_key: false,
        options: &["PREFIX"],
        parse: parse_count,
    },
    CommandSpec {
        name: "INDEX",
        aliases: &[],
        usage: "INDEX <field> [UNIQUE]",
        summary: "create a secondary index on a document field",
        details: "Creates an index on <field> (a dotted path such as address.city reaches into nested \
                  objects), built from the existing documents, kept up to date on every write and \
                  remembered when the database is reopened. FIND, QUERY and COUNT use it. Prints OK, \
                  also when the index already exists. With UNIQUE, a write that would give two \
                  documents the same value there is refused and writes nothing (a document without \
                  the field counts as null, as in MongoDB); creating it over existing duplicates \
                  fails naming a duplicated value. At a terminal a progress bar shows the build.",
        example: "INDEX address.city",
        completes_key: false,
        options: &["UNIQUE"],
        parse: parse_index,
    },
    CommandSpec {
        name: "INDEXES",
        aliases: &[],
        usage: "INDEXES",
        summary: "list the indexed fields",
        details: "Prints each indexed field in order, followed by (unique) for a unique index. When \
                  piped: one JSON array of {\"field\": ..., \"unique\": ...} objects.",
        example: "INDEXES",
        completes_key: false,
        options: &[],
        parse: |spec, args| no_args(spec, args, Command::Indexes),
    },
    CommandSpec {
        name: "DROP",
        aliases: &[],
        usage: "DROP INDEX <field>",
        summary: "remove the index on a field (prints 1 if it existed, 0 if not)",
        details: "Removes the index on <field> and prints 1, or prints 0 if there was none. The \
                  documents are not touched.",
        example: "DROP INDEX address.city",
        completes_key: false,
        options: &[],
        parse: parse_drop,
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
        options: &[],
        parse: parse_find,
    },
    CommandSpec {
        name: "QUERY",
        aliases: &[],
        usage: "QUERY <json-filter> [SORT f|-f] [LIMIT n] [SKIP n] [FIELDS a,b] [PREFIX p]",
        summary: "documents matching a Mongo-style filter",
        details: "Prints each matching document: the key, a tab, and the document, indented (when \
                  piped: one line, [[key, document], ...]). The filter is a JSON object: \
                  {\"field\": value} for equality, or operators such as $eq $ne $gt $gte $lt $lte $in \
                  $nin $exists $regex $size $all $elemMatch $not, combined with $and $or $nor. Dotted \
                  fields reach into nested objects. Options, in any order: SORT age (ascending), \
                  SORT -age (descending) or SORT role,-age; LIMIT n; SKIP n; FIELDS name,address.city \
                  keeps only those paths of each document; PREFIX user: only keys starting with user:. \
                  Without SORT, documents come in key order. At a terminal, without LIMIT, it stops \
                  after 100 documents and says how many more match. Single quotes and unquoted keys \
                  are accepted: QUERY {role: 'admin'}.",
        example: "QUERY {\"age\": {\"$gte\": 30}} SORT -age LIMIT 10 FIELDS name,age",
        completes_key: false,
        options: &["SORT", "LIMIT", "SKIP", "FIELDS", "PREFIX"],
        parse: parse_query,
    },
    CommandSpec {
        name: "DISTINCT",
        aliases: &[],
        usage: "DISTINCT <field> [json-filter] [PREFIX p]",
        summary: "the distinct values of a field",
        details: "Prints the distinct values of <field> (a dotted path) among the documents matching \
                  the filter (all when there is none), in query sort order, one per line (when piped: \
                  one JSON array). An array field counts element by element; documents without the \
                  field add nothing. PREFIX p looks only at keys starting with p.",
        example: "DISTINCT address.city {\"age\": {\"$gte\": 30}}",
        completes_key: false,
        options: &["PREFIX"],
        parse: parse_distinct,
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
        options: &[],
        parse: parse_explain,
    },
    CommandSpec {
        name: "UPDATE",
        aliases: &[],
        usage: "UPDATE <key> <json-update> [UPSERT]",
        summary: "apply update operators to the document under a key",
        details: "Applies <json-update>, an object of operators ($set $unset $inc $mul $min $max \
                  $rename $push $pull $addToSet $pop, on dotted paths), to the document under <key> \
                  atomically, and prints the document as written. A missing key prints null and \
                  writes nothing; with UPSERT it starts from {}. A bad operator or a type error (such \
                  as $inc on a string) is an error naming the key and path, and writes nothing. The \
                  key's TTL is kept.",
        example: "UPDATE user:1 {\"$inc\": {\"visits\": 1}, \"$set\": {\"seen\": true}}",
        completes_key: true,
        options: &["UPSERT"],
        parse: parse_update,
    },
    CommandSpec {
        name: "UPDATEMANY",
        aliases: &["UPDATE_MANY"],
        usage: "UPDATEMANY <json-filter> <json-update> [PREFIX p]",
        summary: "apply update operators to every matching document",
        details: "Applies <json-update> (operators as for UPDATE) to every document matching \
                  <json-filter>, all or nothing, and prints how many documents changed. One failing \
                  document (a type error) fails the command and writes nothing. PREFIX p updates only \
                  keys starting with p. Case-insensitive like every command, so updateMany works as in \
                  mongosh.",
        example: "UPDATEMANY {\"role\": \"guest\"} {\"$set\": {\"active\": false}}",
        completes_key: false,
        options: &["PREFIX"],
        parse: parse_update_many,
    },
    CommandSpec {
        name: "DELETEMANY",
        aliases: &["DELETE_MANY"],
        usage: "DELETEMANY <json-filter> [PREFIX p]",
        summary: "remove every document matching a filter",
        details: "Deletes every document matching <json-filter>, all or nothing, and prints how many. \
                  PREFIX p deletes only keys starting with p. DELETEMANY {} PREFIX p empties a \
                  \"collection\". Also deleteMany, as in mongosh.",
        example: "DELETEMANY {\"active\": false} PREFIX user:",
        completes_key: false,
        options: &["PREFIX"],
        parse: parse_delete_many,
    },
    CommandSpec {
        name: "COMPACT",
        aliases: &[],
        usage: "COMPACT",
        summary: "rewrite the file with live data only",
        details: "Rewrites the database file keeping only the current value of each key, reclaiming the \
                  space of overwritten and deleted records, and prints the file size before and after \
                  (when piped: {\"file_bytes_before\": ..., \"file_bytes_after\": ...}). At a \
                  terminal a progress bar shows the records copied.",
        example: "COMPACT",
        completes_key: false,
        options: &[],
        parse: |spec, args| no_args(spec, args, Command::Compact),
    },
    CommandSpec {
        name: "STATS",
        aliases: &[],
        usage: "STATS",
        summary: "counters and sizes as JSON",
        details: "Prints the JSON object db.stats() returns in Python (and Studio's /api/stats): \
                  keys, gets, sets, deletes (since open), ops_per_sec, uptime_s, file_bytes (size of \
                  the file), live_bytes (size of the live records), index_bytes and compactions.",
        example: "STATS",
        completes_key: false,
        options: &[],
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
        options: &[],
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
        options: &[],
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
    /// `SET <key> <json> [EX seconds]`.
    Set {
        /// The key.
        key: String,
        /// The parsed document.
        value: Value,
        /// `EX seconds`: the key expires this long from now.
        ttl: Option<Duration>,
    },
    /// `GET <key>`.
    Get {
        /// The key.
        key: String,
    },
    /// `DELETE <key>` (also `DEL`).
    Delete {
        /// The key.
        key: String,
    },
    /// `TTL <key>`.
    Ttl {
        /// The key.
        key: String,
    },
    /// `PERSIST <key>`.
    Persist {
        /// The key.
        key: String,
    },
    /// `KEYS [prefix] [LIMIT n]` (empty prefix: every key).
    Keys {
        /// Only keys starting with this.
        prefix: String,
        /// `LIMIT`.
        options: Options,
    },
    /// `COUNT [json-filter] [PREFIX p]`.
    Count {
        /// The filter; `None` counts every key.
        filter: Option<Value>,
        /// `PREFIX`.
        options: Options,
    },
    /// `INDEX <field> [UNIQUE]`.
    Index {
        /// The field path.
        field: String,
        /// Whether the index refuses duplicate values.
        unique: bool,
    },
    /// `INDEXES`.
    Indexes,
    /// `DROP INDEX <field>`.
    DropIndex {
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
    /// `QUERY <json-filter> [SORT ...] [LIMIT n] [SKIP n] [FIELDS ...] [PREFIX p]`.
    Query {
        /// The filter, not yet checked (the index layer says what is wrong).
        filter: Value,
        /// Sort, limit, skip, projection and key prefix.
        options: Options,
    },
    /// `DISTINCT <field> [json-filter] [PREFIX p]`.
    Distinct {
        /// The field path.
        field: String,
        /// The filter; `None` for every document.
        filter: Option<Value>,
        /// `PREFIX`.
        options: Options,
    },
    /// `UPDATE <key> <json-update> [UPSERT]`.
    Update {
        /// The key.
        key: String,
        /// The update operators, not yet checked.
        update: Value,
        /// `UPSERT`.
        options: Options,
    },
    /// `UPDATEMANY <json-filter> <json-update> [PREFIX p]`.
    UpdateMany {
        /// The filter.
        filter: Value,
        /// The update operators.
        update: Value,
        /// `PREFIX`.
        options: Options,
    },
    /// `DELETEMANY <json-filter> [PREFIX p]`.
    DeleteMany {
        /// The filter.
        filter: Value,
        /// `PREFIX`.
        options: Options,
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

/// The option words that may follow a command's arguments, as parsed. Which
/// ones a command takes is its table row's `options`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// `SORT f`, `SORT -f` or `SORT a,-b`, as the sort specification
    /// `Documents::query_with` takes.
    pub sort: Option<Value>,
    /// `LIMIT n`.
    pub limit: Option<usize>,
    /// `SKIP n`.
    pub skip: Option<usize>,
    /// `FIELDS a,b.c`, as a JSON array of paths.
    pub fields: Option<Value>,
    /// `PREFIX p`: only keys starting with `p`.
    pub prefix: Option<String>,
    /// `UPSERT`.
    pub upsert: bool,
    /// `EX seconds`: a TTL.
    pub expire: Option<Duration>,
}

impl Options {
    fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or("")
    }
}

/// Whether long commands (`COMPACT`, `INDEX`) draw a progress bar on
/// standard error: at the interactive prompt, not in a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// No bar (script mode, tests).
    Hidden,
    /// A bar, drawn when standard error is a terminal.
    Bar,
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
pub fn run_line(docs: &dyn Backend, line: &str, mode: Mode) -> Result<Outcome, CommandError> {
    run_line_with(docs, line, mode, Progress::Hidden)
}

/// [`run_line`], drawing progress bars for long commands when `progress` says so.
///
/// # Errors
/// See [`parse`] and [`execute`].
pub fn run_line_with(
    docs: &dyn Backend,
    line: &str,
    mode: Mode,
    progress: Progress,
) -> Result<Outcome, CommandError> {
    // A person reads a page; a program reads everything.
    let page = match mode {
        Mode::Human { .. } => Some(SCREEN_LIMIT),
        Mode::Json => None,
    };
    Ok(match execute(docs, &parse(line)?, progress, page)? {
        None => Outcome::Exit,
        Some(reply) => Outcome::Output(render::reply(&reply, mode)),
    })
}

/// Execute `cmd` against `docs`: its reply, or `None` for `EXIT`. With
/// `page`, `KEYS` and `QUERY` without a `LIMIT` return at most that many
/// results and say how many more there are ([`Reply::Cut`]).
///
/// # Errors
/// [`CommandError::NotFound`] for `GET` of a missing key, [`CommandError::Db`]
/// when the database refuses (including a malformed filter or field path),
/// [`CommandError::UnknownTopic`] for `HELP` of an unknown command.
pub fn execute(
    docs: &dyn Backend,
    cmd: &Command,
    progress: Progress,
    page: Option<usize>,
) -> Result<Option<Reply>, CommandError> {
    let reply = match cmd {
        Command::Set { key, value, ttl } => {
            let bytes =
                serde_json::to_vec(value).map_err(|e| CommandError::InvalidJson(e.to_string()))?;
            docs.set(key, &bytes, *ttl)?;
            Reply::Ok
        }
        Command::Get { key } => match docs.get(key)? {
            None => return Err(CommandError::NotFound(display_key(key))),
            Some(buf) => Reply::Json(render::checked_json(buf.as_bytes()).map_err(|reason| {
                CommandError::BadStoredValue {
                    key: display_key(key),
                    reason,
                }
            })?),
        },
        Command::Delete { key } => Reply::Flag(docs.delete(key)?),
        Command::Ttl { key } => match docs.ttl(key)? {
            None => return Err(CommandError::NotFound(display_key(key))),
            Some(left) => Reply::Ttl(left),
        },
        Command::Persist { key } => Reply::Flag(
            docs.persist(key)?
                .ok_or_else(|| CommandError::NotFound(display_key(key)))?,
        ),
        Command::Keys { prefix, options } => {
            let shown = options.limit.or(page);
            let keys = list_keys(docs, prefix, shown.unwrap_or(usize::MAX))?;
            cut(
                Reply::Keys,
                keys,
                shown.filter(|_| options.limit.is_none()),
                || Ok(docs.count(None, prefix)?),
            )?
        }
        Command::Count {
            filter: None,
            options: Options { prefix: None, .. },
        } => Reply::Count(docs.len()?),
        Command::Count { filter, options } => {
            Reply::Count(docs.count(filter.as_ref(), options.prefix())?)
        }
        Command::Index { field, unique } => {
            with_progress(
                progress,
                &format!("indexing {field}"),
                "documents",
                |report| docs.create_index(field, *unique, report),
            )?;
            Reply::Ok
        }
        Command::Indexes => Reply::Indexes(
            docs.indexes()?
                .into_iter()
                .map(|index| (index.field, index.unique))
                .collect(),
        ),
        Command::DropIndex { field } => Reply::Flag(docs.drop_index(field)?),
        Command::Find { field, value } => Reply::Keys(docs.find(field, value)?),
        Command::Query { filter, options } => {
            let screen = page.filter(|_| options.limit.is_none());
            let limited = Options {
                limit: options.limit.or(screen),
                ..options.clone()
            };
            let rows = query_rows(docs, filter, &limited)?;
            cut(Reply::Rows, rows, screen, || {
                let total = docs.count(Some(filter), options.prefix())?;
                Ok(total.saturating_sub(options.skip.unwrap_or(0)))
            })?
        }
        Command::Distinct {
            field,
            filter,
            options,
        } => Reply::Values(
            docs.distinct(field, filter.as_ref(), options.prefix())?
                .iter()
                .map(Value::to_string)
                .collect(),
        ),
        Command::Explain { filter } => Reply::Json(docs.explain(filter)?.to_string()),
        Command::Update {
            key,
            update,
            options,
        } => Reply::Updated(
            docs.update_one(key, update, options.upsert)?
                .map(|doc| doc.to_string()),
        ),
        Command::UpdateMany {
            filter,
            update,
            options,
        } => Reply::Changed {
            count: docs.update_many(filter, update, options.prefix())?,
            verb: "updated",
        },
        Command::DeleteMany { filter, options } => Reply::Changed {
            count: docs.delete_many(filter, options.prefix())?,
            verb: "deleted",
        },
        Command::Compact => {
            let (before, after) = with_progress(progress, "compacting", "records", |report| {
                docs.compact(report)
            })?;
            Reply::Compacted { before, after }
        }
        Command::Stats => Reply::Json(docs.stats()?.to_string()),
        Command::Help { topic: None } => help_list(),
        Command::Help { topic: Some(topic) } => {
            help_topic(lookup(topic).ok_or_else(|| CommandError::UnknownTopic(topic.clone()))?)
        }
        Command::Exit => return Ok(None),
    };
    Ok(Some(reply))
}

/// `items` as a reply (`wrap`), followed by how many more there are when
/// `page` cut them short: `page` items came back, so `total` (called only
/// then) counts every match.
fn cut<T>(
    wrap: fn(Vec<T>) -> Reply,
    items: Vec<T>,
    page: Option<usize>,
    total: impl FnOnce() -> Result<usize, CommandError>,
) -> Result<Reply, CommandError> {
    let shown = items.len();
    let reply = wrap(items);
    if page != Some(shown) {
        return Ok(reply);
    }
    Ok(match total()?.saturating_sub(shown) {
        0 => reply,
        more => Reply::Cut {
            reply: Box::new(reply),
            more,
        },
    })
}

/// Run `work` with a progress callback: a bar labelled `label` counting
/// `unit` when `progress` asks for one, else a callback that does nothing.
fn with_progress<T>(
    progress: Progress,
    label: &str,
    unit: &str,
    work: impl FnOnce(&mut dyn FnMut(u64, u64)) -> crate::error::Result<T>,
) -> crate::error::Result<T> {
    match progress {
        Progress::Hidden => work(&mut |_, _| {}),
        Progress::Bar => {
            let bar = render::progress_bar(label, unit);
            let result = work(&mut |done, total| {
                bar.set_length(total.max(done));
                bar.set_position(done);
            });
            bar.finish();
            result
        }
    }
}

/// `QUERY` results: `(key, document)` pairs. The query parsed every document
/// it returns, so each is JSON already: only the stored bytes' text is taken,
/// not checked again (a projection is serialised, in the order of its paths).
fn query_rows(
    docs: &dyn Backend,
    filter: &Value,
    options: &Options,
) -> Result<Vec<(String, String)>, CommandError> {
    let query = QueryOptions {
        sort: options.sort.clone(),
        limit: options.limit,
        skip: options.skip.unwrap_or(0),
        prefix: options.prefix().to_owned(),
        fields: options.fields.clone(),
    };
    Ok(docs
        .query(filter, &query)?
        .into_iter()
        .map(|found| {
            let text = found.text();
            (found.key, text)
        })
        .collect())
}

/// The first `limit` keys starting with `prefix`, in order, read a page at a time.
fn list_keys(db: &dyn Backend, prefix: &str, limit: usize) -> Result<Vec<String>, CommandError> {
    let mut out: Vec<String> = Vec::new();
    while out.len() < limit {
        let want = KEYS_PAGE.min(limit - out.len());
        let page = db.keys_page(prefix, out.last().map(String::as_str), want)?;
        let done = page.len() < want;
        out.extend(page);
        if done {
            break;
        }
    }
    Ok(out)
}

/// The HELP list: one line per command (as JSON, one object per command).
pub fn help_list() -> Reply {
    // A usage too long for the column gets its summary on the next line.
    let width = COMMANDS
        .iter()
        .map(|c| c.usage.len())
        .filter(|&len| len <= HELP_USAGE_COLUMN)
        .max()
        .unwrap_or(0);
    let mut text = String::from("Commands (case-insensitive):\n");
    for spec in COMMANDS {
        if spec.usage.len() > width {
            text.push_str(&format!(
                "  {}\n  {:width$}  {}\n",
                spec.usage, "", spec.summary
            ));
        } else {
            text.push_str(&format!("  {:width$}  {}\n", spec.usage, spec.summary));
        }
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

/// Widest usage that HELP's list keeps on one line with its summary.
const HELP_USAGE_COLUMN: usize = 36;

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

/// `json` (already trimmed, not empty) as a JSON value: strict JSON, or
/// relaxed JSON as people type it (`{role: 'admin'}`, see [`relaxed`]).
fn parse_json(json: &str) -> Result<Value, CommandError> {
    match serde_json::from_str(json) {
        Ok(value) => Ok(value),
        Err(_) => relaxed::parse(json).map_err(|e| json_error(&e)),
    }
}

/// A JSON error as a [`CommandError`]: incomplete (the REPL reads on) or
/// invalid. The relaxed reader's error is the one shown: it accepts more than
/// strict JSON, so where it stops is where the text is really wrong.
fn json_error(e: &RelaxedError) -> CommandError {
    if e.incomplete {
        CommandError::IncompleteJson(e.to_string())
    } else {
        CommandError::InvalidJson(e.to_string())
    }
}

/// Split one JSON value (strict, else relaxed) off the start of `args`
/// (already left-trimmed, not empty): the value and the text after it,
/// left-trimmed.
fn take_json(args: &str) -> Result<(Value, &str), CommandError> {
    let mut values = serde_json::Deserializer::from_str(args).into_iter::<Value>();
    if let Some(Ok(value)) = values.next() {
        let rest = args.get(values.byte_offset()..).unwrap_or("");
        return Ok((value, rest.trim_start()));
    }
    let (value, end) = relaxed::parse_prefix(args).map_err(|e| json_error(&e))?;
    let rest = args.get(end..).unwrap_or("");
    Ok((value, rest.trim_start()))
}

/// Whether `args` starts with one of `spec`'s option words rather than a
/// JSON value (for commands whose filter is optional).
fn starts_with_option(spec: &CommandSpec, args: &str) -> bool {
    let word = args.split_whitespace().next().unwrap_or("");
    spec.options.iter().any(|o| o.eq_ignore_ascii_case(word))
}

/// The option words after a command's arguments (`SORT -age LIMIT 3`), each
/// one of `spec.options`, at most once, followed by its value (a word, or a
/// double-quoted JSON string) except `UPSERT` and `UNIQUE`.
fn parse_options(spec: &CommandSpec, mut rest: &str) -> Result<Options, CommandError> {
    let mut options = Options::default();
    let mut seen: Vec<&str> = Vec::new();
    while !rest.is_empty() {
        let remaining = rest;
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let typed = &rest[..end];
        rest = rest[end..].trim_start();
        let Some(word) = spec
            .options
            .iter()
            .copied()
            .find(|o| o.eq_ignore_ascii_case(typed))
        else {
            // A second JSON value is shown whole, not cut at its first space.
            let shown = if typed.starts_with(['{', '[']) {
                remaining
            } else {
                typed
            };
            return Err(usage_error(spec, unexpected(spec, shown)));
        };
        if seen.contains(&word) {
            return Err(usage_error(spec, format!("{word} is given twice")));
        }
        seen.push(word);
        if word == "UPSERT" {
            options.upsert = true;
            continue;
        }
        let (value, after) = match take_token(rest) {
            Ok(Some(found)) => found,
            Ok(None) => return Err(usage_error(spec, format!("{word} needs a value"))),
            Err(msg) => return Err(usage_error(spec, msg)),
        };
        rest = after;
        match word {
            "SORT" => options.sort = Some(sort_spec(spec, &value)?),
            "LIMIT" => options.limit = Some(whole_number(spec, word, &value)?),
            "SKIP" => options.skip = Some(whole_number(spec, word, &value)?),
            "FIELDS" => options.fields = Some(Value::from(field_list(spec, word, &value)?)),
            "EX" => options.expire = Some(seconds(spec, &value)?),
            _ => options.prefix = Some(value),
        }
    }
    Ok(options)
}

/// What to say about a word after a command's arguments that is not one of
/// its options.
fn unexpected(spec: &CommandSpec, typed: &str) -> String {
    if typed.starts_with(['{', '[']) {
        return format!(
            "trailing characters after the JSON argument: {typed} ({} takes {})",
            spec.name,
            if spec.options.is_empty() {
                "nothing after it".to_owned()
            } else {
                format!("only {} after it", spec.options.join(", "))
            }
        );
    }
    match spec.options {
        [] => format!("unexpected {typed:?} after the arguments"),
        [only] => format!(
            "unexpected {typed:?}; {} takes {only} after its arguments",
            spec.name
        ),
        [first @ .., last] => format!(
            "unexpected {typed:?}; {} takes {} or {last} after its arguments",
            spec.name,
            first.join(", ")
        ),
    }
}

/// `SORT age`, `SORT -age` or `SORT role,-age` as a sort specification.
fn sort_spec(spec: &CommandSpec, typed: &str) -> Result<Value, CommandError> {
    let fields = field_list(spec, "SORT", typed)?;
    if let [one] = fields.as_slice() {
        return Ok(Value::from(one.as_str()));
    }
    Ok(fields
        .iter()
        .map(|f| match f.strip_prefix('-') {
            Some(name) => json!([name, -1]),
            None => json!([f, 1]),
        })
        .collect())
}

/// A comma-separated list of field paths, none empty.
fn field_list(spec: &CommandSpec, word: &str, typed: &str) -> Result<Vec<String>, CommandError> {
    let fields: Vec<String> = typed.split(',').map(str::to_owned).collect();
    if fields.iter().any(|f| f.is_empty() || f == "-") {
        return Err(usage_error(
            spec,
            format!("{word} takes field names separated by commas, e.g. name,address.city, not {typed:?}"),
        ));
    }
    Ok(fields)
}

/// `EX`'s value: seconds, fractions allowed, at least a millisecond (the
/// precision of expiry), as `db.set(k, v, ttl=)` takes them.
fn seconds(spec: &CommandSpec, typed: &str) -> Result<Duration, CommandError> {
    typed
        .parse::<f64>()
        .ok()
        .filter(|s| *s >= 0.001)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            usage_error(
                spec,
                format!("EX takes seconds, at least 0.001 (e.g. EX 60 or EX 0.5), not {typed:?}"),
            )
        })
}

fn whole_number(spec: &CommandSpec, word: &str, typed: &str) -> Result<usize, CommandError> {
    typed.parse().map_err(|_| {
        usage_error(
            spec,
            format!("{word} takes a whole number (0 or more), not {typed:?}"),
        )
    })
}

fn parse_set(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (key, rest) = required_key(spec, args)?;
    let (value, rest) = required_json(spec, rest.trim_end(), "a JSON value after the key")?;
    let options = parse_options(spec, rest)?;
    Ok(Command::Set {
        key,
        value,
        ttl: options.expire,
    })
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
    let unique = match rest {
        "" => false,
        word if word.eq_ignore_ascii_case("UNIQUE") => true,
        _ => {
            return Err(usage_error(
                spec,
                "INDEX takes one field, then optionally UNIQUE; use a dotted path such as \
                 address.city for nested fields",
            ))
        }
    };
    Ok(Command::Index { field, unique })
}

fn parse_drop(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (word, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    if !word.eq_ignore_ascii_case("INDEX") {
        return Err(usage_error(
            spec,
            "DROP removes an index: DROP INDEX <field> (to remove a key, use DELETE)",
        ));
    }
    let (field, rest) = required_field(spec, rest.trim_start())?;
    if !rest.is_empty() {
        return Err(usage_error(spec, "DROP INDEX takes one field"));
    }
    Ok(Command::DropIndex { field })
}

fn parse_count(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (filter, rest) = optional_filter(spec, args)?;
    let options = parse_options(spec, rest)?;
    Ok(Command::Count { filter, options })
}

fn parse_distinct(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (field, rest) = required_field(spec, args)?;
    let (filter, rest) = optional_filter(spec, rest)?;
    let options = parse_options(spec, rest)?;
    Ok(Command::Distinct {
        field,
        filter,
        options,
    })
}

/// A JSON filter, unless the arguments are empty or start with an option word.
fn optional_filter<'a>(
    spec: &CommandSpec,
    args: &'a str,
) -> Result<(Option<Value>, &'a str), CommandError> {
    if args.is_empty() || starts_with_option(spec, args) {
        return Ok((None, args));
    }
    let (filter, rest) = take_json(args)?;
    Ok((Some(filter), rest))
}

/// The JSON argument `what` (e.g. "a JSON filter") at the start of `args`.
fn required_json<'a>(
    spec: &CommandSpec,
    args: &'a str,
    what: &str,
) -> Result<(Value, &'a str), CommandError> {
    if args.is_empty() {
        return Err(usage_error(spec, format!("{} needs {what}", spec.name)));
    }
    take_json(args)
}

fn parse_update(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (key, rest) = required_key(spec, args)?;
    let parsed = required_json(
        spec,
        rest,
        "a JSON update after the key, e.g. {\"$set\": {\"name\": \"bob\"}}",
    )
    .and_then(|(update, rest)| Ok((update, parse_options(spec, rest)?)));
    match parsed {
        Ok((update, options)) => Ok(Command::Update {
            key,
            update,
            options,
        }),
        // `UPDATE MANY <filter> <update>` reads as the key MANY: point to UPDATEMANY.
        Err(CommandError::Usage { message, usage })
            if key.eq_ignore_ascii_case("MANY") && !args.starts_with('"') =>
        {
            Err(CommandError::Usage {
                message: format!(
                    "{message} (did you mean UPDATEMANY <json-filter> <json-update>?)"
                ),
                usage,
            })
        }
        Err(e) => Err(e),
    }
}

fn parse_update_many(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (filter, rest) = required_json(spec, args, "a JSON filter, e.g. {\"role\": \"guest\"}")?;
    let (update, rest) = required_json(
        spec,
        rest,
        "a JSON update after the filter, e.g. {\"$set\": {\"active\": false}}",
    )?;
    let options = parse_options(spec, rest)?;
    Ok(Command::UpdateMany {
        filter,
        update,
        options,
    })
}

fn parse_delete_many(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (filter, rest) = required_json(
        spec,
        args,
        "a JSON filter, e.g. {\"active\": false} ({} for every document)",
    )?;
    let options = parse_options(spec, rest)?;
    Ok(Command::DeleteMany { filter, options })
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

/// `QUERY`: a JSON filter object, then options.
fn parse_query(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (filter, rest) = required_json(
        spec,
        args.trim_end(),
        "a JSON filter, e.g. {\"role\": \"admin\"} ({} for every document)",
    )?;
    let options = parse_options(spec, rest)?;
    Ok(Command::Query { filter, options })
}

/// `EXPLAIN`: the rest of the line is a JSON filter object.
fn parse_explain(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let json = args.trim();
    if json.is_empty() {
        return Err(usage_error(
            spec,
            "EXPLAIN needs a JSON filter, e.g. {\"role\": \"admin\"}",
        ));
    }
    let filter = parse_json(json)?;
    Ok(Command::Explain { filter })
}

fn parse_one_key(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let (key, rest) = required_key(spec, args)?;
    if !rest.is_empty() {
        let many = spec.name == "DELETE" && key.eq_ignore_ascii_case("MANY");
        return Err(usage_error(
            spec,
            if many {
                "DELETE takes one key (did you mean DELETEMANY <json-filter>?)".to_owned()
            } else {
                format!(
                    "{} takes one key; quote keys that contain spaces, e.g. {} \"my key\"",
                    spec.name, spec.name
                )
            },
        ));
    }
    Ok(match spec.name {
        "DELETE" => Command::Delete { key },
        "TTL" => Command::Ttl { key },
        "PERSIST" => Command::Persist { key },
        _ => Command::Get { key },
    })
}

/// `KEYS [prefix] [LIMIT n]`. A bare `LIMIT` followed by more words is the
/// option; `KEYS LIMIT` alone lists keys starting with "LIMIT" (as does
/// `KEYS "LIMIT" LIMIT 5`).
fn parse_keys(spec: &'static CommandSpec, args: &str) -> Result<Command, CommandError> {
    let args = args.trim_end();
    let option_first = starts_with_option(spec, args) && args.contains(char::is_whitespace);
    let (prefix, rest) = if option_first {
        (String::new(), args)
    } else {
        match take_token(args) {
            Ok(None) => (String::new(), ""),
            Ok(Some(found)) => found,
            Err(msg) => return Err(usage_error(spec, msg)),
        }
    };
    let options = parse_options(spec, rest).map_err(|e| match e {
        CommandError::Usage { message, usage } if !option_first => CommandError::Usage {
            message: format!(
                "{message}; KEYS takes at most one prefix (quote prefixes that contain spaces)"
            ),
            usage,
        },
        other => other,
    })?;
    Ok(Command::Keys { prefix, options })
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
    use crate::documents::Documents;
    use crate::engine::Database;
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
                value: json!({"a": 1}),
                ttl: None,
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
                prefix: String::new(),
                options: Options::default(),
            }
        );
        assert_eq!(
            parse("keys user:").unwrap(),
            Command::Keys {
                prefix: "user:".into(),
                options: Options::default(),
            }
        );
        assert_eq!(
            parse("count").unwrap(),
            Command::Count {
                filter: None,
                options: Options::default()
            }
        );
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
                field: "age".into(),
                unique: false
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
                filter: json!({"a": {"$gt": 1}}),
                options: Options::default()
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
                value: json!([1, 2]),
                ttl: None,
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
                prefix: "user 1".into(),
                options: Options::default(),
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
                value: json!("v w"),
                ttl: None,
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
            ("SET", "SET needs a key (usage: SET <key> <json> [EX seconds])"),
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
            ("COUNT 1 2", "unexpected \"2\"; COUNT takes PREFIX after its arguments"),
            ("COMPACT now", "COMPACT takes no arguments"),
            ("STATS x", "STATS takes no arguments"),
            ("EXIT now", "EXIT takes no arguments"),
            ("HELP a b", "HELP takes at most one command name"),
            (
                "INDEX",
                "INDEX needs a field name, e.g. age or address.city (usage: INDEX <field> [UNIQUE])",
            ),
            ("INDEX a b", "INDEX takes one field, then optionally UNIQUE"),
            ("FIND", "FIND needs a field name"),
            ("FIND age", "FIND needs a JSON value after the field"),
            (
                "QUERY",
                "QUERY needs a JSON filter, e.g. {\"role\": \"admin\"} ({} for every document) \
                 (usage: QUERY <json-filter> [SORT f|-f]",
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
        assert!(e.contains("strings need quotes"), "{e}");
        assert!(e.ends_with("at line 1 column 1"), "{e}");
        let e = parse("SET k {} {}").unwrap_err().to_string();
        assert!(
            e.contains("trailing characters after the JSON argument: {}"),
            "{e}"
        );
        let e = parse("SET k {a: 1, b 2}").unwrap_err().to_string();
        assert!(
            e.contains("expected ':' after the key \"b\", found '2' at line 1 column 10"),
            "{e}"
        );
        let e = parse("SET k {\"a\": True}").unwrap_err().to_string();
        assert!(e.contains("JSON spells it true"), "{e}");
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
            "SET k {bad",
            "SET k {a: 'x",
            "QUERY {\"a\":\n",
            "FIND f [",
        ] {
            assert!(is_incomplete(line), "{line}");
        }
        for line in [
            "SET k {}",
            "SET k {bad}",
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
                value: json!({"a": 1}),
                ttl: None,
            }
        );
    }

    #[test]
    fn unknown_commands_suggest_help() {
        let e = parse("FROBNICATE x").unwrap_err();
        assert!(matches!(&e, CommandError::Unknown(w) if w == "FROBNICATE"));
        assert_eq!(
            e.to_string(),
            "unknown command \"FROBNICATE\"; type HELP for the list of commands"
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
        let all = human(&db, "KEYS LIMIT 100000");
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
        assert!(set.starts_with("SET <key> <json> [EX seconds]\n"), "{set}");
        assert!(set.contains("Example:\n  SET session:9 "), "{set}");
        assert!(human(&db, "HELP del").starts_with("DELETE <key>\n"));
        assert!(human(&db, "HELP delete").contains("Also: DEL"));
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
        assert!(e.starts_with("invalid field \"a..b\""), "{e}");
        assert!(db.indexes().is_empty());
        let e = err(&db, "FIND age paris");
        assert!(e.contains("strings need quotes"), "{e}");
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
        }
        let e = err(&db, "EXPLAIN {\"a\": 1} extra");
        assert!(e.contains("trailing characters"), "{e}");
        let e = err(&db, "QUERY {\"a\": 1} {\"b\": 2}");
        assert!(
            e.starts_with(
                "trailing characters after the JSON argument: {\"b\": 2} (QUERY takes only SORT"
            ),
            "{e}"
        );
        let e = err(&db, "QUERY {\"a\": 1} extra");
        assert!(
            e.starts_with(
                "unexpected \"extra\"; QUERY takes SORT, LIMIT, SKIP, FIELDS or PREFIX after its arguments"
            ),
            "{e}"
        );
        {}
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

    /// A database on a manual clock, for TTLs.
    fn timed_db() -> (Documents, crate::clock::Clock) {
        let clock = crate::clock::Clock::manual(1_000_000);
        let config = Config::new().in_memory().with_clock(clock.clone());
        let db = Documents::open(Database::open(&config).unwrap()).unwrap();
        (db, clock)
    }

    #[test]
    fn set_ex_ttl_persist() {
        let (db, clock) = timed_db();
        assert_eq!(ok(&db, "SET s {user: 'ann'} EX 60"), "\"OK\"");
        assert_eq!(ok(&db, "TTL s"), "60.0");
        assert_eq!(human(&db, "ttl s"), "60.000 seconds");
        clock.advance_ms(1_500);
        assert_eq!(ok(&db, "TTL s"), "58.5");
        assert_eq!(ok(&db, "SET half 1 ex 0.25"), "\"OK\"");
        assert_eq!(ok(&db, "TTL half"), "0.25");
        // PERSIST keeps the value and drops the TTL; a second PERSIST has nothing to do.
        assert_eq!(ok(&db, "PERSIST s"), "1");
        assert_eq!(ok(&db, "TTL s"), "null");
        assert_eq!(human(&db, "TTL s"), "(no expiry)");
        assert_eq!(ok(&db, "GET s"), r#"{"user":"ann"}"#);
        assert_eq!(ok(&db, "PERSIST s"), "0");
        // A plain SET replaces the TTL too, as db.set(k, v) does.
        ok(&db, "SET t 1 EX 5");
        ok(&db, "SET t 2");
        assert_eq!(ok(&db, "TTL t"), "null");
        // The key expires when its time is up.
        clock.advance_ms(1_000);
        assert_eq!(err(&db, "GET half"), "key not found: half");
        assert_eq!(err(&db, "TTL half"), "key not found: half");
        assert_eq!(err(&db, "PERSIST half"), "key not found: half");
        assert_eq!(err(&db, "TTL nope"), "key not found: nope");
    }

    #[test]
    fn set_ex_errors_write_nothing() {
        let db = db();
        for (line, needle) in [
            ("SET k 1 EX", "EX needs a value"),
            ("SET k 1 EX 0", "EX takes seconds, at least 0.001"),
            ("SET k 1 EX -5", "EX takes seconds"),
            ("SET k 1 EX soon", "not \"soon\""),
            ("SET k 1 EX 5 EX 6", "EX is given twice"),
            ("SET k 1 PX 5", "SET takes EX after its arguments"),
            ("TTL", "TTL needs a key"),
            ("PERSIST a b", "PERSIST takes one key"),
        ] {
            let e = err(&db, line);
            assert!(e.contains(needle), "{line}: {e}");
        }
        assert_eq!(db.database().len(), 0);
    }

    #[test]
    fn persist_keeps_indexes_exact() {
        let (db, _clock) = timed_db();
        ok(&db, "INDEX email UNIQUE");
        ok(&db, "SET u:1 {\"email\": \"a@x\"} EX 30");
        assert_eq!(ok(&db, "PERSIST u:1"), "1");
        assert_eq!(ok(&db, "FIND email \"a@x\""), "[\"u:1\"]");
    }

    #[test]
    fn del_is_delete_and_typos_know_aliases() {
        let db = db();
        ok(&db, "SET a 1");
        assert_eq!(parse("del a").unwrap(), Command::Delete { key: "a".into() });
        assert_eq!(ok(&db, "DEL a"), "1");
        assert_eq!(ok(&db, "del a"), "0");
        assert!(err(&db, "DEL").contains("DELETE needs a key"));
        assert!(err(&db, "DLE a").contains("(did you mean DEL?)"));
        assert!(err(&db, "DELTE a").contains("(did you mean DELETE?)"));
        assert!(err(&db, "QUTI").contains("(did you mean QUIT?)"));
        assert!(err(&db, "PERSITS k").contains("(did you mean PERSIST?)"));
        assert!(err(&db, "HELP dell").contains("(did you mean DEL?)"));
    }

    #[test]
    fn relaxed_json_everywhere_json_is_typed() {
        let db = db();
        people(&db);
        ok(&db, "SET q {name: 'quinn', 'age': 18, tags: ['x']}");
        assert_eq!(
            ok(&db, "GET q"),
            r#"{"name":"quinn","age":18,"tags":["x"]}"#
        );
        assert_eq!(ok(&db, "FIND name 'quinn'"), "[\"q\"]");
        assert_eq!(
            ok(&db, "QUERY {age: {$lt: 20}} FIELDS name"),
            r#"[["q",{"name":"quinn"}]]"#
        );
        assert_eq!(ok(&db, "COUNT {'address.city': 'Paris'}"), "2");
        assert_eq!(
            ok(&db, "DISTINCT address.city {age: {$gte: 30}}"),
            r#"["Paris"]"#
        );
        assert_eq!(
            ok(&db, "UPDATE q {$inc: {age: 1}, $push: {tags: 'y'}}"),
            r#"{"name":"quinn","age":19,"tags":["x","y"]}"#
        );
        assert_eq!(
            ok(&db, "UPDATEMANY {name: 'quinn'} {$set: {seen: true}}"),
            "1"
        );
        assert_eq!(
            ok(&db, "EXPLAIN {name: 'quinn'}")[..9].to_owned(),
            "{\"index\":"
        );
        assert_eq!(ok(&db, "DELETEMANY {seen: true}"), "1");
    }

    #[test]
    fn keys_and_query_stop_at_a_screenful_for_a_person() {
        let db = db();
        let n = SCREEN_LIMIT + 250;
        for i in 0..n {
            ok(
                &db,
                &format!("SET k{i:04} {{\"i\": {i}, \"even\": {}}}", i % 2 == 0),
            );
        }
        let keys = human(&db, "KEYS");
        let lines: Vec<&str> = keys.lines().collect();
        assert_eq!(lines.len(), SCREEN_LIMIT + 1);
        assert_eq!(lines[SCREEN_LIMIT - 1], format!("k{:04}", SCREEN_LIMIT - 1));
        assert_eq!(lines[SCREEN_LIMIT], "… 250 more (LIMIT to change)");
        // LIMIT shows what was asked for, and says nothing of the rest.
        assert_eq!(human(&db, "KEYS LIMIT 3"), "k0000\nk0001\nk0002");
        assert_eq!(human(&db, "KEYS k01 LIMIT 1000").lines().count(), 100);
        assert_eq!(human(&db, "KEYS k00").lines().count(), 100);
        // A program always gets everything.
        let all: Vec<String> = serde_json::from_str(&ok(&db, "KEYS")).unwrap();
        assert_eq!(all.len(), n);
        let three: Vec<String> = serde_json::from_str(&ok(&db, "KEYS k LIMIT 3")).unwrap();
        assert_eq!(three, ["k0000", "k0001", "k0002"]);
        // `KEYS LIMIT` alone is a prefix; quoted, LIMIT is a prefix with a limit.
        assert_eq!(
            parse("KEYS LIMIT").unwrap(),
            Command::Keys {
                prefix: "LIMIT".into(),
                options: Options::default()
            }
        );
        assert!(matches!(
            parse("KEYS \"LIMIT\" LIMIT 5").unwrap(),
            Command::Keys { prefix, options } if prefix == "LIMIT" && options.limit == Some(5)
        ));
        assert!(err(&db, "KEYS LIMIT x").contains("LIMIT takes a whole number"));

        // QUERY: the first page, then how many more match (after SKIP).
        let rows = human(&db, "QUERY {even: true}");
        let lines: Vec<&str> = rows.lines().collect();
        assert_eq!(lines.last(), Some(&"… 75 more (LIMIT to change)"));
        assert_eq!(
            lines.iter().filter(|l| l.starts_with('k')).count(),
            SCREEN_LIMIT
        );
        let rows = human(&db, "QUERY {even: true} SKIP 70");
        assert!(rows.ends_with("… 5 more (LIMIT to change)"), "{rows}");
        let rows = human(&db, "QUERY {even: true} SKIP 100");
        assert!(!rows.contains("more (LIMIT"), "{rows}");
        let rows = human(&db, "QUERY {} LIMIT 200 FIELDS i");
        assert_eq!(rows.lines().filter(|l| l.starts_with('k')).count(), 200);
        assert!(!rows.contains("more (LIMIT"));
        let rows: Value = serde_json::from_str(&ok(&db, "QUERY {even: true}")).unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 175);
    }

    #[test]
    fn cut_counts_with_thousands_separators() {
        let db = db();
        for i in 0..(SCREEN_LIMIT + 1234) {
            db.database().put_raw(&format!("k{i:05}"), b"1").unwrap();
        }
        assert!(human(&db, "KEYS").ends_with("… 1,234 more (LIMIT to change)"));
    }

    #[test]
    fn stats_prints_the_one_stats_shape() {
        let db = db();
        ok(&db, "SET a 1");
        let printed: Value = serde_json::from_str(&ok(&db, "STATS")).unwrap();
        let expected = serde_json::to_value(db.database().stats().unwrap()).unwrap();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&printed), keys(&expected));
        for field in ["keys", "sets", "file_bytes", "live_bytes", "compactions"] {
            assert_eq!(printed[field], expected[field], "{field}");
        }
        // A person sees the same object, indented.
        let pretty: Value = serde_json::from_str(&human(&db, "STATS")).unwrap();
        assert_eq!(keys(&pretty), keys(&expected));
    }

    #[test]
    fn update_commands_execute() {
        let db = db();
        people(&db);
        assert_eq!(
            ok(
                &db,
                "UPDATE p:2 {\"$inc\": {\"age\": 1}, \"$set\": {\"address.city\": \"Rome\"}}"
            ),
            r#"{"name":"bob","age":26,"tags":["b"],"address":{"city":"Rome"}}"#
        );
        assert_eq!(ok(&db, "UPDATE nobody {\"$set\": {\"a\": 1}}"), "null");
        assert!(human(&db, "UPDATE nobody {\"$set\": {\"a\": 1}}").contains("nothing written"));
        assert_eq!(ok(&db, "GET p:2")[..14].to_owned(), r#"{"name":"bob","#);
        assert!(err(&db, "GET nobody").contains("key not found"));
        assert_eq!(
            ok(&db, "UPDATE new {\"$set\": {\"a\": 1}} UPSERT"),
            r#"{"a":1}"#
        );
        assert_eq!(
            ok(
                &db,
                "UPDATEMANY {\"age\": {\"$gte\": 30}} {\"$set\": {\"senior\": true}}"
            ),
            "2"
        );
        assert_eq!(
            human(
                &db,
                "updateMany {\"senior\": true} {\"$set\": {\"senior\": true}}"
            ),
            "0 updated"
        );
        assert_eq!(ok(&db, "COUNT {\"senior\": true}"), "2");
        assert_eq!(
            ok(&db, "UPDATEMANY {} {\"$set\": {\"x\": 1}} PREFIX p:"),
            "2"
        );
        assert_eq!(ok(&db, "DELETEMANY {\"senior\": true} PREFIX p:"), "1");
        assert_eq!(human(&db, "deleteMany {\"senior\": true}"), "1 deleted");
        assert_eq!(ok(&db, "KEYS"), r#"["new","other","p:2"]"#);
    }

    #[test]
    fn update_errors_name_key_and_path_and_write_nothing() {
        let db = db();
        people(&db);
        let before = ok(&db, "QUERY {}");
        let e = err(&db, "UPDATE p:1 {\"$inc\": {\"name\": 1}}");
        assert!(e.contains("p:1") && e.contains("name"), "{e}");
        let e = err(
            &db,
            "UPDATEMANY {\"age\": {\"$gt\": 0}} {\"$inc\": {\"name\": 1}}",
        );
        assert!(e.contains("name"), "{e}");
        let e = err(&db, "UPDATE p:1 {\"$frob\": {\"a\": 1}}");
        assert!(e.contains("$frob"), "{e}");
        let e = err(&db, "UPDATE p:1 {\"name\": \"plain\"}");
        assert!(e.contains("operator"), "{e}");
        let e = err(&db, "UPDATE p:1 {\"$set\": ");
        assert!(e.contains("the JSON is cut short"), "{e}");
        let e = err(&db, "UPDATE p:1");
        assert!(e.contains("UPDATE needs a JSON update"), "{e}");
        let e = err(&db, "UPDATE MANY {} {}");
        assert!(e.contains("did you mean UPDATEMANY"), "{e}");
        let e = err(&db, "DELETEMANY {\"age\": {\"$bad\": 1}}");
        assert!(e.contains("invalid filter"), "{e}");
        let e = err(&db, "DELETE many {}");
        assert!(e.contains("did you mean DELETEMANY"), "{e}");
        assert_eq!(ok(&db, "QUERY {}"), before);
    }

    #[test]
    fn unique_index_refuses_duplicates_and_writes_nothing() {
        let db = db();
        people(&db);
        ok(&db, "INDEX name UNIQUE");
        assert_eq!(ok(&db, "INDEXES"), r#"[{"field":"name","unique":true}]"#);
        assert_eq!(human(&db, "INDEXES"), "name (unique)");
        let before = ok(&db, "QUERY {}");
        for line in [
            "SET p:9 {\"name\": \"ann\"}",
            "UPDATE p:2 {\"$set\": {\"name\": \"ann\"}}",
            "UPDATEMANY {\"age\": {\"$lt\": 30}} {\"$set\": {\"name\": \"cy\"}}",
        ] {
            let e = err(&db, line);
            assert!(e.contains("ann") || e.contains("cy"), "{line}: {e}");
            assert!(e.contains("unique"), "{line}: {e}");
        }
        assert_eq!(ok(&db, "QUERY {}"), before);
        assert_eq!(ok(&db, "DROP INDEX name"), "1");
        assert_eq!(ok(&db, "drop index name"), "0");
        assert_eq!(human(&db, "INDEXES"), "(no indexes)");
        // Over existing duplicates: refused, naming the value; no index is left.
        ok(&db, "SET p:9 {\"name\": \"ann\"}");
        let e = err(&db, "INDEX name UNIQUE");
        assert!(e.contains("\"ann\""), "{e}");
        assert_eq!(ok(&db, "INDEXES"), "[]");
        assert!(err(&db, "DROP name").contains("DROP INDEX <field>"));
    }

    #[test]
    fn distinct_and_count_with_prefix() {
        let db = db();
        people(&db);
        assert_eq!(ok(&db, "DISTINCT address.city"), r#"["Oslo","Paris"]"#);
        assert_eq!(human(&db, "DISTINCT tags"), "\"a\"\n\"b\"");
        assert_eq!(
            ok(
                &db,
                "DISTINCT address.city {\"age\": {\"$gt\": 30}} PREFIX p:"
            ),
            r#"["Paris"]"#
        );
        assert_eq!(human(&db, "DISTINCT nothing"), "(no values)");
        assert_eq!(ok(&db, "COUNT PREFIX p:"), "2");
        assert_eq!(ok(&db, "COUNT {} PREFIX p"), "3");
        assert!(err(&db, "DISTINCT").contains("DISTINCT needs a field name"));
        assert!(err(&db, "COUNT {\"a\": {\"$x\": 1}}").contains("invalid filter"));
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
