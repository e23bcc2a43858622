"""The planner: oldest due first, rate limits and their windows, backoff, never early."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plurspool.plan import Limit, Pending, backoff, plan

HOUR = 3600.0
T0 = 1_900_000_000.0  # a fixed "now" in epoch seconds


def pending(
    post_id: str,
    due: float,
    accounts: Mapping[str, float | None] | None = None,
    keys: Mapping[str, tuple[str, ...]] | None = None,
) -> Pending:
    accounts = accounts if accounts is not None else {"x": None}
    keys = keys if keys is not None else {a: (a,) for a in accounts}
    return Pending(post_id, due, accounts, keys)


# -- plan ------------------------------------------------------------------------------------


def test_plan_sends_oldest_due_first_within_the_rate_limit() -> None:
    due = [pending("c", T0 - 10), pending("a", T0 - 30), pending("b", T0 - 30)]
    decisions, wake = plan(due, {"x": []}, {"x": Limit(2, HOUR)}, T0)
    assert [d.post_id for d in decisions] == ["a", "b", "c"]  # by due time, then ID
    assert [d.send for d in decisions] == [["x"], ["x"], []]
    until, why = decisions[2].wait["x"]
    assert why == "rate limit x 2/hour"
    assert until == T0 + HOUR  # when the first of the two sends leaves the window
    assert wake == until


def test_plan_counts_recent_sends_and_forgets_old_ones() -> None:
    windows = {"x": [T0 - 2 * HOUR, T0 - 1000, T0 - 10]}
    decisions, wake = plan([pending("p", T0)], windows, {"x": Limit(2, HOUR)}, T0)
    assert decisions[0].send == []
    assert decisions[0].wait["x"] == (T0 - 1000 + HOUR, "rate limit x 2/hour")
    decisions, wake = plan([pending("p", T0)], windows, {"x": Limit(3, HOUR)}, T0)
    assert decisions[0].send == ["x"] and wake is None


def test_plan_applies_every_key_and_waits_for_the_strictest() -> None:
    keys = {"x": ("x", "exec")}
    limits = {"x": Limit(10, HOUR), "exec": Limit(1, 86400)}
    windows = {"x": [T0 - 60], "exec": [T0 - 60]}
    decisions, wake = plan([pending("p", T0, keys=keys)], windows, limits, T0)
    assert decisions[0].wait["x"] == (T0 - 60 + 86400, "rate limit exec 1/day")
    assert wake == T0 - 60 + 86400


def test_plan_backoff_holds_only_its_account() -> None:
    p = pending("p", T0 - 5, {"a": T0 + 30, "b": None, "c": T0 - 1})
    decisions, wake = plan([p], {}, {}, T0)
    assert decisions[0].send == ["b", "c"]
    assert decisions[0].wait == {"a": (T0 + 30, "retry backoff")}
    assert wake == T0 + 30


def test_plan_with_nothing_waiting_has_no_wake() -> None:
    decisions, wake = plan([pending("p", T0)], {}, {}, T0)
    assert decisions[0].send == ["x"] and wake is None
    assert plan([], {}, {}, T0) == ([], None)


def test_rate_limit_names_its_window() -> None:
    cases = {
        Limit(2, HOUR): "2/hour",
        Limit(100, 86400): "100/day",
        Limit(5, 2 * HOUR): "5/2 hours",
        Limit(3, 60): "3/minute",
        Limit(3, 90): "3/90s",
    }
    for limit, text in cases.items():
        decisions, _ = plan([pending("p", T0)], {"x": [T0] * limit.count}, {"x": limit}, T0)
        assert decisions[0].wait["x"][1] == f"rate limit x {text}"


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(1, 4),
    window=st.sampled_from([60.0, 600.0, HOUR]),
    dues=st.lists(st.floats(0, 7200), min_size=1, max_size=12),
    steps=st.lists(st.floats(0.001, 900), min_size=1, max_size=40),
)
def test_plan_never_exceeds_a_limit_and_never_sends_early(
    count: int, window: float, dues: list[float], steps: list[float]
) -> None:
    """Passes at arbitrary times: no window ever holds more sends than the limit allows."""
    limits = {"x": Limit(count, window)}
    todo = {f"p{n:02d}": T0 + d for n, d in enumerate(dues)}
    sent: dict[str, float] = {}
    now = T0
    for step in [0.0, *steps]:
        now += step
        due = [pending(p, t) for p, t in todo.items() if p not in sent and t <= now]
        decisions, wake = plan(due, {"x": list(sent.values())}, limits, now)
        for d in decisions:
            if d.send:
                sent[d.post_id] = now
            else:
                assert wake is not None and wake > now
    times = sorted(sent.values())
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + window) <= count
    for post_id, t in sent.items():
        assert t >= todo[post_id]
    # The oldest due posts go first: whatever was due before a sent post went no later.
    for p, t in sent.items():
        for q, q_due in todo.items():
            if (q_due, q) < (todo[p], p):
                assert q in sent and sent[q] <= t


def test_backoff_doubles_is_capped_and_jittered() -> None:
    assert backoff(1, 60, 3600, 0.5) == pytest.approx(60)
    assert backoff(2, 60, 3600, 0.5) == pytest.approx(120)
    assert backoff(3, 60, 3600, 0.5) == pytest.approx(240)
    assert backoff(20, 60, 3600, 0.5) == pytest.approx(3600)
    assert backoff(1, 60, 3600, 0.0) == pytest.approx(48)
    assert backoff(1, 60, 3600, 0.999999) == pytest.approx(72, rel=1e-4)


def test_plan_waits_for_a_server_hold_of_its_account_only() -> None:
    p = pending("p", T0 - 5, {"a": None, "b": None})
    decisions, wake = plan([p], {}, {}, T0, {"a": T0 + 30, "b": T0})
    assert decisions[0].send == ["b"]  # a hold that has ended holds nothing
    assert decisions[0].wait == {"a": (T0 + 30, "server rate limit")}
    assert wake == T0 + 30
