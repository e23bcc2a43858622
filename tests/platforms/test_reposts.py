"""Reposts on the real peers (plurspool(5), `repost`): one reblog on mastodon-mock, one
`app.bsky.feed.repost` record on the PDS, one kind-6 event on each relay per repost; also when
plurspool dies after the peer answered; an address the peer cannot resolve fails for good,
naming it.

Each test drives the CLI (`send --once`) in a sandbox whose one account, `acct`, is a fresh
account on the peer; the reposted post is another fresh account's, made on the peer directly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from plurspool.platforms import nostr_proto as proto
from plurspool.post import Result, parse
from tests.daemon_helpers import Sandbox
from tests.peers.bluesky_pds import pds as pds  # the session fixtures, used on demand
from tests.peers.mastodon_mock import mastodon_mock as mastodon_mock
from tests.peers.mastodon_mock import request as mastodon_request
from tests.peers.nostr_relays import nostr_relays as nostr_relays
from tests.platforms.adapters import (
    ACCOUNT,
    CRASH_SHIM,
    Adapter,
    BlueskyAdapter,
    MastodonAdapter,
    NostrAdapter,
    relay_query,
)

pytestmark = pytest.mark.peers


class Peer:
    """One platform's peer: a post of someone else's to repost, and our account's reposts."""

    def __init__(self, adapter: Adapter, request: pytest.FixtureRequest) -> None:
        self.adapter = adapter
        self.request = request

    def original(self) -> str:
        """A fresh post of another account on the peer: its address, as a user writes it."""
        raise NotImplementedError

    def reposts(self) -> list[str]:
        """What our account holds on the peer that reposts something: the targets' ids."""
        raise NotImplementedError

    def target_id(self, address: str) -> str:
        """The id on the peer of the post at `address`, as `reposts` names it."""
        raise NotImplementedError

    def unresolvable(self) -> str:
        raise NotImplementedError


class MastodonPeer(Peer):
    adapter: MastodonAdapter

    def original(self) -> str:
        mock = self.adapter.mock
        other = mock.new_user()
        code, status = mastodon_request(
            mock.url, "POST", "/api/v1/statuses", {"status": "boost me"}, token=other.token
        )
        assert code == 200, status
        # The mock names its statuses http://localhost:PORT/...; the account's instance is the
        # same server as http://127.0.0.1:PORT.
        return f"{mock.url}/@{other.username}/{status['id']}"

    def reposts(self) -> list[str]:
        statuses = self.adapter.mock.statuses(self.adapter.user)
        return [str(s["reblog"]["id"]) for s in statuses if s.get("reblog")]

    def target_id(self, address: str) -> str:
        return address.rsplit("/", 1)[-1]

    def unresolvable(self) -> str:
        return "https://elsewhere.example/@nobody/1234"


class BlueskyPeer(Peer):
    adapter: BlueskyAdapter

    def original(self) -> str:
        pds = self.adapter.pds
        other = pds.new_account()
        record = {"$type": "app.bsky.feed.post", "text": "repost me", "createdAt": now_iso()}
        code, out, _ = pds.call(
            "com.atproto.repo.createRecord",
            body={"repo": other.did, "collection": "app.bsky.feed.post", "record": record},
            token=other.access_jwt,
        )
        assert code == 200, out
        rkey = str(out["uri"]).rsplit("/", 1)[-1]
        return f"https://bsky.app/profile/{other.handle}/post/{rkey}"

    def reposts(self) -> list[str]:
        pds, me = self.adapter.pds, self.adapter.me
        code, out, _ = pds.call(
            "com.atproto.repo.listRecords",
            params={"repo": me.did, "collection": "app.bsky.feed.repost", "limit": "100"},
        )
        assert code == 200, out
        return [str(r["value"]["subject"]["uri"]).rsplit("/", 1)[-1] for r in out["records"]]

    def target_id(self, address: str) -> str:
        return address.rsplit("/", 1)[-1]

    def unresolvable(self) -> str:
        return f"at://{self.adapter.me.did}/app.bsky.feed.post/3kzzzzzzzzz2a"


class NostrPeer(Peer):
    adapter: NostrAdapter

    def original(self) -> str:
        event = proto.sign_event(os.urandom(31) + b"\x01", int(time.time()), [], "repost me")
        for url in self.adapter.relays:
            publish(url, event)
        return f"nostr:{proto.note(event['id'])}"

    def reposts(self) -> list[str]:
        """Kind-6 events of our key, once per relay each (asserted), by the note they repost."""
        per_relay = []
        for url in self.adapter.relays:
            events = relay_query(url, {"authors": [self.adapter.pubkey], "kinds": [6]})
            for ev in events:
                assert proto.verified(ev, ev["id"]), ev
                [e] = [t for t in ev["tags"] if t[0] == "e"]
                [p] = [t for t in ev["tags"] if t[0] == "p"]
                assert json.loads(ev["content"])["pubkey"] == p[1], ev
                assert e[2] in self.adapter.relays, ev  # a relay that has the note
            per_relay.append(sorted(t[1] for ev in events for t in ev["tags"] if t[0] == "e"))
        assert all(r == per_relay[0] for r in per_relay), per_relay  # each relay has each one
        return per_relay[0]

    def target_id(self, address: str) -> str:
        ref = proto.event_ref(address)
        assert ref is not None
        return ref.event_id

    def unresolvable(self) -> str:
        return f"nostr:{proto.note(os.urandom(32).hex())}"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def publish(url: str, event: dict[str, Any]) -> None:
    with connect(url, open_timeout=10, close_timeout=1.0) as ws:
        ws.send(json.dumps(["EVENT", event]))
        answer = json.loads(ws.recv(timeout=10))
        assert answer[:3] == ["OK", event["id"], True], answer


@pytest.fixture(params=["mastodon", "bluesky", "nostr"])
def peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Peer]:
    made: Peer
    if request.param == "nostr":
        made = NostrPeer(NostrAdapter(request.getfixturevalue("nostr_relays"), tmp_path), request)
    elif request.param == "mastodon":
        adapter = MastodonAdapter(request.getfixturevalue("mastodon_mock"), tmp_path)
        made = MastodonPeer(adapter, request)
    else:
        made = BlueskyPeer(BlueskyAdapter(request.getfixturevalue("pds"), tmp_path), request)
    try:
        yield made
    finally:
        made.adapter.close()


@pytest.fixture
def box(tmp_path: Path, peer: Peer) -> Iterator[Sandbox]:
    made = Sandbox(tmp_path / "box")
    made.accounts[ACCOUNT] = peer.adapter.section()
    made.write_config()
    try:
        yield made
    finally:
        made.cleanup()


def repost_file(box: Sandbox, name: str, address: str) -> None:
    box.deliver("new", name, f"---\nplatforms: [{ACCOUNT}]\nrepost: '{address}'\n---\n")


def result_of(box: Sandbox, post_id: str, state: str = "sent") -> Result:
    return parse((box.spool / state / f"{post_id}.md").read_bytes()).results[ACCOUNT]


def test_a_repost_goes_out_once(box: Sandbox, peer: Peer) -> None:
    address = peer.original()
    repost_file(box, "boost", address)
    run = box.cli("send", "--once", timeout=90.0)
    assert run.code == 0, run.err
    assert box.ids("sent") == {"boost"}, run.err
    assert peer.reposts() == [peer.target_id(address)]
    recorded = result_of(box, "boost")
    assert recorded.id and recorded.attempts == 1, recorded
    again = box.cli("send", "--once", timeout=90.0)
    assert again.code == 0 and peer.reposts() == [peer.target_id(address)], again.err


def test_a_crash_after_the_peer_answered_reposts_once(
    box: Sandbox, peer: Peer, tmp_path: Path
) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(CRASH_SHIM, encoding="utf-8")
    address = peer.original()
    repost_file(box, "boost", address)
    crash = {"PYTHONPATH": str(shim), "PLURSPOOL_TEST_CRASH": peer.adapter.platform}
    died = box.cli("send", "--once", env=crash, timeout=90.0)
    assert died.code == 137, f"the crash shim did not fire: {died.code}\n{died.err}"
    assert box.ids("scheduled") == {"boost"}
    # (Nostr's relays answer in parallel: when one's answer kills it, the other may not have it.)
    assert isinstance(peer, NostrPeer) or peer.reposts() == [peer.target_id(address)]
    again = box.cli("send", "--once", timeout=90.0)
    assert again.code == 0 and box.ids("sent") == {"boost"}, again.err
    assert peer.reposts() == [peer.target_id(address)]
    assert result_of(box, "boost").attempts == 2


def test_an_address_the_peer_cannot_resolve_fails_for_good_naming_it(
    box: Sandbox, peer: Peer
) -> None:
    address = peer.unresolvable()
    repost_file(box, "lost", address)
    run = box.cli("send", "--once", timeout=90.0)
    assert run.code == 0, run.err
    assert box.ids("failed") == {"lost"}, run.err
    error = result_of(box, "lost", "failed").error or ""
    assert f"cannot resolve {address}" in error or f"cannot repost {address}" in error, error
    assert peer.reposts() == []


def test_mastodon_gives_back_the_first_reblog_when_asked_again(mastodon_mock: Any) -> None:
    """What makes a reblog retry safe: a second reblog of a status returns the first."""
    author, booster = mastodon_mock.new_user(), mastodon_mock.new_user()
    url = mastodon_mock.url
    code, status = mastodon_request(url, "POST", "/api/v1/statuses", {"status": "x"}, author.token)
    assert code == 200, status
    path = f"/api/v1/statuses/{status['id']}/reblog"
    first = mastodon_request(url, "POST", path, token=booster.token)
    second = mastodon_request(url, "POST", path, token=booster.token)
    assert first[0] == second[0] == 200
    assert first[1]["id"] == second[1]["id"] and first[1]["reblog"]["id"] == status["id"]
    assert [s["reblog"]["id"] for s in mastodon_mock.statuses(booster)] == [status["id"]]


# --- a recurring repost undoes the previous one first ---------------------------------------


def undone(peer: Peer, result_id: str) -> bool:
    """Whether the repost recorded as `result_id` is gone from (or deleted on) the peer."""
    if isinstance(peer, MastodonPeer):
        code, _ = mastodon_request(
            peer.adapter.mock.url,
            "GET",
            f"/api/v1/statuses/{result_id}",
            token=peer.adapter.user.token,
        )
        return code == 404
    if isinstance(peer, BlueskyPeer):
        code, _, _ = peer.adapter.pds.call(
            "com.atproto.repo.getRecord",
            params=dict(zip(("repo", "collection", "rkey"), result_id[5:].split("/"), strict=True)),
        )
        return code == 400
    assert isinstance(peer, NostrPeer)
    kind, data = proto.bech32_decode(result_id)
    assert kind == "note", result_id
    pubkey = peer.adapter.pubkey
    for url in peer.adapter.relays:  # a kind-5 naming it on every relay
        deletions = relay_query(url, {"authors": [pubkey], "kinds": [5]})
        if not any(["e", data.hex()] in ev["tags"] for ev in deletions):
            return False
    return True


def test_a_recurring_repost_undoes_the_previous_one_first(
    tmp_path: Path, box: Sandbox, peer: Peer
) -> None:
    from datetime import timedelta

    from tests.daemon_helpers import in_process

    address = peer.original()
    box.deliver(
        "new",
        "daily",
        f"---\nplatforms: [{ACCOUNT}]\nrepeat: every day at 9am\nrepost: '{address}'\n---\n",
    )
    world = in_process(box)
    assert world.run().queued == ["daily"]
    made = []
    for _ in range(2):
        due = world.app.items.find("daily").due
        assert due is not None
        world.clock[0] = due + timedelta(seconds=1)
        ran = world.run()
        assert len(ran.sent) == 1, world.log.getvalue()
        [sent] = ran.sent
        made.append(result_of(box, sent).id or "")
    first, second = made
    assert first and second and first != second
    assert undone(peer, first) and not undone(peer, second)
    if not isinstance(peer, NostrPeer):  # relays may keep a deleted event: its kind-5 says
        assert peer.reposts() == [peer.target_id(address)]


# --- an expiring repost is undone (plurspool(5), `expires` on a `repost`) ---------------------


def test_an_expiring_repost_is_undone_and_recorded_deleted(box: Sandbox, peer: Peer) -> None:
    """At its expiry a repost is taken back: mastodon's reblog undone, bluesky's record
    deleted from app.bsky.feed.repost, nostr a kind-5 naming kind 6; no error anywhere."""
    from plurspool.deleting import Deletions
    from plurspool.log import Log
    from tests.daemon_helpers import in_process

    address = peer.original()
    box.deliver(
        "new", "brief", f"---\nplatforms: [{ACCOUNT}]\nexpires: 1h\nrepost: '{address}'\n---\n"
    )
    world = in_process(box)
    try:
        assert world.run().sent == ["brief"], world.log.getvalue()
        made = result_of(box, "brief").id or ""
        assert made and peer.reposts() == [peer.target_id(address)]
        world.tick(3601)
        deletions = Deletions(world.app, Log(stream=world.log))
        gone = deletions.run(deletions.expired())
        assert gone.failed == {} and gone.deferred == {}, world.log.getvalue()
        assert gone.deleted == {"brief": [ACCOUNT]}, world.log.getvalue()
        recorded = result_of(box, "brief")
        assert recorded.deleted_at is not None and recorded.error is None, recorded
        assert undone(peer, made)
        if isinstance(peer, NostrPeer):
            for url in peer.adapter.relays:
                [request] = relay_query(url, {"authors": [peer.adapter.pubkey], "kinds": [5]})
                assert [t for t in request["tags"] if t[0] == "k"] == [["k", "6"]], request
        else:
            assert peer.reposts() == []
    finally:
        world.app.close()


def test_delete_undoes_a_repost_and_amend_refuses_it(box: Sandbox, peer: Peer) -> None:
    address = peer.original()
    repost_file(box, "boost", address)
    run = box.cli("send", "--once", timeout=90.0)
    assert run.code == 0 and box.ids("sent") == {"boost"}, run.err
    made = result_of(box, "boost").id or ""
    amend = box.cli("amend", "boost", env={"EDITOR": "true", "VISUAL": "true"})
    assert amend.code == 3 and "boost is a repost: it has no text to amend" in amend.err
    assert "Traceback" not in amend.err
    run = box.cli("delete", "boost", "--force", "--json", timeout=90.0)
    assert run.code == 0, run.err
    assert run.json()["results"][ACCOUNT]["deleted_at"] is not None
    assert undone(peer, made)
    if not isinstance(peer, NostrPeer):
        assert peer.reposts() == []


def test_a_repost_sent_from_another_host_is_undone_at_its_expiry(
    tmp_path: Path, box: Sandbox, peer: Peer
) -> None:
    """The host that deletes has no ledger row of the send (the file came through the sync):
    the repost is undone from what the file records (nostr's kind-5 still names kind 6)."""
    from plurspool.deleting import Deletions
    from plurspool.log import Log
    from tests.daemon_helpers import in_process

    address = peer.original()
    text = f"---\nplatforms: [{ACCOUNT}]\nexpires: 1h\nrepost: '{address}'\n---\n"
    box.deliver("new", "brief", text)
    run = box.cli("send", "--once", timeout=90.0)
    assert run.code == 0 and box.ids("sent") == {"brief"}, run.err
    made = result_of(box, "brief").id or ""
    other = Sandbox(tmp_path / "other")  # another host: its own state, the same account
    other.accounts[ACCOUNT] = peer.adapter.section()
    other.deliver("sent", "brief", (box.spool / "sent" / "brief.md").read_text(encoding="utf-8"))
    world = in_process(other)
    try:
        assert world.app.ledger.deliveries("brief") == {}
        world.tick(3601)
        deletions = Deletions(world.app, Log(stream=world.log))
        gone = deletions.run(deletions.expired())
        assert gone.deleted == {"brief": [ACCOUNT]} and gone.failed == {}, world.log.getvalue()
        assert result_of(other, "brief").deleted_at is not None
        assert undone(peer, made)
        if isinstance(peer, NostrPeer):
            for url in peer.adapter.relays:
                [request] = relay_query(url, {"authors": [peer.adapter.pubkey], "kinds": [5]})
                assert [t for t in request["tags"] if t[0] == "k"] == [["k", "6"]], request
        else:
            assert peer.reposts() == []
    finally:
        world.app.close()
        other.cleanup()
