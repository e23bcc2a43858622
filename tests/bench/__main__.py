"""plurspool benchmarks: `python -m tests.bench [--quick] [--only NAME...]`.

Each benchmark sets up its own spool in a temp dir, runs plurspool as users do (subprocesses, the
real daemon), and prints one table: figure, plurspool, peer (at/atd or a bare interpreter where it
applies), goal, pass/fail. Figures are medians of several runs with min and max. `--quick` is the
smoke run CI does: small sizes, few repeats; it checks that the benchmarks run, not their numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .gen import generate

BIN = Path(sys.executable).parent
PLURSPOOL = str(BIN / "plurspool")


@dataclass
class Row:
    figure: str
    value: str
    peer: str
    goal: str
    ok: bool | None  # None: reported only


def stats(xs: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    xs = sorted(x * scale for x in xs)
    return f"{statistics.median(xs):.1f} {unit} (min {xs[0]:.1f}, max {xs[-1]:.1f}, n={len(xs)})"


class Sandbox:
    """An isolated HOME/XDG environment with its own spool and config."""

    def __init__(self, config: str = "") -> None:
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
            subprocess.run(argv, env=self.env, stdout=subprocess.DEVNULL, check=True)
            out.append(time.perf_counter() - t)
        return out

    def daemon(self, *extra: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [PLURSPOOL, "send", *extra],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert p.stderr is not None
        line = p.stderr.readline()  # "started ..."
        if "started" not in line:
            raise RuntimeError(f"daemon did not start: {line}")
        return p

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.0005) -> float:
    """Poll until cond() is true; return the time.time() it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return time.time()
        time.sleep(step)
    raise TimeoutError("condition not met")


# -- benchmarks ----------------------------------------------------------------------------------


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


def bench_list(quick: bool) -> list[Row]:
    rows = []
    sizes = [1000] if quick else [10_000, 100_000]
    goals = {1000: 0.25, 10_000: 0.25, 100_000: 2.0}
    for size in sizes:
        sb = Sandbox()
        try:
            generate(sb.spool, size)
            sb.run("list", "--format", "json")  # first run may fill caches
            xs = sb.time_cmd([PLURSPOOL, "list", "--format", "json"], 2 if quick else 5)
            atq = at_list_time(size, 2 if quick else 5)
            med = statistics.median(xs)
            peer = f"atq: {stats(atq)}" if atq else "atq: not available"
            ok = med <= goals[size] and (not atq or med <= 3 * statistics.median(atq))
            rows.append(
                Row(
                    f"`list --format json`, {size:,} posts",
                    stats(xs),
                    peer,
                    f"≤ {goals[size] * 1000:.0f} ms and ≤ 3× atq",
                    ok,
                )
            )
        finally:
            sb.close()
    return rows


def at_list_time(count: int, repeat: int) -> list[float]:
    """Time `atq` over `count` queued at jobs (job files made directly: `at` is far too slow
    to queue 100k jobs one by one). Empty when at is not installed."""
    atq = shutil.which("atq")
    jobs = Path("/var/spool/cron/atjobs")
    if atq is None or not jobs.is_dir() or os.geteuid() != 0:
        return []
    made = []
    base = int(time.time() // 60) + 60 * 24 * 365  # a year ahead: never run
    try:
        for n in range(count):
            p = jobs / f"a{n + 0x10000:05x}{base + n % 50000:08x}"
            p.write_text("#!/bin/sh\n# plurspool benchmark job\ntrue\n")
            os.chmod(p, 0o700)
            made.append(p)
        out = []
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run([atq], stdout=subprocess.DEVNULL, check=True)
            out.append(time.perf_counter() - t)
        return out
    finally:
        for p in made:
            p.unlink(missing_ok=True)


def bench_intake_and_due(quick: bool) -> list[Row]:
    sb = Sandbox()
    rec = sb.dir / "record.txt"
    cfg = sb.dir / "config" / "plurspool" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(
        'default_platforms = ["rec"]\n[accounts.rec]\nplatform = "exec"\n'
        f'command = ["sh", "-c", "date +%s.%N >> {rec}"]\n'
    )
    sb.run("init")
    daemon = sb.daemon()
    try:
        n = 5 if quick else 20
        intake = []
        for i in range(n):
            tmp = sb.spool / "tmp" / f"in{i}"
            tmp.write_text(f"---\nschedule: 1h\n---\nintake {i}\n")
            t0 = time.time()
            os.rename(tmp, sb.spool / "new" / f"in{i}.md")
            dst = sb.spool / "scheduled" / f"in{i}.md"
            intake.append(wait_for(dst.exists, 5) - t0)
        due = []
        for i in range(n):
            at = (datetime.now(UTC) + timedelta(seconds=1.5)).replace(microsecond=0)
            at += timedelta(seconds=1)
            tmp = sb.spool / "tmp" / f"due{i}"
            tmp.write_text(f"---\nschedule: {at.isoformat()}\n---\ndue {i}\n")
            os.rename(tmp, sb.spool / "scheduled" / f"due{i}.md")
            before = len(rec.read_text().splitlines()) if rec.exists() else 0

            def recorded(b: int = before) -> bool:
                return rec.exists() and len(rec.read_text().splitlines()) > b

            wait_for(recorded, 10)
            got = float(rec.read_text().splitlines()[-1])
            due.append(got - at.timestamp())
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
                stats(due),
                "",
                "median ≤ 50 ms, max ≤ 1 s",
                statistics.median(due) <= 0.05 and max(due) <= 1.0 and min(due) >= 0,
            ),
        ]
    finally:
        daemon.terminate()
        daemon.wait(30)
        sb.close()


def bench_idle(quick: bool) -> list[Row]:
    size = 2000 if quick else 100_000
    seconds = 5 if quick else 300
    sb = Sandbox()
    try:
        generate(sb.spool, size)
        sb.run("list", "--format", "json")
        daemon = sb.daemon()
        try:
            time.sleep(2)  # let the start-up scan finish
            before = _cpu(daemon.pid)
            t0 = time.monotonic()
            time.sleep(seconds)  # measuring idleness: there is nothing to await
            used = _cpu(daemon.pid) - before
            elapsed = time.monotonic() - t0
            rss = _rss_mb(daemon.pid)
        finally:
            daemon.terminate()
            daemon.wait(30)
        cpu = used / elapsed * 100
        return [
            Row(
                f"idle daemon, {size:,} posts, {seconds} s",
                f"{cpu:.2f} % CPU, RSS {rss:.0f} MB",
                "",
                "≤ 1 % of a core, RSS ≤ 100 MB",
                cpu <= 1.0 and rss <= 100,
            )
        ]
    finally:
        sb.close()


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


BENCHES: dict[str, Callable[[bool], list[Row]]] = {
    "startup": bench_startup,
    "list": bench_list,
    "latency": bench_intake_and_due,
    "idle": bench_idle,
}


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="the small smoke run CI does")
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHES), help="run only these")
    args = ap.parse_args()
    rows: list[Row] = []
    for name in args.only or BENCHES:
        print(f"running {name}...", file=sys.stderr, flush=True)
        rows.extend(BENCHES[name](args.quick))
    width = [max(len(getattr(r, f)) for r in rows) for f in ("figure", "value", "peer", "goal")]
    header = ("figure", "plurspool", "peer", "goal")
    print(" | ".join(h.ljust(w) for h, w in zip(header, width, strict=True)) + " | result")
    for r in rows:
        cells = (r.figure, r.value, r.peer, r.goal)
        verdict = "reported" if r.ok is None else ("pass" if r.ok else "FAIL")
        print(" | ".join(c.ljust(w) for c, w in zip(cells, width, strict=True)) + f" | {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
