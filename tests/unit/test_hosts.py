"""hosts.py: this host's name, who sends an account, and the idempotency material every host
derives alike from a post (plurspool(5), SEVERAL MACHINES)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from plurspool.hosts import host_name, idempotency_key, record_keys, sender_of
from plurspool.post import Media, parse, render

DUE = datetime(2026, 6, 1, 7, 30, tzinfo=UTC)


def key(
    text: str = "Hello",
    *,
    post_id: str = "p",
    account: str = "a",
    due: datetime = DUE,
    **fields: Any,
) -> str:
    return idempotency_key(post_id, parse(render(parts=[text], **fields)), account, due)


def test_the_host_name_is_plurspool_host_else_the_systems() -> None:
    assert host_name({"PLURSPOOL_HOST": "laptop"}) == "laptop"
    assert host_name({"PLURSPOOL_HOST": "  laptop \n"}) == "laptop"
    assert host_name({"PLURSPOOL_HOST": " "}) == socket.gethostname()
    assert host_name({}) == socket.gethostname()


def test_an_account_is_sent_by_its_senders_host_else_daemon_host_else_any() -> None:
    senders = {"server": ("mastodon", "nostr"), "laptop": ("bluesky",)}
    assert sender_of("nostr", senders, "pi") == "server"
    assert sender_of("bluesky", senders, None) == "laptop"
    assert sender_of("log", senders, "pi") == "pi"
    assert sender_of("log", senders, None) is None
    assert sender_of("log", {}, None) is None


def test_the_key_is_the_same_for_the_same_post_whatever_writes_back() -> None:
    k = key()
    assert len(k) == 32 and int(k, 16) >= 0
    assert key() == k  # any host, any attempt
    # What plurspool writes while sending, or where the file happens to be, changes nothing.
    written = parse(b"---\nresults:\n  b:\n    id: '1'\n    at: 2026-06-01T07:30:02Z\n---\nHello\n")
    assert idempotency_key("p", written, "a", DUE) == k
    assert idempotency_key("p", written, "a", DUE + timedelta(milliseconds=300)) == k


def test_the_key_changes_with_id_content_account_time_and_retry() -> None:
    k = key()
    others = [
        key(post_id="q"),
        key(account="b"),
        key(due=DUE + timedelta(seconds=1)),
        key("Hello!"),
        key(cw="spoilers"),
        key(visibility="unlisted"),
        key(language="de"),
        key(media=[Media("media/a.png", "a dot")]),
        idempotency_key(
            "p", parse(b"---\nretried: 2026-06-01T08:00:00Z-abc\n---\nHello\n"), "a", DUE
        ),
    ]
    assert k not in others and len(set(others)) == len(others)


def test_record_keys_sit_in_the_posts_second_and_differ_between_posts() -> None:
    keys = record_keys(key(), DUE, 3)
    assert [m for m, _ in keys] == sorted({m for m, _ in keys})
    assert all(int(DUE.timestamp()) == m // 1_000_000 for m, _ in keys)
    assert len({c for _, c in keys}) == 1 and 0 <= keys[0][1] < 1024
    assert record_keys(key(), DUE, 3) == keys  # any host
    assert record_keys(key("Hi"), DUE, 1)[0] != keys[0]
