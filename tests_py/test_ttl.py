"""Expiring keys: ``set(k, v, ttl=seconds)``, ``ttl(k)`` and ``ManualClock``.

Time is driven by a ``ferrumdb.ManualClock``, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ferrumdb


def test_visible_until_the_instant_of_expiry(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """A key with a TTL reads normally until its expiry instant, and not at it."""
    tdb.set("k", {"a": 1}, ttl=2)
    clock.advance(1.999)
    assert tdb["k"] == {"a": 1}
    clock.advance(0.001)
    assert tdb.get("k") is None
    with pytest.raises(KeyError):
        tdb["k"]


def test_expired_key_is_invisible_to_every_read_path(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """After expiry the key is gone from in, len, iteration, keys, values, items, scan, get_json and stats."""
    tdb.set("gone", 1, ttl=1)
    tdb["kept"] = 2
    clock.advance(1)
    assert "gone" not in tdb
    assert len(tdb) == 1 and tdb.count() == 1
    assert list(tdb) == ["kept"]
    assert tdb.keys() == ["kept"]
    assert list(tdb.values()) == [2]
    assert list(tdb.items()) == [("kept", 2)]
    assert list(tdb.scan("")) == [("kept", 2)]
    assert tdb.get_json("gone") is None
    assert tdb.stats()["keys"] == 1
    assert tdb == {"kept": 2}


def test_delete_of_an_expired_key_reports_missing(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """delete() returns False and del raises KeyError once the key has expired."""
    tdb.set("k", 1, ttl=1)
    clock.advance(5)
    assert tdb.delete("k") is False
    with pytest.raises(KeyError):
        del tdb["k"]


def test_ttl_reports_seconds_left_with_subsecond_precision(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """ttl() is the float seconds left, None without expiry, KeyError when missing or expired."""
    tdb.set("k", 1, ttl=10)
    tdb["forever"] = 2
    clock.advance(2.25)
    assert tdb.ttl("k") == pytest.approx(7.75)
    assert tdb.ttl("forever") is None
    with pytest.raises(KeyError):
        tdb.ttl("missing")
    clock.advance(8)
    with pytest.raises(KeyError):
        tdb.ttl("k")


def test_overwrite_without_ttl_clears_expiry(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """Storing a key again without a TTL makes it permanent; with one, the new TTL counts."""
    tdb.set("a", 1, ttl=1)
    tdb["a"] = 2
    tdb.set("b", 1, ttl=1)
    tdb.set("b", 2, ttl=100)
    clock.advance(50)
    assert tdb["a"] == 2 and tdb.ttl("a") is None
    assert tdb["b"] == 2 and tdb.ttl("b") == pytest.approx(50)


def test_expiry_times_survive_reopen(db_path: Path) -> None:
    """Expiry is stored on disk: after reopen a key lives exactly as long as before."""
    clock = ferrumdb.ManualClock(1_800_000_000.0)
    with ferrumdb.open(db_path, clock=clock) as db:
        db.set("k", "v", ttl=60)
    later = ferrumdb.ManualClock(1_800_000_030.0)
    with ferrumdb.open(db_path, clock=later) as db:
        assert db["k"] == "v"
        assert db.ttl("k") == pytest.approx(30)
        later.advance(30)
        assert "k" not in db


def test_expired_key_does_not_survive_reopen(db_path: Path) -> None:
    """An expired key is absent after reopen, also when an older permanent value preceded it."""
    clock = ferrumdb.ManualClock(1_800_000_000.0)
    with ferrumdb.open(db_path, clock=clock) as db:
        db["k"] = "old, permanent"
        db.set("k", "new, expiring", ttl=1)
    with ferrumdb.open(db_path, clock=ferrumdb.ManualClock(1_800_000_002.0)) as db:
        assert "k" not in db and len(db) == 0


def test_compaction_drops_expired_records(db_path: Path, clock: ferrumdb.ManualClock) -> None:
    """Compaction does not copy expired records: even a clock from before the expiry cannot bring them back."""
    with ferrumdb.open(db_path, clock=clock) as db:
        db.set("gone", "x" * 1000, ttl=1)
        db["kept"] = 1
        clock.advance(2)
        db.compact()
        assert db.keys() == ["kept"]
    with ferrumdb.open(db_path, clock=ferrumdb.ManualClock(1_800_000_000.0)) as db:
        assert db.keys() == ["kept"]


@pytest.mark.parametrize("bad", [0, -1, 0.0001, float("nan"), float("inf"), 1e300])
def test_bad_ttl_value_is_value_error_and_writes_nothing(tdb: ferrumdb.FerrumDB, bad: float) -> None:
    """A TTL that is not a positive, finite, representable number of seconds raises ValueError; nothing is stored."""
    with pytest.raises(ValueError, match="ttl"):
        tdb.set("k", 1, ttl=bad)
    assert "k" not in tdb and len(tdb) == 0


@pytest.mark.parametrize("bad", ["5", True, [1], object()])
def test_bad_ttl_type_is_type_error_and_writes_nothing(tdb: ferrumdb.FerrumDB, bad: Any) -> None:
    """A TTL that is not an int or float raises TypeError; nothing is stored."""
    with pytest.raises(TypeError, match="ttl"):
        tdb.set("k", 1, ttl=bad)
    assert "k" not in tdb


def test_ttl_none_means_no_expiry(tdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """ttl=None stores a permanent key."""
    tdb.set("k", 1, ttl=None)
    clock.advance(10**9)
    assert tdb["k"] == 1


def test_manual_clock_rejects_bad_input() -> None:
    """ManualClock takes finite, non-negative seconds."""
    c = ferrumdb.ManualClock(100.0)
    assert c.now() == pytest.approx(100.0)
    c.advance(0.5)
    assert c.now() == pytest.approx(100.5)
    assert "ManualClock" in repr(c)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError):
            c.advance(bad)
    with pytest.raises(ValueError):
        ferrumdb.ManualClock(float("inf"))


def test_ttl_on_closed_database_raises_closed_error(db_path: Path) -> None:
    """ttl() and set(..., ttl=) on a closed handle raise ClosedError."""
    db = ferrumdb.open(db_path)
    db.close()
    with pytest.raises(ferrumdb.ClosedError):
        db.ttl("k")
    with pytest.raises(ferrumdb.ClosedError):
        db.set("k", 1, ttl=5)


def test_read_only_handle_respects_expiry(db_path: Path, clock: ferrumdb.ManualClock) -> None:
    """A read-only handle hides keys that have expired by its clock."""
    with ferrumdb.open(db_path, clock=clock) as db:
        db.set("k", 1, ttl=5)
    ro_clock = ferrumdb.ManualClock(1_800_000_000.0)
    with ferrumdb.open(db_path, read_only=True, clock=ro_clock) as ro:
        assert ro["k"] == 1
        ro_clock.advance(5)
        assert "k" not in ro and ro.keys() == []
