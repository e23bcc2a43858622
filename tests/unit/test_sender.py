"""One sender pass in process with a fake clock: rate limits, server holds, backoff, lateness."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_helpers import FAKE_EXEC, Sandbox, World, in_process, iso, post_text

HOUR = 3600.0
T0 = 1_900_000_000.0  # a fixed "now" in epoch seconds


# -- one pass of the sender, with a fake clock -----------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Callable[..., World]:
    def make(**control: Any) -> World:
        box = Sandbox(tmp_path)
        box.exec_account("x", **control)
        box.daemon_keys["retry_delay"] = "10m"
        return in_process(box)

    return make


def test_rate_limited_posts_wait_for_the_window_and_say_why(world: Callable[..., World]) -> None:
    w = world()
    w.box.rate_limits["x"] = "2/hour"
    w.reload()
    for n in range(3):
        w.box.deliver("scheduled", f"p{n}", post_text(f"{n}", schedule=iso(w.now - 60 + n)))
    result = w.run()
    assert sorted(result.sent) == ["p0", "p1"]
    assert result.deferred == {"p2": f"rate limit x 2/hour until {iso(w.now + HOUR)}"}
    assert result.wake == w.now + HOUR
    d = w.app.ledger.deliveries("p2")["x"]
    assert d.deferred and d.next_at == w.now + HOUR
    assert d.error == f"deferred: rate limit x 2/hour until {iso(w.now + HOUR)}"
    view = w.app.views.view(w.app.items.find("p2"))
    assert view["error"] is not None and "rate limit x 2/hour" in view["error"]
    assert view["retry_at"] == iso(w.now + HOUR)
    # A second pass logs nothing new about it.
    w.tick(60)
    before = w.log.getvalue().count(" deferred ")
    assert w.run().sent == []
    assert w.log.getvalue().count(" deferred ") == before == 1
    w.tick(HOUR)
    assert w.run().sent == ["p2"]
    assert len(w.box.records("x")) == 3


def test_a_deferral_is_no_backoff_a_reload_lets_it_go(world: Callable[..., World]) -> None:
    w = world()
    w.box.rate_limits["x"] = "1/day"
    w.reload()
    for n in range(2):
        w.box.deliver("scheduled", f"p{n}", post_text(f"{n}", schedule=iso(w.now - 60 + n)))
    assert w.run().sent == ["p0"]
    w.box.rate_limits["x"] = "5/day"
    w.reload()
    assert w.run().sent == ["p1"]


def test_a_limit_added_later_counts_the_sends_before_it(world: Callable[..., World]) -> None:
    w = world()
    w.box.deliver("scheduled", "p0", post_text("0", schedule=iso(w.now - 60)))
    assert w.run().sent == ["p0"]
    w.box.rate_limits["exec"] = "1/hour"  # by platform, added by a reload
    w.reload()
    w.box.deliver("scheduled", "p1", post_text("1", schedule=iso(w.now - 60)))
    result = w.run()
    assert result.sent == [] and "rate limit exec 1/hour" in result.deferred["p1"]


def test_a_server_hold_defers_the_accounts_next_posts_until_it_ends(
    world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer that says the server's window is used up (Outcome.hold) stops sends to that
    account in the same pass and in later ones, in this sender and the next, until it ends."""
    from plurspool.platforms import exec as exec_platform
    from plurspool.platforms.base import Outcome

    real = exec_platform.PLATFORM.send
    calls: list[str] = []

    def send(job: Any) -> Outcome:
        calls.append(job.post_id)
        out = real(job)
        return dataclasses.replace(out, hold=30.0) if len(calls) == 1 else out

    monkeypatch.setattr(exec_platform.PLATFORM, "send", send)
    w = world()
    for n in range(3):
        w.box.deliver("scheduled", f"p{n}", post_text(f"{n}", schedule=iso(w.now - 60 + n)))
    result = w.run()
    until = w.now + 30
    assert result.sent == ["p0"] and calls == ["p0"]
    assert result.deferred == {p: f"server rate limit until {iso(until)}" for p in ("p1", "p2")}
    assert result.wake == until
    assert w.app.ledger.holds(w.now) == {"x": until}
    view = w.app.views.view(w.app.items.find("p1"))
    assert view["error"] == f"x: deferred: server rate limit until {iso(until)}"
    assert view["retry_at"] == iso(until)
    assert w.log.getvalue().count(" hold ") == 1
    # A new sender (a restart) knows the hold from the ledger.
    again = in_process(w.box)
    again.clock[0] = w.clock[0] + timedelta(seconds=29)
    assert again.run().sent == [] and calls == ["p0"]
    again.tick(1)
    assert sorted(again.run().sent) == ["p1", "p2"]
    assert len(w.box.records("x")) == 3


def test_a_429_that_holds_the_account_is_retried_when_the_hold_ends(
    world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retry-After says 3 s, the window resets in 4.5 s (the hold, margin included): the post's
    retry time is the later one, so `list` does not promise a retry the hold would defer."""
    from plurspool.platforms import exec as exec_platform
    from plurspool.platforms.base import Outcome

    out = Outcome("temporary", error="rate limited (HTTP 429)", retry_after=3.0, hold=4.5)
    monkeypatch.setattr(exec_platform.PLATFORM, "send", lambda job: out)
    w = world()
    w.box.deliver("scheduled", "p", post_text("p", schedule=iso(w.now - 1)))
    result = w.run()
    assert result.wake == w.now + 4.5
    d = w.app.ledger.deliveries("p")["x"]
    assert d.next_at == w.now + 4.5 and w.app.ledger.holds(w.now) == {"x": w.now + 4.5}


def test_temporary_failure_backs_off_on_the_fake_clock(world: Callable[..., World]) -> None:
    w = world(fail_first=1, fail_exit=75, stderr="later")
    w.box.deliver("scheduled", "p", post_text("p", schedule=iso(w.now - 1)))
    result = w.run()
    assert result.sent == [] and "retry in" in result.deferred["p"]
    d = w.app.ledger.deliveries("p")["x"]
    assert d.status == "pending" and d.attempts == 1 and not d.deferred
    assert d.next_at is not None and 480 <= d.next_at - w.now <= 720  # 10 min ± 20 %
    assert result.wake == d.next_at
    w.tick(d.next_at - w.now - 1)
    assert w.run().sent == []
    assert len(w.box.records("x")) == 1
    # The fake clock counts whole microseconds; next_at is a float: step onto it exactly.
    w.tick(d.next_at - w.now + 1e-6)
    assert w.now >= d.next_at
    assert w.run().sent == ["p"]
    recs = w.box.records("x")
    assert len(recs) == 2
    assert (
        recs[0]["env"]["PLURSPOOL_IDEMPOTENCY_KEY"] == recs[1]["env"]["PLURSPOOL_IDEMPOTENCY_KEY"]
    )
    sent = w.box.post("sent", "p")
    assert sent.attempts == 2 and sent.results["x"].id == "id-2"


def test_max_lateness_applies_whenever_a_post_is_first_found_due(
    world: Callable[..., World],
) -> None:
    w = world()
    w.box.daemon_keys["max_lateness"] = "1h"
    w.reload()
    w.box.deliver("scheduled", "old", post_text("old", schedule=iso(w.now - 2 * HOUR)))
    w.box.deliver("scheduled", "ok", post_text("ok", schedule=iso(w.now - HOUR + 60)))
    result = w.run()
    assert result.failed == ["old"] and result.sent == ["ok"]
    reason = (w.box.spool / "failed" / "old.error").read_text()
    assert "max_lateness" in reason and "plurspool retry old" in reason
    # Not only on the first pass: a post arriving late (a sync) on a later one fails alike,
    # with the very words intake uses for the same file in new/.
    w.box.deliver("scheduled", "synced", post_text("s", schedule=iso(w.now - 2 * HOUR)))
    w.box.deliver("new", "innew", post_text("n", schedule=iso(w.now - 2 * HOUR)))
    result = w.run()
    assert sorted(result.failed) == ["innew", "synced"] and result.sent == []
    assert w.box.records("x")[-1]["env"]["PLURSPOOL_ID"] == "ok"  # neither went out
    synced = (w.box.spool / "failed" / "synced.error").read_text()
    innew = (w.box.spool / "failed" / "innew.error").read_text()
    assert synced.replace("synced", "ID") == innew.replace("innew", "ID")
    assert "was 2h00m ago, more than max_lateness (1h00m)" in synced


def test_a_post_waiting_for_a_rate_limit_or_a_retry_is_never_failed_for_lateness(
    world: Callable[..., World],
) -> None:
    w = world(fail_first=1)  # the first send fails for now (exit 75)
    w.box.daemon_keys["max_lateness"] = "1h"
    w.box.daemon_keys["retry_delay"] = "2h"
    w.box.rate_limits["x"] = "1/day"
    w.reload()
    w.box.deliver("scheduled", "backs-off", post_text("b", schedule=iso(w.now - 60)))
    w.box.deliver("scheduled", "limited", post_text("l", schedule=iso(w.now - 30)))
    result = w.run()
    assert "retry in" in result.deferred["backs-off"]
    assert result.deferred["limited"].startswith("rate limit x 1/day")
    w.tick(3 * HOUR)  # both are now overdue by more than max_lateness
    result = w.run()
    assert result.failed == [] and result.sent == ["backs-off"]
    w.box.rate_limits["x"] = "5/day"
    w.reload()
    result = w.run()
    assert result.failed == [] and result.sent == ["limited"]


def test_a_finished_post_left_in_scheduled_is_only_moved(world: Callable[..., World]) -> None:
    """A crash after the results were written but before the move: no second send."""
    w = world()
    w.box.deliver("scheduled", "p", post_text("p", schedule=iso(w.now - 1)))
    ledger = w.app.ledger
    ledger.delivery("p", "x")
    ledger.begin_attempt("p", "x")
    ledger.record("p", "x", "sent", remote_id="r1", at=w.now)
    assert w.run().sent == ["p"]
    assert w.box.records("x") == []
    assert w.box.post("sent", "p").results["x"].id == "r1"


def test_fake_exec_records_what_it_was_given(tmp_path: Path) -> None:
    """The test double itself: one JSON line per run, behaviour from the control file."""
    import subprocess
    import sys

    record, control = tmp_path / "rec.jsonl", tmp_path / "ctl.json"
    control.write_text(json.dumps({"fail_first": 1, "stderr": "wait"}))
    env = {"PLURSPOOL_IDEMPOTENCY_KEY": "k1", "PATH": "/usr/bin:/bin"}
    argv = [sys.executable, str(FAKE_EXEC), str(record), str(control)]
    first = subprocess.run(argv, input='{"parts": ["hi"]}', env=env, capture_output=True, text=True)
    second = subprocess.run(argv, input="{}", env=env, capture_output=True, text=True)
    assert (first.returncode, first.stderr.strip()) == (75, "wait")
    assert (second.returncode, second.stdout.strip()) == (0, "id-2")
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r["stdin"] for r in lines] == [{"parts": ["hi"]}, {}]
    assert lines[0]["env"] == {"PLURSPOOL_IDEMPOTENCY_KEY": "k1"}
