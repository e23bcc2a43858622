"""The daemon keeps watching when state dirs, or the whole spool, vanish and come back
(plurspool(1), DAEMON): git removes a directory when it removes the last file in it, a user runs
`rmdir new; mkdir new`, a spool is replaced by a fresh clone. The one-second promise holds again
at once after each, not at the next rescan (an hour away here), and `daemon health` says so
while the daemon cannot see its spool. And one daemon per spool per machine, whatever state
directory each one uses.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from plurspool.daemon import SETTLE
from tests.daemon_helpers import DaemonProc, Sandbox, iso, post_text
from tests.helpers import ROOT, Run, git, make_env, needs_git

pytestmark = [
    needs_git,
    pytest.mark.realtime,
]


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path)
    sandbox.exec_account("x")
    sandbox.daemon_keys["rescan_interval"] = "1h"  # no rescan may rescue a blind daemon
    sandbox.daemon_keys["shutdown_timeout"] = "20s"
    sandbox.write_config()
    try:
        yield sandbox
    finally:
        sandbox.cleanup()


def start(box: Sandbox) -> DaemonProc:
    d = box.start()
    d.wait_event("started", timeout=30)
    return d


def queue_in_2s(box: Sandbox, text: str) -> tuple[str, float]:
    """`plurspool post -s 2s TEXT`: the new post's ID and its due time."""
    r = box.cli("post", "--json", "-s", "2s", text)
    assert r.code == 0, r.err
    view = r.json()
    return view["id"], datetime.fromisoformat(view["scheduled_at"]).timestamp()


def sent_on_time(box: Sandbox, d: DaemonProc, post_id: str, due: float) -> None:
    """The post went out once, within a second of its time, and is in sent/."""
    recs = d.until(
        lambda: [r for r in box.records("x") if r["stdin"]["id"] == post_id], 20, f"{post_id} sent"
    )
    late = recs[0]["t"] - due
    print(f"\nLATENCY due -> exec record: {late * 1000:.0f} ms")
    assert 0.0 <= late < 1.0, (recs[0], due)
    d.until(lambda: box.is_in(post_id, "sent"), 10, f"{post_id} in sent/")
    assert len([r for r in box.records("x") if r["stdin"]["id"] == post_id]) == 1


def taken_in_at_once(box: Sandbox, d: DaemonProc, post_id: str) -> None:
    """A file renamed into new/ is in scheduled/ within a second."""
    t0 = time.time()
    box.deliver("new", post_id, post_text("later", schedule="2h"))
    d.until(lambda: box.is_in(post_id, "scheduled"), 10, f"{post_id} taken in")
    lag = time.time() - t0
    print(f"\nLATENCY rename into new/ -> scheduled/: {lag * 1000:.0f} ms")
    assert lag < 1.0


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def health(box: Sandbox, env: dict[str, str] | None = None) -> Run:
    return box.cli("daemon", "health", env=env)


def blind(h: Run) -> Run | None:
    """A `daemon health` that failed because the spool is gone, else None."""
    return h if h.code == 1 and "is gone" in h.out else None


def laptop_and_server(box: Sandbox) -> tuple[Path, dict[str, str], str]:
    """A bare repository, a "laptop" clone holding one post queued for days (committed and
    pushed), and the sandbox's spool made a clone of it (the "server", where the daemon runs).
    Returns the laptop's spool, the environment that makes plurspool use it, and the post's ID.
    """
    up = box.base / "up.git"
    git(box.base, "init", "-q", "--bare", str(up), env=box.env)
    laptop = box.base / "laptop"
    git(box.base, "clone", "-q", str(up), str(laptop), env=box.env)
    shutil.copy(ROOT / "contrib" / "gitignore-for-spool", laptop / ".gitignore")
    on_laptop = {"PLURSPOOL_SPOOL": str(laptop)}
    r = box.cli("post", "--json", "-s", "3 days", "queued on the laptop", env=on_laptop)
    assert r.code == 0, r.err
    post_id: str = r.json()["id"]
    push(box, laptop, "queue a post")
    shutil.rmtree(box.spool)
    git(box.base, "clone", "-q", str(up), str(box.spool), env=box.env)
    assert (box.spool / "scheduled" / f"{post_id}.md").exists()
    return laptop, on_laptop, post_id


def push(box: Sandbox, repo: Path, message: str) -> None:
    git(repo, "add", "-A", env=box.env)
    git(repo, "commit", "-q", "-m", message, env=box.env)
    git(repo, "push", "-q", "origin", "HEAD:main", env=box.env)


def test_a_git_pull_that_removes_scheduled_leaves_the_daemon_on_time(box: Sandbox) -> None:
    laptop, on_laptop, queued = laptop_and_server(box)
    d = start(box)
    # On the laptop: cancel the only scheduled post, commit, push. On the server: pull. Git
    # removes scheduled/ there, with the last file in it.
    r = box.cli("cancel", queued, env=on_laptop)
    assert r.code == 0, r.err
    push(box, laptop, "cancel")
    git(box.spool, "pull", "-q", "--ff-only", "origin", "main", env=box.env)
    assert box.is_in(queued, "drafts")
    post_id, due = queue_in_2s(box, "right after the pull")
    sent_on_time(box, d, post_id, due)
    assert mode(box.spool / "scheduled") == 0o700
    taken_in_at_once(box, d, "via-new")
    assert health(box).code == 0
    assert d.stop() == 0


def test_state_dirs_removed_or_made_again_are_watched_again_at_once(box: Sandbox) -> None:
    d = start(box)
    # Removed and left so (as git leaves them): the daemon makes them again, mode 0700.
    os.rmdir(box.spool / "scheduled")
    os.rmdir(box.spool / "sent")
    d.wait_event("recreated", "dir=scheduled/")
    d.wait_event("recreated", "dir=sent/")
    assert mode(box.spool / "scheduled") == 0o700 and mode(box.spool / "sent") == 0o700
    due = float(math.ceil(time.time() + 2))
    box.deliver("scheduled", "p", post_text("after rmdir", schedule=iso(due)))
    sent_on_time(box, d, "p", due)
    assert not [line for line in d.log() if "no longer in" in line]
    # Removed and made again at once by hand: watched anew at once. A file that arrived before
    # that is found by the scan that follows, and taken once it is a second old (it might be
    # still being written); those after it, within a second.
    os.rmdir(box.spool / "new")
    os.mkdir(box.spool / "new", 0o700)
    t0 = time.time()
    box.deliver("new", "n0", post_text("early", schedule="2h"))
    d.wait_event("rewatched", f"dir={box.spool / 'new'}")
    d.until(lambda: box.is_in("n0", "scheduled"), 10, "n0 taken in")
    assert time.time() - t0 < SETTLE + 1.0
    taken_in_at_once(box, d, "n1")
    taken_in_at_once(box, d, "n2")
    assert health(box).code == 0
    assert d.stop() == 0


def test_a_spool_replaced_by_a_fresh_clone_is_sent_from_at_once(box: Sandbox) -> None:
    _, _, queued = laptop_and_server(box)
    d = start(box)
    # While the spool is gone, the daemon is blind: health says so, and makes no spool.
    os.rename(box.spool, box.base / "old")
    r = d.until(lambda: blind(health(box)), 10, "health to fail while the spool is gone")
    assert str(box.spool) in r.out
    assert not box.spool.exists()
    st = box.cli("daemon", "status", "--json", env={"PLURSPOOL_SERVICE_MODE": "pidfile"})
    assert json.loads(st.out)["healthy"] is False and not box.spool.exists()
    # A fresh clone at the same path (without tmp/, which git ignores).
    git(box.base, "clone", "-q", str(box.base / "up.git"), str(box.spool), env=box.env)
    d.wait_event("spool-replaced")
    d.until(lambda: health(box).code == 0, 10, "health to pass again")
    assert all(mode(box.spool / s) == 0o700 for s in ("tmp", "new", "sent", "failed"))
    post_id, due = queue_in_2s(box, "into the fresh clone")
    sent_on_time(box, d, post_id, due)
    taken_in_at_once(box, d, "via-new")
    assert box.is_in(queued, "scheduled")  # due in three days: still waiting
    assert d.stop() == 0


def test_a_second_daemon_with_another_state_dir_refuses_naming_the_first(box: Sandbox) -> None:
    d = start(box)
    elsewhere = {"XDG_STATE_HOME": make_env(box.base / "elsewhere")["XDG_STATE_HOME"]}
    second = box.start(env=elsewhere)
    assert second.wait(30) == 1
    said = second.text()
    assert "another plurspool daemon is already sending from" in said
    assert f"pid {d.pid}" in said and str(box.state_dir()) in said
    assert "Traceback" not in said
    # Seen from the other state directory, a daemon runs (status and `now` agree), but its
    # health cannot be read there.
    status = box.cli(
        "daemon", "status", "--json", env={**elsewhere, "PLURSPOOL_SERVICE_MODE": "pidfile"}
    )
    assert status.code == 0, status.err
    st = status.json()
    assert st["running"] is True and st["pid"] == d.pid and st["healthy"] is False
    assert str(box.state_dir()) in st["detail"]
    h = health(box, elsewhere)
    assert h.code == 1 and f"pid {d.pid}" in h.out
    box.deliver("scheduled", "p", post_text("once", schedule=iso(time.time() + 3600)))
    r = box.cli("now", "p", env=elsewhere)
    assert r.code == 0 and "the running daemon sends it" in r.err
    d.until(lambda: box.is_in("p", "sent"), 10, "p sent")
    assert len(box.records("x")) == 1
    assert health(box).code == 0
    assert d.stop() == 0
