//! Projection (`query(..., fields=[...])`): a document cut down to some dotted
//! paths, with MongoDB's inclusion rules.
//!
//! Pure and separate from matching: a projection is parsed once per query
//! into a tree of path segments, then applied to each result document.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::filter::FilterError;
use super::path::FieldPath;

/// The paths a query keeps, as a tree of segments.
///
/// Applied to a document ([`Projection::apply`]), in the document's own
/// field order:
/// - a path that ends at a field keeps that field whole;
/// - an object on the way keeps only the projected fields inside it, and is
///   kept even if none of them exists (`{"a": {"c": 1}}` with `a.b` gives
///   `{"a": {}}`), as in MongoDB;
/// - an array on the way applies the rest of the path to each element that
///   is an object (kept, possibly `{}`) and drops the other elements;
///   numeric segments name object fields, not array positions (MongoDB);
/// - a scalar on the way, or a missing field, is omitted;
/// - of two paths where one extends the other (`a` and `a.b`), the shorter
///   wins: the whole field is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Projection {
    fields: BTreeMap<String, Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Whole,
    Inside(Projection),
}

impl Projection {
    /// Parse a list of dotted paths (`["name", "address.city"]`).
    ///
    /// # Errors
    /// [`FilterError`] at `fields` for a non-array or a non-string item, at
    /// `fields[i]` for an invalid path.
    pub fn parse(fields: &Value) -> Result<Projection, FilterError> {
        let Value::Array(items) = fields else {
            return Err(FilterError::new(
                "fields",
                "expected a list of dotted paths like [\"name\", \"address.city\"]",
            ));
        };
        let mut out = Projection::default();
        for (i, item) in items.iter().enumerate() {
            let at = format!("fields[{i}]");
            let Value::String(raw) = item else {
                return Err(FilterError::new(at, "expected a dotted path string"));
            };
            let path = FieldPath::parse(raw).map_err(|e| FilterError::new(at, e.reason))?;
            out.add(&path);
        }
        Ok(out)
    }

    fn add(&mut self, path: &FieldPath) {
        let mut level = self;
        let segments = path.segments();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let node = level
                .fields
                .entry(seg.name().to_owned())
                .or_insert_with(|| {
                    if last {
                        Node::Whole
                    } else {
                        Node::Inside(Projection::default())
                    }
                });
            match node {
                Node::Whole => return,
                Node::Inside(_) if last => {
                    *node = Node::Whole;
                    return;
                }
                Node::Inside(next) => level = next,
            }
        }
    }

    /// The top-level field names kept (whole or in part).
    pub fn top_level(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// The projected copy of `doc` (see the type's docs); a document that is
    /// not an object projects to `{}`.
    #[must_use]
    pub fn apply(&self, doc: &Value) -> Value {
        match doc {
            Value::Object(map) => Value::Object(self.apply_object(map)),
            _ => Value::Object(Map::new()),
        }
    }

    fn apply_object(&self, map: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in map {
            match self.fields.get(key) {
                None => {}
                Some(Node::Whole) => {
                    out.insert(key.clone(), value.clone());
                }
                Some(Node::Inside(inner)) => {
                    if let Some(v) = inner.apply_inside(value) {
                        out.insert(key.clone(), v);
                    }
                }
            }
        }
        out
    }

    /// The rest of a path applied to a value met on the way.
    fn apply_inside(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Object(map) => Some(Value::Object(self.apply_object(map))),
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|v| self.apply_inside(v)).collect(),
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn project(fields: Value, doc: Value) -> Value {
        Projection::parse(&fields).unwrap().apply(&doc)
    }

    #[test]
    fn keeps_listed_fields_in_document_order() {
        let doc = json!({"b": 2, "a": 1, "c": 3});
        assert_eq!(
            project(json!(["c", "a"]), doc.clone()),
            json!({"a": 1, "c": 3})
        );
        assert_eq!(project(json!(["nope"]), doc.clone()), json!({}));
        assert_eq!(project(json!([]), doc), json!({}));
    }

    #[test]
    fn nested_paths_rebuild_nested_objects() {
        let doc = json!({"name": "ann", "address": {"city": "Oslo", "zip": "0150", "geo": {"lat": 1, "lon": 2}}});
        assert_eq!(
            project(json!(["address.city", "address.geo.lat"]), doc.clone()),
            json!({"address": {"city": "Oslo", "geo": {"lat": 1}}})
        );
        assert_eq!(
            project(json!(["address.city", "address"]), doc.clone()),
            json!({"address": doc["address"].clone()}),
            "the shorter path wins"
        );
        assert_eq!(
            project(json!(["address", "address.city"]), doc.clone()),
            json!({"address": doc["address"].clone()})
        );
        assert_eq!(
            project(json!(["address.nope"]), doc),
            json!({"address": {}})
        );
        assert_eq!(
            project(json!(["name.first"]), json!({"name": "ann"})),
            json!({})
        );
    }

    #[test]
    fn arrays_on_the_way_keep_object_elements() {
        let doc = json!({"items": [{"sku": 1, "qty": 2}, {"qty": 3}, 5, [{"sku": 9}]]});
        assert_eq!(
            project(json!(["items.sku"]), doc.clone()),
            json!({"items": [{"sku": 1}, {}, [{"sku": 9}]]})
        );
        assert_eq!(
            project(json!(["items.0"]), doc),
            json!({"items": [{}, {}, [{}]]}),
            "numeric segments are field names"
        );
    }

    #[test]
    fn bad_fields() {
        assert_eq!(Projection::parse(&json!("a")).unwrap_err().path, "fields");
        assert_eq!(
            Projection::parse(&json!(["a", 1])).unwrap_err().path,
            "fields[1]"
        );
        assert_eq!(
            Projection::parse(&json!(["a", "b..c"])).unwrap_err().path,
            "fields[1]"
        );
    }
}
