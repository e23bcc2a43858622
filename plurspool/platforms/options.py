"""What every command needs to know of each platform: its account options (keys, secret, checks
across keys, defaults from elsewhere) and what a cached check of a post depends on.

The config loads this with every command, so it stays small and imports nothing at the top. These
facts are not in the platform modules themselves because those import what sending needs (email,
mimetypes, subprocess, concurrent.futures, ...): loading all five with the config made `plurspool
list` some 20 ms slower.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config.keys import Ctx, Key

# The secret each platform needs, as the `what` of `Account.secret()`, and where the examples
# of `*_cmd` keep it.
SECRET_KINDS: Mapping[str, str] = MappingProxyType(
    {"mastodon": "token", "bluesky": "password", "nostr": "key"}
)
_SECRET_EXAMPLES = {
    "mastodon": "social/mastodon",
    "bluesky": "social/bluesky-app-password",
    "nostr": "social/nostr-nsec",
}


def account_keys() -> dict[str, tuple[Key, ...]]:
    """Each platform's keys under [accounts.NAME], in the order the docs list them."""
    # Imported here, not at the top: config.keys collects these rows while it loads.
    from ..config.keys import (
        Key,
        parse_argv,
        parse_duration,
        parse_handle,
        parse_https_url,
        parse_int,
        parse_path,
        parse_relays,
        parse_secret_cmd,
    )

    def max_length(platform: str) -> Key:
        return Key(
            "accounts.NAME.max_length",
            "integer",
            None,
            "Longest thread part, in graphemes; a longer one is split (see split).",
            parse_int(1),
            platform=platform,
            default_doc="no limit",
            example=500,
        )

    def secret_keys(platform: str) -> tuple[Key, Key]:
        what, store = SECRET_KINDS[platform], _SECRET_EXAMPLES[platform]
        env = f"PLURSPOOL_<NAME>_{what.upper()}"
        return (
            Key(
                f"accounts.NAME.{what}_cmd",
                "command",
                None,
                f"Shell command (run with sh -c) whose first output line is the {what}.",
                parse_secret_cmd,
                platform=platform,
                example=f"pass show {store}",
            ),
            Key(
                f"accounts.NAME.{what}_file",
                "path",
                None,
                f"File holding the {what}, mode 0600; else the {what} comes from ${env}.",
                parse_path,
                platform=platform,
                example=f"~/.config/plurspool/{what}",
            ),
        )

    mastodon = (
        Key(
            "accounts.NAME.instance",
            "URL",
            None,
            "The Mastodon server, https:// (http:// only for a loopback host).",
            parse_https_url,
            platform="mastodon",
            required=True,
            example="https://example.social",
        ),
        *secret_keys("mastodon"),
    )
    bluesky = (
        Key(
            "accounts.NAME.handle",
            "string",
            None,
            "The Bluesky handle (or DID) to log in with.",
            parse_handle,
            platform="bluesky",
            required=True,
            example="me.example.com",
        ),
        Key(
            "accounts.NAME.service",
            "URL",
            "https://bsky.social",
            "The PDS to log in at, https:// (http:// only for a loopback host).",
            parse_https_url,
            platform="bluesky",
        ),
        *secret_keys("bluesky"),
    )
    nostr = (
        Key(
            "accounts.NAME.relays",
            "list of URLs",
            None,
            "Nostr relays, wss:// (ws:// only for a loopback host).",
            parse_relays,
            platform="nostr",
            required=True,
            example=["wss://relay.example.com"],
        ),
        *secret_keys("nostr"),
        Key(
            "accounts.NAME.min_relays",
            "integer",
            1,
            "How many relays must accept an event for the send to succeed.",
            parse_int(1),
            platform="nostr",
        ),
        max_length("nostr"),
    )
    exec_ = (
        Key(
            "accounts.NAME.command",
            "command",
            None,
            "Program and arguments run once per post with the post as JSON on stdin.",
            parse_argv,
            platform="exec",
            required=True,
            example=["sh", "-c", "cat >> ~/posted.jsonl"],
        ),
        Key(
            "accounts.NAME.timeout",
            "duration",
            "60s",
            "How long the command may run before the send counts as a temporary failure.",
            parse_duration,
            platform="exec",
        ),
        max_length("exec"),
    )
    outbox = (
        Key(
            "accounts.NAME.path",
            "path",
            None,
            "The JSON-lines file posts are appended to.",
            parse_path,
            platform="outbox",
            default_doc="$XDG_STATE_HOME/plurspool/outbox.jsonl",
            example="~/outbox.jsonl",
        ),
    )
    return {
        "mastodon": mastodon,
        "bluesky": bluesky,
        "nostr": nostr,
        "exec": exec_,
        "outbox": outbox,
    }


def check(platform: str, options: Mapping[str, Any], prefix: str, ctx: Ctx) -> None:
    """Refuse what no single key of a `platform` account can: `options` are its parsed keys,
    under [`prefix`]."""
    if platform == "nostr" and options["min_relays"] > len(options["relays"]):
        raise ctx.error(
            f"{prefix}.min_relays",
            f"{options['min_relays']} is more than the {len(options['relays'])} relay(s) listed",
            "lower min_relays or add relays",
        )


def fill_defaults(platform: str, options: dict[str, Any], state: Path) -> None:
    """Add the defaults of a `platform` account that come from elsewhere than the key table:
    from the state directory `state`."""
    if platform == "outbox" and "path" not in options:
        options["path"] = default_outbox(state)


def default_outbox(state: Path) -> Path:
    """The outbox file of an account that names none, in the state directory `state`."""
    return state / "outbox.jsonl"


def limits_dir(state: Path) -> Path:
    """Where the mastodon platform caches its instances' limits, in the state directory `state`."""
    return state / "mastodon"


def fingerprint(state: Path) -> str:
    """What a cached check of a post depends on besides the post and the config: the servers'
    limits the platforms have cached (mastodon's, as of their directory's last change)."""
    try:
        return str(limits_dir(state).stat().st_mtime_ns)
    except OSError:
        return "0"
