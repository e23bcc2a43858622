"""`list --format json` from the per-state listings: whatever happens between two listings, the
answer is the one a parse of every file gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plurspool.app import App
from plurspool.config import load
from plurspool.spool import STATES
from plurspool.views import encode_json, sort_key
from tests.helpers import make_env, run_cli, write_config

IDS = ["p0", "p1", "p2"]
STATE_DIRS = ["scheduled", "scheduled", "drafts", "failed"]

actions = st.one_of(
    st.tuples(
        st.just("write"), st.sampled_from(IDS), st.sampled_from(STATE_DIRS), st.integers(0, 5)
    ),
    st.tuples(st.just("touch"), st.sampled_from(IDS), st.sampled_from(STATE_DIRS), st.just(0)),
    st.tuples(st.just("remove"), st.sampled_from(IDS), st.sampled_from(STATE_DIRS), st.just(0)),
    st.tuples(st.just("ledger"), st.sampled_from(IDS), st.just(""), st.just(0)),
    st.tuples(st.just("config"), st.just(""), st.just(""), st.integers(0, 1)),
    st.tuples(st.just("tear"), st.just(""), st.sampled_from(STATE_DIRS), st.integers(0, 10**6)),
    st.tuples(st.just("fresh"), st.just(""), st.just(""), st.just(0)),
)


def text_of(n: int) -> str:
    """Posts of several kinds: timed, untimed, invalid, with a result, two accounts."""
    return [
        "---\nschedule: 2030-01-0{d}T09:00:00Z\n---\npost {d}\n",
        "just a body, no frontmatter {d}\n",
        "---\nschedule: [not, a, time]\n---\nbroken {d}\n",
        "---\nschedule: 2030-02-0{d}T09:00:00+01:00\nplatforms: [outbox]\n---\nthread\n---\nb\n",
        "---\nschedule: 2029-12-3{e}T23:59:59Z\nresults:\n  outbox: {{id: x{d}}}\n---\nsent {d}\n",
        "---\nplatforms: [nobody]\n---\nunknown account {d}\n",
    ][n].format(d=n + 1, e=n % 2)


def reference(app: App, states: tuple[str, ...]) -> bytes:
    """What `list --format json` says, the slow way: every file parsed, every view built."""
    fresh = App(app.config, clock=app.clock)
    items = sorted(fresh.items.in_states(states), key=sort_key)
    return b"\n".join(encode_json(fresh.views.view(i)).encode() for i in items)


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(steps=st.lists(actions, min_size=1, max_size=25))
def test_listing_answers_like_a_full_parse(steps: list[tuple[str, str, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = make_env(Path(tmp))
        env["PLURSPOOL_SPOOL"] = str(Path(tmp) / "spool")
        config_path = write_config(env, 'default_platforms = ["outbox"]\n')
        app = App(load(config_path, env=env))
        app.spool.ensure()
        mtime = 1_900_000_000_000_000_000
        for action, post_id, state, n in steps:
            path = app.spool.path(state, post_id) if state in STATE_DIRS else None
            if action == "write" and path is not None:
                path.write_text(text_of(n), encoding="utf-8")
                mtime += 1_000_000  # a later save: never the same mtime twice
                os.utime(path, ns=(mtime, mtime))
            elif action == "touch" and path is not None and path.exists():
                mtime += 1_000_000
                os.utime(path, ns=(mtime, mtime))
            elif action == "remove" and path is not None:
                path.unlink(missing_ok=True)
            elif action == "ledger":
                app.ledger.delivery(post_id, "outbox")
                app.ledger.record(post_id, "outbox", "pending", error="later", next_at=2e9)
            elif action == "config":
                tz = ["UTC", "Europe/Berlin"][n]
                config_path.write_text(
                    f'default_platforms = ["outbox"]\ntimezone = "{tz}"\n', encoding="utf-8"
                )
                app = App(load(config_path, env=env))
            elif action == "tear":
                listing = app.state_dir / f"listing-{state}"
                if listing.exists():
                    data = listing.read_bytes()
                    cut = n % max(1, len(data))
                    listing.write_bytes(data[:cut] + b"\xff" + data[cut + 1 :])
            elif action == "fresh":
                app = App(app.config, clock=app.clock)  # a new process: nothing in memory
            for states in [("scheduled",), STATES]:
                assert app.views.view_lines(states) == reference(app, states), (action, states)
        for states in [("scheduled",), ("drafts",), STATES]:
            assert app.views.view_lines(states) == reference(app, states)


def test_an_unchanged_state_is_answered_from_its_listing_byte_for_byte(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    env["PLURSPOOL_SPOOL"] = str(tmp_path / "spool")
    app = App(load(write_config(env, ""), env=env))
    app.spool.ensure()
    for n in range(5):
        app.spool.path("scheduled", f"p{n}").write_text(text_of(0).replace("1T", f"{n + 1}T"))
    first = app.views.view_lines(("scheduled",))
    listing = app.state_dir / "listing-scheduled"
    assert listing.exists() and listing.stat().st_mode & 0o777 == 0o600
    # What is listed is the listing's tail, as it is on disk.
    assert listing.read_bytes().endswith(first)
    assert (
        App(app.config).views.view_lines(("scheduled",)) == first == reference(app, ("scheduled",))
    )
    assert App(app.config).views.view_lines(("sent",)) == b""  # nothing: `list` prints []


EVERY_PLATFORM = """\
[accounts.mastodon]
instance = "https://example.social"
[accounts.bluesky]
handle = "me.example.com"
[accounts.nostr]
relays = ["wss://relay.example.com"]
[accounts.exec]
command = ["true"]
[accounts.outbox]
"""


@pytest.mark.slow
def test_list_from_its_listing_loads_no_yaml_and_no_platform_module(tmp_path: Path) -> None:
    # The listing answers without reading a post, and the config checks every platform's
    # options without importing the modules that send: neither PyYAML nor a sender loads.
    env = make_env(tmp_path)
    write_config(env, EVERY_PLATFORM)
    for n in range(3):
        posted = run_cli(["post", "-s", "2030-01-01T09:00:00Z", "-p", "outbox", f"p{n}"], env)
        assert posted.code == 0, posted.err
    first = run_cli(["list", "--format", "json"], env)
    assert first.code == 0, first.err
    code = (
        "import sys\n"
        "from plurspool.__main__ import main\n"
        "sys.argv = ['plurspool', 'list', '--format', 'json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'yaml'\n"
        "          or m.startswith(('plurspool.post', 'plurspool.platforms.'))]\n"
        "print(sorted(loaded), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert proc.stdout == first.out
    assert sorted(p["preview"] for p in json.loads(proc.stdout)) == ["p0", "p1", "p2"]
    assert proc.stderr.strip() == "['plurspool.platforms.options']"


@pytest.mark.slow
def test_a_listing_is_checked_again_when_mastodon_learns_an_instances_limits(
    tmp_path: Path,
) -> None:
    # A post's problems depend on the limits a platform has cached for its server: a listing
    # made before `accounts test` (or a send) read them must not be answered after.
    from plurspool.platforms.mastodon_api import Limits, write_cached_limits

    env = make_env(tmp_path)
    write_config(env, '[accounts.mastodon]\ninstance = "https://example.social"\n')
    # One 600-character word: auto-split has no place to break it.
    posted = run_cli(["post", "-s", "2030-01-01T09:00:00Z", "w" * 600], env)
    assert posted.code == 0, posted.err

    def error() -> object:
        run = run_cli(["list", "--format", "json"], env)
        assert run.code == 0, run.err
        return json.loads(run.out)[0]["error"]

    assert error() is None  # 600 characters: only a warning while the limit is assumed
    state = Path(env["XDG_STATE_HOME"]) / "plurspool"
    instance = "https://example.social"
    write_cached_limits(state, instance, Limits(max_characters=500, known=True), 0.0)
    got = error()
    assert isinstance(got, str) and got.startswith('mastodon: part 1 of 1: "www'), got
    assert f"is 600 characters; {instance} allows 500" in got
    write_cached_limits(state, instance, Limits(max_characters=1000, known=True), 0.0)
    assert error() is None
