"""plurspool.watch leans on one private attribute of watchdog: fail loudly when it goes.

watchdog holds each IN_MOVED_FROM back for `InotifyMoveEventGrouper.delay` seconds to pair it,
and delivers nothing else meanwhile; the daemon sets that delay to 0 (see plurspool/watch.py).
If a watchdog release renames or drops it, setting it would silently do nothing and every post
leaving scheduled/ would stall all other events by half a second.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from plurspool.watch import move_grouper

ROOT = Path(__file__).resolve().parents[2]


def test_watchdog_still_has_the_move_delay_the_daemon_sets_to_zero() -> None:
    grouper = move_grouper()
    assert "delay" in vars(grouper), (
        f"watchdog {version('watchdog')} has no {grouper.__name__}.delay any more: "
        "plurspool/watch.py (Watcher.start) must find another way to deliver moves at once, "
        "and pyproject's watchdog range must exclude this release"
    )
    assert isinstance(grouper.delay, int | float)  # seconds


def test_the_installed_watchdog_is_in_the_range_pyproject_declares() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r'"watchdog>=(\d+)\.(\d+),<(\d+)"', text)
    assert m is not None, "pyproject.toml must pin watchdog as >=X.Y,<Z (what this test checks)"
    low = (int(m[1]), int(m[2]))
    high = int(m[3])
    major, minor = (int(x) for x in version("watchdog").split(".")[:2])
    assert low <= (major, minor) and major < high, (
        f"watchdog {version('watchdog')} is outside pyproject's range {m[0]}"
    )
