"""The daemon's signal handlers never take a lock: SIGTERM cannot hang the loop (plurspool(1),
DAEMON). The real daemon under real signals is tests/system/test_daemon.py."""

from __future__ import annotations

import io
import signal
import threading
from pathlib import Path

from plurspool.config import load
from plurspool.daemon import Daemon
from plurspool.log import Log
from plurspool.watch import Nudge
from tests.daemon_helpers import Sandbox


def daemon(tmp_path: Path) -> Daemon:
    box = Sandbox(tmp_path)
    box.write_config()
    return Daemon(lambda: load(box.config_path, env=box.env), Log(stream=io.StringIO()))


def held_while(event: threading.Event, act: object) -> bool:
    """Run `act()` while holding `event`'s lock, as a handler runs in the middle of
    `Event.wait` or `clear`; True if it returned (a handler that takes the lock never does)."""
    done = threading.Event()

    def run() -> None:
        with event._cond:  # type: ignore[attr-defined]  # the lock Event.set takes
            act()  # type: ignore[operator]
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(5)


def test_sigterm_while_the_loop_holds_the_events_lock_stops_it(tmp_path: Path) -> None:
    d = daemon(tmp_path)
    d.nudge = Nudge(d.wakeups.event)
    try:
        assert held_while(d.wakeups.event, lambda: d._on_signal(signal.SIGTERM, None))
        assert d.wakeups.event.wait(5)  # the loop wakes, and finds stop_at set
        assert d.stop_at is not None and d.stopping()
    finally:
        d.nudge.close()


def test_sighup_asks_for_a_reload_and_wakes_the_loop(tmp_path: Path) -> None:
    d = daemon(tmp_path)
    d.nudge = Nudge(d.wakeups.event)
    try:
        assert held_while(d.wakeups.event, lambda: d._on_signal(signal.SIGHUP, None))
        assert d.wakeups.event.wait(5) and d.reload and d.stop_at is None
    finally:
        d.nudge.close()


def test_a_nudge_after_close_writes_nowhere() -> None:
    event = threading.Event()
    nudge = Nudge(event)
    nudge.close()
    nudge()  # a late signal during shutdown: no error, no write to a reused descriptor
    assert not event.is_set()
