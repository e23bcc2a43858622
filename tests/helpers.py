"""Shared test helpers: an isolated environment, two ways to run the CLI, git, and reading a
post file the way plurspool reads it.

`invoke` runs the CLI in-process through click's CliRunner (fast; stdout and stderr apart);
`run_cli` runs the installed `plurspool` (or an alias) in a real subprocess, for exit codes,
imports and terminal behaviour exactly as a user sees them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from plurspool.cli import cli
from plurspool.errors import PostError
from plurspool.post import Post, parse

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def make_env(base: Path) -> dict[str, str]:
    """An environment whose HOME and XDG dirs all live under `base` (created), in UTC."""
    home = base / "home"
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_STATE_HOME": str(base / "state"),
        "XDG_DATA_HOME": str(base / "data"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }
    for key in ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    return env


def spool_root(env: dict[str, str]) -> Path:
    """Where the spool of `env` is (the default location, unless PLURSPOOL_SPOOL is set)."""
    if "PLURSPOOL_SPOOL" in env:
        return Path(env["PLURSPOOL_SPOOL"])
    return Path(env["XDG_DATA_HOME"]) / "plurspool" / "spool"


def state_home(env: dict[str, str]) -> Path:
    """plurspool's per-host state directory for `env`."""
    return Path(env["XDG_STATE_HOME"]) / "plurspool"


def write_config(env: dict[str, str], text: str) -> Path:
    """Write the config file where `env` makes plurspool look for it."""
    path = Path(env["XDG_CONFIG_HOME"]) / "plurspool" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Run:
    """What a CLI run did: exit code, stdout and stderr, apart."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def invoke(args: list[str], env: dict[str, str], input: str | None = None) -> Run:
    """Run the CLI in this process with exactly `env` as the environment."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        result = CliRunner().invoke(cli, args, input=input, catch_exceptions=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Run(result.exit_code, result.stdout, result.stderr)


def run_cli(
    args: list[str],
    env: dict[str, str],
    input: str | None = None,
    *,
    prog: str = "plurspool",
    timeout: float = 60.0,
) -> Run:
    """Run an installed entry point (plurspool, plur-post...) in a real subprocess."""
    proc = subprocess.run(
        [str(BIN / prog), *args],
        env=env,
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def read_post(path: Path) -> Post:
    """The post file at `path` as plurspool reads it (`plurspool.post.parse`): its values,
    `results` and `attempts` as the sender and `show` see them. Raises PostError if invalid."""
    return parse(path.read_bytes())


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run git in `cwd` as a user with no git configuration would: a fixed identity, unsigned
    commits, `main` as the first branch, conflicts marked in the plain merge style.

    `env`: the environment to run in (a sandbox's), else a bare one; the installed `plurspool`
    comes first on PATH, for the pre-commit hook. With `check`, a failure fails the test.
    """
    base = env if env is not None else {"HOME": str(cwd), "LANG": "C.UTF-8"}
    path = base.get("PATH", os.environ.get("PATH", "/usr/bin:/bin"))
    settings = ("init.defaultBranch=main", "commit.gpgsign=false", "merge.conflictStyle=merge")
    proc = subprocess.run(
        ["git", *(word for s in settings for word in ("-c", s)), *args],
        cwd=cwd,
        env={
            **base,
            "PATH": f"{BIN}:{path}",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.invalid",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.invalid",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc


def state_of(root: Path, post_id: str) -> list[str]:
    """Every state dir of the spool at `root` that holds `post_id`.md."""
    from plurspool.spool import STATES

    return [s for s in STATES if (root / s / f"{post_id}.md").exists()]


def ids_in(root: Path, state: str) -> set[str]:
    """The post IDs in one state dir."""
    return {p.name[:-3] for p in (root / state).iterdir() if p.name.endswith(".md")}


@contextlib.contextmanager
def silent_tcp_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word: its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join(5)
        for c in held:
            c.close()
        srv.close()


def png(width: int = 3, height: int = 2) -> bytes:
    """A small valid RGB PNG (media for upload tests), made here rather than shipped."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80\x20\xc0" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def verify_nostr_event(event: dict[str, Any]) -> bool:
    """Whether a Nostr event's id matches its content and its signature is valid, as a relay
    checks it (NIP-01, BIP-340)."""
    from coincurve import PublicKeyXOnly

    from plurspool.platforms.nostr_proto import event_id

    try:
        eid = event_id(
            event["pubkey"], event["created_at"], event["kind"], event["tags"], event["content"]
        )
        if eid != event["id"]:
            return False
        return bool(
            PublicKeyXOnly(bytes.fromhex(event["pubkey"])).verify(
                bytes.fromhex(event["sig"]), bytes.fromhex(eid)
            )
        )
    except (KeyError, TypeError, ValueError):
        return False


def parse_error(data: bytes) -> PostError:
    """The PostError the strict reader raises for `data` (the test fails if it reads it)."""
    with pytest.raises(PostError) as caught:
        parse(data)
    return caught.value


def check_draft(env: dict[str, str], name: str, text: str) -> tuple[int, list[str]]:
    """`plurspool check` of `text` written as drafts/NAME.md: its exit code and its lines, each
    without the file's path."""
    path = spool_root(env) / "drafts" / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    run = invoke(["check", str(path)], env)
    prefix = f"{path}: "
    return run.code, [line.removeprefix(prefix) for line in run.out.splitlines()]
