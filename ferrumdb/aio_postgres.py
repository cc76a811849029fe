"""``ferrumdb.aio.open("postgresql://...")``: the asyncio API on the PostgreSQL backend.

On a file, most calls are a memory read and run inline (see :mod:`ferrumdb.aio`).
On PostgreSQL every call waits for the server; none may wait on the loop thread.
Two ways, each where it serves:

* **Single-key reads** (``get``, ``getitem``, ``contains``, ``get_json``,
  ``ttl``) are one prepared ``SELECT`` each, sent through libpq directly on a
  non-blocking connection owned by the handle, the loop waiting on its socket
  like on any other I/O (:meth:`AsyncPostgresDB._read`). A thread hop costs
  about as much as the read itself on a busy machine, and psycopg's
  ``AsyncConnection.execute`` about three times the server's work: on a quiet
  moment of a loaded 2-core machine an awaited ``get`` took 20 µs this way
  against 67 µs through psycopg's ``AsyncConnection`` (and 114 µs through the
  pool, in an earlier measurement).
* **Everything else** runs the sync :class:`~ferrumdb.postgres.PostgresDB`
  method in the handle's thread pool (:data:`POOL_THREADS` threads, each with
  its own connection once used): queries, updates, writes, transactions,
  indexes, import/export. Those methods hold the filter translation, the
  native matcher on candidate rows, update operators, unique-index messages
  and conflict checks; running the very same code keeps one meaning for both
  APIs (an async copy of every SQL path would be a second implementation), and
  their CPU work (evaluating candidates) leaves the loop too.

A transaction's reads are awaited here (``await tx.get(k)``,
``await tx.getitem(k)``, ``await tx.contains(k)``; the last two on a file as
well, where ``tx.get`` is the sync API's): they go to the server in the
pool, and the sync forms ``tx[k]``, ``k in tx`` and ``del tx[k]`` raise
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
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

try:
    import psycopg
    from psycopg import pq
except ImportError:  # pragma: no cover - opening raises the ImportError naming ferrumdb[postgres]
    psycopg = None  # type: ignore[assignment]

from .aio import SCAN_CHUNK, AsyncFerrumDB, AsyncTransaction, AsyncWatch, _NotOpen
from .postgres import (
    _UNKNOWN_STATEMENT,
    PostgresDB,
    PostgresTransaction,
    PostgresWatch,
    _check_result,
    _key_bytes,
    _remaining,
    _Statement,
)

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
    #: Held while a statement is in flight on the reads' connection (one at a time).
    _reader_busy: asyncio.Lock | None = None
    #: The statements prepared on the reads' connection.
    _reader_prepared: set[bytes]

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
        if reader is not None and not reader.closed and self._reader_loop is loop:
            return reader
        if self._reader_connecting is None or self._reader_loop is not loop:
            self._reader_connecting = asyncio.Lock()
            self._reader_busy = asyncio.Lock()
            self._reader_loop = loop
            self._reader = None
        async with self._reader_connecting:
            reader = self._reader
            if reader is None or reader.closed:
                try:
                    reader = await psycopg.AsyncConnection.connect(
                        sync._libpq_url, autocommit=True, client_encoding="UTF8"
                    )
                except (psycopg.ProgrammingError, psycopg.OperationalError) as e:
                    raise sync._connect_error(e) from None
                self._reader = reader
                self._reader_prepared = set()
            return reader

    async def _read(self, statement: _Statement, params: list[bytes | None]) -> Any:
        """The result of a single-key ``statement`` on the reads' connection, awaited.

        The statement goes to libpq directly (prepared once per connection), and the
        loop waits for the socket: psycopg's ``AsyncConnection.execute`` took about
        65 µs where this takes about 23 µs on the same server. One statement at a
        time per connection. If the await is cancelled or fails while a statement is
        in flight, the connection is closed (the next read opens a new one), so no
        half-read answer is ever taken for the next one's.
        """
        reader = await self._reader_connection()
        busy = self._reader_busy
        assert busy is not None
        async with busy:
            if reader is not self._reader:  # replaced while this read waited its turn
                reader = await self._reader_connection()
            try:
                if statement.name not in self._reader_prepared:
                    await _complete(reader, lambda pg: pg.send_prepare(statement.name, statement.sql, statement.types))
                    self._reader_prepared.add(statement.name)
                result = await _complete(reader, lambda pg: pg.send_query_prepared(statement.name, params))
                if result.error_field(pq.DiagnosticField.SQLSTATE) == _UNKNOWN_STATEMENT:  # a pooler's DISCARD ALL
                    await _complete(reader, lambda pg: pg.send_prepare(statement.name, statement.sql, statement.types))
                    result = await _complete(reader, lambda pg: pg.send_query_prepared(statement.name, params))
                return _check_result(reader, result)
            except psycopg.OperationalError as e:
                self._drop_reader(reader)
                raise self._sync._lost_connection(e) from None
            except BaseException as e:
                if not isinstance(e, psycopg.Error):  # cancelled (or worse) mid-statement
                    self._drop_reader(reader)
                raise

    def _drop_reader(self, reader: psycopg.AsyncConnection[Any]) -> None:
        if self._reader is reader:
            self._reader = None
        reader.pgconn.finish()

    async def _get_text(self, key: str) -> str | None:
        raw = _key_bytes(key)
        sync = self._sync
        if raw is None:
            sync._check_usable()
            return None
        result = await self._read(sync._stmt_get, [raw, repr(sync._now()).encode()])
        sync._counters["gets"] += 1
        return None if result.ntuples == 0 else bytes(result.get_value(0, 0)).decode()

    async def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` (awaited on the async connection)."""
        text = await self._get_text(key)
        return default if text is None else json.loads(text)

    async def getitem(self, key: str) -> Any:
        """The value under ``key``; ``KeyError`` if missing or expired."""
        text = await self._get_text(key)
        if text is None:
            raise KeyError(key)
        return json.loads(text)

    async def contains(self, key: object) -> bool:
        """Whether ``key`` is present."""
        raw = _key_bytes(key) if isinstance(key, str) and key else None
        sync = self._sync
        if raw is None:
            self.sync._check_usable()
            return False
        result = await self._read(sync._stmt_contains, [raw, repr(sync._now()).encode()])
        return bool(result.ntuples)

    async def get_json(self, key: str, default: Any = None) -> Any:
        """The stored JSON text under ``key`` (as jsonb prints it), or ``default``."""
        text = await self._get_text(key)
        return default if text is None else text

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires, or None; ``KeyError`` if missing."""
        raw = _key_bytes(key)
        sync = self._sync
        if raw is None:
            sync._check_usable()
            raise KeyError(key)
        now = sync._now()
        return _remaining(key, await self._read(sync._stmt_ttl, [raw, repr(now).encode()]), now)

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

    :class:`ferrumdb.aio.AsyncTransaction`'s API and behaviour, except that a
    read asks the server, so every read is awaited and runs in the handle's
    pool: ``await tx.get(k, default)``, ``await tx.getitem(k)``,
    ``await tx.contains(k)``; ``tx[k]``, ``k in tx`` and ``del tx[k]`` raise
    ``TypeError`` naming the awaited form rather than block the loop. A commit whose reads changed meanwhile raises
    :class:`~ferrumdb.TransactionConflict` and writes nothing.
    """

    _reads_wait = True

    def __init__(self, db: AsyncPostgresDB, transaction: PostgresTransaction) -> None:
        super().__init__(db, transaction)

    async def get(self, key: str, default: Any = None) -> Any:  # a read asks the server
        """The value under ``key`` as this transaction sees it, or ``default`` (awaited)."""
        return await self._db._off_loop(self._tx.get, key, default)

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


async def _complete(conn: psycopg.AsyncConnection[Any], send: Callable[[Any], None]) -> Any:
    """Send one request on ``conn``'s libpq connection (non-blocking) and await its result.

    The loop waits for the socket to be writable (while the request does not fit) and
    readable (until the whole answer is in); libpq raises ``OperationalError`` if the
    connection is lost. Every result is read, so the connection is idle again after.
    """
    pgconn = conn.pgconn
    loop = asyncio.get_running_loop()
    send(pgconn)
    while pgconn.flush():
        await _socket_ready(loop, pgconn.socket, writing=True)
    results: list[Any] = []
    while True:
        pgconn.consume_input()
        while not pgconn.is_busy():  # get_result() would block otherwise
            result = pgconn.get_result()
            if result is None:  # the answer is complete
                if not results:
                    raise psycopg.OperationalError(pgconn.get_error_message() or "the server sent no result")
                return results[0]
            results.append(result)
        await _socket_ready(loop, pgconn.socket, writing=False)


async def _socket_ready(loop: asyncio.AbstractEventLoop, fd: int, *, writing: bool) -> None:
    """Wait until ``fd`` is readable (or writable)."""
    ready: asyncio.Future[None] = loop.create_future()
    add, remove = (loop.add_writer, loop.remove_writer) if writing else (loop.add_reader, loop.remove_reader)
    add(fd, _set_ready, ready)
    try:
        await ready
    finally:
        remove(fd)


def _set_ready(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _close_started(future: asyncio.Future[PostgresWatch]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()
