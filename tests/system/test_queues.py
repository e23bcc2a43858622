"""The queue commands from the command line: `post --queue`, `schedule ID queue`, exit codes
and what they print (plurspool(1), `post`, `schedule`, `queue`)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from plurspool.post import parse
from tests.helpers import BIN, Run, invoke, make_env, spool_root, write_config

CONFIG = """timezone = "UTC"
[queues.default]
slots = ["daily 00:00"]
[queues.noon]
slots = ["daily 12:00"]
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = make_env(tmp_path)
    write_config(env, CONFIG)
    return env


def ok(run: Run) -> Run:
    assert run.code == 0, f"exit {run.code}\nstdout: {run.out}\nstderr: {run.err}"
    return run


def midnights(n: int) -> list[str]:
    """The next `n` UTC midnights, as `scheduled_at` shows them."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [(today + timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ") for d in range(1, n + 1)]


def test_post_queue_takes_the_free_slots_in_turn(env: dict[str, str]) -> None:
    first = ok(invoke(["post", "-q", "--json", "one"], env)).json()
    second = ok(invoke(["post", "--queue", "default", "--json", "two"], env)).json()
    third = ok(invoke(["post", "-q", "--json"], env, input="three\n")).json()
    assert [v["scheduled_at"] for v in (first, second, third)] == midnights(3)
    assert all(v["state"] == "scheduled" for v in (first, second, third))
    path = spool_root(env) / "scheduled" / f"{first['id']}.md"
    assert parse(path.read_bytes()).queue == "default"


def test_post_q_with_only_text_queues_the_text(env: dict[str, str]) -> None:
    run = ok(invoke(["post", "-q", "Hello queue", "--json"], env))
    v = run.json()
    assert v["preview"] == "Hello queue" and v["scheduled_at"] == midnights(1)[0]


def test_next_moves_the_later_posts(env: dict[str, str]) -> None:
    a = ok(invoke(["post", "-q", "noon", "--json", "a"], env)).json()
    b = ok(invoke(["post", "-q", "noon", "--next", "--json", "b"], env)).json()
    listed = ok(invoke(["list", "--json"], env)).json()
    when = {v["id"]: v["scheduled_at"] for v in listed}
    assert when[b["id"]] == a["scheduled_at"]
    assert when[a["id"]] > when[b["id"]]


def test_unknown_queue_is_exit_3(env: dict[str, str]) -> None:
    run = invoke(["post", "-q", "nope", "text"], env)
    assert run.code == 3
    assert "no queue named 'nope'" in run.err
    assert "configured queues: default, noon" in run.err
    assert list((spool_root(env) / "scheduled").glob("*.md")) == []


def test_schedule_a_draft_into_a_queue(env: dict[str, str]) -> None:
    draft = ok(invoke(["post", "--draft", "--json", "later"], env)).json()
    run = ok(invoke(["schedule", draft["id"], "queue:noon", "--json"], env))
    (v,) = run.json()
    assert v["state"] == "scheduled"
    assert v["scheduled_at"].endswith("T12:00:00Z")
    again = ok(invoke(["post", "--draft", "--json", "again"], env)).json()
    assert invoke(["schedule", again["id"], "queue:nope"], env).code == 3


def test_queue_and_schedule_exclude_each_other(env: dict[str, str]) -> None:
    run = invoke(["post", "-q", "default", "-s", "2h", "text"], env)
    assert run.code == 2
    assert "exclude each other" in run.err
    assert invoke(["post", "--next", "text"], env).code == 2


def test_queue_lists_slots_free_or_taken(env: dict[str, str]) -> None:
    held = ok(invoke(["post", "-q", "noon", "--json", "held"], env)).json()
    rows = ok(invoke(["queue", "--days", "3", "--json"], env)).json()
    assert all(set(r) == {"queue", "at", "local", "id"} for r in rows)
    assert [r["queue"] for r in rows[:2]] in (["default", "noon"], ["noon", "default"])
    assert {r["queue"] for r in rows} == {"default", "noon"}
    assert len(rows) in (5, 6, 7)  # 3 days of two daily slots, give or take one of today's
    ats = [r["at"] for r in rows]
    assert ats == sorted(ats)
    noon = [r for r in rows if r["queue"] == "noon"]
    assert noon[0] == {
        "queue": "noon",
        "at": held["scheduled_at"],
        "local": held["scheduled_at"].replace("Z", "+00:00"),
        "id": held["id"],
    }
    assert all(r["id"] is None for r in rows if r is not noon[0])
    only = ok(invoke(["queue", "noon", "--json"], env)).json()
    assert {r["queue"] for r in only} == {"noon"} and len(only) in (7, 8)


def test_queue_text_fits_80_columns(env: dict[str, str]) -> None:
    long = "a very long post text that makes a very long ID for the queue listing"
    post_id = ok(invoke(["post", "-q", "noon", "--json", long], env)).json()["id"]
    out = ok(invoke(["queue", "--days", "2"], env)).out
    lines = out.splitlines()
    assert lines and all(len(line) <= 80 for line in lines)
    taken = [line for line in lines if "noon" in line and "(free)" not in line]
    assert len(taken) == 1 and taken[0].split()[2] == "12:00" and taken[0].endswith(post_id)
    assert sum("(free)" in line for line in lines) == len(lines) - 1


def test_queue_unknown_name_is_exit_3(env: dict[str, str]) -> None:
    run = invoke(["queue", "nope"], env)
    assert run.code == 3
    assert "no queue named 'nope'" in run.err


def test_a_queue_is_no_time(env: dict[str, str]) -> None:
    run = invoke(["post", "-s", "queue", "text"], env)
    assert run.code == 3
    assert "'queue' asks for a queue slot" in run.err
    assert "post --queue" in run.err


def test_check_reports_an_unknown_queue_as_intake_would(env: dict[str, str]) -> None:
    new = spool_root(env) / "new"
    new.mkdir(parents=True, exist_ok=True)
    (new / "a.md").write_text("---\nschedule: queue:later\n---\nhello\n", encoding="utf-8")
    (new / "b.md").write_text("---\nschedule: queue:noon\n---\nhello\n", encoding="utf-8")
    run = invoke(["check", "--json"], env)
    assert run.code == 3
    problems = {Path(r["path"]).name: r["problems"] for r in run.json()}
    assert problems["b.md"] == []
    assert len(problems["a.md"]) == 1
    assert problems["a.md"][0].startswith("line 2: no queue named 'later'; configured queues:")


@pytest.mark.slow
def test_concurrent_processes_never_share_a_slot(env: dict[str, str]) -> None:
    """Processes racing for the queue's slots: `send --once` taking in 12 `schedule: queue`
    files, while 6 `post --queue` run at the same time."""
    new = spool_root(env) / "new"
    new.mkdir(parents=True, exist_ok=True)
    for n in range(12):
        (new / f"f{n:02d}.md").write_text(f"---\nschedule: queue\n---\nfile {n}\n")
    procs = [subprocess.Popen([str(BIN / "plurspool"), "send", "--once"], env=env)]
    procs += [
        subprocess.Popen([str(BIN / "plurspool"), "post", "-q", f"cli {n}"], env=env)
        for n in range(6)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 7
    listed = ok(invoke(["list", "--json"], env)).json()
    assert len(listed) == 18
    times = [v["scheduled_at"] for v in listed]
    assert sorted(times) == midnights(18)
