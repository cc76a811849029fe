//! The key list's rows and its content search (`GET /api/entries`): each key
//! with its value's type, size, a short preview and its TTL, so the list says
//! what a key holds without opening it; and `q=` to find documents by what
//! they contain rather than by key prefix.
//!
//! Search syntax (also in README and the page's placeholder): whitespace
//! separated `field:value` terms become an equality filter (all must hold;
//! the value is JSON when it parses, so `age:42` is a number and
//! `zip:"75001"` a string, else a bare word is a string; `field:` alone means
//! the field exists). Anything else is free text, matched case-insensitively
//! against keys and every string, number and boolean in the document. Either
//! way the search walks the keys in order from the cursor and stops after a
//! page of matches or a scan budget, so one request stays short on a large
//! database; the answer's `next` continues it.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::query::{matches, Filter};

use super::api::{decode_cursor, encode_cursor, page_limit, AppState, DEFAULT_PAGE};
use super::error::ApiError;

/// Characters of a value shown in its preview.
const PREVIEW_CHARS: usize = 120;
/// Documents read per engine call while listing or searching.
const READ_PAGE: usize = 256;
/// Documents a search request reads, in all, before answering with what it
/// found and a cursor to go on.
const SEARCH_SCAN_BUDGET: usize = 50_000;

/// What a search string asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Search {
    /// Every key (no `q`).
    All,
    /// `field:value` terms: this filter.
    Filter(Value),
    /// Free text, lower-cased.
    Text(String),
}

/// Split on whitespace, keeping double-quoted runs (with `\"` escapes) whole.
fn tokens(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in q.chars() {
        if quoted {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
        } else if c.is_whitespace() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            if c == '"' {
                quoted = true;
            }
            current.push(c);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A `field:value` term as (field, condition), or `None` if it is not one.
fn term(token: &str) -> Option<(String, Value)> {
    let (field, raw) = token.split_once(':')?;
    let field_ok = !field.is_empty()
        && !field.starts_with('$')
        && field
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if !field_ok {
        return None;
    }
    let condition = if raw.is_empty() {
        json!({ "$exists": true })
    } else {
        serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
    };
    Some((field.to_string(), condition))
}

/// Read a search string (see the module doc).
pub(crate) fn parse_search(q: &str) -> Search {
    let q = q.trim();
    if q.is_empty() {
        return Search::All;
    }
    let terms: Option<Vec<(String, Value)>> = tokens(q).iter().map(|t| term(t)).collect();
    match terms {
        Some(terms) if !terms.is_empty() => {
            let mut clauses: Vec<Value> = terms
                .into_iter()
                .map(|(field, cond)| {
                    let mut m = Map::new();
                    m.insert(field, cond);
                    Value::Object(m)
                })
                .collect();
            if clauses.len() == 1 {
                Search::Filter(clauses.remove(0))
            } else {
                Search::Filter(json!({ "$and": clauses }))
            }
        }
        _ => Search::Text(q.to_lowercase()),
    }
}

/// Whether `needle` (lower-case) is in any scalar of `doc`.
fn contains_text(doc: &Value, needle: &str) -> bool {
    match doc {
        Value::String(s) => s.to_lowercase().contains(needle),
        Value::Number(n) => n.to_string().contains(needle),
        Value::Bool(b) => b.to_string() == needle,
        Value::Null => false,
        Value::Array(items) => items.iter().any(|v| contains_text(v, needle)),
        Value::Object(map) => map.values().any(|v| contains_text(v, needle)),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The first [`PREVIEW_CHARS`] characters of `text`, with "…" when cut.
fn preview(text: &str) -> String {
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// One key list row.
fn row(key: &str, raw: &[u8], doc: Option<&Value>, ttl: Option<f64>) -> Value {
    let (kind, text) = match doc {
        Some(d) => (type_name(d), preview(&String::from_utf8_lossy(raw))),
        None => ("invalid", preview(&String::from_utf8_lossy(raw))),
    };
    json!({ "key": key, "type": kind, "bytes": raw.len(), "preview": text, "ttl": ttl })
}

/// `GET /api/entries?prefix=&after=&limit=&q=`: one page of key list rows
/// (`{"entries": [{"key", "type", "bytes", "preview", "ttl"}], "next",
/// "search": {"filter"} | {"text"} | null, "scanned"}`), in key order; with
/// `q`, only the matching documents (see the module doc).
pub(crate) async fn entries(
    State(st): State<AppState>,
    Query(mut params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let prefix = params.remove("prefix").unwrap_or_default();
    let limit = page_limit(&params, DEFAULT_PAGE)?;
    let after = match params.get("after").map(String::as_str) {
        None | Some("") => None,
        Some(c) => Some(decode_cursor(c, &prefix)?),
    };
    let search = parse_search(params.get("q").map_or("", String::as_str));
    let filter = match &search {
        Search::Filter(f) => Some(Filter::parse(f).map_err(|e| {
            ApiError::bad_request(format!(
                "cannot search for {f}: {} at {}; quote values with spaces (name:\"Ada L\")",
                e.reason, e.path
            ))
        })?),
        _ => None,
    };
    let answer = super::api::blocking(move || {
        let db = st.docs.as_ref();
        let mut rows = Vec::new();
        let mut scanned = 0usize;
        let mut cursor = after;
        let mut next: Option<String> = None;
        'pages: loop {
            let want = if search == Search::All {
                limit + 1 - rows.len()
            } else {
                READ_PAGE
            };
            let page = db.entries_page(&prefix, cursor.as_deref(), want)?;
            let ended = page.len() < want;
            for crate::backend::Entry { key, raw, ttl } in page {
                if rows.len() == limit {
                    // A further row exists: this page ends at the last shown.
                    next = cursor.clone();
                    break 'pages;
                }
                scanned += 1;
                cursor = Some(key.clone());
                let doc: Option<Value> = serde_json::from_slice(raw.as_bytes()).ok();
                let keep = match (&search, &filter, &doc) {
                    (Search::All, ..) => true,
                    (Search::Filter(_), Some(f), Some(d)) => matches(f, d),
                    (Search::Text(t), _, d) => {
                        key.to_lowercase().contains(t.as_str())
                            || d.as_ref().is_some_and(|d| contains_text(d, t))
                    }
                    _ => false,
                };
                if keep {
                    rows.push(row(&key, raw.as_bytes(), doc.as_ref(), ttl));
                }
                if search != Search::All && scanned >= SEARCH_SCAN_BUDGET {
                    next = cursor.clone();
                    break 'pages;
                }
            }
            if ended {
                break;
            }
        }
        let search_json = match &search {
            Search::All => Value::Null,
            Search::Filter(f) => json!({ "filter": f }),
            Search::Text(t) => json!({ "text": t }),
        };
        Ok(json!({
            "entries": rows,
            "next": next.as_deref().map(encode_cursor),
            "search": search_json,
            "scanned": scanned,
        }))
    })
    .await?;
    Ok(Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_value_terms_become_a_filter() {
        assert_eq!(
            parse_search("role:admin"),
            Search::Filter(json!({"role": "admin"}))
        );
        assert_eq!(parse_search(" age:42 "), Search::Filter(json!({"age": 42})));
        assert_eq!(
            parse_search("zip:\"75001\""),
            Search::Filter(json!({"zip": "75001"}))
        );
        assert_eq!(
            parse_search("address.city:Paris active:true"),
            Search::Filter(json!({"$and": [{"address.city": "Paris"}, {"active": true}]}))
        );
        assert_eq!(
            parse_search("name:\"Ada L\""),
            Search::Filter(json!({"name": "Ada L"}))
        );
        assert_eq!(
            parse_search("email:"),
            Search::Filter(json!({"email": {"$exists": true}}))
        );
    }

    #[test]
    fn anything_else_is_free_text() {
        assert_eq!(parse_search(""), Search::All);
        assert_eq!(parse_search("  Paris "), Search::Text("paris".into()));
        assert_eq!(
            parse_search("role:admin paris"),
            Search::Text("role:admin paris".into())
        );
        assert_eq!(parse_search(":x"), Search::Text(":x".into()));
    }

    #[test]
    fn text_matches_scalars_anywhere() {
        let doc = json!({"a": {"b": ["x", "Hello World"]}, "n": 1234, "ok": true});
        assert!(contains_text(&doc, "world"));
        assert!(contains_text(&doc, "23"));
        assert!(contains_text(&doc, "true"));
        assert!(!contains_text(&doc, "a"));
    }

    #[test]
    fn preview_cuts_on_a_character_boundary() {
        let long = "é".repeat(PREVIEW_CHARS + 5);
        let p = preview(&long);
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
        assert_eq!(preview("short"), "short");
    }
}
