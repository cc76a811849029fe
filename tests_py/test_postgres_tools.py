"""The REPL and Ferrum Studio on a ``postgresql://`` URL (issue 16, SPEC sections 3, 4 and 7).

``ferrumdb URL`` (scripted over stdin here) and ``ferrumdb studio URL`` run the very
same commands and routes as on a file: the Rust tools call the Python ``PostgresDB``
handle through one backend trait. The REPL tests run each script on a file database
too and compare the output line by line; the Studio tests drive its JSON API over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import ferrumdb
from tests_py.pg_support import pg_url, server_url  # noqa: F401
from tests_py.test_cli import cli
from tests_py.test_cli_studio import TIMEOUT, get, put, read_url, start, stop, studio_proc  # noqa: F401


# Documents whose keys are in jsonb's own order (shorter names first), so the
# text PostgreSQL gives back lists them in the order they were written.
SCRIPT = """\
SET user:1 {"n": "ann", "age": 31, "city": "Paris", "tags": ["a"]}
SET user:2 {"n": "bob", "age": 25, "city": "Oslo", "tags": ["b", "c"]}
SET user:3 {"n": "cy", "age": 47, "city": "Paris", "tags": []}
SET other 7
GET user:2
KEYS user:
KEYS
COUNT
COUNT {"city": "Paris"}
COUNT {} PREFIX user:
INDEX city
INDEX age UNIQUE
INDEXES
FIND city "Paris"
FIND tags "c"
QUERY {"age": {"$gte": 30}} SORT -age
QUERY {"city": "Paris"} FIELDS n LIMIT 1
QUERY {} PREFIX user: SKIP 1
DISTINCT city
UPDATE user:2 {"$inc": {"age": 1}, "$push": {"tags": "d"}}
UPDATE nobody {"$set": {"a": 1}}
UPDATEMANY {"city": "Paris"} {"$set": {"zone": 1}}
GET user:3
DELETE other
DELETE other
DELETEMANY {"age": {"$lt": 30}}
DROP INDEX city
DROP INDEX city
INDEXES
KEYS
"""


def test_a_script_gives_the_file_backends_output(pg_url: str, tmp_path: Path) -> None:
    """Every command of a script prints, line for line, what it prints on a file database."""
    on_file = cli(tmp_path / "same.db", SCRIPT)
    on_pg = cli(pg_url, SCRIPT)
    assert on_file.returncode == 0, on_file.stderr
    assert on_pg.returncode == 0, on_pg.stderr
    assert on_pg.stderr == ""
    assert on_pg.stdout.splitlines() == on_file.stdout.splitlines()
    # And the writes are in the table, for every other client.
    with ferrumdb.open(pg_url) as db:
        assert db["user:1"] == {"n": "ann", "age": 31, "city": "Paris", "tags": ["a"], "zone": 1}
        assert sorted(db) == ["user:1", "user:3"]
        assert db.indexes() == ["age"]


def test_a_failing_command_exits_1_and_the_script_goes_on(pg_url: str) -> None:
    """A bad command is reported with its line number; later commands still run; the exit status is 1."""
    script = 'SET a 1\nGET missing\nQUERY {"x": {"$bad": 1}}\nSET b {oops\nSET c 3\nCOUNT\n'
    proc = cli(pg_url, script)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ['"OK"', '"OK"', "2"]
    errors = proc.stderr.splitlines()
    assert errors[0] == "error: line 2: key not found: missing"
    assert errors[1].startswith("error: line 3: ") and "$bad" in errors[1]
    assert errors[2].startswith("error: line 4: invalid JSON value")
    assert len(errors) == 3


def test_ttl_persist_stats_and_compact(pg_url: str) -> None:
    """SET EX, TTL and PERSIST keep their file meaning; STATS is the handle's stats(); COMPACT vacuums."""
    proc = cli(pg_url, "SET s {\"u\": 1} EX 300\nTTL s\nPERSIST s\nTTL s\nPERSIST s\nPERSIST nope\nSTATS\nCOMPACT\n")
    assert proc.returncode == 1  # PERSIST of a missing key
    out = proc.stdout.splitlines()
    assert out[0] == '"OK"'
    assert 299 < float(out[1]) <= 300
    assert out[2:5] == ["1", "null", "0"]
    stats = json.loads(out[5])
    assert stats["backend"] == "postgresql" and stats["keys"] == 1 and stats["sets"] == 1
    compacted = json.loads(out[6])
    assert set(compacted) == {"file_bytes_before", "file_bytes_after"}
    assert proc.stderr.strip() == "error: line 6: key not found: nope"
    with ferrumdb.open(pg_url) as db:
        assert db.ttl("s") is None and db["s"] == {"u": 1}


def test_read_only_refuses_writes(pg_url: str) -> None:
    """--read-only opens the handle read-only: reads work, a write fails naming why."""
    with ferrumdb.open(pg_url) as db:
        db["k"] = 1
    proc = cli(pg_url, "GET k\nSET k 2\n", "--read-only")
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["1"]
    assert "read_only" in proc.stderr
    with ferrumdb.open(pg_url) as db:
        assert db["k"] == 1


def test_bad_urls_and_unreachable_servers_fail_clearly() -> None:
    """A malformed URL, a bad table name and a server nobody listens on: one clear line, exit status 1."""
    bad = cli("postgresql://u@h:notaport/db", "COUNT\n")
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: bad PostgreSQL URL") and bad.stdout == ""
    table = cli("postgresql://u@localhost/db?table=no-dashes", "COUNT\n")
    assert table.returncode == 1 and "bad table name" in table.stderr
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    down = cli("postgresql://u:secret@127.0.0.1:1/db?connect_timeout=5", "COUNT\n")
    assert down.returncode == 1
    assert down.stderr.startswith("error: cannot reach PostgreSQL at 127.0.0.1:1")
    assert "secret" not in down.stderr and down.stdout == ""
    studio = subprocess.run(
        [sys.executable, "-m", "ferrumdb", "studio", "postgresql://u@127.0.0.1:1/db", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert studio.returncode == 1 and "cannot reach PostgreSQL at 127.0.0.1:1" in studio.stderr
    assert "Ferrum Studio:" not in studio.stdout


def test_without_psycopg_the_command_names_the_extra() -> None:
    """`ferrumdb URL` without the driver: one line naming pip install ferrumdb[postgres], exit 1.
    (No server is needed: the driver is missing before any connection.)"""
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from ferrumdb.__main__ import main\n"
        "sys.exit(main(['postgresql://u@localhost/db']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], input="COUNT\n", capture_output=True, text=True, timeout=TIMEOUT
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("error: ") and "pip install ferrumdb[postgres]" in proc.stderr


def test_file_only_options_and_subcommands_say_so(pg_url: str) -> None:
    """--fsync/--key-file and check/export/import on a URL are usage errors (2) that name PostgreSQL."""
    fsync = cli(pg_url, "COUNT\n", "--fsync=always")
    assert fsync.returncode == 2 and "--fsync applies to a FerrumDB file" in fsync.stderr
    for args in (["check", pg_url], ["export", pg_url, "out.jsonl"], ["import", pg_url, "in.jsonl"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ferrumdb", *args], capture_output=True, text=True, timeout=TIMEOUT
        )
        assert proc.returncode == 2, args
        assert f"`ferrumdb {args[0]}` works on a FerrumDB file, not on the PostgreSQL database" in proc.stderr


# -- Studio ------------------------------------------------------------------------------------


def call(url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One API request with Studio's header (unless ``headers`` replaces them); status and JSON answer."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(
        url.split("?")[0].rstrip("/") + path,
        data=data,
        method=method,
        headers={"X-Ferrum-Studio": "1", "Content-Type": "application/json"} if headers is None else headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return int(response.status), json.load(response)
    except urllib.error.HTTPError as e:
        return int(e.code), json.load(e)


def serve(pg_url: str, procs: list[subprocess.Popen[str]], *options: str) -> str:
    proc = start("studio", pg_url, "--port", "0", *options)
    procs.append(proc)
    assert proc.stdout is not None
    return read_url(proc.stdout.readline(), proc)


def test_studio_serves_a_postgresql_table(pg_url: str, studio_proc: list[subprocess.Popen[str]]) -> None:
    """Stats, key paging, documents (TTL kept on edit), query, indexes and errors, through the JSON API."""
    with ferrumdb.open(pg_url) as db:
        for i in range(5):
            db[f"user:{i}"] = {"n": f"u{i}", "age": 20 + i}
        db.set("session:1", {"user": "u1"}, ttl=600)
    url = serve(pg_url, studio_proc)

    stats = get(url, "/api/stats")
    assert (stats["backend"], stats["keys"]) == ("postgresql", 6)
    overview = get(url, "/api/overview")
    assert overview["backend"] == "postgresql" and overview["database_live"] is True
    password = urlsplit(pg_url).password
    assert overview["path"].startswith("postgresql://") and (not password or password not in overview["path"])

    # Keys, a page at a time, in key order.
    first = get(url, "/api/keys?prefix=user:&limit=2")
    assert first["keys"] == ["user:0", "user:1"] and first["next"]
    second = get(url, f"/api/keys?prefix=user:&limit=2&after={first['next']}")
    third = get(url, f"/api/keys?prefix=user:&limit=2&after={second['next']}")
    assert second["keys"] == ["user:2", "user:3"] and third == {"keys": ["user:4"], "next": None}
    entries = get(url, "/api/entries?prefix=session:")["entries"]
    assert [e["key"] for e in entries] == ["session:1"] and 590 < entries[0]["ttl"] <= 600

    # Documents: an edit keeps the TTL; ?ttl= sets or clears it; insert-only refuses an existing key.
    doc = get(url, "/api/docs/session:1")
    assert doc["value"] == {"user": "u1"} and 590 < doc["ttl"] <= 600
    assert call(url, "PUT", "/api/docs/session:1", {"user": "u2"})[1]["ttl"] == pytest.approx(doc["ttl"], abs=5)
    assert 590 < get(url, "/api/docs/session:1")["ttl"] <= 600
    assert call(url, "PUT", "/api/docs/session:1?ttl=none", {"user": "u2"})[1]["ttl"] is None
    status, answer = call(url, "PUT", "/api/docs/new?ttl=30", [1, 2])
    assert status == 200 and answer["created"] is True and 25 < answer["ttl"] <= 30
    status, _ = call(url, "PUT", "/api/docs/new", [3], headers={**JSON_HEADERS, "If-None-Match": "*"})
    assert status == 412
    assert call(url, "DELETE", "/api/docs/new") == (200, {"key": "new", "deleted": True})
    assert call(url, "GET", "/api/docs/new")[0] == 404
    assert call(url, "DELETE", "/api/docs/new")[0] == 404
    with ferrumdb.open(pg_url) as db:
        assert db["session:1"] == {"user": "u2"} and db.ttl("session:1") is None

    # Query and find.
    status, answer = call(url, "POST", "/api/query", {"filter": {"age": {"$gte": 22}}, "sort": "-age", "limit": 2})
    assert status == 200
    assert answer["results"] == [["user:4", {"n": "u4", "age": 24}], ["user:3", {"n": "u3", "age": 23}]]
    assert answer["total"] == 3 and answer["more"] is True and answer["plan"]["backend"] == "postgresql"
    assert call(url, "POST", "/api/find", {"field": "n", "value": "u2"})[1]["keys"] == ["user:2"]

    # Indexes: created (201), again (200), listed, dropped.
    assert call(url, "POST", "/api/indexes", {"field": "age"}) == (201, {"field": "age", "created": True})
    assert call(url, "POST", "/api/indexes", {"field": "age"}) == (200, {"field": "age", "created": False})
    assert get(url, "/api/indexes") == {"indexes": [{"field": "age", "entries": None}]}
    assert call(url, "DELETE", "/api/indexes/age") == (200, {"field": "age", "dropped": True})
    assert call(url, "DELETE", "/api/indexes/age")[0] == 404

    # Bad input is a 4xx with a message, never a crash.
    status, answer = call(url, "POST", "/api/query", {"filter": {"age": {"$bad": 1}}})
    assert status == 400 and "$bad" in answer["error"]
    assert call(url, "POST", "/api/query", b"{not json")[0] == 400
    assert call(url, "PUT", "/api/docs/k?ttl=-1", 1)[0] == 400
    assert call(url, "POST", "/api/indexes", {"field": "a..b"})[0] == 400
    # Mutations need Studio's header, as on a file.
    assert call(url, "PUT", "/api/docs/k", 1, headers={"Content-Type": "application/json"})[0] == 403
    # A file backup has no meaning here: the job fails naming pg_dump.
    assert call(url, "POST", "/api/ops/backup", {"path": "/tmp/x.db"})[0] == 202
    job = get(url, "/api/ops")["job"]
    for _ in range(1000):  # the job answers at once; each request is a round trip, no sleep
        if job["state"] != "running":
            break
        job = get(url, "/api/ops")["job"]
    assert job["state"] == "failed" and "pg_dump" in job["error"]
    code, out, err = stop(studio_proc[-1])
    assert code == 0, err
    assert out == "" and "press Ctrl-C to stop" in err


JSON_HEADERS = {"X-Ferrum-Studio": "1", "Content-Type": "application/json"}


def test_studio_token_and_read_only(pg_url: str, studio_proc: list[subprocess.Popen[str]]) -> None:
    """--token and --read-only mean on a URL what they mean on a file."""
    with ferrumdb.open(pg_url) as db:
        db["k"] = 1
    url = serve(pg_url, studio_proc, "--token", "s3cret", "--read-only")
    assert "?token=s3cret" in url
    assert call(url, "GET", "/api/stats", headers={})[0] == 403
    bearer = {"Authorization": "Bearer s3cret"}
    status, stats = call(url, "GET", "/api/stats", headers=bearer)
    assert status == 200 and stats["keys"] == 1
    assert call(url, "PUT", "/api/docs/k", 2, headers={**JSON_HEADERS, **bearer})[0] == 403
    code, _, err = stop(studio_proc[-1])
    assert code == 0, err
    with ferrumdb.open(pg_url) as db:
        assert db["k"] == 1


def test_the_interactive_repl_on_a_url(pg_url: str, tmp_path: Path) -> None:
    """At a terminal: the banner names the URL without its password, Tab completes keys from the
    table and the indexed fields after DROP INDEX, and output is indented."""
    pexpect = pytest.importorskip("pexpect")
    from tests_py.test_cli_pty import READING, TAB, Repl, plain

    with ferrumdb.open(pg_url) as db:
        db["user:alpha"] = {"name": "alice"}
        db["user:beta"] = {"name": "bob"}
        db.create_index("name")
    home = tmp_path / "home"
    home.mkdir()
    repl = Repl.__new__(Repl)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE")}
    env.update(HOME=str(home), TERM="xterm-256color", NO_COLOR="1")
    repl.child = pexpect.spawn(
        sys.executable,
        ["-m", "ferrumdb", "--no-studio", pg_url],
        env=env,
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 200),
    )
    try:
        repl.child.expect_exact("Type HELP for commands")
        banner = plain(str(repl.child.before))
        repl.child.expect_exact(READING)
        assert "(2 keys)" in banner and "postgresql://" in banner
        password = urlsplit(pg_url).password
        assert not password or password not in banner
        assert '"name": "alice"' in plain(repl.run("GET user:a" + TAB))
        assert plain(repl.run("DROP INDEX na" + TAB)).strip().endswith("1")
        assert plain(repl.run("SET user:gamma {name: 'cy'} EX 60")).strip().endswith("OK")
        assert repl.exit() == 0
    finally:
        if repl.child.isalive():
            repl.child.terminate(force=True)
    with ferrumdb.open(pg_url) as db:
        assert db.indexes() == [] and db["user:gamma"] == {"name": "cy"} and db.ttl("user:gamma") is not None


def test_db_studio_serves_the_handle_in_process(pg_url: str) -> None:
    """PostgresDB.studio() serves Studio from the application's process, as FerrumDB.studio() does:
    the same arguments return the running URL, edits reach the handle, close() stops it."""
    db = ferrumdb.open(pg_url)
    try:
        db["user:1"] = {"n": "ann"}
        url = db.studio(port=0)
        assert url.startswith("http://127.0.0.1:") and db.studio(port=0) == url
        assert get(url, "/api/stats")["keys"] == 1
        assert call(url, "PUT", "/api/docs/user:2", {"n": "bob"})[0] == 200
        assert db["user:2"] == {"n": "bob"}
        with pytest.raises(ValueError, match="token"):
            db.studio(port=0, host="0.0.0.0")
        read_only = db.studio(port=0, read_only=True)  # other arguments: a new Studio
        assert call(read_only, "PUT", "/api/docs/user:3", 1)[0] == 403
        assert db.stop_studio() is True and db.stop_studio() is False
        url = db.studio(port=0)
    finally:
        db.close()
    with pytest.raises(urllib.error.URLError):
        get(url, "/api/stats")


def test_a_process_that_never_stops_its_studio_exits_cleanly(pg_url: str) -> None:
    """A program that starts db.studio() and exits without close() (the handle even deleted) ends
    with status 0: Studio stops while the interpreter still runs, not during its teardown."""
    code = (
        "import json, sys, urllib.request, ferrumdb\n"
        "db = ferrumdb.open(sys.argv[1])\n"
        "db['a'] = 1\n"
        "url = db.studio(port=0)\n"
        "print(json.load(urllib.request.urlopen(url + 'api/stats'))['keys'])\n"
        "del db\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, pg_url], capture_output=True, text=True, timeout=TIMEOUT)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "1\n", "")


def test_persist_is_seen_by_watchers(pg_url: str) -> None:
    """PERSIST rewrites the key on a file, so a watcher sees it set again; on PostgreSQL too."""
    with ferrumdb.open(pg_url) as db:
        db.set("s", {"u": 1}, ttl=300)
        with db.watch("s") as changes:
            proc = cli(pg_url, "PERSIST s\n")
            assert (proc.returncode, proc.stdout) == (0, "1\n"), proc.stderr
            assert next(iter(changes)) == ("set", "s", {"u": 1})
        assert db.ttl("s") is None


def test_studio_metrics_count_every_process_writes(pg_url: str, studio_proc: list[subprocess.Popen[str]]) -> None:
    """The live metrics show the table's writes and deletes by other processes (PostgreSQL's
    statistics), not only Studio's own: a handle that writes and closes is counted."""
    import time

    url = serve(pg_url, studio_proc)
    first = get(url, "/api/metrics")["samples"][-1]
    with ferrumdb.open(pg_url) as app:  # another handle, another session, as an application's
        for i in range(20):
            app[f"k{i}"] = i
        app.delete("k0")
    # Closing the session reported its statistics; Studio samples them once a second, so
    # the newest sample counts them within a few samples (bounded: no open-ended wait).
    deadline = time.monotonic() + TIMEOUT
    while True:
        newest = get(url, "/api/metrics")["samples"][-1]
        if newest["sets"] >= first["sets"] + 20 and newest["deletes"] >= first["deletes"] + 1:
            break
        assert time.monotonic() < deadline, f"other processes' writes never counted: {first} -> {newest}"
        time.sleep(0.2)
