"""Failed syncs (EIO from fsync/fdatasync/msync), injected with an LD_PRELOAD shim (issue 10).

The policy pinned here (PostgreSQL's answer to "fsyncgate": after a failed
sync Linux marks the pages clean and the next sync succeeds, so a failed
sync can never be retried): the first failed sync poisons the handle. The
call that met it raises OSError(EIO); every later call except close() raises
OSError with errno EIO and a message telling the user to close and reopen; a
failure in the background (periodic flusher) reaches the NEXT call on the
handle, or close() if no call came; reopening recovers every write
acknowledged before the failure.

Each scenario runs in a child process with ``tests_py/faults/failsync.c``
preloaded; the child arms the shim through ctypes (``failsync_arm(n)``: the
n-th sync from now fails) right before the step under test, so the fault hits
exactly that step. The shim's counters prove it sat in the engine's path.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ferrumdb
from tests_py.faultfs import Child, failsync_library, run_child


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield failsync_library(tmp_path_factory.mktemp("failsync"))


# Shared by the child scenarios: the shim's controls, and the check that
# every call after the failure raises EIO telling the user to reopen.
SHIM = r"""
import ctypes
shim = ctypes.CDLL(None)
assert hasattr(shim, "failsync_arm"), "the failsync shim is not preloaded"

def later_calls(db):
    # Every later call but close() raises OSError EIO saying to reopen.
    results = {}
    for name, call in [
        ("set", lambda: db.__setitem__("later", 1)),
        ("get", lambda: db.get("k0")),
        ("flush", lambda: db.flush()),
        ("delete", lambda: db.delete("k1")),
    ]:
        try:
            call()
            results[name] = "ok"
        except OSError as e:
            results[name] = describe(e)
    return results

def finish(db):
    emit(later=later_calls(db))
    attempt("close", db.close)
    emit(shim_calls=shim.failsync_calls(), shim_failures=shim.failsync_failures())
"""


def child(shim_path: Path, script: str, *args: str) -> Child:
    return run_child(SHIM + script, *args, env={"LD_PRELOAD": str(shim_path)})


def assert_eio(error: Any, what: str) -> None:
    assert isinstance(error, dict), f"{what}: no error raised (got {error!r})"
    assert error["errno"] == errno.EIO, f"{what}: {error}"


def assert_poisoned(c: Child) -> None:
    """Later calls raise EIO telling the user to reopen; close() then succeeds; the shim fired once."""
    assert c.returncode == 0, c
    for name, result in c.event("later").items():
        assert_eio(result, f"{name} after the failed sync")
        assert "reopen" in result["message"], result
    assert c.event("close") == "ok", c
    assert c.event("shim_calls") > 0 and c.event("shim_failures") == 1, c


def assert_reopen_has(path: Path, acked: dict[str, Any]) -> None:
    with ferrumdb.open(path) as db:
        missing = {k: v for k, v in acked.items() if db.get(k) != v}
        assert not missing, f"acknowledged writes lost: {missing}"


# argv: db path, policy, the call whose sync fails ("set" or "flush").
FOREGROUND = r"""
db = ferrumdb.open(sys.argv[1], fsync=sys.argv[2])
acked = {f"k{i}": i for i in range(10)}
for k, v in acked.items():
    db[k] = v
emit(acked=acked)
import asyncio
import ferrumdb.aio

def aio_set():
    # ferrumdb.aio's durable set: written inline, its fsync awaited in the pool.
    async def main():
        await ferrumdb.aio.AsyncFerrumDB(db).set("bad", 0)
    asyncio.run(main())

shim.failsync_arm(1)
attempt("failed_call", {"set": lambda: db.__setitem__("bad", 0), "flush": db.flush, "aio_set": aio_set}[sys.argv[3]])
finish(db)
"""


@pytest.mark.parametrize(
    ("policy", "call"),
    [("always", "set"), ("always", "aio_set"), ("never", "flush"), ("periodic:60000", "flush")],
)
def test_foreground_sync_meets_eio(tmp_path: Path, shim: Path, policy: str, call: str) -> None:
    """The call whose own sync fails (a set under "always", sync or awaited, any flush()) raises EIO;
    the handle is poisoned; reopen keeps every acknowledged write."""
    db_path = tmp_path / "app.db"
    c = child(shim, FOREGROUND, str(db_path), policy, call)
    assert_eio(c.event("failed_call"), f"{call} whose sync failed")
    assert_poisoned(c)
    assert_reopen_has(db_path, c.event("acked"))


# The flusher's failure (argv[2] == "next_call") must reach the next call: the
# child polls a cheap call until it raises; or (argv[2] == "close") with no
# call in between, close() must raise it: the child waits on the shim's
# counter. Both loops are bounded by a generous guard, not a timing assertion.
PERIODIC = r"""
import time
db = ferrumdb.open(sys.argv[1], fsync="periodic:20")
acked = {f"k{i}": i for i in range(10)}
db.update(acked)
db.flush()
shim.failsync_arm(1)
db["k10"] = 10          # acknowledged (in the OS); the flusher's sync of it fails
acked["k10"] = 10
emit(acked=acked)
deadline = time.monotonic() + 60
if sys.argv[2] == "next_call":
    error = None
    while error is None and time.monotonic() < deadline:
        try:
            db.get("k0")
        except OSError as e:
            error = e
    emit(background=describe(error), flusher_failed=shim.failsync_failures())
    finish(db)
else:
    while shim.failsync_failures() == 0 and time.monotonic() < deadline:
        os.sched_yield()
    emit(flusher_failed=shim.failsync_failures())
    attempt("close", db.close)
"""


def test_periodic_flusher_eio_reaches_the_next_call(tmp_path: Path, shim: Path) -> None:
    """fsync="periodic:20": the flusher meets EIO; the next call on the handle raises it."""
    db_path = tmp_path / "app.db"
    c = child(shim, PERIODIC, str(db_path), "next_call")
    assert c.event("flusher_failed") == 1, f"the flusher never met the armed failure: {c}"
    assert_eio(c.event("background"), "the call after the flusher's failed sync")
    assert_poisoned(c)
    assert_reopen_has(db_path, c.event("acked"))


def test_periodic_flusher_eio_is_raised_by_close(tmp_path: Path, shim: Path) -> None:
    """fsync="periodic:20": with no call after the flusher's failure, close() raises EIO."""
    db_path = tmp_path / "app.db"
    c = child(shim, PERIODIC, str(db_path), "close")
    assert c.returncode == 0, c
    assert c.event("flusher_failed") == 1, c
    assert_eio(c.event("close"), "close() after the flusher's failed sync")
    assert_reopen_has(db_path, c.event("acked"))
