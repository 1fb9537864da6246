"""The ZeroMQ bus between feeds and proxies (SPEC §3).

A message is two frames: the topic ``EXCHANGE_SYMBOL_MODE`` and the tick as JSON. The
feed binds an XPUB socket and learns from it what the proxies want; proxies connect SUB
sockets and subscribe to the exact topics their clients need.

Besides ticks, the feed publishes control messages under the prefix ``_oaws.`` (no
exchange starts with ``_``): ``_oaws.reject`` when it cannot serve a wanted instrument,
and ``_oaws.info`` once a second with its name and state, so that a proxy in another
process can tell clients which broker it serves and whether the feed is alive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import orjson
import zmq
import zmq.asyncio

from oaws.instruments import Instrument, parse_topic
from oaws.server.feeds.base import Feed

log = logging.getLogger(__name__)

CONTROL_PREFIX = b"_oaws."
REJECT_TOPIC = b"_oaws.reject"
INFO_TOPIC = b"_oaws.info"
INFO_INTERVAL = 1.0


class BusError(Exception):
    """The bus endpoint cannot be bound or connected (in use, malformed)."""


def bind_error(endpoint: str, exc: zmq.ZMQError) -> BusError:
    if exc.errno == zmq.EADDRINUSE:
        return BusError(f"the bus address {endpoint} is in use; is another oaws serve running? (use --bus to pick another)")
    return BusError(f"cannot bind the bus at {endpoint}: {exc.strerror}")


class FeedHub:
    """The feed's end of the bus: binds XPUB, runs a feed, follows subscriptions.

    XPUB_VERBOSE passes every proxy's subscribe (so a proxy that joins late is sent the
    latest tick at once) but only the last unsubscribe of a topic: ZeroMQ keeps the
    reference count across proxies, and a proxy that vanishes unsubscribes by itself.
    """

    def __init__(self, feed: Feed, endpoint: str, ctx: zmq.asyncio.Context | None = None) -> None:
        self.feed = feed
        self.ctx = ctx or zmq.asyncio.Context.instance()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.setsockopt(zmq.SNDHWM, 200_000)
        self.sock.setsockopt(zmq.LINGER, 0)
        try:
            self.sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self.sock.close(0)
            raise bind_error(endpoint, exc) from None
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.wanted: set[tuple[Instrument, int]] = set()
        self.published = 0
        self.seq = 0
        self.started = time.time()
        feed.attach(self)

    # Publisher -----------------------------------------------------------------
    def publish(self, instrument: Instrument, mode: int, payload: bytes) -> None:
        try:
            self.sock.send_multipart([instrument.topic(mode).encode(), payload], flags=zmq.NOBLOCK, copy=True)
        except zmq.Again:
            return
        self.published += 1

    def reject(self, instrument: Instrument, mode: int, code: str, message: str) -> None:
        body = {"topic": instrument.topic(mode), "symbol": instrument.symbol, "exchange": instrument.exchange,
                "mode": mode, "code": code, "message": message}
        self.wanted.discard((instrument, mode))
        try:
            self.sock.send_multipart([REJECT_TOPIC, orjson.dumps(body)], flags=zmq.NOBLOCK)
        except zmq.Again:
            log.warning("bus full; rejection of %s not sent", instrument)

    # Subscriptions -------------------------------------------------------------
    def on_subscription(self, message: bytes) -> None:
        if not message:
            return
        subscribe, topic = message[0] == 1, message[1:]
        if topic.startswith(CONTROL_PREFIX) or not topic:
            return
        parsed = parse_topic(topic.decode("utf-8", "replace"))
        if parsed is None:
            log.debug("ignoring subscription to %r: not an instrument topic", topic)
            return
        if subscribe:
            if parsed in self.wanted:
                self.feed.resend(*parsed)
            else:
                self.wanted.add(parsed)
                self.feed.want(*parsed)
        elif parsed in self.wanted:
            self.wanted.discard(parsed)
            self.feed.unwant(*parsed)

    async def _follow(self) -> None:
        while True:
            message = await self.sock.recv()
            try:
                self.on_subscription(message)
            except Exception:  # a feed bug must not stop the bus
                log.exception("feed failed to handle subscription %r", message)

    async def _announce(self) -> None:
        while True:
            info = {"broker": self.feed.name, "depths": list(self.feed.depths), "published": self.published,
                    "instruments": len({i for i, _ in self.wanted}), "started": self.started,
                    **self.feed.status()}
            try:
                self.sock.send_multipart([INFO_TOPIC, orjson.dumps(info)], flags=zmq.NOBLOCK)
            except zmq.Again:
                pass
            await asyncio.sleep(INFO_INTERVAL)

    async def run(self) -> None:
        """Run the feed and follow subscriptions until cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._follow())
                tg.create_task(self._announce())
                tg.create_task(self.feed.run())
        finally:
            self.sock.close(0)


class BusReader:
    """The proxy's end: a SUB socket drained straight from the event loop.

    Reading through the socket's file descriptor instead of ``zmq.asyncio`` saves a
    future per message. ZeroMQ's descriptor is edge-triggered, so each wake-up drains
    until EAGAIN (or a budget, then yields to the loop and goes on).
    """

    BUDGET = 4096

    def __init__(self, endpoint: str, on_batch: Callable[[list[tuple[bytes, bytes]]], None],
                 ctx: zmq.Context | None = None) -> None:
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, 200_000)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RECONNECT_IVL, 100)
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        try:
            self.sock.connect(endpoint)
        except zmq.ZMQError as exc:
            self.sock.close(0)
            raise BusError(f"cannot connect to the bus at {endpoint}: {exc.strerror}") from None
        self.endpoint = endpoint
        self.on_batch = on_batch
        self.received = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self.sock.setsockopt(zmq.SUBSCRIBE, CONTROL_PREFIX)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.getsockopt(zmq.FD), self._readable)
        self._kick()

    def close(self) -> None:
        if self._loop is not None and not self.sock.closed:
            self._loop.remove_reader(self.sock.getsockopt(zmq.FD))
        self.sock.close(0)

    def subscribe(self, topic: bytes) -> None:
        self.sock.setsockopt(zmq.SUBSCRIBE, topic)
        self._kick()

    def unsubscribe(self, topic: bytes) -> None:
        self.sock.setsockopt(zmq.UNSUBSCRIBE, topic)
        self._kick()

    def _kick(self) -> None:
        # Any operation on a ZeroMQ socket may consume the edge; look again soon.
        if self._loop is not None and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._readable)

    def _readable(self) -> None:
        self._scheduled = False
        sock = self.sock
        if sock.closed:
            return
        recv = sock.recv
        batch: list[tuple[bytes, bytes]] = []
        append = batch.append
        try:
            while len(batch) < self.BUDGET:
                topic = recv(zmq.NOBLOCK)  # raises Again once drained, which re-arms the edge
                if not sock.getsockopt(zmq.RCVMORE):
                    continue  # a one-frame message is not ours
                payload = recv(zmq.NOBLOCK)
                while sock.getsockopt(zmq.RCVMORE):  # extra frames: ignore
                    recv(zmq.NOBLOCK)
                append((topic, payload))
        except zmq.Again:
            pass
        if batch:
            self.received += len(batch)
            self.on_batch(batch)
        if len(batch) >= self.BUDGET:
            self._kick()
