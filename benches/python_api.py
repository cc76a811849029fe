"""FerrumDB's Python API against sqlite3, lmdb and diskcache, in one run on one machine.

Every store holds the same N documents (~200 bytes of JSON, 10 fields). Times
are medians of per-chunk timings (CHUNK ops each), and every chunk of every
store is interleaved with a chunk of the *floor*: a plain dict holding
``orjson.dumps(doc)`` bytes (get = dict lookup + ``orjson.loads``, set =
``orjson.dumps`` + dict store). Ratios to the floor are stable on noisy
machines; absolute times are not.

Usage:
    pip install -e . orjson lmdb diskcache psutil
    python benches/python_api.py            # N=100k, prints the README table
    python benches/python_api.py --n 20000  # quicker
    python benches/python_api.py --big      # also reopen/memory at 1M keys
    python benches/python_api.py --only jsonl   # just the export/import figures
    python benches/python_api.py --only reopen --big  # reopen with/without hint, compaction
    python benches/python_api.py --only queries # find/count/query against sqlite3 and the floor
    python benches/python_api.py --only aio --n 20000 # ferrumdb.aio against sync calls and aiosqlite
    python benches/python_api.py --only processes --n 20000 # writers in 1/2/4 processes, get beside a writer
    python benches/python_api.py --only postgres --pg-url postgresql://... # PostgreSQL handle vs plain psycopg

Peers: sqlite3 in WAL mode with one statement (one implicit transaction) per
operation and ``synchronous=OFF``; lmdb with one write transaction per set
(``sync=False``); diskcache ``Cache`` (its default SQLite settings). FerrumDB
runs with ``fsync="never"`` so that no store pays for fsync in the main table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

import ferrumdb

CHUNK = 1000


def make_doc(i: int) -> dict[str, Any]:
    """A ~200-byte document with 10 fields."""
    return {
        "id": i,
        "name": f"user number {i}",
        "email": f"user{i}@example.com",
        "active": i % 2 == 0,
        "score": i * 0.5,
        "age": 20 + i % 50,
        "city": "Paris",
        "tags": ["alpha", "beta"],
        "zip": f"{75000 + i % 100}",
        "bio": "likes embedded databases",
    }


# -- stores: each exposes set/get/delete/close and a reopen factory -------------


class Floor:
    name = "dict+orjson (floor)"

    def __init__(self, _dir: str) -> None:
        self.d: dict[str, bytes] = {}

    def set(self, k: str, v: Any) -> None:
        self.d[k] = orjson.dumps(v)

    def get(self, k: str) -> Any:
        b = self.d.get(k)
        return None if b is None else orjson.loads(b)

    def delete(self, k: str) -> None:
        del self.d[k]

    def close(self) -> None:
        pass


class Ferrum:
    name = "ferrumdb"

    def __init__(self, dir: str, fsync: str = "never") -> None:
        self.path = os.path.join(dir, "bench.db")
        self._bind(ferrumdb.open(self.path, fsync=fsync))

    def _bind(self, db: ferrumdb.FerrumDB) -> None:
        # Bound methods as the user would call them: db[k] = v, db.get(k), del db[k].
        self.db = db
        self.set = db.__setitem__
        self.get = db.get
        self.delete = db.__delitem__

    def close(self) -> None:
        self.db.close()

    def reopen(self) -> None:
        self._bind(ferrumdb.open(self.path, fsync="never"))
        self.db.get("user:0")

    def compact(self) -> None:
        self.db.compact()

    def file_bytes(self) -> int:
        return os.path.getsize(self.path)


class FerrumEncrypted(Ferrum):
    """FerrumDB encrypted at rest (AES-256-GCM, raw 32-byte key: no KDF cost)."""

    name = "ferrumdb encrypted"
    KEY = bytes(range(32))

    def __init__(self, dir: str, fsync: str = "never") -> None:
        self.path = os.path.join(dir, "bench.db")
        self._bind(ferrumdb.open(self.path, fsync=fsync, encryption_key=self.KEY))

    def reopen(self) -> None:
        self._bind(ferrumdb.open(self.path, fsync="never", encryption_key=self.KEY))
        self.db.get("user:0")


class Sqlite:
    name = "sqlite3 (WAL)"

    def __init__(self, dir: str) -> None:
        self.path = os.path.join(dir, "bench.sqlite")
        self._connect()
        self.c.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL)")

    def _connect(self) -> None:
        self.c = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.c.execute("PRAGMA journal_mode=WAL")
        self.c.execute("PRAGMA synchronous=OFF")

    def set(self, k: str, v: Any) -> None:
        self.c.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, orjson.dumps(v)))

    def get(self, k: str) -> Any:
        row = self.c.execute("SELECT v FROM kv WHERE k = ?", (k,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def delete(self, k: str) -> None:
        self.c.execute("DELETE FROM kv WHERE k = ?", (k,))

    def close(self) -> None:
        self.c.close()

    def reopen(self) -> None:
        self._connect()
        self.get("user:0")

    def file_bytes(self) -> int:
        return sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))


class Lmdb:
    name = "lmdb"

    def __init__(self, dir: str) -> None:
        import lmdb

        self.dir = os.path.join(dir, "bench.lmdb")
        self._lmdb = lmdb
        self._open()

    def _open(self) -> None:
        self.env = self._lmdb.open(self.dir, map_size=8 << 30, sync=False, metasync=False)

    def set(self, k: str, v: Any) -> None:
        with self.env.begin(write=True) as t:
            t.put(k.encode(), orjson.dumps(v))

    def get(self, k: str) -> Any:
        with self.env.begin() as t:
            b = t.get(k.encode())
        return None if b is None else orjson.loads(b)

    def delete(self, k: str) -> None:
        with self.env.begin(write=True) as t:
            t.delete(k.encode())

    def close(self) -> None:
        self.env.close()

    def reopen(self) -> None:
        self._open()
        self.get("user:0")

    def file_bytes(self) -> int:
        return os.path.getsize(os.path.join(self.dir, "data.mdb"))


class Diskcache:
    name = "diskcache"

    def __init__(self, dir: str) -> None:
        import diskcache

        self.dir = os.path.join(dir, "bench.diskcache")
        self._dc = diskcache
        self.c = diskcache.Cache(self.dir)

    def set(self, k: str, v: Any) -> None:
        self.c[k] = v

    def get(self, k: str) -> Any:
        return self.c.get(k)

    def delete(self, k: str) -> None:
        del self.c[k]

    def close(self) -> None:
        self.c.close()

    def reopen(self) -> None:
        self.c = self._dc.Cache(self.dir)
        self.get("user:0")

    def file_bytes(self) -> int:
        return sum(os.path.getsize(os.path.join(self.dir, f)) for f in os.listdir(self.dir))


PEERS: list[type] = [Ferrum, FerrumEncrypted, Sqlite, Lmdb, Diskcache]


# -- timing ---------------------------------------------------------------------


def chunks(seq: list[str], n: int = CHUNK) -> Iterable[list[str]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def time_chunk(op: Callable[[str], Any], keys: list[str]) -> float:
    """Nanoseconds per op over one chunk."""
    t0 = time.perf_counter_ns()
    for k in keys:
        op(k)
    return (time.perf_counter_ns() - t0) / len(keys)


def interleaved(stores: list[Any], floor: Any, make_op: Callable[[Any], Callable[[str], Any]], keys: list[str]) -> dict[str, float]:
    """Median ns/op for each store and the floor, chunk by chunk in turn."""
    samples: dict[str, list[float]] = {s.name: [] for s in [floor, *stores]}
    for chunk in chunks(keys):
        for s in [floor, *stores]:
            samples[s.name].append(time_chunk(make_op(s), chunk))
    return {name: statistics.median(v) for name, v in samples.items()}


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


# -- the runs -------------------------------------------------------------------


def run_main_table(n: int, base: str) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, Any]]]:
    keys = [f"user:{i}" for i in range(n)]
    docs = {k: make_doc(i) for i, k in enumerate(keys)}
    missing = [f"nobody:{i}" for i in range(n)]
    floor = Floor(base)
    stores = []
    for cls in PEERS:
        d = os.path.join(base, cls.__name__)
        os.makedirs(d)
        stores.append(cls(d))
    results: dict[str, dict[str, float]] = {}
    results["set"] = interleaved(stores, floor, lambda s: (lambda k: s.set(k, docs[k])), keys)
    results["get"] = interleaved(stores, floor, lambda s: s.get, keys)
    results["get missing"] = interleaved(stores, floor, lambda s: s.get, missing)
    extra: dict[str, dict[str, Any]] = {s.name: {} for s in stores}
    for s in stores:
        s.close()
        gc.collect()
        t0 = time.perf_counter()
        s.reopen()
        extra[s.name]["reopen ms"] = (time.perf_counter() - t0) * 1e3
    results["delete"] = interleaved(stores, floor, lambda s: s.delete, keys[: n // 2])
    for s in stores:
        s.close()
        extra[s.name]["file MB"] = s.file_bytes() / 2**20
    return results, extra


def run_threads(n: int, base: str) -> dict[str, float]:
    """Gets per second from 1 and from 2 threads on one shared handle."""
    path = os.path.join(base, "threads.db")
    with ferrumdb.open(path, fsync="never") as db:
        keys = [f"user:{i}" for i in range(n)]
        for i, k in enumerate(keys):
            db[k] = make_doc(i)

        def worker(ks: list[str], barrier: threading.Barrier) -> None:
            barrier.wait()
            get = db.get
            for k in ks:
                get(k)

        out = {}
        for threads in (1, 2):
            barrier = threading.Barrier(threads + 1)
            ts = [threading.Thread(target=worker, args=(keys, barrier)) for _ in range(threads)]
            for t in ts:
                t.start()
            t0 = time.perf_counter()
            barrier.wait()
            for t in ts:
                t.join()
            out[f"{threads} thread(s)"] = threads * n / (time.perf_counter() - t0)
    return out


def run_fsync_always(base: str, n: int = 2000) -> dict[str, float]:
    """A set under fsync="always" against a bare 256-byte append + fdatasync."""
    raw = os.path.join(base, "raw.log")
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    rec = b"x" * 256
    sync = getattr(os, "fdatasync", os.fsync)
    samples = []
    t0 = time.perf_counter_ns()
    for _ in range(n):
        os.write(fd, rec)
        sync(fd)
    samples.append((time.perf_counter_ns() - t0) / n)
    os.close(fd)
    with ferrumdb.open(os.path.join(base, "always.db"), fsync="always") as db:
        doc = make_doc(1)
        t0 = time.perf_counter_ns()
        for i in range(n):
            db[f"k{i}"] = doc
        ferrum = (time.perf_counter_ns() - t0) / n
    return {"append+fdatasync us": samples[0] / 1e3, "ferrumdb set us": ferrum / 1e3, "ratio": ferrum / samples[0]}


# -- several processes on one database (issue 12) -------------------------------


def _proc_writer(kind: str, path: str, name: str, n: int, fsync: str, ready: Any, go: Any, done: Any) -> None:
    """Spawned worker: open the store, wait for "go", do ``n`` sets, report the seconds taken;
    then, once told every writer is done, time one get (a process that only wrote meets
    everyone's records there) and report that too."""
    docs = [make_doc(i) for i in range(n)]
    if kind == "ferrumdb":
        db = ferrumdb.open(path, fsync=fsync)

        def put(k: str, v: Any) -> None:
            db[k] = v

        def get(k: str) -> Any:
            return db[k]

    elif kind == "sqlite3":
        c = sqlite3.connect(path, isolation_level=None, timeout=60)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=" + ("FULL" if fsync == "always" else "OFF"))
        c.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB)")

        def put(k: str, v: Any) -> None:
            c.execute("BEGIN IMMEDIATE")
            c.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, orjson.dumps(v)))
            c.execute("COMMIT")

        def get(k: str) -> Any:
            return orjson.loads(c.execute("SELECT v FROM kv WHERE k = ?", (k,)).fetchone()[0])

    else:
        import lmdb

        env = lmdb.open(path, map_size=1 << 32, sync=fsync == "always", max_spare_txns=4)

        def put(k: str, v: Any) -> None:
            with env.begin(write=True) as txn:
                txn.put(k.encode(), orjson.dumps(v))

        def get(k: str) -> Any:
            with env.begin() as txn:
                return orjson.loads(txn.get(k.encode()))

    ready.send("ready")
    go.recv()
    t0 = time.perf_counter()
    for i in range(n):
        put(f"{name}:{i}", docs[i])
    done.send(time.perf_counter() - t0)
    go.recv()
    t0 = time.perf_counter()
    get(f"{name}:0")
    done.send(time.perf_counter() - t0)


def _aggregate_sets(kind: str, path: str, procs: int, n: int, fsync: str) -> tuple[float, float]:
    """Total sets/s of ``procs`` processes writing ``n`` documents each at once, and the
    slowest first get of a writer afterwards (ms)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    pipes = [(ctx.Pipe(), ctx.Pipe(), ctx.Pipe()) for _ in range(procs)]
    workers = [
        ctx.Process(target=_proc_writer, args=(kind, path, f"p{i}", n, fsync, r[1], g[0], d[1]))
        for i, (r, g, d) in enumerate(pipes)
    ]
    for w in workers:
        w.start()
    for r, _, _ in pipes:
        assert r[0].recv() == "ready"
    t0 = time.perf_counter()
    for _, g, _ in pipes:
        g[1].send("go")
    for _, _, d in pipes:
        d[0].recv()
    elapsed = time.perf_counter() - t0
    for _, g, _ in pipes:
        g[1].send("read")
    first_get = max(d[0].recv() for _, _, d in pipes)
    for w in workers:
        w.join()
    return procs * n / elapsed, first_get * 1e3


def _flood(path: str, ready: Any, stop: Any) -> None:
    """Spawned worker: overwrite keys as fast as it can until told to stop."""
    db = ferrumdb.open(path, fsync="never")
    doc = make_doc(7)
    ready.send("ready")
    i = 0
    while not stop.poll():
        db[f"user:{i % 1000}"] = doc
        i += 1
    db.close()


def run_processes(n: int, base: str) -> dict[str, dict[str, float]]:
    """Writers in 1, 2 and 4 processes against sqlite3 and lmdb; a get beside a writing process."""
    import multiprocessing

    out: dict[str, dict[str, float]] = {}
    for kind in ("ferrumdb", "sqlite3", "lmdb"):
        row = {}
        for procs in (1, 2, 4):
            d = tempfile.mkdtemp(dir=base)
            path = os.path.join(d, "db") if kind != "lmdb" else d
            row[f"{procs} proc sets/s"], row[f"{procs} proc first get ms"] = _aggregate_sets(
                kind, path, procs, n // procs, "never"
            )
        out[f"{kind} (fsync off)"] = row
    row = {}
    for procs in (1, 4):
        d = tempfile.mkdtemp(dir=base)
        row[f"{procs} proc sets/s"] = _aggregate_sets("ferrumdb", os.path.join(d, "db"), procs, 400, "always")[0]
    out['ferrumdb fsync="always"'] = row
    # A get with nothing changing, and while another process writes.
    path = os.path.join(tempfile.mkdtemp(dir=base), "db")
    keys = [f"user:{i}" for i in range(1000)]
    floor = Floor(base)
    with ferrumdb.open(path, fsync="never") as db:
        for k in keys:
            db[k] = make_doc(1)
            floor.set(k, make_doc(1))
        reads = keys * 20
        quiet = statistics.median(time_chunk(db.get, c) for c in chunks(reads))
        ctx = multiprocessing.get_context("spawn")
        ready, ready_child = ctx.Pipe()
        stop_child, stop = ctx.Pipe()
        writer = ctx.Process(target=_flood, args=(path, ready_child, stop_child))
        writer.start()
        assert ready.recv() == "ready"
        busy = statistics.median(time_chunk(db.get, c) for c in chunks(reads))
        stop.send("stop")
        writer.join()
    floor_ns = statistics.median(time_chunk(floor.get, c) for c in chunks(reads))
    out["get ns/op"] = {"floor": floor_ns, "nothing changed": quiet, "beside a writing process": busy}
    # One process alone: the default (sharing) against exclusive=True.
    docs = {k: make_doc(i) for i, k in enumerate(keys)}
    alone: dict[str, float] = {}
    for label, exclusive in (("default", False), ("exclusive", True)):
        path = os.path.join(tempfile.mkdtemp(dir=base), "db")
        with ferrumdb.open(path, fsync="never", exclusive=exclusive) as db:
            sets = [time_chunk(lambda k: db.__setitem__(k, docs[k]), keys) for _ in range(20)]
            gets = [time_chunk(db.get, keys) for _ in range(20)]
        alone[f"{label} set ns"] = statistics.median(sets)
        alone[f"{label} get ns"] = statistics.median(gets)
    out["one process alone"] = alone
    return out


def run_transactions(base: str, n: int = 3000, size: int = 10) -> dict[str, dict[str, float]]:
    """Microseconds per transaction: `size` sets committed together, and a
    read-modify-write increment, against sqlite3 (WAL, synchronous=OFF, one
    BEGIN..COMMIT) and lmdb (one write transaction). fsync never everywhere."""
    doc = make_doc(7)
    out: dict[str, dict[str, float]] = {}

    def per_tx_us(fn: Callable[[int], Any]) -> float:
        t0 = time.perf_counter_ns()
        for i in range(n):
            fn(i)
        return (time.perf_counter_ns() - t0) / n / 1e3

    with ferrumdb.open(os.path.join(base, "tx.db"), fsync="never") as db:
        db["counter"] = 0

        def f_batch(i: int) -> None:
            with db.transaction() as tx:
                for j in range(size):
                    tx[f"t{i}:{j}"] = doc

        def f_incr(_: int) -> None:
            with db.transaction() as tx:
                tx["counter"] = tx["counter"] + 1

        out["ferrumdb"] = {f"{size} sets": per_tx_us(f_batch), "increment": per_tx_us(f_incr)}

    con = sqlite3.connect(os.path.join(base, "tx.sqlite"), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
    con.execute("INSERT INTO kv VALUES ('counter', '0')")

    def s_batch(i: int) -> None:
        con.execute("BEGIN")
        con.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", [(f"t{i}:{j}", orjson.dumps(doc)) for j in range(size)])
        con.execute("COMMIT")

    def s_incr(_: int) -> None:
        con.execute("BEGIN IMMEDIATE")
        (v,) = con.execute("SELECT v FROM kv WHERE k = 'counter'").fetchone()
        con.execute("UPDATE kv SET v = ? WHERE k = 'counter'", (orjson.dumps(orjson.loads(v) + 1),))
        con.execute("COMMIT")

    out["sqlite3"] = {f"{size} sets": per_tx_us(s_batch), "increment": per_tx_us(s_incr)}
    con.close()

    import lmdb

    env = lmdb.open(os.path.join(base, "tx.lmdb"), map_size=1 << 30, sync=False, metasync=False)
    with env.begin(write=True) as t:
        t.put(b"counter", b"0")

    def l_batch(i: int) -> None:
        with env.begin(write=True) as t:
            for j in range(size):
                t.put(f"t{i}:{j}".encode(), orjson.dumps(doc))

    def l_incr(_: int) -> None:
        with env.begin(write=True) as t:
            t.put(b"counter", orjson.dumps(orjson.loads(t.get(b"counter")) + 1))

    out["lmdb"] = {f"{size} sets": per_tx_us(l_batch), "increment": per_tx_us(l_incr)}
    env.close()
    return out


def run_queries(n: int, base: str, rounds: int = 20) -> dict[str, dict[str, float]]:
    """Find by an indexed field (10% selectivity), count, documents by an
    indexed equality, a range, a range with sort and limit, against sqlite3
    with JSON expression indexes on the same data and the floor. Milliseconds
    per query (median of ``rounds``, the stores taking turns round by round so
    they see the same machine load), results materialised as Python objects.
    Then update_one against get+set (us), and reopen with one index (ms)."""
    docs = [make_doc(i) for i in range(n)]
    for i, d in enumerate(docs):
        d["group"] = f"g{i % 10}"  # 10% of documents per group
    path = os.path.join(base, "query.db")
    c = sqlite3.connect(os.path.join(base, "query.sqlite"))
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    c.executemany("INSERT INTO kv VALUES (?, ?)", ((f"user:{i}", json.dumps(d)) for i, d in enumerate(docs)))
    c.execute("CREATE INDEX kv_group ON kv (json_extract(v, '$.group'))")
    c.execute("CREATE INDEX kv_age ON kv (json_extract(v, '$.age'))")
    c.commit()
    # The floor for find: an in-memory {value: keys} dict returning the same keys.
    by_group: dict[str, list[str]] = {}
    for i, d in enumerate(docs):
        by_group.setdefault(d["group"], []).append(f"user:{i}")
    floor, ferrum, sq = "floor (dict of key lists)", "ferrumdb", "sqlite3 (JSON expression index)"
    out: dict[str, dict[str, float]] = {floor: {}, ferrum: {}, sq: {}}
    rng = "SELECT k, v FROM kv WHERE json_extract(v, '$.age') >= ? AND json_extract(v, '$.age') < ?"

    def sq_rows(q: str, args: tuple[Any, ...]) -> list[tuple[str, Any]]:
        return [(k, orjson.loads(v)) for k, v in c.execute(q, args)]

    with ferrumdb.open(path, fsync="never") as db:
        for i, d in enumerate(docs):
            db[f"user:{i}"] = d
        db.create_index("group")
        db.create_index("age")
        assert len(db.find("group", "g3")) == n // 10
        measures: dict[str, dict[str, Callable[[], Any]]] = {
            "find (10%) ms": {
                floor: lambda: list(by_group["g3"]),
                ferrum: lambda: db.find("group", "g3"),
                sq: lambda: [r[0] for r in c.execute("SELECT k FROM kv WHERE json_extract(v, '$.group') = ?", ("g3",))],
            },
            "count (10%) ms": {
                floor: lambda: len(by_group["g3"]),
                ferrum: lambda: db.count({"group": "g3"}),
                sq: lambda: c.execute("SELECT count(*) FROM kv WHERE json_extract(v, '$.group') = ?", ("g3",)).fetchone(),
            },
            "find+docs (10%) ms": {
                ferrum: lambda: db.query({"group": "g3"}),
                sq: lambda: sq_rows("SELECT k, v FROM kv WHERE json_extract(v, '$.group') = ?", ("g3",)),
            },
            "range (age 30..39) ms": {
                ferrum: lambda: db.query({"age": {"$gte": 30, "$lt": 40}}),
                sq: lambda: sq_rows(rng, (30, 40)),
            },
            "range+sort+limit 100 ms": {
                ferrum: lambda: db.query({"age": {"$gte": 30, "$lt": 40}}, sort="-score", limit=100),
                sq: lambda: sq_rows(rng + " ORDER BY json_extract(v, '$.score') DESC LIMIT 100", (30, 40)),
            },
        }
        for metric, fns in measures.items():
            samples: dict[str, list[float]] = {name: [] for name in fns}
            for _ in range(rounds):
                for name, fn in fns.items():
                    t0 = time.perf_counter()
                    fn()
                    samples[name].append((time.perf_counter() - t0) * 1e3)
            for name, times in samples.items():
                out[name][metric] = statistics.median(times)
        # A first find of each value: no result of an earlier call to reuse.
        firsts = [_median_ms(lambda v=v: db.find("age", v), 1) for v in range(20, 70)]
        out[ferrum]["find, first call (2%) ms"] = statistics.median(firsts)
        out[floor]["find, first call (2%) ms"] = _median_ms(lambda: list(by_group["g4"][: n // 50]), rounds)
        # update_one with $inc against the get + set a user would write.
        ukeys = [f"user:{(i * 7919) % n}" for i in range(2000)]

        def get_set(k: str) -> None:
            d = db[k]
            d["age"] = d["age"] + 1
            db[k] = d

        for k in ukeys:  # warm both paths on the same keys
            db.update_one(k, {"$inc": {"age": 1}})
        # Chunk by chunk in turn, so both see the same machine load.
        upd: list[float] = []
        gs: list[float] = []
        for _ in range(5):
            for i in range(0, 2000, 200):
                upd.append(time_chunk(lambda k: db.update_one(k, {"$inc": {"age": 1}}), ukeys[i : i + 200]))
                gs.append(time_chunk(get_set, ukeys[i : i + 200]))
        out[ferrum]["update_one $inc us"] = statistics.median(upd) / 1e3
        out[ferrum]["get+set us"] = statistics.median(gs) / 1e3
    c.close()
    # Reopen with one index: from the index file the close left, and rebuilt
    # from the documents (index file removed), against the same data with no
    # index (a copy whose index was dropped), in turn.
    with ferrumdb.open(path, fsync="never") as db:
        db.drop_index("age")
    plain = os.path.join(base, "query-plain.db")
    for suffix in ("", ".hint"):
        shutil.copy(path + suffix, plain + suffix)
    with ferrumdb.open(plain, fsync="never") as db:
        db.drop_index("group")
    reopen: dict[str, list[float]] = {"file": [], "rebuilt": [], "none": []}
    for _ in range(15):
        reopen["file"].append(_reopen_child(path, n)[0])
        reopen["none"].append(_reopen_child(plain, n)[0])
    for _ in range(3):
        os.remove(path + ".index")
        reopen["rebuilt"].append(_reopen_child(path, n)[0])
    out[ferrum]["reopen, 1 index (index file) ms"] = statistics.median(reopen["file"])
    out[ferrum]["reopen, 1 index (rebuilt) ms"] = statistics.median(reopen["rebuilt"])
    out[ferrum]["reopen, no index ms"] = statistics.median(reopen["none"])
    return out


def run_jsonl(n: int, base: str, rounds: int = 3) -> dict[str, dict[str, float]]:
    """``export_jsonl`` / ``import_jsonl`` of n documents against the loop a user
    would write without them (``db.items()`` + ``orjson.dumps`` per line; read
    lines + ``orjson.loads`` + ``db[k] = v``). Milliseconds, median of ``rounds``."""
    src_path = os.path.join(base, "jsonl-src.db")
    out = os.path.join(base, "out.jsonl")
    hand = os.path.join(base, "hand.jsonl")
    results: dict[str, dict[str, float]] = {"ferrumdb": {}, "python loop (orjson)": {}}
    with ferrumdb.open(src_path, fsync="never") as src:
        for i in range(n):
            src[f"user:{i:08}"] = make_doc(i)

        def by_hand_export() -> None:
            with open(hand, "wb") as f:
                for k, v in src.items():
                    f.write(orjson.dumps({"key": k, "value": v}) + b"\n")

        results["ferrumdb"]["export ms"] = _median_ms(lambda: src.export_jsonl(out), rounds)
        results["python loop (orjson)"]["export ms"] = _median_ms(by_hand_export, rounds)

    def fresh() -> ferrumdb.FerrumDB:
        path = os.path.join(base, "jsonl-dst.db")
        for suffix in ("", ".lock"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        return ferrumdb.open(path, fsync="never")

    def native_import() -> None:
        with fresh() as dst:
            assert dst.import_jsonl(out) == n

    def by_hand_import() -> None:
        with fresh() as dst, open(hand, "rb") as f:
            for line in f:
                o = orjson.loads(line)
                dst[o["key"]] = o["value"]

    results["ferrumdb"]["import ms"] = _median_ms(native_import, rounds)
    results["python loop (orjson)"]["import ms"] = _median_ms(by_hand_import, rounds)
    for row in results.values():
        row["export records/s"] = n / row["export ms"] * 1e3
        row["import records/s"] = n / row["import ms"] * 1e3
    return results


def _median_ms(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


_CHILD = """
import os, sys, time, psutil, ferrumdb
p = psutil.Process()
base = p.memory_info().rss
t0 = time.perf_counter()
db = ferrumdb.open(sys.argv[1], fsync="never")
db.get("user:0")
dt = time.perf_counter() - t0
print(dt * 1e3, (p.memory_info().rss - base) / 2**20, len(db))
db.close()
"""


def _reopen_child(path: str, n: int) -> tuple[float, float]:
    """(open + first get ms, RSS delta MB) of opening `path` in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _CHILD, path], capture_output=True, text=True, check=True)
    ms, mb, count = out.stdout.split()
    assert int(count) == n
    return float(ms), float(mb)


def run_reopen(n: int, base: str) -> dict[str, float]:
    """Reopen time and memory held by an open database of n keys, in a fresh
    process, with the hint file the close left and without it (deleted, so the
    whole log is replayed); then compaction throughput after overwriting every key."""
    path = os.path.join(base, f"reopen-{n}.db")
    hint = path + ".hint"
    with ferrumdb.open(path, fsync="never") as db:
        for i in range(n):
            db[f"user:{i}"] = make_doc(i)
    size_before = os.path.getsize(path)
    had_hint = os.path.exists(hint)  # a close leaves one past 8 MiB of unhinted log
    ms, mb = _reopen_child(path, n)
    if os.path.exists(hint):
        os.remove(hint)
    ms_nohint, mb_nohint = _reopen_child(path, n)  # its close writes the hint again
    # Overwrite every key once, compact, and compare the file with the live data.
    with ferrumdb.open(path, fsync="never", auto_compact=None) as db:
        for i in range(n):
            db[f"user:{i}"] = make_doc(i + 1)
        live = db.stats()["live_bytes"]
        log = db.stats()["file_bytes"]
        t0 = time.perf_counter()
        db.compact()
        compact_s = time.perf_counter() - t0
    size_after = os.path.getsize(path)
    return {
        "keys": n,
        "reopen ms": ms if had_hint else ms_nohint,
        "memory MB": mb if had_hint else mb_nohint,
        "reopen with hint ms": ms if had_hint else float("nan"),
        "reopen without hint ms": ms_nohint,
        "memory with hint MB": mb if had_hint else float("nan"),
        "memory without hint MB": mb_nohint,
        "file MB": size_before / 2**20,
        "after-compact / live": size_after / live,
        "compact s": compact_s,
        "compact MB/s (log read)": log / 2**20 / compact_s,
        "compact records/s": n / compact_s,
    }


# -- asyncio: ferrumdb.aio against the sync calls and aiosqlite --------------------


def run_aio(n: int, base: str) -> dict[str, dict[str, float]]:
    """Awaited ``get``/``set`` (``fsync="never"``) against the sync calls in this
    process and against aiosqlite (WAL, ``synchronous=OFF``, one statement per
    call) on the same documents: median ns/op, chunk by chunk in turn. Then
    durable sets per second (``fsync="always"``) from 100 concurrent coroutines
    against one coroutine alone (the engine's group commit at work)."""
    import asyncio

    import aiosqlite

    import ferrumdb.aio

    keys = [f"user:{i}" for i in range(n)]
    docs = {k: make_doc(i) for i, k in enumerate(keys)}

    async def main() -> dict[str, dict[str, float]]:
        db = await ferrumdb.aio.open(os.path.join(base, "aio.db"), fsync="never")
        sync = db.sync
        conn = await aiosqlite.connect(os.path.join(base, "aio.sqlite"), isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=OFF")
        await conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB NOT NULL)")

        async def timed(op: Callable[[str], Any], chunk: list[str]) -> float:
            t0 = time.perf_counter_ns()
            for k in chunk:
                await op(k)
            return (time.perf_counter_ns() - t0) / len(chunk)

        async def sq_set(k: str) -> None:
            await conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, orjson.dumps(docs[k])))

        async def sq_get(k: str) -> Any:
            rows = await conn.execute_fetchall("SELECT v FROM kv WHERE k = ?", (k,))
            return orjson.loads(rows[0][0]) if rows else None

        async def aio_set(k: str) -> None:
            await db.set(k, docs[k])

        out: dict[str, dict[str, float]] = {}
        for op, sync_op, aio_op, sq_op in (
            ("set", lambda k: sync.set(k, docs[k]), aio_set, sq_set),
            ("get", sync.get, db.get, sq_get),
        ):
            samples: dict[str, list[float]] = {"sync": [], "aio": [], "aiosqlite": []}
            # aiosqlite is some 50x slower: it runs on a tenth of the keys.
            for i, chunk in enumerate(chunks(keys)):
                samples["sync"].append(time_chunk(sync_op, chunk))
                samples["aio"].append(await timed(aio_op, chunk))
                if i % 10 == 0:
                    samples["aiosqlite"].append(await timed(sq_op, chunk))
            out[op] = {name: statistics.median(v) for name, v in samples.items()}
        await conn.close()
        await db.close()

        durable = await ferrumdb.aio.open(os.path.join(base, "aio-always.db"), fsync="always")
        doc = make_doc(1)
        alone = 300
        t0 = time.perf_counter()
        for i in range(alone):
            await durable.set(f"alone:{i}", doc)
        one_rate = alone / (time.perf_counter() - t0)

        async def writer(w: int, count: int) -> None:
            for i in range(count):
                await durable.set(f"w{w}:{i}", doc)

        per_writer = 30
        t0 = time.perf_counter()
        await asyncio.gather(*(writer(w, per_writer) for w in range(100)))
        many_rate = 100 * per_writer / (time.perf_counter() - t0)
        await durable.close()
        out["fsync=always sets/s"] = {"1 coroutine": one_rate, "100 coroutines": many_rate, "ratio": many_rate / one_rate}
        return out

    return asyncio.run(main())


def run_postgres(n: int, base: str, url: str, rounds: int = 200) -> dict[str, dict[str, float]]:
    """The PostgreSQL handle against hand-written psycopg statements doing the same work, same server.

    get/set: one document by key (us/op, medians of 100-op chunks, the two
    sides alternating chunk by chunk); set with a unique index on "email";
    an awaited get (ferrumdb.aio against psycopg's AsyncConnection); an indexed
    equality query returning 1% of the documents (ms/query); push: a file
    database of N documents copied in (docs/s) against executemany of the
    same rows. Both tables hold the same N documents.
    """
    import asyncio

    import psycopg

    from ferrumdb import postgres_sync

    sep = "&" if "?" in url else "?"
    handle_table, plain_table, push_table = "bench_ferrum", "bench_plain", "bench_push"
    with psycopg.connect(url, autocommit=True) as conn:
        for t in (handle_table, plain_table, push_table):
            conn.execute(f"DROP TABLE IF EXISTS {t}")
        conn.execute(f'CREATE TABLE {plain_table} (key text COLLATE "C" PRIMARY KEY, doc jsonb NOT NULL)')
    docs = {f"user:{i:07}": dict(make_doc(i), city=f"city{i % 100}") for i in range(n)}
    rows = [(k, json.dumps(v)) for k, v in docs.items()]
    db = ferrumdb.open(f"{url}{sep}table={handle_table}")
    db.write_many([(k, text, None) for k, text in rows])
    db.create_index("city")
    plain = psycopg.connect(url, autocommit=True)
    with plain.cursor() as cur:
        cur.executemany(f"INSERT INTO {plain_table} (key, doc) VALUES (%s, %s::jsonb)", rows)
    plain.execute(f"CREATE INDEX ON {plain_table} USING gin (doc jsonb_path_ops)")
    plain.execute(f"ANALYZE {plain_table}")
    db._run(lambda c: c.execute(f"ANALYZE {handle_table}"))
    keys = list(docs)
    sample = [keys[(i * 7919) % n] for i in range(min(n, 2000))]
    doc = make_doc(1)

    def us_per_op_ab(plain_op: Callable[[str], Any], ferrum_op: Callable[[str], Any]) -> dict[str, float]:
        """Medians of chunks, the two sides alternating chunk by chunk, so load swings hit both alike."""
        times: dict[str, list[float]] = {"psycopg": [], "ferrumdb": []}
        for chunk in chunks(sample, 100):
            for side, op in (("psycopg", plain_op), ("ferrumdb", ferrum_op)):
                t0 = time.perf_counter_ns()
                for k in chunk:
                    op(k)
                times[side].append((time.perf_counter_ns() - t0) / len(chunk) / 1000)
        return {side: statistics.median(ts) for side, ts in times.items()}

    get_sql = f"SELECT doc::text FROM {plain_table} WHERE key = %s"
    set_sql = (
        f"INSERT INTO {plain_table} (key, doc) VALUES (%s, %s::jsonb) "
        "ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc"
    )
    query_sql = f"SELECT key, doc::text FROM {plain_table} WHERE doc @> %s::jsonb ORDER BY key"
    out: dict[str, dict[str, float]] = {}
    out["get (us/op)"] = us_per_op_ab(lambda k: json.loads(plain.execute(get_sql, (k,)).fetchone()[0]), lambda k: db[k])
    out["set (us/op)"] = us_per_op_ab(
        lambda k: plain.execute(set_sql, (k, json.dumps(doc))), lambda k: db.__setitem__(k, doc)
    )
    # A unique index on "email": FerrumDB's claims table and trigger (array elements count, as on a
    # file) against PostgreSQL's unique expression index on the whole value (what plain SQL would do).

    def own_doc(k: str) -> dict[str, Any]:
        return dict(make_doc(int(k[5:])), city="x")

    restored = [(k, json.dumps(own_doc(k))) for k in sample]  # the set above gave them one email
    db.write_many([(k, text, None) for k, text in restored])
    with plain.cursor() as cur:
        cur.executemany(set_sql, restored)
    db.create_index("email", unique=True)
    plain.execute(f"CREATE UNIQUE INDEX {plain_table}_email ON {plain_table} ((doc -> 'email'))")

    # A new value each time (rev), its own email kept: an update the unique index has to check.
    out["set, unique index (us/op)"] = us_per_op_ab(
        lambda k: plain.execute(set_sql, (k, json.dumps(dict(own_doc(k), rev=1)))),
        lambda k: db.__setitem__(k, dict(own_doc(k), rev=1)),
    )
    db.drop_index("email")
    plain.execute(f"DROP INDEX {plain_table}_email")

    async def awaited_gets() -> dict[str, float]:
        """An awaited get against psycopg's own AsyncConnection doing the same SELECT, alternating chunks."""
        from ferrumdb.aio_postgres import AsyncPostgresDB

        adb = AsyncPostgresDB(ferrumdb.open(f"{url}{sep}table={handle_table}"))
        aplain = await psycopg.AsyncConnection.connect(url, autocommit=True)
        times: dict[str, list[float]] = {"psycopg": [], "ferrumdb": []}
        for chunk in chunks(sample, 100):
            t0 = time.perf_counter_ns()
            for k in chunk:
                row = await (await aplain.execute(get_sql, (k,))).fetchone()
                json.loads(row[0])  # type: ignore[index]
            times["psycopg"].append((time.perf_counter_ns() - t0) / len(chunk) / 1000)
            t0 = time.perf_counter_ns()
            for k in chunk:
                await adb.get(k)
            times["ferrumdb"].append((time.perf_counter_ns() - t0) / len(chunk) / 1000)
        await aplain.close()
        await adb.close()
        return {side: statistics.median(ts) for side, ts in times.items()}

    out["aio get, awaited (us/op)"] = asyncio.run(awaited_gets())

    def concurrent_sets(make_set: Callable[[], tuple[Callable[[str], Any], Callable[[], None]]], writers: int = 16) -> float:
        """Aggregate sets/s of ``writers`` threads, each with its own connection and keys, for 2 s."""
        stop = threading.Event()
        done = [0] * writers
        ready = threading.Barrier(writers + 1)

        def writer(w: int) -> None:
            put, close = make_set()
            own = [f"user:{(w * 997 + i) % n:07}" for i in range(500)]
            ready.wait()
            count = 0
            while not stop.is_set():
                put(own[count % len(own)])
                count += 1
            done[w] = count
            close()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        ready.wait()
        t0 = time.perf_counter()
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join()
        return sum(done) / (time.perf_counter() - t0)

    def plain_writer() -> tuple[Callable[[str], Any], Callable[[], None]]:
        conn = psycopg.connect(url, autocommit=True)
        return (lambda k: conn.execute(set_sql, (k, json.dumps(doc)))), conn.close

    def ferrum_writer() -> tuple[Callable[[str], Any], Callable[[], None]]:
        handle = ferrumdb.open(f"{url}{sep}table={handle_table}&purge_interval=0")
        return (lambda k: handle.__setitem__(k, doc)), handle.close

    # Nobody watches: a NOTIFY per write would serialize every commit on PostgreSQL's notify lock.
    rates: dict[str, list[float]] = {"psycopg": [], "ferrumdb": []}
    for _ in range(2):
        rates["psycopg"].append(concurrent_sets(plain_writer))
        rates["ferrumdb"].append(concurrent_sets(ferrum_writer))
    out["set, 16 writers at once (sets/s)"] = {side: statistics.median(r) for side, r in rates.items()}
    # Both tables took tens of thousands of updates (not as many on each side): vacuum them, so
    # the dead rows and GIN pending lists left behind do not weigh on the query below.
    plain.execute(f"VACUUM ANALYZE {plain_table}")
    db._run(lambda c: c.execute(f"VACUUM ANALYZE {handle_table}"))

    def ms_per_query(fn: Callable[[int], Any]) -> float:
        times = []
        for i in range(rounds // 10):
            t0 = time.perf_counter_ns()
            fn(i)
            times.append((time.perf_counter_ns() - t0) / 1e6)
        return statistics.median(times)

    out["indexed query, 1% of docs (ms)"] = {
        "psycopg": ms_per_query(
            lambda i: [(k, json.loads(t)) for k, t in plain.execute(query_sql, (json.dumps({"city": f"city{i}"}),))]
        ),
        "ferrumdb": ms_per_query(lambda i: db.query({"city": f"city{i}"})),
    }
    file_path = os.path.join(base, "push-source.db")
    with ferrumdb.open(file_path, fsync="never") as src:
        for k, v in docs.items():
            src[k] = v
    t0 = time.perf_counter()
    postgres_sync.push(file_path, f"{url}{sep}table={push_table}", out=open(os.devnull, "w"))
    push_rate = n / (time.perf_counter() - t0)
    plain.execute(f"TRUNCATE {plain_table}")
    t0 = time.perf_counter()
    with plain.transaction(), plain.cursor() as cur:
        cur.executemany(f"INSERT INTO {plain_table} (key, doc) VALUES (%s, %s::jsonb)", rows)
    out["push (docs/s)"] = {"psycopg": n / (time.perf_counter() - t0), "ferrumdb": push_rate}
    db.close()
    with plain:
        for t in (handle_table, plain_table, push_table):
            plain.execute(f"DROP TABLE IF EXISTS {t}, {t}_claims")
    return out


def table(results: dict[str, dict[str, float]], extra: dict[str, dict[str, Any]]) -> str:
    names = [n for n in next(iter(results.values())) if n != Floor.name]
    lines = ["| operation (median ns/op, × floor) | floor | " + " | ".join(names) + " |"]
    lines.append("|---|---:|" + "---:|" * len(names))
    for op, row in results.items():
        f = row[Floor.name]
        cells = [f"{row[n]:,.0f} ({row[n] / f:.2f}×)" for n in names]
        lines.append(f"| {op} | {f:,.0f} | " + " | ".join(cells) + " |")
    for metric in ("reopen ms", "file MB"):
        lines.append(f"| {metric} | – | " + " | ".join(f"{extra[n][metric]:.1f}" for n in names) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="documents (default 100k)")
    ap.add_argument("--big", action="store_true", help="also measure reopen and memory at 1M keys")
    ap.add_argument("--json", help="also write the raw figures to this file")
    ap.add_argument("--only", choices=["jsonl", "reopen", "queries", "aio", "processes", "postgres"], help="run only this section")
    ap.add_argument("--pg-url", default=os.environ.get("FERRUMDB_TEST_PG_URL"), help="server for --only postgres")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="ferrumdb-bench-")
    try:
        if args.only == "jsonl":
            for name, row in run_jsonl(args.n, base).items():
                print(f"jsonl, {name}:", {k: f"{v:,.0f}" for k, v in row.items()})
            return
        if args.only == "processes":
            for name, row in run_processes(args.n, base).items():
                print(f"processes, {name}:", {k: f"{v:,.2f}" if k.endswith("ms") else f"{v:,.0f}" for k, v in row.items()})
            return
        if args.only == "queries":
            for name, row in run_queries(args.n, base).items():
                print(f"queries, {name}:", {k: f"{v:.2f}" for k, v in row.items()})
            return
        if args.only == "postgres":
            if not args.pg_url:
                ap.error("--only postgres needs --pg-url postgresql://... (or FERRUMDB_TEST_PG_URL)")
            for name, row in run_postgres(args.n, base, args.pg_url).items():
                ratio = row["ferrumdb"] / row["psycopg"]
                print(f"postgres, {name}: psycopg {row['psycopg']:,.1f}, ferrumdb {row['ferrumdb']:,.1f} ({ratio:.2f}x)")
            return
        if args.only == "aio":
            aio = run_aio(args.n, base)
            for op in ("get", "set"):
                row = aio[op]
                print(
                    f"aio {op} (fsync never), median ns/op: sync {row['sync']:,.0f}, awaited {row['aio']:,.0f} "
                    f"({row['aio'] / row['sync']:.2f}x sync), aiosqlite {row['aiosqlite']:,.0f} "
                    f"({row['aiosqlite'] / row['aio']:.0f}x ferrumdb.aio)"
                )
            print('aio fsync="always":', {k: f"{v:,.1f}" for k, v in aio['fsync=always sets/s'].items()})
            return
        if args.only == "reopen":
            for n in [args.n] + ([1_000_000] if args.big else []):
                r = run_reopen(n, base)
                print("reopen:", {k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in r.items()})
            return
        print(f"N={args.n:,} documents of ~{len(orjson.dumps(make_doc(12345)))} bytes; python {sys.version.split()[0]}")
        results, extra = run_main_table(args.n, base)
        print(table(results, extra))
        threads = run_threads(min(args.n, 100_000), base)
        print("\ngets/sec on one handle:", {k: f"{v:,.0f}" for k, v in threads.items()})
        always = run_fsync_always(base)
        print('fsync="always":', {k: f"{v:.2f}" for k, v in always.items()})
        transactions = run_transactions(base)
        for name, row in transactions.items():
            print(f"transactions (us each), {name}:", {k: f"{v:.2f}" for k, v in row.items()})
        queries = run_queries(args.n, base)
        for name, row in queries.items():
            print(f"queries, {name}:", {k: f"{v:.2f}" for k, v in row.items()})
        reopen = [run_reopen(args.n, base)]
        if args.big:
            reopen.append(run_reopen(1_000_000, base))
        for r in reopen:
            print("reopen:", {k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in r.items()})
        jsonl = run_jsonl(args.n, base)
        for name, row in jsonl.items():
            print(f"jsonl, {name}:", {k: f"{v:,.0f}" for k, v in row.items()})
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"main": results, "extra": extra, "threads": threads, "always": always, "transactions": transactions, "queries": queries, "reopen": reopen}, f, indent=2)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
