"""The only code that touches the spool: names, safe opens, scans and atomic, durable moves.

A post's state is the directory it is in. Every change is one of:
- `deliver`: write into `tmp/` (O_EXCL), fsync, rename into a state dir (never replacing),
  fsync the dir;
- `move`: rename from one state dir to another without replacing, fsync both dirs;
- `replace`: rewrite a post in place through `tmp/` + rename, only if nobody changed it meanwhile.
A crash between any two steps leaves each post in exactly one state (at worst a stray file in
`tmp/`, which is never read as a post).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

from .durable import fsync_dir, sync_filesystem, unlink_quietly
from .durable import rename_noreplace as rename_noreplace  # tests trace it here
from .errors import NotFound, SpoolError

STATES = ("new", "drafts", "scheduled", "sent", "failed")
DIRS = ("tmp", *STATES)
DEFAULT_MAX_SIZE = 1024 * 1024
# Git keeps no empty directory: `plurspool init` puts this file in each state dir (tmp/ is not
# in git), so that a clone has them all and a pull never removes one (plurspool(5), THE SPOOL).
# The same bytes on every host: two hosts that both commit it do not conflict.
KEEP = ".plurspool-keep"
KEEP_TEXT = b"plurspool: this file keeps its directory in git, which keeps no empty directory.\n"

# Names that editors and sync tools leave behind: never posts, never touched.
_JUNK = re.compile(r"^(\..*|.*~|#.*#|.*\.sw[px]|.*\.tmp|4913)$")
# Conflict copies made by sync tools: never posted, moved to failed/ with the reason.
# Dropbox names them "x (conflicted copy 2026-11-28).md" or, as often, with the device or user:
# "x (Someone's conflicted copy 2026-11-28).md".
_CONFLICT = re.compile(r"(\.sync-conflict-|\([^()]*[Cc]onflicted copy|\.orig\.md$)")
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32: no i, l, o, u

T = TypeVar("T")

# Tests set this to inject a crash between two steps of a state change.
crash_hook: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if crash_hook is not None:
        crash_hook(name)


class Refused(SpoolError):
    """A file in the spool that is not read as a post (symlink, hard link, owner, size...)."""


class Changed(SpoolError):
    """A post changed on disk between reading it and writing it back."""


class Entry(NamedTuple):
    """A post file as found in the spool: its ID, state and identity on disk.

    A named tuple, not a dataclass: a scan of 100k files makes 100k of them, four times faster.
    """

    id: str
    state: str
    fspath: str  # the file's path; `path` makes it a Path when asked (cheap scans of 100k)
    ino: int
    size: int
    mtime_ns: int
    mode: int
    nlink: int
    uid: int

    @property
    def path(self) -> Path:
        return Path(self.fspath)

    @property
    def key(self) -> tuple[int, int, int]:
        """What must stay the same for a cached parse of this file to stay valid."""
        return (self.ino, self.size, self.mtime_ns)

    @property
    def regular(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)


def entry_of(post_id: str, state: str, fspath: str, st: os.stat_result) -> Entry:
    """An Entry for a file from its lstat result."""
    return Entry(
        post_id,
        state,
        fspath,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        st.st_mode,
        st.st_nlink,
        st.st_uid,
    )


def classify(name: str) -> str:
    """'post', 'conflict' (a sync tool's copy, to be failed) or 'ignore' for a file name."""
    if _JUNK.match(name) or not name.endswith(".md") or name == ".md":
        return "ignore"
    if _CONFLICT.search(name):
        return "conflict"
    return "post"


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def utf8_name(fspath: str) -> bool:
    """Whether a path decoded from the file system is valid UTF-8 (no surrogate escapes):
    IDs go into the ledger, JSON and logs, which hold only real text."""
    try:
        fspath.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def new_id(text: str = "", seed: bytes | None = None) -> str:
    """A fresh post ID: 8 random base32 characters, then a slug of the text for humans; with
    a `seed`, the 8 characters are derived from it (an import's row: the same row, the same ID)."""
    import hashlib  # and secrets, hmac: not for a `list`
    import secrets

    raw = secrets.token_bytes(8) if seed is None else hashlib.sha256(seed).digest()
    rand = "".join(_ID_ALPHABET[b % 32] for b in raw[:8])  # 256 % 32 == 0: uniform
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:24].rstrip("-")
    return f"{rand}-{slug}" if slug else rand


def _os_error(action: str, path: Path, exc: OSError) -> SpoolError:
    hint = "check the spool's permissions and free space"
    if exc.errno == errno.ENOSPC:
        hint = "the disk is full: free some space; nothing was lost"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        hint = f"the spool must belong to you and be writable: chmod 700 {path.parent}"
    return SpoolError(f"cannot {action} {path}: {exc.strerror}", hint)


class Spool:
    """A spool directory: `tmp/ new/ drafts/ scheduled/ sent/ failed/`, all mode 0700."""

    def __init__(self, root: Path, max_size: int = DEFAULT_MAX_SIZE) -> None:
        # The root may be a symlink: it is resolved once, here.
        self.root = Path(os.path.realpath(os.path.expanduser(root)))
        self._root_str = str(self.root)
        self.max_size = max_size
        self.touched: set[Path] | None = None  # if a set: every path written or moved from

    def dir(self, state: str) -> Path:
        return self.root / state

    def path(self, state: str, post_id: str) -> Path:
        return self.root / state / f"{post_id}.md"

    # -- set-up and checks ---------------------------------------------------------------

    def ensure(self, keep: bool = False) -> None:
        """Create the spool (mode 0700) if missing, and check it is safe to use.

        `keep` (`plurspool init`) also puts a KEEP file in each state dir that has none. Only
        then: in a clone whose commits lack them, one made unasked would be an untracked file
        that stops the `git pull` bringing another host's copy.
        """
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            for name in DIRS:
                self.restore(name)
        except OSError as exc:
            raise _os_error("create the spool", self.root, exc) from None
        self.check()
        for name in STATES if keep else ():
            try:
                self._keep(name)
            except OSError as exc:
                raise _os_error("write", self.root / name / KEEP, exc) from None

    def restore(self, name: str) -> bool:
        """Make a state dir again (mode 0700, durably) if it is missing; True if it was.

        Git removes a directory with the last file in it, and a fresh clone has no tmp/.
        """
        try:
            os.mkdir(os.path.join(self._root_str, name), 0o700)
        except FileExistsError:
            return False
        fsync_dir(self.root)
        return True

    def _keep(self, name: str) -> None:
        """Put the KEEP file in a state dir, unless it is there."""
        path = os.path.join(self._root_str, name, KEEP)
        try:
            fd = os.open(path, _NEW_FILE, 0o600)
        except FileExistsError:
            return
        with open(fd, "wb") as f:
            f.write(KEEP_TEXT)

    def layout(self) -> dict[str, tuple[int, int] | None]:
        """What is at the spool's paths now: (device, inode) of the root ("."), of the
        directory holding it ("..") and of each state dir; None where nothing is."""
        paths = {"..": os.path.dirname(self._root_str), ".": self._root_str}
        paths.update((name, os.path.join(self._root_str, name)) for name in DIRS)
        found: dict[str, tuple[int, int] | None] = {}
        for name, path in paths.items():
            try:
                st = os.lstat(path)
            except OSError:
                found[name] = None
            else:
                found[name] = (st.st_dev, st.st_ino)
        return found

    def check(self) -> None:
        """Refuse a spool whose state dirs are symlinks, not directories, or on other devices."""
        try:
            root_dev = os.stat(self.root).st_dev
        except FileNotFoundError:
            raise SpoolError(
                f"no spool at {self.root}", "run `plurspool init`, or pass --spool DIR"
            ) from None
        for name in DIRS:
            d = self.root / name
            try:
                st = os.lstat(d)
            except FileNotFoundError:
                raise SpoolError(
                    f"the spool {self.root} has no {name}/ directory",
                    "run `plurspool init` to create the missing directories",
                ) from None
            if stat.S_ISLNK(st.st_mode):
                raise SpoolError(
                    f"{d} is a symlink; state directories inside the spool must be "
                    "real directories",
                    f"replace it with a directory: rm {d} && mkdir -m 700 {d}",
                )
            if not stat.S_ISDIR(st.st_mode):
                raise SpoolError(f"{d} is not a directory", f"move it away and mkdir -m 700 {d}")
            if st.st_dev != root_dev:
                raise SpoolError(
                    f"{d} is on another filesystem than {self.root}",
                    "every spool directory must be on one filesystem so moves stay atomic",
                )

    # -- reading ---------------------------------------------------------------------------

    def scan(self, state: str) -> Iterator[tuple[str, Entry]]:
        """Yield (kind, entry) for every file in a state dir; kind is 'post' or 'conflict'.

        Non-posts (junk names, directories, FIFOs, sockets, devices) are skipped without being
        opened. Symlinks named *.md are yielded so the caller can refuse them visibly.
        """
        with self.scandir(state) as it:
            for de in it:
                found = self.scan_one(state, de)
                if found is not None:
                    yield found

    @contextlib.contextmanager
    def scandir(self, state: str) -> Iterator[Iterator[os.DirEntry[str]]]:
        """`os.scandir` of a state dir, with a SpoolError for a failure."""
        d = os.path.join(self._root_str, state)
        try:
            it = os.scandir(d)
        except OSError as exc:
            raise _os_error("read", Path(d), exc) from None
        with it:
            yield it

    @staticmethod
    def scan_one(state: str, de: os.DirEntry[str]) -> tuple[str, Entry] | None:
        """`scan` for one directory entry: (kind, entry), or None for what is no post."""
        kind = classify(de.name)
        if kind == "ignore":
            return None
        try:
            st = de.stat(follow_symlinks=False)
        except FileNotFoundError:
            return None  # moved away while we looked
        mode = st.st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            return None  # FIFOs, sockets, devices, directories: not posts, never opened
        # de.path is root/state/name already joined (the loop runs 100k times).
        entry = Entry(
            de.name[:-3],
            state,
            de.path,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            mode,
            st.st_nlink,
            st.st_uid,
        )
        return kind, entry

    def entries(self, state: str) -> list[Entry]:
        """Every post-named file in a state dir (conflict copies included), unsorted."""
        return [e for _, e in self.scan(state)]

    def stat_entry(self, state: str, post_id: str) -> Entry | None:
        """The entry for an ID in a state, or None if there is no such file."""
        fspath = os.path.join(self._root_str, state, post_id + ".md")  # no Path: hot
        try:
            st = os.lstat(fspath)
        except FileNotFoundError:
            return None
        return entry_of(post_id, state, fspath, st)

    def refusal(self, entry: Entry) -> str | None:
        """Why a file must not be read as a post, or None if it may be."""
        if entry.symlink:
            return "it is a symlink; plurspool reads only regular files"
        if not entry.regular:
            return "it is not a regular file"
        if entry.nlink > 1:
            return "it has more than one hard link; copy it instead of linking it"
        if entry.uid != os.geteuid():
            return f"it belongs to uid {entry.uid}, not to you"
        if entry.size > self.max_size:
            return f"it is {entry.size} bytes, over the {self.max_size}-byte limit (max_post_size)"
        if not utf8_name(entry.fspath):
            return "its name is not valid UTF-8; rename it (letters, digits and dashes are safe)"
        return None

    def read(self, entry: Entry) -> bytes:
        """Read a post's bytes, refusing anything that is not a small regular file of ours."""
        reason = self.refusal(entry)
        if reason:
            raise Refused(f"{entry.path}: {reason}")
        try:
            fd = os.open(entry.fspath, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Refused(f"{entry.path}: it is a symlink") from None
            raise _os_error("read", entry.path, exc) from None
        try:
            st = os.fstat(fd)
            # Checked again on the open file: the name may have been swapped since the scan.
            swapped = entry_of(entry.id, entry.state, entry.fspath, st)
            reason = self.refusal(swapped)
            if reason:
                raise Refused(f"{entry.path}: {reason}")
            chunks = []
            remaining = self.max_size + 1
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            data = b"".join(chunks)
            if len(data) > self.max_size:
                raise Refused(f"{entry.path}: it grew over the {self.max_size}-byte limit")
            return data
        finally:
            os.close(fd)

    def find(self, prefix: str, states: tuple[str, ...] = STATES) -> Entry:
        """The post whose ID is `prefix` or starts with it, in any of `states`."""
        prefix = prefix.removesuffix(".md")
        if not prefix or "/" in prefix or prefix.startswith("."):
            raise NotFound(f"no post with ID {prefix!r}", "run `plurspool list --state all`")
        exact: list[Entry] = []
        partial: list[Entry] = []
        for state in states:
            for e in self.entries(state):
                if e.id == prefix:
                    exact.append(e)
                elif e.id.startswith(prefix):
                    partial.append(e)
        found = exact or partial
        if len(found) == 1:
            return found[0]
        if not found:
            where = "any state" if states == STATES else "/".join(states)
            raise NotFound(
                f"no post with ID {prefix!r} in {where}", "run `plurspool list --state all`"
            )
        names = ", ".join(sorted(f"{e.id} ({e.state})" for e in found)[:8])
        raise NotFound(f"ID prefix {prefix!r} is ambiguous: {names}", "type more of the ID")

    def prefix_lengths(self) -> dict[str, int]:
        """For every post ID in the spool, how much of it `find` needs: its shortest prefix
        that no other ID starts with (all of it when it starts another ID, or is twice here)."""
        ids: list[str] = []
        for state in STATES:  # the names `scan` yields, told by their d_type: no lstat
            with self.scandir(state) as it:
                ids += [
                    de.name[:-3]
                    for de in it
                    if classify(de.name) != "ignore"
                    and (de.is_file(follow_symlinks=False) or de.is_symlink())
                ]
        ids.sort()
        shared = [0] * (len(ids) + 1)  # shared[k]: the length ids[k - 1] and ids[k] start with
        for k, (a, b) in enumerate(itertools.pairwise(ids), 1):
            i, most = 0, min(len(a), len(b))
            while i < most and a[i] == b[i]:  # IDs differ early: faster than commonprefix
                i += 1
            shared[k] = i
        return {x: min(max(shared[k], shared[k + 1]) + 1, len(x)) for k, x in enumerate(ids)}

    def exists_anywhere(self, post_id: str) -> str | None:
        """The state holding a post with exactly this ID, if any."""
        for state in STATES:  # joined as text: an import asks this of every post it makes
            if os.path.lexists(os.path.join(self._root_str, state, post_id + ".md")):
                return state
        return None

    # -- writing ---------------------------------------------------------------------------

    def _into(self, state: str, make: Callable[[], T]) -> T:
        """`make` a name in a state dir; if that dir vanished meanwhile (git removes empty
        directories), make the dir again and `make` once more. Any other ENOENT (the source
        of a move is gone) stays what it is."""
        try:
            return make()
        except FileNotFoundError:
            if os.path.lexists(self.dir(state)):
                raise
        self.restore(state)
        return make()

    def _write_tmp(self, post_id: str, data: bytes, synced: bool = True) -> Path:
        import secrets

        tmp = self.root / "tmp" / f"{post_id}.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            fd = self._into("tmp", lambda: os.open(tmp, _NEW_FILE, 0o600))
        except OSError as exc:
            raise _os_error("write", tmp, exc) from None
        try:
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                _step("written")
                if synced:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            unlink_quietly(tmp)
            raise _os_error("write", tmp, exc) from None
        _step("tmp-fsynced")
        return tmp

    def deliver(self, state: str, post_id: str, data: bytes) -> Entry:
        """Write a new post into a state dir; never replaces an existing post."""
        if self.exists_anywhere(post_id):
            raise SpoolError(f"a post with ID {post_id} already exists", "choose another name")
        tmp = self._write_tmp(post_id, data)
        dst = self.path(state, post_id)
        try:
            self._into(state, lambda: rename_noreplace(tmp, dst))
        except FileExistsError:
            unlink_quietly(tmp)
            raise SpoolError(
                f"a post with ID {post_id} already exists", "choose another name"
            ) from None
        except OSError as exc:
            unlink_quietly(tmp)
            raise _os_error("deliver", dst, exc) from None
        _step("renamed")
        self._touch(dst)
        fsync_dir(dst.parent)
        _step("dir-fsynced")
        found = self.stat_entry(state, post_id)
        assert found is not None
        return found

    def deliver_many(self, state: str, posts: Sequence[tuple[str, bytes]]) -> list[Entry]:
        """`deliver` for many new posts, syncing once: all written into tmp/, the spool's
        filesystem synced (one syncfs, not a fsync each), each renamed in (left out where its ID
        is taken there: the caller looks at the other states first), the state dir synced."""
        tmps: list[tuple[str, Path]] = []
        out = []
        try:
            for post_id, data in posts:  # a failure (disk full) leaves no file behind in tmp/
                tmps.append((post_id, self._write_tmp(post_id, data, False)))
            sync_filesystem(self.dir("tmp"))
            for post_id, tmp in tmps:
                with contextlib.suppress(FileExistsError):
                    dst = self.path(state, post_id)
                    self._into(state, functools.partial(rename_noreplace, tmp, dst))
                    out.append(self.stat_entry(state, post_id))
        except OSError as exc:
            raise _os_error("deliver", self.dir(state), exc) from None
        finally:
            for _, tmp in tmps:
                unlink_quietly(tmp)  # those not renamed in
            fsync_dir(self.dir(state))
        return [e for e in out if e is not None]

    def move(self, entry: Entry, state: str) -> Entry:
        """Move a post to another state under the same ID; fails if the ID is taken there."""
        dst = self.path(state, entry.id)
        try:
            self._into(state, lambda: rename_noreplace(entry.path, dst))
        except FileExistsError:
            raise SpoolError(
                f"cannot move {entry.id} to {state}/: a post with that ID is already there",
                f"rename one of them: both are in {self.root}",
            ) from None
        except FileNotFoundError:
            raise NotFound(
                f"{entry.id} is no longer in {entry.state}/", "it was moved meanwhile; list again"
            ) from None
        except OSError as exc:
            raise _os_error("move", entry.path, exc) from None
        _step("renamed")
        self._touch(dst, entry.path)
        fsync_dir(dst.parent)
        _step("dst-fsynced")
        fsync_dir(entry.path.parent)
        _step("src-fsynced")
        if state != "failed" and (
            entry.state == "failed" or not os.path.lexists(self.path("failed", entry.id))
        ):
            # Only now, after the post is safely elsewhere: a crash before this line leaves an
            # ID.error beside no post, which the post's next move out of the way clears (a
            # reason is never lost from a post still in failed/).
            self.clear_error(entry.id)
        found = self.stat_entry(state, entry.id)
        if found is None:
            raise NotFound(f"{entry.id} vanished from {state}/", "list again")
        return found

    def rename_into(self, entry: Entry, state: str, post_id: str) -> Entry:
        """Move a file to a state under a new ID (a name clash); never replaces."""
        renamed = Entry(post_id, entry.state, entry.fspath, *_identity(entry))
        dst = self.path(state, post_id)
        try:
            self._into(state, lambda: rename_noreplace(entry.path, dst))
        except OSError as exc:
            raise _os_error("move", entry.path, exc) from None
        self._touch(dst, entry.path)
        fsync_dir(dst.parent)
        fsync_dir(entry.path.parent)
        found = self.stat_entry(state, post_id)
        return found if found is not None else renamed

    def replace(self, entry: Entry, data: bytes, *, synced: bool = True) -> Entry:
        """Rewrite a post in place, atomically, unless it changed since `entry` was taken.

        `synced=False` leaves the directory fsync to a `move` made right after (it syncs both
        directories, and names reach the disk in order): one fsync less per sent post. The
        new data itself is always synced before it takes the post's name.
        """
        tmp = self._write_tmp(entry.id, data)
        now = self.stat_entry(entry.state, entry.id)
        if now is None or now.key != entry.key:
            unlink_quietly(tmp)
            raise Changed(
                f"{entry.id} changed on disk meanwhile; nothing was written",
                "run the command again",
            )
        try:
            os.replace(tmp, entry.path)
        except OSError as exc:
            unlink_quietly(tmp)
            raise _os_error("rewrite", entry.path, exc) from None
        _step("replaced")
        self._touch(entry.path)
        if synced:
            fsync_dir(entry.path.parent)
            _step("dir-fsynced")
        found = self.stat_entry(entry.state, entry.id)
        if found is None:  # moved away meanwhile by someone not holding its claim
            raise Changed(f"{entry.id} left {entry.state}/ meanwhile", "list again")
        return found

    def write_card_image(self, post_id: str, data: bytes) -> str:
        """Store a link card's thumbnail as media/cards/<ID>.jpg (plurspool(5), `card`)."""
        return self.write_media(f"cards/{post_id}.jpg", data)

    def write_media(self, name: str, data: bytes) -> str:
        """Store a file as media/<name> (`name` one folder deep: a card's image, an imported
        post's media), atomically; its path relative to the root."""
        relpath = f"media/{name}"
        folder = (self.root / relpath).parent
        for d in (folder.parent, folder):  # never made or written through a link
            if d.is_symlink():
                raise SpoolError(f"{d} is a symlink", "make it a directory inside the spool")
            try:
                d.mkdir(mode=0o700, exist_ok=True)
            except OSError as exc:
                raise _os_error("make", d, exc) from None
        tmp = self._write_tmp(name.replace("/", "."), data)
        try:
            os.replace(tmp, self.root / relpath)
        except OSError as exc:
            unlink_quietly(tmp)
            raise _os_error("write", self.root / relpath, exc) from None
        self._touch(self.root / relpath)
        fsync_dir(folder)
        return relpath

    def write_root_file(self, name: str, data: bytes) -> None:
        """Replace a file of the spool root (feeds.toml) atomically and durably."""
        tmp = self._write_tmp(name, data)
        try:
            os.replace(tmp, self.root / name)
        except OSError as exc:
            unlink_quietly(tmp)
            raise _os_error("write", self.root / name, exc) from None
        fsync_dir(self.root)

    def error_path(self, post_id: str) -> Path:
        return self.root / "failed" / f"{post_id}.error"

    def write_error(self, post_id: str, reason: str) -> None:
        """Write failed/<ID>.error (the reason a post is in failed/), atomically."""
        tmp = self._write_tmp(post_id + ".error", reason.rstrip("\n").encode() + b"\n")
        try:
            self._into("failed", lambda: os.replace(tmp, self.error_path(post_id)))
        except OSError as exc:
            unlink_quietly(tmp)
            raise _os_error("write", self.error_path(post_id), exc) from None
        self._touch(self.error_path(post_id))
        fsync_dir(self.root / "failed")

    def read_error(self, post_id: str) -> str | None:
        try:
            fd = os.open(self.error_path(post_id), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return os.read(fd, 64 * 1024).decode("utf-8", "replace").strip()
        finally:
            os.close(fd)

    def clear_error(self, post_id: str) -> None:
        unlink_quietly(self.error_path(post_id))
        self._touch(self.error_path(post_id))

    def _touch(self, *paths: Path) -> None:
        if self.touched is not None:  # [git] autocommit (plurspool(1))
            self.touched.update(paths)

    def fail(self, entry: Entry, reason: str) -> Entry:
        """Move a file to failed/ byte for byte, with its reason beside it."""
        # The reason is written first: a crash leaves at worst a reason without its post.
        self.write_error(entry.id, reason)
        if entry.state == "failed":
            return entry
        return self.move(entry, "failed")


def _identity(e: Entry) -> tuple[int, int, int, int, int, int]:
    return (e.ino, e.size, e.mtime_ns, e.mode, e.nlink, e.uid)
