"""Many hosts where their features meet: two clones of one bare remote, each a host
(PLURSPOOL_HOST=a|b, its own state directory) with `[senders]`, `[git]`, feeds and imports, the
installed `plurspool` as subprocesses and real git between them (plurspool(5), SEVERAL
MACHINES)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import wait_for
from tests.helpers import git
from tests.system.test_git import IDENTITY, Host, Remote, ok, publish, write_post
from tests.system.test_git import remote as remote  # the fixture

pytestmark = [pytest.mark.slow]

SENDERS = '[senders]\na = ["x"]\nb = ["y"]\n'


@pytest.fixture
def clones(tmp_path: Path, remote: Remote) -> Iterator[Callable[..., Host]]:
    """`make(name, extra)`: host `name`, a clone of the remote with the exec accounts x and y
    and the TOML `extra` ([senders], [git], ...)."""
    made: list[Host] = []

    def make(name: str, extra: str = "") -> Host:
        base = tmp_path / name
        git(tmp_path, "clone", "-q", str(remote.origin), str(base / "repo"))
        box = Host(base)
        box.env.update(IDENTITY)
        box.env["PLURSPOOL_HOST"] = name
        box.exec_account("x")
        box.exec_account("y")
        box.extra = extra
        box.write_config()
        made.append(box)
        return box

    yield make
    for box in made:
        box.cleanup()


def pull(box: Host) -> None:
    git(box.repo, "pull", "-q", "--rebase")


def parts(box: Host, account: str) -> list[list[str]]:
    return [r["stdin"]["parts"] for r in box.records(account)]


# -- [senders] and [git] -----------------------------------------------------------------------


def test_senders_hand_a_reviewed_post_over_through_git_and_each_host_sends_its_accounts(
    remote: Remote, clones: Callable[..., Host]
) -> None:
    gitkeys = "[git]\nsend_only_committed = true\nautocommit = true\npush = true\n"
    a, b = clones("a", SENDERS + gitkeys), clones("b", SENDERS + gitkeys)
    write_post(remote.author, "p", "Reviewed, sent from two hosts", time.time() - 5)
    publish(remote.author, "p", "posts/scheduled/p.md")
    for box in (a, b):
        pull(box)
    ok(a.cli("send", "--once"))
    # a sent x and recorded it in the file, committed and pushed: the post waits for y.
    assert a.is_in("p", "scheduled") and set(a.post("scheduled", "p").results) == {"x"}
    assert parts(a, "x") == [["Reviewed, sent from two hosts"]] and a.records("y") == []
    assert git(a.repo, "status", "--porcelain", "posts").stdout == ""
    pull(b)
    assert set(b.post("scheduled", "p").results) == {"x"}
    held = {v["id"]: v["held"] for v in ok(b.cli("list", "--json")).json()}
    assert held == {"p": None}  # the results are written keys: still as reviewed
    ok(b.cli("send", "--once"))
    assert b.is_in("p", "sent") and set(b.post("sent", "p").results) == {"x", "y"}
    assert b.records("x") == [] and parts(b, "y") == [["Reviewed, sent from two hosts"]]
    assert git(b.repo, "status", "--porcelain", "posts").stdout == ""
    pull(a)
    assert a.is_in("p", "sent")
    ok(a.cli("send", "--once"))
    assert len(a.records("x")) == 1 and a.records("y") == []


# -- two hosts that both send everything ------------------------------------------------------


def test_two_hosts_that_both_sent_a_post_merge_their_sent_copies_on_push(
    remote: Remote, clones: Callable[..., Host]
) -> None:
    """No [senders]: both hosts send p and move it to sent/, each with its own `at` in the
    results: an add/add conflict in posts/sent/p.md when b pulls before its push. b keeps the
    remote's copy (the same post, sent) and pushes; nothing is sent again anywhere."""
    gitkeys = "[git]\nautocommit = true\npush = true\n"
    a, b = clones("a", gitkeys), clones("b", gitkeys)
    write_post(remote.author, "p", "Sent by both", time.time() - 5)
    publish(remote.author, "p", "posts/scheduled/p.md")
    for box in (a, b):
        pull(box)
    ok(a.cli("send", "--once"))
    second = int(time.time())
    wait_for(lambda: int(time.time()) > second, 2, "the next second")  # the `at`s differ
    run = ok(b.cli("send", "--once"))
    assert "action=merge kept_remote=posts/sent/p.md" in run.err, run.err
    assert "ERROR" not in run.err, run.err
    status = git(b.repo, "status", "--porcelain", "--branch").stdout
    assert status.splitlines() == ["## main...origin/main"], status  # pushed, nothing left
    remote_sent = git(remote.origin, "show", "main:posts/sent/p.md").stdout
    assert remote_sent == (a.spool / "sent" / "p.md").read_text()
    assert (b.spool / "sent" / "p.md").read_text() == remote_sent
    pull(a)
    for box in (a, b):
        ok(box.cli("send", "--once"))
        assert box.is_in("p", "sent")
        assert ok(box.cli("check", "--json")).json() == []
        assert [len(box.records(n)) for n in ("x", "y")] == [1, 1]


def test_a_hand_pulled_conflict_between_two_sent_copies_is_named_by_check(
    remote: Remote, clones: Callable[..., Host]
) -> None:
    """Hosts synced by hand (`git pull`, no autocommit): check names the unmerged post and says
    how to settle it; settled as it says, nothing is sent again."""
    a, b = clones("a"), clones("b")
    write_post(remote.author, "p", "Sent by both", time.time() - 5)
    publish(remote.author, "p", "posts/scheduled/p.md")
    for box in (a, b):
        pull(box)
        ok(box.cli("send", "--once"))
        second = int(time.time())  # the results' `at` of the two hosts differ
        git(box.repo, "add", "-A", "posts")
        git(box.repo, "commit", "-q", "-m", "sent")
        wait_for(lambda: int(time.time()) > second, 2, "the next second")  # noqa: B023
    git(a.repo, "push", "-q")
    assert git(b.repo, "pull", "-q", "--no-rebase", check=False).returncode != 0
    run = b.cli("check")
    assert run.code == 3, (run.out, run.err)
    assert "posts/sent/p.md: unmerged in git" in run.out + run.err
    sent = b.spool / "sent" / "p.md"
    assert f"git checkout --theirs {sent} && git add {sent}" in run.out + run.err
    git(b.repo, "checkout", "--theirs", "posts/sent/p.md")
    git(b.repo, "add", "posts/sent/p.md")
    git(b.repo, "commit", "-q", "--no-edit")
    assert ok(b.cli("check")).code == 0
    ok(b.cli("send", "--once"))
    assert b.is_in("p", "sent") and [len(b.records(n)) for n in ("x", "y")] == [1, 1]
