"""One event a line on stderr: text for people, JSON for machines, no timestamps under journald."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import IO, Any


class Log:
    """Writes events; fields are plain values and never secrets (callers pass none)."""

    def __init__(
        self, fmt: str = "text", stream: IO[str] | None = None, verbose: bool = False
    ) -> None:
        self.fmt = fmt
        self.stream = stream if stream is not None else sys.stderr
        self.verbose = verbose
        # journald stamps every line itself.
        self.stamp = "JOURNAL_STREAM" not in os.environ
        self.lock = threading.Lock()  # the sender's finisher thread logs too: whole lines

    def event(self, event: str, level: str = "info", **fields: Any) -> None:
        if level == "debug" and not self.verbose:
            return
        if self.fmt == "json":
            rec: dict[str, Any] = {}
            if self.stamp:
                rec["ts"] = _stamp()
            rec.update(level=level, event=event, **fields)
            line = json.dumps(rec, ensure_ascii=False, default=str)
        else:
            parts = []
            if self.stamp:
                parts.append(_stamp())
            if level not in ("info", "debug"):
                parts.append(level.upper())
            parts.append(event)
            for k, v in fields.items():
                if v is None:
                    continue
                s = str(v)
                if s.split(None, 1) != [s] or '"' in s:  # empty, or holds a space or quote
                    s = json.dumps(s, ensure_ascii=False)
                parts.append(f"{k}={s}")
            line = " ".join(parts)
        try:
            with self.lock:
                self.stream.write(line + "\n")
                self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full stderr must not stop the sender


_second: tuple[int, str] = (-1, "")  # the last whole second formatted (one tuple: thread-safe)


def _stamp() -> str:
    global _second
    now = time.time()
    second = _second
    if second[0] != int(now):
        second = _second = (int(now), time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)))
    return f"{second[1]}.{int(now % 1 * 1000):03d}Z"


class NullLog(Log):
    def event(self, event: str, level: str = "info", **fields: Any) -> None:
        return None
