"""The posts `plurspool list` shows: of one state or all, to one account or any, soonest first.

Each output takes what it needs, and only that is computed: JSON without an account filter
comes from the listings as lines (100k posts in a second); a table needs the items and views.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .spool import STATES

if TYPE_CHECKING:
    from .app import App
    from .items import Item
    from .views import PostView


class ListedPosts:
    """The posts in `state_name` (a state, or "all"), to `account` if given."""

    def __init__(self, app: App, state_name: str, account: str | None) -> None:
        self.app = app
        self.state_name = state_name
        self.states = STATES if state_name == "all" else (state_name,)
        self.account = account

    def json_lines(self) -> bytes | None:
        """The views as JSON, one a line, from the listings; None when an account filters them."""
        return None if self.account else self.app.views.view_lines(self.states)

    @cached_property
    def items(self) -> list[Item]:
        from .views import sort_key

        items = sorted(self.app.items.in_states(self.states), key=sort_key)
        if self.account:
            items = [i for i in items if self.account in self.app.items.platforms(i.summary)]
        return items

    @cached_property
    def views(self) -> list[PostView]:
        """The view of each of `items`, in the same order (plurspool(1), JSON OUTPUT)."""
        app = self.app
        ledger = app.ledger.all_deliveries() if app.ledgers.exists() else {}
        held = app.views.held(self.items)  # one git run for them all ([git] send_only_committed)
        return [app.views.view(i, ledger.get(i.id, {}), held) for i in self.items]

    def id_prefix_lengths(self) -> dict[str, int]:
        """How many characters of each ID tell it apart from every other in the spool."""
        return self.app.items.prefix_lengths()
