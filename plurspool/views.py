"""What the user sees of posts: a post as JSON (`view`), `list`'s fast path, `stats`, the slots
of the queues (`slots`), and what a calendar shows of a period (`free_slots`, `occurrences`).

A post view is what `list --format json` prints a line of and `show --format json` prints;
`Listing` keeps each state's lines, per host, so that a `list` of 100k unchanged posts parses
none.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from . import when
from .cache import Listing
from .spool import STATES, Entry, Spool

if TYPE_CHECKING:
    from .items import Item, Items
    from .ledger import Delivery, LedgerFile

encode_json = json.JSONEncoder(ensure_ascii=False).encode  # one JSON value, on one line


class Remote(TypedDict):
    """Where an account's copy of a post is: its ID and URL on the platform (may be null), and
    when it was deleted (plurspool(5), `expires`)."""

    id: str | None
    url: str | None
    deleted_at: str | None


class Repeat(TypedDict):
    """A recurring post's rule: the RRULE as its file holds it, and in words."""

    rule: str
    words: str


class PostView(TypedDict):
    """A post as `list`, `show` and `post` print it in JSON (plurspool(1), JSON OUTPUT)."""

    id: str
    state: str
    scheduled_at: str | None
    platforms: list[str]
    preview: str
    path: str
    attempts: int
    error: str | None
    results: dict[str, Remote]
    retry_at: str | None
    repeat: Repeat | None
    held: str | None
    senders: dict[str, str | None]  # account -> the host that sends it, None: any host
    edited_at: str | None  # when `amend` last edited it on a server (UTC, Z)
    expires_at: str | None  # in sent/: when a copy is next due to be deleted
    deleted_at: str | None  # in sent/: when the last copy was deleted, once all are


class Brief(TypedDict):
    """The part of a `PostView` the ICS feed reads (`Views.scheduled_briefly`)."""

    id: str
    scheduled_at: str | None
    platforms: list[str]
    preview: str
    repeat: Repeat | None


class ShownPost(PostView):
    """`show --format json`: the view, with the post's text (parts joined) and its parts."""

    text: str | None
    parts: list[str]


class Day(TypedDict):
    date: str
    count: int


class Stats(TypedDict):
    """What `stats --format json` prints (plurspool(1), JSON OUTPUT)."""

    total: int
    by_state: dict[str, int]
    by_platform: dict[str, int]
    buckets: dict[str, int]
    next: list[PostView]
    days: list[Day]
    edited: int  # sent posts edited by `amend`
    deleted: int  # posts in sent/ whose every copy was deleted
    expiring: int  # posts in sent/ with a copy still to expire


class SlotView(TypedDict):
    """One slot of `queue --format json` (plurspool(1), JSON OUTPUT)."""

    queue: str
    at: str  # UTC, Z
    local: str  # the queue's zone, with its offset
    id: str | None  # the post holding it; None when free


class CalendarDay(TypedDict):
    """One day of `calendar --format json` (plurspool(1), JSON OUTPUT)."""

    date: str  # local, YYYY-MM-DD
    posts: list[PostView]  # a recurring post's occurrences with their own scheduled_at
    free_slots: list[str]  # UTC, Z


def sort_key(item: Item) -> tuple[float, str]:
    """Soonest first; posts without a time last."""
    return (item.due.timestamp() if item.due else float("inf"), item.id)


class Views:
    """Posts of one spool as the user sees them."""

    def __init__(self, items: Items, spool: Spool, ledgers: LedgerFile, state_dir: Path) -> None:
        self.items = items
        self.spool = spool
        self.ledgers = ledgers
        self.state_dir = state_dir

    def view_lines(self, states: Sequence[str]) -> bytes:
        """`list --format json`'s lines (views, UTF-8, one a line), soonest first.

        Each state but failed/ keeps a listing (see `Listing`): the lines of its posts that
        the ledger knows nothing of, with the inode, size and mtime of their files. A file
        that did not change is listed from it, with no parse and no view to build; when
        nothing changed at all, the listing is the answer, byte for byte. The rest take the
        way of `items` and `view`, and the listing is rewritten.
        """
        items = self.items
        fp = items.fingerprint()
        known = self.ledgers.ledger.delivery_ids() if self.ledgers.exists() else set()
        keyed: list[tuple[float, str, int, bytes]] = []  # (due, ID, state's rank, line)
        whole: list[tuple[int, Listing]] = []  # states whose listing is the answer as it is
        # With [git] send_only_committed, whether a due post is held is git's to say each time.
        gated = self.items.config.git.send_only_committed
        now = self.items.clock().timestamp()
        for rank, state in enumerate(states):
            listing = None if state == "failed" else Listing.read(self._listing(state), fp)
            hits, slow, complete = self._match(state, listing, known)
            judged = gated and state == "scheduled"
            if judged and listing is not None and any(listing.dues[i] <= now for i in hits):
                for i in [i for i in hits if listing.dues[i] <= now]:
                    entry = self.spool.stat_entry(state, listing.names[i][:-3])
                    slow += [entry] if entry is not None else []
                hits, complete = [i for i in hits if listing.dues[i] > now], False
            if listing is not None and complete and not slow:
                whole.append((rank, listing))
                continue
            rows = listing.rows(hits) if listing is not None else []
            fresh = list(rows)
            slow_items = items.items_of(slow, states, full=False)
            held = self.held(slow_items) if judged else {}
            for item in slow_items:
                due, post_id = sort_key(item)
                ds = self.ledgers.ledger.deliveries(item.id) if item.id in known else {}
                # A name that is not UTF-8 (refused, but listed) shows as \udcXX escapes.
                line = encode_json(self.view(item, ds, held)).encode("utf-8", "backslashreplace")
                rows.append((due, post_id, line, item.entry.key))
                cached = item.id not in known and item.id not in held  # a hold is not kept
                if state != "failed" and cached and items.cacheable(item.entry):
                    fresh.append((due, post_id, line, item.entry.key))
            if state != "failed":
                fresh.sort(key=lambda r: (r[0], r[1]))
                Listing.write(self._listing(state), fp, fresh)
            keyed.extend((r[0], r[1], rank, r[2]) for r in rows)
        if not keyed and len(whole) == 1:
            return whole[0][1].lines
        for rank, listing in whole:  # several states: merged by time
            keyed.extend((due, post_id, rank, line) for due, post_id, line, _ in listing.rows())
        keyed.sort(key=lambda k: (k[0], k[1], k[2]))
        return b"\n".join(k[3] for k in keyed)

    def _listing(self, state: str) -> Path:
        return self.state_dir / f"listing-{state}"

    def _match(
        self, state: str, listing: Listing | None, known: set[str]
    ) -> tuple[list[int], list[Entry], bool]:
        """Scan a state dir against its listing: (indexes of the listing's lines that still
        hold, entries to list the slow way, whether every line of the listing held).

        The loop runs 100k times for a big queue: a hit costs one lstat and a dict lookup.
        """
        pos = listing.pos if listing is not None else {}
        keys = listing.keys if listing is not None else None
        hits: list[int] = []
        slow: list[Entry] = []
        euid = os.geteuid()
        isreg = stat.S_ISREG
        with self.spool.scandir(state) as it:
            for de in it:
                i = pos.get(de.name)
                if i is not None and keys is not None:
                    try:
                        st = de.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    j = 3 * i
                    if (
                        st.st_ino == keys[j]
                        and st.st_size == keys[j + 1]
                        and st.st_mtime_ns == keys[j + 2]
                        and st.st_nlink == 1
                        and st.st_uid == euid
                        and isreg(st.st_mode)
                        and de.name[:-3] not in known
                    ):
                        hits.append(i)
                        continue
                found = self.spool.scan_one(state, de)
                if found is not None:
                    slow.append(found[1])
        complete = listing is not None and len(hits) == len(listing.names)
        return hits, slow, complete

    def all_deliveries(self) -> dict[str, dict[str, Delivery]]:
        """Every post's ledger rows, by post ID ({} where this host has no ledger)."""
        ledger = self.ledgers.if_exists()
        return ledger.all_deliveries() if ledger is not None else {}

    def deliveries(self, post_id: str) -> dict[str, Delivery]:
        if not self.ledgers.exists():
            return {}
        return self.ledgers.ledger.deliveries(post_id)

    def held(self, items: Sequence[Item]) -> dict[str, str]:
        """Why each due post of scheduled/ in `items` is held by `[git] send_only_committed`."""
        if not self.items.config.git.send_only_committed:
            return {}
        from .gitsync import held_now

        now = self.items.clock()
        scheduled = [
            i for i in items if i.state == "scheduled" and i.valid and i.due and i.due <= now
        ]
        return held_now(self.items.config, self.spool.root, scheduled) if scheduled else {}

    def view(
        self,
        item: Item,
        deliveries: dict[str, Delivery] | None = None,
        held: Mapping[str, str] | None = None,
    ) -> PostView:
        """A post as JSON (plurspool(1), JSON OUTPUT); `held`: `held(items)` of a batch."""
        ds = self.deliveries(item.id) if deliveries is None else deliveries
        held = self.held([item]) if held is None else held
        summary = item.summary
        results: dict[str, Remote] = {}
        attempts = summary.attempts if summary else 0
        if summary:
            for account, rid, url, gone in summary.results:
                results[account] = {"id": rid, "url": url, "deleted_at": gone}
        for account, d in ds.items():
            if d.status == "sent" and account not in results:
                results[account] = {"id": d.remote_id, "url": d.url, "deleted_at": None}
            attempts = max(attempts, d.attempts)
        error = item.problem
        if item.state == "failed":
            error = self.spool.read_error(item.id) or error
        pending_errors = [
            f"{a}: {d.error}" for a, d in sorted(ds.items()) if d.status == "pending" and d.error
        ]
        if error is None and item.state == "scheduled" and pending_errors:
            error = "; ".join(pending_errors)
        retry_at = [
            d.next_at for d in ds.values() if d.status == "pending" and d.next_at is not None
        ]
        return {
            "id": item.id,
            "state": item.state,
            "scheduled_at": when.iso_utc(item.due) if item.due else None,
            "platforms": (platforms := list(self.items.platforms(summary))),
            "preview": summary.preview if summary else "",
            "path": f"{item.state}/{item.id}.md",
            "attempts": attempts,
            "error": error,
            "results": results,
            "retry_at": when.iso_utc(datetime.fromtimestamp(max(retry_at), UTC))
            if retry_at and item.state == "scheduled"
            else None,
            "repeat": self._repeat(summary.repeat) if summary and summary.repeat else None,
            "held": held.get(item.id),
            "senders": {a: self.items.config.sender_of(a) for a in platforms},
            "edited_at": summary.edited if summary else None,
            "expires_at": _iso(summary.expires) if summary and item.state == "sent" else None,
            "deleted_at": _all_deleted(results) if item.state == "sent" else None,
        }

    def _repeat(self, rule: str) -> Repeat:
        """A recurring rule and its words ("every Monday at 09:00"; plurspool(5), `repeat`)."""
        from .errors import PostError
        from .repeat import describe, parse

        try:
            words = describe(parse(rule), self.items.config.timezone)
        except PostError:
            words = rule  # an invalid post: its problem says why
        return {"rule": rule, "words": words}

    def show(self, item: Item) -> ShownPost:
        """A post as `show --format json` prints it: its view, text and parts."""
        post = item.post
        view = self.view(item)
        if item.state == "sent" and self.ledgers.exists():  # a deletion failed for good
            rows = sorted(self.ledgers.ledger.deletions(item.id).items())
            gone = [f"{a}: not deleted: {d.error}" for a, d in rows if d.status == "failed"]
            view["error"] = "; ".join(gone) or view["error"]
        return {
            **view,
            "text": "\n\n---\n\n".join(post.parts) if post else None,
            "parts": list(post.parts) if post else [],
        }

    def slots(self, name: str | None, days: int) -> list[SlotView]:
        """The slots of the queue `name` (every queue for None) in the next `days` days, soonest
        first, each with the post holding it."""
        config = self.items.config
        queues = [config.queue(name)] if name is not None else list(config.queues.values())
        if not queues:
            config.queue(None)  # an error naming how to configure one
        now = self.items.clock()
        out: list[tuple[datetime, SlotView]] = []
        for q in queues:
            held = {i.due: i.id for i in self.items.queued(q.name)}
            for t in q.slots.between(now, now + timedelta(days=days)):
                view: SlotView = {
                    "queue": q.name,
                    "at": when.iso_utc(t),
                    "local": when.iso_local(t, q.slots.tz),
                    "id": held.get(t),
                }
                out.append((t, view))
        out.sort(key=lambda row: (row[0], row[1]["queue"]))
        return [view for _, view in out]

    def scheduled(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> list[PostView]:
        """The views of scheduled/ (due from `start` to before `end`, and those of every
        recurring post, whose occurrences may fall there), soonest first, from its listing
        (`view_lines`): a line of another time is not decoded."""
        out: list[PostView] = json.loads(b"[%s]" % b",".join(self._lines(start, end, False)))
        return out  # decoded in one call: 3× faster

    def scheduled_briefly(self) -> list[Brief]:
        """`scheduled()` as the ICS feed reads it: a single post's line is decoded up to its
        `preview` (less than half of it), a recurring post's whole."""
        out: list[Brief] = json.loads(b"[%s]" % b",".join(self._lines(None, None, True)))
        return out

    def _lines(self, start: datetime | None, end: datetime | None, brief: bool) -> list[bytes]:
        """The listing's lines for `scheduled`: their key order and spacing are `encode_json`'s,
        and a quote inside a value is escaped, so a key is found by its quoted name."""
        lines = self.view_lines(["scheduled"])
        lo = when.iso_utc(start).encode() if start is not None else b""
        hi = when.iso_utc(end).encode() if end is not None else b"~"
        key, repeat, path = b'"scheduled_at": "', b'"repeat": ', b', "path": '
        keep: list[bytes] = []
        for line in lines.split(b"\n") if lines else ():
            i = line.find(key) + len(key)
            # The first "repeat" after "retry_at" is the view's own (not an account's name).
            r = line.find(repeat, line.find(b'"retry_at": '))
            single = i >= len(key) and r > 0 and line.startswith(b'"repeat": null,', r)
            if single and not lo <= line[i : i + len(lo)] < hi:
                continue
            cut = line.find(path) if brief and single else -1  # `path` follows `preview`
            keep.append(line if cut < 0 else line[:cut] + b', "repeat": null}')
        return keep

    def free_slots(
        self, start: datetime, end: datetime, account: str | None = None
    ) -> list[tuple[datetime, str]]:
        """(instant, queue) of every free slot from `start` (and after now) to before `end`,
        soonest first; with `account`, of the queues whose posts go to it."""
        config = self.items.config
        start = max(start, self.items.clock())
        out = []
        for q in config.queues.values():
            if account is not None and account not in (q.accounts or config.default_platforms):
                continue
            busy = self.items.queue_dues(q.name)
            out += [(t, q.name) for t in q.slots.between(start, end) if t.timestamp() not in busy]
        return sorted(out)

    def occurrences(self, template: PostView, end: datetime) -> list[datetime]:
        """A recurring post's occurrences before `end`: its next (`scheduled_at`) and the
        rule's after it, its `skip:` dates left out (plurspool(5), `repeat`)."""
        from .repeat import occurrences

        if template["repeat"] is None or template["scheduled_at"] is None:
            return []
        entry = self.spool.stat_entry("scheduled", template["id"])
        item = self.items.load(entry) if entry is not None else None
        post = item.post if item is not None and item.valid else None
        if post is None:
            return []  # gone meanwhile, or invalid: its view says why
        anchor = datetime.fromisoformat(template["scheduled_at"])
        tz = self.items.config.timezone
        out = []
        for at in occurrences(template["repeat"]["rule"], anchor, tz, self.items.skip_dates(post)):
            if at >= end:
                break
            out.append(at)
        return out

    def stats(self) -> Stats:
        """Totals by state and account, due buckets, the next posts (plurspool(1), JSON OUTPUT)."""
        now = self.items.clock()
        tz = self.items.config.timezone
        by_state = {s: 0 for s in STATES}
        by_platform: dict[str, int] = {}
        buckets = {"next_hour": 0, "today": 0, "this_week": 0, "later": 0}
        local_now = now.astimezone(tz)
        midnight = datetime.combine(
            local_now.date() + timedelta(days=1), datetime.min.time(), tz
        ).astimezone(UTC)
        for state in STATES:
            if state not in ("scheduled", "sent"):
                by_state[state] = sum(1 for _ in self.spool.scan(state))
        sent = [i.summary for i in self.items.in_states(["sent"])]
        by_state["sent"] = len(sent)
        scheduled = self.items.in_states(["scheduled"])
        by_state["scheduled"] = len(scheduled)
        for item in scheduled:
            for account in self.items.platforms(item.summary):
                by_platform[account] = by_platform.get(account, 0) + 1
            due = item.due or now
            if due <= now + timedelta(hours=1):
                buckets["next_hour"] += 1
            elif due < midnight:
                buckets["today"] += 1
            elif due <= now + timedelta(days=7):
                buckets["this_week"] += 1
            else:
                buckets["later"] += 1
        nxt = sorted(scheduled, key=sort_key)[:5]
        return {
            "total": sum(by_state.values()),
            "by_state": by_state,
            "by_platform": by_platform,
            "buckets": buckets,
            "next": [self.view(i) for i in nxt],
            "days": _per_day(scheduled, now, tz),
            "edited": self._edited(),
            "deleted": sum(1 for s in sent if s and s.results and all(r[3] for r in s.results)),
            "expiring": sum(1 for s in sent if s and s.expires is not None),
        }

    def _edited(self) -> int:
        """How many sent posts `amend` edited: counted in `list`'s lines of sent/ (its fast
        path: a post is parsed only when its file changed since it was last listed)."""
        return self.view_lines(["sent"]).count(b'"edited_at": "')


def _iso(t: float | None) -> str | None:
    return None if t is None else when.iso_utc(datetime.fromtimestamp(t, UTC))


def _all_deleted(results: dict[str, Remote]) -> str | None:
    """When the last copy of a sent post was deleted, once every copy is; else None."""
    gone = [r["deleted_at"] for r in results.values()]
    return max(g for g in gone if g) if gone and all(gone) else None


def _per_day(items: list[Item], now: datetime, tz: Any, days: int = 28) -> list[Day]:
    today = now.astimezone(tz).date()
    counts = {today + timedelta(days=n): 0 for n in range(days)}
    for item in items:
        if item.due is None:
            continue
        day = max(item.due.astimezone(tz).date(), today)
        if day in counts:
            counts[day] += 1
    return [{"date": d.isoformat(), "count": c} for d, c in counts.items()]
