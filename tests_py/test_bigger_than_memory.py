"""A database several times larger than the process's memory budget works.

Issue 6: a ~1.2 GB database of 10 KB values is opened in a child process
whose data segment is capped at 256 MB with ``RLIMIT_DATA`` (set by the child
before it imports ferrumdb), and every key and every value is read back and
checked, once through a writer handle and once through a read-only handle.

Why ``RLIMIT_DATA`` and ``RssAnon``:

* A writer maps the log file ``MAP_SHARED``. Those pages are *page cache*:
  file-backed, clean or written back by the kernel, dropped under pressure
  and re-read on demand. They are not the process's memory in any budget
  that matters (a cgroup reclaims them before it kills anything), but they
  do show in ``VmRSS``/``VmHWM`` and in the address space, so ``RLIMIT_AS``
  would refuse the mapping of any file larger than the limit. Read-only
  handles use ``pread`` and map nothing.
* ``RLIMIT_DATA`` (Linux >= 4.7) counts private writable memory only:
  the heap and anonymous mappings, i.e. what the process itself holds. A
  process that needed to keep values in memory would fail with
  ``MemoryError`` (or abort) under it. It is set without root, needs no
  cgroup, and is really enforced, which the control case below checks.
* ``RssAnon`` from ``/proc/self/status`` is the resident part of that
  private memory; the child reports it after reading everything and the test
  asserts it stays under the budget too. ``VmHWM`` (peak RSS) includes the
  file-backed pages and is only printed for information.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import ferrumdb

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc/self/status are Linux-only"
)

BUDGET = 256 * 2**20  # bytes of private memory the child may have
VALUE_CHARS = 10_000
N = 120_000  # ~1.2 GB of log, ~4.7x the budget

CHILD = textwrap.dedent(
    """
    import json, random, resource, sys
    budget = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_DATA, (budget, budget))
    mode = sys.argv[3]

    def status():
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in ("RssAnon", "RssFile", "VmHWM", "VmData"):
                    out[name] = int(rest.split()[0]) * 1024
        return out

    if mode == "control":
        # Proof that the limit bites: twice the budget cannot be had.
        try:
            blob = bytearray(2 * budget)
        except MemoryError:
            print(json.dumps({"refused": True}))
        else:
            print(json.dumps({"refused": False, "len": len(blob)}))
        sys.exit(0)

    import ferrumdb

    def value(i):
        return f"v{i:08d}:" + "abcdefghij"[i % 10] * VALUE_CHARS

    VALUE_CHARS = int(sys.argv[4])
    n = int(sys.argv[5])
    db = ferrumdb.open(sys.argv[2], fsync="never", read_only=(mode == "read_only"), auto_compact=None)
    keys = db.keys()
    assert keys == [f"k{i:08d}" for i in range(n)], "keys differ"
    read = 0
    for i, k in enumerate(keys):
        v = db[k]
        if v != value(i):
            raise SystemExit(f"wrong value for {k}")
        read += len(v)
    # And a random sample read again out of order (no sequential read-ahead).
    rng = random.Random(6)
    for i in rng.sample(range(n), 2000):
        assert db.get(f"k{i:08d}") == value(i)
    db.close()
    print(json.dumps({"read": read, **status()}))
    """
)


def value(i: int) -> str:
    return f"v{i:08d}:" + "abcdefghij"[i % 10] * VALUE_CHARS


def run_child(mode: str, path: Path) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(BUDGET), str(path), mode, str(VALUE_CHARS), str(N)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("big")
    if shutil.disk_usage(base).free < 4 * 2**30:
        pytest.skip("needs ~4 GB free for a 1.2 GB database")
    path = base / "big.db"
    with ferrumdb.open(str(path), fsync="never", auto_compact=None) as db:
        for i in range(N):
            db[f"k{i:08d}"] = value(i)
    yield path
    # pytest keeps the last few runs' temporary directories: not 1.2 GB each.
    shutil.rmtree(base, ignore_errors=True)


def test_memory_limit_is_enforced() -> None:
    assert run_child("control", Path("unused")) == {"refused": True}


@pytest.mark.parametrize("mode", ["writer", "read_only"])
def test_database_larger_than_memory_budget(big_db: Path, mode: str) -> None:
    size = os.path.getsize(big_db)
    assert size > 4 * BUDGET, f"file is only {size} bytes"
    r = run_child(mode, big_db)
    assert r["read"] == N * (VALUE_CHARS + 10)
    assert r["RssAnon"] < BUDGET, r
    print(
        f"\n{mode}: file {size / 2**20:.0f} MB, budget {BUDGET / 2**20:.0f} MB (RLIMIT_DATA), "
        f"RssAnon {r['RssAnon'] / 2**20:.1f} MB, RssFile {r['RssFile'] / 2**20:.1f} MB, "
        f"VmHWM {r['VmHWM'] / 2**20:.1f} MB, VmData {r['VmData'] / 2**20:.1f} MB"
    )
