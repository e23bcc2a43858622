"""Expiring posts in process, with a fake clock and a fake platform: `expires:` read and checked,
when a copy is due, the deletion pass (pacing, backoff, "already gone", crash between a deletion
and its record) and `deleted_at` written into the file in sent/."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from plurspool.deleting import Deletions
from plurspool.errors import InvalidInput
from plurspool.index import Index
from plurspool.log import Log
from plurspool.platforms.base import DeleteJob, Job, Outcome
from plurspool.post import Post, Result, parse, with_record
from tests.daemon_helpers import Sandbox, World, in_process, iso

MASTODON = 'platform = "mastodon"\ninstance = "https://example.social"\n'
NOSTR = 'platform = "nostr"\nrelays = ["ws://127.0.0.1:9"]\n'


@dataclass
class FakePlatform:
    """A platform that deletes by writing down what it was asked; answers as told."""

    answers: list[Outcome] = field(default_factory=list)
    jobs: list[DeleteJob] = field(default_factory=list)
    gone: set[tuple[str, str]] = field(default_factory=set)  # (account, remote id)

    def delete(self, job: DeleteJob) -> Outcome:
        self.jobs.append(job)
        outcome = self.answers.pop(0) if self.answers else Outcome("sent")
        if outcome.status == "sent":
            self.gone.add((job.account.name, str(job.result.id)))
        return outcome


@pytest.fixture
def world(tmp_path: Path) -> World:
    box = Sandbox(tmp_path)
    box.accounts["masto"] = MASTODON
    box.accounts["nos"] = NOSTR
    box.exec_account("x", default=False)
    box.default_platforms.append("masto")
    return in_process(box)


def sent_post(
    w: World,
    post_id: str,
    *,
    expires: str | None,
    sent: float,
    accounts: tuple[str, ...] = ("masto",),
) -> None:
    """A post in sent/ as the sender leaves it: results with ids and `at`."""
    front = [f"schedule: {iso(sent)}", f"platforms: [{', '.join(accounts)}]"]
    if expires is not None:
        front.append(f"expires: {expires}")
    data = ("---\n" + "\n".join(front) + "\n---\nBye soon.\n").encode()
    results = {a: Result(id=f"{a}-{post_id}", url=None, attempts=1, at=iso(sent)) for a in accounts}
    w.box.deliver("sent", post_id, with_record(data, results, 1).decode())


def deletions(w: World, fake: FakePlatform) -> Deletions:
    return Deletions(w.app, Log(stream=w.log), platform=lambda name: fake)


def test_expires_reads_a_duration_or_a_time_and_nothing_else() -> None:
    assert parse(b"---\nexpires: 1d\n---\nx\n").expires.seconds == 86400  # type: ignore[union-attr]
    timed = parse(b"---\nexpires: 2026-12-24T18:00\n---\nx\n").expires
    assert timed is not None and timed.seconds is None and timed.line == 2
    for bad in ("tomorrow", "0s", "-1h", '""'):
        with pytest.raises(Exception, match=r"line 2: `expires`"):
            parse(f"---\nexpires: {bad}\n---\nx\n".encode())


def test_an_expiry_before_the_send_time_is_a_check_error_with_key_and_line(world: World) -> None:
    w = world
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    early = (at - timedelta(hours=1)).isoformat()
    text = f"---\nschedule: {at.isoformat()}\nexpires: {early}\n---\nx\n"
    w.box.deliver("scheduled", "early", text)
    item = w.app.items.find("early")
    assert item.problem is not None
    assert item.problem.startswith("line 3: `expires`") and "send time" in item.problem
    # In new/, judged against the send time as intake resolves it.
    w.box.deliver("new", "rel", f"---\nschedule: 3h\nexpires: {iso(w.now + 3600)}\n---\nx\n")
    verdict = w.app.items.judge_new(w.app.items.find("rel"))
    assert verdict.problem is not None and verdict.problem.startswith("line 3: `expires`")
    # A later time and any duration are fine.
    w.box.deliver("new", "ok", f"---\nschedule: 3h\nexpires: {iso(w.now + 5 * 3600)}\n---\nx\n")
    assert w.app.items.judge_new(w.app.items.find("ok")).problem is None


def test_a_sent_post_is_due_its_duration_after_it_was_sent_per_deletable_account(
    world: World,
) -> None:
    w = world
    sent_post(w, "p", expires="2h", sent=w.now - 60, accounts=("masto", "x"))
    sent_post(w, "q", expires=None, sent=w.now - 60)
    item = w.app.items.find("p")
    assert item.summary is not None and item.summary.expires == w.now - 60 + 7200  # not `x`
    view = w.app.views.view(item)
    assert view["expires_at"] == iso(w.now - 60 + 7200) and view["deleted_at"] is None
    dues = {e.id: t for e, t, _ in w.app.items.due_index("sent")}
    assert dues == {"p": w.now - 60 + 7200, "q": None}


def test_expired_copies_are_deleted_and_deleted_at_recorded_nothing_else_changes(
    world: World,
) -> None:
    w = world
    sent_post(w, "p", expires="1h", sent=w.now - 3600 - 5, accounts=("masto", "nos"))
    sent_post(w, "later", expires="1d", sent=w.now - 60)
    before = (w.box.spool / "sent" / "p.md").read_bytes()
    fake = FakePlatform()
    d = deletions(w, fake)
    done = d.run(d.expired())
    assert done.deleted == {"p": ["masto", "nos"]} and done.recorded == ["p"]
    assert fake.gone == {("masto", "masto-p"), ("nos", "nos-p")}
    post = w.box.post("sent", "p")
    assert {a: r.deleted_at for a, r in post.results.items()} == {
        "masto": iso(w.now),
        "nos": iso(w.now),
    }
    after = (w.box.spool / "sent" / "p.md").read_bytes()
    assert after.split(b"results:")[0] == before.split(b"results:")[0]  # the rest as it was
    assert parse(after).parts == parse(before).parts
    view = w.app.views.view(w.app.items.find("p"))
    assert view["deleted_at"] == iso(w.now) and view["expires_at"] is None
    assert view["results"]["masto"]["deleted_at"] == iso(w.now)
    # Nothing more is due: another pass deletes nothing.
    assert deletions(w, fake).expired() == []
    assert len(fake.jobs) == 2


def test_a_temporary_failure_backs_off_and_a_permanent_one_stays_failed(world: World) -> None:
    w = world
    w.box.daemon_keys["retry_delay"] = "10m"
    w.reload()
    sent_post(w, "p", expires="1m", sent=w.now - 120)
    fake = FakePlatform([Outcome("temporary", error="HTTP 503")])
    done = deletions(w, fake).run(deletions(w, fake).expired())
    assert done.deleted == {} and "p" in done.deferred
    assert done.wake is not None and 480 <= done.wake - w.now <= 720
    assert w.box.post("sent", "p").results["masto"].deleted_at is None
    # Before the backoff ends nothing is tried.
    w.tick(60)
    assert deletions(w, fake).run(deletions(w, fake).expired()).deleted == {}
    assert len(fake.jobs) == 1
    w.tick(3600)
    fake.answers = [Outcome("permanent", error="HTTP 403: forbidden")]
    done = deletions(w, fake).run(deletions(w, fake).expired())
    assert done.failed == {"p": {"masto": "HTTP 403: forbidden"}}
    assert w.app.ledger.deletions("p")["masto"].status == "failed"
    assert deletions(w, fake).run(deletions(w, fake).expired()).failed == done.failed
    assert len(fake.jobs) == 2  # not tried again
    assert w.box.post("sent", "p").results["masto"].deleted_at is None
    shown = w.app.views.show(w.app.items.find("p"))
    assert shown["error"] == "masto: not deleted: HTTP 403: forbidden"


def test_a_crash_between_a_deletion_and_its_record_does_not_fail_the_next_pass(
    world: World,
) -> None:
    w = world
    sent_post(w, "p", expires="1m", sent=w.now - 120)
    fake = FakePlatform()
    d = deletions(w, fake)
    # The platform deleted it and the ledger knows, but the file was never written (a crash).
    original = d._record_claimed
    d._record_claimed = lambda item, out: None  # type: ignore[method-assign]
    d.run(d.expired())
    assert w.app.ledger.deletions("p")["masto"].status == "deleted"
    assert w.box.post("sent", "p").results["masto"].deleted_at is None
    d._record_claimed = original  # type: ignore[method-assign]
    done = d.run(d.expired())
    assert done.recorded == ["p"] and done.failed == {}
    assert len(fake.jobs) == 1  # recorded from the ledger: not deleted twice
    assert w.box.post("sent", "p").results["masto"].deleted_at == iso(w.now)


def test_a_crash_before_the_ledger_heard_deletes_again_and_already_gone_counts(
    world: World,
) -> None:
    w = world
    sent_post(w, "p", expires="1m", sent=w.now - 120)
    # An attempt began and its outcome was lost: the row says pending, one attempt.
    w.app.ledger.begin_deletion("p", "masto")
    fake = FakePlatform()  # "sent": the platform treats its 404 as gone
    done = deletions(w, fake).run(deletions(w, fake).expired())
    assert done.deleted == {"p": ["masto"]} and done.failed == {}
    assert w.box.post("sent", "p").results["masto"].deleted_at == iso(w.now)


def test_forty_deletions_due_at_once_on_one_mastodon_account_are_paced(world: World) -> None:
    w = world
    for n in range(40):  # the later the name, the earlier it expired
        sent_post(w, f"p{n:02}", expires="1m", sent=w.now - 120 - n)
    fake = FakePlatform()
    d = deletions(w, fake)
    first = d.run(d.expired())
    assert len(first.deleted) == 30 and first.failed == {}
    assert set(first.deferred) == {f"p{n:02}" for n in range(10)}  # the last to expire wait
    assert first.wake == pytest.approx(w.now + 1800)
    assert all("rate limit delete:masto 30/30 minutes" in why for why in first.deferred.values())
    w.tick(1799)
    assert deletions(w, fake).run(deletions(w, fake).expired()).deleted == {}
    w.tick(1)
    second = deletions(w, fake).run(deletions(w, fake).expired())
    assert len(second.deleted) == 10 and second.failed == {} and second.deferred == {}
    gone = {p for p, accounts in [*first.deleted.items(), *second.deleted.items()]}
    assert gone == {f"p{n:02}" for n in range(40)}
    assert all(w.box.post("sent", f"p{n:02}").results["masto"].deleted_at for n in range(40))


def test_a_server_hold_on_deletions_waits_without_failing(world: World) -> None:
    w = world
    for n in range(3):
        sent_post(w, f"p{n}", expires="1m", sent=w.now - 120 + n)
    fake = FakePlatform([Outcome("sent", hold=600.0)])
    first = deletions(w, fake).run(deletions(w, fake).expired())
    assert list(first.deleted) == ["p0"]
    # The hold is the deletions' own: the account's sends do not wait for it.
    assert w.app.ledger.holds(w.now) == {"delete:masto": w.now + 600}
    second = deletions(w, fake).run(deletions(w, fake).expired())
    assert second.deleted == {} and set(second.deferred) == {"p1", "p2"}
    w.tick(601)
    third = deletions(w, fake).run(deletions(w, fake).expired())
    assert sorted(third.deleted) == ["p1", "p2"]


def test_the_deletion_job_carries_every_part_this_host_sent(world: World) -> None:
    w = world
    sent_post(w, "p", expires="1m", sent=w.now - 120)
    parts = [{"id": "1", "url": None}, {"id": "2", "url": None}]
    w.app.ledger.begin_attempt("p", "masto", material={"parts": parts})
    w.app.ledger.record("p", "masto", "sent", remote_id="1")
    fake = FakePlatform()
    deletions(w, fake).run(deletions(w, fake).expired())
    [job] = fake.jobs
    assert job.sent["parts"] == parts and job.result.id == "masto-p"


def test_deleted_at_survives_a_rewrite_of_the_results() -> None:
    data = b"---\nschedule: 2026-12-01T09:00:00Z\n---\nx\n"
    gone = Result(id="1", attempts=1, at="2026-12-01T09:00:01Z", deleted_at="2026-12-02T09:00Z")
    written = with_record(data, {"m": gone}, 1)
    assert parse(written).results["m"] == gone
    assert b"deleted_at: '2026-12-02T09:00Z'" in written or b"deleted_at: 2026" in written


def test_nostr_events_of_an_expiring_post_carry_a_nip40_expiration_tag() -> None:
    from plurspool.platforms import nostr

    def job(text: bytes) -> Job:
        return cast(Job, SimpleNamespace(post=parse(text), timezone=UTC))

    now = 1_800_000_000.0
    due = int(now) - 60  # a post's time: created_at, the same on every host
    assert nostr._expiration(job(b"---\nexpires: 2h\n---\nx\n"), due, now) == [
        ["expiration", str(due + 7200)]
    ]
    at = job(b"---\nexpires: 2030-01-01T00:00:00Z\n---\nx\n")
    assert nostr._expiration(at, due, now) == [["expiration", "1893456000"]]
    assert nostr._expiration(job(b"x\n"), due, now) == []
    # Sent so late that it would have expired already: relays would refuse it; no tag.
    assert nostr._expiration(job(b"---\nexpires: 1m\n---\nx\n"), due, now) == []


def test_the_daemons_sent_index_wakes_for_expiries_only_and_parses_nothing_else(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plurspool.post

    w = world
    sent_post(w, "soon", expires="1h", sent=w.now - 3600 + 10)
    sent_post(w, "gone", expires="1m", sent=w.now - 120)
    for n in range(20):
        sent_post(w, f"plain{n}", expires=None, sent=w.now - 120)
    index = Index(w.app.items, w.app.spool, w.app.clock, "sent")
    index.rescan()  # parses every file once, into the parse cache
    assert index.next_due() == w.now - 120 + 60
    # A daemon started later reads the times from the cache: no file is parsed for them.
    w.app.items._cache.clear()
    parses: list[bytes] = []
    real = plurspool.post.parse

    def counting(data: bytes) -> Post:
        parses.append(data)
        return real(data)

    monkeypatch.setattr(plurspool.post, "parse", counting)
    index = Index(w.app.items, w.app.spool, w.app.clock, "sent")
    index.rescan()
    assert len(parses) == 2  # the two expiring ones, kept warm: due within a minute
    assert [i.id for i in index.take_due(w.now)] == ["gone"]
    assert index.invalid() == []
    fake = FakePlatform()
    done = deletions(w, fake).run(index.take_due(w.now))
    for post_id in done.recorded:
        index.refresh(post_id)
    assert index.take_due(w.now) == [] and index.next_due() == w.now - 3600 + 10 + 3600
    w.tick(10)
    assert [i.id for i in index.take_due(w.now)] == ["soon"]


def test_a_deferral_is_logged_once_not_every_pass(world: World) -> None:
    w = world
    for n in range(31):
        sent_post(w, f"p{n:02}", expires="1m", sent=w.now - 120 + n)
    d = deletions(w, FakePlatform())
    for _ in range(3):
        w.tick(1)
        d.run(d.expired())
    assert w.log.getvalue().count("delete-deferred") == 1


def test_a_new_time_after_the_posts_expiry_is_refused_and_changes_nothing(world: World) -> None:
    w = world
    text = f"---\nschedule: {iso(w.now + 3600)}\nexpires: {iso(w.now + 7200)}\n---\nx\n"
    path = w.box.deliver("scheduled", "p", text)
    before = path.read_bytes()
    with pytest.raises(InvalidInput, match=r"line 3: `expires` .* is not after the post's send"):
        w.app.queue.reschedule(w.app.items.find("p"), "3h")
    assert path.read_bytes() == before
    w.app.queue.reschedule(w.app.items.find("p"), "90m")  # before it: fine
    assert w.app.items.find("p").due == datetime.fromtimestamp(w.now + 5400, UTC)


def test_intake_fails_a_post_expiring_before_its_send_time_with_key_and_line(world: World) -> None:
    w = world
    text = f"---\nschedule: 2h\nexpires: {iso(w.now + 600)}\n---\nx\n"
    w.box.deliver("new", "early", text)
    result = w.run()
    assert result.failed == ["early"] and w.box.is_in("early", "failed")
    error = (w.box.spool / "failed" / "early.error").read_text()
    assert error.startswith("line 3: `expires`") and "send time" in error
    assert (w.box.spool / "failed" / "early.md").read_text() == text  # byte for byte


def test_an_expiry_time_a_dst_change_skips_is_a_problem_never_a_traceback(
    tmp_path: Path,
) -> None:
    box = Sandbox(tmp_path)
    box.accounts["masto"] = MASTODON
    box.default_platforms.append("masto")
    box.top = 'timezone = "Europe/Berlin"'
    w = in_process(box)
    w.box.deliver("drafts", "gap", "---\nexpires: 2026-03-29T02:30\n---\nx\n")
    item = w.app.items.find("gap")
    assert item.problem is not None and item.problem.startswith("line 2: `expires`: ")
    assert "does not exist" in item.problem
    sent_post(w, "sentgap", expires="2026-03-29T02:30", sent=w.now - 60)
    sent = w.app.items.find("sentgap")  # edited so in sent/: nothing is deleted, nothing raises
    assert sent.summary is not None and sent.summary.expires is None


def test_a_post_claimed_by_someone_else_waits_and_says_why(world: World) -> None:
    w = world
    sent_post(w, "p", expires="1m", sent=w.now - 120)
    fake = FakePlatform()
    with w.app.locks.claim("p"):
        done = deletions(w, fake).run(deletions(w, fake).expired())
    assert done.deleted == {} and fake.jobs == []
    assert done.deferred == {"p": "another plurspool is changing it right now"}
    assert done.wake is not None and done.wake <= w.now + 1
    assert deletions(w, fake).run(deletions(w, fake).expired()).deleted == {"p": ["masto"]}


def test_a_host_deletes_only_the_accounts_it_sends(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.accounts["masto"] = MASTODON
    box.accounts["nos"] = NOSTR
    box.default_platforms += ["masto", "nos"]
    box.extra = '[senders]\nelsewhere = ["masto"]\n'  # plurspool(5), SEVERAL MACHINES
    w = in_process(box)
    sent_post(w, "p", expires="1m", sent=w.now - 120, accounts=("masto", "nos"))
    fake = FakePlatform()
    done = deletions(w, fake).run(deletions(w, fake).expired())
    assert done.deleted == {"p": ["nos"]}
    results = w.box.post("sent", "p").results
    assert results["masto"].deleted_at is None and results["nos"].deleted_at is not None


@pytest.mark.slow  # real git: a few processes
def test_send_once_hands_the_deleted_at_it_writes_to_git_autocommit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plurspool.config import load
    from plurspool.daemon import Daemon
    from plurspool.log import NullLog
    from tests.helpers import git

    box = Sandbox(tmp_path)
    box.accounts["masto"] = MASTODON
    box.default_platforms.append("masto")
    box.extra = "[git]\nautocommit = true\n"
    for name, value in (("GIT_AUTHOR_NAME", "h"), ("GIT_AUTHOR_EMAIL", "h@example.invalid")):
        monkeypatch.setenv(name, value)
        monkeypatch.setenv(name.replace("AUTHOR", "COMMITTER"), value)
    (box.spool / ".gitignore").write_text("tmp/\n")
    git(box.spool, "init", "-q")
    w = in_process(box)
    sent_post(w, "p", expires="1m", sent=w.now - 120)
    git(box.spool, "add", "-A")
    git(box.spool, "commit", "-q", "-m", "a spool")
    daemon = Daemon(lambda: load(box.config_path, env=box.env), NullLog())
    daemon.deletions.platform = lambda name: FakePlatform()
    daemon.once()
    assert box.post("sent", "p").results["masto"].deleted_at is not None
    changed = git(box.spool, "show", "--name-only", "--format=", "HEAD").stdout.split()
    assert changed == ["sent/p.md"]
    assert git(box.spool, "status", "--porcelain").stdout == ""


def test_a_deletion_asked_for_that_must_wait_is_made_by_a_later_pass(world: World) -> None:
    """`plurspool delete` that cannot finish now (a temporary failure, a server hold) is kept
    in the ledger: the next pass (the daemon's, `send --once`'s) makes it, no expiry needed."""
    w = world
    w.box.daemon_keys["retry_delay"] = "1m"
    w.reload()
    sent_post(w, "p", expires=None, sent=w.now - 120, accounts=("masto", "nos"))
    sent_post(w, "q", expires=None, sent=w.now - 120)
    fake = FakePlatform([Outcome("temporary", error="HTTP 503", retry_after=60)])
    first = deletions(w, fake).ask(w.app.items.find("p"), ["masto"])
    assert first.deleted == {} and first.deferred["p"].startswith("masto: HTTP 503; retry in")
    assert first.wake is not None and first.wake - w.now <= 600
    w.app.ledger.hold("delete:masto", w.now + 600)  # the server: no deletions for 10 minutes
    held = deletions(w, fake).ask(w.app.items.find("q"), ["masto"])
    assert held.deleted == {} and "q" in held.deferred and len(fake.jobs) == 1
    assert [i.id for i in deletions(w, fake).expired()] == ["p", "q"]
    w.tick(601)
    later = deletions(w, fake)  # a fresh pass, as the daemon's
    done = later.run(later.expired())
    assert done.deleted == {"p": ["masto"], "q": ["masto"]} and done.failed == {}
    results = w.box.post("sent", "p").results
    assert results["masto"].deleted_at is not None and results["nos"].deleted_at is None
    assert w.box.post("sent", "q").results["masto"].deleted_at is not None
    assert [j.account.name for j in fake.jobs] == ["masto", "masto", "masto"]
    assert deletions(w, fake).expired() == []  # nothing pending any more


def test_a_deletion_failed_for_good_calls_the_failure_hook_once(world: World) -> None:
    w = world
    sent_post(w, "p", expires="1m", sent=w.now - 120)
    fake = FakePlatform([Outcome("permanent", error="HTTP 403: forbidden")])
    called: list[tuple[str, str, str]] = []
    d = Deletions(
        w.app, Log(stream=w.log), platform=lambda name: fake, on_failure=lambda *a: called.append(a)
    )
    assert d.run(d.expired()).failed == {"p": {"masto": "HTTP 403: forbidden"}}
    assert d.run(d.expired()).failed and len(fake.jobs) == 1  # a failure stands: not again
    assert called == [("p", "HTTP 403: forbidden", "masto")]
