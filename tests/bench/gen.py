"""Generate large spools fast: realistic post files written straight into scheduled/."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

_TEXT = (
    "the open social web is made of small tools that people keep running for years "
    "schedule posts from plain files edit them in your editor sync with git"
)
WORDS = _TEXT.split()

LANGS = ("en", "de", "fr", "pt-BR", None)


def post_text(rng: random.Random, due: datetime, n: int, repeat: str | None = None) -> str:
    """One post file: frontmatter like people write it, a body of a few sentences; with
    `repeat`, a recurring post's template (its rule as intake writes it)."""
    lines = ["---", f"schedule: {due.isoformat(timespec='seconds')}"]
    if repeat is not None:
        lines.append(f'repeat: "{repeat}"')
    if n % 3 == 0:
        lines.append("platforms: [outbox]")
    lang = LANGS[n % len(LANGS)]
    if lang:
        lines.append(f"language: {lang}")
    if n % 7 == 0:
        lines.append("cw: Spoilers for episode 3")
    if n % 11 == 0:
        lines.append("visibility: unlisted")
    lines.append("---")
    words = rng.choices(WORDS, k=rng.randint(12, 60))
    body = " ".join(words).capitalize() + "."
    if n % 5 == 0:
        body += "\n\n---\n\nA second part of the thread, #plurspool."
    return "\n".join(lines) + "\n" + body + "\n"


def generate(
    spool: Path,
    count: int,
    *,
    start: datetime | None = None,
    seed: int = 1,
    repeat: str | None = None,
) -> None:
    """Write `count` scheduled posts, due from `start` (default: in a day) over the next weeks
    (recurring posts' templates with the rule `repeat`)."""
    rng = random.Random(seed)
    base = start or datetime.now(UTC) + timedelta(days=1)
    for d in ("tmp", "new", "drafts", "scheduled", "sent", "failed"):
        (spool / d).mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(spool, 0o700)
    sched = spool / "scheduled"
    for n in range(count):
        due = base + timedelta(seconds=rng.randint(0, 60 * 86400))
        name = f"b{n:07d}-bench.md"
        with open(sched / name, "w") as f:
            f.write(post_text(rng, due, n, repeat))


def generate_sent(spool: Path, count: int, account: str, expires: str | None) -> None:
    """Write `count` posts in sent/ as the sender leaves them (a result for `account`, sent an
    hour ago), each with `expires` when given."""
    rng = random.Random(3)
    sent = spool / "sent"
    for d in ("tmp", "new", "drafts", "scheduled", "sent", "failed"):
        (spool / d).mkdir(mode=0o700, parents=True, exist_ok=True)
    at = datetime.now(UTC) - timedelta(hours=1)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    for n in range(count):
        text = post_text(rng, at, n).replace("platforms: [outbox]\n", "")
        head, body = text.split("\n---\n", 1)
        extra = [f"platforms: [{account}]"] + ([f"expires: {expires}"] if expires else [])
        results = f"results:\n  {account}:\n    id: '{n}'\n    url: null\n    attempts: 1\n"
        results += f"    at: '{stamp}'\nattempts: 1"
        with open(sent / f"s{n:07d}-bench.md", "w") as f:
            f.write("\n".join([head, *extra, results]) + "\n---\n" + body)


def long_post_text(n: int, length: int) -> str:
    """A draft of about `length` characters of prose: paragraphs of one to eight sentences, as
    people write long posts, different for each `n`."""
    rng = random.Random(n)
    paragraphs, size = [], 0
    while size < length:
        sentences = []
        for _ in range(rng.randint(1, 8)):
            words = rng.choices(WORDS, k=rng.randint(5, 24))
            sentences.append(" ".join(words).capitalize() + rng.choice(".....!?"))
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    body = "\n\n".join(paragraphs)[:length].rsplit(" ", 1)[0] + "."
    return f"---\nlanguage: en\n---\n{body}\n"


def generate_queued(spool: Path, queue: str, dues: list[datetime], *, seed: int = 2) -> None:
    """Write a post of the queue `queue` in scheduled/ at each of `dues` (as intake leaves them)."""
    rng = random.Random(seed)
    sched = spool / "scheduled"
    sched.mkdir(mode=0o700, parents=True, exist_ok=True)
    for n, due in enumerate(dues):
        text = post_text(rng, due, n).replace("\n---\n", f"\nqueue: {queue}\n---\n", 1)
        with open(sched / f"q{n:07d}-bench.md", "w") as f:
            f.write(text)
