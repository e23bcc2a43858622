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


def post_text(rng: random.Random, due: datetime, n: int) -> str:
    """One post file: frontmatter like people write it, a body of a few sentences."""
    lines = ["---", f"schedule: {due.isoformat(timespec='seconds')}"]
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


def generate(spool: Path, count: int, *, start: datetime | None = None, seed: int = 1) -> None:
    """Write `count` scheduled posts, due from `start` (default: in a day) over the next weeks."""
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
            f.write(post_text(rng, due, n))


def generate_queued(spool: Path, queue: str, dues: list[datetime], *, seed: int = 2) -> None:
    """Write a post of the queue `queue` in scheduled/ at each of `dues` (as intake leaves them)."""
    rng = random.Random(seed)
    sched = spool / "scheduled"
    sched.mkdir(mode=0o700, parents=True, exist_ok=True)
    for n, due in enumerate(dues):
        text = post_text(rng, due, n).replace("\n---\n", f"\nqueue: {queue}\n---\n", 1)
        with open(sched / f"q{n:07d}-bench.md", "w") as f:
            f.write(text)
