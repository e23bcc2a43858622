"""The platform protocol: what every platform module implements, and what it is given and returns.

A platform gets a `Job` (one post for one account) and returns an `Outcome`. It must save any
material it needs to avoid a duplicate (a record key, a signed event) through `job.save` BEFORE
its first network request, and, when `job.in_doubt` is set (an earlier attempt crashed before its
outcome was recorded), check whether that attempt went through before sending again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from ..config import Account
from ..post import Post, Result
from ..split import Measure

Status = Literal["sent", "temporary", "permanent"]


@dataclass(frozen=True)
class Quoted:
    """What a post quotes for one account (plurspool(5), `quote`): the URL, and the remote id
    when it is an earlier plurspool post's recorded result."""

    url: str | None
    id: str | None = None


@dataclass(frozen=True)
class Job:
    """One post to send to one account."""

    post_id: str
    account: Account
    post: Post
    idempotency_key: str  # hosts.idempotency_key: the same on every host and attempt
    in_doubt: bool
    spool_root: Path
    state_dir: Path
    deadline: Callable[[], float]  # seconds left for this send (shrinks on shutdown)
    due: datetime  # the post's time: nostr's created_at, bluesky's record keys
    material: dict[str, Any] = field(default_factory=dict)
    save: Callable[[dict[str, Any]], None] = lambda material: None
    quote: Quoted | None = None  # resolved by the sender from the post's `quote`
    repost: Quoted | None = None  # and from its `repost` (plurspool(5)): what to repost
    undo: Quoted | None = None  # a recurring repost: the previous occurrence's, undone first
    timezone: tzinfo = UTC  # the config's: a time without an offset is local to it

    @cached_property
    def parts(self) -> tuple[str, ...]:
        """The thread parts this account gets: as written, or auto-split to fit its limit
        (`fit.thread`), the same on every attempt. Raises split.Unbreakable when they cannot
        fit (`check` refuses such a post before it is queued)."""
        from . import fit, get

        measure = get(self.account.platform).measure(self.post, self.account, self.state_dir)
        return fit.thread(self.post, self.account, measure).texts


@dataclass(frozen=True)
class DeleteJob:
    """One account's copy of a sent post to delete, every part of its thread (plurspool(5),
    `expires`). The platform answers `Outcome("sent")` when every part is gone, "already gone"
    included. It saves what makes a retry repeat the same request (a signed kind-5 event, the
    parts deleted so far) through `save` before the request."""

    post_id: str
    account: Account
    result: Result  # what the post file records: the first part's id and url
    sent: dict[str, Any]  # the send's material in this host's ledger ({} if sent elsewhere)
    state_dir: Path
    deadline: Callable[[], float]
    material: dict[str, Any] = field(default_factory=dict)  # this deletion's, as saved
    save: Callable[[dict[str, Any]], None] = lambda material: None
    repost: bool = False  # the copy is a repost (`repost:`), not a post of ours


@dataclass(frozen=True)
class Outcome:
    """What became of one send."""

    status: Status
    remote_id: str | None = None
    url: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, from the platform (Retry-After)
    # Seconds until the server's rate-limit window for this account resets, when its last
    # answer (a success too) said no requests are left: the account waits that long.
    hold: float | None = None


@dataclass(frozen=True)
class Issue:
    """A problem `plurspool check` and intake report: errors stop a post, warnings do not."""

    level: Literal["error", "warning"]
    message: str


class Platform(Protocol):
    # True when every request the platform makes is preceded by a synced `job.save` of what
    # identifies it on the peer (a signed event, a record key, an idempotency key): then a
    # retry after a power cut finds it there, and the sender writes its in-flight mark in
    # that first save's transaction instead of a synced write of its own. False for exec and
    # outbox.
    material_first: bool
    # True when the platform sends a post's `poll` (plurspool(5)); `check` refuses a poll for
    # an account whose platform has none.
    polls: bool

    def send(self, job: Job) -> Outcome:
        """Send one post (all its thread parts) to one account."""
        ...

    def measure(self, post: Post, account: Account, state_dir: Path) -> Measure | None:
        """How the account's server counts a thread part of this post, None when it has no
        limit (plurspool(5), AUTO-SPLIT). Offline: cached limits only."""
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


class Deleter(Protocol):
    """A platform that can delete what it sent (platforms.DELETES)."""

    def delete(self, job: DeleteJob) -> Outcome:
        """Delete every part of one account's copy of a post; "already gone" is done."""
        ...


T = TypeVar("T")


class Abandoned(Exception):
    """`wait_within` stopped waiting for a call: the sender's shutdown deadline passed."""


def wait_within(deadline: Callable[[], float], call: Callable[[], T], name: str) -> T:
    """Run `call` in a worker thread and wait for it while `deadline()` stays above zero.

    A request's own timeout is fixed when it starts; a shutdown that begins while a server
    hangs must not wait for it. An abandoned call is in doubt, as after a crash (its worker,
    a daemon thread, dies with the process); raises Abandoned.
    """
    import threading

    done: list[T] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            done.append(call())
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if worker.is_alive() and deadline() <= 0:
            raise Abandoned(name)
    if failed:
        raise failed[0]
    return done[0]
