"""`plurspool import plurcast`: a database built from Plurcast's schema → posts in the states
its statuses mean, with per-account results, read-only, never twice (in process)."""

from __future__ import annotations

import json
import sqlite3  # builds Plurcast's database, the format under test
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.daemon_helpers import Sandbox, in_process
from tests.helpers import invoke

SCHEMA = Path(__file__).resolve().parent.parent / "fixtures" / "plurcast_schema.sql"
FUTURE = int(datetime(2030, 3, 1, 9, 0, tzinfo=UTC).timestamp())
PAST = int(datetime(2026, 11, 20, 8, 0, tzinfo=UTC).timestamp())


def make_db(path: Path) -> Path:
    """A Plurcast database with a scheduled post, a draft, a pending one, a post sent to two
    platforms, one posted where a platform failed, and a failed one."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA.read_text())
    meta = json.dumps({"platforms": ["nostr", "mastodon"]})
    posts = [
        ("11111111-0000-4000-8000-000000000001", "Scheduled in Plurcast", FUTURE, "scheduled"),
        ("11111111-0000-4000-8000-000000000002", "A draft", None, "draft"),
        ("11111111-0000-4000-8000-000000000003", "Pending, never sent", None, "pending"),
        ("11111111-0000-4000-8000-000000000004", "Sent to both", PAST, "posted"),
        ("11111111-0000-4000-8000-000000000005", "Half sent", PAST, "posted"),
        ("11111111-0000-4000-8000-000000000006", "Failed everywhere", PAST, "failed"),
    ]
    for i, (pid, content, at, status) in enumerate(posts):
        db.execute(
            "INSERT INTO posts (id, content, created_at, scheduled_at, status, metadata) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (pid, content, PAST - 100 + i, at, status, meta),
        )
    records = [
        ("...04", "nostr", "note1abc", 1, None),
        ("...04", "mastodon", "109876", 1, None),
        ("...05", "nostr", "note1def", 1, None),
        ("...05", "mastodon", None, 0, "HTTP 503: try later"),
        ("...06", "nostr", None, 0, "no relay answered"),
        ("...06", "mastodon", None, 0, "HTTP 422: text too long"),
        ("...06", "mastodon", None, 0, "HTTP 422: text too long, again"),
    ]
    for short, platform, remote, success, error in records:
        db.execute(
            "INSERT INTO post_records (post_id, platform, platform_post_id, posted_at, success, "
            "error_message, account_name) VALUES (?, ?, ?, ?, ?, ?, 'default')",
            (short.replace("...", "11111111-0000-4000-8000-0000000000"), platform, remote,
             PAST + 5, success, error),
        )  # fmt: skip
    db.commit()
    db.close()
    return path


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    b = Sandbox(tmp_path)
    b.exec_account("nostr")
    b.exec_account("mastodon")
    b.write_config()
    return b


def by_text(box: Sandbox) -> dict[str, tuple[str, str]]:
    """Each post's first part → (state, ID)."""
    out = {}
    for state in ("drafts", "scheduled", "sent", "failed"):
        for post_id in box.ids(state):
            out[box.post(state, post_id).parts[0]] = (state, post_id)
    return out


def test_statuses_become_states_with_results(box: Sandbox) -> None:
    db = make_db(box.base / "posts.db")
    before = db.read_bytes()
    run = invoke(["import", "plurcast", str(db)], box.env)
    assert run.code == 0, run.err
    assert len(run.out.split()) == 6
    assert "imported 6 posts: 1 in scheduled/, 2 in drafts/, 1 in sent/, 2 in failed/" in run.err
    posts = by_text(box)
    assert {text: state for text, (state, _) in posts.items()} == {
        "Scheduled in Plurcast": "scheduled",
        "A draft": "drafts",
        "Pending, never sent": "drafts",
        "Sent to both": "sent",
        "Half sent": "failed",
        "Failed everywhere": "failed",
    }
    scheduled = box.post("scheduled", posts["Scheduled in Plurcast"][1])
    assert scheduled.schedule == "2030-03-01T09:00:00+00:00"
    assert scheduled.platforms == ("nostr", "mastodon")
    sent = box.post("sent", posts["Sent to both"][1])
    assert {a: (r.id, r.error, r.attempts) for a, r in sent.results.items()} == {
        "nostr": ("note1abc", None, 1),
        "mastodon": ("109876", None, 1),
    }
    half = posts["Half sent"][1]
    assert box.post("failed", half).results["mastodon"].error == "HTTP 503: try later"
    error = (box.spool / "failed" / f"{half}.error").read_text()
    assert error == "failed in Plurcast: mastodon: HTTP 503: try later\n"
    failed = box.post("failed", posts["Failed everywhere"][1])
    assert failed.results["mastodon"].attempts == 2
    assert failed.results["mastodon"].error == "HTTP 422: text too long, again"
    assert db.read_bytes() == before  # read-only
    assert sorted(p.name for p in db.parent.glob("posts.db*")) == ["posts.db"]


def test_running_it_again_makes_nothing_new(box: Sandbox) -> None:
    db = make_db(box.base / "posts.db")
    assert invoke(["import", "plurcast", str(db)], box.env).code == 0
    before = {s: box.ids(s) for s in ("drafts", "scheduled", "sent", "failed")}
    again = invoke(["import", "plurcast", str(db)], box.env)
    assert again.code == 0, again.err
    assert again.out == "" and "nothing new: 6 were imported before" in again.err
    assert {s: box.ids(s) for s in before} == before


def test_retry_sends_only_the_platform_that_failed(box: Sandbox) -> None:
    db = make_db(box.base / "posts.db")
    assert invoke(["import", "plurcast", str(db)], box.env).code == 0
    _, half = by_text(box)["Half sent"]
    assert invoke(["retry", half], box.env).code == 0
    world = in_process(box)
    world.run()
    assert box.is_in(half, "sent")
    assert [r["env"]["PLURSPOOL_ID"] for r in box.records("mastodon")] == [half]
    assert box.records("nostr") == []
    post = box.post("sent", half)
    assert post.results["nostr"].id == "note1def"  # kept from Plurcast
    assert post.results["mastodon"].error is None and post.results["mastodon"].id


def test_the_default_database_and_a_wrong_file(box: Sandbox) -> None:
    missing = invoke(["import", "plurcast"], box.env)
    assert missing.code == 3
    assert f"no Plurcast database at {box.env['XDG_DATA_HOME']}/plurcast/posts.db" in missing.err
    default = Path(box.env["XDG_DATA_HOME"]) / "plurcast" / "posts.db"
    default.parent.mkdir(parents=True)
    make_db(default)
    assert invoke(["import", "plurcast"], box.env).code == 0
    notdb = box.base / "notes.txt"
    notdb.write_text("not a database\n" * 100)
    wrong = invoke(["import", "plurcast", str(notdb)], box.env)
    assert wrong.code == 3
    assert "is not a Plurcast database" in wrong.err
    assert notdb.read_text() == "not a database\n" * 100


def test_attachments_are_copied_into_the_spool(box: Sandbox) -> None:
    from tests.helpers import png

    db = make_db(box.base / "posts.db")
    image = box.base / "elsewhere" / "Cat.PNG"
    image.parent.mkdir()
    image.write_bytes(png())
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO attachments (id, post_id, file_path, mime_type, file_size, file_hash, "
        "alt_text, created_at) VALUES ('a1', ?, ?, 'image/png', ?, ?, 'A cat', ?)",
        ("11111111-0000-4000-8000-000000000001", str(image), len(png()), "ab" * 32, PAST),
    )
    con.commit()
    con.close()
    run = invoke(["import", "plurcast", str(db)], box.env)
    assert run.code == 0, run.err
    _, post_id = by_text(box)["Scheduled in Plurcast"]
    post = box.post("scheduled", post_id)
    assert [(m.path, m.alt) for m in post.media] == [
        ("media/plurcast/abababababababab.png", "A cat")
    ]
    assert (box.spool / post.media[0].path).read_bytes() == png()


def test_a_queued_post_whose_attachment_is_gone_imports_nothing(box: Sandbox) -> None:
    db = make_db(box.base / "posts.db")
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO attachments (id, post_id, file_path, mime_type, file_size, file_hash, "
        "alt_text, created_at) VALUES ('a1', ?, '/nonexistent/cat.png', 'image/png', 1, 'ff', "
        "NULL, ?)",
        ("11111111-0000-4000-8000-000000000002", PAST),
    )
    con.commit()
    con.close()
    run = invoke(["import", "plurcast", str(db)], box.env)
    assert run.code == 3
    assert (
        "Plurcast post 11111111-0000-4000-8000-000000000002: its attachment /nonexistent/cat.png "
        "(No such file or directory) cannot be read" in run.err
    )
    assert all(not box.ids(s) for s in ("drafts", "scheduled", "sent", "failed"))
