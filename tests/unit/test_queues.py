"""Queues with slots (plurspool(1), QUEUES): intake of `schedule: queue`, `post --queue`,
`schedule ID queue`, `--next`, reflow and the queue lock, in process with a fake clock."""

from __future__ import annotations

import math
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from plurspool.app import App
from plurspool.cache import Listing
from plurspool.config import load
from plurspool.errors import InvalidInput
from tests.daemon_helpers import Sandbox, World, in_process, post_text

# Friday 2026-12-04, 08:00 in Europe/Berlin (UTC+1): the next slots of `default` are
# Fri 09:00, Mon 09:00, Tue 09:00, ... and of `pm` every day at 15:00, 18:00 and 21:00.
NOW = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
QUEUES = """
[queues.default]
slots = ["mon-fri 09:00"]
[queues.pm]
window = "15:00-21:00"
per_day = 3
reflow = true
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


DEFAULT_SLOTS = [at(f"2026-12-{d:02d}T09:00:00+01:00") for d in (4, 7, 8, 9, 10, 11, 14)]
PM_SLOTS = [at(f"2026-12-{d:02d}T{h}:00:00+01:00") for d in (4, 5, 6) for h in (15, 18, 21)]


@pytest.fixture
def world(tmp_path: Path) -> World:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.top = 'timezone = "Europe/Berlin"'
    box.extra = QUEUES
    w = in_process(box)
    w.clock[0] = NOW
    return w


def dues(w: World, queue: str) -> list[datetime]:
    return [i.due for i in w.app.items.queued(queue) if i.due is not None]


def test_intake_writes_the_first_free_slot_back_with_the_queue(world: World) -> None:
    text = "---\nschedule: queue\ncw: birds  # a comment\n---\nhello\n"
    world.box.deliver("new", "a", text)
    world.run()
    path = world.box.spool / "scheduled" / "a.md"
    assert path.read_text() == (
        "---\nschedule: 2026-12-04T09:00:00+01:00\ncw: birds  # a comment\nqueue: default\n"
        "---\nhello\n"
    )
    # Re-running intake (and any later pass) changes nothing.
    world.run()
    assert path.read_text().startswith("---\nschedule: 2026-12-04T09:00:00+01:00\n")


def test_several_in_one_pass_get_slots_in_file_name_order(world: World) -> None:
    for name in ("c", "a", "b"):
        world.box.deliver("new", name, post_text(name, schedule="queue:pm"))
    world.run()
    got = {i.id: i.due for i in world.app.items.queued("pm")}
    assert got == {"a": PM_SLOTS[0], "b": PM_SLOTS[1], "c": PM_SLOTS[2]}


def test_posts_outside_the_queue_take_no_slot(world: World) -> None:
    world.app.queue.add("not queued", schedule="2026-12-04T09:00:00+01:00")
    done = world.app.queue.add("queued", queue="")
    assert done.at == DEFAULT_SLOTS[0]
    assert world.app.queue.add("again", queue="default").at == DEFAULT_SLOTS[1]


def test_slots_after_now_only(world: World) -> None:
    world.clock[0] = at("2026-12-04T09:00:00+01:00")  # the slot itself is not after now
    assert world.app.queue.add("late", queue="").at == DEFAULT_SLOTS[1]


def test_post_queue_and_intake_share_the_slots(world: World) -> None:
    assert world.app.queue.add("one", queue="pm").at == PM_SLOTS[0]
    world.box.deliver("new", "two", post_text("two", schedule="queue:pm"))
    world.run()
    assert world.app.queue.add("three", queue="pm").at == PM_SLOTS[2]
    assert dues(world, "pm") == PM_SLOTS[:3]


def test_post_queue_without_a_bluesky_account_imports_no_platform(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link card is Bluesky's: with no Bluesky account, `post --queue` leaves it unimported."""
    monkeypatch.setitem(sys.modules, "plurspool.platforms.bluesky", None)  # an import fails
    assert world.app.queue.add("see https://example.com", queue="pm").at == PM_SLOTS[0]


def test_unknown_queue_is_a_check_error(world: World) -> None:
    with pytest.raises(InvalidInput, match="no queue named 'nope'") as info:
        world.app.queue.add("x", queue="nope")
    assert info.value.exit_code == 3
    world.box.deliver("new", "bad", post_text("x", schedule="queue:nope"))
    from plurspool.checking import check_paths

    (report,) = check_paths(world.app.items, [world.box.spool / "new" / "bad.md"])
    assert report["problems"] == [
        "line 2: no queue named 'nope'; configured queues: default, pm; add [queues.nope] to "
        f"the config (in {world.box.config_path})"
    ]
    world.run()
    assert world.box.is_in("bad", "failed")
    assert (world.box.spool / "failed" / "bad.md").read_text() == post_text(
        "x", schedule="queue:nope"
    )


def test_check_agrees_with_intake(world: World) -> None:
    world.app.queue.add("one", queue="")
    world.box.deliver("new", "b", post_text("b", schedule="queue"))
    item = world.app.items.load(world.app.spool.stat_entry("new", "b"))  # type: ignore[arg-type]
    verdict = world.app.items.judge_new(item)
    world.run()
    assert verdict.at == DEFAULT_SLOTS[1] == world.app.items.queued("default")[1].due


def test_schedule_a_draft_into_a_queue(world: World) -> None:
    world.app.queue.add("first", queue="pm")
    draft = world.app.queue.add("kept", draft=True).item
    done = world.app.queue.schedule(draft, "queue:pm")
    assert done.at == PM_SLOTS[1]
    assert done.item.state == "scheduled"
    assert world.box.post("scheduled", draft.id).queue == "pm"


def test_queue_accounts_are_the_default_platforms(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.exec_account("y")
    box.extra = '[queues.default]\nslots = ["daily 09:00"]\naccounts = ["y"]\n'
    w = in_process(box)
    item = w.app.queue.add("to y", queue="").item
    assert w.app.items.platforms(item.post) == ("y",)


def test_next_takes_the_first_slot_and_moves_the_later_ones(world: World) -> None:
    ids = [world.app.queue.add(f"p{i}", queue="pm").item.id for i in range(3)]
    befores = {i: (world.box.spool / "scheduled" / f"{i}.md").read_bytes() for i in ids}
    new = world.app.queue.add("urgent", queue="pm", first=True)
    assert new.at == PM_SLOTS[0]
    got = {i.id: i.due for i in world.app.items.queued("pm")}
    assert got == {new.item.id: PM_SLOTS[0], **dict(zip(ids, PM_SLOTS[1:4], strict=True))}
    for i, slot in zip(ids, PM_SLOTS[1:4], strict=True):  # only the schedule line changed
        after = (world.box.spool / "scheduled" / f"{i}.md").read_bytes().splitlines()
        before = befores[i].splitlines()
        assert [a for a, b in zip(after, before, strict=True) if a != b] == [
            f"schedule: {slot.isoformat()}".encode()
        ]


def test_reflow_closes_the_gap_left_by_cancel_and_now(world: World) -> None:
    items = [world.app.queue.add(f"p{i}", queue="pm").item for i in range(4)]
    world.app.queue.cancel(items[1])
    assert dues(world, "pm") == PM_SLOTS[:3]
    assert [i.id for i in world.app.items.queued("pm")] == [items[0].id, items[2].id, items[3].id]
    world.app.queue.make_due(world.app.items.find(items[0].id))
    later = [i for i in world.app.items.queued("pm") if i.due and i.due > NOW]
    assert [(i.id, i.due) for i in later] == [
        (items[2].id, PM_SLOTS[0]),
        (items[3].id, PM_SLOTS[1]),
    ]


def test_without_reflow_a_gap_stays(world: World) -> None:
    items = [world.app.queue.add(f"p{i}", queue="").item for i in range(3)]
    world.app.queue.cancel(items[0])
    assert dues(world, "default") == DEFAULT_SLOTS[1:3]
    assert world.app.queue.add("fills", queue="").at == DEFAULT_SLOTS[0]


def test_concurrent_post_queue_and_intake_never_share_a_slot(world: World) -> None:
    """Two plurspools on one spool (each its own App, so its own lock): a `post --queue`
    loop against intake passes of `schedule: queue` files."""
    box = world.box
    for n in range(20):
        box.deliver("new", f"f{n:02d}", post_text(f"f{n}", schedule="queue:pm"))
    errors: list[BaseException] = []

    def add() -> None:
        other = App(load(box.config_path, env=box.env), clock=lambda: NOW)
        try:
            for n in range(20):
                other.queue.add(f"cli {n}", queue="pm")
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)
        finally:
            other.close()

    t = threading.Thread(target=add)
    t.start()
    world.run()
    t.join(60)
    assert not errors
    got = dues(world, "pm")
    assert len(got) == 40
    assert len(set(got)) == 40
    assert got == [*PM_SLOTS, *got[9:]] and got[-1] == at("2026-12-17T15:00:00+01:00")


def test_free_slot_sees_files_added_or_changed_by_hand(world: World) -> None:
    """The per-host snapshot of scheduled/ that makes `post --queue` fast never hides a post
    that arrived (a sync) or changed in place (an edit) since it was written."""
    world.app.queue.add("first", queue="pm")  # writes the snapshot
    synced = f"---\nschedule: {PM_SLOTS[1].isoformat()}\nqueue: pm\n---\nfrom a sync\n"
    world.box.deliver("scheduled", "synced", synced)
    assert world.app.queue.add("third", queue="pm").at == PM_SLOTS[2]
    # In place, same name and inode: the second slot's post moves to the fourth.
    path = world.box.spool / "scheduled" / "synced.md"
    with open(path, "r+", encoding="utf-8") as f:
        f.write(synced.replace(PM_SLOTS[1].isoformat(), PM_SLOTS[3].isoformat()))
    assert world.app.queue.add("into the gap", queue="pm").at == PM_SLOTS[1]
    assert world.app.queue.add("after", queue="pm").at == PM_SLOTS[4]
    assert dues(world, "pm") == PM_SLOTS[:5]


def test_the_snapshot_grows_by_the_new_posts_and_reads_back_whole(
    world: World, tmp_path: Path
) -> None:
    """Each `post --queue` adds the post made before it to the snapshot of scheduled/ (rows
    appended, `Listing.extended`); what reads back is every file with its queue and time."""
    path = world.app.state_dir / "queues-scheduled"
    fp = world.app.items.fingerprint()
    for n in range(4):
        world.app.queue.add(f"post {n}", queue="pm")
    world.box.deliver("scheduled", "other", post_text("elsewhere", schedule="2026-12-24 12:00"))
    last = world.app.queue.add("post 4", queue="pm").item.id  # not yet in the snapshot
    snap = Listing.read(path, fp)
    assert snap is not None
    got = {(name, due, queue) for due, name, queue, _ in snap.rows()}
    want = {
        (i.id, i.due.timestamp() if i.due else 0.0, (i.summary.queue or "").encode())
        for i in world.app.items.in_states(["scheduled"])
        if i.summary is not None
    }
    assert len(want) == 6 and got == {w for w in want if w[0] != last}
    # Written whole, extended, and extended from nothing: each reads back as made.
    row = (1.0, "a", b"pm", (1, 2, 3))
    Listing.write(tmp_path / "l", "fp", [row])
    one = Listing.read(tmp_path / "l", "fp")
    assert one is not None and one.rows() == [row]
    one.extended(
        tmp_path / "l", "fp", [(2.0, "b", b"", (4, 5, 6)), (math.inf, "c", b"q", (7, 8, 9))]
    )
    two = Listing.read(tmp_path / "l", "fp")
    assert two is not None and [r[1] for r in two.rows()] == ["a", "b", "c"]
    assert two.rows()[2] == (math.inf, "c", b"q", (7, 8, 9)) and two.rows()[1][2] == b""
    Listing.write(tmp_path / "l", "fp", [])
    empty = Listing.read(tmp_path / "l", "fp")
    assert empty is not None
    empty.extended(tmp_path / "l", "fp", [row])
    assert (Listing.read(tmp_path / "l", "fp") or empty).rows() == [row]


def test_intake_across_the_spring_gap_writes_the_moved_slot(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.top = 'timezone = "Europe/Berlin"'
    box.extra = '[queues.night]\nslots = ["daily 02:30"]\n'
    w = in_process(box)
    w.clock[0] = datetime(2026, 3, 28, 12, tzinfo=UTC)
    w.box.deliver("new", "n1", post_text("in the gap", schedule="queue:night"))
    w.box.deliver("new", "n2", post_text("the day after", schedule="queue:night"))
    w.run()
    assert w.box.post("scheduled", "n1").schedule == "2026-03-29T03:30:00+02:00"
    assert w.box.post("scheduled", "n2").schedule == "2026-03-30T02:30:00+02:00"


def test_reschedule_into_a_queue(world: World) -> None:
    world.app.queue.add("holds the first", queue="pm")
    timed = world.app.queue.add("timed", schedule="2026-12-10T10:00:00+01:00").item
    done = world.app.queue.reschedule(timed, "queue:pm")
    assert done.at == PM_SLOTS[1]
    post = world.box.post("scheduled", timed.id)
    assert (post.schedule, post.queue) == ("2026-12-04T18:00:00+01:00", "pm")


def test_a_recurring_post_cannot_take_a_queue_slot(world: World) -> None:
    text = "---\nschedule: queue\nrepeat: every day at 9am\n---\nevery day\n"
    world.box.deliver("new", "rec", text)
    from plurspool.checking import check_paths

    (report,) = check_paths(world.app.items, [world.box.spool / "new" / "rec.md"])
    assert report["problems"] == [
        "line 2: a recurring post (`repeat`) cannot take a queue's slot; give it a time "
        "(its first occurrence) or leave `schedule` out"
    ]
    world.run()
    assert world.box.where("rec") == ["failed"]
    assert (world.box.spool / "failed" / "rec.md").read_text() == text
    assert dues(world, "default") == []
