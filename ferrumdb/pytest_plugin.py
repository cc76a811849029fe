"""pytest plugin (registered through the ``pytest11`` entry point).

Provides the ``ferrumdb_db`` fixture: a fresh database in the test's temporary
directory, closed after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .db import FerrumDB


@pytest.fixture
def ferrumdb_db(tmp_path: Path) -> Iterator[FerrumDB]:
    """A fresh, empty FerrumDB database at ``tmp_path / "test.db"``, closed afterwards."""
    db = FerrumDB(tmp_path / "test.db")
    try:
        yield db
    finally:
        db.close()
