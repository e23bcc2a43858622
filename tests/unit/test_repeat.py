"""Recurring rules (plurspool.repeat): RRULEs and English aliases, occurrences as wall-clock
times across both DST edges of 2026 in a table of zones, catching up after downtime, words."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from plurspool import repeat
from plurspool.errors import PostError

ZONES = [
    "Europe/Berlin",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "UTC",
]

# (zone, local day, wall time asked, wall time it happens at, UTC offset then): the 2026 DST
# edges. A time in a spring-forward gap moves forward by the gap; one in a fold is the first.
EDGES = [
    ("Europe/Berlin", date(2026, 3, 29), "02:30", "03:30", timedelta(hours=2)),
    ("Europe/Berlin", date(2026, 10, 25), "02:30", "02:30", timedelta(hours=2)),
    ("Australia/Lord_Howe", date(2026, 10, 4), "02:15", "02:45", timedelta(hours=11)),
    ("Australia/Lord_Howe", date(2026, 4, 5), "01:45", "01:45", timedelta(hours=11)),
    ("Pacific/Chatham", date(2026, 9, 27), "03:00", "04:00", timedelta(hours=13, minutes=45)),
    ("Pacific/Chatham", date(2026, 4, 5), "03:00", "03:00", timedelta(hours=13, minutes=45)),
]


def at(zone: str, text: str) -> datetime:
    """A local wall time ("2026-03-28 09:00") in `zone`, as an aware UTC instant (no DST edge)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("every day at 9am", "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"),
        ("every monday 9:00", "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"),
        ("every 2 weeks on friday 17:00", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;BYHOUR=17;BYMINUTE=0"),
        ("every month on the 1st at 10:00", "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=10;BYMINUTE=0"),
        ("Every  weekday at 8:30pm", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=20;BYMINUTE=30"),
        ("every monday and thursday at noon", "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=12;BYMINUTE=0"),
        ("every 3 days", "FREQ=DAILY;INTERVAL=3"),
        ("rrule:byday=mo;freq=weekly;interval=1", "FREQ=WEEKLY;BYDAY=MO"),
        ("FREQ=DAILY;COUNT=3;BYHOUR=9", "FREQ=DAILY;COUNT=3;BYHOUR=9"),
    ],
)
def test_rules_and_aliases_parse_to_one_canonical_rrule(text: str, rule: str) -> None:
    assert repeat.parse(text) == rule


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("every fortnight", "'fortnight' is not a day"),
        ("every day at 25:00", "not a time of day"),
        ("FREQ=MINUTELY", "FREQ=MINUTELY is not supported"),
        ("FREQ=DAILY;COUNT=2;UNTIL=20261231", "both COUNT and UNTIL"),
        ("FREQ=DAILY;BYHOUR=24", "not a valid RRULE"),
        ("FREQ=DAILY;FOO=1", "unknown RRULE part 'FOO'"),
        ("DTSTART=20260101;FREQ=DAILY", "takes no DTSTART"),
        ("BYDAY=MO", "has no FREQ"),
        ("every month on friday", "does not fit"),
        ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "never happens"),
    ],
)
def test_bad_rules_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(PostError) as caught:
        repeat.parse(text)
    assert says in caught.value.message
    assert caught.value.hint or "DTSTART" in caught.value.message or "COUNT" in says


@pytest.mark.parametrize("zone", ZONES)
def test_a_daily_rule_keeps_its_wall_clock_time_all_year(zone: str) -> None:
    tz = ZoneInfo(zone)
    start = at(zone, "2026-01-01 09:00")
    rule, first = repeat.first("every day at 9am", start, start, tz)
    assert first == start
    days = []
    for n, occurrence in enumerate(repeat.occurrences(rule, start, tz)):
        if n == 365:
            break
        local = occurrence.astimezone(tz)
        assert (local.hour, local.minute, local.second) == (9, 0, 0)
        days.append(local.date())
    assert days == [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]


@pytest.mark.parametrize(("zone", "day", "asked", "happens", "offset"), EDGES)
def test_dst_edges_gap_moves_forward_fold_takes_the_first(
    zone: str, day: date, asked: str, happens: str, offset: timedelta
) -> None:
    tz = ZoneInfo(zone)
    hour, minute = map(int, asked.split(":"))
    rule = repeat.parse(f"FREQ=DAILY;BYHOUR={hour};BYMINUTE={minute}")
    anchor = at(zone, f"{day - timedelta(days=3)} 12:00")
    rule = repeat.normalise(rule, anchor, tz)
    later = (o for o in repeat.occurrences(rule, anchor, tz) if o.astimezone(tz).date() >= day)
    on_day = [next(later), next(later)]
    local = on_day[0].astimezone(tz)
    assert (local.date(), f"{local:%H:%M}", local.utcoffset()) == (day, happens, offset)
    after = on_day[1].astimezone(tz)  # the day after: the time asked for again
    assert (after.date(), f"{after:%H:%M}") == (day + timedelta(days=1), asked)


def test_an_hourly_rule_over_a_gap_never_repeats_an_instant() -> None:
    tz = ZoneInfo("Europe/Berlin")
    start = at("Europe/Berlin", "2026-03-29 00:00")
    rule = repeat.normalise(repeat.parse("FREQ=HOURLY;COUNT=5"), start, tz)
    got = list(repeat.occurrences(rule, start, tz))
    assert [f"{o.astimezone(tz):%H:%M%z}" for o in got] == [
        "00:00+0100",
        "01:00+0100",
        "03:00+0200",  # 02:00 does not exist: moved forward to 03:00
        "04:00+0200",
        "05:00+0200",  # COUNT counts instants: 02:00 and 03:00 are one
    ]


def test_count_counts_the_start_and_skipped_dates() -> None:
    tz = ZoneInfo("Europe/Berlin")
    start = at("Europe/Berlin", "2026-12-24 09:00")
    rule, first = repeat.first("FREQ=DAILY;COUNT=3", start, start, tz, {date(2026, 12, 25)})
    assert rule == "FREQ=DAILY;UNTIL=20261226T080000Z;BYHOUR=9;BYMINUTE=0"
    got = list(repeat.occurrences(rule, first or start, tz, {date(2026, 12, 25)}))
    assert [o.astimezone(tz).day for o in got] == [24, 26]


def test_without_a_schedule_the_rule_starts_now_and_its_own_time_counts() -> None:
    tz = ZoneInfo("Europe/Berlin")
    now = at("Europe/Berlin", "2026-06-01 10:17:43")  # a Monday
    rule, first = repeat.first("every monday 9:00", None, now, tz)
    assert rule == "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"
    assert first == at("Europe/Berlin", "2026-06-08 09:00")
    rule, first = repeat.first("every day", None, now, tz)  # no time named: now's
    assert rule == "FREQ=DAILY;BYHOUR=10;BYMINUTE=17;BYSECOND=43"
    assert first == at("Europe/Berlin", "2026-06-02 10:17:43")


def test_a_schedule_is_the_first_occurrence_even_off_the_rule() -> None:
    tz = ZoneInfo("UTC")
    start = at("UTC", "2026-06-03 15:00")  # a Wednesday
    rule, first = repeat.first("every monday 9:00", start, start, tz)
    assert first == start
    assert repeat.next_after(rule, start, tz, start) == at("UTC", "2026-06-08 09:00")


def test_a_template_restarted_at_any_occurrence_gives_the_same_ones() -> None:
    tz = ZoneInfo("Europe/Berlin")
    start = at("Europe/Berlin", "2026-03-06 17:00")
    rule, _ = repeat.first("every 2 weeks on friday 17:00", start, start, tz)
    whole = list(islice(repeat.occurrences(rule, start, tz), 6))
    for n, anchor in enumerate(whole):
        assert list(islice(repeat.occurrences(rule, anchor, tz), 6 - n)) == whole[n:]


def test_after_downtime_only_the_latest_occurrence_within_max_lateness_goes_out() -> None:
    tz = ZoneInfo("UTC")
    rule = "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"
    anchor = at("UTC", "2026-05-01 09:00")
    plan = repeat.due(rule, anchor, tz, at("UTC", "2026-05-04 09:30"), timedelta(hours=1))
    assert plan.send == at("UTC", "2026-05-04 09:00")
    assert plan.skipped == tuple(at("UTC", f"2026-05-0{d} 09:00") for d in (1, 2, 3))
    assert plan.next == at("UTC", "2026-05-05 09:00")
    late = repeat.due(rule, anchor, tz, at("UTC", "2026-05-04 11:00"), timedelta(hours=1))
    assert late.send is None and len(late.skipped) == 4
    on_time = repeat.due(rule, anchor, tz, anchor, timedelta(hours=1))
    assert (on_time.send, on_time.skipped) == (anchor, ())


def test_until_ends_the_rule() -> None:
    tz = ZoneInfo("UTC")
    start = at("UTC", "2026-05-01 09:00")
    rule, _ = repeat.first("FREQ=DAILY;UNTIL=20260502T090000Z", start, start, tz)
    assert repeat.next_after(rule, start, tz, start) == at("UTC", "2026-05-02 09:00")
    assert repeat.next_after(rule, start, tz, at("UTC", "2026-05-02 09:00")) is None
    plan = repeat.due(rule, start, tz, at("UTC", "2026-05-02 09:00"), timedelta(hours=1))
    assert plan.next is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("every monday 9:00", "every Monday at 09:00"),
        ("every day at 9am", "every day at 09:00"),
        ("every 2 weeks on friday 17:00", "every 2 weeks on Friday at 17:00"),
        ("every month on the 1st at 10:00", "every month on the 1st at 10:00"),
        ("every weekday at 8:30", "every weekday at 08:30"),
        (
            "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24;BYHOUR=18;BYMINUTE=0",
            "every year on 24 December at 18:00",
        ),
        (
            "FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9;BYMINUTE=0",
            "FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9;BYMINUTE=0",
        ),
    ],
)
def test_the_rule_in_words(text: str, words: str) -> None:
    assert repeat.describe(repeat.parse(text)) == words


def test_occurrence_ids_name_the_utc_instant() -> None:
    when = at("Europe/Berlin", "2026-12-01 09:00")
    assert repeat.occurrence_id("weekly", when) == "weekly--20261201T080000Z"


def test_a_count_left_in_a_rule_counts_from_where_it_restarts() -> None:
    tz = ZoneInfo("UTC")
    start = at("UTC", "2026-05-01 09:00")
    got = list(repeat.occurrences("FREQ=DAILY;COUNT=3", start, tz, {date(2026, 5, 2)}))
    assert got == [start, at("UTC", "2026-05-03 09:00")]  # the skipped 2nd still counts
