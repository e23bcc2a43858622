"""A shutdown never waits for a hanging request longer than its deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from plurspool.config import Account
from plurspool.platforms.base import Abandoned, wait_within
from plurspool.platforms.bluesky_xrpc import Client, XrpcError
from tests.helpers import silent_tcp_server


def test_wait_within_returns_results_and_raises_errors() -> None:
    assert wait_within(lambda: 10.0, lambda: 42, "answer") == 42
    with pytest.raises(ZeroDivisionError):
        wait_within(lambda: 10.0, lambda: 1 // 0, "error")


@pytest.mark.realtime
def test_wait_within_abandons_a_hanging_call_once_the_deadline_passes() -> None:
    release = threading.Event()
    stop_at = time.monotonic() + 0.3
    started = time.monotonic()
    with pytest.raises(Abandoned):
        wait_within(lambda: stop_at - time.monotonic(), lambda: release.wait(30), "hang")
    assert time.monotonic() - started < 1.5
    release.set()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    with silent_tcp_server() as port:
        yield port


@pytest.mark.realtime
def test_bluesky_stops_waiting_for_a_silent_pds_at_shutdown(
    silent_server: int, tmp_path: Path
) -> None:
    account = Account(
        "b",
        "bluesky",
        MappingProxyType({"handle": "a.test", "service": f"http://127.0.0.1:{silent_server}"}),
    )
    stop_at = time.monotonic() + 0.5  # a SIGTERM half a second into the request
    client = Client(account, tmp_path, deadline=lambda: stop_at - time.monotonic())
    started = time.monotonic()
    with pytest.raises(XrpcError) as err:
        client.call("com.atproto.server.describeServer")
    assert time.monotonic() - started < 2.0  # not the 30 s request timeout
    assert err.value.status is None and "shutting down" in str(err.value)
    client.close()
