"""The setup commands: `init` (config and spool) and `accounts` (list them, or test a login)."""

from __future__ import annotations

import sys

import click

from ..errors import EXIT_FAILURE
from .context import Context, format_option, pass_context


@click.command()
@format_option
@pass_context
def init(ctx: Context) -> None:
    """Create the config (if missing) and the spool; print their paths."""
    from .. import setup

    ctx.out.initialised(setup.init(ctx.config_file, lambda: ctx.host_app))


@click.group(invoke_without_command=True)
@format_option
@pass_context
def accounts(ctx: Context) -> None:
    """List the configured accounts."""
    if click.get_current_context().invoked_subcommand is not None:
        return
    from .. import setup

    ctx.out.accounts(setup.accounts(ctx.load_config()))


@accounts.command("test")
@click.argument("names", nargs=-1, metavar="[ACCOUNT]...")
@format_option
@pass_context
def accounts_test(ctx: Context, names: tuple[str, ...]) -> None:
    """Log in to accounts and report who you are there; sends nothing."""
    from .. import setup

    reports = setup.try_logins(ctx.load_config(), names)
    ctx.out.accounts_tested(reports)
    if not all(r["ok"] for r in reports):
        sys.exit(EXIT_FAILURE)
