"""The reference Bluesky PDS (with an in-memory PLC) on 127.0.0.1 for the tests, as a subprocess.

`running_pds()` starts `tests/peers/pds/pds.mjs` under the Node 22 that `install_pds.sh` puts in
tests/peers/.cache/node22 and yields its base URL; the `pds` session fixture wraps it in a `Pds`
with helpers for fresh accounts (with app passwords) and for reading records back. With
$PLURSPOOL_TEST_PDS_URL set, that PDS is used instead. `python -m tests.peers.bluesky_pds` starts
one, prints that variable's line and runs until SIGTERM.

When Node 22 or the PDS is not installed, the fixture skips, unless $CI is set: then it fails.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .proc import PeerProcess, stop_on_signals, wait_for

ENV_VAR = "PLURSPOOL_TEST_PDS_URL"
ADMIN_ENV_VAR = "PLURSPOOL_TEST_PDS_ADMIN_PASSWORD"
ADMIN_PASSWORD = "plurspool-test-admin"
START_TIMEOUT = 60.0  # generous: two cores shared with other test runs
HERE = Path(__file__).resolve().parent
PDS_DIR = HERE / "pds"
NODE = Path(os.environ.get("PLURSPOOL_PEERS_CACHE", HERE / ".cache")) / "node22" / "bin" / "node"
INSTALL = "tests/peers/install_pds.sh"


def missing() -> str | None:
    """Why the PDS cannot be started here, or None when it can."""
    if not NODE.exists():
        return f"Node 22 is not installed at {NODE}: run {INSTALL}"
    if not (PDS_DIR / "node_modules" / "@atproto" / "pds").is_dir():
        return f"the PDS is not installed in {PDS_DIR}/node_modules: run {INSTALL}"
    return None


def request(
    base: str,
    nsid: str,
    *,
    params: dict[str, str] | None = None,
    body: Any = None,
    data: bytes | None = None,
    mime: str = "application/json",
    token: str | None = None,
    basic: tuple[str, str] | None = None,
    timeout: float = 15.0,
) -> tuple[int, Any, dict[str, str]]:
    """One XRPC call: (status, decoded JSON body or None, headers with lower-case names)."""
    url = f"{base}/xrpc/{nsid}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    payload = data if data is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=payload, method="GET" if payload is None else "POST")
    if payload is not None:
        req.add_header("Content-Type", mime)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if basic:
        raw = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {raw}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            code, out, headers = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        code, out, headers = exc.code, exc.read(), exc.headers
    decoded = json.loads(out) if out.strip() else None
    return code, decoded, {k.lower(): v for k, v in headers.items()}


def healthy(base: str, timeout: float = 2.0) -> bool:
    """Whether the PDS at `base` answers GET /xrpc/_health."""
    try:
        code, _, _ = request(base, "_health", timeout=timeout)
    except (OSError, ValueError):
        return False
    return code == 200


Server = PeerProcess  # the PDS subprocess (pds.mjs exits within ~3 s of SIGTERM)


def start_pds(workdir: Path, *, rate_limits: bool = True) -> Server:
    """pds.mjs on free 127.0.0.1 ports, ready (its ready line seen and /xrpc/_health 200)."""
    why = missing()
    if why is not None:
        raise RuntimeError(why)
    argv = [str(NODE), str(PDS_DIR / "pds.mjs"), "--admin-password", ADMIN_PASSWORD]
    if rate_limits:
        argv.append("--rate-limits")
    log = workdir / "pds.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LOG_ENABLED": "false",
        "TMPDIR": str(workdir),
        "HOME": str(workdir),
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=PDS_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    end = time.monotonic() + START_TIMEOUT
    url = None
    while time.monotonic() < end:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the PDS exited with {proc.returncode}:\n{tail}")
        if url is None:
            m = re.search(
                r"^ready (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"), re.MULTILINE
            )
            url = m.group(1) if m else None
        if url is not None and healthy(url, timeout=1.0):
            return Server(url, proc, log, name="pds", stop_wait=10)
        time.sleep(0.05)
    Server(url or "", proc, log, name="pds", stop_wait=10).stop()
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the PDS was not ready within {START_TIMEOUT:g}s:\n{tail}")


@contextlib.contextmanager
def running_pds(*, rate_limits: bool = True) -> Iterator[str]:
    """The base URL of a running PDS: $PLURSPOOL_TEST_PDS_URL, else started here."""
    given = os.environ.get(ENV_VAR, "").strip()
    if given:
        yield given.rstrip("/")
        return
    with (
        tempfile.TemporaryDirectory(prefix="plurspool-pds-") as tmp,
        start_pds(Path(tmp), rate_limits=rate_limits) as server,
    ):
        yield server.url


@dataclass(frozen=True)
class TestAccount:
    """A fresh account: its handle, DID, main password, an app password and a main session."""

    __test__ = False  # not a pytest test class

    handle: str
    did: str
    password: str
    app_password: str
    access_jwt: str


class Pds:
    """Helpers over a running PDS: fresh accounts, reading records back."""

    def __init__(self, url: str, admin_password: str) -> None:
        self.url = url
        self.admin_password = admin_password

    def call(self, nsid: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        return request(self.url, nsid, **kwargs)

    def new_account(self) -> TestAccount:
        """A fresh account with an app password, so each test counts only its own records."""
        name = "t" + secrets.token_hex(5)
        handle = f"{name}.test"
        password = secrets.token_urlsafe(12)
        body: dict[str, Any] = {
            "handle": handle,
            "email": f"{name}@example.com",
            "password": password,
        }
        code, out, _ = self.call("com.atproto.server.createAccount", body=body)
        if code == 400 and isinstance(out, dict) and "invite" in str(out.get("message", "")):
            code, inv, _ = self.call(
                "com.atproto.server.createInviteCode",
                body={"useCount": 1},
                basic=("admin", self.admin_password),
            )
            assert code == 200, inv
            body["inviteCode"] = inv["code"]
            code, out, _ = self.call("com.atproto.server.createAccount", body=body)
        assert code == 200, out
        code, app, _ = self.call(
            "com.atproto.server.createAppPassword",
            body={"name": "plurspool-test"},
            token=out["accessJwt"],
        )
        assert code == 200, app
        return TestAccount(handle, out["did"], password, app["password"], out["accessJwt"])

    def records(self, did: str) -> list[dict[str, Any]]:
        """Every app.bsky.feed.post record in the repo `did`."""
        code, out, _ = self.call(
            "com.atproto.repo.listRecords",
            params={"repo": did, "collection": "app.bsky.feed.post", "limit": "100"},
        )
        assert code == 200, out
        records: list[dict[str, Any]] = out["records"]
        return records

    def record(self, uri: str) -> dict[str, Any]:
        """The record at an at:// URI (uri, cid, value)."""
        repo, collection, rkey = uri.removeprefix("at://").split("/")
        code, out, _ = self.call(
            "com.atproto.repo.getRecord",
            params={"repo": repo, "collection": collection, "rkey": rkey},
        )
        assert code == 200, out
        assert isinstance(out, dict)
        return out

    def blob(self, did: str, cid: str) -> bytes:
        """A blob's bytes."""
        query = urllib.parse.urlencode({"did": did, "cid": cid})
        with urllib.request.urlopen(
            f"{self.url}/xrpc/com.atproto.sync.getBlob?{query}", timeout=15
        ) as resp:
            data: bytes = resp.read()
            return data


@pytest.fixture(scope="session")
def pds() -> Iterator[Pds]:
    """A running PDS for the whole session; skipped when not installed, unless $CI is set."""
    why = missing()
    if why is not None and not os.environ.get(ENV_VAR):
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the Bluesky PDS cannot start: {why}", pytrace=False)
        pytest.skip(f"Bluesky PDS not installed: {why}")
    with running_pds() as url:
        yield Pds(url, os.environ.get(ADMIN_ENV_VAR, ADMIN_PASSWORD))


def main() -> None:
    """Start a PDS, print ENV_VAR=..., run until SIGTERM or SIGINT."""
    stop = stop_on_signals()
    with running_pds() as url:
        print(f"{ENV_VAR}={url}", flush=True)
        wait_for(stop)


if __name__ == "__main__":
    main()
