"""The crash campaign's fast slice (tests/robustness/campaign.py; the long run: README).

The real daemon against the exec peer, both Nostr relays and mastodon-mock, SIGKILLed 30 times
at random points of intake and sending, then a post to every account killed before each of its
mutating steps in turn: a post that auto-split breaks into a thread on every account, so that
kills fall between two parts of a split thread too. Nothing may be lost or duplicated on any
peer, and every success a peer shows must be recorded. The same for reposts
(tests/robustness/repost_campaign.py), with the Bluesky PDS too: each on its peer exactly once,
and recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.peers.bluesky_pds import Pds
from tests.peers.bluesky_pds import pds as pds  # the fixture
from tests.peers.mastodon_mock import Mock
from tests.peers.mastodon_mock import mastodon_mock as mastodon_mock  # the fixture
from tests.peers.nostr_relays import nostr_relays as nostr_relays  # the fixture
from tests.robustness import campaign, repost_campaign

pytestmark = [pytest.mark.slow, pytest.mark.peers, pytest.mark.realtime]

KILLS = 30


def test_thirty_kills_lose_and_duplicate_nothing(
    nostr_relays: list[str], mastodon_mock: Mock, tmp_path: Path
) -> None:
    seed = int(os.environ.get("PLURSPOOL_CAMPAIGN_SEED", "0")) or int.from_bytes(os.urandom(3))
    figures = campaign.run(
        tmp_path,
        kills=KILLS,
        seed=seed,
        samples=1,
        relays=nostr_relays,
        mastodon=mastodon_mock.url,
        log=print,
    )
    print(f"\nseed {seed}\n{figures.text()}")
    assert figures.kills == KILLS
    # Every step of a post to three accounts: intake 8, exec 6, nostr 6, mastodon 8 (before
    # and after each ledger write, around the platform's send; for nostr and mastodon the
    # in-flight mark is written with their first save), finishing 7.
    assert figures.systematic_kills >= 40  # more for the split thread's parts
    assert figures.posts >= KILLS
    assert figures.lost == [], f"seed {seed}"
    assert figures.duplicates == [], f"seed {seed}"
    assert figures.problems == [], f"seed {seed}"
    assert figures.states["sent"] == figures.posts
    assert figures.per_peer["exec"] > 0 and figures.per_peer["mastodon"] > 0
    assert figures.per_peer["nostr relay 1"] > 0 and figures.per_peer["nostr relay 2"] > 0


REPOST_KILLS = 12


def test_kills_during_reposts_lose_and_duplicate_nothing(
    nostr_relays: list[str], mastodon_mock: Mock, pds: Pds, tmp_path: Path
) -> None:
    seed = int(os.environ.get("PLURSPOOL_CAMPAIGN_SEED", "0")) or int.from_bytes(os.urandom(3))
    figures = repost_campaign.run(
        tmp_path,
        kills=REPOST_KILLS,
        seed=seed,
        samples=1,
        relays=nostr_relays,
        mastodon=mastodon_mock.url,
        pds=pds,
        log=print,
    )
    print(f"\nseed {seed}\n{figures.text()}")
    assert figures.kills == REPOST_KILLS
    assert figures.systematic_kills >= 10  # every step of a repost to both accounts
    assert figures.lost == [], f"seed {seed}"
    assert figures.duplicates == [], f"seed {seed}"
    assert figures.problems == [], f"seed {seed}"
    assert figures.states["sent"] == figures.posts
    assert figures.per_peer["mastodon"] > 0 and figures.per_peer["nostr relay 1"] > 0
    assert figures.per_peer["bluesky"] > 0
