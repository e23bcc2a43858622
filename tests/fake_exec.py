"""A stand-in for an `exec` account's command, driven by a control file.

Usage: python fake_exec.py RECORD [CONTROL]

Every invocation appends one JSON line to RECORD, as soon as it starts (that is when "the post
goes out"): the JSON it read on stdin, the PLURSPOOL_* environment variables, its pid and
time.time(). Then it behaves as the CONTROL file (JSON, re-read on every invocation, so a test can
change it between sends) says:

    {"sleep": 2.0,           # seconds to sleep after recording, before answering
     "exit": 0,              # 0 success, 75 temporary failure, anything else permanent
     "stdout": "id-{n}",     # printed on success; {n} is the invocation number, {key} the key
     "stderr": "boom",       # printed on stderr before a non-zero exit
     "fail_first": 2,        # the first 2 invocations exit with "fail_exit" instead...
     "fail_exit": 75}        # ...(default 75); later ones follow "exit"

A missing CONTROL file means: succeed at once, printing `id-{n}`.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _append(path: Path, record: dict[str, Any]) -> int:
    """Append a line under an exclusive lock; return how many lines the file holds now."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with open(fd, "rb", closefd=False) as f:
            count = sum(1 for _ in f)
        os.write(fd, (json.dumps(record, ensure_ascii=False) + "\n").encode())
        os.fsync(fd)
        return count + 1
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    record_path = Path(argv[1])
    control: dict[str, Any] = {}
    if len(argv) > 2:
        try:
            control = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
        except FileNotFoundError:
            control = {}
    raw = sys.stdin.read()
    try:
        stdin: Any = json.loads(raw)
    except ValueError:
        stdin = raw
    env = {k: v for k, v in os.environ.items() if k.startswith("PLURSPOOL_")}
    n = _append(
        record_path,
        {"t": time.time(), "pid": os.getpid(), "stdin": stdin, "env": env},
    )
    time.sleep(float(control.get("sleep", 0)))
    code = int(control.get("exit", 0))
    if n <= int(control.get("fail_first", 0)):
        code = int(control.get("fail_exit", 75))
    if code == 0:
        out = str(control.get("stdout", "id-{n}"))
        print(out.format(n=n, key=env.get("PLURSPOOL_IDEMPOTENCY_KEY", "")))
        return 0
    print(str(control.get("stderr", f"fake failure {code}")), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
