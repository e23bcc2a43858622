"""`plurspool --help` and `--version` print without click, exactly what click would print."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import click
import click.formatting
import pytest

from plurspool import usage
from plurspool.cli import cli
from tests.helpers import BIN

CLICK_PATH = [sys.executable, "-c", "from plurspool.cli import main; main()"]


def click_help(width: int) -> str:
    ctx = click.Context(cli, info_name="plurspool", **cli.context_settings)
    saved = click.formatting.FORCED_WIDTH
    click.formatting.FORCED_WIDTH = width
    try:
        return cli.get_help(ctx) + "\n"
    finally:
        click.formatting.FORCED_WIDTH = saved


@pytest.mark.parametrize("width", range(50, 79))  # every width click's formatter can take
def test_render_is_what_click_prints(width: int) -> None:
    assert usage.render("plurspool", width) == click_help(width)


def test_every_command_has_a_one_line_summary() -> None:
    assert set(usage.COMMANDS) == set(cli.commands)
    too_long = {name: s for name, s in usage.COMMANDS.items() if len(s) > 64}
    assert not too_long, "summaries wrap at 80 columns beyond 64 characters"


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"], ["-V"]])
@pytest.mark.parametrize("columns", [None, "1", "52", "80", "81", "200", "junk"])
def test_installed_command_prints_what_click_prints(
    env: dict[str, str], args: list[str], columns: str | None
) -> None:
    env = dict(env)
    if columns is not None:
        env["COLUMNS"] = columns
    fast = run([str(BIN / "plurspool"), *args], env)
    slow = run([*CLICK_PATH, *args], env)
    assert (fast.returncode, fast.stdout, fast.stderr) == (0, slow.stdout, b"")
    assert slow.returncode == 0
    assert fast.stdout.startswith(b"Usage: plurspool " if "h" in args[0] else b"plurspool, ")


def test_ascii_locale_gets_utf8_as_with_click(env: dict[str, str]) -> None:
    env = dict(env, PYTHONIOENCODING="ascii")
    fast = run([str(BIN / "plurspool"), "--help"], env)
    slow = run([*CLICK_PATH, "--help"], env)
    assert fast.returncode == 0 and fast.stdout == slow.stdout
    assert "→".encode() in fast.stdout


def test_help_and_version_do_not_import_click(env: dict[str, str]) -> None:
    for arg in ("--help", "--version"):
        code = (
            "import sys\n"
            f"sys.argv = ['plurspool', {arg!r}]\n"
            "from plurspool.__main__ import main\n"
            "main()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'click'), file=sys.stderr)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert proc.stdout
        assert proc.stderr.strip() == "[]"


def imported_by(module: str, path: Path) -> set[str]:
    """Every module a source file imports, at the top or inside a function, by full name."""
    package = module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            full = ".".join(p for p in (base, node.module) if p)
            names.add(full)
            names.update(f"{full}.{alias.name}" for alias in node.names)
    return names


def test_usage_imports_neither_click_nor_the_cli(env: dict[str, str]) -> None:
    """usage.py is the help as data, which the cli package builds on: no cycle back to it."""
    assert usage.__file__ is not None
    names = imported_by("plurspool.usage", Path(usage.__file__))
    assert not {n for n in names if n.split(".")[0] == "click" or n.startswith("plurspool.cli")}
    code = (
        "import sys\n"
        "import plurspool.usage\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'click'"
        " or m.startswith('plurspool.cli')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "[]"


def test_python_m_plurspool_is_plurspool(env: dict[str, str]) -> None:
    for args in (["--version"], ["--help"], ["list", "--json"], ["list", "--bogus"]):
        installed = run([str(BIN / "plurspool"), *args], env)
        as_module = run([sys.executable, "-m", "plurspool", *args], env)
        assert (as_module.returncode, as_module.stdout, as_module.stderr) == (
            installed.returncode,
            installed.stdout,
            installed.stderr,
        )
    assert run([sys.executable, "-m", "plurspool", "list", "--json"], env).stdout == b"[]\n"


def test_other_arguments_go_through_click(env: dict[str, str]) -> None:
    proc = run([str(BIN / "plurspool"), "--help", "--bogus"], env)
    assert proc.returncode == 2
    assert b"No such option '--bogus'" in proc.stderr
    proc = run([str(BIN / "plurspool"), "list", "--help"], env)
    assert proc.returncode == 0 and proc.stdout.startswith(b"Usage: plurspool list ")


def test_a_closed_or_full_stdout_is_no_traceback(env: dict[str, str]) -> None:
    plurspool = str(BIN / "plurspool")
    closed = subprocess.run(
        f"{plurspool} --help >&-", shell=True, env=env, capture_output=True, timeout=60
    )
    assert (closed.returncode, closed.stderr) == (0, b"")
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [plurspool, "--help"], env=env, stdout=full, stderr=subprocess.PIPE, timeout=60
        )
    assert proc.returncode == 1
    assert proc.stderr == b"plurspool: cannot write to standard output: No space left on device\n"
    piped = subprocess.run(
        f"{plurspool} --help | head -c 10", shell=True, env=env, capture_output=True, timeout=60
    )
    assert piped.stdout == b"Usage: plu" and piped.stderr == b""
