"""The :class:`FerrumDB` class: a persistent ``MutableMapping`` of JSON documents.

The hot methods (``db[k]``, ``db[k] = v``, ``get``, ``in``, ``len``) are
implemented natively in :mod:`ferrumdb._native` and inherited unchanged, so a
lookup costs no extra Python frame. This module adds what Python users expect
around them: the mapping mixins, views, context manager, ``repr``, a Jupyter
summary, and guards against leaking, pickling and forking a handle.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import ItemsView, Iterator, Mapping, MutableMapping, ValuesView
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:  # typing.TypeGuard is Python 3.10+; only the type checker needs it
    from typing import TypeGuard

from . import _native, _notebook

__all__ = ["FerrumDB", "open", "open_from_env", "encrypt"]

PathLike = Union[str, "os.PathLike[str]"]
EncryptionKey = Union[bytes, bytearray, memoryview, str]

#: URL schemes that open the PostgreSQL backend instead of a file (SPEC section 7).
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(path: object) -> TypeGuard[str]:
    """True if ``path`` is a ``postgresql://`` (or ``postgres://``) URL rather than a file path."""
    return isinstance(path, str) and path.startswith(POSTGRES_SCHEMES)


def _open_postgres_url(
    url: str,
    *,
    fsync: str | None = None,
    read_only: bool = False,
    clock: _native.ManualClock | None = None,
    salvage: bool = False,
    encryption_key: EncryptionKey | None = None,
    exclusive: bool = False,
    auto_compact: float | None = None,
) -> Any:
    """The PostgreSQL handle every entry point returns for a URL; file-only options are refused.

    ``auto_compact`` is accepted and ignored: PostgreSQL's autovacuum reclaims space itself.
    """
    if fsync is not None or encryption_key is not None or salvage:
        raise ValueError(
            "fsync, encryption_key and salvage apply to database files; PostgreSQL handles durability and encryption itself"
        )
    if exclusive:
        raise ValueError(
            "exclusive=True applies to database files; a PostgreSQL table is shared by every process that opens it"
        )
    from .postgres import open_postgres

    return open_postgres(url, read_only=read_only, clock=clock)


class _Values(ValuesView):  # type: ignore[type-arg]
    """``db.values()``: iterates values in key order, one page of reads at a time."""

    _mapping: FerrumDB

    def __iter__(self) -> Iterator[Any]:
        return self._mapping._iter_values()


class _Items(ItemsView):  # type: ignore[type-arg]
    """``db.items()``: iterates ``(key, value)`` pairs in key order."""

    _mapping: FerrumDB

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return self._mapping._iter_items()


class FerrumDB(_native.FerrumDB, MutableMapping):  # type: ignore[type-arg,misc]
    """An open FerrumDB database: a dict of JSON documents that lives on disk.

    Keys are non-empty ``str``; values are dicts, lists, strings, numbers,
    booleans and ``None``, nested freely. Every write is on its way to disk
    before the call returns, and survives the process being killed.

    Args:
        path: The database file (created if missing), or ``":memory:"``.
        fsync: ``"always"``, ``"never"`` or ``"periodic:MS"`` (default
            ``"periodic:100"``): how often writes are forced to stable storage.
        read_only: Open without writing; writes raise
            :class:`~ferrumdb.ReadOnlyError`. The handle still sees every
            write other processes make after its open.
        exclusive: Be the only writer: other writer opens (in any process,
            this one included) raise :class:`~ferrumdb.LockedError`. By
            default any number of processes read and write at once.
        clock: A :class:`~ferrumdb.ManualClock` for TTL decisions (tests).
        auto_compact: Compact in the background once this fraction of the
            file (and at least 16 MiB) is dead records; ``None`` to compact
            only on :meth:`compact`.
        encryption_key: Encrypt at rest (AES-256-GCM): 32 raw bytes, or a
            passphrase ``str`` (stretched with Argon2id). A new file is created
            encrypted; an existing one must have been encrypted with this key.

    Raises:
        LockedError: An ``exclusive`` writer has the database open, or (with
            ``exclusive=True``) another writer has.
        CorruptionError: The file is damaged (other than a torn tail).
        EncryptionError: Wrong or missing key, or a key for a plain file.
        OSError: The file cannot be created or read.

    Example:
        >>> import ferrumdb
        >>> with ferrumdb.open(":memory:") as db:
        ...     db["user:1"] = {"name": "alice", "tags": ["admin"]}
        ...     db["user:1"]["name"]
        'alice'
    """

    #: What ``open(path, salvage=True)`` recovered and lost, when it had to; else ``None``.
    salvage_report: dict[str, Any] | None = None

    def __init__(
        self,
        path: PathLike = "ferrum.db",
        *,
        fsync: str | None = None,
        read_only: bool = False,
        clock: _native.ManualClock | None = None,
        auto_compact: float | None = 0.5,
        encryption_key: EncryptionKey | None = None,
        exclusive: bool = False,
    ) -> None:
        # The native __new__ did the opening; remember who did it.
        self._pid = os.getpid()

    def __new__(cls, path: PathLike = "ferrum.db", **options: Any) -> FerrumDB:
        # ``FerrumDB("postgresql://...")`` gives the PostgreSQL handle, as ferrumdb.open() does.
        # It is a FerrumDB only virtually (registered by ferrumdb.postgres), so type.__call__,
        # which tests the real type, does not run this class's __init__ on it.
        if is_postgres_url(path):
            return _open_postgres_url(path, **options)  # type: ignore[no-any-return]
        return super().__new__(cls, path, **options)  # type: ignore[return-value]

    @classmethod
    def open(
        cls,
        path: PathLike = "ferrum.db",
        *,
        fsync: str | None = None,
        read_only: bool = False,
        clock: _native.ManualClock | None = None,
        auto_compact: float | None = 0.5,
        encryption_key: EncryptionKey | None = None,
        exclusive: bool = False,
    ) -> FerrumDB:
        """Open (creating if missing) the database at ``path``. Same as :func:`ferrumdb.open`.

        A ``postgresql://`` URL opens the PostgreSQL backend, as :func:`ferrumdb.open` does.
        """
        if is_postgres_url(path):
            return _open_postgres_url(  # type: ignore[no-any-return]
                path, fsync=fsync, read_only=read_only, clock=clock, encryption_key=encryption_key, exclusive=exclusive
            )
        return cls(
            path,
            fsync=fsync,
            read_only=read_only,
            clock=clock,
            auto_compact=auto_compact,
            encryption_key=encryption_key,
            exclusive=exclusive,
        )

    # -- mapping views ---------------------------------------------------------

    def values(self) -> ValuesView[Any]:
        """A view of all values, iterated in key order."""
        self._check_open()
        return _Values(self)

    def items(self) -> ItemsView[str, Any]:
        """A view of all ``(key, value)`` pairs, iterated in key order."""
        self._check_open()
        return _Items(self)

    # -- transactions ----------------------------------------------------------

    def transaction(self) -> _native.Transaction:
        """Start a transaction: writes are buffered and applied all at once.

        Use it as a context manager: leaving the block normally commits every
        write together (also across a crash: all of them or none), an
        exception discards them. Reads inside see the transaction's own
        writes; other handles and threads see none of them before the commit.
        If a key the transaction read was changed by another write before the
        commit, the commit raises :class:`~ferrumdb.TransactionConflict` and
        writes nothing: run the block again.

        Example:
            >>> import ferrumdb
            >>> db = ferrumdb.open(":memory:")
            >>> db["counter"] = 0
            >>> with db.transaction() as tx:
            ...     tx["counter"] = tx["counter"] + 1
            ...     tx["log:1"] = "incremented"
            >>> db["counter"]
            1
            >>> db.close()
        """
        self._check_open()
        return _native.Transaction(self)

    def commit(self, transaction: _native.Transaction) -> None:
        """Apply every write of ``transaction`` at once (all or nothing).

        The builder form of :meth:`transaction`:
        ``db.commit(ferrumdb.Transaction().set("a", 1).delete("b"))``.

        Raises:
            TypeError: ``transaction`` is not a :class:`ferrumdb.Transaction`.
            TransactionConflict: A key it read changed since; nothing was written.
        """
        if not isinstance(transaction, _native.Transaction):
            raise TypeError(
                f"commit() takes a ferrumdb.Transaction, not {type(transaction).__name__}"
            )
        transaction.commit(self)

    def _check_open(self) -> None:
        # The views are lazy; without this a closed (or forked) handle would
        # hand one out and fail only when it is iterated. The native len()
        # is O(1) and raises ClosedError (or the fork error) for us.
        _native.FerrumDB.__len__(self)

    def __eq__(self, other: object) -> bool:
        """Equal to any mapping with the same items (decided by identity and length first)."""
        if self is other:
            return True
        if not isinstance(other, Mapping):
            return NotImplemented
        if len(self) != len(other):
            return False
        return dict(self._iter_items()) == dict(other.items())

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None  # type: ignore[assignment]

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> FerrumDB:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            pid = self._pid
        except AttributeError:  # __init__ never ran
            return
        if pid == os.getpid() and not self.closed:
            # Close first: with warnings turned into errors, warn() raises.
            self.close()
            warnings.warn(
                f"unclosed FerrumDB database {self.path!r}; use 'with ferrumdb.open(...)' or call close()",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )

    def __reduce__(self) -> Any:
        raise TypeError(
            "a FerrumDB handle cannot be pickled; pass the database path and call ferrumdb.open() in the other process"
        )

    def __copy__(self) -> Any:
        raise TypeError("a FerrumDB handle cannot be copied; it is already a shared handle to the database")

    def __deepcopy__(self, memo: object) -> Any:
        raise TypeError("a FerrumDB handle cannot be deep-copied; use dict(db) for an in-memory copy")

    # -- display ---------------------------------------------------------------

    def __repr__(self) -> str:
        if self.closed:
            return f"<FerrumDB {self.path!r} closed>"
        mode = " read-only" if self.read_only else ""
        return f"<FerrumDB {self.path!r} keys={len(self)}{mode} open>"

    def _repr_html_(self) -> str:
        """A bounded summary for Jupyter: sizes, indexes and the first few documents, escaped."""
        return _notebook.summary_html(self)

    # -- notebooks -------------------------------------------------------------

    def studio(
        self, port: int = 7474, host: str = "127.0.0.1", token: str | None = None, read_only: bool = False
    ) -> str:
        """Start Ferrum Studio for this database in the background and return its URL.

        At most one Studio serves a handle: the same arguments again return the running one's
        URL, other arguments restart it; ``close()`` stops it. See ``docs/studio.md``.

        Args:
            port: TCP port (0 picks a free one).
            host: Address to bind; anything but loopback needs ``token``.
            token: Bearer token every API request must carry.
            read_only: Refuse every change made through Studio.

        Returns:
            The URL, a ``str`` that displays as a clickable link when it is a notebook cell's value.

        Raises:
            OSError: The port is taken (errno ``EADDRINUSE``).
            ValueError: A non-loopback ``host`` without a ``token``.

        >>> db = ferrumdb.open(":memory:")
        >>> url = db.studio(port=0)   # "http://127.0.0.1:PORT/"
        """
        return _notebook.StudioURL(super().studio(port, host, token, read_only))

    def to_pandas(
        self,
        filter: dict[str, Any] | None = None,  # noqa: A002  (the name query() uses)
        fields: list[str] | None = None,
        limit: int | None = None,
    ) -> Any:  # a pandas.DataFrame; pandas is optional and untyped
        """The documents matching ``filter`` as a pandas DataFrame indexed by key.

        Nested objects become dotted columns (``address.city``); a document that is not an
        object goes in a ``value`` column. pandas is optional: ``pip install pandas``.

        Args:
            filter: A query filter as for :meth:`query`; ``None`` for every document.
            fields: Dotted paths to keep (a projection, as for :meth:`query`).
            limit: At most this many documents, in key order.

        Returns:
            A ``pandas.DataFrame`` whose index (named ``key``) holds the keys.

        Raises:
            ImportError: pandas is not installed (the message gives the pip command).
            ValueError: A malformed filter or fields.

        >>> db.to_pandas({"role": "admin"}, fields=["name", "address.city"])  # doctest: +SKIP
        """
        return _notebook.to_pandas(self, filter, fields, limit)

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
) -> FerrumDB:
    """Open (creating if missing) the FerrumDB database at ``path``.

    Args:
        path: The database file, or ``":memory:"`` for a database that never
            touches the disk. Defaults to ``ferrum.db`` in the current directory.
            A ``postgresql://user:pw@host/db?table=ferrum`` URL opens the same
            API on a PostgreSQL table instead (``pip install ferrumdb[postgres]``;
            see :mod:`ferrumdb.postgres`).
        fsync: ``"always"`` (survive power loss), ``"periodic:MS"`` (default
            ``"periodic:100"``) or ``"never"`` (leave it to the OS). Under every
            policy an acknowledged write survives the process being killed.
        read_only: Open without writing. The handle still sees every write
            other processes make after its open.
        exclusive: Be the only writer: every other writer open (another
            process's, or this process's second handle) raises
            :class:`~ferrumdb.LockedError`. By default any number of
            processes read and write the database at once.
        clock: A :class:`ferrumdb.ManualClock` that decides when keys with a
            TTL expire, for tests that advance time instead of sleeping.
        auto_compact: Compact in the background once this fraction of the
            file (and at least 16 MiB) is dead records; ``None`` compacts
            only when :meth:`~ferrumdb.FerrumDB.compact` is called.
        salvage: If the file is damaged, rebuild it from every intact record
            instead of raising :class:`~ferrumdb.CorruptionError` (the
            original is kept as ``PATH.damaged``; a
            :class:`~ferrumdb.SalvageWarning` says what was lost, and
            ``db.salvage_report`` holds the details).
        encryption_key: Encrypt the database at rest: 32 raw bytes
            (``bytes``, ``bytearray`` or ``memoryview``), or a passphrase
            ``str`` stretched with Argon2id. Needed again at every open.

    Returns:
        The open database; use it as a dict, and close it (or use ``with``).

    Raises:
        LockedError: An ``exclusive`` writer has the database open, or
            ``exclusive=True`` was asked while another writer has it open.
        CorruptionError: The file is damaged.
        EncryptionError: Wrong or missing key, a key for a plain file, or
            encrypted data that was tampered with.
        TypeError: ``encryption_key`` is neither bytes-like nor ``str``.
        ValueError: ``fsync`` is not a known policy, a raw key is not 32
            bytes, ``auto_compact`` is not between 0 and 1, or ``path`` is
            a FIFO, device or socket rather than a file.
        IsADirectoryError: ``path`` is a directory.

    Example:
        >>> import ferrumdb
        >>> db = ferrumdb.open(":memory:")
        >>> db["k"] = [1, 2, 3]
        >>> db.get("k"), db.get("missing", "default")
        ([1, 2, 3], 'default')
        >>> db.close()
    """
    if is_postgres_url(path):
        return _open_postgres_url(  # type: ignore[no-any-return]
            path, fsync=fsync, read_only=read_only, clock=clock, salvage=salvage,
            encryption_key=encryption_key, exclusive=exclusive,
        )

    def opener() -> FerrumDB:
        return FerrumDB(
            path,
            fsync=fsync,
            read_only=read_only,
            clock=clock,
            auto_compact=auto_compact,
            encryption_key=encryption_key,
            exclusive=exclusive,
        )

    if salvage and not read_only and os.fspath(path) != ":memory:":
        from .salvage import open_salvaging

        return open_salvaging(path, opener, encryption_key)  # type: ignore[no-any-return]
    return opener()


def open_from_env(
    path: PathLike = "ferrum.db", *, read_only: bool = False, encryption_key: EncryptionKey | None = None
) -> FerrumDB:
    """Open ``path`` with the fsync policy taken from ``FERRUMDB_FSYNC`` (default ``periodic:100``).

    A ``postgresql://`` URL opens the PostgreSQL backend; ``FERRUMDB_FSYNC``
    is then ignored (durability is the server's ``synchronous_commit``).

    Raises:
        ValueError: ``FERRUMDB_FSYNC`` holds an unknown policy.
    """
    if is_postgres_url(path):
        return _open_postgres_url(  # type: ignore[no-any-return]
            path, read_only=read_only, encryption_key=encryption_key
        )
    policy = os.environ.get("FERRUMDB_FSYNC")
    if policy is not None and not policy.strip():
        policy = None
    try:
        return FerrumDB(path, fsync=policy, read_only=read_only, encryption_key=encryption_key)
    except ValueError as e:
        if policy is not None and "fsync policy" in str(e):
            raise ValueError(f"FERRUMDB_FSYNC={policy!r}: {e}") from None
        raise


def encrypt(path: PathLike, key: EncryptionKey) -> None:
    """Encrypt the plain database at ``path`` under ``key``, in place.

    The data is rewritten into a new file sealed with ``key`` and atomically
    renamed over the old one: if interrupted, the database is still the plain
    one, intact. From then on open it with ``encryption_key=key``. To change
    the key of an encrypted database, use :meth:`FerrumDB.rekey`.

    Args:
        path: A database file that is not open for writing elsewhere.
        key: 32 raw bytes, or a passphrase ``str``.

    Raises:
        EncryptionError: The database is already encrypted.
        FileNotFoundError: There is no file at ``path``.
        LockedError: Another process has it open for writing.
        TypeError, ValueError: ``key`` is not a usable key.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no database to encrypt", os.fspath(path))
    with FerrumDB(path) as db:
        db.rekey(key)
