//! Choosing how to answer a filter: one secondary index probe, or a full scan.
//!
//! Contract with the index layer ([`index_entries`]): an index on a path holds
//! each document's encoded reached values. Equality, `$in` and single-range
//! probes are then exact, so [`Plan::residual`] can say when to skip re-checks.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::ops::Bound;

use serde_json::{json, Map, Value};

use super::filter::{Clause, Condition, Filter};
use super::order::{compare, encode_key, key_bytes, TypeClass};
use super::path::FieldPath;

/// What the planner needs to know about one existing index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexInfo<'a> {
    /// The indexed path as written (`"address.city"`).
    pub field: &'a str,
    /// Whether some indexed document reaches more than one value at this path
    /// (see [`reaches_many`]). Two range conditions on a field can only be
    /// merged into one probe when this is `false`; when unsure, say `true`.
    pub multikey: bool,
}

impl<'a> IndexInfo<'a> {
    /// An index on `field`, conservatively assumed multikey.
    #[must_use]
    pub fn new(field: &'a str) -> IndexInfo<'a> {
        IndexInfo {
            field,
            multikey: true,
        }
    }
}

/// How the chosen index is probed.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanKind {
    /// No index: evaluate the filter on every document.
    Scan,
    /// Documents whose field reaches this (non-null) value.
    Equality(Value),
    /// Documents whose field reaches one of these (non-null, sorted, distinct).
    In(Vec<Value>),
    /// Documents whose field reaches a value between the bounds. Both bounds
    /// are of one JSON type and at least one is set; `Unbounded` means "to
    /// that end of the type" (ranges never cross types).
    Range {
        /// Lower bound; `Included`/`Excluded` give the inclusive flag.
        lower: Bound<Value>,
        /// Upper bound; `Included`/`Excluded` give the inclusive flag.
        upper: Bound<Value>,
    },
}

/// What to look up in an index keyed by [`encode_key`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexProbe {
    /// Exactly these keys (sorted, distinct; possibly none).
    Keys(Vec<Vec<u8>>),
    /// All keys in this range. Never empty or inverted, so it is safe to pass
    /// to `BTreeMap::range` (which panics on those).
    Range(Bound<Vec<u8>>, Bound<Vec<u8>>),
}

/// The plan for one filter, as `explain()` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The indexed field used, or `None` for a scan.
    pub index: Option<String>,
    /// How the index is probed.
    pub kind: PlanKind,
    /// Whether each candidate must still be checked with the whole filter.
    /// `false` only when the probe alone is exactly the answer.
    pub residual: bool,
    /// Candidates the probe is expected to produce (from the caller's index
    /// statistics), or the number of documents for a scan.
    pub estimated_rows: u64,
}

impl PlanKind {
    /// The index lookup for this plan; `None` for a scan.
    #[must_use]
    pub fn probe(&self) -> Option<IndexProbe> {
        match self {
            PlanKind::Scan => None,
            PlanKind::Equality(v) => Some(IndexProbe::Keys(vec![key_bytes(v)])),
            PlanKind::In(vs) => {
                let keys: BTreeSet<Vec<u8>> = vs.iter().map(key_bytes).collect();
                Some(IndexProbe::Keys(keys.into_iter().collect()))
            }
            PlanKind::Range { lower, upper } => {
                let Some(class) = bound_value(lower).or(bound_value(upper)).map(TypeClass::of)
                else {
                    return Some(IndexProbe::Keys(Vec::new()));
                };
                let lo = match lower {
                    Bound::Included(v) => Bound::Included(key_bytes(v)),
                    Bound::Excluded(v) => Bound::Excluded(key_bytes(v)),
                    Bound::Unbounded => Bound::Included(vec![class.tag()]),
                };
                let hi = match upper {
                    Bound::Included(v) => Bound::Included(key_bytes(v)),
                    Bound::Excluded(v) => Bound::Excluded(key_bytes(v)),
                    Bound::Unbounded => Bound::Excluded(vec![class.tag().saturating_add(1)]),
                };
                if range_is_empty(&lo, &hi) {
                    Some(IndexProbe::Keys(Vec::new()))
                } else {
                    Some(IndexProbe::Range(lo, hi))
                }
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            PlanKind::Scan => "scan",
            PlanKind::Equality(_) => "equality",
            PlanKind::In(_) => "in",
            PlanKind::Range { .. } => "range",
        }
    }

    /// Preference among index plans: equality, then `$in`, then range.
    fn rank(&self) -> u8 {
        match self {
            PlanKind::Equality(_) => 0,
            PlanKind::In(_) => 1,
            PlanKind::Range { .. } => 2,
            PlanKind::Scan => 3,
        }
    }
}

impl Plan {
    /// Whether this plan reads every document.
    #[must_use]
    pub fn is_scan(&self) -> bool {
        self.index.is_none()
    }

    /// The `explain()` dict: `index` (field or null), `scan` (bool),
    /// `estimated_rows`, `kind` (`"equality"`, `"in"`, `"range"`, `"scan"`),
    /// `residual` (bool), and the probe's `value`, `values` or `range`
    /// (`{"lower", "lower_inclusive", "upper", "upper_inclusive"}`, null for an
    /// open end).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert(
            "index".into(),
            self.index.clone().map_or(Value::Null, Value::String),
        );
        out.insert("scan".into(), Value::Bool(self.is_scan()));
        out.insert("estimated_rows".into(), json!(self.estimated_rows));
        out.insert("kind".into(), json!(self.kind.name()));
        out.insert("residual".into(), Value::Bool(self.residual));
        match &self.kind {
            PlanKind::Scan => {}
            PlanKind::Equality(v) => {
                out.insert("value".into(), v.clone());
            }
            PlanKind::In(vs) => {
                out.insert("values".into(), Value::Array(vs.clone()));
            }
            PlanKind::Range { lower, upper } => {
                out.insert(
                    "range".into(),
                    json!({
                        "lower": bound_value(lower).cloned(),
                        "lower_inclusive": matches!(lower, Bound::Included(_)),
                        "upper": bound_value(upper).cloned(),
                        "upper_inclusive": matches!(upper, Bound::Included(_)),
                    }),
                );
            }
        }
        Value::Object(out)
    }
}

/// The encoded keys an index on `path` holds for `doc`: one per distinct value
/// the path reaches (see [`FieldPath::visit`]), none if it reaches nothing.
///
/// Storing exactly this set is what makes [`PlanKind::probe`] exact: a
/// document reaches a value equal to `v` (or in a range) iff its entries
/// contain `encode(v)` (or a key in the encoded range). Null is indexed like
/// any value, but missing fields are not, so null equality never uses an index.
#[must_use]
pub fn index_entries(path: &FieldPath, doc: &Value) -> BTreeSet<Vec<u8>> {
    path.values(doc)
        .into_iter()
        .map(|v| {
            let mut key = Vec::new();
            encode_key(v, &mut key);
            key
        })
        .collect()
}

/// Whether `doc` reaches more than one value at `path` (an array on the way
/// or at the end, `[]` excepted). An index is multikey once any indexed
/// document does; see [`IndexInfo::multikey`].
#[must_use]
pub fn reaches_many(path: &FieldPath, doc: &Value) -> bool {
    path.values(doc).len() > 1
}

/// A usable index probe for one field and what it accounts for.
struct Candidate<'a> {
    field: &'a str,
    kind: PlanKind,
    /// How many of the filter's top-level conditions the probe answers exactly.
    consumed: usize,
}

/// Choose a plan for `filter` given the existing `indexes`.
///
/// Only conditions in the filter's top-level AND (its fields, and `$and`
/// members recursively) are considered; a `$or` is never answered from an
/// index (it stays in the residual filter). Usable conditions are `$eq` and
/// `$in` without `null` (missing fields are not indexed) and the range
/// operators; `$ne`, `$nin` and `$exists` are not. Preference: equality,
/// then `$in`, then range; among equals the smallest `estimate(field, kind)`,
/// then the probe answering more conditions (a merged range), then the
/// earliest in `indexes`, then in the filter. With no usable condition: a scan, estimated
/// at `total_rows`.
///
/// On a multikey index each range condition is its own candidate (merging
/// `$gt`/`$lt` bounds would lose `[10, 100]` for `{"$gt": 50, "$lt": 90}`);
/// on a single-valued index range conditions of one type merge into one.
pub fn choose_plan(
    filter: &Filter,
    indexes: &[IndexInfo<'_>],
    total_rows: u64,
    estimate: impl Fn(&str, &PlanKind) -> u64,
) -> Plan {
    let mut conditions: Vec<(&FieldPath, &Condition)> = Vec::new();
    let mut has_or = false;
    collect_conjuncts(filter, &mut conditions, &mut has_or);

    let mut best: Option<(Candidate<'_>, u64)> = None;
    for index in indexes {
        for candidate in candidates(index, &conditions) {
            let rows = estimate(candidate.field, &candidate.kind);
            // Lower rank, then fewer rows, then more conditions answered.
            let key = (candidate.kind.rank(), rows, Reverse(candidate.consumed));
            let better = best
                .as_ref()
                .is_none_or(|(b, b_rows)| key < (b.kind.rank(), *b_rows, Reverse(b.consumed)));
            if better {
                best = Some((candidate, rows));
            }
        }
    }
    match best {
        Some((c, rows)) => Plan {
            index: Some(c.field.to_owned()),
            residual: has_or || c.consumed != conditions.len(),
            kind: c.kind,
            estimated_rows: rows,
        },
        None => Plan {
            index: None,
            kind: PlanKind::Scan,
            residual: has_or || !conditions.is_empty(),
            estimated_rows: total_rows,
        },
    }
}

fn collect_conjuncts<'f>(
    filter: &'f Filter,
    out: &mut Vec<(&'f FieldPath, &'f Condition)>,
    has_or: &mut bool,
) {
    for clause in &filter.clauses {
        match clause {
            Clause::Field(field) => out.extend(field.conditions.iter().map(|c| (&field.path, c))),
            Clause::And(filters) => {
                for f in filters {
                    collect_conjuncts(f, out, has_or);
                }
            }
            // `$nor` is not answered from an index either: both stay residual.
            Clause::Or(_) | Clause::Nor(_) => *has_or = true,
        }
    }
}

fn candidates<'a>(
    index: &IndexInfo<'a>,
    conditions: &[(&FieldPath, &Condition)],
) -> Vec<Candidate<'a>> {
    let mut out = Vec::new();
    let mut ranges: Vec<(Bound<&Value>, Bound<&Value>)> = Vec::new();
    for (path, condition) in conditions {
        if path.as_str() != index.field {
            continue;
        }
        let kind = match condition {
            Condition::Eq(v) if !v.is_null() => PlanKind::Equality(v.clone()),
            Condition::In(vs) if !vs.iter().any(Value::is_null) => PlanKind::In(vs.clone()),
            Condition::Gt(v) => range_kind(&mut ranges, Bound::Excluded(v), Bound::Unbounded),
            Condition::Gte(v) => range_kind(&mut ranges, Bound::Included(v), Bound::Unbounded),
            Condition::Lt(v) => range_kind(&mut ranges, Bound::Unbounded, Bound::Excluded(v)),
            Condition::Lte(v) => range_kind(&mut ranges, Bound::Unbounded, Bound::Included(v)),
            _ => continue,
        };
        out.push(Candidate {
            field: index.field,
            kind,
            consumed: 1,
        });
    }
    if !index.multikey && ranges.len() > 1 {
        if let Some(kind) = merge_ranges(&ranges) {
            out.push(Candidate {
                field: index.field,
                kind,
                consumed: ranges.len(),
            });
        }
    }
    out
}

fn range_kind<'v>(
    ranges: &mut Vec<(Bound<&'v Value>, Bound<&'v Value>)>,
    lower: Bound<&'v Value>,
    upper: Bound<&'v Value>,
) -> PlanKind {
    ranges.push((lower, upper));
    PlanKind::Range {
        lower: lower.cloned(),
        upper: upper.cloned(),
    }
}

/// The intersection of single-bound ranges, if all their operands share one
/// JSON type (otherwise a single-valued field cannot satisfy them all, but we
/// leave that to the residual filter rather than special-case it).
fn merge_ranges(ranges: &[(Bound<&Value>, Bound<&Value>)]) -> Option<PlanKind> {
    let mut class = None;
    let mut lower: Bound<&Value> = Bound::Unbounded;
    let mut upper: Bound<&Value> = Bound::Unbounded;
    for (lo, hi) in ranges {
        for v in [bound_value(lo).copied(), bound_value(hi).copied()]
            .into_iter()
            .flatten()
        {
            let c = TypeClass::of(v);
            if *class.get_or_insert(c) != c {
                return None;
            }
        }
        lower = tighter(lower, *lo, std::cmp::Ordering::Greater);
        upper = tighter(upper, *hi, std::cmp::Ordering::Less);
    }
    Some(PlanKind::Range {
        lower: lower.cloned(),
        upper: upper.cloned(),
    })
}

/// The tighter of two bounds on the same side: `wins` is the ordering of a
/// value that tightens (`Greater` for lower bounds, `Less` for upper bounds);
/// at equal values an exclusive bound is tighter.
fn tighter<'v>(
    a: Bound<&'v Value>,
    b: Bound<&'v Value>,
    wins: std::cmp::Ordering,
) -> Bound<&'v Value> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (x, y) => {
            let (Some(xv), Some(yv)) = (bound_value(&x).copied(), bound_value(&y).copied()) else {
                return x;
            };
            let o = compare(yv, xv);
            if o == wins || (o == std::cmp::Ordering::Equal && matches!(y, Bound::Excluded(_))) {
                y
            } else {
                x
            }
        }
    }
}

fn bound_value<T>(b: &Bound<T>) -> Option<&T> {
    match b {
        Bound::Included(v) | Bound::Excluded(v) => Some(v),
        Bound::Unbounded => None,
    }
}

fn range_is_empty(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::eval::matches;
    use crate::query::test_support::{random_filter, random_object, Rng, PATHS};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn plan_with(filter: Value, indexes: &[IndexInfo<'_>]) -> Plan {
        choose_plan(
            &Filter::parse(&filter).unwrap(),
            indexes,
            1000,
            |_, kind| match kind {
                PlanKind::Equality(_) => 10,
                PlanKind::In(vs) => 10 * vs.len() as u64,
                _ => 300,
            },
        )
    }

    fn single(field: &str) -> IndexInfo<'_> {
        IndexInfo {
            field,
            multikey: false,
        }
    }

    #[test]
    fn no_index_means_scan() {
        let p = plan_with(json!({"a": 1}), &[]);
        assert_eq!(
            (p.index.as_deref(), &p.kind, p.residual, p.estimated_rows),
            (None, &PlanKind::Scan, true, 1000)
        );
        let p = plan_with(json!({}), &[IndexInfo::new("a")]);
        assert!(p.is_scan());
        assert!(!p.residual, "the empty filter needs no check");
        let p = plan_with(json!({"b": 1}), &[IndexInfo::new("a")]);
        assert!(p.is_scan());
    }

    #[test]
    fn equality_preferred_over_in_over_range() {
        let idx = [
            IndexInfo::new("r"),
            IndexInfo::new("i"),
            IndexInfo::new("e"),
        ];
        let p = plan_with(json!({"r": {"$gt": 1}, "i": {"$in": [1]}, "e": 5}), &idx);
        assert_eq!(p.index.as_deref(), Some("e"));
        assert_eq!(p.kind, PlanKind::Equality(json!(5)));
        assert!(p.residual);
        assert_eq!(p.estimated_rows, 10);
        let p = plan_with(json!({"r": {"$gt": 1}, "i": {"$in": [2, 1, 2]}}), &idx);
        assert_eq!(p.index.as_deref(), Some("i"));
        assert_eq!(p.kind, PlanKind::In(vec![json!(1), json!(2)]));
        assert_eq!(p.estimated_rows, 20);
        let p = plan_with(json!({"r": {"$gte": 1}}), &idx);
        assert_eq!(
            p.kind,
            PlanKind::Range {
                lower: Bound::Included(json!(1)),
                upper: Bound::Unbounded
            }
        );
        assert!(!p.residual, "a lone range is exact");
    }

    #[test]
    fn estimates_break_ties_within_a_kind() {
        let f = Filter::parse(&json!({"a": 1, "b": 2})).unwrap();
        let idx = [IndexInfo::new("a"), IndexInfo::new("b")];
        let p = choose_plan(&f, &idx, 100, |field, _| if field == "b" { 3 } else { 50 });
        assert_eq!(p.index.as_deref(), Some("b"));
        assert_eq!(p.estimated_rows, 3);
        let p = choose_plan(&f, &idx, 100, |_, _| 7);
        assert_eq!(p.index.as_deref(), Some("a"), "first index wins a full tie");
    }

    #[test]
    fn unindexable_conditions_scan() {
        let idx = [IndexInfo::new("a")];
        for f in [
            json!({"a": null}),
            json!({"a": {"$eq": null}}),
            json!({"a": {"$in": [1, null]}}),
            json!({"a": {"$ne": 1}}),
            json!({"a": {"$nin": [1]}}),
            json!({"a": {"$exists": true}}),
            json!({"$or": [{"a": 1}, {"a": 2}]}),
        ] {
            let p = plan_with(f.clone(), &idx);
            assert!(p.is_scan(), "{f}");
            assert!(p.residual);
        }
    }

    #[test]
    fn or_stays_residual_beside_an_indexed_condition() {
        let p = plan_with(
            json!({"a": 1, "$or": [{"b": 1}, {"c": 1}]}),
            &[IndexInfo::new("a")],
        );
        assert_eq!(p.index.as_deref(), Some("a"));
        assert!(p.residual);
    }

    #[test]
    fn and_members_are_top_level() {
        let p = plan_with(
            json!({"$and": [{"x": 1}, {"$and": [{"a": 2}]}]}),
            &[IndexInfo::new("a")],
        );
        assert_eq!(p.kind, PlanKind::Equality(json!(2)));
        assert!(p.residual);
        let p = plan_with(json!({"$and": [{"a": 2}]}), &[IndexInfo::new("a")]);
        assert!(!p.residual);
    }

    #[test]
    fn exact_plans_need_no_residual() {
        let idx = [IndexInfo::new("a")];
        assert!(!plan_with(json!({"a": 1}), &idx).residual);
        assert!(!plan_with(json!({"a": {"$in": [1, "x"]}}), &idx).residual);
        assert!(!plan_with(json!({"a": {"$lt": 1}}), &idx).residual);
        assert!(plan_with(json!({"a": {"$gt": 0, "$lt": 1}}), &idx).residual);
        assert!(plan_with(json!({"a": {"$eq": 1, "$ne": 2}}), &idx).residual);
    }

    #[test]
    fn ranges_merge_only_on_single_valued_indexes() {
        let f = json!({"a": {"$gte": 50, "$lt": 90, "$gt": 10}});
        let multi = plan_with(f.clone(), &[IndexInfo::new("a")]);
        assert!(matches!(multi.kind, PlanKind::Range { .. }));
        assert!(multi.residual);
        let p = plan_with(f, &[single("a")]);
        assert_eq!(
            p.kind,
            PlanKind::Range {
                lower: Bound::Included(json!(50)),
                upper: Bound::Excluded(json!(90))
            }
        );
        assert!(!p.residual);
        // Exclusive wins at equal values.
        let p = plan_with(
            json!({"a": {"$gte": 5, "$gt": 5.0, "$lte": 9, "$lt": 9}}),
            &[single("a")],
        );
        assert_eq!(
            p.kind,
            PlanKind::Range {
                lower: Bound::Excluded(json!(5.0)),
                upper: Bound::Excluded(json!(9))
            }
        );
        // Different types are not merged.
        let p = plan_with(json!({"a": {"$gt": 5, "$lt": "x"}}), &[single("a")]);
        assert!(p.residual);
    }

    #[test]
    fn probes() {
        assert_eq!(PlanKind::Scan.probe(), None);
        assert_eq!(
            PlanKind::Equality(json!(1.0)).probe(),
            Some(IndexProbe::Keys(vec![key_bytes(&json!(1))]))
        );
        let Some(IndexProbe::Keys(keys)) =
            PlanKind::In(vec![json!(1), json!(1.0), json!("a")]).probe()
        else {
            panic!()
        };
        assert_eq!(keys.len(), 2);
        let gt5 = PlanKind::Range {
            lower: Bound::Excluded(json!(5)),
            upper: Bound::Unbounded,
        };
        assert_eq!(
            gt5.probe(),
            Some(IndexProbe::Range(
                Bound::Excluded(key_bytes(&json!(5))),
                Bound::Excluded(vec![TypeClass::Number.tag() + 1])
            ))
        );
        let empty = PlanKind::Range {
            lower: Bound::Excluded(json!(5)),
            upper: Bound::Excluded(json!(5)),
        };
        assert_eq!(empty.probe(), Some(IndexProbe::Keys(vec![])));
        let inverted = PlanKind::Range {
            lower: Bound::Included(json!(6)),
            upper: Bound::Included(json!(5)),
        };
        assert_eq!(inverted.probe(), Some(IndexProbe::Keys(vec![])));
    }

    #[test]
    fn explain_dict() {
        let p = plan_with(json!({"a": {"$gt": 5}}), &[IndexInfo::new("a")]);
        assert_eq!(
            p.to_json(),
            json!({"index": "a", "scan": false, "estimated_rows": 300, "kind": "range", "residual": false,
                   "range": {"lower": 5, "lower_inclusive": false, "upper": null, "upper_inclusive": false}})
        );
        let p = plan_with(json!({"b": 1}), &[]);
        assert_eq!(
            p.to_json(),
            json!({"index": null, "scan": true, "estimated_rows": 1000, "kind": "scan", "residual": true})
        );
        let p = plan_with(json!({"a": 1}), &[IndexInfo::new("a")]);
        assert_eq!(p.to_json()["value"], json!(1));
    }

    #[test]
    fn index_entries_and_multikey() {
        let p = FieldPath::parse("tags").unwrap();
        let doc = json!({"tags": ["a", "a", 1.0]});
        let entries = index_entries(&p, &doc);
        let want: BTreeSet<Vec<u8>> = [json!(["a", "a", 1]), json!("a"), json!(1)]
            .iter()
            .map(key_bytes)
            .collect();
        assert_eq!(entries, want);
        assert!(index_entries(&p, &json!({"x": 1})).is_empty());
        assert!(reaches_many(&p, &doc));
        assert!(!reaches_many(&p, &json!({"tags": []})));
        assert!(!reaches_many(&p, &json!({"tags": "a"})));
    }

    /// An in-memory index built exactly as the contract says, probed per plan.
    struct MemIndex {
        map: BTreeMap<Vec<u8>, BTreeSet<usize>>,
        multikey: bool,
    }

    fn build(path: &str, docs: &[Value]) -> MemIndex {
        let p = FieldPath::parse(path).unwrap();
        let mut map: BTreeMap<Vec<u8>, BTreeSet<usize>> = BTreeMap::new();
        let mut multikey = false;
        for (i, doc) in docs.iter().enumerate() {
            multikey |= reaches_many(&p, doc);
            for key in index_entries(&p, doc) {
                map.entry(key).or_default().insert(i);
            }
        }
        MemIndex { map, multikey }
    }

    fn run(
        plan: &Plan,
        filter: &Filter,
        docs: &[Value],
        indexes: &BTreeMap<&str, MemIndex>,
    ) -> BTreeSet<usize> {
        let candidates: BTreeSet<usize> = match (&plan.index, plan.kind.probe()) {
            (Some(field), Some(probe)) => {
                let index = &indexes[field.as_str()].map;
                match probe {
                    IndexProbe::Keys(keys) => keys
                        .iter()
                        .filter_map(|k| index.get(k))
                        .flatten()
                        .copied()
                        .collect(),
                    IndexProbe::Range(lo, hi) => index
                        .range((lo, hi))
                        .flat_map(|(_, ids)| ids)
                        .copied()
                        .collect(),
                }
            }
            _ => (0..docs.len()).collect(),
        };
        candidates
            .into_iter()
            .filter(|&i| !plan.residual || matches(filter, &docs[i]))
            .collect()
    }

    #[test]
    fn random_plans_return_exactly_the_scan_result() {
        let mut rng = Rng(99);
        let mut docs: Vec<Value> = (0..300).map(|_| random_object(&mut rng, 3)).collect();
        // Some single-valued documents so that merged ranges get exercised.
        docs.extend(
            (0..100).map(|i| json!({"a": (i % 7) as f64 / 2.0, "b": format!("{}", i % 5)})),
        );
        let indexes: BTreeMap<&str, MemIndex> =
            PATHS.iter().map(|p| (*p, build(p, &docs))).collect();
        let single_docs = &docs[300..];
        let single_indexes: BTreeMap<&str, MemIndex> = ["a", "b"]
            .iter()
            .map(|p| (*p, build(p, single_docs)))
            .collect();
        assert!(!single_indexes["a"].multikey);

        let (mut exact, mut indexed) = (0, 0);
        for round in 0..3000 {
            let filter_json = random_filter(&mut rng, 2);
            let filter = Filter::parse(&filter_json).unwrap();
            let (docs, indexes) = if round % 4 == 0 {
                (single_docs, &single_indexes)
            } else {
                (&docs[..], &indexes)
            };
            let want: BTreeSet<usize> = (0..docs.len())
                .filter(|&i| matches(&filter, &docs[i]))
                .collect();
            // Truthful multikey flags; all-conservative flags; a random subset of indexes.
            let truthful: Vec<IndexInfo<'_>> = indexes
                .iter()
                .map(|(f, ix)| IndexInfo {
                    field: f,
                    multikey: ix.multikey,
                })
                .collect();
            let conservative: Vec<IndexInfo<'_>> =
                indexes.keys().map(|f| IndexInfo::new(f)).collect();
            let subset: Vec<IndexInfo<'_>> = truthful
                .iter()
                .copied()
                .filter(|_| rng.below(2) == 0)
                .collect();
            for infos in [&truthful, &conservative, &subset] {
                let plan = choose_plan(&filter, infos, docs.len() as u64, |_, _| 1);
                indexed += usize::from(!plan.is_scan());
                exact += usize::from(!plan.is_scan() && !plan.residual);
                assert_eq!(
                    run(&plan, &filter, docs, indexes),
                    want,
                    "{filter_json} with {plan:?}"
                );
            }
        }
        assert!(
            indexed > 1000 && exact > 300,
            "indexed {indexed}, exact {exact}"
        );
    }
}
