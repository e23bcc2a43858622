"""Every git command plurspool runs goes through `run` (plurspool(1), "Reviewing and syncing
with git"): `Gate` holds a due post not committed on the reviewed branch, `Committer` commits
(and pushes) exactly the files a pass changed; neither changes a post's state.

git runs as a subprocess, never through a library, each call with a timeout. Per pass, the gate
runs `git rev-parse` once, `git ls-tree` when the branch moved and `git cat-file --batch` for the
blobs it has not seen: never one process per post.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo
from pathlib import Path

from . import when
from .config import Config, GitConfig
from .errors import ConfigError, GitError, PlurspoolError
from .gitmerge import settle
from .items import Item, Items
from .log import Log
from .post import Post, parse, without_written
from .repeat import template_id
from .spool import STATES, Spool

TIMEOUT = 30.0  # seconds, for a local git command
NETWORK_TIMEOUT = 120.0  # for `pull` and `push`
PUSH_TRIES = 3
RECHECK = 5.0  # seconds: how soon a held post is looked at again (the branch may have moved)
# A repository in the middle of one of these is the user's to finish: nothing is committed.
IN_PROGRESS = {
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase",
    "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
}
_USERINFO = re.compile(r"(://)[^/@\s]+@")
_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"}


def run(
    cwd: Path,
    *args: str,
    stdin: bytes | None = None,
    timeout: float = TIMEOUT,
    env: Mapping[str, str] | None = None,
    ok: tuple[int, ...] = (0,),
) -> bytes:
    """`git ARGS` in `cwd`: its stdout; a GitError naming the command and git's message when
    its exit status is not in `ok`."""
    cmd = ["git", "-c", "core.quotepath=off", *args]
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            input=stdin,
            capture_output=True,
            timeout=timeout,
            env={**os.environ, **_ENV, **(env or {})},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took more than {timeout:.0f}s", "") from None
    except OSError as exc:
        raise GitError(f"cannot run git: {exc.strerror}", "install git") from None
    if done.returncode not in ok:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        # A remote's URL may carry a password or token: never into a log line.
        last = _USERINFO.sub(r"\1***@", said[-1]) if said else str(done.returncode)
        raise GitError(f"git {args[0]} failed: {last}", "")
    return done.stdout


@dataclass(frozen=True)
class Repo:
    """The git repository a spool is in: its work tree, its git dir (this worktree's) and the
    spool's place in it ("" at the top, else "posts/")."""

    top: Path
    git_dir: Path
    prefix: str

    def path(self, spool_path: Path, root: Path) -> str:
        """A spool file's path as git names it, from the work tree's top."""
        return self.prefix + spool_path.relative_to(root).as_posix()

    def busy(self) -> str | None:
        """What the user is in the middle of (a rebase, a merge…), or None."""
        for name, what in IN_PROGRESS.items():
            if (self.git_dir / name).exists():
                return what
        return None


def find_repo(root: Path) -> Repo | None:
    """The repository `root` is in, or None when it is in none."""
    try:
        out = run(
            root,
            "rev-parse",
            "--show-toplevel",
            "--absolute-git-dir",
            "--show-prefix",
        )
    except GitError:
        return None
    top, git_dir, prefix = [*os.fsdecode(out).split("\n"), "", ""][:3]
    if not top:  # inside a .git directory, or a bare repository: no work tree
        return None
    return Repo(Path(top), Path(git_dir), prefix)


def require_repo(config: Config, root: Path) -> Repo:
    """The spool's repository; a ConfigError with a hint when [git] needs one and it has none."""
    repo = find_repo(root)
    if repo is None:
        used = [k for k in ("send_only_committed", "autocommit") if getattr(config.git, k)]
        where = f" (in {config.path})" if config.path is not None else ""
        if shutil.which("git") is None:
            raise ConfigError(
                f"git.{used[0]} is set but git is not installed (no git on PATH)",
                f"install git, or remove [git] {used[0]}{where}",
            )
        raise ConfigError(
            f"git.{used[0]} is set but the spool {root} is not in a git repository",
            f"run `git init` in {root} (or in a folder above it), or remove [git] {used[0]}"
            + where,
        )
    return repo


def held_now(config: Config, root: Path, items: Sequence[Item]) -> dict[str, str]:
    """For `list` and `show`: why each of `items` (valid, in scheduled/) would be held now."""
    try:
        repo = require_repo(config, root)
    except ConfigError as exc:
        return {i.id: exc.message for i in items}
    return Gate(repo, root, config.git.branch, config.timezone).held(items)


# -- the gate: sent only if committed ----------------------------------------------------------


class Gate:
    """Which due posts are not committed, as they are, on the reviewed branch.

    A post is committed when its content apart from the keys plurspool writes (`WRITTEN_KEYS`)
    equals a blob of the same ID in any state directory of the branch's tree; an occurrence of
    a recurring post (`ID--STAMP`) compares with its template's. A committed absolute `schedule`
    must name the same instant, unless plurspool moves it (a queue, a recurring post).
    """

    def __init__(self, repo: Repo, root: Path, branch: str | None, tz: tzinfo) -> None:
        self.repo, self.root, self.branch, self.tz = repo, root, branch, tz
        self._tree: str | None = None
        self._blobs: dict[str, list[str]] = {}  # ID -> blob ids on the branch
        self._posts: dict[str, Post | None] = {}  # blob id -> the post it holds (None: invalid)
        # (ID, the file's inode/size/mtime, its blobs) -> whether it matches one: a post whose
        # file and committed blobs did not change is compared once.
        self._same_as: dict[tuple[str, tuple[int, int, int], tuple[str, ...]], bool] = {}

    def held(self, items: Sequence[Item]) -> dict[str, str]:
        """Why each post of `items` that may not be sent is held, by ID."""
        if not items:
            return {}
        try:
            name = self._look()
            wanted = {oid for i in items for oid in self._candidates(i.id)[0]}
            self._fetch([oid for oid in wanted if oid not in self._posts])
        except GitError as exc:
            return {i.id: exc.message for i in items}
        out = {}
        used = []
        for item in items:
            oids, occurrence = self._candidates(item.id)
            post = item.post
            if post is None:
                continue  # invalid: never sent anyway
            if not oids:
                out[item.id] = f"not committed on {name}"
                continue
            key = (item.id, item.entry.key, tuple(oids))
            same = self._same_as.get(key)
            if same is None:
                same = any(self._same(post, self._posts[o], occurrence) for o in oids)
                self._same_as[key] = same
            used.append(key)
            if not same:
                out[item.id] = f"changed since it was committed on {name}"
        if len(self._same_as) > 4 * len(used) + 1000:  # old versions of files: forgotten
            self._same_as = {k: self._same_as[k] for k in used}
        return out

    def _look(self) -> str:
        """Read the branch's tree (listing it again if it moved); the branch's name."""
        if self.branch is not None:
            ref = f"refs/heads/{self.branch}^{{tree}}"
            try:
                out = run(self.repo.top, "rev-parse", "-q", "--verify", ref)
            except GitError:
                raise GitError(f"no branch {self.branch} in {self.repo.top}", "") from None
            tree, name = out.decode().strip(), self.branch
        else:
            out = run(self.repo.top, "rev-parse", "HEAD^{tree}", "--symbolic-full-name", "HEAD")
            tree, _, full = out.decode().strip().partition("\n")
            name = full.removeprefix("refs/heads/") or "HEAD"
        if tree != self._tree:
            self._blobs = self._list(tree)
            kept = {oid for oids in self._blobs.values() for oid in oids}
            self._posts = {o: p for o, p in self._posts.items() if o in kept}
            self._tree = tree
        return name

    def _list(self, tree: str) -> dict[str, list[str]]:
        dirs = [f"{self.repo.prefix}{state}/" for state in STATES if state != "tmp"]
        out = run(self.repo.top, "ls-tree", "-z", "--full-tree", tree, "--", *dirs)
        blobs: dict[str, list[str]] = {}
        for line in out.split(b"\0"):
            meta, _, path = line.partition(b"\t")
            fields = meta.split()
            name = os.fsdecode(path).rsplit("/", 1)[-1]
            if len(fields) == 3 and fields[1] == b"blob" and name.endswith(".md"):
                blobs.setdefault(name[:-3], []).append(fields[2].decode())
        return blobs

    def _candidates(self, post_id: str) -> tuple[list[str], bool]:
        """The blobs a post may match, and whether they are its template's."""
        oids = self._blobs.get(post_id)
        if oids:
            return oids, False
        template = template_id(post_id)
        if template is not None and self._blobs.get(template):
            return self._blobs[template], True
        return [], False

    def _fetch(self, oids: list[str]) -> None:
        """Read and parse blobs, all in one `git cat-file --batch`."""
        if not oids:
            return
        out = run(
            self.repo.top, "cat-file", "--batch", stdin="".join(f"{o}\n" for o in oids).encode()
        )
        at = 0
        for oid in oids:
            end = out.index(b"\n", at)
            header = out[at:end].split()
            at = end + 1
            if len(header) != 3:  # "<oid> missing"
                self._posts[oid] = None
                continue
            size = int(header[2])
            data = out[at : at + size]
            at += size + 1
            try:
                self._posts[oid] = parse(data)
            except PlurspoolError:
                self._posts[oid] = None

    def _same(self, post: Post, committed: Post | None, occurrence: bool) -> bool:
        if committed is None:
            return False
        mine, theirs = without_written(post), without_written(committed)
        if occurrence:  # the copy has no `skip`: plurspool took it out
            mine, theirs = replace(mine, skip=()), replace(theirs, skip=())
        if mine != theirs:
            return False
        moved = occurrence or committed.repeat is not None or post.queue is not None
        if moved or committed.schedule is None or post.schedule is None:
            return True
        try:
            reviewed = when.parse_absolute(committed.schedule, tz=self.tz)
        except PlurspoolError:
            return True  # "tomorrow 9am": plurspool resolved it at intake
        try:
            return when.parse_absolute(post.schedule, tz=self.tz) == reviewed
        except PlurspoolError:
            return False


# -- the committer: autocommit and push --------------------------------------------------------


class Committer:
    """Commits the spool files a pass changed, and nothing else, then pulls and pushes.

    The commit is made on a temporary index (`GIT_INDEX_FILE`) read from HEAD, so that whatever
    the user has staged stays staged and out of it; HEAD moves only if nobody moved it meanwhile
    (`git update-ref` with the old value), and the user's index then takes those paths from the
    new HEAD. Paths a commit could not take (a rebase in progress, a git failure) wait for the
    next pass. `background` runs it all in a worker thread, off the send path.
    """

    def __init__(
        self, repo: Repo, root: Path, config: GitConfig, log: Log, *, background: bool
    ) -> None:
        self.repo, self.root, self.config, self.log = repo, root, config, log
        self.pending: set[Path] = set()
        self.unpushed = False
        self.jobs: queue.Queue[set[Path] | threading.Event | None] | None = None
        self.thread: threading.Thread | None = None
        if background:
            self.jobs = queue.Queue()
            self.thread = threading.Thread(target=self._work, name="git", daemon=True)
            self.thread.start()

    def submit(self, paths: Iterable[Path]) -> None:
        """Commit `paths` (in the worker thread, if there is one)."""
        batch = set(paths)
        if self.jobs is not None:
            self.jobs.put(batch)
        else:
            self._commit_and_push(batch)

    def close(self, timeout: float) -> None:
        """Let the worker finish what it was given, for at most `timeout` seconds."""
        if self.jobs is not None and self.thread is not None:
            self.jobs.put(None)
            self.thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Wait until what was handed over so far is done; whether it was in time."""
        if self.jobs is None:
            return True
        done = threading.Event()
        self.jobs.put(done)
        return done.wait(timeout)

    def _work(self) -> None:
        assert self.jobs is not None
        stop = False
        while not stop:
            batch: set[Path] = set()
            marks: list[threading.Event] = []
            job = self.jobs.get()
            while True:  # what piled up meanwhile goes in the same commit
                if job is None:
                    stop = True
                elif isinstance(job, threading.Event):
                    marks.append(job)
                else:
                    batch |= job
                if self.jobs.empty():
                    break
                job = self.jobs.get()
            self._commit_and_push(batch)
            for mark in marks:
                mark.set()

    def _commit_and_push(self, batch: set[Path]) -> None:
        try:
            self.pending |= batch
            if self.pending and self._commit():
                self.pending.clear()
            if self.config.push and self.unpushed:
                self._push()
        except Exception as exc:  # nothing here may take the daemon down
            self.log.event("git", level="error", error=f"internal error: {exc!r}"[:300])

    def _commit(self) -> bool:
        """Commit the pending paths; whether they are done with (committed, or nothing new)."""
        busy = self.repo.busy()
        if busy is not None:
            self.log.event(
                "git",
                level="warning",
                action="commit",
                error=f"{busy} is in progress in {self.repo.top}; committing after it",
            )
            return False
        top = self.repo.top
        paths = sorted({self.repo.path(p, self.root) for p in self.pending})
        index = self.repo.git_dir / f"plurspool-index-{os.getpid()}-{threading.get_ident()}"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            # What the repository ignores (the spool's tmp/, say) stays out, as `git add` has it.
            listed = b"".join(os.fsencode(p) + b"\0" for p in paths)
            out = run(top, "check-ignore", "-z", "--stdin", stdin=listed, ok=(0, 1))
            ignored = set(os.fsdecode(out).split("\0"))
            paths = [p for p in paths if p not in ignored]
            if not paths:
                return True
            listed = b"".join(os.fsencode(p) + b"\0" for p in paths)
            head = self._head()
            run(top, "read-tree", *([head] if head else ["--empty"]), env=env)
            run(top, "update-index", "--add", "--remove", "-z", "--stdin", stdin=listed, env=env)
            tree = run(top, "write-tree", env=env).decode().strip()
            if head and run(top, "rev-parse", f"{head}^{{tree}}").decode().strip() == tree:
                return True
            message = commit_message(paths, self.repo.prefix, top)
            parent = ["-p", head] if head else []
            commit = run(top, "commit-tree", tree, *parent, "-F", "-", stdin=message.encode())
            oid = commit.decode().strip()
            run(top, "update-ref", "-m", "plurspool: autocommit", "HEAD", oid, head or "")
            self.unpushed = True
        except GitError as exc:
            self.log.event("git", level="error", action="commit", error=exc.message)
            return False
        finally:
            index.unlink(missing_ok=True)
        try:  # the user's index: these paths as committed, the rest as it was
            run(top, "reset", "-q", "--", *paths)
        except GitError as exc:
            self.log.event("git", level="warning", action="index", error=exc.message)
        self.log.event("git", action="commit", commit=oid[:12], paths=len(paths))
        return True

    def _head(self) -> str | None:
        try:
            return run(self.repo.top, "rev-parse", "-q", "--verify", "HEAD").decode().strip()
        except GitError:
            return None  # no commit yet

    def _push(self) -> None:
        """`git push`; refused (the remote moved on), `git pull --rebase` and push again."""
        top = self.repo.top
        for attempt in range(1, PUSH_TRIES + 1):
            try:
                run(top, "push", "-q", timeout=NETWORK_TIMEOUT)
            except GitError as exc:
                error = exc.message
                self.log.event("git", level="warning", action="push", attempt=attempt, error=error)
            else:
                self.unpushed = False
                self.log.event("git", action="push", attempt=attempt)
                return
            busy = self.repo.busy()
            if attempt == PUSH_TRIES or busy is not None:
                error = f"{busy} is in progress" if busy else error
                break
            try:
                run(top, "pull", "--rebase", "--no-edit", "-q", timeout=NETWORK_TIMEOUT)
            except GitError as exc:
                error = exc.message
                if self.repo.busy() is None:
                    break
                settled = settle(run, top, self.repo.prefix, self.repo.busy)  # sent on both
                if settled is None:  # our own rebase stopped on a conflict of another kind
                    _quietly(top, "rebase", "--abort")
                    break
                self.log.event("git", action="merge", paths=",".join(settled))
        self.log.event("git", level="error", action="push", error=f"{error}; pushing next pass")


def _quietly(top: Path, *args: str) -> None:
    with contextlib.suppress(GitError):
        run(top, *args)


def commit_message(paths: Sequence[str], prefix: str, top: Path) -> str:
    """`plurspool: sent a, b; failed c` (where each post is now) and, below, every path."""
    by_state: dict[str, list[str]] = {}
    for path in paths:
        state, _, name = path.removeprefix(prefix).partition("/")
        if name.endswith(".md") and os.path.lexists(top / path):
            by_state.setdefault(state, []).append(name[:-3])
    words = {"drafts": "kept", "scheduled": "queued"}
    said = [f"{words.get(s, s)} {', '.join(ids)}" for s, ids in sorted(by_state.items())]
    subject = "plurspool: " + ("; ".join(said) or "moved " + ", ".join(paths))
    if len(subject) > 72:
        subject = subject[:71] + "…"
    return subject + "\n\n" + "".join(f"{p}\n" for p in paths)


class Sync:
    """The [git] part of one sender: its gate and its committer, made from the config (and made
    again when a reload changes it)."""

    def __init__(self, spool: Spool, items: Items, log: Log) -> None:
        self.spool, self.items, self.log = spool, items, log
        self.config: GitConfig | None = None
        self.gate: Gate | None = None
        self.committer: Committer | None = None
        self.said: dict[str, str] = {}  # ID -> the hold last logged
        self.problem: str | None = None  # why nothing is sent: [git] needs a repository

    def configure(self, config: Config, *, starting: bool = False) -> None:
        """Follow `config`'s [git]; raises ConfigError at start when it needs a repository the
        spool is not in (after a reload, it is logged and every due post is held)."""
        if config.git == self.config:
            return
        if self.committer is not None:
            self.committer.close(0)  # it finishes what it has on its own; no send waits
        self.config, self.gate, self.committer, self.problem = config.git, None, None, None
        self.spool.touched = None
        if not (config.git.send_only_committed or config.git.autocommit):
            return
        root = self.spool.root
        try:
            repo = require_repo(config, root)
        except ConfigError as exc:
            if starting:
                raise
            self.problem = exc.message
            self.log.event("git", level="error", error=exc.message, hint=exc.hint)
            return
        if config.git.send_only_committed:
            self.gate = Gate(repo, root, config.git.branch, config.timezone)
        if config.git.autocommit:
            self.committer = Committer(repo, root, config.git, self.log, background=True)
            self.spool.touched = set()

    def admit(self, due: Sequence[Item], held: dict[str, str]) -> list[Item]:
        """The due posts that may be sent; the others into `held` (ID -> why), logged once."""
        if self.problem is not None and self.config and self.config.send_only_committed:
            found = {i.id: self.problem for i in due}
        elif self.gate is None or not due:
            return list(due)
        else:
            found = self.gate.held(due)
        for post_id, why in found.items():
            if self.said.get(post_id) != why:
                self.log.event("held", level="warning", id=post_id, reason=why)
        self.said = found
        held.update(found)
        return [i for i in due if i.id not in found]

    def pass_done(self) -> None:
        """Hand the files this pass changed to the committer (it runs in its own thread)."""
        touched = self.spool.touched
        if self.committer is None or touched is None:
            return
        self.spool.touched = set()
        if touched and self.gate is not None:
            touched = self._reviewed(touched)
        if touched or self.committer.pending or self.committer.unpushed:
            self.committer.submit(touched)

    def _reviewed(self, paths: set[Path]) -> set[Path]:
        """`paths` without those of posts held: autocommit must never approve a post."""
        assert self.gate is not None
        items = []
        ids = {p.name.rsplit(".", 1)[0] for p in paths}
        for state in ("new", "scheduled", "drafts", "failed"):  # a sent post was judged so
            for post_id in ids:
                entry = self.spool.stat_entry(state, post_id)
                if entry is not None:
                    items.append(self.items.load(entry))
        held = self.gate.held(items)
        return {p for p in paths if p.name.rsplit(".", 1)[0] not in held}

    def close(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) for the commits handed over."""
        if self.committer is not None:
            self.committer.close(timeout)
            self.committer = None
            self.config = None
