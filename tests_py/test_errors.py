"""The exception hierarchy, and that each error is raised as its class and caught by its base."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ferrumdb
import ferrumdb.errors

_SUBCLASSES = [
    ferrumdb.CorruptionError,
    ferrumdb.EncryptionError,
    ferrumdb.LockedError,
    ferrumdb.ClosedError,
    ferrumdb.ReadOnlyError,
    ferrumdb.TransactionConflict,
]
_VALUE_ERRORS = [ferrumdb.DuplicateKeyError]


def test_ferrum_error_is_exception() -> None:
    """FerrumError is an Exception (not a KeyError/ValueError/OSError in disguise)."""
    assert ferrumdb.FerrumError.__bases__ == (Exception,)


@pytest.mark.parametrize("cls", _SUBCLASSES, ids=lambda c: c.__name__)
def test_error_subclasses_ferrum_error(cls: type[Exception]) -> None:
    """Every FerrumDB error class derives directly from FerrumError."""
    assert cls.__bases__ == (ferrumdb.FerrumError,)


@pytest.mark.parametrize("cls", _VALUE_ERRORS, ids=lambda c: c.__name__)
def test_value_error_subclasses_are_also_ferrum_errors(cls: type[Exception]) -> None:
    """DuplicateKeyError is both a FerrumError and a ValueError (the value is what is wrong)."""
    assert cls.__bases__ == (ferrumdb.FerrumError, ValueError)


@pytest.mark.parametrize("cls", [ferrumdb.FerrumError, *_SUBCLASSES, *_VALUE_ERRORS], ids=lambda c: c.__name__)
def test_error_exported_from_package_and_errors_module(cls: type[Exception]) -> None:
    """Each error class is the same object in ferrumdb and ferrumdb.errors, and listed in __all__."""
    assert getattr(ferrumdb.errors, cls.__name__) is cls
    assert cls.__name__ in ferrumdb.__all__


@pytest.mark.parametrize("cls", [ferrumdb.FerrumError, *_SUBCLASSES, *_VALUE_ERRORS], ids=lambda c: c.__name__)
def test_error_class_has_docstring(cls: type[Exception]) -> None:
    """Each error class documents when it is raised."""
    assert cls.__doc__ and cls.__doc__.strip()


# -- raised errors: the class AND the base catch them ----------------------------------------


def _closed(db_path: Path) -> None:
    db = ferrumdb.open(db_path)
    db.close()
    db["k"] = 1


def _read_only_write(db_path: Path) -> None:
    ferrumdb.open(db_path).close()
    with ferrumdb.open(db_path, read_only=True) as ro:
        ro["k"] = 1


def _corrupt(db_path: Path) -> None:
    with ferrumdb.open(db_path) as db:
        for i in range(20):
            db[f"k{i:02d}"] = {"i": i, "pad": "p" * 40}
    data = bytearray(db_path.read_bytes())
    at = data.index(b'"i":5,')
    data[at + 4] ^= 0x01  # '5' -> '4' inside a record in the middle of the file
    db_path.write_bytes(bytes(data))
    with ferrumdb.open(db_path) as db:
        db["k05"]


def _locked_same_process(db_path: Path) -> None:
    with ferrumdb.open(db_path, exclusive=True):
        ferrumdb.open(db_path).close()


_RAISERS: list[Any] = [
    pytest.param(_closed, ferrumdb.ClosedError, id="ClosedError"),
    pytest.param(_read_only_write, ferrumdb.ReadOnlyError, id="ReadOnlyError"),
    pytest.param(_corrupt, ferrumdb.CorruptionError, id="CorruptionError"),
    pytest.param(_locked_same_process, ferrumdb.LockedError, id="LockedError"),
]


@pytest.mark.parametrize(("provoke", "cls"), _RAISERS)
def test_raised_as_its_class(db_path: Path, provoke: Callable[[Path], None], cls: type[Exception]) -> None:
    """The error is raised as its specific class."""
    with pytest.raises(cls):
        provoke(db_path)


@pytest.mark.parametrize(("provoke", "cls"), _RAISERS)
def test_caught_by_base(db_path: Path, provoke: Callable[[Path], None], cls: type[Exception]) -> None:
    """The same error is caught by except FerrumError."""
    with pytest.raises(ferrumdb.FerrumError) as info:
        provoke(db_path)
    assert type(info.value) is cls


def test_corruption_names_file_and_offset(db_path: Path) -> None:
    """CorruptionError names the damaged file and an offset."""
    with pytest.raises(ferrumdb.CorruptionError) as info:
        _corrupt(db_path)
    assert str(db_path) in str(info.value)
    assert "offset" in str(info.value)


def test_closed_error_says_what_to_do(db_path: Path) -> None:
    """ClosedError's message says the database is closed and to open it again."""
    with pytest.raises(ferrumdb.ClosedError, match="closed.*open it again"):
        _closed(db_path)


def test_read_only_error_says_what_to_do(db_path: Path) -> None:
    """ReadOnlyError's message says the handle is read-only and how to write."""
    with pytest.raises(ferrumdb.ReadOnlyError, match="read.only"):
        _read_only_write(db_path)


# -- standard exceptions keep their meaning -------------------------------------------------------


def test_missing_key_is_plain_keyerror(db: ferrumdb.FerrumDB) -> None:
    """A missing key raises KeyError, not a FerrumError."""
    with pytest.raises(KeyError) as info:
        db["missing"]
    assert not isinstance(info.value, ferrumdb.FerrumError)


def test_bad_value_is_plain_typeerror(db: ferrumdb.FerrumDB) -> None:
    """A value of the wrong type raises TypeError, not a FerrumError."""
    with pytest.raises(TypeError) as info:
        db["k"] = {1, 2}
    assert not isinstance(info.value, ferrumdb.FerrumError)


def test_bad_fsync_is_plain_valueerror(tmp_path: Path) -> None:
    """An unknown fsync policy raises ValueError naming the accepted ones."""
    with pytest.raises(ValueError, match="always") as info:
        ferrumdb.open(tmp_path / "x.db", fsync="sometimes")
    assert not isinstance(info.value, ferrumdb.FerrumError)


def test_bad_fsync_creates_no_file(tmp_path: Path) -> None:
    """An open refused for a bad fsync policy creates no file."""
    with pytest.raises(ValueError):
        ferrumdb.open(tmp_path / "x.db", fsync="periodic:abc")
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_oserror(tmp_path: Path) -> None:
    """Opening a database in a directory that does not exist raises FileNotFoundError naming the path."""
    with pytest.raises(FileNotFoundError) as info:
        ferrumdb.open(tmp_path / "no" / "such" / "dir.db")
    assert info.value.filename is not None and "no" in str(info.value.filename)
