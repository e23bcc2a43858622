"""The calendar commands: `calendar` (a week or a month of the queue) and `ics` (the feed)."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING

import click

from ..errors import UsageError
from ..printable import shown
from .context import Context, format_option, pass_context
from .output import cut, width

if TYPE_CHECKING:
    from ..app import App
    from ..calendar import Day, Period

ID_LEAST = 4  # characters of an ID the calendar shows at least (more where needed to be unique)
ID_MOST = 40  # past this, a long unique prefix is cut to keep the line within 80 columns
ACCOUNTS_MOST = 24
REPEAT_MARK = "↻"


def _day(text: str | None, today: date) -> date:
    """--from: a date (YYYY-MM-DD; YYYY-MM for a month), or today."""
    if text is None:
        return today
    s = text.strip()
    try:
        return date.fromisoformat(s if len(s) != 7 else f"{s}-01")
    except ValueError:
        raise UsageError(
            f"--from {text!r} is not a date",
            "write YYYY-MM-DD (or YYYY-MM with --month), like 2026-12-01",
        ) from None


@click.command("calendar")
@click.option("--week", is_flag=True, help="One week, Monday to Sunday (the default).")
@click.option("--month", is_flag=True, help="One calendar month.")
@click.option(
    "--from",
    "from_",
    metavar="DATE",
    help="A day of the week or month to show (YYYY-MM-DD); default today.",
)
@click.option("-p", "--platform", "account", metavar="ACCOUNT", help="Only posts to ACCOUNT.")
@format_option
@pass_context
def calendar(ctx: Context, week: bool, month: bool, from_: str | None, account: str | None) -> None:
    """Show a week (Monday to Sunday) or a month of the queue in local time: each post's time,
    ID prefix and accounts, recurring posts' occurrences (↻) and free queue slots."""
    from .. import calendar as cal

    if week and month:
        raise UsageError("give --week or --month, not both", "plurspool calendar --month")
    app = ctx.app
    config = app.config
    if account is not None and account not in config.accounts:
        raise UsageError(
            f"no account named {account!r}",
            f"configured accounts: {', '.join(config.accounts)}",
        )
    period = cal.Period.of(_day(from_, app.clock().astimezone(config.timezone).date()), month)
    ctx.out.calendar(app, period, days_of(app, period, account))


def days_of(app: App, period: Period, account: str | None) -> list[Day]:
    """The days of `period`: the posts of scheduled/ (to `account` if given) from its listing,
    recurring posts' occurrences, and the free slots of the queues (plurspool(1), `calendar`)."""
    from .. import calendar as cal

    tz = app.config.timezone
    start, end = period.instants(tz)
    views = app.views.scheduled(start, end)
    if account is not None:
        views = [v for v in views if account in v["platforms"]]
    templates = [(v, app.views.occurrences(v, end)) for v in views if v["repeat"] is not None]
    return cal.build(period, tz, views, templates, app.views.free_slots(start, end, account))


def render(period: Period, days: list[Day], tz: tzinfo, need: dict[str, int]) -> list[str]:
    """The calendar as lines for a person: a grid of the days with their number of posts,
    then each day that has posts or free slots, one line each, within the terminal's width
    (80 columns off a terminal). `need`: how many characters tell each ID apart."""
    from .. import usage
    from .output import paint

    columns = usage.columns()
    first, last = period.first, period.days()[-1]
    title = (
        f"{first:%B %Y}"
        if period.month
        else f"Week {first.isocalendar().week}: {first:%a %Y-%m-%d} to {last:%a %Y-%m-%d}"
    )
    lines = [paint(f"{title} ({getattr(tz, 'key', None) or tz})", bold=True), ""]
    lines += _grid(days)
    ids = {e.view["id"]: max(need.get(e.view["id"], 0), ID_LEAST) for d in days for e in d.posts}
    id_w = min(max([width(i[:n]) for i, n in ids.items()], default=ID_LEAST), ID_MOST)
    accounts = [",".join(e.view["platforms"]) for d in days for e in d.posts]
    acc_w = min(max([width(a) for a in accounts], default=0), ACCOUNTS_MOST)
    seconds = any(t.second for d in days for t in [e.at for e in d.posts] + [a for a, _ in d.free])
    clock_w = 8 if seconds else 5
    # A terminal narrower than 80 columns: the accounts give way first, then the IDs.
    avail = columns - 2 - clock_w - 2 - 2
    acc_w = max(min(acc_w, 8), min(acc_w, avail - id_w - 2))
    id_w = max(ID_LEAST, min(id_w, avail - acc_w))
    room = avail - id_w - acc_w - 2  # for the preview
    for day in days:
        if not day.posts and not day.free:
            continue
        lines += ["", paint(f"{day.date:%a %Y-%m-%d}", bold=True)]
        rows: list[tuple[datetime, str]] = []
        for e in day.posts:
            v = e.view
            pid = cut(shown(v["id"][: ids[v["id"]]]), id_w, "")  # still a prefix, as in `list`
            mark = paint(REPEAT_MARK, fg="cyan") if e.repeat else " "
            who = cut(shown(",".join(v["platforms"])), acc_w)
            head = f"{pid}{' ' * (id_w - width(pid))}{mark} {who}{' ' * (acc_w - width(who))}"
            preview = f"  {cut(shown(v['preview']), room)}" if room >= 10 and v["preview"] else ""
            rows.append((e.at, f"{head}{preview}"))
        for at, queue in day.free:
            label = cut(shown(f"free slot of {queue}"), max(columns - 2 - clock_w - 2, 12))
            rows.append((at, paint(label, fg="green")))
        rows.sort(key=lambda r: r[0])  # posts and free slots in time order (stable: posts first)
        for at, text in rows:
            local = at.astimezone(tz)
            clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
            lines.append(f"  {clock}  {text}".rstrip())
    if not any(d.posts or d.free for d in days):
        lines += ["", "nothing scheduled and no free slots in this period"]
    return lines


def _grid(days: list[Day]) -> list[str]:
    """Weeks as rows, Monday first: each day's number, and `·N` for its N posts."""
    names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    out = [("     " + "".join(f"{n:<7}" for n in names)).rstrip()]
    row: list[str] = []
    for n, day in enumerate(days):
        if n == 0:
            row = [" " * 7] * day.date.weekday()
        cell = f"{day.date.day:>2}" + (f"·{len(day.posts)}" if day.posts else "")
        row.append(f"{cell:<7}")
        if day.date.weekday() == 6 or n == len(days) - 1:
            out.append((f"W{day.date.isocalendar().week:<3} " + "".join(row)).rstrip())
            row = []
    return out


@click.command("ics")
@click.option(
    "--out",
    metavar="FILE",
    type=click.Path(dir_okay=False, writable=False, path_type=str),
    help="Write the feed to FILE, atomically, instead of stdout.",
)
@pass_context
def ics(ctx: Context, out: str | None) -> None:
    """Print the queue as an iCalendar feed (RFC 5545), for any calendar program to show or
    subscribe to: each post an event, each recurring post a repeating event."""
    import sys
    from pathlib import Path

    from .. import ics as feed

    data = feed.feed(ctx.app)
    if out is None or out == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    feed.write(Path(out), data)
