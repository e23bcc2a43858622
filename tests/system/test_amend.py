"""`plurspool amend` through a scripted editor: the status text changes on mastodon-mock, the
file in sent/ gains `edited_at` only after the server accepted; a post no account can edit
exits 3 with nothing changed; an edit amend cannot make re-opens the editor."""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from plurspool.post import Result, parse, with_record
from tests.daemon_helpers import Sandbox
from tests.peers.mastodon_mock import Mock
from tests.peers.mastodon_mock import mastodon_mock as mastodon_mock  # the fixture
from tests.platforms.adapters import MastodonAdapter

# The editor: replaces one text by another in the file it is given, and counts its runs.
EDITOR = textwrap.dedent(
    """
    import os, pathlib, sys
    path = pathlib.Path(sys.argv[-1])
    runs = pathlib.Path(os.environ["EDITOR_RUNS"])
    runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
    path.write_text(path.read_text().replace(os.environ["EDIT_FROM"], os.environ["EDIT_TO"]))
    """
)
BLUESKY = 'platform = "bluesky"\nhandle = "me.example.com"\nservice = "http://127.0.0.1:9"\n'


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    made = Sandbox(tmp_path / "box")
    made.accounts["b"] = BLUESKY
    (tmp_path / "editor.py").write_text(EDITOR, encoding="utf-8")
    made.env["EDITOR"] = f"{sys.executable} {tmp_path / 'editor.py'}"
    made.env["EDITOR_RUNS"] = str(tmp_path / "editor-runs")
    made.write_config()
    try:
        yield made
    finally:
        made.cleanup()


def amend(box: Sandbox, post_id: str, old: str, new: str) -> tuple[int, str]:
    env = {**box.env, "EDIT_FROM": old, "EDIT_TO": new}
    run = box.cli("amend", post_id, env=env, timeout=60.0)
    return run.code, run.err


def editor_runs(box: Sandbox) -> int:
    path = Path(box.env["EDITOR_RUNS"])
    return len(path.read_text()) if path.exists() else 0


@pytest.mark.peers
def test_amend_edits_the_status_on_mastodon_and_names_the_others(
    box: Sandbox, mastodon_mock: Mock, tmp_path: Path
) -> None:
    adapter = MastodonAdapter(mastodon_mock, tmp_path)
    box.accounts["m"] = adapter.section()
    box.write_config()
    sent = box.cli("post", "-p", "m", "--json", "Hello wrold", timeout=60.0)
    assert sent.code == 0, sent.err
    post_id = json.loads(sent.out)["id"]
    path = box.spool / "sent" / f"{post_id}.md"
    # As if it had gone to bluesky too: that account is named, and left as it was.
    before = parse(path.read_bytes())
    results = {**before.results, "b": Result(id="at://did:plc:x/app.bsky.feed.post/3k", attempts=1)}
    path.write_bytes(with_record(path.read_bytes(), results, before.attempts))
    [status] = adapter.posts()

    code, err = amend(box, post_id, "wrold", "world")
    assert code == 0, err
    assert "b: not editable (bluesky posts cannot be changed)" in err and "edited on m" in err
    [edited] = adapter.posts()
    assert (edited.ref, edited.text) == (status.ref, "Hello world")  # the same status, edited
    after = parse(path.read_bytes())
    assert after.parts == ("Hello world",)
    assert after.results["m"].edited_at is not None and after.results["m"].id == status.ref
    assert after.results["b"] == results["b"]  # untouched
    shown = json.loads(box.cli("show", post_id, "--format", "json").out)
    assert shown["edited_at"] == after.results["m"].edited_at
    listed = box.cli("list", "--state", "sent")
    assert post_id in listed.out and "edited" in listed.out, listed.out
    stats = json.loads(box.cli("stats", "--format", "json").out)
    assert stats["edited"] == 1


def test_a_post_no_account_can_edit_exits_3_with_nothing_changed(box: Sandbox) -> None:
    text = (
        "---\nplatforms: [b]\nresults:\n  b: {id: 'at://did:plc:x/app.bsky.feed.post/3k', "
        "url: 'https://bsky.app/profile/me.example.com/post/3k', attempts: 1}\n"
        "attempts: 1\n---\nOn Bluesky only.\n"
    )
    path = box.deliver("sent", "blue", text)
    code, err = amend(box, "blue", "only", "alone")
    assert code == 3, err
    assert "blue went to no account whose posts can be edited (it went to: b (bluesky))" in err
    assert editor_runs(box) == 0  # nothing to edit: the editor never opened
    assert path.read_text(encoding="utf-8") == text


def test_an_edit_amend_cannot_make_reopens_the_editor_and_keeps_the_file(box: Sandbox) -> None:
    box.accounts["m"] = 'platform = "mastodon"\ninstance = "http://127.0.0.1:9"'
    box.write_config()
    text = (
        "---\nplatforms: [m]\nvisibility: public\nresults:\n  m: {id: '1', url: "
        "'http://127.0.0.1:9/@me/1', attempts: 1}\nattempts: 1\n---\nText.\n"
    )
    path = box.deliver("sent", "pub", text)
    code, err = amend(box, "pub", "visibility: public", "visibility: unlisted")
    assert code == 3, err
    assert "amend cannot change platforms, visibility" in err
    assert editor_runs(box) == 5  # without a terminal, five tries, then it gives up
    assert path.read_text(encoding="utf-8") == text
    assert "nothing was saved" in err and "your text is kept in" in err


@pytest.mark.peers
def test_a_refused_edit_leaves_the_file_in_sent_as_it_was(
    box: Sandbox, mastodon_mock: Mock, tmp_path: Path
) -> None:
    adapter = MastodonAdapter(mastodon_mock, tmp_path)
    box.accounts["m"] = adapter.section()
    box.write_config()
    sent = box.cli("post", "-p", "m", "--json", "Hello wrold", timeout=60.0)
    assert sent.code == 0, sent.err
    post_id = json.loads(sent.out)["id"]
    path = box.spool / "sent" / f"{post_id}.md"
    before = path.read_bytes()
    [status] = adapter.posts()
    mastodon_mock.add_fault(
        {
            "match": {"methods": ["PUT"], "path": f"/api/v1/statuses/{status.ref}"},
            "effect": {"type": "status", "status": 422, "body": {"error": "Text too odd"}},
            "count": 1,
        }
    )
    try:
        code, err = amend(box, post_id, "wrold", "world")
    finally:
        mastodon_mock.clear_faults()
    assert code == 1, err
    assert "m: the server refused the edit: HTTP 422" in err and "your version is kept in" in err
    assert path.read_bytes() == before
    assert [p.text for p in adapter.posts()] == ["Hello wrold"]


@pytest.mark.peers
def test_amend_names_the_accounts_a_post_was_deleted_from_and_edits_the_rest(
    box: Sandbox, mastodon_mock: Mock, tmp_path: Path
) -> None:
    adapter = MastodonAdapter(mastodon_mock, tmp_path)
    box.accounts["m"] = adapter.section()
    box.accounts["m2"] = adapter.section()
    box.write_config()
    sent = box.cli("post", "-p", "m", "--json", "Hello wrold", timeout=60.0)
    assert sent.code == 0, sent.err
    post_id = json.loads(sent.out)["id"]
    path = box.spool / "sent" / f"{post_id}.md"
    before = parse(path.read_bytes())
    gone = Result(id="999", attempts=1, deleted_at="2026-01-01T00:00:00Z")  # taken back
    path.write_bytes(with_record(path.read_bytes(), {**before.results, "m2": gone}, 1))
    code, err = amend(box, post_id, "wrold", "world")
    assert code == 0, err
    assert "m2: deleted from it (`expires` or `delete`); nothing to edit" in err
    assert "edited on m" in err and "Traceback" not in err
    assert [p.text for p in adapter.posts()] == ["Hello world"]
    after = parse(path.read_bytes()).results
    assert after["m"].edited_at is not None and after["m2"] == gone
    # Deleted from every account: refused before the editor opens, nothing changed.
    every = {**after, "m": dataclasses.replace(after["m"], deleted_at="2026-01-02T00:00:00Z")}
    path.write_bytes(with_record(path.read_bytes(), every, 1))
    text = path.read_text(encoding="utf-8")
    runs = editor_runs(box)
    code, err = amend(box, post_id, "world", "World")
    assert code == 3 and f"{post_id} was deleted from every account it went to (m, m2)" in err
    assert editor_runs(box) == runs and path.read_text(encoding="utf-8") == text
