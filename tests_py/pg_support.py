"""Fixtures for the PostgreSQL backend tests: the throwaway server's URL and a fresh table per test.

``scripts/test.sh`` starts a PostgreSQL 15 (``scripts/pg.sh``) and exports its
URL as ``FERRUMDB_TEST_PG_URL``. Without it the tests skip, saying how to get
one, except under CI (``CI=true``), where a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import ferrumdb

PG_URL_VARIABLE = "FERRUMDB_TEST_PG_URL"


def server_url() -> str:
    """The test server's URL, or skip (fail under CI) when there is none."""
    url = os.environ.get(PG_URL_VARIABLE)
    if url:
        return url
    reason = (
        f"{PG_URL_VARIABLE} is not set: run the tests through scripts/test.sh, or start a server with "
        "`bash scripts/pg.sh start DIR` and export the URL it prints"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def table_url(base: str, table: str) -> str:
    """``base`` with ``?table=table`` (or ``&table=``) appended."""
    return f"{base}{'&' if '?' in base else '?'}table={table}"


def drop_table(base: str, table: str) -> None:
    """Remove a test table and its indexes."""
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{table}", "{table}_claims"')
        conn.execute(f'DROP FUNCTION IF EXISTS "{table}_keep_claims"()')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL naming a fresh table of its own on the test server; dropped afterwards."""
    base = server_url()
    table = "t_" + uuid.uuid4().hex[:12]
    yield table_url(base, table)
    drop_table(base, table)


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Any]:
    """An open PostgreSQL-backed FerrumDB on a fresh table, closed afterwards."""
    db = ferrumdb.open(pg_url)
    try:
        yield db
    finally:
        db.close()
