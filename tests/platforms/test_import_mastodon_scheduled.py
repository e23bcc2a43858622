"""`plurspool import mastodon-scheduled` against mastodon-mock (which serves Mastodon's
/api/v1/scheduled_statuses): statuses scheduled on the server become files in scheduled/, and
with --delete-remote leave the server only once their files are durable, never within 5
minutes of their time. Media are downloaded from a loopback server (the mock keeps none)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plurspool.config import load
from plurspool.imports import Row
from plurspool.imports import mastodon_scheduled as remote
from plurspool.platforms.mastodon import open_client
from tests.daemon_helpers import Sandbox
from tests.helpers import invoke, png
from tests.peers.mastodon_mock import Mock, User, request
from tests.peers.mastodon_mock import mastodon_mock as mastodon_mock
from tests.platforms.adapters import secret_file

pytestmark = pytest.mark.peers


def schedule(mock: Mock, user: User, text: str, at: datetime, **params: Any) -> str:
    """A status scheduled on the server; its scheduled-status ID."""
    body = {"status": text, "scheduled_at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"), **params}
    code, data = request(mock.url, "POST", "/api/v1/statuses", body, token=user.token)
    assert code == 200, data
    assert "params" in data, f"published at once, not scheduled: {data}"
    return str(data["id"])


def on_server(mock: Mock, user: User) -> list[str]:
    code, data = request(mock.url, "GET", "/api/v1/scheduled_statuses", token=user.token)
    assert code == 200, data
    return sorted(str(s["id"]) for s in data)


@pytest.fixture
def setup(mastodon_mock: Mock, tmp_path: Path) -> tuple[Sandbox, User]:
    user = mastodon_mock.new_user()
    box = Sandbox(tmp_path)
    token = secret_file(tmp_path / "masto.token", user.token)
    box.accounts["masto"] = (
        f'platform = "mastodon"\ninstance = "{mastodon_mock.url}"\ntoken_file = "{token}"\n'
    )
    box.write_config()
    return box, user


def test_scheduled_statuses_become_files_then_leave_the_server(
    mastodon_mock: Mock, setup: tuple[Sandbox, User]
) -> None:
    box, user = setup
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    first = schedule(
        mastodon_mock, user, "Tomorrow's news", soon, spoiler_text="news", visibility="private",
        language="de",
    )  # fmt: skip
    second = schedule(mastodon_mock, user, "The day after", soon + timedelta(days=1))
    run = invoke(["import", "mastodon-scheduled", "-p", "masto"], box.env)
    assert run.code == 0, run.err
    ids = run.out.split()
    assert len(ids) == 2 and box.ids("scheduled") == set(ids)
    assert "the server still has them" in run.err
    news = box.post("scheduled", ids[0])
    assert news.parts == ("Tomorrow's news",)
    assert news.platforms == ("masto",)
    assert (news.cw, news.visibility, news.language) == ("news", "followers", "de")
    assert news.schedule is not None
    assert datetime.fromisoformat(news.schedule) == soon
    assert box.post("scheduled", ids[1]).parts == ("The day after",)
    assert on_server(mastodon_mock, user) == sorted([first, second])

    # Again, with --delete-remote: nothing new, and both go from the server (their files are
    # in the spool, durable since the first run).
    again = invoke(["import", "mastodon-scheduled", "-p", "masto", "--delete-remote"], box.env)
    assert again.code == 0, again.err
    assert again.out == ""
    assert "nothing new: 2 were imported before" in again.err
    assert "deleted 2 on the server" in again.err
    assert on_server(mastodon_mock, user) == []
    assert box.ids("scheduled") == set(ids)


def test_delete_remote_never_within_5_minutes_of_its_time(
    mastodon_mock: Mock, setup: tuple[Sandbox, User]
) -> None:
    box, user = setup
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    kept_id = schedule(mastodon_mock, user, "Close to its time", at)
    later_id = schedule(mastodon_mock, user, "Later", at + timedelta(minutes=6))
    config = load(box.config_path)
    account = config.accounts["masto"]
    client = open_client(account)
    try:
        rows, remotes = remote.fetch(client, account)
        assert [r.text for r in rows if isinstance(r, Row)] == ["Close to its time", "Later"]
        # As if it were 4 minutes before the first one's time: it stays, the later one goes.
        deleted, kept = remote.delete(client, account, remotes, lambda: at - timedelta(minutes=4))
    finally:
        client.close()
    assert [r.id for r in deleted] == [later_id]
    assert [(r.id, why) for r, why in kept] == [
        (kept_id, "due within 5 minutes: Mastodon may be publishing it")
    ]
    assert on_server(mastodon_mock, user) == [kept_id]


def test_nothing_is_deleted_when_the_import_fails(
    mastodon_mock: Mock, setup: tuple[Sandbox, User]
) -> None:
    box, user = setup
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    good = schedule(mastodon_mock, user, "Fine", at)
    poll = schedule(
        mastodon_mock, user, "Vote", at, poll={"options": ["a", "b"], "expires_in": 3600}
    )
    run = invoke(["import", "mastodon-scheduled", "-p", "masto", "--delete-remote"], box.env)
    assert run.code == 3
    assert f"scheduled status {poll}: it has a poll" in run.err
    assert box.ids("scheduled") == set()
    assert on_server(mastodon_mock, user) == sorted([good, poll])


def test_an_account_that_is_not_mastodon(setup: tuple[Sandbox, User]) -> None:
    box, _ = setup
    run = invoke(["import", "mastodon-scheduled", "-p", "nope"], box.env)
    assert run.code == 3
    assert "nope is not a configured mastodon account" in run.err and "masto" in run.err


@pytest.fixture
def media_server() -> Iterator[str]:
    """A loopback HTTP server with one PNG at /files/cat.png (and 404 elsewhere)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/files/cat.png":
                body = png()
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_media_are_downloaded_with_their_alt_text(media_server: str) -> None:
    """A scheduled status as Mastodon serves one with an attachment (the mock keeps none)."""
    import requests

    status = {
        "id": "109",
        "scheduled_at": "2030-01-01T09:00:00.000Z",
        "params": {"text": "With a cat", "visibility": None, "poll": None},
        "media_attachments": [
            {"id": "77", "type": "image", "url": f"{media_server}/files/cat.png",
             "description": "A cat on a chair"},
        ],
    }  # fmt: skip
    with requests.Session() as session:
        row, at = remote._row(status, "scheduled status 109", "masto", "https://x", session.get)
        assert at == datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
        assert [(m.path, m.alt) for m in row.media] == [
            ("media/mastodon/masto-77.png", "A cat on a chair")
        ]
        assert row.files == {"mastodon/masto-77.png": png()}
        status["media_attachments"][0]["url"] = f"{media_server}/files/gone.png"  # type: ignore[index]
        with pytest.raises(ValueError, match=r"answered HTTP 404"):
            remote._row(status, "scheduled status 109", "masto", "https://x", session.get)
