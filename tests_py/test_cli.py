"""``python -m ferrumdb PATH`` reads commands from a non-terminal stdin, so it scripts (README "The command line").

With stdout a pipe, every command that succeeds prints exactly one line of JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ferrumdb


def cli(target: Path | str, script: str, *options: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ferrumdb [options] TARGET`` (a file or a ``postgresql://`` URL) with
    ``script`` on stdin (never a terminal here: script mode, JSON output)."""
    return subprocess.run(
        [sys.executable, "-m", "ferrumdb", *options, str(target)],
        input=script,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return proc.stdout.splitlines()


def values(proc: subprocess.CompletedProcess[str]) -> list[Any]:
    """Each output line parsed as JSON (fails if a line is not JSON)."""
    return [json.loads(line) for line in lines(proc)]


# -- SET / GET ---------------------------------------------------------------------------------


def test_set_prints_ok_and_exits_zero(db_path: Path) -> None:
    """SET of valid JSON prints OK and the script exits 0."""
    proc = cli(db_path, 'SET user:1 {"name": "alice"}\n')
    assert (proc.returncode, lines(proc), proc.stderr) == (0, ['"OK"'], "")


def test_set_is_visible_from_python(db_path: Path) -> None:
    """What the CLI SETs, Python reads as the same value."""
    cli(db_path, 'SET user:1 {"name": "alice", "tags": ["a", "b"], "n": 18446744073709551615}\n')
    with ferrumdb.open(db_path) as db:
        assert db["user:1"] == {"name": "alice", "tags": ["a", "b"], "n": 2**64 - 1}


_VALUES: list[Any] = [
    pytest.param({"name": "alice", "n": [1, 2.5, None, True]}, id="dict"),
    pytest.param("héllo \U0001f600 \"q\"", id="str"),
    pytest.param(-(2**63), id="i64-min"),
    pytest.param([], id="empty-list"),
    pytest.param(None, id="null"),
]


@pytest.mark.parametrize("value", _VALUES)
def test_get_prints_json(db_path: Path, value: Any) -> None:
    """GET prints the stored value as JSON on one line (stdout is not a terminal)."""
    with ferrumdb.open(db_path) as db:
        db["k"] = value
    proc = cli(db_path, "GET k\n")
    assert proc.returncode == 0, proc.stderr
    assert len(lines(proc)) == 1
    assert json.loads(proc.stdout) == value


def test_set_then_get_in_one_script(db_path: Path) -> None:
    """A GET after a SET in the same script prints the value just set."""
    proc = cli(db_path, 'SET a [1, {"b": 2}]\nGET a\n')
    assert json.loads(lines(proc)[1]) == [1, {"b": 2}]


def test_get_missing_fails(db_path: Path) -> None:
    """GET of a missing key is an error: message on stderr, non-zero exit."""
    proc = cli(db_path, "GET missing\n")
    assert proc.returncode != 0
    assert "missing" in proc.stderr


def test_set_invalid_json_fails_and_writes_nothing(db_path: Path) -> None:
    """SET with invalid JSON fails (non-zero exit) and stores nothing."""
    proc = cli(db_path, "SET k {bad\n")
    assert proc.returncode != 0
    with ferrumdb.open(db_path) as db:
        assert "k" not in db


# -- DELETE / KEYS / COUNT -------------------------------------------------------------------------


def test_delete(db_path: Path) -> None:
    """DELETE removes the key (prints 1), and again finds nothing (prints 0)."""
    with ferrumdb.open(db_path) as db:
        db["k"] = 1
    proc = cli(db_path, "DELETE k\nDELETE k\n")
    assert (proc.returncode, lines(proc)) == (0, ["1", "0"])
    with ferrumdb.open(db_path) as db:
        assert "k" not in db


def test_keys_in_key_order(db_path: Path) -> None:
    """KEYS lists every key in key order, one per line."""
    with ferrumdb.open(db_path) as db:
        db.update({"b": 1, "a": 2, "user:2": 3, "user:1": 4})
    proc = cli(db_path, "KEYS\n")
    assert values(proc) == [["a", "b", "user:1", "user:2"]]


def test_keys_with_prefix(db_path: Path) -> None:
    """KEYS prefix lists only the keys starting with prefix."""
    with ferrumdb.open(db_path) as db:
        db.update({"b": 1, "user:2": 3, "user:1": 4, "users": 5})
    proc = cli(db_path, "KEYS user:\n")
    assert values(proc) == [["user:1", "user:2"]]


def test_count(db_path: Path) -> None:
    """COUNT prints the number of live keys."""
    with ferrumdb.open(db_path) as db:
        db.update({f"k{i}": i for i in range(7)})
    proc = cli(db_path, "COUNT\n")
    assert (proc.returncode, lines(proc)) == (0, ["7"])


# -- COMPACT / STATS / HELP / EXIT ------------------------------------------------------------------


def test_compact_keeps_data_and_shrinks(db_path: Path) -> None:
    """COMPACT succeeds, keeps the data and shrinks a file full of overwrites."""
    with ferrumdb.open(db_path) as db:
        for i in range(200):
            db["k"] = {"i": i, "pad": "x" * 100}
    before = db_path.stat().st_size
    proc = cli(db_path, "COMPACT\n")
    assert proc.returncode == 0, proc.stderr
    assert db_path.stat().st_size < before
    with ferrumdb.open(db_path) as db:
        assert db["k"]["i"] == 199


def test_stats_prints_json_object(db_path: Path) -> None:
    """STATS prints exactly the dict db.stats() returns: the same keys, in the same order."""
    proc = cli(db_path, "SET a 1\nSTATS\n")
    stats = json.loads(lines(proc)[-1])
    assert {"keys", "gets", "sets", "deletes", "ops_per_sec", "uptime_s", "file_bytes", "live_bytes"} <= stats.keys()
    assert stats["keys"] == 1
    with ferrumdb.open(db_path) as db:
        from_python = db.stats()
    assert list(stats) == list(from_python)
    assert {k: type(v) for k, v in stats.items()} == {k: type(v) for k, v in from_python.items()}
    assert (stats["file_bytes"], stats["live_bytes"]) == (from_python["file_bytes"], from_python["live_bytes"])


def test_help_lists_commands(db_path: Path) -> None:
    """HELP lists every command (piped: one JSON array of {command, usage, summary}) and exits 0."""
    proc = cli(db_path, "HELP\n")
    assert proc.returncode == 0
    [listing] = values(proc)
    assert [c["command"] for c in listing] == [
        "SET", "GET", "DELETE", "KEYS", "TTL", "PERSIST", "COUNT", "INDEX", "INDEXES", "DROP", "FIND", "QUERY",
        "DISTINCT", "EXPLAIN", "UPDATE", "UPDATEMANY", "DELETEMANY", "COMPACT", "STATS", "HELP", "EXIT",
    ]
    assert all(c["usage"].startswith(c["command"]) and c["summary"] for c in listing)


def test_help_command(db_path: Path) -> None:
    """HELP <command> shows that command's usage, description and an example."""
    proc = cli(db_path, "HELP GET\n")
    assert proc.returncode == 0
    [topic] = values(proc)
    assert topic["usage"] == "GET <key>"
    assert "missing key is an error" in topic["description"]
    assert topic["example"] == "GET user:1"


def test_help_unknown_command_fails(db_path: Path) -> None:
    """HELP of a command that does not exist says so, suggests the closest one and lists them all."""
    proc = cli(db_path, "HELP gte\n")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.startswith('error: line 1: HELP: there is no command "gte" (did you mean GET?)'), proc.stderr
    assert "SET GET DELETE KEYS" in proc.stderr


def test_every_command_prints_one_json_line(db_path: Path) -> None:
    """Piped, each successful command prints exactly one line that json.loads parses."""
    script = "\n".join(
        [
            'SET "my key" {"n": 18446744073709551615, "s": "h\u00e9"}',
            'GET "my key"',
            "KEYS",
            "KEYS my",
            "COUNT",
            "INDEX n",
            "FIND n 18446744073709551615",
            'QUERY {"n": {"$gt": 0}}',
            'EXPLAIN {"n": 1}',
            "STATS",
            "COMPACT",
            "HELP",
            "HELP set",
            'DELETE "my key"',
            'DELETE "my key"',
            "EXIT",
        ]
    )
    proc = cli(db_path, script + "\n")
    assert (proc.returncode, proc.stderr) == (0, "")
    out = values(proc)
    assert len(out) == 15
    doc = {"n": 2**64 - 1, "s": "hé"}
    assert out[:5] == ["OK", doc, ["my key"], ["my key"], 1]
    assert out[5:8] == ["OK", ["my key"], [["my key", doc]]]
    assert out[8]["index"] == "n" and out[9]["keys"] == 1
    assert set(out[10]) == {"file_bytes_before", "file_bytes_after"}
    assert isinstance(out[11], list) and out[12]["command"] == "SET"
    assert out[13:] == [1, 0]


def test_failed_command_exits_1_and_names_the_line(db_path: Path) -> None:
    """A failing command prints nothing on stdout, its error (with the line number) on stderr, and the exit status is 1."""
    proc = cli(db_path, "SET a 1\nGET nope\nCOUNT\n")
    assert proc.returncode == 1
    assert values(proc) == ["OK", 1]
    assert proc.stderr == "error: line 2: key not found: nope\n"


def test_unknown_command_suggests_the_closest(db_path: Path) -> None:
    proc = cli(db_path, "DELTE a\n")
    assert proc.returncode == 1
    assert '"DELTE" (did you mean DELETE?)' in proc.stderr


def test_exit_stops_the_script(db_path: Path) -> None:
    """EXIT ends the script: later commands do not run."""
    proc = cli(db_path, "SET a 1\nEXIT\nSET b 2\n")
    assert (proc.returncode, values(proc)) == (0, ["OK"])
    with ferrumdb.open(db_path) as db:
        assert db.keys() == ["a"]


def test_commands_are_case_insensitive(db_path: Path) -> None:
    """Command names are case-insensitive."""
    proc = cli(db_path, "set a 1\nGeT a\ncount\n")
    assert (proc.returncode, values(proc)) == (0, ["OK", 1, 1])


def test_empty_script_succeeds(db_path: Path) -> None:
    """An empty script exits 0 and creates the database."""
    proc = cli(db_path, "")
    assert proc.returncode == 0
    assert db_path.exists()


# -- failures ---------------------------------------------------------------------------------------


def test_bad_command_exits_nonzero(db_path: Path) -> None:
    """An unknown command makes the exit status non-zero and is reported on stderr."""
    proc = cli(db_path, "FROB x\n")
    assert proc.returncode != 0
    assert "FROB" in proc.stderr


def test_bad_command_does_not_stop_script(db_path: Path) -> None:
    """After a failed command, the script goes on; the exit status still reports the failure."""
    proc = cli(db_path, "FROB\nSET a 1\nCOUNT\n")
    assert proc.returncode != 0
    assert values(proc) == ["OK", 1]


def test_failure_before_exit_still_fails(db_path: Path) -> None:
    """A command that failed before EXIT still makes the exit status non-zero."""
    proc = cli(db_path, "GET nope\nEXIT\n")
    assert proc.returncode != 0


def test_locked_database_fails(db_path: Path) -> None:
    """With the database open by an exclusive writer elsewhere, the CLI exits non-zero saying it is locked."""
    with ferrumdb.open(db_path, exclusive=True):
        proc = cli(db_path, "COUNT\n")
    assert proc.returncode != 0
    assert "open for writing" in proc.stderr or "lock" in proc.stderr.lower()


def test_beside_a_writer_the_cli_reads_and_writes(db_path: Path) -> None:
    """Beside an application writing the database, a CLI script reads its writes and writes its own."""
    with ferrumdb.open(db_path) as app:
        app["a"] = 1
        proc = cli(db_path, "GET a\nSET b 2\n")
        assert proc.returncode == 0, proc.stderr
        assert app["b"] == 2


def test_read_only_beside_a_writer(db: ferrumdb.FerrumDB, db_path: Path) -> None:
    """--read-only opens a database another handle is writing: reads work, writes fail and change nothing."""
    db["a"] = {"n": 1}
    db.flush()
    proc = cli(db_path, "GET a\nSET b 2\nCOUNT\n", "--read-only")
    assert proc.returncode == 1
    assert values(proc) == [{"n": 1}, 1]
    assert "error: line 2: the database was opened read-only" in proc.stderr
    assert "b" not in db


def test_bad_fsync_option_fails(db_path: Path) -> None:
    """--fsync with an unknown policy exits non-zero and creates no database."""
    proc = cli(db_path, "COUNT\n", "--fsync=sometimes")
    assert proc.returncode != 0
    assert not db_path.exists()


@pytest.mark.parametrize("policy", ["always", "never", "periodic:50"])
def test_fsync_option_accepted(db_path: Path, policy: str) -> None:
    """--fsync accepts each documented policy."""
    proc = cli(db_path, "SET a 1\n", f"--fsync={policy}", "--no-studio")
    assert (proc.returncode, values(proc)) == (0, ["OK"]), proc.stderr


# -- arguments (one clap parser for every form) ------------------------------------------------


def run_args(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ferrumdb ARGS`` with an empty, non-terminal stdin."""
    return subprocess.run(
        [sys.executable, "-m", "ferrumdb", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


def test_unknown_option_exits_2_naming_it(db_path: Path) -> None:
    """Bad arguments exit 2 (not 1, which is a failed command), name the option and show the usage."""
    proc = cli(db_path, "", "--bogus")
    assert proc.returncode == 2
    assert "unexpected argument '--bogus'" in proc.stderr and "Usage: ferrumdb [PATH]" in proc.stderr
    proc = cli(db_path, "", "--port=70000")
    assert proc.returncode == 2 and "'--port <N>'" in proc.stderr and "not a port number" in proc.stderr
    assert not db_path.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["export", "a.db", "out.jsonl", "--bogus"], "'--bogus'"),
        (["import", "a.db", "in.jsonl", "--salvage=x"], "'--salvage'"),
        (["check", "a.db", "--prefix", "p"], "'--prefix'"),
        (["completions", "bash", "--bogus"], "'--bogus'"),
        (["completions", "cmd.exe"], "'cmd.exe'"),
    ],
)
def test_bad_flag_on_each_subcommand_exits_2(tmp_path: Path, args: list[str], needle: str) -> None:
    """A flag a subcommand does not take is a usage error naming it; nothing is created."""
    proc = run_args(*args, cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert needle in proc.stderr and "Usage: ferrumdb" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("sub", "needle"),
    [
        ("export", "Usage: ferrumdb export PATH OUT.jsonl [--prefix P]"),
        ("import", "Usage: ferrumdb import PATH IN.jsonl"),
        ("check", "Usage: ferrumdb check PATH [--salvage OUT]"),
        ("studio", "Usage: ferrumdb studio PATH [--port N] [--host H --token T] [--read-only]"),
        ("completions", "<SHELL>"),
    ],
)
def test_help_of_each_subcommand(sub: str, needle: str) -> None:
    proc = run_args(sub, "--help")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert needle in proc.stdout
    if sub != "completions":
        assert "--key-file <FILE>" in proc.stdout


def test_top_level_help_and_version() -> None:
    proc = run_args("--help")
    assert (proc.returncode, proc.stderr) == (0, "")
    for needle in [
        "Usage: ferrumdb [PATH]",
        "ferrumdb studio PATH",
        "ferrumdb completions SHELL",
        "REPL commands:\n  SET, GET",
        "--no-studio",
    ]:
        assert needle in proc.stdout, needle
    proc = run_args("--version")
    assert (proc.returncode, proc.stdout) == (0, f"ferrumdb {ferrumdb.__version__}\n")


def test_bash_completions_name_the_subcommands() -> None:
    proc = run_args("completions", "bash")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "complete -F _ferrumdb" in proc.stdout
    for word in ["export", "import", "check", "studio", "completions", "--key-file", "--salvage", "--token"]:
        assert word in proc.stdout, word


def test_a_database_named_like_a_subcommand(tmp_path: Path) -> None:
    """A subcommand is only the first argument: after an option, or after ``--``, ``check`` is a file name."""
    proc = subprocess.run(
        [sys.executable, "-m", "ferrumdb", "--no-studio", "check"],
        input="SET a 1\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, '"OK"\n', "")
    proc = subprocess.run(
        [sys.executable, "-m", "ferrumdb", "--", "check"],
        input="COUNT\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (proc.returncode, proc.stdout) == (0, "1\n")
