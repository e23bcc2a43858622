"""The crash campaign: kill the real daemon again and again and check what plurspool(1) DAEMON
promises.

    python -m tests.robustness.campaign --kills 200 [--seed N] [--samples 3]
        [--exec-only] [--keep DIR]

runs `plurspool send` against an `exec` account (a command that dedupes on
PLURSPOOL_IDEMPOTENCY_KEY, as plurspool-config(5) ACCOUNTS asks of one), both Nostr relays and
mastodon-mock on 127.0.0.1 (started here unless $PLURSPOOL_TEST_NOSTR_RELAYS /
$PLURSPOOL_TEST_MASTODON_URL name running ones), while posts keep arriving in new/: single posts
and threads, due now, at a time a few seconds ahead, or in a relative time that intake resolves,
each to a random set of accounts. A third of them are long enough for auto-split (plurspool(5),
AUTO-SPLIT) to break each part into several on every account (the exec and Nostr accounts have a
`max_length` of 200, Mastodon its 500), and the first systematic sample is one of those: a crash
between two parts of a split thread must not duplicate a part either.

Two kinds of kill:
- random: the daemon is SIGKILLed after a random delay, or a few milliseconds after a random
  `queued`/`sending`/`sent`/`done` event it logged, and started again;
- systematic, for a sample of posts: `send --once` runs in a forked child that SIGKILLs itself
  just before the Nth mutating system call of the spool (open for writing, write, fsync, close,
  rename, replace, unlink) or ledger transaction or platform send (or delete: the deletion
  slice, tests/robustness/test_crash_deletions.py), for N = 1, 2, ... until a run gets
  through; after each kill, plain passes finish the post.

At the end the daemon drains the queue and the campaign counts, on every peer itself, how often
each post arrived, and checks that every accepted post is in exactly one state (sent/ or failed/),
that none is lost or duplicated, that every success a peer shows is recorded in the post file
with the peer's ID, and that the exec command always got one idempotency key per post and account.
It prints the figures and exits 1 if any promise broke.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.daemon_helpers import DaemonProc, Sandbox, event_words, iso

# The exec account's command: a peer that keeps what it was sent and dedupes on the key.
EXEC_PEER = r"""
import fcntl, json, os, sys
store = sys.argv[1]
key = os.environ["PLURSPOOL_IDEMPOTENCY_KEY"]
post = json.loads(sys.stdin.read())
fd = os.open(store, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
with open(fd, "rb", closefd=False) as f:
    lines = [json.loads(x) for x in f.read().decode().splitlines() if x.endswith("}")]
old = [r for r in lines if r["kind"] == "post" and r["key"] == key]
def put(rec):
    os.write(fd, (json.dumps(rec) + "\n").encode())
    os.fsync(fd)
put({"kind": "call", "key": key, "id": post["id"]})
if old:
    print(old[0]["rid"])
else:
    rid = "ex-%d" % (1 + sum(1 for r in lines if r["kind"] == "post"))
    put({"kind": "post", "key": key, "id": post["id"], "rid": rid, "parts": post["parts"]})
    print(rid)
"""

EVENTS = ("queued", "sending", "sent", "done")
MAX_LENGTH = 200  # the exec and Nostr accounts' max_length, in graphemes
LONG_SENTENCES = 14  # a long post's part is some 600 characters: over Mastodon's 500 too


@dataclass
class Spec:
    """A post the campaign delivered: what it must end up as."""

    id: str
    accounts: list[str]
    # One hashtag per thread part, unique to this post, then (in a long post) one per sentence
    # of each part, so that every piece auto-split makes of it is counted on the peers.
    tags: list[str]


@dataclass
class Figures:
    """What the campaign did and found."""

    kills: int = 0
    systematic_kills: int = 0
    posts: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    per_peer: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.problems)

    def text(self) -> str:
        lines = [
            f"kills: {self.kills + self.systematic_kills} "
            f"({self.kills} random, {self.systematic_kills} systematic)",
            f"posts: {self.posts}",
            f"lost: {len(self.lost)}",
            f"duplicates: {len(self.duplicates)}",
            f"other problems: {len(self.problems)}",
            "states: " + ", ".join(f"{k} {v}" for k, v in sorted(self.states.items())),
            "on the peers: " + ", ".join(f"{k} {v}" for k, v in sorted(self.per_peer.items())),
            f"time: {self.seconds:.0f}s",
        ]
        for what, items in (("LOST", self.lost), ("DUPLICATE", self.duplicates)):
            lines += [f"{what}: {x}" for x in items[:20]]
        lines += [f"PROBLEM: {x}" for x in self.problems[:20]]
        return "\n".join(lines)


class Campaign:
    """One sandbox, its accounts and peers, the posts delivered and the kills made."""

    def __init__(
        self,
        base: Path,
        *,
        seed: int,
        relays: list[str] | None = None,
        mastodon: str | None = None,
        log: Callable[[str], None] = lambda s: None,
    ) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.say = log
        self.box = Sandbox(base)
        self.box.daemon_keys.update(retry_delay="1s", shutdown_timeout="10s")
        self.figures = Figures()
        self.specs: dict[str, Spec] = {}
        self.points: list[str] = []  # where the systematic kills struck
        self.started = time.monotonic()
        self.n = 0
        self.store = base / "exec-peer.jsonl"
        script = base / "exec_peer.py"
        script.write_text(EXEC_PEER, encoding="utf-8")
        argv = [sys.executable, str(script), str(self.store)]
        self.box.accounts["ex"] = (
            'platform = "exec"\ncommand = ' + json.dumps(argv) + '\ntimeout = "30s"\n'
            f"max_length = {MAX_LENGTH}\n"
        )
        self.accounts = ["ex"]
        self.relays = relays or []
        self.secret = b""
        if self.relays:
            from plurspool.platforms import nostr_proto as proto

            self.secret = os.urandom(31) + b"\x01"
            key = base / "nostr.key"
            key.write_text(proto.nsec(self.secret) + "\n", encoding="utf-8")
            key.chmod(0o600)
            self.box.accounts["ns"] = (
                f'platform = "nostr"\nrelays = {json.dumps(self.relays)}\n'
                f"key_file = {json.dumps(str(key))}\nmin_relays = 1\n"
                f"max_length = {MAX_LENGTH}\n"
            )
            self.accounts.append("ns")
        self.mastodon = mastodon
        self.user: Any = None
        if mastodon:
            from tests.peers.mastodon_mock import Mock

            self.user = Mock(mastodon).new_user()
            self.box.accounts["ma"] = f'platform = "mastodon"\ninstance = {json.dumps(mastodon)}\n'
            self.box.env["PLURSPOOL_MA_TOKEN"] = self.user.token
            self.accounts.append("ma")
        self.box.default_platforms = ["ex"]
        self.box.write_config()
        # Imported once here, not in every forked child (a third of a second each).
        import importlib

        for mod in ("plurspool.daemon", "plurspool.sender", "filelock", "yaml", "httpx"):
            importlib.import_module(mod)
        for name in ("exec", "nostr", "mastodon"):
            importlib.import_module(f"plurspool.platforms.{name}")

    def warm_up(self) -> None:
        """One post to every account, sent by a pass in this process, so that what plurspool
        imports and compiles lazily is ready before the forked children (it halves their time)."""
        spec = self.deliver(list(self.accounts), 2, when="")
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.box.env)
        try:
            from plurspool.cli import cli

            with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
                for _ in range(50):
                    with contextlib.suppress(SystemExit):
                        cli.main(args=["send", "--once"], prog_name="plurspool")
                    if self.box.where(spec.id) in (["sent"], ["failed"]):
                        break
                    time.sleep(0.1)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    # -- posts -----------------------------------------------------------------------------

    def deliver(
        self,
        accounts: list[str] | None = None,
        parts: int | None = None,
        when: str | None = None,
        long: bool | None = None,
    ) -> Spec:
        """Write one post into new/ as a careful writer does (tmp/, fsync, rename); a `long` one
        is split by auto-split on every account."""
        self.n += 1
        post_id = f"c{self.seed}-{self.n:04d}"
        if accounts is None:
            k = self.rng.randint(1, len(self.accounts))
            accounts = sorted(self.rng.sample(self.accounts, k))
        if parts is None:
            parts = 2 if self.rng.random() < 0.25 else 1
        tags = [f"cmp{self.seed}n{self.n}p{i}" for i in range(parts)]
        roll = self.rng.random()
        front = [f"platforms: [{', '.join(accounts)}]"]
        if when is not None:
            front += [f"schedule: {when}"] if when else []  # "": none, due at intake
        elif roll < 0.3:
            front.append(f"schedule: {iso(time.time() + self.rng.uniform(1, 3))}")
        elif roll < 0.45:
            front.append("schedule: 2s")
        elif roll < 0.6:
            front.append("schedule: now")
        if long is None:
            long = self.rng.random() < 0.3
        sentences: list[str] = []
        texts = []
        for i, t in enumerate(tags):
            text = f"Campaign post {self.n}, part {i + 1} #{t}"
            if long:
                # Distinct from the part tags, none a prefix of another: counted on Mastodon
                # by substring.
                mine = [f"cms{self.seed}n{self.n}p{i}k{k:02d}" for k in range(LONG_SENTENCES)]
                text += "".join(f" A sentence that goes on, #{s}." for s in mine)
                sentences += mine
            texts.append(text)
        body = "\n\n---\n\n".join(texts)
        self.box.deliver("new", post_id, "---\n" + "\n".join(front) + "\n---\n" + body + "\n")
        spec = Spec(post_id, accounts, tags + sentences)
        self.specs[post_id] = spec
        self.figures.posts += 1
        return spec

    # -- random kills ----------------------------------------------------------------------

    def random_kills(self, kills: int) -> None:
        """Start the daemon, SIGKILL it at a random point, `kills` times; posts keep coming."""
        for i in range(kills):
            for _ in range(self.rng.randint(1, 3)):
                self.deliver()
            proc = self.box.start()
            try:
                if self.rng.random() < 0.4:
                    time.sleep(self.rng.uniform(0.0, 0.9))
                else:
                    self._await_event(proc, self.rng.choice(EVENTS), timeout=3.0)
                    time.sleep(self.rng.uniform(0.0, 0.03))
            finally:
                proc.kill()
                self.box.procs.remove(proc)
            self.figures.kills += 1
            if (i + 1) % 10 == 0:
                self.say(f"{i + 1} random kills, {self.figures.posts} posts")

    def _await_event(self, proc: DaemonProc, name: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and proc.proc.poll() is None:
            if any(event_words(line)[:1] == [name] for line in proc.log()):
                return
            time.sleep(0.002)

    # -- systematic kills ------------------------------------------------------------------

    def systematic(self, samples: int) -> None:
        """For `samples` posts: a kill before each mutating step of a pass, one at a time."""
        for s in range(samples):
            accounts = list(self.accounts) if s == 0 else None
            parts = 2 if s == 1 else (1 if s == 0 else None)
            long = s == 0  # the first sample: split on every account
            n = 1
            while True:
                spec = self.deliver(accounts, parts, when="", long=long)
                accounts = spec.accounts
                parts = sum(1 for t in spec.tags if not t.startswith("cms"))
                killed_at = self._forked_pass(n, spec.id)
                if killed_at is None:
                    break  # the pass got through: every point of this post's life was tried
                self.points.append(killed_at)
                self.figures.systematic_kills += 1
                self._finish(spec.id)
                n += 1
            self._finish(spec.id)
            self.say(f"sample {s + 1}: {n - 1} kill points, accounts {','.join(accounts or [])}")
            self.say(
                "  "
                + " | ".join(p.replace(str(self.box.spool), "") for p in self.points[-(n - 1) :])
            )

    def _forked_pass(self, crash_at: int | None, post_id: str | None = None) -> str | None:
        """`send --once` passes in a forked child until `post_id` is finished; the step it was
        killed before, or None."""
        killed_at, failure = forked_pass(self.box, crash_at, post_id)
        if failure is not None:
            self.figures.problems.append(failure)
        return killed_at

    def _finish(self, post_id: str, timeout: float = 60.0) -> None:
        """Passes without kills until the post has left new/ and scheduled/."""
        end = time.monotonic() + timeout
        while self.box.where(post_id) in (["new"], ["scheduled"], []):
            if time.monotonic() > end:
                self.figures.problems.append(f"{post_id} still {self.box.where(post_id)}")
                return
            self._forked_pass(None, post_id)

    # -- the end ---------------------------------------------------------------------------

    def drain(self, timeout: float = 180.0) -> None:
        """Run the daemon until every post left new/ and scheduled/, then stop it politely."""
        proc = self.box.start()
        try:
            end = time.monotonic() + timeout
            while self.box.ids("new") or self.box.ids("scheduled"):
                if time.monotonic() > end or proc.proc.poll() is not None:
                    self.figures.problems.append(
                        f"not drained: new {sorted(self.box.ids('new'))[:5]}, scheduled "
                        f"{sorted(self.box.ids('scheduled'))[:5]}; log tail:\n"
                        + "\n".join(proc.log()[-20:])
                    )
                    break
                time.sleep(0.1)
            code = proc.stop(30)
            if code != 0:
                self.figures.problems.append(f"the daemon exited {code} on SIGTERM")
        finally:
            proc.kill()
            self.box.procs.remove(proc)

    def verify(self) -> Figures:
        """Count every post on every peer and in the spool; fill in the figures."""
        from plurspool.errors import PostError
        from plurspool.post import Result, parse

        f = self.figures
        f.seconds = time.monotonic() - self.started
        on_peer = self._peer_counts()
        f.states = {}
        for state in ("new", "drafts", "scheduled", "sent", "failed", "tmp"):
            f.states[state] = len(list((self.box.spool / state).glob("*.md")))
        for post_id, spec in sorted(self.specs.items()):
            where = self.box.where(post_id)
            if not where:
                f.lost.append(f"{post_id}: in no state")
                continue
            if len(where) > 1:
                f.problems.append(f"{post_id}: in {len(where)} states {where}")
            state = where[0]
            path = self.box.spool / state / f"{post_id}.md"
            data = path.read_bytes()
            text = data.decode("utf-8", "replace")
            if not all(f"#{t}" in text for t in spec.tags):
                f.lost.append(f"{post_id}: its text is gone from {state}/")
                continue
            if state not in ("sent", "failed"):
                f.problems.append(f"{post_id}: still in {state}/")
            try:
                results = parse(data).results
            except PostError as exc:
                f.problems.append(f"{post_id}: unreadable in {state}/: {exc.one_line()}")
                continue
            if state == "failed":
                error = (self.box.spool / "failed" / f"{post_id}.error").read_text()
                f.problems.append(f"{post_id}: failed: {error.strip()}")
            for account in spec.accounts:
                seen = on_peer.get((account, post_id), [])
                if len(seen) > 1:
                    f.duplicates.append(f"{post_id} on {account}: {len(seen)} times {seen}")
                rec = results.get(account, Result())
                got = rec.id or rec.url
                if not seen:
                    if state == "sent":
                        f.lost.append(f"{post_id}: in sent/ but not on {account}")
                    continue
                if rec.error or not got:
                    f.problems.append(f"{post_id}: on {account} ({seen}) but recorded as {rec}")
                elif not any(str(s) in (rec.id, rec.url) for s in seen):
                    f.problems.append(f"{post_id}: {account} recorded {got}, the peer has {seen}")
        return f

    def _peer_counts(self) -> dict[tuple[str, str], list[str]]:
        """(account, post ID) -> the IDs the peer holds for that post's first part.

        Later thread parts are counted too: a duplicate of any part is a duplicate.
        """
        f = self.figures
        tag_of = {t: (s.id, i) for s in self.specs.values() for i, t in enumerate(s.tags)}
        out: dict[tuple[str, str], list[str]] = {}
        # exec: what the command kept; and every call for a post must carry the same key.
        keys: dict[str, set[str]] = {}
        posts = 0
        if self.store.exists():
            for line in self.store.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line)
                keys.setdefault(rec["id"], set()).add(rec["key"])
                if rec["kind"] == "post":
                    posts += 1
                    out.setdefault(("ex", rec["id"]), []).append(rec["rid"])
        f.per_peer["exec"] = posts
        for post_id, ks in keys.items():
            if len(ks) > 1:
                f.duplicates.append(f"{post_id}: exec ran with {len(ks)} idempotency keys")
        if self.relays:
            from plurspool.platforms import nostr_proto as proto

            for n, url in enumerate(self.relays):
                events = _nostr_events(url, proto.public_key(self.secret), list(tag_of))
                f.per_peer[f"nostr relay {n + 1}"] = len(events)
                per: dict[tuple[str, int], set[str]] = {}
                for ev in events:
                    for tag in ev.get("tags", []):
                        if tag[:1] == ["t"] and tag[1] in tag_of:
                            per.setdefault(tag_of[tag[1]], set()).add(ev["id"])
                for (post_id, part), ids in per.items():
                    if len(ids) > 1:
                        f.duplicates.append(f"{post_id} part {part + 1}: {len(ids)} on {url}")
                    if part == 0:  # the same event on both relays is one post
                        got = out.setdefault(("ns", post_id), [])
                        got += [proto.note(i) for i in sorted(ids) if proto.note(i) not in got]
        if self.mastodon:
            statuses = _mastodon_statuses(self.mastodon, self.user)
            f.per_peer["mastodon"] = len(statuses)
            per_m: dict[tuple[str, int], list[str]] = {}
            for st in statuses:
                for t in tag_of:
                    if f"#{t}" in st["content"] or f">{t}<" in st["content"]:
                        per_m.setdefault(tag_of[t], []).append(str(st["id"]))
            for (post_id, part), sids in per_m.items():
                if len(sids) > 1:
                    f.duplicates.append(f"{post_id} part {part + 1}: {len(sids)} on mastodon")
                if part == 0:
                    out[("ma", post_id)] = sids
        return out


def forked_pass(
    box: Sandbox, crash_at: int | None, post_id: str | None = None
) -> tuple[str | None, str | None]:
    """`send --once` passes in a forked child killed before step `crash_at` (until `post_id` is
    finished, if given): (the step it was killed before, or None; why the child failed, or None
    when it exited 0 or was killed)."""
    marker = box.base / "killed-at"
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            code = _child_pass(box.env, marker, crash_at, box.base / "child.log", post_id)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return (marker.read_text(encoding="utf-8") if marker.exists() else "?"), None
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        log = (box.base / "child.log").read_text(errors="replace")[-3000:]
        return None, f"send --once exited {code}: {log}"
    return None, None


def _child_pass(
    env: dict[str, str], marker: Path, crash_at: int | None, log: Path, post_id: str | None
) -> int:
    """In a forked child: `plurspool send --once` until `post_id` is finished, SIGKILLed before
    step `crash_at` (counted across the passes)."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    os.dup2(fd, 1)
    os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    if crash_at is not None:
        _install_crash_points(crash_at, marker)
    from plurspool.cli import cli

    spool = Path(env["PLURSPOOL_SPOOL"])
    end = time.monotonic() + 60
    while True:
        try:
            cli.main(args=["send", "--once"], prog_name="plurspool", standalone_mode=True)
        except SystemExit as exc:
            if exc.code not in (0, None):
                return exc.code if isinstance(exc.code, int) else 1
        done = post_id is None or any(
            (spool / s / f"{post_id}.md").exists() for s in ("sent", "failed")
        )
        if done or time.monotonic() > end:
            return 0 if done else 3
        time.sleep(0.05)  # a time rounded up to the next second, or a backoff


def _install_crash_points(crash_at: int, marker: Path) -> None:
    """SIGKILL this process just before the `crash_at`th mutating step (this process only)."""
    import plurspool.deleting as deleting_mod
    import plurspool.durable as durable_mod
    import plurspool.ledger as ledger_mod
    import plurspool.sender as sender_mod
    import plurspool.spool as spool_mod

    count = 0

    def point(name: str) -> None:
        nonlocal count
        count += 1
        if count == crash_at:
            marker.write_text(name, encoding="utf-8")
            os.kill(os.getpid(), signal.SIGKILL)

    real_os = os

    class OsProxy:
        """The spool's view of `os`: its mutating calls are crash points."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real_os, name)

        def open(self, path: Any, flags: int, mode: int = 0o777) -> int:
            if flags & (real_os.O_WRONLY | real_os.O_RDWR | real_os.O_CREAT):
                point(f"open {path}")
            return real_os.open(path, flags, mode)

        def write(self, fd: int, data: Any) -> int:
            point("write")
            return real_os.write(fd, data)

        def fsync(self, fd: int) -> None:
            point("fsync")
            real_os.fsync(fd)

        def replace(self, src: Any, dst: Any) -> None:
            point(f"replace {dst}")
            real_os.replace(src, dst)

        def rename(self, src: Any, dst: Any) -> None:
            point(f"rename {dst}")
            real_os.rename(src, dst)

        def unlink(self, path: Any) -> None:
            point(f"unlink {path}")
            real_os.unlink(path)

    vars(spool_mod)["os"] = vars(durable_mod)["os"] = OsProxy()  # durable: fsync_dir
    real_rename = spool_mod.rename_noreplace

    def rename_noreplace(src: Path, dst: Path) -> None:
        point(f"rename {dst}")
        real_rename(src, dst)

    spool_mod.rename_noreplace = rename_noreplace
    ledger_steps = ("delivery", "begin_attempt", "save_material", "record", "defer", "reopen")
    deletion_steps = ("begin_deletion", "save_deletion", "record_deletion")
    for meth in ledger_steps + deletion_steps:
        real = getattr(ledger_mod.Ledger, meth)

        def wrapped(self: Any, *a: Any, _real: Any = real, _m: str = meth, **k: Any) -> Any:
            point(f"ledger.{_m}")
            value = _real(self, *a, **k)
            point(f"after ledger.{_m}")
            return value

        setattr(ledger_mod.Ledger, meth, wrapped)
    real_get = vars(sender_mod)["get"]

    class Platform:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def send(self, job: Any) -> Any:
            point("platform.send")
            outcome = self.inner.send(job)
            point(f"after platform.send ({outcome.status})")
            return outcome

        def delete(self, job: Any) -> Any:
            point("platform.delete")
            outcome = self.inner.delete(job)
            point(f"after platform.delete ({outcome.status})")
            return outcome

    vars(sender_mod)["get"] = lambda name: Platform(real_get(name))
    real_deleter = vars(deleting_mod)["deleter"]
    vars(deleting_mod)["deleter"] = lambda name: Platform(real_deleter(name))


def _nostr_events(url: str, pubkey: str, tags: list[str]) -> list[dict[str, Any]]:
    """Every event by `pubkey` carrying one of `tags`, as the relay holds them."""
    from websockets.sync.client import connect

    events: dict[str, dict[str, Any]] = {}
    for i in range(0, len(tags), 100):
        flt = {"authors": [pubkey], "#t": tags[i : i + 100], "limit": 5000}
        with connect(url, open_timeout=10) as ws:
            ws.send(json.dumps(["REQ", "q", flt]))
            end = time.monotonic() + 20
            while True:
                msg = json.loads(ws.recv(timeout=max(0.01, end - time.monotonic())))
                if msg[0] == "EVENT" and msg[1] == "q":
                    events[msg[2]["id"]] = msg[2]
                elif msg[0] in ("EOSE", "CLOSED"):
                    break
    return list(events.values())


def _mastodon_statuses(url: str, user: Any) -> list[dict[str, Any]]:
    """Every status of the campaign's user, paging back with max_id."""
    from tests.peers.mastodon_mock import request

    out: list[dict[str, Any]] = []
    max_id = ""
    while True:
        path = f"/api/v1/accounts/{user.id}/statuses?limit=40" + (
            f"&max_id={max_id}" if max_id else ""
        )
        code, page = request(url, "GET", path, token=user.token)
        assert code == 200, page
        if not page:
            return out
        out += page
        max_id = str(page[-1]["id"])


@contextlib.contextmanager
def peers(exec_only: bool) -> Iterator[tuple[list[str], str | None]]:
    """The Nostr relays and mastodon-mock: the running ones named in the environment, or new."""
    if exec_only:
        yield [], None
        return
    from tests.peers.mastodon_mock import running_mock
    from tests.peers.nostr_relays import running_relays

    with running_relays() as relays, running_mock() as mastodon:
        yield relays, mastodon


def run(
    base: Path,
    *,
    kills: int,
    seed: int,
    samples: int,
    relays: list[str],
    mastodon: str | None,
    log: Callable[[str], None] = lambda s: None,
) -> Figures:
    """A whole campaign in `base`: random kills, systematic kills on samples, drain, count."""
    c = Campaign(base, seed=seed, relays=relays, mastodon=mastodon, log=log)
    try:
        t = time.monotonic()
        c.warm_up()
        c.random_kills(kills)
        log(f"random kills: {time.monotonic() - t:.1f}s")
        t = time.monotonic()
        c.drain()
        log(f"drain: {time.monotonic() - t:.1f}s")
        t = time.monotonic()
        c.systematic(samples)
        log(f"systematic kills: {time.monotonic() - t:.1f}s")
        return c.verify()
    finally:
        c.box.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.robustness.campaign", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--kills", type=int, default=200, help="random kills (default 200)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--samples", type=int, default=3, help="posts killed at every step")
    ap.add_argument("--exec-only", action="store_true", help="no Nostr relays, no mastodon-mock")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed: {seed}", flush=True)

    def say(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    with peers(args.exec_only) as (relays, mastodon), contextlib.ExitStack() as stack:
        if args.keep:
            base = args.keep
            base.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="campaign-")))
        figures = run(
            base,
            kills=args.kills,
            seed=seed,
            samples=args.samples,
            relays=relays,
            mastodon=mastodon,
            log=say,
        )
    print(figures.text(), flush=True)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
