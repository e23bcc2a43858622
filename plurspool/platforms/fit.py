"""An account's thread as it will be sent: the post's parts, split to fit the account's limit as
its platform counts (plurspool(5), AUTO-SPLIT), and what `check` says of those that cannot fit.

The platform owns how a part is counted (its `measure`); `plurspool.split` owns where text
breaks; this module puts the two together with the post's `split` key and the account's
`split` and `thread_numbering` settings.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from ..split import Measure, NoFixedPoint, Piece, Thread, Unbreakable, graphemes, split_thread

if TYPE_CHECKING:
    from ..config import Account
    from ..post import Post
    from .base import Issue


def _setting(account: Account, key: str) -> str:
    """An account's `split` or `thread_numbering`: the config fills both in for every account
    it loads; an account made otherwise has the key table's default."""
    value = account.options.get(key)
    if value is None:
        from ..config.keys import BY_NAME

        value = BY_NAME[key].default
    return str(value)


def split_mode(post: Post, account: Account) -> str:
    """`auto` or `off`: the post's own `split`, else the account's."""
    return post.split or _setting(account, "split")


def numbering(account: Account) -> str:
    return _setting(account, "thread_numbering")


@dataclass(frozen=True)
class Graphemes:
    """A limit in graphemes of the text alone: an account's `max_length` (nostr, exec)."""

    limit: int

    def count(self, text: str) -> int:
        return graphemes(text)

    def fits(self, text: str) -> bool:
        # A grapheme holds at least one code point: a short text needs no count.
        return len(text) <= self.limit or graphemes(text) <= self.limit


def max_length(account: Account) -> Graphemes | None:
    """The measure of an account whose only limit is its own `max_length`, if it sets one."""
    limit = account.options.get("max_length")
    return Graphemes(int(limit)) if limit is not None else None


def describe_max_length(account: Account) -> Callable[[str, str], str]:
    def describe(where: str, text: str) -> str:
        limit = account.options["max_length"]
        return f"{where} is {graphemes(text)} graphemes; the account's max_length is {limit}"

    return describe


def as_written(post: Post, account: Account, parts: Sequence[str] | None = None) -> Thread:
    parts = tuple(parts) if parts is not None else post.parts_for(account.name)
    return Thread(tuple(Piece(p, i, True) for i, p in enumerate(parts)), changed=False)


def thread(
    post: Post, account: Account, measure: Measure | None, parts: Sequence[str] | None = None
) -> Thread:
    """The parts `account` gets: as written, or auto-split to fit `measure`. `parts` stands in
    for the post's own where the platform adds to them (a quoted post's link).

    Raises Unbreakable (or NoFixedPoint) when auto-split cannot make them fit; `issues` turns
    that into `check`'s words.
    """
    if measure is None or measure.limit is None or split_mode(post, account) == "off":
        return as_written(post, account, parts)
    parts = tuple(parts) if parts is not None else post.parts_for(account.name)
    if isinstance(measure, Hashable):  # the platforms' measures are (frozen dataclasses)
        return _split(parts, measure, numbering(account))
    return split_thread(parts, measure, numbering=numbering(account))


@lru_cache(maxsize=256)
def _split(parts: tuple[str, ...], measure: Measure, numbering: str) -> Thread:
    """`split_thread`, remembered: `check` and `--explain` ask for the same thread more than once
    (the post's problem, its warnings, its parts), and a pass of the sender again."""
    return split_thread(parts, measure, numbering=numbering)


def issues(
    post: Post,
    account: Account,
    measure: Measure | None,
    describe: Callable[[str, str], str],
    *,
    level: Literal["error", "warning"] = "error",
    parts: Sequence[str] | None = None,
) -> list[Issue]:
    """What keeps `account`'s thread from fitting: with `split: off`, every part over the limit;
    with `auto`, a run no break falls inside. `describe(where, text)` says how long that part
    or run is, as the platform counts it, and what the limit is."""
    from .base import Issue

    if measure is None or measure.limit is None:
        return []
    parts = tuple(parts) if parts is not None else post.parts_for(account.name)
    if split_mode(post, account) == "off":
        out = []
        for number, part in enumerate(parts, 1):
            if not measure.fits(part):
                where = "the text" if len(parts) == 1 else f"part {number} of {len(parts)}"
                out.append(Issue(level, f"{describe(where, part)} (split: off)"))
        return out
    try:
        thread(post, account, measure, parts)
    except Unbreakable as exc:
        shown = exc.token if len(exc.token) <= 40 else exc.token[:39] + "…"
        shown = f'"{shown}"' if shown.isprintable() else repr(shown)
        where = f"part {exc.part} of {exc.parts}: {shown}"
        return [
            Issue(
                level,
                f"{describe(where, exc.token)}, and no break can fall inside it: shorten it, "
                "or put a space in it",
            )
        ]
    except NoFixedPoint:
        return [
            Issue(
                level,
                f"thread_numbering {numbering(account)!r} never settles on a count of parts; "
                "use one whose length grows with {n}, like the default {i}/{n}",
            )
        ]
    return []
