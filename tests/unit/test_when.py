"""plurspool(1) TIME FORMATS: every form, in four zones, on and around the DST changes of 2026."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import plurspool.when
from plurspool.errors import ConfigError, TimeError
from plurspool.when import (
    echo,
    iso_local,
    iso_utc,
    local_zone,
    parse_absolute,
    parse_duration,
    parse_when,
    system_zone,
)
from tests.helpers import make_env, run_cli, write_config

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def wall(zone: str | ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """An aware instant from a local wall-clock time in `zone`."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def when(text: str, now: datetime, zone: str | ZoneInfo, **kwargs: object) -> datetime:
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    return parse_when(text, now=now, tz=tz, **kwargs)  # type: ignore[arg-type]


def refused(text: str, now: datetime, zone: str | ZoneInfo, **kwargs: object) -> TimeError:
    with pytest.raises(TimeError) as info:
        when(text, now, zone, **kwargs)
    return info.value


# --- ISO 8601 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    "text",
    [
        "2026-12-01T09:00:00+01:00",
        "2026-12-01T08:00:00Z",
        "2026-12-01 08:00Z",
        "2026-12-01t08:00:00z",
        "  2026-12-01T03:00:00-05:00  ",
    ],
)
def test_iso_with_offset_is_that_instant_in_any_zone(zone: str, text: str) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    result = when(text, now, zone)
    assert result == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert result.tzinfo is UTC


@pytest.mark.parametrize("zone", ZONES)
def test_iso_without_offset_is_local_wall_time(zone: str) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert when("2026-12-01T09:00:00", now, zone) == wall(zone, 2026, 12, 1, 9, 0)
    assert when("2026-12-01 09:00", now, zone) == wall(zone, 2026, 12, 1, 9, 0)


@pytest.mark.parametrize("zone", ZONES)
def test_iso_date_only_is_local_midnight(zone: str) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert when("2026-12-01", now, zone) == wall(zone, 2026, 12, 1, 0, 0)


@pytest.mark.parametrize(
    ("zone", "text", "before", "after"),
    [
        ("Europe/Berlin", "2026-03-29T02:30:00", "+01:00", "+02:00"),
        ("America/New_York", "2026-03-08 02:30", "-05:00", "-04:00"),
    ],
)
def test_nonexistent_local_time_refused(zone: str, text: str, before: str, after: str) -> None:
    error = refused(text, datetime(2026, 1, 1, tzinfo=UTC), zone)
    assert "does not exist" in error.message
    assert repr(text) in error.message
    assert zone in error.message
    # Both readings are offered, each written with its offset.
    assert before in error.hint and after in error.hint


@pytest.mark.parametrize(
    ("zone", "text", "first", "second"),
    [
        ("Europe/Berlin", "2026-10-25T02:30:00", "2026-10-25T02:30:00+02:00", "+01:00"),
        ("America/New_York", "2026-11-01 01:30", "2026-11-01T01:30:00-04:00", "-05:00"),
    ],
)
def test_ambiguous_local_time_refused(zone: str, text: str, first: str, second: str) -> None:
    error = refused(text, datetime(2026, 1, 1, tzinfo=UTC), zone)
    assert "happens twice" in error.message
    assert first in error.hint and second in error.hint


def test_ambiguous_time_with_offset_is_accepted() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    early = when("2026-10-25T02:30:00+02:00", now, BERLIN)
    late = when("2026-10-25T02:30:00+01:00", now, BERLIN)
    assert late - early == timedelta(hours=1)


def test_parse_absolute_accepts_only_iso() -> None:
    assert parse_absolute("2026-12-01T09:00:00+01:00", tz=BERLIN) == datetime(
        2026, 12, 1, 8, tzinfo=UTC
    )
    assert parse_absolute("2026-12-01T09:00:00", tz=NEW_YORK) == datetime(
        2026, 12, 1, 14, tzinfo=UTC
    )
    for text in ["tomorrow 9am", "2h", "now", "banana", "2026-12-01 9am"]:
        with pytest.raises(TimeError, match="not an absolute ISO 8601 time"):
            parse_absolute(text, tz=BERLIN)
    with pytest.raises(TimeError, match="happens twice"):
        parse_absolute("2026-10-25T02:30:00", tz=BERLIN)


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(minutes=90)),
        ("1h 30m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("in 2 hours", timedelta(hours=2)),
        ("in 90 minutes", timedelta(minutes=90)),
        ("2 hours from now", timedelta(hours=2)),
        ("+2h", timedelta(hours=2)),
        ("now + 2 hours", timedelta(hours=2)),
        ("now+2h", timedelta(hours=2)),
        ("  In 2 Hours ", timedelta(hours=2)),
        ("now", timedelta()),
        ("NOW", timedelta()),
    ],
)
def test_durations_from_now(zone: str, text: str, delta: timedelta) -> None:
    now = datetime(2026, 6, 1, 12, 34, 56, 789, tzinfo=UTC)
    assert when(text, now, zone) == now + delta


@pytest.mark.parametrize(
    ("zone", "now_wall", "then_wall"),
    [
        # Spring forward: 24 h later the wall clock shows one hour more.
        ("Europe/Berlin", (2026, 3, 28, 12, 0), (2026, 3, 29, 13, 0)),
        ("America/New_York", (2026, 3, 7, 12, 0), (2026, 3, 8, 13, 0)),
        # Fall back: one hour less.
        ("Europe/Berlin", (2026, 10, 24, 12, 0), (2026, 10, 25, 11, 0)),
        ("America/New_York", (2026, 10, 31, 12, 0), (2026, 11, 1, 11, 0)),
    ],
)
def test_one_day_across_dst_is_24_hours_elapsed(
    zone: str, now_wall: tuple[int, ...], then_wall: tuple[int, ...]
) -> None:
    now = wall(zone, *now_wall)
    result = when("1d", now, zone)
    assert result - now == timedelta(hours=24)
    assert result == wall(zone, *then_wall)


@given(
    n=st.integers(min_value=1, max_value=10_000_000),
    now=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(ZONES),
)
def test_minutes_are_exact_elapsed_time(n: int, now: datetime, zone: str) -> None:
    assert when(f"{n}m", now, zone) == now + timedelta(minutes=n)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(minutes=90)),
        ("2 hours", timedelta(hours=2)),
        ("1 hour 30 minutes", timedelta(minutes=90)),
        ("10mins", timedelta(minutes=10)),
    ],
)
def test_parse_duration(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("90", "has no unit"),
        ("0m", "is zero"),
        ("0h0m", "is zero"),
        ("-5m", "is negative"),
        ("", "empty"),
        ("5 parsecs", "not a duration"),
        ("1.5h", "not a duration"),
        ("2 months", "not a duration"),
        ("h", "not a duration"),
        ("9" * 30 + "d", "too long"),
    ],
)
def test_parse_duration_refuses(text: str, why: str) -> None:
    with pytest.raises(TimeError, match=why) as info:
        parse_duration(text)
    assert info.value.hint


# --- reschedule-relative ----------------------------------------------------------------------


def test_reschedule_relative_to_current_time() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    current = datetime(2026, 6, 2, 9, tzinfo=UTC)
    assert when("+1h", now, BERLIN, current=current) == current + timedelta(hours=1)
    assert when("-30m", now, BERLIN, current=current) == current - timedelta(minutes=30)
    assert when("- 30m", now, BERLIN, current=current) == current - timedelta(minutes=30)
    # Forms without a leading sign stay relative to now even in reschedule.
    assert when("now + 1h", now, BERLIN, current=current) == now + timedelta(hours=1)
    assert when("2h", now, BERLIN, current=current) == now + timedelta(hours=2)


def test_minus_without_current_refused() -> None:
    error = refused("-30m", datetime(2026, 6, 1, 12, tzinfo=UTC), BERLIN)
    assert "reschedule" in error.hint


def test_reschedule_into_the_past_refused_unless_allowed() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    current = now + timedelta(minutes=10)
    error = refused("-30m", now, BERLIN, current=current)
    assert "in the past" in error.message
    assert "2026-06-01 13:40:00 CEST" in error.message
    past = when("-30m", now, BERLIN, current=current, allow_past=True)
    assert past == now - timedelta(minutes=20)


def test_plus_without_current_is_from_now() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert when("+2h", now, BERLIN) == now + timedelta(hours=2)


# --- wall-clock phrases -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "evening", "offset_after"),
    [
        ("Europe/Berlin", (2026, 3, 28, 20, 0), timedelta(hours=2)),
        ("Europe/Berlin", (2026, 10, 24, 20, 0), timedelta(hours=1)),
        ("America/New_York", (2026, 3, 7, 20, 0), timedelta(hours=-4)),
        ("America/New_York", (2026, 10, 31, 20, 0), timedelta(hours=-5)),
    ],
)
def test_tomorrow_9am_before_dst_change_is_9_on_the_wall(
    zone: str, evening: tuple[int, ...], offset_after: timedelta
) -> None:
    now = wall(zone, *evening)
    result = when("tomorrow 9am", now, zone)
    local = result.astimezone(ZoneInfo(zone))
    assert local.date() == now.date() + timedelta(days=1)
    assert (local.hour, local.minute) == (9, 0)
    assert local.utcoffset() == offset_after
    assert local.utcoffset() != now.utcoffset()


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    ("now_wall", "expected_wall"),
    [
        ((2026, 6, 10, 8, 0), (2026, 6, 10, 9, 0)),  # still ahead: today
        ((2026, 6, 10, 9, 0), (2026, 6, 10, 9, 0)),  # exactly now: today
        ((2026, 6, 10, 10, 0), (2026, 6, 11, 9, 0)),  # passed: tomorrow
        ((2026, 12, 31, 10, 0), (2027, 1, 1, 9, 0)),  # year end: next day, not next year
        ((2026, 2, 28, 10, 0), (2026, 3, 1, 9, 0)),  # non-leap February
    ],
)
def test_bare_9am_is_the_next_9am(
    zone: str, now_wall: tuple[int, ...], expected_wall: tuple[int, ...]
) -> None:
    now = wall(zone, *now_wall)
    for text in ["9am", "9 AM", "at 9am", "09:00", "9:00am", "9 a.m."]:
        assert when(text, now, zone) == wall(zone, *expected_wall), text


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    ("text", "expected_wall"),
    [
        ("noon", (2026, 6, 10, 12, 0)),
        ("at noon", (2026, 6, 10, 12, 0)),
        ("teatime", (2026, 6, 10, 16, 0)),
        ("midnight", (2026, 6, 11, 0, 0)),
        ("14:30", (2026, 6, 10, 14, 30)),
        ("9:15pm", (2026, 6, 10, 21, 15)),
        ("12am", (2026, 6, 11, 0, 0)),
        ("12pm", (2026, 6, 10, 12, 0)),
        ("tomorrow noon", (2026, 6, 11, 12, 0)),
        ("tomorrow teatime", (2026, 6, 11, 16, 0)),
        ("tomorrow 9am", (2026, 6, 11, 9, 0)),
        ("next friday 14:00", (2026, 6, 12, 14, 0)),
        ("friday", (2026, 6, 12, 0, 0)),
        ("dec 24 18:00", (2026, 12, 24, 18, 0)),
        ("2026-12-01 9am", (2026, 12, 1, 9, 0)),
    ],
)
def test_wall_clock_phrases(zone: str, text: str, expected_wall: tuple[int, ...]) -> None:
    now = wall(zone, 2026, 6, 10, 10, 0)  # a Wednesday
    assert when(text, now, zone) == wall(zone, *expected_wall)


def test_weekday_on_that_weekday_is_a_week_ahead() -> None:
    now = wall(BERLIN, 2026, 6, 12, 10, 0)  # a Friday
    assert when("friday 11am", now, BERLIN) == wall(BERLIN, 2026, 6, 19, 11, 0)
    assert when("this friday 11am", now, BERLIN) == wall(BERLIN, 2026, 6, 12, 11, 0)
    assert when("today 11am", now, BERLIN) == wall(BERLIN, 2026, 6, 12, 11, 0)


def test_noon_after_noon_is_tomorrow() -> None:
    now = wall(BERLIN, 2026, 6, 10, 13, 0)
    assert when("noon", now, BERLIN) == wall(BERLIN, 2026, 6, 11, 12, 0)


def test_phrase_with_own_zone_is_that_instant() -> None:
    now = wall(BERLIN, 2026, 6, 10, 10, 0)
    assert when("tomorrow 9am utc", now, BERLIN) == datetime(2026, 6, 11, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "now", "text", "expected"),
    [
        # Berlin at 15:30 local (14:30 UTC): 15:00 UTC is half an hour ahead, today.
        ("Europe/Berlin", (2026, 1, 15, 14, 30), "15:00 UTC", (2026, 1, 15, 15, 0)),
        ("Europe/Berlin", (2026, 1, 15, 15, 0), "15:00 UTC", (2026, 1, 15, 15, 0)),  # exactly now
        ("Europe/Berlin", (2026, 1, 15, 15, 1), "15:00 UTC", (2026, 1, 16, 15, 0)),  # just passed
        # 00:30 in Berlin is still 23:30 of the day before in UTC.
        ("Europe/Berlin", (2026, 1, 14, 23, 30), "23:45 UTC", (2026, 1, 14, 23, 45)),
        ("Europe/Berlin", (2026, 1, 14, 23, 30), "23:00 UTC", (2026, 1, 15, 23, 0)),
        ("Europe/Berlin", (2026, 1, 14, 23, 30), "00:15 UTC", (2026, 1, 15, 0, 15)),
        # In summer (CEST, +02:00) 15:30 local is 14:30 in +01:00 and in CET.
        ("Europe/Berlin", (2026, 6, 10, 13, 30), "15:00 +01:00", (2026, 6, 10, 14, 0)),
        ("Europe/Berlin", (2026, 6, 10, 13, 30), "15:00 CET", (2026, 6, 10, 14, 0)),
        ("Europe/Berlin", (2026, 6, 10, 13, 30), "3pm +0100", (2026, 6, 10, 14, 0)),
        ("Europe/Berlin", (2026, 6, 10, 14, 1), "15:00 +01:00", (2026, 6, 11, 14, 0)),
        # A zone behind the local one: 21:30 in Berlin is 15:30 EST.
        ("Europe/Berlin", (2026, 1, 15, 20, 30), "15:00 EST", (2026, 1, 16, 20, 0)),
        ("Europe/Berlin", (2026, 1, 15, 20, 30), "4pm EST", (2026, 1, 15, 21, 0)),
        # Every way of writing a time of day.
        ("Europe/Berlin", (2026, 1, 15, 14, 30), "3pm UTC", (2026, 1, 15, 15, 0)),
        ("Europe/Berlin", (2026, 1, 15, 14, 30), "at 15:00 UTC", (2026, 1, 15, 15, 0)),
        ("Europe/Berlin", (2026, 1, 15, 14, 30), "15:00:30 utc", (2026, 1, 15, 15, 0, 30)),
        ("Europe/Berlin", (2026, 1, 15, 14, 30), "15:00 Z", (2026, 1, 15, 15, 0)),
        ("Europe/Berlin", (2026, 1, 15, 14, 30), "15:00 GMT", (2026, 1, 15, 15, 0)),
        ("Europe/Berlin", (2026, 1, 15, 11, 30), "noon UTC", (2026, 1, 15, 12, 0)),
        ("Europe/Berlin", (2026, 1, 15, 14, 30), "teatime UTC", (2026, 1, 15, 16, 0)),
        ("Europe/Berlin", (2026, 1, 14, 23, 30), "midnight UTC", (2026, 1, 15, 0, 0)),
        # Kolkata (+05:30) at 17:00 local.
        ("Asia/Kolkata", (2026, 6, 10, 11, 30), "12:00 UTC", (2026, 6, 10, 12, 0)),
        ("Asia/Kolkata", (2026, 6, 10, 12, 30), "12:00 UTC", (2026, 6, 11, 12, 0)),
        ("Asia/Kolkata", (2026, 6, 10, 11, 30), "13:00 +01:00", (2026, 6, 10, 12, 0)),
        # Sao Paulo (-03:00) at 22:00 local is already 01:00 of the next day in UTC.
        ("America/Sao_Paulo", (2026, 6, 11, 1, 0), "02:00 UTC", (2026, 6, 11, 2, 0)),
        ("America/Sao_Paulo", (2026, 6, 11, 1, 0), "00:30 UTC", (2026, 6, 12, 0, 30)),
        ("America/Sao_Paulo", (2026, 6, 10, 14, 30), "15:00 UTC", (2026, 6, 10, 15, 0)),
        # Chatham (+12:45 in June): 08:45 on the 11th there is 20:00 on the 10th in UTC.
        ("Pacific/Chatham", (2026, 6, 10, 20, 0), "21:00 UTC", (2026, 6, 10, 21, 0)),
        ("Pacific/Chatham", (2026, 6, 10, 20, 0), "19:00 UTC", (2026, 6, 11, 19, 0)),
        ("Pacific/Chatham", (2026, 6, 10, 20, 0), "9pm +00:00", (2026, 6, 10, 21, 0)),
        ("UTC", (2026, 6, 10, 14, 30), "15:00 UTC", (2026, 6, 10, 15, 0)),
        ("UTC", (2026, 6, 10, 15, 30), "15:00 UTC", (2026, 6, 11, 15, 0)),
        ("UTC", (2026, 6, 10, 14, 30), "15:00 +01:00", (2026, 6, 11, 14, 0)),
    ],
)
def test_time_of_day_with_its_own_zone_is_the_next_one_in_that_zone(
    zone: str, now: tuple[int, ...], text: str, expected: tuple[int, ...]
) -> None:
    assert when(text, utc(*now), zone) == utc(*expected)


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        ("Europe/Berlin", (2026, 1, 15, 14, 30), (2026, 1, 16, 14, 0)),  # 15:30 local
        ("Europe/Berlin", (2026, 1, 14, 23, 30), (2026, 1, 15, 14, 0)),  # 00:30 local
        ("Asia/Kolkata", (2026, 6, 10, 11, 30), (2026, 6, 11, 9, 30)),  # 17:00 local
        ("America/Sao_Paulo", (2026, 6, 11, 1, 0), (2026, 6, 11, 18, 0)),  # 22:00 local
        ("Pacific/Chatham", (2026, 6, 10, 20, 0), (2026, 6, 11, 2, 15)),  # 08:45 local
        ("UTC", (2026, 6, 10, 14, 30), (2026, 6, 10, 15, 0)),
    ],
)
def test_time_of_day_without_a_zone_is_the_next_one_on_the_local_clock(
    zone: str, now: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    for text in ["15:00", "3pm", "at 15:00"]:
        assert when(text, utc(*now), zone) == utc(*expected), text


def test_time_of_day_in_a_named_zone_is_not_refused_for_a_local_dst_gap() -> None:
    # 01:30 UTC on 29 March is 03:30 CEST in Berlin: the clocks skip 02:00-03:00 there, not
    # in UTC. The same wall time without a zone is still refused.
    now = wall(BERLIN, 2026, 3, 29, 0, 30)
    assert when("01:30 UTC", now, BERLIN) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert "does not exist" in refused("2:30am", now, BERLIN).message


@pytest.mark.parametrize("text", ["25:00 UTC", "13pm UTC"])
def test_impossible_time_of_day_with_a_zone_refused(text: str) -> None:
    error = refused(text, wall(BERLIN, 2026, 6, 10, 10, 0), BERLIN)
    assert repr(text) in error.message
    assert "not a time of day" in error.message
    assert "21:30" in error.hint


def test_bare_time_in_a_dst_gap_refused() -> None:
    now = wall(BERLIN, 2026, 3, 28, 23, 0)
    error = refused("2:30am", now, BERLIN)
    assert "does not exist" in error.message
    error = refused("tomorrow 2:30am", wall(BERLIN, 2026, 3, 28, 12, 0), BERLIN)
    assert "does not exist" in error.message


def test_bare_time_in_a_dst_fold_refused() -> None:
    now = wall(NEW_YORK, 2026, 10, 31, 23, 0)
    error = refused("1:30am", now, NEW_YORK)
    assert "happens twice" in error.message
    assert "-04:00" in error.hint and "-05:00" in error.hint


@pytest.mark.parametrize("zone", ZONES)
def test_today_9am_after_9_is_past(zone: str) -> None:
    now = wall(zone, 2026, 6, 10, 10, 0)
    error = refused("today 9am", now, zone)
    assert "2026-06-10 09:00:00" in error.message
    assert "in the past" in error.message


def test_past_time_error_names_what_was_understood() -> None:
    now = wall(BERLIN, 2026, 11, 28, 10, 0)
    error = refused("yesterday 9am", now, BERLIN)
    assert error.message == ("'yesterday 9am' is Fri 2026-11-27 09:00:00 CET, which is in the past")
    assert "tomorrow 9am" in error.hint
    assert when("yesterday 9am", now, BERLIN, allow_past=True) == wall(BERLIN, 2026, 11, 27, 9, 0)


def test_past_iso_refused() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    error = refused("2026-05-31T23:59:59Z", now, "UTC")
    assert "in the past" in error.message


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("banana", "could not understand"),
        ("", "no time given"),
        ("   ", "no time given"),
        ("9", "only a number"),
        ("2026", "only a number"),
        ("1764579600", "only a number"),
        ("tomorrow at 9", "alone is not a time of day"),
        ("tomorrow 9", "alone is not a time of day"),
        ("at 9", "alone is not a time of day"),
        ("may", "names a month"),
        ("dec 2026", "names a month"),
        ("a", "names a month"),
        ("13pm", "hour is 1 to 12"),
        ("25:00", "not a time of day"),
        ("tomorrow banana", "could not understand"),
        ("friday 13 march", "contradicts the weekday"),
        ("now + banana", "expected a duration"),
        ("+0m", "is zero"),
        ("2026-13-45", "could not understand"),
    ],
)
def test_garbage_refused(text: str, why: str) -> None:
    now = wall(BERLIN, 2026, 6, 10, 10, 0)
    error = refused(text, now, BERLIN)
    assert why in error.message
    assert error.hint


# --- random: ----------------------------------------------------------------------------------


def test_random_from_now_within_bounds() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    seen = set()
    for seed in range(200):
        result = when("random:10m-20m", now, BERLIN, rng=random.Random(seed))
        assert timedelta(minutes=10) <= result - now <= timedelta(minutes=20)
        seen.add(result)
    assert len(seen) > 100  # actually random, not a constant


def test_random_chains_after_latest() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    latest = now + timedelta(hours=5)
    for seed in range(50):
        result = when("random:1m-2m", now, BERLIN, latest=latest, rng=random.Random(seed))
        assert timedelta(minutes=1) <= result - latest <= timedelta(minutes=2)


def test_random_latest_in_the_past_uses_now() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    latest = now - timedelta(days=1)
    result = when("random:30s-1m", now, BERLIN, latest=latest, rng=random.Random(7))
    assert timedelta(seconds=30) <= result - now <= timedelta(minutes=1)


def test_random_is_reproducible_with_a_seed() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    a = when("random:10m-20m", now, BERLIN, rng=random.Random(42))
    b = when("Random: 10m - 20m", now, BERLIN, rng=random.Random(42))
    assert a == b


def test_random_without_rng_uses_system_randomness() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    result = when("random:10m-20m", now, BERLIN)
    assert timedelta(minutes=10) <= result - now <= timedelta(minutes=20)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("random:10s-20m", "at least 30s"),
        ("random:1m-31d", "at most 30d"),
        ("random:20m-10m", "less than MAX"),
        ("random:10m-10m", "less than MAX"),
        ("random:10m", "random:MIN-MAX"),
        ("random:10-20", "no unit"),
        ("random:", "random:MIN-MAX"),
        ("random:1m-2m-3m", "random:MIN-MAX"),
    ],
)
def test_random_invalid_bounds_refused(text: str, why: str) -> None:
    error = refused(text, datetime(2026, 6, 1, tzinfo=UTC), BERLIN)
    assert why in error.message
    assert "random:10m-20m" in error.hint


# --- output -----------------------------------------------------------------------------------


def test_echo_shows_local_and_utc() -> None:
    at = datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert echo(at, BERLIN) == "Tue 2026-12-01 09:00:00 CET (+01:00) = 2026-12-01T08:00:00Z"
    assert echo(at, NEW_YORK) == "Tue 2026-12-01 03:00:00 EST (-05:00) = 2026-12-01T08:00:00Z"
    assert echo(at, ZoneInfo("UTC")) == (
        "Tue 2026-12-01 08:00:00 UTC (+00:00) = 2026-12-01T08:00:00Z"
    )


def test_iso_output_drops_microseconds() -> None:
    at = datetime(2026, 12, 1, 8, 0, 0, 999_999, tzinfo=UTC)
    assert iso_utc(at) == "2026-12-01T08:00:00Z"
    assert iso_local(at, BERLIN) == "2026-12-01T09:00:00+01:00"
    assert iso_local(at, ZoneInfo("Asia/Tokyo")) == "2026-12-01T17:00:00+09:00"


@pytest.mark.parametrize("zone", ZONES)
def test_iso_local_round_trips(zone: str) -> None:
    tz = ZoneInfo(zone)
    at = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # inside Berlin's repeated hour
    assert parse_absolute(iso_local(at, tz), tz=tz) == at
    assert parse_absolute(iso_utc(at), tz=tz) == at


# --- zones ------------------------------------------------------------------------------------


def test_local_zone_by_name() -> None:
    zone = local_zone("Asia/Tokyo")
    assert isinstance(zone, ZoneInfo) and zone.key == "Asia/Tokyo"


def test_local_zone_unknown_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        local_zone("Mars/Olympus_Mons")
    assert "timezone" in info.value.message
    assert "Europe/Berlin" in info.value.hint


def _system(tmp_path: Path, environ: dict[str, str]) -> ZoneInfo:
    zone = system_zone(environ, tmp_path / "localtime", tmp_path / "timezone")
    assert isinstance(zone, ZoneInfo)
    return zone


@pytest.mark.parametrize(
    ("tz_env", "key"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        (":Asia/Tokyo", "Asia/Tokyo"),
        ("", "UTC"),
    ],
)
def test_system_zone_from_tz_variable(tmp_path: Path, tz_env: str, key: str) -> None:
    assert _system(tmp_path, {"TZ": tz_env}).key == key


def test_system_zone_from_tz_path(tmp_path: Path) -> None:
    # The tz database key is taken from the path after "zoneinfo/", so the name is kept.
    zoneinfo_dir = tmp_path / "share" / "zoneinfo" / "America"
    assert _system(tmp_path, {"TZ": f":{zoneinfo_dir}/New_York"}).key == "America/New_York"


def test_system_zone_bad_tz_variable_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TZ="):
        system_zone({"TZ": "Nowhere/Special"}, tmp_path / "localtime", tmp_path / "tz")


def test_system_zone_from_localtime_link(tmp_path: Path) -> None:
    target = tmp_path / "usr" / "share" / "zoneinfo" / "posix" / "Asia" / "Tokyo"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")  # only the link's name is read
    (tmp_path / "localtime").symlink_to(target)
    assert _system(tmp_path, {}).key == "Asia/Tokyo"


def test_system_zone_from_etc_timezone(tmp_path: Path) -> None:
    (tmp_path / "timezone").write_text("America/New_York\n")
    assert _system(tmp_path, {}).key == "America/New_York"


def test_system_zone_defaults_to_utc(tmp_path: Path) -> None:
    assert _system(tmp_path, {}).key == "UTC"


# --- import cost ------------------------------------------------------------------------------


def _run_python(code: str, tz: str | None = None) -> str:
    root = str(Path(plurspool.when.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k not in ("TZ", "PYTHONPATH")}
    env["PYTHONPATH"] = root
    if tz is not None:
        env["TZ"] = tz
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_import_does_not_load_dateparser() -> None:
    code = (
        "import sys\n"
        "from datetime import datetime, UTC\n"
        "from zoneinfo import ZoneInfo\n"
        "import plurspool.when as w\n"
        "print('dateparser' in sys.modules)\n"
        "now = datetime(2026, 6, 1, tzinfo=UTC)\n"
        "for text in ['2026-12-01T09:00Z', '2026-12-01 09:00', '2h', 'in 2 hours', '+1h',\n"
        "             'now', '9am', 'noon', 'random:10m-20m']:\n"
        "    w.parse_when(text, now=now, tz=ZoneInfo('Europe/Berlin'))\n"
        "print('dateparser' in sys.modules)\n"
    )
    assert _run_python(code).split() == ["False", "False"]


def test_phrases_do_not_depend_on_the_process_zone() -> None:
    code = (
        "from datetime import datetime\n"
        "from zoneinfo import ZoneInfo\n"
        "from plurspool.when import parse_when, iso_utc\n"
        "tz = ZoneInfo('Europe/Berlin')\n"
        "now = datetime(2026, 3, 28, 20, 0, tzinfo=tz)\n"
        "print(iso_utc(parse_when('tomorrow 9am', now=now, tz=tz)))\n"
    )
    for process_zone in ["Asia/Tokyo", "America/New_York", "UTC"]:
        assert _run_python(code, tz=process_zone) == "2026-03-29T07:00:00Z"


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kolkata"])
def test_post_with_a_utc_time_of_day_still_ahead_in_utc_is_queued_for_today(
    tmp_path: Path, zone: str
) -> None:
    """`plurspool post -s "HH:MM UTC"` where the local clock (ahead of UTC by an hour or more)
    has passed HH:MM but UTC has not: it is queued for that instant, about 30 minutes from
    now, never a day later. The time named is always ahead, so the answer does not depend on
    when the test runs."""
    env = make_env(tmp_path / "env")
    env["TZ"] = zone
    write_config(env, f'timezone = "{zone}"\n')
    target = (datetime.now(UTC) + timedelta(minutes=30)).replace(second=0, microsecond=0)
    run = run_cli(["post", "-s", f"{target:%H:%M} UTC", "--json", "hello"], env)
    assert run.code == 0, run.err
    assert run.json()["scheduled_at"] == iso_utc(target)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Pacific/Auckland", "UTC"])
def test_today_and_tomorrow_with_a_time_read_as_dateparser_reads_them(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The common phrases are read without dateparser; they must mean what it would say."""
    phrases = [
        "tomorrow 9am",
        "tomorrow at 14:30",
        "9am tomorrow",
        "at 9:15pm tomorrow",
        "today 11pm",
        "tomorrow noon",
        "tomorrow midnight",
        "tomorrow 12am",
        "tomorrow 2:30am",
    ]

    def outcome(text: str, now: datetime) -> datetime | str:
        try:
            return when(text, now, zone)
        except TimeError as exc:
            return exc.message

    # The evening before Europe's spring-forward night (2:30 does not exist there), and a
    # summer morning.
    nows = [wall(zone, 2026, 6, 10, 10, 0), wall(zone, 2026, 3, 28, 23, 30)]
    ours = {(t, n): outcome(t, n) for t in phrases for n in nows}
    monkeypatch.setattr(plurspool.when, "_day_and_time", lambda *a, **k: None)
    theirs = {(t, n): outcome(t, n) for t in phrases for n in nows}
    assert ours == theirs
    assert any(isinstance(v, str) and "does not exist" in v for v in ours.values()) == (
        zone == "Europe/Berlin"
    )


@pytest.mark.parametrize(
    ("seconds", "coarse", "text"),
    [
        (45, False, "45s"),
        (303, False, "5m03s"),
        (7500, False, "2h05m"),
        (86400, False, "1d0h"),
        (273600, False, "3d4h"),
        (45, True, "45s"),
        (303, True, "5m"),
        (7500, True, "2h05m"),
        (86400, True, "1d"),
        (273600, True, "3d4h"),
    ],
)
def test_one_duration_formatter_speaks_as_lateness_and_list_did(
    seconds: int, coarse: bool, text: str
) -> None:
    """How late a post is (precise: max_lateness refusals) and how far off it is (coarse:
    `list`'s `in 5m`) come from one formatter, each as it was written before."""
    assert plurspool.when.duration(seconds, coarse=coarse) == text
