"""The crash campaign for reposts: kill the real daemon again and again while posts with
`repost:` (plurspool(5)) go to mastodon-mock and both Nostr relays.

    python -m tests.robustness.repost_campaign --kills 100 [--seed N] [--samples 2]

Every post reposts a fresh post of another account on each peer: a status of another mastodon
user, a note of another Nostr key, and (with the PDS installed) a post of another Bluesky
account. The kills are the campaign's (tests/robustness/campaign.py):
random SIGKILLs of the daemon, and, for a sample of posts, a kill before each mutating step of a
pass in turn. At the end each repost must be on its peer exactly once (one reblog of the status
by our user; one repost record of ours for the Bluesky post; at most one kind-6 event of our
key for the note on each relay, on at least one),
recorded in the post file with the peer's id, and every post in sent/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.robustness.campaign import Campaign, Figures, Spec, _mastodon_statuses, peers


class RepostCampaign(Campaign):
    """The campaign's sandbox and kills, with reposts instead of posts (no exec account: it
    has no reposts)."""

    def __init__(
        self, base: Path, *, seed: int, relays: list[str], mastodon: str, pds: Any, **kw: Any
    ):
        super().__init__(base, seed=seed, relays=relays, mastodon=mastodon, **kw)
        from tests.peers.mastodon_mock import Mock

        self.accounts = ["ns", "ma"]
        self.author = Mock(mastodon).new_user()  # whose statuses are reblogged
        self.pds = pds
        if pds is not None:  # our bluesky account, and another whose posts it reposts
            self.me, self.other = pds.new_account(), pds.new_account()
            password = base / "bluesky.password"
            password.write_text(self.me.app_password, encoding="utf-8")
            password.chmod(0o600)
            self.box.accounts["bs"] = (
                f'platform = "bluesky"\nhandle = "{self.me.handle}"\nservice = "{pds.url}"\n'
                f"password_file = {json.dumps(str(password))}\n"
            )
            self.accounts.append("bs")
        self.originals: dict[str, dict[str, str]] = {}  # post ID -> account -> original's id
        self.box.default_platforms = ["ma"]
        self.box.write_config()

    def _original(self, account: str) -> tuple[str, str]:
        """A fresh post of someone else's on the account's peer: (its address, its id)."""
        from plurspool.platforms import nostr_proto as proto
        from tests.peers.mastodon_mock import request

        if account == "ma":
            assert self.mastodon is not None
            body = {"status": f"original {self.n}"}
            code, st = request(self.mastodon, "POST", "/api/v1/statuses", body, self.author.token)
            assert code == 200, st
            return f"{self.mastodon}/@{self.author.username}/{st['id']}", str(st["id"])
        if account == "bs":
            record = {"$type": "app.bsky.feed.post", "text": f"o {self.n}", "createdAt": _now()}
            made: dict[str, Any] = {
                "repo": self.other.did,
                "collection": "app.bsky.feed.post",
                "record": record,
            }
            code, out, _ = self.pds.call(
                "com.atproto.repo.createRecord", body=made, token=self.other.access_jwt
            )
            assert code == 200, out
            return str(out["uri"]), str(out["uri"])
        event = proto.sign_event(os.urandom(31) + b"\x01", int(time.time()), [], f"o {self.n}")
        for url in self.relays:
            _publish(url, event)
        return f"nostr:{proto.note(event['id'])}", str(event["id"])

    def deliver(
        self,
        accounts: list[str] | None = None,
        parts: int | None = None,
        when: str | None = None,
        long: bool | None = None,
    ) -> Spec:
        """Write one repost into new/ as a careful writer does: to some accounts, each with an
        original of its own peer; due now, soon, or at a time intake resolves."""
        self.n += 1
        post_id = f"r{self.seed}-{self.n:04d}"
        if accounts is None:
            k = self.rng.randint(1, len(self.accounts))
            accounts = sorted(self.rng.sample(self.accounts, k))
        lines = [f"platforms: [{', '.join(accounts)}]", "repost:"]
        made = {}
        for account in accounts:
            address, original = self._original(account)
            lines.append(f"  {account}: '{address}'")
            made[account] = original
        roll = self.rng.random()
        if when is None and roll < 0.3:
            lines.append("schedule: 2s")
        elif when is None and roll < 0.5:
            lines.append("schedule: now")
        self.box.deliver("new", post_id, "---\n" + "\n".join(lines) + "\n---\n")
        self.originals[post_id] = made
        spec = Spec(post_id, accounts, [])
        self.specs[post_id] = spec
        self.figures.posts += 1
        return spec

    def verify(self) -> Figures:
        """Count every repost on every peer and in the spool; fill in the figures."""
        from plurspool.errors import PostError
        from plurspool.platforms import nostr_proto as proto
        from plurspool.post import Result, parse

        f = self.figures
        f.seconds = time.monotonic() - self.started
        on_peer = self._repost_counts()
        f.states = {}
        for state in ("new", "drafts", "scheduled", "sent", "failed", "tmp"):
            f.states[state] = len(list((self.box.spool / state).glob("*.md")))
        for post_id, spec in sorted(self.specs.items()):
            where = self.box.where(post_id)
            if len(where) != 1:
                (f.lost if not where else f.problems).append(f"{post_id}: in {where}")
                continue
            try:
                results = parse((self.box.spool / where[0] / f"{post_id}.md").read_bytes()).results
            except PostError as exc:
                f.problems.append(f"{post_id}: unreadable in {where[0]}/: {exc.one_line()}")
                continue
            if where[0] != "sent":
                f.problems.append(f"{post_id}: in {where[0]}/")
            for account in spec.accounts:
                seen = on_peer.get((account, self.originals[post_id][account]), [])
                rec = results.get(account, Result())
                ids = [proto.note(i) for i in seen] if account == "ns" else seen
                if len(set(ids)) > 1:
                    f.duplicates.append(f"{post_id} on {account}: {len(set(ids))} reposts {ids}")
                elif not ids:
                    f.lost.append(f"{post_id}: no repost on {account}")
                elif rec.error or rec.id not in ids:
                    f.problems.append(f"{post_id}: {account} recorded {rec}, the peer has {ids}")
        return f

    def _repost_counts(self) -> dict[tuple[str, str], list[str]]:
        """(account, original's id) -> the ids of our reposts of it on the peer (a Nostr event
        once per relay that holds it)."""
        from plurspool.platforms import nostr_proto as proto
        from tests.platforms.adapters import relay_query

        out: dict[tuple[str, str], list[str]] = {}
        statuses = _mastodon_statuses(self.mastodon or "", self.user)
        self.figures.per_peer["mastodon"] = len(statuses)
        for st in statuses:
            if st.get("reblog"):
                out.setdefault(("ma", str(st["reblog"]["id"])), []).append(str(st["id"]))
        if self.pds is not None:
            code, page, _ = self.pds.call(
                "com.atproto.repo.listRecords",
                params={"repo": self.me.did, "collection": "app.bsky.feed.repost", "limit": "100"},
            )
            assert code == 200, page
            records = list(page["records"])
            while page.get("cursor") and len(page["records"]) == 100:
                code, page, _ = self.pds.call(
                    "com.atproto.repo.listRecords",
                    params={
                        "repo": self.me.did,
                        "collection": "app.bsky.feed.repost",
                        "limit": "100",
                        "cursor": page["cursor"],
                    },
                )
                assert code == 200, page
                records += page["records"]
            self.figures.per_peer["bluesky"] = len(records)
            for r in records:
                out.setdefault(("bs", str(r["value"]["subject"]["uri"])), []).append(r["uri"])
        pubkey = proto.public_key(self.secret)
        for n, url in enumerate(self.relays):
            events = relay_query(url, {"authors": [pubkey], "kinds": [6], "limit": 5000})
            self.figures.per_peer[f"nostr relay {n + 1}"] = len(events)
            for ev in events:
                for tag in ev["tags"]:
                    if tag[:1] == ["e"]:
                        out.setdefault(("ns", tag[1]), []).append(ev["id"])
        return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _publish(url: str, event: dict[str, Any]) -> None:
    from websockets.sync.client import connect

    with connect(url, open_timeout=10, close_timeout=1.0) as ws:
        ws.send(json.dumps(["EVENT", event]))
        answer = json.loads(ws.recv(timeout=10))
        assert answer[:3] == ["OK", event["id"], True], answer


def run(
    base: Path,
    *,
    kills: int,
    seed: int,
    samples: int,
    relays: list[str],
    mastodon: str,
    pds: Any = None,
    log: Any = print,
) -> Figures:
    """A whole repost campaign in `base`: random kills, systematic kills, drain, count; with a
    bluesky account too when `pds` (tests/peers/bluesky_pds.Pds) is given."""
    c = RepostCampaign(base, seed=seed, relays=relays, mastodon=mastodon, pds=pds, log=log)
    try:
        c.warm_up()
        c.random_kills(kills)
        c.drain()
        c.systematic(samples)
        return c.verify()
    finally:
        c.box.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.robustness.repost_campaign", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--kills", type=int, default=100, help="random kills (default 100)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--samples", type=int, default=2, help="reposts killed at every step")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed: {seed}", flush=True)
    from tests.peers.bluesky_pds import ADMIN_ENV_VAR, ADMIN_PASSWORD, Pds, missing, running_pds

    with contextlib.ExitStack() as stack:
        relays, mastodon = stack.enter_context(peers(False))
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        pds = None
        if missing() is None:
            url = stack.enter_context(running_pds())
            pds = Pds(url, os.environ.get(ADMIN_ENV_VAR, ADMIN_PASSWORD))
        assert mastodon is not None
        figures = run(
            Path(tmp),
            kills=args.kills,
            seed=seed,
            samples=args.samples,
            relays=relays,
            mastodon=mastodon,
            pds=pds,
            log=lambda s: print(s, file=sys.stderr, flush=True),
        )
    print(figures.text(), flush=True)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
