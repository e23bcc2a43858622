"""The daemon: wakes on inotify hints, on a timer set to the next due post, and on rescans.

Events are only hints. The indexes of scheduled/ and sent/ (`index.Index`: keyed by name, inode,
size and mtime, with a heap of due and expiry times) let a pass touch only what changed or is
due; a full rescan at start and every `rescan_interval` catches whatever the events missed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from .app import SPOOLS, App
from .config import Config
from .deleting import Deletions
from .errors import DaemonError, PlurspoolError
from .feeds import Feeds
from .gitsync import NETWORK_TIMEOUT
from .hosts import host_name
from .ics import Feed
from .index import Index
from .locks import DaemonLock
from .log import Log
from .sender import PassResult, Sender
from .spool import DIRS, classify
from .watch import WATCHED, Nudge, Watcher

HEARTBEAT_EVERY = 15.0  # seconds; `daemon health` calls a heartbeat older than 90 s stale
HEALTH_STALE = 90.0
BLIND = "blind: "  # a heartbeat line saying why the daemon cannot see its spool
QUIET = 0.2  # a file closed after writing is taken once it has been quiet this long
PRUNE_AFTER = 7 * 86400.0  # seconds of send history kept for the rate-limit windows
SETTLE = 1.0  # a file seen only by a scan is taken once its mtime is this old


def heartbeat_path(app: App) -> Path:
    return app.state_dir / "heartbeat"


RECORD = "daemon.json"  # in a spool's state dir: what the daemon that last ran there said


def _read_record(path: Path) -> dict[str, Any]:
    """A daemon's record (see `Daemon._record`); {} if there is none that can be read."""
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def read_record(app: App) -> dict[str, Any]:
    return _read_record(app.state_dir / RECORD)


def recorded_spool(state_home: Path, config: Path) -> Path | None:
    """The spool of the daemon last started on this host with the config file `config`.

    How `daemon stop`, `status`, `logs` and `health` find the daemon while its config cannot
    be loaded (see plurspool(1), daemon).
    """
    latest: tuple[int, str] | None = None
    for path in state_home.glob(f"{SPOOLS}/*/{RECORD}"):
        record = _read_record(path)
        spool = record.get("spool")
        if record.get("config") != str(config) or not isinstance(spool, str):
            continue
        try:
            started = path.stat().st_mtime_ns
        except OSError:
            continue
        if latest is None or started > latest[0]:
            latest = (started, spool)
    return Path(latest[1]) if latest is not None else None


def sd_notify(message: str) -> None:
    """Tell systemd about our state when it asked (NOTIFY_SOCKET); silent otherwise."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode())
    except OSError:
        pass


class Daemon:
    """`plurspool send`: the long-running sender of one spool."""

    def __init__(
        self,
        load_config: Callable[[], Config],
        log: Log,
        *,
        poll_interval: float | None = None,
    ) -> None:
        self.load_config = load_config
        self.config = load_config()
        self.log = log
        self.poll_override = poll_interval
        self.app = App(self.config)
        self.stop_at: float | None = None
        self.reload = False
        self.watcher = Watcher(self.app.spool, log)
        self.wakeups = self.watcher.wakeups
        self.nudge: Nudge | None = None  # how signal handlers wake the loop (run() makes it)
        self.sender = self._sender()
        self.deletions = Deletions(
            self.app,
            log,
            stopping=self.stopping,
            deadline=self.seconds_left,
            on_failure=lambda p, error, a: self.sender._on_failure(p, error, a, "delete"),
        )
        self.feeds = Feeds(self.app, log)  # polled after each pass (plurspool(1), FEEDS)
        self.feed = Feed(self.app, log)  # [calendar] ics
        self._lock: DaemonLock | None = None
        self._spool_lock: int | None = None  # the flock on the spool root (Locks.lock_spool)
        self.root_id: tuple[int, int] | None = None  # the spool root that is locked
        self.missing_since: float | None = None  # monotonic time a state dir was seen missing
        self.blind: str | None = None  # why the daemon cannot see its spool (`daemon health`)
        self.relock = False  # the spool root was lost: lock what is there now
        self.last_beat: float | None = None  # monotonic time of the last heartbeat

    def _sender(self) -> Sender:
        return Sender(self.app, self.log, stopping=self.stopping, deadline=self.seconds_left)

    # -- shutdown --------------------------------------------------------------------------

    def stopping(self) -> bool:
        return self.stop_at is not None

    def seconds_left(self) -> float:
        """Time a send in flight may still take: unbounded until a shutdown begins.

        Platforms ask this often while they wait (exec every half second), so a long send
        keeps the heartbeat fresh from here: the main thread is still making progress.
        """
        if self.last_beat is not None and time.monotonic() - self.last_beat >= HEARTBEAT_EVERY:
            self._beat()
        if self.stop_at is None:
            return 3600.0
        return self.stop_at - time.monotonic()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        elif self.stop_at is None:
            timeout = self.config.daemon.shutdown_timeout.total_seconds()
            self.stop_at = time.monotonic() + timeout
        if self.nudge is not None:
            self.nudge()

    # -- lock and host -----------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the one-daemon-per-spool locks (see Locks), or fail with exit status 1."""
        self.app.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_root()
        try:
            self._lock = self.app.locks.lock_daemon()
        except DaemonError:
            self.release()
            raise

    def _lock_root(self) -> None:
        """Lock the spool root now at the spool's path, letting go of the one locked before
        first (it may be the same directory, moved away and back)."""
        if self._spool_lock is not None:
            os.close(self._spool_lock)
            self._spool_lock = None
        fd = self.app.locks.lock_spool()
        if fd is None:
            self.log.event(
                "no-spool-lock",
                level="warning",
                error="the spool's filesystem has no flock: only daemons with this state "
                "directory are kept out",
            )
        self._spool_lock = fd
        st = os.fstat(fd) if fd is not None else os.stat(self.app.spool.root)
        self.root_id = (st.st_dev, st.st_ino)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._spool_lock is not None:
            os.close(self._spool_lock)
            self._spool_lock = None

    # -- running ---------------------------------------------------------------------------

    def once(self) -> PassResult:
        """`send --once`: one full pass, then exit."""
        self.app.spool.check()
        self.acquire()
        try:
            why = self.config.not_here(self.config.accounts)
            if why is not None:
                self.log.event("not-sending", host=host_name(), reason=why)
                return PassResult()
            result = self.sender.run_pass()
            self.deletions.run(self.deletions.expired())  # plurspool(5), `expires`
            self.feeds.poll_due()  # after the pass: a fetch never delays a send
            self.sender.git.pass_done()  # [git] autocommit: deleted_at, feeds' posts too
            self.sender.wait_hooks(10)
            self.sender.git.close(2 * NETWORK_TIMEOUT)  # its commit and push, if [git] asks
            self.feed.after_pass(0)  # [calendar] ics, for the timer's passes too
            return result
        finally:
            self.release()

    def run(self) -> None:
        """Run until SIGTERM/SIGINT; raises DaemonError if it cannot start."""
        app = self.app
        app.spool.ensure()
        self.acquire()
        try:
            self._record()
            self.nudge = Nudge(self.wakeups.event)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, self._on_signal)
            self._loop()
        finally:
            if self.nudge is not None:
                self.nudge.close()
            self.watcher.stop()
            sd_notify("STOPPING=1")
            self.release()

    def _keep_watching(self) -> tuple[bool, float | None]:
        """Keep sending from the spool at its path when its directories change under us.

        Git removes a directory with the last file in it; a user may `rmdir new; mkdir new`, or
        replace the whole spool by a fresh clone. A state dir missing for QUIET seconds (whoever
        removed it may be making it again) is made again; a spool replaced is locked anew;
        whatever is no longer what was watched is watched anew. Returns whether something was
        (then a rescan finds what arrived before), and, while the spool is incomplete or gone,
        when to look again: no pass runs until then.
        """
        spool = self.app.spool
        with self.wakeups.lock:
            lost, self.wakeups.lost = self.wakeups.lost, set()
        if "." in lost:  # whatever is there now is locked and watched anew
            self.relock = True
            lost |= set(WATCHED[1:])
        self.watcher.lost |= lost
        seen = spool.layout()
        if seen["."] is None:
            self._blind(f"the spool {spool.root} is gone; put it back (or clone it) there")
            return False, time.time() + 1.0
        if self.relock or seen["."] != self.root_id:
            locked = self.root_id
            try:
                self._lock_root()  # a DaemonError if another daemon sends from it already
            except OSError as exc:  # gone again
                self._blind(f"cannot open the spool {spool.root}: {exc.strerror}")
                return False, time.time() + 1.0
            self.relock = False
            if self.root_id != locked:
                self.log.event("spool-replaced", level="warning", spool=str(spool.root))
        missing = [name for name in DIRS if seen[name] is None]
        if missing:
            now = time.monotonic()
            if self.missing_since is None:
                self.missing_since = now
            if now - self.missing_since < QUIET:
                return False, time.time() + QUIET - (now - self.missing_since)
            for name in missing:
                try:
                    made = spool.restore(name)
                except OSError as exc:
                    self._blind(f"cannot make {spool.dir(name)} again: {exc.strerror}")
                    return False, time.time() + 5
                if made:
                    self.log.event("recreated", dir=f"{name}/", mode="0700")
            seen = spool.layout()
        self.missing_since = None
        if self.blind is not None:
            self.blind = None
            self.log.event("watching", spool=str(spool.root))
            sd_notify("STATUS=sending")
            self._beat()
        return self.watcher.started and self.watcher.rewatch(seen), None

    def _incomplete(self) -> bool:
        """Whether the spool or one of its state dirs is missing right now."""
        return any(v is None for k, v in self.app.spool.layout().items() if k != "..")

    def _blind(self, why: str) -> None:
        """The daemon cannot see its spool: say why, once, and in the heartbeat."""
        if why != self.blind:
            self.blind = why
            self.log.event("blind", level="error", error=why)
            sd_notify(f"STATUS=blind: {why}")
            self._beat()

    def _poll_interval(self) -> float:
        if self.poll_override is not None:
            return self.poll_override
        return self.config.daemon.poll_interval.total_seconds()

    def _loop(self) -> None:
        app = self.app
        # A long-running sender waits for in-place saves to settle (`send --once` cannot wait).
        self.sender.settle = QUIET
        inotify = self.watcher.start()
        index = Index(app.items, app.spool, app.clock)
        expiring = Index(app.items, app.spool, app.clock, "sent")  # plurspool(5), `expires`
        why = self.config.not_here(self.config.accounts)
        self.log.event(
            "started",
            pid=os.getpid(),
            spool=str(app.spool.root),
            watch="inotify" if inotify else f"poll every {self._poll_interval():g}s",
            sending=None if why is None else f"no: {why}",
        )
        next_rescan = 0.0
        sd_notify("READY=1\nSTATUS=sending")
        self._beat()
        while self.stop_at is None:
            if self.reload:
                self._reload()
                why = self.config.not_here(self.config.accounts)
                next_rescan = 0.0
            now = time.time()
            result = PassResult()
            wait: float | None = None  # while the spool is incomplete: no pass till then
            if why is None:
                try:
                    rescan, wait = self._keep_watching()
                    inotify = self.watcher.watching()
                    if rescan:
                        next_rescan = 0.0  # what arrived before the new watches were made
                    if wait is None:
                        wake_new = self._intake(inotify, now >= next_rescan, result)
                        for post_id in result.queued:
                            index.refresh(post_id)
                        if now >= next_rescan:
                            app.spool.check()
                            index.rescan()
                            expiring.rescan()
                            self._prune(now)
                            next_rescan = now + app.config.daemon.rescan_interval.total_seconds()
                        elif not inotify:
                            # No events tell us what changed in scheduled/: look at every poll (a
                            # stat walk; parses are cached by inode, size and mtime).
                            index.rescan()
                        else:
                            with self.wakeups.lock:
                                changed = self.wakeups.scheduled
                                self.wakeups.scheduled = set()
                            for post_id in changed:
                                index.refresh(post_id)
                        due = index.take_due(app.clock().timestamp())
                        for item in index.invalid():
                            self.sender._report_invalid(item, result)
                        unwatched = inotify and self.watcher.unwatch_scheduled(
                            len(due), len(index.known)
                        )
                        try:
                            self.sender.send_due(due, result)
                        finally:
                            if unwatched:
                                inotify = self.watcher.watch_scheduled()  # else poll from now on
                                next_rescan = 0.0  # what changed while it was not watched
                                result.soonest(time.time())
                        for post_id in [*result.sent, *result.failed, *result.queued]:
                            index.refresh(post_id)
                        for post_id in result.repeated:  # a template and its occurrence
                            index.refresh(post_id)
                        for post_id in result.sent:
                            expiring.refresh(post_id)
                        due_now = expiring.take_due(app.clock().timestamp())
                        gone = self.deletions.run(self.deletions.and_pending(due_now))
                        for post_id in gone.recorded:
                            expiring.refresh(post_id)
                        if gone.recorded:
                            self.sender.git.pass_done()  # [git] autocommit: deleted_at
                        result.soonest(gone.wake)
                        result.soonest(expiring.next_due())
                        # Feeds after the sends; no fetch starts while a post is due.
                        for post_id in self.feeds.poll_due(
                            lambda: self.stopping() or (index.next_due() or 1e100) <= time.time()
                        ):
                            index.refresh(post_id)
                        result.soonest(self.feeds.next_poll())
                        result.soonest(index.next_due())
                        result.soonest(wake_new)
                except PlurspoolError as exc:
                    if not isinstance(exc, DaemonError) and self._incomplete():
                        # A directory vanished under the pass: _keep_watching sees to it now.
                        result.soonest(time.time())
                    else:
                        self.log.event("error", level="error", error=exc.message, hint=exc.hint)
                        if isinstance(exc, DaemonError) or "symlink" in exc.message:
                            raise
                        result.soonest(time.time() + 5)
                        next_rescan = max(next_rescan, time.time() + 5)  # not at once again
                self.feed.after_pass(index.changes)
            self.sender._reap_hooks()
            if self.last_beat is None or time.monotonic() - self.last_beat >= HEARTBEAT_EVERY / 2:
                self._beat()
            # Sleep until the next due post, retry or rate-limit window, rescan, or heartbeat.
            limits = [next_rescan if wait is None else wait, time.time() + HEARTBEAT_EVERY]
            if not inotify:
                limits.append(time.time() + self._poll_interval())
            if result.wake is not None:
                limits.append(result.wake)
            timeout = max(0.0, min(limits) - time.time())
            if self.wakeups.event.wait(timeout):
                self.wakeups.event.clear()
        self.log.event("stopping", in_flight=None)
        self.sender.wait_hooks(max(0.0, self.seconds_left()))
        self.sender.git.close(max(0.0, self.seconds_left()))
        self.log.event("stopped")

    def _prune(self, now: float) -> None:
        """Forget sends older than any rate-limit window needs (a week at least, so a limit
        added by a reload still knows the sends before it) and server holds that are over."""
        windows = [lim.window.total_seconds() for lim in self.config.rate_limits.values()]
        self.app.ledger.prune(now - max([PRUNE_AFTER, *windows]))

    def _intake(self, inotify: bool, full: bool, result: PassResult) -> float | None:
        """Take in complete files from new/; returns when to look again at unsettled ones."""
        app = self.app
        now = time.time()
        with self.wakeups.lock:
            hints = dict(self.wakeups.new)
        names: set[str] = set(hints)
        if full or not inotify:
            names |= {e.id + ".md" for e in app.spool.entries("new")}
        wake: float | None = None
        for name in sorted(names):
            if self.stop_at is not None:
                break
            # Editors' lock symlinks, autosaves and backups (`.#x.md`...) are never touched.
            is_post = classify(name) != "ignore"
            entry = app.spool.stat_entry("new", name[:-3]) if is_post else None
            how, seen = hints.get(name, ("scan", now))
            if entry is None:
                self._drop_hint(name, seen)
                continue
            if how == "moved":
                ready_at = now
            elif how == "closed":
                ready_at = max(seen + QUIET, entry.mtime_ns / 1e9 + QUIET)
            else:
                ready_at = entry.mtime_ns / 1e9 + SETTLE
            if ready_at > now:
                wake = ready_at if wake is None else min(wake, ready_at)
                if how == "scan":
                    # Seen by a scan only: keep it as a hint, or no event may ever bring it back.
                    with self.wakeups.lock:
                        self.wakeups.new.setdefault(name, (how, seen))
                continue
            self._drop_hint(name, seen)
            self.sender.intake(entry, result)
        return wake

    def _drop_hint(self, name: str, seen: float) -> None:
        with self.wakeups.lock:
            if self.wakeups.new.get(name, ("", 0.0))[1] <= seen:
                self.wakeups.new.pop(name, None)

    def _reload(self) -> None:
        self.reload = False
        try:
            config = self.load_config()
        except PlurspoolError as exc:
            self.log.event("reload-failed", level="error", error=exc.message, hint=exc.hint)
            return
        if config.spool != self.config.spool:
            self.log.event(
                "reload", level="warning", error="the spool path changed; restart to use it"
            )
        self.config = config
        self.app.config = config
        self._record()
        self.log.event("reloaded", path=str(config.path) if config.path else None)

    def _record(self) -> None:
        """Say which spool and config this daemon serves (see `recorded_spool`), and how long
        it may take to stop (see `Service.stop`)."""
        config = str(self.config.path.resolve()) if self.config.path is not None else None
        record = {
            "pid": os.getpid(),
            "spool": str(self.app.spool.root),
            "config": config,
            "shutdown_timeout": self.config.daemon.shutdown_timeout.total_seconds(),
        }
        path = self.app.state_dir / RECORD
        try:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record) + "\n")
            os.replace(tmp, path)
        except OSError as exc:
            self.log.event("record", level="warning", path=str(path), error=exc.strerror)

    def _beat(self) -> None:
        self.last_beat = time.monotonic()
        path = heartbeat_path(self.app)
        try:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(f"{os.getpid()}\n" + (f"{BLIND}{self.blind}\n" if self.blind else ""))
            os.replace(tmp, path)
        except OSError as exc:
            self.log.event("heartbeat", level="warning", error=exc.strerror)
        sd_notify("WATCHDOG=1")


def health(app: App) -> tuple[bool, str]:
    """Whether the daemon of this spool runs, sees its spool and its heartbeat is fresh."""
    path = heartbeat_path(app)
    if not app.locks.daemon_running():
        return False, "no daemon is running for this spool"
    other = app.locks.daemon_elsewhere()
    if other is not None:
        return False, (
            f"the daemon sending from this spool ({other}) keeps its state elsewhere, not in "
            f"{app.state_dir}: ask with the XDG_STATE_HOME it runs with"
        )
    try:
        age = time.time() - path.stat().st_mtime
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return False, "the daemon has written no heartbeat yet"
    if age > HEALTH_STALE:
        return False, f"the heartbeat is {age:.0f}s old (stale after {HEALTH_STALE:.0f}s)"
    for line in lines[1:]:
        if line.startswith(BLIND):
            return False, f"the daemon cannot see its spool: {line.removeprefix(BLIND)}"
    return True, f"heartbeat {age:.0f}s ago"
