"""The `plurspool` command: --help and --version from usage.py without click, else `cli.main`.

It is also `python -m plurspool` (how the detached daemon is started).
"""

from __future__ import annotations

import os
import sys

from . import __version__, usage


def _write(text: str) -> None:
    if sys.stdout is None:
        return  # started with no standard output at all: nothing to say it to (as click)
    # As click.echo does: an ASCII-only stdout (a misconfigured locale) gets UTF-8 instead.
    encoding = sys.stdout.encoding or "utf-8"
    if encoding.lower().replace("-", "").replace("_", "") in ("ascii", "usascii", "ansix3.41968"):
        encoding = "utf-8"
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode(encoding, "replace"))
        sys.stdout.flush()
    except OSError as exc:
        # What is left unwritten goes nowhere (else the flush at exit fails all over again).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if isinstance(exc, BrokenPipeError):
            return  # `plurspool --help | head -1`: the reader left; nothing is wrong
        sys.stderr.write(f"plurspool: cannot write to standard output: {exc.strerror}\n")
        sys.exit(1)


def main() -> None:
    """The `plurspool` command: help and version here, everything else through click."""
    args = sys.argv[1:]
    if args in (["--help"], ["-h"]):
        _write(usage.render("plurspool", max(min(usage.columns(), 80) - 2, 50)))
        return
    if args in (["--version"], ["-V"]):
        _write(f"plurspool, version {__version__}\n")
        return
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
