"""Many threads of one process may read and write one handle concurrently.

Threads start together on a ``threading.Barrier``; no sleeps. Each thread
records any exception instead of dying silently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import ferrumdb

THREADS = 4
PER_THREAD = 400


def _run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    """Run each target in its own thread, all released at once; return the exceptions raised."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []
    lock = threading.Lock()

    def wrap(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                barrier.wait()
                target()
            except BaseException as e:  # noqa: BLE001 - collected for the assertion
                with lock:
                    errors.append(e)

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _writer(db: ferrumdb.FerrumDB, n: int) -> Callable[[], None]:
    def run() -> None:
        for i in range(PER_THREAD):
            key = f"t{n}:{i:05d}"
            db[key] = {"thread": n, "i": i}
            got = db[key]  # a thread sees its own write at once
            assert got == {"thread": n, "i": i}, (key, got)

    return run


def _expected() -> dict[str, object]:
    return {f"t{n}:{i:05d}": {"thread": n, "i": i} for n in range(THREADS) for i in range(PER_THREAD)}


def test_concurrent_writers_lose_nothing(db: ferrumdb.FerrumDB) -> None:
    """Threads setting and getting at the same time raise nothing and every write is present."""
    errors = _run_threads([_writer(db, n) for n in range(THREADS)])
    assert errors == []
    assert dict(db.items()) == _expected()


def test_concurrent_writes_survive_reopen(db_path: Path) -> None:
    """Writes made by concurrent threads are all there after reopening."""
    with ferrumdb.open(db_path) as db:
        assert _run_threads([_writer(db, n) for n in range(THREADS)]) == []
    with ferrumdb.open(db_path) as db:
        assert dict(db.items()) == _expected()


def test_readers_beside_writers(db: ferrumdb.FerrumDB) -> None:
    """Readers iterating and getting while writers write see only whole values and raise nothing."""
    for i in range(200):
        db[f"base:{i:04d}"] = {"i": i}

    def reader() -> None:
        for _ in range(20):
            for key, value in db.scan("base:"):
                assert value == {"i": int(key[5:])}
            assert len(db) >= 200

    errors = _run_threads([_writer(db, 0), _writer(db, 1), reader, reader])
    assert errors == []


def test_overwriting_same_key_from_threads(db: ferrumdb.FerrumDB) -> None:
    """Threads overwriting one key leave one of the written values, never a mix."""

    def hammer(n: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(PER_THREAD):
                db["shared"] = {"thread": n, "i": i, "payload": [n] * 50}

        return run

    assert _run_threads([hammer(n) for n in range(THREADS)]) == []
    final = db["shared"]
    assert final["payload"] == [final["thread"]] * 50 and final["i"] == PER_THREAD - 1


def test_compact_beside_writers(db: ferrumdb.FerrumDB) -> None:
    """compact() running in one thread while others write loses no write and raises nothing."""

    def compactor() -> None:
        for _ in range(10):
            db.compact()

    errors = _run_threads([_writer(db, n) for n in range(THREADS - 1)] + [compactor])
    assert errors == []
    assert dict(db.items()) == {k: v for k, v in _expected().items() if not k.startswith(f"t{THREADS - 1}:")}


def test_delete_from_threads(db: ferrumdb.FerrumDB) -> None:
    """Threads racing to delete the same keys: each key is deleted exactly once (delete() True once)."""
    for i in range(PER_THREAD):
        db[f"k{i:05d}"] = i
    wins = [0] * THREADS

    def deleter(n: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(PER_THREAD):
                if db.delete(f"k{i:05d}"):
                    wins[n] += 1

        return run

    assert _run_threads([deleter(n) for n in range(THREADS)]) == []
    assert (sum(wins), len(db)) == (PER_THREAD, 0)
