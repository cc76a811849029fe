"""The interactive REPL, driven through a pseudo-terminal as a person would use it (README "The command line"):
Tab completion of commands and keys, history recall with the up arrow (within a session and, through
``$HOME/.ferrumdb_history``, across sessions), ``HELP <command>``, indented (and, unless ``NO_COLOR``,
coloured) output, multi-line JSON, Ctrl-C and Ctrl-D.

Every step waits for the output it expects (``pexpect.expect`` with a timeout), never on a sleep. Keys
are typed only once the line editor is reading. The editor (rustyline) turns bracketed paste on when it
starts reading a line and off when the line is accepted; those two sequences delimit a command's output
exactly (the prompt itself is redrawn on every keystroke, so it cannot).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

pexpect = pytest.importorskip("pexpect")

READING = "\x1b[?2004h"  # the editor starts reading a line
ACCEPTED = "\x1b[?2004l"  # the editor has accepted the line (or Ctrl-C/Ctrl-D)
UP = "\x1b[A"
TAB = "\t"
CTRL_C = "\x03"
CTRL_D = "\x04"
TIMEOUT = 20


def ferrumdb_command() -> list[str]:
    """The installed ``ferrumdb`` console script next to this interpreter, else ``python -m ferrumdb``."""
    script = Path(sys.executable).with_name("ferrumdb")
    if script.exists():
        return [str(script)]
    found = shutil.which("ferrumdb")
    return [found] if found else [sys.executable, "-m", "ferrumdb"]


class Repl:
    """One REPL session in a pseudo-terminal."""

    def __init__(self, db_path: Path, home: Path, *, color: bool = False) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE")}
        env.update(HOME=str(home), TERM="xterm-256color")
        if not color:
            env["NO_COLOR"] = "1"
        cmd = ferrumdb_command()
        self.child: Any = pexpect.spawn(
            cmd[0],
            [*cmd[1:], "--no-studio", str(db_path)],
            env=env,
            encoding="utf-8",
            timeout=TIMEOUT,
            dimensions=(40, 200),
        )
        self.child.expect_exact("Type HELP for commands")
        self.child.expect_exact(READING)

    def finish(self) -> str:
        """Wait until the line being typed is accepted and the editor reads the next one; return the
        output in between."""
        self.child.expect_exact(ACCEPTED)
        self.child.expect_exact(READING)
        return str(self.child.before)

    def run(self, line: str) -> str:
        """Type ``line`` and Enter; return what the command printed."""
        self.child.send(line + "\r")
        return self.finish()

    def exit(self) -> int:
        self.child.send(CTRL_D)
        self.child.expect(pexpect.EOF)
        self.child.close()
        return int(self.child.exitstatus)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh home directory, so history starts empty and lands under tmp_path."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def people(db_path: Path) -> Path:
    with ferrumdb.open(db_path) as db:
        db["user:alpha"] = {"name": "alice", "tags": ["admin"]}
        db["user:beta"] = {"name": "bob"}
        db["my key"] = "spaced"
        db["marker"] = "value-one"
    return db_path


@pytest.fixture
def repl(people: Path, home: Path) -> Iterator[Repl]:
    session = Repl(people, home)
    try:
        yield session
    finally:
        if session.child.isalive():
            session.child.terminate(force=True)


def plain(text: str) -> str:
    """Terminal output as text: escape sequences and carriage returns removed."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


# -- completion -------------------------------------------------------------------------------------


def test_tab_completes_a_command(repl: Repl) -> None:
    """``GE<Tab>`` becomes ``GET ``: typing a key after it runs GET."""
    out = repl.run("GE" + TAB + "marker")
    assert '"value-one"' in out


def test_tab_completes_a_key(repl: Repl) -> None:
    """``GET user:a<Tab>`` completes the only matching key from the database."""
    out = plain(repl.run("GET user:a" + TAB))
    assert '"name": "alice"' in out


def test_tab_completes_a_key_with_a_space_quoted(repl: Repl) -> None:
    """A key containing a space is completed in quotes, so the command runs."""
    out = repl.run("GET my" + TAB)
    assert '"spaced"' in out
    assert "error" not in out


def test_tab_twice_lists_candidates(repl: Repl, people: Path) -> None:
    """With several matching keys, the second Tab lists them; the line is kept for more typing."""
    repl.child.send("DELETE user:" + TAB + TAB)
    repl.child.expect_exact("user:alpha")
    repl.child.expect_exact("user:beta")
    out = repl.run("beta")
    assert plain(out).strip().endswith("1")
    repl.exit()
    with ferrumdb.open(people) as db:
        assert "user:beta" not in db and "user:alpha" in db


def test_help_argument_completes_command_names(repl: Repl) -> None:
    out = plain(repl.run("HELP expl" + TAB))
    assert "EXPLAIN <json-filter>" in out


# -- history ----------------------------------------------------------------------------------------


def test_up_arrow_recalls_within_a_session(repl: Repl) -> None:
    """Up, Up, Enter re-runs the command before last."""
    assert '"value-one"' in repl.run("GET marker")
    assert plain(repl.run("COUNT")).strip().endswith("4")
    out = repl.run(UP + UP)
    assert '"value-one"' in out


def test_history_persists_across_sessions(people: Path, home: Path) -> None:
    """History is written to $HOME/.ferrumdb_history and recalled by the next session; lines typed
    with a leading space are not recorded."""
    first = Repl(people, home)
    first.run("GET marker")
    first.run(" GET user:beta")
    assert first.exit() == 0
    saved = (home / ".ferrumdb_history").read_text(encoding="utf-8")
    assert "GET marker" in saved
    # It may hold secrets typed as values: readable by the owner only.
    assert stat.S_IMODE((home / ".ferrumdb_history").stat().st_mode) == 0o600
    assert "user:beta" not in saved
    second = Repl(people, home)
    out = second.run(UP)
    assert '"value-one"' in out
    assert second.exit() == 0


def test_history_is_saved_as_commands_run(people: Path, home: Path) -> None:
    """Each command is appended at once, so a session that is killed keeps its history."""
    session = Repl(people, home)
    session.run("GET marker")
    assert "GET marker" in (home / ".ferrumdb_history").read_text(encoding="utf-8")
    session.child.terminate(force=True)


def test_script_mode_writes_no_history(people: Path, home: Path) -> None:
    """Piped commands never touch the history file, even with one already there."""
    history = home / ".ferrumdb_history"
    session = Repl(people, home)
    session.run("COUNT")
    assert session.exit() == 0
    before = history.read_bytes()
    proc = subprocess.run(
        [*ferrumdb_command(), str(people)],
        input="GET marker\nCOUNT\n",
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home)},
    )
    assert (proc.returncode, proc.stdout) == (0, '"value-one"\n4\n')
    assert history.read_bytes() == before


# -- output -----------------------------------------------------------------------------------------


def test_help_command_shows_usage_description_and_example(repl: Repl) -> None:
    out = plain(repl.run("help get"))
    assert "GET <key>" in out
    assert "A missing key is an error" in out
    assert "Example:\n  GET user:1" in out


def test_help_unknown_command(repl: Repl) -> None:
    out = plain(repl.run("HELP gte"))
    assert 'there is no command "gte" (did you mean GET?)' in out


def test_output_is_indented_on_a_terminal(repl: Repl) -> None:
    """GET shows indented JSON; KEYS one key per line (quoted when it has a space); empty results say so."""
    out = plain(repl.run("GET user:alpha"))
    assert '{\n  "name": "alice",\n  "tags": [\n    "admin"\n  ]\n}' in out
    out = plain(repl.run("KEYS"))
    assert 'marker\n"my key"\nuser:alpha\nuser:beta' in out
    assert "(no keys)" in plain(repl.run("KEYS nothing"))
    assert "\x1b[3" not in repl.run("GET user:alpha"), "NO_COLOR is set: no colours"


def test_colour_when_the_terminal_takes_it(people: Path, home: Path) -> None:
    """Without NO_COLOR, keys and values are coloured on a colour terminal."""
    session = Repl(people, home, color=True)
    out = session.run("GET user:alpha")
    assert re.search(r'\x1b\[[0-9;]*m"name"', out), repr(out)
    assert '"name": "alice"' in plain(out)
    assert session.exit() == 0


def test_errors_say_what_to_do(repl: Repl) -> None:
    out = plain(repl.run("GET nope"))
    assert "error: key not found: nope" in out
    out = plain(repl.run("SET k hello"))
    assert "strings need quotes" in out
    out = plain(repl.run("SET k {a: 1, b 2}"))
    assert "expected ':' after the key \"b\", found '2' at line 1 column 10" in out
    out = plain(repl.run("DELTE k"))
    assert "did you mean DELETE?" in out


def test_typed_json_may_use_single_quotes_and_bare_keys(repl: Repl) -> None:
    """JSON typed at the prompt may use single quotes and unquoted keys, as in mongosh."""
    assert plain(repl.run("SET user:gamma {name: 'cy', tags: ['ops']}")).strip() == "OK"
    out = plain(repl.run("QUERY {name: 'cy'} FIELDS tags"))
    assert 'user:gamma\t{\n  "tags": [\n    "ops"\n  ]\n}' in out


def test_ttl_commands_and_del(repl: Repl, people: Path) -> None:
    """SET ... EX gives a key a TTL, TTL shows it, PERSIST removes it; DEL is DELETE."""
    assert plain(repl.run("SET session {user: 'alice'} EX 3600")).strip() == "OK"
    assert re.fullmatch(r"3[56]\d\d\.\d{3} seconds", plain(repl.run("TTL session")).strip())
    assert plain(repl.run("PERSIST session")).strip() == "1"
    assert plain(repl.run("TTL session")).strip() == "(no expiry)"
    assert plain(repl.run("DEL marker")).strip() == "1"
    assert "did you mean DEL?" in plain(repl.run("DLE marker"))
    assert repl.exit() == 0
    with ferrumdb.open(people) as db:
        assert db.ttl("session") is None
        assert "marker" not in db


def test_keys_and_query_stop_at_a_screenful(db_path: Path, home: Path) -> None:
    """At a terminal KEYS and QUERY show 100 results and say how many more there are; LIMIT changes it."""
    with ferrumdb.open(db_path) as db:
        db.update({f"k{i:04}": {"i": i} for i in range(1234)})
    session = Repl(db_path, home)
    lines = plain(session.run("KEYS")).strip().splitlines()
    assert lines[:2] == ["k0000", "k0001"]
    assert lines[-2:] == ["k0099", "… 1,134 more (LIMIT to change)"]
    assert len(lines) == 101
    lines = plain(session.run("QUERY {i: {$gte: 1000}}")).strip().splitlines()
    assert lines[-1] == "… 134 more (LIMIT to change)"
    assert sum(line.startswith("k1") for line in lines) == 100
    lines = plain(session.run("KEYS k0 LIMIT 1000")).strip().splitlines()
    assert (len(lines), lines[-1]) == (1000, "k0999")
    lines = plain(session.run("QUERY {} LIMIT 2")).strip().splitlines()
    assert "more (LIMIT" not in lines[-1]
    assert session.exit() == 0


def test_port_0_picks_a_free_port(db_path: Path, home: Path) -> None:
    """`ferrumdb PATH --port 0` at a terminal starts Studio on a free port and prints its URL."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(HOME=str(home), TERM="xterm-256color", NO_COLOR="1")
    cmd = ferrumdb_command()
    child = pexpect.spawn(
        cmd[0], [*cmd[1:], "--port", "0", str(db_path)], env=env, encoding="utf-8", timeout=TIMEOUT
    )
    child.expect(r"Ferrum Studio: http://127\.0\.0\.1:(\d+)/")
    assert int(child.match.group(1)) != 0
    child.expect_exact(READING)
    child.send(CTRL_D)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


# -- editing ----------------------------------------------------------------------------------------


def test_multi_line_json(repl: Repl) -> None:
    """Enter inside an open JSON value continues the command on the next line."""
    repl.child.send('SET doc {"a": [1,\r')
    repl.child.send('2], "b": "x"}\r')
    out = plain(repl.finish())
    assert "OK" in out
    assert '"a": [\n    1,\n    2\n  ]' in plain(repl.run("GET doc"))


def test_ctrl_c_clears_the_line_and_ctrl_d_leaves(repl: Repl, people: Path) -> None:
    """Ctrl-C drops the line being typed (and says how to leave); Ctrl-D on an empty line exits 0."""
    repl.child.send('SET never "typed"')
    repl.child.send(CTRL_C)
    repl.child.expect_exact("type EXIT or press Ctrl-D to leave")
    repl.child.expect_exact(READING)
    assert plain(repl.run("COUNT")).strip().endswith("4")
    assert repl.exit() == 0
    with ferrumdb.open(people) as db:
        assert "never" not in db


def test_exit_command(repl: Repl) -> None:
    repl.child.send("exit\r")
    repl.child.expect(pexpect.EOF)
    repl.child.close()
    assert repl.child.exitstatus == 0


# -- batch subcommands on a terminal ----------------------------------------------------------------


def spawn_batch(home: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(HOME=str(home), TERM="xterm-256color")
    cmd = ferrumdb_command()
    return pexpect.spawn(cmd[0], [*cmd[1:], *args], env=env, encoding="utf-8", timeout=TIMEOUT, dimensions=(40, 200))


def test_export_and_import_show_progress_on_a_terminal(tmp_path: Path, home: Path) -> None:
    """At a terminal the subcommands draw a progress bar by themselves and end with a sentence."""
    src = tmp_path / "src.db"
    with ferrumdb.open(src) as db:
        db.update({f"k{i:05}": {"i": i} for i in range(5000)})
    out = tmp_path / "out.jsonl"
    child = spawn_batch(home, "export", str(src), str(out))
    child.expect_exact("exporting")
    child.expect_exact("5,000/5,000 records")
    child.expect_exact(f"exported 5000 records from {src} to {out}")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    dst = tmp_path / "dst.db"
    child = spawn_batch(home, "import", str(dst), str(out))
    child.expect_exact("importing")
    child.expect_exact(f"imported 5000 records from {out} into {dst} (0 expired, skipped)")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    with ferrumdb.open(dst) as db:
        assert len(db) == 5000
