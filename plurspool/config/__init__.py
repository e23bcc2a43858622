"""The configuration: one table of keys, from which validation, docs and `init`'s file all come.

`keys` holds the table and the value parsers, `load` reads the TOML file into a frozen `Config`,
`secrets` fetches an account's secret when a sender needs one, `reference` writes the docs and
the commented config.toml. This module re-exports what the rest of plurspool uses.
"""

from __future__ import annotations

from ..paths import config_file, config_path, default_spool, state_dir
from ..platforms import PLATFORMS
from ..platforms.options import SECRET_KINDS
from .keys import KEYS, ON_FAILURE_FIELDS, Key, RateLimit, parse_rate
from .load import (
    BUILTIN_ACCOUNT,
    DEFAULT_QUEUE,
    Account,
    Config,
    DaemonConfig,
    GitConfig,
    QueueConfig,
    defaults,
    load,
)
from .reference import default_config_text, reference_markdown, reference_roff
from .secrets import forget_secrets, secret_env_var

__all__ = [
    "BUILTIN_ACCOUNT",
    "DEFAULT_QUEUE",
    "KEYS",
    "ON_FAILURE_FIELDS",
    "PLATFORMS",
    "SECRET_KINDS",
    "Account",
    "Config",
    "DaemonConfig",
    "GitConfig",
    "Key",
    "QueueConfig",
    "RateLimit",
    "config_file",
    "config_path",
    "default_config_text",
    "default_spool",
    "defaults",
    "forget_secrets",
    "load",
    "parse_rate",
    "reference_markdown",
    "reference_roff",
    "secret_env_var",
    "state_dir",
]
