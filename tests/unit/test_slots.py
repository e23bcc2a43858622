"""Queue slots (plurspool/slots.py): rules read from text, and their instants across DST in a
table of zones over both edges of 2026 (plurspool-config(5), QUEUES)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from plurspool.slots import SlotError, Slots, parse_days, parse_rules, window_slots


def local(slots: Slots, start: str, end: str) -> list[str]:
    """The slots between two UTC instants, as local ISO times with their offsets."""
    a = datetime.fromisoformat(start).replace(tzinfo=UTC)
    b = datetime.fromisoformat(end).replace(tzinfo=UTC)
    return [t.astimezone(slots.tz).isoformat(timespec="minutes") for t in slots.between(a, b)]


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("sat,sun", {5, 6}),
        ("fri-mon", {4, 5, 6, 0}),
        ("daily", set(range(7))),
        ("Mon,wed-thu", {0, 2, 3}),
        ("sun-sun", {6}),
        ("tuesday", {1}),
    ],
)
def test_days(text: str, days: set[int]) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([], "the slot list is empty"),
        (["mon-fri"], "'mon-fri' is not DAYS HH:MM"),
        (["funday 09:00"], "'funday' in 'funday' is not a day of the week"),
        (["mon-fri 9"], "'9' is not a time of day"),
        (["daily 24:00"], "'24:00' is not a time of day"),
        (["mon-xyz 10:00"], "'xyz' in 'mon-xyz' is not a day of the week"),
    ],
)
def test_bad_rules_say_what(rules: list[str], message: str) -> None:
    with pytest.raises(SlotError) as caught:
        parse_rules(rules)
    assert caught.value.message == message
    assert caught.value.hint


def test_window_spreads_per_day_from_start_to_end() -> None:
    times = [s.at for s in window_slots("15:00-21:00", 3)]
    assert times == [time(15), time(18), time(21)]
    assert [s.at for s in window_slots("15:00-21:00", 1)] == [time(15)]
    assert [s.at for s in window_slots("09:00-10:00", 7)][:3] == [
        time(9),
        time(9, 10),
        time(9, 20),
    ]
    with pytest.raises(SlotError, match="ends before it starts"):
        window_slots("21:00-15:00", 2)
    with pytest.raises(SlotError, match="per_day 0 is out of range"):
        window_slots("15:00-21:00", 0)


def test_weekday_rules_in_order() -> None:
    slots = Slots(parse_rules(["mon-fri 09:00", "sat,sun 11:30", "fri-mon 18:00"]), UTC)
    # 2026-12-04 is a Friday.
    assert local(slots, "2026-12-04T00:00", "2026-12-08T00:00") == [
        "2026-12-04T09:00+00:00",
        "2026-12-04T18:00+00:00",
        "2026-12-05T11:30+00:00",
        "2026-12-05T18:00+00:00",
        "2026-12-06T11:30+00:00",
        "2026-12-06T18:00+00:00",
        "2026-12-07T09:00+00:00",
        "2026-12-07T18:00+00:00",
    ]


def test_after_is_strict_and_endless() -> None:
    slots = Slots(parse_rules(["daily 09:00"]), UTC)
    it = slots.after(datetime(2026, 1, 1, 9, tzinfo=UTC))
    assert [next(it) for _ in range(3)] == [datetime(2026, 1, d, 9, tzinfo=UTC) for d in (2, 3, 4)]


# zone, the day of the change, the slot's wall time, and the local instant it must be
DST_TABLE = [
    # Europe/Berlin: 2026-03-29 02:00 → 03:00; 2026-10-25 03:00 → 02:00
    ("Europe/Berlin", "2026-03-29", "02:30", "2026-03-29T03:30+02:00"),
    ("Europe/Berlin", "2026-03-29", "01:59", "2026-03-29T01:59+01:00"),
    ("Europe/Berlin", "2026-03-29", "03:00", "2026-03-29T03:00+02:00"),
    ("Europe/Berlin", "2026-10-25", "02:30", "2026-10-25T02:30+02:00"),
    ("Europe/Berlin", "2026-10-25", "03:00", "2026-10-25T03:00+01:00"),
    # America/Sao_Paulo: no DST since 2019, the old edges are plain days
    ("America/Sao_Paulo", "2026-11-01", "00:30", "2026-11-01T00:30-03:00"),
    ("America/Sao_Paulo", "2026-02-15", "23:30", "2026-02-15T23:30-03:00"),
    # Australia/Lord_Howe: a 30-minute DST; 2026-04-05 02:00 → 01:30, 2026-10-04 02:00 → 02:30
    ("Australia/Lord_Howe", "2026-04-05", "01:45", "2026-04-05T01:45+11:00"),
    ("Australia/Lord_Howe", "2026-04-05", "02:00", "2026-04-05T02:00+10:30"),
    ("Australia/Lord_Howe", "2026-10-04", "02:15", "2026-10-04T02:45+11:00"),
    ("Australia/Lord_Howe", "2026-10-04", "02:30", "2026-10-04T02:30+11:00"),
    # Pacific/Chatham: +13:45/+12:45; 2026-04-05 03:45 → 02:45, 2026-09-27 02:45 → 03:45
    ("Pacific/Chatham", "2026-04-05", "03:00", "2026-04-05T03:00+13:45"),
    ("Pacific/Chatham", "2026-04-05", "03:45", "2026-04-05T03:45+12:45"),
    ("Pacific/Chatham", "2026-09-27", "03:00", "2026-09-27T04:00+13:45"),
    ("Pacific/Chatham", "2026-09-27", "02:44", "2026-09-27T02:44+12:45"),
    # Asia/Kolkata: +05:30 all year
    ("Asia/Kolkata", "2026-03-29", "02:30", "2026-03-29T02:30+05:30"),
    ("Asia/Kolkata", "2026-10-25", "02:30", "2026-10-25T02:30+05:30"),
    ("UTC", "2026-03-29", "02:30", "2026-03-29T02:30+00:00"),
    ("UTC", "2026-10-25", "02:30", "2026-10-25T02:30+00:00"),
]


@pytest.mark.parametrize(("zone", "day", "wall", "expected"), DST_TABLE)
def test_slot_instants_across_dst(zone: str, day: str, wall: str, expected: str) -> None:
    """A gap moves a slot forward by its length, a fold takes the first instant."""
    tz = ZoneInfo(zone)
    slots = Slots(parse_rules([f"daily {wall}"]), tz)
    d = date.fromisoformat(day)
    (got,) = slots.on(d)
    assert got.astimezone(tz).isoformat(timespec="minutes") == expected
    want = datetime.fromisoformat(expected)
    # The same instant walking from the day before: one slot a day, none lost or doubled.
    start = datetime(d.year, d.month, d.day, tzinfo=UTC) - timedelta(days=2)
    walked = slots.between(start, start + timedelta(days=4))
    assert want in walked
    assert walked == sorted(set(walked))
    # One a day: consecutive slots a day apart, give or take the change and the gap.
    assert all(
        timedelta(hours=22) < b - a < timedelta(hours=26) for a, b in itertools.pairwise(walked)
    )


def test_two_wall_times_that_meet_in_a_gap_are_one_slot() -> None:
    slots = Slots(
        parse_rules(["daily 02:30", "daily 03:15", "daily 03:30"]), ZoneInfo("Europe/Berlin")
    )
    assert local(slots, "2026-03-28T12:00", "2026-03-29T12:00") == [
        "2026-03-29T03:15+02:00",
        "2026-03-29T03:30+02:00",
    ]
    # In the fold every wall time happens once more, but is a slot once: at its first instant.
    assert local(slots, "2026-10-24T12:00", "2026-10-25T12:00") == [
        "2026-10-25T02:30+02:00",
        "2026-10-25T03:15+01:00",
        "2026-10-25T03:30+01:00",
    ]


def test_window_across_the_gap_keeps_each_wall_time() -> None:
    slots = Slots(window_slots("01:00-04:00", 4), ZoneInfo("Europe/Berlin"))
    assert local(slots, "2026-03-28T23:00", "2026-03-29T12:00") == [
        "2026-03-29T01:00+01:00",
        "2026-03-29T03:00+02:00",
        "2026-03-29T04:00+02:00",
    ]
