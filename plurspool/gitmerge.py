"""Git conflicts between hosts that both finished a post (plurspool(5), SEVERAL MACHINES): the
unmerged spool files `check` names, and a rebase of the committer's own push settled when each
conflict is one post both hosts sent alike; it changes no post's state.

Two hosts that both send every account (no `[senders]`) each move a due post to sent/ with
their own results (`at` differs): git sees an add/add conflict on pull. Both copies say the
same post was sent, with the same remote ids (the idempotency material is the file's), so the
copy already on the remote is kept and the rebase goes on. Anything else stops, as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .errors import GitError, PlurspoolError
from .post import parse, without_written

Git = Callable[..., bytes]  # gitsync.run: `git ARGS` in a directory, its stdout
MAX_STOPS = 20  # commits of one push the rebase may stop at
SETTLED = ("sent",)  # the states whose both copies may stand for each other


def unmerged(git: Git, top: Path) -> dict[str, dict[int, str]]:
    """The repository's unmerged paths: path -> {stage: blob id} (1 base, 2 ours, 3 theirs)."""
    out = git(top, "ls-files", "-u", "-z")
    found: dict[str, dict[int, str]] = {}
    for line in out.split(b"\0"):
        meta, _, path = line.partition(b"\t")
        fields = meta.split()
        if len(fields) == 3:
            found.setdefault(os.fsdecode(path), {})[int(fields[2])] = fields[1].decode()
    return found


def alike(git: Git, top: Path, prefix: str, path: str, stages: dict[int, str]) -> bool:
    """Whether an unmerged `path` is a post of sent/ whose two sides are the same post apart
    from what plurspool writes (results, attempts...)."""
    state, _, name = path.removeprefix(prefix).partition("/")
    if not path.startswith(prefix) or state not in SETTLED or "/" in name:
        return False
    if not name.endswith(".md") or 2 not in stages or 3 not in stages:
        return False
    try:
        ours, theirs = (parse(git(top, "cat-file", "blob", stages[s])) for s in (2, 3))
    except PlurspoolError:
        return False
    return without_written(ours) == without_written(theirs)


def settle(git: Git, top: Path, prefix: str, busy: Callable[[], object]) -> list[str] | None:
    """Carry on a `pull --rebase` stopped on conflicts: while each is a post both sides sent
    alike (`alike`), keep the upstream copy (stage 2 in a rebase) and continue. The paths so
    settled once the rebase is done; None when a conflict is of another kind (the caller
    aborts the rebase). `busy`: whether a rebase is still in progress (`Repo.busy`)."""
    done: list[str] = []
    env = {"GIT_EDITOR": "true"}
    for _ in range(MAX_STOPS):
        conflicts = unmerged(git, top)
        if not conflicts:
            return None  # stopped for another reason (an `edit` step, a hook): not ours
        if not all(alike(git, top, prefix, p, s) for p, s in conflicts.items()):
            return None
        paths = sorted(conflicts)
        git(top, "checkout", "--ours", "--", *paths)
        git(top, "add", "--", *paths)
        done += paths
        # A commit left with nothing of its own (the remote has it all) is skipped.
        empty = not git(top, "diff", "--cached", "--name-only", "-z")
        try:
            git(top, "rebase", "--skip" if empty else "--continue", env=env)
        except GitError:
            if not unmerged(git, top):
                return None  # it stopped on something else
            continue  # the next commit stopped on a conflict too
        if not busy():
            return done
    return None
