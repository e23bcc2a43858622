"""Editors and sync tools, reproduced syscall by syscall against a running daemon (plurspool(5)
WRITING INTO THE SPOOL, plurspool(1) DAEMON).

Each helper below does what the tool does on disk, in its order: vim's default save (rename to
`x.md~`, write a new file, delete the backup) and with `backupcopy=yes` (copy, then truncate and
rewrite in place), its `4913` probe; emacs' lock symlink and autosave file; VS Code's truncate then
write; `git checkout` and `git pull` of 500 posts; Syncthing's temp file and rename and its
conflict copies; Dropbox's conflicted copies. Saves into `scheduled/` straddle the post's due time,
so the daemon looks while the file is missing, empty or half-saved.

The promise checked every time: nothing sent half-written, twice, or never.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProc, Sandbox, iso, post_text, toml_str, wait_for
from tests.helpers import git

pytestmark = pytest.mark.realtime

VIM_BLOCK = 8192  # vim writes a buffer out in blocks of this size


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path)
    sandbox.exec_account("x")
    sandbox.write_config()
    try:
        yield sandbox
    finally:
        sandbox.cleanup()


def start(box: Sandbox) -> DaemonProc:
    d = box.start()
    d.wait_event("started", timeout=30)
    return d


def sleep_until(t: float) -> None:
    left = t - time.time()
    if left > 0:
        time.sleep(left)


def due_soon(seconds: float = 2.5) -> float:
    return float(math.ceil(time.time() + seconds))


def sent_once(box: Sandbox, d: DaemonProc, post_id: str, parts: list[str]) -> None:
    """The post is in sent/ and went out exactly once, with exactly `parts`."""
    d.until(lambda: box.where(post_id) == ["sent"], 20, f"{post_id} in sent/")
    mine = [r["stdin"]["parts"] for r in box.records("x") if r["stdin"]["id"] == post_id]
    assert mine == [parts], mine


# -- the tools -------------------------------------------------------------------------------


def _write_all(fd: int, data: bytes, block: int = VIM_BLOCK, gap: float = 0.0) -> None:
    for n in range(0, len(data), block):
        if n:
            time.sleep(gap)  # a slow disk or a busy machine between two blocks
        os.write(fd, data[n : n + block])


def vim_probe(directory: Path) -> None:
    """vim's check that it may create files in a directory: create `4913`, chown, delete."""
    probe = directory / "4913"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.fchown(fd, os.getuid(), os.getgid())
    os.close(fd)
    os.unlink(probe)


def vim_new_file(path: Path, data: bytes) -> None:
    """`:w` of a buffer whose file does not exist yet."""
    vim_probe(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    _write_all(fd, data)
    os.fsync(fd)
    os.close(fd)


def vim_writebackup(path: Path, data: bytes, pause: float = 0.0) -> None:
    """vim's default `:w` (writebackup, backupcopy=auto): rename to x~, write anew, delete x~."""
    vim_probe(path.parent)
    backup = path.with_name(path.name + "~")
    mode = os.stat(path).st_mode & 0o7777
    os.rename(path, backup)
    time.sleep(pause)  # the post is missing meanwhile
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    _write_all(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.chmod(path, mode)
    os.unlink(backup)


def vim_backupcopy_yes(path: Path, data: bytes, pause: float = 0.0, gap: float = 0.0) -> None:
    """`:set backupcopy=yes` then `:w`: copy to x~, truncate x and rewrite it in place."""
    backup = path.with_name(path.name + "~")
    old = path.read_bytes()
    fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    _write_all(fd, old)
    os.close(fd)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    time.sleep(pause)  # the post is empty meanwhile
    _write_all(fd, data, gap=gap)
    os.fsync(fd)
    os.close(fd)
    os.unlink(backup)


class Emacs:
    """An emacs session on one file: lock symlink, autosaves, save with a kept backup."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = path.with_name(".#" + path.name)
        self.autosave = path.with_name("#" + path.name + "#")

    def modify(self) -> None:
        """The first change of a buffer locks the file: a dangling symlink `.#x.md`."""
        os.symlink(f"user@host.{os.getpid()}:{int(time.time())}", self.lock)

    def auto_save(self, data: bytes) -> None:
        fd = os.open(self.autosave, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, data)
        os.close(fd)

    def save(self, data: bytes, pause: float = 0.0) -> None:
        """C-x C-s: the first save of a session renames the file to its backup `x.md~`."""
        if self.path.exists():
            os.rename(self.path, self.path.with_name(self.path.name + "~"))
        time.sleep(pause)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.unlink(self.autosave)
        os.unlink(self.lock)


def vscode_save(path: Path, data: bytes, pause: float) -> None:
    """VS Code's save of an existing file: open, truncate, then write (not atomic)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, 0)
    time.sleep(pause)  # the file is empty meanwhile
    os.write(fd, data)
    os.close(fd)


def syncthing_deliver(directory: Path, name: str, data: bytes, pause: float = 0.0) -> None:
    """Syncthing pulls a file into `.syncthing.NAME.tmp`, block by block, then renames it."""
    tmp = directory / f".syncthing.{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    half = len(data) // 2
    os.write(fd, data[:half])
    time.sleep(pause)  # half a file sits there, under its temporary name
    os.write(fd, data[half:])
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, directory / name)


# -- vim ---------------------------------------------------------------------------------------


def test_vim_writes_a_new_post_into_new(box: Sandbox) -> None:
    d = start(box)
    text = post_text("written with vim\n---\nsecond part")
    vim_new_file(box.spool / "new" / "v.md", text.encode())
    sent_once(box, d, "v", ["written with vim", "second part"])
    assert not (box.spool / "new" / "4913").exists()
    assert os.listdir(box.spool / "failed") == []


@pytest.mark.parametrize("save", [vim_writebackup, vim_backupcopy_yes], ids=["default", "copy"])
def test_vim_saves_a_scheduled_post_at_its_due_time(box: Sandbox, save: object) -> None:
    d = start(box)
    due = due_soon()
    box.deliver("scheduled", "v", post_text("first draft", schedule=iso(due)))
    body = "the final text," + " long" * 3000  # more than one block of vim's
    final = post_text(body, schedule=iso(due))
    sleep_until(due - 0.3)
    assert callable(save)
    save(box.spool / "scheduled" / "v.md", final.encode(), pause=0.9)  # straddles the due time
    sent_once(box, d, "v", [body])
    assert not (box.spool / "scheduled" / "v.md~").exists()
    assert os.listdir(box.spool / "failed") == []
    assert d.proc.poll() is None


def test_a_post_rewritten_in_place_block_by_block_is_sent_whole(box: Sandbox) -> None:
    d = start(box)
    due = due_soon()
    box.deliver("scheduled", "v", post_text("first draft", schedule=iso(due)))
    # Every prefix of the new version that ends at a block boundary is itself a valid post.
    body = "\n".join(f"line {n:05d} of a long thread part" for n in range(1000))
    final = post_text(body, schedule=iso(due)).encode()
    assert len(final) > 4 * VIM_BLOCK
    sleep_until(due - 0.1)
    # Blocks 50 ms apart, from just before the due time to well after it.
    vim_backupcopy_yes(box.spool / "scheduled" / "v.md", final, gap=0.05)
    sent_once(box, d, "v", [body])
    assert d.proc.poll() is None


# -- emacs -------------------------------------------------------------------------------------


def test_emacs_writes_a_new_post_into_new(box: Sandbox) -> None:
    d = start(box)
    emacs = Emacs(box.spool / "new" / "e.md")
    emacs.modify()
    emacs.auto_save(b"---\n---\nhalf a tho")
    time.sleep(1.5)  # longer than any settle time: the lock and autosave are never taken
    assert emacs.lock.is_symlink() and emacs.autosave.exists()
    assert box.records("x") == [] and os.listdir(box.spool / "failed") == []
    emacs.save(post_text("half a thought, finished").encode())
    sent_once(box, d, "e", ["half a thought, finished"])
    assert not emacs.lock.is_symlink() and not emacs.autosave.exists()
    assert os.listdir(box.spool / "failed") == []


def test_emacs_saves_a_scheduled_post_at_its_due_time(box: Sandbox) -> None:
    d = start(box)
    due = due_soon()
    box.deliver("scheduled", "e", post_text("old", schedule=iso(due)))
    emacs = Emacs(box.spool / "scheduled" / "e.md")
    emacs.modify()
    emacs.auto_save(post_text("new but unsaved", schedule=iso(due)).encode())
    sleep_until(due - 0.3)
    emacs.save(post_text("new and saved", schedule=iso(due)).encode(), pause=0.9)
    sent_once(box, d, "e", ["new and saved"])
    backup = box.spool / "scheduled" / "e.md~"
    assert backup.read_text(encoding="utf-8") == post_text("old", schedule=iso(due))
    assert os.listdir(box.spool / "failed") == []


# -- VS Code -----------------------------------------------------------------------------------


def test_vscode_truncate_then_write_at_the_due_time(box: Sandbox) -> None:
    d = start(box)
    due = due_soon()
    box.deliver("scheduled", "c", post_text("before", schedule=iso(due)))
    sleep_until(due - 0.4)
    # Empty from 0.4 s before the due time to 0.8 s after it.
    vscode_save(
        box.spool / "scheduled" / "c.md", post_text("after", schedule=iso(due)).encode(), 1.2
    )
    sent_once(box, d, "c", ["after"])
    assert d.proc.poll() is None


def test_vscode_saves_a_new_file_into_new(box: Sandbox) -> None:
    d = start(box)
    vscode_save(box.spool / "new" / "c.md", post_text("from vs code").encode(), 0.3)
    sent_once(box, d, "c", ["from vs code"])
    assert os.listdir(box.spool / "failed") == []


# -- git ---------------------------------------------------------------------------------------


CONFLICTED = (
    "---\nschedule: {t}\n---\n<<<<<<< HEAD\nour version\n=======\ntheir version\n"
    ">>>>>>> origin/main\n"
)


def upstream_with_posts(box: Sandbox, n: int, schedule: str) -> Path:
    """A repository whose `main` has a commit adding `n` posts to new/, one of them conflicted."""
    up = box.base / "upstream"
    (up / "new").mkdir(parents=True)
    git(up, "init", "-q", env=box.env)
    (up / "README").write_text("posts\n")
    git(up, "add", "README", env=box.env)
    git(up, "commit", "-q", "-m", "start", env=box.env)
    for i in range(n - 1):
        (up / "new" / f"p{i:03d}.md").write_text(post_text(f"post {i}", schedule=schedule))
    (up / "new" / "conflicted.md").write_text(CONFLICTED.format(t=schedule))
    git(up, "add", "new", env=box.env)
    git(up, "commit", "-q", "-m", f"{n} posts", env=box.env)
    return up


def spool_repo(box: Sandbox, up: Path) -> None:
    """Make the spool a clone of `up` at its first commit (no posts yet)."""
    (box.spool / ".gitignore").write_text("tmp/\n")
    git(box.spool, "init", "-q", env=box.env)
    git(box.spool, "remote", "add", "origin", str(up), env=box.env)
    git(box.spool, "fetch", "-q", "origin", env=box.env)
    first = git(up, "rev-list", "--max-parents=0", "HEAD", env=box.env).stdout.strip()
    git(box.spool, "checkout", "-q", "-b", "main", first, env=box.env)


@pytest.mark.slow
def test_git_checkout_of_500_posts_queues_each_once(box: Sandbox) -> None:
    due = iso(time.time() + 86400)
    up = upstream_with_posts(box, 500, due)
    spool_repo(box, up)
    d = start(box)
    git(box.spool, "checkout", "-q", "-b", "batch", "origin/main", env=box.env)
    ids = {f"p{i:03d}" for i in range(499)}
    d.until(
        lambda: box.ids("scheduled") == ids and box.where("conflicted") == ["failed"],
        60,
        "499 posts in scheduled/ and the conflicted one in failed/",
    )
    assert box.ids("new") == set()
    reason = (box.spool / "failed" / "conflicted.error").read_text(encoding="utf-8")
    assert "conflict markers" in reason
    assert (box.spool / "failed" / "conflicted.md").read_text() == CONFLICTED.format(t=due)
    for i in (0, 250, 498):
        # Times with an offset are kept byte for byte.
        path = box.spool / "scheduled" / f"p{i:03d}.md"
        assert path.read_text(encoding="utf-8") == post_text(f"post {i}", schedule=due)
    # The log line follows the move: wait for the reader to have seen the last one.
    d.until(lambda: len(d.events("queued")) >= 499, 10, "the last log line")
    queued = d.events("queued")
    assert len(queued) == 499 and len({q.split(" id=")[1].split()[0] for q in queued}) == 499
    assert box.records("x") == []
    assert d.stop() == 0


@pytest.mark.slow
def test_git_pull_of_500_due_posts_sends_each_once(box: Sandbox) -> None:
    record = box.base / "fast.jsonl"
    script = 'cat >> "$0" && echo >> "$0" && echo "$PLURSPOOL_ID"'
    argv = ["sh", "-c", script, str(record)]
    box.accounts = {"fast": f'platform = "exec"\ncommand = [{", ".join(map(toml_str, argv))}]\n'}
    box.default_platforms = ["fast"]
    box.write_config()
    up = upstream_with_posts(box, 500, iso(time.time() - 60))
    spool_repo(box, up)
    d = start(box)
    git(box.spool, "pull", "-q", "--ff-only", "origin", "main", env=box.env)
    ids = {f"p{i:03d}" for i in range(499)}
    d.until(
        lambda: box.ids("sent") == ids and box.where("conflicted") == ["failed"],
        90,
        "499 posts in sent/ and the conflicted one in failed/",
    )
    lines = record.read_text(encoding="utf-8").splitlines()
    sent = [json.loads(line) for line in lines if line]
    assert sorted(s["id"] for s in sent) == sorted(ids)  # each exactly once
    assert all(s["parts"] == [f"post {int(s['id'][1:])}"] for s in sent)
    assert "conflict markers" in (box.spool / "failed" / "conflicted.error").read_text()
    assert box.ids("new") == set() and box.ids("scheduled") == set()
    assert d.stop() == 0


# -- Syncthing and Dropbox ---------------------------------------------------------------------


def test_syncthing_temp_file_and_rename(box: Sandbox) -> None:
    d = start(box)
    text = post_text("synced in by syncthing " + "x" * 2000)
    syncthing_deliver(box.spool / "new", "s.md", text.encode(), pause=1.5)
    sent_once(box, d, "s", ["synced in by syncthing " + "x" * 2000])
    # The same into scheduled/, replacing a post just before its due time.
    due = due_soon(3)
    box.deliver("scheduled", "t", post_text("old", schedule=iso(due)))
    sleep_until(due - 2)
    syncthing_deliver(
        box.spool / "scheduled", "t.md", post_text("new", schedule=iso(due)).encode(), pause=1.0
    )
    assert time.time() < due
    sent_once(box, d, "t", ["new"])
    assert os.listdir(box.spool / "failed") == []


def test_a_copy_synced_in_after_the_post_went_out_is_not_sent_again(box: Sandbox) -> None:
    d = start(box)
    due = iso(time.time() - 1)
    box.deliver("scheduled", "t", post_text("sent version", schedule=due))
    sent_once(box, d, "t", ["sent version"])
    # The other machine's edit arrives late, through Syncthing's temp file and rename.
    late = post_text("late edit", schedule=due)
    syncthing_deliver(box.spool / "scheduled", "t.md", late.encode())
    d.wait_event("invalid", "already finished in sent/")
    assert box.ids("scheduled") == set()
    (copy,) = [p for p in (box.spool / "failed").glob("t.*.md")]
    assert copy.read_text(encoding="utf-8") == late
    assert "instead of sending it" in copy.with_suffix(".error").read_text(encoding="utf-8")
    assert len(box.records("x")) == 1
    assert d.proc.poll() is None
    errors = [line for line in d.log() if " ERROR " in line and "already" not in line]
    assert errors == [], errors
    assert d.stop() == 0


CONFLICT_COPIES = [
    "x.sync-conflict-20261128-101010-ABCDEF.md",
    "x (conflicted copy 2026-11-28).md",
    "x (Someone's conflicted copy 2026-11-28).md",
]


@pytest.mark.parametrize("state", ["new", "scheduled"])
def test_conflict_copies_go_to_failed_and_the_original_is_sent_once(
    box: Sandbox, state: str
) -> None:
    d = start(box)
    due = iso(time.time() - 1)
    box.deliver(state, "x", post_text("the original", schedule=due))
    copy_text = post_text("the other side's version", schedule=due)
    syncthing_deliver(box.spool / state, CONFLICT_COPIES[0], copy_text.encode())
    for name in CONFLICT_COPIES[1:]:
        # Dropbox writes in its cache dir, then renames into place.
        tmp = box.spool / "tmp" / "dropbox.tmp"
        tmp.write_text(copy_text, encoding="utf-8")
        os.rename(tmp, box.spool / state / name)
    sent_once(box, d, "x", ["the original"])
    for name in CONFLICT_COPIES:
        failed = box.spool / "failed" / name
        wait_for(failed.exists, 20, f"{name} in failed/")
        assert failed.read_text(encoding="utf-8") == copy_text
        reason = box.spool / "failed" / (name[:-3] + ".error")
        assert "conflict copy" in reason.read_text(encoding="utf-8")
    assert len(box.records("x")) == 1
    assert d.stop() == 0
