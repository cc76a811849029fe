"""Two processes sharing one PostgreSQL table: visibility, exact $inc totals and watch (SPEC section 7).

Workers are module-level functions run under ``spawn``; they synchronise with
the test through pipes (no sleeps).
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

import ferrumdb
from tests_py.pg_support import pg_url  # noqa: F401

INCREMENTS = 200
CLAIMS = 100


def _reader_worker(url: str, pipe: Connection) -> None:
    with ferrumdb.open(url) as db:
        pipe.send("ready")
        while True:
            key = pipe.recv()
            if key is None:
                return
            pipe.send(db.get(key))


def _increment_worker(url: str, pipe: Connection) -> None:
    with ferrumdb.open(url) as db:
        pipe.send("ready")
        pipe.recv()  # start together with the parent
        for _ in range(INCREMENTS):
            db.update_one("counter", {"$inc": {"n": 1}})
        pipe.send("done")


def _writer_worker(url: str, pipe: Connection) -> None:
    with ferrumdb.open(url) as db:
        pipe.recv()  # the parent's watch is listening
        db["w:1"] = {"from": "child"}
        with db.transaction() as tx:
            tx["w:2"] = 2
            tx["w:3"] = 3
        db.delete("w:1")
        pipe.send("done")


def _claim_worker(url: str, pipe: Connection) -> None:
    """Try to take every email of CLAIMS under this process's own keys; report which it got."""
    with ferrumdb.open(url) as db:
        pipe.send("ready")
        side = pipe.recv()
        got = []
        for i in range(CLAIMS):
            try:
                db[f"{side}:{i}"] = {"emails": [f"e{i}", f"{side}{i}"]}
                got.append(i)
            except ferrumdb.DuplicateKeyError:
                pass
        pipe.send(got)


def _spawn(target: Any, url: str) -> tuple[Any, Connection]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=target, args=(url, child))
    process.start()
    return process, parent


def test_a_write_is_seen_by_the_other_process(pg_url: str) -> None:
    """A write acknowledged in one process is read by the next read in another."""
    process, pipe = _spawn(_reader_worker, pg_url)
    try:
        assert pipe.recv() == "ready"
        with ferrumdb.open(pg_url) as db:
            for i in range(5):
                db["k"] = {"i": i}
                pipe.send("k")
                assert pipe.recv() == {"i": i}
            del db["k"]
            pipe.send("k")
            assert pipe.recv() is None
        pipe.send(None)
    finally:
        process.join()
    assert process.exitcode == 0


def test_concurrent_increments_are_never_lost(pg_url: str) -> None:
    """update_one $inc from two processes at once adds up exactly."""
    with ferrumdb.open(pg_url) as db:
        db["counter"] = {"n": 0}
        process, pipe = _spawn(_increment_worker, pg_url)
        try:
            assert pipe.recv() == "ready"
            pipe.send("go")
            for _ in range(INCREMENTS):
                db.update_one("counter", {"$inc": {"n": 1}})
            assert pipe.recv() == "done"
        finally:
            process.join()
        assert process.exitcode == 0
        assert db["counter"] == {"n": 2 * INCREMENTS}


def test_watch_sees_another_process_commits(pg_url: str) -> None:
    """watch() reports another process's writes, in commit order, a transaction's events together."""
    with ferrumdb.open(pg_url) as db:
        process, pipe = _spawn(_writer_worker, pg_url)
        try:
            with db.watch("w:") as watch:
                pipe.send("listening")
                events = [next(watch) for _ in range(4)]
            assert pipe.recv() == "done"
        finally:
            process.join()
    assert process.exitcode == 0
    assert events[0] == ("set", "w:1", {"from": "child"})
    assert sorted(events[1:3]) == [("set", "w:2", 2), ("set", "w:3", 3)]
    assert events[3] == ("delete", "w:1", None)


def test_racing_processes_claim_each_unique_value_once(pg_url: str) -> None:
    """Two processes writing the same values under a unique index (as array elements): each value is taken
    exactly once, and the loser of each race got DuplicateKeyError with nothing written."""
    with ferrumdb.open(pg_url) as db:
        db.create_index("emails", unique=True)
    workers = [_spawn(_claim_worker, pg_url) for _ in range(2)]
    try:
        for _, pipe in workers:
            assert pipe.recv() == "ready"
        for side, (_, pipe) in zip("ab", workers):
            pipe.send(side)
        got = [pipe.recv() for _, pipe in workers]
    finally:
        for process, _ in workers:
            process.join()
    assert all(process.exitcode == 0 for process, _ in workers)
    assert sorted(got[0] + got[1]) == list(range(CLAIMS))
    with ferrumdb.open(pg_url) as db:
        assert len(db) == CLAIMS
        assert sorted(k for k, _ in db.scan("a:")) == sorted(f"a:{i}" for i in got[0])
