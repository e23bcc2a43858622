"""The configuration's key table: every key with its type, default, doc and value parser.

Validation (`load`), the reference in plurspool-config(5) and README.md, and the file `plurspool
init` writes all come from `KEYS`. The keys under [accounts.NAME] are each platform's own, listed
in `plurspool.platforms.options` and collected here in the registry's order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import slots, when
from ..errors import ConfigError, TimeError
from ..paths import expand_user
from ..platforms import PLATFORMS, options

ON_FAILURE_FIELDS = ("id", "error", "account", "path", "event")


@dataclass(frozen=True)
class RateLimit:
    """At most `count` sends in any sliding `window`; `text` is what the user wrote."""

    count: int
    window: timedelta
    text: str


@dataclass(frozen=True)
class Ctx:
    """Where values come from, so that errors can name the file and paths can be resolved."""

    file: Path | None
    env: Mapping[str, str]

    def error(self, key: str, message: str, hint: str = "") -> ConfigError:
        where = f"{self.file}: " if self.file is not None else ""
        return ConfigError(f"{where}{key}: {message}", hint)

    def path(self, text: str) -> Path:
        """Expand `~`; a relative path is relative to the config file's directory."""
        p = expand_user(text, self.env)
        if not p.is_absolute() and self.file is not None:
            p = self.file.parent / p
        return p


Parser = Callable[[object, str, Ctx], Any]


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
        return toml_value(self.default)


def type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "a table"}
    return names.get(type(value), "a date or time")


def parse_str(value: object, key: str, ctx: Ctx) -> str:
    if not isinstance(value, str):
        raise ctx.error(key, f"expected a string, not {type_name(value)}", "put it in quotes")
    if not value.strip():
        raise ctx.error(key, "must not be empty", "remove the line to use the default")
    return value


def parse_secret_cmd(value: object, key: str, ctx: Ctx) -> str:
    # Never echo the value: it may hold a secret inlined by the user.
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(
            key, "expected a non-empty string holding a shell command", 'e.g. "pass show social/x"'
        )
    return value


def parse_path(value: object, key: str, ctx: Ctx) -> Path:
    return ctx.path(parse_str(value, key, ctx))


def parse_duration(value: object, key: str, ctx: Ctx) -> timedelta:
    hint = 'write a duration in quotes, like "60s", "5m" or "1h30m"'
    if not isinstance(value, str):
        raise ctx.error(key, f"expected a duration, not {type_name(value)}", hint)
    try:
        d = when.parse_duration(value)
    except TimeError as e:
        raise ctx.error(key, e.message, e.hint or hint) from None
    if d < timedelta(seconds=1):
        raise ctx.error(key, f"{value!r} is too short", "use at least 1s")
    return d


def parse_int(minimum: int) -> Parser:
    def parse(value: object, key: str, ctx: Ctx) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.error(key, f"expected an integer, not {type_name(value)}", "e.g. 5")
        if value < minimum:
            raise ctx.error(key, f"{value} is too small", f"use {minimum} or more")
        return value

    return parse


_SIZE_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE_UNITS |= {"k": 1024, "m": 1024**2, "kb": 1000, "mb": 1000**2}


def parse_size(value: object, key: str, ctx: Ctx) -> int:
    hint = 'a number of bytes, or with a unit: "512KiB", "1MiB"'
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ctx.error(key, f"expected a size, not {type_name(value)}", hint)
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


def parse_str_list(value: object, key: str, ctx: Ctx) -> tuple[str, ...]:
    hint = 'write a list of strings, like ["a", "b"]'
    if not isinstance(value, list):
        raise ctx.error(key, f"expected a list of strings, not {type_name(value)}", hint)
    if not value:
        raise ctx.error(key, "must not be an empty list", "remove the line to use the default")
    for item in value:
        if not isinstance(item, str) or not item:
            raise ctx.error(key, "every item must be a non-empty string", hint)
    return tuple(value)


def parse_argv(value: object, key: str, ctx: Ctx) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ctx.error(
            key,
            "expected a list: the program and its arguments",
            f'write ["sh", "-c", {toml_value(value)}] to run it through the shell',
        )
    return parse_str_list(value, key, ctx)


def parse_on_failure(value: object, key: str, ctx: Ctx) -> tuple[str, ...]:
    import string

    argv = parse_argv(value, key, ctx)
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


def parse_timezone(value: object, key: str, ctx: Ctx) -> str:
    name = parse_str(value, key, ctx)
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


def parse_rate_value(value: object, key: str, ctx: Ctx) -> RateLimit:
    hint = 'write COUNT/PERIOD in quotes: "30/hour", "100/day", "10/15m"'
    if not isinstance(value, str):
        raise ctx.error(key, f"expected a rate, not {type_name(value)}", hint)
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


def _check_url(value: str, key: str, ctx: Ctx, secure: str, plain: str) -> str:
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


def parse_https_url(value: object, key: str, ctx: Ctx) -> str:
    url = _check_url(parse_str(value, key, ctx), key, ctx, "https", "http")
    if urlsplit(url).path not in ("", "/"):
        raise ctx.error(
            key, f"{url!r} must be just the server, without a path", "e.g. https://HOST"
        )
    return url


def parse_relays(value: object, key: str, ctx: Ctx) -> tuple[str, ...]:
    relays = parse_str_list(value, key, ctx)
    checked = [_check_url(r, key, ctx, "wss", "ws") for r in relays]
    return tuple(dict.fromkeys(checked))  # drop duplicates, keep the order


def parse_handle(value: object, key: str, ctx: Ctx) -> str:
    handle = parse_str(value, key, ctx).strip().removeprefix("@")
    if not handle or any(c.isspace() for c in handle):
        raise ctx.error(key, f"{value!r} is not a handle", 'e.g. "me.bsky.social"')
    return handle


def parse_platform(value: object, key: str, ctx: Ctx) -> str:
    name = parse_str(value, key, ctx)
    if name not in PLATFORMS:
        raise ctx.error(key, f"unknown platform {name!r}", f"use one of: {', '.join(PLATFORMS)}")
    return name


def parse_split(value: object, key: str, ctx: Ctx) -> str:
    from ..split import SPLIT_MODES

    hint = f"use one of: {', '.join(SPLIT_MODES)}"
    if not isinstance(value, str) or value not in SPLIT_MODES:
        shown = toml_value(value) if isinstance(value, str | bool | int) else type_name(value)
        raise ctx.error(key, f"{shown} is not a split mode", f'{hint} (in quotes: "off")')
    return value


def parse_numbering(value: object, key: str, ctx: Ctx) -> str:
    from ..split import check_numbering

    hint = 'a format with {i} (the part\'s place) and {n} (how many), like "{i}/{n}"; "" for none'
    if not isinstance(value, str):
        raise ctx.error(key, f"expected a string, not {type_name(value)}", hint)
    problem = check_numbering(value)
    if problem is not None:
        raise ctx.error(key, problem, hint)
    return value


def parse_bool(value: object, key: str, ctx: Ctx) -> bool:
    if not isinstance(value, bool):
        raise ctx.error(
            key, f"expected true or false, not {type_name(value)}", "write true or false"
        )
    return value


def parse_slots(value: object, key: str, ctx: Ctx) -> tuple[slots.Slot, ...]:
    if value == []:
        raise ctx.error(key, "the slot list is empty", slots.SLOT_HINT)
    try:
        return slots.parse_rules(parse_str_list(value, key, ctx))
    except slots.SlotError as e:
        raise ctx.error(key, e.message, e.hint) from None


def parse_window(value: object, key: str, ctx: Ctx) -> str:
    text = parse_str(value, key, ctx)
    try:
        slots.window_slots(text, 1)
    except slots.SlotError as e:
        raise ctx.error(key, e.message, e.hint) from None
    return text


def parse_branch(value: object, key: str, ctx: Ctx) -> str:
    name = parse_str(value, key, ctx)
    if name.startswith("-") or re.search(r"[\s~^:?*\[\\]|\.\.|@\{", name):
        raise ctx.error(key, f"{name!r} is not a branch name", 'e.g. "main"')
    return name


def parse_names(value: object, key: str, ctx: Ctx) -> tuple[str, ...]:
    # Checked against the accounts once they are known, in load().
    return tuple(dict.fromkeys(parse_str_list(value, key, ctx)))


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


_GENERAL: tuple[Key, ...] = (
    Key(
        "spool",
        "path",
        None,
        "The spool directory; $PLURSPOOL_SPOOL and --spool override it."
        " A relative path is relative to this file.",
        parse_path,
        default_doc="$XDG_DATA_HOME/plurspool/spool",
        example="~/posts",
    ),
    Key(
        "timezone",
        "time zone",
        None,
        'IANA time zone for local times, like "Europe/Berlin".',
        parse_timezone,
        default_doc="the system's",
        example="Europe/Berlin",
    ),
    Key(
        "default_platforms",
        "list of accounts",
        None,
        "Accounts a post goes to when it names none. Unset: every configured account"
        ' (so set it once you have several), or "outbox" when none is configured.',
        parse_names,
        default_doc="every configured account",
        example=["mastodon"],
    ),
    Key(
        "max_post_size",
        "size",
        "1MiB",
        'Largest post file read from the spool: bytes, or "512KiB", "1MiB".',
        parse_size,
    ),
    Key(
        "split",
        "auto | off",
        "auto",
        "auto: a thread part longer than an account's limit is split into several parts for"
        " that account; off: it is an error. A post's own `split` key wins.",
        parse_split,
    ),
    Key(
        "thread_numbering",
        "format",
        "{i}/{n}",
        "Appended after a space to every part of a thread that auto-split changed: {i} is the"
        ' part\'s place, {n} the number of parts; "" for none. It counts toward the limit.',
        parse_numbering,
    ),
    Key(
        "daemon.poll_interval",
        "duration",
        "60s",
        "How often to look for work where inotify is unavailable.",
        parse_duration,
    ),
    Key(
        "daemon.rescan_interval",
        "duration",
        "5m",
        "Full rescan of the spool, whatever file events said.",
        parse_duration,
    ),
    Key(
        "daemon.max_retries",
        "integer",
        5,
        "Retries of a transient failure before a post goes to failed/ (0: none).",
        parse_int(0),
    ),
    Key(
        "daemon.retry_delay",
        "duration",
        "5m",
        "First retry delay; it doubles each time, with jitter, capped.",
        parse_duration,
    ),
    Key(
        "daemon.shutdown_timeout",
        "duration",
        "25s",
        "On SIGTERM, how long sends in flight may take to finish.",
        parse_duration,
    ),
    Key(
        "daemon.host",
        "string",
        None,
        "If set, only the host with this name sends (for spools shared through git).",
        parse_str,
        default_doc="unset (any host sends)",
        example="homeserver",
    ),
    Key(
        "daemon.max_lateness",
        "duration",
        "6h",
        "Posts found due more than this after their time go to failed/, whenever they are"
        " found (at start, or arriving late through a sync).",
        parse_duration,
    ),
    Key(
        "daemon.on_failure",
        "command",
        None,
        "Program and arguments run on every permanent failure to send or to delete, not through"
        " a shell; {id}, {error}, {account}, {path} and {event} (send or delete) are replaced.",
        parse_on_failure,
        example=["notify-send", "plurspool: {id} failed", "{error}"],
    ),
    Key(
        "git.send_only_committed",
        "boolean",
        False,
        "A due post is sent only if it is committed, as it is (apart from what plurspool"
        " writes into it), on git.branch of the spool's git repository; otherwise it is held.",
        parse_bool,
    ),
    Key(
        "git.branch",
        "string",
        None,
        "The branch send_only_committed compares with.",
        parse_branch,
        default_doc="the repository's current branch",
        example="main",
    ),
    Key(
        "git.autocommit",
        "boolean",
        False,
        "After a pass that moved or rewrote posts, commit exactly those files (never other"
        " changes), with a message naming the posts.",
        parse_bool,
    ),
    Key(
        "git.push",
        "boolean",
        False,
        "With autocommit: git push each commit; refused (the remote moved on), git pull"
        " --rebase and push again, three pushes at most.",
        parse_bool,
    ),
    Key(
        "feeds.poll_interval",
        "duration",
        "15m",
        "How often the sending host polls each feed of the spool's feeds.toml"
        " (plurspool(1), FEEDS).",
        parse_duration,
    ),
    Key(
        "rate_limits.NAME",
        "rate",
        None,
        'Sliding-window limit for the account or platform NAME: "30/hour", "100/day",'
        ' "10/15m". Posts are delayed, never failed, by it.',
        parse_rate_value,
        default_doc="no limit",
        example="30/hour",
    ),
    Key(
        "senders.HOST",
        "list of accounts",
        None,
        "The accounts the host HOST sends ($PLURSPOOL_HOST, else its system name); the others"
        " do not send them. An account under no host is sent by daemon.host (by any host when"
        " that is unset too).",
        parse_names,
        default_doc="unset",
        example=["mastodon", "nostr"],
    ),
    Key(
        "queues.NAME.slots",
        "list of slots",
        None,
        'The slots of the queue NAME: days then a local time, like ["mon-fri 09:00",'
        ' "sat,sun 11:30"]; days are a range (mon-fri, fri-mon wraps), a list (sat,sun) or'
        " daily. Set this or window.",
        parse_slots,
        default_doc="unset",
        example=["mon-fri 09:00", "sat,sun 11:30"],
    ),
    Key(
        "queues.NAME.window",
        "string",
        None,
        'Instead of slots: per_day slots every day, evenly spaced over "HH:MM-HH:MM" (the'
        " first at its start, the last at its end).",
        parse_window,
        default_doc="unset",
        example="15:00-21:00",
    ),
    Key(
        "queues.NAME.per_day",
        "integer",
        None,
        "With window: how many slots a day.",
        parse_int(1),
        default_doc="required with window",
        example=3,
    ),
    Key(
        "queues.NAME.timezone",
        "time zone",
        None,
        "The zone the queue's slots are wall-clock times in.",
        parse_timezone,
        default_doc="timezone",
        example="Europe/Berlin",
    ),
    Key(
        "queues.NAME.accounts",
        "list of accounts",
        None,
        "The accounts of posts added to the queue that name none.",
        parse_names,
        default_doc="default_platforms",
        example=["mastodon"],
    ),
    Key(
        "queues.NAME.reflow",
        "boolean",
        None,
        "When a post leaves the queue early (cancel, now, delete), every later post of the"
        " queue moves one slot earlier.",
        parse_bool,
        default_doc="false",
        example=True,
    ),
    Key(
        "calendar.ics",
        "path",
        None,
        "An iCalendar file of the queue that the daemon rewrites, atomically, at start and"
        " after every change (plurspool(1), ics). A relative path is relative to this file.",
        parse_path,
        default_doc="unset: none is written",
        example="~/public/plurspool.ics",
    ),
    Key(
        "accounts.NAME.platform",
        "platform",
        None,
        "The account's platform: " + ", ".join(PLATFORMS) + ".",
        parse_platform,
        default_doc="NAME",
    ),
    Key(
        "accounts.NAME.split",
        "auto | off",
        None,
        "The top-level split, for this account only.",
        parse_split,
        default_doc="the top-level split",
    ),
    Key(
        "accounts.NAME.thread_numbering",
        "format",
        None,
        "The top-level thread_numbering, for this account only.",
        parse_numbering,
        default_doc="the top-level thread_numbering",
    ),
)

# The platforms' own keys come last; `options` imports this module's parsers when asked for
# them, so it is asked only now that they exist.
_ACCOUNT_KEYS = options.account_keys()
KEYS: tuple[Key, ...] = (*_GENERAL, *(key for p in PLATFORMS for key in _ACCOUNT_KEYS[p]))
BY_NAME = {k.name: k for k in KEYS if k.platform is None}


# Keys every account takes, whatever its platform; each falls back to the top-level key of its
# name. (`platform` is one too, but chooses the others, so it is read first.)
COMMON_ACCOUNT_KEYS = {
    k.leaf: k for k in _GENERAL if k.name.startswith("accounts.NAME.") and k.leaf != "platform"
}


def platform_keys(platform: str) -> dict[str, Key]:
    """The keys of a `platform` account, by their name under [accounts.NAME]."""
    return {k.leaf: k for k in _ACCOUNT_KEYS[platform]}
