"""Encryption at rest from Python: ``encryption_key=``, ``rekey``, ``ferrumdb.encrypt``.

Covers the argument rules (types, lengths), the errors a wrong, missing or
unexpected key raises, that nothing readable reaches the file, tampering being
refused, and a SIGKILL while writing (or re-keying) an encrypted database
losing no acknowledged write.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

import ferrumdb
from tests_py.kill import run_until_killed

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def _write_sample(path: Path, key: Any) -> dict[str, Any]:
    data = {"user:1": {"name": "alice-secret", "tags": ["admin"]}, "user:2": [1, 2, 3], "n": None}
    with ferrumdb.open(path, encryption_key=key) as db:
        db.update(data)
    return data


@pytest.mark.parametrize(
    "key", [KEY, bytearray(KEY), memoryview(KEY), "correct horse battery staple"], ids=["bytes", "bytearray", "memoryview", "passphrase"]
)
def test_round_trip_and_reopen(db_path: Path, key: Any) -> None:
    data = _write_sample(db_path, key)
    with ferrumdb.open(db_path, encryption_key=key) as db:
        assert dict(db.items()) == data
    with ferrumdb.open(db_path, encryption_key=key, read_only=True) as db:
        assert db["user:1"]["name"] == "alice-secret"
    with ferrumdb.FerrumDB.open(db_path, encryption_key=key) as db:
        assert len(db) == 3


def test_no_plaintext_in_the_file(db_path: Path) -> None:
    with ferrumdb.open(db_path, encryption_key=KEY) as db:
        db.create_index("nickname")
        db["customer:4711"] = {"nickname": "quokka-pancake"}
        db.set("temp:token", "bearer-xyzzy", ttl=3600)
        db.compact()
        db["after"] = "compaction-marker"
    raw = db_path.read_bytes()
    for text in [b"customer", b"quokka", b"nickname", b"temp:token", b"xyzzy", b"compaction-marker"]:
        assert text not in raw, text
    # The same writes to a plain file are visible: the check above can fail.
    plain = db_path.with_name("plain.db")
    with ferrumdb.open(plain) as db:
        db["customer:4711"] = {"nickname": "quokka-pancake"}
    assert b"quokka" in plain.read_bytes()


def test_wrong_key_missing_key_and_key_on_plain_file(db_path: Path) -> None:
    _write_sample(db_path, KEY)
    before = db_path.read_bytes()
    with pytest.raises(ferrumdb.EncryptionError, match="wrong encryption key"):
        ferrumdb.open(db_path, encryption_key=OTHER)
    with pytest.raises(ferrumdb.EncryptionError, match="passphrase"):
        ferrumdb.open(db_path, encryption_key="not the key")
    with pytest.raises(ferrumdb.EncryptionError, match="is encrypted"):
        ferrumdb.open(db_path)
    assert db_path.read_bytes() == before
    plain = db_path.with_name("plain.db")
    with ferrumdb.open(plain) as db:
        db["k"] = 1
    with pytest.raises(ferrumdb.EncryptionError, match="not encrypted"):
        ferrumdb.open(plain, encryption_key=KEY)


def test_encryption_error_is_a_ferrum_error(db_path: Path) -> None:
    _write_sample(db_path, KEY)
    with pytest.raises(ferrumdb.FerrumError):
        ferrumdb.open(db_path, encryption_key=OTHER)
    assert issubclass(ferrumdb.EncryptionError, ferrumdb.FerrumError)


@pytest.mark.parametrize("bad", [12345, ["k"], object(), 3.5])
def test_wrong_key_types_raise_type_error(db_path: Path, bad: Any) -> None:
    with pytest.raises(TypeError, match="encryption_key must be"):
        ferrumdb.open(db_path, encryption_key=bad)
    assert not db_path.exists(), "nothing is created for a rejected key"


@pytest.mark.parametrize("bad", [b"", b"short", bytes(31), bytes(33), ""])
def test_wrong_key_lengths_raise_value_error(db_path: Path, bad: Any) -> None:
    with pytest.raises(ValueError):
        ferrumdb.open(db_path, encryption_key=bad)
    assert not db_path.exists()


def test_rekey_then_only_the_new_key_opens(db_path: Path) -> None:
    data = _write_sample(db_path, KEY)
    with ferrumdb.open(db_path, encryption_key=KEY) as db:
        db.rekey("a new passphrase")
        assert dict(db.items()) == data
        db["later"] = "x"
    with pytest.raises(ferrumdb.EncryptionError):
        ferrumdb.open(db_path, encryption_key=KEY)
    with ferrumdb.open(db_path, encryption_key="a new passphrase") as db:
        assert db["later"] == "x" and db["user:2"] == [1, 2, 3]
        with pytest.raises(TypeError):
            db.rekey(42)
        with pytest.raises(ValueError):
            db.rekey(b"too short")
    db.close()
    with pytest.raises(ferrumdb.ClosedError):
        db.rekey(KEY)


def test_rekey_on_read_only_handle_is_refused(db_path: Path) -> None:
    _write_sample(db_path, KEY)
    with ferrumdb.open(db_path, encryption_key=KEY, read_only=True) as db:
        with pytest.raises(ferrumdb.ReadOnlyError):
            db.rekey(OTHER)


def test_encrypt_a_plain_file(db_path: Path) -> None:
    data = _write_sample(db_path, None)
    assert b"alice-secret" in db_path.read_bytes()
    ferrumdb.encrypt(db_path, KEY)
    assert b"alice-secret" not in db_path.read_bytes()
    with pytest.raises(ferrumdb.EncryptionError):
        ferrumdb.open(db_path)
    with ferrumdb.open(db_path, encryption_key=KEY) as db:
        assert dict(db.items()) == data
    with pytest.raises(ferrumdb.EncryptionError, match="encrypted"):
        ferrumdb.encrypt(db_path, OTHER)
    with pytest.raises(FileNotFoundError):
        ferrumdb.encrypt(db_path.with_name("missing.db"), KEY)


def test_tampered_file_is_refused(db_path: Path) -> None:
    with ferrumdb.open(db_path, encryption_key=KEY) as db:
        for i in range(20):
            db[f"k{i:02d}"] = {"i": i}
    raw = bytearray(db_path.read_bytes())
    raw[400] ^= 0x01  # inside an early record, with intact records after it
    db_path.write_bytes(bytes(raw))
    with pytest.raises((ferrumdb.CorruptionError, ferrumdb.EncryptionError), match="offset"):
        ferrumdb.open(db_path, encryption_key=KEY)


def test_open_from_env_passes_the_key(db_path: Path) -> None:
    _write_sample(db_path, KEY)
    with ferrumdb.open_from_env(db_path, encryption_key=KEY) as db:
        assert db["n"] is None


def test_memory_database_accepts_a_key() -> None:
    with ferrumdb.open(":memory:", encryption_key="pw") as db:
        db["a"] = 1
        db.rekey(KEY)
        assert db["a"] == 1


# -- SIGKILL while writing or re-keying ------------------------------------------


def _value(i: int) -> dict[str, Any]:
    return {"i": i, "pad": "p" * (i % 50)}


def _child_main(path: str, mode: str) -> None:
    """Runs in the child: write, then acknowledge on stdout; in "rekey" mode switch keys every 7 writes."""
    keys = [KEY, OTHER]
    current = 0
    db = ferrumdb.open(path, fsync="never", encryption_key=keys[current])
    for i in range(1_000_000):
        db[f"k{i:08d}"] = _value(i)
        sys.stdout.write(f"k{i:08d}\n")
        sys.stdout.flush()
        if mode == "rekey" and i % 7 == 6:
            current = 1 - current
            db.rekey(keys[current])


def _run_and_kill(path: Path, mode: str, target: int) -> list[str]:
    code = f"from tests_py.test_encryption import _child_main; _child_main({str(path)!r}, {mode!r})"
    return run_until_killed(code, lambda lines: len(lines) >= target)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("mode", ["write", "rekey"])
@pytest.mark.parametrize("seed", range(3))
def test_sigkill_keeps_every_acknowledged_write(tmp_path: Path, mode: str, seed: int) -> None:
    path = tmp_path / "crash.db"
    target = random.Random(seed).randint(1, 300 if mode == "write" else 40)
    acked = _run_and_kill(path, mode, target)
    # After a kill mid-rekey the file is under exactly one of the two keys.
    working = []
    for key in (KEY, OTHER):
        try:
            ferrumdb.open(path, encryption_key=key, read_only=True).close()
            working.append(key)
        except ferrumdb.EncryptionError:
            pass
    assert len(working) == 1, "exactly one key opens the database"
    with ferrumdb.open(path, encryption_key=working[0]) as db:
        for key in acked:
            assert db.get(key) == _value(int(key[1:])), f"acknowledged write {key} lost"
        assert len(db) - len(acked) in (0, 1)
    # The shared page (README, Promises) is the one file beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crash.db", "crash.db.shm"]
