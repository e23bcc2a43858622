"""The README stays true: its config reference is the code's, its two commands are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plurspool.config import reference_markdown

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_config_reference_is_generated_from_the_key_table() -> None:
    m = re.search(
        r"<!-- config-reference:start -->\n(.*)\n<!-- config-reference:end -->", README, re.S
    )
    assert m is not None, "README lost its config-reference markers"
    assert m.group(1) == reference_markdown().rstrip("\n"), (
        "README's config reference is stale: paste the output of "
        "`python -c 'from plurspool.config import reference_markdown; print(reference_markdown())'`"
    )


def test_the_test_command_is_what_ci_runs() -> None:
    assert "\ntests/run\n" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "tests/run" in ci


def test_the_first_command_installs_and_sends() -> None:
    first = re.search(r"```sh\n(pip install \. .*)\n```", README)
    assert first is not None
    assert "plurspool post" in first.group(1) and "plurspool send" in first.group(1)


@pytest.mark.realtime
def test_the_first_command_really_sends_to_the_outbox(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    first = re.search(r"```sh\npip install \. && (.*)\n```", README)
    assert first is not None
    env = {
        "HOME": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TZ": "UTC",
    }
    r = subprocess.run(
        ["sh", "-c", first.group(1)], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "Hello from plurspool" in r.stdout
    outbox = tmp_path / "state" / "plurspool" / "outbox.jsonl"
    assert '"Hello from plurspool"' in outbox.read_text()


@pytest.mark.slow
@pytest.mark.realtime
def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    """The five-minute tour, run by sh -e exactly as the README has it."""
    import os
    import subprocess
    import sys

    tour = re.search(r"## A five-minute tour\n\n```sh\n(.*?)```", README, re.S)
    assert tour is not None
    env = {
        "HOME": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TZ": "UTC",
        "EDITOR": "true",  # `edit` leaves the post unchanged
        "PLURSPOOL_SERVICE_MODE": "pidfile",
    }
    try:
        r = subprocess.run(
            ["sh", "-e", "-c", tour.group(1)], env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        subprocess.run(["plurspool", "daemon", "stop"], env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Good morning, fediverse" in r.stdout  # list and show
    outbox = tmp_path / "state" / "plurspool" / "outbox.jsonl"
    assert '"Right now"' in outbox.read_text()
    spool = tmp_path / "data" / "plurspool" / "spool"
    assert len(list((spool / "drafts").glob("*.md"))) == 1  # the cancelled post
    assert len(list((spool / "scheduled").glob("*.md"))) == 3  # 2h, thread, the draft


def test_the_completion_commands_generate_scripts(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    block = re.search(r"## Shell completion\n.*?```sh\n(.*?)```", README, re.S)
    assert block is not None
    env = {"HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for line in block.group(1).splitlines():
        shell = re.search(r"_PLURSPOOL_COMPLETE=(\w+)_source", line)
        assert shell is not None, line
        r = subprocess.run(
            ["plurspool"],
            env={**env, "_PLURSPOOL_COMPLETE": f"{shell.group(1)}_source"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 0 and "_PLURSPOOL_COMPLETE" in r.stdout


def section(title: str) -> str:
    """The README's text under `## title`, up to the next `## ` heading."""
    m = re.search(rf"\n## {re.escape(title)}\n(.*?)(?=\n## )", README, re.S)
    assert m is not None, f"README lost its section {title!r}"
    return m.group(1)


def test_the_rich_post_examples_pass_check(tmp_path: Path) -> None:
    """Each post file shown under "Polls, quotes and link cards" is one `check` passes."""
    from plurspool.post import parse
    from tests.helpers import invoke, make_env, spool_root, write_config

    env = make_env(tmp_path)
    write_config(
        env,
        '[accounts.mastodon]\ninstance = "https://example.social"\n'
        '[accounts.bluesky]\nhandle = "me.example.com"\nservice = "https://bsky.social"\n'
        '[accounts.nostr]\nrelays = ["wss://relay.example.com"]\n',
    )
    assert invoke(["init"], env).code == 0
    examples = re.findall(r"```markdown\n(.*?)```", section("Polls, quotes and link cards"), re.S)
    assert examples
    for number, text in enumerate(examples, 1):
        parse(text.encode())
        path = spool_root(env) / "drafts" / f"example-{number}.md"
        path.write_text(text, encoding="utf-8")
        run = invoke(["check", str(path)], env)
        problems = [line for line in run.out.splitlines() if ": warning: " not in line]
        assert run.code == 0 and problems == [], (text, run)


def test_the_threads_example_explains_a_split_post(tmp_path: Path) -> None:
    """README's `check --explain` example, run as written on a post to an account it splits."""
    import os
    import subprocess
    import sys

    example = re.search(r"### Threads that fit\n.*?```sh\n(.*?)\n```", README, re.S)
    assert example is not None
    env = {
        "HOME": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TZ": "UTC",
    }
    config = tmp_path / "config" / "plurspool" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[accounts.log]\nplatform = "exec"\ncommand = ["true"]\nmax_length = 60\n')
    text = "A first sentence of the launch. " * 6
    draft = subprocess.run(
        ["plurspool", "post", "--draft", text], env=env, capture_output=True, text=True, timeout=60
    )
    assert draft.returncode == 0, draft.stderr
    [made] = (tmp_path / "data" / "plurspool" / "spool" / "drafts").glob("*.md")
    made.rename(made.with_name("launch-day.md"))
    r = subprocess.run(
        ["sh", "-c", example.group(1)], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("== drafts/launch-day.md\n-- log, part 1 of 6: 35 of 60\n")
    assert r.stdout.count("A first sentence of the launch.") == 6
