"""The commands that make posts: `post` (text or stdin), `new` and `edit` (in $VISUAL/$EDITOR)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from ..errors import EXIT_FAILURE, UsageError
from .context import Context, format_option, id_argument, pass_context
from .output import note, saved

if TYPE_CHECKING:
    from ..editing import Ask
    from ..post import Media


@click.command()
@click.argument("text", required=False)
@click.option(
    "-p",
    "--platform",
    "platforms",
    multiple=True,
    metavar="ACCOUNT",
    help="Send to this account (repeatable); default: default_platforms.",
)
@click.option(
    "-s", "--schedule", metavar="WHEN", help="Queue for this time instead of sending now."
)
@click.option(
    "-q",
    "--queue",
    "queue",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[NAME]",
    help="Queue in the first free slot of the queue NAME (default: `default`).",
)
@click.option(
    "--next", "first", is_flag=True, help="With --queue: the first slot; later posts move on."
)
@click.option("--draft", is_flag=True, help="Keep it in drafts/; never sent until scheduled.")
@click.option("--cw", metavar="TEXT", help="Content warning.")
@click.option("--lang", "language", metavar="LANG", help="Language tag, e.g. en or pt-BR.")
@click.option("--visibility", type=click.Choice(["public", "unlisted", "followers", "direct"]))
@click.option("--sensitive/--no-sensitive", default=None, help="Mark media as sensitive.")
@click.option(
    "--media",
    multiple=True,
    metavar="PATH[:ALT]",
    help="Attach a file from the spool, with alt text (repeatable).",
)
@format_option
@pass_context
def post(
    ctx: Context,
    text: str | None,
    platforms: tuple[str, ...],
    schedule: str | None,
    queue: str | None,
    first: bool,
    draft: bool,
    cw: str | None,
    language: str | None,
    visibility: str | None,
    sensitive: bool | None,
    media: tuple[str, ...],
) -> None:
    """Make a post from TEXT (or stdin): send it now, queue it (-s, -q), or keep it (--draft).

    A line holding only `---` starts the next part of a thread. Without --schedule or --draft
    the post is sent at once, in the foreground, through the same path as the daemon, and each
    account's result is printed.
    """
    app = ctx.app
    if queue and text is None and queue not in app.config.queues:
        # `post -q "some text"`: click took the text for the queue's name.
        queue, text = "", queue
    if text is None:
        if sys.stdin.isatty():
            note("reading the post from stdin; end with Ctrl-D")
        text = sys.stdin.read()
    if schedule is not None and draft:
        raise UsageError("--schedule and --draft exclude each other", "use one of them")
    added = app.queue.add(
        text,
        platforms=platforms,
        schedule=schedule,
        draft=draft,
        cw=cw,
        language=language,
        visibility=visibility,
        sensitive=sensitive,
        media=_parse_media(media),
        queue=queue,
        first=first,
    )
    item, at = added.item, added.at
    if added.card is not None:
        note(f"warning: {added.card}")
    if draft or schedule is not None or queue is not None:
        ctx.out.added(app, item, queued=at is not None)
        return
    send_foreground(ctx, item.id)


def send_foreground(ctx: Context, post_id: str) -> None:
    """Send one post now, in this process, unless a running daemon does it; print results."""
    from ..sender import send_one

    view = send_one(ctx.app, post_id, verbose=ctx.verbose)
    ctx.out.sent(view)
    if view["state"] != "sent":
        sys.exit(EXIT_FAILURE)


def _parse_media(values: Sequence[str]) -> list[Media]:
    from ..post import Media

    out = []
    for v in values:
        path, _, alt = v.partition(":")
        out.append(Media(path=path, alt=alt or None))
    return out


def _ask() -> Ask | None:
    """How the editor loop asks whether to edit again: at the terminal, if there is one."""
    if not sys.stdin.isatty():
        return None
    return lambda question: click.confirm(question, default=True, err=True)


@click.command()
@click.option("-s", "--schedule", metavar="WHEN", help="Send time to put in the template.")
@click.option("-p", "--platform", "platforms", multiple=True, metavar="ACCOUNT")
@click.option("--draft", is_flag=True, help="Save into drafts/ instead of the queue.")
@pass_context
def new(ctx: Context, schedule: str | None, platforms: tuple[str, ...], draft: bool) -> None:
    """Write a new post in $VISUAL/$EDITOR; it is queued when saved valid.

    An unchanged or empty file aborts. An invalid one is reported and the editor re-opens.
    """
    from ..editing import new_post

    app = ctx.app
    item = new_post(app, schedule=schedule, platforms=platforms, draft=draft, note=note, ask=_ask())
    if item is None:
        sys.exit(EXIT_FAILURE)
    saved(app, item)


EDIT_STATES = ("new", "drafts", "scheduled", "failed")


@click.command()
@id_argument(EDIT_STATES)
@pass_context
def edit(ctx: Context, post_id: str) -> None:
    """Edit a post in $VISUAL/$EDITOR; the daemon never sees an invalid or half-saved version."""
    from ..editing import edit_post

    app = ctx.app
    item = edit_post(app, app.items.find(post_id, EDIT_STATES), note=note, ask=_ask())
    if item is not None:
        saved(app, item)
