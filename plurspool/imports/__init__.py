"""What every import reader hands on: rows of a source, each a post to be (plurspool(1), IMPORTS).

A reader (`csvrows` for CSV and JSON Lines, `plurcast` for Plurcast's database,
`mastodon_scheduled` for a Mastodon account's scheduled statuses) turns its source into `Row`s,
in the source's order, with a `Bad` in the place of each row it cannot read;
`plurspool.importing` checks them all, and writes them only when none is bad (else `BadRows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import InvalidInput

if TYPE_CHECKING:
    from ..post import Media, Result

#: The states an import writes a post into.
IMPORT_STATES = ("scheduled", "drafts", "sent", "failed")


@dataclass(frozen=True)
class Row:
    """One post of a source, as the source has it.

    `where` names it for errors ("line 3", "Plurcast post 1f0c…"); `text` may hold a thread
    (`---` lines, as `plurspool post` reads it); `seed` identifies it in
    its source, so that importing it again finds the post made the first time. `schedule` is
    a time as a user writes it; `at`, an absolute time the source holds (kept even when past,
    for posts already sent). `state` is where it goes; `results` and `error` are what a
    source recorded of sending it (sent/ and failed/ only). `files` are media the source
    holds, by the name they get under the spool's media/ (`media` names them media/NAME).
    """

    where: str
    seed: bytes
    text: str
    schedule: str | None = None
    at: datetime | None = None
    platforms: Sequence[str] | None = None
    cw: str | None = None
    language: str | None = None
    visibility: str | None = None
    sensitive: bool | None = None
    media: Sequence[Media] = ()
    state: str = "scheduled"
    results: Mapping[str, Result] = field(default_factory=dict)
    error: str | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Bad:
    """A row a reader could not make a post of: where it is, and why."""

    where: str
    why: str


class BadRows(InvalidInput):
    """Rows that cannot be imported, each with where it is and why: nothing is written."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        listed = "\n".join(f"  {where}: {why}" for where, why in self.problems)
        n = len(self.problems)
        super().__init__(
            f"{source}: {n} bad row{'s' if n != 1 else ''}, nothing imported:\n{listed}",
            "fix those rows and import again (rows imported before are not made twice)",
        )
