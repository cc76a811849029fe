"""The REPL's update, index, TTL and relaxed-JSON commands, run as a script (``python -m ferrumdb PATH``
with a piped stdin, README "The command line"): what they print (one JSON line each), what Python then reads,
and that a refused command exits 1 and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ferrumdb
from tests_py.test_cli import cli, values

PEOPLE: dict[str, Any] = {
    "p:1": {"name": "ann", "age": 31, "role": "admin", "tags": ["a", "b"], "address": {"city": "Paris"}},
    "p:2": {"name": "bob", "age": 25, "role": "user", "tags": ["b"], "address": {"city": "Oslo"}},
    "p:3": {"name": "cy", "age": 40, "role": "user", "address": {"city": "Paris"}},
    "team:1": {"name": "ops", "size": 3},
}


@pytest.fixture
def people(db_path: Path) -> Path:
    with ferrumdb.open(db_path) as db:
        db.update(PEOPLE)
    return db_path


def ok(path: Path, script: str) -> list[Any]:
    """Run ``script``, which must succeed with nothing on stderr; its output lines, parsed as JSON."""
    proc = cli(path, script)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    return values(proc)


def refused(path: Path, line: str) -> str:
    """Run one command that must fail: exit status 1, nothing on stdout; its error line."""
    proc = cli(path, line + "\n")
    assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
    [err] = proc.stderr.splitlines()
    assert err.startswith("error: line 1: "), err
    return err


def contents(path: Path) -> dict[str, Any]:
    with ferrumdb.open(path) as db:
        return dict(db.items())


# -- UPDATE / UPDATEMANY / DELETEMANY ------------------------------------------------------------


def test_update_prints_the_new_document(people: Path) -> None:
    """UPDATE applies operators atomically and prints the document as written; Python reads the same."""
    [doc] = ok(people, 'UPDATE p:2 {"$inc": {"age": 1}, "$push": {"tags": "c"}, "$set": {"address.city": "Rome"}}\n')
    assert doc == {"name": "bob", "age": 26, "role": "user", "tags": ["b", "c"], "address": {"city": "Rome"}}
    with ferrumdb.open(people) as db:
        assert db["p:2"] == doc


def test_update_missing_key_and_upsert(people: Path) -> None:
    """UPDATE of a missing key prints null and writes nothing; with UPSERT it starts from {}."""
    assert ok(people, 'UPDATE nobody {"$set": {"a": 1}}\n') == [None]
    assert "nobody" not in contents(people)
    assert ok(people, 'UPDATE nobody {"$inc": {"n": 2}} UPSERT\n') == [{"n": 2}]
    assert contents(people)["nobody"] == {"n": 2}


def test_update_keeps_the_ttl(people: Path) -> None:
    """An UPDATE keeps the key's TTL, as db.update_one does."""
    with ferrumdb.open(people) as db:
        db.set("p:1", PEOPLE["p:1"], ttl=3600)
    ok(people, 'UPDATE p:1 {"$set": {"role": "owner"}}\n')
    with ferrumdb.open(people) as db:
        ttl = db.ttl("p:1")
        assert ttl is not None and 3000 < ttl <= 3600
        assert db["p:1"]["role"] == "owner"


@pytest.mark.parametrize(
    ("line", "needles"),
    [
        ('UPDATE p:1 {"$inc": {"name": 1}}', ['"p:1"', "name"]),
        ('UPDATEMANY {"age": {"$gt": 0}} {"$inc": {"name": 1}}', ["name"]),
        ('UPDATE p:1 {"$frob": {"a": 1}}', ["$frob"]),
        ('UPDATE p:1 {"name": "plain"}', ["operator"]),
        ('UPDATE p:1 {"$set": {"a": 1}', ["invalid JSON value", "cut short"]),
        ("UPDATE p:1 {$set: {a: }}", ["invalid JSON value", "expected a value"]),
        ('UPDATEMANY {"age": {"$bogus": 1}} {"$set": {"a": 1}}', ["invalid filter"]),
        ('DELETEMANY {"age": {"$bogus": 1}}', ["invalid filter"]),
        ("DELETEMANY", ["DELETEMANY needs a JSON filter"]),
    ],
)
def test_refused_updates_exit_1_and_write_nothing(people: Path, line: str, needles: list[str]) -> None:
    """A type error ($inc on a string), an unknown operator, bad JSON or a bad filter: the library's message,
    exit status 1, and nothing written (checked after reopening)."""
    err = refused(people, line)
    for needle in needles:
        assert needle in err, err
    assert contents(people) == PEOPLE


def test_update_many_and_delete_many(people: Path) -> None:
    """UPDATEMANY prints how many documents changed, DELETEMANY how many it removed; PREFIX limits both."""
    out = ok(
        people,
        'UPDATEMANY {"role": "user"} {"$set": {"active": false}}\n'
        'updateMany {"role": "user"} {"$set": {"active": false}}\n'
        "UPDATEMANY {} {$inc: {visits: 1}} PREFIX p:\n"
        'DELETEMANY {"active": false} PREFIX p:\n'
        "deleteMany {} PREFIX team:\n",
    )
    assert out == [2, 0, 3, 2, 1]
    assert contents(people) == {"p:1": {**PEOPLE["p:1"], "visits": 1}}


# -- unique indexes ------------------------------------------------------------------------------


def test_unique_index_refuses_a_duplicate(people: Path) -> None:
    """Under INDEX name UNIQUE, a SET, UPDATE or UPDATEMANY that would duplicate a name fails with the library's
    DuplicateKeyError message and writes nothing."""
    assert ok(people, "INDEX name UNIQUE\nINDEXES\n") == ["OK", [{"field": "name", "unique": True}]]
    for line in [
        'SET p:9 {"name": "ann"}',
        'UPDATE p:2 {"$set": {"name": "ann"}}',
        'UPDATEMANY {"role": "user"} {"$set": {"name": "zed"}}',
    ]:
        err = refused(people, line)
        assert "duplicate key: the unique index on \"name\"" in err, err
        assert "nothing was written" in err
    assert contents(people) == PEOPLE
    with ferrumdb.open(people) as db, pytest.raises(ferrumdb.DuplicateKeyError) as raised:
        db["p:9"] = {"name": "ann"}
    # The CLI shows the very message Python raises.
    assert str(raised.value) in refused(people, 'SET p:9 {"name": "ann"}')


def test_unique_index_over_duplicates_is_refused(people: Path) -> None:
    """INDEX f UNIQUE over existing duplicates fails naming a duplicated value; no index is created."""
    err = refused(people, "INDEX role UNIQUE")
    assert '"user"' in err, err
    with ferrumdb.open(people) as db:
        assert db.indexes() == []


def test_indexes_and_drop_index(people: Path) -> None:
    """INDEXES lists fields with their uniqueness; DROP INDEX prints 1, then 0; Python sees the same."""
    out = ok(people, "INDEX age\nINDEX name UNIQUE\nINDEXES\nDROP INDEX age\ndrop index age\nINDEXES\n")
    assert out == [
        "OK",
        "OK",
        [{"field": "age", "unique": False}, {"field": "name", "unique": True}],
        1,
        0,
        [{"field": "name", "unique": True}],
    ]
    with ferrumdb.open(people) as db:
        assert db.indexes() == ["name"]
    assert "DROP INDEX <field>" in refused(people, "DROP age")


# -- DISTINCT, COUNT, QUERY options --------------------------------------------------------------


def test_distinct_and_count_match_python(people: Path) -> None:
    """DISTINCT and COUNT [filter] [PREFIX] print what db.distinct and db.count return."""
    out = ok(
        people,
        "DISTINCT address.city\nDISTINCT tags {age: {$lt: 35}}\nCOUNT {role: 'user'}\nCOUNT PREFIX p:\n"
        "DISTINCT name {} PREFIX team:\n",
    )
    with ferrumdb.open(people) as db:
        assert out == [
            db.distinct("address.city"),
            db.distinct("tags", {"age": {"$lt": 35}}),
            db.count({"role": "user"}),
            db.count(prefix="p:"),
            db.distinct("name", {}, prefix="team:"),
        ]
    assert out[:4] == [["Oslo", "Paris"], ["a", "b"], 2, 3]


def test_query_options_match_python(people: Path) -> None:
    """QUERY with SORT, SKIP, LIMIT, FIELDS and PREFIX prints db.query's rows."""
    [rows] = ok(people, "QUERY {} SORT -age SKIP 1 LIMIT 2 FIELDS name,address.city PREFIX p:\n")
    with ferrumdb.open(people) as db:
        expected = db.query({}, sort="-age", skip=1, limit=2, fields=["name", "address.city"], prefix="p:")
    assert [tuple(row) for row in rows] == expected


def test_piped_output_is_never_cut(db_path: Path) -> None:
    """Only a person at a terminal gets the first 100 results: piped KEYS and QUERY print them all."""
    with ferrumdb.open(db_path) as db:
        db.update({f"k{i:04}": {"i": i} for i in range(1500)})
    keys, rows = ok(db_path, "KEYS\nQUERY {}\n")
    assert len(keys) == 1500 and len(rows) == 1500
    assert ok(db_path, "KEYS k1 LIMIT 3\n") == [["k1000", "k1001", "k1002"]]


# -- TTL commands, DEL, relaxed JSON -------------------------------------------------------------


def test_set_ex_ttl_persist(db_path: Path) -> None:
    """SET key json EX seconds sets a TTL Python sees; TTL prints the seconds left; PERSIST removes it."""
    out = ok(db_path, "SET s {user: 'ann'} EX 600\nTTL s\nSET p 1\nTTL p\n")
    assert out[0] == "OK" and out[3] is None
    assert 590 < out[1] <= 600
    with ferrumdb.open(db_path) as db:
        left = db.ttl("s")
        assert left is not None and left <= out[1]
        assert db["s"] == {"user": "ann"}
    assert ok(db_path, "PERSIST s\nPERSIST s\nTTL s\n") == [1, 0, None]
    with ferrumdb.open(db_path) as db:
        assert db.ttl("s") is None
        assert db["s"] == {"user": "ann"}


def test_ttl_errors(db_path: Path) -> None:
    """TTL and PERSIST of a missing key, and a bad EX, fail with exit status 1; nothing is written."""
    assert refused(db_path, "TTL nope") == "error: line 1: key not found: nope"
    assert refused(db_path, "PERSIST nope") == "error: line 1: key not found: nope"
    assert "EX takes seconds" in refused(db_path, "SET k 1 EX 0")
    assert "EX takes seconds" in refused(db_path, "SET k 1 EX later")
    assert contents(db_path) == {}


def test_del_is_delete(db_path: Path) -> None:
    """DEL is an alias of DELETE."""
    assert ok(db_path, "SET a 1\nDEL a\ndel a\n") == ["OK", 1, 0]
    assert "did you mean DEL?" in refused(db_path, "DLE a")


def test_single_quotes_and_bare_keys(db_path: Path) -> None:
    """Typed JSON may use single quotes and unquoted keys; the stored value is ordinary JSON."""
    ok(db_path, "SET u {name: 'O\\'Brien', \"tags\": ['a', \"b\"], nested: {$weird_key: 1}}\n")
    with ferrumdb.open(db_path) as db:
        assert db["u"] == {"name": "O'Brien", "tags": ["a", "b"], "nested": {"$weird_key": 1}}
        assert db.get_json("u") == json.dumps(db["u"], separators=(",", ":"))


def test_bad_relaxed_json_says_where(db_path: Path) -> None:
    """Bad typed JSON is reported with its line and column and a hint; nothing is written."""
    err = refused(db_path, "SET k {name: alice}")
    assert 'unquoted string "alice"; strings need quotes' in err and "line 1 column 8" in err, err
    err = refused(db_path, "SET k {'a': True}")
    assert "JSON spells it true" in err, err
    assert contents(db_path) == {}
