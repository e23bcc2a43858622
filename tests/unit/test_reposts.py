"""Reposts (plurspool(5), `repost`): read with key and line, judged per account by `check`,
kept through every edit plurspool writes back; `@ID` is that post's own result."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plurspool.post import Repost, parse, with_record, with_schedule
from plurspool.post.model import Result
from plurspool.post.repost import platform_of
from tests.helpers import check_draft, invoke, make_env, parse_error, spool_root, write_config

ACCOUNTS = """\
default_platforms = ["m"]

[accounts.m]
platform = "mastodon"
instance = "https://example.social"

[accounts.b]
platform = "bluesky"
handle = "me.example.com"
service = "https://bsky.social"

[accounts.n]
platform = "nostr"
relays = ["wss://relay.example.com"]

[accounts.x]
platform = "exec"
command = ["true"]
"""
NOTE = "note1" + "q" * 58


@pytest.mark.parametrize(
    ("url", "platform"),
    [
        ("https://example.social/@alice/109876543210", "mastodon"),
        ("https://example.social/users/alice/statuses/109876543210", "mastodon"),
        ("https://bsky.app/profile/alice.bsky.social/post/3kabcdefg2x2a", "bluesky"),
        ("at://did:plc:abc/app.bsky.feed.post/3kabcdefg2x2a", "bluesky"),
        (f"nostr:{NOTE}", "nostr"),
        ("a" * 64, "nostr"),
        ("https://example.social/about", None),
        ("https://bsky.app/profile/alice.bsky.social", None),
        ("nostr:npub1" + "q" * 58, None),
    ],
)
def test_a_repost_url_belongs_to_one_platform(url: str, platform: str | None) -> None:
    assert platform_of(url) == platform


def test_a_repost_has_no_parts_and_says_what_it_reposts() -> None:
    post = parse(b"---\nrepost: https://example.social/@alice/1234\n---\n")
    assert post.parts == ()
    assert post.repost == Repost(default="https://example.social/@alice/1234")
    assert post.preview == "repost https://example.social/@alice/1234"
    each = parse(b"---\nrepost:\n  m: https://example.social/@a/1\n  b: '@launch'\n---\n\n")
    assert each.repost is not None
    assert (each.repost.target("m"), each.repost.target("b"), each.repost.target("n")) == (
        "https://example.social/@a/1",
        "@launch",
        None,
    )


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("repost: https://example.social/@a/1\n---\nmy own words\n", 2, "has a body"),
        ("repost: https://example.com/blog/post\n---\n", 2, "not a post's address we know"),
        ("repost: '@'\n---\n", 2, "must be `@ID`"),
        ("cw: hi\nrepost:\n  m:\n---\n", 4, "`repost.m` is empty"),
        ("repost: [a, b]\n---\n", 2, "`repost` must be"),
        ("media: [media/a.png]\nrepost: https://example.social/@a/1\n---\n", 3, "`media`"),
        (
            "repost: https://example.social/@a/1\noverrides:\n  m: {text: hi}\n---\n",
            2,
            "cannot carry `overrides.ACCOUNT.text`",
        ),
        (
            "repost: https://example.social/@a/1\nquote: https://example.social/@a/2\n---\n",
            2,
            "`quote`",
        ),
    ],
)
def test_a_bad_repost_is_refused_with_key_and_line(text: str, line: int, words: str) -> None:
    exc = parse_error(f"---\n{text}".encode())
    assert exc.line == line, exc.message
    assert exc.message.startswith(f"line {line}: ") and words in exc.message, exc.message
    assert exc.hint


def test_edits_written_back_keep_the_repost() -> None:
    data = b"---\nrepost: https://example.social/@a/1 # boost at noon\n---\n"
    edited = with_schedule(data, "2026-12-01T12:00:00+00:00")
    recorded = with_record(edited, {"m": Result(id="9", url="https://x/9", attempts=1)}, 1)
    assert b"# boost at noon" in recorded
    assert parse(recorded).repost == parse(data).repost


# -- check: the account's platform, `@ID` ------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = make_env(tmp_path)
    write_config(env, ACCOUNTS)
    assert invoke(["init"], env).code == 0
    return env


def test_check_takes_each_accounts_own_platforms_post(env: dict[str, str]) -> None:
    text = (
        "---\nplatforms: [m, b, n]\nrepost:\n  m: https://example.social/@a/1\n"
        f"  b: https://bsky.app/profile/a.example/post/3kabc\n  n: nostr:{NOTE}\n---\n"
    )
    assert check_draft(env, "ok", text) == (0, [])


def test_check_refuses_a_url_of_another_platform_for_the_account(env: dict[str, str]) -> None:
    text = "---\nplatforms: [m, b]\nrepost: https://example.social/@a/1\n---\n"
    code, lines = check_draft(env, "p", text)
    assert code == 3
    assert lines == [
        "b: line 3: `repost: https://example.social/@a/1`: a mastodon post cannot be reposted "
        "on bluesky; give this account a bluesky post's address (repost: {b: URL})"
    ]


def test_check_refuses_an_account_the_mapping_leaves_out_and_a_platform_without_reposts(
    env: dict[str, str],
) -> None:
    text = "---\nplatforms: [m, n, x]\nrepost:\n  m: https://example.social/@a/1\n---\n"
    code, lines = check_draft(env, "p", text)
    assert code == 3
    [line] = lines  # check joins one file's errors
    assert line.startswith("n: line 3: `repost` names no post for n; add `n: URL`")
    assert "; x: line 3: `repost` names no post for x" in line
    code, lines = check_draft(env, "q", "---\nplatforms: [x]\nrepost: '@launch'\n---\n")
    assert code == 3
    assert lines == [
        "x: line 3: `repost: @launch`: exec accounts have no reposts; send the repost to "
        "mastodon, bluesky, nostr accounts only"
    ]


def test_check_refuses_an_id_that_names_no_post(env: dict[str, str]) -> None:
    code, lines = check_draft(env, "p", "---\nrepost: '@nowhere'\n---\n")
    assert code == 3
    [line] = lines
    assert line.startswith("m: line 2: `repost: @nowhere`: ") and "nowhere" in line[30:]


def test_an_id_reposts_that_posts_own_result_on_each_account(env: dict[str, str]) -> None:
    from plurspool.app import App
    from plurspool.config import load
    from plurspool.platforms.base import Outcome, Quoted

    text = (
        "---\nplatforms: [m, b]\nresults:\n"
        "  m: {id: '77', url: 'https://example.social/@me/77', attempts: 1}\n"
        "attempts: 1\n---\nthe original\n"
    )
    (spool_root(env) / "sent" / "launch.md").write_text(text, encoding="utf-8")
    app = App(load(None, env=env))
    try:
        post = parse(b"---\nplatforms: [m, b]\nrepost: '@launch'\n---\n")
        assert app.items.quoted(post, "m", "repost") == Quoted(
            url="https://example.social/@me/77", id="77"
        )
        other = app.items.quoted(post, "b", "repost")
        assert isinstance(other, Outcome) and other.status == "permanent"
        assert other.error == (
            "line 3: `repost: @launch`: launch has not been sent to b (it is in sent/)"
        )
    finally:
        app.close()


# -- queued and recurring reposts --------------------------------------------------------------


def test_a_queued_repost_takes_a_slot_like_any_post(tmp_path: Path) -> None:
    from tests.daemon_helpers import Sandbox, in_process

    box = Sandbox(tmp_path)
    box.accounts["m"] = 'platform = "mastodon"\ninstance = "https://example.social"'
    box.extra = '[queues.default]\nslots = ["daily 09:00"]\naccounts = ["m"]\n'
    try:
        world = in_process(box)
        box.deliver("new", "a", "---\nschedule: queue\nrepost: https://example.social/@a/1\n---\n")
        box.deliver("new", "b", "---\nschedule: queue\nrepost: https://example.social/@a/2\n---\n")
        assert world.run().queued == ["a", "b"]
        first, second = box.post("scheduled", "a"), box.post("scheduled", "b")
        assert (first.queue, second.queue) == ("default", "default")
        assert first.schedule is not None and second.schedule is not None
        assert first.schedule.endswith("T09:00:00+00:00") and first.schedule < second.schedule
        assert first.repost == Repost(default="https://example.social/@a/1")
    finally:
        box.cleanup()


def test_an_occurrence_undoes_the_latest_earlier_occurrences_repost(tmp_path: Path) -> None:
    from plurspool.platforms.base import Quoted
    from plurspool.reposts import previous
    from plurspool.spool import Spool

    spool = Spool(tmp_path)
    spool.ensure()

    def sent(post_id: str, result: str, repost: bool = True) -> None:
        key = "repost: https://example.social/@a/1\n" if repost else ""
        body = "" if repost else "text\n"
        text = f"---\n{key}results:\n  m: {{{result}, attempts: 1}}\nattempts: 1\n---\n{body}"
        spool.deliver("sent", post_id, text.encode())

    sent("d--20261201T090000Z", "id: '1', url: 'https://example.social/@me/1'")
    sent("d--20261202T090000Z", "id: '2'")
    sent("d--20261203T090000Z", "error: refused")  # failed there: the one before is still up
    sent("d--20261205T090000Z", "id: '5'")  # later than the one being sent
    sent("dd--20261202T120000Z", "id: '9'")  # another template's
    sent("x--20261202T090000Z", "id: '7'", repost=False)
    assert previous(spool, "d--20261204T090000Z", "m") == Quoted(url=None, id="2")
    assert previous(spool, "d--20261201T090000Z", "m") is None  # the first occurrence
    assert previous(spool, "d--20261204T090000Z", "b") is None  # never sent to b
    assert previous(spool, "x--20261203T090000Z", "m") is None  # not a repost
    assert previous(spool, "d", "m") is None  # not an occurrence
    # Expired (`expires`) or deleted: already undone, and the one before it undone by it.
    sent("d--20261206T090000Z", "id: '6', deleted_at: '2026-12-06T10:00:00Z'")
    assert previous(spool, "d--20261207T090000Z", "m") is None


# -- nostr: a lookup no relay answers is temporary, one every relay denies permanent ---------


def test_nostr_repost_lookup_unanswered_is_temporary_denied_is_permanent(tmp_path: Path) -> None:
    import dataclasses
    import json
    import socket
    import threading

    from websockets.sync.server import ServerConnection, serve

    from plurspool.platforms import nostr_proto as proto
    from plurspool.platforms.base import Quoted
    from plurspool.platforms.nostr import PLATFORM
    from tests.platforms.fakes import job
    from tests.platforms.test_nostr import account

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"ws://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once it is closed
    post = parse(f"---\nrepost: nostr:{NOTE}\n---\n".encode())
    target = Quoted(url=f"nostr:{proto.note('ab' * 32)}")
    acct = account([closed], tmp_path, os.urandom(31) + b"\x01")
    first = dataclasses.replace(job(post, acct, spool_root=tmp_path, deadline=3.0), repost=target)
    out = PLATFORM.send(first)
    assert out.status == "temporary", out
    assert out.error and out.error.startswith(f"repost: cannot look up {target.url}: {closed}")
    published: list[object] = []

    def empty_relay(ws: ServerConnection) -> None:  # has no note: EOSE to every REQ
        for raw in ws:
            msg = json.loads(raw)
            if msg[0] == "REQ":
                ws.send(json.dumps(["EOSE", msg[1]]))
            published.append(msg) if msg[0] == "EVENT" else None

    with serve(empty_relay, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        acct = account([url], tmp_path, os.urandom(31) + b"\x01")
        second = dataclasses.replace(job(post, acct, spool_root=tmp_path), repost=target)
        out = PLATFORM.send(second)
        server.shutdown()
    assert out.status == "permanent", out
    assert out.error == (
        f"repost: cannot resolve {target.url}: no relay has the note ({url}: has no such note)"
    )
    assert published == []  # nothing was signed and sent


def test_show_and_list_say_what_a_repost_reposts(env: dict[str, str]) -> None:
    text = (
        "---\nplatforms: [m, n]\nrepost:\n  m: https://example.social/@a/1\n  n: '@launch'\n---\n"
    )
    (spool_root(env) / "drafts" / "boost.md").write_text(text, encoding="utf-8")
    shown = invoke(["show", "boost"], env)
    assert shown.code == 0, shown.err
    assert "repost:    m: https://example.social/@a/1\nrepost:    n: @launch\n" in shown.out
    listed = invoke(["list", "--state", "drafts", "--wide"], env)
    assert "repost https://example.social/@a/1, @launch" in listed.out
