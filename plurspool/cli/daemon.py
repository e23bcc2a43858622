"""The daemon's commands: `send` (the daemon itself) and `daemon` (run and inspect it)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..errors import EXIT_FAILURE, ConfigError
from .context import Context, format_option, pass_context
from .output import note

if TYPE_CHECKING:
    from ..app import App
    from ..service import Service


@click.command()
@click.option("--once", is_flag=True, help="One pass (intake, send what is due), then exit.")
@click.option(
    "--poll-interval",
    metavar="DUR",
    help="Poll this often when inotify is unavailable (overrides the config).",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@pass_context
def send(ctx: Context, once: bool, poll_interval: str | None, log_format: str) -> None:
    """The daemon: send posts when they are due (or one pass with --once)."""
    from ..daemon import Daemon
    from ..log import Log
    from ..when import parse_duration

    poll = parse_duration(poll_interval).total_seconds() if poll_interval else None
    daemon = Daemon(ctx.load_config, Log(log_format, verbose=ctx.verbose), poll_interval=poll)
    if once:
        result = daemon.once()
        note(
            f"{len(result.queued)} taken in, {len(result.sent)} sent, "
            f"{len(result.failed)} failed, {len(result.deferred)} deferred"
        )
        return
    daemon.run()


@click.group("daemon")
def daemon_group() -> None:
    """Manage the background daemon (systemd user unit, or a detached process).

    stop, status, logs and health work while the config cannot be loaded: they warn and find
    the daemon from the state directory. restart then refuses, so the daemon is not lost.
    """


def _daemon_app(ctx: Context) -> App:
    """The app; while the config cannot be loaded, that of the daemon to stop or inspect,
    found from the state directory alone (see plurspool(1), daemon), after a warning."""
    try:
        return ctx.host_app  # stopping or inspecting a daemon makes no spool
    except ConfigError as exc:
        from pathlib import Path

        from ..service import app_without_config

        config = Path(ctx.config_opt) if ctx.config_opt else None
        app = app_without_config(ctx.spool_opt, config)
        note(
            f"plurspool: warning: config ignored: {exc.message}; acting on the daemon of {app.root}"
        )
        return app


def _service(ctx: Context, app: App | None = None) -> Service:
    """The daemon's service, for `app` (default: the one of the config)."""
    from pathlib import Path

    from ..service import Service

    args = []
    if ctx.spool_opt:
        args += ["--spool", str(Path(ctx.spool_opt).resolve())]
    if ctx.config_opt:
        args += ["--config", str(Path(ctx.config_opt).resolve())]
    return Service(app if app is not None else ctx.app, args)


@daemon_group.command()
@pass_context
def install(ctx: Context) -> None:
    """Install and start the systemd user unit (where a user manager runs)."""
    note(_service(ctx).install())


@daemon_group.command()
@pass_context
def uninstall(ctx: Context) -> None:
    """Stop and remove the systemd user unit."""
    note(_service(ctx).uninstall())


@daemon_group.command()
@pass_context
def start(ctx: Context) -> None:
    """Start the daemon (systemd unit, or detached with a pidfile)."""
    note(_service(ctx).start())


@daemon_group.command()
@pass_context
def stop(ctx: Context) -> None:
    """Stop the daemon; sends in flight finish first. Works while the config is broken."""
    note(_service(ctx, _daemon_app(ctx)).stop())


@daemon_group.command()
@pass_context
def restart(ctx: Context) -> None:
    """Stop, then start the daemon; refused, stopping nothing, while the config is broken."""
    try:
        app = ctx.app
    except ConfigError as exc:
        raise ConfigError(
            f"{exc.message}; nothing was stopped: the daemon keeps running with its old config",
            exc.hint or "fix the config, then restart",
        ) from None
    note(_service(ctx, app).restart())


@daemon_group.command()
@format_option
@pass_context
def status(ctx: Context) -> None:
    """Say how the daemon runs (systemd or pidfile), whether it runs, and its heartbeat."""
    st = _service(ctx, _daemon_app(ctx)).status()
    ctx.out.daemon_status(st)
    if not st.running:
        sys.exit(EXIT_FAILURE)


@daemon_group.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines to show.")
@pass_context
def logs(ctx: Context, follow: bool, lines: int) -> None:
    """Show the daemon's log (journalctl in systemd mode)."""
    for line in _service(ctx, _daemon_app(ctx)).logs(follow, lines):
        click.echo(line, nl=False)


@daemon_group.command()
@format_option
@pass_context
def health(ctx: Context) -> None:
    """Exit 0 only if the daemon runs and its heartbeat is fresh."""
    from ..daemon import health as check_health

    ok, why = check_health(_daemon_app(ctx))
    ctx.out.health(ok, why)
    if not ok:
        sys.exit(EXIT_FAILURE)
