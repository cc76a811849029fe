"""``ferrumdb push`` / ``ferrumdb pull``: copies between a file and PostgreSQL, resumable, with ``--follow``."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ferrumdb
from ferrumdb import postgres_sync
from tests_py.pg_support import pg_url  # noqa: F401


def _fill(path: Path, n: int) -> None:
    with ferrumdb.open(path) as db:
        for i in range(n):
            db[f"doc:{i:04}"] = {"i": i, "email": f"u{i}@x", "tags": ["a", i % 3]}
        db.set("ephemeral", {"t": 1}, ttl=3600)
        db.create_index("email", unique=True)
        db.create_index("tags")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ferrumdb", *args], capture_output=True, text=True, timeout=120)


def test_push_then_pull_round_trips_documents_ttls_and_indexes(pg_url: str, tmp_path: Path) -> None:
    """push copies documents, TTLs and index definitions; pull copies them back into a new file."""
    _fill(tmp_path / "app.db", 50)
    result = _cli("push", str(tmp_path / "app.db"), pg_url)
    assert result.returncode == 0, result.stderr
    assert "pushed 51 documents" in result.stdout
    with ferrumdb.open(pg_url) as db:
        assert len(db) == 51 and db["doc:0007"] == {"i": 7, "email": "u7@x", "tags": ["a", 1]}
        assert 3500 < db.ttl("ephemeral") <= 3600
        assert db.index_definitions() == {"email": {"unique": True}, "tags": {"unique": False}}
        with pytest.raises(ferrumdb.DuplicateKeyError):
            db["dup"] = {"email": "u1@x"}
    result = _cli("pull", pg_url, str(tmp_path / "copy.db"))
    assert result.returncode == 0, result.stderr
    with ferrumdb.open(tmp_path / "app.db") as original, ferrumdb.open(tmp_path / "copy.db") as copy:
        assert dict(copy.items()) == dict(original.items())
        assert copy.indexes() == ["email", "tags"]
        assert 3500 < copy.ttl("ephemeral") <= 3600
        with pytest.raises(ferrumdb.DuplicateKeyError):
            copy["dup"] = {"email": "u1@x"}


def test_interrupted_push_resumes_after_the_last_batch(pg_url: str, tmp_path: Path, monkeypatch: Any) -> None:
    """A push interrupted after one batch resumes from the recorded key and copies only the rest."""
    _fill(tmp_path / "app.db", 25)
    monkeypatch.setattr(postgres_sync, "BATCH_ROWS", 10)
    write_batch = postgres_sync._write_batch
    batches: list[int] = []

    def interrupt_after_first(dst: Any, rows: Any, source: str) -> None:
        if batches:
            raise KeyboardInterrupt
        batches.append(len(rows))
        write_batch(dst, rows, source)

    monkeypatch.setattr(postgres_sync, "_write_batch", interrupt_after_first)
    with pytest.raises(KeyboardInterrupt):
        postgres_sync.push(str(tmp_path / "app.db"), pg_url)
    with ferrumdb.open(pg_url) as db:
        assert len(db) == 10
    monkeypatch.setattr(postgres_sync, "_write_batch", write_batch)
    copied = postgres_sync.push(str(tmp_path / "app.db"), pg_url)
    assert copied == 16  # 26 documents, 10 already there
    with ferrumdb.open(pg_url) as db, ferrumdb.open(tmp_path / "app.db") as original:
        assert dict(db.items()) == dict(original.items())
        assert "push" not in db._run(db._meta)


def test_follow_copies_new_writes_until_ctrl_c(pg_url: str, tmp_path: Path) -> None:
    """push --follow applies writes made to the file by another process, and exits cleanly on SIGINT."""
    _fill(tmp_path / "app.db", 3)
    process = subprocess.Popen(
        [sys.executable, "-m", "ferrumdb", "push", str(tmp_path / "app.db"), pg_url, "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("pushed 4 documents")
        assert process.stdout.readline().startswith("following")
        with ferrumdb.open(tmp_path / "app.db") as app:
            app["live:1"] = {"new": True, "email": "live@x"}
            assert process.stdout.readline() == "applied set live:1\n"
            del app["doc:0000"]
            assert process.stdout.readline() == "applied delete doc:0000\n"
        with ferrumdb.open(pg_url) as db:
            assert db["live:1"] == {"new": True, "email": "live@x"} and "doc:0000" not in db
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert "stopped following" in process.communicate()[0]
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_push_of_a_missing_file_fails_cleanly(pg_url: str, tmp_path: Path) -> None:
    """push of a path with no database exits non-zero with a message, creating nothing."""
    result = _cli("push", str(tmp_path / "none.db"), pg_url)
    assert result.returncode == 1 and "no database to push" in result.stderr
    assert not (tmp_path / "none.db").exists()
