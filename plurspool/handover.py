"""A post whose accounts several hosts send ([senders]): this host's finished accounts' results
written into it while it stays in scheduled/ for the others (plurspool(5), SEVERAL MACHINES).

The state change is `Queue.finish` with `keep`; the host that finishes the last account moves
the post, as any sender does.
"""

from __future__ import annotations

from .app import App
from .hosts import settled
from .items import Item
from .ledger import Delivery
from .log import Log
from .queue import Failed


def record_here(app: App, log: Log, item: Item, ds: dict[str, Delivery]) -> Failed | None:
    """Write the results of this host's accounts finished in its ledger (`ds`) and not yet in
    the file; the Failed of a later copy that went to failed/ instead, else None."""
    assert item.post is not None
    finished = [a for a, d in ds.items() if d.status != "pending"]
    new = [a for a in app.config.mine(finished) if a not in item.post.results]
    done = app.queue.finish(item, ds, new, keep=True) if new else None
    if isinstance(done, Failed):
        return done
    if done is not None:
        log.event("recorded", id=item.id, accounts=",".join(new))
    return None


def waiting(app: App, item: Item) -> str | None:
    """Why a post of scheduled/ is not this host's to send: the accounts it has left are all
    other hosts' (naming them); None when this host sends one of them, or none is left."""
    if item.state != "scheduled" or item.post is None:
        return None
    left = [a for a in app.items.platforms(item.post) if a not in settled(item.post)]
    return app.config.not_here(left) if left else None
