"""Documents beyond ``query(filter)``: ``prefix=``, ``fields=``, ``count(filter)``, ``distinct`` and ``find``'s guard.

The rules are the ones documented in ``rust/documents/docs.rs`` (``query_with``,
``count``, ``distinct``) and ``rust/query/project.rs`` (``Projection``); the
hypothesis comparison with a reference model is in ``test_query_properties.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

import ferrumdb


@pytest.fixture(params=[False, True], ids=["scan", "indexed"])
def orders(request: pytest.FixtureRequest, db: ferrumdb.FerrumDB) -> ferrumdb.FerrumDB:
    """Orders and users in one database, with indexes when the param says so."""
    if request.param:
        db.create_index("status")
        db.create_index("total")
    db["order:1"] = {"status": "new", "total": 5, "tags": ["a", "b"], "who": {"name": "ann", "age": 3}}
    db["order:2"] = {"status": "paid", "total": 9, "tags": ["b"], "who": {"name": "bob"}}
    db["order:3"] = {"status": "new", "total": 1, "tags": [], "who": 7}
    db["user:1"] = {"status": "new", "total": 1}
    db["zzz"] = {"other": True}
    return db


def test_query_without_filter_returns_everything(orders: ferrumdb.FerrumDB) -> None:
    """query() and query(None) return every document in key order."""
    assert [k for k, _ in orders.query()] == ["order:1", "order:2", "order:3", "user:1", "zzz"]
    assert orders.query(None) == orders.query({})


def test_prefix_keeps_one_collection(orders: ferrumdb.FerrumDB) -> None:
    """prefix= keeps keys starting with it, also with an index probe, sort and limit."""
    assert [k for k, _ in orders.query(prefix="order:")] == ["order:1", "order:2", "order:3"]
    assert [k for k, _ in orders.query({"status": "new"}, prefix="order:")] == ["order:1", "order:3"]
    assert [k for k, _ in orders.query({"total": {"$gte": 1}}, prefix="user:", sort="-total", limit=1)] == ["user:1"]
    assert orders.query(prefix="nothing:") == []


def test_fields_project_dotted_paths(orders: ferrumdb.FerrumDB) -> None:
    """fields= keeps only those paths; nested paths rebuild objects; missing paths are omitted."""
    rows = orders.query({"status": "new"}, prefix="order:", fields=["total", "who.name"], sort="-total")
    assert rows == [("order:1", {"total": 5, "who": {"name": "ann"}}), ("order:3", {"total": 1})]
    assert orders.query(prefix="zzz", fields=("nope",)) == [("zzz", {})]
    assert orders.query(prefix="order:2", fields=["who.age"]) == [("order:2", {"who": {}})]
    assert orders["order:1"]["who"]["age"] == 3, "the stored document is untouched"


def test_fields_must_be_a_list_of_paths(orders: ferrumdb.FerrumDB) -> None:
    """A str, a non-str item or an empty segment is refused before anything is read."""
    with pytest.raises(TypeError, match="list of dotted paths"):
        orders.query(fields="total")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"fields\[1\]"):
        orders.query(fields=["total", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"fields\[0\]"):
        orders.query(fields=["a..b"])


def test_count(orders: ferrumdb.FerrumDB) -> None:
    """count(filter, prefix=) counts matches; count() stays len(db)."""
    assert orders.count() == len(orders) == 5
    assert orders.count(prefix="order:") == 3
    assert orders.count({"status": "new"}) == 3
    assert orders.count({"status": "new"}, prefix="order:") == 2
    assert orders.count({"total": {"$gt": 1}}) == 2
    assert orders.count({"tags": {"$size": 0}}) == 1
    with pytest.raises(ValueError, match=r"filter\.status\.\$bogus"):
        orders.count({"status": {"$bogus": 1}})


def test_count_on_an_indexed_equality_reads_no_document(db: ferrumdb.FerrumDB) -> None:
    """With an index, count({field: value}) answers from the index: the gets counter does not move."""
    db.create_index("status")
    for i in range(20):
        db[f"k{i:02d}"] = {"status": "new" if i % 3 else "old"}
    before = db.stats()["gets"]
    assert db.count({"status": "old"}) == 7
    assert db.count({"status": {"$in": ["old", "new"]}}) == 20
    assert db.stats()["gets"] == before
    assert db.count({"status": "old", "x": None}) == 7
    assert db.stats()["gets"] > before, "a residual condition reads the documents"


def test_distinct(orders: ferrumdb.FerrumDB) -> None:
    """distinct lists each value once in sort order; arrays count by element; missing adds nothing."""
    assert orders.distinct("status") == ["new", "paid"]
    assert orders.distinct("tags") == ["a", "b"]
    assert orders.distinct("total", {"status": "new"}) == [1, 5]
    assert orders.distinct("status", prefix="user:") == ["new"]
    assert orders.distinct("who") == [7, {"name": "ann", "age": 3}, {"name": "bob"}]
    assert orders.distinct("nope") == []


def test_distinct_mixed_types_follow_the_sort_order(db: ferrumdb.FerrumDB) -> None:
    """null < bool < numbers < strings < arrays < objects; 1 and 1.0 are one value."""
    for i, v in enumerate([{"x": 1}, "b", 2, True, None, 1.0, 1, [[1]], "a"]):
        db[f"k{i}"] = {"v": v}
    assert db.distinct("v") == [None, True, 1.0, 2, "a", "b", [1], {"x": 1}]


@pytest.mark.parametrize("value", [{"$gt": 3}, {"$in": [1, 2]}, {"$regex": "a", "x": 1}])
def test_find_with_an_operator_dict_points_to_query(orders: ferrumdb.FerrumDB, value: Any) -> None:
    """find(field, {"$gt": 3}) raises ValueError naming query() instead of silently returning []."""
    with pytest.raises(ValueError, match=r"query\("):
        orders.find("total", value)


def test_find_with_a_plain_object_is_still_equality(orders: ferrumdb.FerrumDB) -> None:
    """An object value without $-keys compares whole documents, as before."""
    assert orders.find("who", {"name": "bob"}) == ["order:2"]
