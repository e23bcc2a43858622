"""Pure calendar days: posts, recurring posts' occurrences and free queue slots → the local days
of a week or a month (plurspool(1), `calendar`).

No I/O here: `Views` gathers the posts (`scheduled`), the occurrences (`occurrences`, from
repeat.py) and the free slots (`free_slots`, from slots.py); this places them on local dates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

from . import when
from .slots import instant

if TYPE_CHECKING:
    from .views import CalendarDay, PostView


@dataclass(frozen=True)
class Period:
    """Local days from `first` to before `end`; `month` tells how it was asked for."""

    first: date
    end: date
    month: bool

    @classmethod
    def of(cls, day: date, month: bool) -> Period:
        """The week (Monday to Sunday) or the calendar month holding `day`."""
        if month:
            first = day.replace(day=1)
            nxt = (first + timedelta(days=31)).replace(day=1)
            return cls(first, nxt, True)
        first = day - timedelta(days=day.weekday())
        return cls(first, first + timedelta(days=7), False)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.end - self.first).days)]

    def instants(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """The period's start and end as UTC instants: local midnights in `tz` (a midnight
        that a DST gap skips is its first instant after, as for a slot)."""
        return instant(self.first, time(), tz), instant(self.end, time(), tz)


@dataclass(frozen=True)
class Entry:
    """A post on a day: when (UTC), its view, and whether it is a recurring post's occurrence."""

    at: datetime
    view: PostView
    repeat: bool


@dataclass
class Day:
    """One local day: its posts and its free queue slots ((UTC instant, queue)), soonest first."""

    date: date
    posts: list[Entry] = field(default_factory=list)
    free: list[tuple[datetime, str]] = field(default_factory=list)


def build(
    period: Period,
    tz: tzinfo,
    posts: Iterable[PostView],
    occurrences: Iterable[tuple[PostView, Iterable[datetime]]],
    free: Iterable[tuple[datetime, str]],
) -> list[Day]:
    """Every day of `period`, each with the posts (single posts at `scheduled_at`, a template's
    posts at each of its occurrences) and the free slots on that local date."""
    days = {d: Day(d) for d in period.days()}

    def day_of(at: datetime) -> Day | None:
        return days.get(at.astimezone(tz).date())

    for view in posts:
        if view["scheduled_at"] is None or view["repeat"] is not None:
            continue  # no time to place it at; a template is placed by its occurrences
        at = datetime.fromisoformat(view["scheduled_at"])
        day = day_of(at)
        if day is not None:
            day.posts.append(Entry(at, view, False))
    for template, instants in occurrences:
        for at in instants:
            day = day_of(at)
            if day is not None:
                shown: PostView = {**template, "scheduled_at": when.iso_utc(at)}
                day.posts.append(Entry(at, shown, True))
    for at, queue in free:
        day = day_of(at)
        if day is not None:
            day.free.append((at, queue))
    for day in days.values():
        day.posts.sort(key=lambda e: (e.at, e.view["id"]))
        day.free.sort()
    return list(days.values())


def as_json(days: list[Day]) -> list[CalendarDay]:
    """`calendar --format json`: a day's posts as views and its free slots in UTC."""
    return [
        {
            "date": d.date.isoformat(),
            "posts": [e.view for e in d.posts],
            "free_slots": [when.iso_utc(at) for at, _ in d.free],
        }
        for d in days
    ]
