"""The deletion pass (plurspool(5), `expires`; plurspool(1), `delete`): which sent posts have
copies due to be deleted (expired, or asked for and pending in the ledger), deleting them per
account (every part of the thread) paced by rate limits and retried with backoff like sends, a
ledger row each; and the state change that writes each account's `deleted_at` into the post
file in sent/ (claim → re-read → rewrite in place; the one state change outside queue.py).

A deletion is written into the file only after the platform said it happened, and only from the
ledger's record of it. A crash between a deletion and its record is harmless: the next pass
deletes again, and the platform's "already gone" counts as deleted.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from . import when
from .app import App
from .errors import Busy, PlurspoolError
from .items import Item
from .ledger import Deletion
from .log import Log
from .plan import Limit, Pending, backoff, plan
from .platforms import deletable, deleter
from .platforms.base import DeleteJob, Deleter, Outcome

if TYPE_CHECKING:
    from .post import Post

BACKOFF_CAP = 6 * 3600.0
# Mastodon lets an account delete 30 statuses per 30 minutes, apart from its other limits.
LIMITS = {"mastodon": Limit(30, 1800.0)}
KEY = "delete:"  # the rate-limit key (and server hold) of an account's deletions: KEY + name


@dataclass
class Deleted:
    """What one deletion pass did, and when the next one is needed."""

    deleted: dict[str, list[str]] = field(default_factory=dict)  # post -> accounts deleted
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # post -> account -> why
    deferred: dict[str, str] = field(default_factory=dict)  # post -> why it waits
    recorded: list[str] = field(default_factory=list)  # posts whose file gained `deleted_at`
    wake: float | None = None  # epoch seconds

    def soonest(self, t: float | None) -> None:
        if t is not None and (self.wake is None or t < self.wake):
            self.wake = t


class Deletions:
    """Deletes the copies of sent posts of one spool that are due (or asked for)."""

    def __init__(
        self,
        app: App,
        log: Log,
        *,
        stopping: Callable[[], bool] = lambda: False,
        deadline: Callable[[], float] = lambda: 3600.0,
        rng: random.Random | None = None,
        platform: Callable[[str], Deleter] | None = None,
        on_failure: Callable[[str, str, str], None] = lambda post_id, error, account: None,
    ) -> None:
        self.app = app
        self.log = log
        self.stopping = stopping
        self.deadline = deadline
        self.rng = rng or random.Random()
        self.platform = platform or deleter  # a test's fake, else the registry's
        self.on_failure = on_failure  # the daemon's `daemon.on_failure` hook, event "delete"
        self.holds: dict[str, float] = {}  # account -> until: its server takes no deletions
        self.said: dict[str, str] = {}  # post -> why it waits, as last logged

    def expired(self) -> list[Item]:
        """The posts of sent/ with a copy due now, from the parse cache, and those with a
        deletion pending in the ledger (`send --once`)."""
        now = self.app.clock().timestamp()
        due = self.app.items.due_index("sent")
        return self.and_pending(
            [self.app.items.load(e) for e, t, _ in due if t is not None and t <= now]
        )

    def and_pending(self, items: list[Item]) -> list[Item]:
        """`items` and the posts of sent/ with a deletion pending in the ledger: asked for
        (`delete`) or begun, and not made yet (a rate limit, a temporary failure, a crash)."""
        known = {i.id for i in items}
        for post_id in self.app.ledger.pending_deletions():
            entry = self.app.spool.stat_entry("sent", post_id)
            if post_id not in known and entry is not None:
                items.append(self.app.items.load(entry))
        return items

    def ask(self, item: Item, accounts: Collection[str]) -> Deleted:
        """`plurspool delete`: record the deletions as asked for (durable: what must wait is
        made by a later pass, the daemon's), then make them now where the limits allow."""
        self.app.ledger.request_deletions(item.id, accounts)
        return self.run([item], {item.id: accounts})

    def wanted(self, item: Item, now: float, accounts: Collection[str] | None) -> list[str]:
        """The accounts of a sent post whose copy is to go and is still there: those in
        `accounts` (`plurspool delete`), else those expired by `now` or pending in the ledger."""
        from .post import expiry

        post = item.post
        if post is None:
            return []
        config = self.app.config
        # Only the accounts this host sends (plurspool(5), SEVERAL MACHINES) are its to delete.
        can = {a for a in deletable(config.accounts) if config.sends(a)}
        if accounts is None:
            due = expiry.due(post, config.timezone, can)
            rows = self.app.ledger.deletions(item.id).items()
            accounts = {a for a, t in due.items() if t <= now}
            accounts |= {a for a, row in rows if row.status == "pending"}
        return sorted(a for a in accounts if a in can and a in post.results and live(post, a))

    def run(
        self, items: Iterable[Item], accounts: Mapping[str, Collection[str]] | None = None
    ) -> Deleted:
        """One pass over sent posts: the expired copies of `items` deleted (or, with
        `accounts`, post ID → the accounts to delete now), paced, and recorded."""
        app, ledger = self.app, self.app.ledger
        now = app.clock().timestamp()
        out = Deleted()
        pendings: list[Pending] = []
        items_by_id: dict[str, Item] = {}
        for item in items:
            chosen = self.wanted(item, now, None if accounts is None else accounts[item.id])
            rows = ledger.deletions(item.id)
            todo = {a: _not_before(rows.get(a)) for a in chosen if _open(rows.get(a))}
            for a, was in rows.items():  # gone meanwhile (another host, by hand): not pending
                r = item.post.results.get(a) if item.post else None
                if was.status == "pending" and r is not None and r.deleted_at is not None:
                    ledger.record_deletion(item.id, a, "deleted")
            for a in chosen:
                row = rows.get(a)
                if row is not None and row.status == "failed":
                    out.failed.setdefault(item.id, {})[a] = row.error or "failed"
            if any(a in rows and rows[a].status == "deleted" for a in chosen) and not todo:
                self._record(item, out)  # deleted before a crash, not yet in the file
            if todo:
                items_by_id[item.id] = item
                keys = {a: self._keys(a) for a in todo}
                since = item.summary.expires if item.summary and item.summary.expires else now
                pendings.append(Pending(item.id, min(since, now), todo, keys))  # oldest first
        limits = {
            KEY + a: LIMITS[acc.platform]
            for a, acc in app.config.accounts.items()
            if acc.platform in LIMITS
        }
        windows = {k: ledger.window(k, now - lim.window) for k, lim in limits.items()}
        held = ledger.holds(now).items()
        self.holds = {k.removeprefix(KEY): t for k, t in held if k.startswith(KEY)}
        decisions, wake = plan(pendings, windows, limits, now, self.holds)
        out.soonest(wake)
        for d in decisions:
            if d.wait and not d.send:
                until, why = min(d.wait.values())
                out.deferred[d.post_id] = f"{why} until {when.iso_utc(_dt(until))}"
            if d.send and not self.stopping():
                self._delete_post(items_by_id[d.post_id], d.send, out)
        for post_id, why in out.deferred.items():
            if self.said.get(post_id) != why:  # once per change, not every pass
                self.log.event("delete-deferred", id=post_id, reason=why)
        self.said = dict(out.deferred)
        return out

    def _keys(self, account: str) -> tuple[str, ...]:
        acc = self.app.config.accounts[account]
        return (KEY + account,) if acc.platform in LIMITS else ()

    def _delete_post(self, item: Item, accounts: list[str], out: Deleted) -> None:
        """Claim a post, delete its copies on `accounts`, then record what is gone."""
        app = self.app
        try:
            with app.locks.claim(item.id):
                entry = app.spool.stat_entry("sent", item.id)
                if entry is None:
                    return  # moved meanwhile (retried, removed by hand)
                fresh = app.items.load(entry)
                now = app.clock().timestamp()
                live = set(self.wanted(fresh, now, accounts))
                for account in accounts:
                    held = self.holds.get(account, 0.0)
                    if held > now:  # an answer earlier in this pass used up the window
                        out.deferred[item.id] = f"server rate limit until {when.iso_utc(_dt(held))}"
                        out.soonest(held)
                    elif account in live and not (self.stopping() and self.deadline() <= 0):
                        self._delete_account(fresh, account, out)
                self._record_claimed(fresh, out)
        except Busy:  # a sender, `edit` or `delete` holds it for a moment
            out.deferred[item.id] = "another plurspool is changing it right now"
            out.soonest(app.clock().timestamp() + 0.25)

    def _delete_account(self, item: Item, name: str, out: Deleted) -> None:
        app, ledger = self.app, self.app.ledger
        assert item.post is not None
        account = app.config.accounts[name]
        before = ledger.begin_deletion(item.id, name)
        sent = ledger.deliveries(item.id).get(name)
        job = DeleteJob(
            post_id=item.id,
            account=account,
            result=item.post.results[name],
            sent=sent.material if sent is not None else {},
            state_dir=app.config.state_dir,
            deadline=self.deadline,
            material=dict(before.material),
            save=lambda material: ledger.save_deletion(item.id, name, dict(material)),
            repost=item.post.repost is not None,
        )
        attempts = before.attempts + 1
        self.log.event("deleting", id=item.id, account=name, attempt=attempts)
        try:
            outcome = self.platform(account.platform).delete(job)
        except PlurspoolError as exc:
            error = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
            outcome = Outcome("permanent", error=error)
        except Exception as exc:  # a platform bug must not take the daemon down
            outcome = Outcome("temporary", error=f"internal error: {type(exc).__name__}")
        self._outcome(item.id, name, attempts, outcome, out)

    def _outcome(self, post_id: str, name: str, attempts: int, o: Outcome, out: Deleted) -> None:
        from .post import recorded

        ledger, now = self.app.ledger, self.app.clock().timestamp()
        if o.hold is not None:
            self.holds[name] = now + o.hold
            ledger.hold(KEY + name, now + o.hold)
        if o.status == "sent":
            ledger.record_deletion(post_id, name, "deleted", rate_keys=self._keys(name))
            out.deleted.setdefault(post_id, []).append(name)
            self.log.event("deleted", id=post_id, account=name)
            return
        error = recorded(o.error) or "unknown error"
        daemon = self.app.config.daemon
        if o.status == "temporary" and self.stopping() and self.deadline() <= 0:
            ledger.record_deletion(post_id, name, "pending", error=error)
            return
        if o.status == "temporary" and attempts <= daemon.max_retries:
            wait = backoff(
                attempts, daemon.retry_delay.total_seconds(), BACKOFF_CAP, self.rng.random()
            )
            wait = max(wait, o.retry_after or 0.0, o.hold or 0.0)
            ledger.record_deletion(post_id, name, "pending", error=error, next_at=now + wait)
            out.soonest(now + wait)
            out.deferred[post_id] = f"{name}: {error}; retry in {wait:.0f}s"
            self.log.event(
                "delete-retry",
                level="warning",
                id=post_id,
                account=name,
                error=error,
                wait=f"{wait:.0f}s",
            )
            return
        if o.status == "temporary":
            error = recorded(f"gave up after {attempts} attempts: {error}")
        ledger.record_deletion(post_id, name, "failed", error=error)
        out.failed.setdefault(post_id, {})[name] = error
        self.log.event("delete-failed", level="error", id=post_id, account=name, error=error)
        self.on_failure(post_id, error, name)

    def _record(self, item: Item, out: Deleted) -> None:
        try:
            with self.app.locks.claim(item.id):
                entry = self.app.spool.stat_entry("sent", item.id)
                if entry is not None:
                    self._record_claimed(self.app.items.load(entry), out)
        except Busy:
            out.soonest(self.app.clock().timestamp() + 0.25)

    def _record_claimed(self, item: Item, out: Deleted) -> None:
        """Write `deleted_at` for each account the ledger has as deleted (the caller holds
        the claim): re-read, rewrite in place; nothing else of the file changes."""
        from .post import parse, with_record

        app = self.app
        rows = app.ledger.deletions(item.id)
        try:
            data = app.spool.read(item.entry)
            post = parse(data)
            results = dict(post.results)
            for account, row in rows.items():
                r = results.get(account)
                if row.status == "deleted" and r is not None and r.deleted_at is None:
                    at = when.iso_utc(_dt(row.at) if row.at is not None else app.clock())
                    results[account] = dataclasses.replace(r, deleted_at=at)
            if results == dict(post.results):
                return
            written = with_record(data, results, post.attempts)
            if len(written) > app.spool.max_size:
                self.log.event(
                    "results",
                    level="warning",
                    id=item.id,
                    reason="deleted_at not written: the post would be over max_post_size",
                )
                return
            app.spool.replace(item.entry, written)
        except (PlurspoolError, FileNotFoundError) as exc:
            # Changed meanwhile, or unreadable: the ledger keeps it; the next pass writes it.
            error = exc.message if isinstance(exc, PlurspoolError) else str(exc)
            self.log.event("error", level="error", id=item.id, error=error)
            out.soonest(app.clock().timestamp() + 5)
            return
        out.recorded.append(item.id)


def live(post: Post, account: str) -> bool:
    from .post import expiry

    return expiry.live(post.results[account])


def _open(row: Deletion | None) -> bool:
    """Whether a deletion is still to be made (not done, not failed for good)."""
    return row is None or row.status == "pending"


def _not_before(row: Deletion | None) -> float | None:
    return None if row is None else row.next_at


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)
