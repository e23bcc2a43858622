"""The `repost:` key (plurspool(5)): read from the frontmatter tree, and which platform a repost's
URL belongs to; each error names its key and line.

A repost's URL must be a post's address on a platform we know, so that a typo is found by
`check`, not by the server at send time. Whether it fits an account's platform is the caller's
check (it needs the configuration); resolving it is each platform's.
"""

from __future__ import annotations

import re
import types
from typing import TYPE_CHECKING

from plurspool.errors import PostError

from .model import Repost
from .rich import read_targets
from .tree import _Node

if TYPE_CHECKING:
    from .read import _Fields

REPOST_PLATFORMS = ("mastodon", "bluesky", "nostr")
# The forms of a post's address each platform has (plurspool(5), `repost`).
# http:// only on this machine (a test instance), as for link cards.
MASTODON_URL = re.compile(
    r"(?:https://[^/\s@]+|http://(?:127\.0\.0\.1|localhost|\[::1\])(?::[0-9]+)?)"
    r"/(?:@[^/\s]+|users/[^/\s]+/statuses)/(?P<id>[0-9A-Za-z]+)/?"
)
BLUESKY_URL = re.compile(r"https://bsky\.app/profile/([^/\s]+)/post/([^/?#\s]+)/?")
BLUESKY_URI = re.compile(r"at://([^/\s]+)/app\.bsky\.feed\.post/([^/?#\s]+)")
NOSTR_REF = re.compile(r"(?:nostr:)?(?:(?:note|nevent)1[02-9ac-hj-np-z]{6,}|[0-9a-f]{64})")
_ID = re.compile(r"@[^\s/@]+")
_HINT = (
    "write a post's address: https://HOST/@USER/ID (mastodon), "
    "https://bsky.app/profile/HANDLE/post/KEY or at://... (bluesky), nostr:note1... or "
    "nostr:nevent1... (nostr), or '@ID' (quoted) for an earlier post of yours"
)


def platform_of(url: str) -> str | None:
    """The platform whose post address `url` is, or None."""
    if MASTODON_URL.fullmatch(url):
        return "mastodon"
    if BLUESKY_URL.fullmatch(url) or BLUESKY_URI.fullmatch(url):
        return "bluesky"
    if NOSTR_REF.fullmatch(url.lower()):
        return "nostr"
    return None


def _check_target(value: str, name: str) -> str:
    value = value.strip()
    if value.startswith("@"):
        if _ID.fullmatch(value):
            return value
        raise PostError(f"{name} must be `@ID` of an earlier post, not {value[:60]!r}", _HINT)
    if platform_of(value) is None:
        raise PostError(f"{name}: {value[:80]!r} is not a post's address we know", _HINT)
    return value


def read_repost(fields: _Fields, node: _Node, line: int) -> Repost | None:
    """`repost: URL`, `repost: '@ID'` or `repost: {ACCOUNT: URL}`."""
    found = read_targets(fields, node, "repost", "repost", _check_target)
    if found is None or isinstance(found, str):
        return None if found is None else Repost(default=found, line=line)
    return Repost(accounts=types.MappingProxyType(found), line=line)


def beside(repost: Repost, body: str, others: dict[str, bool]) -> PostError | None:
    """The error for what a repost cannot carry: a body, media, a poll, a quote."""
    where = f"line {repost.line}: `repost`"
    if body.strip():
        return PostError(
            f"{where} sends no text of its own, but the post has a body",
            "leave the body empty to repost, or remove `repost:` to post the text",
            line=repost.line,
        )
    for key, present in others.items():
        if present:
            return PostError(
                f"{where} cannot carry `{key}`",
                f"remove `{key}:`, or make it a post of its own",
                line=repost.line,
            )
    return None


def account_problem(repost: Repost | None, account: str, platform: str | None) -> str | None:
    """Why `account` (of `platform`) cannot repost what `repost` names for it, or None."""
    if repost is None or platform is None:
        return None
    target = repost.target(account)
    if target is None:
        return (
            f"line {repost.line}: `repost` names no post for {account}; add "
            f"`{account}: URL` under it, or leave {account} out of `platforms`"
        )
    where = f"line {repost.line}: `repost: {target}`"
    if platform not in REPOST_PLATFORMS:
        return (
            f"{where}: {platform} accounts have no reposts; send the repost to "
            f"{', '.join(REPOST_PLATFORMS)} accounts only"
        )
    if target.startswith("@"):
        return None
    found = platform_of(target)
    if found != platform:
        return (
            f"{where}: a {found} post cannot be reposted on {platform}; give this account "
            f"a {platform} post's address (repost: {{{account}: URL}})"
        )
    return None
