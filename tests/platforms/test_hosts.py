"""Many hosts, one voice, against the real peers: two hosts (two state directories,
PLURSPOOL_HOST=a|b, copies of one spool) both send the same due post with real `plurspool send
--once` subprocesses, and each platform holds it once (plurspool(5), SEVERAL MACHINES)."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.daemon_helpers import Sandbox, iso, post_text, wait_for
from tests.helpers import Run, read_post, run_cli
from tests.peers.bluesky_pds import Pds
from tests.peers.bluesky_pds import pds as pds  # the session fixtures, used on demand
from tests.peers.mastodon_mock import Mock
from tests.peers.mastodon_mock import mastodon_mock as mastodon_mock
from tests.peers.nostr_relays import nostr_relays as nostr_relays
from tests.platforms.adapters import (
    Adapter,
    BlueskyAdapter,
    MastodonAdapter,
    NostrAdapter,
    relay_query,
    thread,
)

pytestmark = pytest.mark.peers

TEXT = "One voice, two hosts\n\n---\n\nand a second part"


def hosts(tmp_path: Path, adapters: dict[str, Adapter], senders: str = "") -> dict[str, Sandbox]:
    """Hosts a and b: each its own spool copy, state directory and config, the same accounts."""
    out = {}
    for name in ("a", "b"):
        box = Sandbox(tmp_path / name)
        for account, adapter in adapters.items():
            box.accounts[account] = adapter.section()
            box.default_platforms.append(account)
        box.extra = senders
        box.write_config()
        box.env["PLURSPOOL_HOST"] = name
        out[name] = box
    return out


def send_once(box: Sandbox) -> Run:
    run = run_cli(["send", "--once"], box.env, timeout=120)
    assert run.code == 0, run.err
    return run


@pytest.fixture
def adapters(
    tmp_path: Path,
    nostr_relays: list[str],
    mastodon_mock: Mock,
    pds: Pds,
) -> dict[str, Adapter]:
    return {
        "mastodon": MastodonAdapter(mastodon_mock, tmp_path),
        "bluesky": BlueskyAdapter(pds, tmp_path),
        "nostr": NostrAdapter(nostr_relays, tmp_path),
    }


def test_two_hosts_sending_one_post_leave_it_once_on_every_platform(
    tmp_path: Path, adapters: dict[str, Adapter]
) -> None:
    pair = hosts(tmp_path, adapters)
    text = post_text(TEXT, schedule=iso(time.time() - 30))
    for box in pair.values():
        box.deliver("scheduled", "p", text)
    for box in pair.values():  # b knows nothing of a's sends: its ledger is its own
        send_once(box)
        assert box.is_in("p", "sent")
    a, b = (read_post(box.spool / "sent" / "p.md") for box in pair.values())
    for account, adapter in adapters.items():
        parts = thread(adapter.posts())  # every part once, one reply chain (both relays alike)
        assert [p.text for p in parts] == ["One voice, two hosts", "and a second part"]
        assert adapter.held_anywhere() == 2, account
        first = a.results[account].id
        assert first is not None and b.results[account].id == first, account
        assert adapter.ref_of(first) == parts[0].ref, account


def test_senders_split_one_post_between_two_hosts_synced_by_copying(
    tmp_path: Path, adapters: dict[str, Adapter]
) -> None:
    senders = '[senders]\na = ["mastodon", "nostr"]\nb = ["bluesky"]\n'
    pair = hosts(tmp_path, adapters, senders)
    a, b = pair["a"], pair["b"]
    a.deliver("scheduled", "p", post_text(TEXT, schedule=iso(time.time() - 30)))
    send_once(a)
    assert a.is_in("p", "scheduled")  # waiting for bluesky, which b sends
    assert set(read_post(a.spool / "scheduled" / "p.md").results) == {"mastodon", "nostr"}
    assert adapters["bluesky"].posts() == []
    shutil.copy2(a.spool / "scheduled" / "p.md", b.spool / "scheduled")  # the sync
    send_once(b)
    done = read_post(b.spool / "sent" / "p.md")
    assert set(done.results) == {"mastodon", "nostr", "bluesky"}
    assert all(r.error is None and r.id for r in done.results.values())
    for adapter in adapters.values():
        assert len(thread(adapter.posts())) == 2
    # Back on a, through the sync: finished there too, nothing sent again.
    (a.spool / "scheduled" / "p.md").unlink()
    shutil.copy2(b.spool / "sent" / "p.md", a.spool / "sent")
    send_once(a)
    for adapter in adapters.values():
        assert adapter.held_anywhere() == 2


@pytest.mark.slow
def test_two_hosts_with_senders_each_delete_their_own_accounts_of_an_expiring_post(
    tmp_path: Path, adapters: dict[str, Adapter]
) -> None:
    """`expires` with `[senders]`: each host deletes only its accounts and writes their
    `deleted_at`; a copy synced over the other's (each ran on its own stale file) loses
    nothing for good: the host's ledger writes its `deleted_at` again, deleting nothing twice."""
    from datetime import datetime

    senders = '[senders]\na = ["mastodon", "nostr"]\nb = ["bluesky"]\n'
    pair = hosts(tmp_path, adapters, senders)
    a, b = pair["a"], pair["b"]
    text = "---\nexpires: 2s\n" + post_text(TEXT, schedule=iso(time.time() - 30))[4:]
    a.deliver("scheduled", "p", text)
    send_once(a)
    shutil.copy2(a.spool / "scheduled" / "p.md", b.spool / "scheduled")  # the sync
    send_once(b)
    (a.spool / "scheduled" / "p.md").unlink()
    shutil.copy2(b.spool / "sent" / "p.md", a.spool / "sent")
    sent = read_post(a.spool / "sent" / "p.md")
    assert set(sent.results) == {"mastodon", "nostr", "bluesky"}
    last = max(datetime.fromisoformat(r.at or "").timestamp() for r in sent.results.values())
    wait_for(lambda: time.time() > last + 2.5, 10, what="the expiry")
    send_once(a)  # a deletes its accounts only
    on_a = read_post(a.spool / "sent" / "p.md").results
    assert on_a["mastodon"].deleted_at and on_a["nostr"].deleted_at, on_a
    assert on_a["bluesky"].deleted_at is None
    assert adapters["mastodon"].posts() == [] and len(thread(adapters["bluesky"].posts())) == 2
    send_once(b)  # on its own copy, not yet synced: b deletes bluesky only
    on_b = read_post(b.spool / "sent" / "p.md").results
    assert on_b["bluesky"].deleted_at and on_b["mastodon"].deleted_at is None, on_b
    assert adapters["bluesky"].posts() == []
    # b's copy wins the sync: a's deleted_at is lost from the file, not from a's ledger.
    shutil.copy2(b.spool / "sent" / "p.md", a.spool / "sent" / "p.md")
    send_once(a)
    done = read_post(a.spool / "sent" / "p.md").results
    assert all(r.deleted_at for r in done.values()), done
    assert (done["mastodon"].deleted_at, done["nostr"].deleted_at) == (
        on_a["mastodon"].deleted_at,
        on_a["nostr"].deleted_at,
    )  # from a's ledger: the time it was deleted, not deleted again
    assert done["bluesky"].deleted_at == on_b["bluesky"].deleted_at
    shutil.copy2(a.spool / "sent" / "p.md", b.spool / "sent" / "p.md")
    send_once(b)  # nothing left for b: its file stays as it is
    assert read_post(b.spool / "sent" / "p.md").results == done
    nostr = adapters["nostr"]
    assert isinstance(nostr, NostrAdapter)
    for url in nostr.relays:  # one deletion request, from a
        assert len(relay_query(url, {"authors": [nostr.pubkey], "kinds": [5]})) == 1, url


def test_two_hosts_sending_one_post_at_the_same_time_leave_one_status(
    tmp_path: Path, mastodon_mock: Mock
) -> None:
    """Both `send --once` at once, with no [senders]: the two POSTs are in flight together (the
    mock holds each one two seconds before its handler), and the shared Idempotency-Key makes
    the second the first's status. The mock's check and insert run with no await between them
    on its one event loop, under a unique (account, key) constraint: atomic, as Mastodon's own
    (`with_redis_lock` around the check, the create and the key's write)."""
    adapter = MastodonAdapter(mastodon_mock, tmp_path)
    pair = hosts(tmp_path, {"mastodon": adapter})
    text = post_text("Said once, sent twice at once", schedule=iso(time.time() - 30))
    for box in pair.values():
        box.deliver("scheduled", "p", text)
    statuses = {"methods": ["POST"], "path": "/api/v1/statuses"}
    mastodon_mock.add_fault({"match": statuses, "effect": {"type": "latency", "delay_ms": 2000}})
    try:
        with ThreadPoolExecutor(2) as pool:
            spans = list(pool.map(timed_send, pair.values()))
    finally:
        mastodon_mock.clear_faults()
    (a_start, a_end), (b_start, b_end) = spans
    assert a_start < b_end and b_start < a_end, "the two sends did not overlap"
    [status] = adapter.posts()
    assert status.text == "Said once, sent twice at once"
    ids = {read_post(box.spool / "sent" / "p.md").results["mastodon"].id for box in pair.values()}
    assert ids == {status.ref}


def timed_send(box: Sandbox) -> tuple[float, float]:
    start = time.monotonic()
    send_once(box)
    return start, time.monotonic()
