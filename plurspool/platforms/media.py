"""Media files as every platform reads them: inside the spool, through no symlink, never a FIFO."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def open_media(spool_root: Path, relpath: str) -> int:
    """Open a media file for reading: a regular file under the spool root, reached without
    following any symlink (so a name swapped for a link after the checks leads nowhere).

    Returns the descriptor (the caller closes it); raises OSError, with ELOOP for a symlink on
    the way and EINVAL for anything that is not a regular file inside the root.
    """
    parts = relpath.split("/")
    if not relpath or relpath.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise OSError(errno.EINVAL, "not a plain path inside the spool", relpath)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(spool_root, flags | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            except NotADirectoryError:
                # O_NOFOLLOW|O_DIRECTORY says ENOTDIR for a link to a directory: say ELOOP.
                if stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode):
                    raise OSError(errno.ELOOP, "a symlink on the way", relpath) from None
                raise
            os.close(fd)
            fd = nxt
        # O_NONBLOCK: a FIFO must not hang the sender; it is refused just below.
        file_fd = os.open(parts[-1], flags | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        raise OSError(errno.EINVAL, "not a regular file", relpath)
    return file_fd


def read_media(spool_root: Path, relpath: str, limit: int | None = None) -> bytes:
    """The bytes of a media file opened with `open_media` (at most `limit` of them)."""
    with os.fdopen(open_media(spool_root, relpath), "rb") as f:
        return f.read() if limit is None else f.read(limit)


def media_error(relpath: str, exc: OSError) -> str:
    """Why a media file could not be read, for a failed post's reason."""
    if exc.errno == errno.ELOOP:
        why = "it is a symlink or lies behind one; media must be regular files in the spool"
    elif exc.errno == errno.EINVAL:
        why = "not a regular file inside the spool"
    else:
        why = exc.strerror or str(exc)
    return f"media file {relpath}: {why}"
