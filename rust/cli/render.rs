//! How the CLI shows things. A command answers with a [`Reply`] (data, no
//! layout); [`Mode`] says who reads it: a person at a terminal (indented JSON,
//! colour when the terminal takes it, plain words such as `OK`) or a program
//! reading a pipe (exactly one line of compact JSON per reply, so a script can
//! `json.loads` each line). Keys are written the way a user would type them back
//! (bare, or JSON-quoted).
//!
//! JSON is re-laid-out token by token rather than through `serde_json::Value`,
//! so object key order and number literals are shown exactly as stored.

use console::Style;
use serde_json::json;

/// Who reads the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A person at a terminal: indented JSON, plain words, colour if `color`.
    Human {
        /// Whether to colour the output (the terminal supports it, `NO_COLOR` unset).
        color: bool,
    },
    /// A program: one line of compact JSON per reply.
    Json,
}

/// What a command answers, before layout. JSON text held here is already valid.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The write happened (`SET`, `INDEX`): `OK`, or `"OK"` as JSON.
    Ok,
    /// A JSON document or object (`GET`, `EXPLAIN`, `STATS`), as valid JSON text.
    Json(String),
    /// `DELETE`, `DROP INDEX`, `PERSIST`: 1 if there was something to remove
    /// (the key, the index, the TTL), 0 if not.
    Flag(bool),
    /// `TTL`: seconds left, or `None` for a key that never expires (`null` as JSON).
    Ttl(Option<f64>),
    /// The first page of a longer list (`KEYS`, `QUERY` at a terminal without
    /// `LIMIT`), and how many more items there are.
    Cut {
        /// The items shown.
        reply: Box<Reply>,
        /// How many were left out.
        more: usize,
    },
    /// `COUNT`.
    Count(usize),
    /// `KEYS`, `FIND`: keys in order; one per line for a person, an array as JSON.
    Keys(Vec<String>),
    /// `QUERY`: `(key, document JSON text)` pairs; `[[key, doc], ...]` as JSON.
    Rows(Vec<(String, String)>),
    /// `DISTINCT`: JSON values (as valid JSON text); one per line for a
    /// person, an array as JSON.
    Values(Vec<String>),
    /// `UPDATE`: the document as written (valid JSON text), or `None` when
    /// there was no such key (`null` as JSON).
    Updated(Option<String>),
    /// `UPDATEMANY`, `DELETEMANY`: how many documents changed, and how
    /// (`"updated"`); the bare number as JSON.
    Changed {
        /// Documents changed.
        count: usize,
        /// What happened to them, for a person.
        verb: &'static str,
    },
    /// `INDEXES`: `(field, unique)` in field order; `[{"field", "unique"}, ...]` as JSON.
    Indexes(Vec<(String, bool)>),
    /// `COMPACT`: the file size before and after.
    Compacted {
        /// Bytes before.
        before: u64,
        /// Bytes after.
        after: u64,
    },
    /// `HELP`: text for a person, a JSON value (already serialised) for a program.
    Help {
        /// What a person reads.
        text: String,
        /// What a program reads.
        json: String,
    },
}

/// Lay out `reply` for `mode`. Never empty for [`Mode::Json`]; for a person an
/// empty list says so in words rather than printing nothing.
pub fn reply(reply: &Reply, mode: Mode) -> String {
    match mode {
        Mode::Json => reply_json(reply),
        Mode::Human { color } => reply_human(reply, color),
    }
}

fn reply_json(reply: &Reply) -> String {
    match reply {
        Reply::Ok => "\"OK\"".to_owned(),
        Reply::Json(text) => relayout(text, JsonStyle::Compact),
        Reply::Flag(existed) => u8::from(*existed).to_string(),
        Reply::Ttl(left) => json!(left).to_string(),
        // Only a person's output is cut; a program given one anyway gets the page.
        Reply::Cut { reply, .. } => reply_json(reply),
        Reply::Count(n) => n.to_string(),
        Reply::Keys(keys) => json!(keys).to_string(),
        Reply::Rows(rows) => {
            let mut out = String::from("[");
            for (i, (key, doc)) in rows.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('[');
                out.push_str(&json!(key).to_string());
                out.push(',');
                out.push_str(&relayout(doc, JsonStyle::Compact));
                out.push(']');
            }
            out.push(']');
            out
        }
        Reply::Compacted { before, after } => {
            json!({"file_bytes_before": before, "file_bytes_after": after}).to_string()
        }
        Reply::Values(values) => {
            let compact: Vec<String> = values
                .iter()
                .map(|v| relayout(v, JsonStyle::Compact))
                .collect();
            format!("[{}]", compact.join(","))
        }
        Reply::Updated(Some(doc)) => relayout(doc, JsonStyle::Compact),
        Reply::Updated(None) => "null".to_owned(),
        Reply::Changed { count, .. } => count.to_string(),
        Reply::Indexes(indexes) => {
            let list: Vec<_> = indexes
                .iter()
                .map(|(field, unique)| json!({"field": field, "unique": unique}))
                .collect();
            json!(list).to_string()
        }
        Reply::Help { json, .. } => relayout(json, JsonStyle::Compact),
    }
}

fn reply_human(reply: &Reply, color: bool) -> String {
    let paint = Palette::new(color);
    match reply {
        Reply::Ok => paint.ok.apply_to("OK").to_string(),
        Reply::Json(text) => relayout_colored(text, JsonStyle::Pretty, Some(&paint)),
        Reply::Flag(existed) => u8::from(*existed).to_string(),
        Reply::Ttl(Some(left)) => format!("{left:.3} seconds"),
        Reply::Ttl(None) => paint.dim.apply_to("(no expiry)").to_string(),
        Reply::Cut { reply, more } => format!(
            "{}\n{}",
            reply_human(reply, color),
            paint
                .dim
                .apply_to(format!("… {} more (LIMIT to change)", thousands(*more)))
        ),
        Reply::Count(n) => n.to_string(),
        Reply::Keys(keys) if keys.is_empty() => paint.dim.apply_to("(no keys)").to_string(),
        Reply::Keys(keys) => {
            let shown: Vec<String> = keys.iter().map(|k| display_key(k)).collect();
            shown.join("\n")
        }
        Reply::Rows(rows) if rows.is_empty() => paint.dim.apply_to("(no documents)").to_string(),
        Reply::Rows(rows) => {
            let shown: Vec<String> = rows
                .iter()
                .map(|(key, doc)| {
                    format!(
                        "{}\t{}",
                        paint.row_key.apply_to(display_key(key)),
                        relayout_colored(doc, JsonStyle::Pretty, Some(&paint))
                    )
                })
                .collect();
            shown.join("\n")
        }
        Reply::Compacted { before, after } => format!("{before} → {after} bytes"),
        Reply::Values(values) if values.is_empty() => paint.dim.apply_to("(no values)").to_string(),
        Reply::Values(values) => {
            let shown: Vec<String> = values
                .iter()
                .map(|v| relayout_colored(v, JsonStyle::Compact, Some(&paint)))
                .collect();
            shown.join("\n")
        }
        Reply::Updated(Some(doc)) => relayout_colored(doc, JsonStyle::Pretty, Some(&paint)),
        Reply::Updated(None) => paint
            .dim
            .apply_to("(no such key; nothing written; add UPSERT to create it)")
            .to_string(),
        Reply::Changed { count, verb } => format!("{count} {verb}"),
        Reply::Indexes(indexes) if indexes.is_empty() => {
            paint.dim.apply_to("(no indexes)").to_string()
        }
        Reply::Indexes(indexes) => {
            let shown: Vec<String> = indexes
                .iter()
                .map(|(field, unique)| {
                    let field = display_key(field);
                    if *unique {
                        format!("{field} {}", paint.dim.apply_to("(unique)"))
                    } else {
                        field
                    }
                })
                .collect();
            shown.join("\n")
        }
        Reply::Help { text, .. } => text.clone(),
    }
}

/// `n` with commas between thousands (`11,000`), for counts a person reads.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A progress bar on standard error for a long command at the prompt
/// (`COMPACT`, `INDEX`), counting `unit`. indicatif draws it only when
/// standard error is a terminal, so a redirected stderr stays clean.
pub fn progress_bar(label: &str, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    let template = format!("{{msg}} {{wide_bar}} {{human_pos}}/{{human_len}} {unit} ({{eta}})");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.set_message(label.to_owned());
    bar
}

/// `error: ` in bold red when `color`, for messages on a terminal.
pub fn error_prefix(color: bool) -> String {
    Style::new()
        .red()
        .bold()
        .force_styling(color)
        .apply_to("error:")
        .to_string()
}

/// The colours of a person's output (no-ops when colour is off).
struct Palette {
    key: Style,
    string: Style,
    number: Style,
    literal: Style,
    ok: Style,
    dim: Style,
    row_key: Style,
}

impl Palette {
    fn new(color: bool) -> Self {
        let style = |s: Style| s.force_styling(color);
        Palette {
            key: style(Style::new().blue().bold()),
            string: style(Style::new().green()),
            number: style(Style::new().cyan()),
            literal: style(Style::new().magenta()),
            ok: style(Style::new().green()),
            dim: style(Style::new().dim()),
            row_key: style(Style::new().yellow().bold()),
        }
    }
}

/// Layout of JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStyle {
    /// Indented over several lines (for a person at a terminal).
    Pretty,
    /// One line, no spaces (for pipes and scripts).
    Compact,
}

/// `bytes` as text, checked to be one UTF-8 JSON document (so it can go into
/// a [`Reply`]) by [`crate::json::validate`]: the rule Python's `get` and the
/// document layer read by, so a value the CLI shows is one they read too
/// (lone surrogate escapes and numbers beyond `f64` are refused).
///
/// # Errors
/// Why the bytes are not valid JSON.
pub fn checked_json(bytes: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    crate::json::validate(text).map_err(|e| e.to_string())?;
    Ok(text.to_owned())
}

/// Re-lay-out `json`, which must already be valid JSON: whitespace outside
/// strings is dropped and, for [`JsonStyle::Pretty`], replaced by two-space
/// indentation (the same layout as `serde_json::to_string_pretty`).
pub fn relayout(json: &str, style: JsonStyle) -> String {
    relayout_colored(json, style, None)
}

/// [`relayout`], with object keys, strings, numbers and literals coloured by
/// `paint` when given.
fn relayout_colored(json: &str, style: JsonStyle, paint: Option<&Palette>) -> String {
    let pretty = style == JsonStyle::Pretty;
    let b = json.as_bytes();
    let mut out = String::with_capacity(json.len() + json.len() / 2);
    let mut depth = 0usize;
    let mut i = 0;
    // Every index where `json` is sliced sits on an ASCII byte (a quote, a
    // structural character or whitespace), so slices are on char boundaries.
    while i < b.len() {
        match b[i] {
            b'"' => {
                let end = string_end(b, i);
                let token = &json[i..end];
                match paint {
                    None => out.push_str(token),
                    Some(p) => {
                        let is_key = b.get(skip_ws(b, end)) == Some(&b':');
                        let s = if is_key { &p.key } else { &p.string };
                        out.push_str(&s.apply_to(token).to_string());
                    }
                }
                i = end;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                out.push(char::from(open));
                let next = skip_ws(b, i + 1);
                if b.get(next) == Some(&close) {
                    out.push(char::from(close));
                    i = next + 1;
                } else {
                    depth += 1;
                    newline(&mut out, depth, pretty);
                    i += 1;
                }
            }
            close @ (b'}' | b']') => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth, pretty);
                out.push(char::from(close));
                i += 1;
            }
            b',' => {
                out.push(',');
                newline(&mut out, depth, pretty);
                i += 1;
            }
            b':' => {
                out.push(':');
                if pretty {
                    out.push(' ');
                }
                i += 1;
            }
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            _ => {
                // A number, true, false or null: copy the literal as written.
                let start = i;
                while i < b.len() && !is_delimiter(b[i]) {
                    i += 1;
                }
                let token = &json[start..i];
                match paint {
                    None => out.push_str(token),
                    Some(p) => {
                        let s = if token.starts_with(['t', 'f', 'n']) {
                            &p.literal
                        } else {
                            &p.number
                        };
                        out.push_str(&s.apply_to(token).to_string());
                    }
                }
            }
        }
    }
    out
}

/// Index just past the closing quote of the string literal opening at `start`.
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

fn is_delimiter(c: u8) -> bool {
    matches!(
        c,
        b'{' | b'}' | b'[' | b']' | b',' | b':' | b'"' | b' ' | b'\t' | b'\n' | b'\r'
    )
}

fn newline(out: &mut String, depth: usize, pretty: bool) {
    if pretty {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    }
}

/// `key` as it would be typed in a command: bare when it is one plain token,
/// otherwise as a JSON string (empty, whitespace or control characters inside,
/// or a leading double quote).
pub fn display_key(key: &str) -> String {
    let plain = !key.is_empty()
        && !key.starts_with('"')
        && !key.chars().any(|c| c.is_whitespace() || c.is_control());
    if plain {
        key.to_owned()
    } else {
        serde_json::to_string(key).unwrap_or_else(|_| format!("{key:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_drops_whitespace_and_keeps_order_and_literals() {
        let src =
            r#" { "b" : 1 , "a" : [ 1.50 , 123456789012345678901234567890 , true , null ] } "#;
        assert_eq!(
            relayout(src, JsonStyle::Compact),
            r#"{"b":1,"a":[1.50,123456789012345678901234567890,true,null]}"#
        );
    }

    #[test]
    fn pretty_matches_serde_layout() {
        let src =
            r#"{"name":"alice","tags":["x","y"],"empty":{},"none":[],"nested":{"k":{"z":-1e5}}}"#;
        let value: serde_json::Value = serde_json::from_str(src).unwrap();
        // serde_json sorts keys (no preserve_order); compare against a sorted source.
        let sorted = serde_json::to_string(&value).unwrap();
        assert_eq!(
            relayout(&sorted, JsonStyle::Pretty),
            serde_json::to_string_pretty(&value).unwrap()
        );
        assert!(relayout(src, JsonStyle::Pretty)
            .starts_with("{\n  \"name\": \"alice\",\n  \"tags\": [\n    \"x\","));
    }

    #[test]
    fn strings_with_structural_characters_are_copied_verbatim() {
        let src = r#"{"k{,}":"a \"quoted\" [x]: y\\","t":"tab\there"}"#;
        assert_eq!(relayout(src, JsonStyle::Compact), src);
        let pretty = relayout(src, JsonStyle::Pretty);
        let back: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(src).unwrap()
        );
    }

    #[test]
    fn scalars_and_empty_containers() {
        assert_eq!(relayout("42", JsonStyle::Pretty), "42");
        assert_eq!(relayout("\"s\"", JsonStyle::Pretty), "\"s\"");
        assert_eq!(relayout("[ ]", JsonStyle::Pretty), "[]");
        assert_eq!(relayout("{ }", JsonStyle::Compact), "{}");
        assert_eq!(relayout("[[],{}]", JsonStyle::Pretty), "[\n  [],\n  {}\n]");
    }

    #[test]
    fn checked_json_validates() {
        assert_eq!(checked_json(b"[1, 2]").unwrap(), "[1, 2]");
        assert!(checked_json(b"{\"a\":").is_err());
        assert!(checked_json(b"1 2").is_err());
        assert!(checked_json(&[0x22, 0xff, 0x22]).is_err());
        // What Python and the document layer cannot read back is refused here too.
        assert!(checked_json(b"\"\\ud800\"").is_err());
        assert!(checked_json(b"1e400").is_err());
    }

    fn both(r: &Reply) -> (String, String) {
        (reply(r, Mode::Human { color: false }), reply(r, Mode::Json))
    }

    #[test]
    fn every_reply_is_one_json_line_for_programs() {
        let replies = [
            Reply::Ok,
            Reply::Json("{ \"a\" : [1, 2] }".into()),
            Reply::Flag(true),
            Reply::Flag(false),
            Reply::Count(7),
            Reply::Keys(vec![]),
            Reply::Keys(vec!["a".into(), "my key".into()]),
            Reply::Rows(vec![]),
            Reply::Rows(vec![("k 1".into(), "{\n \"x\": 1}".into())]),
            Reply::Compacted {
                before: 10,
                after: 4,
            },
            Reply::Help {
                text: "t".into(),
                json: "{\"command\": \"GET\"}".into(),
            },
            Reply::Values(vec![]),
            Reply::Values(vec!["\"Paris\"".into(), "{ \"a\": 1 }".into(), "2".into()]),
            Reply::Updated(None),
            Reply::Updated(Some("{\"n\": 2}".into())),
            Reply::Changed {
                count: 3,
                verb: "updated",
            },
            Reply::Indexes(vec![]),
            Reply::Indexes(vec![("age".into(), false), ("my field".into(), true)]),
        ];
        for r in &replies {
            let line = reply(r, Mode::Json);
            assert!(!line.contains('\n'), "{line}");
            serde_json::from_str::<serde_json::Value>(&line).unwrap();
        }
        assert_eq!(both(&Reply::Ok), ("OK".into(), "\"OK\"".into()));
        assert_eq!(
            both(&Reply::Keys(vec!["a".into(), "my key".into()])),
            ("a\n\"my key\"".into(), "[\"a\",\"my key\"]".into())
        );
        assert_eq!(
            both(&Reply::Keys(vec![])),
            ("(no keys)".into(), "[]".into())
        );
        assert_eq!(
            both(&Reply::Rows(vec![("k 1".into(), "{\"x\":1}".into())])),
            (
                "\"k 1\"\t{\n  \"x\": 1\n}".into(),
                "[[\"k 1\",{\"x\":1}]]".into()
            )
        );
        assert_eq!(
            both(&Reply::Compacted {
                before: 10,
                after: 4
            }),
            (
                "10 → 4 bytes".into(),
                "{\"file_bytes_before\":10,\"file_bytes_after\":4}".into()
            )
        );
        assert_eq!(both(&Reply::Flag(true)), ("1".into(), "1".into()));
        assert_eq!(
            both(&Reply::Values(vec![
                "\"Paris\"".into(),
                "{ \"a\": 1 }".into()
            ])),
            (
                "\"Paris\"\n{\"a\":1}".into(),
                "[\"Paris\",{\"a\":1}]".into()
            )
        );
        assert_eq!(
            both(&Reply::Values(vec![])),
            ("(no values)".into(), "[]".into())
        );
        assert_eq!(
            both(&Reply::Updated(Some("{\"n\":2}".into()))),
            ("{\n  \"n\": 2\n}".into(), "{\"n\":2}".into())
        );
        assert_eq!(
            both(&Reply::Ttl(Some(2.5))),
            ("2.500 seconds".into(), "2.5".into())
        );
        assert_eq!(
            both(&Reply::Ttl(None)),
            ("(no expiry)".into(), "null".into())
        );
        assert_eq!(
            both(&Reply::Cut {
                reply: Box::new(Reply::Keys(vec!["a".into(), "b".into()])),
                more: 1_234_567,
            }),
            (
                "a\nb\n… 1,234,567 more (LIMIT to change)".into(),
                "[\"a\",\"b\"]".into()
            )
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(both(&Reply::Updated(None)).1, "null");
        assert!(both(&Reply::Updated(None)).0.contains("UPSERT"));
        assert_eq!(
            both(&Reply::Changed {
                count: 3,
                verb: "deleted"
            }),
            ("3 deleted".into(), "3".into())
        );
        assert_eq!(
            both(&Reply::Indexes(vec![
                ("age".into(), false),
                ("my field".into(), true)
            ])),
            (
                "age\n\"my field\" (unique)".into(),
                "[{\"field\":\"age\",\"unique\":false},{\"field\":\"my field\",\"unique\":true}]"
                    .into()
            )
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let doc = Reply::Json("{\"k\":\"v\",\"n\":1,\"t\":true}".into());
        let plain = reply(&doc, Mode::Human { color: false });
        assert!(!plain.contains('\x1b'), "{plain}");
        let colored = reply(&doc, Mode::Human { color: true });
        assert!(colored.contains("\x1b["), "{colored}");
        // Same text once the escape sequences are stripped.
        assert_eq!(console::strip_ansi_codes(&colored), plain);
        assert!(!reply(&doc, Mode::Json).contains('\x1b'));
        assert_eq!(error_prefix(false), "error:");
        assert!(error_prefix(true).contains("\x1b["));
    }

    #[test]
    fn keys_are_quoted_only_when_needed() {
        assert_eq!(display_key("user:1"), "user:1");
        assert_eq!(display_key("a\"b"), "a\"b");
        assert_eq!(display_key("my key"), "\"my key\"");
        assert_eq!(display_key("\"q"), "\"\\\"q\"");
        assert_eq!(display_key(""), "\"\"");
        assert_eq!(display_key("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(display_key("é"), "é");
    }
}
