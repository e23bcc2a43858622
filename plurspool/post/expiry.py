"""When a sent post's copies are deleted (plurspool(5), `expires`): the key read from the
frontmatter, the instant each account's copy is due, and the check against the send time.

A duration counts from when the post was sent to the account (its result's `at`); a time is
the same instant for every account. Pure: the clock and the zone are passed in.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from plurspool import when
from plurspool.errors import TimeError

from .model import Expiry, Post, Result

if TYPE_CHECKING:
    from .read import _Fields
    from .tree import _Node

_HINT = (
    "write a duration counted from the send, e.g. expires: 1d, or a time, e.g. "
    "expires: 2026-12-24T18:00:00+01:00"
)


def read_expires(fields: _Fields, node: _Node) -> Expiry | None:
    """`expires: DURATION | TIME`, checked for its form (the zone is applied later)."""
    text = fields.text(node, "`expires`")
    if text is None:
        return None
    doc, line = fields.doc, fields.doc.line(node.start)
    if not text.strip():
        raise doc.error(node.start, "`expires` is empty", _HINT)
    try:
        return Expiry(text, int(when.parse_duration(text).total_seconds()), line)
    except TimeError:
        pass
    try:
        when.parse_absolute(text, tz=UTC)
    except TimeError:
        raise doc.error(
            node.start,
            f"`expires` must be a duration or an ISO 8601 time, not {text.strip()!r}",
            _HINT,
        ) from None
    return Expiry(text, None, line)


def instant(expiry: Expiry, sent_at: datetime, tz: tzinfo) -> datetime:
    """When a copy sent at `sent_at` expires; a time without an offset is local to `tz`."""
    if expiry.seconds is not None:
        return sent_at + timedelta(seconds=expiry.seconds)
    return when.parse_absolute(expiry.text, tz=tz)


def problem(post: Post, send_at: datetime | None, tz: tzinfo) -> str | None:
    """Why a post's `expires` cannot be met: a time not after its send time `send_at`."""
    expiry = post.expires
    if expiry is None or expiry.seconds is not None:
        return None
    try:
        at = when.parse_absolute(expiry.text, tz=tz)
    except TimeError as exc:  # a local time that a DST change skips or repeats
        return f"line {expiry.line}: `expires`: {exc.message}; {exc.hint}".rstrip("; ")
    if send_at is None or at > send_at:
        return None
    return (
        f"line {expiry.line}: `expires` {when.echo(at, tz)} is not after the post's send time "
        f"{when.echo(send_at, tz)}; {_HINT}"
    )


def live(result: Result) -> bool:
    """Whether an account's result is a copy on its platform that has not been deleted."""
    return result.error is None and bool(result.id or result.url) and result.deleted_at is None


def sent_at(result: Result) -> datetime | None:
    """When the account's copy was sent (its result's `at`), or None if not recorded."""
    if result.at is None:
        return None
    try:
        return datetime.fromisoformat(result.at.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def due(post: Post, tz: tzinfo, deletable: Collection[str]) -> dict[str, float]:
    """Account -> epoch seconds its live copy expires, for the `deletable` accounts (whose
    platform can delete) that were sent; {} without `expires`."""
    if post.expires is None:
        return {}
    out = {}
    for account, result in post.results.items():
        at = sent_at(result)
        if account in deletable and live(result) and at is not None:
            try:
                out[account] = instant(post.expires, at, tz).timestamp()
            except TimeError:  # unclear in the zone: `problem` says so; nothing is deleted
                return {}
    return out


def next_due(post: Post, tz: tzinfo, deletable: Collection[str]) -> float | None:
    """The earliest instant one of the post's copies expires, or None."""
    return min(due(post, tz, deletable).values(), default=None)
