"""Loading the configuration: the TOML file's tables and accounts, checked against the key table,
into a frozen `Config`.

`load()` rejects unknown keys and bad values with a `ConfigError` naming the file and the key.
Secrets are never read here: `Account.secret()` fetches one when a sender needs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .. import when
from ..errors import ConfigError, InvalidInput, did_you_mean
from ..hosts import host_name, sender_of
from ..paths import config_file, default_spool, expand_user, state_dir
from ..platforms import PLATFORMS
from ..platforms import options as platform_options
from ..platforms.options import SECRET_KINDS
from ..slots import SlotError, Slots, window_slots
from .keys import (
    BY_NAME,
    COMMON_ACCOUNT_KEYS,
    KEYS,
    Ctx,
    RateLimit,
    platform_keys,
    toml_value,
    type_name,
)
from .secrets import read_secret

BUILTIN_ACCOUNT = "outbox"
DEFAULT_QUEUE = "default"  # the queue of `post --queue` and `schedule: queue` without a name
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_-]+")
_REDACTED = "<set>"
_TABLES = ("daemon", "rate_limits", "accounts", "queues", "git", "feeds", "calendar", "senders")
_QUEUE_PREFIX = "queues.NAME."


@dataclass(frozen=True, repr=False)
class Account:
    """A configured account: its name, its platform and its validated platform keys."""

    name: str
    platform: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __repr__(self) -> str:
        # Commands and file paths are not secrets, but a user may inline one in a command
        # ("echo hunter2"), so their values never leave this object through repr.
        shown = {
            k: (_REDACTED if k.endswith(("_cmd", "_file")) else v) for k, v in self.options.items()
        }
        return f"Account(name={self.name!r}, platform={self.platform!r}, options={shown!r})"

    def secret(self, what: str, *, env: Mapping[str, str] | None = None) -> str | None:
        """The secret `what` (token, password, key): `<what>_cmd`, `<what>_file`, env, or None."""
        return read_secret(self.name, self.options, what, env)


@dataclass(frozen=True)
class DaemonConfig:
    """The `[daemon]` table."""

    poll_interval: timedelta
    rescan_interval: timedelta
    retry_delay: timedelta
    shutdown_timeout: timedelta
    max_lateness: timedelta
    max_retries: int
    host: str | None
    on_failure: tuple[str, ...] | None

    def on_failure_argv(
        self, *, id: str, error: str, account: str, path: str, event: str = "send"
    ) -> list[str] | None:
        """The `on_failure` command with its placeholders filled in, or None when unset."""
        if self.on_failure is None:
            return None
        values = {"id": id, "error": error, "account": account, "path": path, "event": event}
        return [arg.format(**values) for arg in self.on_failure]


@dataclass(frozen=True)
class GitConfig:
    """The `[git]` table (plurspool(1), "Reviewing and syncing with git")."""

    send_only_committed: bool = False
    branch: str | None = None
    autocommit: bool = False
    push: bool = False


@dataclass(frozen=True)
class FeedsConfig:
    """The `[feeds]` table."""

    poll_interval: timedelta


@dataclass(frozen=True)
class QueueConfig:
    """A `[queues.NAME]` table: its slots (in its zone), accounts and whether it reflows."""

    name: str
    slots: Slots
    accounts: tuple[str, ...] | None
    reflow: bool


@dataclass(frozen=True)
class Config:
    """Everything the configuration decides, validated."""

    path: Path | None
    spool: Path
    timezone: tzinfo
    timezone_name: str | None
    default_platforms: tuple[str, ...]
    daemon: DaemonConfig
    rate_limits: Mapping[str, RateLimit]
    accounts: Mapping[str, Account]
    max_post_size: int
    state_dir: Path
    feeds: FeedsConfig
    queues: Mapping[str, QueueConfig] = field(default_factory=lambda: MappingProxyType({}))
    git: GitConfig = GitConfig()
    calendar_ics: Path | None = None  # [calendar] ics: the feed the daemon keeps written
    senders: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def sender_of(self, account: str) -> str | None:
        """The host that sends `account` ([senders], else daemon.host); None: any host."""
        return sender_of(account, self.senders, self.daemon.host)

    def sends(self, account: str) -> bool:
        """Whether this host sends `account` (plurspool(5), SEVERAL MACHINES)."""
        return self.sender_of(account) in (None, host_name())

    def mine(self, accounts: Iterable[str]) -> list[str]:
        """Those of `accounts` this host sends."""
        return [a for a in accounts if self.sends(a)]

    def not_here(self, accounts: Iterable[str]) -> str | None:
        """None when this host sends one of `accounts`; else why not, naming their hosts."""
        accounts = list(accounts)
        if any(self.sends(a) for a in accounts):
            return None
        hosts = ", ".join(f"{a} from {self.sender_of(a)}" for a in accounts)
        return f"this host ({host_name()}) sends none of them: {hosts}"

    def queue(self, name: str | None) -> QueueConfig:
        """The queue called `name` (`default` for None); an InvalidInput naming the known ones
        otherwise (plurspool(1): an unknown queue is a check error)."""
        name = name or DEFAULT_QUEUE
        try:
            return self.queues[name]
        except KeyError:
            known = ", ".join(self.queues) or "none"
            raise InvalidInput(
                f"no queue named {name!r}",
                f"configured queues: {known}; add [queues.{name}] to the config"
                + _where_hint(self.path),
            ) from None

    def account(self, name: str) -> Account:
        """The account called `name`; a ConfigError listing the known ones otherwise."""
        try:
            return self.accounts[name]
        except KeyError:
            raise ConfigError(
                f"no account named {name!r}",
                f"configured accounts: {', '.join(self.accounts)}" + _where_hint(self.path),
            ) from None


def _where_hint(path: Path | None) -> str:
    return f" (in {path})" if path is not None else ""


def _unknown_key(ctx: Ctx, key: str, known: list[str], section: str) -> ConfigError:
    close = did_you_mean(key.rsplit(".", 1)[-1], known)
    hint = f"did you mean {close!r}? " if close else ""
    hint += f"known keys{section}: {', '.join(known)}; see plurspool-config(5)"
    return ctx.error(key, "unknown key", hint)


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory", "point --config at a file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied", f"chmod u+r {path}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 (byte {e.start})", "save it as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", msg, re.DOTALL)
        where = f"{path}:{m.group(2)}:{m.group(3)}" if m else str(path)
        reason = m.group(1) if m else msg
        raise ConfigError(
            f"{where}: invalid TOML: {reason}", "see https://toml.io for the syntax"
        ) from None


def _table(value: object, key: str, ctx: Ctx) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.error(key, f"expected a table, not {type_name(value)}", f"write it as [{key}]")
    return value


def _section(raw: Mapping[str, Any], prefix: str, ctx: Ctx) -> dict[str, Any]:
    """Parse the plain keys whose name starts with `prefix`; defaults for the missing ones."""
    keys = {
        k.name.removeprefix(prefix): k
        for k in KEYS
        if k.platform is None and k.name.startswith(prefix) and "." not in k.name[len(prefix) :]
    }
    for leaf in raw:
        if leaf not in keys:
            where = f" in [{prefix.rstrip('.')}]" if prefix else " at the top level"
            tables = [] if prefix else list(_TABLES)
            raise _unknown_key(ctx, prefix + leaf, [*keys, *tables], where)
    out: dict[str, Any] = {}
    for leaf, key in keys.items():
        if leaf in raw:
            out[leaf] = key.parse(raw[leaf], key.name, ctx)
        elif key.default is not None:
            out[leaf] = key.parse(key.default, key.name, ctx)
        else:
            out[leaf] = None
    return out


def _account(
    name: str, raw: object, ctx: Ctx, state: Path, inherited: Mapping[str, Any]
) -> Account:
    """One [accounts.NAME] table; `inherited`: the top-level values of the keys every account
    takes (COMMON_ACCOUNT_KEYS), for those it does not set."""
    prefix = f"accounts.{name}"
    if not _ACCOUNT_NAME.fullmatch(name):
        raise ctx.error(
            prefix, "bad account name", "use only letters, digits, '-' and '_' in account names"
        )
    table = _table(raw, prefix, ctx)
    platform_key = BY_NAME["accounts.NAME.platform"]
    if "platform" in table:
        platform = platform_key.parse(table["platform"], f"{prefix}.platform", ctx)
    elif name in PLATFORMS:
        platform = name
    else:
        raise ctx.error(
            f"{prefix}.platform",
            "not set, and the account name is not a platform",
            f'add platform = "..." under [{prefix}]: one of {", ".join(PLATFORMS)}',
        )
    keys = platform_keys(platform)
    options: dict[str, Any] = dict(inherited)
    for leaf, value in table.items():
        if leaf == "platform":
            continue
        key = keys.get(leaf) or COMMON_ACCOUNT_KEYS.get(leaf)
        if key is None:
            known = ["platform", *COMMON_ACCOUNT_KEYS, *keys]
            raise _unknown_key(ctx, f"{prefix}.{leaf}", known, f" for a {platform} account")
        options[leaf] = key.parse(value, f"{prefix}.{leaf}", ctx)
    for leaf, key in keys.items():
        if leaf in options:
            continue
        if key.required:
            example = toml_value(key.example)
            raise ctx.error(
                f"{prefix}.{leaf}", "missing", f"add {leaf} = {example} under [{prefix}]"
            )
        if key.default is not None:
            options[leaf] = key.parse(key.default, f"{prefix}.{leaf}", ctx)
    what = SECRET_KINDS.get(platform)
    if what and f"{what}_cmd" in options and f"{what}_file" in options:
        raise ctx.error(
            prefix, f"both {what}_cmd and {what}_file are set", "keep one of them, remove the other"
        )
    platform_options.check(platform, options, prefix, ctx)
    platform_options.fill_defaults(platform, options, state)
    return Account(name=name, platform=platform, options=MappingProxyType(options))


def _queue(
    name: str, raw: object, ctx: Ctx, tz: tzinfo, accounts: Mapping[str, Any]
) -> QueueConfig:
    prefix = f"queues.{name}"
    if not _ACCOUNT_NAME.fullmatch(name):
        raise ctx.error(
            prefix, "bad queue name", "use only letters, digits, '-' and '_' in queue names"
        )
    table = _table(raw, prefix, ctx)
    keys = {k.name.removeprefix(_QUEUE_PREFIX): k for k in KEYS if k.name.startswith(_QUEUE_PREFIX)}
    values: dict[str, Any] = {}
    for leaf, value in table.items():
        if leaf not in keys:
            raise _unknown_key(ctx, f"{prefix}.{leaf}", list(keys), f" in [{prefix}]")
        values[leaf] = keys[leaf].parse(value, f"{prefix}.{leaf}", ctx)
    if ("slots" in values) == ("window" in values):
        raise ctx.error(
            prefix,
            "set either slots or window" + (", not both" if "slots" in values else ""),
            'e.g. slots = ["mon-fri 09:00"], or window = "15:00-21:00" with per_day = 3',
        )
    if "window" in values:
        if "per_day" not in values:
            raise ctx.error(f"{prefix}.per_day", "missing", "with window, add per_day = N")
        try:
            rules = window_slots(values["window"], values["per_day"])
        except SlotError as e:
            raise ctx.error(f"{prefix}.per_day", e.message, e.hint) from None
    else:
        if "per_day" in values:
            raise ctx.error(
                f"{prefix}.per_day", "only goes with window", "remove it, or use window"
            )
        rules = values["slots"]
    for account in values.get("accounts") or ():
        if account not in accounts:
            raise ctx.error(
                f"{prefix}.accounts",
                f"no account named {account!r}",
                f"configured accounts: {', '.join(accounts)}",
            )
    zone = when.local_zone(values["timezone"]) if "timezone" in values else tz
    return QueueConfig(
        name, Slots(rules, zone), values.get("accounts"), values.get("reflow", False)
    )


def load(
    path: Path | None = None,
    *,
    spool: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate the config; no file at the default location means all defaults."""
    environ: Mapping[str, str] = os.environ if env is None else env
    explicit = path is not None or bool(environ.get("PLURSPOOL_CONFIG"))
    file = config_file(path, environ)
    raw: dict[str, Any] = {}
    if file.exists() or explicit:
        if not file.exists():
            raise ConfigError(
                f"{file}: no such config file",
                "create it with `plurspool init`, or point --config/$PLURSPOOL_CONFIG elsewhere",
            )
        raw = _read_toml(file)
        used: Path | None = file
    else:
        used = None
    return _build(raw, used, spool, environ)


def defaults(*, spool: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The config as if its file were empty: for the jobs that must work while it is broken."""
    return _build({}, None, spool, os.environ if env is None else env)


def _build(
    raw: dict[str, Any], used: Path | None, spool: str | None, environ: Mapping[str, str]
) -> Config:
    """Validate the config file's tables (`raw`, read from `used`) into a Config."""
    ctx = Ctx(file=used, env=environ)

    (
        daemon_raw,
        rates_raw,
        accounts_raw,
        queues_raw,
        git_raw,
        feeds_raw,
        calendar_raw,
        senders_raw,
    ) = (_table(raw.pop(t, {}), t, ctx) for t in _TABLES)
    top = _section(raw, "", ctx)
    daemon = DaemonConfig(**_section(daemon_raw, "daemon.", ctx))

    state = state_dir(environ)
    inherited = {leaf: top[leaf] for leaf in COMMON_ACCOUNT_KEYS}
    accounts = {
        name: _account(name, value, ctx, state, inherited) for name, value in accounts_raw.items()
    }
    if not accounts:
        builtin: dict[str, Any] = dict(inherited)
        platform_options.fill_defaults("outbox", builtin, state)
        accounts[BUILTIN_ACCOUNT] = Account(BUILTIN_ACCOUNT, "outbox", MappingProxyType(builtin))

    defaults: tuple[str, ...] = top["default_platforms"] or tuple(accounts)
    for name in defaults:
        if name not in accounts:
            raise ctx.error(
                "default_platforms",
                f"no account named {name!r}",
                f"configured accounts: {', '.join(accounts)}",
            )

    rate_key = BY_NAME["rate_limits.NAME"]
    rate_limits: dict[str, RateLimit] = {}
    for name, value in rates_raw.items():
        key = f"rate_limits.{name}"
        if name not in accounts and name not in PLATFORMS:
            raise ctx.error(
                key,
                f"{name!r} is neither an account nor a platform",
                f"accounts: {', '.join(accounts)}; platforms: {', '.join(PLATFORMS)}",
            )
        rate_limits[name] = rate_key.parse(value, key, ctx)

    if spool:
        spool_path = expand_user(spool, environ)
    elif environ.get("PLURSPOOL_SPOOL"):
        spool_path = expand_user(environ["PLURSPOOL_SPOOL"], environ)
    elif top["spool"] is not None:
        spool_path = top["spool"]
    else:
        spool_path = default_spool(environ)

    tz_name: str | None = top["timezone"]
    tz = when.local_zone(tz_name)
    queues = {name: _queue(name, v, ctx, tz, accounts) for name, v in queues_raw.items()}
    return Config(
        path=used,
        spool=spool_path.absolute(),
        timezone=tz,
        timezone_name=tz_name,
        default_platforms=defaults,
        daemon=daemon,
        rate_limits=MappingProxyType(rate_limits),
        accounts=MappingProxyType(accounts),
        max_post_size=top["max_post_size"],
        state_dir=state,
        queues=MappingProxyType(queues),
        git=GitConfig(**_section(git_raw, "git.", ctx)),
        feeds=FeedsConfig(**_section(feeds_raw, "feeds.", ctx)),
        calendar_ics=_section(calendar_raw, "calendar.", ctx)["ics"],
        senders=MappingProxyType(_senders(senders_raw, ctx, accounts)),
    )


def _senders(
    raw: Mapping[str, Any], ctx: Ctx, accounts: Mapping[str, Any]
) -> dict[str, tuple[str, ...]]:
    """[senders]: host -> its accounts, each a configured account under one host only."""
    key = BY_NAME["senders.HOST"]
    out: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for host, value in raw.items():
        name = f"senders.{host}"
        if not host.strip():
            raise ctx.error(name, "empty host name", "name the host as $PLURSPOOL_HOST does")
        out[host] = key.parse(value, name, ctx)
        for account in out[host]:
            if account not in accounts:
                raise ctx.error(
                    name,
                    f"no account named {account!r}",
                    f"configured accounts: {', '.join(accounts)}",
                )
            if account in owner:
                raise ctx.error(
                    name,
                    f"{account!r} is already sent by {owner[account]!r} (senders.{owner[account]})",
                    "an account is sent by one host: keep it under one of them",
                )
            owner[account] = host
    return out
