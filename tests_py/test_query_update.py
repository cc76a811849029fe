"""Updates by operator: ``update_one``, ``update_many`` and ``delete_many``.

The operator rules are the ones documented in ``rust/query/update.rs``; atomicity
and TTLs in ``rust/documents/update.rs``. A hypothesis test compares every
operator with a pure-Python model of MongoDB's update semantics.
"""

from __future__ import annotations

import copy
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ferrumdb
from tests_py.test_query_properties import cmp, equal

# ---------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------


def test_every_operator_on_dotted_paths(db: ferrumdb.FerrumDB) -> None:
    """Each operator does what MongoDB's does, nested paths included."""
    db["k"] = {"n": 1, "a": {"b": 2}, "t": [1, 2, 3], "s": [1], "old": "x", "lo": 5, "hi": 5}
    new = db.update_one(
        "k",
        {
            "$set": {"a.c": "new", "z.y": True},
            "$inc": {"n": 2, "fresh": 1},
            "$mul": {"a.b": 10},
            "$min": {"lo": 3},
            "$max": {"hi": 3},
            "$rename": {"old": "renamed"},
            "$push": {"t": {"$each": [4, 5]}},
            "$addToSet": {"s": {"$each": [1, 2]}},
            "$unset": {"gone": ""},
        },
    )
    want = {
        "n": 3,
        "a": {"b": 20, "c": "new"},
        "t": [1, 2, 3, 4, 5],
        "s": [1, 2],
        "lo": 3,
        "hi": 5,
        "z": {"y": True},
        "fresh": 1,
        "renamed": "x",
    }
    assert new == want
    assert db["k"] == want
    assert db.update_one("k", {"$pull": {"t": {"$gte": 4}}, "$pop": {"s": -1}, "$unset": {"a.c": 1}}) == {
        **want,
        "t": [1, 2, 3],
        "s": [2],
        "a": {"b": 20},
    }


def test_update_one_by_filter_picks_the_first_match_in_key_order(db: ferrumdb.FerrumDB) -> None:
    """A dict target updates the first matching key; no match returns None and writes nothing."""
    db["b"] = {"role": "user", "n": 0}
    db["a"] = {"role": "user", "n": 0}
    db["c"] = {"role": "admin", "n": 0}
    assert db.update_one({"role": "user"}, {"$inc": {"n": 1}}) == {"role": "user", "n": 1}
    assert (db["a"]["n"], db["b"]["n"], db["c"]["n"]) == (1, 0, 0)
    assert db.update_one({"role": "guest"}, {"$inc": {"n": 1}}) is None
    assert db.update_one("missing", {"$inc": {"n": 1}}) is None
    assert "missing" not in db


def test_upsert_with_a_key_starts_from_an_empty_document(db: ferrumdb.FerrumDB) -> None:
    """upsert=True creates a missing key from {}; a filter cannot upsert."""
    assert db.update_one("counter", {"$inc": {"n": 1}}, upsert=True) == {"n": 1}
    assert db.update_one("counter", {"$inc": {"n": 1}}, upsert=True) == {"n": 2}
    with pytest.raises(ValueError, match="upsert"):
        db.update_one({"n": 5}, {"$inc": {"n": 1}}, upsert=True)


@pytest.mark.parametrize(
    ("update", "part"),
    [
        ({}, "update"),
        ({"n": 1}, "update.n"),
        ({"$set": {"a": 1}, "b": 2}, "update.b"),
        ({"$bogus": {"a": 1}}, "update.$bogus"),
        ({"$set": 1}, "update.$set"),
        ({"$inc": {"n": "1"}}, "update.$inc.n"),
        ({"$pop": {"t": 0}}, "update.$pop.t"),
        ({"$set": {"a": 1}, "$unset": {"a.b": ""}}, "update.$unset.a.b"),
        ({"$push": {"t": {"$slice": 2}}}, "update.$push.t"),
    ],
)
def test_a_malformed_update_is_value_error_and_writes_nothing(
    db: ferrumdb.FerrumDB, update: dict[str, Any], part: str
) -> None:
    """No operators, plain fields, unknown operators and bad operands raise ValueError naming the part."""
    db["k"] = {"n": 1, "t": [1]}
    with pytest.raises(ValueError, match=re.escape(f"invalid update at {part}:")) as info:
        db.update_one("k", update)
    assert not isinstance(info.value, TypeError)
    with pytest.raises(ValueError, match="invalid update"):
        db.update_many({}, update)
    assert db["k"] == {"n": 1, "t": [1]}


def test_the_update_and_target_must_be_dicts(db: ferrumdb.FerrumDB) -> None:
    """A list update is a ValueError; a target that is neither str nor dict is a TypeError."""
    db["k"] = {}
    with pytest.raises(ValueError, match="invalid update at update"):
        db.update_one("k", [1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key .str. or a filter .dict."):
        db.update_one(5, {"$set": {"a": 1}})  # type: ignore[arg-type]


def test_a_type_error_names_key_and_path_and_writes_nothing_even_after_reopen(db_path: Path) -> None:
    """$inc on a string raises TypeError naming the key and path; update_many writes none of its documents."""
    with ferrumdb.open(db_path) as db:
        db["a"] = {"n": 1, "s": {"v": 1}}
        db["b"] = {"n": 2, "s": {"v": "text"}}
        with pytest.raises(TypeError, match=r'cannot update "a" at s\.v\.x'):
            db.update_one("a", {"$set": {"s.v.x": 1}})
        with pytest.raises(TypeError, match=r'cannot update "b" at s\.v: \$inc needs a number'):
            db.update_many({}, {"$inc": {"n": 10, "s.v": 1}})
        with pytest.raises(ValueError, match=r'key "a", field n.*64-bit'):
            db.update_one("a", {"$inc": {"n": 2**64 - 1}})
        assert dict(db.items()) == {"a": {"n": 1, "s": {"v": 1}}, "b": {"n": 2, "s": {"v": "text"}}}
    with ferrumdb.open(db_path) as db:
        assert dict(db.items()) == {"a": {"n": 1, "s": {"v": 1}}, "b": {"n": 2, "s": {"v": "text"}}}


def test_update_many_counts_changed_documents_only(db: ferrumdb.FerrumDB) -> None:
    """update_many returns how many documents changed; one left equal is not counted or rewritten."""
    db["order:1"] = {"status": "new"}
    db["order:2"] = {"status": "seen"}
    db["order:3"] = {"status": "new"}
    db["user:1"] = {"status": "new"}
    assert db.update_many({"status": "new"}, {"$set": {"status": "seen"}}, prefix="order:") == 2
    assert db.update_many({}, {"$set": {"status": "seen"}}, prefix="order:") == 0
    assert [d["status"] for _, d in db.query()] == ["seen", "seen", "seen", "new"]


def test_update_many_is_one_batch_for_watchers(db: ferrumdb.FerrumDB) -> None:
    """Every change of one update_many is committed together (watch sees them in one run)."""
    for i in range(5):
        db[f"k{i}"] = {"n": i}
    with db.watch() as changes:
        assert db.update_many({"n": {"$gte": 2}}, {"$inc": {"n": 100}}) == 3
        db["after"] = 1
        events = [next(changes) for _ in range(4)]
    assert events == [
        ("set", "k2", {"n": 102}),
        ("set", "k3", {"n": 103}),
        ("set", "k4", {"n": 104}),
        ("set", "after", 1),
    ]


def test_delete_many(db: ferrumdb.FerrumDB) -> None:
    """delete_many removes every match (with prefix), returns how many, and indexes follow."""
    db.create_index("status")
    for i in range(6):
        db[f"order:{i}"] = {"status": "cancelled" if i % 2 else "ok"}
    db["user:1"] = {"status": "cancelled"}
    assert db.delete_many({"status": "cancelled"}, prefix="order:") == 3
    assert db.find("status", "cancelled") == ["user:1"]
    assert db.delete_many({"status": "nope"}) == 0
    assert db.delete_many({}) == 4
    assert len(db) == 0


def test_updates_keep_the_ttl(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """An updated key expires when it would have; update_many too."""
    tdb.set("s", {"n": 0}, ttl=10)
    clock.advance(4)
    tdb.update_one("s", {"$inc": {"n": 1}})
    tdb.update_many({}, {"$inc": {"n": 1}})
    assert tdb["s"] == {"n": 2}
    assert tdb.ttl("s") == pytest.approx(6.0)
    clock.advance(6)
    assert "s" not in tdb


def test_indexes_follow_updates(db: ferrumdb.FerrumDB) -> None:
    """After update_one/update_many an index answers from the new documents."""
    db.create_index("tags")
    db["a"] = {"tags": ["x"]}
    db["b"] = {"tags": ["y"]}
    db.update_one("a", {"$push": {"tags": "y"}})
    assert db.find("tags", "y") == ["a", "b"]
    db.update_many({"tags": "y"}, {"$pull": {"tags": "y"}})
    assert db.find("tags", "y") == []
    assert db.find("tags", "x") == ["a"]


def test_a_read_only_handle_refuses_updates(db_path: Path) -> None:
    """update_one/update_many/delete_many on a read_only handle raise ReadOnlyError."""
    with ferrumdb.open(db_path) as db:
        db["k"] = {"n": 1}
    with ferrumdb.open(db_path, read_only=True) as ro:
        for call in (
            lambda: ro.update_one("k", {"$inc": {"n": 1}}),
            lambda: ro.update_many({}, {"$inc": {"n": 1}}),
            lambda: ro.delete_many({}),
        ):
            with pytest.raises(ferrumdb.ReadOnlyError):
                call()
        assert ro["k"] == {"n": 1}


def test_threads_racing_inc_lose_nothing(db: ferrumdb.FerrumDB) -> None:
    """8 threads x 500 update_one $inc on one key give exactly 4000."""
    threads, each = 8, 500
    db["counter"] = {"n": 0}
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        for _ in range(each):
            db.update_one("counter", {"$inc": {"n": 1}})

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert db["counter"] == {"n": threads * each}


def test_threads_racing_update_many_and_inc_lose_nothing(db: ferrumdb.FerrumDB) -> None:
    """update_many over several keys and single $incs interleave without losing an increment."""
    keys = [f"k{i}" for i in range(5)]
    for k in keys:
        db[k] = {"n": 0}
    threads, each = 4, 50
    start = threading.Barrier(threads)

    def work(slot: int) -> None:
        start.wait()
        for i in range(each):
            if slot % 2:
                db.update_many({}, {"$inc": {"n": 1}})
            else:
                db.update_one(keys[i % len(keys)], {"$inc": {"n": 1}})

    pool = [threading.Thread(target=work, args=(s,)) for s in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    # Two threads x 50 update_many (each +1 on all 5 keys) + two threads x 50 single +1s.
    assert sum(db[k]["n"] for k in keys) == 2 * each * len(keys) + 2 * each


# ---------------------------------------------------------------------------
# Hypothesis: every operator against a model of MongoDB's update semantics
# ---------------------------------------------------------------------------


class ModelTypeError(Exception):
    """The model's TypeError: an operator met the wrong type."""


def _walk(doc: dict[str, Any], path: str, create: bool) -> tuple[Any, str] | None:
    """The container holding the last segment of ``path`` (creating objects), or None when missing."""
    segs = path.split(".")
    here: Any = doc
    for seg in segs[:-1]:
        if isinstance(here, dict):
            if seg not in here:
                if not create:
                    return None
                here[seg] = {}
            here = here[seg]
        elif create:
            raise ModelTypeError(path)
        else:
            return None
    if not isinstance(here, dict):
        if create:
            raise ModelTypeError(path)
        return None
    return here, segs[-1]


def _same(a: Any, b: Any) -> bool:
    return equal(a, b)


def model_apply(doc: dict[str, Any], update: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """MongoDB's update semantics for the generated operators (objects and arrays, no numeric paths)."""
    doc = copy.deepcopy(doc)
    for op, fields in update.items():
        for path, arg in fields.items():
            if op in ("$unset", "$pull", "$pop", "$rename"):
                found = _walk(doc, path, create=False)
                if found is None or found[1] not in found[0]:
                    continue
                parent, last = found
                if op == "$unset":
                    del parent[last]
                elif op == "$rename":
                    value = parent.pop(last)
                    target, name = _walk(doc, arg, create=True)  # type: ignore[misc]
                    target[name] = value
                else:
                    items = parent[last]
                    if not isinstance(items, list):
                        raise ModelTypeError(path)
                    if op == "$pull":
                        parent[last] = [x for x in items if not _same(x, arg)]
                    elif items:
                        parent[last] = items[1:] if arg == -1 else items[:-1]
                continue
            parent, last = _walk(doc, path, create=True)  # type: ignore[misc]
            exists = last in parent
            current = parent.get(last)
            if op == "$set":
                parent[last] = arg
            elif op in ("$inc", "$mul"):
                if not exists:
                    current = 0
                if isinstance(current, bool) or not isinstance(current, (int, float)):
                    raise ModelTypeError(path)
                parent[last] = current + arg if op == "$inc" else current * arg
            elif op == "$min":
                if not exists or cmp(arg, current) < 0:
                    parent[last] = arg
            elif op == "$max":
                if not exists or cmp(arg, current) > 0:
                    parent[last] = arg
            else:  # $push / $addToSet with $each
                values = arg["$each"] if isinstance(arg, dict) else [arg]
                if not exists:
                    current = parent[last] = []
                if not isinstance(current, list):
                    raise ModelTypeError(path)
                for v in values:
                    if op == "$push" or not any(_same(v, x) for x in current):
                        current.append(v)
    return doc


small = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, "x", "", True, None]))
value = st.one_of(small, st.lists(small, max_size=3), st.fixed_dictionaries({}, optional={"b": small, "c": small}))
doc_strategy = st.fixed_dictionaries(
    {},
    optional={
        "n": st.one_of(st.integers(-5, 5), st.sampled_from([1.5, "s", None, [1]])),
        "m": st.one_of(st.integers(-5, 5), st.just(2.5)),
        "a": st.one_of(st.fixed_dictionaries({}, optional={"b": value, "c": value}), st.integers(0, 2)),
        "t": st.one_of(st.lists(small, max_size=4), st.just("str")),
    },
)
PATHS = ["n", "m", "a.b", "a.c", "t", "u", "a.d.e"]


def _operation(path: str) -> st.SearchStrategy[tuple[str, str, Any]]:
    number = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 2.0]))
    return st.one_of(
        st.tuples(st.just("$set"), st.just(path), value),
        st.tuples(st.just("$unset"), st.just(path), st.just("")),
        st.tuples(st.sampled_from(["$inc", "$mul"]), st.just(path), number),
        st.tuples(st.sampled_from(["$min", "$max"]), st.just(path), small),
        st.tuples(st.sampled_from(["$push", "$addToSet"]), st.just(path), st.one_of(small, st.builds(lambda v: {"$each": v}, st.lists(small, max_size=3)))),
        st.tuples(st.just("$pull"), st.just(path), small),
        st.tuples(st.just("$pop"), st.just(path), st.sampled_from([1, -1])),
        st.tuples(st.just("$rename"), st.just(path), st.sampled_from(["r", "q.w"])),
    )


@st.composite
def updates(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """Operators on non-overlapping paths (MongoDB refuses overlapping ones)."""
    paths = draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3, unique=True))
    paths = [p for p in paths if not any(q != p and (q.startswith(p + ".") or p.startswith(q + ".")) for q in paths)]
    out: dict[str, dict[str, Any]] = {}
    renamed = False
    for path in paths:
        op, p, arg = draw(_operation(path))
        if op == "$rename":
            if renamed:
                op, arg = "$unset", ""
            renamed = True
        out.setdefault(op, {})[p] = arg
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=doc_strategy, update=updates(), indexed=st.booleans())
def test_update_operators_agree_with_the_model(doc: dict[str, Any], update: dict[str, dict[str, Any]], indexed: bool) -> None:
    """update_one gives the model's document, or both refuse with a type error and the document is unchanged."""
    try:
        want: dict[str, Any] | None = model_apply(doc, update)
    except ModelTypeError:
        want = None
    with ferrumdb.open(":memory:") as db:
        if indexed:
            db.create_index("a.b")
            db.create_index("n")
        db["k"] = doc
        if want is None:
            with pytest.raises(TypeError):
                db.update_one("k", update)
            assert db["k"] == doc
        else:
            got = db.update_one("k", update)
            assert got == want, update
            assert db["k"] == want
            if indexed:
                # The indexes moved with the document: its new values find it.
                if "n" in want:
                    assert db.find("n", want["n"]) == ["k"]
                if isinstance(want.get("a"), dict) and "b" in want["a"]:
                    assert db.find("a.b", want["a"]["b"]) == ["k"]


def test_update_one_leaving_the_document_equal_writes_nothing(db: ferrumdb.FerrumDB) -> None:
    """update_one that changes nothing (same value, $max below, $rename of a missing field,
    $pull of an absent element) writes no record: a watch sees only the write after it."""
    db["k"] = {"a": 1, "b": [1, 2], "c": {"d": 3}}
    with db.watch() as changes:
        for update in (
            {"$set": {"a": 1}},
            {"$max": {"c.d": 2}},
            {"$rename": {"missing": "other"}},
            {"$pull": {"b": 9}},
            {"$set": {"c": {"d": 3}}},
        ):
            assert db.update_one("k", update) == {"a": 1, "b": [1, 2], "c": {"d": 3}}
        assert db.update_one("k", {"$rename": {"a": "z"}}) == {"b": [1, 2], "c": {"d": 3}, "z": 1}
        assert next(changes) == ("set", "k", {"b": [1, 2], "c": {"d": 3}, "z": 1})
