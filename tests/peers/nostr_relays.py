"""Two real Nostr relays on 127.0.0.1 for the tests, as subprocesses.

- rust-nostr's LocalRelay (from the `nostr-sdk` wheel), in memory, through a tiny script;
- `nostr-relay` 1.14 (gunicorn + SQLite), with a generated relay.yaml bound to 127.0.0.1 and a
  database in a temporary directory.

`running_relays()` starts both and yields their ws:// URLs; the `nostr_relays` session fixture
wraps it. With $PLURSPOOL_TEST_NOSTR_RELAYS="ws://127.0.0.1:P1,ws://127.0.0.1:P2" set, those
relays are used instead (CI may start them once for the whole run). `python -m
tests.peers.nostr_relays` starts both, prints that variable's line and runs until SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .proc import PeerProcess, free_port, stop_on_signals, wait_for

ENV_VAR = "PLURSPOOL_TEST_NOSTR_RELAYS"
START_TIMEOUT = 60.0  # generous: two cores shared with other test runs

LOCAL_RELAY_SCRIPT = textwrap.dedent(
    """\
    import asyncio, sys
    from nostr_sdk import LocalRelayBuilder, RateLimit

    async def main():
        builder = LocalRelayBuilder().addr("127.0.0.1").port(int(sys.argv[1]))
        if len(sys.argv) > 2:  # notes per minute and connection (the relay's default: 60)
            n = int(sys.argv[2])
            builder = builder.rate_limit(RateLimit(max_reqs=n, notes_per_minute=n))
        relay = builder.build()
        await relay.run()
        print("READY", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)

RELAY_YAML = """\
DEBUG: false
relay_name: plurspool test relay
relay_description: a relay for plurspool's tests
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{db}
  validators:
    - nostr_relay.validators.is_not_too_large
    - nostr_relay.validators.is_signed
    - nostr_relay.validators.is_recent
    - nostr_relay.validators.is_not_hellthread
verification:
  nip05_verification: disabled
gunicorn:
  bind: 127.0.0.1:{port}
  workers: 1
  loglevel: warning
  reload: false
authentication:
  enabled: false
"""


Relay = PeerProcess  # a relay subprocess


def relay_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a relay at `url` completes a REQ with EOSE."""
    import json

    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    try:
        with connect(url, open_timeout=timeout, close_timeout=1.0) as ws:
            ws.send(json.dumps(["REQ", "probe", {"kinds": [0], "limit": 1}]))
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                msg = json.loads(ws.recv(timeout=max(0.01, end - time.monotonic())))
                if msg[:2] == ["EOSE", "probe"]:
                    return True
    except (OSError, WebSocketException, ValueError):
        return False
    return False


def _wait_ready(relay: Relay) -> Relay:
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        if relay.proc.poll() is not None:
            tail = relay.log.read_text(errors="replace")[-2000:]
            relay.stop()
            raise RuntimeError(f"{relay.name} exited with {relay.proc.returncode}:\n{tail}")
        if relay_answers(relay.url, timeout=1.0):
            return relay
        time.sleep(0.05)
    relay.stop()
    raise RuntimeError(f"{relay.name} at {relay.url} not ready within {START_TIMEOUT:g}s")


def _spawn(
    name: str, argv: list[str], workdir: Path, port: int, stop_signal: int = signal.SIGTERM
) -> Relay:
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Relay(f"ws://127.0.0.1:{port}", proc, log, name=name, stop_signal=stop_signal)


def start_local_relay(
    workdir: Path, port: int | None = None, notes_per_minute: int | None = None
) -> Relay:
    """rust-nostr's in-memory LocalRelay on 127.0.0.1:`port` (a free one by default), with its
    own rate limit (60 notes a minute per connection) or `notes_per_minute`."""
    port = port or free_port()
    script = workdir / "local_relay.py"
    script.write_text(LOCAL_RELAY_SCRIPT)
    argv = [sys.executable, str(script), str(port)]
    if notes_per_minute is not None:
        argv.append(str(notes_per_minute))
    return _wait_ready(_spawn("rust-nostr", argv, workdir, port))


def start_nostr_relay(workdir: Path, port: int | None = None) -> Relay:
    """`nostr-relay` (gunicorn + SQLite) on 127.0.0.1:`port`, its database in `workdir`."""
    port = port or free_port()
    config = workdir / "relay.yaml"
    config.write_text(RELAY_YAML.format(db=workdir / "nostr.sqlite3", port=port))
    exe = Path(sys.executable).parent / "nostr-relay"
    program = str(exe) if exe.exists() else shutil.which("nostr-relay")
    if program is None:
        raise RuntimeError(
            "nostr-relay is not installed: pip install -r tests/peers/requirements-nostr.txt"
        )
    argv = [program, "-c", str(config), "serve"]
    return _wait_ready(_spawn("nostr-relay", argv, workdir, port, signal.SIGKILL))


@contextlib.contextmanager
def running_relays() -> Iterator[list[str]]:
    """The URLs of two running relays: from $PLURSPOOL_TEST_NOSTR_RELAYS, else started here."""
    given = os.environ.get(ENV_VAR, "").strip()
    if given:
        yield [u.strip() for u in given.split(",") if u.strip()]
        return
    with tempfile.TemporaryDirectory(prefix="plurspool-nostr-") as tmp:
        base = Path(tmp)
        (base / "rust").mkdir()
        (base / "py").mkdir()
        with (
            start_local_relay(base / "rust") as rust,
            start_nostr_relay(base / "py") as py,
        ):
            yield [rust.url, py.url]


@pytest.fixture(scope="session")
def nostr_relays() -> Iterator[list[str]]:
    """[rust-nostr LocalRelay URL, nostr-relay URL], for the whole session."""
    with running_relays() as urls:
        yield urls


def main() -> None:
    """Start both relays, print ENV_VAR=..., run until SIGTERM or SIGINT."""
    stop = stop_on_signals()
    with running_relays() as urls:
        print(f"{ENV_VAR}={','.join(urls)}", flush=True)
        wait_for(stop)


if __name__ == "__main__":
    main()
