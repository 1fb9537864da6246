"""Order updates from the bus to the clients that sent ``subscribe_orders``.

A feed publishes each ``order_update`` under ``{BROKER}_{USER_ID}_orders``, the payload the
message itself (``oaws.protocol.orders``); this relays it unchanged, as OpenAlgo's proxy
does. oaws serves one API key, so every client that subscribed to orders is that one user
and receives them all. While at least one client wants orders the bus reader subscribes
``{BROKER}_`` for each broker known (registered, announced, and OpenAlgo's ``ANALYZE``);
when the last one leaves, it unsubscribes.

What is queued for a client stays bounded as for ticks: an update joins the client's
frames of the cycle, and a client being conflated keeps only the latest update of each
order (its final state) until it catches up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson

from oaws.protocol.orders import ANALYZE, broker_prefix
from oaws.server.bus import BusReader
from oaws.server.proxy.connection import OPEN, Client, text_frame
from oaws.server.proxy.slow import conflate

log = logging.getLogger(__name__)

#: the largest order update relayed; OpenAlgo's are a few hundred bytes
MAX_UPDATE = 16_384


class Orders:
    """The clients that want order updates, and the bus subscriptions that bring them."""

    def __init__(self, brokers: Callable[[], list[str]], flush: Callable[[Client], None]) -> None:
        self.brokers = brokers
        self.flush = flush
        self.reader: BusReader | None = None
        self.clients: set[Client] = set()
        self.prefixes: set[bytes] = set()
        #: updates relayed, and the ones refused (not an ``order_update`` object)
        self.relayed = 0
        self.refused = 0

    def follow(self, c: Client, wanted: bool) -> None:
        """``c`` now wants order updates, or no longer does."""
        if wanted:
            self.clients.add(c)
        else:
            self.clients.discard(c)
        self.resubscribe()

    def resubscribe(self) -> None:
        """Subscribe the order topics of every broker known while some client wants them
        (a feed that announces a new broker adds its own); none when nobody does."""
        assert self.reader is not None
        wanted = {broker_prefix(b) for b in (*self.brokers(), ANALYZE)} if self.clients else set()
        for prefix in wanted - self.prefixes:
            self.reader.subscribe(prefix)
        for prefix in self.prefixes - wanted:
            self.reader.unsubscribe(prefix)
        self.prefixes = wanted

    def relay(self, topic: bytes, payload: bytes) -> None:
        """One update from the bus (another process's bytes: checked, never raised on)."""
        if not self.clients:
            return
        orderid = _orderid(payload)
        if orderid is None:
            self.refused += 1
            log.debug("ignoring a malformed order update on %r", topic[:80])
            return
        frame = text_frame(payload)
        key = b"orders:" + orderid
        dirty = []
        for c in self.clients:
            if c.ws.protocol.state is not OPEN:
                continue
            if c.conflating:
                conflate(c, key, payload)
                continue
            if c.batch:
                if not c.items:
                    dirty.append(c)
                c.items.append(payload)
            else:
                if not c.out:
                    dirty.append(c)
                c.out.append(frame)
        for c in dirty:
            self.flush(c)
        self.relayed += 1


def _orderid(payload: bytes) -> bytes | None:
    """The order's id when ``payload`` is an ``order_update`` message, else None."""
    if len(payload) > MAX_UPDATE:
        return None
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("type") != "order_update":
        return None
    orderid = message.get("orderid")
    return str(orderid).encode() if isinstance(orderid, str | int) else b""
