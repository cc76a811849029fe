"""The SIGKILL harness shared by the crash tests: run a child, cut it at a chosen acknowledgement.

The child prints one line per acknowledged operation, only after the call
returned. The parent reads those lines and SIGKILLs the child as soon as
``stop(lines)`` says so (no sleeps: the cut point is a count), then collects
the lines the child managed to print before the signal landed; a torn last
line is not an acknowledgement.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_until_killed(code: str, stop: Callable[[list[str]], bool]) -> list[str]:
    """Run ``python -c code`` from the repository root; SIGKILL it once ``stop(lines)``; return every line it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if stop(lines):
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    # Drain through the same buffered reader the loop used (communicate() would bypass
    # its buffer and skip lines already read ahead), then stderr. The child is dead: no deadlock.
    assert proc.stdout is not None and proc.stderr is not None
    rest, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"child ended on its own ({proc.returncode}): {err}"
    return lines + rest.split("\n")[:-1]
