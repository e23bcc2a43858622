"""A recording Nostr relay on 127.0.0.1 for the latency benchmark.

It answers every EVENT with `OK true` and notes the wall-clock time the frame arrived, which a
full relay would not tell us. Subscriptions get an immediate EOSE; nothing is stored or checked:
the real relays (tests/peers/nostr_relays.py) are for correctness and for the throughput row.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve


class RecordingRelay:
    """`received`: (time.time() on arrival, event content) for every EVENT, in order."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.server = serve(self._handle, "127.0.0.1", 0)
        port = self.server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, ws: ServerConnection) -> None:
        try:
            for raw in ws:
                arrived = time.time()
                msg: Any = json.loads(raw)
                if not isinstance(msg, list) or not msg:
                    continue
                if msg[0] == "EVENT":
                    event = msg[1]
                    with self.cond:
                        self.received.append((arrived, str(event.get("content", ""))))
                        self.cond.notify_all()
                    ws.send(json.dumps(["OK", event["id"], True, ""]))
                elif msg[0] == "REQ":
                    ws.send(json.dumps(["EOSE", msg[1]]))
        except (ConnectionClosed, ValueError):
            return

    def wait_for(self, content: str, timeout: float) -> float:
        """The arrival time of the first event with this content; TimeoutError if none comes."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for arrived, text in self.received:
                    if text == content:
                        return arrived
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the relay got no event {content!r}")
                self.cond.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
