"""``ferrumdb.aio.open("postgresql://...")``: the asyncio API on the PostgreSQL backend.

On a file, most calls are a memory read and run inline (see :mod:`ferrumdb.aio`).
On PostgreSQL every call waits for the server; none may wait on the loop thread.
Two ways, each where it serves:

* **Single-key reads** (``get``, ``getitem``, ``contains``, ``get_json``,
  ``ttl``) are one ``SELECT`` each: they run the sync handle's own statement on
  a psycopg ``AsyncConnection`` owned by the handle, so the loop waits on the
  socket like any other I/O. A thread hop costs about as much as the read
  itself on a busy machine: measured on a loaded 2-core machine, a ``get``
  took 34-37 µs sync, 114 µs awaited through the pool and 76 µs awaited on the
  async connection; 100 coroutines reached 9,900 gets/s through the pool and
  12,500 on the async connection.
* **Everything else** runs the sync :class:`~ferrumdb.postgres.PostgresDB`
  method in the handle's thread pool (:data:`POOL_THREADS` threads, each with
  its own connection once used): queries, updates, writes, transactions,
  indexes, import/export. Those methods hold the filter translation, the
  native matcher on candidate rows, update operators, unique-index messages
  and conflict checks; running the very same code keeps one meaning for both
  APIs (an async copy of every SQL path would be a second implementation), and
  their CPU work (evaluating candidates) leaves the loop too.

A transaction's reads are awaited on both backends (``await tx.get(k)``,
``await tx.getitem(k)``, ``await tx.contains(k)``); here they go to the server
in the pool, and the sync forms ``tx[k]``, ``k in tx`` and ``del tx[k]`` raise
``TypeError`` saying so rather than block the loop. Writes (``tx[k] = v``,
``tx.set``, ``tx.delete``) are buffered in memory as on a file; the commit is
awaited (see :class:`ferrumdb.aio.AsyncTransaction`).

``watch()`` listens on a connection of its own, opened off the loop when the
watch is entered (``async with db.watch() as changes``) or first iterated; a
thread waits for notifications and hands them to the loop, as on a file.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

try:
    import psycopg
except ImportError:  # pragma: no cover - opening raises the ImportError naming ferrumdb[postgres]
    psycopg = None  # type: ignore[assignment]

from .aio import SCAN_CHUNK, AsyncFerrumDB, AsyncTransaction, AsyncWatch, _NotOpen
from .postgres import PostgresDB, PostgresTransaction, PostgresWatch, _check_key

__all__ = ["AsyncPostgresDB", "AsyncPostgresTransaction", "AsyncPostgresWatch", "POOL_THREADS"]

#: Threads (and so at most server connections) per async PostgreSQL handle.
#: Each call holds one for a round trip; 8 in flight keeps a local server busy
#: without taking a large share of its ``max_connections`` (default 100).
POOL_THREADS = 8


class AsyncPostgresDB(AsyncFerrumDB):
    """An open PostgreSQL-backed FerrumDB for asyncio code: ``ferrumdb.aio.open("postgresql://...")``.

    The methods of :class:`ferrumdb.aio.AsyncFerrumDB`, with the results and
    exceptions of :class:`ferrumdb.postgres.PostgresDB`. Every call that talks
    to the server runs in the handle's pool; none blocks the event loop.

    Example:
        >>> import ferrumdb.aio  # doctest: +SKIP
        >>> async with ferrumdb.aio.open("postgresql://app:pw@db/app") as db:  # doctest: +SKIP
        ...     await db.set("user:1", {"name": "alice"})
    """

    _pool_threads = POOL_THREADS
    _writes_wait = True  # set/delete/set_json/update_one go to the pool (AsyncFerrumDB's durable path)
    _sync: PostgresDB  # type: ignore[assignment]
    #: The connection single-key reads use on the loop, with the loop it belongs to.
    _reader: psycopg.AsyncConnection[Any] | None = None
    _reader_loop: asyncio.AbstractEventLoop | None = None
    _reader_connecting: asyncio.Lock | None = None

    async def close(self) -> None:
        """Close the reads' connection and the sync handle (off the loop); idempotent."""
        reader, self._reader = self._reader, None
        if reader is not None and self._reader_loop is asyncio.get_running_loop():
            await reader.close()
        await super().close()

    @property
    def sync(self) -> PostgresDB:  # type: ignore[override]
        """The underlying sync :class:`~ferrumdb.postgres.PostgresDB` handle."""
        sync = self._sync
        if isinstance(sync, _NotOpen):
            raise sync.error()
        return sync

    def __repr__(self) -> str:
        if self._opener is not None:
            return "<AsyncPostgresDB not open yet>"
        return f"<AsyncPostgresDB {self._sync!r}>"

    # -- single-key reads: one SELECT each, awaited on the handle's async connection ----

    async def _reader_connection(self) -> psycopg.AsyncConnection[Any]:
        sync = self.sync
        sync._check_usable()
        loop = asyncio.get_running_loop()
        reader = self._reader
        if reader is not None and not reader.closed and not reader.broken and self._reader_loop is loop:
            return reader
        if self._reader_connecting is None or self._reader_loop is not loop:
            self._reader_connecting = asyncio.Lock()
            self._reader_loop = loop
            self._reader = None
        async with self._reader_connecting:
            reader = self._reader
            if reader is None or reader.closed or reader.broken:
                try:
                    reader = await psycopg.AsyncConnection.connect(sync._libpq_url, autocommit=True)
                except (psycopg.ProgrammingError, psycopg.OperationalError) as e:
                    raise sync._connect_error(e) from None
                self._reader = reader
            return reader

    async def _read_row(self, statement: str, params: tuple[Any, ...]) -> Any:
        """The first row of ``statement``, run on the reads' connection (reconnected if it was lost)."""
        reader = await self._reader_connection()
        try:
            cursor = await reader.execute(statement, params)
            return await cursor.fetchone()
        except psycopg.OperationalError as e:
            if reader.broken or reader.closed:
                raise self._sync._lost_connection(e) from None
            raise

    async def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` (awaited on the async connection)."""
        try:
            return await self.getitem(key)
        except KeyError:
            return default

    async def getitem(self, key: str) -> Any:
        """The value under ``key``; ``KeyError`` if missing or expired."""
        _check_key(key)
        sync = self._sync
        row = await self._read_row(sync._sql_get, (key, sync._now()))
        sync._counters["gets"] += 1
        if row is None:
            raise KeyError(key)
        return sync._load(row[0])

    async def contains(self, key: object) -> bool:
        """Whether ``key`` is present."""
        if not isinstance(key, str) or not key:
            self.sync._check_usable()
            return False
        sync = self._sync
        return await self._read_row(sync._sql_contains, (key, sync._now())) is not None

    async def get_json(self, key: str, default: Any = None) -> Any:
        """The stored JSON text under ``key`` (as jsonb prints it), or ``default``."""
        _check_key(key)
        sync = self._sync
        row = await self._read_row(sync._sql_get, (key, sync._now()))
        sync._counters["gets"] += 1
        return default if row is None else row[0]

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires, or None; ``KeyError`` if missing."""
        _check_key(key)
        sync = self._sync
        now = sync._now()
        row = await self._read_row(sync._sql_ttl, (key, now))
        if row is None:
            raise KeyError(key)
        return None if row[0] is None else max(0.0, row[0] - now)

    # -- the rest: the sync handle's methods, in the pool --------------------------

    async def count(self, filter: dict[str, Any] | None = None, *, prefix: str | None = None) -> int:
        """Number of matching documents (off the loop)."""
        return await self._off_loop(self._sync.count, filter, prefix=prefix)

    async def explain(self, filter: dict[str, Any]) -> dict[str, Any]:
        """What ``query(filter)`` runs in PostgreSQL (off the loop: it asks the server for the plan)."""
        return await self._off_loop(self._sync.explain, filter)

    async def indexes(self) -> list[str]:
        """Indexed field names, sorted (off the loop)."""
        return await self._off_loop(self._sync.indexes)

    async def stats(self) -> dict[str, Any]:
        """Counters and table sizes (off the loop)."""
        return await self._off_loop(self._sync.stats)

    def scan(self, prefix: str = "") -> AsyncIterator[tuple[str, Any]]:
        """Iterate ``(key, value)`` for keys starting with ``prefix``, in key order.

        Pages of :data:`~ferrumdb.aio.SCAN_CHUNK` pairs are fetched in the pool;
        ``TypeError`` and ``ClosedError`` are raised here, as by the sync call.
        """
        return _scan_off_loop(self, self._sync.scan(prefix))

    # -- transactions and changes --------------------------------------------------

    def transaction(self) -> AsyncPostgresTransaction:
        """Start a transaction; ``async with`` commits it on exit (awaited) or discards on an exception.

        Reads inside it are awaited (``await tx.get(k)``); see :class:`AsyncPostgresTransaction`.

        Raises:
            ClosedError: The database is closed.
            ReadOnlyError: The handle was opened with ``read_only=True``.
        """
        return AsyncPostgresTransaction(self, self._sync.transaction())

    async def commit(self, transaction: Any) -> None:
        """Commit a transaction from :meth:`transaction` (off the loop)."""
        if isinstance(transaction, AsyncPostgresTransaction):
            await transaction.commit()
        else:
            await self._off_loop(self._sync.commit, transaction)

    def watch(self, prefix: str = "") -> AsyncPostgresWatch:
        """An async iterator of the changes committed by any process, as ``(op, key, value)``.

        It listens from the moment it is entered (``async with db.watch() as
        changes``) or awaited (``changes = await db.watch()``); a bare
        ``async for`` starts listening at its first step.

        Raises:
            TypeError: ``prefix`` is not a str.
            ClosedError: The database is closed.
        """
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
        self._sync._check_usable()
        return AsyncPostgresWatch(self, prefix)


async def _scan_off_loop(db: AsyncPostgresDB, pages: Iterator[tuple[str, Any]]) -> AsyncIterator[tuple[str, Any]]:
    """Yield what ``pages`` yields, each chunk of :data:`SCAN_CHUNK` fetched in ``db``'s pool."""
    take: Callable[[], list[tuple[str, Any]]] = functools.partial(_take, pages, SCAN_CHUNK)
    while True:
        chunk = await db._off_loop(take)
        for item in chunk:
            yield item
        if len(chunk) < SCAN_CHUNK:
            return


def _take(items: Iterator[tuple[str, Any]], n: int) -> list[tuple[str, Any]]:
    return list(itertools.islice(items, n))


class AsyncPostgresTransaction(AsyncTransaction):
    """A transaction of an :class:`AsyncPostgresDB`: ``async with db.transaction() as tx``.

    :class:`ferrumdb.aio.AsyncTransaction`'s API and behaviour: writes
    buffered in memory (``tx[k] = v``, ``tx.set``, ``tx.delete``), reads
    awaited (``await tx.get(k, default)``, ``await tx.getitem(k)``,
    ``await tx.contains(k)``), the commit awaited. Here a read asks the
    server, so it runs in the handle's pool; ``tx[k]``, ``k in tx`` and
    ``del tx[k]`` raise ``TypeError`` naming the awaited form rather than block
    the loop. A commit whose reads changed meanwhile raises
    :class:`~ferrumdb.TransactionConflict` and writes nothing.
    """

    _reads_wait = True

    def __init__(self, db: AsyncPostgresDB, transaction: PostgresTransaction) -> None:
        super().__init__(db, transaction)

    def __repr__(self) -> str:
        state = "finished" if self._tx.finished else f"{len(self._tx)} writes"
        return f"<AsyncPostgresTransaction {state}>"


class AsyncPostgresWatch(AsyncWatch):
    """Async iterator of ``(op, key, value)`` changes from :meth:`AsyncPostgresDB.watch`.

    Its LISTEN connection is opened in the handle's pool when the watch is
    entered, awaited or first iterated; from then on it behaves as
    :class:`ferrumdb.aio.AsyncWatch` (a thread waits, the loop is woken per
    change, ``aclose()`` ends it at once).
    """

    _watch: PostgresWatch | None  # type: ignore[assignment]

    def __init__(self, db: AsyncPostgresDB, prefix: str) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self._db = db
        self._prefix = prefix
        self._starting: asyncio.Future[PostgresWatch] | None = None

    async def _start(self) -> None:
        if self._watch is not None or self._ended:
            return
        if self._starting is None:
            sync = self._db._sync
            self._starting = asyncio.ensure_future(self._db._off_loop(PostgresWatch, sync, self._prefix))
        watch = await asyncio.shield(self._starting)
        if self._ended:  # closed while it was connecting
            watch.close()
            return
        self._watch = watch

    def __await__(self) -> Any:
        return self._started().__await__()

    async def _started(self) -> AsyncPostgresWatch:
        await self._start()
        return self

    async def __aenter__(self) -> AsyncPostgresWatch:
        await self._start()
        return self

    async def __anext__(self) -> tuple[str, str, Any]:
        await self._start()
        if self._watch is None:
            raise StopAsyncIteration
        return await super().__anext__()

    def close(self) -> None:
        """Stop the watch: a waiting and every later ``__anext__`` ends the iteration. Idempotent."""
        if self._watch is None:
            self._ended = True
            starting = self._starting
            if starting is not None:  # close what it opens once it has
                starting.add_done_callback(_close_started)
            return
        super().close()

    def __del__(self) -> None:
        if getattr(self, "_watch", None) is not None:
            super().__del__()

    @property
    def prefix(self) -> str:
        """The key prefix this watch reports."""
        return self._prefix

    @property
    def closed(self) -> bool:
        """Whether the watch takes no more changes."""
        return self._ended if self._watch is None else self._watch.closed


def _close_started(future: asyncio.Future[PostgresWatch]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()
