"""What `plurspool check` says of what is not a post (plurspool(1), `check`): feeds.toml, the
`[git]` settings that cannot work, and spool files git left unmerged; changes nothing.

Each report has the shape of a file's (`checking.check_file`); a problem makes `check` exit 3
as a post's does. Asked only when `check` is given no paths.
"""

from __future__ import annotations

import os
from typing import Any

from .app import App
from .errors import ConfigError, GitError, InvalidInput
from .feeds import Feeds
from .gitmerge import unmerged
from .gitsync import Repo, find_repo, require_repo, run


def check_setup(app: App) -> list[dict[str, Any]]:
    """The reports of feeds.toml, [git] and git's unmerged spool files that have something to
    say (none when all is well)."""
    out = [_feeds(app), _git(app)]
    repo = find_repo(app.root)
    if repo is not None:
        out += _unmerged(app, repo)
    return [r for r in out if r["problems"] or r["warnings"]]


def _report(path: os.PathLike[str] | str) -> dict[str, Any]:
    return {"path": os.fspath(path), "id": None, "state": None, "problems": [], "warnings": []}


def _feeds(app: App) -> dict[str, Any]:
    feeds = Feeds(app)
    report = _report(feeds.path)
    try:
        feeds.feeds()
    except InvalidInput as exc:
        report["problems"].append(f"{exc.message}; {exc.hint}")
    return report


def _git(app: App) -> dict[str, Any]:
    """[git] as the sender will find it: what stops it (problems), what fails later (warnings)."""
    config = app.config
    git = config.git
    report = _report(config.path or "[git]")
    problems, warnings = report["problems"], report["warnings"]
    if git.push and not git.autocommit:
        warnings.append("[git] push = true does nothing without autocommit = true")
    if not (git.send_only_committed or git.autocommit):
        return report
    try:
        repo = require_repo(config, app.root)
    except ConfigError as exc:
        problems.append(f"{exc.message}; {exc.hint}")
        return report
    top = repo.top
    if git.send_only_committed and git.branch is not None:
        try:
            run(top, "rev-parse", "-q", "--verify", f"refs/heads/{git.branch}")
        except GitError:
            problems.append(
                f"[git] branch = {git.branch!r}: no such branch in {top}, so every due post is "
                "held; name a branch of `git branch`, or remove the key (the branch checked out)"
            )
    if git.autocommit:
        for who in ("AUTHOR", "COMMITTER"):
            try:
                run(top, "var", f"GIT_{who}_IDENT")
            except GitError:
                warnings.append(
                    f"[git] autocommit: git knows no {who.lower()} identity in {top}, so no "
                    'commit can be made; run `git config user.name "..."` and `git config '
                    'user.email "..."` there'
                )
                break
    if git.autocommit and git.push:
        try:
            run(top, "rev-parse", "-q", "--verify", "--abbrev-ref", "@{upstream}")
        except GitError:
            warnings.append(
                f"[git] push: the branch checked out in {top} has no upstream, so every push "
                "fails; run `git push -u REMOTE BRANCH` there once"
            )
    busy = repo.busy()
    if busy is not None:
        warnings.append(f"{busy} is in progress in {top}: nothing is committed until it ends")
    return report


def _unmerged(app: App, repo: Repo) -> list[dict[str, Any]]:
    """A report for each spool file git left unmerged (a pull that met another host's copy)."""
    try:
        paths = unmerged(run, repo.top)
    except GitError:
        return []
    spool = app.root.resolve()
    out = []
    for path in sorted(paths):
        where = repo.top / path
        if not where.resolve().is_relative_to(spool):
            continue
        report = _report(where)
        report["id"] = where.name.removesuffix(".md")
        shown = path.removeprefix(repo.prefix)
        report["problems"].append(
            f"unmerged in git: two hosts changed {shown}; if both sent it, keep either copy "
            f"(`git checkout --theirs {where} && git add {where}`), else edit it to what it "
            "should be, then `git commit` (plurspool(5), SEVERAL MACHINES)"
        )
        out.append(report)
    return out
