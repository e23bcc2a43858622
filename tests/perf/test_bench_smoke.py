"""CI's smoke run of the benchmarks: `python -m tests.bench --quick` runs every benchmark and
prints the whole table. It checks that they run, not their numbers (the machine is shared)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# The benchmarks run the daemon and a Nostr relay and time them.
pytestmark = [pytest.mark.slow, pytest.mark.peers, pytest.mark.realtime]

ROOT = Path(__file__).resolve().parents[2]

# Every figure the table has, in order; rows that need `at` say "skipped" or "not available"
# where it is missing, but are printed all the same.
FIGURES = [
    "`python -c pass` (reference)",
    "`plurspool --help`",
    '`post --schedule "tomorrow 9am"`',
    "`list --format json`, 5,000 posts",
    "`list --format json`, 5,000 posts, with [senders]",
    "`check --explain`, 100 posts of 2,000 characters",
    "`post --queue`, a queue of 1,000 posts",
    "`calendar --month --format text`, 5,000 scheduled posts",
    "`calendar --month --format json`, 5,000 scheduled posts",
    "`ics`, 5,000 scheduled posts",
    "rename into new/ → in scheduled/",
    "due time → exec peer ran",
    "due time → Nostr relay received EVENT",
    "100 posts due at once → sent to a local relay",
    "one daemon pass, 1,000 posts not yet due",
    "one daemon pass, 5,000 posts not yet due",
    "one daemon pass, 10 recurring posts not yet due",
    "one daemon pass, 1,000 recurring posts not yet due",
    "one daemon pass, 2,000 sent posts",
    "one daemon pass, 2,000 sent posts expiring later",
    "repeated repost: its undo found, 1,000 in sent/",
    "git gate, 1,000 due posts: first pass",
    "git gate, 1,000 due posts: the branch did not move",
    "git gate, 1,000 due posts: after a commit",
    "feed poll answered 304 (200 entries)",
    "feed poll with one new entry (parse 200, one post)",
    "one daemon pass, 1,000 posts, no feeds",
    "one daemon pass, 1,000 posts, 20 feeds not due",
    "`import csv`, 1,000 rows",
    "`import csv` again, 1,000 rows (nothing new)",
    "idle daemon, 5,000 posts, 5 s",
    "atd: job due at a minute → ran",
]


def test_quick_benchmarks_print_every_row(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TMPDIR": str(tmp_path),
    }
    env.pop("PLURSPOOL_SPOOL", None)
    env.pop("PLURSPOOL_CONFIG", None)
    r = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    header = [c.strip() for c in lines[0].split(" | ")]
    assert header == ["figure", "plurspool", "peer", "goal", "result"], r.stdout
    rows = [[c.strip() for c in line.split(" | ")] for line in lines[1:]]
    assert [row[0] for row in rows] == FIGURES, r.stdout
    for row in rows:
        assert len(row) == 5, row
        assert row[4] in ("pass", "FAIL", "reported"), row
        assert "ERROR" not in row[1], row
    # Figures were measured, not left empty: every row but atd's has a value.
    assert all(row[1] for row in rows[:-1]), r.stdout
