"""A feed served on loopback for the feed tests: real RSS and Atom documents, ETags honoured
(304), a feed far over the size cap streamed without a length, and one that trickles."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUGE = 50 * 1024 * 1024  # bytes the /huge feed would send if it were read to its end


def rss(items: list[tuple[str, str, str]], title: str = "A blog") -> bytes:
    """An RSS 2.0 document; items are (guid and link, title, HTML description), newest first."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>{title}</title><link>https://blog.example/</link><description>d</description>",
    ]
    for guid, item_title, html in items:
        parts.append(
            f"<item><guid>{guid}</guid><title>{item_title}</title>"
            f"<link>{guid}</link>"
            f"<description><![CDATA[{html}]]></description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


def atom(entries: list[tuple[str, str, str]]) -> bytes:
    """An Atom 1.0 document; entries are (id, title, HTML summary), newest first."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">',
        "<title>Notes</title><id>urn:uuid:feed</id><updated>2026-12-01T00:00:00Z</updated>",
    ]
    for entry_id, title, html in entries:
        escaped = html.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts.append(
            f"<entry><id>{entry_id}</id><title>{title}</title>"
            f'<link href="https://notes.example/{entry_id.rsplit(":", 1)[-1]}"/>'
            f"<updated>2026-12-01T00:00:00Z</updated>"
            f'<summary type="html">{escaped}</summary></entry>'
        )
    parts.append("</feed>\n")
    return "".join(parts).encode()


@dataclass
class FeedServer:
    """Documents by path; `requests` counts the GETs of each path, `unchanged` the 304s."""

    port: int = 0
    docs: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextlib.contextmanager
def feed_server() -> Iterator[FeedServer]:
    """Serve `FeedServer.docs` on 127.0.0.1 until the block ends."""
    server_state = FeedServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path
            server_state.requests[path] = server_state.requests.get(path, 0) + 1
            if path == "/huge":
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.end_headers()  # no length: the client must stop reading by itself
                chunk = b"<!-- " + b"x" * (1024 * 1024 - 9) + b" -->"
                with contextlib.suppress(OSError):
                    self.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
                    for _ in range(HUGE // len(chunk)):
                        self.wfile.write(chunk)
                return
            if path == "/slow":  # a byte every half second, for 20 s at most
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.end_headers()
                with contextlib.suppress(OSError):
                    for _ in range(40):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.5)
                return
            if path not in server_state.docs:
                self.send_error(404)
                return
            body, kind = server_state.docs[path]
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                server_state.unchanged[path] = server_state.unchanged.get(path, 0) + 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", formatdate(usegmt=True))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
