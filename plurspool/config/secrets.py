"""Secrets, fetched only when a sender needs one: from an account's `*_cmd`, its `*_file`, or the
environment, and never shown.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..platforms.options import SECRET_KINDS

SECRET_CMD_TIMEOUT = 30.0


def read_secret(
    account: str, options: Mapping[str, Any], what: str, env: Mapping[str, str] | None
) -> str | None:
    """The secret `what` (token, password, key) of `account`, whose validated keys are
    `options`: `<what>_cmd`, `<what>_file`, env, or None."""
    if what not in SECRET_KINDS.values():
        raise ValueError(f"unknown secret kind {what!r}")
    environ = os.environ if env is None else env
    cmd = options.get(f"{what}_cmd")
    if cmd is not None:
        key = (account, what, cmd)
        if key not in _FROM_COMMANDS:
            _FROM_COMMANDS[key] = _secret_from_command(account, f"{what}_cmd", cmd, env)
        return _FROM_COMMANDS[key]
    path = options.get(f"{what}_file")
    if path is not None:
        return _secret_from_file(account, f"{what}_file", Path(path))
    value = environ.get(secret_env_var(account, what))
    return value if value else None


# What each `*_cmd` said, kept for the rest of a sender's pass: 1,000 posts due at once run
# `pass show ...` once, not 1,000 times. `forget_secrets` (called at the end of every pass)
# drops them; nothing else keeps a secret.
_FROM_COMMANDS: dict[tuple[str, str, str], str] = {}


def forget_secrets() -> None:
    _FROM_COMMANDS.clear()


def secret_env_var(account: str, what: str) -> str:
    """The environment variable holding an account's secret: PLURSPOOL_<ACCOUNT>_<WHAT>."""
    return "PLURSPOOL_" + re.sub(r"[^A-Za-z0-9]", "_", account).upper() + "_" + what.upper()


def _secret_from_command(account: str, key: str, cmd: str, env: Mapping[str, str] | None) -> str:
    """Run `cmd` through sh -c; its first output line is the secret. Its output is never shown."""
    import subprocess

    name = f"accounts.{account}.{key}"
    hint = f"run the command in {name} yourself to see what it says"
    try:
        proc = subprocess.Popen(
            ["sh", "-c", cmd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,  # captured and dropped: it might echo the secret
            env=None if env is None else dict(env),
            start_new_session=True,  # so that a timeout can kill the whole group
        )
    except OSError as e:
        raise ConfigError(f"{name}: cannot run sh: {e.strerror}", hint) from None
    try:
        out, _ = proc.communicate(timeout=SECRET_CMD_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ConfigError(
            f"{name}: the command did not finish within {SECRET_CMD_TIMEOUT:g} s", hint
        ) from None
    if proc.returncode != 0:
        raise ConfigError(f"{name}: the command failed (exit status {proc.returncode})", hint)
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: the command's output is not UTF-8 text", hint) from None
    lines = text.splitlines()
    secret = lines[0] if lines else ""
    if not secret:
        raise ConfigError(f"{name}: the command printed nothing", hint)
    return secret


def _secret_from_file(account: str, key: str, path: Path) -> str:
    """Read a secret file, refusing one that others could read."""
    name = f"accounts.{account}.{key}"
    try:
        # O_NONBLOCK: a FIFO planted there must not hang us; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"{name}: {path} does not exist", "create it, mode 0600") from None
    except OSError as e:
        raise ConfigError(f"{name}: cannot open {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{name}: {path} is not a regular file")
        if st.st_mode & 0o077:
            raise ConfigError(
                f"{name}: {path} is open to group or others (mode {stat.S_IMODE(st.st_mode):04o})",
                f"chmod 600 {path}",
            )
        if st.st_uid != os.getuid():
            raise ConfigError(f"{name}: {path} is not owned by you", f"chown $USER {path}")
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: {path} is not UTF-8 text") from None
    lines = text.splitlines()
    secret = lines[0].strip() if lines else ""
    if not secret:
        raise ConfigError(f"{name}: {path} is empty", f"write the secret into {path}")
    return secret
