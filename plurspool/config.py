"""The configuration: one table of keys, from which validation, docs and `init`'s file all come.

Every key has a type, a default, a one-line doc and a parser. `load()` reads the TOML file, rejects
unknown keys and bad values with a `ConfigError` naming the file and the key, and returns a frozen
`Config`. Secrets are never read here: `Account.secret()` fetches one when a sender needs it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from plurspool import when
from plurspool.errors import ConfigError, TimeError
from plurspool.paths import config_file as config_file
from plurspool.paths import config_path as config_path
from plurspool.paths import default_spool as default_spool
from plurspool.paths import expand_user as _expand_user
from plurspool.paths import state_dir as state_dir

PLATFORMS = ("mastodon", "bluesky", "nostr", "exec", "outbox")
# The secret each platform needs, as the `what` of `Account.secret()`.
SECRET_KINDS: Mapping[str, str] = MappingProxyType(
    {"mastodon": "token", "bluesky": "password", "nostr": "key"}
)
BUILTIN_ACCOUNT = "outbox"
ON_FAILURE_FIELDS = ("id", "error", "account", "path")
SECRET_CMD_TIMEOUT = 30.0

_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_-]+")
_REDACTED = "<set>"


# --- the public result ----------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """At most `count` sends in any sliding `window`; `text` is what the user wrote."""

    count: int
    window: timedelta
    text: str


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
        if what not in SECRET_KINDS.values():
            raise ValueError(f"unknown secret kind {what!r}")
        environ = os.environ if env is None else env
        cmd = self.options.get(f"{what}_cmd")
        if cmd is not None:
            key = (self.name, what, cmd)
            if key not in _FROM_COMMANDS:
                _FROM_COMMANDS[key] = _secret_from_command(self.name, f"{what}_cmd", cmd, env)
            return _FROM_COMMANDS[key]
        path = self.options.get(f"{what}_file")
        if path is not None:
            return _secret_from_file(self.name, f"{what}_file", Path(path))
        value = environ.get(secret_env_var(self.name, what))
        return value if value else None


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

    def on_failure_argv(self, *, id: str, error: str, account: str, path: str) -> list[str] | None:
        """The `on_failure` command with its placeholders filled in, or None when unset."""
        if self.on_failure is None:
            return None
        values = {"id": id, "error": error, "account": account, "path": path}
        return [arg.format(**values) for arg in self.on_failure]


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

    def account(self, name: str) -> Account:
        """The account called `name`; a ConfigError listing the known ones otherwise."""
        try:
            return self.accounts[name]
        except KeyError:
            raise ConfigError(
                f"no account named {name!r}",
                f"configured accounts: {', '.join(self.accounts)}" + _where_hint(self.path),
            ) from None


# --- the table of keys ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    """Where values come from, so that errors can name the file and paths can be resolved."""

    file: Path | None
    env: Mapping[str, str]

    def error(self, key: str, message: str, hint: str = "") -> ConfigError:
        where = f"{self.file}: " if self.file is not None else ""
        return ConfigError(f"{where}{key}: {message}", hint)

    def path(self, text: str) -> Path:
        """Expand `~`; a relative path is relative to the config file's directory."""
        p = _expand_user(text, self.env)
        if not p.is_absolute() and self.file is not None:
            p = self.file.parent / p
        return p


Parser = Callable[[object, str, _Ctx], Any]


@dataclass(frozen=True)
class Key:
    """One configuration key: the single source of its validation and its documentation."""

    name: str  # dotted; NAME stands for an account or rate-limit name
    type: str
    default: Any  # as written in TOML; None when unset or computed (see default_doc)
    doc: str
    parse: Parser
    default_doc: str | None = None
    platform: str | None = None  # for accounts.NAME.* keys: the platform it belongs to
    required: bool = False
    example: Any = None  # shown in default_config_text() when there is no literal default

    @property
    def leaf(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def has_literal_default(self) -> bool:
        return self.default is not None and self.default_doc is None

    def default_text(self) -> str:
        """The default as the docs show it: a TOML value, or words."""
        if self.default_doc is not None:
            return self.default_doc
        if self.required:
            return "required"
        if self.default is None:
            return "unset"
        return _toml_value(self.default)


def _type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "a table"}
    return names.get(type(value), "a date or time")


def _p_str(value: object, key: str, ctx: _Ctx) -> str:
    if not isinstance(value, str):
        raise ctx.error(key, f"expected a string, not {_type_name(value)}", "put it in quotes")
    if not value.strip():
        raise ctx.error(key, "must not be empty", "remove the line to use the default")
    return value


def _p_secret_cmd(value: object, key: str, ctx: _Ctx) -> str:
    # Never echo the value: it may hold a secret inlined by the user.
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(
            key, "expected a non-empty string holding a shell command", 'e.g. "pass show social/x"'
        )
    return value


def _p_path(value: object, key: str, ctx: _Ctx) -> Path:
    return ctx.path(_p_str(value, key, ctx))


def _p_duration(value: object, key: str, ctx: _Ctx) -> timedelta:
    hint = 'write a duration in quotes, like "60s", "5m" or "1h30m"'
    if not isinstance(value, str):
        raise ctx.error(key, f"expected a duration, not {_type_name(value)}", hint)
    try:
        d = when.parse_duration(value)
    except TimeError as e:
        raise ctx.error(key, e.message, e.hint or hint) from None
    if d < timedelta(seconds=1):
        raise ctx.error(key, f"{value!r} is too short", "use at least 1s")
    return d


def _p_int(minimum: int) -> Parser:
    def parse(value: object, key: str, ctx: _Ctx) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.error(key, f"expected an integer, not {_type_name(value)}", "e.g. 5")
        if value < minimum:
            raise ctx.error(key, f"{value} is too small", f"use {minimum} or more")
        return value

    return parse


_SIZE_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE_UNITS |= {"k": 1024, "m": 1024**2, "kb": 1000, "mb": 1000**2}


def _p_size(value: object, key: str, ctx: _Ctx) -> int:
    hint = 'a number of bytes, or with a unit: "512KiB", "1MiB"'
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ctx.error(key, f"expected a size, not {_type_name(value)}", hint)
    if isinstance(value, int):
        size = value
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", value)
        if m is None or m.group(2).lower() not in _SIZE_UNITS:
            raise ctx.error(key, f"{value!r} is not a size", hint)
        size = int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    if size < 1:
        raise ctx.error(key, "must be at least 1 byte", hint)
    return size


def _p_str_list(value: object, key: str, ctx: _Ctx) -> tuple[str, ...]:
    hint = 'write a list of strings, like ["a", "b"]'
    if not isinstance(value, list):
        raise ctx.error(key, f"expected a list of strings, not {_type_name(value)}", hint)
    if not value:
        raise ctx.error(key, "must not be an empty list", "remove the line to use the default")
    for item in value:
        if not isinstance(item, str) or not item:
            raise ctx.error(key, "every item must be a non-empty string", hint)
    return tuple(value)


def _p_argv(value: object, key: str, ctx: _Ctx) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ctx.error(
            key,
            "expected a list: the program and its arguments",
            f'write ["sh", "-c", {_toml_value(value)}] to run it through the shell',
        )
    return _p_str_list(value, key, ctx)


def _p_on_failure(value: object, key: str, ctx: _Ctx) -> tuple[str, ...]:
    import string

    argv = _p_argv(value, key, ctx)
    hint = "placeholders: " + ", ".join(f"{{{f}}}" for f in ON_FAILURE_FIELDS)
    hint += "; write {{ and }} for literal braces"
    for arg in argv:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(arg) if f is not None]
        except ValueError:
            raise ctx.error(key, f"unbalanced braces in {arg!r}", hint) from None
        for f in fields:
            if f not in ON_FAILURE_FIELDS:
                raise ctx.error(key, f"unknown placeholder {{{f}}} in {arg!r}", hint)
        try:  # a bad format spec ("{id:d}") would otherwise fail only when a post fails
            arg.format(**dict.fromkeys(ON_FAILURE_FIELDS, ""))
        except ValueError as e:
            raise ctx.error(key, f"{arg!r}: {e}", hint) from None
    return argv


def _p_timezone(value: object, key: str, ctx: _Ctx) -> str:
    name = _p_str(value, key, ctx)
    try:
        when.local_zone(name)
    except ConfigError as e:
        raise ctx.error(
            key, f"unknown time zone {name!r}", 'use an IANA name, like "Europe/Berlin"'
        ) from e
    return name


def parse_rate(text: str) -> RateLimit:
    """Parse "30/hour", "100/day", "10/15m"; ValueError (with the reason) otherwise."""
    count_text, slash, unit = text.partition("/")
    count_text, unit = count_text.strip(), unit.strip()
    if not slash or not re.fullmatch(r"[0-9]+", count_text):
        raise ValueError("expected COUNT/PERIOD")
    count = int(count_text)
    if count < 1:
        raise ValueError("the count must be at least 1")
    # A bare unit ("hour", "days", "h") is one of it; otherwise a duration ("15m").
    period = "1" + unit if unit.isalpha() else unit
    try:
        window = when.parse_duration(period)
    except TimeError:
        raise ValueError(f"{unit!r} is not a period") from None
    return RateLimit(count=count, window=window, text=text.strip())


def _p_rate(value: object, key: str, ctx: _Ctx) -> RateLimit:
    hint = 'write COUNT/PERIOD in quotes: "30/hour", "100/day", "10/15m"'
    if not isinstance(value, str):
        raise ctx.error(key, f"expected a rate, not {_type_name(value)}", hint)
    try:
        return parse_rate(value)
    except ValueError as e:
        raise ctx.error(key, f"{value!r} is not a rate ({e})", hint) from None


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(value: str, key: str, ctx: _Ctx, secure: str, plain: str) -> str:
    """A URL with scheme `secure`, or `plain` for a loopback host; returned without a final /."""
    hint = f"use {secure}://HOST ({plain}:// only for localhost, 127.0.0.1 or ::1)"
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ctx.error(key, f"{value!r} is not a URL", hint) from None
    if parts.username is not None or parts.password is not None:
        # Do not echo it: it holds credentials.
        raise ctx.error(key, "the URL must not hold a user name or password", hint)
    scheme = parts.scheme.lower()
    if not host or scheme not in (secure, plain):
        raise ctx.error(key, f"{value!r} is not a {secure}:// URL", hint)
    if scheme == plain and not _is_loopback(host):
        raise ctx.error(key, f"{value!r}: {plain}:// is only allowed for loopback hosts", hint)
    if parts.query or parts.fragment:
        raise ctx.error(key, f"{value!r} must not have a query or fragment", hint)
    return value.strip().rstrip("/")


def _p_https_url(value: object, key: str, ctx: _Ctx) -> str:
    url = _check_url(_p_str(value, key, ctx), key, ctx, "https", "http")
    if urlsplit(url).path not in ("", "/"):
        raise ctx.error(
            key, f"{url!r} must be just the server, without a path", "e.g. https://HOST"
        )
    return url


def _p_relays(value: object, key: str, ctx: _Ctx) -> tuple[str, ...]:
    relays = _p_str_list(value, key, ctx)
    checked = [_check_url(r, key, ctx, "wss", "ws") for r in relays]
    return tuple(dict.fromkeys(checked))  # drop duplicates, keep the order


def _p_handle(value: object, key: str, ctx: _Ctx) -> str:
    handle = _p_str(value, key, ctx).strip().removeprefix("@")
    if not handle or any(c.isspace() for c in handle):
        raise ctx.error(key, f"{value!r} is not a handle", 'e.g. "me.bsky.social"')
    return handle


def _p_platform(value: object, key: str, ctx: _Ctx) -> str:
    name = _p_str(value, key, ctx)
    if name not in PLATFORMS:
        raise ctx.error(key, f"unknown platform {name!r}", f"use one of: {', '.join(PLATFORMS)}")
    return name


def _p_names(value: object, key: str, ctx: _Ctx) -> tuple[str, ...]:
    # Checked against the accounts once they are known, in load().
    return tuple(dict.fromkeys(_p_str_list(value, key, ctx)))


def _secret_keys(platform: str, what: str, store: str) -> list[Key]:
    env = f"PLURSPOOL_<NAME>_{what.upper()}"
    return [
        Key(
            f"accounts.NAME.{what}_cmd",
            "command",
            None,
            f"Shell command (run with sh -c) whose first output line is the {what}.",
            _p_secret_cmd,
            platform=platform,
            example=f"pass show {store}",
        ),
        Key(
            f"accounts.NAME.{what}_file",
            "path",
            None,
            f"File holding the {what}, mode 0600; else the {what} comes from ${env}.",
            _p_path,
            platform=platform,
            example=f"~/.config/plurspool/{what}",
        ),
    ]


KEYS: tuple[Key, ...] = (
    Key(
        "spool",
        "path",
        None,
        "The spool directory; $PLURSPOOL_SPOOL and --spool override it."
        " A relative path is relative to this file.",
        _p_path,
        default_doc="$XDG_DATA_HOME/plurspool/spool",
        example="~/posts",
    ),
    Key(
        "timezone",
        "time zone",
        None,
        'IANA time zone for local times, like "Europe/Berlin".',
        _p_timezone,
        default_doc="the system's",
        example="Europe/Berlin",
    ),
    Key(
        "default_platforms",
        "list of accounts",
        None,
        "Accounts a post goes to when it names none. Unset: every configured account"
        ' (so set it once you have several), or "outbox" when none is configured.',
        _p_names,
        default_doc="every configured account",
        example=["mastodon"],
    ),
    Key(
        "max_post_size",
        "size",
        "1MiB",
        'Largest post file read from the spool: bytes, or "512KiB", "1MiB".',
        _p_size,
    ),
    Key(
        "daemon.poll_interval",
        "duration",
        "60s",
        "How often to look for work where inotify is unavailable.",
        _p_duration,
    ),
    Key(
        "daemon.rescan_interval",
        "duration",
        "5m",
        "Full rescan of the spool, whatever file events said.",
        _p_duration,
    ),
    Key(
        "daemon.max_retries",
        "integer",
        5,
        "Retries of a transient failure before a post goes to failed/ (0: none).",
        _p_int(0),
    ),
    Key(
        "daemon.retry_delay",
        "duration",
        "5m",
        "First retry delay; it doubles each time, with jitter, capped.",
        _p_duration,
    ),
    Key(
        "daemon.shutdown_timeout",
        "duration",
        "25s",
        "On SIGTERM, how long sends in flight may take to finish.",
        _p_duration,
    ),
    Key(
        "daemon.host",
        "string",
        None,
        "If set, only the host with this name sends (for spools shared through git).",
        _p_str,
        default_doc="unset (any host sends)",
        example="homeserver",
    ),
    Key(
        "daemon.max_lateness",
        "duration",
        "6h",
        "Posts found due more than this after their time go to failed/, whenever they are"
        " found (at start, or arriving late through a sync).",
        _p_duration,
    ),
    Key(
        "daemon.on_failure",
        "command",
        None,
        "Program and arguments run on every permanent failure, not through a shell;"
        " {id}, {error}, {account} and {path} are replaced.",
        _p_on_failure,
        example=["notify-send", "plurspool: {id} failed", "{error}"],
    ),
    Key(
        "rate_limits.NAME",
        "rate",
        None,
        'Sliding-window limit for the account or platform NAME: "30/hour", "100/day",'
        ' "10/15m". Posts are delayed, never failed, by it.',
        _p_rate,
        default_doc="no limit",
        example="30/hour",
    ),
    Key(
        "accounts.NAME.platform",
        "platform",
        None,
        "The account's platform: " + ", ".join(PLATFORMS) + ".",
        _p_platform,
        default_doc="NAME",
    ),
    Key(
        "accounts.NAME.instance",
        "URL",
        None,
        "The Mastodon server, https:// (http:// only for a loopback host).",
        _p_https_url,
        platform="mastodon",
        required=True,
        example="https://example.social",
    ),
    *_secret_keys("mastodon", "token", "social/mastodon"),
    Key(
        "accounts.NAME.handle",
        "string",
        None,
        "The Bluesky handle (or DID) to log in with.",
        _p_handle,
        platform="bluesky",
        required=True,
        example="me.example.com",
    ),
    Key(
        "accounts.NAME.service",
        "URL",
        "https://bsky.social",
        "The PDS to log in at, https:// (http:// only for a loopback host).",
        _p_https_url,
        platform="bluesky",
    ),
    *_secret_keys("bluesky", "password", "social/bluesky-app-password"),
    Key(
        "accounts.NAME.relays",
        "list of URLs",
        None,
        "Nostr relays, wss:// (ws:// only for a loopback host).",
        _p_relays,
        platform="nostr",
        required=True,
        example=["wss://relay.example.com"],
    ),
    *_secret_keys("nostr", "key", "social/nostr-nsec"),
    Key(
        "accounts.NAME.min_relays",
        "integer",
        1,
        "How many relays must accept an event for the send to succeed.",
        _p_int(1),
        platform="nostr",
    ),
    Key(
        "accounts.NAME.command",
        "command",
        None,
        "Program and arguments run once per post with the post as JSON on stdin.",
        _p_argv,
        platform="exec",
        required=True,
        example=["sh", "-c", "cat >> ~/posted.jsonl"],
    ),
    Key(
        "accounts.NAME.timeout",
        "duration",
        "60s",
        "How long the command may run before the send counts as a temporary failure.",
        _p_duration,
        platform="exec",
    ),
    Key(
        "accounts.NAME.path",
        "path",
        None,
        "The JSON-lines file posts are appended to.",
        _p_path,
        platform="outbox",
        default_doc="$XDG_STATE_HOME/plurspool/outbox.jsonl",
        example="~/outbox.jsonl",
    ),
)

_BY_NAME = {k.name: k for k in KEYS if k.platform is None}
_TABLES = ("daemon", "rate_limits", "accounts")


def _platform_keys(platform: str) -> dict[str, Key]:
    return {k.leaf: k for k in KEYS if k.platform == platform}


# What each `*_cmd` said, kept for the rest of a sender's pass: 1,000 posts due at once run
# `pass show ...` once, not 1,000 times. `forget_secrets` (called at the end of every pass)
# drops them; nothing else keeps a secret.
_FROM_COMMANDS: dict[tuple[str, str, str], str] = {}


def forget_secrets() -> None:
    _FROM_COMMANDS.clear()


def secret_env_var(account: str, what: str) -> str:
    """The environment variable holding an account's secret: PLURSPOOL_<ACCOUNT>_<WHAT>."""
    return "PLURSPOOL_" + re.sub(r"[^A-Za-z0-9]", "_", account).upper() + "_" + what.upper()


# --- loading --------------------------------------------------------------------------------


def _where_hint(path: Path | None) -> str:
    return f" (in {path})" if path is not None else ""


def did_you_mean(word: str, known: Sequence[str]) -> str | None:
    """The known key closest to a mistyped one, if one is close (config and post keys alike)."""
    import difflib

    close = difflib.get_close_matches(word, known, n=1)
    return close[0] if close else None


def _unknown_key(ctx: _Ctx, key: str, known: list[str], section: str) -> ConfigError:
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


def _table(value: object, key: str, ctx: _Ctx) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.error(key, f"expected a table, not {_type_name(value)}", f"write it as [{key}]")
    return value


def _section(raw: Mapping[str, Any], prefix: str, ctx: _Ctx) -> dict[str, Any]:
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


def _account(name: str, raw: object, ctx: _Ctx, state: Path) -> Account:
    prefix = f"accounts.{name}"
    if not _ACCOUNT_NAME.fullmatch(name):
        raise ctx.error(
            prefix, "bad account name", "use only letters, digits, '-' and '_' in account names"
        )
    table = _table(raw, prefix, ctx)
    platform_key = _BY_NAME["accounts.NAME.platform"]
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
    keys = _platform_keys(platform)
    options: dict[str, Any] = {}
    for leaf, value in table.items():
        if leaf == "platform":
            continue
        if leaf not in keys:
            raise _unknown_key(
                ctx, f"{prefix}.{leaf}", ["platform", *keys], f" for a {platform} account"
            )
        options[leaf] = keys[leaf].parse(value, f"{prefix}.{leaf}", ctx)
    for leaf, key in keys.items():
        if leaf in options:
            continue
        if key.required:
            example = _toml_value(key.example)
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
    if platform == "nostr" and options["min_relays"] > len(options["relays"]):
        raise ctx.error(
            f"{prefix}.min_relays",
            f"{options['min_relays']} is more than the {len(options['relays'])} relay(s) listed",
            "lower min_relays or add relays",
        )
    if platform == "outbox" and "path" not in options:
        options["path"] = state / "outbox.jsonl"
    return Account(name=name, platform=platform, options=MappingProxyType(options))


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
    ctx = _Ctx(file=used, env=environ)

    daemon_raw, rates_raw, accounts_raw = (_table(raw.pop(t, {}), t, ctx) for t in _TABLES)
    top = _section(raw, "", ctx)
    daemon = DaemonConfig(**_section(daemon_raw, "daemon.", ctx))

    state = state_dir(environ)
    accounts = {name: _account(name, value, ctx, state) for name, value in accounts_raw.items()}
    if not accounts:
        accounts[BUILTIN_ACCOUNT] = Account(
            BUILTIN_ACCOUNT, "outbox", MappingProxyType({"path": state / "outbox.jsonl"})
        )

    defaults: tuple[str, ...] = top["default_platforms"] or tuple(accounts)
    for name in defaults:
        if name not in accounts:
            raise ctx.error(
                "default_platforms",
                f"no account named {name!r}",
                f"configured accounts: {', '.join(accounts)}",
            )

    rate_key = _BY_NAME["rate_limits.NAME"]
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
        spool_path = _expand_user(spool, environ)
    elif environ.get("PLURSPOOL_SPOOL"):
        spool_path = _expand_user(environ["PLURSPOOL_SPOOL"], environ)
    elif top["spool"] is not None:
        spool_path = top["spool"]
    else:
        spool_path = default_spool(environ)

    tz_name: str | None = top["timezone"]
    return Config(
        path=used,
        spool=spool_path.absolute(),
        timezone=when.local_zone(tz_name),
        timezone_name=tz_name,
        default_platforms=defaults,
        daemon=daemon,
        rate_limits=MappingProxyType(rate_limits),
        accounts=MappingProxyType(accounts),
        max_post_size=top["max_post_size"],
        state_dir=state,
    )


# --- secrets --------------------------------------------------------------------------------


def _secret_from_command(account: str, key: str, cmd: str, env: Mapping[str, str] | None) -> str:
    """Run `cmd` through sh -c; its first output line is the secret. Its output is never shown."""
    import subprocess

    name = f"accounts.{account}.{key}"
    hint = f"run the command in {name} yourself to see what it says"
    try:
        proc = subprocess.Popen(
            ["sh", "-c", cmd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,  # captured and dropped: it might echo the secret
            env=None if env is None else dict(env),
            start_new_session=True,  # so that a timeout can kill the whole group
        )
    except OSError as e:
        raise ConfigError(f"{name}: cannot run sh: {e.strerror}", hint) from None
    try:
        out, _ = proc.communicate(timeout=SECRET_CMD_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ConfigError(
            f"{name}: the command did not finish within {SECRET_CMD_TIMEOUT:g} s", hint
        ) from None
    if proc.returncode != 0:
        raise ConfigError(f"{name}: the command failed (exit status {proc.returncode})", hint)
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: the command's output is not UTF-8 text", hint) from None
    lines = text.splitlines()
    secret = lines[0] if lines else ""
    if not secret:
        raise ConfigError(f"{name}: the command printed nothing", hint)
    return secret


def _secret_from_file(account: str, key: str, path: Path) -> str:
    """Read a secret file, refusing one that others could read."""
    name = f"accounts.{account}.{key}"
    try:
        # O_NONBLOCK: a FIFO planted there must not hang us; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"{name}: {path} does not exist", "create it, mode 0600") from None
    except OSError as e:
        raise ConfigError(f"{name}: cannot open {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{name}: {path} is not a regular file")
        if st.st_mode & 0o077:
            raise ConfigError(
                f"{name}: {path} is open to group or others (mode {stat.S_IMODE(st.st_mode):04o})",
                f"chmod 600 {path}",
            )
        if st.st_uid != os.getuid():
            raise ConfigError(f"{name}: {path} is not owned by you", f"chown $USER {path}")
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: {path} is not UTF-8 text") from None
    lines = text.splitlines()
    secret = lines[0].strip() if lines else ""
    if not secret:
        raise ConfigError(f"{name}: {path} is empty", f"write the secret into {path}")
    return secret


# --- documentation, generated from the table ------------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _doc_rows() -> list[tuple[Key, str]]:
    """Each key with its description, prefixed by its platform for account keys."""
    return [(k, f"{k.platform}: {k.doc}" if k.platform else k.doc) for k in KEYS]


def reference_markdown() -> str:
    """The configuration reference as a Markdown table (key, type, default, description)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, doc in _doc_rows():
        default = cell(key.default_text())
        if key.has_literal_default:
            default = f"`{default}`"
        lines.append(f"| `{key.name}` | {cell(key.type)} | {default} | {cell(doc)} |")
    return "\n".join(lines) + "\n"


def _roff(text: str) -> str:
    # A minus sign for options ("--spool"), a plain hyphen inside words ("JSON-lines").
    text = re.sub(r"(?<![A-Za-z0-9])-", r"\\-", text.replace("\\", "\\e"))
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def reference_roff() -> str:
    """The configuration reference as roff for plurspool-config(5), section KEYS."""
    lines = []
    for key, doc in _doc_rows():
        lines.append(".TP")
        lines.append(f".B {_roff(key.name)}")
        lines.append(_roff(f"({key.type}; default: {key.default_text()})"))
        lines.append(".br")
        lines.append(_roff(doc))
    return "\n".join(lines) + "\n"


def _commented(key: Key) -> list[str]:
    import textwrap

    value = key.default if key.default is not None else key.example
    lines = textwrap.wrap(key.doc, width=78, initial_indent="# ", subsequent_indent="# ")
    if key.required:
        lines.append("# Required.")
    elif key.default_doc is not None:
        lines.append(f"# Default: {key.default_doc}.")
    if value is not None:
        lines.append(f"#{key.leaf} = {_toml_value(value)}")
    return lines


def default_config_text() -> str:
    """The config.toml `plurspool init` writes: every key commented out, with default and doc."""
    out = [
        "# plurspool configuration; see plurspool-config(5). Every key below is commented",
        "# out and shows its default (or an example). With no account configured, posts go",
        "# to the built-in `outbox` account, a JSON-lines file in the state directory.",
        "",
    ]
    for key in KEYS:
        if "." not in key.name:
            out += [*_commented(key), ""]
    out += ["[daemon]", ""]
    for key in KEYS:
        if key.name.startswith("daemon."):
            out += [*_commented(key), ""]
    rate = _BY_NAME["rate_limits.NAME"]
    out += ["[rate_limits]", *_commented(rate)[:-1], f"#mastodon = {_toml_value(rate.example)}", ""]
    out += ["# Accounts: [accounts.NAME]; platform defaults to NAME.", ""]
    for platform in PLATFORMS:
        out.append(f"#[accounts.{platform}]")
        out.append(f'#platform = "{platform}"')
        for key in _platform_keys(platform).values():
            out += _commented(key)
        out.append("")
    return "\n".join(out)
