"""Feeds from the command line and the daemon (plurspool(1), `feed`, FEEDS): `feed add|list|
remove` with their output and exit codes, `send --once` polling the feeds that are due, and the
daemon polling a feed served on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plurspool.feeds import post_id
from tests.daemon_helpers import Sandbox, wait_for
from tests.feedserver import FeedServer, feed_server, rss
from tests.helpers import Run, invoke

OLD = [("https://blog.example/2", "Two", "<p>b</p>"), ("https://blog.example/1", "One", "a")]
NEW = ("https://blog.example/3", "Three", "<p>It&rsquo;s <em>new</em></p>")


def ok(run: Run) -> Run:
    assert run.code == 0, f"exit {run.code}\nstdout: {run.out}\nstderr: {run.err}"
    return run


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as s:
        s.docs["/feed"] = (rss(OLD), "application/rss+xml")
        yield s


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.extra = '[queues.default]\nslots = ["daily 09:00"]\n[feeds]\npoll_interval = "1s"\n'
    box.write_config()
    yield box
    box.cleanup()


def test_feed_add_list_and_remove(box: Sandbox, server: FeedServer) -> None:
    url = server.url("/feed")
    added = ok(invoke(["feed", "add", url, "--draft", "--template", "{title}: {url}"], box.env))
    assert f"added {url}: 2 entries seen, none posted; new ones go to drafts" in added.err
    assert box.ids("drafts") == box.ids("scheduled") == set()
    [row] = ok(invoke(["feed", "list", "--json"], box.env)).json()
    assert set(row) == {"url", "queue", "draft", "template", "last_poll", "last_error", "seen"}
    assert (row["url"], row["queue"], row["draft"], row["seen"]) == (url, None, True, 2)
    assert row["template"] == "{title}: {url}" and row["last_error"] is None
    assert row["last_poll"].endswith("Z")
    text = ok(invoke(["feed", "list"], box.env)).out.splitlines()
    assert text[0].split() == ["FEED", "INTO", "LAST", "POLL", "SEEN", "LAST", "ERROR"]
    assert text[1].split()[:2] == [url, "drafts"]
    # Refusals: a duplicate, a bad template, a feed that is no feed, both targets.
    assert invoke(["feed", "add", url], box.env).code == 3
    bad = invoke(["feed", "add", url + "?x", "--template", "{body}"], box.env)
    assert bad.code == 3 and "unknown field {body}" in bad.err
    missing = invoke(["feed", "add", server.url("/nothing")], box.env)
    assert missing.code == 3 and "HTTP 404" in missing.err and "nothing was added" in missing.err
    assert invoke(["feed", "add", url + "?y", "--draft", "-q", "default"], box.env).code == 2
    assert len(ok(invoke(["feed", "list", "--json"], box.env)).json()) == 1
    assert "removed" in ok(invoke(["feed", "remove", url], box.env)).err
    assert ok(invoke(["feed", "list", "--json"], box.env)).json() == []
    gone = invoke(["feed", "remove", url], box.env)
    assert gone.code == 4 and "no feed" in gone.err


@pytest.mark.slow
def test_send_once_polls_the_feeds_that_are_due(box: Sandbox, server: FeedServer) -> None:
    url = server.url("/feed")
    ok(invoke(["feed", "add", url], box.env))
    server.docs["/feed"] = (rss([NEW, *OLD]), "application/rss+xml")
    made = post_id(url, NEW[0])
    # The feed was read by `feed add` just now: due again one poll_interval (1 s) later.
    wait_for(lambda: ok(box.cli("send", "--once")) and box.ids("scheduled"), 20, "the entry's post")
    assert box.ids("scheduled") == {made}
    assert box.post("scheduled", made).parts == ("Three https://blog.example/3",)
    requests = server.requests["/feed"]
    wait_for(lambda: ok(box.cli("send", "--once")) and server.requests["/feed"] > requests, 20)
    assert server.unchanged["/feed"] >= 1 and box.ids("scheduled") == {made}
    # A host that is not the sending one polls nothing.
    box.daemon_keys["host"] = "elsewhere"
    box.write_config()
    requests = server.requests["/feed"]
    assert "not-sending" in ok(box.cli("send", "--once")).err
    assert server.requests["/feed"] == requests


@pytest.mark.realtime
def test_the_daemon_polls_a_feed_and_posts_each_new_entry_once(
    box: Sandbox, server: FeedServer
) -> None:
    url = server.url("/feed")
    ok(invoke(["feed", "add", url, "--draft"], box.env))
    daemon = box.start()
    daemon.wait_event("started")
    server.docs["/feed"] = (rss([NEW, *OLD]), "application/rss+xml")
    made = post_id(url, NEW[0])
    daemon.until(lambda: box.ids("drafts"), 20, "the entry's post in drafts/")
    assert box.ids("drafts") == {made}
    assert box.post("drafts", made).parts == ("Three https://blog.example/3",)
    daemon.wait_event("feed-post", f"id={made}")
    # Two more polls (both answered 304): still one post.
    seen = server.unchanged.get("/feed", 0)
    daemon.until(lambda: server.unchanged.get("/feed", 0) >= seen + 2, 20, "two more polls")
    assert box.ids("drafts") == {made} and box.ids("scheduled") == set()
    # A feed that turns malformed is refused with its reason, and the daemon keeps going.
    server.docs["/feed"] = (b"<html>gone</html>", "text/html")
    line = daemon.wait_event("feed-refused", f"feed={url}")
    assert "not a feed" in line
    assert daemon.stop() == 0
