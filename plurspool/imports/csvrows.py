"""`import csv` and `import jsonl`: a spreadsheet's rows or JSON lines → `Row`s, every bad one
named by its line (plurspool(1), IMPORTS).

Columns (CSV, with a header line) or keys (JSON Lines): `text`, `schedule`, `platforms`, `cw`,
`language`, `visibility`, `media`, `alt`. In CSV `platforms` is split at spaces or commas and
`media`/`alt` at `|`; in JSON Lines they may also be lists. An empty cell or a null is absent.
A row's seed is its content, not its line: the same row imported again, or moved to another
line or from CSV to JSON Lines, is the same post.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from . import Bad, BadRows, Row

COLUMNS = ("text", "schedule", "platforms", "cw", "language", "visibility", "media", "alt")
_SPLIT_PLATFORMS = re.compile(r"[\s,]+")


class _Bad(Exception):
    """A row's fault, named with the row's line by the caller."""


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadRows(
            source, [(f"line {line}", "not UTF-8 text; save the file as UTF-8")]
        ) from None


def _platforms(value: str | list[Any] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = _SPLIT_PLATFORMS.split(value.strip()) if isinstance(value, str) else value
    if not all(isinstance(n, str) for n in names):
        raise _Bad("`platforms` holds something other than account names")
    out = tuple(n.strip() for n in names if n.strip())
    return out or None


def _pieces(name: str, value: str | list[Any] | None) -> list[str | None]:
    """`media` or `alt`: split at `|` (text) or a list of texts; an empty piece is absent."""
    if value is None:
        return []
    items = value.split("|") if isinstance(value, str) else value
    if not all(isinstance(v, str) or v is None for v in items):
        raise _Bad(f"`{name}` must be text (pieces separated by `|`) or a list of texts")
    return [(v.strip() or None) if isinstance(v, str) else None for v in items]


def _row(where: str, fields: dict[str, Any]) -> Row:
    """A row from its fields (absent ones left out), checked for shape; the rest is checked
    as a post by plurspool.importing."""
    from ..post import Media

    text = fields.get("text")
    if text is None or not str(text).strip():
        raise _Bad("`text` is empty; every row needs the text of its post")
    for key in ("text", "schedule", "cw", "language", "visibility"):
        if fields.get(key) is not None and not isinstance(fields[key], str):
            raise _Bad(f"`{key}` must be text, not {type(fields[key]).__name__}")
    paths = _pieces("media", fields.get("media"))
    alts = _pieces("alt", fields.get("alt"))
    if any(p is None for p in paths):
        raise _Bad("`media` has an empty path between its `|`")
    if len(alts) > len(paths):
        raise _Bad(f"`alt` has {len(alts)} texts for {len(paths)} media files; give one per file")
    media = tuple(Media(str(p), alts[i] if i < len(alts) else None) for i, p in enumerate(paths))
    row = {
        "text": text,
        "schedule": (fields.get("schedule") or "").strip() or None,
        "platforms": _platforms(fields.get("platforms")),
        "cw": fields.get("cw") or None,
        "language": (fields.get("language") or "").strip() or None,
        "visibility": (fields.get("visibility") or "").strip() or None,
    }
    seed = json.dumps(
        ["rows", row, [(m.path, m.alt) for m in media]], ensure_ascii=False, sort_keys=True
    ).encode()
    return Row(where=where, seed=seed, media=media, **row)


def _rows(found: Iterator[tuple[int, dict[str, Any] | str]]) -> list[Row | Bad]:
    """The rows of (line, fields or a fault) pairs, a `Bad` for each bad one."""
    out: list[Row | Bad] = []
    for line, fields in found:
        where = f"line {line}"
        if isinstance(fields, str):
            out.append(Bad(where, fields))
            continue
        try:
            out.append(_row(where, fields))
        except _Bad as exc:
            out.append(Bad(where, str(exc)))
    return out


def _unknown(keys: Sequence[str]) -> str | None:
    unknown = [k for k in keys if k not in COLUMNS]
    if not unknown:
        return None
    return (
        f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
        f"the columns are {', '.join(COLUMNS)}"
    )


def read_csv(data: bytes, source: str) -> list[Row | Bad]:
    """A CSV file's rows; its first line names the columns (line 1)."""
    import csv
    import io

    text = _decode(data, source)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise BadRows(source, [("line 1", "the file is empty; line 1 names the columns")]) from None
    except csv.Error as exc:
        raise BadRows(source, [("line 1", f"not CSV: {exc}")]) from None
    names = [h.strip().lower() for h in header]
    problem = _unknown(names) or (
        "no `text` column; line 1 names the columns, e.g. text,schedule,platforms"
        if "text" not in names
        else None
    )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problem = f"the column {dupes[0]!r} is named twice"
    if problem:
        raise BadRows(source, [("line 1", problem)])

    def found() -> Iterator[tuple[int, dict[str, Any] | str]]:
        end = reader.line_num
        while True:
            start = end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, f"not CSV: {exc} (a quote left open?)"
                return
            end = reader.line_num
            if not any(c.strip() for c in cells):
                continue  # a blank line
            if len(cells) != len(names):
                yield (
                    start,
                    f"{len(cells)} cells for {len(names)} columns; quote cells holding commas",
                )
                continue
            yield start, {n: c for n, c in zip(names, cells, strict=True) if c.strip()}

    return _rows(found())


def read_jsonl(data: bytes, source: str) -> list[Row | Bad]:
    """A JSON Lines file's rows: one object a line; blank lines are skipped."""
    text = _decode(data, source)

    def found() -> Iterator[tuple[int, dict[str, Any] | str]]:
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not JSON: {exc.msg} at column {exc.colno}"
                continue
            if not isinstance(value, dict):
                yield number, 'not a JSON object; write one {"text": …} object a line'
                continue
            problem = _unknown(list(value))
            if problem:
                yield number, problem.replace("column", "key")
                continue
            yield number, {k: v for k, v in value.items() if v is not None}

    return _rows(found())
