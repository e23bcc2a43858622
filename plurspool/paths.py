"""Where plurspool's files are (the XDG directories, the config file, the state directory and the
default spool) and what time it is (`utcnow`).

Every function takes the environment as a mapping, so that tests and `--config`/`--spool`
resolution see the same answer as a user's shell. The XDG base directory specification says a
relative `$XDG_*_HOME` is invalid and must be ignored (plurspool(1), ENVIRONMENT): each variable
is read in `_xdg` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path


def utcnow() -> datetime:
    """The wall clock, as an aware UTC datetime (the one place that reads it)."""
    return datetime.now(UTC)


def expand_user(text: str, env: Mapping[str, str]) -> Path:
    """`text` as a path, with a leading `~` taken from `env`'s HOME."""
    if text == "~" or text.startswith("~/"):
        home = env.get("HOME") or str(Path.home())
        return Path(home + text[1:])
    return Path(text).expanduser()


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or str(Path.home()))


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> Path:
    # The XDG spec says a relative value is invalid and must be ignored.
    value = env.get(var, "")
    if value and Path(value).is_absolute():
        return Path(value)
    return _home(env) / fallback


def config_home(env: Mapping[str, str]) -> Path:
    """$XDG_CONFIG_HOME: where the config file and the systemd user unit go."""
    return _xdg(env, "XDG_CONFIG_HOME", ".config")


def config_path(env: Mapping[str, str]) -> Path:
    """$PLURSPOOL_CONFIG, else $XDG_CONFIG_HOME/plurspool/config.toml."""
    explicit = env.get("PLURSPOOL_CONFIG")
    if explicit:
        return expand_user(explicit, env)
    return config_home(env) / "plurspool" / "config.toml"


def config_file(path: Path | None, env: Mapping[str, str]) -> Path:
    """The config file `load` reads: `path` (--config), else `config_path`."""
    return expand_user(str(path if path is not None else config_path(env)), env)


def state_dir(env: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/plurspool: per-host state (ledger, lock, heartbeat, outbox)."""
    return _xdg(env, "XDG_STATE_HOME", ".local/state") / "plurspool"


def plurcast_db(env: Mapping[str, str]) -> Path:
    """$XDG_DATA_HOME/plurcast/posts.db: Plurcast's own database (`import plurcast`)."""
    return _xdg(env, "XDG_DATA_HOME", ".local/share") / "plurcast" / "posts.db"


def default_spool(env: Mapping[str, str]) -> Path:
    """$XDG_DATA_HOME/plurspool/spool."""
    return _xdg(env, "XDG_DATA_HOME", ".local/share") / "plurspool" / "spool"
