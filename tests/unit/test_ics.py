"""The ICS feed (plurspool(1), `ics`): it parses with icalendar, SEQUENCE goes up when a post's
time changes, and a second, independent reader (recurring-ical-events) expands each recurring
post to the instants repeat.py sends at, in zones with DST edges of every kind in 2026."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from plurspool import repeat
from plurspool.ics import HEAD, PRODID, feed
from tests.daemon_helpers import Sandbox, World, in_process


def raw(component: icalendar.Component, name: str) -> Any:
    """A property as icalendar holds it (its value class), for its exact text and parameters."""
    return component[name]


def world_in(tmp_path: Path, zone: str, now: datetime) -> World:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.top = f'timezone = "{zone}"'
    w = in_process(box)
    w.clock[0] = now
    return w


def add(w: World, name: str, front: str, body: str = "hello") -> None:
    w.box.deliver("new", name, f"---\n{front}\n---\n{body}\n")


def events(w: World) -> dict[str, icalendar.Event]:
    cal = icalendar.Calendar.from_ical(feed(w.app))
    return {e.uid: e for e in cal.events}


NOW = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)


def test_single_posts_are_utc_events_with_preview_and_accounts(tmp_path: Path) -> None:
    w = world_in(tmp_path, "Europe/Berlin", NOW)
    w.box.exec_account("y", default=False)
    w.reload()
    text = "Commas, semi; colons: and a \\ backslash — ünïcödé 🌍 " * 2
    add(w, "a", "schedule: 2026-12-05 10:00\nplatforms: [x, y]", text)
    add(w, "b", "schedule: 2026-12-06 11:00")
    w.run()
    data = feed(w.app)
    assert data.startswith(b"BEGIN:VCALENDAR\r\n") and data.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))  # folded
    got = events(w)
    assert set(got) == {"a@plurspool", "b@plurspool"}
    a = got["a@plurspool"]
    assert a.start == datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    assert raw(a, "dtstart").to_ical() == b"20261205T090000Z"
    assert a.summary == " ".join(text.split())[:59] + "…"
    assert a.description == "x, y"
    assert a.sequence == 0
    assert a.rrules == []
    assert icalendar.Calendar.from_ical(data).timezones == []  # none needed


def test_a_preview_that_looks_like_the_views_keys_is_read_whole(tmp_path: Path) -> None:
    """The feed decodes a single post's line only up to its preview (`scheduled_briefly`):
    a preview holding the keys' own text, quotes and all, comes through as written."""
    w = world_in(tmp_path, "Europe/Berlin", NOW)
    w.box.exec_account("path", default=False)
    w.reload()
    text = 'a "quote", "path": "x", "repeat": {"rule": 1}, "retry_at": null'
    add(w, "tricky", "schedule: 2026-12-05 10:00\nplatforms: [x, path]", text)
    w.run()
    got = events(w)["tricky@plurspool"]
    assert got.summary == text[:59] + "…"
    assert got.description == "x, path"
    assert got.rrules == []
    assert [v["id"] for v in w.app.views.scheduled_briefly()] == ["tricky"]
    assert w.app.views.scheduled_briefly()[0] == {
        k: v
        for k, v in w.app.views.scheduled()[0].items()
        if k in ("id", "state", "scheduled_at", "platforms", "preview", "repeat")
    }


def test_sequence_goes_up_when_the_time_changes_and_only_then(tmp_path: Path) -> None:
    w = world_in(tmp_path, "Europe/Berlin", NOW)
    add(w, "a", "schedule: 2026-12-05 10:00")
    add(w, "b", "schedule: 2026-12-06 10:00")
    w.run()
    first = events(w)
    w.tick(60)
    assert {u: e.sequence for u, e in events(w).items()} == {
        "a@plurspool": 0,
        "b@plurspool": 0,
    }
    item = w.app.items.find("a")
    w.app.queue.reschedule(item, "2026-12-05 12:00")
    w.tick(60)
    again = events(w)
    assert again["a@plurspool"].sequence == 1
    assert again["a@plurspool"].start == datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    assert NOW + timedelta(seconds=120) == again["a@plurspool"].DTSTAMP
    assert again["b@plurspool"].sequence == 0
    assert again["b@plurspool"].DTSTAMP == first["b@plurspool"].DTSTAMP
    w.app.queue.reschedule(w.app.items.find("a"), "2026-12-05 10:00")  # back: still a change
    assert events(w)["a@plurspool"].sequence == 2
    assert events(w)["a@plurspool"].sequence == 2


def test_a_recurring_post_is_an_rrule_event_in_the_zone(tmp_path: Path) -> None:
    w = world_in(tmp_path, "Europe/Berlin", NOW)
    add(
        w,
        "daily",
        "schedule: 2026-12-05 18:00\nrepeat: every day at 18:00\nskip: [2026-12-07, 2026-12-24]",
    )
    w.run()
    cal = icalendar.Calendar.from_ical(feed(w.app))
    (tz,) = cal.timezones
    assert tz.tz_name == "Europe/Berlin"
    (event,) = cal.events
    assert raw(event, "dtstart").params["TZID"] == "Europe/Berlin"
    assert raw(event, "dtstart").to_ical() == b"20261205T180000"
    assert dict(event.rrules[0]) == {"FREQ": ["DAILY"], "BYHOUR": [18], "BYMINUTE": [0]}
    excluded = event.exdates
    assert [(d.date(), d.hour) for d in excluded] == [
        (date(2026, 12, 7), 18),
        (date(2026, 12, 24), 18),
    ]


def test_a_zone_read_from_a_file_without_a_name_is_described_whole(tmp_path: Path) -> None:
    # A copied /etc/localtime has no tz database name: its VTIMEZONE comes from its transitions.
    with open("/usr/share/zoneinfo/Europe/Berlin", "rb") as f:
        tz = ZoneInfo.from_file(f, key="/etc/localtime")
    w = world_in(tmp_path, "UTC", datetime(2026, 3, 1, tzinfo=UTC))
    w.app.config = replace(w.app.config, timezone=tz)
    add(w, "night", "schedule: 2026-03-27 02:30\nrepeat: every day at 2:30")
    w.run()
    cal = icalendar.Calendar.from_ical(feed(w.app))
    assert [t.tz_name for t in cal.timezones] == ["plurspool-local"]
    (event,) = cal.events
    assert raw(event, "dtstart").params["TZID"] == "plurspool-local"
    start, end = datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC)
    got = [o.start.astimezone(UTC) for o in recurring_ical_events.of(cal).between(start, end)]
    assert got[:4] == [
        datetime(2026, 3, 27, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # 02:30 is in the gap: 03:30 CEST
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
    ]


def test_utc_needs_no_zone(tmp_path: Path) -> None:
    w = world_in(tmp_path, "UTC", NOW)
    add(w, "daily", "schedule: 2026-12-05 18:00\nrepeat: every day at 18:00")
    w.run()
    cal = icalendar.Calendar.from_ical(feed(w.app))
    assert cal.timezones == []
    assert raw(cal.events[0], "dtstart").to_ical() == b"20261205T180000Z"


def test_the_head_is_what_icalendar_writes() -> None:
    """The calendar's own lines are written as text (no icalendar import for a feed of single
    posts): they are what icalendar makes of the same properties."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "plurspool")
    assert cal.to_ical() == HEAD + b"END:VCALENDAR\r\n"


def test_a_feed_of_single_posts_does_not_import_icalendar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world_in(tmp_path, "Europe/Berlin", NOW)
    add(w, "a", "schedule: 2026-12-05 10:00", "plain words")
    w.run()
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "icalendar", None)  # an import fails
        data = feed(w.app)
    assert data == feed(w.app)
    assert events(w)["a@plurspool"].summary == "plain words"


# -- the second reader -------------------------------------------------------------------------

# Each zone with wall times around its 2026 DST changes: inside a spring-forward gap (moved on by
# the gap), inside a fall-back fold (its first instant), the change itself, and an ordinary time.
ZONES = {
    "Europe/Berlin": ["02:30", "03:00", "02:00", "09:00"],  # 29 Mar gap 02-03, 25 Oct fold 02-03
    "America/Sao_Paulo": ["00:00", "00:30", "09:00"],  # no DST since 2019
    "Australia/Lord_Howe": ["01:45", "02:15", "02:00", "09:00"],  # 30-minute DST, 5 Apr / 4 Oct
    "Pacific/Chatham": ["02:45", "03:00", "03:45", "09:00"],  # +12:45/+13:45, 5 Apr / 27 Sep
    "Asia/Kolkata": ["02:30", "09:00"],
    "UTC": ["00:00", "09:00"],
}
RULES = [
    "every day at {t}",
    "FREQ=WEEKLY;BYDAY=SU;BYHOUR={h};BYMINUTE={m}",  # the changes fall on Sundays
    "FREQ=MONTHLY;BYDAY=1SU,-1SU;BYHOUR={h};BYMINUTE={m}",
]


@pytest.mark.parametrize(
    "zone", [z if z == "Europe/Berlin" else pytest.param(z, marks=pytest.mark.slow) for z in ZONES]
)
def test_a_second_reader_expands_each_rule_to_the_instants_plurspool_sends_at(
    tmp_path: Path, zone: str
) -> None:
    tz = ZoneInfo(zone)
    w = world_in(tmp_path, zone, datetime(2025, 12, 30, tzinfo=UTC))
    names = []
    for t in ZONES[zone]:
        h, m = (int(x) for x in t.split(":"))
        for n, rule in enumerate(RULES):
            name = f"r{h:02d}{m:02d}-{n}"
            add(w, name, f'schedule: 2026-01-01 {t}\nrepeat: "{rule.format(t=t, h=h, m=m)}"')
            names.append(name)
    w.run()
    start = datetime(2026, 1, 1, tzinfo=tz)
    end = datetime(2027, 1, 1, tzinfo=tz)
    cal = icalendar.Calendar.from_ical(feed(w.app))
    expanded: dict[str, list[datetime]] = {name: [] for name in names}
    for occurrence in recurring_ical_events.of(cal).between(start, end):
        uid = str(occurrence["UID"]).removesuffix("@plurspool")
        expanded[uid].append(occurrence.start.astimezone(UTC))
    for name in names:
        template = w.app.items.find(name, ("scheduled",))
        assert template.post is not None and template.post.repeat is not None
        assert template.due is not None
        ours = []
        for at in repeat.occurrences(template.post.repeat, template.due, tz):
            if at >= end:
                break
            ours.append(at)
        assert len(ours) >= 12, name
        assert sorted(expanded[name]) == ours, name
