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
    assert "action=merge paths=posts/sent/p.md" in run.err, run.err
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


# -- imports ----------------------------------------------------------------------------------


def test_the_same_csv_imported_on_two_hosts_merges_cleanly_and_is_sent_once(
    tmp_path: Path, remote: Remote, clones: Callable[..., Host]
) -> None:
    """IDs come from each row's content: both hosts write the same files, so git merges the
    two imports without a conflict, and the sending host (daemon.host) sends each post once."""
    a, b = clones("a"), clones("b")
    for box in (a, b):
        box.daemon_keys["host"] = "a"
        box.write_config()
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    rows = tmp_path / "rows.csv"
    rows.write_text(f"text,schedule\nSoon,{soon}\nTomorrow,{later}\nA draft,\n")
    imported = {}
    for box in (a, b):
        run = ok(box.cli("import", "csv", str(rows), "--json"))
        imported[box.env["PLURSPOOL_HOST"]] = {p["preview"]: p["id"] for p in run.json()}
        git(box.repo, "add", "posts")
        git(box.repo, "commit", "-q", "-m", "imported")
    assert imported["a"] == imported["b"] and len(imported["a"]) == 3
    git(a.repo, "push", "-q")
    merged = git(b.repo, "pull", "-q", "--no-rebase", "--no-edit", check=False)
    assert merged.returncode == 0, merged.stderr  # no conflict: the same blobs
    ok(b.cli("check"))  # no problem, nothing unmerged
    soon_id = imported["a"]["Soon"]
    assert b.cli("now", soon_id).code == 1  # b sends none of its accounts (daemon.host = a)
    git(b.repo, "checkout", "--", "posts")  # what `now` wrote: a learns nothing from b here
    ok(a.cli("now", soon_id))
    for box in (b, a):
        ok(box.cli("send", "--once"))
    assert [r["stdin"]["parts"] for r in a.records("x")] == [["Soon"]]
    assert [r["stdin"]["parts"] for r in a.records("y")] == [["Soon"]]
    assert b.records("x") == [] and b.records("y") == []
    assert a.is_in(soon_id, "sent") and b.is_in(soon_id, "scheduled")


def test_a_relative_time_imported_on_two_hosts_at_two_moments_is_a_conflict_check_names(
    tmp_path: Path, remote: Remote, clones: Callable[..., Host]
) -> None:
    """`in 2 hours` is resolved when imported: the two copies of the row's post differ in their
    time, git stops on them, and `check` names the file (plurspool(1), import)."""
    a, b = clones("a"), clones("b")
    rows = tmp_path / "rows.csv"
    rows.write_text("text,schedule\nLater,in 2 hours\n")
    for box in (a, b):
        ok(box.cli("import", "csv", str(rows)))
        second = int(time.time())
        git(box.repo, "add", "posts")
        git(box.repo, "commit", "-q", "-m", "imported")
        wait_for(lambda: int(time.time()) > second, 2, "the next second")  # noqa: B023
    git(a.repo, "push", "-q")
    assert git(b.repo, "pull", "-q", "--no-rebase", "--no-edit", check=False).returncode != 0
    run = b.cli("check")
    assert run.code == 3 and "unmerged in git" in run.out + run.err
    [name] = [p.name for p in (b.spool / "scheduled").glob("*.md")]
    assert f"scheduled/{name}: unmerged in git" in run.out + run.err


def test_senders_due_at_once_on_two_hosts_merge_their_results_on_push(
    remote: Remote, clones: Callable[..., Host]
) -> None:
    """[senders] with the post due on both hosts at once: each sends its account and records it
    into scheduled/p.md before it has the other's; the second push meets the first's results
    in the same place, keeps both, and the post goes to sent/ on the next pass."""
    gitkeys = "[git]\nsend_only_committed = true\nautocommit = true\npush = true\n"
    a, b = clones("a", SENDERS + gitkeys), clones("b", SENDERS + gitkeys)
    write_post(remote.author, "p", "Due on both hosts at once", time.time() - 5)
    publish(remote.author, "p", "posts/scheduled/p.md")
    for box in (a, b):
        pull(box)
    ok(a.cli("send", "--once"))
    run = ok(b.cli("send", "--once"))  # it had not pulled a's results
    assert "action=merge paths=posts/scheduled/p.md" in run.err, run.err
    assert "ERROR" not in run.err, run.err
    assert set(b.post("scheduled", "p").results) == {"x", "y"}
    assert git(b.repo, "status", "--porcelain", "--branch").stdout == "## main...origin/main\n"
    ok(b.cli("send", "--once"))  # every account done: b moves it
    assert b.is_in("p", "sent") and set(b.post("sent", "p").results) == {"x", "y"}
    pull(a)
    ok(a.cli("send", "--once"))
    assert a.is_in("p", "sent")
    for box, mine in ((a, "x"), (b, "y")):
        assert [len(box.records(n)) for n in ("x", "y")] == [int(mine == "x"), int(mine == "y")]


# -- feeds and review ---------------------------------------------------------------------------


def test_a_feeds_post_waits_for_review_like_any_other(
    remote: Remote, clones: Callable[..., Host]
) -> None:
    """With send_only_committed, the post a feed's new entry makes is held until someone
    commits it: autocommit never commits a held post (plurspool(1), FEEDS)."""
    from plurspool.feeds import post_id
    from tests.feedserver import feed_server, rss

    queue = '[queues.default]\nslots = ["daily 09:00"]\n[feeds]\npoll_interval = "1s"\n'
    gitkeys = "[git]\nsend_only_committed = true\nautocommit = true\n"
    a = clones("a", queue + gitkeys)
    old = [("https://blog.example/1", "One", "")]
    new = ("https://blog.example/2", "Two", "")
    with feed_server() as server:
        url = server.url("/feed")
        server.docs["/feed"] = (rss(old), "application/rss+xml")
        ok(a.cli("feed", "add", url))
        server.docs["/feed"] = (rss([new, *old]), "application/rss+xml")
        wait_for(lambda: ok(a.cli("send", "--once")) and a.ids("scheduled"), 20, "the post")
    made = post_id(url, new[0])
    assert a.ids("scheduled") == {made}
    now = a.cli("now", made)  # due now, and held
    assert now.code == 1 and "held: not committed on main" in now.err, now.err
    ok(a.cli("send", "--once"))  # a later pass: still held, not committed by plurspool
    assert a.records("x") == [] and a.is_in(made, "scheduled")
    untracked = git(a.repo, "status", "--porcelain", "posts/scheduled").stdout
    assert untracked == f"?? posts/scheduled/{made}.md\n"
    git(a.repo, "add", f"posts/scheduled/{made}.md")  # reviewed
    git(a.repo, "commit", "-q", "-m", "the feed's post, reviewed")
    ok(a.cli("send", "--once"))
    assert a.is_in(made, "sent") and len(a.records("x")) == 1


def test_send_once_commits_the_post_a_feed_made_in_its_pass(
    remote: Remote, clones: Callable[..., Host]
) -> None:
    """autocommit, no review: the post `send --once` made of a feed's new entry is committed
    (and pushed) by the same run, so other hosts learn of it before it is sent."""
    from plurspool.feeds import post_id
    from tests.feedserver import feed_server, rss

    queue = '[queues.default]\nslots = ["daily 09:00"]\n[feeds]\npoll_interval = "1s"\n'
    a = clones("a", queue + "[git]\nautocommit = true\npush = true\n")
    old = [("https://blog.example/1", "One", "")]
    new = ("https://blog.example/2", "Two", "")
    with feed_server() as server:
        url = server.url("/feed")
        server.docs["/feed"] = (rss(old), "application/rss+xml")
        ok(a.cli("feed", "add", url))
        server.docs["/feed"] = (rss([new, *old]), "application/rss+xml")
        wait_for(lambda: ok(a.cli("send", "--once")) and a.ids("scheduled"), 20, "the post")
    made = post_id(url, new[0])
    assert git(a.repo, "status", "--porcelain", "posts/scheduled").stdout == ""
    pushed = git(remote.origin, "ls-tree", "--name-only", "main", "posts/scheduled/").stdout
    assert f"posts/scheduled/{made}.md" in pushed.split()
