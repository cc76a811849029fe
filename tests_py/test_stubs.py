"""The shipped type stubs match the runtime exactly (mypy's stubtest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import ferrumdb

pytest.importorskip("mypy.stubtest")

_ROOT = Path(__file__).resolve().parent.parent
_ALLOWLIST = _ROOT / ".mypy-stubtest-allowlist"


def test_stubtest_passes(tmp_path: Path) -> None:
    """python -m mypy.stubtest ferrumdb finds no difference between stubs and runtime."""
    cmd = [sys.executable, "-m", "mypy.stubtest", "ferrumdb"]
    if _ALLOWLIST.exists():
        cmd += ["--allowlist", str(_ALLOWLIST)]
    # Run from a scratch directory so mypy's cache does not land in the repository.
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_is_typed() -> None:
    """The package ships py.typed and the stub for its native module."""
    pkg = Path(ferrumdb.__file__).parent
    assert (pkg / "py.typed").is_file()
    assert (pkg / "_native.pyi").is_file()


def test_public_api_type_checks(tmp_path: Path) -> None:
    """Typical use of the public API passes mypy --strict."""
    snippet = tmp_path / "use.py"
    snippet.write_text(
        "import ferrumdb\n"
        "from typing import Any\n"
        "with ferrumdb.open(':memory:', fsync='never') as db:\n"
        "    db['k'] = {'a': [1, 2]}\n"
        "    v: Any = db['k']\n"
        "    keys: list[str] = db.keys()\n"
        "    n: int = len(db) + db.count()\n"
        "    ok: bool = db.delete('k')\n"
        "    for key, value in db.scan('k'):\n"
        "        pass\n"
        "    stats: dict[str, Any] = db.stats()\n"
        "    db.set_json('j', '[1]')\n"
        "    db.compact()\n"
        "    db.flush()\n"
        "db2: ferrumdb.FerrumDB = ferrumdb.FerrumDB.open(':memory:', read_only=False)\n"
        "db2.close()\n"
        "db3 = ferrumdb.open_from_env(':memory:')\n"
        "db3.close()\n"
        "try:\n"
        "    pass\n"
        "except ferrumdb.FerrumError:\n"
        "    pass\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(snippet)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
