"""Pure queue slots: `[queues.NAME]` rules as text → the instants of a queue's slots, across DST.

A slot is a wall-clock time in the queue's zone (plurspool-config(5), QUEUES): a time inside a
spring-forward gap moves forward by the length of the gap, a time inside a fall-back fold is
the first of its two instants. No I/O here: the caller passes the clock's time in.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {d: i for i, d in enumerate(DAYS)} | {
    name: i
    for i, names in enumerate(
        (
            ("monday",),
            ("tuesday", "tues"),
            ("wednesday",),
            ("thursday", "thur", "thurs"),
            ("friday",),
            ("saturday",),
            ("sunday",),
        )
    )
    for name in names
}
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
MAX_PER_DAY = 1440


class SlotError(ValueError):
    """A slot rule that cannot be read; the message says what, the hint how to write it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class Slot:
    """Days of the week (0 = Monday) and a wall-clock time on each of them."""

    days: frozenset[int]
    at: time


SLOT_HINT = 'write DAYS HH:MM, like "mon-fri 09:00", "sat,sun 11:30", "fri-mon 18:00", "daily 8:15"'


def parse_time(text: str) -> time:
    """`HH:MM` (24-hour) → a time; SlotError otherwise."""
    m = _TIME.fullmatch(text.strip())
    if m is None:
        raise SlotError(f"{text.strip()!r} is not a time of day", "write HH:MM, like 09:30")
    return time(int(m.group(1)), int(m.group(2)))


def _day(name: str, text: str) -> int:
    day = _DAY_NAMES.get(name.strip().lower())
    if day is None:
        raise SlotError(
            f"{name.strip()!r} in {text!r} is not a day of the week",
            "use mon, tue, wed, thu, fri, sat, sun (or daily)",
        )
    return day


def parse_days(text: str) -> frozenset[int]:
    """`daily`, `mon-fri`, `sat,sun`, `fri-mon` (wrapping), or a mix: `mon,wed-fri`."""
    if text.strip().lower() in ("daily", "every day", "*"):
        return frozenset(range(7))
    days: set[int] = set()
    for piece in text.split(","):
        first, dash, last = piece.partition("-")
        start = _day(first, text)
        if not dash:
            days.add(start)
            continue
        end = _day(last, text)
        days.update((start + i) % 7 for i in range((end - start) % 7 + 1))
    return frozenset(days)


def parse_slot(text: str) -> Slot:
    """One entry of `slots`: `DAYS HH:MM`."""
    days, sep, at = text.strip().rpartition(" ")
    if not sep or not days.strip():
        raise SlotError(f"{text!r} is not DAYS HH:MM", SLOT_HINT)
    return Slot(parse_days(days), parse_time(at))


def window_slots(window: str, per_day: int) -> tuple[Slot, ...]:
    """`per_day` slots every day, evenly spaced over `HH:MM-HH:MM`: the first at its start,
    the last at its end (one slot: at the start). Whole seconds, rounded down."""
    start_text, dash, end_text = window.partition("-")
    if not dash:
        raise SlotError(f"{window!r} is not a window", 'write HH:MM-HH:MM, like "15:00-21:00"')
    start, end = parse_time(start_text), parse_time(end_text)
    span = (end.hour - start.hour) * 3600 + (end.minute - start.minute) * 60
    if span <= 0:
        raise SlotError(
            f"the window {window!r} ends before it starts",
            "windows lie within one day: write an end later than the start",
        )
    if not 1 <= per_day <= MAX_PER_DAY:
        raise SlotError(f"per_day {per_day} is out of range", f"use 1 to {MAX_PER_DAY}")
    base = start.hour * 3600 + start.minute * 60
    every = frozenset(range(7))
    out = []
    for i in range(per_day):
        s = base + (span * i // (per_day - 1) if per_day > 1 else 0)
        out.append(Slot(every, time(s // 3600, s // 60 % 60, s % 60)))
    return tuple(out)


def instant(day: date, at: time, tz: tzinfo) -> datetime:
    """The UTC instant of wall-clock `at` on `day` in `tz`: in a gap, moved forward by the
    gap's length (PEP 495's fold=0 reads it with the offset before the change); in a fold, the
    first of the two."""
    return datetime.combine(day, at, tzinfo=tz).replace(fold=0).astimezone(UTC)


@dataclass(frozen=True)
class Slots:
    """The slots of one queue: its rules and its zone."""

    rules: tuple[Slot, ...]
    tz: tzinfo

    @functools.cached_property
    def _seconds(self) -> tuple[tuple[int, ...], ...]:
        """Per weekday, the slots' wall times as seconds after midnight, sorted, distinct."""
        return tuple(
            tuple(sorted({r.at.hour * 3600 + r.at.minute * 60 + r.at.second for r in days}))
            for days in ([r for r in self.rules if wd in r.days] for wd in range(7))
        )

    def on(self, day: date) -> list[datetime]:
        """The slot instants of a local calendar day, soonest first, without duplicates (two
        wall times can meet after a gap moved one)."""
        return [datetime.fromtimestamp(t, UTC) for t in self._stamps(day)]

    def _stamps(self, day: date) -> list[float]:
        """`on` as POSIX timestamps (whole seconds, exact as floats)."""
        seconds = self._seconds[day.weekday()]
        if not seconds:
            return []
        midnight = datetime.combine(day, time(), tzinfo=self.tz)
        off = midnight.utcoffset()
        after = datetime.combine(day + timedelta(days=1), time(), tzinfo=self.tz)
        if off is not None and off == midnight.replace(hour=12).utcoffset() == after.utcoffset():
            # No change of offset that day: plain arithmetic (a queue of 10k posts walks 10k).
            base = (datetime.combine(day, time(), tzinfo=UTC) - off).timestamp()
            return [base + s for s in seconds]
        ats = (time(s // 3600, s // 60 % 60, s % 60) for s in seconds)
        return sorted({instant(day, at, self.tz).timestamp() for at in ats})

    def after(self, start: datetime) -> Iterator[datetime]:
        """Every slot instant later than `start`, soonest first (endless)."""
        for t in self.stamps_after(start):
            yield datetime.fromtimestamp(t, UTC)

    def stamps_after(self, start: datetime) -> Iterator[float]:
        """`after` as POSIX timestamps: a walk over 10k taken slots makes no datetime."""
        if not self.rules:
            return
        day = start.astimezone(self.tz).date() - timedelta(days=1)
        first = start.timestamp()
        pending: list[float] = []
        last: float | None = None
        while True:
            todays = self._stamps(day)
            # A gap moves a slot forward by at most the gap: nothing of a later day comes
            # before today's first slot, so what is pending before it is final.
            cut = todays[0] if todays else None
            keep = []
            for t in pending:
                if cut is None or t < cut:
                    if t > first and (last is None or t > last):
                        last = t
                        yield t
                else:
                    keep.append(t)
            pending = sorted(set(keep) | set(todays))
            day += timedelta(days=1)

    def between(self, start: datetime, end: datetime) -> list[datetime]:
        """The slot instants later than `start` and before `end`."""
        out = []
        for t in self.after(start):
            if t >= end:
                break
            out.append(t)
        return out


def queue_spec(schedule: str) -> str | None:
    """The queue a `schedule:` value asks for: "" for `queue` (the default queue), NAME for
    `queue:NAME`, None when it is a time (plurspool(5), `schedule`)."""
    word, colon, name = schedule.strip().partition(":")
    if word.strip().lower() != "queue":
        return None
    return name.strip() if colon else ""


def parse_rules(slots: Sequence[str]) -> tuple[Slot, ...]:
    """The `slots` list; SlotError naming the bad entry."""
    if not slots:
        raise SlotError("the slot list is empty", SLOT_HINT)
    return tuple(parse_slot(s) for s in slots)
