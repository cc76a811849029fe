"""Exports record the database's indexes, imports recreate them (docs/python-api.md, "Export and
import"), and export files get ordinary permissions.

The record is a first line that is an ordinary entry expired in 1970, so an importer that knows
nothing of it skips it as expired; this importer recognises it and creates the indexes before
writing, unless told not to (``indexes=False``, ``ferrumdb import --no-indexes``)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

HEADER_KEY = "ferrumdb:export"


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def header(indexes: list[dict[str, Any]]) -> str:
    return json.dumps({"key": HEADER_KEY, "value": {"ferrumdb_export": 1, "indexes": indexes}, "expires_at": 1}) + "\n"


def fill(db: ferrumdb.FerrumDB) -> None:
    db["u1"] = {"role": "admin", "email": "a@x.io"}
    db["u2"] = {"role": "user", "email": "b@x.io"}
    db.create_index("role")
    db.create_index("email", unique=True)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_export_file_follows_the_umask(tmp_path: Path, db: ferrumdb.FerrumDB, umask: int) -> None:
    db["a"] = 1
    out = tmp_path / "out.jsonl"
    old = os.umask(umask)
    try:
        db.export_jsonl(out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_export_records_indexes_in_a_first_line(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    fill(db)
    out = tmp_path / "out.jsonl"
    assert db.export_jsonl(out) == 2  # the header is not a record
    first, *records = lines(out)
    assert first == {
        "key": HEADER_KEY,
        "value": {
            "ferrumdb_export": 1,
            "indexes": [{"field": "email", "unique": True}, {"field": "role", "unique": False}],
        },
        "expires_at": 1,
    }
    assert [r["key"] for r in records] == ["u1", "u2"]


def test_export_without_indexes_has_no_header(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    db["a"] = 1
    out = tmp_path / "out.jsonl"
    db.export_jsonl(out)
    assert lines(out) == [{"key": "a", "value": 1}]


def test_import_recreates_indexes_unique_included(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    fill(db)
    out = tmp_path / "out.jsonl"
    db.export_jsonl(out)
    with ferrumdb.open(tmp_path / "copy.db") as copy:
        assert copy.import_jsonl(out) == 2
        assert copy._index_definitions() == [("email", True), ("role", False)]
        assert HEADER_KEY not in copy
        assert copy.explain({"role": "admin"})["index"] == "role"
        with pytest.raises(ferrumdb.DuplicateKeyError):
            copy["u3"] = {"email": "a@x.io"}
    # They are stored, not only built: a reopen has them.
    with ferrumdb.open(tmp_path / "copy.db") as copy:
        assert copy._index_definitions() == [("email", True), ("role", False)]


def test_import_with_indexes_false_skips_them(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    fill(db)
    out = tmp_path / "out.jsonl"
    db.export_jsonl(out)
    with ferrumdb.open(tmp_path / "copy.db") as copy:
        assert copy.import_jsonl(out, indexes=False) == 2
        assert copy.indexes() == []
        assert sorted(copy) == ["u1", "u2"]


def test_import_keeps_an_existing_index(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    fill(db)
    out = tmp_path / "out.jsonl"
    db.export_jsonl(out)
    assert db.import_jsonl(out) == 2
    assert db._index_definitions() == [("email", True), ("role", False)]


def test_header_is_an_expired_entry_to_rules_that_do_not_know_it(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    """Only key/value/expires_at, a valid key and an expiry in 1970: an older importer checks it like
    any line and skips it. Where it is not the first line, this importer does exactly that too."""
    src = tmp_path / "in.jsonl"
    src.write_text('{"key": "a", "value": 1}\n' + header([{"field": "role", "unique": False}]), encoding="utf-8")
    assert db.import_jsonl(src) == 1
    assert db.indexes() == []
    assert HEADER_KEY not in db
    assert dict(db.items()) == {"a": 1}


def test_a_unique_index_the_file_breaks_writes_nothing(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        header([{"field": "role", "unique": False}, {"field": "email", "unique": True}])
        + '{"key": "u1", "value": {"email": "same"}}\n{"key": "u2", "value": {"email": "same"}}\n',
        encoding="utf-8",
    )
    with pytest.raises(ferrumdb.DuplicateKeyError, match="same"):
        db.import_jsonl(src)
    assert len(db) == 0
    assert db.indexes() == []  # the ones this import created are dropped again
    # Without the indexes the same file imports.
    assert db.import_jsonl(src, indexes=False) == 2


def test_a_bad_line_creates_no_index(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(header([{"field": "role", "unique": False}]) + '{"key": "u1"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: missing field `value`"):
        db.import_jsonl(src)
    assert (len(db), db.indexes()) == (0, [])


def test_an_index_with_the_other_setting_is_an_error(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    db.create_index("email")
    src = tmp_path / "in.jsonl"
    src.write_text(header([{"field": "email", "unique": True}]) + '{"key": "u1", "value": {}}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="already exists"):
        db.import_jsonl(src)
    assert len(db) == 0
    assert db._index_definitions() == [("email", False)]


def test_a_later_header_version_with_more_fields_still_works(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    src = tmp_path / "in.jsonl"
    line = {"key": HEADER_KEY, "value": {"ferrumdb_export": 2, "indexes": [{"field": "n", "sparse": True}], "extra": 1}, "expires_at": 1}
    src.write_text(json.dumps(line) + '\n{"key": "a", "value": {"n": 1}}\n', encoding="utf-8")
    assert db.import_jsonl(src) == 1
    assert db.indexes() == ["n"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferrumdb", *args], capture_output=True, text=True, encoding="utf-8", stdin=subprocess.DEVNULL
    )


def test_cli_import_creates_indexes_and_no_indexes_skips(tmp_path: Path, db_path: Path) -> None:
    with ferrumdb.open(db_path) as db:
        fill(db)
    out = tmp_path / "out.jsonl"
    assert run("export", str(db_path), str(out)).returncode == 0
    assert lines(out)[0]["key"] == HEADER_KEY
    proc = run("import", str(tmp_path / "a.db"), str(out))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == {"imported": 2, "expired": 0, "indexes_created": ["email", "role"]}
    with ferrumdb.open(tmp_path / "a.db") as copy:
        assert copy._index_definitions() == [("email", True), ("role", False)]
    proc = run("import", "--no-indexes", str(tmp_path / "b.db"), str(out))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == {"imported": 2, "expired": 0, "indexes_created": []}
    with ferrumdb.open(tmp_path / "b.db") as copy:
        assert copy.indexes() == []


def test_cli_import_enforces_the_databases_unique_index(tmp_path: Path, db_path: Path) -> None:
    """`ferrumdb import` opens the index layer, so a unique index already in the database holds."""
    with ferrumdb.open(db_path) as db:
        db.create_index("email", unique=True)
        db["u1"] = {"email": "taken"}
    src = tmp_path / "in.jsonl"
    src.write_text('{"key": "u2", "value": {"email": "taken"}}\n', encoding="utf-8")
    proc = run("import", "--no-indexes", str(db_path), str(src))
    assert proc.returncode == 1
    assert "taken" in proc.stderr
    with ferrumdb.open(db_path) as db:
        assert sorted(db) == ["u1"]
