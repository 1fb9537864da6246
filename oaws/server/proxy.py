"""The WebSocket proxy: clients in, ticks from the bus out (SPEC §1).

How a tick travels, and why it is fast:

* ``BusReader`` drains the SUB socket straight from the event loop into ``_on_ticks``,
  a batch at a time.
* Each topic has a ``Route``: the JSON prefix of its ``market_data`` message, built once,
  and the clients that receive it. A message is ``prefix + payload + "}"``: the tick is
  never parsed. A server frame is not masked, so the WebSocket frame itself is the same
  bytes for every client: it is built once per tick and mode.
* Frames queue per client during a drain cycle and go out with one ``transport.write``
  per client per cycle. Nothing awaits a client: a slow client only grows its own
  buffer.
* Past ``soft_limit`` bytes of unsent data a client is conflated: it keeps only the
  latest tick of each topic until its buffer drains below half the limit. Conflated for
  longer than ``slow_timeout`` seconds, it is closed with 1008.
* ``?batch=1`` clients get one JSON array of messages per cycle instead.

Requests go through the sans-I/O ``oaws.protocol.Session``; this module applies what it
decides.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from oaws import __version__
from oaws.instruments import Instrument
from oaws.protocol.codes import Limits, error
from oaws.protocol.server import Change, Session
from oaws.server.bus import INFO_TOPIC, REJECT_TOPIC, BusReader

log = logging.getLogger(__name__)

OPEN = State.OPEN
AUTH_TIMEOUT_CODE = 4401
SLOW_CLIENT_CODE = 1008


class ServeError(Exception):
    """The proxy cannot start (port in use, address not available)."""


def text_frame(body: bytes) -> bytes:
    """An unmasked, final WebSocket text frame (RFC 6455 §5.2) around ``body``."""
    n = len(body)
    if n < 126:
        return bytes((0x81, n)) + body
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + body
    return b"\x81\x7f" + n.to_bytes(8, "big") + body


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str | None = None
    broker: str = "sim"
    limits: Limits = Limits()
    #: bytes of unsent data past which a client is conflated
    soft_limit: int = 256 * 1024
    #: seconds a client may stay conflated before it is closed with 1008
    slow_timeout: float = 3.0
    auth_timeout: float = 15.0
    max_frame: int = 128 * 1024
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    reuse_port: bool = False
    #: requests per second a client may send (a token bucket of twice that); a flood is
    #: answered with LIMIT_EXCEEDED, and a client that goes on is closed with 1008
    request_rate: float = 100.0
    flood_close: int = 1000
    #: browser origins allowed to connect (None: see same_origin); clients that send no Origin always may
    allowed_origins: tuple[str, ...] | None = None
    #: with no allowed_origins: refuse a browser whose page is not served from this very
    #: host and port (on by default off loopback: a page elsewhere must not reach the feed)
    same_origin: bool = False
    ssl: Any = None


class Client:
    """One connection's delivery state."""

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
        "tokens",
        "refilled",
        "flooded",
    )

    def __init__(self, ws: ServerConnection, session: Session, batch: bool) -> None:
        self.ws = ws
        self.transport = ws.transport
        self.session = session
        self.batch = batch
        self.out: list[bytes] = []  # frames of this cycle (single-tick clients)
        self.items: list[bytes] = []  # messages of this cycle (batch clients)
        self.conflating = False
        self.latest: dict[bytes, bytes] = {}  # topic -> message, while conflating
        self.slow_since = 0.0
        self.sent = 0
        self.conflated = 0
        self.peer = "%s:%s" % (ws.remote_address[:2] if ws.remote_address else ("?", "?"))
        self.ip = str(ws.remote_address[0]) if ws.remote_address else "?"
        self.connected_at = time.time()
        self.closing = False
        self.tokens = 0.0
        self.refilled = time.monotonic()
        self.flooded = 0

    def allow(self, rate: float) -> bool:
        """Take a request token (the bucket holds two seconds' worth)."""
        now = time.monotonic()
        self.tokens = min(2 * rate, self.tokens + (now - self.refilled) * rate)
        self.refilled = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

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


class Route:
    """A bus topic and the clients that receive it."""

    __slots__ = ("topic", "instrument", "mode", "prefix", "single", "batched", "fseq")

    def __init__(self, topic: bytes, instrument: Instrument, mode: int, broker: str) -> None:
        self.topic = topic
        self.instrument = instrument
        self.mode = mode
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


class Proxy:
    """Serves WebSocket clients from one bus. ``check`` validates instruments synchronously
    (the feed's own check when it runs in this process)."""

    def __init__(
        self,
        bus: str,
        options: ProxyOptions = ProxyOptions(),
        *,
        check: Callable[[Instrument], None] | None = None,
        depths: tuple[int, ...] | None = None,
        feed_status: Callable[[], dict[str, Any]] | None = None,
        curve: Any = None,
    ) -> None:
        self.options = options
        self.curve = curve
        self.bus_endpoint = bus
        self.check = check
        self._depths = depths
        self._feed_status = feed_status
        self.routes: dict[bytes, Route] = {}
        self.last: dict[bytes, bytes] = {}
        self.clients: set[Client] = set()
        self.conflating: set[Client] = set()
        #: what each feed on the bus last announced (by feed id), and when
        self.feeds: dict[str, tuple[dict[str, Any], float]] = {}
        self.started = time.time()
        self.ticks_out = 0
        self.slow_closed = 0
        #: ticks slow clients that have left never got (superseded while conflating, or
        #: pending when they went); the ones still here count in their own ``conflated``
        self.skipped_gone = 0
        self.rejected = 0
        self._closing: set[asyncio.Task[None]] = set()
        self.gaps = 0
        self.missing = 0
        self.failed_auth: dict[str, tuple[int, float]] = {}
        self._rates = {"in": 0.0, "out": 0.0}
        self._rate_mark = (time.monotonic(), 0, 0)
        self.reader: BusReader | None = None
        self.server: Server | None = None
        self._tender: asyncio.Task[None] | None = None
        self.url = ""

    # Life cycle ----------------------------------------------------------------
    async def start(self) -> None:
        self.reader = BusReader(self.bus_endpoint, self._on_ticks, curve=self.curve)
        o = self.options
        try:
            self.server = await serve(
                self._serve_client,
                o.host,
                o.port,
                compression=None,
                max_size=o.max_frame,
                ping_interval=o.ping_interval,
                ping_timeout=o.ping_timeout,
                close_timeout=2,
                process_request=self._process_request,
                reuse_port=o.reuse_port or None,
                server_header=f"oaws/{__version__}",
                ssl=o.ssl,
                origins=[*o.allowed_origins, None] if o.allowed_origins else None,
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

    # Figures -------------------------------------------------------------------
    def broker(self) -> str:
        names = sorted({str(info.get("broker")) for info, _ in self._fresh_feeds()})
        return "+".join(names) if names else self.options.broker

    def depths(self) -> tuple[int, ...]:
        if self._depths:
            return self._depths
        depths = {d for info, _ in self._fresh_feeds() for d in info.get("depths") or ()}
        return tuple(sorted(depths)) or (5,)

    def broker_info(self) -> dict[str, Any]:
        if self._feed_status is not None:
            return self._feed_status()
        statuses = sorted({str(info.get("adapter_status", "connected")) for info, _ in self._fresh_feeds()})
        return {"adapter_status": "+".join(statuses) if statuses else "no feed on the bus"}

    def _fresh_feeds(self) -> list[tuple[dict[str, Any], float]]:
        """The feeds heard from in the last few seconds (each announces itself every second)."""
        now = time.time()
        return [(info, at) for info, at in self.feeds.values() if now - at < 3.5]

    def stats(self) -> dict[str, Any]:
        assert self.reader is not None
        return {
            "version": __version__,
            "pid": os.getpid(),
            "url": self.url,
            "bus": self.bus_endpoint,
            "broker": self.broker(),
            "uptime": round(time.time() - self.started, 1),
            "clients": len(self.clients),
            "topics": len(self.routes),
            "instruments": len({r.instrument for r in self.routes.values()}),
            "ticks_in": self.reader.received,
            "ticks_out": self.ticks_out,
            "ticks_in_per_s": round(self._rates["in"], 1),
            "ticks_out_per_s": round(self._rates["out"], 1),
            "conflating": len(self.conflating),
            "slow_closed": self.slow_closed,
            "ticks_conflated": self.skipped_gone + sum(c.conflated for c in self.clients),
            "bus_refused": self.reader.refused,
            "bus_gaps": self.gaps,
            "bus_missing": self.missing,
            "feed": self.broker_info(),
            "feeds": [{k: v for k, v in info.items()} for info, _ in self._fresh_feeds()],
            "per_client": [c.stats() for c in self.clients],
        }

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        if origin is not None and self.options.same_origin and not self.options.allowed_origins:
            host = request.headers.get("Host", "")
            if urlsplit(origin).netloc.lower() != host.lower():
                log.warning("refused a browser page from %s: allow it with --allowed-origin", origin)
                return connection.respond(
                    HTTPStatus.FORBIDDEN, f"Origin {origin} is not allowed (see --allowed-origin)\n"
                )
        if urlsplit(request.path).path.rstrip("/") != "/health":
            return None
        body = orjson.dumps(self.stats())
        headers = Headers(
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")]
        )
        return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, body)

    # Fan-out -------------------------------------------------------------------
    def _on_ticks(self, batch: list[tuple[bytes, bytes]]) -> None:
        routes_get = self.routes.get
        last = self.last
        dirty: list[Client] = []
        for topic, payload in batch:
            route = routes_get(topic)
            if route is None:
                if topic[:6] == b"_oaws.":
                    self._on_control(topic, payload)
                continue
            last[topic] = payload
            if payload[:8] == b'{"fseq":':
                n = int(payload[8 : payload.index(b",", 8)] if b"," in payload[8:24] else payload[8:-1])
                seen = route.fseq
                if seen is not None and n > seen + 1:
                    self._gap(route, n - seen - 1)
                route.fseq = n  # lower than seen: the feed restarted and counts afresh
            body = route.prefix + payload + b"}"
            if route.single:
                frame = text_frame(body)
                for c in route.single:
                    if c.conflating:
                        self._conflate(c, topic, body)
                        continue
                    out = c.out
                    if not out:
                        dirty.append(c)
                    out.append(frame)
            for c in route.batched:
                if c.conflating:
                    self._conflate(c, topic, body)
                    continue
                items = c.items
                if not items:
                    dirty.append(c)
                items.append(body)
        for c in dirty:
            self._flush(c)

    def _gap(self, route: Route, missing: int) -> None:
        self.gaps += 1
        self.missing += missing
        log.warning("bus gap on %s: %d message(s) lost between the feed and this proxy", route.topic.decode(), missing)

    @staticmethod
    def _conflate(c: Client, topic: bytes, body: bytes) -> None:
        if topic in c.latest:
            c.conflated += 1
        c.latest[topic] = body

    def _flush(self, c: Client) -> None:
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
        self.ticks_out += n
        if c.transport.get_write_buffer_size() > self.options.soft_limit:
            c.conflating = True
            c.slow_since = time.monotonic()
            self.conflating.add(c)

    def _write_messages(self, c: Client, bodies: list[bytes]) -> None:
        """Messages outside the fan-out cycle (conflated ones, snapshots), framed for ``c``."""
        if not bodies:
            return
        if c.batch:
            c.transport.write(text_frame(b"[" + b",".join(bodies) + b"]"))
        else:
            c.transport.write(b"".join(text_frame(b) for b in bodies))
        c.sent += len(bodies)
        self.ticks_out += len(bodies)

    def _write_conflated(self, c: Client) -> None:
        bodies = list(c.latest.values())
        c.latest.clear()
        self._write_messages(c, bodies)

    async def _tend(self) -> None:
        """Every 50 ms: drain conflated clients that caught up, close those that did not."""
        loop_time = time.monotonic
        while True:
            await asyncio.sleep(0.05)
            now = loop_time()
            for c in list(self.conflating):
                try:
                    self._tend_client(c, now)
                except Exception:  # one client's trouble must not stop the tending of the others
                    log.exception("while tending slow client %s", c.peer)
                    self.conflating.discard(c)
            t, n_in, n_out = self._rate_mark
            if now - t >= 1.0 and self.reader is not None:
                self._rates = {
                    "in": (self.reader.received - n_in) / (now - t),
                    "out": (self.ticks_out - n_out) / (now - t),
                }
                self._rate_mark = (now, self.reader.received, self.ticks_out)

    def _tend_client(self, c: Client, now: float) -> None:
        if c.closing or c.ws.protocol.state is not OPEN:
            self.conflating.discard(c)
            return
        if c.transport.get_write_buffer_size() <= self.options.soft_limit // 2:
            self._write_conflated(c)
            if c.transport.get_write_buffer_size() <= self.options.soft_limit:
                c.conflating = False
                self.conflating.discard(c)
            else:
                c.slow_since = now
        elif now - c.slow_since > self.options.slow_timeout:
            c.closing = True
            self.conflating.discard(c)
            self.slow_closed += 1
            log.warning(
                "closing slow client %s: send buffer over %d bytes for %.0f s",
                c.peer,
                self.options.soft_limit,
                self.options.slow_timeout,
            )
            self._close(c, SLOW_CLIENT_CODE, "client too slow: send buffer full")

    # Control messages from the feed -------------------------------------------
    def _on_control(self, topic: bytes, payload: bytes) -> None:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if topic == INFO_TOPIC and isinstance(body, dict):
            old = self.broker()
            now = time.time()
            self.feeds = {fid: (info, at) for fid, (info, at) in self.feeds.items() if now - at < 60}
            self.feeds[str(body.get("fid", ""))] = (body, now)
            if self.broker() != old:
                for route in self.routes.values():
                    route.relabel(self.broker())
        elif topic == REJECT_TOPIC and isinstance(body, dict):
            route = self.routes.get(str(body.get("topic", "")).encode())
            if route is None:
                return
            reply = error(
                str(body.get("code", "BROKER_ERROR")),
                str(body.get("message", "the feed refused it")),
                symbol=route.instrument.symbol,
                exchange=route.instrument.exchange,
                mode=route.mode,
            )
            for c in list(route.single | route.batched):
                change = c.session.drop(route.instrument, [1, 2, 3])
                if change is not None:
                    self._apply(c, change)
                self._send(c, reply)
                self.rejected += 1

    # Clients -------------------------------------------------------------------
    def _send(self, c: Client, reply: dict[str, Any]) -> None:
        if c.ws.protocol.state is OPEN:
            c.transport.write(text_frame(orjson.dumps(reply)))

    def _apply(self, c: Client, change: Change) -> None:
        # Make before break: join the new route first, so that the feed never sees the
        # instrument go unwanted for a moment when a client only changes its mode.
        if change.new is not None:
            topic = change.instrument.topic(change.new).encode()
            route = self.routes.get(topic)
            if route is None:
                route = self.routes[topic] = Route(topic, change.instrument, change.new, self.broker())
                assert self.reader is not None
                self.reader.subscribe(topic)
            (route.batched if c.batch else route.single).add(c)
        if change.old is not None:
            topic = change.instrument.topic(change.old).encode()
            route = self.routes.get(topic)
            if route is not None:
                (route.batched if c.batch else route.single).discard(c)
                c.latest.pop(topic, None)
                if not route:
                    del self.routes[topic]
                    self.last.pop(topic, None)
                    assert self.reader is not None
                    self.reader.unsubscribe(topic)

    def _on_request(self, c: Client, frame: str | bytes) -> None:
        outcome = c.session.handle(frame)
        for reply in outcome.replies:
            self._send(c, reply)
        for change in outcome.changes:
            self._apply(c, change)
        snapshots = []
        for instrument in outcome.snapshots:
            mode = c.session.effective(instrument)
            if mode is None:
                continue
            topic = instrument.topic(mode).encode()
            payload = self.last.get(topic)
            route = self.routes.get(topic)
            if payload is not None and route is not None:
                snapshots.append(route.prefix + payload + b"}")
        if c.ws.protocol.state is OPEN:
            self._write_messages(c, snapshots)

    def _auth_failed(self, c: Client) -> None:
        count, last = self.failed_auth.get(c.ip, (0, 0.0))
        now = time.monotonic()
        count = 1 if now - last > 60 else count + 1  # failures are forgotten after a quiet minute
        self.failed_auth[c.ip] = (count, now)
        log.warning("failed authentication from %s (%d in a row)", c.ip, count)

    def _auth_delay(self, ip: str) -> float:
        """Seconds to wait before answering an address that failed to authenticate repeatedly."""
        count, last = self.failed_auth.get(ip, (0, 0.0))
        if time.monotonic() - last > 60:
            return 0.0
        return min(5.0, 0.25 * 2 ** (count - 3))

    def _auth_timeout(self, c: Client) -> None:
        if not c.session.authenticated and c.ws.protocol.state is OPEN:
            log.info("closing %s: not authenticated within %.0f s", c.peer, self.options.auth_timeout)
            self._close(c, AUTH_TIMEOUT_CODE, "auth timeout")

    def _close(self, c: Client, code: int, reason: str) -> None:
        """Close without waiting here; the task is kept so that it is not collected mid-way."""
        task = asyncio.create_task(c.ws.close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _serve_client(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "/").query)
        batch = query.get("batch", ["0"])[-1].lower() in ("1", "true", "yes")
        session = Session(
            api_key=self.options.api_key,
            broker=self.broker,
            broker_info=self.broker_info,
            check=self.check or (lambda i: None),
            depths=self.depths,
            limits=self.options.limits,
        )
        c = Client(ws, session, batch)
        c.tokens = 2 * self.options.request_rate
        self.clients.add(c)
        timer = None
        if self.options.api_key is not None:
            timer = asyncio.get_running_loop().call_later(self.options.auth_timeout, self._auth_timeout, c)
        log.debug("client %s connected%s", c.peer, " (batch)" if batch else "")
        try:
            async for frame in ws:
                if not c.allow(self.options.request_rate):
                    c.flooded += 1
                    if c.flooded == 1 or c.flooded % 100 == 0:
                        self._send(
                            c,
                            error(
                                "LIMIT_EXCEEDED",
                                f"more than {self.options.request_rate:g} requests per "
                                "second; requests are being dropped",
                            ),
                        )
                    if c.flooded >= self.options.flood_close:
                        log.warning("closing %s: request flood", c.peer)
                        await ws.close(SLOW_CLIENT_CODE, "request flood")
                        break
                    continue
                if not session.authenticated and self.failed_auth.get(c.ip, (0, 0.0))[0] >= 3:
                    await asyncio.sleep(self._auth_delay(c.ip))
                failures, was_authenticated = session.failed_auth, session.authenticated
                self._on_request(c, frame)
                if session.failed_auth > failures:
                    self._auth_failed(c)
                elif session.authenticated and not was_authenticated:
                    self.failed_auth.pop(c.ip, None)
        except ConnectionClosed:
            pass
        finally:
            if timer is not None:
                timer.cancel()
            for change in session.close():
                self._apply(c, change)
            self.clients.discard(c)
            self.conflating.discard(c)
            self.skipped_gone += c.conflated + len(c.latest)
            log.debug("client %s gone (code %s)", c.peer, ws.close_code)
