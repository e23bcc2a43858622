"""The iCalendar feed of the queue (plurspool(1), `ics`): each scheduled post an event, each
recurring post an RRULE event in the configured zone, written atomically; icalendar is imported
here, when a recurring post or an escaped or folded value needs it.

A post's SEQUENCE and DTSTAMP come from the ledger (`Ledger.calendar_sequences`): the per-host
database already holds what this host saw of each post, in transactions that a daemon and a
command running at once both honour, so the feed's sequence numbers only ever go up.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from . import repeat
from .errors import PlurspoolError, PostError

if TYPE_CHECKING:
    from .app import App
    from .log import Log
    from .views import Brief

PRODID = "-//plurspool//plurspool//EN"
UID_DOMAIN = "plurspool"
# The calendar's properties, as icalendar writes them (`test_the_head_is_what_icalendar_writes`).
HEAD = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:%s\r\nCALSCALE:GREGORIAN\r\n"
    b"X-WR-CALNAME:plurspool\r\n" % PRODID.encode()
)


def feed(app: App) -> bytes:
    """The feed of the spool's scheduled/ as it is now (RFC 5545, CRLF line ends)."""
    views = [v for v in app.views.scheduled_briefly() if v["scheduled_at"] is not None]
    templates = [v for v in views if v["repeat"] is not None]
    seen = {v["id"]: _seen(v) for v in views}
    sequences = app.ledger.calendar_sequences(seen)
    tz = app.config.timezone
    tzid = _tzid(tz)
    made = [_recurring(app, v, tz, tzid, *sequences[v["id"]]) for v in templates]
    events = [bytes(e.to_ical()) for e in made if e is not None]
    if tzid is not None and events:
        import icalendar

        events.insert(0, bytes(icalendar.Timezone.from_tzinfo(tz, tzid=tzid).to_ical()))
    # Single posts (and the calendar's own lines) are written as text, with icalendar's TEXT
    # escaping and folding where a value needs them: building 10,000 Event objects would take
    # seconds, and the daemon remakes the feed after every change; icalendar is imported only
    # for a recurring post or a value that needs it.
    single = [v for v in views if v["repeat"] is None]
    lines = [_event(v, *sequences[v["id"]]) for v in single]
    return HEAD + b"".join(events) + b"".join(lines) + b"END:VCALENDAR\r\n"


def _seen(view: Brief) -> str:
    """What changes a post's SEQUENCE: its time and, for a recurring post, its rule."""
    rule = view["repeat"]["rule"] if view["repeat"] is not None else ""
    return f"{view['scheduled_at']} {rule}".rstrip()


def _tzid(tz: tzinfo) -> str | None:
    """The TZID recurring events carry: the zone's tz database name; a zone read from a file
    that has none (a copied /etc/localtime) is named `plurspool-local`, its VTIMEZONE made from
    its transitions all the same; None for UTC, whose times are written in UTC."""
    key = str(getattr(tz, "key", "") or "")
    if tz is UTC or key in ("UTC", "Etc/UTC"):
        return None
    if key and not key.startswith("/"):
        with contextlib.suppress(ValueError, OSError, LookupError):
            if ZoneInfo(key) is not None:
                return key
    return "plurspool-local"


def _uid(view: Brief) -> str:
    return f"{view['id']}@{UID_DOMAIN}"


# What RFC 5545 TEXT escapes (a backslash, `;`, `,`, a line end): a value without any is written
# as it is, and one with any goes through icalendar's vText.
_ESCAPED = re.compile(r"[\\;,\r\n]")


def _text(value: str) -> str:
    if _ESCAPED.search(value) is None:
        return value
    from icalendar.prop import vText

    return str(vText(value).to_ical().decode())


@functools.lru_cache(maxsize=1024)
def _stamp(epoch: int) -> str:
    """A DTSTAMP: many posts share one (those first seen by the same feed)."""
    return repeat.stamp(datetime.fromtimestamp(epoch, UTC))  # 20261201T080000Z


def _event(view: Brief, sequence: int, stamp: float) -> bytes:
    """One single post's VEVENT, its content lines folded, with CRLF after each."""
    # `scheduled_at` is when.iso_utc's 2026-12-01T08:00:00Z: in iCalendar, 20261201T080000Z.
    start = (view["scheduled_at"] or "").replace("-", "").replace(":", "")
    text = (
        f"BEGIN:VEVENT\r\n{_line('UID', _text(_uid(view)))}DTSTAMP:{_stamp(int(stamp))}\r\n"
        f"DTSTART:{start}\r\nSEQUENCE:{sequence}\r\n{_line('SUMMARY', _text(view['preview']))}"
        f"{_line('DESCRIPTION', _text(', '.join(view['platforms'])))}END:VEVENT\r\n"
    )
    return text.encode()


def _line(name: str, value: str) -> str:
    """A content line and its CRLF; one of 75 octets or more is folded by icalendar."""
    line = f"{name}:{value}"
    if len(line) < 75 and (line.isascii() or len(line.encode()) < 75):
        return line + "\r\n"
    from icalendar.parser import Contentline

    folded: bytes = Contentline(line).to_ical()  # type: ignore[no-untyped-call]
    return folded.decode() + "\r\n"


def _recurring(
    app: App, view: Brief, tz: tzinfo, tzid: str | None, sequence: int, stamp: float
) -> Any:
    """A recurring post's VEVENT: DTSTART its next occurrence as a wall time in `tz` (TZID),
    its rule as RRULE and its `skip:` dates as EXDATE; None when it is invalid (its view says
    why)."""
    import icalendar

    assert view["repeat"] is not None and view["scheduled_at"] is not None
    rule = view["repeat"]["rule"]
    anchor = datetime.fromisoformat(view["scheduled_at"])
    entry = app.spool.stat_entry("scheduled", view["id"])
    item = app.items.load(entry) if entry is not None else None
    post = item.post if item is not None and item.valid else None
    if post is None:
        return None
    skip = app.items.skip_dates(post)
    try:
        recur = icalendar.vRecur.from_ical(rule)
        excluded = []
        if skip:
            last = max(skip)
            for at in repeat.occurrences(rule, anchor, tz):
                local = at.astimezone(tz)
                if local.date() > last:
                    break
                if local.date() in skip:
                    excluded.append(local)
    except (PostError, ValueError):
        return None
    event = icalendar.Event()
    event.add("uid", _uid(view))
    event.add("dtstamp", datetime.fromtimestamp(int(stamp), UTC))
    if tzid is None:
        event.add("dtstart", anchor.astimezone(UTC))
        if excluded:
            event.add("exdate", [at.astimezone(UTC) for at in excluded])
    else:  # a wall time in the zone named TZID
        wall = {"TZID": tzid}
        event.add("dtstart", anchor.astimezone(tz).replace(tzinfo=None), parameters=wall)
        if excluded:
            event.add("exdate", [at.replace(tzinfo=None) for at in excluded], parameters=wall)
    event.add("rrule", recur)
    event.add("sequence", sequence)
    event.add("summary", view["preview"])
    event.add("description", ", ".join(view["platforms"]))
    return event


def write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically: a reader sees the old feed or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PlurspoolError(
            f"cannot write the calendar feed {path}: {exc.strerror}",
            "check that its directory exists and is writable",
        ) from None


class Feed:
    """The daemon's `[calendar] ics` file: made at start and after every pass that changed
    what is in scheduled/ (`changes`, the daemon index's count), and by `send --once`; written
    only when it differs; a failure is logged, and sending goes on."""

    def __init__(self, app: App, log: Log) -> None:
        self.app, self.log = app, log
        self.done: int | None = None  # the index's change count the file was last made at

    def after_pass(self, changes: int) -> None:
        path = self.app.config.calendar_ics
        if path is None or changes == self.done:
            return
        self.done = changes
        try:
            data = feed(self.app)
            with contextlib.suppress(OSError):
                if path.read_bytes() == data:
                    return  # as it is: subscribers see no new file (`send --once` every minute)
            write(path, data)
        except PlurspoolError as exc:
            self.log.event("ics", level="warning", path=str(path), error=exc.message)
        except Exception as exc:  # a bug in the feed must never stop sending
            self.log.event("ics", level="error", path=str(path), error=repr(exc))
