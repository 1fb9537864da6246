"""One client's connection: the state every job of the proxy keeps about it, and the frames
written to it.

The proxy frames its own messages instead of going through ``ServerConnection.send``: a
server's frame is not masked, so one tick's frame is the same bytes for every client and
is built once, and a whole drain cycle goes out in one ``transport.write``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from oaws.protocol.server import Session

if TYPE_CHECKING:
    from oaws.server.proxy.flood import Bucket

OPEN = State.OPEN


def text_frame(body: bytes) -> bytes:
    """An unmasked, final WebSocket text frame (RFC 6455 §5.2) around ``body``."""
    n = len(body)
    if n < 126:
        return bytes((0x81, n)) + body
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + body
    return b"\x81\x7f" + n.to_bytes(8, "big") + body


class Client:
    """One connection's delivery state. Slots, not a dict: the fan-out reads ``conflating``,
    ``out`` and ``items`` of every receiving client for every tick."""

    __slots__ = (
        "ws",
        "transport",
        "session",
        "batch",
        "out",
        "items",
        "conflating",
        "latest",
        "slow_since",
        "sent",
        "conflated",
        "peer",
        "ip",
        "connected_at",
        "closing",
        "bucket",
    )

    def __init__(self, ws: ServerConnection, session: Session, batch: bool, bucket: Bucket) -> None:
        self.ws = ws
        self.transport = ws.transport
        self.session = session
        self.batch = batch
        self.out: list[bytes] = []  # frames of this cycle (single-tick clients)
        self.items: list[bytes] = []  # messages of this cycle (batch clients)
        # slow clients (``slow``)
        self.conflating = False
        self.latest: dict[bytes, bytes] = {}  # topic -> message, while conflating
        self.slow_since = 0.0
        self.sent = 0
        self.conflated = 0
        self.peer = "%s:%s" % (ws.remote_address[:2] if ws.remote_address else ("?", "?"))
        self.ip = str(ws.remote_address[0]) if ws.remote_address else "?"
        self.connected_at = time.time()
        self.closing = False
        #: its requests' token bucket (``flood``)
        self.bucket = bucket

    def send(self, reply: dict[str, Any]) -> None:
        """A reply, at once and unbatched; nothing if the connection is no longer open."""
        if self.ws.protocol.state is OPEN:
            self.transport.write(text_frame(orjson.dumps(reply)))

    def write(self, bodies: list[bytes]) -> None:
        """Messages outside the fan-out's cycle (conflated ones, snapshots), framed as this
        client reads them."""
        if not bodies:
            return
        if self.batch:
            self.transport.write(text_frame(b"[" + b",".join(bodies) + b"]"))
        else:
            self.transport.write(b"".join(text_frame(b) for b in bodies))
        self.sent += len(bodies)

    def stats(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "batch": self.batch,
            "subscriptions": self.session.pairs(),
            "sent": self.sent,
            "conflated": self.conflated,
            "conflating": self.conflating,
            "send_buffer": self.transport.get_write_buffer_size() if not self.transport.is_closing() else 0,
            "connected_for": round(time.time() - self.connected_at, 1),
        }
