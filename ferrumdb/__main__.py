"""``python -m ferrumdb`` and the ``ferrumdb`` command: the REPL and batch tools."""

from __future__ import annotations

import signal
import sys

from . import _native


def main(argv: list[str] | None = None) -> int:
    """Run the FerrumDB command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("push", "pull"):
        # Copying to and from PostgreSQL needs the Python driver (ferrumdb[postgres]).
        from .postgres_sync import main as sync_main

        return sync_main(args)
    # The CLI runs in Rust with the interpreter detached, so Python's SIGINT
    # handler would only set a flag nobody reads. Let Ctrl-C end a script run
    # at once (every acknowledged write is already safe); the interactive
    # editor reads Ctrl-C as a key and handles it itself.
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        return _native.cli_main(args)
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
