"""The richer post keys (plurspool(5): `poll`, `quote`, `card`): read as text, refused with key
and line, judged per account by `check`, and kept through every edit plurspool writes back."""

from __future__ import annotations

from pathlib import Path

import pytest

from plurspool.post import parse, with_record, with_schedule
from plurspool.post.model import Result
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
"""

POLL = b"""---
platforms: [m]
poll:
  options:
    - Tea
    - "yes"
    - no
  expires: 1d
  multiple: true
---
Which one?
"""


# -- reading ----------------------------------------------------------------------------------


def test_a_poll_is_read_as_text_with_its_lines() -> None:
    poll = parse(POLL).poll
    assert poll is not None
    # `no` is the word no, not YAML's false; quoted or not, options are text.
    assert poll.options == ("Tea", "yes", "no")
    assert (poll.expires, poll.seconds, poll.multiple, poll.hide_totals) == (
        "1d",
        86400,
        True,
        None,
    )
    assert (poll.line, poll.option_lines, poll.expires_line) == (3, (5, 6, 7), 8)


@pytest.mark.parametrize(
    ("poll", "line", "words"),
    [
        ("poll: {options: [A], expires: 1d}", 3, "at least two `options`"),
        ("poll: {options: [A, B]}", 3, "has no `expires`"),
        ("poll: {options: [A, B], expires: soon}", 3, "`poll.expires`: 'soon' is not a duration"),
        ("poll: {options: [A, B], expires: 1d, multiple: maybe}", 3, "`poll.multiple` must be"),
        ("poll: {options: [A, B], expires: 1d, hide: true}", 3, "unknown key `hide` in `poll`"),
        ("poll: {options: [A, A], expires: 1d}", 3, "option 2 of `poll.options` repeats 'A'"),
        ("poll: {options: A, expires: 1d}", 3, "`poll.options` must be a list"),
        ("poll:\n  options: [A, '']\n  expires: 1d", 4, "option 2 of `poll.options` is empty"),
        ("poll: [A, B]", 3, "`poll` must be a mapping"),
    ],
)
def test_a_bad_poll_is_refused_with_key_and_line(poll: str, line: int, words: str) -> None:
    exc = parse_error(f"---\nplatforms: [m]\n{poll}\n---\nWhich?\n".encode())
    assert exc.line == line, exc.message
    assert exc.message.startswith(f"line {line}: ") and words in exc.message, exc.message
    assert exc.hint


@pytest.mark.parametrize(
    ("card", "words"),
    [
        ("card: maybe", "`card` must be auto, off or a mapping, not 'maybe'"),
        ("card: yes", "`card` must be auto, off or a mapping, not 'yes'"),
        ("card: {title: T}", "`card` has no `url`"),
        ("card: {url: 'ftp://x/'}", "`card.url` must be an http(s) URL"),
        ("card: {url: 'https://x/', image: /etc/passwd}", "`card.image` is absolute"),
        ("card: {url: 'https://x/', thumb: a.jpg}", "unknown key `thumb` in `card`"),
    ],
)
def test_a_bad_card_is_refused_with_key_and_line(card: str, words: str) -> None:
    exc = parse_error(f"---\nplatforms: [b]\n{card}\n---\nhttps://x/\n".encode())
    assert exc.line == 3 and words in exc.message, exc.message


def test_card_off_is_the_word_off() -> None:
    card = parse(b"---\ncard: off\n---\nhttps://x/\n").card
    assert card is not None and card.mode == "off"


def test_edits_written_back_keep_the_poll_byte_for_byte() -> None:
    edited = with_schedule(POLL, "2026-12-01T09:00:00+00:00")
    assert edited.endswith(POLL.removeprefix(b"---\n"))
    recorded = with_record(edited, {"m": Result(id="1", url="https://x/1", attempts=1)}, 1)
    assert parse(recorded).poll == parse(POLL).poll
    assert POLL.removeprefix(b"---\n").split(b"---\n")[0] in recorded


# -- check, per account -----------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = make_env(tmp_path)
    write_config(env, ACCOUNTS)
    assert invoke(["init"], env).code == 0
    return env


def test_check_refuses_a_poll_for_each_account_whose_platform_has_none(
    env: dict[str, str],
) -> None:
    code, lines = check_draft(
        env, "p", "---\nplatforms: [m, b, n]\npoll: {options: [A, B], expires: 1h}\n---\nQ?\n"
    )
    assert code == 3
    assert lines == [  # one line per file, its problems joined
        "; ".join(
            [
                "b: line 3: `poll`: bluesky has no polls; send the poll to mastodon accounts only, "
                "and the others a post of their own",
                "n: line 3: `poll`: nostr has no polls; send the poll to mastodon accounts only, "
                "and the others a post of their own",
            ]
        )
    ]
    code, lines = check_draft(
        env, "q", "---\nplatforms: [m]\npoll: {options: [A, B], expires: 1h}\n---\nQ?\n"
    )
    assert (code, lines) == (0, [])


def test_check_holds_a_poll_to_mastodons_defaults_while_the_instance_is_unknown(
    env: dict[str, str],
) -> None:
    long = "x" * 51
    code, lines = check_draft(
        env,
        "p",
        f"---\npoll:\n  options: [A, B, C, D, E, {long}]\n  expires: 31d\n---\nQ?\n",
    )
    assert code == 3
    assert lines == [
        "; ".join(
            [
                "m: line 2: `poll.options` has 6 choices; Mastodon allows (by default) 4",
                "m: line 3: option 6 of `poll.options` is 51 characters; "
                "Mastodon allows (by default) 50",
                "m: line 4: `poll.expires` is 31d0h; Mastodon allows (by default) 5m to 30d",
            ]
        )
    ]
    code, lines = check_draft(env, "q", "---\npoll: {options: [A, B], expires: 4m}\n---\nQ?\n")
    assert code == 3 and lines == [
        "m: line 2: `poll.expires` is 4m00s; Mastodon allows (by default) 5m to 30d"
    ]


def test_check_refuses_a_poll_beside_media_on_mastodon(env: dict[str, str]) -> None:
    (spool_root(env) / "media").mkdir(exist_ok=True)
    (spool_root(env) / "media" / "cat.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    code, lines = check_draft(
        env,
        "p",
        "---\nmedia: [{path: media/cat.png, alt: a cat}]\npoll: {options: [A, B], expires: 1d}\n"
        "---\nQ?\n",
    )
    assert code == 3
    assert lines == ["m: line 3: a Mastodon status carries media or a poll, not both"]


# -- quote: @ID, from an earlier post's recorded results -------------------------------------


def sent_post(env: dict[str, str], post_id: str, account: str, url: str) -> None:
    text = (
        f"---\nplatforms: [{account}]\nresults:\n  {account}: {{id: '{post_id}-remote', "
        f"url: '{url}', attempts: 1}}\nattempts: 1\n---\nthe original\n"
    )
    (spool_root(env) / "sent" / f"{post_id}.md").write_text(text, encoding="utf-8")


def test_quote_of_an_id_is_that_posts_recorded_result_exact_id_first(
    env: dict[str, str],
) -> None:
    from plurspool.app import App
    from plurspool.config import load
    from plurspool.platforms.base import Outcome, Quoted

    sent_post(env, "launch", "m", "https://example.social/@me/1")
    sent_post(env, "launch-day", "m", "https://example.social/@me/2")
    app = App(load(None, env=env))
    try:
        quote = parse(b"---\nquote: '@launch'\n---\nhi\n")
        assert app.items.quoted(quote, "m") == Quoted(
            url="https://example.social/@me/1", id="launch-remote"
        )
        by_prefix = parse(b"---\nquote: '@launch-d'\n---\nhi\n")
        assert app.items.quoted(by_prefix, "m") == Quoted(
            url="https://example.social/@me/2", id="launch-day-remote"
        )
        other = app.items.quoted(quote, "b")  # never sent to b
        assert isinstance(other, Outcome) and other.status == "permanent"
        assert (
            other.error
            == "line 2: `quote: @launch`: launch has not been sent to b (it is in sent/)"
        )
    finally:
        app.close()


def test_check_names_a_quote_of_an_unknown_or_unsent_post(env: dict[str, str]) -> None:
    code, lines = check_draft(env, "p", "---\nquote: '@nowhere'\n---\nhi\n")
    assert code == 3
    [line] = lines
    assert line.startswith("m: line 2: `quote: @nowhere`: ") and "nowhere" in line[30:]
    later = spool_root(env) / "scheduled" / "later.md"
    later.write_text("---\nschedule: 2099-01-01T00:00:00Z\n---\nsoon\n", encoding="utf-8")
    # Not sent yet: a warning in check; the sender waits for it (a temporary failure).
    code, lines = check_draft(env, "q", "---\nquote: '@later'\n---\nhi\n")
    assert code == 0 and lines == [
        "warning: m: line 2: `quote: @later`: later has not been sent to m yet"
    ]


def test_the_sender_gives_the_quoted_posts_result_and_waits_for_one_not_sent_yet(
    tmp_path: Path,
) -> None:
    from tests.daemon_helpers import Sandbox, in_process, post_text

    box = Sandbox(tmp_path / "box")
    box.exec_account("x")
    try:
        world = in_process(box)
        box.deliver("new", "first", post_text("the original"))
        world.run()
        assert box.is_in("first", "sent")
        box.deliver("new", "quoting", "---\nquote: '@first'\n---\nlook at this\n")
        box.deliver("scheduled", "later", post_text("soon", schedule="2099-01-01T00:00:00Z"))
        box.deliver("new", "early", "---\nquote: '@later'\n---\ntoo early\n")
        world.run()
        assert box.is_in("quoting", "sent")
        recorded = parse((box.spool / "sent" / "first.md").read_bytes()).results["x"]
        [quote] = [r["stdin"]["quote"] for r in box.records("x") if "quote" in r["stdin"]]
        assert quote == {"url": recorded.url, "id": recorded.id}
        # Quoting a post not sent yet: nothing goes out, the post waits and retries.
        assert box.is_in("early", "scheduled")
        assert "later has not been sent to x yet" in (world.row("early", "x").error or "")
    finally:
        box.cleanup()
