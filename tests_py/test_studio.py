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
import time
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


def test_entries_show_type_size_preview_and_ttl(db: ferrumdb.FerrumDB, studio: str) -> None:
    """GET /api/entries lists each key with its value's type, size in bytes, a preview and its TTL."""
    db["a:obj"] = {"name": "Ada", "tags": ["x"]}
    db["a:num"] = 42
    db.set("a:session", "token", ttl=3600)
    db["a:long"] = "x" * 500
    status, res = call(studio, "/api/entries?prefix=a:")
    assert status == 200 and res["next"] is None and res["search"] is None
    rows = {e["key"]: e for e in res["entries"]}
    assert [e["key"] for e in res["entries"]] == ["a:long", "a:num", "a:obj", "a:session"]
    assert rows["a:obj"]["type"] == "object" and rows["a:obj"]["preview"] == '{"name":"Ada","tags":["x"]}'
    assert rows["a:obj"]["bytes"] == len(b'{"name":"Ada","tags":["x"]}')
    assert rows["a:num"]["type"] == "number" and rows["a:num"]["ttl"] is None
    assert rows["a:session"]["type"] == "string" and 3500 < rows["a:session"]["ttl"] <= 3600
    assert rows["a:long"]["bytes"] == 502 and rows["a:long"]["preview"].endswith("…")
    assert len(rows["a:long"]["preview"]) == 121
    # Paging: a cursor per page, as /api/keys.
    status, first = call(studio, "/api/entries?prefix=a:&limit=3")
    assert [e["key"] for e in first["entries"]] == ["a:long", "a:num", "a:obj"] and first["next"]
    status, second = call(studio, f"/api/entries?prefix=a:&limit=3&after={first['next']}")
    assert [e["key"] for e in second["entries"]] == ["a:session"] and second["next"] is None


def test_search_by_field_value_and_free_text(db: ferrumdb.FerrumDB, studio: str) -> None:
    """q=field:value is an equality filter (JSON values when they parse); other text matches keys and values."""
    db["u:1"] = {"name": "Ada Lovelace", "age": 36, "address": {"city": "London"}}
    db["u:2"] = {"name": "Alan", "age": "36", "address": {"city": "Wilmslow"}}
    db["u:3"] = {"name": "Grace", "age": 85, "address": {"city": "Arlington"}}
    db["note"] = "meet Ada in london"

    def keys(q: str, extra: str = "") -> list[str]:
        status, res = call(studio, "/api/entries?q=" + urllib.parse.quote(q) + extra)
        assert status == 200, res
        return [e["key"] for e in res["entries"]]

    assert keys("age:36") == ["u:1"]
    assert keys('age:"36"') == ["u:2"]
    assert keys("address.city:London") == ["u:1"]
    assert keys("age:36 address.city:London") == ["u:1"]
    assert keys("address.city:Paris") == []
    assert keys("name:") == ["u:1", "u:2", "u:3"]
    assert keys("london") == ["note", "u:1"]
    assert keys("GRACE") == ["u:3"]
    status, res = call(studio, "/api/entries?q=age:36")
    assert res["search"] == {"filter": {"age": 36}}
    status, res = call(studio, "/api/entries?q=London")
    assert res["search"] == {"text": "london"}
    # A page of matches continues from its cursor.
    status, first = call(studio, "/api/entries?q=name:&limit=2")
    assert [e["key"] for e in first["entries"]] == ["u:1", "u:2"]
    assert keys("name:", "&limit=2&after=" + first["next"]) == ["u:3"]


def test_query_total_fields_prefix_and_paging(db: ferrumdb.FerrumDB, studio: str) -> None:
    """POST /api/query counts every match (total), projects fields, pages with skip and limits to a prefix."""
    for i in range(25):
        db[f"p:{i:02d}"] = {"n": i, "even": i % 2 == 0, "extra": {"a": i, "b": "x"}}
    db["q:00"] = {"n": 0, "even": True}
    body = {"filter": {"even": True}, "sort": "-n", "limit": 5, "fields": ["n", "extra.a"], "prefix": "p:"}
    status, res = call(studio, "/api/query", "POST", body)
    assert status == 200
    assert res["total"] == 13 == db.count({"even": True}, prefix="p:")
    assert res["more"] is True
    assert res["results"][0] == ["p:24", {"n": 24, "extra": {"a": 24}}]
    status, last = call(studio, "/api/query", "POST", {**body, "skip": 10})
    assert [k for k, _ in last["results"]] == ["p:04", "p:02", "p:00"]
    assert last["total"] == 13 and last["more"] is False
    status, whole = call(studio, "/api/query", "POST", {"filter": {"even": True}})
    assert whole["total"] == 14 and len(whole["results"]) == 14
    status, bad = call(studio, "/api/query", "POST", {"filter": {}, "fields": "n"})
    assert status == 400 and bad["error"]


def _wait_job(url: str) -> dict[str, Any]:
    """Poll /api/ops until the job is no longer running (giving up after 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, res = call(url, "/api/ops")
        assert status == 200
        if res["job"]["state"] != "running":
            return dict(res["job"])
    raise AssertionError("the job did not finish")


def test_operations_compact_backup_export(db: ferrumdb.FerrumDB, studio: str, tmp_path: Path) -> None:
    """Compact reclaims garbage; backup writes a copy that opens; export downloads JSON Lines with TTLs."""
    for round_ in range(3):
        for i in range(200):
            db[f"k:{i:03d}"] = {"i": i, "round": round_}
    db.set("ttl", 1, ttl=3600)
    before = db.stats()
    assert before["file_bytes"] > before["live_bytes"]
    status, started = call(studio, "/api/ops/compact", "POST")
    assert status == 202 and started["job"]["kind"] == "compact"
    job = _wait_job(studio)
    assert job["state"] == "done", job
    after = db.stats()
    assert after["file_bytes"] < before["file_bytes"] and job["result"]["file_bytes_after"] == after["file_bytes"]
    assert db["k:007"] == {"i": 7, "round": 2}

    dest = tmp_path / "copy.db"
    status, _ = call(studio, "/api/ops/backup", "POST", {"path": str(dest)})
    assert status == 202
    job = _wait_job(studio)
    assert job["state"] == "done" and job["result"]["path"] == str(dest)
    assert job["done"] == job["total"] > 0
    with ferrumdb.open(dest, read_only=True) as copy:
        assert len(copy) == len(db) and copy["k:199"] == {"i": 199, "round": 2}

    status, _ = call(studio, "/api/ops/export", "POST", {"prefix": ""})
    assert status == 202
    job = _wait_job(studio)
    assert job["state"] == "done" and job["result"]["records"] == len(db) == job["done"]
    with urllib.request.urlopen(studio + job["download"].lstrip("/"), timeout=10) as res:
        assert res.headers["Content-Type"] == "application/x-ndjson"
        assert "attachment" in res.headers["Content-Disposition"]
        lines = [json.loads(line) for line in res.read().splitlines()]
    assert len(lines) == len(db)
    by_key = {line["key"]: line for line in lines}
    assert by_key["k:000"]["value"] == {"i": 0, "round": 2}
    assert "expires_at" in by_key["ttl"] and "expires_at" not in by_key["k:000"]
    # Only the last export is kept.
    assert call(studio, "/api/ops/export/999")[0] == 404


def test_operations_refuse_bad_input_and_read_only(db: ferrumdb.FerrumDB, tmp_path: Path) -> None:
    """Backup needs an absolute path; a read-only Studio refuses compact and backup, but exports."""
    db["k"] = 1
    url = db.studio(port=0)
    status, res = call(url, "/api/ops/backup", "POST", {"path": "relative.db"})
    assert status == 400 and "absolute" in res["error"]
    status, res = call(url, "/api/ops/backup", "POST", {"path": db.path})
    assert status == 202 and _wait_job(url)["state"] == "failed"
    assert "onto itself" in _wait_job(url)["error"]
    ro = db.studio(port=0, read_only=True)
    for path, body in [("/api/ops/compact", None), ("/api/ops/backup", {"path": str(tmp_path / "b.db")})]:
        status, res = call(ro, path, "POST", body)
        assert status == 403 and "read-only" in res["error"]
    assert not (tmp_path / "b.db").exists()
    assert call(ro, "/api/ops/export", "POST", {})[0] == 202
    assert _wait_job(ro)["state"] == "done"


def test_metrics_rates_per_operation(db: ferrumdb.FerrumDB, studio: str) -> None:
    """Samples carry get/set/delete/query rates and counters, and file size and garbage."""
    # A first sample (the API takes one when there is none) to measure from.
    assert call(studio, "/api/metrics")[1]["samples"]
    for i in range(20):
        db[f"m:{i}"] = i
        db.get(f"m:{i}")
    del db["m:0"]
    db.query({"m": 1})
    db.count({"m": 1})
    deadline = time.monotonic() + 30
    while True:
        status, m = call(studio, "/api/metrics")
        newest = m["samples"][-1] if m["samples"] else None
        if newest and newest["queries"] >= 2 and newest["sets"] >= 20:
            break
        assert time.monotonic() < deadline, "no sample took in the operations"
    assert newest["gets"] >= 20 and newest["deletes"] >= 1
    for name in ["get", "set", "delete", "query"]:
        assert max(s[f"{name}_per_sec"] for s in m["samples"]) > 0, name
    assert newest["garbage_bytes"] == newest["file_bytes"] - newest["live_bytes"] > 0


def _snapshot_reader(db_path: Path) -> ferrumdb.FerrumDB:
    """A read-only handle that cannot follow the writer: its shared page is unusable (too short)."""
    with ferrumdb.open(db_path) as writer:
        writer["k"] = 1
    shm = Path(str(db_path) + ".shm")
    with open(shm, "r+b") as f:
        f.truncate(1)
    return ferrumdb.open(db_path, read_only=True)


def test_overview_tells_snapshot_from_live(db_path: Path) -> None:
    """/api/overview says database_live false for a handle that cannot see new writes."""
    with _snapshot_reader(db_path) as reader:
        overview = call(reader.studio(port=0), "/api/overview")[1]
        assert overview["database_read_only"] is True and overview["database_live"] is False


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
