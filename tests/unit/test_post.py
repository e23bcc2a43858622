"""The post file: golden parses, byte-exact write-back, render round trips, hostile input."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from plurspool.errors import PostError
from plurspool.post import (
    TEMPLATE,
    Media,
    Override,
    Post,
    Result,
    has_conflict_markers,
    parse,
    render,
    split_parts,
    template,
    with_record,
    with_retried,
    with_schedule,
)
from plurspool.post import tree as post_tree
from plurspool.post import write as post_write
from tests.data import YAMLISH_FILES

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "post"
CASES = sorted(path.stem for path in GOLDEN.glob("*.md"))
LOADERS = {"python": yaml.SafeLoader, "libyaml": getattr(yaml, "CSafeLoader", None)}


@pytest.fixture(params=sorted(LOADERS))
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with each YAML backend: the results must not depend on libyaml."""
    chosen = LOADERS[request.param]
    if chosen is None:
        pytest.skip("PyYAML was built without libyaml")
    monkeypatch.setattr(post_tree, "_LOADER", chosen)
    monkeypatch.setattr(post_write, "_LOADER", chosen)
    yield request.param


def as_json(post: Post) -> dict[str, Any]:
    return {
        "schedule": post.schedule,
        "schedule_line": post.schedule_line,
        "platforms": None if post.platforms is None else list(post.platforms),
        "cw": post.cw,
        "language": post.language,
        "visibility": post.visibility,
        "sensitive": post.sensitive,
        "media": [{"path": m.path, "alt": m.alt} for m in post.media],
        "overrides": {
            account: {
                "text": o.text,
                "parts": None if o.parts is None else list(o.parts),
                "cw": o.cw,
                "language": o.language,
                "visibility": o.visibility,
                "sensitive": o.sensitive,
            }
            for account, o in post.overrides.items()
        },
        "parts": list(post.parts),
        "preview": post.preview,
        "results": {
            account: {
                "id": r.id,
                "url": r.url,
                "error": r.error,
                "attempts": r.attempts,
                "at": r.at,
                **({"deleted_at": r.deleted_at} if r.deleted_at else {}),
            }
            for account, r in post.results.items()
        },
        "attempts": post.attempts,
        # The richer keys only where a file has them, so that older expectations stay.
        **({"poll": dataclasses.asdict(post.poll)} if post.poll else {}),
        **({"expires": dataclasses.asdict(post.expires)} if post.expires else {}),
        **(
            {"quote": {"default": post.quote.default, "accounts": dict(post.quote.accounts)}}
            if post.quote
            else {}
        ),
        # Only when set, so that the files written before the key existed stay as they were.
        **({"split": post.split} if post.split is not None else {}),
        **({"repeat": post.repeat, "skip": list(post.skip)} if post.repeat else {}),
        **({"skipped": list(post.skipped)} if post.skipped else {}),
    }


def describe(data: bytes) -> str:
    """What a golden `.expected` file holds: the parse as JSON, or the error and its hint."""
    try:
        post = parse(data)
    except PostError as exc:
        return f"{exc.message}\nhint: {exc.hint}\n"
    return json.dumps(as_json(post), indent=2, ensure_ascii=False) + "\n"


def valid_cases() -> list[str]:
    return [name for name in CASES if not describe(read(name)).startswith("line ")]


def read(name: str) -> bytes:
    return (GOLDEN / f"{name}.md").read_bytes()


# --------------------------------------------------------------------------- golden files


def test_golden_set_is_there() -> None:
    assert len(CASES) >= 40
    orphans = {p.stem for p in GOLDEN.glob("*.expected")} - set(CASES)
    assert not orphans, f"expectations without a post file: {orphans}"


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str, loader: str) -> None:
    got = describe(read(name))
    expected_path = GOLDEN / f"{name}.expected"
    if os.environ.get("UPDATE_GOLDEN") == "1" and loader == "libyaml":
        expected_path.write_text(got, encoding="utf-8")
        pytest.skip(f"rewrote {expected_path.name}; review the diff")
    assert expected_path.exists(), f"missing {expected_path}; run with UPDATE_GOLDEN=1"
    expected = expected_path.read_text(encoding="utf-8")
    if loader == "python" and "hint: YAML says:" in expected:
        # The YAML library's own wording differs between backends; message and line must not.
        assert got.splitlines()[0] == expected.splitlines()[0]
    else:
        assert got == expected


@pytest.mark.parametrize("name", CASES)
def test_golden_errors_carry_their_line(name: str) -> None:
    try:
        parse(read(name))
    except PostError as exc:
        assert exc.line is not None
        assert exc.message.startswith(f"line {exc.line}: ")
        assert exc.hint


# --------------------------------------------------------------------------- hostile input


DEEP = {
    "flow-under-key": "cw: " + "[" * 10_000 + "]" * 10_000,
    "block": "x:\n" + "".join("  " * depth + f"k{depth}:\n" for depth in range(1, 3000)),
    "dashes": "x:\n  " + "- " * 10_000 + "deep",
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_nesting_is_refused(name: str, loader: str) -> None:
    with pytest.raises(PostError, match=r"nested more than 8 levels deep") as info:
        parse(f"---\n{DEEP[name]}\n---\nx\n".encode())
    assert info.value.line is not None and info.value.line >= 2


def test_deep_list_as_frontmatter_is_refused(loader: str) -> None:
    # libyaml stops at its own nesting limit before the parser sees the top-level list.
    with pytest.raises(PostError, match=r"^line 2: the frontmatter (must be|is nested)"):
        parse(b"---\n" + b"[" * 10_000 + b"\n---\nx\n")


def test_eight_levels_are_fine_nine_are_not() -> None:
    # The schema never needs more than 3 levels; 8 is the documented limit of the reader.
    ok = "cw: " + "[" * 7 + "]" * 7
    with pytest.raises(PostError, match="`cw` must be text, not a list"):
        parse(f"---\n{ok}\n---\nx\n".encode())
    with pytest.raises(PostError, match="nested more than 8"):
        parse(f"---\ncw: {'[' * 8}{']' * 8}\n---\nx\n".encode())


def test_alias_bomb_stops_at_the_first_anchor() -> None:
    with pytest.raises(PostError, match=r"line 2: anchors \(`&a`\) are not allowed"):
        parse(read("alias_bomb"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_post_errors(data: bytes) -> None:
    try:
        parse(data)
    except PostError as exc:
        assert exc.message and exc.hint


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH_FILES)
def test_yamlish_text_raises_only_post_errors(data: bytes) -> None:
    try:
        post = parse(data)
    except PostError as exc:
        assert exc.message and exc.hint
        return
    # What parses must also survive both write-backs, to the same post.
    rescheduled = parse(with_schedule(data, "2026-12-01T09:00:00+01:00"))
    assert rescheduled.schedule == "2026-12-01T09:00:00+01:00"
    assert rescheduled.parts == post.parts and rescheduled.overrides == post.overrides
    recorded = parse(with_record(data, {"a": Result(id="1")}, 1))
    assert recorded.results == {"a": Result(id="1")} and recorded.attempts == 1
    assert recorded.parts == post.parts and recorded.schedule == post.schedule


def test_post_module_does_not_import_dateparser() -> None:
    code = "import sys, plurspool.post; sys.exit('dateparser' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --------------------------------------------------------------------------- the Post object


def test_overrides_apply_per_account() -> None:
    post = parse(read("overrides"))
    assert post.parts_for("bluesky") == ("Short one for Bluesky.", "And a second part.")
    assert post.parts_for("mastodon") == ("Der ganze Text für Mastodon.",)
    assert post.parts_for("unknown") == post.parts
    assert post.field_for("bluesky", "cw") == "Politik"
    assert post.field_for("nostr", "cw") == "Politics"
    assert post.field_for("bluesky", "sensitive") is True
    assert post.field_for("mastodon", "sensitive") is None
    assert post.field_for("nostr", "language") == "en"
    assert post.field_for("bluesky", "language") == "de"
    assert post.field_for("nostr", "visibility") == "unlisted"
    with pytest.raises(ValueError):
        post.field_for("nostr", "text")  # type: ignore[call-overload]


def test_post_mappings_are_read_only() -> None:
    post = parse(read("overrides"))
    with pytest.raises(TypeError):
        post.overrides["x"] = Override()  # type: ignore[index]


def test_override_parts() -> None:
    assert Override().parts is None
    assert Override(text="a\n---\nb").parts == ("a", "b")


def test_preview_collapses_and_cuts() -> None:
    post = parse(("  word\t" * 30 + "\n---\nsecond").encode())
    assert post.preview == ("word " * 12)[:59] + "…"
    assert len(post.preview) == 60
    assert parse(b"short\n  text").preview == "short text"


def test_split_parts() -> None:
    assert split_parts("a\r\n---\r\n\r\nb\r\n") == ("a", "b")
    with pytest.raises(PostError, match="thread part 2 is empty"):
        split_parts("a\n---\n")


def test_template_needs_only_a_body() -> None:
    with pytest.raises(PostError, match="the post has no text"):
        parse(TEMPLATE.encode())
    post = parse((TEMPLATE + "Hello\n---\nWorld\n").encode())
    assert post.parts == ("Hello", "World") and post.schedule is None and post.platforms is None
    filled = parse((template(schedule="tomorrow 9am", platforms=["a", "b c"]) + "Hi").encode())
    assert filled.schedule == "tomorrow 9am" and filled.platforms == ("a", "b c")


def test_template_quotes_account_names_as_render_does() -> None:
    """Names YAML 1.1 reads as booleans, numbers or dates, and names PyYAML cannot read plain
    in a flow list (`a?`), are quoted: plain YAML reads the same list as plurspool."""
    names = ["no", "on", "1", "0x1F", "2026-12-01", "a?", "a,b", "x"]
    text = template(platforms=names)
    assert "platforms: ['no', 'on', '1', '0x1F', '2026-12-01', 'a?', 'a,b', x]\n" in text
    assert parse((text + "Hi").encode()).platforms == tuple(names)
    # PyYAML on purpose: the test is about what another YAML reader makes of the written bytes.
    assert yaml.safe_load(text.split("---\n")[1])["platforms"] == names


# --------------------------------------------------------------------------- conflict markers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<<<<<<< HEAD\nmine\n=======\ntheirs\n>>>>>>> branch\n", True),
        ("ok\r\n>>>>>>> branch\r\n", True),
        ("<<<<<<<\n", True),
        ("\ufeff<<<<<<< HEAD\n", True),
        ("Heading\n=======\n", False),  # a Markdown heading underline, not a marker
        (">>>>>>>>> deep quote\n", False),
        ("text <<<<<<< HEAD\n", False),
        ("<<<<<<<HEAD\n", False),
    ],
)
def test_has_conflict_markers(text: str, expected: bool) -> None:
    assert has_conflict_markers(text.encode()) is expected


# --------------------------------------------------------------------------- with_schedule

SCHEDULE_LINE = re.compile(
    rb"^(?P<indent>[ \t]*schedule:[ \t]*)"
    rb"(?P<value>\"[^\"]*\"|'[^']*'|[^#\r\n]*?)[ \t]*(?:#[^\r\n]*)?\r?$",
    re.MULTILINE,
)
NEW = "2027-01-02T03:04:05+01:00"


@pytest.mark.parametrize("name", valid_cases())
def test_with_schedule_changes_only_the_value(name: str) -> None:
    data = read(name)
    out = with_schedule(data, NEW)
    assert parse(out).schedule == NEW
    bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
    newline = b"\r\n" if b"\r\n" in data.split(b"\n", 1)[0] + b"\n" else b"\n"
    match = SCHEDULE_LINE.search(data)
    if not data[len(bom) :].startswith(b"---"):
        expected = bom + b"---" + newline + b"schedule: " + NEW.encode() + newline
        expected += b"---" + newline + data[len(bom) :]
    elif match is None:
        first_line_end = data.index(b"\n") + 1
        inserted = b"schedule: " + NEW.encode() + newline
        expected = data[:first_line_end] + inserted + data[first_line_end:]
    else:
        start, end = match.span("value")
        value = (
            NEW.encode() if start < end or data[start - 1 : start] == b" " else b" " + NEW.encode()
        )
        expected = data[:start] + value + data[end:]
    assert out == expected


def test_with_schedule_keeps_crlf_bom_and_comment() -> None:
    data = "\ufeff---\r\nschedule: 2h   # soon\r\ncw: x\r\n---\r\nbody\r\n".encode()
    out = with_schedule(data, NEW)
    assert out == f"\ufeff---\r\nschedule: {NEW}   # soon\r\ncw: x\r\n---\r\nbody\r\n".encode()


def test_with_schedule_fills_an_empty_value() -> None:
    assert with_schedule(b"---\nschedule:\ncw: a\n---\nx\n", NEW) == (
        f"---\nschedule: {NEW}\ncw: a\n---\nx\n".encode()
    )


def test_with_schedule_quotes_when_plain_is_unsafe() -> None:
    for value in ["tomorrow 9am # not a comment", "no", "9:30: odd", "'quoted'", "a\u2028b"]:
        out = with_schedule(b"---\nschedule: 2h\n---\nx\n", value)
        assert parse(out).schedule == value


def test_with_schedule_indented_and_flow_frontmatter() -> None:
    indented = b"---\n  cw: a\n  language: en\n---\nx\n"
    assert (
        with_schedule(indented, NEW)
        == f"---\n  schedule: {NEW}\n  cw: a\n  language: en\n---\nx\n".encode()
    )
    flow = b"---\n{cw: a, schedule: 2h}\n---\nx\n"
    assert with_schedule(flow, NEW) == f"---\n{{cw: a, schedule: {NEW}}}\n---\nx\n".encode()
    # No schedule key in a flow mapping: the frontmatter is rewritten, the body kept.
    out = with_schedule(b"---\n{cw: a}\n---\nbody  \n", NEW)
    assert parse(out).schedule == NEW and parse(out).cw == "a" and out.endswith(b"---\nbody  \n")


def test_with_schedule_replaces_a_block_scalar() -> None:
    data = b"---\nschedule: >-\n  tomorrow\n  9am\ncw: a\n---\nx\n"
    assert parse(data).schedule == "tomorrow 9am"
    assert with_schedule(data, NEW) == f"---\nschedule: {NEW}\ncw: a\n---\nx\n".encode()


def test_with_schedule_refuses_bad_input() -> None:
    with pytest.raises(PostError, match="conflict"):
        with_schedule(read("conflict_markers"), NEW)
    with pytest.raises(PostError, match="one line"):
        with_schedule(b"x\n", "a\nb")


# --------------------------------------------------------------------------- with_retried

TOKEN = "2026-12-01T08:00:00Z-a1b2c3"


@pytest.mark.parametrize("name", valid_cases())
def test_with_retried_adds_one_line_and_changes_nothing_else(name: str) -> None:
    data = read(name)
    out = with_retried(data, TOKEN)
    before, after = parse(data), parse(out)
    assert after.retried == TOKEN
    assert dataclasses.replace(after, retried=None, schedule_line=None) == dataclasses.replace(
        before, schedule_line=None
    )
    # Where the frontmatter is block YAML, the file gains exactly one line and loses none.
    added = [line for line in out.splitlines() if line not in data.splitlines()]
    if data.lstrip(b"\xef\xbb\xbf").startswith(b"---") and not re.search(rb"^---\r?\n\{", data):
        assert added == [f"retried: {TOKEN}".encode()] and len(out) > len(data)
        assert set(data.splitlines()) <= set(out.splitlines())


def test_with_retried_replaces_the_token_in_place() -> None:
    data = b"---\nschedule: 2h  # soon\nretried: old-token # mine\ncw: a\n---\nx\n"
    assert with_retried(data, TOKEN) == (
        f"---\nschedule: 2h  # soon\nretried: {TOKEN} # mine\ncw: a\n---\nx\n".encode()
    )
    added = with_retried(b"---\r\ncw: a\r\n---\r\nx\r\n", TOKEN)
    assert added == f"---\r\ncw: a\r\nretried: {TOKEN}\r\n---\r\nx\r\n".encode()


def test_retried_is_read_as_text_and_checked() -> None:
    assert parse(b"---\nretried: 2026-12-01\n---\nx\n").retried == "2026-12-01"  # no date
    assert parse(b"---\nretried:\n---\nx\n").retried is None
    with pytest.raises(PostError, match=r"line 3: `retried` must be text"):
        parse(b"---\ncw: a\nretried: [a]\n---\nx\n")
    with pytest.raises(PostError, match="one line"):
        with_retried(b"x\n", "a\nb")


# --------------------------------------------------------------------------- with_record

RESULTS = {
    "mastodon": Result(id="109876543210", url="https://example.social/@me/1", attempts=1),
    "bluesky": Result(error="HTTP 400: 'bad' \"request\"\nsecond line: yes", attempts=2),
    "nostr": Result(id="note1…", at="2026-12-01T08:00:00Z"),
    "no": Result(),
}


@pytest.mark.parametrize("name", valid_cases())
def test_with_record_round_trips(name: str) -> None:
    data = read(name)
    before = parse(data)
    out = with_record(data, RESULTS, 3)
    after = parse(out)
    assert after.results == RESULTS and after.attempts == 3
    assert (after.schedule, after.platforms, after.cw, after.media, after.parts) == (
        before.schedule,
        before.platforms,
        before.cw,
        before.media,
        before.parts,
    )
    assert out.startswith(b"\xef\xbb\xbf") == data.startswith(b"\xef\xbb\xbf")
    # Written again with nothing to record, the keys go away.
    cleared = parse(with_record(out, {}, 0))
    assert dict(cleared.results) == {} and cleared.attempts == 0


TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True),
        st.builds(
            Result,
            id=st.none() | TEXT,
            url=st.none() | TEXT,
            error=st.none() | TEXT,
            attempts=st.integers(0, 99),
            at=st.none() | TEXT,
        ),
        max_size=3,
    ),
    st.integers(0, 99),
)
def test_with_record_round_trips_any_text(results: dict[str, Result], attempts: int) -> None:
    data = b"---\nschedule: 2026-12-01 08:00\n---\nbody\n"
    # Written in place, by the direct writer: never the rewrite of the whole frontmatter.
    with mock.patch.object(post_write, "_rebuild", side_effect=AssertionError("rebuilt")):
        out = with_record(data, results, attempts)
    after = parse(out)
    assert after.results == results and after.attempts == attempts
    assert out.startswith(b"---\nschedule: 2026-12-01 08:00\n") and out.endswith(b"---\nbody\n")


def test_with_record_touches_only_its_own_lines() -> None:
    data = read("recorded")
    out = with_record(data, {"bluesky": Result(id="x")}, 3)
    head = data[: data.index(b"results:")]
    tail = data[data.index(b"---\nSent once.") :]
    assert out == head + b"results:\n  bluesky:\n    id: x\n    url: null\nattempts: 3\n" + tail


def test_with_record_appends_with_the_file_line_ending() -> None:
    data = read("crlf")
    out = with_record(data, {"mastodon": Result(id="1")}, 1)
    closing = data.index(b"---\r\nLine one")
    assert (
        out
        == data[:closing]
        + (b"results:\r\n  mastodon:\r\n    id: '1'\r\n    url: null\r\nattempts: 1\r\n")
        + data[closing:]
    )


def test_with_record_in_indented_and_flow_frontmatter() -> None:
    indented = b"---\n  cw: a  # keep me\n  attempts: 1\n  language: en\n---\nx\n"
    assert with_record(indented, {}, 2) == (
        b"---\n  cw: a  # keep me\n  attempts: 2\n  language: en\n---\nx\n"
    )
    # A flow mapping cannot take new lines: the frontmatter is rewritten, the body kept.
    out = with_record(b"---\n{cw: a, platforms: [m]}\n---\nbody\n", {"m": Result(id="1")}, 1)
    record = b"results:\n  m:\n    id: '1'\n    url: null\nattempts: 1\n"
    assert out == b"---\nplatforms:\n- m\ncw: a\n" + record + b"---\nbody\n"


def test_with_record_removes_block_entries_whole() -> None:
    data = (
        b"---\nresults:\n  a:\n    error: |\n      multi\n      line\n\n"
        b"# a comment that stays\nattempts: 4 # old\ncw: x\n---\nbody\n"
    )
    out = with_record(data, {}, 0)
    assert out == b"---\n# a comment that stays\ncw: x\n---\nbody\n"


def test_with_record_without_frontmatter() -> None:
    out = with_record(b"Hello\r\n", {"a": Result(id="1")}, 1)
    record = b"results:\r\n  a:\r\n    id: '1'\r\n    url: null\r\nattempts: 1\r\n"
    assert out == b"---\r\n" + record + b"---\r\nHello\r\n"
    assert with_record(b"Hello\n", {}, 0) == b"Hello\n"


# --------------------------------------------------------------------------- render

LINE = st.one_of(
    st.sampled_from(
        [
            "",
            "  ",
            "---x",
            "a --- b",
            " ---",
            "----",
            "# heading",
            "#",
            "key: value",
            "'quoted'",
            '"double"',
            "- item",
            "…",
            "🙂 émoji",
            "=======",
            "<<<<<<<x",
            "\t",
            "schedule: 2h",
            "\\",
            "%YAML 1.1",
            "...",
            "\r",
        ]
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="\n\x00"), max_size=20),
)
PART = st.lists(LINE, min_size=1, max_size=6).map("\n".join)
TEXT = st.text(min_size=1, max_size=30)
ONE_LINE = TEXT.filter(lambda s: s.strip() != "" and "\n" not in s and "\r" not in s)
MEDIA_PATH = st.lists(
    st.text(
        st.characters(codec="utf-8", exclude_characters="/\x7f", min_codepoint=0x20),
        min_size=1,
        max_size=8,
    ),
    min_size=1,
    max_size=3,
).map("/".join)


def expected_part(part: str) -> str:
    """An independent reading of "trimmed of surrounding blank lines"."""
    lines = [line.rstrip("\r") for line in part.split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(PART, min_size=1, max_size=3),
    schedule=st.none() | ONE_LINE,
    platforms=st.none() | st.lists(TEXT.filter(str.strip), min_size=1, max_size=3, unique=True),
    cw=st.none() | TEXT.filter(str.strip),
    language=st.none() | st.sampled_from(["en", "pt-BR", "zh-Hant-TW", "no", "yes", "es-419"]),
    visibility=st.none() | st.sampled_from(["public", "unlisted", "followers", "direct"]),
    sensitive=st.none() | st.booleans(),
    media=st.lists(st.builds(Media, MEDIA_PATH, st.none() | TEXT), max_size=3),
)
def test_render_parse_round_trip(
    parts: list[str],
    schedule: str | None,
    platforms: list[str] | None,
    cw: str | None,
    language: str | None,
    visibility: str | None,
    sensitive: bool | None,
    media: list[Media],
) -> None:
    expected_parts = tuple(expected_part(p) for p in parts)
    assume(all(expected_parts))
    assume(not any(re.fullmatch(r"---[ \t]*", line) for p in parts for line in p.split("\n")))
    assume(not any(has_conflict_markers(p.encode()) for p in parts))
    assume(all(not m.path.startswith("~") and ".." not in m.path.split("/") for m in media))
    options: dict[str, Any] = {
        "schedule": schedule,
        "platforms": platforms,
        "cw": cw,
        "language": language,
        "visibility": visibility,
        "sensitive": sensitive,
        "media": media,
    }
    data = render(parts=parts, **options)
    post = parse(data)
    assert post.parts == expected_parts
    assert data.endswith(b"\n")
    assert post.schedule == schedule
    assert post.platforms == (None if platforms is None else tuple(platforms))
    assert (post.cw, post.language, post.visibility, post.sensitive) == (
        cw,
        language,
        visibility,
        sensitive,
    )
    assert post.media == tuple(media)
    # And what render wrote can be rescheduled and recorded without disturbing it.
    moved = parse(with_schedule(data, "now"))
    assert moved.schedule == "now" and moved.parts == post.parts and moved.media == post.media
    recorded = parse(with_record(data, {"x": Result(error=cw)}, 2))
    assert recorded.results == {"x": Result(error=cw)} and recorded.cw == cw


def test_render_layout() -> None:
    data = render(parts=["\n\nOne\n\n", "Two"], schedule="9:30", sensitive=False, language="no")
    assert (
        data == b"---\nschedule: '9:30'\nlanguage: 'no'\nsensitive: false\n---\nOne\n\n---\n\nTwo\n"
    )
    assert render(parts=["Just text"]) == b"Just text\n"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"parts": []}, "no text"),
        ({"parts": ["a", " \n "]}, "thread part 2 is empty"),
        ({"parts": ["a\n---\nb"]}, "holding only `---`"),
        ({"parts": ["a\n>>>>>>> x"]}, "conflict marker"),
        ({"parts": ["a\x00"]}, "NUL"),
        ({"parts": ["a\ud800"]}, "not valid Unicode"),
        ({"parts": ["a"], "visibility": "private"}, "`visibility` must be one of"),
        ({"parts": ["a"], "language": "english"}, "`language` must be a language tag"),
        ({"parts": ["a"], "platforms": []}, "empty list"),
        ({"parts": ["a"], "cw": "  "}, "`cw` is empty"),
        ({"parts": ["a"], "schedule": "a\nb"}, "one line"),
        ({"parts": ["a"], "media": [Media("../x")]}, "`..` part"),
    ],
)
def test_render_refuses(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(PostError, match=re.escape(message)):
        render(**kwargs)
