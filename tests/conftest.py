"""Generic fixtures; the helpers themselves live in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import make_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An isolated environment: HOME and the XDG dirs under tmp_path, TZ=UTC."""
    return make_env(tmp_path / "env")
