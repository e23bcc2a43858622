"""Generic fixtures; the helpers themselves live in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import make_env

# The session fixtures of tests/peers that start (or reach) a protocol peer.
PEER_FIXTURES = {"nostr_relays", "mastodon_mock", "pds"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An isolated environment: HOME and the XDG dirs under tmp_path, TZ=UTC."""
    return make_env(tmp_path / "env")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a peer must be marked `peers`, or the quick subset would start peers."""
    unmarked = [
        item.nodeid
        for item in items
        if PEER_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("peers") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests use a protocol peer but are not marked @pytest.mark.peers; "
            "add the marker (see CONTRIBUTING.md):\n  " + "\n  ".join(unmarked)
        )
