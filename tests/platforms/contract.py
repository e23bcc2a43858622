"""The platform contract at the `Platform.send(job)` level: one base class, one subclass a platform.

As vdirsyncer's storage tests do it: `PlatformContract` holds the tests and is not collected
itself (no `Test` prefix); each platform's test file subclasses it (`TestNostrContract` in
test_nostr.py, `TestExecContract` in test_exec.py...) and provides the `adapter` fixture, a fresh
account on its peer whose `posts()` reads back what the peer holds (tests/platforms/adapters.py),
and `crash_after`, where its platform learns that the peer took a post. The tests call the
platform's `send(job)` in this process, with the fakes of tests/platforms/fakes.py and the account
as `config.load` makes it from the adapter's config section; what the sender adds around a send
(intake's `check`, results, retries) is tested end to end in test_contract.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from plurspool.config import Account, load
from plurspool.errors import PlurspoolError
from plurspool.platforms import get, release
from plurspool.platforms.base import Job, Outcome, Platform
from plurspool.post import Media, Post
from tests.daemon_helpers import Sandbox
from tests.helpers import png
from tests.platforms.adapters import ACCOUNT, Adapter, Posted, thread
from tests.platforms.fakes import Store, job, post


class Crash(BaseException):
    """A simulated crash: nothing in plurspool catches a BaseException."""


@dataclass
class Peer:
    """One account on a platform's peer, as the contract's tests send to it and read it back."""

    box: Sandbox  # its env, spool and config
    adapter: Adapter
    platform: Platform
    account: Account
    state_dir: Path

    def job(self, p: Post, store: Store | None = None, **changes: Any) -> Job:
        """A Job for `p` to the account (tests/platforms/fakes.py's `job`, in this sandbox)."""
        return job(
            p,
            self.account,
            spool_root=self.box.spool,
            state_dir=self.state_dir,
            store=store,
            **changes,
        )

    def send(self, p: Post, store: Store | None = None, **changes: Any) -> Outcome:
        return self.platform.send(self.job(p, store, **changes))

    def errors(self, p: Post) -> list[str]:
        """What `check` (offline; intake runs it before any send) refuses in `p`."""
        issues = self.platform.check(p, self.account, self.box.spool)
        return [i.message for i in issues if i.level == "error"]


def sent(outcome: Outcome) -> str:
    """The remote id of a sent outcome; fails on anything else."""
    assert outcome.status == "sent", outcome
    assert outcome.remote_id is not None, outcome
    return outcome.remote_id


def permanent_error(peer: Peer, j: Job) -> str:
    """The error of a send that fails for good: a permanent Outcome, or a PlurspoolError (the
    sender records its message and hint as a permanent failure)."""
    try:
        outcome = peer.platform.send(j)
    except PlurspoolError as exc:
        return f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    assert outcome.status == "permanent", outcome
    assert outcome.error, outcome
    return outcome.error


class PlatformContract:
    """What every platform's `send(job)` promises; subclass it once per platform."""

    # Whether `send` itself refuses an over-long part without a request (not only `check`).
    send_checks_length: ClassVar[bool] = False

    @pytest.fixture
    def adapter(self, tmp_path: Path) -> Iterator[Adapter]:
        """A fresh account on the platform's peer (closed afterwards)."""
        raise NotImplementedError(f"{type(self).__name__} must provide the `adapter` fixture")

    def crash_after(self, monkeypatch: pytest.MonkeyPatch, answered: int) -> None:
        """Make the platform raise Crash right after the peer answered the `answered`-th
        post-creating request, before the platform learns of that answer."""
        raise NotImplementedError

    def url_of(self, adapter: Adapter, held: Posted) -> str | None:
        """The url a sent Outcome must carry for `held`; None where the platform has none."""
        return None

    @pytest.fixture
    def peer(
        self, adapter: Adapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[Peer]:
        box = Sandbox(tmp_path / "box")
        box.accounts[ACCOUNT] = adapter.section()
        box.write_config()
        # `check` reads per-host caches (an instance's limits) where this process's env says.
        monkeypatch.setenv("XDG_STATE_HOME", box.env["XDG_STATE_HOME"])
        config = load(box.config_path, env=box.env)
        account = config.accounts[ACCOUNT]
        try:
            yield Peer(box, adapter, get(account.platform), account, config.state_dir)
        finally:
            release()  # what the sender does at the end of a pass
            box.cleanup()

    # --- the tests ----------------------------------------------------------------------------

    def test_a_plain_post_arrives_once_and_the_outcome_names_it(self, peer: Peer) -> None:
        text = f"plain post {uuid.uuid4().hex[:8]}"
        store = Store()
        held_at_save: list[int] = []

        def save(material: dict[str, Any]) -> None:
            held_at_save.append(peer.adapter.held_anywhere())
            store.save(material)

        outcome = peer.send(post(text), store, save=save)
        remote_id = sent(outcome)
        [held] = peer.adapter.posts()
        assert held.text == text
        assert (held.parent, held.cw, held.language, held.media) == (None, None, None, ())
        assert peer.adapter.ref_of(remote_id) == held.ref
        assert outcome.url == self.url_of(peer.adapter, held)
        if peer.platform.material_first:  # saved before its first request (base.Platform)
            assert held_at_save[:1] == [0], held_at_save

    def test_a_thread_of_three_arrives_chained_in_order(self, peer: Peer) -> None:
        outcome = peer.send(post("one\n---\ntwo\n---\nthree"))
        remote_id = sent(outcome)
        chain = thread(peer.adapter.posts())  # each part replies to the one before
        assert [p.text for p in chain] == ["one", "two", "three"]
        assert peer.adapter.ref_of(remote_id) == chain[0].ref
        assert outcome.url == self.url_of(peer.adapter, chain[0])

    def test_cw_and_language_arrive_on_every_part(self, peer: Peer) -> None:
        p = post("Der Butler\n---\nwar es", cw="Spoilers for episode 3", language="de")
        remote_id = sent(peer.send(p))
        chain = thread(peer.adapter.posts())
        assert [p.text for p in chain] == ["Der Butler", "war es"]
        assert [(p.cw, p.language) for p in chain] == [("Spoilers for episode 3", "de")] * 2
        assert peer.adapter.ref_of(remote_id) == chain[0].ref

    def test_media_with_alt_text_arrives_with_the_first_part(self, peer: Peer) -> None:
        image = png(4, 3)
        (peer.box.spool / "media").mkdir()
        (peer.box.spool / "media" / "dot.png").write_bytes(image)
        alt = "Three rows of purple dots"
        p = post("look\n---\nand more", media=[Media("media/dot.png", alt)])
        if peer.adapter.media == "refused":
            # No upload of its own: `check` refuses a local file, so intake never sends it.
            errors = peer.errors(p)
            assert any("media/dot.png" in e for e in errors), errors
            return
        assert peer.errors(p) == []
        remote_id = sent(peer.send(p))
        first, second = thread(peer.adapter.posts())
        assert (first.text, second.text) == ("look", "and more")
        [media] = first.media
        assert (media.alt, media.data) == (alt, image)  # the bytes as the peer serves them back
        assert second.media == ()  # the media go with the first part
        if peer.adapter.media == "payload":
            assert media.path == str(peer.box.spool / "media" / "dot.png")
        assert peer.adapter.ref_of(remote_id) == first.ref

    def test_a_crash_after_the_peer_answered_sends_nothing_twice(self, peer: Peer) -> None:
        parts = ["first", "second", "third"]
        p = post("\n---\n".join(parts))
        store = Store()
        with pytest.MonkeyPatch.context() as mp:
            self.crash_after(mp, 2)
            with pytest.raises(Crash):
                peer.send(p, store)
        # The peer took the first two parts (exec: one run carries all three); the platform
        # never learned of the second. What it saved must keep the retry from sending again.
        went_out = len(parts) if peer.adapter.thread_requests == 1 else 2
        assert peer.adapter.held_anywhere() == went_out
        assert (store.saves > 0) == peer.platform.material_first, store.saves
        remote_id = sent(peer.send(p, store, in_doubt=True))
        chain = thread(peer.adapter.posts())  # each part exactly once
        assert [p.text for p in chain] == parts
        assert peer.adapter.ref_of(remote_id) == chain[0].ref

    def test_bad_credentials_are_a_permanent_failure_naming_the_account_not_the_secret(
        self, peer: Peer
    ) -> None:
        words = peer.adapter.bad_credentials()
        release()  # no secret read earlier in this "pass" is kept
        store = Store()
        error = permanent_error(peer, peer.job(post("never posted"), store))
        for word in words:
            assert word in error, (word, error)
        if peer.adapter.canary is not None:  # a secret plurspool holds (exec's is the command's)
            assert f"account {ACCOUNT}" in error, error
            assert peer.adapter.canary not in error + json.dumps(store.material)
        assert peer.adapter.held_anywhere() == 0

    def test_an_overlong_part_is_refused_before_anything_is_sent(self, peer: Peer) -> None:
        limit = peer.adapter.max_length(peer.box.env)
        if limit is None:
            pytest.skip("no length limit: the platform takes any text")
        assert peer.errors(post("w" * limit)) == []
        over = post("short\n---\n" + "w" * (limit + 1))
        [error] = peer.errors(over)  # intake runs `check`: such a post never reaches `send`
        assert "part 2" in error and str(limit + 1) in error and str(limit) in error, error
        if self.send_checks_length:
            store = Store()
            error = permanent_error(peer, peer.job(over, store))
            assert str(limit + 1) in error, error
            assert store.saves == 0
        assert peer.adapter.held_anywhere() == 0
