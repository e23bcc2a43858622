"""The richer post keys read from the frontmatter tree: `poll`, `quote` and `card`
(plurspool(5)), each error naming its key and line.

What a platform allows (how many poll options, how long) is its own check; this module checks
only what holds everywhere: the shape, a duration that is a duration, a URL that is a URL.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

from plurspool.errors import PostError, TimeError

from .model import CARD_KEYS, POLL_KEYS, Card, Poll, Quote
from .tree import _kind, _Node, _Scalar, _Seq

if TYPE_CHECKING:
    from .read import _Fields

_ID = re.compile(r"@[^\s/@]+")
_URL_HINT = "write an https:// address, e.g. https://example.social/@me/1234"


def read_poll(fields: _Fields, node: _Node, line: int) -> Poll | None:
    """`poll: {options: [...], expires: 1d, multiple: false, hide_totals: false}`."""
    mapping = fields.mapping(node, "`poll`", "a mapping with `options` and `expires`")
    if mapping is None:
        return None
    doc = fields.doc
    options: list[str] = []
    option_lines: list[int] = []
    expires: tuple[str, int, int] | None = None
    flags: dict[str, bool | None] = {}
    seen_options = False
    for key, value in mapping.items():
        name = f"`poll.{key.value}`"
        match key.value:
            case "options":
                seen_options = True
                if not isinstance(value, _Seq):
                    raise doc.error(
                        value.start,
                        f"{name} must be a list of choices, not {_kind(value)}",
                        "write options: [Yes, No]",
                    )
                for number, item in enumerate(value.items, 1):
                    text = fields.text(item, f"option {number} of {name}")
                    if text is None or not text.strip():
                        raise doc.error(
                            item.start, f"option {number} of {name} is empty", "write its text"
                        )
                    if text in options:
                        raise doc.error(
                            item.start,
                            f"option {number} of {name} repeats {text!r}",
                            "list each choice once",
                        )
                    options.append(text)
                    option_lines.append(doc.line(item.start))
            case "expires":
                text = fields.text(value, name)
                if text is None:
                    raise doc.error(value.start, f"{name} is empty", "write e.g. expires: 1d")
                try:
                    from plurspool.when import parse_duration

                    seconds = int(parse_duration(text).total_seconds())
                except TimeError as exc:
                    raise doc.error(
                        value.start, f"{name}: {exc.message}", "write e.g. 30m, 6h, 1d or 7d"
                    ) from None
                expires = (text, seconds, doc.line(value.start))
            case "multiple" | "hide_totals":
                flags[key.value] = fields.boolean(value, name)
            case _:
                raise fields.unknown(key, POLL_KEYS, " in `poll`")
    if not seen_options or len(options) < 2:
        raise _error(line, "`poll` needs at least two `options`", "write options: [Yes, No]")
    if expires is None:
        raise _error(line, "`poll` has no `expires`", "write how long it is open: expires: 1d")
    return Poll(
        options=tuple(options),
        expires=expires[0],
        seconds=expires[1],
        multiple=flags.get("multiple"),
        hide_totals=flags.get("hide_totals"),
        line=line,
        option_lines=tuple(option_lines),
        expires_line=expires[2],
    )


def _error(line: int, message: str, hint: str) -> PostError:
    return PostError(f"line {line}: {message}", hint, line=line)


def _check_target(value: str, name: str) -> str:
    """A quote target: an http(s), at:// or nostr: URL, or `@ID` of an earlier post."""
    if value.startswith("@"):
        if _ID.fullmatch(value):
            return value
        raise PostError(
            f"{name} must be `@ID` of an earlier post, not {value!r}",
            "write the post's ID (or a unique prefix) after the @, e.g. quote: '@launch-day'",
        )
    if re.fullmatch(r"(?:https?://|at://|nostr:)[^\s]+", value):
        return value
    raise PostError(
        f"{name} must be a post's URL or `@ID`, not {value[:60]!r}",
        f"{_URL_HINT}; or, for an earlier post with that ID, write '@{value[:40]}' (quoted)",
    )


def read_targets(
    fields: _Fields, node: _Node, key: str, verb: str, check: Callable[[str, str], str]
) -> str | dict[str, str] | None:
    """A `KEY: URL | '@ID' | {ACCOUNT: URL}` key's value (`quote`, `repost`): one target for
    every account, or a target per account, each checked by `check`; None when empty."""
    if isinstance(node, _Scalar):
        return fields.checked(node, f"`{key}`", check)
    mapping = fields.mapping(node, f"`{key}`", "a URL, `@ID`, or account names with URLs")
    if mapping is None:
        return None
    accounts: dict[str, str] = {}
    for account, item in mapping.items():
        target = fields.checked(item, f"`{key}.{account.value}`", check)
        if target is None:
            raise fields.doc.error(
                item.start,
                f"`{key}.{account.value}` is empty",
                f"give the URL to {verb}, or remove the line",
            )
        accounts[account.value] = target
    return accounts


def read_quote(fields: _Fields, node: _Node, line: int) -> Quote | None:
    """`quote: URL`, `quote: '@ID'` or `quote: {ACCOUNT: URL}`."""
    found = read_targets(fields, node, "quote", "quote", _check_target)
    if found is None or isinstance(found, str):
        return None if found is None else Quote(default=found, line=line)
    return Quote(accounts=types.MappingProxyType(found), line=line)


def read_card(fields: _Fields, node: _Node, line: int) -> Card | None:
    """`card: auto`, `card: off` or `card: {url, title, description, image}`."""
    from .read import _check_media_path

    doc = fields.doc
    if isinstance(node, _Scalar):
        if node.null:
            return None
        if node.value in ("auto", "off"):
            return Card("auto" if node.value == "auto" else "off", line=line)
        raise doc.error(
            node.start,
            f"`card` must be auto, off or a mapping, not {node.value[:40]!r}",
            "write card: auto (fetched when the post is taken in), card: off, or "
            "url:, title:, description: and image: lines under card:",
        )
    mapping = fields.mapping(node, "`card`", "auto, off or a mapping")
    if mapping is None:
        return None
    values: dict[str, str | None] = {}
    for key, value in mapping.items():
        name = f"`card.{key.value}`"
        if key.value == "url":
            values["url"] = fields.text(value, name)
            if values["url"] is not None and not re.fullmatch(r"https?://\S+", values["url"]):
                raise doc.error(value.start, f"{name} must be an http(s) URL", _URL_HINT)
        elif key.value == "image":
            values["image"] = fields.checked(value, name, _check_media_path)
        elif key.value in CARD_KEYS:
            values[key.value] = fields.text(value, name)
        else:
            raise fields.unknown(key, CARD_KEYS, " in `card`")
    if not values.get("url"):
        raise _error(line, "`card` has no `url`", "give the page's address: url: https://...")
    return Card("set", line=line, **values)
