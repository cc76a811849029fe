"""The dict manners of a database: ``collections.abc.MutableMapping`` and friends."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path

import pytest

import ferrumdb


class _ItemsExplode(Mapping[str, object]):
    """A mapping whose items cannot be read: proves ``==`` decided without them."""

    def __init__(self, n: int) -> None:
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("== read the items although the lengths differ")

    def __getitem__(self, key: str) -> object:
        raise AssertionError("== read the items although the lengths differ")


# -- set / get / delete ------------------------------------------------------


def test_is_mutable_mapping(db: ferrumdb.FerrumDB) -> None:
    """A database is a collections.abc.MutableMapping."""
    assert isinstance(db, MutableMapping)


def test_setitem_getitem(db: ferrumdb.FerrumDB) -> None:
    """db[k] = v stores v and db[k] returns it."""
    db["user:1"] = {"name": "alice"}
    assert db["user:1"] == {"name": "alice"}


def test_set_get(db: ferrumdb.FerrumDB) -> None:
    """db.set(k, v) stores v and db.get(k) returns it."""
    db.set("k", [1, 2])
    assert db.get("k") == [1, 2]


def test_set_overwrites(db: ferrumdb.FerrumDB) -> None:
    """Setting an existing key replaces its value and keeps the count."""
    db["k"] = 1
    db["k"] = 2
    assert (db["k"], len(db)) == (2, 1)


def test_getitem_missing_raises_keyerror(db: ferrumdb.FerrumDB) -> None:
    """db[k] raises KeyError carrying the key when k is missing."""
    with pytest.raises(KeyError) as info:
        db["missing"]
    assert info.value.args == ("missing",)


def test_get_missing_returns_none(db: ferrumdb.FerrumDB) -> None:
    """db.get(k) returns None when k is missing."""
    assert db.get("missing") is None


def test_get_missing_returns_default(db: ferrumdb.FerrumDB) -> None:
    """db.get(k, default) returns default when k is missing."""
    sentinel = object()
    assert db.get("missing", sentinel) is sentinel


def test_get_present_ignores_default(db: ferrumdb.FerrumDB) -> None:
    """db.get(k, default) returns the stored value when k exists, even a stored None."""
    db["k"] = None
    assert db.get("k", "default") is None


def test_delitem_removes(db: ferrumdb.FerrumDB) -> None:
    """del db[k] removes k."""
    db["k"] = 1
    del db["k"]
    assert "k" not in db


def test_delitem_missing_raises_keyerror(db: ferrumdb.FerrumDB) -> None:
    """del db[k] raises KeyError carrying the key when k is missing."""
    with pytest.raises(KeyError) as info:
        del db["missing"]
    assert info.value.args == ("missing",)


def test_delete_present_returns_true(db: ferrumdb.FerrumDB) -> None:
    """db.delete(k) removes an existing key and returns True."""
    db["k"] = 1
    assert db.delete("k") is True
    assert "k" not in db


def test_delete_missing_returns_false(db: ferrumdb.FerrumDB) -> None:
    """db.delete(k) returns False for a missing key."""
    assert db.delete("missing") is False


def test_contains(db: ferrumdb.FerrumDB) -> None:
    """k in db is True exactly for stored keys."""
    db["k"] = 0
    assert ("k" in db, "other" in db) == (True, False)


def test_contains_non_str_is_false(db: ferrumdb.FerrumDB) -> None:
    """A non-str is never in the database (no error, as for dict)."""
    db["1"] = 1
    assert 1 not in db


def test_len_and_count(db: ferrumdb.FerrumDB) -> None:
    """len(db) and db.count() give the number of live keys."""
    for i in range(5):
        db[f"k{i}"] = i
    del db["k0"]
    assert (len(db), db.count()) == (4, 4)


# -- key order -----------------------------------------------------------------

_UNORDERED = ["pear", "apple", "zebra", "Banana", "apple:2", "a"]


@pytest.fixture
def filled(db: ferrumdb.FerrumDB) -> ferrumdb.FerrumDB:
    for i, k in enumerate(_UNORDERED):
        db[k] = i
    return db


def test_keys_is_sorted_list_of_str(filled: ferrumdb.FerrumDB) -> None:
    """db.keys() is a list of str in key order."""
    keys = filled.keys()
    assert type(keys) is list
    assert all(type(k) is str for k in keys)
    assert keys == sorted(_UNORDERED)


def test_iter_in_key_order(filled: ferrumdb.FerrumDB) -> None:
    """iter(db) yields the keys in key order."""
    assert list(filled) == sorted(_UNORDERED)


def test_values_in_key_order(filled: ferrumdb.FerrumDB) -> None:
    """db.values() iterates values in key order."""
    assert list(filled.values()) == [_UNORDERED.index(k) for k in sorted(_UNORDERED)]


def test_items_in_key_order(filled: ferrumdb.FerrumDB) -> None:
    """db.items() iterates (key, value) pairs in key order."""
    assert list(filled.items()) == [(k, _UNORDERED.index(k)) for k in sorted(_UNORDERED)]


def test_key_order_is_utf8_byte_order(db: ferrumdb.FerrumDB) -> None:
    """Key order is the byte order of the UTF-8 keys (code point order)."""
    keys = ["é", "z", "Z", "\U0001f600", "\uffff", "a"]
    for k in keys:
        db[k] = 0
    assert db.keys() == sorted(keys, key=lambda k: k.encode())


def test_views_support_len_and_membership(filled: ferrumdb.FerrumDB) -> None:
    """values()/items() views have len() and membership like dict views."""
    assert len(filled.values()) == len(_UNORDERED)
    assert ("pear", 0) in filled.items()
    assert 2 in filled.values()


def test_iteration_spans_pages(db: ferrumdb.FerrumDB) -> None:
    """Iteration returns every key of a database larger than one internal page, in order."""
    keys = [f"k{i:05d}" for i in range(1300)]
    for k in reversed(keys):
        db[k] = k
    assert list(db) == keys
    assert [v for _, v in db.items()] == keys


# -- scan ----------------------------------------------------------------------


@pytest.fixture
def prefixed(db: ferrumdb.FerrumDB) -> ferrumdb.FerrumDB:
    for k in ["user:2", "users", "user:1", "user", "us", "admin:1", "user:10"]:
        db[k] = k.upper()
    return db


def test_scan_filters_by_prefix_in_order(prefixed: ferrumdb.FerrumDB) -> None:
    """scan(prefix) yields exactly the keys starting with prefix, in key order, with values."""
    assert list(prefixed.scan("user:")) == [("user:1", "USER:1"), ("user:10", "USER:10"), ("user:2", "USER:2")]


def test_scan_keyword_prefix(prefixed: ferrumdb.FerrumDB) -> None:
    """scan accepts prefix as a keyword argument."""
    assert [k for k, _ in prefixed.scan(prefix="us")] == ["us", "user", "user:1", "user:10", "user:2", "users"]


def test_scan_without_prefix_yields_all(prefixed: ferrumdb.FerrumDB) -> None:
    """scan() with no prefix yields every item in key order."""
    assert list(prefixed.scan()) == list(prefixed.items())


def test_scan_no_match_is_empty(prefixed: ferrumdb.FerrumDB) -> None:
    """scan of a prefix nothing starts with yields nothing."""
    assert list(prefixed.scan("zzz")) == []


def test_scan_spans_pages(db: ferrumdb.FerrumDB) -> None:
    """scan(prefix) returns every match when the matches exceed one internal page."""
    for i in range(1100):
        db[f"a:{i:05d}"] = i
        db[f"b:{i:05d}"] = i
    assert [v for _, v in db.scan("a:")] == list(range(1100))


# -- MutableMapping mixins -----------------------------------------------------


def test_update_from_dict_and_kwargs(db: ferrumdb.FerrumDB) -> None:
    """update() accepts a mapping, pairs and keywords, as dict does."""
    db.update({"a": 1}, b=2)
    db.update([("c", 3)])
    assert dict(db.items()) == {"a": 1, "b": 2, "c": 3}


def test_pop_present(db: ferrumdb.FerrumDB) -> None:
    """pop(k) returns the value and removes k."""
    db["k"] = {"x": 1}
    assert db.pop("k") == {"x": 1}
    assert "k" not in db


def test_pop_missing_with_default(db: ferrumdb.FerrumDB) -> None:
    """pop(k, default) returns default when k is missing."""
    assert db.pop("missing", 7) == 7


def test_pop_missing_raises_keyerror(db: ferrumdb.FerrumDB) -> None:
    """pop(k) raises KeyError when k is missing."""
    with pytest.raises(KeyError):
        db.pop("missing")


def test_setdefault_missing_stores(db: ferrumdb.FerrumDB) -> None:
    """setdefault(k, v) stores and returns v when k is missing."""
    assert db.setdefault("k", [1]) == [1]
    assert db["k"] == [1]


def test_setdefault_present_keeps(db: ferrumdb.FerrumDB) -> None:
    """setdefault(k, v) returns the existing value and leaves it unchanged."""
    db["k"] = "old"
    assert db.setdefault("k", "new") == "old"
    assert db["k"] == "old"


def test_clear(db: ferrumdb.FerrumDB) -> None:
    """clear() removes every key."""
    db.update({f"k{i}": i for i in range(20)})
    db.clear()
    assert (len(db), db.keys()) == (0, [])


def test_popitem_takes_first_key(db: ferrumdb.FerrumDB) -> None:
    """popitem() removes and returns an item (the first in key order)."""
    db.update({"b": 2, "a": 1})
    assert db.popitem() == ("a", 1)
    assert db.keys() == ["b"]


def test_popitem_empty_raises_keyerror(db: ferrumdb.FerrumDB) -> None:
    """popitem() on an empty database raises KeyError."""
    with pytest.raises(KeyError):
        db.popitem()


def test_dict_of_db(db: ferrumdb.FerrumDB) -> None:
    """dict(db) copies every item."""
    db.update({"a": [1], "b": {"c": None}})
    assert dict(db) == {"a": [1], "b": {"c": None}}


# -- equality (the Mapping contract) ---------------------------------------------


def test_eq_dict_with_same_items(db: ferrumdb.FerrumDB) -> None:
    """A database equals a dict with the same items."""
    db.update({"a": 1, "b": [2]})
    assert db == {"b": [2], "a": 1}
    assert {"a": 1, "b": [2]} == db


def test_ne_dict_with_different_length(db: ferrumdb.FerrumDB) -> None:
    """A database differs from a dict with a different number of items."""
    db["a"] = 1
    assert db != {"a": 1, "b": 2}
    assert not (db == {})


def test_ne_dict_with_different_value(db: ferrumdb.FerrumDB) -> None:
    """A database differs from a dict with the same keys but another value."""
    db.update({"a": 1, "b": 2})
    assert db != {"a": 1, "b": 3}


def test_ne_dict_with_different_keys(db: ferrumdb.FerrumDB) -> None:
    """A database differs from a dict of the same length with other keys."""
    db.update({"a": 1, "b": 2})
    assert db != {"a": 1, "c": 2}


def test_eq_other_database(tmp_path: Path) -> None:
    """Two databases with the same items are equal."""
    with ferrumdb.open(tmp_path / "a.db") as a, ferrumdb.open(":memory:") as b:
        a.update({"x": 1})
        b.update({"x": 1})
        assert a == b


def test_eq_identity_shortcut(db: ferrumdb.FerrumDB) -> None:
    """db == db is True from identity alone, without reading (works even once closed)."""
    db["a"] = 1
    db.close()
    assert db == db


def test_eq_length_shortcut(db: ferrumdb.FerrumDB) -> None:
    """== answers False from the lengths without reading items when they differ."""
    db["a"] = 1
    assert db != _ItemsExplode(2)


def test_eq_non_mapping_is_false(db: ferrumdb.FerrumDB) -> None:
    """A database never equals a non-mapping."""
    assert db != []
    assert db != "db"


def test_unhashable(db: ferrumdb.FerrumDB) -> None:
    """A database is unhashable, as a mutable mapping with == must be."""
    with pytest.raises(TypeError):
        hash(db)


# -- stats ---------------------------------------------------------------------

_STATS_KEYS = {"keys", "gets", "sets", "deletes", "ops_per_sec", "uptime_s", "file_bytes", "live_bytes"}


def test_stats_has_documented_keys(db: ferrumdb.FerrumDB) -> None:
    """stats() is a dict with at least the documented keys, all numbers."""
    s = db.stats()
    assert _STATS_KEYS <= s.keys()
    assert all(isinstance(s[k], (int, float)) and not isinstance(s[k], bool) for k in _STATS_KEYS)


def test_stats_counts_operations(db: ferrumdb.FerrumDB) -> None:
    """stats() counts live keys, gets, sets and deletes of this handle."""
    db["a"] = 1
    db["b"] = 2
    db.get("a")
    db.delete("b")
    s = db.stats()
    assert (s["keys"], s["gets"], s["sets"], s["deletes"]) == (1, 1, 2, 1)


def test_stats_sizes(db: ferrumdb.FerrumDB) -> None:
    """live_bytes counts only live records, so an overwrite leaves it below file_bytes."""
    db["a"] = "x" * 100
    db["a"] = "y" * 100
    s = db.stats()
    assert s["file_bytes"] > s["live_bytes"] > 0
