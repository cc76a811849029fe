"""One shape per report: the stats report and the check report are each one Rust struct,
serialized for Python, Studio and the command line alike (README, "Ferrum Studio" and
"Command line"). These tests compare the three renderings through the real surfaces: the
Python call, Studio over HTTP, and the ``ferrumdb`` command in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import ferrumdb

# Every key of the stats report, in order: the ones README promises, then index_bytes and compactions.
STATS_KEYS = [
    "keys", "gets", "sets", "deletes", "ops_per_sec", "uptime_s", "file_bytes", "live_bytes",
    "index_bytes", "compactions",
]
CHECK_KEYS = [
    "file", "file_bytes", "status", "ok", "records", "writes", "transactions", "damage",
    "damaged_bytes", "torn_tail",
]


def cli(*args: str | Path, stdin: str = "") -> Any:
    """Run ``python -m ferrumdb ARGS`` with stdin and stdout piped; its last line as JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", "ferrumdb", *map(str, args)],
        input=stdin, capture_output=True, text=True, encoding="utf-8", timeout=120,
    )
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_stats_has_the_same_keys_in_python_studio_and_the_cli(db_path: Path) -> None:
    with ferrumdb.open(db_path) as db:
        db["a"] = {"n": 1}
        db.create_index("n")
        from_python = db.stats()
        url = db.studio(port=0).split("?")[0].rstrip("/")
        with urllib.request.urlopen(url + "/api/stats", timeout=10) as res:
            from_studio = json.loads(res.read())
        assert from_python["index_bytes"] > 0
    from_cli = cli(db_path, stdin="STATS\n")
    assert list(from_python) == list(from_studio) == list(from_cli) == STATS_KEYS
    assert from_cli["index_bytes"] == from_python["index_bytes"]


def test_check_report_has_one_shape_in_python_and_the_cli(db_path: Path) -> None:
    with ferrumdb.open(db_path) as db:
        for i in range(20):
            db[f"k{i:02d}"] = {"i": i, "pad": "x" * 40}
    data = bytearray(db_path.read_bytes())
    data[len(data) // 2] ^= 0x40
    db_path.write_bytes(bytes(data))

    from_python = ferrumdb.check(db_path)
    from_cli = cli("check", db_path)
    assert list(from_python) == list(from_cli) == CHECK_KEYS
    assert from_python == from_cli
    assert from_python["status"] == "damaged"
    assert [list(region) for region in from_python["damage"]] == [["offset", "length", "reason"]]

    # A salvage report is the check report of the damaged file plus what salvage adds.
    salvaged = ferrumdb._native._salvage_in_place(db_path)
    assert salvaged is not None
    assert list(salvaged) == [*CHECK_KEYS, "keys", "kept"]
    assert {k: salvaged[k] for k in CHECK_KEYS} == from_python
