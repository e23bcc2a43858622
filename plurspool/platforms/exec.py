"""The `exec` platform: run a command with the post as JSON on stdin.

Exit 0 is success (the first line of stdout, if any, is the remote ID, or URL when it looks like
one); exit 75 (EX_TEMPFAIL) is a temporary failure; any other exit is permanent. An attempt whose
outcome is in doubt is simply run again with the same PLURSPOOL_IDEMPOTENCY_KEY: the command
dedupes on it if it must. Only the start and the end of the output are kept (KEEP_HEAD).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Account
from ..post import Post, recorded
from ..split import Measure
from . import fit
from .base import Issue, Job, Outcome

EX_TEMPFAIL = 75
_SECRET_VAR = re.compile(r"^PLURSPOOL_.+_(TOKEN|PASSWORD|KEY)$")


def payload(job: Job) -> dict[str, Any]:
    """The JSON document a command (or the outbox) receives."""
    post, name = job.post, job.account.name
    quote = {} if job.quote is None else {"quote": {"url": job.quote.url, "id": job.quote.id}}
    return {
        "id": job.post_id,
        "account": name,
        "idempotency_key": job.idempotency_key,
        "parts": list(job.parts),
        "cw": post.field_for(name, "cw"),
        "language": post.field_for(name, "language"),
        "visibility": post.field_for(name, "visibility"),
        "sensitive": post.field_for(name, "sensitive"),
        "media": [{"path": str(job.spool_root / m.path), "alt": m.alt} for m in post.media],
        **quote,  # only for a post with a `quote`, resolved (plurspool(5))
    }


def _tail(text: bytes, limit: int = 400) -> str:
    s = text.decode("utf-8", "replace").strip()
    return s if len(s) <= limit else "…" + s[-limit:]


# What is kept of the command's output: the start of stdout (its first line is the remote ID)
# and the end of each stream (an error's detail). The rest is read and dropped, so that a
# command printing megabytes neither blocks on a full pipe nor fills the sender's memory.
KEEP_HEAD = 64 * 1024
KEEP_TAIL = 4 * 1024
_CHUNK = 64 * 1024


class _Kept:
    """The first KEEP_HEAD and the last KEEP_TAIL bytes of an output stream."""

    def __init__(self) -> None:
        self.head = b""
        self.tail = b""

    def add(self, chunk: bytes) -> None:
        if len(self.head) < KEEP_HEAD:
            self.head += chunk[: KEEP_HEAD - len(self.head)]
        self.tail = (self.tail + chunk)[-KEEP_TAIL:]


def _communicate(
    proc: subprocess.Popen[bytes],
    data: bytes,
    out: _Kept,
    err: _Kept,
    left: Callable[[], float],
) -> bool:
    """Write `data` to the command's stdin and keep what `out` and `err` keep of its output,
    until it has exited; kill its process group once `left()` (seconds) runs out. True if it
    had to be killed."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    stdin = proc.stdin.fileno()
    pending = memoryview(data)
    killed = False
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        if pending:
            os.set_blocking(stdin, False)
            selector.register(stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
        while True:
            remaining = left()
            if remaining <= 0 and not killed:
                # The whole group: a `sh -c` child left running would hold the pipes open.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                killed = True
            # Short slices, so that a shutdown that begins mid-send is noticed: the deadline
            # shrinks to what is left of shutdown_timeout.
            wait = 0.5 if killed else min(remaining, 0.5)
            if not selector.get_map():  # both streams closed: wait for the exit
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            for key, _ in selector.select(wait):
                if key.fd != stdin:
                    chunk = os.read(key.fd, _CHUNK)
                    if chunk:
                        streams[key.fd].add(chunk)
                    else:
                        selector.unregister(key.fd)
                    continue
                try:
                    pending = pending[os.write(stdin, pending[:_CHUNK]) :]
                except BlockingIOError:
                    continue
                except BrokenPipeError:  # it stopped reading: whether that is fine, its exit says
                    pending = pending[:0]
                if not pending:
                    selector.unregister(stdin)
                    proc.stdin.close()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        stream.close()
    return killed


class Exec:
    material_first = False  # see base.Platform
    polls = False

    def measure(self, post: Post, account: Account, state_dir: Path) -> Measure | None:
        return fit.max_length(account)

    def check(self, post: Post, account: Account, spool_root: Path) -> list[Issue]:
        return fit.issues(post, account, fit.max_length(account), fit.describe_max_length(account))

    def test(self, account: Account, state_dir: Path) -> dict[str, Any]:
        import shutil

        command = list(account.options["command"])
        found = shutil.which(command[0])
        if found is None:
            from ..errors import ConfigError

            raise ConfigError(
                f"account {account.name}: command {command[0]!r} not found",
                f"fix `command` in [accounts.{account.name}]",
            )
        return {"account": account.name, "platform": "exec", "command": found}

    def send(self, job: Job) -> Outcome:
        command = list(job.account.options["command"])
        # Other accounts' secrets (PLURSPOOL_<ACCOUNT>_TOKEN...) are none of the command's business.
        env = {k: v for k, v in os.environ.items() if not _SECRET_VAR.match(k)}
        env.update(
            PLURSPOOL_ID=job.post_id,
            PLURSPOOL_ACCOUNT=job.account.name,
            PLURSPOOL_IDEMPOTENCY_KEY=job.idempotency_key,
        )
        timeout = job.account.options["timeout"].total_seconds()
        data = json.dumps(payload(job), ensure_ascii=False).encode()
        try:
            # A session of its own: a Ctrl-C meant for the daemon must not kill a send mid-way.
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return Outcome(
                "permanent",
                error=f"cannot run {command[0]!r}: {exc.strerror}; check `command` of "
                f"account {job.account.name}",
            )
        started = time.monotonic()
        out, err = _Kept(), _Kept()
        if _communicate(
            proc,
            data,
            out,
            err,
            lambda: min(timeout - (time.monotonic() - started), job.deadline()),
        ):
            if job.deadline() <= 0:
                return Outcome("temporary", error="command stopped: the sender is shutting down")
            return Outcome("temporary", error=f"command timed out after {timeout:.0f}s")
        if proc.returncode == 0:
            # Made printable first, so that a URL in colour is still a URL.
            first = out.head.decode("utf-8", "replace").strip().splitlines()
            ref = recorded(first[0]) if first else None
            if ref and ref.startswith(("https://", "http://")):
                return Outcome("sent", url=ref)
            return Outcome("sent", remote_id=ref or None)
        detail = _tail(err.tail) or _tail(out.tail) or "no output"
        if proc.returncode == EX_TEMPFAIL:
            return Outcome("temporary", error=f"command exited 75 (temporary failure): {detail}")
        how = (
            f"killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exited {proc.returncode}"
        )
        return Outcome("permanent", error=f"command {how}: {detail}")


PLATFORM = Exec()
