"""Tests for plurspool.config: the key table, loading, validation, secrets and generated docs."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from plurspool import config
from plurspool.config import KEYS, Config, load
from plurspool.errors import ConfigError

CANARY = "s3cr3t-CANARY-7f1e"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A fake environment: HOME in tmp_path, no XDG variables, a PATH for sh."""
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, env: dict[str, str], text: str) -> Config:
    return load(write(tmp_path, text), env=env)


def error_of(tmp_path: Path, env: dict[str, str], text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, env, text)
    return info.value


# --- paths and defaults ---------------------------------------------------------------------


def test_defaults_without_a_file(env: dict[str, str]) -> None:
    home = Path(env["HOME"])
    cfg = load(env=env)
    assert cfg.path is None
    assert cfg.spool == home / ".local/share/plurspool/spool"
    assert cfg.state_dir == home / ".local/state/plurspool"
    assert cfg.timezone_name is None
    assert cfg.default_platforms == ("outbox",)
    assert list(cfg.accounts) == ["outbox"]
    outbox = cfg.account("outbox")
    assert outbox.platform == "outbox"
    assert outbox.options["path"] == home / ".local/state/plurspool/outbox.jsonl"
    assert cfg.max_post_size == 1024 * 1024
    assert cfg.rate_limits == {}
    d = cfg.daemon
    assert d.poll_interval == timedelta(seconds=60)
    assert d.rescan_interval == timedelta(minutes=5)
    assert d.max_retries == 5
    assert d.retry_delay == timedelta(minutes=5)
    assert d.shutdown_timeout == timedelta(seconds=25)
    assert d.max_lateness == timedelta(hours=6)
    assert d.host is None
    assert d.on_failure is None
    assert d.on_failure_argv(id="a", error="b", account="c", path="d") is None


def test_xdg_paths_from_env(tmp_path: Path) -> None:
    env = {
        "HOME": "/home/u",
        "XDG_CONFIG_HOME": "/xdg/config",
        "XDG_STATE_HOME": "/xdg/state",
        "XDG_DATA_HOME": "/xdg/data",
    }
    assert config.config_path(env) == Path("/xdg/config/plurspool/config.toml")
    assert config.state_dir(env) == Path("/xdg/state/plurspool")
    assert config.default_spool(env) == Path("/xdg/data/plurspool/spool")
    bare = {"HOME": "/home/u"}
    assert config.config_path(bare) == Path("/home/u/.config/plurspool/config.toml")
    assert config.state_dir(bare) == Path("/home/u/.local/state/plurspool")
    assert config.default_spool(bare) == Path("/home/u/.local/share/plurspool/spool")
    # The XDG spec: a relative (or empty) value is invalid and ignored.
    relative = {"HOME": "/home/u", "XDG_CONFIG_HOME": "rel", "XDG_DATA_HOME": ""}
    assert config.config_path(relative) == Path("/home/u/.config/plurspool/config.toml")
    assert config.default_spool(relative) == Path("/home/u/.local/share/plurspool/spool")
    explicit = {"HOME": "/home/u", "PLURSPOOL_CONFIG": "~/my.toml", "XDG_CONFIG_HOME": "/x"}
    assert config.config_path(explicit) == Path("/home/u/my.toml")


def test_config_file_found_through_xdg_config_home(tmp_path: Path, env: dict[str, str]) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "plurspool").mkdir(parents=True)
    (xdg / "plurspool/config.toml").write_text('timezone = "Asia/Tokyo"\n')
    cfg = load(env={**env, "XDG_CONFIG_HOME": str(xdg)})
    assert cfg.path == xdg / "plurspool/config.toml"
    assert cfg.timezone_name == "Asia/Tokyo"
    assert str(cfg.timezone) == "Asia/Tokyo"


def test_missing_explicit_file_is_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="no such config file") as info:
        load(missing, env=env)
    assert str(missing) in str(info.value)
    with pytest.raises(ConfigError, match="no such config file"):
        load(env={**env, "PLURSPOOL_CONFIG": str(missing)})


def test_spool_precedence(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(tmp_path, 'spool = "from-config"\n')
    # The config's relative spool is relative to the config file, not the cwd.
    assert load(path, env=env).spool == tmp_path / "from-config"
    with_env = {**env, "PLURSPOOL_SPOOL": "~/from-env"}
    assert load(path, env=with_env).spool == Path(env["HOME"]) / "from-env"
    assert load(path, env=with_env, spool="/from/flag").spool == Path("/from/flag")
    assert load(path, env=env, spool="~/flag").spool == Path(env["HOME"]) / "flag"
    home_spool = write(tmp_path, 'spool = "~/posts"\n')
    assert load(home_spool, env=env).spool == Path(env["HOME"]) / "posts"
    assert load(env=env).spool == Path(env["HOME"]) / ".local/share/plurspool/spool"


def test_a_full_config(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = load_text(
        tmp_path,
        env,
        """
        spool = "/srv/posts"
        timezone = "Europe/Berlin"
        default_platforms = ["mastodon"]
        max_post_size = "512KiB"

        [daemon]
        poll_interval = "30s"
        rescan_interval = "10m"
        max_retries = 0
        retry_delay = "1m"
        shutdown_timeout = "10s"
        host = "homeserver"
        max_lateness = "1d"
        on_failure = ["notify-send", "plurspool: {id} failed", "{error} ({account}, {path}) {{x}}"]

        [rate_limits]
        mastodon = "30/hour"
        bluesky = "100/day"

        [accounts.mastodon]
        instance = "https://example.social/"
        token_cmd = "pass show social/mastodon"

        [accounts.bluesky]
        handle = "@me.example.com"
        password_file = "~/bsky"

        [accounts.nostr]
        relays = ["wss://relay.example.com", "wss://relay.example.com", "ws://127.0.0.1:7777"]
        key_cmd = "pass show social/nostr-nsec"
        min_relays = 2

        [accounts.log]
        platform = "exec"
        command = ["sh", "-c", "cat >> ~/posted.jsonl"]

        [accounts.box]
        platform = "outbox"
        path = "out.jsonl"
        """,
    )
    assert cfg.spool == Path("/srv/posts")
    assert str(cfg.timezone) == "Europe/Berlin"
    assert cfg.default_platforms == ("mastodon",)
    assert cfg.max_post_size == 512 * 1024
    assert cfg.daemon.max_retries == 0
    assert cfg.daemon.max_lateness == timedelta(days=1)
    assert cfg.daemon.host == "homeserver"
    argv = cfg.daemon.on_failure_argv(
        id="p1", error="boom", account="mastodon", path="failed/p1.md"
    )
    assert argv == ["notify-send", "plurspool: p1 failed", "boom (mastodon, failed/p1.md) {x}"]
    assert cfg.rate_limits["bluesky"] == config.RateLimit(100, timedelta(days=1), "100/day")
    assert list(cfg.accounts) == ["mastodon", "bluesky", "nostr", "log", "box"]
    assert "outbox" not in cfg.accounts
    m = cfg.account("mastodon")
    assert (m.platform, m.options["instance"]) == ("mastodon", "https://example.social")
    b = cfg.account("bluesky")
    assert b.options["handle"] == "me.example.com"
    assert b.options["service"] == "https://bsky.social"
    assert b.options["password_file"] == Path(env["HOME"]) / "bsky"
    n = cfg.account("nostr")
    assert n.options["relays"] == ("wss://relay.example.com", "ws://127.0.0.1:7777")
    assert n.options["min_relays"] == 2
    log = cfg.account("log")
    assert log.platform == "exec"
    assert log.options["command"] == ("sh", "-c", "cat >> ~/posted.jsonl")
    assert log.options["timeout"] == timedelta(seconds=60)
    assert cfg.account("box").options["path"] == tmp_path / "out.jsonl"


def test_unknown_account_lists_the_known_ones(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = load_text(tmp_path, env, '[accounts.work]\nplatform = "exec"\ncommand = ["true"]\n')
    with pytest.raises(ConfigError, match="no account named 'home'") as info:
        cfg.account("home")
    assert "work" in info.value.hint


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path, env: dict[str, str]) -> None:
    err = error_of(tmp_path, env, '[daemon]\npoll_interval = "60s\n')
    assert str(tmp_path / "config.toml") + ":2:" in err.message
    assert "invalid TOML" in err.message


# --- default_platforms ----------------------------------------------------------------------

EXEC = 'platform = "exec"\ncommand = ["true"]\n'


def test_one_account_replaces_outbox_as_default(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = load_text(tmp_path, env, f"[accounts.log]\n{EXEC}")
    assert cfg.default_platforms == ("log",)
    assert list(cfg.accounts) == ["log"]


def test_several_accounts_all_are_the_default(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = load_text(tmp_path, env, f"[accounts.b]\n{EXEC}[accounts.a]\n{EXEC}")
    assert cfg.default_platforms == ("b", "a")


def test_default_platforms_chosen_and_deduplicated(tmp_path: Path, env: dict[str, str]) -> None:
    text = f'default_platforms = ["a", "a"]\n[accounts.b]\n{EXEC}[accounts.a]\n{EXEC}'
    assert load_text(tmp_path, env, text).default_platforms == ("a",)


def test_default_platforms_outbox_without_accounts(tmp_path: Path, env: dict[str, str]) -> None:
    assert load_text(tmp_path, env, 'default_platforms = ["outbox"]\n').default_platforms == (
        "outbox",
    )


@pytest.mark.parametrize(
    "text",
    [
        'default_platforms = ["nope"]\n',
        # The built-in outbox is gone once an account is configured.
        f'default_platforms = ["outbox"]\n[accounts.log]\n{EXEC}',
    ],
)
def test_default_platforms_must_name_accounts(
    tmp_path: Path, env: dict[str, str], text: str
) -> None:
    err = error_of(tmp_path, env, text)
    assert "default_platforms" in err.message
    assert "configured accounts" in err.hint


# --- bad values, for every key of the table -------------------------------------------------

ACCOUNT_BASE = {
    "mastodon": 'instance = "https://example.social"\n',
    "bluesky": 'handle = "me.example.com"\n',
    "nostr": 'relays = ["wss://relay.example.com"]\n',
    "exec": 'command = ["true"]\n',
    "outbox": "",
}


def account(platform: str, extra: str) -> str:
    return f'[accounts.acc]\nplatform = "{platform}"\n{ACCOUNT_BASE[platform]}{extra}'


# (table key name, TOML text, the dotted key the error must name)
BAD: list[tuple[str, str, str]] = [
    ("spool", "spool = 5\n", "spool"),
    ("spool", 'spool = ""\n', "spool"),
    ("timezone", 'timezone = "Mars/Olympus_Mons"\n', "timezone"),
    ("timezone", "timezone = 1\n", "timezone"),
    ("default_platforms", "default_platforms = []\n", "default_platforms"),
    ("default_platforms", 'default_platforms = "outbox"\n', "default_platforms"),
    ("default_platforms", "default_platforms = [1]\n", "default_platforms"),
    ("max_post_size", 'max_post_size = "1 lightyear"\n', "max_post_size"),
    ("max_post_size", "max_post_size = 0\n", "max_post_size"),
    ("max_post_size", "max_post_size = true\n", "max_post_size"),
    ("max_post_size", "max_post_size = 1.5\n", "max_post_size"),
    ("daemon.poll_interval", '[daemon]\npoll_interval = "soon"\n', "daemon.poll_interval"),
    ("daemon.poll_interval", "[daemon]\npoll_interval = 60\n", "daemon.poll_interval"),
    ("daemon.poll_interval", '[daemon]\npoll_interval = "60"\n', "daemon.poll_interval"),
    ("daemon.rescan_interval", '[daemon]\nrescan_interval = "0s"\n', "daemon.rescan_interval"),
    ("feeds.poll_interval", '[feeds]\npoll_interval = "soon"\n', "feeds.poll_interval"),
    ("daemon.max_retries", "[daemon]\nmax_retries = -1\n", "daemon.max_retries"),
    ("daemon.max_retries", '[daemon]\nmax_retries = "5"\n', "daemon.max_retries"),
    ("daemon.max_retries", "[daemon]\nmax_retries = true\n", "daemon.max_retries"),
    ("daemon.retry_delay", '[daemon]\nretry_delay = "-5m"\n', "daemon.retry_delay"),
    ("daemon.shutdown_timeout", "[daemon]\nshutdown_timeout = 2.5\n", "daemon.shutdown_timeout"),
    ("daemon.host", '[daemon]\nhost = ""\n', "daemon.host"),
    ("daemon.host", "[daemon]\nhost = [1]\n", "daemon.host"),
    ("daemon.max_lateness", '[daemon]\nmax_lateness = "later"\n', "daemon.max_lateness"),
    ("git.send_only_committed", '[git]\nsend_only_committed = "yes"\n', "git.send_only_committed"),
    ("git.branch", '[git]\nbranch = "a..b"\n', "git.branch"),
    ("git.branch", '[git]\nbranch = "-f"\n', "git.branch"),
    ("git.branch", "[git]\nbranch = 1\n", "git.branch"),
    ("git.autocommit", "[git]\nautocommit = 1\n", "git.autocommit"),
    ("git.push", '[git]\npush = "true"\n', "git.push"),
    ("daemon.on_failure", '[daemon]\non_failure = "notify-send x"\n', "daemon.on_failure"),
    ("daemon.on_failure", "[daemon]\non_failure = []\n", "daemon.on_failure"),
    ("daemon.on_failure", '[daemon]\non_failure = ["x", 1]\n', "daemon.on_failure"),
    ("daemon.on_failure", '[daemon]\non_failure = ["x", "{nope}"]\n', "daemon.on_failure"),
    ("daemon.on_failure", '[daemon]\non_failure = ["x", "{id.__class__}"]\n', "daemon.on_failure"),
    ("daemon.on_failure", '[daemon]\non_failure = ["x", "{id"]\n', "daemon.on_failure"),
    ("daemon.on_failure", '[daemon]\non_failure = ["x", "{id:d}"]\n', "daemon.on_failure"),
    ("rate_limits.NAME", '[rate_limits]\nmastodon = "30"\n', "rate_limits.mastodon"),
    ("rate_limits.NAME", '[rate_limits]\nmastodon = "0/hour"\n', "rate_limits.mastodon"),
    ("rate_limits.NAME", "[rate_limits]\nmastodon = 30\n", "rate_limits.mastodon"),
    ("rate_limits.NAME", '[rate_limits]\nmastodn = "30/hour"\n', "rate_limits.mastodn"),
    ("split", "split = false\n", "split"),
    ("split", 'split = "no"\n', "split"),
    ("thread_numbering", "thread_numbering = 1\n", "thread_numbering"),
    ("thread_numbering", 'thread_numbering = "{i}/{total}"\n', "thread_numbering"),
    ("thread_numbering", 'thread_numbering = "{i"\n', "thread_numbering"),
    ("accounts.NAME.split", account("exec", 'split = "never"\n'), "accounts.acc.split"),
    (
        "accounts.NAME.thread_numbering",
        account("nostr", 'thread_numbering = "{n}.{x}"\n'),
        "accounts.acc.thread_numbering",
    ),
    ("accounts.NAME.max_length", account("nostr", "max_length = 0\n"), "accounts.acc.max_length"),
    ("accounts.NAME.max_length", account("exec", 'max_length = "9"\n'), "accounts.acc.max_length"),
    ("queues.NAME.slots", "[queues.q]\nslots = []\n", "queues.q.slots"),
    ("queues.NAME.slots", '[queues.q]\nslots = ["mon-fri"]\n', "queues.q.slots"),
    ("queues.NAME.slots", '[queues.q]\nslots = ["noday 09:00"]\n', "queues.q.slots"),
    ("queues.NAME.slots", '[queues.q]\nslots = "mon 09:00"\n', "queues.q.slots"),
    ("queues.NAME.slots", '[queues.q]\nslots = ["daily 24:00"]\n', "queues.q.slots"),
    ("queues.NAME.window", '[queues.q]\nwindow = "21:00-15:00"\nper_day = 2\n', "queues.q.window"),
    ("queues.NAME.window", '[queues.q]\nwindow = "15:00"\nper_day = 2\n', "queues.q.window"),
    ("queues.NAME.per_day", '[queues.q]\nwindow = "15:00-21:00"\n', "queues.q.per_day"),
    (
        "queues.NAME.per_day",
        '[queues.q]\nwindow = "15:00-21:00"\nper_day = 0\n',
        "queues.q.per_day",
    ),
    (
        "queues.NAME.per_day",
        '[queues.q]\nslots = ["daily 9:00"]\nper_day = 2\n',
        "queues.q.per_day",
    ),
    ("queues.NAME.reflow", '[queues.q]\nslots = ["daily 9:00"]\nreflow = 1\n', "queues.q.reflow"),
    ("calendar.ics", "[calendar]\nics = 1\n", "calendar.ics"),
    ("calendar.ics", '[calendar]\nics = ""\n', "calendar.ics"),
    (
        "queues.NAME.timezone",
        '[queues.q]\nslots = ["daily 9:00"]\ntimezone = "Mars/B"\n',
        "queues.q.timezone",
    ),
    (
        "queues.NAME.accounts",
        '[queues.q]\nslots = ["daily 9:00"]\naccounts = ["x"]\n',
        "queues.q.accounts",
    ),
    ("queues.NAME.slots", "[queues.q]\nper_day = 2\n", "queues.q"),
    ("queues.NAME.slots", '[queues.q]\nslots = ["daily 9:00"]\nslot = 1\n', "queues.q.slot"),
    ("accounts.NAME.platform", '[accounts.a]\nplatform = "myspace"\n', "accounts.a.platform"),
    ("accounts.NAME.platform", "[accounts.work]\n", "accounts.work.platform"),
    (
        "accounts.NAME.instance",
        '[accounts.mastodon]\ntoken_cmd = "x"\n',
        "accounts.mastodon.instance",
    ),
    (
        "accounts.NAME.instance",
        '[accounts.mastodon]\ninstance = "http://example.social"\n',
        "accounts.mastodon.instance",
    ),
    (
        "accounts.NAME.instance",
        '[accounts.mastodon]\ninstance = "https://example.social/api?x=1"\n',
        "accounts.mastodon.instance",
    ),
    ("accounts.NAME.token_cmd", account("mastodon", "token_cmd = 5\n"), "accounts.acc.token_cmd"),
    (
        "accounts.NAME.token_file",
        account("mastodon", 'token_file = ""\n'),
        "accounts.acc.token_file",
    ),
    (
        "accounts.NAME.handle",
        '[accounts.bluesky]\nhandle = "me and you"\n',
        "accounts.bluesky.handle",
    ),
    (
        "accounts.NAME.handle",
        '[accounts.bluesky]\nservice = "https://x.y"\n',
        "accounts.bluesky.handle",
    ),
    (
        "accounts.NAME.service",
        account("bluesky", 'service = "bsky.social"\n'),
        "accounts.acc.service",
    ),
    (
        "accounts.NAME.password_cmd",
        account("bluesky", "password_cmd = []\n"),
        "accounts.acc.password_cmd",
    ),
    (
        "accounts.NAME.password_file",
        account("bluesky", "password_file = 1\n"),
        "accounts.acc.password_file",
    ),
    ("accounts.NAME.relays", "[accounts.nostr]\nrelays = []\n", "accounts.nostr.relays"),
    (
        "accounts.NAME.relays",
        '[accounts.nostr]\nrelays = ["https://r.x"]\n',
        "accounts.nostr.relays",
    ),
    ("accounts.NAME.relays", "[accounts.nostr]\nkey_cmd = 'x'\n", "accounts.nostr.relays"),
    ("accounts.NAME.key_cmd", account("nostr", 'key_cmd = " "\n'), "accounts.acc.key_cmd"),
    ("accounts.NAME.key_file", account("nostr", "key_file = []\n"), "accounts.acc.key_file"),
    ("accounts.NAME.min_relays", account("nostr", "min_relays = 0\n"), "accounts.acc.min_relays"),
    ("accounts.NAME.min_relays", account("nostr", "min_relays = 2\n"), "accounts.acc.min_relays"),
    ("accounts.NAME.command", '[accounts.exec]\ncommand = "true"\n', "accounts.exec.command"),
    ("accounts.NAME.command", '[accounts.exec]\ncommand = [""]\n', "accounts.exec.command"),
    ("accounts.NAME.timeout", account("exec", 'timeout = "1 fortnight"\n'), "accounts.acc.timeout"),
    ("accounts.NAME.path", account("outbox", "path = 3\n"), "accounts.acc.path"),
]


@pytest.mark.parametrize(("table_key", "text", "named"), BAD)
def test_bad_value_is_an_error_naming_the_key(
    tmp_path: Path, env: dict[str, str], table_key: str, text: str, named: str
) -> None:
    err = error_of(tmp_path, env, text)
    assert err.message.startswith(f"{tmp_path / 'config.toml'}: {named}: "), err.message
    assert err.hint, f"no hint for {err.message}"


def test_split_and_numbering_default_and_are_overridden_per_account(
    tmp_path: Path, env: dict[str, str]
) -> None:
    text = (
        'thread_numbering = "({i} of {n})"\n'
        '[accounts.log]\nplatform = "exec"\ncommand = ["true"]\nmax_length = 280\n'
        'split = "off"\nthread_numbering = ""\n'
        '[accounts.other]\nplatform = "exec"\ncommand = ["true"]\n'
    )
    cfg = load_text(tmp_path, env, text)
    log, other = cfg.accounts["log"].options, cfg.accounts["other"].options
    assert (log["split"], log["thread_numbering"], log["max_length"]) == ("off", "", 280)
    assert (other["split"], other["thread_numbering"]) == ("auto", "({i} of {n})")
    assert "max_length" not in other
    assert load_text(tmp_path, env, "").accounts["outbox"].options["split"] == "auto"


def test_every_key_of_the_table_has_a_bad_value_test() -> None:
    assert {k.name for k in KEYS} == {table_key for table_key, _, _ in BAD}


@pytest.mark.parametrize(
    ("text", "named", "suggestion"),
    [
        ('spol = "x"\n', "spol", "spool"),
        ("[deamon]\n", "deamon", "daemon"),
        ('[daemon]\npoll_intervall = "1m"\n', "daemon.poll_intervall", "poll_interval"),
        (account("exec", 'timeuot = "1m"\n'), "accounts.acc.timeuot", "timeout"),
        # A key of another platform is unknown for this one.
        (account("bluesky", 'token_cmd = "x"\n'), "accounts.acc.token_cmd", None),
    ],
)
def test_unknown_keys(
    tmp_path: Path, env: dict[str, str], text: str, named: str, suggestion: str | None
) -> None:
    err = error_of(tmp_path, env, text)
    assert err.message == f"{tmp_path / 'config.toml'}: {named}: unknown key"
    if suggestion is not None:
        assert f"did you mean {suggestion!r}" in err.hint


@pytest.mark.parametrize("what", ["token", "password", "key"])
def test_only_one_of_cmd_and_file(tmp_path: Path, env: dict[str, str], what: str) -> None:
    platform = {"token": "mastodon", "password": "bluesky", "key": "nostr"}[what]
    err = error_of(tmp_path, env, account(platform, f'{what}_cmd = "x"\n{what}_file = "y"\n'))
    assert f"{what}_cmd and {what}_file" in err.message


@pytest.mark.parametrize("name", ["a b", "a.b", "ü", ""])
def test_bad_account_names(tmp_path: Path, env: dict[str, str], name: str) -> None:
    err = error_of(tmp_path, env, f'[accounts."{name}"]\n{EXEC}')
    assert "account name" in err.message


def test_sections_must_be_tables(tmp_path: Path, env: dict[str, str]) -> None:
    assert "daemon: expected a table" in error_of(tmp_path, env, "daemon = 5\n").message
    assert "accounts.x: expected a table" in error_of(tmp_path, env, "accounts.x = 5\n").message


# --- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.social", True),
        ("https://example.social:8443/", True),
        ("HTTPS://Example.Social", True),
        ("http://127.0.0.1:3000", True),
        ("http://127.9.9.9", True),
        ("http://localhost:3000", True),
        ("http://[::1]:3000", True),
        ("http://example.social", False),
        ("http://10.0.0.1", False),
        ("http://localhost.example.com", False),
        ("http://127.0.0.1.nip.io", False),
        ("ftp://example.social", False),
        ("example.social", False),
        ("https://", False),
        ("https://example.social:99999", False),
    ],
)
def test_instance_and_service_url_rules(
    tmp_path: Path, env: dict[str, str], url: str, ok: bool
) -> None:
    for platform, key in (("mastodon", "instance"), ("bluesky", "service")):
        text = account(platform, "") if key == "service" else "[accounts.acc]\n"
        if key == "instance":
            text += 'platform = "mastodon"\n'
        text += f'{key} = "{url}"\n'
        if ok:
            acc = load_text(tmp_path, env, text).account("acc")
            assert acc.options[key] == url.rstrip("/")
        else:
            assert f"accounts.acc.{key}" in error_of(tmp_path, env, text).message


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("wss://relay.example.com", True),
        ("wss://relay.example.com/nostr", True),
        ("ws://127.0.0.1:7777", True),
        ("ws://localhost", True),
        ("ws://relay.example.com", False),
        ("https://relay.example.com", False),
    ],
)
def test_relay_url_rules(tmp_path: Path, env: dict[str, str], url: str, ok: bool) -> None:
    text = f'[accounts.nostr]\nrelays = ["{url}"]\n'
    if ok:
        assert load_text(tmp_path, env, text).account("nostr").options["relays"] == (url,)
    else:
        assert "accounts.nostr.relays" in error_of(tmp_path, env, text).message


def test_credentials_in_a_url_are_not_echoed(tmp_path: Path, env: dict[str, str]) -> None:
    err = error_of(tmp_path, env, f'[accounts.mastodon]\ninstance = "https://me:{CANARY}@x.y"\n')
    assert CANARY not in f"{err.message} {err.hint}"


# --- rate limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "window"),
    [
        ("30/hour", 30, timedelta(hours=1)),
        ("100/day", 100, timedelta(days=1)),
        ("2/hour", 2, timedelta(hours=1)),
        ("10/15m", 10, timedelta(minutes=15)),
        ("5 / minutes", 5, timedelta(minutes=1)),
        ("1/s", 1, timedelta(seconds=1)),
        ("1/second", 1, timedelta(seconds=1)),
        ("3/week", 3, timedelta(weeks=1)),
        ("4/d", 4, timedelta(days=1)),
        ("7/1h30m", 7, timedelta(minutes=90)),
    ],
)
def test_rate_parsing(text: str, count: int, window: timedelta) -> None:
    rate = config.parse_rate(text)
    assert (rate.count, rate.window, rate.text) == (count, window, text.strip())


@pytest.mark.parametrize(
    "text", ["30", "0/hour", "/hour", "-1/hour", "1.5/hour", "30/fortnight", "30/ms", "30/", "x/h"]
)
def test_bad_rates(text: str) -> None:
    with pytest.raises(ValueError):
        config.parse_rate(text)


def test_rate_limits_for_accounts_and_platforms(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = load_text(
        tmp_path, env, f'[rate_limits]\nlog = "10/15m"\nnostr = "1/h"\n[accounts.log]\n{EXEC}'
    )
    assert cfg.rate_limits["log"].window == timedelta(minutes=15)
    assert cfg.rate_limits["nostr"].count == 1


def test_max_post_size_units(tmp_path: Path, env: dict[str, str]) -> None:
    assert load_text(tmp_path, env, "max_post_size = 2048\n").max_post_size == 2048
    assert load_text(tmp_path, env, 'max_post_size = "2MiB"\n').max_post_size == 2 * 1024**2
    assert load_text(tmp_path, env, 'max_post_size = "10 kB"\n').max_post_size == 10_000


# --- secrets --------------------------------------------------------------------------------


def mastodon_with(tmp_path: Path, env: dict[str, str], secret_line: str = "") -> config.Account:
    text = f'[accounts.my-home]\nplatform = "mastodon"\ninstance = "https://x.y"\n{secret_line}'
    return load_text(tmp_path, env, text).account("my-home")


def test_secret_from_command(tmp_path: Path, env: dict[str, str]) -> None:
    acc = mastodon_with(tmp_path, env, f"token_cmd = \"printf '{CANARY}\\\\nmore\\\\n'\"\n")
    # The first line, as with `pass show`; the environment variable is not consulted.
    assert acc.secret("token", env={**env, "PLURSPOOL_MY_HOME_TOKEN": "other"}) == CANARY


def test_secret_from_file(tmp_path: Path, env: dict[str, str]) -> None:
    secret = Path(env["HOME"]) / "token"
    secret.write_text(CANARY + "\n")
    secret.chmod(0o600)
    acc = mastodon_with(tmp_path, env, 'token_file = "~/token"\n')
    assert acc.secret("token", env={**env, "PLURSPOOL_MY_HOME_TOKEN": "other"}) == CANARY


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_secret_file_open_to_others_is_refused(
    tmp_path: Path, env: dict[str, str], mode: int
) -> None:
    secret = tmp_path / "token"
    secret.write_text(CANARY)
    secret.chmod(mode)
    acc = mastodon_with(tmp_path, env, f'token_file = "{secret}"\n')
    with pytest.raises(ConfigError) as info:
        acc.secret("token", env=env)
    assert info.value.hint == f"chmod 600 {secret}"
    assert "accounts.my-home.token_file" in info.value.message
    assert CANARY not in f"{info.value.message} {info.value.hint}"


def test_missing_secret_file(tmp_path: Path, env: dict[str, str]) -> None:
    acc = mastodon_with(tmp_path, env, 'token_file = "nope"\n')
    with pytest.raises(ConfigError, match="does not exist"):
        acc.secret("token", env=env)


def test_secret_from_env_and_none(tmp_path: Path, env: dict[str, str]) -> None:
    acc = mastodon_with(tmp_path, env)
    assert config.secret_env_var("my-home", "token") == "PLURSPOOL_MY_HOME_TOKEN"
    assert acc.secret("token", env={**env, "PLURSPOOL_MY_HOME_TOKEN": CANARY}) == CANARY
    assert acc.secret("token", env=env) is None
    assert acc.secret("token", env={**env, "PLURSPOOL_MY_HOME_TOKEN": ""}) is None


@pytest.mark.parametrize(
    "cmd",
    [
        f"echo {CANARY}; echo {CANARY} >&2; exit 3",
        f"echo {CANARY} >&2; exit 1",
        "true",  # prints nothing
    ],
)
def test_failing_secret_command_never_shows_its_output(
    tmp_path: Path, env: dict[str, str], cmd: str, capfd: pytest.CaptureFixture[str]
) -> None:
    acc = mastodon_with(tmp_path, env, f'token_cmd = "{cmd}"\n')
    with pytest.raises(ConfigError) as info:
        acc.secret("token", env=env)
    err = info.value
    assert err.message.startswith("accounts.my-home.token_cmd: ")
    # Neither the output nor the command (which may inline a secret) is shown.
    for text in (err.message, err.hint, str(err), repr(err)):
        assert CANARY not in text
        assert "echo" not in text
    # Nor does the command's stderr reach ours (a terminal, or the daemon's log).
    out, errout = capfd.readouterr()
    assert CANARY not in out + errout


@pytest.mark.realtime
def test_secret_command_timeout_kills_the_whole_group(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config.secrets, "SECRET_CMD_TIMEOUT", 0.3)
    # The background sleep keeps stdout open: only killing the group lets this return.
    acc = mastodon_with(tmp_path, env, 'token_cmd = "sleep 30 & sleep 30"\n')
    with pytest.raises(ConfigError, match="did not finish"):
        acc.secret("token", env=env)


def test_canary_never_in_repr_or_errors(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = load_text(
        tmp_path,
        env,
        f"""
        [accounts.mastodon]
        instance = "https://x.y"
        token_cmd = "echo {CANARY}"
        [accounts.nostr]
        relays = ["wss://r.x"]
        key_file = "/run/{CANARY}"
        """,
    )
    assert cfg.account("mastodon").secret("token", env=env) == CANARY
    assert CANARY not in repr(cfg)
    assert CANARY not in str(cfg)
    assert "token_cmd" in repr(cfg.account("mastodon"))
    # A wrong type for a *_cmd key is reported without echoing the value.
    for value in (f'["echo", "{CANARY}"]', f'{{ x = "{CANARY}" }}'):
        err = error_of(tmp_path, env, account("mastodon", f"token_cmd = {value}\n"))
        assert CANARY not in f"{err.message} {err.hint}"


def test_unknown_secret_kind_is_a_programming_error(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        mastodon_with(tmp_path, env).secret("tokn", env=env)


# --- generated docs -------------------------------------------------------------------------


def test_default_config_text_loads_as_the_defaults(tmp_path: Path, env: dict[str, str]) -> None:
    text = config.default_config_text()
    defaults = load(env=env)
    assert load_text(tmp_path, env, text) == dataclasses.replace(
        defaults, path=tmp_path / "config.toml"
    )
    # Uncommenting a key shown with its literal default changes nothing.
    literal = {k.leaf for k in KEYS if k.platform is None and k.has_literal_default}
    lines = [
        line[1:] if re.match(r"#(\w+) = ", line) and line[1:].split(" ")[0] in literal else line
        for line in text.splitlines()
    ]
    assert sum(1 for a, b in zip(lines, text.splitlines(), strict=True) if a != b) == len(literal)
    uncommented = load_text(tmp_path, env, "\n".join(lines))
    assert uncommented.daemon == defaults.daemon
    assert uncommented.max_post_size == defaults.max_post_size


def test_default_config_text_examples_are_valid(tmp_path: Path, env: dict[str, str]) -> None:
    """Uncommenting one account section of the template gives a loadable account."""
    text = config.default_config_text()
    for platform in config.PLATFORMS:
        block = text.split(f"#[accounts.{platform}]")[1].split("\n\n")[0]
        lines = [f"[accounts.{platform}]"]
        for line in block.splitlines():
            # *_file is the alternative to *_cmd: only one of them may be set.
            if re.match(r"#\w+ = ", line) and not re.match(r"#\w+_file ", line):
                lines.append(line[1:])
        cfg = load_text(tmp_path, env, "\n".join(lines) + "\n")
        assert cfg.account(platform).platform == platform


def test_reference_markdown_names_every_key() -> None:
    md = config.reference_markdown()
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [k.name for k in KEYS]
    assert all(row.count(" | ") == 3 for row in rows)


def test_reference_roff_names_every_key() -> None:
    roff = config.reference_roff()
    names = [line.removeprefix(".B ") for line in roff.splitlines() if line.startswith(".B ")]
    assert names == [k.name for k in KEYS]


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_reference_roff_is_lint_clean() -> None:
    page = ".TH PLURSPOOL 5\n.SH CONFIGURATION\n" + config.reference_roff()
    proc = subprocess.run(
        ["groff", "-man", "-ww", "-z"], input=page, capture_output=True, text=True, check=False
    )
    assert proc.stderr == ""
    assert proc.returncode == 0


# --- queues (plurspool-config(5), QUEUES) -----------------------------------------------------


def test_queues_read_slots_and_windows(tmp_path: Path, env: dict[str, str]) -> None:
    from datetime import UTC, datetime

    cfg = load_text(
        tmp_path,
        env,
        'timezone = "UTC"\n'
        '[accounts.m]\nplatform = "exec"\ncommand = ["true"]\n'
        '[queues.default]\nslots = ["mon-fri 09:00", "sat,sun 11:30"]\n'
        '[queues.evening]\nwindow = "15:00-21:00"\nper_day = 3\ntimezone = "Asia/Kolkata"\n'
        'accounts = ["m"]\nreflow = true\n',
    )
    assert list(cfg.queues) == ["default", "evening"]
    assert cfg.queue(None) is cfg.queues["default"]
    evening = cfg.queue("evening")
    assert evening.accounts == ("m",) and evening.reflow and not cfg.queues["default"].reflow
    day = evening.slots.between(
        datetime(2026, 12, 4, tzinfo=UTC), datetime(2026, 12, 5, tzinfo=UTC)
    )
    assert [t.strftime("%H:%M") for t in day] == ["09:30", "12:30", "15:30"]  # +05:30


def test_unknown_queue_names_the_known_ones(tmp_path: Path, env: dict[str, str]) -> None:
    from plurspool.errors import InvalidInput

    cfg = load_text(tmp_path, env, '[queues.main]\nslots = ["daily 9:00"]\n')
    with pytest.raises(InvalidInput) as info:
        cfg.queue("mian")
    assert info.value.message == "no queue named 'mian'"
    assert "configured queues: main" in info.value.hint
    assert info.value.exit_code == 3
