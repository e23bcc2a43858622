"""What may reach a terminal from a post or a server: escape sequences dropped, controls shown."""

from __future__ import annotations

import re

# Patterns as text, compiled by `re` on first use (and cached there): `list` and `--help`
# import this module and rarely need them.

# Terminal escape sequences (colours, cursor moves, window titles): CSI, OSC and the short ones.
ESCAPE = r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -~]?)"
# What a one-line record replaces after whitespace is folded: other control characters, lone
# surrogates (which UTF-8 cannot hold), and the bidi controls that make text read backwards.
UNPRINTABLE = "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
# What text shown on several lines replaces: control characters but tab and newline (a lone
# carriage return would let a line overwrite the one shown before it).
_CONTROL = "[\x00-\x08\x0b-\x1f\x7f-\x9f]"


def shown(text: str) -> str:
    """`text` as plurspool prints it for a person: lines and tabs kept, terminal escape
    sequences dropped, other control characters shown as U+FFFD. A post's text, a file name or
    a server's answer may hold anything; none of it may retitle a window or recolour a
    terminal."""
    if text.isprintable():
        return text  # the common case, without a regex
    return re.sub(_CONTROL, "\ufffd", re.sub(ESCAPE, "", text.replace("\r\n", "\n")))
