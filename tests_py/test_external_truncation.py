"""What a user sees when another process truncates the file of an open database.

FerrumDB does not recover from this (see README, "don't truncate the file of an
open database", as LMDB documents): a writer appends and reads through a shared
mapping of the file, and touching a mapped page past the new end of the file
raises SIGBUS, which kills the process. A read-only handle reads with pread(2),
so it gets a CorruptionError naming the file instead. These tests pin exactly
that, with a real writer process and a real truncation; the child reports over
a pipe, no sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ferrumdb

_WRITER = textwrap.dedent(
    """
    import sys
    import ferrumdb

    db = ferrumdb.open(sys.argv[1], auto_compact=None)
    for i in range(2000):
        db[f"k{i:04d}"] = {"i": i, "pad": "x" * 200}
    db.flush()
    print("ready", flush=True)
    sys.stdin.readline()          # the test truncated the file meanwhile
    print(db["k1999"], flush=True)  # read through the mapping
    print("survived", flush=True)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="SIGBUS on a truncated mapping is the Linux behaviour pinned here")
def test_a_writer_whose_file_is_truncated_by_another_process_dies_with_sigbus(db_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline() == "ready\n"
        os.truncate(db_path, 64)  # another process cuts the file to its header
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, _ = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGBUS
    assert "survived" not in out


def test_a_reader_whose_file_is_truncated_gets_a_corruption_error(db_path: Path) -> None:
    with ferrumdb.open(db_path) as db:
        for i in range(200):
            db[f"k{i:03d}"] = {"i": i, "pad": "x" * 200}
    with ferrumdb.open(db_path, read_only=True) as reader:
        os.truncate(db_path, db_path.stat().st_size // 2)
        with pytest.raises(ferrumdb.CorruptionError, match="truncated while open") as caught:
            reader["k199"]
        assert str(db_path) in str(caught.value)
        assert reader["k000"] == {"i": 0, "pad": "x" * 200}
