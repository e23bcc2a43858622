"""The platform protocol: one small interface that every platform module implements.

A platform gets a `Job` (one post for one account) and returns an `Outcome`. It must save any
material it needs to avoid a duplicate (a record key, a signed event) through `job.save` BEFORE
its first network request, and, when `job.in_doubt` is set (an earlier attempt crashed before its
outcome was recorded), check whether that attempt went through before sending again.
"""

from __future__ import annotations

import errno
import importlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

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
    # Seconds until the server's rate-limit window for this account resets, when its last
    # answer (a success too) said no requests are left: the account waits that long.
    hold: float | None = None


HOLD_CAP = 86400.0  # a server's "come back in a year" is not believed past a day
# Servers give the reset to the whole second, often rounded down (mastodon-mock does): a
# request at the very second could still meet the old window.
HOLD_MARGIN = 1.0


def hold_for(remaining: str | None, reset_in: float | None) -> float | None:
    """The hold an answer asks for: its rate-limit headers say `remaining` (as sent) requests
    are left, and the window resets in `reset_in` seconds (a second more is waited, see
    HOLD_MARGIN). None unless none are left and the reset is known."""
    if remaining is None or reset_in is None:
        return None
    try:
        left = float(remaining.strip())
    except ValueError:
        return None
    if left > 0 or reset_in <= 0:
        return None
    return min(reset_in + HOLD_MARGIN, HOLD_CAP)


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


def release() -> None:
    """Close what the platforms in use keep open between sends (relay connections, derived
    keys) and forget the secrets the accounts' commands gave; the sender calls it at the end
    of each pass."""
    import sys

    from ..config import forget_secrets

    forget_secrets()
    for name in PLATFORMS:
        hook = getattr(sys.modules.get(f"{__name__}.{name}"), "release", None)
        if hook is not None:
            hook()


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


def open_media(spool_root: Path, relpath: str) -> int:
    """Open a media file for reading: a regular file under the spool root, reached without
    following any symlink (so a name swapped for a link after the checks leads nowhere).

    Returns the descriptor (the caller closes it); raises OSError, with ELOOP for a symlink on
    the way and EINVAL for anything that is not a regular file inside the root.
    """
    parts = relpath.split("/")
    if not relpath or relpath.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise OSError(errno.EINVAL, "not a plain path inside the spool", relpath)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(spool_root, flags | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            except NotADirectoryError:
                # O_NOFOLLOW|O_DIRECTORY says ENOTDIR for a link to a directory: say ELOOP.
                if stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode):
                    raise OSError(errno.ELOOP, "a symlink on the way", relpath) from None
                raise
            os.close(fd)
            fd = nxt
        # O_NONBLOCK: a FIFO must not hang the sender; it is refused just below.
        file_fd = os.open(parts[-1], flags | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        raise OSError(errno.EINVAL, "not a regular file", relpath)
    return file_fd


def read_media(spool_root: Path, relpath: str, limit: int | None = None) -> bytes:
    """The bytes of a media file opened with `open_media` (at most `limit` of them)."""
    with os.fdopen(open_media(spool_root, relpath), "rb") as f:
        return f.read() if limit is None else f.read(limit)


def media_error(relpath: str, exc: OSError) -> str:
    """Why a media file could not be read, for a failed post's reason."""
    if exc.errno == errno.ELOOP:
        why = "it is a symlink or lies behind one; media must be regular files in the spool"
    elif exc.errno == errno.EINVAL:
        why = "not a regular file inside the spool"
    else:
        why = exc.strerror or str(exc)
    return f"media file {relpath}: {why}"
