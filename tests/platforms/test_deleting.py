"""Expiring posts and `plurspool delete` against the real peers: mastodon-mock, the reference
PDS and both Nostr relays.

A post with a short `expires` sent by the real daemon is gone from mastodon-mock and the PDS after
its time, the relays received the kind-5 deletion request, and the file records `deleted_at` for
every account; `plurspool delete` does the same at once; a kill between a deletion and its record
does not fail the next pass; 40 deletions due at once on one Mastodon account are paced by the
30-per-30-minutes window (an injected clock), none failed.
"""

from __future__ import annotations

import io
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plurspool.app import App
from plurspool.config import load
from plurspool.deleting import Deletions
from plurspool.log import Log
from plurspool.post import Result, with_record
from tests.daemon_helpers import Sandbox, iso, text_of, wait_for
from tests.peers.bluesky_pds import Pds
from tests.peers.bluesky_pds import pds as pds  # the session fixtures
from tests.peers.mastodon_mock import Mock, request
from tests.peers.mastodon_mock import mastodon_mock as mastodon_mock
from tests.peers.nostr_relays import nostr_relays as nostr_relays
from tests.platforms.adapters import BlueskyAdapter, MastodonAdapter, NostrAdapter, relay_query

pytestmark = [pytest.mark.peers, pytest.mark.slow]


def everywhere(
    tmp_path: Path, mock: Mock, the_pds: Pds, relays: list[str]
) -> tuple[Sandbox, MastodonAdapter, BlueskyAdapter, NostrAdapter]:
    box = Sandbox(tmp_path)
    masto, bsky, nos = (
        MastodonAdapter(mock, tmp_path),
        BlueskyAdapter(the_pds, tmp_path),
        NostrAdapter(relays, tmp_path),
    )
    box.accounts.update(masto=masto.section(), bsky=bsky.section(), nos=nos.section())
    box.default_platforms += ["masto", "bsky", "nos"]
    box.write_config()
    return box, masto, bsky, nos


def deletion_requests(nos: NostrAdapter) -> dict[str, list[dict[str, Any]]]:
    """Each relay's kind-5 events by the account."""
    flt = {"authors": [nos.pubkey], "kinds": [5], "limit": 50}
    return {url: relay_query(url, flt) for url in nos.relays}


@pytest.mark.realtime
def test_an_expiring_thread_is_deleted_from_every_peer_after_its_time(
    tmp_path: Path, mastodon_mock: Mock, pds: Pds, nostr_relays: list[str]
) -> None:
    box, masto, bsky, nos = everywhere(tmp_path, mastodon_mock, pds, nostr_relays)
    text = "---\nexpires: 12s\n---\nGone in a moment.\n\n---\n\nThe second part, gone too.\n"
    box.deliver("new", "brief", text)
    daemon = box.start()
    try:
        wait_for(lambda: box.is_in("brief", "sent"), 60, what="the post sent")
        sent = box.post("sent", "brief")
        assert len(masto.posts()) == 2 and len(bsky.posts()) == 2 and len(nos.posts()) == 2
        notes = {p.ref for p in nos.posts()}
        for url in nos.relays:  # NIP-40: the relays may drop the notes by themselves
            for ev in relay_query(url, {"ids": sorted(notes)}):
                [expiration] = [t for t in ev["tags"] if t[0] == "expiration"]
                assert int(expiration[1]) == ev["created_at"] + 12

        def all_deleted() -> bool:
            results = box.post("sent", "brief").results
            return all(r.deleted_at for r in results.values())

        wait_for(all_deleted, 60, what="deleted_at for every account")
    finally:
        assert daemon.stop() == 0
    post = box.post("sent", "brief")
    for account in ("masto", "bsky", "nos"):
        r = post.results[account]
        assert r.deleted_at is not None and r.at is not None
        assert r.deleted_at >= iso(datetime.fromisoformat(r.at).timestamp() + 12)
        assert (r.id, r.url) == (sent.results[account].id, sent.results[account].url)
    assert masto.posts() == [] and bsky.posts() == []
    for url, events in deletion_requests(nos).items():
        [request_event] = events
        deleted = {t[1] for t in request_event["tags"] if t[0] == "e"}
        assert deleted == notes, url
        assert [t for t in request_event["tags"] if t[0] == "k"] == [["k", "1"]]
    assert box.is_in("brief", "sent") and post.parts == sent.parts
    assert "delete-failed" not in daemon.text()


def test_delete_takes_a_sent_post_back_now_and_refuses_what_was_never_sent(
    tmp_path: Path, mastodon_mock: Mock, pds: Pds, nostr_relays: list[str]
) -> None:
    box, masto, bsky, nos = everywhere(tmp_path, mastodon_mock, pds, nostr_relays)
    run = box.cli("post", "Taken back soon.", "--json")
    assert run.code == 0, run.err
    post_id = run.json()["id"]
    assert len(masto.posts()) == len(bsky.posts()) == len(nos.posts()) == 1
    # No terminal to ask, no --force: nothing is deleted.
    refused = box.cli("delete", post_id)
    assert refused.code == 2 and "--force" in refused.err
    assert len(masto.posts()) == 1
    run = box.cli("delete", post_id, "-p", "masto", "--force", "--json")
    assert run.code == 0, run.err
    view = run.json()
    assert view["results"]["masto"]["deleted_at"] is not None
    assert view["results"]["bsky"]["deleted_at"] is None and view["deleted_at"] is None
    assert masto.posts() == [] and len(bsky.posts()) == 1
    run = box.cli("delete", post_id, "--force", "--json")
    assert run.code == 0, run.err
    view = run.json()
    assert view["deleted_at"] is not None and view["state"] == "sent"
    assert all(r["deleted_at"] for r in view["results"].values())
    assert bsky.posts() == [] and all(deletion_requests(nos).values())
    shown = box.cli("show", post_id)
    assert shown.code == 0 and "(deleted " in shown.out
    listed = box.cli("list", "--state", "sent")
    assert listed.code == 0 and "deleted" in listed.out
    stats = box.cli("stats", "--json")
    assert stats.code == 0 and stats.json()["deleted"] == 1
    # Again: nothing left; a post never sent is refused with a hint to cancel it.
    again = box.cli("delete", post_id, "--force")
    assert again.code == 0 and "nothing left to delete" in again.err
    box.deliver("scheduled", "later", f"---\nschedule: {iso(time.time() + 86400)}\n---\nx\n")
    never = box.cli("delete", "later", "--force")
    assert never.code == 3 and "plurspool cancel later" in never.err
    unknown = box.cli("delete", post_id, "-p", "elsewhere", "--force")
    assert unknown.code == 3 and "was not sent to elsewhere" in unknown.err


def test_a_kill_between_a_deletion_and_its_record_does_not_fail_the_next_pass(
    tmp_path: Path, mastodon_mock: Mock, pds: Pds, nostr_relays: list[str]
) -> None:
    box, masto, bsky, nos = everywhere(tmp_path, mastodon_mock, pds, nostr_relays)
    text = "---\nexpires: 1s\n---\nTo be killed over.\n"
    box.deliver("new", "k", text)
    run = box.cli("send", "--once")
    assert run.code == 0 and box.is_in("k", "sent"), (run.err, box.where("k"))
    at = box.post("sent", "k").results["masto"].at
    assert at is not None
    wait_for(lambda: time.time() > datetime.fromisoformat(at).timestamp() + 1.5, 10)
    # A child makes the deletions and is SIGKILLed before the ledger hears of any of them.
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child dies by its own hand
        import plurspool.ledger as ledger_mod

        def killed(*args: Any, **kwargs: Any) -> None:
            os.kill(os.getpid(), signal.SIGKILL)

        ledger_mod.Ledger.record_deletion = killed  # type: ignore[method-assign]
        os.environ.clear()
        os.environ.update(box.env)
        from plurspool.cli import cli

        try:
            cli.main(args=["send", "--once"], prog_name="plurspool")
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert bsky.posts() == []  # the first deletion (accounts in order) went through
    assert len(masto.posts()) == 1
    assert all(r.deleted_at is None for r in box.post("sent", "k").results.values())
    run = box.cli("send", "--once")
    assert run.code == 0, run.err
    post = box.post("sent", "k")
    assert all(r.deleted_at for r in post.results.values()), post.results
    assert masto.posts() == [] and bsky.posts() == []
    assert all(len(events) == 1 for events in deletion_requests(nos).values())
    assert box.post("sent", "k").results["masto"].error is None


def test_forty_deletions_due_at_once_on_one_mastodon_account_are_paced(
    tmp_path: Path, mastodon_mock: Mock
) -> None:
    box = Sandbox(tmp_path)
    masto = MastodonAdapter(mastodon_mock, tmp_path)
    box.accounts["masto"] = masto.section()
    box.write_config()
    clock = [datetime.now(UTC).replace(microsecond=0)]
    app = App(load(box.config_path, env=box.env), clock=lambda: clock[0])
    app.spool.ensure()
    sent_at = iso(clock[0].timestamp() - 120)
    for n in range(40):
        code, status = request(
            mastodon_mock.url, "POST", "/api/v1/statuses", {"status": f"n{n}"}, masto.user.token
        )
        assert code == 200, status
        data = f"---\nplatforms: [masto]\nexpires: 1m\n---\nn{n}\n".encode()
        result = Result(id=str(status["id"]), url=status["url"], attempts=1, at=sent_at)
        box.deliver("sent", f"p{n:02}", with_record(data, {"masto": result}, 1).decode())
    assert len(masto.posts()) == 40
    try:
        d = Deletions(app, Log(stream=io.StringIO()))
        first = d.run(d.expired())
        assert len(first.deleted) == 30 and first.failed == {} and len(first.deferred) == 10
        assert len(masto.posts()) == 10
        clock[0] += timedelta(minutes=29)
        assert d.run(d.expired()).deleted == {}
        clock[0] += timedelta(minutes=1)
        second = d.run(d.expired())
        assert len(second.deleted) == 10 and second.failed == {}
        assert masto.posts() == []
        assert all(box.post("sent", f"p{n:02}").results["masto"].deleted_at for n in range(40))
    finally:
        app.close()


def test_copies_already_gone_count_as_deleted(
    tmp_path: Path, mastodon_mock: Mock, pds: Pds, nostr_relays: list[str]
) -> None:
    box, masto, bsky, _ = everywhere(tmp_path, mastodon_mock, pds, nostr_relays)
    run = box.cli("post", "Gone by hand first.", "-p", "masto", "-p", "bsky", "--json")
    assert run.code == 0, run.err
    view = run.json()
    [status], [record] = masto.posts(), bsky.posts()
    code, _ = request(
        mastodon_mock.url, "DELETE", f"/api/v1/statuses/{status.ref}", token=masto.user.token
    )
    assert code == 200
    repo, collection, rkey = record.ref.removeprefix("at://").split("/")
    body = {"repo": repo, "collection": collection, "rkey": rkey}
    code, out, _ = pds.call("com.atproto.repo.deleteRecord", body=body, token=bsky.me.access_jwt)
    assert code == 200, out
    assert masto.posts() == [] and bsky.posts() == []
    run = box.cli("delete", view["id"], "--force", "--json")
    assert run.code == 0, run.err
    assert all(r["deleted_at"] for r in run.json()["results"].values())
    assert "not deleted" not in run.err


@pytest.mark.realtime
def test_a_delete_that_must_wait_is_finished_by_the_daemon(
    tmp_path: Path, mastodon_mock: Mock
) -> None:
    """`plurspool delete` answered 503 by the server says the deletion is recorded, and the
    daemon makes it later without the command being run again."""
    box = Sandbox(tmp_path)
    masto = MastodonAdapter(mastodon_mock, tmp_path)
    box.accounts["masto"] = masto.section()
    box.daemon_keys["retry_delay"] = "1s"
    box.write_config()
    run = box.cli("post", "Taken back later.", "-p", "masto", "--json")
    assert run.code == 0, run.err
    post_id = run.json()["id"]
    assert len(masto.posts()) == 1
    mastodon_mock.add_fault(
        {
            "match": {"methods": ["DELETE"], "path": "/api/v1/statuses/*"},
            "effect": {"type": "status", "status": 503},
            "count": 1,
        }
    )
    try:
        run = box.cli("delete", post_id, "--force")
    finally:
        mastodon_mock.clear_faults()
    assert run.code == 1, run.err
    assert "not deleted yet: masto: " in run.err and "recorded: the daemon deletes it" in run.err
    assert len(masto.posts()) == 1
    assert box.post("sent", post_id).results["masto"].deleted_at is None
    daemon = box.start()
    try:
        wait_for(
            lambda: box.post("sent", post_id).results["masto"].deleted_at is not None,
            30,
            what="deleted_at written by the daemon",
        )
    finally:
        assert daemon.stop() == 0
    assert masto.posts() == []
    assert "delete-failed" not in daemon.text()


def test_a_deletion_refused_for_good_runs_on_failure_with_event_delete(
    tmp_path: Path, mastodon_mock: Mock
) -> None:
    box = Sandbox(tmp_path)
    masto = MastodonAdapter(mastodon_mock, tmp_path)
    box.accounts["masto"] = masto.section()
    marker = tmp_path / "marker"
    script = 'printf "%s|%s|%s|%s|%s\\n" "$1" "$2" "$3" "$4" "$5" >> "$0"'
    hook = ["sh", "-c", script, str(marker), "{event}", "{id}", "{account}", "{path}", "{error}"]
    box.daemon_keys["on_failure"] = hook
    box.write_config()
    box.deliver("new", "gone", "---\nplatforms: [masto]\nexpires: 1s\n---\nNot for long.\n")
    run = box.cli("send", "--once")
    assert run.code == 0 and box.is_in("gone", "sent"), run.err
    at = box.post("sent", "gone").results["masto"].at
    assert at is not None
    wait_for(lambda: time.time() > datetime.fromisoformat(at).timestamp() + 1.5, 10)
    mastodon_mock.add_fault(
        {
            "match": {"methods": ["DELETE"], "path": "/api/v1/statuses/*"},
            "effect": {"type": "status", "status": 403},
        }
    )
    try:
        run = box.cli("send", "--once")
    finally:
        mastodon_mock.clear_faults()
    assert run.code == 0, run.err
    lines = wait_for(lambda: text_of(marker), 10, what="the on_failure hook").splitlines()
    assert len(lines) == 1, lines
    event, post_id, account, path, error = lines[0].split("|", 4)
    assert (event, post_id, account) == ("delete", "gone", "masto")
    assert path == str(box.spool / "sent" / "gone.md") and "403" in error
    assert box.is_in("gone", "sent") and len(masto.posts()) == 1
