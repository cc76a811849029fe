//! Relaxed JSON: what people type at a prompt or into a query box, where `{role: 'admin'}` is
//! meant as `{"role": "admin"}`. On top of strict JSON it accepts single-quoted strings and
//! unquoted object keys (letters, digits, `_`, `$` and `.`, not starting with a digit, so
//! `$gte` and `address.city` need no quotes). Nothing else is relaxed: no comments, no trailing
//! commas, no bare string values, so a typo still fails, with its line and column.
//!
//! The result is a `serde_json::Value` equal to what `serde_json` gives for the strict spelling:
//! numbers and double-quoted strings are handed to `serde_json` itself, so their rules (range,
//! escapes, surrogates, `preserve_order`) cannot drift from the strict parser's.

use std::fmt;

use serde_json::{Map, Value};

use super::MAX_DEPTH;

/// Where and why relaxed JSON could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelaxedError {
    /// What is wrong, e.g. `expected ':' after the key "a"`.
    pub message: String,
    /// 1-based line of the offending character.
    pub line: usize,
    /// 1-based column (in characters) of the offending character.
    pub column: usize,
    /// The text ended inside a value (an open `{`, `[` or string): more input could complete it.
    pub incomplete: bool,
}

impl fmt::Display for RelaxedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for RelaxedError {}

/// Parse `text` as one relaxed JSON value, with only whitespace around it.
///
/// # Errors
/// Where and why `text` is not (relaxed) JSON.
pub(crate) fn parse(text: &str) -> Result<Value, RelaxedError> {
    let (value, end) = parse_prefix(text)?;
    let mut reader = Reader { text, pos: end };
    reader.skip_whitespace();
    if reader.pos < text.len() {
        return Err(reader.error("trailing characters after the JSON value"));
    }
    Ok(value)
}

/// Parse one relaxed JSON value at the start of `text` (after any whitespace) and return it
/// with the byte offset just past it, so that a command line can go on reading options.
///
/// # Errors
/// Where and why the value is not (relaxed) JSON.
pub(crate) fn parse_prefix(text: &str) -> Result<(Value, usize), RelaxedError> {
    let mut reader = Reader { text, pos: 0 };
    let value = reader.value(0)?;
    Ok((value, reader.pos))
}

struct Reader<'a> {
    text: &'a str,
    /// Byte offset of the next unread character.
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<char> {
        self.text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
    }

    fn skip_whitespace(&mut self) {
        while let Some(c) = self.peek() {
            if !matches!(c, ' ' | '\t' | '\n' | '\r') {
                break;
            }
            self.pos += 1;
        }
    }

    /// An error at the current position.
    fn error(&self, message: impl Into<String>) -> RelaxedError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> RelaxedError {
        let before = self.text.get(..at).unwrap_or(self.text);
        let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
        RelaxedError {
            message: message.into(),
            line: before.matches('\n').count() + 1,
            column: before.get(line_start..).map_or(0, |l| l.chars().count()) + 1,
            incomplete: false,
        }
    }

    /// The text ended where `what` was still expected.
    fn end_of_input(&self, what: &str) -> RelaxedError {
        RelaxedError {
            incomplete: true,
            ..self.error(format!("the text ends where {what} was expected"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, RelaxedError> {
        self.skip_whitespace();
        match self.peek() {
            None => Err(self.end_of_input("a value")),
            Some('{') => self.object(depth + 1),
            Some('[') => self.array(depth + 1),
            Some('"') => Ok(Value::String(self.double_quoted()?)),
            Some('\'') => Ok(Value::String(self.single_quoted()?)),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(c) if is_word_start(c) => self.literal(),
            Some(c) => Err(self.error(format!("expected a value, found {c:?}"))),
        }
    }

    fn enter(&self, depth: usize) -> Result<(), RelaxedError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!(
                "more than {MAX_DEPTH} objects and arrays nested in one another"
            )));
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Value, RelaxedError> {
        self.enter(depth)?;
        self.pos += 1; // '{'
        let mut map = Map::new();
        self.skip_whitespace();
        if self.peek() == Some('}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_whitespace();
            let key = match self.peek() {
                None => return Err(self.end_of_input("a key")),
                Some('"') => self.double_quoted()?,
                Some('\'') => self.single_quoted()?,
                Some(c) if is_word_start(c) => self.word().to_owned(),
                Some(c) => {
                    return Err(self.error(format!(
                        "expected a key (a name, or a quoted string), found {c:?}"
                    )))
                }
            };
            self.skip_whitespace();
            match self.peek() {
                None => return Err(self.end_of_input("':'")),
                Some(':') => self.pos += 1,
                Some(c) => {
                    return Err(
                        self.error(format!("expected ':' after the key {key:?}, found {c:?}"))
                    )
                }
            }
            let value = self.value(depth)?;
            map.insert(key, value);
            self.skip_whitespace();
            match self.peek() {
                None => return Err(self.end_of_input("',' or '}'")),
                Some(',') => self.pos += 1,
                Some('}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                Some(c) => return Err(self.error(format!("expected ',' or '}}', found {c:?}"))),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, RelaxedError> {
        self.enter(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                None => return Err(self.end_of_input("',' or ']'")),
                Some(',') => self.pos += 1,
                Some(']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                Some(c) => return Err(self.error(format!("expected ',' or ']', found {c:?}"))),
            }
        }
    }

    /// The byte offset of the quote closing the string that opens at `self.pos`, skipping
    /// backslash escapes.
    fn closing_quote(&self, quote: u8) -> Result<usize, RelaxedError> {
        let bytes = self.text.as_bytes();
        let mut i = self.pos + 1;
        loop {
            match bytes.get(i) {
                None => {
                    return Err(RelaxedError {
                        incomplete: true,
                        ..self.error("the text ends inside a string that starts here")
                    })
                }
                Some(b'\\') => i += 2,
                Some(&b) if b == quote => return Ok(i),
                Some(_) => i += 1,
            }
        }
    }

    /// A double-quoted string, decoded by `serde_json` (its escapes and checks exactly).
    fn double_quoted(&mut self) -> Result<String, RelaxedError> {
        let close = self.closing_quote(b'"')?;
        let literal = self.text.get(self.pos..=close).unwrap_or("");
        let decoded = decode_string(literal).map_err(|why| self.error(why))?;
        self.pos = close + 1;
        Ok(decoded)
    }

    /// A single-quoted string: `\'` is a quote, a bare `"` stands for itself, and every other
    /// escape means what it means in JSON. Rewritten as a double-quoted literal for `serde_json`.
    fn single_quoted(&mut self) -> Result<String, RelaxedError> {
        let close = self.closing_quote(b'\'')?;
        let body = self.text.get(self.pos + 1..close).unwrap_or("");
        let mut literal = String::with_capacity(body.len() + 2);
        literal.push('"');
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('\'') => literal.push('\''),
                    Some(escaped) => {
                        literal.push('\\');
                        literal.push(escaped);
                    }
                    None => literal.push('\\'),
                },
                '"' => literal.push_str("\\\""),
                other => literal.push(other),
            }
        }
        literal.push('"');
        let decoded = decode_string(&literal).map_err(|why| self.error(why))?;
        self.pos = close + 1;
        Ok(decoded)
    }

    fn number(&mut self) -> Result<Value, RelaxedError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')) {
                break;
            }
            self.pos += 1;
        }
        let literal = self.text.get(start..self.pos).unwrap_or("");
        match serde_json::from_str::<Value>(literal) {
            Ok(value @ Value::Number(_)) => Ok(value),
            Ok(_) => Err(self.error_at(start, format!("invalid number {literal:?}"))),
            Err(e) if e.is_eof() && self.pos == self.text.len() => {
                Err(self.end_of_input("the rest of a number"))
            }
            Err(e) => Err(self.error_at(
                start,
                format!("invalid number {literal:?}: {}", strip_position(&e)),
            )),
        }
    }

    /// `true`, `false` or `null`; any other bare word is refused with a hint.
    fn literal(&mut self) -> Result<Value, RelaxedError> {
        let start = self.pos;
        let word = self.word();
        Ok(match word {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            "True" | "False" | "None" => {
                return Err(self.error_at(
                    start,
                    format!("{word} is Python; JSON spells it true, false or null"),
                ))
            }
            _ => {
                return Err(self.error_at(
                    start,
                    format!(
                        "unquoted string {word:?}; strings need quotes: \"{word}\" or '{word}'"
                    ),
                ))
            }
        })
    }

    /// A bare name: an unquoted key or literal.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !is_word_char(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        self.text.get(start..self.pos).unwrap_or("")
    }
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '$' | '.')
}

/// A double-quoted JSON string literal decoded by `serde_json`, or why not (without
/// serde_json's position, which counts from the literal rather than the whole input).
fn decode_string(literal: &str) -> Result<String, String> {
    serde_json::from_str::<String>(literal)
        .map_err(|e| format!("bad string: {}", strip_position(&e)))
}

/// A `serde_json` error's message without its " at line L column C" tail.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text.get(..at).unwrap_or(&text).to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(text: &str) -> Value {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn bad(text: &str) -> RelaxedError {
        match parse(text) {
            Err(e) => e,
            Ok(v) => panic!("{text}: expected an error, got {v}"),
        }
    }

    #[test]
    fn strict_json_reads_as_serde_json_reads_it() {
        for text in [
            r#"{"a": [1, -2.5e3, 18446744073709551615, -9223372036854775808], "b": null}"#,
            r#""tab\tquote\" \u00e9 \ud83d\ude00""#,
            r#"[true, false, {}, [], "", 0.1]"#,
            r#"{"z": 1, "a": 2, "z": 3}"#,
            "  7  ",
        ] {
            let strict: Value = serde_json::from_str(text).unwrap();
            let relaxed = ok(text);
            assert_eq!(relaxed, strict, "{text}");
            // Same field order too (preserve_order).
            assert_eq!(relaxed.to_string(), strict.to_string(), "{text}");
        }
    }

    #[test]
    fn single_quotes_and_bare_keys() {
        assert_eq!(
            ok("{role: 'admin', age: {$gte: 30}, address.city: 'Paris'}"),
            json!({"role": "admin", "age": {"$gte": 30}, "address.city": "Paris"})
        );
        assert_eq!(ok("'it\\'s'"), json!("it's"));
        assert_eq!(ok(r#"'say "hi"'"#), json!("say \"hi\""));
        assert_eq!(ok(r"'a\nb\u00e9'"), json!("a\nb\u{e9}"));
        assert_eq!(
            ok("{'a': ['x', \"y\"], _id: 1}"),
            json!({"a": ["x", "y"], "_id": 1})
        );
        assert_eq!(ok("{café: 'crème'}"), json!({"café": "crème"}));
    }

    #[test]
    fn errors_say_where() {
        let e = bad("{role: admin}");
        assert_eq!((e.line, e.column, e.incomplete), (1, 8, false));
        assert!(e.message.contains("unquoted string \"admin\""), "{e}");
        assert_eq!(e.to_string(), format!("{} at line 1 column 8", e.message));
        let e = bad("{a: 1,\n  b 2}");
        assert_eq!((e.line, e.column), (2, 5));
        assert!(
            e.message.contains("expected ':' after the key \"b\""),
            "{e}"
        );
        let e = bad("[1 2]");
        assert_eq!(e.column, 4);
        let e = bad("{\"a\": True}");
        assert!(e.message.contains("JSON spells it true"), "{e}");
        assert!(bad("{a: 1} x").message.contains("trailing characters"));
        assert!(bad("[1,]").message.contains("expected a value"));
        assert!(bad("01").message.contains("invalid number"));
        assert!(bad("'\\q'").message.contains("bad string"));
        assert!(bad("{1: 2}").message.contains("expected a key"));
    }

    #[test]
    fn an_open_value_is_incomplete() {
        for text in ["", "{", "{a: 1,", "['x", "{a: [1, 2", "'abc", "{a:", "-"] {
            assert!(bad(text).incomplete, "{text:?}");
        }
        assert!(!bad("{a: 1]").incomplete);
    }

    #[test]
    fn prefix_stops_after_the_value() {
        let text = "{a: 'b'} LIMIT 3";
        let (value, end) = parse_prefix(text).unwrap();
        assert_eq!(value, json!({"a": "b"}));
        assert_eq!(&text[end..], " LIMIT 3");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(bad(&deep).message.contains("nested"));
        let fine = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&fine).is_ok());
    }
}
