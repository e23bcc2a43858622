"""The daemon's index of a state dir: per post the file's key and the time it wakes the daemon
(in scheduled/ its due time, in sent/ when a copy expires), in a heap, from the parse cache.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from datetime import datetime

from .items import Item, Items, wake
from .spool import Spool

WARM = 60.0  # posts due within this many seconds are kept parsed (1,000 due at once: 0.2 s)


class Index:
    """What is in a state dir: per ID the file's key and wake time, and a heap of wake times.

    In scheduled/ a post wakes the daemon at its due time; in sent/ at the time a copy expires
    (`items.wake`). Parsed items are held only for posts that are due or invalid (to send or
    report them): 100k posts cost a dict and a heap entry each, not 100k parsed posts in
    memory, and a pass touches only what changed or is due.
    """

    def __init__(
        self, items: Items, spool: Spool, clock: Callable[[], datetime], state: str = "scheduled"
    ) -> None:
        self.items = items
        self.spool = spool
        self.clock = clock  # the app's one clock
        self.state = state
        # ID -> (hash of the file's key, wake time if any): ~250 bytes a post, all told
        self.known: dict[str, tuple[int, float | None]] = {}
        self.heap: list[tuple[float, str]] = []
        self.due: dict[str, Item] = {}
        self.bad: dict[str, Item] = {}
        self.changes = 0  # how often `known` changed: the ICS feed is remade when it did

    def rescan(self) -> None:
        before, self.known = self.known, {}
        self.due.clear()
        self.bad.clear()
        self.heap = []
        soon = self.clock().timestamp() + WARM
        for entry, due, valid in self.items.due_index(self.state):  # the parse cache's times
            if not valid and self.state == "scheduled":
                self._put(self.items.load(entry))
                continue
            if due is None:
                self.known[entry.id] = (hash(entry.key), None)  # a sent post not expiring
                continue
            self.known[entry.id] = (hash(entry.key), due)
            self.heap.append((due, entry.id))
            if due <= soon:
                self.items.load(entry)  # parsed now, not in the very second it is due
        heapq.heapify(self.heap)
        self.changes += self.known != before

    def refresh(self, post_id: str) -> None:
        entry = self.spool.stat_entry(self.state, post_id)
        before = self.known.pop(post_id, None)
        self.due.pop(post_id, None)
        self.bad.pop(post_id, None)
        if entry is not None:
            item = self.items.load(entry)
            self._put(item)
            t = self._time(item)
            if t is not None and t > self.clock().timestamp() + WARM:
                self.items.forget(entry.path)  # parsed again when due; not held till then
        self.changes += self.known.get(post_id) != before

    def _time(self, item: Item) -> float | None:
        """When an item wakes the daemon; in sent/, a problem that would keep a post from
        being sent does not keep its copies from being deleted."""
        return wake(item) if item.valid or self.state == "sent" else None

    def _put(self, item: Item) -> None:
        t = self._time(item)
        self.known[item.id] = (hash(item.entry.key), t)
        if t is not None:
            heapq.heappush(self.heap, (t, item.id))
        elif not item.valid and self.state == "scheduled":
            self.bad[item.id] = item

    def take_due(self, now: float) -> list[Item]:
        """Move posts whose time has come from the heap to the due set; return the due set."""
        while self.heap and self.heap[0][0] <= now:
            t, post_id = heapq.heappop(self.heap)
            known = self.known.get(post_id)
            if known is None or known[1] != t:
                continue  # stale: the post changed or left
            entry = self.spool.stat_entry(self.state, post_id)
            item = self.items.load(entry) if entry is not None else None
            if (
                entry is None
                or item is None
                or hash(entry.key) != known[0]
                or self._time(item) != t
            ):
                self.refresh(post_id)  # changed since it was indexed: index it anew
                continue
            self.due[post_id] = item
        for post_id in list(self.due):
            self.refresh_if_changed(post_id)
        return [i for i in self.due.values() if (self._time(i) or math.inf) <= now]

    def refresh_if_changed(self, post_id: str) -> None:
        item = self.due.get(post_id)
        entry = self.spool.stat_entry(self.state, post_id)
        if item is None or entry is None or entry.key != item.entry.key:
            self.refresh(post_id)

    def invalid(self) -> list[Item]:
        return list(self.bad.values())

    def next_due(self) -> float | None:
        while self.heap:
            t, post_id = self.heap[0]
            known = self.known.get(post_id)
            if known is not None and known[1] == t:
                return t
            heapq.heappop(self.heap)  # stale: the post changed or left
        return None
