"""``ferrumdb push PATH URL`` and ``ferrumdb pull URL PATH``: copy between a file database and PostgreSQL.

``push`` walks the file's documents and the table's rows together, in key
order, and writes (a batch per PostgreSQL transaction) only the documents
that are missing from the table or differ from it (value or expiry). So an
interrupted push needs no progress record to resume exactly: running it
again compares what is there and writes the rest; a batch is in the table
whole or not at all, so nothing is skipped and nothing written twice.

``--follow`` makes the table a *mirror* of the file: the first pass also
deletes rows the file does not have, then every commit made to the file (by
any process) is applied, each as one PostgreSQL transaction, until Ctrl-C:
one-way replication for moving a live application. The watch starts before
the first pass, so nothing committed meanwhile is missed (a change may be
applied twice; the result is the same). If the watch falls behind (more than
10,000 unread changes, e.g. one transaction bigger than that) it is replaced
by a new one and the table is compared with the file again.

``pull`` copies a PostgreSQL table (documents, TTLs, indexes) into a file
database. These commands live in Python because the PostgreSQL driver does;
``ferrumdb.__main__`` dispatches them before the Rust CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from . import db as file_db_module
from .errors import WatchOverflowError
from .postgres import PostgresDB, _jsonb_safe, open_postgres

__all__ = ["main", "push", "pull", "BATCH_ROWS"]

#: Rows per PostgreSQL transaction when copying.
BATCH_ROWS = 1000
#: Expiries closer than this (seconds) count as equal when comparing a row with the file.
EXPIRY_SLACK = 0.001
#: Keys named per line of ``--follow`` output before "… and N more".
SHOWN_KEYS = 10


class _Progress:
    """A one-line progress bar on stderr when it is a terminal; a summary line otherwise."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.live = sys.stderr.isatty()

    def advance(self, n: int) -> None:
        self.done += n
        if self.live and self.total:
            width = 30
            filled = int(width * min(self.done, self.total) / self.total)
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.live:
            sys.stderr.write("\n")
        sys.stderr.write(f"{self.label}: {self.done} documents\n")
        sys.stderr.flush()


def _with_table(url: str, table: str | None) -> str:
    if table is None:
        return url
    return f"{url}{'&' if '?' in url else '?'}table={table}"


def _file_indexes(db: Any) -> dict[str, bool]:
    """``{field: unique}`` of a file database's indexes.

    The file API lists names only; asking for a unique index where a plain one
    exists raises ValueError, and where a unique one exists does nothing (also
    on a read-only handle).
    """
    found = {}
    for field in db.indexes():
        try:
            db.create_index(field, unique=True)
            found[field] = True
        except ValueError:
            found[field] = False
    return found


def push(path: str, url: str, *, follow: bool = False, out: Any = None) -> int:
    """Copy the file database at ``path`` into the PostgreSQL table at ``url``; how many rows were written.

    With ``follow`` the table becomes a mirror (rows the file lacks are
    deleted) and the file's commits are applied until KeyboardInterrupt.
    """
    out = out or sys.stdout
    source = os.path.abspath(path)
    if not os.path.exists(source):
        raise FileNotFoundError(2, "no database to push", path)
    # Read-only: the application keeps writing the file meanwhile, and a
    # read-only handle follows its writes (and their watch events).
    with file_db_module.open(source, read_only=True) as src, open_postgres(url) as dst:
        watch = src.watch() if follow else None
        try:
            written = _sync_to_postgres(src, dst, mirror=follow, label="push")
            for field, unique in _file_indexes(src).items():
                if field not in dst.indexes():
                    dst.create_index(field, unique=unique)
            print(f"pushed {written} documents from {path} to table {dst.table!r}", file=out, flush=True)
            if watch is not None:
                print("following new writes; Ctrl-C to stop", file=out, flush=True)
                try:
                    _follow(src, dst, watch, out)
                except KeyboardInterrupt:
                    print("stopped following", file=out, flush=True)
        finally:
            if watch is not None:
                watch.close()
    return written


def _canonical_text(text: str) -> str:
    """One spelling per JSON value, types kept (1 and 1.0 differ), for comparing the file's and jsonb's texts."""
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _file_rows(src: Any) -> Iterator[tuple[str, str, float | None]]:
    """The file's live documents as ``(key, jsonb-safe text, absolute expiry)``, in key order."""
    for key in src:
        text = src.get_json(key)
        if text is None:  # deleted or expired since the listing
            continue
        try:
            left = src.ttl(key)
        except KeyError:
            continue
        yield key, _jsonb_safe(text), None if left is None else time.time() + left


def _table_rows(dst: PostgresDB) -> Iterator[tuple[str, str, float | None]]:
    """The table's rows (expired ones too: they are replaced like any other) in key order, a page per round trip."""
    statement = f"SELECT key, doc::text, expires_at FROM {dst._t} WHERE key > %s ORDER BY key LIMIT {BATCH_ROWS}"
    after = ""
    while True:
        rows = dst._run(lambda c: c.execute(statement, (after,)).fetchall())
        yield from rows
        if len(rows) < BATCH_ROWS:
            return
        after = rows[-1][0]


def _same(file_row: tuple[str, str, float | None], table_row: tuple[str, str, float | None]) -> bool:
    _, file_text, file_expiry = file_row
    _, table_text, table_expiry = table_row
    if (file_expiry is None) != (table_expiry is None):
        return False
    if file_expiry is not None and abs(file_expiry - float(table_expiry or 0)) > EXPIRY_SLACK:
        return False
    return _canonical_text(file_text) == _canonical_text(table_text)


def _sync_to_postgres(src: Any, dst: PostgresDB, *, mirror: bool, label: str) -> int:
    """Make the table hold the file's documents (and, if ``mirror``, nothing else); how many rows changed.

    A merge of the two key-ordered streams. Differences go out a batch per
    PostgreSQL transaction, so an interruption leaves whole batches, and the
    next run writes only what still differs.
    """
    progress = _Progress(label, len(src))
    upserts: list[tuple[str, str, float | None]] = []
    deletes: list[str] = []
    changed = 0

    def flush() -> None:
        nonlocal changed, upserts, deletes
        if upserts or deletes:
            _apply(dst, upserts, deletes)
            changed += len(upserts) + len(deletes)
            upserts, deletes = [], []

    table = _table_rows(dst)
    pending = next(table, None)
    for row in _file_rows(src):
        while pending is not None and pending[0] < row[0]:
            if mirror:
                deletes.append(pending[0])
            pending = next(table, None)
        if pending is not None and pending[0] == row[0]:
            if not _same(row, pending):
                upserts.append(row)
            pending = next(table, None)
        else:
            upserts.append(row)
        progress.advance(1)
        if len(upserts) + len(deletes) >= BATCH_ROWS:
            flush()
    while pending is not None:
        if mirror:
            deletes.append(pending[0])
            if len(deletes) >= BATCH_ROWS:
                flush()
        pending = next(table, None)
    flush()
    progress.finish()
    return changed


def _apply(dst: PostgresDB, upserts: list[tuple[str, str, float | None]], deletes: list[str]) -> None:
    """Upsert and delete rows in one PostgreSQL transaction, notifying the table's watchers."""

    def write(conn: Any) -> None:
        with conn.transaction():
            if upserts:
                dst._upsert_rows(conn, upserts)
            if deletes:
                conn.execute(f"DELETE FROM {dst._t} WHERE key = ANY(%s)", (deletes,))
            dst._notify_all(
                conn, [("set", k, t) for k, t, _ in upserts] + [("delete", k, None) for k in deletes]
            )

    dst._run(write)


def _follow(src: Any, dst: PostgresDB, watch: Any, out: Any) -> None:
    """Apply the file's commits to PostgreSQL as they come, each as one transaction, until interrupted.

    ``next(watch)`` takes in another process's commits whole, so it and the
    changes ready right after it are whole transactions. An overflowed watch
    is replaced and the table compared with the file again.
    """
    while True:
        try:
            first = next(watch)
            changes = [first, *watch.take_ready()]
        except StopIteration:
            return
        except WatchOverflowError:
            watch.close()
            watch = src.watch()  # first, so nothing committed from now on is missed
            print("the watch fell behind; comparing the table with the file again", file=out, flush=True)
            fixed = _sync_to_postgres(src, dst, mirror=True, label="resync")
            print(f"resynced: {fixed} rows changed", file=out, flush=True)
            continue
        _apply_changes(src, dst, changes)
        described = [f"{op} {key}" for op, key, _ in changes[:SHOWN_KEYS]]
        if len(changes) == 1:
            line = f"applied {described[0]}"
        else:
            more = f" and {len(changes) - SHOWN_KEYS} more" if len(changes) > SHOWN_KEYS else ""
            line = f"applied {len(changes)} changes in one transaction: {', '.join(described)}{more}"
        print(line, file=out, flush=True)


def _apply_changes(src: Any, dst: PostgresDB, changes: list[tuple[str, str, Any]]) -> None:
    """One PostgreSQL transaction with the final state of every key ``changes`` touch."""
    last: dict[str, tuple[str, Any]] = {}
    for op, key, value in changes:
        last.pop(key, None)  # keep the order of the last change per key
        last[key] = (op, value)
    upserts = []
    deletes = []
    now = time.time()
    for key, (op, value) in last.items():
        if op == "delete":
            deletes.append(key)
            continue
        try:
            left = src.ttl(key)
        except KeyError:
            left = 0.0  # gone again since (expired, or a delete that follows): stored expired
        upserts.append((key, dst._canonical(key, value), None if left is None else now + left))
    _apply(dst, upserts, deletes)


def pull(url: str, path: str, *, out: Any = None) -> int:
    """Copy the PostgreSQL table at ``url`` into the file database at ``path``; how many documents."""
    out = out or sys.stdout
    with open_postgres(url, read_only=True) as src, file_db_module.open(path) as dst:
        progress = _Progress("pull", len(src))
        now = time.time()
        copied = 0
        pending = []
        for key, text in src._pages("", True):
            pending.append((key, text))
            if len(pending) >= BATCH_ROWS:
                copied += _pull_batch(src, dst, pending, now)
                progress.advance(len(pending))
                pending = []
        if pending:
            copied += _pull_batch(src, dst, pending, now)
            progress.advance(len(pending))
        for field, definition in src.index_definitions().items():
            dst.create_index(field, unique=bool(definition.get("unique")))
        progress.finish()
        print(f"pulled {copied} documents from table {src.table!r} into {path}", file=out, flush=True)
    return copied


def _pull_batch(src: PostgresDB, dst: Any, rows: list[tuple[str, Any]], now: float) -> int:
    expiry = dict(
        src._run(
            lambda c: c.execute(
                f"SELECT key, expires_at FROM {src._t} WHERE key = ANY(%s) AND expires_at IS NOT NULL",
                ([k for k, _ in rows],),
            ).fetchall()
        )
    )
    with dst.transaction() as tx:
        for key, text in rows:
            expires_at = expiry.get(key)
            if expires_at is not None and expires_at <= now:
                continue
            tx.set(key, json.loads(text), ttl=None if expires_at is None else expires_at - now)
    return len(rows)


def main(argv: list[str]) -> int:
    """``ferrumdb push ...`` / ``ferrumdb pull ...``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="ferrumdb")
    commands = parser.add_subparsers(dest="command", required=True)
    p_push = commands.add_parser("push", help="copy a file database into PostgreSQL")
    p_push.add_argument("path")
    p_push.add_argument("url")
    p_push.add_argument("--table", help="the PostgreSQL table (default: ?table= in the URL, else 'ferrum')")
    p_push.add_argument("--follow", action="store_true", help="then keep copying new writes until Ctrl-C")
    p_pull = commands.add_parser("pull", help="copy a PostgreSQL table into a file database")
    p_pull.add_argument("url")
    p_pull.add_argument("path")
    p_pull.add_argument("--table", help="the PostgreSQL table (default: ?table= in the URL, else 'ferrum')")
    args = parser.parse_args(argv)
    try:
        if args.command == "push":
            push(args.path, _with_table(args.url, args.table), follow=args.follow)
        else:
            pull(_with_table(args.url, args.table), args.path)
    except KeyboardInterrupt:
        print("interrupted; run the same push again to resume", file=sys.stderr)
        return 130
    except (OSError, ValueError, ImportError) as e:
        print(f"ferrumdb {args.command}: {e}", file=sys.stderr)
        return 1
    return 0
