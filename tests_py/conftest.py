"""Shared fixtures: databases under ``tmp_path``, always closed.

Worker functions for ``multiprocessing`` (``spawn``) live at module level in the
test files; a spawned child re-imports them as ``tests_py.<module>``, which
needs the repository root on ``sys.path``. ``python -m pytest`` puts it there,
a bare ``pytest`` does not, so this adds it.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def pytest_configure(config: pytest.Config) -> None:
    # When a Hypothesis test fails, Hypothesis imports libcst (if installed) to suggest a patch,
    # and libcst subclasses the deprecated mypy_extensions.TypedDict. Under filterwarnings=error
    # that DeprecationWarning turns the failure report into a pytest INTERNALERROR.
    config.addinivalue_line("filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's database file lives (not created yet)."""
    return tmp_path / "test.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[ferrumdb.FerrumDB]:
    """A fresh file database, closed after the test."""
    handle = ferrumdb.open(db_path)
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture
def clock() -> ferrumdb.ManualClock:
    """A manual clock at a fixed, realistic instant (Unix 1,800,000,000 s), for TTL tests."""
    return ferrumdb.ManualClock(1_800_000_000.0)


@pytest.fixture
def tdb(db_path: Path, clock: ferrumdb.ManualClock) -> Iterator[ferrumdb.FerrumDB]:
    """A file database whose expiry follows ``clock``, closed after the test."""
    handle = ferrumdb.open(db_path, clock=clock)
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture
def run_spawned() -> Callable[..., Any]:
    """Call a module-level function in a fresh ``spawn`` process and return its result.

    A process pool executor rather than ``multiprocessing.Pool``: if the child
    dies, the call raises ``BrokenProcessPool`` instead of hanging.
    """

    def run(func: Callable[..., Any], *args: Any) -> Any:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(func, *args).result()

    return run
