"""Bluesky link cards (plurspool(5), `card`): fetch a page carefully, read its preview from
OpenGraph, Twitter-card or `<title>` tags, and make its image a thumbnail that fits a blob.

Intake calls `resolve` once per post; sending reads only what it stored. Every fetch is bounded:
`https://` or loopback `http://` only, each redirect checked again (at most 5), no cookies, at
most 1 MiB read, 10 s in all. Whatever goes wrong is a `CardError` with a reason for the log
and `check`, never an exception the caller must know about. httpx and Pillow are imported
only here, inside the functions that need them.
"""

from __future__ import annotations

import ipaddress
import time
import urllib.parse
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

TIMEOUT = 10.0  # seconds for the page and its image together
MAX_BYTES = 1024 * 1024  # read from the page, and from the image
MAX_REDIRECTS = 5
THUMB_BYTES = 1_000_000  # Bluesky's limit for an external embed's thumb blob
THUMB_SIDE = 1200  # pixels; cards are shown far smaller
PAGE_TYPES = ("text/html", "application/xhtml+xml")
USER_AGENT = "plurspool (link card)"


class CardError(Exception):
    """Why no card (or no image for it) could be made: one line, safe to log."""


@dataclass(frozen=True)
class Preview:
    """A resolved card: the page's URL, title and description, and a JPEG thumbnail."""

    url: str
    title: str
    description: str
    thumb: bytes | None
    image_error: str | None = None  # why the page's image is not in the card


def allowed(url: str) -> str | None:
    """Why `url` may not be fetched, or None: https, or http to a loopback host only."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return f"{url[:80]} is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and _loopback(host):
        return None
    if parts.scheme == "http":
        return f"http:// is fetched from loopback hosts only, not {host or 'nothing'}"
    return f"only https:// addresses are fetched, not {parts.scheme or 'this'}:"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Clock:
    """The time left of the one budget a card has."""

    def __init__(self, budget: float) -> None:
        self.end = time.monotonic() + budget

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise CardError("gave up: the page took longer than the time allowed")
        return left


def _get(client: Any, url: str, clock: _Clock, kinds: tuple[str, ...]) -> tuple[str, bytes]:
    """(final URL, body) of `url`, following redirects by hand, each one checked."""
    import httpx

    for _ in range(MAX_REDIRECTS + 1):
        reason = allowed(url)
        if reason is not None:
            raise CardError(reason)
        client.cookies.clear()  # no cookies, not even a redirect's own
        timeout = httpx.Timeout(clock.left())
        try:
            with client.stream("GET", url, timeout=timeout) as response:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    url = urllib.parse.urljoin(url, location)
                    continue
                if response.status_code != 200:
                    raise CardError(f"{url[:80]} answered HTTP {response.status_code}")
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if not any(kind == k or (k.endswith("/") and kind.startswith(k)) for k in kinds):
                    raise CardError(f"{url[:80]} is {kind or 'of no stated type'}, not {kinds[0]}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise CardError(f"{url[:80]} is larger than {MAX_BYTES // 1024} KiB")
                    clock.left()
                return url, bytes(body)
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.TimeoutException):
                raise CardError("gave up: the page took longer than the time allowed") from None
            raise CardError(f"{url[:80]}: {type(exc).__name__}") from None
    raise CardError(f"more than {MAX_REDIRECTS} redirects")


class _Meta(HTMLParser):
    """The head's preview tags: og:*, twitter:*, and the <title>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "meta":
            a = {k.lower(): v or "" for k, v in attrs}
            key = (a.get("property") or a.get("name") or "").lower()
            if key and key not in self.meta and a.get("content"):
                self.meta[key] = a["content"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and len(self.title) < 1000:
            self.title += data


def parse_page(html: str, url: str) -> tuple[str, str, str | None]:
    """(title, description, absolute image URL or None) from OpenGraph, else Twitter-card
    tags, else the <title>."""
    p = _Meta()
    p.feed(html)
    p.close()

    def first(*keys: str) -> str:
        for key in keys:
            value = " ".join(p.meta.get(key, "").split())
            if value:
                return value
        return ""

    title = first("og:title", "twitter:title") or " ".join(p.title.split())
    description = first("og:description", "twitter:description", "description")
    image = first("og:image", "og:image:url", "twitter:image", "twitter:image:src")
    return title[:300], description[:1000], urllib.parse.urljoin(url, image) if image else None


def thumbnail(data: bytes) -> bytes:
    """`data` as a JPEG of at most THUMB_SIDE pixels a side and THUMB_BYTES bytes; Pillow's
    decompression-bomb limit refuses an image too large to open."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > (Image.MAX_IMAGE_PIXELS or 0):
                    raise CardError(
                        f"the image is {width}x{height} pixels, too many to open "
                        "(Pillow's decompression-bomb limit)"
                    )
                img.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
                rgb = img.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CardError(
            "the image has too many pixels to open (Pillow's decompression-bomb limit)"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise CardError("the image cannot be read") from None
    side = THUMB_SIDE
    while side >= 100:
        rgb.thumbnail((side, side))
        for quality in (85, 70, 55):
            out = io.BytesIO()
            rgb.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= THUMB_BYTES:
                return out.getvalue()
        side //= 2
    raise CardError("the image does not fit Bluesky's blob limit")


def resolve(url: str, *, timeout: float = TIMEOUT) -> Preview:
    """Fetch `url`'s page and its image; raises CardError when there is no page to show."""
    import httpx

    from .base import Abandoned, wait_within

    clock = _Clock(timeout)
    try:
        # A read's own timeout is fixed when it starts: the whole budget is kept by waiting
        # for the fetch from here, and leaving it behind (a daemon thread) when it is spent.
        return wait_within(
            lambda: clock.end - time.monotonic(),
            lambda: _resolve(url, clock, httpx),
            "link card",
        )
    except Abandoned:
        raise CardError("gave up: the page took longer than the time allowed") from None


def _resolve(url: str, clock: _Clock, httpx: Any) -> Preview:
    headers = {"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml"}
    with httpx.Client(follow_redirects=False, headers=headers, trust_env=False) as client:
        final, body = _get(client, url, clock, PAGE_TYPES)
        title, description, image = parse_page(body.decode("utf-8", "replace"), final)
        if not title:
            raise CardError(f"{final[:80]} has no title to show")
        thumb, image_error = None, None
        if image is not None:
            try:
                _, data = _get(client, image, clock, ("image/",))
                thumb = thumbnail(data)
            except CardError as exc:
                image_error = str(exc)
    return Preview(url, title, description, thumb, image_error)
