"""What `amend` edits (plurspool(1), `amend`): per mastodon account, the statuses whose text,
cw, sensitive, language or media descriptions changed, later parts' ids from this host's
ledger; what it refuses with a reason. In process, no server (`amend.plan`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plurspool.amend import accounts, plan, refuse_unless_editable
from plurspool.errors import InvalidInput
from plurspool.platforms.mastodon_api import Edit
from plurspool.post import parse
from tests.daemon_helpers import Sandbox, World, in_process

RESULTS = "results:\n  m: {id: '11', url: 'https://example.social/@me/11', attempts: 1}\n"


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    box = Sandbox(tmp_path)
    box.accounts["m"] = 'platform = "mastodon"\ninstance = "https://example.social"'
    box.accounts["b"] = 'platform = "bluesky"\nhandle = "me.example.com"'
    world = in_process(box)
    try:
        yield world
    finally:
        world.app.close()
        box.cleanup()


def sent(w: World, front: str, body: str) -> tuple[str, str]:
    text = f"---\nplatforms: [m]\n{front}{RESULTS}attempts: 1\n---\n{body}\n"
    w.box.deliver("sent", "p", text)
    return "p", text


def edits(w: World, old: str, new: str) -> dict[str, list[Edit]]:
    item = w.app.items.find("p", ("sent",))
    return plan(w.app, item, parse(old.encode()), parse(new.encode()))


def test_only_what_changed_is_edited_with_every_field_it_has(w: World) -> None:
    _, old = sent(w, "cw: spoilers\nlanguage: en\n", "Hello wrold")
    assert edits(w, old, old) == {"m": []}
    new = old.replace("wrold", "world").replace("language: en", "language: de")
    assert edits(w, old, new) == {"m": [Edit("11", "Hello world", "spoilers", None, "de")]}


def test_a_threads_later_parts_are_found_in_this_hosts_ledger(w: World) -> None:
    _, old = sent(w, "", "one\n---\ntwo\n---\nthree")
    new = old.replace("three", "THREE")
    with pytest.raises(InvalidInput) as caught:
        edits(w, old, new)  # nothing in the ledger: sent from another host
    assert "status 3 of 3 was sent from another host" in caught.value.message
    parts = [{"id": "11", "url": None}, {"id": "12", "url": None}, {"id": "13", "url": None}]
    w.app.ledger.begin_attempt("p", "m", material={"parts": parts})
    assert edits(w, old, new) == {"m": [Edit("13", "THREE", None, None, None)]}


def test_media_descriptions_are_edited_with_the_first_part(w: World) -> None:
    (w.box.spool / "media").mkdir()
    (w.box.spool / "media" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    _, old = sent(w, "media:\n  - {path: media/a.png, alt: a dog}\n", "Look")
    new = old.replace("a dog", "a cat")
    assert edits(w, old, new) == {"m": [Edit("11", "Look", None, None, None, ("a cat",))]}


@pytest.mark.parametrize(
    ("old_text", "new_text", "words"),
    [
        ("platforms: [m]", "platforms: [m, b]", "amend cannot change platforms, visibility"),
        ("platforms: [m]", "platforms: [m]\nvisibility: unlisted", "amend cannot change"),
        ("Hello", "Hello\n---\nmore", "m: the edit makes 2 statuses of the 1 sent"),
    ],
)
def test_what_amend_cannot_do_is_refused_with_why(
    w: World, old_text: str, new_text: str, words: str
) -> None:
    _, old = sent(w, "", "Hello")
    with pytest.raises(InvalidInput) as caught:
        edits(w, old, old.replace(old_text, new_text, 1))
    assert words in caught.value.message


def test_a_repost_or_a_bluesky_only_post_is_refused_before_the_editor(w: World) -> None:
    w.box.deliver(
        "sent",
        "blue",
        "---\nplatforms: [b]\nresults:\n  b: {id: 'at://x', attempts: 1}\n---\nhi\n",
    )
    with pytest.raises(InvalidInput) as caught:
        refuse_unless_editable(w.app, w.app.items.find("blue", ("sent",)))
    assert "(it went to: b (bluesky))" in caught.value.message
    w.box.deliver(
        "sent", "boost", f"---\nplatforms: [m]\nrepost: https://example.social/@a/1\n{RESULTS}---\n"
    )
    with pytest.raises(InvalidInput) as caught:
        refuse_unless_editable(w.app, w.app.items.find("boost", ("sent",)))
    assert caught.value.message == "boost is a repost: it has no text to amend"


def test_a_quotes_link_stays_at_the_end_of_the_first_status(w: World) -> None:
    _, old = sent(w, "quote: https://other.example/@a/5\n", "Well said, wrold")
    new = old.replace("wrold", "world")
    with pytest.raises(InvalidInput) as caught:
        edits(w, old, new)  # how it quoted is in the ledger of the host that sent it
    assert "how this quote post was sent is not known on this host" in caught.value.message
    w.app.ledger.begin_attempt("p", "m", material={"quote": {"link": "https://other.example/@a/5"}})
    text = "Well said, world\n\nhttps://other.example/@a/5"
    assert edits(w, old, new) == {"m": [Edit("11", text, None, None, None)]}
    w.app.ledger.save_material("p", "m", {"quote": {"id": "5"}})  # through the quote API
    assert edits(w, old, new) == {"m": [Edit("11", "Well said, world", None, None, None)]}


def test_accounts_the_post_was_deleted_from_are_not_amended(w: World) -> None:
    """A copy taken back (`expires`, `delete`) is gone: amend edits only the live ones and is
    refused (exit 3) when none is left."""
    two = (
        "  m: {id: '11', url: 'https://example.social/@me/11', attempts: 1, "
        "deleted_at: '2026-01-01T00:00:00Z'}\n"
        "  n: {id: '21', url: 'https://example.social/@me/21', attempts: 1}\n"
    )
    w.box.accounts["n"] = 'platform = "mastodon"\ninstance = "https://example.social"'
    w.reload()
    old = f"---\nplatforms: [m, n]\nresults:\n{two}attempts: 1\n---\nHello wrold\n"
    w.box.deliver("sent", "p", old)
    refuse_unless_editable(w.app, w.app.items.find("p", ("sent",)))
    assert accounts(w.app, parse(old.encode())) == (["n"], [], ["m"])
    new = old.replace("wrold", "world")
    assert edits(w, old, new) == {"n": [Edit("21", "Hello world", None, None, None)]}
    gone = old.replace("attempts: 1}\n", "attempts: 1, deleted_at: '2026-01-02T00:00:00Z'}\n")
    w.box.deliver("sent", "p", gone)
    with pytest.raises(InvalidInput) as caught:
        refuse_unless_editable(w.app, w.app.items.find("p", ("sent",)))
    assert caught.value.exit_code == 3
    assert caught.value.message == "p was deleted from every account it went to (m, n)"
    assert "nothing to amend" in (caught.value.hint or "")
