"""The command that edits a sent post on the servers: `amend` (in $VISUAL/$EDITOR)."""

from __future__ import annotations

import click

from .context import Context, id_argument, pass_context
from .output import note, saved
from .posting import _ask


@click.command()
@id_argument(("sent",))
@pass_context
def amend(ctx: Context, post_id: str) -> None:
    """Edit a sent post in $VISUAL/$EDITOR, then on the accounts that allow edits (mastodon).

    Exit status 3, and nothing sent, when no account the post went to can be edited.
    """
    from ..amend import amend as amend_post

    app = ctx.app
    done = amend_post(app, app.items.find(post_id, ("sent",)), note=note, ask=_ask())
    if done is None:
        return
    for name in done.not_editable:
        platform = app.config.accounts[name].platform if name in app.config.accounts else "?"
        note(f"{name}: not editable ({platform} posts cannot be changed); left as it was")
    for name in done.deleted:
        note(f"{name}: deleted from it (`expires` or `delete`); nothing to edit")
    for name in done.unchanged:
        note(f"{name}: nothing to edit")
    note(f"edited on {', '.join(done.edited)}")
    saved(app, done.item)
