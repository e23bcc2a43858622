"""Imports (plurspool(1), IMPORTS): a reader's rows → posts checked as `check` checks them →
written into their states through `Queue.add_imported`, all or nothing, never twice.

Every row is checked before anything is written; one bad row and nothing is (BadRows names
each). A post's ID is derived from its row's seed (`spool.new_id`), so an import run again
finds what it made the first time and makes nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import InvalidInput, SpoolError
from .imports import IMPORT_STATES, Bad, BadRows, Row
from .spool import STATES, new_id

if TYPE_CHECKING:
    from .app import App
    from .post import Media
    from .spool import Entry

Tick = Callable[[int], None]
BATCH = 500  # posts written with one disk sync (see Importer.write)


@dataclass(frozen=True)
class Planned:
    """A checked row: the post file to write, where, and the reason beside it in failed/."""

    id: str
    state: str
    data: bytes
    reason: str | None = None
    where: str = ""
    files: Mapping[str, bytes] = field(default_factory=dict)


@dataclass
class Plan:
    """What an import would do: the posts to make, and the rows already in the spool (by ID)."""

    source: str
    new: list[Planned] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    repeated: int = 0  # rows the same as an earlier row of the source
    ids: dict[str, str] = field(default_factory=dict)  # each good row's `where` → its post ID


class Importer:
    """Checks and writes the rows of one import into the spool of `app`."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._taken: set[str] = set()  # the IDs in the spool when `plan` began

    def plan(self, source: str, rows: Sequence[Row | Bad], tick: Tick | None = None) -> Plan:
        """Every row checked (a row already imported is not checked again); BadRows names
        every bad one, the reader's and these checks' in the source's order."""
        plan = Plan(source)
        spool = self.app.spool
        # The IDs in the spool, listed once (a lookup a row, not five lstats).
        self._taken = set()
        for state in STATES:
            with spool.scandir(state) as it:
                self._taken.update(de.name[:-3] for de in it if de.name.endswith(".md"))
        seen: set[str] = set()
        bad: list[tuple[str, str]] = []
        for row in rows:
            if tick is not None:
                tick(1)
            if isinstance(row, Bad):
                bad.append((row.where, row.why))
                continue
            try:
                post_id, planned = self._planned(row, seen)
            except InvalidInput as exc:
                bad.append((row.where, _one_line(exc)))
            else:
                if post_id in seen:
                    plan.repeated += 1
                elif planned is None:
                    plan.known.append(post_id)
                else:
                    plan.new.append(planned)
                seen.add(post_id)
                plan.ids[row.where] = post_id
        if bad:
            raise BadRows(source, bad)
        return plan

    def _planned(self, row: Row, seen: set[str]) -> tuple[str, Planned | None]:
        """The row's ID, and its post file checked (None when it is in the spool already, or
        was seen earlier in this source: not checked again)."""
        from .post import parse, render, split_parts, with_record

        items = self.app.items
        parts = split_parts(row.text)
        post_id = new_id(parts[0] if parts else "", seed=row.seed)
        if post_id in seen or post_id in self._taken:
            return post_id, None
        at = row.at
        if at is None and row.schedule is not None:
            at = items.resolve(row.schedule)  # as `post -s` and `check` read a time
        state = row.state
        if state == "scheduled" and at is None:
            state = "drafts"  # no time given: kept, never sent until scheduled
        stamp = items.stamp(at) if at is not None else None

        def rendered(media: Sequence[Media]) -> bytes:
            return render(
                parts=parts,
                schedule=stamp,
                platforms=row.platforms,
                cw=row.cw,
                language=row.language,
                visibility=row.visibility,
                sensitive=row.sensitive,
                media=media,
                check=False,  # parsed below: by validate_new, or by parse
            )

        data = rendered(row.media)
        if row.results:
            data = with_record(data, row.results, max(r.attempts for r in row.results.values()))
        if state in ("scheduled", "drafts"):
            # Accounts, platform limits, media files: the source's own media are written only
            # once every row is good, and checked then (`write`).
            own = [m for m in row.media if m.path.removeprefix("media/") not in row.files]
            if len(own) != len(row.media):
                parse(data)
            items.validate_new(data if len(own) == len(row.media) else rendered(own))
        else:
            parse(data)  # history (sent/, failed/): only read back
        limit = self.app.spool.max_size
        if len(data) > limit:
            raise InvalidInput(
                f"the post would be {len(data)} bytes, over the {limit}-byte max_post_size",
                "shorten it",
            )
        return post_id, Planned(post_id, state, data, row.error, row.where, row.files)

    def write(self, plan: Plan, tick: Tick | None = None) -> list[Entry]:
        """Write the planned posts, a batch at a time (one disk sync a batch, not two a post:
        10,000 posts would take half a minute); the entries made (a post made meanwhile by
        another import of the same rows is left out)."""
        spool = self.app.spool
        for p in plan.new:
            for name, content in p.files.items():
                spool.write_media(name, content)
        bad = []
        for p in plan.new:
            if p.files and p.state in ("scheduled", "drafts"):
                try:
                    self.app.items.validate_new(p.data)
                except InvalidInput as exc:
                    bad.append((p.where, _one_line(exc)))
        if bad:
            raise BadRows(plan.source, bad)
        made: list[Entry] = []
        for i in range(0, len(plan.new), BATCH):
            batch = plan.new[i : i + BATCH]
            for state in IMPORT_STATES:
                posts = [(p.id, p.data, p.reason) for p in batch if p.state == state]
                if not posts:
                    continue
                try:
                    made += self.app.queue.add_imported(state, posts)
                except SpoolError as exc:
                    raise SpoolError(
                        f"{exc.message} ({len(made)} of {len(plan.new)} posts were written)",
                        f"{exc.hint}, then run the same import again: it makes only the rest",
                    ) from None
            if tick is not None:
                tick(len(batch))
        return made


def _one_line(exc: InvalidInput) -> str:
    """An error as one line of the list of bad rows: its message, then its hint in brackets.
    (A line number of a post error would be one of the file made from the row: left out.)"""
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message
