"""Faults the daemon must ride out (plurspool(1), DAEMON): the network failing mid-request, 5xx,
429 with Retry-After, slow peers at shutdown, a full disk under the spool and under the ledger,
the inotify queue overflowing, and the clock jumping.

Every test ends by counting on the peer: a post is never lost, never sent twice, never early.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plurspool.app import App
from plurspool.config import load
from plurspool.errors import SpoolError
from plurspool.log import Log
from plurspool.sender import Sender
from tests.daemon_helpers import Sandbox, World, in_process, iso, post_text, wait_for
from tests.helpers import read_post, run_cli
from tests.peers.mastodon_mock import Mock, User
from tests.peers.mastodon_mock import mastodon_mock as mastodon_mock  # the fixture

# -- a proxy in front of mastodon-mock that breaks connections on demand -----------------------


class Proxy:
    """A TCP proxy on 127.0.0.1. Modes for the next status POST: "pass"; "reset" (the request
    reaches the peer, then the client's connection is reset before the answer); "hang" (the
    request reaches the peer, the answer never comes)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.mode = "pass"
        self.hits: dict[str, int] = {"reset": 0, "hang": 0}
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.closing = False
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        up = socket.create_connection(self.upstream)
        self.conns += [client, up]
        armed = threading.Event()

        def down() -> None:  # peer -> client
            with contextlib.suppress(OSError):
                while data := up.recv(65536):
                    if armed.is_set():
                        mode = self.mode
                        self.hits[mode] += 1
                        if mode == "reset":
                            client.setsockopt(
                                socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0"
                            )
                            client.close()
                            return
                        return  # hang: the answer never comes
                    client.sendall(data)

        threading.Thread(target=down, daemon=True).start()
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if data.startswith(b"POST /api/v1/statuses") and self.mode != "pass":
                    armed.set()
                up.sendall(data)

    def close(self) -> None:
        self.closing = True
        self.sock.close()
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.close()


def make_world(base: Path, *, deadline: float = 3600.0) -> World:
    box = Sandbox(base)
    box.daemon_keys["retry_delay"] = "1m"
    return in_process(box, deadline=deadline)


def mastodon_account(box: Sandbox, url: str, user: User, name: str = "ma") -> None:
    box.accounts[name] = (
        f'platform = "mastodon"\ninstance = "{url}"\ntoken_cmd = "echo {user.token}"\n'
    )
    box.default_platforms = [name]


@pytest.fixture
def user(mastodon_mock: Mock) -> Iterator[User]:
    yield mastodon_mock.new_user()
    mastodon_mock.clear_faults()


# -- the network -----------------------------------------------------------------------------


@pytest.mark.peers
@pytest.mark.realtime
def test_refused_then_reset_then_timeout_mid_request_and_the_post_goes_out_once(
    mastodon_mock: Mock, user: User, tmp_path: Path
) -> None:
    from tests.peers.proc import free_port

    w = make_world(tmp_path, deadline=2.0)  # requests time out after 2 s
    mastodon_account(w.box, f"http://127.0.0.1:{free_port()}", user)  # nothing listens
    w.reload()
    w.box.deliver("scheduled", "p", post_text("through a bad network", schedule=iso(w.now)))
    first = w.run()
    assert first.sent == [] and first.failed == [] and w.box.is_in("p", "scheduled")
    row = w.row("p", "ma")
    assert row.status == "pending" and "network error" in (row.error or "")
    assert row.next_at is not None and row.next_at >= w.now + 30  # backing off, not hammering
    proxy = Proxy(mastodon_mock.url)
    try:
        mastodon_account(w.box, proxy.url, user)
        w.reload()
        # The status is made, then the connection is reset before the answer: in doubt.
        proxy.mode = "reset"
        w.tick(120)
        assert w.run().sent == []
        assert proxy.hits["reset"] == 1
        assert len(mastodon_mock.statuses(user)) == 1  # it did arrive
        # Again, and this time the answer never comes: a timeout.
        proxy.mode = "hang"
        w.tick(600)
        t = time.monotonic()
        assert w.run().sent == []
        assert time.monotonic() - t < 15
        assert proxy.hits["hang"] == 1 and w.box.is_in("p", "scheduled")
        proxy.mode = "pass"
        w.tick(1800)
        assert w.run().sent == ["p"]
    finally:
        proxy.close()
    statuses = mastodon_mock.statuses(user)
    assert len(statuses) == 1, statuses  # three attempts reached the peer; one status
    assert (
        w.box.is_in("p", "sent") and w.box.post("sent", "p").results["ma"].id == statuses[0]["id"]
    )


@pytest.mark.peers
def test_5xx_backs_off_and_429_waits_for_retry_after(
    mastodon_mock: Mock, user: User, tmp_path: Path
) -> None:
    w = make_world(tmp_path)
    mastodon_account(w.box, mastodon_mock.url, user)
    w.reload()
    w.box.deliver("scheduled", "p", post_text("paced", schedule=iso(w.now)))
    statuses = {"match": {"methods": ["POST"], "path": "/api/v1/statuses"}, "count": 1}
    mastodon_mock.add_fault({**statuses, "effect": {"type": "status", "status": 503}})
    assert w.run().sent == []
    row = w.row("p", "ma")
    assert "HTTP 503" in (row.error or "") and row.next_at is not None
    first_wait = row.next_at - w.now
    assert 30 <= first_wait <= 90  # retry_delay 1m, with jitter
    mastodon_mock.add_fault({**statuses, "effect": {"type": "ratelimit"}})  # Retry-After: 300
    w.tick(first_wait + 1)
    assert w.run().sent == []
    row = w.row("p", "ma")
    assert "HTTP 429" in (row.error or "") and row.next_at is not None
    assert row.next_at >= w.now + 250  # what the peer asked, not our shorter backoff
    w.tick(row.next_at - w.now - 2)
    assert w.run().sent == [] and mastodon_mock.statuses(user) == []  # not early
    w.tick(3)
    assert w.run().sent == ["p"]
    assert len(mastodon_mock.statuses(user)) == 1


@pytest.mark.peers
@pytest.mark.realtime
def test_a_hanging_peer_does_not_hold_up_the_shutdown(
    mastodon_mock: Mock, user: User, tmp_path: Path
) -> None:
    box = Sandbox(tmp_path)
    proxy = Proxy(mastodon_mock.url)
    try:
        mastodon_account(box, proxy.url, user)
        box.daemon_keys["shutdown_timeout"] = "3s"
        box.write_config()
        # Limits fetched once through the healthy proxy, so the send is the hanging request.
        assert box.cli("accounts", "test", "ma").code == 0
        proxy.mode = "hang"
        d = box.start()
        d.wait_event("started", timeout=30)
        box.deliver("new", "p", post_text("into the void"))
        d.wait_event("sending", "id=p", timeout=20)
        wait_for(lambda: proxy.hits["hang"], 20, "the request to reach the peer")
        t = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.wait(40) == 0, d.text()
        took = time.monotonic() - t
        print(f"\nshutdown with a hanging peer: {took:.2f}s (shutdown_timeout 3s)")
        assert took < 3 + 1.5, d.text()
        assert box.is_in("p", "scheduled")
        # Back up: the daemon looks before resending, and the peer keeps one status.
        proxy.mode = "pass"
        d = box.start()
        d.wait_event("done", "id=p", timeout=30)
        assert d.stop() == 0
    finally:
        proxy.close()
        box.cleanup()
    assert len(mastodon_mock.statuses(user)) == 1
    assert box.is_in("p", "sent")


# -- a full disk -------------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only; skipped elsewhere)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(fs: Path) -> Path:
    """Fill a filesystem to the last byte; the filler file, to delete to free it again."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


@pytest.mark.slow
@pytest.mark.realtime
def test_a_full_spool_refuses_new_posts_and_keeps_queued_ones(
    small_fs: Path, tmp_path: Path
) -> None:
    box = Sandbox(tmp_path / "box")
    box.exec_account("x")
    box.write_config()
    spool = small_fs / "spool"
    shutil.copytree(box.spool, spool)
    env = {**box.env, "PLURSPOOL_SPOOL": str(spool)}
    # Queued before the disk fills; then the disk is full.
    (spool / "new" / "early.md").write_text(post_text("queued before", schedule="1s"))
    filler = fill(small_fs)
    refused = run_cli(["post", "-s", "1h", "no room for me"], env)
    assert refused.code == 1, refused
    assert "disk is full" in refused.err and "nothing was lost" in refused.err
    assert list((spool / "tmp").iterdir()) == []  # no half-written file left behind
    assert list((spool / "scheduled").iterdir()) == []
    # The sender cannot write the intake back: the post stays in new/, whole.
    once = run_cli(["send", "--once"], env)
    assert once.code in (0, 1) and "No space left" in once.err, once
    assert (spool / "new" / "early.md").read_text() == post_text("queued before", schedule="1s")
    assert box.records("x") == []
    filler.unlink()

    def pass_sends() -> bool:
        again = run_cli(["send", "--once"], env)
        assert again.code == 0, again
        return (spool / "sent" / "early.md").exists()

    wait_for(pass_sends, 20, "the post to go out", every=0.3)
    assert len(box.records("x")) == 1


def test_a_full_disk_under_the_ledger_sends_nothing_unrecorded(
    small_fs: Path, tmp_path: Path
) -> None:
    w = make_world(tmp_path)
    w.box.exec_account("x")
    w.box.write_config()
    w.box.env["XDG_STATE_HOME"] = str(small_fs / "state")
    w.app = App(load(w.box.config_path, env=w.box.env), clock=w.app.clock)
    w.sender = Sender(w.app, Log(stream=w.log))
    w.app.ledger  # created while there is room  # noqa: B018
    w.box.deliver("scheduled", "p", post_text("ledger full", schedule=iso(w.now)))
    filler = fill(small_fs)
    with pytest.raises(SpoolError) as raised:
        w.run()
    assert "ledger" in raised.value.message
    assert w.box.records("x") == []  # never sent without being recorded first
    assert w.box.is_in("p", "scheduled")
    filler.unlink()
    assert w.run().sent == ["p"]
    assert len(w.box.records("x")) == 1 and w.box.is_in("p", "sent")


def test_a_disk_that_fills_after_the_send_keeps_the_post_and_sends_it_once(
    small_fs: Path, tmp_path: Path
) -> None:
    """ENOSPC when the results are written: the post stays queued, the ledger knows it was sent,
    and once there is room it is moved, not sent again."""
    w = make_world(tmp_path)
    w.box.exec_account("x")
    w.box.write_config()
    spool = small_fs / "spool"
    shutil.copytree(w.box.spool, spool)
    w.box.env["PLURSPOOL_SPOOL"] = str(spool)
    w.app = App(load(w.box.config_path, env=w.box.env), clock=w.app.clock)
    w.sender = Sender(w.app, Log(stream=w.log))
    (spool / "scheduled" / "p.md").write_text(post_text("fills up", schedule=iso(w.now)))
    filler = small_fs / "filler"
    real_send = w.app.ledger.record

    def record_then_fill(*args: Any, **kwargs: Any) -> None:
        real_send(*args, **kwargs)
        fill(small_fs)

    w.app.ledger.record = record_then_fill  # type: ignore[method-assign]
    result = w.run()
    assert result.sent == [] and (spool / "scheduled" / "p.md").exists()
    assert "No space left" in w.log.getvalue()
    assert w.row("p", "x").status == "sent"
    assert list((spool / "tmp").iterdir()) == []
    del w.app.ledger.record
    filler.unlink()
    assert w.run().sent == ["p"]
    assert len(w.box.records("x")) == 1
    assert read_post(spool / "sent" / "p.md").results["x"].id == "id-1"


# -- inotify -----------------------------------------------------------------------------------


@pytest.mark.realtime
def test_an_inotify_queue_overflow_is_caught_by_the_rescan(tmp_path: Path) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 100_000:
        pytest.skip(f"max_queued_events is {limit}: too many events to overflow quickly")
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.daemon_keys["rescan_interval"] = "3s"
    box.write_config()
    d = box.start()
    try:
        d.wait_event("started", timeout=30)
        assert "watch=inotify" in d.text()
        d.signal(signal.SIGSTOP)
        # More events than the kernel queues for a stopped reader: the queue overflows, and
        # the arrival of the post below is lost with everything after it.
        junk = box.spool / "new" / ".junk"
        for _ in range(limit // 2 + 100):
            fd = os.open(junk, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)  # IN_OPEN and IN_CLOSE_WRITE
        box.deliver("new", "late", post_text("after the overflow"))
        t = time.monotonic()
        d.signal(signal.SIGCONT)
        d.wait_event("queued", "id=late", timeout=20)
        took = time.monotonic() - t
        print(f"\ntaken in {took:.2f}s after an overflow (rescan_interval 3s)")
        assert took < 3 + 2
        d.wait_event("done", "id=late", timeout=20)
        assert d.stop() == 0
    finally:
        box.cleanup()
    assert len(box.records("x")) == 1


# -- the clock ---------------------------------------------------------------------------------


def test_the_clock_jumping_back_and_forth_sends_nothing_twice_or_early(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.box.exec_account("x")
    w.box.rate_limits["x"] = "1/hour"
    w.reload()
    t0 = w.now
    w.box.deliver("scheduled", "a", post_text("at t0+60", schedule=iso(t0 + 60)))
    w.box.deliver("scheduled", "b", post_text("at t0+120", schedule=iso(t0 + 120)))
    assert w.run().sent == []
    w.tick(-3600)  # back an hour: nothing is due
    assert w.run().sent == [] and w.box.records("x") == []
    w.tick(3600 + 59)  # a second before a's time
    assert w.run().sent == []
    w.tick(1)
    assert w.run().sent == ["a"]
    w.tick(-7200)  # back two hours: a is not sent again, b is not due
    assert w.run().sent == [] and len(w.box.records("x")) == 1
    w.tick(7200 + 600)  # b is due, but the hour's one send went 10 minutes ago
    result = w.run()
    assert result.sent == [] and "rate limit" in result.deferred["b"]
    w.tick(-1800)  # back again: still waiting, never early
    assert w.run().sent == []
    w.tick(1800 + 3000 + 1)  # an hour after a went out
    assert w.run().sent == ["b"]
    w.tick(86400 * 2)  # far forward: nothing left to send, nothing sent again
    assert w.run().sent == []
    times = [r["stdin"]["id"] for r in w.box.records("x")]
    assert times == ["a", "b"]


def test_a_backoff_survives_the_clock_jumping_back(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.box.exec_account("x", fail_first=1)  # a temporary failure, then success
    w.reload()
    w.box.deliver("scheduled", "p", post_text("retried", schedule=iso(w.now)))
    assert w.run().sent == []
    next_at = w.row("p", "x").next_at
    assert next_at is not None
    w.tick(-600)
    assert w.run().sent == [] and len(w.box.records("x")) == 1  # no early retry
    w.tick(next_at - w.now - 2)
    assert w.run().sent == [] and len(w.box.records("x")) == 1
    w.tick(3)
    assert w.run().sent == ["p"]
    assert len(w.box.records("x")) == 2
