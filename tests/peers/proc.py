"""What every peer launcher shares: a free port, a peer subprocess, and serving until a signal."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PeerProcess:
    """A peer subprocess in its own process group, where it listens, and its log."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    name: str = "peer"
    # gunicorn (nostr-relay) takes ~3 s to stop on any polite signal; its data is throwaway.
    stop_signal: int = signal.SIGTERM
    stop_wait: float = 5.0  # the PDS takes up to ~3 s to exit on SIGTERM

    def stop(self) -> None:
        """Signal the process group, SIGKILL it if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, self.stop_signal)
            try:
                self.proc.wait(self.stop_wait)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        else:  # children (gunicorn workers) may outlive a dead leader
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def __enter__(self) -> PeerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT. Install it BEFORE starting peers, so a signal that
    comes during start-up still lets the `with` blocks stop them (they run in their own
    sessions and would outlive a launcher killed by the default action)."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def wait_for(stop: threading.Event) -> None:
    """Block until `stop` is set (polling, so signal handlers run promptly)."""
    while not stop.wait(0.2):
        pass
