"""`[git]` in process (gitsync.py): held until committed, autocommit of exactly a pass's paths,
never during a rebase, one git run per pass; against a real repository, with a fake clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from plurspool import gitsync
from plurspool.errors import ConfigError, GitError
from plurspool.sender import PassResult, Sender
from tests.daemon_helpers import Sandbox, World, in_process, iso, post_text
from tests.helpers import git

IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True)
def _identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process git (plurspool's own calls) as a user with only an identity configured."""
    for k, v in IDENTITY.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def world(tmp_path: Path) -> Callable[..., World]:
    """A sandbox whose spool is `spool/` inside a repository at its base (not the repo's root),
    with `[git]` set as asked and one first commit."""

    def make(**keys: object) -> World:
        box = Sandbox(tmp_path)
        box.exec_account("x")
        box.extra = "[git]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in keys.items())
        git(tmp_path, "init", "-q")
        (tmp_path / ".gitignore").write_text("env/\n*.jsonl\n*.json\nconfig.toml\n")
        git(tmp_path, "add", ".gitignore")
        git(tmp_path, "commit", "-q", "-m", "start")
        return in_process(box)

    return make


def _toml(v: object) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else f'"{v}"'


def commit(w: World, *paths: str, message: str = "review") -> None:
    git(w.box.base, "add", "--", *(f"spool/{p}" for p in paths))
    git(w.box.base, "commit", "-q", "-m", message)


def due_post(w: World, post_id: str, body: str = "hello", state: str = "scheduled") -> None:
    w.box.deliver(state, post_id, post_text(body, schedule=iso(w.now - 5)))


def test_without_written_forgets_exactly_the_keys_plurspool_writes() -> None:
    from plurspool.post import WRITTEN_KEYS, parse, without_written

    written = {
        "schedule": "2026-12-01T09:00:00Z",
        "queue": "default",
        "repeat": "FREQ=DAILY",
        "skipped": "[2026-11-30T09:00:00Z]",
        "card": "{url: 'https://example.com'}",
        "results": "{x: {id: '1', attempts: 1}}",
        "attempts": "1",
        "retried": "abc123",
    }
    assert sorted(written) == sorted(WRITTEN_KEYS)
    mine = "cw: spoilers\nlanguage: en\n"
    full = parse(
        ("---\n" + mine + "".join(f"{k}: {v}\n" for k, v in written.items()) + "---\nhi\n").encode()
    )
    bare = parse(("---\n" + mine + "---\nhi\n").encode())
    assert full != bare and without_written(full) == without_written(bare) == bare
    assert without_written(parse(b"---\ncw: other\n---\nhi\n")) != bare


# -- send_only_committed ---------------------------------------------------------------------


def test_an_uncommitted_post_is_held_and_says_why_until_it_is_committed(
    world: Callable[..., World],
) -> None:
    w = world(send_only_committed=True)
    due_post(w, "a")
    w.box.deliver("scheduled", "later", post_text("not due", schedule=iso(w.now + 3600)))
    assert w.app.views.view(w.app.items.find("later"))["held"] is None  # judged when due
    result = w.run()
    assert result.sent == [] and result.held == {"a": "not committed on main"}
    assert result.wake is not None and result.wake <= w.now + gitsync.RECHECK
    assert w.box.is_in("a", "scheduled") and w.box.records("x") == []
    view = w.app.views.view(w.app.items.find("a"))
    assert view["held"] == "not committed on main"
    assert " held " in w.log.getvalue() and "not committed on main" in w.log.getvalue()
    commit(w, "scheduled/a.md")
    assert w.app.views.view(w.app.items.find("a"))["held"] is None
    assert w.run().sent == ["a"]
    assert w.box.is_in("a", "sent")


def test_list_json_says_held_each_time_while_not_yet_due_posts_come_from_its_listing(
    world: Callable[..., World],
) -> None:
    w = world(send_only_committed=True)
    due_post(w, "a")
    w.box.deliver("scheduled", "later", post_text("not due", schedule=iso(w.now + 3600)))

    def held() -> dict[str, str | None]:
        lines = w.app.views.view_lines(("scheduled",)).splitlines()
        return {v["id"]: v["held"] for v in map(json.loads, lines)}

    assert held() == {"a": "not committed on main", "later": None}
    assert held() == {"a": "not committed on main", "later": None}  # the listing, made
    commit(w, "scheduled/a.md")
    assert held() == {"a": None, "later": None}
    git(w.box.base, "rm", "-q", "--cached", "spool/scheduled/a.md")
    git(w.box.base, "commit", "-q", "-m", "unreviewed again")
    assert held() == {"a": "not committed on main", "later": None}
    w.tick(3600)  # `later` comes due: from now on git judges it too
    assert held() == {"a": "not committed on main", "later": "not committed on main"}


def test_an_edit_after_the_commit_holds_the_post_what_plurspool_writes_does_not(
    world: Callable[..., World],
) -> None:
    w = world(send_only_committed=True)
    w.box.deliver("new", "a", post_text("hello", schedule="now"))
    w.box.deliver("new", "b", post_text("reviewed", schedule="now"))
    commit(w, "new/a.md", "new/b.md")
    # Intake rewrites both (the time resolved, in scheduled/): still the committed posts.
    assert sorted(w.run().sent) == ["a", "b"]
    w.box.deliver("scheduled", "c", post_text("first", schedule=iso(w.now - 5)))
    commit(w, "scheduled/c.md")
    path = w.box.spool / "scheduled" / "c.md"
    path.write_text(path.read_text().replace("first", "second"))
    assert w.run().held == {"c": "changed since it was committed on main"}
    path.write_text(path.read_text().replace("second", "first"))
    assert w.run().sent == ["c"]


def test_an_edit_between_the_gates_look_and_the_send_is_not_sent(
    world: Callable[..., World],
) -> None:
    w = world(send_only_committed=True)
    due_post(w, "a", "reviewed")
    commit(w, "scheduled/a.md")
    judged = w.app.items.find("a")  # as the daemon's index holds it: the committed version
    path = w.box.spool / "scheduled" / "a.md"
    path.write_text(path.read_text().replace("reviewed", "slipped in"))
    result = PassResult()
    w.sender.send_due([judged], result)
    assert result.sent == [] and w.box.records("x") == []
    assert w.run().held == {"a": "changed since it was committed on main"}


def test_a_committed_time_is_reviewed_too(world: Callable[..., World]) -> None:
    w = world(send_only_committed=True)
    w.box.deliver("scheduled", "a", post_text("hi", schedule=iso(w.now + 3600)))
    commit(w, "scheduled/a.md")
    path = w.box.spool / "scheduled" / "a.md"
    path.write_text(post_text("hi", schedule=iso(w.now - 5)))  # moved earlier, unreviewed
    assert w.run().held == {"a": "changed since it was committed on main"}


def test_the_branch_key_names_the_reviewed_branch(world: Callable[..., World]) -> None:
    w = world(send_only_committed=True, branch="reviewed")
    due_post(w, "a")
    assert w.run().held == {"a": f"no branch reviewed in {w.box.base}"}
    git(w.box.base, "branch", "reviewed", "main")
    commit(w, "scheduled/a.md")  # on main, not on `reviewed`
    assert w.run().held == {"a": "not committed on reviewed"}
    git(w.box.base, "branch", "-f", "reviewed", "main")
    assert w.run().sent == ["a"]


def test_a_spool_outside_any_repository_is_a_start_error_with_a_hint(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.extra = "[git]\nsend_only_committed = true\n"
    with pytest.raises(ConfigError) as err:
        in_process(box)
    assert "not in a git repository" in err.value.message
    assert "git init" in err.value.hint and "send_only_committed" in err.value.hint


def test_without_git_installed_the_error_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Sandbox(tmp_path)
    box.extra = "[git]\nautocommit = true\n"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigError) as err:
        in_process(box)
    assert err.value.message == "git.autocommit is set but git is not installed (no git on PATH)"


def test_one_git_run_per_pass_whatever_the_number_of_posts(
    world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world(send_only_committed=True)
    for n in range(30):
        due_post(w, f"p{n:02}", f"post {n}")
    commit(w, *(f"scheduled/p{n:02}.md" for n in range(0, 30, 2)))
    calls: list[str] = []
    real = gitsync.run

    def counted(cwd: Path, *args: str, **kw: object) -> bytes:
        calls.append(args[0])
        return real(cwd, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(gitsync, "run", counted)
    result = w.run()
    assert len(result.sent) == 15 and len(result.held) == 15
    assert calls == ["rev-parse", "ls-tree", "cat-file"]
    calls.clear()
    w.run()  # the branch did not move and every blob is known: one rev-parse
    assert calls == ["rev-parse"]


# -- autocommit ------------------------------------------------------------------------------


def committed_paths(w: World, rev: str = "HEAD") -> list[str]:
    out = git(w.box.base, "show", "--name-only", "--format=", rev).stdout
    return sorted(out.split())


def wait_committed(w: World) -> None:
    assert w.sender.git.committer is not None
    assert w.sender.git.committer.drain(60)  # the worker's commit, finished


def test_autocommit_commits_exactly_the_moved_paths_and_leaves_the_rest_alone(
    world: Callable[..., World],
) -> None:
    w = world(autocommit=True)
    due_post(w, "a")
    due_post(w, "b", state="new")
    commit(w, "scheduled/a.md", "new/b.md")
    (w.box.base / "notes.txt").write_text("mine\n")
    git(w.box.base, "add", "notes.txt")  # the user's staged change
    # Dirty: and it ignores the reasons beside failed posts, which autocommit must respect.
    (w.box.base / ".gitignore").write_text("env/\n*.jsonl\n*.json\nconfig.toml\n*.error\n")
    w.box.deliver("new", "bad", "---\nschedule: [\n---\nbroken\n")
    due_post(w, "draft", state="drafts")  # an unrelated untracked post
    result = w.run()
    assert sorted(result.sent) == ["a", "b"] and result.failed == ["bad"]
    wait_committed(w)
    assert committed_paths(w) == [
        "spool/failed/bad.md",
        "spool/new/b.md",
        "spool/scheduled/a.md",
        "spool/sent/a.md",
        "spool/sent/b.md",
    ]
    assert (w.box.spool / "failed" / "bad.error").exists()  # written, ignored, not committed
    subject = git(w.box.base, "log", "-1", "--format=%s").stdout.strip()
    assert subject == "plurspool: failed bad; sent a, b"
    status = git(w.box.base, "status", "--porcelain").stdout.splitlines()
    assert "A  notes.txt" in status  # still staged, not committed
    assert " M .gitignore" in status
    assert "?? spool/drafts/" in status
    assert not any("spool/sent" in line or "spool/scheduled" in line for line in status)


def test_nothing_is_committed_during_a_rebase_and_it_is_committed_after(
    world: Callable[..., World],
) -> None:
    w = world(autocommit=True)
    due_post(w, "a")
    commit(w, "scheduled/a.md")
    head = git(w.box.base, "rev-parse", "HEAD").stdout
    merge_head = Path(git(w.box.base, "rev-parse", "--absolute-git-dir").stdout.strip())
    (merge_head / "rebase-merge").mkdir()
    assert w.run().sent == ["a"]
    wait_committed(w)
    assert git(w.box.base, "rev-parse", "HEAD").stdout == head
    assert "a rebase is in progress" in w.log.getvalue()
    (merge_head / "rebase-merge").rmdir()
    assert w.run().sent == []  # a pass that changed nothing commits what is left
    wait_committed(w)
    assert committed_paths(w) == ["spool/scheduled/a.md", "spool/sent/a.md"]


def test_autocommit_never_commits_a_post_that_is_held(world: Callable[..., World]) -> None:
    w = world(autocommit=True, send_only_committed=True)
    w.box.deliver("new", "unreviewed", post_text("not yet", schedule=iso(w.now - 5)))
    w.box.deliver("new", "ok", post_text("fine", schedule=iso(w.now - 5)))
    commit(w, "new/ok.md")
    result = w.run()
    assert result.sent == ["ok"] and list(result.held) == ["unreviewed"]
    wait_committed(w)
    assert committed_paths(w) == ["spool/new/ok.md", "spool/sent/ok.md"]
    assert git(w.box.base, "ls-files", "spool/scheduled").stdout == ""


def test_a_git_failure_is_logged_and_sends_go_on(world: Callable[..., World]) -> None:
    w = world(autocommit=True)
    index_lock = Path(git(w.box.base, "rev-parse", "--absolute-git-dir").stdout.strip())
    (index_lock / "HEAD.lock").write_text("")  # someone else is moving HEAD
    due_post(w, "a")
    assert w.run().sent == ["a"]
    wait_committed(w)
    assert "action=commit" in w.log.getvalue() and "git update-ref failed" in w.log.getvalue()


def test_a_commit_message_names_the_posts_where_they_are_now(tmp_path: Path) -> None:
    paths = ["p/sent/a.md", "p/scheduled/a.md", "p/failed/b.md", "p/failed/b.error"]
    for path in ("p/sent/a.md", "p/failed/b.md", "p/failed/b.error"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    message = gitsync.commit_message(sorted(paths), "p/", tmp_path)
    assert message.splitlines()[0] == "plurspool: failed b; sent a"
    assert message.splitlines()[2:] == sorted(paths)


def test_sender_made_without_a_repository_but_without_git_keys_works(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    w = in_process(box)
    assert isinstance(w.sender, Sender) and w.sender.git.gate is None
    assert w.app.spool.touched is None  # nothing collected for a committer


def test_a_remote_password_in_a_git_message_never_reaches_the_log(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    url = "https://me:s3cret-token@127.0.0.1:9/x.git"
    git(tmp_path, "remote", "add", "origin", url)
    with pytest.raises(GitError) as err:
        gitsync.run(tmp_path, "fetch", "-q", "origin", timeout=20)
    assert "s3cret" not in err.value.message and "me:" not in err.value.message
    # Whatever a git (or a helper, or a hook) prints with a URL's password in it is cut too.
    said = "fatal: unable to access 'https://me:s3cret-token@example.invalid/x.git/'"
    git(tmp_path, "config", "alias.say", f'!echo "{said}" >&2; exit 1')
    with pytest.raises(GitError) as err:
        gitsync.run(tmp_path, "say")
    assert err.value.message == (
        "git say failed: fatal: unable to access 'https://***@example.invalid/x.git/'"
    )
