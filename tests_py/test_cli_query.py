"""The REPL's document commands, driven through ``python -m ferrumdb PATH`` in script mode (README "The command line"):
``INDEX <field>``, ``FIND <field> <json>``, ``QUERY <json-filter>``, ``EXPLAIN <json-filter>``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ferrumdb
from tests_py.test_cli import cli, lines, values

PEOPLE: dict[str, Any] = {
    "p:1": {"name": "ann", "age": 31, "role": "admin", "tags": ["a", "b"], "address": {"city": "Paris"}},
    "p:2": {"name": "bob", "age": 25, "role": "user", "tags": ["b"], "address": {"city": "Oslo"}},
    "p:3": {"name": "cy", "age": 40, "role": "user", "address": {"city": "Paris"}},
    "my key": {"name": "dee", "age": 52, "role": "admin", "address": {"city": "Rome"}},
}


def ok(path: Path, script: str) -> list[Any]:
    """Run ``script``, which must succeed with nothing on stderr; its output lines, each parsed as JSON."""
    proc = cli(path, script)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    return values(proc)


def query_rows(line: Any) -> list[tuple[str, Any]]:
    """A QUERY output line (``[[key, doc], ...]``) as ``(key, document)`` pairs, like db.query."""
    assert isinstance(line, list)
    return [(key, doc) for key, doc in line]


@pytest.fixture
def people(db_path: Path) -> Path:
    """A database file holding PEOPLE, closed again."""
    with ferrumdb.open(db_path) as db:
        db.update(PEOPLE)
    return db_path


# -- INDEX ----------------------------------------------------------------------------------------


def test_index_prints_ok_and_is_remembered(people: Path) -> None:
    """INDEX prints OK; the index is persisted, so Python sees it after the CLI exits."""
    assert ok(people, "INDEX age\nINDEX address.city\n") == ["OK", "OK"]
    with ferrumdb.open(people) as db:
        assert db.indexes() == ["address.city", "age"]


def test_index_twice_is_ok(people: Path) -> None:
    """Creating an index that exists is not an error (scripts can be re-run)."""
    assert ok(people, "INDEX age\nindex age\n") == ["OK", "OK"]
    assert ok(people, "INDEX age\n") == ["OK"]


def test_index_bad_field_fails(people: Path) -> None:
    """A malformed field path is an error on stderr and a non-zero exit; nothing is created."""
    proc = cli(people, "INDEX a..b\nINDEX\nCOUNT\n")
    assert proc.returncode == 1
    assert values(proc) == [4]
    err = proc.stderr.splitlines()
    assert err[0].startswith('error: line 1: invalid field "a..b"'), proc.stderr
    assert err[1].startswith("error: line 2: INDEX needs a field name"), proc.stderr
    with ferrumdb.open(people) as db:
        assert db.indexes() == []


def test_cli_writes_keep_python_indexes_exact(people: Path) -> None:
    """SET and DELETE in the CLI keep an index created from Python exact."""
    with ferrumdb.open(people) as db:
        db.create_index("role")
    ok(people, 'SET p:4 {"role": "admin"}\nDELETE p:1\nSET p:2 {"role": "admin"}\n')
    with ferrumdb.open(people) as db:
        assert db.find("role", "admin") == ["my key", "p:2", "p:4"]
        assert db.explain({"role": "admin"})["index"] == "role"


# -- FIND -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_find_prints_one_key_per_line(people: Path, indexed: bool) -> None:
    """FIND prints the matching keys in key order (one JSON array), the same with or without an index."""
    if indexed:
        assert ok(people, "INDEX address.city\nINDEX tags\nINDEX age\n") == ["OK"] * 3
    out = ok(people, 'FIND address.city "Paris"\nFIND tags "b"\nFIND age 52\nFIND age "52"\n')
    # "52" (a string) matches nothing.
    assert out == [["p:1", "p:3"], ["p:1", "p:2"], ["my key"], []]


def test_find_matches_python(people: Path) -> None:
    """FIND answers exactly what db.find answers."""
    with ferrumdb.open(people) as db:
        expected = db.find("role", "user")
    assert ok(people, 'FIND role "user"\n') == [expected] == [["p:2", "p:3"]]


def test_find_nothing_prints_nothing(people: Path) -> None:
    """No match: an empty array, exit 0."""
    assert ok(people, 'FIND name "zed"\n') == [[]]


def test_find_errors(people: Path) -> None:
    """FIND without a value, or with a value that is not JSON, fails the script."""
    proc = cli(people, "FIND role\nFIND role admin\nFIND\nCOUNT\n")
    assert proc.returncode == 1
    assert values(proc) == [4]
    err = proc.stderr.splitlines()
    assert len(err) == 3, proc.stderr
    assert "FIND needs a JSON value" in err[0]
    assert "invalid JSON value" in err[1] and "strings need quotes" in err[1]
    assert "FIND needs a field name" in err[2]


# -- QUERY ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_query_prints_key_tab_document(people: Path, indexed: bool) -> None:
    """QUERY prints one line, ``[[key, document], ...]`` in key order, as db.query returns them."""
    filt = {"age": {"$gte": 30}, "role": {"$in": ["admin", "user"]}}
    out = ok(people, ("INDEX age\n" if indexed else "") + f"QUERY {json.dumps(filt)}\n")
    if indexed:
        assert out.pop(0) == "OK"
    assert len(out) == 1
    rows = query_rows(out[0])
    assert rows == [("my key", PEOPLE["my key"]), ("p:1", PEOPLE["p:1"]), ("p:3", PEOPLE["p:3"])]
    with ferrumdb.open(people) as db:
        assert rows == db.query(filt)


def test_query_operators_and_nested_fields(people: Path) -> None:
    """$or, $exists, $ne and dotted paths work through the CLI as in Python."""
    filters = [
        {"$or": [{"address.city": "Oslo"}, {"name": "dee"}]},
        {"tags": {"$exists": False}},
        {"role": {"$ne": "admin"}, "age": {"$lt": 30}},
        {},
    ]
    script = "".join(f"QUERY {json.dumps(f)}\n" for f in filters)
    out = ok(people, script)
    assert len(out) == len(filters)
    with ferrumdb.open(people) as db:
        for f, line in zip(filters, out):
            assert query_rows(line) == db.query(f), f


def test_query_keeps_field_order_and_unicode(db_path: Path) -> None:
    """Documents print as stored: field order kept, non-ASCII text as is."""
    with ferrumdb.open(db_path) as db:
        db["k"] = {"z": 1, "a": "héllo \U0001f600", "m": [1.5, None]}
    assert lines(cli(db_path, 'QUERY {"z": 1}\n')) == ['[["k",{"z":1,"a":"héllo \U0001f600","m":[1.5,null]}]]']


def test_query_no_match_prints_nothing(people: Path) -> None:
    assert ok(people, 'QUERY {"age": {"$gt": 100}}\n') == [[]]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('QUERY {"age": {"$foo": 1}}', "invalid filter at filter.age"),
        ("QUERY [1, 2]", "expected an object"),
        ('QUERY {"age": {"$in": 5}}', "invalid filter at filter.age"),
        ("QUERY {bad", "invalid JSON value"),
        ("QUERY", "QUERY needs a JSON filter"),
        ('QUERY {"a": 1} {"b": 2}', "trailing characters"),
    ],
)
def test_query_errors_fail_the_script(people: Path, line: str, needle: str) -> None:
    """A bad filter or bad JSON is reported on stderr; the script goes on and exits 1."""
    proc = cli(people, f"{line}\nCOUNT\n")
    assert proc.returncode == 1
    assert values(proc) == [4]
    assert proc.stderr.startswith("error: line 1: "), proc.stderr
    assert needle in proc.stderr


# -- EXPLAIN --------------------------------------------------------------------------------------


def test_explain_prints_the_plan(people: Path) -> None:
    """EXPLAIN prints the plan as one line of JSON: a scan without an index, the index with one."""
    out = ok(people, 'EXPLAIN {"age": 31}\nINDEX age\nEXPLAIN {"age": 31}\nEXPLAIN {"age": {"$gte": 30}}\n')
    assert out[1] == "OK"
    before, after, ranged = out[0], out[2], out[3]
    assert (before["index"], before["scan"]) == (None, True)
    assert (after["index"], after["scan"], after["estimated_rows"]) == ("age", False, 1)
    assert (ranged["index"], ranged["scan"]) == ("age", False)
    with ferrumdb.open(people) as db:
        assert after == db.explain({"age": 31})
        assert ranged == db.explain({"age": {"$gte": 30}})


def test_explain_errors(people: Path) -> None:
    proc = cli(people, 'EXPLAIN {"$nor": []}\nEXPLAIN\n')
    assert proc.returncode == 1
    err = proc.stderr.splitlines()
    assert err[0].startswith("error: line 1: invalid filter at filter.$nor"), proc.stderr
    assert err[1].startswith("error: line 2: EXPLAIN needs a JSON filter"), proc.stderr


# -- HELP ---------------------------------------------------------------------------------------------


def test_help_lists_document_commands(db_path: Path) -> None:
    """HELP lists the new commands with their usage."""
    [listing] = values(cli(db_path, "HELP\n"))
    usages = [c["usage"] for c in listing]
    for usage in ["INDEX <field>", "FIND <field> <json>", "QUERY <json-filter>", "EXPLAIN <json-filter>"]:
        assert any(u.startswith(usage) for u in usages), usage


@pytest.mark.parametrize("command", ["INDEX", "FIND", "QUERY", "EXPLAIN"])
def test_help_examples_run(people: Path, command: str) -> None:
    """Each command's HELP shows an example, and the example runs successfully."""
    proc = cli(people, f"HELP {command.lower()}\n")
    assert proc.returncode == 0
    [topic] = values(proc)
    assert topic["usage"].startswith(command + " ")
    example = topic["example"]
    assert example.upper().startswith(command)
    run = cli(people, example + "\n")
    assert (run.returncode, run.stderr) == (0, "")
