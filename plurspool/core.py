"""The core every command and the daemon share: loading posts, queue operations, claims, views.

Data flows one way: bytes on disk (spool) → a `Post` (post) → an `Item` (a post in a state, with
its due time or the problem that keeps it from being sent) → a state change in the spool.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import when
from .config import Config
from .errors import (
    InvalidInput,
    NotFound,
    PlurspoolError,
    PostError,
    TimeError,
    UsageError,
)
from .ledger import Delivery, Ledger
from .locks import Claim, Locks
from .spool import STATES, Changed, Entry, Refused, Spool, classify, new_id, utf8_name

if TYPE_CHECKING:  # post.py (and yaml) load on the first parse: `list` from the cache needs none
    from .post import Media, Post

CACHE_FORMAT = 3  # bump when what the parse cache or a listing holds changes
encode_json = json.JSONEncoder(ensure_ascii=False).encode  # one JSON value, on one line
# (path, file key, due, problem, record): one row of the parse cache
CacheRow = tuple[str, tuple[int, int, int], float | None, str | None, str]


def utcnow() -> datetime:
    """The wall clock, as an aware UTC datetime (the one place that reads it)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Summary:
    """What listing a post needs, small enough to cache for 100k posts."""

    platforms: tuple[str, ...] | None
    preview: str
    attempts: int
    results: tuple[tuple[str, str | None, str | None], ...]  # (account, id, url) succeeded

    @classmethod
    def of(cls, post: Post) -> Summary:
        ok = tuple((a, r.id, r.url) for a, r in post.results.items() if r.error is None)
        return cls(post.platforms, post.preview, post.attempts, ok)

    def to_json(self) -> list[Any]:
        return [
            list(self.platforms) if self.platforms is not None else None,
            self.preview,
            self.attempts,
            [list(r) for r in self.results],
        ]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Summary:
        platforms, preview, attempts, results = raw
        return cls(
            tuple(platforms) if platforms is not None else None,
            preview,
            attempts,
            tuple((a, i, u) for a, i, u in results),
        )


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


SPOOLS = "spools"  # under the host's state dir: one state dir per spool, named by `spool_key`


def spool_key(root: Path) -> str:
    """A per-host state subdirectory name for a spool: readable and unique."""
    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:10]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", root.name)[:32] or "spool"
    return f"{base}-{digest}"


class Core:
    """One spool with its configuration and per-host state."""

    def __init__(self, config: Config, clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.clock = clock
        self.spool = Spool(config.spool, config.max_post_size)
        self.state_dir = config.state_dir / SPOOLS / spool_key(self.spool.root)
        self.locks = Locks(self.spool.root, self.state_dir)
        self._ledger: Ledger | None = None
        self._cache: dict[str, tuple[tuple[int, int, int], Item]] = {}

    # -- per-host state --------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._ledger = Ledger(self.state_dir / "ledger.sqlite3")
        return self._ledger

    def claim(self, post_id: str) -> Claim:
        """Claim a post (a context manager too); raises Busy if someone holds it."""
        return self.locks.claim(post_id)

    # -- loading ---------------------------------------------------------------------------

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
        from .post import parse

        try:
            post = parse(data)
        except PostError as exc:
            return Item(entry, None, post_error_text(exc), None)
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
        return Item(entry, post, problem, due)

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

        out = []
        for name in self.platforms(post):
            account = self.config.accounts.get(name)
            if account is None:
                continue
            for issue in get(account.platform).check(post, account, self.spool.root):
                out.append((issue.level, name, issue.message))
        return sorted(out, key=lambda t: t[0] != "error")

    def post_problem(self, post: Post) -> str | None:
        """Why a post cannot be sent as it is, or None."""
        problem = self.account_problem(post)
        if problem:
            return problem
        errors = [f"{a}: {m}" for level, a, m in self.platform_issues(post) if level == "error"]
        return "; ".join(errors) or None

    def platforms(self, post: Post | Summary | None) -> tuple[str, ...]:
        """The accounts a post goes to: its own `platforms`, else default_platforms."""
        if post is not None and post.platforms is not None:
            return post.platforms
        return self.config.default_platforms

    def items(self, states: Sequence[str]) -> list[Item]:
        """Every post in these states, from the parse cache where files did not change."""
        entries = [e for state in states for e in self.spool.entries(state)]
        return self._items(entries, states, full=True)

    def _items(self, entries: list[Entry], states: Sequence[str], full: bool) -> list[Item]:
        """Items for `entries`; `full`: they are all of `states` (cache rows of others go)."""
        fp = self.fingerprint()
        misses = [e for e in entries if not self._mem_hit(e)]
        disk = self.ledger.cached(fp) if len(misses) > 20 else {}
        store: list[CacheRow] = []
        out = []
        for entry in entries:
            path = entry.fspath
            hit = disk.get(path)
            if self._mem_hit(entry):
                item = self.load(entry)
            elif hit is not None and hit[0] == entry.key and self._cacheable(entry):
                item = self._from_record(entry, hit[1])
                self._cache[entry.fspath] = (entry.key, item)
            else:
                item = self.load(entry)
                if self._cacheable(entry) and (item.summary or item.problem):
                    store.append(self._row(item))
            out.append(item)
        if store or (disk and full):
            drop = self._gone(disk, entries, states) if full else []
            self.ledger.cache(fp, store, drop)
        return out

    def _cacheable(self, entry: Entry) -> bool:
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
        """An item as the parse cache stores it."""
        due = item.due.timestamp() if item.due else None
        return (item.entry.fspath, item.entry.key, due, item.problem, _record(item))

    def view_lines(self, states: Sequence[str]) -> bytes:
        """`list --format json`'s lines (views, UTF-8, one a line), soonest first.

        Each state but failed/ keeps a listing (see `Listing`): the lines of its posts that
        the ledger knows nothing of, with the inode, size and mtime of their files. A file
        that did not change is listed from it, with no parse and no view to build; when
        nothing changed at all, the listing is the answer, byte for byte. The rest take the
        way of `items` and `view`, and the listing is rewritten.
        """
        fp = self.fingerprint()
        known = self.ledger.delivery_ids() if self.ledger_exists() else set()
        keyed: list[tuple[float, str, int, bytes]] = []  # (due, ID, state's rank, line)
        whole: list[tuple[int, Listing]] = []  # states whose listing is the answer as it is
        for rank, state in enumerate(states):
            listing = None if state == "failed" else Listing.read(self._listing(state), fp)
            hits, slow, complete = self._match(state, listing, known)
            if listing is not None and complete and not slow:
                whole.append((rank, listing))
                continue
            rows = listing.rows(hits) if listing is not None else []
            fresh = list(rows)
            for item in self._items(slow, states, full=False):
                due, post_id = sort_key(item)
                ds = self.ledger.deliveries(item.id) if item.id in known else {}
                # A name that is not UTF-8 (refused, but listed) shows as \udcXX escapes.
                line = encode_json(self.view(item, ds)).encode("utf-8", "backslashreplace")
                rows.append((due, post_id, line, item.entry.key))
                if state != "failed" and item.id not in known and self._cacheable(item.entry):
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
        for row in self.ledger.cached_dues(fp):
            e = entries.get(row[0])
            if e is None:
                if row[0].startswith(prefix):
                    drop.append(row[0])
            elif row[1:4] == e.key and self._cacheable(e):
                del entries[row[0]]
                yield e, row[4], not row[5]
        store: list[CacheRow] = []
        for e in entries.values():
            item = self._load(e)
            if self._cacheable(e) and (item.summary or item.problem):
                store.append(self._row(item))
            yield e, item.due.timestamp() if item.due else None, item.valid
        if store or drop:
            self.ledger.cache(fp, store, drop)

    def _mem_hit(self, entry: Entry) -> bool:
        cached = self._cache.get(entry.fspath)
        return cached is not None and cached[0] == entry.key and entry.regular

    def fingerprint(self) -> str:
        """What a cached parse depends on besides the file: configuration and limits."""
        from . import __version__

        c = self.config
        accounts = sorted(
            (n, a.platform, sorted((k, repr(v)) for k, v in a.options.items()))
            for n, a in c.accounts.items()
        )
        try:
            limits = (c.state_dir / "mastodon").stat().st_mtime_ns
        except OSError:
            limits = 0
        raw = repr(
            (
                __version__,
                CACHE_FORMAT,
                str(c.timezone),
                c.default_platforms,
                c.max_post_size,
                accounts,
            )
        )
        return hashlib.sha256(f"{raw}{limits}".encode()).hexdigest()[:16]

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
        return self.load(self.spool.find(prefix, states))

    def latest_due(self) -> datetime | None:
        """The latest send time in the queue (for `random:` chains)."""
        dues = [due for _, due, _ in self.due_index("scheduled") if due is not None]
        return datetime.fromtimestamp(max(dues), UTC) if dues else None

    # -- times -----------------------------------------------------------------------------

    def resolve(
        self, text: str, *, current: datetime | None = None, allow_past: bool = False
    ) -> datetime:
        """A time as the user wrote it → an aware UTC datetime (SPEC §3)."""
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

    def stamp(self, at: datetime) -> str:
        """How a resolved time is written into a post file: local time with its offset."""
        return when.iso_local(at, self.config.timezone)

    # -- views -----------------------------------------------------------------------------

    def deliveries(self, post_id: str) -> dict[str, Delivery]:
        if not self.ledger_exists():
            return {}
        return self.ledger.deliveries(post_id)

    def ledger_exists(self) -> bool:
        return self._ledger is not None or (self.state_dir / "ledger.sqlite3").exists()

    def view(self, item: Item, deliveries: dict[str, Delivery] | None = None) -> dict[str, Any]:
        """A post as JSON (SPEC §4)."""
        ds = self.deliveries(item.id) if deliveries is None else deliveries
        summary = item.summary
        results: dict[str, dict[str, Any]] = {}
        attempts = summary.attempts if summary else 0
        if summary:
            for account, rid, url in summary.results:
                results[account] = {"id": rid, "url": url}
        for account, d in ds.items():
            if d.status == "sent" and account not in results:
                results[account] = {"id": d.remote_id, "url": d.url}
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
            "platforms": list(self.platforms(summary)),
            "preview": summary.preview if summary else "",
            "path": f"{item.state}/{item.id}.md",
            "attempts": attempts,
            "error": error,
            "results": results,
            "retry_at": when.iso_utc(datetime.fromtimestamp(max(retry_at), UTC))
            if retry_at and item.state == "scheduled"
            else None,
        }

    # -- operations ------------------------------------------------------------------------

    def add(
        self,
        text: str,
        *,
        platforms: Sequence[str] = (),
        schedule: str | None = None,
        draft: bool = False,
        cw: str | None = None,
        language: str | None = None,
        visibility: str | None = None,
        sensitive: bool | None = None,
        media: Sequence[Media] = (),
    ) -> tuple[Item, datetime | None]:
        """Make a post from text: queued (schedule), kept (draft), or queued due now."""
        if schedule is not None and draft:
            raise UsageError("--schedule and --draft exclude each other", "use one of them")
        from .post import split_parts

        if not text.strip():
            raise InvalidInput("the post is empty", "give some text, or pipe it on stdin")
        parts = list(split_parts(text))  # an empty thread part is a PostError (exit 3)
        at = self.resolve(schedule) if schedule is not None else None
        if not draft and at is None:
            at = self.clock()
        from .post import render

        data = render(
            parts=parts,
            schedule=self.stamp(at) if at else None,
            platforms=list(platforms) or None,
            cw=cw,
            language=language,
            visibility=visibility,
            sensitive=sensitive,
            media=media,
        )
        post = _parse_or_invalid(data)
        self._check_media(post)
        problem = self.post_problem(post)
        if problem:
            raise InvalidInput(problem, "fix the post, or name accounts from `plurspool accounts`")
        state = "drafts" if draft else "scheduled"
        entry = self.spool.deliver(state, new_id(parts[0]), data)
        return self.load(entry), at

    def _check_media(self, post: Post) -> None:
        """Every media file opens the way a platform will open it (no symlinks, no FIFOs)."""
        from .platforms import media_error, open_media

        for m in post.media:
            try:
                os.close(open_media(self.spool.root, m.path))
            except OSError as exc:
                raise InvalidInput(
                    media_error(m.path, exc),
                    f"media paths are relative to the spool root {self.spool.root}",
                ) from None

    def cancel(self, item: Item) -> Item:
        """Take a queued post out of the queue, into drafts/ (nothing is lost)."""
        if item.state not in ("scheduled", "new"):
            raise InvalidInput(
                f"{item.id} is in {item.state}/, not queued", "only queued posts can be cancelled"
            )
        with self.claim(item.id):
            entry = self.spool.move(self._fresh(item), "drafts")
        return self.load(entry)

    def reschedule(self, item: Item, text: str) -> tuple[Item, datetime]:
        """Change the send time of a queued post (or a draft's planned time)."""
        if item.state not in ("scheduled", "drafts"):
            raise InvalidInput(
                f"{item.id} is in {item.state}/; only scheduled posts and drafts "
                "can be rescheduled",
                "use `plurspool retry` for failed posts",
            )
        at = self.resolve(text, current=item.due)
        return self._set_time(item, at, item.state), at

    def schedule(self, item: Item, text: str) -> tuple[Item, datetime]:
        """Move a draft into the queue at a time."""
        if item.state != "drafts":
            raise InvalidInput(
                f"{item.id} is in {item.state}/, not drafts/", "use `reschedule` for queued posts"
            )
        at = self.resolve(text)
        return self._set_time(item, at, "scheduled"), at

    def make_due(self, item: Item) -> Item:
        """Set a queued post's time to now (the `now` command)."""
        if item.state != "scheduled":
            raise InvalidInput(
                f"{item.id} is in {item.state}/, not scheduled/",
                "`schedule ID now` queues a draft; `retry ID` a failed post",
            )
        return self._set_time(item, self.clock(), "scheduled")

    def retry(self, item: Item, text: str | None = None) -> Item:
        """Move a failed post back to the queue, due now (or at the time `text`); accounts
        that succeeded are kept.

        The retry travels in the file as a fresh `retried` token, so that the sending host
        honours it whichever host made it (its ledger is its own); here, the ledger is
        reopened at once and the token noted as honoured.
        """
        if item.state != "failed":
            raise InvalidInput(f"{item.id} is in {item.state}/, not failed/", "")
        if item.post is None:
            raise InvalidInput(
                f"{item.id} cannot be retried: {item.problem}",
                f"fix {item.entry.path} (e.g. `plurspool edit {item.id}`), then retry",
            )
        at = self.resolve(text) if text is not None else self.clock()
        token = f"{when.iso_utc(self.clock())}-{secrets.token_hex(3)}"
        if self.ledger_exists():
            self.ledger.reopen(item.id, token)
        return self._set_time(item, at, "scheduled", retried=token)

    def _set_time(
        self, item: Item, at: datetime, state: str, *, retried: str | None = None
    ) -> Item:
        from .post import with_retried, with_schedule

        with self.claim(item.id):
            if self.ledger_exists():
                self.ledger.undefer(item.id)  # a rate-limit wait noted for the old time
            entry = self._fresh(item)
            data = with_schedule(self.spool.read(entry), self.stamp(at))
            if retried is not None:
                data = with_retried(data, retried)
            entry = self.spool.replace(entry, data)
            if state != entry.state:
                entry = self.spool.move(entry, state)
        return self.load(entry)

    def _fresh(self, item: Item) -> Entry:
        entry = self.spool.stat_entry(item.state, item.id)
        if entry is None:
            raise NotFound(f"{item.id} is no longer in {item.state}/", "list again")
        return entry

    def save_edit(self, item: Item, data: bytes) -> Item:
        """Write an edited version of a post back, if it did not change meanwhile."""
        with self.claim(item.id):
            entry = self.spool.stat_entry(item.state, item.id)
            if entry is None or entry.key != item.entry.key:
                raise Changed(
                    f"{item.id} changed or moved while you were editing",
                    "your version was kept (see above); merge it by hand",
                )
            return self.load(self.spool.replace(entry, data))

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
        if state == "scheduled" and post.schedule is None:
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
        return data, self.item_from_bytes(entry, data)

    def deliver_new(self, state: str, data: bytes, hint_text: str) -> Item:
        """Store a post written with `plurspool new`."""
        from .post import parse

        post = parse(data)
        return self.load(self.spool.deliver(state, new_id(post.parts[0] or hint_text), data))

    # -- stats -----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Totals by state and account, due buckets and the next posts (SPEC §4)."""
        now = self.clock()
        tz = self.config.timezone
        by_state = {s: 0 for s in STATES}
        by_platform: dict[str, int] = {}
        buckets = {"next_hour": 0, "today": 0, "this_week": 0, "later": 0}
        local_now = now.astimezone(tz)
        midnight = datetime.combine(
            local_now.date() + timedelta(days=1), datetime.min.time(), tz
        ).astimezone(UTC)
        for state in STATES:
            if state != "scheduled":
                by_state[state] = sum(1 for _ in self.spool.scan(state))
        scheduled = self.items(["scheduled"])
        by_state["scheduled"] = len(scheduled)
        for item in scheduled:
            for account in self.platforms(item.summary):
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
        }


def _per_day(items: list[Item], now: datetime, tz: Any, days: int = 28) -> list[dict[str, Any]]:
    today = now.astimezone(tz).date()
    counts = {today + timedelta(days=n): 0 for n in range(days)}
    for item in items:
        if item.due is None:
            continue
        day = max(item.due.astimezone(tz).date(), today)
        if day in counts:
            counts[day] += 1
    return [{"date": d.isoformat(), "count": c} for d, c in counts.items()]


def _record(item: Item) -> str:
    """An item as the parse cache stores it."""
    return json.dumps(
        {
            "p": item.problem,
            "d": item.due.timestamp() if item.due else None,
            "s": item.summary.to_json() if item.summary else None,
        },
        ensure_ascii=False,
    )


def sort_key(item: Item) -> tuple[float, str]:
    """Soonest first; posts without a time last."""
    return (item.due.timestamp() if item.due else float("inf"), item.id)


def post_error_text(exc: PostError) -> str:
    """A post error as one line, `line N: ` first when the line is known (and not said yet)."""
    if exc.line and not exc.message.startswith(f"line {exc.line}:"):
        return f"line {exc.line}: {exc.message}"
    return exc.message


def _parse_or_invalid(data: bytes) -> Post:
    from .post import parse

    try:
        return parse(data)
    except PostError as exc:
        raise InvalidInput(post_error_text(exc), exc.hint) from None


class Listing:
    """A state's `list --format json` lines, soonest first, and the files they were made from.

    Disposable and per host (in the state directory): checked against each file's inode, size
    and mtime, and against the configuration's fingerprint. One read loads it: a header line,
    then the file names (NUL-separated), their keys (inode, size, mtime_ns as int64), their
    due times (float64, inf for none) and the lines. A CRC of the body catches a torn file (it
    is written without fsync), which is then ignored.
    """

    MAGIC = b"plurspool-listing-1"

    def __init__(self, names: list[str], keys: array[int], dues: array[float], lines: bytes):
        self.names, self.keys, self.dues, self.lines = names, keys, dues, lines
        self.pos = {name: i for i, name in enumerate(names)}

    @classmethod
    def read(cls, path: Path, fingerprint: str) -> Listing | None:
        """The listing at `path` if it is whole and made under `fingerprint`, else None."""
        import zlib

        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                data = f.read()
        except OSError:
            return None
        head, _, body = data.partition(b"\n")
        fields = head.split(b" ")
        if len(fields) != 5 or fields[0] != cls.MAGIC or fields[1] != fingerprint.encode():
            return None
        try:
            crc, n, size = (int(x) for x in fields[2:5])
        except ValueError:
            return None
        if zlib.crc32(body) != crc or size + 32 * n > len(body):
            return None
        keys, dues = array("q"), array("d")
        keys.frombytes(body[size : size + 24 * n])
        dues.frombytes(body[size + 24 * n : size + 32 * n])
        names = os.fsdecode(body[:size]).split("\0") if n else []
        if len(names) != n:
            return None
        return cls(names, keys, dues, body[size + 32 * n :])

    def rows(
        self, indexes: Iterable[int] | None = None
    ) -> list[tuple[float, str, bytes, tuple[int, int, int]]]:
        """(due, ID, line, file key) of the lines at `indexes` (every line by default)."""
        if not self.names:
            return []
        lines, keys = self.lines.split(b"\n"), self.keys
        which = range(len(self.names)) if indexes is None else indexes
        return [
            (
                self.dues[i],
                self.names[i][:-3],
                lines[i],
                (keys[3 * i], keys[3 * i + 1], keys[3 * i + 2]),
            )
            for i in which
        ]

    @classmethod
    def write(
        cls,
        path: Path,
        fingerprint: str,
        rows: list[tuple[float, str, bytes, tuple[int, int, int]]],
    ) -> None:
        """Replace the listing (atomically; no fsync: it is disposable and checked on read)."""
        import zlib

        names = b"\0".join(os.fsencode(f"{r[1]}.md") for r in rows)
        keys = array("q", [k for r in rows for k in r[3]])
        dues = array("d", [r[0] for r in rows])
        body = names + keys.tobytes() + dues.tobytes() + b"\n".join(r[2] for r in rows)
        n = len(rows)
        head = b"%s %s %d %d %d\n" % (
            cls.MAGIC,
            fingerprint.encode(),
            zlib.crc32(body),
            n,
            len(names),
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(head + body)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # a full disk costs the next `list` some speed, nothing else


__all__ = ["Core", "Item", "utcnow"]
