"""Writing or editing a post in $VISUAL/$EDITOR until it is valid (like crontab -e).

The text is edited in a private temporary directory, never in the spool: the daemon sees a
post only once it is saved valid, and a text that is not stored stays there for its writer.
The shell passes `note` (a line for the person at the terminal) and `ask` (a yes/no question,
None without a terminal to ask it on), so this module never prints or prompts by itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .errors import InvalidInput, PlurspoolError

if TYPE_CHECKING:
    from .app import App
    from .items import Item

Note = Callable[[str], None]
Ask = Callable[[str], bool]
T = TypeVar("T")

ROUNDS_WITHOUT_TERMINAL = 5  # an editor that is a script gets this many tries, then it fails


def new_post(
    app: App,
    *,
    schedule: str | None,
    platforms: Sequence[str],
    draft: bool,
    note: Note,
    ask: Ask | None,
) -> Item | None:
    """Write a new post from the template; store it in drafts/ or the queue once saved valid.

    Returns the stored post, or None when the file was left unchanged or emptied.
    """
    from .post import template
    from .spool import new_id

    stamp = app.items.stamp(app.items.resolve(schedule)) if schedule else None
    initial = template(schedule=stamp, platforms=list(platforms) or None).encode()
    target = "drafts" if draft else "scheduled"
    edited = _until_valid(app, target, new_id(), initial, stamp, note, ask)
    if edited is None:
        return None
    saved = app.queue.add_written(target, edited.data, "").item
    edited.discard()
    return saved


def edit_copy(
    app: App, item: Item, *, note: Note, ask: Ask | None, check: Callable[[bytes], None]
) -> Edited | None:
    """Edit a copy of a post until it is valid and passes `check` (which raises a
    PlurspoolError naming what to fix); nothing is stored here (`amend` stores it).

    Returns the valid text in its file, or None when the file was left unchanged or emptied.
    """
    original = app.items.read(item)
    before = item.post.schedule if item.post else None
    return _until_valid(app, item.state, item.id, original, before, note, ask, check)


def edit_post(app: App, item: Item, *, note: Note, ask: Ask | None) -> Item | None:
    """Edit a post in place; store it only if saved valid and not changed meanwhile.

    Returns the stored post, or None when the file was left unchanged or emptied.
    """
    original = app.items.read(item)
    before = item.post.schedule if item.post else None
    edited = _until_valid(app, item.state, item.id, original, before, note, ask)
    if edited is None:
        return None
    return edited.store(lambda data: app.queue.save_edit(item, data).item)


@dataclass(frozen=True)
class Edited:
    """A valid text, in the file it was edited in."""

    data: bytes
    path: Path

    def store(self, save: Callable[[bytes], T]) -> T:
        """`save(data)`, then the file is discarded; an error from it says where the user's
        version is kept (the file stays)."""
        try:
            saved = save(self.data)
        except PlurspoolError as exc:
            kept = PlurspoolError(exc.message, f"your version is kept in {self.path}")
            kept.exit_code = exc.exit_code
            raise kept from None
        self.discard()
        return saved

    def discard(self) -> None:
        """Remove the file and its directory, once the text is stored."""
        for p in self.path.parent.iterdir():
            p.unlink()
        self.path.parent.rmdir()


def _editor() -> list[str]:
    import shlex

    return shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")


def _until_valid(
    app: App,
    state: str,
    post_id: str,
    initial: bytes,
    schedule: str | None,
    note: Note,
    ask: Ask | None,
    check: Callable[[bytes], None] | None = None,
) -> Edited | None:
    """Open the editor until the file is valid (and passes `check`); None if it was left
    unchanged or emptied.

    `schedule` is the post's time before the edit: kept as it is, it may lie in the past.
    """
    import subprocess
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="plurspool-edit-")) / f"{post_id}.md"
    path.write_bytes(initial)
    rounds = 0
    while True:
        rounds += 1
        try:
            rc = subprocess.call([*_editor(), str(path)])
        except OSError as exc:
            raise PlurspoolError(
                f"cannot run the editor {_editor()[0]!r}: {exc.strerror}", "set $VISUAL or $EDITOR"
            ) from None
        if rc != 0:
            raise PlurspoolError(
                f"the editor exited with status {rc}; nothing was changed",
                f"your text is kept in {path}",
            )
        data = path.read_bytes()
        if (data == initial and rounds == 1) or not data.strip():
            note("no changes" if data.strip() else "empty file: nothing saved")
            Edited(data, path).discard()
            return None
        try:
            stored, item = app.items.validate_edit(state, post_id, data, schedule)
            if item.problem:
                raise InvalidInput(item.problem)
            if check is not None:
                check(stored)
        except PlurspoolError as exc:
            note(f"plurspool: {path.name}: {exc.message}")
            if exc.hint:
                note(f"hint: {exc.hint}")
            again = ask("Edit again?") if ask is not None else rounds < ROUNDS_WITHOUT_TERMINAL
            if not again:
                raise InvalidInput("nothing was saved", f"your text is kept in {path}") from None
            continue
        return Edited(stored, path)
