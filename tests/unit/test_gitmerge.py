"""`gitmerge.merged`: which unmerged post files a host's own `pull --rebase` may settle, and
what it makes of them (plurspool(5), SEVERAL MACHINES); git is a table of blobs here, the
real rebases are in tests/system/test_many_hosts.py."""

from __future__ import annotations

from pathlib import Path

from plurspool.gitmerge import merged
from plurspool.post import Result, parse, with_record

BASE = b"---\nschedule: 2026-12-04T09:00:00Z\n---\nOne post, two hosts\n"


def sent(data: bytes, *accounts: str, at: str = "2026-12-04T09:00:01Z") -> bytes:
    results = {a: Result(id=f"{a}-1", attempts=1, at=at) for a in accounts}
    return with_record(data, results, 1)


def settle(path: str, upstream: bytes, mine: bytes) -> bytes | None:
    blobs = {"up": upstream, "mine": mine}

    def git(top: Path, *args: str, **_: object) -> bytes:
        assert args[:2] == ("cat-file", "blob"), args
        return blobs[args[2]]

    stages = {2: ("100644", "up"), 3: ("100644", "mine")}
    return merged(git, Path("/repo"), "posts/", path, stages)


def test_two_sent_copies_of_one_post_keep_the_remotes() -> None:
    up = sent(BASE, "x", "y")
    mine = sent(BASE, "x", "y", at="2026-12-04T09:00:07Z")
    assert settle("posts/sent/p.md", up, mine) == up


def test_two_hosts_results_in_scheduled_are_joined_on_the_remotes_copy() -> None:
    up, mine = sent(BASE, "x"), sent(BASE, "y")
    data = settle("posts/scheduled/p.md", up, mine)
    assert data is not None
    post = parse(data)
    assert set(post.results) == {"x", "y"} and post.results["x"].id == "x-1"
    assert post.parts == ("One post, two hosts",)
    assert settle("posts/scheduled/p.md", up, sent(BASE)) == up  # nothing of mine to add


def test_anything_else_is_left_to_the_user() -> None:
    other = BASE.replace(b"One post", b"Another post")
    later = BASE.replace(b"09:00:00Z", b"10:00:00Z")
    assert settle("posts/sent/p.md", sent(BASE, "x"), sent(other, "x")) is None
    assert settle("posts/scheduled/p.md", sent(BASE, "x"), sent(later, "y")) is None
    assert settle("posts/drafts/p.md", BASE, other) is None
    assert settle("notes/sent/p.md", sent(BASE, "x"), sent(BASE, "x")) is None
    assert settle("posts/sent/p.md", b"not a post\x00", sent(BASE, "x")) is None
