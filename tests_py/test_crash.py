"""Acknowledged means kept: a write that returned survives the process being killed with SIGKILL.

A child process writes sequential keys and prints each key to stdout only after
its write returned. The parent reads those acknowledgements from the pipe and
SIGKILLs the child after a random number of them (no sleeps: the cut point is a
count), then reopens the database and checks every acknowledged write.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

import ferrumdb
from tests_py.kill import run_until_killed

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

_COMPACTING = "compacting"
_LIMIT = 1_000_000  # the child never gets near this: the parent kills it first


def _key(i: int) -> str:
    return f"k{i:08d}"


def _value(i: int) -> dict[str, Any]:
    return {"i": i, "pad": "p" * (i % 97), "nested": [i, str(i), {"odd": i % 2 == 1}]}


def _child_main(path: str, fsync: str, mode: str) -> None:
    """Runs in the child: write, then acknowledge on stdout; in "compact" mode compact every 7 writes."""
    out = sys.stdout
    with ferrumdb.open(path, fsync=fsync) as db:
        for i in range(_LIMIT):
            db[_key(i)] = _value(i)
            if mode == "compact":
                db["hot"] = i  # overwritten on every step, so each compact has garbage to drop
            out.write(_key(i) + "\n")
            out.flush()
            if mode == "compact" and i % 7 == 6:
                out.write(_COMPACTING + "\n")
                out.flush()
                db.compact()


def _run_and_kill(path: Path, fsync: str, mode: str, seed: int) -> list[str]:
    """Start the child, SIGKILL it at a random acknowledged point; return every acknowledged key."""
    rng = random.Random(seed)
    target = rng.randint(1, 1500) if mode == "plain" else rng.randint(1, 40) * 7
    code = f"from tests_py.test_crash import _child_main; _child_main({str(path)!r}, {fsync!r}, {mode!r})"

    def stop(lines: list[str]) -> bool:
        done = sum(1 for line in lines if line != _COMPACTING)
        if mode == "plain":
            return done >= target
        return lines[-1] == _COMPACTING and done >= target  # kill while (or just before) compact() runs

    acked = [line for line in run_until_killed(code, stop) if line != _COMPACTING]
    assert len(acked) >= target
    return acked


def _check(path: Path, acked: list[str], mode: str) -> None:
    with ferrumdb.open(path) as db:
        for key in acked:
            assert db.get(key) == _value(int(key[1:])), f"acknowledged write {key} lost or wrong"
        written = [k for k in db.keys() if k != "hot"]
        # Nothing invented: the keys are exactly the acknowledged ones, plus at most the one
        # write that was in flight when the signal landed.
        assert written[: len(acked)] == acked
        assert len(written) - len(acked) in (0, 1)
        for key in written[len(acked) :]:
            assert db[key] == _value(int(key[1:]))
        if mode == "compact":
            assert db["hot"] >= int(acked[-1][1:])


_SEEDS = range(5)


@pytest.mark.parametrize("seed", _SEEDS)
@pytest.mark.parametrize("fsync", ["periodic:100", "never"])
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, fsync: str, seed: int) -> None:
    """Every write acknowledged before SIGKILL is present with its value after reopen."""
    path = tmp_path / "crash.db"
    acked = _run_and_kill(path, fsync, "plain", seed)
    _check(path, acked, "plain")


@pytest.mark.parametrize("seed", _SEEDS)
@pytest.mark.parametrize("fsync", ["periodic:100", "never"])
def test_acknowledged_writes_survive_sigkill_during_compact(tmp_path: Path, fsync: str, seed: int) -> None:
    """A SIGKILL landing while compact() runs loses no acknowledged write."""
    path = tmp_path / "crash.db"
    acked = _run_and_kill(path, fsync, "compact", seed)
    _check(path, acked, "compact")


def test_database_writable_after_sigkill(tmp_path: Path) -> None:
    """After the writer was killed, the database opens for writing (the lock died with it) and keeps new writes."""
    path = tmp_path / "crash.db"
    acked = _run_and_kill(path, "periodic:100", "plain", seed=99)
    with ferrumdb.open(path) as db:
        db["after"] = "crash"
    with ferrumdb.open(path) as db:
        assert (db["after"], db[acked[-1]]) == ("crash", _value(int(acked[-1][1:])))


def test_repeated_crashes_keep_everything(tmp_path: Path) -> None:
    """Killing the writer several times in a row on the same file loses no acknowledged write."""
    path = tmp_path / "crash.db"
    survivors: dict[str, Any] = {}
    for seed in range(3):
        # Each run restarts at k00000000 and overwrites: same values, so earlier acks must still hold.
        acked = _run_and_kill(path, "never", "plain", seed=100 + seed)
        survivors.update({k: _value(int(k[1:])) for k in acked})
        with ferrumdb.open(path) as db:
            for key, value in survivors.items():
                assert db[key] == value


@pytest.mark.parametrize("seed", _SEEDS)
def test_interrupted_compact_leaves_no_stray_files(tmp_path: Path, seed: int) -> None:
    """After a SIGKILL during a compact() loop, reopening leaves only the database and its hint."""
    path = tmp_path / "crash.db"
    _run_and_kill(path, "never", "compact", seed)
    with ferrumdb.open(path):
        names = {p.name for p in tmp_path.iterdir()}
        # The shared page (README, Promises) stays beside the database.
        allowed = {"crash.db", "crash.db.shm", "crash.db.hint"}
        assert {"crash.db", "crash.db.shm"} <= names <= allowed
