"""Many processes, one database: writers in several processes at once (README, Promises).

Every peer is a real process driven over pipes: the test sends it one JSON
command per line and waits for its answer, so "acknowledged in A, then read in
B" is a strict order without sleeps. Covered: four writers overlapping on
their own and shared keys; visibility of sets, overwrites, deletes, ``len``,
``find`` on an index, TTL and ``watch`` in writers and read-only handles;
exact totals of ``$inc`` and of transactions across processes; unique-index
races; a writer killed with SIGKILL over and over while others write and a
reader polls; compaction in one process while others write, and a compacting
process killed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

_PEER = textwrap.dedent(
    """
    import json, sys
    import ferrumdb

    path, mode = sys.argv[1], sys.argv[2]
    db = ferrumdb.open(path, fsync="never", read_only=mode == "ro")
    watch = None

    def answer(*out):
        print(json.dumps(out), flush=True)

    answer("ready")
    for line in sys.stdin:
        op, args = json.loads(line)
        try:
            if op == "watch":
                watch = db.watch(args[0])
                out = None
            elif op == "next_change":
                out = list(next(watch))
            elif op == "write_many":
                name, n = args
                for i in range(n):
                    db[f"{name}:{i}"] = i
                    db[f"shared:{i % 10}"] = name
                out = n
            elif op == "inc_many":
                for _ in range(args[1]):
                    db.update_one(args[0], {"$inc": {"n": 1}}, upsert=True)
                out = args[1]
            elif op == "tx_inc_many":
                conflicts = 0
                for _ in range(args[1]):
                    while True:
                        try:
                            with db.transaction() as tx:
                                tx[args[0]] = tx.get(args[0], 0) + 1
                            break
                        except ferrumdb.TransactionConflict:
                            conflicts += 1
                out = conflicts
            elif op == "tx_read":
                pending = db.transaction()
                pending.__enter__()
                out = pending.get(args[0])
            elif op == "tx_commit":
                pending[args[0]] = args[1]
                try:
                    pending.__exit__(None, None, None)
                    out = "committed"
                except ferrumdb.TransactionConflict:
                    out = "conflict"
            elif op == "create_unique":
                out = db.create_index(args[0], unique=True)
            elif op == "insert_unique":
                name, emails = args
                refused = 0
                for e in emails:
                    try:
                        db[f"{name}:{e}"] = {"email": e}
                    except ferrumdb.DuplicateKeyError:
                        refused += 1
                out = refused
            elif op == "flood":
                # Write until killed, acknowledging each write once it returned.
                i = 0
                while True:
                    db[f"{args[0]}:{i:07}"] = {"i": i, "pad": "x" * (i % 200)}
                    answer("acked", i)
                    i += 1
            elif op == "compact_loop":
                # Compact until killed (others write meanwhile), saying each one.
                while True:
                    db.compact()
                    answer("compacted")
            elif op == "poll":
                # Read everything until told to stop (a line on stdin), counting
                # reads; any error ends it and is reported.
                import select
                reads = 0
                while not select.select([sys.stdin], [], [], 0)[0]:
                    for k in db.keys():
                        db.get(k)
                    reads += 1
                sys.stdin.readline()
                out = reads
            else:
                out = getattr(db, op)(*args)
            answer("ok", out)
        except Exception as e:
            answer("err", type(e).__name__, str(e))
    """
)


class Peer:
    """A process with the database open, answering one command at a time."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PEER, str(path), "ro" if read_only else "rw"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.read() == ["ready"]

    def read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"peer ended (exit status {self.proc.poll()})"
        return json.loads(line)

    def send(self, op: str, *args: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps([op, list(args)]) + "\n")
        self.proc.stdin.flush()

    def call(self, op: str, *args: Any) -> Any:
        self.send(op, *args)
        reply = self.read()
        assert reply[0] == "ok", reply
        return reply[1]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.call("close")
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            assert self.proc.wait() == 0
        self.kill()  # closes the pipes


@pytest.fixture
def peers(db_path: Path) -> Iterator[list[Peer]]:
    """Peers started by a test, killed at its end whatever happened."""
    ferrumdb.open(db_path).close()
    started: list[Peer] = []
    yield started
    for peer in started:
        peer.kill()


def test_four_writer_processes_keep_every_write(db_path: Path, peers: list[Peer]) -> None:
    """Four processes writing their own and shared keys at once: every write is seen by each and after reopen."""
    peers.extend(Peer(db_path) for _ in range(4))
    for i, peer in enumerate(peers):
        peer.send("write_many", f"w{i}", 400)
    assert [peer.read() for peer in peers] == [["ok", 400]] * 4
    for peer in peers:
        assert peer.call("__len__") == 4 * 400 + 10
        for i in range(4):
            assert peer.call("get", f"w{i}:399") == 399
        assert peer.call("get", "shared:3") in {f"w{i}" for i in range(4)}
    for peer in peers:
        peer.close()
    with ferrumdb.open(db_path) as db:
        assert len(db) == 4 * 400 + 10
        assert all(db[f"w{i}:{j}"] == j for i in range(4) for j in range(400))


def test_every_read_after_an_acknowledged_write_sees_it(db_path: Path, peers: list[Peer]) -> None:
    """Set, overwrite, delete, len, find on an index, TTL and watch: seen by another writer and a reader on their next call."""
    a, b, ro = Peer(db_path), Peer(db_path), Peer(db_path, read_only=True)
    peers.extend([a, b, ro])
    for peer in (a, b):
        assert peer.call("create_index", "group") is None
    b.call("watch", "")
    ro.call("watch", "")
    a.call("set", "k", {"group": "x"})
    for peer in (b, ro):
        assert peer.call("get", "k") == {"group": "x"}
        assert peer.call("find", "group", "x") == ["k"]
        assert peer.call("next_change") == ["set", "k", {"group": "x"}]
    b.call("set", "k", {"group": "y"})
    assert a.call("find", "group", "y") == ["k"]
    assert a.call("find", "group", "x") == []
    assert ro.call("get", "k") == {"group": "y"}
    a.call("delete", "k")
    for peer in (b, ro):
        assert peer.call("get", "k") is None
        assert peer.call("__len__") == 0
        assert peer.call("find", "group", "y") == []
    assert b.call("next_change") == ["set", "k", {"group": "y"}]
    assert b.call("next_change") == ["delete", "k", None]
    a.call("set", "t", 1, 3600)
    for peer in (b, ro):
        remaining = peer.call("ttl", "t")
        assert remaining is not None and 0 < remaining <= 3600
    # A key whose TTL passed (a's own clock says so) is gone for every process.
    a.call("set", "short", 1, 0.05)
    while a.call("get", "short") is not None:
        pass
    for peer in (b, ro):
        assert peer.call("get", "short") is None


def test_inc_and_transactions_across_processes_lose_nothing(db_path: Path, peers: list[Peer]) -> None:
    """Four processes racing update_one $inc, and read-modify-write transactions: exact totals, conflicts detected."""
    peers.extend(Peer(db_path) for _ in range(4))
    for peer in peers:
        peer.send("inc_many", "counter", 150)
    assert [peer.read() for peer in peers] == [["ok", 150]] * 4
    for peer in peers:
        peer.send("tx_inc_many", "tx", 100)
    conflicts = [peer.read() for peer in peers]
    assert all(reply[0] == "ok" for reply in conflicts), conflicts
    with ferrumdb.open(db_path, read_only=True) as db:
        assert db["counter"] == {"n": 600}
        assert db["tx"] == 400
    # A conflict with another process is really detected: a reads, b writes, a's commit is refused.
    a, b = peers[0], peers[1]
    assert a.call("tx_read", "tx") == 400
    b.call("set", "tx", 1000)
    assert a.call("tx_commit", "tx", 401) == "conflict"
    assert b.call("get", "tx") == 1000
    assert a.call("tx_read", "tx") == 1000
    assert a.call("tx_commit", "tx", 1001) == "committed"
    assert b.call("get", "tx") == 1001


def test_a_unique_index_holds_across_processes(db_path: Path, peers: list[Peer]) -> None:
    """Four processes inserting the same emails under a unique index: each email is stored once, the rest refused."""
    peers.extend(Peer(db_path) for _ in range(4))
    for peer in peers:
        peer.call("create_unique", "email")
    emails = [f"user{i}@example.com" for i in range(60)]
    for i, peer in enumerate(peers):
        peer.send("insert_unique", f"p{i}", emails)
    refused = [peer.read() for peer in peers]
    assert all(reply[0] == "ok" for reply in refused), refused
    assert sum(reply[1] for reply in refused) == 3 * len(emails)
    with ferrumdb.open(db_path, read_only=True) as db:
        stored = [doc["email"] for _, doc in db.query({})]
    assert sorted(stored) == sorted(emails)


def test_an_index_made_or_dropped_in_one_process_binds_the_others_next_write(db_path: Path, peers: list[Peer]) -> None:
    """B never asks about indexes: its next plain set after A's create_index is checked, and after A's drop_index is not."""
    a, b = Peer(db_path), Peer(db_path)
    peers.extend([a, b])
    assert a.call("insert_unique", "a", ["x@example.com"]) == 0
    a.call("create_unique", "email")
    assert b.call("insert_unique", "b", ["x@example.com", "y@example.com"]) == 1
    assert b.call("get", "b:x@example.com") is None
    a.call("drop_index", "email")
    assert b.call("insert_unique", "b", ["x@example.com"]) == 0
    assert b.call("indexes") == []


def _acked(peer: Peer, name: str, at_least: int) -> int:
    """Read a flooding peer's acknowledgements until it has acknowledged ``at_least`` writes; the last one."""
    last = -1
    while last < at_least:
        reply = peer.read()
        assert reply[0] == "acked", reply
        last = reply[1]
    return last


def test_writers_killed_at_random_points_block_no_one_and_lose_nothing(db_path: Path, peers: list[Peer]) -> None:
    """A writer killed with SIGKILL over and over while another writes and a reader polls: nothing acknowledged is lost, nobody blocks, no false CorruptionError."""
    rng = random.Random(12)
    steady, reader = Peer(db_path), Peer(db_path, read_only=True)
    peers.extend([steady, reader])
    reader.send("poll")
    steady.send("flood", "steady")
    acked: dict[str, int] = {}
    for round_ in range(6):
        victim = Peer(db_path)
        peers.append(victim)
        victim.send("flood", f"victim{round_}")
        acked[f"victim{round_}"] = _acked(victim, f"victim{round_}", rng.randrange(20, 400))
        victim.kill()
        acked["steady"] = _acked(steady, "steady", acked.get("steady", 0) + 50)
    steady.kill()
    assert reader.proc.stdin is not None
    reader.proc.stdin.write("stop\n")
    reader.proc.stdin.flush()
    polled = reader.read()
    assert polled[0] == "ok" and polled[1] > 0, polled
    with ferrumdb.open(db_path) as db:
        for name, last in acked.items():
            missing = [i for i in range(last + 1) if f"{name}:{i:07}" not in db]
            assert not missing, f"{name}: acknowledged writes lost: {missing[:5]}"
    assert ferrumdb.check(db_path)["ok"] is True


def test_compaction_in_one_process_while_others_write(db_path: Path, peers: list[Peer]) -> None:
    """One process compacts over and over (and is killed mid-way) while two others write: nothing is lost or doubled, nobody blocks."""
    rng = random.Random(7)
    writers = [Peer(db_path), Peer(db_path)]
    peers.extend(writers)
    for i, w in enumerate(writers):
        w.send("flood", f"w{i}")
    last = [0, 0]
    for round_ in range(4):
        compactor = Peer(db_path)
        peers.append(compactor)
        compactor.send("compact_loop")
        for _ in range(rng.randrange(1, 4)):
            assert compactor.read() == ["compacted"]
            for i, w in enumerate(writers):
                last[i] = _acked(w, f"w{i}", last[i] + 20)
        compactor.kill()  # wherever it is: copying, switching, or between compactions
        for i, w in enumerate(writers):
            last[i] = _acked(w, f"w{i}", last[i] + 20)
    for w in writers:
        w.kill()
    with ferrumdb.open(db_path) as db:
        for i in range(2):
            missing = [j for j in range(last[i] + 1) if f"w{i}:{j:07}" not in db]
            assert not missing, f"w{i}: acknowledged writes lost: {missing[:5]}"
        assert len(db) >= sum(n + 1 for n in last)
    assert ferrumdb.check(db_path)["ok"] is True
