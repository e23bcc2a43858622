"""`send --once` and `now` as subprocesses on hosts named by $PLURSPOOL_HOST, with daemon.host
and [senders] (plurspool(5), SEVERAL MACHINES)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.daemon_helpers import Sandbox, iso, post_text


def test_a_host_that_sends_nothing_says_why_and_touches_nothing(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.exec_account("x")
    box.daemon_keys["host"] = "server"
    box.write_config()
    path = box.deliver("scheduled", "p", post_text("hi", schedule=iso(time.time() - 5)))
    before = path.read_bytes()
    laptop = {"PLURSPOOL_HOST": "laptop"}
    run = box.cli("send", "--once", env=laptop)
    assert run.code == 0, run.err
    [line] = [line for line in run.err.splitlines() if "not-sending" in line]
    assert "host=laptop" in line and "x from server" in line, line
    assert path.read_bytes() == before and box.records("x") == []
    # `now` makes it due now (the sending host learns that through the sync), sends nothing.
    now = box.cli("now", "p", env=laptop)
    assert now.code == 1 and "this host (laptop) sends none of them: x from server" in now.err
    assert box.is_in("p", "scheduled") and box.records("x") == []
    assert box.cli("send", "--once", env={"PLURSPOOL_HOST": "server"}).code == 0
    assert box.is_in("p", "sent") and len(box.records("x")) == 1
