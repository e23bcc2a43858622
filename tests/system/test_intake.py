"""Intake decisions through the CLI: what is written back, and what goes to failed/ instead."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ids_in, invoke, spool_root, write_config


def _drop(root: Path, name: str, text: str) -> Path:
    tmp = root / "tmp" / name
    tmp.write_text(text)
    dst = root / "new" / name
    tmp.rename(dst)
    return dst


def test_an_absolute_time_with_its_offset_is_kept_byte_for_byte(env: dict[str, str]) -> None:
    assert invoke(["init"], env).code == 0
    root = spool_root(env)
    text = "---\nschedule: 2099-12-01T09:00:00Z   # keep me\n---\nbody\n"
    _drop(root, "abs.md", text)
    assert invoke(["send", "--once"], env).code == 0
    assert (root / "scheduled" / "abs.md").read_text() == text


def test_a_relative_or_naive_time_is_written_back_absolute(env: dict[str, str]) -> None:
    assert invoke(["init"], env).code == 0
    root = spool_root(env)
    _drop(root, "rel.md", "---\nschedule: 2h  # relative\n---\nbody\n")
    _drop(root, "naive.md", "---\nschedule: 2099-12-01T09:00:00\n---\nbody\n")
    assert invoke(["send", "--once"], env).code == 0
    rel = (root / "scheduled" / "rel.md").read_text()
    assert rel.startswith("---\nschedule: ") and rel.endswith("  # relative\n---\nbody\n")
    assert "+00:00" in rel.splitlines()[1]
    naive = (root / "scheduled" / "naive.md").read_text()
    assert naive == "---\nschedule: 2099-12-01T09:00:00+00:00\n---\nbody\n"  # TZ=UTC


def test_a_copy_carrying_results_is_not_taken_as_already_sent(env: dict[str, str]) -> None:
    assert invoke(["init"], env).code == 0
    root = spool_root(env)
    sent = invoke(["post", "--json", "first life"], env).json()
    copy = (root / sent["path"]).read_text()
    assert "results:" in copy
    _drop(root, "again.md", copy)
    assert invoke(["send", "--once"], env).code == 0
    assert ids_in(root, "failed") == {"again"}
    assert (root / "failed" / "again.md").read_text() == copy  # byte for byte
    reason = (root / "failed" / "again.error").read_text()
    assert "results" in reason and "delete those keys" in reason


def test_an_id_taken_in_another_state_sends_the_newcomer_to_failed(
    env: dict[str, str],
) -> None:
    assert invoke(["init"], env).code == 0
    root = spool_root(env)
    (root / "drafts" / "dup.md").write_text("the draft\n")
    _drop(root, "dup.md", "the newcomer\n")
    assert invoke(["send", "--once"], env).code == 0
    assert (root / "drafts" / "dup.md").read_text() == "the draft\n"
    assert ids_in(root, "scheduled") == set() and ids_in(root, "new") == set()
    [failed] = ids_in(root, "failed")
    assert failed.startswith("dup.")
    assert (root / "failed" / f"{failed}.md").read_text() == "the newcomer\n"
    assert "already in drafts/" in (root / "failed" / f"{failed}.error").read_text()


def test_check_warns_about_overrides_for_accounts_not_posted_to(env: dict[str, str]) -> None:
    write_config(
        env,
        'default_platforms = ["a"]\n'
        '[accounts.a]\nplatform = "exec"\ncommand = ["true"]\n'
        '[accounts.b]\nplatform = "exec"\ncommand = ["true"]\n',
    )
    assert invoke(["init"], env).code == 0
    root = spool_root(env)
    (root / "new" / "o.md").write_text("---\noverrides:\n  bb: {text: typo}\n---\nbody\n")
    run = invoke(["check", "--json"], env)
    assert run.code == 0, run.err
    [report] = run.json()
    assert report["problems"] == []
    assert report["warnings"] == [
        "`overrides` names bb, which this post is not sent to (it goes to a)"
    ]


def test_post_refuses_media_reached_through_a_symlink(env: dict[str, str]) -> None:
    assert invoke(["init"], env).code == 0
    root = spool_root(env)
    outside = root.parent / "secret.png"
    outside.write_bytes(b"\x89PNG not really")
    (root / "media").mkdir()
    (root / "media" / "cat.png").symlink_to(outside)
    run = invoke(["post", "-s", "1h", "--media", "media/cat.png:a cat", "look"], env)
    assert run.code == 3
    assert "media file media/cat.png: it is a symlink" in run.err
    assert ids_in(root, "scheduled") == set()
    (root / "media" / "real.png").write_bytes(b"\x89PNG fine")
    ok = invoke(["post", "-s", "1h", "--media", "media/real.png:a cat", "look"], env)
    assert ok.code == 0, ok.err
