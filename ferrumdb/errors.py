"""Exceptions raised by FerrumDB.

Every FerrumDB-specific error derives from :class:`FerrumError`, so
``except ferrumdb.FerrumError`` catches them all. Bad keys and values raise the
standard ``KeyError``, ``TypeError`` and ``ValueError``; operating-system
failures raise ``OSError`` (with its usual subclasses such as
``FileNotFoundError``, and the errno and file name kept).

After a failed ``fsync``/``msync`` (or a full disk met by a sync) the handle
is poisoned: the call that met the failure raises its ``OSError``, and every
later call except ``close()`` raises an ``OSError`` with the same errno saying
so, reads included, so nothing of unknown durability is acknowledged or
served. Close the handle and open the database again; the open recovers from
what is on disk. A write whose sync failed was not acknowledged: after the
reopen it may or may not be there, exactly as after a crash during the call.
"""

from __future__ import annotations

__all__ = [
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
]


class FerrumError(Exception):
    """Base class of every FerrumDB error."""


class CorruptionError(FerrumError):
    """Stored data failed its checksum or is malformed.

    The message names the file and the byte offset of the first damaged record.
    Damaged data is never returned. A torn tail left by a crash is not
    corruption: it is cut off silently when the database is opened.
    """


class EncryptionError(FerrumError):
    """Wrong encryption key, or encrypted data that was tampered with."""


class LockedError(FerrumError):
    """Another process (or another handle of this one) has the database open for writing.

    One handle writes a database at a time; the lock is on the file itself, so
    a symlink or hard link to it meets the same lock. Close it there (or share
    that handle), or open this one with ``read_only=True``. The message names
    the path and the holder's pid where the OS shows it.
    """


class ClosedError(FerrumError):
    """The database handle was closed; open the database again to use it."""


class ReadOnlyError(FerrumError):
    """A write was attempted on a handle opened with ``read_only=True``."""


class WatchOverflowError(FerrumError):
    """A ``db.watch()`` fell behind: more changes waited unread than its buffer holds.

    The buffered changes were dropped (a slow consumer never holds up writers or
    memory) and the watch is finished. Start a new ``db.watch()`` and re-read
    the current state of the keys you follow.
    """


class TransactionConflict(FerrumError):
    """A key a transaction read was changed by someone else before it committed."""


class DuplicateKeyError(FerrumError, ValueError):
    """A unique index refused a write: another document already holds the value; nothing was written.

    Also a ``ValueError``, since the value is what is wrong. Raised by ``set``,
    updates, transaction commits and imports that would duplicate a value of a
    ``create_index(field, unique=True)`` index, and by creating one over data
    that already repeats a value. A document without the field counts as
    ``None`` (as in MongoDB), so at most one document may lack it.
    """


class SalvageWarning(UserWarning):
    """``open(path, salvage=True)`` found damage and rebuilt the database from its intact records.

    The message says how many bytes were lost and where; the full report is in
    ``db.salvage_report`` and the damaged original is kept beside the database.
    """
