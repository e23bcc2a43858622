"""A Hypothesis state machine over the queue operations and send passes of `App`.

The model is a dict of post ID → (state, due time, accounts, body, queue). After every step the
spool must hold exactly the model's posts, each in one state, with nothing left in tmp/, the
bodies untouched, results recorded for sent posts and a reason beside every failed one; and no
two waiting posts of a queue ever share a slot, whatever the interleaving of `post --queue`,
intake of `schedule: queue`, cancel, `--next` and reflow (plurspool(1), QUEUES).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from plurspool.app import App
from plurspool.config import load
from plurspool.errors import TimeError
from plurspool.log import NullLog
from plurspool.post import parse
from plurspool.sender import Sender
from plurspool.spool import STATES, new_id

pytestmark = pytest.mark.slow

CONFIG = """
default_platforms = ["ok"]

[accounts.ok]
platform = "exec"
command = ["sh", "-c", "echo $PLURSPOOL_ID >> {log}; echo remote-$PLURSPOOL_ID"]

[accounts.bad]
platform = "exec"
command = ["false"]

[queues.q]
slots = ["daily 00:00", "daily 06:00", "daily 12:00", "daily 18:00"]
timezone = "UTC"

[queues.r]
slots = ["daily 00:00", "daily 06:00", "daily 12:00", "daily 18:00"]
timezone = "UTC"
reflow = true
"""
SLOT_HOURS = (0, 6, 12, 18)  # both queues' slots, in UTC: the model's own arithmetic
QUEUE_NAMES = st.sampled_from(["q", "r"])


def is_slot(t: datetime) -> bool:
    return t.hour in SLOT_HOURS and t.minute == 0 and t.second == 0


def next_slot(t: datetime) -> datetime:
    """The first slot later than `t`."""
    s = t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    while s.hour not in SLOT_HOURS:
        s += timedelta(hours=1)
    return s


def prev_slot(t: datetime) -> datetime:
    """The last slot earlier than `t`."""
    s = t.replace(minute=0, second=0, microsecond=0)
    if s == t:
        s -= timedelta(hours=1)
    while s.hour not in SLOT_HOURS:
        s -= timedelta(hours=1)
    return s


ACCOUNTS = st.sampled_from([(), ("ok",), ("bad",), ("ok", "bad")])
WORDS = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=20).filter(str.strip)


@dataclass
class Model:
    state: str
    due: datetime | None
    accounts: tuple[str, ...]
    body: bytes  # every byte after the frontmatter
    attempted: bool = False  # went through a send pass (its ledger has rows)
    late: bool = False  # in failed/ for being found more than max_lateness after its time
    queue: str | None = None  # the queue named in the file (`queue:` or `schedule: queue:`)
    given: bool = False  # its time is a slot its queue gave (not made due now, nor scheduled)


def body_of(data: bytes) -> bytes:
    """The bytes after the frontmatter, if there is one."""
    if not data.startswith(b"---\n"):
        return data
    return data[3:].split(b"\n---\n", 1)[1]


class Queue(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="plurspool-sm-"))
        env = {"HOME": str(self.tmp / "home"), "XDG_STATE_HOME": str(self.tmp / "state")}
        self.log = self.tmp / "sent.log"
        config = self.tmp / "config.toml"
        config.write_text(CONFIG.format(log=self.log))
        self.config = load(config, spool=str(self.tmp / "spool"), env=env)
        # At 17 s past a minute: a time in whole minutes from now is never a slot.
        self.now = datetime.now(UTC).replace(second=17, microsecond=0)
        self.app = self.new_app()
        self.model: dict[str, Model] = {}

    def new_app(self) -> App:
        app = App(self.config, clock=lambda: self.now)
        app.spool.ensure()
        return app

    def teardown(self) -> None:
        if self.app.ledgers._ledger is not None:
            self.app.ledgers._ledger.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ids(self, *states: str) -> list[str]:
        # In creation order: IDs are random, and the draws must not depend on them.
        return [i for i, m in self.model.items() if m.state in states]

    def path(self, post_id: str) -> Path:
        return self.app.spool.path(self.model[post_id].state, post_id)

    # -- rules -------------------------------------------------------------------------------

    @rule(text=WORDS, minutes=st.integers(1, 120), accounts=ACCOUNTS)
    def post(self, text: str, minutes: int, accounts: tuple[str, ...]) -> None:
        done = self.app.queue.add(text, platforms=accounts, schedule=f"{minutes}m")
        item, at = done.item, done.at
        assert at == self.now + timedelta(minutes=minutes)
        assert item.id not in self.model
        data = item.entry.path.read_bytes()
        self.model[item.id] = Model("scheduled", at, accounts or ("ok",), body_of(data))

    @rule(text=WORDS, accounts=ACCOUNTS)
    def draft(self, text: str, accounts: tuple[str, ...]) -> None:
        done = self.app.queue.add(text, platforms=accounts, draft=True)
        item, at = done.item, done.at
        assert at is None
        data = item.entry.path.read_bytes()
        self.model[item.id] = Model("drafts", None, accounts or ("ok",), body_of(data))

    @precondition(lambda self: self.ids("scheduled"))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        post_id = data.draw(st.sampled_from(self.ids("scheduled")))
        gone = self.model[post_id]
        item = self.app.queue.cancel(self.app.items.find(post_id[:10])).item
        assert item.state == "drafts"
        gone.state, gone.given = "drafts", False
        self.reflow(gone, gone.due)

    def unqueued(self) -> list[str]:
        return [i for i in self.ids("scheduled") if self.model[i].queue is None]

    # A queue post moved by hand may land on a slot another post holds: that is the user's
    # choice, and outside the property; reschedule draws from the others.
    @precondition(lambda self: self.unqueued())
    @rule(data=st.data(), minutes=st.integers(-300, 300).filter(bool))
    def reschedule(self, data: st.DataObject, minutes: int) -> None:
        post_id = data.draw(st.sampled_from(self.unqueued()))
        m = self.model[post_id]
        assert m.due is not None
        text = f"{minutes:+d}m"
        want = m.due + timedelta(minutes=minutes)
        if want < self.now:  # exactly now is "due now", not the past
            with pytest.raises(TimeError):
                self.app.queue.reschedule(self.app.items.find(post_id), text)
            return
        done = self.app.queue.reschedule(self.app.items.find(post_id), text)
        item, at = done.item, done.at
        assert at == want and item.due == want and item.state == "scheduled"
        m.due = want

    @precondition(lambda self: self.ids("drafts"))
    @rule(data=st.data(), minutes=st.integers(1, 120))
    def schedule(self, data: st.DataObject, minutes: int) -> None:
        post_id = data.draw(st.sampled_from(self.ids("drafts")))
        found = self.app.items.find(post_id, ("drafts",))
        done = self.app.queue.schedule(found, f"in {minutes} minutes")
        item, at = done.item, done.at
        assert item.state == "scheduled" and at == self.now + timedelta(minutes=minutes)
        self.model[post_id].state = "scheduled"
        self.model[post_id].due = at

    @precondition(lambda self: self.ids("scheduled"))
    @rule(data=st.data())
    def now_(self, data: st.DataObject) -> None:
        post_id = data.draw(st.sampled_from(self.ids("scheduled")))
        m = self.model[post_id]
        item = self.app.queue.make_due(self.app.items.find(post_id)).item
        assert item.due == self.now
        was, m.due, m.given = m.due, self.now, False
        self.reflow(m, was)

    @precondition(lambda self: self.ids("failed"))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        post_id = data.draw(st.sampled_from(self.ids("failed")))
        item = self.app.queue.retry(self.app.items.find(post_id)).item
        assert item.state == "scheduled" and item.due == self.now
        self.model[post_id].state = "scheduled"
        self.model[post_id].due = self.now
        self.model[post_id].late = False
        self.model[post_id].given = False

    @precondition(lambda self: self.ids("scheduled", "drafts"))
    @rule(data=st.data(), text=WORDS)
    def edit(self, data: st.DataObject, text: str) -> None:
        post_id = data.draw(st.sampled_from(self.ids("scheduled", "drafts")))
        m = self.model[post_id]
        item = self.app.items.find(post_id)
        old = self.app.spool.read(item.entry)
        body = f"edited: {text.strip()}\n".encode()
        new = old[: len(old) - len(m.body)] + body
        before = item.post.schedule if item.post else None
        stored, _ = self.app.items.validate_edit(item.state, post_id, new, before)
        assert stored == new  # the schedule is absolute already: nothing rewritten
        saved = self.app.queue.save_edit(item, stored).item
        assert saved.post is not None and saved.post.parts == (f"edited: {text.strip()}",)
        m.body = body

    # -- queues ------------------------------------------------------------------------------

    def waiting(self, queue: str) -> list[Model]:
        """The model's posts of `queue` in scheduled/, soonest first."""
        mine = [m for m in self.model.values() if m.state == "scheduled" and m.queue == queue]
        return sorted(mine, key=lambda m: m.due or self.now)

    def free_slot(self, queue: str) -> datetime:
        taken = {m.due for m in self.waiting(queue)}
        slot = next_slot(self.now)
        while slot in taken:
            slot = next_slot(slot)
        return slot

    def reflow(self, gone: Model, due: datetime | None) -> None:
        """What reflow = true does after `gone` (due at `due`) left its queue early: each later
        post one slot earlier, never onto or before the one before it."""
        if gone.queue != "r" or due is None or due <= self.now:
            return
        floor = due - timedelta(seconds=1)
        for m in self.waiting("r"):
            assert m.due is not None
            if m.due <= due:
                continue
            slot = prev_slot(m.due)
            if slot > floor:
                m.due = floor = slot
                m.given = True
            else:
                floor = m.due

    @rule(text=WORDS, queue=QUEUE_NAMES, first=st.booleans(), accounts=ACCOUNTS)
    def post_queue(self, text: str, queue: str, first: bool, accounts: tuple[str, ...]) -> None:
        """`post --queue NAME [--next]`."""
        if first:
            want = prev = next_slot(self.now)
            for m in self.waiting(queue):
                assert m.due is not None
                if m.due >= want:
                    m.due = prev = next_slot(max(m.due, prev))
                    m.given = True
        else:
            want = self.free_slot(queue)
        done = self.app.queue.add(text, platforms=accounts, queue=queue, first=first)
        assert done.at == want
        data = done.item.entry.path.read_bytes()
        self.model[done.item.id] = Model(
            "scheduled", want, accounts or ("ok",), body_of(data), queue=queue, given=True
        )

    @precondition(lambda self: self.ids("drafts"))
    @rule(data=st.data(), queue=QUEUE_NAMES)
    def schedule_queue(self, data: st.DataObject, queue: str) -> None:
        """`schedule ID queue:NAME` for a draft."""
        post_id = data.draw(st.sampled_from(self.ids("drafts")))
        want = self.free_slot(queue)
        found = self.app.items.find(post_id, ("drafts",))
        done = self.app.queue.schedule(found, f"queue:{queue}")
        assert done.at == want and done.item.state == "scheduled"
        m = self.model[post_id]
        m.state, m.due, m.queue, m.given = "scheduled", want, queue, True

    @rule(text=WORDS, queue=st.sampled_from(["queue:q", "queue:r"]))
    def drop_in_new(self, text: str, queue: str) -> None:
        """A file with `schedule: queue[:NAME]` dropped into new/; the next pass takes it in."""
        data = f"---\nschedule: {queue}\n---\n{text.strip()}\n".encode()
        entry = self.app.spool.deliver("new", new_id(text), data)
        name = queue.partition(":")[2]
        self.model[entry.id] = Model("new", None, ("ok",), body_of(data), queue=name)

    @rule(minutes=st.integers(1, 240))
    def tick(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule()
    def restart(self) -> None:
        """A new process: nothing cached, the ledger opened afresh."""
        if self.app.ledgers._ledger is not None:
            self.app.ledgers._ledger.close()
        self.app = self.new_app()

    @rule()
    def send_pass(self) -> None:
        taken_in = sorted(self.ids("new"))  # in file-name order
        for post_id in taken_in:
            m = self.model[post_id]
            assert m.queue is not None
            m.due, m.state, m.given = self.free_slot(m.queue), "scheduled", True
        result = Sender(self.app, NullLog()).run_pass()
        assert result.queued == taken_in
        assert result.invalid == {}
        due = {
            i
            for i, m in self.model.items()
            if m.state == "scheduled" and m.due and m.due <= self.now
        }
        assert set(result.sent) | set(result.failed) == due
        for post_id in due:
            m = self.model[post_id]
            assert m.due is not None
            # Found due for the first time, too late: failed, whenever the pass (plurspool(1)).
            m.late = not m.attempted and self.now - m.due > self.config.daemon.max_lateness
            m.attempted = m.attempted or not m.late
            m.state = "failed" if m.late or "bad" in m.accounts else "sent"
            assert (post_id in result.failed) == (m.state == "failed")

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def each_post_in_exactly_one_state(self) -> None:
        root = self.app.spool.root
        found: dict[str, list[str]] = {}
        for state in STATES:
            for p in (root / state).iterdir():
                if p.name.endswith(".md"):
                    found.setdefault(p.name[:-3], []).append(state)
        assert found == {i: [m.state] for i, m in self.model.items()}
        assert list((root / "tmp").iterdir()) == []

    @invariant()
    def contents_change_only_in_schedule_and_results(self) -> None:
        for post_id, m in self.model.items():
            data = self.path(post_id).read_bytes()
            assert body_of(data) == m.body, post_id
            post = parse(data)
            assert (post.platforms or ("ok",)) == m.accounts
            if m.state == "scheduled":
                assert post.schedule is not None
                assert datetime.fromisoformat(post.schedule) == m.due
            error = self.app.spool.error_path(post_id)
            if m.late:
                assert m.state == "failed" and post.attempts == 0 and not post.results
                assert "more than max_lateness" in error.read_text()
            elif m.state in ("sent", "failed"):
                assert post.attempts >= 1
                assert set(post.results) == set(m.accounts)
            for account in m.accounts if not m.late else ():
                r = post.results.get(account)
                if m.state == "sent" or (m.state == "failed" and account == "ok"):
                    assert r is not None and r.error is None and r.id == f"remote-{post_id}"
                elif m.state == "failed":
                    assert r is not None and r.error is not None and "exited 1" in r.error
            if m.state == "failed" and not m.late:
                assert "bad: command exited 1" in error.read_text()
            elif m.state != "failed":
                assert not error.exists()
            others = (post.cw, post.language, post.visibility, post.sensitive, post.media)
            assert others == (None, None, None, None, ()) and not post.overrides

    @invariant()
    def no_two_waiting_posts_of_a_queue_share_a_slot(self) -> None:
        for queue in ("q", "r"):
            items = self.app.items.queued(queue)
            slots = [i.due for i in items if i.due is not None and i.due > self.now]
            assert len(slots) == len(set(slots)), queue
            # Those the queue gave out are slots (a post made due now, or a draft scheduled
            # at a time of its own, keeps its `queue:` at a time that is none).
            for i in items:
                m = self.model[i.id]
                assert i.due == m.due
                if m.given:
                    assert i.due is not None and is_slot(i.due)

    @invariant()
    def sent_once_per_account(self) -> None:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        assert len(lines) == len(set(lines))  # `ok` never got a post twice
        for post_id in set(lines):
            assert "ok" in self.model[post_id].accounts

    @invariant()
    def views_agree(self) -> None:
        views = {i.id: self.app.views.view(i) for i in self.app.items.in_states(STATES)}
        assert set(views) == set(self.model)
        for post_id, v in views.items():
            assert v["state"] == self.model[post_id].state
            assert v["path"] == f"{v['state']}/{post_id}.md"


Queue.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_queue = Queue.TestCase
