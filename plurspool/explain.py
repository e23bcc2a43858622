"""`check --explain`: each account's thread parts as they will be sent, with the length its
server counts and its limit (plurspool(1), `check`; plurspool(5), AUTO-SPLIT)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PlurspoolError

if TYPE_CHECKING:
    from .items import Items
    from .post import Post


def resolve(items: Items, args: list[str]) -> list[Path]:
    """The files `check --explain` names: a path that exists, else a post's ID (or prefix)."""
    out = []
    for arg in args:
        path = Path(arg)
        if os.path.lexists(path):
            out.append(path)
        else:
            out.append(Path(items.spool.find(arg).path))
    return out


def name_of(items: Items, path: Path) -> str:
    """How a file is named in the explanation: relative to the spool when it is in it."""
    full = Path(os.path.abspath(path))
    try:
        return str(full.relative_to(items.spool.root))
    except ValueError:
        return str(path)


def explain_post(items: Items, post: Post) -> dict[str, list[dict[str, Any]]]:
    """{account: [{"text", "count", "limit"}]} for each configured account the post goes to.

    A thread auto-split cannot make fit is shown as written, over its limit (`check` says why).
    """
    from .platforms import fit, get
    from .split import NoFixedPoint, Unbreakable, graphemes

    out: dict[str, list[dict[str, Any]]] = {}
    for name in items.platforms(post):
        account = items.config.accounts.get(name)
        if account is None:
            continue
        measure = get(account.platform).measure(post, account, items.config.state_dir)
        try:
            thread = fit.thread(post, account, measure)
        except (Unbreakable, NoFixedPoint):
            thread = fit.as_written(post, account)
        out[name] = [
            {
                "text": text,
                "count": measure.count(text) if measure is not None else graphemes(text),
                "limit": measure.limit if measure is not None else None,
            }
            for text in thread.texts
        ]
    return out


Threads = dict[str, dict[str, list[dict[str, Any]]]]


def explain_files(items: Items, args: list[str]) -> tuple[Threads, list[dict[str, Any]]]:
    """`check --explain ARGS`: the explanation of every readable post among the files `check`
    reads for `args` (paths or IDs), by its name (`name_of`), and `check`'s reports on them.

    Each file is checked and explained in turn: both ask for the same threads, which
    `fit.thread` remembers for a while.
    """
    from .checking import check_file, files_of
    from .post import parse
    from .spool import entry_of

    threads: Threads = {}
    reports = []
    for path in files_of(items, resolve(items, args)):
        reports.append(check_file(items, path))
        try:
            st = os.lstat(path)
            entry = entry_of(path.name.removesuffix(".md"), "new", str(path), st)
            post = parse(items.spool.read(entry))
        except (OSError, PlurspoolError):
            continue  # the report says what keeps it from being read
        threads[name_of(items, path)] = explain_post(items, post)
    return threads, reports
