"""``db.backup(path)``: a consistent, verified copy while the database stays in use."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import ferrumdb


def test_a_backup_opens_with_everything_in_it(db: ferrumdb.FerrumDB, tmp_path: Path) -> None:
    for i in range(300):
        db[f"k{i}"] = {"i": i, "tags": ["x"] * (i % 5)}
    db.create_index("i")
    dest = tmp_path / "copy.db"
    assert db.backup(dest) is None
    with ferrumdb.open(dest) as copy:
        assert copy == db
        assert copy.indexes() == ["i"]
        assert copy.find("i", 7) == ["k7"]


def test_backups_during_transfers_always_balance(db: ferrumdb.FerrumDB, tmp_path: Path) -> None:
    accounts = [f"acct:{a}" for a in range(8)]
    for a in accounts:
        db[a] = 100
    stop = threading.Event()
    moved = [0]

    def transfer() -> None:
        i = 0
        while not stop.is_set() and i < 20_000:
            src, dst = accounts[i % 8], accounts[(i * 3 + 1) % 8]
            i += 1
            if src == dst:
                continue
            try:
                with db.transaction() as tx:
                    tx[src] = tx[src] - 1
                    tx[dst] = tx[dst] + 1
                moved[0] += 1
            except ferrumdb.TransactionConflict:
                pass

    writer = threading.Thread(target=transfer)
    writer.start()
    try:
        for n in range(4):
            dest = tmp_path / f"b{n}.db"
            db.backup(dest)
            with ferrumdb.open(dest, read_only=True) as copy:
                assert sum(copy[a] for a in accounts) == 800
    finally:
        stop.set()
        writer.join()
    assert moved[0] > 0


def test_an_in_memory_database_backs_up_to_a_file(tmp_path: Path) -> None:
    with ferrumdb.open(":memory:") as mem:
        mem["a"] = [1, 2]
        mem.backup(str(tmp_path / "saved.db"))
    with ferrumdb.open(tmp_path / "saved.db") as db:
        assert db["a"] == [1, 2]


def test_bad_destinations_raise_and_change_nothing(db: ferrumdb.FerrumDB, db_path: Path, tmp_path: Path) -> None:
    db["a"] = 1
    with pytest.raises(ValueError, match="onto itself"):
        db.backup(db_path)
    with pytest.raises(TypeError):
        db.backup(42)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        db.backup(tmp_path / "missing-dir" / "b.db")
    with ferrumdb.open(tmp_path / "busy.db") as busy:
        busy["theirs"] = True
        with pytest.raises(ValueError, match="open for writing"):
            db.backup(tmp_path / "busy.db")
        assert busy["theirs"] is True
    assert dict(db.items()) == {"a": 1}


def test_a_closed_database_cannot_be_backed_up(db_path: Path, tmp_path: Path) -> None:
    db = ferrumdb.open(db_path)
    db.close()
    with pytest.raises(ferrumdb.ClosedError):
        db.backup(tmp_path / "late.db")
    assert not (tmp_path / "late.db").exists()


def test_a_read_only_handle_can_back_up(db: ferrumdb.FerrumDB, db_path: Path, tmp_path: Path) -> None:
    db["a"] = 1
    db.flush()
    with ferrumdb.open(db_path, read_only=True) as ro:
        ro.backup(tmp_path / "from-ro.db", progress=True)
    with ferrumdb.open(tmp_path / "from-ro.db") as copy:
        assert copy["a"] == 1
