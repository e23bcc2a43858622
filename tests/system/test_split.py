"""Auto-split through the CLI (plurspool(5), AUTO-SPLIT; plurspool(1), `check --explain`): what
`check` says, what `--explain` shows, and what an account's command is given to send."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import Sandbox

WORDS = "the open social web is made of small tools that people keep running for years"


def prose(sentences: int, paragraph_every: int = 3) -> str:
    out = []
    for k in range(sentences):
        sentence = " ".join(WORDS.split()[k % 5 :]).capitalize() + f" {k}."
        out.append(sentence + ("\n\n" if k % paragraph_every == paragraph_every - 1 else " "))
    return "".join(out).strip()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path / "a")
    sandbox.exec_account("short")
    sandbox.accounts["short"] += "max_length = 120\n"
    sandbox.exec_account("plain")
    sandbox.accounts["masto"] = 'platform = "mastodon"\ninstance = "https://example.social"\n'
    sandbox.accounts["sky"] = 'platform = "bluesky"\nhandle = "me.example.com"\n'
    sandbox.write_config()
    try:
        yield sandbox
    finally:
        sandbox.cleanup()


def draft(box: Sandbox, name: str, body: str, front: str = "") -> Path:
    path = box.spool / "drafts" / f"{name}.md"
    path.write_text(f"---\n{front}---\n{body}\n", encoding="utf-8")
    return path


def test_explain_shows_each_accounts_parts_with_count_and_limit(box: Sandbox) -> None:
    text = prose(6)
    assert 300 < len(text) < 490
    draft(box, "long-one", text, "platforms: [short, plain, masto, sky]\ncw: soup\n")
    run = box.cli("check", "--explain", "--json", "long")  # an ID prefix
    assert run.code == 0, run.err
    explained = run.json()
    assert list(explained) == ["drafts/long-one.md"]
    accounts = explained["drafts/long-one.md"]
    assert list(accounts) == ["short", "plain", "masto", "sky"]
    for parts in accounts.values():
        for part in parts:
            assert set(part) == {"text", "count", "limit"}
    assert accounts["plain"] == [{"text": text, "count": len(text), "limit": None}]
    assert [p["count"] for p in accounts["masto"]] == [len(text) + len("soup")]  # fits: as is
    short = accounts["short"]
    n = len(short)
    assert n > 5 and all(p["limit"] == 120 and p["count"] <= 120 for p in short)
    assert [p["text"].rsplit(" ", 1)[1] for p in short] == [f"{i}/{n}" for i in range(1, n + 1)]
    sky = accounts["sky"]
    assert len(sky) > 1 and all(p["limit"] == 300 and p["count"] <= 300 for p in sky)
    # Bluesky counts the CW line it sends with every part.
    assert sky[0]["count"] == len("CW: soup\n\n" + sky[0]["text"])


def test_explain_text_fits_80_columns(box: Sandbox) -> None:
    path = draft(box, "wide", prose(20, paragraph_every=20), "platforms: [short, sky]\n")
    run = box.cli("check", "--explain", str(path))
    assert run.code == 0, run.err
    assert re.search(r"^-- short, part 1 of \d+: \d+ of 120$", run.out, re.M), run.out
    assert re.search(r"^-- sky, part 1 of \d+: \d+ of 300$", run.out, re.M), run.out
    assert max(len(line) for line in run.out.splitlines()) <= 80


def test_a_word_longer_than_the_limit_is_a_check_error_naming_account_and_part(
    box: Sandbox,
) -> None:
    url = "https://example.com/" + "x" * 150
    draft(box, "unbreakable", f"fine\n\n---\n\nsee {url} now", "platforms: [short]\n")
    run = box.cli("check", "--json")
    assert run.code == 3, run.out + run.err
    [report] = run.json()
    [problem] = report["problems"]
    assert problem.startswith('short: part 2 of 2: "https://example.com/xxx'), problem
    assert "is 170 graphemes; the account's max_length is 120" in problem
    # --explain shows it anyway, as written, and exits 3 too.
    run = box.cli("check", "--explain", "--json", "unbreak")
    assert run.code == 3
    [second] = run.json()["drafts/unbreakable.md"]["short"][1:]
    assert second["count"] > second["limit"] == 120


def test_split_off_makes_an_over_long_part_an_error(box: Sandbox) -> None:
    text = prose(4)
    draft(box, "off", text, "platforms: [short]\nsplit: off\n")
    run = box.cli("check", "--json")
    assert run.code == 3
    [report] = run.json()
    assert report["problems"] == [
        f"short: the text is {len(text)} graphemes; the account's max_length is 120 (split: off)"
    ]


def test_the_command_gets_the_split_thread_numbered(box: Sandbox) -> None:
    text = prose(9)
    run = box.cli("post", "-p", "short", "-p", "plain", text)
    assert run.code == 0, run.err
    [short] = box.records("short")
    [plain] = box.records("plain")
    assert plain["stdin"]["parts"] == [text]
    parts = short["stdin"]["parts"]
    n = len(parts)
    assert n > 3 and all(len(p) <= 120 for p in parts)
    assert [p.rsplit(" ", 1)[1] for p in parts] == [f"{i}/{n}" for i in range(1, n + 1)]
    joined = " ".join(p.rsplit(" ", 1)[0] for p in parts)
    assert joined.split() == text.split()  # the text, but for the whitespace at the breaks
