"""The calendar (plurspool(1), `calendar`): a week or a month of posts, recurring posts'
occurrences and free queue slots on local days, and how it fits 80 columns; in process with a
fake clock."""

from __future__ import annotations

import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from plurspool.calendar import Period, as_json
from plurspool.cli.calendar import days_of, render
from plurspool.cli.output import width
from tests.daemon_helpers import Sandbox, World, in_process

# Friday 2026-12-04, 08:00 in Europe/Berlin (UTC+1).
NOW = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
QUEUES = """
[queues.default]
slots = ["mon-fri 09:00"]
[queues.other]
slots = ["sat 10:00"]
accounts = ["y"]
"""
ESC = re.compile("\x1b\\[")


@pytest.fixture
def world(tmp_path: Path) -> World:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.exec_account("y", default=False)
    box.top = 'timezone = "Europe/Berlin"'
    box.extra = QUEUES
    w = in_process(box)
    w.clock[0] = NOW
    return w


def add(w: World, name: str, front: str, body: str = "hello") -> None:
    w.box.deliver("new", name, f"---\n{front}\n---\n{body}\n")


def week(w: World, day: date, account: str | None = None) -> dict[str, dict[str, list[str]]]:
    """The week holding `day`: per date, the posts as `ID@UTC` and the free slots (UTC)."""
    days = days_of(w.app, Period.of(day, month=False), account)
    return {
        d["date"]: {
            "posts": [f"{v['id']}@{v['scheduled_at']}" for v in d["posts"]],
            "free": d["free_slots"],
        }
        for d in as_json(days)
    }


def test_a_cut_preview_is_measured_without_wcwidth(monkeypatch: pytest.MonkeyPatch) -> None:
    """A preview plurspool cut ends in "…", one column: ASCII before it needs no wcwidth."""
    assert (width("🌍 and…"), width("née…")) == (7, 4)  # by wcwidth
    monkeypatch.setitem(sys.modules, "wcwidth", None)  # an import fails
    assert (width("plain words…"), width("…"), width("")) == (12, 1, 0)


def test_a_period_is_a_week_from_monday_or_a_calendar_month() -> None:
    assert Period.of(date(2026, 12, 3), month=False) == Period(
        date(2026, 11, 30), date(2026, 12, 7), False
    )
    assert Period.of(date(2026, 11, 30), month=False).first == date(2026, 11, 30)
    assert Period.of(date(2026, 12, 6), month=False).first == date(2026, 11, 30)
    dec = Period.of(date(2026, 12, 31), month=True)
    assert (dec.first, dec.end) == (date(2026, 12, 1), date(2027, 1, 1))
    assert len(Period.of(date(2028, 2, 10), month=True).days()) == 29


def test_posts_occurrences_and_free_slots_fall_on_their_local_days(world: World) -> None:
    add(world, "single", "schedule: 2026-12-05 00:30")  # Sat 00:30 local is Fri 23:30 UTC
    add(world, "queued", "schedule: queue")  # Fri 09:00, the first free slot
    add(
        world, "daily", "schedule: 2026-12-04 18:00\nrepeat: every day at 18:00\nskip: [2026-12-06]"
    )
    world.run()
    got = week(world, date(2026, 12, 4))
    assert list(got) == ["2026-11-30", *(f"2026-12-{d:02d}" for d in range(1, 7))]
    assert got["2026-11-30"] == {"posts": [], "free": []}  # the past has no free slot
    assert got["2026-12-04"]["posts"] == [
        "queued@2026-12-04T08:00:00Z",
        "daily@2026-12-04T17:00:00Z",
    ]
    assert got["2026-12-04"]["free"] == []  # its one slot is taken
    assert got["2026-12-05"]["posts"] == [
        "single@2026-12-04T23:30:00Z",
        "daily@2026-12-05T17:00:00Z",
    ]
    assert got["2026-12-05"]["free"] == ["2026-12-05T09:00:00Z"]  # the queue `other`
    assert got["2026-12-06"]["posts"] == []  # skipped
    nxt = week(world, date(2026, 12, 7))
    assert nxt["2026-12-07"]["free"] == ["2026-12-07T08:00:00Z"]
    assert all(p.startswith("daily@") for d in nxt.values() for p in d["posts"])
    assert sum(len(d["posts"]) for d in nxt.values()) == 7


def test_only_the_periods_single_posts_are_decoded(world: World) -> None:
    """`Views.scheduled(start, end)` decodes the listing's lines of single posts due in the
    period and every recurring post's, whatever accounts are named "repeat" or "retry_at"."""
    world.box.exec_account("repeat", default=False)
    add(world, "before", "schedule: 2026-12-06 12:00\nplatforms: [x, repeat]")
    add(world, "inside", "schedule: 2026-12-08 12:00\nplatforms: [repeat]")
    add(world, "after", "schedule: 2026-12-20 12:00")
    add(world, "daily", "schedule: 2026-12-04 18:00\nrepeat: every day at 18:00")
    world.reload()
    world.run()
    start, end = Period.of(date(2026, 12, 8), month=False).instants(world.app.config.timezone)
    assert [v["id"] for v in world.app.views.scheduled(start, end)] == ["daily", "inside"]
    assert len(world.app.views.scheduled()) == 4


def test_an_occurrence_keeps_the_view_of_its_template(world: World) -> None:
    add(world, "daily", "schedule: 2026-12-04 18:00\nrepeat: every day at 18:00", "digest")
    world.run()
    days = as_json(days_of(world.app, Period.of(date(2026, 12, 7), month=False), None))
    view = days[0]["posts"][0]
    assert view["id"] == "daily" and view["state"] == "scheduled"
    assert view["scheduled_at"] == "2026-12-07T17:00:00Z"
    assert view["repeat"] is not None and view["repeat"]["words"] == "every day at 18:00"
    assert view["preview"] == "digest" and view["platforms"] == ["x"]


def test_an_account_filters_posts_and_queues(world: World) -> None:
    add(world, "to-x", "schedule: 2026-12-08 12:00")
    add(world, "to-y", "schedule: 2026-12-08 13:00\nplatforms: [y]")
    world.run()
    only_y = week(world, date(2026, 12, 8), "y")
    assert only_y["2026-12-08"] == {"posts": ["to-y@2026-12-08T12:00:00Z"], "free": []}
    assert only_y["2026-12-12"]["free"] == ["2026-12-12T09:00:00Z"]  # `other` posts to y
    only_x = week(world, date(2026, 12, 8), "x")
    assert only_x["2026-12-08"]["posts"] == ["to-x@2026-12-08T11:00:00Z"]
    assert only_x["2026-12-08"]["free"] == ["2026-12-08T08:00:00Z"]
    assert only_x["2026-12-12"]["free"] == []


def test_occurrences_across_the_spring_gap_follow_the_wall_clock(world: World) -> None:
    # 02:30 does not exist in Berlin on 2026-03-29: it moves forward by the gap, to 03:30.
    world.clock[0] = datetime(2026, 3, 20, tzinfo=UTC)
    add(world, "night", "schedule: 2026-03-27 02:30\nrepeat: every day at 2:30")
    world.run()
    got = week(world, date(2026, 3, 27))
    assert got["2026-03-28"]["posts"] == ["night@2026-03-28T01:30:00Z"]
    assert got["2026-03-29"]["posts"] == ["night@2026-03-29T01:30:00Z"]  # 03:30 CEST
    # the free 09:00 slots: 08:00Z in winter time, 07:00Z in summer time
    assert got["2026-03-23"]["free"] == ["2026-03-23T08:00:00Z"]
    assert got["2026-03-27"]["free"] == ["2026-03-27T08:00:00Z"]
    after = week(world, date(2026, 3, 30))
    assert after["2026-03-30"]["posts"] == ["night@2026-03-30T00:30:00Z"]
    assert after["2026-03-30"]["free"] == ["2026-03-30T07:00:00Z"]


LONG = "-".join(["averyveryverylongaccountname"] * 4)


@pytest.fixture
def crowded(tmp_path: Path) -> World:
    """Posts to long account lists, with IDs alike for 30 characters, and free slots."""
    box = Sandbox(tmp_path)
    for n in range(3):
        box.exec_account(f"{LONG}-{n}")
    box.top = 'timezone = "Europe/Berlin"'
    box.extra = QUEUES.replace('accounts = ["y"]', "")
    w = in_process(box)
    w.clock[0] = NOW
    same = "x" * 30
    for n in range(4):
        add(w, f"{same}{n}-post", f"schedule: 2026-12-0{5 + n} 1{n}:00:3{n}", "wörds 🌍 " * 30)
    add(w, "short", "schedule: 2026-12-05 08:00\nrepeat: every day at 8:00", "daily")
    w.run()
    return w


def lines(w: World, month: bool) -> list[str]:
    period = Period.of(date(2026, 12, 5), month)
    days = days_of(w.app, period, None)
    return render(period, days, w.app.config.timezone, w.app.items.prefix_lengths())


@pytest.mark.parametrize("month", [False, True])
def test_every_line_fits_80_columns(
    crowded: World, month: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    out = lines(crowded, month)
    assert max(width(line) for line in out) <= 80
    posts = [line for line in out if re.match(r"  \d\d:\d\d:\d\d  x", line)]
    n = 4 if month else 2  # the week holds Saturday 5 and Sunday 6 only
    assert len(posts) == n
    shown = [line.split()[1] for line in posts]
    # the IDs share 30 characters: each is shown as far as it tells it apart
    assert shown == [f"{'x' * 30}{i}" for i in range(n)]
    assert all(LONG[:10] in line and "…" in line for line in posts)  # accounts, cut


def test_a_narrow_terminal_cuts_accounts_then_ids(
    crowded: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "50")
    out = lines(crowded, True)
    days = out[out.index("") + 1 :]
    days = days[days.index("") :]  # past the grid, which keeps its 54 columns
    assert max(width(line) for line in days) <= 50
    posts = [line.split() for line in days if re.match(r"  \d\d:\d\d:\d\d  x", line)]
    assert [p[1] for p in posts] == ["x" * 28] * 4  # then the IDs, to prefixes
    assert all(p[2].startswith("avery") and p[2].endswith("…") and len(p[2]) == 8 for p in posts)


def test_ids_are_at_least_four_characters_and_repeats_are_marked(crowded: World) -> None:
    out = lines(crowded, False)
    daily = [line for line in out if " shor" in line]
    assert len(daily) == 2  # Sat and Sun of the week
    assert all(re.search(r"  shor +↻ ", line) for line in daily)
    assert "W49  30      1      2      3      4      5·2    6·2" in out


def test_no_colour_off_a_terminal_or_with_no_color(
    crowded: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert not any(ESC.search(line) for line in lines(crowded, False))  # not a terminal
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    coloured = lines(crowded, False)
    assert any(ESC.search(line) for line in coloured)
    plain = [ESC.sub("", re.sub("\x1b\\[[0-9;]*m", "", line)) for line in coloured]
    assert plain == lines_without_colour(crowded, monkeypatch)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not any(ESC.search(line) for line in lines(crowded, False))


def lines_without_colour(w: World, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    with monkeypatch.context() as m:
        m.setenv("NO_COLOR", "1")
        return lines(w, False)
