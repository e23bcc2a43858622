"""[senders]: one post's accounts split between two hosts whose spools are synced by copying
files, each sender in process with its own state directory (plurspool(5), SEVERAL MACHINES)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plurspool.sender import send_one
from tests.daemon_helpers import Sandbox, World, in_process, iso, post_text
from tests.helpers import invoke

SENDERS = '[senders]\na = ["x"]\nb = ["y"]\n'


def host(tmp_path: Path, name: str, senders: str = SENDERS, **daemon: str) -> World:
    """A host `name` with the exec accounts x and y and the [senders] table `senders`."""
    box = Sandbox(tmp_path / name)
    box.exec_account("x")
    box.exec_account("y")
    box.exec_account("z", default=False)
    box.extra = senders
    box.daemon_keys.update(daemon)
    return in_process(box)


def sync(src: World, dst: World, post_id: str) -> None:
    """Copy a post as a sync would: wherever it is in `src`, only there in `dst`."""
    for state in ("scheduled", "sent", "failed"):
        (dst.box.spool / state / f"{post_id}.md").unlink(missing_ok=True)
    [state] = src.box.where(post_id)
    shutil.copy2(src.box.spool / state / f"{post_id}.md", dst.box.spool / state)


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[World, World]:
    a, b = host(tmp_path, "a"), host(tmp_path, "b")
    for w in (a, b):
        w.box.deliver("scheduled", "p", post_text("to both", schedule=iso(w.now - 5)))
    return a, b


def as_host(monkeypatch: pytest.MonkeyPatch, name: str, w: World) -> World:
    monkeypatch.setenv("PLURSPOOL_HOST", name)
    return w


def test_each_host_sends_its_accounts_and_the_last_one_moves_the_post(
    pair: tuple[World, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    first = as_host(monkeypatch, "a", a).run()
    assert first.sent == [] and first.failed == []
    assert [len(a.box.records(n)) for n in ("x", "y")] == [1, 0]
    # x's result is in the file at once; the post waits in scheduled/ for y, sent from b.
    waiting = a.box.post("scheduled", "p")
    assert set(waiting.results) == {"x"} and waiting.results["x"].id is not None
    assert "recorded" in a.log.getvalue()
    assert as_host(monkeypatch, "a", a).run().sent == []  # nothing more for a to do
    assert len(a.box.records("x")) == 1
    sync(a, b, "p")
    second = as_host(monkeypatch, "b", b).run()
    assert second.sent == ["p"]
    assert [len(b.box.records(n)) for n in ("x", "y")] == [0, 1]
    done = b.box.post("sent", "p")
    assert set(done.results) == {"x", "y"} and done.results["x"] == waiting.results["x"]
    # Back to a through the sync: finished, never sent again.
    sync(b, a, "p")
    assert as_host(monkeypatch, "a", a).run().sent == []
    assert [len(a.box.records(n)) for n in ("x", "y")] == [1, 0]


def test_a_failure_on_one_host_waits_for_the_other_then_fails_the_post(
    pair: tuple[World, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    a.box.control("x", exit=1, stderr="refused")
    as_host(monkeypatch, "a", a).run()
    waiting = a.box.post("scheduled", "p")
    assert waiting.results["x"].error is not None and a.box.is_in("p", "scheduled")
    sync(a, b, "p")
    assert as_host(monkeypatch, "b", b).run().failed == ["p"]
    assert len(b.box.records("y")) == 1 and len(b.box.records("x")) == 0
    failed = b.box.post("failed", "p")
    assert failed.results["y"].error is None and failed.results["x"].error is not None


def test_accounts_no_host_claims_go_to_daemon_host_else_any_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = host(tmp_path, "a", '[senders]\na = ["x"]\n', host="c")
    w.box.deliver("scheduled", "p", post_text("hi", schedule=iso(w.now - 5), platforms=["x", "y"]))
    as_host(monkeypatch, "a", w).run()
    assert [len(w.box.records(n)) for n in ("x", "y")] == [1, 0]  # y is c's, daemon.host
    as_host(monkeypatch, "c", w).run()
    assert [len(w.box.records(n)) for n in ("x", "y")] == [1, 1]
    assert w.box.is_in("p", "sent")
    free = host(tmp_path, "free", '[senders]\na = ["x"]\n')
    free.box.deliver("scheduled", "q", post_text("hi", schedule=iso(free.now - 5)))
    assert as_host(monkeypatch, "anyone", free).run().sent == []
    assert [len(free.box.records(n)) for n in ("x", "y")] == [0, 1]  # y: no host named


def test_now_on_a_host_that_sends_none_of_the_accounts_says_so(
    pair: tuple[World, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = pair
    a.box.deliver("scheduled", "q", post_text("x only", schedule=iso(a.now - 5), platforms=["x"]))
    view = send_one(as_host(monkeypatch, "b", a).app, "q")
    assert view["state"] == "scheduled" and a.box.records("x") == []
    assert view["error"] == "this host (b) sends none of them: x from a"
    assert view["senders"] == {"x": "a"}


def test_a_pass_says_once_which_due_posts_other_hosts_send(
    pair: tuple[World, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = pair
    a.box.deliver("scheduled", "q", post_text("y only", schedule=iso(a.now - 5), platforms=["y"]))
    for _ in range(2):
        assert as_host(monkeypatch, "a", a).run().sent == []
    said = [line for line in a.log.getvalue().splitlines() if " elsewhere id=q " in line]
    assert len(said) == 1 and "sends none of them: y from b" in said[0]
    assert " elsewhere id=p " in a.log.getvalue()  # p too, once x was sent: y is b's
    assert a.box.records("y") == [] and a.box.is_in("q", "scheduled")


def test_a_host_with_none_of_a_posts_accounts_never_fails_it_late(
    pair: tuple[World, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, b = pair
    b.box.deliver(
        "scheduled", "old", post_text("x only", schedule=iso(b.now - 86400), platforms=["x"])
    )
    assert as_host(monkeypatch, "b", b).run().failed == []
    assert b.box.is_in("old", "scheduled")  # a judges it, when it finds it


def test_list_and_show_say_which_host_sends_each_account(pair: tuple[World, World]) -> None:
    a, _ = pair
    a.box.daemon_keys["host"] = "pi"
    a.box.write_config()
    a.box.deliver(
        "scheduled", "q", post_text("all", schedule=iso(a.now + 60), platforms=["x", "z"])
    )
    env = {**a.box.env, "PLURSPOOL_HOST": "a", "COLUMNS": "200"}
    [row] = [v for v in invoke(["list", "--json"], env).json() if v["id"] == "q"]
    assert row["senders"] == {"x": "a", "z": "pi"}
    listed = invoke(["list"], env).out
    assert "x@a,z@pi" in listed and "x@a,y@b" in listed
    shown = invoke(["show", "q"], env)
    assert shown.code == 0 and "senders:   x: a, z: pi" in shown.out
    assert invoke(["show", "q", "--json"], env).json()["senders"] == {"x": "a", "z": "pi"}


def test_results_lost_from_the_file_are_written_again_not_sent_again(
    pair: tuple[World, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = pair
    path = a.box.spool / "scheduled" / "p.md"
    before = path.read_bytes()
    as_host(monkeypatch, "a", a).run()
    assert "x" in a.box.post("scheduled", "p").results
    path.write_bytes(before)  # as if the write had not reached the disk, or a sync undid it
    as_host(monkeypatch, "a", a).run()
    assert "x" in a.box.post("scheduled", "p").results
    assert len(a.box.records("x")) == 1


def test_now_sends_this_hosts_accounts_and_says_what_waits_for_others(
    pair: tuple[World, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = pair
    view = send_one(as_host(monkeypatch, "a", a).app, "p")
    assert view["state"] == "scheduled" and set(view["results"]) == {"x"}
    assert view["error"] == "this host (a) sends none of them: y from b"
    assert len(a.box.records("x")) == 1 and a.box.records("y") == []
