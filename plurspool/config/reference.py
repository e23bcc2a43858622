"""The configuration reference, written from the key table: Markdown for README.md, roff for
plurspool-config(5), and the commented config.toml that `plurspool init` writes.
"""

from __future__ import annotations

import re

from ..platforms import PLATFORMS
from .keys import BY_NAME, KEYS, Key, platform_keys, toml_value


def _doc_rows() -> list[tuple[Key, str]]:
    """Each key with its description, prefixed by its platform for account keys."""
    return [(k, f"{k.platform}: {k.doc}" if k.platform else k.doc) for k in KEYS]


def reference_markdown() -> str:
    """The configuration reference as a Markdown table (key, type, default, description)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, doc in _doc_rows():
        default = cell(key.default_text())
        if key.has_literal_default:
            default = f"`{default}`"
        lines.append(f"| `{key.name}` | {cell(key.type)} | {default} | {cell(doc)} |")
    return "\n".join(lines) + "\n"


def _roff(text: str) -> str:
    # A minus sign for options ("--spool"), a plain hyphen inside words ("JSON-lines").
    text = re.sub(r"(?<![A-Za-z0-9])-", r"\\-", text.replace("\\", "\\e"))
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def reference_roff() -> str:
    """The configuration reference as roff for plurspool-config(5), section KEYS."""
    lines = []
    for key, doc in _doc_rows():
        lines.append(".TP")
        lines.append(f".B {_roff(key.name)}")
        lines.append(_roff(f"({key.type}; default: {key.default_text()})"))
        lines.append(".br")
        lines.append(_roff(doc))
    return "\n".join(lines) + "\n"


def _commented(key: Key) -> list[str]:
    import textwrap

    value = key.default if key.default is not None else key.example
    lines = textwrap.wrap(key.doc, width=78, initial_indent="# ", subsequent_indent="# ")
    if key.required:
        lines.append("# Required.")
    elif key.default_doc is not None:
        lines.append(f"# Default: {key.default_doc}.")
    if value is not None:
        lines.append(f"#{key.leaf} = {toml_value(value)}")
    return lines


def default_config_text() -> str:
    """The config.toml `plurspool init` writes: every key commented out, with default and doc."""
    out = [
        "# plurspool configuration; see plurspool-config(5). Every key below is commented",
        "# out and shows its default (or an example). With no account configured, posts go",
        "# to the built-in `outbox` account, a JSON-lines file in the state directory.",
        "",
    ]
    for key in KEYS:
        if "." not in key.name:
            out += [*_commented(key), ""]
    out += ["[daemon]", ""]
    for key in KEYS:
        if key.name.startswith("daemon."):
            out += [*_commented(key), ""]
    out += ["[git]", ""]
    for key in KEYS:
        if key.name.startswith("git."):
            out += [*_commented(key), ""]
    rate = BY_NAME["rate_limits.NAME"]
    out += ["[rate_limits]", *_commented(rate)[:-1], f"#mastodon = {toml_value(rate.example)}", ""]
    out += ["# Queues: [queues.NAME]; `post --queue` uses the one named default.", ""]
    out.append("#[queues.default]")
    for key in KEYS:
        if key.name.startswith("queues."):
            out += _commented(key)
    out.append("")
    out += ["# Accounts: [accounts.NAME]; platform defaults to NAME.", ""]
    for platform in PLATFORMS:
        out.append(f"#[accounts.{platform}]")
        out.append(f'#platform = "{platform}"')
        for key in platform_keys(platform).values():
            out += _commented(key)
        out.append("")
    return "\n".join(out)
