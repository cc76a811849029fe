"""Documents: ``create_index``/``drop_index``/``indexes``, ``find``, ``query`` and ``explain``.

Matching, ordering and planning rules are the ones documented in ``rust/query``
(``eval.rs`` ``matches``, ``order.rs`` ``compare``, ``sort.rs``, ``plan.rs``).
Every database lives under ``tmp_path`` and every handle is closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

T0 = 1_800_000_000.0


def keys_of(rows: list[tuple[str, Any]]) -> list[str]:
    return [k for k, _ in rows]


@pytest.fixture
def people(db: ferrumdb.FerrumDB) -> ferrumdb.FerrumDB:
    """A small set of documents with top-level, nested, array and missing fields."""
    db["u1"] = {"name": "ann", "role": "admin", "score": 90, "address": {"city": "Oslo"}, "tags": ["red", "blue"]}
    db["u2"] = {"name": "bob", "role": "user", "score": 55.5, "address": {"city": "Paris"}, "tags": ["green"]}
    db["u3"] = {"name": "cat", "role": "user", "score": 70, "address": {"city": "Oslo"}}
    db["u4"] = {"name": "dan", "role": "guest", "score": "n/a", "tags": []}
    db["u5"] = {"name": "eve"}
    return db


# ---------------------------------------------------------------------------
# create_index / drop_index / indexes
# ---------------------------------------------------------------------------


def test_create_index_builds_from_existing_documents(people: ferrumdb.FerrumDB) -> None:
    """An index created after the data exists already answers for every document."""
    people.create_index("role")
    assert people.indexes() == ["role"]
    assert people.find("role", "user") == ["u2", "u3"]
    plan = people.explain({"role": "user"})
    assert plan["index"] == "role" and plan["scan"] is False and plan["estimated_rows"] == 2


def test_create_index_on_dotted_field_reaches_nested_objects(people: ferrumdb.FerrumDB) -> None:
    """An index on "address.city" indexes the nested value."""
    people.create_index("address.city")
    assert people.find("address.city", "Oslo") == ["u1", "u3"]
    assert people.explain({"address.city": "Oslo"})["index"] == "address.city"
    assert people.explain({"address.city": "Oslo"})["estimated_rows"] == 2


def test_indexes_lists_fields_sorted(db: ferrumdb.FerrumDB) -> None:
    """indexes() lists every indexed field name, sorted; a fresh database has none."""
    assert db.indexes() == []
    db.create_index("score")
    db.create_index("address.city")
    db.create_index("role")
    assert db.indexes() == ["address.city", "role", "score"]


def test_create_index_twice_is_a_no_op(people: ferrumdb.FerrumDB) -> None:
    """Creating an existing index changes nothing."""
    people.create_index("role")
    people.create_index("role")
    assert people.indexes() == ["role"]
    assert people.find("role", "admin") == ["u1"]


def test_drop_index_removes_it_and_find_still_works(people: ferrumdb.FerrumDB) -> None:
    """After drop_index the field is no longer indexed, and find falls back to a scan."""
    people.create_index("role")
    people.drop_index("role")
    assert people.indexes() == []
    assert people.explain({"role": "admin"})["scan"] is True
    assert people.find("role", "admin") == ["u1"]


def test_index_recreated_after_drop_is_rebuilt(db: ferrumdb.FerrumDB) -> None:
    """Writes made while a field is not indexed are in the index when it is created again."""
    db.create_index("role")
    db["a"] = {"role": "admin"}
    db.drop_index("role")
    db["b"] = {"role": "admin"}
    del db["a"]
    db.create_index("role")
    assert db.find("role", "admin") == ["b"]
    assert db.explain({"role": "admin"})["estimated_rows"] == 1


def test_index_follows_clear(db: ferrumdb.FerrumDB) -> None:
    """clear() empties every index."""
    db.create_index("role")
    db["a"] = {"role": "admin"}
    db["b"] = {"role": "admin"}
    db.clear()
    assert db.find("role", "admin") == []
    assert db.explain({"role": "admin"})["estimated_rows"] == 0
    assert db.stats()["index_bytes"] == 0


def test_drop_index_of_unknown_field_is_a_no_op(db: ferrumdb.FerrumDB) -> None:
    """Dropping an index that does not exist does nothing."""
    db.drop_index("nope")
    assert db.indexes() == []


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a."])
def test_create_index_rejects_malformed_field(db: ferrumdb.FerrumDB, bad: str) -> None:
    """A field path with an empty segment is a ValueError, and no index is created."""
    with pytest.raises(ValueError):
        db.create_index(bad)
    assert db.indexes() == []


def test_index_follows_insert(db: ferrumdb.FerrumDB) -> None:
    """A document stored after the index exists is found through it."""
    db.create_index("role")
    db["a"] = {"role": "admin"}
    assert db.find("role", "admin") == ["a"]
    assert db.explain({"role": "admin"})["estimated_rows"] == 1


def test_index_follows_overwrite(db: ferrumdb.FerrumDB) -> None:
    """Overwriting a document moves its index entry from the old value to the new one."""
    db.create_index("role")
    db["a"] = {"role": "admin"}
    db["a"] = {"role": "user"}
    assert db.find("role", "admin") == []
    assert db.find("role", "user") == ["a"]
    assert db.explain({"role": "admin"})["estimated_rows"] == 0
    db["a"] = {"other": 1}
    assert db.find("role", "user") == []
    assert db.explain({"role": "user"})["estimated_rows"] == 0


def test_index_follows_delete(db: ferrumdb.FerrumDB) -> None:
    """Deleting a document removes it from the index."""
    db.create_index("role")
    db["a"] = {"role": "admin"}
    db["b"] = {"role": "admin"}
    del db["a"]
    assert db.delete("b") is True
    assert db.find("role", "admin") == []
    assert db.explain({"role": "admin"})["estimated_rows"] == 0


def test_index_follows_set_from_mapping_methods(db: ferrumdb.FerrumDB) -> None:
    """update(), pop() and set_json() keep the index exact like plain sets and deletes."""
    db.create_index("n")
    db.update({"a": {"n": 1}, "b": {"n": 2}})
    db.set_json("c", '{"n": 1}')
    db.pop("b")
    assert db.find("n", 1) == ["a", "c"]
    assert db.find("n", 2) == []


def test_index_drops_expired_documents(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """A document whose TTL passes disappears from find, query and the index from that instant."""
    tdb.create_index("role")
    tdb.set("short", {"role": "admin"}, ttl=5)
    tdb["kept"] = {"role": "admin"}
    assert tdb.find("role", "admin") == ["kept", "short"]
    clock.advance(4.999)
    assert tdb.find("role", "admin") == ["kept", "short"]
    clock.advance(0.001)
    assert tdb.find("role", "admin") == ["kept"]
    assert keys_of(tdb.query({"role": "admin"})) == ["kept"]
    assert tdb.explain({"role": "admin"})["estimated_rows"] == 1


def test_unindexed_query_skips_expired_documents(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """A scan does not return expired documents either."""
    tdb.set("short", {"n": 1}, ttl=1)
    tdb["kept"] = {"n": 1}
    clock.advance(1)
    assert keys_of(tdb.query({"n": 1})) == ["kept"]
    assert tdb.find("n", 1) == ["kept"]


def test_index_survives_compact(db: ferrumdb.FerrumDB) -> None:
    """compact() keeps every index exact, including for writes made after it."""
    db.create_index("role")
    for i in range(20):
        db[f"k{i:02d}"] = {"role": "admin" if i % 2 else "user"}
    for i in range(0, 20, 4):
        del db[f"k{i:02d}"]
    before = db.find("role", "user")
    db.compact()
    assert db.indexes() == ["role"]
    assert db.find("role", "user") == before == ["k02", "k06", "k10", "k14", "k18"]
    db["k02"] = {"role": "admin"}
    assert db.find("role", "user") == ["k06", "k10", "k14", "k18"]


def test_compact_drops_expired_documents_from_index(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """After expiry and compaction the index holds only live documents."""
    tdb.create_index("role")
    tdb.set("short", {"role": "admin"}, ttl=1)
    tdb["kept"] = {"role": "admin"}
    clock.advance(2)
    tdb.compact()
    assert tdb.find("role", "admin") == ["kept"]
    assert tdb.explain({"role": "admin"})["estimated_rows"] == 1


def test_index_definitions_survive_reopen(db_path: Path) -> None:
    """Indexes are remembered across reopen and hold the data written before closing."""
    with ferrumdb.open(db_path) as db:
        db.create_index("role")
        db.create_index("address.city")
        db["a"] = {"role": "admin", "address": {"city": "Oslo"}}
        db["b"] = {"role": "user"}
    with ferrumdb.open(db_path) as db:
        assert db.indexes() == ["address.city", "role"]
        assert db.explain({"role": "admin"})["index"] == "role"
        assert db.find("role", "admin") == ["a"]
        assert db.find("address.city", "Oslo") == ["a"]
        assert db.explain({"address.city": "Oslo"})["estimated_rows"] == 1


def test_drop_index_is_remembered_across_reopen(db_path: Path) -> None:
    """A dropped index stays dropped after reopen; the others stay."""
    with ferrumdb.open(db_path) as db:
        db.create_index("role")
        db.create_index("score")
        db.drop_index("role")
    with ferrumdb.open(db_path) as db:
        assert db.indexes() == ["score"]


def test_index_definitions_survive_compact_and_reopen(db_path: Path) -> None:
    """Index definitions are kept by compaction (they live in the file)."""
    with ferrumdb.open(db_path) as db:
        db.create_index("role")
        db["a"] = {"role": "admin"}
        db.compact()
    with ferrumdb.open(db_path) as db:
        assert db.indexes() == ["role"]
        assert db.find("role", "admin") == ["a"]


def test_stats_index_bytes_grows_with_an_index(people: ferrumdb.FerrumDB) -> None:
    """stats()['index_bytes'] is 0 without indexes, grows when one is created, and returns to 0 on drop."""
    assert people.stats()["index_bytes"] == 0
    people.create_index("role")
    one = people.stats()["index_bytes"]
    assert one > 0
    people.create_index("address.city")
    assert people.stats()["index_bytes"] > one
    people["u6"] = {"role": "admin"}
    assert people.stats()["index_bytes"] > one
    people.drop_index("role")
    people.drop_index("address.city")
    assert people.stats()["index_bytes"] == 0


# ---------------------------------------------------------------------------
# find
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role", "user"),
        ("score", 90),
        ("score", 55.5),
        ("address.city", "Oslo"),
        ("tags", "red"),
        ("tags", []),
        ("address", {"city": "Paris"}),
        ("name", "nobody"),
        ("role", None),
    ],
)
def test_find_same_keys_with_and_without_index(people: ferrumdb.FerrumDB, field: str, value: Any) -> None:
    """find() returns the same keys whether or not the field is indexed."""
    scanned = people.find(field, value)
    people.create_index(field)
    assert people.find(field, value) == scanned


def test_find_returns_keys_in_key_order(db: ferrumdb.FerrumDB) -> None:
    """find() lists matching keys sorted, indexed or not."""
    for k in ["m", "b", "z", "a"]:
        db[k] = {"x": 1}
    assert db.find("x", 1) == ["a", "b", "m", "z"]
    db.create_index("x")
    assert db.find("x", 1) == ["a", "b", "m", "z"]


@pytest.mark.parametrize("indexed", [False, True])
def test_find_matches_any_array_element(db: ferrumdb.FerrumDB, indexed: bool) -> None:
    """find("tags", "red") matches a document whose tags array contains "red"."""
    if indexed:
        db.create_index("tags")
    db["a"] = {"tags": ["red", "blue"]}
    db["b"] = {"tags": "red"}
    db["c"] = {"tags": ["blue"]}
    assert db.find("tags", "red") == ["a", "b"]
    assert db.find("tags", ["red", "blue"]) == ["a"]
    assert db.find("tags", ["blue", "red"]) == []


@pytest.mark.parametrize("indexed", [False, True])
def test_documents_without_the_field_are_absent(db: ferrumdb.FerrumDB, indexed: bool) -> None:
    """A document lacking the field matches no non-null value, and the index counts only documents that have it."""
    if indexed:
        db.create_index("city")
    db["a"] = {"city": "Oslo"}
    db["b"] = {"name": "no city"}
    db["c"] = 42
    assert db.find("city", "Oslo") == ["a"]
    assert keys_of(db.query({"city": {"$gte": ""}})) == ["a"]
    if indexed:
        assert db.explain({"city": {"$gte": ""}})["estimated_rows"] == 1


def test_find_on_nested_path_through_array_of_objects(db: ferrumdb.FerrumDB) -> None:
    """A dotted path enters arrays of objects element by element."""
    db["o1"] = {"items": [{"sku": 1}, {"sku": 2}]}
    db["o2"] = {"items": [{"sku": 3}]}
    assert db.find("items.sku", 2) == ["o1"]
    db.create_index("items.sku")
    assert db.find("items.sku", 2) == ["o1"]


def test_find_numbers_compare_by_value(db: ferrumdb.FerrumDB) -> None:
    """1 == 1.0 and 0 == -0.0, but never true, "1" or null; also through an index."""
    db["int"] = {"n": 1}
    db["float"] = {"n": 1.0}
    db["bool"] = {"n": True}
    db["str"] = {"n": "1"}
    db["zero"] = {"n": -0.0}
    for _ in range(2):
        assert db.find("n", 1) == ["float", "int"]
        assert db.find("n", 1.0) == ["float", "int"]
        assert db.find("n", True) == ["bool"]
        assert db.find("n", 0) == ["zero"]
        db.create_index("n")


def test_find_large_integers_exactly(db: ferrumdb.FerrumDB) -> None:
    """2**64-1 and the float 2.0**64 are different values, with or without an index."""
    db["u"] = {"n": 2**64 - 1}
    db["f"] = {"n": 2.0**64}
    db["i"] = {"n": -(2**63)}
    for _ in range(2):
        assert db.find("n", 2**64 - 1) == ["u"]
        assert db.find("n", 2.0**64) == ["f"]
        assert db.find("n", -(2**63)) == ["i"]
        db.create_index("n")


def test_find_rejects_malformed_field(db: ferrumdb.FerrumDB) -> None:
    """find() with an empty path segment raises ValueError."""
    with pytest.raises(ValueError):
        db.find("a..b", 1)


# ---------------------------------------------------------------------------
# query: operators (every test runs with and without indexes on the fields)
# ---------------------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["scan", "indexed"])
def qdb(request: pytest.FixtureRequest, db: ferrumdb.FerrumDB) -> ferrumdb.FerrumDB:
    """A database, with indexes on the fields the operator tests use when the param says so."""
    if request.param:
        for field in ["n", "s", "tags", "role", "a.b"]:
            db.create_index(field)
    return db


def test_query_returns_key_document_pairs_in_key_order(qdb: ferrumdb.FerrumDB) -> None:
    """query() gives (key, document) tuples, sorted by key when no sort is given."""
    qdb["b"] = {"role": "x", "n": 1}
    qdb["a"] = {"role": "x", "n": 2}
    assert qdb.query({"role": "x"}) == [("a", {"role": "x", "n": 2}), ("b", {"role": "x", "n": 1})]


def test_empty_filter_matches_every_document(qdb: ferrumdb.FerrumDB) -> None:
    """The filter {} matches all documents, scalars included."""
    qdb["a"] = {"n": 1}
    qdb["b"] = 5
    qdb["c"] = [1]
    assert keys_of(qdb.query({})) == ["a", "b", "c"]


def test_eq_literal_and_operator_are_the_same(qdb: ferrumdb.FerrumDB) -> None:
    """{"f": v} and {"f": {"$eq": v}} match the same documents."""
    qdb["a"] = {"role": "admin"}
    qdb["b"] = {"role": "user"}
    assert keys_of(qdb.query({"role": "admin"})) == ["a"]
    assert keys_of(qdb.query({"role": {"$eq": "admin"}})) == ["a"]


def test_eq_numbers_by_value_never_across_types(qdb: ferrumdb.FerrumDB) -> None:
    """1 == 1.0, and 1 matches neither true nor "1"."""
    qdb["i"] = {"n": 1}
    qdb["f"] = {"n": 1.0}
    qdb["t"] = {"n": True}
    qdb["s"] = {"n": "1"}
    assert keys_of(qdb.query({"n": 1})) == ["f", "i"]
    assert keys_of(qdb.query({"n": {"$eq": 1.0}})) == ["f", "i"]
    assert keys_of(qdb.query({"n": True})) == ["t"]


def test_eq_object_literal_ignores_field_order(qdb: ferrumdb.FerrumDB) -> None:
    """An object literal is whole-object equality, with field order ignored."""
    qdb["a"] = {"n": {"x": 1, "y": 2}}
    qdb["b"] = {"n": {"x": 1}}
    assert keys_of(qdb.query({"n": {"y": 2, "x": 1.0}})) == ["a"]
    assert keys_of(qdb.query({"n": {"x": 1}})) == ["b"]


def test_eq_on_array_field_matches_any_element_or_whole(qdb: ferrumdb.FerrumDB) -> None:
    """A filter on an array field matches if any element matches, or the whole array equals it."""
    qdb["a"] = {"tags": ["red", "blue"]}
    qdb["b"] = {"tags": ["green"]}
    assert keys_of(qdb.query({"tags": "blue"})) == ["a"]
    assert keys_of(qdb.query({"tags": ["green"]})) == ["b"]
    assert keys_of(qdb.query({"tags": "green"})) == ["b"]


def test_null_equality_matches_missing_field(qdb: ferrumdb.FerrumDB) -> None:
    """{"f": None} matches null and documents without f, but not falsy values."""
    qdb["null"] = {"role": None}
    qdb["missing"] = {"other": 1}
    qdb["zero"] = {"role": 0}
    qdb["empty"] = {"role": ""}
    assert keys_of(qdb.query({"role": None})) == ["missing", "null"]
    assert keys_of(qdb.query({"role": {"$in": [None, 0]}})) == ["missing", "null", "zero"]


def test_ne_matches_missing_fields(qdb: ferrumdb.FerrumDB) -> None:
    """$ne matches documents that lack the field."""
    qdb["a"] = {"role": "admin"}
    qdb["b"] = {"role": "user"}
    qdb["c"] = {}
    assert keys_of(qdb.query({"role": {"$ne": "admin"}})) == ["b", "c"]


def test_ne_rejects_array_containing_the_value(qdb: ferrumdb.FerrumDB) -> None:
    """$ne is the negation of equality over all elements: ["a", "b"] is not $ne "a"."""
    qdb["ab"] = {"tags": ["a", "b"]}
    qdb["c"] = {"tags": ["c"]}
    assert keys_of(qdb.query({"tags": {"$ne": "a"}})) == ["c"]


def test_ne_null_requires_a_non_null_value(qdb: ferrumdb.FerrumDB) -> None:
    """{"$ne": None} matches only documents where the field has a non-null value."""
    qdb["null"] = {"n": None}
    qdb["missing"] = {}
    qdb["zero"] = {"n": 0}
    assert keys_of(qdb.query({"n": {"$ne": None}})) == ["zero"]


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("$gt", ["f6", "i7"]),
        ("$gte", ["f6", "i5", "i7"]),
        ("$lt", ["f4", "i3"]),
        ("$lte", ["f4", "i3", "i5"]),
    ],
)
def test_range_operators_at_their_boundary(qdb: ferrumdb.FerrumDB, op: str, expected: list[str]) -> None:
    """$gt/$gte/$lt/$lte compare numbers by value and include or exclude the bound."""
    for k, v in [("i3", 3), ("f4", 4.5), ("i5", 5), ("f6", 6.0), ("i7", 7)]:
        qdb[k] = {"n": v}
    assert sorted(keys_of(qdb.query({"n": {op: 5.0}}))) == sorted(expected)


def test_ranges_never_cross_json_types(qdb: ferrumdb.FerrumDB) -> None:
    """A numeric range never matches strings, bools or null, and a string range never numbers."""
    qdb["num"] = {"n": 10}
    qdb["str"] = {"n": "zzz"}
    qdb["bool"] = {"n": True}
    qdb["null"] = {"n": None}
    qdb["missing"] = {}
    assert keys_of(qdb.query({"n": {"$gt": 5}})) == ["num"]
    assert keys_of(qdb.query({"n": {"$gt": 0, "$lt": 100}})) == ["num"]
    assert keys_of(qdb.query({"n": {"$lt": "zzzz"}})) == ["str"]
    assert keys_of(qdb.query({"n": {"$gte": False}})) == ["bool"]
    assert keys_of(qdb.query({"n": {"$gte": None}})) == ["null"]


def test_string_ranges_compare_by_code_point(qdb: ferrumdb.FerrumDB) -> None:
    """String ranges use code-point order, as Python's str comparison does."""
    for k, s in [("a", "apple"), ("B", "Banana"), ("c", "cherry"), ("e", "éclair")]:
        qdb[k] = {"s": s}
    assert keys_of(qdb.query({"s": {"$gte": "b", "$lt": "d"}})) == ["c"]
    assert keys_of(qdb.query({"s": {"$gt": "z"}})) == ["e"]
    assert keys_of(qdb.query({"s": {"$lt": "a"}})) == ["B"]


def test_range_conditions_may_hold_on_different_elements(qdb: ferrumdb.FerrumDB) -> None:
    """Each condition on an array field may be satisfied by a different element."""
    qdb["both"] = {"n": [10, 100]}
    qdb["high"] = {"n": 100}
    qdb["mid"] = {"n": 70}
    assert keys_of(qdb.query({"n": {"$gt": 50, "$lt": 90}})) == ["both", "mid"]


def test_in_matches_any_listed_value_and_array_elements(qdb: ferrumdb.FerrumDB) -> None:
    """$in matches when some reached value (or array element) equals a listed value."""
    qdb["a"] = {"tags": ["red", "blue"]}
    qdb["b"] = {"tags": "green"}
    qdb["c"] = {"tags": ["pink"]}
    qdb["d"] = {}
    assert keys_of(qdb.query({"tags": {"$in": ["blue", "green"]}})) == ["a", "b"]
    assert keys_of(qdb.query({"tags": {"$in": []}})) == []


def test_nin_matches_missing_fields(qdb: ferrumdb.FerrumDB) -> None:
    """$nin is the negation of $in: it matches missing fields, and [] matches everything."""
    qdb["a"] = {"role": "admin"}
    qdb["b"] = {"role": "user"}
    qdb["c"] = {}
    qdb["d"] = {"role": ["user", "guest"]}
    assert keys_of(qdb.query({"role": {"$nin": ["admin", "guest"]}})) == ["b", "c"]
    assert keys_of(qdb.query({"role": {"$nin": []}})) == ["a", "b", "c", "d"]


def test_exists(qdb: ferrumdb.FerrumDB) -> None:
    """$exists true matches any reached value, even null or []; false matches only missing fields."""
    qdb["null"] = {"n": None}
    qdb["empty"] = {"n": []}
    qdb["zero"] = {"n": 0}
    qdb["missing"] = {"m": 1}
    assert keys_of(qdb.query({"n": {"$exists": True}})) == ["empty", "null", "zero"]
    assert keys_of(qdb.query({"n": {"$exists": False}})) == ["missing"]


def test_dotted_paths_and_dead_ends(qdb: ferrumdb.FerrumDB) -> None:
    """Dotted paths reach nested values; a scalar on the way is a missing field."""
    qdb["obj"] = {"a": {"b": 1}}
    qdb["arr"] = {"a": [{"b": 2}, {"c": 3}]}
    qdb["scalar"] = {"a": 5}
    assert keys_of(qdb.query({"a.b": {"$gte": 1}})) == ["arr", "obj"]
    assert keys_of(qdb.query({"a.b": None})) == ["arr", "scalar"]
    assert keys_of(qdb.query({"a.b": {"$exists": False}})) == ["scalar"]


def test_numeric_path_segment_indexes_an_array(qdb: ferrumdb.FerrumDB) -> None:
    """A numeric segment ("tags.0") selects that array element."""
    qdb["a"] = {"tags": ["red", "blue"]}
    qdb["b"] = {"tags": ["blue", "red"]}
    assert keys_of(qdb.query({"tags.0": "red"})) == ["a"]
    assert keys_of(qdb.query({"tags.1": "red"})) == ["b"]


def test_implicit_and_of_fields(qdb: ferrumdb.FerrumDB) -> None:
    """Several fields in one filter must all match."""
    qdb["a"] = {"role": "admin", "n": 1}
    qdb["b"] = {"role": "admin", "n": 2}
    qdb["c"] = {"role": "user", "n": 1}
    assert keys_of(qdb.query({"role": "admin", "n": 1})) == ["a"]


def test_and_or(qdb: ferrumdb.FerrumDB) -> None:
    """$and needs every sub-filter, $or some, and they nest."""
    qdb["a"] = {"role": "admin", "n": 1}
    qdb["b"] = {"role": "user", "n": 2}
    qdb["c"] = {"role": "guest", "n": 3}
    assert keys_of(qdb.query({"$or": [{"role": "admin"}, {"n": {"$gte": 3}}]})) == ["a", "c"]
    assert keys_of(qdb.query({"$and": [{"n": {"$gte": 2}}, {"role": {"$ne": "guest"}}]})) == ["b"]
    nested = {"n": {"$lt": 3}, "$or": [{"role": "guest"}, {"$and": [{"role": "user"}, {"n": 2}]}]}
    assert keys_of(qdb.query(nested)) == ["b"]


def test_query_on_scalar_documents(qdb: ferrumdb.FerrumDB) -> None:
    """A non-object document has no fields: it matches $exists false, $ne and null, nothing else."""
    qdb["s"] = "hello"
    qdb["o"] = {"n": 1}
    assert keys_of(qdb.query({"n": {"$exists": False}})) == ["s"]
    assert keys_of(qdb.query({"n": {"$ne": 1}})) == ["s"]
    assert keys_of(qdb.query({"n": None})) == ["s"]
    assert keys_of(qdb.query({"n": {"$gte": 0}})) == ["o"]


# ---------------------------------------------------------------------------
# query: sort, limit, skip
# ---------------------------------------------------------------------------


@pytest.fixture
def scores(db: ferrumdb.FerrumDB) -> ferrumdb.FerrumDB:
    for key, doc in {
        "a": {"score": 3, "role": "user"},
        "b": {"score": 1, "role": "admin"},
        "c": {"score": 2, "role": "user"},
        "d": {"score": 2, "role": "admin"},
        "e": {"role": "guest"},
    }.items():
        db[key] = doc
    return db


def test_sort_ascending_by_field(scores: ferrumdb.FerrumDB) -> None:
    """sort="field" orders ascending; a missing field sorts as null, first; ties by key."""
    assert keys_of(scores.query({}, sort="score")) == ["e", "b", "c", "d", "a"]


def test_sort_descending_by_minus_field(scores: ferrumdb.FerrumDB) -> None:
    """sort="-field" orders descending; a missing field sorts last; ties still by key ascending."""
    assert keys_of(scores.query({}, sort="-score")) == ["a", "c", "d", "b", "e"]


def test_sort_by_list_of_pairs(scores: ferrumdb.FerrumDB) -> None:
    """sort=[("field", 1), ("other", -1)] sorts by each field in turn."""
    assert keys_of(scores.query({}, sort=[("role", 1), ("score", -1)])) == ["d", "b", "e", "a", "c"]
    assert keys_of(scores.query({}, sort=[["role", -1], ["score", 1]])) == ["c", "a", "e", "b", "d"]
    assert keys_of(scores.query({}, sort=["role", "-score"])) == ["d", "b", "e", "a", "c"]


def test_sort_across_types_follows_type_order(db: ferrumdb.FerrumDB) -> None:
    """Mixed types sort null < bool < number < string < array < object."""
    # [[1]] sorts by its element [1], an array (nested arrays are not entered).
    values = {"n": None, "b": False, "i": 7, "s": "x", "l": [[1]], "o": {"k": 1}}
    for k, v in values.items():
        db[k] = {"v": v}
    assert keys_of(db.query({}, sort="v")) == ["n", "b", "i", "s", "l", "o"]
    assert keys_of(db.query({}, sort="-v")) == ["o", "l", "s", "i", "b", "n"]


def test_sort_by_array_uses_smallest_or_largest_element(db: ferrumdb.FerrumDB) -> None:
    """An array sorts by its smallest element ascending and its largest descending."""
    db["a"] = {"t": [3, 1]}
    db["b"] = {"t": 2}
    db["c"] = {"t": [5, 0]}
    assert keys_of(db.query({}, sort="t")) == ["c", "a", "b"]
    assert keys_of(db.query({}, sort="-t")) == ["c", "a", "b"]
    db["c"] = {"t": [2.5, 0.5]}
    assert keys_of(db.query({}, sort="-t")) == ["a", "c", "b"]


def test_sort_with_filter_and_index(scores: ferrumdb.FerrumDB) -> None:
    """Sorting applies to the filtered rows, the same with an index."""
    want = keys_of(scores.query({"role": {"$in": ["user", "admin"]}}, sort="-score"))
    assert want == ["a", "c", "d", "b"]
    scores.create_index("role")
    assert keys_of(scores.query({"role": {"$in": ["user", "admin"]}}, sort="-score")) == want


def test_limit_and_skip_page_through_results(scores: ferrumdb.FerrumDB) -> None:
    """skip drops the first rows and limit caps the count, after sorting."""
    assert keys_of(scores.query({}, sort="score", limit=2)) == ["e", "b"]
    assert keys_of(scores.query({}, sort="score", skip=2, limit=2)) == ["c", "d"]
    assert keys_of(scores.query({}, sort="score", skip=4)) == ["a"]
    assert keys_of(scores.query({}, skip=1, limit=2)) == ["b", "c"]
    assert scores.query({}, skip=10) == []
    assert scores.query({}, limit=0) == []


def test_limit_and_skip_with_index_plan(scores: ferrumdb.FerrumDB) -> None:
    """limit/skip give the same rows through an index as through a scan."""
    scanned = keys_of(scores.query({"score": {"$gte": 1}}, skip=1, limit=2))
    scores.create_index("score")
    assert scores.explain({"score": {"$gte": 1}})["index"] == "score"
    assert keys_of(scores.query({"score": {"$gte": 1}}, skip=1, limit=2)) == scanned == ["b", "c"]


def test_negative_limit_or_skip_is_value_error(db: ferrumdb.FerrumDB) -> None:
    """A negative limit or skip raises ValueError naming the argument."""
    db["a"] = {"n": 1}
    with pytest.raises(ValueError, match="limit"):
        db.query({}, limit=-1)
    with pytest.raises(ValueError, match="skip"):
        db.query({}, skip=-1)


# ---------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------


def test_explain_without_index_is_a_scan(people: ferrumdb.FerrumDB) -> None:
    """Without a usable index the plan is a scan estimated at the number of documents."""
    plan = people.explain({"role": "admin"})
    assert {"index", "scan", "estimated_rows"} <= plan.keys()
    assert plan["index"] is None and plan["scan"] is True and plan["estimated_rows"] == 5


@pytest.mark.parametrize(
    ("flt", "rows"),
    [
        ({"score": 90}, 1),
        ({"score": {"$eq": 70}}, 1),
        ({"score": {"$in": [90, 70, 1]}}, 2),
        ({"score": {"$gte": 60}}, 2),
        ({"score": {"$lt": 60}}, 1),
        ({"score": {"$gt": 50, "$lte": 90}}, 3),
        ({"score": {"$gt": "a"}}, 1),
        ({"$and": [{"score": 90}, {"name": "ann"}]}, 1),
    ],
)
def test_explain_uses_index_for_equality_in_and_ranges(
    people: ferrumdb.FerrumDB, flt: dict[str, Any], rows: int
) -> None:
    """Equality, $in and range conditions on an indexed field probe the index."""
    people.create_index("score")
    plan = people.explain(flt)
    assert plan["index"] == "score" and plan["scan"] is False
    assert plan["estimated_rows"] == rows
    assert len(people.query(flt)) <= rows


@pytest.mark.parametrize(
    "flt",
    [
        {"score": {"$ne": 90}},
        {"score": {"$nin": [90]}},
        {"score": {"$exists": True}},
        {"score": None},
        {"score": {"$in": [None, 90]}},
        {"$or": [{"score": 90}, {"score": 70}]},
        {"name": "ann"},
    ],
)
def test_explain_scans_when_no_index_can_answer(people: ferrumdb.FerrumDB, flt: dict[str, Any]) -> None:
    """$ne, $nin, $exists, null equality, $or and unindexed fields fall back to a scan."""
    people.create_index("score")
    plan = people.explain(flt)
    assert plan["index"] is None and plan["scan"] is True and plan["estimated_rows"] == 5


def test_explain_prefers_equality_over_range(people: ferrumdb.FerrumDB) -> None:
    """With equality on one indexed field and a range on another, equality is chosen."""
    people.create_index("score")
    people.create_index("role")
    assert people.explain({"score": {"$gt": 0}, "role": "admin"})["index"] == "role"


def test_explain_does_not_read_or_change_results(people: ferrumdb.FerrumDB) -> None:
    """explain() returns a plan dict and leaves the data as it was."""
    people.create_index("role")
    before = people.query({})
    assert isinstance(people.explain({"role": "user"}), dict)
    assert people.query({}) == before


# ---------------------------------------------------------------------------
# Malformed filters, sort specs and values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flt", "part"),
    [
        ({"score": {"$bogus": 1}}, "filter.score.$bogus"),
        ({"score": {"$gt": 1, "$regex": "a("}}, "filter.score.$regex"),
        ({"score": {"$regex": "a", "$options": "z"}}, "filter.score.$options"),
        ({"score": {"$not": 5}}, "filter.score.$not"),
        ({"score": {"$size": -1}}, "filter.score.$size"),
        ({"tags": {"$all": "red"}}, "filter.tags.$all"),
        ({"tags": {"$elemMatch": 3}}, "filter.tags.$elemMatch"),
        ({"tags": {"$in": "red"}}, "filter.tags.$in"),
        ({"tags": {"$nin": 3}}, "filter.tags.$nin"),
        ({"a": {"$exists": 1}}, "filter.a.$exists"),
        ({"$and": []}, "filter.$and"),
        ({"$or": {"a": 1}}, "filter.$or"),
        ({"$and": [{"a": 1}, 5]}, "filter.$and[1]"),
        ({"$or": [{"b": {"$in": 3}}]}, "filter.$or[0].b.$in"),
        ({"$nor": []}, "filter.$nor"),
        ({"$where": "1"}, "filter.$where"),
        ({"score": {"$gt": 1, "plain": 2}}, "filter.score"),
        ({"a..b": 1}, "filter.a..b"),
    ],
)
def test_malformed_filter_is_value_error_naming_the_part(db: ferrumdb.FerrumDB, flt: dict[str, Any], part: str) -> None:
    """A malformed filter raises ValueError whose message names the offending part."""
    with pytest.raises(ValueError, match=re.escape(part)):
        db.query(flt)
    with pytest.raises(ValueError):
        db.explain(flt)


def test_unknown_operator_message_lists_supported_ones(db: ferrumdb.FerrumDB) -> None:
    """The unknown-operator error says which operators are supported."""
    with pytest.raises(ValueError, match=r"\$exists"):
        db.query({"score": {"$bogus": 1}})


@pytest.mark.parametrize("flt", [[{"a": 1}], "a", 1, ("a", 1)])
def test_non_dict_filter_is_type_error(db: ferrumdb.FerrumDB, flt: Any) -> None:
    """A filter that is not a dict raises TypeError, for query and explain."""
    with pytest.raises(TypeError, match="filter"):
        db.query(flt)
    with pytest.raises(TypeError, match="filter"):
        db.explain(flt)


def test_a_none_filter_means_every_document_for_query_only(db: ferrumdb.FerrumDB) -> None:
    """query(None) is query({}) (SPEC: filter=None); explain still needs a dict."""
    db["a"] = {"x": 1}
    assert db.query(None) == db.query() == [("a", {"x": 1})]
    with pytest.raises(TypeError, match="filter"):
        db.explain(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sort", "part"),
    [
        (5, "sort"),
        ({"score": 1}, "sort"),
        ("", "sort"),
        ("-", "sort"),
        ([("score", 2)], r"sort\[0\]\[1\]"),
        ([("score", "asc")], r"sort\[0\]\[1\]"),
        ([(1, 1)], r"sort\[0\]\[0\]"),
        ([("score",)], r"sort\[0\]"),
        (["score", 1], r"sort\[1\]"),
    ],
)
def test_bad_sort_is_value_error_naming_the_part(db: ferrumdb.FerrumDB, sort: Any, part: str) -> None:
    """A malformed sort raises ValueError naming the offending part of it."""
    db["a"] = {"score": 1}
    with pytest.raises(ValueError, match=part):
        db.query({}, sort=sort)


@pytest.mark.parametrize(
    "value",
    [{1, 2}, frozenset({1}), b"red", float("nan"), float("inf"), 2**70, object()],
    ids=["set", "frozenset", "bytes", "nan", "inf", "huge-int", "object"],
)
def test_unconvertible_filter_value_is_rejected(db: ferrumdb.FerrumDB, value: Any) -> None:
    """A filter value that is not JSON raises TypeError or ValueError instead of matching something."""
    db["a"] = {"x": None}
    db["b"] = {}
    for flt in [{"x": value}, {"x": {"$in": [1, value]}}, {"$or": [{"x": {"$ne": value}}]}]:
        with pytest.raises((TypeError, ValueError)):
            db.query(flt)
        with pytest.raises((TypeError, ValueError)):
            db.explain(flt)
    with pytest.raises((TypeError, ValueError)):
        db.find("x", value)


def test_set_in_filter_is_type_error_naming_the_place(db: ferrumdb.FerrumDB) -> None:
    """A set inside a filter is a TypeError that names where it is and suggests list()."""
    with pytest.raises(TypeError, match=r"set.*tags.*\$in|tags.*\$in.*set"):
        db.query({"tags": {"$in": {"red", "blue"}}})


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda db: db.query({"tags": {"$in": [1, {2}]}}),
            TypeError,
            'cannot use value of type set at filter.tags["$in"][1]: convert it first, e.g. list(value)',
        ),
        (
            lambda db: db.query({"n": 2**70}),
            ValueError,
            "cannot use int 1180591620717411303424 at filter.n: out of range, JSON integers here "
            "must be between -2**63 and 2**64-1; store it as str(value)",
        ),
        (
            lambda db: db.query({"a b": {1: 2}}),
            TypeError,
            'cannot use dict key 1 of type int at filter["a b"]: JSON object keys must be str; '
            "convert it first, e.g. str(key)",
        ),
        (
            lambda db: db.find("x", float("nan")),
            ValueError,
            "cannot use float nan at value: JSON has no NaN/Infinity",
        ),
        (
            lambda db: db.query({}, sort=[("x", b"1")]),
            TypeError,
            "cannot use value of type bytes at sort[0][1]: decode or base64-encode it first",
        ),
    ],
    ids=["set-in-list", "huge-int", "int-key", "nan-find-value", "bytes-in-sort"],
)
def test_argument_conversion_messages(
    db: ferrumdb.FerrumDB, call: Any, error: type[Exception], message: str
) -> None:
    """Query arguments follow the stored-value rules, with messages naming the argument and place."""
    with pytest.raises(error) as info:
        call(db)
    assert str(info.value) == message


def test_non_str_filter_key_is_type_error(db: ferrumdb.FerrumDB) -> None:
    """A filter dict with a non-str key raises TypeError."""
    with pytest.raises(TypeError):
        db.query({1: 2})  # type: ignore[dict-item]


def test_tuple_in_filter_is_a_list(db: ferrumdb.FerrumDB) -> None:
    """Tuples in a filter count as lists, as when storing values."""
    db["a"] = {"tags": ["red", "blue"], "n": 1}
    assert keys_of(db.query({"tags": ("red", "blue")})) == ["a"]
    assert keys_of(db.query({"n": {"$in": (1, 2)}})) == ["a"]
    assert db.find("tags", ("red", "blue")) == ["a"]


# ---------------------------------------------------------------------------
# Closed and read-only handles
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("create_index", ("role",)),
        ("drop_index", ("role",)),
        ("indexes", ()),
        ("find", ("role", "admin")),
        ("query", ({"role": "admin"},)),
        ("explain", ({"role": "admin"},)),
    ],
)
def test_calls_on_closed_database_raise_closed_error(db_path: Path, method: str, args: tuple[Any, ...]) -> None:
    """Every document call on a closed handle raises ClosedError."""
    db = ferrumdb.open(db_path)
    db.create_index("role")
    db.close()
    with pytest.raises(ferrumdb.ClosedError):
        getattr(db, method)(*args)


def test_read_only_handle_can_query_find_and_explain(db_path: Path) -> None:
    """A read-only handle loads the stored indexes and answers find, query and explain."""
    with ferrumdb.open(db_path) as db:
        db.create_index("role")
        db["a"] = {"role": "admin"}
        db["b"] = {"role": "user"}
    with ferrumdb.open(db_path, read_only=True) as ro:
        assert ro.indexes() == ["role"]
        assert ro.find("role", "admin") == ["a"]
        assert ro.query({"role": {"$ne": "admin"}}) == [("b", {"role": "user"})]
        assert ro.explain({"role": "admin"})["index"] == "role"


def test_read_only_handle_cannot_create_or_drop_index(db_path: Path) -> None:
    """create_index and drop_index on a read-only handle raise ReadOnlyError and change nothing."""
    with ferrumdb.open(db_path) as db:
        db.create_index("role")
    with ferrumdb.open(db_path, read_only=True) as ro:
        with pytest.raises(ferrumdb.ReadOnlyError):
            ro.create_index("score")
        with pytest.raises(ferrumdb.ReadOnlyError):
            ro.drop_index("role")
        assert ro.indexes() == ["role"]
    with ferrumdb.open(db_path) as db:
        assert db.indexes() == ["role"]


def test_memory_database_supports_indexes(tmp_path: Path) -> None:
    """":memory:" databases index and query like file ones."""
    with ferrumdb.open(":memory:") as db:
        db.create_index("role")
        db["a"] = {"role": "admin"}
        assert db.find("role", "admin") == ["a"]
        assert db.explain({"role": "admin"})["index"] == "role"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [5, None, b"role", ["role"]])
def test_field_of_wrong_type_is_type_error(db: ferrumdb.FerrumDB, bad: Any) -> None:
    """create_index, drop_index and find take the field as a str; anything else is TypeError and changes nothing."""
    db["k"] = {"role": "admin"}
    for call in (lambda: db.create_index(bad), lambda: db.drop_index(bad), lambda: db.find(bad, "admin")):
        with pytest.raises(TypeError):
            call()
    assert db.indexes() == []


def test_malformed_field_path_is_value_error(db: ferrumdb.FerrumDB) -> None:
    """An empty field path, or one with an empty segment, raises ValueError and creates no index."""
    for bad in ("", "a..b", "."):
        with pytest.raises(ValueError):
            db.create_index(bad)
    assert db.indexes() == []


def test_bad_regex_is_value_error_quoting_the_pattern(db: ferrumdb.FerrumDB) -> None:
    """A $regex that does not compile raises ValueError naming the pattern, before any document is read."""
    db["a"] = {"name": "x"}
    with pytest.raises(ValueError, match=re.escape('"(unclosed"')):
        db.query({"name": {"$regex": "(unclosed"}})


def test_new_operators_documented_examples(db: ferrumdb.FerrumDB) -> None:
    """$regex with $options, $not, $size, $all, $elemMatch and $nor behave as in MongoDB."""
    db["ann"] = {"name": "Ann", "tags": ["a", "b"], "scores": [10, 100], "items": [{"sku": 1, "qty": 5}]}
    db["bob"] = {"name": "bob", "tags": ["b"], "scores": [60], "items": [{"sku": 1, "qty": 1}, {"sku": 2, "qty": 9}]}
    db["cid"] = {"name": "Cid"}
    keys = lambda flt: [k for k, _ in db.query(flt)]  # noqa: E731
    assert keys({"name": {"$regex": "^[ab]", "$options": "i"}}) == ["ann", "bob"]
    assert keys({"name": {"$regex": "^[ab]"}}) == ["bob"]
    assert keys({"tags": {"$not": {"$eq": "a"}}}) == ["bob", "cid"]
    assert keys({"tags": {"$size": 1}}) == ["bob"]
    assert keys({"tags": {"$all": ["b", "a"]}}) == ["ann"]
    assert keys({"scores": {"$elemMatch": {"$gt": 50, "$lt": 90}}}) == ["bob"]
    assert keys({"scores": {"$gt": 50, "$lt": 90}}) == ["ann", "bob"]
    assert keys({"items": {"$elemMatch": {"sku": 1, "qty": {"$gt": 3}}}}) == ["ann"]
    assert keys({"$nor": [{"name": "Ann"}, {"tags": "b"}]}) == ["cid"]
