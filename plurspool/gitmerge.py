"""Git conflicts between hosts that sent one post (plurspool(5), SEVERAL MACHINES): the unmerged
spool files `check` names, and a rebase of the committer's own push carried on when each
conflict is one post two hosts sent; it changes no post's state (git writes the files).

Two hosts that both send every account (no `[senders]`) each move a due post to sent/ with
their own results (`at` differs): an add/add conflict. Both copies say the post was sent, with
the same remote ids (the idempotency material is the file's): the remote's copy is kept. Two
`[senders]` hosts sending their accounts at once each record them into scheduled/ID.md: the
remote's copy with this host's results added. Anything else stops, as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .errors import GitError, PlurspoolError
from .post import parse, with_record, without_written

Git = Callable[..., bytes]  # gitsync.run: `git ARGS` in a directory, its stdout
MAX_STOPS = 20  # commits of one push the rebase may stop at


def unmerged(git: Git, top: Path) -> dict[str, dict[int, tuple[str, str]]]:
    """The repository's unmerged paths: path -> {stage: (mode, blob id)} (1 base, 2 ours, 3
    theirs)."""
    out = git(top, "ls-files", "-u", "-z")
    found: dict[str, dict[int, tuple[str, str]]] = {}
    for line in out.split(b"\0"):
        meta, _, path = line.partition(b"\t")
        fields = meta.split()
        if len(fields) == 3:
            stage = (fields[0].decode(), fields[1].decode())
            found.setdefault(os.fsdecode(path), {})[int(fields[2])] = stage
    return found


def merged(
    git: Git, top: Path, prefix: str, path: str, stages: dict[int, tuple[str, str]]
) -> bytes | None:
    """What an unmerged post file becomes when both sides are one post that two hosts sent:
    in sent/, the upstream copy (stage 2 in a rebase); in scheduled/, where [senders] hosts
    record their accounts' results, the upstream copy with the other side's results added.
    None when it is anything else (the caller leaves it to the user)."""
    state, _, name = path.removeprefix(prefix).partition("/")
    if not path.startswith(prefix) or state not in ("scheduled", "sent") or "/" in name:
        return None
    if not name.endswith(".md") or 2 not in stages or 3 not in stages:
        return None
    upstream = git(top, "cat-file", "blob", stages[2][1])
    try:
        up, mine = parse(upstream), parse(git(top, "cat-file", "blob", stages[3][1]))
    except PlurspoolError:
        return None
    if state == "sent":
        return upstream if without_written(up) == without_written(mine) else None
    # scheduled/: nothing but the results may differ (a time, a retry token: the user's to merge)
    if replace(up, results={}, attempts=0) != replace(mine, results={}, attempts=0):
        return None
    results = {**mine.results, **up.results}  # an account on both sides: upstream's
    if results.keys() == up.results.keys():
        return upstream
    return with_record(upstream, results, max(r.attempts for r in results.values()))


def settle(git: Git, top: Path, prefix: str, busy: Callable[[], object]) -> list[str] | None:
    """Carry on a `pull --rebase` stopped on conflicts: while each is a post two hosts sent
    (`merged`), stage what `merged` makes of it and continue. The paths so settled once the
    rebase is done; None when a conflict is of another kind (the caller
    aborts the rebase). `busy`: whether a rebase is still in progress (`Repo.busy`)."""
    done: list[str] = []
    env = {"GIT_EDITOR": "true"}
    for _ in range(MAX_STOPS):
        conflicts = unmerged(git, top)
        if not conflicts:
            return None  # stopped for another reason (an `edit` step, a hook): not ours
        settled = {p: merged(git, top, prefix, p, s) for p, s in conflicts.items()}
        if any(data is None for data in settled.values()):
            return None
        for path, data in settled.items():
            assert data is not None
            oid = git(top, "hash-object", "-w", "--stdin", stdin=data).decode().strip()
            mode = conflicts[path][2][0]
            git(top, "update-index", "--cacheinfo", f"{mode},{oid},{path}")
        paths = sorted(settled)
        git(top, "checkout", "--", *paths)  # git writes the files, as a user's git would
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
