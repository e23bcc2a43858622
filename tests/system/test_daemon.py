"""The real daemon as a subprocess: real signals, real files, real inotify (plurspool(1), DAEMON).

Each test builds a sandbox (isolated HOME/XDG, a spool, a config with fake exec accounts whose
command records every invocation), runs `plurspool send`, and awaits outcomes with deadlines.
Latencies that plurspool(1) DAEMON promises are asserted; all are printed (run with -s to see).
"""

from __future__ import annotations

import itertools
import json
import math
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path

import pytest

from plurspool.hosts import idempotency_key
from tests.daemon_helpers import (
    DaemonProc,
    Sandbox,
    event_words,
    iso,
    post_text,
    text_of,
    wait_for,
)

pytestmark = pytest.mark.realtime


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path)
    sandbox.daemon_keys["retry_delay"] = "1s"
    sandbox.daemon_keys["shutdown_timeout"] = "20s"
    try:
        yield sandbox
    finally:
        sandbox.cleanup()


def started(d: DaemonProc) -> None:
    d.wait_event("started", timeout=30)


def future(seconds: float) -> float:
    """A whole-second epoch time at least `seconds` from now."""
    return float(math.ceil(time.time() + seconds))


def report(what: str, value: float) -> None:
    print(f"\nLATENCY {what}: {value * 1000:.0f} ms")


# -- on time -------------------------------------------------------------------------------


def test_due_post_is_sent_within_a_second_of_its_time(box: Sandbox) -> None:
    box.exec_account("x")
    box.write_config()
    d = box.start()
    started(d)
    dues = []
    for n in range(3):
        due = future(3 + n)
        box.deliver("scheduled", f"p{n}", post_text(f"hello {n}", schedule=iso(due)))
        dues.append(due)
    wait_for(lambda: len(box.records("x")) == 3, 20, "three sends")
    recs = box.records("x")
    for rec, due in zip(sorted(recs, key=lambda r: r["t"]), dues, strict=True):
        late = rec["t"] - due
        report("due -> exec record", late)
        assert 0.0 <= late < 1.0, (rec, due)
    assert d.stop() == 0


def test_file_renamed_into_new_is_taken_in_within_a_second(box: Sandbox) -> None:
    box.exec_account("x")
    box.write_config()
    d = box.start()
    started(d)
    for n in range(3):
        t0 = time.time()
        box.deliver("new", f"n{n}", post_text("later", schedule="2h"))
        wait_for(partial(box.is_in, f"n{n}", "scheduled"), 10, "intake")
        lag = time.time() - t0
        report("rename into new/ -> scheduled/ (inotify)", lag)
        assert lag < 1.0
    # The relative time was resolved once and written back as an absolute one.
    sched = box.post("scheduled", "n0").schedule
    assert sched is not None and sched.endswith(("Z", "+00:00"))
    assert d.stop() == 0


def test_without_inotify_intake_and_sends_keep_to_the_poll_interval(box: Sandbox) -> None:
    box.exec_account("x")
    box.write_config()
    d = box.start("--poll-interval", "1s", env={"PLURSPOOL_NO_INOTIFY": "1"})
    line = d.wait_event("started", timeout=30)
    assert "poll every 1s" in line
    for n in range(2):
        t0 = time.time()
        box.deliver("new", f"n{n}", post_text("later", schedule="2h"))
        wait_for(partial(box.is_in, f"n{n}", "scheduled"), 10, "intake")
        lag = time.time() - t0
        report("rename into new/ -> scheduled/ (poll 1s)", lag)
        assert lag < 1.0 + 0.5
    # A post written straight into scheduled/ (as `plurspool post -s` does) is seen by the poll.
    due = future(2)
    box.deliver("scheduled", "direct", post_text("direct", schedule=iso(due)))
    rec = wait_for(lambda: box.records("x"), 10, "send")[0]
    report("due -> exec record (poll 1s)", rec["t"] - due)
    assert 0.0 <= rec["t"] - due < 1.0 + 0.5
    assert d.stop() == 0


def test_rescan_catches_what_events_missed(box: Sandbox) -> None:
    """No inotify and a poll interval of an hour: only the 2 s rescan can find new files."""
    box.exec_account("x")
    box.daemon_keys["rescan_interval"] = "2s"
    box.write_config()
    d = box.start("--poll-interval", "1h", env={"PLURSPOOL_NO_INOTIFY": "1"})
    started(d)
    t0 = time.time()
    box.deliver("new", "missed", post_text("x", schedule="2h"))
    wait_for(lambda: (box.spool / "scheduled" / "missed.md").exists(), 10, "rescan intake")
    lag = time.time() - t0
    report("rename into new/ -> scheduled/ (rescan 2s only)", lag)
    assert lag < 2.0 + 0.5
    t0 = time.time()
    box.deliver("scheduled", "direct", post_text("y", schedule=iso(time.time() - 1)))
    rec = wait_for(lambda: box.records("x"), 10, "rescan send")[0]
    report("file in scheduled/ -> exec record (rescan 2s only)", rec["t"] - t0)
    assert rec["t"] - t0 < 2.0 + 0.5
    assert d.stop() == 0


@pytest.mark.slow
def test_a_burst_misses_nothing_that_changed_in_scheduled_meanwhile(box: Sandbox) -> None:
    """60 posts due at once: scheduled/ is not watched while they go (their own file events
    would cost the sender a third of its time), and what changed there meanwhile is found at
    once afterwards, not at the next full rescan (5 minutes away)."""
    box.exec_account("x", sleep=0.05)
    box.write_config()
    d = box.start()
    started(d)
    due = future(3)
    for n in range(60):
        box.deliver("scheduled", f"b{n:02d}", post_text(f"burst {n}", schedule=iso(due)))
    later = box.deliver("scheduled", "later", post_text("later", schedule=iso(due + 3600)))
    d.wait_event("burst", "due=60")
    # While they go: a due post arrives in scheduled/, a queued one is edited to be due now,
    # and one arrives through new/ (still watched).
    box.deliver("scheduled", "arrived", post_text("arrived", schedule=iso(time.time() - 1)))
    later.write_text(post_text("later, now", schedule=iso(time.time() - 1)), encoding="utf-8")
    box.deliver("new", "via-new", post_text("via new", schedule=iso(time.time() - 1)))
    assert len(box.records("x")) < 60, "the burst ended before the changes: slow the command"
    d.until(lambda: len(box.records("x")) == 63, 30, "every post sent")
    bodies = [r["stdin"]["parts"][0] for r in box.records("x")]
    assert {"arrived", "later, now", "via new"} <= set(bodies)
    # scheduled/ is watched again: a post written there is sent on time.
    due = future(2)
    box.deliver("scheduled", "after", post_text("after", schedule=iso(due)))
    rec = d.until(lambda: [r for r in box.records("x") if r["stdin"]["parts"][0] == "after"], 10)
    assert 0.0 <= rec[0]["t"] - due < 1.0
    assert d.stop() == 0


# -- failures and retries --------------------------------------------------------------------


def test_temporary_failure_is_retried_with_backoff_and_the_same_key(box: Sandbox) -> None:
    box.exec_account("x", fail_first=2, fail_exit=75, stderr="try later")
    box.write_config()
    d = box.start()
    started(d)
    box.deliver("scheduled", "p", post_text("retry me", schedule=iso(time.time() - 1)))
    wait_for(lambda: box.where("p") == ["sent"], 20, "sent after retries")
    recs = box.records("x")
    assert len(recs) == 3
    keys = {r["env"]["PLURSPOOL_IDEMPOTENCY_KEY"] for r in recs}
    assert len(keys) == 1 and all(keys)
    assert {r["env"]["PLURSPOOL_ID"] for r in recs} == {"p"}
    assert {r["env"]["PLURSPOOL_ACCOUNT"] for r in recs} == {"x"}
    assert recs[0]["stdin"]["idempotency_key"] in keys
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(recs)]
    print(f"\nbackoff gaps with retry_delay 1s: {[round(g, 2) for g in gaps]}")
    assert 0.8 <= gaps[0] < 1.2 + 0.5  # 1 s, jittered by ±20 %
    assert 1.6 <= gaps[1] < 2.4 + 0.5  # doubled
    assert len(d.events("retry")) == 2
    sent = box.post("sent", "p")
    assert sent.attempts == 3
    assert sent.results["x"].id == "id-3"
    view = box.cli("show", "p", "--json").json()
    assert view["attempts"] == 3 and view["state"] == "sent"
    assert d.stop() == 0


def on_failure_hook(box: Sandbox) -> list[str]:
    marker = box.base / "marker"
    return [
        "sh",
        "-c",
        'printf "%s\\n%s\\n" "$1" "$2" >> "$0"',
        str(marker),
        "{id}",
        "{error}",
    ]


def test_permanent_failure_goes_to_failed_with_reason_and_runs_on_failure(box: Sandbox) -> None:
    box.exec_account("x", exit=1, stderr="the server said no")
    box.daemon_keys["on_failure"] = on_failure_hook(box)
    box.write_config()
    d = box.start()
    started(d)
    box.deliver("scheduled", "bad", post_text("nope", schedule=iso(time.time() - 1)))
    wait_for(lambda: box.where("bad") == ["failed"], 20, "failed")
    assert len(box.records("x")) == 1  # permanent: not retried
    reason = (box.spool / "failed" / "bad.error").read_text(encoding="utf-8")
    assert "the server said no" in reason and "exited 1" in reason
    marker = box.base / "marker"
    text = wait_for(lambda: text_of(marker), 10, "on_failure marker")
    assert text.splitlines()[0] == "bad"
    assert "the server said no" in text
    error = box.post("failed", "bad").results["x"].error
    assert error is not None and "the server said no" in error
    listed = box.cli("list", "--state", "failed", "--json").json()
    assert [v["id"] for v in listed] == ["bad"]
    assert "the server said no" in listed[0]["error"]
    assert d.wait_event("failed", "id=bad")
    assert d.stop() == 0


def test_partial_success_retries_only_the_failed_account_and_retry_resends_only_it(
    box: Sandbox,
) -> None:
    box.exec_account("a")
    box.exec_account("b", fail_first=1, fail_exit=75)
    box.exec_account("c", exit=1, stderr="c is broken")
    box.write_config()
    d = box.start()
    started(d)
    box.deliver("scheduled", "p", post_text("three ways", schedule=iso(time.time() - 1)))
    wait_for(lambda: box.where("p") == ["failed"], 20, "failed (c)")
    assert len(box.records("a")) == 1
    assert len(box.records("b")) == 2  # one temporary failure, then success
    assert len(box.records("c")) == 1
    reason = (box.spool / "failed" / "p.error").read_text(encoding="utf-8")
    assert "c:" in reason and "c is broken" in reason and "a:" not in reason
    # Fix c, retry: only c is sent again.
    box.control("c")
    key_c = box.records("c")[0]["env"]["PLURSPOOL_IDEMPOTENCY_KEY"]
    r = box.cli("retry", "p")
    assert r.code == 0, r.err
    wait_for(lambda: box.where("p") == ["sent"], 20, "sent after retry")
    assert len(box.records("a")) == 1
    assert len(box.records("b")) == 2
    assert len(box.records("c")) == 2
    # A retry is a new life of the post (its new `retried` token and time): a new key, the one
    # every host derives from the file.
    sent = box.post("sent", "p")
    assert sent.schedule is not None
    key = idempotency_key("p", sent, "c", datetime.fromisoformat(sent.schedule))
    assert box.records("c")[1]["env"]["PLURSPOOL_IDEMPOTENCY_KEY"] == key != key_c
    results = sent.results
    assert set(results) == {"a", "b", "c"}
    assert all(r.error is None for r in results.values())
    assert not (box.spool / "failed" / "p.error").exists()
    assert d.stop() == 0


# -- rate limits -----------------------------------------------------------------------------


def test_rate_limit_defers_and_list_says_why(box: Sandbox) -> None:
    box.exec_account("x")
    box.rate_limits["x"] = "2/hour"
    box.write_config()
    d = box.start()
    started(d)
    base = time.time() - 60
    for n in range(5):
        box.deliver("scheduled", f"p{n}", post_text(f"post {n}", schedule=iso(base + n)))
    wait_for(lambda: len(box.ids("sent")) == 2, 20, "two sends")
    d.wait_event("deferred", timeout=10)
    # Give the daemon every chance to (wrongly) send more.
    time.sleep(1.5)
    assert box.ids("sent") == {"p0", "p1"}  # oldest due first
    assert box.ids("scheduled") == {"p2", "p3", "p4"}
    assert len(box.records("x")) == 2
    views = box.cli("list", "--json").json()
    assert [v["id"] for v in views] == ["p2", "p3", "p4"]
    for v in views:
        assert v["error"] is not None and "rate limit x 2/hour" in v["error"], v
        assert "deferred" in v["error"]
        assert v["retry_at"] is not None, v
    text = box.cli("list")
    assert text.code == 0
    assert "deferred" in text.out
    assert d.stop() == 0


def test_sighup_reloads_the_rate_limit(box: Sandbox) -> None:
    box.exec_account("x")
    box.rate_limits["x"] = "1/hour"
    box.write_config()
    d = box.start()
    started(d)
    for n in range(3):
        box.deliver("scheduled", f"p{n}", post_text(f"{n}", schedule=iso(time.time() - 10 + n)))
    wait_for(lambda: len(box.ids("sent")) == 1, 20, "one send")
    time.sleep(1.0)
    assert len(box.ids("sent")) == 1
    box.rate_limits["x"] = "3/hour"
    box.write_config()
    d.signal(signal.SIGHUP)
    d.wait_event("reloaded")
    wait_for(lambda: len(box.ids("sent")) == 3, 10, "two more sends after SIGHUP")
    assert len(box.records("x")) == 3
    assert d.stop() == 0


# -- crashes ---------------------------------------------------------------------------------


def test_sigkill_mid_send_then_restart_sends_once_per_account(box: Sandbox) -> None:
    box.exec_account("a")
    box.exec_account("b", sleep=3)
    box.write_config()
    d = box.start()
    started(d)
    box.deliver("scheduled", "p", post_text("crash", schedule=iso(time.time() - 1)))
    d.until(lambda: box.records("b"), 20, "b's command started")
    d.signal(signal.SIGKILL)
    d.wait()
    assert box.where("p") == ["scheduled"]  # not lost, not moved
    rows = box.deliveries("p")
    assert rows["a"].status == "sent"
    assert rows["b"].in_flight
    box.control("b")
    d2 = box.start()
    wait_for(lambda: box.where("p") == ["sent"], 20, "sent after restart")
    assert len(box.records("a")) == 1  # a had recorded success: never again
    recs_b = box.records("b")
    assert len(recs_b) == 2  # in doubt: run again, with the same key, for the command to dedupe
    assert len({r["env"]["PLURSPOOL_IDEMPOTENCY_KEY"] for r in recs_b}) == 1
    assert "in_doubt=True" in d2.wait_event("sending", "account=b")
    assert d2.stop() == 0


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02, 0.05])
def test_sigkill_right_after_the_command_ran(box: Sandbox, delay: float) -> None:
    box.exec_account("a")
    box.write_config()
    d = box.start()
    started(d)
    box.deliver("scheduled", "p", post_text("crash", schedule=iso(time.time() - 1)))
    wait_for(lambda: box.records("a"), 20, "the command ran", every=0.001)
    time.sleep(delay)
    d.signal(signal.SIGKILL)
    d.wait()
    assert len(box.where("p")) == 1
    recorded = box.deliveries("p")["a"].status == "sent"
    d2 = box.start()
    started(d2)
    wait_for(lambda: box.where("p") == ["sent"], 20, "sent after restart")
    recs = box.records("a")
    if recorded:
        assert len(recs) == 1
    else:
        assert len(recs) == 2
    assert len({r["env"]["PLURSPOOL_IDEMPOTENCY_KEY"] for r in recs}) == 1
    assert d2.stop() == 0


@pytest.mark.slow
def test_repeated_sigkills_lose_nothing_and_never_resend_a_recorded_success(
    box: Sandbox,
) -> None:
    import random

    rng = random.Random(7)
    box.exec_account("a", sleep=0.15)
    box.exec_account("b", sleep=0.05)
    box.write_config()
    posts = [f"p{n}" for n in range(6)]
    for n, pid in enumerate(posts):
        box.deliver("scheduled", pid, post_text(pid, schedule=iso(time.time() - 60 + n)))
    frozen: dict[tuple[str, str], int] = {}  # (post, account) -> records when success was seen
    for _round in range(8):
        d = box.start()
        started(d)
        time.sleep(rng.uniform(0.02, 0.5))
        d.signal(signal.SIGKILL)
        d.wait()
        for pid in posts:
            assert len(box.where(pid)) == 1, (pid, box.where(pid))
            for account, row in box.deliveries(pid).items():  # none before the first ledger
                if row.status == "sent":
                    n = sum(1 for r in box.records(account) if r["env"]["PLURSPOOL_ID"] == pid)
                    frozen.setdefault((pid, account), n)
    d = box.start()
    started(d)
    d.until(lambda: all(box.is_in(p, "sent") for p in posts), 60, "everything sent")
    assert d.stop() == 0
    for account in ("a", "b"):
        recs = box.records(account)
        for pid in posts:
            mine = [r for r in recs if r["env"]["PLURSPOOL_ID"] == pid]
            assert mine, (pid, account)
            assert len({r["env"]["PLURSPOOL_IDEMPOTENCY_KEY"] for r in mine}) == 1
            if (pid, account) in frozen:
                assert len(mine) == frozen[(pid, account)], (pid, account)
    print(f"\nsuccesses seen at kill time and never resent: {len(frozen)}")


# -- the service -----------------------------------------------------------------------------


def test_sigterm_mid_send_finishes_the_send_and_exits_0(box: Sandbox) -> None:
    box.exec_account("x", sleep=2)
    box.write_config()
    d = box.start()
    started(d)
    assert box.cli("daemon", "health").code == 0
    second = box.start()
    assert second.wait(30) == 1
    assert "another plurspool daemon is already sending" in second.text()
    box.deliver("scheduled", "p", post_text("slow", schedule=iso(time.time() - 1)))
    wait_for(lambda: box.records("x"), 20, "the command started")
    t0 = time.time()
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0
    print(f"\nSIGTERM mid-send -> exit: {time.time() - t0:.2f} s")
    assert box.where("p") == ["sent"]
    assert len(box.records("x")) == 1
    assert d.events("stopped")
    h = box.cli("daemon", "health")
    assert h.code == 1 and "no daemon" in h.out


def test_send_once_exit_codes(box: Sandbox) -> None:
    box.exec_account("ok")
    box.exec_account("bad", default=False, exit=1, stderr="nope")
    box.write_config()
    box.deliver("scheduled", "good", post_text("g", schedule=iso(time.time() - 1)))
    box.deliver(
        "scheduled", "worse", post_text("w", schedule=iso(time.time() - 1), platforms=["bad"])
    )
    box.deliver("new", "fresh", post_text("f", schedule="1h"))
    r = box.cli("send", "--once")
    assert r.code == 0, r.err
    assert "1 taken in, 1 sent, 1 failed" in r.err
    assert box.where("good") == ["sent"] and box.where("worse") == ["failed"]
    assert box.where("fresh") == ["scheduled"]
    d = box.start()
    started(d)
    r = box.cli("send", "--once")
    assert r.code == 1
    assert "another plurspool daemon" in r.err
    assert d.stop() == 0


def test_max_lateness_at_start(box: Sandbox) -> None:
    box.exec_account("x")
    box.daemon_keys["max_lateness"] = "1h"
    box.daemon_keys["on_failure"] = on_failure_hook(box)
    box.write_config()
    box.deliver("scheduled", "old", post_text("old", schedule=iso(time.time() - 7200)))
    box.deliver("scheduled", "late", post_text("late", schedule=iso(time.time() - 1800)))
    box.deliver("new", "oldnew", post_text("x", schedule=iso(time.time() - 7200)))
    d = box.start()
    started(d)
    wait_for(lambda: box.where("late") == ["sent"], 20, "the slightly late post sent")
    wait_for(lambda: box.where("old") == ["failed"], 20, "the very late post failed")
    wait_for(lambda: box.where("oldnew") == ["failed"], 20, "the very late new post failed")
    assert [r["env"]["PLURSPOOL_ID"] for r in box.records("x")] == ["late"]
    for pid in ("old", "oldnew"):
        reason = (box.spool / "failed" / f"{pid}.error").read_text(encoding="utf-8")
        assert "max_lateness" in reason
    marker = box.base / "marker"
    wait_for(lambda: text_of(marker).count("max_lateness") == 2, 10, "hooks")
    assert d.stop() == 0


# -- foreground sends ------------------------------------------------------------------------


def test_post_without_schedule_is_sent_in_the_foreground(box: Sandbox) -> None:
    box.exec_account("x", stdout="https://example.test/@me/{n}")
    box.write_config()
    r = box.cli("post", "hello now", "--json")
    assert r.code == 0, r.err
    view = r.json()
    assert view["state"] == "sent"
    assert view["results"]["x"]["url"] == "https://example.test/@me/1"
    assert len(box.records("x")) == 1
    assert box.where(view["id"]) == ["sent"]


def test_now_without_daemon_sends_once(box: Sandbox) -> None:
    box.exec_account("x")
    box.write_config()
    r = box.cli("post", "-s", "2h", "later", "--json")
    assert r.code == 0, r.err
    pid = r.json()["id"]
    r = box.cli("now", pid, "--json")
    assert r.code == 0, r.err
    assert r.json()["state"] == "sent"
    assert len(box.records("x")) == 1
    assert box.where(pid) == ["sent"]


@pytest.mark.slow
def test_now_with_a_running_daemon_sends_once(box: Sandbox) -> None:
    box.exec_account("x")
    box.write_config()
    d = box.start()
    started(d)
    pids = []
    for n in range(3):
        r = box.cli("post", "-s", "2h", f"later {n}", "--json")
        assert r.code == 0, r.err
        pids.append(r.json()["id"])
    for pid in pids:
        t0 = time.time()
        r = box.cli("now", pid)
        assert r.code == 0, r.err
        assert "daemon" in r.err
        wait_for(partial(box.is_in, pid, "sent"), 10, "sent by the daemon")
        report("`now` returned -> sent/ by the daemon", time.time() - t0)
    assert d.stop() == 0
    recs = box.records("x")
    assert sorted(r["env"]["PLURSPOOL_ID"] for r in recs) == sorted(pids)


def test_post_in_the_foreground_while_the_daemon_runs_sends_once(box: Sandbox) -> None:
    """`post` makes the post due at once: the daemon may grab it first; either way, once."""
    box.exec_account("x", sleep=0.3)
    box.write_config()
    d = box.start()
    started(d)
    ids = []
    for n in range(3):
        r = box.cli("post", f"race {n}", "--json")
        assert r.code == 0, r.err
        view = r.json()
        assert view["state"] == "sent", view
        ids.append(view["id"])
    assert d.stop() == 0
    assert sorted(r["env"]["PLURSPOOL_ID"] for r in box.records("x")) == sorted(ids)
    assert all(box.is_in(i, "sent") for i in ids)


# -- logs ------------------------------------------------------------------------------------


CANARY = "CANARY-SECRET-5d1c"


def canary_config(box: Sandbox) -> None:
    box.exec_account("x")
    box.extra = (
        "[accounts.masto]\n"
        'platform = "mastodon"\n'
        'instance = "https://example.social"\n'
        f'token_cmd = "echo {CANARY}-cmd"\n'
    )
    box.write_config()


def exercise(box: Sandbox, d: DaemonProc, json_log: bool = False) -> None:
    """Make the daemon log a little of everything: intake, send, retry, failure, invalid."""
    box.control("x", fail_first=1, fail_exit=75, stderr="busy")
    box.deliver("new", "a", post_text("a", schedule=iso(time.time() - 1)))
    box.deliver("new", "broken", "---\nschedule: [\n---\nx\n")
    wait_for(lambda: box.where("a") == ["sent"] and box.where("broken") == ["failed"], 20, "done")
    box.control("x", exit=1, stderr="rejected")
    box.deliver("scheduled", "b", post_text("b", schedule=iso(time.time() - 1)))
    wait_for(lambda: box.where("b") == ["failed"], 20, "failed")
    d.signal(signal.SIGHUP)
    if json_log:
        d.wait_line(lambda line: '"reloaded"' in line)
    else:
        d.wait_event("reloaded")


def test_text_log_is_one_event_a_line_and_never_shows_secrets(box: Sandbox) -> None:
    canary_config(box)
    d = box.start(env={"PLURSPOOL_MASTO_TOKEN": f"{CANARY}-env"})
    started(d)
    exercise(box, d)
    assert d.stop() == 0
    lines = d.log()
    names = {event_words(line)[0] for line in lines}
    assert {"started", "queued", "sending", "sent", "retry", "failed", "done", "stopped"} <= names
    # Not in the exec command's environment either: other accounts' secrets are withheld.
    assert CANARY not in box.record_path("x").read_text(encoding="utf-8")
    for line in lines:
        assert line[:4].isdigit() and line[10] == "T", line  # timestamped without journald
    assert CANARY not in d.text()


def test_json_log_lines_parse(box: Sandbox) -> None:
    canary_config(box)
    d = box.start("--log-format", "json", env={"PLURSPOOL_MASTO_TOKEN": f"{CANARY}-env"})
    d.wait_line(lambda line: '"started"' in line)
    exercise(box, d, json_log=True)
    assert d.stop() == 0
    records = [json.loads(line) for line in d.log()]
    assert all({"ts", "level", "event"} <= set(r) for r in records)
    assert {"started", "sent", "failed", "stopped"} <= {r["event"] for r in records}
    assert CANARY not in d.text()


def test_no_timestamps_under_journald(box: Sandbox) -> None:
    box.exec_account("x")
    box.write_config()
    d = box.start(env={"JOURNAL_STREAM": "8:1234"})
    started(d)
    box.deliver("scheduled", "a", post_text("a", schedule=iso(time.time() - 1)))
    wait_for(lambda: box.where("a") == ["sent"], 20, "sent")
    assert d.stop() == 0
    lines = d.log()
    assert lines and all(not line[:1].isdigit() for line in lines), lines
    assert lines[0].startswith("started ")
    d = box.start("--log-format", "json", env={"JOURNAL_STREAM": "8:1234"})
    d.wait_line(lambda line: '"started"' in line)
    assert d.stop() == 0
    assert all("ts" not in json.loads(line) for line in d.log())


def test_sigterm_cuts_a_send_that_outlasts_shutdown_timeout(box: Sandbox) -> None:
    box.exec_account("x", sleep=60)
    box.daemon_keys["shutdown_timeout"] = "2s"
    box.write_config()
    d = box.start()
    started(d)
    box.deliver("scheduled", "p", post_text("slow", schedule=iso(time.time() - 1)))
    wait_for(lambda: box.records("x"), 20, "the command started")
    t0 = time.time()
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0
    took = time.time() - t0
    print(f"\nSIGTERM with a 60 s send and shutdown_timeout 2s -> exit: {took:.2f} s")
    assert took < 2.0 + 1.5
    assert box.where("p") == ["scheduled"]  # not lost; sent again (same key) on restart
    box.control("x")
    box.daemon_keys["retry_delay"] = "1s"
    box.write_config()
    d = box.start()
    wait_for(lambda: box.where("p") == ["sent"], 20, "sent after restart")
    recs = box.records("x")
    assert len(recs) == 2 and len({r["env"]["PLURSPOOL_IDEMPOTENCY_KEY"] for r in recs}) == 1
    assert d.stop() == 0


@pytest.mark.slow
def test_heartbeat_stays_fresh_during_a_long_send(box: Sandbox) -> None:
    box.exec_account("x", sleep=20)
    box.write_config()
    d = box.start()
    started(d)
    beat = box.state_dir() / "heartbeat"
    box.deliver("scheduled", "p", post_text("slow", schedule=iso(time.time() - 1)))
    d.until(lambda: box.records("x"), 20, "the command started")
    first = beat.stat().st_mtime
    d.until(lambda: beat.stat().st_mtime > first, 20, "a heartbeat during the send")
    assert box.is_in("p", "scheduled")  # still sending
    assert box.cli("daemon", "health").code == 0
    d.until(lambda: box.is_in("p", "sent"), 30, "sent")
    assert d.stop() == 0
