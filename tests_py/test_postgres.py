"""The PostgreSQL backend: the section 1 API on a table, its schema, and its errors (SPEC section 7)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

import ferrumdb
from ferrumdb.postgres import SCHEMA_VERSION, WATCH_SLOTS
from tests_py.pg_support import drop_table, pg_db, pg_url, server_url, table_url  # noqa: F401


def test_mapping_protocol(pg_db: Any) -> None:
    """set/get/del/in/len/iter behave as on a file database, keys in code-point order."""
    pg_db["b"] = {"n": 1}
    pg_db["a"] = [1, "x", None, True, 2.5]
    pg_db["ä"] = "umlaut"
    pg_db["Z"] = 0
    assert pg_db["a"] == [1, "x", None, True, 2.5]
    assert pg_db.get("missing", "d") == "d"
    assert "b" in pg_db and "c" not in pg_db and 5 not in pg_db
    assert list(pg_db) == ["Z", "a", "b", "ä"]
    assert len(pg_db) == 4 and pg_db.count() == 4
    del pg_db["Z"]
    with pytest.raises(KeyError):
        del pg_db["Z"]
    with pytest.raises(KeyError):
        pg_db["Z"]
    assert pg_db.delete("b") is True and pg_db.delete("b") is False
    assert pg_db.setdefault("s", 3) == 3 and pg_db.pop("s") == 3
    pg_db.update({"u": 1, "v": 2})
    assert dict(pg_db.items()) == {"a": [1, "x", None, True, 2.5], "ä": "umlaut", "u": 1, "v": 2}
    assert pg_db == {"a": [1, "x", None, True, 2.5], "ä": "umlaut", "u": 1, "v": 2}
    pg_db.clear()
    assert len(pg_db) == 0


def test_values_round_trip_with_their_types(pg_db: Any) -> None:
    """Ints beyond i64, floats written with an exponent and tuples come back as the file backend returns them."""
    value = {"big": 2**64 - 1, "neg": -(2**63), "f": 1e16, "g": 1.5e300, "tiny": 1e-7, "t": (1, 2), "s": "é"}
    pg_db["v"] = value
    with ferrumdb.open(":memory:") as file_db:
        file_db["v"] = value
        assert pg_db["v"] == file_db["v"]
        assert {k: type(v) for k, v in pg_db["v"].items()} == {k: type(v) for k, v in file_db["v"].items()}


def test_bad_values_raise_like_the_file_backend_and_write_nothing(pg_db: Any) -> None:
    """A set, bytes or NaN raises the file backend's error naming the path; nothing is stored."""
    with pytest.raises(TypeError, match="set"):
        pg_db["k"] = {"a": {1, 2}}
    with pytest.raises(ValueError):
        pg_db["k"] = {"a": float("nan")}
    with pytest.raises(TypeError):
        pg_db[5] = 1  # type: ignore[index]
    with pytest.raises(ValueError, match="NUL"):
        pg_db["k"] = {"a": "nul \u0000 inside"}
    assert "k" not in pg_db and len(pg_db) == 0


def test_keys_no_row_can_have_read_as_missing_and_are_refused_on_write(pg_db: Any) -> None:
    """A key holding NUL (PostgreSQL text refuses it; libpq would cut it short) or a lone surrogate
    (no UTF-8 form): reads answer "missing" as on a file, a write raises ValueError and writes nothing."""
    pg_db["a"] = 1
    for key in ("a\x00b", "\ud800"):
        assert key not in pg_db and pg_db.get(key, 7) == 7 and pg_db.get_json(key, "d") == "d"
        assert pg_db.delete(key) is False
        with pytest.raises(KeyError):
            pg_db[key]
        with pytest.raises(ValueError):
            pg_db[key] = 1
    assert dict(pg_db.items()) == {"a": 1}
    pg_db.close()
    for key in ("a\x00b", "\ud800"):  # a closed handle still says so, whatever the key
        for call in (lambda: key in pg_db, lambda: pg_db.get(key), lambda: pg_db.delete(key), lambda: pg_db.ttl(key)):
            with pytest.raises(ferrumdb.ClosedError):
                call()


def test_scan_prefix_in_key_order(pg_db: Any) -> None:
    """scan(prefix) yields exactly the keys starting with it, in key order."""
    for key in ["user:2", "user:10", "user:1", "users", "user;", "use", "x"]:
        pg_db[key] = key
    assert [k for k, _ in pg_db.scan("user:")] == ["user:1", "user:10", "user:2"]
    assert [k for k, _ in pg_db.scan("\U0010ffff")] == []


def test_ttl_with_a_manual_clock(pg_url: str) -> None:
    """An expired key is invisible to every read path and purged; ttl() reports seconds left."""
    clock = ferrumdb.ManualClock(1000.0)
    with ferrumdb.open(pg_url, clock=clock) as db:
        db.set("t", {"role": "x"}, ttl=10)
        db["p"] = {"role": "x"}
        assert db.ttl("t") == pytest.approx(10.0) and db.ttl("p") is None
        clock.advance(10.5)
        assert "t" not in db and db.get("t") is None and len(db) == 1
        assert db.query({"role": "x"}) == [("p", {"role": "x"})]
        assert db.count({"role": "x"}) == 1 and list(db) == ["p"]
        assert db.update_one("t", {"$set": {"a": 1}}) is None
        assert db.delete("t") is False
        with pytest.raises(KeyError):
            db.ttl("t")
        db.set("t2", 1, ttl=1)
        clock.advance(2)
        assert db._purge_expired() == 1


def test_expired_rows_are_purged_in_the_background(pg_url: str) -> None:
    """With ?purge_interval=S a writable handle deletes expired rows itself; stats() counts them; close stops it."""
    clock = ferrumdb.ManualClock(1000.0)
    with ferrumdb.open(pg_url + "&purge_interval=0.01", clock=clock) as db:
        db.set("t", {"x": 1}, ttl=5)
        db["p"] = 1
        rows = lambda: db._run(lambda c: c.execute(f"SELECT count(*) FROM {db._t} WHERE key > ''").fetchone()[0])  # noqa: E731
        assert rows() == 2
        clock.advance(6)
        assert "t" not in db  # invisible at once; deleted by a later round
        with db._purge_round_done:
            # Two rounds: the first may have started before the clock moved.
            target = db._purge_rounds + 2
            assert db._purge_round_done.wait_for(lambda: db._purge_rounds >= target, timeout=60)
        assert rows() == 1 and db.stats()["expired_purged"] == 1
        threads = [t for t in threading.enumerate() if t.name == f"ferrumdb-pg-purge-{db.table}"]
        assert len(threads) == 1
    threads[0].join(60)
    assert not threads[0].is_alive()
    with ferrumdb.open(pg_url, read_only=True) as reader, ferrumdb.open(pg_url + "&purge_interval=0") as quiet:
        assert not [t for t in threading.enumerate() if t.name == f"ferrumdb-pg-purge-{reader.table}"]
        assert quiet.stats()["expired_purged"] == 0
    for bad in ("-1", "x", "inf"):
        with pytest.raises(ValueError, match="purge_interval"):
            ferrumdb.open(pg_url + "&purge_interval=" + bad)


def test_updates_keep_the_ttl(pg_url: str) -> None:
    """update_one keeps a key's expiry, as on the file backend."""
    clock = ferrumdb.ManualClock(50.0)
    with ferrumdb.open(pg_url, clock=clock) as db:
        db.set("k", {"n": 1}, ttl=30)
        assert db.update_one("k", {"$inc": {"n": 1}}) == {"n": 2}
        assert db.ttl("k") == pytest.approx(30.0)


def test_update_errors_write_nothing(pg_db: Any) -> None:
    """$inc on a string raises TypeError naming the path; an update without operators raises ValueError."""
    pg_db["k"] = {"n": "x", "m": 1}
    with pytest.raises(TypeError, match="n"):
        pg_db.update_one("k", {"$inc": {"n": 1, "m": 1}})
    with pytest.raises(ValueError):
        pg_db.update_one("k", {"m": 2})
    assert pg_db["k"] == {"n": "x", "m": 1}
    assert pg_db.update_one("new", {"$inc": {"n": 1}}, upsert=True) == {"n": 1}


def test_indexes_are_postgresql_indexes_shared_by_handles(pg_db: Any, pg_url: str) -> None:
    """create_index makes a GIN expression index that queries use; another handle sees it; drop removes it."""
    rows = [(f"u{i:04}", json.dumps({"role": "admin" if i % 1000 == 0 else "user", "i": i}), None) for i in range(3000)]
    pg_db.write_many(rows)
    pg_db.create_index("role")
    pg_db._run(lambda c: c.execute(f"ANALYZE {pg_db._t}"))
    plan = pg_db.explain({"role": "admin"})
    assert plan["index"] == "role" and plan["scan"] is False
    assert "jsonb_path_query_array" in plan["sql"]
    with ferrumdb.open(pg_url) as other:
        assert other.indexes() == ["role"]
    assert [k for k, _ in pg_db.query({"role": "admin"})] == ["u0000", "u1000", "u2000"]
    names = {r[0] for r in pg_db._run(lambda c: c.execute("SELECT indexname FROM pg_indexes").fetchall())}
    assert pg_db._index_names("role")[0] in names
    pg_db.drop_index("role")
    assert pg_db.indexes() == []
    names = {r[0] for r in pg_db._run(lambda c: c.execute("SELECT indexname FROM pg_indexes").fetchall())}
    assert pg_db._index_names("role")[0] not in names


def test_unique_index(pg_db: Any) -> None:
    """A unique index refuses a duplicate (1 == 1.0, a missing field is null) with DuplicateKeyError."""
    pg_db["a"] = {"email": "x@y", "n": 1}
    pg_db.create_index("email", unique=True)
    with pytest.raises(ferrumdb.DuplicateKeyError) as info:
        pg_db["b"] = {"email": "x@y"}
    assert isinstance(info.value, ValueError) and "email" in str(info.value)
    assert "b" not in pg_db
    pg_db["c"] = {"n": 2}
    with pytest.raises(ferrumdb.DuplicateKeyError):
        pg_db["d"] = {"email": None}
    pg_db.create_index("n", unique=True)
    with pytest.raises(ferrumdb.DuplicateKeyError):
        pg_db["e"] = {"email": "other", "n": 1.0}
    with pytest.raises(ferrumdb.DuplicateKeyError, match="unique index"):
        pg_db.create_index("missing", unique=True)
    with pytest.raises(ValueError, match="already exists with unique=True"):
        pg_db.create_index("email")
    pg_db.create_index("email", unique=True)  # the same definition again is a no-op


def test_unique_index_follows_the_file_rule_for_arrays_and_numbers(pg_url: str) -> None:
    """Array elements claim values, 2**60 as float and int are one value, a transaction may swap values;
    an expired holder blocks nothing; messages name field, value, holder and writer as on a file."""
    clock = ferrumdb.ManualClock(1000.0)
    with ferrumdb.open(pg_url, clock=clock) as db, ferrumdb.open(":memory:", clock=clock) as file_db:
        for target in (db, file_db):
            target["a"] = {"tags": ["x", "y"], "n": float(2**60)}
            target.create_index("tags", unique=True)
            target.create_index("n", unique=True)
        for target in (db, file_db):
            with pytest.raises(ferrumdb.DuplicateKeyError) as info:
                target["b"] = {"tags": "x"}
            assert str(info.value) == (
                'duplicate key: the unique index on "tags" already has "x" (in "a"), so "b" cannot hold it too; nothing was written'
            )
            with pytest.raises(ferrumdb.DuplicateKeyError):
                target["b"] = {"tags": [["x", "y"]]}  # the inner array is an element: ["x","y"] is claimed by "a"
            with pytest.raises(ferrumdb.DuplicateKeyError):
                target["b"] = {"tags": "z", "n": 2**60}
            target["b"] = {"tags": "z", "n": 1152921504606847000}  # not 2**60, though jsonb prints 2**60.0 so
            with target.transaction() as tx:  # a swap between two documents
                tx["a"] = {"tags": "z", "n": 1}
                tx["b"] = {"tags": ["x", "y"], "n": 2}
            target.set("t", {"tags": "q", "n": 3}, ttl=5)
        clock.advance(6)
        for target in (db, file_db):
            target["c"] = {"tags": "q", "n": 3}  # the expired holder does not count
        assert dict(db.items()) == dict(file_db.items())
        with pytest.raises(ferrumdb.DuplicateKeyError) as info:
            db.create_index("missing", unique=True)
        assert str(info.value) == (
            'cannot create the unique index on "missing": "a" and another document both hold null there; '
            "change or delete one of them first"
        )
        db.drop_index("tags")
        db["d"] = {"tags": "x", "n": 4}  # no longer unique
        assert db.index_definitions() == {"n": {"unique": True}}
        with pytest.raises(ferrumdb.DuplicateKeyError):
            db["e"] = {"n": 4.0}


def test_unique_claims_agree_with_the_file_on_odd_documents_and_paths(pg_url: str) -> None:
    """Top-level arrays and scalars, numeric-looking segments (-1, " 1", 01, 0) and nested misses:
    each write succeeds or raises DuplicateKeyError on both backends alike."""
    writes = [
        ("arr", [{"e": "x", "a": [5, 6]}, 7]),
        ("obj", {"e": "x"}),
        ("s", "scalar"),
        ("n1", {"a": {"-1": 6}}),
        ("n2", {"a": [1, 2, 6]}),
        ("n3", {"a": {" 1": 2}}),
        ("n4", {"a": {"01": 5}}),
        ("n5", {"a": [{"01": 9}, {"0": 1}]}),
        ("n6", {"a": {"0": [1]}}),
        ("n7", {"b": {}}),
        ("n8", {"b": {"c": None}}),
        ("n9", [[{"e": "x"}]]),
    ]
    fields = ["e", "a.-1", "a. 1", "a.01", "a.0", "b.c"]
    with ferrumdb.open(pg_url) as db, ferrumdb.open(":memory:") as file_db:
        for field in fields:
            for target in (db, file_db):
                target.clear()
                for name in target.indexes():
                    target.drop_index(name)
                target.create_index(field, unique=True)
            for key, value in writes:
                outcomes = []
                for target in (db, file_db):
                    try:
                        target[key] = value
                        outcomes.append("ok")
                    except ferrumdb.DuplicateKeyError:
                        outcomes.append("duplicate")
                assert outcomes[0] == outcomes[1], (field, key, outcomes)
            assert dict(db.items()) == dict(file_db.items()), field


def test_a_version_1_table_is_migrated_to_claims(pg_url: str) -> None:
    """A version 1 table (unique expression index) opens as the current version: claims replace the index, data unchanged."""
    with ferrumdb.open(pg_url) as db:
        db["a"] = {"email": ["x@y", "z@y"]}
        db["b"] = {"email": "w@y"}
        db.create_index("email", unique=True)
        table, claims = db.table, db.table + "_claims"

        def make_version_1(conn: Any) -> None:
            conn.execute(f'DROP TRIGGER "{table}_claims_trigger" ON "{table}"')
            conn.execute(f'DROP TABLE "{claims}"')
            conn.execute(
                f'CREATE UNIQUE INDEX "{db._index_names("email")[1]}" ON "{table}" '
                "((COALESCE(doc #> '{email}', 'null'::jsonb))) WHERE key > ''"
            )
            conn.execute(f"UPDATE \"{table}\" SET doc = jsonb_set(doc, '{{ferrumdb}}', '1') WHERE key = ''")

        db._run(make_version_1)
        db["c"] = {"email": "x@y"}  # version 1 compared whole values only
        del db["c"]
    with ferrumdb.open(pg_url) as db:
        assert db._run(db._meta)["ferrumdb"] == SCHEMA_VERSION
        assert dict(db.items()) == {"a": {"email": ["x@y", "z@y"]}, "b": {"email": "w@y"}}
        with pytest.raises(ferrumdb.DuplicateKeyError):
            db["c"] = {"email": "x@y"}
        names = {r[0] for r in db._run(lambda c: c.execute("SELECT indexname FROM pg_indexes").fetchall())}
        assert db._index_names("email")[1] not in names


def test_transaction_commits_all_or_nothing(pg_db: Any, pg_url: str) -> None:
    """Reads see own writes, other handles see nothing before commit; an exception discards."""
    pg_db["counter"] = 0
    with ferrumdb.open(pg_url) as other:
        with pg_db.transaction() as tx:
            tx["counter"] = tx["counter"] + 1
            tx["log"] = "x"
            assert tx["log"] == "x" and "log" in tx
            assert "log" not in other
        assert other["counter"] == 1 and other["log"] == "x"
    with pytest.raises(RuntimeError):
        with pg_db.transaction() as tx:
            tx["log"] = "y"
            raise RuntimeError
    assert pg_db["log"] == "x"


def test_transaction_conflict(pg_db: Any, pg_url: str) -> None:
    """A key read by a transaction and changed before its commit raises TransactionConflict, writing nothing."""
    pg_db["k"] = 1
    with ferrumdb.open(pg_url) as other:
        tx = pg_db.transaction()
        assert tx["k"] == 1
        assert tx.get("absent") is None
        tx["out"] = "written?"
        other["k"] = 2
        with pytest.raises(ferrumdb.TransactionConflict):
            tx.commit()
        assert "out" not in pg_db
        tx = pg_db.transaction()
        assert tx.get("absent") is None
        tx["out"] = 1
        other["absent"] = "now here"
        with pytest.raises(ferrumdb.TransactionConflict):
            tx.commit()
        assert "out" not in pg_db


def test_export_import_same_format_as_the_file_backend(pg_url: str, tmp_path: Path) -> None:
    """export_jsonl writes the file backend's lines; import_jsonl reads a file backend's export."""
    clock = ferrumdb.ManualClock(1_000_000.0)
    with ferrumdb.open(":memory:", clock=clock) as file_db, ferrumdb.open(pg_url, clock=clock) as db:
        for target in (file_db, db):
            target["a"] = {"x": [1, 2.5], "s": "é"}
            target.set("b", 7, ttl=100)
        file_db.export_jsonl(tmp_path / "file.jsonl")
        assert db.export_jsonl(tmp_path / "pg.jsonl") == 2
        file_lines = [json.loads(x) for x in (tmp_path / "file.jsonl").read_text().splitlines()]
        pg_lines = [json.loads(x) for x in (tmp_path / "pg.jsonl").read_text().splitlines()]
        assert pg_lines == file_lines
        db.clear()
        assert db.import_jsonl(tmp_path / "file.jsonl") == 2
        assert dict(db.items()) == {"a": {"x": [1, 2.5], "s": "é"}, "b": 7}


def test_export_records_indexes_as_the_file_backend_does(pg_url: str, tmp_path: Path) -> None:
    """Both backends start an export with the same index header line; each import recreates them."""
    with ferrumdb.open(":memory:") as file_db, ferrumdb.open(pg_url) as db:
        for target in (file_db, db):
            target["a"] = {"role": "admin", "email": "a@x.io"}
            target.create_index("role")
            target.create_index("email", unique=True)
        file_db.export_jsonl(tmp_path / "file.jsonl")
        assert db.export_jsonl(tmp_path / "pg.jsonl") == 1
        assert (tmp_path / "pg.jsonl").read_text() == (tmp_path / "file.jsonl").read_text()
        db.drop_index("role")
        db.drop_index("email")
        db.clear()
        assert db.import_jsonl(tmp_path / "file.jsonl") == 1
        assert db.index_definitions() == {"email": {"unique": True}, "role": {"unique": False}}
        assert dict(db.items()) == {"a": {"role": "admin", "email": "a@x.io"}}
    with ferrumdb.open(tmp_path / "copy.db") as copy:
        assert copy.import_jsonl(tmp_path / "pg.jsonl") == 1
        assert copy._index_definitions() == [("email", True), ("role", False)]


def test_watch_reports_commits_in_order(pg_db: Any) -> None:
    """watch(prefix) yields (op, key, value) for changes committed after it returned, a transaction's together."""
    pg_db["user:0"] = "before"
    watch = pg_db.watch("user:")
    pg_db["other"] = 1
    pg_db["user:1"] = {"n": 1}
    with pg_db.transaction() as tx:
        tx["user:2"] = 2
        tx.delete("user:0")
    pg_db["user:big"] = "x" * 10_000
    events = [next(watch) for _ in range(4)]
    watch.close()
    assert events[0] == ("set", "user:1", {"n": 1})
    assert sorted(events[1:3]) == [("delete", "user:0", None), ("set", "user:2", 2)]
    assert events[3] == ("set", "user:big", "x" * 10_000)


def test_stats_close_and_repr(pg_url: str) -> None:
    """stats() has the section 1 fields; close() is idempotent and later calls raise ClosedError; no password in repr."""
    db = ferrumdb.open(pg_url)
    db["a"] = 1
    db.get("a")
    stats = db.stats()
    assert {"keys", "gets", "sets", "deletes", "ops_per_sec", "uptime_s", "file_bytes", "live_bytes"} <= set(stats)
    assert stats["keys"] == 1 and stats["sets"] == 1 and stats["gets"] == 1
    assert "ferrum-test-pw" not in repr(db) and "***" in repr(db)
    db.close()
    db.close()
    assert db.closed
    with pytest.raises(ferrumdb.ClosedError):
        db["a"]


def test_read_only_handle_refuses_writes(pg_url: str) -> None:
    """read_only=True reads and raises ReadOnlyError on writes."""
    with ferrumdb.open(pg_url) as db:
        db["a"] = 1
    with ferrumdb.open(pg_url, read_only=True) as db:
        assert db["a"] == 1
        with pytest.raises(ferrumdb.ReadOnlyError):
            db["a"] = 2


def test_version_row_and_refusing_a_newer_schema(pg_url: str) -> None:
    """The table holds a version row (invisible to the API); a newer version is refused with a clear error."""
    with ferrumdb.open(pg_url) as db:
        db["a"] = 1
        assert list(db) == ["a"] and len(db) == 1
        db._run(lambda c: c.execute(f"UPDATE {db._t} SET doc = jsonb_set(doc, '{{ferrumdb}}', '99') WHERE key = ''"))
    with pytest.raises(ValueError, match="version 99"):
        ferrumdb.open(pg_url)


def test_a_version_2_table_opens_as_version_3_unchanged(pg_url: str) -> None:
    """Version 2 -> 3 changes only how writers notify watchers: documents and indexes stay as they were."""
    with ferrumdb.open(pg_url) as db:
        db["a"] = {"email": "x@y"}
        db.create_index("email", unique=True)
        db._run(lambda c: c.execute(f"UPDATE {db._t} SET doc = jsonb_set(doc, '{{ferrumdb}}', '2') WHERE key = ''"))
    with ferrumdb.open(pg_url) as db:
        assert db._run(db._meta)["ferrumdb"] == SCHEMA_VERSION == 3
        assert dict(db.items()) == {"a": {"email": "x@y"}} and db.indexes() == ["email"]
        with pytest.raises(ferrumdb.DuplicateKeyError):
            db["b"] = {"email": "x@y"}


# -- notifying only while someone watches ----------------------------------------------------


class RawListener:
    """A plain LISTEN on the handle's channel (holding no watch slot), and a way to know it has
    received everything committed so far: a sentinel NOTIFY sent last arrives after all of it."""

    def __init__(self, db: Any) -> None:
        self.channel = db._channel
        self.conn = psycopg.connect(db._libpq_url, autocommit=True)
        self.conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self.channel)))
        self.sender = psycopg.connect(db._libpq_url, autocommit=True)

    def received(self) -> list[Any]:
        """Every event notified since the last call (the sentinel excluded)."""
        # "[]": no writer sends an empty batch, and a FerrumDB watch on the channel reads it as nothing.
        self.sender.execute("SELECT pg_notify(%s, '[]')", (self.channel,))
        events: list[Any] = []
        for notify in self.conn.notifies():
            if notify.payload == "[]":
                return events
            events.extend(json.loads(notify.payload))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()
        self.sender.close()


def test_writes_notify_only_while_a_watch_is_open(pg_db: Any, pg_url: str) -> None:
    """With no watch open anywhere, no write sends a NOTIFY; while one is open (in any handle),
    every kind of write does; after it closes (or its handle does), none again. Its slots are held only meanwhile."""

    def write_everything(db: Any, n: int) -> None:
        db["k"] = {"v": n}
        db.set("t", n, ttl=60)
        db.delete("t")
        with db.transaction() as tx:
            tx["x"] = n
        db.update_one("k", {"$set": {"n": n}})
        db.update_many({"n": {"$exists": True}}, {"$set": {"m": n}})
        db.delete_many({"m": -1})
        db.write_many([("w", "1", None)])

    listener = RawListener(pg_db)
    try:
        write_everything(pg_db, 1)
        assert listener.received() == []

        def slots_held() -> int:
            """This table's watch slots held in shared mode (a 64-bit advisory key shows as classid, objid)."""
            base = pg_db._watch_lock_base
            query = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted "
                "AND objsubid = 1 AND classid::bigint = %s AND objid::bigint - %s BETWEEN 0 AND %s"
            )
            params = ((base >> 32) & 0xFFFFFFFF, base & 0xFFFFFFFF, WATCH_SLOTS - 1)
            return int(pg_db._run(lambda c: c.execute(query, params).fetchone()[0]))

        assert slots_held() == 0
        with ferrumdb.open(pg_url) as other:
            watch = other.watch()
            assert slots_held() == WATCH_SLOTS
            write_everything(pg_db, 2)
            ops = [event[:2] for event in listener.received()]
            assert ops == [
                ["set", "k"], ["set", "t"], ["delete", "t"], ["set", "x"], ["set", "k"], ["set", "k"], ["set", "w"],
            ]
            assert [next(watch)[:2] for _ in ops] == [tuple(op) for op in ops]
            watch.close()
            assert slots_held() == 0
            left_open = other.watch()
            assert slots_held() == WATCH_SLOTS
        assert slots_held() == 0 and left_open.closed  # closing the handle ended its watch
        write_everything(pg_db, 3)
        assert listener.received() == []
    finally:
        listener.close()


def test_watches_starting_amid_racing_writers_miss_nothing_committed_after_they_return(pg_url: str) -> None:
    """Writers on their own connections keep counting (one key each, values 1, 2, 3, ...) while
    watches open one after another. A value read after watch() returned was committed by then; every
    later value of that key was committed after, so each must come through the watch, in order."""
    writers, cycles, past = 4, 6, 30
    stop = threading.Event()
    handles = [ferrumdb.open(pg_url) for _ in range(writers)]

    def count(w: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            handles[w][f"w{w}"] = n

    threads = [threading.Thread(target=count, args=(w,)) for w in range(writers)]
    try:
        with ferrumdb.open(pg_url) as db:
            for t in threads:
                t.start()
            for _ in range(cycles):
                with db.watch() as watch:
                    hang_guard = threading.Timer(60, watch.close)  # a missed change ends the loop, not the run
                    hang_guard.start()
                    seen_at = {f"w{w}": db.get(f"w{w}", 0) for w in range(writers)}
                    expected = {key: list(range(n + 1, n + 1 + past)) for key, n in seen_at.items()}
                    got: dict[str, list[int]] = {key: [] for key in seen_at}
                    for op, key, value in watch:
                        assert op == "set"
                        if value > seen_at[key] and len(got[key]) < past:
                            got[key].append(value)
                        if all(len(values) == past for values in got.values()):
                            break
                    hang_guard.cancel()
                    assert got == expected
    finally:
        stop.set()
        for t in threads:
            t.join()
        for handle in handles:
            handle.close()


def test_a_key_too_long_to_announce_is_refused_only_while_watched(pg_db: Any) -> None:
    """A NOTIFY payload holds under 8000 bytes: with a watch open, writing a longer key raises
    ValueError and writes nothing; with none open, nothing needs announcing and it is stored."""
    long_key = "k" * 9000
    pg_db[long_key] = 1
    watch = pg_db.watch()
    with pytest.raises(ValueError, match="too long to announce"):
        pg_db[long_key] = 2
    with pytest.raises(ValueError, match="too long to announce"):
        pg_db.delete(long_key)
    watch.close()
    assert pg_db[long_key] == 1 and pg_db.delete(long_key)


def test_a_watch_starting_during_an_unwatched_write_waits_for_its_commit(pg_db: Any) -> None:
    """A writer that found nobody watching holds its slot until it commits, so a watch starting
    meanwhile returns only after that commit (whose change is then not owed to it), and sees
    every change committed after it returned."""
    conn = psycopg.connect(pg_db._libpq_url, autocommit=True)
    started: list[Any] = []
    try:
        with conn.transaction():
            pg_db._upsert_rows(conn, [("early", "1", None)])
            pg_db._notify_all(conn, [("set", "early", "1")])  # nobody watches: takes a slot, sends nothing
            starter = threading.Thread(target=lambda: started.append(pg_db.watch()))
            starter.start()
            waiting = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' AND NOT granted"
            )
            while not conn.execute(waiting).fetchone()[0]:  # handshake: the watch is queued behind us
                assert starter.is_alive()
            assert started == []
        starter.join()
        watch = started[0]
        pg_db["late"] = 2
        assert next(watch) == ("set", "late", 2)
        watch.close()
    finally:
        conn.close()


# -- errors ----------------------------------------------------------------------------------


def test_bad_urls_raise_value_error() -> None:
    """A malformed URL, port or table name raises ValueError before any connection."""
    for url in [
        "postgresql://u@host:99999/db",
        "postgresql://u@host/db?table=bad-name",
        "postgresql://u@host/db?table=1x",
        "postgresql://u@host/db?sslmode=nonsense&connect_timeout=x y",
    ]:
        with pytest.raises(ValueError):
            ferrumdb.open(url)
    with pytest.raises(ValueError, match="fsync"):
        ferrumdb.open("postgresql://u@host/db", fsync="always")


def test_url_parameters_reach_libpq_intact() -> None:
    """FerrumDB's own parameters are taken out; libpq's keep their encoding (a space stays %20, not +)."""
    from ferrumdb.postgres import parse_url

    parsed = parse_url("postgresql://u:pw@h:5433/db?table=t1&options=-c%20lock_timeout%3D5&purge_interval=2.5")
    assert parsed.table == "t1" and parsed.purge_interval == 2.5 and parsed.host == "h:5433"
    assert "options=-c%20lock_timeout%3D5" in parsed.libpq_url
    assert "table=" not in parsed.libpq_url and "purge_interval" not in parsed.libpq_url
    assert "connect_timeout=10" in parsed.libpq_url


def test_unreachable_server_names_the_host() -> None:
    """A port with nothing listening raises ConnectionError naming host and port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        ferrumdb.open(f"postgresql://u:p@127.0.0.1:{port}/db?connect_timeout=2")


def test_bad_credentials() -> None:
    """A wrong password raises PermissionError saying the credentials were refused."""
    url = server_url()
    bad = url.replace(":ferrum-test-pw@", ":wrong@") if ":ferrum-test-pw@" in url else None
    if bad is None:
        pytest.skip("the server URL does not use the test password from scripts/pg.sh")
    with pytest.raises(PermissionError, match="credentials"):
        ferrumdb.open(bad)


def test_lost_connection_mid_transaction_writes_nothing_and_next_call_reconnects(pg_db: Any) -> None:
    """The server dropping the connection inside a commit raises ConnectionError; nothing was written; the next call works."""
    pg_db["k"] = 0
    notify_all = pg_db._notify_all

    def kill_own_connection(conn: Any, events: Any) -> None:
        notify_all(conn, events)
        pid = conn.info.backend_pid
        with psycopg.connect(server_url(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 60000)", (pid,))  # returns once it has ended

    pg_db._notify_all = kill_own_connection
    with pytest.raises(ConnectionError, match="lost the connection"):
        with pg_db.transaction() as tx:
            tx["k"] = 1
            tx["new"] = 1
    del pg_db._notify_all
    assert pg_db["k"] == 0 and "new" not in pg_db


def test_lost_connection_under_a_single_key_call_raises_and_the_next_call_reconnects(pg_db: Any) -> None:
    """get/set/delete/in/ttl go to libpq directly: a dropped connection still raises ConnectionError,
    and the next call opens a new one (its statements prepared again)."""
    pg_db["k"] = 1
    calls = [
        lambda: pg_db.__setitem__("k", 2),
        lambda: pg_db["k"],
        lambda: "k" in pg_db,
        lambda: pg_db.ttl("k"),
        lambda: pg_db.delete("other"),
    ]
    for call in calls:
        pid = pg_db._conn().info.backend_pid
        with psycopg.connect(server_url(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 60000)", (pid,))  # returns once it has ended
        with pytest.raises(ConnectionError, match="lost the connection"):
            call()
    assert pg_db["k"] == 1 and "k" in pg_db and pg_db.ttl("k") is None
    pg_db["k"] = 3
    assert pg_db.get("k") == 3 and pg_db.delete("k") and "k" not in pg_db


def test_without_psycopg_the_error_names_the_extra() -> None:
    """Opening a postgresql:// URL without psycopg raises ImportError naming pip install ferrumdb[postgres]."""
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import ferrumdb\n"
        "try:\n    ferrumdb.open('postgresql://u@h/db')\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install ferrumdb[postgres]" in out


def test_two_tables_in_one_database_are_separate(pg_url: str) -> None:
    """?table= picks the table: two names are two databases."""
    base = server_url()
    other = "t_other_" + pg_url.rsplit("=", 1)[1]
    try:
        with ferrumdb.open(pg_url) as a, ferrumdb.open(table_url(base, other)) as b:
            a["k"] = "a"
            assert "k" not in b
    finally:
        drop_table(base, other)


def test_watch_unpacks_a_bulk_write_in_order(pg_db: Any) -> None:
    """A bulk write's events (packed several to a NOTIFY payload) all arrive, in write order."""
    watch = pg_db.watch()
    rows = [(f"bulk:{i:03}", json.dumps({"i": i, "pad": "x" * 100}), None) for i in range(200)]
    pg_db.write_many(rows)
    events = [next(watch) for _ in range(200)]
    watch.close()
    assert events == [("set", f"bulk:{i:03}", {"i": i, "pad": "x" * 100}) for i in range(200)]


def test_the_postgres_handle_is_a_ferrumdb_with_every_public_method(pg_db: Any) -> None:
    """isinstance(handle, ferrumdb.FerrumDB) holds, and it has every public method of the file handle:
    those that are the server's business (backup, rekey) say so instead of being missing; Studio
    serves the table (tests_py/test_postgres_tools.py)."""
    assert isinstance(pg_db, ferrumdb.FerrumDB) and issubclass(type(pg_db), ferrumdb.FerrumDB)
    public = {name for name in dir(ferrumdb.FerrumDB) if not name.startswith("_")}
    assert sorted(name for name in public if not hasattr(pg_db, name)) == []
    for call in (lambda: pg_db.backup("x.db"), lambda: pg_db.rekey("pw")):
        with pytest.raises(NotImplementedError):
            call()
    assert pg_db.stop_studio() is False  # none running
    assert not isinstance(object(), ferrumdb.FerrumDB)  # registration made the check no looser


def test_every_open_spelling_routes_a_url_to_postgresql(pg_url: str, monkeypatch: Any) -> None:
    """ferrumdb.open, FerrumDB.open, FerrumDB(url) and open_from_env all give the PostgreSQL handle for a URL."""
    from ferrumdb.postgres import PostgresDB

    monkeypatch.setenv("FERRUMDB_FSYNC", "always")  # a file policy; PostgreSQL's durability is the server's
    for opener in (ferrumdb.open, ferrumdb.FerrumDB.open, ferrumdb.FerrumDB, ferrumdb.open_from_env, PostgresDB.open):
        with opener(pg_url) as db:
            assert isinstance(db, PostgresDB) and isinstance(db, ferrumdb.FerrumDB), opener
            db[opener.__qualname__] = 1
    with ferrumdb.open(pg_url) as db:
        assert sorted(db) == ["FerrumDB", "FerrumDB.open", "PostgresDB.open", "open", "open_from_env"]
    for opener in (ferrumdb.open, ferrumdb.FerrumDB.open, ferrumdb.FerrumDB):
        with pytest.raises(ValueError, match="exclusive"):
            opener(pg_url, exclusive=True)
        with pytest.raises(ValueError, match="encryption_key"):
            opener(pg_url, encryption_key="pw")
