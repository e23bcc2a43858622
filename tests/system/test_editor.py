"""`new` and `edit` through a scripted editor: validate on save, re-open on error, never expose
an invalid version to the spool, abort on an unchanged or empty file."""

from __future__ import annotations

import json
import shlex
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plurspool.post import parse
from plurspool.spool import KEEP
from tests.helpers import Run, invoke, run_cli, spool_root, write_config

# The editor: each run takes the next action from a control file, records what it was given and
# what the spool held at that moment, then edits the file as told.
EDITOR = textwrap.dedent(
    """
    import json, os, pathlib, sys
    ctl = pathlib.Path(os.environ["EDITOR_CONTROL"])
    state = json.loads(ctl.read_text())
    action = state["actions"][len(state["calls"])]
    path = pathlib.Path(sys.argv[-1])
    spool = pathlib.Path(os.environ["EDITOR_SPOOL"])
    snapshot = {
        str(p.relative_to(spool)): p.read_text()
        for p in sorted(spool.glob("*/*"))
        if p.is_file() and p.name != ".plurspool-keep"  # `init` made it
    }
    state["calls"].append({"argv": sys.argv[1:], "given": path.read_text(), "spool": snapshot})
    ctl.write_text(json.dumps(state))
    if "write" in action:
        path.write_text(action["write"])
    if "spool_write" in action:
        target = spool / action["spool_write"][0]
        target.with_suffix(".new").write_text(action["spool_write"][1])
        os.replace(target.with_suffix(".new"), target)
    sys.exit(action.get("exit", 0))
    """
)

INVALID = "---\nschedule: 2h\ncw: [unclosed\n---\nhalf-written\n"
VALID = "---\nschedule: 2h\n---\nThe final version.\n"


class Editor:
    """A scripted editor and the record of its runs."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.script = tmp_path / "editor.py"
        self.script.write_text(EDITOR)
        self.control = tmp_path / "editor.json"
        self.env = env
        self.tmpdir = tmp_path / "tmpdir"
        self.tmpdir.mkdir()
        env["EDITOR_CONTROL"] = str(self.control)
        env["EDITOR_SPOOL"] = str(spool_root(env))
        env["EDITOR"] = self.command()
        env["TMPDIR"] = str(self.tmpdir)

    def command(self, *flags: str) -> str:
        return shlex.join([sys.executable, str(self.script), *flags])

    def will(self, *actions: dict[str, Any]) -> None:
        self.control.write_text(json.dumps({"actions": list(actions), "calls": []}))

    @property
    def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = json.loads(self.control.read_text())["calls"]
        return calls


@pytest.fixture
def editor(tmp_path: Path, env: dict[str, str]) -> Editor:
    ok(invoke(["init"], env))
    return Editor(tmp_path, env)


def ok(run: Run) -> Run:
    assert run.code == 0, f"exit {run.code}\nstdout: {run.out}\nstderr: {run.err}"
    return run


def posts(env: dict[str, str]) -> dict[str, bytes]:
    root = spool_root(env)
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.glob("*/*"))
        if p.is_file() and p.name != KEEP  # `init` made it
    }


def test_new_reopens_on_error_and_stores_only_the_valid_version(
    editor: Editor, env: dict[str, str]
) -> None:
    editor.will({"write": INVALID}, {"write": VALID})
    before = datetime.now(UTC)
    run = ok(run_cli(["new"], env))
    calls = editor.calls
    assert len(calls) == 2  # re-opened once, after the invalid save
    assert calls[0]["spool"] == {} and calls[1]["spool"] == {}  # nothing stored meanwhile
    assert calls[1]["given"] == INVALID  # the user's text is kept for fixing, not reset
    assert (
        "line 4: the frontmatter is not valid YAML" in run.err
    )  # the error, with its line, before the editor re-opens
    post_id = run.out.strip()
    stored = posts(env)
    assert list(stored) == [f"scheduled/{post_id}.md"]
    post = parse(stored[f"scheduled/{post_id}.md"])
    assert post.parts == ("The final version.",)
    # The relative time typed in the editor is written back absolute.
    assert post.schedule is not None and post.schedule.endswith("+00:00")
    due = datetime.fromisoformat(post.schedule)
    assert (
        timedelta(hours=2) - timedelta(seconds=2) <= due - before <= timedelta(hours=2, seconds=10)
    )
    assert "queued for" in run.err
    assert list(editor.tmpdir.iterdir()) == []  # the edit copy is cleaned up


def test_new_fills_the_template_from_options(editor: Editor, env: dict[str, str]) -> None:
    editor.will({"write": "---\n---\nplain\n"})
    ok(run_cli(["new", "-s", "2030-01-02T03:04:05Z", "-p", "outbox"], env))
    given = editor.calls[0]["given"]
    assert "schedule: '2030-01-02T03:04:05+00:00'" in given or (
        "schedule: 2030-01-02T03:04:05+00:00" in given
    )
    assert "platforms: [outbox]" in given


def test_new_without_a_schedule_is_queued_due_now(editor: Editor, env: dict[str, str]) -> None:
    editor.will({"write": "---\n---\nas soon as possible\n"})
    before = datetime.now(UTC).replace(microsecond=0)
    post_id = ok(run_cli(["new"], env)).out.strip()
    post = parse(posts(env)[f"scheduled/{post_id}.md"])
    assert post.schedule is not None
    assert before <= datetime.fromisoformat(post.schedule) <= datetime.now(UTC)


def test_new_draft(editor: Editor, env: dict[str, str]) -> None:
    editor.will({"write": "---\nschedule: tomorrow 9am\n---\nlater, maybe\n"})
    post_id = ok(run_cli(["new", "--draft"], env)).out.strip()
    assert list(posts(env)) == [f"drafts/{post_id}.md"]


@pytest.mark.parametrize("action", [{}, {"write": ""}, {"write": "\n  \n"}])
def test_new_unchanged_or_empty_aborts(
    editor: Editor, env: dict[str, str], action: dict[str, Any]
) -> None:
    editor.will(action)
    run = run_cli(["new"], env)
    assert run.code == 1
    assert run.out == ""
    assert ("no changes" if not action else "empty file") in run.err
    assert posts(env) == {}
    assert list(editor.tmpdir.iterdir()) == []


def test_new_gives_up_after_repeated_errors_without_a_terminal(
    editor: Editor, env: dict[str, str]
) -> None:
    editor.will(*[{"write": INVALID}] * 5)
    run = run_cli(["new"], env)
    assert run.code == 3
    assert len(editor.calls) == 5
    assert posts(env) == {}
    assert "nothing was saved" in run.err
    # The text is kept where the message says.
    [kept] = list(editor.tmpdir.glob("*/*.md"))
    assert str(kept) in run.err and kept.read_text() == INVALID


def test_an_editor_that_fails_saves_nothing(editor: Editor, env: dict[str, str]) -> None:
    editor.will({"write": VALID, "exit": 1})
    run = run_cli(["new"], env)
    assert run.code == 1 and "status 1" in run.err
    assert posts(env) == {}


def scheduled_post(env: dict[str, str]) -> tuple[str, bytes]:
    v = ok(invoke(["post", "-s", "3h", "--json", "The original."], env)).json()
    path = spool_root(env) / v["path"]
    return v["id"], path.read_bytes()


def test_edit_never_exposes_an_invalid_version(editor: Editor, env: dict[str, str]) -> None:
    post_id, original = scheduled_post(env)
    key = f"scheduled/{post_id}.md"
    editor.will({"write": INVALID}, {"write": VALID})
    before = datetime.now(UTC)
    run = ok(run_cli(["edit", post_id[:4]], env))
    assert run.out.strip() == post_id
    calls = editor.calls
    assert len(calls) == 2
    assert calls[0]["given"] == original.decode()
    # While the editor was open, with the invalid text saved, the spool held the original only.
    for call in calls:
        assert call["spool"] == {key: original.decode()}
    assert calls[1]["given"] == INVALID
    stored = posts(env)
    assert list(stored) == [key]
    post = parse(stored[key])
    assert post.parts == ("The final version.",)
    assert post.schedule is not None
    due = datetime.fromisoformat(post.schedule)
    assert (
        timedelta(hours=2) - timedelta(seconds=2) <= due - before <= timedelta(hours=2, seconds=10)
    )
    assert list((spool_root(env) / "tmp").iterdir()) == []
    assert list(editor.tmpdir.iterdir()) == []


def test_edit_unchanged_or_empty_changes_nothing(editor: Editor, env: dict[str, str]) -> None:
    post_id, original = scheduled_post(env)
    for action, said in (({}, "no changes"), ({"write": ""}, "empty file")):
        editor.will(action)
        run = run_cli(["edit", post_id], env)
        assert run.code == 0 and run.out == ""
        assert said in run.err
        assert posts(env) == {f"scheduled/{post_id}.md": original}


def test_edit_refuses_to_overwrite_a_change_made_meanwhile(
    editor: Editor, env: dict[str, str]
) -> None:
    post_id, _ = scheduled_post(env)
    key = f"scheduled/{post_id}.md"
    theirs = "---\nschedule: 2031-01-01T00:00:00+00:00\n---\nTheir version.\n"
    editor.will({"write": VALID, "spool_write": [key, theirs]})
    run = run_cli(["edit", post_id], env)
    assert run.code == 1
    assert "changed or moved while you were editing" in run.err
    assert posts(env) == {key: theirs.encode()}
    # Where the edited copy was kept is said, and it is there.
    kept = run.err.split("your version is kept in ")[1].strip()
    assert Path(kept).read_text() == VALID


def test_edit_refuses_a_new_time_in_the_past(editor: Editor, env: dict[str, str]) -> None:
    post_id, original = scheduled_post(env)
    past = "---\nschedule: 2020-01-01T09:00:00+00:00\n---\nThe original.\n"
    kept = original.decode().replace("The original.", "Edited, same time.")
    editor.will({"write": past}, {"write": kept})
    ok(run_cli(["edit", post_id], env))
    assert len(editor.calls) == 2  # the past time was refused and the editor re-opened
    stored = posts(env)[f"scheduled/{post_id}.md"]
    assert stored == kept.encode()


def test_edit_a_draft_keeps_a_relative_time(editor: Editor, env: dict[str, str]) -> None:
    post_id = ok(invoke(["post", "--draft", "--json", "a draft"], env)).json()["id"]
    editor.will({"write": "---\nschedule: tomorrow 9am\n---\nstill a draft\n"})
    ok(run_cli(["edit", post_id], env))
    post = parse(posts(env)[f"drafts/{post_id}.md"])
    assert post.schedule == "tomorrow 9am"  # resolved only when it is scheduled


def test_visual_is_preferred_over_editor(editor: Editor, env: dict[str, str]) -> None:
    env["VISUAL"] = editor.command("--visual")
    env["EDITOR"] = "false"
    editor.will({"write": VALID})
    ok(run_cli(["new"], env))
    [call] = editor.calls
    assert call["argv"][0] == "--visual"


def test_an_editor_with_arguments(editor: Editor, env: dict[str, str]) -> None:
    env["EDITOR"] = editor.command("--flag", "two words")
    editor.will({"write": VALID})
    ok(run_cli(["new"], env))
    [call] = editor.calls
    assert call["argv"][:2] == ["--flag", "two words"]
    assert call["argv"][2].endswith(".md")


def test_a_missing_editor_is_a_clear_error(editor: Editor, env: dict[str, str]) -> None:
    env["EDITOR"] = "/nonexistent/editor"
    editor.will()
    run = run_cli(["new"], env)
    assert run.code == 1
    assert "cannot run the editor" in run.err and "Traceback" not in run.err
    assert posts(env) == {}


QUEUES = """timezone = "UTC"
[queues.default]
slots = ["daily 00:00"]
[queues.noon]
slots = ["daily 12:00"]
"""


def next_at(hour: int, days: int = 0) -> str:
    """The next hh:00 UTC after now, `days` later, as a post file holds it."""
    now = datetime.now(UTC)
    first = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if first <= now:
        first += timedelta(days=1)
    return (first + timedelta(days=days)).isoformat()


def test_new_with_schedule_queue_takes_a_free_slot(editor: Editor, env: dict[str, str]) -> None:
    write_config(env, QUEUES)
    editor.will({"write": "---\nschedule: queue\n---\none\n"})
    one = ok(invoke(["new"], env)).out.strip()
    editor.will({"write": "---\nschedule: queue\n---\ntwo\n"})
    two = ok(invoke(["new"], env)).out.strip()
    editor.will({"write": "---\nschedule: queue:noon\n---\nthree\n"})
    three = ok(invoke(["new"], env)).out.strip()
    stored = {k: parse(v) for k, v in posts(env).items()}
    got = {k: (p.schedule, p.queue) for k, p in stored.items()}
    assert got == {
        f"scheduled/{one}.md": (next_at(0), "default"),
        f"scheduled/{two}.md": (next_at(0, days=1), "default"),
        f"scheduled/{three}.md": (next_at(12), "noon"),
    }


def test_new_with_an_unknown_queue_reopens_the_editor(editor: Editor, env: dict[str, str]) -> None:
    write_config(env, QUEUES)
    editor.will(
        {"write": "---\nschedule: queue:nope\n---\nwhere?\n"},
        {"write": "---\nschedule: queue:noon\n---\nthere\n"},
    )
    run = ok(invoke(["new"], env))
    assert len(editor.calls) == 2 and editor.calls[1]["spool"] == {}
    assert "no queue named 'nope'" in run.err and "configured queues: default, noon" in run.err
    assert parse(posts(env)[f"scheduled/{run.out.strip()}.md"]).schedule == next_at(12)


def test_edit_into_a_queue_takes_a_free_slot(editor: Editor, env: dict[str, str]) -> None:
    write_config(env, QUEUES)
    taken = ok(invoke(["post", "-q", "--json", "first in line"], env)).json()
    post_id, original = scheduled_post(env)
    editor.will({"write": original.decode().replace("schedule: ", "schedule: queue # was ", 1)})
    ok(invoke(["edit", post_id], env))
    post = parse(posts(env)[f"scheduled/{post_id}.md"])
    assert taken["scheduled_at"] == next_at(0).replace("+00:00", "Z")
    assert (post.schedule, post.queue) == (next_at(0, days=1), "default")
