"""`plurspool check`: validate post files without changing anything (fit for a pre-commit hook)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from . import when
from .core import Core, Item, post_error_text
from .errors import PlurspoolError, PostError, TimeError
from .post import Post, parse
from .spool import classify, entry_of

DEFAULT_STATES = ("new", "drafts", "scheduled")


def check_paths(core: Core, paths: list[Path]) -> list[dict[str, Any]]:
    """Check the given files (directories: their *.md), or new/, drafts/ and scheduled/."""
    files: list[Path] = []
    if not paths:
        files = [e.path for s in DEFAULT_STATES for e in core.spool.entries(s)]
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            files.extend(sorted(q for q in p.iterdir() if classify(q.name) != "ignore"))
        else:
            files.append(p)
    return [check_file(core, f) for f in files]


def _state_of(core: Core, path: Path) -> str | None:
    parent = Path(os.path.realpath(path.parent))
    if parent.parent == core.spool.root and parent.name in (
        "new",
        "drafts",
        "scheduled",
        "sent",
        "failed",
    ):
        return parent.name
    return None


def check_file(core: Core, path: Path) -> dict[str, Any]:
    """Every problem with one file, as plain sentences (with line numbers when known)."""
    state = _state_of(core, path)
    report: dict[str, Any] = {
        "path": str(path),
        "id": path.name.removesuffix(".md"),
        "state": state,
        "problems": [],
        "warnings": [],
    }
    problems: list[str] = report["problems"]
    try:
        st = os.lstat(path)
    except OSError as exc:
        problems.append(f"cannot read: {exc.strerror}")
        return report
    if state is not None and classify(path.name) == "ignore":
        report["warnings"].append(
            "the sender never reads a file by this name (not *.md, or an editor's or sync "
            "tool's temporary file)"
        )
        return report
    entry = entry_of(path.name.removesuffix(".md"), state or "new", str(path), st)
    if classify(path.name) == "conflict":
        problems.append("it is a sync tool's conflict copy; merge it by hand")
        return report
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
        problems.append("not a regular file")
        return report
    reason = core.spool.refusal(entry)
    if reason:
        problems.append(f"refused: {reason}")
        return report
    try:
        data = core.spool.read(entry)
    except Exception as exc:
        problems.append(str(exc))
        return report
    try:
        post = parse(data)
    except PostError as exc:
        problems.append(post_error_text(exc))
        return report
    item = core.item_from_bytes(entry, data)
    _post_problems(core, item, post, problems, report["warnings"], in_spool=state is not None)
    return report


def _post_problems(
    core: Core,
    item: Item,
    post: Post,
    problems: list[str],
    warnings: list[str],
    *,
    in_spool: bool,
) -> None:
    """What keeps a post from going out, judged as the sender would judge it where it is."""
    if item.state == "new":
        # Exactly what intake refuses (a file outside the spool: as if dropped into new/).
        try:
            problem = core.queue.judge_new(item, ids=in_spool).problem
        except FileNotFoundError:
            problem = "it vanished while being read"
        except PlurspoolError as exc:
            problem = exc.message
        if problem is not None:
            problems.append(problem)
    elif item.problem:
        problems.append(item.problem)
    elif item.state == "scheduled":
        late = core.queue.late_copy(item.id)
        if late is not None:
            problems.append(late)
    elif post.schedule is not None:
        line = f"line {post.schedule_line}: " if post.schedule_line else ""
        try:
            at = core.resolve(post.schedule, allow_past=True)
        except TimeError as exc:
            problems.append(f"{line}{exc.message}")
        else:
            if item.state == "drafts" and at < core.clock():
                # Drafts are never sent: a time gone by is a note, not a fault.
                warnings.append(
                    f"{line}its time {when.echo(at, core.config.timezone)} has passed; "
                    f"`plurspool schedule {item.id} WHEN` queues it at a new time"
                )
    for m in post.media:
        if not (core.spool.root / m.path).is_file():
            problems.append(f"media file {m.path} not found under {core.spool.root}")
    for level, account, message in core.platform_issues(post):
        if level == "warning":
            warnings.append(f"{account}: {message}")
    targets = core.platforms(post)
    for name in post.overrides:
        if name not in targets:
            warnings.append(
                f"`overrides` names {name}, which this post is not sent to "
                f"(it goes to {', '.join(targets)})"
            )
