"""The post file (plurspool(5)): bytes in, a frozen `Post` out, and careful edits back to bytes.

Nothing here touches the filesystem. The frontmatter is read through PyYAML's event API and the
tree is built here, iteratively, reading every scalar as text: YAML 1.1's implicit typing
(`9:30` -> 570, `no` -> False, dates) never decides a value, and tags, anchors and aliases are
refused before they can do anything.

Decisions a user can see (also in plurspool(5)):
- `---` lines (frontmatter delimiters and thread separators) may carry trailing spaces or tabs.
- `platforms: mastodon` (a single name) is read as `[mastodon]`; `platforms: a, b` is refused.
- A media item may be a bare path (`- media/cat.jpg`) instead of `{path: ..., alt: ...}`.
- Conflict markers are lines starting `<<<<<<< ` or `>>>>>>> ` (or holding only the seven
  characters). A lone `=======` line is a Markdown heading underline and is not a marker.
- Editing a file whose top-level frontmatter is a flow mapping (`{a: b}`) or otherwise cannot be
  edited in place rewrites the frontmatter as block YAML (comments in it are lost); the body is
  always kept byte for byte.
"""

from __future__ import annotations

import dataclasses
import re
import types
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, overload

import yaml

from plurspool.errors import PostError, did_you_mean

# libyaml is ~15x faster; both backends yield the same events and marks for what we accept.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

VISIBILITIES = ("public", "unlisted", "followers", "direct")
MAX_DEPTH = 8

TOP_KEYS = (
    "schedule",
    "platforms",
    "cw",
    "language",
    "visibility",
    "sensitive",
    "media",
    "overrides",
    "results",
    "attempts",
    "retried",
)
MEDIA_KEYS = ("path", "alt")
OVERRIDE_KEYS = ("text", "cw", "language", "visibility", "sensitive")
RESULT_KEYS = ("id", "url", "error", "attempts", "at")

_BOM = b"\xef\xbb\xbf"
_SEPARATOR = re.compile(r"---[ \t]*")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_CONFLICT = re.compile(rb"^(?:<<<<<<<|>>>>>>>)(?:[ \t]|\r?$)", re.MULTILINE)
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

_QUOTE_HINT = (
    "put the value in quotes if it contains `: ` or ` #` or starts with a special character"
)


# --------------------------------------------------------------------------- public data


@dataclass(frozen=True)
class Media:
    """A file to attach: `path` relative to the spool root, optional alt text."""

    path: str
    alt: str | None = None


@dataclass(frozen=True)
class Override:
    """Per-account replacements; None means "as in the post"."""

    text: str | None = None
    cw: str | None = None
    language: str | None = None
    visibility: str | None = None
    sensitive: bool | None = None

    @property
    def parts(self) -> tuple[str, ...] | None:
        """The override text split into thread parts like the body, or None without text."""
        return None if self.text is None else split_parts(self.text)


@dataclass(frozen=True)
class Result:
    """What happened when plurspool sent a post to one account."""

    id: str | None = None
    url: str | None = None
    error: str | None = None
    attempts: int = 0
    at: str | None = None


RECORD_MAX = 500  # characters of a recorded id, url or error (plurspool(5), `results`)
# Terminal escape sequences (colours, cursor moves, window titles): CSI, OSC and the short ones.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -~]?)")
# What is left to replace after whitespace is folded: other control characters, lone
# surrogates (which UTF-8 cannot hold), and the bidi controls that make text read backwards.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


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
    line = _UNPRINTABLE.sub("\ufffd", " ".join(_ESCAPE.sub("", head).split()))
    if len(line) > RECORD_MAX or len(head) < len(text):
        line = line[: RECORD_MAX - 1].rstrip() + "…"
    return line


@dataclass(frozen=True)
class Post:
    """A parsed, validated post file."""

    schedule: str | None
    schedule_line: int | None
    platforms: tuple[str, ...] | None
    cw: str | None
    language: str | None
    visibility: str | None
    sensitive: bool | None
    media: tuple[Media, ...]
    overrides: Mapping[str, Override]
    parts: tuple[str, ...]
    results: Mapping[str, Result] = field(default_factory=lambda: types.MappingProxyType({}))
    attempts: int = 0
    retried: str | None = None  # the token of the last `plurspool retry`, made on any host

    def parts_for(self, account: str) -> tuple[str, ...]:
        """The thread parts to send to `account`: its override text if any, else the body."""
        override = self.overrides.get(account)
        if override is not None and override.text is not None:
            return split_parts(override.text)
        return self.parts

    @overload
    def field_for(self, account: str, name: Literal["sensitive"]) -> bool | None: ...
    @overload
    def field_for(
        self, account: str, name: Literal["cw", "language", "visibility"]
    ) -> str | None: ...
    def field_for(self, account: str, name: str) -> str | bool | None:
        """`cw`, `language`, `visibility` or `sensitive` for `account`, override applied."""
        if name not in ("cw", "language", "visibility", "sensitive"):
            raise ValueError(f"no per-account field {name!r}")
        override = self.overrides.get(account)
        value: str | bool | None = None if override is None else getattr(override, name)
        return getattr(self, name) if value is None else value

    @property
    def preview(self) -> str:
        """The first part on one line, cut to 60 characters."""
        text = " ".join(self.parts[0].split()) if self.parts else ""
        return text if len(text) <= 60 else text[:59] + "…"


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
    """`TEMPLATE` with `schedule` and `platforms` filled in (for `plurspool new -s/-p`)."""
    lines = []
    if schedule is not None:
        lines.append(f"schedule: {_scalar(schedule)}\n")
    if platforms:
        lines.append(f"platforms: [{', '.join(_scalar(p) for p in platforms)}]\n")
    return "---\n" + "".join(lines) + TEMPLATE.removeprefix("---\n")


# --------------------------------------------------------------------------- public functions


def has_conflict_markers(data: bytes) -> bool:
    """True if a line starts with a git conflict marker (`<<<<<<< ` or `>>>>>>> `)."""
    return _conflict_line(data.removeprefix(_BOM)) is not None


def split_parts(text: str) -> tuple[str, ...]:
    """Split text into thread parts on `---` lines; raises PostError (no line) on an empty part."""
    pieces = _split_lines(text)
    problem = _empty_part(pieces)
    if problem is not None:
        _, message, hint = problem
        raise PostError(message, hint)
    return tuple(text for text, _, _ in pieces)


def parse(data: bytes) -> Post:
    """Parse and validate a post file; raises PostError(message, hint, line=N)."""
    return _load(data).post


def with_schedule(data: bytes, value: str) -> bytes:
    """Set `schedule` to `value`, changing no other byte of a valid post where possible."""
    _check_schedule_value(value)
    return _with_key(data, "schedule", value, first=True)


def with_retried(data: bytes, token: str) -> bytes:
    """Set `retried` to `token` (see plurspool(5)), changing no other byte where possible."""
    _check_retried(token, "`retried`")
    return _with_key(data, "retried", token, first=False)


def _with_key(
    data: bytes, key: Literal["schedule", "retried"], value: str, *, first: bool
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
) -> bytes:
    """A new post file holding only the keys given; `parse` reads it back to the same values.

    Each part is trimmed of surrounding blank lines (as `parse` does); a part that is empty or
    holds a `---` line, a NUL or a conflict marker is a PostError.
    """
    clean = [_normalize_part(part, number) for number, part in enumerate(parts, 1)]
    if not clean:
        raise PostError("the post has no text", "give the text of the post")
    fields: dict[str, Any] = {}
    if schedule is not None:
        _check_schedule_value(schedule)
        fields["schedule"] = schedule
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
    if fields or body.startswith("\ufeff"):
        # A leading U+FEFF would be taken for a BOM without a frontmatter before it.
        text = "---\n" + (_dump(fields, "\n") if fields else "") + "---\n" + body
    else:
        text = body
    data = _encode(text, bom=False)
    parse(data)  # a safety net: never hand out a file that we cannot read back
    return data


# --------------------------------------------------------------------------- the document


@dataclass
class _Doc:
    """The decoded file: text without BOM, where the frontmatter is, and how lines end."""

    bom: bool
    text: str
    newline: str
    fm: tuple[int, int] | None  # the YAML between the `---` lines: [start, end) in text
    body_start: int
    line_starts: list[int]

    def line(self, index: int) -> int:
        """1-based line of the file holding character `index`."""
        return bisect_right(self.line_starts, index)

    def error(self, index: int, message: str, hint: str) -> PostError:
        line = self.line(index)
        return PostError(f"line {line}: {message}", hint, line=line)


def _conflict_line(raw: bytes) -> int | None:
    match = _CONFLICT.search(raw)
    return None if match is None else raw.count(b"\n", 0, match.start()) + 1


def _decode(data: bytes) -> _Doc:
    bom = data.startswith(_BOM)
    raw = data[len(_BOM) :] if bom else data
    line = _conflict_line(raw)
    if line is not None:
        raise PostError(
            f"line {line}: the file has git conflict markers (<<<<<<< / >>>>>>>)",
            "finish resolving the merge: keep the text you want, delete the marker lines, "
            "then save the file again",
            line=line,
        )
    nul = raw.find(b"\0")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
        raise PostError(
            f"line {line}: the file contains a NUL byte",
            "save the file as UTF-8 text"
            + (" (it looks like UTF-16)" if utf16 else "; a post is plain text, not binary"),
            line=line,
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PostError(
            f"line {line}: the file is not valid UTF-8 "
            f"(byte 0x{raw[exc.start]:02x} at column {column})",
            "save the file as UTF-8 text",
            line=line,
        ) from None
    if re.match(r"---[ \t]*\r(?!\n)", text):
        # Classic Mac line ends: read as one line, the frontmatter would go out as text.
        raise PostError(
            "line 1: the file's lines end with a bare CR (old Mac line endings)",
            "save the file with LF (or CRLF) line endings",
            line=1,
        )
    line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
    first_end = text.find("\n")
    newline = "\r\n" if first_end > 0 and text[first_end - 1] == "\r" else "\n"
    doc = _Doc(bom, text, newline, None, 0, line_starts)
    if _SEPARATOR.fullmatch(_line_text(text, 0)):
        starts = line_starts[1:]
        for start in starts:
            if _SEPARATOR.fullmatch(_line_text(text, start)):
                after = text.find("\n", start)
                doc.fm = (starts[0], start)
                doc.body_start = len(text) if after < 0 else after + 1
                break
        else:
            raise PostError(
                "line 1: the frontmatter that starts here is never closed",
                "end it with a line holding only `---` (or, for a post with no options, "
                "do not start the file with `---`)",
                line=1,
            )
    return doc


def _line_text(text: str, start: int) -> str:
    end = text.find("\n", start)
    return text[start : len(text) if end < 0 else end].rstrip("\r")


def _encode(text: str, *, bom: bool) -> bytes:
    return (_BOM if bom else b"") + text.encode("utf-8")


# --------------------------------------------------------------------------- YAML -> tree


@dataclass
class _Scalar:
    value: str
    plain: bool
    start: int
    end: int

    @property
    def null(self) -> bool:
        return self.plain and self.value in _NULLS


@dataclass
class _Seq:
    start: int
    end: int
    flow: bool
    path: str  # where it is, for messages: `overrides.bluesky`, `media[2]`
    items: list[_Node] = field(default_factory=list)


@dataclass
class _Map:
    start: int
    end: int
    flow: bool
    path: str
    keys: list[_Scalar] = field(default_factory=list)
    values: list[_Node] = field(default_factory=list)
    pending: _Scalar | None = None
    seen: dict[str, _Scalar] = field(default_factory=dict)  # finds duplicates in O(1)

    def get(self, key: str) -> _Node | None:
        for k, v in zip(self.keys, self.values, strict=True):
            if k.value == key:
                return v
        return None

    def items(self) -> Iterable[tuple[_Scalar, _Node]]:
        return zip(self.keys, self.values, strict=True)


_Node = _Scalar | _Seq | _Map


def _kind(node: _Node) -> str:
    if isinstance(node, _Map):
        return "a mapping (`key: value` lines)"
    if isinstance(node, _Seq):
        return "a list"
    return "text"


def _read_tree(doc: _Doc) -> _Map:
    """Build the frontmatter tree from YAML events, without recursion, refusing what we must."""
    if doc.fm is None:
        return _Map(0, 0, flow=False, path="")
    offset, fm_end = doc.fm
    source = doc.text[offset:fm_end]
    stack: list[_Seq | _Map] = []
    root: _Node | None = None
    documents = 0

    def attach(node: _Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        top = stack[-1]
        top.end = max(top.end, node.end)
        if isinstance(top, _Seq):
            top.items.append(node)
        elif top.pending is None:
            assert isinstance(node, _Scalar)  # collections in key position are refused earlier
            _check_key(doc, top, node)
            top.pending = node
        else:
            top.keys.append(top.pending)
            top.values.append(node)
            top.pending = None

    try:
        for event in yaml.parse(source, Loader=_LOADER):
            at = offset + _index(event.start_mark)
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise doc.error(
                        at,
                        "the frontmatter holds more than one YAML document",
                        "remove the `...` or `--- something` line; the frontmatter is one set "
                        "of `key: value` lines",
                    )
            elif isinstance(event, yaml.AliasEvent):
                raise doc.error(
                    at,
                    f"aliases (`*{event.anchor}`) are not allowed",
                    "write the value out in full instead of referring to an anchor",
                )
            elif isinstance(event, yaml.NodeEvent):
                _check_node_event(doc, source, event, at)
                if isinstance(event, yaml.ScalarEvent):
                    end = offset + _index(event.end_mark)
                    scalar = _Scalar(event.value, event.style in (None, ""), at, end)
                    if not stack:
                        _refuse_root(doc, scalar)
                    attach(scalar)
                elif isinstance(event, yaml.CollectionStartEvent):
                    _check_container(doc, stack, event, at)
                    flow = bool(event.flow_style)
                    if isinstance(event, yaml.MappingStartEvent):
                        stack.append(_Map(at, at, flow, _child_path(stack)))
                    else:
                        stack.append(_Seq(at, at, flow, _child_path(stack)))
            elif isinstance(event, yaml.CollectionEndEvent):
                done = stack.pop()
                if done.flow:
                    done.end = offset + _index(event.end_mark)
                attach(done)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        index = offset + _index(mark)
        if "nesting depth" in str(exc.problem):
            # libyaml scans ahead and stops at its own limit before we see the events.
            raise _too_deep(doc, index) from None
        problem = str(exc.problem)
        if "\t" in _indent_of(doc, index) and ("tab" in problem or "start any token" in problem):
            # YAML's own words ("cannot start any token") do not say what is wrong.
            raise doc.error(
                index,
                "YAML forbids tabs for indentation; indent this line with spaces",
                "replace the tabs at the start of the line with spaces (as many as the "
                "other lines at its level have)",
            ) from None
        raise doc.error(
            index,
            "the frontmatter is not valid YAML",
            f"YAML says: {exc.problem or exc.context}; {_QUOTE_HINT}",
        ) from None
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", 0)
        raise doc.error(
            offset + position,
            "the frontmatter has a character YAML does not allow",
            f"YAML says: {getattr(exc, 'reason', exc)}; delete it, or write it inside double "
            'quotes as an escape like "\\u0007"',
        ) from None
    if root is None:
        return _Map(offset, offset, flow=False, path="")  # empty or only comments: no keys
    assert isinstance(root, _Map)
    return root


def _indent_of(doc: _Doc, index: int) -> str:
    """The blanks that start the line holding character `index`."""
    start = doc.line_starts[doc.line(index) - 1]
    line = _line_text(doc.text, start)
    return line[: len(line) - len(line.lstrip(" \t"))]


def _index(mark: Any) -> int:
    """A mark's character index (marks are optional in the stubs; both parsers set them)."""
    return int(getattr(mark, "index", 0) or 0)


def _check_node_event(doc: _Doc, source: str, event: yaml.NodeEvent, at: int) -> None:
    if event.anchor is not None:
        raise doc.error(
            at,
            f"anchors (`&{event.anchor}`) are not allowed",
            "remove the anchor and write every value out in full",
        )
    tag = getattr(event, "tag", None)
    if tag is not None:
        local = at - doc.fm[0] if doc.fm else 0
        written = re.match(r"\S*", source[local:])
        shown = written.group() if written and written.group().startswith("!") else tag
        raise doc.error(
            at,
            f"YAML tags like `{shown}` are not allowed",
            "remove the tag; values are read as text, so quote the value instead if needed",
        )


def _check_container(doc: _Doc, stack: list[_Seq | _Map], event: yaml.NodeEvent, at: int) -> None:
    kind = "a mapping" if isinstance(event, yaml.MappingStartEvent) else "a list"
    if not stack and not isinstance(event, yaml.MappingStartEvent):
        raise doc.error(
            at,
            "the frontmatter must be `key: value` lines, not a list",
            "write options as `key: value`, one per line, e.g. `cw: spoilers`",
        )
    if stack and isinstance(stack[-1], _Map) and stack[-1].pending is None:
        raise doc.error(at, f"a key must be text, not {kind}", "write keys as plain words")
    if len(stack) >= MAX_DEPTH:
        raise _too_deep(doc, at)


def _too_deep(doc: _Doc, at: int) -> PostError:
    return doc.error(
        at,
        f"the frontmatter is nested more than {MAX_DEPTH} levels deep",
        "no option needs that much nesting; see plurspool(5) for the keys",
    )


def _refuse_root(doc: _Doc, node: _Scalar) -> NoReturn:
    raise doc.error(
        node.start,
        "the frontmatter must be `key: value` lines, not text",
        "write options as `key: value`, one per line; put the post's text after the closing `---`",
    )


def _child_path(stack: list[_Seq | _Map]) -> str:
    if not stack:
        return ""
    top = stack[-1]
    if isinstance(top, _Seq):
        return f"{top.path}[{len(top.items) + 1}]"
    assert top.pending is not None
    return f"{top.path}.{top.pending.value}" if top.path else top.pending.value


def _check_key(doc: _Doc, mapping: _Map, key: _Scalar) -> None:
    if key.value == "" and key.plain:
        raise doc.error(key.start, "a key is missing before `:`", "write it as `key: value`")
    seen = mapping.seen.get(key.value)
    if seen is not None:
        name = f"{mapping.path}.{key.value}" if mapping.path else key.value
        raise doc.error(
            key.start,
            f"`{name}` is given twice (first on line {doc.line(seen.start)})",
            "keep one of them",
        )
    mapping.seen[key.value] = key


# --------------------------------------------------------------------------- tree -> Post


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
        }
        for key, node in root.items():
            name = f"`{key.value}`"
            match key.value:
                case "schedule":
                    values["schedule"] = self.checked(node, name, _check_schedule_field)
                    if values["schedule"] is not None:
                        values["schedule_line"] = self.doc.line(node.start)
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
                case _:
                    raise self.unknown(key, TOP_KEYS, "")
        return Post(
            parts=self.body(),
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


# --------------------------------------------------------------------------- value checks
# Each raises PostError without a line; the caller adds the line when there is one.


def _check_schedule_value(value: str) -> str:
    return _check_schedule_field(value, "`schedule`")


def _check_schedule_field(value: str, name: str) -> str:
    if not value.strip():
        raise PostError(f"{name} is empty", "leave it out to send as soon as possible")
    if "\n" in value or "\r" in value:
        raise PostError(f"{name} must be on one line", "write the time on the `schedule:` line")
    return value


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


def _media_dict(item: Media, number: int) -> dict[str, str]:
    out = {"path": _check_media_path(item.path, f"`path` of media item {number}")}
    if item.alt is not None:
        out["alt"] = item.alt
    return out


# --------------------------------------------------------------------------- thread parts


def _split_lines(text: str) -> list[tuple[str, int | None, int | None]]:
    """Parts of `text`: (trimmed text, 0-based line of the `---` before it, and after it)."""
    pieces: list[tuple[str, int | None, int | None]] = []
    current: list[str] = []
    opened: int | None = None
    lines = text.split("\n")
    for number, raw in enumerate(lines):
        line = raw.rstrip("\r")
        if _SEPARATOR.fullmatch(line):
            pieces.append((_trim(current), opened, number))
            current, opened = [], number
        else:
            current.append(line)
    pieces.append((_trim(current), opened, None))
    return pieces


def _trim(lines: list[str]) -> str:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end])


def _empty_part(
    pieces: list[tuple[str, int | None, int | None]],
) -> tuple[int, str, str] | None:
    """The first empty part as (0-based line to name, message, hint), or None."""
    for number, (text, opened, closed) in enumerate(pieces, 1):
        if text:
            continue
        if opened is None and closed is None:
            return 0, "the post has no text", "write the text after the frontmatter's closing `---`"
        if opened is None:
            assert closed is not None
            return (
                closed,
                "the first thread part is empty (nothing before this `---`)",
                "write text before this `---` line, or remove the line",
            )
        return (
            opened,
            f"thread part {number} is empty (nothing after this `---`)",
            "write the part's text after this `---` line, or remove the line",
        )
    return None


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


# --------------------------------------------------------------------------- writing back


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


def _dump(fields: Mapping[str, Any], newline: str) -> str:
    """Block YAML for `fields`, readable (raw Unicode) when that reads back the same."""
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
            default_flow_style=False,
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
    return out


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
