"""Feeds (plurspool(1), FEEDS): the list in the spool's feeds.toml, the entries seen in this
host's state dir, and each new entry made a post through `Queue.add` (fetching: feedfetch.py).

A feed's posts get IDs derived from the feed's URL and the entry's key (its id, else its link),
so an entry is never posted twice, even after a crash between writing its post and recording
it as seen: the second attempt finds the post.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import string
import time
import tomllib
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from .errors import InvalidInput, NotFound, PlurspoolError
from .feedfetch import (
    MAX_BYTES,
    TIMEOUT,
    Entry,
    FeedError,
    Fetched,
    fetch,
    parse,
    shown_url,
    url_problem,
)
from .hosts import feed_poller, host_name
from .log import Log, NullLog
from .spool import _ID_ALPHABET
from .when import iso_utc

if TYPE_CHECKING:
    from .app import App

FEEDS_FILE = "feeds.toml"  # in the spool root: shared between hosts, like the posts
STATE_FILE = "feeds.json"  # in this host's state dir: the entries seen, ETag, last error
LOCK_FILE = "feeds.lock"
KEEP_SEEN = 1000  # keys kept per feed besides those still in the feed
DEFAULT_TEMPLATE = "{title} {url}"
FIELDS = ("title", "url", "summary")
FEED_KEYS = ("url", "queue", "draft", "template")
_HINT = f"fix {FEEDS_FILE} in the spool, or use `plurspool feed add|remove` (plurspool(1), FEEDS)"


@dataclass(frozen=True)
class Feed:
    """One feed of feeds.toml: where its entries go (a queue, or drafts/) and their text."""

    url: str
    queue: str | None = None  # None with draft: drafts/; None without: the default queue
    draft: bool = False
    template: str = DEFAULT_TEMPLATE

    @property
    def target(self) -> str:
        return "drafts" if self.draft else f"queue {self.queue or 'default'}"


class FeedView(TypedDict):
    """`feed list --format json` (plurspool(1), JSON OUTPUT)."""

    url: str
    queue: str | None
    draft: bool
    template: str
    last_poll: str | None
    last_error: str | None
    seen: int


# -- checks --------------------------------------------------------------------------------


def template_problem(template: str) -> str | None:
    """Why `template` cannot make a post's text, or None."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return f"template {template!r}: {exc} (write {{{{ and }}}} for a brace)"
    for name in names:
        if name not in FIELDS:
            known = ", ".join(f"{{{f}}}" for f in FIELDS)
            return f"template {template!r}: unknown field {{{name}}}; use {known}"
    try:
        template.format(title="t", url="u", summary="s")
    except (ValueError, TypeError) as exc:
        return f"template {template!r}: {exc}"
    if not template.strip():
        return "the template is empty"
    return None


def post_id(feed_url: str, key: str) -> str:
    """The ID of the post made of an entry: from the feed's URL and the entry's key alone."""
    digest = hashlib.sha256(f"{feed_url}\n{key}".encode()).digest()
    number = int.from_bytes(digest[:8])
    code = "".join(_ID_ALPHABET[(number >> (5 * i)) & 31] for i in range(12))
    host = urllib.parse.urlsplit(feed_url).hostname or "feed"
    slug = re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-")[:24].rstrip("-")
    return f"{code}-{slug or 'feed'}"


# -- feeds.toml ----------------------------------------------------------------------------


def _feed_of(raw: object, n: int, where: str) -> Feed:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: feed {n} is not a table", _HINT)
    url = raw.get("url")
    if not isinstance(url, str):
        raise InvalidInput(f'{where}: feed {n} has no url = "..."', _HINT)
    name = f"{where}: feed {n} ({shown_url(url)[:80]})"
    for key in raw:
        if key not in FEED_KEYS:
            raise InvalidInput(f"{name}: unknown key {key!r}; known: {', '.join(FEED_KEYS)}", _HINT)
    queue, draft, template = raw.get("queue"), raw.get("draft", False), raw.get("template")
    if queue is not None and not isinstance(queue, str):
        raise InvalidInput(f"{name}: queue must be a queue's name in quotes", _HINT)
    if not isinstance(draft, bool):
        raise InvalidInput(f"{name}: draft must be true or false", _HINT)
    if queue is not None and draft:
        raise InvalidInput(f"{name}: queue and draft exclude each other", _HINT)
    if template is None:
        template = DEFAULT_TEMPLATE
    elif not isinstance(template, str):
        raise InvalidInput(f"{name}: template must be text in quotes", _HINT)
    problem = url_problem(url) or template_problem(template)
    if problem is not None:
        raise InvalidInput(f"{name}: {problem}", _HINT)
    return Feed(url, queue, draft, template)


def parse_feeds(text: str, where: str = FEEDS_FILE) -> list[Feed]:
    """The feeds of a feeds.toml's text; InvalidInput naming the file, feed and key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{where}: {exc}", _HINT) from None
    extra = [k for k in raw if k != "feed"]
    if extra:
        raise InvalidInput(f"{where}: unknown key {extra[0]!r}; feeds are [[feed]] tables", _HINT)
    feeds = raw.get("feed", [])
    if not isinstance(feeds, list):
        raise InvalidInput(f"{where}: feed must be [[feed]] tables", _HINT)
    out = [_feed_of(f, n, where) for n, f in enumerate(feeds, 1)]
    urls = [f.url for f in out]
    for url in urls:
        if urls.count(url) > 1:
            raise InvalidInput(f"{where}: the feed {shown_url(url)} is listed twice", _HINT)
    return out


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def feed_block(feed: Feed) -> str:
    """The [[feed]] table `feed add` appends to feeds.toml."""
    lines = ["[[feed]]", f"url = {_toml_str(feed.url)}"]
    if feed.draft:
        lines.append("draft = true")
    elif feed.queue is not None:
        lines.append(f"queue = {_toml_str(feed.queue)}")
    if feed.template != DEFAULT_TEMPLATE:
        lines.append(f"template = {_toml_str(feed.template)}")
    return "\n".join(lines) + "\n"


_TABLE = re.compile(r"^\s*\[\[\s*feed\s*\]\]\s*(#.*)?$")


def without_feed(text: str, url: str) -> str | None:
    """feeds.toml's text without the [[feed]] table of `url` (every other byte kept), or
    None when no table has that url."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _TABLE.match(line)]
    for start, end in zip(starts, [*starts[1:], len(lines)][: len(starts)], strict=True):
        block = "".join(lines[start:end])
        try:
            feeds = tomllib.loads(block).get("feed", [])
        except tomllib.TOMLDecodeError:
            continue
        if feeds and isinstance(feeds[0], dict) and feeds[0].get("url") == url:
            return "".join(lines[:start] + lines[end:])
    return None


# -- fetching and parsing ------------------------------------------------------------------


def entry_text(template: str, entry: Entry) -> str:
    """A post's text from an entry: the template filled in, spaces left by empty fields gone."""
    text = template.format(title=entry.title, url=entry.url, summary=entry.summary)
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# -- this host's record of the feeds -------------------------------------------------------


@dataclass
class Seen:
    """What this host knows of one feed: entry keys seen, validators, last poll and error."""

    keys: list[str] = field(default_factory=list)
    etag: str | None = None
    modified: str | None = None
    polled: float | None = None  # the last poll, read or not (epoch seconds)
    ok: float | None = None  # the last poll that read the feed; None: the first is to come
    error: str | None = None

    def keep(self, current: list[str]) -> None:
        """Remember the keys of the feed as now published, and the latest KEEP_SEEN others."""
        now = set(current)
        older = [k for k in self.keys if k not in now][-KEEP_SEEN:]
        self.keys = older + list(dict.fromkeys(current))


class Feeds:
    """The feeds of one spool, polled from this host."""

    def __init__(self, app: App, log: Log | None = None) -> None:
        self.app = app
        self.log = log if log is not None else NullLog()
        self.state_path = app.state_dir / STATE_FILE
        self.fetch: Callable[[str, str | None, str | None], Fetched] = fetch
        self.parse: Callable[[Fetched], list[Entry]] = parse
        self._said: str | None = None  # the error of feeds.toml (or the polling host) logged
        self._feeds: tuple[tuple[int, int, int], list[Feed]] | None = None  # by file key
        self._polled_at: tuple[tuple[int, int, int], dict[str, float | None]] | None = None

    # -- the list, shared in the spool -------------------------------------------------------

    @property
    def path(self) -> os.PathLike[str]:
        return self.app.root / FEEDS_FILE

    def _text(self) -> str:
        try:
            # Non-blocking: a FIFO put there is refused, never waited on.
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise InvalidInput(f"cannot read {self.path}: {exc.strerror}", _HINT) from None
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InvalidInput(f"{self.path} is not a regular file", _HINT)
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise InvalidInput(f"{self.path} is larger than {MAX_BYTES // 1048576} MiB", _HINT)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{self.path} is not UTF-8 text", _HINT) from None

    def feeds(self) -> list[Feed]:
        """The feeds of feeds.toml (none when there is no such file); parsed again only when
        the file changed, as each pass of the daemon asks."""
        key = _stat_key(self.path)
        if key is None or self._feeds is None or self._feeds[0] != key:
            self._feeds = None
            feeds = parse_feeds(self._text(), str(self.path))
            if key is not None:
                self._feeds = (key, feeds)
            return feeds
        return list(self._feeds[1])

    def add(self, feed: Feed) -> int:
        """Add a feed after reading it once: its entries are recorded as seen, not posted.
        Returns how many entries it has."""
        problem = url_problem(feed.url) or template_problem(feed.template)
        if problem is not None:
            raise InvalidInput(problem, "see plurspool(1), FEEDS")
        if not feed.draft:
            self.app.config.queue(feed.queue)  # an unknown queue is refused now (exit 3)
        if any(f.url == feed.url for f in self.feeds()):
            raise InvalidInput(
                f"{shown_url(feed.url)} is already a feed", "`plurspool feed list` shows it"
            )
        try:
            fetched = self._fetch(feed.url, None, None)
            entries = self.parse(fetched)
        except FeedError as exc:
            raise InvalidInput(
                f"cannot read the feed {shown_url(feed.url)}: {exc}",
                "nothing was added; check the URL",
            ) from None
        with self._locked():
            text = self._text()
            if any(f.url == feed.url for f in parse_feeds(text, str(self.path))):
                raise InvalidInput(
                    f"{shown_url(feed.url)} is already a feed", "`plurspool feed list`"
                )
            state = self._load()
            now = self._now()
            seen = Seen(etag=fetched.etag, modified=fetched.modified, polled=now, ok=now)
            seen.keep([e.key for e in entries])
            state[feed.url] = seen
            self._save(state)
            sep = (
                "" if not text or text.endswith("\n\n") else "\n" if text.endswith("\n") else "\n\n"
            )
            self.app.spool.write_root_file(FEEDS_FILE, (text + sep + feed_block(feed)).encode())
        return len(entries)

    def remove(self, url: str) -> None:
        """Take a feed out of feeds.toml (its other bytes kept) and forget what was seen."""
        with self._locked():
            text = self._text()
            parse_feeds(text, str(self.path))
            rest = without_feed(text, url)
            if rest is None:
                raise NotFound(f"no feed {shown_url(url)}", "`plurspool feed list` shows the feeds")
            self.app.spool.write_root_file(FEEDS_FILE, rest.encode())
            state = self._load()
            state.pop(url, None)
            self._save(state)

    def views(self) -> list[FeedView]:
        """Each feed with what this host knows of it."""
        state = self._load()
        rows: list[FeedView] = []
        for feed in self.feeds():
            seen = state.get(feed.url, Seen())
            rows.append(
                FeedView(
                    url=feed.url,
                    queue=None if feed.draft else feed.queue or "default",
                    draft=feed.draft,
                    template=feed.template,
                    last_poll=None if seen.polled is None else _iso(seen.polled),
                    last_error=seen.error,
                    seen=len(seen.keys),
                )
            )
        return rows

    # -- polling ---------------------------------------------------------------------------

    def interval(self) -> float:
        return self.app.config.feeds.poll_interval.total_seconds()

    def elsewhere(self) -> str | None:
        """The host that polls the feeds, when it is not this one (`hosts.feed_poller`)."""
        poller = feed_poller(self.app.config.senders, self.app.config.daemon.host)
        return None if poller is None or poller == host_name() else poller

    def next_poll(self) -> float | None:
        """When the next feed is due (epoch seconds), or None without feeds (or when another
        host polls them)."""
        if self.elsewhere() is not None:
            return None
        try:
            feeds = self.feeds()
        except InvalidInput:
            return None
        polled = self._polled()
        times = [polled.get(f.url) or 0.0 for f in feeds]
        return min(times) + self.interval() if times else None

    def poll_due(self, busy: Callable[[], bool] = lambda: False) -> list[str]:
        """Poll the feeds that are due, while `busy()` (a post due, a shutdown) says no;
        returns the IDs of the posts made. Never raises: each failure is logged and kept."""
        poller = self.elsewhere()
        if poller is not None:
            with contextlib.suppress(InvalidInput):  # said by the host that polls
                if self._said != poller and self.feeds():  # once, not at every pass
                    self.log.event("feeds", host=host_name(), polled_by=poller)
                    self._said = poller
            return []
        try:
            feeds = self.feeds()
        except InvalidInput as exc:
            if exc.message != self._said:  # once, not at every pass
                self.log.event("feeds", level="error", error=exc.message, hint=exc.hint)
            self._said = exc.message
            return []
        self._said = None
        made: list[str] = []
        polled = self._polled()
        for feed in feeds:
            if (polled.get(feed.url) or 0.0) + self.interval() > self._now():
                continue
            if busy():
                break
            try:
                made += self.poll(feed)
            except (PlurspoolError, OSError) as exc:
                error = exc.message if isinstance(exc, PlurspoolError) else str(exc)
                self.log.event("feed-refused", level="error", feed=shown_url(feed.url), error=error)
                with contextlib.suppress(PlurspoolError, OSError):  # said in the log
                    self._failed(feed.url, error)
        return made

    def poll(self, feed: Feed) -> list[str]:
        """Fetch one feed and make a post of each entry not seen before; the first poll on
        this host records the entries without posting. A feed that cannot be read has its
        reason logged and kept (`feed list`)."""
        if not feed.draft:
            self.app.config.queue(feed.queue)  # InvalidInput while the queue is not configured
        known = self._load().get(feed.url)
        try:
            fetched = self._fetch(
                feed.url,
                known.etag if known is not None else None,
                known.modified if known is not None else None,
            )
            entries = None if fetched.body is None else self.parse(fetched)
        except FeedError as exc:
            self.log.event("feed-refused", level="error", feed=shown_url(feed.url), error=str(exc))
            self._failed(feed.url, str(exc))
            return []
        made: list[str] = []
        with self._locked():
            state = self._load()
            seen = state.setdefault(feed.url, Seen())
            first = seen.ok is None
            seen.polled, seen.error = self._now(), None
            if entries is None:  # 304: nothing new, nothing parsed
                seen.ok = seen.polled
                self._save(state)
                return []
            keys = set(seen.keys)
            for entry in entries:
                if first or entry.key in keys:
                    continue
                try:
                    made += self._post(feed, entry)
                except InvalidInput as exc:  # this entry can never be a post: said, not retried
                    self.log.event(
                        "feed-entry",
                        level="warning",
                        feed=shown_url(feed.url),
                        entry=entry.key,
                        error=exc.message,
                    )
                seen.keys.append(entry.key)
                self._save(state)
            seen.keep([e.key for e in entries])
            # The validators only now: a poll cut short reads the whole feed again.
            seen.etag, seen.modified, seen.ok = fetched.etag, fetched.modified, seen.polled
            self._save(state)
        if first:
            self.log.event("feed-first-poll", feed=shown_url(feed.url), seen=len(entries))
        return made

    def _fetch(self, url: str, etag: str | None, modified: str | None) -> Fetched:
        """`fetch`, waited for TIMEOUT seconds at most in all: a read's own timeout is fixed
        when it starts, so a server slow at the end is left behind (a daemon thread)."""
        from .platforms.base import Abandoned, wait_within

        end = time.monotonic() + TIMEOUT
        try:
            return wait_within(
                lambda: end - time.monotonic(), lambda: self.fetch(url, etag, modified), "feed"
            )
        except Abandoned:
            raise FeedError(f"gave up after {TIMEOUT:g}s: the server is too slow") from None

    def _post(self, feed: Feed, entry: Entry) -> list[str]:
        """Make the post of an entry, unless it was made before (a crash before it was seen)."""
        pid = post_id(feed.url, entry.key)
        if self.app.spool.exists_anywhere(pid) is not None:
            return []
        text = entry_text(feed.template, entry)
        if feed.draft:
            done = self.app.queue.add(text, draft=True, post_id=pid)
        else:
            done = self.app.queue.add(text, queue=feed.queue or "", post_id=pid)
        self.log.event("feed-post", feed=shown_url(feed.url), id=done.item.id, entry=entry.key)
        return [done.item.id]

    # -- the state file ----------------------------------------------------------------------

    def _now(self) -> float:
        return self.app.clock().timestamp()

    def _locked(self) -> Any:
        from .locks import session_lock

        return session_lock(self.app.state_dir / LOCK_FILE)

    def _failed(self, url: str, error: str) -> None:
        """Keep why a feed could not be read; it is polled again after the interval."""
        with self._locked():
            state = self._load()
            seen = state.setdefault(url, Seen())
            seen.polled, seen.error = self._now(), error
            self._save(state)

    def _polled(self) -> dict[str, float | None]:
        """When each feed was last polled; the state file is read again only when it changed."""
        key = _stat_key(self.state_path)
        if key is None or self._polled_at is None or self._polled_at[0] != key:
            polled = {url: seen.polled for url, seen in self._load().items()}
            self._polled_at = None if key is None else (key, polled)
            return polled
        return self._polled_at[1]

    def _load(self) -> dict[str, Seen]:
        try:
            raw = json.loads(self.state_path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.log.event(
                "feeds-state",
                level="warning",
                path=str(self.state_path),
                error=f"unreadable, started afresh: {exc}",
            )
            return {}
        feeds = raw.get("feeds", {}) if isinstance(raw, dict) else {}
        names = Seen.__dataclass_fields__
        return {
            url: Seen(**{k: v for k, v in value.items() if k in names})
            for url, value in feeds.items()
            if isinstance(value, dict)
        }

    def _save(self, state: dict[str, Seen]) -> None:
        data = {"version": 1, "feeds": {url: vars(seen) for url, seen in state.items()}}
        self.app.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)


def _stat_key(path: os.PathLike[str] | str) -> tuple[int, int, int] | None:
    """What tells a file's versions apart (each write makes a new inode), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _iso(timestamp: float) -> str:
    from datetime import UTC, datetime

    return iso_utc(datetime.fromtimestamp(timestamp, UTC))
