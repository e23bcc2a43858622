"""Writing posts: a new post file from values, and careful edits of an existing one that change
no other byte where they can.

Editing a file whose top-level frontmatter is a flow mapping (`{a: b}`) or otherwise cannot be
edited in place rewrites the frontmatter as block YAML (comments in it are lost); the body is
always kept byte for byte. Every file written is read back with `read.parse` first.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, overload

import yaml

from plurspool.errors import PostError

from ..printable import ESCAPE, UNPRINTABLE
from .model import _SEPARATOR, CARD_KEYS, OVERRIDE_KEYS, Card, Media, Post, Result, _trim
from .read import (
    _check_cw,
    _check_language,
    _check_media_path,
    _check_platforms,
    _check_queue,
    _check_retried,
    _check_schedule_value,
    _check_visibility,
    _load,
    _Loaded,
    parse,
)
from .tree import _LOADER, _NULLS, _conflict_line, _Doc, _encode, _Map

_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# Characters safe to write raw inside double quotes: YAML would refuse the others or read them
# as line breaks (U+2028, U+2029) or a BOM, so those are written as escapes. (Ranges, not a
# regex: compiling that character class cost every command 10 ms.)
_YAML_PRINTABLE = (
    (0x20, 0x7E),
    (0xA0, 0x2027),
    (0x202A, 0xD7FF),
    (0xE000, 0xFEFE),
    (0xFF00, 0xFFFD),
    (0x10000, 0x10FFFF),
)
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+\-.:/ ]*")
# A plain scalar that YAML 1.1 reads as this very string (a letter first: never a number or a
# date; no space: never `: ` or ` #`), unless it is one of _BOOL_WORDS.
_PLAIN_STR = re.compile(r"[A-Za-z][A-Za-z0-9_.:/+@%?=&#~-]*(?<!:)")
_BOOL_WORDS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null"])


RECORD_MAX = 500  # characters of a recorded id, url or error (plurspool(5), `results`)


@overload
def recorded(text: str) -> str: ...
@overload
def recorded(text: None) -> None: ...
def recorded(text: str | None) -> str | None:
    """`text` (an id, url or error) as the sender logs and records it (in the ledger, then in
    the post's `results`): one line, terminal escapes dropped, other control characters shown
    as U+FFFD, at most RECORD_MAX characters (cut with "…"). A command or a server may answer
    anything; what is recorded must never make a post unreadable or write escapes into a
    terminal."""
    if text is None:
        return None
    head = text[: 8 * RECORD_MAX]  # bounded work, whatever the size of the answer
    line = re.sub(UNPRINTABLE, "\ufffd", " ".join(re.sub(ESCAPE, "", head).split()))
    if len(line) > RECORD_MAX or len(head) < len(text):
        line = line[: RECORD_MAX - 1].rstrip() + "…"
    return line


TEMPLATE = """\
---
# Options: remove the "# " in front of a line to use it.
# schedule: tomorrow 9am      # or 2026-12-01T09:00:00+01:00, 2h, random:10m-20m, now;
#                             # leave it out to send as soon as possible
# platforms: [mastodon]       # account names; leave it out for default_platforms
# cw: Content warning
# language: en
# visibility: public          # public | unlisted | followers | direct
# sensitive: false
# media:
#   - path: media/cat.jpg     # relative to the spool root
#     alt: A grey cat asleep on a keyboard
#
# Write the post below the closing --- line. A line holding only --- starts the next part
# of a thread. Save an empty or unchanged file to abort.
---
"""


def template(*, schedule: str | None = None, platforms: Sequence[str] | None = None) -> str:
    """`TEMPLATE` with `schedule` and `platforms` filled in (for `plurspool new -s/-p`), written
    as `render` writes them (the list on one line)."""
    fields: dict[str, Any] = {}
    if schedule is not None:
        fields["schedule"] = schedule
    if platforms:
        fields["platforms"] = list(platforms)
    return "---\n" + _dump(fields, "\n", flow_lists=True) + TEMPLATE.removeprefix("---\n")


def with_schedule(data: bytes, value: str) -> bytes:
    """Set `schedule` to `value`, changing no other byte of a valid post where possible."""
    _check_schedule_value(value)
    return _with_key(data, "schedule", value, first=True)


def with_queue(data: bytes, name: str) -> bytes:
    """Set `queue` to `name` (see plurspool(5)), changing no other byte where possible."""
    _check_queue(name, "`queue`")
    return _with_key(data, "queue", name, first=False)


def with_retried(data: bytes, token: str) -> bytes:
    """Set `retried` to `token` (see plurspool(5)), changing no other byte where possible."""
    _check_retried(token, "`retried`")
    return _with_key(data, "retried", token, first=False)


def with_repeat(data: bytes, rule: str) -> bytes:
    """Set `repeat` to the normalised `rule`, changing no other byte where possible."""
    return _with_key(data, "repeat", rule, first=False)


def with_skip(data: bytes, dates: Sequence[str]) -> bytes:
    """Set `skip` to the local `dates` (YYYY-MM-DD), on one line."""
    return _with_entries(data, {"skip": list(dates) or None})


def with_skipped(data: bytes, instants: Sequence[str]) -> bytes:
    """Set `skipped` to the missed occurrences `instants` (UTC, Z), on one line."""
    return _with_entries(data, {"skipped": list(instants) or None})


def occurrence(data: bytes, schedule: str) -> bytes:
    """A recurring post's template as one occurrence: without `repeat`, `skip` and
    `skipped`, due at `schedule`; nothing else changes where possible."""
    bare = _with_entries(data, {"repeat": None, "skip": None, "skipped": None})
    return with_schedule(bare, schedule)


def _with_entries(data: bytes, entries: Mapping[str, list[str] | None]) -> bytes:
    """Replace (or add at the end) the top-level entries `entries`, flow lists on one line;
    None removes one."""
    loaded = _load(data)
    doc, root = loaded.doc, loaded.root
    fields = {k: v for k, v in entries.items() if v is not None}
    candidates: list[str] = []
    if doc.fm is None:
        nl = doc.newline
        head = f"---{nl}{_dump(fields, nl, flow_lists=True)}---{nl}" if fields else ""
        candidates.append(head + doc.text)
    elif (indent := _block_indent(doc, root)) is not None and (
        spans := _entry_spans(doc, root, tuple(entries))
    ) is not None:
        text = doc.text
        for start, end in reversed(spans):
            text = text[:start] + text[end:]
        at = spans[0][0] if spans else doc.fm[1]
        lines = _dump(fields, doc.newline, flow_lists=True).splitlines(keepends=True)
        candidates.append(text[:at] + "".join(indent + line for line in lines) + text[at:])
    want = loaded.post
    if "repeat" in entries:
        assert entries["repeat"] is None  # only removed here; set by with_repeat
        want = dataclasses.replace(want, repeat=None)
    if "skip" in entries:
        want = dataclasses.replace(want, skip=tuple(entries["skip"] or ()))
    if "skipped" in entries:
        want = dataclasses.replace(want, skipped=tuple(entries["skipped"] or ()))
    return _first_good(loaded, candidates, want)


def _with_key(
    data: bytes, key: Literal["schedule", "retried", "repeat", "queue"], value: str, *, first: bool
) -> bytes:
    """Set the top-level text key `key` to `value` in place; a new entry goes at the start of
    the frontmatter (`first`) or at its end."""
    loaded = _load(data)
    doc, root = loaded.doc, loaded.root
    scalar = _scalar(value)
    candidates: list[str] = []
    if doc.fm is None:
        nl = doc.newline
        candidates.append(f"---{nl}{key}: {scalar}{nl}---{nl}" + doc.text)
    elif (node := root.get(key)) is not None:
        start, end = node.start, node.end
        # Block scalars end after their line break(s): keep those.
        while end > start and doc.text[end - 1] in "\r\n \t":
            end -= 1
        lead = " " if start == end and doc.text[start - 1 : start] == ":" else ""
        for text in (scalar, _double_quoted(value)):
            candidates.append(doc.text[:start] + lead + text + doc.text[end:])
    elif (indent := _block_indent(doc, root)) is not None:
        at = doc.fm[0] if first else doc.fm[1]
        line = f"{indent}{key}: {scalar}{doc.newline}"
        candidates.append(doc.text[:at] + line + doc.text[at:])
    if key == "schedule":
        want = dataclasses.replace(loaded.post, schedule=value)
    elif key == "repeat":
        want = dataclasses.replace(loaded.post, repeat=value)
    elif key == "queue":
        want = dataclasses.replace(loaded.post, queue=value)
    else:
        want = dataclasses.replace(loaded.post, retried=value)
    return _first_good(loaded, candidates, want)


def with_record(data: bytes, results: Mapping[str, Result], attempts: int) -> bytes:
    """Record per-account `results` and the number of send `attempts` in the frontmatter.

    The top-level `results:` and `attempts:` entries are replaced (or added at the end of the
    frontmatter); no entry is written for no results or 0 attempts.
    """
    if attempts < 0:
        raise ValueError("attempts must be 0 or more")
    loaded = _load(data)
    doc, root = loaded.doc, loaded.root
    record = _record_dict(results, attempts)
    candidates: list[str] = []
    if doc.fm is None:
        nl = doc.newline
        candidates.append(
            f"---{nl}{_record_yaml(record, nl)}---{nl}" + doc.text if record else doc.text
        )
    elif (indent := _block_indent(doc, root)) is not None and (
        spans := _entry_spans(doc, root, ("results", "attempts"))
    ) is not None:
        text = doc.text
        for start, end in reversed(spans):
            text = text[:start] + text[end:]
        # Where the first old entry was (nothing before it moved), else at the end.
        at = spans[0][0] if spans else doc.fm[1]
        lines = _record_yaml(record, doc.newline).splitlines(keepends=True)
        candidates.append(text[:at] + "".join(indent + line for line in lines) + text[at:])
    want = dataclasses.replace(
        loaded.post, results=types.MappingProxyType(dict(results)), attempts=attempts
    )
    return _first_good(loaded, candidates, want)


def with_card(data: bytes, card: Card) -> bytes:
    """Write the resolved link `card` (plurspool(5), `card`) in place of the `card:` entry,
    or at the end of the frontmatter; nothing else changes where that can be done."""
    loaded = _load(data)
    doc, root = loaded.doc, loaded.root
    value = _card_value(card)
    candidates: list[str] = []
    if doc.fm is None:
        nl = doc.newline
        candidates.append(f"---{nl}{_dump({'card': value}, nl)}---{nl}" + doc.text)
    elif (indent := _block_indent(doc, root)) is not None and (
        spans := _entry_spans(doc, root, ("card",))
    ) is not None:
        text = doc.text
        for start, end in reversed(spans):
            text = text[:start] + text[end:]
        at = spans[0][0] if spans else doc.fm[1]
        lines = _dump({"card": value}, doc.newline).splitlines(keepends=True)
        candidates.append(text[:at] + "".join(indent + line for line in lines) + text[at:])
    return _first_good(loaded, candidates, dataclasses.replace(loaded.post, card=card))


def render(
    *,
    parts: Sequence[str],
    schedule: str | None = None,
    platforms: Sequence[str] | None = None,
    cw: str | None = None,
    language: str | None = None,
    visibility: str | None = None,
    sensitive: bool | None = None,
    media: Sequence[Media] = (),
    queue: str | None = None,
    check: bool = True,
) -> bytes:
    """A new post file holding only the keys given; `parse` reads it back to the same values.

    Each part is trimmed of surrounding blank lines (as `parse` does); a part that is empty or
    holds a `---` line, a NUL or a conflict marker is a PostError. `check=False` leaves reading
    it back to a caller that parses it anyway (an import's check of 10,000 rows).
    """
    clean = [_normalize_part(part, number) for number, part in enumerate(parts, 1)]
    if not clean:
        raise PostError("the post has no text", "give the text of the post")
    fields: dict[str, Any] = {}
    if schedule is not None:
        _check_schedule_value(schedule)
        fields["schedule"] = schedule
    if queue is not None:
        fields["queue"] = _check_queue(queue, "`queue`")
    if platforms is not None:
        fields["platforms"] = list(_check_platforms(list(platforms)))
    if cw is not None:
        fields["cw"] = _check_cw(cw, "`cw`")
    if language is not None:
        fields["language"] = _check_language(language, "`language`")
    if visibility is not None:
        fields["visibility"] = _check_visibility(visibility, "`visibility`")
    if sensitive is not None:
        fields["sensitive"] = bool(sensitive)
    if media:
        fields["media"] = [_media_dict(item, number) for number, item in enumerate(media, 1)]
    body = "\n\n---\n\n".join(clean) + "\n"
    if fields or body.startswith("\ufeff") or body.lstrip()[:1] in ("-", "+", "{"):
        # Without a frontmatter before it, a leading U+FEFF would be taken for a BOM, and a
        # body starting with a row of dashes (`----`), `+++` or `{` could be taken for a
        # frontmatter by other readers (python-frontmatter, static site generators).
        text = "---\n" + (_dump(fields, "\n") if fields else "") + "---\n" + body
    else:
        text = body
    data = _encode(text, bom=False)
    if check:
        parse(data)  # a safety net: never hand out a file that we cannot read back
    return data


def _normalize_part(part: str, number: int) -> str:
    lines = [line.rstrip("\r") for line in part.split("\n")]
    text = _trim(lines)
    if not text:
        raise PostError(f"thread part {number} is empty", "give every part some text")
    if any(_SEPARATOR.fullmatch(line) for line in lines):
        raise PostError(
            f"thread part {number} has a line holding only `---`",
            "that line would split the part in two; pass the parts separately",
        )
    if "\0" in text:
        raise PostError(f"thread part {number} contains a NUL character", "remove it")
    if _conflict_line(text.encode("utf-8", "surrogatepass")) is not None:
        raise PostError(
            f"thread part {number} has a line that looks like a git conflict marker",
            "change the line starting with <<<<<<< or >>>>>>>",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PostError(
            f"thread part {number} is not valid Unicode text", "remove the broken characters"
        ) from None
    return text


def _media_dict(item: Media, number: int) -> dict[str, str]:
    out = {"path": _check_media_path(item.path, f"`path` of media item {number}")}
    if item.alt is not None:
        out["alt"] = item.alt
    return out


def _scalar(value: str) -> str:
    """`value` as a YAML scalar that reads back as the same text: plain if safe, else quoted."""
    if (
        _PLAIN_SAFE.fullmatch(value)
        and value not in _NULLS
        and ": " not in value
        and not value.endswith((" ", ":"))
    ):
        return value
    return _double_quoted(value)


def _printable(ch: str) -> bool:
    """Whether YAML takes `ch` raw inside quotes (see _YAML_PRINTABLE)."""
    return any(low <= ord(ch) <= high for low, high in _YAML_PRINTABLE)


def _double_quoted(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif _printable(ch):
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _dump(fields: Mapping[str, Any], newline: str, *, flow_lists: bool = False) -> str:
    """Block YAML for `fields`, readable (raw Unicode) when that reads back the same; with
    `flow_lists`, a list of plain values is written on one line (`[a, 'no']`)."""
    if not fields:
        return ""
    for allow_unicode in (True, False):
        # With allow_unicode, PyYAML writes U+0085 and friends raw, and reads them back as
        # line breaks; escaping everything non-ASCII is the safe fallback.
        text = yaml.dump(
            dict(fields),
            Dumper=_DUMPER,
            sort_keys=False,
            allow_unicode=allow_unicode,
            default_flow_style=None if flow_lists else False,
            line_break=newline,
        )
        if yaml.load(text, Loader=_LOADER) == fields:
            break
    return text


def _record_yaml(record: Mapping[str, Any], newline: str) -> str:
    """`_record_dict`'s output as block YAML, written directly (PyYAML's dumper costs ~0.15 ms
    a post) in the style PyYAML gives it; with_record reads the whole file back anyway."""
    lines = []
    if "results" in record:
        lines.append("results:")
        for account, entry in record["results"].items():
            lines.append(f"  {_str_scalar(account)}:")
            lines.extend(f"    {key}: {_value_scalar(value)}" for key, value in entry.items())
    if "attempts" in record:
        lines.append(f"attempts: {record['attempts']}")
    return "".join(line + newline for line in lines)


def _value_scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    assert isinstance(value, str)
    return _str_scalar(value)


def _str_scalar(value: str) -> str:
    """Plain if YAML reads it back as the same string, else single-quoted if printable on one
    line, else double-quoted with escapes."""
    if _PLAIN_STR.fullmatch(value) and value.lower() not in _BOOL_WORDS:
        return value
    if (value.isascii() and value.isprintable()) or all(_printable(ch) for ch in value):
        return "'" + value.replace("'", "''") + "'"
    return _double_quoted(value)


def _record_dict(results: Mapping[str, Result], attempts: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if results:
        table: dict[str, Any] = {}
        for account, result in results.items():
            entry: dict[str, Any] = {}
            if result.error is None:
                entry["id"] = result.id
                entry["url"] = result.url
            else:
                if result.id is not None:
                    entry["id"] = result.id
                if result.url is not None:
                    entry["url"] = result.url
                entry["error"] = result.error
            if result.attempts:
                entry["attempts"] = result.attempts
            if result.at is not None:
                entry["at"] = result.at
            if result.edited_at is not None:
                entry["edited_at"] = result.edited_at
            if result.deleted_at is not None:
                entry["deleted_at"] = result.deleted_at
            table[str(account)] = entry
        out["results"] = table
    if attempts:
        out["attempts"] = attempts
    return out


def _block_indent(doc: _Doc, root: _Map) -> str | None:
    """The indentation of the top-level keys, or None if lines cannot be added there."""
    if root.flow:
        return None
    if not root.keys:
        return ""
    first = root.keys[0].start
    line_start = doc.line_starts[doc.line(first) - 1]
    indent = doc.text[line_start:first]
    return indent if indent.strip(" ") == "" else None


def _entry_spans(doc: _Doc, root: _Map, names: Sequence[str]) -> list[tuple[int, int]] | None:
    """Whole-line spans of the top-level entries `names`, or None if not cleanly on lines."""
    assert doc.fm is not None
    spans = []
    for key, value in root.items():
        if key.value not in names:
            continue
        start = doc.line_starts[doc.line(key.start) - 1]
        if doc.text[start : key.start].strip(" "):
            return None
        last = max(key.end, value.end)
        newline = doc.text.find("\n", max(last - 1, key.end))
        end = doc.fm[1] if newline < 0 else min(newline + 1, doc.fm[1])
        spans.append((start, end))
    return spans


def _post_fields(post: Post) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if post.schedule is not None:
        out["schedule"] = post.schedule
    if post.queue is not None:
        out["queue"] = post.queue
    if post.platforms is not None:
        out["platforms"] = list(post.platforms)
    for name in ("cw", "language", "visibility", "sensitive"):
        if getattr(post, name) is not None:
            out[name] = getattr(post, name)
    if post.media:
        out["media"] = [_media_dict(item, n) for n, item in enumerate(post.media, 1)]
    if post.overrides:
        out["overrides"] = {
            account: {
                name: getattr(override, name)
                for name in OVERRIDE_KEYS
                if getattr(override, name) is not None
            }
            for account, override in post.overrides.items()
        }
    out.update(_record_dict(post.results, post.attempts))
    if post.retried is not None:
        out["retried"] = post.retried
    if post.poll is not None:
        poll = post.poll
        out["poll"] = {"options": list(poll.options), "expires": poll.expires}
        for name in ("multiple", "hide_totals"):
            if getattr(poll, name) is not None:
                out["poll"][name] = getattr(poll, name)
    if post.quote is not None:
        quote = post.quote
        out["quote"] = quote.default if quote.default is not None else dict(quote.accounts)
    if post.repost is not None:
        repost = post.repost
        out["repost"] = repost.default if repost.default is not None else dict(repost.accounts)
    if post.card is not None:
        out["card"] = _card_value(post.card)
    if post.repeat is not None:
        out["repeat"] = post.repeat
    for name in ("skip", "skipped"):
        if getattr(post, name):
            out[name] = list(getattr(post, name))
    if post.expires is not None:
        out["expires"] = post.expires.text
    return out


def _card_value(card: Card) -> str | dict[str, str]:
    """`card:` as written: auto, off, or the mapping of its resolved fields."""
    if card.mode != "set":
        return card.mode
    fields = {name: getattr(card, name) for name in CARD_KEYS}
    return {name: value for name, value in fields.items() if value is not None}


def _rebuild(loaded: _Loaded, want: Post) -> str:
    """The whole frontmatter written afresh from `want`; the body is kept as it was."""
    doc = loaded.doc
    nl = doc.newline
    return f"---{nl}{_dump(_post_fields(want), nl)}---{nl}" + doc.text[doc.body_start :]


def _first_good(loaded: _Loaded, candidates: list[str], want: Post) -> bytes:
    """The first candidate that reads back as `want`, else the frontmatter rewritten.

    Edits in place are tried first so that comments and layout survive; reading each result
    back is what makes them safe, whatever odd YAML the user wrote.
    """
    expected = dataclasses.replace(want, schedule_line=None)

    def texts() -> Iterator[str]:
        yield from candidates
        yield _rebuild(loaded, want)  # made only when no edit in place reads back right

    for text in texts():
        data = _encode(text, bom=loaded.doc.bom)
        try:
            if dataclasses.replace(parse(data), schedule_line=None) == expected:
                return data
        except PostError:
            continue
    raise PostError(
        "could not write the change into the post's frontmatter",
        "this is a bug in plurspool; please report it with the post file",
    )
