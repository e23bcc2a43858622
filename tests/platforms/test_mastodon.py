"""The mastodon platform against mastodon-mock on 127.0.0.1, and against real Mastodon 4.7.3
answers recorded in Mastodon.py 2.3.3's cassettes (tests/peers/fetch_cassettes.sh).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from plurspool.config import Account
from plurspool.errors import ConfigError
from plurspool.platforms import mastodon as m
from plurspool.platforms import mastodon_api as api
from plurspool.platforms.base import Job, Outcome, Quoted
from plurspool.post import Post, parse
from tests.helpers import ids_in, png, run_cli, spool_root, state_home, write_config
from tests.peers.mastodon_mock import Mock, User, mastodon_mock
from tests.platforms.adapters import Adapter, MastodonAdapter, Posted
from tests.platforms.contract import Crash, PlatformContract
from tests.platforms.fakes import Store, job

__all__ = ["mastodon_mock"]  # the session fixture, imported for pytest

ROOT = Path(__file__).resolve().parents[2]
CASSETTES = ROOT / "tests" / "peers" / ".cache" / "mastodon-cassettes"
needs_cassettes = pytest.mark.skipif(
    not CASSETTES.is_dir(),
    reason=f"no recorded Mastodon answers in {CASSETTES}: run tests/peers/fetch_cassettes.sh",
)


# --- helpers ----------------------------------------------------------------------------------


def make_post(text: str, **front: Any) -> Post:
    head = "".join(f"{k}: {json.dumps(v)}\n" for k, v in front.items())
    return parse(f"---\n{head}---\n{text}\n".encode())


def account(url: str, name: str = "m") -> Account:
    return Account(name=name, platform="mastodon", options=MappingProxyType({"instance": url}))


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """plurspool's state dir, with XDG_STATE_HOME pointing at it (check() reads the cache there)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    path = tmp_path / "xdg-state" / "plurspool"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def user(mastodon_mock: Mock, monkeypatch: pytest.MonkeyPatch) -> Iterator[User]:
    """A fresh account on the mock whose token plurspool's account `m` uses."""
    u = mastodon_mock.new_user()
    monkeypatch.setenv("PLURSPOOL_M_TOKEN", u.token)
    yield u
    mastodon_mock.clear_faults()


def new_key() -> str:
    return uuid.uuid4().hex


def mjob(post: Post, acct: Account, tmp_path: Path, state: Path, **fields: Any) -> Job:
    """`fakes.job` with this file's places: the spool under tmp_path, plurspool's state dir
    `state`; a fresh store and key unless given."""
    fields.setdefault("key", new_key())
    return job(post, acct, spool_root=tmp_path / "spool", state_dir=state, **fields)


# --- against mastodon-mock --------------------------------------------------------------------


@pytest.mark.peers
def test_a_status_saves_its_part_and_caches_the_instance_limits(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    """What the contract (TestMastodonContract) does not see: the material and the cache."""
    store = Store()
    j = mjob(make_post("hello fediverse"), account(mastodon_mock.url), tmp_path, state, store=store)
    out = m.PLATFORM.send(j)
    assert out.status == "sent", out
    [status] = mastodon_mock.statuses(user)
    # Left out of the post, so not sent at all: the server's defaults apply.
    assert status["spoiler_text"] == "" and status["in_reply_to_id"] is None
    cached = api.read_cached_limits(state, mastodon_mock.url)
    assert cached is not None and cached[0].known and cached[0].max_characters == 500
    assert store.material["parts"] == [{"id": out.remote_id, "url": out.url}]
    assert store.material["pending"] is None


@pytest.mark.peers
def test_a_poll_arrives_on_the_first_part_with_its_options_expiry_and_multiple(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    post = parse(
        b"---\npoll:\n  options: [Tea, Coffee, 'no']\n  expires: 2h\n  multiple: true\n"
        b"---\nWhich one?\n---\nA second part, without a poll.\n"
    )
    store = Store()
    out = m.PLATFORM.send(mjob(post, account(mastodon_mock.url), tmp_path, state, store=store))
    assert out.status == "sent", out
    second, first = mastodon_mock.statuses(user)
    assert first["id"] == out.remote_id and second["in_reply_to_id"] == first["id"]
    poll = first["poll"]
    assert [o["title"] for o in poll["options"]] == ["Tea", "Coffee", "no"]
    assert poll["multiple"] is True
    expires = datetime.fromisoformat(poll["expires_at"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(first["created_at"].replace("Z", "+00:00"))
    assert abs((expires - created).total_seconds() - 7200) < 60
    assert second["poll"] is None
    cached = api.read_cached_limits(state, mastodon_mock.url)
    assert cached is not None and cached[0].poll_options == 4
    assert cached[0].poll_max_expiration == 2629746  # the mock's configuration.polls


def send_text(
    mock: Mock, text: str, tmp_path: Path, state: Path, quote: Quoted | None = None
) -> Outcome:
    j = mjob(make_post(text), account(mock.url), tmp_path, state)
    out = m.PLATFORM.send(dataclasses.replace(j, quote=quote))
    assert out.status == "sent", out
    return out


@pytest.mark.peers
def test_a_quote_of_an_earlier_post_goes_through_the_quote_api(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    first = send_text(mastodon_mock, "the original", tmp_path, state)
    # `quote: @ID`: the earlier post's recorded id and url, for this same account.
    quoted = Quoted(url=first.url, id=first.remote_id)
    out = send_text(mastodon_mock, "quoting it", tmp_path, state, quoted)
    status = mastodon_mock.status(user, str(out.remote_id))
    assert status["quote"]["quoted_status"]["id"] == first.remote_id
    assert mastodon_mock.source(user, str(out.remote_id))["text"] == "quoting it"
    # A URL of a status on the same instance is quoted by its id too. (The mock's own URLs
    # name it `localhost`: written as a user would, from the instance's address.)
    url = f"{mastodon_mock.url}/@{user.username}/{first.remote_id}"
    out = send_text(mastodon_mock, "by URL", tmp_path, state, Quoted(url=url))
    status = mastodon_mock.status(user, str(out.remote_id))
    assert status["quote"]["quoted_status"]["id"] == first.remote_id


@pytest.mark.peers
def test_without_the_quote_api_the_url_is_appended_and_counted(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    # The instance's limits as an instance before Mastodon 4.5 gives them (no quote API).
    api.write_cached_limits(state, mastodon_mock.url, api.Limits(known=True), time.time())
    url = "https://elsewhere.example/@someone/1234"
    out = send_text(mastodon_mock, "quoting it", tmp_path, state, Quoted(url=url))
    status = mastodon_mock.status(user, str(out.remote_id))
    assert status["quote"] is None
    assert mastodon_mock.source(user, str(out.remote_id))["text"] == f"quoting it\n\n{url}"
    # check counts the URL (as Mastodon does, 23 characters) in the first part's length.
    api.write_cached_limits(state, "https://example.social", api.Limits(known=True), time.time())
    fits = make_post("x" * 475, quote=url)
    assert m.PLATFORM.check(fits, account("https://example.social"), tmp_path) == []
    over = make_post("x" * 476, quote=url, split="off")
    [issue] = m.PLATFORM.check(over, account("https://example.social"), tmp_path)
    assert issue.level == "error" and "is 501 characters" in issue.message


@pytest.mark.peers
def test_thread_of_three_chains_replies(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    post = make_post("one\n\n---\n\ntwo\n\n---\n\nthree")
    out = m.PLATFORM.send(mjob(post, account(mastodon_mock.url), tmp_path, state))
    assert out.status == "sent", out
    statuses = list(reversed(mastodon_mock.statuses(user)))
    assert [mastodon_mock.source(user, s["id"])["text"] for s in statuses] == [
        "one",
        "two",
        "three",
    ]
    assert statuses[0]["id"] == out.remote_id
    assert statuses[0]["in_reply_to_id"] is None
    assert statuses[1]["in_reply_to_id"] == statuses[0]["id"]
    assert statuses[2]["in_reply_to_id"] == statuses[1]["id"]


@pytest.mark.peers
def test_cw_visibility_language_sensitive_round_trip(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    post = make_post(
        "episode 3 thoughts", cw="Spoilers", visibility="followers", language="de", sensitive=True
    )
    out = m.PLATFORM.send(mjob(post, account(mastodon_mock.url), tmp_path, state))
    assert out.status == "sent", out
    s = mastodon_mock.status(user, str(out.remote_id))
    assert (s["spoiler_text"], s["visibility"], s["language"], s["sensitive"]) == (
        "Spoilers",
        "private",
        "de",
        True,
    )


@pytest.mark.peers
def test_per_account_override(mastodon_mock: Mock, user: User, tmp_path: Path, state: Path) -> None:
    post = parse(
        b"---\ncw: general\noverrides:\n"
        b"  m: {text: 'short one', cw: 'for m', visibility: unlisted}\n"
        b"---\nthe long body\n"
    )
    out = m.PLATFORM.send(mjob(post, account(mastodon_mock.url), tmp_path, state))
    assert out.status == "sent", out
    s = mastodon_mock.status(user, str(out.remote_id))
    assert (s["spoiler_text"], s["visibility"]) == ("for m", "unlisted")
    assert mastodon_mock.source(user, s["id"])["text"] == "short one"


@pytest.mark.peers
def test_media_with_alt_text(mastodon_mock: Mock, user: User, tmp_path: Path, state: Path) -> None:
    media = tmp_path / "spool" / "media"
    media.mkdir(parents=True)
    (media / "dot.png").write_bytes(png(1, 1))
    post = make_post("a dot", media=[{"path": "media/dot.png", "alt": "A single orange pixel"}])
    acct = account(mastodon_mock.url)
    assert m.PLATFORM.check(post, acct, tmp_path / "spool") == []
    store = Store()
    out = m.PLATFORM.send(mjob(post, acct, tmp_path, state, store=store))
    assert out.status == "sent", out
    attachments = mastodon_mock.status(user, str(out.remote_id))["media_attachments"]
    assert [(a["type"], a["description"]) for a in attachments] == [
        ("image", "A single orange pixel")
    ]
    assert store.material["media"]["ids"] == [attachments[0]["id"]]
    bare = make_post("a dot", media=[{"path": "media/dot.png"}])
    issues = m.PLATFORM.check(bare, acct, tmp_path / "spool")
    assert [(i.level, i.message) for i in issues] == [
        ("warning", "media file media/dot.png has no alt text")
    ]


def test_check_counts_like_mastodon(tmp_path: Path, state: Path) -> None:
    acct = account("https://example.social")
    spool = tmp_path / "spool"
    # Without a cached limit, 500 is assumed: a warning (the instance may allow more) that
    # says how to learn the real one; the instance's answer decides at send time.
    issues = m.PLATFORM.check(make_post("x" * 501), acct, spool)
    assert [i.level for i in issues] == ["warning"]
    assert "501 characters" in issues[0].message
    assert "plurspool accounts test m" in issues[0].message
    assert m.PLATFORM.check(make_post("x" * 500), acct, spool) == []
    # A URL counts 23, whatever its length; a remote mention counts its local part only.
    url = "https://example.com/" + "a" * 200
    assert m.status_length(f"{url} " + "y" * 476) == 500
    assert m.PLATFORM.check(make_post(f"{url} " + "y" * 476), acct, spool) == []
    assert m.status_length("@alice@a-very-long-domain.example hi") == len("@alice hi")
    # Graphemes, not code points: a family emoji is one character.
    assert m.status_length("👨‍👩‍👧‍👦") == 1
    # The content warning counts towards the limit.
    issues = m.PLATFORM.check(make_post("x" * 490, cw="0123456789!"), acct, spool)
    assert len(issues) == 1 and "501 characters with the content warning" in issues[0].message
    # Each thread part on its own; each account's override text on its own. A part that
    # auto-split cannot break (one 600-character word) is named with its place.
    thread = make_post("short\n\n---\n\n" + "z" * 600)
    [issue] = m.PLATFORM.check(thread, acct, spool)
    assert issue.message.startswith('part 2 of 2: "zzz')
    assert "is 600 characters; the limit is 500" in issue.message
    # Words it splits; with split: off an over-long part is reported, not split.
    words = make_post("short\n\n---\n\n" + "z " * 300)
    assert m.PLATFORM.check(words, acct, spool) == []
    off = make_post("short\n\n---\n\n" + "z " * 300, split="off")
    [issue] = m.PLATFORM.check(off, acct, spool)
    assert issue.message.startswith("part 2 of 2 is 600 characters; the limit is 500")
    assert issue.message.endswith("(split: off)")
    over = parse(b"---\noverrides:\n  m: {text: '" + b"o" * 501 + b"'}\n---\nfine\n")
    assert len(m.PLATFORM.check(over, acct, spool)) == 1
    assert m.PLATFORM.check(over, account("https://example.social", "other"), spool) == []
    # A cached instance limit replaces 500.
    api.write_cached_limits(
        state, "https://example.social", api.Limits(max_characters=1000), time.time()
    )
    assert m.PLATFORM.check(make_post("x" * 600), acct, spool) == []
    [issue] = m.PLATFORM.check(make_post("x" * 1001, split="off"), acct, spool)
    assert issue.level == "error"
    assert issue.message == (
        "the text is 1001 characters; https://example.social allows 1000 (split: off)"
    )


def test_check_media_count_and_type(tmp_path: Path, state: Path) -> None:
    acct = account("https://example.social")
    media = [{"path": f"m/{i}.png", "alt": "a"} for i in range(5)]
    issues = m.PLATFORM.check(make_post("five", media=media), acct, tmp_path)
    assert [i.message for i in issues] == [
        "5 media files; https://example.social takes 4 per status"
    ]
    issues = m.PLATFORM.check(
        make_post("doc", media=[{"path": "notes.txt", "alt": "a"}]), acct, tmp_path
    )
    assert [i.message for i in issues] == [
        "media file notes.txt: not an image, video or audio file"
    ]


@pytest.mark.peers
def test_bad_token_is_a_permanent_failure_without_the_token(
    mastodon_mock: Mock, tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "CANARY-TOKEN-" + uuid.uuid4().hex
    monkeypatch.setenv("PLURSPOOL_M_TOKEN", canary)
    acct = account(mastodon_mock.url)
    out = m.PLATFORM.send(mjob(make_post("hi"), acct, tmp_path, state))
    assert out.status == "permanent"
    assert out.error is not None and "HTTP 401" in out.error
    assert "token_cmd" in out.error and "PLURSPOOL_M_TOKEN" in out.error
    assert canary not in out.error
    with pytest.raises(ConfigError) as raised:
        m.PLATFORM.test(acct, state)
    assert "account m" in raised.value.message and "HTTP 401" in raised.value.message
    assert "token_cmd" in raised.value.hint
    assert canary not in str(raised.value) + raised.value.hint + repr(raised.value.args)
    # Nothing at all: a clear permanent failure that names where a token comes from.
    monkeypatch.delenv("PLURSPOOL_M_TOKEN")
    out = m.PLATFORM.send(mjob(make_post("hi"), acct, tmp_path, state))
    assert out.status == "permanent" and out.error is not None
    assert "no access token" in out.error and "PLURSPOOL_M_TOKEN" in out.error


def test_network_errors_are_temporary_and_never_show_the_token(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.peers.proc import free_port

    canary = "CANARY-TOKEN-" + uuid.uuid4().hex
    monkeypatch.setenv("PLURSPOOL_M_TOKEN", canary)
    acct = account(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    out = m.PLATFORM.send(mjob(make_post("hi"), acct, tmp_path, state))
    assert out.status == "temporary" and out.error is not None
    assert out.error.startswith("network error") and canary not in out.error
    with pytest.raises(ConfigError) as raised:
        m.PLATFORM.test(acct, state)
    assert canary not in raised.value.message + raised.value.hint
    assert "`instance`" in raised.value.hint


@pytest.mark.peers
def test_rate_limit_is_temporary_then_sent_once(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    mastodon_mock.add_fault(
        {
            "match": {"methods": ["POST"], "path": "/api/v1/statuses"},
            "effect": {"type": "ratelimit"},
            "count": 1,
        }
    )
    store, key = Store(), new_key()
    acct = account(mastodon_mock.url)
    first = m.PLATFORM.send(mjob(make_post("paced"), acct, tmp_path, state, store=store, key=key))
    assert first.status == "temporary", first
    assert first.error is not None and "HTTP 429" in first.error
    assert first.retry_after is not None and 250 <= first.retry_after <= 300
    assert mastodon_mock.statuses(user) == []
    assert store.material["pending"] is None  # a 429 created nothing: nothing in doubt
    second = m.PLATFORM.send(mjob(make_post("paced"), acct, tmp_path, state, store=store, key=key))
    assert second.status == "sent", second
    assert [s["id"] for s in mastodon_mock.statuses(user)] == [second.remote_id]


@pytest.mark.peers
def test_rate_limit_reset_in_iso_8601(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    reset = datetime.fromtimestamp(time.time() + 120, UTC).isoformat().replace("+00:00", "Z")
    mastodon_mock.add_fault(
        {
            "match": {"methods": ["POST"], "path": "/api/v1/statuses"},
            "effect": {"type": "status", "status": 429, "headers": {"X-RateLimit-Reset": reset}},
            "count": 1,
        }
    )
    out = m.PLATFORM.send(mjob(make_post("iso"), account(mastodon_mock.url), tmp_path, state))
    assert out.status == "temporary" and out.retry_after is not None
    assert 90 <= out.retry_after <= 120


@pytest.mark.peers
def test_server_errors_are_temporary(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    mastodon_mock.add_fault(
        {
            "match": {"methods": ["POST"], "path": "/api/v1/statuses"},
            "effect": {"type": "status", "status": 503},
            "count": 1,
        }
    )
    store = Store()
    out = m.PLATFORM.send(
        mjob(make_post("later"), account(mastodon_mock.url), tmp_path, state, store=store)
    )
    assert out.status == "temporary" and out.error is not None and "HTTP 503" in out.error
    # A 5xx may have come after the status was made: the part stays in doubt.
    assert store.material["pending"]["part"] == 0


@pytest.mark.peers
def test_422_is_permanent_with_the_servers_message(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    # 480 characters as Mastodon counts them (so plurspool's own check passes), 600 code points
    # as the mock counts them.
    text = ("https://example.com/" + "p" * 100 + " ") * 5 + "q" * 5
    assert m.status_length(text) <= 500 < len(text)
    out = m.PLATFORM.send(mjob(make_post(text), account(mastodon_mock.url), tmp_path, state))
    assert out.status == "permanent"
    assert out.error == "HTTP 422: Validation failed: Text is too long (maximum is 500 characters)"
    assert mastodon_mock.statuses(user) == []


def _crash_after_status_post(monkeypatch: pytest.MonkeyPatch, keys: list[str]) -> None:
    """Make the next status_post crash after its answer arrived, and record Idempotency-Keys."""
    real_call = api.Client.call
    real_keep = api.Client._keep
    armed = [True]

    def keep(self: api.Client, response: Any, *args: Any, **kwargs: Any) -> None:
        if response.request.method == "POST" and response.request.path_url == "/api/v1/statuses":
            keys.append(response.request.headers["Idempotency-Key"])
        real_keep(self, response)

    def call(self: api.Client, method: str, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        result = real_call(self, method, *args, **kwargs)
        if method == "status_post" and armed[0]:
            armed[0] = False
            raise Crash
        return result

    monkeypatch.setattr(api.Client, "call", call)
    monkeypatch.setattr(api.Client, "_keep", keep)


@pytest.mark.peers
def test_crash_after_the_peer_answered_then_retry_sends_once(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys: list[str] = []
    _crash_after_status_post(monkeypatch, keys)
    store, key = Store(), new_key()
    post = make_post("exactly once")
    acct = account(mastodon_mock.url)
    with pytest.raises(Crash):
        m.PLATFORM.send(mjob(post, acct, tmp_path, state, store=store, key=key))
    assert len(mastodon_mock.statuses(user)) == 1
    assert store.material["pending"]["part"] == 0  # saved before the request
    out = m.PLATFORM.send(mjob(post, acct, tmp_path, state, store=store, key=key, in_doubt=True))
    assert out.status == "sent", out
    statuses = mastodon_mock.statuses(user)
    assert [s["id"] for s in statuses] == [out.remote_id]
    # The same key on the retry: the server answered with the status it already had.
    assert keys == [f"{key}-0", f"{key}-0"]


@pytest.mark.peers
def test_crash_beyond_the_key_lifetime_looks_before_resending(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys: list[str] = []
    _crash_after_status_post(monkeypatch, keys)
    store, key = Store(), new_key()
    post = make_post("one\n\n---\n\ntwo", cw="cw")
    acct = account(mastodon_mock.url)
    with pytest.raises(Crash):
        m.PLATFORM.send(mjob(post, acct, tmp_path, state, store=store, key=key))
    [first] = mastodon_mock.statuses(user)
    # Two hours later the server has forgotten the key: plurspool must find the status instead.
    # Any POST of a status would now fail, which the outcome would show.
    later = m.MastodonPlatform(clock=lambda: time.time() + 7200)
    rule = mastodon_mock.add_fault(
        {
            "match": {"methods": ["POST"], "path": "/api/v1/statuses"},
            "effect": {"type": "status", "status": 500},
            "count": 1,
        }
    )
    out = later.send(mjob(post, acct, tmp_path, state, store=store, key=key, in_doubt=True))
    assert out.status == "temporary" and out.error is not None and "HTTP 500" in out.error
    assert store.material["parts"][0]["id"] == first["id"]  # found, not sent again
    mastodon_mock.clear_faults()
    assert rule
    out = later.send(mjob(post, acct, tmp_path, state, store=store, key=key))
    assert out.status == "sent" and out.remote_id == first["id"]
    statuses = mastodon_mock.statuses(user)
    assert len(statuses) == 2 and statuses[0]["in_reply_to_id"] == first["id"]
    assert keys == [f"{key}-0", f"{key}-1", f"{key}-1"]


@pytest.mark.peers
def test_a_host_first_sending_over_an_hour_late_finds_another_hosts_thread(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    """Another host sent the post at its time; this host, its ledger empty, sends it two hours
    later, when the server no longer knows the key (a key it never saw stands for that here):
    it finds both parts among the account's statuses and posts nothing."""
    post = make_post("one\n\n---\n\ntwo", cw="cw")
    acct = account(mastodon_mock.url)
    due = datetime.now(UTC)
    first = m.PLATFORM.send(mjob(post, acct, tmp_path, state, due=due))
    assert first.status == "sent", first
    before = mastodon_mock.statuses(user)
    later = m.MastodonPlatform(clock=lambda: time.time() + 7200)
    store = Store()
    out = later.send(mjob(post, acct, tmp_path, state, store=store, due=due))
    assert (out.status, out.remote_id) == ("sent", first.remote_id)
    assert [s["id"] for s in mastodon_mock.statuses(user)] == [s["id"] for s in before]
    assert [p["id"] for p in store.material["parts"]] == [s["id"] for s in reversed(before)]
    # A post not sent elsewhere is looked for, not found, and sent; so is one due just now
    # (not looked for: within the hour the key itself dedupes).
    for text, when_due in (
        ("late, alone", due),
        ("on time", datetime.now(UTC) + timedelta(hours=2)),
    ):
        out = later.send(mjob(make_post(text), acct, tmp_path, state, due=when_due))
        assert out.status == "sent", out
    assert len(mastodon_mock.statuses(user)) == len(before) + 2


@pytest.mark.peers
def test_in_doubt_but_never_arrived_is_sent_after_looking(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    # A crash after the material was saved but before the request left: nothing on the server.
    other = mastodon_mock.new_user()
    assert other.id != user.id
    store = Store()
    store.material = {"parts": [], "pending": {"part": 0, "since": time.time() - 7200}}
    out = m.PLATFORM.send(
        mjob(
            make_post("late"),
            account(mastodon_mock.url),
            tmp_path,
            state,
            store=store,
            in_doubt=True,
        )
    )
    assert out.status == "sent", out
    assert [s["id"] for s in mastodon_mock.statuses(user)] == [out.remote_id]


@pytest.mark.peers
def test_a_thread_goes_on_where_it_stopped(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_call = api.Client.call
    posts = [0]

    def call(self: api.Client, method: str, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        if method == "status_post":
            posts[0] += 1
            if posts[0] == 2:
                raise api.Refused(Outcome("temporary", error="network error: injected"))
        return real_call(self, method, *args, **kwargs)

    monkeypatch.setattr(api.Client, "call", call)
    store, key = Store(), new_key()
    post = make_post("a\n\n---\n\nb\n\n---\n\nc")
    acct = account(mastodon_mock.url)
    first = m.PLATFORM.send(mjob(post, acct, tmp_path, state, store=store, key=key))
    assert first.status == "temporary" and len(mastodon_mock.statuses(user)) == 1
    assert len(store.material["parts"]) == 1 and store.material["pending"]["part"] == 1
    out = m.PLATFORM.send(mjob(post, acct, tmp_path, state, store=store, key=key))
    assert out.status == "sent"
    chain = list(reversed(mastodon_mock.statuses(user)))
    assert [mastodon_mock.source(user, s["id"])["text"] for s in chain] == ["a", "b", "c"]
    assert chain[0]["id"] == out.remote_id
    assert [s["in_reply_to_id"] for s in chain] == [None, chain[0]["id"], chain[1]["id"]]


@pytest.mark.peers
def test_accounts_test_reports_identity_and_limits(
    mastodon_mock: Mock, user: User, state: Path
) -> None:
    report = m.PLATFORM.test(account(mastodon_mock.url), state)
    assert report["acct"] == user.username
    assert report["max_characters"] == 500 and report["max_media"] == 4
    assert report["limits_known"] is True
    assert api.read_cached_limits(state, mastodon_mock.url) is not None


# --- end to end through the CLI ---------------------------------------------------------------


def _cli_env(env: dict[str, str], url: str, token_line: str) -> dict[str, str]:
    write_config(
        env,
        f'default_platforms = ["m"]\n\n[accounts.m]\nplatform = "mastodon"\n'
        f'instance = "{url}"\n{token_line}\n',
    )
    return env


@pytest.mark.peers
def test_cli_post_lands_in_sent_with_the_status_url(
    mastodon_mock: Mock, env: dict[str, str]
) -> None:
    u = mastodon_mock.new_user()
    env = _cli_env(env, mastodon_mock.url, f'token_cmd = "echo {u.token}"')
    run = run_cli(["post", "-p", "m", "--json", "hello from plurspool"], env)
    assert run.code == 0, run.err
    view = run.json()
    [status] = mastodon_mock.statuses(u)
    assert view["state"] == "sent"
    assert view["results"]["m"] == {"id": status["id"], "url": status["url"], "deleted_at": None}
    root = spool_root(env)
    assert ids_in(root, "sent") == {view["id"]}
    assert status["url"] in (root / "sent" / f"{view['id']}.md").read_text()
    tested = run_cli(["accounts", "test", "m", "--json"], env)
    assert tested.code == 0, tested.err
    assert tested.json()[0]["acct"] == u.username


@pytest.mark.peers
def test_cli_refuses_an_overlong_post_at_intake_and_in_check_once_the_limit_is_known(
    mastodon_mock: Mock, env: dict[str, str]
) -> None:
    u = mastodon_mock.new_user()
    env = _cli_env(env, mastodon_mock.url, f'token_cmd = "echo {u.token}"')
    root = spool_root(env)
    assert run_cli(["init"], env).code == 0
    (root / "new" / "long.md").write_text("---\nplatforms: [m]\n---\n" + "w" * 501 + "\n")
    # Before the instance's limit is known, 500 is only assumed: a warning, not a failure.
    unsure = run_cli(["check", "--json"], env)
    assert unsure.code == 0, unsure.out + unsure.err
    assert "501 characters" in unsure.json()[0]["warnings"][0]
    # `accounts test` reads and caches the instance's own limit; then it is an error.
    assert run_cli(["accounts", "test", "m"], env).code == 0
    checked = run_cli(["check", "--json"], env)
    assert checked.code == 3, checked.out + checked.err
    assert "501 characters" in checked.out
    run = run_cli(["send", "--once"], env)
    assert run.code == 0, run.err
    assert ids_in(root, "failed") == {"long"}
    assert "501 characters" in (root / "failed" / "long.error").read_text()
    assert mastodon_mock.statuses(u) == []


@pytest.mark.peers
def test_an_overlong_post_with_an_unknown_limit_fails_with_the_instances_answer(
    mastodon_mock: Mock, env: dict[str, str]
) -> None:
    u = mastodon_mock.new_user()
    env = _cli_env(env, mastodon_mock.url, f'token_cmd = "echo {u.token}"')
    root = spool_root(env)
    assert run_cli(["init"], env).code == 0
    head = "---\nplatforms: [m]\nsplit: off\n---\n"
    (root / "new" / "long.md").write_text(head + "w" * 501 + "\n")
    run = run_cli(["send", "--once"], env)
    assert run.code == 0, run.err
    assert ids_in(root, "failed") == {"long"}
    assert "HTTP 422" in (root / "failed" / "long.error").read_text()
    assert mastodon_mock.statuses(u) == []
    # With auto-split, once a send has read (and cached) the instance's limit, a word longer
    # than it is refused at intake, saying why; nothing is posted.
    (root / "new" / "word.md").write_text("---\nplatforms: [m]\n---\n" + "w" * 501 + "\n")
    run = run_cli(["send", "--once"], env)
    assert run.code == 0, run.err
    assert ids_in(root, "failed") == {"long", "word"}
    assert "no break can fall inside it" in (root / "failed" / "word.error").read_text()
    assert mastodon_mock.statuses(u) == []


@pytest.mark.peers
def test_cli_canary_token_never_shows(mastodon_mock: Mock, env: dict[str, str]) -> None:
    canary = "CANARY-TOKEN-" + uuid.uuid4().hex
    env = _cli_env(env, mastodon_mock.url, f'token_cmd = "echo {canary}"')
    post = run_cli(["-v", "post", "-p", "m", "bad token"], env)
    tested = run_cli(["accounts", "test", "m"], env)
    root = spool_root(env)
    (root / "new" / "queued.md").write_text("---\nplatforms: [m]\n---\nfrom the queue\n")
    sent = run_cli(["-v", "send", "--once", "--log-format", "json"], env)
    assert post.code == 1 and tested.code == 1 and sent.code == 0
    assert len(ids_in(root, "failed")) == 2
    texts = [post.out, post.err, tested.out, tested.err, sent.out, sent.err]
    texts += [p.read_text() for p in (root / "failed").iterdir()]
    texts += [
        p.read_text(errors="replace")
        for p in state_home(env).rglob("*")
        if p.is_file() and p.suffix in (".log", ".json", ".jsonl")
    ]
    assert "HTTP 401" in (root / "failed" / "queued.error").read_text()
    assert "HTTP 401" in post.out + post.err and "HTTP 401" in sent.err
    assert "HTTP 401" in tested.out
    for text in texts:
        assert canary not in text


# --- contract: answers recorded from a real Mastodon 4.7.3 ------------------------------------


@functools.cache
def _interactions(name: str) -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ten times faster
    data = yaml.load((CASSETTES / name).read_text(encoding="utf-8"), Loader=loader)
    out: list[dict[str, Any]] = data["interactions"]
    return out


def _recorded(
    name: str, method: str, path: str, nth: int = 0, code: int | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the nth recorded answer to METHOD path (with `code`)."""
    hits = [
        i["response"]
        for i in _interactions(name)
        if i["request"]["method"] == method
        and i["request"]["uri"].split("?")[0].rstrip("/").endswith(path)
        and (code is None or i["response"]["status"]["code"] == code)
    ]
    resp = hits[nth]
    body = resp["body"]["string"]
    headers = {k: v[0] for k, v in resp["headers"].items()}
    return int(resp["status"]["code"]), headers, body.encode() if isinstance(body, str) else body


@needs_cassettes
def test_recorded_instance_limits() -> None:
    code, headers, body = _recorded("test_instance.yaml", "GET", "/api/v2/instance")
    limits = api.limits_from_instance(v2=api.answer(code, headers, body, time.time()))
    assert limits == api.Limits(
        max_characters=500,
        max_media=4,
        image_size=16 * 1024 * 1024,
        video_size=103809024,
        description_limit=10000,
        poll_max_expiration=2629746,  # configuration.polls: Mastodon's own month
        quotes=True,  # api_versions.mastodon 11
        known=True,
    )
    code, headers, body = _recorded("test_instance_v1.yaml", "GET", "/api/v1/instance")
    v1 = api.limits_from_instance(v1=api.answer(code, headers, body, time.time()))
    assert v1.known and v1.max_characters == 500
    assert api.limits_from_instance(v1={"max_toot_chars": 5000}).max_characters == 5000
    assert api.limits_from_instance(v2={"configuration": {}}) == api.Limits()


@needs_cassettes
def test_recorded_errors() -> None:
    now = time.time()
    code, headers, body = _recorded("test_lang_for_errors.yaml", "POST", "/api/v1/statuses")
    with pytest.raises(api.Refused) as raised:
        api.answer(code, headers, body, now)
    assert raised.value.code == 422 and raised.value.created_nothing
    assert raised.value.outcome == Outcome(
        "permanent", error="HTTP 422: バリデーションに失敗しました: Text上限は500文字です"
    )
    code, headers, body = _recorded(
        "test_home_tl_anonymous_throws.yaml", "GET", "/api/v1/timelines/home"
    )
    out = api.outcome_for(code, headers, body, now, account="m")
    assert out.status == "permanent" and out.error is not None
    assert out.error.startswith(
        "HTTP 401: The access token is invalid; the access token was refused"
    )
    code, headers, body = _recorded("test_admin_moderation.yaml", "POST", "/unsuspend", code=403)
    out = api.outcome_for(code, headers, body, now)
    assert out == Outcome("permanent", error="HTTP 403: This action is not allowed")
    code, headers, body = _recorded("test_status_missing.yaml", "GET", "/api/v1/statuses/0")
    assert api.outcome_for(code, headers, body, now) == Outcome(
        "permanent", error="HTTP 404: Not Found"
    )


@needs_cassettes
def test_recorded_rate_limit_headers() -> None:
    _, headers, _ = _recorded("test_status_reply.yaml", "POST", "/api/v1/statuses")
    reset = headers["x-ratelimit-reset"]  # ISO 8601, as Mastodon sends it
    at = datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
    assert api.retry_after(headers, at - 42.5) == pytest.approx(42.5)
    assert api.retry_after(headers, at + 10) == 0.0
    out = api.outcome_for(429, headers, b'{"error":"Too many requests"}', at - 60)
    assert out.status == "temporary" and out.retry_after == pytest.approx(60)
    # Retry-After wins over the reset time; epoch seconds (mastodon-mock) are read too.
    assert api.retry_after({"Retry-After": "7", **headers}, at - 60) == 7
    assert api.retry_after({"X-RateLimit-Reset": str(int(at))}, int(at) - 30) == 30
    assert api.retry_after({}, at) is None


@needs_cassettes
def test_recorded_statuses_and_media() -> None:
    now = time.time()
    code, headers, body = _recorded("test_status_reply.yaml", "POST", "/api/v1/statuses", nth=1)
    data = api.answer(code, headers, body, now)
    assert api.status_ref(data) == ("117440826677780974", data["url"])
    assert data["in_reply_to_id"] == "117440826670289215"
    assert (
        api.timestamp(data["created_at"])
        == datetime(2026, 10, 14, 19, 6, 41, 602000, UTC).timestamp()
    )
    code, headers, body = _recorded("test_account_statuses_exclude_direct.yaml", "GET", "/statuses")
    page = api.answer(code, headers, body, now)
    assert isinstance(page, list) and all(api.status_ref(s)[0] for s in page)
    code, headers, body = _recorded("test_media_post[False].yaml", "POST", "/api/v2/media")
    assert code == 202 and api.media_processing(code, api.answer(code, headers, body, now))
    code, headers, body = _recorded(
        "test_media_update.yaml", "PUT", "/api/v1/media/117440821441764678"
    )
    assert code == 206 and api.media_processing(code, api.answer(code, headers, body, now))
    code, headers, body = _recorded(
        "test_media_post[False].yaml", "GET", "/api/v1/media/117440818351645173"
    )
    assert code == 200 and not api.media_processing(code, api.answer(code, headers, body, now))
    code, headers, body = _recorded("test_admin_moderation.yaml", "POST", "/api/v2/media")
    assert code == 200 and not api.media_processing(code, api.answer(code, headers, body, now))


def _replay(name: str, match_body: bool = False) -> Any:
    import vcr  # type: ignore[import-untyped]

    recorder = vcr.VCR(
        record_mode="none",
        match_on=[
            "method",
            "scheme",
            "host",
            "port",
            "path",
            "query",
            *(["body"] if match_body else []),
        ],
    )
    return recorder.use_cassette(str(CASSETTES / name), allow_playback_repeats=False)


@needs_cassettes
def test_replay_status_with_cw_and_visibility(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLURSPOOL_M_TOKEN", "__MASTODON_PY_TEST_ACCESS_TOKEN")
    instance = "http://localhost:3000"
    api.write_cached_limits(state, instance, api.Limits(known=True), time.time())
    post = make_post("Toot!", cw="Content warning", visibility="followers", sensitive=False)
    j = mjob(post, account(instance), tmp_path, state)
    # The request must be byte for byte what Mastodon.py's own test sent to the real server.
    with _replay("test_status_post[Content warning-private].yaml", match_body=True) as cassette:
        out = m.PLATFORM.send(j)
    assert cassette.play_count == 1
    assert out == Outcome(
        "sent",
        remote_id="117440831275440786",
        url="http://localhost:3000/@mastodonpy_test/117440831275440786",
    )


@needs_cassettes
def test_replay_video_upload_waits_until_processed(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLURSPOOL_M_TOKEN", "__MASTODON_PY_TEST_ACCESS_TOKEN")
    instance = "http://localhost:3000"
    api.write_cached_limits(state, instance, api.Limits(known=True), time.time())
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    post = make_post("LOL check this out", media=[{"path": "clip.mp4", "alt": "a clip"}])
    slept: list[float] = []
    platform = m.MastodonPlatform(sleep=slept.append)
    store = Store()
    with _replay("test_media_post[False].yaml") as cassette:
        out = platform.send(mjob(post, account(instance), tmp_path, state, store=store))
    assert out.status == "sent", out
    assert out.remote_id == "117440819672020662"
    assert cassette.play_count == 3  # upload (202), one poll (200), the status
    assert slept == [0.5]
    assert store.material["media"]["ids"] == ["117440818351645173"]


@needs_cassettes
def test_replay_422(tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLURSPOOL_M_TOKEN", "__MASTODON_PY_TEST_ACCESS_TOKEN")
    instance = "http://localhost:3000"
    api.write_cached_limits(state, instance, api.Limits(known=True), time.time())
    j = mjob(make_post("too long"), account(instance), tmp_path, state)
    with _replay("test_lang_for_errors.yaml"):
        out = m.PLATFORM.send(j)
    assert out == Outcome(
        "permanent", error="HTTP 422: バリデーションに失敗しました: Text上限は500文字です"
    )


def test_importing_the_platform_stays_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, plurspool.platforms.mastodon\n"
        "heavy = [m for m in ('mastodon', 'requests', 'grapheme') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- a used-up window holds the account ------------------------------------------------------


def test_hold_after_reads_x_ratelimit_remaining() -> None:
    now = 1_900_000_000.0
    reset = datetime.fromtimestamp(now + 30, UTC).isoformat().replace("+00:00", "Z")
    assert api.hold_after({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, now) == 31
    assert (
        api.hold_after({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(now + 5)}, now) == 6
    )
    assert api.hold_after({"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": reset}, now) is None
    assert api.hold_after({"X-RateLimit-Remaining": "0"}, now) is None  # no reset: nothing known
    assert api.hold_after({"X-RateLimit-Remaining": "x", "X-RateLimit-Reset": reset}, now) is None
    far = datetime.fromtimestamp(now + 10 * 86400, UTC).isoformat()
    assert api.hold_after({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": far}, now) == 86400


@needs_cassettes
def test_recorded_answers_with_requests_left_hold_nothing() -> None:
    _, headers, _ = _recorded("test_status_reply.yaml", "POST", "/api/v1/statuses")
    reset = datetime.fromisoformat(headers["x-ratelimit-reset"].replace("Z", "+00:00"))
    assert int(headers["x-ratelimit-remaining"]) > 0
    assert api.hold_after(headers, reset.timestamp() - 60) is None
    used_up = {**headers, "x-ratelimit-remaining": "0"}
    assert api.hold_after(used_up, reset.timestamp() - 60) == pytest.approx(61)


@pytest.mark.peers
@pytest.mark.realtime
def test_a_used_up_window_holds_the_account_until_it_resets(tmp_path: Path) -> None:
    """mastodon-mock's own rate limiter allows 2 requests per 6 s per token. The answer to the
    second post says `X-RateLimit-Remaining: 0`: the third post waits for the reset, deferred
    with the reason in `list`, and is then sent on its first attempt, never meeting a 429."""
    from plurspool.config import load
    from tests.daemon_helpers import Sandbox, iso, post_text
    from tests.peers.mastodon_mock import start_mock

    limiter = "[ratelimit]\nenabled = true\nlimit = 2\nwindow_seconds = 6\n"
    (tmp_path / "mock").mkdir()
    box = Sandbox(tmp_path / "box")
    try:
        with start_mock(tmp_path / "mock", config=limiter) as server:
            mock = Mock(server.url)
            u = mock.new_user()
            box.env["PLURSPOOL_M_TOKEN"] = u.token
            box.accounts["m"] = f'platform = "mastodon"\ninstance = "{server.url}"\n'
            box.default_platforms.append("m")
            box.write_config()
            # The instance's limits known already: the posts are the only requests.
            state = load(box.config_path, env=box.env).state_dir
            api.write_cached_limits(state, server.url, api.Limits(known=True), time.time())
            base = time.time() - 60
            for n in range(3):
                box.deliver("scheduled", f"p{n}", post_text(f"post {n}", schedule=iso(base + n)))
            d = box.start()
            held = d.wait_event("hold", "account=m", timeout=30)
            until = datetime.fromisoformat(held.split("until=")[1].split()[0]).timestamp()
            d.wait_event("deferred", "id=p2", "server rate limit", timeout=10)
            # p1 is finished (moved to sent/) by the sender's finisher thread, maybe just after.
            d.until(lambda: box.ids("sent") == {"p0", "p1"}, 10, "p0 and p1 in sent/")
            assert box.ids("scheduled") == {"p2"}
            [view] = box.cli("list", "--json").json()
            assert view["id"] == "p2" and "server rate limit" in view["error"], view
            assert view["retry_at"] is not None
            d.until(lambda: box.ids("sent") == {"p0", "p1", "p2"}, 30, "p2 sent")
            assert d.stop() == 0
            statuses = {s["content"]: s for s in mock.statuses(u)}
            assert len(statuses) == 3
            [third] = [s for c, s in statuses.items() if "post 2" in c]
            sent_at = datetime.fromisoformat(third["created_at"].replace("Z", "+00:00"))
            assert sent_at.timestamp() >= until - 0.01  # not before the hold ended
            text = (box.spool / "sent" / "p2.md").read_text(encoding="utf-8")
            assert "attempts: 1" in text  # no 429 on the way
            assert not d.events("retry")
    finally:
        box.cleanup()


# --- the platform contract (tests/platforms/contract.py) --------------------------------------


@pytest.mark.peers
class TestMastodonContract(PlatformContract):
    """mastodon-mock, a fresh user a test."""

    @pytest.fixture
    def adapter(self, mastodon_mock: Mock, tmp_path: Path) -> Iterator[Adapter]:
        made = MastodonAdapter(mastodon_mock, tmp_path)
        yield made
        made.close()

    def crash_after(self, monkeypatch: pytest.MonkeyPatch, answered: int) -> None:
        real_call = api.Client.call
        posted = [0]

        def call(self: api.Client, method: str, *args: Any, **kwargs: Any) -> tuple[int, Any]:
            result = real_call(self, method, *args, **kwargs)
            if method == "status_post":
                posted[0] += 1
                if posted[0] == answered:
                    raise Crash
            return result

        monkeypatch.setattr(api.Client, "call", call)

    def url_of(self, adapter: Adapter, held: Posted) -> str | None:
        assert isinstance(adapter, MastodonAdapter)
        url: str = adapter.mock.status(adapter.user, held.ref)["url"]
        return url


def test_the_instances_url_length_is_read_cached_and_counted(tmp_path: Path, state: Path) -> None:
    v2 = {"configuration": {"statuses": {"max_characters": 100, "characters_reserved_per_url": 40}}}
    limits = api.limits_from_instance(v2=v2)
    assert (limits.max_characters, limits.characters_reserved_per_url) == (100, 40)
    assert api.Limits().characters_reserved_per_url == 23  # until the instance says
    api.write_cached_limits(state, "https://example.social", limits, time.time())
    acct = account("https://example.social")
    measure = m.PLATFORM.measure(make_post("x"), acct, state)
    url = "https://example.com/" + "a" * 10  # 30 characters, counted as 40
    assert measure.count(f"{url} " + "y" * 59) == 100
    assert m.PLATFORM.check(make_post(f"{url} " + "y" * 59), acct, tmp_path) == []
    [issue] = m.PLATFORM.check(make_post(f"{url} " + "y" * 60, split="off"), acct, tmp_path)
    assert "is 101 characters" in issue.message


@pytest.mark.peers
def test_a_long_post_arrives_as_a_numbered_thread_that_fits(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path
) -> None:
    """Auto-split (plurspool(5), AUTO-SPLIT): 1,200 characters become a chain of statuses of
    at most 500 characters as the instance counts them (its limit read from it), numbered."""
    sentences = [
        f"Sentence {k} of a thought that goes on for a while, as they do." for k in range(19)
    ]
    text = " ".join(sentences)[:1200].rsplit(" ", 1)[0] + " end."
    text = text + " " + "x" * (1200 - len(text) - 1)
    assert len(text) == 1200
    store, key = Store(), new_key()
    acct = account(mastodon_mock.url)
    out = m.PLATFORM.send(mjob(make_post(text), acct, tmp_path, state, store=store, key=key))
    assert out.status == "sent", out
    limits = api.read_cached_limits(state, mastodon_mock.url)
    assert limits is not None and limits[0].max_characters == 500
    chain = list(reversed(mastodon_mock.statuses(user)))
    texts = [mastodon_mock.source(user, s["id"])["text"] for s in chain]
    assert len(texts) == 3
    assert [t.rsplit(" ", 1)[1] for t in texts] == ["1/3", "2/3", "3/3"]
    assert all(m.status_length(t) <= 500 for t in texts)
    assert " ".join(t.rsplit(" ", 1)[0] for t in texts).split() == text.split()
    assert chain[0]["id"] == out.remote_id
    assert [s["in_reply_to_id"] for s in chain] == [None, chain[0]["id"], chain[1]["id"]]
    # A retry of the same post and key splits the same: nothing more is posted.
    again = m.PLATFORM.send(mjob(make_post(text), acct, tmp_path, state, store=store, key=key))
    assert again.status == "sent" and again.remote_id == out.remote_id
    assert len(mastodon_mock.statuses(user)) == 3


@pytest.mark.peers
def test_a_retry_splits_with_the_limits_its_first_attempt_used(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The instance's limit read anew between two attempts must not move the breaks: the parts
    already posted and the ones still to come belong to one split."""
    real_call = api.Client.call
    posts = [0]

    def call(self: api.Client, method: str, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        if method == "status_post":
            posts[0] += 1
            if posts[0] == 2:
                raise api.Refused(Outcome("temporary", error="network error: injected"))
        return real_call(self, method, *args, **kwargs)

    monkeypatch.setattr(api.Client, "call", call)
    text = " ".join(f"Sentence {k} goes on for a while, as they do." for k in range(24))
    store, key = Store(), new_key()
    acct = account(mastodon_mock.url)
    first = m.PLATFORM.send(mjob(make_post(text), acct, tmp_path, state, store=store, key=key))
    assert first.status == "temporary" and len(mastodon_mock.statuses(user)) == 1
    assert store.material["split_limits"]["max_characters"] == 500
    # Meanwhile the instance is said to allow 5,000: the whole text would fit in one status.
    api.write_cached_limits(state, mastodon_mock.url, api.Limits(max_characters=5000), time.time())
    out = m.PLATFORM.send(mjob(make_post(text), acct, tmp_path, state, store=store, key=key))
    assert out.status == "sent", out
    chain = list(reversed(mastodon_mock.statuses(user)))
    texts = [mastodon_mock.source(user, s["id"])["text"] for s in chain]
    n = len(texts)
    assert n == 3 and [t.rsplit(" ", 1)[1] for t in texts] == [f"{i}/{n}" for i in (1, 2, 3)]
    assert [s["in_reply_to_id"] for s in chain] == [None, chain[0]["id"], chain[1]["id"]]


@pytest.mark.peers
def test_an_edit_changes_text_cw_sensitive_language_and_alt_text_in_place(
    mastodon_mock: Mock, user: User, tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`amend`'s request (`mastodon_api.edit_statuses`): PUT /api/v1/statuses/:id naming every
    field (Mastodon clears a CW an edit leaves out), the media kept with new descriptions.
    mastodon-mock ignores an edit's language and media (it keeps both as they were): those are
    checked in the request's body."""
    import requests

    from plurspool.platforms.mastodon_api import Edit, edit_statuses

    bodies: list[tuple[str, Any]] = []
    put = requests.Session.put

    def spy(self: requests.Session, url: str, **kwargs: Any) -> requests.Response:
        bodies.append((url, kwargs.get("json")))
        return put(self, url, **kwargs)

    monkeypatch.setattr(requests.Session, "put", spy)
    media = tmp_path / "spool" / "media"
    media.mkdir(parents=True)
    (media / "dot.png").write_bytes(png(1, 1))
    alt = [{"path": "media/dot.png", "alt": "a dot"}]
    post = make_post("Hello wrold", cw="Spoilers", language="en", media=alt)
    acct = account(mastodon_mock.url)
    out = m.PLATFORM.send(mjob(post, acct, tmp_path, state))
    assert out.status == "sent", out
    status_id = str(out.remote_id)
    first = Edit(status_id, "Hello world", "Plot", True, "de", ("an orange dot",))
    edit_statuses(acct, [first], clock=time.time)
    s = mastodon_mock.status(user, status_id)
    assert mastodon_mock.source(user, status_id)["text"] == "Hello world"
    assert (s["spoiler_text"], s["sensitive"]) == ("Plot", True)
    [media_id] = [str(a["id"]) for a in s["media_attachments"]]
    [(url, body)] = bodies
    assert url == f"{mastodon_mock.url}/api/v1/statuses/{status_id}"
    assert (body["status"], body["spoiler_text"], body["language"]) == ("Hello world", "Plot", "de")
    assert body["media_ids"] == [media_id]
    assert body["media_attributes"] == [{"id": media_id, "description": "an orange dot"}]
    again = Edit(status_id, "Hello, world", None, False, None, ("an orange dot",))
    edit_statuses(acct, [again], clock=time.time)
    s = mastodon_mock.status(user, status_id)
    assert mastodon_mock.source(user, status_id)["text"] == "Hello, world"
    assert (s["spoiler_text"], s["sensitive"]) == ("", False)
    assert [str(a["id"]) for a in s["media_attachments"]] == [media_id]
    assert "language" not in bodies[1][1]  # left out: the status keeps its language
