"""The file-system steps that make a spool change atomic and durable: fsync a directory, rename
without replacing (glibc renameat2, through ctypes), sync one filesystem (syncfs).

Only `spool.py` calls these on spool files; they know nothing of posts.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from collections.abc import Callable
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename into it, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """glibc's renameat2, looked up on first use (ctypes costs `list` 3 ms to import)."""
    import ctypes

    try:
        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None
    return fn


def sync_filesystem(path: Path) -> None:
    """Flush the filesystem holding `path` (Linux syncfs), not every disk of the machine as
    os.sync() would; os.sync() where syncfs is missing."""
    import ctypes

    try:
        syncfs: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename src to dst atomically, failing with FileExistsError if dst exists."""
    renameat2 = _renameat2()
    if renameat2 is not None:
        rc = renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        import ctypes

        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(dst))
    # Filesystems without RENAME_NOREPLACE: check, then rename (a narrow race, documented).
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "file exists", str(dst))
    os.rename(src, dst)


def unlink_quietly(path: Path) -> None:
    """Remove a file if it is there; a failure is no error (a stray file in tmp/ is harmless)."""
    with contextlib.suppress(OSError):
        os.unlink(path)
