"""What `pip install .` puts on a machine, and the git pre-commit hook from contrib/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plurspool import __version__
from tests.helpers import BIN, ROOT, git, needs_git


@pytest.mark.slow
def test_pip_install_puts_the_man_pages_where_man_finds_them(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    r = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    man = venv / "share" / "man"
    for page in ("man1/plurspool.1", "man5/plurspool.5", "man5/plurspool-config.5"):
        installed = man / page
        assert installed.is_file(), f"{page} not installed under {man}"
        assert installed.read_bytes() == (ROOT / "man" / Path(page).name).read_bytes()
    # The unit template `daemon install` fills in travels with the package.
    data = list(venv.glob("lib/python3*/site-packages/plurspool/data/plurspool.service"))
    assert len(data) == 1
    # Every module travels, subpackages too (each must be listed in [tool.setuptools] packages).
    site = data[0].parent.parent.parent
    sources = {p.relative_to(ROOT) for p in (ROOT / "plurspool").rglob("*.py")}
    assert sources <= {p.relative_to(site) for p in (site / "plurspool").rglob("*.py")}
    for script in ("plurspool", "plur-post", "plur-queue", "plur-send"):
        assert (venv / "bin" / script).is_file()
    # The version is written once, in plurspool/__init__.py; the build reads it from there.
    assert list(venv.glob(f"lib/python3*/site-packages/plurspool-{__version__}.dist-info"))
    if shutil.which("man"):
        found = subprocess.run(
            ["man", "-M", str(man), "-w", "plurspool"], capture_output=True, text=True, timeout=30
        )
        assert found.returncode == 0 and found.stdout.strip().endswith("plurspool.1")


@needs_git
def test_the_pre_commit_hook_refuses_an_invalid_staged_post(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TZ": "UTC",
    }
    spool = tmp_path / "spool"
    subprocess.run(["plurspool", "--spool", str(spool), "init"], env=env, check=True)
    git(spool, "init", "-q", env=env)
    hook = spool / ".git" / "hooks" / "pre-commit"
    shutil.copy(ROOT / "contrib" / "git-hooks" / "pre-commit", hook)
    hook.chmod(0o755)

    def commit(name: str, text: str) -> subprocess.CompletedProcess[str]:
        (spool / "new" / name).write_text(text)
        git(spool, "add", "new/" + name, env=env)
        return git(spool, "commit", "-q", "-m", name, env=env, check=False)

    ok = commit("good post.md", "---\nschedule: tomorrow 9am\n---\nfine\n")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = commit("bad.md", "---\nsensitive: maybe\n---\nbody\n")
    assert bad.returncode != 0
    assert "bad.md" in bad.stdout + bad.stderr and "sensitive" in bad.stdout + bad.stderr
    log = git(spool, "log", "--format=%s", env=env)
    assert log.stdout.splitlines() == ["good post.md"]  # only the valid commit landed
