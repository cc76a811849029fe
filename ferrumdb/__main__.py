"""``python -m ferrumdb`` and the ``ferrumdb`` command: the REPL and batch tools."""

from __future__ import annotations

import sys

from . import _native


def main(argv: list[str] | None = None) -> int:
    """Run the FerrumDB command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    return _native.cli_main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
