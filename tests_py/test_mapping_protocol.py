"""CPython's own mapping-protocol tests (``test.mapping_tests``), run against FerrumDB.

``BasicTestMappingProtocol`` is the part of CPython's suite that any mapping
must pass. (``TestMappingProtocol`` adds dict-only behaviour: int keys,
``fromkeys``, ``copy``, mutable stored values, which a str-keyed persistent
store does not have.)
"""

from __future__ import annotations

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
