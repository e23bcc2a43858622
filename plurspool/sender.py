"""One pass of the sender: intake → plan → claim → send per account → record → move.

The daemon, `send --once`, `post` without a schedule and `now` without a daemon all come here, so
a post takes exactly the same path whoever sends it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from . import reposts, when
from .app import App
from .config import Account, Config
from .errors import Busy, PlurspoolError, SpoolError
from .finisher import Finisher
from .gitsync import NETWORK_TIMEOUT, RECHECK, Sync
from .handover import record_here, waiting
from .hosts import idempotency_key, settled
from .items import Item
from .ledger import Delivery
from .locks import Claim
from .log import Log
from .plan import SERVER_LIMIT, Limit, Pending, backoff, plan
from .platforms import get, release
from .platforms.base import Job, Outcome, Quoted
from .post import recorded
from .queue import Failed, Unfinished
from .spool import Entry, classify
from .views import PostView

BACKOFF_CAP = 6 * 3600.0
BUSY_RETRY = 0.25  # seconds before a claimed post is tried again


@dataclass
class PassResult:
    """What one pass did, and when the next one is needed."""

    queued: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deferred: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    repeated: list[str] = field(default_factory=list)  # templates moved on, their copies
    held: dict[str, str] = field(default_factory=dict)  # not committed ([git]): ID -> why
    wake: float | None = None  # epoch seconds; None when nothing is queued

    def soonest(self, t: float | None) -> None:
        if t is not None and (self.wake is None or t < self.wake):
            self.wake = t


class Sender:
    """Sends due posts of one spool."""

    def __init__(
        self,
        app: App,
        log: Log,
        *,
        stopping: Callable[[], bool] = lambda: False,
        deadline: Callable[[], float] = lambda: 3600.0,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        self.log = log
        self.stopping = stopping
        self.deadline = deadline
        self.rng = rng or random.Random()
        # Seconds a post's file must have been left alone before it is sent: an editor that
        # rewrites a scheduled post in place at its due time is not caught between two writes.
        self.settle = 0.0
        self.reported: dict[str, tuple[tuple[int, int, int], str]] = {}
        self.holds: dict[str, float] = {}  # account -> until: its server has no requests left
        self.elsewhere: set[str] = set()  # posts said to be other hosts' to send ([senders])
        self.finisher: Finisher | None = None  # during a pass with several posts to send
        self.hooks: list[subprocess.Popen[bytes]] = []
        self.git = Sync(app.spool, app.items, log)  # [git]: holds, autocommit (gitsync.py)
        self.git.configure(app.config, starting=True)

    @property
    def config(self) -> Config:
        return self.app.config

    # -- intake ----------------------------------------------------------------------------

    def intake(self, entry: Entry, result: PassResult) -> None:
        """Take one complete file from new/ into scheduled/ (or failed/), and say so."""
        done = self.app.queue.intake(entry)
        if isinstance(done, Failed):
            self._failed_invalid(done, result)
        elif done is not None:
            result.queued.append(done.id)
            if done.card is not None:
                self.log.event("card", level="warning", id=done.id, error=done.card)
            self.log.event(
                "queued",
                id=done.id,
                at=when.iso_utc(done.at),
                local=self.app.items.stamp(done.at),
                path=done.path,
            )

    def _failed_invalid(self, failed: Failed, result: PassResult) -> None:
        """Say that a file the sender refused went to failed/."""
        result.failed.append(failed.id)
        self.log.event("invalid", level="error", id=failed.id, reason=failed.reason)
        self._on_failure(failed.id, failed.reason, None)

    # -- sending ---------------------------------------------------------------------------

    def run_pass(self, *, only: str | None = None) -> PassResult:
        """One full pass (for `send --once` and the foreground): intake all of new/, then send
        everything due in scheduled/ (or only the post `only`)."""
        result = PassResult()
        app = self.app
        if only is None:
            # In file-name order: queue posts get their slots in that order (plurspool(5)).
            for entry in sorted(app.spool.entries("new"), key=lambda e: e.id):
                if self.stopping():
                    break
                self.intake(entry, result)
        due = []
        for entry in app.spool.entries("scheduled"):
            if only is not None and entry.id != only:
                continue
            item = app.items.load(entry)
            if item.post is None or item.problem or item.due is None:
                self._report_invalid(item, result)
            elif item.due > app.clock():
                result.soonest(item.due.timestamp())
            else:
                due.append(item)
        self.send_due(due, result)
        self._reap_hooks()
        return result

    def send_due(self, due: Iterable[Item], result: PassResult) -> None:
        """Send the posts that are due (valid items of scheduled/), paced by the rate limits.

        A post found due for the first time (this host's ledger knows nothing of it, its file
        records no result) more than max_lateness after its time goes to failed/ instead: after
        downtime, or arriving late through a sync. One that waits for a rate limit or a retry
        has ledger rows, and is never failed for being late.
        """
        app = self.app
        now = app.clock().timestamp()
        self.git.configure(self.config)
        due = self.git.admit(list(due), result.held)
        if result.held:
            result.soonest(now + RECHECK)  # the branch may move: look again soon
        pendings: list[Pending] = []
        items: dict[str, Item] = {}
        known: dict[str, dict[str, Delivery]] = {}
        ledger = app.ledger
        for item in self._occurrences(due, result):
            assert item.due is not None
            if item.post is None:
                continue  # changed since it was listed: the next pass sees the new version
            self.reported.pop(item.id, None)
            ds = self._deliveries(item)
            todo = self._todo(item, ds)
            if todo and not self.config.mine(todo):  # other hosts send the rest ([senders])
                if any(d.status != "pending" and a not in item.post.results for a, d in ds.items()):
                    self._finish_claimed(item, result)  # this host's results, not yet written
                elif item.id not in self.elsewhere:
                    self.elsewhere.add(item.id)
                    self.log.event("elsewhere", id=item.id, reason=self.config.not_here(todo))
                continue
            if app.items.first_due_too_late(item, bool(ds)) is not None:
                self._finish_failed_late(item, result)
                continue
            if not todo:
                self._finish_claimed(item, result)
                continue
            items[item.id] = item
            known[item.id] = ds
            pendings.append(
                Pending(
                    item.id,
                    item.due.timestamp(),
                    {a: _not_before(ds.get(a)) for a in self.config.mine(todo)},
                    {a: self._rate_keys(a) for a in self.config.mine(todo)},
                )
            )
        limits = {
            k: Limit(v.count, v.window.total_seconds()) for k, v in self.config.rate_limits.items()
        }
        windows = {k: ledger.window(k, now - lim.window) for k, lim in limits.items()}
        self.holds = ledger.holds(now)
        decisions, wake = plan(pendings, windows, limits, now, self.holds)
        result.soonest(wake)
        # With several posts to send, each one is finished (results written, moved) by a
        # second thread while the next one is sent: one's disk syncs overlap the other's
        # network wait. Each post still goes through the same steps in the same order.
        if sum(1 for d in decisions if d.send) > 1:
            self.finisher = Finisher(self.log)
        try:
            for d in decisions:
                if self.stopping():
                    break
                if d.wait and not d.send:
                    until, why = min(d.wait.values())
                    result.deferred[d.post_id] = f"{why} until {when.iso_utc(_dt(until))}"
                for account, (until, why) in sorted(d.wait.items()):
                    if why.startswith("rate limit") or why == SERVER_LIMIT:
                        self._defer(d.post_id, account, why, until, known[d.post_id].get(account))
                if d.send:
                    self.send_item(items[d.post_id], d.send, result)
        finally:
            if self.finisher is not None:
                self.finisher.close()  # every post of the pass finished before it ends
                self.finisher = None
            release()  # connections kept for the posts of this pass
            self.git.pass_done()  # commits what the pass changed, in its own thread

    def _occurrences(self, due: Iterable[Item], result: PassResult) -> list[Item]:
        """The due posts, each recurring post's template replaced by the occurrence it puts
        in scheduled/ (plurspool(5), `repeat`), which is sent like any post."""
        app = self.app
        out = []
        for item in due:
            if item.post is None or item.post.repeat is None:
                out.append(item)
                continue
            try:
                done = app.queue.repeat(item)
            except Busy:
                result.soonest(app.clock().timestamp() + BUSY_RETRY)
                continue
            except (PlurspoolError, FileNotFoundError) as exc:
                error = exc.message if isinstance(exc, PlurspoolError) else str(exc)
                self.log.event("error", level="error", id=item.id, error=error)
                continue
            if done is None:
                continue
            result.repeated.append(item.id)
            for at in done.skipped:
                self.log.event("skipped", level="warning", id=item.id, at=when.iso_utc(at))
            following = when.iso_utc(done.next) if done.next is not None else None
            self.log.event("repeat", id=item.id, occurrence=done.copy, next=following)
            if done.next is not None:
                result.soonest(done.next.timestamp())
            if done.copy is not None:
                result.repeated.append(done.copy)
                entry = app.spool.stat_entry("scheduled", done.copy)
                if entry is not None:
                    copy = app.items.load(entry)
                    if copy.valid and copy.due is not None:
                        out.append(copy)
        return out

    def _defer(
        self, post_id: str, account: str, why: str, until: float, d: Delivery | None
    ) -> None:
        """Record (for `list`) and log, once per change, that a rate limit holds an account."""
        reason = f"deferred: {why} until {when.iso_utc(_dt(until))}"
        if d is not None and d.deferred and d.error == reason:
            return
        self.app.ledger.defer(post_id, account, reason, until)
        self.log.event(
            "deferred", id=post_id, account=account, reason=why, until=when.iso_utc(_dt(until))
        )

    def _hold(self, account: str, until: float) -> None:
        """The account's server said no requests are left until `until`: nothing more goes
        to it before then (a later post waits, deferred, instead of meeting a 429)."""
        if self.holds.get(account) == until:
            return
        self.holds[account] = until
        self.app.ledger.hold(account, until)
        self.log.event(
            "hold",
            level="warning",
            account=account,
            reason=SERVER_LIMIT,
            until=when.iso_utc(_dt(until)),
        )

    def _deliveries(self, item: Item) -> dict[str, Delivery]:
        """The ledger's rows for a post, once a retry its file records (`retried`, written by
        `plurspool retry` on any host) is honoured: its failed accounts reopened, once per
        token. Never inferred from the file alone: a post may wait in scheduled/ with an account
        failed for good and another still backing off, its file recording neither."""
        ledger = self.app.ledger
        token = item.post.retried if item.post is not None else None
        if token is not None and ledger.reopen(item.id, token):
            self.log.event("reopened", id=item.id, retried=token)
        return ledger.deliveries(item.id)

    def _todo(self, item: Item, ds: dict[str, Delivery]) -> list[str]:
        """Accounts of a post still to send, by any host: not yet sent, not permanently failed."""
        assert item.post is not None
        # A result recorded in the file counts even without this host's ledger (git sync, the
        # host sending the account), and a success even when the platform gave no id or url.
        done = settled(item.post)
        out = []
        for account in self.app.items.platforms(item.post):
            d = ds.get(account)
            if account in done or (d is not None and d.status in ("sent", "failed")):
                continue
            out.append(account)
        return out

    def _window_keys(self, account: str) -> tuple[str, ...]:
        """The rate-limit keys a send to `account` counts for: the account and its platform.

        Every send is recorded under both, limited or not, so that a limit added later (a
        reload) knows the sends before it.
        """
        acc = self.config.accounts.get(account)
        if acc is not None and acc.platform != account:
            return (account, acc.platform)
        return (account,)

    def _rate_keys(self, account: str) -> tuple[str, ...]:
        """The keys whose configured limits apply to sends to `account`."""
        return tuple(k for k in self._window_keys(account) if k in self.config.rate_limits)

    def send_item(self, item: Item, accounts: list[str], result: PassResult) -> None:
        """Claim a post, send it to `accounts`, record each outcome, and move it if finished."""
        app = self.app
        try:
            claim: Claim | None = app.locks.claim(item.id)
            try:
                entry = app.spool.stat_entry("scheduled", item.id)
                if entry is None:
                    return  # moved meanwhile (cancelled, sent by another sender)
                fresh = app.items.load(entry)
                if fresh.post is None or fresh.problem or fresh.due is None:
                    self._report_invalid(fresh, result)
                    return
                if fresh.due > app.clock():
                    result.soonest(fresh.due.timestamp())
                    return
                if self.git.gate is not None and fresh.entry.key != item.entry.key:
                    result.soonest(app.clock().timestamp())  # changed since the gate judged it
                    return
                copy = app.items.late_copy(item.id)
                if copy is not None:
                    # Finished elsewhere (another host, a lost ledger): never out a second time.
                    self._failed_invalid(app.queue.fail(entry, copy, rename=True), result)
                    return
                quiet_at = fresh.entry.mtime_ns / 1e9 + self.settle
                if self.settle and quiet_at > time.time():
                    result.soonest(quiet_at)
                    return
                ds = self._deliveries(fresh)
                todo = [a for a in self._todo(fresh, ds) if a in accounts]
                for account in todo:
                    if self.stopping() and self.deadline() <= 0:
                        break
                    held = self.holds.get(account)
                    if held is not None and held > app.clock().timestamp():
                        # An answer earlier in this pass used up the account's window.
                        self._defer(item.id, account, SERVER_LIMIT, held, ds.get(account))
                        result.soonest(held)
                        until = when.iso_utc(_dt(held))
                        result.deferred[item.id] = f"{SERVER_LIMIT} until {until}"
                        continue
                    self._send_account(fresh, account, result)
                ds = app.ledger.deliveries(item.id)  # read here: the finisher has no ledger
                if self.finisher is not None:
                    self.finisher.submit(self._finish, fresh, result, ds, claim)
                    claim = None  # the finisher lets go of it once the post is finished
                else:
                    self._finish(fresh, result, ds)
            finally:
                if claim is not None:
                    claim.release()
        except Busy:
            # Someone else (`now`, `edit`, a foreground send) holds it for a moment; no event
            # tells us when they let go, so look again soon.
            self.log.event("busy", level="debug", id=item.id)
            result.soonest(app.clock().timestamp() + BUSY_RETRY)

    def _send_account(self, item: Item, name: str, result: PassResult) -> None:
        app, ledger = self.app, self.app.ledger
        assert item.post is not None
        account: Account = self.config.accounts[name]
        platform = get(account.platform)
        # The in-flight mark is on disk before anything goes out: a crash from then on leaves
        # the attempt in doubt. A platform that saves (synced) before its first request takes
        # the mark to the disk in that same write: one synced write a send, not two.
        began = not platform.material_first
        d = ledger.begin_attempt(item.id, name) if began else ledger.peek(item.id, name)
        in_doubt = d.in_flight

        def save(material: dict[str, object]) -> None:
            nonlocal began
            if began:
                ledger.save_material(item.id, name, dict(material))
            else:
                ledger.begin_attempt(item.id, name, nonce=d.nonce, material=dict(material))
                began = True

        quoted = app.items.quoted(item.post, name)
        assert item.due is not None
        reposted = app.items.quoted(item.post, name, "repost")
        job = Job(
            post_id=item.id,
            account=account,
            post=item.post,
            idempotency_key=idempotency_key(item.id, item.post, name, item.due),
            in_doubt=in_doubt,
            spool_root=app.spool.root,
            state_dir=app.config.state_dir,
            deadline=self.deadline,
            due=item.due,
            material=dict(d.material),
            save=save,
            quote=quoted if isinstance(quoted, Quoted) else None,
            repost=reposted if isinstance(reposted, Quoted) else None,
            undo=reposts.previous(app.spool, item.id, name) if item.post.repost else None,
            timezone=app.config.timezone,
        )
        attempts = d.attempts + 1
        self.log.event(
            "sending", id=item.id, account=name, attempt=attempts, in_doubt=in_doubt or None
        )
        try:
            # A quoted or reposted `@ID` not sent there (yet): nothing goes out (plurspool(5),
            # `quote`, `repost`).
            waits = [q for q in (quoted, reposted) if isinstance(q, Outcome)]
            outcome = waits[0] if waits else platform.send(job)
        except PlurspoolError as exc:
            error = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
            outcome = Outcome("permanent", error=error)
        except Exception as exc:  # a platform bug must not take the daemon down
            outcome = Outcome("temporary", error=f"internal error: {type(exc).__name__}")
        # Whatever a command or a server answered, what is logged and recorded is short and
        # printable (plurspool(5), `results`).
        outcome = dataclasses.replace(
            outcome,
            remote_id=recorded(outcome.remote_id) or None,
            url=recorded(outcome.url) or None,
            error=recorded(outcome.error),
        )
        if not began:  # it sent nothing (it saved nothing): still an attempt, and counted
            ledger.begin_attempt(item.id, name, synced=False, nonce=d.nonce)
        now = app.clock().timestamp()
        if outcome.hold is not None:
            self._hold(name, now + outcome.hold)
        if outcome.status == "sent":
            ledger.record(
                item.id,
                name,
                "sent",
                remote_id=outcome.remote_id,
                url=outcome.url,
                rate_keys=self._window_keys(name),
                at=now,
            )
            self.log.event(
                "sent", id=item.id, account=name, remote_id=outcome.remote_id, url=outcome.url
            )
            return
        error = outcome.error or "unknown error"
        daemon = self.config.daemon
        if outcome.status == "temporary" and self.stopping() and self.deadline() <= 0:
            # Cut short by our own shutdown, not by the peer: no backoff. The next start takes
            # it up at once (in doubt, where the platform says so).
            ledger.record(item.id, name, "pending", error=error)
            self.log.event("interrupted", level="warning", id=item.id, account=name, error=error)
            return
        if outcome.status == "temporary" and attempts <= daemon.max_retries:
            wait = backoff(
                attempts,
                daemon.retry_delay.total_seconds(),
                BACKOFF_CAP,
                self.rng.random(),
            )
            if outcome.retry_after is not None:
                wait = max(wait if attempts > 1 else 0.0, outcome.retry_after)
            if outcome.hold is not None:  # the account waits that long anyway: say so
                wait = max(wait, outcome.hold)
            ledger.record(item.id, name, "pending", error=error, next_at=now + wait)
            result.soonest(now + wait)
            result.deferred[item.id] = f"{name}: {error}; retry in {wait:.0f}s"
            self.log.event(
                "retry", level="warning", id=item.id, account=name, error=error, wait=f"{wait:.0f}s"
            )
            return
        if outcome.status == "temporary":
            error = recorded(f"gave up after {attempts} attempts: {error}")
        ledger.record(item.id, name, "failed", error=error, at=now)
        self.log.event("failed", level="error", id=item.id, account=name, error=error)

    def _finish_claimed(self, item: Item, result: PassResult) -> None:
        """`_finish` under the post's claim: a foreground sender may be finishing it right now,
        and two writers of one file would trip over each other."""
        try:
            with self.app.locks.claim(item.id):
                entry = self.app.spool.stat_entry("scheduled", item.id)
                fresh = self.app.items.load(entry) if entry is not None else None
                if fresh is not None and fresh.post is not None:
                    self._finish(fresh, result)
        except Busy:
            result.soonest(self.app.clock().timestamp() + BUSY_RETRY)

    def _finish(
        self,
        item: Item,
        result: PassResult,
        ds: dict[str, Delivery] | None = None,
        claim: Claim | None = None,
    ) -> None:
        """Move a post whose accounts are all finished to sent/ or failed/, with its results.

        `ds` are its ledger rows (read by the caller when this runs in the finisher thread,
        which must not use the ledger's connection); `claim`, the post's claim to let go of
        at the end.
        """
        try:
            self._record_and_move(item, result, ds)
        finally:
            if claim is not None:
                claim.release()

    def _record_and_move(
        self, item: Item, result: PassResult, ds: dict[str, Delivery] | None
    ) -> None:
        """`_finish` without the claim: results into the file, then the move."""
        assert item.post is not None
        if ds is None:
            ds = self._deliveries(item)
        todo = self._todo(item, ds)
        if todo:
            if not self.config.mine(todo) and (failed := record_here(self.app, self.log, item, ds)):
                self._failed_invalid(failed, result)  # a late copy (the other hosts send the rest)
            return
        done = self.app.queue.finish(item, ds, self.app.items.platforms(item.post))
        if isinstance(done, Failed):
            self._failed_invalid(done, result)
            return
        if done is None:
            return
        if done.oversize is not None:
            self.log.event(
                "results",
                level="warning",
                id=item.id,
                reason=f"not written into the post: with them it would be {done.oversize} "
                f"bytes, over the {self.app.spool.max_size}-byte limit (max_post_size); "
                "`plurspool show` still lists them from this host's ledger",
            )
        if isinstance(done, Unfinished):
            self.log.event("error", level="error", id=item.id, error=done.error)
            return
        if done.failed:
            result.failed.append(item.id)
            for account, error in done.failed.items():
                self._on_failure(item.id, error, account)
        else:
            result.sent.append(item.id)
        self.log.event("done", id=item.id, state="failed" if done.failed else "sent")

    def _finish_failed_late(self, item: Item, result: PassResult) -> None:
        done = self.app.queue.fail_late(item)
        if done is None:
            return
        if done.id != item.id:  # a later copy of a finished post, kept under a new name
            self._failed_invalid(done, result)
            return
        result.failed.append(item.id)
        self.log.event("failed", level="error", id=item.id, error=done.reason)
        self._on_failure(item.id, done.reason, None)

    def _report_invalid(self, item: Item, result: PassResult) -> None:
        """An invalid file in scheduled/ is never sent; say so once per version of it."""
        problem = item.problem or "invalid post"
        if self.reported.get(item.id) == (item.entry.key, problem):
            result.invalid[item.id] = problem
            return
        copy = classify(item.entry.path.name) == "conflict"
        if copy or (item.summary is None and self._has_markers(item.entry)):
            # A sync tool's copy, or a merge that left its conflict markers, is never someone's
            # file in progress: out of the queue with it, to be mended there (plurspool(5)).
            if not copy:
                problem += "; resolve the conflict with `plurspool edit`, then `plurspool retry`"
            with contextlib.suppress(FileNotFoundError, SpoolError):
                self._failed_invalid(self.app.queue.fail(item.entry, problem), result)
            return
        result.invalid[item.id] = problem
        self.reported[item.id] = (item.entry.key, problem)
        self.log.event(
            "invalid", level="error", id=item.id, path=str(item.entry.path), reason=problem
        )

    def _has_markers(self, entry: Entry) -> bool:
        """Whether a file holds git conflict markers (read again: a cached parse says only
        that it is invalid)."""
        from .post import has_conflict_markers

        try:
            return has_conflict_markers(self.app.spool.read(entry))
        except (OSError, SpoolError):
            return False

    # -- failure hook ----------------------------------------------------------------------

    def _on_failure(
        self, post_id: str, error: str, account: str | None, event: str = "send"
    ) -> None:
        """Run `daemon.on_failure`; a deletion's (`event` "delete") post is in sent/."""
        path = str(self.app.spool.path("sent" if event == "delete" else "failed", post_id))
        cmd = self.config.daemon.on_failure_argv(
            id=post_id, error=error, account=account or "", path=path, event=event
        )
        if not cmd:
            return
        try:
            self.hooks.append(
                subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        except OSError as exc:
            self.log.event("on_failure", level="error", error=f"cannot run {cmd[0]!r}: {exc}")

    def _reap_hooks(self) -> None:
        self.hooks = [p for p in self.hooks if p.poll() is None]

    def wait_hooks(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for p in self.hooks:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.0, end - time.monotonic()))
        self._reap_hooks()


def _not_before(d: Delivery | None) -> float | None:
    """An account's backoff time (a rate-limit deferral is recomputed, never a backoff)."""
    if d is None or d.deferred:
        return None
    return d.next_at


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def send_one(app: App, post_id: str, *, verbose: bool = False, wait: float = 120.0) -> PostView:
    """Send a due post of scheduled/ now, in this process (`post` without a schedule, `now`
    with no daemon); return its view (state sent, failed or scheduled).

    It is the daemon's own path (`Sender.run_pass`) restricted to one post; the per-post claim
    makes sure a daemon that wakes at the same moment and this process never both send it.
    """
    from .log import NullLog

    item = app.items.find(post_id)
    if (why := waiting(app, item)) is None:  # else other hosts send it ([senders])
        sender = Sender(app, Log(verbose=True) if verbose else NullLog())
        result = sender.run_pass(only=post_id)
        sender.git.close(NETWORK_TIMEOUT)
        # A recurring post's template sends a copy of itself (plurspool(5), `repeat`): that is
        # the post sent.
        post_id = next((i for i in result.repeated if i != post_id), post_id)
        app.locks.wait_for_claim(post_id, wait)
        item = app.items.find(post_id)
        why = waiting(app, item)
    view = app.views.view(item)
    view["error"] = why or view["error"]
    return view
