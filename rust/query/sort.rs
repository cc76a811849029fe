//! The `sort=` argument of `query`: parsing its forms and ordering results.
//!
//! Results order by [`compare`] on each sort field in turn, so sorting agrees
//! with range operators and indexes; the document key breaks ties, which makes
//! every sorted result (and so `skip`/`limit` paging) deterministic.

use std::cmp::Ordering;
use std::ops::ControlFlow;

use serde_json::Value;

use super::filter::FilterError;
use super::order::compare;
use super::path::{FieldPath, Reached};

/// Sort direction of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smallest first (`"field"`, `1`).
    Ascending,
    /// Largest first (`"-field"`, `-1`).
    Descending,
}

/// One field to sort by.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// The field.
    pub path: FieldPath,
    /// Its direction.
    pub direction: Direction,
}

/// A parsed sort specification: fields in priority order, then the key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SortSpec {
    /// Fields in priority order; empty means key order only.
    pub keys: Vec<SortKey>,
}

/// Stands in for a missing sort field.
static NULL: Value = Value::Null;

impl SortSpec {
    /// Parse the `sort` argument.
    ///
    /// Accepted: `null` (no fields, key order), `"field"` (ascending),
    /// `"-field"` (descending), or a list whose items are such strings or
    /// `[field, 1]` / `[field, -1]` pairs (Python tuples arrive as lists). In a
    /// pair the field is taken literally, without the `-` convention.
    ///
    /// # Errors
    /// [`FilterError`] with a path under `sort`: `sort` for a wrong type,
    /// `sort[1]` for a bad item, `sort[1][1]` for a direction other than
    /// `1`/`-1`, `sort[1][0]` for a bad field.
    pub fn parse(spec: &Value) -> Result<SortSpec, FilterError> {
        const FORMS: &str = "expected \"field\", \"-field\" or a list of (field, 1 or -1) pairs";
        let keys = match spec {
            Value::Null => Vec::new(),
            Value::String(s) => vec![parse_str(s, "sort")?],
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_item(item, &format!("sort[{i}]")))
                .collect::<Result<_, _>>()?,
            _ => return Err(FilterError::new("sort", FORMS)),
        };
        Ok(SortSpec { keys })
    }

    /// Whether there are no sort fields (results come in key order).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The value `doc` sorts by for each field, in field order.
    ///
    /// A field that reaches one non-array value sorts by it. Where a path
    /// reaches several values (arrays), the smallest counts when ascending
    /// and the largest when descending, taken over the leaf arrays' elements
    /// rather than the arrays themselves, as in MongoDB: `{"t": [3, 1]}` sorts
    /// as `1` ascending and `3` descending. A missing field, or one that
    /// reaches only an empty array, sorts as `null`: first when ascending,
    /// last when descending.
    #[must_use]
    pub fn sort_values<'a>(&self, doc: &'a Value) -> Vec<&'a Value> {
        self.keys.iter().map(|key| sort_value(key, doc)).collect()
    }

    /// Order two rows: by each field in turn, then by document key ascending
    /// (also when the fields sort descending).
    pub fn compare_rows<K: Ord + ?Sized>(&self, a: (&K, &Value), b: (&K, &Value)) -> Ordering {
        self.compare_values(&self.sort_values(a.1), &self.sort_values(b.1))
            .then_with(|| a.0.cmp(b.0))
    }

    /// Sort `(key, doc)` rows; computes each document's sort values once.
    #[must_use]
    pub fn sort_rows<K: Ord>(&self, rows: Vec<(K, Value)>) -> Vec<(K, Value)> {
        self.sort_by_parts(rows, |(key, doc)| (key, doc))
    }

    /// Sort any rows whose key and document `parts` gives, as
    /// [`SortSpec::compare_rows`] orders them, computing each document's sort
    /// values once rather than on every comparison.
    #[must_use]
    pub fn sort_by_parts<R, K: Ord + ?Sized>(
        &self,
        rows: Vec<R>,
        parts: impl Fn(&R) -> (&K, &Value),
    ) -> Vec<R> {
        if self.is_empty() {
            let mut rows = rows;
            rows.sort_by(|a, b| parts(a).0.cmp(parts(b).0));
            return rows;
        }
        let order: Vec<usize> = {
            let keyed: Vec<(&K, Vec<&Value>)> = rows
                .iter()
                .map(|row| {
                    let (key, doc) = parts(row);
                    (key, self.sort_values(doc))
                })
                .collect();
            let mut order: Vec<usize> = (0..rows.len()).collect();
            order.sort_by(|&i, &j| match (keyed.get(i), keyed.get(j)) {
                (Some((ki, vi)), Some((kj, vj))) => {
                    self.compare_values(vi, vj).then_with(|| ki.cmp(kj))
                }
                _ => Ordering::Equal, // unreachable: i, j < rows.len()
            });
            order
        };
        let mut slots: Vec<Option<R>> = rows.into_iter().map(Some).collect();
        order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .collect()
    }

    fn compare_values(&self, a: &[&Value], b: &[&Value]) -> Ordering {
        for ((key, x), y) in self.keys.iter().zip(a).zip(b) {
            let o = compare(x, y);
            let o = match key.direction {
                Direction::Ascending => o,
                Direction::Descending => o.reverse(),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

fn sort_value<'a>(key: &SortKey, doc: &'a Value) -> &'a Value {
    let mut best: Option<&'a Value> = None;
    let _ = key.path.visit(doc, &mut |r: Reached<'a>| {
        let candidate = match r {
            // A leaf array stands for its elements, which follow as Element.
            Reached::Value(Value::Array(_)) | Reached::Missing => None,
            Reached::Value(v) | Reached::Element(v) => Some(v),
        };
        if let Some(v) = candidate {
            let better = best.is_none_or(|b| {
                let o = compare(v, b);
                match key.direction {
                    Direction::Ascending => o == Ordering::Less,
                    Direction::Descending => o == Ordering::Greater,
                }
            });
            if better {
                best = Some(v);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    best.unwrap_or(&NULL)
}

fn parse_str(s: &str, at: &str) -> Result<SortKey, FilterError> {
    let (field, direction) = match s.strip_prefix('-') {
        Some(rest) => (rest, Direction::Descending),
        None => (s, Direction::Ascending),
    };
    let path = FieldPath::parse(field).map_err(|e| FilterError::new(at, e.reason))?;
    Ok(SortKey { path, direction })
}

fn parse_item(item: &Value, at: &str) -> Result<SortKey, FilterError> {
    match item {
        Value::String(s) => parse_str(s, at),
        Value::Array(pair) => match pair.as_slice() {
            [Value::String(field), dir] => {
                let path = FieldPath::parse(field)
                    .map_err(|e| FilterError::new(format!("{at}[0]"), e.reason))?;
                let direction = match dir.as_i64() {
                    Some(1) => Direction::Ascending,
                    Some(-1) => Direction::Descending,
                    _ => {
                        return Err(FilterError::new(
                            format!("{at}[1]"),
                            format!("direction must be 1 or -1, got {dir}"),
                        ))
                    }
                };
                Ok(SortKey { path, direction })
            }
            [_, _] => Err(FilterError::new(
                format!("{at}[0]"),
                "field must be a string",
            )),
            _ => Err(FilterError::new(
                at,
                format!("expected a (field, 1 or -1) pair, got {} items", pair.len()),
            )),
        },
        _ => Err(FilterError::new(
            at,
            "expected \"field\", \"-field\" or a (field, 1 or -1) pair",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> SortSpec {
        SortSpec::parse(&v).unwrap()
    }

    fn keys_of(spec: &SortSpec, rows: &[(&str, Value)]) -> Vec<String> {
        let rows: Vec<(String, Value)> = rows
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        spec.sort_rows(rows).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn parse_forms() {
        let asc = spec(json!("age"));
        assert_eq!(asc.keys[0].path.as_str(), "age");
        assert_eq!(asc.keys[0].direction, Direction::Ascending);
        let desc = spec(json!("-address.city"));
        assert_eq!(desc.keys[0].path.as_str(), "address.city");
        assert_eq!(desc.keys[0].direction, Direction::Descending);
        let list = spec(json!([["a", 1], ["b", -1], "-c", "d"]));
        let dirs: Vec<_> = list
            .keys
            .iter()
            .map(|k| (k.path.as_str(), k.direction))
            .collect();
        assert_eq!(
            dirs,
            [
                ("a", Direction::Ascending),
                ("b", Direction::Descending),
                ("c", Direction::Descending),
                ("d", Direction::Ascending)
            ]
        );
        assert!(spec(json!(null)).is_empty());
        assert!(spec(json!([])).is_empty());
    }

    #[test]
    fn parse_errors_name_the_part() {
        let err = |v: Value| SortSpec::parse(&v).unwrap_err().path;
        assert_eq!(err(json!(1)), "sort");
        assert_eq!(err(json!({"a": 1})), "sort");
        assert_eq!(err(json!("")), "sort");
        assert_eq!(err(json!("-")), "sort");
        assert_eq!(err(json!(["a", ["b", 2]])), "sort[1][1]");
        assert_eq!(err(json!([["b", "desc"]])), "sort[0][1]");
        assert_eq!(err(json!([["b", 1.0]])), "sort[0][1]");
        assert_eq!(err(json!([[1, 1]])), "sort[0][0]");
        assert_eq!(err(json!([["a..b", 1]])), "sort[0][0]");
        assert_eq!(err(json!([["a", 1, 2]])), "sort[0]");
        assert_eq!(err(json!([5])), "sort[0]");
    }

    #[test]
    fn ascending_descending_and_missing_as_null() {
        let rows = [
            ("k1", json!({"n": 2})),
            ("k2", json!({})),
            ("k3", json!({"n": 1.5})),
            ("k4", json!({"n": "s"})),
            ("k5", json!({"n": null})),
        ];
        assert_eq!(
            keys_of(&spec(json!("n")), &rows),
            ["k2", "k5", "k3", "k1", "k4"]
        );
        assert_eq!(
            keys_of(&spec(json!("-n")), &rows),
            ["k4", "k1", "k3", "k2", "k5"]
        );
    }

    #[test]
    fn ties_broken_by_key_even_descending() {
        let rows = [
            ("b", json!({"n": 1})),
            ("c", json!({"n": 1.0})),
            ("a", json!({"n": 1})),
        ];
        assert_eq!(keys_of(&spec(json!("n")), &rows), ["a", "b", "c"]);
        assert_eq!(keys_of(&spec(json!("-n")), &rows), ["a", "b", "c"]);
        assert_eq!(keys_of(&SortSpec::default(), &rows), ["a", "b", "c"]);
    }

    #[test]
    fn multiple_fields() {
        let rows = [
            ("a", json!({"g": 1, "n": 1})),
            ("b", json!({"g": 2, "n": 5})),
            ("c", json!({"g": 1, "n": 3})),
        ];
        assert_eq!(
            keys_of(&spec(json!([["g", 1], ["n", -1]])), &rows),
            ["c", "a", "b"]
        );
    }

    #[test]
    fn arrays_sort_by_min_ascending_max_descending() {
        let rows = [
            ("x", json!({"t": [3, 1]})),
            ("y", json!({"t": 2})),
            ("z", json!({"t": []})),
        ];
        assert_eq!(keys_of(&spec(json!("t")), &rows), ["z", "x", "y"]);
        assert_eq!(keys_of(&spec(json!("-t")), &rows), ["x", "y", "z"]);
        let doc = json!({"items": [{"p": 4}, {"p": [9, 0]}]});
        assert_eq!(spec(json!("items.p")).sort_values(&doc), [&json!(0)]);
        assert_eq!(spec(json!("-items.p")).sort_values(&doc), [&json!(9)]);
    }

    #[test]
    fn compare_rows_matches_sort_rows() {
        let s = spec(json!("-n"));
        let a = json!({"n": 1});
        let b = json!({"n": 2});
        assert_eq!(s.compare_rows(("a", &a), ("b", &b)), Ordering::Greater);
        assert_eq!(s.compare_rows(("a", &a), ("b", &a)), Ordering::Less);
    }
}
