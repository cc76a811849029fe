//! Dotted field paths (`"address.city"`, `"items.0.sku"`) and what they reach.
//!
//! A path is parsed once into segments and then resolved against many
//! documents, MongoDB-style: arrays on the way are entered element by element.
//! Filters, sort keys and index entries all resolve paths here, so they agree.

use std::fmt;
use std::ops::ControlFlow;

use serde_json::Value;

/// One `.`-separated part of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Segment {
    name: String,
    /// Set when the segment is a canonical array index (`0`, `17`; not `01`).
    index: Option<usize>,
}

impl Segment {
    /// The segment text (an object key, or an array index in decimal).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The array index this segment denotes, if it is a canonical decimal.
    #[must_use]
    pub fn index(&self) -> Option<usize> {
        self.index
    }
}

/// Why a path string was rejected by [`FieldPath::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// The rejected path.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid field path {:?}: {}", self.path, self.reason)
    }
}

impl std::error::Error for PathError {}

/// A parsed dotted field path.
///
/// Parsing splits on `.`; every segment must be non-empty (so `""`, `"a."`,
/// `".a"` and `"a..b"` are rejected). Keys containing a literal `.` cannot be
/// addressed, as in MongoDB. A segment such as `$x` is an ordinary key here;
/// filters reject `$`-keys in field position themselves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    raw: String,
    segments: Vec<Segment>,
}

/// One thing a path reaches in a document, reported by [`FieldPath::visit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reached<'a> {
    /// The value at the end of a branch of the path.
    Value(&'a Value),
    /// An element of an array found at the end of a branch (reported right
    /// after [`Reached::Value`] of that array).
    Element(&'a Value),
    /// A branch of the path that dead-ends: an object without the next key, a
    /// scalar or nested array where the path goes on, or an array index out of
    /// range. Used by null equality, which also matches missing fields.
    Missing,
}

impl<'a> Reached<'a> {
    /// The reached value, whether whole or an array element; `None` for
    /// [`Reached::Missing`].
    #[must_use]
    pub fn value(self) -> Option<&'a Value> {
        match self {
            Reached::Value(v) | Reached::Element(v) => Some(v),
            Reached::Missing => None,
        }
    }
}

impl FieldPath {
    /// Parse a dotted path.
    ///
    /// # Errors
    /// [`PathError`] for an empty path or an empty segment.
    pub fn parse(raw: &str) -> Result<FieldPath, PathError> {
        if raw.is_empty() {
            return Err(PathError {
                path: raw.to_owned(),
                reason: "a field path must not be empty".to_owned(),
            });
        }
        let mut segments = Vec::new();
        for (i, part) in raw.split('.').enumerate() {
            if part.is_empty() {
                return Err(PathError {
                    path: raw.to_owned(),
                    reason: format!(
                        "segment {} is empty; write dotted paths like \"address.city\"",
                        i + 1
                    ),
                });
            }
            segments.push(Segment {
                name: part.to_owned(),
                index: canonical_index(part),
            });
        }
        Ok(FieldPath {
            raw: raw.to_owned(),
            segments,
        })
    }

    /// The path as written (`"address.city"`); also the index name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The parsed segments, at least one.
    #[must_use]
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Walk `doc` along the path and report everything reached, in document
    /// order, stopping early when `f` breaks.
    ///
    /// Exactly what is reached, segment by segment, from the document root:
    /// - an **object** continues into the member named by the segment; if it
    ///   has none, the branch is [`Reached::Missing`];
    /// - an **array** met by a numeric segment (`"tags.0"`; canonical decimal,
    ///   no sign or leading zero) continues into that element only, or is
    ///   `Missing` when out of range. (MongoDB would also look for a key `"0"`
    ///   in object elements; we do not.)
    /// - an **array** met by any other segment applies that same segment to
    ///   each element that is an object; each element that is not an object
    ///   (a scalar or a nested array) is a `Missing` branch. Nested arrays are
    ///   never entered implicitly, as in MongoDB. An empty array reaches nothing.
    /// - a **scalar** met before the path ends is a `Missing` branch.
    /// - at the **end** of the path the value is reported as [`Reached::Value`],
    ///   and if it is an array, each element follows as [`Reached::Element`]
    ///   (one level only: `[[1]]` reaches `[[1]]` and `[1]`, not `1`).
    ///
    /// So `tags` on `{"tags":["a","b"]}` reaches `["a","b"]`, `"a"`, `"b"`;
    /// `items.sku` on `{"items":[{"sku":1},{"sku":[2]},{}]}` reaches `1`,
    /// `[2]`, `2` and one `Missing`. The same value may be reached twice.
    pub fn visit<'a, B>(
        &self,
        doc: &'a Value,
        f: &mut impl FnMut(Reached<'a>) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        walk(doc, &self.segments, f)
    }

    /// Every value reached (whole values and leaf-array elements, not
    /// `Missing`), in document order, duplicates kept. Empty when the path
    /// reaches nothing.
    #[must_use]
    pub fn values<'a>(&self, doc: &'a Value) -> Vec<&'a Value> {
        let mut out = Vec::new();
        let _ = self.visit(doc, &mut |r: Reached<'a>| {
            if let Some(v) = r.value() {
                out.push(v);
            }
            ControlFlow::<()>::Continue(())
        });
        out
    }

    /// Whether `pred` holds for some value reached (stops at the first).
    pub fn any_value(&self, doc: &Value, mut pred: impl FnMut(&Value) -> bool) -> bool {
        self.visit(doc, &mut |r: Reached<'_>| match r.value() {
            Some(v) if pred(v) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        })
        .is_break()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for FieldPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldPath::parse(s)
    }
}

/// `Some(n)` for `"0"`, `"17"`; `None` for `"01"`, `"+1"`, `"-1"`, `"x"`.
fn canonical_index(part: &str) -> Option<usize> {
    let canonical =
        part.bytes().all(|b| b.is_ascii_digit()) && (part == "0" || !part.starts_with('0'));
    if canonical {
        part.parse().ok()
    } else {
        None
    }
}

fn walk<'a, B>(
    value: &'a Value,
    segments: &[Segment],
    f: &mut impl FnMut(Reached<'a>) -> ControlFlow<B>,
) -> ControlFlow<B> {
    let Some((seg, rest)) = segments.split_first() else {
        f(Reached::Value(value))?;
        if let Value::Array(items) = value {
            for item in items {
                f(Reached::Element(item))?;
            }
        }
        return ControlFlow::Continue(());
    };
    match value {
        Value::Object(map) => match map.get(&seg.name) {
            Some(child) => walk(child, rest, f),
            None => f(Reached::Missing),
        },
        Value::Array(items) => match seg.index {
            Some(i) => match items.get(i) {
                Some(child) => walk(child, rest, f),
                None => f(Reached::Missing),
            },
            None => {
                for item in items {
                    match item {
                        Value::Object(map) => match map.get(&seg.name) {
                            Some(child) => walk(child, rest, f)?,
                            None => f(Reached::Missing)?,
                        },
                        _ => f(Reached::Missing)?,
                    }
                }
                ControlFlow::Continue(())
            }
        },
        _ => f(Reached::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reached(path: &str, doc: &Value) -> Vec<String> {
        let p = FieldPath::parse(path).unwrap();
        let mut out = Vec::new();
        let _ = p.visit(doc, &mut |r| {
            out.push(match r {
                Reached::Value(v) => format!("V{v}"),
                Reached::Element(v) => format!("E{v}"),
                Reached::Missing => "M".to_owned(),
            });
            ControlFlow::<()>::Continue(())
        });
        out
    }

    #[test]
    fn parse_rejects_empty_segments() {
        for bad in ["", ".", "a.", ".a", "a..b"] {
            let e = FieldPath::parse(bad).unwrap_err();
            assert_eq!(e.path, bad);
        }
        let p = FieldPath::parse("address.city").unwrap();
        assert_eq!(p.as_str(), "address.city");
        assert_eq!(p.segments().len(), 2);
        assert_eq!(p.segments()[1].name(), "city");
    }

    #[test]
    fn numeric_segments_must_be_canonical() {
        let p = FieldPath::parse("a.0.17.01.-1.x").unwrap();
        let idx: Vec<_> = p.segments().iter().map(Segment::index).collect();
        assert_eq!(idx, [None, Some(0), Some(17), None, None, None]);
    }

    #[test]
    fn top_level_and_nested_objects() {
        let doc = json!({"name": "ann", "address": {"city": "Oslo"}});
        assert_eq!(reached("name", &doc), ["V\"ann\""]);
        assert_eq!(reached("address.city", &doc), ["V\"Oslo\""]);
        assert_eq!(reached("address", &doc), ["V{\"city\":\"Oslo\"}"]);
        assert_eq!(reached("nope", &doc), ["M"]);
        assert_eq!(reached("address.zip", &doc), ["M"]);
        assert_eq!(reached("name.first", &doc), ["M"], "scalar before the end");
    }

    #[test]
    fn leaf_array_reaches_itself_and_each_element() {
        let doc = json!({"tags": ["a", "b"]});
        assert_eq!(
            reached("tags", &doc),
            ["V[\"a\",\"b\"]", "E\"a\"", "E\"b\""]
        );
        assert_eq!(reached("tags", &json!({"tags": []})), ["V[]"]);
        // One level only.
        assert_eq!(reached("t", &json!({"t": [[1]]})), ["V[[1]]", "E[1]"]);
    }

    #[test]
    fn intermediate_array_descends_into_object_elements() {
        let doc = json!({"items": [{"sku": 1}, {"sku": 2}]});
        assert_eq!(reached("items.sku", &doc), ["V1", "V2"]);
        let doc = json!({"items": [{"sku": 1}, {"sku": [2]}, {}, 5, [{"sku": 3}]]});
        assert_eq!(
            reached("items.sku", &doc),
            ["V1", "V[2]", "E2", "M", "M", "M"]
        );
        assert!(reached("items.sku", &json!({"items": []})).is_empty());
        let doc = json!({"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": {"c": 3}}]});
        assert_eq!(reached("a.b.c", &doc), ["V1", "V2", "V3"]);
    }

    #[test]
    fn numeric_segment_indexes_arrays() {
        let doc = json!({"tags": ["a", "b"], "items": [{"sku": 1}, {"sku": 2}]});
        assert_eq!(reached("tags.0", &doc), ["V\"a\""]);
        assert_eq!(reached("tags.1", &doc), ["V\"b\""]);
        assert_eq!(reached("tags.2", &doc), ["M"]);
        assert_eq!(reached("items.1.sku", &doc), ["V2"]);
        // On an object a numeric segment is just a key.
        assert_eq!(reached("m.0", &json!({"m": {"0": true}})), ["Vtrue"]);
        // Indexing an element that is itself an array: the leaf rule applies.
        assert_eq!(
            reached("t.0", &json!({"t": [["x", "y"]]})),
            ["V[\"x\",\"y\"]", "E\"x\"", "E\"y\""]
        );
    }

    #[test]
    fn non_object_document_reaches_nothing_but_missing() {
        assert_eq!(reached("a", &json!([{"a": 1}])), ["V1"]);
        assert_eq!(reached("a", &json!(5)), ["M"]);
    }

    #[test]
    fn values_and_any_value() {
        let p = FieldPath::parse("items.sku").unwrap();
        let doc = json!({"items": [{"sku": 1}, {}, {"sku": [2, 1]}]});
        assert_eq!(
            p.values(&doc),
            [&json!(1), &json!([2, 1]), &json!(2), &json!(1)]
        );
        assert!(p.any_value(&doc, |v| v == &json!(2)));
        assert!(!p.any_value(&doc, |v| v == &json!(3)));
    }
}
