"""`plurspool daemon ...`: pidfile mode, systemd mode through recording stubs, the units."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
PLURSPOOL = str(BIN / "plurspool")
ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TZ": "UTC",
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


def _run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLURSPOOL, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _wait_for(cond: object, timeout: float = 15.0) -> None:
    assert callable(cond)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.slow
@pytest.mark.realtime
def test_pidfile_mode_start_status_health_logs_stop(tmp_path: Path) -> None:
    env = _env(tmp_path, PLURSPOOL_SERVICE_MODE="pidfile")
    started = _run(env, "daemon", "start")
    try:
        assert started.returncode == 0, started.stderr
        assert "started (pid" in started.stderr
        status = _run(env, "daemon", "status", "--json")
        assert status.returncode == 0, status.stderr
        st = json.loads(status.stdout)
        assert st["mode"] == "pidfile" and st["running"] is True and st["healthy"] is True
        pid = st["pid"]
        assert isinstance(pid, int) and Path(f"/proc/{pid}").exists()
        assert _run(env, "daemon", "health").returncode == 0
        # A second start does not start a second daemon.
        again = _run(env, "daemon", "start")
        assert again.returncode == 0 and "already running" in again.stderr
        # The daemon really sends: a post due in a second reaches the outbox.
        posted = _run(env, "post", "-s", "1s", "through the detached daemon")
        assert posted.returncode == 0, posted.stderr
        outbox = tmp_path / "state" / "plurspool" / "outbox.jsonl"
        _wait_for(lambda: outbox.exists() and "through the detached" in outbox.read_text())
        logs = _run(env, "daemon", "logs", "-n", "20")
        assert logs.returncode == 0
        assert "started pid=" in logs.stdout and "sent id=" in logs.stdout
    finally:
        stopped = _run(env, "daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped (pid" in stopped.stderr
    assert not _alive(pid)
    status = _run(env, "daemon", "status", "--json")
    assert status.returncode == 1
    assert json.loads(status.stdout)["running"] is False
    health = _run(env, "daemon", "health")
    assert health.returncode == 1 and "no daemon is running" in health.stdout
    assert "not running" in _run(env, "daemon", "stop").stderr


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(") ", 1)[1][0] != "Z"


def _stubs(tmp_path: Path) -> Path:
    """systemctl and journalctl stand-ins that record their argv, one JSON array a line."""
    d = tmp_path / "stubs"
    d.mkdir()
    record = tmp_path / "calls.jsonl"
    for name in ("systemctl", "journalctl"):
        stub = d / name
        stub.write_text(
            f"#!{sys.executable}\n"
            "import json, sys\n"
            f"open({str(record)!r}, 'a').write(json.dumps(sys.argv) + '\\n')\n"
            "if sys.argv[1:3] == ['--user', 'show']:\n"
            "    print('MainPID=4242'); print('ActiveState=active')\n"
        )
        stub.chmod(0o755)
    return d


def _calls(tmp_path: Path) -> list[list[str]]:
    lines = (tmp_path / "calls.jsonl").read_text().splitlines()
    return [[Path(argv[0]).name, *argv[1:]] for argv in map(json.loads, lines)]


@pytest.mark.slow
def test_systemd_mode_drives_systemctl_and_journalctl(tmp_path: Path) -> None:
    stubs = _stubs(tmp_path)
    env = _env(tmp_path, PLURSPOOL_SERVICE_MODE="systemd")
    env["PATH"] = f"{stubs}:{env['PATH']}"
    installed = _run(env, "daemon", "install")
    assert installed.returncode == 0, installed.stderr
    unit = tmp_path / "config" / "systemd" / "user" / "plurspool.service"
    text = unit.read_text()
    assert f"ExecStart={PLURSPOOL} send" in text
    assert "@" not in text.split("[Service]", 1)[1].split("SystemCallFilter")[0]
    assert "Type=notify" in text and "WatchdogSec=" in text
    for args in (["start"], ["stop"], ["restart"], ["logs", "-n", "7"], ["status"]):
        r = _run(env, "daemon", *args)
        assert r.returncode == 0, (args, r.stderr)
    _run(env, "daemon", "logs", "-f")
    r = _run(env, "daemon", "uninstall")
    assert r.returncode == 0, r.stderr
    assert not unit.exists()
    assert _calls(tmp_path) == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "plurspool.service"],
        ["systemctl", "--user", "start", "plurspool.service"],
        ["systemctl", "--user", "stop", "plurspool.service"],
        ["systemctl", "--user", "stop", "plurspool.service"],
        ["systemctl", "--user", "start", "plurspool.service"],
        ["journalctl", "--user", "-u", "plurspool.service", "-n", "7", "--no-pager"],
        ["systemctl", "--user", "show", "plurspool.service", "-p", "MainPID", "-p", "ActiveState"],
        ["journalctl", "--user", "-u", "plurspool.service", "-n", "50", "--no-pager", "-f"],
        ["systemctl", "--user", "disable", "--now", "plurspool.service"],
        ["systemctl", "--user", "daemon-reload"],
    ]


def test_install_ignores_a_relative_xdg_config_home_as_the_config_does(tmp_path: Path) -> None:
    # The XDG spec: a relative $XDG_CONFIG_HOME is invalid and ignored. The unit goes where the
    # config is read from, $HOME/.config, not under the current directory.
    stubs = _stubs(tmp_path)
    env = _env(tmp_path, PLURSPOOL_SERVICE_MODE="systemd", XDG_CONFIG_HOME="relative")
    env["PATH"] = f"{stubs}:{env['PATH']}"
    home_config = tmp_path / "home" / ".config"
    spool = tmp_path / "the-configured-spool"
    (home_config / "plurspool").mkdir(parents=True)
    (home_config / "plurspool" / "config.toml").write_text(f'spool = "{spool}"\n')
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PLURSPOOL, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
        )

    installed = run("daemon", "install")
    assert installed.returncode == 0, installed.stderr
    unit = home_config / "systemd" / "user" / "plurspool.service"
    assert f"installed {unit}," in installed.stderr
    assert f"ReadWritePaths={spool} " in unit.read_text()  # the config of the same base
    assert list(cwd.iterdir()) == []
    removed = run("daemon", "uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not unit.exists() and list(cwd.iterdir()) == []


def test_with_autocommit_the_unit_may_write_the_repository_above_the_spool(
    tmp_path: Path,
) -> None:
    stubs = _stubs(tmp_path)
    env = _env(tmp_path, PLURSPOOL_SERVICE_MODE="systemd")
    env["PATH"] = f"{stubs}:{env['PATH']}"
    repo = tmp_path / "repo"
    spool = repo / "posts"
    spool.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    config = tmp_path / "config" / "plurspool" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'spool = "{spool}"\n')
    unit = tmp_path / "config" / "systemd" / "user" / "plurspool.service"
    assert _run(env, "daemon", "install").returncode == 0
    assert f"ReadWritePaths={spool} {tmp_path / 'state'}" in unit.read_text()
    config.write_text(f'spool = "{spool}"\n[git]\nautocommit = true\n')
    assert _run(env, "daemon", "install").returncode == 0
    assert f"ReadWritePaths={spool} {repo} {tmp_path / 'state'}" in unit.read_text()


def test_the_unit_may_write_the_calendar_feed(tmp_path: Path) -> None:
    # ProtectHome=read-only: the daemon writes only where ReadWritePaths lets it.
    stubs = _stubs(tmp_path)
    env = _env(tmp_path, PLURSPOOL_SERVICE_MODE="systemd")
    env["PATH"] = f"{stubs}:{env['PATH']}"
    config = tmp_path / "config" / "plurspool" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[calendar]\nics = "~/public/queue.ics"\n')
    assert _run(env, "daemon", "install").returncode == 0
    text = (tmp_path / "config" / "systemd" / "user" / "plurspool.service").read_text()
    (line,) = [x for x in text.splitlines() if x.startswith("ReadWritePaths=")]
    assert line.endswith(f" {tmp_path / 'state' / 'plurspool'} -{tmp_path / 'home' / 'public'}")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_shipped_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """The units as `daemon install` fills them in, and the timer pairs, verify cleanly."""
    stubs = _stubs(tmp_path)
    env = _env(tmp_path, PLURSPOOL_SERVICE_MODE="systemd")
    env["PATH"] = f"{stubs}:{env['PATH']}"
    (tmp_path / "state").mkdir()
    assert _run(env, "daemon", "install").returncode == 0
    units = tmp_path / "units"
    units.mkdir()
    shutil.copy(tmp_path / "config" / "systemd" / "user" / "plurspool.service", units)
    pairs = ("plurspool-send", "plurspool-pull")  # send --once; git pull ([git], plurspool(1))
    for name in (f"{p}.{kind}" for p in pairs for kind in ("service", "timer")):
        text = (ROOT / "contrib" / "systemd" / name).read_text()
        text = text.replace("@PLURSPOOL@", PLURSPOOL)
        text = text.replace("@SPOOL@", str(tmp_path / "data")).replace(
            "@STATE@", str(tmp_path / "state")
        )
        (units / name).write_text(text)
    r = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in units.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts_generate(shell: str, tmp_path: Path) -> None:
    env = _env(tmp_path, _PLURSPOOL_COMPLETE=f"{shell}_source")
    r = subprocess.run([PLURSPOOL], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "_PLURSPOOL_COMPLETE" in r.stdout
    assert {"bash": "complete ", "zsh": "compdef", "fish": "complete "}[shell] in r.stdout


@pytest.mark.parametrize(
    "broken",
    ['[daemon]\nshutdown_timout = "5s"\n', 'spool = "unterminated\n'],
    ids=["typo", "invalid-toml"],
)
@pytest.mark.slow
def test_daemon_commands_work_while_the_config_is_broken(tmp_path: Path, broken: str) -> None:
    """The running daemon keeps its config; stop/status/logs/health find it from the state
    directory (its spool came from the config), restart refuses before stopping anything."""
    env = _env(tmp_path, PLURSPOOL_SERVICE_MODE="pidfile")
    config = tmp_path / "config" / "plurspool" / "config.toml"
    config.parent.mkdir(parents=True)
    spool = tmp_path / "my spool"
    config.write_text(f'spool = "{spool}"\n')
    started = _run(env, "daemon", "start")
    assert started.returncode == 0, started.stderr
    pid = json.loads(_run(env, "daemon", "status", "--json").stdout)["pid"]
    try:
        config.write_text(f'spool = "{spool}"\n{broken}')
        assert _run(env, "list").returncode == 1  # commands that need the config refuse

        def warned(r: subprocess.CompletedProcess[str]) -> str:
            """The one warning line naming the config; what else stderr said."""
            first, _, rest = r.stderr.partition("\n")
            assert first.startswith(f"plurspool: warning: config ignored: {config}:"), r.stderr
            assert f"acting on the daemon of {spool}" in first
            assert "Traceback" not in r.stderr
            return rest

        status = _run(env, "daemon", "status", "--json")
        assert status.returncode == 0 and warned(status) == ""
        st = json.loads(status.stdout)
        assert (st["mode"], st["running"], st["pid"], st["healthy"]) == ("pidfile", True, pid, True)
        health = _run(env, "daemon", "health")
        assert health.returncode == 0 and health.stdout.startswith("healthy: ")
        warned(health)
        logs = _run(env, "daemon", "logs", "-n", "5")
        assert logs.returncode == 0 and f"started pid={pid}" in logs.stdout
        warned(logs)
        # restart would stop a daemon that cannot start again: refused, nothing stopped.
        restart = _run(env, "daemon", "restart")
        assert restart.returncode == 1
        assert restart.stderr.startswith(f"plurspool: {config}")
        assert "nothing was stopped" in restart.stderr and "Traceback" not in restart.stderr
        assert _alive(pid)
        assert _run(env, "daemon", "start").returncode == 1  # start needs the config, too
        stopped = _run(env, "daemon", "stop")
        assert stopped.returncode == 0
        assert warned(stopped) == f"stopped (pid {pid})\n"
        assert not _alive(pid)
        status = _run(env, "daemon", "status", "--json")
        assert status.returncode == 1 and json.loads(status.stdout)["running"] is False
        warned(status)
    finally:
        if _alive(pid):
            os.kill(pid, 15)


def test_without_a_record_the_spool_is_the_option_the_variable_or_the_default(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path, PLURSPOOL_SERVICE_MODE="pidfile")
    config = tmp_path / "config" / "plurspool" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("no = [toml\n")
    default = tmp_path / "data" / "plurspool" / "spool"
    other = tmp_path / "other"
    for extra_env, args, spool in (
        ({}, [], default),
        ({"PLURSPOOL_SPOOL": str(other)}, [], other),
        ({}, ["--spool", str(other)], other),
    ):
        r = _run({**env, **extra_env}, *args, "daemon", "status")
        assert r.returncode == 1 and "running: no" in r.stdout, r.stderr
        assert r.stderr.startswith(f"plurspool: warning: config ignored: {config}:1:")
        assert r.stderr.count("\n") == 1, r.stderr  # one line
        assert r.stderr.endswith(f"; acting on the daemon of {spool}\n"), r.stderr
    assert not default.exists() and not other.exists()  # inspecting creates no spool
