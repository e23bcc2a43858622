"""The long hostile-input run: generated hostile files through `check` and intake.

    python -m tests.robustness.hostile_run --files 10000 [--seed N] [--batch 500] [--keep DIR]

Makes the files from a seed (the same seed, the same files): broken YAML, wrong types, unknown
and duplicate keys, huge and odd Unicode, NULs, BOM/CRLF mixes, conflict markers, bad times,
hostile `results`, deep nesting, anchors, aliases and tags, binary garbage, byte-level mutations
of valid posts, files at and over the size limit, odd names (Unicode, spaces, newlines, names
that are not UTF-8, editors' and sync tools' names), symlinks, hard links, FIFOs and directories
named *.md, IDs already used in another state, copies of sent posts, and late copies in
scheduled/ of posts already finished. Most go into new/, some into scheduled/ (as a git checkout
or a hand edit puts them) and drafts/; valid posts of every kind go with them.

Each batch gets a fresh sandbox with an outbox account, and real subprocesses: `plurspool check
--json` over the spool, `plurspool check --json PATH...` on the files by their paths in the spool
(as the pre-commit hook runs it), then `plurspool send --once --log-format json`. It counts:

- cases: the files made;
- crashes: a traceback, an exit status outside the contract (check: 0 or 3; send --once: 0),
  a file check lists twice or leaves out;
- altered: a file the sender refused that is not byte for byte what was dropped in (a link: the
  same link to the same bytes), a file it took that changed anywhere but where plurspool writes
  (its `schedule`, its results), a file it leaves alone (drafts/, not a post) that changed;
- lost: a file that ends nowhere, in two places, or still in new/ undecided; a post sent twice,
  a late copy sent, the finished post a clash or a late copy names changed or gone;
- disagreements: check and the sender judging a file differently (a problem in check exactly
  when the sender refuses it: into failed/ at intake, or reported invalid, or failed/ as a late
  copy, in scheduled/; a draft's time that has passed is never a problem), or check by path and
  check of the spool disagreeing. One rule is check's own and counted apart: a media file that
  is not there, which intake leaves to the send (a platform that uploads fails on it).

It prints the figures and exits 1 unless crashes, altered, lost and disagreements are all 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plurspool.errors import PostError
from plurspool.post import parse, with_record, with_schedule
from plurspool.spool import DEFAULT_MAX_SIZE, classify
from plurspool.when import has_offset
from tests.daemon_helpers import Sandbox, iso, toml_str
from tests.helpers import BIN, png

MIB = DEFAULT_MAX_SIZE
HOUR = 3600.0
ACCOUNT = "out"


@dataclass
class Case:
    """One generated file: what it holds, where it goes and what it is."""

    n: int
    kind: str  # the generator that made it (for the figures)
    name: bytes  # the file name, as the file system holds it
    data: bytes
    state: str = "new"
    shape: str = "file"  # file | symlink | hardlink | fifo | dir
    other: tuple[str, bytes] | None = None  # a file with the same ID in another state

    @property
    def id(self) -> bytes:
        return self.name[:-3]

    @property
    def post_named(self) -> bool:
        return self.shape not in ("fifo", "dir") and classify(os.fsdecode(self.name)) != "ignore"


@dataclass
class Figures:
    """What the run did and found."""

    cases: int = 0
    batches: int = 0
    placed: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    ended: Counter[str] = field(default_factory=Counter)
    checked: Counter[str] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.crashes or self.altered or self.lost or self.disagreements)

    def text(self) -> str:
        def counts(c: Counter[str]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(c.items()))

        lines = [
            f"cases: {self.cases} in {self.batches} batches ({counts(self.placed)})",
            f"generators: {counts(self.kinds)}",
            f"ended: {counts(self.ended)}",
            f"check: {counts(self.checked)}",
            f"crashes: {len(self.crashes)}",
            f"altered: {len(self.altered)}",
            f"lost: {len(self.lost)}",
            f"disagreements: {len(self.disagreements)}",
            f"time: {self.seconds:.0f}s",
        ]
        for what, items in (
            ("CRASH", self.crashes),
            ("ALTERED", self.altered),
            ("LOST", self.lost),
            ("DISAGREEMENT", self.disagreements),
        ):
            lines += [f"{what}: {x}"[:600] for x in items[:20]]
        return "\n".join(lines)


# -- the generator ----------------------------------------------------------------------------

ODD = [
    "\u202e",  # right-to-left override
    "\u200b",  # zero width space
    "\u200d",  # zero width joiner
    "\u2028",  # line separator
    "\u2029",
    "\u0085",  # next line
    "\ufeff",  # BOM in the middle
    "\u0301",  # combining acute
    "\ufffd",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",  # a family: one grapheme
    "\U0001f1e9\U0001f1ea",  # a flag
    "\ue000",  # private use
    "\U0010fffd",
    "日本語",
    "ﷺ",
    "\x7f",
    "\x1b[31m",
    "\t",
    "\r",
    "\x0b",
    "\x0c",
]
KEYS = [
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
]
TYPOS = ["platform", "shedule", "Schedule", "visiblity", "lang", "tags", "cw ", "médias", "µ"]
TIMES_OK = ["now", "2h", "in 3 days", "tomorrow 9am", "next friday 14:00", "random:1m-2m", "9:30"]
TIMES_BAD = [
    "next blursday",
    "no",
    "~",
    "1e400",
    "-2h",
    "99999999999999999999h",
    "2026-02-30T09:00:00Z",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "'@1700000000'",
    "[2026, 12]",
    "{a: 1}",
    "!!timestamp 2026-12-01",
    "random:2m-1m",
    "yesterday",
    "2020-01-01T00:00:00Z",
]
TOKENS = [
    ": ",
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "!!str ",
    "!x ",
    "|",
    ">",
    "'",
    '"',
    "#",
    "\t",
    "? ",
    "...",
    "---",
    "%YAML 1.1",
    "\n",
    "\n  ",
    "\n    ",
    "\\",
    "@",
    "`",
    "%",
]


class Generator:
    """Hostile files from a seeded random source."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.kinds: list[tuple[str, Callable[[Case], None], int]] = [
            ("valid", self.valid, 14),
            ("broken-yaml", self.broken_yaml, 9),
            ("wrong-types", self.wrong_types, 7),
            ("unknown-keys", self.unknown_keys, 4),
            ("duplicate-keys", self.duplicate_keys, 3),
            ("odd-unicode", self.odd_unicode, 6),
            ("nul", self.nul, 3),
            ("bom-crlf", self.bom_crlf, 5),
            ("conflict-markers", self.conflict_markers, 3),
            ("bad-times", self.bad_times, 6),
            ("results", self.results, 4),
            ("deep", self.deep, 3),
            ("anchors-tags", self.anchors_tags, 3),
            ("garbage", self.garbage, 5),
            ("mutated", self.mutated, 9),
            ("size", self.size, 2),
            ("odd-names", self.odd_names, 5),
            ("links-fifos", self.links_fifos, 4),
            ("id-clash", self.id_clash, 3),
            ("late-copy", self.late_copy, 2),
        ]

    def case(self, n: int) -> Case:
        rng = self.rng
        name, make, _ = rng.choices(self.kinds, weights=[w for _, _, w in self.kinds])[0]
        case = Case(n, name, f"h{n}.md".encode(), b"")
        case.state = rng.choices(["new", "scheduled", "drafts"], weights=[80, 14, 6])[0]
        make(case)
        return case

    # -- pieces --

    def text(self, size: int = 40) -> str:
        rng = self.rng
        out = []
        for _ in range(rng.randrange(1, size)):
            r = rng.random()
            if r < 0.6:
                out.append(rng.choice("abcdefghijklmnopqrstuvwxyz    .,!?"))
            elif r < 0.85:
                out.append(rng.choice(ODD))
            else:
                out.append(chr(rng.randrange(0x20, 0x3000)))
        return "".join(out)

    def when(self) -> str | None:
        rng = self.rng
        r = rng.random()
        now = time.time()
        if r < 0.2:
            return None
        if r < 0.45:
            return rng.choice(TIMES_OK)
        if r < 0.6:
            return iso(now + rng.choice([1, 1, 3600, 86400 * 30]) * rng.random() * 10 + 600)
        if r < 0.75:
            return iso(now - rng.choice([30, 300, 2 * HOUR]))  # late, within max_lateness
        if r < 0.85:
            return iso(now - rng.choice([7 * HOUR, 400 * 86400]))  # later than that
        return rng.choice(TIMES_BAD)

    def front(self, fields: dict[str, str]) -> str:
        return "".join(f"{k}: {v}\n" for k, v in fields.items())

    def post(self, body: str | None = None, **fields: str) -> bytes:
        front = self.front(fields)
        body = self.text() if body is None else body
        return f"---\n{front}---\n{body}\n".encode("utf-8", "surrogatepass")

    def valid_fields(self) -> dict[str, str]:
        rng = self.rng
        fields: dict[str, str] = {}
        when = self.when()
        if when is not None and when not in TIMES_BAD:
            fields["schedule"] = when
        if rng.random() < 0.3:
            fields["platforms"] = f"[{ACCOUNT}]"
        if rng.random() < 0.2:
            fields["cw"] = json.dumps(self.text(10))
        if rng.random() < 0.2:
            fields["language"] = rng.choice(["en", "de", "pt-BR", "zh-Hant"])
        if rng.random() < 0.2:
            fields["visibility"] = rng.choice(["public", "unlisted", "followers", "direct"])
        if rng.random() < 0.1:
            fields["sensitive"] = rng.choice(["true", "false"])
        if rng.random() < 0.1:
            fields["media"] = "[media/cat.png]"
        if rng.random() < 0.1:
            fields["overrides"] = f"{{{ACCOUNT}: {{text: {json.dumps(self.text(10))}}}}}"
        return fields

    # -- the generators --

    def valid(self, case: Case) -> None:
        rng = self.rng
        parts = [self.text(80) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
        body = "\n---\n".join(p if p.strip(" \t\r") else "x" for p in parts)
        if rng.random() < 0.15:
            case.data = body.encode() + b"\n"  # no frontmatter at all
        else:
            case.data = self.post(body, **self.valid_fields())

    def broken_yaml(self, case: Case) -> None:
        rng = self.rng
        lines = []
        for _ in range(rng.randrange(1, 8)):
            key = rng.choice([*KEYS, *TYPOS, "", "a b", "-"])
            value = "".join(rng.choice([*TOKENS, "x", "1", "y "]) for _ in range(rng.randrange(6)))
            indent = rng.choice(["", "", "  ", "\t", " \t"])
            lines.append(f"{indent}{key}{rng.choice([': ', ':', ' : ', ''])}{value}")
        front = "\n".join(lines)
        opener = rng.choice(["---\n", "---\n", "--- \n", "---\t\n", "---x\n"])
        closer = rng.choice(["\n---\n", "\n---\n", "\n", "\n--- \n", "\n...\n"])
        case.data = (opener + front + closer + self.text()).encode("utf-8", "surrogatepass")

    def wrong_types(self, case: Case) -> None:
        rng = self.rng
        key, value = rng.choice(
            [
                ("platforms", "{a: b}"),
                ("platforms", "a, b"),
                ("platforms", "[[x]]"),
                ("platforms", "[]"),
                ("platforms", "[nowhere]"),
                ("platforms", f"[{ACCOUNT}, {ACCOUNT}]"),
                ("sensitive", "maybe"),
                ("sensitive", "'true'"),
                ("sensitive", "[true]"),
                ("attempts", "-1"),
                ("attempts", "1.5"),
                ("attempts", "9999999999999"),
                ("media", "3"),
                ("media", "{path: x}"),
                ("media", "[{alt: only}]"),
                ("media", "[../../etc/passwd]"),
                ("media", "[/etc/passwd]"),
                ("media", "['~/.ssh/id_rsa']"),
                ("media", '["media/a\\0.png"]'),
                ("cw", "[a, b]"),
                ("cw", "{a: b}"),
                ("language", "english"),
                ("language", "[en]"),
                ("visibility", "secret"),
                ("overrides", "x"),
                ("overrides", "{nowhere: {text: y}}"),
                ("overrides", f"{{{ACCOUNT}: {{colour: red}}}}"),
                ("overrides", f"{{{ACCOUNT}: {{text: ''}}}}"),
                ("schedule", "[1, 2]"),
                ("schedule", "{at: 9}"),
                ("schedule", "|\n  2h\n  3h"),
                ("results", "[x]"),
            ]
        )
        fields = self.valid_fields()
        fields[key] = value
        case.data = self.post(**fields)

    def unknown_keys(self, case: Case) -> None:
        fields = self.valid_fields()
        fields[self.rng.choice(TYPOS)] = "x"
        case.data = self.post(**fields)

    def duplicate_keys(self, case: Case) -> None:
        key = self.rng.choice(KEYS[:6])
        value = {"platforms": f"[{ACCOUNT}]", "sensitive": "true", "schedule": "2h"}.get(key, "x")
        case.data = f"---\n{key}: {value}\ncw: y\n{key}: {value}\n---\nbody\n".encode()

    def odd_unicode(self, case: Case) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.3:  # surrogates: not UTF-8 at all
            case.data = self.post(self.text() + "\ud800" + self.text())
        elif r < 0.5:  # very long
            case.data = self.post(rng.choice(ODD) * rng.randrange(1000, 60_000))
        elif r < 0.7:
            case.data = self.post(cw=json.dumps(self.text(200)), language="en")
        else:
            case.data = self.post(self.text(400), **self.valid_fields())

    def nul(self, case: Case) -> None:
        data = self.post(**self.valid_fields())
        at = self.rng.randrange(len(data) + 1)
        case.data = data[:at] + b"\0" + data[at:]

    def bom_crlf(self, case: Case) -> None:
        rng = self.rng
        data = self.post(self.text() + "\n---\n" + self.text(), **self.valid_fields())
        r = rng.random()
        if r < 0.3:
            data = data.replace(b"\n", b"\r\n")
        elif r < 0.5:
            head, _, body = data.partition(b"---\n")
            data = (head + b"---\n" + body).replace(b"\n", b"\r\n", rng.randrange(1, 4))
        elif r < 0.65:
            data = data.replace(b"\n", b"\r")
        elif r < 0.8:
            data = data.replace(b"\n", rng.choice([b"\n\r", b"\r\r\n"]))
        if rng.random() < 0.6:
            data = b"\xef\xbb\xbf" * rng.choice([1, 1, 2]) + data
        if rng.random() < 0.1:
            data = b"\xff\xfe" + data.decode("utf-8", "replace").encode("utf-16-le")
        case.data = data

    def conflict_markers(self, case: Case) -> None:
        rng = self.rng
        ours, theirs = self.post(**self.valid_fields()), self.post(**self.valid_fields())
        where = rng.choice(["whole", "front", "body"])
        if where == "whole":
            case.data = b"<<<<<<< HEAD\n" + ours + b"=======\n" + theirs + b">>>>>>> main\n"
        elif where == "front":
            case.data = (
                b"---\n<<<<<<< HEAD\nschedule: 2h\n=======\nschedule: 3h\n>>>>>>> x\n---\nbody\n"
            )
        else:
            case.data = ours + b"<<<<<<<\nmine\n=======\ntheirs\n>>>>>>>\n"

    def bad_times(self, case: Case) -> None:
        rng = self.rng
        t = rng.choice([*TIMES_BAD, self.text(20), str(rng.randrange(-(10**12), 10**12)), "", "  "])
        case.data = self.post(schedule=t)

    def results(self, case: Case) -> None:
        rng = self.rng
        value = rng.choice(
            [
                f"{{{ACCOUNT}: {{id: '1', attempts: 1}}}}",
                f"{{{ACCOUNT}: {{error: boom}}}}",
                "{x: {id: 1, url: 2, error: 3, at: 4, attempts: 5}}",
                "{x: [1]}",
                "{x: {nope: 1}}",
                "{}",
                "~",
            ]
        )
        fields = self.valid_fields()
        fields["results"] = value
        if rng.random() < 0.5:
            fields["attempts"] = rng.choice(["0", "1", "3"])
        case.data = self.post(**fields)

    def deep(self, case: Case) -> None:
        rng = self.rng
        depth = rng.choice([7, 8, 9, 100, 5000, 12_000])
        opener, closer = rng.choice([(b"[", b"]"), (b"{a: ", b"}"), (b"- ", b"")])
        if rng.random() < 0.5:
            case.data = b"---\ncw: " + opener * depth + b"x" + closer * depth + b"\n---\nbody\n"
        else:
            # Block nesting costs its depth squared in bytes: 700 levels is half a MiB.
            lines = b"".join(b"  " * d + b"k%d:\n" % d for d in range(1, min(depth, 700)))
            case.data = b"---\nx:\n" + lines + b"---\nbody\n"

    def anchors_tags(self, case: Case) -> None:
        rng = self.rng
        front = rng.choice(
            [
                "cw: &a x\nlanguage: *a\n",
                "cw: !!python/object/apply:os.system ['touch PWNED']\n",
                "!!python/object/new:os.system [echo]: 1\n",
                "schedule: !!python/name:os.system\n",
                "cw: !!binary aGVsbG8=\n",
                "cw: !local x\n",
                "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
                + "".join(f"a{n}: &a{n} [{','.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, 9)),
                "<<: {cw: merged}\n",
                "? cw\n: x\n",
            ]
        )
        case.data = f"---\n{front}---\nbody\n".encode()

    def garbage(self, case: Case) -> None:
        rng = self.rng
        size = rng.choice([0, 1, 3, 50, 300, 4000])
        raw = bytes(rng.randrange(256) for _ in range(size))
        case.data = rng.choice([b"", b"---\n", b"---\n---\n", b"\xef\xbb\xbf"]) + raw

    def mutated(self, case: Case) -> None:
        rng = self.rng
        data = bytearray(self.post(self.text(60), **self.valid_fields()))
        for _ in range(rng.randrange(1, 6)):
            at = rng.randrange(len(data) + 1)
            op = rng.randrange(6)
            if op == 0 and at < len(data):
                data[at] = rng.randrange(256)
            elif op == 1:
                data[at:at] = bytes([rng.randrange(256)])
            elif op == 2 and at < len(data):
                del data[at]
            elif op == 3:
                data[at:at] = rng.choice([b"\n---\n", b": ", b"\t", b"\n\t", b"#", b"'", b"\r"])
            elif op == 4:
                data[at:at] = data[max(0, at - 20) : at]
            else:
                del data[at : at + rng.randrange(1, 30)]
        case.data = bytes(data)

    def size(self, case: Case) -> None:
        rng = self.rng
        total = rng.choice([MIB - 1, MIB, MIB + 1, 3 * MIB])
        with_time = rng.random() < 0.5
        head = b"---\n" + (f"schedule: {iso(time.time() - 5)}\n".encode() if with_time else b"")
        head += b"---\n"
        fill = rng.choice([b"a", b"\n", b"---\n", "é".encode(), b"\xff"])
        case.data = head + (fill * total)[: max(0, total - len(head))]

    def odd_names(self, case: Case) -> None:
        rng = self.rng
        n = case.n
        name = rng.choice(
            [
                f"caf\u00e9 {n}.md".encode(),
                f"caf\u00e9 {n}.md".encode("latin-1"),  # not UTF-8
                f"h{n}\xff.md".encode("latin-1"),
                f"a\nb{n}.md".encode(),
                f"-{n}.md".encode(),
                f"--{n}=x.md".encode(),
                f"{n} (conflicted copy 2026-11-28).md".encode(),
                f"{n}.sync-conflict-20261128-101010-ABCDEF.md".encode(),
                f"{n}.orig.md".encode(),
                f".{n}.md".encode(),
                f"{n}.md~".encode(),
                f"#{n}.md#".encode(),
                f"{n}.md.swp".encode(),
                f"{n}.txt".encode(),
                f"{n}.MD".encode(),
                f"{n}.tmp".encode(),
                ("é" * 100 + f"{n}.md").encode(),
                ("\U0001f600" * 55 + f"{n}.md").encode(),
                f"{n}\u202egnp.md".encode(),
                f"{n}*?[].md".encode(),
                f"{n}\\.md".encode(),
                f"{n}..md".encode(),
                f" {n} .md".encode(),
            ]
        )
        case.name = name
        self.valid(case)

    def links_fifos(self, case: Case) -> None:
        case.shape = self.rng.choice(["symlink", "symlink", "hardlink", "fifo", "dir"])
        self.valid(case)

    def id_clash(self, case: Case) -> None:
        self.valid(case)
        case.state = "new"
        other = self.rng.choice(["drafts", "scheduled", "sent", "failed"])
        future = iso(time.time() + 30 * 86400)
        case.other = (other, self.post("the first of the name", schedule=future))

    def late_copy(self, case: Case) -> None:
        rng = self.rng
        case.state = "scheduled"
        due = iso(time.time() - rng.choice([60, 2 * HOUR, 400 * 86400, -86400]))
        case.data = self.post("my copy, kept in a merge", schedule=due)
        finished = rng.choice(["sent", "failed"])
        done = f"{{{ACCOUNT}: {{id: '41', attempts: 1}}}}"
        case.other = (finished, self.post("the one sent", schedule=due, results=done, attempts="1"))


# -- one batch ----------------------------------------------------------------------------------


def _sandbox(base: Path) -> Sandbox:
    box = Sandbox(base)
    box.accounts[ACCOUNT] = f'platform = "outbox"\npath = {toml_str(str(base / "outbox.jsonl"))}\n'
    box.default_platforms.append(ACCOUNT)
    box.write_config()
    (box.spool / "media").mkdir()
    (box.spool / "media" / "cat.png").write_bytes(png())
    (base / "outside").mkdir()
    return box


def _place(box: Sandbox, case: Case) -> None:
    spool = os.fsencode(box.spool)
    path = spool + b"/" + case.state.encode() + b"/" + case.name
    outside = os.fsencode(box.base / "outside") + b"/%d" % case.n
    if case.other is not None:
        state, data = case.other
        with open(spool + b"/" + state.encode() + b"/" + case.id + b".md", "wb") as f:
            f.write(data)
    if case.shape == "file":
        if case.n % 2:  # written in place
            with open(path, "wb") as f:
                f.write(case.data)
        else:  # as a Maildir writer does
            tmp = spool + b"/tmp/%d" % case.n
            with open(tmp, "wb") as f:
                f.write(case.data)
            os.rename(tmp, path)
    elif case.shape == "symlink":
        target = outside
        if case.n % 3 == 0:
            target = b"../drafts/target-%d" % case.n  # a post inside the spool
            outside = spool + b"/drafts/target-%d" % case.n
        if case.n % 5 != 1:  # else dangling
            with open(outside, "wb") as f:
                f.write(case.data)
        os.symlink(target, path)
    elif case.shape == "hardlink":
        with open(outside, "wb") as f:
            f.write(case.data)
        os.link(outside, path)
    elif case.shape == "fifo":
        os.mkfifo(path)
    else:
        os.mkdir(path)


def _listing(box: Sandbox) -> dict[str, set[bytes]]:
    spool = os.fsencode(box.spool)
    return {s: set(os.listdir(spool + b"/" + s.encode())) for s in ("new", *STATES_AFTER)}


STATES_AFTER = ("drafts", "scheduled", "sent", "failed")


def _cli(
    box: Sandbox, args: list[str], cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(BIN / "plurspool"), *args],
        env=box.env,
        cwd=cwd,
        capture_output=True,
        timeout=1800,
        check=False,
    )


def _reports(
    proc: subprocess.CompletedProcess[bytes], what: str, fig: Figures
) -> list[dict[str, Any]]:
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode not in (0, 3) or "Traceback" in err:
        fig.crashes.append(f"{what}: exit {proc.returncode}: {err[-400:]}")
        return []
    try:
        reports: list[dict[str, Any]] = json.loads(proc.stdout)
    except ValueError as exc:
        fig.crashes.append(f"{what}: not JSON ({exc}): {proc.stdout[:300]!r}")
        return []
    bad = any(r["problems"] for r in reports)
    if bad != (proc.returncode == 3):
        fig.crashes.append(f"{what}: exit {proc.returncode} with problems={bad}")
    return reports


def _events(stderr: bytes) -> dict[bytes, list[dict[str, Any]]]:
    """send --once's JSON log events by the ID they name (as file-name bytes)."""
    out: dict[bytes, list[dict[str, Any]]] = {}
    for line in stderr.decode("utf-8", "surrogateescape").split("\n"):
        if line.startswith("{"):
            rec = json.loads(line)
            if "id" in rec:
                out.setdefault(os.fsencode(rec["id"]), []).append(rec)
    return out


def _outbox(box: Sandbox) -> Counter[bytes]:
    try:
        text = (box.base / "outbox.jsonl").read_text(encoding="utf-8")
    except FileNotFoundError:
        return Counter()
    return Counter(os.fsencode(json.loads(line)["id"]) for line in text.split("\n") if line)


_RENAMED = re.compile(rb"\.[0-9a-z]{8}\.md\Z")
_MISSING = re.compile(r"^media file .* not found under ")


def _expected_kept(case: Case, now: bytes) -> bytes | None:
    """What a post the sender took may look like now: its input with only the time written
    in (from new/) and its results recorded; None if it is no post at all."""
    try:
        post = parse(now)
        before = parse(case.data)
    except PostError:
        return None
    base = case.data
    if case.state == "new" and (before.schedule is None or not has_offset(before.schedule)):
        if post.schedule is None:
            return None
        base = with_schedule(case.data, post.schedule)
    if post.results or post.attempts:
        base = with_record(base, post.results, post.attempts)
    return base


def _link_intact(box: Sandbox, case: Case, path: bytes) -> bool:
    """A symlink or hard link refused into failed/: the same link, to the same bytes."""
    st = os.lstat(path)
    outside = os.fsencode(box.base / "outside") + b"/%d" % case.n
    if case.shape == "symlink":
        if not stat.S_ISLNK(st.st_mode):
            return False
        target = os.readlink(path)
        if case.n % 3 == 0:
            outside = os.fsencode(box.spool) + b"/drafts/target-%d" % case.n
            if target != b"../drafts/target-%d" % case.n:
                return False
        elif target != outside:
            return False
        if case.n % 5 == 1:
            return not os.path.lexists(outside)
        with open(outside, "rb") as f:
            return f.read() == case.data
    same = os.stat(outside)
    with open(path, "rb") as f:
        return same.st_ino == st.st_ino and f.read() == case.data


def _digitless(problems: list[str]) -> list[str]:
    """Problems without their figures: "was 2h03m ago" differs between two runs of check."""
    return [re.sub(r"[0-9]", "0", p) for p in problems]


def run_batch(base: Path, cases: list[Case], fig: Figures) -> None:
    box = _sandbox(base)
    spool = os.fsencode(os.path.realpath(box.spool))
    for case in cases:
        _place(box, case)
        fig.placed[case.state] += 1
        fig.kinds[case.kind] += 1
    whole = _reports(_cli(box, ["check", "--json"]), "check", fig)
    named = [c for c in cases if c.shape not in ("fifo", "dir")]
    paths = [os.fsdecode(c.state.encode() + b"/" + c.name) for c in named]
    by_path = []
    if paths:
        check_paths = _cli(box, ["check", "--json", "--", *paths], cwd=box.spool)
        by_path = _reports(check_paths, "check PATH", fig)
    sent = _cli(box, ["send", "--once", "--log-format", "json"])
    err = sent.stderr.decode("utf-8", "replace")
    if sent.returncode != 0 or "Traceback" in err:
        fig.crashes.append(f"send --once: exit {sent.returncode}: {err[-400:]}")
    events = _events(sent.stderr)
    outbox = _outbox(box)
    after = _listing(box)

    verdict: dict[bytes, dict[str, Any]] = {}
    for r in whole:
        key = os.fsencode(r["path"])
        if key in verdict:
            fig.crashes.append(f"check listed {key!r} twice")
        verdict[key] = r
    if by_path and len(by_path) != len(paths):
        fig.crashes.append(f"check PATH gave {len(by_path)} reports for {len(paths)} paths")
    path_verdict = {os.fsencode(r["path"]): r for r in by_path}

    for case in cases:
        label = f"#{case.n} {case.kind} {case.state}/{case.name!r}"
        rel = case.state.encode() + b"/" + case.name
        report = verdict.pop(spool + b"/" + rel, None)
        if case.shape in ("fifo", "dir") or not case.post_named:
            # Not a post: left alone where it is, never listed by check.
            fig.ended["left alone"] += 1
            if report is not None:
                fig.disagreements.append(f"{label}: not a post, yet check listed it")
            if not os.path.lexists(spool + b"/" + rel):
                fig.lost.append(f"{label}: not a post, yet it was moved")
            elif case.shape == "file":
                with open(spool + b"/" + rel, "rb") as f:
                    if f.read() != case.data:
                        fig.altered.append(f"{label}: not a post, yet it changed")
            by = path_verdict.get(rel)
            if by is not None and by["problems"]:
                fig.disagreements.append(f"{label}: the sender ignores it, check PATH: {by}")
            continue
        if report is None:
            fig.crashes.append(f"{label}: check did not list it")
            continue
        problem = bool(report["problems"])
        fig.checked["with problems" if problem else "fine"] += 1
        by = path_verdict.get(rel)
        if by is None or _digitless(by["problems"]) != _digitless(report["problems"]):
            fig.disagreements.append(f"{label}: check {report} but check PATH {by}")
        places = [s for s in after if case.name in after[s]]
        renames = [
            n
            for n in after["failed"]
            if n.startswith(case.id + b".") and _RENAMED.fullmatch(n, len(case.id))
        ]
        homes = [(s, case.name) for s in places] + [("failed", n) for n in renames]
        if case.other is not None:
            other_state, other_data = case.other
            other = spool + b"/" + other_state.encode() + b"/" + case.id + b".md"
            verdict.pop(other, None)
            try:
                with open(other, "rb") as f:
                    other_now = f.read()
            except FileNotFoundError:
                other_now = None
            if other_now != other_data:
                fig.lost.append(f"{label}: the {other_state}/ post of its ID changed or went")
            homes = [h for h in homes if h != (other_state, case.name)]
        if len(homes) != 1:
            fig.lost.append(f"{label}: ended in {homes}")
            continue
        state, name = homes[0]
        path = spool + b"/" + state.encode() + b"/" + name
        fig.ended[state] += 1
        sends = outbox[case.id]
        if sends > 1 or (sends and case.kind == "late-copy"):
            fig.lost.append(f"{label}: sent {sends} times")
        if state == "new":
            fig.lost.append(f"{label}: still in new/, undecided")
            continue
        said = {e["event"] for e in events.get(name[:-3], [])}
        if case.state == "drafts":
            refused = False
            if state != "drafts":
                fig.lost.append(f"{label}: a draft moved to {state}/")
        elif case.state == "new":
            refused = state == "failed"
            if refused != ("invalid" in said):
                fig.disagreements.append(f"{label}: in {state}/, events {said}")
        else:  # scheduled/: reported invalid, or failed/ as a copy (a late copy: when due)
            refused = "invalid" in said
            if state == "failed":
                why = (box.spool / "failed" / os.fsdecode(name[:-3] + b".error")).read_text()
                refused = refused or not why.startswith("overdue by")
            elif case.kind == "late-copy":
                refused = True
        if case.state == "drafts":
            # Never sent: check reports what is wrong in it, but never that its time passed.
            late = [
                p for p in report["problems"] if "which is in the past" in p or "max_lateness" in p
            ]
            if late:
                fig.disagreements.append(f"{label}: a draft's time is a problem: {late}")
        elif problem and not refused and all(_MISSING.search(p) for p in report["problems"]):
            # check's one rule of its own: a media file that is not there. Intake leaves it
            # to the send (a platform that uploads fails on it; the outbox does not).
            fig.checked["with problems, only a missing media file"] += 1
        elif problem != refused:
            fig.disagreements.append(
                f"{label}: check says {report['problems']}, the sender "
                f"{'refused' if refused else 'took'} it ({state}/, events {sorted(said)})"
            )
        if case.shape != "file":
            if state == case.state or state == "failed":
                if not _link_intact(box, case, path):
                    fig.altered.append(f"{label}: the link changed")
            else:
                fig.lost.append(f"{label}: a link was taken as a post into {state}/")
            continue
        with open(path, "rb") as f:
            now = f.read()
        if state == "failed" or state == case.state:
            if now != case.data:
                fig.altered.append(f"{label}: changed in {state}/")
            if state == "failed":
                why_path = spool + b"/failed/" + name[:-3] + b".error"
                with open(why_path, "rb") as f:
                    if not f.read().strip():
                        fig.lost.append(f"{label}: in failed/ without a reason")
        elif _expected_kept(case, now) != now:
            fig.altered.append(f"{label}: changed beyond its time and results in {state}/")
    for key in verdict:
        fig.crashes.append(f"check listed {key!r}, which is no case")


# -- the run ------------------------------------------------------------------------------------


def run(
    base: Path,
    *,
    files: int,
    seed: int,
    batch: int = 500,
    keep: bool = False,
    log: Callable[[str], None] = lambda s: None,
) -> Figures:
    """The whole run in `base`: `files` cases from `seed`, `batch` to a sandbox."""
    fig = Figures()
    gen = Generator(random.Random(seed))
    start = time.monotonic()
    for first in range(0, files, batch):
        cases = [gen.case(n) for n in range(first, min(files, first + batch))]
        where = base / f"batch-{fig.batches:03d}"
        try:
            run_batch(where, cases, fig)
        finally:
            if not keep:
                shutil.rmtree(where, ignore_errors=True)
        fig.cases += len(cases)
        fig.batches += 1
        log(
            f"{fig.cases}/{files} cases, {time.monotonic() - start:.0f}s: crashes "
            f"{len(fig.crashes)}, altered {len(fig.altered)}, lost {len(fig.lost)}, "
            f"disagreements {len(fig.disagreements)}"
        )
    fig.seconds = time.monotonic() - start
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.robustness.hostile_run", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--files", type=int, default=10_000, help="cases to make (default 10000)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--batch", type=int, default=500, help="cases per sandbox (default 500)")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed: {seed}", flush=True)

    def say(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    with contextlib.ExitStack() as stack:
        if args.keep:
            base = args.keep
            base.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hostile-")))
        figures = run(
            base, files=args.files, seed=seed, batch=args.batch, keep=bool(args.keep), log=say
        )
    print(figures.text(), flush=True)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
