"""What `plurspool check` says of files: the sender's own rule for the state each is in, as
problems and warnings (plurspool(1), `check`).

A file in new/ is judged exactly as intake judges it (`Items.judge_new`), one in scheduled/ as
the sender would find it due; a file outside the spool as if dropped into new/.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import slots, when
from .errors import InvalidInput, PlurspoolError, PostError, TimeError
from .items import Item, Items
from .spool import classify, entry_of

if TYPE_CHECKING:
    from .post import Post


DEFAULT_STATES = ("new", "drafts", "scheduled")


def check_paths(items: Items, paths: list[Path]) -> list[dict[str, Any]]:
    """Check the given files (directories: their *.md), or new/, drafts/ and scheduled/."""
    return [check_file(items, f) for f in files_of(items, paths)]


def files_of(items: Items, paths: list[Path]) -> list[Path]:
    """The files `check` reads: `paths`, directories by their files, or by default new/,
    drafts/ and scheduled/."""
    files: list[Path] = []
    if not paths:
        files = [e.path for s in DEFAULT_STATES for e in items.spool.entries(s)]
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            files.extend(sorted(q for q in p.iterdir() if classify(q.name) != "ignore"))
        else:
            files.append(p)
    return files


def _state_of(items: Items, path: Path) -> str | None:
    parent = Path(os.path.realpath(path.parent))
    if parent.parent == items.spool.root and parent.name in (
        "new",
        "drafts",
        "scheduled",
        "sent",
        "failed",
    ):
        return parent.name
    return None


def check_file(items: Items, path: Path) -> dict[str, Any]:
    """Every problem with one file, as plain sentences (with line numbers when known)."""
    state = _state_of(items, path)
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
    reason = items.spool.refusal(entry)
    if reason:
        problems.append(f"refused: {reason}")
        return report
    try:
        data = items.spool.read(entry)
    except Exception as exc:
        problems.append(str(exc))
        return report
    from .post import parse

    try:
        post = parse(data)
    except PostError as exc:
        problems.append(exc.one_line())
        return report
    item = items.item_from_bytes(entry, data)
    _post_problems(items, item, post, problems, report["warnings"], in_spool=state is not None)
    return report


def _post_problems(
    items: Items,
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
            problem = items.judge_new(item, ids=in_spool).problem
        except FileNotFoundError:
            problem = "it vanished while being read"
        except PlurspoolError as exc:
            problem = exc.message
        if problem is not None:
            problems.append(problem)
    elif item.problem:
        problems.append(item.problem)
    elif item.state == "scheduled":
        late = items.late_copy(item.id)
        if late is None and items.config.not_here(items.platforms(post)) is None:
            # Lateness as this host's sender judges it; another host cannot know (its ledger).
            ledger = items.ledgers.if_exists()
            seen = ledger is not None and bool(ledger.deliveries(item.id))
            late = items.first_due_too_late(item, seen)
        if late is not None:
            problems.append(late)
    elif post.schedule is not None and (spec := slots.queue_spec(post.schedule)) is not None:
        try:
            items.config.queue(spec)  # a draft takes its slot when it is scheduled
        except InvalidInput as exc:
            line = f"line {post.schedule_line}: " if post.schedule_line else ""
            problems.append(f"{line}{exc.message}; {exc.hint}")
    elif post.schedule is not None:
        line = f"line {post.schedule_line}: " if post.schedule_line else ""
        try:
            at = items.resolve(post.schedule, allow_past=True)
        except TimeError as exc:
            problems.append(f"{line}{exc.message}")
        else:
            if item.state == "drafts" and at < items.clock():
                # Drafts are never sent: a time gone by is a note, not a fault.
                warnings.append(
                    f"{line}its time {when.echo(at, items.config.timezone)} has passed; "
                    f"`plurspool schedule {item.id} WHEN` queues it at a new time"
                )
    for m in post.media:
        if not (items.spool.root / m.path).is_file():
            problems.append(f"media file {m.path} not found under {items.spool.root}")
    for level, account, message in items.platform_issues(post):
        if level == "warning":
            warnings.append(f"{account}: {message}")
    targets = items.platforms(post)
    for name in post.overrides:
        if name not in targets:
            warnings.append(
                f"`overrides` names {name}, which this post is not sent to "
                f"(it goes to {', '.join(targets)})"
            )
