"""``query()`` agrees with and without indexes, and with a pure-Python reference evaluator.

The reference below is written from the ``///`` docs of ``rust/query`` (``path.rs``
``FieldPath::visit``, ``eval.rs`` ``matches``, ``order.rs`` ``compare``, ``sort.rs``
``SortSpec::sort_values``/``compare_rows``), not from the implementation, so a
disagreement means one of the two departs from the documented contract.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ferrumdb

# ---------------------------------------------------------------------------
# Reference evaluator
# ---------------------------------------------------------------------------

MISSING = object()
"""A dead-end branch of a path (``Reached::Missing``)."""


def type_rank(v: Any) -> int:
    """Cross-type order: null < bool < number < string < array < object."""
    if v is None:
        return 0
    if isinstance(v, bool):
        return 1
    if isinstance(v, (int, float)):
        return 2
    if isinstance(v, str):
        return 3
    if isinstance(v, list):
        return 4
    if isinstance(v, dict):
        return 5
    raise TypeError(f"not a JSON value: {v!r}")


def cmp(a: Any, b: Any) -> int:
    """FerrumDB's total order; Python compares int/float exactly and str by code point."""
    ra, rb = type_rank(a), type_rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra == 0:
        return 0
    if ra in (1, 2, 3):
        return int(a > b) - int(a < b)
    if ra == 4:
        for x, y in zip(a, b):
            c = cmp(x, y)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    # Objects: (key, value) pairs sorted by key, compared lexicographically.
    pa, pb = sorted(a.items()), sorted(b.items())
    for (ka, va), (kb, vb) in zip(pa, pb):
        if ka != kb:
            return -1 if ka < kb else 1
        c = cmp(va, vb)
        if c:
            return c
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


def equal(a: Any, b: Any) -> bool:
    return cmp(a, b) == 0


def canonical_index(seg: str) -> int | None:
    if seg.isascii() and seg.isdigit() and (seg == "0" or not seg.startswith("0")):
        return int(seg)
    return None


def reach(v: Any, segs: list[str], expand: bool = True) -> list[Any]:
    """Everything a path reaches: values, leaf-array elements (unless not ``expand``), and MISSING for dead ends."""
    if not segs:
        out = [v]
        if expand and isinstance(v, list):
            out.extend(v)
        return out
    seg, rest = segs[0], segs[1:]
    if isinstance(v, dict):
        return reach(v[seg], rest, expand) if seg in v else [MISSING]
    if isinstance(v, list):
        i = canonical_index(seg)
        if i is not None:
            return reach(v[i], rest, expand) if i < len(v) else [MISSING]
        branches: list[Any] = []
        for item in v:
            if isinstance(item, dict) and seg in item:
                branches.extend(reach(item[seg], rest, expand))
            else:
                branches.append(MISSING)
        return branches
    return [MISSING]


class Subject:
    """What a condition tests: a path in a document, or one ``$elemMatch`` element.

    ``reached`` holds values, leaf-array elements and MISSING; ``whole`` the values
    without the leaf-array elements (what ``$size`` and ``$elemMatch`` look at).
    """

    def __init__(self, reached: list[Any], whole: list[Any]) -> None:
        self.reached = reached
        self.values = [r for r in reached if r is not MISSING]
        self.whole = [r for r in whole if r is not MISSING]

    @staticmethod
    def at(doc: Any, path: str) -> Subject:
        segs = path.split(".")
        return Subject(reach(doc, segs), reach(doc, segs, expand=False))

    @staticmethod
    def element(e: Any) -> Subject:
        return Subject([e, *e] if isinstance(e, list) else [e], [e])


def values_of(doc: Any, path: str) -> list[Any]:
    return Subject.at(doc, path).values


def eq_matches(s: Subject, operand: Any) -> bool:
    if operand is None:
        return not s.values or any(r is MISSING or r is None for r in s.reached)
    return any(equal(v, operand) for v in s.values)


def range_matches(s: Subject, operand: Any, accept: Callable[[int], bool]) -> bool:
    rank = type_rank(operand)
    return any(type_rank(v) == rank and accept(cmp(v, operand)) for v in s.values)


RANGES: dict[str, Callable[[int], bool]] = {
    "$gt": lambda c: c > 0,
    "$gte": lambda c: c >= 0,
    "$lt": lambda c: c < 0,
    "$lte": lambda c: c <= 0,
}


def regex_matches(s: Subject, pattern: str, options: str) -> bool:
    flags = re.IGNORECASE if "i" in options else 0
    return any(isinstance(v, str) and re.search(pattern, v, flags) for v in s.values)


def elem_matches(spec: dict[str, Any], e: Any) -> bool:
    """``$elemMatch``: an operator object holds on the element, or a filter matches an object element."""
    if spec and all(k.startswith("$") and k not in ("$and", "$or", "$nor") for k in spec):
        return operators_hold(Subject.element(e), spec)
    return isinstance(e, dict) and ref_matches(spec, e)


def condition_holds(s: Subject, op: str, arg: Any, ops: dict[str, Any]) -> bool:
    if op == "$eq":
        return eq_matches(s, arg)
    if op == "$ne":
        return not eq_matches(s, arg)
    if op == "$in":
        return any(eq_matches(s, o) for o in arg)
    if op == "$nin":
        return not any(eq_matches(s, o) for o in arg)
    if op == "$exists":
        return bool(s.values) is bool(arg)
    if op == "$regex":
        return regex_matches(s, arg, ops.get("$options", ""))
    if op == "$not":
        return not operators_hold(s, arg)
    if op == "$size":
        return any(isinstance(v, list) and len(v) == arg for v in s.whole)
    if op == "$all":
        return bool(arg) and all(eq_matches(s, o) for o in arg)
    if op == "$elemMatch":
        return any(isinstance(v, list) and any(elem_matches(arg, e) for e in v) for v in s.whole)
    return range_matches(s, arg, RANGES[op])


def operators_hold(s: Subject, ops: dict[str, Any]) -> bool:
    return all(condition_holds(s, op, arg, ops) for op, arg in ops.items() if op != "$options")


def ref_matches(flt: dict[str, Any], doc: Any) -> bool:
    for key, operand in flt.items():
        if key == "$and":
            ok = all(ref_matches(f, doc) for f in operand)
        elif key == "$or":
            ok = any(ref_matches(f, doc) for f in operand)
        elif key == "$nor":
            ok = not any(ref_matches(f, doc) for f in operand)
        elif isinstance(operand, dict) and operand and all(k.startswith("$") for k in operand):
            ok = operators_hold(Subject.at(doc, key), operand)
        else:
            ok = eq_matches(Subject.at(doc, key), operand)
        if not ok:
            return False
    return True


def sort_value(doc: Any, path: str, descending: bool) -> Any:
    """Smallest (ascending) or largest (descending) reached non-array value or element; null if none."""
    best: Any = MISSING
    for v in _sort_candidates(doc, path.split(".")):
        if best is MISSING:
            best = v
            continue
        c = cmp(v, best)
        if (c < 0 and not descending) or (c > 0 and descending):
            best = v
    return None if best is MISSING else best


def _sort_candidates(v: Any, segs: list[str]) -> Iterator[Any]:
    """Like ``reach``, but a leaf array yields only its elements, not itself."""
    if not segs:
        if isinstance(v, list):
            yield from v
        else:
            yield v
        return
    seg, rest = segs[0], segs[1:]
    if isinstance(v, dict):
        if seg in v:
            yield from _sort_candidates(v[seg], rest)
    elif isinstance(v, list):
        i = canonical_index(seg)
        if i is not None:
            if i < len(v):
                yield from _sort_candidates(v[i], rest)
        else:
            for item in v:
                if isinstance(item, dict) and seg in item:
                    yield from _sort_candidates(item[seg], rest)


def parse_sort(sort: Any) -> list[tuple[str, bool]]:
    """``(path, descending)`` pairs from the accepted ``sort=`` forms."""
    if sort is None:
        return []
    items = [sort] if isinstance(sort, str) else sort
    out = []
    for item in items:
        if isinstance(item, str):
            out.append((item[1:], True) if item.startswith("-") else (item, False))
        else:
            out.append((item[0], item[1] == -1))
    return out


def ref_query(
    docs: dict[str, Any], flt: dict[str, Any], sort: Any = None, limit: int | None = None, skip: int = 0
) -> list[tuple[str, Any]]:
    rows = [(k, d) for k, d in sorted(docs.items()) if ref_matches(flt, d)]
    keys = parse_sort(sort)
    if keys:

        def row_cmp(a: tuple[str, Any], b: tuple[str, Any]) -> int:
            for path, desc in keys:
                c = cmp(sort_value(a[1], path, desc), sort_value(b[1], path, desc))
                if c:
                    return -c if desc else c
            return (a[0] > b[0]) - (a[0] < b[0])

        rows.sort(key=functools.cmp_to_key(row_cmp))
    rows = rows[skip:]
    return rows if limit is None else rows[:limit]


# ---------------------------------------------------------------------------
# Reference self-checks (the documented examples)
# ---------------------------------------------------------------------------


def test_reference_follows_documented_examples() -> None:
    """The reference reproduces the examples written in rust/query's docs."""
    assert reach({"tags": ["a", "b"]}, ["tags"]) == [["a", "b"], "a", "b"]
    items = {"items": [{"sku": 1}, {"sku": [2]}, {}]}
    assert reach(items, ["items", "sku"]) == [1, [2], 2, MISSING]
    assert cmp(1, 1.0) == 0 and cmp(None, False) < 0 and cmp(True, 0) < 0 and cmp(9, "") < 0
    assert cmp("", []) < 0 and cmp([], {}) < 0 and cmp({"a": 1, "b": 2}, {"b": 2, "a": 1}) == 0
    assert ref_matches({"s": {"$gt": 50, "$lt": 90}}, {"s": [10, 100]})
    assert not ref_matches({"tags": {"$ne": "a"}}, {"tags": ["a", "b"]})
    assert ref_matches({"a.b": None}, {"a": [{"b": 1}, {}]})
    assert not ref_matches({"s": {"$gte": None}}, {})
    assert ref_matches({"a": {"$exists": True}}, {"a": []})
    assert sort_value({"t": [3, 1]}, "t", False) == 1 and sort_value({"t": [3, 1]}, "t", True) == 3
    assert sort_value({"t": []}, "t", False) is None
    assert not ref_matches({"s": {"$elemMatch": {"$gt": 50, "$lt": 90}}}, {"s": [10, 100]})
    assert ref_matches({"n": {"$not": {"$gt": 1}}}, {})
    assert not ref_matches({"t": {"$all": []}}, {"t": [1]})
    assert ref_matches({"t": {"$size": 2}}, {"t": [1, [2, 3]]}) and not ref_matches({"t": {"$size": 2}}, {"t": [[1, 2]]})


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

INDEXED = ["score", "role", "address.city"]
# Indexed fields are listed twice so that index plans are common.
FIELDS = ["score", "score", "role", "role", "address.city", "address.city", "address", "tags", "score.0", "nope"]

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([1.0, 1.5, -0.0, 2.5, -1.5, 3.0]),
    st.sampled_from(["", "a", "b", "ab", "B", "é"]),
)
score = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, 1.0, 2.0, -0.0, 2.5]),
    st.sampled_from(["a", "b", "10", "2"]),
    st.lists(st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b"]), st.none()), max_size=3),
    st.none(),
    st.booleans(),
)
city = st.sampled_from(["Oslo", "Paris", "Lyon", "oslo", "", None, 1])
address = st.one_of(
    st.fixed_dictionaries({}, optional={"city": city, "zip": st.integers(0, 3)}),
    st.lists(st.fixed_dictionaries({}, optional={"city": city}), max_size=3),
    st.lists(st.one_of(st.fixed_dictionaries({"city": city}), st.integers(0, 2)), max_size=2),
    st.sampled_from(["Oslo", 5, None]),
)
document = st.fixed_dictionaries(
    {},
    optional={
        "score": score,
        "role": st.sampled_from(["admin", "user", "guest", "", "Admin"]),
        "address": address,
        "tags": st.lists(st.sampled_from(["red", "blue", "green"]), max_size=3),
    },
)

operand = st.one_of(
    scalar,
    city,
    st.sampled_from(["admin", "user", "Oslo", "red", "10"]),
    st.lists(scalar, max_size=2),
    st.sampled_from([{"city": "Oslo"}, {}, {"city": None}]),
)
condition = st.one_of(
    st.tuples(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), operand),
    st.tuples(
        st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
        st.one_of(st.integers(-3, 3), st.sampled_from([0.5, "a", "Oslo"])),
    ),
    st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(operand, max_size=3)),
    st.tuples(st.just("$exists"), st.booleans()),
)


pattern = st.sampled_from(["a", "^a", "b$", "^$", "A", "é", "^(ad|us)", "[0-9]", "O.l", "^[^a]"])
regex_ops = st.builds(
    lambda p, o: {"$regex": p, **({"$options": o} if o is not None else {})},
    pattern,
    st.sampled_from([None, "", "i"]),
)


def _operator_dict(conditions: list[tuple[str, Any]], regex: dict[str, Any] | None) -> dict[str, Any]:
    return {**dict(conditions), **(regex or {})}


plain_operators = st.builds(
    _operator_dict,
    st.lists(condition, max_size=2, unique_by=lambda c: c[0]),
    st.one_of(st.none(), regex_ops),
).filter(bool)
element_filter = st.fixed_dictionaries(
    {}, optional={"city": st.one_of(city, plain_operators), "zip": st.one_of(st.integers(0, 3), plain_operators)}
)
new_condition = st.one_of(
    st.tuples(st.just("$not"), plain_operators),
    st.tuples(st.just("$size"), st.integers(0, 3)),
    st.tuples(st.just("$all"), st.lists(operand, max_size=3)),
    st.tuples(st.just("$elemMatch"), st.one_of(plain_operators, element_filter)),
)


def field_clause() -> st.SearchStrategy[dict[str, Any]]:
    literal = st.builds(lambda f, v: {f: v}, st.sampled_from(FIELDS), operand)
    ops = st.builds(
        lambda f, cs, rx: {f: _operator_dict(cs, rx)},
        st.sampled_from(FIELDS),
        st.lists(st.one_of(condition, condition, new_condition), min_size=1, max_size=3, unique_by=lambda c: c[0]),
        st.one_of(st.none(), st.none(), regex_ops),
    )
    return st.one_of(literal, ops)


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in parts:
        out.update(p)
    return out


filters = st.recursive(
    st.builds(_merge, st.lists(field_clause(), max_size=3)),
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda fs: {"$nor": fs}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(
            lambda a, b: {**a, **b},
            field_clause(),
            st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=2)),
        ),
    ),
    max_leaves=6,
)

sort_field = st.sampled_from(["score", "role", "address.city", "tags", "nope"])
sorts = st.one_of(
    st.none(),
    sort_field,
    sort_field.map(lambda f: "-" + f),
    st.lists(st.tuples(sort_field, st.sampled_from([1, -1])), min_size=1, max_size=2),
)

keys = st.sampled_from([f"k{i:02d}" for i in range(12)])
# A write is (key, document) or (key, None) for a delete.
writes = st.lists(st.tuples(keys, st.one_of(document, document, st.none())), max_size=25)


# ---------------------------------------------------------------------------
# The property
# ---------------------------------------------------------------------------


def _apply(db: ferrumdb.FerrumDB, ops: list[tuple[str, Any]], model: dict[str, Any]) -> None:
    for key, doc in ops:
        if doc is None:
            db.delete(key)
            model.pop(key, None)
        else:
            db[key] = doc
            model[key] = doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=writes,
    after=writes,
    queries=st.lists(
        st.tuples(filters, sorts, st.one_of(st.none(), st.integers(0, 5)), st.integers(0, 3)),
        min_size=1,
        max_size=4,
    ),
)
def test_indexed_unindexed_and_reference_agree(
    before: list[tuple[str, Any]],
    after: list[tuple[str, Any]],
    queries: list[tuple[dict[str, Any], Any, int | None, int]],
) -> None:
    """For random documents and filters, query() with indexes == without == the reference."""
    model: dict[str, Any] = {}
    with ferrumdb.open(":memory:") as plain, ferrumdb.open(":memory:") as indexed:
        # Documents written before the indexes exist (index build) and after (index upkeep).
        _apply(plain, before, {})
        _apply(indexed, before, model)
        for field in INDEXED:
            indexed.create_index(field)
        _apply(plain, after, {})
        _apply(indexed, after, model)
        assert indexed.indexes() == sorted(INDEXED)
        for flt, sort, limit, skip in queries:
            want = ref_query(model, flt, sort, limit, skip)
            got_plain = plain.query(flt, sort=sort, limit=limit, skip=skip)
            got_indexed = indexed.query(flt, sort=sort, limit=limit, skip=skip)
            assert got_plain == want, (flt, sort, limit, skip)
            assert got_indexed == want, (flt, sort, limit, skip, indexed.explain(flt))


@settings(max_examples=60, deadline=None)
@given(
    docs=st.dictionaries(keys, document, max_size=12),
    field=st.sampled_from([*INDEXED, "tags", "address", "score.0"]),
    value=operand,
)
def test_find_agrees_with_index_and_reference(docs: dict[str, Any], field: str, value: Any) -> None:
    """find(field, value) is the same with an index, without one, and in the reference."""
    with ferrumdb.open(":memory:") as plain, ferrumdb.open(":memory:") as indexed:
        indexed.create_index(field)
        for k, d in docs.items():
            plain[k] = d
            indexed[k] = d
        want = [k for k, _ in ref_query(docs, {field: {"$eq": value}})]
        assert plain.find(field, value) == want
        assert indexed.find(field, value) == want


range_condition = st.tuples(
    st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
    st.one_of(st.integers(-4, 4), st.sampled_from([-0.0, 0.5, 1.0, 2.5, "", "a", "b", "Oslo", "P", None, False, True])),
)


@settings(max_examples=100, deadline=None)
@given(
    docs=st.dictionaries(keys, document, max_size=12),
    field=st.sampled_from(INDEXED),
    conditions=st.lists(range_condition, min_size=1, max_size=3, unique_by=lambda c: c[0]),
)
def test_range_probes_agree_with_reference(docs: dict[str, Any], field: str, conditions: list[tuple[str, Any]]) -> None:
    """Range filters (single and merged bounds) give the reference's rows with and without an index."""
    flt = {field: dict(conditions)}
    with ferrumdb.open(":memory:") as plain, ferrumdb.open(":memory:") as indexed:
        indexed.create_index(field)
        for k, d in docs.items():
            plain[k] = d
            indexed[k] = d
        want = ref_query(docs, flt)
        assert plain.query(flt) == want
        assert indexed.query(flt) == want, indexed.explain(flt)
        assert indexed.explain(flt)["index"] == field


tricky_number = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [2**53, 2**53 + 1, 2.0**53, 2**63, 2.0**63, 2**64 - 1, 2.0**64, -(2**63), -(2.0**63), 0.0, -0.0, 5e-324]
    ),
)
tricky_string = st.text(
    alphabet=st.sampled_from(["a", "b", "\x00", "\x7f", "\xff", "é", "\uffff", "😀"]), max_size=3
)
tricky_scalar = st.one_of(tricky_number, tricky_string)


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.one_of(tricky_scalar, st.lists(tricky_scalar, max_size=2)), max_size=10),
    op=st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
    arg=tricky_scalar,
    descending=st.booleans(),
)
def test_numbers_and_strings_compare_exactly(values: list[Any], op: str, arg: Any, descending: bool) -> None:
    """Extreme ints, floats and odd strings filter and sort exactly, indexed or not (Python order is the reference)."""
    docs = {f"k{i:02d}": {"v": v} for i, v in enumerate(values)}
    flt = {"v": {op: arg}}
    sort = "-v" if descending else "v"
    with ferrumdb.open(":memory:") as plain, ferrumdb.open(":memory:") as indexed:
        indexed.create_index("v")
        for k, d in docs.items():
            plain[k] = d
            indexed[k] = d
        want = ref_query(docs, flt, sort)
        assert plain.query(flt, sort=sort) == want
        assert indexed.query(flt, sort=sort) == want


# ---------------------------------------------------------------------------
# prefix, fields, count and distinct against the reference
# ---------------------------------------------------------------------------


def ref_project(doc: Any, paths: list[str]) -> Any:
    """MongoDB inclusion projection, written from ``rust/query/project.rs``'s docs."""

    def cut(obj: dict[str, Any], paths: list[list[str]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            mine = [p[1:] for p in paths if p[0] == key]
            if not mine:
                continue
            if any(not rest for rest in mine):
                out[key] = value
                continue
            got = MISSING
            if isinstance(value, dict):
                got = cut(value, mine)
            elif isinstance(value, list):
                got = [p for p in (_inside_many(e, mine) for e in value) if p is not MISSING]
            if got is not MISSING:
                out[key] = got
        return out

    def _inside_many(v: Any, rests: list[list[str]]) -> Any:
        if isinstance(v, dict):
            return cut(v, rests)
        if isinstance(v, list):
            return [p for p in (_inside_many(e, rests) for e in v) if p is not MISSING]
        return MISSING

    return cut(doc, [p.split(".") for p in paths])


def ref_distinct(rows: list[tuple[str, Any]], path: str) -> list[Any]:
    values: list[Any] = []
    for _, doc in rows:
        for whole in Subject.at(doc, path).whole:
            for v in whole if isinstance(whole, list) else [whole]:
                if not any(equal(v, seen) for seen in values):
                    values.append(v)
    return sorted(values, key=functools.cmp_to_key(cmp))


prefixed_keys = st.sampled_from([f"{c}:{i}" for c in "ab" for i in range(5)] + ["a", "ab", "b:"])
projection = st.lists(st.sampled_from(["score", "role", "address.city", "address", "address.zip", "tags", "tags.0", "nope.x"]), max_size=3)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.dictionaries(prefixed_keys, document, max_size=12),
    flt=filters,
    prefix=st.sampled_from([None, "", "a", "a:", "b:", "c"]),
    fields=st.one_of(st.none(), projection),
    field=st.sampled_from(["score", "role", "address.city", "tags", "address"]),
)
def test_prefix_fields_count_distinct_agree(
    docs: dict[str, Any], flt: dict[str, Any], prefix: str | None, fields: list[str] | None, field: str
) -> None:
    """query(prefix=, fields=), count and distinct equal the reference, with indexes and without."""
    scoped = {k: d for k, d in docs.items() if k.startswith(prefix or "")}
    rows = ref_query(scoped, flt)
    want = rows if fields is None else [(k, ref_project(d, fields)) for k, d in rows]
    with ferrumdb.open(":memory:") as plain, ferrumdb.open(":memory:") as indexed:
        for field_name in INDEXED:
            indexed.create_index(field_name)
        for k, d in docs.items():
            plain[k] = d
            indexed[k] = d
        for db in (plain, indexed):
            assert db.query(flt, prefix=prefix, fields=fields) == want, (flt, prefix, fields)
            assert db.count(flt, prefix=prefix) == len(rows)
            assert db.distinct(field, flt, prefix=prefix) == ref_distinct(rows, field)
