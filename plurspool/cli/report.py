"""The commands that look and change nothing: `stats` and `check`."""

from __future__ import annotations

import sys

import click

from ..errors import EXIT_INVALID
from .context import Context, format_option, pass_context


@click.command()
@format_option
@pass_context
def stats(ctx: Context) -> None:
    """Totals by state and account, what is due when, the next posts, and a chart by day."""
    app = ctx.app
    ctx.out.stats(app, app.views.stats())


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(), metavar="[PATH|ID]...")
@click.option(
    "--explain", is_flag=True, help="Show each account's parts as sent, with count and limit."
)
@format_option
@pass_context
def check(ctx: Context, paths: tuple[str, ...], explain: bool) -> None:
    """Validate posts; default new/, drafts/ and scheduled/. Changes nothing; exit 3 on problems."""
    from pathlib import Path

    from ..checking import check_paths

    items = ctx.app.items
    if explain:
        from ..explain import explain_files

        threads, reports = explain_files(items, [str(p) for p in paths])
        ctx.out.explained(threads, reports)
    else:
        reports = check_paths(items, [Path(p) for p in paths])
        if not paths:  # feeds.toml, [git], git's unmerged files
            from ..checksetup import check_setup

            reports += check_setup(ctx.app)
        ctx.out.checked(reports)
    if any(r["problems"] for r in reports):
        sys.exit(EXIT_INVALID)
