"""The sender's finisher thread: writes a sent post's results and moves it while the next post
is being sent, in the order they were handed over."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .log import Log


class Finisher:
    """One worker thread that finishes posts (writes their results, moves them) in the order
    they were handed over. It uses the spool only, never the ledger's connection; `close`
    waits until every post handed over is finished."""

    def __init__(self, log: Log) -> None:
        import queue
        import threading

        self.log = log
        self.jobs: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="finisher", daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self.jobs.put((fn, args))

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            fn, args = job
            try:
                fn(*args)
            except Exception as exc:  # a post left in scheduled/: the next pass finishes it
                self.log.event("error", level="error", error=f"finishing: {exc!r}"[:300])
