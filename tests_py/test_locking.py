"""Who may write: any number of writer processes by default; beside an ``exclusive=True`` writer a
second writer gets LockedError at once, as does an exclusive open beside other writers; readers are
allowed beside both. (Writers sharing a database are tested in test_processes.py.)

Workers are module-level functions run in ``spawn`` processes; they report what
happened as plain data rather than raising, so the parent can assert on it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

Spawn = Callable[..., Any]


def _open_for_writing(path: str, exclusive: bool = False) -> dict[str, Any]:
    """Worker: open ``path`` for writing and write a key; report the outcome."""
    try:
        with ferrumdb.open(path, exclusive=exclusive) as db:
            db["from-child"] = os.getpid()
    except ferrumdb.LockedError as e:
        return {"outcome": "LockedError", "message": str(e), "is_ferrum_error": isinstance(e, ferrumdb.FerrumError)}
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        return {"outcome": type(e).__name__, "message": str(e)}
    return {"outcome": "wrote", "pid": os.getpid()}


def _open_read_only(path: str) -> dict[str, Any]:
    """Worker: open ``path`` read-only and return its contents."""
    try:
        with ferrumdb.open(path, read_only=True) as db:
            return {"outcome": "read", "items": dict(db.items())}
    except BaseException as e:  # noqa: BLE001
        return {"outcome": type(e).__name__, "message": str(e)}


@pytest.fixture
def writer(db_path: Path) -> Any:
    """This process as the database's exclusive writer."""
    db = ferrumdb.open(db_path, exclusive=True)
    db["k"] = "parent"
    try:
        yield db
    finally:
        db.close()


def test_second_writer_gets_locked_error(writer: ferrumdb.FerrumDB, db_path: Path, run_spawned: Spawn) -> None:
    """Beside an exclusive writer, a second process opening the database for writing gets LockedError (a FerrumError), without waiting."""
    result = run_spawned(_open_for_writing, str(db_path))
    assert (result["outcome"], result["is_ferrum_error"]) == ("LockedError", True)
    result = run_spawned(_open_for_writing, str(db_path), True)
    assert result["outcome"] == "LockedError"


def test_exclusive_open_beside_a_writer_gets_locked_error(db_path: Path, run_spawned: Spawn) -> None:
    """An exclusive open while another process has the database open for writing gets LockedError naming that process."""
    with ferrumdb.open(db_path) as db:
        db["k"] = 1
        result = run_spawned(_open_for_writing, str(db_path), True)
        assert result["outcome"] == "LockedError"
        assert str(os.getpid()) in result["message"]
        # An ordinary writer joins it.
        assert run_spawned(_open_for_writing, str(db_path))["outcome"] == "wrote"
        assert db["from-child"] != os.getpid()


def test_second_exclusive_handle_in_this_process_is_told_so(writer: ferrumdb.FerrumDB, db_path: Path) -> None:
    """A second handle of the exclusive writer's own process is refused, and told it is this process."""
    for exclusive in (False, True):
        with pytest.raises(ferrumdb.LockedError, match="this process"):
            ferrumdb.open(db_path, exclusive=exclusive)


def test_locked_error_names_path(writer: ferrumdb.FerrumDB, db_path: Path, run_spawned: Spawn) -> None:
    """LockedError's message names the database path."""
    result = run_spawned(_open_for_writing, str(db_path))
    assert str(db_path) in result["message"]


def test_locked_error_names_holder_pid(writer: ferrumdb.FerrumDB, db_path: Path, run_spawned: Spawn) -> None:
    """LockedError's message names the pid of the process holding the lock (where the OS lets others read it)."""
    result = run_spawned(_open_for_writing, str(db_path))
    assert str(db_path) in result["message"]
    if sys.platform != "win32":  # Windows locks the whole lock file, so the pid in it cannot be read
        assert str(os.getpid()) in result["message"]


def test_refused_writer_changes_nothing(writer: ferrumdb.FerrumDB, db_path: Path, run_spawned: Spawn) -> None:
    """The refused second writer leaves the data and the first writer's handle untouched."""
    run_spawned(_open_for_writing, str(db_path))
    writer["k2"] = "still writing"
    assert dict(writer.items()) == {"k": "parent", "k2": "still writing"}


def test_read_only_beside_writer(writer: ferrumdb.FerrumDB, db_path: Path, run_spawned: Spawn) -> None:
    """Another process may open the database read-only while it is open for writing."""
    result = run_spawned(_open_read_only, str(db_path))
    assert result == {"outcome": "read", "items": {"k": "parent"}}


def test_writer_after_close(db_path: Path, run_spawned: Spawn) -> None:
    """Once the writer closes, another process can open the database and write."""
    with ferrumdb.open(db_path) as db:
        db["k"] = "parent"
    result = run_spawned(_open_for_writing, str(db_path))
    assert result["outcome"] == "wrote"
    with ferrumdb.open(db_path) as db:
        assert (db["k"], db["from-child"]) == ("parent", result["pid"])


def test_writer_after_refusal_and_close(db_path: Path, run_spawned: Spawn) -> None:
    """A process refused while the writer was open can write once the writer closed."""
    with ferrumdb.open(db_path, exclusive=True):
        first = run_spawned(_open_for_writing, str(db_path))
    second = run_spawned(_open_for_writing, str(db_path))
    assert (first["outcome"], second["outcome"]) == ("LockedError", "wrote")


def test_read_only_opener_does_not_block_writer(db_path: Path, run_spawned: Spawn) -> None:
    """A read-only handle held by this process does not stop another process from writing."""
    ferrumdb.open(db_path).close()
    with ferrumdb.open(db_path, read_only=True):
        result = run_spawned(_open_for_writing, str(db_path))
    assert result["outcome"] == "wrote"


def test_memory_databases_take_no_lock(run_spawned: Spawn) -> None:
    """:memory: databases take no lock: each process gets its own."""
    with ferrumdb.open(":memory:"):
        result = run_spawned(_open_for_writing, ":memory:")
    assert result["outcome"] == "wrote"


def _hold_exclusively(path: str, conn: Any) -> None:
    """Worker: hold ``path`` as its exclusive writer, say so, and wait to be killed."""
    db = ferrumdb.open(path, exclusive=True)
    db["held"] = True
    conn.send("holding")
    conn.recv()  # never sent: the parent kills this process


def test_exclusive_lock_is_released_by_kill_9(db_path: Path) -> None:
    """An exclusive writer killed with SIGKILL releases the database: another writer (exclusive too) opens it at once."""
    import multiprocessing
    import signal

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_hold_exclusively, args=(str(db_path), child))
    proc.start()
    try:
        assert parent.recv() == "holding"
        with pytest.raises(ferrumdb.LockedError):
            ferrumdb.open(db_path)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        with ferrumdb.open(db_path, exclusive=True) as db:
            assert db["held"] is True
    finally:
        if proc.is_alive():
            proc.kill()
