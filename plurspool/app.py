"""One spool on this host, wired: config, clock, spool, ledger, locks, items, queue and views.

Wiring only, no logic: callers ask the owner of a job (`app.queue.cancel(item)`,
`app.views.view(item)`, `app.items.find(prefix)`, `app.locks.daemon_running()`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config
from .items import Items
from .ledger import Ledger, LedgerFile
from .locks import Locks
from .paths import utcnow
from .spool import Spool
from .views import Views

if TYPE_CHECKING:
    from .queue import Queue

SPOOLS = "spools"  # under the host's state dir: one state dir per spool, named by `spool_key`


def spool_key(root: Path) -> str:
    """A per-host state subdirectory name for a spool: readable and unique."""
    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:10]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", root.name)[:32] or "spool"
    return f"{base}-{digest}"


class App:
    """One spool with its configuration and per-host state."""

    def __init__(self, config: Config, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock
        self.spool = Spool(config.spool, config.max_post_size)
        self.root = self.spool.root
        self.state_dir = config.state_dir / SPOOLS / spool_key(self.spool.root)
        self.ledgers = LedgerFile(self.state_dir / "ledger.sqlite3", lambda: clock().timestamp())
        self.locks = Locks(self.spool.root, self.state_dir)
        self.items = Items(config, clock, self.spool, self.ledgers)
        self.views = Views(self.items, self.spool, self.ledgers, self.state_dir)

    @cached_property
    def queue(self) -> Queue:
        """The state changes, made on first use: `list` and `show` never import them."""
        from .queue import Queue

        return Queue(self.items, self.spool, self.locks, self.ledgers.if_exists)

    @property
    def config(self) -> Config:
        return self.items.config

    @config.setter
    def config(self, config: Config) -> None:  # a reload: the spool path stays (restart)
        self.items.config = config

    @property
    def ledger(self) -> Ledger:
        """This host's ledger of the spool, opened (made) on first use."""
        return self.ledgers.ledger

    def close(self) -> None:
        self.ledgers.close()
