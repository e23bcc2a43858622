"""The frontmatter as a tree: the file decoded, its `---` lines found, and its YAML read into
scalars, lists and mappings that keep their place in the file, with anything a post must not hold
refused with its line.

The frontmatter is read through PyYAML's event API and the tree is built here, iteratively,
reading every scalar as text: YAML 1.1's implicit typing (`9:30` -> 570, `no` -> False, dates)
never decides a value, and tags, anchors and aliases are refused before they can do anything.
Conflict markers are lines starting `<<<<<<< ` or `>>>>>>> ` (or holding only the seven
characters); a lone `=======` line is a Markdown heading underline and is not a marker.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from plurspool.errors import PostError

from .model import _SEPARATOR

# libyaml is ~15x faster; both backends yield the same events and marks for what we accept.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_DEPTH = 8
_BOM = b"\xef\xbb\xbf"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_CONFLICT = re.compile(rb"^(?:<<<<<<<|>>>>>>>)(?:[ \t]|\r?$)", re.MULTILINE)

_QUOTE_HINT = (
    "put the value in quotes if it contains `: ` or ` #` or starts with a special character"
)


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
