"""The fan-out: ticks from the bus to the clients that want them, and why it is fast.

* ``BusReader`` drains the SUB socket straight from the event loop into ``on_ticks``,
  a batch at a time.
* Each topic has a ``Route``: the JSON prefix of its ``market_data`` message, built once,
  and the clients that receive it. A message is ``prefix + payload + "}"``: the tick is
  parsed once, only to check that it is a JSON object in UTF-8 (a payload that is not is
  dropped and counted: the bus is another process's output), and never re-encoded; its
  ``fseq``, the first key, is read from the bytes. A server frame
  is not masked, so the WebSocket frame itself is the same bytes for every client: it is
  built once per tick and mode.
* Frames queue per client during a drain cycle and go out with one ``transport.write``
  per client per cycle. Nothing awaits a client: a slow one only grows its own buffer,
  and ``slow`` takes it from there.
* ``?batch=1`` clients get one JSON array of messages per cycle instead.
* A client holding several modes of an instrument is on several routes (one per bus
  topic) and gets one message per tick per mode, each at its own mode.
* A Depth stream of 20 levels a side is a route of its own (``..._DEPTH_20``), its
  messages of mode 3 like the five levels' (the tick says ``depth_level``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson

from oaws.instruments import DEFAULT_DEPTH, Instrument, Stream
from oaws.protocol.bus import CONTROL_PREFIX, read_fseq
from oaws.protocol.orders import ORDERS_SUFFIX
from oaws.protocol.server import Change
from oaws.server.bus import BusReader
from oaws.server.proxy.connection import OPEN, Client, text_frame
from oaws.server.proxy.slow import SlowClients, conflate

log = logging.getLogger(__name__)

#: the end of a snapshot's message: the mark after ``data`` (docs/protocol.md)
SNAPSHOT_END = b',"snapshot":true}'
#: seconds between two log lines about dropped bus messages (each is counted)
DROP_LOG_EVERY = 60.0


class Route:
    """A bus topic and the clients that receive it."""

    __slots__ = ("topic", "instrument", "mode", "depth", "prefix", "single", "batched", "fseq")

    def __init__(
        self, topic: bytes, instrument: Instrument, mode: int, broker: str, depth: int = DEFAULT_DEPTH
    ) -> None:
        self.topic = topic
        self.instrument = instrument
        self.mode = mode
        self.depth = depth
        self.single: set[Client] = set()
        self.batched: set[Client] = set()
        #: the feed's count of messages on this topic, as last seen (None: none seen yet)
        self.fseq: int | None = None
        self.prefix = b""
        self.relabel(broker)

    def relabel(self, broker: str) -> None:
        i = self.instrument
        self.prefix = (
            b'{"type":"market_data","topic":'
            + orjson.dumps(i.dotted)
            + b',"symbol":'
            + orjson.dumps(i.symbol)
            + b',"exchange":'
            + orjson.dumps(i.exchange)
            + b',"mode":%d,"broker":' % self.mode
            + orjson.dumps(broker)
            + b',"data":'
        )

    def __bool__(self) -> bool:
        return bool(self.single or self.batched)

    @property
    def stream(self) -> Stream:
        return Stream(self.instrument, self.mode, self.depth)


class Fanout:
    """The routes, the latest tick of each, and the delivery of every tick.

    ``broker`` names the feed for the messages of a new route; ``on_control`` receives
    the bus's control messages (``_oaws.``), in their place among the ticks; ``reader``
    is the bus the routes subscribe on, set when the proxy starts.
    """

    def __init__(
        self,
        soft_limit: int,
        slow: SlowClients,
        *,
        broker: Callable[[], str],
        on_control: Callable[[bytes, bytes], None],
    ) -> None:
        self.soft_limit = soft_limit
        self.slow = slow
        self.broker = broker
        self.on_control = on_control
        self.reader: BusReader | None = None
        self.routes: dict[bytes, Route] = {}
        #: topic -> the latest payload, sent to a client as soon as it subscribes
        self.last: dict[bytes, bytes] = {}
        #: breaks in a feed's ``fseq`` (ZeroMQ dropped messages past its high-water mark), and the messages lost
        self.gaps = 0
        self.missing = 0
        #: messages from the bus dropped as malformed (ticks, control messages), see ``drop``
        self.dropped = 0
        self._quiet_until = 0.0

    # The hot path ----------------------------------------------------------------
    def on_ticks(self, batch: list[tuple[bytes, bytes]]) -> None:
        routes_get = self.routes.get
        last = self.last
        loads = orjson.loads
        dirty: list[Client] = []
        try:
            for topic, payload in batch:
                # a try inside the loop costs nothing until it catches (CPython 3.11+): one
                # message's trouble costs that message only, never the others of the drain
                try:
                    route = routes_get(topic)
                    if route is None:
                        if topic.startswith(CONTROL_PREFIX) or topic.endswith(ORDERS_SUFFIX):
                            self.on_control(topic, payload)
                        continue
                    # The bus is another process's output: relay only a JSON object in
                    # UTF-8, or the frame would close every client (1007), and a batch
                    # holding it would not be JSON. Parsing is once per tick, not per client.
                    try:
                        tick = loads(payload)
                    except orjson.JSONDecodeError:
                        tick = None
                    if type(tick) is not dict:
                        self.drop(topic, "not a JSON object in UTF-8")
                        continue
                    last[topic] = payload
                    fseq = read_fseq(payload)
                    if fseq is not None:
                        seen = route.fseq
                        if seen is not None and fseq > seen + 1:
                            self._gap(route, fseq - seen - 1)
                        route.fseq = fseq  # lower than seen: the feed restarted and counts afresh
                    body = route.prefix + payload + b"}"
                    if route.single:
                        frame = text_frame(body)
                        for c in route.single:
                            if c.conflating:
                                conflate(c, topic, body)
                                continue
                            out = c.out
                            if not out:
                                dirty.append(c)
                            out.append(frame)
                    for c in route.batched:
                        if c.conflating:
                            conflate(c, topic, body)
                            continue
                        items = c.items
                        if not items:
                            dirty.append(c)
                        items.append(body)
                except Exception:
                    self.drop(topic, "its handling failed", failed=True)
        finally:
            # a client handed a frame in this drain is flushed whatever happened: one left
            # with frames queued would never be flushed again (it is dirty only when empty)
            for c in dirty:
                try:
                    self.flush(c)
                except Exception:
                    log.exception("flushing to %s failed", c.peer)

    def drop(self, topic: bytes, why: str, *, failed: bool = False) -> None:
        """Count a bus message dropped (``bus_dropped`` in /health) and say so, at most once
        a minute: a publisher that sends nothing but garbage must not fill the log."""
        self.dropped += 1
        now = time.monotonic()
        if now < self._quiet_until:
            return
        self._quiet_until = now + DROP_LOG_EVERY
        said = "dropped a message on the bus (topic %r): %s; %d dropped so far (bus_dropped in /health), " + (
            "the next drops are logged at most once a minute"
        )
        args = (topic[:80].decode("utf-8", "replace"), why, self.dropped)
        if failed:
            log.exception(said, *args)
        else:
            log.warning(said, *args)

    def _gap(self, route: Route, missing: int) -> None:
        self.gaps += 1
        self.missing += missing
        log.warning("bus gap on %s: %d message(s) lost between the feed and this proxy", route.topic.decode(), missing)

    def flush(self, c: Client) -> None:
        """The client's messages of this cycle, in one write."""
        if c.batch:
            n = len(c.items)
            data = text_frame(b"[" + b",".join(c.items) + b"]")
            c.items.clear()
        else:
            n = len(c.out)
            data = b"".join(c.out)
            c.out.clear()
        if c.ws.protocol.state is not OPEN:
            return
        c.transport.write(data)
        c.sent += n
        if c.transport.get_write_buffer_size() > self.soft_limit:
            self.slow.begin(c)

    # Routes ----------------------------------------------------------------------
    def apply(self, c: Client, change: Change) -> None:
        """Put ``c`` on or take it off the route of one stream; the bus is subscribed to a
        route's topic while it has clients, so the feed hears of every stream some client
        holds."""
        topic = change.instrument.topic(change.mode, change.depth).encode()
        route = self.routes.get(topic)
        if change.on:
            if route is None:
                route = Route(topic, change.instrument, change.mode, self.broker(), change.depth)
                self.routes[topic] = route
                assert self.reader is not None
                self.reader.subscribe(topic)
            (route.batched if c.batch else route.single).add(c)
        elif route is not None:
            (route.batched if c.batch else route.single).discard(c)
            c.latest.pop(topic, None)
            if not route:
                del self.routes[topic]
                self.last.pop(topic, None)
                assert self.reader is not None
                self.reader.unsubscribe(topic)

    def served(self, stream: Stream) -> bool:
        """Whether some client receives ``stream`` (it counts against the broker's quota)."""
        return stream.instrument.topic(stream.mode, stream.depth).encode() in self.routes

    def snapshots(self, c: Client, streams: list[Stream]) -> list[tuple[bytes, bytes]]:
        """(topic, message) of the latest tick of each stream ``c`` just subscribed, marked
        ``"snapshot":true``: a screen fills at once, and a client can tell it from a live trade."""
        out = []
        for instrument, mode, depth in streams:
            topic = instrument.topic(mode, depth).encode()
            payload = self.last.get(topic)
            route = self.routes.get(topic)
            if payload is not None and route is not None and c in (route.batched if c.batch else route.single):
                out.append((topic, route.prefix + payload + SNAPSHOT_END))
        return out

    def relabel(self, broker: str) -> None:
        """The feed's name changed: every route's messages say the new one."""
        for route in self.routes.values():
            route.relabel(broker)
