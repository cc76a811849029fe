"""``ferrumdb.aio``: the FerrumDB API for asyncio, which never blocks the event loop.

Most FerrumDB calls are a memory copy plus a decode, cheaper than handing work
to a thread and being woken when it is done (aiosqlite pays that hop on every
call). So the twins here split in two:

* **inline**: ``get``, ``getitem``, ``contains``, ``ttl``, ``indexes``,
  ``stats``, ``explain``, ``count()`` with no filter and no prefix, and the
  single-key writes (``set``, ``delete``, ``set_json``, ``update_one`` by key)
  unless the handle was opened with ``fsync="always"``. They are ``async def``
  functions that call the sync method directly: no thread, no wake-up.
* **off the loop**: everything that may wait: a durable write's sync
  (``fsync="always"``), ``compact``, ``backup``, ``import_jsonl``,
  ``export_jsonl``, ``flush``, ``query``, ``count``/``distinct`` with a filter,
  ``find``, ``keys``, ``update_one`` by filter, ``update_many``,
  ``delete_many``, ``create_index``, ``drop_index``, ``rekey``, transaction
  commits, opening and ``close``. They run in a thread pool owned by the handle
  (not the loop's default executor, which a busy application may have filled),
  while the native code has released the GIL, so other coroutines keep
  running. Several durable writes in flight at once share one fsync (the
  engine's group commit), which is why the pool has more than one thread.
  A durable ``set`` is split: the write itself is inline, and only its fsync
  is awaited off the loop, one at a time, each covering every write made
  before it started (group commit without a thread per write).

A cancelled await never cuts a call in half: the thread finishes the call it
started (or never starts it), only the awaiting coroutine stops waiting, and the
handle stays usable.

``scan()`` and ``watch()`` are async iterators. ``watch()`` is fed by a thread
blocked in the sync watch, which hands each change to the loop with
``call_soon_threadsafe``: the loop is woken by a change, it never polls.

Example:
    >>> import asyncio, ferrumdb.aio
    >>> async def main() -> None:
    ...     async with ferrumdb.aio.open(":memory:") as db:
    ...         await db.set("user:1", {"name": "alice"})
    ...         print(await db.get("user:1"))
    >>> asyncio.run(main())
    {'name': 'alice'}
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import sys
import threading
from collections.abc import AsyncIterator, Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from . import _native
from .db import EncryptionKey, FerrumDB, PathLike, is_postgres_url
from .db import open as _open_sync
from .errors import ClosedError

_without_waiting = _native._without_waiting

__all__ = ["open", "AsyncFerrumDB", "AsyncTransaction", "AsyncWatch", "POOL_THREADS"]

T = TypeVar("T")

#: Threads in each handle's pool. Enough for 100 coroutines' durable writes to
#: overlap in the engine's group commit (measured in benches/python_api.py
#: ``--only aio``), few enough to be cheap when idle (threads start on demand).
POOL_THREADS = 16

#: How many ``(key, value)`` pairs ``scan()`` reads inline before letting other
#: coroutines run.
SCAN_CHUNK = 256

#: How many changes the watch thread may hand to the loop before the consumer
#: takes them. Past that the thread stops reading, and the sync watch's own
#: buffer (and its overflow rule) applies, exactly as for a slow sync reader.
WATCH_HANDOFF = 256


class _NotOpen:
    """Stands in for the sync handle until ``await open(...)`` has opened it.

    Any use of it raises, so the hot methods need no "is it open" test.
    """

    closed = False

    def error(self) -> Exception:
        return RuntimeError(
            "this ferrumdb.aio database is not open yet: use 'async with ferrumdb.aio.open(path) as db' "
            "or 'db = await ferrumdb.aio.open(path)'"
        )

    def __getattr__(self, name: str) -> Any:
        raise self.error()

    def __getitem__(self, key: object) -> Any:
        raise self.error()

    def __contains__(self, key: object) -> bool:
        raise self.error()


class AsyncFerrumDB:
    """An open FerrumDB database for asyncio code: awaitable twins of the sync methods.

    Get one with :func:`open` (``async with ferrumdb.aio.open(path) as db``
    or ``db = await ferrumdb.aio.open(path)``), or wrap a handle you already
    have with ``AsyncFerrumDB(sync_db)``. Every method has the name, the
    arguments, the result and the exceptions of the sync method of
    :class:`ferrumdb.FerrumDB`; ``db.sync`` is that sync handle.

    Example:
        >>> import asyncio, ferrumdb.aio
        >>> async def main() -> None:
        ...     async with ferrumdb.aio.open(":memory:") as db:
        ...         await db.set("n", 1)
        ...         async with db.transaction() as tx:
        ...             tx["n"] = await tx.getitem("n") + 1
        ...         print(await db.getitem("n"), await db.count())
        >>> asyncio.run(main())
        2 1
    """

    #: Threads in this handle's pool.
    _pool_threads = POOL_THREADS
    #: Whether every write waits (on PostgreSQL, for the server), so none runs inline.
    _writes_wait = False

    def __new__(cls, sync: FerrumDB) -> AsyncFerrumDB:
        # Wrapping a PostgreSQL handle gives the PostgreSQL twin, whose calls never wait for the
        # server on the loop (this class's inline calls would). A file handle is a native one.
        if cls is AsyncFerrumDB and not isinstance(sync, (_native.FerrumDB, _NotOpen)):
            postgres = sys.modules.get("ferrumdb.postgres")  # imported by any PostgreSQL handle
            if postgres is not None and isinstance(sync, postgres.PostgresDB):
                from .aio_postgres import AsyncPostgresDB

                return object.__new__(AsyncPostgresDB)
        return object.__new__(cls)

    def __init__(self, sync: FerrumDB) -> None:
        """Wrap the open sync handle ``sync`` (closing this closes it)."""
        self._sync: FerrumDB = sync
        self._opener: Callable[[], FerrumDB] | None = None
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=self._pool_threads, thread_name_prefix="ferrumdb-aio"
        )
        self._durable = self._writes_wait or (not isinstance(sync, _NotOpen) and sync.fsync == "always")
        #: Group commit on the loop: the sync in flight (the highest ticket it
        #: covers, and its future), and the highest ticket written so far.
        self._syncing: tuple[int, asyncio.Future[None]] | None = None
        self._written = 0

    @classmethod
    def _opening(cls, opener: Callable[[], FerrumDB]) -> AsyncFerrumDB:
        """A handle that opens with ``opener`` (in its pool) when first awaited or entered."""
        handle = cls(_NotOpen())  # type: ignore[arg-type]
        handle._opener = opener
        return handle

    # -- opening and closing ------------------------------------------------------

    async def _ensure_open(self) -> AsyncFerrumDB:
        opener = self._opener
        if opener is None:
            return self
        self._opener = None
        executor = self._executor
        assert executor is not None
        future: Future[FerrumDB] = executor.submit(opener)
        try:
            sync = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # The open may already be running in the pool; whatever it opens
            # nobody will use, so close it as soon as it is there.
            future.add_done_callback(_close_opened)
            self._opener = opener
            raise
        except BaseException:
            self._opener = opener
            raise
        self._sync = sync
        self._durable = self._writes_wait or sync.fsync == "always"
        return self

    def __await__(self) -> Generator[Any, None, AsyncFerrumDB]:
        return self._ensure_open().__await__()

    async def __aenter__(self) -> AsyncFerrumDB:
        return await self._ensure_open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Flush and release the database (off the loop); idempotent.

        Any later call raises :class:`~ferrumdb.ClosedError`. If the close is
        cancelled, call it again: until it has finished the pool stays.
        """
        executor = self._executor
        if executor is None:
            return
        if self._opener is not None:  # never opened: nothing to flush
            self._opener = None
            self._sync = _ClosedBeforeOpen()  # type: ignore[assignment]
        else:
            await asyncio.get_running_loop().run_in_executor(executor, self._sync.close)
        # From now on every call runs inline, where the sync handle raises
        # ClosedError at once; the pool's threads end as they go idle.
        self._executor = None
        executor.shutdown(wait=False)

    @property
    def sync(self) -> FerrumDB:
        """The underlying sync :class:`ferrumdb.FerrumDB` handle."""
        sync = self._sync
        if isinstance(sync, _NotOpen):
            raise sync.error()
        return sync

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has run (on this handle or its sync handle)."""
        return self._sync.closed

    @property
    def path(self) -> str:
        """The database file, or ``":memory:"``."""
        return self.sync.path

    @property
    def read_only(self) -> bool:
        """Whether writes are refused."""
        return self.sync.read_only

    @property
    def fsync(self) -> str:
        """The fsync policy; with ``"always"`` every write runs off the loop."""
        return self.sync.fsync

    def __repr__(self) -> str:
        if self._opener is not None:
            return "<AsyncFerrumDB not open yet>"
        return f"<AsyncFerrumDB {self._sync!r}>"

    # -- how calls run ------------------------------------------------------------

    async def _off_loop(self, method: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``method(*args, **kwargs)`` in the handle's pool, awaited.

        Cancelling the await does not interrupt the call: a call already
        running finishes (a write is then complete), one still queued never
        starts (nothing written).
        """
        executor = self._executor
        if executor is None:  # closed: the sync method raises ClosedError at once
            return method(*args, **kwargs)
        if kwargs:
            method, args = functools.partial(method, *args, **kwargs), ()
        return await asyncio.get_running_loop().run_in_executor(executor, method, *args)

    # -- single keys --------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` (inline: no thread hop)."""
        return self._sync.get(key, default)

    async def getitem(self, key: str) -> Any:
        """The value under ``key`` (``db[key]``); ``KeyError`` if missing or expired (inline)."""
        return self._sync[key]

    async def contains(self, key: object) -> bool:
        """Whether ``key`` is present (``key in db``; inline)."""
        return key in self._sync

    async def _durable_at(self, ticket: int) -> None:
        """Wait until the write that returned ``ticket`` is on stable storage.

        Group commit on the loop: one sync runs in the pool at a time and
        covers every write made before it started; a coroutine whose write
        it covers awaits it, and one written after it awaits the next, which
        starts as soon as this one ends. So N coroutines writing at once pay
        about two syncs, not N, and no thread hop each. Cancelling the await
        leaves the write made (it is visible, and durable with the next
        sync) and the shared sync running.
        """
        if ticket == 0:  # nothing was written
            return
        self._written = max(self._written, ticket)
        while True:
            syncing = self._syncing
            if syncing is None or syncing[1].done():
                target = self._written
                future: asyncio.Future[None] = asyncio.ensure_future(self._off_loop(self._sync._make_durable, target))
                self._syncing = syncing = (target, future)
            target, future = syncing
            await asyncio.shield(future)
            if ticket <= target:
                return

    async def _write_inline(self, method: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``method(*args, **kwargs)`` inline, unless it would wait for a lock.

        A write that finds the write lock taken (another thread of this
        process writing or building an index, or another process writing)
        raises ``BlockingIOError`` having written nothing, and is then run in
        the pool, where waiting blocks no coroutine.
        """
        try:
            return _without_waiting(method, *args, **kwargs)
        except BlockingIOError:
            return await self._off_loop(method, *args, **kwargs)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``; ``ttl`` seconds make it expire.

        Inline, also when the handle syncs every write (``fsync="always"``):
        then the write is made inline and its fsync is awaited in the pool,
        shared by every write in flight (group commit). A write that would
        wait for a lock runs in the pool instead.
        """
        if self._writes_wait:
            await self._off_loop(self._sync.set, key, value, ttl)
        elif self._durable:
            await self._durable_at(await self._write_inline(self._sync._set_unsynced, key, value, ttl))
        else:
            # _write_inline spelled out: the hot path pays no second coroutine.
            try:
                _without_waiting(self._sync.set, key, value, ttl)
            except BlockingIOError:
                await self._off_loop(self._sync.set, key, value, ttl)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; whether it existed (off the loop under ``fsync="always"``)."""
        if self._durable:
            return await self._off_loop(self._sync.delete, key)
        return await self._write_inline(self._sync.delete, key)

    async def set_json(self, key: str, text: str) -> None:
        """Store raw JSON text under ``key`` (off the loop under ``fsync="always"``)."""
        if self._durable:
            await self._off_loop(self._sync.set_json, key, text)
        else:
            await self._write_inline(self._sync.set_json, key, text)

    async def get_json(self, key: str, default: Any = None) -> Any:
        """The stored JSON text under ``key``, or ``default`` (inline)."""
        return self._sync.get_json(key, default)

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires, or None; ``KeyError`` if missing (inline)."""
        return self._sync.ttl(key)

    # -- many keys ----------------------------------------------------------------

    async def keys(self) -> list[str]:
        """All keys, in key order (off the loop: it lists every key)."""
        return await self._off_loop(self._sync.keys)

    def scan(self, prefix: str = "") -> AsyncIterator[tuple[str, Any]]:
        """Iterate ``(key, value)`` for keys starting with ``prefix``, in key order.

        Pages of :data:`SCAN_CHUNK` pairs are read inline, and other coroutines
        run between pages. ``ClosedError`` is raised here, as by the sync call.

        Example::

            async for key, doc in db.scan("user:"):
                ...
        """
        return _scan_pages(self._sync.scan(prefix))

    async def count(self, filter: dict[str, Any] | None = None, *, prefix: str | None = None) -> int:
        """Number of matching documents; ``count()`` alone is ``len(db)`` and inline."""
        if filter is None and not prefix:
            return self._sync.count()
        return await self._off_loop(self._sync.count, filter, prefix=prefix)

    async def query(
        self,
        filter: dict[str, Any] | None = None,
        *,
        sort: str | list[Any] | None = None,
        limit: int | None = None,
        skip: int = 0,
        prefix: str | None = None,
        fields: list[str] | tuple[str, ...] | None = None,
    ) -> list[tuple[str, Any]]:
        """``(key, document)`` pairs matching a Mongo-style filter (off the loop).

        Example::

            rows = await db.query({"role": "admin"}, sort="name", limit=10)
        """
        return await self._off_loop(
            self._sync.query, filter, sort=sort, limit=limit, skip=skip, prefix=prefix, fields=fields
        )

    async def find(self, field: str, value: Any) -> list[str]:
        """Keys whose document has ``field == value`` (off the loop: it may scan)."""
        return await self._off_loop(self._sync.find, field, value)

    async def distinct(self, field: str, filter: dict[str, Any] | None = None, *, prefix: str | None = None) -> list[Any]:
        """The distinct values of ``field`` among matching documents (off the loop)."""
        return await self._off_loop(self._sync.distinct, field, filter, prefix=prefix)

    async def explain(self, filter: dict[str, Any]) -> dict[str, Any]:
        """The plan ``query(filter)`` would use (inline: it only plans)."""
        return self._sync.explain(filter)

    async def update_one(
        self, key_or_filter: str | dict[str, Any], update: dict[str, Any], *, upsert: bool = False
    ) -> Any:
        """Apply update operators to one document atomically; the new document or None.

        By key it is a single-key write (inline unless ``fsync="always"``); by
        filter it may scan, so it runs off the loop.
        """
        if isinstance(key_or_filter, str) and not self._durable:
            return await self._write_inline(self._sync.update_one, key_or_filter, update, upsert=upsert)
        return await self._off_loop(self._sync.update_one, key_or_filter, update, upsert=upsert)

    async def update_many(self, filter: dict[str, Any], update: dict[str, Any], *, prefix: str | None = None) -> int:
        """Apply update operators to every match, all or nothing; how many changed (off the loop)."""
        return await self._off_loop(self._sync.update_many, filter, update, prefix=prefix)

    async def delete_many(self, filter: dict[str, Any], *, prefix: str | None = None) -> int:
        """Delete every match, all or nothing; how many (off the loop)."""
        return await self._off_loop(self._sync.delete_many, filter, prefix=prefix)

    # -- indexes ------------------------------------------------------------------

    async def create_index(self, field: str, *, unique: bool = False, progress: bool = False) -> None:
        """Create a secondary index on ``field``, built from existing data (off the loop)."""
        await self._off_loop(self._sync.create_index, field, unique=unique, progress=progress)

    async def drop_index(self, field: str) -> None:
        """Remove the index on ``field`` (off the loop)."""
        await self._off_loop(self._sync.drop_index, field)

    async def indexes(self) -> list[str]:
        """Indexed field names, sorted (inline)."""
        return self._sync.indexes()

    # -- transactions -------------------------------------------------------------

    def transaction(self) -> AsyncTransaction:
        """Start a transaction; ``async with`` commits it on exit (awaited) or discards on an exception.

        Example::

            async with db.transaction() as tx:
                tx["counter"] = tx.get("counter", 0) + 1

        Raises:
            ClosedError: The database is closed.
        """
        return AsyncTransaction(self, self._sync.transaction())

    async def commit(self, transaction: _native.Transaction) -> None:
        """Apply a :class:`ferrumdb.Transaction` builder's writes at once (off the loop).

        Raises:
            TransactionConflict: A key it read changed since; nothing was written.
        """
        await self._off_loop(self._sync.commit, transaction)

    # -- changes ------------------------------------------------------------------

    def watch(self, prefix: str = "") -> AsyncWatch:
        """An async iterator of the changes committed after this call, as ``(op, key, value)``.

        The loop is woken when a change arrives; nothing polls. ``aclose()``
        (or leaving ``async with``) stops it; so does closing the database.

        Example::

            async with db.watch("user:") as changes:
                async for op, key, value in changes:
                    ...
        """
        return AsyncWatch(self._sync.watch(prefix))

    # -- whole-file work ----------------------------------------------------------

    async def compact(self) -> None:
        """Rewrite the file with live data only (off the loop; readers and writers keep working)."""
        await self._off_loop(self._sync.compact)

    async def flush(self) -> None:
        """Force everything written to stable storage now (off the loop)."""
        await self._off_loop(self._sync.flush)

    async def backup(self, path: PathLike, *, progress: bool = False) -> None:
        """Write a consistent, verified copy of the database to ``path`` (off the loop)."""
        await self._off_loop(self._sync.backup, path, progress=progress)

    async def export_jsonl(self, path: PathLike, *, prefix: str = "", progress: bool = False) -> int:
        """Write keys starting with ``prefix`` to ``path`` as JSON Lines; how many (off the loop)."""
        return await self._off_loop(self._sync.export_jsonl, path, prefix=prefix, progress=progress)

    async def import_jsonl(self, path: PathLike, *, indexes: bool = True, progress: bool = False) -> int:
        """Read JSON Lines from ``path``, all checked before any is written, creating the indexes the
        export recorded unless ``indexes=False``; how many (off the loop)."""
        return await self._off_loop(self._sync.import_jsonl, path, indexes=indexes, progress=progress)

    async def rekey(self, new_key: EncryptionKey) -> None:
        """Re-encrypt the database under ``new_key``, or encrypt a plain one (off the loop)."""
        await self._off_loop(self._sync.rekey, new_key)

    async def stats(self) -> dict[str, Any]:
        """Counters and sizes as a dict (inline)."""
        return self._sync.stats()


class _ClosedBeforeOpen(_NotOpen):
    """Stands in for the sync handle of a database closed before it was ever opened."""

    closed = True

    def error(self) -> Exception:
        return ClosedError("this ferrumdb.aio database was closed before it was ever opened")


def _close_opened(future: Future[FerrumDB]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


async def _scan_pages(pages: _native.ScanIterator) -> AsyncIterator[tuple[str, Any]]:
    """Yield what ``pages`` yields, letting the loop run after each :data:`SCAN_CHUNK`."""
    while True:
        chunk = list(itertools.islice(pages, SCAN_CHUNK))
        for item in chunk:
            yield item
        if len(chunk) < SCAN_CHUNK:
            return
        await asyncio.sleep(0)


class AsyncTransaction:
    """A transaction of an :class:`AsyncFerrumDB`: ``async with db.transaction() as tx``.

    Writes are buffered in memory and checked at once, as in the sync API:
    ``tx[k] = v``, ``tx.set(k, v, ttl=None)``, ``tx.delete(k)``. Reads are the
    sync API's too, and memory reads on a file: ``tx.get(k, default)``,
    ``tx[k]``, ``k in tx``. The commit is awaited; leaving the block normally
    commits, an exception discards. A commit whose reads changed meanwhile
    raises :class:`~ferrumdb.TransactionConflict` and writes nothing.

    Awaited reads, ``await tx.getitem(k)`` (``KeyError`` if missing) and
    ``await tx.contains(k)``, work on both backends: inline on a file, off the
    loop on PostgreSQL, whose transaction (a subclass) asks the server, so
    there ``tx.get`` is awaited and ``tx[k]``, ``k in tx`` and ``del tx[k]``
    raise ``TypeError`` naming the awaited form rather than block the loop.
    Code meant for both backends reads with ``getitem`` and ``contains``.
    """

    #: Whether a read waits for I/O (PostgreSQL): then it runs in the handle's pool.
    _reads_wait = False

    def __init__(self, db: AsyncFerrumDB, transaction: Any) -> None:
        self._db = db
        self._tx = transaction  # the sync transaction of the handle's backend

    async def __aenter__(self: _TxT) -> _TxT:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        if exc_type is not None:
            self._tx.discard()
        elif not self._tx.finished:
            await self.commit()

    # -- reads -----------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key`` as this transaction sees it, or ``default`` (a memory
        read, as in the sync API; awaited on PostgreSQL)."""
        return self._tx.get(key, default)

    async def getitem(self, key: str) -> Any:
        """The value under ``key`` as this transaction sees it; ``KeyError`` if missing (awaited)."""
        if self._reads_wait:
            return await self._db._off_loop(self._tx.__getitem__, key)
        return self._tx[key]

    async def contains(self, key: object) -> bool:
        """Whether ``key`` is present as this transaction sees it (awaited)."""
        if self._reads_wait:
            return await self._db._off_loop(self._tx.__contains__, key)
        return key in self._tx

    # -- the sync read spellings: a file's only ------------------------------------

    def _sync_read(self, spelling: str, instead: str) -> TypeError:
        return TypeError(
            f"{spelling} would wait for the server on the event loop; use {instead} "
            "(which also works on a file database)"
        )

    def __getitem__(self, key: str) -> Any:
        if self._reads_wait:
            raise self._sync_read("tx[key]", "'await tx.getitem(key)'")
        return self._tx[key]

    def __contains__(self, key: object) -> bool:
        if self._reads_wait:
            raise self._sync_read("'key in tx'", "'await tx.contains(key)'")
        return key in self._tx

    def __delitem__(self, key: str) -> None:
        if self._reads_wait:
            raise self._sync_read("'del tx[key]'", "'tx.delete(key)' (or check 'await tx.contains(key)' first)")
        del self._tx[key]

    # -- writes: buffered ----------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        self._tx[key] = value

    def __len__(self) -> int:
        """Number of buffered writes."""
        return len(self._tx)

    def set(self: _TxT, key: str, value: Any, ttl: float | None = None) -> _TxT:
        """Store ``value`` under ``key`` at commit (checked now)."""
        self._tx.set(key, value, ttl)
        return self

    def delete(self: _TxT, key: str) -> _TxT:
        """Remove ``key`` at commit."""
        self._tx.delete(key)
        return self

    @property
    def finished(self) -> bool:
        """Whether the transaction was committed or discarded."""
        return bool(self._tx.finished)

    async def commit(self) -> None:
        """Apply every write at once, off the loop.

        Raises:
            TransactionConflict: A key it read changed since; nothing was written.
        """
        await self._db._off_loop(self._tx.commit)

    def discard(self) -> None:
        """Drop every buffered write; the transaction is over."""
        self._tx.discard()

    def __repr__(self) -> str:
        return f"<AsyncTransaction {self._tx!r}>"


_TxT = TypeVar("_TxT", bound=AsyncTransaction)


_END = object()


class AsyncWatch:
    """Async iterator of ``(op, key, value)`` changes, from :meth:`AsyncFerrumDB.watch`.

    A thread of its own waits in the sync watch and hands each change to the
    loop, so a waiting ``__anext__`` costs nothing until a change arrives. It
    ends (``StopAsyncIteration``) after ``aclose()`` or once the database is
    closed, and raises :class:`~ferrumdb.WatchOverflowError` if the consumer
    fell more than the sync watch's limit behind.
    """

    def __init__(self, watch: _native.WatchIterator) -> None:
        self._watch = watch
        self._queue: asyncio.Queue[Any] | None = None
        self._credits = threading.Semaphore(WATCH_HANDOFF)
        self._ended = False

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __anext__(self) -> tuple[str, str, Any]:
        if self._ended:
            raise StopAsyncIteration
        queue = self._queue
        if queue is None:
            queue = self._queue = asyncio.Queue()
            threading.Thread(
                target=_pump_changes,
                args=(self._watch, self._credits, asyncio.get_running_loop(), queue),
                name="ferrumdb-aio-watch",
                daemon=True,
            ).start()
        item = await queue.get()
        self._credits.release()
        if item is _END or self._ended:
            self._ended = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        return item  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop the watch: a waiting and every later ``__anext__`` ends the iteration. Idempotent."""
        self.close()

    def close(self) -> None:
        """Stop the watch (the sync form of :meth:`aclose`)."""
        self._watch.close()
        self._credits.release()  # unblock the thread if it waits for the consumer
        if self._queue is not None and not self._ended:
            self._queue.put_nowait(_END)  # wake a waiting __anext__
        self._ended = True

    async def __aenter__(self) -> AsyncWatch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # An `async for` left with `break` drops the watch: end the thread too.
        watch = getattr(self, "_watch", None)
        if watch is not None:
            watch.close()
            self._credits.release()

    @property
    def prefix(self) -> str:
        """The key prefix this watch reports (``""`` for every key)."""
        return self._watch.prefix

    @property
    def closed(self) -> bool:
        """Whether the watch takes no more changes."""
        return self._watch.closed


def _pump_changes(
    watch: _native.WatchIterator,
    credits: threading.Semaphore,
    loop: asyncio.AbstractEventLoop,
    queue: asyncio.Queue[Any],
) -> None:
    """The watch thread: wait in the sync watch, hand each change to the loop.

    A module function holding no reference to the :class:`AsyncWatch`, so a
    watch dropped by its consumer is collected, and its ``__del__`` stops us.
    """
    while True:
        credits.acquire()
        item: Any
        try:
            item = next(watch)
        except StopIteration:
            item = _END
        except BaseException as error:  # WatchOverflowError, ClosedError, ...
            item = error
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening
            return
        if item is _END or isinstance(item, BaseException):
            return


def open(  # noqa: A001
    path: PathLike = "ferrum.db",
    *,
    fsync: str | None = None,
    read_only: bool = False,
    clock: _native.ManualClock | None = None,
    auto_compact: float | None = 0.5,
    salvage: bool = False,
    encryption_key: EncryptionKey | None = None,
    exclusive: bool = False,
) -> AsyncFerrumDB:
    """Open (creating if missing) the database at ``path`` for asyncio code.

    Takes the arguments of :func:`ferrumdb.open`. The open itself (which may
    replay a log or stretch a passphrase) runs off the loop when the result is
    awaited or entered: ``async with ferrumdb.aio.open(path) as db`` or
    ``db = await ferrumdb.aio.open(path)``.

    A ``postgresql://`` URL gives an
    :class:`~ferrumdb.aio_postgres.AsyncPostgresDB` (same methods; every call
    that talks to the server runs off the loop).

    Raises:
        The exceptions of :func:`ferrumdb.open`, when awaited.

    Example:
        >>> import asyncio, ferrumdb.aio
        >>> async def main() -> list[tuple[str, object]]:
        ...     db = await ferrumdb.aio.open(":memory:", fsync="never")
        ...     await db.set("a", 1)
        ...     rows = await db.query({})
        ...     await db.close()
        ...     return rows
        >>> asyncio.run(main())
        [('a', 1)]
    """
    opener = functools.partial(
        _open_sync,
        path,
        fsync=fsync,
        read_only=read_only,
        clock=clock,
        salvage=salvage,
        encryption_key=encryption_key,
        exclusive=exclusive,
    )
    if is_postgres_url(path):
        from .aio_postgres import AsyncPostgresDB

        return AsyncPostgresDB._opening(opener)  # PostgreSQL has no compaction
    return AsyncFerrumDB._opening(functools.partial(opener, auto_compact=auto_compact))

