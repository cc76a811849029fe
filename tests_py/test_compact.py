"""compact() rewrites live data only; flush() forces data to stable storage."""

from __future__ import annotations

from pathlib import Path

import pytest

import ferrumdb


def _churn(db: ferrumdb.FerrumDB) -> dict[str, object]:
    """Overwrite and delete a lot; return what should be live."""
    for round_ in range(20):
        for i in range(50):
            db[f"k{i:03d}"] = {"round": round_, "pad": "x" * 200}
    for i in range(0, 50, 5):
        del db[f"k{i:03d}"]
    return {f"k{i:03d}": {"round": 19, "pad": "x" * 200} for i in range(50) if i % 5}


def test_compact_keeps_data(db: ferrumdb.FerrumDB) -> None:
    """After compact(), every live key has its latest value and deleted keys stay gone."""
    expected = _churn(db)
    db.compact()
    assert dict(db.items()) == expected


def test_compact_keeps_data_across_reopen(db_path: Path) -> None:
    """Data compacted is intact after reopening (deleted keys do not come back)."""
    with ferrumdb.open(db_path) as db:
        expected = _churn(db)
        db.compact()
    with ferrumdb.open(db_path) as db:
        assert dict(db.items()) == expected


def test_compact_shrinks_file(db: ferrumdb.FerrumDB) -> None:
    """After many overwrites, compact() makes the file smaller."""
    _churn(db)
    before = db.stats()["file_bytes"]
    db.compact()
    assert db.stats()["file_bytes"] < before


def test_compact_shrinks_file_on_disk(db_path: Path) -> None:
    """After many overwrites, the file on disk is smaller once compacted and closed."""
    with ferrumdb.open(db_path) as db:
        _churn(db)
    before = db_path.stat().st_size
    with ferrumdb.open(db_path) as db:
        db.compact()
    assert db_path.stat().st_size < before


def test_compact_file_bytes_reach_live_bytes(db: ferrumdb.FerrumDB) -> None:
    """Right after compact(), the file holds only live data: file_bytes == live_bytes."""
    _churn(db)
    db.compact()
    s = db.stats()
    assert s["file_bytes"] == s["live_bytes"]


def test_writes_after_compact_persist(db_path: Path) -> None:
    """Writes and deletes made after compact() survive reopen."""
    with ferrumdb.open(db_path) as db:
        _churn(db)
        db.compact()
        db["new"] = [1, 2]
        db["k001"] = "changed"
        del db["k002"]
    with ferrumdb.open(db_path) as db:
        assert (db["new"], db["k001"], "k002" in db) == ([1, 2], "changed", False)


def test_compact_twice(db: ferrumdb.FerrumDB) -> None:
    """compact() on an already compact database changes nothing."""
    expected = _churn(db)
    db.compact()
    db.compact()
    assert dict(db.items()) == expected


def test_compact_empty(db_path: Path) -> None:
    """compact() of an empty database leaves an empty, usable database."""
    with ferrumdb.open(db_path) as db:
        db.compact()
        assert len(db) == 0
    with ferrumdb.open(db_path) as db:
        assert len(db) == 0


def test_compact_memory() -> None:
    """compact() works on a :memory: database."""
    with ferrumdb.open(":memory:") as mem:
        expected = _churn(mem)
        mem.compact()
        assert dict(mem.items()) == expected


def test_compact_keeps_lock(tmp_path: Path) -> None:
    """After compact() replaced the file, an exclusive handle still holds the writer lock."""
    path = tmp_path / "x.db"
    with ferrumdb.open(path, exclusive=True) as db:
        _churn(db)
        db.compact()
        with pytest.raises(ferrumdb.LockedError):
            ferrumdb.open(path)


@pytest.mark.parametrize("policy", ["never", "periodic:100000", "always"])
def test_flushed_data_reopens(db_path: Path, policy: str) -> None:
    """Data written and flushed under any policy is there when reopened."""
    with ferrumdb.open(db_path, fsync=policy) as db:
        db["k"] = {"v": policy}
        db.flush()
    with ferrumdb.open(db_path) as db:
        assert db["k"] == {"v": policy}


def test_flush_memory() -> None:
    """flush() on a :memory: database is a no-op that succeeds."""
    with ferrumdb.open(":memory:") as mem:
        mem["k"] = 1
        mem.flush()
        assert mem["k"] == 1


# -- background compaction -----------------------------------------------------


def _churn(db: ferrumdb.FerrumDB, rounds: int = 170) -> dict[str, str]:
    """Overwrite 100 keys `rounds` times with ~1 KB values (17 MB of garbage by default)."""
    model = {}
    for r in range(rounds):
        for k in range(100):
            db[f"k{k:03d}"] = model[f"k{k:03d}"] = f"{r}" + "v" * 1000
    return model


def test_garbage_is_compacted_in_the_background(db_path: Path) -> None:
    with ferrumdb.open(db_path, fsync="never") as db:
        model = _churn(db)
        db._wait_for_compaction()
        stats = db.stats()
        assert stats["compactions"] >= 1
        assert stats["file_bytes"] < 17 << 20
        assert dict(db.items()) == model
    with ferrumdb.open(db_path) as db:
        assert dict(db.items()) == model


def test_auto_compact_none_compacts_only_when_asked(db_path: Path) -> None:
    with ferrumdb.open(db_path, fsync="never", auto_compact=None) as db:
        _churn(db)
        db._wait_for_compaction()
        assert db.stats()["compactions"] == 0
        db.compact()
        assert db.stats()["compactions"] == 1


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, float("nan"), True])
def test_auto_compact_must_be_a_ratio(db_path: Path, bad: float) -> None:
    with pytest.raises(ValueError, match="auto_compact"):
        ferrumdb.open(db_path, auto_compact=bad)
    with pytest.raises(TypeError):
        ferrumdb.open(db_path, auto_compact="half")  # type: ignore[arg-type]
    assert not db_path.exists()
