"""The platform protocol: one small interface that every platform module implements.

A platform gets a `Job` (one post for one account) and returns an `Outcome`. It must save any
material it needs to avoid a duplicate (a record key, a signed event) through `job.save` BEFORE
its first network request, and, when `job.in_doubt` is set (an earlier attempt crashed before its
outcome was recorded), check whether that attempt went through before sending again.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ..config import Account
from ..post import Post

Status = Literal["sent", "temporary", "permanent"]


@dataclass(frozen=True)
class Job:
    """One post to send to one account."""

    post_id: str
    account: Account
    post: Post
    idempotency_key: str
    in_doubt: bool
    spool_root: Path
    state_dir: Path
    deadline: Callable[[], float]  # seconds left for this send (shrinks on shutdown)
    material: dict[str, Any] = field(default_factory=dict)
    save: Callable[[dict[str, Any]], None] = lambda material: None

    @property
    def parts(self) -> tuple[str, ...]:
        return self.post.parts_for(self.account.name)


@dataclass(frozen=True)
class Outcome:
    """What became of one send."""

    status: Status
    remote_id: str | None = None
    url: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, from the platform (Retry-After)


@dataclass(frozen=True)
class Issue:
    """A problem `plurspool check` and intake report: errors stop a post, warnings do not."""

    level: Literal["error", "warning"]
    message: str


class Platform(Protocol):
    def send(self, job: Job) -> Outcome:
        """Send one post (all its thread parts) to one account."""
        ...

    def check(self, post: Post, account: Account, spool_root: Path) -> list[Issue]:
        """What keeps this post from being sent to this account (lengths, media...).

        Offline and fast: no network, no secrets.
        """
        ...

    def test(self, account: Account, state_dir: Path) -> dict[str, Any]:
        """`accounts test`: log in and report identity and limits; send nothing.

        Raises a PlurspoolError (naming the account, with a hint) when that fails.
        """
        ...


PLATFORMS = ("exec", "outbox", "mastodon", "bluesky", "nostr")


def get(name: str) -> Platform:
    """The platform module for a platform name, imported on first use."""
    module = importlib.import_module(f"{__name__}.{name}")
    platform: Platform = module.PLATFORM
    return platform
