"""Readers beside a busy writer process must never report false damage.

A writer appends through a shared mapping, so a reader in another process
can read a record while it is being copied and, a moment later, find newer
intact records after it. That is the end of what is written so far, not
damage: ``read_only=True`` opens, ``ferrumdb.check`` and ``ferrumdb export``
must all succeed while a real writer process appends as fast as it can
(single sets, large values and transactions, the slowest records to copy).
The writer signals over a pipe once it is writing; no sleeps.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import ferrumdb

_WRITER = textwrap.dedent(
    """
    import sys
    import ferrumdb

    db = ferrumdb.open(sys.argv[1])
    big = "x" * (256 * 1024)
    db["seed"] = 0
    db.flush()
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        db[f"small:{i % 64}"] = {"i": i}
        db[f"big:{i % 4}"] = big
        with db.transaction() as tx:
            for j in range(8):
                tx[f"tx:{j}"] = {"i": i, "pad": big[: 16 * 1024]}
    """
)


@contextlib.contextmanager
def _writer(script: str, db_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A separate process running ``script`` on ``db_path``, once it printed "ready"."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(db_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "ready\n", proc.stderr.read() if proc.stderr else line
        yield proc
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def busy_writer(db_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A separate process appending to ``db_path`` until the test ends."""
    with _writer(_WRITER, db_path) as proc:
        yield proc


def _still_writing(proc: subprocess.Popen[str]) -> None:
    assert proc.poll() is None, "the writer died: " + (proc.stderr.read() if proc.stderr else "")


def test_read_only_opens_and_checks_beside_a_writer_see_no_damage(
    db_path: Path, busy_writer: subprocess.Popen[str]
) -> None:
    for _ in range(60):
        with ferrumdb.open(db_path, read_only=True) as reader:
            assert reader["seed"] == 0
        report = ferrumdb.check(db_path)
        assert report["ok"] is True, report["damage"]
        assert report["damage"] == []
        _still_writing(busy_writer)


def test_cli_export_beside_a_writer_never_fails(
    tmp_path: Path, db_path: Path, busy_writer: subprocess.Popen[str]
) -> None:
    out = tmp_path / "out.jsonl"
    for _ in range(10):
        proc = subprocess.run(
            [sys.executable, "-m", "ferrumdb", "export", str(db_path), str(out)],
            capture_output=True,
            text=True,
            encoding="utf-8",
            stdin=subprocess.DEVNULL,
        )
        assert (proc.returncode, proc.stderr) == (0, "")
        _still_writing(busy_writer)


_SMALL_WRITER = textwrap.dedent(
    """
    import sys
    import ferrumdb

    db = ferrumdb.open(sys.argv[1], fsync="always", auto_compact=None)
    db["seed"] = "s" * 64
    # An intact record after the seed before the test damages it: damage
    # followed by nothing is a torn tail, not corruption.
    db["k:0"] = 0
    db.flush()
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        db[f"k:{i % 512}"] = i
    """
)


def test_real_damage_is_still_reported_beside_a_writer(db_path: Path) -> None:
    """A flipped byte in an old record stays damage while a writer appends beside it.

    The writer syncs every write (``fsync="always"``), which keeps the file small
    enough for ten full scans.
    """
    with _writer(_SMALL_WRITER, db_path) as proc:
        seed_value = 64 + 40  # inside the first record's value (after the 64-byte file header)
        with open(db_path, "r+b") as f:
            f.seek(seed_value)
            byte = f.read(1)
            f.seek(seed_value)
            f.write(bytes([byte[0] ^ 0x40]))
        for _ in range(10):
            report = ferrumdb.check(db_path)
            assert report["ok"] is False
            assert report["damage"][0]["offset"] == 64
            with pytest.raises(ferrumdb.CorruptionError, match="offset 64"):
                ferrumdb.open(db_path, read_only=True)
            _still_writing(proc)
