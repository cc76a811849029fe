"""The index file (``PATH.index``) a clean close leaves: the next open loads
the indexes from it, and nothing it holds can change an answer, whether it is
damaged, or another process wrote (and still holds the file) since it was made.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ferrumdb

# Big documents make a close leave a hint (past 8 MiB of log): the index file
# is built on it.
PAD = "x" * 40_000
N = 230


def build(path: Path) -> dict[str, int]:
    model = {}
    with ferrumdb.open(path, fsync="never") as db:
        for i in range(N):
            db[f"k{i:04}"] = {"g": i % 7, "pad": PAD}
            model[f"k{i:04}"] = i % 7
        db.create_index("g")
    return model


def check(db: ferrumdb.FerrumDB, model: dict[str, int]) -> None:
    for g in range(8):
        want = sorted(k for k, v in model.items() if v == g)
        assert db.find("g", g) == want
        assert db.count({"g": g}) == len(want)
        assert [k for k, _ in db.query({"g": g})] == want
    assert db.count({"g": {"$gte": 2, "$lt": 5}}) == sum(1 for v in model.values() if 2 <= v < 5)


def test_close_leaves_the_file_and_reopen_answers_the_same(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    model = build(path)
    assert (tmp_path / "app.db.index").exists()
    with ferrumdb.open(path) as db:
        check(db, model)
        db["k0001"] = {"g": 6, "pad": PAD}
        model["k0001"] = 6
        check(db, model)
    with ferrumdb.open(path) as db:
        check(db, model)


def test_a_damaged_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    model = build(path)
    index = tmp_path / "app.db.index"
    good = index.read_bytes()
    middle = len(good) // 2
    flipped = good[:middle] + bytes([good[middle] ^ 0x40]) + good[middle + 1 :]
    for bad in (good[: len(good) // 3], b"garbage" * 100, flipped):
        index.write_bytes(bad)
        with ferrumdb.open(path) as db:
            check(db, model)
        assert index.read_bytes() != bad, "the close writes a good file again"


CHILD = textwrap.dedent(
    """
    import sys, ferrumdb
    db = ferrumdb.open(sys.argv[1], fsync="never")
    pad = "x" * 40_000
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "set":
            db[cmd[1]] = {"g": int(cmd[2]), "pad": pad}
        elif cmd[0] == "del":
            del db[cmd[1]]
        elif cmd[0] == "plain":
            db[cmd[1]] = {"other": 1}
        print("ok", flush=True)
    db.close()
    """
)


def test_another_process_writing_after_the_file_was_made(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    model = build(path)
    made = (tmp_path / "app.db.index").read_bytes()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None

    def tell(cmd: str) -> None:
        child.stdin.write(cmd + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ok"

    try:
        # The other process changes documents and keeps the file open.
        for cmd in ("set k0003 6", "set k0010 0", "del k0004", "set new 3", "plain k0005"):
            tell(cmd)
        model.update({"k0003": 6, "k0010": 0, "new": 3})
        del model["k0004"], model["k0005"]
        assert (tmp_path / "app.db.index").read_bytes() == made, "still the old file"
        with ferrumdb.open(path, fsync="never") as db:
            check(db, model)
            # And its later writes are followed as usual.
            tell("set k0020 5")
            model["k0020"] = 5
            check(db, model)
    finally:
        child.stdin.close()
        assert child.wait(timeout=60) == 0
        child.stdout.close()
    with ferrumdb.open(path) as db:
        check(db, model)


def test_read_only_handles_use_it_and_never_write_it(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    model = build(path)
    index = tmp_path / "app.db.index"
    before = index.stat().st_mtime_ns, index.read_bytes()
    with ferrumdb.open(path, read_only=True) as db:
        check(db, model)
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before
    os.remove(index)
    with ferrumdb.open(path, read_only=True) as db:
        check(db, model)
    assert not index.exists()
