//! Mongo-style filters parsed from JSON into a typed AST, or rejected with the
//! exact part at fault (`filter.score.$gt`).
//!
//! Parsing is separate from evaluation so that a filter is validated once,
//! before any document is read, and so the planner can inspect it.

use std::fmt;

use regex::Regex;
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
    /// `$nor`: no sub-filter matches (non-empty).
    Nor(Vec<Filter>),
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
    /// `$regex` (with its `$options`): some reached string matches.
    Regex(Pattern),
    /// `$not`: the operator expression (all of these conditions) does not
    /// hold; so it also matches documents that lack the field.
    Not(Vec<Condition>),
    /// `$size`: some reached array (not an element) has exactly this length.
    Size(u64),
    /// `$all`: [`Condition::Eq`] holds for every listed value (empty list:
    /// never, as in MongoDB).
    All(Vec<Value>),
    /// `$elemMatch`: some element of a reached array satisfies this, as a
    /// whole, on that one element.
    ElemMatch(ElemMatch),
}

/// What `$elemMatch` asks of one array element.
#[derive(Debug, Clone, PartialEq)]
pub enum ElemMatch {
    /// `{"$elemMatch": {"sku": 1, "qty": {"$gt": 2}}}`: an object element
    /// matching this filter (elements that are not objects never do).
    Filter(Filter),
    /// `{"$elemMatch": {"$gte": 80, "$lt": 85}}`: an element for which all
    /// these conditions hold together.
    Conditions(Vec<Condition>),
}

/// A compiled `$regex`, with the pattern and options as written.
///
/// Compiled once when the filter is parsed; two patterns are equal when
/// their source and options are. The `regex` crate's syntax (Perl-like,
/// without look-around or backreferences) matches in linear time.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    options: String,
    regex: Regex,
}

impl Pattern {
    /// Compile `source` with MongoDB-style `options`: `i` (case-insensitive),
    /// `m` (`^`/`$` at line breaks), `s` (`.` matches a newline), `x`
    /// (whitespace and `#` comments ignored).
    ///
    /// # Errors
    /// The reason, naming the pattern, for an invalid pattern or option.
    pub fn new(source: &str, options: &str) -> Result<Pattern, String> {
        let mut builder = regex::RegexBuilder::new(source);
        for flag in options.chars() {
            match flag {
                'i' => builder.case_insensitive(true),
                'm' => builder.multi_line(true),
                's' => builder.dot_matches_new_line(true),
                'x' => builder.ignore_whitespace(true),
                other => {
                    return Err(format!(
                        "unknown $options flag {other:?}; accepted: i, m, s, x"
                    ))
                }
            };
        }
        let regex = builder
            .build()
            .map_err(|e| format!("invalid pattern {source:?}: {e}"))?;
        Ok(Pattern {
            source: source.to_owned(),
            options: options.to_owned(),
            regex,
        })
    }

    /// The pattern as written.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The options as written (`""` for none).
    #[must_use]
    pub fn options(&self) -> &str {
        &self.options
    }

    /// Whether the pattern matches somewhere in `text` (unanchored, as in MongoDB).
    #[must_use]
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source && self.options == other.options
    }
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
            Condition::Regex(_) => "$regex",
            Condition::Not(_) => "$not",
            Condition::Size(_) => "$size",
            Condition::All(_) => "$all",
            Condition::ElemMatch(_) => "$elemMatch",
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
        crate::error::write_query_error(f, &self.path, &self.reason)
    }
}

impl std::error::Error for FilterError {}

const SUPPORTED_OPERATORS: &str =
    "$eq $ne $gt $gte $lt $lte $in $nin $exists $regex (with $options) $not $size $all $elemMatch";

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
    /// Accepted: an object whose keys are field paths or `$and`/`$or`/`$nor`.
    /// A field maps to a literal (equality; an object literal counts if none
    /// of its keys starts with `$`) or to an operator object whose keys all
    /// start with `$`: `$eq $ne $gt $gte $lt $lte` take any value, `$in`/`$nin`
    /// /`$all` an array, `$exists` a bool, `$regex` a pattern string (with
    /// `$options` a string of flags beside it), `$size` a non-negative
    /// integer, `$not` an operator object, `$elemMatch` an operator object or
    /// a filter. `$and`/`$or`/`$nor` take a non-empty array of filters.
    ///
    /// # Errors
    /// [`FilterError`] naming the first offending part, e.g. a non-object
    /// filter (`filter`), an unknown operator (`filter.a.$where`), `$in` not
    /// an array (`filter.tags.$in`), `$exists` not a bool, a pattern that does
    /// not compile (`filter.name.$regex`, the reason quoting it), an empty or
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
            "$nor" => Clause::Nor(parse_list(operand, &here)?),
            _ if key.starts_with('$') => {
                return Err(FilterError::new(
                    here,
                    "unknown top-level operator; only $and, $or and $nor may appear in place of a field",
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
    parse_operators(map, at)
}

/// An operator object (every key starts with `$`) as its conditions;
/// `$options` is consumed by the `$regex` beside it.
fn parse_operators(
    map: &serde_json::Map<String, Value>,
    at: &str,
) -> Result<Vec<Condition>, FilterError> {
    let options = map.get("$options");
    if options.is_some() && !map.contains_key("$regex") {
        return Err(FilterError::new(
            format!("{at}.$options"),
            "$options needs a $regex beside it",
        ));
    }
    map.iter()
        .filter(|(op, _)| op.as_str() != "$options")
        .map(|(op, arg)| {
            let here = format!("{at}.{op}");
            if op == "$regex" {
                parse_regex(arg, options, &here, &format!("{at}.$options"))
            } else {
                parse_condition(op, arg, &here)
            }
        })
        .collect()
}

fn parse_regex(
    pattern: &Value,
    options: Option<&Value>,
    at: &str,
    options_at: &str,
) -> Result<Condition, FilterError> {
    let Value::String(source) = pattern else {
        return Err(FilterError::new(
            at,
            format!("expected a pattern string, got {}", kind(pattern)),
        ));
    };
    let flags = match options {
        None => "",
        Some(Value::String(flags)) => flags.as_str(),
        Some(other) => {
            return Err(FilterError::new(
                options_at,
                format!("expected a string of flags like \"i\", got {}", kind(other)),
            ))
        }
    };
    Pattern::new(source, flags)
        .map(Condition::Regex)
        .map_err(|reason| {
            let at = if reason.starts_with("unknown $options") {
                options_at
            } else {
                at
            };
            FilterError::new(at, reason)
        })
}

/// `$not` and operator-form `$elemMatch`: a non-empty object of operators.
fn operator_object(arg: &Value, at: &str) -> Result<Vec<Condition>, FilterError> {
    match arg {
        Value::Object(map) if !map.is_empty() && map.keys().all(|k| k.starts_with('$')) => {
            parse_operators(map, at)
        }
        other => Err(FilterError::new(
            at,
            format!(
                "expected an operator object like {{\"$gt\": 5}}, got {}",
                kind(other)
            ),
        )),
    }
}

pub(crate) fn parse_elem_match(arg: &Value, at: &str) -> Result<ElemMatch, FilterError> {
    let Value::Object(map) = arg else {
        return Err(FilterError::new(
            at,
            format!(
                "expected an object: operators like {{\"$gt\": 5}} or a filter like {{\"sku\": 1}}, got {}",
                kind(arg)
            ),
        ));
    };
    let operators = map.keys().filter(|k| is_field_operator(k)).count();
    if operators > 0 && operators == map.len() {
        Ok(ElemMatch::Conditions(parse_operators(map, at)?))
    } else {
        // `$and`/`$or`/`$nor` and fields: a filter on each object element.
        Ok(ElemMatch::Filter(parse_filter(arg, at)?))
    }
}

/// `$`-keys that apply to a value (not the logical `$and $or $nor`).
fn is_field_operator(key: &str) -> bool {
    key.starts_with('$') && !matches!(key, "$and" | "$or" | "$nor")
}

fn parse_size(arg: &Value, at: &str) -> Result<Condition, FilterError> {
    let size = match arg {
        Value::Number(n) => n.as_u64().or_else(|| {
            // 2.0 is 2, as in MongoDB; 2.5 and negatives are refused.
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        }),
        _ => None,
    };
    size.map(Condition::Size).ok_or_else(|| {
        FilterError::new(
            at,
            format!("expected a non-negative integer, got {}", kind(arg)),
        )
    })
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
        "$all" => Condition::All(array_operand(arg, at)?),
        "$not" => Condition::Not(operator_object(arg, at)?),
        "$size" => parse_size(arg, at)?,
        "$elemMatch" => Condition::ElemMatch(parse_elem_match(arg, at)?),
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
        let e = err(json!({"score": {"$gt": 1, "$where": "x"}}));
        assert_eq!(e.path, "filter.score.$where");
        assert!(
            e.reason.contains("$elemMatch"),
            "lists the supported ones: {e}"
        );
        assert_eq!(err(json!({"$nor": []})).path, "filter.$nor");
        assert_eq!(err(json!({"$text": {}})).path, "filter.$text");
    }

    #[test]
    fn new_operators_parse() {
        let f = Filter::parse(&json!({
            "name": {"$regex": "^a", "$options": "i"},
            "n": {"$not": {"$gt": 5}},
            "tags": {"$size": 2.0, "$all": ["b", "a", "a"]},
            "items": {"$elemMatch": {"sku": 1}},
            "scores": {"$elemMatch": {"$gte": 80, "$lt": 85}},
            "$nor": [{"a": 1}],
        }))
        .unwrap();
        let Clause::Field(name) = &f.clauses[0] else {
            panic!()
        };
        let [Condition::Regex(p)] = name.conditions.as_slice() else {
            panic!("{name:?}")
        };
        assert_eq!((p.source(), p.options()), ("^a", "i"));
        assert!(p.is_match("Abc") && !p.is_match("bA"));
        assert_eq!(
            f.clauses[1],
            field("n", vec![Condition::Not(vec![Condition::Gt(json!(5))])])
        );
        assert_eq!(
            f.clauses[2],
            field(
                "tags",
                vec![
                    Condition::Size(2),
                    Condition::All(vec![json!("a"), json!("b")])
                ]
            )
        );
        assert_eq!(
            f.clauses[3],
            field(
                "items",
                vec![Condition::ElemMatch(ElemMatch::Filter(
                    Filter::parse(&json!({"sku": 1})).unwrap()
                ))]
            )
        );
        assert_eq!(
            f.clauses[4],
            field(
                "scores",
                vec![Condition::ElemMatch(ElemMatch::Conditions(vec![
                    Condition::Gte(json!(80)),
                    Condition::Lt(json!(85))
                ]))]
            )
        );
        assert!(matches!(&f.clauses[5], Clause::Nor(fs) if fs.len() == 1));
    }

    #[test]
    fn new_operators_reject_bad_operands() {
        let e = err(json!({"name": {"$regex": "a("}}));
        assert_eq!(e.path, "filter.name.$regex");
        assert!(e.reason.contains("\"a(\""), "names the pattern: {e}");
        assert_eq!(
            err(json!({"name": {"$regex": 5}})).path,
            "filter.name.$regex"
        );
        assert_eq!(
            err(json!({"name": {"$regex": "a", "$options": "q"}})).path,
            "filter.name.$options"
        );
        assert_eq!(
            err(json!({"name": {"$regex": "a", "$options": 1}})).path,
            "filter.name.$options"
        );
        assert_eq!(
            err(json!({"name": {"$options": "i"}})).path,
            "filter.name.$options"
        );
        for bad in [json!(5), json!({}), json!({"a": 1}), json!("x")] {
            assert_eq!(err(json!({"n": {"$not": bad}})).path, "filter.n.$not");
        }
        assert_eq!(
            err(json!({"n": {"$not": {"$foo": 1}}})).path,
            "filter.n.$not.$foo"
        );
        for bad in [json!(-1), json!(1.5), json!("2"), json!(null)] {
            assert_eq!(err(json!({"t": {"$size": bad}})).path, "filter.t.$size");
        }
        assert_eq!(err(json!({"t": {"$all": 1}})).path, "filter.t.$all");
        assert_eq!(
            err(json!({"t": {"$elemMatch": 1}})).path,
            "filter.t.$elemMatch"
        );
        assert_eq!(
            err(json!({"t": {"$elemMatch": {"a": {"$bad": 1}}}})).path,
            "filter.t.$elemMatch.a.$bad"
        );
        assert_eq!(err(json!({"$nor": {"a": 1}})).path, "filter.$nor");
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
             $eq $ne $gt $gte $lt $lte $in $nin $exists $regex (with $options) $not $size \
             $all $elemMatch"
        );
    }

    #[test]
    fn equality_constructor() {
        let f = Filter::equality("address.city", json!("Oslo")).unwrap();
        assert_eq!(f, Filter::parse(&json!({"address.city": "Oslo"})).unwrap());
        assert_eq!(Filter::equality("a.", json!(1)).unwrap_err().path, "field");
    }
}
