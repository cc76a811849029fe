//! Mongo-style filters parsed from JSON into a typed AST, or rejected with the
//! exact part at fault (`filter.score.$gt`).
//!
//! Parsing is separate from evaluation so that a filter is validated once,
//! before any document is read, and so the planner can inspect it.

use std::fmt;

use serde_json::Value;

use super::order::{compare, values_equal};
use super::path::FieldPath;

/// A parsed filter: the implicit AND of its clauses. No clauses matches every
/// document (the filter `{}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// All must match.
    pub clauses: Vec<Clause>,
}

/// One member of a filter's implicit AND.
#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    /// Conditions on one field path, all of which must hold.
    Field(FieldFilter),
    /// `$and`: every sub-filter matches (non-empty).
    And(Vec<Filter>),
    /// `$or`: some sub-filter matches (non-empty).
    Or(Vec<Filter>),
}

/// The conditions on one path: `{"score": {"$gte": 50, "$lt": 90}}` gives two.
///
/// Each condition is checked on its own against everything the path reaches
/// (MongoDB without `$elemMatch`): `{"$gt": 5, "$lt": 3}` matches `[1, 9]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldFilter {
    /// The field the conditions apply to.
    pub path: FieldPath,
    /// All must hold; at least one.
    pub conditions: Vec<Condition>,
}

/// One operator and its operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `$eq`, or a plain literal: some reached value equals the operand.
    Eq(Value),
    /// `$ne`: not [`Condition::Eq`].
    Ne(Value),
    /// `$gt`: some reached value of the operand's type is greater.
    Gt(Value),
    /// `$gte`: some reached value of the operand's type is greater or equal.
    Gte(Value),
    /// `$lt`: some reached value of the operand's type is less.
    Lt(Value),
    /// `$lte`: some reached value of the operand's type is less or equal.
    Lte(Value),
    /// `$in`: [`Condition::Eq`] holds for some listed value (empty list:
    /// never). The list is sorted by [`compare`] without duplicates.
    In(Vec<Value>),
    /// `$nin`: not [`Condition::In`] (empty list: always); sorted like `$in`.
    Nin(Vec<Value>),
    /// `$exists`: whether the path reaches any value.
    Exists(bool),
}

impl Condition {
    /// The operator as written in a filter (`"$gte"`).
    #[must_use]
    pub fn operator(&self) -> &'static str {
        match self {
            Condition::Eq(_) => "$eq",
            Condition::Ne(_) => "$ne",
            Condition::Gt(_) => "$gt",
            Condition::Gte(_) => "$gte",
            Condition::Lt(_) => "$lt",
            Condition::Lte(_) => "$lte",
            Condition::In(_) => "$in",
            Condition::Nin(_) => "$nin",
            Condition::Exists(_) => "$exists",
        }
    }
}

/// A malformed filter (or sort specification): which part, and why.
///
/// `path` names the offending part from the root: `filter` for the whole
/// filter, `filter.score.$gt`, `filter.$and[1].tags.$in`, or `sort[0][1]` for
/// sort errors. Meant to surface as Python `ValueError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Where in the filter.
    pub path: String,
    /// What is wrong and what is accepted instead.
    pub reason: String,
}

impl FilterError {
    pub(crate) fn new(path: impl Into<String>, reason: impl Into<String>) -> FilterError {
        FilterError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid filter at {}: {}", self.path, self.reason)
    }
}

impl std::error::Error for FilterError {}

const SUPPORTED_OPERATORS: &str = "$eq $ne $gt $gte $lt $lte $in $nin $exists";

impl Filter {
    /// The filter that matches every document.
    #[must_use]
    pub fn all() -> Filter {
        Filter {
            clauses: Vec::new(),
        }
    }

    /// `{path: value}`: the filter behind `find(field, value)`.
    ///
    /// # Errors
    /// [`FilterError`] when `path` is not a valid dotted path.
    pub fn equality(path: &str, value: Value) -> Result<Filter, FilterError> {
        let path = FieldPath::parse(path).map_err(|e| FilterError::new("field", e.reason))?;
        Ok(Filter {
            clauses: vec![Clause::Field(FieldFilter {
                path,
                conditions: vec![Condition::Eq(value)],
            })],
        })
    }

    /// Parse a filter document.
    ///
    /// Accepted: an object whose keys are field paths or `$and`/`$or`. A field
    /// maps to a literal (equality; an object literal counts if none of its
    /// keys starts with `$`) or to an operator object whose keys all start
    /// with `$`: `$eq $ne $gt $gte $lt $lte` take any value, `$in`/`$nin` an
    /// array, `$exists` a bool. `$and`/`$or` take a non-empty array of filters.
    ///
    /// # Errors
    /// [`FilterError`] naming the first offending part, e.g. a non-object
    /// filter (`filter`), an unknown operator (`filter.a.$regex`), `$in` not
    /// an array (`filter.tags.$in`), `$exists` not a bool, an empty or
    /// non-array `$and` (`filter.$and`), an operator object mixed with plain
    /// keys (`filter.a`), or an empty path segment (`filter.a..b`).
    pub fn parse(filter: &Value) -> Result<Filter, FilterError> {
        parse_filter(filter, "filter")
    }
}

fn parse_filter(value: &Value, at: &str) -> Result<Filter, FilterError> {
    let Value::Object(map) = value else {
        return Err(FilterError::new(
            at,
            format!(
                "expected an object like {{\"field\": value}}, got {}",
                kind(value)
            ),
        ));
    };
    let mut clauses = Vec::with_capacity(map.len());
    for (key, operand) in map {
        let here = format!("{at}.{key}");
        let clause = match key.as_str() {
            "$and" => Clause::And(parse_list(operand, &here)?),
            "$or" => Clause::Or(parse_list(operand, &here)?),
            _ if key.starts_with('$') => {
                return Err(FilterError::new(
                    here,
                    "unknown top-level operator; only $and and $or may appear in place of a field",
                ))
            }
            _ => {
                let path = FieldPath::parse(key).map_err(|e| FilterError::new(&here, e.reason))?;
                Clause::Field(FieldFilter {
                    path,
                    conditions: parse_conditions(operand, &here)?,
                })
            }
        };
        clauses.push(clause);
    }
    Ok(Filter { clauses })
}

fn parse_list(value: &Value, at: &str) -> Result<Vec<Filter>, FilterError> {
    match value {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_filter(item, &format!("{at}[{i}]")))
            .collect(),
        Value::Array(_) => Err(FilterError::new(
            at,
            "expected a non-empty array of filters, got []",
        )),
        other => Err(FilterError::new(
            at,
            format!("expected a non-empty array of filters, got {}", kind(other)),
        )),
    }
}

fn parse_conditions(operand: &Value, at: &str) -> Result<Vec<Condition>, FilterError> {
    let Value::Object(map) = operand else {
        return Ok(vec![Condition::Eq(operand.clone())]);
    };
    let operators = map.keys().filter(|k| k.starts_with('$')).count();
    if operators == 0 {
        // A plain object (including {}) is an equality literal, as in MongoDB.
        return Ok(vec![Condition::Eq(operand.clone())]);
    }
    if operators != map.len() {
        return Err(FilterError::new(
            at,
            "mixes operators ($...) with plain keys; use either an operator object like \
             {\"$gt\": 1} or a literal object without $-keys",
        ));
    }
    map.iter()
        .map(|(op, arg)| parse_condition(op, arg, &format!("{at}.{op}")))
        .collect()
}

fn parse_condition(op: &str, arg: &Value, at: &str) -> Result<Condition, FilterError> {
    Ok(match op {
        "$eq" => Condition::Eq(arg.clone()),
        "$ne" => Condition::Ne(arg.clone()),
        "$gt" => Condition::Gt(arg.clone()),
        "$gte" => Condition::Gte(arg.clone()),
        "$lt" => Condition::Lt(arg.clone()),
        "$lte" => Condition::Lte(arg.clone()),
        "$in" => Condition::In(array_operand(arg, at)?),
        "$nin" => Condition::Nin(array_operand(arg, at)?),
        "$exists" => match arg {
            Value::Bool(b) => Condition::Exists(*b),
            other => {
                return Err(FilterError::new(
                    at,
                    format!("expected true or false, got {}", kind(other)),
                ))
            }
        },
        _ => {
            return Err(FilterError::new(
                at,
                format!("unknown operator; supported: {SUPPORTED_OPERATORS}"),
            ))
        }
    })
}

fn array_operand(arg: &Value, at: &str) -> Result<Vec<Value>, FilterError> {
    match arg {
        Value::Array(items) => {
            // Membership ignores order and repeats; keeping the list sorted and
            // deduplicated lets evaluation binary-search it and plans probe
            // each index key once.
            let mut items = items.clone();
            items.sort_by(compare);
            items.dedup_by(|a, b| values_equal(a, b));
            Ok(items)
        }
        other => Err(FilterError::new(
            at,
            format!("expected an array of values, got {}", kind(other)),
        )),
    }
}

/// A short description of a value for error messages.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("a bool ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) if s.len() <= 40 => format!("a string ({s:?})"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(filter: Value) -> FilterError {
        Filter::parse(&filter).unwrap_err()
    }

    fn field(path: &str, conditions: Vec<Condition>) -> Clause {
        Clause::Field(FieldFilter {
            path: FieldPath::parse(path).unwrap(),
            conditions,
        })
    }

    #[test]
    fn literals_are_equality_and_keys_are_anded() {
        let f = Filter::parse(&json!({"role": "admin", "n": 1, "o": {"x": 1}, "e": {}})).unwrap();
        assert_eq!(
            f.clauses,
            [
                field("role", vec![Condition::Eq(json!("admin"))]),
                field("n", vec![Condition::Eq(json!(1))]),
                field("o", vec![Condition::Eq(json!({"x": 1}))]),
                field("e", vec![Condition::Eq(json!({}))]),
            ]
        );
        assert_eq!(Filter::parse(&json!({})).unwrap(), Filter::all());
    }

    #[test]
    fn every_operator_parses() {
        let f = Filter::parse(&json!({"a.b": {
            "$eq": 1, "$ne": null, "$gt": 2, "$gte": "x", "$lt": [1], "$lte": {"k": 1},
            "$in": [1, "a"], "$nin": [], "$exists": false
        }}))
        .unwrap();
        let ops: Vec<_> = match &f.clauses[0] {
            Clause::Field(ff) => ff.conditions.iter().map(Condition::operator).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            ops,
            ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"]
        );
        assert_eq!(
            f.clauses[0],
            field(
                "a.b",
                vec![
                    Condition::Eq(json!(1)),
                    Condition::Ne(json!(null)),
                    Condition::Gt(json!(2)),
                    Condition::Gte(json!("x")),
                    Condition::Lt(json!([1])),
                    Condition::Lte(json!({"k": 1})),
                    Condition::In(vec![json!(1), json!("a")]),
                    Condition::Nin(vec![]),
                    Condition::Exists(false),
                ]
            )
        );
    }

    #[test]
    fn and_or_nest() {
        let f = Filter::parse(&json!({"$or": [{"a": 1}, {"$and": [{"b": 2}, {"c": {"$gt": 3}}]}]}))
            .unwrap();
        let Clause::Or(branches) = &f.clauses[0] else {
            panic!()
        };
        assert_eq!(branches.len(), 2);
        let Clause::And(inner) = &branches[1].clauses[0] else {
            panic!()
        };
        assert_eq!(
            inner[1].clauses[0],
            field("c", vec![Condition::Gt(json!(3))])
        );
    }

    #[test]
    fn non_object_filter() {
        for bad in [json!(null), json!([]), json!("a"), json!(1)] {
            assert_eq!(err(bad).path, "filter");
        }
        let e = err(json!([{"a": 1}]));
        assert!(e.reason.contains("expected an object"), "{e}");
    }

    #[test]
    fn unknown_operator_names_its_path() {
        let e = err(json!({"score": {"$gt": 1, "$regex": "x"}}));
        assert_eq!(e.path, "filter.score.$regex");
        assert!(
            e.reason.contains("$exists"),
            "lists the supported ones: {e}"
        );
        assert_eq!(err(json!({"$nor": []})).path, "filter.$nor");
        assert_eq!(
            err(json!({"a": {"$elemMatch": {}}})).path,
            "filter.a.$elemMatch"
        );
    }

    #[test]
    fn wrong_operand_types() {
        assert_eq!(err(json!({"tags": {"$in": "red"}})).path, "filter.tags.$in");
        assert_eq!(
            err(json!({"tags": {"$nin": {"a": 1}}})).path,
            "filter.tags.$nin"
        );
        assert_eq!(err(json!({"a": {"$exists": 1}})).path, "filter.a.$exists");
        assert_eq!(
            err(json!({"a": {"$exists": "yes"}})).path,
            "filter.a.$exists"
        );
    }

    #[test]
    fn and_or_must_be_non_empty_arrays_of_objects() {
        assert_eq!(err(json!({"$and": []})).path, "filter.$and");
        assert_eq!(err(json!({"$or": {"a": 1}})).path, "filter.$or");
        assert_eq!(err(json!({"$and": [{"a": 1}, 5]})).path, "filter.$and[1]");
        let e = err(json!({"$and": [{"a": 1}, {"$or": [{"b": {"$in": 3}}]}]}));
        assert_eq!(e.path, "filter.$and[1].$or[0].b.$in");
    }

    #[test]
    fn mixed_operator_object() {
        let e = err(json!({"score": {"$gt": 1, "x": 2}}));
        assert_eq!(e.path, "filter.score");
        assert!(e.reason.contains("mixes"), "{e}");
    }

    #[test]
    fn bad_field_paths() {
        assert_eq!(err(json!({"a..b": 1})).path, "filter.a..b");
        assert_eq!(err(json!({"": 1})).path, "filter.");
    }

    #[test]
    fn display_names_path_and_reason() {
        let e = err(json!({"score": {"$gt": 1, "$foo": 2}}));
        assert_eq!(
            e.to_string(),
            "invalid filter at filter.score.$foo: unknown operator; supported: \
             $eq $ne $gt $gte $lt $lte $in $nin $exists"
        );
    }

    #[test]
    fn equality_constructor() {
        let f = Filter::equality("address.city", json!("Oslo")).unwrap();
        assert_eq!(f, Filter::parse(&json!({"address.city": "Oslo"})).unwrap());
        assert_eq!(Filter::equality("a.", json!(1)).unwrap_err().path, "field");
    }
}
