"""A Hypothesis state machine over the queue operations and send passes of `App`.

The model is a dict of post ID → (state, due time, accounts, body). After every step the spool
must hold exactly the model's posts, each in one state, with nothing left in tmp/, the bodies
untouched, results recorded for sent posts and a reason beside every failed one.
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
from plurspool.spool import STATES

pytestmark = pytest.mark.slow

CONFIG = """
default_platforms = ["ok"]

[accounts.ok]
platform = "exec"
command = ["sh", "-c", "echo $PLURSPOOL_ID >> {log}; echo remote-$PLURSPOOL_ID"]

[accounts.bad]
platform = "exec"
command = ["false"]
"""

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
        self.now = datetime.now(UTC).replace(microsecond=0)
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
        item = self.app.queue.cancel(self.app.items.find(post_id[:10])).item
        assert item.state == "drafts"
        self.model[post_id].state = "drafts"

    @precondition(lambda self: self.ids("scheduled"))
    @rule(data=st.data(), minutes=st.integers(-300, 300).filter(bool))
    def reschedule(self, data: st.DataObject, minutes: int) -> None:
        post_id = data.draw(st.sampled_from(self.ids("scheduled")))
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
        item = self.app.queue.make_due(self.app.items.find(post_id)).item
        assert item.due == self.now
        self.model[post_id].due = self.now

    @precondition(lambda self: self.ids("failed"))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        post_id = data.draw(st.sampled_from(self.ids("failed")))
        item = self.app.queue.retry(self.app.items.find(post_id)).item
        assert item.state == "scheduled" and item.due == self.now
        self.model[post_id].state = "scheduled"
        self.model[post_id].due = self.now
        self.model[post_id].late = False

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
        result = Sender(self.app, NullLog()).run_pass()
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
        assert result.invalid == {}
        assert result.queued == []

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
