"""plurspool benchmarks: `python -m tests.bench [--quick] [--only NAME...] [--idle-seconds S]`.

Each benchmark sets up its own spool in a temp dir, runs plurspool as users do (subprocesses, the
real daemon), and prints one table: figure, plurspool, peer (at/atd or a bare interpreter where it
applies), goal, pass/fail. Figures are medians of several runs with min and max.

The full run installs `at` from Debian's packages when it is missing and we are root
(`apt-get install -y --no-install-recommends at`), starts `atd` if it is not running (and stops it
again if it started it), and compares `list` with `atq` over as many `at` jobs. `--quick` is the
smoke run CI does: small sizes, few repeats, no apt, no atd wait; it checks that the benchmarks
run, not their numbers. Rows that need something missing say "skipped" and why. The package's
bytecode is compiled first, as pip does for an installed package.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .gen import generate, generate_sent

BIN = Path(sys.executable).parent
PLURSPOOL = str(BIN / "plurspool")
ATJOBS = Path("/var/spool/cron/atjobs")


@dataclass
class Row:
    figure: str
    value: str
    peer: str
    goal: str
    ok: bool | None  # None: reported only (or skipped)


def stats(xs: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    xs = sorted(x * scale for x in xs)
    return f"{statistics.median(xs):.1f} {unit} (min {xs[0]:.1f}, max {xs[-1]:.1f}, n={len(xs)})"


def nostr_key() -> str:
    """A fresh secret key as 64 hex digits (always inside the curve order)."""
    return (os.urandom(31) + b"\x01").hex()


class Sandbox:
    """An isolated HOME/XDG environment with its own spool and config."""

    def __init__(self, config: str = "", env: dict[str, str] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="plurspool-bench-"))
        self.spool = self.dir / "spool"
        self.env = {
            "HOME": str(self.dir),
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "XDG_CONFIG_HOME": str(self.dir / "config"),
            "XDG_STATE_HOME": str(self.dir / "state"),
            "XDG_DATA_HOME": str(self.dir / "data"),
            "PLURSPOOL_SPOOL": str(self.spool),
            "TZ": "UTC",
            "LANG": "C.UTF-8",
            **(env or {}),
        }
        if config:
            cfg = self.dir / "config" / "plurspool" / "config.toml"
            cfg.parent.mkdir(parents=True)
            cfg.write_text(config)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PLURSPOOL, *args], env=self.env, capture_output=True, text=True, check=True
        )

    def time_cmd(self, argv: list[str], repeat: int) -> list[float]:
        out = []
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run(
                argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
            )
            out.append(time.perf_counter() - t)
        return out

    def daemon(self, *extra: str) -> subprocess.Popen[str]:
        # The log goes to a file: a pipe nobody reads would stall the daemon once it is full.
        log = self.dir / "daemon.log"
        with open(log, "w") as out:
            p = subprocess.Popen(
                [PLURSPOOL, "send", *extra],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=out,
                text=True,
            )

        def started() -> bool:
            if p.poll() is not None:
                raise RuntimeError(f"daemon did not start: {log.read_text()[-2000:]}")
            return " started " in log.read_text()

        wait_for(started, 60, 0.01)
        return p

    def drop(self, state: str, name: str, text: str) -> Path:
        """Write a post into tmp/, then rename it into a state dir (as mail delivery does)."""
        tmp = self.spool / "tmp" / f"{name}.bench"
        tmp.write_text(text)
        dst = self.spool / state / f"{name}.md"
        os.rename(tmp, dst)
        return dst

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


_FILLED: dict[int, Sandbox] = {}


def filled(size: int) -> Sandbox:
    """A sandbox with `size` scheduled posts and a warm parse cache, shared by the benchmarks
    that only read it (made once: the first parse of 100k posts takes a while)."""
    if size not in _FILLED:
        sb = Sandbox()
        generate(sb.spool, size)
        sb.run("list", "--format", "json")  # the parse cache a running system would have
        _FILLED[size] = sb
    return _FILLED[size]


def close_filled() -> None:
    for sb in _FILLED.values():
        sb.close()
    _FILLED.clear()


def stop(daemon: subprocess.Popen[str]) -> None:
    daemon.terminate()
    try:
        daemon.wait(30)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait(5)


def wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.0005) -> float:
    """Poll until cond() is true; return the time.time() it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return time.time()
        time.sleep(step)
    raise TimeoutError("condition not met")


def whole_second_ahead(seconds: float) -> datetime:
    """A whole second at least `seconds` from now (post files hold whole seconds)."""
    at = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
    return at + timedelta(seconds=1)


# -- process accounting ----------------------------------------------------------------------------


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process used so far, at clock-tick resolution."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_ns(pid: int) -> int:
    """CPU nanoseconds all threads of a process ran so far (schedstat: ns resolution)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
    return total


def _main_sleeping(pid: int) -> bool:
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    return state == "S"


def _rss_mb(pid: int, key: str = "VmRSS:") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return float("nan")


def settle(pid: int, quiet: float = 1.0, timeout: float = 600.0) -> None:
    """Wait until a process used no CPU for `quiet` seconds (a start-up scan is over)."""
    end = time.monotonic() + timeout
    last, since = _cpu_ns(pid), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.1)
        now = _cpu_ns(pid)
        if now - last > 2_000_000:  # more than 2 ms of CPU in 100 ms: still busy
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise TimeoutError(f"process {pid} did not settle")


# -- start-up -----------------------------------------------------------------------------------


def bench_startup(quick: bool) -> list[Row]:
    sb = Sandbox()
    try:
        n = 3 if quick else 15
        sb.run("init")
        bare = sb.time_cmd([sys.executable, "-c", "pass"], n)
        helps = sb.time_cmd([PLURSPOOL, "--help"], n)
        posts = sb.time_cmd([PLURSPOOL, "post", "--schedule", "tomorrow 9am", "bench"], n)
        b = statistics.median(bare)
        rh = statistics.median(helps) / b
        rp = statistics.median(posts) / b
        return [
            Row("`python -c pass` (reference)", stats(bare), "", "", None),
            Row(
                "`plurspool --help`",
                f"{stats(helps)} = {rh:.1f}× bare",
                "",
                "≤ 4.5× bare",
                rh <= 4.5,
            ),
            Row(
                '`post --schedule "tomorrow 9am"`',
                f"{stats(posts)} = {rp:.1f}× bare",
                "",
                "≤ 25× bare",
                rp <= 25,
            ),
        ]
    finally:
        sb.close()


# -- listing, against atq -------------------------------------------------------------------------


def bench_list(quick: bool) -> list[Row]:
    rows = []
    sizes = [5000] if quick else [10_000, 100_000]
    goals = {5000: 0.25, 10_000: 0.25, 100_000: 2.0}
    for size in sizes:
        sb = filled(size)
        xs = sb.time_cmd([PLURSPOOL, "list", "--format", "json"], 3 if quick else 7)
        atq, why = at_list_time(size, 3 if quick else 7)
        med = statistics.median(xs)
        peer = f"atq: {stats(atq)}" if atq else f"atq: {why}"
        ok = med <= goals[size] and (not atq or med <= 3 * statistics.median(atq))
        rows.append(
            Row(
                f"`list --format json`, {size:,} posts",
                stats(xs) + (f" = {med / statistics.median(atq):.1f}× atq" if atq else ""),
                peer,
                f"≤ {goals[size] * 1000:.0f} ms and ≤ 3× atq",
                ok,
            )
        )
    return rows


def bench_calendar(quick: bool) -> list[Row]:
    """`calendar --month` (text and JSON) over a spool of `size` scheduled posts, a month of
    them shown, from the listing as `list` leaves it."""
    size = 5000 if quick else 10_000  # the spools `list` fills
    sb = filled(size)
    rows = []
    for fmt in ("text", "json"):
        argv = [PLURSPOOL, "calendar", "--month", "--format", fmt]
        sb.time_cmd(argv, 1)  # the listing of scheduled/, as any earlier command leaves it
        xs = sb.time_cmd(argv, 3 if quick else 7)
        rows.append(
            Row(
                f"`calendar --month --format {fmt}`, {size:,} scheduled posts",
                stats(xs),
                "",
                "≤ 500 ms",
                None if quick else statistics.median(xs) <= 0.5,
            )
        )
    return rows


def bench_ics(quick: bool) -> list[Row]:
    """`ics` over a spool of `size` scheduled posts: every post an event (its SEQUENCE read from
    the ledger, none changed since the run before)."""
    size = 5000 if quick else 10_000  # the spools `list` fills
    sb = filled(size)
    sb.time_cmd([PLURSPOOL, "ics"], 1)  # the ledger's rows of each post, as the last feed left them
    xs = sb.time_cmd([PLURSPOOL, "ics"], 3 if quick else 7)
    return [
        Row(
            f"`ics`, {size:,} scheduled posts",
            stats(xs),
            "",
            "≤ 500 ms",
            None if quick else statistics.median(xs) <= 0.5,
        )
    ]


def bench_hosts(quick: bool) -> list[Row]:
    """`list --format json` with `[senders]` set (each row names the host of each account)
    against the same spool and config without it: what saying who sends costs `list`. The two
    are timed in turns, so that a load on the machine weighs on both alike."""
    size = 5000 if quick else 10_000
    repeat = 3 if quick else 9
    boxes = [
        Sandbox('default_platforms = ["outbox"]\n' + senders)
        for senders in ("", '[senders]\nhomeserver = ["outbox"]\n')
    ]
    argv = [PLURSPOOL, "list", "--format", "json"]
    try:
        for sb in boxes:
            generate(sb.spool, size)
            sb.run("list", "--format", "json")  # a warm parse cache, as a running system has
        xs: list[float] = []
        ys: list[float] = []
        for _ in range(repeat):
            xs += boxes[0].time_cmd(argv, 1)
            ys += boxes[1].time_cmd(argv, 1)
    finally:
        for sb in boxes:
            sb.close()
    ratio = statistics.median(ys) / statistics.median(xs)
    return [
        Row(
            f"`list --format json`, {size:,} posts, with [senders]",
            f"{stats(ys)} = {ratio:.2f}× without",
            f"without: {stats(xs)}",
            "≤ 1.2× without",
            ratio <= 1.2,
        )
    ]


# -- check --explain on long posts ----------------------------------------------------------------

EXPLAIN_CONFIG = """\
default_platforms = ["mastodon", "bluesky"]
[accounts.mastodon]
instance = "https://example.social"
[accounts.bluesky]
handle = "me.example.com"
"""


def bench_explain(quick: bool) -> list[Row]:
    """`check --explain` on posts of 2,000 characters to a Mastodon (500) and a Bluesky (300)
    account: each is split into threads, at paragraphs and, inside long paragraphs, sentences."""
    from .gen import long_post_text

    count = 100 if quick else 1000
    sb = Sandbox(EXPLAIN_CONFIG)
    try:
        sb.run("init")
        drafts = sb.spool / "drafts"
        for n in range(count):
            (drafts / f"long-{n:05d}.md").write_text(long_post_text(n, 2000), encoding="utf-8")
        sb.run("check", "--explain", "--json")  # a warm page cache, as for the others
        xs = sb.time_cmd([PLURSPOOL, "check", "--explain", "--json"], 2 if quick else 5)
        med = statistics.median(xs)
        return [
            Row(
                f"`check --explain`, {count:,} posts of 2,000 characters",
                stats(xs, "s", 1.0),
                "",
                "≤ 2 s for 1,000",
                None if quick else med <= 2.0,  # 100 posts are mostly the start-up
            )
        ]
    finally:
        sb.close()


QUEUE_CONFIG = """timezone = "UTC"
[queues.default]
window = "00:00-23:45"
per_day = 96
"""


def bench_queue(quick: bool) -> list[Row]:
    """`post --queue` on a queue holding `size` posts against `post -s` on the same spool."""
    from plurspool.slots import Slots, window_slots

    from .gen import generate_queued

    size = 1000 if quick else 10_000
    n = 3 if quick else 9
    sb = Sandbox(QUEUE_CONFIG)
    try:
        slots = Slots(window_slots("00:00-23:45", 96), UTC)
        it = slots.after(datetime.now(UTC) + timedelta(hours=1))
        generate_queued(sb.spool, "default", [next(it) for _ in range(size)])
        sb.run("list")  # the parse cache, as any earlier command leaves it
        queue: list[float] = []
        plain: list[float] = []
        for _ in range(n):  # interleaved, so that a busy moment costs both alike
            plain += sb.time_cmd([PLURSPOOL, "post", "-s", "2h", "a timed post"], 1)
            queue += sb.time_cmd([PLURSPOOL, "post", "--queue", "a queued post"], 1)
        taken = sb.run("list", "--format", "json").stdout.count('"scheduled"')
        assert taken == size + 2 * n, taken
        ratio = statistics.median(queue) / statistics.median(plain)
        return [
            Row(
                f"`post --queue`, a queue of {size:,} posts",
                f"{stats(queue)} = {ratio:.2f}× `post -s`",
                f"`post -s`: {stats(plain)}",
                "≤ 1.5× `post -s`",
                ratio <= 1.5 or quick,
            )
        ]
    finally:
        sb.close()


def at_available() -> str | None:
    """Why `at` cannot be used here, or None."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("atq") is None or shutil.which("at") is None:
        return "at not installed"
    if not ATJOBS.is_dir():
        return f"no {ATJOBS}"
    return None


def at_list_time(count: int, repeat: int) -> tuple[list[float], str]:
    """Time `atq` over `count` queued at jobs; ([], why) when at cannot be used.

    The job files are made directly, as `at` names them: queue letter, 5 hex digits of job
    number, 8 hex digits of minutes since the epoch (at 3.2's `a%05lx%08lx`), mode 0700 (atq
    shows a job without the owner's x bit as running), owned by the job's user. `at` itself is
    far too slow to queue 100k jobs; atq reads only names and stat data, so the files' contents
    do not matter. Numbers from 0x10000 up keep clear of jobs at numbers itself (it counts
    from 1), times a year ahead keep atd from running them, and they are removed afterwards.
    """
    why = at_available()
    if why:
        return [], why
    made = []
    base = int(time.time() // 60) + 60 * 24 * 365
    try:
        for n in range(count):
            p = ATJOBS / f"a{n + 0x10000:05x}{base + n % 50000:08x}"
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
            made.append(p)
            os.write(fd, b"#!/bin/sh\n# plurspool benchmark job\ntrue\n")
            os.close(fd)
        out = []
        for _ in range(repeat):
            t = time.perf_counter()
            r = subprocess.run(["atq"], stdout=subprocess.PIPE, check=True)
            out.append(time.perf_counter() - t)
            listed = r.stdout.count(b"\n")
            if listed < count:
                raise RuntimeError(f"atq listed {listed} jobs, not {count}")
        return out, ""
    finally:
        for p in made:
            p.unlink(missing_ok=True)


def ensure_at() -> str | None:
    """Install `at` if missing (root with apt-get only); None when it is usable."""
    if shutil.which("atq") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing at (apt-get install -y at)...", file=sys.stderr, flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "at"]
        r = subprocess.run(cmd, env=env, capture_output=True)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(cmd, env=env, capture_output=True)
    return at_available()


class AtProbe:
    """atd's own dispatch delay: jobs due at a minute boundary record when they ran.

    Started before the other benchmarks and read after them, so its wait (up to a minute and a
    half) overlaps with their work instead of adding to the run.
    """

    JOBS = 2

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="plurspool-bench-at-"))
        self.started_atd: int | None = None
        self.due = 0
        self.why = ensure_at()
        if self.why is None:
            self.why = self._start()

    def _start(self) -> str | None:
        if not self._atd_running():
            if shutil.which("atd") is None:
                return "atd not installed"
            subprocess.run(["atd"], check=True)
            wait_for(self._atd_running, 10, 0.05)
            self.started_atd = int(Path("/run/atd.pid").read_text().split()[0])
        now = time.time()
        self.due = (int(now) // 60 + 1) * 60
        if self.due - now < 10:
            self.due += 60  # leave time to queue the jobs before the boundary
        stamp = datetime.fromtimestamp(self.due, UTC).strftime("%Y%m%d%H%M")
        for k in range(self.JOBS):
            out = self.dir / f"ran{k}"
            subprocess.run(
                ["at", "-t", stamp],
                input=f"date +%s.%N > {out}.tmp && mv {out}.tmp {out}\n",
                text=True,
                env={**os.environ, "TZ": "UTC"},
                capture_output=True,
                check=True,
            )
        return None

    @staticmethod
    def _atd_running() -> bool:
        try:
            pid = int(Path("/run/atd.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return False
        return True

    def rows(self) -> list[Row]:
        figure = f"atd: job due at a minute → ran ({self.JOBS} jobs)"
        try:
            if self.why:
                return [Row(figure, f"skipped: {self.why}", "", "reported", None)]
            delays = []
            for k in range(self.JOBS):
                out = self.dir / f"ran{k}"
                wait_for(out.exists, max(5.0, self.due + 30 - time.time()), 0.05)
                delays.append(float(out.read_text()) - self.due)
            return [Row(figure, "", f"atd: {stats(delays)}", "reported", None)]
        finally:
            self.close()

    def close(self) -> None:
        if self.started_atd is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.started_atd, signal.SIGTERM)
            self.started_atd = None
        shutil.rmtree(self.dir, ignore_errors=True)


# -- latency: intake, and due → peer --------------------------------------------------------------


def bench_latency(quick: bool) -> list[Row]:
    from .relay import RecordingRelay

    relay = RecordingRelay()
    sb = Sandbox(env={"PLURSPOOL_RELAY_KEY": nostr_key()})
    rec = sb.dir / "record.txt"
    cfg = sb.dir / "config" / "plurspool" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(
        'default_platforms = ["rec"]\n'
        f'[accounts.rec]\nplatform = "exec"\ncommand = ["sh", "-c", "date +%s.%N >> {rec}"]\n'
        f'[accounts.relay]\nplatform = "nostr"\nrelays = ["{relay.url}"]\nmin_relays = 1\n'
    )
    sb.run("init")
    daemon = sb.daemon()
    try:
        n = 5 if quick else 20
        intake = []
        for i in range(n):
            t0 = time.time()
            sb.drop("new", f"in{i}", f"---\nschedule: 1h\n---\nintake {i}\n")
            dst = sb.spool / "scheduled" / f"in{i}.md"
            intake.append(wait_for(dst.exists, 5) - t0)
        due_exec, due_nostr = [], []
        for i in range(n):
            at = whole_second_ahead(1.5)
            before = len(rec.read_text().splitlines()) if rec.exists() else 0
            sb.drop("scheduled", f"due{i}", f"---\nschedule: {at.isoformat()}\n---\ndue {i}\n")

            def recorded(b: int = before) -> bool:
                return rec.exists() and len(rec.read_text().splitlines()) > b

            wait_for(recorded, 10)
            due_exec.append(float(rec.read_text().splitlines()[-1]) - at.timestamp())

            at = whole_second_ahead(1.5)
            text = f"---\nschedule: {at.isoformat()}\nplatforms: [relay]\n---\nnostr due {i}\n"
            sb.drop("scheduled", f"nostr{i}", text)
            due_nostr.append(relay.wait_for(f"nostr due {i}", 10) - at.timestamp())

        def ok(xs: list[float]) -> bool:
            return statistics.median(xs) <= 0.05 and max(xs) <= 1.0 and min(xs) >= 0

        return [
            Row(
                "rename into new/ → in scheduled/",
                stats(intake),
                "",
                "median ≤ 100 ms",
                statistics.median(intake) <= 0.1,
            ),
            Row(
                "due time → exec peer ran",
                stats(due_exec),
                "",
                "median ≤ 50 ms, max ≤ 1 s",
                ok(due_exec),
            ),
            Row(
                "due time → Nostr relay received EVENT",
                stats(due_nostr),
                "",
                "median ≤ 50 ms, max ≤ 1 s",
                ok(due_nostr),
            ),
        ]
    finally:
        stop(daemon)
        relay.close()
        sb.close()


# -- throughput to a real relay -------------------------------------------------------------------


def bench_throughput(quick: bool) -> list[Row]:
    """N posts due at the same second, sent by the daemon to rust-nostr's LocalRelay."""
    from tests.peers.nostr_relays import start_local_relay

    n = 100 if quick else 1000
    figure = f"{n:,} posts due at once → sent to a local relay"
    work = Path(tempfile.mkdtemp(prefix="plurspool-bench-relay-"))
    try:
        with start_local_relay(work, notes_per_minute=10**6) as relay:  # rate limits off
            sb = Sandbox(
                'default_platforms = ["relay"]\n'
                f'[accounts.relay]\nplatform = "nostr"\nrelays = ["{relay.url}"]\n',
                env={"PLURSPOOL_RELAY_KEY": nostr_key()},
            )
            try:
                sb.run("init")
                at = whole_second_ahead(4)
                sched = sb.spool / "scheduled"
                for i in range(n):
                    (sched / f"t{i:05d}.md").write_text(
                        f"---\nschedule: {at.isoformat()}\n---\nthroughput {i} of {n}, #bench\n"
                    )
                daemon = sb.daemon()
                try:
                    sent, failed = sb.spool / "sent", sb.spool / "failed"

                    def posts(d: Path) -> int:  # not the keep file `init` puts there
                        return sum(1 for name in os.listdir(d) if name.endswith(".md"))

                    def done() -> bool:
                        return posts(sent) + posts(failed) >= n

                    end = wait_for(done, 60 + n * 0.5, 0.005)
                finally:
                    stop(daemon)
                fails = posts(failed)
                if fails:
                    return [Row(figure, f"{fails} of {n} failed", "", "≥ 200 posts/s", False)]
                took = end - at.timestamp()
                rate = n / took
                return [
                    Row(
                        figure,
                        f"{rate:.0f} posts/s ({took:.2f} s after the due time)",
                        "",
                        "≥ 200 posts/s",
                        rate >= 200,
                    )
                ]
            finally:
                sb.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- the daemon at rest ---------------------------------------------------------------------------


def bench_idle(quick: bool, seconds: float) -> list[Row]:
    size = 5000 if quick else 100_000
    sb = filled(size)
    daemon = sb.daemon()
    try:
        settle(daemon.pid)  # the start-up scan
        before = _cpu(daemon.pid)
        t0 = time.monotonic()
        time.sleep(seconds)  # measuring idleness: there is nothing to await
        used = _cpu(daemon.pid) - before
        elapsed = time.monotonic() - t0
        rss, peak = _rss_mb(daemon.pid), _rss_mb(daemon.pid, "VmHWM:")
    finally:
        stop(daemon)
    cpu = used / elapsed * 100
    return [
        Row(
            f"idle daemon, {size:,} posts, {seconds:g} s",
            f"{cpu:.2f} % CPU, RSS {rss:.0f} MB (peak {peak:.0f} MB)",
            "",
            "≤ 1 % of a core, RSS ≤ 100 MB",
            cpu <= 1.0 and rss <= 100,
        )
    ]


def bench_pass(quick: bool) -> list[Row]:
    """CPU of one daemon pass woken by one changed file (`_pass_costs`), with a small and a
    large queue."""
    sizes = (1000, 5000) if quick else (1000, 100_000)
    k = 30 if quick else 200
    per = {size: _pass_costs(filled(size), k) for size in sizes}
    small, large = sizes
    ratio = statistics.median(per[large]) / statistics.median(per[small])
    return [
        Row(f"one daemon pass, {small:,} posts not yet due", stats(per[small]), "", "", None),
        Row(
            f"one daemon pass, {large:,} posts not yet due",
            f"{stats(per[large])} = {ratio:.2f}× {small:,}",
            "",
            f"≤ 2× the {small:,} pass",
            ratio <= 2.0,
        ),
    ]


def _pass_costs(sb: Sandbox, k: int) -> list[float]:
    """CPU seconds of `k` daemon passes over `sb`'s spool, each woken by one not-yet-due post
    renamed into scheduled/ and awaited: the daemon's main thread must have run and gone back
    to sleep. CPU is summed over all threads (the inotify thread's work is part of a pass) from
    schedstat, at nanosecond resolution."""
    daemon = sb.daemon()
    triggers = []
    try:
        settle(daemon.pid)
        far = (datetime.now(UTC) + timedelta(days=400)).isoformat(timespec="seconds")
        costs = []
        for i in range(k):
            before = _cpu_ns(daemon.pid)
            text = f"---\nschedule: {far}\n---\nt {i}\n"
            triggers.append(sb.drop("scheduled", f"trigger{i}", text))

            def passed(b: int = before, pid: int = daemon.pid) -> bool:
                return _cpu_ns(pid) > b and _main_sleeping(pid)

            wait_for(passed, 10, 0.0002)
            time.sleep(0.005)  # let the last bookkeeping of the pass finish
            costs.append((_cpu_ns(daemon.pid) - before) / 1e9)
        return costs
    finally:
        stop(daemon)
        for p in triggers:  # the spool may be shared with the other benchmarks
            p.unlink(missing_ok=True)


def bench_repeat(quick: bool) -> list[Row]:
    """CPU of one daemon pass (as `bench_pass` measures it) with 10 and with 1,000 recurring
    posts' templates not yet due: a template costs what any queued post costs until it is due."""
    k = 30 if quick else 200
    per: dict[int, list[float]] = {}
    for size in (10, 1000):
        sb = Sandbox()
        try:
            generate(sb.spool, size, repeat="FREQ=DAILY;BYHOUR=9;BYMINUTE=0")
            sb.run("list", "--format", "json")  # the parse cache a running system would have
            per[size] = _pass_costs(sb, k)
        finally:
            sb.close()
    ratio = statistics.median(per[1000]) / statistics.median(per[10])
    return [
        Row("one daemon pass, 10 recurring posts not yet due", stats(per[10]), "", "", None),
        Row(
            "one daemon pass, 1,000 recurring posts not yet due",
            f"{stats(per[1000])} = {ratio:.2f}× 10",
            "",
            "≤ 2× the 10 pass",
            ratio <= 2.0,
        ),
    ]


def bench_expiry(quick: bool) -> list[Row]:
    """CPU of one daemon pass (as `bench_pass` measures it) with 10,000 posts in sent/, without
    and with `expires` (not yet due): an expiry costs a pass what a queued post does."""
    size, k = (2000, 30) if quick else (10_000, 200)
    config = 'default_platforms = ["masto"]\n[accounts.masto]\nplatform = "mastodon"\n'
    config += 'instance = "http://127.0.0.1:9"\n'
    per: dict[str, list[float]] = {}
    for label, expires in (("without", None), ("with", "30d")):
        sb = Sandbox(config)
        try:
            generate_sent(sb.spool, size, "masto", expires)
            sb.run("list", "--state", "sent", "--format", "json")  # a warm parse cache
            per[label] = _pass_costs(sb, k)
        finally:
            sb.close()
    ratio = statistics.median(per["with"]) / statistics.median(per["without"])
    return [
        Row(f"one daemon pass, {size:,} sent posts", stats(per["without"]), "", "", None),
        Row(
            f"one daemon pass, {size:,} sent posts expiring later",
            f"{stats(per['with'])} = {ratio:.2f}× without",
            "",
            "≤ 1.5× without",
            ratio <= 1.5,
        ),
    ]


def bench_repost(quick: bool) -> list[Row]:
    """What a recurring repost's occurrence pays, before it is sent, to find the repost it
    undoes (`reposts.previous`, in process): a listing of sent/ and a parse of the latest
    earlier occurrence, with 1,000 and 10,000 posts in sent/, a year of occurrences among them."""
    from plurspool.reposts import previous
    from plurspool.spool import Spool

    first = datetime(2026, 1, 1, 9, tzinfo=UTC)
    days = 365
    rows = []
    for size in (1000,) if quick else (1000, 10_000):
        with tempfile.TemporaryDirectory(prefix="plurspool-bench-") as tmp:
            spool = Spool(Path(tmp))
            spool.ensure()
            sent = spool.dir("sent")
            for i in range(size - days):  # written directly: the setup is not what is timed
                (sent / f"post-{i:05d}.md").write_bytes(b"---\nresults: {m: {id: '1'}}\n---\nx\n")
            for d in range(days):
                stamp = f"{first + timedelta(days=d):%Y%m%dT%H%M%SZ}"
                text = f"---\nrepost: https://x.example/@a/1\nresults: {{m: {{id: '{d}'}}}}\n---\n"
                (sent / f"daily--{stamp}.md").write_text(text, encoding="utf-8")
            due = f"daily--{first + timedelta(days=days):%Y%m%dT%H%M%SZ}"
            xs = []
            for _ in range(5 if quick else 30):
                t = time.perf_counter()
                found = previous(spool, due, "m")
                xs.append(time.perf_counter() - t)
            assert found is not None and found.id == str(days - 1), found
            goal = "≤ 50 ms" if size == 10_000 else ""
            ok = statistics.median(xs) <= 0.05 if goal else None
            rows.append(
                Row(f"repeated repost: its undo found, {size:,} in sent/", stats(xs), "", goal, ok)
            )
    return rows


def bench_git(quick: bool) -> list[Row]:
    """What `[git] send_only_committed` adds to a pass with 1,000 due posts (gitsync.Gate,
    in process, wall clock: git's own processes included): the first look (rev-parse, ls-tree,
    one cat-file --batch, each blob parsed), a pass whose branch did not move (one rev-parse),
    and one after a commit (ls-tree again; known blobs are cached)."""
    from plurspool.app import App
    from plurspool.config import load
    from plurspool.gitsync import Sync
    from plurspool.log import NullLog

    size, held = 1000, 10
    n = 3 if quick else 10
    sb = Sandbox("[git]\nsend_only_committed = true\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.invalid",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=sb.dir, env=env, check=True, capture_output=True)

    try:
        generate(sb.spool, size, start=datetime.now(UTC) - timedelta(days=90))
        git("init", "-q")
        git("add", "spool")
        git("commit", "-q", "-m", "posts")
        posts = sorted((sb.spool / "scheduled").iterdir())
        for path in posts[:held]:  # edited since they were committed: held
            path.write_text(path.read_text() + "edited\n")
        app = App(load(sb.dir / "config" / "plurspool" / "config.toml", env=sb.env))
        due = [app.items.load(e) for e in app.spool.entries("scheduled")]
        assert all(i.valid for i in due)

        def admit(sync: Sync) -> float:
            found: dict[str, str] = {}
            t = time.perf_counter()
            sync.admit(due, found)
            took = time.perf_counter() - t
            assert len(found) == held, len(found)
            return took

        def fresh() -> Sync:
            sync = Sync(app.spool, app.items, NullLog())
            sync.configure(app.config, starting=True)
            return sync

        cold = [admit(fresh()) for _ in range(n)]
        sync = fresh()
        admit(sync)
        warm = [admit(sync) for _ in range(3 * n)]
        moved = []
        for i in range(n):
            (sb.dir / "notes").write_text(str(i))
            git("add", "notes")
            git("commit", "-q", "-m", "a commit elsewhere")
            moved.append(admit(sync))
        app.close()
    finally:
        sb.close()
    return [
        Row(f"git gate, {size:,} due posts: first pass", stats(cold), "", "reported", None),
        Row(
            f"git gate, {size:,} due posts: the branch did not move",
            stats(warm),
            "",
            "≤ 50 ms",
            statistics.median(warm) <= 0.05 or quick,
        ),
        Row(
            f"git gate, {size:,} due posts: after a commit",
            stats(moved),
            "",
            "≤ 100 ms",
            statistics.median(moved) <= 0.1 or quick,
        ),
    ]


def bench_feeds(quick: bool) -> list[Row]:
    """A feed's poll, in process, of a 200-entry RSS feed served on loopback: answered 304 (no
    parse) and answered in full with one new entry (a parse and a post in drafts/); then one
    daemon pass (as `bench_pass` measures it) with 20 feeds, none due, against none."""
    from plurspool.app import App, spool_key
    from plurspool.config import load
    from plurspool.feeds import Feed, Feeds
    from tests.feedserver import feed_server, rss

    k = 10 if quick else 50
    config = '[feeds]\npoll_interval = "15m"\n'
    sb = Sandbox(config)
    try:
        app = App(load(sb.dir / "config" / "plurspool" / "config.toml", env=sb.env))
        app.spool.ensure()
        items = [
            (f"https://blog.example/{i}", f"Entry {i}", f"<p>Text {i}</p>") for i in range(200)
        ]
        with feed_server() as server:
            server.docs["/feed"] = (rss(items), "application/rss+xml")
            feeds = Feeds(app)
            feed = Feed(server.url("/feed"), draft=True)
            feeds.add(feed)
            unchanged, fresh = [], []
            for i in range(k):
                t = time.perf_counter()
                assert feeds.poll(feed) == []
                unchanged.append(time.perf_counter() - t)
                new = (f"https://blog.example/new{i}", f"New {i}", "<p>new</p>")
                items = [new, *items[:199]]
                server.docs["/feed"] = (rss(items), "application/rss+xml")
                t = time.perf_counter()
                assert len(feeds.poll(feed)) == 1
                fresh.append(time.perf_counter() - t)
        app.close()
    finally:
        sb.close()
    ratio = statistics.median(unchanged) / statistics.median(fresh)

    passes = 30 if quick else 200
    per: dict[int, list[float]] = {}
    for count in (0, 20):
        sb = Sandbox(config)
        try:
            generate(sb.spool, 1000)
            sb.run("list", "--format", "json")  # the parse cache a running system would have
            if count:
                now = time.time()
                urls = [f"https://feeds{i}.example/feed.xml" for i in range(count)]
                (sb.spool / "feeds.toml").write_text(
                    "".join(f'[[feed]]\nurl = "{u}"\n\n' for u in urls)
                )
                keys = [f"https://blog.example/{i}" for i in range(200)]
                seen = {u: {"keys": keys, "polled": now, "ok": now} for u in urls}
                state = sb.dir / "state" / "plurspool" / "spools" / spool_key(sb.spool.resolve())
                state.mkdir(parents=True, exist_ok=True)
                (state / "feeds.json").write_text(json.dumps({"version": 1, "feeds": seen}))
            per[count] = _pass_costs(sb, passes)
        finally:
            sb.close()
    pass_ratio = statistics.median(per[20]) / statistics.median(per[0])
    return [
        Row("feed poll answered 304 (200 entries)", stats(unchanged), "", "", None),
        Row(
            "feed poll with one new entry (parse 200, one post)",
            f"{stats(fresh)}; 304 = {ratio:.2f}×",
            "",
            "a 304 ≤ ½ of a poll that parses",
            ratio <= 0.5,
        ),
        Row("one daemon pass, 1,000 posts, no feeds", stats(per[0]), "", "", None),
        Row(
            "one daemon pass, 1,000 posts, 20 feeds not due",
            f"{stats(per[20])} = {pass_ratio:.2f}× no feeds",
            "",
            "≤ 1.2× the pass without feeds",
            pass_ratio <= 1.2,
        ),
    ]


def bench_import(quick: bool) -> list[Row]:
    """`import csv` of 10,000 rows (1,000 with --quick) into an empty spool, each row a
    scheduled post with a time phrase and an account; then the same file again (nothing new)."""
    size = 1000 if quick else 10_000
    sb = Sandbox()
    try:
        path = sb.dir / "rows.csv"
        lines = ["text,schedule,platforms,cw"]
        lines += [f'"Post number {i}, with some words",{1 + i % 500}h,outbox,' for i in range(size)]
        path.write_text("\n".join(lines) + "\n")
        sb.run("init")
        t = time.perf_counter()
        sb.run("import", "csv", str(path))
        first = time.perf_counter() - t
        again = sb.time_cmd([PLURSPOOL, "import", "csv", str(path)], 1 if quick else 3)
        made = len(list((sb.spool / "scheduled").glob("*.md")))
        if made != size:
            raise RuntimeError(f"import made {made} posts of {size}")
    finally:
        sb.close()
    return [
        Row(f"`import csv`, {size:,} rows", f"{first:.2f} s", "", "≤ 10 s", first <= 10.0),
        Row(
            f"`import csv` again, {size:,} rows (nothing new)", stats(again, "s", 1.0), "", "", None
        ),
    ]


BENCHES = (
    "startup",
    "list",
    "hosts",
    "explain",
    "queue",
    "calendar",
    "ics",
    "latency",
    "throughput",
    "pass",
    "repeat",
    "expiry",
    "repost",
    "git",
    "feeds",
    "import",
    "idle",
    "atd",
)


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="the small smoke run CI does")
    ap.add_argument("--only", nargs="*", choices=BENCHES, help="run only these")
    ap.add_argument(
        "--idle-seconds",
        type=float,
        default=None,
        help="how long the idle daemon is watched (default 60, or 5 with --quick; the goal "
        "speaks of 300)",
    )
    args = ap.parse_args()
    names = args.only or BENCHES
    # An installed plurspool has its bytecode compiled (pip does it); a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile every module on every start and time that instead.
    import compileall

    import plurspool

    compileall.compile_dir(Path(plurspool.__file__).parent, quiet=1)
    idle = args.idle_seconds or (5.0 if args.quick else 60.0)
    probe = AtProbe() if "atd" in names and not args.quick else None
    if not args.quick and ("list" in names) and probe is None:
        ensure_at()
    runs: dict[str, Callable[[], list[Row]]] = {
        "startup": lambda: bench_startup(args.quick),
        "list": lambda: bench_list(args.quick),
        "hosts": lambda: bench_hosts(args.quick),
        "explain": lambda: bench_explain(args.quick),
        "queue": lambda: bench_queue(args.quick),
        "calendar": lambda: bench_calendar(args.quick),
        "ics": lambda: bench_ics(args.quick),
        "latency": lambda: bench_latency(args.quick),
        "throughput": lambda: bench_throughput(args.quick),
        "pass": lambda: bench_pass(args.quick),
        "repeat": lambda: bench_repeat(args.quick),
        "expiry": lambda: bench_expiry(args.quick),
        "repost": lambda: bench_repost(args.quick),
        "git": lambda: bench_git(args.quick),
        "feeds": lambda: bench_feeds(args.quick),
        "import": lambda: bench_import(args.quick),
        "idle": lambda: bench_idle(args.quick, idle),
        "atd": lambda: (
            probe.rows()
            if probe
            else [Row("atd: job due at a minute → ran", "skipped in --quick", "", "reported", None)]
        ),
    }
    rows: list[Row] = []
    status = 0
    try:
        for name in names:
            print(f"running {name}...", file=sys.stderr, flush=True)
            try:
                rows.extend(runs[name]())
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                traceback.print_exc()
                rows.append(Row(name, f"ERROR: {type(exc).__name__}: {exc}", "", "", False))
                status = 1
    finally:
        if probe is not None:
            probe.close()
        close_filled()
    width = [max(len(getattr(r, f)) for r in rows) for f in ("figure", "value", "peer", "goal")]
    header = ("figure", "plurspool", "peer", "goal")
    print(" | ".join(h.ljust(w) for h, w in zip(header, width, strict=True)) + " | result")
    for r in rows:
        cells = (r.figure, r.value, r.peer, r.goal)
        verdict = "reported" if r.ok is None else ("pass" if r.ok else "FAIL")
        print(" | ".join(c.ljust(w) for c, w in zip(cells, width, strict=True)) + f" | {verdict}")
    return status


if __name__ == "__main__":
    sys.exit(main())
