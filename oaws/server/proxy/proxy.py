"""``Proxy``: the jobs of the proxy put together around one WebSocket server and one bus.

Each connection's requests go through the sans-I/O ``oaws.protocol.Session``; this module
applies what it decides, with the flood control and the authentication guard in front.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from oaws import __version__
from oaws.instruments import Instrument
from oaws.protocol.bus import INFO_TOPIC
from oaws.protocol.codes import (
    FEED_ENDED,
    FEED_NONE,
    FEED_STATUS_PARAMETER,
    SERVER_ERROR,
    error,
    feed_status,
)
from oaws.protocol.history import HISTORY_REPLY
from oaws.protocol.orders import is_order_topic
from oaws.protocol.server import SLICE, Quota, Session
from oaws.server.bus import BusReader
from oaws.server.proxy.auth import AuthGuard
from oaws.server.proxy.connection import OPEN, BudgetedConnection, Client
from oaws.server.proxy.fanout import Fanout, Route
from oaws.server.proxy.feeds import Feeds
from oaws.server.proxy.flood import FloodControl
from oaws.server.proxy.gate import Gate
from oaws.server.proxy.history import Histories
from oaws.server.proxy.logs import Throttled
from oaws.server.proxy.options import ProxyOptions
from oaws.server.proxy.orders import Orders
from oaws.server.proxy.slow import SlowClients, conflate

log = logging.getLogger(__name__)
#: a client can make a request fail at will: logged at a bounded rate
request_failures = Throttled(log)

#: clients listed in ``/health`` (``per_client``); ``clients`` counts them all
PER_CLIENT_SHOWN = 100
#: seconds a closing client has to answer the close frame
CLOSE_TIMEOUT = 2
#: seconds between two rounds of tending slow clients
TEND_EVERY = 0.05
#: received frames a connection holds ahead of the one being handled
RECV_QUEUE = 4
#: seconds after a subscribe before a client is told that the feed has ended: the feed's
#: latest ticks of new streams come over the bus meanwhile, and must come first
ENDED_AFTER = 0.3


class ServeError(Exception):
    """The proxy cannot start (port in use, address not available)."""


class Proxy:
    """Serves WebSocket clients from one bus. ``check`` validates instruments synchronously
    (the feed's own check when it runs in this process)."""

    def __init__(
        self,
        bus: str,
        options: ProxyOptions | None = None,
        *,
        check: Callable[[Instrument], None] | None = None,
        depths: tuple[int, ...] | None = None,
        feed_status: Callable[[], dict[str, Any]] | None = None,
        curve: Any = None,
    ) -> None:
        self.options = options = options or ProxyOptions()
        self.curve = curve
        self.bus_endpoint = bus
        self.check = check
        self.clients: set[Client] = set()
        #: open connections per address (for ``max_connections_per_address``)
        self.per_address: dict[str, int] = {}
        self.histories = Histories()
        self.gate = Gate(
            options,
            self.stats,
            lambda: len(self.clients),
            lambda ip: self.per_address.get(ip, 0),
            self.histories,
        )
        self.slow = SlowClients(options.soft_limit, options.slow_timeout, self._close)
        self.fanout = Fanout(options.soft_limit, self.slow, broker=self.broker, on_control=self._on_control)
        self.feeds = Feeds(
            self.fanout, broker=options.broker, brokers=options.brokers, depths=depths, status=feed_status
        )
        self.orders = Orders(self._order_brokers, self.fanout.flush)
        self.quota = Quota(options.quota, lambda: len(self.fanout.routes), self.fanout.served)
        self.auth = AuthGuard(options.auth_timeout, self._close)
        self.flood = FloodControl(options.work_rate, options.flood_close)
        self.started = time.time()
        #: messages sent to clients that have left (the ones here count in their own ``sent``)
        self.sent_gone = 0
        #: clients aborted for a send buffer past the hard cap
        self.aborted = 0
        self._closing: set[asyncio.Task[None]] = set()
        self._rates = {"in": 0.0, "out": 0.0}
        self._rate_mark = (time.monotonic(), 0, 0)
        self.reader: BusReader | None = None
        self.server: Server | None = None
        self._tender: asyncio.Task[None] | None = None
        self.url = ""

    # Life cycle ----------------------------------------------------------------
    async def start(self) -> None:
        self.reader = BusReader(self.bus_endpoint, self.fanout.on_ticks, curve=self.curve)
        self.fanout.reader = self.orders.reader = self.histories.reader = self.reader
        o = self.options
        try:
            self.server = await serve(
                self._serve_client,
                o.host,
                o.port,
                compression=None,
                max_size=o.max_frame,
                # the transport says when a client's send buffer passes the soft limit
                # (it stops being read) and when it drains to half of it (``connection``)
                create_connection=BudgetedConnection,
                # frames read ahead of the request being handled: a client is served one
                # request at a time, and what it sends meanwhile waits in its own socket,
                # not in ours (websockets' default, 16 frames of up to 1 MiB, is 16 MiB a client)
                max_queue=RECV_QUEUE,
                write_limit=(o.soft_limit, o.soft_limit // 2),
                ping_interval=o.ping_interval,
                ping_timeout=o.ping_timeout,
                close_timeout=CLOSE_TIMEOUT,
                process_request=self.gate.process_request,
                reuse_port=o.reuse_port or None,
                server_header=f"oaws/{__version__}",
                ssl=o.ssl,
                origins=self.gate.origins(),
            )
        except OSError as exc:
            self.reader.close()
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(
                    f"port {o.port} on {o.host} is in use; stop the program using it or pick another with --port"
                ) from None
            raise ServeError(f"cannot listen on {o.host}:{o.port}: {exc.strerror or exc}") from None
        sock = next(iter(self.server.sockets))
        host, port = sock.getsockname()[:2]
        self.port = port
        scheme = "wss" if o.ssl is not None else "ws"
        self.url = f"{scheme}://{host if ':' not in host else '[' + host + ']'}:{port}"
        self.reader.start()
        self._tender = asyncio.create_task(self._tend())
        log.info("proxy listening on %s, bus %s", self.url, self.bus_endpoint)

    async def close(self) -> None:
        """Close every client with 1001 (going away) and stop."""
        if self._tender:
            self._tender.cancel()
        if self.server is not None:
            self.server.close(close_connections=True)
            try:
                await asyncio.wait_for(self.server.wait_closed(), 3)
            except TimeoutError:
                log.warning("some clients did not close in time")
        if self.reader is not None:
            self.reader.close()

    async def _tend(self) -> None:
        """Every 50 ms: tend the slow clients; every second, the rates of ``/health``."""
        while True:
            await asyncio.sleep(TEND_EVERY)
            now = time.monotonic()
            self.slow.tend(now)
            t, n_in, n_out = self._rate_mark
            if now - t >= 1.0 and self.reader is not None:
                ticks_out = self.ticks_out()
                self._rates = {"in": (self.reader.received - n_in) / (now - t), "out": (ticks_out - n_out) / (now - t)}
                self._rate_mark = (now, self.reader.received, ticks_out)
                self._tell_feed_state()

    # The feed's state, for clients that asked (``?feed_status=1``) ----------------------
    def _feed_sentence(self, state: str) -> str:
        broker = self.broker()
        if state == FEED_NONE:
            return f"the server has no feed on its bus ({self.bus_endpoint}): ticks come once a feed joins it"
        if state == FEED_ENDED:
            what = "the replay" if broker == "replay" else f"the {broker} feed"
            return f"{what} has ended: no more ticks will come"
        return f"the {broker} feed is on the bus: ticks come as it publishes them"

    def _tell_feed_state(self, clients: Any = None) -> None:
        """Tell each client that asked, and holds a subscription, of a feed state it was not told yet.

        That the feed has ended waits ``ENDED_AFTER`` a subscribe: a stream new on the bus gets
        its latest tick from the feed (a replay's, of where it ended), which comes first."""
        state: str | None = None
        now = time.monotonic()
        for c in list(self.clients) if clients is None else clients:
            if not c.feed_status or not c.session.pairs():
                continue
            if state is None:
                state = self.feeds.state()
            if state == FEED_ENDED and now - c.subscribed_at < ENDED_AFTER:
                continue  # the next round tells it
            if state != c.feed_told:
                c.feed_told = state
                c.send(feed_status(state, self._feed_sentence(state), self.broker()))

    # What the feeds say, for the sessions -----------------------------------------
    def broker(self) -> str:
        return self.feeds.broker()

    def depths(self) -> tuple[int, ...]:
        return self.feeds.depths()

    def broker_info(self) -> dict[str, Any]:
        return self.feeds.broker_info()

    def brokers(self) -> list[str]:
        return self.feeds.brokers()

    def _on_control(self, topic: bytes, payload: bytes) -> None:
        # the fan-out is made before the feed control that acts on its routes
        if is_order_topic(topic):
            self.orders.relay(topic, payload)
            return
        if topic.startswith(HISTORY_REPLY):
            self.histories.on_reply(topic, payload)
            return
        self.feeds.on_control(topic, payload)
        if topic == INFO_TOPIC and self.orders.clients:
            self.orders.resubscribe()  # a feed of another broker may have joined

    def _order_brokers(self) -> list[str]:
        return [*self.feeds.brokers(), self.feeds.default_broker]

    # Figures -------------------------------------------------------------------
    @property
    def routes(self) -> dict[bytes, Route]:
        return self.fanout.routes

    @property
    def last(self) -> dict[bytes, bytes]:
        return self.fanout.last

    @property
    def conflating(self) -> set[Client]:
        return self.slow.conflating

    @property
    def failed_auth(self) -> dict[str, tuple[int, float]]:
        return self.auth.failed

    def ticks_out(self) -> int:
        return self.sent_gone + sum(c.sent for c in self.clients)

    def stats(self) -> dict[str, Any]:
        assert self.reader is not None
        return {
            "version": __version__,
            "pid": os.getpid(),
            "url": self.url,
            "bus": self.bus_endpoint,
            "broker": self.broker(),
            "uptime": round(time.time() - self.started, 1),
            "tasks": len(asyncio.all_tasks(self._tender.get_loop())) if self._tender else 0,
            "clients": len(self.clients),
            "topics": len(self.routes),
            "instruments": len({r.instrument for r in self.routes.values()}),
            "ticks_in": self.reader.received,
            "ticks_out": self.ticks_out(),
            "ticks_in_per_s": round(self._rates["in"], 1),
            "ticks_out_per_s": round(self._rates["out"], 1),
            "conflating": len(self.conflating),
            "slow_closed": self.slow.closed,
            "over_budget_aborted": self.aborted,
            "ticks_conflated": self.slow.skipped_gone + sum(c.conflated for c in self.clients),
            "bus_refused": self.reader.refused,
            "bus_gaps": self.fanout.gaps,
            "bus_missing": self.fanout.missing,
            "bus_dropped": self.fanout.dropped,
            "order_clients": len(self.orders.clients),
            "order_updates": self.orders.relayed,
            "feed": self.broker_info(),
            "feeds": [dict(info) for info, _ in self.feeds.fresh()],
            "connections_refused": self.gate.refused,
            "per_client": [c.stats() for c in itertools.islice(self.clients, PER_CLIENT_SHOWN)],
        }

    # Clients -------------------------------------------------------------------
    async def _on_request(self, c: Client, frame: str | bytes) -> None:
        """One request: handled by the session in slices (the loop runs between them, so a
        large request never holds up the fan-out), then its replies, route changes and
        snapshots, in that order."""
        steps = c.session.steps(frame)
        try:
            while True:
                next(steps)
                await asyncio.sleep(0)
        except StopIteration as done:
            outcome = done.value
        except Exception as exc:  # a bug must cost this request, not the connection
            request_failures.exception("request from %s failed", c.peer)
            c.send(error(SERVER_ERROR, str(exc)[:200] or type(exc).__name__))
            return
        c.bucket.spend(outcome.work)
        ons = [change for change in outcome.changes if change.on]
        # the streams dropped stop before the reply, as ever; in slices too
        for n, change in enumerate(change for change in outcome.changes if not change.on):
            if n and n % SLICE == 0:
                await asyncio.sleep(0)
            self.fanout.apply(c, change)
        for reply in outcome.replies:
            c.send(reply)
        if c.session.orders != (c in self.orders.clients):
            self.orders.follow(c, c.session.orders)
        joining = {change.stream for change in ons}
        self._send_snapshots(c, self.fanout.snapshots(c, [s for s in outcome.snapshots if s not in joining]))
        # the streams joined: each slice's routes, then their snapshots, then the loop's turn
        quota = self.quota
        reserved = len(ons) if len(ons) > SLICE else 0
        quota.reserve(reserved)  # not yet routed, but taken: other clients' subscribes see them so
        try:
            holds = c.session.holds
            for start in range(0, len(ons), SLICE):
                if start:
                    await asyncio.sleep(0)
                chunk = ons[start : start + SLICE]
                if reserved:
                    quota.reserve(-len(chunk))
                    reserved -= len(chunk)
                # a stream the feed refused meanwhile is not joined
                chunk = [change for change in chunk if holds(change.stream)]
                for change in chunk:
                    self.fanout.apply(c, change)
                self._send_snapshots(c, self.fanout.snapshots(c, [change.stream for change in chunk]))
        finally:
            quota.reserve(-reserved)
        if c.feed_status and (ons or outcome.snapshots):
            # after the snapshots: no feed is said at once; an ended one after the feed's latest ticks
            c.subscribed_at = time.monotonic()
            self._tell_feed_state([c])

    def _send_snapshots(self, c: Client, snapshots: list[tuple[bytes, bytes]]) -> None:
        """The snapshots of a subscribe, within the client's budget: written while its send
        buffer is under the soft limit, then conflated (sent as it drains)."""
        limit = self.options.soft_limit
        chunk: list[bytes] = []
        size = 0
        if c.ws.protocol.state is not OPEN:
            return
        for topic, body in snapshots:
            if c.conflating:
                conflate(c, topic, body)
                continue
            chunk.append(body)
            size += len(body)
            if size >= limit // 4:
                c.write(chunk)
                chunk, size = [], 0
                if c.transport.get_write_buffer_size() > limit and not c.conflating:
                    self.slow.begin(c)
        if chunk:
            c.write(chunk)

    async def _caught_up(self, c: Client) -> None:
        """Read no further request from a client while what it has not read is over the soft
        limit: what is queued for it stays bounded (the soft limit, plus one request's
        replies and snapshots), and it is conflated, and closed if it stays behind."""
        limit = self.options.soft_limit
        while c.ws.protocol.state is OPEN and c.transport.get_write_buffer_size() > limit:
            if not c.conflating:
                self.slow.begin(c)
            await asyncio.sleep(TEND_EVERY)

    @staticmethod
    async def _closed(c: Client, code: int, reason: str) -> None:
        """Close with ``code``; a client that reads nothing never takes the close frame off
        a full buffer (websockets then waits on it for good): aborted after the close timeout."""
        try:
            await asyncio.wait_for(c.ws.close(code, reason), CLOSE_TIMEOUT + 1)
        except TimeoutError:
            c.transport.abort()

    def _over_budget(self) -> None:
        self.aborted += 1

    def _close(self, c: Client, code: int, reason: str) -> None:
        """Close without waiting here; the task is kept so that it is not collected mid-way."""
        task = asyncio.create_task(self._closed(c, code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _serve_client(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "/").query)
        batch = query.get("batch", ["0"])[-1].lower() in ("1", "true", "yes")
        wants_feed_status = query.get(FEED_STATUS_PARAMETER, ["0"])[-1].lower() in ("1", "true", "yes")
        session = Session(
            api_key=self.options.api_key,
            broker=self.broker,
            broker_info=self.broker_info,
            brokers=self.brokers,
            check=self.check or (lambda i: None),
            depths=self.depths,
            limits=self.options.limits,
            quota=self.quota,
        )
        c = Client(ws, session, batch, self.flood.bucket())
        c.feed_status = wants_feed_status
        self.clients.add(c)
        self.per_address[c.ip] = self.per_address.get(c.ip, 0) + 1
        if isinstance(ws, BudgetedConnection):
            ws.hard_limit = self.options.hard_cap
            ws.behind = lambda: None if c.conflating or c.closing else self.slow.begin(c)
            ws.over_budget = self._over_budget
            if ws.transport.get_write_buffer_size() > self.options.soft_limit:
                ws.behind()
        deadline = self.auth.deadline(c) if self.options.api_key is not None else None
        log.debug("client %s connected%s", c.peer, " (batch)" if batch else "")
        try:
            async for frame in ws:
                if not self.flood.admit(c.bucket, c.send):
                    if self.flood.overwhelmed(c.bucket):
                        log.warning("closing %s: request flood", c.peer)
                        await self._closed(c, CloseCode.POLICY_VIOLATION, "request flood")
                        break
                    continue
                async with self.auth.turn(c):
                    failures, was_authenticated = session.failed_auth, session.authenticated
                    await self._on_request(c, frame)
                    self.auth.settle(c, failures, was_authenticated)
                await self._caught_up(c)
        except ConnectionClosed:
            pass
        finally:
            if deadline is not None:
                deadline.cancel()
            for change in session.close():
                self.fanout.apply(c, change)
            if c in self.orders.clients:
                self.orders.follow(c, False)
            self.clients.discard(c)
            left = self.per_address.pop(c.ip, 1) - 1
            if left > 0:
                self.per_address[c.ip] = left
            self.sent_gone += c.sent
            self.slow.forget(c)
            log.debug("client %s gone (code %s)", c.peer, ws.close_code)
