"""One client's connection: the state every job of the proxy keeps about it, and the frames
written to it, within one budget of bytes.

The proxy frames its own messages instead of going through ``ServerConnection.send``: a
server's frame is not masked, so one tick's frame is the same bytes for every client and
is built once, and a whole drain cycle goes out in one ``transport.write``.

Every byte queued for a client (ticks, replies, error replies, the pongs websockets writes
by itself, the close frame) is in its transport's one send buffer, and that buffer is the
client's one budget (``BudgetedConnection``):

* past ``soft_limit`` bytes the proxy stops reading the client's socket (nothing more it
  sends is answered, not even a WebSocket ping), and conflates its ticks (``slow``); once
  the buffer drains to half the limit, reading resumes;
* past ``hard_limit`` bytes, whatever queued them, the connection is aborted at once: a
  client that does not read cannot hold more of the proxy's memory than that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from oaws.protocol.codes import FEED_LIVE, SERVER_ERROR, error
from oaws.protocol.server import Session
from oaws.server.proxy.logs import Throttled

if TYPE_CHECKING:
    from oaws.server.proxy.flood import Bucket

OPEN = State.OPEN

log = logging.getLogger(__name__)
#: per-connection trouble, logged at a bounded rate (a hostile client can cause it at will)
trouble = Throttled(log)


class BudgetedConnection(ServerConnection):
    """websockets' server connection, with its reading tied to its send buffer.

    websockets pauses reading only when its queue of received messages is full; a client
    that sends pings (answered by websockets itself) or small requests and never reads
    would grow the send buffer without end. Here the transport's own flow control says
    when the buffer passes the soft limit (``pause_writing``, its high-water mark set to
    that limit by ``serve(write_limit=...)``): reading pauses until it drains
    (``resume_writing``). ``behind`` is told each time (the proxy conflates the client and
    starts its slow timer); ``hard_limit`` is checked after everything this connection
    writes by itself, and by ``Client`` after every write of the proxy's."""

    hard_limit: int = 0
    behind: Callable[[], None] | None = None
    over_budget: Callable[[], None] | None = None
    _write_blocked = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        t = cast(asyncio.Transport, transport)
        # the message queue's resume must not undo a pause for the send buffer
        self.recv_messages.resume = lambda: None if self._write_blocked else t.resume_reading()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._write_blocked = True
        self.transport.pause_reading()
        if self.behind is not None:
            self.behind()
        self.check_budget()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._write_blocked = False
        if not self.recv_messages.paused and not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # may write pongs and close frames
        self.check_budget()

    def check_budget(self) -> bool:
        """Abort the connection if its send buffer is past ``hard_limit``; whether it was."""
        t = self.transport
        if self.hard_limit and not t.is_closing() and t.get_write_buffer_size() > self.hard_limit:
            trouble.warning(
                "aborting %s: send buffer over %d bytes (the client does not read)",
                self.remote_address[0] if self.remote_address else "?",
                self.hard_limit,
            )
            t.abort()
            if self.over_budget is not None:
                self.over_budget()
            return True
        return False


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
        "feed_status",
        "feed_told",
        "subscribed_at",
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
        #: it asked for ``feed_status`` messages (``?feed_status=1``), and the state it was last told
        self.feed_status = False
        self.feed_told = FEED_LIVE
        #: when (time.monotonic) it last subscribed to something
        self.subscribed_at = 0.0

    def send(self, reply: dict[str, Any]) -> None:
        """A reply, at once and unbatched; nothing if the connection is no longer open. Never
        raises: a reply that cannot be encoded becomes a ``SERVER_ERROR`` reply."""
        if self.ws.protocol.state is not OPEN:
            return
        try:
            body = orjson.dumps(reply)
        except (orjson.JSONEncodeError, TypeError) as exc:
            trouble.warning("a reply to %s could not be encoded: %s", self.peer, exc)
            body = orjson.dumps(error(SERVER_ERROR, "the reply could not be encoded"))
        self.transport.write(text_frame(body))
        self._check_budget()

    def _check_budget(self) -> None:
        check = getattr(self.ws, "check_budget", None)
        if check is not None:
            check()

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
        self._check_budget()

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
