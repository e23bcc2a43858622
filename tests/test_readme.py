"""The README stays true: its config reference is the code's, its two commands are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

from plurspool.config import reference_markdown

ROOT = Path(__file__).resolve().parent.parent
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
