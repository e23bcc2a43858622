"""The command line (the only code that imports click): the group, its errors, its entry points.

Data goes to stdout (text or JSON, chosen once: see output.py), messages to stderr. Every
`PlurspoolError` becomes `plurspool: MESSAGE` + `hint: HINT` and its exit code, in one place
(`_guarded`). The commands live one family a module: posting, queue, report, daemon, setup, imports.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from .. import __version__, usage
from ..errors import EXIT_FAILURE, EXIT_USAGE, PlurspoolError, UsageError
from ..printable import shown
from . import amend, calendar, daemon, delete, feeds, imports, posting, queue, report, setup
from .context import Context

QUEUE_COMMANDS = (
    "list",
    "show",
    "cancel",
    "reschedule",
    "now",
    "retry",
    "schedule",
    "skip",
    "queue",
    "stats",
    "check",
)


def _guarded(invoke: Callable[[click.Context], Any], ctx: click.Context) -> Any:
    """Run a command, turning plurspool errors into messages and exit codes."""
    try:
        return invoke(ctx)
    except PlurspoolError as exc:
        fail(exc.message, exc.hint, exc.exit_code)
    except KeyboardInterrupt:
        click.echo("plurspool: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # `plurspool list | head`: the reader left; nothing is wrong.
        sys.stderr.close()
        sys.exit(0)


class Cli(click.Group):
    """Turns plurspool errors into messages and exit codes, once, for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        return _guarded(super().invoke, ctx)


def fail(message: str, hint: str = "", code: int = EXIT_FAILURE) -> NoReturn:
    """Say what went wrong and what to do (stderr), and exit with `code`."""
    click.echo(shown(f"plurspool: {message}"), err=True)
    if hint:
        click.echo(shown(f"hint: {hint}"), err=True)
    sys.exit(code)


_OPTION_HELP = dict(usage.OPTIONS)


@click.group(
    cls=Cli, help=usage.DESCRIPTION, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--spool", metavar="DIR", help=_OPTION_HELP["--spool DIR"])
@click.option("--config", metavar="FILE", help=_OPTION_HELP["--config FILE"])
@click.option("-v", "--verbose", is_flag=True, help=_OPTION_HELP["-v, --verbose"])
@click.version_option(
    __version__, "-V", "--version", prog_name="plurspool", help=_OPTION_HELP["-V, --version"]
)
@click.pass_context
def cli(ctx: click.Context, spool: str | None, config: str | None, verbose: bool) -> None:
    # The help text is usage.DESCRIPTION: `plurspool --help` prints it without importing click.
    ctx.obj = Context(spool, config, verbose)


for _command in (
    setup.init,
    posting.post,
    posting.new,
    posting.edit,
    amend.amend,
    queue.list_,
    queue.show,
    queue.cancel,
    queue.reschedule,
    queue.skip,
    queue.schedule,
    queue.now,
    queue.retry,
    delete.delete,
    queue.queue_,
    calendar.calendar,
    calendar.ics,
    report.stats,
    report.check,
    daemon.send,
    daemon.daemon_group,
    setup.accounts,
    feeds.feed_group,
    imports.import_,
):
    cli.add_command(_command)
    # The summary `plurspool --help` shows (usage.py prints the same without importing click).
    _command.short_help = usage.COMMANDS[_command.name or ""]


# -- aliases ---------------------------------------------------------------------------------


class Alias(click.Command):
    """`plur-post`: one command as a program, with the global options too."""

    def __init__(self, name: str, command: click.Command) -> None:
        def callback(spool: str | None, config: str | None, verbose: bool, **params: Any) -> Any:
            click.get_current_context().obj = Context(spool, config, verbose)
            assert command.callback is not None
            return command.callback(**params)

        super().__init__(
            name,
            callback=callback,
            params=[*command.params, *cli.params],
            help=command.help,
            epilog=f"{name} is `plurspool {command.name}`; see plurspool(1).",
            context_settings=cli.context_settings,
        )

    def invoke(self, ctx: click.Context) -> Any:
        return _guarded(super().invoke, ctx)


def _plur_send(spool: str | None, config: str | None, verbose: bool, **params: Any) -> Any:
    """`plur-send`: `plurspool send` alone, `plurspool daemon COMMAND` with a command."""
    ctx = click.get_current_context()
    ctx.obj = Context(spool, config, verbose)
    if ctx.invoked_subcommand is None:
        assert daemon.send.callback is not None
        return daemon.send.callback(**params)
    given = [name for name in params if ctx.get_parameter_source(name) != ParameterSource.DEFAULT]
    if given:
        raise UsageError(
            f"--{given[0].replace('_', '-')} is an option of plur-send alone, not of "
            f"plur-send {ctx.invoked_subcommand}",
            "run `plur-send --help`",
        )
    return None


plur_post_cli = Alias("plur-post", posting.post)
plur_send_cli = Cli(
    "plur-send",
    commands=dict(daemon.daemon_group.commands),
    params=[*daemon.send.params, *cli.params],
    callback=_plur_send,
    invoke_without_command=True,
    subcommand_metavar="[COMMAND [ARGS]...]",
    help=f"{daemon.send.help}\n\nWith a COMMAND, manage the daemon: `plur-send COMMAND` is "
    "`plurspool daemon COMMAND`.",
    epilog="plur-send is `plurspool send`; see plurspool(1).",
    context_settings=cli.context_settings,
)
queue_cli = Cli(
    "plur-queue",
    commands={name: cli.commands[name] for name in QUEUE_COMMANDS},
    params=cli.params,
    callback=cli.callback,
    help="The queue commands of plurspool: `plur-queue COMMAND` is `plurspool COMMAND`. "
    "Without a command: list. See plurspool(1).",
    context_settings=cli.context_settings,
)


def main() -> None:
    """`plurspool ARGS`, through click (`plurspool.__main__` answers --help and --version)."""
    cli(prog_name="plurspool")


def plur_post() -> None:
    """`plur-post ARGS` is `plurspool post ARGS`."""
    plur_post_cli(prog_name="plur-post")


def plur_send() -> None:
    """`plur-send ARGS` is `plurspool send ARGS`; `plur-send COMMAND` `plurspool daemon COMMAND`."""
    plur_send_cli(prog_name="plur-send")


def plur_queue() -> None:
    """`plur-queue CMD ARGS` is `plurspool CMD ARGS` for the queue commands."""
    args = sys.argv[1:]
    # Global options may come first; the first other word must be a queue command.
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("--spool", "--config") else 1
    if i < len(args) and args[i] not in QUEUE_COMMANDS:
        fail(
            f"plur-queue has no command {args[i]!r}",
            f"use one of: {', '.join(QUEUE_COMMANDS)}",
            EXIT_USAGE,
        )
    if i >= len(args):
        args = [*args, "list"]
    queue_cli(args=args, prog_name="plur-queue")
