"""`plurspool delete`: take a sent post back from its accounts now (the expiry's machinery)."""

from __future__ import annotations

import sys

import click

from ..errors import EXIT_FAILURE, InvalidInput, UsageError
from .context import Context, format_option, id_argument, pass_context
from .output import note


@click.command()
@id_argument(None)
@click.option(
    "-p",
    "--platform",
    "accounts",
    metavar="ACCOUNT",
    multiple=True,
    help="Only from ACCOUNT (repeatable); default every account it was sent to.",
)
@click.option("--force", is_flag=True, help="Do not ask (needed without a terminal).")
@format_option
@pass_context
def delete(ctx: Context, post_id: str, accounts: tuple[str, ...], force: bool) -> None:
    """Delete a sent post from its accounts now; it stays in sent/ with deleted_at."""
    from ..deleting import Deletions
    from ..log import Log, NullLog
    from ..platforms import deletable
    from ..post import expiry

    app = ctx.app
    item = app.items.find(post_id)
    post = item.post
    if item.state != "sent" or post is None:
        where = f"in {item.state}/" if item.state != "sent" else "unreadable"
        raise InvalidInput(
            f"{item.id} is {where}: only a post in sent/ can be deleted from its accounts",
            f"to keep a queued post from being sent, `plurspool cancel {item.id}`"
            if item.state in ("new", "scheduled")
            else "there is nothing on the platforms to delete",
        )
    sent = [a for a, r in post.results.items() if r.error is None and (r.id or r.url)]
    unknown = [a for a in accounts if a not in sent]
    if unknown:
        raise InvalidInput(
            f"{item.id} was not sent to {', '.join(unknown)}",
            f"it was sent to: {', '.join(sent) or 'no account'}",
        )
    chosen = list(accounts) or sent
    can = deletable(app.config.accounts)
    for account in chosen:
        if account in can and not app.config.sends(account):
            note(f"{account}: sent from {app.config.sender_of(account)}; delete it there")
        elif account not in can:
            platform = (
                app.config.accounts[account].platform if account in app.config.accounts else "?"
            )
            note(f"{account}: {platform} accounts cannot delete; left as it is")
    todo = [a for a in chosen if a in can and app.config.sends(a) and expiry.live(post.results[a])]
    if not todo:
        note(f"{item.id}: nothing left to delete")
        ctx.out.post(app, app.items.find(item.id))
        return
    if not force:
        if not sys.stdin.isatty():
            raise UsageError(
                f"refusing to delete {item.id} from {', '.join(todo)} without a terminal to ask",
                "add --force",
            )
        if not click.confirm(f"Delete {item.id} from {', '.join(todo)}?", err=True):
            sys.exit(EXIT_FAILURE)
    log = Log(verbose=True) if ctx.verbose else NullLog()
    done = Deletions(app, log).ask(item, todo)  # recorded: what must wait, the daemon makes
    gone = set(done.deleted.get(item.id, []))
    for account in todo:
        if account in gone:
            note(f"{account}: deleted")
        elif account in done.failed.get(item.id, {}):
            note(f"{account}: not deleted: {done.failed[item.id][account]}")
    if len(gone) < len(todo) and item.id in done.deferred:
        note(
            f"not deleted yet: {done.deferred[item.id]}; recorded: the daemon deletes it "
            "then (or `plurspool send --once`)"
        )
    ctx.out.post(app, app.items.find(item.id))
    if len(gone) < len(todo):
        sys.exit(EXIT_FAILURE)
