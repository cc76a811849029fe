"""``ferrumdb push PATH URL`` and ``ferrumdb pull URL PATH``: copy between a file database and PostgreSQL.

``push`` copies every live document (with its TTL) and the index definitions
into the PostgreSQL table, in key order, a batch per PostgreSQL transaction.
Each batch also records the last key copied in the table's version row, so an
interrupted push resumes after it. ``--follow`` then applies every write made
to the file (by any process) until Ctrl-C: one-way replication for moving a
live application. The watch starts before the copy, so nothing written during
the copy is missed (a change may be applied twice; the result is the same).

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
from typing import Any

from . import db as file_db_module
from .postgres import PostgresDB, _jsonb_safe, open_postgres

__all__ = ["main", "push", "pull"]

BATCH_ROWS = 1000


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
    """Copy the file database at ``path`` into the PostgreSQL table at ``url``; how many documents."""
    out = out or sys.stdout
    source = os.path.abspath(path)
    if not os.path.exists(source):
        raise FileNotFoundError(2, "no database to push", path)
    # Read-only: the application keeps writing the file meanwhile, and a
    # read-only handle follows its writes (and their watch events).
    with file_db_module.open(source, read_only=True) as src, open_postgres(url) as dst:
        watch = src.watch() if follow else None
        try:
            copied = _copy_to_postgres(src, dst, source)
            for field, unique in _file_indexes(src).items():
                if field not in dst.indexes():
                    dst.create_index(field, unique=unique)
            print(f"pushed {copied} documents from {path} to table {dst.table!r}", file=out, flush=True)
            if watch is not None:
                print("following new writes; Ctrl-C to stop", file=out, flush=True)
                try:
                    _follow(src, dst, watch, out)
                except KeyboardInterrupt:
                    print("stopped following", file=out, flush=True)
        finally:
            if watch is not None:
                watch.close()
    return copied


def _copy_to_postgres(src: Any, dst: PostgresDB, source: str) -> int:
    meta = dst._run(dst._meta)
    cursor = meta.get("push") or {}
    after = cursor.get("after", "") if cursor.get("source") == source else ""
    progress = _Progress("push", len(src))
    batch: list[tuple[str, str, float | None]] = []
    copied = 0
    for key in src:
        if key <= after:
            progress.advance(1)
            continue
        text = src.get_json(key)
        if text is None:  # deleted or expired since the listing
            continue
        try:
            left = src.ttl(key)
        except KeyError:
            continue
        batch.append((key, _jsonb_safe(text), None if left is None else time.time() + left))
        if len(batch) >= BATCH_ROWS:
            _write_batch(dst, batch, source)
            copied += len(batch)
            progress.advance(len(batch))
            batch = []
    if batch:
        _write_batch(dst, batch, source)
        copied += len(batch)
        progress.advance(len(batch))
    _set_cursor(dst, None)
    progress.finish()
    return copied


def _write_batch(dst: PostgresDB, rows: list[tuple[str, str, float | None]], source: str) -> None:
    """Upsert ``rows`` and record the last key in the same PostgreSQL transaction (the resume point)."""

    def write(conn: Any) -> None:
        with conn.transaction():
            dst._upsert_rows(conn, rows)
            conn.execute(
                f"UPDATE {dst._t} SET doc = jsonb_set(doc, '{{push}}', %s::jsonb) WHERE key = ''",
                (json.dumps({"source": source, "after": rows[-1][0]}),),
            )
            dst._notify_all(conn, [("set", k, t) for k, t, _ in rows])

    dst._run(write)


def _set_cursor(dst: PostgresDB, cursor: dict[str, str] | None) -> None:
    dst._run(
        lambda c: c.execute(
            f"UPDATE {dst._t} SET doc = doc - 'push' WHERE key = ''"
            if cursor is None
            else f"UPDATE {dst._t} SET doc = jsonb_set(doc, '{{push}}', %s::jsonb) WHERE key = ''",
            () if cursor is None else (json.dumps(cursor),),
        )
    )


def _follow(src: Any, dst: PostgresDB, watch: Any, out: Any) -> None:
    """Apply the file's changes to PostgreSQL as they are committed, until interrupted."""
    for op, key, _value in watch:
        if op == "delete":
            dst.delete(key)
        else:
            text = src.get_json(key)
            if text is None:  # deleted again (or expired) before we got here
                dst.delete(key)
            else:
                try:
                    left = src.ttl(key)
                except KeyError:
                    left = None
                dst.write_many([(key, _jsonb_safe(text), None if left is None else time.time() + left)])
        print(f"applied {op} {key}", file=out, flush=True)


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
