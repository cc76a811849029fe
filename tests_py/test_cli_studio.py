"""``ferrumdb studio PATH`` serves Ferrum Studio alone until SIGINT or SIGTERM (README "The command line"),
and script mode starts Studio when ``--port`` is given.

Each test starts a real process with ``--port 0`` and reads the URL it prints on stdout as soon as Studio
listens (no sleeps, no polling), talks to it over HTTP, then signals it and checks the exit status.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

TIMEOUT = 30
URL_LINE = re.compile(r"^Ferrum Studio: (http://127\.0\.0\.1:(\d+)/\S*)$")


def start(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """``python -m ferrumdb ARGS`` with stdout and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "ferrumdb", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def read_url(line: str, proc: subprocess.Popen[str]) -> str:
    """The URL on a ``Ferrum Studio: URL`` line; on anything else, the process's stderr in the failure."""
    match = URL_LINE.match(line.rstrip("\n"))
    if match is None:
        proc.kill()
        _, err = proc.communicate(timeout=TIMEOUT)
        pytest.fail(f"expected the Studio URL, got {line!r}; stderr: {err}")
    assert int(match.group(2)) != 0
    return match.group(1)


def get(url: str, path: str) -> Any:
    with urllib.request.urlopen(url.rstrip("/") + path, timeout=TIMEOUT) as response:
        return json.load(response)


def put(url: str, path: str, value: Any) -> int:
    """PUT ``value`` as Studio's editor does; the HTTP status."""
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=json.dumps(value).encode(),
        method="PUT",
        headers={"X-Ferrum-Studio": "1", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[int, str, str]:
    """Send ``sig``; the exit status and the rest of stdout and stderr."""
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out, err


@pytest.fixture
def studio_proc() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still running at the end is killed."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=TIMEOUT)


def test_studio_serves_until_ctrl_c(db_path: Path, studio_proc: list[subprocess.Popen[str]]) -> None:
    """`ferrumdb studio PATH --port 0` prints its URL at once, serves the database, and SIGINT ends it with 0."""
    with ferrumdb.open(db_path) as db:
        db["user:1"] = {"name": "ann"}
    proc = start("studio", str(db_path), "--port", "0")
    studio_proc.append(proc)
    assert proc.stdout is not None
    url = read_url(proc.stdout.readline(), proc)
    overview = get(url, "/api/overview")
    assert overview["keys"] == 1
    assert overview["path"] == str(db_path)
    assert (overview["database_read_only"], overview["studio_read_only"]) == (False, False)
    assert get(url, "/api/docs/user:1")["value"] == {"name": "ann"}
    # Studio alone is a writer: an edit is stored.
    assert put(url, "/api/docs/user:2", {"name": "bob"}) == 200
    code, out, err = stop(proc)
    assert code == 0, err
    assert out == ""
    assert "press Ctrl-C to stop" in err
    assert "error" not in err
    # Closed cleanly: the edit is there for the next process.
    with ferrumdb.open(db_path) as db:
        assert db["user:2"] == {"name": "bob"}


def test_sigterm_also_ends_it_cleanly(db_path: Path, studio_proc: list[subprocess.Popen[str]]) -> None:
    """SIGTERM (a service manager's stop) ends Studio with exit status 0, like Ctrl-C."""
    proc = start("studio", str(db_path), "--port=0")
    studio_proc.append(proc)
    assert proc.stdout is not None
    url = read_url(proc.stdout.readline(), proc)
    assert get(url, "/api/stats")["keys"] == 0
    code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err


def test_read_only_refuses_edits(db_path: Path, studio_proc: list[subprocess.Popen[str]]) -> None:
    """--read-only: Studio says so in its overview and answers edits with 403; nothing is written."""
    with ferrumdb.open(db_path) as db:
        db["k"] = 1
    proc = start("studio", str(db_path), "--port", "0", "--read-only")
    studio_proc.append(proc)
    assert proc.stdout is not None
    url = read_url(proc.stdout.readline(), proc)
    assert get(url, "/api/overview")["studio_read_only"] is True
    assert put(url, "/api/docs/k", 2) == 403
    code, _, err = stop(proc)
    assert code == 0, err
    with ferrumdb.open(db_path) as db:
        assert db["k"] == 1


def test_beside_a_running_app_it_reads_and_writes(db_path: Path, studio_proc: list[subprocess.Popen[str]]) -> None:
    """Beside an app writing the database (this process), Studio opens it for writing too: each sees the other's writes."""
    with ferrumdb.open(db_path) as app:
        app["before"] = 1
        proc = start("studio", str(db_path), "--port", "0")
        studio_proc.append(proc)
        assert proc.stdout is not None
        url = read_url(proc.stdout.readline(), proc)
        overview = get(url, "/api/overview")
        assert (overview["database_read_only"], overview["database_live"]) == (False, True)
        app["after"] = {"seen": True}
        assert get(url, "/api/docs/after")["value"] == {"seen": True}
        assert put(url, "/api/docs/before", 2) == 200
        assert app["before"] == 2
        code, _, err = stop(proc)
        assert code == 0, err


def test_beside_an_exclusive_writer_it_opens_read_only_and_follows(
    db_path: Path, studio_proc: list[subprocess.Popen[str]]
) -> None:
    """With the database open by an exclusive writer in another process (this one), Studio says in one line that it
    serves it read-only, and shows that process's later writes."""
    with ferrumdb.open(db_path, exclusive=True) as writer:
        writer["before"] = 1
        proc = start("studio", str(db_path), "--port", "0")
        studio_proc.append(proc)
        assert proc.stdout is not None and proc.stderr is not None
        note = proc.stderr.readline()
        assert note == (
            f"note: {db_path} is open for writing in process {os.getpid()}; "
            "Studio serves it read-only, following its writes as they happen\n"
        )
        url = read_url(proc.stdout.readline(), proc)
        overview = get(url, "/api/overview")
        assert (overview["database_read_only"], overview["database_live"]) == (True, True)
        assert overview["studio_read_only"] is True
        writer["after"] = {"seen": True}
        assert get(url, "/api/docs/after")["value"] == {"seen": True}
        assert put(url, "/api/docs/before", 2) == 403
        code, _, err = stop(proc)
        assert code == 0, err
        assert writer["before"] == 1


def test_busy_port_fails_with_status_1(db_path: Path, studio_proc: list[subprocess.Popen[str]]) -> None:
    """A port that is taken is an error naming it, exit status 1."""
    ferrumdb.open(db_path).close()
    first = start("studio", str(db_path), "--port", "0", "--read-only")
    studio_proc.append(first)
    assert first.stdout is not None
    port = re.search(r":(\d+)/", read_url(first.stdout.readline(), first))
    assert port is not None
    second = subprocess.run(
        [sys.executable, "-m", "ferrumdb", "studio", str(db_path), "--port", port.group(1), "--read-only"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert second.returncode == 1
    assert f"127.0.0.1:{port.group(1)}" in second.stderr
    assert second.stdout == ""
    assert stop(first)[0] == 0


def test_other_hosts_need_a_token(db_path: Path) -> None:
    """--host 0.0.0.0 without --token is refused before anything is served (exit status 1)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ferrumdb", "studio", str(db_path), "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 1
    assert "pass a token" in proc.stderr
    assert proc.stdout == ""


def test_bad_arguments_exit_2(db_path: Path) -> None:
    """A missing PATH or a bad port is a usage error (exit status 2) showing the studio usage line."""
    for args in (["studio"], ["studio", str(db_path), "--port", "http"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ferrumdb", *args], capture_output=True, text=True, timeout=TIMEOUT
        )
        assert proc.returncode == 2, args
        assert "Usage: ferrumdb studio PATH" in proc.stderr, proc.stderr


def test_script_mode_starts_studio_when_port_is_given(
    db_path: Path, studio_proc: list[subprocess.Popen[str]]
) -> None:
    """`ferrumdb PATH --port 0` with a script on stdin serves Studio while the script runs; its URL goes to
    stderr, so stdout stays one JSON line per command."""
    proc = start(str(db_path), "--port", "0", stdin=subprocess.PIPE)
    studio_proc.append(proc)
    assert proc.stdin is not None and proc.stderr is not None
    url = read_url(proc.stderr.readline(), proc)
    assert get(url, "/api/stats")["keys"] == 0
    out, err = proc.communicate('SET a {n: 1}\nCOUNT\n', timeout=TIMEOUT)
    assert (proc.returncode, out, err) == (0, '"OK"\n1\n', "")


def test_script_mode_without_port_starts_no_studio(db_path: Path) -> None:
    """Without --port a script starts no Studio (parallel scripts must not fight over a port)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ferrumdb", str(db_path)],
        input="COUNT\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "0\n", "")
