//! Evaluating a parsed [`Filter`] against one document, with MongoDB semantics.
//!
//! This is the ground truth for `query` and `find`: an index plan only narrows
//! the candidates, and whatever it returns must equal a scan through
//! [`matches()`], whose docs state the matching rules.

use std::cmp::Ordering;
use std::ops::ControlFlow;

use serde_json::Value;

use super::filter::{Clause, Condition, ElemMatch, Filter, Pattern};
use super::order::{compare, values_equal, TypeClass};
use super::path::{FieldPath, Reached};

/// Whether `doc` satisfies `filter`.
///
/// Each condition is tested against everything its path reaches (see
/// [`FieldPath::visit`]):
///
/// - **Any element.** A condition holds if it holds for some reached value; a
///   leaf array reaches itself and its elements, so `{"tags": "a"}` and
///   `{"tags": ["a", "b"]}` both match `{"tags": ["a", "b"]}`.
/// - **Equality** uses [`values_equal`]: numbers by value (`1 == 1.0`), objects
///   regardless of field order, no cross-type equality (`1 != true != "1"`).
/// - **Null equality** (`{"f": null}`, `$eq`/`$in` with `null`) also matches
///   when `f` is missing: the path reaches nothing, or some branch of it
///   dead-ends (`{"a": [{"b": 1}, {}]}` matches `{"a.b": null}`), as in MongoDB.
/// - **`$ne` / `$nin`** are exactly the negation of `$eq` / `$in` over all
///   reached values, so they match documents that lack the field, and
///   `{"tags": {"$ne": "a"}}` rejects `{"tags": ["a", "b"]}`.
/// - **Ranges** (`$gt $gte $lt $lte`) only compare with reached values of the
///   operand's JSON type: `{"$gt": 5}` never matches a string, `{"$lt": "m"}`
///   never a number, and a missing field never matches a range (not even
///   `{"$gte": null}`, unlike MongoDB).
/// - **Independent conditions.** Conditions on one field need not hold for the
///   same element: `{"s": {"$gt": 50, "$lt": 90}}` matches `{"s": [10, 100]}`;
///   `$elemMatch` asks for one element satisfying them all.
/// - **`$exists: true`** matches when the path reaches any value (even `null`
///   or `[]`); `$exists: false` when it reaches none.
/// - **`$regex`** matches when some reached string (a value or an array
///   element) contains a match; other types never match.
/// - **`$not`** is exactly the negation of its operator expression (all its
///   conditions together), so it matches documents that lack the field.
/// - **`$size: n`** matches when some reached value (not an array element) is
///   an array of exactly `n` elements.
/// - **`$all: [a, b]`** is `$eq: a` and `$eq: b`, each on its own (so
///   `{"tags": {"$all": ["x", "y"]}}` matches `{"tags": ["y", "z", "x"]}`);
///   `$all: []` matches nothing.
/// - **`$elemMatch`** matches when some reached value (not an array element)
///   is an array with an element satisfying it: an operator object must hold
///   as a whole for that element alone (`{"$gt": 50, "$lt": 90}` rejects
///   `[10, 100]`); a filter must match an element that is an object.
/// - **`$nor`** matches when none of its filters does.
#[must_use]
pub fn matches(filter: &Filter, doc: &Value) -> bool {
    filter
        .clauses
        .iter()
        .all(|clause| clause_matches(clause, doc))
}

fn clause_matches(clause: &Clause, doc: &Value) -> bool {
    match clause {
        Clause::Field(field) => field
            .conditions
            .iter()
            .all(|c| condition_matches(&field.path, c, doc)),
        Clause::And(filters) => filters.iter().all(|f| matches(f, doc)),
        Clause::Or(filters) => filters.iter().any(|f| matches(f, doc)),
        Clause::Nor(filters) => !filters.iter().any(|f| matches(f, doc)),
    }
}

/// Whether one condition on `path` holds for `doc`.
#[must_use]
pub fn condition_matches(path: &FieldPath, condition: &Condition, doc: &Value) -> bool {
    holds(condition, Subject::Path(path, doc))
}

/// What a condition is tested against: a path in a document, or (inside
/// operator-form `$elemMatch`) one array element, which reaches itself and,
/// if it is an array, its elements, and never dead-ends.
#[derive(Clone, Copy)]
enum Subject<'a> {
    Path(&'a FieldPath, &'a Value),
    Element(&'a Value),
}

impl<'a> Subject<'a> {
    fn visit(self, f: &mut impl FnMut(Reached<'a>) -> ControlFlow<()>) -> ControlFlow<()> {
        match self {
            Subject::Path(path, doc) => path.visit(doc, f),
            Subject::Element(value) => {
                f(Reached::Value(value))?;
                if let Value::Array(items) = value {
                    for item in items {
                        f(Reached::Element(item))?;
                    }
                }
                ControlFlow::Continue(())
            }
        }
    }

    /// Whether `pred` holds for some reached value (stops at the first).
    fn any_value(self, mut pred: impl FnMut(&'a Value) -> bool) -> bool {
        self.visit(&mut |r| match r.value() {
            Some(v) if pred(v) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        })
        .is_break()
    }

    /// Whether `pred` holds for some whole reached value (array elements
    /// skipped): `$size` and `$elemMatch` look at arrays, not into them.
    fn any_whole_value(self, mut pred: impl FnMut(&'a Value) -> bool) -> bool {
        self.visit(&mut |r| match r {
            Reached::Value(v) if pred(v) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        })
        .is_break()
    }
}

fn holds(condition: &Condition, at: Subject<'_>) -> bool {
    match condition {
        Condition::Eq(v) => eq_matches(at, v),
        Condition::Ne(v) => !eq_matches(at, v),
        Condition::In(vs) => in_matches(at, vs),
        Condition::Nin(vs) => !in_matches(at, vs),
        Condition::Gt(v) => range_matches(at, v, |o| o == Ordering::Greater),
        Condition::Gte(v) => range_matches(at, v, |o| o != Ordering::Less),
        Condition::Lt(v) => range_matches(at, v, |o| o == Ordering::Less),
        Condition::Lte(v) => range_matches(at, v, |o| o != Ordering::Greater),
        Condition::Exists(want) => at.any_value(|_| true) == *want,
        Condition::Regex(pattern) => regex_matches(at, pattern),
        Condition::Not(conditions) => !conditions.iter().all(|c| holds(c, at)),
        Condition::Size(n) => {
            at.any_whole_value(|v| matches!(v, Value::Array(items) if items.len() as u64 == *n))
        }
        Condition::All(vs) => !vs.is_empty() && vs.iter().all(|v| eq_matches(at, v)),
        Condition::ElemMatch(spec) => at.any_whole_value(|v| match v {
            Value::Array(items) => items.iter().any(|item| element_matches(spec, item)),
            _ => false,
        }),
    }
}

/// Whether one array element satisfies an `$elemMatch` (also `$pull`'s condition).
pub(crate) fn element_matches(spec: &ElemMatch, element: &Value) -> bool {
    match spec {
        ElemMatch::Filter(filter) => element.is_object() && matches(filter, element),
        ElemMatch::Conditions(conditions) => conditions
            .iter()
            .all(|c| holds(c, Subject::Element(element))),
    }
}

fn regex_matches(at: Subject<'_>, pattern: &Pattern) -> bool {
    at.any_value(|v| matches!(v, Value::String(s) if pattern.is_match(s)))
}

fn eq_matches(at: Subject<'_>, operand: &Value) -> bool {
    if operand.is_null() {
        null_matches(at)
    } else {
        at.any_value(|v| values_equal(v, operand))
    }
}

/// `$in` operands are sorted and deduplicated by the parser, so membership is
/// a binary search.
fn in_matches(at: Subject<'_>, operands: &[Value]) -> bool {
    // null sorts first, so it can only be the first operand.
    if operands.first().is_some_and(Value::is_null) && null_matches(at) {
        return true;
    }
    at.any_value(|v| operands.binary_search_by(|o| compare(o, v)).is_ok())
}

/// Null equality: some reached value is null, some branch dead-ends, or the
/// path reaches nothing at all.
fn null_matches(at: Subject<'_>) -> bool {
    let mut reached_any = false;
    let found = at.visit(&mut |r: Reached<'_>| match r.value() {
        None | Some(Value::Null) => ControlFlow::Break(()),
        Some(_) => {
            reached_any = true;
            ControlFlow::Continue(())
        }
    });
    found.is_break() || !reached_any
}

fn range_matches(at: Subject<'_>, operand: &Value, accept: impl Fn(Ordering) -> bool) -> bool {
    let class = TypeClass::of(operand);
    at.any_value(|v| TypeClass::of(v) == class && accept(compare(v, operand)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::test_support::{random_filter, random_object, Rng};
    use serde_json::json;

    fn m(filter: Value, doc: Value) -> bool {
        matches(&Filter::parse(&filter).unwrap(), &doc)
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(m(json!({}), json!({})));
        assert!(m(json!({}), json!({"a": 1})));
    }

    #[test]
    fn equality_and_eq() {
        let doc = json!({"role": "admin", "n": 1, "o": {"x": 1, "y": [2]}});
        assert!(m(json!({"role": "admin"}), doc.clone()));
        assert!(m(json!({"role": {"$eq": "admin"}}), doc.clone()));
        assert!(!m(json!({"role": "user"}), doc.clone()));
        assert!(m(json!({"role": "admin", "n": 1}), doc.clone()));
        assert!(!m(json!({"role": "admin", "n": 2}), doc.clone()));
        assert!(
            m(json!({"o": {"y": [2], "x": 1.0}}), doc.clone()),
            "objects: any field order"
        );
        assert!(
            !m(json!({"o": {"x": 1}}), doc.clone()),
            "whole-object equality"
        );
        assert!(m(json!({"o.y": 2}), doc.clone()));
        assert!(!m(json!({"nope": "admin"}), doc));
    }

    #[test]
    fn mixed_int_float_and_big_numbers() {
        assert!(m(json!({"n": 1}), json!({"n": 1.0})));
        assert!(m(json!({"n": 1.0}), json!({"n": 1})));
        assert!(m(json!({"n": {"$in": [2, 1.0]}}), json!({"n": 1})));
        assert!(m(json!({"n": 0}), json!({"n": -0.0})));
        let big = json!({"n": u64::MAX});
        assert!(
            !m(json!({"n": 1.844_674_407_370_955_2e19}), big.clone()),
            "u64::MAX != 2^64"
        );
        assert!(m(
            json!({"n": {"$lt": 1.844_674_407_370_955_2e19}}),
            big.clone()
        ));
        assert!(m(
            json!({"n": {"$gt": 1.844_674_407_370_954_8e19}}),
            big.clone()
        ));
        assert!(m(json!({"n": u64::MAX}), big));
        assert!(!m(
            json!({"n": 9_007_199_254_740_992.0}),
            json!({"n": 9_007_199_254_740_993_u64})
        ));
    }

    #[test]
    fn no_cross_type_equality() {
        assert!(!m(json!({"n": 1}), json!({"n": true})));
        assert!(!m(json!({"n": 1}), json!({"n": "1"})));
        assert!(!m(json!({"n": 0}), json!({"n": false})));
        assert!(!m(json!({"n": 0}), json!({"n": null})));
    }

    #[test]
    fn array_fields_match_any_element_or_whole() {
        let doc = json!({"tags": ["red", "blue"], "items": [{"sku": 1}, {"sku": 2}]});
        assert!(m(json!({"tags": "red"}), doc.clone()));
        assert!(m(json!({"tags": ["red", "blue"]}), doc.clone()));
        assert!(
            !m(json!({"tags": ["blue", "red"]}), doc.clone()),
            "array order matters"
        );
        assert!(!m(json!({"tags": "green"}), doc.clone()));
        assert!(m(json!({"tags": {"$in": ["green", "blue"]}}), doc.clone()));
        assert!(m(json!({"items.sku": 2}), doc.clone()));
        assert!(m(json!({"items.sku": {"$gt": 1}}), doc.clone()));
        assert!(!m(json!({"items.sku": {"$gt": 2}}), doc.clone()));
        assert!(m(json!({"tags.0": "red"}), doc.clone()));
        assert!(!m(json!({"tags.1": "red"}), doc.clone()));
        assert!(m(json!({"items.1.sku": 2}), doc));
        // Nested arrays are not searched implicitly.
        assert!(!m(json!({"t": 1}), json!({"t": [[1]]})));
        assert!(m(json!({"t": [1]}), json!({"t": [[1]]})));
    }

    #[test]
    fn each_condition_may_hold_on_a_different_element() {
        let doc = json!({"score": [10, 100]});
        assert!(m(json!({"score": {"$gt": 50, "$lt": 90}}), doc.clone()));
        assert!(!m(
            json!({"score": {"$gt": 50, "$lt": 90}}),
            json!({"score": 100})
        ));
    }

    #[test]
    fn ne_and_nin_negate_over_all_reached_values() {
        let doc = json!({"tags": ["a", "b"], "n": 1});
        assert!(!m(json!({"tags": {"$ne": "a"}}), doc.clone()));
        assert!(m(json!({"tags": {"$ne": "c"}}), doc.clone()));
        assert!(!m(json!({"tags": {"$nin": ["c", "b"]}}), doc.clone()));
        assert!(m(json!({"tags": {"$nin": ["c", "d"]}}), doc.clone()));
        assert!(m(json!({"tags": {"$nin": []}}), doc.clone()));
        assert!(!m(json!({"tags": {"$in": []}}), doc.clone()));
        assert!(!m(json!({"n": {"$ne": 1.0}}), doc));
    }

    #[test]
    fn ne_and_nin_match_missing_fields() {
        assert!(m(json!({"role": {"$ne": "admin"}}), json!({})));
        assert!(m(json!({"role": {"$nin": ["admin"]}}), json!({"x": 1})));
        assert!(m(json!({"a.b": {"$ne": 1}}), json!({"a": 5})));
        assert!(
            !m(json!({"role": {"$ne": null}}), json!({})),
            "$ne null needs the field"
        );
        assert!(m(json!({"role": {"$ne": null}}), json!({"role": 0})));
        assert!(!m(json!({"role": {"$ne": null}}), json!({"role": null})));
    }

    #[test]
    fn null_equality_matches_missing() {
        assert!(m(json!({"a": null}), json!({})));
        assert!(m(json!({"a": null}), json!({"a": null})));
        assert!(m(json!({"a": {"$eq": null}}), json!({"b": 1})));
        assert!(m(json!({"a": {"$in": [null, 5]}}), json!({})));
        assert!(m(json!({"a": {"$in": [null, 5]}}), json!({"a": 5})));
        assert!(!m(json!({"a": {"$in": [null, 5]}}), json!({"a": 6})));
        assert!(!m(json!({"a": {"$nin": [null]}}), json!({})));
        assert!(!m(json!({"a": null}), json!({"a": 0})));
        assert!(!m(json!({"a": null}), json!({"a": []})));
        assert!(m(json!({"a": null}), json!({"a": [1, null]})));
        // Dead-end branches count as missing.
        assert!(m(json!({"a.b": null}), json!({"a": 3})));
        assert!(m(json!({"a.b": null}), json!({"a": [{"b": 1}, {}]})));
        assert!(!m(json!({"a.b": null}), json!({"a": [{"b": 1}, {"b": 2}]})));
        assert!(m(json!({"a.b": null}), json!({"a": []})), "reaches nothing");
        assert!(m(json!({"a.5": null}), json!({"a": [1]})));
    }

    #[test]
    fn ranges_never_cross_types() {
        assert!(!m(json!({"s": {"$gt": 5}}), json!({"s": "zzz"})));
        assert!(!m(json!({"s": {"$lt": "m"}}), json!({"s": 1})));
        assert!(!m(json!({"s": {"$gte": 0}}), json!({"s": true})));
        assert!(!m(json!({"s": {"$lte": "z"}}), json!({"s": null})));
        assert!(
            !m(json!({"s": {"$gte": null}}), json!({})),
            "missing never in range"
        );
        assert!(m(json!({"s": {"$gte": null}}), json!({"s": null})));
        assert!(!m(json!({"s": {"$gt": null}}), json!({"s": null})));
        assert!(m(json!({"s": {"$gt": 5}}), json!({"s": ["zzz", 6]})));
        assert!(m(json!({"s": {"$lt": "m"}}), json!({"s": "abc"})));
        assert!(m(json!({"s": {"$gt": false}}), json!({"s": true})));
        assert!(
            m(json!({"s": {"$gt": [1]}}), json!({"s": [1, 0]})),
            "array vs array"
        );
        assert!(m(json!({"s": {"$gte": {"a": 1}}}), json!({"s": {"a": 2}})));
    }

    #[test]
    fn every_range_operator_at_its_boundary() {
        let doc = json!({"x": 5});
        for (op, below, at, above) in [
            ("$gt", true, false, false),
            ("$gte", true, true, false),
            ("$lt", false, false, true),
            ("$lte", false, true, true),
        ] {
            assert_eq!(m(json!({"x": {op: 4}}), doc.clone()), below, "{op} 4");
            assert_eq!(m(json!({"x": {op: 5.0}}), doc.clone()), at, "{op} 5.0");
            assert_eq!(m(json!({"x": {op: 6}}), doc.clone()), above, "{op} 6");
        }
    }

    #[test]
    fn exists() {
        assert!(m(json!({"a": {"$exists": true}}), json!({"a": null})));
        assert!(m(json!({"a": {"$exists": true}}), json!({"a": []})));
        assert!(!m(json!({"a": {"$exists": true}}), json!({})));
        assert!(m(json!({"a": {"$exists": false}}), json!({})));
        assert!(!m(json!({"a": {"$exists": false}}), json!({"a": 0})));
        assert!(m(
            json!({"a.b": {"$exists": true}}),
            json!({"a": [{}, {"b": 1}]})
        ));
        assert!(m(json!({"a.b": {"$exists": false}}), json!({"a": [{}, 1]})));
        assert!(m(
            json!({"a.b": {"$exists": false}}),
            json!({"a": {"c": 1}})
        ));
        assert!(!m(json!({"a.0": {"$exists": false}}), json!({"a": [0]})));
    }

    #[test]
    fn and_or() {
        let doc = json!({"a": 1, "b": 2});
        assert!(m(json!({"$or": [{"a": 2}, {"b": 2}]}), doc.clone()));
        assert!(!m(json!({"$or": [{"a": 2}, {"b": 3}]}), doc.clone()));
        assert!(m(
            json!({"$and": [{"a": 1}, {"b": {"$gte": 2}}]}),
            doc.clone()
        ));
        assert!(!m(
            json!({"$and": [{"a": 1}, {"b": {"$gt": 2}}]}),
            doc.clone()
        ));
        assert!(m(
            json!({"a": 1, "$or": [{"b": 5}, {"$and": [{"b": 2}, {"c": null}]}]}),
            doc.clone()
        ));
        assert!(!m(json!({"a": 2, "$or": [{"b": 2}]}), doc));
    }

    #[test]
    fn nested_paths() {
        let doc = json!({"address": {"city": "Oslo", "geo": {"lat": 59.9}}});
        assert!(m(json!({"address.city": "Oslo"}), doc.clone()));
        assert!(m(json!({"address.geo.lat": {"$gt": 59}}), doc.clone()));
        assert!(!m(json!({"address.geo.lat": {"$gt": 60}}), doc.clone()));
        assert!(m(json!({"address.zip": {"$exists": false}}), doc));
    }

    #[test]
    fn regex() {
        let doc = json!({"name": "Alice", "tags": ["x", "beta"], "n": 5});
        assert!(m(json!({"name": {"$regex": "^Al"}}), doc.clone()));
        assert!(
            m(json!({"name": {"$regex": "lic"}}), doc.clone()),
            "unanchored"
        );
        assert!(!m(json!({"name": {"$regex": "^al"}}), doc.clone()));
        assert!(m(
            json!({"name": {"$regex": "^al", "$options": "i"}}),
            doc.clone()
        ));
        assert!(
            m(json!({"tags": {"$regex": "^b"}}), doc.clone()),
            "elements"
        );
        assert!(
            !m(json!({"n": {"$regex": "5"}}), doc.clone()),
            "strings only"
        );
        assert!(!m(json!({"nope": {"$regex": ""}}), doc));
    }

    #[test]
    fn not_negates_the_whole_expression() {
        let doc = json!({"n": 5, "tags": ["a", "b"]});
        assert!(!m(json!({"n": {"$not": {"$gt": 4}}}), doc.clone()));
        assert!(m(json!({"n": {"$not": {"$gt": 5}}}), doc.clone()));
        assert!(m(json!({"n": {"$not": {"$gt": 1, "$lt": 5}}}), doc.clone()));
        assert!(
            m(json!({"nope": {"$not": {"$gt": 1}}}), doc.clone()),
            "missing"
        );
        assert!(!m(json!({"tags": {"$not": {"$eq": "a"}}}), doc.clone()));
        assert!(m(json!({"tags": {"$not": {"$regex": "^c"}}}), doc));
    }

    #[test]
    fn size_counts_whole_arrays_only() {
        let doc = json!({"t": [1, [2, 3]], "items": [{"t": [1]}, {"t": [1, 2]}], "s": "ab"});
        assert!(m(json!({"t": {"$size": 2}}), doc.clone()));
        assert!(
            !m(json!({"t": {"$size": 1}}), doc.clone()),
            "not the inner array's elements"
        );
        assert!(m(json!({"items.t": {"$size": 1}}), doc.clone()));
        assert!(m(json!({"items.t": {"$size": 2}}), doc.clone()));
        assert!(!m(json!({"s": {"$size": 2}}), doc.clone()));
        assert!(!m(json!({"nope": {"$size": 0}}), doc));
        assert!(m(json!({"e": {"$size": 0}}), json!({"e": []})));
    }

    #[test]
    fn all_needs_every_value() {
        let doc = json!({"tags": ["y", "z", "x"], "one": "x"});
        assert!(m(json!({"tags": {"$all": ["x", "y"]}}), doc.clone()));
        assert!(!m(json!({"tags": {"$all": ["x", "w"]}}), doc.clone()));
        assert!(
            !m(json!({"tags": {"$all": []}}), doc.clone()),
            "empty: nothing"
        );
        assert!(m(json!({"one": {"$all": ["x"]}}), doc.clone()));
        assert!(m(json!({"tags": {"$all": [["y", "z", "x"]]}}), doc.clone()));
        assert!(m(json!({"nope": {"$all": [null]}}), doc));
    }

    #[test]
    fn elem_match_holds_on_one_element() {
        let doc = json!({"s": [10, 100], "items": [{"sku": 1, "qty": 1}, {"sku": 2, "qty": 5}]});
        assert!(!m(
            json!({"s": {"$elemMatch": {"$gt": 50, "$lt": 90}}}),
            doc.clone()
        ));
        assert!(m(
            json!({"s": {"$elemMatch": {"$gt": 50, "$lt": 190}}}),
            doc.clone()
        ));
        assert!(m(
            json!({"items": {"$elemMatch": {"sku": 2, "qty": {"$gt": 3}}}}),
            doc.clone()
        ));
        assert!(
            !m(
                json!({"items": {"$elemMatch": {"sku": 1, "qty": {"$gt": 3}}}}),
                doc.clone()
            ),
            "both on the same element"
        );
        assert!(
            m(json!({"items": {"sku": 1, "qty": 1}}), doc.clone()),
            "whole-object equality for contrast"
        );
        assert!(
            !m(json!({"s": {"$elemMatch": {"$gt": 5}}}), json!({"s": 10})),
            "arrays only"
        );
        assert!(
            !m(
                json!({"s": {"$elemMatch": {"a": null}}}),
                json!({"s": [1, 2]})
            ),
            "objects only"
        );
        assert!(m(
            json!({"s": {"$elemMatch": {"a": null}}}),
            json!({"s": [1, {}]})
        ));
        assert!(m(
            json!({"s": {"$elemMatch": {"$not": {"$gt": 5}}}}),
            json!({"s": [10, 3]})
        ));
        assert!(m(
            json!({"a.s": {"$elemMatch": {"$regex": "^q"}}}),
            json!({"a": [{"s": ["x"]}, {"s": ["y", "qq"]}]})
        ));
        assert!(
            m(
                json!({"s": {"$elemMatch": {"$eq": 1}}}),
                json!({"s": [[1]]})
            ),
            "an element that is an array reaches its own elements"
        );
    }

    #[test]
    fn nor() {
        let doc = json!({"a": 1, "b": 2});
        assert!(m(json!({"$nor": [{"a": 2}, {"b": 3}]}), doc.clone()));
        assert!(!m(json!({"$nor": [{"a": 2}, {"b": 2}]}), doc.clone()));
        assert!(m(json!({"$nor": [{"c": 1}]}), doc));
    }

    // ---- randomized agreement with a naive reference evaluator ----

    /// Reference reach: `None` is a dead-end branch. Written directly from the
    /// rules in `FieldPath::visit`'s docs, without the visitor machinery.
    fn ref_reach(v: &Value, segs: &[&str]) -> Vec<Option<Value>> {
        let Some((seg, rest)) = segs.split_first() else {
            let mut out = vec![Some(v.clone())];
            if let Value::Array(a) = v {
                out.extend(a.iter().cloned().map(Some));
            }
            return out;
        };
        let numeric = !seg.is_empty()
            && seg.bytes().all(|b| b.is_ascii_digit())
            && (*seg == "0" || !seg.starts_with('0'));
        match v {
            Value::Object(m) => m.get(*seg).map_or(vec![None], |c| ref_reach(c, rest)),
            Value::Array(a) if numeric => {
                let i: usize = seg.parse().unwrap();
                a.get(i).map_or(vec![None], |c| ref_reach(c, rest))
            }
            Value::Array(a) => a
                .iter()
                .flat_map(|e| {
                    if e.is_object() {
                        ref_reach(e, segs)
                    } else {
                        vec![None]
                    }
                })
                .collect(),
            _ => vec![None],
        }
    }

    /// Every generated number is a multiple of 1/2 below 2^65 in magnitude:
    /// compare them exactly as integers `2x`.
    fn twice(n: &serde_json::Number) -> i128 {
        if let Some(i) = n.as_i64() {
            return 2 * i128::from(i);
        }
        if let Some(u) = n.as_u64() {
            return 2 * i128::from(u);
        }
        let f = n.as_f64().unwrap() * 2.0;
        assert_eq!(f.fract(), 0.0, "generator made a non-half float");
        f as i128
    }

    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }

    fn ref_cmp(a: &Value, b: &Value) -> Ordering {
        match (a, b) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            (Value::Number(x), Value::Number(y)) => twice(x).cmp(&twice(y)),
            (Value::String(x), Value::String(y)) => x.cmp(y),
            (Value::Array(x), Value::Array(y)) => {
                for (p, q) in x.iter().zip(y) {
                    match ref_cmp(p, q) {
                        Ordering::Equal => {}
                        o => return o,
                    }
                }
                x.len().cmp(&y.len())
            }
            (Value::Object(x), Value::Object(y)) => {
                let mut xs: Vec<_> = x.iter().collect();
                let mut ys: Vec<_> = y.iter().collect();
                xs.sort_by(|p, q| p.0.cmp(q.0));
                ys.sort_by(|p, q| p.0.cmp(q.0));
                for ((ka, va), (kb, vb)) in xs.iter().zip(&ys) {
                    match ka.cmp(kb).then_with(|| ref_cmp(va, vb)) {
                        Ordering::Equal => {}
                        o => return o,
                    }
                }
                xs.len().cmp(&ys.len())
            }
            _ => rank(a).cmp(&rank(b)),
        }
    }

    fn ref_eq(reach: &[Option<Value>], operand: &Value) -> bool {
        if operand.is_null() {
            reach.iter().all(Option::is_none)
                || reach.iter().any(|r| matches!(r, None | Some(Value::Null)))
        } else {
            reach
                .iter()
                .flatten()
                .any(|r| ref_cmp(r, operand) == Ordering::Equal)
        }
    }

    fn ref_range(reach: &[Option<Value>], operand: &Value, ok: &[Ordering]) -> bool {
        reach
            .iter()
            .flatten()
            .any(|r| rank(r) == rank(operand) && ok.contains(&ref_cmp(r, operand)))
    }

    fn ref_matches(filter: &Value, doc: &Value) -> bool {
        filter
            .as_object()
            .unwrap()
            .iter()
            .all(|(key, operand)| match key.as_str() {
                "$and" => operand
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|f| ref_matches(f, doc)),
                "$or" => operand
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| ref_matches(f, doc)),
                path => {
                    let segs: Vec<&str> = path.split('.').collect();
                    let reach = ref_reach(doc, &segs);
                    let ops = match operand {
                        Value::Object(o) if o.keys().any(|k| k.starts_with('$')) => o.clone(),
                        literal => {
                            let mut o = serde_json::Map::new();
                            o.insert("$eq".into(), literal.clone());
                            o
                        }
                    };
                    ops.iter().all(|(op, arg)| {
                        use Ordering::{Equal, Greater, Less};
                        let list = || arg.as_array().unwrap().clone();
                        match op.as_str() {
                            "$eq" => ref_eq(&reach, arg),
                            "$ne" => !ref_eq(&reach, arg),
                            "$in" => list().iter().any(|a| ref_eq(&reach, a)),
                            "$nin" => !list().iter().any(|a| ref_eq(&reach, a)),
                            "$gt" => ref_range(&reach, arg, &[Greater]),
                            "$gte" => ref_range(&reach, arg, &[Greater, Equal]),
                            "$lt" => ref_range(&reach, arg, &[Less]),
                            "$lte" => ref_range(&reach, arg, &[Less, Equal]),
                            "$exists" => {
                                reach.iter().any(Option::is_some) == arg.as_bool().unwrap()
                            }
                            other => panic!("generator made {other}"),
                        }
                    })
                }
            })
    }

    #[test]
    fn random_filters_agree_with_reference() {
        let mut rng = Rng(2024);
        let docs: Vec<Value> = (0..200).map(|_| random_object(&mut rng, 3)).collect();
        let (mut hits, mut total) = (0u32, 0u32);
        for _ in 0..3000 {
            let filter = random_filter(&mut rng, 2);
            let parsed = Filter::parse(&filter).unwrap();
            for doc in &docs {
                let got = matches(&parsed, doc);
                assert_eq!(got, ref_matches(&filter, doc), "filter {filter} on {doc}");
                hits += u32::from(got);
                total += 1;
            }
        }
        // The generator must exercise both outcomes substantially.
        assert!(
            hits > total / 20 && hits < total - total / 20,
            "{hits}/{total}"
        );
    }
}
