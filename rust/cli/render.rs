//! How the CLI shows things: stored JSON re-indented (pretty) or compacted, and
//! keys written the way a user would type them back (bare, or JSON-quoted).
//!
//! JSON is re-laid-out token by token rather than through `serde_json::Value`,
//! so object key order and number literals are shown exactly as stored.

use serde::de::IgnoredAny;

/// Layout of JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStyle {
    /// Indented over several lines (for a person at a terminal).
    Pretty,
    /// One line, no spaces (for pipes and scripts).
    Compact,
}

/// Check that `bytes` are one UTF-8 JSON document and lay it out in `style`.
///
/// # Errors
/// Why the bytes are not valid JSON.
pub fn json_bytes(bytes: &[u8], style: JsonStyle) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    serde_json::from_str::<IgnoredAny>(text).map_err(|e| e.to_string())?;
    Ok(relayout(text, style))
}

/// Re-lay-out `json`, which must already be valid JSON: whitespace outside
/// strings is dropped and, for [`JsonStyle::Pretty`], replaced by two-space
/// indentation (the same layout as `serde_json::to_string_pretty`).
pub fn relayout(json: &str, style: JsonStyle) -> String {
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
                out.push_str(&json[i..end]);
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
                out.push_str(&json[start..i]);
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
    fn json_bytes_validates() {
        assert_eq!(json_bytes(b"[1, 2]", JsonStyle::Compact).unwrap(), "[1,2]");
        assert!(json_bytes(b"{\"a\":", JsonStyle::Compact).is_err());
        assert!(json_bytes(b"1 2", JsonStyle::Compact).is_err());
        assert!(json_bytes(&[0x22, 0xff, 0x22], JsonStyle::Compact).is_err());
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
