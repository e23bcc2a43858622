"""Claims on a post: exclusive, leaving no lock file, never shared, busy not a hang."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from plurspool.app import App
from plurspool.errors import Busy
from tests.daemon_helpers import Sandbox, World, in_process, iso, post_text
from tests.peers.mastodon_mock import mastodon_mock as mastodon_mock  # the fixture


def make_world(base: Path, *, deadline: float = 3600.0) -> World:
    box = Sandbox(base)
    box.daemon_keys["retry_delay"] = "1m"
    return in_process(box, deadline=deadline)


# -- two senders -------------------------------------------------------------------------------


def test_a_claim_leaves_no_lock_file_and_excludes_the_others(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    claims = w.app.state_dir / "claims"
    first = w.app.locks.claim("p")
    with pytest.raises(Busy):
        App(w.app.config).locks.claim("p")
    first.release()
    assert list(claims.iterdir()) == []  # not a file per post ever sent
    with w.app.locks.claim("p"), pytest.raises(Busy):
        w.app.locks.claim("p")
    assert list(claims.iterdir()) == []


def test_a_claim_taken_as_its_holder_lets_go_is_not_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B opens the lock file, then A lets go (removing it) before B locks it: B's lock is on a
    file no one else will open, so B must take the one at the name, or B and the next
    claimer C would both hold the post."""
    w = make_world(tmp_path)
    holder = w.app.locks.claim("p")
    real_flock = fcntl.flock
    calls: list[int] = []

    def flock(fd: int, op: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            holder.release()  # A lets go between B's open and B's lock
        real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    b = App(w.app.config).locks.claim("p")
    monkeypatch.setattr(fcntl, "flock", real_flock)
    assert len(calls) == 2  # B found its first file gone, and took a new one
    path = w.app.state_dir / "claims" / "p.lock"
    assert b.fd is not None and os.fstat(b.fd).st_ino == path.stat().st_ino
    with pytest.raises(Busy):
        w.app.locks.claim("p")  # C
    b.release()


def test_a_claim_whose_file_keeps_vanishing_is_busy_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = make_world(tmp_path)
    path = w.app.state_dir / "claims" / "p.lock"
    real_flock = fcntl.flock

    def flock(fd: int, op: int) -> None:
        path.unlink()  # someone lets go every time, just before we lock
        real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    with pytest.raises(Busy):
        w.app.locks.claim("p")


def test_a_post_another_sender_is_finishing_is_left_to_it(tmp_path: Path) -> None:
    """Found by the campaign's runs of test_daemon: a post whose accounts were all sent (by a
    foreground `post`) was finished by the daemon without its claim, while the foreground was
    finishing it too; one of them crashed on the vanished file or reported it unsent."""
    w = make_world(tmp_path)
    w.box.exec_account("x")
    w.reload()
    w.box.deliver("scheduled", "p", post_text("raced", schedule=iso(w.now)))
    w.app.ledger.delivery("p", "x")
    w.app.ledger.record("p", "x", "sent", remote_id="id-1")  # the foreground sent it...
    other = App(w.app.config)
    with other.locks.claim("p"):  # ...and holds it while it writes the results and moves it
        result = w.run()
        assert result.sent == [] and w.box.is_in("p", "scheduled")
        assert result.wake is not None and result.wake <= w.now + 1  # looks again soon
    assert w.run().sent == ["p"]
    assert w.box.is_in("p", "sent") and w.box.records("x") == []
