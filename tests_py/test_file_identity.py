"""The file is the database: locks follow the file, not its name; non-database files are refused at once.

Real symlinks, hard links, FIFOs and devices, and real processes for the lock
and for salvage. Workers are module-level functions run under ``spawn`` and
talk to the test over pipes (no sleeps): each handshake says exactly which
step a process has reached.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="symlinks, FIFOs and flock semantics are POSIX")

_SPAWN = multiprocessing.get_context("spawn")
# Generous: only a hang (the bug) ever reaches it.
_HANG = 120


def _open_for_writing(path: str, conn: Connection) -> None:
    """Worker: open ``path`` for writing; report the outcome; keep it open until told to close."""
    try:
        db = ferrumdb.open(path)
    except ferrumdb.LockedError as e:
        conn.send(("LockedError", str(e)))
        return
    db["from-child"] = os.getpid()
    conn.send(("wrote", os.getpid()))
    conn.recv()
    db.close()


def _spawn(target: Any, *args: Any) -> tuple[Any, Connection]:
    parent, child = _SPAWN.Pipe()
    proc = _SPAWN.Process(target=target, args=(*args, child))
    proc.start()
    child.close()
    return proc, parent


def _finish(proc: Any, conn: Connection) -> None:
    try:
        conn.send("close")
    except (BrokenPipeError, OSError):
        pass
    proc.join(_HANG)
    assert proc.exitcode == 0


@pytest.mark.parametrize("alias", ["symlink", "hard link", "relative path"])
def test_another_process_meets_the_lock_through_any_name(tmp_path: Path, alias: str) -> None:
    """A writer in another process reaching the file by a symlink, hard link or relative path gets LockedError naming our pid."""
    real = tmp_path / "real.db"
    other = tmp_path / "other.db"
    with ferrumdb.open(real, exclusive=True) as db:
        db["k"] = "parent"
        if alias == "symlink":
            other.symlink_to(real)
        elif alias == "hard link":
            os.link(real, other)
        else:
            other = Path(os.path.relpath(real))
        proc, conn = _spawn(_open_for_writing, str(other))
        outcome, detail = conn.recv()
        _finish(proc, conn)
        assert outcome == "LockedError", "a second writer got in"
        assert str(os.getpid()) in detail  # the holder's pid, from /proc/locks
        assert db["k"] == "parent"


def test_deleting_the_old_lock_file_lets_no_second_writer_in(tmp_path: Path) -> None:
    """Deleting a PATH.lock ("clearing a stale lock") while a writer runs changes nothing: there is no such file."""
    path = tmp_path / "app.db"
    with ferrumdb.open(path, exclusive=True) as db:
        db["k"] = 1
        lock = tmp_path / "app.db.lock"
        if lock.exists():
            lock.unlink()
        proc, conn = _spawn(_open_for_writing, str(path))
        outcome, _ = conn.recv()
        _finish(proc, conn)
        assert outcome == "LockedError"
    # No lock file: the shared page (README, Promises) is the one file beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "app.db.shm"]


def test_second_handle_in_this_process_is_told_so(db_path: Path) -> None:
    """A second writer handle beside an exclusive one in the same process hears it is this process, not "another process"."""
    with ferrumdb.open(db_path, exclusive=True):
        with pytest.raises(ferrumdb.LockedError) as info:
            ferrumdb.open(db_path)
    message = str(info.value)
    assert "another handle in this process" in message
    assert "another process" not in message
    assert str(db_path) in message


def test_encrypt_through_a_symlink_encrypts_the_real_file(tmp_path: Path) -> None:
    """ferrumdb.encrypt("link.db", key) leaves the real file encrypted, not in plaintext, and the link a link."""
    real = tmp_path / "real.db"
    link = tmp_path / "link.db"
    link.symlink_to(real)
    with ferrumdb.open(real) as db:
        db["secret"] = "attack at dawn"
    key = bytes(range(32))
    ferrumdb.encrypt(link, key)
    assert link.is_symlink()
    assert b"attack at dawn" not in real.read_bytes()
    with pytest.raises(ferrumdb.EncryptionError):
        ferrumdb.open(real, read_only=True)
    with ferrumdb.open(real, encryption_key=key, read_only=True) as db:
        assert db["secret"] == "attack at dawn"


def test_compact_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    """compact() through a symlink rewrites the real file and leaves the link a link."""
    real = tmp_path / "real.db"
    link = tmp_path / "link.db"
    link.symlink_to(real)
    with ferrumdb.open(link) as db:
        for i in range(200):
            db[f"k{i}"] = i
            db[f"k{i}"] = i + 1
        db.compact()
        db["after"] = True
    assert link.is_symlink()
    with ferrumdb.open(real, read_only=True) as db:
        assert (len(db), db["k7"], db["after"]) == (201, 8, True)


_OPEN_SCRIPT = """
import sys, ferrumdb
try:
    ferrumdb.open(sys.argv[1], read_only=sys.argv[2] == "ro").close()
except Exception as e:
    print(type(e).__name__, getattr(e, "errno", None), e)
    sys.exit(3)
print("opened")
"""


def _open_in_subprocess(path: str, mode: str) -> str:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _OPEN_SCRIPT, path, mode],
            capture_output=True,
            text=True,
            timeout=_HANG,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"opening {path} ({mode}) hung")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("mode", ["ro", "rw"])
def test_a_fifo_is_refused_at_once(tmp_path: Path, mode: str) -> None:
    """Opening a FIFO (read-only or not) fails at once with ValueError naming it, instead of hanging in open(2)."""
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    out = _open_in_subprocess(str(fifo), mode)
    assert out.startswith("ValueError") and "FIFO" in out and str(fifo) in out, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.db"]


@pytest.mark.parametrize("read_only", [False, True])
def test_a_device_is_refused_and_nothing_is_created(read_only: bool) -> None:
    """Opening /dev/null fails with ValueError (a character device) and creates no /dev/null.lock."""
    stray = Path("/dev/null.lock")
    existed = stray.exists()
    with pytest.raises(ValueError, match="character device"):
        ferrumdb.open("/dev/null", read_only=read_only)
    assert existed or not stray.exists()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_directory_is_refused_as_is_a_directory_error(tmp_path: Path, read_only: bool) -> None:
    """Opening a directory raises IsADirectoryError with errno and file name, and leaves nothing behind."""
    sub = tmp_path / "sub.db"
    sub.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        ferrumdb.open(sub, read_only=read_only)
    assert (info.value.errno, info.value.filename) == (errno.EISDIR, str(sub))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub.db"]


# -- salvage under the lock ---------------------------------------------------------------------


def _build_damaged(path: Path) -> None:
    with ferrumdb.open(path, fsync="never") as db:
        for i in range(50):
            db[f"k{i:02d}"] = {"i": i, "pad": "x" * 50}
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


class _PausingNative:
    """Stands in for ``ferrumdb._native`` in ``ferrumdb.salvage``: the first salvage call
    reports over ``conn`` that this process has seen the damage, and waits for "go"."""

    def __init__(self, real: Any, conn: Connection) -> None:
        self._real, self._conn = real, conn

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not name.startswith("_salvage"):
            return attr

        def paused(*args: Any, **kwargs: Any) -> Any:
            self._conn.send("damaged")
            assert self._conn.recv() == "go"
            return attr(*args, **kwargs)

        return paused


def _salvage_late(path: str, conn: Connection) -> None:
    """Worker: open with salvage=True, pausing between seeing the damage and salvaging."""
    import ferrumdb.salvage

    ferrumdb.salvage._native = _PausingNative(ferrumdb.salvage._native, conn)  # type: ignore[attr-defined]
    try:
        with ferrumdb.open(path, salvage=True) as db:
            db["late"] = True
        conn.send(("opened", None))
    except ferrumdb.LockedError as e:
        conn.send(("LockedError", str(e)))
    except Exception as e:  # noqa: BLE001 - reported to the parent
        conn.send((type(e).__name__, str(e)))


def _salvage_and_write(path: str, conn: Connection) -> None:
    """Worker: open with salvage=True, write one key and acknowledge it; on command write
    another and acknowledge it; close when told."""
    import warnings

    warnings.simplefilter("ignore")
    with ferrumdb.open(path, salvage=True, fsync="always") as db:
        db["first"] = 1
        conn.send("acked first")
        assert conn.recv() == "write"
        db["second"] = 2
        conn.send("acked second")
        assert conn.recv() == "close"


def test_a_late_salvager_never_moves_the_live_file_aside(db_path: Path) -> None:
    """A process that saw the damage before another salvaged and reopened the file cannot move that live file aside."""
    _build_damaged(db_path)
    late, late_conn = _spawn(_salvage_late, str(db_path))
    assert late_conn.recv() == "damaged"  # it has seen CorruptionError and is about to salvage
    winner, win_conn = _spawn(_salvage_and_write, str(db_path))
    assert win_conn.recv() == "acked first"
    late_conn.send("go")
    outcome, _ = late_conn.recv()
    late.join(_HANG)
    win_conn.send("write")
    assert win_conn.recv() == "acked second"
    win_conn.send("close")
    winner.join(_HANG)
    assert (late.exitcode, winner.exitcode) == (0, 0)
    assert outcome == "LockedError", outcome
    with ferrumdb.open(db_path, read_only=True) as db:
        assert (db.get("first"), db.get("second")) == (1, 2), "an acknowledged write was lost"
    assert ferrumdb.check(db_path)["ok"] is True


def _race_to_salvage(path: str, name: str, conn: Connection) -> None:
    """Worker: wait for "go", open with salvage=True, write ``name`` and acknowledge it; close when told."""
    import warnings

    warnings.simplefilter("ignore")
    conn.send("ready")
    assert conn.recv() == "go"
    try:
        db = ferrumdb.open(path, salvage=True)
    except ferrumdb.LockedError:
        conn.send("locked")
        return
    db[name] = True
    conn.send("acked")
    assert conn.recv() == "close"
    db.close()


def test_racing_salvagers_lose_no_acknowledged_write(db_path: Path) -> None:
    """Several processes opening a damaged file with salvage=True at once: every acknowledged write survives."""
    _build_damaged(db_path)
    workers = [_spawn(_race_to_salvage, str(db_path), f"w{i}") for i in range(4)]
    for _, conn in workers:
        assert conn.recv() == "ready"
    for _, conn in workers:
        conn.send("go")
    outcomes = [conn.recv() for _, conn in workers]
    for proc, conn in workers:
        _finish(proc, conn)
    acked = {f"w{i}" for i, outcome in enumerate(outcomes) if outcome == "acked"}
    assert acked, outcomes
    with ferrumdb.open(db_path, read_only=True) as db:
        assert acked <= set(db.keys()), f"acknowledged writes lost: {acked - set(db.keys())}"
        assert len(db) == 49 + len(acked)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="fork is Linux-tested")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_is_told_another_process_holds_it(db_path: Path) -> None:
    """A forked child opening its parent's exclusively held database hears "another process" (the parent's pid), not "this process"."""
    db = ferrumdb.open(db_path, exclusive=True)
    db["k"] = 1
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        message = "opened"
        try:
            ferrumdb.open(db_path).close()
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            message = f"{type(e).__name__}: {e}"
        finally:
            os.write(write_end, message.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    db.close()
    assert message.startswith("LockedError") and "by another process" in message, message
    assert f"pid {os.getpid()}" in message
