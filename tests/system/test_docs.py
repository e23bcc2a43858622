"""The man pages lint clean and keep up with the code.

Every command, subcommand and option of the CLI is named in plurspool(1), with the options in
their command's own entry; every post key in plurspool(5); every configuration key in
plurspool-config(5), whose KEYS section is exactly `plurspool.config.reference_roff()`; every
environment variable the package reads in plurspool(1)'s ENVIRONMENT.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from plurspool import config, post
from plurspool.cli import QUEUE_COMMANDS, cli

ROOT = Path(__file__).resolve().parents[2]
MAN = ROOT / "man"
PAGES = ("plurspool.1", "plurspool.5", "plurspool-config.5")

BEGIN = '.\\" BEGIN GENERATED: plurspool.config.reference_roff()'
END = '.\\" END GENERATED'
REGENERATE = f"""regenerate it with:
    .venv/bin/python - <<'EOF'
from pathlib import Path
from plurspool.config import reference_roff
page = Path("man/plurspool-config.5")
begin, end = {BEGIN!r}, {END!r}
text = page.read_text()
head, rest = text.split(begin + "\\n", 1)
_, tail = rest.split(end + "\\n", 1)
page.write_text(head + begin + "\\n" + reference_roff() + end + "\\n" + tail)
EOF
then describe any new key in the prose of man/plurspool-config.5 (ACCOUNTS for account keys)"""


# --- reading roff ---------------------------------------------------------------------------

_INLINE = [
    (re.compile(r"\\f(?:\[[^]]*\]|\(..|.)"), ""),  # font changes
    (re.compile(r"\\[&%c]"), ""),  # zero-width, no-hyphenation, continuation
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\\(aq"), "'"),
    (re.compile(r"\\\(dq"), '"'),
    (re.compile(r"\\\(ga"), "`"),
    (re.compile(r"\\\((?:lq|rq)"), '"'),
    (re.compile(r"\\ "), " "),
    (re.compile(r"\\e"), "\\\\"),
]
_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}
_JOINED = {"B", "I", "SM", "SB", "SH", "SS", "IP", "TH"}


def inline(text: str) -> str:
    """Roff escapes in running text → plain characters."""
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    return text


def macro_args(rest: str) -> list[str]:
    """A macro line's arguments: words, or double-quoted strings ("" is a literal quote)."""
    args = []
    for m in re.finditer(r'"((?:[^"]|"")*)"?|(\S+)', rest):
        args.append(m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2))
    return args


def strip_comments(src: str) -> list[str]:
    lines = []
    for line in src.splitlines():
        if line.startswith(('.\\"', "'\\\"")):
            continue
        lines.append(re.sub(r'\\".*$', "", line))
    return lines


def plain(src: str) -> str:
    """Roff source → its text, one output line per input line; good enough to search."""
    out = []
    for line in strip_comments(src):
        if line.startswith((".", "'")):
            name, _, rest = line[1:].partition(" ")
            args = macro_args(rest)
            if name in _ALTERNATING:
                out.append(inline("".join(args)))
            elif name in _JOINED:
                out.append(inline(" ".join(args)))
            else:
                out.append("")
        else:
            out.append(inline(line))
    return "\n".join(out)


def bold(src: str) -> set[str]:
    """Every stretch of text set in bold, as plain text."""
    spans: set[str] = set()
    for line in strip_comments(src):
        if line.startswith((".B ", ".SB ")):
            spans.add(inline(" ".join(macro_args(line.split(" ", 1)[1]))))
        elif line[:3] in (".BR", ".BI", ".RB", ".IB"):
            args = macro_args(line[4:])
            first = 0 if line[1] == "B" else 1
            spans.update(inline(a) for a in args[first::2])
        for m in re.finditer(r"\\fB(.*?)(?=\\f[RPI]|$)", line):
            spans.add(inline(m.group(1)))
    return {s.strip() for s in spans}


def sections(src: str, macro: str) -> dict[str, str]:
    """Roff source split at `.SH` or `.SS` lines: plain heading → the source up to the next."""
    out: dict[str, str] = {}
    heading: str | None = None
    chunk: list[str] = []
    for line in src.splitlines():
        if line.startswith(macro + " ") or (macro == ".SS" and line.startswith(".SH ")):
            if heading is not None:
                out[heading] = "\n".join(chunk)
            heading = plain(line) if line.startswith(macro + " ") else None
            chunk = []
        elif heading is not None:
            chunk.append(line)
    if heading is not None:
        out[heading] = "\n".join(chunk)
    return out


def names(text: str, word: str) -> bool:
    """True if `word` (an option, a key) appears in `text` as a whole word."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def page(name: str) -> str:
    return (MAN / name).read_text(encoding="utf-8")


# --- the CLI --------------------------------------------------------------------------------


def walk(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name in sorted(group.commands):
        yield (*path, name)
        sub = group.commands[name]
        if isinstance(sub, click.Group):
            yield from walk(sub, (*path, name))


def command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = cli
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


def options(cmd: click.Command) -> list[str]:
    """Every option string of a command (short and long, --no-x included), except --help."""
    out = []
    for param in cmd.params:
        if isinstance(param, click.Option):
            out += [*param.opts, *param.secondary_opts]
    return [o for o in out if o not in ("-h", "--help")]


COMMANDS = list(walk(cli))


def command_sections() -> dict[str, str]:
    """plurspool(1)'s COMMANDS entries: top-level command name → its roff source."""
    entries = sections(sections(page("plurspool.1"), ".SH")["COMMANDS"], ".SS")
    out = {}
    for heading, body in entries.items():
        words = heading.split()
        assert words[0] == "plurspool", f"COMMANDS entry {heading!r} must start with plurspool"
        out[words[1]] = heading + "\n" + body
    return out


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_page_lints_clean(name: str) -> None:
    groff = shutil.which("groff")
    assert groff, "groff is needed to lint the man pages: apt-get install groff-base groff"
    r = subprocess.run(
        [groff, "-man", "-ww", "-z", str(MAN / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0
    assert r.stderr == ""


def test_every_command_has_an_entry() -> None:
    entries = command_sections()
    top = sorted(cli.commands)
    assert sorted(entries) == top, "plurspool(1) COMMANDS: one .SS entry per command, in any order"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_command_and_its_options_are_named(path: tuple[str, ...]) -> None:
    entry = command_sections()[path[0]]
    if len(path) > 1:
        # A subcommand is a bold tag (`.TP` + `.B health`) in its group's entry.
        tags = {span.split()[0] for span in bold(entry) if span}
        assert path[-1] in tags, f"plurspool {' '.join(path)}: not in bold in its group's entry"
    text = plain(entry)
    missing = [o for o in options(command(path)) if not names(text, o)]
    assert not missing, f"plurspool {' '.join(path)}: options not in its entry: {missing}"


def test_global_options_are_named() -> None:
    text = plain(sections(page("plurspool.1"), ".SH")["OPTIONS"])
    missing = [o for o in [*options(cli), "-h", "--help"] if not names(text, o)]
    assert not missing


def test_aliases_are_named() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    parts = sections(page("plurspool.1"), ".SH")
    for name in scripts:
        assert names(plain(parts["NAME"]), name), name
        assert names(plain(parts["SYNOPSIS"]), name), name
    aliases = parts["PLUR ALIASES"]
    assert set(QUEUE_COMMANDS) <= bold(aliases), "plur-queue's commands, in bold"


def test_post_keys_are_in_bold() -> None:
    spans = bold(page("plurspool.5"))
    keys = {
        *post.TOP_KEYS,
        *post.MEDIA_KEYS,
        *post.OVERRIDE_KEYS,
        *post.RESULT_KEYS,
        *post.POLL_KEYS,
        *post.CARD_KEYS,
    }
    # `.BR cw ", " language` sets several keys in bold on one line: split such spans.
    words = {w for s in spans for w in re.split(r"[,\s]+", s) if w}
    missing = sorted(k for k in keys if k not in spans and k not in words)
    assert not missing


def test_config_reference_is_generated() -> None:
    text = page("plurspool-config.5")
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"markers missing; {REGENERATE}"
    embedded = text.split(BEGIN + "\n", 1)[1].split(END + "\n", 1)[0]
    assert embedded == config.reference_roff(), (
        f"man/plurspool-config.5 is out of step with plurspool.config.KEYS; {REGENERATE}"
    )
    keys = sections(text, ".SH")["KEYS"]
    assert BEGIN in keys, "the generated reference belongs in the KEYS section"


def test_config_keys_are_named() -> None:
    spans = bold(page("plurspool-config.5"))
    assert {k.name for k in config.KEYS} <= spans


@pytest.mark.parametrize("platform", config.PLATFORMS)
def test_each_platform_is_described_with_its_keys(platform: str) -> None:
    accounts = sections(sections(page("plurspool-config.5"), ".SH")["ACCOUNTS"], ".SS")
    assert platform in accounts, f"plurspool-config(5) ACCOUNTS: no .SS {platform}"
    text = plain(accounts[platform])
    leaves = [k.leaf for k in config.KEYS if k.platform == platform]
    missing = [leaf for leaf in leaves if not names(text, leaf)]
    assert not missing, f"{platform}: keys not described: {missing}"


_ENV_READ = re.compile(
    r"""(?:environ|env)(?:\.get)?[(\[]\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|["']([A-Z][A-Z0-9_]+)["']\s+(?:not\s+)?in\s+(?:os\.)?environ"""
    r"""|_xdg\(\s*\w+,\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|\b(PLURSPOOL_[A-Z][A-Z0-9_]*[A-Z0-9])\b(?!<)"""
)
# PLURSPOOL_<ACCOUNT>_<TOKEN|PASSWORD|KEY> is documented as a pattern, not name by name.
_SECRET_EXAMPLE = re.compile(r"PLURSPOOL_\w+_(?:TOKEN|PASSWORD|KEY)")


def test_environment_variables_are_named() -> None:
    found: set[str] = set()
    for path in (ROOT / "plurspool").rglob("*.py"):
        for m in _ENV_READ.finditer(path.read_text(encoding="utf-8")):
            found.add(next(g for g in m.groups() if g))
    found = {n for n in found if not _SECRET_EXAMPLE.fullmatch(n) or "IDEMPOTENCY" in n}
    assert {"PLURSPOOL_CONFIG", "PLURSPOOL_SPOOL", "VISUAL"} <= found, "the scan finds nothing"
    text = plain(sections(page("plurspool.1"), ".SH")["ENVIRONMENT"])
    missing = sorted(n for n in found if not names(text, n))
    assert not missing, f"plurspool(1) ENVIRONMENT does not name: {missing}"
    for what in config.SECRET_KINDS.values():
        assert f"PLURSPOOL_ACCOUNT_{what.upper()}" in text


@pytest.mark.parametrize("name", PAGES)
def test_title_line_names_this_version(name: str) -> None:
    from plurspool import __version__

    th = next(line for line in page(name).splitlines() if line.startswith(".TH "))
    assert f'"plurspool {__version__}"' in th, f"{name}: update the .TH line's version"
