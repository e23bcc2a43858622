"""Pure planning: which accounts of which due posts to send now, and when to wake next.

No I/O and no clock here: everything (time, windows, limits) is passed in, so pacing is tested
without sleeping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pending:
    """A post that is due, with the accounts still to send and their backoff times."""

    post_id: str
    due: float
    accounts: Mapping[str, float | None]  # account -> not before (backoff), or None
    keys: Mapping[str, tuple[str, ...]]  # account -> rate-limit keys that apply to it


SERVER_LIMIT = "server rate limit"  # why an account waits for a hold


@dataclass(frozen=True)
class Limit:
    count: int
    window: float  # seconds


@dataclass
class Decision:
    post_id: str
    send: list[str] = field(default_factory=list)
    wait: dict[str, tuple[float, str]] = field(default_factory=dict)  # account -> (until, why)


def plan(
    due: Sequence[Pending],
    windows: Mapping[str, Sequence[float]],
    limits: Mapping[str, Limit],
    now: float,
    holds: Mapping[str, float] | None = None,
) -> tuple[list[Decision], float | None]:
    """Decide the sends of one pass, oldest due first, within the rate limits.

    `windows` holds the recent send times per rate-limit key, `holds` the accounts whose server
    said no requests are left, until when. Returns the decisions and the earliest time a
    waiting account could go (None if nothing waits).
    """
    holds = holds or {}
    used: dict[str, list[float]] = {k: sorted(v) for k, v in windows.items()}
    decisions = []
    wake: float | None = None
    for p in sorted(due, key=lambda p: (p.due, p.post_id)):
        d = Decision(p.post_id)
        for account, not_before in sorted(p.accounts.items()):
            if not_before is not None and not_before > now:
                d.wait[account] = (not_before, "retry backoff")
                wake = not_before if wake is None else min(wake, not_before)
                continue
            held = holds.get(account)
            if held is not None and held > now:
                d.wait[account] = (held, SERVER_LIMIT)
                wake = held if wake is None else min(wake, held)
                continue
            blocked = _blocked(p.keys.get(account, ()), used, limits, now)
            if blocked is not None:
                d.wait[account] = blocked
                wake = blocked[0] if wake is None else min(wake, blocked[0])
                continue
            d.send.append(account)
            for key in p.keys.get(account, ()):
                used.setdefault(key, []).append(now)
        decisions.append(d)
    return decisions, wake


def _blocked(
    keys: Sequence[str],
    used: Mapping[str, Sequence[float]],
    limits: Mapping[str, Limit],
    now: float,
) -> tuple[float, str] | None:
    until: tuple[float, str] | None = None
    for key in keys:
        limit = limits.get(key)
        if limit is None:
            continue
        recent = [t for t in used.get(key, ()) if t > now - limit.window]
        if len(recent) >= limit.count:
            # Free again when the oldest send that keeps the window full leaves it.
            free = recent[len(recent) - limit.count] + limit.window
            if until is None or free > until[0]:
                until = (free, f"rate limit {key} {limit.count}/{_span(limit.window)}")
    return until


def _span(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = int(seconds // size)
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds:g}s"


def backoff(attempts: int, first: float, cap: float, jitter: float) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: doubling, capped, jittered.

    `jitter` in [0, 1) is supplied by the caller (random), spreading retries by ±20 %.
    """
    base: float = min(cap, first * 2.0 ** max(0, attempts - 1))
    return base * (0.8 + 0.4 * jitter)
