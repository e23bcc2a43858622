"""The exec platform against its test double: tests/fake_exec.py, whose record file is the "peer".

The command runs once per post with every part in its JSON; it is expected to dedupe on
PLURSPOOL_IDEMPOTENCY_KEY, so what the peer holds is one post per key (see ExecAdapter in
tests/platforms/adapters.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plurspool.platforms import exec as exec_mod
from tests.platforms.adapters import Adapter, ExecAdapter
from tests.platforms.contract import Crash, Peer, PlatformContract, sent
from tests.platforms.fakes import Store, post


class TestExecContract(PlatformContract):
    @pytest.fixture
    def adapter(self, tmp_path: Path) -> Iterator[Adapter]:
        made = ExecAdapter(tmp_path)
        yield made
        made.close()

    def crash_after(self, monkeypatch: pytest.MonkeyPatch, answered: int) -> None:
        # One run carries every part: the crash comes once the command has exited.
        communicate = exec_mod._communicate

        def communicate_then_crash(*args: Any) -> bool:
            communicate(*args)
            raise Crash

        monkeypatch.setattr(exec_mod, "_communicate", communicate_then_crash)

    def test_a_retry_in_doubt_runs_the_command_again_with_the_same_key(
        self, peer: Peer, adapter: ExecAdapter
    ) -> None:
        store = Store()
        with pytest.MonkeyPatch.context() as mp:
            self.crash_after(mp, 1)
            with pytest.raises(Crash):
                peer.send(post("only once"), store, key="k1")
        assert sent(peer.send(post("only once"), store, key="k1", in_doubt=True)) == "k1"
        keys = [r["env"]["PLURSPOOL_IDEMPOTENCY_KEY"] for r in adapter.invocations()]
        assert keys == ["k1", "k1"]  # the command dedupes on it
        assert [r["stdin"]["idempotency_key"] for r in adapter.invocations()] == keys
