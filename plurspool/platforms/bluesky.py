"""The `bluesky` platform: `app.bsky.feed.post` records written to a PDS over XRPC.

Login. The account logs in at its configured `service` with `handle` and an app password
(`password_cmd`, `password_file` or `PLURSPOOL_<ACCOUNT>_PASSWORD`). The session (access and
refresh JWTs) is kept in `$XDG_STATE_HOME/plurspool/bluesky/<account>.session.json`, mode 0600,
and refreshed when its access token is about to expire, because createSession is limited to 30
calls per 5 minutes. Every request goes to the configured `service`, never elsewhere. The XRPC
client and the session are in `bluesky_xrpc`.

Sending once. Each thread part gets a record key (a TID in the second of the post's time, derived
from the idempotency key, so the same on every host) before the first attempt, saved with
`job.save`, so a record can only ever be created under that key; a second host's createRecord
meets the first host's record. After a timeout or a 5xx answer,
and on every later attempt (or one in doubt), `com.atproto.repo.getRecord` decides whether a part
is already there: the PDS answers 500, not "exists", when a key is used twice. The parts already
written are saved too, so a retry resumes the thread where it stopped. A repost is one
`app.bsky.feed.repost` record, its key fixed and saved the same way.

Text. A part may hold 300 graphemes and 3000 UTF-8 bytes (`PostMeasure`; a longer one is
auto-split into several records, `fit.thread`). Links, hashtags (and cashtags) become
facets with UTF-8 byte offsets, as the official app detects them; `@handle` mentions are resolved
to DIDs at send time, and one that does not resolve stays plain text. Parts 2..n reply to the
previous part, with the first as root. Up to 4 images (JPEG, PNG, GIF, WebP; 2,000,000 bytes
each) go on the first part, with their alt text. `language` becomes `langs`.

Content warnings. Bluesky has no free-text content warning, and no way to hide text. So:
- `cw: T` is shown, not hidden: every part starts with the line `CW: T` and a blank line (this
  counts toward the 300 graphemes). It is not turned into a label: Bluesky's self-labels name
  specific content (sexual, nudity, porn, graphic-media) and a CW can be about anything.
- `sensitive: true` puts the images behind Bluesky's "graphic-media" self-label, the only
  non-sexual label that hides media, like Mastodon's sensitive flag. Without images it has
  nothing to hide, and `check` says so; a `cw` alone does not hide images (`check` says that too).
- `visibility`: Bluesky posts are always public. `unlisted` is sent publicly with a warning;
  `followers` and `direct` are refused, since sending them publicly would break their promise.

The atproto SDK (for its facet detection, ported from the official app) is imported only when a
post is sent; HTTP goes through httpx, which the SDK depends on.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import Account
from ..errors import ConfigError, SendError
from ..hosts import record_keys
from ..post import Post
from ..post.repost import BLUESKY_URI, BLUESKY_URL
from ..split import Measure, graphemes
from . import fit
from .base import DeleteJob, Issue, Job, Outcome
from .bluesky_xrpc import POST_NSID, REPOST_NSID, Client, XrpcError
from .media import media_error, open_media, read_media

MAX_GRAPHEMES = 300
MAX_BYTES = 3000
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 2_000_000

# --- record keys ------------------------------------------------------------------------------

_B32 = "234567abcdefghijklmnopqrstuvwxyz"


def tid(micros: int, clock_id: int) -> str:
    """A TID record key: 13 base32-sortable chars of (microseconds << 10 | clock id)."""
    n = ((micros & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    return "".join(_B32[(n >> shift) & 31] for shift in range(60, -5, -5))


def post_tids(key: str, due: datetime, count: int) -> list[str]:
    """The record keys of a thread's `count` records: increasing TIDs in the second of the
    post's time, derived from its idempotency key, the same on every host
    (`hosts.record_keys`)."""
    return [tid(micros, clock_id) for micros, clock_id in record_keys(key, due, count)]


# --- text -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostMeasure:
    """A post's text as Bluesky counts it (`split.Measure`): at most 300 graphemes and 3000
    UTF-8 bytes, the `CW:` line included."""

    cw: str | None
    limit: int = MAX_GRAPHEMES

    def sent(self, text: str) -> str:
        """The record's text for a part: with the `CW:` line when the post has a cw."""
        return f"CW: {self.cw}\n\n{text}" if self.cw else text

    def count(self, text: str) -> int:
        return graphemes(self.sent(text))

    def fits(self, text: str) -> bool:
        sent = self.sent(text)
        if len(sent.encode("utf-8")) > MAX_BYTES:
            return False
        # A grapheme holds at least one code point: a short text needs no count.
        return len(sent) <= self.limit or graphemes(sent) <= self.limit


def part_texts(post: Post, account: Account) -> list[str]:
    """The text of each record of the thread as sent: split to fit (plurspool(5),
    AUTO-SPLIT), with the `CW:` line when the post has a cw."""
    measure = PostMeasure(post.field_for(account.name, "cw"))
    return [measure.sent(p) for p in fit.thread(post, account, measure).texts]


def facets(text: str, resolve: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """Link, tag and mention facets of `text`, with UTF-8 byte offsets, sorted."""
    from atproto_client.utils import (  # type: ignore[import-untyped]
        facet_detection as fd,
    )

    out: list[dict[str, Any]] = []
    for f in fd.detect_facets(text):
        feature = f.features[0]
        if hasattr(feature, "uri"):
            feat = {"$type": "app.bsky.richtext.facet#link", "uri": feature.uri}
        else:
            feat = {"$type": "app.bsky.richtext.facet#tag", "tag": feature.tag}
        out.append(_facet(f.index.byte_start, f.index.byte_end, feat))
    dids: dict[str, str | None] = {}
    for m in fd.detect_mentions(text):
        handle = m.handle.lower()
        if handle not in dids:
            dids[handle] = resolve(handle)
        did = dids[handle]
        if did is not None:
            feat = {"$type": "app.bsky.richtext.facet#mention", "did": did}
            out.append(_facet(m.byte_start, m.byte_end, feat))
    return sorted(out, key=lambda f: int(f["index"]["byteStart"]))


def _facet(start: int, end: int, feature: dict[str, Any]) -> dict[str, Any]:
    return {"index": {"byteStart": start, "byteEnd": end}, "features": [feature]}


# --- images -----------------------------------------------------------------------------------


def image_type(head: bytes) -> str | None:
    """The MIME type of an image Bluesky takes, from its first bytes, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF or JPEG image, or None when unknown."""
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:3] == b"GIF" and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data) and data[i] == 0xFF:
            marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(w), int(h)
            i += 2 + length
    return None


def _media_issues(post: Post, spool_root: Path) -> list[Issue]:
    issues: list[Issue] = []
    if len(post.media) > MAX_IMAGES:
        issues.append(
            Issue("error", f"{len(post.media)} media files; Bluesky takes {MAX_IMAGES} at most")
        )
    for m in post.media:
        try:
            # Never through a symlink, never blocking on a FIFO.
            with os.fdopen(open_media(spool_root, m.path), "rb") as f:
                head = f.read(16)
                size = os.fstat(f.fileno()).st_size
        except OSError:
            continue  # a missing file is reported by the post checks, and fails the send
        if image_type(head) is None:
            issues.append(
                Issue(
                    "error",
                    f"{m.path} is not a JPEG, PNG, GIF or WebP image; Bluesky takes images only",
                )
            )
        elif size > MAX_IMAGE_BYTES:
            issues.append(
                Issue(
                    "error",
                    f"{m.path} is {size:,} bytes; Bluesky takes "
                    f"{MAX_IMAGE_BYTES:,} bytes per image at most",
                )
            )
        if not m.alt:
            issues.append(Issue("warning", f"{m.path} has no alt text"))
    return issues


# --- check ------------------------------------------------------------------------------------


def issues(post: Post, account: Account, spool_root: Path) -> list[Issue]:
    """Everything that keeps `post` from being sent to `account` as it is, and warnings."""
    name = account.name
    out: list[Issue] = []
    cw = post.field_for(name, "cw")
    measure = PostMeasure(cw)
    with_cw = " (with its CW line)" if cw else ""
    fix = f"shorten it, split it with a --- line, or give {name} its own text in overrides"

    def describe(where: str, text: str) -> str:
        sent = measure.sent(text)
        count, size = graphemes(sent), len(sent.encode("utf-8"))
        if count <= MAX_GRAPHEMES and size > MAX_BYTES:
            return f"{where} is {size} bytes long in UTF-8{with_cw}; Bluesky allows {MAX_BYTES}"
        return f"{where} is {count} graphemes long{with_cw}; Bluesky allows {MAX_GRAPHEMES}"

    texts = [measure.sent(p) for p in post.parts_for(name)]
    if fit.split_mode(post, account) == "auto":
        out.extend(fit.issues(post, account, measure, describe))
        texts = []  # every part of the split thread fits
    for i, text in enumerate(texts, 1):
        where = f"part {i} of {len(texts)}" if len(texts) > 1 else "the text"
        count = graphemes(text)
        if count > MAX_GRAPHEMES:
            out.append(
                Issue(
                    "error",
                    f"{where} is {count} graphemes long{with_cw}; Bluesky allows "
                    f"{MAX_GRAPHEMES} (split: off): {fix}",
                )
            )
        size = len(text.encode("utf-8"))
        if size > MAX_BYTES:
            out.append(
                Issue(
                    "error",
                    f"{where} is {size} bytes long in UTF-8{with_cw}; Bluesky allows "
                    f"{MAX_BYTES} (split: off): {fix}",
                )
            )
    visibility = post.field_for(name, "visibility")
    if visibility in ("followers", "direct"):
        out.append(
            Issue(
                "error",
                f"visibility: {visibility} cannot be honoured: Bluesky posts are always public; "
                f"send it elsewhere, or set visibility: public for {name} in overrides",
            )
        )
    elif visibility == "unlisted":
        out.append(Issue("warning", "Bluesky has no unlisted posts; it will be public"))
    out.extend(_media_issues(post, spool_root))
    out.extend(_card_issues(post, name, spool_root))
    target = None if post.quote is None else post.quote.target(name)
    if target is not None and not target.startswith("@") and quote_ref(target) is None:
        assert post.quote is not None
        out.append(
            Issue(
                "error",
                f"line {post.quote.line}: `quote`: {target[:60]} is not a Bluesky post; "
                "write its https://bsky.app/profile/.../post/... URL or at:// URI",
            )
        )
    sensitive = post.field_for(name, "sensitive")
    if sensitive and not post.media:
        out.append(Issue("warning", "sensitive: true hides only images on Bluesky; there are none"))
    elif cw and post.media and not sensitive:
        out.append(
            Issue(
                "warning",
                "a cw does not hide images on Bluesky; add sensitive: true to put them behind "
                "a graphic-media warning",
            )
        )
    return sorted(out, key=lambda i: i.level != "error")


def _card_issues(post: Post, name: str, spool_root: Path) -> list[Issue]:
    card = post.card
    if card is not None and card.mode == "off":
        return []
    index = card_part(post, name)
    if card is None or card.mode == "auto":
        if index is None:
            return []
        url = first_link(post.parts_for(name)[index]) or ""
        return [
            Issue(
                "warning",
                f"no link card for {url[:80]} yet: it is fetched when the post is taken in "
                "from new/ (a failed fetch is logged, and the post goes without one)",
            )
        ]
    out = []
    if index is None:
        out.append(
            Issue(
                "warning",
                f"line {card.line}: `card` is not shown: no part has a URL and no images",
            )
        )
    if card.image:
        try:
            with os.fdopen(open_media(spool_root, card.image), "rb") as f:
                head = f.read(16)
        except OSError as exc:
            return [
                *out,
                Issue("error", f"line {card.line}: `card.image`: {media_error(card.image, exc)}"),
            ]
        if image_type(head) is None:
            out.append(
                Issue("error", f"line {card.line}: `card.image` {card.image} is not an image")
            )
    return out


# --- sending ----------------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_LINK = re.compile(r"https?://[^\s<>\"']+")


def first_link(text: str) -> str | None:
    """The first http(s) URL in `text`, without the punctuation that ends a sentence."""
    m = _LINK.search(text)
    return None if m is None else m.group(0).rstrip(".,;:!?)]}")


def card_part(post: Post, account: str) -> int | None:
    """The part that carries the link card: the first with a URL and no images (images go
    on the first part)."""
    for index, text in enumerate(post.parts_for(account)):
        if first_link(text) is not None and not (index == 0 and post.media):
            return index
    return None


def card_target(post: Post, accounts: list[str]) -> str | None:
    """The URL whose card intake fetches for these bluesky accounts (the first's text), or
    None: no such account, `card` not `auto` (the default), or no part to carry it."""
    if not accounts or (post.card is not None and post.card.mode != "auto"):
        return None
    index = card_part(post, accounts[0])
    return None if index is None else first_link(post.parts_for(accounts[0])[index])


def quote_ref(target: str) -> tuple[str, str] | None:
    """(handle or DID, record key) of a bsky.app post URL or an at:// post URI, else None."""
    m = BLUESKY_URL.fullmatch(target) or BLUESKY_URI.fullmatch(target)
    return (m.group(1), m.group(2)) if m else None


def _quoted(client: Client, job: Job, key: str = "quote") -> dict[str, str] | None:
    """The strong ref (uri, cid) of the post that `job` quotes (or reposts), or None."""
    quoted = job.repost if key == "repost" else job.quote
    if quoted is None:
        return None
    target = quoted.id or quoted.url or ""
    ref = quote_ref(target)
    if ref is None:
        raise SendError(f"{key}: {target} is not a Bluesky post (https://bsky.app/... or at://)")
    repo, rkey = ref
    did = repo if repo.startswith("did:") else client.resolve(repo)
    if did is None:
        raise SendError(f"{key}: cannot resolve {target}: the handle {repo} does not resolve")
    found = client.get_record(did, rkey, f"looking up the {key}ed post")
    if found is None:
        raise SendError(f"{key}: cannot resolve {target}: there is no post {target}")
    return found


def _repost(client: Client, job: Job, did: str) -> dict[str, str]:
    """Repost what `job.repost` names (plurspool(5), `repost`) as an `app.bsky.feed.repost`
    record whose key was fixed and saved before the first attempt; a retry looks first."""
    material = dict(job.material)
    rkey = material.get("repost_rkey")
    if not isinstance(rkey, str):
        rkey = material["repost_rkey"] = post_tids(job.idempotency_key, job.due, 1)[0]
        job.save(material)
    elif (found := client.get_record(did, rkey, "looking for the repost", REPOST_NSID)) is not None:
        return found
    if job.undo is not None and job.undo.id and material.get("undone") != job.undo.id:
        client.delete_record(job.undo.id, "deleting the previous repost")
        material["undone"] = job.undo.id
        job.save(material)
    subject = _quoted(client, job, "repost")
    record = {"$type": REPOST_NSID, "subject": subject, "createdAt": _now_iso()}
    return client.create_record(did, rkey, record, "creating the repost", REPOST_NSID)


def _external(client: Client, job: Job, index: int) -> dict[str, Any] | None:
    """The resolved link card, on the part that carries it (intake fetched it: nothing is
    fetched here but its stored thumbnail)."""
    card = job.post.card
    if card is None or card.mode != "set" or card_part(job.post, job.account.name) != index:
        return None
    external: dict[str, Any] = {
        "uri": card.url,
        "title": card.title or "",
        "description": card.description or "",
    }
    if card.image:
        try:
            data = read_media(job.spool_root, card.image)
        except OSError as exc:
            raise SendError(media_error(card.image, exc)) from None
        mime = image_type(data[:16])
        if mime is None:
            raise SendError(f"{card.image} is not a JPEG, PNG, GIF or WebP image")
        external["thumb"] = client.upload(data, mime, f"uploading the card's image {card.image}")
    return {"$type": "app.bsky.embed.external", "external": external}


def _embed(client: Client, job: Job, index: int = 0) -> dict[str, Any] | None:
    card = _external(client, job, index)
    if index > 0:
        return card
    quoted = _quoted(client, job)
    record = None if quoted is None else {"$type": "app.bsky.embed.record", "record": quoted}
    media = _images(client, job) or card
    if record is not None and media is not None:
        return {"$type": "app.bsky.embed.recordWithMedia", "record": record, "media": media}
    return record or media


def _images(client: Client, job: Job) -> dict[str, Any] | None:
    if not job.post.media:
        return None
    images = []
    for n, m in enumerate(job.post.media, 1):
        try:
            data = read_media(job.spool_root, m.path)
        except OSError as exc:
            raise SendError(media_error(m.path, exc)) from None
        mime = image_type(data[:16])
        if mime is None:
            raise SendError(f"{m.path} is not a JPEG, PNG, GIF or WebP image")
        blob = client.upload(data, mime, f"uploading image {n} ({m.path})")
        image: dict[str, Any] = {"alt": m.alt or "", "image": blob}
        size = image_size(data)
        if size and size[0] > 0 and size[1] > 0:
            image["aspectRatio"] = {"width": size[0], "height": size[1]}
        images.append(image)
    return {"$type": "app.bsky.embed.images", "images": images}


def _record(
    client: Client, job: Job, text: str, index: int, done: list[dict[str, str]]
) -> dict[str, Any]:
    name = job.account.name
    record: dict[str, Any] = {"$type": POST_NSID, "text": text, "createdAt": _now_iso()}
    found = facets(text, client.resolve)
    if found:
        record["facets"] = found
    language = job.post.field_for(name, "language")
    if language:
        record["langs"] = [language]
    if index > 0:
        record["reply"] = {"root": done[0], "parent": done[index - 1]}
    embed = _embed(client, job, index)
    if embed is not None:
        record["embed"] = embed
        if index == 0 and job.post.media and job.post.field_for(name, "sensitive"):
            record["labels"] = {
                "$type": "com.atproto.label.defs#selfLabels",
                "values": [{"val": "graphic-media"}],
            }
    return record


def _outcome(exc: XrpcError, client: Client) -> Outcome:
    text = client.scrub(f"{client.service}: {exc.text()}")
    if exc.temporary:
        return Outcome("temporary", error=text, retry_after=exc.retry_after, hold=client.hold)
    return Outcome("permanent", error=text, hold=client.hold)


class Bluesky:
    material_first = True  # see base.Platform
    polls = False

    def measure(self, post: Post, account: Account, state_dir: Path) -> Measure:
        return PostMeasure(post.field_for(account.name, "cw"))

    def check(self, post: Post, account: Account, spool_root: Path) -> list[Issue]:
        return issues(post, account, spool_root)

    def test(self, account: Account, state_dir: Path) -> dict[str, Any]:
        client = Client(account, state_dir)
        try:
            s = client.session(login=True)
            info = client.authed("com.atproto.server.getSession", step="checking the session")
        except XrpcError as exc:
            raise SendError(
                f"account {account.name}: {client.scrub(f'{client.service}: {exc.text()}')}",
                "try again later" if exc.temporary else f"check accounts.{account.name}",
            ) from None
        finally:
            client.close()
        return {
            "account": account.name,
            "platform": "bluesky",
            "service": client.service,
            "handle": str(info.get("handle") or s.current_handle),
            "did": s.did,
            "max_graphemes": MAX_GRAPHEMES,
            "max_images": MAX_IMAGES,
        }

    def delete(self, job: DeleteJob) -> Outcome:
        """deleteRecord for every record of the thread, replies first (plurspool(5),
        `expires`): the records this host made, else the one its result names."""
        uris = [str(r["uri"]) for r in job.sent.get("records") or [] if r.get("uri")]
        uris = uris or ([job.result.id] if job.result.id else [])
        client = Client(job.account, job.state_dir, job.deadline)
        try:
            for n, uri in enumerate(reversed(uris)):
                client.delete_record(uri, f"deleting part {len(uris) - n} of {len(uris)}")
        except XrpcError as exc:
            return _outcome(exc, client)
        except (ConfigError, SendError, ValueError) as exc:
            text = str(exc) if isinstance(exc, ValueError) else exc.message
            return Outcome("permanent", error=client.scrub(text))
        finally:
            client.close()
        return Outcome("sent", hold=client.hold)

    def send(self, job: Job) -> Outcome:
        errors = [
            i.message for i in issues(job.post, job.account, job.spool_root) if i.level == "error"
        ]
        if errors:
            return Outcome("permanent", error="; ".join(errors))
        texts = [] if job.repost else part_texts(job.post, job.account)
        material = dict(job.material)
        rkeys = [str(k) for k in material.get("rkeys") or []]
        # Keys fixed by an earlier attempt: its records may exist, so look before creating.
        # (An attempt in doubt without saved keys made no request: keys are saved first.)
        resumed = bool(rkeys)
        if len(rkeys) < len(texts):
            rkeys += post_tids(job.idempotency_key, job.due, len(texts))[len(rkeys) :]
            material["rkeys"] = rkeys
            job.save(material)
        done: list[dict[str, str]] = [dict(r) for r in material.get("records") or []]
        client = Client(job.account, job.state_dir, job.deadline)
        try:
            s = client.session()
            if job.repost is not None:  # one repost record, no text (plurspool(5), `repost`)
                done = [_repost(client, job, s.did)]
            for i, text in enumerate(texts):
                if i < len(done):
                    continue
                if i > 0 and job.deadline() <= 0:
                    return Outcome(
                        "temporary",
                        error=f"stopped before part {i + 1} of {len(texts)}: shutting down",
                    )
                step = f"part {i + 1} of {len(texts)}" if len(texts) > 1 else "the post"
                ref = None
                if resumed:
                    ref = client.get_record(s.did, rkeys[i], f"looking for {step}")
                if ref is None:
                    record = _record(client, job, text, i, done)
                    ref = client.create_record(s.did, rkeys[i], record, f"creating {step}")
                done.append(ref)
                material["records"] = done
                job.save(material)
        except XrpcError as exc:
            return _outcome(exc, client)
        except (ConfigError, SendError) as exc:
            text = f"{exc.message}; {exc.hint}" if exc.hint else exc.message
            return Outcome("permanent", error=client.scrub(text))
        finally:
            client.close()
        rkey = done[0]["uri"].rsplit("/", 1)[-1]
        url = f"https://bsky.app/profile/{s.current_handle}/post/{rkey}"
        return Outcome(
            "sent", remote_id=done[0]["uri"], url=None if job.repost else url, hold=client.hold
        )


PLATFORM = Bluesky()
