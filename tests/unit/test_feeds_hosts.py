"""Which host polls the feeds when several send (plurspool(1), FEEDS; plurspool(5), SEVERAL
MACHINES): `daemon.host`, else the first host of `[senders]`, so that one host alone makes an
entry's post; two hosts in process, each its own spool copy and state directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from plurspool.feeds import FEEDS_FILE, Feeds
from plurspool.log import Log
from tests.daemon_helpers import Sandbox, World, in_process
from tests.feedserver import feed_server, rss
from tests.unit.test_feeds import FIRST, NOW, QUEUES

NEW = [("https://blog.example/3", "Three", ""), *FIRST]


def host(tmp_path: Path, name: str, senders: str, daemon_host: str | None, url: str) -> World:
    box = Sandbox(tmp_path / name)
    if daemon_host is not None:
        box.daemon_keys["host"] = daemon_host
    box.exec_account("x")
    box.exec_account("y")
    box.top = 'timezone = "UTC"'
    box.extra = QUEUES + senders
    w = in_process(box)
    w.clock[0] = NOW
    (box.spool / FEEDS_FILE).write_text(f'[[feed]]\nurl = "{url}"\n')  # as synced
    return w


def polls(w: World, name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Feeds, list[str]]:
    monkeypatch.setenv("PLURSPOOL_HOST", name)
    feeds = Feeds(w.app, Log(stream=w.log))
    return feeds, feeds.poll_due()


@pytest.mark.parametrize(
    ("senders", "daemon_host", "poller"),
    [
        ('[senders]\na = ["x"]\nb = ["y"]\n', None, "a"),  # the first of [senders]
        ('[senders]\na = ["x"]\n', "b", "b"),  # daemon.host, though a sends x
    ],
)
def test_one_host_polls_the_feeds_when_several_send(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    senders: str,
    daemon_host: str | None,
    poller: str,
) -> None:
    with feed_server() as server:
        server.docs["/rss"] = (rss(FIRST), "application/rss+xml")
        url = server.url("/rss")
        pair = {n: host(tmp_path, n, senders, daemon_host, url) for n in ("a", "b")}
        for name, w in pair.items():
            polls(w, name, monkeypatch)  # the first poll records, posts nothing
        server.docs["/rss"] = (rss(NEW), "application/rss+xml")
        made = {}
        for name, w in pair.items():
            w.tick(15 * 60)
            feeds, made[name] = polls(w, name, monkeypatch)
            if name != poller:
                assert feeds.next_poll() is None
                assert f"polled_by={poller}" in w.log.getvalue()
        assert [n for n, ids in made.items() if ids] == [poller]
        assert len(made[poller]) == 1
