"""Feeds (plurspool(1), FEEDS) in process, against a feed served on loopback: `feed add` posts
nothing, each new entry becomes exactly one post, a 304 costs no parse, an oversized or
malformed feed is refused with its reason, and feeds.toml is read and edited with care."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from plurspool import feeds as feeds_module
from plurspool.errors import InvalidInput, NotFound
from plurspool.feedfetch import Entry, Fetched, to_text
from plurspool.feeds import FEEDS_FILE, Feed, Feeds, entry_text, parse_feeds, post_id
from plurspool.log import Log
from tests.daemon_helpers import Sandbox, World, in_process
from tests.feedserver import FeedServer, atom, feed_server, rss

NOW = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)  # Friday; the default queue's slot: 09:00 UTC
QUEUES = '[queues.default]\nslots = ["daily 09:00"]\n[feeds]\npoll_interval = "15m"\n'
FIRST = [("https://blog.example/2", "Two", "<p>b</p>"), ("https://blog.example/1", "One", "a")]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as s:
        s.docs["/rss"] = (rss(FIRST), "application/rss+xml")
        yield s


@pytest.fixture
def world(tmp_path: Path) -> World:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.top = 'timezone = "UTC"'
    box.extra = QUEUES
    w = in_process(box)
    w.clock[0] = NOW
    return w


def feeds_of(w: World) -> Feeds:
    return Feeds(w.app, Log(stream=w.log))


class Counting:
    """The real parser, counted."""

    def __init__(self, feeds: Feeds) -> None:
        self.calls = 0
        self.real = feeds.parse
        feeds.parse = self

    def __call__(self, fetched: Fetched) -> list[Entry]:
        self.calls += 1
        return self.real(fetched)


def posts(w: World) -> set[str]:
    return w.box.ids("scheduled") | w.box.ids("drafts")


def test_feed_add_records_the_entries_and_posts_none(world: World, server: FeedServer) -> None:
    feeds = feeds_of(world)
    assert feeds.add(Feed(server.url("/rss"))) == 2
    assert posts(world) == set()
    text = (world.box.spool / FEEDS_FILE).read_text()
    assert text == f'[[feed]]\nurl = "{server.url("/rss")}"\n'
    [row] = feeds.views()
    assert row["seen"] == 2 and row["last_error"] is None and row["queue"] == "default"
    assert row["last_poll"] == "2026-12-04T07:00:00Z"
    # Polled when due: still nothing new, so still nothing posted.
    world.tick(15 * 60)
    assert feeds.poll_due() == [] and posts(world) == set()


def test_a_new_entry_becomes_exactly_one_post_in_the_queue(
    world: World, server: FeedServer
) -> None:
    feeds = feeds_of(world)
    feeds.add(Feed(server.url("/rss")))
    new = ("https://blog.example/3", "Three &amp; more", "<p>c</p>")
    server.docs["/rss"] = (rss([new, *FIRST]), "application/rss+xml")
    assert feeds.poll_due() == []  # not due yet: the feed was read a moment ago
    world.tick(15 * 60)
    [made] = feeds.poll_due()
    assert made == post_id(server.url("/rss"), "https://blog.example/3")
    post = world.box.post("scheduled", made)
    assert post.parts == ("Three & more https://blog.example/3",)
    [item] = world.app.items.queued("default")
    assert item.id == made and item.due == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    world.tick(15 * 60)
    assert feeds.poll_due() == []
    assert posts(world) == {made}


def test_a_304_costs_no_parse(world: World, server: FeedServer) -> None:
    feeds = feeds_of(world)
    feeds.add(Feed(server.url("/rss")))
    parses = Counting(feeds)
    world.tick(15 * 60)
    assert feeds.poll_due() == []
    assert server.unchanged["/rss"] == 1 and parses.calls == 0
    assert feeds.views()[0]["last_poll"] == "2026-12-04T07:15:00Z"
    server.docs["/rss"] = (rss([("https://blog.example/3", "Three", ""), *FIRST]), "text/xml")
    world.tick(15 * 60)
    assert len(feeds.poll_due()) == 1 and parses.calls == 1


@pytest.mark.parametrize("path", ["/huge", "/bad", "/missing"])
def test_an_oversized_or_malformed_feed_is_refused_with_a_reason(
    world: World, server: FeedServer, path: str
) -> None:
    server.docs["/bad"] = (b"<html><body><p>no feed here", "text/html")
    reason = {
        "/huge": "the feed is larger than 5 MiB: refused",
        "/bad": "not a feed: ",
        "/missing": "the server answered HTTP 404",
    }[path]
    feeds = feeds_of(world)
    with pytest.raises(InvalidInput, match="cannot read the feed") as refused:
        feeds.add(Feed(server.url(path)))
    assert reason in refused.value.message and not (world.box.spool / FEEDS_FILE).exists()
    # The same feed listed by hand: the daemon's poll logs why and keeps it for `feed list`.
    (world.box.spool / FEEDS_FILE).write_text(f'[[feed]]\nurl = "{server.url(path)}"\n')
    assert feeds.poll_due() == []
    [row] = feeds.views()
    assert row["last_error"] is not None and row["last_error"].startswith(reason)
    assert "feed-refused" in world.log.getvalue() and reason in world.log.getvalue()
    assert posts(world) == set()


def test_the_first_poll_on_a_host_records_without_posting(world: World, server: FeedServer) -> None:
    # feeds.toml came from another host (through git): this host has seen nothing yet.
    (world.box.spool / FEEDS_FILE).write_text(f'[[feed]]\nurl = "{server.url("/rss")}"\n')
    feeds = feeds_of(world)
    assert feeds.poll_due() == [] and posts(world) == set()
    assert feeds.views()[0]["seen"] == 2
    server.docs["/rss"] = (rss([("https://blog.example/3", "Three", ""), *FIRST]), "text/xml")
    world.tick(15 * 60)
    assert len(feeds.poll_due()) == 1


def test_a_crash_before_the_entry_is_recorded_never_posts_it_twice(
    world: World, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = feeds_of(world)
    feeds.add(Feed(server.url("/rss")))
    server.docs["/rss"] = (rss([("https://blog.example/3", "Three", ""), *FIRST]), "text/xml")
    world.tick(15 * 60)
    saved = Feeds._save

    def crash(self: Feeds, state: object) -> None:
        if posts(world):  # the post is written; the process dies before it is recorded
            raise KeyboardInterrupt
        saved(self, state)  # type: ignore[arg-type]

    monkeypatch.setattr(Feeds, "_save", crash)
    with pytest.raises(KeyboardInterrupt):
        feeds.poll_due()
    monkeypatch.setattr(Feeds, "_save", saved)
    [made] = posts(world)
    assert feeds_of(world).poll_due() == []  # the entry is found as a post: recorded now
    assert posts(world) == {made}
    world.tick(15 * 60)
    assert feeds_of(world).poll_due() == [] and posts(world) == {made}


def test_an_atom_feed_into_drafts_with_the_summary_as_text(
    world: World, server: FeedServer
) -> None:
    server.docs["/atom"] = (atom([("urn:n:1", "Old", "x")]), "application/atom+xml")
    feeds = feeds_of(world)
    feeds.add(Feed(server.url("/atom"), draft=True, template="{title}\n\n{summary}\n{url}"))
    html = '<p>Caf&eacute; &amp; <a href="/x">bar</a></p><script>evil()</script><p>2 &lt; 3</p>'
    server.docs["/atom"] = (
        atom([("urn:n:2", "New", html), ("urn:n:1", "Old", "x")]),
        "application/atom+xml",
    )
    world.tick(15 * 60)
    [made] = feeds.poll_due()
    assert world.box.ids("drafts") == {made}
    assert world.box.post("drafts", made).parts == (
        "New\n\nCafé & bar\n\n2 < 3\nhttps://notes.example/2",
    )


def test_html_to_text_leaves_no_markup_and_decodes_entities() -> None:
    assert to_text("<p>a &amp; b&nbsp;c</p><ul><li>one</li><li>two</li></ul>") == (
        "a & b c\n\none\n\ntwo"
    )
    assert to_text("x<br>y<style>p {}</style>&#8212;&#x263A;") == "x\n\ny—☺"
    assert to_text("<p>---</p>") == "—"  # never a thread's separator
    entry = Entry("k", "T", "https://u", "")
    assert entry_text("{title} {summary} {url}", entry) == "T https://u"
    assert entry_text("{summary:.3}", Entry("k", "", "", "abcdef")) == "abc"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[[feed]]\nurl = "ftp://x"\n', "is not an http:// or https:// address"),
        ('[[feed]]\nurl = "https://x"\ntemplat = "{title}"\n', "unknown key 'templat'"),
        ('[[feed]]\nurl = "https://x"\ntemplate = "{body}"\n', "unknown field {body}"),
        ('[[feed]]\nurl = "https://x"\ntemplate = "{title"\n', "template '{title'"),
        ('[[feed]]\nurl = "https://x"\nqueue = "a"\ndraft = true\n', "exclude each other"),
        ('[[feed]]\nurl = "https://x"\n[[feed]]\nurl = "https://x"\n', "listed twice"),
        ("feed = 3\n", "feed must be [[feed]] tables"),
        ("[[feed]]\nurl = \n", "feeds.toml: "),
        ("[[feed]]\nqueue = 'a'\n", 'feed 1 has no url = "..."'),
    ],
)
def test_a_bad_feeds_toml_is_an_error_naming_the_feed_and_key(text: str, error: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        parse_feeds(text)
    assert error in bad.value.message and "feeds.toml" in bad.value.hint


def test_a_bad_feeds_toml_is_logged_once_and_never_raised(world: World) -> None:
    (world.box.spool / FEEDS_FILE).write_text('[[feed]]\nurl = "gopher://x"\n')
    feeds = feeds_of(world)
    assert feeds.poll_due() == [] and feeds.poll_due() == []
    assert world.log.getvalue().count("ERROR feeds ") == 1
    assert feeds.next_poll() is None
    # Neither a FIFO nor a file too large to be a list of feeds is read (nor waited on).
    path = world.box.spool / FEEDS_FILE
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(InvalidInput, match="is not a regular file"):
        feeds.feeds()
    path.unlink()
    path.write_bytes(b"#" * (6 * 1024 * 1024))
    with pytest.raises(InvalidInput, match="is larger than 5 MiB"):
        feeds.feeds()


def test_feed_remove_keeps_every_other_byte(world: World, server: FeedServer) -> None:
    path = world.box.spool / FEEDS_FILE
    other = '# my feeds\n[[feed]]\nurl = "https://other.example/feed"  # keep\ndraft = true\n'
    path.write_text(other)
    feeds = feeds_of(world)
    feeds.add(Feed(server.url("/rss"), template="{title}"))
    assert path.read_text() == other + f'\n[[feed]]\nurl = "{server.url("/rss")}"\n' + (
        'template = "{title}"\n'
    )
    state = world.app.state_dir / "feeds.json"
    assert server.url("/rss") in json.loads(state.read_text())["feeds"]
    feeds.remove(server.url("/rss"))
    assert path.read_text() == other + "\n"
    assert server.url("/rss") not in json.loads(state.read_text())["feeds"]
    with pytest.raises(NotFound):
        feeds.remove(server.url("/rss"))
    path.unlink()
    with pytest.raises(NotFound):
        feeds.remove(server.url("/rss"))


def test_feed_add_refuses_a_duplicate_an_unknown_queue_and_a_bad_template(
    world: World, server: FeedServer
) -> None:
    feeds = feeds_of(world)
    feeds.add(Feed(server.url("/rss")))
    with pytest.raises(InvalidInput, match="already a feed"):
        feeds.add(Feed(server.url("/rss")))
    with pytest.raises(InvalidInput, match="no queue named 'nope'"):
        feeds.add(Feed(server.url("/rss") + "?2", queue="nope"))
    world.box.extra = ""  # no queue at all: not even the default one
    world.reload()
    with pytest.raises(InvalidInput, match="no queue named 'default'"):
        feeds.add(Feed(server.url("/rss") + "?2"))
    server.docs["/rss3"] = server.docs["/rss"]
    assert feeds.add(Feed(server.url("/rss3"), draft=True)) == 2
    with pytest.raises(InvalidInput, match=re.escape("unknown field {x}")):
        feeds.add(Feed(server.url("/rss") + "?2", template="{x}"))
    assert len(feeds.feeds()) == 2


def test_post_ids_come_from_the_feed_and_the_entry_alone() -> None:
    a = post_id("https://blog.example/feed", "urn:1")
    assert a == post_id("https://blog.example/feed", "urn:1")
    assert a != post_id("https://blog.example/feed", "urn:2")
    assert a.endswith("-blog-example") and len(a.split("-")[0]) == 12


def test_no_fetch_starts_while_the_daemon_is_busy(world: World, server: FeedServer) -> None:
    # The daemon's `busy`: a post is due or a shutdown began. The feed waits for the next pass.
    (world.box.spool / FEEDS_FILE).write_text(f'[[feed]]\nurl = "{server.url("/rss")}"\n')
    feeds = feeds_of(world)
    assert (feeds.next_poll() or NOW.timestamp() + 1) <= NOW.timestamp()  # due at once
    assert feeds.poll_due(lambda: True) == [] and server.requests == {}
    feeds.poll_due(lambda: False)
    assert server.requests == {"/rss": 1}
    assert feeds.next_poll() == NOW.timestamp() + 15 * 60


def test_a_password_in_a_feeds_url_never_reaches_the_log_or_an_error(
    world: World, server: FeedServer
) -> None:
    url = server.url("/private").replace("://", "://me:s3cret@")
    feeds = feeds_of(world)
    with pytest.raises(InvalidInput) as refused:
        feeds.add(Feed(url))
    assert "me:***@127.0.0.1" in refused.value.message and "s3cret" not in refused.value.message
    (world.box.spool / FEEDS_FILE).write_text(f'[[feed]]\nurl = "{url}"\n')
    feeds.poll_due()
    assert "me:***@127.0.0.1" in world.log.getvalue() and "s3cret" not in world.log.getvalue()
    assert "s3cret" not in (feeds.views()[0]["last_error"] or "")
    assert server.requests["/private"] == 2  # it was asked for, with the password as Basic auth


@pytest.mark.realtime
def test_a_server_that_trickles_is_given_up_on_at_the_timeout(
    world: World, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each read of the trickle comes in time; the fetch as a whole does not.
    monkeypatch.setattr(feeds_module, "TIMEOUT", 1.0)
    (world.box.spool / FEEDS_FILE).write_text(f'[[feed]]\nurl = "{server.url("/slow")}"\n')
    feeds = feeds_of(world)
    started = time.monotonic()
    assert feeds.poll_due() == []
    assert time.monotonic() - started < 5
    assert feeds.views()[0]["last_error"] == "gave up after 1s: the server is too slow"
