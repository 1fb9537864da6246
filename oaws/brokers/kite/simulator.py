"""A local stand-in for Zerodha Kite: Kite Connect's session endpoint, the instrument dump, the ticker.

No machine here reaches Zerodha, so the adapter (and the real ``kiteconnect`` package) are
tested against this, and ``oaws sim kite`` serves it to people who develop offline. It
follows Kite Connect v3 as its documentation and ``kiteconnect`` 5.2.2 show it; where the
live service's behaviour is not known, the choice is marked *assumed*.

REST (``http.server`` in a thread, so a blocking ``KiteConnect`` in the same process works):

- ``GET /connect/login?api_key=K&v=3`` stands in for Kite's login page: it answers 302 to
  ``http://127.0.0.1/redirect?request_token=T&action=login&type=login&status=success``
  with a fresh request token, as the browser would land after a login.
- ``POST /session/token`` (form-encoded ``api_key``, ``request_token``,
  ``checksum = sha256(api_key + request_token + api_secret)``) answers Kite's session
  (``access_token``, ``public_token``, ``login_time`` in IST, the user's details). A
  request token works once and for ``request_token_ttl`` seconds; refusals are 403
  ``TokenException``: "Token is invalid or has expired.", "Invalid `checksum`.",
  "Invalid `api_key`." (the last is assumed); a missing field is 400 ``InputException``.
- ``DELETE /session/token?api_key=K&access_token=T`` invalidates that access token.
- ``GET /user/profile`` and ``GET /quote?i=EXCHANGE:SYMBOL`` require
  ``Authorization: token api_key:access_token``; a bad, expired or revoked one is 403
  ``TokenException`` "Incorrect `api_key` or `access_token`.". ``/quote`` is where the
  circuit limits live (the ticker has none).
- ``GET /instruments`` and ``GET /instruments/{exchange}`` serve the dump as ``text/csv``
  with a ``Content-Length``, with or without an ``Authorization`` header (Kite's dump is
  public; a header is not checked); with ``gzip_dump=True``, gzip-encoded to clients that
  accept it, as Kite's is believed to be (then the length is the compressed size).
- Every authenticated route (not ``/instruments``, not the login page) requires
  ``X-Kite-Version: 3``: 400 ``InputException`` without it (the simulator's strictness;
  Kite itself may fall back to an older API version).
- Every error body is ``{"status":"error","message":...,"error_type":...,"data":null}``.

Ticker (``websockets`` server on the caller's event loop), ``ws://host:port/?api_key=K&access_token=T``:

- a bad api_key or access token is refused with HTTP 403 at the handshake; a fourth
  connection of one api_key with 429 (assumed); during ``restart()`` every handshake gets 503;
- ``{"a":"subscribe","v":[tokens]}`` puts the tokens in quote mode, ``{"a":"mode","v":
  [mode, [tokens]]}`` changes the mode of subscribed tokens (tokens not subscribed are
  ignored, assumed), ``{"a":"unsubscribe","v":[tokens]}``; tokens are JSON integers;
- more than ``tokens_per_connection`` (3000) on one connection: an error text message and
  the extra tokens ignored (assumed); tokens not in the dump are accepted and never tick;
  anything malformed gets ``{"type":"error","data":...}`` and the connection stays open;
- right after a subscribe or a mode change, one message with the new tokens' packets; then
  every ``tick_interval`` one binary message per connection holding a packet for each of
  its tokens (2-byte count, then 2-byte length and packet each, big-endian), prices as
  integers of rupees times the segment's divisor; a 1-byte heartbeat every
  ``heartbeat_interval`` (1 s).

Every message sent is remembered with the ticks it encodes (``ticks_of(frame)``,
``last_tick(token)``), so a test can compare what a decoder made of a frame with what
the simulator meant, field by field. Failures on demand: ``drop_all()``, ``go_silent()``,
``send_garbage()``, ``expire_tokens()``, ``rest_fault()``, ``restart()``, and the text
messages ``push_order()``, ``send_error()``, ``send_message()``; for ``oaws sim kite``
the same as ``POST /sim/...`` on the REST port (``CONTROL_HELP``).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import hashlib
import io
import json
import logging
import random
import secrets
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from oaws.brokers import simulation
from oaws.brokers.kite.dump import build_dump

log = logging.getLogger(__name__)
# websockets logs handshake requests (the URL carries the access token) at DEBUG: keep them out
_ws_log = logging.getLogger("oaws.kite.simulator.websocket")
_ws_log.setLevel(logging.INFO)

IST = timezone(timedelta(hours=5, minutes=30))

DEFAULT_API_KEY = "sim_kite_key"
DEFAULT_API_SECRET = "sim_kite_secret"
DEFAULT_USER_ID = "AB1234"
#: Where the login page stand-in redirects to, as a Kite app's registered redirect URL would be.
REDIRECT_URL = "http://127.0.0.1/redirect"

MODE_LTP, MODE_QUOTE, MODE_FULL = "ltp", "quote", "full"
MODES = (MODE_LTP, MODE_QUOTE, MODE_FULL)
#: kiteconnect's EXCHANGE_MAP: the low byte of an instrument token
SEG_CDS, SEG_BCD, SEG_INDICES, SEG_NCO = 3, 6, 9, 12
DERIVATIVE_SEGMENTS = {2, 3, 5, 6, 7, 8, 12}

CONTROL_PREFIX = simulation.CONTROL_PREFIX
CONTROLS = ("drop", "silent", "garbage", "expire", "rest-fault", "restart", "order", "error", "message")
CONTROL_HELP = "POST /sim/" + ", /sim/".join(CONTROLS)
DEFAULT_SILENCE = 60.0
MAX_SECONDS = 3600.0
FRAMES_KEPT = 5000
#: the records of what happened (requests, refusals, controls) keep at least this many entries each
LOG_KEPT = 10_000

ERROR_TYPES = {
    400: "InputException",
    403: "TokenException",
    404: "GeneralException",
    405: "GeneralException",
    429: "NetworkException",
    500: "GeneralException",
    502: "NetworkException",
    503: "NetworkException",
    504: "NetworkException",
}
FAULT_MESSAGES = {
    429: "Too many requests",
    500: "Something went wrong",
    502: "Couldn't connect to the OMS",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def divisor(token: int) -> int:
    """What the ticker's integer prices of ``token`` are divided by (its segment byte decides)."""
    segment = token & 0xFF
    if segment == SEG_CDS:
        return 10_000_000
    if segment in (SEG_BCD, SEG_NCO):
        return 10_000
    return 100


def is_index(token: int) -> bool:
    return token & 0xFF == SEG_INDICES


@dataclass(frozen=True)
class Depth:
    quantity: int
    price: int
    orders: int


@dataclass(frozen=True)
class Tick:
    """One packet as the simulator means it: prices in the wire's integers (``price()`` gives rupees).

    ``mode`` and the token's segment decide the packet: ltp 8 bytes, quote 44 (index 28),
    full 184 (index 32). Fields a packet does not carry are still set (they are what the
    market was); ``packet_fields()`` names the ones encoded.
    """

    instrument_token: int
    mode: str
    last_price: int
    last_quantity: int = 0
    average_price: int = 0
    volume: int = 0
    buy_quantity: int = 0
    sell_quantity: int = 0
    open: int = 0
    high: int = 0
    low: int = 0
    close: int = 0
    #: epoch seconds
    last_trade_time: int = 0
    oi: int = 0
    oi_day_high: int = 0
    oi_day_low: int = 0
    #: epoch seconds
    exchange_timestamp: int = 0
    #: five bids then five offers
    depth: tuple[Depth, ...] = ()

    @property
    def divisor(self) -> int:
        return divisor(self.instrument_token)

    @property
    def is_index(self) -> bool:
        return is_index(self.instrument_token)

    @property
    def net_change(self) -> int:
        """Bytes 24-28 of an index packet, signed: last price minus close."""
        return self.last_price - self.close

    def price(self, value: int) -> float:
        return value / self.divisor

    @property
    def size(self) -> int:
        if self.mode == MODE_LTP:
            return 8
        if self.is_index:
            return 28 if self.mode == MODE_QUOTE else 32
        return 44 if self.mode == MODE_QUOTE else 184


def encode_packet(tick: Tick) -> bytes:
    """One packet of ``tick`` (without its 2-byte length), big-endian as Kite's ticker sends it."""
    head = struct.pack(">II", tick.instrument_token, tick.last_price)
    if tick.mode == MODE_LTP:
        return head
    if tick.is_index:
        body = head + struct.pack(">IIIIi", tick.high, tick.low, tick.open, tick.close, tick.net_change)
        return body if tick.mode == MODE_QUOTE else body + struct.pack(">I", tick.exchange_timestamp)
    body = head + struct.pack(
        ">IIIIIIIII",
        tick.last_quantity,
        tick.average_price,
        tick.volume,
        tick.buy_quantity,
        tick.sell_quantity,
        tick.open,
        tick.high,
        tick.low,
        tick.close,
    )
    if tick.mode == MODE_QUOTE:
        return body
    body += struct.pack(
        ">IIIII", tick.last_trade_time, tick.oi, tick.oi_day_high, tick.oi_day_low, tick.exchange_timestamp
    )
    assert len(tick.depth) == 10, "a full packet carries five bids and five offers"
    return body + b"".join(struct.pack(">IIHxx", d.quantity, d.price, d.orders) for d in tick.depth)


def encode_message(ticks: Iterable[Tick]) -> bytes:
    """One binary message: the packet count, then each packet behind its length."""
    packets = [encode_packet(t) for t in ticks]
    return struct.pack(">H", len(packets)) + b"".join(struct.pack(">H", len(p)) + p for p in packets)


HEARTBEAT = b"\x00"

#: The malformed frames ``send_garbage()`` sends by default, each named by what is wrong with it.
GARBAGE_FRAMES: dict[str, bytes | str] = {
    # says three packets, holds one: kiteconnect's own parser raises struct.error on it
    "count beyond the data": struct.pack(">HH", 3, 8) + struct.pack(">II", 408065, 189_000),
    # one packet whose length says 60 bytes, followed by 10
    "length beyond the data": struct.pack(">HH", 1, 60) + b"\x00" * 10,
    # a packet of 13 bytes, a size no mode has (kiteconnect skips it silently)
    "unknown packet size": struct.pack(">HH", 1, 13) + struct.pack(">II", 408065, 189_000) + b"\x01" * 5,
    # a full-sized packet cut short: 2 + 2 + 100 bytes where 184 were announced
    "truncated full packet": struct.pack(">HH", 1, 184) + struct.pack(">II", 408065, 189_000) + b"\x07" * 92,
    # a 3-byte binary message: too short for a packet count plus a length
    "three bytes": b"\x00\x01\x00",
    # a text message that is not JSON
    "text that is not JSON": "{this is not json",
    # JSON of an unknown type
    "unknown text message type": json.dumps({"type": "surprise", "data": [1, 2, 3]}),
}


@dataclass
class _Market:
    """The simulated market of one token, in the wire's integers."""

    token: int
    ltp: int
    tick: int
    close: int
    derivative: bool
    open: int = 0
    high: int = 0
    low: int = 0
    volume: int = 0
    turnover: int = 0
    last_quantity: int = 0
    oi: int = 0
    oi_high: int = 0
    oi_low: int = 0
    last_trade_time: int = 0

    def __post_init__(self) -> None:
        self.open = self.high = self.low = self.ltp

    def step(self, rng: random.Random) -> None:
        self.ltp = max(self.tick, self.ltp + rng.choice((-2, -1, -1, 0, 1, 1, 2)) * self.tick)
        self.high, self.low = max(self.high, self.ltp), min(self.low, self.ltp)
        self.last_quantity = rng.randint(1, 500)
        self.volume += self.last_quantity
        self.turnover += self.last_quantity * self.ltp
        self.last_trade_time = int(time.time())
        if self.derivative:
            self.oi = max(0, self.oi + rng.randint(-50, 60) * 25)
            self.oi_high, self.oi_low = max(self.oi_high, self.oi), min(self.oi_low, self.oi)

    def tick_now(self, mode: str, rng: random.Random) -> Tick:
        now = int(time.time())
        depth = tuple(
            Depth(rng.randint(1, 5000), max(0, self.ltp - (i + 1) * self.tick), rng.randint(1, 40)) for i in range(5)
        ) + tuple(Depth(rng.randint(1, 5000), self.ltp + (i + 1) * self.tick, rng.randint(1, 40)) for i in range(5))
        return Tick(
            instrument_token=self.token,
            mode=mode,
            last_price=self.ltp,
            last_quantity=self.last_quantity,
            average_price=self.turnover // max(1, self.volume),
            volume=self.volume,
            buy_quantity=rng.randint(0, 10**6),
            sell_quantity=rng.randint(0, 10**6),
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            last_trade_time=self.last_trade_time or now,
            oi=self.oi,
            oi_day_high=self.oi_high,
            oi_day_low=self.oi_low,
            exchange_timestamp=now,
            depth=depth,
        )


@dataclass(eq=False)
class SimConnection:
    """One ticker connection as the simulator sees it."""

    ws: ServerConnection
    api_key: str
    #: instrument token -> mode, in the order subscribed
    modes: dict[int, str] = field(default_factory=dict)
    silent: bool = False
    resume: asyncio.TimerHandle | None = None
    #: what was received, parsed (for tests)
    requests: list[Any] = field(default_factory=list)
    #: 1 for the first connection the simulator accepted, then 2, ...
    serial: int = 0


class KiteSimulator(simulation.Simulator):
    """Kite Connect's session REST API, the instrument dump and the ticker on 127.0.0.1.

    ``await start()`` / ``await stop()``, or ``async with``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        rest_port: int = 0,
        feed_port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        user_id: str = DEFAULT_USER_ID,
        tick_interval: float = 0.5,
        seed: int = 0,
        dump: bytes | None = None,
        heartbeat_interval: float = 1.0,
        max_connections: int = 3,
        tokens_per_connection: int = 3000,
        request_token_ttl: float = 300.0,
        gzip_dump: bool = False,
    ) -> None:
        self.host, self._rest_port, self._feed_port = host, rest_port, feed_port
        self.api_key, self.api_secret, self.user_id = api_key, api_secret, user_id
        self.tick_interval = tick_interval
        self.heartbeat_interval = heartbeat_interval
        self.max_connections = max_connections
        self.tokens_per_connection = tokens_per_connection
        self.request_token_ttl = request_token_ttl
        #: serve the dump gzip-encoded to clients that accept it (Content-Length is then the compressed size)
        self.gzip_dump = gzip_dump
        self.rng = random.Random(seed)
        self._dump = dump if dump is not None else build_dump()
        self._rows = _index_dump(self._dump)
        self._lock = threading.RLock()  # the REST thread and the event loop share tokens and the market
        self._request_tokens: dict[str, float] = {}  # token -> when it stops working (monotonic)
        self.access_tokens: set[str] = set()
        self._market: dict[int, _Market] = {}
        self._connections: list[SimConnection] = []
        self._pending: set[ServerConnection] = set()
        self._frames: OrderedDict[bytes, tuple[Tick, ...]] = OrderedDict()
        self._last: dict[int, Tick] = {}
        self._rest_faults: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self._restart_until = 0.0
        # what happened, for tests
        self.sessions = 0
        self.rest_requests: list[tuple[str, str]] = []
        self.rest_headers: list[dict[str, str]] = []
        self.handshakes = 0
        self.refused: list[tuple[int, str]] = []
        self.heartbeats = 0
        #: binary messages of ticks sent (snapshots after a request included)
        self.frames_sent = 0
        #: every ticker request received, parsed: (connection number, request)
        self.requests: list[tuple[int, Any]] = []
        self._serial = 0
        self.controls: list[str] = []
        self.text_sent: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # Lifecycle ---------------------------------------------------------------------
    async def start(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._httpd = simulation.rest_server(self.host, self._rest_port, _handler_class(self))
        self._http_thread = simulation.serve_in_thread(self._httpd, "kite-sim-rest")
        try:
            self._server = await simulation.serve_ws(
                self._serve_ticker,
                self.host,
                self._feed_port,
                process_request=self._handshake,
                logger=_ws_log,
                max_size=2**20,
            )
        except BaseException:
            self._httpd.shutdown()
            self._httpd.server_close()
            raise
        self._background = [
            asyncio.create_task(self._tick_forever()),
            asyncio.create_task(self._heartbeat_forever()),
        ]
        return self

    async def stop(self) -> None:
        tasks = [*self._background, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in self._connections:
            if conn.resume is not None:
                conn.resume.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await simulation.stop_rest(self._httpd)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def feed_url(self) -> str:
        return f"ws://{self.host}:{self.feed_port}"

    @property
    def login_url(self) -> str:
        return f"{self.api_url}/connect/login"

    def env(self) -> dict[str, str]:
        """The environment that points oaws at this simulator."""
        return {
            "KITE_API_KEY": self.api_key,
            "KITE_API_SECRET": self.api_secret,
            "KITE_API_URL": self.api_url,
            "KITE_FEED_URL": self.feed_url,
            "KITE_LOGIN_URL": self.login_url,
        }

    @property
    def connections(self) -> int:
        """How many ticker connections are open now."""
        return len(self._connections)

    def open_connections(self) -> list[SimConnection]:
        return list(self._connections)

    def subscriptions(self) -> dict[int, str]:
        """Token -> mode over all open connections (where two differ, the fuller mode)."""
        out: dict[int, str] = {}
        for conn in self._connections:
            for token, mode in conn.modes.items():
                if MODES.index(mode) >= MODES.index(out.get(token, MODE_LTP)):
                    out[token] = mode
        return out

    def dump_bytes(self) -> bytes:
        """The instrument dump (CSV) that ``GET /instruments`` serves."""
        return self._dump

    # What was sent ---------------------------------------------------------------------
    def ticks_of(self, frame: bytes) -> tuple[Tick, ...]:
        """The ticks a binary message sent by the ticker encodes (KeyError for a frame never sent)."""
        return self._frames[bytes(frame)]

    def last_tick(self, token: int) -> Tick | None:
        """The latest tick sent for ``token`` (in whichever mode), or None."""
        return self._last.get(token)

    # Tokens --------------------------------------------------------------------------
    def issue_request_token(self) -> str:
        """A fresh request token, as Kite's redirect carries after a browser login."""
        token = secrets.token_hex(16)
        with self._lock:
            self._request_tokens[token] = time.monotonic() + self.request_token_ttl
        return token

    def issue_access_token(self) -> str:
        """A valid access token without the exchange (for tests of ``KITE_ACCESS_TOKEN``)."""
        token = secrets.token_hex(16)
        with self._lock:
            self.access_tokens.add(token)
        return token

    def _valid(self, api_key: str, access_token: str) -> bool:
        with self._lock:
            return api_key == self.api_key and access_token in self.access_tokens

    def expire_tokens(self, drop: bool = True) -> None:
        """Invalidate every access and request token (Kite's morning expiry); drop open connections too."""
        with self._lock:
            self.access_tokens.clear()
            self._request_tokens.clear()
        if drop:
            self.drop_all()

    # REST ----------------------------------------------------------------------------
    def rest_fault(
        self,
        status: int = 503,
        count: int = 1,
        *,
        retry_after: float | None = None,
        error_type: str | None = None,
        message: str | None = None,
        html: bool = False,
    ) -> None:
        """The next ``count`` REST calls (login page and /sim/ aside) answer ``status``.

        The body is Kite's JSON error (``error_type`` by default from the status: 429 and
        5xx ``NetworkException``, 500 ``GeneralException``); ``html=True`` sends an HTML
        page instead, as a gateway in maintenance does. ``retry_after`` adds that header
        (429 gets ``Retry-After: 1`` unless told).
        """
        if retry_after is None and status == 429:
            retry_after = 1
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        if html:
            body: dict[str, Any] = {"html": f"<html><body><h1>{status} {HTTPStatus(status).phrase}</h1></body></html>"}
        else:
            kind = error_type or ERROR_TYPES.get(status, "GeneralException")
            body = _error(message or FAULT_MESSAGES.get(status, HTTPStatus(status).phrase), kind)
        with self._lock:
            self._rest_faults.extend([(status, body, headers)] * count)

    def rest(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> _Reply:
        """One REST request -> the reply. Called from the HTTP thread."""
        _keep(self.rest_requests, (method, path))
        _keep(self.rest_headers, headers)
        if path == "/connect/login":
            return self._login_page(method, query)
        with self._lock:
            fault = self._rest_faults.pop(0) if self._rest_faults else None
        if fault is not None:
            status, reply, extra = fault
            if "html" in reply:
                return _Reply(status, reply["html"].encode(), "text/html", extra)
            return _Reply(status, reply, headers=extra)
        if method == "GET" and (path == "/instruments" or path.startswith("/instruments/")):
            exchange = path.removeprefix("/instruments").strip("/")
            if "/" in exchange:
                return _Reply(404, _error("Route not found", "GeneralException"))
            data = self._dump if not exchange else _filter_dump(self._dump, exchange.upper())
            if self.gzip_dump and "gzip" in headers.get("accept-encoding", ""):
                return _Reply(200, gzip.compress(data, mtime=0), "text/csv", {"Content-Encoding": "gzip"})
            return _Reply(200, data, "text/csv")
        if headers.get("x-kite-version") != "3":
            return _Reply(
                400, _error("Missing or invalid `X-Kite-Version` header; send `X-Kite-Version: 3`", "InputException")
            )
        if path == "/session/token":
            if method == "POST":
                return self._session(_form(body))
            if method == "DELETE":
                return self._logout(parse_qs(query))
            return _Reply(405, _error("Method not allowed", "GeneralException"))
        if path in ("/user/profile", "/quote") and method == "GET":
            auth = headers.get("authorization", "")
            key, _, token = auth.removeprefix("token ").partition(":")
            if not auth.startswith("token ") or not self._valid(key, token):
                return _Reply(403, _error("Incorrect `api_key` or `access_token`.", "TokenException"))
            if path == "/user/profile":
                return _Reply(200, _success(self._profile()))
            return _Reply(200, _success(self._quotes(parse_qs(query).get("i", []))))
        return _Reply(404, _error("Route not found", "GeneralException"))

    def _login_page(self, method: str, query: str) -> _Reply:
        params = parse_qs(query)
        if method != "GET":
            return _Reply(405, _error("Method not allowed", "GeneralException"))
        if params.get("api_key", [""])[-1] != self.api_key:
            return _Reply(400, _error("Invalid `api_key`.", "InputException"))
        redirect = {
            "request_token": self.issue_request_token(),
            "action": "login",
            "type": "login",
            "status": "success",
        }
        return _Reply(302, b"", "text/html", {"Location": f"{REDIRECT_URL}?{urlencode(redirect)}"})

    def _session(self, form: dict[str, str]) -> _Reply:
        for name in ("api_key", "request_token", "checksum"):
            if not form.get(name):
                return _Reply(400, _error(f"Missing `{name}`", "InputException"))
        api_key, request_token, checksum = form["api_key"], form["request_token"], form["checksum"]
        if api_key != self.api_key:
            return _Reply(403, _error("Invalid `api_key`.", "TokenException"))
        with self._lock:
            expires = self._request_tokens.get(request_token)
            if expires is None or expires < time.monotonic():
                self._request_tokens.pop(request_token, None)
                return _Reply(403, _error("Token is invalid or has expired.", "TokenException"))
            expected = hashlib.sha256((api_key + request_token + self.api_secret).encode()).hexdigest()
            if not secrets.compare_digest(checksum.lower(), expected):
                return _Reply(403, _error("Invalid `checksum`.", "TokenException"))
            del self._request_tokens[request_token]  # a request token works once
        access = self.issue_access_token()
        self.sessions += 1
        data = {
            **self._profile(),
            "api_key": self.api_key,
            "access_token": access,
            "public_token": secrets.token_hex(16),
            "refresh_token": "",
            "enctoken": secrets.token_urlsafe(48),
            "login_time": datetime.now(IST).strftime("%Y-%m-%d %H:%M:%S"),
        }
        return _Reply(200, _success(data))

    def _logout(self, params: dict[str, list[str]]) -> _Reply:
        key, token = params.get("api_key", [""])[-1], params.get("access_token", [""])[-1]
        if not self._valid(key, token):
            return _Reply(403, _error("Incorrect `api_key` or `access_token`.", "TokenException"))
        with self._lock:
            self.access_tokens.discard(token)
        return _Reply(200, _success(True))

    def _profile(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "user_type": "individual",
            "email": "sim@example.com",
            "user_name": "Simulated Trader",
            "user_shortname": "Simulated",
            "broker": "ZERODHA",
            "exchanges": ["NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "NCO"],
            "products": ["CNC", "NRML", "MIS", "BO", "CO"],
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
            "avatar_url": None,
            "meta": {"demat_consent": "physical"},
        }

    def _quotes(self, instruments: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in instruments:
            exchange, _, symbol = key.partition(":")
            row = self._rows.by_symbol.get((exchange.upper(), symbol))
            if row is None:
                continue  # Kite leaves unknown instruments out of the answer
            token = int(row["instrument_token"])
            with self._lock:
                state = self._instrument(token)
                assert state is not None
                tick = state.tick_now(MODE_FULL, self.rng)
            d = tick.divisor
            now = datetime.now(IST).strftime("%Y-%m-%d %H:%M:%S")
            ltt = datetime.fromtimestamp(tick.last_trade_time, IST).strftime("%Y-%m-%d %H:%M:%S")
            out[key] = {
                "instrument_token": token,
                "timestamp": now,
                "last_trade_time": ltt,
                "last_price": tick.last_price / d,
                "last_quantity": tick.last_quantity,
                "buy_quantity": tick.buy_quantity,
                "sell_quantity": tick.sell_quantity,
                "volume": tick.volume,
                "average_price": tick.average_price / d,
                "oi": tick.oi,
                "oi_day_high": tick.oi_day_high,
                "oi_day_low": tick.oi_day_low,
                "net_change": (tick.last_price - tick.close) / d,
                "lower_circuit_limit": round(tick.close * 0.9 / d, 2),
                "upper_circuit_limit": round(tick.close * 1.1 / d, 2),
                "ohlc": {"open": tick.open / d, "high": tick.high / d, "low": tick.low / d, "close": tick.close / d},
                "depth": {
                    "buy": [{"price": e.price / d, "quantity": e.quantity, "orders": e.orders} for e in tick.depth[:5]],
                    "sell": [
                        {"price": e.price / d, "quantity": e.quantity, "orders": e.orders} for e in tick.depth[5:]
                    ],
                },
            }
        return out

    # Ticker handshake and connections ---------------------------------------------------
    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        url = urlsplit(request.path)
        if url.path not in ("", "/"):
            return self._refuse(connection, 404, "Not Found")
        if time.monotonic() < self._restart_until:
            return self._refuse(connection, 503, "Service Unavailable")
        params = parse_qs(url.query)
        if not self._valid(params.get("api_key", [""])[-1], params.get("access_token", [""])[-1]):
            return self._refuse(connection, 403, "Forbidden")
        self._pending = {c for c in self._pending if c.state is not State.CLOSED}
        if len(self._connections) + len(self._pending) >= self.max_connections:
            return self._refuse(connection, 429, "Too Many Requests")
        self._pending.add(connection)
        return None

    def _refuse(self, connection: ServerConnection, status: int, message: str) -> Response:
        _keep(self.refused, (status, message))
        return connection.respond(status, f"{message}\n")

    async def _serve_ticker(self, ws: ServerConnection) -> None:
        self._pending.discard(ws)
        self._serial += 1
        conn = SimConnection(ws, self.api_key, serial=self._serial)
        self._connections.append(conn)
        try:
            async for message in ws:
                for reply in self._request(conn, message):
                    await ws.send(reply)
        except ConnectionClosed:
            pass
        finally:
            if conn.resume is not None:
                conn.resume.cancel()
            self._connections.remove(conn)

    def _request(self, conn: SimConnection, message: str | bytes) -> list[str | bytes]:
        if isinstance(message, bytes):
            return [_text_error("binary requests are not understood; send JSON text")]
        try:
            request = json.loads(message)
        except ValueError:
            return [_text_error("invalid message: not JSON")]
        _keep(conn.requests, request)
        _keep(self.requests, (conn.serial, request))
        parsed = _parse_request(request)
        if isinstance(parsed, str):
            return [_text_error(parsed)]
        action, mode, tokens = parsed
        replies: list[str | bytes] = []
        if action == "unsubscribe":
            for token in tokens:
                conn.modes.pop(token, None)
            return replies
        if action == "subscribe":
            room = self.tokens_per_connection - len(conn.modes)
            new = [t for t in dict.fromkeys(tokens) if t not in conn.modes]
            if len(new) > room:
                replies.append(
                    _text_error(
                        f"too many instruments: at most {self.tokens_per_connection} on a connection; "
                        f"{len(new) - max(room, 0)} ignored"
                    )
                )
                new = new[: max(room, 0)]
            changed = [t for t in tokens if t in conn.modes] + new
            for token in changed:
                conn.modes[token] = MODE_QUOTE
        else:
            changed = [t for t in dict.fromkeys(tokens) if t in conn.modes]
            for token in changed:
                conn.modes[token] = mode
        snapshot = self._ticks(conn, changed)
        if snapshot:
            frame = encode_message(snapshot)
            self._remember(frame, snapshot)
            self.frames_sent += 1
            replies.append(frame)
        return replies

    # Ticks -----------------------------------------------------------------------------
    def _instrument(self, token: int) -> _Market | None:
        state = self._market.get(token)
        if state is None:
            row = self._rows.by_token.get(token)
            if row is None:
                return None
            div = divisor(token)
            tick_size = float(row["tick_size"] or 0) or 0.05
            tick = max(1, round(tick_size * div))
            rupees = float(row["last_price"] or 0) or 100.0 + token % 2900
            close = max(tick, round(rupees * div) // tick * tick)
            ltp = max(tick, close + self.rng.randint(-20, 20) * tick)
            state = _Market(
                token=token, ltp=ltp, tick=tick, close=close, derivative=token & 0xFF in DERIVATIVE_SEGMENTS
            )
            if state.derivative:
                state.oi = state.oi_high = state.oi_low = self.rng.randint(1, 4000) * 25
            state.volume = self.rng.randint(1_000, 2_000_000)
            state.turnover = state.volume * close
            self._market[token] = state
        return state

    def _ticks(self, conn: SimConnection, tokens: Iterable[int]) -> list[Tick]:
        out = []
        with self._lock:
            for token in tokens:
                state = self._instrument(token)
                if state is not None:
                    out.append(state.tick_now(conn.modes[token], self.rng))
        return out

    def _remember(self, frame: bytes, ticks: Iterable[Tick]) -> None:
        ticks = tuple(ticks)
        self._frames[frame] = ticks
        self._frames.move_to_end(frame)
        while len(self._frames) > FRAMES_KEPT:
            self._frames.popitem(last=False)
        for tick in ticks:
            self._last[tick.instrument_token] = tick

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            live = [c for c in self._connections if not c.silent and c.modes]
            with self._lock:
                for token in {t for c in live for t in c.modes}:
                    state = self._instrument(token)
                    if state is not None:
                        state.step(self.rng)
            for conn in live:
                if conn.silent:  # silenced while an earlier connection's message was being sent
                    continue
                ticks = self._ticks(conn, list(conn.modes))
                if not ticks:
                    continue
                frame = encode_message(ticks)
                self._remember(frame, ticks)
                self.frames_sent += 1
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send(frame)

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            for conn in list(self._connections):
                if conn.silent:
                    continue
                self.heartbeats += 1
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send(HEARTBEAT)

    # Failures on demand ------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        simulation.spawn(self._tasks, coro)

    def drop_all(self) -> None:
        """Drop every ticker connection at the TCP level (no close frame), as a network failure would."""
        for conn in list(self._connections):
            conn.ws.transport.abort()

    def close_all(self, code: int = 1000, reason: str = "") -> None:
        """Close every ticker connection with a close frame."""
        for conn in list(self._connections):
            self._spawn(conn.ws.close(code, reason))

    def restart(self, seconds: float = 5.0) -> None:
        """A service restart: close every connection with 1012, refuse handshakes with 503 for ``seconds``."""
        self._restart_until = time.monotonic() + seconds
        self.close_all(1012, "service restart")

    def go_silent(self, seconds: float | None = None, silent: bool = True) -> None:
        """No ticks and no heartbeats on the connections open now (for ``seconds`` if given).

        Connections opened later speak normally; ``silent=False`` ends a silence early.
        """
        for conn in self._connections:
            conn.silent = silent
            if conn.resume is not None:
                conn.resume.cancel()
                conn.resume = None
            if silent and seconds is not None:
                conn.resume = asyncio.get_running_loop().call_later(seconds, setattr, conn, "silent", False)

    def send_garbage(self, frame: bytes | str | None = None) -> None:
        """Send ``frame`` on every connection; by default every frame of ``GARBAGE_FRAMES``, in order."""
        frames = list(GARBAGE_FRAMES.values()) if frame is None else [frame]
        for conn in list(self._connections):
            self._spawn(self._send_all(conn.ws, frames))

    async def _send_all(self, ws: ServerConnection, frames: list[bytes | str]) -> None:
        with contextlib.suppress(ConnectionClosed):
            for frame in frames:
                await ws.send(frame)

    def send_text(self, text: str) -> None:
        """Send one text message on every connection."""
        _keep(self.text_sent, text)
        for conn in list(self._connections):
            self._spawn(self._send_all(conn.ws, [text]))

    def send_error(self, text: str) -> None:
        """Kite's error message: ``{"type":"error","data":text}``."""
        self.send_text(json.dumps({"type": "error", "data": text}))

    def send_message(self, text: str) -> None:
        """Kite's informational message: ``{"type":"message","data":text}``."""
        self.send_text(json.dumps({"type": "message", "data": text}))

    def order_update(self, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """A complete order update as Kite's postbacks carry it, ``data`` overriding the defaults."""
        data = dict(data or {})
        row = None
        if "instrument_token" in data:
            row = self._rows.by_token.get(int(data["instrument_token"]))
        elif "tradingsymbol" in data:
            row = self._rows.by_symbol.get((str(data.get("exchange", "NSE")), str(data["tradingsymbol"])))
        row = row or self._rows.by_token.get(408065) or next(iter(self._rows.by_token.values()), None)
        now = datetime.now(IST).strftime("%Y-%m-%d %H:%M:%S")
        quantity = int(data.get("quantity", 1))
        status = str(data.get("status", "COMPLETE"))
        filled = quantity if status == "COMPLETE" else 0
        price = float(row["last_price"]) if row else 0.0
        order = {
            "user_id": self.user_id,
            "unfilled_quantity": 0,
            "app_id": 12345,
            "checksum": "",
            "placed_by": self.user_id,
            "order_id": f"{int(time.time()) % 10**6:06d}{self.rng.randint(0, 10**8):08d}",
            "exchange_order_id": f"{self.rng.randint(10**14, 10**15 - 1)}",
            "parent_order_id": None,
            "status": status,
            "status_message": None,
            "status_message_raw": None,
            "order_timestamp": now,
            "exchange_update_timestamp": now,
            "exchange_timestamp": now,
            "variety": "regular",
            "exchange": row["exchange"] if row else "NSE",
            "tradingsymbol": row["tradingsymbol"] if row else "INFY",
            "instrument_token": int(row["instrument_token"]) if row else 408065,
            "order_type": "MARKET",
            "transaction_type": "BUY",
            "validity": "DAY",
            "product": "CNC",
            "quantity": quantity,
            "disclosed_quantity": 0,
            "price": 0,
            "trigger_price": 0,
            "average_price": price if filled else 0,
            "filled_quantity": filled,
            "pending_quantity": quantity - filled if status in ("OPEN", "TRIGGER PENDING", "UPDATE") else 0,
            "cancelled_quantity": quantity - filled if status == "CANCELLED" else 0,
            "market_protection": 0,
            "meta": {},
            "tag": None,
            "guid": secrets.token_hex(8),
        }
        order.update(data)
        return order

    def push_order(self, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send an order update ``{"type":"order","id":"","data":{...}}`` on every connection; returns the data."""
        order = self.order_update(data)
        self.send_text(json.dumps({"type": "order", "id": "", "data": order}))
        return order

    # Control over HTTP (oaws sim kite) -------------------------------------------------
    control_actions = CONTROLS
    control_help = CONTROL_HELP

    def _record_control(self, action: str) -> None:
        _keep(self.controls, action)

    def _control_args(self, action: str, params: dict[str, str], body: bytes) -> Callable[[], str]:
        """Check the request's parameters now (in the HTTP thread); the returned call acts on the loop."""
        noun = "ticker connection(s)"
        if action == "drop":
            return lambda: (self.drop_all(), f"dropped {self.connections} {noun} without a close frame")[1]
        if action == "silent":
            seconds = _seconds(params.get("seconds"), DEFAULT_SILENCE)
            return lambda: (self.go_silent(seconds), f"{noun} silent (no ticks, no heartbeats) for {seconds:g} s")[1]
        if action == "garbage":
            return lambda: (self.send_garbage(), f"sent {len(GARBAGE_FRAMES)} malformed frames on each")[1]
        if action == "expire":
            return lambda: (self.expire_tokens(), "expired every token issued so far and dropped the connections")[1]
        if action == "restart":
            seconds = _seconds(params.get("seconds"), 5.0)
            return lambda: (self.restart(seconds), f"closed every connection with 1012; 503 for {seconds:g} s")[1]
        if action == "rest-fault":
            status = _int(params.get("status"), 503, 400, 599, "status")
            count = _int(params.get("count"), 1, 1, 10_000, "count")
            retry = float(params["retry_after"]) if params.get("retry_after") else None
            html = params.get("html", "") in ("1", "true", "yes")

            def fault() -> str:
                self.rest_fault(status, count, retry_after=retry, html=html)
                return f"the next {count} REST call(s) answer {status}"

            return fault
        if action == "order":
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                raise ValueError("the body must be a JSON object of order fields") from None
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object of order fields")
            return lambda: f"order update {self.push_order(data)['order_id']} sent"
        text = params.get("text") or body.decode(errors="replace") or f"simulated {action}"
        sender = self.send_error if action == "error" else self.send_message
        return lambda: (sender(text), f"{action} text sent")[1]

    async def _control(self, action: str, call: Callable[[], str]) -> dict[str, Any]:
        count = self.connections
        return {"action": action, "connections": count, "message": call()}


@dataclass
class _Reply:
    status: int
    body: dict[str, Any] | bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Rows:
    by_token: dict[int, dict[str, str]]
    by_symbol: dict[tuple[str, str], dict[str, str]]


def _index_dump(dump: bytes) -> _Rows:
    by_token: dict[int, dict[str, str]] = {}
    by_symbol: dict[tuple[str, str], dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(dump.decode("utf-8", errors="replace"))):
        try:
            token = int(row.get("instrument_token") or "")
        except ValueError:
            continue
        by_token[token] = row
        by_symbol.setdefault((row.get("exchange") or "", row.get("tradingsymbol") or ""), row)
    return _Rows(by_token, by_symbol)


def _filter_dump(dump: bytes, exchange: str) -> bytes:
    lines = dump.decode().splitlines(keepends=True)
    header, rows = lines[:1], lines[1:]
    index = header[0].rstrip("\r\n").split(",").index("exchange") if header else -1
    return "".join(header + [r for r in rows if next(csv.reader([r]))[index] == exchange]).encode()


def _keep(log: list[Any], item: Any) -> None:
    """Append ``item``, keeping the last ``LOG_KEPT`` (a simulator may run for days)."""
    log.append(item)
    if len(log) > 2 * LOG_KEPT:
        del log[:-LOG_KEPT]


def _error(message: str, error_type: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "error_type": error_type, "data": None}


def _success(data: Any) -> dict[str, Any]:
    return {"status": "success", "data": data}


def _text_error(text: str) -> str:
    return json.dumps({"type": "error", "data": text})


def _form(body: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}


def _seconds(given: str | None, default: float) -> float:
    return simulation.number(given, default, 0, MAX_SECONDS)


def _int(given: str | None, default: int, low: int, high: int, name: str) -> int:
    if not given:
        return default
    try:
        value = int(given)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, not {given!r}")
    return value


def _parse_request(request: Any) -> tuple[str, str, list[int]] | str:
    """(action, mode, tokens) of a valid ticker request, else the error's text."""
    if not isinstance(request, dict) or "a" not in request or "v" not in request:
        return 'invalid message: expected {"a": action, "v": value}'
    action, value = request["a"], request["v"]
    mode = MODE_QUOTE
    if action == "mode":
        if not isinstance(value, list) or len(value) != 2 or value[0] not in MODES:
            return 'invalid mode message: expected {"a": "mode", "v": ["ltp"|"quote"|"full", [tokens]]}'
        mode, value = value
    elif action not in ("subscribe", "unsubscribe"):
        return f"invalid action {action!r}"
    if not isinstance(value, list) or not all(isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in value):
        return "invalid instrument tokens: expected a list of integers"
    return action, mode, value


def _handler_class(sim: KiteSimulator) -> type[BaseHTTPRequestHandler]:
    def answer(method: str, url: SplitResult, headers: dict[str, str], body: bytes) -> simulation.Answer:
        reply = sim.rest(method, url.path, url.query, headers, body)
        return reply.status, simulation.json_bytes(reply.body), {"Content-Type": reply.content_type, **reply.headers}

    # never the request line: DELETE /session/token carries the access token in its query string
    methods = ("GET", "POST", "DELETE", "PUT", "HEAD")
    return simulation.handler_class("kite-sim", log, sim.control, answer, methods)


async def run(
    host: str = "127.0.0.1",
    rest_port: int = 0,
    feed_port: int = 0,
    tick_interval: float = 0.5,
    on_ready: Callable[[KiteSimulator], None] | None = None,
) -> None:
    """Serve the simulator until SIGINT or SIGTERM, or until cancelled (``oaws sim kite``)."""
    sim = KiteSimulator(host=host, rest_port=rest_port, feed_port=feed_port, tick_interval=tick_interval)
    await simulation.run_until_signal(sim, on_ready)


__all__ = [
    "CONTROL_HELP",
    "GARBAGE_FRAMES",
    "HEARTBEAT",
    "Depth",
    "KiteSimulator",
    "SimConnection",
    "Tick",
    "divisor",
    "encode_message",
    "encode_packet",
    "is_index",
]
