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


def test_an_interrupted_push_resumes_exactly(pg_url: str, tmp_path: Path, monkeypatch: Any) -> None:
    """Killed inside a batch's transaction (rows written, not committed), a push leaves whole batches only;
    the next run writes exactly the rest, plus what changed in the file meanwhile, and nothing twice."""
    _fill(tmp_path / "app.db", 25)
    monkeypatch.setattr(postgres_sync, "BATCH_ROWS", 10)
    apply = postgres_sync._apply
    written: list[str] = []

    def crash_in_the_second_batch(dst: Any, upserts: Any, deletes: Any) -> None:
        if written:
            notify_all = dst._notify_all

            def crash(conn: Any, events: Any) -> None:
                notify_all(conn, events)  # the rows are in, the transaction not committed
                raise KeyboardInterrupt

            dst._notify_all = crash
        apply(dst, upserts, deletes)
        written.extend(k for k, _, _ in upserts)

    monkeypatch.setattr(postgres_sync, "_apply", crash_in_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        postgres_sync.push(str(tmp_path / "app.db"), pg_url)
    with ferrumdb.open(pg_url) as db:
        assert sorted(db) == sorted(written) and len(written) == 10
    with ferrumdb.open(tmp_path / "app.db") as app:  # the application goes on meanwhile
        app["doc:0003"] = {"changed": True, "email": "changed@x"}
        app["doc:9999"] = {"new": True, "email": "new@x"}
    counted: list[str] = []

    def counting(dst: Any, upserts: Any, deletes: Any) -> None:
        counted.extend(k for k, _, _ in upserts)
        apply(dst, upserts, deletes)

    monkeypatch.setattr(postgres_sync, "_apply", counting)
    assert postgres_sync.push(str(tmp_path / "app.db"), pg_url) == 18
    assert len(counted) == len(set(counted)) == 18 and "doc:0003" in counted and "doc:0004" not in counted
    with ferrumdb.open(pg_url) as db, ferrumdb.open(tmp_path / "app.db") as original:
        assert dict(db.items()) == dict(original.items())
    assert postgres_sync.push(str(tmp_path / "app.db"), pg_url) == 0  # nothing left to write


def test_push_copies_and_push_follow_mirrors(pg_url: str, tmp_path: Path) -> None:
    """A plain push leaves rows the file lacks; push --follow deletes them (the table mirrors the file)."""
    _fill(tmp_path / "app.db", 3)
    with ferrumdb.open(pg_url) as db:
        db["only:in:postgres"] = {"email": "pg@x"}
    assert _cli("push", str(tmp_path / "app.db"), pg_url).returncode == 0
    with ferrumdb.open(pg_url) as db:
        assert db["only:in:postgres"] == {"email": "pg@x"} and len(db) == 5
    process = _start_follow(tmp_path / "app.db", pg_url)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("pushed 1 documents")
        assert process.stdout.readline().startswith("following")
        with ferrumdb.open(pg_url) as db, ferrumdb.open(tmp_path / "app.db") as app:
            assert dict(db.items()) == dict(app.items())
    finally:
        _stop(process)


def _start_follow(path: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ferrumdb", "push", str(path), url, "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> str:
    """SIGINT, then the rest of its stdout; a process that does not stop is killed (and the test fails)."""
    try:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        return process.communicate()[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_follow_applies_each_commit_of_a_writer_process_as_one_transaction(pg_url: str, tmp_path: Path) -> None:
    """push --follow beside a writing process: sets, deletes and a transaction (one PostgreSQL transaction,
    one line) arrive in order; Ctrl-C ends it cleanly. The writer waits for each line (pipes, no sleeps)."""
    _fill(tmp_path / "app.db", 3)
    process = _start_follow(tmp_path / "app.db", pg_url)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("pushed 4 documents")
        assert process.stdout.readline().startswith("following")
        with ferrumdb.open(tmp_path / "app.db") as app, ferrumdb.open(pg_url) as db:
            app["live:1"] = {"new": True, "email": "live@x"}
            assert process.stdout.readline() == "applied set live:1\n"
            del app["doc:0000"]
            assert process.stdout.readline() == "applied delete doc:0000\n"
            watch = db.watch()
            with app.transaction() as tx:
                tx["t:1"] = {"email": "t1@x"}
                tx["t:2"] = {"two": 2, "email": "t2@x"}
                tx.delete("doc:0001")
            line = process.stdout.readline()
            assert line.startswith("applied 3 changes in one transaction: ")
            assert sorted(line.rstrip("\n").split(": ", 1)[1].split(", ")) == ["delete doc:0001", "set t:1", "set t:2"]
            app.set("ttl:1", {"email": "ttl@x"}, ttl=3600)
            assert process.stdout.readline() == "applied set ttl:1\n"
            events = [next(watch) for _ in range(4)]
            watch.close()
            assert sorted(events[:3]) == [("delete", "doc:0001", None), ("set", "t:1", {"email": "t1@x"}), ("set", "t:2", {"two": 2, "email": "t2@x"})]
            assert events[3] == ("set", "ttl:1", {"email": "ttl@x"})
            assert dict(db.items()) == dict(app.items())
            assert 3500 < db.ttl("ttl:1") <= 3600
        assert "stopped following" in _stop(process)
    finally:
        if process.poll() is None:
            process.kill()


def test_follow_resyncs_after_the_watch_overflows(pg_url: str, tmp_path: Path) -> None:
    """A transaction of more changes than a watch holds overflows the follower's watch; push --follow
    replaces it, compares the table with the file again, and keeps following."""
    _fill(tmp_path / "app.db", 3)
    process = _start_follow(tmp_path / "app.db", pg_url)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("pushed 4 documents")
        assert process.stdout.readline().startswith("following")
        with ferrumdb.open(tmp_path / "app.db") as app:
            with app.transaction() as tx:
                for i in range(10_050):
                    tx[f"bulk:{i:05}"] = {"email": f"bulk{i}@x"}
                tx.delete("doc:0002")
            assert process.stdout.readline().startswith("the watch fell behind")
            assert process.stdout.readline() == "resynced: 10051 rows changed\n"
            app["after"] = {"email": "after@x"}
            assert process.stdout.readline() == "applied set after\n"
            with ferrumdb.open(pg_url) as db:
                assert dict(db.items()) == dict(app.items())
        _stop(process)
    finally:
        if process.poll() is None:
            process.kill()


def test_push_of_a_missing_file_fails_cleanly(pg_url: str, tmp_path: Path) -> None:
    """push of a path with no database exits non-zero with a message, creating nothing."""
    result = _cli("push", str(tmp_path / "none.db"), pg_url)
    assert result.returncode == 1 and "no database to push" in result.stderr
    assert not (tmp_path / "none.db").exists()
