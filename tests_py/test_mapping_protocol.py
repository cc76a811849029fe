"""CPython's own mapping-protocol tests (``test.mapping_tests``), run against FerrumDB.

``BasicTestMappingProtocol`` is the part of CPython's suite that any mapping
must pass. (``TestMappingProtocol`` adds dict-only behaviour: int keys,
``fromkeys``, ``copy``, mutable stored values, which a str-keyed persistent
store does not have.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import ferrumdb

mapping_tests = pytest.importorskip("test.mapping_tests", reason="CPython's test package is not installed")


class TestFerrumMappingProtocol(mapping_tests.BasicTestMappingProtocol):  # type: ignore[misc,name-defined]
    """FerrumDB passes CPython's BasicTestMappingProtocol."""

    def _empty_mapping(self) -> ferrumdb.FerrumDB:
        db = ferrumdb.open(":memory:")
        self.addCleanup(db.close)
        return db

    def _full_mapping(self, data: dict[str, Any]) -> ferrumdb.FerrumDB:
        db = self._empty_mapping()
        for key, value in data.items():
            db[key] = value
        return db

    def _reference(self) -> dict[str, Any]:
        # CPython's reference holds a tuple, which JSON stores as a list.
        return {"1": "2", "key1": "value1", "key2": [1, 2, 3]}


LONE_SURROGATE = "\ud800"  # a str with no UTF-8 form: it cannot be a key


def test_unencodable_str_is_a_missing_key(db: ferrumdb.FerrumDB) -> None:
    """Lookups with a str that cannot be UTF-8 answer "missing" the way a dict does."""
    db["k"] = 1
    assert LONE_SURROGATE not in db
    assert (LONE_SURROGATE in db) is False
    assert db.get(LONE_SURROGATE) is None
    assert db.get(LONE_SURROGATE, 7) == 7
    assert db.get_json(LONE_SURROGATE, "d") == "d"
    with pytest.raises(KeyError) as info:
        db[LONE_SURROGATE]
    assert info.value.args == (LONE_SURROGATE,)
    with pytest.raises(KeyError):
        del db[LONE_SURROGATE]
    assert db.delete(LONE_SURROGATE) is False
    assert db.pop(LONE_SURROGATE, "dflt") == "dflt"
    with pytest.raises(KeyError):
        db.pop(LONE_SURROGATE)
    with pytest.raises(KeyError):
        db.ttl(LONE_SURROGATE)
    assert dict(db.items()) == {"k": 1}
    # Storing under it is still refused (a ValueError), and writes nothing.
    with pytest.raises(ValueError):
        db[LONE_SURROGATE] = 1
    assert len(db) == 1
    # Non-str keys keep their TypeError for reads other than `in`.
    with pytest.raises(TypeError):
        db.get(1)  # type: ignore[arg-type]


def test_unencodable_str_in_a_transaction(db: ferrumdb.FerrumDB) -> None:
    """The same dict manners inside a transaction."""
    with db.transaction() as tx:
        assert LONE_SURROGATE not in tx
        assert tx.get(LONE_SURROGATE, 3) == 3
        with pytest.raises(KeyError):
            tx[LONE_SURROGATE]
        with pytest.raises(KeyError):
            del tx[LONE_SURROGATE]
        tx.delete(LONE_SURROGATE)
        tx["k"] = 1
    assert dict(db.items()) == {"k": 1}


def test_unencodable_str_on_a_closed_handle_is_closed_error(db_path: Path) -> None:
    """A closed handle still says so, whatever the key."""
    db = ferrumdb.open(db_path)
    db.close()
    for call in (lambda: LONE_SURROGATE in db, lambda: db.get(LONE_SURROGATE), lambda: db[LONE_SURROGATE]):
        with pytest.raises(ferrumdb.ClosedError):
            call()
