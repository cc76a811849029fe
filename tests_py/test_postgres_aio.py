"""``ferrumdb.aio.open("postgresql://...")``: awaitable twins on PostgreSQL that never talk to the server on the loop thread.

Threads hand over through ``threading.Event`` and the watch's own wake-up; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

import ferrumdb
import ferrumdb.aio
from ferrumdb import ClosedError, DuplicateKeyError, ReadOnlyError, TransactionConflict
from ferrumdb.aio import AsyncFerrumDB, AsyncTransaction
from ferrumdb.aio_postgres import AsyncPostgresDB, AsyncPostgresTransaction
from ferrumdb.postgres import PostgresDB
from tests_py.pg_support import drop_table, pg_url, server_url, table_url  # noqa: F401

TIMEOUT = 60
START = 1_800_000_000.0


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


def user(i: int) -> dict[str, Any]:
    return {"id": i, "age": 20 + i % 50, "tags": ["c"] if i % 3 == 0 else ["a"]}


class ServerCalls:
    """Records the thread of every call a PostgresDB handle sends to the server (its ``_run``)."""

    def __init__(self, db: PostgresDB) -> None:
        self.threads: list[int] = []
        run = db._run

        def recording(fn: Any, **kwargs: Any) -> Any:
            self.threads.append(threading.get_ident())
            return run(fn, **kwargs)

        db._run = recording  # type: ignore[method-assign]


def test_aio_open_of_a_url_gives_the_postgres_handle(pg_url: str) -> None:
    """ferrumdb.aio.open(url) opens off the loop and gives an AsyncPostgresDB (an AsyncFerrumDB); close ends it."""

    async def main() -> None:
        handle = ferrumdb.aio.open(pg_url)
        assert repr(handle) == "<AsyncPostgresDB not open yet>"
        async with handle as db:
            assert isinstance(db, AsyncPostgresDB) and isinstance(db, AsyncFerrumDB)
            assert isinstance(db.sync, PostgresDB) and db.fsync == "server"
            await db.set("a", {"n": 1})
            assert await db.get("a") == {"n": 1}
        assert db.closed
        with pytest.raises(ClosedError):
            await db.get("a")
        with pytest.raises(ClosedError):
            db.transaction()
        with pytest.raises(ValueError, match="fsync"):
            await ferrumdb.aio.open(pg_url, fsync="always")

    asyncio.run(main())


def test_wrapping_a_postgres_handle_gives_the_postgres_twin(pg_url: str) -> None:
    """AsyncFerrumDB(sync) on a PostgreSQL handle is an AsyncPostgresDB (whose calls never wait for the
    server on the loop), still an AsyncFerrumDB; on a file handle it stays an AsyncFerrumDB."""

    async def main() -> None:
        wrapped = AsyncFerrumDB(ferrumdb.open(pg_url))
        assert type(wrapped) is AsyncPostgresDB and isinstance(wrapped.sync, ferrumdb.FerrumDB)
        await wrapped.set("k", 1)
        assert await wrapped.get("k") == 1
        await wrapped.close()
        on_file = AsyncFerrumDB(ferrumdb.open(":memory:"))
        assert type(on_file) is AsyncFerrumDB
        await on_file.close()

    asyncio.run(main())


def test_every_twin_matches_its_sync_result(tmp_path: Path) -> None:
    """The same calls on two equal tables, one sync and one awaited, give equal results, errors and data."""
    base = server_url()
    tables = ["aio_s_" + tmp_path.name[-8:].replace("-", "_"), "aio_a_" + tmp_path.name[-8:].replace("-", "_")]
    clock = ferrumdb.ManualClock(START)
    sync_db = ferrumdb.open(table_url(base, tables[0]), clock=clock)
    (tmp_path / "s").mkdir()
    (tmp_path / "a").mkdir()
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
        ("set", ("bad", {1, 2}), {}),
        ("set", (5, "not a str key"), {}),
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
        ("find", ("age", 25), {}),
        ("distinct", ("tags", {"age": {"$lt": 30}}), {"prefix": "user:"}),
        ("create_index", ("age",), {}),
        ("create_index", ("id",), {"unique": True}),
        ("indexes", (), {}),
        ("set", ("dup", {"id": 1}), {}),
        ("update_one", ("user:07", {"$inc": {"age": 1}, "$push": {"tags": "z"}}), {}),
        ("update_one", ("user:07", {"$inc": {"name": 1}}), {}),
        ("update_one", ({"age": {"$gte": 65}}, {"$set": {"old": True}}), {}),
        ("update_one", ("counter", {"$inc": {"n": 1}}), {"upsert": True}),
        ("update_many", ({"age": {"$lt": 25}}, {"$set": {"young": True}}), {}),
        ("delete_many", ({"tags": "c"},), {"prefix": "user:2"}),
        ("drop_index", ("age",), {}),
        ("indexes", (), {}),
        ("export_jsonl", ("P/out.jsonl",), {"prefix": "user:"}),
        ("delete_many", ({},), {"prefix": "user:"}),
        ("import_jsonl", ("P/out.jsonl",), {}),
        ("import_jsonl", ("P/nowhere.jsonl",), {}),
        ("backup", ("P/backup.db",), {}),
        ("flush", (), {}),
        ("keys", (), {}),
    ]

    def resolve(args: tuple[Any, ...], side: str) -> tuple[Any, ...]:
        return tuple(str(tmp_path / side / a[2:]) if isinstance(a, str) and a.startswith("P/") else a for a in args)

    def same_side(result: tuple[str, Any], side: str) -> tuple[str, Any]:
        kind, value = result
        if kind == "raised":
            return kind, (value[0], value[1].replace(str(tmp_path / side), "P").replace(tables[side == "a"], "T"))
        return result

    def sync_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if name == "getitem":
            return sync_db[args[0]]
        if name == "contains":
            return args[0] in sync_db
        return getattr(sync_db, name)(*args, **kwargs)

    async def main() -> None:
        async with ferrumdb.aio.open(table_url(base, tables[1]), clock=clock) as adb:
            for db in (sync_db, adb.sync):
                db.write_many([(f"user:{i:02}", json.dumps(user(i)), None) for i in range(60)])
                db.set("temp", "soon gone", ttl=30)
            calls = ServerCalls(adb.sync)
            for name, args, kwargs in steps:
                expected = outcome(lambda: sync_call(name, resolve(args, "s"), kwargs))
                got = await async_outcome(lambda: getattr(adb, name)(*resolve(args, "a"), **kwargs))
                assert same_side(got, "a") == same_side(expected, "s"), (name, args, kwargs)
            assert calls.threads and threading.get_ident() not in calls.threads
            assert dict(adb.sync.items()) == dict(sync_db.items())
            assert [x async for x in adb.scan("user:")] == list(sync_db.scan("user:"))
            assert (await adb.stats()).keys() == sync_db.stats().keys()

    try:
        asyncio.run(main())
    finally:
        sync_db.close()
        for table in tables:
            drop_table(base, table)
    assert (tmp_path / "a" / "out.jsonl").read_text() == (tmp_path / "s" / "out.jsonl").read_text()


def test_no_blocking_server_call_runs_on_the_loop_thread(pg_url: str) -> None:
    """Writes, counts, scans, queries, a transaction's reads and its commit reach the server through the
    sync handle from pool threads only (single-key reads use the async connection, see below)."""

    async def main() -> None:
        async with ferrumdb.aio.open(pg_url) as db:
            calls = ServerCalls(db.sync)
            await db.set("n", {"v": 1})
            await db.get("n")
            await db.contains("n")
            await db.count()
            await db.ttl("n")
            [x async for x in db.scan()]
            async with db.transaction() as tx:
                assert await tx.get("n") == {"v": 1}
                assert await tx.getitem("n") == {"v": 1}
                assert await tx.contains("n") and not await tx.contains("m")
                tx["n"] = {"v": 2}
                tx.set("m", 3)
            await db.update_one("n", {"$inc": {"v": 1}})
            await db.query({"v": 3})
            await db.indexes()
            await db.explain({"v": 3})
            loop_thread = threading.get_ident()
            assert len(calls.threads) >= 10 and loop_thread not in calls.threads
            assert await db.get("n") == {"v": 3} and await db.get("m") == 3

    asyncio.run(main())


def test_calls_waiting_for_the_server_let_the_loop_run(pg_url: str) -> None:
    """A get (async connection) and a query (pool) held up by a table lock leave the loop free: the coroutine
    that releases the lock runs, then both answer. (A blocked loop would fail on lock_timeout, not hang.)"""

    async def main() -> None:
        async with ferrumdb.aio.open(pg_url + "&options=-c%20lock_timeout%3D30000") as db:
            await db.set("k", {"v": 1})
            table = db.sync.table
            admin = await psycopg.AsyncConnection.connect(server_url())
            try:
                await admin.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
                waiting = [asyncio.ensure_future(db.get("k")), asyncio.ensure_future(db.query({"v": 1}))]
                blocked = 0
                while blocked < 2:  # each look is a round trip on the loop: the two calls are waiting meanwhile
                    cursor = await admin.execute(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass", (f'"{table}"',)
                    )
                    row = await cursor.fetchone()
                    assert row is not None and not any(w.done() for w in waiting)
                    blocked = row[0]
                await admin.commit()
            finally:
                await admin.close()
            assert await asyncio.wait_for(waiting[0], TIMEOUT) == {"v": 1}
            assert await asyncio.wait_for(waiting[1], TIMEOUT) == [("k", {"v": 1})]

    asyncio.run(main())


def test_reads_reconnect_after_a_lost_connection(pg_url: str) -> None:
    """The server ending the reads' connection makes that read raise ConnectionError; the next one reconnects."""

    async def main() -> None:
        async with ferrumdb.aio.open(pg_url) as db:
            await db.set("k", 1)
            assert await db.get("k") == 1
            reader = db._reader
            assert reader is not None
            with psycopg.connect(server_url(), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 60000)", (reader.info.backend_pid,))
            with pytest.raises(ConnectionError, match="lost the connection"):
                await db.get("k")
            assert await db.get("k") == 1 and await db.contains("k") and await db.ttl("k") is None

    asyncio.run(main())


def test_concurrent_reads_share_the_connection_and_each_gets_its_own_answer(pg_url: str) -> None:
    """Many coroutines reading at once on the one reads' connection: every answer is the one asked for."""

    async def main() -> None:
        async with ferrumdb.aio.open(pg_url) as db:
            db.sync.write_many([(f"k{i:03}", json.dumps({"i": i}), None) for i in range(200)])
            keys = [f"k{i:03}" for i in range(200)] + ["missing"]
            got = await asyncio.gather(*(db.get(k, "none") for k in keys), *(db.contains(k) for k in keys))
            assert got[: len(keys)] == [{"i": i} for i in range(200)] + ["none"]
            assert got[len(keys) :] == [True] * 200 + [False]

    asyncio.run(main())


def test_a_read_cancelled_while_the_server_works_leaves_no_answer_behind(pg_url: str) -> None:
    """Cancelling an awaited read whose statement is still running closes that connection, so the
    next read (on a new one) never takes the abandoned statement's answer for its own."""

    async def main() -> None:
        async with ferrumdb.aio.open(pg_url) as db:
            await db.set("a", "value of a")
            await db.set("b", "value of b")
            assert await db.get("a") == "value of a"
            reader = db._reader
            assert reader is not None
            with psycopg.connect(server_url(), autocommit=True) as admin, admin.transaction():
                admin.execute(f"LOCK TABLE {db.sync._t} IN ACCESS EXCLUSIVE MODE")  # reads wait for it
                read = asyncio.ensure_future(db.get("a"))
                blocked = "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted"
                while not admin.execute(blocked, (reader.info.backend_pid,)).fetchone()[0]:
                    await asyncio.sleep(0)  # handshake: the read's statement waits on the server
                read.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await read
                assert reader.closed and db._reader is None
            assert await db.get("b") == "value of b"
            assert db._reader is not None and db._reader is not reader

    asyncio.run(main())


def test_transaction_reads_are_awaited_and_sync_reads_say_so(pg_url: str) -> None:
    """tx[k], k in tx and del tx[k] raise TypeError naming the awaited form; an exception discards."""

    async def main() -> None:
        async with ferrumdb.aio.open(pg_url) as db:
            await db.set("k", 1)
            async with db.transaction() as tx:
                assert isinstance(tx, AsyncPostgresTransaction)
                with pytest.raises(TypeError, match=r"await tx.getitem\(key\)"):
                    tx["k"]
                with pytest.raises(TypeError, match=r"await tx.contains\(key\)"):
                    "k" in tx  # noqa: B015
                with pytest.raises(TypeError, match=r"tx.delete\(key\)"):
                    del tx["k"]
                with pytest.raises(KeyError):
                    await tx.getitem("absent")
                tx["k"] = await tx.getitem("k") + 1
                assert await tx.get("k") == 2 and len(tx) == 1
            assert await db.get("k") == 2
            with pytest.raises(RuntimeError):
                async with db.transaction() as tx:
                    tx["k"] = 100
                    raise RuntimeError
            assert await db.get("k") == 2

    asyncio.run(main())


def test_transaction_conflict_writes_nothing(pg_url: str) -> None:
    """A key read by an async transaction and changed by another handle before commit raises TransactionConflict."""

    async def main() -> None:
        async with ferrumdb.aio.open(pg_url) as db:
            await db.set("k", 1)
            with ferrumdb.open(pg_url) as other:
                with pytest.raises(TransactionConflict):
                    async with db.transaction() as tx:
                        await tx.get("k")
                        tx["out"] = "written?"
                        other["k"] = 2
            assert not await db.contains("out")

    asyncio.run(main())


@pytest.fixture(params=["file", "postgresql"])
def either_backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each backend: a file path, then a PostgreSQL URL."""
    if request.param == "file":
        return str(tmp_path / "f.db")
    return str(request.getfixturevalue("pg_url"))


def test_one_transaction_body_runs_on_both_backends(either_backend: str) -> None:
    """The same async transaction code on a file and on PostgreSQL: the awaited reads (getitem,
    contains), writes buffered, the commit awaited, a conflict writing nothing, an exception
    discarding; the same classes. (``tx.get`` is the sync API's on a file, awaited on PostgreSQL.)"""

    async def main() -> None:
        async with ferrumdb.aio.open(either_backend) as db:
            assert isinstance(db, AsyncFerrumDB) and isinstance(db.sync, ferrumdb.FerrumDB)
            await db.set("n", 1)
            await db.set("gone", "x")
            async with db.transaction() as tx:
                assert isinstance(tx, AsyncTransaction)
                assert await tx.getitem("n") == 1 and not await tx.contains("absent")
                tx["n"] = await tx.getitem("n") + 1
                tx.set("a", {"x": 1}, ttl=60).delete("gone")
                with pytest.raises(KeyError):
                    await tx.getitem("gone")  # its own delete
                assert await tx.getitem("n") == 2 and await tx.contains("a") and not await tx.contains("gone")
                assert not await tx.contains(7) and len(tx) == 3
                assert await db.get("n") == 1  # nothing visible before the commit
            assert tx.finished
            assert await db.get("n") == 2 and await db.get("a") == {"x": 1} and not await db.contains("gone")
            with pytest.raises(ZeroDivisionError):
                async with db.transaction() as tx:
                    tx["n"] = 100
                    1 / 0  # noqa: B018
            assert await db.get("n") == 2
            with pytest.raises(TransactionConflict):
                async with db.transaction() as tx:
                    tx["n"] = await tx.getitem("n") - 30
                    tx["log"] = "withdrew 30"
                    await db.set("n", 0)  # someone else got there first
            assert await db.get("n") == 0 and not await db.contains("log")

    asyncio.run(main())


def test_read_only_and_unique_errors_surface_when_awaited(pg_url: str) -> None:
    """The sync handle's exceptions arrive through the await: ReadOnlyError, DuplicateKeyError."""

    async def main() -> None:
        async with ferrumdb.aio.open(pg_url) as db:
            await db.create_index("email", unique=True)
            await db.set("a", {"email": "x"})
            with pytest.raises(DuplicateKeyError):
                await db.set("b", {"email": "x"})
        async with ferrumdb.aio.open(pg_url, read_only=True) as ro:
            assert await ro.get("a") == {"email": "x"}
            with pytest.raises(ReadOnlyError):
                await ro.set("a", 1)
            with pytest.raises(ReadOnlyError):
                ro.transaction()

    asyncio.run(main())


def test_watch_yields_changes_from_another_process_handle(pg_url: str) -> None:
    """async with db.watch() listens once entered; changes by another handle arrive in commit order."""

    async def main() -> None:
        async with ferrumdb.aio.open(pg_url) as db:
            await db.set("user:0", "before")
            async with db.watch("user:") as changes:
                assert changes.prefix == "user:" and not changes.closed
                with ferrumdb.open(pg_url) as other:
                    other["other"] = 1
                    other["user:1"] = {"n": 1}
                    with other.transaction() as tx:
                        tx["user:2"] = 2
                        tx.delete("user:0")
                got = [await asyncio.wait_for(changes.__anext__(), TIMEOUT) for _ in range(3)]
            assert got[0] == ("set", "user:1", {"n": 1})
            assert sorted(got[1:]) == [("delete", "user:0", None), ("set", "user:2", 2)]
            assert changes.closed

    asyncio.run(main())


def test_watch_aclose_ends_a_waiting_iteration_and_its_thread(pg_url: str) -> None:
    """aclose() wakes the thread waiting for a notification: the waiting __anext__ ends and the thread exits."""

    async def main() -> None:
        async with ferrumdb.aio.open(pg_url) as db:
            changes = await db.watch()
            before = {t for t in threading.enumerate() if t.name == "ferrumdb-aio-watch"}
            waiting = asyncio.ensure_future(changes.__anext__())
            await asyncio.sleep(0)  # let __anext__ start the thread
            threads = [t for t in threading.enumerate() if t.name == "ferrumdb-aio-watch" and t not in before]
            assert len(threads) == 1
            await changes.aclose()
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(waiting, TIMEOUT)
            await asyncio.get_running_loop().run_in_executor(None, threads[0].join, TIMEOUT)
            assert not threads[0].is_alive()
            assert changes.closed

    asyncio.run(main())


def test_a_watch_closed_before_it_started_never_listens(pg_url: str) -> None:
    """Closing a watch that was never entered ends it without opening a connection."""

    async def main() -> None:
        async with ferrumdb.aio.open(pg_url) as db:
            changes = db.watch()
            changes.close()
            assert changes.closed
            with pytest.raises(StopAsyncIteration):
                await changes.__anext__()

    asyncio.run(main())
