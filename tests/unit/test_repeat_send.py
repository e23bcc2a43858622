"""Recurring posts through intake and the sender, in process under a moved clock: one post a
occurrence, never two, at most one after downtime, crash-safe, and the template's life."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plurspool.errors import InvalidInput, SpoolError
from plurspool.hosts import idempotency_key
from plurspool.sender import send_one
from tests.daemon_helpers import Sandbox, World, in_process

START = datetime(2026, 3, 26, 7, 0, tzinfo=UTC)  # 08:00 in Berlin, three days before DST
TEMPLATE = "---\nrepeat: every day at 9am  # daily\nplatforms: [x]\n---\nGood morning\n"


@pytest.fixture
def w(tmp_path: Path) -> World:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.top = 'timezone = "Europe/Berlin"\n'
    box.daemon_keys["max_lateness"] = "1h"
    world = in_process(box)
    world.clock[0] = START
    return world


def take_in(w: World, text: str = TEMPLATE, name: str = "daily") -> None:
    w.box.deliver("new", name, text)
    assert w.run().queued == [name]


def at_next(w: World, name: str = "daily", late: float = 0) -> None:
    """Move the clock to the template's next occurrence (plus `late` seconds)."""
    item = w.app.items.find(name)
    assert item.due is not None
    w.clock[0] = item.due + timedelta(seconds=late)


def sent_texts(w: World) -> list[tuple[str, str]]:
    """What the exec account was asked to send: (post ID, first part) per run."""
    return [(r["stdin"]["id"], r["stdin"]["parts"][0]) for r in w.box.records("x")]


def test_intake_writes_the_rule_and_first_occurrence_back_and_nothing_else(w: World) -> None:
    take_in(w)
    text = (w.box.spool / "scheduled" / "daily.md").read_text()
    assert text == (
        "---\nschedule: 2026-03-26T09:00:00+01:00\n"
        'repeat: "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"  # daily\n'
        "platforms: [x]\n---\nGood morning\n"
    )
    again = w.run()  # nothing is due yet: nothing changes
    assert again.sent == [] and (w.box.spool / "scheduled" / "daily.md").read_text() == text


def test_a_daily_rule_sends_one_post_a_day_never_two(w: World) -> None:
    take_in(w)
    sent: list[str] = []
    for _ in range(6):  # across the DST change of 29 March
        at_next(w)
        sent += w.run().sent
        w.tick(1800)  # a second pass later the same day sends nothing more
        sent += w.run().sent
    assert sent == [
        "daily--20260326T080000Z",
        "daily--20260327T080000Z",
        "daily--20260328T080000Z",
        "daily--20260329T070000Z",  # 09:00 CEST
        "daily--20260330T070000Z",
        "daily--20260331T070000Z",
    ]
    assert sent_texts(w) == [(post_id, "Good morning") for post_id in sent]
    assert w.box.ids("sent") == set(sent)
    copy = w.box.post("sent", sent[3])
    assert copy.repeat is None and copy.skip == () and copy.schedule == "2026-03-29T09:00:00+02:00"
    assert copy.results["x"].id is not None
    keys = set()
    for post_id in sent:
        post = w.box.post("sent", post_id)
        assert post.schedule is not None
        keys.add(idempotency_key(post_id, post, "x", datetime.fromisoformat(post.schedule)))
    assert len(keys) == 6  # idempotency is per occurrence
    template = w.box.post("scheduled", "daily")
    assert template.schedule == "2026-04-01T09:00:00+02:00" and template.skipped == ()


def test_after_three_days_down_at_most_one_missed_occurrence_is_sent(w: World) -> None:
    take_in(w)
    at_next(w)
    assert w.run().sent == ["daily--20260326T080000Z"]
    w.clock[0] = datetime(2026, 3, 29, 7, 30, tzinfo=UTC)  # down three days, back 30 min late
    result = w.run()
    assert result.sent == ["daily--20260329T070000Z"]
    assert len(w.box.records("x")) == 2
    template = w.box.post("scheduled", "daily")
    assert template.skipped == ("2026-03-27T08:00:00Z", "2026-03-28T08:00:00Z")
    assert template.schedule == "2026-03-30T09:00:00+02:00"
    w.clock[0] += timedelta(days=3, hours=2)  # down again, past max_lateness of the last
    assert w.run().sent == []
    assert len(w.box.post("scheduled", "daily").skipped) == 5


def test_a_crash_between_the_copy_and_the_template_never_sends_twice(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    take_in(w)
    at_next(w)
    spool = w.app.spool
    real = spool.replace

    def crash(entry, data, **kw):  # type: ignore[no-untyped-def]
        if entry.id == "daily":
            raise SpoolError("power cut", "")
        return real(entry, data, **kw)

    monkeypatch.setattr(spool, "replace", crash)
    first = w.run()
    assert first.sent == [] and w.box.ids("scheduled") == {"daily", "daily--20260326T080000Z"}
    monkeypatch.setattr(spool, "replace", real)
    for _ in range(3):
        w.run()
    assert sent_texts(w) == [("daily--20260326T080000Z", "Good morning")]
    assert w.box.ids("sent") == {"daily--20260326T080000Z"}
    assert w.box.post("scheduled", "daily").schedule == "2026-03-27T09:00:00+01:00"


def test_skip_dates_and_count_and_the_last_occurrence_ends_in_sent(w: World) -> None:
    text = (
        "---\nschedule: 2026-03-26T09:00:00+01:00\nrepeat: FREQ=DAILY;COUNT=3\n"
        "skip: [2026-03-27]\nplatforms: [x]\n---\nThree days\n"
    )
    take_in(w, text, "three")
    sent = []
    for _ in range(2):
        at_next(w, "three")
        sent += w.run().sent
    assert sent == ["three--20260326T080000Z", "three--20260328T080000Z"]
    assert w.box.ids("sent") == {*sent, "three"}  # no occurrence left: the template is done
    assert w.box.ids("scheduled") == set()


def test_a_rule_that_cannot_be_read_goes_to_failed_with_its_line(w: World) -> None:
    w.box.deliver("new", "bad", "---\nplatforms: [x]\nrepeat: every fortnight\n---\nHi\n")
    result = w.run()
    assert result.failed == ["bad"]
    error = (w.box.spool / "failed" / "bad.error").read_text()
    assert "line 3" in error and "'fortnight' is not a day" in error


def test_a_rule_whose_end_has_passed_is_refused_at_intake(w: World) -> None:
    text = "---\nrepeat: FREQ=DAILY;UNTIL=20260101T000000Z\nplatforms: [x]\n---\nHi\n"
    w.box.deliver("new", "over", text)
    assert w.run().failed == ["over"]
    assert "no occurrence left" in (w.box.spool / "failed" / "over.error").read_text()


def test_now_on_a_template_sends_one_occurrence_now_and_keeps_the_next(w: World) -> None:
    take_in(w)
    w.clock[0] += timedelta(minutes=10)
    w.app.queue.make_due(w.app.items.find("daily"))
    view = send_one(w.app, "daily")
    assert (view["id"], view["state"]) == ("daily--20260326T071000Z", "sent")
    assert sent_texts(w) == [("daily--20260326T071000Z", "Good morning")]
    assert w.box.post("scheduled", "daily").schedule == "2026-03-26T09:00:00+01:00"


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.sampled_from([600, 3600, 6 * 3600, 86400, 3 * 86400])),
        st.tuples(st.just("due"), st.sampled_from([0, 1800, 3 * 3600])),  # seconds late
        st.tuples(st.just("crash"), st.sampled_from(["copy", "template", "move"])),
    ),
    min_size=1,
    max_size=12,
)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_whatever_the_clock_and_crashes_do_no_occurrence_goes_out_twice(
    steps: list[tuple[str, object]],
) -> None:
    """Passes under a clock moved by hours to days or to the template's time (or later), some
    cut short by a crash at one of the writes of `Queue.repeat`: every post sent is an
    occurrence (09:00 in Berlin), sent once, at most one a pass, and the template always names
    an occurrence."""
    with tempfile.TemporaryDirectory() as tmp:
        box = Sandbox(Path(tmp))
        box.exec_account("x")
        box.top = 'timezone = "Europe/Berlin"\n'
        box.daemon_keys["max_lateness"] = "2h"
        w = in_process(box)
        w.clock[0] = START
        take_in(w)
        spool = w.app.spool
        real = {"deliver": spool.deliver, "replace": spool.replace, "move": spool.move}
        seen = 0
        for kind, arg in [*steps, ("tick", 0)]:
            broken = {"copy": "deliver", "template": "replace", "move": "move"}.get(str(arg))
            if kind == "crash" and broken is not None:

                def crash(*args: object, **kw: object) -> object:
                    raise SpoolError("power cut", "")

                setattr(spool, broken, crash)
            elif kind == "due":
                assert isinstance(arg, int)
                at_next(w, late=arg)
            else:
                assert isinstance(arg, int)
                w.tick(arg)
            w.run()
            for name, fn in real.items():
                setattr(spool, name, fn)
            ids = [post_id for post_id, _ in sent_texts(w)]
            assert len(ids) - seen <= 1  # at most one occurrence a pass
            seen = len(ids)
            assert len(ids) == len(set(ids))  # never one twice
        tz = w.app.config.timezone
        for post_id in ids:
            stamp = datetime.strptime(post_id.split("--")[1], "%Y%m%dT%H%M%SZ")
            local = stamp.replace(tzinfo=UTC).astimezone(tz)
            assert (local.hour, local.minute) == (9, 0), post_id
        template = w.box.post("scheduled", "daily")
        assert template.schedule is not None and "T09:00:00+0" in template.schedule


def test_skip_moves_the_template_on_and_refuses_its_last_occurrence(w: World) -> None:
    text = (
        "---\nschedule: 2026-03-26T09:00:00+01:00\nrepeat: FREQ=DAILY;COUNT=2\n"
        "platforms: [x]\n---\nTwice\n"
    )
    take_in(w, text, "twice")
    done = w.app.queue.skip(w.app.items.find("twice"))
    assert done.at == datetime(2026, 3, 26, 8, tzinfo=UTC)
    post = w.box.post("scheduled", "twice")
    assert (post.skip, post.schedule) == (("2026-03-26",), "2026-03-27T09:00:00+01:00")
    before = (w.box.spool / "scheduled" / "twice.md").read_bytes()
    with pytest.raises(InvalidInput, match="is its last one"):
        w.app.queue.skip(w.app.items.find("twice"))
    assert (w.box.spool / "scheduled" / "twice.md").read_bytes() == before
