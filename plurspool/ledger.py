"""The send ledger: the only user of sqlite3.

Per-host state kept outside the spool (so the spool can live in git): per post and account the
idempotency material, attempts, results and backoff, plus rate-limit windows. WAL mode,
`BEGIN IMMEDIATE` for every write, a busy timeout, and a schema version.
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SpoolError

SCHEMA_VERSION = 5  # 4: retries, 5: deletions

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    post_id   TEXT NOT NULL,
    account   TEXT NOT NULL,
    status    TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | failed
    attempts  INTEGER NOT NULL DEFAULT 0,
    nonce     TEXT NOT NULL,                     -- unused since the key is the post's own
    material  TEXT NOT NULL DEFAULT '{}',        -- platform data saved before the first request
    in_flight INTEGER NOT NULL DEFAULT 0,        -- an attempt began and its outcome is unknown
    remote_id TEXT, url TEXT, error TEXT,
    next_at   REAL,                              -- no attempt before this (backoff), epoch s
    updated   REAL NOT NULL,
    deferred  INTEGER NOT NULL DEFAULT 0,        -- 1: waits for a rate limit, next_at and
                                                 -- error say until when and why (no backoff)
    PRIMARY KEY (post_id, account)
);
CREATE TABLE IF NOT EXISTS sends (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sends_key_at ON sends (key, at);
CREATE TABLE IF NOT EXISTS holds (                -- a server said: no requests left until
    account TEXT PRIMARY KEY,
    until   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS retries (              -- the last `retried` token honoured, per post
    post_id TEXT PRIMARY KEY,
    token   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deletions (            -- deleting a sent post's copy on an account
    post_id   TEXT NOT NULL,
    account   TEXT NOT NULL,
    status    TEXT NOT NULL DEFAULT 'pending',   -- pending | deleted | failed
    attempts  INTEGER NOT NULL DEFAULT 0,
    material  TEXT NOT NULL DEFAULT '{}',        -- what the platform saved before a request
    error     TEXT,
    next_at   REAL,                              -- no attempt before this (backoff), epoch s
    at        REAL,                              -- when it was deleted
    updated   REAL NOT NULL,
    PRIMARY KEY (post_id, account)
);
"""


@dataclass(frozen=True)
class Delivery:
    """What the ledger knows about sending one post to one account."""

    post_id: str
    account: str
    status: str
    attempts: int
    nonce: str
    material_json: str  # see `material`
    in_flight: bool
    remote_id: str | None
    url: str | None
    error: str | None
    next_at: float | None
    deferred: bool = False  # next_at and error tell when a rate limit lets it go, and why

    @functools.cached_property
    def material(self) -> dict[str, Any]:
        """Platform data saved before the first request (decoded when asked for: rows are read
        several times a send, and a thread's signed events make it the largest column)."""
        value: dict[str, Any] = json.loads(self.material_json)
        return value


def _row(r: sqlite3.Row) -> Delivery:
    return Delivery(
        post_id=r["post_id"],
        account=r["account"],
        status=r["status"],
        attempts=r["attempts"],
        nonce=r["nonce"],
        material_json=r["material"],
        in_flight=bool(r["in_flight"]),
        remote_id=r["remote_id"],
        url=r["url"],
        error=r["error"],
        next_at=r["next_at"],
        deferred=bool(r["deferred"]),
    )


_ROW = "SELECT * FROM deliveries WHERE post_id=? AND account=?"


@dataclass(frozen=True)
class Deletion:
    """What the ledger knows about deleting one sent post's copy on one account."""

    post_id: str
    account: str
    status: str  # pending | deleted | failed
    attempts: int
    material: dict[str, Any]
    error: str | None
    next_at: float | None
    at: float | None  # when it was deleted


def _deletion(r: sqlite3.Row) -> Deletion:
    material = json.loads(r["material"])
    return Deletion(
        r["post_id"],
        r["account"],
        r["status"],
        r["attempts"],
        material,
        r["error"],
        r["next_at"],
        r["at"],
    )


def _new_row(post_id: str, account: str, nonce: str) -> Delivery:
    """A row as the ledger makes it, before any attempt (the table's defaults)."""
    return Delivery(post_id, account, "pending", 0, nonce, "{}", False, None, None, None, None)


def _made_row(db: sqlite3.Connection, post_id: str, account: str, now: float) -> sqlite3.Row:
    """The row for (post, account), inserted with a fresh nonce if there is none (in a tx)."""
    r: sqlite3.Row | None = db.execute(_ROW, (post_id, account)).fetchone()
    if r is None:
        db.execute(
            "INSERT INTO deliveries (post_id, account, nonce, updated) VALUES (?,?,?,?)",
            (post_id, account, secrets.token_hex(8), now),
        )
        r = db.execute(_ROW, (post_id, account)).fetchone()
        assert r is not None
    return r


class Ledger:
    """The SQLite ledger of one spool on this host."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock  # epoch seconds: the app's one clock
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._synced = True  # the connection's `synchronous`: FULL, or NORMAL (see _tx)
            self._db.execute("PRAGMA busy_timeout=30000")
            if self._schema_version() == SCHEMA_VERSION:
                return  # nothing to create or upgrade: no write lock, no fsync for readers
            with self._tx() as db:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                version = SCHEMA_VERSION if row is None else int(row["value"])
                if version > SCHEMA_VERSION:
                    raise SpoolError(
                        f"the ledger {path} was written by a newer plurspool "
                        f"(schema {row['value']})",
                        "upgrade plurspool",
                    )
                if version < 2:
                    db.execute(
                        "ALTER TABLE deliveries ADD COLUMN deferred INTEGER NOT NULL DEFAULT 0"
                    )
                # Tables new in a version (holds 3, retries 4, deletions 5) came with _SCHEMA above.
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
        except sqlite3.Error as exc:
            raise SpoolError(
                f"cannot open the ledger {path}: {exc}",
                "check the state directory's permissions and free space",
            ) from None

    def _schema_version(self) -> int | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError:
            return None  # a new ledger: no meta table yet
        return None if row is None else int(row["value"])

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self, synced: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; `synced`: on disk (fsync) when it returns."""
        try:
            if synced != self._synced:
                # Left as set until a transaction wants the other (a sender alternates less).
                # NORMAL in WAL mode: atomic, and on disk with the next FULL commit.
                self._db.execute(f"PRAGMA synchronous={'FULL' if synced else 'NORMAL'}")
                self._synced = synced
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise SpoolError(f"the ledger {self.path} is unusable: {exc}", "") from None
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException as exc:
            # SQLite may have rolled back already (a full disk does): then there is nothing to
            # roll back, and that must not hide why.
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise SpoolError(
                    f"cannot write the ledger {self.path}: {exc}",
                    "free some disk space; nothing was sent without being recorded",
                ) from None
            raise

    # -- deliveries ------------------------------------------------------------------------

    def deliveries(self, post_id: str) -> dict[str, Delivery]:
        rows = self._db.execute("SELECT * FROM deliveries WHERE post_id=?", (post_id,))
        return {r["account"]: _row(r) for r in rows}

    def all_deliveries(self) -> dict[str, dict[str, Delivery]]:
        out: dict[str, dict[str, Delivery]] = {}
        for r in self._db.execute("SELECT * FROM deliveries"):
            out.setdefault(r["post_id"], {})[r["account"]] = _row(r)
        return out

    def delivery_ids(self) -> set[str]:
        """The posts the ledger has any row for."""
        return {r[0] for r in self._db.execute("SELECT DISTINCT post_id FROM deliveries")}

    def delivery(self, post_id: str, account: str) -> Delivery:
        """The row for (post, account), created with a fresh nonce on first use."""
        with self._tx() as db:
            return _row(_made_row(db, post_id, account, self.clock()))

    def save_material(self, post_id: str, account: str, material: dict[str, Any]) -> None:
        """Persist platform material (e.g. a signed event) before it is first sent."""
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET material=?, updated=? WHERE post_id=? AND account=?",
                (json.dumps(material), self.clock(), post_id, account),
            )

    def peek(self, post_id: str, account: str) -> Delivery:
        """The row for (post, account) as it is; if there is none, the one `begin_attempt`
        would make (with a fresh nonce), written nowhere yet."""
        r = self._db.execute(_ROW, (post_id, account)).fetchone()
        return _new_row(post_id, account, secrets.token_hex(8)) if r is None else _row(r)

    def begin_attempt(
        self,
        post_id: str,
        account: str,
        *,
        synced: bool = True,
        nonce: str | None = None,
        material: dict[str, Any] | None = None,
    ) -> Delivery:
        """Mark an attempt as started: if we crash now, its outcome is in doubt. The row is
        made on first use (with `nonce`, from `peek`, or a fresh one); returns it as it was
        before this attempt.

        `material`: saved in the same write, when the mark goes to the disk with the platform's
        first save (see Sender._send_account). `synced=False`: the mark needs no fsync of its
        own (the platform sent nothing, or will not before a synced save).
        """
        now = self.clock()
        with self._tx(synced) as db:
            r = db.execute(_ROW, (post_id, account)).fetchone()
            if r is None:  # the first attempt: the row is made marked (one statement less)
                nonce = nonce or secrets.token_hex(8)
                db.execute(
                    "INSERT INTO deliveries (post_id, account, nonce, attempts, in_flight, "
                    "material, updated) VALUES (?,?,?,1,1,?,?)",
                    (post_id, account, nonce, json.dumps(material or {}), now),
                )
                return _new_row(post_id, account, nonce)
            db.execute(
                "UPDATE deliveries SET attempts=attempts+1, in_flight=1, deferred=0, updated=?, "
                "material=coalesce(?, material) WHERE post_id=? AND account=?",
                (now, None if material is None else json.dumps(material), post_id, account),
            )
        return _row(r)

    def record(
        self,
        post_id: str,
        account: str,
        status: str,
        *,
        remote_id: str | None = None,
        url: str | None = None,
        error: str | None = None,
        next_at: float | None = None,
        rate_keys: tuple[str, ...] = (),
        at: float | None = None,
    ) -> None:
        """Record an attempt's outcome; a success also fills the rate-limit windows.

        Not synced to disk at once (the next synced write, or a checkpoint, takes it along):
        losing it to a power cut leaves the attempt in doubt, which the next attempt checks on
        the platform before sending anything, as after a crash. What must reach the disk before
        a request, `begin_attempt` and `save_material`, is synced.
        """
        now = self.clock() if at is None else at
        with self._tx(synced=False) as db:
            db.execute(
                "UPDATE deliveries SET status=?, in_flight=0, remote_id=?, url=?, error=?, "
                "next_at=?, deferred=0, updated=? WHERE post_id=? AND account=?",
                (status, remote_id, url, error, next_at, now, post_id, account),
            )
            for key in rate_keys:
                db.execute("INSERT INTO sends VALUES (?, ?)", (key, now))

    def reopen(self, post_id: str, token: str) -> bool:
        """Make failed accounts of a post sendable again (retry); successes are kept.

        Once per `token` (the post's `retried` key, written by `plurspool retry` on any host):
        a token honoured before changes nothing, and the answer is False.
        """
        if self._retried(self._db, post_id) == token:  # the common case: a read, no lock
            return False
        with self._tx() as db:
            if self._retried(db, post_id) == token:
                return False
            db.execute(
                "UPDATE deliveries SET status='pending', attempts=0, error=NULL, next_at=NULL, "
                "deferred=0, updated=? WHERE post_id=? AND status!='sent'",
                (self.clock(), post_id),
            )
            db.execute("INSERT OR REPLACE INTO retries VALUES (?, ?)", (post_id, token))
        return True

    @staticmethod
    def _retried(db: sqlite3.Connection, post_id: str) -> str | None:
        row = db.execute("SELECT token FROM retries WHERE post_id=?", (post_id,)).fetchone()
        return None if row is None else str(row[0])

    def defer(self, post_id: str, account: str, reason: str, until: float) -> None:
        """Note that a pending account waits for a rate limit until `until`, and why.

        Only for `list`/`show`: the planner recomputes rate limits on every pass (a reload may
        change them), so a deferral never holds a send back the way a backoff does.
        """
        self.delivery(post_id, account)
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET deferred=1, error=?, next_at=?, updated=? "
                "WHERE post_id=? AND account=? AND status='pending' AND in_flight=0",
                (reason, until, self.clock(), post_id, account),
            )

    def undefer(self, post_id: str) -> None:
        """Drop a post's rate-limit deferrals: its time changed, they no longer say why."""
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET deferred=0, error=NULL, next_at=NULL, updated=? "
                "WHERE post_id=? AND deferred=1",
                (self.clock(), post_id),
            )

    # -- deletions (plurspool(5), `expires`) ----------------------------------------------

    def deletions(self, post_id: str) -> dict[str, Deletion]:
        rows = self._db.execute("SELECT * FROM deletions WHERE post_id=?", (post_id,))
        return {r["account"]: _deletion(r) for r in rows}

    def begin_deletion(self, post_id: str, account: str) -> Deletion:
        """Count an attempt to delete (the row made on first use); returns the row as it was."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO deletions (post_id, account, updated) VALUES (?,?,?)",
                (post_id, account, self.clock()),
            )
            r = db.execute(
                "SELECT * FROM deletions WHERE post_id=? AND account=?", (post_id, account)
            ).fetchone()
            db.execute(
                "UPDATE deletions SET attempts=attempts+1, updated=? WHERE post_id=? AND account=?",
                (self.clock(), post_id, account),
            )
        return _deletion(r)

    def save_deletion(self, post_id: str, account: str, material: dict[str, Any]) -> None:
        """Persist what a platform needs to repeat a deletion exactly (before its request)."""
        with self._tx() as db:
            db.execute(
                "UPDATE deletions SET material=?, updated=? WHERE post_id=? AND account=?",
                (json.dumps(material), self.clock(), post_id, account),
            )

    def record_deletion(
        self,
        post_id: str,
        account: str,
        status: str,
        *,
        error: str | None = None,
        next_at: float | None = None,
        rate_keys: tuple[str, ...] = (),
    ) -> None:
        """Record a deletion's outcome; a deletion also fills the rate-limit windows. Not
        synced at once (see `record`): lost, it is made again, and "already gone" counts."""
        now = self.clock()
        with self._tx(synced=False) as db:
            db.execute(
                "UPDATE deletions SET status=?, error=?, next_at=?, at=?, updated=? "
                "WHERE post_id=? AND account=?",
                (
                    status,
                    error,
                    next_at,
                    now if status == "deleted" else None,
                    now,
                    post_id,
                    account,
                ),
            )
            for key in rate_keys:
                db.execute("INSERT INTO sends VALUES (?, ?)", (key, now))

    def request_deletions(self, post_id: str, accounts: Iterable[str]) -> None:
        """Record deletions asked for (`delete`) as pending, to go now even if they failed or
        backed off before; what cannot be made at once the daemon's pass finishes."""
        now = self.clock()
        with self._tx() as db:
            for account in accounts:
                db.execute(
                    "INSERT OR IGNORE INTO deletions (post_id, account, updated) VALUES (?,?,?)",
                    (post_id, account, now),
                )
                db.execute(
                    "UPDATE deletions SET status='pending', attempts=0, error=NULL, "
                    "next_at=NULL, updated=? WHERE post_id=? AND account=? AND status!='deleted'",
                    (now, post_id, account),
                )

    def pending_deletions(self) -> list[str]:
        """The posts with a deletion still to make: asked for, or begun and not finished."""
        rows = self._db.execute("SELECT DISTINCT post_id FROM deletions WHERE status='pending'")
        return [r[0] for r in rows]

    # -- rate-limit windows ----------------------------------------------------------------

    def window(self, key: str, since: float) -> list[float]:
        """Send times for a rate-limit key since `since`, oldest first."""
        rows = self._db.execute(
            "SELECT at FROM sends WHERE key=? AND at>=? ORDER BY at", (key, since)
        )
        return [r["at"] for r in rows]

    def prune(self, before: float) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sends WHERE at<?", (before,))
            db.execute("DELETE FROM holds WHERE until<?", (before,))

    def hold(self, account: str, until: float) -> None:
        """Note that the account's server has no requests left for it until `until`."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO holds VALUES (?, ?)", (account, until))

    def holds(self, now: float) -> dict[str, float]:
        """account -> until, for the server rate limits that still hold at `now`."""
        rows = self._db.execute("SELECT account, until FROM holds WHERE until>?", (now,))
        return {r[0]: r[1] for r in rows}

    # -- parse cache -----------------------------------------------------------------------
    # Disposable: what a post file parsed to, keyed by path, inode, size and mtime, and by a
    # fingerprint of the configuration it was validated against. Lets `list` and the daemon's
    # scans skip parsing files that did not change. Per file: its due time and problem as
    # columns (the daemon's index reads only those), and the record `Items` rebuilds an item from.

    def _cache_table(self) -> None:
        if getattr(self, "_cache_ready", False):
            return
        row = self._db.execute(
            "SELECT sql FROM sqlite_master WHERE type='table' AND name='parse_cache'"
        ).fetchone()
        if row is None or " line " in row[0]:  # missing, or an earlier layout: a write (an
            with self._tx() as db:  # fsync) only then, not on every `list`
                db.execute("DROP TABLE IF EXISTS post_cache")
                db.execute("DROP TABLE IF EXISTS parse_cache")
                db.execute(
                    "CREATE TABLE parse_cache (path TEXT PRIMARY KEY, ino INTEGER, "
                    "size INTEGER, mtime_ns INTEGER, fp TEXT, due REAL, problem TEXT, "
                    "rec TEXT) WITHOUT ROWID"
                )
        self._cache_ready = True

    def cached(self, fingerprint: str) -> dict[str, tuple[tuple[int, int, int], str]]:
        """Every cached parse made under this fingerprint: path -> (file key, record)."""
        self._cache_table()
        rows = self._db.execute(
            "SELECT path, ino, size, mtime_ns, rec FROM parse_cache WHERE fp=?", (fingerprint,)
        )
        return {r[0]: ((r[1], r[2], r[3]), r[4]) for r in rows}

    def cached_dues(self, fingerprint: str) -> Iterator[tuple[Any, ...]]:
        """(path, ino, size, mtime_ns, due, has a problem) under this fingerprint, streamed:
        the daemon's scan of 100k posts never holds them all at once."""
        self._cache_table()
        yield from self._db.execute(
            "SELECT path, ino, size, mtime_ns, due, problem IS NOT NULL FROM parse_cache "
            "WHERE fp=?",
            (fingerprint,),
        )

    def cache(
        self,
        fingerprint: str,
        rows: list[tuple[str, tuple[int, int, int], float | None, str | None, str]],
        drop: list[str],
    ) -> None:
        """Store parses (path, file key, due, problem, record); forget paths that are gone."""
        if not rows and not drop:
            return
        self._cache_table()
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO parse_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(p, *k, fingerprint, due, problem, rec) for p, k, due, problem, rec in rows],
            )
            db.executemany("DELETE FROM parse_cache WHERE path=?", [(p,) for p in drop])

    # -- the calendar feed's sequence numbers (plurspool(1), `ics`) ----------------------------

    def calendar_sequences(self, seen: dict[str, str]) -> dict[str, tuple[int, float]]:
        """Each post's SEQUENCE and DTSTAMP (epoch) in the ICS feed: the sequence goes up by one
        whenever what the post is seen at (`seen[ID]`: its time, a recurring post's rule)
        differs from what was last seen, and the stamp is when that was. Rows of posts gone
        are kept: a post that comes back at another time gets a higher sequence."""
        table = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='ics_seen'"
        if self._db.execute(table).fetchone() is None:  # a table newer than the schema: made on use
            with self._tx(synced=False) as db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS ics_seen (post_id TEXT PRIMARY KEY, "
                    "seen TEXT NOT NULL, sequence INTEGER NOT NULL, stamp REAL NOT NULL)"
                )
        rows = self._db.execute("SELECT post_id, seen, sequence, stamp FROM ics_seen")
        known = {r[0]: (r[1], r[2], r[3]) for r in rows}
        now = self.clock()
        out: dict[str, tuple[int, float]] = {}
        changed = []
        for post_id, what in seen.items():
            old = known.get(post_id)
            if old is not None and old[0] == what:
                out[post_id] = (old[1], old[2])
                continue
            out[post_id] = (0 if old is None else old[1] + 1, now)
            changed.append((post_id, what, *out[post_id]))
        if changed:
            # Not synced: a row lost in a crash is made again by the next feed, with that number.
            with self._tx(synced=False) as db:
                db.executemany("INSERT OR REPLACE INTO ics_seen VALUES (?, ?, ?, ?)", changed)
        return out


class LedgerFile:
    """This host's ledger of one spool, opened on first use: `list` from its listings needs
    no sqlite, and a spool never sent from has no ledger."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self.path, self.clock)
        return self._ledger

    def exists(self) -> bool:
        return self._ledger is not None or self.path.exists()

    def if_exists(self) -> Ledger | None:
        """The ledger where this host has one, else None (nothing is made)."""
        return self.ledger if self.exists() else None

    def close(self) -> None:
        ledger, self._ledger = self._ledger, None
        if ledger is not None:
            ledger.close()
