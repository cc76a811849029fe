"""A ``read_only=True`` handle sees what a writer in another process writes after it opened.

The writer is a real process driven over pipes: the test sends it one command
per line and waits for its acknowledgement, then reads in this process. Every
read after the acknowledgement must see the write (keys, overwrites, deletes,
``len``, ``keys``, ``query``, index ``find``, ``ttl`` and ``watch``), also
after the writer compacts, and a writer killed with SIGKILL at any point
leaves the reader serving every acknowledged write and never a false
``CorruptionError``. No sleeps: every step waits on a pipe.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

_WRITER = textwrap.dedent(
    """
    import json, sys
    import ferrumdb

    db = ferrumdb.open(sys.argv[1], fsync="never")
    print("ready", flush=True)
    for line in sys.stdin:
        op, *args = json.loads(line)
        if op == "set":
            db[args[0]] = args[1]
        elif op == "set_ttl":
            db.set(args[0], args[1], ttl=args[2])
        elif op == "delete":
            del db[args[0]]
        elif op == "index":
            db.create_index(args[0])
        elif op == "compact":
            db.compact()
        elif op == "tx":
            with db.transaction() as tx:
                for k, v in args[0].items():
                    tx[k] = v
        elif op == "flood":
            # Write until killed, acknowledging each key once it is written.
            i = 0
            while True:
                db[f"flood:{i:07}"] = {"i": i, "pad": "x" * (i % 300)}
                if i % 7 == 0:
                    with db.transaction() as tx:
                        tx[f"pair:{i}:a"] = i
                        tx[f"pair:{i}:b"] = i
                print(i, flush=True)
                i += 1
        print("ok", flush=True)
    """
)


class Writer:
    """The writer process: ``do(op, *args)`` returns once it acknowledged."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def do(self, op: str, *args: Any) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([op, *args]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line == "ok\n", (line, self.proc.stderr.read() if self.proc.stderr else "")

    def acked(self) -> int:
        """The next number a flooding writer acknowledged."""
        assert self.proc.stdout is not None
        return int(self.proc.stdout.readline())


@contextlib.contextmanager
def _writer(db_path: Path) -> Iterator[Writer]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "ready\n", proc.stderr.read() if proc.stderr else line
        yield Writer(proc)
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def writer(db_path: Path) -> Iterator[Writer]:
    with _writer(db_path) as w:
        yield w


def test_a_reader_sees_each_acknowledged_write_on_its_next_call(
    db_path: Path, writer: Writer
) -> None:
    writer.do("set", "a", {"n": 1})
    reader = ferrumdb.open(db_path, read_only=True)
    assert reader.is_live
    assert reader["a"] == {"n": 1}
    writer.do("set", "b", {"n": 2, "role": "admin"})
    assert "b" in reader and reader["b"]["n"] == 2
    writer.do("set", "a", {"n": 3})
    assert reader["a"] == {"n": 3}
    writer.do("delete", "a")
    assert "a" not in reader
    assert reader.get("a") is None
    assert len(reader) == 1 and reader.keys() == ["b"]
    writer.do("tx", {"t1": 1, "t2": 2})
    assert reader.get("t1") == 1 and reader.get("t2") == 2
    assert [k for k, _ in reader.query({"role": "admin"})] == ["b"]
    writer.do("set_ttl", "ephemeral", 1, 3600)
    left = reader.ttl("ephemeral")
    assert left is not None and 3500 < left <= 3600
    reader.close()


def test_index_answers_and_watch_events_follow_the_writer(db_path: Path, writer: Writer) -> None:
    writer.do("index", "role")
    writer.do("set", "u:1", {"role": "admin"})
    reader = ferrumdb.open(db_path, read_only=True)
    events = reader.watch("u:")
    writer.do("set", "u:2", {"role": "admin"})
    writer.do("set", "u:1", {"role": "user"})
    writer.do("delete", "u:2")
    assert reader.find("role", "admin") == []
    assert reader.find("role", "user") == ["u:1"]
    got = [next(events)[:2] for _ in range(3)]
    assert got == [("set", "u:2"), ("set", "u:1"), ("delete", "u:2")]
    events.close()
    reader.close()


def test_a_reader_follows_the_writer_across_compaction(db_path: Path, writer: Writer) -> None:
    for i in range(200):
        writer.do("set", f"k{i:03}", {"i": i})
    reader = ferrumdb.open(db_path, read_only=True)
    assert len(reader) == 200
    for i in range(0, 200, 2):
        writer.do("delete", f"k{i:03}")
    writer.do("set", "late", "x")
    writer.do("compact")
    writer.do("set", "after", "y")
    assert len(reader) == 102
    assert reader["late"] == "x" and reader["after"] == "y"
    assert reader.get("k000") is None and reader["k001"] == {"i": 1}
    reader.close()


def test_a_reader_opened_first_follows_the_writer_that_comes(db_path: Path) -> None:
    ferrumdb.open(db_path).close()
    reader = ferrumdb.open(db_path, read_only=True)
    assert len(reader) == 0
    with _writer(db_path) as w:
        w.do("set", "k", 1)
        assert reader["k"] == 1
    reader.close()


def test_a_writer_killed_mid_flood_leaves_every_acknowledged_write_readable(
    db_path: Path, writer: Writer
) -> None:
    reader = ferrumdb.open(db_path, read_only=True)
    assert writer.proc.stdin is not None
    writer.proc.stdin.write(json.dumps(["flood"]) + "\n")
    writer.proc.stdin.flush()
    last = -1
    # Read beside the flood: every acknowledged key is there, never damage.
    for _ in range(400):
        last = writer.acked()
        assert reader.get(f"flood:{last:07}") == {"i": last, "pad": "x" * (last % 300)}
    os.kill(writer.proc.pid, signal.SIGKILL)
    writer.proc.wait()
    for i in range(last + 1):
        assert reader.get(f"flood:{i:07}") is not None, i
        if i % 7 == 0:
            assert reader.get(f"pair:{i}:a") == reader.get(f"pair:{i}:b") == i
    assert ferrumdb.check(db_path)["ok"]
    reader.close()
