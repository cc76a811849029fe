"""FerrumDB: a zero-setup embedded document database for Python, with a Rust core.

>>> import ferrumdb
>>> with ferrumdb.open(":memory:") as db:
...     db["user:1"] = {"name": "alice"}
...     print(db["user:1"])
{'name': 'alice'}
"""

from __future__ import annotations

import os as _os

from . import _native, aio
from ._native import ManualClock, Transaction, check
from .db import FerrumDB, encrypt, open, open_from_env
from .errors import (
    ClosedError,
    CorruptionError,
    DuplicateKeyError,
    EncryptionError,
    FerrumError,
    LockedError,
    ReadOnlyError,
    SalvageWarning,
    TransactionConflict,
    WatchOverflowError,
)

__version__: str = _native.__version__

__all__ = [
    "aio",
    "FerrumDB",
    "open",
    "open_from_env",
    "encrypt",
    "ManualClock",
    "Transaction",
    "check",
    "FerrumError",
    "CorruptionError",
    "EncryptionError",
    "LockedError",
    "ClosedError",
    "ReadOnlyError",
    "TransactionConflict",
    "DuplicateKeyError",
    "WatchOverflowError",
    "SalvageWarning",
    "__version__",
]

# A handle inherited through fork() shares the parent's file offsets and lock;
# the child must open its own. This marks every existing handle unusable there.
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_native._after_fork_in_child)
