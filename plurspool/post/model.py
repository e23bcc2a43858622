"""A post as plurspool holds it: frozen `Post`, `Media`, `Override` and `Result` values, the
keys a post file may hold, and thread parts split on `---` lines.

Nothing here reads YAML or touches the filesystem: `read` makes these values from bytes and
`write` makes bytes from them.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, overload

from plurspool.errors import PostError

VISIBILITIES = ("public", "unlisted", "followers", "direct")
TOP_KEYS = (
    "schedule",
    "queue",
    "platforms",
    "cw",
    "language",
    "visibility",
    "sensitive",
    "media",
    "overrides",
    "results",
    "attempts",
    "retried",
    "poll",
    "quote",
    "repost",
    "card",
    "split",
    "repeat",
    "skip",
    "skipped",
    "expires",
)
POLL_KEYS = ("options", "expires", "multiple", "hide_totals")
CARD_KEYS = ("url", "title", "description", "image")
MEDIA_KEYS = ("path", "alt")
OVERRIDE_KEYS = ("text", "cw", "language", "visibility", "sensitive")
RESULT_KEYS = ("id", "url", "error", "attempts", "at", "edited_at", "deleted_at")
# The keys plurspool itself writes into a post (plurspool(5)): a resolved `schedule`, the
# `queue` slot taken, the normalised `repeat`, `skipped`, a resolved `card`, the results and
# `attempts`, a retry's token. Everything else in a file is the user's alone.
WRITTEN_KEYS = ("schedule", "queue", "repeat", "skipped", "card", "results", "attempts", "retried")

_SEPARATOR = re.compile(r"---[ \t]*")


@dataclass(frozen=True)
class Media:
    """A file to attach: `path` relative to the spool root, optional alt text."""

    path: str
    alt: str | None = None


@dataclass(frozen=True)
class Override:
    """Per-account replacements; None means "as in the post"."""

    text: str | None = None
    cw: str | None = None
    language: str | None = None
    visibility: str | None = None
    sensitive: bool | None = None

    @property
    def parts(self) -> tuple[str, ...] | None:
        """The override text split into thread parts like the body, or None without text."""
        return None if self.text is None else split_parts(self.text)


@dataclass(frozen=True)
class Result:
    """What happened when plurspool sent a post to one account."""

    id: str | None = None
    url: str | None = None
    error: str | None = None
    attempts: int = 0
    at: str | None = None
    edited_at: str | None = None  # when `plurspool amend` last edited it (UTC, Z)
    deleted_at: str | None = None  # UTC with Z: the account's copy was deleted (expiry, delete)


@dataclass(frozen=True)
class Expiry:
    """When a sent post is deleted (plurspool(5), `expires`): a duration after it was sent, or
    a time."""

    text: str  # as written
    seconds: int | None  # a duration; None for a time
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Poll:
    """A poll on the first part (plurspool(5), `poll`), with the lines its checks name."""

    options: tuple[str, ...]
    expires: str  # as written, e.g. 1d
    seconds: int  # `expires` as a duration
    multiple: bool | None = None
    hide_totals: bool | None = None
    # Where they are, for messages; not part of the value (an edit above them moves them).
    line: int = field(default=0, compare=False)  # of the `poll:` key
    option_lines: tuple[int, ...] = field(default=(), compare=False)
    expires_line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Quote:
    """What a post quotes (plurspool(5), `quote`): a URL or `@ID`, for all accounts or each."""

    default: str | None = None
    accounts: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}))
    line: int = field(default=0, compare=False)

    def target(self, account: str) -> str | None:
        """The URL or `@ID` that `account` quotes, or None."""
        return self.accounts.get(account, self.default)


class Repost(Quote):
    """What a post reposts (plurspool(5), `repost`): a URL or `@ID`, for all accounts or each."""


@dataclass(frozen=True)
class Card:
    """A Bluesky link card (plurspool(5), `card`): `auto`, `off`, or resolved fields."""

    mode: Literal["auto", "off", "set"]
    url: str | None = None
    title: str | None = None
    description: str | None = None
    image: str | None = None  # a path relative to the spool root
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Post:
    """A parsed, validated post file."""

    schedule: str | None
    schedule_line: int | None
    platforms: tuple[str, ...] | None
    cw: str | None
    language: str | None
    visibility: str | None
    sensitive: bool | None
    media: tuple[Media, ...]
    overrides: Mapping[str, Override]
    parts: tuple[str, ...]
    results: Mapping[str, Result] = field(default_factory=lambda: types.MappingProxyType({}))
    attempts: int = 0
    retried: str | None = None  # the token of the last `plurspool retry`, made on any host
    poll: Poll | None = None
    quote: Quote | None = None
    card: Card | None = None
    split: str | None = None  # auto | off; None: as the account's config says
    repeat: str | None = None  # the rule as written (plurspool(5), `repeat`)
    skip: tuple[str, ...] = ()  # local dates, YYYY-MM-DD
    skipped: tuple[str, ...] = ()  # missed occurrences, UTC with Z
    queue: str | None = None  # the queue whose slot the post holds (written back at intake)
    repost: Repost | None = None  # a repost has no parts (plurspool(5), `repost`)
    expires: Expiry | None = None

    def parts_for(self, account: str) -> tuple[str, ...]:
        """The thread parts to send to `account`: its override text if any, else the body."""
        override = self.overrides.get(account)
        if override is not None and override.text is not None:
            return split_parts(override.text)
        return self.parts

    @overload
    def field_for(self, account: str, name: Literal["sensitive"]) -> bool | None: ...
    @overload
    def field_for(
        self, account: str, name: Literal["cw", "language", "visibility"]
    ) -> str | None: ...
    def field_for(self, account: str, name: str) -> str | bool | None:
        """`cw`, `language`, `visibility` or `sensitive` for `account`, override applied."""
        if name not in ("cw", "language", "visibility", "sensitive"):
            raise ValueError(f"no per-account field {name!r}")
        override = self.overrides.get(account)
        value: str | bool | None = None if override is None else getattr(override, name)
        return getattr(self, name) if value is None else value

    @property
    def preview(self) -> str:
        """The first part on one line, cut to 60 characters (a repost: what it reposts)."""
        text = " ".join(self.parts[0].split()) if self.parts else ""
        if self.repost is not None and not text:
            text = f"repost {self.repost.default or ', '.join(self.repost.accounts.values())}"
        return text if len(text) <= 60 else text[:59] + "…"


def without_written(post: Post) -> Post:
    """`post` with every key of `WRITTEN_KEYS` as if absent: what its author wrote."""
    return dataclasses.replace(
        post,
        schedule=None,
        schedule_line=None,
        queue=None,
        repeat=None,
        skipped=(),
        card=None,
        results=types.MappingProxyType({}),
        attempts=0,
        retried=None,
    )


def split_parts(text: str) -> tuple[str, ...]:
    """Split text into thread parts on `---` lines; raises PostError (no line) on an empty part."""
    pieces = _split_lines(text)
    problem = _empty_part(pieces)
    if problem is not None:
        _, message, hint = problem
        raise PostError(message, hint)
    return tuple(text for text, _, _ in pieces)


def _split_lines(text: str) -> list[tuple[str, int | None, int | None]]:
    """Parts of `text`: (trimmed text, 0-based line of the `---` before it, and after it)."""
    pieces: list[tuple[str, int | None, int | None]] = []
    current: list[str] = []
    opened: int | None = None
    lines = text.split("\n")
    for number, raw in enumerate(lines):
        line = raw.rstrip("\r")
        if _SEPARATOR.fullmatch(line):
            pieces.append((_trim(current), opened, number))
            current, opened = [], number
        else:
            current.append(line)
    pieces.append((_trim(current), opened, None))
    return pieces


def _trim(lines: list[str]) -> str:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end])


def _empty_part(
    pieces: list[tuple[str, int | None, int | None]],
) -> tuple[int, str, str] | None:
    """The first empty part as (0-based line to name, message, hint), or None."""
    for number, (text, opened, closed) in enumerate(pieces, 1):
        if text:
            continue
        if opened is None and closed is None:
            return 0, "the post has no text", "write the text after the frontmatter's closing `---`"
        if opened is None:
            assert closed is not None
            return (
                closed,
                "the first thread part is empty (nothing before this `---`)",
                "write text before this `---` line, or remove the line",
            )
        return (
            opened,
            f"thread part {number} is empty (nothing after this `---`)",
            "write the part's text after this `---` line, or remove the line",
        )
    return None
