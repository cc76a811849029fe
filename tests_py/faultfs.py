"""Real faults from outside the process, for the fault tests (issue 10, README "Promises").

Why this exists: ``kill -9`` never shows a full disk or a failed sync, yet both
happen to users. This module gives tests the real thing:

- :func:`tmpfs` mounts a small tmpfs (root only) and :func:`fill` fills it to
  ENOSPC with a filler file, so FerrumDB meets a genuinely full filesystem;
- :func:`failsync_library` compiles ``tests_py/faults/failsync.c``, an
  ``LD_PRELOAD`` shim that fails the n-th fsync/fdatasync/msync with EIO;
- :func:`run_child` runs a scenario in a child process (a crash or SIGBUS
  there cannot take pytest down) and collects what it reports.

Where the fault cannot be made (not root, no ``mount``, no C compiler), tests
skip with the reason, except when ``CI=true``: CI must run them, so they fail.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIM_SOURCE = Path(__file__).resolve().parent / "faults" / "failsync.c"

# Prepended to every child script: report events as JSON lines marked "@".
CHILD_PRELUDE = r"""
import errno, json, os, sys
from pathlib import Path
import ferrumdb

def emit(**event):
    print("@" + json.dumps(event), flush=True)

def describe(e):
    if e is None:
        return None
    return {"type": type(e).__name__, "errno": getattr(e, "errno", None),
            "filename": getattr(e, "filename", None), "message": str(e)}

def attempt(name, call):
    # Report `name` as the call's result ("ok" for None) or its OSError.
    try:
        result = call()
    except OSError as e:
        emit(**{name: describe(e)})
        return False
    emit(**{name: "ok" if result is None else result})
    return True

def aftermath(db, acked):
    # After a failure: reads of acknowledged writes, one more write, close().
    attempt("reads", lambda: all(db[k] == v for k, v in acked.items()))
    if attempt("write_after", lambda: db.__setitem__("after", {"after": True})):
        acked["after"] = {"after": True}
        emit(acked=acked)
    attempt("close", db.close)
"""


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true (where these tests must run)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the fault cannot be injected: {reason}")
    pytest.skip(reason)


@contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A freshly mounted tmpfs of ``size`` (e.g. "16m"), unmounted afterwards."""
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root (CI runs these as root)")
    mount = shutil.which("mount")
    if mount is None:
        unavailable("no mount command")
    mountpoint = Path(tempfile.mkdtemp(prefix="ferrum-tmpfs-"))
    try:
        done = subprocess.run(
            [mount, "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mountpoint)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            unavailable(f"cannot mount a tmpfs: {done.stderr.strip()}")
        try:
            yield mountpoint
        finally:
            done = subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=60)
            if done.returncode != 0:
                # Still busy (a child that outlived its timeout): detach it.
                subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=60)
    finally:
        mountpoint.rmdir()


def fill(filler: Path) -> int:
    """Write ``filler`` until its filesystem is full (ENOSPC even for one byte); its size."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    written = 0
    chunk = 1 << 20
    try:
        while chunk >= 1:
            try:
                written += os.write(fd, b"\0" * chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                chunk //= 16 if chunk > 16 else 2
        os.fsync(fd)
    finally:
        os.close(fd)
    return written


def failsync_library(out_dir: Path) -> Path:
    """Compile the failsync shim into ``out_dir``; its path."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        unavailable("no C compiler (cc/gcc) to build the failsync shim")
    lib = out_dir / "failsync.so"
    done = subprocess.run(
        [cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(SHIM_SOURCE), "-ldl"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        unavailable(f"cannot build the failsync shim: {done.stderr.strip()}")
    return lib


class Child:
    """What a child scenario reported: its exit status, events and stderr."""

    def __init__(self, returncode: int, events: list[dict[str, Any]], stderr: str, stdout: str) -> None:
        self.returncode = returncode
        self.events = events
        self.stderr = stderr
        self.stdout = stdout

    def event(self, name: str) -> Any:
        """The value of the last event carrying ``name``."""
        for e in reversed(self.events):
            if name in e:
                return e[name]
        raise AssertionError(f"the child never reported {name!r}:\n{self.stdout}\n{self.stderr}")

    def __repr__(self) -> str:
        return f"Child(returncode={self.returncode}, events={self.events}, stderr={self.stderr[-2000:]!r})"


def run_child(script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Child:
    """Run ``CHILD_PRELUDE + script`` with ``args`` in a fresh interpreter; never hangs pytest."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD_PRELUDE + script, *args],
            cwd=ROOT,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"child scenario did not finish in {timeout} s: {e.stdout!r} {e.stderr!r}")
    events = [json.loads(line[1:]) for line in done.stdout.splitlines() if line.startswith("@")]
    return Child(done.returncode, events, done.stderr, done.stdout)
