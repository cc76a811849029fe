"""``ferrumdb.check(path)`` and ``ferrumdb.open(path, salvage=True)`` on damaged files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import ferrumdb


def _build(path: Path) -> dict[str, object]:
    with ferrumdb.open(path) as db:
        for i in range(50):
            db[f"k{i:02d}"] = {"i": i, "pad": "x" * 40}
        db.create_index("i")
        with db.transaction() as tx:
            tx["tx:a"] = 1
            tx["tx:b"] = 2
        return dict(db.items())


def _damage(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))


def test_check_reports_a_clean_file(db_path: Path) -> None:
    _build(db_path)
    report = ferrumdb.check(db_path)
    assert report["ok"] is True
    assert (report["records"], report["transactions"], report["damage"]) == (52, 1, [])
    assert report["torn_tail"] is None
    assert report["file_bytes"] == db_path.stat().st_size


def test_check_finds_damage_and_keeps_going(db_path: Path) -> None:
    _build(db_path)
    _damage(db_path, db_path.stat().st_size // 2)
    report = ferrumdb.check(db_path)
    assert report["ok"] is False
    assert len(report["damage"]) == 1
    region = report["damage"][0]
    assert region["offset"] <= db_path.stat().st_size // 2 < region["offset"] + region["length"]
    assert report["damaged_bytes"] == region["length"]
    assert report["records"] == 51  # every record but the damaged one
    with pytest.raises(ferrumdb.CorruptionError):
        ferrumdb.open(db_path)


def test_open_with_salvage_rebuilds_and_warns(db_path: Path) -> None:
    before = _build(db_path)
    _damage(db_path, db_path.stat().st_size // 2)
    damaged_bytes = db_path.read_bytes()
    with pytest.warns(ferrumdb.SalvageWarning, match="lost .* bytes at offset"):
        db = ferrumdb.open(db_path, salvage=True)
    with db:
        assert db.salvage_report is not None and db.salvage_report["ok"] is False
        after = dict(db.items())
        assert len(after) == len(before) - 1
        assert all(before[k] == v for k, v in after.items())
        assert db.indexes() == ["i"]
        db["new"] = True  # a normal, writable database again
    kept = db_path.with_name(db_path.name + ".damaged")
    assert kept.read_bytes() == damaged_bytes
    assert ferrumdb.check(db_path)["ok"] is True


def test_salvage_on_an_intact_file_just_opens_it(db_path: Path) -> None:
    before = _build(db_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ferrumdb.open(db_path, salvage=True) as db:
            assert dict(db.items()) == before
            assert db.salvage_report is None
    assert not db_path.with_name(db_path.name + ".damaged").exists()


def test_check_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ferrumdb.check(tmp_path / "missing.db")
    with pytest.raises(TypeError):
        ferrumdb.check(3)  # type: ignore[arg-type]
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello, this is not a database at all" * 3)
    with pytest.raises(ferrumdb.CorruptionError, match="bad magic"):
        ferrumdb.check(not_db)


def test_encrypted_files_need_their_key_to_check_and_salvage(db_path: Path) -> None:
    key = bytes(range(32))
    with ferrumdb.open(db_path, encryption_key=key) as db:
        for i in range(40):
            db[f"k{i:02d}"] = {"i": i}
    with pytest.raises(ferrumdb.EncryptionError):
        ferrumdb.check(db_path)
    assert ferrumdb.check(db_path, encryption_key=key)["ok"] is True
    _damage(db_path, db_path.stat().st_size // 2)
    assert ferrumdb.check(db_path, encryption_key=key)["ok"] is False
    with pytest.warns(ferrumdb.SalvageWarning):
        db = ferrumdb.open(db_path, salvage=True, encryption_key=key)
    with db:
        assert len(db) == 39
    with pytest.raises(ferrumdb.EncryptionError):
        ferrumdb.open(db_path)  # still encrypted
