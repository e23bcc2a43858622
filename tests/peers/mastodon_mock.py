"""mastodon-mock on 127.0.0.1 for the tests, as a subprocess.

`running_mock()` starts `mastodon_mock serve --in-memory` on a free port and yields its base URL
(http://127.0.0.1:P); the `mastodon_mock` session fixture wraps it in a `Mock` with helpers for
fresh accounts and fault injection. With $PLURSPOOL_TEST_MASTODON_URL set, that server is used
instead (CI may start one for the whole run). `python -m tests.peers.mastodon_mock` starts one,
prints that variable's line and runs until SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .proc import PeerProcess, free_port, stop_on_signals, wait_for

ENV_VAR = "PLURSPOOL_TEST_MASTODON_URL"
START_TIMEOUT = 60.0  # generous: two cores shared with other test runs
SEED_TOKEN = "mock_token"  # the mock's seeded account (testuser)


def request(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One JSON request to the mock: (status, decoded body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            code, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        code, raw = exc.code, exc.read()
    return code, json.loads(raw) if raw.strip() else None


def mock_answers(base: str, timeout: float = 2.0) -> bool:
    """Whether the mock at `base` answers GET /api/v2/instance."""
    try:
        code, _ = request(base, "GET", "/api/v2/instance", timeout=timeout)
    except (OSError, ValueError):
        return False
    return code == 200


Server = PeerProcess  # the mastodon_mock subprocess


def start_mock(workdir: Path, port: int | None = None, config: str = "") -> Server:
    """`mastodon_mock serve --in-memory` on 127.0.0.1:`port` (a free one by default), ready.

    `config` is the TOML of a .mastodon_mock.toml (e.g. its opt-in rate limiting)."""
    port = port or free_port()
    exe = Path(sys.executable).parent / "mastodon_mock"
    program = str(exe) if exe.exists() else shutil.which("mastodon_mock")
    if program is None:
        raise RuntimeError(
            "mastodon_mock is not installed: pip install -r tests/peers/requirements-mastodon.txt"
        )
    argv = [program, "serve", "--in-memory", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning"]
    if config:
        (workdir / "mastodon-mock.toml").write_text(config, encoding="utf-8")
        argv += ["--config", str(workdir / "mastodon-mock.toml")]
    log = workdir / "mastodon-mock.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log, name="mastodon_mock")
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            server.stop()
            raise RuntimeError(f"mastodon_mock exited with {proc.returncode}:\n{tail}")
        if mock_answers(server.url, timeout=1.0):
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"mastodon_mock at {server.url} not ready within {START_TIMEOUT:g}s")


@contextlib.contextmanager
def running_mock() -> Iterator[str]:
    """The base URL of a running mock: $PLURSPOOL_TEST_MASTODON_URL, else started here."""
    given = os.environ.get(ENV_VAR, "").strip()
    if given:
        yield given.rstrip("/")
        return
    with (
        tempfile.TemporaryDirectory(prefix="plurspool-mastodon-") as tmp,
        start_mock(Path(tmp)) as server,
    ):
        yield server.url


@dataclass(frozen=True)
class User:
    """A fresh account on the mock and its access token."""

    id: str
    username: str
    token: str


class Mock:
    """Helpers over a running mock: fresh accounts, their statuses, fault rules."""

    def __init__(self, url: str) -> None:
        self.url = url

    def new_user(self) -> User:
        """A fresh local account, so that each test counts only its own statuses."""
        code, data = request(self.url, "POST", "/api/v1/_mock/dev_user", {})
        assert code == 200, data
        return User(str(data["id"]), str(data["username"]), str(data["access_token"]))

    def statuses(self, user: User) -> list[dict[str, Any]]:
        """The user's statuses, newest first."""
        code, data = request(
            self.url, "GET", f"/api/v1/accounts/{user.id}/statuses?limit=40", token=user.token
        )
        assert code == 200, data
        assert isinstance(data, list)
        return data

    def status(self, user: User, status_id: str) -> dict[str, Any]:
        code, data = request(self.url, "GET", f"/api/v1/statuses/{status_id}", token=user.token)
        assert code == 200, data
        assert isinstance(data, dict)
        return data

    def source(self, user: User, status_id: str) -> dict[str, Any]:
        code, data = request(
            self.url, "GET", f"/api/v1/statuses/{status_id}/source", token=user.token
        )
        assert code == 200, data
        assert isinstance(data, dict)
        return data

    def add_fault(self, rule: dict[str, Any]) -> str:
        """Register a fault rule (see mastodon_mock/faults.py); its id."""
        code, data = request(self.url, "POST", "/api/v1/_mock/faults", rule)
        assert code == 200, data
        return str(data["id"])

    def clear_faults(self) -> None:
        code, data = request(self.url, "DELETE", "/api/v1/_mock/faults")
        assert code == 200, data


@pytest.fixture(scope="session")
def mastodon_mock() -> Iterator[Mock]:
    """A running mastodon-mock for the whole session."""
    with running_mock() as url:
        yield Mock(url)


def main() -> None:
    """Start a mock, print ENV_VAR=..., run until SIGTERM or SIGINT."""
    stop = stop_on_signals()
    with running_mock() as url:
        print(f"{ENV_VAR}={url}", flush=True)
        wait_for(stop)


if __name__ == "__main__":
    main()
