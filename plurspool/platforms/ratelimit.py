"""Rate-limit answers as HTTP platforms give them: how long to wait after a refusal, and how long an
account must hold when the server says its window is used up.

Mastodon names its headers `X-RateLimit-Remaining`/`-Reset` (the reset as ISO 8601), Bluesky
`RateLimit-Remaining`/`-Reset` (epoch seconds from atproto, seconds from now in the IETF draft);
each platform passes its header prefix. Both send `Retry-After` as seconds or an HTTP date.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

HOLD_CAP = 86400.0  # a server's "come back in a year" is not believed past a day
# Servers give the reset to the whole second, often rounded down (mastodon-mock does): a
# request at the very second could still meet the old window.
HOLD_MARGIN = 1.0
_SECONDS = re.compile(r"\d+(\.\d+)?")
_EPOCH_AFTER = 1e9  # a reset above this is an epoch time; a smaller one, seconds from now


def parse_time(value: str) -> float | None:
    """Epoch seconds from ISO 8601 (Mastodon) or an HTTP date; None if neither."""
    import email.utils
    from datetime import datetime

    text = value.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def retry_after(headers: Mapping[str, str], now: float, prefix: str) -> float | None:
    """Seconds to wait, from Retry-After (seconds or a date) or `<prefix>Reset`; None when
    neither is usable."""
    h = _lower(headers)
    raw = h.get("retry-after", "").strip()
    if raw:
        if _SECONDS.fullmatch(raw):
            return float(raw)
        at = parse_time(raw)
        if at is not None:
            return max(0.0, at - now)
    return _reset_in(h, now, prefix)


def hold_after(headers: Mapping[str, str], now: float, prefix: str) -> float | None:
    """Seconds the account must wait because this answer says its window is used up
    (`<prefix>Remaining: 0`), until `<prefix>Reset`; None when requests are left."""
    h = _lower(headers)
    return hold_for(h.get(f"{prefix}remaining"), _reset_in(h, now, prefix))


def hold_for(remaining: str | None, reset_in: float | None) -> float | None:
    """The hold an answer asks for: its rate-limit headers say `remaining` (as sent) requests
    are left, and the window resets in `reset_in` seconds (a second more is waited, see
    HOLD_MARGIN). None unless none are left and the reset is known."""
    if remaining is None or reset_in is None:
        return None
    try:
        left = float(remaining.strip())
    except ValueError:
        return None
    if left > 0 or reset_in <= 0:
        return None
    return min(reset_in + HOLD_MARGIN, HOLD_CAP)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _reset_in(h: Mapping[str, str], now: float, prefix: str) -> float | None:
    """Seconds until `<prefix>Reset` (headers lower-cased); None when absent or unusable."""
    raw = h.get(f"{prefix}reset", "").strip()
    if raw:
        if _SECONDS.fullmatch(raw):
            value = float(raw)
            return max(0.0, value - now) if value > _EPOCH_AFTER else value
        at = parse_time(raw)
        if at is not None:
            return max(0.0, at - now)
    return None
