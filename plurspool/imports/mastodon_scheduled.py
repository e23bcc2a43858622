"""`import mastodon-scheduled`: a Mastodon account's server-side scheduled statuses → `Row`s,
their media downloaded; and, asked to, each deleted on the server once its file is durable,
never within 5 minutes of its time (plurspool(1), IMPORTS).

A status's seed is its instance, account and scheduled-status ID: imported again, it is the
same post, and a later run with --delete-remote deletes what an earlier one imported.
"""

from __future__ import annotations

import mimetypes
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ..errors import SendError
from . import Bad, Row

if TYPE_CHECKING:
    from ..config import Account
    from ..platforms.mastodon_api import Client
    from ..post import Media

GRACE = timedelta(minutes=5)  # Mastodon may be publishing a status this close to its time
PAGE = 40  # statuses a request (Mastodon's most)
MAX_MEDIA = 200 * 1024 * 1024  # bytes of one attachment downloaded at most
VISIBILITY = {
    "public": "public",
    "unlisted": "unlisted",
    "private": "followers",
    "direct": "direct",
}


@dataclass(frozen=True)
class Remote:
    """A scheduled status on the server: its ID, its time, and its row's `where`."""

    id: str
    at: datetime
    where: str


def _refused(account: Account, what: str, exc: Exception) -> SendError:
    from ..platforms.mastodon_api import Refused

    error = exc.outcome.error if isinstance(exc, Refused) else str(exc)
    return SendError(
        f"account {account.name}: {what}: {error}",
        f"check the account with `plurspool accounts test {account.name}` (the token needs the "
        "read:statuses scope to list and write:statuses to delete)",
    )


def fetch(client: Client, account: Account) -> tuple[list[Row | Bad], list[Remote]]:
    """Every scheduled status of the account, soonest first, as rows."""
    from ..platforms.mastodon_api import Refused

    found: dict[str, Mapping[str, Any]] = {}
    max_id: str | None = None
    while True:
        try:
            _, page = client.call("scheduled_statuses", max_id=max_id, limit=PAGE)
        except Refused as exc:
            raise _refused(account, "listing its scheduled statuses", exc) from None
        fresh = [s for s in page if isinstance(s, Mapping) and str(s.get("id")) not in found]
        found.update((str(s.get("id")), s) for s in fresh)
        if not fresh or len(page) < PAGE:
            break
        max_id = str(fresh[-1].get("id"))
    statuses = sorted(found.values(), key=lambda s: (str(s.get("scheduled_at")), str(s.get("id"))))
    rows: list[Row | Bad] = []
    remotes: list[Remote] = []
    instance = str(account.options["instance"]).rstrip("/")
    for status in statuses:
        where = f"scheduled status {status.get('id')}"
        try:
            row, at = _row(status, where, account.name, instance, client.session.get)
        except ValueError as exc:
            rows.append(Bad(where, str(exc)))
            continue
        rows.append(row)
        remotes.append(Remote(str(status["id"]), at, where))
    return rows, remotes


def _row(
    status: Mapping[str, Any], where: str, account: str, instance: str, get: Callable[..., Any]
) -> tuple[Row, datetime]:
    from ..post import Media

    params = status.get("params")
    if not isinstance(params, Mapping):
        raise ValueError("the server sent no `params` for it")
    try:
        at = datetime.fromisoformat(str(status.get("scheduled_at")).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"its time {status.get('scheduled_at')!r} is not ISO 8601") from None
    if params.get("poll"):
        raise ValueError("it has a poll, which an import does not carry over; post it by hand")
    if params.get("in_reply_to_id"):
        raise ValueError(
            f"it replies to status {params['in_reply_to_id']}, which a post file cannot name; "
            "leave it on the server, or delete it there"
        )
    media: list[Media] = []
    files: dict[str, bytes] = {}
    for attachment in status.get("media_attachments") or []:
        name, content = _download(attachment, account, get)
        files[name] = content
        alt = attachment.get("description")
        media.append(Media(f"media/{name}", str(alt) if alt else None))
    text = params.get("text") or ""
    if not str(text).strip():
        raise ValueError("its text is empty")
    visibility = params.get("visibility")
    row = Row(
        where=where,
        seed=f"mastodon-scheduled\0{instance}\0{account}\0{status.get('id')}".encode(),
        text=str(text),
        at=at,
        platforms=(account,),
        cw=str(params["spoiler_text"]) if params.get("spoiler_text") else None,
        language=str(params["language"]) if params.get("language") else None,
        visibility=VISIBILITY.get(str(visibility)) if visibility else None,
        sensitive=True if params.get("sensitive") else None,
        media=media,
        files=files,
    )
    return row, at


def _download(
    attachment: Mapping[str, Any], account: str, get: Callable[..., Any]
) -> tuple[str, bytes]:
    """An attachment's file (its name under media/, its bytes), or ValueError saying why not."""
    url = str(attachment.get("url") or attachment.get("remote_url") or "")
    media_id = "".join(c for c in str(attachment.get("id", "")) if c.isalnum())
    if urllib.parse.urlsplit(url).scheme not in ("http", "https") or not media_id:
        raise ValueError(f"its attachment {attachment.get('id')} has no URL to download")
    try:
        response = get(url, timeout=30, stream=True)
        try:
            if response.status_code != 200:
                raise ValueError(f"downloading {url} answered HTTP {response.status_code}")
            content = b""
            for chunk in response.iter_content(1 << 16):
                content += chunk
                if len(content) > MAX_MEDIA:
                    raise ValueError(f"{url} is over {MAX_MEDIA >> 20} MiB")
            kind = str(response.headers.get("Content-Type", "")).split(";")[0].strip()
        finally:
            response.close()
    except OSError as exc:  # requests' errors are OSErrors
        raise ValueError(f"cannot download {url}: {type(exc).__name__}") from None
    suffix = PurePosixPath(urllib.parse.urlsplit(url).path).suffix.lower()
    if not suffix or len(suffix) > 6 or not suffix[1:].isalnum():
        suffix = mimetypes.guess_extension(kind) or ".bin"
    return f"mastodon/{account}-{media_id}{suffix}", content


def delete(
    client: Client, account: Account, remotes: Sequence[Remote], now: Callable[[], datetime]
) -> tuple[list[Remote], list[tuple[Remote, str]]]:
    """Delete each of `remotes` on the server (their files are durable in the spool), except
    those due within GRACE of now; (deleted, kept with why)."""
    from ..platforms.mastodon_api import Refused

    deleted: list[Remote] = []
    kept: list[tuple[Remote, str]] = []
    for remote in remotes:
        if remote.at - now() < GRACE:
            kept.append((remote, "due within 5 minutes: Mastodon may be publishing it"))
            continue
        try:
            client.call("scheduled_status_delete", remote.id)
        except Refused as exc:
            if exc.code == 404:  # gone meanwhile (published, or deleted by hand)
                kept.append((remote, "it was gone already (published, or deleted there)"))
                continue
            kept.append((remote, f"deleting it failed: {exc.outcome.error}"))
            continue
        deleted.append(remote)
    return deleted, kept
