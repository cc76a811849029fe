"""Unique indexes: ``create_index(field, unique=True)`` and ``DuplicateKeyError``.

The rules are documented on ``Documents::create_index_with`` (``rust/documents/docs.rs``)
and ``IndexSet::check`` (``rust/documents/set.rs``): every write that would give two live
documents one value is refused with nothing written; a missing field counts as ``None``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import ferrumdb


@pytest.fixture
def users(db: ferrumdb.FerrumDB) -> ferrumdb.FerrumDB:
    db["u1"] = {"email": "ann@x.io", "n": 0}
    db["u2"] = {"email": "bob@x.io", "n": 0}
    db.create_index("email", unique=True)
    return db


def test_a_duplicating_set_raises_and_writes_nothing(users: ferrumdb.FerrumDB) -> None:
    """set/[]= of a held value raises DuplicateKeyError (a FerrumError and a ValueError) naming field, value and holder."""
    with pytest.raises(ferrumdb.DuplicateKeyError, match=r'"email".*"ann@x.io".*"u1".*"u3"') as info:
        users["u3"] = {"email": "ann@x.io"}
    assert isinstance(info.value, ferrumdb.FerrumError) and isinstance(info.value, ValueError)
    assert "u3" not in users
    users["u1"] = {"email": "ann@x.io", "n": 1}  # its own value: fine
    users["u3"] = {"email": "cid@x.io"}


def test_updates_are_refused_too(users: ferrumdb.FerrumDB) -> None:
    """update_one/update_many that would duplicate a value raise and write nothing."""
    with pytest.raises(ferrumdb.DuplicateKeyError):
        users.update_one("u2", {"$set": {"email": "ann@x.io"}, "$inc": {"n": 1}})
    with pytest.raises(ferrumdb.DuplicateKeyError):
        users.update_many({}, {"$set": {"email": "same@x.io"}})
    assert users["u2"] == {"email": "bob@x.io", "n": 0}
    assert users["u1"] == {"email": "ann@x.io", "n": 0}


def test_a_transaction_commit_is_refused_whole(users: ferrumdb.FerrumDB) -> None:
    """A commit with a duplicate (against the data or within itself) writes none of its writes; a swap is fine."""
    with pytest.raises(ferrumdb.DuplicateKeyError):
        with users.transaction() as tx:
            tx["u9"] = {"email": "new@x.io"}
            tx["u3"] = {"email": "bob@x.io"}
    assert "u9" not in users and "u3" not in users
    with pytest.raises(ferrumdb.DuplicateKeyError):
        users.commit(ferrumdb.Transaction().set("a", {"email": "z"}).set("b", {"email": "z"}))
    assert "a" not in users
    with users.transaction() as tx:
        tx["u1"] = {"email": "bob@x.io"}
        tx["u2"] = {"email": "ann@x.io"}
    assert users.find("email", "ann@x.io") == ["u2"]


def test_a_missing_field_counts_as_none(users: ferrumdb.FerrumDB) -> None:
    """As in MongoDB, one document may lack the field (or hold None), not two."""
    users["nobody"] = {"name": "x"}
    with pytest.raises(ferrumdb.DuplicateKeyError, match="null"):
        users["nobody2"] = {"email": None}
    with pytest.raises(ferrumdb.DuplicateKeyError):
        users["nobody3"] = 5
    del users["nobody"]
    users["nobody2"] = {"email": None}


def test_creating_over_duplicates_names_a_value(db: ferrumdb.FerrumDB) -> None:
    """create_index(unique=True) over repeated values raises naming one, and creates nothing."""
    db["a"] = {"tags": ["x", "y"]}
    db["b"] = {"tags": ["y"]}
    with pytest.raises(ferrumdb.DuplicateKeyError, match=r'"y"'):
        db.create_index("tags", unique=True)
    assert db.indexes() == []
    db["c"] = {"tags": ["y"]}


def test_unique_is_remembered_across_reopen(db_path: Path) -> None:
    """The unique flag is stored with the index definition."""
    with ferrumdb.open(db_path) as db:
        db.create_index("email", unique=True)
        db["u1"] = {"email": "a"}
    with ferrumdb.open(db_path) as db:
        assert db.indexes() == ["email"]
        with pytest.raises(ferrumdb.DuplicateKeyError):
            db["u2"] = {"email": "a"}
        with pytest.raises(ValueError, match="drop_index"):
            db.create_index("email")
        db.drop_index("email")
        db["u2"] = {"email": "a"}
    with ferrumdb.open(db_path) as db:
        assert db.indexes() == []


def test_racing_threads_insert_a_value_once(db: ferrumdb.FerrumDB) -> None:
    """8 threads writing the same value under different keys: exactly one succeeds, the rest are refused."""
    db.create_index("email", unique=True)
    threads = 8
    start = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        start.wait()
        try:
            db[f"k{i}"] = {"email": "same"}
            result = "ok"
        except ferrumdb.DuplicateKeyError:
            result = "dup"
        with lock:
            outcomes.append(result)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert sorted(outcomes) == ["dup"] * (threads - 1) + ["ok"]
    assert len(db.find("email", "same")) == 1
    assert len(db) == 1


def test_racing_upserts_of_one_value_leave_one_holder(db: ferrumdb.FerrumDB) -> None:
    """Concurrent update_one upserts that set one unique value under different keys: one holder."""
    db.create_index("email", unique=True)
    threads = 6
    start = threading.Barrier(threads)
    refused = []

    def work(i: int) -> None:
        start.wait()
        try:
            db.update_one(f"k{i}", {"$set": {"email": "x"}}, upsert=True)
        except ferrumdb.DuplicateKeyError:
            refused.append(i)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert len(refused) == threads - 1
    assert len(db) == 1


def test_a_duplicating_jsonl_import_writes_nothing(users: ferrumdb.FerrumDB, tmp_path: Path) -> None:
    """import_jsonl checks the whole file against unique indexes first: a duplicate (with the data or within the file) writes no line."""
    clash_with_data = tmp_path / "a.jsonl"
    clash_with_data.write_text(
        '{"key": "u7", "value": {"email": "new@x.io"}}\n{"key": "u8", "value": {"email": "bob@x.io"}}\n'
    )
    with pytest.raises(ferrumdb.DuplicateKeyError, match="bob@x.io"):
        users.import_jsonl(clash_with_data)
    clash_in_file = tmp_path / "b.jsonl"
    clash_in_file.write_text(
        '{"key": "u7", "value": {"email": "same@x.io"}}\n{"key": "u8", "value": {"email": "same@x.io"}}\n'
    )
    with pytest.raises(ferrumdb.DuplicateKeyError, match="same@x.io"):
        users.import_jsonl(clash_in_file)
    assert sorted(users.keys()) == ["u1", "u2"]
    # Later lines win: a key rewritten within the file claims only its last value,
    # and a file that moves a value from one key to another imports.
    fine = tmp_path / "c.jsonl"
    fine.write_text(
        '{"key": "u7", "value": {"email": "ann@x.io"}}\n'
        '{"key": "u7", "value": {"email": "u7@x.io"}}\n'
        '{"key": "u1", "value": {"email": "moved@x.io"}}\n'
        '{"key": "u2", "value": {"email": "ann@x.io"}}\n'
    )
    assert users.import_jsonl(fine) == 4
    assert users.find("email", "ann@x.io") == ["u2"]
