"""Hostile input through the intake path (plurspool(5) THE SPOOL, THE POST FILE, CRASHES): random
and named attacks.

In-process, Hypothesis feeds generated post files (random bytes, broken UTF-8, YAML-ish text,
huge and deep structures, random times) into `new/` next to valid posts and runs one pass of the
real `App` + `Sender` with an exec account. Then the real daemon gets a batch of the named attacks
alongside valid posts. The invariants, every time:

- the pass (or the daemon) never crashes;
- a file that is refused lands in `failed/` byte for byte, with a non-empty reason beside it and an
  `invalid` log event; a file that is taken changes only where plurspool writes (`schedule`, the
  results), never elsewhere;
- nothing is lost: every file ends in exactly one state;
- the valid posts of the same pass are sent exactly once, with their text intact.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plurspool.app import App
from plurspool.config import load
from plurspool.log import Log
from plurspool.post import parse, with_schedule
from plurspool.sender import PassResult, Sender
from plurspool.spool import DEFAULT_MAX_SIZE
from plurspool.when import has_offset
from tests.daemon_helpers import Sandbox, iso, post_text, wait_for
from tests.data import YAMLISH_FILES
from tests.helpers import BIN
from tests.robustness import hostile_run

MIB = DEFAULT_MAX_SIZE


def _alias_bomb() -> bytes:
    lines = ["---", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, 9):
        refs = ",".join([f"*a{n - 1}"] * 9)
        lines.append(f"a{n}: &a{n} [{refs}]")
    lines += ["---", "boom", ""]
    return "\n".join(lines).encode()


def _exactly(size: int, fill: bytes, schedule: str | None) -> bytes:
    head = b"---\n" + (f"schedule: {schedule}\n".encode() if schedule else b"") + b"---\n"
    return head + fill * (size - len(head) - 1) + b"\n"


# The named attacks of the campaign: each with where it must end and, for refusals, a piece of
# the reason that must be given.
NAMED: dict[str, tuple[bytes, str, str | None]] = {
    "python-object": (
        b"---\ncw: !!python/object/apply:os.system ['touch PWNED']\n---\nx\n",
        "failed",
        r"tags like `!!python/object/apply:os.system` are not allowed",
    ),
    "python-object-new": (
        b"---\n!!python/object/new:os.system [echo]: 1\n---\nx\n",
        "failed",
        r"tags .* not allowed",
    ),
    "python-name": (
        b"---\nschedule: !!python/name:os.system\n---\nx\n",
        "failed",
        r"tags .* not allowed",
    ),
    "alias-bomb": (_alias_bomb(), "failed", r"anchors \(`&a0`\) are not allowed"),
    "deep-flow-10k": (
        b"---\ncw: " + b"[" * 10_000 + b"]" * 10_000 + b"\n---\nx\n",
        "failed",
        r"nested more than 8 levels",
    ),
    "deep-map-10k": (
        b"---\ncw: " + b"{a: " * 10_000 + b"1" + b"}" * 10_000 + b"\n---\nx\n",
        "failed",
        r"nested more than 8 levels",
    ),
    "deep-top-10k": (b"---\n" + b"[" * 10_000 + b"\n---\nx\n", "failed", r"^line 2: "),
    "duplicate-keys": (b"---\ncw: a\ncw: b\n---\nx\n", "failed", r"`cw` is given twice"),
    "duplicate-schedule": (
        b"---\nschedule: 2h\nschedule: 3h\n---\nx\n",
        "failed",
        r"`schedule` is given twice",
    ),
    # YAML 1.1 would read these as 570, false and a date: here they stay text.
    "sexagesimal": (b"---\nschedule: 9:30\n---\nx\n", "scheduled", None),
    "sensitive-no": (b"---\nsensitive: no\n---\nx\n", "failed", r"`sensitive` must be true"),
    "schedule-no": (b"---\nschedule: no\n---\nx\n", "failed", r"could not understand 'no'"),
    "bom-crlf": (
        b"\xef\xbb\xbf---\r\nschedule: 1m\r\n---\r\nHello\r\n---\r\nsecond\r\n",
        "scheduled",
        None,
    ),
    "cr-only": (b"---\rcw: x\r---\rbody\r", "failed", r"bare CR"),
    "nul-front": (b"---\ncw: a\x00b\n---\nx\n", "failed", r"NUL byte"),
    "nul-body": (b"---\n---\nx\x00y\n", "failed", r"NUL byte"),
    "bom-only": (b"\xef\xbb\xbf", "failed", r"no text"),
    "empty": (b"", "failed", r"no text"),
    "dashes-only": (b"---\n", "failed", r"."),
    "broken-utf8": (b"---\ncw: \xff\xfe\n---\nx\n", "failed", r"not valid UTF-8"),
    "surrogate-utf8": (b"---\n---\n\xed\xa0\x80\n", "failed", r"not valid UTF-8"),
    "overlong-utf8": (b"---\n---\n\xc0\xaf\n", "failed", r"not valid UTF-8"),
    "over-1mib": (b"---\n---\n" + b"a" * (MIB + 1 - 8), "failed", r"over the 1048576-byte"),
    # Exactly at the limit is fine, but writing its time back would take it over: refused
    # at intake rather than left in scheduled/ as a file too big to read.
    "exactly-1mib": (_exactly(MIB, b"b", None), "failed", r"with its time written back"),
    "1mib-with-time": (_exactly(MIB, b"c", iso(time.time() - 5)), "sent", None),
    "media-dotdot": (
        b"---\nmedia: [../../etc/passwd]\n---\nx\n",
        "failed",
        r"has a `\.\.` part",
    ),
    "media-absolute": (b"---\nmedia: [/etc/passwd]\n---\nx\n", "failed", r"is absolute"),
    "media-tilde": (b"---\nmedia: ['~/.ssh/id_rsa']\n---\nx\n", "failed", r"starts with `~`"),
    "media-nul": (
        b'---\nmedia:\n  - path: "media/a\\0.png"\n---\nx\n',
        "failed",
        r"control character",
    ),
    "far-future": (
        b"---\nschedule: 9999-12-31T23:59:59-14:00\n---\nx\n",
        "failed",
        r"out of range",
    ),
    "far-past": (b"---\nschedule: 0001-01-01T00:00:00+14:00\n---\nx\n", "failed", r"range"),
    "huge-duration": (b"---\nschedule: 99999999999999999999h\n---\nx\n", "failed", r"too long"),
    "many-keys": (
        b"---\n" + b"".join(b"k%d: v\n" % n for n in range(20_000)) + b"---\nx\n",
        "failed",
        r"unknown key",
    ),
    "conflict-markers": (
        b"<<<<<<< HEAD\n---\ncw: a\n---\nx\n=======\ny\n>>>>>>> theirs\n",
        "failed",
        r"conflict markers",
    ),
    "copy-with-results": (
        b"---\nresults:\n  x: {id: '1'}\nattempts: 1\n---\nx\n",
        "failed",
        r"carries the `results`/`attempts`",
    ),
    "multi-document": (b"---\ncw: a\n...\n---\ncw: b\n---\nx\n", "sent", None),
}


def _world(base: Path) -> tuple[Sandbox, App, Sender, io.StringIO]:
    box = Sandbox(base)
    box.exec_account("x")
    box.write_config()
    app = App(load(box.config_path, env=box.env))
    app.spool.ensure()
    stream = io.StringIO()
    return box, app, Sender(app, Log(stream=stream)), stream


@dataclass
class Outcome:
    box: Sandbox
    result: PassResult
    log: str


def run_one_pass(base: Path, hostile: dict[str, bytes], valid: dict[str, str]) -> Outcome:
    """Put the files into new/ (valid ones by rename, as a writer would), run one pass."""
    box, _app, sender, stream = _world(base)
    for name, data in hostile.items():
        (box.spool / "new" / f"{name}.md").write_bytes(data)
    for name, body in valid.items():
        box.deliver("new", name, post_text(body, schedule=iso(time.time() - 60)))
    result = sender.run_pass()  # must not raise, whatever the files hold
    return Outcome(box, result, stream.getvalue())


def records(box: Sandbox) -> list[dict[str, Any]]:
    """What the exec account was run with. Split on "\\n" only: a post may hold U+0085 or
    U+2028, which str.splitlines() (and so Sandbox.records) would take for line ends."""
    try:
        text = box.record_path("x").read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n") if line]


def check_invariants(out: Outcome, hostile: dict[str, bytes], valid: dict[str, str]) -> None:
    box, result = out.box, out.result
    records_ = records(box)
    sent_ids = [r["stdin"]["id"] for r in records_]
    assert len(sent_ids) == len(set(sent_ids)), f"a post was sent twice: {sent_ids}"
    assert box.ids("new") == set(), "intake left a file in new/"
    for name, body in valid.items():
        assert box.where(name) == ["sent"], (name, out.log)
        mine = [r for r in records_ if r["stdin"]["id"] == name]
        assert len(mine) == 1 and mine[0]["stdin"]["parts"] == [body], (name, mine)
    for name, original in hostile.items():
        where = box.where(name)
        assert len(where) == 1, f"{name!r} is in {where}; log:\n{out.log}"
        path = box.spool / where[0] / f"{name}.md"
        now = path.read_bytes()
        if where == ["failed"]:
            assert now == original, f"{name!r} was altered on its way to failed/"
            reason = box.spool.joinpath("failed", f"{name}.error").read_text(encoding="utf-8")
            assert reason.strip(), f"{name!r} was refused without a reason"
            assert name in result.failed
            continue
        post = parse(now)
        before = parse(original)
        assert post.parts == before.parts and post.media == before.media
        assert post.cw == before.cw and post.platforms == before.platforms
        if where == ["scheduled"]:
            if before.schedule is not None and has_offset(before.schedule):
                assert now == original, f"{name!r} had an absolute time yet was rewritten"
            else:
                assert post.schedule is not None and has_offset(post.schedule)
                assert now == with_schedule(original, post.schedule)
        else:
            assert where == ["sent"], where
            assert sent_ids.count(name) == 1


@pytest.mark.slow
def test_named_attacks_next_to_valid_posts(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    hostile = {name: data for name, (data, _, _) in NAMED.items()}
    valid = {"valid-1": "first valid post", "valid-2": "second valid post ünïcode"}
    cwd = os.getcwd()
    os.chdir(tmp_path)  # where `touch PWNED` would land, were the tag ever obeyed
    try:
        out = run_one_pass(tmp_path / "w", hostile, valid)
    finally:
        os.chdir(cwd)
    check_invariants(out, hostile, valid)
    assert not marker.exists()
    for name, (_, state, reason) in NAMED.items():
        assert out.box.where(name) == [state], (name, out.log)
        if reason is not None:
            text = (out.box.spool / "failed" / f"{name}.error").read_text(encoding="utf-8")
            assert re.search(reason, text), (name, text)
    # The times were read as text: 9:30 is the next half past nine, not 570 seconds.
    sexa = out.box.post("scheduled", "sexagesimal")
    assert sexa.schedule is not None and re.search(r"T09:30:00\+00:00$", sexa.schedule)
    bom = (out.box.spool / "scheduled" / "bom-crlf.md").read_bytes()
    assert bom.startswith(b"\xef\xbb\xbf---\r\n") and b"\r\nHello\r\n---\r\nsecond\r\n" in bom
    assert parse(bom).parts == ("Hello", "second")
    big = [r for r in records(out.box) if r["stdin"]["id"] == "1mib-with-time"]
    assert big[0]["stdin"]["parts"] == [
        "c" * (MIB - len("---\nschedule: 2026-11-28T10:10:10Z\n---\n\n"))
    ]


# -- generated input -------------------------------------------------------------------------


def _broken_utf8(text: str, junk: bytes, at: int) -> bytes:
    data = text.encode()
    at = at % (len(data) + 1)
    return data[:at] + junk + data[at:]


def _deep(kind: str, depth: int) -> bytes:
    opener, closer = {"[": (b"[", b"]"), "{": (b"{a: ", b"}"), "-": (b"- ", b"")}[kind]
    return b"---\ncw: " + opener * depth + b"x" + closer * depth + b"\n---\nbody\n"


def _huge(size: int, fill: bytes) -> bytes:
    head = b"---\n---\n"
    return head + (fill * size)[: max(0, size - len(head))]


def _iso(dt: datetime, minutes: int) -> str:
    return dt.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()


TIMES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "9:30",
            "no",
            "yes",
            "~",
            "null",
            "0",
            "-1",
            "1e400",
            "now",
            "2h",
            "-2h",
            "+0s",
            "random:30s-1m",
            "random:1s-2s",
            "tomorrow 9am",
            "next friday 14:00",
            "2026-02-30T09:00:00Z",
            "2026-03-29T02:30:00",
            "9999-12-31T23:59:59",
            "0001-01-01",
            "1969-12-31T23:59:59Z",
            "'@1700000000'",
            "[2026, 12]",
            "{a: 1}",
            "!!timestamp 2026-12-01",
        ]
    ),
    st.builds(_iso, st.datetimes(), st.integers(-1439, 1439)),
    st.integers().map(str),
)

VALID_FRONT = "---\ncw: a warning\nlanguage: en\n---\nsome body text\n"

HOSTILE = st.one_of(
    st.binary(max_size=300),
    YAMLISH_FILES,
    st.builds(
        _broken_utf8,
        st.sampled_from([VALID_FRONT, "---\n---\nbody\n", "no frontmatter\n"]),
        st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00"]),
        st.integers(0, 100),
    ),
    st.builds(lambda t: f"---\nschedule: {t}\n---\nbody\n".encode("utf-8", "surrogatepass"), TIMES),
    st.builds(_deep, st.sampled_from(["[", "{", "-"]), st.integers(1, 12_000)),
    st.builds(
        _huge,
        st.sampled_from([MIB - 1, MIB, MIB + 1, 3 * MIB]),
        st.sampled_from([b"a", b"\n", b"---\n", b"\xff"]),
    ),
    st.sampled_from([data for data, _, _ in NAMED.values()]),
)

NAMES = st.text(
    st.characters(
        codec="utf-8", exclude_characters="/\x00", exclude_categories=["Cs"], min_codepoint=0x20
    ),
    min_size=1,
    max_size=20,
).filter(lambda n: not n.startswith(".") and not n.endswith(("~", ".tmp", "#")) and "#" not in n)

_examples = itertools.count()


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.dictionaries(NAMES, HOSTILE, min_size=1, max_size=4),
    st.lists(
        st.text(
            st.characters(codec="ascii", min_codepoint=0x61, max_codepoint=0x7A),
            min_size=1,
            max_size=30,
        ),
        min_size=1,
        max_size=2,
    ),
)
def test_generated_files_never_crash_alter_or_lose_anything(
    tmp_path: Path, files: dict[str, bytes], bodies: list[str]
) -> None:
    hostile = {f"h{n}-{name}": data for n, name in enumerate(files) for data in [files[name]]}
    hostile = {n: d for n, d in hostile.items() if len(os.fsencode(n)) < 200}
    valid = {f"valid-{n}": body for n, body in enumerate(bodies)}
    out = run_one_pass(tmp_path / f"ex{next(_examples)}", hostile, valid)
    check_invariants(out, hostile, valid)


# -- the long run's slice ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_slice_of_the_long_hostile_run(tmp_path: Path) -> None:
    """300 files of tests/robustness/hostile_run.py (the long run: see the README) through
    `check`, `check PATH...` and `send --once` as subprocesses: no crash, no altered byte,
    nothing lost, and check and the sender agree on every file."""
    seed = int(os.environ.get("PLURSPOOL_HOSTILE_SEED", "0")) or int.from_bytes(os.urandom(3))
    figures = hostile_run.run(tmp_path, files=300, seed=seed, batch=300)
    print(f"\nseed {seed}\n{figures.text()}")
    assert figures.cases == 300
    assert figures.crashes == [], f"seed {seed}"
    assert figures.altered == [], f"seed {seed}"
    assert figures.lost == [], f"seed {seed}"
    assert figures.disagreements == [], f"seed {seed}"
    assert figures.ended["failed"] > 0 and figures.ended["sent"] > 0


# -- the real daemon -------------------------------------------------------------------------


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path)
    try:
        yield sandbox
    finally:
        sandbox.cleanup()


@pytest.mark.slow
@pytest.mark.realtime
def test_the_daemon_survives_a_batch_of_attacks_and_sends_the_valid_posts(box: Sandbox) -> None:
    box.exec_account("x")
    box.write_config()
    d = box.start()
    d.wait_event("started", timeout=30)
    hostile = {name: data for name, (data, state, _) in NAMED.items() if state == "failed"}
    valid: dict[str, str] = {}
    for n, (name, data) in enumerate(hostile.items()):
        if n % 2:
            (box.spool / "new" / f"{name}.md").write_bytes(data)  # written in place
        else:
            tmp = box.spool / "tmp" / f"{name}.md"
            tmp.write_bytes(data)
            os.rename(tmp, box.spool / "new" / f"{name}.md")
        valid[f"ok-{n}"] = f"valid post number {n}"
        box.deliver("new", f"ok-{n}", post_text(valid[f"ok-{n}"]))
    # Invalid files edited into scheduled/ by hand are reported, never sent, never moved.
    in_place = {"sched-broken": b"---\nschedule: [\n---\nx\n", "sched-nul": b"---\n---\n\x00\n"}
    for name, data in in_place.items():
        (box.spool / "scheduled" / f"{name}.md").write_bytes(data)
    d.until(
        lambda: (
            all(box.where(n) == ["failed"] for n in hostile)
            and all(box.where(n) == ["sent"] for n in valid)
        ),
        60,
        "every attack in failed/ and every valid post in sent/",
    )
    for name in in_place:
        d.wait_event("invalid", f"id={name}")
    assert d.proc.poll() is None, "the daemon died"
    for name, data in hostile.items():
        assert (box.spool / "failed" / f"{name}.md").read_bytes() == data, name
        assert (box.spool / "failed" / f"{name}.error").read_text(encoding="utf-8").strip()
        d.wait_event("invalid", f"id={name}")
    for name, data in in_place.items():
        assert (box.spool / "scheduled" / f"{name}.md").read_bytes() == data
    sent = records(box)
    assert sorted(r["stdin"]["id"] for r in sent) == sorted(valid)
    for r in sent:
        assert r["stdin"]["parts"] == [valid[r["stdin"]["id"]]]
    assert d.stop() == 0
    assert "Traceback" not in d.text()
    wait_for(lambda: d.proc.returncode == 0, 5, "exit status")


@pytest.mark.slow
def test_file_names_that_are_not_utf8_are_refused_with_a_reason(tmp_path: Path) -> None:
    """A name the file system holds as bytes (Latin-1 "café.md"): listed, checked and failed
    with a clear reason, never a traceback; its bytes stay as they were."""
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.write_config()
    spool = os.fsencode(box.spool)
    body = b"---\nschedule: 2030-01-01T00:00:00Z\n---\nhi\n"
    with open(spool + b"/scheduled/caf\xe9.md", "wb") as f:
        f.write(body)
    with open(spool + b"/new/n\xff.md", "wb") as f:
        f.write(b"hello\n")
    why = "its name is not valid UTF-8"
    for args in (["list"], ["list", "--state", "all"], ["show", "caf"]):
        # Text output writes the name's own bytes, as ls does: read it as bytes.
        raw = subprocess.run(
            [str(BIN / "plurspool"), *args], env=box.env, capture_output=True, timeout=60
        )
        assert b"Traceback" not in raw.stderr and raw.returncode in (0, 1), raw.stderr
        assert why.encode() in raw.stdout + raw.stderr, (args, raw)
    listed = box.cli("list", "--state", "all", "--json")
    assert listed.code == 0 and "Traceback" not in listed.err, listed.err
    views = {v["path"]: v for v in listed.json()}  # \udcXX escapes: still JSON
    assert set(views) == {"scheduled/caf\udce9.md", "new/n\udcff.md"}
    assert all(why in v["error"] for v in views.values())
    checked = subprocess.run(
        [str(BIN / "plurspool"), "check"], env=box.env, capture_output=True, timeout=60
    )
    assert checked.returncode == 3 and checked.stdout.count(why.encode()) == 2, checked
    sent = subprocess.run(
        [str(BIN / "plurspool"), "send", "--once"], env=box.env, capture_output=True, timeout=60
    )
    assert sent.returncode == 0 and b"Traceback" not in sent.stderr, sent.stderr
    assert sorted(os.listdir(spool + b"/failed")) == [b"n\xff.error", b"n\xff.md"]
    assert Path(os.fsdecode(spool + b"/failed/n\xff.md")).read_bytes() == b"hello\n"
    reason = Path(os.fsdecode(spool + b"/failed/n\xff.error")).read_text(errors="replace")
    assert why in reason
    assert Path(os.fsdecode(spool + b"/scheduled/caf\xe9.md")).read_bytes() == body  # kept
    assert box.records("x") == []
