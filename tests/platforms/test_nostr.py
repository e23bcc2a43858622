"""The nostr platform against two real relays on 127.0.0.1: rust-nostr's LocalRelay and
nostr-relay 1.14 (see tests/peers/nostr_relays.py)."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection, serve

from plurspool.config import Account
from plurspool.errors import ConfigError, SendError
from plurspool.platforms import get
from plurspool.platforms import nostr_proto as proto
from plurspool.platforms.base import Outcome, Quoted
from plurspool.platforms.nostr import MAX_CONTENT, Nostr
from plurspool.post import Media, Post, parse
from tests.helpers import (
    run_cli,
    silent_tcp_server,
    spool_root,
    verify_nostr_event,
    write_config,
)
from tests.peers.nostr_relays import nostr_relays as nostr_relays  # the fixture
from tests.peers.nostr_relays import start_local_relay
from tests.peers.proc import free_port
from tests.platforms.adapters import Adapter, NostrAdapter
from tests.platforms.contract import Crash, PlatformContract
from tests.platforms.fakes import Store, job

NOSTR = Nostr()


# --- helpers ----------------------------------------------------------------------------------


def new_secret() -> bytes:
    return os.urandom(31) + b"\x01"  # always inside the curve order


def key_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"key-{uuid.uuid4().hex[:8]}"
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def account(
    relays: list[str], tmp_path: Path, secret: bytes | str | None = None, min_relays: int = 1
) -> Account:
    options: dict[str, Any] = {"relays": tuple(relays), "min_relays": min_relays}
    if secret is not None:
        text = secret if isinstance(secret, str) else proto.nsec(secret)
        options["key_file"] = key_file(tmp_path, text)
    return Account("mynostr", "nostr", MappingProxyType(options))


def post(body: str, front: str = "") -> Post:
    return parse(f"---\n{front}---\n{body}\n".encode())


def query(url: str, flt: dict[str, Any], timeout: float = 10.0) -> list[dict[str, Any]]:
    """The events a relay holds that match `flt` (REQ until EOSE)."""
    events = []
    with connect(url, open_timeout=timeout) as ws:
        ws.send(json.dumps(["REQ", "q", flt]))
        end = time.monotonic() + timeout
        while True:
            msg = json.loads(ws.recv(timeout=max(0.01, end - time.monotonic())))
            if msg[0] == "EVENT" and msg[1] == "q":
                events.append(msg[2])
            elif msg[0] == "EOSE":
                return events


def by_id(url: str, event_id: str) -> list[dict[str, Any]]:
    return query(url, {"ids": [event_id]})


def by_author(url: str, secret: bytes) -> list[dict[str, Any]]:
    return query(url, {"authors": [proto.public_key(secret)], "limit": 100})


def stored_events(store: Store) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = store.material["events"]
    return events


class FakeRelay:
    """A websocket relay that records every message and accepts every event (or never answers)."""

    def __init__(self, *, silent: bool = False) -> None:
        self.silent = silent
        self.received: list[Any] = []
        self.connections: list[ServerConnection] = []  # every one ever opened
        self.server: Server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        for raw in ws:
            msg = json.loads(raw)
            self.received.append(msg)
            if msg[0] == "EVENT" and not self.silent:
                ws.send(json.dumps(["OK", msg[1]["id"], True, ""]))

    def events(self) -> list[dict[str, Any]]:
        return [m[1] for m in self.received if m[0] == "EVENT"]

    def drop_all(self) -> None:
        """Close every connection from the relay's side (as relays drop idle clients)."""
        for ws in self.connections:
            ws.close()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def fake_relay() -> Iterator[FakeRelay]:
    relay = FakeRelay()
    yield relay
    relay.close()


@pytest.fixture
def hanging_tcp() -> Iterator[str]:
    """A TCP server that accepts connections and never says a word."""
    with silent_tcp_server() as port:
        yield f"ws://127.0.0.1:{port}"


def sent(outcome: Outcome) -> str:
    assert outcome.status == "sent", outcome
    assert outcome.remote_id is not None
    return outcome.remote_id


# --- codec ------------------------------------------------------------------------------------


def test_nip19_examples() -> None:
    # The examples in NIP-19.
    pub = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"
    sec = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
    assert proto.npub(pub) == "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"
    assert proto.nsec(bytes.fromhex(sec)) == (
        "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5"
    )
    assert proto.parse_secret(proto.nsec(bytes.fromhex(sec))) == bytes.fromhex(sec)
    assert proto.parse_secret(sec.upper()) == bytes.fromhex(sec)
    assert proto.public_key(bytes.fromhex(sec)) == proto.public_key(bytes.fromhex(sec))
    hrp, data = proto.bech32_decode(proto.note("00" * 31 + "ff"))
    assert (hrp, data.hex()) == ("note", "00" * 31 + "ff")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("nsec1canaryqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "checksum"),
        (proto.npub("11" * 32), "npub"),
        ("ab" * 31, "expected nsec1"),
        ("00" * 32, "outside the range"),
        ("ff" * 32, "outside the range"),
        (proto.bech32_encode("nsec", b"\x01" * 31), "32 bytes"),
    ],
)
def test_bad_secrets_say_why_without_echoing(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        proto.parse_secret(text)
    assert reason in str(info.value)
    assert text not in str(info.value) and text[5:15] not in str(info.value)


def test_event_ids_and_signatures_verify() -> None:
    secret = new_secret()
    ev = proto.sign_event(secret, 1_700_000_000, [["t", "x"]], 'a "b" \\ \n\x01 é 😀')
    assert verify_nostr_event(ev)
    assert verify_nostr_event({**ev, "content": "other"}) is False
    assert verify_nostr_event({**ev, "sig": "00" * 64}) is False
    expected = f'[0,"{ev["pubkey"]}",1700000000,1,[["t","x"]],"a \\"b\\" \\\\ \\n\\u0001 é 😀"]'
    assert proto.serialize(ev["pubkey"], 1_700_000_000, 1, [["t", "x"]], ev["content"]) == (
        expected.encode()
    )


def test_hashtags_and_language_tags() -> None:
    text = "Hi #PlurSpool and #nostr, not a#b or https://x.org/#frag or #123; #Ünïcode #nostr"
    assert proto.hashtags(text) == ["plurspool", "nostr", "ünïcode"]
    assert proto.language_tags("pt-BR") == [["L", "ISO-639-1"], ["l", "pt", "ISO-639-1"]]


# --- check ------------------------------------------------------------------------------------


def test_check_is_offline_and_secretless(tmp_path: Path) -> None:
    acc = account(["ws://127.0.0.1:9"], tmp_path)  # no key, nothing listening
    assert NOSTR.check(post("hello"), acc, tmp_path) == []
    long = "x" * (MAX_CONTENT + 1)
    issues = NOSTR.check(post(f"short\n\n---\n\n{long}"), acc, tmp_path)
    assert [i.level for i in issues] == ["error"]
    assert "part 2" in issues[0].message and str(MAX_CONTENT + 1) in issues[0].message
    assert NOSTR.check(post("x" * MAX_CONTENT), acc, tmp_path) == []


def test_check_refuses_media_private_visibility_and_ambiguous_controls(tmp_path: Path) -> None:
    acc = account(["ws://127.0.0.1:9"], tmp_path)
    base = post("hello")
    with_media = Post(**{**base.__dict__, "media": (Media("media/cat.jpg", "a cat"),)})
    [issue] = NOSTR.check(with_media, acc, tmp_path)
    assert issue.level == "error"
    assert issue.message.startswith("nostr: media needs a URL; local files are not uploaded")
    assert "media/cat.jpg" in issue.message
    [issue] = NOSTR.check(post("hi", "visibility: followers\n"), acc, tmp_path)
    assert issue.level == "error" and "public" in issue.message
    [issue] = NOSTR.check(post("hi", "visibility: unlisted\n"), acc, tmp_path)
    assert issue.level == "warning"
    [issue] = NOSTR.check(post("a\x1fb"), acc, tmp_path)
    assert issue.level == "error" and "U+001F" in issue.message


# --- sending to the real relays ---------------------------------------------------------------


@pytest.mark.peers
def test_a_note_is_the_saved_event_on_both_relays(nostr_relays: list[str], tmp_path: Path) -> None:
    """What the contract (TestNostrContract) does not see: the event, and what was saved."""
    secret = new_secret()
    store = Store()
    text = f"hello from plurspool {uuid.uuid4()}"
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)  # sent 3 hours late
    acct = account(nostr_relays, tmp_path, secret, 2)
    outcome = NOSTR.send(job(post(text), acct, spool_root=tmp_path, store=store, due=due))
    note = sent(outcome)
    [ev] = stored_events(store)
    assert proto.bech32_decode(note) == ("note", bytes.fromhex(ev["id"]))
    assert ev["created_at"] == int(due.timestamp())  # the post's time: the same on every host
    assert ev["kind"] == 1 and ev["tags"] == [] and ev["content"] == text
    for url in nostr_relays:
        [held] = by_id(url, ev["id"])
        assert held == ev
        assert verify_nostr_event(held)
    # Saved once, before the first byte went out; a full success leaves no progress to keep
    # (the sender records it; were that lost, the same event would go again: "duplicate").
    assert store.saves == 1
    assert all(r == {"accepted": [], "state": "sending"} for r in store.material["relays"].values())


@pytest.mark.peers
def test_thread_of_three_with_nip10_tags(nostr_relays: list[str], tmp_path: Path) -> None:
    secret = new_secret()
    store = Store()
    p = post("one #Thread\n\n---\n\ntwo\n\n---\n\nthree")
    sent(
        NOSTR.send(
            job(p, account(nostr_relays, tmp_path, secret, 2), spool_root=tmp_path, store=store)
        )
    )
    e1, e2, e3 = stored_events(store)
    hint, me = nostr_relays[0], proto.public_key(secret)
    assert e1["tags"] == [["t", "thread"]]
    assert e2["tags"] == [["e", e1["id"], hint, "root"], ["p", me]]
    assert e3["tags"] == [["e", e1["id"], hint, "root"], ["e", e2["id"], hint, "reply"], ["p", me]]
    for url in nostr_relays:
        held = {e["id"]: e for e in by_author(url, secret)}
        assert len(held) == 3
        assert [held[e["id"]]["content"] for e in (e1, e2, e3)] == ["one #Thread", "two", "three"]
        assert all(verify_nostr_event(e) for e in held.values())
        replies = query(url, {"#e": [e1["id"]]})
        assert sorted(e["id"] for e in replies) == sorted([e2["id"], e3["id"]])


@pytest.mark.peers
def test_a_quote_has_a_nip18_q_tag_and_a_nostr_reference(
    nostr_relays: list[str], tmp_path: Path
) -> None:
    secret = new_secret()
    acc = account(nostr_relays, tmp_path, secret)
    original = sent(NOSTR.send(job(post("the original"), acc, spool_root=tmp_path)))
    _, raw = proto.bech32_decode(original)
    quoted_id, me = raw.hex(), proto.public_key(secret)
    # `quote: @ID`: the earlier note's recorded note1 id.
    store = Store()
    by_note = Quoted(url=None, id=original)
    sent(
        NOSTR.send(
            replace(
                job(post("quoting it\n---\nmore"), acc, spool_root=tmp_path, store=store),
                quote=by_note,
            )
        )
    )
    first, second = stored_events(store)
    assert first["content"] == f"quoting it\n\nnostr:{original}"
    assert ["q", quoted_id, ""] in first["tags"]
    assert not any(t[0] == "q" for t in second["tags"]) and second["content"] == "more"
    # A nevent names a relay and the author: the q tag carries both.
    tlv = bytes([0, 32]) + raw + bytes([1, len(nostr_relays[0])]) + nostr_relays[0].encode()
    nevent = proto.bech32_encode("nevent", tlv + bytes([2, 32]) + bytes.fromhex(me))
    store = Store()
    by_link = Quoted(url=f"https://njump.me/{nevent}")
    sent(
        NOSTR.send(
            replace(job(post("again"), acc, spool_root=tmp_path, store=store), quote=by_link)
        )
    )
    [event] = stored_events(store)
    assert event["content"] == f"again\n\nnostr:{nevent}"
    assert ["q", quoted_id, nostr_relays[0], me] in event["tags"]
    for url in nostr_relays:
        quotes = query(url, {"#q": [quoted_id]})
        assert len(quotes) == 2 and all(verify_nostr_event(e) for e in quotes)


def test_check_refuses_a_quote_that_names_no_note(tmp_path: Path) -> None:
    p = post("hi", "quote: https://example.social/@a/1\n")
    [issue] = NOSTR.check(p, account(["wss://r.example"], tmp_path), tmp_path)
    assert issue.level == "error"
    assert issue.message.startswith("line 2: `quote`: https://example.social/@a/1 names no")


@pytest.mark.peers
def test_cw_hashtags_and_language(nostr_relays: list[str], tmp_path: Path) -> None:
    secret = new_secret()
    store = Store()
    p = post("Spoilers about #Episode3 and #TV", "cw: Episode 3\nlanguage: en\n")
    sent(
        NOSTR.send(
            job(p, account(nostr_relays, tmp_path, secret), spool_root=tmp_path, store=store)
        )
    )
    [ev] = stored_events(store)
    assert ev["tags"] == [
        ["content-warning", "Episode 3"],
        ["L", "ISO-639-1"],
        ["l", "en", "ISO-639-1"],
        ["t", "episode3"],
        ["t", "tv"],
    ]
    for url in nostr_relays:
        assert [e["id"] for e in query(url, {"#t": ["episode3"]}) if e["id"] == ev["id"]] == [
            ev["id"]
        ]
        [held] = by_id(url, ev["id"])
        assert held["tags"] == ev["tags"]


def test_sensitive_without_cw_gets_an_empty_content_warning(tmp_path: Path) -> None:
    store = Store()
    relay = FakeRelay()
    try:
        p = post("hm", "sensitive: true\n")
        sent(
            NOSTR.send(
                job(
                    p,
                    account([relay.url], tmp_path, new_secret()),
                    spool_root=tmp_path,
                    store=store,
                )
            )
        )
    finally:
        relay.close()
    assert stored_events(store)[0]["tags"] == [["content-warning", ""]]


@pytest.mark.peers
def test_awkward_text_is_hashed_as_both_relays_hash_it(
    nostr_relays: list[str], tmp_path: Path
) -> None:
    secret = new_secret()
    store = Store()
    text = 'Grüße 😀 «ç»\nline two\t"quoted" back\\slash \x01 bell\x07 \x08\x0c\r end'
    p = Post(**{**post("x").__dict__, "parts": (text,)})
    sent(
        NOSTR.send(
            job(p, account(nostr_relays, tmp_path, secret, 2), spool_root=tmp_path, store=store)
        )
    )
    [ev] = stored_events(store)
    assert ev["content"] == text
    for url in nostr_relays:
        [held] = by_id(url, ev["id"])
        assert held["content"] == text
        assert held["id"] == proto.event_id(
            held["pubkey"], held["created_at"], held["kind"], held["tags"], held["content"]
        )
        assert verify_nostr_event(held)


@pytest.mark.peers
def test_a_duplicate_counts_as_accepted(nostr_relays: list[str], tmp_path: Path) -> None:
    secret = new_secret()
    store = Store()
    acc = account(nostr_relays, tmp_path, secret, 2)
    first = sent(NOSTR.send(job(post("dup"), acc, spool_root=tmp_path, store=store)))
    [ev] = stored_events(store)
    # Forget the progress, as if it had never been recorded: both relays see the event again.
    store.material["relays"] = {}
    assert (
        sent(NOSTR.send(job(post("dup"), acc, spool_root=tmp_path, store=store, in_doubt=True)))
        == first
    )
    assert stored_events(store) == [ev]
    for url in nostr_relays:
        assert len(by_id(url, ev["id"])) == 1


@pytest.mark.peers
def test_retry_after_a_crash_resends_the_identical_event(
    nostr_relays: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plurspool.platforms import nostr as nostr_mod

    secret = new_secret()
    store = Store()
    acc = account(nostr_relays, tmp_path, secret, 2)
    p = post("crash test\n\n---\n\npart two")
    publish = nostr_mod._publish_all

    def crash_after_publishing(*args: Any) -> Any:
        publish(*args)
        raise Crash  # dies before the outcome is recorded

    monkeypatch.setattr(nostr_mod, "_publish_all", crash_after_publishing)
    with pytest.raises(Crash):
        NOSTR.send(job(p, acc, spool_root=tmp_path, store=store))
    monkeypatch.setattr(nostr_mod, "_publish_all", publish)
    before = stored_events(store)
    assert all(r["state"] == "sending" for r in store.material["relays"].values())
    for url in nostr_relays:  # it did go out
        assert len(by_author(url, secret)) == 2
    # coincurve signs with fresh aux randomness: a re-signed event would differ in `sig`.
    note = sent(NOSTR.send(job(p, acc, spool_root=tmp_path, store=store, in_doubt=True)))
    assert stored_events(store) == before
    assert proto.bech32_decode(note)[1].hex() == before[0]["id"]
    for url in nostr_relays:
        held = by_author(url, secret)
        assert sorted(held, key=lambda e: e["id"]) == sorted(before, key=lambda e: e["id"])


@pytest.mark.peers
def test_min_relays_with_one_down_then_retry_goes_only_to_it(
    fake_relay: FakeRelay, tmp_path: Path
) -> None:
    secret = new_secret()
    store = Store()
    port = free_port()
    down = f"ws://127.0.0.1:{port}"
    acc = account([fake_relay.url, down], tmp_path, secret, 2)
    p = post("needs two relays")
    first = NOSTR.send(job(p, acc, spool_root=tmp_path, store=store))
    assert first.status == "temporary", first
    assert first.error is not None and down in first.error and "connection refused" in first.error
    [ev] = stored_events(store)
    assert [e["id"] for e in fake_relay.events()] == [ev["id"]]
    assert store.material["relays"][fake_relay.url]["state"] == "accepted"
    assert store.material["relays"][down]["state"].startswith("unreachable")

    workdir = tmp_path / "late-relay"
    workdir.mkdir()
    with start_local_relay(workdir, port) as late:
        assert late.url == down
        note = sent(NOSTR.send(job(p, acc, spool_root=tmp_path, store=store)))
        assert proto.bech32_decode(note)[1].hex() == ev["id"]
        assert [e["id"] for e in fake_relay.events()] == [ev["id"]]  # nothing resent there
        assert by_id(down, ev["id"]) == [ev]
    assert stored_events(store) == [ev]


@pytest.mark.peers
@pytest.mark.realtime
@pytest.mark.parametrize("kind", ["tcp", "websocket"])
def test_a_hanging_relay_times_out_and_the_post_is_kept(
    kind: str, hanging_tcp: str, nostr_relays: list[str], tmp_path: Path
) -> None:
    silent = FakeRelay(silent=True)
    try:
        hang = hanging_tcp if kind == "tcp" else silent.url
        secret = new_secret()
        store = Store()
        acc = account([hang, nostr_relays[0]], tmp_path, secret, 2)
        started = time.monotonic()
        outcome = NOSTR.send(
            job(post("hang on"), acc, spool_root=tmp_path, store=store, deadline=2.0)
        )
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert outcome.status == "temporary", outcome
    assert outcome.error is not None and "timed out" in outcome.error
    assert elapsed < 8.0, elapsed  # the 2 s deadline, plus thread and socket teardown
    [ev] = stored_events(store)
    assert by_id(nostr_relays[0], ev["id"]) == [ev]
    state = store.material["relays"][hang]["state"]
    assert state.startswith("in doubt" if kind == "websocket" else "unreachable"), state


@pytest.mark.peers
def test_refused_by_a_real_relay_is_permanent(nostr_relays: list[str], tmp_path: Path) -> None:
    store = Store()
    p = Post(**{**post("x").__dict__, "parts": ("y" * (MAX_CONTENT + 10),)})
    acc = account([nostr_relays[1]], tmp_path, new_secret())
    outcome = NOSTR.send(job(p, acc, spool_root=tmp_path, store=store))
    assert outcome.status == "permanent", outcome
    assert outcome.error is not None and "refused: invalid" in outcome.error
    [refused] = stored_events(store)
    # Edited after that refusal: no relay can hold the old event, so the new text is signed.
    note = sent(NOSTR.send(job(post("shorter"), acc, spool_root=tmp_path, store=store)))
    [ev] = stored_events(store)
    assert ev["content"] == "shorter" and ev["id"] != refused["id"]
    assert proto.bech32_decode(note)[1].hex() == ev["id"]
    # Edited after it landed: the stored event is what goes out again, never a second note.
    assert (
        sent(NOSTR.send(job(post("edited once more"), acc, spool_root=tmp_path, store=store)))
        == note
    )
    store.material["relays"] = {}
    assert (
        sent(NOSTR.send(job(post("edited once more"), acc, spool_root=tmp_path, store=store)))
        == note
    )
    assert stored_events(store) == [ev]
    assert by_id(nostr_relays[1], refused["id"]) == []


@pytest.mark.peers
def test_bad_key_fails_with_a_message_free_of_the_key(
    nostr_relays: list[str], tmp_path: Path
) -> None:
    canary = "nsec1canaryqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
    acc = account(nostr_relays, tmp_path, canary)
    store = Store()
    with pytest.raises(ConfigError) as info:
        NOSTR.send(job(post("never"), acc, spool_root=tmp_path, store=store))
    text = f"{info.value.message} {info.value.hint}"
    assert "canary" not in text
    assert "account mynostr" in text and "checksum" in text and "key_file" in text
    assert store.saves == 0
    missing = account(nostr_relays, tmp_path)
    with pytest.raises(ConfigError, match="no nostr key") as info:
        NOSTR.send(job(post("never"), missing, spool_root=tmp_path, store=store))
    assert "PLURSPOOL_MYNOSTR_KEY" in info.value.hint


# --- accounts test ----------------------------------------------------------------------------


@pytest.mark.peers
def test_accounts_test_reports_identity_and_relays(nostr_relays: list[str], tmp_path: Path) -> None:
    secret = new_secret()
    report = get("nostr").test(account(nostr_relays, tmp_path, secret, 2), tmp_path)
    assert report["pubkey"] == proto.npub(proto.public_key(secret))
    assert report["answered"] == nostr_relays
    assert report["relays"] == dict.fromkeys(nostr_relays, "ok")
    for url in nostr_relays:
        assert by_author(url, secret) == []  # nothing was sent
    down = f"ws://127.0.0.1:{free_port()}"
    with pytest.raises(SendError, match="1 of 2 relays answered, 2 needed") as info:
        NOSTR.test(account([nostr_relays[0], down], tmp_path, secret, 2), tmp_path)
    assert down in info.value.message


# --- the whole way, through the CLI -----------------------------------------------------------


@pytest.mark.peers
def test_post_through_the_cli_lands_once_on_both_relays(
    nostr_relays: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    secret = new_secret()
    kf = key_file(tmp_path, proto.nsec(secret))
    relays = ", ".join(json.dumps(u) for u in nostr_relays)
    write_config(
        env,
        f'[accounts.mynostr]\nplatform = "nostr"\nrelays = [{relays}]\n'
        f'key_file = "{kf}"\nmin_relays = 2\n',
    )
    run = run_cli(["post", "-p", "mynostr", "hello #plurspool", "--json"], env)
    assert run.code == 0, run
    out = run.json()
    assert out["state"] == "sent"
    note = out["results"]["mynostr"]["id"]
    root = spool_root(env)
    [path] = list((root / "sent").glob("*.md"))
    assert note in path.read_text()
    event_id = proto.bech32_decode(note)[1].hex()
    for url in nostr_relays:
        [ev] = by_author(url, secret)
        assert ev["id"] == event_id
        assert ev["content"] == "hello #plurspool"
        assert ev["tags"] == [["t", "plurspool"]]
    again = run_cli(["accounts", "test", "mynostr", "--json"], env)
    assert again.code == 0, again
    [report] = again.json()
    assert report["ok"] is True and report["pubkey"] == proto.npub(proto.public_key(secret))
    for url in nostr_relays:
        assert len(by_author(url, secret)) == 1


@pytest.mark.peers
def test_bad_key_through_the_cli_goes_to_failed(
    nostr_relays: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    canary = "nsec1canaryqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
    env = {**env, "PLURSPOOL_MYNOSTR_KEY": canary}
    write_config(
        env,
        f'[accounts.mynostr]\nplatform = "nostr"\nrelays = [{json.dumps(nostr_relays[0])}]\n',
    )
    run = run_cli(["post", "-p", "mynostr", "never sent"], env)
    assert run.code != 0
    assert "canary" not in run.out + run.err
    root = spool_root(env)
    [error] = list((root / "failed").glob("*.error"))
    reason = error.read_text()
    assert "mynostr" in reason and "checksum" in reason and "canary" not in reason
    for p in (root / "failed").iterdir():
        assert "canary" not in p.read_text()


def test_importing_the_platform_stays_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, plurspool.platforms.nostr\n"
        "heavy = [m for m in ('websockets', 'coincurve') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_posts_of_a_pass_share_one_connection_and_a_dropped_one_is_replaced(
    fake_relay: FakeRelay, tmp_path: Path
) -> None:
    from plurspool.platforms import nostr as nostr_mod
    from plurspool.platforms import release

    acc = account([fake_relay.url], tmp_path, new_secret(), 1)
    try:
        notes = [
            sent(NOSTR.send(job(post(f"shared {n}"), acc, spool_root=tmp_path))) for n in range(3)
        ]
        assert len(fake_relay.connections) == 1
        fake_relay.drop_all()  # the relay hangs up on the connection we keep
        notes.append(sent(NOSTR.send(job(post("after the drop"), acc, spool_root=tmp_path))))
        assert len(fake_relay.connections) == 2
        ids = {proto.bech32_decode(n)[1].hex() for n in notes}
        assert {e["id"] for e in fake_relay.events()} == ids and len(ids) == 4
    finally:
        release()  # what the sender does at the end of a pass
    assert nostr_mod._CONNECTIONS.open == {}
    from tests.daemon_helpers import wait_for

    wait_for(
        lambda: all(ws.state.name == "CLOSED" for ws in fake_relay.connections),
        10,
        "the relay to see every connection closed",
    )


def test_a_key_cmd_runs_once_a_pass(fake_relay: FakeRelay, tmp_path: Path) -> None:
    """Three notes due at once: `key_cmd` (think `pass show`, perhaps asking for a passphrase)
    runs once for the pass, not once a note; what it said is forgotten when the pass ends."""
    from tests.helpers import make_env

    env = make_env(tmp_path / "env")
    runs = tmp_path / "runs"
    secret = new_secret()
    write_config(
        env,
        f'default_platforms = ["n"]\n[accounts.n]\nplatform = "nostr"\n'
        f'relays = ["{fake_relay.url}"]\nkey_cmd = "echo run >> {runs}; echo {secret.hex()}"\n',
    )
    root = spool_root(env)
    assert run_cli(["init"], env).code == 0
    due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 10))
    for n in range(3):
        (root / "scheduled" / f"p{n}.md").write_text(
            f"---\nschedule: {due}\n---\nnote {n}\n", encoding="utf-8"
        )
    run = run_cli(["send", "--once"], env)
    assert run.code == 0, run.err
    assert sorted(e["content"] for e in fake_relay.events()) == ["note 0", "note 1", "note 2"]
    assert runs.read_text().splitlines() == ["run"]
    # In one process, a new pass asks again.
    acc = Account(
        "n", "nostr", MappingProxyType({"key_cmd": f"echo run >> {runs}; echo {secret.hex()}"})
    )
    assert acc.secret("key") == acc.secret("key") == secret.hex()
    assert runs.read_text().splitlines() == ["run"] * 2
    from plurspool.platforms import release

    release()
    assert acc.secret("key") == secret.hex()
    assert runs.read_text().splitlines() == ["run"] * 3
    release()


# --- the platform contract (tests/platforms/contract.py) --------------------------------------


@pytest.mark.peers
class TestNostrContract(PlatformContract):
    """Both relays, min_relays = 2: every note must be on each."""

    @pytest.fixture
    def adapter(self, nostr_relays: list[str], tmp_path: Path) -> Iterator[Adapter]:
        made = NostrAdapter(nostr_relays, tmp_path)
        yield made
        made.close()

    def crash_after(self, monkeypatch: pytest.MonkeyPatch, answered: int) -> None:
        # Every event of the thread is signed and saved before the first one goes out; each
        # relay takes the first `answered` of them, then the process dies.
        from plurspool.platforms import nostr as nostr_mod

        publish = nostr_mod._publish_all

        def publish_then_crash(todo: dict[str, list[dict[str, Any]]], timeout: float) -> Any:
            publish({url: events[:answered] for url, events in todo.items()}, timeout)
            raise Crash

        monkeypatch.setattr(nostr_mod, "_publish_all", publish_then_crash)
