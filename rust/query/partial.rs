//! Partial decoding: a query builds only the top-level fields it reads.
//!
//! Matching, sorting and projecting look at a few paths of each document,
//! yet parsing the whole document into a [`Value`] costs an allocation per
//! field and string. [`Fields`] collects the top-level names a filter, sort
//! and projection reach, and [`Fields::decode`] builds a document holding
//! only those (each whole), skipping the others without building them. Every
//! path starts at a top-level field, so a filter, sort or projection sees
//! the same values in the partial document as in the whole one. The skipped
//! parts are still parsed, so a stored value that is not JSON is an error
//! here as on a full parse.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::filter::{Clause, Filter};
use super::path::FieldPath;
use super::project::Projection;
use super::sort::SortSpec;

/// The top-level fields a query reads (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// Sorted, distinct.
    names: Vec<String>,
}

impl Fields {
    /// No field (a query that reads only keys still validates each document).
    pub fn none() -> Fields {
        Fields::default()
    }

    /// Add the first segment of `path`.
    pub fn add_path(&mut self, path: &FieldPath) {
        if let Some(first) = path.segments().first() {
            if let Err(at) = self
                .names
                .binary_search_by(|n| n.as_str().cmp(first.name()))
            {
                self.names.insert(at, first.name().to_owned());
            }
        }
    }

    /// Add every field `filter` reads (through `$and`, `$or`, `$nor`).
    pub fn add_filter(&mut self, filter: &Filter) {
        for clause in &filter.clauses {
            match clause {
                Clause::Field(f) => self.add_path(&f.path),
                Clause::And(subs) | Clause::Or(subs) | Clause::Nor(subs) => {
                    for sub in subs {
                        self.add_filter(sub);
                    }
                }
            }
        }
    }

    /// Add every field `sort` orders by.
    pub fn add_sort(&mut self, sort: &SortSpec) {
        for key in &sort.keys {
            self.add_path(&key.path);
        }
    }

    /// Add every field `projection` keeps.
    pub fn add_projection(&mut self, projection: &Projection) {
        for name in projection.top_level() {
            if let Err(at) = self.names.binary_search_by(|n| n.as_str().cmp(name)) {
                self.names.insert(at, name.to_owned());
            }
        }
    }

    /// Whether no field is wanted.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn wants(&self, name: &str) -> bool {
        // A handful of names: a scan beats hashing.
        self.names.iter().any(|n| n == name)
    }

    /// `bytes` as a document holding only these top-level fields, in their
    /// stored order. A document that is not an object is built whole.
    ///
    /// # Errors
    /// The parse error of bytes that are not one JSON value.
    pub fn decode(&self, bytes: &[u8]) -> serde_json::Result<Value> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return serde_json::from_slice(bytes);
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = Partial(self).deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }
}

/// Builds an object of the wanted fields.
struct Partial<'a>(&'a Fields);

impl<'de> DeserializeSeed<'de> for Partial<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Partial<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            if self.0.wants(&name) {
                // Later duplicates win, as in a full parse.
                out.insert(name.into_owned(), map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(out))
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::matches;
    use serde_json::json;

    fn fields_of(filter: &Value) -> (Filter, Fields) {
        let filter = Filter::parse(filter).expect("filter");
        let mut fields = Fields::none();
        fields.add_filter(&filter);
        (filter, fields)
    }

    #[test]
    fn keeps_only_the_fields_read_in_stored_order() {
        let (_, fields) = fields_of(&json!({"$or": [{"b.c": 1}, {"a": {"$gt": 1}}]}));
        let doc =
            br#"{"a": 2, "x": {"deep": [1, "two", null]}, "b": {"c": 1, "d": 2}, "y": "\u00e9"}"#;
        let partial = fields.decode(doc).expect("decode");
        assert_eq!(partial, json!({"a": 2, "b": {"c": 1, "d": 2}}));
        let keys: Vec<&String> = partial.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn same_answer_as_the_whole_document() {
        let docs = [
            json!({"a": 1, "b": [1, 2], "c": "x"}),
            json!({"a": [{"k": 3}], "z": {"a": 1}}),
            json!({"other": true}),
            json!([1, 2]),
            json!(5),
        ];
        let filters = [
            json!({"a": 1}),
            json!({"a.k": {"$gte": 3}}),
            json!({"$nor": [{"b": 2}], "c": {"$exists": false}}),
            json!({"z.a": {"$ne": 1}}),
        ];
        for filter in &filters {
            let (parsed, fields) = fields_of(filter);
            for doc in &docs {
                let bytes = serde_json::to_vec(doc).expect("encode");
                let partial = fields.decode(&bytes).expect("decode");
                assert_eq!(
                    matches(&parsed, &partial),
                    matches(&parsed, doc),
                    "{filter} on {doc}"
                );
            }
        }
    }

    #[test]
    fn escaped_names_duplicates_and_bad_json() {
        let mut fields = Fields::none();
        fields.add_path(&FieldPath::parse("é").expect("path"));
        let partial = fields
            .decode(br#"{"\u00e9": 1, "skip": [1, {"x": 2}], "\u00e9": 2}"#)
            .expect("decode");
        assert_eq!(partial, json!({"é": 2}));
        assert!(fields.decode(br#"{"skip": [1, }"#).is_err());
        assert!(fields.decode(br#"{"a": 1} trailing"#).is_err());
        assert!(Fields::none().decode(b"not json").is_err());
    }
}
