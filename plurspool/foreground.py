"""Sending one post in the foreground (`post` without a schedule, `now` with no daemon).

It is the daemon's own path (`Sender.run_pass`) restricted to one post; the per-post claim makes
sure a daemon that wakes at the same moment and this process never both send it.
"""

from __future__ import annotations

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
    core.locks.wait_for_claim(post_id, wait)
    return core.view(core.find(post_id))
