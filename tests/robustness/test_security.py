"""Security (plurspool(5) THE SPOOL and CRASHES, plurspool-config(5) SECRETS): what plurspool
refuses to read, and secrets that never leak.

- Posts that are symlinks or hard links to a secret, and FIFOs, sockets and devices in the spool,
  are never read (and never block the daemon); valid posts next to them still go out.
- A state directory that is a symlink keeps the daemon from starting.
- Media are opened beneath the spool root without following any symlink, so a file swapped for a
  link between the checks and the upload is refused, not read.
- Canary secrets (from `*_cmd`, `*_file` and the environment) of accounts whose sends fail in
  every way we can arrange never show up in a log line, an error file, a post, the ledger,
  command output or a repr; a secret file open to others is refused.
- The spool and the state directory are made 0700 under umask 022.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plurspool.config import Account, load
from plurspool.errors import SendError
from plurspool.platforms import bluesky, mastodon, mastodon_api
from plurspool.platforms.media import media_error, read_media
from plurspool.post import parse
from plurspool.spool import KEEP
from tests.daemon_helpers import DaemonProc, Sandbox, iso, post_text, toml_str
from tests.helpers import run_cli
from tests.platforms import fakes

CANARY = "CANARY-7f3e9a-SECRET"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\0" * 40


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path)
    sandbox.daemon_keys["retry_delay"] = "1s"
    sandbox.daemon_keys["max_retries"] = 1
    try:
        yield sandbox
    finally:
        sandbox.cleanup()


def start(box: Sandbox, env: dict[str, str] | None = None) -> DaemonProc:
    d = box.start(env=env)
    d.wait_event("started", timeout=30)
    return d


def secret_file(box: Sandbox, name: str = "secret.txt", mode: int = 0o600) -> Path:
    """A file outside the spool holding a canary, shaped like a valid post (if it were read,
    it would be sent)."""
    path = box.base / name
    path.write_text(post_text(f"{CANARY} from {name}"), encoding="utf-8")
    os.chmod(path, mode)
    return path


# -- what is never read ----------------------------------------------------------------------


@pytest.mark.realtime
def test_links_to_a_secret_are_refused_and_valid_posts_still_go_out(box: Sandbox) -> None:
    box.exec_account("x")
    box.write_config()
    secret = secret_file(box)
    before = secret.read_bytes()
    os.symlink(secret, box.spool / "scheduled" / "sym-sched.md")
    d = start(box)
    os.symlink(secret, box.spool / "new" / "sym.md")
    os.link(secret, box.spool / "new" / "hard.md")
    os.symlink("/dev/zero", box.spool / "new" / "zero.md")
    box.deliver("new", "ok", post_text("a valid post"))
    d.until(lambda: box.where("ok") == ["sent"], 20, "the valid post sent")
    d.until(
        lambda: all(box.where(n) == ["failed"] for n in ("sym", "hard", "zero")), 20, "refusals"
    )
    d.wait_event("invalid", "id=sym-sched", "symlink")
    for name, why in (("sym", "symlink"), ("hard", "hard link"), ("zero", "symlink")):
        assert why in (box.spool / "failed" / f"{name}.error").read_text(encoding="utf-8")
    # The links were moved as links; the secret itself is untouched.
    assert os.readlink(box.spool / "failed" / "sym.md") == str(secret)
    assert (box.spool / "scheduled" / "sym-sched.md").is_symlink()
    assert secret.read_bytes() == before and os.stat(secret).st_nlink == 2
    assert [r["stdin"]["id"] for r in box.records("x")] == ["ok"]
    assert CANARY not in d.text()
    assert d.stop() == 0


@pytest.mark.realtime
def test_fifo_socket_and_devices_never_block_the_daemon(box: Sandbox) -> None:
    box.exec_account("x")
    box.write_config()
    specials: list[Path] = []
    for state in ("new", "scheduled"):
        fifo = box.spool / state / "fifo.md"
        os.mkfifo(fifo, 0o600)
        specials.append(fifo)
        if os.geteuid() == 0:
            dev = box.spool / state / "dev.md"
            os.mknod(dev, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero
            specials.append(dev)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock_path = box.spool / "new" / "sock.md"
    sock.bind(str(sock_path))
    specials.append(sock_path)
    try:
        d = start(box)
        box.deliver("new", "ok", post_text("still sent"))
        box.deliver("scheduled", "ok2", post_text("also sent", schedule=iso(time.time() - 1)))
        d.until(lambda: box.ids("sent") == {"ok", "ok2"}, 20, "valid posts sent")
        d.signal(1)  # SIGHUP: a reload, then a full rescan, walks past them again
        d.wait_event("reloaded")
        box.deliver("new", "ok3", post_text("after the rescan"))
        d.until(lambda: box.where("ok3") == ["sent"], 20, "sent after the rescan")
        for path in specials:
            mode = os.lstat(path).st_mode
            assert not stat.S_ISREG(mode), path  # still there, untouched, never opened
        assert os.listdir(box.spool / "failed") == []
        # Every command that walks the spool, too.
        for args in (["list", "--state", "all"], ["stats"], ["check"]):
            run = box.cli(*args, timeout=30)
            assert run.code == 0, (args, run.err)
        assert d.stop() == 0
    finally:
        sock.close()


@pytest.mark.slow
@pytest.mark.parametrize("state", ["new", "scheduled", "failed", "tmp"])
def test_a_symlinked_state_directory_stops_the_daemon_from_starting(
    box: Sandbox, state: str
) -> None:
    box.exec_account("x")
    box.write_config()
    elsewhere = box.base / "elsewhere"
    elsewhere.mkdir()
    (box.spool / state).rmdir()
    os.symlink(elsewhere, box.spool / state)
    for args in (["send"], ["send", "--once"]):
        run = box.cli(*args, timeout=30)
        assert run.code == 1, (args, run.err)
        assert "symlink" in run.err and state in run.err
    assert os.listdir(elsewhere) == []


# -- media -----------------------------------------------------------------------------------


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    root = tmp_path / "spool"
    (root / "media").mkdir(parents=True)
    (root / "media" / "a.png").write_bytes(PNG)
    (tmp_path / "secret.png").write_bytes(PNG[:16] + CANARY.encode())
    return root


def test_media_are_read_beneath_the_root_without_symlinks(media_root: Path) -> None:
    root = media_root
    assert read_media(root, "media/a.png") == PNG
    secret = root.parent / "secret.png"
    os.symlink(secret, root / "media" / "link.png")
    os.symlink(root.parent, root / "up")
    os.mkfifo(root / "media" / "fifo.png")
    refused = {
        "media/link.png": "symlink",
        "up/secret.png": "symlink",
        "media/fifo.png": "not a regular file",
        "media": "not a regular file",
        "../secret.png": "not a regular file inside",
        "/etc/passwd": "not a regular file inside",
        "media/./a.png": "not a regular file inside",
    }
    for rel, why in refused.items():
        with pytest.raises(OSError) as info:
            read_media(root, rel)
        assert why in media_error(rel, info.value), (rel, media_error(rel, info.value))
    with pytest.raises(FileNotFoundError):
        read_media(root, "media/missing.png")


@pytest.mark.parametrize("swap", ["file", "directory"])
def test_media_swapped_for_a_symlink_after_the_check_is_not_read(
    media_root: Path, swap: str
) -> None:
    root = media_root
    post = parse(b"---\nmedia:\n  - path: media/a.png\n    alt: a dot\n---\nlook\n")
    job = fakes.job(
        post, Account("b", "bluesky", {}), spool_root=root, state_dir=root.parent / "state"
    )
    assert [i for i in bluesky._media_issues(job.post, root) if i.level == "error"] == []
    # Between the check and the upload, the file (or its directory) becomes a link to a secret.
    if swap == "file":
        os.unlink(root / "media" / "a.png")
        os.symlink(root.parent / "secret.png", root / "media" / "a.png")
    else:
        os.rename(root / "media", root / "media.old")
        (root.parent / "evil").mkdir()
        os.rename(root.parent / "secret.png", root.parent / "evil" / "a.png")
        os.symlink(root.parent / "evil", root / "media")

    uploaded: list[bytes] = []

    class Client:
        def upload(self, data: bytes, mime: str, what: str) -> dict[str, str]:
            uploaded.append(data)
            return {"blob": "x"}

    with pytest.raises(SendError, match="symlink") as info:
        bluesky._embed(Client(), job)  # type: ignore[arg-type]
    assert CANARY not in str(info.value)
    with pytest.raises(mastodon_api.Refused) as refused:
        mastodon._read_media(root, "media/a.png")
    assert "symlink" in str(refused.value.outcome.error)
    assert uploaded == []


def test_bluesky_check_never_blocks_on_a_fifo(media_root: Path) -> None:
    os.unlink(media_root / "media" / "a.png")
    os.mkfifo(media_root / "media" / "a.png")
    # Opening a FIFO without O_NONBLOCK would wait here for a writer forever: run the check in
    # a child, so that a regression is a timeout, not a hung test run.
    code = (
        "import sys; from pathlib import Path; from plurspool.post import parse; "
        "from plurspool.platforms import bluesky; "
        "issues = bluesky._media_issues(parse(b'---\\nmedia: [media/a.png]\\n---\\nx\\n'), "
        f"Path({str(media_root)!r})); "
        "sys.exit(0 if [i for i in issues if i.level == 'error'] == [] else 5)"
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=30, check=False)
    assert proc.returncode == 0


# -- secrets ---------------------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def canary_accounts(box: Sandbox) -> dict[str, str]:
    """Accounts that carry canaries and whose sends all fail; returns the daemon's extra env."""
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    token_file = box.base / "token"
    token_file.write_text(f"{CANARY}-file\n")
    os.chmod(token_file, 0o600)
    open_file = box.base / "token-open"
    open_file.write_text(f"{CANARY}-openfile\n")
    os.chmod(open_file, 0o644)
    # An exec command that shows everything it got (env and stdin) on stderr and fails.
    leak = [
        sys.executable,
        "-c",
        "import os,sys; print(dict(os.environ), sys.stdin.read(), file=sys.stderr); sys.exit(3)",
    ]
    box.accounts = {
        "leaky": f'platform = "exec"\ncommand = [{", ".join(map(toml_str, leak))}]\n',
        "mcmd": f'platform = "mastodon"\ninstance = "{url}"\n'
        f'token_cmd = "printf %s {CANARY}-cmd"\n',
        "mfile": f'platform = "mastodon"\ninstance = "{url}"\ntoken_file = "{token_file}"\n',
        "mopen": f'platform = "mastodon"\ninstance = "{url}"\ntoken_file = "{open_file}"\n',
        "menv": f'platform = "mastodon"\ninstance = "{url}"\n',
        "mfail": f'platform = "mastodon"\ninstance = "{url}"\n'
        f'token_cmd = "echo {CANARY}-fail; echo {CANARY}-fail >&2; exit 1"\n',
        "bsky": f'platform = "bluesky"\nhandle = "me.example.com"\nservice = "{url}"\n'
        f'password_cmd = "echo {CANARY}-bsky"\n',
        "nostr": f'platform = "nostr"\nrelays = ["ws://127.0.0.1:{port}"]\n'
        f'key_cmd = "echo {CANARY}-nostr"\n',
    }
    box.default_platforms = list(box.accounts)
    box.write_config()
    return {"PLURSPOOL_MENV_TOKEN": f"{CANARY}-env", "PLURSPOOL_LEAKY_TOKEN": f"{CANARY}-x"}


def everything_written(box: Sandbox) -> dict[str, bytes]:
    """Every file plurspool could have written: the spool, the state dir, the exec records."""
    out: dict[str, bytes] = {}
    for top in (box.spool, box.state_home, box.base / "env"):
        for dirpath, _, files in os.walk(top):
            for f in files:
                p = Path(dirpath) / f
                if p.is_file() and not p.is_symlink():
                    out[str(p)] = p.read_bytes()
    return out


@pytest.mark.slow
@pytest.mark.realtime
def test_canaries_never_leak_from_failing_sends(box: Sandbox) -> None:
    env = canary_accounts(box)
    d = start(box, env=env)
    box.deliver("new", "p", post_text("a post to every account"))
    d.until(lambda: box.where("p") == ["failed"], 60, "the post failed everywhere")
    reason = (box.spool / "failed" / "p.error").read_text(encoding="utf-8")
    for account in ("leaky", "mcmd", "mfile", "mopen", "menv", "mfail", "bsky", "nostr"):
        assert f"{account}:" in reason, (account, reason)
    assert "open to group or others" in reason  # the 0644 token file was refused
    assert CANARY not in reason
    # The exec command saw neither its own nor anyone's secret in its environment.
    d.wait_event("failed", "account=leaky")
    runs = [
        box.cli("list", "--state", "all", "--json", env=env),
        box.cli("show", "p", "--json", env=env),
        box.cli("stats", "--json", env=env),
        box.cli("check", env=env),
        box.cli("accounts", env=env),
        box.cli("accounts", "test", "mcmd", env=env),
        box.cli("accounts", "test", "mfail", env=env),
        box.cli("accounts", "test", "bsky", env=env),
        box.cli("send", "--once", env=env),  # refused: the daemon holds the lock
        box.cli("retry", "p", env=env),
    ]
    d.until(lambda: box.where("p") == ["failed"], 60, "the retried post failed again")
    assert d.stop() == 0
    for run in runs:
        assert CANARY not in run.out + run.err, (run.out, run.err)
    assert CANARY not in d.text()
    files = everything_written(box)
    # Only the two token files hold the canary; they are outside the spool and state dir.
    leaks = [p for p, data in files.items() if CANARY.encode() in data]
    assert leaks == [], leaks
    db = sqlite3.connect(box.state_dir() / "ledger.sqlite3")
    try:
        dump = "\n".join(db.iterdump())
    finally:
        db.close()
    assert CANARY not in dump
    config = load(box.config_path, env={**box.env, **env})
    assert CANARY not in repr(config) and CANARY not in str(config)
    for acc in config.accounts.values():
        assert CANARY not in repr(acc)


@pytest.mark.slow
@pytest.mark.parametrize(
    "body",
    [
        f'token_cmd = ["echo", "{CANARY}"]\n',
        f'token_cmd = {{ x = "{CANARY}" }}\n',
        f'token_file = ["{CANARY}"]\n',
        f'instance = "https://user:{CANARY}@example.social"\n',
        f'instance = "ftp://user:{CANARY}@example.social"\n',
        f'instance = "http://user:{CANARY}@example.social"\n',
    ],
)
def test_bad_config_values_never_echo_a_canary(box: Sandbox, body: str) -> None:
    text = '[accounts.m]\nplatform = "mastodon"\n'
    if not body.startswith("instance"):
        text += 'instance = "https://example.social"\n'
    box.config_path.write_text(text + body, encoding="utf-8")
    for args in (["send", "--once"], ["list"], ["accounts"], ["check"]):
        run = box.cli(*args)
        assert run.code == 1, (args, run.err)
        assert "accounts.m." in run.err
        assert CANARY not in run.out + run.err and "Traceback" not in run.err


# -- modes -----------------------------------------------------------------------------------


def test_spool_and_state_are_0700_under_umask_022(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    root = tmp_path / "fresh-spool"
    box.env["PLURSPOOL_SPOOL"] = str(root)
    box.exec_account("x")
    box.write_config()
    exe = Path(sys.executable).parent / "plurspool"
    proc = subprocess.run(
        ["sh", "-c", f"umask 022 && {exe} init && {exe} send --once"],
        env=box.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for d in [root, *(root / n for n in ("tmp", "new", "drafts", "scheduled", "sent", "failed"))]:
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
    state = box.state_home / "spools"
    (key,) = os.listdir(state)
    assert stat.S_IMODE(os.stat(state / key).st_mode) == 0o700
    run = run_cli(["post", "hello"], box.env)
    assert run.code == 0, run.err
    sent = list((root / "sent").iterdir())
    assert len([p for p in sent if p.name != KEEP]) == 1  # the post, beside init's KEEP file
    assert all(stat.S_IMODE(os.stat(p).st_mode) & 0o077 == 0 for p in sent)
