"""Recurring posts at the command line: intake by `send --once`, `list`/`show` with the rule in
words, `skip` (next and named occurrence, errors), `cancel` into drafts/."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from tests.daemon_helpers import Sandbox, iso, wait_for
from tests.helpers import read_post, run_cli, spool_root, write_config

CONFIG = """
timezone = "Europe/Berlin"
default_platforms = ["x"]

[accounts.x]
platform = "exec"
command = ["true"]
"""
TEMPLATE = (
    "---\nschedule: 2099-03-02T09:00:00+01:00\nrepeat: every monday 9:00\n---\nWeekly notes\n"
)


def queued(env: dict[str, str]) -> Path:
    write_config(env, CONFIG)
    assert run_cli(["init"], env).code == 0
    root = spool_root(env)
    (root / "new" / "weekly.md").write_text(TEMPLATE, encoding="utf-8")
    run = run_cli(["send", "--once"], env)
    assert run.code == 0, run.err
    return root / "scheduled" / "weekly.md"


@pytest.mark.slow
def test_list_and_show_give_the_next_occurrence_and_the_rule_in_words(
    env: dict[str, str],
) -> None:
    path = queued(env)
    assert read_post(path).repeat == "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"
    listed = run_cli(["list", "--json"], env)
    assert listed.code == 0, listed.err
    (view,) = listed.json()
    assert view["scheduled_at"] == "2099-03-02T08:00:00Z"
    assert view["repeat"] == {
        "rule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0",
        "words": "every Monday at 09:00",
    }
    text = run_cli(["list", "--wide"], env)
    assert "(every Monday at 09:00) Weekly notes" in text.out
    shown = run_cli(["show", "weekly"], env)
    assert shown.code == 0
    assert "next:      Mon 2099-03-02 09:00:00 CET" in shown.out
    assert (
        "repeat:    every Monday at 09:00 (FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0)" in shown.out
    )


@pytest.mark.slow
def test_skip_the_next_and_a_named_occurrence(env: dict[str, str]) -> None:
    path = queued(env)
    run = run_cli(["skip", "weekly", "--json"], env)
    assert run.code == 0, run.err
    assert "skipped 2099-03-02T09:00:00+01:00" in run.err
    assert run.json()[0]["scheduled_at"] == "2099-03-09T08:00:00Z"
    post = read_post(path)
    assert post.skip == ("2099-03-02",) and post.schedule == "2099-03-09T09:00:00+01:00"
    run = run_cli(["skip", "weekly", "2099-03-23"], env)
    assert run.code == 0, run.err
    post = read_post(path)
    assert post.skip == ("2099-03-02", "2099-03-23")
    assert post.schedule == "2099-03-09T09:00:00+01:00"  # the next one is still the next


@pytest.mark.slow
def test_skip_refuses_a_date_without_occurrence_and_a_post_that_does_not_recur(
    env: dict[str, str],
) -> None:
    path = queued(env)
    before = path.read_bytes()
    run = run_cli(["skip", "weekly", "2099-03-04"], env)  # a Wednesday
    assert run.code == 3 and "no occurrence on 2099-03-04" in run.err
    assert path.read_bytes() == before
    single = run_cli(["post", "-s", "2099-01-01T10:00:00Z", "once", "--json"], env)
    run = run_cli(["skip", single.json()["id"]], env)
    assert run.code == 3 and "is not a recurring post" in run.err
    assert "Traceback" not in run.err


def test_cancel_moves_the_template_to_drafts(env: dict[str, str]) -> None:
    path = queued(env)
    run = run_cli(["cancel", "weekly"], env)
    assert run.code == 0, run.err
    assert not path.exists()
    assert read_post(spool_root(env) / "drafts" / "weekly.md").repeat is not None


@pytest.mark.realtime
def test_the_daemon_sends_an_occurrence_on_time_and_moves_the_template_on(
    tmp_path: Path,
) -> None:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.write_config()
    d = box.start()
    try:
        d.wait_event("started", timeout=30)
        due = float(math.ceil(time.time() + 3))
        text = f"---\nschedule: {iso(due)}\nrepeat: FREQ=HOURLY;COUNT=2\n---\nHourly\n"
        box.deliver("new", "hourly", text)
        copy = "hourly--" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(due))
        wait_for(lambda: box.is_in(copy, "sent"), 20, "the first occurrence sent")
        (rec,) = box.records("x")
        assert rec["stdin"]["id"] == copy and 0.0 <= rec["t"] - due < 1.0
        template = box.post("scheduled", "hourly")
        assert template.schedule == iso(due + 3600).replace("Z", "+00:00")
        assert "hourly--" not in " ".join(box.ids("scheduled"))  # no second copy waits
    finally:
        assert d.stop() == 0
        box.cleanup()
