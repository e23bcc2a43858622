"""Link cards against hostile pages (plurspool(5), `card`): a web server on 127.0.0.1 serves a
good page and every kind of bad one; each bad one is refused with its reason, within bounds,
and intake still queues the post, its file unchanged but for the card written back."""

from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from plurspool.platforms import linkcard
from plurspool.post import parse
from tests.daemon_helpers import Sandbox, in_process
from tests.helpers import png

GOOD = b"""<!doctype html><html><head>
<title>Ignored when og:title is there</title>
<meta property="og:title" content="A &amp; B: the page">
<meta property="og:description" content="What it is about.">
<meta property="og:image" content="/cat.png">
<meta name="twitter:title" content="Not this one">
</head><body>hello</body></html>"""


def bomb() -> bytes:
    """A PNG that says it is 40000x40000 pixels: small to send, ruinous to decode."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


Route = Callable[[BaseHTTPRequestHandler], None]


def answer(code: int, kind: str, body: bytes, **headers: str) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(code)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            h.send_header(name.replace("_", "-"), value)
        h.end_headers()
        h.wfile.write(body)

    return route


def slow(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.end_headers()
    try:
        for _ in range(100):  # a byte every 0.2 s: each read is quick, the page never ends
            h.wfile.write(b"<")
            h.wfile.flush()
            time.sleep(0.2)
    except OSError:
        pass


def huge(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.end_headers()
    try:
        for _ in range(64):  # 4 MiB, without a Content-Length
            h.wfile.write(b"<p>" + b"x" * 65533)
    except OSError:
        pass


ROUTES: dict[str, Route] = {
    "/good": answer(200, "text/html; charset=utf-8", GOOD, Set_Cookie="s=1"),
    "/cat.png": answer(200, "image/png", png(40, 30)),
    "/twitter": answer(
        200,
        "text/html",
        b'<meta name="twitter:title" content="T"><meta name="twitter:image" content="/cat.png">',
    ),
    "/title": answer(200, "text/html", b"<html><title>\n Just  a title </title></html>"),
    "/huge": huge,
    "/slow": slow,
    "/binary": answer(200, "application/octet-stream", b"<title>not a page</title>"),
    "/bomb-page": answer(
        200, "text/html", b'<title>B</title><meta property="og:image" content="/bomb.png">'
    ),
    "/bomb.png": answer(200, "image/png", bomb()),
    "/loop": answer(302, "text/html", b"", Location="/loop2"),
    "/loop2": answer(302, "text/html", b"", Location="/loop"),
    "/away": answer(301, "text/html", b"", Location="http://example.com/page"),
    "/hop": answer(302, "text/html", b"", Location="/good"),
}


class Pages:
    def __init__(self) -> None:
        seen: list[tuple[str, str | None]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.path, self.headers.get("Cookie")))
                route = ROUTES.get(self.path)
                if route is None:
                    answer(404, "text/plain", b"no")(self)
                else:
                    route(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pages() -> Iterator[Pages]:
    p = Pages()
    yield p
    p.close()


def refused(url: str, timeout: float = linkcard.TIMEOUT) -> str:
    with pytest.raises(linkcard.CardError) as caught:
        linkcard.resolve(url, timeout=timeout)
    return str(caught.value)


def test_a_good_page_gives_opengraph_fields_and_a_jpeg_thumb(pages: Pages) -> None:
    card = linkcard.resolve(pages.url + "/hop")  # through a redirect
    assert (card.url, card.title, card.description) == (
        pages.url + "/hop",
        "A & B: the page",
        "What it is about.",
    )
    assert card.thumb is not None and card.thumb.startswith(b"\xff\xd8\xff")
    assert card.image_error is None
    # No cookie went back, not even the one the page set.
    assert [path for path, _ in pages.seen] == ["/hop", "/good", "/cat.png"]
    assert all(cookie is None for _, cookie in pages.seen)


def test_twitter_tags_then_the_title_stand_in_for_opengraph(pages: Pages) -> None:
    card = linkcard.resolve(pages.url + "/twitter")
    assert card.title == "T" and card.thumb is not None
    card = linkcard.resolve(pages.url + "/title")
    assert (card.title, card.description, card.thumb) == ("Just a title", "", None)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/huge", "is larger than 1024 KiB"),
        ("/binary", "is application/octet-stream, not text/html"),
        ("/loop", "more than 5 redirects"),
        ("/away", "http:// is fetched from loopback hosts only, not example.com"),
        ("/missing", "answered HTTP 404"),
    ],
)
def test_a_hostile_page_is_refused_with_its_reason(pages: Pages, path: str, reason: str) -> None:
    assert reason in refused(pages.url + path)


def test_only_https_or_loopback_http_is_fetched() -> None:
    assert linkcard.allowed("https://example.com/") is None
    assert linkcard.allowed("http://[::1]:8080/") is None
    assert "loopback hosts only" in (linkcard.allowed("http://10.0.0.1/") or "")
    assert "only https://" in (linkcard.allowed("file:///etc/passwd") or "")


@pytest.mark.realtime
def test_a_slow_page_is_given_up_within_the_time_allowed(pages: Pages) -> None:
    start = time.monotonic()
    assert "took longer than the time allowed" in refused(pages.url + "/slow", timeout=1.0)
    assert time.monotonic() - start < 2.5


def test_an_image_bomb_is_refused_and_the_card_keeps_its_text(pages: Pages) -> None:
    card = linkcard.resolve(pages.url + "/bomb-page")
    assert card.title == "B" and card.thumb is None
    assert card.image_error == (
        "the image has too many pixels to open (Pillow's decompression-bomb limit)"
    )


# -- at intake: the card written back, or a warning; the post queued either way --------------


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path / "box")
    sandbox.accounts["b"] = 'platform = "bluesky"\nhandle = "me.example.com"\n'
    sandbox.default_platforms.append("b")
    try:
        yield sandbox
    finally:
        sandbox.cleanup()


POST = "---\n# my note\nschedule: 2099-01-01T09:00:00Z  # far off\n---\nRead {url} today.\n"


def test_intake_writes_the_card_back_and_stores_its_image(box: Sandbox, pages: Pages) -> None:
    world = in_process(box)
    text = POST.format(url=pages.url + "/good")
    box.deliver("new", "link", text)
    world.run()
    data = (box.spool / "scheduled" / "link.md").read_bytes()
    head, body = text.split("---\n")[1], text.split("---\n", 2)[2]
    assert data.decode().startswith("---\n" + head)  # every byte before it kept
    assert data.decode().endswith("---\n" + body)
    card = parse(data).card
    assert card is not None and card.mode == "set"
    assert (card.url, card.title, card.image) == (
        pages.url + "/good",
        "A & B: the page",
        "media/cards/link.jpg",
    )
    assert (box.spool / "media" / "cards" / "link.jpg").read_bytes().startswith(b"\xff\xd8")


@pytest.mark.parametrize("path", ["/huge", "/binary", "/loop", "/away"])
def test_a_failed_fetch_is_a_warning_and_the_post_is_queued_unchanged(
    box: Sandbox, pages: Pages, path: str
) -> None:
    world = in_process(box)
    text = POST.format(url=pages.url + path)
    box.deliver("new", "link", text)
    world.run()
    assert (box.spool / "scheduled" / "link.md").read_text() == text
    warnings = [line for line in world.log.getvalue().splitlines() if " card id=link " in line]
    assert len(warnings) == 1 and "no link card for" in warnings[0], world.log.getvalue()
    assert not (box.spool / "media" / "cards").exists()


def test_card_off_or_a_written_card_is_never_fetched(box: Sandbox, pages: Pages) -> None:
    world = in_process(box)
    off = "---\ncard: off\nschedule: 2099-01-01T09:00:00Z\n---\nRead {url}\n"
    box.deliver("new", "off", off.format(url=pages.url + "/good"))
    world.run()
    assert pages.seen == []
    assert (box.spool / "scheduled" / "off.md").read_text() == off.format(url=pages.url + "/good")


@pytest.mark.slow
def test_plurspool_post_gives_a_queued_post_its_card_and_warns_when_it_cannot(
    box: Sandbox, pages: Pages
) -> None:
    box.write_config()
    good = box.cli("post", "--json", "-s", "2099-01-01 09:00", f"Read {pages.url}/good today.")
    assert good.code == 0, good.err
    post_id = json.loads(good.out)["id"]
    card = box.post("scheduled", post_id).card
    assert card is not None and card.mode == "set" and card.title == "A & B: the page"
    assert card.image == f"media/cards/{post_id}.jpg"
    assert (box.spool / card.image).read_bytes().startswith(b"\xff\xd8")
    assert "warning" not in good.err
    bad = box.cli("post", "--json", "-s", "2099-01-01 10:00", f"See {pages.url}/binary now.")
    assert bad.code == 0, bad.err
    assert "warning: no link card for" in bad.err
    assert box.post("scheduled", json.loads(bad.out)["id"]).card is None  # queued without one
    draft = box.cli("post", "--json", "--draft", f"Later {pages.url}/good")
    assert draft.code == 0, draft.err
    assert box.post("drafts", json.loads(draft.out)["id"]).card is None
    assert [p for p, _ in pages.seen].count("/good") == 1  # the draft fetched nothing
