"""The platform registry: which platforms there are, and the module that sends for each.

Every command loads this module (through the config, which checks account options against
`options`), so it imports nothing heavy: a platform's own module, with its client library, is
imported by `get` when a post is checked or sent. The protocol a platform module implements is in
`base`; media files and rate-limit headers, which several platforms read, in `media` and
`ratelimit`; what the config and the cache need of each platform, in `options`. A platform's own
helpers sit next to it (`bluesky_xrpc`, `mastodon_api`, `nostr_proto`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..config import Account
    from .base import Deleter, Platform

# In the order the docs list them.
PLATFORMS = ("mastodon", "bluesky", "nostr", "exec", "outbox")
DELETES = ("mastodon", "bluesky", "nostr")  # the platforms that can delete a post (`Deleter`)


def get(name: str) -> Platform:
    """The platform module for a platform name, imported on first use."""
    module = importlib.import_module(f"{__name__}.{name}")
    platform: Platform = module.PLATFORM
    return platform


def deleter(name: str) -> Deleter:
    """The platform module for a platform of DELETES, as a `Deleter`."""
    module = importlib.import_module(f"{__name__}.{name}")
    found: Deleter = module.PLATFORM
    return found


def deletable(accounts: Mapping[str, Account]) -> frozenset[str]:
    """The names of the `accounts` whose platform can delete a post (plurspool(5), `expires`)."""
    return frozenset(name for name, a in accounts.items() if a.platform in DELETES)


def release() -> None:
    """Close what the platforms in use keep open between sends (relay connections, derived
    keys) and forget the secrets the accounts' commands gave; the sender calls it at the end
    of each pass."""
    import sys

    from ..config import forget_secrets

    forget_secrets()
    for name in PLATFORMS:
        hook = getattr(sys.modules.get(f"{__name__}.{name}"), "release", None)
        if hook is not None:
            hook()
