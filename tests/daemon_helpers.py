"""Helpers for testing the real daemon: a sandbox (isolated HOME/XDG, spool, config, fake exec
accounts), `plurspool send` as a subprocess with its stderr collected line by line, and waiting for
conditions with deadlines instead of sleeping.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from plurspool.app import App
from plurspool.config import load
from plurspool.ledger import Delivery
from plurspool.log import Log
from plurspool.post import Post
from plurspool.sender import PassResult, Sender
from tests.helpers import BIN, Run, ids_in, make_env, read_post, run_cli, state_of

FAKE_EXEC = Path(__file__).resolve().parent / "fake_exec.py"

T = TypeVar("T")


def wait_for(
    cond: Callable[[], T | None], timeout: float, what: str = "condition", every: float = 0.01
) -> T:
    """Poll `cond` until it returns something truthy; fail the test after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def text_of(path: Path) -> str:
    """A file's text, or "" while it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def toml_str(s: str) -> str:
    return json.dumps(s)


@dataclass
class Sandbox:
    """One isolated plurspool world: environment, spool, config and exec accounts."""

    base: Path
    env: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # name -> extra TOML lines
    daemon_keys: dict[str, Any] = field(default_factory=dict)
    rate_limits: dict[str, str] = field(default_factory=dict)
    top: str = ""  # top-level TOML keys, written before any table
    extra: str = ""  # extra TOML appended to the config
    default_platforms: list[str] = field(default_factory=list)
    procs: list[DaemonProc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = make_env(self.base / "env")
        self.env["PLURSPOOL_SPOOL"] = str(self.spool)
        self.env["PLURSPOOL_CONFIG"] = str(self.config_path)
        self.env["PYTHONFAULTHANDLER"] = "1"
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.pop("JOURNAL_STREAM", None)
        self.spool.mkdir(mode=0o700, parents=True, exist_ok=True)
        for d in ("tmp", "new", "drafts", "scheduled", "sent", "failed"):
            (self.spool / d).mkdir(mode=0o700, exist_ok=True)

    # -- paths -----------------------------------------------------------------------------

    @property
    def spool(self) -> Path:
        return self.base / "spool"

    @property
    def config_path(self) -> Path:
        return self.base / "config.toml"

    @property
    def state_home(self) -> Path:
        return Path(self.env["XDG_STATE_HOME"]) / "plurspool"

    def state_dir(self) -> Path:
        """The per-spool state directory (ledger, lock, heartbeat)."""
        from plurspool.app import spool_key

        return self.state_home / "spools" / spool_key(self.spool.resolve())

    def record_path(self, account: str) -> Path:
        return self.base / f"{account}.record.jsonl"

    def control_path(self, account: str) -> Path:
        return self.base / f"{account}.control.json"

    # -- config ----------------------------------------------------------------------------

    def exec_account(self, name: str, default: bool = True, **control: Any) -> None:
        """Configure an exec account running fake_exec.py with its own record/control files."""
        argv = [sys.executable, str(FAKE_EXEC), str(self.record_path(name))]
        argv.append(str(self.control_path(name)))
        self.accounts[name] = (
            f'platform = "exec"\ncommand = [{", ".join(toml_str(a) for a in argv)}]\n'
        )
        if default:
            self.default_platforms.append(name)
        self.control(name, **control)

    def control(self, name: str, **control: Any) -> None:
        """Change how an exec account's command behaves from its next invocation on."""
        tmp = self.control_path(name).with_suffix(".tmp")
        tmp.write_text(json.dumps(control), encoding="utf-8")
        os.replace(tmp, self.control_path(name))

    def write_config(self) -> None:
        lines = [self.top] if self.top else []
        if self.default_platforms:
            lines.append(
                "default_platforms = ["
                + ", ".join(toml_str(a) for a in self.default_platforms)
                + "]"
            )
        lines.append("[daemon]")
        for k, v in self.daemon_keys.items():
            lines.append(f"{k} = {json.dumps(v)}")
        lines.append("[rate_limits]")
        for k, v in self.rate_limits.items():
            lines.append(f"{k} = {toml_str(v)}")
        for name, body in self.accounts.items():
            lines.append(f"[accounts.{name}]")
            lines.append(body)
        lines.append(self.extra)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.config_path)

    # -- the spool -------------------------------------------------------------------------

    def records(self, account: str) -> list[dict[str, Any]]:
        """What an exec account's command was run with, one dict per invocation."""
        try:
            text = self.record_path(account).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        # split("\n"), not splitlines(): a post may hold U+0085 or U+2028.
        return [json.loads(line) for line in text.split("\n") if line.endswith("}")]

    @contextlib.contextmanager
    def app(self) -> Iterator[App]:
        """The box's spool wired as the CLI wires it, under the config as written now."""
        app = App(load(self.config_path, env=self.env))
        try:
            yield app
        finally:
            app.close()

    def deliveries(self, post_id: str) -> dict[str, Delivery]:
        """This host's ledger rows for `post_id` by account, read as `show` reads them ({} while
        there is no ledger)."""
        with self.app() as app:
            return app.views.deliveries(post_id)

    def post(self, state: str, post_id: str) -> Post:
        """The post `post_id` in `state`, as plurspool reads it."""
        return read_post(self.spool / state / f"{post_id}.md")

    def ids(self, state: str) -> set[str]:
        return ids_in(self.spool, state)

    def where(self, post_id: str) -> list[str]:
        """Every state dir that holds post_id.md (a healthy spool has exactly one)."""
        return state_of(self.spool, post_id)

    def is_in(self, post_id: str, state: str) -> bool:
        """Whether post_id is in `state` and nowhere else."""
        return self.where(post_id) == [state]

    def deliver(self, state: str, post_id: str, text: str) -> Path:
        """Write a post in tmp/, then rename it into `state` (as a Maildir writer does)."""
        tmp = self.spool / "tmp" / f"{post_id}.md"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        dest = self.spool / state / f"{post_id}.md"
        os.rename(tmp, dest)
        return dest

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> Run:
        return run_cli(list(args), {**self.env, **(env or {})}, timeout=timeout)

    def start(self, *args: str, env: dict[str, str] | None = None) -> DaemonProc:
        """`plurspool send ARGS` as a subprocess (killed at the end of the test if still up)."""
        proc = DaemonProc.start(["send", *args], {**self.env, **(env or {})})
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            proc.kill()


def post_text(body: str, *, schedule: str | None = None, platforms: list[str] | None = None) -> str:
    front = []
    if schedule is not None:
        front.append(f"schedule: {schedule}")
    if platforms is not None:
        front.append(f"platforms: [{', '.join(platforms)}]")
    return "---\n" + "\n".join(front) + "\n---\n" + body + "\n"


def iso(t: float) -> str:
    """An epoch time as ISO 8601 UTC with whole seconds (as post files hold them)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class DaemonProc:
    """A running `plurspool send` with its stderr lines collected as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[tuple[float, str]] = []  # (time seen, line)
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, args: list[str], env: dict[str, str]) -> DaemonProc:
        proc = subprocess.Popen(
            [str(BIN / "plurspool"), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        return cls(proc)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append((time.time(), line.rstrip("\n")))
                self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> list[str]:
        with self._cond:
            return [line for _, line in self.lines]

    def text(self) -> str:
        return "\n".join(self.log())

    def events(self, name: str) -> list[str]:
        """Text-format lines of event `name` (the word after the timestamp and level)."""
        return [line for line in self.log() if name in event_words(line)[:1]]

    def until(self, cond: Callable[[], T | None], timeout: float, what: str = "condition") -> T:
        """`wait_for`, with this daemon's log in the failure message."""
        try:
            return wait_for(cond, timeout, what)
        except AssertionError as exc:
            code = self.proc.poll()
            raise AssertionError(f"{exc} (daemon exit: {code}); log:\n{self.text()}") from None

    def wait_line(self, pred: Callable[[str], bool], timeout: float = 20.0, what: str = "") -> str:
        """The first log line satisfying `pred`, waiting for it to appear."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, line in self.lines:
                    if pred(line):
                        return line
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no log line {what} within {timeout:g}s; log:\n" + self._text_locked()
                    )
                self._cond.wait(min(left, 0.1))

    def wait_event(self, name: str, *fields: str, timeout: float = 20.0) -> str:
        """Wait for an event line naming `name` that contains every string in `fields`."""
        return self.wait_line(
            lambda line: event_words(line)[:1] == [name] and all(f in line for f in fields),
            timeout,
            f"{name} {' '.join(fields)}",
        )

    def _text_locked(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; the exit status. A daemon that hangs is made to dump its threads."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: tracebacks on stderr
            self.wait(10)
            raise AssertionError(
                f"the daemon did not stop within {timeout:g}s after SIGTERM; log:\n" + self.text()
            ) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)


def event_words(line: str) -> list[str]:
    """A text log line without its timestamp and level: [event, field=value, ...]."""
    words = line.split(" ")
    while words and (words[0][:4].isdigit() or words[0] in ("WARNING", "ERROR")):
        words = words[1:]
    return words


@dataclass
class World:
    """A spool whose sender runs in this process, with a clock the test moves."""

    box: Sandbox
    app: App
    sender: Sender
    clock: list[datetime]
    log: io.StringIO

    @property
    def now(self) -> float:
        return self.clock[0].timestamp()

    def tick(self, seconds: float) -> None:
        self.clock[0] += timedelta(seconds=seconds)

    def run(self) -> PassResult:
        return self.sender.run_pass()

    def reload(self) -> None:
        self.box.write_config()
        self.app.config = load(self.box.config_path, env=self.box.env)

    def row(self, post_id: str, account: str) -> Delivery:
        return self.app.ledger.deliveries(post_id)[account]


def in_process(box: Sandbox, *, deadline: float = 3600.0) -> World:
    """A World for `box` as it is configured now; its clock starts at the current second."""
    box.write_config()
    clock = [datetime.now(UTC).replace(microsecond=0)]
    app = App(load(box.config_path, env=box.env), clock=lambda: clock[0])
    app.spool.ensure()
    stream = io.StringIO()
    sender = Sender(app, Log(stream=stream), deadline=lambda: deadline)
    return World(box, app, sender, clock, stream)
