"""The built-in `outbox` platform: append each post as a JSON line to a local file.

It is what a newcomer's posts go to before any real account is configured. Each line carries the
idempotency key; an attempt in doubt looks for its key before appending again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..config import Account
from ..post import Post
from ..split import Measure
from .base import Issue, Job, Outcome
from .exec import payload
from .options import default_outbox


def _already_there(path: Path, key: str) -> bool:
    try:
        with open(path, "rb") as f:
            needle = f'"idempotency_key": "{key}"'.encode()
            return any(needle in line for line in f)
    except FileNotFoundError:
        return False


def outbox_path(account: Account, state_dir: Path) -> Path:
    raw = account.options.get("path")
    return Path(raw).expanduser() if raw else default_outbox(state_dir)


class Outbox:
    material_first = False  # see base.Platform
    polls = False

    def measure(self, post: Post, account: Account, state_dir: Path) -> Measure | None:
        return None

    def check(self, post: Post, account: Account, spool_root: Path) -> list[Issue]:
        return []

    def test(self, account: Account, state_dir: Path) -> dict[str, Any]:
        return {
            "account": account.name,
            "platform": "outbox",
            "path": str(outbox_path(account, state_dir)),
        }

    def send(self, job: Job) -> Outcome:
        path = outbox_path(job.account, job.state_dir)
        if job.in_doubt and _already_there(path, job.idempotency_key):
            return Outcome("sent", remote_id=job.idempotency_key, url=None)
        line = payload(job)
        line["sent_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            return Outcome("temporary", error=f"cannot append to {path}: {exc.strerror}")
        return Outcome("sent", remote_id=job.idempotency_key, url=None)


PLATFORM = Outbox()
