"""The loop's wake-ups: inotify on the spool turned into hints (`Wakeups`), and signals (`Nudge`).

The only module that imports watchdog (lazily: `plurspool --help` must stay fast). It relies on
one private attribute of watchdog, `InotifyMoveEventGrouper.delay` (see `Watcher.start`), found in
watchdog 7 (pyproject pins `watchdog>=7.0,<8`; watchdog 6 has no such grouper);
tests/system/test_watch.py fails loudly if it disappears.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .log import Log
from .spool import Spool, classify

BURST = 50  # posts due at once from which scheduled/ is not watched while they go (see there)
# What is watched: the directory holding the spool and the spool itself for directories only (a
# state dir or the spool removed, made again or replaced), new/ and scheduled/ for files.
WATCHED = ("..", ".", "new", "scheduled")


def move_grouper() -> Any:
    """watchdog's class that holds each IN_MOVED_FROM back to pair it (its `delay` is set to 0).

    Raises ImportError where this watchdog has none (then the daemon polls).
    """
    from watchdog.observers import inotify_move_event_grouper

    return inotify_move_event_grouper.InotifyMoveEventGrouper


@dataclass
class Wakeups:
    """Hints from inotify, collected by the observer thread for the main loop."""

    lock: threading.Lock
    event: threading.Event
    new: dict[str, tuple[str, float]]  # name in new/ -> (how it arrived, when)
    scheduled: set[str]
    overflow: bool = False
    # The spool (".") or state dirs removed or moved away: watched anew even if a directory
    # made in their place has the same inode number (file systems reuse them at once).
    lost: set[str] = field(default_factory=set)


class Nudge:
    """Wakes the loop from a signal handler without taking a lock there.

    `Event.set` takes the event's lock, and a handler runs in the main thread between any two
    of its bytecodes: one that ran while the main thread held that lock (inside `Event.wait`
    or `clear`) would wait for itself forever, and SIGTERM would hang the daemon. The handler
    writes a byte to a pipe instead (never blocking: a full pipe already holds a wake-up), and
    a thread sets the event.
    """

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._thread = threading.Thread(target=self._relay, name="plurspool-nudge", daemon=True)
        self._thread.start()

    def __call__(self) -> None:
        if self._write >= 0:  # after close, a late signal must not write to a reused fd
            with contextlib.suppress(BlockingIOError):
                os.write(self._write, b"\0")

    def _relay(self) -> None:
        try:
            while os.read(self._read, 512):
                self.event.set()
        finally:
            os.close(self._read)

    def close(self) -> None:
        """Stop the relay thread (it ends at the pipe's end)."""
        write, self._write = self._write, -1
        if write >= 0:
            os.close(write)
            self._thread.join(5)


class Watcher:
    """The observer and its watches on the spool (`WATCHED`), made anew when what they watch
    is removed or replaced."""

    def __init__(self, spool: Spool, log: Log) -> None:
        self.spool = spool
        self.log = log
        self.wakeups = Wakeups(threading.Lock(), threading.Event(), {}, set())
        self.observer: Any = None
        self.watch: Callable[[str], Any] | None = None  # watches one of WATCHED
        self.watches: dict[str, Any] = {}  # the observer's watch on each of WATCHED
        self.watched: dict[str, tuple[int, int] | None] = {}  # and what it watches (dev, inode)
        self.lost: set[str] = set()  # places to watch anew (see Wakeups.lost)

    @property
    def started(self) -> bool:
        return self.watch is not None

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()

    def start(self) -> bool:
        """Start watching; False where inotify cannot be had (then the daemon polls)."""
        if os.environ.get("PLURSPOOL_NO_INOTIFY"):
            return False
        try:
            from watchdog.observers.inotify import InotifyObserver

            grouper = move_grouper()
        except ImportError:
            return False
        # watchdog holds every IN_MOVED_FROM for 0.5 s to pair it with its IN_MOVED_TO, and
        # its queue delivers nothing else meanwhile: each post leaving scheduled/ would stall
        # all other events by half a second. We need no pairing (arrivals and departures are
        # handled apart, see Handler), so deliver at once.
        grouper.delay = 0.0
        # watchdog logs its own hiccups (e.g. at shutdown) through `logging`, which would print
        # stray lines into our one-event-a-line log.
        wlog = logging.getLogger("watchdog")
        wlog.addHandler(logging.NullHandler())
        wlog.propagate = False
        handler = Handler(self.spool.root, self.wakeups)
        spool = self.spool
        try:
            from watchdog.events import (
                DirCreatedEvent,
                DirDeletedEvent,
                DirMovedEvent,
                FileClosedEvent,
                FileCreatedEvent,
                FileDeletedEvent,
                FileModifiedEvent,
                FileMovedEvent,
            )

            # Full events: a file renamed in from outside (tmp/, another dir) is a move with
            # an empty source, not a "created" file that must first settle. Only new/ and
            # scheduled/ are watched, and no IN_OPEN / IN_CLOSE_NOWRITE: our own temporary
            # files, moves to sent/ and reads of posts would be events to decode and drop,
            # several per post sent, on the sender's time. Moves need no pairing across the
            # two watches: arrivals and departures are handled apart (see Handler).
            wanted = [
                FileCreatedEvent,
                FileModifiedEvent,
                FileMovedEvent,
                FileDeletedEvent,
                FileClosedEvent,
            ]
            dirs = [DirCreatedEvent, DirDeletedEvent, DirMovedEvent]
            observer = InotifyObserver(generate_full_events=True)
            observer.daemon = True
            observer.start()
        except OSError as exc:
            self.log.event("no-inotify", level="warning", error=str(exc))
            return False

        def watch(place: str) -> Any:
            path = {"..": spool.root.parent, ".": spool.root}.get(place) or spool.dir(place)
            return observer.schedule(
                handler,  # type: ignore[arg-type]
                str(path),
                recursive=False,
                event_filter=dirs if place in ("..", ".") else wanted,
            )

        self.observer = observer
        self.watch = watch
        self.rewatch(spool.layout())
        return self.watching()

    def watching(self) -> bool:
        """Whether events tell what arrives in new/ and scheduled/ (else they are polled)."""
        return "new" in self.watches and "scheduled" in self.watches

    def rewatch(self, seen: dict[str, tuple[int, int] | None]) -> bool:
        """Watch anew each of WATCHED that is no longer what was watched there (removed, made
        again, replaced: `lost`, or another inode); True if any was. Where inotify refuses: a
        warning, and new/ and scheduled/ are polled from then on."""
        assert self.watch is not None
        changed = False
        lost, self.lost = self.lost, set()
        for place in WATCHED:
            if place not in lost and place in self.watched and self.watched[place] == seen[place]:
                continue
            old = self.watches.pop(place, None)
            if old is not None:
                with contextlib.suppress(OSError, KeyError):
                    self.observer.unschedule(old)
            again = place in self.watched
            self.watched[place] = seen[place]
            if seen[place] is None:
                continue
            path = os.path.normpath(os.path.join(self.spool.root, place))
            try:
                self.watches[place] = self.watch(place)
            except OSError as exc:
                self.log.event("no-inotify", level="warning", dir=path, error=str(exc))
                continue
            if again:
                self.log.event("rewatched", dir=path)
            changed = True
        return changed

    def unwatch_scheduled(self, due: int, queued: int) -> bool:
        """Stop watching scheduled/ for a pass that sends `due` posts at once, when that pays.

        Each post sent is two events there (its results written, its move to sent/), which
        watchdog's threads decode and hand on while the sender needs the interpreter: a third
        of the time of a 1,000-post burst here. Nothing reads them before the pass ends anyway;
        a rescan afterwards (one stat per queued post) finds whatever changed meanwhile. So
        only for bursts of BURST posts or more, and of a 250th of the queue or more.
        """
        watch = self.watches.get("scheduled")
        if watch is None or due < max(BURST, queued // 250):
            return False
        try:
            self.observer.unschedule(watch)
        except (OSError, KeyError):
            return False
        del self.watches["scheduled"]
        self.log.event("burst", due=due, watching="new/ only")
        return True

    def watch_scheduled(self) -> bool:
        """Watch scheduled/ again after a burst; False (and a warning) if inotify refuses."""
        assert self.watch is not None
        try:
            self.watches["scheduled"] = self.watch("scheduled")
        except OSError as exc:
            self.log.event("no-inotify", level="warning", error=str(exc))
            return False
        return True


class Handler:
    """watchdog event handler: records names and wakes the loop. Never touches files.

    Duck-typed: the observer only ever calls `dispatch`.
    """

    def __init__(self, root: Path, wakeups: Wakeups) -> None:
        self.root = str(root)
        self.new = str(root / "new")
        self.scheduled = str(root / "scheduled")
        self.w = wakeups

    def dispatch(self, event: Any) -> None:
        kind = event.event_type
        if event.is_directory:
            # A state dir or the spool made, removed or moved (the only directory events asked
            # for): the loop looks at what is there now (daemon.Daemon._keep_watching).
            if kind in ("deleted", "moved") and event.src_path:
                path = os.fsdecode(event.src_path)
                with self.w.lock:
                    if path == self.root:
                        self.w.lost.add(".")
                    elif os.path.dirname(path) == self.root:
                        self.w.lost.add(os.path.basename(path))
            self.w.event.set()
            return
        if kind in ("opened", "closed_no_write"):
            return  # our own reads must not wake us
        paths = [event.src_path]
        if kind == "moved":
            paths = [event.dest_path]
        now = time.time()
        with self.w.lock:
            for raw in paths:
                path = os.fsdecode(raw)
                parent, name = os.path.split(path)
                if classify(name) == "ignore":
                    pass
                elif parent == self.new:
                    how = {"moved": "moved", "closed": "closed"}.get(kind, "written")
                    prev = self.w.new.get(name)
                    if how == "written" and prev and prev[0] in ("moved", "closed"):
                        how = "closed"  # written again after arriving: wait for quiet
                    self.w.new[name] = (how, now)
                elif parent == self.scheduled:
                    self.w.scheduled.add(name[:-3])
            if kind == "moved":
                parent, name = os.path.split(os.fsdecode(event.src_path))
                if parent == self.scheduled and classify(name) != "ignore":
                    self.w.scheduled.add(name[:-3])
        self.w.event.set()
