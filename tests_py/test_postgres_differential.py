"""The same random operations on a file database and a PostgreSQL one give the same results (SPEC section 7).

Hypothesis draws documents, filters (every operator, dotted paths through
arrays, nulls and missing fields, mixed number types), updates, sorts,
projections, TTLs (one ManualClock drives both) and transactions; every
result and every exception class must agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ferrumdb
from tests_py.pg_support import drop_table, server_url, table_url

KEYS = ["a", "b", "c", "d", "k:1", "k:2", "ä"]
PATHS = ["n", "s", "tags", "sub.x", "items.x", "missing", "sub"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([1.0, 2.5, -0.5, 0.0, 1e16, 2**53 + 1, -(2**63), 2**64 - 1]),
    st.sampled_from(["", "a", "b", "ab", "B", "é", "z"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=4)

documents = st.fixed_dictionaries(
    {},
    optional={
        "n": st.one_of(st.integers(-3, 3), st.sampled_from([1.0, 2.5, 1e16]), st.sampled_from(["1", None])),
        "s": st.sampled_from(["", "a", "ab", "b", "B", "é", "z"]),
        "tags": st.lists(scalars, max_size=3),
        "sub": st.one_of(st.fixed_dictionaries({"x": values}), st.just([]), st.lists(st.fixed_dictionaries({"x": scalars}), max_size=2)),
        "items": st.lists(st.one_of(st.fixed_dictionaries({}, optional={"x": values}), scalars), max_size=3),
    },
)


def field_conditions(path: str) -> st.SearchStrategy[Any]:
    return st.one_of(
        values,
        st.dictionaries(
            st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
            st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 2.5, "a", "b", "é"]), scalars),
            min_size=1,
            max_size=2,
        ),
        st.builds(lambda op, vs: {op: vs}, st.sampled_from(["$in", "$nin", "$all"]), st.lists(scalars, max_size=3)),
        st.builds(lambda b: {"$exists": b}, st.booleans()),
        st.builds(lambda n: {"$size": n}, st.integers(0, 3)),
        st.builds(lambda p, i: {"$regex": p, "$options": "i"} if i else {"$regex": p}, st.sampled_from(["^a", "b$", "é", "."]), st.booleans()),
        st.builds(lambda c: {"$not": c}, st.dictionaries(st.sampled_from(["$gt", "$eq", "$in"]), st.one_of(scalars, st.lists(scalars, max_size=2)), min_size=1, max_size=1)),
        st.builds(lambda c: {"$elemMatch": c}, st.one_of(st.just({"x": {"$gte": 1}}), st.just({"$gt": 0}), st.just({"x": "a"}))),
    )


def field_filters() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(PATHS).flatmap(lambda p: field_conditions(p).map(lambda c: {p: c}))


nested_filters = st.recursive(
    st.one_of(st.just({}), field_filters()),
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda fs: {"$nor": fs}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda a, b: {**a, **b}, inner, inner),
    ),
    max_leaves=4,
)
# Mostly filters whose top level PostgreSQL can (partly) translate, where a wrong SQL superset would show.
filters = st.one_of(
    field_filters(),
    st.builds(lambda a, b: {**a, **b}, field_filters(), field_filters()),
    st.builds(lambda fs: {"$or": fs}, st.lists(field_filters(), min_size=1, max_size=3)),
    nested_filters,
)

updates = st.one_of(
    st.builds(lambda p, v: {"$set": {p: v}}, st.sampled_from(["n", "s", "sub.x", "new.deep"]), values),
    st.builds(lambda p, v: {"$inc": {p: v}}, st.sampled_from(["n", "sub.x", "cnt"]), st.sampled_from([1, -2, 0.5])),
    st.builds(lambda p, v: {"$mul": {p: v}}, st.sampled_from(["n", "cnt"]), st.sampled_from([2, 0.5])),
    st.builds(lambda p: {"$unset": {p: ""}}, st.sampled_from(["n", "tags", "sub.x"])),
    st.builds(lambda v: {"$push": {"tags": v}}, scalars),
    st.builds(lambda v: {"$push": {"tags": {"$each": v}}}, st.lists(scalars, max_size=2)),
    st.builds(lambda v: {"$addToSet": {"tags": v}}, scalars),
    st.builds(lambda v: {"$pull": {"tags": v}}, scalars),
    st.builds(lambda d: {"$pop": {"tags": d}}, st.sampled_from([1, -1])),
    st.builds(lambda op, v: {op: {"n": v}}, st.sampled_from(["$min", "$max"]), scalars),
    st.just({"$rename": {"s": "s2"}}),
    st.just({"n": 1}),
)

sorts = st.one_of(
    st.none(),
    st.sampled_from(PATHS).map(lambda p: p),
    st.sampled_from(PATHS).map(lambda p: "-" + p),
    st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from([1, -1])), min_size=1, max_size=2),
)

operations = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS), documents, st.sampled_from([None, None, 5, 50])),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
    st.tuples(st.just("get"), st.sampled_from(KEYS)),
    st.tuples(
        st.just("query"),
        filters,
        sorts,
        st.one_of(st.none(), st.integers(0, 3)),
        st.integers(0, 2),
        st.sampled_from([None, "k:"]),
        st.one_of(st.none(), st.lists(st.sampled_from(PATHS + ["items.0"]), min_size=1, max_size=2)),
    ),
    st.tuples(st.just("count"), filters, st.sampled_from([None, "k:"])),
    st.tuples(st.just("distinct"), st.sampled_from(PATHS), filters),
    st.tuples(st.just("find"), st.sampled_from(PATHS), scalars),
    st.tuples(st.just("update_one"), st.one_of(st.sampled_from(KEYS), filters), updates, st.booleans()),
    st.tuples(st.just("update_many"), filters, updates),
    st.tuples(st.just("delete_many"), filters),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 10.0, 60.0])),
    st.tuples(st.just("transaction"), st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), documents)), max_size=3)),
    st.tuples(st.just("scan"), st.sampled_from(["", "k:", "z"])),
)


def apply(db: Any, op: tuple[Any, ...]) -> Any:
    """Run one operation; the result, or the exception's class name."""
    kind = op[0]
    try:
        if kind == "set":
            db.set(op[1], op[2], ttl=op[3])
            return None
        if kind == "delete":
            return db.delete(op[1])
        if kind == "get":
            return db.get(op[1], "<missing>")
        if kind == "query":
            _, f, sort, limit, skip, prefix, fields = op
            return db.query(f, sort=sort, limit=limit, skip=skip, prefix=prefix, fields=fields)
        if kind == "count":
            return db.count(op[1], prefix=op[2])
        if kind == "distinct":
            return db.distinct(op[1], op[2])
        if kind == "find":
            return db.find(op[1], op[2])
        if kind == "update_one":
            return db.update_one(op[1], op[2], upsert=op[3] and isinstance(op[1], str))
        if kind == "update_many":
            return db.update_many(op[1], op[2])
        if kind == "delete_many":
            return db.delete_many(op[1])
        if kind == "transaction":
            seen = []
            with db.transaction() as tx:
                for key, doc in op[1]:
                    seen.append(tx.get(key, "<missing>"))
                    if doc is None:
                        tx.delete(key)
                    else:
                        tx[key] = doc
            return seen
        if kind == "scan":
            return list(db.scan(op[1]))
    except Exception as e:  # both backends must fail the same way
        return f"raised {type(e).__name__}"
    raise AssertionError(kind)


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Any, Any, ferrumdb.ManualClock]]:
    """A file database and a PostgreSQL one, driven by one ManualClock."""
    base = server_url()
    table = "diff_" + uuid.uuid4().hex[:10]
    clock = ferrumdb.ManualClock(1_000_000.0)
    file_db = ferrumdb.open(":memory:", clock=clock)
    pg_db = ferrumdb.open(table_url(base, table), clock=clock)
    yield file_db, pg_db, clock
    file_db.close()
    pg_db.close()
    drop_table(base, table)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    seed=st.dictionaries(st.sampled_from(KEYS), documents, min_size=3, max_size=7),
    ops=st.lists(operations, min_size=1, max_size=12),
)
def test_same_results_on_both_backends(
    pair: tuple[Any, Any, ferrumdb.ManualClock], seed: dict[str, Any], ops: list[tuple[Any, ...]]
) -> None:
    """Every operation returns the same result (or raises the same class) on the file and PostgreSQL backends."""
    file_db, pg_db, clock = pair
    file_db.clear()
    pg_db.clear()
    for i, (key, doc) in enumerate(seed.items()):
        for db in (file_db, pg_db):
            db.set(key, doc, ttl=30 if i % 3 == 2 else None)
    for i, op in enumerate(ops):
        if op[0] == "advance":
            clock.advance(op[1])
            continue
        expected = apply(file_db, op)
        got = apply(pg_db, op)
        assert got == expected, f"operation {i} {op!r}"
    assert dict(pg_db.items()) == dict(file_db.items())
    for key in file_db:
        left = file_db.ttl(key)
        assert pg_db.ttl(key) == (None if left is None else pytest.approx(left, abs=1e-3)), key


def test_index_does_not_change_answers(pair: tuple[Any, Any, ferrumdb.ManualClock]) -> None:
    """With indexes on both sides, equality and $in on array and nested paths still agree (index is a superset)."""
    file_db, pg_db, _ = pair
    file_db.clear()
    pg_db.clear()
    docs = {
        "a": {"tags": ["x", "y"], "sub": {"x": 1}},
        "b": {"tags": "x", "sub": [{"x": 1.0}, {"x": 2}]},
        "c": {"tags": [["x"]], "sub": {"x": [1, 3]}},
        "d": {"tags": None},
        "e": {},
    }
    for db in (file_db, pg_db):
        for k, v in docs.items():
            db[k] = v
        db.create_index("tags")
        db.create_index("sub.x")
    for f in [{"tags": "x"}, {"tags": ["x"]}, {"sub.x": 1}, {"sub.x": {"$in": [2, 3]}}, {"tags": None}, {"sub.x": {"$gt": 1}}]:
        assert pg_db.query(f) == file_db.query(f), f
    for db in (file_db, pg_db):
        db.drop_index("tags")
        db.drop_index("sub.x")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    seed=st.dictionaries(st.sampled_from(KEYS), documents, min_size=4, max_size=7),
    probes=st.lists(st.tuples(filters, sorts), min_size=4, max_size=10),
)
def test_filters_and_sorts_agree(
    pair: tuple[Any, Any, ferrumdb.ManualClock], seed: dict[str, Any], probes: list[tuple[Any, Any]]
) -> None:
    """query/count/distinct give the file backend's answer for many filters over one random data set."""
    file_db, pg_db, _ = pair
    file_db.clear()
    pg_db.clear()
    for db in (file_db, pg_db):
        for key, doc in seed.items():
            db[key] = doc
    for f, sort in probes:
        for op in [("query", f, sort, None, 0, None, None), ("count", f, None), ("distinct", "tags", f)]:
            assert apply(pg_db, op) == apply(file_db, op), op


UNIQUE_PATHS = ["n", "tags", "sub.x", "items.x", "items.0", "missing"]
unique_scalars = st.one_of(
    st.none(),
    st.integers(-2, 2),
    # 2**60 as a float is written 1.152921504606847e18: jsonb alone would call it 1152921504606847000.
    st.sampled_from([1.0, 2.5, float(2**60), 2**60, 1152921504606847000, "a", "b"]),
)
unique_values = st.recursive(unique_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=4)
unique_documents = st.fixed_dictionaries(
    {},
    optional={
        "n": unique_values,
        "tags": st.lists(unique_values, max_size=3),
        "sub": st.one_of(st.fixed_dictionaries({"x": unique_values}), st.lists(st.fixed_dictionaries({"x": unique_scalars}), max_size=2)),
        "items": st.lists(st.one_of(st.fixed_dictionaries({}, optional={"x": unique_values}), unique_scalars), max_size=3),
    },
)
unique_operations = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS), unique_documents, st.sampled_from([None, None, 5])),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
    st.tuples(
        st.just("update_one"),
        st.sampled_from(KEYS),
        st.builds(lambda p, v: {"$set": {p: v}}, st.sampled_from(["n", "tags", "sub.x"]), unique_values),
        st.booleans(),
    ),
    st.tuples(st.just("update_many"), st.just({}), st.builds(lambda v: {"$set": {"n": v}}, unique_scalars)),
    st.tuples(st.just("update_many"), st.just({}), st.just({"$unset": {"n": ""}})),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 10.0])),
    st.tuples(
        st.just("transaction"),
        st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), unique_documents)), max_size=3),
    ),
    st.tuples(st.just("create_index"), st.sampled_from(UNIQUE_PATHS)),
)


def apply_unique(db: Any, op: tuple[Any, ...]) -> Any:
    if op[0] == "create_index":
        try:
            db.create_index(op[1], unique=True)
            return None
        except Exception as e:  # both backends must refuse the same data
            return f"raised {type(e).__name__}"
    return apply(db, op)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    fields=st.lists(st.sampled_from(UNIQUE_PATHS), min_size=1, max_size=2, unique=True),
    seed=st.dictionaries(st.sampled_from(KEYS), unique_documents, max_size=5),
    ops=st.lists(unique_operations, min_size=1, max_size=12),
)
def test_unique_indexes_refuse_the_same_writes(
    pair: tuple[Any, Any, ferrumdb.ManualClock], fields: list[str], seed: dict[str, Any], ops: list[tuple[Any, ...]]
) -> None:
    """With unique indexes (arrays, nested paths, missing fields, 1 == 1.0, floats past 2**53), every write,
    transaction and index creation succeeds or raises DuplicateKeyError on both backends alike."""
    file_db, pg_db, clock = pair
    for db in (file_db, pg_db):
        for field in db.indexes():
            db.drop_index(field)
        db.clear()
    for i, (key, doc) in enumerate(seed.items()):
        op = ("set", key, doc, 30 if i % 2 else None)
        assert apply(pg_db, op) == apply(file_db, op), op
    for field in fields:
        op = ("create_index", field)
        assert apply_unique(pg_db, op) == apply_unique(file_db, op), op
    for i, op in enumerate(ops):
        if op[0] == "advance":
            clock.advance(op[1])
            continue
        expected = apply_unique(file_db, op)
        got = apply_unique(pg_db, op)
        assert got == expected, f"operation {i} {op!r}"
    assert dict(pg_db.items()) == dict(file_db.items())
    assert pg_db.indexes() == file_db.indexes()
