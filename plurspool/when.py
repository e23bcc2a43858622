"""Text → aware UTC datetime (plurspool(1), TIME FORMATS), and back to text for echoing and files.

The only module that uses dateparser, and only inside `_parse_natural`: ISO 8601, durations,
`now`, bare times of day and `random:` are handled here without it, so they stay fast and exact.

Rules a user will notice:

- Durations (`30m`, `in 2 hours`, `+2h`, `now + 2 hours`) are exact elapsed time: they are added
  to the UTC instant, so across a DST change `1d` may land on a different wall-clock time.
- Wall-clock phrases (`tomorrow 9am`, `next friday 14:00`) mean that wall-clock time in the
  configured zone; a wall time that does not exist or happens twice (DST) is refused.
- A bare time of day (`9am`, `14:00`, `noon`, `teatime`, `midnight`) is the next one: today if it
  is still ahead (or is exactly now), otherwise tomorrow. With a zone of its own (`15:00 UTC`,
  `9am +01:00`, `noon CET`), "today" and "ahead" are that zone's.
- A date without a time (`2026-12-01`, `friday`, `dec 24`) means the start of that day, 00:00
  local time.
- A weekday names the next such day, never today: on a Friday, `friday 11am` is a week ahead;
  `today 11am` or `this friday 11am` is today.
- A bare number (`9`, `2026`) is refused, never guessed as an hour, a day or a year.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plurspool.errors import ConfigError, TimeError

EXAMPLES = (
    "write e.g. 2026-12-01T09:00:00+01:00, 2026-12-01 09:00 (local time), 30m, 1h30m, "
    "in 2 hours, tomorrow 9am, next friday 14:00, noon or random:10m-20m"
)

RANDOM_MIN = timedelta(seconds=30)
RANDOM_MAX = timedelta(days=30)

_UNITS: dict[str, timedelta] = {}
for _names, _unit in (
    (("s", "sec", "secs", "second", "seconds"), timedelta(seconds=1)),
    (("m", "min", "mins", "minute", "minutes"), timedelta(minutes=1)),
    (("h", "hr", "hrs", "hour", "hours"), timedelta(hours=1)),
    (("d", "day", "days"), timedelta(days=1)),
    (("w", "wk", "wks", "week", "weeks"), timedelta(weeks=1)),
):
    for _name in _names:
        _UNITS[_name] = _unit

# Longest unit names first, so that "mins" is not read as "m" + "ins".
_UNIT_RE = "|".join(sorted(_UNITS, key=len, reverse=True))
_DURATION_PART = re.compile(rf"(\d+)\s*({_UNIT_RE})(?![a-z])")
_DURATION_FULL = re.compile(rf"(?:\d+\s*(?:{_UNIT_RE})(?![a-z])\s*)+")
_NOW_PLUS = re.compile(r"now\s*\+\s*(.+)")
_IN_DURATION = re.compile(r"in\s+(.+?)")
_FROM_NOW = re.compile(r"(.+?)\s+from\s+now")
_RANDOM = re.compile(r"random\s*:\s*(.*)")
_ISO_START = re.compile(r"\d{4}-?\d{2}-?\d{2}(?:$|[t\s])")
_TIME_OF_DAY = re.compile(
    r"(?:at\s+)?(?P<h>\d{1,2})(?::(?P<m>\d{2})(?::(?P<s>\d{2}))?)?\s*(?P<ampm>am|pm|a\.m\.|p\.m\.)?"
)
_NAMED_TIMES = {"noon": time(12), "midday": time(12), "teatime": time(16), "midnight": time(0)}
_WEEKDAYS = (
    "mon|monday",
    "tue|tues|tuesday",
    "wed|wednesday",
    "thu|thur|thurs|thursday",
    "fri|friday",
    "sat|saturday",
    "sun|sunday",
)
_DAY_WORDS = "today|tomorrow|tonight|" + "|".join(_WEEKDAYS)
_DAY_THEN_TIME = re.compile(r"(?P<day>today|tomorrow)\s+(?P<time>.+)")
_TIME_THEN_DAY = re.compile(r"(?P<time>.+?)\s+(?P<day>today|tomorrow)")
# "tomorrow at 9" / "friday 9": dateparser would silently drop the 9 and keep the current time.
_BARE_HOUR = re.compile(
    rf"\b(?:at|{_DAY_WORDS})\s+(?:at\s+)?(\d{{1,2}})(?=\s*$|\s+(?:at\s+)?(?:next|{_DAY_WORDS})\b)"
)


def local_zone(name: str | None = None) -> tzinfo:
    """The configured zone `name`, or the system's ($TZ, /etc/localtime, /etc/timezone, UTC)."""
    if name is not None:
        zone = _zone_by_name(name)
        if zone is None:
            raise ConfigError(
                f"timezone: {name!r} is not a known time zone",
                'set `timezone` to a tz database name such as "Europe/Berlin" or "UTC"',
            )
        return zone
    return system_zone(os.environ, Path("/etc/localtime"), Path("/etc/timezone"))


def system_zone(environ: Mapping[str, str], localtime: Path, timezone_file: Path) -> tzinfo:
    """The system zone as seen through `environ` and the two /etc files (for tests)."""
    tz_env = environ.get("TZ")
    if tz_env is not None:
        value = tz_env.removeprefix(":").strip()
        if not value:
            return _utc()  # TZ= (empty) means UTC to the C library too
        zone = _zone_from_path(Path(value)) if value.startswith("/") else _zone_by_name(value)
        if zone is None:
            raise ConfigError(
                f"the environment variable TZ={tz_env!r} is not a time zone plurspool understands",
                'set TZ to a tz database name such as "Europe/Berlin", or set `timezone` '
                "in the config",
            )
        return zone
    if localtime.is_symlink():
        zone = _zone_from_path(Path(os.path.realpath(localtime)), allow_file=False)
        if zone is not None:
            return zone
    try:
        zone = _zone_by_name(timezone_file.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        zone = None
    if zone is not None:
        return zone
    if localtime.is_file():
        zone = _zone_from_path(localtime)
        if zone is not None:
            return zone
    return _utc()


def _utc() -> tzinfo:
    return _zone_by_name("UTC") or UTC


def _zone_by_name(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _zone_from_path(path: Path, *, allow_file: bool = True) -> tzinfo | None:
    """A zone from a zoneinfo file path, named by its tz database key when it has one."""
    parts = path.parts
    if "zoneinfo" in parts:
        rest = list(parts[len(parts) - parts[::-1].index("zoneinfo") :])
        if rest and rest[0] == "posix":
            rest = rest[1:]
        zone = _zone_by_name("/".join(rest)) if rest else None
        if zone is not None:
            return zone
    if not allow_file:
        return None
    try:
        with path.open("rb") as f:
            return ZoneInfo.from_file(f, key=str(path))
    except (OSError, ValueError):
        return None


def parse_duration(text: str) -> timedelta:
    """A positive duration such as 30s, 5m, 2h, 1d, 1w, 1h30m or "2 hours"."""
    s = " ".join(text.strip().lower().split())
    hint = "write a number with a unit, e.g. 30s, 5m, 2h, 1d, 1w or 1h30m"
    if not s:
        raise TimeError("an empty duration", hint)
    if s.isdigit():
        raise TimeError(
            f"duration {text.strip()!r} has no unit",
            f"write {s}s for seconds, {s}m for minutes or {s}h for hours",
        )
    if s.startswith("-"):
        raise TimeError(f"duration {text.strip()!r} is negative", hint)
    if not _DURATION_FULL.fullmatch(s):
        raise TimeError(f"{text.strip()!r} is not a duration", hint)
    try:
        total = sum(
            (int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(s)),
            timedelta(),
        )
    except (OverflowError, ValueError):
        raise TimeError(f"duration {text.strip()!r} is too long", hint) from None
    if total <= timedelta():
        raise TimeError(f"duration {text.strip()!r} is zero", hint)
    return total


def parse_when(
    text: str,
    *,
    now: datetime,
    tz: tzinfo,
    latest: datetime | None = None,
    current: datetime | None = None,
    allow_past: bool = False,
    rng: random.Random | None = None,
) -> datetime:
    """Resolve any §3 time form to an aware UTC datetime, refusing past and unclear times.

    `current` (reschedule only) makes a leading "+"/"-" relative to the post's current time;
    `latest` is the latest queued post, the base of `random:` chains.
    """
    original = text.strip()
    s = " ".join(original.lower().split())
    if not s:
        raise TimeError("no time given", EXAMPLES)
    now = now.astimezone(UTC)
    result = _resolve(s, original, now=now, tz=tz, latest=latest, current=current, rng=rng)
    if result < now and not allow_past:
        raise TimeError(
            f"{original!r} is {_describe(result, tz)}, which is in the past",
            f"it is now {_describe(now, tz)}; {EXAMPLES}",
        )
    return result


def _resolve(
    s: str,
    original: str,
    *,
    now: datetime,
    tz: tzinfo,
    latest: datetime | None,
    current: datetime | None,
    rng: random.Random | None,
) -> datetime:
    if s == "now":
        return now
    if m := _RANDOM.fullmatch(s):
        return _random(m.group(1), original, now=now, latest=latest, rng=rng)
    if s[0] in "+-":
        sign, rest = s[0], s[1:].strip()
        if current is not None:
            base, what = current.astimezone(UTC), "the post's current time"
        elif sign == "-":
            raise TimeError(
                f"{original!r} is a time in the past",
                "a leading '-' only moves a post earlier in `reschedule`; "
                "elsewhere give a time ahead, e.g. +2h or tomorrow 9am",
            )
        else:
            base, what = now, "now"
        delta = _duration_in(rest, original, f"a duration after {sign!r} (from {what})")
        return _shift(base, delta if sign == "+" else -delta, original)
    for pattern in (_NOW_PLUS, _IN_DURATION, _FROM_NOW):
        if m := pattern.fullmatch(s):
            if pattern is not _NOW_PLUS and not _DURATION_FULL.fullmatch(m.group(1)):
                break  # "in 2 months" and friends: wall-clock phrases for dateparser
            return _shift(now, _duration_in(m.group(1), original, "a duration"), original)
    if _DURATION_FULL.fullmatch(s):
        return _shift(now, _duration_in(s, original, "a duration"), original)
    if s.isdigit():
        clock = f"{s}am or {s}:00 for a time of day, " if int(s) < 24 else ""
        raise TimeError(
            f"{original!r} is only a number, which is not a time",
            f"write {s}m for {s} minutes from now, {clock}or a full date such as 2026-12-01",
        )
    if _ISO_START.match(s):
        iso = _parse_iso(s, original, tz)
        if iso is not None:
            return iso
    if (tod := _time_of_day(s, original)) is not None:
        return _next_time_of_day(tod, original, now=now, tz=tz)
    if (day := _day_and_time(s, original, now=now, tz=tz)) is not None:
        return day
    return _parse_natural(s, original, now=now, tz=tz)


def _day_and_time(s: str, original: str, *, now: datetime, tz: tzinfo) -> datetime | None:
    """ "tomorrow 9am", "today at 14:30", "9am tomorrow": the commonest phrase, read here as
    dateparser reads it, without its half-second start (it builds every zone's regexes before
    its first answer). None for anything else (weekdays, zones...), which goes to dateparser."""
    m = _DAY_THEN_TIME.fullmatch(s) or _TIME_THEN_DAY.fullmatch(s)
    if m is None:
        return None
    tod = _time_of_day(m["time"], original)
    if tod is None:
        return None
    day = now.astimezone(tz).date() + timedelta(days=1 if m["day"] == "tomorrow" else 0)
    return _attach(datetime.combine(day, tod), tz, original)


def _duration_in(text: str, original: str, what: str) -> timedelta:
    try:
        return parse_duration(text)
    except TimeError as e:
        raise TimeError(f"{original!r}: expected {what}, but {e.message}", e.hint) from None


def _shift(base: datetime, delta: timedelta, original: str) -> datetime:
    try:
        return base + delta
    except OverflowError:
        raise TimeError(f"{original!r} is too far away", EXAMPLES) from None


def _random(
    spec: str, original: str, *, now: datetime, latest: datetime | None, rng: random.Random | None
) -> datetime:
    hint = "write random:MIN-MAX with durations, e.g. random:10m-20m (MIN ≥ 30s, MAX ≤ 30d)"
    parts = spec.split("-")
    if len(parts) != 2:
        raise TimeError(f"{original!r} is not of the form random:MIN-MAX", hint)
    try:
        low, high = parse_duration(parts[0]), parse_duration(parts[1])
    except TimeError as e:
        raise TimeError(f"{original!r}: {e.message}", hint) from None
    if low < RANDOM_MIN:
        raise TimeError(f"{original!r}: MIN must be at least 30s", hint)
    if high > RANDOM_MAX:
        raise TimeError(f"{original!r}: MAX must be at most 30d", hint)
    if low >= high:
        raise TimeError(f"{original!r}: MIN must be less than MAX", hint)
    base = now if latest is None else max(now, latest.astimezone(UTC))
    # Whole seconds, so both bounds are reachable and the result is what gets written down.
    offset = (rng or random.SystemRandom()).randint(
        int(low.total_seconds()), int(high.total_seconds())
    )
    return _shift(base, timedelta(seconds=offset), original)


_MIN_YEAR, _MAX_YEAR = 1970, 9998


def has_offset(text: str) -> bool:
    """True for an ISO 8601 time that carries its UTC offset (or Z): nothing left to resolve."""
    try:
        return datetime.fromisoformat(text.strip().upper()).tzinfo is not None
    except ValueError:
        return False


def parse_absolute(text: str, *, tz: tzinfo) -> datetime:
    """An ISO 8601 time only (with offset or Z, or naive = local wall time in `tz`), as UTC."""
    original = text.strip()
    s = original.lower()
    result = _parse_iso(s, original, tz) if _ISO_START.match(s) else None
    if result is None:
        raise TimeError(
            f"{original!r} is not an absolute ISO 8601 time",
            "write e.g. 2026-12-01T09:00:00+01:00 or 2026-12-01T08:00:00Z",
        )
    return result


def _parse_iso(s: str, original: str, tz: tzinfo) -> datetime | None:
    """ISO 8601 → UTC; None if `s` is not ISO (so it may still be a phrase like "... 9am")."""
    try:
        parsed = datetime.fromisoformat(s.upper())
    except ValueError:
        return None
    # Years at the edge of what datetime holds overflow when moved to another offset (and
    # no post is meant for them): refuse them here, so no later conversion can fail.
    if not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
        raise TimeError(
            f"{original!r} is out of range: the year must be {_MIN_YEAR} to {_MAX_YEAR}",
            "write e.g. 2026-12-01T09:00:00+01:00",
        )
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    return _attach(parsed, tz, original)


def time_of_day(text: str) -> time | None:
    """A bare time of day ("9am", "at 14:30", "noon") or None; raises TimeError on a bad one."""
    return _time_of_day(" ".join(text.lower().split()), text)


def _time_of_day(s: str, original: str) -> time | None:
    """A bare time of day ("9am", "at 14:30", "noon"), or None if `s` is something else."""
    named = s.removeprefix("at ").strip()
    if named in _NAMED_TIMES:
        return _NAMED_TIMES[named]
    m = _TIME_OF_DAY.fullmatch(s)
    if m is None or (m["m"] is None and m["ampm"] is None):
        return None
    hour, minute, second = int(m["h"]), int(m["m"] or 0), int(m["s"] or 0)
    if m["ampm"] is not None:
        if not 1 <= hour <= 12:
            raise TimeError(
                f"{original!r} is not a time of day: with am/pm the hour is 1 to 12",
                "write e.g. 9am, 9:30pm or 21:30",
            )
        hour = hour % 12 + (12 if m["ampm"].startswith("p") else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise TimeError(
            f"{original!r} is not a time of day",
            "write e.g. 9am, 09:00, 21:30 or 23:59:59",
        )
    return time(hour, minute, second)


def _next_time_of_day(tod: time, original: str, *, now: datetime, tz: tzinfo) -> datetime:
    """The next `tod` in `tz`: today if not yet passed on the wall clock, else tomorrow."""
    wall_now = now.astimezone(tz).replace(tzinfo=None)
    candidate = datetime.combine(wall_now.date(), tod)
    if candidate < wall_now:  # naive comparison: wall-clock order, fold ignored
        candidate = datetime.combine(wall_now.date() + timedelta(days=1), tod)
    return _attach(candidate, tz, original)


def _parse_natural(s: str, original: str, *, now: datetime, tz: tzinfo) -> datetime:
    """English phrases via dateparser, anchored to the local wall clock in `tz`."""
    if m := _BARE_HOUR.search(s):
        n = m.group(1)
        raise TimeError(
            f"{original!r}: {n!r} alone is not a time of day",
            f"write {n}am, {n}pm or {int(n):02d}:00, e.g. tomorrow {n}am",
        )
    phrase = s
    for word, value in _NAMED_TIMES.items():
        phrase = re.sub(rf"\b{word}\b", value.strftime("%H:%M"), phrase)

    from dateparser.date import DateDataParser  # slow import: only phrases need it
    from dateparser.timezone_parser import pop_tz_offset_from_string

    # "15:00 UTC", "9am +01:00", "noon CET": a time of day in a zone of its own is the next
    # one in that zone. dateparser would compare it with the local wall clock, and land a day
    # late whenever that is past 15:00 while the named zone is not.
    rest, named = pop_tz_offset_from_string(phrase)
    if isinstance(named, tzinfo) and (tod := _time_of_day(rest.strip(), original)) is not None:
        offset = named.utcoffset(None) or timedelta()  # dateparser's zones are fixed offsets
        return _next_time_of_day(tod, original, now=now, tz=timezone(offset))

    base = now.astimezone(tz).replace(tzinfo=None)
    parser = DateDataParser(
        languages=["en"],
        settings={
            # A naive local wall-clock base and naive results: dateparser's own zone handling
            # is wrong across DST changes, so the zone is attached here, with fold checks.
            "RELATIVE_BASE": base,
            "PREFER_DATES_FROM": "future",
            # No epoch timestamps ("1764579600") or digit runs ("0930") guessed as dates.
            "PARSERS": ["relative-time", "custom-formats", "absolute-time"],
        },
    )
    try:
        data = parser.get_date_data(phrase)
    except Exception:  # dateparser raises assorted errors on odd input; all mean "not a time"
        data = None
    if data is None or data.date_obj is None:
        raise TimeError(f"could not understand {original!r} as a time", EXAMPLES)
    # "may", "dec 2026", even "a" come back as some day of a month: refuse a month or year that
    # was named without a day, but keep relative phrases such as "in 2 months".
    if data.period in ("month", "year") and not re.search(r"\b(month|year)s?\b", s):
        raise TimeError(
            f"{original!r} names a {data.period}, not a day",
            f"give the day and time, e.g. dec 24 18:00; {EXAMPLES}",
        )
    result: datetime = data.date_obj
    # dateparser ignores a weekday that contradicts the date ("friday 13 march" in a year where
    # that is a Saturday); say so instead of silently picking the date.
    for index, names in enumerate(_WEEKDAYS):
        if re.search(rf"\b(?:{names})\b", s) and result.weekday() != index:
            raise TimeError(
                f"{original!r} is {result:%A %Y-%m-%d}, which contradicts the weekday you gave",
                f"give either the weekday or the date; {EXAMPLES}",
            )
    if result.tzinfo is not None:  # the phrase named its own zone or offset ("9am UTC")
        return result.astimezone(UTC)
    return _attach(result, tz, original)


def _attach(wall: datetime, tz: tzinfo, original: str) -> datetime:
    """Local wall time `wall` in `tz` as UTC, refusing times skipped or repeated by DST."""
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    what = f"{wall:%a %Y-%m-%d %H:%M:%S} in {_zone_label(tz)}"
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
        # In a gap fold=0 uses the offset from before the change, fold=1 the one after;
        # each lands on a real instant on the other side of the gap.
        options = sorted({first.astimezone(UTC), second.astimezone(UTC)})
        raise TimeError(
            f"{original!r} is {what}, a local time that does not exist "
            "(the clocks skip it for a DST change)",
            "write the time with an offset, e.g. " + " or ".join(iso_local(t, tz) for t in options),
        )
    if first.utcoffset() != second.utcoffset():
        raise TimeError(
            f"{original!r} is {what}, a local time that happens twice (DST change)",
            "write the offset to choose one: "
            f"{_iso_wall(wall, first.utcoffset())} (the first) or "
            f"{_iso_wall(wall, second.utcoffset())} (the second)",
        )
    return first.astimezone(UTC)


def _iso_wall(wall: datetime, offset: timedelta | None) -> str:
    return wall.replace(tzinfo=timezone(offset or timedelta()), microsecond=0).isoformat()


def _zone_label(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


def _describe(at: datetime, tz: tzinfo) -> str:
    local = at.astimezone(tz)
    return f"{local:%a %Y-%m-%d %H:%M:%S} {local.tzname()}"


def echo(at: datetime, tz: tzinfo) -> str:
    """Local and UTC, e.g. "Tue 2026-12-01 09:00:00 CET (+01:00) = 2026-12-01T08:00:00Z"."""
    local = at.astimezone(tz)
    offset = local.isoformat()[-6:]
    return f"{local:%a %Y-%m-%d %H:%M:%S} {local.tzname()} ({offset}) = {iso_utc(at)}"


def iso_utc(at: datetime) -> str:
    """ISO 8601 UTC with Z, whole seconds: "2026-12-01T08:00:00Z"."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_local(at: datetime, tz: tzinfo) -> str:
    """ISO 8601 local time with offset, whole seconds: "2026-12-01T09:00:00+01:00"."""
    return at.astimezone(tz).replace(microsecond=0).isoformat()


def duration(seconds: float, *, coarse: bool = False) -> str:
    """A duration as people read it: 45s, 5m03s, 2h05m, 3d4h (the one formatter of them).

    `coarse` (how far off a post is, in `list`) drops seconds past a minute and zero hours.
    """
    d, rem = divmod(int(seconds), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d" if coarse and not h else f"{d}d{h}h"
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m" if coarse else f"{m}m{s:02d}s"
    return f"{s}s"
