"""The bluesky platform: offline rules, and contract tests against the reference PDS on loopback.

The PDS tests use the `pds` session fixture (tests/peers/bluesky_pds.py): they skip when Node 22
or the PDS is not installed (tests/peers/install_pds.sh), and fail under $CI.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from plurspool import config as config_mod
from plurspool.config import Account
from plurspool.errors import ConfigError
from plurspool.platforms import bluesky as bsky
from plurspool.platforms import bluesky_xrpc as xrpc
from plurspool.platforms.base import Issue, Job, Outcome, Quoted
from plurspool.post import Media, parse, render
from tests.helpers import invoke, png, run_cli, spool_root, state_home, write_config
from tests.peers.bluesky_pds import Pds, TestAccount, pds  # noqa: F401  (the fixture)
from tests.platforms.adapters import Adapter, BlueskyAdapter, Posted
from tests.platforms.contract import Crash, PlatformContract
from tests.platforms.fakes import Store, job, post

# --- helpers ----------------------------------------------------------------------------------


def load_account(tmp_path: Path, body: str, name: str = "b") -> Account:
    """An account as the config loader makes it from a [accounts.NAME] table."""
    path = tmp_path / "config.toml"
    path.write_text(f'[accounts.{name}]\nplatform = "bluesky"\n{body}', encoding="utf-8")
    env = {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    return config_mod.load(path, env=env).accounts[name]


def account_for(tmp_path: Path, url: str, who: TestAccount, password: str | None = None) -> Account:
    """An account logging in as `who` with its app password (or `password`) from a 0600 file."""
    secret = tmp_path / f"pw-{who.handle}"
    secret.write_text((password or who.app_password) + "\n")
    secret.chmod(0o600)
    return load_account(
        tmp_path, f'handle = "{who.handle}"\nservice = "{url}"\npassword_file = "{secret}"\n'
    )


def rkey(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


Call = Callable[..., dict[str, Any]]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every XRPC method the platform calls, in order."""
    seen: list[str] = []
    real: Call = xrpc.Client.call

    def counting(self: xrpc.Client, nsid: str, **kwargs: Any) -> dict[str, Any]:
        seen.append(nsid)
        return real(self, nsid, **kwargs)

    monkeypatch.setattr(xrpc.Client, "call", counting)
    yield seen


# --- offline: keys, counting, headers ---------------------------------------------------------


def test_tid_is_13_sortable_chars() -> None:
    assert bsky.tid(0, 0) == "2222222222222"
    # Vectors from @atproto/common-web's TID.fromTime(micros, clockid).
    assert bsky.tid(1_700_000_000_123_456, 5) == "3ke6kg42cm227"
    assert bsky.tid(1_700_000_000_000_000, 1023) == "3ke6kg3wk22zz"
    micros = 1_700_000_000_000_000
    keys = [bsky.tid(micros + i, 5) for i in range(50)]
    assert keys == sorted(keys) and len(set(keys)) == 50
    assert all(len(k) == 13 and k[0] in "234567abcdefghij" for k in keys)
    due = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    derived = bsky.post_tids("0123456789abcdef0123456789abcdef", due, 3)
    assert derived == sorted(derived) and len(set(derived)) == 3
    assert derived == bsky.post_tids("0123456789abcdef0123456789abcdef", due, 3)  # any host
    assert derived[0] != bsky.post_tids("f123456789abcdef0123456789abcdef", due, 1)[0]
    # Decoding gives back the post's time: the key is its microsecond clock, within its second.
    n = 0
    for c in derived[0]:
        n = n * 32 + "234567abcdefghijklmnopqrstuvwxyz".index(c)
    assert int((n >> 10) / 1e6) == int(due.timestamp())


def test_retry_after_headers() -> None:
    now = 1_800_000_000.0
    assert xrpc.retry_after({"retry-after": "7"}, now) == 7.0
    when = datetime.fromtimestamp(now, UTC) + timedelta(seconds=90)
    assert xrpc.retry_after({"retry-after": format_datetime(when, usegmt=True)}, now) == 90.0
    assert xrpc.retry_after({"ratelimit-reset": str(int(now) + 120)}, now) == 120.0
    assert xrpc.retry_after({"ratelimit-reset": "30"}, now) == 30.0
    assert xrpc.retry_after({"ratelimit-reset": str(int(now) - 5)}, now) == 0.0
    assert xrpc.retry_after({}, now) is None
    assert xrpc.retry_after({"retry-after": "soon"}, now) is None


def test_hold_after_reads_ratelimit_remaining() -> None:
    now = 1_800_000_000.0
    used_up = {"ratelimit-remaining": "0", "ratelimit-reset": str(int(now) + 120)}
    assert xrpc.hold_after(used_up, now) == 121.0  # a second's margin: resets are whole seconds
    assert xrpc.hold_after({**used_up, "ratelimit-remaining": "4999"}, now) is None
    assert xrpc.hold_after({"ratelimit-remaining": "0"}, now) is None
    assert xrpc.hold_after({**used_up, "ratelimit-reset": str(int(now) - 5)}, now) is None


def test_image_sniffing() -> None:
    data = png(7, 5)
    assert bsky.image_type(data[:16]) == "image/png"
    assert bsky.image_size(data) == (7, 5)
    assert bsky.image_type(b"GIF89a\x02\x00\x03\x00") == "image/gif"
    assert bsky.image_size(b"GIF89a\x02\x00\x03\x00") == (2, 3)
    jpeg = b"\xff\xd8\xff\xe0\x00\x04ab\xff\xc0\x00\x11\x08\x00\x09\x00\x0c\x03" + b"\x00" * 9
    assert bsky.image_type(jpeg) == "image/jpeg"
    assert bsky.image_size(jpeg) == (12, 9)
    assert bsky.image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert bsky.image_type(b"\x00\x00\x00\x18ftypmp42") is None


# --- offline: check ---------------------------------------------------------------------------


@pytest.fixture
def acct(tmp_path: Path) -> Account:
    return load_account(tmp_path, 'handle = "me.test"\npassword_cmd = "echo x"\n')


def check(tmp_path: Path, account: Account, parts: list[str], **fields: Any) -> list[Issue]:
    return bsky.PLATFORM.check(parse(render(parts=parts, **fields)), account, tmp_path)


def test_check_counts_graphemes_and_bytes(tmp_path: Path, acct: Account) -> None:
    assert check(tmp_path, acct, ["é" * 300]) == []
    assert check(tmp_path, acct, ["🎉" * 300]) == []  # 1200 bytes: fine
    [issue] = check(tmp_path, acct, ["a" * 301])
    assert issue.level == "error"
    assert "301 graphemes" in issue.message and "300" in issue.message
    # 200 graphemes, but 200 ZWJ families (3 emoji, 2 joiners) are 3,600 bytes.
    [issue] = check(tmp_path, acct, ["👨‍👩‍👧" * 200, "fine"])
    assert issue.level == "error" and "part 1 of 2" in issue.message
    assert "3600 bytes" in issue.message and "3000" in issue.message


def test_check_counts_the_cw_line(tmp_path: Path, acct: Account) -> None:
    text = "a" * 295
    assert check(tmp_path, acct, [text]) == []
    [issue] = check(tmp_path, acct, [text], cw="spoilers")
    assert "CW line" in issue.message and f"{295 + len('CW: spoilers') + 2} graphemes" in (
        issue.message
    )


def test_check_visibility(tmp_path: Path, acct: Account) -> None:
    [issue] = check(tmp_path, acct, ["hi"], visibility="followers")
    assert issue.level == "error" and "always public" in issue.message
    [issue] = check(tmp_path, acct, ["hi"], visibility="direct")
    assert issue.level == "error"
    [issue] = check(tmp_path, acct, ["hi"], visibility="unlisted")
    assert issue.level == "warning"
    assert check(tmp_path, acct, ["hi"], visibility="public") == []


def test_check_images(tmp_path: Path, acct: Account) -> None:
    (tmp_path / "media").mkdir()
    for i in range(5):
        (tmp_path / "media" / f"{i}.png").write_bytes(png())
    (tmp_path / "media" / "big.png").write_bytes(png() + b"\x00" * 2_000_000)
    (tmp_path / "media" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    five = [Media(f"media/{i}.png", "alt") for i in range(5)]
    issues = check(tmp_path, acct, ["hi"], media=five)
    assert [i.level for i in issues] == ["error"]
    assert "5 media files" in issues[0].message
    issues = check(tmp_path, acct, ["hi"], media=[Media("media/big.png", "a")])
    assert [i.level for i in issues] == ["error"] and "2,000,000" in issues[0].message
    issues = check(tmp_path, acct, ["hi"], media=[Media("media/clip.mp4", "a")])
    assert [i.level for i in issues] == ["error"] and "images only" in issues[0].message
    issues = check(tmp_path, acct, ["hi"], media=[Media("media/0.png")])
    assert [(i.level, i.message) for i in issues] == [("warning", "media/0.png has no alt text")]
    ok = [Media("media/0.png", "a dot")]
    assert check(tmp_path, acct, ["hi"], media=ok, sensitive=True) == []
    [issue] = check(tmp_path, acct, ["hi"], media=ok, cw="eyes")
    assert issue.level == "warning" and "sensitive: true" in issue.message
    [issue] = check(tmp_path, acct, ["hi"], sensitive=True)
    assert issue.level == "warning" and "there are none" in issue.message


def test_check_uses_the_override_text(tmp_path: Path, acct: Account) -> None:
    data = ("---\noverrides:\n  b: {text: short}\n---\n" + "a" * 400 + "\n").encode()
    assert bsky.PLATFORM.check(parse(data), acct, tmp_path) == []


def test_send_refuses_what_check_refuses_without_a_request(
    tmp_path: Path, acct: Account, calls: list[str]
) -> None:
    store = Store()
    out = send(tmp_path, acct, "a" * 301, store)
    assert out.status == "permanent" and "301 graphemes" in (out.error or "")
    assert calls == [] and store.saves == 0


def test_module_import_is_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, plurspool.platforms.bluesky\n"
        "print(sorted(m for m in ('atproto', 'atproto_client', 'httpx', 'regex') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- against the PDS --------------------------------------------------------------------------


def bjob(tmp_path: Path, account: Account, text: str, **fields: Any) -> Job:
    """A Job sending `text` (parts apart at `---` lines) with the post keys `fields`."""
    return job(post(text, **fields), account, spool_root=tmp_path, state_dir=tmp_path / "state")


def send_job(j: Job) -> Outcome:
    return bsky.PLATFORM.send(j)


def send(
    tmp_path: Path,
    account: Account,
    text: str,
    store: Store | None = None,
    *,
    in_doubt: bool = False,
    **fields: Any,
) -> Outcome:
    """Send `text` (parts apart at `---` lines) with the post keys `fields` to `account`."""
    j = job(
        post(text, **fields),
        account,
        spool_root=tmp_path,
        state_dir=tmp_path / "state",
        store=store,
        in_doubt=in_doubt,
    )
    return bsky.PLATFORM.send(j)


@pytest.mark.peers
def test_the_pds_takes_a_client_chosen_tid_of_any_age_and_refuses_it_twice(pds: Pds) -> None:  # noqa: F811
    """What deriving record keys from the post's time rests on (ARCHITECTURE.md, decisions):
    the reference PDS accepts a TID hours, days, a year and decades old, and one minutes or a
    year ahead; a second createRecord under a used key answers 500 (no conflict error) and
    leaves the first record as it was."""
    me = pds.new_account()
    now = time.time_ns() // 1000
    hour = 3600 * 1_000_000
    ages = {"3 hours old": -3 * hour, "2 days old": -48 * hour, "a year old": -8760 * hour}
    ages |= {"10 minutes ahead": hour // 6, "a year ahead": 8760 * hour}
    keys = {label: bsky.tid(now + offset, 7) for label, offset in ages.items()}
    keys["from 2000"] = bsky.tid(946_684_800 * 1_000_000, 7)

    def create(key: str, text: str) -> tuple[int, Any]:
        record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-01-01T00:00:00Z"}
        body = {"repo": me.did, "collection": "app.bsky.feed.post", "rkey": key, "record": record}
        code, out, _ = pds.call("com.atproto.repo.createRecord", body=body, token=me.access_jwt)
        return code, out

    for label, key in keys.items():
        code, out = create(key, label)
        assert code == 200, (label, out)
        assert rkey(out["uri"]) == key
    code, out = create(keys["3 hours old"], "again")
    assert code == 500 and out["error"] == "InternalServerError"
    texts = {rkey(r["uri"]): r["value"]["text"] for r in pds.records(me.did)}
    assert texts == {key: label for label, key in keys.items()}


@pytest.mark.peers
def test_a_plain_post_is_a_bare_feed_post_under_the_saved_key(
    tmp_path: Path,
    pds: Pds,  # noqa: F811
) -> None:
    """What the contract (TestBlueskyContract) does not see: the record, and its saved key."""
    me = pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    store = Store()
    out = send(tmp_path, account, "Hello from plurspool", store)
    assert out.status == "sent", out.error
    assert out.remote_id is not None
    assert out.remote_id.startswith(f"at://{me.did}/app.bsky.feed.post/")
    assert rkey(out.remote_id) == store.material["rkeys"][0]  # the key saved before the request
    got = pds.record(out.remote_id)
    assert got["value"]["$type"] == "app.bsky.feed.post"
    assert "langs" not in got["value"] and "facets" not in got["value"]
    assert "reply" not in got["value"] and "embed" not in got["value"]
    created = datetime.fromisoformat(got["value"]["createdAt"])
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=2)


@pytest.mark.peers
def test_a_quote_carries_the_quoted_posts_uri_and_cid(tmp_path: Path, pds: Pds) -> None:  # noqa: F811
    me, other = pds.new_account(), pds.new_account()
    theirs = send_job(bjob(tmp_path, account_for(tmp_path, pds.url, other), "the original"))
    assert theirs.status == "sent" and theirs.url is not None and theirs.remote_id is not None
    original = pds.record(theirs.remote_id)
    account = account_for(tmp_path, pds.url, me)
    # By the bsky.app URL (a handle to resolve), and by the at:// URI `quote: @ID` records.
    for n, target in enumerate((Quoted(url=theirs.url), Quoted(url=None, id=theirs.remote_id))):
        quoting = bjob(tmp_path, account, f"quoting it ({n})")  # two posts, two record keys
        out = send_job(dataclasses.replace(quoting, quote=target))
        assert out.status == "sent", out.error
        assert out.remote_id is not None
        embed = pds.record(out.remote_id)["value"]["embed"]
        assert embed == {
            "$type": "app.bsky.embed.record",
            "record": {"uri": theirs.remote_id, "cid": original["cid"]},
        }
    # With images: recordWithMedia, the quote and the images together.
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.png").write_bytes(png())
    with_image = bjob(tmp_path, account, "and a picture", media=[Media("media/a.png", "a dot")])
    out = send_job(dataclasses.replace(with_image, quote=Quoted(url=theirs.url)))
    assert out.status == "sent", out.error
    assert out.remote_id is not None
    embed = pds.record(out.remote_id)["value"]["embed"]
    assert embed["$type"] == "app.bsky.embed.recordWithMedia"
    assert embed["record"]["record"] == {"uri": theirs.remote_id, "cid": original["cid"]}
    assert embed["media"]["$type"] == "app.bsky.embed.images"
    assert embed["media"]["images"][0]["alt"] == "a dot"
    # A post that does not exist fails the send, naming it; nothing is created.
    gone = f"https://bsky.app/profile/{other.handle}/post/3zzzzzzzzzzzz"
    out = send_job(dataclasses.replace(bjob(tmp_path, account, "lost"), quote=Quoted(url=gone)))
    assert out.status == "permanent" and f"there is no post {gone}" in (out.error or "")
    assert len(pds.records(me.did)) == 3


@pytest.mark.peers
def test_a_link_post_arrives_with_its_card_and_thumb(tmp_path: Path, pds: Pds) -> None:  # noqa: F811
    me = pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    (tmp_path / "media" / "cards").mkdir(parents=True)
    thumb = png(12, 8)
    (tmp_path / "media" / "cards" / "p1.jpg").write_bytes(thumb)
    # The card as intake wrote it back; the URL is not fetched again (nothing serves it).
    text = (
        "---\ncard:\n  url: https://example.invalid/page\n  title: The page\n"
        "  description: What it says\n  image: media/cards/p1.jpg\n---\n"
        "First part, no link.\n---\nRead https://example.invalid/page today.\n"
    )
    post = parse(text.encode())
    j = dataclasses.replace(bjob(tmp_path, account, "x"), post=post)
    out = send_job(j)
    assert out.status == "sent", out.error
    records = sorted(pds.records(me.did), key=lambda r: r["value"]["createdAt"])
    first, second = (pds.record(r["uri"])["value"] for r in j_refs(records))
    assert "embed" not in first  # the card goes on the first part with a URL
    external = second["embed"]["external"]
    assert second["embed"]["$type"] == "app.bsky.embed.external"
    assert (external["uri"], external["title"], external["description"]) == (
        "https://example.invalid/page",
        "The page",
        "What it says",
    )
    assert external["thumb"]["mimeType"] == "image/png"
    assert pds.blob(me.did, external["thumb"]["ref"]["$link"]) == thumb


def j_refs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records in thread order: the root, then its replies."""
    root = [r for r in records if "reply" not in r["value"]]
    return root + [r for r in records if "reply" in r["value"]]


def test_check_refuses_a_quote_that_is_not_a_bluesky_post(tmp_path: Path, acct: Account) -> None:
    post = parse(b"---\nquote: https://example.social/@a/1\n---\nhi\n")
    [issue] = bsky.PLATFORM.check(post, acct, tmp_path)
    assert issue.level == "error"
    assert issue.message.startswith("line 2: `quote`: https://example.social/@a/1 is not a")


@pytest.mark.peers
def test_thread_of_three(tmp_path: Path, pds: Pds) -> None:  # noqa: F811
    me = pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    store = Store()
    out = send(tmp_path, account, "one\n---\ntwo\n---\nthree", store, language="en")
    assert out.status == "sent", out.error
    refs = store.material["records"]
    assert [rkey(r["uri"]) for r in refs] == store.material["rkeys"]
    assert refs[0]["uri"] == out.remote_id
    values = [pds.record(r["uri"])["value"] for r in refs]
    assert [v["text"] for v in values] == ["one", "two", "three"]
    assert "reply" not in values[0]
    for i in (1, 2):
        assert values[i]["reply"]["root"] == refs[0]
        assert values[i]["reply"]["parent"] == refs[i - 1]
    assert all(v["langs"] == ["en"] for v in values)
    # The refs' cids are the records' own.
    assert [pds.record(r["uri"])["cid"] for r in refs] == [r["cid"] for r in refs]
    assert len(pds.records(me.did)) == 3


@pytest.mark.peers
def test_facets_have_utf8_byte_offsets(tmp_path: Path, pds: Pds) -> None:  # noqa: F811
    me, friend = pds.new_account(), pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    text = (
        f"Ça marche 🎉👨‍👩‍👧 déjà vu #plurspool, voir https://example.com/café?x=1 "
        f"merci @{friend.handle} et @nobody-zz9.test !"
    )
    out = send(tmp_path, account, text, language="fr")
    assert out.status == "sent", out.error
    assert out.remote_id is not None
    value = pds.record(out.remote_id)["value"]
    assert value["text"] == text and value["langs"] == ["fr"]
    raw = text.encode("utf-8")
    found = []
    for f in value["facets"]:
        span = raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode("utf-8")
        [feature] = f["features"]
        found.append((feature["$type"].rsplit("#", 1)[-1], span, feature))
    assert [(kind, span) for kind, span, _ in found] == [
        ("tag", "#plurspool"),
        ("link", "https://example.com/café?x=1"),
        ("mention", f"@{friend.handle}"),
    ]
    assert found[0][2]["tag"] == "plurspool"
    assert found[1][2]["uri"] == "https://example.com/café?x=1"
    assert found[2][2]["did"] == friend.did  # resolved at send time; @nobody stays plain text


@pytest.mark.peers
def test_image_with_alt_and_sensitive_label(tmp_path: Path, pds: Pds) -> None:  # noqa: F811
    me = pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    image = png(4, 3)
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "dot.png").write_bytes(image)
    (tmp_path / "media" / "dot2.png").write_bytes(png(2, 2))
    media = [Media("media/dot.png", "Three rows of purple"), Media("media/dot2.png")]
    out = send(tmp_path, account, "look\n---\nand more", media=media, sensitive=True, cw="eyes")
    assert out.status == "sent", out.error
    assert out.remote_id is not None
    value = pds.record(out.remote_id)["value"]
    assert value["text"] == "CW: eyes\n\nlook"
    embed = value["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    assert [i["alt"] for i in embed["images"]] == ["Three rows of purple", ""]
    assert embed["images"][0]["aspectRatio"] == {"width": 4, "height": 3}
    blob = embed["images"][0]["image"]
    assert blob["mimeType"] == "image/png" and blob["size"] == len(image)
    assert pds.blob(me.did, blob["ref"]["$link"]) == image
    assert value["labels"]["values"] == [{"val": "graphic-media"}]
    [second] = [r for r in pds.records(me.did) if r["uri"] != out.remote_id]
    assert second["value"]["text"] == "CW: eyes\n\nand more"
    assert "embed" not in second["value"] and "labels" not in second["value"]


@pytest.mark.peers
def test_accounts_test_with_a_bad_password_says_so_without_it(
    tmp_path: Path,
    pds: Pds,  # noqa: F811
) -> None:
    # Sending with it: TestBlueskyContract's bad-credentials test.
    me = pds.new_account()
    canary = "canary-Pa55word-4471"
    account = account_for(tmp_path, pds.url, me, password=canary)
    with pytest.raises(ConfigError) as info:
        bsky.PLATFORM.test(account, tmp_path / "state")
    assert canary not in str(info.value) + info.value.hint
    assert "password_file" in info.value.hint


@pytest.mark.peers
def test_accounts_test_reports_identity(tmp_path: Path, pds: Pds) -> None:  # noqa: F811
    me = pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    report = bsky.PLATFORM.test(account, tmp_path / "state")
    assert report["did"] == me.did and report["handle"] == me.handle
    assert report["service"] == pds.url and report["platform"] == "bluesky"
    text = json.dumps(report)
    assert me.app_password not in text and "eyJ" not in text


@pytest.mark.peers
def test_session_is_stored_and_reused(
    tmp_path: Path,
    pds: Pds,  # noqa: F811
    calls: list[str],
) -> None:
    me = pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    assert send(tmp_path, account, "first").status == "sent"
    assert send(tmp_path, account, "second").status == "sent"
    assert calls.count("com.atproto.server.createSession") == 1
    assert calls.count("com.atproto.repo.createRecord") == 2
    path = xrpc.session_path(tmp_path / "state", "b")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["did"] == me.did and me.app_password not in path.read_text()
    # An access token the PDS refuses is renewed with the refresh token, not the password.
    stored["accessJwt"] = "not.a-valid.token"
    path.write_text(json.dumps(stored))
    calls.clear()
    assert send(tmp_path, account, "third").status == "sent"
    assert "com.atproto.server.refreshSession" in calls
    assert "com.atproto.server.createSession" not in calls
    assert len(pds.records(me.did)) == 3


@pytest.mark.peers
def test_crash_after_create_record_is_found_on_retry(
    tmp_path: Path,
    pds: Pds,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    me = pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    real: Call = xrpc.Client.call

    def crashing(self: xrpc.Client, nsid: str, **kwargs: Any) -> dict[str, Any]:
        out = real(self, nsid, **kwargs)
        if nsid == "com.atproto.repo.createRecord":
            raise Crash  # the PDS has the record; we die before we learn it
        return out

    store = Store()
    monkeypatch.setattr(xrpc.Client, "call", crashing)
    with pytest.raises(Crash):
        send(tmp_path, account, "exactly once", store)
    assert len(pds.records(me.did)) == 1
    assert "records" not in store.material  # its outcome was never recorded

    seen: list[str] = []

    def watching(self: xrpc.Client, nsid: str, **kwargs: Any) -> dict[str, Any]:
        seen.append(nsid)
        return real(self, nsid, **kwargs)

    monkeypatch.setattr(xrpc.Client, "call", watching)
    out = send(tmp_path, account, "exactly once", store, in_doubt=True)
    assert out.status == "sent", out.error
    assert "com.atproto.repo.getRecord" in seen
    assert "com.atproto.repo.createRecord" not in seen
    [record] = pds.records(me.did)
    assert record["uri"] == out.remote_id
    assert rkey(record["uri"]) == store.material["rkeys"][0]


@pytest.mark.peers
def test_5xx_after_the_write_is_checked_at_once(
    tmp_path: Path,
    pds: Pds,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    me = pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    real: Call = xrpc.Client.call

    def lossy(self: xrpc.Client, nsid: str, **kwargs: Any) -> dict[str, Any]:
        out = real(self, nsid, **kwargs)
        if nsid == "com.atproto.repo.createRecord":
            raise xrpc.XrpcError(kwargs.get("step", nsid), 502, "BadGateway", "lost answer")
        return out

    monkeypatch.setattr(xrpc.Client, "call", lossy)
    out = send(tmp_path, account, "written, answer lost")
    assert out.status == "sent", out.error
    [record] = pds.records(me.did)
    assert record["uri"] == out.remote_id


@pytest.mark.peers
def test_failed_thread_part_resumes_without_duplicates(
    tmp_path: Path,
    pds: Pds,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    me = pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    real: Call = xrpc.Client.call
    created = 0

    def flaky(self: xrpc.Client, nsid: str, **kwargs: Any) -> dict[str, Any]:
        nonlocal created
        if nsid == "com.atproto.repo.createRecord":
            created += 1
            if created == 2:  # the second part never reaches the PDS
                raise xrpc.XrpcError(kwargs.get("step", nsid), None, "Timeout", "no answer")
        return real(self, nsid, **kwargs)

    monkeypatch.setattr(xrpc.Client, "call", flaky)
    store = Store()
    first = send(tmp_path, account, "a\n---\nb\n---\nc", store)
    assert first.status == "temporary"
    assert "part 2 of 3" in (first.error or "") and "Timeout" in (first.error or "")
    assert len(store.material["records"]) == 1
    assert len(pds.records(me.did)) == 1
    again = send(tmp_path, account, "a\n---\nb\n---\nc", store)
    assert again.status == "sent", again.error
    refs = store.material["records"]
    assert again.remote_id == refs[0]["uri"]
    assert sorted(r["uri"] for r in pds.records(me.did)) == sorted(r["uri"] for r in refs)
    third = pds.record(refs[2]["uri"])["value"]
    assert third["text"] == "c"
    assert third["reply"] == {"root": refs[0], "parent": refs[1]}


@pytest.mark.peers
def test_rate_limited_login_is_temporary(tmp_path: Path, pds: Pds) -> None:  # noqa: F811
    me = pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    from concurrent.futures import ThreadPoolExecutor

    def login(_: int) -> tuple[int, dict[str, str]]:
        code, _, headers = pds.call(
            "com.atproto.server.createSession",
            body={"identifier": me.handle, "password": "wrong"},
        )
        return code, headers

    # createSession: 30 per 5 minutes per handle; each wrong try costs the PDS a password hash.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(login, range(34)))
    limited = next((headers for code, headers in answers if code == 429), None)
    if limited is None:
        pytest.skip("this PDS does not rate-limit (started without --rate-limits)")
    assert "ratelimit-reset" in limited
    out = send(tmp_path, account, "later")
    assert out.status == "temporary", out.error
    assert "429" in (out.error or "")
    assert out.retry_after is not None and 0 < out.retry_after <= 300
    assert pds.records(me.did) == []


@pytest.mark.peers
def test_post_command_end_to_end(tmp_path: Path, pds: Pds, env: dict[str, str]) -> None:  # noqa: F811
    me = pds.new_account()
    secret = tmp_path / "bsky-password"
    secret.write_text(me.app_password + "\n")
    secret.chmod(0o600)
    write_config(
        env,
        f'[accounts.b]\nplatform = "bluesky"\nhandle = "{me.handle}"\n'
        f'service = "{pds.url}"\npassword_cmd = "cat {secret}"\n',
    )
    run = run_cli(["post", "-p", "b", "--json", "hello #plurspool https://example.com"], env)
    assert run.code == 0, run.err
    view = run.json()
    assert view["state"] == "sent"
    uri = view["results"]["b"]["id"]
    assert uri.startswith(f"at://{me.did}/app.bsky.feed.post/")
    assert view["results"]["b"]["url"].startswith(f"https://bsky.app/profile/{me.handle}/post/")
    sent = spool_root(env) / "sent" / f"{view['id']}.md"
    assert uri in sent.read_text()
    value = pds.record(uri)["value"]
    assert value["text"] == "hello #plurspool https://example.com"
    kinds = [f["features"][0]["$type"].rsplit("#", 1)[-1] for f in value["facets"]]
    assert kinds == ["tag", "link"]
    assert me.app_password not in run.err + run.out
    session = state_home(env) / "bluesky" / "b.session.json"
    assert stat.S_IMODE(session.stat().st_mode) == 0o600


@pytest.mark.peers
def test_crash_in_the_sender_is_checked_on_the_next_pass(
    tmp_path: Path,
    pds: Pds,  # noqa: F811
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole path: `post` dies after createRecord; `send --once` finds the record."""
    me = pds.new_account()
    env["PLURSPOOL_B_PASSWORD"] = me.app_password
    write_config(
        env,
        f'[accounts.b]\nplatform = "bluesky"\nhandle = "{me.handle}"\nservice = "{pds.url}"\n',
    )
    real: Call = xrpc.Client.call

    def crashing(self: xrpc.Client, nsid: str, **kwargs: Any) -> dict[str, Any]:
        out = real(self, nsid, **kwargs)
        if nsid == "com.atproto.repo.createRecord":
            raise Crash
        return out

    monkeypatch.setattr(xrpc.Client, "call", crashing)
    with pytest.raises(Crash):
        invoke(["post", "-p", "b", "only once, please"], env)
    assert len(pds.records(me.did)) == 1
    [scheduled] = (spool_root(env) / "scheduled").glob("*.md")
    seen: list[str] = []

    def watching(self: xrpc.Client, nsid: str, **kwargs: Any) -> dict[str, Any]:
        seen.append(nsid)
        return real(self, nsid, **kwargs)

    monkeypatch.setattr(xrpc.Client, "call", watching)
    run = invoke(["send", "--once"], env)
    assert run.code == 0, run.err
    assert "com.atproto.repo.getRecord" in seen
    assert "com.atproto.repo.createRecord" not in seen
    sent = spool_root(env) / "sent" / scheduled.name
    assert sent.exists(), run.err
    [record] = pds.records(me.did)
    assert record["uri"] in sent.read_text()
    assert os.listdir(spool_root(env) / "scheduled") == []


@pytest.mark.peers
def test_an_answer_that_uses_up_the_window_holds_the_account(
    tmp_path: Path,
    pds: Pds,  # noqa: F811
) -> None:
    """A createRecord that succeeds with `RateLimit-Remaining: 0` is sent, and says how long
    the account must wait (until RateLimit-Reset, plus a second)."""
    from tests.platforms.adapters import RateLimitingProxy

    proxy = RateLimitingProxy(pds.url, "/xrpc/com.atproto.repo.createRecord", wait=5, exhaust=True)
    try:
        me = pds.new_account()
        out = send(tmp_path, account_for(tmp_path, proxy.url, me), "the last one allowed")
        assert out.status == "sent", out.error
        assert proxy.limit.reset is not None and out.hold is not None
        assert proxy.limit.reset + 1 - out.hold == pytest.approx(time.time(), abs=2)
        assert len(pds.records(me.did)) == 1
        again = send(tmp_path, account_for(tmp_path, proxy.url, me), "window open again")
        assert again.status == "sent" and again.hold is None  # the PDS's own headers: no limit
    finally:
        proxy.close()


# --- the platform contract (tests/platforms/contract.py) --------------------------------------


@pytest.mark.peers
class TestBlueskyContract(PlatformContract):
    """The reference PDS, a fresh account a test."""

    send_checks_length = True

    @pytest.fixture
    def adapter(self, pds: Pds, tmp_path: Path) -> Iterator[Adapter]:  # noqa: F811
        made = BlueskyAdapter(pds, tmp_path)
        yield made
        made.close()

    def crash_after(self, monkeypatch: pytest.MonkeyPatch, answered: int) -> None:
        real: Call = xrpc.Client.call
        created = [0]

        def crashing(self: xrpc.Client, nsid: str, **kwargs: Any) -> dict[str, Any]:
            out = real(self, nsid, **kwargs)
            if nsid == "com.atproto.repo.createRecord":
                created[0] += 1
                if created[0] == answered:
                    raise Crash  # the PDS has the record; we die before we learn it
            return out

        monkeypatch.setattr(xrpc.Client, "call", crashing)

    def url_of(self, adapter: Adapter, held: Posted) -> str | None:
        assert isinstance(adapter, BlueskyAdapter)
        return f"https://bsky.app/profile/{adapter.me.handle}/post/{rkey(held.ref)}"


@pytest.mark.peers
def test_a_long_post_arrives_as_a_thread_of_records_that_fit(
    tmp_path: Path,
    pds: Pds,  # noqa: F811
) -> None:
    """Auto-split (plurspool(5), AUTO-SPLIT): 700 graphemes (with accents, emoji and a family
    that count one each) become a reply chain of records of at most 300 graphemes."""
    from plurspool.split import graphemes

    me = pds.new_account()
    account = account_for(tmp_path, pds.url, me)
    words = ["Café", "naïve", "👨‍👩‍👧", "e\u0301te\u0301", "thread", "#plurspool", "words."]
    text = " ".join(words[k % len(words)] for k in range(200))
    text = text[: text.index(" ", 690)] if graphemes(text) > 700 else text
    text += " " + "z" * (700 - graphemes(text) - 1)
    assert graphemes(text) == 700
    store = Store()
    out = send(tmp_path, account, text, store)
    assert out.status == "sent", out.error
    refs = store.material["records"]
    values = [pds.record(r["uri"])["value"] for r in refs]
    n = len(values)
    assert n == 3 and refs[0]["uri"] == out.remote_id
    texts = [v["text"] for v in values]
    assert all(graphemes(t) <= 300 and len(t.encode()) <= 3000 for t in texts)
    assert [t.rsplit(" ", 1)[1] for t in texts] == [f"{i}/{n}" for i in range(1, n + 1)]
    assert " ".join(t.rsplit(" ", 1)[0] for t in texts).split() == text.split()
    for i in range(1, n):
        assert values[i]["reply"] == {"root": refs[0], "parent": refs[i - 1]}
    assert len(pds.records(me.did)) == n
