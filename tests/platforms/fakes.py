"""The fakes every platform test shares: the ledger's material store, a `Job` factory, a post.

`Store` stands in for the ledger's material column of one delivery (what `job.save` saved last,
round-tripped through JSON as the ledger stores it, and how many saves there were); `job` makes
the `Job` the sender would hand a platform (plurspool/platforms/base.py), with keyword arguments
for what a test changes; `post` makes a Post as `plurspool post` writes one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plurspool.config import Account
from plurspool.hosts import idempotency_key
from plurspool.platforms.base import Job
from plurspool.post import Post, parse, render

# The time of every post a test does not time itself: the session's start, so that a retry
# (another Job for the same post) has the same time, as it has in the spool.
DUE = datetime.now(UTC).replace(microsecond=0)


class Store:
    """The ledger's material for one delivery, as a platform sees it through `job.save`."""

    def __init__(self) -> None:
        self.material: dict[str, Any] = {}
        self.saves = 0

    def save(self, material: dict[str, Any]) -> None:
        self.material = json.loads(json.dumps(material))  # stored as JSON, like the ledger
        self.saves += 1


def job(
    post: Post,
    account: Account,
    *,
    spool_root: Path,
    state_dir: Path | None = None,
    store: Store | None = None,
    post_id: str = "p1",
    key: str | None = None,
    in_doubt: bool = False,
    deadline: float | Callable[[], float] = 30.0,
    save: Callable[[dict[str, Any]], None] | None = None,
    due: datetime | None = None,
) -> Job:
    """A Job for `post` to `account`, starting from what `store` holds and saving into it.

    `state_dir` defaults to `spool_root`; `deadline` is the seconds left (a number, or a
    function as the sender's); `save` replaces `store.save` (to watch or break the saves);
    `due`, the post's time, defaults to DUE; `key` to the one the sender derives from them.
    """
    store = store if store is not None else Store()
    due = due if due is not None else DUE
    if callable(deadline):
        left = deadline
    else:
        seconds = float(deadline)

        def left() -> float:
            return seconds

    return Job(
        post_id=post_id,
        account=account,
        post=post,
        idempotency_key=key or idempotency_key(post_id, post, account.name, due),
        in_doubt=in_doubt,
        spool_root=spool_root,
        state_dir=state_dir if state_dir is not None else spool_root,
        deadline=left,
        due=due,
        material=json.loads(json.dumps(store.material)),  # read back from the ledger
        save=save or store.save,
    )


def post(text: str, **fields: Any) -> Post:
    """A post of `text`, its parts apart at `---` lines, with the post keys `fields` (`render`)."""
    return parse(render(parts=[p.strip() for p in text.split("\n---\n")], **fields))
