"""``db.export_jsonl`` / ``db.import_jsonl`` and ``ferrumdb export|import`` (README "Use it from Python" and "The command line"):
one ``{"key": ..., "value": ...}`` object per line, ``"expires_at"`` (Unix seconds) for keys with a TTL;
round trips keep everything; a bad file is refused whole, naming the line."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ferrumdb
from tests_py.test_cli import cli

DOCS: dict[str, Any] = {
    "user:1": {"name": "alice", "tags": ["a", "b"], "address": {"city": "Paris", "geo": [48.85, 2.35]}},
    "héllo wörld \U0001f600": "unicode key",
    'quote " and \\ and \n newline': [None, True, False, 0, -1.5],
    "big": {"u64": 2**64 - 1, "i64": -(2**63), "float": 1.5e300},
    "deep": {"a": {"b": {"c": {"d": [[[[]]]]}}}},
    "empty": {},
}


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_round_trip(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    """Export then import into a fresh database gives back every key and value exactly."""
    db.update(DOCS)
    out = tmp_path / "out.jsonl"
    assert db.export_jsonl(out) == len(DOCS)
    with ferrumdb.open(tmp_path / "copy.db") as copy:
        assert copy.import_jsonl(out) == len(DOCS)
        assert dict(copy.items()) == DOCS
        assert copy.keys() == db.keys()


def test_format_is_one_object_per_line(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    """Each line is exactly {"key", "value"} in key order; str paths work as well as Path."""
    db.update(DOCS)
    out = tmp_path / "out.jsonl"
    db.export_jsonl(str(out))
    lines = read_lines(out)
    assert [line["key"] for line in lines] == sorted(DOCS)
    assert all(set(line) == {"key", "value"} for line in lines)
    assert {line["key"]: line["value"] for line in lines} == DOCS
    assert out.read_text(encoding="utf-8").count("\n") == len(DOCS)


def test_set_json_line_breaks_stay_on_one_line(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    """A value stored through set_json with line breaks is still exported on one line."""
    db.set_json("k", '{\n  "a": "x\\ny",\r\n  "b": [1,\n2]\n}')
    out = tmp_path / "out.jsonl"
    db.export_jsonl(out)
    assert read_lines(out) == [{"key": "k", "value": {"a": "x\ny", "b": [1, 2]}}]


def test_prefix(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    db.update({"user:1": 1, "user:2": 2, "users": 3, "order:1": 4})
    out = tmp_path / "users.jsonl"
    assert db.export_jsonl(out, prefix="user:") == 2
    assert [line["key"] for line in read_lines(out)] == ["user:1", "user:2"]


def test_ttl_is_kept(tmp_path: Path, tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """A key with a TTL exports its expiry as Unix seconds (ms precision) and imports with the same deadline."""
    tdb.set("session", {"u": 1}, ttl=90.5)
    tdb["forever"] = 1
    out = tmp_path / "out.jsonl"
    tdb.export_jsonl(out)
    lines = {line["key"]: line for line in read_lines(out)}
    assert lines["session"]["expires_at"] == 1_800_000_090.5
    assert "expires_at" not in lines["forever"]
    with ferrumdb.open(tmp_path / "copy.db", clock=clock) as copy:
        assert copy.import_jsonl(out) == 2
        assert copy.ttl("session") == pytest.approx(90.5)
        assert copy.ttl("forever") is None
        clock.advance(90.5)
        assert "session" not in copy


def test_expired_entries_are_skipped(tmp_path: Path, tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """Importing after a key's expiry skips it (the return value counts only what was stored)."""
    tdb.set("short", 1, ttl=10)
    tdb["long"] = 2
    out = tmp_path / "out.jsonl"
    tdb.export_jsonl(out)
    clock.advance(10)
    with ferrumdb.open(tmp_path / "copy.db", clock=clock) as copy:
        assert copy.import_jsonl(out) == 1
        assert dict(copy.items()) == {"long": 2}


def test_import_overwrites_and_later_lines_win(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    db["a"] = "old"
    db["untouched"] = 0
    src = tmp_path / "in.jsonl"
    src.write_text('{"key": "a", "value": 1}\n\n{"key": "a", "value": 2}\n', encoding="utf-8")
    assert db.import_jsonl(src) == 2
    assert dict(db.items()) == {"a": 2, "untouched": 0}


def test_import_keeps_indexes_exact(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    db.create_index("role")
    src = tmp_path / "in.jsonl"
    src.write_text('{"key": "u1", "value": {"role": "admin"}}\n{"key": "u2", "value": {"role": "user"}}\n', encoding="utf-8")
    db.import_jsonl(src)
    assert db.find("role", "admin") == ["u1"]
    assert db.explain({"role": "admin"})["index"] == "role"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('{"key": "a", "value": 1}\n{"key": "b"}\n', "line 2: missing field `value`"),
        ('{"key": "a", "value": 1}\n[1, 2]\n', "line 2: expected an object"),
        ('{"key": "a", "value": 1}\n{"key": 5, "value": 1}\n', "line 2: invalid type: integer `5`, expected a string"),
        ('{"key": "", "value": 1}\n', "line 1: invalid key"),
        ('{"key": "a", "value": 1e400}\n', "line 1: number out of range"),
        ('{"key": "a", "value": 1, "expires_at": -5}\n', "line 1: \"expires_at\" must be a positive number"),
        ('{"key": "a", "value": 1, "ttl": 5}\n', "line 1: unknown field `ttl`"),
        ('{"key": "a", "value": 1}\n{"key": "b", "value": 1\n', "line 2: EOF while parsing"),
        ('{"key": "a", "value": {"x": nope}}\n', "line 1: expected ident"),
    ],
)
def test_bad_line_writes_nothing(tmp_path: Path, db: ferrumdb.FerrumDB, body: str, needle: str) -> None:
    """A bad line raises ValueError naming the file, the line and what is wrong; nothing is written."""
    db["keep"] = 0
    src = tmp_path / "in.jsonl"
    src.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        db.import_jsonl(src)
    assert f"in.jsonl {needle}" in str(info.value)
    assert dict(db.items()) == {"keep": 0}


def test_invalid_utf8_line(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"key": "a", "value": 1}\n{"key": "\xff", "value": 1}\n')
    with pytest.raises(ValueError, match="line 2: not valid UTF-8"):
        db.import_jsonl(src)
    assert len(db) == 0


def test_missing_file(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(FileNotFoundError) as info:
        db.import_jsonl(missing)
    assert info.value.filename == str(missing)
    target = tmp_path / "no" / "such" / "dir.jsonl"
    with pytest.raises(FileNotFoundError) as info:
        db.export_jsonl(target)
    assert info.value.filename == str(target)


def test_wrong_types(db: ferrumdb.FerrumDB, tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        db.export_jsonl(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        db.import_jsonl(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        db.export_jsonl(tmp_path / "o.jsonl", prefix=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        db.export_jsonl(tmp_path / "o.jsonl", "user:")  # type: ignore[misc]


def test_export_onto_the_database_file_is_refused(db: ferrumdb.FerrumDB, db_path: Path) -> None:
    db["a"] = 1
    with pytest.raises(ValueError, match="is the database file itself"):
        db.export_jsonl(db_path)
    assert db["a"] == 1


def test_export_replaces_whole_and_leaves_no_temp_file(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n" * 100, encoding="utf-8")
    db["a"] = 1
    db.export_jsonl(out)
    assert out.read_text(encoding="utf-8") == '{"key":"a","value":1}\n'
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_read_only_handle(tmp_path: Path, db_path: Path) -> None:
    """A read-only handle exports (beside a writer) but refuses to import."""
    with ferrumdb.open(db_path) as writer:
        writer.update(DOCS)
        with ferrumdb.open(db_path, read_only=True) as ro:
            out = tmp_path / "out.jsonl"
            assert ro.export_jsonl(out) == len(DOCS)
            with pytest.raises(ferrumdb.ReadOnlyError):
                ro.import_jsonl(out)


def test_closed_handle(tmp_path: Path, db_path: Path) -> None:
    handle = ferrumdb.open(db_path)
    handle.close()
    with pytest.raises(ferrumdb.ClosedError):
        handle.export_jsonl(tmp_path / "o.jsonl")
    with pytest.raises(ferrumdb.ClosedError):
        handle.import_jsonl(tmp_path / "o.jsonl")


def test_progress_flag(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    """progress=True works (the bar draws only on a terminal, so nothing lands in captured stderr)."""
    db.update({f"k{i}": i for i in range(3000)})
    out = tmp_path / "out.jsonl"
    assert db.export_jsonl(out, progress=True) == 3000
    with ferrumdb.open(":memory:") as copy:
        assert copy.import_jsonl(out, progress=True) == 3000
        assert len(copy) == 3000


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(st.text(min_size=1, max_size=20), json_values, max_size=12))
def test_round_trip_property(tmp_path: Path, data: dict[str, Any]) -> None:
    """Whatever can be stored comes back equal after export and import."""
    out = tmp_path / "prop.jsonl"
    with ferrumdb.open(":memory:") as src:
        src.update(data)
        assert src.export_jsonl(out) == len(data)
    with ferrumdb.open(":memory:") as dst:
        assert dst.import_jsonl(out) == len(data)
        assert dict(dst.items()) == data


# -- command line ------------------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferrumdb", *args], capture_output=True, text=True, encoding="utf-8", stdin=subprocess.DEVNULL
    )


def test_cli_export_import(tmp_path: Path, db_path: Path) -> None:
    """`ferrumdb export` then `ferrumdb import` round-trips; piped, each prints one JSON summary line."""
    with ferrumdb.open(db_path) as db:
        db.update(DOCS)
    out = tmp_path / "out.jsonl"
    proc = run("export", str(db_path), str(out))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == {"exported": len(DOCS)}
    copy = tmp_path / "copy.db"
    proc = run("import", str(copy), str(out))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == {"imported": len(DOCS), "expired": 0, "indexes_created": []}
    with ferrumdb.open(copy) as db:
        assert dict(db.items()) == DOCS


def test_cli_export_prefix_beside_a_writer(tmp_path: Path, db: ferrumdb.FerrumDB) -> None:
    """Export opens the database read-only, so it works while another handle writes."""
    db.update({"user:1": 1, "other": 2})
    db.flush()
    out = tmp_path / "out.jsonl"
    proc = run("export", db.path, str(out), "--prefix", "user:")
    assert proc.returncode == 0, proc.stderr
    assert read_lines(out) == [{"key": "user:1", "value": 1}]


def test_cli_import_bad_file(tmp_path: Path, db_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"key": "a", "value": 1}\n{"key": "b", "value": }\n', encoding="utf-8")
    proc = run("import", str(db_path), str(src))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "in.jsonl line 2: expected value" in proc.stderr
    with ferrumdb.open(db_path) as db:
        assert len(db) == 0


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["export", "only.db"], 2, "required arguments were not provided:\n  <OUT.jsonl>"),
        (["import", "a.db", "b.jsonl", "extra"], 2, "unexpected argument 'extra'"),
        (["import", "a.db", "b.jsonl", "--prefix=x"], 2, "unexpected argument '--prefix'"),
        (["export", "missing.db", "out.jsonl"], 1, "missing.db"),
        (["import", "new.db", "missing.jsonl"], 1, "missing.jsonl"),
        (["check", "a.db"], 1, "a.db: no such database file"),
    ],
)
def test_cli_errors(tmp_path: Path, args: list[str], code: int, needle: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ferrumdb", *args], capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == code
    assert needle in proc.stderr
    assert not (tmp_path / "missing.db").exists()


def test_cli_help(tmp_path: Path) -> None:
    proc = run("export", "--help")
    assert proc.returncode == 0
    assert "Usage: ferrumdb export PATH OUT.jsonl" in proc.stdout
    proc = run("--help")
    assert "ferrumdb import PATH IN.jsonl" in proc.stdout


def test_repl_script_mode_unaffected(db_path: Path) -> None:
    """A database named like nothing special still opens the REPL (script mode)."""
    proc = cli(db_path, "COUNT\n")
    assert (proc.returncode, proc.stdout) == (0, "0\n")


_EMFILE_CHILD = r"""
import errno, os, resource, sys
from pathlib import Path
import ferrumdb

d = Path(sys.argv[1])
db = ferrumdb.open(d / "app.db")
db["k"] = {"v": 1}
db.export_jsonl(d / "seed.jsonl")
# Use up every descriptor the process may have: the next open is EMFILE.
in_use = max(int(fd) for fd in os.listdir("/proc/self/fd"))
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 16, hard))
fillers = []
try:
    while True:
        fillers.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    assert e.errno == errno.EMFILE, e
for call, target in [(db.export_jsonl, d / "out.jsonl"), (db.import_jsonl, d / "seed.jsonl")]:
    try:
        call(target)
    except OSError as e:
        print(call.__name__, e.errno, e.filename, flush=True)
    else:
        print(call.__name__, "no error", flush=True)
for fd in fillers:
    os.close(fd)
assert db.export_jsonl(d / "out.jsonl") == 1
db.close()
print("recovered", flush=True)
"""


def test_export_and_import_errors_keep_errno_and_filename(tmp_path: Path) -> None:
    """Out of descriptors (a real EMFILE, from a lowered RLIMIT_NOFILE in a child process),
    export and import raise OSError with errno EMFILE and the file name, not errno 0."""
    done = subprocess.run(
        [sys.executable, "-c", _EMFILE_CHILD, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"export_jsonl {errno.EMFILE} {tmp_path / 'out.jsonl'}", done.stdout
    assert lines[1].startswith(f"import_jsonl {errno.EMFILE} "), done.stdout
    assert lines[1].endswith("seed.jsonl"), done.stdout
    assert lines[2] == "recovered"
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
