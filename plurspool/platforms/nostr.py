"""The `nostr` platform: kind-1 notes signed with the account's key, published to its relays.

- The key is the account's secret `key` (`key_cmd`, `key_file` or $PLURSPOOL_<ACCOUNT>_KEY), as
  `nsec1...` (NIP-19) or 64 hex digits.
- Every thread part becomes one kind-1 event. Parts after the first reply to the thread with
  NIP-10 marked `e` tags: the second part carries only the `root` tag (a direct reply to the root,
  as NIP-10 says), later parts `root` plus `reply` (the previous part), each with a `p` tag for
  the author. `cw` (or `sensitive`) adds a NIP-36 `content-warning` tag, `language` NIP-32 `L`/`l`
  labels, every `#hashtag` a lower-cased `t` tag, and `expires` a NIP-40 `expiration` tag.
- Signed once: all parts are signed at the first attempt with created_at = the post's time (so
  every host signs events with the same ids) and saved with `job.save` before the first byte
  goes to a relay. A retry, or an attempt after a crash,
  resends the identical stored events: a relay that already has one answers "duplicate", which
  counts as accepted, so no note is ever posted twice. The only exception: when the post was
  edited and every relay explicitly refused the stored events (none can hold them), they are
  signed afresh from the new text.
- Per-relay progress is saved too, so that a retry goes only to the relays that have not yet
  accepted every part. The send succeeds when `min_relays` relays accepted every part; it fails
  for good when too few relays are left that have not refused for good (`invalid:`, `blocked:`...).
- The remote id is the first part's `note1...` id (NIP-19); there is no URL (no web address is
  canonical for a note).
- A repost (`repost:`) is one kind-6 event (NIP-18), signed once and sent like a note: the
  reposted note is fetched from the relays first, for its author's `p` tag and the content
  (`nostr_repost`).
- Media cannot be sent: Nostr has no upload of its own, and plurspool does not upload local files
  to a media server, so `check` reports a post with media as an error for nostr accounts. Link
  the file in the text instead.
- A note is public: `visibility: followers` or `direct` is an error, `unlisted` a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Account, secret_env_var
from ..errors import ConfigError, SendError
from ..post import Post
from ..split import Measure, NoFixedPoint, Unbreakable
from . import fit
from . import nostr_proto as proto
from .base import DeleteJob, Issue, Job, Outcome

MAX_CONTENT = 4096  # characters; nostr-relay's default max_event_size, and common elsewhere
RELAY_TIMEOUT = 10.0  # seconds for one relay: connect, send every part, read every answer
MATERIAL_VERSION = 1
EXPIRY_SLACK = 5.0  # seconds: an expiration tag sooner than this is left out (relays' clocks)

# OK false prefixes (NIP-01) that will not change on a retry of the same event.
PERMANENT_PREFIXES = frozenset(
    {"invalid", "blocked", "restricted", "pow", "rejected", "auth-required", "mute"}
)


# --- keys -------------------------------------------------------------------------------------


def load_key(account: Account) -> bytes:
    """The account's secret key; a ConfigError naming the account (never the key) otherwise."""
    name = account.name
    where = (
        f"set key_cmd or key_file under [accounts.{name}], "
        f"or ${secret_env_var(name, 'key')}, to an nsec1... or 64-hex secret key"
    )
    text = account.secret("key")
    if text is None:
        raise ConfigError(f"account {name}: no nostr key", where)
    try:
        return proto.parse_secret(text)
    except ValueError as exc:
        raise ConfigError(
            f"account {name}: the nostr key is not a usable secret key: {exc}", where
        ) from None


# --- events -----------------------------------------------------------------------------------


def _common_tags(post: Post, account: str) -> list[list[str]]:
    tags: list[list[str]] = []
    cw = post.field_for(account, "cw")
    if cw is not None:
        tags.append(["content-warning", cw])
    elif post.field_for(account, "sensitive"):
        tags.append(["content-warning", ""])
    language = post.field_for(account, "language")
    if language:
        tags.extend(proto.language_tags(language))
    return tags


def _expiration(job: Job, created_at: int, now: float) -> list[list[str]]:
    """A NIP-40 `expiration` tag when the post `expires` (plurspool(5)); a duration counts
    from `created_at` (the post's time: every host signs the same event). Relays refuse an
    event already expired: a post going out that late has no tag (its kind-5 request still
    deletes it when it expires)."""
    if job.post.expires is None:
        return []
    from datetime import UTC, datetime

    from ..post.expiry import instant

    sent = datetime.fromtimestamp(created_at, UTC)
    at = int(instant(job.post.expires, sent, job.timezone).timestamp())
    return [["expiration", str(at)]] if at > now + EXPIRY_SLACK else []


def _digest(parts: Sequence[str], common: list[list[str]], pubkey: str) -> str:
    """What the events were made from: a changed post makes a different digest."""
    data = json.dumps([list(parts), common, pubkey], ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


def quoting(job: Job) -> tuple[list[str], list[list[str]]]:
    """The parts to send and the first part's own tags: for a quote (NIP-18), a `q` tag and
    the `nostr:` reference at the end of the first part, unless it is there already."""
    parts = list(job.parts)
    quote = job.quote
    ref = None if quote is None else proto.event_ref(f"{quote.id or ''} {quote.url or ''}")
    if ref is None:
        return parts, []
    uri = f"nostr:{ref.bech32}"
    if uri not in parts[0]:
        parts[0] = f"{parts[0]}\n\n{uri}"
    tag = ["q", ref.event_id, ref.relay] + ([ref.author] if ref.author else [])
    return parts, [tag]


def build_events(
    secret: bytes,
    parts: Sequence[str],
    common: list[list[str]],
    created_at: int,
    relay_hint: str,
    first: Sequence[list[str]] = (),
) -> list[dict[str, Any]]:
    """Sign every part of a thread: part 1 is the root (with the tags `first`), the others
    reply with NIP-10 tags."""
    events: list[dict[str, Any]] = []
    pubkey = proto.public_key(secret)
    for text in parts:
        tags = [list(t) for t in common]
        if not events:
            tags.extend(list(t) for t in first)
        if events:
            root, parent = events[0]["id"], events[-1]["id"]
            tags.append(["e", root, relay_hint, "root"])
            if parent != root:
                tags.append(["e", parent, relay_hint, "reply"])
            tags.append(["p", pubkey])
        tags.extend(["t", t] for t in proto.hashtags(text))
        events.append(proto.sign_event(secret, created_at, tags, text))
    return events


# --- talking to relays ------------------------------------------------------------------------


@dataclass
class RelayResult:
    """What one relay did with the events sent to it in this attempt."""

    url: str
    accepted: list[str] = field(default_factory=list)
    error: str | None = None
    permanent: bool = False
    transmitted: bool = False  # an EVENT went out and its answer is missing


def relay_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Connections:
    """Relay connections kept open for the rest of a sender's pass: 1,000 notes due at once go
    out over one connection per relay, not 1,000 handshakes. `release` closes them all."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: dict[str, Any] = {}  # url -> websockets ClientConnection

    def take(self, url: str) -> Any:
        with self.lock:
            return self.open.pop(url, None)

    def give(self, url: str, ws: Any) -> None:
        with self.lock:
            old, self.open[url] = self.open.get(url), ws
        if old is not None:
            _close(old)

    def release(self) -> None:
        with self.lock:
            conns, self.open = list(self.open.values()), {}
        for ws in conns:
            _close(ws)


_CONNECTIONS = _Connections()


def release() -> None:
    """Close the relay connections kept since the pass began, and forget the signing keys
    derived in it (the sender calls it at its end)."""
    _CONNECTIONS.release()
    proto.forget_keys()


def _close(ws: Any) -> None:
    with contextlib.suppress(Exception):
        ws.close()


def _publish(url: str, events: list[dict[str, Any]], timeout: float) -> RelayResult:
    """Send `events` in order to one relay, each after the previous one was accepted.

    A connection kept from an earlier post of the pass is used when there is one; if it turns
    out closed, the events still unanswered go again over a new one (the same signed events: a
    relay that has one already answers "duplicate").
    """
    from websockets.exceptions import ConnectionClosed, WebSocketException
    from websockets.sync.client import connect

    result = RelayResult(url)
    end = time.monotonic() + timeout

    def left() -> float:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    ws = _CONNECTIONS.take(url)
    reused = ws is not None
    while True:
        try:
            if ws is None:
                # Kept open past this call: entered by hand (the context manager would close it);
                # `_close` closes it.
                ws = connect(
                    url, open_timeout=left(), close_timeout=1.0, max_size=2**22
                ).__enter__()
            _send_events(ws, [e for e in events if e["id"] not in result.accepted], result, left)
            _CONNECTIONS.give(url, ws)  # answered in full (accepted or refused): keep it
            return result
        except ConnectionClosed as exc:
            _close(ws)
            ws = None
            if reused:  # the relay closed it while we kept it: once more, on a new one
                reused = False
                result.error, result.transmitted = None, False
                continue
            result.error = relay_reason(exc)
        except TimeoutError:
            result.error = "no answer within the time limit (timed out)"
        except (OSError, WebSocketException) as exc:
            result.error = relay_reason(exc)
        if ws is not None:
            _close(ws)  # in an unknown state: a late answer must not meet the next post
        return result


def _send_events(ws: Any, events: list[dict[str, Any]], result: RelayResult, left: Any) -> None:
    """Send events one by one over `ws`, recording what the relay answers in `result`.

    Returns once every event was answered, or at the first refusal: either way the connection
    can be used again. Raises what the connection raises (closed, timed out).
    """
    for event in events:
        result.transmitted = True  # from here on, the relay may have it
        ws.send(json.dumps(["EVENT", event], ensure_ascii=False))
        notice = ""
        while True:
            raw = ws.recv(timeout=left())
            try:
                msg = json.loads(raw)
            except (TypeError, ValueError):
                continue
            if not isinstance(msg, list) or not msg:
                continue
            if msg[0] == "NOTICE" and len(msg) > 1:
                notice = str(msg[1])[:200]
            # nostr-relay answers an invalid event with an empty id.
            if msg[0] == "OK" and len(msg) >= 3 and msg[1] in (event["id"], ""):
                break
        result.transmitted = False
        ok, text = msg[2] is True, str(msg[3] if len(msg) > 3 else "")[:300]
        prefix = text.split(":", 1)[0].strip().lower()
        if ok or prefix == "duplicate":
            result.accepted.append(event["id"])
            continue
        result.error = f"refused: {text or notice or 'no reason given'}"
        result.permanent = prefix in PERMANENT_PREFIXES
        return


def _publish_all(todo: dict[str, list[dict[str, Any]]], timeout: float) -> dict[str, RelayResult]:
    """Publish to every relay at once; a relay that is not done in time counts as no answer.

    A single relay is talked to in this thread (its own timeouts bound the wait).
    """
    if not todo:
        return {}
    if len(todo) == 1:
        [(url, events)] = todo.items()
        return {url: _publish(url, events, timeout)}
    pool = ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="nostr-relay")
    try:
        futures = {url: pool.submit(_publish, url, evs, timeout) for url, evs in todo.items()}
        wait_futures(futures.values(), timeout=timeout + 3.0)
        out = {}
        for url, fut in futures.items():
            if fut.done() and fut.exception() is None:
                out[url] = fut.result()
            else:
                why = (
                    "timed out" if not fut.done() else relay_reason(fut.exception() or Exception())
                )
                out[url] = RelayResult(url, error=why, transmitted=True)
        return out
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# --- the platform -----------------------------------------------------------------------------


def _relay_progress(material: dict[str, Any], url: str) -> dict[str, Any]:
    relays: dict[str, Any] = material.setdefault("relays", {})
    entry: dict[str, Any] = relays.setdefault(url, {"accepted": [], "state": "untried"})
    return entry


def _resign_is_safe(material: dict[str, Any]) -> bool:
    """Whether no relay can hold the stored events: each one refused them or was never reached."""
    relays = material.get("relays") or {}
    return bool(relays) and all(
        not r.get("accepted") and str(r.get("state", "")).startswith(("refused", "unreachable"))
        for r in relays.values()
    )


class Nostr:
    material_first = True  # see base.Platform
    polls = False

    def measure(self, post: Post, account: Account, state_dir: Path) -> Measure | None:
        return fit.max_length(account)

    def check(self, post: Post, account: Account, spool_root: Path) -> list[Issue]:
        name = account.name
        measure = fit.max_length(account)
        issues = fit.issues(post, account, measure, fit.describe_max_length(account))
        if post.media:
            paths = ", ".join(m.path for m in post.media)
            issues.append(
                Issue(
                    "error",
                    f"nostr: media needs a URL; local files are not uploaded ({paths}); "
                    "link the file in the text instead",
                )
            )
        visibility = post.field_for(name, "visibility")
        if visibility in ("followers", "direct"):
            issues.append(
                Issue(
                    "error", f"nostr: notes are public; `visibility: {visibility}` is not possible"
                )
            )
        elif visibility == "unlisted":
            issues.append(Issue("warning", "nostr: notes are public; `unlisted` is not honoured"))
        try:
            parts = fit.thread(post, account, measure).texts
        except (Unbreakable, NoFixedPoint):  # said above
            parts = post.parts_for(name)
        for number, text in enumerate(parts, 1):
            which = f"part {number}" if len(parts) > 1 else "the text"
            if len(text) > MAX_CONTENT:
                issues.append(
                    Issue(
                        "error",
                        f"nostr: {which} is {len(text)} characters; relays refuse more than "
                        f"{MAX_CONTENT}",
                    )
                )
            bad = proto.ambiguous_controls(text)
            if bad:
                issues.append(
                    Issue(
                        "error",
                        f"nostr: {which} holds control character(s) {', '.join(bad)}, which "
                        "relays hash differently; remove them",
                    )
                )
        target = None if post.quote is None else post.quote.target(name)
        if target and not target.startswith("@") and proto.event_ref(target) is None:
            assert post.quote is not None
            issues.append(
                Issue(
                    "error",
                    f"line {post.quote.line}: `quote`: {target[:60]} names no Nostr note; "
                    "write its nostr:note1... or nostr:nevent1... URI",
                )
            )
        cw = post.field_for(name, "cw")
        if cw and proto.ambiguous_controls(cw):
            issues.append(Issue("error", "nostr: the cw holds control characters; remove them"))
        return issues

    def test(self, account: Account, state_dir: Path) -> dict[str, Any]:
        secret = load_key(account)
        pubkey = proto.public_key(secret)
        relays = list(account.options["relays"])
        timeout = RELAY_TIMEOUT
        pool = ThreadPoolExecutor(max_workers=len(relays), thread_name_prefix="nostr-test")
        try:
            futures = {url: pool.submit(_probe, url, pubkey, timeout) for url in relays}
            wait_futures(futures.values(), timeout=timeout + 3.0)
            report = {}
            for url, fut in futures.items():
                if not fut.done():
                    report[url] = "timed out"
                elif fut.exception() is not None:
                    report[url] = relay_reason(fut.exception() or Exception())
                else:
                    report[url] = fut.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        answered = [u for u, r in report.items() if r == "ok"]
        need = int(account.options["min_relays"])
        if len(answered) < need:
            detail = "; ".join(f"{u}: {r}" for u, r in report.items() if r != "ok")
            raise SendError(
                f"account {account.name}: {len(answered)} of {len(relays)} relays answered, "
                f"{need} needed ({detail})",
                f"check the relays listed under [accounts.{account.name}] and your network",
            )
        return {
            "account": account.name,
            "platform": "nostr",
            "pubkey": proto.npub(pubkey),
            "relays": report,
            "answered": answered,
            "min_relays": need,
        }

    def send(self, job: Job) -> Outcome:
        account = job.account
        relays: list[str] = list(account.options["relays"])
        need = int(account.options["min_relays"])
        parts, first = quoting(job) if job.repost is None else ([], [])
        material: dict[str, Any] = json.loads(json.dumps(job.material or {}))
        events: list[dict[str, Any]] | None = material.get("events")
        if events:
            common = _common_tags(job.post, account.name) + first
            changed = material.get("digest") != _digest(parts, common, material.get("pubkey", ""))
            if changed and not job.in_doubt and _resign_is_safe(material):
                events = None
        if not events:
            secret = load_key(account)
            pubkey = proto.public_key(secret)
            common = _common_tags(job.post, account.name)
            if job.repost is not None:  # plurspool(5), `repost`: one kind-6 event
                from .nostr_repost import Unanswered, repost_events

                try:
                    events = repost_events(job, secret, relays)
                except Unanswered as exc:
                    return Outcome("temporary", error=str(exc))
                except SendError as exc:
                    return Outcome("permanent", error=exc.message)
            else:
                created = proto.created_at(job.due)
                tagged = common + _expiration(job, created, time.time())
                events = build_events(secret, parts, tagged, created, relays[0], first)
            material = {
                "version": MATERIAL_VERSION,
                "pubkey": pubkey,
                "digest": _digest(parts, common + first, pubkey),
                "events": events,
                "relays": {},
            }
        ids = [e["id"] for e in events]
        todo: dict[str, list[dict[str, Any]]] = {}
        for url in relays:
            progress = _relay_progress(material, url)
            missing = [e for e in events if e["id"] not in progress["accepted"]]
            if missing:
                todo[url] = missing
                progress["state"] = "sending"  # a crash from here on leaves it in doubt
        # Saved BEFORE the first byte goes out: a retry resends exactly these events.
        job.save(material)
        timeout = max(0.5, min(RELAY_TIMEOUT, job.deadline()))
        results = _publish_all(todo, timeout)
        for url, res in results.items():
            progress = _relay_progress(material, url)
            progress["accepted"] = [
                i for i in ids if i in set(progress["accepted"]) | set(res.accepted)
            ]
            if len(progress["accepted"]) == len(ids):
                progress["state"] = "accepted"
            elif res.error and res.error.startswith("refused") and not res.transmitted:
                progress["state"] = res.error
            elif res.transmitted:
                progress["state"] = f"in doubt: {res.error}"
            else:
                progress["state"] = f"unreachable: {res.error}"
        full = [u for u, p in material["relays"].items() if len(p["accepted"]) == len(ids)]
        if len(full) >= need:
            # No progress to keep: the sender records the success (were that record lost, the
            # next attempt would send the same events again, and the relays say "duplicate").
            # (A repost's own event is its last: a deletion of the previous one goes first.)
            return Outcome("sent", remote_id=proto.note(ids[-1 if job.repost else 0]), url=None)
        job.save(material)  # which relays have what, for the retry
        failures = [r for r in results.values() if r.error]
        detail = "; ".join(f"{r.url}: {r.error}" for r in failures) or "no relay to send to"
        summary = f"{len(full)} of {len(relays)} relays accepted the note, {need} needed: {detail}"
        # Relays that refused for good will refuse the same events again.
        hopeless = {r.url for r in failures if r.permanent}
        candidates = {u for u in relays if u not in hopeless} | set(full)
        if len(candidates) < need:
            return Outcome("permanent", error=summary)
        return Outcome("temporary", error=summary)

    def delete(self, job: DeleteJob) -> Outcome:
        """A NIP-09 kind-5 deletion request for every event of the thread (this host's signed
        events, else the note its result names), signed once and saved before it goes out;
        done when `min_relays` relays accepted it (plurspool(5), `expires`)."""
        account = job.account
        relays: list[str] = list(account.options["relays"])
        need = int(account.options["min_relays"])
        material = dict(job.material)
        event = material.get("event")
        if not isinstance(event, dict):
            sent = job.sent.get("events") or []
            ids = [str(e["id"]) for e in sent]
            ref = proto.event_ref(job.result.id or "") if not ids else None
            ids = ids or ([ref.event_id] if ref is not None else [])
            if not ids:
                return Outcome("permanent", error="no event id recorded to delete")
            # The kinds it deletes (NIP-09 `k`): 6 for a repost's event, else 1 (a note).
            kinds = sorted({str(e.get("kind", 1)) for e in sent}) or ["6" if job.repost else "1"]
            tags = [["e", i] for i in ids] + [["k", k] for k in kinds]
            event = proto.sign_event(load_key(account), int(time.time()), tags, "", kind=5)
            material["event"] = event
            job.save(material)
        accepted = set(material.get("accepted") or [])
        todo = {url: [event] for url in relays if url not in accepted}
        results = _publish_all(todo, max(0.5, min(RELAY_TIMEOUT, job.deadline())))
        accepted |= {url for url, res in results.items() if res.accepted}
        if len(accepted) >= need:
            return Outcome("sent")
        material["accepted"] = sorted(accepted)
        job.save(material)
        detail = "; ".join(f"{r.url}: {r.error}" for r in results.values() if r.error)
        return Outcome(
            "temporary",
            error=f"{len(accepted)} of {len(relays)} relays took the deletion, {need} needed: "
            f"{detail or 'no relay to send to'}",
        )


def _probe(url: str, pubkey: str, timeout: float) -> str:
    """Ask a relay for our profile: "ok" when it answers the subscription, else why not."""
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    end = time.monotonic() + timeout
    sub = "plurspool-test-" + os.urandom(4).hex()
    try:
        with connect(url, open_timeout=timeout, close_timeout=1.0) as ws:
            ws.send(json.dumps(["REQ", sub, {"authors": [pubkey], "kinds": [0], "limit": 1}]))
            while True:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return "no answer to a subscription (timed out)"
                msg = json.loads(ws.recv(timeout=remaining))
                if isinstance(msg, list) and msg[:2] in (["EOSE", sub], ["CLOSED", sub]):
                    ws.send(json.dumps(["CLOSE", sub]))
                    return (
                        "ok" if msg[0] == "EOSE" else f"refused: {msg[2] if len(msg) > 2 else ''}"
                    )
    except TimeoutError:
        return "timed out"
    except (OSError, WebSocketException, ValueError) as exc:
        return relay_reason(exc)


PLATFORM = Nostr()
