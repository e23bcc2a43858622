"""`plurspool check` beyond the posts: feeds.toml's mistakes by feed and key, and `[git]`
settings that cannot work, in process (plurspool(1), `check`); git's unmerged spool files are
in test_many_hosts.py."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_helpers import Sandbox
from tests.helpers import Run, git, invoke

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def box_with(tmp_path: Path, extra: str = "") -> Sandbox:
    box = Sandbox(tmp_path / "box")
    box.exec_account("x")
    box.extra = extra
    box.write_config()
    # git as a careful user has it: no identity guessed from the host name.
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tuseConfigOnly = true\n")
    box.env.update({"GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1"})
    return box


def check(box: Sandbox) -> tuple[Run, list[dict[str, Any]]]:
    text = invoke(["check"], box.env)
    reports = invoke(["check", "--json"], box.env).json()
    assert "Traceback" not in text.err
    return text, reports


def test_a_mistake_in_feeds_toml_is_named_by_feed_and_key(tmp_path: Path) -> None:
    box = box_with(tmp_path)
    feeds = box.spool / "feeds.toml"
    feeds.write_text(
        '[[feed]]\nurl = "https://blog.example/feed"\n\n'
        '[[feed]]\nurl = "https://b.example/atom"\ntemplat = "{title}"\n'
    )
    run, reports = check(box)
    assert run.code == 3
    [report] = reports
    assert report["path"] == str(feeds) and report["id"] is None
    [problem] = report["problems"]
    assert "https://b.example/atom" in problem and "unknown key 'templat'" in problem
    assert "plurspool feed add|remove" in problem
    assert f"{feeds}: " in run.out + run.err
    feeds.write_text('[[feed]]\nurl = "https://b.example/atom"\ntemplate = "{title}"\n')
    run, reports = check(box)
    assert run.code == 0 and reports == []


def test_git_keys_on_a_spool_in_no_repository_are_a_problem(tmp_path: Path) -> None:
    box = box_with(tmp_path, "[git]\nautocommit = true\n")
    run, [report] = check(box)
    assert run.code == 3
    [problem] = report["problems"]
    assert "is not in a git repository" in problem and "git init" in problem


def test_push_without_autocommit_does_nothing_and_check_says_so(tmp_path: Path) -> None:
    box = box_with(tmp_path, "[git]\npush = true\n")
    run, [report] = check(box)
    assert run.code == 0
    assert report["warnings"] == ["[git] push = true does nothing without autocommit = true"]


@needs_git
def test_autocommit_without_an_identity_or_an_upstream_is_warned_of(tmp_path: Path) -> None:
    box = box_with(tmp_path, "[git]\nautocommit = true\npush = true\n")
    git(box.spool, "init", "-q", env=box.env)
    run, [report] = check(box)
    assert run.code == 0 and report["problems"] == []
    identity, upstream = report["warnings"]
    assert "no author identity" in identity and "git config user.email" in identity
    assert "has no upstream" in upstream and "git push -u" in upstream
    git(box.spool, "config", "user.name", "Me", env=box.env)
    git(box.spool, "config", "user.email", "me@example.invalid", env=box.env)
    _, [report] = check(box)
    assert report["warnings"] == [upstream]


@needs_git
def test_a_reviewed_branch_that_does_not_exist_holds_everything_and_is_a_problem(
    tmp_path: Path,
) -> None:
    box = box_with(tmp_path, '[git]\nsend_only_committed = true\nbranch = "mian"\n')
    git(box.spool, "init", "-q", env=box.env)
    run, [report] = check(box)
    assert run.code == 3
    [problem] = report["problems"]
    assert "branch = 'mian': no such branch" in problem and "every due post is held" in problem
