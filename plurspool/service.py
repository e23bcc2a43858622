"""`plurspool daemon ...`: run the sender as a service.

Two modes, chosen per machine:
- systemd: a user manager is running (`systemctl --user` answers). The unit from
  contrib/systemd/plurspool.service is installed with paths filled in; start/stop/status go through
  `systemctl --user`, logs through `journalctl --user -u plurspool`.
- pidfile: no user manager (containers, WSL, macOS, PID 1 not systemd). The daemon runs detached
  (`python -m plurspool send`), with a pidfile and a log file in the spool's state directory.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .app import App
from .daemon import HEALTH_STALE, health, heartbeat_path, read_record, recorded_spool
from .errors import DaemonError
from .paths import config_file, config_home, state_dir

UNIT = "plurspool.service"
_UNIT_TEMPLATE = Path(__file__).resolve().parent / "data" / "plurspool.service"


@dataclass(frozen=True)
class Status:
    mode: str  # "systemd" or "pidfile"
    running: bool
    pid: int | None
    healthy: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "running": self.running,
            "pid": self.pid,
            "healthy": self.healthy,
            "detail": self.detail,
        }


def systemd_available() -> bool:
    """True when a systemd user manager can be talked to."""
    if os.environ.get("PLURSPOOL_SERVICE_MODE") == "pidfile":
        return False
    if os.environ.get("PLURSPOOL_SERVICE_MODE") == "systemd":
        return True
    if shutil.which("systemctl") is None or not Path("/run/systemd/system").is_dir():
        return False
    try:
        r = subprocess.run(
            ["systemctl", "--user", "show-environment"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def app_without_config(spool: str | None, config: Path | None) -> App:
    """The app of the daemon to stop or inspect while the config cannot be loaded.

    Its spool: --spool or $PLURSPOOL_SPOOL, else the one that the daemon last started with
    this config file served (its record in the state directory), else the default spool.
    """
    from .config import defaults

    env = os.environ
    if spool is None and not env.get("PLURSPOOL_SPOOL"):
        found = recorded_spool(state_dir(env), config_file(config, env).resolve())
        spool = str(found) if found is not None else None
    return App(defaults(spool=spool))


class Service:
    """Start, stop and inspect the daemon of one spool."""

    def __init__(self, app: App, global_args: Sequence[str]) -> None:
        self.app = app
        self.global_args = list(global_args)  # --spool/--config as the user gave them
        self.mode = "systemd" if systemd_available() else "pidfile"

    # -- paths -------------------------------------------------------------------------------

    @property
    def pidfile(self) -> Path:
        return self.app.state_dir / "daemon.pid"

    @property
    def logfile(self) -> Path:
        return self.app.state_dir / "daemon.log"

    def unit_path(self) -> Path:
        return config_home(os.environ) / "systemd" / "user" / UNIT

    def command(self) -> list[str]:
        """How to run this plurspool's daemon: the installed executable, else the module."""
        exe = shutil.which("plurspool")
        base = [exe] if exe else [sys.executable, "-m", "plurspool"]
        return [*base, *self.global_args]

    # -- systemd -----------------------------------------------------------------------------

    def _systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            r = subprocess.run(
                ["systemctl", "--user", *args], capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DaemonError(f"systemctl --user {' '.join(args)} failed: {exc}") from None
        if check and r.returncode != 0:
            raise DaemonError(
                f"systemctl --user {' '.join(args)} failed: {r.stderr.strip() or r.returncode}",
                "see `plurspool daemon logs`",
            )
        return r

    def unit_text(self) -> str:
        template = _UNIT_TEMPLATE.read_text()
        state = str(self.app.config.state_dir)
        feed = self.app.config.calendar_ics  # [calendar] ics: its directory, if it exists then
        writable = f"{state} -{feed.parent}" if feed is not None else state
        return (
            template.replace("@PLURSPOOL@", shlex.join(self.command()))
            .replace("@SPOOL@", " ".join(self._writable()))
            .replace("@STATE@", writable)
        )

    def _writable(self) -> list[str]:
        """The spool, and with [git] autocommit the repository it is below (git writes its
        objects and refs there, and a pull its other files; plurspool(1), "Reviewing and
        syncing with git")."""
        paths = [str(self.app.root)]
        if self.app.config.git.autocommit:
            from .gitsync import find_repo

            repo = find_repo(self.app.root)
            if repo is not None and repo.prefix:
                paths.append(str(repo.top))
            if repo is not None and not repo.git_dir.is_relative_to(repo.top):
                paths.append(str(repo.git_dir))  # a worktree's, or a separate git dir
        return paths

    def install(self) -> str:
        if self.mode != "systemd":
            return (
                "no systemd user manager here: nothing to install; "
                "`plurspool daemon start` runs the daemon detached (pidfile mode)"
            )
        path = self.unit_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.unit_text())
        self._systemctl("daemon-reload")
        self._systemctl("enable", "--now", UNIT)
        return f"installed {path}, enabled and started {UNIT}"

    def uninstall(self) -> str:
        if self.mode != "systemd":
            self.stop()
            return "no systemd user manager here: stopped the detached daemon, if any"
        self._systemctl("disable", "--now", UNIT, check=False)
        path = self.unit_path()
        if path.exists():
            path.unlink()
        self._systemctl("daemon-reload")
        return f"disabled {UNIT} and removed {path}"

    # -- start / stop ------------------------------------------------------------------------

    def running_pid(self) -> int | None:
        """The detached daemon's PID if it is alive and holds the spool lock."""
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return None
        return pid if self.app.locks.daemon_running() else None

    def daemon_pid(self) -> int | None:
        """The running daemon's PID: from our pidfile, else from its lock on the spool (a
        daemon with another state directory, or not started by `daemon start`)."""
        holder = self.app.locks.lock_holder()
        return self.running_pid() or (holder[0] if holder else None)

    def start(self, wait: float = 15.0) -> str:
        if self.mode == "systemd":
            self._systemctl("start", UNIT)
            return f"started {UNIT}"
        if self.app.locks.daemon_running():
            pid = self.daemon_pid()
            return f"already running{f' (pid {pid})' if pid else ''}"
        self.app.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        log = os.open(self.logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        started = time.time()
        try:
            proc = subprocess.Popen(
                [*self.command(), "send"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(log)
        self.pidfile.write_text(f"{proc.pid}\n")
        beat = heartbeat_path(self.app)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DaemonError(
                    f"the daemon exited at once with status {proc.returncode}",
                    f"see {self.logfile} (`plurspool daemon logs`)",
                )
            try:
                if beat.stat().st_mtime >= started - 1:
                    return f"started (pid {proc.pid}), logging to {self.logfile}"
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        return f"started (pid {proc.pid}) but no heartbeat yet; see {self.logfile}"

    def stop(self) -> str:
        if self.mode == "systemd":
            self._systemctl("stop", UNIT)
            return f"stopped {UNIT}"
        pid = self.running_pid()
        if pid is None:
            return "not running"
        os.kill(pid, signal.SIGTERM)
        # The daemon's own shutdown_timeout, which the config may no longer say.
        record = read_record(self.app)
        grace = record.get("shutdown_timeout") if record.get("pid") == pid else None
        if not isinstance(grace, int | float):
            grace = self.app.config.daemon.shutdown_timeout.total_seconds()
        timeout = grace + 10
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                self.pidfile.unlink(missing_ok=True)
                return f"stopped (pid {pid})"
            time.sleep(0.05)
        raise DaemonError(
            f"the daemon (pid {pid}) did not stop within {timeout:.0f}s",
            f"see {self.logfile}; `kill -9 {pid}` as a last resort (nothing is lost)",
        )

    def restart(self) -> str:
        stopped = self.stop()
        return f"{stopped}; {self.start()}"

    # -- inspecting --------------------------------------------------------------------------

    def status(self) -> Status:
        ok, detail = health(self.app)
        if self.mode == "systemd":
            r = self._systemctl("show", UNIT, "-p", "MainPID", "-p", "ActiveState", check=False)
            props = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
            pid = int(props.get("MainPID", "0") or 0) or None
            running = props.get("ActiveState") == "active"
            return Status("systemd", running, pid, ok, detail)
        running = self.app.locks.daemon_running()
        return Status("pidfile", running, self.daemon_pid() if running else None, ok, detail)

    def logs(self, follow: bool, lines: int = 50) -> Iterator[str]:
        if self.mode == "systemd":
            cmd = ["journalctl", "--user", "-u", UNIT, "-n", str(lines), "--no-pager"]
            if follow:
                cmd.append("-f")
            try:
                subprocess.run(cmd, check=False)
            except OSError as exc:
                raise DaemonError(f"cannot run journalctl: {exc.strerror}") from None
            return
        try:
            f = open(self.logfile, encoding="utf-8", errors="replace")  # noqa: SIM115
        except FileNotFoundError:
            raise DaemonError(
                f"no log file yet at {self.logfile}", "start the daemon: plurspool daemon start"
            ) from None
        with f:
            yield from f.readlines()[-lines:]
            while follow:
                line = f.readline()
                if line:
                    yield line
                else:
                    time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


__all__ = ["HEALTH_STALE", "Service", "Status", "app_without_config", "systemd_available"]
