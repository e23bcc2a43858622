"""`[git]` as a user meets it (plurspool(1), "Reviewing and syncing with git"): a bare remote, an
author's clone, and a sending host whose spool is `posts/` inside its clone; the installed
`plurspool` (`send --once`, `list`, `show`, the daemon) as subprocesses, real git throughout."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from plurspool.spool import STATES
from tests.daemon_helpers import Sandbox, post_text
from tests.helpers import Run, git

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
]

IDENTITY = {
    "GIT_AUTHOR_NAME": "host",
    "GIT_AUTHOR_EMAIL": "host@example.invalid",
    "GIT_COMMITTER_NAME": "host",
    "GIT_COMMITTER_EMAIL": "host@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@dataclass
class Host(Sandbox):
    """A sandbox whose spool is `repo/posts`: not the top of its repository."""

    @property
    def repo(self) -> Path:
        return self.base / "repo"

    @property
    def spool(self) -> Path:
        return self.repo / "posts"


@dataclass
class Remote:
    origin: Path  # the bare repository
    author: Path  # a clone where posts are written and reviewed


def ok(run: Run) -> Run:
    assert run.code == 0, f"exit {run.code}\nstdout: {run.out}\nstderr: {run.err}"
    return run


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    """A bare remote whose main holds a spool's layout in `posts/` (a `.keep` a state)."""
    origin, author = tmp_path / "origin.git", tmp_path / "author"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(tmp_path, "clone", "-q", str(origin), str(author))
    for state in STATES:
        (author / "posts" / state).mkdir(parents=True)
        (author / "posts" / state / ".keep").touch()
    (author / "notes.txt").write_text("notes\n")
    (author / ".gitignore").write_text("posts/tmp/\n")
    git(author, "add", "-A")
    git(author, "commit", "-q", "-m", "a spool")
    git(author, "push", "-q", "origin", "HEAD:main")
    return Remote(origin, author)


@pytest.fixture
def host(tmp_path: Path, remote: Remote) -> Iterator[Callable[..., Host]]:
    made: list[Host] = []

    def make(**git_keys: bool | str) -> Host:
        base = tmp_path / "host"
        git(tmp_path, "clone", "-q", str(remote.origin), str(base / "repo"))
        box = Host(base)
        box.env.update(IDENTITY)
        box.exec_account("x")
        box.extra = "[git]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in git_keys.items())
        box.write_config()
        made.append(box)
        return box

    yield make
    for box in made:
        box.cleanup()


def _toml(v: bool | str) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else f'"{v}"'


def write_post(repo: Path, post_id: str, body: str, at: float, state: str = "scheduled") -> None:
    (repo / "posts" / state / f"{post_id}.md").write_text(post_text(body, schedule=iso_z(at)))


def iso_z(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def publish(repo: Path, message: str, *paths: str) -> None:
    git(repo, "add", "--", *paths)
    git(repo, "commit", "-q", "-m", message)
    git(repo, "push", "-q")


def held_of(box: Host) -> dict[str, str | None]:
    return {v["id"]: v["held"] for v in ok(box.cli("list", "--json")).json()}


# -- send_only_committed ---------------------------------------------------------------------


def test_a_post_only_on_a_feature_branch_is_held_and_sent_after_merge_and_pull(
    remote: Remote, host: Callable[..., Host]
) -> None:
    author = remote.author
    git(author, "switch", "-q", "-c", "feature")
    write_post(author, "launch", "Reviewed in a pull request", time.time() - 5)
    git(author, "add", "posts/scheduled/launch.md")
    git(author, "commit", "-q", "-m", "launch post")
    git(author, "push", "-q", "-u", "origin", "feature")

    box = host(send_only_committed=True, branch="main")
    git(box.repo, "switch", "-q", "feature")  # the host previews the pull request
    ok(box.cli("send", "--once"))
    assert box.is_in("launch", "scheduled") and box.records("x") == []
    assert held_of(box) == {"launch": "not committed on main"}
    listed = ok(box.cli("list"))
    assert "(held)" in listed.out and "launch: held: not committed on main" in listed.err
    assert "held:      not committed on main" in ok(box.cli("show", "launch")).out

    git(author, "switch", "-q", "main")
    git(author, "merge", "-q", "--no-ff", "-m", "merge launch", "feature")
    git(author, "push", "-q", "origin", "main")
    git(box.repo, "switch", "-q", "main")
    git(box.repo, "pull", "-q", "--rebase")
    assert held_of(box) == {"launch": None}
    ok(box.cli("send", "--once"))
    assert box.is_in("launch", "sent")
    assert [r["stdin"]["parts"] for r in box.records("x")] == [["Reviewed in a pull request"]]


def test_an_uncommitted_edit_holds_a_post_until_it_is_undone_or_committed(
    remote: Remote, host: Callable[..., Host]
) -> None:
    write_post(remote.author, "q", "As reviewed", time.time() - 5)
    publish(remote.author, "q", "posts/scheduled/q.md")
    box = host(send_only_committed=True)
    path = box.spool / "scheduled" / "q.md"
    path.write_text(path.read_text().replace("As reviewed", "Not as reviewed"))
    ok(box.cli("send", "--once"))
    assert box.is_in("q", "scheduled") and box.records("x") == []
    assert held_of(box) == {"q": "changed since it was committed on main"}
    git(box.repo, "checkout", "--", "posts/scheduled/q.md")
    ok(box.cli("send", "--once"))
    assert box.is_in("q", "sent")
    assert [r["stdin"]["parts"] for r in box.records("x")] == [["As reviewed"]]


def test_posting_now_an_unreviewed_post_says_it_is_held(
    remote: Remote, host: Callable[..., Host]
) -> None:
    box = host(send_only_committed=True)
    run = box.cli("post", "--json", "Straight out?")  # not sent: exit 1, as a deferred post
    assert run.code == 1 and run.json()["state"] == "scheduled"
    assert run.json()["held"] == "not committed on main"
    text = box.cli("post", "Straight out, again?")
    assert text.code == 1
    assert "not sent yet: held: not committed on main; it stays queued" in text.err
    assert box.records("x") == []


def test_a_spool_in_no_repository_with_the_key_set_does_not_start(tmp_path: Path) -> None:
    box = Sandbox(tmp_path / "plain")
    box.exec_account("x")
    box.extra = "[git]\nsend_only_committed = true\n"
    box.write_config()
    run = box.cli("send", "--once")
    assert run.code != 0 and "Traceback" not in run.err
    assert "is not in a git repository" in run.err and "git init" in run.err


# -- autocommit and push ---------------------------------------------------------------------


@pytest.mark.realtime
def test_autocommit_commits_exactly_the_moved_paths_and_leaves_the_users_changes(
    remote: Remote, host: Callable[..., Host]
) -> None:
    write_post(remote.author, "a", "Goes out", time.time() - 5)
    publish(remote.author, "a", "posts/scheduled/a.md")
    box = host(autocommit=True)
    head = git(box.repo, "rev-parse", "HEAD").stdout.strip()
    (box.repo / "notes.txt").write_text("an unrelated edit\n")  # dirty, not staged
    (box.repo / "staged.txt").write_text("mine\n")
    git(box.repo, "add", "staged.txt")  # staged, not to be committed by anyone but the user
    daemon = box.start()
    daemon.wait_event("git", "action=commit", timeout=30)
    daemon.stop()
    assert box.is_in("a", "sent")
    assert git(box.repo, "rev-parse", "HEAD~1").stdout.strip() == head
    changed = git(box.repo, "show", "--name-only", "--format=%s", "HEAD").stdout.split()
    assert changed == ["plurspool:", "sent", "a", "posts/scheduled/a.md", "posts/sent/a.md"]
    status = sorted(git(box.repo, "status", "--porcelain").stdout.splitlines())
    assert status == [" M notes.txt", "A  staged.txt"]


def slow_hook(origin: Path, seconds: float, *, fail: bool = False) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\nsleep {seconds}\nexit {1 if fail else 0}\n")
    hook.chmod(0o755)


@pytest.mark.realtime
def test_a_refused_push_is_pulled_rebased_and_pushed_and_no_send_waits_for_it(
    remote: Remote, host: Callable[..., Host]
) -> None:
    box = host(autocommit=True, push=True)
    # The remote moves on after the host cloned it; its pushes take four seconds.
    (remote.author / "notes.txt").write_text("moved on\n")
    publish(remote.author, "elsewhere", "notes.txt")
    slow_hook(remote.origin, 4)
    now = time.time()
    box.deliver("scheduled", "a", post_text("first", schedule=iso_z(now - 1)))
    box.deliver("scheduled", "b", post_text("second", schedule=iso_z(now + 3)))
    daemon = box.start()
    daemon.wait_event("sent", "id=b", timeout=30)
    sent_b = next(t for t, line in daemon.lines if "sent" in line and "id=b" in line)
    assert sent_b < now + 3 + 2.0, "b waited"  # on time, while a's push is still in the hook
    daemon.wait_event("git", "action=push", "attempt=2", timeout=60)
    pushed = next(t for t, line in daemon.lines if "action=push" in line and "attempt=2" in line)
    assert pushed > sent_b
    refused = daemon.events("git")
    assert any("action=push" in line and "attempt=1" in line for line in refused)
    daemon.until(lambda: "sent b" in remote_log(remote), 60, "b's commit pushed")
    daemon.stop()
    log = remote_log(remote)
    assert "elsewhere" in log and "plurspool: sent a" in log
    assert box.is_in("a", "sent") and box.is_in("b", "sent")


def remote_log(remote: Remote) -> str:
    return git(remote.origin, "log", "--format=%s", "main").stdout


@pytest.mark.realtime
def test_a_failing_remote_is_logged_and_sends_go_on(
    remote: Remote, host: Callable[..., Host]
) -> None:
    box = host(autocommit=True, push=True)
    slow_hook(remote.origin, 0, fail=True)
    box.deliver("scheduled", "a", post_text("first", schedule=iso_z(time.time() - 1)))
    daemon = box.start()
    daemon.wait_event("git", "action=push", "pushing next pass", timeout=60)
    box.deliver("scheduled", "b", post_text("second", schedule=iso_z(time.time())))
    daemon.wait_event("sent", "id=b", timeout=10)
    daemon.stop()
    assert box.is_in("a", "sent") and box.is_in("b", "sent")
    assert "plurspool: sent a" in git(box.repo, "log", "--format=%s").stdout


# -- contrib ---------------------------------------------------------------------------------


def test_the_ci_recipe_fails_a_pull_request_with_a_post_the_sender_would_refuse(
    tmp_path: Path,
) -> None:
    import shlex
    import subprocess

    import yaml

    from tests.helpers import BIN, ROOT

    workflow = yaml.safe_load((ROOT / "contrib" / "ci-check-posts.yml").read_text())
    command = workflow["jobs"]["check"]["steps"][-1]["run"]
    repo = tmp_path / "checkout"  # the pull request's tree, as actions/checkout leaves it
    (repo / "posts" / "scheduled").mkdir(parents=True)
    (repo / "plurspool-ci.toml").write_text('[accounts.mastodon]\ninstance = "https://a.example"\n')
    env = {**Sandbox(tmp_path / "ci").env, **workflow["env"], "SPOOL": "posts"}

    def ci() -> subprocess.CompletedProcess[str]:
        argv = shlex.split(command.replace('"$SPOOL"', env["SPOOL"]))
        assert argv[0] == "plurspool"
        return subprocess.run(
            [str(BIN / "plurspool"), *argv[1:]],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    post = repo / "posts" / "scheduled" / "p.md"
    post.write_text(post_text("fine", schedule="2030-01-01T09:00:00Z", platforms=["mastodon"]))
    assert ci().returncode == 0
    post.write_text(post_text("who?", schedule="2030-01-01T09:00:00Z", platforms=["nobody"]))
    refused = ci()
    assert refused.returncode == 3 and "unknown account nobody" in refused.stdout
