"""The spool: layout and modes, names and IDs, safe reads, and crash injection in every change."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plurspool import spool as spool_module
from plurspool.app import App
from plurspool.config import load
from plurspool.errors import EXIT_NOT_FOUND, NotFound, SpoolError
from plurspool.ledger import Ledger
from plurspool.log import NullLog
from plurspool.post import parse
from plurspool.sender import Sender
from plurspool.spool import (
    DIRS,
    KEEP,
    KEEP_TEXT,
    STATES,
    Entry,
    Refused,
    Spool,
    classify,
    new_id,
)
from tests.helpers import make_env, run_cli

POST = b"---\nplatforms: [outbox]\n---\nHello, spool.\n"


class Crash(Exception):
    """Raised by the crash hook in place of a power cut."""


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    s = Spool(tmp_path / "spool")
    s.ensure()
    return s


@pytest.fixture
def hook() -> Iterator[None]:
    """Make sure no test leaves a crash hook behind."""
    yield
    spool_module.crash_hook = None


def posts_everywhere(s: Spool) -> dict[str, list[str]]:
    """post ID → the states holding it, from what a scan sees."""
    out: dict[str, list[str]] = {}
    for state in STATES:
        for e in s.entries(state):
            out.setdefault(e.id, []).append(state)
    return out


def tmp_files(s: Spool) -> list[str]:
    return sorted(os.listdir(s.root / "tmp"))


# -- layout ----------------------------------------------------------------------------------


def test_ensure_creates_every_dir_0700_even_under_umask_022(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        s = Spool(tmp_path / "a" / "spool")
        s.ensure()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(s.root).st_mode) == 0o700
    for name in DIRS:
        st = os.lstat(s.root / name)
        assert stat.S_ISDIR(st.st_mode), name
        assert stat.S_IMODE(st.st_mode) == 0o700, name
    assert sorted(os.listdir(s.root)) == sorted(DIRS)


def test_ensure_is_idempotent_and_completes_a_partial_spool(spool: Spool) -> None:
    (spool.root / "sent").rmdir()
    with pytest.raises(SpoolError, match="no sent/ directory"):
        spool.check()
    spool.ensure()
    spool.ensure()
    assert (spool.root / "sent").is_dir()


def test_a_state_dir_that_is_a_symlink_is_refused(spool: Spool, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (spool.root / "scheduled").rmdir()
    (spool.root / "scheduled").symlink_to(elsewhere)
    with pytest.raises(SpoolError, match="symlink") as info:
        spool.check()
    assert info.value.exit_code == 1
    with pytest.raises(SpoolError, match="symlink"):
        Spool(spool.root).ensure()


def test_a_state_dir_that_is_a_file_is_refused(spool: Spool) -> None:
    (spool.root / "drafts").rmdir()
    (spool.root / "drafts").write_text("oops")
    with pytest.raises(SpoolError, match="not a directory"):
        spool.check()


def test_the_root_may_be_a_symlink_and_is_resolved_once(spool: Spool, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(spool.root)
    s = Spool(link)
    s.ensure()
    assert s.root == spool.root
    e = s.deliver("scheduled", "x", POST)
    assert e.path == spool.root / "scheduled" / "x.md"


def test_a_missing_spool_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="no spool") as info:
        Spool(tmp_path / "nowhere").check()
    assert "plurspool init" in info.value.hint


# -- names and IDs ---------------------------------------------------------------------------


def test_new_ids_are_unique_and_readable() -> None:
    ids = {new_id("Hello, World! This is a long first line of text") for _ in range(5000)}
    assert len(ids) == 5000
    for i in ids:
        rand, _, slug = i.partition("-")
        assert len(rand) == 8
        assert set(rand) <= set("0123456789abcdefghjkmnpqrstvwxyz")
        assert slug == "hello-world-this-is-a-lo"
        assert classify(i + ".md") == "post"
    assert len(new_id()) == 8
    assert new_id("!!!").count("-") == 0


def test_new_ids_are_found_by_any_unique_prefix(spool: Spool) -> None:
    made = [new_id("post") for _ in range(50)]
    for i, post_id in enumerate(made):
        spool.deliver(STATES[i % len(STATES)], post_id, POST)
    for post_id in made:
        assert spool.find(post_id).id == post_id
        # The 8 random characters are enough to tell 50 posts apart.
        assert spool.find(post_id[:8]).id == post_id
        assert spool.find(post_id + ".md").id == post_id


def test_find_exact_prefix_and_ambiguous(spool: Spool) -> None:
    spool.deliver("scheduled", "abc", POST)
    spool.deliver("drafts", "abcd", POST)
    spool.deliver("sent", "xyz-1", POST)
    spool.deliver("failed", "xyz-2", POST)
    assert spool.find("abc").id == "abc"  # exact wins over a longer ID with that prefix
    assert spool.find("abcd").state == "drafts"
    assert spool.find("xyz-1").state == "sent"
    with pytest.raises(NotFound, match="ambiguous") as info:
        spool.find("xyz")
    assert info.value.exit_code == EXIT_NOT_FOUND == 4
    assert "xyz-1 (sent)" in info.value.message and "xyz-2 (failed)" in info.value.message
    with pytest.raises(NotFound, match="no post") as missing:
        spool.find("nope")
    assert missing.value.exit_code == 4
    for bad in ("", ".", "../scheduled/abc", ".abc"):
        with pytest.raises(NotFound):
            spool.find(bad)
    # Restricted to some states, a prefix may become unique.
    assert spool.find("xyz", ("failed",)).id == "xyz-2"
    with pytest.raises(NotFound, match="in drafts"):
        spool.find("zzz", ("drafts",))


def test_prefix_lengths_tell_each_id_apart(spool: Spool) -> None:
    """Each ID's shortest prefix no other ID starts with; all of it when it starts another ID
    or is in two states. Checked against that definition, over IDs sharing prefixes of every
    length (and the random ones `new_id` makes)."""
    ids = ["abc", "abcd", "abd", "b", "ba", "bab", "c1", "c1", "xyz-1", "xyz-2", "q"]
    ids += [new_id("post") for _ in range(30)]
    for n, post_id in enumerate(ids):  # the second c1 by hand, as a sync might bring it
        state = STATES[n % len(STATES)]
        if spool.exists_anywhere(post_id):
            (spool.root / state / f"{post_id}.md").write_bytes(POST)
        else:
            spool.deliver(state, post_id, POST)

    def defined(x: str) -> int:
        others = list(ids)
        others.remove(x)
        return next(
            (n for n in range(1, len(x) + 1) if not any(o.startswith(x[:n]) for o in others)),
            len(x),
        )

    need = spool.prefix_lengths()
    assert need == {x: defined(x) for x in ids}
    assert (need["abc"], need["abd"], need["b"], need["bab"], need["c1"]) == (3, 3, 1, 3, 2)


@pytest.mark.parametrize(
    "name",
    [".x.md", "x.md~", "#x.md#", "x.swp", "x.swx", ".x.md.swp", "x.tmp", "x.md.tmp", "4913",
     "x.txt", "x", "README", "x.MD", ".md"],
)  # fmt: skip
def test_junk_names_are_ignored(spool: Spool, name: str) -> None:
    assert classify(name) == "ignore"
    (spool.root / "new" / name).write_bytes(POST)
    assert spool.entries("new") == []
    with pytest.raises(NotFound):
        spool.find(name.removesuffix(".md") or "x")


@pytest.mark.parametrize(
    "name",
    [
        "a.sync-conflict-20261128-123456-ABCDEFG.md",
        "a (conflicted copy 2026-11-28).md",
        "a (Conflicted copy from laptop).md",
    ],
)
def test_conflict_copies_are_classified_as_conflicts(spool: Spool, name: str) -> None:
    assert classify(name) == "conflict"
    (spool.root / "new" / name).write_bytes(POST)
    assert [(k, e.id if e else None) for k, e in spool.scan("new")] == [("conflict", name[:-3])]


def test_plain_names_are_posts() -> None:
    for name in ("launch-day.md", "a b.md", "2026-12-01 thread.md", "é.md"):
        assert classify(name) == "post"


# -- safe reads ------------------------------------------------------------------------------


def entry_of(s: Spool, state: str, post_id: str) -> Entry:
    e = s.stat_entry(state, post_id)
    assert e is not None
    return e


def test_read_returns_the_bytes(spool: Spool) -> None:
    e = spool.deliver("new", "x", POST)
    assert spool.read(e) == POST


def test_read_refuses_a_symlink(spool: Spool, tmp_path: Path) -> None:
    target = tmp_path / "target.md"
    target.write_bytes(POST)
    (spool.root / "new" / "x.md").symlink_to(target)
    [e] = spool.entries("new")
    assert e.symlink
    with pytest.raises(Refused, match="symlink"):
        spool.read(e)


def test_read_refuses_a_symlink_swapped_in_after_the_scan(spool: Spool, tmp_path: Path) -> None:
    e = spool.deliver("new", "x", POST)
    target = tmp_path / "target.md"
    target.write_bytes(POST)
    os.unlink(e.path)
    e.path.symlink_to(target)
    with pytest.raises(Refused, match="symlink"):
        spool.read(e)


def test_read_refuses_a_file_with_two_hard_links(spool: Spool, tmp_path: Path) -> None:
    e = spool.deliver("new", "x", POST)
    os.link(e.path, tmp_path / "other-name")
    fresh = entry_of(spool, "new", "x")
    assert fresh.nlink == 2
    with pytest.raises(Refused, match="hard link"):
        spool.read(fresh)
    # The link made after the scan is caught on the open file too.
    with pytest.raises(Refused, match="hard link"):
        spool.read(e)


def test_read_refuses_oversize_files(tmp_path: Path) -> None:
    s = Spool(tmp_path / "spool", max_size=1000)
    s.ensure()
    ok = s.deliver("new", "ok", b"x" * 1000)
    assert s.read(ok) == b"x" * 1000
    big = s.deliver("new", "big", b"x" * 1001)
    with pytest.raises(Refused, match="1001 bytes, over the 1000-byte limit"):
        s.read(big)
    # A file that grows after the scan is cut off at the limit, not read whole.
    with open(ok.path, "ab") as f:
        f.write(b"more")
    with pytest.raises(Refused):
        s.read(ok)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away")
def test_read_refuses_a_file_of_another_owner(spool: Spool) -> None:
    e = spool.deliver("new", "x", POST)
    os.chown(e.path, 65534, 65534)
    fresh = entry_of(spool, "new", "x")
    with pytest.raises(Refused, match="belongs to uid 65534"):
        spool.read(fresh)
    with pytest.raises(Refused, match="belongs to uid 65534"):
        spool.read(e)  # changed owner after the scan


def test_a_fifo_is_skipped_and_never_opened(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    root = tmp_path / "spool"
    env["PLURSPOOL_SPOOL"] = str(root)
    s = Spool(root)
    s.ensure()
    fifo = root / "new" / "x.md"
    os.mkfifo(fifo, 0o600)
    assert list(s.scan("new")) == []
    st = os.lstat(fifo)
    fake = Entry("x", "new", str(fifo), st.st_ino, 0, st.st_mtime_ns, st.st_mode, 1, os.geteuid())
    with pytest.raises(Refused, match="not a regular file"):
        s.read(fake)
    # Every command that walks the spool: opening the FIFO for reading would block forever.
    for args in (["send", "--once"], ["check"], ["list", "--state", "all"], ["stats"]):
        run = run_cli(args, env, timeout=30)
        assert run.code == 0, (args, run.err)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(root / "failed") == []


def test_a_socket_is_skipped(spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(spool.root / "new")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind("s.md")
        assert stat.S_ISSOCK(os.lstat(spool.root / "new" / "s.md").st_mode)
        assert list(spool.scan("new")) == []
        st = os.lstat(spool.root / "new" / "s.md")
        fake = Entry(
            "s", "new", str(spool.root / "new" / "s.md"), st.st_ino, 0, 0, st.st_mode, 1, 0
        )
        with pytest.raises(Refused, match="not a regular file"):
            spool.read(fake)
    finally:
        sock.close()


def test_directories_named_like_posts_are_skipped(spool: Spool) -> None:
    (spool.root / "new" / "dir.md").mkdir()
    assert spool.entries("new") == []


def test_tmp_is_never_read_as_posts(spool: Spool) -> None:
    (spool.root / "tmp" / "x.md").write_bytes(POST)
    (spool.root / "tmp" / "y.12.abcd").write_bytes(POST)
    assert posts_everywhere(spool) == {}
    with pytest.raises(NotFound):
        spool.find("x")


# -- writes ----------------------------------------------------------------------------------


def test_deliver_never_replaces(spool: Spool) -> None:
    spool.deliver("drafts", "x", POST)
    with pytest.raises(SpoolError, match="already exists"):
        spool.deliver("scheduled", "x", b"other")
    assert spool.read(entry_of(spool, "drafts", "x")) == POST
    assert tmp_files(spool) == []


def test_move_never_replaces(spool: Spool) -> None:
    a = spool.deliver("drafts", "x", POST)
    # A second file with the same ID, as a git pull could bring.
    (spool.root / "scheduled" / "x.md").write_bytes(b"other")
    with pytest.raises(SpoolError, match="already there"):
        spool.move(a, "scheduled")
    assert (spool.root / "drafts" / "x.md").read_bytes() == POST
    assert (spool.root / "scheduled" / "x.md").read_bytes() == b"other"


def test_move_of_a_vanished_post_is_not_found(spool: Spool) -> None:
    a = spool.deliver("drafts", "x", POST)
    os.unlink(a.path)
    with pytest.raises(NotFound):
        spool.move(a, "scheduled")


def test_a_move_into_a_state_dir_that_vanished_makes_it_again(spool: Spool) -> None:
    """Git removes a directory with the last file in it: a move into it makes it again (0700),
    and is never reported as the post being gone."""
    a = spool.deliver("scheduled", "x", POST)
    (spool.root / "sent").rmdir()
    moved = spool.move(a, "sent")
    assert moved.path == spool.root / "sent" / "x.md" and moved.path.read_bytes() == POST
    assert stat.S_IMODE(os.stat(spool.root / "sent").st_mode) == 0o700
    (spool.root / "failed").rmdir()
    failed = spool.fail(moved, "a reason")
    assert failed.path.read_bytes() == POST and spool.read_error("x") == "a reason"
    (spool.root / "drafts").rmdir()
    back = spool.rename_into(failed, "drafts", "y")
    assert back.path == spool.root / "drafts" / "y.md"


def test_a_post_written_while_tmp_and_its_state_dir_are_missing_lands(spool: Spool) -> None:
    """A fresh clone has no tmp/ (git ignores it), and maybe no scheduled/."""
    (spool.root / "tmp").rmdir()
    (spool.root / "scheduled").rmdir()
    e = spool.deliver("scheduled", "x", POST)
    assert e.path.read_bytes() == POST
    assert all(stat.S_IMODE(os.stat(spool.root / d).st_mode) == 0o700 for d in DIRS)
    assert tmp_files(spool) == []


def test_a_move_of_a_vanished_post_into_a_vanished_dir_is_not_found(spool: Spool) -> None:
    a = spool.deliver("drafts", "x", POST)
    os.unlink(a.path)
    (spool.root / "scheduled").rmdir()
    with pytest.raises(NotFound, match="no longer in drafts/"):
        spool.move(a, "scheduled")


def test_keep_files_are_written_on_request_only_and_never_read_as_posts(spool: Spool) -> None:
    assert all(os.listdir(spool.root / d) == [] for d in DIRS)  # not unasked (see ensure)
    spool.ensure(keep=True)
    for state in STATES:
        assert os.listdir(spool.root / state) == [KEEP]
        assert (spool.root / state / KEEP).read_bytes() == KEEP_TEXT  # the same on every host
        assert spool.entries(state) == []
    assert os.listdir(spool.root / "tmp") == []  # git ignores tmp/
    (spool.root / "new" / KEEP).write_bytes(b"changed by hand\n")
    spool.ensure(keep=True)
    assert (spool.root / "new" / KEEP).read_bytes() == b"changed by hand\n"  # never rewritten


def test_replace_refuses_when_the_file_changed(spool: Spool) -> None:
    a = spool.deliver("scheduled", "x", POST)
    os.unlink(a.path)
    a.path.write_bytes(POST + b"edited\n")  # a new inode: someone saved meanwhile
    with pytest.raises(spool_module.Changed):
        spool.replace(a, b"mine")
    assert a.path.read_bytes() == POST + b"edited\n"
    assert tmp_files(spool) == []


def test_fail_writes_the_reason_and_moves_byte_for_byte(spool: Spool) -> None:
    data = b"\xff\xfe not even utf-8 \x00"
    e = spool.deliver("new", "junk", data)
    moved = spool.fail(e, "it is not a post")
    assert moved.state == "failed"
    assert moved.path.read_bytes() == data
    assert spool.read_error("junk") == "it is not a post"
    back = spool.move(moved, "scheduled")
    assert spool.read_error("junk") is None
    assert back.path.read_bytes() == data


# -- crash injection -------------------------------------------------------------------------


def record_steps(action: Callable[[], object]) -> list[str]:
    steps: list[str] = []
    spool_module.crash_hook = steps.append
    try:
        action()
    finally:
        spool_module.crash_hook = None
    return steps


def crash_at(step: str) -> Callable[[str], None]:
    def hook(name: str) -> None:
        if name == step:
            raise Crash(step)

    return hook


def test_step_names_cover_each_change(tmp_path: Path, hook: None) -> None:
    s = Spool(tmp_path / "spool")
    s.ensure()
    deliver = record_steps(lambda: s.deliver("drafts", "a", POST))
    move = record_steps(lambda: s.move(entry_of(s, "drafts", "a"), "scheduled"))
    replace = record_steps(lambda: s.replace(entry_of(s, "scheduled", "a"), POST + b"x\n"))
    assert deliver == ["written", "tmp-fsynced", "renamed", "dir-fsynced"]
    assert move == ["renamed", "dst-fsynced", "src-fsynced"]
    assert replace == ["written", "tmp-fsynced", "replaced", "dir-fsynced"]


def _steps(kind: str, tmp_path: Path) -> list[str]:
    s = Spool(tmp_path / f"steps-{kind}")
    s.ensure()
    s.deliver("failed", "seed", POST)
    s.deliver("scheduled", "other", POST)
    actions: dict[str, Callable[[], object]] = {
        "deliver": lambda: s.deliver("drafts", "a", POST),
        "move": lambda: s.move(entry_of(s, "failed", "seed"), "scheduled"),
        "replace": lambda: s.replace(entry_of(s, "scheduled", "other"), POST + b"x\n"),
    }
    return record_steps(actions[kind])


def test_a_crash_in_deliver_leaves_nothing_or_the_whole_post(tmp_path: Path, hook: None) -> None:
    steps = _steps("deliver", tmp_path)
    assert steps
    for n, step in enumerate(steps):
        s = Spool(tmp_path / f"deliver-{n}")
        s.ensure()
        s.deliver("sent", "other", POST)
        spool_module.crash_hook = crash_at(step)
        with pytest.raises(Crash):
            s.deliver("scheduled", "a", POST)
        spool_module.crash_hook = None
        found = posts_everywhere(s)
        assert found.pop("other") == ["sent"]
        renamed = steps.index(step) >= steps.index("renamed")
        if renamed:
            assert found == {"a": ["scheduled"]}, step
            assert s.read(entry_of(s, "scheduled", "a")) == POST
            assert tmp_files(s) == []
        else:
            # Not accepted yet: nowhere in the spool; at most a stray file in tmp/, unseen.
            assert found == {}, step
            assert len(tmp_files(s)) <= 1
            # Delivering again works: the stray file does not block the ID.
            s.deliver("scheduled", "a", POST)
            assert posts_everywhere(s)["a"] == ["scheduled"]
            assert s.read(entry_of(s, "scheduled", "a")) == POST


def test_a_crash_in_move_leaves_the_post_in_exactly_one_state(tmp_path: Path, hook: None) -> None:
    steps = _steps("move", tmp_path)
    assert steps
    for n, step in enumerate(steps):
        s = Spool(tmp_path / f"move-{n}")
        s.ensure()
        e = s.deliver("drafts", "a", POST)
        spool_module.crash_hook = crash_at(step)
        with pytest.raises(Crash):
            s.move(e, "scheduled")
        spool_module.crash_hook = None
        # Every step is after the rename: the post has moved, once, whole.
        assert posts_everywhere(s) == {"a": ["scheduled"]}, step
        assert s.read(entry_of(s, "scheduled", "a")) == POST
        assert tmp_files(s) == []


def test_a_crash_in_replace_leaves_old_or_new_bytes(tmp_path: Path, hook: None) -> None:
    steps = _steps("replace", tmp_path)
    assert steps
    new = POST.replace(b"Hello", b"Goodbye")
    for n, step in enumerate(steps):
        s = Spool(tmp_path / f"replace-{n}")
        s.ensure()
        e = s.deliver("scheduled", "a", POST)
        spool_module.crash_hook = crash_at(step)
        with pytest.raises(Crash):
            s.replace(e, new)
        spool_module.crash_hook = None
        assert posts_everywhere(s) == {"a": ["scheduled"]}, step
        got = s.read(entry_of(s, "scheduled", "a"))
        replaced = steps.index(step) >= steps.index("replaced")
        assert got == (new if replaced else POST), step
        assert len(tmp_files(s)) == (0 if replaced else 1), step
        # The leftover in tmp/ is not a post anywhere, and the next replace still works.
        s.replace(entry_of(s, "scheduled", "a"), new + b"again\n")
        assert s.read(entry_of(s, "scheduled", "a")) == new + b"again\n"
        assert posts_everywhere(s) == {"a": ["scheduled"]}


def test_a_crash_in_fail_keeps_the_post_and_its_reason(tmp_path: Path, hook: None) -> None:
    steps = record_steps(lambda: _fail_once(tmp_path / "steps-fail"))
    for n, step in enumerate(dict.fromkeys(steps)):
        s = Spool(tmp_path / f"fail-{n}")
        s.ensure()
        e = s.deliver("new", "a", b"not: [valid")
        spool_module.crash_hook = crash_at(step)
        with pytest.raises(Crash):
            s.fail(e, "bad YAML")
        spool_module.crash_hook = None
        where = posts_everywhere(s)
        assert len(where["a"]) == 1, step
        state = where["a"][0]
        assert s.read(entry_of(s, state, "a")) == b"not: [valid"
        if state == "failed":
            assert s.read_error("a") == "bad YAML"
        s.fail(entry_of(s, state, "a"), "bad YAML")  # finishing the job works
        assert posts_everywhere(s) == {"a": ["failed"]}
        assert s.read_error("a") == "bad YAML"


def _fail_once(root: Path) -> None:
    s = Spool(root)
    s.ensure()
    spool_module.crash_hook, saved = None, spool_module.crash_hook
    e = s.deliver("new", "a", POST)
    spool_module.crash_hook = saved
    s.fail(e, "reason")


CRASHER = textwrap.dedent(
    """
    import os, sys
    from plurspool import spool as sp
    root, step = sys.argv[1], sys.argv[2]
    s = sp.Spool(root)
    def hook(name):
        if name == step:
            os._exit(1)  # no cleanup, no finally: as a kill -9 would
    sp.crash_hook = hook
    e = s.stat_entry("drafts", "a")
    s.move(e, "scheduled")
    sys.exit(0)
    """
)


def test_a_killed_process_mid_move_leaves_the_post_in_one_state(tmp_path: Path) -> None:
    steps = _steps("move", tmp_path)
    for n, step in enumerate(steps):
        s = Spool(tmp_path / f"proc-{n}")
        s.ensure()
        s.deliver("drafts", "a", POST)
        proc = subprocess.run(
            [sys.executable, "-c", CRASHER, str(s.root), step],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr
        assert posts_everywhere(s) == {"a": ["scheduled"]}, step
        assert s.read(entry_of(s, "scheduled", "a")) == POST
        assert tmp_files(s) == []


# -- crash injection across a whole send pass ------------------------------------------------


def _pass_world(base: Path) -> tuple[App, Path]:
    env = make_env(base)
    config = load(spool=str(base / "spool"), env=env)
    app = App(config)
    app.spool.ensure()
    # A minute ago: due at once (`now` would round up to the next whole second).
    due = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (app.spool.root / "new" / "p.md").write_bytes(
        f"---\nschedule: {due}\n---\nCrash me.\n".encode()
    )
    return app, config.state_dir / "outbox.jsonl"


def _run_pass(app: App) -> None:
    try:
        Sender(app, NullLog()).run_pass()
    finally:
        if app.ledgers._ledger is not None:
            app.ledgers._ledger.close()


def test_a_crash_anywhere_in_a_send_pass_loses_nothing_and_sends_once(
    tmp_path: Path, hook: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ledger's record of a finished send is a step too: a crash before it leaves the
    # attempt in doubt, which the next pass must resolve without sending again.
    real_record = Ledger.record

    def record(self: Ledger, *args: Any, **kwargs: Any) -> None:
        spool_module._step("ledger-record")
        real_record(self, *args, **kwargs)

    monkeypatch.setattr(Ledger, "record", record)
    steps: list[str] = []
    app, _ = _pass_world(tmp_path / "record")
    spool_module.crash_hook = steps.append
    _run_pass(app)
    spool_module.crash_hook = None
    assert "ledger-record" in steps and steps.count("renamed") >= 2
    for n in range(len(steps)):
        app, outbox = _pass_world(tmp_path / f"crash-{n}")
        seen = 0

        def crash_nth(name: str, n: int = n) -> None:
            nonlocal seen
            seen += 1
            if seen == n + 1:
                raise Crash(f"{n}: {name}")

        spool_module.crash_hook = crash_nth
        with pytest.raises(Crash):
            _run_pass(app)
        spool_module.crash_hook = None
        where = posts_everywhere(app.spool)
        assert list(where) == ["p"] and len(where["p"]) == 1, (n, steps[n], where)
        # A new process takes over and finishes the job.
        after = App(app.config)
        _run_pass(after)
        _run_pass(App(app.config))
        assert posts_everywhere(after.spool) == {"p": ["sent"]}, (n, steps[n])
        lines = outbox.read_text().splitlines()
        assert len(lines) == 1, (n, steps[n])  # sent once, whatever the crash
        post = parse(after.spool.path("sent", "p").read_bytes())
        assert post.parts == ("Crash me.",)
        assert post.results["outbox"].id == json.loads(lines[0])["idempotency_key"], (n, steps[n])
        assert tmp_files(after.spool) == [] or steps[n] in ("written", "tmp-fsynced")


@pytest.mark.parametrize("link", ["media", "media/cards"])
def test_a_card_image_is_never_made_or_written_through_a_symlink(
    spool: Spool, tmp_path: Path, link: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    if link == "media/cards":
        (spool.root / "media").mkdir()
    (spool.root / link).symlink_to(outside)
    with pytest.raises(SpoolError, match="is a symlink"):
        spool.write_card_image("p1", b"\xff\xd8jpeg")
    assert list(outside.iterdir()) == []  # not even an empty cards/ out there
    assert list((spool.root / "tmp").iterdir()) == []
    spool_dir = spool.root / "media" / "cards"
    (spool.root / link).unlink()
    assert spool.write_card_image("p1", b"\xff\xd8jpeg") == "media/cards/p1.jpg"
    assert (spool_dir / "p1.jpg").read_bytes() == b"\xff\xd8jpeg"


def test_deliver_many_writes_new_posts_and_leaves_taken_ids_alone(tmp_path: Path) -> None:
    """An import's batch: every post renamed in after one sync, a post holding an ID there
    left as it is, nothing left in tmp/ (plurspool(1), `import`)."""
    spool = spool_module.Spool(tmp_path / "spool")
    spool.ensure()
    taken = spool.deliver("scheduled", "b", b"the post that was there\n")
    made = spool.deliver_many("scheduled", [("a", b"first\n"), ("b", b"second\n"), ("c", b"x\n")])
    assert [e.id for e in made] == ["a", "c"]
    assert all(e.state == "scheduled" for e in made)
    assert spool.read(made[0]) == b"first\n"
    assert spool.read(spool.stat_entry("scheduled", "b") or taken) == b"the post that was there\n"
    assert list((tmp_path / "spool" / "tmp").iterdir()) == []


def test_new_id_with_a_seed_is_the_same_every_time() -> None:
    one = spool_module.new_id("Hello, world", seed=b"row 1")
    assert one == spool_module.new_id("Hello, world", seed=b"row 1")
    assert one.endswith("-hello-world") and len(one.split("-")[0]) == 8
    assert one != spool_module.new_id("Hello, world", seed=b"row 2")
