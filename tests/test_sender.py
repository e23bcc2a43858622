"""In-process tests of the planner, the ledger and one sender pass, with a fake clock."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from plurspool.errors import SpoolError
from plurspool.ledger import SCHEMA_VERSION, Ledger
from plurspool.plan import Limit, Pending, backoff, plan
from tests.daemon_helpers import FAKE_EXEC, Sandbox, World, in_process, iso, post_text

HOUR = 3600.0
T0 = 1_900_000_000.0  # a fixed "now" in epoch seconds


def pending(
    post_id: str,
    due: float,
    accounts: Mapping[str, float | None] | None = None,
    keys: Mapping[str, tuple[str, ...]] | None = None,
) -> Pending:
    accounts = accounts if accounts is not None else {"x": None}
    keys = keys if keys is not None else {a: (a,) for a in accounts}
    return Pending(post_id, due, accounts, keys)


# -- plan ------------------------------------------------------------------------------------


def test_plan_sends_oldest_due_first_within_the_rate_limit() -> None:
    due = [pending("c", T0 - 10), pending("a", T0 - 30), pending("b", T0 - 30)]
    decisions, wake = plan(due, {"x": []}, {"x": Limit(2, HOUR)}, T0)
    assert [d.post_id for d in decisions] == ["a", "b", "c"]  # by due time, then ID
    assert [d.send for d in decisions] == [["x"], ["x"], []]
    until, why = decisions[2].wait["x"]
    assert why == "rate limit x 2/hour"
    assert until == T0 + HOUR  # when the first of the two sends leaves the window
    assert wake == until


def test_plan_counts_recent_sends_and_forgets_old_ones() -> None:
    windows = {"x": [T0 - 2 * HOUR, T0 - 1000, T0 - 10]}
    decisions, wake = plan([pending("p", T0)], windows, {"x": Limit(2, HOUR)}, T0)
    assert decisions[0].send == []
    assert decisions[0].wait["x"] == (T0 - 1000 + HOUR, "rate limit x 2/hour")
    decisions, wake = plan([pending("p", T0)], windows, {"x": Limit(3, HOUR)}, T0)
    assert decisions[0].send == ["x"] and wake is None


def test_plan_applies_every_key_and_waits_for_the_strictest() -> None:
    keys = {"x": ("x", "exec")}
    limits = {"x": Limit(10, HOUR), "exec": Limit(1, 86400)}
    windows = {"x": [T0 - 60], "exec": [T0 - 60]}
    decisions, wake = plan([pending("p", T0, keys=keys)], windows, limits, T0)
    assert decisions[0].wait["x"] == (T0 - 60 + 86400, "rate limit exec 1/day")
    assert wake == T0 - 60 + 86400


def test_plan_backoff_holds_only_its_account() -> None:
    p = pending("p", T0 - 5, {"a": T0 + 30, "b": None, "c": T0 - 1})
    decisions, wake = plan([p], {}, {}, T0)
    assert decisions[0].send == ["b", "c"]
    assert decisions[0].wait == {"a": (T0 + 30, "retry backoff")}
    assert wake == T0 + 30


def test_plan_with_nothing_waiting_has_no_wake() -> None:
    decisions, wake = plan([pending("p", T0)], {}, {}, T0)
    assert decisions[0].send == ["x"] and wake is None
    assert plan([], {}, {}, T0) == ([], None)


def test_rate_limit_names_its_window() -> None:
    cases = {
        Limit(2, HOUR): "2/hour",
        Limit(100, 86400): "100/day",
        Limit(5, 2 * HOUR): "5/2 hours",
        Limit(3, 60): "3/minute",
        Limit(3, 90): "3/90s",
    }
    for limit, text in cases.items():
        decisions, _ = plan([pending("p", T0)], {"x": [T0] * limit.count}, {"x": limit}, T0)
        assert decisions[0].wait["x"][1] == f"rate limit x {text}"


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(1, 4),
    window=st.sampled_from([60.0, 600.0, HOUR]),
    dues=st.lists(st.floats(0, 7200), min_size=1, max_size=12),
    steps=st.lists(st.floats(0.001, 900), min_size=1, max_size=40),
)
def test_plan_never_exceeds_a_limit_and_never_sends_early(
    count: int, window: float, dues: list[float], steps: list[float]
) -> None:
    """Passes at arbitrary times: no window ever holds more sends than the limit allows."""
    limits = {"x": Limit(count, window)}
    todo = {f"p{n:02d}": T0 + d for n, d in enumerate(dues)}
    sent: dict[str, float] = {}
    now = T0
    for step in [0.0, *steps]:
        now += step
        due = [pending(p, t) for p, t in todo.items() if p not in sent and t <= now]
        decisions, wake = plan(due, {"x": list(sent.values())}, limits, now)
        for d in decisions:
            if d.send:
                sent[d.post_id] = now
            else:
                assert wake is not None and wake > now
    times = sorted(sent.values())
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + window) <= count
    for post_id, t in sent.items():
        assert t >= todo[post_id]
    # The oldest due posts go first: whatever was due before a sent post went no later.
    for p, t in sent.items():
        for q, q_due in todo.items():
            if (q_due, q) < (todo[p], p):
                assert q in sent and sent[q] <= t


def test_backoff_doubles_is_capped_and_jittered() -> None:
    assert backoff(1, 60, 3600, 0.5) == pytest.approx(60)
    assert backoff(2, 60, 3600, 0.5) == pytest.approx(120)
    assert backoff(3, 60, 3600, 0.5) == pytest.approx(240)
    assert backoff(20, 60, 3600, 0.5) == pytest.approx(3600)
    assert backoff(1, 60, 3600, 0.0) == pytest.approx(48)
    assert backoff(1, 60, 3600, 0.999999) == pytest.approx(72, rel=1e-4)


# -- ledger ----------------------------------------------------------------------------------


def test_ledger_has_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    db.commit()
    db.close()
    with pytest.raises(SpoolError) as info:
        Ledger(path)
    assert "newer plurspool" in info.value.message


def test_ledger_upgrades_a_version_1_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');
        CREATE TABLE deliveries (
            post_id TEXT NOT NULL, account TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
            nonce TEXT NOT NULL, material TEXT NOT NULL DEFAULT '{}',
            in_flight INTEGER NOT NULL DEFAULT 0, remote_id TEXT, url TEXT, error TEXT,
            next_at REAL, updated REAL NOT NULL, PRIMARY KEY (post_id, account));
        CREATE TABLE sends (key TEXT NOT NULL, at REAL NOT NULL);
        INSERT INTO deliveries (post_id, account, status, attempts, nonce, remote_id, updated)
            VALUES ('p', 'x', 'sent', 1, 'abcd', 'r1', 0);
        """
    )
    db.commit()
    db.close()
    ledger = Ledger(path)
    d = ledger.deliveries("p")["x"]
    assert (d.status, d.remote_id, d.nonce, d.deferred) == ("sent", "r1", "abcd", False)
    ledger.defer("q", "x", "deferred: rate limit x 1/hour until …", T0)
    assert ledger.deliveries("q")["x"].deferred
    ledger.hold("x", T0 + 5)  # version 3's table of server holds
    ledger.close()
    upgraded = Ledger(path)
    assert upgraded.deliveries("p")["x"].remote_id == "r1"
    assert upgraded.holds(T0) == {"x": T0 + 5}


def test_prune_forgets_old_sends_and_ended_holds(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.delivery("p", "x")
    ledger.record("p", "x", "sent", rate_keys=("x",), at=T0 - HOUR)
    ledger.delivery("q", "x")
    ledger.record("q", "x", "sent", rate_keys=("x",), at=T0)
    ledger.hold("x", T0 - 100)
    ledger.hold("y", T0 + 10)
    ledger.prune(T0 - 60)
    assert ledger.window("x", 0) == [T0]
    assert ledger.holds(0) == {"y": T0 + 10}
    assert ledger.holds(T0 + 10) == {}  # a hold ends at its time


def test_idempotency_key_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    key = ledger.delivery("p", "x").idempotency_key
    assert key == ledger.delivery("p", "x").idempotency_key
    assert key != ledger.delivery("p", "y").idempotency_key
    assert key != ledger.delivery("q", "x").idempotency_key
    ledger.close()
    assert Ledger(path).delivery("p", "x").idempotency_key == key


def test_reopen_keeps_successes(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    for account in ("a", "b", "c"):
        ledger.delivery("p", account)
        ledger.begin_attempt("p", account)
    ledger.record("p", "a", "sent", remote_id="r-a", rate_keys=("a",), at=T0)
    ledger.record("p", "b", "failed", error="nope", at=T0)
    ledger.record("p", "c", "pending", error="later", next_at=T0 + 60)
    key_b = ledger.delivery("p", "b").idempotency_key
    assert ledger.reopen("p", "2026-12-01T08:00:00Z-a1b2c3")
    ds = ledger.deliveries("p")
    assert (ds["a"].status, ds["a"].remote_id, ds["a"].attempts) == ("sent", "r-a", 1)
    for account in ("b", "c"):
        assert (ds[account].status, ds[account].error, ds[account].next_at) == (
            "pending",
            None,
            None,
        )
        assert ds[account].attempts == 0
    assert ds["b"].idempotency_key == key_b  # a retry dedupes against the earlier attempts
    # The same retry seen again (another pass, another host's copy of the file): nothing.
    ledger.record("p", "b", "failed", error="nope again", at=T0)
    assert not ledger.reopen("p", "2026-12-01T08:00:00Z-a1b2c3")
    assert ledger.deliveries("p")["b"].status == "failed"
    assert ledger.reopen("p", "2026-12-02T08:00:00Z-d4e5f6")  # a new retry: once more
    assert ledger.deliveries("p")["b"].status == "pending"


def test_attempts_in_flight_and_windows(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    before = ledger.begin_attempt("p", "x")  # makes the row: as it was before the attempt
    assert (before.attempts, before.in_flight, before.status) == (0, False, "pending")
    d = ledger.delivery("p", "x")
    assert d.in_flight and d.attempts == 1 and d.nonce == before.nonce
    fresh = ledger.delivery("q", "x")  # a row as the ledger makes it, never attempted
    assert dataclasses.replace(before, post_id="q", nonce=fresh.nonce) == fresh
    again = ledger.begin_attempt("p", "x")  # after a crash: the last attempt is in doubt
    assert again.in_flight and again.attempts == 1 and ledger.delivery("p", "x").attempts == 2
    ledger.record("p", "x", "sent", rate_keys=("x", "exec"), at=T0)
    d = ledger.delivery("p", "x")
    assert not d.in_flight and d.status == "sent"
    assert ledger.window("x", T0 - 1) == [T0]
    assert ledger.window("exec", T0 - 1) == [T0]
    assert ledger.window("x", T0 + 1) == []


def test_synced_writes_are_synced_after_unsynced_ones(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")

    def mode() -> int:
        return int(ledger._db.execute("PRAGMA synchronous").fetchone()[0])

    ledger.begin_attempt("p", "x", synced=False)
    assert mode() == 1  # NORMAL: left so for the next unsynced write
    ledger.record("p", "x", "pending", error="e")
    assert mode() == 1
    ledger.save_material("p", "x", {"k": 1})
    assert mode() == 2  # FULL
    ledger.begin_attempt("p", "x")
    assert mode() == 2


def test_a_deferral_is_cleared_by_the_next_attempt(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.defer("p", "x", "deferred: rate limit x 1/hour until then", T0 + HOUR)
    d = ledger.delivery("p", "x")
    assert d.deferred and d.next_at == T0 + HOUR and d.error is not None
    ledger.begin_attempt("p", "x")
    assert not ledger.delivery("p", "x").deferred
    ledger.record("p", "x", "sent", at=T0)
    d = ledger.delivery("p", "x")
    assert (d.deferred, d.error, d.next_at) == (False, None, None)
    ledger.defer("p", "x", "too late", T0)  # only pending rows can be deferred
    assert ledger.delivery("p", "x").error is None
    ledger.defer("q", "x", "deferred: rate limit", T0 + HOUR)
    ledger.undefer("q")
    d = ledger.delivery("q", "x")
    assert (d.deferred, d.error, d.next_at, d.status) == (False, None, None, "pending")


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
    d = w.core.ledger.deliveries("p2")["x"]
    assert d.deferred and d.next_at == w.now + HOUR
    assert d.error == f"deferred: rate limit x 2/hour until {iso(w.now + HOUR)}"
    view = w.core.views.view(w.core.items.find("p2"))
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
    assert w.core.ledger.holds(w.now) == {"x": until}
    view = w.core.views.view(w.core.items.find("p1"))
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
    d = w.core.ledger.deliveries("p")["x"]
    assert d.next_at == w.now + 4.5 and w.core.ledger.holds(w.now) == {"x": w.now + 4.5}


def test_plan_waits_for_a_server_hold_of_its_account_only() -> None:
    p = pending("p", T0 - 5, {"a": None, "b": None})
    decisions, wake = plan([p], {}, {}, T0, {"a": T0 + 30, "b": T0})
    assert decisions[0].send == ["b"]  # a hold that has ended holds nothing
    assert decisions[0].wait == {"a": (T0 + 30, "server rate limit")}
    assert wake == T0 + 30


def test_temporary_failure_backs_off_on_the_fake_clock(world: Callable[..., World]) -> None:
    w = world(fail_first=1, fail_exit=75, stderr="later")
    w.box.deliver("scheduled", "p", post_text("p", schedule=iso(w.now - 1)))
    result = w.run()
    assert result.sent == [] and "retry in" in result.deferred["p"]
    d = w.core.ledger.deliveries("p")["x"]
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
    front = yaml.safe_load((w.box.spool / "sent" / "p.md").read_text().split("---\n")[1])
    assert front["attempts"] == 2 and front["results"]["x"]["id"] == "id-2"


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
    ledger = w.core.ledger
    ledger.delivery("p", "x")
    ledger.begin_attempt("p", "x")
    ledger.record("p", "x", "sent", remote_id="r1", at=w.now)
    assert w.run().sent == ["p"]
    assert w.box.records("x") == []
    front = yaml.safe_load((w.box.spool / "sent" / "p.md").read_text().split("---\n")[1])
    assert front["results"]["x"]["id"] == "r1"


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
