"""`plurspool check` judges a file as the sender would where it is (plurspool(1), `check`).

Each test runs `plurspool check` (and, where the sender decides, `send --once`) as a user does, in
subprocesses, and holds check's words against the reason the sender writes into failed/: one rule,
so one text. The pre-commit hook runs in a real git repository.
"""

from __future__ import annotations

import calendar
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import Sandbox, iso, post_text, wait_for
from tests.helpers import ROOT, Run, git, needs_git

HOUR = 3600.0


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path / "a")
    sandbox.exec_account("x")
    sandbox.write_config()
    try:
        yield sandbox
    finally:
        sandbox.cleanup()


def problems(run: Run) -> dict[str, str]:
    """check's text output: path -> its one problem (warnings left out)."""
    out = {}
    for line in run.out.splitlines():
        path, problem = line.split(": ", 1)
        if not problem.startswith("warning: "):
            assert path not in out, f"{path} has more than one problem: {run.out}"
            out[path] = problem
    return out


def reason(box: Sandbox, failed_id: str) -> str:
    return (box.spool / "failed" / f"{failed_id}.error").read_text(encoding="utf-8").strip()


def renamed(box: Sandbox, post_id: str) -> str:
    """The ID a refused file got in failed/ when its own was taken: ID.NEWID."""
    (path,) = (box.spool / "failed").glob(f"{post_id}.*.md")
    return path.name[:-3]


# -- the sender's rule, in check --------------------------------------------------------------


@pytest.mark.parametrize("other", ["scheduled", "drafts", "sent"])
def test_a_new_post_whose_id_is_taken_is_a_problem_in_the_words_of_intake(
    box: Sandbox, other: str
) -> None:
    box.deliver(other, "launch", post_text("the launch", schedule=iso(time.time() + 24 * HOUR)))
    newcomer = post_text("launch, second go").encode()
    (box.spool / "new" / "launch.md").write_bytes(newcomer)
    run = box.cli("check")
    assert run.code == 3, run
    said = problems(run)
    problem = said.pop(str(box.spool / "new" / "launch.md"))
    assert said == {}
    assert f"a post with ID launch is already in {other}/" in problem
    sent = box.cli("send", "--once")
    assert sent.code == 0, sent.err
    failed_id = renamed(box, "launch")
    assert (box.spool / "failed" / f"{failed_id}.md").read_bytes() == newcomer
    assert reason(box, failed_id) == problem
    assert box.records("x") == []


@pytest.mark.parametrize("finished", ["sent", "failed"])
@pytest.mark.parametrize("late", [60.0, 400 * 24 * HOUR], ids=["a-minute-late", "a-year-late"])
def test_a_late_copy_of_a_finished_post_is_a_problem_and_never_goes_out(
    box: Sandbox, finished: str, late: float
) -> None:
    """What a "keep mine" merge leaves on a host whose ledger never saw the post: a copy in
    scheduled/ of a post another host finished. The sender must not send it again."""
    due = iso(time.time() - late)
    done = (
        f"---\nschedule: {due}\nresults:\n  x: {{id: '41', attempts: 1}}\nattempts: 1\n---\n"
        "We launch today.\n"
    )
    box.deliver(finished, "launch", done)
    mine = post_text("We launch today, edited on this laptop.", schedule=due).encode()
    (box.spool / "scheduled" / "launch.md").write_bytes(mine)
    run = box.cli("check")
    assert run.code == 3, run
    problem = problems(run)[str(box.spool / "scheduled" / "launch.md")]
    assert f"a post with ID launch is already finished in {finished}/" in problem
    sent = box.cli("send", "--once")
    assert sent.code == 0, sent.err
    assert box.records("x") == [], "a late copy went out"
    failed_id = renamed(box, "launch")
    assert (box.spool / "failed" / f"{failed_id}.md").read_bytes() == mine
    assert reason(box, failed_id) == problem
    assert (box.spool / finished / "launch.md").read_text(encoding="utf-8") == done
    assert box.ids("scheduled") == set()


@pytest.mark.slow
def test_new_files_are_judged_by_intakes_rule(box: Sandbox) -> None:
    """Every file in new/ that intake refuses is a problem, in the same words; every file it
    takes is fine: a few minutes late is within max_lateness."""
    size = 1024 * 1024
    files = {
        "a-bit-late": post_text("five minutes late", schedule=iso(time.time() - 300)).encode(),
        "no-time": b"as soon as possible\n",
        "later": post_text("tomorrow", schedule="tomorrow 9am").encode(),
        "too-late": post_text("seven hours late", schedule=iso(time.time() - 7 * HOUR)).encode(),
        "bad-time": post_text("when?", schedule="next blursday").encode(),
        "sent-copy": b"---\nresults:\n  x: {id: '1'}\nattempts: 1\n---\nagain\n",
        # 1 MiB exactly is allowed, but not once its time is written in.
        "full": b"---\n---\n" + b"a" * (size - 9) + b"\n",
        "unknown": b"---\nplatforms: [nowhere]\n---\nhi\n",
    }
    for name, data in files.items():
        (box.spool / "new" / f"{name}.md").write_bytes(data)
    run = box.cli("check", "--json")
    assert run.code == 3, run
    reports = {r["id"]: r for r in run.json()}
    assert set(reports) == set(files)
    fine = {"a-bit-late", "no-time", "later"}
    for name in fine:
        assert reports[name]["problems"] == [], reports[name]
    sent = box.cli("send", "--once")
    assert sent.code == 0, sent.err
    assert box.ids("failed") == set(files) - fine
    for name in set(files) - fine:
        assert reports[name]["problems"] == [reason(box, name)], name
        assert (box.spool / "failed" / f"{name}.md").read_bytes() == files[name]
    assert box.ids("sent") == {"a-bit-late", "no-time"}
    assert box.ids("scheduled") == {"later"}


def test_scheduled_files_found_due_too_late_are_judged_by_the_senders_rule(box: Sandbox) -> None:
    """A post synced into scheduled/ long after its time is failed by the sender on its first
    sight; `check` on the sending host says so in the same words, and leaves alone one a few
    minutes late."""
    files = {
        "synced-late": post_text("two days late", schedule=iso(time.time() - 48 * HOUR)),
        "a-bit-late": post_text("five minutes late", schedule=iso(time.time() - 300)),
    }
    for name, text in files.items():
        box.deliver("scheduled", name, text)
    run = box.cli("check", "--json")
    assert run.code == 3, run
    reports = {r["id"]: r for r in run.json()}
    assert reports["a-bit-late"]["problems"] == []
    assert box.cli("send", "--once").code == 0
    assert box.ids("failed") == {"synced-late"}
    assert reports["synced-late"]["problems"] == [reason(box, "synced-late")]
    assert box.ids("sent") == {"a-bit-late"}


@pytest.mark.realtime
def test_a_cancelled_post_whose_time_has_passed_is_a_fine_draft(box: Sandbox) -> None:
    """The README tour: post, cancel; drafts are never sent, so their time cannot be late."""
    run = box.cli("post", "--json", "-s", "2s", "Good morning")
    assert run.code == 0, run.err
    post = run.json()
    assert box.cli("cancel", post["id"]).code == 0
    at = calendar.timegm(time.strptime(post["scheduled_at"], "%Y-%m-%dT%H:%M:%SZ"))
    wait_for(lambda: time.time() > at + 1, 10, "the draft's time to pass")
    run = box.cli("check")
    assert run.code == 0, run
    path = box.spool / "drafts" / f"{post['id']}.md"
    [warning] = run.out.splitlines()
    assert warning.startswith(f"{path}: warning: line 2: its time ")
    assert f"has passed; `plurspool schedule {post['id']} WHEN` queues it" in warning
    assert box.cli("schedule", post["id"], "in 3 days").code == 0
    assert box.cli("check").out == ""


def test_a_mistyped_key_and_a_tab_are_explained_with_their_line(box: Sandbox) -> None:
    typo = box.spool / "new" / "typo.md"
    typo.write_text("---\nplatform: [x]\n---\nhi\n")
    tab = box.spool / "drafts" / "tab.md"
    tab.write_text("---\nmedia:\n\t- path: media/cat.jpg\n---\nhi\n")
    run = box.cli("check")
    assert run.code == 3
    assert problems(run) == {
        str(typo): "line 2: unknown key `platform` (did you mean `platforms`?)",
        str(tab): "line 3: YAML forbids tabs for indentation; indent this line with spaces",
    }


def test_a_name_the_sender_never_reads_is_no_problem_by_path(box: Sandbox) -> None:
    """The hook passes what a commit stages, an editor's `.name.md` lock or backup included:
    in the spool, such a name is judged as the sender judges it, by never reading it."""
    lock = box.spool / "new" / ".#launch.md"
    lock.symlink_to("user@host.1234")
    backup = box.spool / "scheduled" / "launch.md~"
    backup.write_text("---\nschedule: [\n---\nhalf an edit\n")
    run = box.cli("check", "--json", str(lock), str(backup))
    assert run.code == 0, run
    for report in run.json():
        assert report["problems"] == []
        assert report["warnings"] == [
            "the sender never reads a file by this name (not *.md, or an editor's or sync "
            "tool's temporary file)"
        ]
    outside = box.base / "launch.md~"
    outside.write_text("---\nschedule: [\n---\nx\n")
    assert box.cli("check", str(outside)).code == 3  # outside the spool: its text is judged


# -- the pre-commit hook ----------------------------------------------------------------------


def with_hook(box: Sandbox, repo: Path) -> None:
    (repo / ".gitignore").write_text("tmp/\n")
    hook = repo / ".git" / "hooks" / "pre-commit"
    shutil.copy(ROOT / "contrib" / "git-hooks" / "pre-commit", hook)
    hook.chmod(0o755)


def subjects(box: Sandbox, repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s", env=box.env).stdout.splitlines()


@needs_git
def test_the_hook_refuses_a_new_post_whose_id_is_queued(box: Sandbox) -> None:
    repo = box.spool
    git(repo, "init", "-q", env=box.env)
    with_hook(box, repo)
    box.deliver("scheduled", "launch", post_text("launch", schedule=iso(time.time() + HOUR)))
    git(repo, "add", "-A", env=box.env)
    git(repo, "commit", "-q", "-m", "queue the launch", env=box.env)
    (repo / "new" / "launch.md").write_text(post_text("launch, from my phone"))
    git(repo, "add", "new/launch.md", env=box.env)
    refused = git(repo, "commit", "-q", "-m", "again", check=False, env=box.env)
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr  # git shows the hook's output on stderr
    assert "new/launch.md: a post with ID launch is already in scheduled/" in said
    assert subjects(box, repo) == ["queue the launch"]


@pytest.mark.slow
@needs_git
def test_the_hook_refuses_a_keep_mine_merge_of_a_post_sent_elsewhere(
    box: Sandbox, tmp_path: Path
) -> None:
    """Host A sends the launch while the laptop edits it; the laptop's pull is a modify/delete
    conflict, and "keep mine" leaves a copy that A's sender would never send."""
    a = box.spool
    git(a, "init", "-q", env=box.env)
    with_hook(box, a)
    box.deliver("scheduled", "launch", post_text("We launch today.", schedule=iso(time.time())))
    git(a, "add", "-A", env=box.env)
    git(a, "commit", "-q", "-m", "queue the launch", env=box.env)
    laptop = Sandbox(tmp_path / "laptop")
    laptop.exec_account("x")
    laptop.write_config()
    b = laptop.spool
    shutil.rmtree(b)
    git(tmp_path, "clone", "-q", str(a), str(b), env=box.env)
    with_hook(box, b)
    for d in ("tmp", "new", "drafts", "sent", "failed"):
        (b / d).mkdir(exist_ok=True)
    assert box.cli("send", "--once").code == 0
    assert box.ids("sent") == {"launch"}
    git(a, "add", "-A", env=box.env)
    git(a, "commit", "-q", "-m", "sent", env=box.env)
    edited = post_text("We launch today!", schedule=iso(time.time() + 3600))
    (b / "scheduled" / "launch.md").write_text(edited)
    git(b, "commit", "-q", "-am", "edit the launch", env=laptop.env)
    pull = git(b, "pull", "-q", "--no-rebase", "origin", "main", check=False, env=laptop.env)
    assert "CONFLICT (modify/delete)" in pull.stdout + pull.stderr
    git(b, "add", "scheduled/launch.md", env=laptop.env)  # keep mine
    refused = git(b, "commit", "-q", "--no-edit", check=False, env=laptop.env)
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert "scheduled/launch.md: a post with ID launch is already finished in sent/" in said
    git(b, "rm", "-q", "scheduled/launch.md", env=laptop.env)  # keep theirs
    git(b, "commit", "-q", "--no-edit", env=laptop.env)
    assert subjects(laptop, b)[0].startswith("Merge")


@needs_git
def test_the_hook_lets_refused_files_in_failed_be_committed(box: Sandbox) -> None:
    """failed/ holds what the sender refused, byte for byte: committing it is no fault."""
    repo = box.spool
    git(repo, "init", "-q", env=box.env)
    with_hook(box, repo)
    (repo / "new" / "bad.md").write_text("---\nsensitive: maybe\n---\nbody\n")
    assert box.cli("send", "--once").code == 0
    assert box.ids("failed") == {"bad"}
    git(repo, "add", "-A", env=box.env)
    git(repo, "commit", "-q", "-m", "the daemon's work", env=box.env)
    assert subjects(box, repo) == ["the daemon's work"]
