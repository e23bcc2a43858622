"""Fetch and read one feed (plurspool(1), FEEDS): http(s) only, conditional, at most MAX_BYTES
within TIMEOUT; RSS and Atom through feedparser; HTML summaries as plain text.

Whatever goes wrong is a `FeedError` with one line for the log and `feed list`. httpx and
feedparser are imported only here, inside the functions that need them.
"""

from __future__ import annotations

import functools
import re
import time
import urllib.parse
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

MAX_BYTES = 5 * 1024 * 1024  # a feed larger than this is refused
TIMEOUT = 20.0  # seconds for one fetch, all told
MAX_REDIRECTS = 5
USER_AGENT = "plurspool (feed)"


class FeedError(Exception):
    """Why a feed could not be read this time: one line, safe for the log and `feed list`."""


@dataclass(frozen=True)
class Entry:
    """A feed entry as a post needs it: its key (id, else link), title, link, summary."""

    key: str
    title: str
    url: str
    summary: str


@dataclass
class Fetched:
    """A fetch's answer: the body (None: 304, unchanged) and the validators to send next."""

    body: bytes | None
    url: str
    etag: str | None = None
    modified: str | None = None
    content_type: str = ""


def shown_url(url: str) -> str:
    """`url` as logs and errors show it: a password in it (https://me:PASSWORD@host/) masked."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a feed's address, or None: http:// or https:// with a host."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"{shown_url(url)[:80]!r} is not a URL"
    if parts.scheme not in ("http", "https") or not host:
        return f"{shown_url(url)[:80]!r} is not an http:// or https:// address"
    return None


@functools.cache
def _tls() -> Any:
    """httpx's default TLS context, made once: loading the CA bundle costs 40 ms or more, and
    the daemon polls every feed again and again."""
    import httpx

    return httpx.create_ssl_context(trust_env=False)


def fetch(
    url: str, etag: str | None = None, modified: str | None = None, timeout: float = TIMEOUT
) -> Fetched:
    """GET a feed, conditionally (ETag, Last-Modified), at most MAX_BYTES, within `timeout`."""
    import httpx

    problem = url_problem(url)
    if problem is not None:
        raise FeedError(problem)
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5",
    }
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    end = time.monotonic() + timeout

    def left() -> float:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise FeedError(f"gave up after {timeout:g}s: the server is too slow")
        return remaining

    try:
        with (
            httpx.Client(
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                trust_env=False,
                verify=_tls(),
                headers=headers,
            ) as client,
            client.stream("GET", url, timeout=httpx.Timeout(min(10.0, left()))) as response,
        ):
            final = str(response.url)
            if response.status_code == 304:
                return Fetched(None, final, etag, modified)
            if response.status_code != 200:
                raise FeedError(f"the server answered HTTP {response.status_code}")
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_BYTES:
                raise FeedError(_too_large(int(length)))
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise FeedError(_too_large(None))
                left()
            return Fetched(
                bytes(body),
                final,
                response.headers.get("etag"),
                response.headers.get("last-modified"),
                response.headers.get("content-type", ""),
            )
    except httpx.TimeoutException:
        raise FeedError(f"gave up after {timeout:g}s: the server is too slow") from None
    except httpx.TooManyRedirects:
        raise FeedError(f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.HTTPError as exc:
        said = str(exc).replace(url, shown_url(url))
        raise FeedError(f"cannot fetch it: {type(exc).__name__}: {said}"[:300]) from None


def _too_large(size: int | None) -> str:
    said = f" ({size / 1048576:.1f} MiB)" if size is not None else ""
    return f"the feed is larger than {MAX_BYTES // 1048576} MiB{said}: refused"


def parse(fetched: Fetched) -> list[Entry]:
    """The entries of a fetched RSS or Atom document, oldest first; FeedError when it is not
    a feed (malformed, with no entry to show for it)."""
    import feedparser

    assert fetched.body is not None
    headers = {"content-location": fetched.url}
    if fetched.content_type:
        headers["content-type"] = fetched.content_type
    # feedparser is given bytes, never a URL: it fetches nothing itself.
    doc: Any = feedparser.parse(fetched.body, response_headers=headers)
    if not doc.entries and (doc.bozo or not doc.version):
        why = doc.get("bozo_exception") or "it is neither RSS nor Atom"
        raise FeedError(f"not a feed: {' '.join(str(why).split())}"[:300])
    entries = []
    for raw in reversed(doc.entries):  # feeds list the newest first
        key = raw.get("id") or raw.get("link")
        if not key:
            continue  # nothing to know it by again: never posted (it could be, twice)
        entries.append(
            Entry(
                key=str(key),
                title=_text_of(raw, "title"),
                url=str(raw.get("link") or ""),
                summary=_text_of(raw, "summary"),
            )
        )
    return entries


def _text_of(raw: Any, name: str) -> str:
    value = str(raw.get(name) or "")
    kind = (raw.get(f"{name}_detail") or {}).get("type", "text/html")
    return " ".join(value.split()) if kind == "text/plain" else to_text(value)


class _Text(HTMLParser):
    BLOCKS = frozenset(
        "p div br li ul ol blockquote pre tr table section article h1 h2 h3 h4 h5 h6".split()  # noqa: SIM905
    )
    SKIP = frozenset(("script", "style"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.out.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data)


def to_text(html: str) -> str:
    """HTML as plain text: no markup, entities decoded, one blank line between paragraphs."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", "".join(parser.out)))
    # A line of `---` alone would start a new part of a thread (plurspool(5)).
    return "\n\n".join(p if p != "---" else "—" for p in paragraphs if p)
