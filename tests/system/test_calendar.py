"""`plurspool calendar` from the command line: what it prints (as a subprocess, whose stdout is
not a terminal), its JSON and its exit codes (plurspool(1), `calendar`). The posts lie in a
month a year ahead, so that every slot of it is after now whatever the day the test runs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.helpers import Run, invoke, make_env, run_cli, spool_root, write_config

CONFIG = """timezone = "America/Sao_Paulo"
[accounts.outbox]
platform = "outbox"
[queues.default]
slots = ["mon 09:00"]
"""
YEAR = datetime.now(UTC).year + 1


def ok(run: Run) -> Run:
    assert run.code == 0, f"exit {run.code}\nstdout: {run.out}\nstderr: {run.err}"
    return run


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = make_env(tmp_path_factory.mktemp("calendar"))
    write_config(env, CONFIG)
    ok(invoke(["post", "-s", f"{YEAR}-03-02 12:00", "a post in March"], env))
    ok(invoke(["post", "-s", f"{YEAR}-03-01 23:30", "the last hour of Sunday"], env))
    new = spool_root(env) / "new"
    (new / "weekly.md").write_text(
        f"---\nschedule: {YEAR}-03-04 08:15\nrepeat: every wednesday 8:15\n---\nweekly\n"
    )
    ok(invoke(["send", "--once"], env))  # intake
    return env


def test_json_has_every_day_its_posts_and_free_slots(env: dict[str, str]) -> None:
    days = ok(invoke(["calendar", "--month", "--from", f"{YEAR}-03", "--json"], env)).json()
    assert [d["date"] for d in days] == [date(YEAR, 3, n).isoformat() for n in range(1, 32)]
    by = {d["date"]: d for d in days}
    (sunday,) = by[f"{YEAR}-03-01"]["posts"]
    assert sunday["preview"] == "the last hour of Sunday"
    assert sunday["scheduled_at"] == f"{YEAR}-03-02T02:30:00Z"  # -03:00
    assert set(sunday) >= {"id", "state", "platforms", "path", "repeat", "error"}
    weds = [d for d in days if date.fromisoformat(d["date"]).weekday() == 2]
    assert [p["scheduled_at"] for d in weds for p in d["posts"]] == [
        f"{d['date']}T11:15:00Z" for d in weds if d["date"] >= f"{YEAR}-03-04"
    ]
    mondays = [d for d in days if date.fromisoformat(d["date"]).weekday() == 0]
    assert [d["free_slots"] for d in mondays] == [[f"{d['date']}T12:00:00Z"] for d in mondays]


def test_text_is_a_grid_then_the_days(env: dict[str, str]) -> None:
    run = ok(run_cli(["calendar", "--from", f"{YEAR}-03-02"], env))
    lines = run.out.splitlines()
    assert lines[0].startswith("Week ") and lines[0].endswith("(America/Sao_Paulo)")
    assert lines[2].split() == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert all(len(line) <= 80 for line in lines)
    assert "\x1b" not in run.out  # not a terminal: no colour
    text = "\n".join(lines)
    assert "  09:00  free slot of default" in text
    assert "  12:00  " in text and "outbox  a post in March" in text
    weekly = [line for line in lines if "weekly" in line]
    assert len(weekly) == 1 and weekly[0].startswith("  08:15  week") and "↻" in weekly[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "next week"], "--from 'next week' is not a date"),
        (["-p", "nobody"], "no account named 'nobody'"),
        (["--week", "--month"], "give --week or --month, not both"),
    ],
)
def test_bad_options_are_usage_errors(env: dict[str, str], args: list[str], message: str) -> None:
    run = invoke(["calendar", *args], env)
    assert run.code == 2
    assert message in run.err and "hint: " in run.err
    assert "Traceback" not in run.err


def test_an_empty_period_says_so(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    write_config(env, 'timezone = "UTC"\n')
    run = ok(invoke(["calendar", "--from", f"{YEAR}-01-01"], env))
    assert run.out.splitlines()[-1] == "nothing scheduled and no free slots in this period"
