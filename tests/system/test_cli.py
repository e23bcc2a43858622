"""The command line as an interface: JSON shapes, exit codes, streams, aliases, start-up cost."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest

from plurspool.cli import QUEUE_COMMANDS, cli
from plurspool.post import parse
from plurspool.spool import KEEP, STATES
from tests.helpers import BIN, Run, invoke, run_cli, spool_root, state_home, write_config

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
POST_KEYS = {
    "id",
    "state",
    "scheduled_at",
    "platforms",
    "preview",
    "path",
    "attempts",
    "error",
    "results",
}


def ok(run: Run) -> Run:
    assert run.code == 0, f"exit {run.code}\nstdout: {run.out}\nstderr: {run.err}"
    return run


def cli_json(args: list[str], env: dict[str, str], input: str | None = None) -> Any:
    run = ok(invoke([*args, "--json"], env, input))
    return run.json()


def check_post_view(v: dict[str, Any], state: str) -> None:
    """A post as JSON has every key plurspool(1) JSON OUTPUT lists, with the right types."""
    assert set(v) >= POST_KEYS, POST_KEYS - set(v)
    assert v["state"] == state
    assert v["scheduled_at"] is None or ISO_Z.match(v["scheduled_at"]), v["scheduled_at"]
    assert isinstance(v["platforms"], list) and all(isinstance(p, str) for p in v["platforms"])
    assert isinstance(v["preview"], str)
    assert v["path"] == f"{state}/{v['id']}.md"
    assert isinstance(v["attempts"], int)
    assert v["error"] is None or isinstance(v["error"], str)
    assert isinstance(v["results"], dict)
    for r in v["results"].values():
        assert set(r) >= {"id", "url"}


def at(v: dict[str, Any]) -> datetime:
    return datetime.strptime(v["scheduled_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def post_scheduled(env: dict[str, str], text: str, when: str = "2h") -> dict[str, Any]:
    v: dict[str, Any] = cli_json(["post", "-s", when, text], env)
    return v


# -- init ------------------------------------------------------------------------------------


def test_init_creates_config_and_spool_and_prints_paths(env: dict[str, str]) -> None:
    run = ok(invoke(["init"], env))
    config = Path(env["XDG_CONFIG_HOME"]) / "plurspool" / "config.toml"
    root = spool_root(env)
    assert f"config: {config} (created)" in run.out
    assert f"spool:  {root}" in run.out
    assert config.stat().st_mode & 0o777 == 0o600
    assert all((root / d).is_dir() for d in ("tmp", "new", "drafts", "scheduled", "sent", "failed"))
    again = cli_json(["init"], env)
    assert again["config"] == str(config)
    assert again["config_created"] is False
    assert again["spool"] == str(root)
    # The created config loads: every other command works with it.
    ok(invoke(["list"], env))


def test_init_keeps_every_state_dir_in_git_with_a_dotfile_no_command_sees(
    env: dict[str, str],
) -> None:
    ok(invoke(["post", "-s", "1h", "made before init"], env))  # a spool made unasked: no file
    root = spool_root(env)
    assert not any((root / s / KEEP).exists() for s in STATES)
    ok(invoke(["init"], env))
    assert all((root / s / KEEP).is_file() for s in STATES)
    assert not (root / "tmp" / KEEP).exists()  # git ignores tmp/
    assert len(cli_json(["list", "--state", "all"], env)) == 1
    assert cli_json(["stats"], env)["total"] == 1
    ok(invoke(["check", str(root / "scheduled"), str(root / "sent")], env))
    assert len(cli_json(["check"], env)) == 1


def test_init_writes_the_config_file_that_is_then_read(env: dict[str, str], tmp_path: Path) -> None:
    # A shell leaves the ~ of `--config=~/...` alone; the config loader reads it under $HOME.
    args = ["--config=~/plurspool.toml", "init", "--json"]
    proc = subprocess.run(
        [str(BIN / "plurspool"), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    config = Path(env["HOME"]) / "plurspool.toml"
    assert json.loads(proc.stdout)["config"] == str(config)
    assert json.loads(proc.stdout)["config_created"] is True
    assert config.is_file() and not (tmp_path / "~").exists()
    again = ok(run_cli(["--config=~/plurspool.toml", "init", "--json"], env)).json()
    assert again["config_created"] is False


# -- the queue, end to end -------------------------------------------------------------------


def test_post_list_show_reschedule_cancel_schedule(env: dict[str, str]) -> None:
    before = datetime.now(UTC)
    v = post_scheduled(env, "Hello, queue!\n---\nsecond part")
    check_post_view(v, "scheduled")
    assert v["platforms"] == ["outbox"]
    assert v["preview"] == "Hello, queue!"
    assert v["attempts"] == 0 and v["error"] is None and v["results"] == {}
    due = at(v)
    assert (
        timedelta(hours=2) - timedelta(seconds=1) <= due - before <= timedelta(hours=2, seconds=5)
    )
    post_id = v["id"]
    assert (spool_root(env) / v["path"]).is_file()

    listed = cli_json(["list"], env)
    assert [x["id"] for x in listed] == [post_id]
    check_post_view(listed[0], "scheduled")

    shown = cli_json(["show", post_id[:5]], env)
    check_post_view(shown, "scheduled")
    assert shown["parts"] == ["Hello, queue!", "second part"]
    assert isinstance(shown["text"], str) and "second part" in shown["text"]

    later = cli_json(["reschedule", post_id, "+1h"], env)
    assert isinstance(later, list) and len(later) == 1
    assert at(later[0]) - due == timedelta(hours=1)
    # A leading '-' is a time, not an option: no `--` needed.
    earlier = ok(invoke(["reschedule", post_id, "-30m", "--json"], env)).json()
    assert at(earlier[0]) - due == timedelta(minutes=30)
    run = ok(invoke(["reschedule", post_id, "-30m"], env))
    assert run.out.strip() == post_id  # data on stdout, the echo of the time on stderr
    assert "rescheduled for" in run.err and "Z" in run.err
    assert at(cli_json(["show", post_id], env)) == due

    cancelled = cli_json(["cancel", post_id], env)
    check_post_view(cancelled[0], "drafts")
    assert cli_json(["list"], env) == []
    assert [x["id"] for x in cli_json(["list", "--state", "drafts"], env)] == [post_id]

    queued = cli_json(["schedule", post_id, "tomorrow", "9am"], env)
    check_post_view(queued[0], "scheduled")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert queued[0]["scheduled_at"] == f"{tomorrow.isoformat()}T09:00:00Z"
    # The file holds an absolute time with an offset.
    post = parse((spool_root(env) / queued[0]["path"]).read_bytes())
    assert post.schedule == f"{tomorrow.isoformat()}T09:00:00+00:00"


def test_reschedule_with_a_leading_minus_is_a_time_not_options(env: dict[str, str]) -> None:
    v = post_scheduled(env, "move me", "5h")
    due = at(v)
    steps: list[tuple[list[str], timedelta]] = [
        (["-2h", "--json"], timedelta(hours=-2)),  # -2h is not -2 -h (help)
        (["--json", "-1h30m"], timedelta(hours=-3, minutes=-30)),
        (["+1d", "--json"], timedelta(hours=20, minutes=30)),
        (["--json", "--", "-1d"], timedelta(hours=-3, minutes=-30)),
    ]
    for words, total in steps:
        run = ok(invoke(["reschedule", v["id"], *words], env))
        assert at(run.json()[0]) - due == total, words
    run = invoke(["reschedule", v["id"], "-1h", "--help"], env)
    assert run.code == 0 and run.out.startswith("Usage: ")  # --help itself still works


def test_list_states_and_sorting(env: dict[str, str]) -> None:
    b = post_scheduled(env, "second", "3h")["id"]
    a = post_scheduled(env, "first", "1h")["id"]
    d = cli_json(["post", "--draft", "a draft"], env)
    check_post_view(d, "drafts")
    assert d["scheduled_at"] is None
    assert [x["id"] for x in cli_json(["list"], env)] == [a, b]
    everything = cli_json(["list", "--state", "all"], env)
    assert {x["id"] for x in everything} == {a, b, d["id"]}
    text = ok(invoke(["list"], env)).out
    assert text.index(a) < text.index(b)
    assert "in 59m" in text or "in 1h00m" in text
    assert cli_json(["list", "-p", "nobody"], env) == []


LIST_CONFIG = """
default_platforms = ["mastodon-main", "bluesky-main"]

[accounts.mastodon-main]
platform = "exec"
command = ["true"]

[accounts.bluesky-main]
platform = "exec"
command = ["true"]
"""

PREVIEWS = [
    "漢字のテキストはとても長いです。これは日本語のプレビューを確認するためのポストです",
    "👨‍👩‍👧 family 🇫🇷🇩🇪 flags 👍🏽 and a long tail of words to cut somewhere",
    "plain ASCII text that goes on and on well beyond the width of any terminal",
]


def at_columns(line: str, start: int) -> str:
    """`line` from display column `start` on (a grapheme across it counts as before it)."""
    import wcwidth

    column = 0
    for n, grapheme in enumerate(wcwidth.iter_graphemes(line)):
        if column >= start:
            return "".join(list(wcwidth.iter_graphemes(line))[n:])
        column += wcwidth.width(grapheme)
    return ""


@pytest.mark.slow
@pytest.mark.parametrize("state", ["scheduled", "all"])
def test_list_fits_80_columns_by_display_width(env: dict[str, str], state: str) -> None:
    import wcwidth

    write_config(env, LIST_CONFIG)
    env = {**env, "COLUMNS": "80"}
    views = {}
    for n, text in enumerate(PREVIEWS):
        v = ok(run_cli(["post", "-s", f"{n + 1}h", "--json", text], env)).json()
        views[v["id"]] = v
    run = ok(run_cli(["list", "--state", state], env))
    header, *rows = run.out.splitlines()
    assert len(rows) == 3
    assert max(wcwidth.width(line) for line in run.out.splitlines()) <= 80, run.out
    # Each column starts at the same display column in every row, emoji and CJK included.
    names = header.split()
    starts = [wcwidth.width(header[: header.index(name)]) for name in names]
    for row, v in zip(rows, views.values(), strict=True):
        cells = [at_columns(row, start) for start in starts]
        short_id = cells[0].split()[0]
        assert v["id"].startswith(short_id) and len(short_id) >= 8
        shown = ok(run_cli(["show", short_id, "--json"], env)).json()
        assert shown["id"] == v["id"]  # a cut ID is a unique prefix: still a valid ID
        assert cells[names.index("WHEN")].startswith(v["scheduled_at"][:10])
        assert cells[names.index("DUE")].startswith("in ")
        accounts = cells[names.index("ACCOUNTS")].split()[0]
        assert accounts.endswith("…") and ",".join(v["platforms"]).startswith(accounts[:-1])
        preview = cells[names.index("PREVIEW")]
        assert preview.endswith("…") and len(preview) > 1
        # Cut between graphemes: what is kept is whole graphemes of the full preview.
        graphemes = list(wcwidth.iter_graphemes(v["preview"]))
        kept = list(wcwidth.iter_graphemes(preview[:-1]))
        assert kept == graphemes[: len(kept)], (preview, v["preview"])
    # --wide: every column in full, whatever the width.
    wide = ok(run_cli(["list", "--state", state, "--wide"], env)).out
    for v in views.values():
        (line,) = [line for line in wide.splitlines() if line.startswith(v["id"] + " ")]
        assert line.endswith(v["preview"]) and "mastodon-main,bluesky-main" in line
    assert max(wcwidth.width(line) for line in wide.splitlines()) > 80
    # JSON is not cut.
    listed = ok(run_cli(["list", "--state", state, "--json"], env)).json()
    assert {v["id"]: v["preview"] for v in listed} == {i: v["preview"] for i, v in views.items()}


def test_list_cuts_ids_only_to_prefixes_that_stay_unique(env: dict[str, str]) -> None:
    env = {**env, "COLUMNS": "80"}
    ok(invoke(["init"], env))
    names = ["launch", "launch-party-with-the-whole-team", "launch-day"]
    for n, name in enumerate(names):
        text = f"---\nschedule: 2030-01-0{n + 1}T09:00:00Z\n---\n{name} " + "words " * 20
        (spool_root(env) / "scheduled" / f"{name}.md").write_text(text)
    (spool_root(env) / "drafts" / "launch-party-in-berlin.md").write_text("x\n")
    header, *rows = ok(run_cli(["list"], env)).out.splitlines()
    assert max(len(line) for line in [header, *rows]) <= 80
    shown = [row.split()[0] for row in rows]
    assert shown == ["launch", "launch-party-w", "launch-day"]
    for short, name in zip(shown, names, strict=True):
        assert ok(run_cli(["show", short, "--json"], env)).json()["id"] == name


def test_stats_shape(env: dict[str, str]) -> None:
    post_scheduled(env, "soon", "10m")
    post_scheduled(env, "next week", "10d")
    ok(invoke(["post", "--draft", "kept"], env))
    s = cli_json(["stats"], env)
    assert {"total", "by_state", "by_platform", "buckets", "next"} <= set(s)
    assert s["total"] == 3
    assert s["by_state"] == {"new": 0, "drafts": 1, "scheduled": 2, "sent": 0, "failed": 0}
    assert s["by_platform"] == {"outbox": 2}
    assert set(s["buckets"]) == {"next_hour", "today", "this_week", "later"}
    assert s["buckets"]["next_hour"] == 1 and s["buckets"]["later"] == 1
    assert sum(s["buckets"].values()) == 2
    assert [v["preview"] for v in s["next"]] == ["soon", "next week"]
    for v in s["next"]:
        check_post_view(v, "scheduled")
    assert "3 posts" in ok(invoke(["stats"], env)).out


def test_cancel_all_refuses_without_a_terminal_unless_forced(env: dict[str, str]) -> None:
    ids = {post_scheduled(env, f"post {n}")["id"] for n in range(3)}
    run = run_cli(["cancel", "--all"], env)
    assert run.code == 2
    assert "--force" in run.err and run.out == ""
    assert {x["id"] for x in cli_json(["list"], env)} == ids
    done = cli_json(["cancel", "--all", "--force"], env)
    assert {x["id"] for x in done} == ids
    assert cli_json(["list"], env) == []
    assert {x["id"] for x in cli_json(["list", "--state", "drafts"], env)} == ids


def test_post_without_schedule_sends_to_the_outbox(env: dict[str, str]) -> None:
    run = ok(run_cli(["post", "--json", "Hello, outbox!"], env))
    v = run.json()
    check_post_view(v, "sent")
    assert v["attempts"] == 1
    assert set(v["results"]) == {"outbox"}
    lines = (state_home(env) / "outbox.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["id"] == v["id"] and record["parts"] == ["Hello, outbox!"]
    assert v["results"]["outbox"]["id"] == record["idempotency_key"]
    stored = parse((spool_root(env) / "sent" / f"{v['id']}.md").read_bytes())
    assert stored.results["outbox"].id == record["idempotency_key"]
    assert stored.results["outbox"].error is None
    assert stored.attempts == 1
    # Text mode: the ID on stdout, the account's result on stderr.
    run = ok(run_cli(["post", "from text mode"], env))
    assert re.fullmatch(r"[0-9a-z]{8}-from-text-mode\n", run.out)
    assert "outbox: sent" in run.err


def test_post_reads_stdin(env: dict[str, str]) -> None:
    v = cli_json(["post", "-s", "1h"], env, input="from stdin\n---\npart two\n")
    assert cli_json(["show", v["id"]], env)["parts"] == ["from stdin", "part two"]


def test_now_without_a_daemon_sends_in_the_foreground(env: dict[str, str]) -> None:
    post_id = post_scheduled(env, "send me now", "5h")["id"]
    v = cli_json(["now", post_id], env)
    check_post_view(v, "sent")
    assert set(v["results"]) == {"outbox"}
    assert (spool_root(env) / "sent" / f"{post_id}.md").is_file()
    assert len((state_home(env) / "outbox.jsonl").read_text().splitlines()) == 1


EXEC_CONFIG = """
[accounts.ok]
platform = "exec"
command = ["sh", "-c", "cat >> {log}; echo >> {log}; echo id-$PLURSPOOL_ACCOUNT"]

[accounts.x]
platform = "exec"
command = ["{x}"]
"""


def test_retry_sends_only_to_accounts_that_did_not_succeed(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "sent.jsonl"
    config = write_config(env, EXEC_CONFIG.format(log=log, x="false"))
    run = invoke(["post", "--json", "-p", "ok", "-p", "x", "half of it works"], env)
    assert run.code == 1  # a send failure is an operational failure
    v = run.json()
    check_post_view(v, "failed")
    assert v["results"] == {"ok": {"id": "id-ok", "url": None}}
    assert v["error"] is not None and "x: command exited 1" in v["error"]
    post_id = v["id"]
    assert "command exited 1" in (spool_root(env) / "failed" / f"{post_id}.error").read_text()
    failed = cli_json(["list", "--state", "failed"], env)
    assert [x["id"] for x in failed] == [post_id] and failed[0]["error"] == v["error"]
    assert cli_json(["show", post_id], env)["error"] == v["error"]
    assert len(log.read_text().splitlines()) == 1

    config.write_text(EXEC_CONFIG.format(log=log, x="true"))
    again = cli_json(["retry", post_id], env)
    check_post_view(again[0], "scheduled")
    assert at(again[0]) <= datetime.now(UTC) + timedelta(seconds=1)
    assert not (spool_root(env) / "failed" / f"{post_id}.error").exists()
    ok(invoke(["send", "--once"], env))
    done = cli_json(["show", post_id], env)
    check_post_view(done, "sent")
    assert set(done["results"]) == {"ok", "x"}
    assert done["results"]["ok"] == {"id": "id-ok", "url": None}
    assert len(log.read_text().splitlines()) == 1  # `ok` was not sent twice


def test_retry_of_a_post_that_is_not_failed(env: dict[str, str]) -> None:
    post_id = post_scheduled(env, "queued")["id"]
    run = invoke(["retry", post_id], env)
    assert run.code == 4  # no failed post has that ID
    assert invoke(["retry"], env).code == 2


def test_send_once_takes_in_new_and_fails_invalid_files(env: dict[str, str]) -> None:
    ok(invoke(["init"], env))
    root = spool_root(env)
    (root / "new" / "good.md").write_bytes(b"---\nschedule: 2h\n---\nfrom a script\n")
    bad = b"---\nschedule: [\n---\nbroken\n"
    (root / "new" / "bad.md").write_bytes(bad)
    run = ok(invoke(["send", "--once"], env))
    assert "1 taken in" in run.err and "1 failed" in run.err
    assert (root / "failed" / "bad.md").read_bytes() == bad
    assert "line 3: " in (root / "failed" / "bad.error").read_text()
    good = cli_json(["show", "good"], env)
    check_post_view(good, "scheduled")
    assert parse((root / "scheduled" / "good.md").read_bytes()).schedule != "2h"


# -- check -----------------------------------------------------------------------------------


def test_check_reports_path_line_and_message(env: dict[str, str]) -> None:
    ok(invoke(["init"], env))
    root = spool_root(env)
    post_scheduled(env, "fine")
    assert ok(invoke(["check"], env)).out == ""
    bad = root / "new" / "bad.md"
    bad.write_bytes(b"---\ncw: fine\nschedule: [\n---\nbody\n")
    before = sorted(p.name for p in root.rglob("*"))
    run = invoke(["check"], env)
    assert run.code == 3
    assert run.out.splitlines() == [f"{bad}: line 4: the frontmatter is not valid YAML"]
    assert "2 checked, 1 with problems" in run.err
    assert sorted(p.name for p in root.rglob("*")) == before  # check changes nothing
    reports = invoke(["check", "--json"], env)
    assert reports.code == 3
    [report] = [r for r in reports.json() if r["problems"]]
    assert report["path"] == str(bad) and report["id"] == "bad"
    # Explicit paths, e.g. from a pre-commit hook.
    good = root / "drafts" / "good.md"
    good.write_bytes(b"---\nschedule: tomorrow 9am\n---\nok\n")
    assert ok(invoke(["check", str(good)], env)).out == ""
    assert invoke(["check", str(good), str(bad)], env).code == 3
    unknown = root / "drafts" / "unknown.md"
    unknown.write_bytes(b"---\nplatforms: [nowhere]\n---\nhi\n")
    run = invoke(["check", str(unknown)], env)
    assert run.code == 3 and "unknown account nowhere" in run.out


# -- exit codes and streams ------------------------------------------------------------------


def test_usage_errors_exit_2(env: dict[str, str]) -> None:
    for args in (
        ["post", "--draft", "-s", "1h", "x"],
        ["post", "--no-such-option"],
        ["cancel"],
        ["list", "--state", "nowhere"],
        ["no-such-command"],
        ["reschedule", "abc"],
    ):
        run = run_cli(args, env)
        assert run.code == 2, (args, run)
        assert run.out == "" and run.err, args
    assert "exclude each other" in run_cli(["post", "--draft", "-s", "1h", "x"], env).err


@pytest.mark.slow
def test_invalid_times_exit_3_and_name_the_time(env: dict[str, str]) -> None:
    run = run_cli(["post", "-s", "2020-01-01T00:00:00Z", "x"], env)
    assert run.code == 3
    assert "2020-01-01" in run.err and "past" in run.err
    assert run.out == ""
    run = run_cli(["post", "-s", "when pigs fly", "x"], env)
    assert run.code == 3 and "when pigs fly" in run.err
    post_id = post_scheduled(env, "x")["id"]
    run = run_cli(["reschedule", post_id, "-3h"], env)
    assert run.code == 3 and "past" in run.err
    assert run_cli(["post", "-s", "1h", ""], env).code == 3  # an empty post is invalid


@pytest.mark.slow
def test_unknown_and_ambiguous_ids_exit_4(env: dict[str, str]) -> None:
    ok(invoke(["init"], env))
    root = spool_root(env)
    for name in ("abc-1", "abc-2"):
        (root / "scheduled" / f"{name}.md").write_bytes(
            b"---\nschedule: 2030-01-01T00:00Z\n---\nx\n"
        )
    for cmd in (["show"], ["cancel"], ["now"], ["edit"], ["reschedule", "+1h"]):
        for prefix, word in (("abc", "ambiguous"), ("zzz", "no post")):
            args = [cmd[0], prefix, *cmd[1:]]
            run = run_cli(args, env)
            assert run.code == 4, (args, run)
            assert word in run.err and run.out == ""
    assert run_cli(["show", "abc-1"], env).code == 0


def test_operational_failures_exit_1(env: dict[str, str], tmp_path: Path) -> None:
    ok(invoke(["init"], env))
    root = spool_root(env)
    (root / "sent" / KEEP).unlink()
    (root / "sent").rmdir()
    (root / "sent").symlink_to(tmp_path)
    for args in (["list"], ["send", "--once"], ["post", "-s", "1h", "x"]):
        run = run_cli(args, env)
        assert run.code == 1, (args, run)
        assert "symlink" in run.err and "Traceback" not in run.err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("bogus = 1\n", "bogus: unknown key"),
        ("spool = [\n", "invalid TOML"),
        ("[daemon]\nmax_retries = -1\n", "max_retries"),
        ('default_platforms = ["nowhere"]\n', "nowhere"),
    ],
)
def test_a_bad_config_is_a_clear_message_not_a_traceback(
    env: dict[str, str], text: str, needle: str
) -> None:
    path = write_config(env, text)
    for args in (["list"], ["post", "-s", "1h", "x"], ["send", "--once"]):
        run = run_cli(args, env)
        assert run.code == 1, (args, run)
        assert run.err.startswith(f"plurspool: {path}"), run.err
        assert needle in run.err
        assert "Traceback" not in run.err and run.out == ""


@pytest.mark.slow
def test_json_goes_to_stdout_and_messages_to_stderr(env: dict[str, str]) -> None:
    run = ok(run_cli(["post", "-s", "1h", "--json", "streams"], env))
    v = run.json()
    check_post_view(v, "scheduled")
    run = ok(run_cli(["list", "--format", "json"], env))
    assert [x["id"] for x in run.json()] == [v["id"]]
    run = ok(run_cli(["list", "--state", "sent", "--json"], env))
    assert run.json() == []
    assert "no posts" not in run.out
    run = ok(run_cli(["list", "--state", "sent"], env))
    assert run.out == "" and "no posts in sent" in run.err
    run = ok(run_cli(["stats", "--json"], env))
    assert run.json()["total"] == 1


OUTBOX_AND_FAILING = """
[accounts.outbox]
platform = "outbox"

[accounts.x]
platform = "exec"
command = ["false"]
"""


@pytest.mark.slow
def test_resolved_times_are_echoed_on_stderr_with_json_too(env: dict[str, str]) -> None:
    write_config(env, OUTBOX_AND_FAILING)

    def echoed(run: Run, verb: str) -> dict[str, Any]:
        """stdout is pure JSON; stderr names the post and its time in local time and UTC."""
        data = run.json()
        v: dict[str, Any] = data[0] if isinstance(data, list) else data
        local = at(v).strftime("%a %Y-%m-%d %H:%M:%S UTC (+00:00)")
        assert run.err == f"{v['id']}: {verb} for {local} = {v['scheduled_at']}\n", run.err
        return v

    v = echoed(ok(run_cli(["post", "-s", "2h", "--json", "-p", "outbox", "hi"], env)), "queued")
    echoed(ok(run_cli(["reschedule", v["id"], "+1h", "--json"], env)), "rescheduled")
    ok(run_cli(["cancel", v["id"]], env))
    echoed(ok(run_cli(["schedule", v["id"], "3h", "--format", "json"], env)), "queued")
    failed = run_cli(["post", "-p", "x", "--json", "fails"], env)
    assert failed.code == 1 and failed.json()["state"] == "failed"
    echoed(ok(run_cli(["retry", failed.json()["id"], "--json"], env)), "queued again")
    # Text output: the ID on stdout, the time on stderr, as before.
    run = ok(run_cli(["reschedule", v["id"], "+1h"], env))
    assert run.out == v["id"] + "\n" and run.err.startswith("rescheduled for ")


@pytest.mark.slow
def test_show_of_a_sent_or_failed_post_is_not_due_now(env: dict[str, str]) -> None:
    write_config(env, OUTBOX_AND_FAILING)
    sent = ok(run_cli(["post", "-p", "outbox", "--json", "sent at once"], env)).json()
    failed = run_cli(["post", "-p", "x", "--json", "fails at once"], env).json()
    queued = ok(run_cli(["post", "-s", "2h", "-p", "outbox", "--json", "later"], env)).json()
    for v, state in ((sent, "sent"), (failed, "failed"), (queued, "scheduled")):
        out = ok(run_cli(["show", v["id"]], env)).out
        (when,) = [line for line in out.splitlines() if line.startswith("when:")]
        if state == "scheduled":
            assert re.search(r" = \S+Z \(in (1h5\dm|2h00m)\)$", when), when
        else:
            assert when.endswith(f" = {v['scheduled_at']}"), when  # no (due now), no (overdue)
        assert f"state:     {state}" in out


# -- help, aliases, start-up -----------------------------------------------------------------


def all_commands() -> list[list[str]]:
    out: list[list[str]] = [[]]
    for name, cmd in cli.commands.items():
        out.append([name])
        if isinstance(cmd, click.Group):
            out.extend([name, sub] for sub in cmd.commands)
    return out


@pytest.mark.parametrize("words", all_commands(), ids=lambda w: " ".join(w) or "plurspool")
def test_every_command_has_help(env: dict[str, str], words: list[str]) -> None:
    run = ok(invoke([*words, "--help"], env))
    assert run.out.startswith("Usage: ")
    assert not Path(env["XDG_DATA_HOME"], "plurspool").exists()  # --help touches nothing


def test_help_does_not_import_heavy_libraries(env: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "from plurspool.cli import cli\n"
        "try:\n"
        "    cli(['--help'], prog_name='plurspool')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('dateparser', 'watchdog', 'filelock', 'yaml', 'sqlite3')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def complete(env: dict[str, str], line: str) -> list[str]:
    """What bash completion offers for `line` (click's protocol, through the installed tool)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {**env, "_PLURSPOOL_COMPLETE": "bash_complete", "COMP_WORDS": line}
    proc = subprocess.run(
        [str(BIN / "plurspool")],
        env={**env, "COMP_CWORD": str(cword)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stderr == ""
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if line]


@pytest.mark.slow
def test_shell_completion_completes_post_ids_from_the_right_states(
    env: dict[str, str], tmp_path: Path
) -> None:
    write_config(env, OUTBOX_AND_FAILING)
    ids = {
        "scheduled": post_scheduled(env, "queued one")["id"],
        "drafts": cli_json(["post", "--draft", "a draft"], env)["id"],
        "sent": cli_json(["post", "-p", "outbox", "sent one"], env)["id"],
        "failed": invoke(["post", "-p", "x", "--json", "failed one"], env).json()["id"],
    }
    root = spool_root(env)
    (root / "new" / "dropped-in.md").write_text("by hand\n")
    ids["new"] = "dropped-in"
    for junk in (".hidden.md", "notes.txt", "scheduled.md~", "x.sync-conflict-1.md"):
        (root / "scheduled" / junk).write_text("not a post\n")

    def expect(*states: str) -> list[str]:
        return sorted(ids[s] for s in states)

    assert complete(env, "plurspool show ") == expect(*ids)
    assert complete(env, "plurspool edit ") == expect("new", "drafts", "scheduled", "failed")
    assert complete(env, "plurspool cancel ") == expect("scheduled", "new")
    assert complete(env, "plurspool reschedule ") == expect("scheduled", "drafts")
    assert complete(env, "plurspool schedule ") == expect("drafts")
    assert complete(env, "plurspool now ") == expect("scheduled")
    assert complete(env, "plurspool retry ") == expect("failed")
    assert complete(env, f"plurspool show {ids['sent'][:4]}") == [ids["sent"]]
    assert complete(env, f"plurspool cancel {ids['new']} ") == [ids["scheduled"]]
    # Global options given before the command choose the spool.
    other = tmp_path / "other"
    (other / "drafts").mkdir(parents=True)
    (other / "drafts" / "elsewhere.md").write_text("x\n")
    assert complete(env, f"plurspool --spool {other} show ") == ["elsewhere"]
    assert complete({**env, "PLURSPOOL_SPOOL": str(other)}, "plurspool schedule ") == ["elsewhere"]
    # A broken config completes nothing, quietly.
    write_config(env, "[oops\n")
    assert complete(env, "plurspool show ") == []


def test_completion_imports_nothing_heavy(env: dict[str, str]) -> None:
    post_scheduled(env, "queued")
    code = (
        "import sys\n"
        "from plurspool.__main__ import main\n"
        "sys.argv = ['plurspool']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('dateparser', 'watchdog', 'filelock', 'yaml', 'sqlite3')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy), file=sys.stderr)\n"
    )
    completing = {"_PLURSPOOL_COMPLETE": "bash_complete", "COMP_CWORD": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, **completing, "COMP_WORDS": "plurspool show "},
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.startswith("plain,") and proc.stderr.strip() == "[]"


@pytest.mark.slow
def test_aliases_are_installed_and_work(env: dict[str, str]) -> None:
    for name in ("plurspool", "plur-post", "plur-queue", "plur-send"):
        assert (BIN / name).is_file(), name
    run = ok(run_cli(["-s", "1h", "--json", "via plur-post"], env, prog="plur-post"))
    post_id = run.json()["id"]
    listed = ok(run_cli(["list", "--json"], env, prog="plur-queue")).json()
    assert [x["id"] for x in listed] == [post_id]
    assert ok(run_cli(["show", post_id[:6], "--json"], env, prog="plur-queue")).json()["id"] == (
        post_id
    )
    for cmd in QUEUE_COMMANDS:
        assert ok(run_cli([cmd, "--help"], env, prog="plur-queue")).out.startswith("Usage: ")
    refused = run_cli(["send", "--once"], env, prog="plur-queue")
    assert refused.code == 2 and "plur-queue has no command 'send'" in refused.err
    assert run_cli(["post", "x"], env, prog="plur-queue").code == 2
    run = ok(run_cli(["--once"], env, prog="plur-send"))
    assert "0 taken in" in run.err
    assert ok(run_cli(["--help"], env, prog="plur-send")).out.startswith("Usage: plur-send")


@pytest.mark.slow
def test_alias_help_and_version_name_the_alias(env: dict[str, str], tmp_path: Path) -> None:
    version = ok(run_cli(["--version"], env)).out
    for prog, command in (("plur-post", "post"), ("plur-send", "send")):
        run = ok(run_cli(["--help"], env, prog=prog))
        usage_line = run.out.splitlines()[0]
        args = " [TEXT]" if prog == "plur-post" else " [COMMAND [ARGS]...]"
        assert usage_line == f"Usage: {prog} [OPTIONS]{args}"
        # The command's own help and options, and the global options it now takes.
        doc = cli.commands[command].help
        assert doc is not None and doc.split()[:3] == run.out.split("\n\n")[1].split()[:3]
        for option in ("--spool", "--config", "--verbose", "--version"):
            assert option in run.out, (prog, option)
        assert ok(run_cli(["--version"], env, prog=prog)).out == version
        assert ok(run_cli(["-V"], env, prog=prog)).out == version
    run = ok(run_cli(["--help"], env, prog="plur-queue"))
    assert run.out.startswith("Usage: plur-queue [OPTIONS] COMMAND [ARGS]...\n")
    listed = [line.split()[0] for line in run.out.split("Commands:\n", 1)[1].splitlines()]
    assert listed == sorted(QUEUE_COMMANDS)
    assert ok(run_cli(["--version"], env, prog="plur-queue")).out == version
    # The global options work with the aliases as with plurspool.
    spool = tmp_path / "elsewhere"
    run = ok(run_cli(["--spool", str(spool), "-s", "1h", "--json", "hi"], env, prog="plur-post"))
    assert (spool / "scheduled" / f"{run.json()['id']}.md").exists()
    run = ok(run_cli(["--once", "--spool", str(spool)], env, prog="plur-send"))
    assert "0 taken in" in run.err
    wrong = run_cli(["--bogus"], env, prog="plur-post")
    assert wrong.code == 2 and "Usage: plur-post [OPTIONS] [TEXT]" in wrong.err


@pytest.mark.slow
def test_plur_send_with_a_command_is_plurspool_daemon(env: dict[str, str]) -> None:
    ok(invoke(["init"], env))
    for command in ("status", "health"):
        alias = run_cli([command, "--json"], env, prog="plur-send")
        daemon = run_cli(["daemon", command, "--json"], env)
        assert (alias.code, alias.json()) == (daemon.code, daemon.json()) == (1, alias.json())
    assert run_cli(["status"], env, prog="plur-send").out.startswith("mode:")
    listed = ok(run_cli(["--help"], env, prog="plur-send")).out.split("Commands:\n", 1)[1]
    commands = [line.split()[0] for line in listed.splitlines() if line.startswith("  ")][:8]
    assert commands == sorted(cli.commands["daemon"].commands)  # type: ignore[attr-defined]
    assert sorted(commands) == sorted(
        ["install", "uninstall", "start", "stop", "restart", "status", "logs", "health"]
    )
    # send's options go with plur-send alone; an unknown command is a usage error.
    wrong = run_cli(["--once", "status"], env, prog="plur-send")
    assert wrong.code == 2 and "--once is an option of plur-send alone" in wrong.err
    assert run_cli(["bogus"], env, prog="plur-send").code == 2
    assert "0 taken in" in ok(run_cli(["--once"], env, prog="plur-send")).err


@pytest.mark.slow
def test_text_output_never_writes_a_posts_escape_sequences_to_the_terminal(
    env: dict[str, str],
) -> None:
    # A synced-in post whose text would retitle the window, recolour the terminal and move
    # the cursor; shown, its words stay and no escape or control character reaches the screen.
    ok(invoke(["init"], env))
    hostile = "Hi \x1b]0;pwned\x07there \x1b[31mred\x1b[0m\rover \x9bwritten\x07 end"
    path = spool_root(env) / "scheduled" / "esc.md"
    path.write_text(f"---\nschedule: 2030-01-01T09:00:00Z\n---\n{hostile}\n")
    for args in (["list"], ["list", "--wide"], ["show", "esc"], ["stats"]):
        run = run_cli(args, env)
        shown = run.out + run.err
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", shown), (args, shown)
        if args[0] == "show":
            assert run.code == 0, run.err
            assert "Hi there red" in shown and "end" in shown
    view = cli_json(["show", "esc"], env)
    assert "\x1b]0;pwned" in view["text"]  # JSON is data: the text as it is, escaped by JSON
