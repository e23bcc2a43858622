"""`plurspool import csv|jsonl|plurcast|mastodon-scheduled`: other sources' posts into the spool."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import click

from .context import Context, format_option, pass_context
from .output import note

if TYPE_CHECKING:
    from ..imports import Bad, Row


@click.group("import")
def import_() -> None:
    """Import posts: a CSV or JSON Lines file, Plurcast's database, or a Mastodon account's
    scheduled statuses. Every import checks all its rows first and writes nothing when one is
    bad (exit 3); run again, it makes nothing new."""


@contextlib.contextmanager
def _progress(label: str, length: int) -> Iterator[Callable[[int], None] | None]:
    """click's progress bar on stderr, for more rows than fit on the terminal; else nothing."""
    if not sys.stderr.isatty() or length <= shutil.get_terminal_size().lines:
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def run_import(ctx: Context, source: str, rows: Sequence[Row | Bad]) -> dict[str, str]:
    """Check every row, write the new ones, print them (shared by every source); the post ID
    of each row (by its `where`) whose post is in the spool now, durably (made now, or before)."""
    from ..importing import Importer

    app = ctx.app
    importer = Importer(app)
    with _progress("checking", len(rows)) as tick:
        plan = importer.plan(source, rows, tick)
    with _progress("writing ", len(plan.new)) as tick:
        made = importer.write(plan, tick)
    ctx.out.imported(app, made)
    again = len(plan.known) + len(plan.new) - len(made)
    if made:
        states: dict[str, int] = {}
        for e in made:
            states[e.state] = states.get(e.state, 0) + 1
        where = ", ".join(f"{n} in {s}/" for s, n in states.items())
        note(f"imported {len(made)} post{'s' if len(made) != 1 else ''}: {where}")
    if again:
        note(
            f"{'nothing new: ' if not made else ''}{again} "
            f"{'were' if again != 1 else 'was'} imported before"
        )
    elif not made:
        note(f"nothing new: {source} holds no posts")
    if plan.repeated:
        note(f"{plan.repeated} row{'s' if plan.repeated != 1 else ''} repeated an earlier one")
    durable = {e.id for e in made} | set(plan.known)
    return {where: post_id for where, post_id in plan.ids.items() if post_id in durable}


def _read_input(path: str) -> tuple[str, bytes]:
    from ..errors import InvalidInput

    if path == "-":
        return "stdin", sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return path, f.read()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", "name a readable file") from None


@import_.command("csv")
@click.argument("file", metavar="FILE")
@format_option
@pass_context
def csv_(ctx: Context, file: str) -> None:
    """Import the rows of a CSV file (`-`: stdin); line 1 names the columns."""
    from ..imports.csvrows import read_csv

    source, data = _read_input(file)
    run_import(ctx, source, read_csv(data, source))


@import_.command("jsonl")
@click.argument("file", metavar="FILE")
@format_option
@pass_context
def jsonl(ctx: Context, file: str) -> None:
    """Import a JSON Lines file (`-`: stdin): one JSON object a line."""
    from ..imports.csvrows import read_jsonl

    source, data = _read_input(file)
    run_import(ctx, source, read_jsonl(data, source))


@import_.command("plurcast")
@click.argument("db", metavar="[DB]", required=False)
@format_option
@pass_context
def plurcast(ctx: Context, db: str | None) -> None:
    """Import Plurcast's posts, read-only (default: $XDG_DATA_HOME/plurcast/posts.db)."""
    import os
    from pathlib import Path

    from ..imports.plurcast import read
    from ..paths import plurcast_db

    path = Path(db) if db else plurcast_db(os.environ)
    run_import(ctx, str(path), read(path))


@import_.command("mastodon-scheduled")
@click.option(
    "-p",
    "--platform",
    "account",
    required=True,
    metavar="ACCOUNT",
    help="The Mastodon account whose scheduled statuses to import.",
)
@click.option(
    "--delete-remote",
    is_flag=True,
    help="Delete each on the server once its file is written (not within 5 minutes of its time).",
)
@format_option
@pass_context
def mastodon_scheduled(ctx: Context, account: str, delete_remote: bool) -> None:
    """Import a Mastodon account's server-side scheduled statuses into scheduled/."""
    from ..errors import InvalidInput
    from ..imports import mastodon_scheduled as remote
    from ..platforms.mastodon import open_client

    app = ctx.app
    acct = app.config.accounts.get(account)
    if acct is None or acct.platform != "mastodon":
        mastodons = [a.name for a in app.config.accounts.values() if a.platform == "mastodon"]
        raise InvalidInput(
            f"{account} is not a configured mastodon account",
            f"name one of: {', '.join(mastodons)}" if mastodons else "configure one first",
        )
    client = open_client(acct)
    try:
        rows, remotes = remote.fetch(client, acct)
        durable = run_import(ctx, f"{account}'s scheduled statuses", rows)
        if not delete_remote:
            if remotes:
                note(
                    "the server still has them and will publish them too: delete them there, "
                    "or run again with --delete-remote"
                )
            return
        deleted, kept = remote.delete(
            client, acct, [r for r in remotes if r.where in durable], app.clock
        )
    finally:
        client.close()
    if deleted:
        note(f"deleted {len(deleted)} on the server")
    for r, why in kept:
        note(
            f"{r.where} is left on the server: {why}; if Mastodon publishes it, "
            f"`plurspool cancel {durable[r.where]}` keeps it from going out twice"
        )
