"""Ferrum Studio over real HTTP against ``db.studio(port=0)`` (README "Use it from Python", "The command line" and "Ferrum Studio")."""

from __future__ import annotations

import errno
import json
import os
import pty
import select
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ferrumdb


def call(
    url: str,
    path: str,
    method: str = "GET",
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    studio_header: bool = True,
) -> tuple[int, Any]:
    """One request; returns (status, decoded JSON body)."""
    base = url.split("?")[0].rstrip("/")
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    h = dict(headers or {})
    if method != "GET" and studio_header:
        h["X-Ferrum-Studio"] = "1"
    req = urllib.request.Request(base + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


def doc(key: str) -> str:
    return "/api/docs/" + urllib.parse.quote(key, safe="")


@pytest.fixture
def studio(db: ferrumdb.FerrumDB) -> Iterator[str]:
    """The URL of a Studio serving ``db`` on a free port."""
    yield db.studio(port=0)


def test_studio_returns_url_with_real_port(db: ferrumdb.FerrumDB) -> None:
    """port=0 picks a free port and the URL names it; the page is served there."""
    url = db.studio(port=0)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")
    port = int(url.rsplit(":", 1)[1].rstrip("/"))
    assert port > 0
    with urllib.request.urlopen(url, timeout=10) as res:
        assert res.status == 200
        assert b"Ferrum Studio" in res.read()


def test_python_writes_are_visible_live(db: ferrumdb.FerrumDB, studio: str) -> None:
    """What Python writes after Studio started is what the API answers."""
    assert call(studio, doc("user:1"))[0] == 404
    db["user:1"] = {"name": "alice", "tags": ["a"]}
    assert call(studio, doc("user:1")) == (200, {"key": "user:1", "value": {"name": "alice", "tags": ["a"]}, "ttl": None})
    db["user:2"] = 2
    assert call(studio, "/api/keys?prefix=user:") == (200, {"keys": ["user:1", "user:2"], "next": None})
    del db["user:1"]
    assert call(studio, doc("user:1"))[0] == 404
    status, stats = call(studio, "/api/stats")
    assert status == 200
    assert stats["keys"] == 1 and stats["keys"] == db.stats()["keys"]
    assert set(db.stats()) <= set(stats)


def test_put_then_python_reads_it(db: ferrumdb.FerrumDB, studio: str) -> None:
    """A document stored through the API is the same object in Python, odd keys included."""
    for key in ["doc:1", "a/b c", "ünï:😀", "50%"]:
        value = {"key": key, "n": [1, 2.5, None, True], "big": 2**63 - 1}
        assert call(studio, doc(key), "PUT", value) == (200, {"key": key, "created": True, "ttl": None})
        assert db[key] == value
    assert call(studio, doc("doc:1"), "DELETE") == (200, {"key": "doc:1", "deleted": True})
    assert "doc:1" not in db


def test_query_indexes_and_find(db: ferrumdb.FerrumDB, studio: str) -> None:
    """POST /api/query answers results and the plan; indexes made in the API serve Python too."""
    for i in range(10):
        db[f"u{i}"] = {"role": "admin" if i < 3 else "user", "score": i}
    status, created = call(studio, "/api/indexes", "POST", {"field": "role"})
    assert (status, created) == (201, {"field": "role", "created": True})
    assert db.indexes() == ["role"]
    assert call(studio, "/api/indexes") == (200, {"indexes": [{"field": "role", "entries": 10}]})
    status, res = call(studio, "/api/query", "POST", {"filter": {"role": "admin"}, "sort": "-score", "limit": 2})
    assert status == 200
    assert res["results"] == [["u2", {"role": "admin", "score": 2}], ["u1", {"role": "admin", "score": 1}]]
    assert res["plan"]["index"] == "role"
    assert res["plan"] == db.explain({"role": "admin"})
    status, found = call(studio, "/api/find", "POST", {"field": "role", "value": "admin"})
    assert found["keys"] == db.find("role", "admin")


@pytest.mark.parametrize(
    ("method", "path", "payload", "status"),
    [
        ("GET", "/api/docs/missing", None, 404),
        ("DELETE", "/api/docs/missing", None, 404),
        ("PUT", "/api/docs/k", b"{not json", 400),
        ("PUT", "/api/docs/k", b"", 400),
        ("POST", "/api/query", b'{"filter": {"a": {"$nope": 1}}}', 400),
        ("POST", "/api/query", b"[]", 400),
        ("POST", "/api/indexes", b'{"field": 7}', 400),
        ("GET", "/api/keys?after=not-a-cursor", None, 400),
        ("GET", "/api/keys?limit=0", None, 400),
        ("GET", "/api/nowhere", None, 404),
        ("POST", "/api/stats", b"{}", 405),
    ],
)
def test_bad_requests_get_json_4xx(
    db: ferrumdb.FerrumDB, studio: str, method: str, path: str, payload: bytes | None, status: int
) -> None:
    """Every bad request is a 4xx with {"error": "..."}; nothing is written and the server goes on."""
    db["k"] = {"keep": True}
    got, body = call(studio, path, method, raw=payload)
    assert got == status
    assert isinstance(body["error"], str) and body["error"]
    assert db["k"] == {"keep": True}
    assert call(studio, "/api/stats")[0] == 200


def test_huge_body_is_413(db: ferrumdb.FerrumDB, studio: str) -> None:
    """A body over the limit is refused with 413 and nothing is stored."""
    big = b'"' + b"x" * (17 * 1024 * 1024) + b'"'
    try:
        status, body = call(studio, "/api/docs/big", "PUT", raw=big)
    except (ConnectionResetError, BrokenPipeError, urllib.error.URLError):
        # The server may answer 413 and close before the client has sent everything.
        status, body = 413, {"error": "connection closed after 413"}
    assert status == 413 and body["error"]
    assert "big" not in db
    assert call(studio, "/api/stats")[0] == 200


def test_mutations_need_the_header(db: ferrumdb.FerrumDB, studio: str) -> None:
    """Without X-Ferrum-Studio: 1 a change is 403 and not made."""
    status, body = call(studio, "/api/docs/k", "PUT", {"v": 1}, studio_header=False)
    assert status == 403 and "X-Ferrum-Studio" in body["error"]
    assert "k" not in db


def test_cors_preflight_is_refused(db: ferrumdb.FerrumDB, studio: str) -> None:
    """An OPTIONS preflight gets 403 and no CORS allowance."""
    req = urllib.request.Request(
        studio + "api/docs/k",
        method="OPTIONS",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    with info.value as refused:
        assert refused.code == 403
        assert refused.headers.get("Access-Control-Allow-Origin") is None


def test_read_only_studio(db: ferrumdb.FerrumDB) -> None:
    """read_only=True: reads work, every change is 403."""
    db["k"] = 1
    url = db.studio(port=0, read_only=True)
    assert call(url, doc("k"))[0] == 200
    for method, path, body in [("PUT", doc("k"), 2), ("DELETE", doc("k"), None), ("POST", "/api/indexes", {"field": "a"})]:
        status, answer = call(url, path, method, body)
        assert status == 403 and "read-only" in answer["error"]
    assert db["k"] == 1 and db.indexes() == []
    # Queries, explain and find are reads: a read-only Studio answers them (README "Ferrum Studio").
    status, answer = call(url, "/api/query", "POST", {"filter": {}})
    assert status == 200 and answer["results"] == [["k", 1]]
    assert call(url, "/api/explain", "POST", {"filter": {}})[0] == 200
    assert call(url, "/api/find", "POST", {"field": "a", "value": 1})[0] == 200


def test_edit_keeps_ttl_unless_changed(db: ferrumdb.FerrumDB, studio: str) -> None:
    """PUT keeps the key's TTL; ?ttl=SECONDS sets it, ?ttl=none clears it; GET shows it."""
    db.set("s", {"v": 1}, ttl=3600)
    status, answer = call(studio, doc("s"), "PUT", {"v": 2})
    assert status == 200 and 3500 < answer["ttl"] <= 3600
    ttl = db.ttl("s")
    assert ttl is not None and 3500 < ttl <= 3600 and db["s"] == {"v": 2}
    assert 3500 < call(studio, doc("s"))[1]["ttl"] <= 3600
    assert call(studio, doc("s") + "?ttl=60", "PUT", {"v": 3})[1]["ttl"] <= 60
    ttl = db.ttl("s")
    assert ttl is not None and 0 < ttl <= 60
    assert call(studio, doc("s") + "?ttl=none", "PUT", {"v": 4})[1]["ttl"] is None
    assert db.ttl("s") is None and db["s"] == {"v": 4}
    status, answer = call(studio, doc("s") + "?ttl=soon", "PUT", {"v": 5})
    assert status == 400 and "ttl" in answer["error"] and db["s"] == {"v": 4}


def test_hyper_errors_are_json(studio: str) -> None:
    """Errors answered before routing (414 for a URI over 64 KiB, 400 for garbage) are JSON too."""
    status, answer = call(studio, doc("k" * 70_000))
    assert status == 414 and "64 KiB" in answer["error"]


def test_token(db: ferrumdb.FerrumDB) -> None:
    """With a token the API needs Authorization: Bearer; the URL carries ?token= for the page."""
    db["k"] = 1
    url = db.studio(port=0, token="s3cret")
    assert url.endswith("/?token=s3cret")
    status, body = call(url, doc("k"))
    assert status == 403 and "token" in body["error"]
    assert call(url, doc("k"), headers={"Authorization": "Bearer wrong"})[0] == 403
    assert call(url, doc("k"), headers={"Authorization": "Bearer s3cret"})[0] == 200
    assert call(url, doc("k"), "PUT", 5, headers={"Authorization": "Bearer s3cret"})[0] == 200
    assert db["k"] == 5


def test_non_loopback_host_needs_token(db: ferrumdb.FerrumDB) -> None:
    """Binding beyond loopback without a token is a ValueError; with one it works."""
    with pytest.raises(ValueError, match="token"):
        db.studio(port=0, host="0.0.0.0")
    url = db.studio(port=0, host="0.0.0.0", token="t")
    assert url.startswith("http://0.0.0.0:")


def test_port_in_use_is_oserror(db: ferrumdb.FerrumDB) -> None:
    """A taken port is a clear OSError (EADDRINUSE)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(OSError, match="port") as info:
            db.studio(port=port)
        assert info.value.errno == errno.EADDRINUSE


def test_second_call(db: ferrumdb.FerrumDB) -> None:
    """Same arguments: the running Studio's URL; other arguments: the old one stops, a new one starts."""
    url = db.studio(port=0)
    assert db.studio(port=0) == url
    # A port known to differ from the first, so the old URL cannot be served again.
    other = db.studio(port=_free_port(), read_only=True)
    assert other != url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "api/stats", timeout=5)
    assert call(other, "/api/overview")[1]["studio_read_only"] is True
    assert db.stop_studio() is True
    assert db.stop_studio() is False


def test_close_stops_the_server(db_path: Path) -> None:
    """db.close() stops Studio: the port no longer answers."""
    db = ferrumdb.open(db_path)
    url = db.studio(port=0)
    assert call(url, "/api/stats")[0] == 200
    db.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "api/stats", timeout=5)
    with pytest.raises(ferrumdb.ClosedError):
        db.studio(port=0)


def test_studio_on_read_only_database(db_path: Path) -> None:
    """A read-only handle serves Studio beside the writer; writes through it are 403."""
    with ferrumdb.open(db_path) as writer:
        writer["k"] = 1
        writer.flush()
        with ferrumdb.open(db_path, read_only=True) as reader:
            url = reader.studio(port=0)
            assert call(url, doc("k"))[1]["value"] == 1
            assert call(url, doc("k"), "PUT", 2)[0] == 403
            overview = call(url, "/api/overview")[1]
            assert overview["database_read_only"] is True
            assert overview["database_live"] is True
            # It follows the writer: a key written now shows up, no reopen.
            writer["new"] = 2
            assert call(url, doc("new"))[1]["value"] == 2
            assert call(url, "/api/overview")[1]["keys"] == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_until(fd: int, needle: bytes, limit: float = 20.0) -> bytes:
    """Read from a pty until `needle` appears (select with a bound, not a sleep)."""
    out = b""
    while needle not in out:
        ready, _, _ = select.select([fd], [], [], limit)
        if not ready:
            raise AssertionError(f"timed out waiting for {needle!r}; got {out!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def _repl(args: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferrumdb", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "dumb", "HOME": str(Path(args[0]).parent)},
    )
    os.close(slave)
    return proc, master


def test_repl_starts_studio(tmp_path: Path) -> None:
    """The interactive REPL serves Studio on --port and prints its URL."""
    port = _free_port()
    proc, master = _repl([str(tmp_path / "r.db"), "--port", str(port)])
    try:
        out = _read_until(master, b"ferrumdb>")
        assert f"Ferrum Studio: http://127.0.0.1:{port}/".encode() in out
        assert call(f"http://127.0.0.1:{port}/", "/api/stats")[0] == 200
        os.write(master, b"EXIT\r")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_repl_busy_port_warns_and_continues(tmp_path: Path) -> None:
    """A taken port is a warning; the REPL still runs. --no-studio starts nothing."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc, master = _repl([str(tmp_path / "r.db"), "--port", str(port)])
        try:
            out = _read_until(master, b"ferrumdb>")
            assert b"warning" in out and b"without Studio" in out
            os.write(master, b"SET a 1\r")
            assert b"OK" in _read_until(master, b"OK")
            os.write(master, b"EXIT\r")
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
    proc, master = _repl([str(tmp_path / "r.db"), "--no-studio"])
    try:
        out = _read_until(master, b"ferrumdb>")
        assert b"Studio" not in out
        os.write(master, b"EXIT\r")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_script_mode_does_not_start_studio(tmp_path: Path) -> None:
    """With stdin not a terminal and no --port given, no Studio is started."""
    proc = subprocess.run(
        [sys.executable, "-m", "ferrumdb", str(tmp_path / "s.db")],
        input="SET a 1\nGET a\n",
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0
    assert "Studio" not in proc.stdout + proc.stderr
