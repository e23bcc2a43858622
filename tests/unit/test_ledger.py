"""The ledger: its schema and upgrades, attempts, deferrals and pruning."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from plurspool.errors import SpoolError
from plurspool.ledger import SCHEMA_VERSION, Ledger

HOUR = 3600.0
T0 = 1_900_000_000.0  # a fixed "now" in epoch seconds


# -- ledger ----------------------------------------------------------------------------------


def test_ledger_has_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    db = sqlite3.connect(path)  # raw sqlite3: the test is about the file's schema version
    assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    db.commit()
    db.close()
    with pytest.raises(SpoolError) as info:
        Ledger(path)
    assert "newer plurspool" in info.value.message


def test_ledger_upgrades_a_version_1_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(path)  # raw sqlite3: a version 1 file, as an old plurspool wrote it
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');
        CREATE TABLE deliveries (
            post_id TEXT NOT NULL, account TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
            nonce TEXT NOT NULL, material TEXT NOT NULL DEFAULT '{}',
            in_flight INTEGER NOT NULL DEFAULT 0, remote_id TEXT, url TEXT, error TEXT,
            next_at REAL, updated REAL NOT NULL, PRIMARY KEY (post_id, account));
        CREATE TABLE sends (key TEXT NOT NULL, at REAL NOT NULL);
        INSERT INTO deliveries (post_id, account, status, attempts, nonce, remote_id, updated)
            VALUES ('p', 'x', 'sent', 1, 'abcd', 'r1', 0);
        """
    )
    db.commit()
    db.close()
    ledger = Ledger(path)
    d = ledger.deliveries("p")["x"]
    assert (d.status, d.remote_id, d.nonce, d.deferred) == ("sent", "r1", "abcd", False)
    ledger.defer("q", "x", "deferred: rate limit x 1/hour until …", T0)
    assert ledger.deliveries("q")["x"].deferred
    ledger.hold("x", T0 + 5)  # version 3's table of server holds
    ledger.close()
    upgraded = Ledger(path)
    assert upgraded.deliveries("p")["x"].remote_id == "r1"
    assert upgraded.holds(T0) == {"x": T0 + 5}


def test_prune_forgets_old_sends_and_ended_holds(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.delivery("p", "x")
    ledger.record("p", "x", "sent", rate_keys=("x",), at=T0 - HOUR)
    ledger.delivery("q", "x")
    ledger.record("q", "x", "sent", rate_keys=("x",), at=T0)
    ledger.hold("x", T0 - 100)
    ledger.hold("y", T0 + 10)
    ledger.prune(T0 - 60)
    assert ledger.window("x", 0) == [T0]
    assert ledger.holds(0) == {"y": T0 + 10}
    assert ledger.holds(T0 + 10) == {}  # a hold ends at its time


def test_reopen_keeps_successes(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    for account in ("a", "b", "c"):
        ledger.delivery("p", account)
        ledger.begin_attempt("p", account)
    ledger.record("p", "a", "sent", remote_id="r-a", rate_keys=("a",), at=T0)
    ledger.record("p", "b", "failed", error="nope", at=T0)
    ledger.record("p", "c", "pending", error="later", next_at=T0 + 60)
    assert ledger.reopen("p", "2026-12-01T08:00:00Z-a1b2c3")
    ds = ledger.deliveries("p")
    assert (ds["a"].status, ds["a"].remote_id, ds["a"].attempts) == ("sent", "r-a", 1)
    for account in ("b", "c"):
        assert (ds[account].status, ds[account].error, ds[account].next_at) == (
            "pending",
            None,
            None,
        )
        assert ds[account].attempts == 0
    # The same retry seen again (another pass, another host's copy of the file): nothing.
    ledger.record("p", "b", "failed", error="nope again", at=T0)
    assert not ledger.reopen("p", "2026-12-01T08:00:00Z-a1b2c3")
    assert ledger.deliveries("p")["b"].status == "failed"
    assert ledger.reopen("p", "2026-12-02T08:00:00Z-d4e5f6")  # a new retry: once more
    assert ledger.deliveries("p")["b"].status == "pending"


def test_attempts_in_flight_and_windows(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    before = ledger.begin_attempt("p", "x")  # makes the row: as it was before the attempt
    assert (before.attempts, before.in_flight, before.status) == (0, False, "pending")
    d = ledger.delivery("p", "x")
    assert d.in_flight and d.attempts == 1 and d.nonce == before.nonce
    fresh = ledger.delivery("q", "x")  # a row as the ledger makes it, never attempted
    assert dataclasses.replace(before, post_id="q", nonce=fresh.nonce) == fresh
    again = ledger.begin_attempt("p", "x")  # after a crash: the last attempt is in doubt
    assert again.in_flight and again.attempts == 1 and ledger.delivery("p", "x").attempts == 2
    ledger.record("p", "x", "sent", rate_keys=("x", "exec"), at=T0)
    d = ledger.delivery("p", "x")
    assert not d.in_flight and d.status == "sent"
    assert ledger.window("x", T0 - 1) == [T0]
    assert ledger.window("exec", T0 - 1) == [T0]
    assert ledger.window("x", T0 + 1) == []


def test_synced_writes_are_synced_after_unsynced_ones(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")

    def mode() -> int:
        return int(ledger._db.execute("PRAGMA synchronous").fetchone()[0])

    ledger.begin_attempt("p", "x", synced=False)
    assert mode() == 1  # NORMAL: left so for the next unsynced write
    ledger.record("p", "x", "pending", error="e")
    assert mode() == 1
    ledger.save_material("p", "x", {"k": 1})
    assert mode() == 2  # FULL
    ledger.begin_attempt("p", "x")
    assert mode() == 2


def test_a_deferral_is_cleared_by_the_next_attempt(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.defer("p", "x", "deferred: rate limit x 1/hour until then", T0 + HOUR)
    d = ledger.delivery("p", "x")
    assert d.deferred and d.next_at == T0 + HOUR and d.error is not None
    ledger.begin_attempt("p", "x")
    assert not ledger.delivery("p", "x").deferred
    ledger.record("p", "x", "sent", at=T0)
    d = ledger.delivery("p", "x")
    assert (d.deferred, d.error, d.next_at) == (False, None, None)
    ledger.defer("p", "x", "too late", T0)  # only pending rows can be deferred
    assert ledger.delivery("p", "x").error is None
    ledger.defer("q", "x", "deferred: rate limit", T0 + HOUR)
    ledger.undefer("q")
    d = ledger.delivery("q", "x")
    assert (d.deferred, d.error, d.next_at, d.status) == (False, None, None, "pending")


V3_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE deliveries (
    post_id TEXT NOT NULL, account TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, nonce TEXT NOT NULL,
    material TEXT NOT NULL DEFAULT '{}', in_flight INTEGER NOT NULL DEFAULT 0,
    remote_id TEXT, url TEXT, error TEXT, next_at REAL, updated REAL NOT NULL,
    deferred INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (post_id, account)
);
CREATE TABLE sends (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX sends_key_at ON sends (key, at);
CREATE TABLE holds (account TEXT PRIMARY KEY, until REAL NOT NULL);
INSERT INTO meta VALUES ('schema', '3');
INSERT INTO deliveries (post_id, account, status, attempts, nonce, error, updated)
    VALUES ('p', 'x', 'failed', 1, 'n1', 'x is down', 0),
           ('p', 'ok', 'sent', 1, 'n2', NULL, 0);
"""


def test_a_v3_ledger_is_upgraded_in_place_and_remembers_retries(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(path)  # raw sqlite3: the test is about the file's schema and its upgrade
    db.executescript(V3_SCHEMA)
    db.close()
    ledger = Ledger(path)
    assert SCHEMA_VERSION == 5
    assert ledger.deletions("p") == {}  # the deletions table (5) came with the upgrade
    rows = ledger.deliveries("p")
    assert (rows["x"].status, rows["x"].error, rows["ok"].status) == ("failed", "x is down", "sent")
    assert ledger.reopen("p", "t1")
    ledger.close()
    ledger = Ledger(path)  # the token outlives the process
    assert not ledger.reopen("p", "t1")
    rows = ledger.deliveries("p")
    assert (rows["x"].status, rows["x"].attempts, rows["ok"].status) == ("pending", 0, "sent")
    ledger.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("5",)
    db.close()
