"""``ferrumdb check PATH [--salvage OUT]`` and encrypted databases in the command line
(``--key-file FILE``, ``FERRUMDB_PASSPHRASE``, the passphrase prompt), through the real
``ferrumdb`` console script. stdin and stdout are pipes here (except in the pty test), so
every report is one JSON object and no prompt is possible."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

RAW_KEY = bytes(range(32))
PASSPHRASE = "correct horse battery staple"


def ferrumdb_command() -> list[str]:
    """The installed ``ferrumdb`` console script next to this interpreter, else ``python -m ferrumdb``."""
    script = Path(sys.executable).with_name("ferrumdb")
    if script.exists():
        return [str(script)]
    found = shutil.which("ferrumdb")
    return [found] if found else [sys.executable, "-m", "ferrumdb"]


def run(*args: str | Path, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``ferrumdb ARGS`` with ``stdin`` piped in; ``env`` is added to an environment
    without ``FERRUMDB_PASSPHRASE``."""
    full = {k: v for k, v in os.environ.items() if k != "FERRUMDB_PASSPHRASE"}
    full.update(env or {})
    return subprocess.run(
        [*ferrumdb_command(), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=full,
        timeout=120,
    )


def report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON line a piped check prints."""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    value = json.loads(lines[0])
    assert isinstance(value, dict)
    return value


def build(path: Path, encryption_key: Any = None) -> dict[str, Any]:
    """50 documents and one transaction; returns what the database holds."""
    with ferrumdb.open(path, encryption_key=encryption_key) as db:
        for i in range(50):
            db[f"k{i:02d}"] = {"i": i, "pad": "x" * 40}
        with db.transaction() as tx:
            tx["tx:a"] = 1
            tx["tx:b"] = 2
        return dict(db.items())


def flip_middle_byte(path: Path) -> int:
    data = bytearray(path.read_bytes())
    at = len(data) // 2
    data[at] ^= 0x40
    path.write_bytes(bytes(data))
    return at


# -- check ---------------------------------------------------------------------------------------


def test_clean_file_exits_0_with_the_report(db_path: Path) -> None:
    build(db_path)
    proc = run("check", db_path)
    assert proc.returncode == 0, proc.stderr
    r = report(proc)
    assert r["file"] == str(db_path)
    assert r["file_bytes"] == db_path.stat().st_size
    assert (r["status"], r["ok"], r["records"], r["writes"], r["transactions"]) == ("clean", True, 51, 52, 1)
    assert (r["damage"], r["damaged_bytes"], r["torn_tail"]) == ([], 0, None)
    assert "salvage" not in r
    # The same numbers as the Python API.
    py = ferrumdb.check(db_path)
    assert {k: r[k] for k in py} == py


def test_flipped_byte_exits_1_and_names_the_damaged_offset(db_path: Path) -> None:
    build(db_path)
    at = flip_middle_byte(db_path)
    proc = run("check", db_path)
    assert proc.returncode == 1
    assert proc.stderr == ""
    r = report(proc)
    assert (r["status"], r["ok"], r["records"]) == ("damaged", False, 50)
    [region] = r["damage"]
    assert region["offset"] <= at < region["offset"] + region["length"]
    assert region["reason"]
    assert r["damaged_bytes"] == region["length"]


def test_torn_tail_alone_is_not_damage(db_path: Path) -> None:
    build(db_path)
    size = db_path.stat().st_size
    fragment = db_path.read_bytes()[64:80]  # the start of a record, cut off
    with open(db_path, "ab") as f:
        f.write(fragment)
    proc = run("check", db_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = report(proc)
    assert (r["status"], r["ok"], r["damage"]) == ("torn_tail", True, [])
    assert r["torn_tail"]["offset"] == size
    # Up to its last non-zero byte (zeros past a crash are preallocated space).
    assert r["torn_tail"]["length"] == len(fragment.rstrip(b"\0"))


def test_salvage_writes_the_intact_records_to_a_new_database(db_path: Path, tmp_path: Path) -> None:
    before = build(db_path)
    flip_middle_byte(db_path)
    damaged = db_path.read_bytes()
    out = tmp_path / "saved.db"
    proc = run("check", db_path, "--salvage", out)
    assert proc.returncode == 1  # the original is still damaged
    r = report(proc)
    assert r["status"] == "damaged"
    assert r["salvage"]["out"] == str(out)
    assert r["salvage"]["lost_bytes"] == r["damaged_bytes"] > 0
    assert db_path.read_bytes() == damaged  # the original is never changed
    with ferrumdb.open(out) as db:
        after = dict(db.items())
    assert r["salvage"]["keys"] == len(after) == len(before) - 1
    assert all(before[k] == v for k, v in after.items())
    assert ferrumdb.check(out)["ok"] is True


def test_salvage_refuses_an_existing_out(db_path: Path, tmp_path: Path) -> None:
    build(db_path)
    out = tmp_path / "exists.db"
    out.write_bytes(b"precious")
    proc = run("check", db_path, "--salvage", out)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "already exists" in proc.stderr and "nothing was written" in proc.stderr
    assert out.read_bytes() == b"precious"


def test_missing_file_and_non_database_are_clear_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    proc = run("check", missing)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert "no such database file" in proc.stderr
    assert not missing.exists()
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 20)
    proc = run("check", text)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert "is not a readable FerrumDB database" in proc.stderr and "bad magic" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "required arguments were not provided:\n  <PATH>"),
        (["a.db", "b.db"], "unexpected argument 'b.db'"),
        (["a.db", "--salvage"], "a value is required for '--salvage <OUT>'"),
        (["a.db", "--bogus"], "unexpected argument '--bogus'"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    proc = run("check", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Usage: ferrumdb check" in proc.stderr


def test_help_documents_check_and_the_key_options() -> None:
    proc = run("check", "--help")
    assert proc.returncode == 0
    assert "--salvage OUT" in proc.stdout and "torn tail" in proc.stdout
    top = run("--help")
    assert "ferrumdb check PATH [--salvage OUT]" in top.stdout
    assert "--key-file FILE" in top.stdout and "FERRUMDB_PASSPHRASE" in top.stdout


# -- encrypted databases -----------------------------------------------------------------------


@pytest.fixture
def raw_db(tmp_path: Path) -> Path:
    path = tmp_path / "raw.db"
    build(path, encryption_key=RAW_KEY)
    return path


@pytest.fixture
def pass_db(tmp_path: Path) -> Path:
    path = tmp_path / "pass.db"
    build(path, encryption_key=PASSPHRASE)
    return path


def key_file(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "key"
    path.write_bytes(content)
    path.chmod(0o600)
    return path


def test_key_file_with_32_raw_bytes(raw_db: Path, tmp_path: Path) -> None:
    key = key_file(tmp_path, RAW_KEY)
    proc = run("--key-file", key, raw_db, stdin="GET k07\nCOUNT\n")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [{"i": 7, "pad": "x" * 40}, 52]
    proc = run("check", raw_db, "--key-file", key)
    assert proc.returncode == 0, proc.stderr
    assert report(proc)["records"] == 51


def test_key_file_with_a_passphrase_line(pass_db: Path, tmp_path: Path) -> None:
    key = key_file(tmp_path, PASSPHRASE.encode() + b"\n")
    proc = run(pass_db, "--key-file", key, stdin="GET tx:b\n")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "2\n", "")


def test_passphrase_from_the_environment(pass_db: Path, tmp_path: Path) -> None:
    env = {"FERRUMDB_PASSPHRASE": PASSPHRASE}
    proc = run(pass_db, stdin="GET k00\n", env=env)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == {"i": 0, "pad": "x" * 40}
    proc = run("check", pass_db, env=env)
    assert proc.returncode == 0 and report(proc)["ok"] is True
    out = tmp_path / "out.jsonl"
    proc = run("export", pass_db, out, env=env)
    assert (proc.returncode, json.loads(proc.stdout)) == (0, {"exported": 52})
    # A key given for a new database encrypts it.
    new = tmp_path / "new.db"
    proc = run("import", new, out, env=env)
    assert (proc.returncode, json.loads(proc.stdout)) == (0, {"imported": 52, "expired": 0, "indexes_created": []})
    with pytest.raises(ferrumdb.EncryptionError):
        ferrumdb.open(new)
    with ferrumdb.open(new, encryption_key=PASSPHRASE) as db:
        assert db["tx:a"] == 1


def test_wrong_key_exits_1_with_the_encryption_error(raw_db: Path, pass_db: Path, tmp_path: Path) -> None:
    proc = run(pass_db, stdin="GET k00\n", env={"FERRUMDB_PASSPHRASE": "not it"})
    assert (proc.returncode, proc.stdout) == (1, "")
    assert "wrong encryption key" in proc.stderr and "nothing was read or written" in proc.stderr
    wrong_raw = key_file(tmp_path, bytes(32))
    runs: list[list[str | Path]] = [
        ["check", raw_db, "--key-file", wrong_raw],
        ["export", raw_db, tmp_path / "o.jsonl", "--key-file", wrong_raw],
    ]
    for args in runs:
        proc = run(*args)
        assert (proc.returncode, proc.stdout) == (1, ""), args
        assert "wrong encryption key" in proc.stderr
    assert not (tmp_path / "o.jsonl").exists()
    # The wrong kind of key says what to do.
    proc = run(raw_db, stdin="COUNT\n", env={"FERRUMDB_PASSPHRASE": PASSPHRASE})
    assert proc.returncode == 1
    assert "encrypted with a raw 32-byte key, but FERRUMDB_PASSPHRASE gave a passphrase" in proc.stderr


def test_missing_key_when_piped_is_a_clear_error(pass_db: Path, tmp_path: Path) -> None:
    runs: list[list[str | Path]] = [[pass_db], ["check", pass_db], ["export", pass_db, tmp_path / "o.jsonl"]]
    for args in runs:
        proc = run(*args, stdin="COUNT\n")
        assert (proc.returncode, proc.stdout) == (1, ""), args
        assert "is encrypted; give its key with --key-file FILE or the FERRUMDB_PASSPHRASE" in proc.stderr


def test_key_for_a_plain_database_is_refused(db_path: Path, tmp_path: Path) -> None:
    build(db_path)
    before = db_path.read_bytes()
    proc = run(db_path, stdin="COUNT\n", env={"FERRUMDB_PASSPHRASE": PASSPHRASE})
    assert proc.returncode == 1
    assert "is not encrypted, but a key was given" in proc.stderr
    assert db_path.read_bytes() == before


def test_bad_key_files(pass_db: Path, tmp_path: Path) -> None:
    proc = run(pass_db, "--key-file", tmp_path / "nope", stdin="COUNT\n")
    assert proc.returncode == 1 and "cannot read the key file" in proc.stderr
    # A 32-character passphrase without its newline is 32 bytes: read as a raw key.
    proc = run(pass_db, "--key-file", key_file(tmp_path, b"p" * 32), stdin="COUNT\n")
    assert proc.returncode == 1 and "read as a raw key" in proc.stderr
    proc = run(pass_db, "--key-file", key_file(tmp_path, b"\n"), stdin="COUNT\n")
    assert proc.returncode == 1 and "no passphrase" in proc.stderr


def test_salvage_of_an_encrypted_database_keeps_it_encrypted(raw_db: Path, tmp_path: Path) -> None:
    before = build(raw_db, encryption_key=RAW_KEY)
    flip_middle_byte(raw_db)
    key = key_file(tmp_path, RAW_KEY)
    out = tmp_path / "saved.db"
    proc = run("check", raw_db, "--salvage", out, "--key-file", key)
    assert proc.returncode == 1
    r = report(proc)
    assert r["status"] == "damaged" and r["salvage"]["keys"] > 0
    with ferrumdb.open(out, encryption_key=RAW_KEY) as db:
        after = dict(db.items())
    assert len(after) == r["salvage"]["keys"]
    assert all(before[k] == v for k, v in after.items())


# -- the passphrase prompt ---------------------------------------------------------------------


def test_prompt_asks_for_the_passphrase_without_echo(pass_db: Path, tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "FERRUMDB_PASSPHRASE"}
    env.update(HOME=str(home), TERM="dumb", NO_COLOR="1")
    cmd = ferrumdb_command()
    child: Any = pexpect.spawn(
        cmd[0], [*cmd[1:], "--no-studio", str(pass_db)], env=env, encoding="utf-8", timeout=30
    )
    child.logfile_read = seen = io.StringIO()
    try:
        child.expect_exact(f"Passphrase for {pass_db}: ")
        child.sendline("wrong guess")
        child.expect_exact("wrong passphrase; try again")
        child.expect_exact(f"Passphrase for {pass_db}: ")
        child.sendline(PASSPHRASE)
        child.expect_exact("encrypted, so no history file")
        child.sendline("GET tx:a")
        child.expect_exact("\n1")
        child.sendline("EXIT")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    transcript = seen.getvalue()
    assert "GET tx:a" in transcript  # typed commands echo, the passphrases did not
    assert "wrong guess" not in transcript and PASSPHRASE not in transcript
    assert not (home / ".ferrumdb_history").exists()


def test_ctrl_c_at_the_prompt_cancels_and_restores_the_terminal(pass_db: Path, tmp_path: Path) -> None:
    """Ctrl-C is read as a key while echo is off: a clean exit 1, not a kill that leaves echo off."""
    pexpect = pytest.importorskip("pexpect")
    import termios

    env = {k: v for k, v in os.environ.items() if k != "FERRUMDB_PASSPHRASE"}
    env.update(HOME=str(tmp_path), TERM="dumb", NO_COLOR="1")
    cmd = ferrumdb_command()
    child: Any = pexpect.spawn(cmd[0], [*cmd[1:], "--no-studio", str(pass_db)], env=env, encoding="utf-8", timeout=30)
    try:
        child.expect_exact(f"Passphrase for {pass_db}: ")
        assert not termios.tcgetattr(child.child_fd)[3] & termios.ECHO, "echo is off while prompting"
        child.send("half a secr")
        child.sendcontrol("c")
        child.expect_exact("cancelled")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1 and child.signalstatus is None
