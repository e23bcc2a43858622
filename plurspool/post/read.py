"""The strict post reader: bytes to a validated `Post`, every error naming its line and what to do.

Decisions a user can see (also in plurspool(5)):
- `---` lines (frontmatter delimiters and thread separators) may carry trailing spaces or tabs.
- `platforms: mastodon` (a single name) is read as `[mastodon]`; `platforms: a, b` is refused.
- A media item may be a bare path (`- media/cat.jpg`) instead of `{path: ..., alt: ...}`.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from plurspool.errors import PostError, did_you_mean
from plurspool.split import SPLIT_MODES

from .expiry import read_expires
from .model import (
    MEDIA_KEYS,
    OVERRIDE_KEYS,
    RESULT_KEYS,
    TOP_KEYS,
    VISIBILITIES,
    Media,
    Override,
    Post,
    Result,
    _empty_part,
    _split_lines,
)
from .repost import beside, read_repost
from .rich import read_card, read_poll, read_quote
from .tree import (
    _BOM,
    _QUOTE_HINT,
    _conflict_line,
    _decode,
    _Doc,
    _kind,
    _Map,
    _Node,
    _read_tree,
    _Scalar,
    _Seq,
)

_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?")


def has_conflict_markers(data: bytes) -> bool:
    """True if a line starts with a git conflict marker (`<<<<<<< ` or `>>>>>>> `)."""
    return _conflict_line(data.removeprefix(_BOM)) is not None


def parse(data: bytes) -> Post:
    """Parse and validate a post file; raises PostError(message, hint, line=N)."""
    return _load(data).post


@dataclass
class _Loaded:
    doc: _Doc
    root: _Map
    post: Post


def _load(data: bytes) -> _Loaded:
    doc = _decode(data)
    root = _read_tree(doc)
    fields = _Fields(doc)
    post = fields.post(root)
    return _Loaded(doc, root, post)


def _show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:39] + "…")


class _Fields:
    """Converts tree nodes to typed values, with errors naming the key and line."""

    def __init__(self, doc: _Doc) -> None:
        self.doc = doc

    def unknown(self, key: _Scalar, known: Sequence[str], where: str) -> PostError:
        # The guess is in the message: `check` and failed/'s reasons show messages only.
        close = did_you_mean(key.value, known)
        guess = f" (did you mean `{close}`?)" if close else ""
        return self.doc.error(
            key.start,
            f"unknown key `{key.value}`{where}{guess}",
            f"known keys: {', '.join(known)}",
        )

    def mapping(self, node: _Node, name: str, what: str) -> _Map | None:
        if isinstance(node, _Scalar) and node.null:
            return None
        if not isinstance(node, _Map):
            raise self.doc.error(
                node.start, f"{name} must be {what}, not {_kind(node)}", "see plurspool(5)"
            )
        return node

    def text(self, node: _Node, name: str) -> str | None:
        if isinstance(node, _Scalar):
            return None if node.null else node.value
        raise self.doc.error(
            node.start,
            f"{name} must be text, not {_kind(node)}",
            f"write it on one line after the `:`; {_QUOTE_HINT}",
        )

    def boolean(self, node: _Node, name: str) -> bool | None:
        if isinstance(node, _Scalar):
            if node.null:
                return None
            if node.plain and node.value.lower() in ("true", "false"):
                return node.value.lower() == "true"
            shown = _show(node.value) if node.plain else f"the quoted text {_show(node.value)}"
            raise self.doc.error(
                node.start,
                f"{name} must be true or false, not {shown}",
                f"write {name.strip('`').rsplit('.', 1)[-1]}: true or false, without quotes",
            )
        raise self.doc.error(
            node.start, f"{name} must be true or false, not {_kind(node)}", "write true or false"
        )

    def count(self, node: _Node, name: str) -> int:
        if isinstance(node, _Scalar):
            if node.null:
                return 0
            if node.plain and re.fullmatch(r"[0-9]{1,9}", node.value):
                return int(node.value)
            shown = _show(node.value)
        else:
            shown = _kind(node)
        raise self.doc.error(
            node.start,
            f"{name} must be a whole number, 0 or more, not {shown}",
            "plurspool writes this key itself; write digits only, e.g. 2, or remove the line",
        )

    def checked(self, node: _Node, name: str, check: Callable[[str, str], str]) -> str | None:
        value = self.text(node, name)
        if value is None:
            return None
        try:
            return check(value, name)
        except PostError as exc:
            raise self.doc.error(node.start, exc.message, exc.hint) from None

    def texts(
        self, node: _Node, name: str, check: Callable[[str, str], str], example: str
    ) -> tuple[str, ...]:
        """A list of text items (a single one may stand alone), each checked."""
        if isinstance(node, _Scalar):
            return () if node.null else (self.checked(node, name, check) or "",)
        if not isinstance(node, _Seq):
            raise self.doc.error(
                node.start, f"{name} must be a list, not {_kind(node)}", f"write [{example}]"
            )
        out = []
        for item in node.items:
            if not isinstance(item, _Scalar) or item.null:
                raise self.doc.error(
                    item.start, f"each item of {name} must be like {example}", f"write [{example}]"
                )
            out.append(self.checked(item, name, check) or "")
        return tuple(out)

    def post(self, root: _Map) -> Post:
        values: dict[str, Any] = {
            "schedule": None,
            "schedule_line": None,
            "platforms": None,
            "cw": None,
            "language": None,
            "visibility": None,
            "sensitive": None,
            "media": (),
            "overrides": {},
            "results": {},
            "attempts": 0,
            "retried": None,
            "poll": None,
            "quote": None,
            "card": None,
            "split": None,
            "repeat": None,
            "skip": (),
            "skipped": (),
            "queue": None,
            "repost": None,
            "expires": None,
        }
        for key, node in root.items():
            name = f"`{key.value}`"
            match key.value:
                case "schedule":
                    values["schedule"] = self.checked(node, name, _check_schedule_field)
                    if values["schedule"] is not None:
                        values["schedule_line"] = self.doc.line(node.start)
                case "queue":
                    values["queue"] = self.checked(node, name, _check_queue)
                case "platforms":
                    values["platforms"] = self.platforms(node)
                case "cw":
                    values["cw"] = self.checked(node, name, _check_cw)
                case "language":
                    values["language"] = self.checked(node, name, _check_language)
                case "visibility":
                    values["visibility"] = self.checked(node, name, _check_visibility)
                case "sensitive":
                    values["sensitive"] = self.boolean(node, name)
                case "media":
                    values["media"] = self.media(node)
                case "overrides":
                    values["overrides"] = self.overrides(node)
                case "results":
                    values["results"] = self.results(node)
                case "attempts":
                    values["attempts"] = self.count(node, name)
                case "retried":
                    values["retried"] = self.checked(node, name, _check_retried)
                case "poll":
                    values["poll"] = read_poll(self, node, self.doc.line(key.start))
                case "quote":
                    values["quote"] = read_quote(self, node, self.doc.line(key.start))
                case "card":
                    values["card"] = read_card(self, node, self.doc.line(key.start))
                case "repost":
                    values["repost"] = read_repost(self, node, self.doc.line(key.start))
                case "split":
                    values["split"] = self.checked(node, name, _check_split)
                case "repeat":
                    values["repeat"] = self.checked(node, name, _check_repeat)
                case "skip":
                    values["skip"] = self.texts(node, name, _check_skip_date, "2026-12-25")
                case "skipped":
                    values["skipped"] = self.texts(
                        node, name, _check_skipped, "2026-12-25T08:00:00Z"
                    )
                case "expires":
                    values["expires"] = read_expires(self, node)
                case _:
                    raise self.unknown(key, TOP_KEYS, "")
        repost = values["repost"]
        if repost is not None:
            extras = {k: bool(values[k]) for k in ("media", "poll", "quote")}
            texts = any(o.text is not None for o in values["overrides"].values())
            extras["overrides.ACCOUNT.text"] = texts
            problem = beside(repost, self.doc.text[self.doc.body_start :], extras)
            if problem is not None:
                raise problem
        return Post(
            parts=() if repost is not None else self.body(),
            **{
                **values,
                "overrides": types.MappingProxyType(values["overrides"]),
                "results": types.MappingProxyType(values["results"]),
            },
        )

    def body(self) -> tuple[str, ...]:
        doc = self.doc
        pieces = _split_lines(doc.text[doc.body_start :])
        problem = _empty_part(pieces)
        if problem is not None:
            index, message, hint = problem
            first = doc.line(doc.body_start) - 1
            lines = len(doc.line_starts) - (1 if doc.text.endswith("\n") else 0)
            line = max(1, min(first + index + 1, lines))
            raise PostError(f"line {line}: {message}", hint, line=line)
        return tuple(text for text, _, _ in pieces)

    def platforms(self, node: _Node) -> tuple[str, ...] | None:
        if isinstance(node, _Scalar):
            if node.null:
                return None
            if re.search(r"[\s,]", node.value):
                raise self.doc.error(
                    node.start,
                    f"`platforms` must be a list of account names, not {_show(node.value)}",
                    "write a list: platforms: [mastodon, bluesky]",
                )
            names = [node.value]
        elif isinstance(node, _Seq):
            names = []
            for item in node.items:
                if not isinstance(item, _Scalar) or item.null:
                    raise self.doc.error(
                        item.start,
                        f"each item of `platforms` must be an account name, not {_kind(item)}"
                        if not isinstance(item, _Scalar)
                        else "an item of `platforms` is empty",
                        "write a list of account names: platforms: [mastodon, bluesky]",
                    )
                names.append(item.value)
        else:
            raise self.doc.error(
                node.start,
                f"`platforms` must be a list of account names, not {_kind(node)}",
                "write a list: platforms: [mastodon, bluesky]",
            )
        try:
            return _check_platforms(names)
        except PostError as exc:
            raise self.doc.error(node.start, exc.message, exc.hint) from None

    def media(self, node: _Node) -> tuple[Media, ...]:
        if isinstance(node, _Scalar) and node.null:
            return ()
        if not isinstance(node, _Seq):
            raise self.doc.error(
                node.start,
                f"`media` must be a list of files, not {_kind(node)}",
                "write it as lines of `  - path: media/cat.jpg` with an optional `    alt: ...`",
            )
        out = []
        for number, item in enumerate(node.items, 1):
            where = f"media item {number}"
            if isinstance(item, _Scalar):
                bare = self.checked(item, f"`path` of {where}", _check_media_path)
                if bare is None:
                    raise self.doc.error(item.start, f"{where} is empty", "give its `path`")
                out.append(Media(bare))
                continue
            mapping = self.mapping(item, f"`{where}`", "`path:` and `alt:` lines")
            if mapping is None:
                raise self.doc.error(item.start, f"{where} is empty", "give its `path`")
            path, alt = None, None
            for key, value in mapping.items():
                if key.value == "path":
                    path = self.checked(value, f"`path` of {where}", _check_media_path)
                elif key.value == "alt":
                    alt = self.text(value, f"`alt` of {where}")
                else:
                    raise self.unknown(key, MEDIA_KEYS, f" in {where}")
            if path is None:
                raise self.doc.error(
                    mapping.start, f"{where} has no `path`", "add `path: media/FILE`"
                )
            out.append(Media(path, alt))
        return tuple(out)

    def overrides(self, node: _Node) -> dict[str, Override]:
        mapping = self.mapping(node, "`overrides`", "account names with their options")
        out: dict[str, Override] = {}
        for account, value in mapping.items() if mapping else ():
            where = f"overrides.{account.value}"
            options = self.mapping(value, f"`{where}`", f"options ({', '.join(OVERRIDE_KEYS)})")
            fields: dict[str, Any] = {}
            for key, item in options.items() if options else ():
                name = f"`{where}.{key.value}`"
                match key.value:
                    case "text":
                        fields["text"] = self.checked(item, name, _check_override_text)
                    case "cw":
                        fields["cw"] = self.checked(item, name, _check_cw)
                    case "language":
                        fields["language"] = self.checked(item, name, _check_language)
                    case "visibility":
                        fields["visibility"] = self.checked(item, name, _check_visibility)
                    case "sensitive":
                        fields["sensitive"] = self.boolean(item, name)
                    case _:
                        raise self.unknown(key, OVERRIDE_KEYS, f" in `{where}`")
            out[account.value] = Override(**fields)
        return out

    def results(self, node: _Node) -> dict[str, Result]:
        mapping = self.mapping(node, "`results`", "account names with their results")
        out: dict[str, Result] = {}
        for account, value in mapping.items() if mapping else ():
            where = f"results.{account.value}"
            options = self.mapping(value, f"`{where}`", f"a mapping of {', '.join(RESULT_KEYS)}")
            fields: dict[str, Any] = {}
            for key, item in options.items() if options else ():
                name = f"`{where}.{key.value}`"
                if key.value == "attempts":
                    fields["attempts"] = self.count(item, name)
                elif key.value in RESULT_KEYS:
                    fields[key.value] = self.text(item, name)
                else:
                    raise self.unknown(key, RESULT_KEYS, f" in `{where}`")
            out[account.value] = Result(**fields)
        return out


# --------------------------------------------------------------- value checks


# Each raises PostError without a line; the caller adds the line when there is one.


def _check_schedule_value(value: str) -> str:
    return _check_schedule_field(value, "`schedule`")


def _check_schedule_field(value: str, name: str) -> str:
    if not value.strip():
        raise PostError(f"{name} is empty", "leave it out to send as soon as possible")
    if "\n" in value or "\r" in value:
        raise PostError(f"{name} must be on one line", "write the time on the `schedule:` line")
    return value


def _check_repeat(value: str, name: str) -> str:
    from plurspool import repeat

    repeat.parse(value)  # PostError naming what is wrong
    return value


def _check_skip_date(value: str, name: str) -> str:
    import datetime

    try:
        datetime.date.fromisoformat(value.strip())
    except ValueError:
        raise PostError(
            f"{name}: {_show(value)} is not a date", "write local dates as [2026-12-25, ...]"
        ) from None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise PostError(f"{name}: {_show(value)} is not a date like 2026-12-25", "")
    return value.strip()


def _check_skipped(value: str, name: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", value):
        raise PostError(
            f"{name}: {_show(value)} is not a UTC time like 2026-12-25T08:00:00Z",
            "plurspool writes this key itself; remove the line",
        )
    return value


def _check_queue(value: str, name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", value.strip()):
        raise PostError(
            f"{name} must be a queue name (letters, digits, '-', '_'), not {_show(value)}",
            "plurspool writes this key at intake; write `schedule: queue:NAME` instead",
        )
    return value.strip()


def _check_retried(value: str, name: str) -> str:
    if not value.strip() or "\n" in value or "\r" in value:
        raise PostError(
            f"{name} must be one line of text", "plurspool writes this key itself; remove the line"
        )
    return value


def _check_cw(value: str, name: str) -> str:
    if not value.strip():
        raise PostError(f"{name} is empty", "leave it out for no content warning")
    return value


def _check_language(value: str, name: str) -> str:
    if _LANGUAGE.fullmatch(value):
        return value
    hint = "use a language code, optionally with a region: en, de, pt-BR"
    if "_" in value:
        hint = f"write it with a hyphen: {value.replace('_', '-')}"
    raise PostError(f"{name} must be a language tag like en or pt-BR, not {_show(value)}", hint)


def _check_split(value: str, name: str) -> str:
    if value in SPLIT_MODES:
        return value
    raise PostError(
        f"{name} must be one of {', '.join(SPLIT_MODES)}, not {_show(value)}",
        "write split: auto (an over-long part is split per account) or split: off (it is an "
        "error); leave it out to follow the config's split",
    )


def _check_visibility(value: str, name: str) -> str:
    if value in VISIBILITIES:
        return value
    raise PostError(
        f"{name} must be one of {', '.join(VISIBILITIES)}, not {_show(value)}",
        "write it in lower case, e.g. visibility: unlisted",
    )


def _check_platforms(names: list[str]) -> tuple[str, ...]:
    if not names:
        raise PostError(
            "`platforms` is an empty list",
            "name at least one account, or leave `platforms` out to use default_platforms",
        )
    seen: set[str] = set()
    for name in names:
        if not name.strip():
            raise PostError("an item of `platforms` is empty", "write an account name")
        if name in seen:
            raise PostError(f"`platforms` lists {_show(name)} twice", "list each account once")
        seen.add(name)
    return tuple(names)


def _check_media_path(path: str, name: str) -> str:
    problem = None
    if not path:
        problem = "is empty"
    elif "\0" in path or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        problem = "contains a control character"
    elif path.startswith("/"):
        problem = "is absolute"
    elif path.startswith("~"):
        problem = "starts with `~`"
    elif ".." in path.split("/"):
        problem = "has a `..` part"
    if problem is None:
        return path
    raise PostError(
        f"{name} {problem}: {_show(path)}",
        "media paths are relative to the spool root and stay inside it, e.g. media/cat.jpg",
    )


def _check_override_text(value: str, name: str) -> str:
    pieces = _split_lines(value)
    problem = _empty_part(pieces)
    if problem is not None:
        _, message, hint = problem
        raise PostError(f"{name}: {message}", hint)
    return value
