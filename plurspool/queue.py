"""Every state change of a post, each one claim → re-read → change → move, returning what happened.

The CLI, the sender and the daemon ask here to add, import, take in, cancel, schedule,
reschedule, make due, retry, save an edit, finish or fail a post; nothing else moves a post
between states.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import slots, when
from .errors import InvalidInput, NotFound, SpoolError, UsageError
from .spool import Changed, Entry, Spool, new_id

if TYPE_CHECKING:
    from .cache import Summary
    from .config import Config, QueueConfig
    from .items import Item, Items
    from .ledger import Delivery, Ledger
    from .locks import Locks
    from .post import Card, Media, Post


@dataclass(frozen=True)
class Done:
    """A post after a change made on a user's request, and the send time it was given."""

    item: Item
    at: datetime | None = None
    card: str | None = None  # why no link card was made, when one was wanted (a warning)


@dataclass(frozen=True)
class Queued:
    """A file taken in from new/ into scheduled/, due at `at`."""

    id: str
    at: datetime
    path: str
    card: str | None = None  # why no link card was made, when one was wanted (a warning)


@dataclass(frozen=True)
class Repeated:
    """A recurring post's template after its due occurrences were seen to: `copy`, the ID of
    the occurrence put in scheduled/ (None when none may go out), the occurrences `skipped`,
    and the template's next time (None: it has no more and went to sent/)."""

    id: str
    copy: str | None
    skipped: tuple[datetime, ...]
    next: datetime | None


@dataclass(frozen=True)
class Failed:
    """A post moved to failed/ (under `id`, a new name when its own was taken), and why."""

    id: str
    reason: str


@dataclass(frozen=True)
class Finished:
    """A post whose accounts are all done, moved to sent/ or failed/ with its results.

    `failed` holds the error of each account that failed; `oversize`, the size the file would
    have had with its results, when they were left out for being over max_post_size.
    """

    id: str
    failed: dict[str, str]
    oversize: int | None = None


@dataclass(frozen=True)
class Unfinished:
    """A finished post that could not be moved (a spool error): it stays, the next pass retries."""

    id: str
    error: str
    oversize: int | None = None


class Queue:
    """The state changes of the posts of one spool."""

    def __init__(
        self,
        items: Items,
        spool: Spool,
        locks: Locks,
        ledger: Callable[[], Ledger | None],
    ) -> None:
        self.items = items
        self.spool = spool
        self.locks = locks
        self._ledger = ledger  # the ledger where this host has one, else None

    @property
    def config(self) -> Config:
        return self.items.config

    def now(self) -> datetime:
        return self.items.clock()

    # -- on a user's request ---------------------------------------------------------------

    def add(
        self,
        text: str,
        *,
        platforms: Sequence[str] = (),
        schedule: str | None = None,
        draft: bool = False,
        cw: str | None = None,
        language: str | None = None,
        visibility: str | None = None,
        sensitive: bool | None = None,
        media: Sequence[Media] = (),
        queue: str | None = None,
        first: bool = False,
        post_id: str | None = None,
    ) -> Done:
        """Make a post from text: queued (schedule), kept (draft), queued in the first free
        slot of `queue` ("" for the default one; `first`: the first slot, moving the later
        posts of the queue one slot later), or queued due now; `post_id`: its ID (a feed's)."""
        if sum(x is not None for x in (schedule, queue)) + draft > 1:
            raise UsageError(
                "--schedule, --queue and --draft exclude each other", "use one of them"
            )
        if first and queue is None:
            raise UsageError("--next goes with --queue", "add --queue [NAME]")
        from .post import parse, render, split_parts

        if not text.strip():
            raise InvalidInput("the post is empty", "give some text, or pipe it on stdin")
        parts = list(split_parts(text))  # an empty thread part is a PostError (exit 3)
        items = self.items

        def make(at: datetime | None, queue: str | None = None) -> bytes:
            return render(
                parts=parts,
                schedule=items.stamp(at) if at else None,
                platforms=list(platforms) or None,
                cw=cw,
                language=language,
                visibility=visibility,
                sensitive=sensitive,
                media=media,
                queue=queue,
            )

        if queue is not None:
            q = self.config.queue(queue)
            if first:  # checked before later posts move for it
                items.validate_new(make(None, q.name))
            post_id = post_id or new_id(parts[0])
            # The card is fetched (up to 10 s) before the queue is locked, written in under it.
            card, warning = self._find_card(post_id, parse(make(None, q.name)))
            with self.locks.queue_lock():
                slot = self._insert_first(q) if first else items.free_slot(q)
                data = make(slot, q.name)
                if not first:
                    items.validate_new(data)
                if card is not None:
                    carded, warning = self._carded(data, card, warning)
                    data = carded if carded is not None else data
                entry = self.spool.deliver("scheduled", post_id, data)
            return Done(items.load(entry), slot, warning)
        at = items.resolve(schedule) if schedule is not None else None
        if not draft and at is None:
            at = self.now()
        data = make(at)
        items.validate_new(data)
        state = "drafts" if draft else "scheduled"
        post_id = post_id or new_id(parts[0])
        carded, warning = (
            (None, None) if draft else self._card(post_id, parse(data), data, lambda: data)
        )
        entry = self.spool.deliver(state, post_id, carded if carded is not None else data)
        return Done(items.load(entry), at, warning)

    def add_written(self, state: str, data: bytes, hint_text: str) -> Done:
        """Store a post written with `plurspool new` (already validated) in `state`."""
        from .post import parse

        post = parse(data)
        with self.locks.queue_lock():
            data = self._slotted(data) if state == "scheduled" else data
            entry = self.spool.deliver(state, new_id((post.parts or ("",))[0] or hint_text), data)
        return Done(self.items.load(entry))

    def add_imported(
        self, state: str, posts: Sequence[tuple[str, bytes, str | None]]
    ) -> list[Entry]:
        """Write posts an import made (checked by plurspool.importing: ID, bytes, reason in
        failed/) into `state`; those whose ID a post has already (imported before) are left out."""
        fresh = [p for p in posts if not self.spool.exists_anywhere(p[0])]
        for post_id, _, reason in fresh:
            if reason is not None:  # first, as in Spool.fail: a crash leaves no post without one
                self.spool.write_error(post_id, reason)
        return self.spool.deliver_many(state, [(post_id, data) for post_id, data, _ in fresh])

    def cancel(self, item: Item) -> Done:
        """Take a queued post out of the queue, into drafts/ (nothing is lost)."""
        if item.state not in ("scheduled", "new"):
            raise InvalidInput(
                f"{item.id} is in {item.state}/, not queued", "only queued posts can be cancelled"
            )
        with self.locks.queue_lock():
            with self.locks.claim(item.id):
                entry = self.spool.move(self._fresh(item), "drafts")
            self._reflow(item)
        return Done(self.items.load(entry))

    def reschedule(self, item: Item, text: str) -> Done:
        """Change the send time of a queued post (or a draft's planned time)."""
        if item.state not in ("scheduled", "drafts"):
            raise InvalidInput(
                f"{item.id} is in {item.state}/; only scheduled posts and drafts "
                "can be rescheduled",
                "use `plurspool retry` for failed posts",
            )
        if slots.queue_spec(text) is not None:
            return self._to_queue(item, text, item.state)
        at = self.items.resolve(text, current=item.due)
        return Done(self._set_time(item, at, item.state), at)

    def schedule(self, item: Item, text: str) -> Done:
        """Move a draft into the queue at a time."""
        if item.state != "drafts":
            raise InvalidInput(
                f"{item.id} is in {item.state}/, not drafts/", "use `reschedule` for queued posts"
            )
        if slots.queue_spec(text) is not None:
            return self._to_queue(item, text, "scheduled")
        at = self.items.resolve(text)
        return Done(self._set_time(item, at, "scheduled"), at)

    def make_due(self, item: Item) -> Done:
        """Set a queued post's time to now (the `now` command)."""
        if item.state != "scheduled":
            raise InvalidInput(
                f"{item.id} is in {item.state}/, not scheduled/",
                "`schedule ID now` queues a draft; `retry ID` a failed post",
            )
        at = self.now()
        with self.locks.queue_lock():
            done = Done(self._set_time(item, at, "scheduled"), at)
            self._reflow(item)
        return done

    def retry(self, item: Item, text: str | None = None) -> Done:
        """Move a failed post back to the queue, due now (or at the time `text`); accounts
        that succeeded are kept.

        The retry travels in the file as a fresh `retried` token, so that the sending host
        honours it whichever host made it (its ledger is its own); here, the ledger is
        reopened at once and the token noted as honoured.
        """
        if item.state != "failed":
            raise InvalidInput(f"{item.id} is in {item.state}/, not failed/", "")
        if item.post is None:
            raise InvalidInput(
                f"{item.id} cannot be retried: {item.problem}",
                f"fix {item.entry.path} (e.g. `plurspool edit {item.id}`), then retry",
            )
        at = self.items.resolve(text) if text is not None else self.now()
        token = f"{when.iso_utc(self.now())}-{secrets.token_hex(3)}"
        ledger = self._ledger()
        if ledger is not None:
            ledger.reopen(item.id, token)
        return Done(self._set_time(item, at, "scheduled", retried=token), at)

    def save_edit(self, item: Item, data: bytes) -> Done:
        """Write an edited version of a post back, if it did not change meanwhile."""
        with self.locks.queue_lock(), self.locks.claim(item.id):
            entry = self.spool.stat_entry(item.state, item.id)
            if entry is None or entry.key != item.entry.key:
                raise Changed(
                    f"{item.id} changed or moved while you were editing",
                    "your version was kept (see above); merge it by hand",
                )
            data = self._slotted(data) if item.state == "scheduled" else data
            return Done(self.items.load(self.spool.replace(entry, data)))

    def _slotted(self, data: bytes) -> bytes:
        """A file from `new`/`edit` whose `schedule:` is `queue[:NAME]` with that queue's first
        free slot and `queue: NAME` written in, as intake does (the caller holds the lock)."""
        from .post import parse, with_queue, with_schedule

        spec = slots.queue_spec(parse(data).schedule or "")
        if spec is None:
            return data
        q = self.config.queue(spec)
        return with_queue(with_schedule(data, self.items.stamp(self.items.free_slot(q))), q.name)

    # -- queues (plurspool(1), QUEUES): every slot is chosen under the queue lock ------------

    def _to_queue(self, item: Item, text: str, state: str) -> Done:
        """Give a post the first free slot of the queue `text` names (`queue[:NAME]`)."""
        q = self.config.queue(slots.queue_spec(text))
        with self.locks.queue_lock():
            at = self.items.free_slot(q)
            return Done(self._set_time(item, at, state, queue=q.name), at)

    def _insert_first(self, q: QueueConfig) -> datetime:
        """The first slot after now, freed by moving every post of the queue at or after it
        one slot later, in order (the latest first, so that no two ever share a slot)."""
        it = q.slots.after(self.now())
        first = slot = next(it)
        moves = []
        for item in self.items.queued(q.name):
            assert item.due is not None
            if item.due < first:
                continue
            bound = max(item.due, slot)
            while slot <= bound:
                slot = next(it)
            moves.append((item, slot))
        for item, at in reversed(moves):
            self._set_time(item, at, "scheduled")
        return first

    def _reflow(self, gone: Item) -> None:
        """After `gone` left its queue early, move every later post of that queue one slot
        earlier, when the queue reflows (the earliest first: each one's slot is free)."""
        name = gone.summary.queue if gone.summary else None
        q = self.config.queues.get(name) if name else None
        if q is None or not q.reflow or gone.due is None or gone.due <= self.now():
            return
        floor = gone.due - timedelta(seconds=1)  # slots are whole seconds: `gone.due` is one
        it = q.slots.after(floor)
        slot = next(it)
        for item in self.items.queued(q.name):
            assert item.due is not None
            if item.due <= gone.due:
                continue
            last = None
            while slot < item.due:
                if slot > floor:
                    last = slot
                slot = next(it)
            if last is not None:
                self._set_time(item, last, "scheduled")
                floor = last
            else:
                floor = item.due

    def _set_time(
        self,
        item: Item,
        at: datetime,
        state: str,
        *,
        retried: str | None = None,
        queue: str | None = None,
    ) -> Item:
        from .post import expiry, with_queue, with_retried, with_schedule

        if item.post and (early := expiry.problem(item.post, at, self.config.timezone)):
            raise InvalidInput(early, "give an earlier time, or change `expires` (`edit`)")
        with self.locks.claim(item.id):
            ledger = self._ledger()
            if ledger is not None:
                ledger.undefer(item.id)  # a rate-limit wait noted for the old time
            entry = self._fresh(item)
            data = with_schedule(self.spool.read(entry), self.items.stamp(at))
            if retried is not None:
                data = with_retried(data, retried)
            if queue is not None:
                data = with_queue(data, queue)
            entry = self.spool.replace(entry, data)
            if state != entry.state:
                entry = self.spool.move(entry, state)
        return self.items.load(entry)

    def _fresh(self, item: Item) -> Entry:
        entry = self.spool.stat_entry(item.state, item.id)
        if entry is None:
            raise NotFound(f"{item.id} is no longer in {item.state}/", "list again")
        return entry

    # -- on the sender's behalf ------------------------------------------------------------

    def intake(self, entry: Entry) -> Queued | Failed | None:
        """Take one complete file from new/: resolve its time, move it to scheduled/ or
        failed/; None when it is gone or being written to (the next event or rescan takes it).
        A file asking for a queue slot is judged and moved under the queue lock."""
        try:
            item = self.items.load(entry)
        except (FileNotFoundError, SpoolError):
            return None
        post = item.post
        if post is not None and post.schedule and slots.queue_spec(post.schedule) is not None:
            with self.locks.queue_lock():
                return self._intake(entry, item)
        return self._intake(entry, item)

    def _intake(self, entry: Entry, item: Item) -> Queued | Failed | None:
        try:
            verdict = self.items.judge_new(item)
        except (FileNotFoundError, SpoolError):
            return None
        if verdict.problem is not None:
            return self.fail(entry, verdict.problem, rename=verdict.rename)
        assert verdict.at is not None
        try:
            data = verdict.stamped
            carded, warning = self._card(entry.id, item.post, data, lambda: self.spool.read(entry))
            if carded is not None:
                data = carded
            if data is not None:
                entry = self.spool.replace(entry, data)
            moved = self.spool.move(entry, "scheduled")
        except (Changed, FileNotFoundError):
            return None
        return Queued(moved.id, verdict.at, str(moved.path), warning)

    def _card(
        self, post_id: str, post: Post | None, data: bytes | None, read: Callable[[], bytes]
    ) -> tuple[bytes | None, str | None]:
        """The file (`data`, else `read()`) with its Bluesky link card resolved and written
        back (plurspool(5), `card`), or None when none is wanted; with why none was made, when
        one was. Made where a post enters the queue: intake, and `plurspool post`."""
        if not self._to_bluesky(post):
            return None, None
        raw = data if data is not None else read()
        if post is None:  # known from the cache only, or not read yet
            from .post import parse

            post = parse(raw)
        card, note = self._find_card(post_id, post)
        return (None, note) if card is None else self._carded(raw, card, note)

    def _to_bluesky(self, post: Post | Summary | None) -> list[str]:
        accounts = [self.items.config.accounts.get(name) for name in self.items.platforms(post)]
        return [a.name for a in accounts if a is not None and a.platform == "bluesky"]

    def _find_card(self, post_id: str, post: Post) -> tuple[Card | None, str | None]:
        """The link card of `post`'s first URL (fetched: up to 10 s), its image stored under
        media/cards/; None with why not, when one was wanted but could not be made."""
        bluesky = self._to_bluesky(post)  # no Bluesky account: no card, no platform imported
        if not bluesky:
            return None, None
        from .platforms.bluesky import card_target

        url = card_target(post, bluesky)
        if url is None:
            return None, None
        from .platforms.linkcard import CardError, resolve
        from .post import Card

        try:
            preview = resolve(url)
        except CardError as exc:
            return None, f"no link card for {url[:80]}: {exc}"
        image = None
        if preview.thumb is not None:
            image = self.spool.write_card_image(post_id, preview.thumb)
        card = Card("set", preview.url, preview.title, preview.description or None, image)
        note = (
            None
            if preview.image_error is None
            else f"link card without image: {preview.image_error}"
        )
        return card, note

    def _carded(self, raw: bytes, card: Card, note: str | None) -> tuple[bytes | None, str | None]:
        """`raw` with `card` written back, or None when that would make it too large."""
        from .post import with_card

        carded = with_card(raw, card)
        if len(carded) > self.spool.max_size:
            return None, "no link card: with it written back the post would be too large"
        return carded, note

    def repeat(self, item: Item) -> Repeated | None:
        """A recurring post's template found due (plurspool(5), `repeat`): its occurrence
        written into scheduled/ as a post of its own, `<ID>--<UTC stamp>`, then the template
        moved on to its next occurrence (or to sent/ when none is left); occurrences missed
        for good are added to `skipped:`. None when it is gone, changed or not due.

        The copy is written first and the template changed after: a crash in between leaves
        the copy, which the next look finds and never writes again (sent once).
        """
        from . import repeat
        from .post import occurrence, with_schedule, with_skipped

        with self.locks.claim(item.id):
            entry = self.spool.stat_entry("scheduled", item.id)
            if entry is None or entry.key != item.entry.key:
                return None
            post, due, now = item.post, item.due, self.now()
            if post is None or post.repeat is None or due is None or due > now:
                return None
            tz = self.config.timezone
            rule = repeat.parse(post.repeat)
            plan = repeat.due(
                rule, due, tz, now, self.config.daemon.max_lateness, self.items.skip_dates(post)
            )
            data = self.spool.read(entry)
            copy = None
            if plan.send is not None:
                copy = repeat.occurrence_id(item.id, plan.send)
                if not self.spool.exists_anywhere(copy):
                    self.spool.deliver(
                        "scheduled", copy, occurrence(data, self.items.stamp(plan.send))
                    )
            skipped = [
                at for at in plan.skipped
                if not self.spool.exists_anywhere(repeat.occurrence_id(item.id, at))
            ]  # fmt: skip
            if skipped:
                data = with_skipped(data, [*post.skipped, *(when.iso_utc(at) for at in skipped)])
            if plan.next is not None:
                data = with_schedule(data, self.items.stamp(plan.next))
            entry = self.spool.replace(entry, data)
            if plan.next is None:
                self.spool.move(entry, "sent")
        return Repeated(item.id, copy, tuple(skipped), plan.next)

    def skip(self, item: Item, text: str | None = None) -> Done:
        """Leave out the next occurrence of a recurring post, or the one at the time `text`:
        its local date goes into `skip:` (and the template moves on when it was the next)."""
        from . import repeat
        from .post import with_schedule, with_skip

        at = self.items.resolve(text, allow_past=True) if text is not None else None
        tz = self.config.timezone
        with self.locks.claim(item.id):
            fresh = self.items.load(self._fresh(item))  # as it is now, under the claim
            post, due = fresh.post, fresh.due
            if fresh.state not in ("scheduled", "drafts") or post is None or post.repeat is None:
                raise InvalidInput(
                    f"{item.id} is not a recurring post (no `repeat:` in scheduled/ or drafts/)",
                    "`plurspool cancel ID` takes a single post out of the queue",
                )
            if due is None:
                raise InvalidInput(f"{item.id} has no next occurrence", "")
            rule = repeat.parse(post.repeat)
            skips = self.items.skip_dates(post)
            target: datetime | None = due
            if at is not None:
                target = repeat.next_after(rule, due, tz, at - timedelta(seconds=1), skips)
                if target is None or target.astimezone(tz).date() != at.astimezone(tz).date():
                    raise InvalidInput(
                        f"{item.id} has no occurrence on {at.astimezone(tz):%Y-%m-%d}",
                        f"its rule is {repeat.describe(rule, tz)}, its next occurrence "
                        f"{self.items.stamp(due)}",
                    )
            assert target is not None
            day = target.astimezone(tz).date()
            data = with_skip(self.spool.read(fresh.entry), sorted({*post.skip, day.isoformat()}))
            if target == due:
                following = repeat.next_after(rule, due, tz, due, {*skips, day})
                if following is None:
                    raise InvalidInput(
                        f"{item.id}'s occurrence on {day} is its last one",
                        f"`plurspool cancel {item.id}` stops it",
                    )
                data = with_schedule(data, self.items.stamp(following))
            entry = self.spool.replace(fresh.entry, data)
        return Done(self.items.load(entry), target)

    def fail(self, entry: Entry, reason: str, *, rename: bool = False) -> Failed:
        """Move a file to failed/ with its reason; under a new name when `rename`, or when its
        own is taken there. The caller holds its claim where the file is in scheduled/."""
        spool = self.spool
        if rename or (entry.state != "failed" and spool.stat_entry("failed", entry.id) is not None):
            new = f"{entry.id}.{new_id()}"
            spool.write_error(new, reason)
            spool.rename_into(entry, "failed", new)
            return Failed(new, reason)
        spool.fail(entry, reason)
        return Failed(entry.id, reason)

    def fail_late(self, item: Item) -> Failed | None:
        """A post first found due more than max_lateness after its time goes to failed/ (a
        later copy of a finished post, under a new name); None if it is claimed or gone."""
        from .errors import Busy

        assert item.due is not None
        reason = self.items.too_late(item.id, item.due, self.now())
        try:
            with self.locks.claim(item.id):
                entry = self.spool.stat_entry("scheduled", item.id)
                if entry is None:
                    return None
                copy = self.items.late_copy(item.id)
                if copy is not None:  # not failed/ under its own name: that one is taken
                    return self.fail(entry, copy, rename=True)
                self.spool.fail(entry, reason)
        except Busy:
            return None
        return Failed(item.id, reason)

    def finish(
        self, item: Item, ds: dict[str, Delivery], accounts: Sequence[str], keep: bool = False
    ) -> Finished | Failed | Unfinished | None:
        """Write a post's results (from its ledger rows `ds`) into its file, then move it to
        sent/ or failed/ (`keep`: it stays, other hosts send the rest). The caller holds its
        claim and has checked that each of its `accounts` is done. A later copy of a finished
        post goes to failed/ under a new name. None when the file is gone or changed since it
        was read (the next pass sees to it).

        Uses the spool only, never the ledger: it runs in the sender's finisher thread.
        """
        from .post import Result, with_record

        assert item.post is not None
        spool = self.spool
        results = dict(item.post.results)
        for account in accounts:
            d = ds.get(account)
            if d is None:
                continue
            results[account] = Result(
                id=d.remote_id if d.status == "sent" else None,
                url=d.url if d.status == "sent" else None,
                error=d.error if d.status == "failed" else None,
                attempts=d.attempts,
                at=when.iso_utc(self.now()),
            )
        failed = {a: r.error for a, r in results.items() if r.error and a in accounts}
        attempts = max((r.attempts for r in results.values()), default=0)
        entry = spool.stat_entry("scheduled", item.id)
        if entry is None or entry.key != item.entry.key:
            # Gone, or changed since it was read (a sync may have brought a retry the ledger
            # has not honoured yet): the next pass looks at the new version.
            return None
        copy = self.items.late_copy(item.id)
        if copy is not None:
            # The ledger has it as done, so it is not sent again, and it must not sit here.
            return self.fail(entry, copy, rename=True)
        oversize = None
        try:
            # Results first, then the move: a crash in between leaves a post in scheduled/
            # whose file and ledger say it is finished, and the next pass only moves it.
            data = spool.read(entry)
            written = with_record(data, results, attempts)
            if len(written) > spool.max_size:
                # Over the limit the post could no longer be read (`show`, `retry`): it keeps
                # the bytes it had, and the ledger keeps the results.
                oversize, written = len(written), data
            if written != data:
                # Synced by the move just below (a crash before it leaves the post here,
                # finished in the ledger: the next pass moves it).
                entry = spool.replace(entry, written, synced=keep)
            if keep:
                pass
            elif failed:
                spool.fail(entry, "; ".join(f"{a}: {e}" for a, e in sorted(failed.items())))
            else:
                spool.move(entry, "sent")
        except (Changed, FileNotFoundError):
            return None
        except SpoolError as exc:
            return Unfinished(item.id, exc.message, oversize)
        return Finished(item.id, {a: e or "" for a, e in failed.items()}, oversize)
