"""`plurspool delete` and the expiry in `list`, `show` and `stats`, through the CLI in process:
what is refused and with which exit status, and the JSON shapes. Deleting on the real peers is
tests/platforms/test_deleting.py's."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from plurspool.post import Result, with_record
from tests.daemon_helpers import Sandbox, iso
from tests.helpers import Run, invoke

MASTODON = 'platform = "mastodon"\ninstance = "https://example.social"\n'


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    box = Sandbox(tmp_path)
    box.accounts["masto"] = MASTODON
    box.exec_account("x", default=False)
    box.default_platforms.append("masto")
    box.write_config()
    return box


def cli(box: Sandbox, *args: str) -> Run:
    return invoke(list(args), box.env)


def sent(box: Sandbox, post_id: str, accounts: tuple[str, ...], expires: str | None) -> bytes:
    at = iso(time.time() - 60)
    front = f"platforms: [{', '.join(accounts)}]\n" + (f"expires: {expires}\n" if expires else "")
    data = f"---\n{front}---\nOut there.\n".encode()
    results = {a: Result(id=f"{a}-1", attempts=1, at=at) for a in accounts}
    written = with_record(data, results, 1)
    box.deliver("sent", post_id, written.decode())
    return written


def test_a_post_never_sent_is_refused_with_a_hint_to_cancel(box: Sandbox) -> None:
    box.deliver("scheduled", "later", f"---\nschedule: {iso(time.time() + 3600)}\n---\nx\n")
    run = cli(box, "delete", "later", "--force")
    assert run.code == 3
    assert "later is in scheduled/" in run.err and "plurspool cancel later" in run.err
    box.deliver("drafts", "draft", "---\n---\nx\n")
    assert cli(box, "delete", "draft", "--force").code == 3
    assert cli(box, "delete", "nosuchpost", "--force").code == 4


def test_without_a_terminal_it_asks_for_force_and_changes_nothing(box: Sandbox) -> None:
    before = sent(box, "out", ("masto",), None)
    run = cli(box, "delete", "out")
    assert run.code == 2
    assert "without a terminal to ask" in run.err and "--force" in run.err
    assert (box.spool / "sent" / "out.md").read_bytes() == before


def test_accounts_that_cannot_delete_are_named_and_left_alone(box: Sandbox) -> None:
    before = sent(box, "ex", ("x",), None)
    run = cli(box, "delete", "ex", "--force")
    assert run.code == 0, run.err
    assert "x: exec accounts cannot delete" in run.err and "nothing left to delete" in run.err
    assert (box.spool / "sent" / "ex.md").read_bytes() == before
    unknown = cli(box, "delete", "ex", "-p", "masto", "--force")
    assert unknown.code == 3 and "ex was not sent to masto" in unknown.err


def test_list_show_and_stats_tell_expiring_posts(box: Sandbox) -> None:
    sent(box, "soon", ("masto",), "2h")
    sent(box, "plain", ("masto",), None)
    view = cli(box, "show", "soon", "--json").json()
    at = box.post("sent", "soon").results["masto"].at
    assert at is not None
    assert view["expires_at"] == iso(datetime.fromisoformat(at).timestamp() + 7200)
    assert view["deleted_at"] is None and view["results"]["masto"]["deleted_at"] is None
    plain = cli(box, "show", "plain", "--json").json()
    assert plain["expires_at"] is None and plain["deleted_at"] is None
    text = cli(box, "show", "soon").out
    assert "expires:" in text and "(in 1h" in text
    listed = cli(box, "list", "--state", "sent").out
    assert "expires in 1h" in listed
    rows = cli(box, "list", "--state", "sent", "--json").json()
    assert {r["id"]: r["expires_at"] is not None for r in rows} == {"soon": True, "plain": False}
    stats = cli(box, "stats", "--json").json()
    assert (stats["deleted"], stats["expiring"], stats["by_state"]["sent"]) == (0, 1, 2)
    assert "sent: 0 deleted, 1 expiring" in cli(box, "stats").out


def test_check_names_an_expiry_before_the_send_time_with_key_and_line(box: Sandbox) -> None:
    box.deliver("new", "early", f"---\nschedule: 1h\nexpires: {iso(time.time() + 60)}\n---\nx\n")
    box.deliver("new", "fine", "---\nschedule: 1h\nexpires: 1d\n---\nx\n")
    run = cli(box, "check")
    assert run.code == 3
    [line] = [x for x in run.out.splitlines() if "early" in x]
    assert "line 3: `expires`" in line and "send time" in line
    assert "fine" not in run.out
