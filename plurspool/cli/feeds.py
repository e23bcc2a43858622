"""The `feed` commands: add, list and remove the feeds the sending host polls."""

from __future__ import annotations

import click

from ..errors import UsageError
from .context import Context, format_option, pass_context
from .output import note


@click.group("feed")
def feed_group() -> None:
    """Feeds whose new entries become posts (RSS or Atom; see plurspool(1), FEEDS).

    The feeds are listed in feeds.toml in the spool; the sending host polls them every
    [feeds] poll_interval and keeps the entries it has seen in its state directory.
    """


@feed_group.command()
@click.argument("url")
@click.option(
    "-q",
    "--queue",
    "queue",
    metavar="NAME",
    help="Put each new entry in the first free slot of this queue (default: `default`).",
)
@click.option("--draft", is_flag=True, help="Keep each new entry in drafts/ instead.")
@click.option(
    "--template",
    metavar="T",
    help="The post's text: {title}, {url} and {summary} (default: '{title} {url}').",
)
@pass_context
def add(ctx: Context, url: str, queue: str | None, draft: bool, template: str | None) -> None:
    """Add the feed at URL: read it once and record its entries, posting none of them."""
    from ..feedfetch import shown_url
    from ..feeds import DEFAULT_TEMPLATE, Feed, Feeds

    if queue is not None and draft:
        raise UsageError("--queue and --draft exclude each other", "use one of them")
    feed = Feed(url, queue, draft, template if template is not None else DEFAULT_TEMPLATE)
    count = Feeds(ctx.app).add(feed)
    note(f"added {shown_url(url)}: {count} entries seen, none posted; new ones go to {feed.target}")


@feed_group.command("list")
@format_option
@pass_context
def list_(ctx: Context) -> None:
    """List the feeds, with this host's last poll, last error and entries seen."""
    from ..feeds import Feeds

    ctx.out.feeds(Feeds(ctx.app).views())


@feed_group.command()
@click.argument("url")
@pass_context
def remove(ctx: Context, url: str) -> None:
    """Remove the feed at URL; its posts already made stay."""
    from ..feedfetch import shown_url
    from ..feeds import Feeds

    Feeds(ctx.app).remove(url)
    note(f"removed {shown_url(url)}")
