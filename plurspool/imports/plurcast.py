"""`import plurcast`: Plurcast's database (its posts and per-platform records) → `Row`s, read
only (plurspool(1), IMPORTS).

The schema is Plurcast's own, from its migrations (libplurcast/migrations/001–004): `posts`
(id, content, created_at, scheduled_at, status, metadata JSON with `platforms`) and
`post_records` (one row per attempt on a platform: platform_post_id, posted_at, success,
error_message). A post's status decides its state: scheduled → scheduled/, draft and pending
→ drafts/, posted → sent/ (failed/ when the last record of one of its platforms failed),
failed → failed/; records become per-account results, a Plurcast platform name being the
account of the same name. The seed is the post's UUID.
"""

from __future__ import annotations

import json
import sqlite3  # Plurcast's database, opened read-only here (see pyproject's ruff allowance)
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import when
from ..errors import InvalidInput
from . import Bad, Row

if TYPE_CHECKING:
    from ..post import Media

#: Plurcast's status → the state its post is imported into (an unknown one is read as
#: pending, as Plurcast itself reads it).
STATES = {
    "scheduled": "scheduled",
    "draft": "drafts",
    "pending": "drafts",
    "posted": "sent",
    "failed": "failed",
}


def open_db(path: Path) -> sqlite3.Connection:
    """The database at `path`, read-only (a URI with mode=ro: nothing is created or written)."""
    from urllib.parse import quote

    if not path.is_file():
        raise InvalidInput(
            f"no Plurcast database at {path}",
            "name it: `plurspool import plurcast PATH` (Plurcast keeps it in "
            "$XDG_DATA_HOME/plurcast/posts.db, or $PLURCAST_DB_PATH)",
        )
    try:
        db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
        db.execute("SELECT id, content, scheduled_at, status, metadata FROM posts LIMIT 1")
        db.execute("SELECT post_id, platform, platform_post_id, posted_at, success, "
                   "error_message FROM post_records LIMIT 1")  # fmt: skip
    except sqlite3.Error as exc:
        raise InvalidInput(
            f"{path} is not a Plurcast database: {exc}",
            "name Plurcast's posts.db (its tables posts and post_records)",
        ) from None
    return db


def _at(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value is not None else None


def read(path: Path) -> list[Row | Bad]:
    """Every post of the database, oldest first."""
    from ..post import Result

    db = open_db(path)
    try:
        records: dict[str, list[tuple[Any, ...]]] = {}
        for rec in db.execute(
            "SELECT post_id, platform, platform_post_id, posted_at, success, error_message "
            "FROM post_records ORDER BY id"
        ):
            records.setdefault(rec[0], []).append(rec)
        attachments: dict[str, list[tuple[Any, ...]]] = {}
        has = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'attachments'").fetchone()
        for att in (
            db.execute(
                "SELECT post_id, file_path, file_hash, alt_text FROM attachments "
                "ORDER BY created_at, id"
            )
            if has
            else ()
        ):
            attachments.setdefault(att[0], []).append(att)
        posts = db.execute(
            "SELECT id, content, scheduled_at, status, metadata FROM posts ORDER BY created_at, id"
        ).fetchall()
    except sqlite3.Error as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", "is Plurcast writing it?") from None
    finally:
        db.close()
    out: list[Row | Bad] = []
    for post_id, content, scheduled_at, status, metadata in posts:
        where = f"Plurcast post {post_id}"
        try:
            platforms = _platforms(metadata)
            at = _at(scheduled_at)
        except (ValueError, TypeError, OverflowError) as exc:
            out.append(Bad(where, f"unreadable: {exc}"))
            continue
        results: dict[str, Result] = {}
        for _, platform, remote, posted_at, success, error in records.get(post_id, []):
            tries = results[platform].attempts + 1 if platform in results else 1
            earlier = results.get(platform)
            if earlier is not None and earlier.error is None and not success:
                results[platform] = Result(earlier.id, None, None, tries, earlier.at)
                continue  # a later failure does not undo a success
            stamp = _at(posted_at)
            results[platform] = Result(
                id=str(remote) if success and remote is not None else None,
                error=None if success else (error or "failed in Plurcast (no message)"),
                attempts=tries,
                at=when.iso_utc(stamp) if stamp else None,
            )
        state = STATES.get(str(status), "drafts")
        failed = {p: r.error for p, r in results.items() if r.error is not None}
        if state == "sent" and failed:
            state = "failed"
        reason = None
        if state == "failed":
            reason = "; ".join(f"{p}: {e}" for p, e in sorted(failed.items()))
            reason = f"failed in Plurcast: {reason or 'no platform record says why'}"
        media, files, gone = _attachments(attachments.get(post_id, []))
        if gone and state in ("scheduled", "drafts"):
            out.append(Bad(where, f"its attachment {gone[0]} cannot be read; put it back"))
            continue
        if platforms is None and results:
            platforms = tuple(results)
        out.append(
            Row(
                where=where,
                seed=b"plurcast\0" + str(post_id).encode(),
                text=str(content),
                at=at,
                platforms=platforms,
                state=state,
                results=results if state in ("sent", "failed") else {},
                error=reason,
                media=media,
                files=files,
            )
        )
    return out


def _attachments(rows: list[tuple[Any, ...]]) -> tuple[list[Media], dict[str, bytes], list[str]]:
    """A post's attachments as media of its own under media/plurcast/ (named by their hash),
    their contents, and the paths that could not be read (a sent post's history keeps going
    without them)."""
    from ..post import Media

    media, files, gone = [], {}, []
    for _, file_path, file_hash, alt in rows:
        path = Path(str(file_path))
        try:
            content = path.read_bytes()
        except OSError as exc:
            gone.append(f"{path} ({exc.strerror})")
            continue
        digest = "".join(c for c in str(file_hash).lower() if c in "0123456789abcdef")[:16]
        name = f"plurcast/{digest or 'file'}{path.suffix.lower()}"
        files[name] = content
        media.append(Media(f"media/{name}", str(alt) if alt else None))
    return media, files, gone


def _platforms(metadata: Any) -> tuple[str, ...] | None:
    """The `platforms` Plurcast wrote into a post's metadata JSON, if any."""
    if not metadata:
        return None
    meta = json.loads(metadata)
    names = meta.get("platforms") if isinstance(meta, dict) else None
    if not names:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("its metadata's `platforms` is not a list of names")
    return tuple(names)
