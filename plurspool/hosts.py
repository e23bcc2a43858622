"""Many hosts, one voice: this host's name, which host sends each account, and the idempotency
material every host derives alike from a post (plurspool(5), SEVERAL MACHINES).

Pure: no config, no spool, no network. The config asks `host_name` and `sender_of`, the feeds
`feed_poller`; the sender asks `settled` (which results in a file are final) and
`idempotency_key`, which the platforms build on (`record_keys`, Bluesky's).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the post package brings yaml: `list` and completion do without it
    from .post import Post

HOST_ENV = "PLURSPOOL_HOST"


def host_name(env: Mapping[str, str] | None = None) -> str:
    """This host's name: `$PLURSPOOL_HOST` when set and not blank, else the system's."""
    given = (os.environ if env is None else env).get(HOST_ENV, "").strip()
    if given:
        return given
    import socket

    return socket.gethostname()


def sender_of(
    account: str, senders: Mapping[str, tuple[str, ...]], daemon_host: str | None
) -> str | None:
    """The host that sends `account`: the `[senders]` host claiming it, else `daemon.host`;
    None when any host may."""
    for host, accounts in senders.items():
        if account in accounts:
            return host
    return daemon_host


def feed_poller(senders: Mapping[str, tuple[str, ...]], daemon_host: str | None) -> str | None:
    """The host that polls the feeds: `daemon.host`, else the first host of `[senders]` (two
    hosts polling would each make an entry's post into their copy, with their own queue slot);
    None when any host may (plurspool(1), FEEDS)."""
    return daemon_host or next(iter(senders), None)


def settled(post: Post) -> set[str]:
    """The accounts whose result in the file is final: a success, or a failure recorded after
    the last `retried` token (a host records its accounts' results while the post waits in
    scheduled/ for the other hosts' accounts). A failure from before a retry is not: the retry
    sends it again."""
    retried = (post.retried or "").partition("Z-")[0]
    sent = {a for a, r in post.results.items() if r.error is None and (r.attempts or r.id or r.url)}
    failed = {a for a, r in post.results.items() if r.error and (r.at or "").rstrip("Z") > retried}
    return sent | failed


def idempotency_key(post_id: str, post: Post, account: str, due: datetime) -> str:
    """What identifies sending `post` to `account` on every host and every attempt (32 hex).

    Made only of what the file says, so that every host with a copy of it agrees: the post's ID,
    what `account` gets (its parts, fields, media, poll, quote), its time, and the `retried`
    token (a retry is a fresh life of the post, made on whichever host). Never of what plurspool
    writes back while sending (results, a link card).
    """
    poll = post.poll
    content = {
        "id": post_id,
        "account": account,
        "at": int(due.timestamp()),
        "parts": list(post.parts_for(account)),
        "fields": [
            post.field_for(account, "cw"),
            post.field_for(account, "language"),
            post.field_for(account, "visibility"),
            post.field_for(account, "sensitive"),
        ],
        "media": [[m.path, m.alt] for m in post.media],
        "poll": None if poll is None else [list(poll.options), poll.seconds, poll.multiple],
        "quote": None if post.quote is None else post.quote.target(account),
        "split": post.split,
        "retried": post.retried,
    }
    raw = json.dumps(content, ensure_ascii=False, sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def record_keys(key: str, due: datetime, count: int) -> list[tuple[int, int]]:
    """(microseconds, clock id) of `count` increasing TIDs for a thread's records, derived
    from the idempotency `key` within the second of `due`: the same on every host, so that a
    second host's createRecord meets the first one's record instead of making another.

    Thirty bits of the key pick the microsecond and the clock id (two posts of one account
    due in the same second share them one time in a billion), and the reference PDS takes a
    TID of any age (ARCHITECTURE.md, decisions).
    """
    bits = int(key[:8], 16)
    base = int(due.timestamp()) * 1_000_000 + (bits >> 10) % (1_000_000 - count)
    return [(base + i, bits & 0x3FF) for i in range(count)]
