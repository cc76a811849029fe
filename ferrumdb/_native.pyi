"""Type stubs for the FerrumDB extension module (``ferrumdb._native``).

The public API is :class:`ferrumdb.FerrumDB`, which subclasses :class:`Database`.
"""

import os
from collections.abc import Iterator
from typing import Any, final

from typing_extensions import Self, disjoint_base


__all__ = [
    "Database",
    "ScanIterator",
    "WatchIterator",
    "ManualClock",
    "_after_fork_in_child",
    "cli_main",
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "__version__",
]

__version__: str
MAX_KEY_BYTES: int
MAX_VALUE_BYTES: int

@disjoint_base
class Database:
    """Open handle to a FerrumDB database (use ``ferrumdb.open``)."""

    def __new__(
        cls,
        path: str | os.PathLike[str] = ...,
        *,
        fsync: str | None = None,
        read_only: bool = False,
        clock: ManualClock | None = None,
        encryption_key: bytes | bytearray | memoryview | str | None = None,
    ) -> Database: ...
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
    def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires (sub-second precision), or None if it never does."""
    def delete(self, key: str) -> bool:
        """Remove ``key``; returns whether it existed."""
    def keys(self) -> list[str]:  # type: ignore[override]
        """All keys, in key order, as a list."""
    def count(self) -> int:
        """Number of live keys."""
    def scan(self, prefix: str = "") -> ScanIterator:
        """Iterate ``(key, value)`` for keys starting with ``prefix``, in key order."""
    def _iter_values(self) -> ScanIterator: ...
    def _iter_items(self) -> ScanIterator: ...
    def set_json(self, key: str, text: str) -> None:
        """Store raw JSON text under ``key`` after checking it is one valid document."""
    def get_json(self, key: str, default: Any = None) -> Any:
        """The stored JSON text under ``key``, or ``default`` when it is missing."""
    def create_index(self, field: str, progress: bool = False) -> None:
        """Create a secondary index on ``field`` (dotted paths reach into nested objects)."""
    def drop_index(self, field: str) -> None:
        """Remove the index on ``field`` (nothing happens if there is none)."""
    def indexes(self) -> list[str]:
        """Indexed field names, sorted."""
    def find(self, field: str, value: Any) -> list[str]:
        """Keys whose document has ``field == value``, in key order."""
    def query(
        self,
        filter: dict[str, Any],
        *,
        sort: str | list[Any] | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[tuple[str, Any]]:
        """``(key, document)`` pairs matching a Mongo-style ``filter``."""
    def explain(self, filter: dict[str, Any]) -> dict[str, Any]:
        """The plan ``query(filter)`` would use."""
    def watch(self, prefix: str = "") -> WatchIterator:
        """Iterate over the changes committed after this call, as ``(op, key, value)`` tuples.

        ``op`` is ``"set"`` (with the new value) or ``"delete"`` (value None; also
        for an expired key). At most 10,000 unread changes are buffered; past
        that, ``next()`` raises :class:`WatchOverflowError`.
        """
    def rekey(self, new_key: bytes | bytearray | memoryview | str) -> None:
        """Re-encrypt the database under ``new_key``, or encrypt a plain one."""
    def compact(self) -> None:
        """Rewrite the file with live data only."""
    def flush(self) -> None:
        """Force everything written to stable storage now."""
    def stats(self) -> dict[str, Any]:
        """Counters and sizes as a dict."""
    def close(self) -> None:
        """Flush and release the database; idempotent."""
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

@final
class ManualClock:
    """A clock that moves only when ``advance()`` is called, for testing TTLs."""

    def __new__(cls, start: float | None = None) -> ManualClock: ...
    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
    def now(self) -> float:
        """The clock's time, in Unix seconds."""

def _after_fork_in_child() -> None:
    """Called in the child after ``fork()``."""

def cli_main(argv: list[str]) -> int:
    """Run the command-line interface with ``argv`` and return its exit status."""
