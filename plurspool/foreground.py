"""Sending one post in the foreground (`post` without a schedule, `now` with no daemon).

It is the daemon's own path (`Sender.run_pass`) restricted to one post; the per-post claim makes
sure a daemon that wakes at the same moment and this process never both send it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from typing import Any

from .core import Core
from .log import Log, NullLog
from .sender import Sender


def send_one(
    core: Core, post_id: str, *, verbose: bool = False, wait: float = 120.0
) -> dict[str, Any]:
    """Send a due post of scheduled/ now; return its view (state sent, failed or scheduled)."""
    host = core.config.daemon.host
    if host is not None and host != socket.gethostname():
        item = core.find(post_id)
        view = core.view(item)
        view["error"] = f"daemon.host is {host}: it is sent from there, not from this host"
        return view
    sender = Sender(core, Log(verbose=True) if verbose else NullLog())
    sender.run_pass(only=post_id)
    _wait_for_claim(core, post_id, wait)
    return core.view(core.find(post_id))


def _wait_for_claim(core: Core, post_id: str, timeout: float) -> None:
    """If another sender holds the post, wait (bounded) until it lets go."""
    path = core.state_dir / "claims" / f"{post_id}.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
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
