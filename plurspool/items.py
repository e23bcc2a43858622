"""Entry → Item: read and validate post files, cache their parses, find them, and judge them.

Data flows one way: bytes on disk (spool) → a `Post` (post) → an `Item` (a post in a state, with
its due time or the problem that keeps it from being sent). Intake's verdict on a file in new/
and lateness are judged here, without changing anything; `checking` words them for `check`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import slots, when
from .cache import CacheRow, Listing, Summary, fingerprint, known_queues
from .errors import InvalidInput, PlurspoolError, PostError, TimeError
from .platforms import deletable
from .spool import STATES, Entry, Refused, Spool, classify, utf8_name

if TYPE_CHECKING:  # post/ (and yaml) load on the first parse: `list` from the cache needs none
    from .config import Config, QueueConfig
    from .ledger import LedgerFile
    from .platforms.base import Outcome, Quoted
    from .post import Post


class Item:
    """A post file in a state: its due time or the problem that keeps it from being sent.

    The parsed `post` is loaded on first use: listing 100k posts from the cache parses none.
    """

    __slots__ = ("_load", "_post", "due", "entry", "problem", "summary")

    def __init__(
        self,
        entry: Entry,
        post: Post | None,
        problem: str | None,
        due: datetime | None,
        summary: Summary | None = None,
        load: Callable[[], Post | None] | None = None,
    ) -> None:
        self.entry = entry
        self._post = post
        self.problem = problem
        self.due = due
        self.summary = summary if summary is not None or post is None else Summary.of(post)
        self._load = load

    @property
    def post(self) -> Post | None:
        if self._post is None and self._load is not None:
            self._post, self._load = self._load(), None
        return self._post

    @property
    def valid(self) -> bool:
        """Parsed and free of problems: it may be sent when due."""
        return self.problem is None and self.summary is not None

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def state(self) -> str:
        return self.entry.state


@dataclass(frozen=True)
class Verdict:
    """What intake makes of a file in new/: refused (`problem`), or queued at `at`."""

    problem: str | None = None
    rename: bool = False  # refused because its ID is taken: kept in failed/ under a new name
    at: datetime | None = None
    stamped: bytes | None = None  # the file with its time written back, if that is needed


class Items:
    """The posts of one spool as items: loaded, validated and cached; found by ID prefix."""

    def __init__(
        self, config: Config, clock: Callable[[], datetime], spool: Spool, ledgers: LedgerFile
    ) -> None:
        self.config = config
        self.clock = clock
        self.spool = spool
        self.ledgers = ledgers
        self._cache: dict[str, tuple[tuple[int, int, int], Item]] = {}

    def load(self, entry: Entry) -> Item:
        """Read and validate a post file (cached by inode, size and mtime)."""
        cached = self._cache.get(entry.fspath)
        if cached and cached[0] == entry.key and entry.regular and entry.nlink == 1:
            return cached[1]
        item = self._load(entry)
        self._cache[entry.fspath] = (entry.key, item)
        return item

    def forget(self, path: Path) -> None:
        self._cache.pop(os.fspath(path), None)

    def _load(self, entry: Entry) -> Item:
        if classify(entry.path.name) == "conflict":
            return Item(entry, None, "it is a sync tool's conflict copy; merge it by hand", None)
        try:
            data = self.spool.read(entry)
        except Refused as exc:
            return Item(entry, None, f"refused: {exc.message.split(': ', 1)[-1]}", None)
        except FileNotFoundError:
            return Item(entry, None, "it vanished while being read", None)
        return self.item_from_bytes(entry, data)

    def item_from_bytes(self, entry: Entry, data: bytes) -> Item:
        """Validate post bytes as they would be in `entry`'s state."""
        from .post import expiry, parse

        try:
            post = parse(data)
        except PostError as exc:
            return Item(entry, None, exc.one_line(), None)
        problem = self.post_problem(post)
        due = None
        if post.schedule is not None:
            try:
                due = when.parse_absolute(post.schedule, tz=self.config.timezone)
            except TimeError as exc:
                if entry.state == "scheduled":
                    where = f"line {post.schedule_line}: " if post.schedule_line else ""
                    problem = problem or (
                        f"{where}schedule {post.schedule!r} is not an absolute time "
                        f"({exc.message}); "
                        "in scheduled/ write an ISO time like 2026-12-01T09:00:00+01:00, "
                        "or move the file to new/ to have it resolved"
                    )
        elif entry.state == "scheduled":
            due = datetime.fromtimestamp(entry.mtime_ns / 1e9, UTC)
        tz, sent = self.config.timezone, entry.state == "sent"
        problem = problem or (None if sent else expiry.problem(post, due, tz))
        expires = expiry.next_due(post, tz, deletable(self.config.accounts)) if sent else None
        return Item(entry, post, problem, due, Summary.of(post, expires))

    def account_problem(self, post: Post) -> str | None:
        unknown = [a for a in self.platforms(post) if a not in self.config.accounts]
        if unknown:
            known = ", ".join(sorted(self.config.accounts)) or "none"
            return (
                f"unknown account{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in "
                f"`platforms` (configured: {known})"
            )
        return None

    def platform_issues(self, post: Post) -> list[tuple[str, str, str]]:
        """Per-account checks (lengths, media...): (level, account, message), errors first."""
        from .platforms import get
        from .platforms.base import Outcome

        out = []
        for name in self.platforms(post):
            account = self.config.accounts.get(name)
            if account is None:
                continue
            platform = get(account.platform)
            if post.poll is not None and not platform.polls:
                out.append(
                    (
                        "error",
                        name,
                        f"line {post.poll.line}: `poll`: {account.platform} has no polls; "
                        "send the poll to mastodon accounts only, and the others a post "
                        "of their own",
                    )
                )
            for issue in platform.check(post, account, self.spool.root):
                out.append((issue.level, name, issue.message))
            for quoted in (self.quoted(post, name), self.quoted(post, name, "repost")):
                if isinstance(quoted, Outcome) and quoted.error:
                    level = "error" if quoted.status == "permanent" else "warning"
                    out.append((level, name, quoted.error))
        return sorted(out, key=lambda t: t[0] != "error")

    def post_problem(self, post: Post) -> str | None:
        """Why a post cannot be sent as it is, or None."""
        problem = self.account_problem(post)
        if problem:
            return problem
        errors = [f"{a}: {m}" for level, a, m in self.platform_issues(post) if level == "error"]
        return "; ".join(errors) or None

    def platforms(self, post: Post | Summary | None) -> tuple[str, ...]:
        """The accounts a post goes to: its own `platforms`, else its queue's `accounts`, else
        default_platforms."""
        if post is not None and post.platforms is not None:
            return post.platforms
        queue = self.config.queues.get(post.queue) if post is not None and post.queue else None
        if queue is not None and queue.accounts is not None:
            return queue.accounts
        return self.config.default_platforms

    def in_states(self, states: Sequence[str]) -> list[Item]:
        """Every post in these states, from the parse cache where files did not change."""
        entries = [e for state in states for e in self.spool.entries(state)]
        return self.items_of(entries, states, full=True)

    def items_of(self, entries: list[Entry], states: Sequence[str], full: bool) -> list[Item]:
        """Items for `entries`; `full`: they are all of `states` (cache rows of others go)."""
        fp = self.fingerprint()
        misses = [e for e in entries if not self._mem_hit(e)]
        disk = self.ledgers.ledger.cached(fp) if len(misses) > 20 else {}
        store: list[CacheRow] = []
        out = []
        for entry in entries:
            path = entry.fspath
            hit = disk.get(path)
            if self._mem_hit(entry):
                item = self.load(entry)
            elif hit is not None and hit[0] == entry.key and self.cacheable(entry):
                item = self._from_record(entry, hit[1])
                self._cache[entry.fspath] = (entry.key, item)
            else:
                item = self.load(entry)
                if self.cacheable(entry) and (item.summary or item.problem):
                    store.append(self._row(item))
            out.append(item)
        if store or (disk and full):
            drop = self._gone(disk, entries, states) if full else []
            self.ledgers.ledger.cache(fp, store, drop)
        return out

    def cacheable(self, entry: Entry) -> bool:
        """Whether a parse of this file may be cached (a file `spool.read` would refuse not)."""
        return (
            entry.regular
            and entry.nlink == 1
            and entry.uid == os.geteuid()
            and entry.size <= self.spool.max_size
            and utf8_name(entry.fspath)
        )

    def _gone(self, disk: Any, entries: list[Entry], states: Sequence[str]) -> list[str]:
        """Cached paths in `states` that are no longer there."""
        seen = {e.fspath for e in entries}
        prefixes = tuple(str(self.spool.dir(s)) + os.sep for s in states)
        return [p for p in disk if p.startswith(prefixes) and p not in seen]

    def _row(self, item: Item) -> CacheRow:
        """An item as the parse cache stores it; its `due` column is when the daemon must
        look at it (`wake`)."""
        return (item.entry.fspath, item.entry.key, wake(item), item.problem, record(item))

    def due_index(self, state: str = "scheduled") -> Iterator[tuple[Entry, float | None, bool]]:
        """(entry, due time, valid) for every post in a state, for the daemon's heap.

        From the parse cache where files did not change; a miss is parsed (and cached) but
        not kept in memory: 100k scheduled posts must not mean 100k parsed posts held. Cache
        rows are streamed and entries handed out as they match, to keep the peak low.
        """
        entries = {e.fspath: e for e in self.spool.entries(state)}
        fp = self.fingerprint()
        prefix = str(self.spool.dir(state)) + os.sep
        drop: list[str] = []
        for row in self.ledgers.ledger.cached_dues(fp):
            e = entries.get(row[0])
            if e is None:
                if row[0].startswith(prefix):
                    drop.append(row[0])
            elif row[1:4] == e.key and self.cacheable(e):
                del entries[row[0]]
                yield e, row[4], not row[5]
        store: list[CacheRow] = []
        for e in entries.values():
            item = self._load(e)
            if self.cacheable(e) and (item.summary or item.problem):
                store.append(self._row(item))
            yield e, wake(item), item.valid
        if store or drop:
            self.ledgers.ledger.cache(fp, store, drop)

    def _mem_hit(self, entry: Entry) -> bool:
        cached = self._cache.get(entry.fspath)
        return cached is not None and cached[0] == entry.key and entry.regular

    def fingerprint(self) -> str:
        """What a cached parse depends on besides the file: configuration and limits."""
        return fingerprint(self.config)

    def _from_record(self, entry: Entry, rec: str) -> Item:
        raw = json.loads(rec)
        due = datetime.fromtimestamp(raw["d"], UTC) if raw["d"] is not None else None
        summary = Summary.from_json(raw["s"]) if raw["s"] is not None else None
        return Item(entry, None, raw["p"], due, summary, load=lambda: self._post_of(entry))

    def _post_of(self, entry: Entry) -> Post | None:
        """Parse a post whose summary came from the cache, if it is still that file."""
        now = self.spool.stat_entry(entry.state, entry.id)
        if now is None or now.key != entry.key:
            return None
        from .post import parse

        try:
            return parse(self.spool.read(now))
        except (PlurspoolError, OSError):
            return None

    def find(self, prefix: str, states: tuple[str, ...] = STATES) -> Item:
        """The post whose ID starts with `prefix` (NotFound, or UsageError if several do)."""
        return self.load(self.spool.find(prefix, states))

    def quoted(self, post: Post, account: str, key: str = "quote") -> Quoted | Outcome | None:
        """What `post` quotes (or reposts) for `account`: a URL as written, or for `@ID` the
        recorded result of that earlier post for the same account; an Outcome when it cannot be
        told (temporary while that post waits to be sent there), None without one."""
        from .platforms.base import Outcome, Quoted
        from .post.repost import account_problem

        ref = post.repost if key == "repost" else post.quote
        platform = getattr(self.config.accounts.get(account), "platform", None)
        if key == "repost" and (problem := account_problem(post.repost, account, platform)):
            return Outcome("permanent", error=problem)
        target = None if ref is None else ref.target(account)
        if ref is None or target is None:
            return None
        if not target.startswith("@"):
            return Quoted(url=target)
        where = f"line {ref.line}: `{key}: {target}`"
        try:
            item = self.find(target[1:])
            from .post import parse

            quoted = parse(self.read(item))
        except PlurspoolError as exc:
            return Outcome("permanent", error=f"{where}: {exc.message}")
        except OSError:
            return Outcome("temporary", error=f"{where}: the post moved while being read")
        result = quoted.results.get(account)
        if result is None or result.error or not (result.id or result.url):
            still = item.state in ("new", "scheduled")
            return Outcome(
                "temporary" if still else "permanent",
                error=f"{where}: {item.id} has not been sent to {account}"
                + (" yet" if still else f" (it is in {item.state}/)"),
            )
        return Quoted(url=result.url, id=result.id)

    def prefix_lengths(self) -> dict[str, int]:
        """How many characters of each ID tell it apart from every other in the spool."""
        return self.spool.prefix_lengths()

    def read(self, item: Item) -> bytes:
        """The bytes of a post's file, as they are now."""
        return self.spool.read(item.entry)

    def latest_due(self) -> datetime | None:
        """The latest send time in the queue (for `random:` chains)."""
        dues = [due for _, due, _ in self.due_index("scheduled") if due is not None]
        return datetime.fromtimestamp(max(dues), UTC) if dues else None

    # -- queues (plurspool(1), QUEUES) -------------------------------------------------------

    def queued(self, name: str) -> list[Item]:
        """The posts of scheduled/ holding a slot of the queue `name`, soonest first."""
        items = self.in_states(["scheduled"])
        mine = [i for i in items if i.summary and i.summary.queue == name and i.due]
        return sorted(mine, key=lambda i: (i.due, i.id))

    def free_slot(self, queue: QueueConfig) -> datetime:
        """The queue's earliest slot after now that no post of it in scheduled/ is due at."""
        busy = self.queue_dues(queue.name)
        free = next(t for t in queue.slots.stamps_after(self.clock()) if t not in busy)
        return datetime.fromtimestamp(free, UTC)

    def queue_dues(self, name: str) -> set[float]:
        """The due times of the posts of queue `name` in scheduled/: `post --queue` pays this on
        a queue of 10k posts, so it answers the way `list` does, from a per-host snapshot of
        scheduled/ (`known_queues`); only the files it does not know are read, and it is
        rewritten then."""
        fp = self.fingerprint()
        path = self.ledgers.path.parent / "queues-scheduled"
        snap = Listing.read(path, fp)
        with self.spool.scandir("scheduled") as it:
            busy, hits, unknown = known_queues(snap, it, name, self.spool.max_size)
        found = (Spool.scan_one("scheduled", de) for de in unknown)
        misses = [one[1] for one in found if one is not None]
        # A few (the post made just before) are parsed: opening the ledger would cost more.
        few = len(misses) <= 20
        fresh = []
        for item in [self.load(e) for e in misses] if few else self.items_of(misses, [], False):
            queue = item.summary.queue if item.summary is not None else None
            due = item.due.timestamp() if item.due is not None else math.inf
            if queue == name:
                busy.add(due)
            if self.cacheable(item.entry):
                fresh.append((due, item.id, (queue or "").encode(), item.entry.key))
        if snap is not None and len(hits) == len(snap.names):  # every row still true
            if fresh:
                snap.extended(path, fp, fresh)
        else:
            Listing.write(path, fp, (snap.rows(hits) if snap is not None else []) + fresh)
        return busy

    # -- times -----------------------------------------------------------------------------

    def resolve(
        self, text: str, *, current: datetime | None = None, allow_past: bool = False
    ) -> datetime:
        """A time as the user wrote it → an aware UTC datetime (plurspool(1), TIME FORMATS)."""
        if slots.queue_spec(text) is not None:
            raise TimeError(
                f"{text.strip()!r} asks for a queue slot, which is given only by "
                "`post --queue`, `schedule ID queue[:NAME]` and intake from new/",
                "use one of those, or write a time",
            )
        latest = self.latest_due() if text.strip().lower().startswith("random:") else None
        at = when.parse_when(
            text,
            now=self.clock(),
            tz=self.config.timezone,
            latest=latest,
            current=current,
            allow_past=allow_past,
        )
        # Files hold whole seconds: round up, so a post never goes out before its time.
        return at if not at.microsecond else at.replace(microsecond=0) + timedelta(seconds=1)

    def skip_dates(self, post: Post) -> frozenset[date]:
        """A recurring post's `skip:` as local dates (checked when it was read)."""
        return frozenset(date.fromisoformat(d) for d in post.skip)

    def stamp(self, at: datetime) -> str:
        """How a resolved time is written into a post file: local time with its offset."""
        return when.iso_local(at, self.config.timezone)

    def validate_new(self, data: bytes) -> None:
        """Check a post made from the command line; raises InvalidInput naming the fault."""
        post = _parse_or_invalid(data)
        self._check_media(post)
        problem = self.post_problem(post)
        if problem:
            raise InvalidInput(problem, "fix the post, or name accounts from `plurspool accounts`")

    def _check_media(self, post: Post) -> None:
        """Every media file opens the way a platform will open it (no symlinks, no FIFOs)."""
        from .platforms.media import media_error, open_media

        for m in post.media:
            try:
                os.close(open_media(self.spool.root, m.path))
            except OSError as exc:
                raise InvalidInput(
                    media_error(m.path, exc),
                    f"media paths are relative to the spool root {self.spool.root}",
                ) from None

    def validate_edit(
        self, state: str, post_id: str, data: bytes, original: str | None = None
    ) -> tuple[bytes, Item]:
        """Check an edited file; resolve a relative `schedule` for queued posts.

        `original` is the schedule the post had before the edit: an absolute time in the past
        is refused unless it is that one, left as it was. Returns the bytes to store (with the
        schedule made absolute) and the resulting item. Raises InvalidInput (with the line)
        when the file must be fixed.
        """
        from .post import with_schedule

        post = _parse_or_invalid(data)
        problem = self.post_problem(post)
        if problem:
            raise InvalidInput(problem, "fix the post, or name accounts from `plurspool accounts`")
        self._check_media(post)
        check, spec = data, slots.queue_spec(post.schedule or "")
        if state == "scheduled" and spec is not None:  # the slot is taken on saving (Queue)
            self.config.queue(spec)  # an unknown queue: its error
            check = with_schedule(data, self.stamp(self.clock()))
        elif state == "scheduled" and post.schedule is None:
            # In scheduled/ the time is always written out; no schedule means as soon as possible.
            data = with_schedule(data, self.stamp(self.clock()))
        elif state == "scheduled" and post.schedule is not None:
            try:
                at = when.parse_absolute(post.schedule, tz=self.config.timezone)
            except TimeError:
                at = self.resolve(post.schedule)
                data = with_schedule(data, self.stamp(at))
            else:
                unchanged = original is not None and original.strip() == post.schedule.strip()
                if at < self.clock() and not unchanged:
                    line = f"line {post.schedule_line}: " if post.schedule_line else ""
                    raise TimeError(
                        f"{line}schedule {when.echo(at, self.config.timezone)} is in the past",
                        "write a time to come, or `now` to send it as soon as possible",
                    )
        path = str(self.spool.path(state, post_id))
        entry = Entry(post_id, state, path, 0, 0, 0, 0o100600, 1, 0)
        return data, self.item_from_bytes(entry, check if spec is not None else data)

    # -- judgments ----------------------------------------------------------------------

    def judge_new(self, item: Item, *, ids: bool = True) -> Verdict:
        """Intake's decision on a file in new/, as of now; `check` judges with it too.

        `ids=False` leaves out the clash of its ID with another state (a file outside the
        spool, which has no ID there yet). May raise FileNotFoundError or SpoolError from
        reading the file again to write its time back.
        """
        post = item.post
        if post is None or item.problem:
            return Verdict(item.problem or "invalid post")
        if post.results or post.attempts:
            # A copy of a sent or failed post: its results would make accounts look done.
            return Verdict(
                "it carries the `results`/`attempts` plurspool recorded for an earlier send; "
                "delete those keys to send it as a new post (or `plurspool retry` the original)"
            )
        spool = self.spool
        clash = ids and next(
            (s for s in STATES if s != "new" and spool.stat_entry(s, item.id) is not None), None
        )
        if clash:
            return Verdict(
                f"a post with ID {item.id} is already in {clash}/; intake keeps this one in "
                "failed/ under a new name instead of queueing it (give it another name to send "
                "it as a post of its own)",
                rename=True,
            )
        now = self.clock()
        at = now
        spec = None if post.schedule is None else slots.queue_spec(post.schedule)
        if spec is not None and post.repeat is not None:
            line = f"line {post.schedule_line}: " if post.schedule_line else ""
            return Verdict(
                f"{line}a recurring post (`repeat`) cannot take a queue's slot; give it a time "
                "(its first occurrence) or leave `schedule` out"
            )
        if spec is not None:
            return self._judge_queued(item, spec)
        if post.schedule is not None:
            try:
                at = self.resolve(post.schedule, allow_past=True)
            except TimeError as exc:
                line = f"line {post.schedule_line}: " if post.schedule_line else ""
                return Verdict(f"{line}{exc.message}. {exc.hint}".strip())
            if now - at > self.config.daemon.max_lateness and post.repeat is None:
                return Verdict(self.too_late(item.id, at, now))
        from .post import expiry

        if too_early := expiry.problem(post, at, self.config.timezone):
            return Verdict(too_early)
        if post.repeat is not None:
            return self._judge_template(item, post, at if post.schedule is not None else None)
        stamped = None
        if post.schedule is None or not when.has_offset(post.schedule):
            from .post import with_schedule

            # Written back once, absolute with its offset; nothing else in the file changes.
            stamped = with_schedule(spool.read(item.entry), self.stamp(at))
            if len(stamped) > spool.max_size:
                # Written back, it would be refused as too big, and sit in scheduled/.
                return Verdict(
                    f"with its time written back it would be {len(stamped)} bytes, over the "
                    f"{spool.max_size}-byte limit (max_post_size); shorten it"
                )
        return Verdict(at=at, stamped=stamped)

    def _judge_template(self, item: Item, post: Post, start: datetime | None) -> Verdict:
        """Intake of a recurring post (plurspool(5), `repeat`): its rule normalised and its
        first occurrence written back; one that a `schedule:` in the past started is taken up
        at its first occurrence within max_lateness."""
        from . import repeat
        from .post import with_repeat, with_schedule

        assert post.repeat is not None
        tz, now = self.config.timezone, self.clock()
        skips = self.skip_dates(post)
        try:
            rule, first = repeat.first(post.repeat, start, now, tz, skips)
        except PostError as exc:
            return Verdict(exc.one_line())
        earliest = now - self.config.daemon.max_lateness
        if first is not None and first < earliest:
            first = repeat.next_after(rule, first, tz, earliest - timedelta(seconds=1), skips)
        if first is None:
            return Verdict(
                f"`repeat: {post.repeat}` has no occurrence left after {when.echo(now, tz)}; "
                "change its UNTIL or COUNT, or its `schedule:`"
            )
        data = self.spool.read(item.entry)
        stamped = with_repeat(with_schedule(data, self.stamp(first)), rule)
        if len(stamped) > self.spool.max_size:
            return Verdict(
                f"with its rule and time written back it would be {len(stamped)} bytes, over "
                f"the {self.spool.max_size}-byte limit (max_post_size); shorten it"
            )
        return Verdict(at=first, stamped=stamped if stamped != data else None)

    def _judge_queued(self, item: Item, spec: str) -> Verdict:
        """Intake's verdict on `schedule: queue[:NAME]`: the queue's first free slot, written
        back with `queue: NAME`. Intake holds the queue lock while it asks (Queue.intake)."""
        from .post import with_queue, with_schedule

        post = item.post
        assert post is not None
        line = f"line {post.schedule_line}: " if post.schedule_line else ""
        try:
            queue = self.config.queue(spec)
        except InvalidInput as exc:
            return Verdict(f"{line}{exc.message}; {exc.hint}")
        at = self.free_slot(queue)
        data = with_schedule(self.spool.read(item.entry), self.stamp(at))
        stamped = with_queue(data, queue.name)
        if len(stamped) > self.spool.max_size:
            return Verdict(
                f"with its slot written back it would be {len(stamped)} bytes, over the "
                f"{self.spool.max_size}-byte limit (max_post_size); shorten it"
            )
        return Verdict(at=at, stamped=stamped)

    def too_late(self, post_id: str, at: datetime, now: datetime) -> str:
        """Why a post found more than max_lateness after its time (in new/ or first found due
        in scheduled/) is not sent."""
        tz = self.config.timezone
        lateness = self.config.daemon.max_lateness.total_seconds()
        return (
            f"its time {when.echo(at, tz)} was {when.duration((now - at).total_seconds())} "
            f"ago, more than max_lateness ({when.duration(lateness)}); "
            f"`plurspool retry {post_id}` sends it now, `--schedule WHEN` later"
        )

    def first_due_too_late(self, item: Item, seen: bool) -> str | None:
        """Why the sender fails a post of scheduled/ found due: never `seen` on this host (no
        ledger rows), no result in its file, and more than max_lateness after its time. One
        that waits for a rate limit or a retry has been seen, and is never late."""
        post = item.post
        if seen or post is None or post.results or item.due is None:
            return None
        now = self.clock()
        if now - item.due > self.config.daemon.max_lateness:
            return self.too_late(item.id, item.due, now)
        return None

    def late_copy(self, post_id: str) -> str | None:
        """Why a file in scheduled/ is never sent: a post with its ID is already finished (in
        sent/ or failed/), and this is a copy that came after (a sync, a "keep mine" merge)."""
        done = next((s for s in ("sent", "failed") if self.spool.stat_entry(s, post_id)), None)
        if done is None:
            return None
        return (
            f"a post with ID {post_id} is already finished in {done}/; the sender keeps this "
            "later copy in failed/ under a new name instead of sending it (delete it, or give it "
            "another name to send it as a post of its own)"
        )


def wake(item: Item) -> float | None:
    """When the daemon must look at a post: in sent/, when a copy expires; else its due time."""
    if item.state == "sent":
        return item.summary.expires if item.summary else None
    return item.due.timestamp() if item.due else None


def record(item: Item) -> str:
    """An item as the parse cache stores it."""
    return json.dumps(
        {
            "p": item.problem,
            "d": item.due.timestamp() if item.due else None,
            "s": item.summary.to_json() if item.summary else None,
        },
        ensure_ascii=False,
    )


def _parse_or_invalid(data: bytes) -> Post:
    from .post import parse

    try:
        return parse(data)
    except PostError as exc:
        raise InvalidInput(exc.one_line(), exc.hint) from None
