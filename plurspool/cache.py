"""Disposable speed: the parse cache's rows (a `Summary` each) and fingerprint, and each
state's `list` lines.

Everything here is per host, checked against each file's inode, size and mtime and against the
configuration's fingerprint, and may be lost at any time: it is made again from the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config
    from .post import Post

CACHE_FORMAT = 8  # bump when what the parse cache or a listing holds changes
# (path, file key, due, problem, record): one row of the parse cache
CacheRow = tuple[str, tuple[int, int, int], float | None, str | None, str]


@dataclass(frozen=True)
class Summary:
    """What listing a post needs, small enough to cache for 100k posts."""

    platforms: tuple[str, ...] | None
    preview: str
    attempts: int
    # (account, id, url, deleted_at) of each account that succeeded
    results: tuple[tuple[str, str | None, str | None, str | None], ...]
    repeat: str | None = None  # a recurring post's rule, as written
    queue: str | None = None  # the queue whose slot it holds
    expires: float | None = None  # in sent/: when a copy is next due to be deleted
    edited: str | None = None  # the latest `edited_at` of its results (`plurspool amend`)

    @classmethod
    def of(cls, post: Post, expires: float | None = None) -> Summary:
        ok = tuple((a, r.id, r.url, r.deleted_at) for a, r in post.results.items() if not r.error)
        edited = max((r.edited_at for r in post.results.values() if r.edited_at), default=None)
        p = post
        return cls(p.platforms, p.preview, p.attempts, ok, p.repeat, p.queue, expires, edited)

    def to_json(self) -> list[Any]:
        return [
            list(self.platforms) if self.platforms is not None else None,
            self.preview,
            self.attempts,
            [list(r) for r in self.results],
            self.repeat,
            self.queue,
            self.expires,
            self.edited,
        ]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Summary:
        platforms, preview, attempts, results, repeat, queue, expires, edited = raw
        return cls(
            tuple(platforms) if platforms is not None else None,
            preview,
            attempts,
            tuple((a, i, u, d) for a, i, u, d in results),
            repeat,
            queue,
            expires,
            edited,
        )


def fingerprint(config: Config) -> str:
    """What a cached parse depends on besides the file: configuration and limits."""
    from . import __version__
    from .platforms.options import fingerprint as platform_limits

    c = config
    accounts = sorted(
        (n, a.platform, sorted((k, repr(v)) for k, v in a.options.items()))
        for n, a in c.accounts.items()
    )
    limits = platform_limits(c.state_dir)
    raw = repr(
        (
            __version__,
            CACHE_FORMAT,
            str(c.timezone),
            c.default_platforms,
            sorted((q.name, q.accounts) for q in c.queues.values()),
            c.max_post_size,
            accounts,
        )
    )
    return hashlib.sha256(f"{raw}{limits}".encode()).hexdigest()[:16]


class Listing:
    """A state's `list --format json` lines, soonest first, and the files they were made from
    (or, as `queues-scheduled`, the queue of each file in scheduled/: `Items.queue_dues`).

    Disposable and per host (in the state directory): checked against each file's inode, size
    and mtime, and against the configuration's fingerprint. One read loads it: a header line,
    then the file names (NUL-separated), their keys (inode, size, mtime_ns as int64), their
    due times (float64, inf for none) and the lines. A CRC of the body catches a torn file (it
    is written without fsync), which is then ignored.
    """

    MAGIC = b"plurspool-listing-1"

    def __init__(
        self, names: list[str], keys: array[int], dues: array[float], lines: bytes, raw: bytes
    ):
        self.names, self.keys, self.dues, self.lines = names, keys, dues, lines
        self.raw = raw  # the names as read (NUL-separated): `extended` writes them back as they are
        self.pos = {name: i for i, name in enumerate(names)}

    @classmethod
    def read(cls, path: Path, fingerprint: str) -> Listing | None:
        """The listing at `path` if it is whole and made under `fingerprint`, else None."""
        import zlib

        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                data = f.read()
        except OSError:
            return None
        head, _, body = data.partition(b"\n")
        fields = head.split(b" ")
        if len(fields) != 5 or fields[0] != cls.MAGIC or fields[1] != fingerprint.encode():
            return None
        try:
            crc, n, size = (int(x) for x in fields[2:5])
        except ValueError:
            return None
        if zlib.crc32(body) != crc or size + 32 * n > len(body):
            return None
        keys, dues = array("q"), array("d")
        keys.frombytes(body[size : size + 24 * n])
        dues.frombytes(body[size + 24 * n : size + 32 * n])
        names = os.fsdecode(body[:size]).split("\0") if n else []
        if len(names) != n:
            return None
        return cls(names, keys, dues, body[size + 32 * n :], body[:size])

    def rows(
        self, indexes: Iterable[int] | None = None
    ) -> list[tuple[float, str, bytes, tuple[int, int, int]]]:
        """(due, ID, line, file key) of the lines at `indexes` (every line by default)."""
        if not self.names:
            return []
        lines, keys = self.lines.split(b"\n"), self.keys
        which = range(len(self.names)) if indexes is None else indexes
        return [
            (
                self.dues[i],
                self.names[i][:-3],
                lines[i],
                (keys[3 * i], keys[3 * i + 1], keys[3 * i + 2]),
            )
            for i in which
        ]

    @classmethod
    def write(
        cls,
        path: Path,
        fingerprint: str,
        rows: list[tuple[float, str, bytes, tuple[int, int, int]]],
    ) -> None:
        """Replace the listing (atomically; no fsync: it is disposable and checked on read)."""
        names = b"\0".join(os.fsencode(f"{r[1]}.md") for r in rows)
        keys = array("q", [k for r in rows for k in r[3]])
        dues = array("d", [r[0] for r in rows])
        lines = b"\n".join(r[2] for r in rows)
        cls._write(path, fingerprint, len(rows), [names, keys.tobytes(), dues.tobytes(), lines])

    def extended(
        self,
        path: Path,
        fingerprint: str,
        rows: list[tuple[float, str, bytes, tuple[int, int, int]]],
    ) -> None:
        """Replace the listing with this one and `rows` after its own lines, joined as bytes
        (for a listing in no order: `queues-scheduled`), without building its rows again."""
        if not self.names or not rows:
            self.write(path, fingerprint, self.rows() + rows)
            return
        keys = array("q", [k for r in rows for k in r[3]])
        dues = array("d", [r[0] for r in rows])
        parts = [
            self.raw + b"\0" + b"\0".join(os.fsencode(f"{r[1]}.md") for r in rows),
            self.keys.tobytes() + keys.tobytes(),
            self.dues.tobytes() + dues.tobytes(),
            self.lines + b"\n" + b"\n".join(r[2] for r in rows),
        ]
        self._write(path, fingerprint, len(self.names) + len(rows), parts)

    @classmethod
    def _write(cls, path: Path, fingerprint: str, n: int, parts: list[bytes]) -> None:
        """Write (names, keys, dues, lines) under a header, atomically."""
        import zlib

        body = b"".join(parts)
        head = b"%s %s %d %d %d\n" % (
            cls.MAGIC,
            fingerprint.encode(),
            zlib.crc32(body),
            n,
            len(parts[0]),
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(head + body)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # a full disk costs the next `list` some speed, nothing else


def known_queues(
    snap: Listing | None, entries: Iterable[os.DirEntry[str]], name: str, max_size: int
) -> tuple[set[float], list[int], list[os.DirEntry[str]]]:
    """From a `queues-scheduled` listing (a line per file: its queue), the due times of the
    posts of queue `name` among `entries` (scheduled/), the indexes of the rows still true,
    and the entries the listing does not know as they are now (to be read): one lstat and a
    lookup a file."""
    if snap is None:
        return set(), [], list(entries)
    pos, keys = snap.pos, snap.keys
    hits: list[int] = []
    unknown: list[os.DirEntry[str]] = []
    euid, isreg = os.geteuid(), stat.S_ISREG
    for de in entries:
        i = pos.get(de.name)
        if i is not None:
            try:
                st = de.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            j = 3 * i
            if (
                st.st_ino == keys[j]
                and st.st_size == keys[j + 1]
                and st.st_mtime_ns == keys[j + 2]
                and st.st_nlink == 1
                and st.st_uid == euid
                and isreg(st.st_mode)
                and st.st_size <= max_size
            ):
                hits.append(i)
                continue
        unknown.append(de)
    queues, dues, want = snap.lines.split(b"\n"), snap.dues, name.encode()
    return {dues[i] for i in hits if queues[i] == want}, hits, unknown
