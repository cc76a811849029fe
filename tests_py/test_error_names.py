"""Errors speak the user's names: the classes a user meets report as ``ferrumdb.X`` (never
``ferrumdb._native.X``), argument errors name ``FerrumDB.method()``, and a bad sort, projection or
index field is called that, not a filter (issue 14, "First hour")."""

from __future__ import annotations

import pickle
from typing import Any, Callable

import pytest

import ferrumdb


@pytest.fixture
def mem() -> Any:
    db = ferrumdb.open(":memory:")
    db["a"] = {"x": 1}
    yield db
    db.close()


def message(call: Callable[[], object]) -> str:
    with pytest.raises(Exception) as info:
        call()
    return str(info.value)


def test_native_classes_report_as_ferrumdb(mem: Any) -> None:
    with mem.watch() as watch:
        objects = [mem.scan(), watch, ferrumdb.ManualClock(), ferrumdb.Transaction()]
        names = [repr(type(o)) for o in objects]
    assert names == [
        "<class 'ferrumdb.ScanIterator'>",
        "<class 'ferrumdb.WatchIterator'>",
        "<class 'ferrumdb.ManualClock'>",
        "<class 'ferrumdb.Transaction'>",
    ]
    native_base = type(mem).__mro__[1]
    assert repr(native_base) == "<class 'ferrumdb.FerrumDB'>"


@pytest.mark.parametrize("make", ["scan", "clock", "transaction"])
def test_refusals_name_the_public_class(mem: Any, make: str) -> None:
    obj = {"scan": mem.scan, "clock": ferrumdb.ManualClock, "transaction": ferrumdb.Transaction}[make]()
    text = message(lambda: pickle.dumps(obj))
    assert "ferrumdb." in text and "_native" not in text


@pytest.mark.parametrize(
    "call",
    [
        lambda db: db.query({"x": 1}, bogus=1),
        lambda db: db.get(),
        lambda db: db.distinct(),
        lambda db: db.update_one("a"),
    ],
)
def test_argument_errors_name_ferrumdb_methods(mem: Any, call: Callable[[Any], object]) -> None:
    text = message(lambda: call(mem))
    assert text.startswith("FerrumDB."), text
    assert "Database" not in text


def test_a_transaction_given_something_else_names_ferrumdb() -> None:
    assert message(lambda: ferrumdb.Transaction(5)) == "'int' object is not an instance of 'FerrumDB'"


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda db: db.query({}, sort=5), 'invalid sort: expected "field", "-field"'),
        (lambda db: db.query({}, sort="-"), "invalid sort: a field path must not be empty"),
        (lambda db: db.query({}, sort=[("x", 2)]), "invalid sort at sort[0][1]: direction must be 1 or -1"),
        (lambda db: db.query({}, fields=[1]), "invalid fields at fields[0]: expected a dotted path string"),
        (lambda db: db.create_index("a..b"), 'invalid field "a..b": segment 2 is empty'),
        (lambda db: db.query({"x": {"$bogus": 1}}), "invalid filter at filter.x.$bogus: unknown operator"),
    ],
)
def test_query_parts_are_named_for_what_they_are(mem: Any, call: Callable[[Any], object], expected: str) -> None:
    with pytest.raises(ValueError) as info:
        call(mem)
    assert str(info.value).startswith(expected), str(info.value)
