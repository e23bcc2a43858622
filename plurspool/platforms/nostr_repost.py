"""A Nostr repost (plurspool(5), `repost`): the reposted note looked up on the relays, and the
kind-6 event (NIP-18) signed for it, after a kind-5 (NIP-09) deleting a repeated repost's
previous one. `nostr.Nostr.send` stores and sends them like a post's events.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ..errors import SendError
from . import nostr_proto as proto
from .base import Job
from .nostr import RELAY_TIMEOUT, relay_reason

NO_NOTE = "has no such note"  # a relay's answer (EOSE) to the lookup


class Unanswered(Exception):
    """No relay answered whether it has the note to repost (a temporary failure)."""


def repost_events(job: Job, secret: bytes, relays: list[str]) -> list[dict[str, Any]]:
    """The kind-6 event (NIP-18) reposting what `job.repost` names, with an `e` tag naming a
    relay that has the note and a `p` tag for its author, and the note itself as content:
    the note is asked of its own relay hint and the account's relays. A recurring repost's
    previous kind-6 event is deleted first, by a kind-5 event (NIP-09) before it."""
    assert job.repost is not None
    undo = proto.event_ref(job.undo.id or "") if job.undo is not None else None
    due = proto.created_at(job.due)  # as a post's events: the same on every host
    deletion = []
    if undo is not None:
        tags = [["e", undo.event_id], ["k", str(proto.KIND_REPOST)]]
        deletion = [proto.sign_event(secret, due, tags, "", proto.KIND_DELETION)]
    target = job.repost.id or job.repost.url or ""
    ref = proto.event_ref(target)
    if ref is None:
        raise SendError(f"repost: {target} is not a Nostr note (nostr:note1..., nevent1...)")
    answers = []
    for url in dict.fromkeys(([ref.relay] if ref.relay.startswith("ws") else []) + relays):
        found = _fetch(url, ref.event_id, min(RELAY_TIMEOUT, max(0.5, job.deadline())))
        if isinstance(found, str):
            answers.append(f"{url}: {found}")
        else:
            tags = [["e", ref.event_id, url], ["p", str(found["pubkey"])]]
            content = json.dumps(found, ensure_ascii=False, separators=(",", ":"))
            made = proto.sign_event(secret, due, tags, content, proto.KIND_REPOST)
            if undo is not None and made["id"] == undo.event_id:  # the same second: not it
                made = proto.sign_event(secret, due + 1, tags, content, proto.KIND_REPOST)
            return [*deletion, made]
    detail = "; ".join(answers)
    if not any(a.endswith(NO_NOTE) for a in answers):  # none could tell: try again later
        raise Unanswered(f"repost: cannot look up {target}: {detail}")
    raise SendError(f"repost: cannot resolve {target}: no relay has the note ({detail})")


def _fetch(url: str, wanted: str, timeout: float) -> dict[str, Any] | str:
    """The event `wanted` as the relay at `url` has it (its id checked), or why not: NO_NOTE
    when the relay said it has none, else what went wrong."""
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    end = time.monotonic() + timeout
    sub = "plurspool-repost-" + os.urandom(4).hex()
    try:
        with connect(url, open_timeout=timeout, close_timeout=1.0, max_size=2**22) as ws:
            ws.send(json.dumps(["REQ", sub, {"ids": [wanted], "limit": 1}]))
            while (remaining := end - time.monotonic()) > 0:
                msg = json.loads(ws.recv(timeout=remaining))
                if msg[:2] == ["EVENT", sub] and proto.verified(msg[2], wanted):
                    return dict(msg[2])
                if msg[:2] == ["EOSE", sub]:
                    return NO_NOTE
                if msg[:2] == ["CLOSED", sub]:
                    return f"refused: {msg[2] if len(msg) > 2 else ''}"
    except TimeoutError:
        return "no answer within the time limit (timed out)"
    except (OSError, WebSocketException, ValueError, TypeError, IndexError) as exc:
        return relay_reason(exc)
    return "no answer within the time limit (timed out)"
