"""Setting plurspool up on this host: the config written once, the spool made, accounts checked."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import PlurspoolError

if TYPE_CHECKING:
    from pathlib import Path

    from .app import App
    from .config import Config


@dataclass(frozen=True)
class Initialised:
    """What `plurspool init` set up (or found set up already)."""

    config: Path
    config_created: bool
    spool: Path
    state_dir: Path

    def as_dict(self) -> dict[str, object]:
        return {
            "config": str(self.config),
            "config_created": self.config_created,
            "spool": str(self.spool),
            "state_dir": str(self.state_dir),
        }


def init(config: Path, open_core: Callable[[], App]) -> Initialised:
    """Write the commented default config at `config` unless a file is there, then open the
    spool with `open_core` and create it, with a keep file in each state directory."""
    created = write_default_config(config)
    app = open_core()
    app.spool.ensure(keep=True)  # the keep files, so that git keeps the state dirs
    return Initialised(config, created, app.root, app.state_dir)


def write_default_config(path: Path) -> bool:
    """Write the default config at `path` (mode 0600) unless it exists; True if written."""
    from .config import default_config_text

    if path.exists():
        return False
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(default_config_text())
    except OSError as exc:
        raise PlurspoolError(
            f"cannot write {path}: {exc.strerror}", "check the directory's permissions"
        ) from None
    return True


def accounts(config: Config) -> list[dict[str, Any]]:
    """The configured accounts by name: their platform, and whether posts go there by default."""
    return [
        {"name": name, "platform": acc.platform, "default": name in config.default_platforms}
        for name, acc in sorted(config.accounts.items())
    ]


def try_logins(config: Config, names: Sequence[str]) -> list[dict[str, Any]]:
    """Log in to the accounts `names` (default: all) and say who each is there; sends nothing.

    An account that cannot log in is reported with its error and hint, not raised; an unknown
    name raises (ConfigError), before any account is tried.
    """
    from .platforms import get

    chosen = [config.account(n) for n in names] or list(config.accounts.values())
    reports: list[dict[str, Any]] = []
    for account in chosen:
        try:
            info = get(account.platform).test(account, config.state_dir)
            reports.append({"account": account.name, "ok": True, **info})
        except PlurspoolError as exc:
            reports.append(
                {"account": account.name, "ok": False, "error": exc.message, "hint": exc.hint}
            )
    return reports
