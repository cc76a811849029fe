"""Transactions: all-or-nothing commits, read-your-writes, conflicts, bad input, crashes.

The crash test follows ``test_crash.py``: a child commits transactions of
several keys and acknowledges each on stdout after ``commit`` returned; the
parent SIGKILLs it at a random acknowledgement count and checks that every
acknowledged transaction is whole and no transaction is half there.
"""

from __future__ import annotations

import random
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ferrumdb
from tests_py.kill import run_until_killed



def test_a_block_commits_every_write_on_exit(db: ferrumdb.FerrumDB) -> None:
    db["a"] = 1
    db["gone"] = "x"
    with db.transaction() as tx:
        tx["a"] = 2
        tx.set("b", {"nested": [1, 2]})
        del tx["gone"]
        tx.delete("never-there")
        assert len(tx) == 4
        # Nothing is visible outside before the commit.
        assert (db["a"], "b" in db, db["gone"]) == (1, False, "x")
    assert tx.finished
    assert dict(db.items()) == {"a": 2, "b": {"nested": [1, 2]}}


def test_reads_inside_see_the_transactions_own_writes(db: ferrumdb.FerrumDB) -> None:
    db["k"] = "old"
    with db.transaction() as tx:
        assert tx["k"] == "old"
        tx["k"] = "new"
        assert tx["k"] == "new" and tx.get("k") == "new" and "k" in tx
        del tx["k"]
        assert "k" not in tx and tx.get("k", "dflt") == "dflt"
        with pytest.raises(KeyError):
            tx["k"]
        with pytest.raises(KeyError):
            del tx["k"]
        assert tx.get("missing") is None
    assert "k" not in db


def test_an_exception_in_the_block_discards_everything(db: ferrumdb.FerrumDB) -> None:
    db["a"] = 1
    with pytest.raises(ZeroDivisionError):
        with db.transaction() as tx:
            tx["a"] = 2
            tx["b"] = 3
            1 / 0  # noqa: B018
    assert tx.finished
    assert dict(db.items()) == {"a": 1}


def test_other_threads_see_nothing_before_the_commit(db: ferrumdb.FerrumDB) -> None:
    db["k"] = 0
    seen: list[Any] = []
    with db.transaction() as tx:
        tx["k"] = 1
        tx["new"] = True
        reader = threading.Thread(target=lambda: seen.extend([db["k"], "new" in db]))
        reader.start()
        reader.join()
    assert seen == [0, False]
    assert (db["k"], db["new"]) == (1, True)


def test_the_builder_form_commits_through_db_commit(db: ferrumdb.FerrumDB) -> None:
    db["k2"] = "bye"
    tx = ferrumdb.Transaction().set("k", {"v": 1}).set("n", 5, ttl=60).delete("k2")
    assert isinstance(tx, ferrumdb.Transaction) and len(tx) == 3
    db.commit(tx)
    assert dict(db.items()) == {"k": {"v": 1}, "n": 5}
    assert 0 < db.ttl("n") <= 60
    with pytest.raises(RuntimeError, match="already committed"):
        tx.set("again", 1)


def test_the_builder_cannot_read_or_be_used_as_a_block(db: ferrumdb.FerrumDB) -> None:
    tx = ferrumdb.Transaction().set("a", 1)
    assert tx["a"] == 1  # its own writes are known
    with pytest.raises(RuntimeError, match="write-only builder"):
        tx["other"]
    with pytest.raises(RuntimeError, match="write-only builder"):
        with tx:
            pass
    with pytest.raises(RuntimeError, match="has no database"):
        tx.commit()


def test_commit_checks_its_argument(db: ferrumdb.FerrumDB, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="Transaction"):
        db.commit({"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ferrumdb.Transaction(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ferrumdb.Transaction().set("a", 1).commit("not a database")  # type: ignore[arg-type]
    with ferrumdb.open(tmp_path / "other.db") as other:
        tx = other.transaction()
        tx["a"] = 1
        with pytest.raises(ValueError, match="another database"):
            db.commit(tx)
        assert "a" not in db
        other.commit(tx)
        assert other["a"] == 1


def test_a_stale_read_raises_conflict_and_writes_nothing(db: ferrumdb.FerrumDB) -> None:
    db["counter"] = 1
    size = db.stats()["file_bytes"]
    with pytest.raises(ferrumdb.TransactionConflict, match="counter") as info:
        with db.transaction() as tx:
            n = tx["counter"]
            db["counter"] = 10  # another writer gets in between
            tx["counter"] = n + 1
            tx["audit"] = "incremented"
    assert isinstance(info.value, ferrumdb.FerrumError)
    assert (db["counter"], "audit" in db) == (10, False)
    assert db.stats()["file_bytes"] > size  # only the other writer's record


def test_reading_a_missing_key_is_checked_too(db: ferrumdb.FerrumDB) -> None:
    tx = db.transaction()
    assert "slot" not in tx
    db["slot"] = "taken"
    tx["slot"] = "mine"
    with pytest.raises(ferrumdb.TransactionConflict):
        tx.commit()
    assert db["slot"] == "taken"


def test_reads_repeat_within_a_transaction(db: ferrumdb.FerrumDB) -> None:
    db["k"] = 1
    tx = db.transaction()
    assert tx["k"] == 1
    db["k"] = 2
    assert tx["k"] == 1  # the value it read, not a newer one
    with pytest.raises(ferrumdb.TransactionConflict):
        tx.commit()


def test_blind_writes_do_not_conflict(db: ferrumdb.FerrumDB) -> None:
    db["k"] = 1
    with db.transaction() as tx:
        tx["k"] = "mine"
        db["k"] = "theirs"
    assert db["k"] == "mine"  # last writer wins when nothing was read


def test_increments_from_threads_with_retry_lose_no_update(db: ferrumdb.FerrumDB) -> None:
    threads, each = 4, 200
    db["counter"] = 0
    start = threading.Barrier(threads)
    conflicts = [0] * threads

    def work(slot: int) -> None:
        start.wait()
        for _ in range(each):
            while True:
                try:
                    with db.transaction() as tx:
                        tx["counter"] = tx["counter"] + 1
                    break
                except ferrumdb.TransactionConflict:
                    conflicts[slot] += 1

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert db["counter"] == threads * each


@pytest.mark.parametrize(
    ("value", "error"),
    [({1, 2}, TypeError), (b"raw", TypeError), (float("nan"), ValueError), ({"a": object()}, TypeError)],
)
def test_a_bad_value_raises_at_the_call_and_keeps_the_rest(
    db: ferrumdb.FerrumDB, value: Any, error: type[Exception]
) -> None:
    with db.transaction() as tx:
        tx["good"] = 1
        with pytest.raises(error):
            tx["bad"] = value
        with pytest.raises(error):
            tx.set("bad", value)
        assert "bad" not in tx and len(tx) == 1
    assert dict(db.items()) == {"good": 1}


def test_bad_keys_and_ttls_raise_like_the_database_does(db: ferrumdb.FerrumDB) -> None:
    tx = db.transaction()
    with pytest.raises(TypeError, match="keys must be str"):
        tx[1] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        tx.delete(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        tx[""] = 1
    with pytest.raises(ValueError, match="64 KiB"):
        tx["k" * (ferrumdb._native.MAX_KEY_BYTES + 1)] = 1
    with pytest.raises(ValueError, match="ttl"):
        tx.set("k", 1, ttl=-1)
    with pytest.raises(TypeError, match="ttl"):
        tx.set("k", 1, ttl="soon")  # type: ignore[arg-type]
    assert 1 not in tx
    assert len(tx) == 0
    tx.discard()
    assert tx.finished


def test_a_closed_or_read_only_database_refuses_the_commit(db_path: Path) -> None:
    db = ferrumdb.open(db_path)
    db["k"] = 1
    tx = db.transaction()
    tx["k"] = 2
    db.close()
    with pytest.raises(ferrumdb.ClosedError):
        tx.commit()
    with pytest.raises(ferrumdb.ClosedError):
        db.transaction()
    with ferrumdb.open(db_path, read_only=True) as ro:
        with pytest.raises(ferrumdb.ReadOnlyError):
            with ro.transaction() as rtx:
                rtx["k"] = rtx["k"] + 1
        assert ro["k"] == 1


def test_indexes_watchers_and_ttls_follow_a_commit(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    tdb.create_index("role")
    tdb["u1"] = {"role": "admin"}
    watch = tdb.watch("u")
    with tdb.transaction() as tx:
        tx["u1"] = {"role": "user"}
        tx.set("u2", {"role": "admin"}, ttl=10)
    assert tdb.find("role", "admin") == ["u2"]
    assert tdb.find("role", "user") == ["u1"]
    events = sorted([next(watch), next(watch)])
    assert events == [("set", "u1", {"role": "user"}), ("set", "u2", {"role": "admin"})]
    clock.advance(10)
    assert tdb.find("role", "admin") == []
    assert "u2" not in tdb
    watch.close()


def test_a_commit_survives_reopen(db_path: Path) -> None:
    with ferrumdb.open(db_path) as db:
        db.commit(ferrumdb.Transaction().set("a", [1]).set("b", {"c": None}))
    with ferrumdb.open(db_path) as db:
        assert dict(db.items()) == {"a": [1], "b": {"c": None}}


def test_repr_says_what_the_transaction_holds(db: ferrumdb.FerrumDB) -> None:
    tx = db.transaction()
    tx["a"] = 1
    assert repr(tx).startswith("<ferrumdb.Transaction open on ")
    assert "1 writes" in repr(tx)
    assert "(builder)" in repr(ferrumdb.Transaction())


_ops = st.lists(
    st.tuples(
        st.sampled_from(["set", "del", "read"]),
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(-5, 5),
    ),
    max_size=20,
)


@settings(max_examples=150, deadline=None)
@given(initial=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(-(2**63), 2**63 - 1), max_size=3), ops=_ops)
def test_a_transaction_behaves_like_a_dict_applied_at_commit(initial: dict[str, int], ops: list[Any]) -> None:
    with ferrumdb.open(":memory:") as db:
        db.update(initial)
        model = dict(initial)
        with db.transaction() as tx:
            for op, key, n in ops:
                if op == "set":
                    tx[key] = n
                    model[key] = n
                elif op == "del":
                    tx.delete(key)
                    model.pop(key, None)
                else:
                    assert tx.get(key) == model.get(key)
            assert dict(db.items()) == initial  # nothing applied yet
        assert dict(db.items()) == model


# -- crash: all or nothing under kill -9 ------------------------------------------

_KEYS_PER_TX = 8
_LIMIT = 1_000_000


def _child_main(path: str) -> None:
    """Runs in the child: commit transaction i (keys t{i}:0..7), then acknowledge it."""
    with ferrumdb.open(path, fsync="never") as db:
        for i in range(_LIMIT):
            with db.transaction() as tx:
                for j in range(_KEYS_PER_TX):
                    tx[f"t{i:07d}:{j}"] = {"i": i, "j": j, "pad": "p" * (i % 300)}
                # Overwrite a shared key in every transaction as well.
                tx["last"] = i
            sys.stdout.write(f"{i}\n")
            sys.stdout.flush()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("seed", range(12))
def test_a_killed_writer_leaves_every_transaction_whole_or_absent(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "crash.db"
    target = random.Random(seed).randint(1, 400)
    code = f"from tests_py.test_transactions import _child_main; _child_main({str(path)!r})"
    lines = run_until_killed(code, lambda lines: len(lines) >= target)
    acked = int(lines[-1])
    assert acked + 1 >= target, "the child stopped before the cut point"

    with ferrumdb.open(path) as db:
        per_tx: dict[int, int] = {}
        for key in db.scan("t"):
            per_tx[int(key[0][1:8])] = per_tx.get(int(key[0][1:8]), 0) + 1
        assert all(n == _KEYS_PER_TX for n in per_tx.values()), "a transaction is half there"
        committed = sorted(per_tx)
        assert committed == list(range(len(committed))), "a gap in committed transactions"
        assert len(committed) >= acked + 1, "an acknowledged transaction was lost"
        assert db["last"] == committed[-1]
