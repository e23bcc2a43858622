"""`plurspool amend`: a sent post edited in $EDITOR and then on the servers that allow edits
(plurspool(1), `amend`). Holds one state change of a post, "an amend written back": the file in
sent/ is rewritten (claimed) only after every edit was accepted, each edited account's result
gaining `edited_at`.

Only mastodon statuses can be edited (`PUT /api/v1/statuses/:id`): their text, `cw`,
`sensitive`, `language` and media descriptions. Bluesky records and Nostr events cannot be
changed in place; such accounts are named and left as they were.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import InvalidInput, SendError
from .spool import Changed

if TYPE_CHECKING:
    from .app import App
    from .config import Account
    from .editing import Ask, Note
    from .items import Item
    from .platforms.mastodon_api import Edit
    from .post import Post

EDITABLE = ("mastodon",)  # the platforms whose posts can be edited in place
# What an edit on the servers cannot change: the keys that must stay as they were sent.
FIXED = ("platforms", "visibility", "media paths", "poll", "quote", "repost")


@dataclass(frozen=True)
class Amended:
    """What `amend` did: the post as now stored, the accounts edited, those it had nothing to
    change on, those whose platform has no edits, and those the post was deleted from."""

    item: Item
    edited: tuple[str, ...]
    unchanged: tuple[str, ...]
    not_editable: tuple[str, ...]
    deleted: tuple[str, ...] = ()


def accounts(app: App, post: Post) -> tuple[list[str], list[str], list[str]]:
    """The accounts the post reached, as (editable, not editable, deleted since: `expires`
    or `delete` took the copy back, so there is nothing left to edit)."""
    yes: list[str] = []
    no: list[str] = []
    gone: list[str] = []
    for name, result in post.results.items():
        if result.error is not None or not result.id:
            continue  # it never got there: nothing to amend
        account = app.config.accounts.get(name)
        if result.deleted_at is not None:
            gone.append(name)
        else:
            (yes if account is not None and account.platform in EDITABLE else no).append(name)
    return yes, no, gone


def refuse_unless_editable(app: App, item: Item) -> None:
    """InvalidInput (exit 3) when the post is no sent post with an editable account."""
    post = item.post
    if item.state != "sent":
        raise InvalidInput(
            f"{item.id} is in {item.state}/, not sent", f"edit it with `plurspool edit {item.id}`"
        )
    if post is None:
        raise InvalidInput(f"{item.id} cannot be read: {item.problem}", "fix the file first")
    if post.repost is not None:
        raise InvalidInput(f"{item.id} is a repost: it has no text to amend")
    yes, no, gone = accounts(app, post)
    if gone and not yes and not no:
        raise InvalidInput(
            f"{item.id} was deleted from every account it went to ({', '.join(gone)})",
            "there is nothing to amend; post it anew with `plurspool post`",
        )
    if not yes:
        config = app.config.accounts
        named = ", ".join(f"{n} ({config[n].platform})" for n in no if n in config) or "none"
        raise InvalidInput(
            f"{item.id} went to no account whose posts can be edited (it went to: {named})",
            "only mastodon statuses can be edited; bluesky and nostr posts cannot be changed",
        )


def _fixed(post: Post) -> tuple[object, ...]:
    return (
        post.platforms,
        post.visibility,
        tuple((n, o.visibility) for n, o in sorted(post.overrides.items())),
        tuple(m.path for m in post.media),
        post.poll,
        post.quote,
        post.repost,
    )


def plan(app: App, item: Item, old: Post, new: Post) -> dict[str, list[Edit]]:
    """The edits each editable account needs for `new`: its statuses whose text, cw,
    sensitive, language or media descriptions changed. InvalidInput names what amend cannot
    do (change a key in FIXED, or the number of statuses of a thread)."""
    from .platforms.mastodon_api import Edit

    if _fixed(old) != _fixed(new):
        raise InvalidInput(
            f"amend cannot change {', '.join(FIXED)}",
            "change only the text, cw, sensitive, language or media descriptions",
        )
    editable, _, _ = accounts(app, old)
    deliveries = app.ledger.deliveries(item.id)
    out: dict[str, list[Edit]] = {}
    for name in editable:
        account = app.config.accounts[name]
        material = deliveries[name].material if name in deliveries else {}
        link = _quote_link(name, old, material)

        before, after = (_statuses(app, account, p, link) for p in (old, new))
        if len(before) != len(after):
            raise InvalidInput(
                f"{name}: the edit makes {len(after)} statuses of the {len(before)} sent",
                "amend edits statuses in place; it cannot add or remove one",
            )
        alts_before = tuple(m.alt for m in old.media)
        alts_after = tuple(m.alt for m in new.media)
        saved = material.get("parts")
        parts: list[dict[str, object]] = saved if isinstance(saved, list) else []
        edits = []
        for index, (was, now) in enumerate(zip(before, after, strict=True)):
            alts = alts_after if index == 0 and new.media else None
            if was == now and (alts is None or alts_before == alts_after):
                continue
            status_id = old.results[name].id if index == 0 else None
            if index > 0 and len(parts) == len(before):
                status_id = str(parts[index].get("id") or "") or None
            if status_id is None:
                raise InvalidInput(
                    f"{name}: status {index + 1} of {len(before)} was sent from another host; "
                    "its id is not known here",
                    "amend it on the host that sent it, or change only the first part",
                )
            edits.append(Edit(status_id, now[0], now[1], now[2], now[3], alts))
        out[name] = edits
    return out


Status = tuple[str, str | None, bool | None, str | None]  # text, cw, sensitive, language


def _statuses(app: App, account: Account, post: Post, link: str | None) -> list[Status]:
    """The statuses `account` got from `post`, as the sender made them (a quote's link added
    where it was, split with the account's measure)."""
    from .platforms import fit, get
    from .platforms.mastodon import with_link

    name = account.name
    written = list(post.parts_for(name))
    written[0] = with_link(written[0], link) if link else written[0]
    measure = get(account.platform).measure(post, account, app.config.state_dir)
    fields = post.field_for(name, "cw"), post.field_for(name, "sensitive")
    language = post.field_for(name, "language")
    return [(t, *fields, language) for t in fit.thread(post, account, measure, written).texts]


def _quote_link(name: str, post: Post, material: dict[str, object]) -> str | None:
    """The quoted post's URL the sender added to the first status (an instance without the
    quote API), or None; InvalidInput when this host cannot tell."""
    if post.quote is None or post.quote.target(name) is None:
        return None
    plan = material.get("quote")
    if not isinstance(plan, dict):
        raise InvalidInput(
            f"{name}: how this quote post was sent is not known on this host",
            "amend it on the host that sent it",
        )
    link = plan.get("link")
    return str(link) if link else None


def amend(app: App, item: Item, *, note: Note, ask: Ask | None) -> Amended | None:
    """Open a copy of the sent post in the editor (the loop of `edit`), edit what changed on
    each editable account, and write the file back; None when it was left unchanged."""
    from .editing import edit_copy
    from .post import parse

    refuse_unless_editable(app, item)
    old = item.post
    assert old is not None

    def check(data: bytes) -> None:
        plan(app, item, old, parse(data))

    edited = edit_copy(app, item, note=note, ask=ask, check=check)
    if edited is None:
        return None

    def store(data: bytes) -> Amended:
        done = save(app, item, old, data)
        if not done.edited:
            raise InvalidInput(
                "the changes touch nothing an editable account shows; nothing was sent",
                "on mastodon: the text, cw, sensitive, language or media descriptions",
            )
        return done

    return edited.store(store)


def save(app: App, item: Item, old: Post, data: bytes) -> Amended:
    """Edit the servers, then store `data` in sent/ with `edited_at` on each edited account;
    under the post's claim, and only if the file did not change since it was read."""
    from . import when
    from .platforms.mastodon_api import Refused, edit_statuses
    from .post import parse, with_record

    new = parse(data)
    with app.locks.claim(item.id):
        entry = app.spool.stat_entry("sent", item.id)
        if entry is None or entry.key != item.entry.key:
            raise Changed(
                f"{item.id} changed or moved while you were editing",
                "your version was kept (see above); merge it by hand",
            )
        edits = plan(app, item, old, new)
        results = dict(old.results)
        done: list[str] = []
        for name, todo in edits.items():
            if not todo:
                continue
            try:
                account = app.config.accounts[name]
                edit_statuses(account, todo, clock=lambda: app.clock().timestamp())
            except Refused as refused:
                edited = f" ({', '.join(done)} edited)" if done else ""
                raise SendError(
                    f"{name}: the server refused the edit: {refused.outcome.error}{edited}",
                    "nothing was written to sent/; run amend again",
                ) from None
            done.append(name)
            stamp = when.iso_utc(app.clock())
            results[name] = dataclasses.replace(results[name], edited_at=stamp)
        _, no, gone = accounts(app, old)
        unchanged = tuple(n for n in edits if n not in done)
        if not done:
            return Amended(item, (), unchanged, tuple(no), tuple(gone))
        stored = app.spool.replace(entry, with_record(data, results, old.attempts))
        return Amended(app.items.load(stored), tuple(done), unchanged, tuple(no), tuple(gone))
