"""Power cuts: a post that plurspool reported as accepted survives losing every write that was
not fsync'd, at every point of its life.

How: the spool's writes run for real, under a recorder that wraps what `plurspool.spool` calls
(`os.open` with O_CREAT, `os.write`, `os.fsync` of files and of directories, `os.replace`,
`os.rename`, `os.unlink`, and `rename_noreplace`, i.e. renameat2). From the recorded trace the
test rebuilds, for a cut after every single operation, every state the disk may be in, and checks
each one.

The model of the disk (a journaling filesystem as Linux mounts it: ext4 data=ordered, xfs):
- The spool as it was before the trace is durable (the test syncs it first).
- File data is durable only once its file was fsync'd: at a cut, a file holds what it held at its
  last fsync, and a file never fsync'd is empty. (Data written after the last fsync is lost,
  whatever the filesystem would have flushed on its own.)
- Name operations (create, rename, replace, unlink) reach the disk in the order they were made,
  each one whole: the journal commits them in order, a rename atomically. An fsync of a directory
  commits the journal: every name operation before it is durable. After the last directory fsync
  before the cut, the disk holds any prefix of the later name operations; every prefix is checked.
- An fsync of a plain file is not counted as making names durable (ext4 would; not every
  filesystem does), which only makes the model harsher.
Not modelled: filesystems that persist the two halves of a cross-directory rename separately
(strict POSIX allows it; Linux journaling filesystems do not do it), and the SQLite ledger, which
keeps its own journal (WAL) and is trusted: what must precede a request is synced at once; an
outcome's record goes with the next synced write, and losing it leaves the send in doubt, which the
next attempt checks on the platform first.

What must hold at every cut, in every state: each post that was reported accepted (`post
--schedule` returned; intake logged `queued`; the sender logged `done`) is in exactly one state
directory, no earlier than the state reported, with its text whole; every post file in a state
directory parses (nothing torn is ever read as a post); a post in failed/ has its reason beside it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import plurspool.durable as durable_mod
import plurspool.spool as spool_mod
from plurspool.app import App
from plurspool.config import load
from plurspool.errors import PostError
from plurspool.log import Log
from plurspool.post import parse
from plurspool.sender import Sender
from tests.daemon_helpers import Sandbox, post_text

ORDER = {"new": 0, "scheduled": 1, "sent": 2, "failed": 2}


@dataclass
class Op:
    kind: str  # create | data | name | dirsync | mark
    path: str = ""
    dst: str = ""
    data: bytes = b""
    unlink: bool = False
    mark: tuple[str, str] = ("", "")  # (post ID, state reported)


@dataclass
class Trace:
    """What the spool did to the disk, in order, with the reports of acceptance."""

    root: Path
    ops: list[Op] = field(default_factory=list)
    fds: dict[int, tuple[str, bool]] = field(default_factory=dict)  # fd -> (path, is_dir)

    def mark(self, post_id: str, state: str) -> None:
        self.ops.append(Op("mark", mark=(post_id, state)))


class Recorder:
    """Stands in for `os` inside plurspool.spool: performs every call, records the mutating."""

    def __init__(self, trace: Trace) -> None:
        self.t = trace

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def open(self, path: Any, flags: int, mode: int = 0o777) -> int:
        p = os.fsdecode(path)
        existed = os.path.lexists(p)
        fd = os.open(path, flags, mode)
        self.t.fds[fd] = (p, bool(flags & os.O_DIRECTORY))
        if flags & os.O_CREAT and not existed:
            self.t.ops.append(Op("create", p))
        return fd

    def close(self, fd: int) -> None:
        self.t.fds.pop(fd, None)
        os.close(fd)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)
        path, is_dir = self.t.fds[fd]
        if is_dir:
            self.t.ops.append(Op("dirsync", path))
        else:
            with open(f"/proc/self/fd/{fd}", "rb") as f:
                self.t.ops.append(Op("data", path, data=f.read()))

    def replace(self, src: Any, dst: Any) -> None:
        os.replace(src, dst)
        self.t.ops.append(Op("name", os.fsdecode(src), os.fsdecode(dst)))

    def rename(self, src: Any, dst: Any) -> None:
        os.rename(src, dst)
        self.t.ops.append(Op("name", os.fsdecode(src), os.fsdecode(dst)))

    def unlink(self, path: Any) -> None:
        os.unlink(path)
        self.t.ops.append(Op("name", os.fsdecode(path), unlink=True))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the spool: relative path -> bytes."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
                out[p] = f.read()
    return out


def disks(trace: Trace, initial: dict[str, bytes], cut: int) -> Iterator[dict[str, bytes]]:
    """Every state the disk may hold after a power cut following op `cut` (see the model)."""
    ops = trace.ops[: cut + 1]
    durable_upto = max((i for i, op in enumerate(ops) if op.kind == "dirsync"), default=-1)
    # File data as of the cut: by the path the file was created under, followed through renames.
    for k in range(durable_upto, len(ops)):
        names: dict[str, str] = {p: p for p in initial}  # name -> inode (its first name)
        content: dict[str, bytes] = dict(initial)
        for i, op in enumerate(ops):
            if op.kind == "create" and i <= k:
                names[op.path] = op.path + f"#{i}"
                content.setdefault(op.path + f"#{i}", b"")
            elif op.kind == "name" and i <= k:
                inode = names.pop(op.path, None)
                if not op.unlink and inode is not None:
                    names[op.dst] = inode
            elif op.kind == "data":
                # fsync'd data is durable whatever the names: find the inode by its name now.
                inode = _inode_at(ops, i, op.path)
                content[inode] = op.data
        yield {name: content.get(inode, b"") for name, inode in names.items()}


def _inode_at(ops: list[Op], at: int, path: str) -> str:
    """The inode that `path` named when op `at` ran (following every name op before it)."""
    names: dict[str, str] = {}
    for i, op in enumerate(ops[:at]):
        if op.kind == "create":
            names[op.path] = op.path + f"#{i}"
        elif op.kind == "name":
            inode = names.pop(op.path, op.path)
            if not op.unlink:
                names[op.dst] = inode
    return names.get(path, path)


def check(
    root: Path, disk: dict[str, bytes], reported: dict[str, str], texts: dict[str, str]
) -> list[str]:
    """What is wrong with one possible disk after a cut."""
    wrong = []
    where: dict[str, list[str]] = {}
    for path, data in disk.items():
        rel = os.path.relpath(path, root)
        state, _, name = rel.partition("/")
        if state not in ORDER or not name.endswith(".md"):
            continue
        post_id = name[:-3]
        where.setdefault(post_id, []).append(state)
        try:
            post = parse(data)
        except PostError as exc:
            wrong.append(f"{rel} is torn: {exc.message} ({data[:60]!r})")
            continue
        if post_id in texts and texts[post_id] not in post.parts[0]:
            wrong.append(f"{rel} lost its text")
        if state == "failed" and os.path.join(root, "failed", post_id + ".error") not in disk:
            wrong.append(f"{rel} is in failed/ without its reason")
    for post_id, state in reported.items():
        states = where.get(post_id, [])
        if len(states) != 1:
            wrong.append(f"{post_id} (reported {state}) is in {states or 'no state'}")
        elif ORDER[states[0]] < ORDER[state]:
            wrong.append(f"{post_id} was reported {state} but is back in {states[0]}")
    return wrong


class MarkingLog(Log):
    """The sender's log: its `queued` and `done` events are reports of acceptance."""

    def __init__(self, trace: Trace) -> None:
        super().__init__(stream=io.StringIO())
        self.trace = trace

    def event(self, event: str, level: str = "info", **fields: Any) -> None:
        super().event(event, level, **fields)
        if event == "queued":
            self.trace.mark(str(fields["id"]), "scheduled")
        elif event == "done":
            self.trace.mark(str(fields["id"]), str(fields["state"]))


@pytest.fixture
def traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Sandbox, Trace]:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.exec_account("bad", default=False, exit=2)
    box.write_config()
    trace = Trace(box.spool.resolve())
    os.sync()
    recorder = Recorder(trace)
    monkeypatch.setattr(spool_mod, "os", recorder)
    monkeypatch.setattr(durable_mod, "os", recorder)  # fsync_dir, the rename fallback
    real = spool_mod.rename_noreplace

    def rename_noreplace(src: Path, dst: Path) -> None:
        real(src, dst)
        trace.ops.append(Op("name", os.fsdecode(src), os.fsdecode(dst)))

    monkeypatch.setattr(spool_mod, "rename_noreplace", rename_noreplace)
    return box, trace


def test_every_cut_keeps_every_accepted_post_whole_and_in_one_state(
    traced: tuple[Sandbox, Trace],
) -> None:
    box, trace = traced
    clock = [datetime.now(UTC).replace(microsecond=0)]
    app = App(load(box.config_path, env=box.env), clock=lambda: clock[0])
    sender = Sender(app, MarkingLog(trace))
    initial = snapshot(trace.root)
    texts = {}
    # `post --schedule`: accepted once it returned.
    item = app.queue.add("first post, queued by the CLI", schedule="10s").item
    trace.mark(item.id, "scheduled")
    texts[item.id] = "first post"
    # A file a user delivered to new/ (durably, as a Maildir writer does), with a relative time
    # that intake writes back; and one for an account that fails at once.
    app.spool.deliver("new", "by-hand", post_text("second post, by hand", schedule="20s").encode())
    trace.mark("by-hand", "new")
    texts["by-hand"] = "second post"
    doomed = post_text("third post, to fail", platforms=["bad"]).encode()
    app.spool.deliver("new", "doomed", doomed)
    trace.mark("doomed", "new")
    texts["doomed"] = "third post"
    sender.run_pass()  # intake of both; "doomed" is due and fails
    clock[0] += timedelta(seconds=30)
    result = sender.run_pass()  # both others are due and go out
    assert sorted(result.sent) == sorted([item.id, "by-hand"]), box.spool
    assert box.is_in("doomed", "failed")
    # Retry the failed one: back to the queue, due now. While it moves, either state will do.
    trace.mark("doomed", "new")
    app.queue.retry(app.items.find("doomed"))
    trace.mark("doomed", "scheduled")

    kinds = {op.kind for op in trace.ops}
    assert {"create", "data", "name", "dirsync", "mark"} <= kinds
    reported: dict[str, str] = {}
    states = 0
    for cut, op in enumerate(trace.ops):
        if op.kind == "mark":
            reported[op.mark[0]] = op.mark[1]
            continue
        for disk in disks(trace, initial, cut):
            states += 1
            wrong = check(trace.root, disk, reported, texts)
            assert not wrong, f"cut after op {cut} ({op.kind} {op.path} {op.dst}): {wrong}"
    print(f"\n{len(trace.ops)} operations, {states} disk states checked")
    assert states > len(trace.ops)


def test_the_model_catches_a_writer_that_skips_an_fsync(
    traced: tuple[Sandbox, Trace], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is not vacuous: without the fsync before the rename, a cut finds a torn post."""
    box, trace = traced
    recorder = vars(spool_mod)["os"]
    assert isinstance(recorder, Recorder)
    real_fsync = Recorder.fsync

    def lazy_fsync(self: Recorder, fd: int) -> None:
        if not self.t.fds[fd][1]:
            return  # a file: skipped, as a careless writer would
        real_fsync(self, fd)

    monkeypatch.setattr(Recorder, "fsync", lazy_fsync)
    initial = snapshot(trace.root)
    app = App(load(box.config_path, env=box.env))
    item = app.queue.add("a post", schedule="10s").item
    trace.mark(item.id, "scheduled")
    reported = {item.id: "scheduled"}
    found = [
        w
        for cut in range(len(trace.ops))
        for disk in disks(trace, initial, cut)
        for w in check(trace.root, disk, reported, {item.id: "a post"})
    ]
    assert any("is torn" in w for w in found), found
