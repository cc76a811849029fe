"""Type stubs for the FerrumDB extension module (``ferrumdb._native``).

The public API is :class:`ferrumdb.FerrumDB`, which subclasses the native :class:`FerrumDB`.
"""

import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, final

from typing_extensions import Self, disjoint_base

_T = TypeVar("_T")


__all__ = [
    "FerrumDB",
    "ScanIterator",
    "WatchIterator",
    "ManualClock",
    "Transaction",
    "RemoteStudio",
    "serve_studio",
    "_after_fork_in_child",
    "_without_waiting",
    "cli_main",
    "check",
    "_salvage_in_place",
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "__version__",
]

__version__: str
MAX_KEY_BYTES: int
MAX_VALUE_BYTES: int

@disjoint_base
class FerrumDB:
    """Open handle to a FerrumDB database (use ``ferrumdb.open``)."""

    def __new__(
        cls,
        path: str | os.PathLike[str] = ...,
        *,
        fsync: str | None = None,
        read_only: bool = False,
        clock: ManualClock | None = None,
        auto_compact: float | None = ...,
        encryption_key: bytes | bytearray | memoryview | str | None = None,
        exclusive: bool = False,
    ) -> FerrumDB: ...
    def __getitem__(self, key: str, /) -> Any: ...
    def __setitem__(self, key: str, value: Any, /) -> None: ...
    def __delitem__(self, key: str, /) -> None: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> ScanIterator: ...
    def get(self, key: str, default: Any = None) -> Any:
        """Value under ``key``, or ``default`` when it is missing."""
    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``."""
    def _set_unsynced(self, key: str, value: Any, ttl: float | None = None) -> int:
        """``set`` up to its fsync; the ticket to pass to ``_make_durable`` (for ferrumdb.aio)."""
    def _make_durable(self, ticket: int) -> None:
        """Wait until the write that returned ``ticket`` is durable (GIL released)."""
    def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires (sub-second precision), or None if it never does."""
    def delete(self, key: str) -> bool:
        """Remove ``key``; returns whether it existed."""
    def keys(self) -> list[str]:
        """All keys, in key order, as a list."""
    def count(self, filter: dict[str, Any] | None = None, *, prefix: str | None = None) -> int:
        """Number of documents matching ``filter`` whose key starts with ``prefix``.

        ``count()`` is ``len(db)``. Answered without reading documents where it
        can: no filter, or one indexed equality, ``$in`` or range.

        Example::

            >>> db.count({"status": "new"}, prefix="order:")
            2
        """
    def distinct(self, field: str, filter: dict[str, Any] | None = None, *, prefix: str | None = None) -> list[Any]:
        """The distinct values of ``field`` among matching documents, in query sort order.

        An array counts element by element; documents without the field add
        nothing; ``1`` and ``1.0`` are one value.

        Example::

            >>> db.distinct("tags", {"status": "new"})
            ['blue', 'red']
        """
    def scan(self, prefix: str = "") -> ScanIterator:
        """Iterate ``(key, value)`` for keys starting with ``prefix``, in key order."""
    def _iter_values(self) -> ScanIterator: ...
    def _iter_items(self) -> ScanIterator: ...
    def set_json(self, key: str, text: str) -> None:
        """Store raw JSON text under ``key`` after checking it is one valid document."""
    def get_json(self, key: str, default: Any = None) -> Any:
        """The stored JSON text under ``key``, or ``default`` when it is missing."""
    def create_index(self, field: str, *, unique: bool = False, progress: bool = False) -> None:
        """Create a secondary index on ``field`` (dotted paths reach into nested objects).

        Args:
            field: a dotted path such as ``"address.city"``.
            unique: refuse a write that would give two documents the same value
                (a missing field counts as ``None``, as in MongoDB).
            progress: show a progress bar while the index is built.

        Raises:
            DuplicateKeyError: ``unique=True`` and two documents already share a
                value (the message names it); nothing is created.
            ValueError: a malformed path, or an index on ``field`` with the other
                ``unique`` setting exists (drop it first).

        Example::

            >>> db.create_index("email", unique=True)
            >>> db["u2"] = {"email": "ann@x.io"}   # DuplicateKeyError if u1 has it
        """
    def drop_index(self, field: str) -> None:
        """Remove the index on ``field`` (nothing happens if there is none)."""
    def indexes(self) -> list[str]:
        """Indexed field names, sorted."""
    def find(self, field: str, value: Any) -> list[str]:
        """Keys whose document has ``field == value``, in key order.

        Raises:
            ValueError: ``value`` is an operator dict such as ``{"$gt": 3}``;
                use ``query({field: {"$gt": 3}})`` for operators.
        """
    def query(
        self,
        filter: dict[str, Any] | None = None,
        *,
        sort: str | list[Any] | None = None,
        limit: int | None = None,
        skip: int = 0,
        prefix: str | None = None,
        fields: list[str] | tuple[str, ...] | None = None,
    ) -> list[tuple[str, Any]]:
        """``(key, document)`` pairs matching a Mongo-style ``filter`` (all when None).

        Args:
            filter: ``{"role": "admin", "score": {"$gte": 50}}``; operators
                ``$eq $ne $gt $gte $lt $lte $in $nin $exists $regex $not $size
                $all $elemMatch``, and ``$and $or $nor``.
            sort: ``"field"``, ``"-field"`` or a list of ``(field, 1 or -1)``.
            limit: at most this many rows, after ``skip``.
            skip: rows skipped first.
            prefix: only keys starting with it (a "collection").
            fields: dotted paths each document is cut down to (projection).

        Raises:
            ValueError: a malformed filter, sort or fields, naming the part.

        Example::

            >>> db.query({"status": "new"}, prefix="order:", fields=["total"], sort="-total")
            [('order:1', {'total': 5}), ('order:3', {'total': 1})]
        """
    def update_one(self, key_or_filter: str | dict[str, Any], update: dict[str, Any], *, upsert: bool = False) -> Any:
        """Apply update operators to one document, atomically; return the new document or None.

        Args:
            key_or_filter: a key, or a filter whose first match in key order is updated.
            update: ``$set $unset $inc $mul $min $max $rename $push`` (with
                ``$each``) ``$pull $addToSet $pop`` on dotted paths.
            upsert: with a key, start from ``{}`` when it is missing.

        Raises:
            ValueError: a malformed update (no operators, plain fields, an
                unknown operator), or an integer overflow.
            TypeError: an operator meets the wrong type (``$inc`` on a string),
                naming the key and path.
            DuplicateKeyError: a unique index refuses the result.

        Nothing is written when it raises; the key keeps its TTL.

        Example::

            >>> db.update_one("counter", {"$inc": {"n": 1}}, upsert=True)
            {'n': 1}
        """
    def update_many(self, filter: dict[str, Any], update: dict[str, Any], *, prefix: str | None = None) -> int:
        """Apply update operators to every match, all or nothing; return how many documents changed.

        Example::

            >>> db.update_many({"status": "new"}, {"$set": {"status": "seen"}}, prefix="order:")
            2
        """
    def delete_many(self, filter: dict[str, Any], *, prefix: str | None = None) -> int:
        """Delete every match, all or nothing; return how many.

        Example::

            >>> db.delete_many({"status": "cancelled"})
            1
        """
    def explain(self, filter: dict[str, Any]) -> dict[str, Any]:
        """The plan ``query(filter)`` would use."""
    def watch(self, prefix: str = "") -> WatchIterator:
        """Iterate over the changes committed after this call, as ``(op, key, value)`` tuples.

        ``op`` is ``"set"`` (with the new value) or ``"delete"`` (value None; also
        for an expired key). At most 10,000 unread changes are buffered; past
        that, ``next()`` raises :class:`WatchOverflowError`.
        """
    def backup(self, path: str | os.PathLike[str], *, progress: bool = False) -> None:
        """Write a consistent, verified copy of the database to ``path`` while it stays in use."""
    def rekey(self, new_key: bytes | bytearray | memoryview | str) -> None:
        """Re-encrypt the database under ``new_key``, or encrypt a plain one."""
    def compact(self, *, progress: bool = False) -> None:
        """Rewrite the file with live data only; ``progress=True`` shows a progress bar (records copied)."""
    def export_jsonl(self, path: str | os.PathLike[str], *, prefix: str = "", progress: bool = False) -> int:
        """Write the keys starting with ``prefix`` to ``path`` as JSON Lines; returns the number of records."""
    def import_jsonl(self, path: str | os.PathLike[str], *, indexes: bool = True, progress: bool = False) -> int:
        """Read JSON Lines from ``path`` (all lines checked before any is written); returns the number stored.

        The indexes the export recorded are created first; ``indexes=False`` skips them."""
    def flush(self) -> None:
        """Force everything written to stable storage now."""
    def stats(self) -> dict[str, Any]:
        """Counters and sizes as a dict."""
    def _index_definitions(self) -> list[tuple[str, bool]]:
        """``(field, unique)`` for every index, sorted by field (not public API)."""
    def _wait_for_compaction(self) -> None:
        """Block until no background compaction is scheduled or running (for tests)."""
    def close(self) -> None:
        """Flush and release the database; idempotent."""
    def studio(
        self, port: int = 7474, host: str = "127.0.0.1", token: str | None = None, read_only: bool = False
    ) -> str:
        """Start Ferrum Studio for this database in the background; returns its URL."""
    def stop_studio(self) -> bool:
        """Stop the Studio serving this handle, if any; returns whether one ran."""
    @property
    def closed(self) -> bool:
        """Whether ``close()`` has run (or the handle crossed a fork)."""
    @property
    def path(self) -> str:
        """The database file, or ``":memory:"``."""
    @property
    def read_only(self) -> bool:
        """Whether writes are refused."""
    @property
    def is_live(self) -> bool:
        """Whether this handle sees writes other processes make after it opened (False: a snapshot)."""
    @property
    def fsync(self) -> str:
        """The fsync policy, as the string ``open()`` accepts."""

@final
class ScanIterator:
    """Iterator returned by ``iter(db)``, ``scan()``, ``values()`` and ``items()``."""

    def __iter__(self) -> ScanIterator: ...
    def __next__(self) -> Any: ...

@final
class WatchIterator:
    """Iterator of change events returned by ``db.watch(prefix)``."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> tuple[str, str, Any]:
        """The next ``(op, key, value)``, waiting for one; StopIteration once the watch or the database is closed."""
    def take_ready(self) -> list[tuple[str, str, Any]]:
        """Every change already waiting, without waiting for more (``[]`` if none).

        On a read-only handle following another process, ``next()`` takes in
        that process's commits whole, so ``[next(w), *w.take_ready()]`` holds
        whole transactions.
        """
    def close(self) -> None:
        """Stop the watch: later (and currently waiting) ``next()`` calls end the iteration. Idempotent."""
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc_info: object) -> bool: ...
    @property
    def prefix(self) -> str:
        """The key prefix this watch reports (``""`` for every key)."""
    @property
    def closed(self) -> bool:
        """Whether the watch takes no more changes (it or its database was closed)."""
    @property
    def max_events(self) -> int:
        """Most changes that may wait unread before the watch overflows."""

@disjoint_base
class Transaction:
    """Writes applied together or not at all.

    ``db.transaction()`` gives one bound to ``db`` (a context manager whose
    reads see its own writes); ``Transaction()`` alone is a write-only builder
    for ``db.commit(...)``.
    """

    def __new__(cls, db: FerrumDB | None = None) -> Self: ...
    def set(self, key: str, value: Any, ttl: float | None = None) -> Self:
        """Store ``value`` under ``key`` at commit; ``ttl`` seconds count from the commit."""
    def delete(self, key: str) -> Self:
        """Remove ``key`` at commit (nothing happens if it is missing then)."""
    def get(self, key: str, default: Any = None) -> Any:
        """The value as this transaction sees it, or ``default``."""
    def __getitem__(self, key: str, /) -> Any: ...
    def __setitem__(self, key: str, value: Any, /) -> None: ...
    def __delitem__(self, key: str, /) -> None: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __len__(self) -> int: ...
    @property
    def finished(self) -> bool:
        """Whether the transaction was committed or discarded."""
    def commit(self, db: FerrumDB | None = None) -> None:
        """Apply every write at once; ``TransactionConflict`` (nothing written) if a read key changed."""
    def discard(self) -> None:
        """Drop every buffered write; the transaction is over."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, _exc: object = None, _tb: object = None
    ) -> bool: ...

@final
class ManualClock:
    """A clock that moves only when ``advance()`` is called, for testing TTLs."""

    def __new__(cls, start: float | None = None) -> ManualClock: ...
    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
    def now(self) -> float:
        """The clock's time, in Unix seconds."""

@final
class RemoteStudio:
    """Ferrum Studio serving a PostgreSQL handle in this process (``PostgresDB.studio()``)."""

    @property
    def url(self) -> str:
        """The address to open in a browser (with ``?token=`` when a token is set)."""
    def stop(self) -> bool:
        """Stop serving; whether it was running."""

def serve_studio(
    db: Any, port: int = 7474, host: str = "127.0.0.1", token: str | None = None, read_only: bool = False
) -> RemoteStudio:
    """Serve Ferrum Studio for the PostgreSQL handle ``db`` in the background."""

def _after_fork_in_child() -> None:
    """Called in the child after ``fork()``."""

def _without_waiting(f: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """``f(*args, **kwargs)``, its writes raising ``BlockingIOError`` (nothing written) where they would wait for a lock."""

def cli_main(argv: list[str]) -> int:
    """Run the command-line interface with ``argv`` and return its exit status."""

def check(
    path: str | os.PathLike[str], *, encryption_key: bytes | bytearray | memoryview | str | None = None
) -> dict[str, Any]:
    """Verify every record of the database file at ``path``; a report with ``ok``, counts and ``damage``."""

def _salvage_in_place(
    path: str | os.PathLike[str],
    *,
    encryption_key: bytes | bytearray | memoryview | str | None = None,
) -> dict[str, Any] | None:
    """Rebuild the damaged database at ``path`` in place, under its writer lock; the report plus ``keys`` and ``kept``, or ``None`` if intact."""
