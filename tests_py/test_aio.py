"""``ferrumdb.aio`` (SPEC section 6): awaitable twins that match the sync API and never block the loop.

Each test drives its own loop with ``asyncio.run``. Threads hand over through
``threading.Event``; nothing waits on a clock. The loop-responsiveness tests
compare a heartbeat's longest gap with the duration of the work beside it, so
they hold on a slow or busy machine too.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import itertools
import shutil
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

import ferrumdb
import ferrumdb.aio
from ferrumdb import ClosedError, DuplicateKeyError, ReadOnlyError, TransactionConflict, WatchOverflowError
from ferrumdb.aio import AsyncFerrumDB

TIMEOUT = 60
START = 1_800_000_000.0


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def doc(i: int) -> dict[str, Any]:
    return {"id": i, "name": f"user {i}", "age": 20 + i % 50, "tags": ["a", "b"] if i % 3 else ["c"], "city": "Paris"}


async def wait_for_thread_event(event: threading.Event) -> None:
    """Wait for ``event`` without blocking the loop (a thread of the default executor waits)."""
    assert await asyncio.get_running_loop().run_in_executor(None, event.wait, TIMEOUT)


# -- opening and closing ------------------------------------------------------------------------


def test_async_with_opens_and_closes(db_path: Path) -> None:
    """`async with ferrumdb.aio.open(path)` gives an open handle whose `.sync` is a FerrumDB, closed on exit."""

    async def main() -> AsyncFerrumDB:
        async with ferrumdb.aio.open(db_path, fsync="never") as db:
            assert isinstance(db, AsyncFerrumDB)
            assert isinstance(db.sync, ferrumdb.FerrumDB)
            assert db.path == str(db_path) and db.fsync == "never" and not db.read_only
            assert not db.closed
            await db.set("k", {"v": 1})
        return db

    db = run(main())
    assert db.closed and db.sync.closed
    with ferrumdb.open(db_path) as again:
        assert again["k"] == {"v": 1}


def test_await_open_and_wrap(db_path: Path) -> None:
    """`await ferrumdb.aio.open(...)` opens; `AsyncFerrumDB(sync_db)` wraps a handle already open."""

    async def main() -> None:
        db = await ferrumdb.aio.open(db_path, fsync="never")
        await db.set("a", 1)
        await db.close()
        sync = ferrumdb.open(db_path)
        wrapped = AsyncFerrumDB(sync)
        assert wrapped.sync is sync
        assert await wrapped.get("a") == 1
        await wrapped.close()
        assert sync.closed

    run(main())


def test_open_errors_surface_when_awaited(tmp_path: Path) -> None:
    """Opening raises what `ferrumdb.open` raises, at the await."""

    async def main() -> None:
        pending = ferrumdb.aio.open(tmp_path / "x.db", fsync="sometimes")
        with pytest.raises(ValueError, match="fsync"):
            await pending
        with pytest.raises(IsADirectoryError):
            await ferrumdb.aio.open(tmp_path)

    run(main())


def test_use_before_open_says_how_to_open(db_path: Path) -> None:
    """A handle from `open()` that was never awaited refuses calls with a message naming the fix."""

    async def main() -> None:
        pending = ferrumdb.aio.open(db_path)
        with pytest.raises(RuntimeError, match="async with ferrumdb.aio.open"):
            await pending.get("k")
        with pytest.raises(RuntimeError, match="not open yet"):
            pending.sync
        await pending.close()  # never opened: nothing to do, and no file lock left behind
        with pytest.raises(ClosedError):
            await pending.get("k")

    run(main())
    assert not db_path.exists()


def test_close_is_idempotent_and_later_calls_raise_closed(db_path: Path) -> None:
    """After close every twin raises ClosedError, inline and off-loop alike, and close can repeat."""

    async def main() -> None:
        db = await ferrumdb.aio.open(db_path, fsync="always")
        await db.set("k", 1)
        await db.close()
        await db.close()
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: db.get("k"),
            lambda: db.getitem("k"),
            lambda: db.contains("k"),
            lambda: db.set("k", 2),
            lambda: db.delete("k"),
            lambda: db.ttl("k"),
            lambda: db.keys(),
            lambda: db.count(),
            lambda: db.count({"a": 1}),
            lambda: db.query(),
            lambda: db.find("a", 1),
            lambda: db.distinct("a"),
            lambda: db.update_one("k", {"$set": {"a": 1}}),
            lambda: db.update_many({}, {"$set": {"a": 1}}),
            lambda: db.delete_many({}),
            lambda: db.create_index("a"),
            lambda: db.drop_index("a"),
            lambda: db.indexes(),
            lambda: db.compact(),
            lambda: db.flush(),
            lambda: db.backup(db_path.with_name("b.db")),
            lambda: db.export_jsonl(db_path.with_name("e.jsonl")),
            lambda: db.import_jsonl(db_path.with_name("e.jsonl")),
            lambda: db.stats(),
        ]
        for call in calls:
            with pytest.raises(ClosedError):
                await call()
        for sync_call in (db.transaction, db.watch, db.scan):
            with pytest.raises(ClosedError):
                sync_call()

    run(main())


# -- every twin matches its sync result ---------------------------------------------------------


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except Exception as e:  # noqa: BLE001 - the class and message are what we compare
        return ("raised", (type(e), str(e)))


async def async_outcome(call: Callable[[], Awaitable[Any]]) -> tuple[str, Any]:
    try:
        return ("ok", await call())
    except Exception as e:  # noqa: BLE001
        return ("raised", (type(e), str(e)))


@pytest.mark.parametrize("fsync", ["never", "always"])
def test_every_twin_matches_its_sync_result(tmp_path: Path, fsync: str) -> None:
    """The same calls on two equal databases, one sync and one awaited, give equal results, errors and data.

    With fsync="never" the single-key writes run inline, with "always" in the pool: both paths are covered.
    """
    sync_db = ferrumdb.open(tmp_path / "sync.db", fsync=fsync, clock=ferrumdb.ManualClock(START))
    (tmp_path / "s").mkdir()
    (tmp_path / "a").mkdir()
    for i in range(60):
        sync_db[f"user:{i:02}"] = doc(i)
    sync_db.set("temp", "soon gone", ttl=30)

    # The same calls, written once with `D` standing for the database and `P` for this side's directory.
    steps: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("get", ("user:01",), {}),
        ("get", ("nobody", "dflt"), {}),
        ("getitem", ("user:02",), {}),
        ("getitem", ("nobody",), {}),
        ("getitem", (12,), {}),
        ("contains", ("user:03",), {}),
        ("contains", ("nobody",), {}),
        ("ttl", ("temp",), {}),
        ("ttl", ("user:01",), {}),
        ("ttl", ("nobody",), {}),
        ("set", ("new", {"n": [1, 2.5, None, True]}), {}),
        ("set", ("ttl:1", "x"), {"ttl": 12.5}),
        ("ttl", ("ttl:1",), {}),
        ("set", ("bad", {1, 2}), {}),
        ("set", ("bad", float("nan")), {}),
        ("set", (5, "not a str key"), {}),
        ("set", ("", "empty key"), {}),
        ("get", ("bad",), {}),
        ("set_json", ("raw", '{"j": [1]}'), {}),
        ("set_json", ("raw2", "{not json"), {}),
        ("get_json", ("raw",), {}),
        ("delete", ("user:05",), {}),
        ("delete", ("user:05",), {}),
        ("keys", (), {}),
        ("count", (), {}),
        ("count", ({"age": {"$gte": 40}},), {}),
        ("count", (None,), {"prefix": "user:1"}),
        ("query", ({"age": {"$gte": 60}},), {"sort": "-id", "limit": 5, "fields": ["name"]}),
        ("query", ({"tags": "c"},), {"skip": 2, "prefix": "user:"}),
        ("query", ({"age": {"$bogus": 1}},), {}),
        ("query", (), {"sort": [("age", 1), ("id", -1)], "limit": 3}),
        ("find", ("age", 25), {}),
        ("find", ("age", {"$gt": 3}), {}),
        ("distinct", ("age",), {}),
        ("distinct", ("tags", {"age": {"$lt": 30}}), {"prefix": "user:"}),
        ("explain", ({"age": 25},), {}),
        ("create_index", ("age",), {}),
        ("explain", ({"age": 25},), {}),
        ("find", ("age", 25), {}),
        ("create_index", ("city",), {"unique": True}),
        ("create_index", ("id",), {"unique": True}),
        ("indexes", (), {}),
        ("set", ("dup", {"id": 1}), {}),
        ("update_one", ("user:07", {"$inc": {"age": 1}, "$push": {"tags": "z"}}), {}),
        ("update_one", ("user:07", {"$inc": {"name": 1}}), {}),
        ("update_one", ("user:07", {"name": "plain field"}), {}),
        ("update_one", ({"age": {"$gte": 65}}, {"$set": {"old": True}}), {}),
        ("update_one", ("counter", {"$inc": {"n": 1}}), {"upsert": True}),
        ("update_one", ("missing", {"$inc": {"n": 1}}), {}),
        ("update_many", ({"age": {"$lt": 25}}, {"$set": {"young": True}}), {}),
        ("update_many", ({"age": {"$lt": 25}}, {"$set": {"young": True}}), {"prefix": "user:1"}),
        ("update_many", ({}, {"$inc": {"name": 1}}), {}),
        ("delete_many", ({"tags": "c"},), {"prefix": "user:2"}),
        ("drop_index", ("age",), {}),
        ("drop_index", ("not-indexed",), {}),
        ("indexes", (), {}),
        ("export_jsonl", ("P/out.jsonl",), {"prefix": "user:"}),
        ("export_jsonl", ("P/all.jsonl",), {}),
        ("delete_many", ({},), {"prefix": "user:"}),
        ("import_jsonl", ("P/out.jsonl",), {}),
        ("import_jsonl", ("P/nowhere.jsonl",), {}),
        ("compact", (), {}),
        ("flush", (), {}),
        ("backup", ("P/backup.db",), {}),
        ("keys", (), {}),
        ("count", (), {}),
    ]

    def resolve(args: tuple[Any, ...], side: str) -> tuple[Any, ...]:
        return tuple(str(tmp_path / side / a[2:]) if isinstance(a, str) and a.startswith("P/") else a for a in args)

    def same_side(result: tuple[str, Any], side: str) -> tuple[str, Any]:
        """An error message naming this side's directory, with the directory written as P."""
        kind, value = result
        if kind == "raised":
            return kind, (value[0], value[1].replace(str(tmp_path / side), "P"))
        return result

    def sync_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if name == "getitem":
            return sync_db[args[0]]
        if name == "contains":
            return args[0] in sync_db
        return getattr(sync_db, name)(*args, **kwargs)

    async def main() -> None:
        sync_db.backup(tmp_path / "async.db")
        async with ferrumdb.aio.open(tmp_path / "async.db", fsync=fsync, clock=ferrumdb.ManualClock(START)) as adb:
            for name, args, kwargs in steps:
                expected = outcome(lambda: sync_call(name, resolve(args, "s"), kwargs))
                got = await async_outcome(lambda: getattr(adb, name)(*resolve(args, "a"), **kwargs))
                assert same_side(got, "a") == same_side(expected, "s"), (name, args, kwargs)
            # stats: the same counters for the same work (timings and sizes aside).
            sync_stats, async_stats = sync_db.stats(), await adb.stats()
            assert sync_stats.keys() == async_stats.keys()
            assert async_stats["keys"] == sync_stats["keys"]
            assert dict(adb.sync.items()) == dict(sync_db.items())
            assert [x async for x in adb.scan("user:")] == list(sync_db.scan("user:"))

    try:
        run(main())
    finally:
        sync_db.close()
    for name in ("out.jsonl", "all.jsonl"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "s" / name).read_text()
    with ferrumdb.open(tmp_path / "s" / "backup.db") as s, ferrumdb.open(tmp_path / "a" / "backup.db") as a:
        assert dict(a.items()) == dict(s.items())


def test_read_only_handle_refuses_writes(db_path: Path) -> None:
    """On a read_only handle the write twins raise ReadOnlyError, as the sync calls do."""
    with ferrumdb.open(db_path) as w:
        w["k"] = {"a": 0}

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, read_only=True) as db:
            assert db.read_only
            assert await db.get("k") == {"a": 0}
            with pytest.raises(ReadOnlyError):
                await db.set("k", 2)
            with pytest.raises(ReadOnlyError):
                await db.update_many({}, {"$set": {"a": 1}})

    run(main())


# -- scan ---------------------------------------------------------------------------------------


def test_scan_pages_let_other_coroutines_run(tmp_path: Path) -> None:
    """A scan longer than one page yields everything in key order and lets other coroutines run between pages."""
    n = ferrumdb.aio.SCAN_CHUNK * 4 + 7

    async def main() -> None:
        async with ferrumdb.aio.open(tmp_path / "s.db", fsync="never") as db:
            for i in range(n):
                await db.set(f"k:{i:05}", i)
            await db.set("other", 0)
            ticks = 0
            stop = False

            async def ticker() -> None:
                nonlocal ticks
                while not stop:
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.create_task(ticker())
            seen = []
            ticks_at_start = None
            async for key, value in db.scan("k:"):
                if ticks_at_start is None:
                    ticks_at_start = ticks
                seen.append((key, value))
            stop = True
            await task
            assert seen == [(f"k:{i:05}", i) for i in range(n)]
            assert ticks_at_start is not None and ticks - ticks_at_start >= 4

    run(main())


# -- transactions -------------------------------------------------------------------------------


def test_transaction_commits_on_exit_and_reads_its_writes(db_path: Path) -> None:
    """`async with db.transaction()` sees its own writes, hides them until the awaited commit, then applies all."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="never") as db:
            await db.set("counter", 1)
            await db.set("gone", "x")
            async with db.transaction() as tx:
                tx["counter"] = tx["counter"] + 1
                tx.set("a", {"x": 1}).delete("gone")
                del tx["a"]
                tx["b"] = [1]
                assert tx.get("b") == [1] and "gone" not in tx and tx.get("a", "none") == "none"
                assert await tx.getitem("b") == [1] and not await tx.contains("gone")
                assert await db.get("b") is None  # not visible before commit
            assert tx.finished
            assert await db.get("counter") == 2
            assert await db.get("b") == [1]
            assert not await db.contains("gone")
            assert not await db.contains("a")

    run(main())


def test_file_transaction_reads_complete_inline(db_path: Path) -> None:
    """On a file, `tx.get` is the sync API's plain read, and the awaited reads portable to
    PostgreSQL (`await tx.getitem/contains`) are memory reads too: no thread hop."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="never") as db:
            await db.set("k", 1)
            async with db.transaction() as tx:
                real = db._off_loop

                async def no_hop(*_args: object, **_kwargs: object) -> None:
                    raise AssertionError("a file transaction's read went to the pool")

                db._off_loop = no_hop  # type: ignore[method-assign,assignment]
                assert tx.get("k") == 1 and tx.get("x", 0) == 0
                assert await tx.getitem("k") == 1 and await tx.contains("k") and not await tx.contains("x")
                db._off_loop = real  # type: ignore[method-assign]
                tx["k"] = 2
            assert await db.get("k") == 2

    run(main())


def test_transaction_discards_on_exception(db_path: Path) -> None:
    """An exception inside the block discards every write and propagates."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="never") as db:
            with pytest.raises(ZeroDivisionError):
                async with db.transaction() as tx:
                    tx["a"] = 1
                    1 / 0  # noqa: B018
            assert tx.finished
            assert await db.count() == 0

    run(main())


def test_transaction_conflict_writes_nothing(db_path: Path) -> None:
    """A key the transaction read, changed by another coroutine before the commit: TransactionConflict, nothing written."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="always") as db:
            await db.set("balance", 100)
            with pytest.raises(TransactionConflict):
                async with db.transaction() as tx:
                    tx["balance"] = tx["balance"] - 30
                    tx["log"] = "withdrew 30"
                    await db.set("balance", 0)  # someone else got there first
            assert await db.get("balance") == 0
            assert not await db.contains("log")
            # The retry succeeds.
            async with db.transaction() as tx:
                tx["balance"] = tx["balance"] + 5
            assert await db.get("balance") == 5

    run(main())


def test_builder_commit_and_explicit_commit(db_path: Path) -> None:
    """`await db.commit(ferrumdb.Transaction()...)` and `await tx.commit()` inside the block both apply the writes once."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="never") as db:
            await db.set("old", 1)
            await db.commit(ferrumdb.Transaction().set("a", 1).delete("old"))
            assert await db.keys() == ["a"]
            async with db.transaction() as tx:
                tx["b"] = 2
                await tx.commit()
                assert tx.finished
            assert await db.keys() == ["a", "b"]
            with pytest.raises(TypeError):
                await db.commit({"a": 1})  # type: ignore[arg-type]

    run(main())


# -- watch --------------------------------------------------------------------------------------


def test_watch_yields_changes_in_commit_order(db_path: Path) -> None:
    """`async for` over `db.watch(prefix)` gives the changes committed after the call, in order, prefix only."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="never") as db:
            await db.set("user:0", "before the watch")
            watch = db.watch("user:")
            assert watch.prefix == "user:"
            await db.set("user:1", {"n": 1})
            await db.set("other", 1)
            async with db.transaction() as tx:
                tx["user:2"] = 2
                tx["user:3"] = 3
            await db.delete("user:1")
            events = []
            async with watch:
                async for event in watch:
                    events.append(event)
                    if len(events) == 4:
                        break
            assert events == [("set", "user:1", {"n": 1}), ("set", "user:2", 2), ("set", "user:3", 3), ("delete", "user:1", None)]
            assert watch.closed

    run(main())


def test_watch_wakes_on_a_change_from_another_thread(db_path: Path) -> None:
    """A coroutine waiting in the watch wakes when another thread commits a change (no loop-side polling needed)."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="never") as db:
            watch = db.watch()
            waiting = asyncio.create_task(watch.__anext__())
            writer = threading.Thread(target=db.sync.set, args=("k", "from a thread"))
            writer.start()
            assert await asyncio.wait_for(waiting, TIMEOUT) == ("set", "k", "from a thread")
            writer.join(TIMEOUT)
            await watch.aclose()

    run(main())


def test_watch_aclose_ends_a_waiting_iteration_and_its_thread(db_path: Path) -> None:
    """aclose() ends a waiting `__anext__` with StopAsyncIteration, and the watch thread exits."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="never") as db:
            before = {t for t in threading.enumerate() if t.name == "ferrumdb-aio-watch"}
            watch = db.watch()
            waiting = asyncio.create_task(watch.__anext__())
            await asyncio.sleep(0)  # let it start waiting (a yield to the loop, not a timed wait)
            threads = [t for t in threading.enumerate() if t.name == "ferrumdb-aio-watch" and t not in before]
            assert len(threads) == 1
            await watch.aclose()
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(waiting, TIMEOUT)
            await asyncio.get_running_loop().run_in_executor(None, threads[0].join, TIMEOUT)
            assert not threads[0].is_alive()
            with pytest.raises(StopAsyncIteration):
                await watch.__anext__()
            await db.set("after", 1)  # the handle is fine

    run(main())


def test_watch_ends_when_the_database_closes(db_path: Path) -> None:
    """Closing the database ends the watch after the changes committed before the close."""

    async def main() -> None:
        db = await ferrumdb.aio.open(db_path, fsync="never")
        watch = db.watch()
        first = asyncio.create_task(watch.__anext__())
        await db.set("a", 1)
        assert await asyncio.wait_for(first, TIMEOUT) == ("set", "a", 1)
        await db.set("b", 2)
        await db.close()
        assert [e async for e in watch] == [("set", "b", 2)]

    run(main())


def test_watch_overflow_raises(db_path: Path) -> None:
    """A consumer more than the sync watch's limit behind gets WatchOverflowError, as from the sync iterator."""

    async def main() -> None:
        async with ferrumdb.aio.open(":memory:", fsync="never") as db:
            watch = db.watch()
            for i in range(10_001):
                await db.set(f"k{i}", i)
            with pytest.raises(WatchOverflowError):
                async for _ in watch:
                    pass
            with pytest.raises(StopAsyncIteration):
                await watch.__anext__()

    run(main())


# -- cancellation -------------------------------------------------------------------------------


class Gate:
    """Wraps a sync method of `db.sync` so the test knows when the pool thread entered it and when it returned."""

    def __init__(self, sync_db: ferrumdb.FerrumDB, name: str, hold: bool = True) -> None:
        self.started = threading.Event()
        self.proceed = threading.Event()
        self.done = threading.Event()
        if not hold:
            self.proceed.set()
        real = getattr(sync_db, name)

        def gated(*args: Any, **kwargs: Any) -> Any:
            self.started.set()
            assert self.proceed.wait(TIMEOUT)
            try:
                return real(*args, **kwargs)
            finally:
                self.done.set()

        setattr(sync_db, name, gated)


def test_cancelled_durable_write_in_flight_completes(db_path: Path) -> None:
    """A durable set cancelled while its fsync runs still happens whole (and reaches the disk); the handle stays usable."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="always") as db:
            gate = Gate(db.sync, "_make_durable")
            task = asyncio.create_task(db.set("k", {"big": "x" * 100_000}))
            await wait_for_thread_event(gate.started)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            gate.proceed.set()
            await wait_for_thread_event(gate.done)
            assert await db.get("k") == {"big": "x" * 100_000}
            await db.set("after", 1)
            assert await db.get("after") == 1

    run(main())
    with ferrumdb.open(db_path) as db:
        assert db["k"] == {"big": "x" * 100_000} and db["after"] == 1


def test_cancelled_write_still_queued_never_happens(db_path: Path) -> None:
    """A durable write run in the pool, cancelled while still queued (every pool thread busy), is never written."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="always") as db:
            real_set_json = db.sync.set_json
            entered = threading.Semaphore(0)
            release = threading.Event()

            def held_set_json(key: str, text: str) -> None:
                if key.startswith("busy:"):
                    entered.release()
                    assert release.wait(TIMEOUT)
                real_set_json(key, text)

            db.sync.set_json = held_set_json  # type: ignore[method-assign]
            busy = [asyncio.create_task(db.set_json(f"busy:{i}", str(i))) for i in range(ferrumdb.aio.POOL_THREADS)]
            loop = asyncio.get_running_loop()
            for _ in busy:
                assert await loop.run_in_executor(None, entered.acquire, True, TIMEOUT)
            queued = asyncio.create_task(db.set_json("queued", "1"))
            await asyncio.sleep(0)  # let it reach the pool's queue (a yield, not a timed wait)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            release.set()
            await asyncio.gather(*busy)
            await db.flush()  # a pool call queued after the cancelled one: it has had its chance
            assert await db.get("queued") is None
            assert await db.count() == ferrumdb.aio.POOL_THREADS

    run(main())


def test_cancelled_update_many_is_all_or_nothing(db_path: Path) -> None:
    """A cancelled update_many that had started changes every match (never some)."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="never") as db:
            for i in range(2000):
                await db.set(f"k{i}", {"n": i})
            gate = Gate(db.sync, "update_many")
            task = asyncio.create_task(db.update_many({}, {"$set": {"seen": True}}))
            await wait_for_thread_event(gate.started)
            task.cancel()
            gate.proceed.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            await wait_for_thread_event(gate.done)
            assert await db.count({"seen": True}) == 2000

    run(main())


def test_cancelled_compaction_finishes_and_the_handle_keeps_working(db_path: Path) -> None:
    """Cancelling an awaited compaction leaves a whole compaction: every key intact, file shrunk, writes go on."""

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="never", auto_compact=None) as db:
            for rnd in range(5):
                for i in range(3000):
                    await db.set(f"k{i}", {"i": i, "round": rnd, "pad": "p" * 200})
            size_before = (await db.stats())["file_bytes"]
            gate = Gate(db.sync, "compact", hold=False)
            task = asyncio.create_task(db.compact())
            await wait_for_thread_event(gate.started)
            task.cancel()
            # Writes and reads while the compaction may still run.
            await db.set("during", 1)
            assert await db.get("k7") == {"i": 7, "round": 4, "pad": "p" * 200}
            with pytest.raises(asyncio.CancelledError):
                await task
            await wait_for_thread_event(gate.done)
            assert (await db.stats())["file_bytes"] < size_before / 2
            assert await db.count() == 3001
            await db.set("after", 2)

    run(main())
    with ferrumdb.open(db_path) as db:
        assert len(db) == 3002
        assert db["k2999"] == {"i": 2999, "round": 4, "pad": "p" * 200}


# -- the loop stays responsive -------------------------------------------------------------------


async def longest_heartbeat_gap(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Run ``work`` beside a coroutine ticking every 2 ms; (longest gap between ticks, duration of the work)."""
    ticks: list[float] = []
    done = False

    async def heartbeat() -> None:
        ticks.append(time.perf_counter())
        while not done:
            await asyncio.sleep(0.002)
            ticks.append(time.perf_counter())

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)  # the first tick is taken before the work starts
    start = time.perf_counter()
    await work()
    end = time.perf_counter()
    done = True
    await beat
    inside = [t for t in ticks if t <= end] + [end]
    gaps = [b - a for a, b in zip(inside, inside[1:])]
    return max(gaps), end - start


def assert_responsive(measure: Callable[[], tuple[float, float]], what: str, attempts: int = 3) -> None:
    """The heartbeat's longest gap stays under a quarter of the work's duration.

    A loop blocked by the work stalls for about the whole duration every time;
    a machine busy with other processes stalls it now and then. So one attempt
    out of ``attempts`` under the bound passes, and the failure lists them all.
    """
    seen = []
    for _ in range(attempts):
        gap, duration = measure()
        if gap < 0.25 * duration:
            return
        seen.append(f"{gap * 1e3:.1f} ms of {duration * 1e3:.1f} ms")
    pytest.fail(f"{what}: the loop stalled for a large part of the work in every attempt: {seen}")


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A closed database of 200k documents, and its JSON Lines export beside it."""
    path = tmp_path_factory.mktemp("big") / "big.db"
    with ferrumdb.open(path, fsync="never") as db:
        for i in range(200_000):
            db[f"user:{i:06}"] = doc(i)
        db.export_jsonl(path.with_suffix(".jsonl"))
    yield path


@pytest.fixture(scope="module")
def garbage_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed database whose file is mostly dead records (every key overwritten many times)."""
    path = tmp_path_factory.mktemp("garbage") / "garbage.db"
    with ferrumdb.open(path, fsync="never", auto_compact=None) as db:
        for rnd in range(8):
            for i in range(40_000):
                db[f"k{i}"] = {"i": i, "round": rnd, "pad": "p" * 150}
    return path


def test_heartbeat_catches_a_blocked_loop(garbage_db: Path, tmp_path: Path) -> None:
    """The measure can fail: a compaction run on the loop thread stalls the heartbeat for most of its duration."""
    copy = tmp_path / "copy.db"
    with ferrumdb.open(garbage_db, auto_compact=None) as src:
        src.backup(copy)

    async def main() -> tuple[float, float]:
        async with ferrumdb.aio.open(copy, fsync="never", auto_compact=None) as db:

            async def compact_on_the_loop() -> None:
                db.sync.compact()

            return await longest_heartbeat_gap(compact_on_the_loop)

    gap, duration = run(main())
    assert gap > 0.5 * duration


def test_loop_responsive_during_compaction(garbage_db: Path, tmp_path: Path) -> None:
    """Compacting a garbage-heavy database: the heartbeat's longest gap stays under a quarter of the compaction."""
    attempt = iter(range(10))

    async def main() -> tuple[float, float]:
        copy = tmp_path / f"copy{next(attempt)}.db"
        with ferrumdb.open(garbage_db, auto_compact=None) as src:
            src.backup(copy)  # a copy as full of garbage, for each attempt
        async with ferrumdb.aio.open(copy, fsync="never", auto_compact=None) as db:
            before = (await db.stats())["file_bytes"]
            result = await longest_heartbeat_gap(db.compact)
            assert (await db.stats())["file_bytes"] < before / 4
            return result

    assert_responsive(lambda: run(main()), "compact")


def test_loop_responsive_during_backup(big_db: Path, tmp_path: Path) -> None:
    """Backing up a large database: the heartbeat's longest gap stays under a quarter of the backup."""

    async def main() -> tuple[float, float]:
        async with ferrumdb.aio.open(big_db, fsync="never") as db:
            return await longest_heartbeat_gap(lambda: db.backup(tmp_path / "backup.db"))

    assert_responsive(lambda: run(main()), "backup")
    with ferrumdb.open(tmp_path / "backup.db") as copy:
        assert len(copy) == 200_000


def test_loop_responsive_during_import(big_db: Path, tmp_path: Path) -> None:
    """Importing 200k JSON lines: the heartbeat's longest gap stays under a quarter of the import."""
    lines = big_db.with_suffix(".jsonl")
    attempt = iter(range(10))

    async def main() -> tuple[float, float]:
        async with ferrumdb.aio.open(tmp_path / f"imported{next(attempt)}.db", fsync="never") as db:

            async def import_all() -> None:
                assert await db.import_jsonl(lines) == 200_000

            return await longest_heartbeat_gap(import_all)

    assert_responsive(lambda: run(main()), "import_jsonl")


def test_loop_responsive_during_full_scan_query(big_db: Path) -> None:
    """A query that scans 200k documents: the heartbeat's longest gap stays under a quarter of the query."""

    async def main() -> tuple[float, float]:
        async with ferrumdb.aio.open(big_db, fsync="never") as db:

            async def scan_all() -> None:
                rows = await db.query({"name": {"$regex": "77$"}, "city": "Paris"})
                assert len(rows) == 2_000

            return await longest_heartbeat_gap(scan_all)

    assert_responsive(lambda: run(main()), "query")


def test_loop_responsive_while_a_large_result_is_converted(big_db: Path) -> None:
    """A query returning all 200k documents: turning them into Python objects (GIL held) leaves the loop gaps to run."""

    async def main() -> tuple[float, float]:
        async with ferrumdb.aio.open(big_db, fsync="never") as db:

            async def fetch_all() -> None:
                rows = await db.query({"city": {"$exists": True}})
                assert len(rows) == 200_000

            return await longest_heartbeat_gap(fetch_all)

    assert_responsive(lambda: run(main()), "query returning every document")


def test_loop_responsive_while_writes_wait_for_an_index_build(big_db: Path, tmp_path: Path) -> None:
    """Sets awaited while create_index builds over 200k documents (writers paused): they wait in the pool, not on the loop."""
    attempts = itertools.count()

    async def main() -> tuple[float, float]:
        path = tmp_path / f"copy{next(attempts)}.db"  # each attempt builds the index afresh
        shutil.copyfile(big_db, path)
        async with ferrumdb.aio.open(path, fsync="never") as db:

            async def build_and_write() -> None:
                build = asyncio.create_task(db.create_index("age"))
                await asyncio.sleep(0)  # the build is handed to the pool (a yield, not a timed wait)
                for i in range(50):
                    await db.set(f"new:{i}", doc(i))
                await build
                assert await db.count({"age": 20}) == 4_000 + 1

            return await longest_heartbeat_gap(build_and_write)

    assert_responsive(lambda: run(main()), "sets beside an index build")


def test_loop_responsive_during_durable_write_burst(tmp_path: Path) -> None:
    """100 coroutines writing with fsync="always": the heartbeat's longest gap stays under a quarter of the burst."""

    async def main() -> tuple[float, float]:
        async with ferrumdb.aio.open(tmp_path / "always.db", fsync="always") as db:

            async def writer(w: int) -> None:
                for i in range(20):
                    await db.set(f"w{w}:{i}", doc(i))

            async def burst() -> None:
                await asyncio.gather(*(writer(w) for w in range(100)))

            result = await longest_heartbeat_gap(burst)
            assert await db.count() == 2000
            return result

    assert_responsive(lambda: run(main()), "fsync=always burst")


# -- loops and types ------------------------------------------------------------------------------


def test_works_under_uvloop(db_path: Path) -> None:
    """The same calls run under uvloop's event loop (when uvloop is installed)."""
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="always") as db:
            await db.set("a", 1)
            watch = db.watch()
            await db.set("b", 2)
            assert await watch.__anext__() == ("set", "b", 2)
            await watch.aclose()
            assert await db.query() == [("a", 1), ("b", 2)]

    uvloop.run(main())


def test_group_commit_calls_refuse_bad_input(db_path: Path) -> None:
    """The native calls behind aio's durable set: wrong types, a ticket never issued, a closed handle."""
    db = ferrumdb.open(db_path, fsync="always")
    with pytest.raises(TypeError):
        db._set_unsynced(1, {"a": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        db._set_unsynced("k", {"a": 1}, ttl=0)
    with pytest.raises(TypeError):
        db._set_unsynced("k", object())
    ticket = db._set_unsynced("k", {"a": 1})
    assert isinstance(ticket, int) and ticket > 0
    db._make_durable(ticket)
    db._make_durable(2**64 - 1)  # never issued: returns once what was written is synced
    with pytest.raises(OverflowError):
        db._make_durable(-1)
    with pytest.raises(TypeError):
        db._make_durable("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ferrumdb._native._without_waiting(1)  # type: ignore[arg-type]
    db.close()
    with pytest.raises(ferrumdb.ClosedError):
        db._set_unsynced("k", 2)
    with pytest.raises(ferrumdb.ClosedError):
        db._make_durable(ticket)
    with ferrumdb.open(db_path) as again:
        assert again["k"] == {"a": 1}


def test_works_under_anyio_with_the_asyncio_backend(db_path: Path) -> None:
    """anyio applications (FastAPI, Starlette) run the calls on anyio's asyncio backend, task groups and cancel scopes included."""
    anyio = pytest.importorskip("anyio")

    async def main() -> None:
        async with ferrumdb.aio.open(db_path, fsync="always") as db:

            async def writer(w: int) -> None:
                for i in range(10):
                    await db.set(f"w{w}:{i}", i)

            async with anyio.create_task_group() as tg:
                for w in range(10):
                    tg.start_soon(writer, w)
            assert await db.count() == 100
            with anyio.CancelScope() as scope:
                scope.cancel()
                await db.compact()  # cancelled at its first await: the handle stays usable
            assert await db.get("w3:4") == 4
            assert await db.query({}, limit=1) == [("w0:0", 0)]

    anyio.run(main, backend="asyncio")


def test_aio_api_type_checks(tmp_path: Path) -> None:
    """Typical use of ferrumdb.aio passes mypy --strict (the module is fully annotated)."""
    pytest.importorskip("mypy")
    snippet = tmp_path / "use_aio.py"
    snippet.write_text(
        "import asyncio\n"
        "from typing import Any\n"
        "import ferrumdb, ferrumdb.aio\n"
        "async def main() -> None:\n"
        "    async with ferrumdb.aio.open(':memory:', fsync='never') as db:\n"
        "        await db.set('k', {'a': 1}, ttl=None)\n"
        "        v: Any = await db.get('k')\n"
        "        ok: bool = await db.delete('k')\n"
        "        rows: list[tuple[str, Any]] = await db.query({'a': 1}, sort='a', limit=1)\n"
        "        n: int = await db.count({'a': 1}) + await db.update_many({}, {'$set': {'b': 1}})\n"
        "        async for key, doc in db.scan('k'):\n"
        "            pass\n"
        "        async with db.transaction() as tx:\n"
        "            tx['a'] = 1\n"
        "        async with db.watch('k') as changes:\n"
        "            async for op, key, value in changes:\n"
        "                break\n"
        "        sync_db: ferrumdb.FerrumDB = db.sync\n"
        "    db2 = await ferrumdb.aio.open(':memory:')\n"
        "    await db2.close()\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(snippet)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

