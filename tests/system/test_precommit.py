"""`.pre-commit-config.yaml` runs the checks `tests/run` runs, with the same arguments."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def run_commands() -> set[str]:
    """The check commands of tests/run (`.venv/bin/TOOL ...` lines), normalised."""
    text = (ROOT / "tests" / "run").read_text(encoding="utf-8")
    found = set()
    for line in text.splitlines():
        line = re.sub(r"\s+#.*$", "", line.strip())
        if line.startswith(".venv/bin/") and "pip" not in line and "tests.peers" not in line:
            found.add(shlex.join(shlex.split(line.replace(' "$@"', ""))))
    return found


def hooks() -> dict[str, str]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    (repo,) = config["repos"]
    assert repo["repo"] == "local"
    return {h["id"]: shlex.join(shlex.split(h["entry"])) for h in repo["hooks"]}


def test_every_check_of_tests_run_is_a_hook() -> None:
    checks = run_commands()
    assert len(checks) == 5, checks  # ruff format, ruff check, mypy, lint-imports, pytest
    entries = set(hooks().values())
    static = {c for c in checks if "pytest" not in c}
    assert static <= entries, static - entries


def test_the_push_hook_runs_the_quick_subset_that_contributing_names() -> None:
    quick = hooks()["quick-tests"]
    assert quick.startswith(".venv/bin/python -m pytest -q -p no:cacheprovider -m ")
    marker = shlex.split(quick)[-1]
    assert marker == "not slow and not peers and not realtime"
    contributing = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    named = [
        shlex.join(shlex.split(line))
        for line in contributing.splitlines()
        if line.startswith(".venv/bin/python -m pytest") and "-m " in line
    ]
    assert quick in named
