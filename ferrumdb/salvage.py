"""``open(path, salvage=True)``: open a damaged database by rebuilding it from its intact records.

A damaged database refuses to open (damage is never served). Salvage scans
the file, copies every intact record into a new database, keeps the damaged
original beside it as ``PATH.damaged`` (``PATH.damaged.1``, ... if that
exists), moves the new one into place and opens it, warning with
:class:`~ferrumdb.SalvageWarning` and leaving the report in
``db.salvage_report``. An intact database opens as usual.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

from . import _native
from .errors import CorruptionError, SalvageWarning


def open_salvaging(path: str | os.PathLike[str], opener: Callable[[], Any], encryption_key: Any = None) -> Any:
    """Open with ``opener``; if the file is damaged, salvage it first (see the module doc).

    The salvage itself runs in the native core under the database's writer
    lock, and re-checks the damage under it: of several processes salvaging
    at once, one rebuilds the file; the others find it intact (and open it)
    or held for writing (``LockedError``). None ever moves a live file aside.
    """
    try:
        return opener()
    except CorruptionError:
        pass
    report = _native._salvage_in_place(path, encryption_key=encryption_key)
    db = opener()
    if report is None:
        return db
    kept = report.pop("kept")
    db.salvage_report = report
    lost = ", ".join(f"{d['length']} bytes at offset {d['offset']}" for d in report["damage"]) or "nothing"
    warnings.warn(
        f"{os.fspath(path)} was damaged: rebuilt it from {report['writes']} intact records "
        f"({report['keys']} keys); lost {lost}. The damaged file is kept as {kept}.",
        SalvageWarning,
        stacklevel=3,
    )
    return db
