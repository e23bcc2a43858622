"""The crash campaign's deletion slice: an expired thread on mastodon-mock and both Nostr relays,
deleted by `send --once` in a forked child that SIGKILLs itself before its 1st, 2nd, ... mutating
step (the campaign's crash points: spool writes, ledger transactions, the platform's delete), each
kill followed by the next, counted anew, until a pass gets through.

After every kill: the post is still in sent/ and readable (0 lost), and no account's result says
`deleted_at` unless that copy is gone from its peer (no deletion recorded that did not happen).
At the end every copy is gone and recorded, nothing failed.
"""

from __future__ import annotations

import time
from datetime import datetime
from functools import partial
from pathlib import Path

import pytest

from tests.daemon_helpers import Sandbox, wait_for
from tests.peers.mastodon_mock import Mock
from tests.peers.mastodon_mock import mastodon_mock as mastodon_mock  # the fixture
from tests.peers.nostr_relays import nostr_relays as nostr_relays  # the fixture
from tests.platforms.adapters import MastodonAdapter, NostrAdapter, relay_query
from tests.robustness import campaign

pytestmark = [pytest.mark.slow, pytest.mark.peers, pytest.mark.realtime]

MAX_KILLS = 40  # a bound, far above the steps of one deletion pass


def passed(t: float) -> bool:
    return time.time() > t


def forked_pass(box: Sandbox, crash_at: int) -> str | None:
    """`send --once` in a child killed before step `crash_at`: the step's name, or None if the
    pass got through."""
    step, failure = campaign.forked_pass(box, crash_at)
    assert failure is None, failure
    return step


def test_kills_at_every_step_of_a_deletion_lose_nothing_and_record_no_false_deletion(
    nostr_relays: list[str], mastodon_mock: Mock, tmp_path: Path
) -> None:
    box = Sandbox(tmp_path)
    masto, nos = MastodonAdapter(mastodon_mock, tmp_path), NostrAdapter(nostr_relays, tmp_path)
    box.accounts.update(masto=masto.section(), nos=nos.section())
    box.default_platforms += ["masto", "nos"]
    box.write_config()

    def deleted_on_relays(notes: set[str]) -> bool:
        flt = {"authors": [nos.pubkey], "kinds": [5]}
        return all(
            any({t[1] for t in ev["tags"] if t[0] == "e"} == notes for ev in relay_query(url, flt))
            for url in nos.relays
        )

    kills: list[str] = []
    for crash_at in range(1, MAX_KILLS + 1):
        # A fresh expired thread each time, killed before the deletion pass's step `crash_at`.
        post_id = f"p{crash_at}"
        box.deliver("new", post_id, "---\nexpires: 3s\n---\nPart one.\n\n---\n\nPart two.\n")
        run = box.cli("send", "--once")
        assert run.code == 0 and box.is_in(post_id, "sent"), run.err
        sent = box.post("sent", post_id).results
        statuses = {p.ref for p in masto.posts()}
        notes = {p.ref for p in nos.posts()}
        assert len(statuses) == len(notes) == 2
        at = sent["masto"].at
        assert at is not None
        wait_for(partial(passed, datetime.fromisoformat(at).timestamp() + 3.2), 10, "expiry")
        step = forked_pass(box, crash_at)
        assert box.is_in(post_id, "sent"), f"lost after a kill before {step}"
        results = box.post("sent", post_id).results  # readable: a parse error fails here
        if results["masto"].deleted_at is not None:
            assert not statuses & {p.ref for p in masto.posts()}, f"mastodon, killed at {step}"
        if results["nos"].deleted_at is not None:
            assert deleted_on_relays(notes), f"nostr recorded deleted before it was ({step})"
        # Plain passes finish what the kill left.
        assert forked_pass(box, MAX_KILLS * 100) is None
        results = box.post("sent", post_id).results
        assert all(r.deleted_at and r.error is None for r in results.values()), results
        assert masto.posts() == [] and deleted_on_relays(notes)
        if step is None:
            break
        kills.append(step)
    else:
        pytest.fail(f"no pass got through in {MAX_KILLS} kills: {kills}")
    print(f"\n{len(kills)} kills: {kills}")
    # Both platforms' deletes, the ledger's records around them and the rewrite of the file.
    assert sum(k.startswith("platform.delete") for k in kills) == 2
    assert sum(k.startswith("after platform.delete") for k in kills) == 2
    assert sum(k == "ledger.record_deletion" for k in kills) == 2
    assert any(k.startswith("replace") for k in kills)
