"""`plurspool import` as a user runs it: a progress bar on a terminal for more rows than fit
on it, none otherwise (the installed command as a subprocess, stderr on a pseudo-terminal)."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

from tests.daemon_helpers import Sandbox
from tests.helpers import BIN


def rows(box: Sandbox, n: int) -> Path:
    path = box.base / "rows.csv"
    lines = ["text,schedule"] + [f"post {i},2030-01-01T{i % 24:02}:00:00Z" for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_on_terminal(box: Sandbox, path: Path, lines: int) -> tuple[int, str, str]:
    """Run `import csv` with stderr on a pseudo-terminal of `lines` lines; (code, out, err)."""
    main, sub = pty.openpty()
    env = {**box.env, "LINES": str(lines), "COLUMNS": "80"}
    proc = subprocess.Popen(
        [str(BIN / "plurspool"), "import", "csv", str(path)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=sub,
    )
    os.close(sub)
    err = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        err += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(main)
    return proc.returncode, out.decode(), err.decode(errors="replace")


def test_a_progress_bar_on_a_terminal_for_more_rows_than_fit(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.write_config()
    path = rows(box, 40)
    code, out, err = run_on_terminal(box, path, lines=24)
    assert code == 0, err
    assert len(out.split()) == 40  # stdout (not a terminal) keeps one ID a line
    assert "checking" in err and "writing" in err and "100%" in err
    assert "imported 40 posts: 40 in scheduled/" in err


def test_no_bar_when_the_rows_fit_or_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.write_config()
    path = rows(box, 10)
    code, _, err = run_on_terminal(box, path, lines=24)
    assert code == 0, err
    assert "checking" not in err and "%" not in err
    path = rows(box, 40)
    proc = subprocess.run(
        [str(BIN / "plurspool"), "import", "csv", str(path)],
        env=box.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "imported 30 posts: 30 in scheduled/\n10 were imported before\n"
