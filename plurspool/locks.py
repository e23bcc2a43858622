"""Every lock plurspool takes: the daemon's, the spool root's, per-post claims, session files.

All are flocks (released by the kernel when their holder dies, whatever killed it). The project's
lock library is filelock, and it serves the cases that are plain "one holder of this file":
the daemon's lock in its state dir (`DaemonLock`) and a platform's session file
(`session_lock`). The other cases keep `fcntl.flock` here, because filelock cannot serve them:

- the spool root's lock is an flock on the spool *directory* (so that no file need live in a
  spool that may be a git checkout); filelock only locks files it opens (and creates) itself;
- a claim's lock file is removed on release, still locked, so that claims/ does not keep a
  file for every post ever sent, and the claimer re-checks that the file it locked is still the
  one at the name; filelock keeps its file in place on release and gives no handle on the
  descriptor it locked; its locks are also thread-local by default, and a claim taken by the
  sender is let go of by its finisher thread;
- the queue lock (`Locks.queue_lock`) is on the hot path of `post --queue`, which must stay
  within 1.5× of `post -s` (filelock's import alone costs 15 ms); it is re-entrant in one
  `Locks` object (a reflow inside a cancel) through a thread lock around the flock;
- "is a daemon running" and "wait for a claim" take a *shared* lock on a file that must not be
  created when it is missing (a probe that made a file, or took the exclusive lock a starting
  daemon wants, would be a lock of its own); filelock only takes exclusive locks on files it
  creates.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import Busy, DaemonError

CLAIM_TRIES = 20  # opens of a claim's lock file that its holders let go of under our hands
LOCK_NAME = "daemon.lock"  # the daemon's lock in its state dir (plurspool(1), FILES)
QUEUE_LOCK = "queues.lock"  # held while a queue slot is chosen and taken (plurspool(1), FILES)
QUEUE_WAIT = 30.0  # seconds to wait for another plurspool choosing a slot
LOCK_TRIES = 5  # tries, 10 ms apart, to lock the spool root while others may only be looking


def claim_path(state_dir: Path | str, post_id: str) -> str:
    """The lock file of a post's claim (a str: it is on the sender's hot path)."""
    return os.path.join(state_dir, "claims", post_id + ".lock")


def flocked(path: str) -> bool:
    """Whether someone holds an exclusive flock on the file or directory at `path`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


class Claim:
    """A held claim on a post (an flock on its lock file); `release` lets go, once.

    The lock file is removed on release, still locked, so that claims/ does not keep a file
    for every post ever sent; `take_claim` makes sure the file it locked is still the one at
    the name (see there).
    """

    def __init__(self, fd: int, path: str) -> None:
        self.fd: int | None = fd
        self.path = path

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(fd)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _busy(post_id: str) -> Busy:
    return Busy(f"{post_id} is being sent right now", "wait a moment and run it again")


def take_claim(state_dir: Path | str, post_id: str) -> Claim:
    """Claim a post exclusively while it is sent or changed; raises Busy if someone holds it.

    The claim is an flock, so a crash releases it; whoever holds it re-checks the post.
    """
    path = claim_path(state_dir, post_id)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
    for _ in range(CLAIM_TRIES):
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:  # the first claim on this host
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(post_id) from None
        # Its holder may have let go (and removed the file) between our open and our lock:
        # a lock on that file guards nothing, as the next claimer makes a new one.
        try:
            at_name, locked = os.lstat(path), os.fstat(fd)
            same = (at_name.st_dev, at_name.st_ino) == (locked.st_dev, locked.st_ino)
        except FileNotFoundError:
            same = False
        if same:
            return Claim(fd, path)
        os.close(fd)
    # Others kept taking and letting go of it all along: as good as held.
    raise _busy(post_id)


def wait_for_claim(state_dir: Path | str, post_id: str, timeout: float) -> None:
    """If another sender holds the post, wait (at most `timeout` seconds) until it lets go."""
    try:
        fd = os.open(claim_path(state_dir, post_id), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        import signal

        def _timeout(signum: int, frame: object) -> None:
            raise TimeoutError

        old = signal.signal(signal.SIGALRM, _timeout)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except TimeoutError:
            pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    finally:
        os.close(fd)


@contextlib.contextmanager
def session_lock(path: Path) -> Iterator[None]:
    """Hold `path` (a session file's lock, made 0600 if missing) exclusively, waiting for it."""
    from filelock import FileLock

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with FileLock(str(path), mode=0o600):
        yield


def _state_dir_of(pid: int) -> str | None:
    """The state dir of the daemon `pid`: where the daemon.lock it holds open is."""
    fds = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fds)
    except OSError:
        return None
    for name in names:
        try:
            target = os.readlink(os.path.join(fds, name))
        except OSError:
            continue
        if os.path.basename(target) == LOCK_NAME:
            return os.path.dirname(target)
    return None


def _holder_text(holder: tuple[int, str | None]) -> str:
    pid, state_dir = holder
    return f"pid {pid}, state directory {state_dir}" if state_dir else f"pid {pid}"


def _already(root: Path, who: str = "") -> DaemonError:
    return DaemonError(
        f"another plurspool daemon is already sending from {root}{who}",
        "see `plurspool daemon status`; stop it first, or use another --spool",
    )


class Locks:
    """The locks of one spool on this host: its daemon's two locks and its posts' claims.

    A daemon holds two locks: `LOCK_NAME` in its state dir, and an flock on the spool's root
    directory itself. The second needs no file in the spool (which may live in git) and is the
    same for every path and state directory that reach the spool on this machine.
    """

    def __init__(self, root: Path, state_dir: Path) -> None:
        self.root = root
        self.state_dir = state_dir
        self._queue_held = threading.RLock()
        self._queue_fd: int | None = None  # the flocked queues.lock while it is held

    @contextlib.contextmanager
    def queue_lock(self) -> Iterator[None]:
        """Hold the spool's queue lock: whoever chooses a slot holds it until the post is in
        scheduled/ at that slot, so two posts never get one slot. Re-entrant; raises Busy
        after QUEUE_WAIT seconds."""
        with self._queue_held:
            if self._queue_fd is not None:  # entered again in this thread
                yield
                return
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = self.state_dir / QUEUE_LOCK
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(path, flags, 0o600)
            deadline = time.monotonic() + QUEUE_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.close(fd)
                        raise Busy(
                            f"another plurspool has held the queue lock for {QUEUE_WAIT:.0f} s",
                            "try again; `plurspool daemon status` shows whether the daemon is "
                            "stuck",
                        ) from None
                    time.sleep(0.005)
            self._queue_fd = fd
            try:
                yield
            finally:
                self._queue_fd = None
                os.close(fd)  # lets go of the flock

    @property
    def lock_path(self) -> Path:
        return self.state_dir / LOCK_NAME

    def claim(self, post_id: str) -> Claim:
        """Claim a post (a context manager too); raises Busy if someone holds it."""
        return take_claim(self.state_dir, post_id)

    def wait_for_claim(self, post_id: str, timeout: float) -> None:
        wait_for_claim(self.state_dir, post_id, timeout)

    def daemon_running(self) -> bool:
        """True if a daemon sends from this spool on this host, whatever its state dir."""
        return flocked(str(self.lock_path)) or flocked(str(self.root))

    def daemon_elsewhere(self) -> str | None:
        """Who sends from this spool with another state directory than ours, if anyone."""
        if flocked(str(self.lock_path)) or not flocked(str(self.root)):
            return None
        holder = self.lock_holder()
        return _holder_text(holder) if holder else "a process /proc/locks does not name"

    def lock_holder(self) -> tuple[int, str | None] | None:
        """The pid of the process holding the spool root's lock, and the state dir of that
        daemon where /proc tells it (the directory of the daemon.lock it holds open)."""
        try:
            st = os.stat(self.root)
            with open("/proc/locks", encoding="ascii", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        for line in lines:
            # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2180508 0 EOF" (waiters have "->" first)
            w = line.split()
            if len(w) >= 6 and w[1] == "FLOCK" and w[3] == "WRITE" and w[5] == where:
                pid = int(w[4])
                return pid, _state_dir_of(pid)
        return None

    def lock_spool(self) -> int | None:
        """Take the spool root's lock for a daemon: the descriptor that holds it, or None where
        the filesystem has no flock. Raises DaemonError naming the daemon that holds it."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        for _ in range(LOCK_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                time.sleep(0.01)  # perhaps only `daemon_running` looking
            except OSError:
                os.close(fd)
                return None
        holder = self.lock_holder()
        os.close(fd)
        raise _already(self.root, f" ({_holder_text(holder)})" if holder else "")

    def lock_daemon(self) -> DaemonLock:
        """Take the daemon's lock in the state dir; raises DaemonError if a daemon holds it."""
        from filelock import FileLock, Timeout

        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = FileLock(str(self.lock_path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise _already(self.root) from None
        return DaemonLock(lock)


class DaemonLock:
    """The daemon's held lock in its state dir (a filelock); `release` lets go, once."""

    def __init__(self, lock: Any) -> None:
        self._lock: Any = lock

    def release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()
