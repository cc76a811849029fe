"""FerrumDB on PostgreSQL: ``ferrumdb.open("postgresql://user:pw@host/db?table=ferrum")``.

When an application outgrows one machine, the same code runs on a PostgreSQL
database shared by many processes on many machines (SPEC section 7). Each
document is a ``jsonb`` row of one table::

    key text COLLATE "C" PRIMARY KEY, doc jsonb NOT NULL, expires_at float8

``COLLATE "C"`` orders keys by code point, as the file backend does. The row
with the empty key (never a valid document key) holds the schema version and
the index definitions, so every process sees the same indexes.

**One meaning for every filter.** FerrumDB's own matcher decides every query,
count, distinct, find and update: :mod:`ferrumdb.postgres_filter` turns the
filter into a SQL condition that selects a *superset* of the matches (using the
indexes), and the candidate rows are then evaluated by the native engine in an
in-memory FerrumDB. Filters, sorts, projections and update operators therefore
give the file backend's answer, never PostgreSQL's variant of it.

Driver: psycopg 3 (the ``postgres`` extra). The package already wraps the Rust
core for Python, and filters, updates and values are checked by that core; a
Python driver adds no second build and keeps PostgreSQL optional.
"""

from __future__ import annotations

import atexit
import collections
import hashlib
import json
import os
import re
import select
import socket
import threading
import time
import warnings
import weakref
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any, Callable, NamedTuple
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from . import _native, _notebook, postgres_unique
from .db import FerrumDB
from .errors import ClosedError, DuplicateKeyError, ReadOnlyError, TransactionConflict
from .postgres_filter import path_expression, translatable_path, translate

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg import pq
    from psycopg import sql as pg_sql
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    psycopg = None  # type: ignore[assignment]

__all__ = ["PostgresDB", "open_postgres", "parse_url", "ParsedURL", "SCHEMA_VERSION"]

#: Version of the table layout, kept in the version row; a newer one is refused.
#: 2: unique indexes are a claims table kept by a trigger (:mod:`ferrumdb.postgres_unique`);
#: a version 1 table (unique expression indexes) is migrated when opened.
#: 3: writers notify watch() only while one listens (see :data:`WATCH_SLOTS`); a version 2
#: process's watch would miss changes, so version 2 code refuses a version 3 table.
SCHEMA_VERSION = 3
DEFAULT_TABLE = "ferrum"
#: Seconds to wait for the server before giving up (override with ``?connect_timeout=N``).
DEFAULT_CONNECT_TIMEOUT = 10
#: Keys are non-empty, so this row can never collide with a document.
VERSION_KEY = ""
#: Rows fetched per round trip when iterating (keyset pages, no long transaction).
PAGE_ROWS = 1000
#: NOTIFY payloads are limited to 8000 bytes; bigger values are re-read by the watcher.
NOTIFY_VALUE_LIMIT = 7000
#: Seconds between two background purges of expired rows (``?purge_interval=S``; 0: no thread).
DEFAULT_PURGE_INTERVAL = 60.0
#: From this many rows on, a batch write goes through COPY.
COPY_MIN_ROWS = 50
#: How often an update is retried after PostgreSQL broke a deadlock between two of them.
DEADLOCK_RETRIES = 5
#: Advisory locks that tell writers whether anyone watches, so a write pays for a NOTIFY only
#: then. Every open watch() holds all of them in shared mode for its lifetime (taken after its
#: LISTEN, before watch() returns). A writer, inside its transaction, tries one of them in
#: exclusive mode (the one of its backend, ``pg_backend_pid() % WATCH_SLOTS``) without waiting:
#: taken, nobody can be watching until it commits (a watch starting meanwhile waits for that
#: commit), so it skips the NOTIFY; refused, a watch holds it (or another writer of the same slot
#: does), so it notifies. Each change committed after watch() returned is therefore notified.
#: Several slots keep concurrent writers from refusing each other (which only costs a NOTIFY).
#: NOTIFY is not free even unheard: besides its statement cost, PostgreSQL serializes the commits
#: of every notifying transaction in the database on one lock.
WATCH_SLOTS = 16

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}\Z")
_LIVE = "(expires_at IS NULL OR expires_at > %s)"


def _require_psycopg() -> None:
    if psycopg is None:
        raise ImportError(
            "opening a postgresql:// URL needs the PostgreSQL driver: pip install ferrumdb[postgres]"
        )


class ParsedURL(NamedTuple):
    """A ``postgresql://`` URL taken apart by :func:`parse_url`."""

    #: What libpq connects to (FerrumDB's own parameters removed).
    libpq_url: str
    #: The documents table.
    table: str
    #: Host (and port) for messages, never the password.
    host: str
    #: Seconds between background purges of expired rows; 0 for none.
    purge_interval: float


def parse_url(url: str) -> ParsedURL:
    """Split a ``postgresql://`` URL into its libpq URL and FerrumDB's own parameters.

    ``?table=NAME`` picks the table (default ``ferrum``);
    ``?purge_interval=S`` how often a writable handle deletes expired rows in
    the background (default 60 seconds, 0 for never; they are invisible to
    reads either way). Every other query parameter goes to libpq.
    ``connect_timeout`` defaults to 10 seconds.

    Raises:
        ValueError: Not a PostgreSQL URL, a bad port, a bad table name, or
            something libpq cannot parse.
    """
    if not isinstance(url, str):
        raise TypeError(f"a PostgreSQL URL is a str, not {type(url).__name__}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"bad PostgreSQL URL {_redact(url)!r}: {e}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"bad PostgreSQL URL {_redact(url)!r}: it must start with postgresql://")
    params = parse_qsl(parts.query, keep_blank_values=True)
    table = DEFAULT_TABLE
    purge_interval = DEFAULT_PURGE_INTERVAL
    rest = []
    for name, value in params:
        if name == "table":
            table = value
        elif name == "purge_interval":
            try:
                purge_interval = float(value)
            except ValueError:
                purge_interval = -1.0
            if not 0 <= purge_interval < float("inf"):
                raise ValueError(
                    f"bad purge_interval={value!r} in the PostgreSQL URL: a number of seconds >= 0 (0: no background purge)"
                )
        else:
            rest.append((name, value))
    if not _TABLE_NAME.match(table):
        raise ValueError(
            f"bad table name {table!r} in the PostgreSQL URL: use letters, digits and _ (at most 48), not starting with a digit"
        )
    if not any(name == "connect_timeout" for name, _ in rest):
        rest.append(("connect_timeout", str(DEFAULT_CONNECT_TIMEOUT)))
    # quote, not quote_plus: libpq reads %20 as a space but a + as a plus (options=-c%20x%3Dy).
    libpq_url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest, quote_via=quote), ""))
    _require_psycopg()
    try:
        info = psycopg.conninfo.conninfo_to_dict(libpq_url)
    except psycopg.ProgrammingError as e:
        raise ValueError(f"bad PostgreSQL URL {_redact(url)!r}: {e}") from None
    host = str(info.get("host") or "the local socket")
    if port is not None or info.get("port"):
        host = f"{host}:{info.get('port') or port}"
    return ParsedURL(libpq_url, table, host, purge_interval)


def _redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and ``repr``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit((parts.scheme, f"{user}@{netloc[-1]}", parts.path, parts.query, parts.fragment))


def _prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """Key range ``[low, high)`` of the keys starting with ``prefix`` (``high`` None: unbounded)."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:  # surrogates are not characters
                nxt = 0xE000
            return prefix, "".join(chars) + chr(nxt)
    return prefix, None


class _Scratch(threading.local):
    """A per-thread in-memory FerrumDB: the native engine as validator, matcher and updater."""

    db: Any = None


class PostgresDB(MutableMapping):  # type: ignore[type-arg]
    """A FerrumDB database stored in a PostgreSQL table: the section 1 API on a server.

    Open it with :func:`ferrumdb.open` and a ``postgresql://`` URL. It is
    registered as a virtual subclass of :class:`ferrumdb.FerrumDB`, so
    ``isinstance(db, ferrumdb.FerrumDB)`` holds for either backend (the file
    handle's native methods are not inherited, so its hot path is untouched). Every call
    is one round trip where it can be (``get``, ``set``, ``delete``), and runs
    in its own PostgreSQL transaction; updates lock the rows they change, so
    concurrent ``$inc`` from many processes never lose an increment.

    Raises:
        ConnectionError: The server cannot be reached within the connect timeout,
            or the connection was lost (the next call reconnects).
        PermissionError: The server refused the credentials.
        ValueError: A malformed URL or table name.

    Example:
        >>> import ferrumdb  # doctest: +SKIP
        >>> db = ferrumdb.open("postgresql://app:pw@db.internal/app?table=ferrum")  # doctest: +SKIP
        >>> db["user:1"] = {"name": "alice"}  # doctest: +SKIP
    """

    salvage_report: dict[str, Any] | None = None

    @classmethod
    def open(cls, url: str, *, read_only: bool = False, clock: _native.ManualClock | None = None) -> PostgresDB:
        """Open the table at ``url``; same as ``ferrumdb.open(url)`` (``FerrumDB.open``'s spelling)."""
        return open_postgres(url, read_only=read_only, clock=clock)

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        clock: _native.ManualClock | None = None,
    ) -> None:
        self._pid = os.getpid()
        self._closed = True
        self._studio: tuple[tuple[Any, ...], Any] | None = None
        self._libpq_url, self._table, self._host, purge_interval = parse_url(url)
        self._url = url
        self._read_only = read_only
        self._clock = clock
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[Any] = []
        #: Open watches: close() ends them (as on a file), which also releases their watch slots.
        self._watches: weakref.WeakSet[PostgresWatch] = weakref.WeakSet()
        self._scratch = _Scratch()
        self._started = time.monotonic()
        self._counters = {"gets": 0, "sets": 0, "deletes": 0}
        self._expired_purged = 0
        # Background purge: rounds done (tests wait on it), and the event that stops it.
        self._purge_rounds = 0
        self._purge_round_done = threading.Condition()
        self._purge_stop = threading.Event()
        self._channel = f"ferrumdb_{self._table}"
        self._prepare_statements()
        self._closed = False
        try:
            self._ensure_schema()
        except BaseException:
            self.close()
            raise
        if not read_only and purge_interval > 0:
            threading.Thread(
                target=_purge_in_background,
                args=(weakref.ref(self), self._purge_stop, purge_interval),
                name=f"ferrumdb-pg-purge-{self._table}",
                daemon=True,
            ).start()

    # -- connections -----------------------------------------------------------

    def _connect(self) -> Any:
        try:
            # UTF-8 always: the single-key statements send and read UTF-8 bytes themselves.
            return psycopg.connect(self._libpq_url, autocommit=True, client_encoding="UTF8")
        except (psycopg.ProgrammingError, psycopg.OperationalError) as e:
            raise self._connect_error(e) from None

    def _exec(self, conn: Any, statement: _Statement, params: Sequence[bytes | None]) -> Any:
        """Run a hot single-key ``statement`` on ``conn`` through libpq directly; its result.

        ``get``, ``set`` and ``delete`` are one statement each, and psycopg's general
        ``execute`` (cursor, adaptation, result loading in Python) cost as much as the
        server's work on them. So they go to libpq's ``PQexecPrepared`` with UTF-8 text
        parameters, prepared once per connection (the GIL is released while waiting).
        Errors become psycopg's exceptions, so :meth:`_run` treats them like any other.
        """
        pgconn = conn.pgconn
        local = self._local
        if getattr(local, "prepared_on", None) is not conn:  # a new connection knows none of them
            local.prepared_on = conn
            local.prepared = set()
        if statement.name not in local.prepared:
            _check_result(conn, pgconn.prepare(statement.name, statement.sql, statement.types))
            local.prepared.add(statement.name)
        result = pgconn.exec_prepared(statement.name, params)
        if result.error_field(pq.DiagnosticField.SQLSTATE) == _UNKNOWN_STATEMENT:
            # Deallocated behind our back: psycopg runs DEALLOCATE ALL after a ROLLBACK or DROP
            # on a connection where it prepared statements of its own, as a pooler's DISCARD ALL does.
            _check_result(conn, pgconn.prepare(statement.name, statement.sql, statement.types))
            result = pgconn.exec_prepared(statement.name, params)
        return _check_result(conn, result)

    def _connect_error(self, e: Exception) -> Exception:
        """FerrumDB's exception for a failed connect (also used by the asyncio handle's connection)."""
        if isinstance(e, psycopg.ProgrammingError):
            return ValueError(f"bad PostgreSQL URL {self.path!r}: {e}")
        message = str(e).strip()
        if "password authentication failed" in message or "authentication failed" in message:
            return PermissionError(f"PostgreSQL at {self._host} refused the credentials in the URL: {message}")
        if re.search(r'database ".*" does not exist', message):
            return ConnectionError(f"PostgreSQL at {self._host} has no such database: {message}; create it with createdb")
        return ConnectionError(
            f"cannot reach PostgreSQL at {self._host}: {message} "
            f"(check the host and port; connect_timeout in the URL bounds the wait)"
        )

    def _lost_connection(self, e: Exception) -> ConnectionError:
        return ConnectionError(
            f"lost the connection to PostgreSQL at {self._host}: {str(e).strip()}; "
            "an unfinished transaction was rolled back, and the next call reconnects"
        )

    def _check_usable(self) -> None:
        """Raise ClosedError if the handle was closed or inherited through fork() (no I/O)."""
        if self._closed:
            raise ClosedError("the database handle was closed; open it again to use it")
        if self._pid != os.getpid():
            raise ClosedError(
                "this PostgreSQL handle was opened in the parent process before fork(); call ferrumdb.open() in the child"
            )

    def _conn(self) -> Any:
        """This thread's connection, (re)connected if needed."""
        self._check_usable()
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _run(self, fn: Callable[[Any], Any], *, writing: str | None = None) -> Any:
        """Run ``fn(conn)`` and turn driver errors into FerrumDB's.

        ``fn`` runs its own transaction (or a single statement). A unique
        violation caused by an expired document (it keeps its claims until
        purged, though no read sees it) purges expired rows and runs ``fn``
        once more, so an expired holder never blocks a write, as on a file.
        ``writing`` names the key written, for the DuplicateKeyError message.
        """
        conn = self._conn()
        try:
            try:
                return fn(conn)
            except pg_errors.UniqueViolation:
                if self._read_only or self._purge_expired_in(conn, committed=True) == 0:
                    raise
                return fn(conn)
        except pg_errors.UniqueViolation as e:
            raise DuplicateKeyError(self._duplicate_message(conn, e, writing)) from None
        except pg_errors.UntranslatableCharacter as e:
            raise ValueError(
                f"PostgreSQL's jsonb cannot store this value ({e.diag.message_detail or e}); "
                "strings holding the NUL character \\u0000 are the usual cause; nothing was written"
            ) from None
        except pg_errors.InvalidParameterValue as e:
            if "payload string too long" not in str(e):
                raise
            raise ValueError(
                "a watch() is open and this key is too long to announce to it (a PostgreSQL NOTIFY payload "
                f"holds under 8000 bytes; keep keys under {NOTIFY_VALUE_LIMIT} UTF-8 bytes); nothing was written"
            ) from None
        except pg_errors.SerializationFailure as e:
            raise TransactionConflict(
                f"another writer changed data this call read ({e.diag.message_primary}); nothing was written, run it again"
            ) from None
        except psycopg.OperationalError as e:
            if conn.broken or conn.closed:
                raise self._lost_connection(e) from None
            raise

    def _duplicate_message(self, conn: Any, e: Any, writing: str | None) -> str:
        """The file backend's DuplicateKeyError message for a claims violation."""
        detail = (e.diag.message_detail or "").strip()
        found = None
        try:
            unique = [f for f, d in self._meta(conn).get("indexes", {}).items() if d.get("unique")]
            found = postgres_unique.duplicate_details(conn, self._table, detail, unique)
        except Exception:  # a message helper must not fail
            found = None
        if found is None:
            return f"duplicate key: a unique index already has this value ({detail}); nothing was written"
        field, value, holder = found
        held = f" (in {json.dumps(holder, ensure_ascii=False)})" if holder else ""
        who = json.dumps(writing, ensure_ascii=False) if writing else "a document of this write"
        return (
            f"duplicate key: the unique index on {json.dumps(field, ensure_ascii=False)} already has {value}{held}, "
            f"so {who} cannot hold it too; nothing was written"
        )

    def _scratch_db(self) -> Any:
        db = self._scratch.db
        if db is None:
            db = _native.FerrumDB(":memory:")
            self._scratch.db = db
        return db

    def _canonical(self, key: str, value: Any) -> str:
        """``value`` as JSON text, checked exactly as the file backend checks it (TypeError/ValueError)."""
        scratch = self._scratch.db or self._scratch_db()
        scratch.set(key, value)
        try:
            return _jsonb_safe(scratch.get_json(key))
        finally:
            scratch.delete(key)

    def _canonical_json(self, key: str, text: str) -> str:
        scratch = self._scratch_db()
        scratch.set_json(key, text)
        try:
            return _jsonb_safe(scratch.get_json(key))
        finally:
            scratch.delete(key)

    def _now(self) -> float:
        return self._clock.now() if self._clock is not None else time.time()

    def _expiry(self, ttl: float | None) -> float | None:
        if ttl is None:
            return None
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
            raise TypeError(f"ttl must be a number of seconds or None, not {type(ttl).__name__}")
        if not ttl > 0 or ttl != ttl or ttl == float("inf"):
            raise ValueError(f"ttl must be a positive, finite number of seconds, not {ttl!r}")
        return self._now() + ttl

    def _check_writable(self) -> None:
        if self._read_only:
            raise ReadOnlyError("this PostgreSQL handle was opened with read_only=True")

    # -- schema ------------------------------------------------------------------

    def _prepare_statements(self) -> None:
        t = pg_sql.Identifier(self._table).as_string(None)
        self._t = t
        # The watch locks of this table: WATCH_SLOTS consecutive 64-bit advisory keys.
        digest = hashlib.sha1(f"ferrumdb-watch:{self._table}".encode()).digest()
        self._watch_lock_base = int.from_bytes(digest[:8], "big", signed=True) & ~0xFF
        channel = pg_sql.Literal(self._channel).as_string(None)
        unwatched = f"pg_try_advisory_xact_lock({self._watch_lock_base} + pg_backend_pid() % {WATCH_SLOTS})"
        self._sql_unwatched = f"SELECT {unwatched}"
        key_json = "to_json($1::text)::text"

        def notify(op: str, with_value: bool) -> str:
            # The payload is built by the server, and only when someone watches.
            head = f"""'[["{op}",' || {key_json}"""
            if not with_value:
                return f"pg_notify({channel}, {head} || ']]')"
            fits = f"octet_length($1) + octet_length($2) < {NOTIFY_VALUE_LIMIT}"
            return f"pg_notify({channel}, CASE WHEN {fits} THEN {head} || ',' || $2 || ']]' ELSE {head} || ']]' END)"

        upsert = "ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc, expires_at = EXCLUDED.expires_at"
        # CASE evaluates in order: the lock first; pg_notify (void) runs only if it was refused.
        self._stmt_set = _Statement(
            b"ferrumdb_set",
            (
                f"INSERT INTO {t} (key, doc, expires_at) VALUES ($1, $2::jsonb, "
                f"CASE WHEN {unwatched} THEN $3 WHEN {notify('set', True)} IS NULL THEN $3 ELSE $3 END) {upsert}"
            ).encode(),
            [_TEXT_OID, _TEXT_OID, _FLOAT8_OID],
        )
        self._stmt_delete = _Statement(
            b"ferrumdb_delete",
            (
                f"DELETE FROM {t} WHERE key = $1 AND key > '' RETURNING CASE "
                f"WHEN expires_at IS NOT NULL AND expires_at <= $2 THEN 'f' WHEN {unwatched} THEN 't' "
                f"WHEN {notify('delete', False)} IS NULL THEN 't' ELSE 't' END"
            ).encode(),
            [_TEXT_OID, _FLOAT8_OID],
        )
        live = "(expires_at IS NULL OR expires_at > $2)"
        self._stmt_get = _Statement(
            b"ferrumdb_get",
            f"SELECT doc::text FROM {t} WHERE key = $1 AND key > '' AND {live}".encode(),
            [_TEXT_OID, _FLOAT8_OID],
        )
        self._stmt_contains = _Statement(
            b"ferrumdb_contains",
            f"SELECT 1 FROM {t} WHERE key = $1 AND key > '' AND {live}".encode(),
            [_TEXT_OID, _FLOAT8_OID],
        )
        self._stmt_ttl = _Statement(
            b"ferrumdb_ttl",
            f"SELECT expires_at FROM {t} WHERE key = $1 AND key > '' AND {live}".encode(),
            [_TEXT_OID, _FLOAT8_OID],
        )
        self._sql_count = f"SELECT count(*) FROM {t} WHERE key > '' AND {_LIVE}"

    def _ensure_schema(self) -> None:
        t = self._t

        def create(conn: Any) -> None:
            with conn.transaction():
                # Serialize concurrent first opens of the same table.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ferrumdb:{self._table}",))
                conn.execute(
                    f'CREATE TABLE IF NOT EXISTS {t} (key text COLLATE "C" PRIMARY KEY, '
                    "doc jsonb NOT NULL, expires_at double precision)"
                )
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {pg_sql.Identifier(self._table + '_expiry').as_string(None)} "
                    f"ON {t} (expires_at) WHERE expires_at IS NOT NULL"
                )
                conn.execute(
                    f"INSERT INTO {t} (key, doc) VALUES ('', %s::jsonb) ON CONFLICT (key) DO NOTHING",
                    (json.dumps({"ferrumdb": SCHEMA_VERSION, "indexes": {}}),),
                )
                row = conn.execute(f"SELECT doc FROM {t} WHERE key = ''").fetchone()
                version = row[0].get("ferrumdb") if row and isinstance(row[0], dict) else None
                if version == 1:
                    self._migrate_from_1(conn, row[0])
                    version = SCHEMA_VERSION
                elif version == 2:
                    # 2 -> 3 changes no data, only how writers notify watchers (WATCH_SLOTS).
                    conn.execute(
                        f"UPDATE {t} SET doc = jsonb_set(doc, '{{ferrumdb}}', %s::jsonb) WHERE key = ''",
                        (str(SCHEMA_VERSION),),
                    )
                    version = SCHEMA_VERSION
            if version != SCHEMA_VERSION:
                raise ValueError(
                    f"table {self._table!r} at {self._host} holds FerrumDB schema version {version!r}; "
                    f"this FerrumDB reads version {SCHEMA_VERSION}: upgrade FerrumDB or use another ?table="
                )

        self._run(create)
        if not self._read_only:
            self._purge_expired()

    def _migrate_from_1(self, conn: Any, meta: dict[str, Any]) -> None:
        """Version 1 -> current, in the opening transaction: unique expression indexes become claims (same documents)."""
        unique = sorted(f for f, d in meta.get("indexes", {}).items() if d.get("unique"))
        if unique:
            self._purge_expired_in(conn)
            postgres_unique.install(conn, self._table)
            for field in unique:
                conn.execute(f"DROP INDEX IF EXISTS {pg_sql.Identifier(self._index_names(field)[1]).as_string(None)}")
                duplicate = postgres_unique.add_unique(conn, self._table, field)
                if duplicate is not None:
                    value, key, other = duplicate
                    raise ValueError(
                        f"cannot upgrade table {self._table!r} to FerrumDB schema version {SCHEMA_VERSION}: "
                        f"under the unique index on {field!r}, {key!r} and {other!r} both hold {_compact(value)} "
                        "(from version 2 on, unique indexes also compare array elements, as the file backend does); "
                        "change one of them with an older FerrumDB, or drop that index, then open it again"
                    )
            postgres_unique.refresh_trigger(conn, self._table, unique)
        meta["ferrumdb"] = SCHEMA_VERSION
        conn.execute(f"UPDATE {self._t} SET doc = %s::jsonb WHERE key = ''", (json.dumps(meta),))

    def _meta(self, conn: Any) -> dict[str, Any]:
        row = conn.execute(f"SELECT doc FROM {self._t} WHERE key = ''").fetchone()
        return row[0] if row else {"ferrumdb": SCHEMA_VERSION, "indexes": {}}

    def _index_names(self, field: str) -> tuple[str, str]:
        digest = hashlib.sha1(field.encode()).hexdigest()[:12]
        return f"{self._table}_ix_{digest}", f"{self._table}_uq_{digest}"

    def _purge_expired(self) -> int:
        """Delete rows whose TTL passed (they are already invisible to every read); how many."""
        return int(self._run(lambda c: self._purge_expired_in(c, committed=True)))

    # -- properties ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def path(self) -> str:
        """The URL this handle was opened with, password hidden."""
        return _redact(self._url)

    @property
    def table(self) -> str:
        """The PostgreSQL table holding the documents."""
        return self._table

    @property
    def read_only(self) -> bool:
        """True if opened with ``read_only=True``."""
        return self._read_only

    @property
    def fsync(self) -> str:
        """Durability is PostgreSQL's (its ``synchronous_commit`` setting); always ``"server"``."""
        return "server"

    @property
    def is_live(self) -> bool:
        """Always True: every call reads the server's current state."""
        return True

    # -- key/value -------------------------------------------------------------------

    def _load(self, text: str) -> Any:
        return json.loads(text)

    def _get_text(self, key: str) -> str | None:
        """The stored JSON text at ``key`` (jsonb's spelling), or None if missing or expired."""
        raw = _key_bytes(key)
        if raw is None:
            self._check_usable()
            return None
        result = self._run(lambda c: self._exec(c, self._stmt_get, [raw, repr(self._now()).encode()]))
        self._counters["gets"] += 1
        return None if result.ntuples == 0 else bytes(result.get_value(0, 0)).decode()

    def __getitem__(self, key: str) -> Any:
        text = self._get_text(key)
        if text is None:
            raise KeyError(key)
        return json.loads(text)

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored at ``key``, or ``default`` if it is missing or expired."""
        text = self._get_text(key)
        return default if text is None else json.loads(text)

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` at ``key``; with ``ttl`` (seconds) it expires.

        Raises:
            TypeError, ValueError: The key or value cannot be stored (named by path); nothing is written.
        """
        self._check_writable()
        text = self._canonical(key, value)
        self._write(key, text, self._expiry(ttl))

    def set_json(self, key: str, text: str) -> None:
        """Store raw JSON ``text`` at ``key`` (validated by the native parser)."""
        self._check_writable()
        self._write(key, self._canonical_json(key, text), None)

    def get_json(self, key: str, default: Any = None) -> Any:
        """The value at ``key`` as JSON text (as PostgreSQL's jsonb prints it), or ``default``."""
        text = self._get_text(key)
        return default if text is None else text

    def _write(self, key: str, text: str, expires_at: float | None) -> None:
        if "\x00" in key:
            self._check_usable()
            raise ValueError(
                "PostgreSQL cannot store a key holding the NUL character \\u0000 (its text type refuses it); "
                "nothing was written"
            )
        params = [key.encode(), text.encode(), None if expires_at is None else repr(expires_at).encode()]
        self._run(lambda c: self._exec(c, self._stmt_set, params), writing=key)
        self._counters["sets"] += 1

    def _purge_expired_in(self, conn: Any, *, committed: bool = False) -> int:
        """Delete expired rows on ``conn``; ``committed``: a statement of its own, so count it in stats()."""
        n = int(conn.execute(f"DELETE FROM {self._t} WHERE key > '' AND expires_at <= %s", (self._now(),)).rowcount)
        if committed:
            with self._lock:
                self._expired_purged += n
        return n

    def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires, or ``None`` if it never does.

        Raises:
            KeyError: ``key`` is missing or expired.
        """
        raw = _key_bytes(key)
        now = self._now()
        if raw is None:
            self._check_usable()
            raise KeyError(key)
        result = self._run(lambda c: self._exec(c, self._stmt_ttl, [raw, repr(now).encode()]))
        return _remaining(key, result, now)

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there (and not expired)."""
        self._check_writable()
        raw = _key_bytes(key)
        if raw is None:
            self._check_usable()
            return False
        params = [raw, repr(self._now()).encode()]
        result = self._run(lambda c: self._exec(c, self._stmt_delete, params))
        self._counters["deletes"] += 1
        return bool(result.ntuples == 1 and result.get_value(0, 0) == b"t")

    def __delitem__(self, key: str) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        raw = _key_bytes(key) if isinstance(key, str) and key else None
        if raw is None:
            self._check_usable()
            return False
        params = [raw, repr(self._now()).encode()]
        return bool(self._run(lambda c: self._exec(c, self._stmt_contains, params)).ntuples)

    def __len__(self) -> int:
        return int(self._run(lambda c: c.execute(self._sql_count, (self._now(),)).fetchone()[0]))

    def _pages(self, prefix: str, with_values: bool) -> Iterator[tuple[str, str | None]]:
        """Live rows with keys starting with ``prefix``, in key order, a page per round trip."""
        low, high = _prefix_bounds(prefix)
        cols = "key, doc::text" if with_values else "key, NULL"
        bound = " AND key < %s" if high is not None else ""
        statement = (
            f"SELECT {cols} FROM {self._t} WHERE key > %s AND key >= %s{bound} AND {_LIVE} "
            f"ORDER BY key LIMIT {PAGE_ROWS}"
        )
        after = ""
        while True:
            params: list[Any] = [after, low] + ([high] if high is not None else []) + [self._now()]
            rows = self._run(lambda c: c.execute(statement, params).fetchall())
            yield from rows
            if len(rows) < PAGE_ROWS:
                return
            after = rows[-1][0]

    def __iter__(self) -> Iterator[str]:
        self._check_usable()
        return (key for key, _ in self._pages("", False))

    def keys(self) -> list[str]:  # type: ignore[override]
        """Every live key, in key order, as a list."""
        return [key for key, _ in self._pages("", False)]

    def values(self) -> Any:
        """The values, in key order (streamed a page at a time)."""
        self._check_usable()
        return _View(lambda: (self._load(text) for _, text in self._pages("", True) if text is not None), self)

    def items(self) -> Any:
        """The ``(key, value)`` pairs, in key order (streamed a page at a time)."""
        self._check_usable()
        return _View(lambda: ((k, self._load(t)) for k, t in self._pages("", True) if t is not None), self)

    def scan(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """``(key, value)`` for every key starting with ``prefix``, in key order."""
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
        self._check_usable()
        return ((k, self._load(t)) for k, t in self._pages(prefix, True) if t is not None)

    def clear(self) -> None:
        """Delete every document (one statement; watchers get one delete event per key)."""
        self._check_writable()

        def clear(conn: Any) -> int:
            with conn.transaction():
                keys = [
                    r[0]
                    for r in conn.execute(
                        f"DELETE FROM {self._t} WHERE key > '' RETURNING key, {_LIVE}", (self._now(),)
                    ).fetchall()
                ]
                self._notify_all(conn, [("delete", k, None) for k in keys])
            return len(keys)

        self._run(clear)

    # -- queries -----------------------------------------------------------------------

    def _candidates(
        self, conn: Any, filter: Any, prefix: str | None, lock: bool = False
    ) -> list[tuple[str, str, float | None]]:
        """Live rows that may match ``filter`` (a sound superset), in key order."""
        where, params = self._where(filter, prefix)
        suffix = " FOR UPDATE" if lock else ""
        statement = f"SELECT key, doc::text, expires_at FROM {self._t} WHERE {where} ORDER BY key{suffix}"
        return list(conn.execute(statement, params).fetchall())

    def _where(self, filter: Any, prefix: str | None) -> tuple[str, list[Any]]:
        conditions = ["key > ''", _LIVE]
        params: list[Any] = [self._now()]
        if prefix:
            low, high = _prefix_bounds(prefix)
            conditions.append("key >= %s")
            params.append(low)
            if high is not None:
                conditions.append("key < %s")
                params.append(high)
        translation = translate(filter)
        if translation.sql != "TRUE":
            conditions.append(translation.sql)
            params.extend(translation.params)
        return " AND ".join(conditions), params

    def _evaluate(self, filter: Any, prefix: str | None, run: Callable[[Any], Any]) -> Any:
        """Run ``run(native_db)`` on an in-memory FerrumDB holding the candidate rows."""
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str or None, not {type(prefix).__name__}")
        rows = self._run(lambda c: self._candidates(c, filter, prefix))
        with _native_db() as native:
            for key, text, _ in rows:
                native.set_json(key, text)
            return run(native)

    def query(
        self,
        filter: dict[str, Any] | None = None,
        *,
        sort: Any = None,
        limit: int | None = None,
        skip: int = 0,
        prefix: str | None = None,
        fields: list[str] | None = None,
    ) -> list[tuple[str, Any]]:
        """``(key, doc)`` of the documents matching ``filter``, as in the file backend (see ``FerrumDB.query``)."""
        return self._evaluate(  # type: ignore[no-any-return]
            filter,
            prefix,
            lambda db: db.query(filter, sort=sort, limit=limit, skip=skip, prefix=prefix, fields=fields),
        )

    def to_pandas(
        self,
        filter: dict[str, Any] | None = None,  # noqa: A002  (the name query() uses)
        fields: list[str] | None = None,
        limit: int | None = None,
    ) -> Any:  # a pandas.DataFrame; pandas is optional and untyped
        """The documents matching ``filter`` as a pandas DataFrame indexed by key (see ``FerrumDB.to_pandas``)."""
        return _notebook.to_pandas(self, filter, fields, limit)

    def count(self, filter: dict[str, Any] | None = None, *, prefix: str | None = None) -> int:
        """How many documents match ``filter`` (``db.count()`` is ``len(db)``)."""
        if filter is None and prefix is None:
            return len(self)
        return self._evaluate(filter, prefix, lambda db: db.count(filter, prefix=prefix))  # type: ignore[no-any-return]

    def distinct(self, field: str, filter: dict[str, Any] | None = None, *, prefix: str | None = None) -> list[Any]:
        """The distinct values of ``field`` among matching documents, in sort order."""
        return self._evaluate(filter, prefix, lambda db: db.distinct(field, filter, prefix=prefix))  # type: ignore[no-any-return]

    def find(self, field: str, value: Any) -> list[str]:
        """Keys of the documents whose ``field`` equals ``value`` (same as ``query({field: value})``)."""
        probe = {field: value} if isinstance(field, str) else None
        return self._evaluate(probe, None, lambda db: db.find(field, value))  # type: ignore[no-any-return]

    def explain(self, filter: dict[str, Any]) -> dict[str, Any]:
        """What ``query(filter)`` runs: the SQL, PostgreSQL's plan, and what FerrumDB checks after it.

        Returns a dict with ``index`` (an indexed field the SQL uses, or None),
        ``scan`` (True if PostgreSQL reads the whole table), ``estimated_rows``,
        ``sql``, ``plan`` (PostgreSQL's plan, one line per node) and
        ``residual`` (what the native matcher still decides).
        """
        with _native_db() as native:
            native.explain(filter)  # rejects a malformed filter exactly as the file backend does
        where, params = self._where(filter, None)
        statement = f"SELECT key, doc::text, expires_at FROM {self._t} WHERE {where} ORDER BY key"
        translation = translate(filter)
        indexes = self.indexes()

        def plan(conn: Any) -> list[str]:
            return [r[0] for r in conn.execute("EXPLAIN " + statement, params).fetchall()]

        lines = self._run(plan)
        index_used = next((f for f in translation.fields if f in indexes), None)
        uses_index = any(self._index_names(f)[0] in line for f in indexes for line in lines)
        estimated = 0
        match = re.search(r"rows=(\d+)", lines[0]) if lines else None
        if match:
            estimated = int(match.group(1))
        bound_sql = statement
        for p in params:
            bound_sql = bound_sql.replace("%s", _sql_literal(p), 1)
        return {
            "backend": "postgresql",
            "index": index_used if uses_index else None,
            "scan": not any("Index" in line for line in lines),
            "estimated_rows": estimated,
            "sql": bound_sql,
            "plan": lines,
            "residual": "none: the SQL condition is exact; FerrumDB re-checks it"
            if translation.complete
            else "FerrumDB's matcher evaluates the whole filter on the rows the SQL returns",
        }

    # -- updates -----------------------------------------------------------------------

    def _apply_native(
        self,
        filter: Any,
        prefix: str | None,
        rows_for: Callable[[Any], list[tuple[str, str, float | None]]],
        run: Callable[[Any], Any],
    ) -> Any:
        """Lock candidate rows, run a native update/delete on them, write back what changed, atomically."""
        self._check_writable()

        def attempt(conn: Any) -> Any:
            with conn.transaction():
                rows = rows_for(conn)
                before = {key: (text, expires_at) for key, text, expires_at in rows}
                with _native_db() as native:
                    for key, text, _ in rows:
                        native.set_json(key, text)
                    result = run(native)
                    after = {key: _jsonb_safe(native.get_json(key)) for key in native.keys()}
                events: list[tuple[str, str, str | None]] = []
                writes = []
                for key, text in after.items():
                    old = before.get(key)
                    if old is None or old[0] != text:
                        writes.append((key, text, old[1] if old is not None else None))
                        events.append(("set", key, text))
                deletes = [key for key in before if key not in after]
                events.extend(("delete", key, None) for key in deletes)
                if writes:
                    self._upsert_rows(conn, writes)
                if deletes:
                    conn.execute(f"DELETE FROM {self._t} WHERE key = ANY(%s)", (deletes,))
                self._notify_all(conn, events)
                self._counters["sets"] += len(writes)
                self._counters["deletes"] += len(deletes)
                return result

        for retry in range(DEADLOCK_RETRIES):
            try:
                return self._run(attempt)
            except pg_errors.DeadlockDetected:
                if retry == DEADLOCK_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def update_one(self, key_or_filter: str | dict[str, Any], update: dict[str, Any], *, upsert: bool = False) -> Any:
        """Apply update operators to one document, atomically; the new document, or None if none matched."""
        if isinstance(key_or_filter, str):
            key = key_or_filter
            _check_key(key)

            def rows_for(conn: Any) -> list[tuple[str, str, float | None]]:
                row = conn.execute(
                    f"SELECT key, doc::text, expires_at FROM {self._t} WHERE key = %s AND key > '' FOR UPDATE",
                    (key,),
                ).fetchone()
                if row is None or (row[2] is not None and row[2] <= self._now()):
                    return []  # an expired row counts as missing; an upsert replaces it
                return [row]

            result = self._apply_native(None, None, rows_for, lambda db: db.update_one(key, update, upsert=upsert))
        else:
            result = self._apply_native(
                key_or_filter,
                None,
                lambda conn: self._candidates(conn, key_or_filter, None, lock=True),
                lambda db: db.update_one(key_or_filter, update, upsert=upsert),
            )
        return result

    def update_many(self, filter: dict[str, Any], update: dict[str, Any], *, prefix: str | None = None) -> int:
        """Apply update operators to every matching document, all or nothing; how many changed."""
        result = self._apply_native(
            filter,
            prefix,
            lambda conn: self._candidates(conn, filter, prefix, lock=True),
            lambda db: db.update_many(filter, update, prefix=prefix),
        )
        return int(result)

    def delete_many(self, filter: dict[str, Any], *, prefix: str | None = None) -> int:
        """Delete every matching document, all or nothing; how many."""
        result = self._apply_native(
            filter,
            prefix,
            lambda conn: self._candidates(conn, filter, prefix, lock=True),
            lambda db: db.delete_many(filter, prefix=prefix),
        )
        return int(result)

    # -- indexes -----------------------------------------------------------------------

    def indexes(self) -> list[str]:
        """The indexed fields (shared by every process using this table)."""
        return sorted(self._run(self._meta).get("indexes", {}))

    def create_index(self, field: str, *, unique: bool = False, progress: bool = False) -> None:
        """Create PostgreSQL indexes for ``field``: GIN on the values it reaches, and uniqueness if asked.

        ``unique=True`` enforces the file backend's rule: no two documents
        share a value the field reaches (array elements included; a missing
        field counts as ``null``, as in MongoDB), through a claims table kept
        by a trigger (see :mod:`ferrumdb.postgres_unique`).

        Raises:
            DuplicateKeyError: ``unique=True`` over data that already repeats a value.
            ValueError: ``field`` is not a valid dotted path.
        """
        self._check_writable()
        with _native_db() as native:
            native.create_index(field, unique=unique)  # validates the path like the file backend
        plain = self._index_names(field)[0]
        t = self._t

        def create(conn: Any) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ferrumdb:{self._table}",))
                existing = self._meta(conn).get("indexes", {}).get(field)
                if existing is not None and bool(existing.get("unique")) != bool(unique):
                    had = "with unique=True" if existing.get("unique") else "without unique"
                    raise ValueError(
                        f"an index on {field!r} already exists {had}; drop_index({field!r}) first to change it"
                    )
                if translatable_path(field):
                    conn.execute(
                        f"CREATE INDEX IF NOT EXISTS {pg_sql.Identifier(plain).as_string(None)} "
                        f"ON {t} USING gin (({path_expression(field)}) jsonb_path_ops)"
                    )
                meta = self._meta(conn)
                if unique and existing is None:
                    self._purge_expired_in(conn)
                    postgres_unique.install(conn, self._table)
                    duplicate = postgres_unique.add_unique(conn, self._table, field)
                    if duplicate is not None:
                        value, key, _ = duplicate
                        raise DuplicateKeyError(
                            f"cannot create the unique index on {json.dumps(field, ensure_ascii=False)}: "
                            f"{json.dumps(key, ensure_ascii=False)} and another document both hold {_compact(value)} there; "
                            "change or delete one of them first"
                        )
                    fields = [f for f, d in meta.get("indexes", {}).items() if d.get("unique")]
                    postgres_unique.refresh_trigger(conn, self._table, [*fields, field])
                meta.setdefault("indexes", {})[field] = {"unique": bool(unique)}
                conn.execute(f"UPDATE {t} SET doc = %s::jsonb WHERE key = ''", (json.dumps(meta),))

        self._run(create)

    def drop_index(self, field: str) -> None:
        """Drop the indexes of ``field``."""
        self._check_writable()
        plain, unique_name = self._index_names(field)

        def drop(conn: Any) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ferrumdb:{self._table}",))
                meta = self._meta(conn)
                if field not in meta.get("indexes", {}):
                    return  # as in the file backend, dropping a missing index does nothing
                for name in (plain, unique_name):
                    conn.execute(f"DROP INDEX IF EXISTS {pg_sql.Identifier(name).as_string(None)}")
                if meta["indexes"][field].get("unique"):
                    postgres_unique.remove_unique(conn, self._table, field)
                    others = [f for f, d in meta["indexes"].items() if d.get("unique") and f != field]
                    postgres_unique.refresh_trigger(conn, self._table, others)
                del meta["indexes"][field]
                conn.execute(f"UPDATE {self._t} SET doc = %s::jsonb WHERE key = ''", (json.dumps(meta),))

        self._run(drop)

    def index_definitions(self) -> dict[str, dict[str, bool]]:
        """``{field: {"unique": bool}}`` for every index (used by ``ferrumdb push/pull``)."""
        return dict(self._run(self._meta).get("indexes", {}))

    # -- transactions, watch -------------------------------------------------------------

    def transaction(self) -> PostgresTransaction:
        """Start a transaction (see :class:`PostgresTransaction`); nothing is sent before its first read."""
        self._check_writable()
        self._check_usable()
        return PostgresTransaction(self)

    def commit(self, transaction: Any) -> None:
        """Commit a :class:`PostgresTransaction` (the builder form is not supported here)."""
        if not isinstance(transaction, PostgresTransaction):
            raise TypeError(
                "a PostgreSQL handle commits transactions from db.transaction(); "
                "build them with 'with db.transaction() as tx:'"
            )
        transaction.commit()

    def watch(self, prefix: str = "") -> PostgresWatch:
        """Changes committed by any process after this call returns, as ``(op, key, value)`` (LISTEN/NOTIFY)."""
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
        self._conn()
        return PostgresWatch(self, prefix)

    def _notify_all(self, conn: Any, events: list[tuple[str, str, str | None]]) -> None:
        """Send ``events`` packed into as few NOTIFY payloads as fit, in one statement (delivered at commit, in order).

        Only while someone watches (see :data:`WATCH_SLOTS`); ``conn`` must be inside the
        transaction that makes the changes, which holds the slot it takes until it commits."""
        if not events:
            return
        if conn.execute(self._sql_unwatched).fetchone()[0]:
            return  # nobody watches (and nobody can start to before this transaction commits)
        payloads: list[str] = []
        packed: list[str] = []
        size = 0
        for op, key, text in events:
            event = _event_payload(op, key, text)
            if packed and size + len(event) > NOTIFY_VALUE_LIMIT:
                payloads.append("[" + ",".join(packed) + "]")
                packed, size = [], 0
            packed.append(event)
            size += len(event) + 1
        payloads.append("[" + ",".join(packed) + "]")
        # Sent as one JSON array: psycopg escapes a text[] parameter in Python, a str in C.
        conn.execute(
            "SELECT count(pg_notify(%s, payload)) FROM "
            "(SELECT payload FROM jsonb_array_elements_text(%s::jsonb) WITH ORDINALITY AS e(payload, n) ORDER BY n) AS ordered",
            (self._channel, json.dumps(payloads)),
        )

    def _upsert_rows(self, conn: Any, rows: list[tuple[str, str, float | None]]) -> None:
        """Insert or replace ``(key, json_text, expires_at)`` rows inside the caller's transaction.

        Many rows go through COPY into a session-temporary table and one
        INSERT … SELECT (several times faster than a statement per row); a
        few go as one statement each, pipelined.
        """
        upsert = "ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc, expires_at = EXCLUDED.expires_at"
        if len(rows) < COPY_MIN_ROWS:
            conn.cursor().executemany(
                f"INSERT INTO {self._t} (key, doc, expires_at) VALUES (%s, %s::jsonb, %s) {upsert}", rows
            )
            return
        if getattr(self._local, "staging_for", None) is not conn:
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS ferrumdb_staging (key text, doc text, expires_at float8) "
                "ON COMMIT DELETE ROWS"
            )
            self._local.staging_for = conn
        last = {key: (key, text, expires_at) for key, text, expires_at in rows}  # one row per key
        # Binary COPY: no per-character text escaping on the client.
        with conn.cursor().copy("COPY ferrumdb_staging (key, doc, expires_at) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "float8"])
            for row in last.values():
                copy.write_row(row)
        conn.execute(
            f"INSERT INTO {self._t} (key, doc, expires_at) SELECT key, doc::jsonb, expires_at FROM ferrumdb_staging {upsert}"
        )
        conn.execute("TRUNCATE ferrumdb_staging")

    # -- whole-database work -------------------------------------------------------------

    def export_jsonl(self, path: str | os.PathLike[str], *, prefix: str = "", progress: bool = False) -> int:
        """Write every live document to ``path`` in the file backend's JSON Lines format; how many."""
        now = self._now()
        count = 0
        tmp = os.fspath(path) + ".tmp"
        low, high = _prefix_bounds(prefix)
        bound = " AND key < %s" if high is not None else ""
        statement = (
            f"SELECT key, doc::text, expires_at FROM {self._t} WHERE key > %s AND key >= %s{bound} AND {_LIVE} "
            f"ORDER BY key LIMIT {PAGE_ROWS}"
        )
        definitions = self.index_definitions()
        with open(tmp, "w", encoding="utf-8") as out:
            if definitions:
                out.write(_export_header(definitions))
            after = ""
            while True:
                params: list[Any] = [after, low] + ([high] if high is not None else []) + [now]
                rows = self._run(lambda c: c.execute(statement, params).fetchall())
                for key, text, expires_at in rows:
                    out.write(_jsonl_line(key, _compact(text), expires_at))
                    count += 1
                if len(rows) < PAGE_ROWS:
                    break
                after = rows[-1][0]
        os.replace(tmp, path)
        return count

    def import_jsonl(self, path: str | os.PathLike[str], *, indexes: bool = True, progress: bool = False) -> int:
        """Load ``path`` (JSON Lines as written by ``export_jsonl``) in one transaction; how many.

        The indexes a file export recorded are created first, unless ``indexes=False``."""
        self._check_writable()
        with _native_db(self._clock) as native:
            count = native.import_jsonl(path, indexes=indexes)  # the file backend's parser and checks
            for field, unique in native._index_definitions():
                self.create_index(field, unique=unique)
            now = self._now()
            rows = []
            for key in native.keys():
                remaining = native.ttl(key)
                rows.append((key, _jsonb_safe(native.get_json(key)), None if remaining is None else now + remaining))
        self.write_many(rows)
        return int(count)

    def write_many(self, rows: list[tuple[str, str, float | None]]) -> None:
        """Upsert ``(key, json_text, expires_at)`` rows in one transaction (text already canonical)."""
        self._check_writable()
        t = self._t

        def write(conn: Any) -> None:
            with conn.transaction():
                self._upsert_rows(conn, rows)
                self._notify_all(conn, [("set", k, text) for k, text, _ in rows])

        if rows:
            self._run(write)
            self._counters["sets"] += len(rows)

    def stats(self) -> dict[str, Any]:
        """Counters of this handle and the table's size: ``keys gets sets deletes ops_per_sec uptime_s file_bytes live_bytes``,
        and ``expired_purged`` (expired rows this handle deleted, in the background or on the way)."""
        keys = len(self)
        sizes = self._run(
            lambda c: c.execute(
                "SELECT pg_total_relation_size(%s::regclass), pg_relation_size(%s::regclass)", (self._t, self._t)
            ).fetchone()
        )
        uptime = time.monotonic() - self._started
        ops = sum(self._counters.values())
        return {
            "backend": "postgresql",
            "table": self._table,
            "keys": keys,
            **self._counters,
            "ops_per_sec": ops / uptime if uptime > 0 else 0.0,
            "uptime_s": uptime,
            "file_bytes": int(sizes[0]),
            "live_bytes": int(sizes[1]),
            "indexes": self.indexes(),
            "expired_purged": self._expired_purged,
        }

    def flush(self) -> None:
        """Nothing to do: every call already committed on the server."""
        self._conn()

    def compact(self, *, progress: bool = False) -> None:
        """Purge expired rows and ``VACUUM`` the table (PostgreSQL's own compaction)."""
        self._check_writable()
        self._purge_expired()
        self._run(lambda c: c.execute(f"VACUUM (ANALYZE) {self._t}"))

    def backup(self, path: str | os.PathLike[str], *, progress: bool = False) -> None:
        """A consistent copy on PostgreSQL is the server's job: use pg_dump or your provider's backups."""
        raise NotImplementedError(
            "backup() of a PostgreSQL database: use pg_dump (or `ferrumdb pull URL FILE` for a FerrumDB file copy)"
        )

    def rekey(self, new_key: Any) -> None:
        """Encryption at rest on PostgreSQL is the server's (disk or provider encryption)."""
        raise NotImplementedError("rekey() applies to file databases; PostgreSQL encrypts at rest on the server")

    def close(self) -> None:
        """Stop Studio and the background purge, end its watches and close every connection of this
        handle; idempotent."""
        self.stop_studio()
        self._closed = True
        self._purge_stop.set()
        for watch in list(self._watches):
            watch.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except Exception:  # closing a broken connection must not raise
                pass

    # -- Studio -------------------------------------------------------------------------

    def studio(
        self, port: int = 7474, host: str = "127.0.0.1", token: str | None = None, read_only: bool = False
    ) -> str:
        """Start Ferrum Studio for this table in the background and return its URL (as ``FerrumDB.studio``).

        The same pages and JSON API as for a file, served from this process through this
        handle (on a connection of its own). At most one Studio serves a handle: the same
        arguments again return the running one's URL, other arguments restart it;
        ``stop_studio()`` and ``close()`` stop it (a running Studio keeps the handle alive).

        Raises:
            OSError: The port is taken (errno ``EADDRINUSE``).
            ValueError: A non-loopback ``host`` without a ``token``.
        """
        self._check_usable()
        arguments = (port, host, token, read_only)
        if self._studio is not None:
            if self._studio[0] == arguments:
                return _notebook.StudioURL(self._studio[1].url)
            self.stop_studio()
        server = _native.serve_studio(self, port, host, token, read_only)
        self._studio = (arguments, server)
        # Studio's thread calls into Python: it must end while the interpreter still runs.
        atexit.register(self.stop_studio)
        return _notebook.StudioURL(server.url)

    def stop_studio(self) -> bool:
        """Stop the Studio serving this handle, if any; returns whether one ran."""
        running, self._studio = self._studio, None
        if running is None:
            return False
        atexit.unregister(self.stop_studio)
        return bool(running[1].stop())

    # -- for the REPL and Studio (rust/python/remote.rs calls these) ----------------------

    def _entries_page(
        self, prefix: str, after: str | None, limit: int, with_values: bool
    ) -> list[tuple[str, str | None, float | None]]:
        """Up to ``limit`` live ``(key, json_text or None, seconds_left or None)`` rows
        starting with ``prefix``, after ``after``, in key order (one round trip)."""
        low, high = _prefix_bounds(prefix)
        cols = "key, doc::text, expires_at" if with_values else "key, NULL, expires_at"
        bound = " AND key < %s" if high is not None else ""
        now = self._now()
        params: list[Any] = [after or "", low] + ([high] if high is not None else []) + [now, limit]
        statement = (
            f"SELECT {cols} FROM {self._t} WHERE key > %s AND key >= %s{bound} AND {_LIVE} ORDER BY key LIMIT %s"
        )
        rows = self._run(lambda c: c.execute(statement, params).fetchall())
        return [(k, t, None if e is None else max(0.0, e - now)) for k, t, e in rows]

    def _put(
        self, key: str, text: str, ttl_change: str, ttl: float | None, create_only: bool
    ) -> tuple[bool, float | None] | None:
        """Studio's edit: store JSON ``text`` at ``key`` in one transaction, and
        ``(created, seconds_left)``; ``None`` when ``create_only`` and the key exists.

        ``ttl_change`` is ``"keep"`` (the very same deadline; none for a new key),
        ``"clear"`` (never expire) or ``"set"`` (``ttl`` seconds from now).
        """
        self._check_writable()
        _check_key(key)
        text = self._canonical_json(key, text)
        expires_at = self._expiry(ttl) if ttl_change == "set" else None

        def put(conn: Any) -> tuple[bool, float | None] | None:
            now = self._now()
            with conn.transaction():
                row = conn.execute(
                    f"SELECT expires_at FROM {self._t} WHERE key = %s AND key > '' AND {_LIVE} FOR UPDATE", (key, now)
                ).fetchone()
                if row is not None and create_only:
                    return None
                deadline = (row[0] if row is not None else None) if ttl_change == "keep" else expires_at
                # The one upsert of set(), watch notification included.
                params = [key.encode(), text.encode(), None if deadline is None else repr(deadline).encode()]
                self._exec(conn, self._stmt_set, params)
            return row is None, None if deadline is None else max(0.0, deadline - now)

        result = self._run(put, writing=key)
        if result is not None:
            self._counters["sets"] += 1
        return result  # type: ignore[no-any-return]

    def _activity(self) -> dict[str, Any]:
        """What Studio's live metrics chart: ``sets`` and ``deletes`` of the table by every process
        (PostgreSQL's statistics: rows inserted and updated, rows deleted; each session reports
        them about once a second), this handle's ``gets`` and ``ops_per_sec``, live ``keys`` and sizes."""

        def read(conn: Any) -> Any:
            return conn.execute(
                "SELECT coalesce(s.n_tup_ins + s.n_tup_upd, 0), coalesce(s.n_tup_del, 0), "
                "pg_total_relation_size(c.oid), pg_relation_size(c.oid), "
                f"(SELECT count(*) FROM {self._t} WHERE key > '' AND {_LIVE}) "
                "FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = %s::regclass",
                (self._now(), self._t),
            ).fetchone()

        sets, deletes, file_bytes, live_bytes, keys = self._run(read)
        uptime = time.monotonic() - self._started
        return {
            "gets": self._counters["gets"],
            "sets": int(sets),
            "deletes": int(deletes),
            "keys": int(keys),
            "file_bytes": int(file_bytes),
            "live_bytes": int(live_bytes),
            "ops_per_sec": sum(self._counters.values()) / uptime if uptime > 0 else 0.0,
        }

    def _persist(self, key: str) -> bool | None:
        """Remove ``key``'s TTL, keeping its value: whether it had one, ``None`` if the key is missing.

        Watchers see the key set again (with the same value), as on a file, where it is rewritten."""
        self._check_writable()
        _check_key(key)

        def persist(conn: Any) -> bool | None:
            now = self._now()
            with conn.transaction():
                row = conn.execute(
                    f"SELECT expires_at FROM {self._t} WHERE key = %s AND key > '' AND {_LIVE} FOR UPDATE", (key, now)
                ).fetchone()
                if row is None:
                    return None
                if row[0] is None:
                    return False
                text = conn.execute(
                    f"UPDATE {self._t} SET expires_at = NULL WHERE key = %s RETURNING doc::text", (key,)
                ).fetchone()[0]
                self._notify_all(conn, [("set", key, text)])
                return True

        return self._run(persist)  # type: ignore[no-any-return]

    # -- dict manners ------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Mapping):
            return NotImplemented
        if len(self) != len(other):
            return False
        return dict(self.items()) == dict(other.items())

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None  # type: ignore[assignment]

    def __enter__(self) -> PostgresDB:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_closed", True) or getattr(self, "_pid", None) != os.getpid():
            return
        self.close()
        warnings.warn(
            f"unclosed FerrumDB database {self.path!r}; use 'with ferrumdb.open(...)' or call close()",
            ResourceWarning,
            stacklevel=2,
            source=self,
        )

    def __reduce__(self) -> Any:
        raise TypeError("a FerrumDB handle cannot be pickled; pass the URL and call ferrumdb.open() in the other process")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<FerrumDB {self.path!r} table={self._table!r} {state}>"

    def _repr_html_(self) -> str:
        import html

        return (
            "<table><caption>FerrumDB (PostgreSQL)</caption>"
            f"<tr><th style='text-align:left'>url</th><td>{html.escape(self.path)}</td></tr>"
            f"<tr><th style='text-align:left'>table</th><td>{html.escape(self._table)}</td></tr>"
            f"<tr><th style='text-align:left'>state</th><td>{'closed' if self._closed else 'open'}</td></tr></table>"
        )


class _View:
    """``db.values()``/``db.items()``: re-iterable, streamed in key order."""

    def __init__(self, make: Callable[[], Iterator[Any]], db: PostgresDB) -> None:
        self._make = make
        self._db = db

    def __iter__(self) -> Iterator[Any]:
        return self._make()

    def __len__(self) -> int:
        return len(self._db)


class _native_db:
    """A fresh in-memory native database for one evaluation, closed afterwards."""

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock

    def __enter__(self) -> Any:
        self.db = _native.FerrumDB(":memory:", clock=self.clock)
        return self.db

    def __exit__(self, *exc_info: object) -> None:
        self.db.close()


class PostgresTransaction:
    """Buffered writes committed together; reads see them and record what they read.

    ``commit`` runs in one PostgreSQL transaction at ``REPEATABLE READ``: it
    locks every row the transaction read (``FOR UPDATE``) and compares its row
    version (``xmin``) with the one read; any difference (changed, deleted,
    created, expired) raises :class:`TransactionConflict` and writes nothing.
    A concurrent change racing the commit makes PostgreSQL itself raise a
    serialization failure, reported the same way. REPEATABLE READ rather than
    SERIALIZABLE: the version check already gives the file backend's rule
    ("a key it read changed"), and SERIALIZABLE's predicate locks would also
    abort transactions that merely touched the same index pages.
    """

    def __init__(self, db: PostgresDB) -> None:
        self._db = db
        self._writes: dict[str, tuple[str | None, float | None]] = {}
        self._reads: dict[str, Any] = {}
        self._finished = False

    def _check(self) -> None:
        if self._finished:
            raise ValueError("this transaction was already committed or discarded")

    @property
    def finished(self) -> bool:
        """True once committed or discarded."""
        return self._finished

    def set(self, key: str, value: Any, ttl: float | None = None) -> PostgresTransaction:
        """Buffer a write of ``value`` at ``key`` (checked now, like the file backend)."""
        self._check()
        self._writes[key] = (self._db._canonical(key, value), self._db._expiry(ttl))
        return self

    def delete(self, key: str) -> PostgresTransaction:
        """Buffer a delete of ``key``."""
        self._check()
        _check_key(key)
        self._writes[key] = (None, None)
        return self

    def _read(self, key: str) -> str | None:
        _check_key(key)
        if key in self._writes:
            return self._writes[key][0]
        db = self._db
        row = db._run(
            lambda c: c.execute(
                f"SELECT doc::text, expires_at, xmin::text FROM {db._t} WHERE key = %s AND key > ''", (key,)
            ).fetchone()
        )
        if row is None or (row[1] is not None and row[1] <= db._now()):
            self._reads.setdefault(key, None)
            return None
        self._reads.setdefault(key, row[2])
        return str(row[0])

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key`` as this transaction sees it, or ``default``."""
        self._check()
        text = self._read(key)
        return default if text is None else json.loads(text)

    def __getitem__(self, key: str) -> Any:
        self._check()
        text = self._read(key)
        if text is None:
            raise KeyError(key)
        return json.loads(text)

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        self._check()
        if self._read(key) is None:
            raise KeyError(key)
        self.delete(key)

    def __contains__(self, key: object) -> bool:
        self._check()
        return isinstance(key, str) and bool(key) and self._read(key) is not None

    def __len__(self) -> int:
        """Number of buffered writes."""
        return len(self._writes)

    def discard(self) -> None:
        """Drop every buffered write."""
        self._writes.clear()
        self._finished = True

    def commit(self, db: Any = None) -> None:
        """Apply every buffered write at once, or raise :class:`TransactionConflict` and write nothing."""
        self._check()
        self._finished = True
        if not self._writes and not self._reads:
            return
        owner = self._db
        t = owner._t

        def commit(conn: Any) -> None:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                if self._reads:
                    now = owner._now()
                    current: dict[str, Any] = {}
                    for key, _, expires_at, version in conn.execute(
                        f"SELECT key, 1, expires_at, xmin::text FROM {t} WHERE key = ANY(%s) ORDER BY key FOR UPDATE",
                        (list(self._reads),),
                    ).fetchall():
                        live = expires_at is None or expires_at > now
                        current[key] = version if live else None
                    changed = [k for k, v in self._reads.items() if current.get(k) != v]
                    if changed:
                        raise TransactionConflict(
                            f"key {changed[0]!r} changed since this transaction read it; nothing was written, run it again"
                        )
                sets = [(k, text, exp) for k, (text, exp) in self._writes.items() if text is not None]
                deletes = [k for k, (text, _) in self._writes.items() if text is None]
                if sets:
                    owner._upsert_rows(conn, sets)
                if deletes:
                    conn.execute(f"DELETE FROM {t} WHERE key = ANY(%s)", (deletes,))
                owner._notify_all(
                    conn,
                    [("set", k, text) for k, text, _ in sets] + [("delete", k, None) for k in deletes],
                )

        owner._run(commit)
        owner._counters["sets"] += sum(1 for text, _ in self._writes.values() if text is not None)

    def __enter__(self) -> PostgresTransaction:
        self._check()
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self._finished:
            return
        if exc_type is None:
            self.commit()
        else:
            self.discard()


class PostgresWatch:
    """Iterator of ``(op, key, value)`` changes from every process, through LISTEN/NOTIFY.

    It listens on its own connection from the moment ``watch()`` returns.
    A transaction's events arrive together, in commit order, packed several
    to a NOTIFY payload. Values too big for a payload (8000 bytes) are read
    back from the table, so they show the value current at that moment.

    ``close()`` may be called from another thread while one waits in
    ``next()``: the waiter sleeps in ``select`` on the connection's socket and
    a wake-up socket, so it returns (ending the iteration) at once, and only
    the iterating thread touches the connection.
    """

    def __init__(self, db: PostgresDB, prefix: str) -> None:
        self._db = db
        self._prefix = prefix
        self._conn = db._connect()
        try:
            self._conn.execute(pg_sql.SQL("LISTEN {}").format(pg_sql.Identifier(db._channel)))
            # Listening now; holding every watch slot makes writers notify (see WATCH_SLOTS).
            # Taking one waits for the writer holding it, if any, to commit.
            base = db._watch_lock_base
            self._conn.execute(
                f"SELECT count(pg_advisory_lock_shared({base} + s)) FROM generate_series(0, {WATCH_SLOTS - 1}) AS s"
            )
        except BaseException:
            self._conn.close()
            raise
        self._closed = False
        self._released = False
        self._busy = threading.Lock()  # held by the thread inside next()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        # One NOTIFY may carry several events (a transaction's, packed); they wait here.
        self._pending: collections.deque[list[Any]] = collections.deque()
        db._watches.add(self)

    @property
    def prefix(self) -> str:
        """The key prefix this watch reports."""
        return self._prefix

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._closed

    def __iter__(self) -> PostgresWatch:
        return self

    def __next__(self) -> tuple[str, str, Any]:
        """The next change (blocks until one is committed, or the watch is closed)."""
        with self._busy:
            try:
                return self._next_change()
            except StopIteration:
                self._release()
                raise

    def _next_change(self) -> tuple[str, str, Any]:
        while True:
            if self._closed:
                raise StopIteration
            while self._pending:
                event = self._pending.popleft()
                if event[1].startswith(self._prefix):
                    if event[0] == "delete":
                        return ("delete", event[1], None)
                    return ("set", event[1], event[2] if len(event) > 2 else self._db.get(event[1]))
            try:
                # What has already arrived, without waiting.
                arrived = list(self._conn.notifies(timeout=0))
                if not arrived:
                    readable, _, _ = select.select([self._conn.fileno(), self._wake_reader], [], [])
                    if self._wake_reader in readable:
                        self._closed = True
                    continue
            except psycopg.OperationalError as e:
                self._closed = True
                self._release()
                raise ConnectionError(f"the watch lost its connection to PostgreSQL at {self._db._host}: {e}") from None
            for notify in arrived:
                self._pending.extend(json.loads(notify.payload))

    def close(self) -> None:
        """Stop listening; iteration ends (also for a thread waiting in ``next()`` right now)."""
        if self._closed and self._released:
            return
        self._closed = True
        try:
            self._wake_writer.send(b"x")
        except OSError:  # already woken (buffer full) or released
            pass
        if self._busy.acquire(blocking=False):
            # Nobody is inside next(): release here; else the waiter does on waking.
            try:
                self._release()
            finally:
                self._busy.release()

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        try:
            # Give the watch slots back now: the server would notice the closed socket only later,
            # and writers would keep notifying meanwhile.
            self._conn.execute("SELECT pg_advisory_unlock_all()")
        except Exception:  # a broken connection: the server releases them when it notices
            pass
        for resource in (self._conn, self._wake_reader, self._wake_writer):
            try:
                resource.close()
            except Exception:  # closing a broken connection must not raise
                pass

    def __del__(self) -> None:
        # Dropped without close(): give the connection and the watch slots back now.
        if getattr(self, "_released", True) is False:
            self.close()

    def __enter__(self) -> PostgresWatch:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()


_TEXT_OID = 25
_FLOAT8_OID = 701
#: SQLSTATE invalid_sql_statement_name: "prepared statement ... does not exist".
_UNKNOWN_STATEMENT = b"26000"


class _Statement(NamedTuple):
    """A statement :meth:`PostgresDB._exec` prepares once per connection."""

    name: bytes
    sql: bytes
    types: list[int]


def _check_result(conn: Any, result: Any) -> Any:
    """``result`` if it succeeded, else the psycopg exception psycopg itself would raise."""
    if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        return result
    if conn.pgconn.status != pq.ConnStatus.OK:  # the connection is gone; conn.closed says so too
        raise psycopg.OperationalError(conn.pgconn.get_error_message() or "the connection to the server was lost")
    raise pg_errors.error_from_result(result, encoding="utf-8")


def _remaining(key: str, result: Any, now: float) -> float | None:
    """``ttl()``'s answer from the result of the ttl statement run at ``now``."""
    if result.ntuples == 0:
        raise KeyError(key)
    expires_at = result.get_value(0, 0)
    return None if expires_at is None else max(0.0, float(bytes(expires_at)) - now)


def _key_bytes(key: Any) -> bytes | None:
    """``key`` as the UTF-8 text parameter of a statement, or None for a str no row can have.

    Raises ``TypeError``/``ValueError`` for a non-str or empty key. A str holding NUL
    (PostgreSQL's text refuses it, and libpq would cut the parameter short there) or a lone
    surrogate (no UTF-8 form) is never stored, so reads answer "missing", as on a file.
    """
    _check_key(key)
    if "\x00" in key:
        return None
    try:
        return bytes(key.encode())
    except UnicodeEncodeError:
        return None


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        raise TypeError(f"keys must be str, not {type(key).__name__}")
    if not key:
        raise ValueError("keys must be non-empty")


def _event_payload(op: str, key: str, text: str | None) -> str:
    head = json.dumps([op, key])
    if text is None or len(text) + len(head) > NOTIFY_VALUE_LIMIT:
        return head
    return head[:-1] + "," + text + "]"


_MAY_HAVE_EXPONENT = re.compile(r"\d[eE][+-]?\d")
_EXPONENT_FLOAT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?[eE][+-]?\d+)')


def _jsonb_safe(text: str) -> str:
    """Rewrite exponent floats positionally with a fraction, so jsonb keeps them floats.

    jsonb stores numbers as decimals and prints ``1e16`` as
    ``10000000000000000``, which would read back as an ``int``; written as
    ``10000000000000000.0`` it keeps its scale and reads back as a ``float``.
    """
    if "e+" not in text and "e-" not in text:
        return text  # the common case, found fast: the native serializer signs every exponent
    if not _MAY_HAVE_EXPONENT.search(text):
        return text

    def positional(match: re.Match[str]) -> str:
        number = match.group(1)
        if number is None:
            return match.group(0)
        from decimal import Decimal

        digits = format(Decimal(number), "f")
        return digits if "." in digits else digits + ".0"

    return _EXPONENT_FLOAT.sub(positional, text)


def _compact(text: str) -> str:
    """jsonb's spaced text printed compactly, numbers as the file backend's export prints them."""
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


#: The key of the first line an export of a database with indexes starts with: an entry that
#: expired one second into 1970 (older importers skip it), recording the index definitions for
#: ``import_jsonl`` to recreate. The file backend writes and reads it in rust/ops/jsonl.rs.
EXPORT_HEADER_KEY = "ferrumdb:export"


def _export_header(definitions: dict[str, dict[str, bool]]) -> str:
    indexes = [{"field": field, "unique": bool(d.get("unique"))} for field, d in sorted(definitions.items())]
    value = json.dumps({"ferrumdb_export": 1, "indexes": indexes}, separators=(",", ":"), ensure_ascii=False)
    return '{"key":' + json.dumps(EXPORT_HEADER_KEY) + ',"value":' + value + ',"expires_at":1}\n'


def _jsonl_line(key: str, text: str, expires_at: float | None) -> str:
    line = '{"key":' + json.dumps(key, ensure_ascii=False) + ',"value":' + text
    if expires_at is not None:
        line += ',"expires_at":' + repr(round(float(expires_at), 3))
    return line + "}\n"


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _purge_in_background(ref: weakref.ReferenceType[PostgresDB], stop: threading.Event, interval: float) -> None:
    """The purge thread: every ``interval`` seconds, delete the expired rows, until the handle closes.

    It holds the handle only weakly, so an unreferenced handle is still
    collected (and warned about); an error (a lost connection) waits for
    the next round, whose call reconnects.
    """
    while not stop.wait(interval):
        db = ref()
        if db is None or db._closed:
            return
        try:
            db._purge_expired()
        except Exception:  # noqa: BLE001 - the next round tries again
            pass
        with db._purge_round_done:
            db._purge_rounds += 1
            db._purge_round_done.notify_all()
        del db


def open_postgres(url: str, *, read_only: bool = False, clock: _native.ManualClock | None = None) -> PostgresDB:
    """Open the FerrumDB table at ``url`` (created if missing); see :class:`PostgresDB`."""
    _require_psycopg()
    return PostgresDB(url, read_only=read_only, clock=clock)


# isinstance(handle, ferrumdb.FerrumDB) holds for both backends. A virtual subclass (FerrumDB's
# metaclass is ABCMeta, from MutableMapping): a real one would inherit the native file methods.
FerrumDB.register(PostgresDB)
