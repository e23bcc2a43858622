"""Retrying failed posts wherever the retry is made, what lands in failed/ and why, and lateness.

As a user meets them: the installed `plurspool` and its daemon as subprocesses, real git, and two
"hosts" made of two clones of one bare repository, each with its own state directory and its own
configuration (whose `daemon.host` names this machine only on the server's side).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from plurspool import spool as spool_module
from tests.daemon_helpers import Sandbox, World, in_process, iso, post_text
from tests.helpers import ROOT, Run, git, needs_git


def ok(run: Run) -> Run:
    assert run.code == 0, f"exit {run.code}\nstdout: {run.out}\nstderr: {run.err}"
    return run


# -- git -------------------------------------------------------------------------------------


def spool_repo(box: Sandbox) -> None:
    """Make the box's spool a git repository as the README says (tmp/ ignored)."""
    for state in spool_module.STATES:
        (box.spool / state / ".keep").touch()  # git keeps no empty directory; no post either
    shutil.copy(ROOT / "contrib" / "gitignore-for-spool", box.spool / ".gitignore")
    git(box.spool, "init", "-q", "-b", "main")
    commit(box, "a spool")


def commit(box: Sandbox, message: str) -> None:
    git(box.spool, "add", "-A")
    git(box.spool, "commit", "-q", "-m", message)


def push(box: Sandbox, message: str) -> None:
    commit(box, message)
    git(box.spool, "push", "-q")


def pull(box: Sandbox) -> None:
    git(box.spool, "pull", "-q", "--ff-only")


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[Sandbox, Sandbox]]:
    """(server, laptop): one spool in two clones; only the server's config names this host."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    server, laptop = Sandbox(tmp_path / "server"), Sandbox(tmp_path / "laptop")
    for box, sender in ((server, socket.gethostname()), (laptop, "the-server")):
        box.exec_account("ok")
        box.exec_account("x")
        box.daemon_keys["host"] = sender
        box.daemon_keys["retry_delay"] = "1s"
        box.write_config()
    spool_repo(server)
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(server.spool), str(origin))
    git(server.spool, "remote", "add", "origin", str(origin))
    git(server.spool, "fetch", "-q", "origin")
    git(server.spool, "branch", "-q", "--set-upstream-to=origin/main")
    shutil.rmtree(laptop.spool)
    git(tmp_path, "clone", "-q", str(origin), str(laptop.spool))
    (laptop.spool / "tmp").mkdir(mode=0o700)  # ignored by git, as it should be
    try:
        yield server, laptop
    finally:
        server.cleanup()
        laptop.cleanup()


def calls(box: Sandbox, account: str) -> int:
    return len(box.records(account))


# -- defect: a retry made on a host that does not send ----------------------------------------


@pytest.mark.realtime
def test_a_retry_made_on_another_host_is_honoured_by_the_sending_host(
    hosts: tuple[Sandbox, Sandbox],
) -> None:
    server, laptop = hosts
    server.control("x", exit=1, stderr="x is down")
    server.deliver("new", "p", post_text("Hello from both", platforms=["ok", "x"]))
    ok(server.cli("send", "--once"))
    assert server.is_in("p", "failed")
    assert (calls(server, "ok"), calls(server, "x")) == (1, 1)
    push(server, "p failed")

    # On the laptop: retry, commit, push. The retry is in the file, nothing else changed.
    pull(laptop)
    before = (laptop.spool / "failed" / "p.md").read_bytes()
    ok(laptop.cli("retry", "p"))
    assert laptop.is_in("p", "scheduled")
    assert not (laptop.spool / "failed" / "p.error").exists()
    after = (laptop.spool / "scheduled" / "p.md").read_bytes()
    ours = (b"schedule:", b"retried:")
    assert len([line for line in after.splitlines() if line.startswith(b"retried: ")]) == 1
    assert [line for line in after.splitlines() if not line.startswith(ours)] == [
        line for line in before.splitlines() if not line.startswith(ours)
    ]
    # Everything the JSON views promise is still there (the key is read, not in the way).
    shown = ok(laptop.cli("show", "p", "--json")).json()
    listed = ok(laptop.cli("list", "--json")).json()
    assert [v["id"] for v in listed] == ["p"]
    for view in (shown, listed[0]):
        assert view["state"] == "scheduled" and view["error"] is None
        assert view["results"] == {"ok": {"id": "id-1", "url": None, "deleted_at": None}}
        assert view["attempts"] == 1 and view["preview"] == "Hello from both"
    assert shown["parts"] == ["Hello from both"]
    push(laptop, "retry p")

    # The server honours it: x runs again (still down), ok is not sent twice.
    pull(server)
    assert server.is_in("p", "scheduled")
    ok(server.cli("send", "--once"))
    assert (calls(server, "ok"), calls(server, "x")) == (1, 2)
    assert server.is_in("p", "failed")

    # The same retry seen again (the file put back by hand, token and all): nothing runs.
    os.rename(server.spool / "failed" / "p.md", server.spool / "scheduled" / "p.md")
    ok(server.cli("send", "--once"))
    assert (calls(server, "ok"), calls(server, "x")) == (1, 2)
    assert server.is_in("p", "failed")
    push(server, "p failed again")

    # x mended; a new retry from the laptop, picked up by the running daemon after a pull.
    pull(laptop)
    server.control("x", exit=0)
    ok(laptop.cli("retry", "p"))
    push(laptop, "retry p again")
    d = server.start()
    d.wait_event("started", timeout=30)
    pull(server)
    d.until(lambda: server.is_in("p", "sent"), 30, "p sent after the laptop's retry")
    assert (calls(server, "ok"), calls(server, "x")) == (1, 3)
    results = server.post("sent", "p").results
    assert (results["ok"].id, results["x"].id) == ("id-1", "id-3")
    assert results["x"].error is None
    assert not (server.spool / "failed" / "p.error").exists()
    assert d.stop() == 0


def test_a_post_with_a_failed_and_a_backing_off_account_never_reruns_the_failed_one(
    tmp_path: Path,
) -> None:
    """The hazard of a rule like "the file records no failure, so reopen": here the file records
    nothing while x has failed for good and y still backs off. Only a `retried` token the
    ledger has not honoured reopens x, once."""
    box = Sandbox(tmp_path)
    box.exec_account("x", exit=1)
    box.exec_account("y", exit=75)
    box.daemon_keys["retry_delay"] = "10m"
    w: World = in_process(box)
    box.deliver("scheduled", "p", post_text("p", schedule=iso(w.now - 1)))

    def run() -> tuple[int, int]:
        w.run()
        w.tick(3600)  # past any backoff
        return calls(box, "x"), calls(box, "y")

    assert run() == (1, 1)
    assert run() == (1, 2) and run() == (1, 3)  # y retried, x never
    path = box.spool / "scheduled" / "p.md"  # as `plurspool retry` on another host writes it
    path.write_text(path.read_text().replace("---\n", "---\nretried: T1-a1b2c3\n", 1))
    assert run() == (2, 4)  # the token: x once more
    assert run() == (2, 5) and run() == (2, 6)
    assert box.is_in("p", "scheduled")


# -- defect: git conflict markers in scheduled/ ---------------------------------------------

RESOLVE = textwrap.dedent(
    """
    import re, sys
    path = sys.argv[-1]
    text = open(path, encoding="utf-8").read()
    ours = r"<<<<<<< [^\\n]*\\n(.*?)=======\\n.*?>>>>>>> [^\\n]*\\n"
    open(path, "w", encoding="utf-8").write(re.sub(ours, r"\\1", text, flags=re.S))
    """
)


@needs_git
@pytest.mark.realtime
def test_a_merge_conflict_in_scheduled_goes_to_failed_and_edit_then_retry_sends_it(
    tmp_path: Path,
) -> None:
    box = Sandbox(tmp_path / "box")
    box.exec_account("x")
    box.write_config()
    spool_repo(box)
    head = f"---\nschedule: {iso(time.time() + 86400)}\n---\nLine one.\n"
    path = box.spool / "scheduled" / "p.md"
    box.deliver("scheduled", "p", head + "version base\n")
    commit(box, "p")
    git(box.spool, "checkout", "-q", "-b", "other")
    path.write_text(head + "version B\n", encoding="utf-8")
    commit(box, "B")
    git(box.spool, "checkout", "-q", "main")
    path.write_text(head + "version A\n", encoding="utf-8")
    commit(box, "A")
    d = box.start()
    d.wait_event("started", timeout=30)
    assert git(box.spool, "merge", "-q", "other", check=False).returncode == 1  # a conflict
    conflicted = head + "<<<<<<< HEAD\nversion A\n=======\nversion B\n>>>>>>> other\n"
    d.until(lambda: box.is_in("p", "failed"), 20, "the conflicted post in failed/")
    assert (box.spool / "failed" / "p.md").read_bytes() == conflicted.encode()  # byte for byte
    reason = (box.spool / "failed" / "p.error").read_text(encoding="utf-8")
    assert "line 5: the file has git conflict markers" in reason
    assert "plurspool edit" in reason and "plurspool retry" in reason
    assert ok(box.cli("show", "p", "--json")).json()["error"] == reason.strip()
    assert box.records("x") == []

    # The README's recovery: resolve it with `edit`, then `retry`.
    (tmp_path / "resolve.py").write_text(RESOLVE, encoding="utf-8")
    editor = {"EDITOR": f"{sys.executable} {tmp_path / 'resolve.py'}", "TMPDIR": str(tmp_path)}
    ok(box.cli("edit", "p", env=editor))
    assert box.is_in("p", "failed")
    ok(box.cli("retry", "p"))
    d.until(lambda: box.is_in("p", "sent"), 20, "the mended post sent")
    assert [r["stdin"]["parts"] for r in box.records("x")] == [["Line one.\nversion A"]]
    assert not (box.spool / "failed" / "p.error").exists()
    assert d.stop() == 0


# -- failed/ID.error outlives nothing ----------------------------------------------------------


class Crash(Exception):
    pass


@pytest.mark.slow
def test_an_error_file_left_by_a_crash_in_retry_is_never_shown_and_goes_once_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Sandbox(tmp_path)
    box.exec_account("x", exit=1, stderr="x is down")
    box.write_config()
    box.deliver("new", "p", post_text("p"))
    ok(box.cli("send", "--once"))
    error = box.spool / "failed" / "p.error"
    assert box.is_in("p", "failed") and "x is down" in error.read_text(encoding="utf-8")
    box.control("x", exit=0)

    # `retry` dies right after the post left failed/, before its reason was removed.
    def crash(step: str) -> None:
        if step == "src-fsynced":
            raise Crash(step)

    monkeypatch.setattr(spool_module, "crash_hook", crash)
    with box.app() as app, pytest.raises(Crash):
        app.queue.retry(app.items.find("p"))
    monkeypatch.setattr(spool_module, "crash_hook", None)
    assert box.is_in("p", "scheduled") and error.exists()
    assert ok(box.cli("show", "p", "--json")).json()["error"] is None
    assert ok(box.cli("list", "--state", "failed", "--json")).json() == []

    ok(box.cli("send", "--once"))
    assert box.is_in("p", "sent") and calls(box, "x") == 2
    assert not error.exists()


# -- max_lateness, whenever a post is found ------------------------------------------------------


@pytest.mark.realtime
def test_a_post_synced_in_two_days_late_fails_while_the_daemon_runs(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.daemon_keys["max_lateness"] = "6h"
    box.write_config()
    d = box.start()
    d.wait_event("started", timeout=30)
    box.deliver("new", "warm", post_text("the daemon's first pass is behind it"))
    d.until(lambda: box.is_in("warm", "sent"), 20, "the first post sent")

    # As a `git pull` would: renamed straight into scheduled/, its time two days ago.
    two_days_ago = time.time() - 2 * 86400
    box.deliver("scheduled", "late", post_text("late", schedule=iso(two_days_ago)))
    d.until(lambda: box.is_in("late", "failed"), 20, "the late post in failed/")
    reason = (box.spool / "failed" / "late.error").read_text(encoding="utf-8")
    assert "was 2d0h ago, more than max_lateness (6h00m)" in reason
    assert "plurspool retry late" in reason
    # The same file in new/ fails with the same words.
    box.deliver("new", "late2", post_text("late", schedule=iso(two_days_ago)))
    d.until(lambda: box.is_in("late2", "failed"), 20, "the late new/ post in failed/")
    reason2 = (box.spool / "failed" / "late2.error").read_text(encoding="utf-8")
    assert reason2.replace("late2", "late") == reason
    assert [r["env"]["PLURSPOOL_ID"] for r in box.records("x")] == ["warm"]

    # `retry --schedule` queues it for later; `now` then sends it.
    r = ok(box.cli("retry", "late", "--schedule", "1h"))
    assert r.out.strip() == "late" and "queued again for" in r.err
    [view] = ok(box.cli("list", "--json")).json()
    at = datetime.fromisoformat(view["scheduled_at"])
    assert timedelta(minutes=59) < at - datetime.now(UTC) <= timedelta(hours=1, seconds=1)
    assert f"= {view['scheduled_at']}" in r.err  # echoed like every resolved time
    ok(box.cli("now", "late"))
    d.until(lambda: box.is_in("late", "sent"), 20, "the retried post sent")
    assert d.stop() == 0


# -- retry --schedule ----------------------------------------------------------------------------


@pytest.mark.slow
def test_retry_schedule_queues_a_failed_post_for_later_and_refuses_a_bad_time(
    tmp_path: Path,
) -> None:
    box = Sandbox(tmp_path)
    box.exec_account("x", exit=1)
    box.write_config()
    for name in ("p", "q"):
        box.deliver("new", name, post_text(name))
    ok(box.cli("send", "--once"))
    assert box.ids("failed") == {"p", "q"}
    before = {n: (box.spool / "failed" / f"{n}.md").read_bytes() for n in ("p", "q")}

    r = box.cli("retry", "--all", "-s", "next blursday")
    assert r.code == 3 and r.err.startswith("plurspool: ") and "Traceback" not in r.err
    assert "hint:" in r.err
    assert {n: (box.spool / "failed" / f"{n}.md").read_bytes() for n in ("p", "q")} == before
    assert (box.spool / "failed" / "p.error").exists()

    box.control("x", exit=0)
    views = ok(box.cli("retry", "p", "q", "-s", "2h", "--json")).json()
    assert [v["state"] for v in views] == ["scheduled", "scheduled"]
    for v in views:
        at = datetime.fromisoformat(v["scheduled_at"])
        assert (
            timedelta(hours=1, minutes=59) < at - datetime.now(UTC) <= timedelta(hours=2, seconds=1)
        )
    # On the sending host itself, `retry` notes its own token as honoured at once: the ledger
    # reopens a post once per token, and declines the token the file holds.
    tokens = {n: box.post("scheduled", n).retried for n in ("p", "q")}
    assert all(tokens.values())
    with box.app() as app:
        assert not any(app.ledger.reopen(n, token) for n, token in tokens.items() if token)
    ok(box.cli("send", "--once"))
    assert box.ids("scheduled") == {"p", "q"} and calls(box, "x") == 2  # not before its time


# -- the ledger ------------------------------------------------------------------------------
