"""``db.watch(prefix="")``: change events ``(op, key, value)`` committed after the call (README "Use it from Python").

No sleeps: expiry follows a ManualClock, and threads hand over through queues,
barriers and events. Every blocking step has a timeout so a bug fails instead of hanging.
"""

from __future__ import annotations

import _thread
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import ferrumdb
from ferrumdb import WatchOverflowError
from ferrumdb._native import WatchIterator

LIMIT = 10_000
TIMEOUT = 30


@pytest.fixture
def clock() -> ferrumdb.ManualClock:
    return ferrumdb.ManualClock(1_000_000.0)


@pytest.fixture
def mdb(clock: ferrumdb.ManualClock) -> Iterator[ferrumdb.FerrumDB]:
    """An in-memory database on a manual clock."""
    handle = ferrumdb.open(":memory:", clock=clock)
    try:
        yield handle
    finally:
        handle.close()


def take(watch: WatchIterator, n: int) -> list[tuple[str, str, Any]]:
    """The next ``n`` events (each already waiting, so nothing blocks for long)."""
    return [next(watch) for _ in range(n)]


def next_in_thread(watch: WatchIterator) -> threading.Thread:
    """Start a thread blocked in ``next(watch)``; it puts the event, or the exception type, on ``.out``."""
    out: queue.Queue[Any] = queue.Queue()

    def run() -> None:
        try:
            out.put(next(watch))
        except BaseException as e:  # StopIteration included
            out.put(type(e))

    thread = threading.Thread(target=run, daemon=True)
    thread.out = out  # type: ignore[attr-defined]
    thread.start()
    return thread


# -- events ---------------------------------------------------------------------------------------


def test_set_overwrite_delete_expiry_in_order(mdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """Each committed change is one event, in commit order; expiry is a delete."""
    w = mdb.watch()
    mdb["a"] = {"n": 1, "tags": ["x"]}
    mdb["a"] = {"n": 2}
    mdb.set("t", [1, 2], ttl=5)
    mdb.set_json("j", '{"raw": true}')
    del mdb["a"]
    assert mdb.delete("t") is True
    mdb.set("t2", "soon", ttl=1)
    clock.advance(1)
    assert take(w, 8) == [
        ("set", "a", {"n": 1, "tags": ["x"]}),
        ("set", "a", {"n": 2}),
        ("set", "t", [1, 2]),
        ("set", "j", {"raw": True}),
        ("delete", "a", None),
        ("delete", "t", None),
        ("set", "t2", "soon"),
        ("delete", "t2", None),
    ]
    w.close()


def test_no_change_no_event(mdb: ferrumdb.FerrumDB) -> None:
    """Deleting a missing key changes nothing and reports nothing."""
    w = mdb.watch()
    assert mdb.delete("missing") is False
    with pytest.raises(KeyError):
        del mdb["missing"]
    mdb["marker"] = 1
    assert next(w) == ("set", "marker", 1)


def test_expiry_is_reported_without_other_reads(mdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """A waiting watch notices expiry itself: nothing else needs to touch the database."""
    mdb.set("session", {"user": 1}, ttl=60)
    w = mdb.watch()
    clock.advance(61)
    assert next(w) == ("delete", "session", None)


def test_expiry_seen_by_a_blocked_watch(mdb: ferrumdb.FerrumDB, clock: ferrumdb.ManualClock) -> None:
    """A watch already blocked in next() reports an expiry that happens while it waits."""
    mdb.set("session", 1, ttl=60)
    w = mdb.watch()
    thread = next_in_thread(w)
    clock.advance(61)
    assert thread.out.get(timeout=TIMEOUT) == ("delete", "session", None)  # type: ignore[attr-defined]
    thread.join(TIMEOUT)


def test_values_round_trip(mdb: ferrumdb.FerrumDB) -> None:
    """Event values are the stored documents as Python objects."""
    values: list[Any] = [
        {"nested": {"list": [1, 2.5, None, True, "s"]}, "big": 2**64 - 1},
        "héllo \U0001f600",
        -(2**63),
        None,
        [],
        1.5,
    ]
    w = mdb.watch()
    for i, v in enumerate(values):
        mdb[f"k{i}"] = v
    assert take(w, len(values)) == [("set", f"k{i}", v) for i, v in enumerate(values)]


def test_changes_before_the_call_are_not_reported(mdb: ferrumdb.FerrumDB) -> None:
    mdb["old"] = 1
    del mdb["old"]
    mdb["kept"] = 2
    w = mdb.watch()
    mdb["new"] = 3
    assert next(w) == ("set", "new", 3)


def test_prefix_filters_keys(mdb: ferrumdb.FerrumDB) -> None:
    """Only keys starting with the prefix are reported; other watches are independent."""
    users = mdb.watch("user:")
    orders = mdb.watch(prefix="order:")
    everything = mdb.watch()
    assert (users.prefix, orders.prefix, everything.prefix) == ("user:", "order:", "")
    mdb["user:1"] = "u"
    mdb["order:1"] = "o"
    mdb["users"] = "not a user: key"
    mdb["user:"] = "the prefix itself"
    del mdb["user:1"]
    assert take(users, 3) == [("set", "user:1", "u"), ("set", "user:", "the prefix itself"), ("delete", "user:1", None)]
    assert next(orders) == ("set", "order:1", "o")
    assert [key for _, key, _ in take(everything, 5)] == ["user:1", "order:1", "users", "user:", "user:1"]


def test_watch_beside_indexes(mdb: ferrumdb.FerrumDB) -> None:
    """Watching does not disturb index maintenance, and index builds report no events."""
    mdb["u1"] = {"role": "a"}
    w = mdb.watch()
    mdb.create_index("role")
    mdb["u2"] = {"role": "a"}
    mdb["u1"] = {"role": "b"}
    assert mdb.find("role", "a") == ["u2"]
    assert take(w, 2) == [("set", "u2", {"role": "a"}), ("set", "u1", {"role": "b"})]
    w.close()
    mdb["u3"] = {"role": "a"}
    assert mdb.find("role", "a") == ["u2", "u3"]


# -- threads ----------------------------------------------------------------------------------------


def test_events_from_another_thread(mdb: ferrumdb.FerrumDB) -> None:
    """Writes from another thread arrive in their commit order."""
    n = 2_000
    w = mdb.watch("k")
    start = threading.Barrier(2)

    def writer() -> None:
        start.wait(TIMEOUT)
        for i in range(n):
            mdb[f"k{i:05}"] = i
        del mdb["k00000"]

    thread = threading.Thread(target=writer)
    thread.start()
    start.wait(TIMEOUT)
    events = take(w, n + 1)
    thread.join(TIMEOUT)
    assert events[:n] == [("set", f"k{i:05}", i) for i in range(n)]
    assert events[n] == ("delete", "k00000", None)


def test_many_writer_threads_each_in_order(mdb: ferrumdb.FerrumDB) -> None:
    """With concurrent writers, every change is reported once and each thread's changes keep their order."""
    threads, per = 4, 500
    w = mdb.watch()
    start = threading.Barrier(threads)

    def writer(t: int) -> None:
        start.wait(TIMEOUT)
        for i in range(per):
            mdb[f"t{t}:{i}"] = i

    pool = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    events = take(w, threads * per)
    for thread in pool:
        thread.join(TIMEOUT)
    for t in range(threads):
        mine = [value for _, key, value in events if key.startswith(f"t{t}:")]
        assert mine == list(range(per))


def test_consumer_thread_stopped_by_close(mdb: ferrumdb.FerrumDB) -> None:
    """A consumer thread iterating a watch ends when another thread calls close()."""
    w = mdb.watch()
    got: queue.Queue[Any] = queue.Queue()
    finished = threading.Event()

    def consume() -> None:
        for event in w:
            got.put(event)
        finished.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    mdb["a"] = 1
    assert got.get(timeout=TIMEOUT) == ("set", "a", 1)
    # The consumer is now blocked waiting for the next change.
    w.close()
    assert finished.wait(TIMEOUT), "close() did not stop the consumer"
    thread.join(TIMEOUT)
    assert w.closed
    mdb["b"] = 2
    assert got.empty()


def test_closing_the_database_wakes_a_blocked_watch(db: ferrumdb.FerrumDB) -> None:
    """A thread blocked in next() gets StopIteration when the database is closed."""
    w = db.watch()
    thread = next_in_thread(w)
    db.close()
    assert thread.out.get(timeout=TIMEOUT) is StopIteration  # type: ignore[attr-defined]
    thread.join(TIMEOUT)


def test_ctrl_c_interrupts_a_blocked_next(mdb: ferrumdb.FerrumDB) -> None:
    """KeyboardInterrupt reaches a main thread blocked in next() (it wakes to check for signals)."""
    w = mdb.watch()
    consumed = threading.Event()

    def interrupter() -> None:
        mdb["go"] = 1
        if consumed.wait(TIMEOUT):
            _thread.interrupt_main()

    thread = threading.Thread(target=interrupter, daemon=True)
    with pytest.raises(KeyboardInterrupt):
        thread.start()
        assert next(w) == ("set", "go", 1)
        consumed.set()
        next(w)  # blocks until the interrupt
    thread.join(TIMEOUT)


# -- end of iteration -------------------------------------------------------------------------------


def test_closing_the_database_ends_iteration(db: ferrumdb.FerrumDB) -> None:
    """After close(), the changes committed before are delivered, then iteration ends."""
    w = db.watch()
    db["a"] = 1
    db["b"] = 2
    db.close()
    assert w.closed
    assert list(w) == [("set", "a", 1), ("set", "b", 2)]
    assert list(w) == []
    with pytest.raises(StopIteration):
        next(w)


def test_watch_on_a_closed_database_raises(db: ferrumdb.FerrumDB) -> None:
    db.close()
    with pytest.raises(ferrumdb.ClosedError):
        db.watch()


def test_close_discards_unread_and_is_idempotent(mdb: ferrumdb.FerrumDB) -> None:
    w = mdb.watch()
    mdb["a"] = 1
    assert not w.closed
    w.close()
    w.close()
    assert w.closed
    mdb["b"] = 2
    assert list(w) == []


def test_context_manager_closes(mdb: ferrumdb.FerrumDB) -> None:
    with mdb.watch("k") as w:
        assert iter(w) is w
        mdb["k1"] = 1
        assert next(w) == ("set", "k1", 1)
        assert repr(w) == "<WatchIterator prefix='k' open>"
    assert w.closed
    assert repr(w) == "<WatchIterator prefix='k' closed>"
    mdb["k2"] = 2
    with pytest.raises(StopIteration):
        next(w)


def test_with_statement_does_not_swallow_errors(mdb: ferrumdb.FerrumDB) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with mdb.watch():
            raise RuntimeError("boom")


# -- overflow ----------------------------------------------------------------------------------------


def test_bound_is_ten_thousand(mdb: ferrumdb.FerrumDB) -> None:
    """Exactly the documented number of unread changes fits; all are delivered."""
    w = mdb.watch()
    assert w.max_events == LIMIT
    for i in range(LIMIT):
        mdb[f"k{i}"] = i
    events = take(w, LIMIT)
    assert events[0] == ("set", "k0", 0)
    assert events[-1] == ("set", f"k{LIMIT - 1}", LIMIT - 1)


def test_overflow_raises_and_never_blocks_writers(mdb: ferrumdb.FerrumDB) -> None:
    """A watch nobody reads overflows; writes all succeed; next() raises WatchOverflowError, a FerrumError."""
    w = mdb.watch()
    healthy = mdb.watch("z")
    for i in range(LIMIT + 500):
        mdb[f"k{i}"] = i
    assert len(mdb) == LIMIT + 500
    with pytest.raises(WatchOverflowError, match=r"fell behind by more than 10000 .*start a new watch"):
        next(w)
    # It stays failed (the changes it dropped are gone), and still counts as a FerrumError.
    with pytest.raises(ferrumdb.FerrumError):
        next(w)
    assert issubclass(WatchOverflowError, ferrumdb.FerrumError)
    # Other watches and new ones are unaffected.
    mdb["z"] = 1
    assert next(healthy) == ("set", "z", 1)
    fresh = mdb.watch()
    mdb["after"] = 1
    assert next(fresh) == ("set", "after", 1)


def test_prefix_filtered_changes_do_not_count(mdb: ferrumdb.FerrumDB) -> None:
    """Only changes a watch reports fill its buffer."""
    w = mdb.watch("mine:")
    for i in range(LIMIT + 10):
        mdb[f"other:{i}"] = i
    mdb["mine:1"] = 1
    assert next(w) == ("set", "mine:1", 1)


def test_slow_consumer_keeps_up_if_it_reads(mdb: ferrumdb.FerrumDB) -> None:
    """Reading as it goes, a consumer sees far more than the bound in total."""
    w = mdb.watch()
    for round_ in range(3):
        for i in range(LIMIT // 2):
            mdb[f"k{i}"] = round_
        assert take(w, LIMIT // 2)[-1] == ("set", f"k{LIMIT // 2 - 1}", round_)


@pytest.mark.parametrize("bad", [5, None, b"user:"])
def test_watch_prefix_of_wrong_type_is_type_error(db: ferrumdb.FerrumDB, bad: Any) -> None:
    """watch() takes the prefix as a str; anything else is TypeError."""
    with pytest.raises(TypeError):
        db.watch(bad)


def test_take_ready_returns_what_is_waiting_without_waiting(mdb: ferrumdb.FerrumDB) -> None:
    """take_ready() hands over every waiting change in order ([] when none); an overflowed watch raises."""
    with mdb.watch() as watch:
        assert watch.take_ready() == []
        with mdb.transaction() as tx:
            tx["a"] = 1
            tx["b"] = 2
            tx.delete("zz")
        mdb["c"] = 3
        assert [next(watch), *watch.take_ready()] == [("set", "a", 1), ("set", "b", 2), ("set", "c", 3)]
        assert watch.take_ready() == []
        for i in range(LIMIT + 1):
            mdb[f"k{i}"] = i
        with pytest.raises(WatchOverflowError):
            watch.take_ready()
    watch.close()
    assert watch.take_ready() == []
