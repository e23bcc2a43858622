"""`plurspool ics` and the daemon's `[calendar] ics` file (plurspool(1), `ics`;
plurspool-config(5), `calendar.ics`): written whole and atomically, rewritten after each change,
and a failure to write it is logged while sending goes on."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import icalendar
import pytest

from tests.daemon_helpers import Sandbox, iso, toml_str, wait_for
from tests.helpers import invoke, make_env, run_cli, spool_root, write_config

CONFIG = 'timezone = "Europe/Berlin"\n'


def raw(component: icalendar.Component, name: str) -> Any:
    """A property as icalendar holds it (its value class), for its exact text and parameters."""
    return component[name]


def test_stdout_and_out_give_the_same_feed(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    write_config(env, CONFIG)
    assert invoke(["post", "-s", "2099-01-01 10:00", "far away"], env).code == 0
    shown = run_cli(["ics"], env)
    assert shown.code == 0, shown.err
    out = tmp_path / "feed.ics"
    run = invoke(["ics", "--out", str(out)], env)
    assert run.code == 0 and run.out == ""
    assert out.read_text() == shown.out  # the second run saw no change: the same SEQUENCE
    (event,) = icalendar.Calendar.from_ical(out.read_bytes()).events
    assert event.summary == "far away"
    assert raw(event, "dtstart").to_ical() == b"20990101T090000Z"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["feed.ics"]


def test_out_into_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    write_config(env, CONFIG)
    target = tmp_path / "nowhere" / "feed.ics"
    run = invoke(["ics", "--out", str(target)], env)
    assert run.code == 1
    assert f"cannot write the calendar feed {target}" in run.err
    assert "hint: check that its directory exists and is writable" in run.err
    assert "Traceback" not in run.err


def test_send_once_writes_the_feed_when_it_changed(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    path = tmp_path / "queue.ics"
    write_config(env, f"{CONFIG}[calendar]\nics = {toml_str(str(path))}\n")
    assert invoke(["post", "-s", "2099-01-01 10:00", "--json", "one"], env).code == 0
    assert invoke(["send", "--once"], env).code == 0
    assert uids(path) == {
        f"{p.stem}@plurspool" for p in (spool_root(env) / "scheduled").glob("*.md")
    }
    before = path.stat()
    assert invoke(["send", "--once"], env).code == 0
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # untouched


def feed_box(tmp_path: Path, path: Path) -> Sandbox:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.extra = f"[calendar]\nics = {toml_str(str(path))}\n"
    box.write_config()
    return box


def uids(path: Path) -> set[str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return set()
    return {e.uid for e in icalendar.Calendar.from_ical(data).events}


@pytest.mark.realtime
def test_the_daemon_rewrites_the_feed_after_each_change(tmp_path: Path) -> None:
    path = tmp_path / "queue.ics"
    box = feed_box(tmp_path, path)
    box.deliver("scheduled", "early", "---\nschedule: 2099-01-01T10:00:00Z\n---\nearly\n")
    d = box.start()
    try:
        wait_for(lambda: uids(path) == {"early@plurspool"}, 30, "the feed written at start")
        due = float(math.ceil(time.time() + 2))
        box.deliver("new", "soon", f"---\nschedule: {iso(due)}\n---\nsoon\n")
        wait_for(lambda: "soon@plurspool" in uids(path), 20, "the new post in the feed")
        wait_for(lambda: box.is_in("soon", "sent"), 20, "the post sent")
        wait_for(lambda: uids(path) == {"early@plurspool"}, 20, "the sent post gone from it")
        assert box.cli("reschedule", "early", "2099-01-02 10:00").code == 0  # the box is in UTC
        wait_for(lambda: b"DTSTART:20990102T100000Z" in path.read_bytes(), 20, "the new time in it")
        (event,) = icalendar.Calendar.from_ical(path.read_bytes()).events
        assert event.sequence == 1
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".queue.ics")]
    finally:
        assert d.stop() == 0
        box.cleanup()


@pytest.mark.realtime
def test_a_feed_that_cannot_be_written_is_logged_and_sending_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "queue.ics"
    box = feed_box(tmp_path, path)
    d = box.start()
    try:
        line = d.wait_event("ics", timeout=30)
        assert " WARNING ics " in line
        assert str(path) in line and "cannot write the calendar feed" in line
        due = float(math.ceil(time.time() + 2))
        box.deliver("new", "goes", f"---\nschedule: {iso(due)}\n---\nstill sent\n")
        wait_for(lambda: box.is_in("goes", "sent"), 20, "the post sent all the same")
        assert d.proc.poll() is None
    finally:
        assert d.stop() == 0
        box.cleanup()
