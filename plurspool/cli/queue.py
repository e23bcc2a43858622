"""The queue commands: list, show, cancel, reschedule, schedule, skip, now, retry and queue."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..errors import EXIT_FAILURE, EXIT_INVALID, InvalidInput, TimeError, UsageError
from .context import Context, F, format_option, id_argument, pass_context
from .output import note
from .posting import send_foreground

if TYPE_CHECKING:
    from ..items import Item


@click.command("list")
@click.option(
    "--state",
    "state_name",
    default="scheduled",
    show_default=True,
    type=click.Choice(["new", "drafts", "scheduled", "sent", "failed", "all"]),
)
@click.option("-p", "--platform", "account", metavar="ACCOUNT", help="Only posts to ACCOUNT.")
@click.option(
    "--wide", is_flag=True, help="Show every column in full, whatever the terminal's width."
)
@format_option
@pass_context
def list_(ctx: Context, state_name: str, account: str | None, wide: bool) -> None:
    """List posts in a state, soonest first, with the time until due.

    The table fits the terminal's width ($COLUMNS, else the terminal's, else 80 columns):
    IDs are cut to a unique prefix of at least 8 characters (any unique prefix is a valid
    ID), accounts and previews end with … where cut. --wide shows them in full.
    """
    from ..listing import ListedPosts

    ctx.out.listing(ListedPosts(ctx.app, state_name, account), wide)


@click.command()
@id_argument(None)
@format_option
@pass_context
def show(ctx: Context, post_id: str) -> None:
    """Show one post in full, with its state and results or error."""
    app = ctx.app
    ctx.out.post(app, app.items.find(post_id))


CANCEL_STATES = ("scheduled", "new")


@click.command()
@id_argument(CANCEL_STATES, many=True)
@click.option("--all", "all_", is_flag=True, help="Cancel every queued post.")
@click.option("--force", is_flag=True, help="With --all, do not ask.")
@format_option
@pass_context
def cancel(ctx: Context, ids: tuple[str, ...], all_: bool, force: bool) -> None:
    """Take posts out of the queue into drafts/ (delete them there if you wish)."""
    app = ctx.app
    if all_ == bool(ids):
        raise UsageError(
            "give post IDs or --all, not both and not neither",
            "plurspool cancel ID... | --all [--force]",
        )
    if all_:
        items = app.items.in_states(["scheduled"])
        if not items:
            note("the queue is empty")
            return
        if not force:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"refusing to cancel all {len(items)} queued posts without a terminal to ask",
                    "add --force",
                )
            if not click.confirm(f"Move all {len(items)} queued posts to drafts/?", err=True):
                sys.exit(EXIT_FAILURE)
    else:
        items = [app.items.find(i, CANCEL_STATES) for i in ids]
    ctx.out.changed(app, [app.queue.cancel(i).item for i in items], "cancelled")


class WhenCommand(click.Command):
    """A command whose WHEN may start with `-`: `reschedule ID -2h` is a time, not `-2 -h`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        # A leading space keeps click from reading `-2h` as short options (and -h as --help).
        marked = [
            f" {a}" if n < end and len(a) > 1 and a[0] == "-" and a[1].isdigit() else a
            for n, a in enumerate(args)
        ]
        return super().parse_args(ctx, marked)


def _when_text(words: tuple[str, ...]) -> str:
    return " ".join(w.strip() for w in words)


def _when_args(f: F) -> F:
    return click.argument(
        "when_words", nargs=-1, required=True, type=click.UNPROCESSED, metavar="WHEN"
    )(f)


RESCHEDULE_STATES = ("scheduled", "drafts")


@click.command(cls=WhenCommand, context_settings={"ignore_unknown_options": True})
@id_argument(RESCHEDULE_STATES)
@_when_args
@format_option
@pass_context
def reschedule(ctx: Context, post_id: str, when_words: tuple[str, ...]) -> None:
    """Change a post's send time; +1h or -30m move it relative to its current time."""
    app = ctx.app
    done = app.queue.reschedule(
        app.items.find(post_id, RESCHEDULE_STATES), _when_text(when_words)
    ).item
    ctx.out.changed(app, [done], "rescheduled")


SCHEDULE_STATES = ("drafts",)


@click.command(cls=WhenCommand, context_settings={"ignore_unknown_options": True})
@id_argument(SCHEDULE_STATES)
@_when_args
@format_option
@pass_context
def schedule(ctx: Context, post_id: str, when_words: tuple[str, ...]) -> None:
    """Move a draft into the queue at WHEN."""
    app = ctx.app
    done = app.queue.schedule(app.items.find(post_id, SCHEDULE_STATES), _when_text(when_words)).item
    ctx.out.changed(app, [done], "queued")


SKIP_STATES = ("scheduled", "drafts")


@click.command(context_settings={"ignore_unknown_options": True})
@id_argument(SKIP_STATES)
@click.argument("when_words", nargs=-1, type=click.UNPROCESSED, metavar="[WHEN]")
@format_option
@pass_context
def skip(ctx: Context, post_id: str, when_words: tuple[str, ...]) -> None:
    """Skip the next occurrence of a recurring post, or the one on WHEN's date."""
    app = ctx.app
    text = _when_text(when_words) or None
    done = app.queue.skip(app.items.find(post_id, SKIP_STATES), text)
    assert done.at is not None
    note(f"skipped {app.items.stamp(done.at)}")
    ctx.out.changed(app, [done.item], "next")


NOW_STATES = ("scheduled",)


@click.command()
@id_argument(NOW_STATES)
@format_option
@pass_context
def now(ctx: Context, post_id: str) -> None:
    """Make a post due now: a running daemon sends it; else it is sent here. Never both."""
    app = ctx.app
    item = app.queue.make_due(app.items.find(post_id, NOW_STATES)).item
    if app.locks.daemon_running():
        ctx.out.handed_over(app, item)
        return
    send_foreground(ctx, item.id)


RETRY_STATES = ("failed",)


@click.command()
@id_argument(RETRY_STATES, many=True)
@click.option("--all", "all_", is_flag=True, help="Retry every failed post.")
@click.option("-s", "--schedule", metavar="WHEN", help="Queue them for WHEN instead of now.")
@format_option
@pass_context
def retry(ctx: Context, ids: tuple[str, ...], all_: bool, schedule: str | None) -> None:
    """Move failed posts back to the queue, due now; accounts that succeeded are not resent."""
    app = ctx.app
    if all_ == bool(ids):
        raise UsageError("give post IDs or --all", "plurspool retry ID... | --all [-s WHEN]")
    items = (
        app.items.in_states(RETRY_STATES)
        if all_
        else [app.items.find(i, RETRY_STATES) for i in ids]
    )
    done: list[Item] = []
    problems = []
    for item in items:
        try:
            done.append(app.queue.retry(item, schedule).item)
        except TimeError:
            raise  # the same for every post: nothing was changed
        except InvalidInput as exc:
            if not all_:
                raise
            problems.append(exc.message)
    ctx.out.changed(app, done, "queued again")
    for p in problems:
        note(f"plurspool: {p}")
    if problems:
        sys.exit(EXIT_INVALID)


@click.command("queue")
@click.argument("name", required=False)
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=7,
    show_default=True,
    help="How many days of slots to show.",
)
@format_option
@pass_context
def queue_(ctx: Context, name: str | None, days: int) -> None:
    """List the slots of the queue NAME (default: every queue) in the next days, free or
    taken, in the queue's local time."""
    ctx.out.slots(ctx.app.views.slots(name, days))
