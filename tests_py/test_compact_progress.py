"""``db.compact(progress=True)`` draws a progress bar on a terminal's standard error, like the other long
operations, and compacts exactly as without it (SPEC section 1, ``compact`` row)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import ferrumdb

pexpect = pytest.importorskip("pexpect")

TIMEOUT = 60

# Runs in a child whose stdout and stderr are a pseudo-terminal, where indicatif draws.
COMPACT_WITH_BAR = """
import sys
import ferrumdb
with ferrumdb.open(sys.argv[1]) as db:
    db.compact(progress=True)
    print("compacted", len(db), db["k04999"])
"""


def test_compact_progress_draws_a_bar_at_a_terminal(db_path: Path) -> None:
    """At a terminal, compact(progress=True) shows a bar counting the records copied, then the data is intact."""
    with ferrumdb.open(db_path) as db:
        for round_ in range(2):
            db.update({f"k{i:05}": {"i": i, "round": round_} for i in range(5000)})
    child = pexpect.spawn(
        sys.executable, ["-c", COMPACT_WITH_BAR, str(db_path)], encoding="utf-8", timeout=TIMEOUT, dimensions=(24, 160)
    )
    child.expect_exact("compacting")
    child.expect_exact("5,000/5,000 records")
    child.expect_exact("compacted 5000 {'i': 4999, 'round': 1}")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_compact_progress_without_a_terminal_is_silent(
    db: ferrumdb.FerrumDB, capfd: pytest.CaptureFixture[str]
) -> None:
    """Off a terminal (a pipe, a log file) the bar is not drawn; the compaction is the same."""
    for i in range(2000):
        db[f"k{i}"] = i
    for i in range(2000):
        db[f"k{i}"] = -i
    before = db.stats()["file_bytes"]
    db.compact(progress=True)
    assert db.stats()["file_bytes"] < before
    assert db["k1999"] == -1999 and len(db) == 2000
    assert capfd.readouterr().err == ""
