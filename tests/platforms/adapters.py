"""One adapter per platform for the contract suite (tests/platforms/test_contract.py).

An adapter makes a fresh account on its peer and writes its config section, reads back what the
peer holds for that account (as `Posted` entries, whatever the peer calls them), makes the peer
refuse once with its own way of saying "too many requests", gives bad credentials, and names the
crash point of its platform for the crash shim (`CRASH_SHIM`).

- exec: the "peer" is tests/fake_exec.py's record file. It is run once per post with every part in
  its JSON; a command is expected to dedupe on PLURSPOOL_IDEMPOTENCY_KEY, so what it "holds" is
  one post per key (`invocations` keeps the raw runs).
- nostr: both test relays (rust-nostr's LocalRelay and nostr-relay), counted with REQ on each;
  `posts` insists that both hold the same notes (min_relays = 2).
- mastodon: mastodon-mock; a fresh account's statuses, with their source text.
- bluesky: the reference PDS; a fresh account's `app.bsky.feed.post` records (listRecords).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Literal

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection, serve

from plurspool.platforms import nostr_proto as proto
from plurspool.platforms.nostr import MAX_CONTENT
from tests.helpers import run_cli, verify_nostr_event
from tests.peers.bluesky_pds import Pds
from tests.peers.mastodon_mock import Mock

FAKE_EXEC = Path(__file__).resolve().parents[1] / "fake_exec.py"
ACCOUNT = "acct"  # the account name every adapter configures
RETRY_DELAY = 3.0  # seconds: the config's daemon.retry_delay, for a retry without Retry-After

# A sitecustomize.py for `plurspool` subprocesses: with $PLURSPOOL_TEST_CRASH naming a platform,
# the process dies (os._exit(137), as a SIGKILL would leave it) right after the
# $PLURSPOOL_TEST_CRASH_AFTER-th request that creates a post on the peer has been answered, and
# before plurspool records that answer. Other Python processes that inherit the variables (an
# exec account's command) only get the patches, which they never call.
CRASH_SHIM = """\
import os
import threading

_KIND = os.environ.get("PLURSPOOL_TEST_CRASH")
if _KIND:
    _AFTER = int(os.environ.get("PLURSPOOL_TEST_CRASH_AFTER", "1"))
    _lock = threading.Lock()
    _seen = [0]

    def _answered():
        with _lock:
            _seen[0] += 1
            if _seen[0] >= _AFTER:
                os._exit(137)

    if _KIND == "exec":
        from plurspool.platforms import exec as _exec

        _real_send = _exec.Exec.send

        def _send(self, job):
            outcome = _real_send(self, job)  # the command ran and exited
            _answered()
            return outcome

        _exec.Exec.send = _send
    elif _KIND == "nostr":
        import json
        from websockets.sync.client import ClientConnection

        _real_recv = ClientConnection.recv

        def _recv(self, *args, **kwargs):
            raw = _real_recv(self, *args, **kwargs)
            try:
                msg = json.loads(raw)
            except (TypeError, ValueError):
                return raw
            if isinstance(msg, list) and msg[:1] == ["OK"] and len(msg) > 2 and msg[2] is True:
                _answered()  # a relay accepted an event
            return raw

        ClientConnection.recv = _recv
    elif _KIND == "mastodon":
        from plurspool.platforms import mastodon_api as _mastodon

        _real_call = _mastodon.Client.call

        def _call(self, method, *args, **kwargs):
            out = _real_call(self, method, *args, **kwargs)
            if method in ("status_post", "status_reblog"):
                _answered()
            return out

        _mastodon.Client.call = _call
    elif _KIND == "bluesky":
        from plurspool.platforms import bluesky_xrpc as _bluesky

        _real_call = _bluesky.Client.call

        def _call(self, nsid, **kwargs):
            out = _real_call(self, nsid, **kwargs)
            if nsid == "com.atproto.repo.createRecord":
                _answered()
            return out

        _bluesky.Client.call = _call
"""


# The exec account's command: fake_exec.py (which records every run as it starts), and, when it
# exits 0, the run's idempotency key appended to a "delivered" file: what the peer accepted.
EXEC_PEER = """\
import importlib.util, os, sys

fake, record, control, delivered = sys.argv[1:5]
spec = importlib.util.spec_from_file_location("fake_exec", fake)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
code = module.main([fake, record, control])
sys.stdout.flush()
if code == 0:
    with open(delivered, "a", encoding="utf-8") as f:
        f.write(os.environ["PLURSPOOL_IDEMPOTENCY_KEY"] + "\\n")
sys.exit(code)
"""


def secret_file(path: Path, text: str) -> Path:
    """A secret in a mode-0600 file (plurspool refuses one that others can read)."""
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def toml(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- what a peer holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class PeerMedia:
    """An attachment as the peer holds it: its alt text, its bytes when the peer serves them,
    and (exec) the path the command was given."""

    alt: str
    data: bytes | None = None
    path: str | None = None


@dataclass(frozen=True)
class Posted:
    """One post (one thread part) as the peer holds it, in the peer's own terms."""

    ref: str  # the peer's id for it
    text: str
    parent: str | None  # ref of the post it replies to
    root: str | None  # ref of the thread's first post, where the peer records it
    cw: str | None
    language: str | None
    media: tuple[PeerMedia, ...] = ()


def thread(posts: list[Posted]) -> list[Posted]:
    """The posts as one reply chain, first to last; fails unless they form exactly one."""
    roots = [p for p in posts if p.parent is None]
    assert len(roots) == 1, f"not one thread: {posts}"
    chain = roots
    while len(chain) < len(posts):
        children = [p for p in posts if p.parent == chain[-1].ref]
        assert len(children) == 1, f"{chain[-1].ref} has replies {children}"
        chain.append(children[0])
    for p in chain[1:]:
        assert p.root in (None, chain[0].ref), p  # where the peer records a root, it is part 1
    return chain


@dataclass
class RateLimit:
    """A one-time "too many requests" arranged on the peer.

    `earliest` is the first moment the peer allows the request again (epoch seconds), once it
    is known; `words` are what plurspool's error must contain.
    """

    words: tuple[str, ...]
    wait: float | None = None  # seconds from the request (None: `reset` says when)
    reset: float | None = None  # an absolute time, set when the peer answered

    def earliest(self, started: float) -> float:
        """The earliest retry the peer allows, for a request made after `started`."""
        if self.reset is not None:
            return self.reset
        assert self.wait is not None
        return started + self.wait


class Adapter:
    """What the contract suite needs from a platform; one subclass per platform."""

    platform: ClassVar[str]
    media: ClassVar[Literal["upload", "payload", "refused"]]
    thread_requests: ClassVar[int]  # post-creating requests for a thread of three
    canary: str | None = None  # the bad secret: it must never show anywhere

    def section(self) -> str:
        """The config's [accounts.acct] body (TOML) for the current account and endpoints."""
        raise NotImplementedError

    def posts(self) -> list[Posted]:
        """Every post the peer holds for the account (exactly once each, or it fails)."""
        raise NotImplementedError

    def held_anywhere(self) -> int:
        """How many distinct posts the peer holds anywhere (for nostr: on any relay)."""
        return len(self.posts())

    def ref_of(self, result_id: str) -> str:
        """The peer's ref for the remote id plurspool recorded."""
        return result_id

    def max_length(self, env: dict[str, str]) -> int | None:
        """The platform's length limit, as `check` knows it in `env`; None: no limit."""
        raise NotImplementedError

    def bad_credentials(self) -> tuple[str, ...]:
        """Give the account bad credentials; what the permanent error must say."""
        raise NotImplementedError

    def rate_limit_once(self) -> RateLimit:
        """Make the peer refuse the next post-creating request once, as it does when limited."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop whatever the adapter started."""


# --- exec -----------------------------------------------------------------------------------


class ExecAdapter(Adapter):
    platform = "exec"
    media = "payload"
    thread_requests = 1  # one run carries every part

    def __init__(self, base: Path) -> None:
        self.record = base / "exec.record.jsonl"
        self.control_path = base / "exec.control.json"
        self.delivered = base / "exec.delivered"
        self.script = base / "exec_peer.py"
        self.script.write_text(EXEC_PEER, encoding="utf-8")
        self.control(stdout="{key}")  # the remote id is the idempotency key

    def control(self, **control: Any) -> None:
        tmp = self.control_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(control), encoding="utf-8")
        os.replace(tmp, self.control_path)

    def section(self) -> str:
        argv = [sys.executable, str(self.script), str(FAKE_EXEC), str(self.record)]
        argv += [str(self.control_path), str(self.delivered)]
        return f'platform = "exec"\ncommand = {toml(argv)}\n'

    def invocations(self) -> list[dict[str, Any]]:
        """Every run of the command: its JSON input and PLURSPOOL_* environment."""
        try:
            text = self.record.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def posts(self) -> list[Posted]:
        out: list[Posted] = []
        try:
            accepted = set(self.delivered.read_text(encoding="utf-8").split())
        except FileNotFoundError:
            accepted = set()
        seen: set[str] = set()
        for run in self.invocations():
            key = run["env"]["PLURSPOOL_IDEMPOTENCY_KEY"]
            assert run["stdin"]["idempotency_key"] == key
            if key in seen or key not in accepted:
                continue  # a command that dedupes on the key posts it once
            seen.add(key)
            payload = run["stdin"]
            media = tuple(
                PeerMedia(m["alt"] or "", Path(m["path"]).read_bytes(), m["path"])
                for m in payload["media"]
            )
            parent = None
            for i, text in enumerate(payload["parts"]):
                ref = key if i == 0 else f"{key}#{i}"
                out.append(
                    Posted(
                        ref,
                        text,
                        parent,
                        key if i else None,
                        payload["cw"],
                        payload["language"],
                        media if i == 0 else (),
                    )
                )
                parent = ref
        return out

    def max_length(self, env: dict[str, str]) -> int | None:
        return None

    def bad_credentials(self) -> tuple[str, ...]:
        # A command's credentials are its own business: it says so by a permanent exit status.
        self.control(exit=77, stderr="authentication failed: the token was refused")
        return ("exited 77", "authentication failed")

    def rate_limit_once(self) -> RateLimit:
        # EX_TEMPFAIL is how a command says "not now"; it has no Retry-After, so the retry
        # comes after daemon.retry_delay (with its jitter of -20 %).
        self.control(stdout="{key}", fail_first=1, fail_exit=75, stderr="429 Too Many Requests")
        return RateLimit(("exited 75", "429"), wait=RETRY_DELAY * 0.8)


# --- nostr ----------------------------------------------------------------------------------


def relay_query(url: str, flt: dict[str, Any], timeout: float = 10.0) -> list[dict[str, Any]]:
    """The events a relay holds that match `flt` (REQ until EOSE)."""
    events = []
    sub = "q" + uuid.uuid4().hex[:8]
    with connect(url, open_timeout=timeout, close_timeout=1.0) as ws:
        ws.send(json.dumps(["REQ", sub, flt]))
        end = time.monotonic() + timeout
        while True:
            msg = json.loads(ws.recv(timeout=max(0.01, end - time.monotonic())))
            if msg[:2] == ["EVENT", sub]:
                events.append(msg[2])
            elif msg[:2] == ["EOSE", sub]:
                return events


class RateLimitingRelay:
    """A relay in front of a real one that answers its first EVENT `OK false "rate-limited:"`
    (NIP-01's prefix for it) and passes everything else through both ways."""

    def __init__(self, upstream: str, refusals: int = 1) -> None:
        self.upstream = upstream
        self.left = refusals
        self.refused: list[str] = []
        self.lock = threading.Lock()
        self.server: Server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _refuse(self) -> bool:
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True

    def _handle(self, ws: ServerConnection) -> None:
        with connect(self.upstream, open_timeout=10.0, close_timeout=1.0, max_size=2**22) as up:

            def pump() -> None:
                with contextlib.suppress(ConnectionClosed, OSError):
                    for message in up:
                        ws.send(message)
                with contextlib.suppress(ConnectionClosed, OSError):
                    ws.close()

            back = threading.Thread(target=pump, daemon=True)
            back.start()
            with contextlib.suppress(ConnectionClosed, OSError):
                for raw in ws:
                    msg = json.loads(raw)
                    if isinstance(msg, list) and msg[:1] == ["EVENT"] and self._refuse():
                        event_id = str(msg[1].get("id", ""))
                        self.refused.append(event_id)
                        ws.send(json.dumps(["OK", event_id, False, "rate-limited: slow down"]))
                        continue
                    up.send(raw)
        back.join(5)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


class NostrAdapter(Adapter):
    platform = "nostr"
    media = "refused"
    thread_requests = 6  # three events, each accepted by two relays

    def __init__(self, relays: list[str], base: Path) -> None:
        self.relays = list(relays)
        self.endpoints = list(relays)  # what the config names (proxies when rate-limited)
        self.secret = os.urandom(31) + b"\x01"  # always inside the curve order
        self.pubkey = proto.public_key(self.secret)
        self.key_path = secret_file(base / "nostr.key", proto.nsec(self.secret))
        self.proxies: list[RateLimitingRelay] = []

    def section(self) -> str:
        return (
            f'platform = "nostr"\nrelays = {toml(self.endpoints)}\n'
            f'key_file = "{self.key_path}"\nmin_relays = {len(self.endpoints)}\n'
        )

    def _held(self, url: str) -> dict[str, dict[str, Any]]:
        events = relay_query(url, {"authors": [self.pubkey], "kinds": [1], "limit": 500})
        held: dict[str, dict[str, Any]] = {}
        for ev in events:
            assert ev["id"] not in held, f"{url} returned {ev['id']} twice"
            assert verify_nostr_event(ev), ev
            held[ev["id"]] = ev
        return held

    def held_anywhere(self) -> int:
        return len(set().union(*(self._held(url) for url in self.relays)))

    def posts(self) -> list[Posted]:
        per_relay = [self._held(url) for url in self.relays]
        for url, held in zip(self.relays[1:], per_relay[1:], strict=True):
            assert set(held) == set(per_relay[0]), f"{self.relays[0]} and {url} hold other notes"
        out = []
        for ev in per_relay[0].values():
            tags = ev["tags"]
            marked = {t[3]: t[1] for t in tags if t[0] == "e" and len(t) > 3}
            root = marked.get("root")
            cw = next((t[1] for t in tags if t[0] == "content-warning"), None)
            language = next((t[1] for t in tags if t[0] == "l" and t[2:3] == ["ISO-639-1"]), None)
            out.append(
                Posted(ev["id"], ev["content"], marked.get("reply", root), root, cw, language)
            )
        return out

    def ref_of(self, result_id: str) -> str:
        kind, data = proto.bech32_decode(result_id)
        assert kind == "note", result_id
        return data.hex()

    def max_length(self, env: dict[str, str]) -> int | None:
        return MAX_CONTENT

    def bad_credentials(self) -> tuple[str, ...]:
        # Relays ask for no login: the only credential is the key, and this one is unusable.
        self.canary = "nsec1canary" + "q" * 52
        secret_file(self.key_path, self.canary)
        return ("nostr key", "key_file")

    def rate_limit_once(self) -> RateLimit:
        self.proxies = [RateLimitingRelay(url) for url in self.relays]
        self.endpoints = [p.url for p in self.proxies]
        # OK false carries no time to wait: the retry comes after daemon.retry_delay.
        return RateLimit(("rate-limited",), wait=RETRY_DELAY * 0.8)

    def close(self) -> None:
        for proxy in self.proxies:
            proxy.close()


# --- mastodon -------------------------------------------------------------------------------


class MastodonAdapter(Adapter):
    platform = "mastodon"
    media = "upload"
    thread_requests = 3

    def __init__(self, mock: Mock, base: Path) -> None:
        self.mock = mock
        self.user = mock.new_user()
        self.token_path = secret_file(base / "mastodon.token", self.user.token)
        self.faults = False

    def section(self) -> str:
        return (
            f'platform = "mastodon"\ninstance = "{self.mock.url}"\n'
            f'token_file = "{self.token_path}"\n'
        )

    def posts(self) -> list[Posted]:
        out = []
        for s in self.mock.statuses(self.user):
            media = []
            for a in s.get("media_attachments") or []:
                data = None
                url = str(a.get("url") or "")
                if url.startswith("http://127.0.0.1:"):
                    with urllib.request.urlopen(url, timeout=10) as resp:
                        data = resp.read()
                media.append(PeerMedia(str(a.get("description") or ""), data))
            out.append(
                Posted(
                    str(s["id"]),
                    str(self.mock.source(self.user, str(s["id"]))["text"]),
                    s.get("in_reply_to_id"),
                    None,
                    s.get("spoiler_text") or None,
                    s.get("language"),
                    tuple(media),
                )
            )
        return out

    def max_length(self, env: dict[str, str]) -> int | None:
        # The instance's own limit is known once `accounts test` has read and cached it.
        run = run_cli(["accounts", "test", ACCOUNT, "--json"], env)
        assert run.code == 0, run.err
        [report] = run.json()
        assert report["limits_known"] is True, report
        limit: int = report["max_characters"]
        return limit

    def bad_credentials(self) -> tuple[str, ...]:
        self.canary = "CANARY-TOKEN-" + uuid.uuid4().hex
        secret_file(self.token_path, self.canary)
        return ("HTTP 401", "token_file")

    def rate_limit_once(self) -> RateLimit:
        wait = 3
        reset = datetime.fromtimestamp(time.time() + wait, UTC).isoformat()
        self.mock.add_fault(
            {
                "match": {"methods": ["POST"], "path": "/api/v1/statuses"},
                "effect": {
                    "type": "ratelimit",
                    "headers": {"Retry-After": str(wait), "X-RateLimit-Reset": reset},
                },
                "count": 1,
            }
        )
        self.faults = True
        return RateLimit(("HTTP 429",), wait=float(wait))

    def close(self) -> None:
        if self.faults:
            self.mock.clear_faults()


# --- bluesky --------------------------------------------------------------------------------


class RateLimitingProxy:
    """An HTTP proxy in front of the PDS that answers the first request to `path` as the PDS's
    own rate limiter does (429 RateLimitExceeded, RateLimit-* headers, an epoch reset time).

    With `exhaust`, that request goes through instead, and its answer carries the headers of
    the last request a window allows (`RateLimit-Remaining: 0`)."""

    HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})

    def __init__(self, upstream: str, path: str, wait: int = 3, exhaust: bool = False) -> None:
        target = urllib.parse.urlsplit(upstream)
        assert target.hostname is not None and target.port is not None
        self.host, self.port = target.hostname, target.port
        self.path, self.wait, self.exhaust = path, wait, exhaust
        self.seen: list[tuple[str, float]] = []  # (path, when) of every request
        self.left = 1
        self.limit = RateLimit(("429", "RateLimitExceeded"))
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy.forward(self)

            def do_POST(self) -> None:
                proxy.forward(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _refuse(self, path: str) -> bool:
        with self.lock:
            if self.left <= 0 or urllib.parse.urlsplit(path).path != self.path:
                return False
            self.left -= 1
            return True

    def forward(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        self.seen.append((urllib.parse.urlsplit(h.path).path, time.time()))
        limited = self._refuse(h.path)
        if limited:
            now = time.time()
            reset = int(now) + self.wait
            self.limit.reset = float(reset)
        if limited and not self.exhaust:
            self._answer(
                h,
                429,
                {
                    "Content-Type": "application/json; charset=utf-8",
                    "RateLimit-Limit": "5000",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(reset),
                    "RateLimit-Policy": "5000;w=3600",
                },
                b'{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}',
            )
            return
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in self.HOP}
            conn.request(h.command, h.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            kept = {k: v for k, v in resp.getheaders() if k.lower() not in self.HOP}
            if limited:
                kept = {k: v for k, v in kept.items() if not k.lower().startswith("ratelimit")}
                kept["RateLimit-Limit"] = "5000"
                kept["RateLimit-Remaining"] = "0"
                kept["RateLimit-Reset"] = str(int(self.limit.reset or 0))
            self._answer(h, resp.status, kept, data)
        finally:
            conn.close()

    @staticmethod
    def _answer(h: BaseHTTPRequestHandler, code: int, headers: dict[str, str], data: bytes) -> None:
        h.send_response(code)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class BlueskyAdapter(Adapter):
    platform = "bluesky"
    media = "upload"
    thread_requests = 3

    def __init__(self, pds: Pds, base: Path) -> None:
        self.pds = pds
        self.me = pds.new_account()
        self.service = pds.url
        self.password_path = secret_file(base / "bluesky.password", self.me.app_password)
        self.proxy: RateLimitingProxy | None = None

    def section(self) -> str:
        return (
            f'platform = "bluesky"\nhandle = "{self.me.handle}"\nservice = "{self.service}"\n'
            f'password_file = "{self.password_path}"\n'
        )

    def posts(self) -> list[Posted]:
        out = []
        for r in self.pds.records(self.me.did):
            value = r["value"]
            text, cw = value["text"], None
            if text.startswith("CW: ") and "\n\n" in text:
                # Bluesky has no content warning: the platform shows it as a first line.
                head, text = text.split("\n\n", 1)
                cw = head.removeprefix("CW: ")
            reply = value.get("reply") or {}
            images = (value.get("embed") or {}).get("images") or []
            media = tuple(
                PeerMedia(i.get("alt", ""), self.pds.blob(self.me.did, i["image"]["ref"]["$link"]))
                for i in images
            )
            langs = value.get("langs") or [None]
            out.append(
                Posted(
                    r["uri"],
                    text,
                    (reply.get("parent") or {}).get("uri"),
                    (reply.get("root") or {}).get("uri"),
                    cw,
                    langs[0],
                    media,
                )
            )
        return out

    def max_length(self, env: dict[str, str]) -> int | None:
        from plurspool.platforms.bluesky import MAX_GRAPHEMES

        return MAX_GRAPHEMES

    def bad_credentials(self) -> tuple[str, ...]:
        self.canary = "canary-Pa55word-" + uuid.uuid4().hex[:8]
        secret_file(self.password_path, self.canary)
        return ("app password", "password_file", self.me.handle)

    def rate_limit_once(self) -> RateLimit:
        self.proxy = RateLimitingProxy(self.pds.url, "/xrpc/com.atproto.repo.createRecord")
        self.service = self.proxy.url
        return self.proxy.limit

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
