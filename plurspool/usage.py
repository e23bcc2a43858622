"""The top-level help as data, and rendered as click would, so `--help` needs no click.

Importing click alone costs about three bare Python starts, and `--help` is what people type
first. The top-level help is therefore kept here as data (the description, the options, a
one-line summary per command) and rendered the way click's HelpFormatter does it;
`plurspool.__main__` prints it. The cli package builds its group from the same data, and
tests/unit/test_usage.py checks that click renders exactly this text at every width, so the two
cannot drift apart. This module imports neither click nor the cli package.
"""

from __future__ import annotations

import os
import sys

DESCRIPTION = """\
Schedule posts to Nostr, Mastodon, Bluesky and programs from a spool of Markdown files.

A post is a Markdown file with YAML frontmatter in the spool: new/ → scheduled/ → sent/ or
failed/, plus drafts/. `plurspool send` is the daemon that sends what is due. See plurspool(1),
plurspool(5) and plurspool-config(5)."""

#: The group's options as click shows them: (flags with metavar, help).
OPTIONS = (
    ("--spool DIR", "The spool directory [env PLURSPOOL_SPOOL]."),
    ("--config FILE", "The config file [env PLURSPOOL_CONFIG]."),
    ("-v, --verbose", "Say more."),
    ("-V, --version", "Show the version and exit."),
    ("-h, --help", "Show this message and exit."),
)

#: One line per command, shown by `plurspool --help` (at most 64 characters: one line at 80).
COMMANDS = {
    "accounts": "List the configured accounts, or test that they log in.",
    "amend": "Edit a sent post in $EDITOR, then on mastodon; others unchanged.",
    "calendar": "Show a week or month of the queue: posts, repeats, free slots.",
    "cancel": "Take posts out of the queue into drafts/.",
    "check": "Validate posts (new/, drafts/, scheduled/); change nothing.",
    "daemon": "Manage the background daemon: systemd user unit or detached.",
    "delete": "Delete a sent post from its accounts now; it stays in sent/.",
    "edit": "Edit a post in $VISUAL/$EDITOR; kept only when saved valid.",
    "feed": "Add, list or remove feeds whose new entries become posts.",
    "import": "Import posts: CSV, JSON Lines, Plurcast, Mastodon's scheduled.",
    "ics": "Print the queue as an iCalendar feed, or write it (--out FILE).",
    "init": "Create the config (if missing) and the spool; print their paths.",
    "list": "List posts in a state, soonest first, with the time until due.",
    "new": "Write a new post in $VISUAL/$EDITOR; queued when saved valid.",
    "now": "Make a post due now: the daemon sends it, or this command does.",
    "post": "Post TEXT (or stdin): send now, queue (-s) or keep (--draft).",
    "queue": "List a queue's slots of the next days, free or taken.",
    "reschedule": "Change a post's send time; +1h or -30m move it from the old one.",
    "retry": "Move failed posts back to the queue; no account gets it twice.",
    "schedule": "Move a draft into the queue at WHEN.",
    "send": "The daemon: send posts when they are due (one pass with --once).",
    "show": "Show one post in full, with its state and results or error.",
    "skip": "Skip the next occurrence of a recurring post, or WHEN's.",
    "stats": "Totals by state and account, what is due when, a chart by day.",
}

USAGE_ARGS = "[OPTIONS] COMMAND [ARGS]..."


def columns() -> int:
    """The terminal's width, as shutil.get_terminal_size() reads it (COLUMNS first)."""
    try:
        n = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        n = 0
    if n > 0:
        return n
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


def render(prog: str, width: int) -> str:
    """The top-level help at a formatter width (click: terminal columns, at most 80, minus 2)."""
    import textwrap

    def wrap(text: str, w: int, first: str = "", rest: str = "") -> list[str]:
        wrapper = textwrap.TextWrapper(
            w, initial_indent=first, subsequent_indent=rest, replace_whitespace=False
        )
        return wrapper.wrap(text)

    def paragraphs(text: str, w: int, indent: str) -> list[str]:
        out: list[str] = []
        for i, par in enumerate(text.split("\n\n")):
            if i:
                out.append("")
            out.extend(wrap(" ".join(par.split("\n")), w, indent, indent))
        return out

    def table(rows: list[tuple[str, str]]) -> list[str]:
        first_col = min(max(len(a) for a, _ in rows), 30) + 2
        text_width = max(width - first_col - 2, 10)
        out = []
        for term, text in rows:
            lines = paragraphs(text, text_width, "") or [""]
            if len(term) <= first_col - 2:
                out.append(f"  {term}" + " " * (first_col - len(term)) + lines[0])
            else:
                out.append(f"  {term}")
                out.append(" " * (first_col + 2) + lines[0])
            out.extend(" " * (first_col + 2) + line for line in lines[1:])
        return out

    prefix = f"Usage: {prog} "  # a short name: the arguments fit beside it from width 50 on
    lines = wrap(USAGE_ARGS, width, prefix, " " * len(prefix))
    lines += ["", *paragraphs(DESCRIPTION, width, "  ")]
    lines += ["", "Options:", *table(list(OPTIONS))]
    lines += ["", "Commands:", *table(sorted(COMMANDS.items()))]
    return "\n".join(lines) + "\n"
