"""Opening, closing, context manager, repr, Jupyter HTML, warnings, pickling, fork and read-only handles."""

from __future__ import annotations

import copy
import gc
import os
import pickle
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ferrumdb

# -- open ------------------------------------------------------------------------------


def test_open_creates_file(tmp_path: Path) -> None:
    """ferrumdb.open creates the file when it is missing."""
    path = tmp_path / "new.db"
    with ferrumdb.open(path) as db:
        assert isinstance(db, ferrumdb.FerrumDB)
    assert path.exists()


def test_open_accepts_str_path(tmp_path: Path) -> None:
    """open accepts a str path as well as a PathLike, and .path is that path as str."""
    path = str(tmp_path / "s.db")
    with ferrumdb.open(path) as db:
        assert db.path == path


def test_classmethod_open_is_same(tmp_path: Path) -> None:
    """FerrumDB.open(path) opens the same database as ferrumdb.open(path)."""
    path = tmp_path / "c.db"
    with ferrumdb.FerrumDB.open(path) as db:
        assert type(db) is ferrumdb.FerrumDB
        db["k"] = 1
    with ferrumdb.open(path) as db:
        assert db["k"] == 1


def test_data_persists_across_reopen(db_path: Path) -> None:
    """What was written before close is there after reopen."""
    with ferrumdb.open(db_path) as db:
        db.update({"a": 1, "b": {"c": [2]}})
        del db["a"]
    with ferrumdb.open(db_path) as db:
        assert dict(db.items()) == {"b": {"c": [2]}}


@pytest.mark.parametrize("policy", ["always", "never", "periodic:100", "periodic:1"])
def test_fsync_policies_accepted(tmp_path: Path, policy: str) -> None:
    """Each documented fsync policy opens and is reported back by .fsync."""
    with ferrumdb.open(tmp_path / "f.db", fsync=policy) as db:
        db["k"] = 1
        assert db.fsync == policy


def test_default_fsync_is_periodic_100(db: ferrumdb.FerrumDB) -> None:
    """The default fsync policy is periodic:100."""
    assert db.fsync == "periodic:100"


@pytest.mark.parametrize("policy", ["sometimes", "periodic:", "periodic:-5", "periodic:0", "ALWAYS!", ""])
def test_bad_fsync_raises_valueerror(tmp_path: Path, policy: str) -> None:
    """An unknown fsync policy raises ValueError."""
    with pytest.raises(ValueError):
        ferrumdb.open(tmp_path / "f.db", fsync=policy)


def test_memory_database_touches_no_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """open(":memory:") works as a database and creates no file."""
    monkeypatch.chdir(tmp_path)
    with ferrumdb.open(":memory:") as db:
        db["k"] = {"v": 1}
        assert (db["k"], db.path, len(db)) == ({"v": 1}, ":memory:", 1)
    assert list(tmp_path.iterdir()) == []


def test_memory_databases_are_independent() -> None:
    """Two :memory: databases do not share data (and do not lock each other)."""
    with ferrumdb.open(":memory:") as a, ferrumdb.open(":memory:") as b:
        a["k"] = 1
        assert "k" not in b


# -- open_from_env -----------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["always", "never", "periodic:250"])
def test_open_from_env_uses_ferrumdb_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    """open_from_env takes the fsync policy from FERRUMDB_FSYNC."""
    monkeypatch.setenv("FERRUMDB_FSYNC", policy)
    with ferrumdb.open_from_env(tmp_path / "e.db") as db:
        assert db.fsync == policy


def test_open_from_env_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """open_from_env without FERRUMDB_FSYNC uses the default policy."""
    monkeypatch.delenv("FERRUMDB_FSYNC", raising=False)
    with ferrumdb.open_from_env(tmp_path / "e.db") as db:
        assert db.fsync == "periodic:100"


def test_open_from_env_bad_value_raises_valueerror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad FERRUMDB_FSYNC raises ValueError naming the variable, and creates no file."""
    monkeypatch.setenv("FERRUMDB_FSYNC", "whenever")
    with pytest.raises(ValueError, match="FERRUMDB_FSYNC"):
        ferrumdb.open_from_env(tmp_path / "e.db")
    assert list(tmp_path.iterdir()) == []


def test_open_from_env_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """open_from_env accepts ":memory:"."""
    monkeypatch.setenv("FERRUMDB_FSYNC", "never")
    with ferrumdb.open_from_env(":memory:") as db:
        assert (db.path, db.fsync) == (":memory:", "never")


# -- close ---------------------------------------------------------------------------------


def test_close_is_idempotent(db_path: Path) -> None:
    """close() twice is fine and leaves the handle closed."""
    db = ferrumdb.open(db_path)
    db.close()
    db.close()
    assert db.closed


def test_closed_flag(db_path: Path) -> None:
    """.closed is False while open and True after close()."""
    db = ferrumdb.open(db_path)
    before = db.closed
    db.close()
    assert (before, db.closed) == (False, True)


_AFTER_CLOSE: list[Any] = [
    pytest.param(lambda db: db["k"], id="getitem"),
    pytest.param(lambda db: db.__setitem__("k", 1), id="setitem"),
    pytest.param(lambda db: db.__delitem__("k"), id="delitem"),
    pytest.param(lambda db: "k" in db, id="contains"),
    pytest.param(lambda db: len(db), id="len"),
    pytest.param(lambda db: iter(db), id="iter"),
    pytest.param(lambda db: list(db), id="list"),
    pytest.param(lambda db: db.get("k"), id="get"),
    pytest.param(lambda db: db.set("k", 1), id="set"),
    pytest.param(lambda db: db.delete("k"), id="delete"),
    pytest.param(lambda db: db.keys(), id="keys"),
    pytest.param(lambda db: db.values(), id="values"),
    pytest.param(lambda db: db.items(), id="items"),
    pytest.param(lambda db: db.count(), id="count"),
    pytest.param(lambda db: db.scan("k"), id="scan"),
    pytest.param(lambda db: db.set_json("k", "1"), id="set_json"),
    pytest.param(lambda db: db.get_json("k"), id="get_json"),
    pytest.param(lambda db: db.compact(), id="compact"),
    pytest.param(lambda db: db.flush(), id="flush"),
    pytest.param(lambda db: db.stats(), id="stats"),
    pytest.param(lambda db: db.update(a=1), id="update"),
    pytest.param(lambda db: db.pop("k", None), id="pop"),
    pytest.param(lambda db: db.setdefault("k", 1), id="setdefault"),
    pytest.param(lambda db: db.clear(), id="clear"),
    pytest.param(lambda db: db == {"k": 1}, id="eq"),
]


@pytest.mark.parametrize("call", _AFTER_CLOSE)
def test_call_after_close_raises_closed_error(db_path: Path, call: Callable[[Any], Any]) -> None:
    """Any call on a closed handle raises ferrumdb.ClosedError (a FerrumError)."""
    db = ferrumdb.open(db_path)
    db["k"] = 1
    db.close()
    with pytest.raises(ferrumdb.ClosedError):
        call(db)


def test_iterator_after_close_raises_closed_error(db_path: Path) -> None:
    """An iterator taken before close() raises ClosedError when advanced after it."""
    db = ferrumdb.open(db_path)
    db["k"] = 1
    it = db.scan()
    db.close()
    with pytest.raises(ferrumdb.ClosedError):
        next(it)


@pytest.mark.parametrize("method", ["scan", "keys_iter", "values", "items"])
def test_buffered_page_is_not_served_after_close(db_path: Path, method: str) -> None:
    """An iterator that already holds a page raises ClosedError on the next step after close()."""
    db = ferrumdb.open(db_path)
    for i in range(10):
        db[f"k{i}"] = i
    it = iter(db) if method == "keys_iter" else iter(getattr(db, method)())
    next(it)  # the first page (all ten keys) is now buffered in the iterator
    db.close()
    with pytest.raises(ferrumdb.ClosedError):
        next(it)


def test_close_releases_lock(db_path: Path) -> None:
    """After close(), the same file can be opened for writing again."""
    ferrumdb.open(db_path).close()
    with ferrumdb.open(db_path) as db:
        db["k"] = 1


# -- context manager --------------------------------------------------------------------------


def test_with_returns_the_handle(db_path: Path) -> None:
    """with ferrumdb.open(...) as db binds the opened handle itself."""
    handle = ferrumdb.open(db_path)
    with handle as db:
        assert db is handle


def test_with_closes_on_exit(db_path: Path) -> None:
    """Leaving the with block closes the database."""
    with ferrumdb.open(db_path) as db:
        db["k"] = 1
    assert db.closed


def test_with_flushes_on_exit(db_path: Path) -> None:
    """Data written inside the with block is there when reopened."""
    with ferrumdb.open(db_path, fsync="never") as db:
        db["k"] = "kept"
    with ferrumdb.open(db_path) as db:
        assert db["k"] == "kept"


def test_with_does_not_swallow_exceptions(db_path: Path) -> None:
    """An exception inside the with block propagates, and the database is closed."""
    with pytest.raises(RuntimeError, match="boom"):
        with ferrumdb.open(db_path) as db:
            raise RuntimeError("boom")
    assert db.closed


# -- repr / _repr_html_ -----------------------------------------------------------------------------


def test_repr_open(db: ferrumdb.FerrumDB, db_path: Path) -> None:
    """repr names the path, the key count and that it is open."""
    db.update({"a": 1, "b": 2, "c": 3})
    r = repr(db)
    assert db_path.name in r and "keys=3" in r and "open" in r and "closed" not in r


def test_repr_closed(db_path: Path) -> None:
    """repr of a closed handle names the path and says closed (without raising)."""
    db = ferrumdb.open(db_path)
    db.close()
    r = repr(db)
    assert db_path.name in r and "closed" in r


def test_repr_read_only(db_path: Path) -> None:
    """repr of a read-only handle says read-only."""
    ferrumdb.open(db_path).close()
    with ferrumdb.open(db_path, read_only=True) as ro:
        assert "read-only" in repr(ro)


def test_repr_html_is_table(db: ferrumdb.FerrumDB) -> None:
    """_repr_html_ is HTML tables showing the key count."""
    db["a"] = 1
    html = db._repr_html_()
    assert html.startswith("<div><table") and html.endswith("</table></div>")
    assert ">1<" in html


def test_repr_html_lists_at_most_ten_keys(db: ferrumdb.FerrumDB) -> None:
    """_repr_html_ stays bounded: of 50 keys at most 10 are listed, plus the total count."""
    keys = [f"key-{i:03d}" for i in range(50)]
    for k in keys:
        db[k] = 0
    html = db._repr_html_()
    listed = [k for k in keys if k in html]
    assert 0 < len(listed) <= 10
    assert ">50<" in html


def test_repr_html_escapes_keys(db: ferrumdb.FerrumDB) -> None:
    """Keys in _repr_html_ are HTML-escaped: a key "<script>" shows as &lt;script&gt;."""
    db["<script>alert('x')</script>"] = 1
    html = db._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_repr_html_escapes_path(tmp_path: Path) -> None:
    """The path in _repr_html_ is HTML-escaped ("&" is legal in file names everywhere)."""
    path = tmp_path / "a&b.db"
    with ferrumdb.open(path) as db:
        html = db._repr_html_()
    assert "a&b.db" not in html and "a&amp;b.db" in html


def test_repr_html_closed(db_path: Path) -> None:
    """_repr_html_ of a closed handle says closed (without raising)."""
    db = ferrumdb.open(db_path)
    db.close()
    assert "closed" in db._repr_html_()


# -- ResourceWarning ----------------------------------------------------------------------------------


def test_unclosed_handle_warns(db_path: Path) -> None:
    """An unclosed handle collected by gc emits ResourceWarning naming the path."""
    db = ferrumdb.open(db_path)
    with pytest.warns(ResourceWarning, match="unclosed") as record:
        del db
        gc.collect()
    assert db_path.name in str(record[0].message)


def test_unclosed_handle_is_closed_when_collected(db_path: Path) -> None:
    """Collecting an unclosed handle releases the file: it can be opened for writing again."""
    db = ferrumdb.open(db_path)
    db["k"] = 1
    with pytest.warns(ResourceWarning):
        del db
        gc.collect()
    with ferrumdb.open(db_path) as again:
        assert again["k"] == 1


def test_closed_handle_does_not_warn(db_path: Path) -> None:
    """A closed handle collected by gc emits no warning."""
    db = ferrumdb.open(db_path)
    db.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del db
        gc.collect()


# -- pickle / copy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_raises_typeerror(db: ferrumdb.FerrumDB, protocol: int) -> None:
    """Pickling a handle raises TypeError saying to reopen by path."""
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(db, protocol=protocol)


def test_copy_raises_typeerror(db: ferrumdb.FerrumDB) -> None:
    """copy.copy of a handle raises TypeError."""
    with pytest.raises(TypeError):
        copy.copy(db)


def test_deepcopy_raises_typeerror(db: ferrumdb.FerrumDB) -> None:
    """copy.deepcopy of a handle raises TypeError."""
    with pytest.raises(TypeError):
        copy.deepcopy(db)


# -- fork --------------------------------------------------------------------------------------------


def _try_second_writer(path: str) -> str:
    """Spawned worker: try to open ``path`` for writing; report what happened."""
    try:
        ferrumdb.open(path).close()
    except ferrumdb.LockedError:
        return "LockedError"
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        return f"{type(e).__name__}: {e}"
    return "opened"


_FORK_OK, _FORK_READ_SUCCEEDED, _FORK_OTHER_ERROR = 0, 1, 2
_fork_only = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="fork is Linux-tested")
# Python 3.12+ warns that fork() in a process with threads (the periodic flusher) may deadlock;
# the child here only touches the handle, which refuses before any lock is taken.
_fork_warning_ok = pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")


def _fork_and_read(db: ferrumdb.FerrumDB) -> int:
    """Fork; the child reads db["k"] and reports through its exit status. Returns that status."""
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = _FORK_OTHER_ERROR
        try:
            db["k"]
            code = _FORK_READ_SUCCEEDED
        except ferrumdb.FerrumError:
            code = _FORK_OK
        except BaseException:  # noqa: BLE001
            code = _FORK_OTHER_ERROR
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@_fork_only
@_fork_warning_ok
def test_fork_child_cannot_use_handle(db: ferrumdb.FerrumDB) -> None:
    """In a forked child, using a handle opened by the parent raises FerrumError."""
    db["k"] = 1
    assert _fork_and_read(db) == _FORK_OK


@_fork_only
@_fork_warning_ok
def test_fork_parent_keeps_working(db: ferrumdb.FerrumDB) -> None:
    """After a fork, the parent's handle still reads and writes, and the data persists."""
    db["k"] = 1
    assert _fork_and_read(db) == _FORK_OK
    db["k2"] = 2
    assert (db["k"], db["k2"]) == (1, 2)


@_fork_only
@_fork_warning_ok
def test_fork_parent_still_holds_lock(tmp_path: Path, run_spawned: Callable[..., Any]) -> None:
    """After a forked child exits, an exclusive parent still holds the writer lock."""
    path = tmp_path / "x.db"
    with ferrumdb.open(path, exclusive=True) as db:
        db["k"] = 1
        assert _fork_and_read(db) == _FORK_OK
        assert run_spawned(_try_second_writer, str(path)) == "LockedError"


# -- the pytest fixture ----------------------------------------------------------------------------


def test_ferrumdb_db_fixture_gives_fresh_database(ferrumdb_db: ferrumdb.FerrumDB, tmp_path: Path) -> None:
    """The ferrumdb_db fixture (pytest11 plugin) gives an open, empty database under tmp_path."""
    assert isinstance(ferrumdb_db, ferrumdb.FerrumDB)
    assert (len(ferrumdb_db), ferrumdb_db.closed) == (0, False)
    assert Path(ferrumdb_db.path).parent == tmp_path


def test_ferrumdb_db_fixture_is_writable(ferrumdb_db: ferrumdb.FerrumDB) -> None:
    """The ferrumdb_db fixture's database stores and reads values."""
    ferrumdb_db["k"] = [1]
    assert ferrumdb_db["k"] == [1]


def test_ferrumdb_plugin_registered(pytestconfig: pytest.Config) -> None:
    """The plugin is loaded through the pytest11 entry point named "ferrumdb"."""
    plugin = pytestconfig.pluginmanager.get_plugin("ferrumdb")
    assert plugin is not None and plugin.__name__ == "ferrumdb.pytest_plugin"


# -- read-only handles -----------------------------------------------------------------------------------


@pytest.fixture
def existing(db_path: Path) -> Path:
    with ferrumdb.open(db_path) as db:
        db.update({"a": 1, "b": 2})
    return db_path


@pytest.fixture
def ro(existing: Path) -> Any:
    handle = ferrumdb.open(existing, read_only=True)
    try:
        yield handle
    finally:
        handle.close()


def test_read_only_reads(ro: ferrumdb.FerrumDB) -> None:
    """A read-only handle reads the data and reports read_only."""
    assert (dict(ro.items()), ro.read_only) == ({"a": 1, "b": 2}, True)


_WRITES: list[Any] = [
    pytest.param(lambda db: db.__setitem__("c", 3), id="setitem"),
    pytest.param(lambda db: db.set("c", 3), id="set"),
    pytest.param(lambda db: db.__delitem__("a"), id="delitem"),
    pytest.param(lambda db: db.delete("a"), id="delete"),
    pytest.param(lambda db: db.set_json("c", "3"), id="set_json"),
    pytest.param(lambda db: db.update(c=3), id="update"),
    pytest.param(lambda db: db.pop("a"), id="pop"),
    pytest.param(lambda db: db.clear(), id="clear"),
    pytest.param(lambda db: db.compact(), id="compact"),
]


@pytest.mark.parametrize("write", _WRITES)
def test_read_only_write_raises(ro: ferrumdb.FerrumDB, write: Callable[[Any], Any]) -> None:
    """Every write on a read-only handle raises ReadOnlyError and changes nothing."""
    with pytest.raises(ferrumdb.ReadOnlyError):
        write(ro)
    assert dict(ro.items()) == {"a": 1, "b": 2}


def test_read_only_follows_the_writer(existing: Path) -> None:
    """A read-only handle opened beside a writer sees its later writes (README, Promises)."""
    with ferrumdb.open(existing) as writer, ferrumdb.open(existing, read_only=True) as ro:
        assert ro.is_live
        writer["c"] = 3
        writer["a"] = 100
        del writer["b"]
        assert dict(ro.items()) == {"a": 100, "c": 3}


def test_read_only_missing_file_raises(tmp_path: Path) -> None:
    """Opening a missing file read-only raises FileNotFoundError and creates nothing."""
    with pytest.raises(FileNotFoundError):
        ferrumdb.open(tmp_path / "missing.db", read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_read_only_does_not_take_lock(existing: Path) -> None:
    """A read-only handle does not stop a writer from opening."""
    with ferrumdb.open(existing, read_only=True), ferrumdb.open(existing) as writer:
        writer["c"] = 3
