"""Value and key rules (README "Use it from Python"): what is stored, what is refused, and that a refusal writes nothing."""

from __future__ import annotations

import datetime
import json
import math
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

# -- accepted values round-trip ------------------------------------------------

_ROUND_TRIP = [
    pytest.param({"name": "alice", "age": 30}, id="dict"),
    pytest.param([1, "two", 3.0, None], id="list"),
    pytest.param("héllo \U0001f600 \"quoted\" \\ \n\t\x00", id="str"),
    pytest.param("", id="empty-str"),
    pytest.param(0, id="zero"),
    pytest.param(-(2**63), id="i64-min"),
    pytest.param(2**63 - 1, id="i64-max"),
    pytest.param(2**63, id="u64-above-i64"),
    pytest.param(2**64 - 1, id="u64-max"),
    pytest.param(1.5, id="float"),
    pytest.param(0.1, id="float-0.1"),
    pytest.param(-0.0, id="negative-zero"),
    pytest.param(1.7976931348623157e308, id="float-max"),
    pytest.param(5e-324, id="float-min-subnormal"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(None, id="none"),
    pytest.param({}, id="empty-dict"),
    pytest.param([], id="empty-list"),
    pytest.param({"a": [{"b": {"c": [1, [2, [3, {"d": None}]]]}}], "e": {"f": True}}, id="nested"),
    pytest.param({"key with spaces": 1, "": 2, "ü": 3}, id="odd-dict-keys"),
]


@pytest.mark.parametrize("value", _ROUND_TRIP)
def test_value_round_trips(db: ferrumdb.FerrumDB, value: Any) -> None:
    """Every accepted value comes back equal and of the same types."""
    db["k"] = value
    got = db["k"]
    assert got == value
    assert json.dumps(got) == json.dumps(value)  # same types all the way down (1 vs 1.0, True vs 1)


@pytest.mark.parametrize("value", _ROUND_TRIP)
def test_value_round_trips_through_reopen(db_path: Path, value: Any) -> None:
    """An accepted value reads back equal after the database is reopened."""
    with ferrumdb.open(db_path) as db:
        db["k"] = value
    with ferrumdb.open(db_path) as db:
        assert json.dumps(db["k"]) == json.dumps(value)


def test_negative_zero_keeps_sign(db: ferrumdb.FerrumDB) -> None:
    """-0.0 comes back as -0.0."""
    db["k"] = -0.0
    assert math.copysign(1.0, db["k"]) == -1.0


def test_float_round_trips_exactly(db: ferrumdb.FerrumDB) -> None:
    """Floats whose shortest repr has 17 digits come back bit for bit (correctly rounded read)."""
    values = [2.7715077941825975e-163, 2.2790121708605243e274, 4.026380313612261e293, -2.9205048131065683e-196]
    db["k"] = values
    assert db["k"] == values


def test_random_float_bit_patterns_round_trip(db: ferrumdb.FerrumDB) -> None:
    """Every finite double, drawn as random bit patterns, comes back bit for bit."""
    rng = random.Random(20240101)
    doubles = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(20000)]
    finite = [f for f in doubles if math.isfinite(f)]
    db["k"] = finite
    assert [struct.pack("<d", f) for f in db["k"]] == [struct.pack("<d", f) for f in finite]


def test_tuple_comes_back_as_list(db: ferrumdb.FerrumDB) -> None:
    """A tuple is stored as a JSON array and comes back as a list."""
    db["k"] = (1, (2, 3), {"t": ()})
    assert db["k"] == [1, [2, 3], {"t": []}]
    assert type(db["k"]) is list


def test_dict_order_is_kept(db: ferrumdb.FerrumDB) -> None:
    """A dict comes back with its keys in the order they were stored."""
    db["k"] = {"z": 1, "a": 2, "m": 3}
    assert list(db["k"]) == ["z", "a", "m"]


def test_shared_subvalue_is_not_a_cycle(db: ferrumdb.FerrumDB) -> None:
    """The same list appearing twice (not inside itself) is stored twice."""
    shared = [1, 2]
    db["k"] = {"a": shared, "b": shared}
    assert db["k"] == {"a": [1, 2], "b": [1, 2]}


def test_key_of_exactly_64_kib_accepted(db: ferrumdb.FerrumDB) -> None:
    """A key of exactly 64 KiB of UTF-8 is accepted."""
    key = "k" * (64 * 1024)
    db[key] = 1
    assert db[key] == 1


# -- refused values: type, path, and nothing written -------------------------------


def _cycle_list() -> list[Any]:
    c: list[Any] = [1]
    c.append(c)
    return c


def _cycle_dict() -> dict[str, Any]:
    d: dict[str, Any] = {"a": 1}
    d["self"] = {"inner": d}
    return d


# (id, builder, exception, text that must appear in the message: the path and/or a hint)
_REFUSED: list[tuple[str, Callable[[], Any], type[Exception], list[str]]] = [
    ("set", lambda: {1, 2}, TypeError, ["$", "set", "list("]),
    ("frozenset", lambda: frozenset([1]), TypeError, ["$", "list("]),
    ("bytes", lambda: b"abc", TypeError, ["$", "bytes", "decode"]),
    ("bytearray", lambda: bytearray(b"abc"), TypeError, ["$", "decode"]),
    ("datetime", lambda: datetime.datetime(2024, 1, 2, 3, 4, 5), TypeError, ["$", "datetime", "isoformat"]),
    ("date", lambda: datetime.date(2024, 1, 2), TypeError, ["$", "isoformat"]),
    ("nan", lambda: float("nan"), ValueError, ["$", "nan"]),
    ("inf", lambda: float("inf"), ValueError, ["$", "inf"]),
    ("-inf", lambda: float("-inf"), ValueError, ["$", "inf"]),
    ("non-str-dict-key", lambda: {1: "one"}, TypeError, ["$", "str"]),
    ("tuple-dict-key", lambda: {("a",): 1}, TypeError, ["$"]),
    ("cycle-list", _cycle_list, ValueError, ["$[1]", "circular"]),
    ("cycle-dict", _cycle_dict, ValueError, ["$.self.inner", "circular"]),
    ("int-2**64", lambda: 2**64, ValueError, ["$", "18446744073709551616"]),
    ("int-below-i64", lambda: -(2**63) - 1, ValueError, ["$"]),
    ("object", lambda: object(), TypeError, ["$", "object"]),
    ("nested-set", lambda: {"a": [1, {"b": {3}}]}, TypeError, ["$.a[1].b", "list("]),
    ("nested-nan", lambda: {"scores": [1.0, float("nan")]}, ValueError, ["$.scores[1]"]),
    ("nested-bytes-odd-key", lambda: {"my key": [b"x"]}, TypeError, ['$["my key"][0]', "decode"]),
    ("nested-datetime", lambda: [[datetime.datetime(2024, 1, 1)]], TypeError, ["$[0][0]", "isoformat"]),
    ("nested-bad-dict-key", lambda: {"a": {2: 0}}, TypeError, ["$.a"]),
    ("nested-big-int", lambda: {"n": [0, 2**64]}, ValueError, ["$.n[1]"]),
]


def _refused_params() -> list[Any]:
    return [pytest.param(build, exc, needles, id=id_) for id_, build, exc, needles in _REFUSED]


@pytest.mark.parametrize(("build", "exc", "needles"), _refused_params())
def test_refused_value_raises_naming_path(
    db: ferrumdb.FerrumDB, build: Callable[[], Any], exc: type[Exception], needles: list[str]
) -> None:
    """A value outside the rules raises TypeError/ValueError whose message names the path (and a fix)."""
    with pytest.raises(exc) as info:
        db["k"] = build()
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize(("build", "exc", "needles"), _refused_params())
def test_refused_value_writes_nothing_new(
    db: ferrumdb.FerrumDB, build: Callable[[], Any], exc: type[Exception], needles: list[str]
) -> None:
    """A refused value under a new key leaves the key absent and the count unchanged."""
    db["other"] = 1
    with pytest.raises(exc):
        db.set("new", build())
    assert (len(db), db.get("new", "absent"), db.keys()) == (1, "absent", ["other"])


@pytest.mark.parametrize(("build", "exc", "needles"), _refused_params())
def test_refused_value_keeps_existing(
    db_path: Path, build: Callable[[], Any], exc: type[Exception], needles: list[str]
) -> None:
    """A refused value under an existing key leaves the old value in place, also after reopen."""
    with ferrumdb.open(db_path) as db:
        db["k"] = {"old": True}
        with pytest.raises(exc):
            db["k"] = build()
        assert db["k"] == {"old": True}
    with ferrumdb.open(db_path) as db:
        assert (db["k"], len(db)) == ({"old": True}, 1)


def test_bool_is_not_stored_as_int(db: ferrumdb.FerrumDB) -> None:
    """True stays True (not 1) and 1 stays 1 (not True)."""
    db["k"] = [True, 1]
    got = db["k"]
    assert type(got[0]) is bool and type(got[1]) is int


# -- keys ------------------------------------------------------------------------

_NON_STR_KEYS = [pytest.param(1, id="int"), pytest.param(b"k", id="bytes"), pytest.param(None, id="None"),
                 pytest.param(("k",), id="tuple")]


@pytest.mark.parametrize("key", _NON_STR_KEYS)
def test_non_str_key_setitem_raises_typeerror(db: ferrumdb.FerrumDB, key: Any) -> None:
    """db[k] = v with a non-str key raises TypeError and writes nothing."""
    with pytest.raises(TypeError, match="str"):
        db[key] = 1
    assert len(db) == 0


@pytest.mark.parametrize("key", _NON_STR_KEYS)
def test_non_str_key_set_raises_typeerror(db: ferrumdb.FerrumDB, key: Any) -> None:
    """db.set(k, v) with a non-str key raises TypeError and writes nothing."""
    with pytest.raises(TypeError, match="str"):
        db.set(key, 1)
    assert len(db) == 0


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda db: db[1], id="getitem"),
        pytest.param(lambda db: db.get(1), id="get"),
        pytest.param(lambda db: db.delete(1), id="delete"),
        pytest.param(lambda db: db.__delitem__(1), id="delitem"),
        pytest.param(lambda db: db.set_json(1, "1"), id="set_json"),
        pytest.param(lambda db: db.get_json(1), id="get_json"),
    ],
)
def test_non_str_key_read_or_delete_raises_typeerror(db: ferrumdb.FerrumDB, call: Callable[[Any], Any]) -> None:
    """Reading or deleting with a non-str key raises TypeError."""
    with pytest.raises(TypeError):
        call(db)


def test_empty_key_raises_valueerror(db: ferrumdb.FerrumDB) -> None:
    """An empty key raises ValueError and writes nothing."""
    with pytest.raises(ValueError, match="empty"):
        db[""] = 1
    assert len(db) == 0


def test_key_over_64_kib_raises_valueerror(db: ferrumdb.FerrumDB) -> None:
    """A key longer than 64 KiB of UTF-8 raises ValueError and writes nothing."""
    with pytest.raises(ValueError, match="64 KiB"):
        db["k" * (64 * 1024 + 1)] = 1
    assert len(db) == 0


def test_key_limit_counts_utf8_bytes(db: ferrumdb.FerrumDB) -> None:
    """The 64 KiB key limit counts UTF-8 bytes, not characters."""
    key = "é" * (32 * 1024 + 1)  # 32769 characters, 65538 bytes
    with pytest.raises(ValueError):
        db[key] = 1
    assert len(db) == 0


# -- huge values -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def huge_str() -> str:
    """A 300 MB string: over the 256 MiB value limit. Built once for the module."""
    return "x" * (300 * 1024 * 1024)


def test_huge_value_raises_valueerror(db: ferrumdb.FerrumDB, huge_str: str) -> None:
    """A value over the size limit raises ValueError and the key stays absent."""
    with pytest.raises(ValueError, match="limit"):
        db["big"] = huge_str
    assert ("big" in db, len(db)) == (False, 0)


def test_huge_value_keeps_existing(db: ferrumdb.FerrumDB, huge_str: str) -> None:
    """A refused huge value leaves the key's previous value in place."""
    db["big"] = "small"
    with pytest.raises(ValueError):
        db["big"] = huge_str
    assert db["big"] == "small"


# -- set_json / get_json -------------------------------------------------------------------------


def test_set_json_stores_document(db: ferrumdb.FerrumDB) -> None:
    """set_json stores a JSON document that db[k] reads as Python objects."""
    db.set_json("k", '{"a": [1, 2.5, "x", null, true]}')
    assert db["k"] == {"a": [1, 2.5, "x", None, True]}


def test_get_json_returns_text_verbatim(db: ferrumdb.FerrumDB) -> None:
    """get_json returns exactly the text given to set_json."""
    text = '{ "b" : 1,\n  "a": [true] }'
    db.set_json("k", text)
    assert db.get_json("k") == text


def test_get_json_of_set_value_is_json(db: ferrumdb.FerrumDB) -> None:
    """get_json of a value stored with db[k] = v is JSON text that parses back to v."""
    db["k"] = {"a": [1, None, "é"]}
    text = db.get_json("k")
    assert isinstance(text, str)
    assert json.loads(text) == {"a": [1, None, "é"]}


def test_get_json_missing_returns_default(db: ferrumdb.FerrumDB) -> None:
    """get_json of a missing key returns None, or the given default."""
    assert (db.get_json("missing"), db.get_json("missing", "d")) == (None, "d")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{bad", id="malformed"),
        pytest.param("", id="empty"),
        pytest.param('{"a": 1} x', id="trailing-data"),
        pytest.param("[1, 2", id="unterminated"),
        pytest.param("NaN", id="nan"),
        pytest.param("{'a': 1}", id="single-quotes"),
    ],
)
def test_set_json_invalid_raises_valueerror_and_writes_nothing(db: ferrumdb.FerrumDB, text: str) -> None:
    """set_json of text that is not exactly one JSON document raises ValueError and writes nothing."""
    db["k"] = "old"
    with pytest.raises(ValueError):
        db.set_json("k", text)
    with pytest.raises(ValueError):
        db.set_json("new", text)
    assert (db["k"], "new" in db, len(db)) == ("old", False, 1)


@pytest.mark.parametrize(
    "text",
    [pytest.param(b"{}", id="bytes"), pytest.param({"a": 1}, id="dict"), pytest.param(1, id="int"), pytest.param(None, id="None")],
)
def test_set_json_non_str_raises_typeerror(db: ferrumdb.FerrumDB, text: Any) -> None:
    """set_json with a non-str document raises TypeError and writes nothing."""
    with pytest.raises(TypeError):
        db.set_json("k", text)
    assert len(db) == 0
