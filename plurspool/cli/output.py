"""How results look: `TextOutput` for people, `JsonOutput` for programs, chosen once by --format.

Data goes to stdout, messages for the person at the terminal to stderr (`note`). A command hands
its result to `Context.out` and never asks which format it prints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import click

from .. import usage
from ..printable import shown

if TYPE_CHECKING:
    from ..app import App
    from ..calendar import Day, Period
    from ..feeds import FeedView
    from ..items import Item
    from ..listing import ListedPosts
    from ..service import Status
    from ..setup import Initialised
    from ..spool import Entry
    from ..views import PostView, SlotView, Stats

ID_SHORT = 8  # characters of an ID that `list` keeps at least: all the random part of a new one


def _echo(text: str = "") -> None:
    """A line for a person on stdout, made safe for a terminal (see `printable.shown`)."""
    click.echo(shown(text))


def note(message: str) -> None:
    """A message for the person at the terminal (stderr)."""
    click.echo(shown(message), err=True)


def colour() -> bool:
    """Whether stdout takes colour: a terminal, not `TERM=dumb`, and no `NO_COLOR` (set and
    not empty; see no-color.org)."""
    return (
        sys.stdout.isatty()
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM", "") != "dumb"
    )


def paint(text: str, *, fg: str | None = None, bold: bool = False) -> str:
    """`text` in a colour, or bold, where `colour()` allows; else `text` as it is. The caller
    made `text` printable (`shown`): the result does not go through `_echo`, which would drop
    the colour."""
    return click.style(text, fg=fg, bold=bold or None) if colour() else text


class Output(Protocol):
    """What the commands with --format print; one method per kind of result."""

    def initialised(self, done: Initialised) -> None:
        """`init`: the config, the spool and the state directory."""

    def added(self, app: App, item: Item, queued: bool) -> None:
        """`post -s`/`--draft`: the new post, and when it is due (`queued`) or where it is kept."""

    def sent(self, view: PostView) -> None:
        """A post sent in the foreground: its view, with each account's result."""

    def handed_over(self, app: App, item: Item) -> None:
        """`now` while a daemon runs: the post it is about to send."""

    def listing(self, posts: ListedPosts, wide: bool) -> None:
        """`list`."""

    def post(self, app: App, item: Item) -> None:
        """`show`: one post in full."""

    def changed(self, app: App, items: Sequence[Item], verb: str) -> None:
        """A queue change: the posts changed, and what became of each."""

    def slots(self, rows: list[SlotView]) -> None:
        """`queue`: the slots of the next days, free or taken."""

    def imported(self, app: App, entries: Sequence[Entry]) -> None:
        """`import`: the posts it made (text: one ID a line; JSON: an array of posts)."""

    def calendar(self, app: App, period: Period, days: list[Day]) -> None:
        """`calendar`: the days of a week or a month, their posts and free slots."""

    def stats(self, app: App, data: Stats) -> None:
        """`stats`."""

    def checked(self, reports: list[dict[str, Any]]) -> None:
        """`check`: the problems and warnings of each file."""

    def explained(
        self, threads: dict[str, dict[str, list[dict[str, Any]]]], reports: list[dict[str, Any]]
    ) -> None:
        """`check --explain`: each file's parts per account, then what `check` found."""

    def daemon_status(self, status: Status) -> None:
        """`daemon status`."""

    def health(self, ok: bool, detail: str) -> None:
        """`daemon health`."""

    def accounts(self, rows: list[dict[str, Any]]) -> None:
        """`accounts`: the configured accounts."""

    def accounts_tested(self, reports: list[dict[str, Any]]) -> None:
        """`accounts test`: who each account is, or why it cannot log in."""

    def feeds(self, rows: list[FeedView]) -> None:
        """`feed list`: each feed, where its entries go, and this host's last poll."""


# -- JSON ------------------------------------------------------------------------------------


def emit_json(data: Any) -> None:
    """JSON on stdout: an array one element a line (fast for 100k posts), else indented."""
    import json

    if isinstance(data, list):
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        # A file name that is not UTF-8 shows as \udcXX escapes, still JSON.
        emit_json_lines("\n".join(dumps(x) for x in data).encode("utf-8", "backslashreplace"))
        return
    text = json.dumps(data, indent=2, ensure_ascii=False)
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "backslashreplace") + b"\n")
    sys.stdout.buffer.flush()


def emit_json_lines(lines: bytes) -> None:
    """A JSON array on stdout from its elements, already encoded (UTF-8), one a line."""
    if not lines:
        click.echo("[]")
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(b"[\n" + lines.replace(b"\n", b",\n") + b"\n]\n")
    sys.stdout.buffer.flush()


class JsonOutput:
    """Every result as JSON on stdout (plurspool(1), JSON OUTPUT); stderr says only when."""

    def initialised(self, done: Initialised) -> None:
        emit_json(done.as_dict())

    def added(self, app: App, item: Item, queued: bool) -> None:
        emit_json(app.views.view(item))
        if queued:
            self._due(app, item, "queued")

    def sent(self, view: PostView) -> None:
        emit_json(view)

    def handed_over(self, app: App, item: Item) -> None:
        emit_json(app.views.view(item))

    def listing(self, posts: ListedPosts, wide: bool) -> None:
        lines = posts.json_lines()
        if lines is not None:
            emit_json_lines(lines)
        else:
            emit_json(posts.views)

    def post(self, app: App, item: Item) -> None:
        emit_json(app.views.show(item))

    def slots(self, rows: list[SlotView]) -> None:
        emit_json(rows)

    def imported(self, app: App, entries: Sequence[Entry]) -> None:
        emit_json([app.views.view(app.items.load(e)) for e in entries])

    def calendar(self, app: App, period: Period, days: list[Day]) -> None:
        from ..calendar import as_json

        emit_json(as_json(days))

    def changed(self, app: App, items: Sequence[Item], verb: str) -> None:
        emit_json([app.views.view(i) for i in items])
        for item in items:
            self._due(app, item, verb)

    def stats(self, app: App, data: Stats) -> None:
        emit_json(data)

    def checked(self, reports: list[dict[str, Any]]) -> None:
        emit_json(reports)

    def explained(
        self, threads: dict[str, dict[str, list[dict[str, Any]]]], reports: list[dict[str, Any]]
    ) -> None:
        import json

        # On one line: for 1,000 long posts, indenting costs a quarter of the run.
        # The problems: exit status 3 (`check --json` lists them).
        text = json.dumps(threads, ensure_ascii=False)
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8", "backslashreplace") + b"\n")

    def daemon_status(self, status: Status) -> None:
        emit_json(status.as_dict())

    def health(self, ok: bool, detail: str) -> None:
        emit_json({"healthy": ok, "detail": detail})

    def accounts(self, rows: list[dict[str, Any]]) -> None:
        emit_json(rows)

    def accounts_tested(self, reports: list[dict[str, Any]]) -> None:
        emit_json(reports)

    def feeds(self, rows: list[FeedView]) -> None:
        emit_json(rows)

    @staticmethod
    def _due(app: App, item: Item, verb: str) -> None:
        # Whatever the format, a queued post's time is said on stderr (local time and UTC),
        # named by its ID: stdout has no line of its own for it.
        if item.due and item.state == "scheduled":
            note(f"{item.id}: {verb} for {echo_time(app, item.due)}")


# -- text ------------------------------------------------------------------------------------


class TextOutput:
    """Results for people: IDs and tables on stdout, what became of them on stderr."""

    def initialised(self, done: Initialised) -> None:
        _echo(f"config: {done.config}{' (created)' if done.config_created else ''}")
        _echo(f"spool:  {done.spool}")
        _echo(f"state:  {done.state_dir}")

    def added(self, app: App, item: Item, queued: bool) -> None:
        _echo(item.id)
        if queued:
            self._due(app, item, "queued")
        else:
            note(f"kept in drafts/ ({item.entry.path})")

    def sent(self, view: PostView) -> None:
        _echo(view["id"])
        for account in view["platforms"]:
            r = view["results"].get(account)
            if r is not None:
                note(f"{account}: sent {r.get('url') or r.get('id') or ''}".rstrip())
        if view["state"] == "failed":
            note(f"failed: {view['error']}")
        elif view["state"] == "scheduled":
            why = f"held: {view['held']}" if view["held"] else view["error"] or "deferred"
            note(f"not sent yet: {why}; it stays queued")

    def handed_over(self, app: App, item: Item) -> None:
        _echo(item.id)
        note("due now: the running daemon sends it")

    def listing(self, posts: ListedPosts, wide: bool) -> None:
        app, items, views = posts.app, posts.items, posts.views
        everything = posts.state_name == "all"
        if not views:
            note(f"no posts in {'the spool' if everything else posts.state_name}")
            return
        rows = []
        for item, v in zip(items, views, strict=True):
            status = until(app, item.due) if item.state == "scheduled" else item.state
            if item.state == "sent" and (v["deleted_at"] or v["expires_at"]):
                status = "deleted" if v["deleted_at"] else f"expires {until(app, _at(v))}"
            if v["held"]:
                status += " (held)"
            elif v["error"] and item.state == "scheduled":
                status += " (invalid)" if item.problem else " (deferred)"
            elif v["retry_at"]:
                status += " (retrying)"
            elif v["edited_at"]:
                status += " (edited)"
            text = v["preview"]
            if v["repeat"] is not None:  # a recurring post's template: its rule in words
                text = f"({v['repeat']['words']}) {text}"
            row = [item.id, local(app, item.due), status, _accounts(app, v), text]
            if everything:
                row.insert(1, item.state)
            rows.append(row)
        header = ["ID", "WHEN", "DUE", "ACCOUNTS", "PREVIEW"]
        if everything:
            header.insert(1, "STATE")
        if wide:
            table(rows, header)
        else:
            need = posts.id_prefix_lengths()
            short_id = max(width(i.id[: max(need.get(i.id, 0), ID_SHORT)]) for i in items)
            accounts, preview = len(header) - 2, len(header) - 1
            shrink = [(preview, 30), (0, short_id), (accounts, 12), (preview, 8)]
            table(rows, header, usage.columns(), shrink, exact=0)
        for item, v in zip(items, views, strict=True):
            if v["error"] and item.state in ("scheduled", "failed", "new"):
                note(f"{item.id}: {v['error']}")
            if v["held"]:
                note(f"{item.id}: held: {v['held']}")

    def post(self, app: App, item: Item) -> None:
        v = app.views.show(item)
        _echo(f"id:        {v['id']}")
        _echo(f"state:     {v['state']}")
        _echo(f"path:      {app.root / v['path']}")
        if item.due:
            # Only what is still to be sent is "in 2h" or "due now"; a sent post was due.
            due = f" ({until(app, item.due)})" if item.state in ("new", "scheduled") else ""
            label = "next:      " if v["repeat"] is not None else "when:      "
            _echo(f"{label}{echo_time(app, item.due)}{due}")
        if v["repeat"] is not None:
            _echo(f"repeat:    {v['repeat']['words']} ({v['repeat']['rule']})")
        if item.post is not None and item.post.skip:
            _echo(f"skip:      {', '.join(item.post.skip)}")
        _echo(f"accounts:  {', '.join(v['platforms'])}")
        if any(v["senders"].values()):
            hosts = (f"{a}: {h or 'any host'}" for a, h in v["senders"].items())
            _echo(f"senders:   {', '.join(hosts)}")
        if item.post is not None and item.post.repost is not None:
            for account in v["platforms"]:
                _echo(f"repost:    {account}: {item.post.repost.target(account)}")
        _echo(f"attempts:  {v['attempts']}")
        for account, r in v["results"].items():
            result = item.post.results.get(account) if item.post else None
            edited = f" (edited {result.edited_at})" if result and result.edited_at else ""
            gone = f" (deleted {r['deleted_at']})" if r["deleted_at"] else ""
            _echo(f"sent:      {account}: {r.get('url') or r.get('id') or '(no id)'}{edited}{gone}")
        if (expires := _at(v)) is not None:
            _echo(f"expires:   {echo_time(app, expires)} ({until(app, expires)})")
        if v["retry_at"]:
            _echo(f"retry at:  {v['retry_at']}")
        if v["error"]:
            _echo(f"error:     {v['error']}")
        if v["held"]:
            _echo(f"held:      {v['held']}")
        post = item.post
        if post:
            for n, part in enumerate(post.parts, 1):
                _echo("")
                if len(post.parts) > 1:
                    _echo(f"--- part {n}/{len(post.parts)}")
                _echo(part)

    def slots(self, rows: list[SlotView]) -> None:
        # "Fri 2026-12-04 09:00 +01:00  default       abcd1234-hello…": within 80 columns.
        for row in rows:
            t = datetime.fromisoformat(row["local"])
            clock = t.strftime("%H:%M:%S" if t.second else "%H:%M")
            offset = row["local"][19:]
            who = cut(row["id"], 36) if row["id"] is not None else "(free)"
            _echo(f"{t:%a %Y-%m-%d} {clock} {offset:6}  {cut(row['queue'], 12):12}  {who}")

    def calendar(self, app: App, period: Period, days: list[Day]) -> None:
        from .calendar import render

        # Each piece from a post was made printable by `render`, and the colours are ours.
        click.echo("\n".join(render(period, days, app.config.timezone, app.items.prefix_lengths())))

    def changed(self, app: App, items: Sequence[Item], verb: str) -> None:
        for item in items:
            _echo(item.id)
            self._due(app, item, verb)

    def imported(self, app: App, entries: Sequence[Entry]) -> None:
        for entry in entries:
            _echo(entry.id)

    def stats(self, app: App, data: Stats) -> None:
        by_state = ", ".join(f"{n} {s}" for s, n in data["by_state"].items())
        _echo(f"{data['total']} posts: {by_state}")
        if data["by_platform"]:
            _echo(
                "queued by account: "
                + ", ".join(f"{a} {n}" for a, n in sorted(data["by_platform"].items()))
            )
        if data["edited"]:
            _echo(f"edited after sending: {data['edited']}")
        if data["deleted"] or data["expiring"]:
            _echo(f"sent: {data['deleted']} deleted, {data['expiring']} expiring")
        b = data["buckets"]
        _echo(
            f"due: {b['next_hour']} in the next hour, {b['today']} later today, "
            f"{b['this_week']} this week, {b['later']} later"
        )
        if data["next"]:
            _echo("\nnext:")
            for v in data["next"]:
                due = datetime.fromisoformat(v["scheduled_at"]) if v["scheduled_at"] else None
                _echo(f"  {local(app, due):22} {until(app, due):12} {v['id']}  {v['preview']}")
        days = data["days"]
        top = max((d["count"] for d in days), default=0)
        if top:
            _echo("\nthe coming weeks:")
            bar_width = 40
            for d in days:
                day = datetime.fromisoformat(d["date"])
                bar = "█" * max(1 if d["count"] else 0, round(d["count"] * bar_width / top))
                _echo(f"  {day:%a %m-%d} {bar} {d['count'] or ''}".rstrip())

    def checked(self, reports: list[dict[str, Any]]) -> None:
        for r in reports:
            for p in r["problems"]:
                _echo(f"{r['path']}: {p}")
            for w in r["warnings"]:
                _echo(f"{r['path']}: warning: {w}")
        bad = sum(1 for r in reports if r["problems"])
        note(f"{len(reports)} checked, {bad} with problems")

    def explained(
        self, threads: dict[str, dict[str, list[dict[str, Any]]]], reports: list[dict[str, Any]]
    ) -> None:
        import textwrap

        for name, accounts in threads.items():
            _echo(f"== {name}")
            for account, parts in accounts.items():
                for n, part in enumerate(parts, 1):
                    limit = part["limit"]
                    count = f"{part['count']} of {limit}" if limit is not None else part["count"]
                    over = "  OVER THE LIMIT" if limit is not None and part["count"] > limit else ""
                    _echo(f"-- {account}, part {n} of {len(parts)}: {count}{over}")
                    for line in part["text"].split("\n"):
                        wrapped = textwrap.wrap(line, 76, break_on_hyphens=False) or [""]
                        for piece in wrapped:
                            _echo(f"   {piece}")
        self.checked(reports)

    def daemon_status(self, status: Status) -> None:
        pid = f" (pid {status.pid})" if status.pid else ""
        _echo(f"mode:    {status.mode}")
        _echo(f"running: {'yes' if status.running else 'no'}{pid}")
        _echo(f"health:  {'ok' if status.healthy else 'not ok'}: {status.detail}")

    def health(self, ok: bool, detail: str) -> None:
        _echo(("healthy: " if ok else "unhealthy: ") + detail)

    def accounts(self, rows: list[dict[str, Any]]) -> None:
        table(
            [[r["name"], r["platform"], "yes" if r["default"] else ""] for r in rows],
            ["ACCOUNT", "PLATFORM", "DEFAULT"],
        )

    def accounts_tested(self, reports: list[dict[str, Any]]) -> None:
        for r in reports:
            if r["ok"]:
                extra = ", ".join(
                    f"{k}={v}" for k, v in r.items() if k not in ("account", "ok", "platform")
                )
                _echo(f"{r['account']}: ok ({extra})" if extra else f"{r['account']}: ok")
            else:
                _echo(f"{r['account']}: FAILED: {r['error']}")
                if r["hint"]:
                    _echo(f"  hint: {r['hint']}")

    def feeds(self, rows: list[FeedView]) -> None:
        if not rows:
            note("no feeds: add one with `plurspool feed add URL`")
            return
        table(
            [
                [
                    r["url"],
                    "drafts" if r["draft"] else f"queue {r['queue']}",
                    r["last_poll"] or "never",
                    str(r["seen"]),
                    r["last_error"] or "",
                ]
                for r in rows
            ],
            ["FEED", "INTO", "LAST POLL", "SEEN", "LAST ERROR"],
        )

    @staticmethod
    def _due(app: App, item: Item, verb: str) -> None:
        # On stderr: when a queued post is due, in local time and UTC; else its new state.
        if item.due and item.state == "scheduled":
            note(f"{verb} for {echo_time(app, item.due)}")
        else:
            note(f"{verb}: now in {item.state}/")


OUTPUTS: dict[str, type[Output]] = {"text": TextOutput, "json": JsonOutput}


def _at(view: PostView) -> datetime | None:
    """When a sent post's next copy expires (`expires_at`)."""
    t = view["expires_at"]
    return datetime.fromisoformat(t) if t else None


def saved(app: App, item: Item) -> None:
    """What `new` and `edit` print (they have no --format): the ID, and when it is due."""
    _echo(item.id)
    if item.due and item.state == "scheduled":
        note(f"queued for {echo_time(app, item.due)}")


# -- times and tables ------------------------------------------------------------------------


def echo_time(app: App, at: datetime) -> str:
    """A time as plurspool echoes it: local time, and UTC when that differs."""
    from .. import when

    return when.echo(at, app.config.timezone)


def until(app: App, due: datetime | None) -> str:
    """How long until `due`: `in 2h05m`, `due now`, `overdue 3d`; `-` for no time."""
    if due is None:
        return "-"
    delta = due - app.clock()
    s = int(delta.total_seconds())
    if -60 < s <= 0:
        return "due now"
    from .. import when

    sign, s = ("overdue ", -s) if s < 0 else ("in ", s)
    return sign + when.duration(s, coarse=True)


def _accounts(app: App, v: PostView) -> str:
    """A post's accounts for `list`; with [senders], each as ACCOUNT@HOST (`*`: any host)."""
    if not app.config.senders:
        return ",".join(v["platforms"])
    return ",".join(f"{a}@{v['senders'].get(a) or '*'}" for a in v["platforms"])


def local(app: App, due: datetime | None) -> str:
    """`due` in the configured time zone, to the minute; `-` for no time."""
    if due is None:
        return "-"
    return due.astimezone(app.config.timezone).strftime("%Y-%m-%d %H:%M %Z")


def width(text: str) -> int:
    """The columns `text` takes on a terminal: emoji and CJK take two, combining marks none."""
    plain = text[:-1] if text.endswith("…") else text  # a preview's cut mark takes one column
    if plain.isascii() and plain.isprintable():
        return len(text)
    import wcwidth

    return int(wcwidth.width(text))


def cut(text: str, columns: int, mark: str = "…") -> str:
    """`text` in at most `columns`, cut between graphemes and ended with `mark` if cut."""
    if width(text) <= columns:
        return text
    room = columns - width(mark)
    if text[: room + 1].isascii():  # ASCII up to the cut: one column a character, no cluster
        return text[: max(room, 0)] + mark
    import wcwidth

    kept = []
    for grapheme in wcwidth.iter_graphemes(text):
        room -= width(grapheme)
        if room < 0:
            break
        kept.append(grapheme)
    return "".join(kept) + mark


def table(
    rows: list[list[str]],
    header: list[str],
    columns: int | None = None,
    shrink: Sequence[tuple[int, int]] = (),
    exact: int | None = None,
) -> None:
    """Rows under a header, aligned by display width.

    With `columns`, columns are cut until the table fits it, as `shrink` says: (column, its
    narrowest) in turn. A cut cell ends with …, except in the `exact` column (IDs: a prefix
    is still a valid ID).
    """
    cells = [header, *rows]
    widths = [max(width(r[i]) for r in cells) for i in range(len(header))]
    if columns is not None:
        excess = sum(widths) + 2 * (len(widths) - 1) - columns
        for column, narrowest in shrink:
            cutting = min(max(excess, 0), max(widths[column] - narrowest, 0))
            widths[column] -= cutting
            excess -= cutting
        marks = ["" if i == exact else "…" for i in range(len(widths))]
        cells = [list(map(cut, r, widths, marks)) for r in cells]
    for row in cells:
        padded = (c + " " * (w - width(c)) for c, w in zip(row, widths, strict=True))
        _echo("  ".join(padded).rstrip())
