"""The ZeroMQ bus between feeds and proxies (SPEC §3).

A message is two frames: the topic ``EXCHANGE_SYMBOL_MODE`` and the tick as JSON. The
feed has an XPUB socket and learns from it what the proxies want; a proxy has a SUB
socket and subscribes to the exact topics its clients need.

Either side may bind (SPEC §3). oaws's own wiring: the feed binds, proxies connect. OpenAlgo's
(since its issue #1421): the proxy binds, and broker adapters connect their PUB sockets to it.
A SUB socket sends its subscriptions to every peer whichever way round the connection was
made, so an oaws feed that connects to a binding proxy (``FeedHub(connect=True)``) still
learns what is wanted; an OpenAlgo adapter's PUB socket hears the same subscriptions and
only filters with them (it publishes what its own server subscribed), and the proxy routes
by exact topic, so whatever else it sends goes nowhere. A proxy's endpoint written
``@tcp://...`` is bound (CZMQ's convention: ``bound``), any other is connected.

Besides ticks, the feed publishes control messages under the prefix ``_oaws.`` (no
exchange starts with ``_``): ``_oaws.reject`` when it cannot serve a wanted instrument,
and ``_oaws.info`` once a second with its name and state, so that a proxy in another
process can tell clients which broker it serves and whether the feed is alive. The
format of both, and of the ``fseq`` stamped on each tick, is ``oaws.protocol.bus``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import zmq
import zmq.asyncio
from zmq.utils.monitor import recv_monitor_message

from oaws.brokers.api import Feed, HistoryError
from oaws.instruments import DEFAULT_DEPTH, Instrument, Stream, parse_stream
from oaws.protocol import history as hist
from oaws.protocol.bus import CONTROL_PREFIX, INFO_TOPIC, REJECT_TOPIC, stamp_fseq
from oaws.protocol.codes import SYMBOL_NOT_FOUND
from oaws.protocol.orders import MAX_REQUEST, ORDER_REPLY, ORDER_REQUEST, OrderRequest, OrderRequestError, order_topic

log = logging.getLogger(__name__)

INFO_INTERVAL = 1.0
#: subscriptions a feed's hub takes in one turn of the event loop
FOLLOW_SLICE = 20
#: history requests a feed answers at once (each holds a thread and the broker's rate limit)
MAX_HISTORIES = 4


def heartbeat(sock: zmq.Socket) -> None:  # type: ignore[type-arg]
    """ZMTP heartbeats: a peer that vanished without a FIN (a host cut off) is dropped
    after 6 s instead of holding a growing backlog; the SUB side then reconnects and
    subscribes again by itself."""
    sock.setsockopt(zmq.HEARTBEAT_IVL, 2000)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 6000)
    sock.setsockopt(zmq.HEARTBEAT_TTL, 6000)


class BusError(Exception):
    """The bus endpoint cannot be bound or connected (in use, malformed)."""


#: the mark of an endpoint to bind rather than connect (CZMQ's ``zsock_attach`` convention)
BIND_MARK = "@"


def bound(endpoint: str) -> str:
    """``endpoint`` marked to be bound by the proxy that reads it: ``@tcp://127.0.0.1:5555``."""
    return endpoint if endpoint.startswith(BIND_MARK) else BIND_MARK + endpoint


def bind_error(endpoint: str, exc: zmq.ZMQError) -> BusError:
    if exc.errno == zmq.EADDRINUSE:
        return BusError(
            f"the bus address {endpoint} is in use; is another oaws serve running? (use --bus to pick another)"
        )
    return BusError(f"cannot bind the bus at {endpoint}: {exc.strerror}")


class FeedHub:
    """The feed's end of the bus: an XPUB socket, bound (proxies connect) or connected
    (``connect=True``: to a forwarder, or to a proxy that binds); runs a feed, follows
    subscriptions.

    XPUB_VERBOSE passes every proxy's subscribe (so a proxy that joins late is sent the
    latest tick at once) but only the last unsubscribe of a topic: ZeroMQ keeps the
    reference count across proxies, and a proxy that vanishes unsubscribes by itself.
    """

    def __init__(
        self,
        feed: Feed,
        endpoint: str,
        ctx: zmq.asyncio.Context | None = None,
        *,
        connect: bool = False,
        curve: Any = None,
    ) -> None:
        self.feed = feed
        # CURVE's handler is one per context: a hub that uses it gets a context of its own
        self.ctx = ctx or (zmq.asyncio.Context() if curve is not None else zmq.asyncio.Context.instance())
        self.auth = curve.authorize(self.ctx) if curve is not None and not connect else None
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.setsockopt(zmq.SNDHWM, 200_000)
        self.sock.setsockopt(zmq.RCVHWM, 0)  # subscriptions must never be dropped
        self.sock.setsockopt(zmq.LINGER, 0)
        heartbeat(self.sock)
        if curve is not None:
            (curve.as_client if connect else curve.as_server)(self.sock)
        #: connected to a forwarder or a binding proxy, where other feeds may serve what this one cannot
        self.connected = connect
        try:
            if connect:
                self.sock.connect(endpoint)
            else:
                self.sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self.sock.close(0)
            raise bind_error(endpoint, exc) from None
        self.endpoint = endpoint if connect else self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.wanted: set[Stream] = set()
        self.published = 0
        self.fseq: dict[bytes, int] = {}
        self.fid = uuid.uuid4().hex[:8]
        self.started = time.time()
        #: the history requests the feed is answering, each in a thread
        self.histories: set[asyncio.Task[None]] = set()
        feed.attach(self)

    # Publisher -----------------------------------------------------------------
    def publish(self, instrument: Instrument, mode: int, payload: bytes, depth: int = DEFAULT_DEPTH) -> None:
        """Publish a tick, stamped with ``fseq``: this feed's count of messages on that
        topic, so that a proxy can tell when ZeroMQ dropped some (it does so silently
        past its high-water mark)."""
        topic = instrument.topic(mode, depth).encode()
        n = self.fseq.get(topic, 0) + 1
        self.fseq[topic] = n
        try:
            self.sock.send_multipart([topic, stamp_fseq(payload, n)], flags=zmq.NOBLOCK, copy=True)
        except zmq.Again:
            return
        self.published += 1

    def reject(self, instrument: Instrument, mode: int, code: str, message: str, depth: int = DEFAULT_DEPTH) -> None:
        self.wanted.discard(Stream(instrument, mode, depth))
        if self.connected and code == SYMBOL_NOT_FOUND:
            # behind a forwarder another feed may serve it: stay quiet
            log.info("%s: %s", instrument, message)
            return
        self.fseq.pop(instrument.topic(mode, depth).encode(), None)
        body = {
            "fid": self.fid,
            "topic": instrument.topic(mode, depth),
            "symbol": instrument.symbol,
            "exchange": instrument.exchange,
            "mode": mode,
            "code": code,
            "message": message,
        }
        try:
            self.sock.send_multipart([REJECT_TOPIC, orjson.dumps(body)], flags=zmq.NOBLOCK)
        except zmq.Again:
            log.warning("bus full; rejection of %s not sent", instrument)

    def publish_order(self, user_id: str, message: bytes) -> None:
        """An ``order_update`` under ``{BROKER}_{USER_ID}_orders``, as OpenAlgo publishes it."""
        try:
            self.sock.send_multipart([order_topic(self.feed.name, user_id), message], flags=zmq.NOBLOCK)
        except zmq.Again:
            log.warning("bus full; an order update for %s was not sent", user_id)

    def on_order_request(self, raw: bytes) -> None:
        """``oaws sim order``'s request, come up the bus as a subscription; the answer goes
        back on ``_oaws.order.<nonce>``, which the asking socket subscribed first. A feed
        that takes no orders stays quiet: behind a forwarder, another one may."""
        if not self.feed.orders:
            return
        try:
            body = orjson.loads(raw) if len(raw) <= MAX_REQUEST else None
        except orjson.JSONDecodeError:
            body = None
        nonce = body.get("nonce") if isinstance(body, dict) else None
        if not isinstance(nonce, str) or not nonce.isalnum() or len(nonce) > 64:
            log.debug("ignoring an order request with no nonce to answer on")
            return
        try:
            reply = {"status": "success", "orderid": self.feed.order(OrderRequest.parse(body))}
        except OrderRequestError as exc:
            reply = {"status": "error", "message": str(exc)}
        try:
            self.sock.send_multipart([ORDER_REPLY + nonce.encode(), orjson.dumps(reply)], flags=zmq.NOBLOCK)
        except zmq.Again:
            log.warning("bus full; the answer to an order request was not sent")

    def on_history_request(self, raw: bytes) -> None:
        """A proxy's request for candles (``oaws.protocol.history``), come up the bus as a
        subscription. The feed's ``history`` blocks on the broker's REST API, so it runs in a
        thread while ticks flow; the answer goes back on ``_oaws.history.<nonce>``. Behind a
        forwarder, a feed with no history stays quiet: another one may have it."""
        if self.connected and not self.feed.history_intervals:
            return
        try:
            body = orjson.loads(raw) if len(raw) <= hist.MAX_REQUEST else None
        except orjson.JSONDecodeError:
            body = None
        nonce = body.get("nonce") if isinstance(body, dict) else None
        if not isinstance(nonce, str) or not nonce.isalnum() or len(nonce) > 64:
            log.debug("ignoring a history request with no nonce to answer on")
            return
        topic = hist.HISTORY_REPLY + nonce.encode()
        try:
            request = hist.HistoryRequest.parse(body)  # type: ignore[arg-type]
        except hist.HistoryRequestError as exc:
            self._answer(topic, hist.error(str(exc)))
            return
        if len(self.histories) >= MAX_HISTORIES:
            self._answer(topic, hist.error("the feed is busy with other history requests; try again shortly"))
            return
        task = asyncio.get_running_loop().create_task(self._history(request))
        self.histories.add(task)
        task.add_done_callback(self.histories.discard)

    async def _history(self, request: hist.HistoryRequest) -> None:
        r = request
        try:
            bars = await asyncio.to_thread(self.feed.history, r.instrument, r.interval, r.start_ms, r.end_ms)
            answer = hist.success(bars)
        except HistoryError as exc:
            answer = hist.error(str(exc))
        except Exception:  # a feed bug must not stop the bus, and the proxy still hears why
            log.exception("the feed failed to give the history of %s", r.instrument)
            answer = hist.error(f"the {self.feed.name} feed failed to give the history of {r.instrument}")
        self._answer(r.reply_topic, answer)

    def _answer(self, topic: bytes, answer: dict[str, Any]) -> None:
        if self.sock.closed:
            return
        try:
            self.sock.send_multipart([topic, orjson.dumps(answer)], flags=zmq.NOBLOCK)
        except zmq.Again:
            log.warning("bus full; the answer to a history request was not sent")

    # Subscriptions -------------------------------------------------------------
    def on_subscription(self, message: bytes) -> None:
        if not message:
            return
        subscribe, topic = message[0] == 1, message[1:]
        if subscribe and topic.startswith(ORDER_REQUEST + b"{"):
            self.on_order_request(topic[len(ORDER_REQUEST) :])
            return
        if subscribe and topic.startswith(hist.HISTORY_REQUEST + b"{"):
            self.on_history_request(topic[len(hist.HISTORY_REQUEST) :])
            return
        if topic == CONTROL_PREFIX and subscribe:
            self.announce()  # a proxy joined: it knows this feed before any refusal of it
            return
        if topic.startswith(CONTROL_PREFIX) or not topic:
            return
        stream = parse_stream(topic.decode("utf-8", "replace"))
        if stream is None or (stream.depth != DEFAULT_DEPTH and stream.depth not in self.feed.depths):
            log.debug("ignoring subscription to %r: not a topic of this feed", topic)
            return
        # a feed that offers only five levels is called as before, without a depth
        args = stream if stream.depth != DEFAULT_DEPTH else stream[:2]
        if subscribe:
            if stream in self.wanted:
                self.feed.resend(*args)
            else:
                self.wanted.add(stream)
                self.feed.want(*args)
        elif stream in self.wanted:
            self.wanted.discard(stream)
            self.fseq.pop(topic, None)  # wanted again, it counts from 1: a proxy reads that as a restart
            self.feed.unwant(*args)

    async def _follow(self) -> None:
        handled = 0
        while True:
            message = await self.sock.recv()
            try:
                self.on_subscription(message)
            except Exception:  # a feed bug must not stop the bus
                log.exception("feed failed to handle subscription %r", message)
            handled += 1
            if handled % FOLLOW_SLICE == 0:
                # a recv that finds a message waiting does not yield: a thousand queued
                # subscriptions would be one turn of the loop, the fan-out waiting behind it
                await asyncio.sleep(0)

    def announce(self) -> None:
        """``_oaws.info``: this feed's id, name, depths and figures (``oaws.protocol.bus``)."""
        info = {
            "fid": self.fid,
            "broker": self.feed.name,
            "depths": list(self.feed.depths),
            "orders": self.feed.orders,
            "published": self.published,
            "instruments": len({s.instrument for s in self.wanted}),
            "started": self.started,
            **self.feed.status(),
        }
        try:
            self.sock.send_multipart([INFO_TOPIC, orjson.dumps(info)], flags=zmq.NOBLOCK)
        except zmq.Again:
            pass

    async def _announce(self) -> None:
        while True:
            self.announce()
            await asyncio.sleep(INFO_INTERVAL)

    async def run(self) -> None:
        """Run the feed and follow subscriptions until cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._follow())
                tg.create_task(self._announce())
                tg.create_task(self.feed.run())
        except BaseExceptionGroup as group:
            # the feed's own error ("Angel refused the login"), not "a TaskGroup failed"
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            self.close()

    def close(self) -> None:
        self.sock.close(0)
        if self.auth is not None:
            self.auth.stop()
            self.auth = None


HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
HANDSHAKE_FAILURES = {
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "one side encrypts the bus with CURVE (--curve) and the other does not",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "its CURVE keys do not authorize this proxy's (see `oaws keys generate`)",
}
#: the same, seen from a proxy that binds the bus: the one refused is a feed
BOUND_HANDSHAKE_FAILURES = {
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: HANDSHAKE_FAILURES[zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL],
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "a feed's CURVE key is not in this proxy's authorized/ (see `oaws keys generate`)",
}
BOUND_NO_DETAIL = "a feed's handshake failed: it does not encrypt the bus with CURVE (--curve), or has other keys"


class BusReader:
    """The proxy's end: a SUB socket drained straight from the event loop.

    It connects to ``endpoint``, or binds it when it is written ``@...`` (``bound``): then
    feeds connect to it, oaws's (``--bus-connect``) or OpenAlgo's broker adapters, and a
    bound bus with ``curve`` is the CURVE server, checking the feeds' keys.

    Reading through the socket's file descriptor instead of ``zmq.asyncio`` saves a
    future per message. ZeroMQ's descriptor is edge-triggered, so each wake-up drains
    until EAGAIN (or a budget, then yields to the loop and goes on).
    """

    BUDGET = 4096

    def __init__(
        self,
        endpoint: str,
        on_batch: Callable[[list[tuple[bytes, bytes]]], None],
        ctx: zmq.Context | None = None,
        *,
        curve: Any = None,
    ) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self.binds = endpoint.startswith(BIND_MARK)
        address = endpoint.removeprefix(BIND_MARK)
        # CURVE's handler is one per context: a bound bus that checks keys gets a context of its own
        self._own_ctx = ctx is None and curve is not None and self.binds
        self.ctx = zmq.Context() if self._own_ctx else ctx or zmq.Context.instance()
        self.auth = curve.authorize(self.ctx) if curve is not None and self.binds else None
        self.sock = self.ctx.socket(zmq.SUB)
        # A SUB socket sends its subscriptions through its send pipe: with the default
        # high-water mark of 1,000 it silently drops the rest of a large watchlist.
        self.sock.setsockopt(zmq.SNDHWM, 0)
        if curve is not None:
            (curve.as_server if self.binds else curve.as_client)(self.sock)
        self.sock.setsockopt(zmq.RCVHWM, 200_000)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RECONNECT_IVL, 100)
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        heartbeat(self.sock)
        self.monitor = self.sock.get_monitor_socket(HANDSHAKE_EVENTS)  # before connecting: no event missed
        try:
            if self.binds:
                self.sock.bind(address)
            else:
                self.sock.connect(address)
        except zmq.ZMQError as exc:
            self.close()
            if self.binds:
                raise bind_error(address, exc) from None
            raise BusError(f"cannot connect to the bus at {address}: {exc.strerror}") from None
        #: where the bus is: the address connected to, or the one bound (its port, when ``*`` was asked)
        self.address = self.sock.getsockopt_string(zmq.LAST_ENDPOINT) if self.binds else address
        self.endpoint = bound(self.address) if self.binds else address
        self.on_batch = on_batch
        self.received = 0
        #: why the bus refuses this reader's handshake (CURVE on one side only, keys not
        #: authorized), or None; ZeroMQ would otherwise retry in silence
        self.refused: str | None = None
        self._scheduled = False
        self.sock.setsockopt(zmq.SUBSCRIBE, CONTROL_PREFIX)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.getsockopt(zmq.FD), self._readable)
        self._loop.add_reader(self.monitor.getsockopt(zmq.FD), self._handshakes)
        self._kick()
        self._loop.call_soon(self._handshakes)

    def close(self) -> None:
        if self._loop is not None and not self.sock.closed:
            self._loop.remove_reader(self.sock.getsockopt(zmq.FD))
            self._loop.remove_reader(self.monitor.getsockopt(zmq.FD))
        if not self.sock.closed:
            self.sock.disable_monitor()
        self.monitor.close(0)
        self.sock.close(0)
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
        if self._own_ctx:
            self._own_ctx = False
            self.ctx.destroy(0)

    def _handshakes(self) -> None:
        """Say once, in the log and in ``refused``, when the bus refuses us, and when it stops."""
        while not self.monitor.closed:
            try:
                event = recv_monitor_message(self.monitor, zmq.NOBLOCK)["event"]
            except zmq.Again:
                return
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                if self.refused is not None:
                    log.info("the bus at %s accepted the handshake", self.address)
                self.refused = None
                continue
            why = (BOUND_HANDSHAKE_FAILURES if self.binds else HANDSHAKE_FAILURES).get(event)
            if why is None and self.binds and self.auth is not None:
                # a CURVE server sees a feed without CURVE fail with no detail, as often as not
                why = BOUND_NO_DETAIL
            if why is None:  # no detail (the peer hung up mid-handshake): a reason only if none is known
                self.refused = self.refused or "the handshake failed"
                continue
            if why != self.refused:
                if self.binds:
                    log.warning("this proxy's bus at %s refused a feed: %s", self.address, why)
                else:
                    log.warning("the bus at %s refuses this proxy: %s", self.address, why)
            self.refused = why

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


class Forwarder:
    """A ZeroMQ XSUB/XPUB forwarder: feeds connect to ``feeds``, proxies to ``bus``.

    Ticks flow down and subscriptions up, in ZeroMQ's own C loop (``zmq.proxy``) on a
    thread of its own. XPUB_VERBOSE lets every proxy's subscribe reach the feeds, so a
    proxy that joins late is sent the latest tick; unsubscribes pass when the last proxy
    leaves a topic.
    """

    def __init__(self, bus: str, feeds: str, *, curve: Any = None) -> None:
        self.ctx = zmq.Context()
        self.auth = curve.authorize(self.ctx) if curve is not None else None
        self.xpub = self.ctx.socket(zmq.XPUB)
        self.xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.xpub.setsockopt(zmq.SNDHWM, 200_000)
        self.xpub.setsockopt(zmq.RCVHWM, 0)  # subscriptions up: never dropped
        self.xsub = self.ctx.socket(zmq.XSUB)
        self.xsub.setsockopt(zmq.RCVHWM, 200_000)
        self.xsub.setsockopt(zmq.SNDHWM, 0)
        for sock in (self.xpub, self.xsub):
            sock.setsockopt(zmq.LINGER, 0)
            if curve is not None:
                curve.as_server(sock)
        for sock, endpoint in ((self.xpub, bus), (self.xsub, feeds)):
            try:
                sock.bind(endpoint)
            except zmq.ZMQError as exc:
                self.close()
                raise bind_error(endpoint, exc) from None
        self.bus = self.xpub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.feeds = self.xsub.getsockopt_string(zmq.LAST_ENDPOINT)
        self._control = f"inproc://oaws-forwarder-{id(self)}"
        self._steer = self.ctx.socket(zmq.PAIR)
        self._steer.bind(self._control)
        self._thread = threading.Thread(target=self._run, name="oaws-forwarder", daemon=True)

    def _run(self) -> None:
        control = self.ctx.socket(zmq.PAIR)
        control.connect(self._control)
        try:
            zmq.proxy_steerable(self.xsub, self.xpub, None, control)
        except zmq.ContextTerminated:
            pass
        finally:
            control.close(0)

    def start(self) -> None:
        self._thread.start()
        log.info("forwarding feeds at %s to proxies at %s", self.feeds, self.bus)

    async def run(self) -> None:
        """Until cancelled."""
        self.start()
        try:
            await asyncio.Event().wait()
        finally:
            self.close()

    def close(self) -> None:
        if getattr(self, "_thread", None) is not None and self._thread.is_alive():
            self._steer.send(b"TERMINATE")
            self._thread.join(2)
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
        self.ctx.destroy(0)
