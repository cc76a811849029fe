"""``find`` answered by an index hands out the strs of an earlier identical
call while no index changed; every kind of change must show at once: a set,
a delete, an expiry, an index dropped, another process's write.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ferrumdb


def test_each_change_shows_in_the_next_find(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    for i in range(50):
        tdb[f"k{i:02}"] = {"g": i % 5}
    tdb.create_index("g")
    first = tdb.find("g", 1)
    again = tdb.find("g", 1)
    assert again == first and again is not first, "a new list each call"
    again.append("mutated")
    assert tdb.find("g", 1) == first, "a caller's list is its own"
    tdb["k01"] = {"g": 2}
    assert tdb.find("g", 1) == [k for k in first if k != "k01"]
    tdb.set("t", {"g": 1}, ttl=5)
    assert "t" in tdb.find("g", 1)
    assert "t" in tdb.find("g", 1)
    clock.advance(10)
    assert "t" not in tdb.find("g", 1)
    del tdb["k06"]
    assert "k06" not in tdb.find("g", 1)
    assert tdb.find("g", 1.0) == tdb.find("g", 1)
    tdb.drop_index("g")
    tdb["plain"] = {"g": 1}
    assert "plain" in tdb.find("g", 1), "without the index, a scan"


def test_another_process_write_shows(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ferrumdb.open(path) as db:
        for i in range(20):
            db[f"k{i:02}"] = {"g": i % 2}
        db.create_index("g")
        before = db.find("g", 0)
        code = "import sys, ferrumdb; db = ferrumdb.open(sys.argv[1]); db['new'] = {'g': 0}; db.close()"
        subprocess.run([sys.executable, "-c", code, str(path)], check=True)
        assert db.find("g", 0) == sorted([*before, "new"])
