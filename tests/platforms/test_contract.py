"""One contract, every platform, end to end: the same tests against exec and each real peer.

Each test drives the real CLI (`plurspool post`, `check`, `send --once`, `accounts test`) in a
subprocess in a sandbox (tests/daemon_helpers.Sandbox: isolated env, spool and config), and
asserts on what the peer holds, read back through the platform's adapter
(tests/platforms/adapters.py): a plain post, a thread of three, CW and language, media with alt
text, over-long text refused by `check`, bad credentials as a clear permanent failure, a "too
many requests" answer deferring the post until the peer allows it, and a crash after the peer
answered but before plurspool recorded it, after which the post exists on the peer exactly once.
The same promises at the `Platform.send(job)` level, in process, are tests/platforms/contract.py's,
subclassed in each platform's test file.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from plurspool.post import Result, parse
from tests.daemon_helpers import Sandbox
from tests.helpers import Run, png
from tests.peers.bluesky_pds import pds as pds  # the session fixtures, used on demand
from tests.peers.mastodon_mock import mastodon_mock as mastodon_mock
from tests.peers.nostr_relays import nostr_relays as nostr_relays
from tests.platforms.adapters import (
    ACCOUNT,
    CRASH_SHIM,
    RETRY_DELAY,
    Adapter,
    BlueskyAdapter,
    ExecAdapter,
    MastodonAdapter,
    NostrAdapter,
    thread,
)

PLATFORMS = ["exec", "nostr", "mastodon", "bluesky"]


@pytest.fixture(
    params=[pytest.param(p, marks=() if p == "exec" else pytest.mark.peers) for p in PLATFORMS]
)
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Adapter]:
    """A fresh account on the peer of each platform in turn."""
    made: Adapter
    if request.param == "exec":
        made = ExecAdapter(tmp_path)
    elif request.param == "nostr":
        made = NostrAdapter(request.getfixturevalue("nostr_relays"), tmp_path)
    elif request.param == "mastodon":
        made = MastodonAdapter(request.getfixturevalue("mastodon_mock"), tmp_path)
    else:
        made = BlueskyAdapter(request.getfixturevalue("pds"), tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def box(tmp_path: Path, adapter: Adapter) -> Iterator[Sandbox]:
    """An isolated plurspool (env, spool, config) whose one account, `acct`, is on the peer."""
    made = Sandbox(tmp_path / "box")
    made.default_platforms.append(ACCOUNT)
    made.daemon_keys["retry_delay"] = f"{RETRY_DELAY:g}s"
    configure(made, adapter)
    try:
        yield made
    finally:
        made.cleanup()


def configure(box: Sandbox, adapter: Adapter) -> None:
    """(Re)write the config with the adapter's current account section."""
    box.accounts[ACCOUNT] = adapter.section()
    box.write_config()


def cli(box: Sandbox, *args: str, env: dict[str, str] | None = None) -> Run:
    return box.cli(*args, env=env, timeout=90.0)


def run_post(box: Sandbox, *args: str, env: dict[str, str] | None = None) -> Run:
    """`plurspool post -p acct --json ARGS`."""
    return cli(box, "post", "-p", ACCOUNT, "--json", *args, env=env)


def result_of(box: Sandbox, post_id: str) -> Result:
    """The account's result as the sent post's frontmatter records it."""
    return parse((box.spool / "sent" / f"{post_id}.md").read_bytes()).results[ACCOUNT]


def draft(box: Sandbox, name: str, body: str, front: str = "") -> Path:
    return box.deliver("drafts", name, f"---\nplatforms: [{ACCOUNT}]\n{front}---\n{body}\n")


def everything_written(box: Sandbox) -> str:
    """Every file plurspool may have written (spool, state), for secrets that must not be there."""
    roots = (box.spool, Path(box.env["XDG_STATE_HOME"]))
    files = [p for root in roots for p in root.rglob("*") if p.is_file()]
    return "\n".join(p.read_bytes().decode("latin-1") for p in files)  # the ledger too


def sent_view(run: Run) -> dict[str, Any]:
    assert run.code == 0, f"exit {run.code}\n{run.out}\n{run.err}"
    view: dict[str, Any] = run.json()
    assert view["state"] == "sent", view
    return view


def remote_ref(adapter: Adapter, view: dict[str, Any]) -> str:
    result_id = view["results"][ACCOUNT]["id"]
    assert result_id, view
    return adapter.ref_of(str(result_id))


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --- what a post becomes on the peer ----------------------------------------------------------


def test_plain_post(box: Sandbox, adapter: Adapter) -> None:
    text = f"plain post {uuid.uuid4().hex[:8]}"
    view = sent_view(run_post(box, text))
    [held] = adapter.posts()
    assert held.text == text
    assert (held.parent, held.cw, held.language, held.media) == (None, None, None, ())
    assert remote_ref(adapter, view) == held.ref
    assert box.ids("sent") == {view["id"]} and box.ids("scheduled") == set()
    recorded = result_of(box, view["id"])
    assert recorded.id == view["results"][ACCOUNT]["id"] and recorded.attempts == 1


def test_thread_of_three(box: Sandbox, adapter: Adapter) -> None:
    view = sent_view(run_post(box, "one\n---\ntwo\n---\nthree"))
    chain = thread(adapter.posts())
    assert [p.text for p in chain] == ["one", "two", "three"]
    assert remote_ref(adapter, view) == chain[0].ref


def test_cw_and_language_on_every_part(box: Sandbox, adapter: Adapter) -> None:
    view = sent_view(
        run_post(box, "--cw", "Spoilers for episode 3", "--lang", "de", "Der Butler\n---\nwar es")
    )
    chain = thread(adapter.posts())
    assert [p.text for p in chain] == ["Der Butler", "war es"]
    assert [(p.cw, p.language) for p in chain] == [("Spoilers for episode 3", "de")] * 2
    assert remote_ref(adapter, view) == chain[0].ref


def test_media_with_alt(box: Sandbox, adapter: Adapter) -> None:
    image = png(4, 3)
    (box.spool / "media").mkdir()
    (box.spool / "media" / "dot.png").write_bytes(image)
    alt = "Three rows of purple dots"
    if adapter.media == "refused":
        # No upload of its own: a local file cannot go out, and `check` says so before it tries.
        draft(box, "with-media", "look", f"media:\n  - path: media/dot.png\n    alt: {alt}\n")
        checked = cli(box, "check", "--json")
        assert checked.code == 3, checked.out + checked.err
        [report] = checked.json()
        assert any("media" in p and "media/dot.png" in p for p in report["problems"]), report
        refused = run_post(box, "--media", f"media/dot.png:{alt}", "look")
        assert refused.code == 3, refused.out + refused.err
        assert adapter.held_anywhere() == 0
        assert box.ids("scheduled") | box.ids("sent") | box.ids("failed") == set()
        return
    view = sent_view(run_post(box, "--media", f"media/dot.png:{alt}", "look\n---\nand more"))
    first, second = thread(adapter.posts())
    assert (first.text, second.text) == ("look", "and more")
    [media] = first.media
    assert (media.alt, media.data) == (alt, image)  # the bytes as the peer serves them back
    assert second.media == ()  # the media go with the first part
    if adapter.media == "payload":
        assert media.path == str(box.spool / "media" / "dot.png")
    assert remote_ref(adapter, view) == first.ref


def test_overlong_text_is_refused_by_check(box: Sandbox, adapter: Adapter) -> None:
    limit = adapter.max_length(box.env)
    if limit is None:
        pytest.skip("exec has no length limit: the command takes any text")
    fits = draft(box, "fits", "w" * limit)
    long = draft(box, "long", "w" * (limit + 1))
    assert cli(box, "check", str(fits)).code == 0
    checked = cli(box, "check", "--json", str(long))
    assert checked.code == 3, checked.out + checked.err
    [report] = checked.json()
    [problem] = report["problems"]
    assert ACCOUNT in problem and str(limit + 1) in problem and str(limit) in problem
    refused = run_post(box, "w" * (limit + 1))
    assert refused.code == 3, refused.out + refused.err
    assert adapter.held_anywhere() == 0
    assert box.ids("scheduled") | box.ids("sent") | box.ids("failed") == set()


def test_bad_credentials_fail_at_once_and_clearly(box: Sandbox, adapter: Adapter) -> None:
    words = adapter.bad_credentials()
    configure(box, adapter)
    run = run_post(box, "never posted")
    assert run.code == 1, run.out + run.err
    view = run.json()
    assert view["state"] == "failed" and view["attempts"] == 1, view  # permanent: no retry
    error = view["error"]
    assert error.startswith(f"{ACCOUNT}: "), error
    for word in words:
        assert word in error, (word, error)
    assert (box.spool / "failed" / f"{view['id']}.error").read_text().strip() == error.strip()
    assert adapter.held_anywhere() == 0
    if adapter.canary is not None:
        assert adapter.canary not in run.out + run.err
        assert adapter.canary not in everything_written(box)


@pytest.mark.realtime
def test_too_many_requests_defers_then_sends(box: Sandbox, adapter: Adapter) -> None:
    limit = adapter.rate_limit_once()
    configure(box, adapter)
    text = f"paced {uuid.uuid4().hex[:8]}"
    started = time.time()
    run = run_post(box, text)
    assert run.code == 1, run.out + run.err
    view = run.json()
    assert view["state"] == "scheduled", view  # deferred, not failed
    for word in limit.words:
        assert word in view["error"], (word, view["error"])
    assert view["retry_at"] is not None, view
    retry_at = epoch(view["retry_at"])  # whole seconds, rounded down
    assert retry_at >= int(limit.earliest(started)), (view, limit)
    assert adapter.held_anywhere() == 0
    # A pass that runs before that time leaves it alone.
    early = cli(box, "send", "--once")
    assert early.code == 0, early.err
    if time.time() < retry_at:
        assert box.ids("scheduled") == {view["id"]}
        assert adapter.held_anywhere() == 0
    # The first pass after it sends it, once.
    time.sleep(max(0.0, retry_at + 1.0 - time.time()))  # the time itself is the condition
    later = cli(box, "send", "--once")
    assert later.code == 0, later.err
    assert box.ids("sent") == {view["id"]}, later.err
    done = result_of(box, view["id"])
    assert done.attempts == 2 and done.id is not None, done
    [held] = adapter.posts()
    assert held.text == text and adapter.ref_of(done.id) == held.ref


@pytest.mark.parametrize("shape", ["post", "thread"])
def test_crash_after_the_peer_answered_sends_once(
    box: Sandbox, adapter: Adapter, tmp_path: Path, shape: str
) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(CRASH_SHIM, encoding="utf-8")
    parts = ["only once"] if shape == "post" else ["first", "second", "third"]
    # A post dies after its one request; a thread after its second (exec: its only run).
    after = 1 if shape == "post" else min(2, adapter.thread_requests)
    crash = {
        "PYTHONPATH": str(shim),
        "PLURSPOOL_TEST_CRASH": adapter.platform,
        "PLURSPOOL_TEST_CRASH_AFTER": str(after),
    }
    died = run_post(box, "\n---\n".join(parts), env=crash)
    assert died.code == 137, f"the crash shim did not fire: {died.code}\n{died.err}"
    [post_id] = box.ids("scheduled")
    assert box.ids("sent") | box.ids("failed") == set()
    # The peer has what went out; plurspool never learned of the last one. (Nostr's relays
    # answer in parallel: when one relay's answer kills it, the other may or may not have it.)
    held = adapter.held_anywhere()
    went_out = len(parts) if adapter.thread_requests == 1 else after  # exec: all in one run
    assert held >= 1 if isinstance(adapter, NostrAdapter) else held == went_out, held
    # Restart: the next pass finds what went through and sends only the rest.
    again = cli(box, "send", "--once")
    assert again.code == 0, again.err
    assert box.ids("sent") == {post_id}, again.err
    chain = thread(adapter.posts())
    assert [p.text for p in chain] == parts  # each exactly once
    recorded = result_of(box, post_id)
    assert recorded.id is not None and adapter.ref_of(recorded.id) == chain[0].ref
    assert recorded.attempts == 2, recorded  # the one that died counts
    if isinstance(adapter, ExecAdapter):
        # exec's part: run again with the same key, which the command dedupes on.
        keys = [r["env"]["PLURSPOOL_IDEMPOTENCY_KEY"] for r in adapter.invocations()]
        assert len(keys) == 2 and keys[0] == keys[1], keys


def test_every_platform_is_covered() -> None:
    from plurspool.platforms import PLATFORMS as ALL

    # outbox is exec's built-in sibling (a local file, no peer); every other one is here.
    assert sorted(set(ALL) - {"outbox"}) == sorted(PLATFORMS)


def test_every_platform_has_a_send_level_contract() -> None:
    """Each platform's test file subclasses tests/platforms/contract.py's PlatformContract."""
    import importlib

    from tests.platforms.contract import PlatformContract

    for name in PLATFORMS:
        module = importlib.import_module(f"tests.platforms.test_{name}")
        subclasses = [
            v
            for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, PlatformContract) and v is not PlatformContract
        ]
        assert subclasses, f"tests/platforms/test_{name}.py has no PlatformContract subclass"
