"""Start every protocol peer the tests use, on 127.0.0.1, until SIGTERM.

`python -m tests.peers.up --env-file F` starts both Nostr relays, mastodon-mock and the reference
Bluesky PDS, writes `NAME=VALUE` lines for the tests (the fixtures use these peers instead of
starting their own) and then `READY` to F, and stops them all on SIGTERM or SIGINT.
`tests/run` does this around pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from . import bluesky_pds, mastodon_mock, nostr_relays
from .proc import stop_on_signals, wait_for


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.peers.up")
    ap.add_argument("--env-file", type=Path, required=True)
    args = ap.parse_args()
    stop = stop_on_signals()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        relays = stack.enter_context(nostr_relays.running_relays())
        mastodon = stack.enter_context(mastodon_mock.running_mock())
        pds = stack.enter_context(bluesky_pds.running_pds())
        lines = [
            f"{nostr_relays.ENV_VAR}={','.join(relays)}",
            f"{mastodon_mock.ENV_VAR}={mastodon}",
            f"{bluesky_pds.ENV_VAR}={pds}",
        ]
        args.env_file.write_text("\n".join([*lines, "READY", ""]))
        print(
            f"peers up in {time.monotonic() - started:.1f}s: " + "; ".join(lines),
            file=sys.stderr,
            flush=True,
        )
        wait_for(stop)
    print("peers stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
