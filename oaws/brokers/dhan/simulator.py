"""A local stand-in for Dhan: the profile call, the scrip master, the v2 market feed, 20-level depth, order updates.

No machine here reaches Dhan, so the adapter (and the real ``dhanhq`` package, as an oracle)
are tested against this, and ``oaws sim dhan`` serves it to people who develop offline. What
it does is what docs/brokers/dhan.md says Dhan does, as far as that is known; the rest is
marked "assumed" below.

REST (``http.server`` in a thread, so blocking clients in the same process work), ``api_url``:

- ``GET /v2/profile`` with the ``access-token`` header (and ``client-id``, which dhanhq's
  ``DhanHTTP`` sends; checked when present) answers Dhan's profile JSON (``dhanClientId``,
  ``tokenValidity`` as ``DD/MM/YYYY HH:MM`` India time, ``activeSegment``, ``ddpi``, ``mtf``,
  ``dataPlan``, ``dataValidity``). A token that is unknown, expired or not this client's gets
  HTTP 401 ``{"errorType": "Invalid_Authentication", "errorCode": "DH-901", "errorMessage": ...}``.
- ``rest_fault(status, count)``: the next ``count`` ``/v2/`` requests answer ``status`` with
  Dhan's error body (429: ``Rate_Limit`` / ``DH-904``; 5xx: ``Internal_Server_Error`` / ``DH-908``;
  other 4xx: ``Input_Exception`` / ``DH-905``).
- ``GET /api-data/api-scrip-master.csv`` (``master_url``, standing in for images.dhan.co)
  serves the compact scrip master (``scrips.master_csv`` for today unless ``scrips=`` is given),
  with ``Content-Length``; ``master_fault(status, count)`` makes the next downloads fail with
  ``status`` and a small HTML page, as a CDN does.

WebSockets, all on one port (``feed_port``), told apart by path:

- ``/`` (``feed_url``), the v2 market feed: ``?version=2&token=T&clientId=C&authType=2``. The
  upgrade always succeeds; a bad login is a code-50 disconnect packet (10 bytes, u16 reason)
  and then the socket closes: 807 the token expired, 809 the token unknown (dhanhq:
  "Authentication Failed"), 808 the client id wrong (dhanhq: "Invalid Client ID"), 805 a sixth
  connection of the client, 806 no data plan (``data_plan = False``). JSON requests
  ``{"RequestCode": 15|17|21, "InstrumentCount": n, "InstrumentList": [{"ExchangeSegment":
  "NSE_EQ", "SecurityId": "2885"}]}`` subscribe in ticker, quote or full mode; 16, 18, 22
  unsubscribe; 12 disconnects. One mode per instrument and connection: a later subscribe in
  another mode replaces it (assumed). More than 100 instruments in one request, or more than
  5000 on one connection: disconnect 804, then close (assumed; Dhan documents the limits, not
  the refusal). Unknown instruments are accepted and never tick; malformed requests and binary
  frames (dhanhq sends a binary header after its RequestCode 12) are counted and ignored.
  Responses, one packet per message, little-endian, 8-byte header ``<BHBI`` (response code,
  total length, segment byte, security id): on a connection's first subscribe a market status
  (7, 8 bytes); per instrument subscribed, previous close (6, 16 bytes) once, then at once
  and every ``tick_interval``: ticker (2, 16 B), quote (4, 50 B; derivatives also OI, 5,
  12 B), or full (8, 162 B with 5 depth levels). ``close`` in quote and full is today's close,
  0 while the market is open (the simulator's market is always open). The last trade time is
  India-clock seconds counted as if UTC (epoch + 19,800), as Dhan sends it.
- ``/twentydepth`` (``depth_url``), 20-level depth: same query; request 23 (24 unsubscribes)
  with the same InstrumentList; NSE_EQ and NSE_FNO only (others ignored), at most 50 a
  connection (more: disconnect 804). Each tick, one message per connection with, per
  instrument, a bid packet (41) and an ask packet (51) concatenated: 12-byte header ``<hBBiI``
  (length 332, code, segment, security id, a sequence number) then 20 levels of ``<dII``
  (price, quantity, orders). Its disconnect packet is the same 12-byte header with code 50
  and the reason in the last u32 (where dhanhq's FullDepth reads it).
- ``/orders`` (``order_url``), order updates: the client sends ``{"LoginReq": {"MsgCode": 42,
  "ClientId": ..., "Token": ...}, "UserType": "SELF"}``; a bad one (or none within
  ``login_timeout``) gets a close frame 1008 (assumed; Dhan's answer is not documented). Then
  ``push_order(data)`` sends ``{"Type": "order_alert", "Data": {...}}`` with Dhan's fields.

The server pings every ``ping_interval`` seconds (WebSocket pings; no application heartbeat).

What was sent is kept (``sent``, the latest ``SENT_KEPT`` packets, each a ``Sent`` with the
exact bytes and the values they encode), so a test can decode a frame with dhanhq and compare
with ``intended(frame)``; ``encode(segment, security_id, values)`` is the pure encoder.

Failures on demand (methods, and ``POST /sim/...`` on the REST port for ``oaws sim dhan``,
answering one line of JSON): ``drop_all()`` /sim/drop, ``go_silent(seconds)``
/sim/silent?seconds=N, ``send_garbage()`` /sim/garbage?kind=truncated|length|code,
``expire_token()`` /sim/expire, ``disconnect(code)`` /sim/disconnect?code=N,
``rest_fault(status, count)`` /sim/rest-fault?status=429&count=1, ``push_order(data)``
/sim/order (a JSON body of Dhan's order fields); ``GET /sim/state`` tells what is connected.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import SplitResult, parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from oaws.brokers import simulation
from oaws.brokers.dhan.scrips import SEGMENT_CODES, Scrip, by_key, master_csv, scrips_from_csv

log = logging.getLogger(__name__)
# websockets logs handshake requests (the feed URL carries the token) at DEBUG: keep them out
_ws_log = logging.getLogger("oaws.dhan.simulator.websocket")
_ws_log.setLevel(logging.INFO)

PROFILE_PATH = "/v2/profile"
MASTER_PATH = "/api-data/api-scrip-master.csv"
FEED_PATH = "/"
DEPTH_PATH = "/twentydepth"
ORDER_PATH = "/orders"
CONTROL_PREFIX = simulation.CONTROL_PREFIX
CONTROLS = ("drop", "silent", "garbage", "expire", "disconnect", "rest-fault", "order", "state")
CONTROL_HELP = (
    "POST /sim/drop, /sim/silent?seconds=N, /sim/garbage?kind=truncated|length|code, /sim/expire, "
    "/sim/disconnect?code=N, /sim/rest-fault?status=N&count=N, /sim/order (JSON body), or GET /sim/state"
)
DEFAULT_SILENCE = 60.0
MAX_SILENCE = 3600.0

DEFAULT_CLIENT_ID = "1000000001"
#: India's clock: Dhan's last-trade times are India-clock seconds counted as if they were UTC
IST_OFFSET = 19_800
IST = timezone(timedelta(seconds=IST_OFFSET))

# Response codes of the market feed (the first byte of the header)
TICKER, MARKET_DEPTH, QUOTE, OI, PREV_CLOSE, MARKET_STATUS, FULL, DISCONNECT = 2, 3, 4, 5, 6, 7, 8, 50
# Response codes of the 20-level depth stream
DEPTH_BID, DEPTH_ASK = 41, 51
# Request codes
REQ_DISCONNECT, REQ_TICKER, REQ_QUOTE, REQ_FULL, REQ_DEPTH = 12, 15, 17, 21, 23
SUBSCRIBE = {REQ_TICKER: "ticker", REQ_QUOTE: "quote", REQ_FULL: "full"}
UNSUBSCRIBE = {REQ_TICKER + 1: REQ_TICKER, REQ_QUOTE + 1: REQ_QUOTE, REQ_FULL + 1: REQ_FULL}
# Disconnect reasons (dhanhq's MarketFeed.server_disconnection names 805-809)
R_INSTRUMENTS_EXCEEDED = 804
R_TOO_MANY_CONNECTIONS = 805
R_NO_DATA_PLAN = 806
R_TOKEN_EXPIRED = 807
R_INVALID_CLIENT_ID = 808
R_AUTH_FAILED = 809
REASONS = {
    800: "internal server error",
    804: "instruments exceed the limit",
    805: "too many connections",
    806: "data APIs not subscribed",
    807: "access token expired",
    808: "invalid client id",
    809: "authentication failed",
}

#: Dhan's limits (the plugin's __init__ declares the same numbers)
CONNECTIONS, INSTRUMENTS_PER_CONNECTION, INSTRUMENTS_PER_REQUEST = 5, 5000, 100
DEPTH_INSTRUMENTS_PER_CONNECTION = 50
DEPTH_SEGMENTS = frozenset({"NSE_EQ", "NSE_FNO"})
SENT_KEPT = 50_000
U16_MAX, U32_MAX = 2**16 - 1, 2**32 - 1

AUTH_ERROR = {
    "errorType": "Invalid_Authentication",
    "errorCode": "DH-901",
    "errorMessage": "Client ID or user generated access token is invalid or expired.",
}


# Values the packets carry (what a decoder should find) --------------------------------------
@dataclass(frozen=True)
class Ticker:
    ltp: float
    ltt: int


@dataclass(frozen=True)
class PrevClose:
    prev_close: float
    prev_oi: int


@dataclass(frozen=True)
class OpenInterest:
    oi: int


@dataclass(frozen=True)
class MarketStatus:
    pass


@dataclass(frozen=True)
class Level:
    """One of the five levels of a full packet: both sides in one record, as Dhan sends them."""

    bid_quantity: int
    ask_quantity: int
    bid_orders: int
    ask_orders: int
    bid_price: float
    ask_price: float


@dataclass(frozen=True)
class Quote:
    ltp: float
    ltq: int
    ltt: int
    atp: float
    volume: int
    total_sell_quantity: int
    total_buy_quantity: int
    open: float
    close: float
    high: float
    low: float


@dataclass(frozen=True)
class Full:
    ltp: float
    ltq: int
    ltt: int
    atp: float
    volume: int
    total_sell_quantity: int
    total_buy_quantity: int
    oi: int
    oi_high: int
    oi_low: int
    open: float
    close: float
    high: float
    low: float
    depth: tuple[Level, ...]


@dataclass(frozen=True)
class DepthRow:
    price: float
    quantity: int
    orders: int


@dataclass(frozen=True)
class Depth20:
    """One side of 20-level depth (``bid``: code 41, ``ask``: code 51)."""

    side: str
    levels: tuple[DepthRow, ...]
    sequence: int = 0


@dataclass(frozen=True)
class Disconnect:
    reason: int


Values = Ticker | PrevClose | OpenInterest | MarketStatus | Quote | Full | Depth20 | Disconnect


def _header(code: int, length: int, segment: int, security_id: int) -> bytes:
    return struct.pack("<BHBI", code, length, segment, security_id)


def encode(segment: int, security_id: int, values: Values) -> bytes:
    """The bytes Dhan sends for ``values`` of instrument (``segment`` byte, ``security_id``)."""
    if isinstance(values, Ticker):
        return _header(TICKER, 16, segment, security_id) + struct.pack("<fI", values.ltp, values.ltt)
    if isinstance(values, PrevClose):
        return _header(PREV_CLOSE, 16, segment, security_id) + struct.pack("<fI", values.prev_close, values.prev_oi)
    if isinstance(values, OpenInterest):
        return _header(OI, 12, segment, security_id) + struct.pack("<I", values.oi)
    if isinstance(values, MarketStatus):
        return _header(MARKET_STATUS, 8, segment, security_id)
    if isinstance(values, Disconnect):
        return _header(DISCONNECT, 10, segment, security_id) + struct.pack("<H", values.reason)
    if isinstance(values, Quote):
        v = values
        body = struct.pack(
            "<fHIfIIIffff",
            v.ltp,
            v.ltq,
            v.ltt,
            v.atp,
            v.volume,
            v.total_sell_quantity,
            v.total_buy_quantity,
            v.open,
            v.close,
            v.high,
            v.low,
        )
        return _header(QUOTE, 50, segment, security_id) + body
    if isinstance(values, Full):
        v = values
        assert len(v.depth) == 5, "a full packet has five depth levels"
        body = struct.pack(
            "<fHIfIIIIIIffff",
            v.ltp,
            v.ltq,
            v.ltt,
            v.atp,
            v.volume,
            v.total_sell_quantity,
            v.total_buy_quantity,
            v.oi,
            v.oi_high,
            v.oi_low,
            v.open,
            v.close,
            v.high,
            v.low,
        )
        depth = b"".join(
            struct.pack("<IIHHff", d.bid_quantity, d.ask_quantity, d.bid_orders, d.ask_orders, d.bid_price, d.ask_price)
            for d in v.depth
        )
        return _header(FULL, 162, segment, security_id) + body + depth
    if isinstance(values, Depth20):
        code = DEPTH_BID if values.side == "bid" else DEPTH_ASK
        rows = b"".join(struct.pack("<dII", r.price, r.quantity, r.orders) for r in values.levels)
        return struct.pack("<hBBiI", 12 + len(rows), code, segment, security_id, values.sequence) + rows
    raise TypeError(f"cannot encode {type(values).__name__}")


def encode_depth_disconnect(reason: int) -> bytes:
    """The 20-depth stream's disconnect packet: a 12-byte header whose last u32 is the reason."""
    return struct.pack("<hBBiI", 12, DISCONNECT, 0, 0, reason)


def ist_seconds(now: float | None = None) -> int:
    """India-clock seconds counted as if UTC, as Dhan's LTT fields carry them."""
    return int(time.time() if now is None else now) + IST_OFFSET


def float32(value: float) -> float:
    """``value`` as it survives a float32 field (what a decoder reads back)."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


@dataclass(frozen=True)
class Sent:
    """One packet the simulator sent: where to, its bytes and the values they encode."""

    stream: str
    segment: str
    security_id: str
    code: int
    values: Values
    frame: bytes


@dataclass
class _Market:
    """The simulated market of one instrument; prices in ticks of the instrument."""

    scrip: Scrip
    ltp: int
    prev_close: int
    open: int = 0
    high: int = 0
    low: int = 0
    ltq: int = 0
    volume: int = 0
    turnover: float = 0.0
    oi: int = 0
    prev_oi: int = 0
    oi_high: int = 0
    oi_low: int = 0
    stepped_at: int = -1

    def __post_init__(self) -> None:
        self.open = self.high = self.low = self.ltp
        self.oi_high = self.oi_low = self.oi

    def rupees(self, ticks: int) -> float:
        return round(ticks * self.scrip.tick, 4)

    def step(self, rng: random.Random) -> None:
        self.ltp = max(1, self.ltp + rng.choice((-2, -1, -1, 0, 1, 1, 2)))
        self.high, self.low = max(self.high, self.ltp), min(self.low, self.ltp)
        self.ltq = min(U16_MAX, rng.randint(1, 20) * self.scrip.lot)
        if self.volume + self.ltq > U32_MAX:  # days later: start a new session rather than overflow a u32
            self.volume, self.turnover, self.open, self.high, self.low = 0, 0.0, self.ltp, self.ltp, self.ltp
        self.volume += self.ltq
        self.turnover += self.ltq * self.rupees(self.ltp)
        if self.scrip.derivative:
            self.oi = min(U32_MAX, max(0, self.oi + rng.randint(-50, 60) * self.scrip.lot))
            self.oi_high, self.oi_low = max(self.oi_high, self.oi), min(self.oi_low, self.oi)

    @property
    def atp(self) -> float:
        return round(self.turnover / self.volume, 2) if self.volume else self.rupees(self.ltp)


@dataclass(eq=False)
class SimConnection:
    """One WebSocket connection as the simulator sees it (market feed, 20-depth or orders)."""

    ws: ServerConnection
    stream: str
    #: market feed: (segment, security id) -> request code (15, 17 or 21); 20-depth: -> 23
    subscriptions: dict[tuple[str, str], int] = field(default_factory=dict)
    status_sent: bool = False
    silent: bool = False
    resume: asyncio.TimerHandle | None = None
    logged_in: bool = False
    requests: list[Any] = field(default_factory=list)
    #: the task sending this connection's packets of the latest tick
    sending: asyncio.Task[None] | None = None


class DhanSimulator(simulation.Simulator):
    """Dhan's REST profile, scrip master, market feed, 20-depth and order streams on 127.0.0.1.

    ``await start()`` / ``await stop()``, or ``async with DhanSimulator() as sim``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        rest_port: int = 0,
        feed_port: int = 0,
        client_id: str = DEFAULT_CLIENT_ID,
        access_token: str | None = None,
        tick_interval: float = 0.5,
        seed: int = 0,
        scrips: bytes | None = None,
        ping_interval: float = 10.0,
        login_timeout: float = 10.0,
        token_ttl: float = 24 * 3600,
    ) -> None:
        self.host, self._rest_port, self._feed_port = host, rest_port, feed_port
        self.client_id = client_id
        self.tick_interval = tick_interval
        self.ping_interval = ping_interval
        self.login_timeout = login_timeout
        self.token_ttl = token_ttl
        self.rng = random.Random(seed)
        self._scrips_bytes = scrips if scrips is not None else master_csv()
        self.scrips = by_key(scrips_from_csv(self._scrips_bytes))
        self._signing_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        #: token -> expiry (epoch seconds); an expired token stays known, so it is told apart from a wrong one
        self._tokens: dict[str, float] = {}
        self._expired: set[str] = set()
        self.access_token = access_token if access_token is not None else self._new_token()
        if access_token is not None:
            self._tokens[access_token] = time.time() + token_ttl
        #: when false, every feed login gets disconnect 806 and the profile says dataPlan "Deactive"
        self.data_plan = True
        self.max_connections = CONNECTIONS
        self.instruments_per_connection = INSTRUMENTS_PER_CONNECTION
        self.instruments_per_request = INSTRUMENTS_PER_REQUEST
        self.depth_instruments_per_connection = DEPTH_INSTRUMENTS_PER_CONNECTION
        self._market: dict[tuple[str, str], _Market] = {}
        self._tick_no = 0
        self._depth_seq = 0
        self.sent: deque[Sent] = deque(maxlen=SENT_KEPT)
        self._last: dict[tuple[str, str, str, int], Sent] = {}
        #: the open, logged-in connections of each stream
        self.connections: list[SimConnection] = []
        self.depth_connections: list[SimConnection] = []
        self.order_connections: list[SimConnection] = []
        # what happened, for tests
        self.handshakes = 0
        self.depth_handshakes = 0
        self.order_handshakes = 0
        #: (stream, reason) of every login refused with a disconnect packet or close
        self.refused: list[tuple[str, int]] = []
        self.bad_requests = 0
        #: every JSON request of the market feed and the 20-depth stream, as (stream, request)
        self.feed_requests: deque[tuple[str, dict[str, Any]]] = deque(maxlen=10_000)
        self.binary_requests = 0
        self.rest_requests: list[str] = []
        self.order_messages: list[dict[str, Any]] = []
        self.controls: list[str] = []
        self._rest_faults: deque[int] = deque()
        self._master_faults: deque[int] = deque()
        self._order_no = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # Lifecycle -------------------------------------------------------------------------
    async def start(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._httpd = simulation.rest_server(self.host, self._rest_port, _handler_class(self))
        self._http_thread = simulation.serve_in_thread(self._httpd, "dhan-sim-rest")
        try:
            self._server = await simulation.serve_ws(
                self._serve, self.host, self._feed_port, process_request=self._handshake, logger=_ws_log
            )
        except BaseException as exc:
            await simulation.stop_rest(self._httpd)
            if isinstance(exc, OSError) and exc.errno:
                raise simulation.os_error(exc) from None
            raise
        self._ticker = asyncio.create_task(self._tick_forever())
        return self

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for task in list(self._tasks):
            task.cancel()
        for conn in self._all_connections():
            if conn.resume is not None:
                conn.resume.cancel()
            if conn.ws.transport is not None:
                conn.ws.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await simulation.stop_rest(self._httpd)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def master_url(self) -> str:
        return f"{self.api_url}{MASTER_PATH}"

    @property
    def feed_url(self) -> str:
        return f"ws://{self.host}:{self.feed_port}"

    @property
    def depth_url(self) -> str:
        return f"ws://{self.host}:{self.feed_port}{DEPTH_PATH}"

    @property
    def order_url(self) -> str:
        return f"ws://{self.host}:{self.feed_port}{ORDER_PATH}"

    def env(self) -> dict[str, str]:
        """The environment that points oaws at this simulator."""
        return {
            "DHAN_CLIENT_ID": self.client_id,
            "DHAN_ACCESS_TOKEN": self.access_token,
            "DHAN_API_URL": self.api_url,
            "DHAN_FEED_URL": self.feed_url,
            "DHAN_DEPTH_URL": self.depth_url,
            "DHAN_ORDER_URL": self.order_url,
            "DHAN_MASTER_URL": self.master_url,
        }

    def scrips_bytes(self) -> bytes:
        """The scrip master CSV the simulator serves."""
        return self._scrips_bytes

    def _all_connections(self) -> list[SimConnection]:
        return [*self.connections, *self.depth_connections, *self.order_connections]

    # Tokens ------------------------------------------------------------------------------
    def _new_token(self) -> str:
        """A JWT-shaped token (Dhan's are JWTs) with the client id and an expiry."""
        now = time.time()
        claims = {
            "iss": "dhan",
            "partnerId": "",
            "exp": int(now + self.token_ttl),
            "tokenConsumerType": "SELF",
            "webhookUrl": "",
            "dhanClientId": self.client_id,
            "jti": secrets.token_hex(8),
        }
        header = _b64(b'{"typ":"JWT","alg":"HS512"}')
        payload = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self._signing_key, f"{header}.{payload}".encode(), hashlib.sha512).digest())
        token = f"{header}.{payload}.{signature}"
        with self._lock:
            self._tokens[token] = now + self.token_ttl
        return token

    def new_token(self) -> str:
        """Issue a fresh token (the user generating one on web.dhan.co); it becomes ``access_token``."""
        self.access_token = self._new_token()
        return self.access_token

    def token_state(self, token: str) -> str:
        """``valid``, ``expired`` or ``invalid``."""
        with self._lock:
            expiry = self._tokens.get(token)
            if expiry is None:
                return "invalid"
            if token in self._expired or expiry <= time.time():
                return "expired"
        return "valid"

    def expire_token(self, drop: bool = True) -> None:
        """Expire every token issued so far; with ``drop``, open feeds get disconnect 807 and close."""
        with self._lock:
            self._expired.update(self._tokens)
        if drop:
            self.disconnect(R_TOKEN_EXPIRED)
            for conn in list(self.order_connections):
                self._spawn(conn.ws.close(1008, "access token expired"))

    # REST --------------------------------------------------------------------------------
    def rest_fault(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` /v2/ requests with ``status`` and Dhan's error body."""
        with self._lock:
            self._rest_faults.extend([status] * count)

    def master_fault(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` downloads of the scrip master with ``status`` and a small HTML page."""
        with self._lock:
            self._master_faults.extend([status] * count)

    def rest(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        """One REST request -> (HTTP status, JSON or bytes). Called from the HTTP thread."""
        self.rest_requests.append(f"{method} {path}")
        if method == "GET" and path == MASTER_PATH:
            with self._lock:
                fault = self._master_faults.popleft() if self._master_faults else None
            if fault is not None:
                return fault, f"<html><body><h1>{fault}</h1></body></html>\n".encode()
            return 200, self._scrips_bytes
        with self._lock:
            fault = self._rest_faults.popleft() if path.startswith("/v2/") and self._rest_faults else None
        if fault is not None:
            return fault, _error_body(fault)
        if path == PROFILE_PATH and method == "GET":
            token = headers.get("access-token", "")
            client = headers.get("client-id")
            if self.token_state(token) != "valid" or (client is not None and client != self.client_id):
                return 401, AUTH_ERROR
            with self._lock:
                expiry = self._tokens[token]
            validity = datetime.fromtimestamp(expiry, IST)
            return 200, {
                "dhanClientId": self.client_id,
                "tokenValidity": validity.strftime("%d/%m/%Y %H:%M"),
                "activeSegment": "Equity, Derivative, Currency, Commodity",
                "ddpi": "Deactive",
                "mtf": "Deactive",
                "dataPlan": "Active" if self.data_plan else "Deactive",
                "dataValidity": (datetime.now(IST) + timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S.0"),
            }
        return 404, {"errorType": "Input_Exception", "errorCode": "DH-905", "errorMessage": f"no such API {path}"}

    # Handshakes and logins ------------------------------------------------------------------
    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == FEED_PATH:
            self.handshakes += 1
        elif path == DEPTH_PATH:
            self.depth_handshakes += 1
        elif path == ORDER_PATH:
            self.order_handshakes += 1
        else:
            return connection.respond(404, "Not Found\n")
        return None  # Dhan upgrades first and refuses a bad login with a disconnect packet

    def _login_reason(self, token: str, client_id: str, stream: str) -> int | None:
        """The disconnect reason for a feed login, or None when it is good."""
        if client_id != self.client_id:
            return R_INVALID_CLIENT_ID
        state = self.token_state(token)
        if state == "expired":
            return R_TOKEN_EXPIRED
        if state != "valid":
            return R_AUTH_FAILED
        if not self.data_plan:
            return R_NO_DATA_PLAN
        open_now = self.connections if stream == "feed" else self.depth_connections
        if len(open_now) >= self.max_connections:
            return R_TOO_MANY_CONNECTIONS
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        url = urlsplit(ws.request.path if ws.request is not None else "/")
        if url.path == ORDER_PATH:
            await self._serve_orders(ws)
            return
        stream = "depth" if url.path == DEPTH_PATH else "feed"
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        reason = self._login_reason(query.get("token", ""), query.get("clientId", ""), stream)
        if reason is None and stream == "feed" and query.get("version") != "2":
            reason = R_AUTH_FAILED  # v1 logs in with a binary packet, which the simulator does not speak
        if reason is not None:
            self.refused.append((stream, reason))
            packet = encode_depth_disconnect(reason) if stream == "depth" else encode(0, 0, Disconnect(reason))
            with contextlib.suppress(ConnectionClosed):
                await ws.send(packet)
                await ws.close(1000, REASONS.get(reason, ""))
            return
        conn = SimConnection(ws, stream)
        pool = self.connections if stream == "feed" else self.depth_connections
        pool.append(conn)
        pinger = asyncio.create_task(self._ping(conn))
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    self.binary_requests += 1
                    continue
                if not await self._request(conn, message):
                    break
        except ConnectionClosed:
            pass
        finally:
            pinger.cancel()
            if conn in pool:
                pool.remove(conn)

    async def _ping(self, conn: SimConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.ping_interval)
                if not conn.silent:
                    await conn.ws.ping()

    # Requests ------------------------------------------------------------------------------
    async def _request(self, conn: SimConnection, text: str) -> bool:
        """Handle one JSON request; False when the connection is to end."""
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            self.bad_requests += 1
            return True
        conn.requests.append(request)
        self.feed_requests.append((conn.stream, request))
        code = request.get("RequestCode")
        if code == REQ_DISCONNECT:
            await conn.ws.close(1000, "disconnect requested")
            return False
        if conn.stream == "depth":
            if code not in (REQ_DEPTH, REQ_DEPTH + 1):
                self.bad_requests += 1
                return True
            keys = self._instruments(request, DEPTH_SEGMENTS)
            if keys is None:
                return True
            if code == REQ_DEPTH + 1:
                for key in keys:
                    conn.subscriptions.pop(key, None)
                return True
            new = [k for k in keys if k not in conn.subscriptions]
            if len(conn.subscriptions) + len(new) > self.depth_instruments_per_connection:
                return await self._refuse_open(conn, R_INSTRUMENTS_EXCEEDED)
            for key in new:
                conn.subscriptions[key] = REQ_DEPTH
            frame = b"".join(self._depth_packets(key) for key in new if key in self.scrips)
            if frame:
                await conn.ws.send(frame)
            return True
        if code in UNSUBSCRIBE:
            keys = self._instruments(request, SEGMENT_CODES)
            for key in keys or ():
                if conn.subscriptions.get(key) == UNSUBSCRIBE[code]:
                    del conn.subscriptions[key]
            return True
        if code not in SUBSCRIBE:
            self.bad_requests += 1
            return True
        keys = self._instruments(request, SEGMENT_CODES)
        if keys is None:
            return True
        if len(keys) > self.instruments_per_request:
            return await self._refuse_open(conn, R_INSTRUMENTS_EXCEEDED)
        total = len(conn.subscriptions.keys() | set(keys))
        if total > self.instruments_per_connection:
            return await self._refuse_open(conn, R_INSTRUMENTS_EXCEEDED)
        if not conn.status_sent:
            conn.status_sent = True
            await conn.ws.send(self._record("feed", "IDX_I", "0", MarketStatus()))
        for key in keys:
            conn.subscriptions[key] = code
            market = self._instrument(key)
            if market is None:
                continue  # like Dhan, an unknown instrument is accepted and never ticks
            prev = PrevClose(market.rupees(market.prev_close), market.prev_oi)
            await conn.ws.send(self._record("feed", *key, prev))
            for frame in self._packets(key, code):
                await conn.ws.send(frame)
        return True

    def _instruments(self, request: dict[str, Any], segments: Any) -> list[tuple[str, str]] | None:
        entries = request.get("InstrumentList")
        if not isinstance(entries, list):
            self.bad_requests += 1
            return None
        keys: list[tuple[str, str]] = []
        for entry in entries:
            if not isinstance(entry, dict):
                self.bad_requests += 1
                return None
            segment, sid = entry.get("ExchangeSegment"), str(entry.get("SecurityId", ""))
            if segment not in segments or not sid.isdigit():
                self.bad_requests += 1
                continue
            if (segment, sid) not in keys:
                keys.append((segment, sid))
        return keys

    async def _refuse_open(self, conn: SimConnection, reason: int) -> bool:
        self.refused.append((conn.stream, reason))
        packet = encode_depth_disconnect(reason) if conn.stream == "depth" else encode(0, 0, Disconnect(reason))
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(packet)
            await conn.ws.close(1000, REASONS.get(reason, ""))
        return False

    # Orders ------------------------------------------------------------------------------
    async def _serve_orders(self, ws: ServerConnection) -> None:
        conn = SimConnection(ws, "orders")
        try:
            async with asyncio.timeout(self.login_timeout):
                first = await ws.recv()
        except (TimeoutError, ConnectionClosed):
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1008, "no login message")
            self.refused.append(("orders", 0))
            return
        login = _json(first.encode() if isinstance(first, str) else first).get("LoginReq")
        ok = (
            isinstance(login, dict)
            and login.get("MsgCode") == 42
            and str(login.get("ClientId", "")) == self.client_id
            and self.token_state(str(login.get("Token", ""))) == "valid"
        )
        if not ok:
            self.refused.append(("orders", R_AUTH_FAILED))
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1008, "authentication failed")
            return
        conn.logged_in = True
        self.order_connections.append(conn)
        pinger = asyncio.create_task(self._ping(conn))
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
        finally:
            pinger.cancel()
            self.order_connections.remove(conn)

    def order_message(self, data: dict[str, Any]) -> dict[str, Any]:
        """Dhan's order alert with ``data`` over plausible defaults (an RELIANCE buy, pending)."""
        self._order_no += 1
        now = datetime.now(IST).strftime("%Y-%m-%d %H:%M:%S")
        sid = str(data.get("SecurityId", "2885"))
        scrip = next((s for (seg, i), s in self.scrips.items() if i == sid and seg != "BSE_EQ"), None)
        base: dict[str, Any] = {
            "Exchange": scrip.exchange if scrip else "NSE",
            "Segment": {"NSE_EQ": "E", "BSE_EQ": "E", "IDX_I": "I", "MCX_COMM": "M", "NSE_CURRENCY": "C"}.get(
                scrip.segment if scrip else "NSE_EQ", "D"
            ),
            "Source": "P",
            "SecurityId": sid,
            "ClientId": self.client_id,
            "ExchOrderNo": f"1100000{self._order_no:09d}",
            "OrderNo": f"52{int(time.time()) % 10**8:08d}{self._order_no:04d}",
            "Product": "C",
            "TxnType": "B",
            "OrderType": "LMT",
            "Validity": "DAY",
            "DiscQuantity": 0,
            "DiscQtyRem": 0,
            "RemainingQuantity": 1,
            "Quantity": 1,
            "TradedQty": 0,
            "Price": 0.0,
            "TriggerPrice": 0.0,
            "TradedPrice": 0.0,
            "AvgTradedPrice": 0.0,
            "AlgoOrdNo": "",
            "OffMktFlag": "0",
            "OrderDateTime": now,
            "ExchOrderTime": now,
            "LastUpdatedTime": now,
            "Remarks": "",
            "MktType": "NL",
            "ReasonDescription": "CONFIRMED",
            "LegNo": 1,
            "Instrument": scrip.instrument if scrip else "EQUITY",
            "Symbol": scrip.symbol if scrip else "RELIANCE",
            "ProductName": "CNC",
            "Status": "Pending",
            "LotSize": scrip.lot if scrip else 1,
            "StrikePrice": 0.0,
            "ExpiryDate": "0001-01-01 00:00:00",
            "OptType": "XX",
            "DisplayName": scrip.symbol if scrip else "RELIANCE",
            "Isin": "",
            "Series": "EQ",
            "GoodTillDaysDate": "",
            "RefLtp": 0.0,
            "TickSize": scrip.tick if scrip else 0.05,
            "AlgoId": "0",
            "Multiplier": 1,
            "CorrelationId": "",
        }
        return {"Type": "order_alert", "Data": {**base, **data}}

    def push_order(self, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send an order alert to every logged-in order stream; returns the message sent."""
        message = self.order_message(dict(data or {}))
        self.order_messages.append(message)
        text = json.dumps(message)
        for conn in list(self.order_connections):
            self._spawn(_send_quietly(conn.ws, text))
        return message

    # Ticks -------------------------------------------------------------------------------
    def _instrument(self, key: tuple[str, str]) -> _Market | None:
        market = self._market.get(key)
        if market is None:
            scrip = self.scrips.get(key)
            if scrip is None:
                return None
            ltp = max(1, round(scrip.price / scrip.tick))
            prev = max(1, ltp + self.rng.randint(-40, 40))
            oi = self.rng.randint(100, 50_000) * scrip.lot if scrip.derivative else 0
            market = self._market[key] = _Market(scrip, ltp=ltp, prev_close=prev, oi=oi, prev_oi=oi)
        return market

    def _record(self, stream: str, segment: str, security_id: str, values: Values) -> bytes:
        if isinstance(values, Disconnect | MarketStatus):
            seg_byte, sid = SEGMENT_CODES.get(segment, 0), int(security_id or 0)
        else:
            seg_byte, sid = SEGMENT_CODES[segment], int(security_id)
        frame = encode(seg_byte, sid, values)
        code = frame[2] if isinstance(values, Depth20) else frame[0]
        sent = Sent(stream, segment, security_id, code, values, frame)
        self.sent.append(sent)
        self._last[(stream, segment, security_id, code)] = sent
        return frame

    def _step(self, market: _Market) -> None:
        if market.stepped_at != self._tick_no:
            market.stepped_at = self._tick_no
            market.step(self.rng)

    def _packets(self, key: tuple[str, str], code: int) -> list[bytes]:
        """The data packets of one instrument in the mode of request ``code`` (after a step)."""
        market = self._instrument(key)
        if market is None:
            return []
        self._step(market)
        m, r = market, market.rupees
        ltt = ist_seconds()
        if code == REQ_TICKER:
            return [self._record("feed", *key, Ticker(r(m.ltp), ltt))]
        total_sell, total_buy = self.rng.randint(0, 10**6), self.rng.randint(0, 10**6)
        common = {
            "ltp": r(m.ltp),
            "ltq": m.ltq,
            "ltt": ltt,
            "atp": m.atp,
            "volume": m.volume,
            "total_sell_quantity": total_sell,
            "total_buy_quantity": total_buy,
        }
        prices = {"open": r(m.open), "close": 0.0, "high": r(m.high), "low": r(m.low)}
        if code == REQ_QUOTE:
            frames = [self._record("feed", *key, Quote(**common, **prices))]
            if m.scrip.derivative:
                frames.append(self._record("feed", *key, OpenInterest(m.oi)))
            return frames
        depth = tuple(
            Level(
                bid_quantity=self.rng.randint(1, 900) * m.scrip.lot,
                ask_quantity=self.rng.randint(1, 900) * m.scrip.lot,
                bid_orders=self.rng.randint(1, 40),
                ask_orders=self.rng.randint(1, 40),
                bid_price=r(max(1, m.ltp - i - 1)),
                ask_price=r(m.ltp + i + 1),
            )
            for i in range(5)
        )
        full = Full(**common, oi=m.oi, oi_high=m.oi_high, oi_low=m.oi_low, **prices, depth=depth)
        return [self._record("feed", *key, full)]

    def _depth_packets(self, key: tuple[str, str]) -> bytes:
        """A bid packet and an ask packet of 20 levels for one instrument, concatenated."""
        market = self._instrument(key)
        if market is None:
            return b""
        self._step(market)
        m = market
        frames = []
        for side, sign in (("bid", -1), ("ask", 1)):
            self._depth_seq += 1
            rows = tuple(
                DepthRow(
                    m.rupees(max(1, m.ltp + sign * (i + 1))),
                    self.rng.randint(1, 5000) * m.scrip.lot,
                    self.rng.randint(1, 60),
                )
                for i in range(20)
            )
            frames.append(self._record("depth", *key, Depth20(side, rows, self._depth_seq)))
        return b"".join(frames)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            self._tick_no += 1
            try:
                await self._tick()
            except Exception:  # a bug here must not stop every feed for good
                log.exception("dhan-sim: a tick failed")

    async def _tick(self) -> None:
        """One tick: fresh packets for every subscription, each connection's sent by a task of its own.

        A connection still busy with the previous tick's (a client that stopped reading) skips
        this one, so one slow client neither stalls the others nor piles up packets.
        """
        for conn in [*self.connections, *self.depth_connections]:
            if conn.silent or not conn.subscriptions or (conn.sending is not None and not conn.sending.done()):
                continue
            if conn.stream == "depth":
                depth = b"".join(self._depth_packets(key) for key in list(conn.subscriptions))
                out = [depth] if depth else []
            else:
                out = [f for key, code in list(conn.subscriptions.items()) for f in self._packets(key, code)]
            if out:
                conn.sending = self._spawn(_send_all(conn.ws, out))

    # What a test reads back ------------------------------------------------------------------
    def intended(self, frame: bytes) -> Sent:
        """The latest packet sent with exactly these bytes (KeyError if none)."""
        for sent in reversed(self.sent):
            if sent.frame == frame:
                return sent
        raise KeyError("the simulator sent no such packet")

    def last(self, segment: str, security_id: str, code: int, stream: str = "feed") -> Sent:
        """The latest packet of response ``code`` sent for an instrument."""
        return self._last[(stream, segment, str(security_id), code)]

    def subscriptions(self) -> list[dict[tuple[str, str], int]]:
        """Per open market-feed connection (in the order they opened): (segment, id) -> request code."""
        return [dict(c.subscriptions) for c in self.connections]

    def depth_subscriptions(self) -> list[set[tuple[str, str]]]:
        """Per open 20-depth connection: the (segment, id) subscribed."""
        return [set(c.subscriptions) for c in self.depth_connections]

    # Failures on demand ---------------------------------------------------------------------
    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        assert self._loop is not None, "start the simulator first"
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _streams(self, streams: tuple[str, ...]) -> list[SimConnection]:
        return [c for c in self._all_connections() if c.stream in streams]

    def drop_all(self, streams: tuple[str, ...] = ("feed", "depth", "orders")) -> int:
        """Drop connections at the TCP level (no close frame), as a network failure would; how many."""
        conns = self._streams(streams)
        for conn in conns:
            if conn.ws.transport is not None:
                conn.ws.transport.abort()
        return len(conns)

    def go_silent(self, seconds: float | None = None, streams: tuple[str, ...] = ("feed", "depth")) -> int:
        """Stop sending (ticks, pings, even pongs) on the connections open now; with ``seconds``, resume then.

        New connections are served normally. ``go_silent(0)`` ends a silence at once.
        """
        conns = self._streams(streams)
        loop = asyncio.get_running_loop()
        for conn in conns:
            if conn.resume is not None:
                conn.resume.cancel()
                conn.resume = None
            if seconds == 0:
                self._speak(conn)
                continue
            conn.silent = True
            if conn.ws.transport is not None:
                conn.ws.transport.pause_reading()  # unread pings get no pongs
            if seconds is not None:
                conn.resume = loop.call_later(seconds, self._speak, conn)
        return len(conns)

    @staticmethod
    def _speak(conn: SimConnection) -> None:
        conn.silent = False
        conn.resume = None
        if conn.ws.transport is not None and not conn.ws.transport.is_closing():
            conn.ws.transport.resume_reading()

    def garbage_frame(self, kind: str = "truncated", stream: str = "feed") -> bytes:
        """A malformed packet: ``truncated`` (a quote cut short), ``length`` (a ticker claiming 200
        bytes), ``code`` (response code 99); on ``depth``, the same faults in its 12-byte header."""
        key = next((k for c in self.connections for k in c.subscriptions), ("NSE_EQ", "2885"))
        seg, sid = SEGMENT_CODES.get(key[0], 1), int(key[1])
        if stream == "depth":
            if kind == "length":
                return struct.pack("<hBBiI", 30000, DEPTH_BID, 1, sid, 0) + b"\0" * 32
            if kind == "code":
                return struct.pack("<hBBiI", 28, 99, 1, sid, 0) + b"\0" * 16
            return struct.pack("<hBBiI", 332, DEPTH_BID, 1, sid, 0) + b"\x01" * 40
        if kind == "length":
            return _header(TICKER, 200, seg, sid) + struct.pack("<fI", 1.0, ist_seconds())
        if kind == "code":
            return _header(99, 16, seg, sid) + b"\x07" * 8
        if kind != "truncated":
            raise ValueError(f"no garbage of kind {kind!r}; use truncated, length or code")
        return _header(QUOTE, 50, seg, sid) + b"\x01" * 12

    def send_garbage(self, frame: bytes | None = None, kind: str = "truncated", stream: str = "feed") -> int:
        """Send a malformed binary frame (``frame``, or one of ``garbage_frame(kind)``) on every connection."""
        junk = frame if frame is not None else self.garbage_frame(kind, stream)
        conns = self._streams((stream,))
        for conn in conns:
            self._spawn(_send_quietly(conn.ws, junk))
        return len(conns)

    def disconnect(self, code: int) -> int:
        """Send a disconnect packet with reason ``code`` to every feed and 20-depth connection, then close."""
        conns = self._streams(("feed", "depth"))
        for conn in conns:
            packet = (
                encode_depth_disconnect(code)
                if conn.stream == "depth"
                else self._record("feed", "IDX_I", "0", Disconnect(code))
            )
            self._spawn(self._send_and_close(conn, packet, REASONS.get(code, "")))
        return len(conns)

    async def _send_and_close(self, conn: SimConnection, packet: bytes, reason: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(packet)
            await conn.ws.close(1000, reason)

    def send_market_status(self) -> int:
        """Send a market status packet (7) on every feed connection."""
        for conn in self.connections:
            self._spawn(_send_quietly(conn.ws, self._record("feed", "IDX_I", "0", MarketStatus())))
        return len(self.connections)

    # Control over HTTP (oaws sim dhan) -------------------------------------------------------------
    control_actions = CONTROLS
    control_help = CONTROL_HELP

    def _control_args(self, action: str, params: dict[str, str], body: bytes) -> dict[str, Any]:
        return _control_args(action, params, body)

    def _control_method(self, action: str) -> str:
        return "GET" if action == "state" else "POST"

    async def _control(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = {"action": action}
        if action == "drop":
            n = self.drop_all()
            reply["message"] = f"dropped {_n(n)} without a close frame"
        elif action == "silent":
            n = self.go_silent(args["seconds"])
            reply |= {"seconds": args["seconds"], "message": f"{_n(n)} silent for {args['seconds']:g} s"}
        elif action == "garbage":
            n = self.send_garbage(kind=args["kind"])
            reply["message"] = f"sent a malformed ({args['kind']}) packet on {_n(n)}"
        elif action == "expire":
            n = len(self.connections) + len(self.depth_connections)
            self.expire_token(drop=args["drop"])
            reply["message"] = f"expired the access token; {_n(n) if args['drop'] else 'no connection'} disconnected"
        elif action == "disconnect":
            n = self.disconnect(args["code"])
            reply |= {"code": args["code"], "message": f"sent disconnect {args['code']} on {_n(n)} and closed them"}
        elif action == "rest-fault":
            self.rest_fault(args["status"], args["count"])
            reply |= {"status": args["status"], "count": args["count"]}
            reply["message"] = f"the next {args['count']} REST request(s) answer {args['status']}"
        elif action == "order":
            message = self.push_order(args["data"])
            reply |= {"order": message["Data"]["OrderNo"], "streams": len(self.order_connections)}
            reply["message"] = f"pushed order {message['Data']['OrderNo']} on {len(self.order_connections)} stream(s)"
        else:
            reply |= {
                "feed": [len(s) for s in self.subscriptions()],
                "depth": [len(s) for s in self.depth_subscriptions()],
                "orders": len(self.order_connections),
                "handshakes": self.handshakes,
            }
            reply["message"] = f"{_n(len(self.connections))} on the market feed"
        reply["connections"] = len(self.connections)
        return reply


def _n(count: int) -> str:
    return f"{count} connection{'' if count == 1 else 's'}"


def _control_args(action: str, q: dict[str, str], body: bytes) -> dict[str, Any]:
    """The arguments of a control request, or ValueError with one sentence."""
    if action == "silent":
        seconds = _number(q.get("seconds"), DEFAULT_SILENCE, "seconds")
        if not 0 < seconds <= MAX_SILENCE:
            raise ValueError(f"seconds must be above 0 and at most {MAX_SILENCE:g}")
        return {"seconds": seconds}
    if action == "garbage":
        kind = q.get("kind", "truncated")
        if kind not in ("truncated", "length", "code"):
            raise ValueError(f"kind must be truncated, length or code, not {kind!r}")
        return {"kind": kind}
    if action == "expire":
        return {"drop": q.get("drop", "1") not in ("0", "false", "no")}
    if action == "disconnect":
        code = int(_number(q.get("code"), R_TOKEN_EXPIRED, "code"))
        if not 0 <= code <= 65535:
            raise ValueError("code must be a u16 such as 805 or 807")
        return {"code": code}
    if action == "rest-fault":
        status = int(_number(q.get("status"), 429, "status"))
        count = int(_number(q.get("count"), 1, "count"))
        if not 400 <= status <= 599 or not 1 <= count <= 1000:
            raise ValueError("status must be 400-599 and count 1-1000")
        return {"status": status, "count": count}
    if action == "order":
        data = _json(body)
        if body.strip() and not data:
            raise ValueError("the body must be a JSON object of Dhan's order fields")
        return {"data": data}
    return {}


def _number(given: str | None, default: float, name: str) -> float:
    if given is None or given == "":
        return default
    try:
        value = float(given)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {given!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number")
    return value


def _error_body(status: int) -> dict[str, str]:
    if status == 429:
        return {
            "errorType": "Rate_Limit",
            "errorCode": "DH-904",
            "errorMessage": "Too many requests on server from single user breaching rate limits. "
            "Try throttling API calls.",
        }
    if status >= 500:
        return {
            "errorType": "Internal_Server_Error",
            "errorCode": "DH-908",
            "errorMessage": "This is a server error, where the server was not able to process the request.",
        }
    return {"errorType": "Input_Exception", "errorCode": "DH-905", "errorMessage": "Missing required fields."}


async def _send_quietly(ws: ServerConnection, data: str | bytes) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(data)


async def _send_all(ws: ServerConnection, frames: list[bytes]) -> None:
    with contextlib.suppress(ConnectionClosed):
        for frame in frames:
            await ws.send(frame)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _handler_class(sim: DhanSimulator) -> type[BaseHTTPRequestHandler]:
    def answer(method: str, url: SplitResult, headers: dict[str, str], body: bytes) -> simulation.Answer:
        status, reply = sim.rest(method, url.path, headers, body)
        if isinstance(reply, bytes):
            return status, reply, {"Content-Type": "text/csv" if status == 200 else "text/html"}
        return status, json.dumps(reply).encode(), {"Content-Type": "application/json"}

    return simulation.handler_class("dhan-sim", log, sim.control, answer, ("GET", "POST", "PUT", "DELETE"))


async def run(
    host: str = "127.0.0.1",
    rest_port: int = 0,
    feed_port: int = 0,
    tick_interval: float = 0.5,
    on_ready: Callable[[DhanSimulator], None] | None = None,
) -> None:
    """Serve the simulator until SIGINT or SIGTERM, or until cancelled (``oaws sim dhan``)."""
    sim = DhanSimulator(host=host, rest_port=rest_port, feed_port=feed_port, tick_interval=tick_interval)
    await simulation.run_until_signal(sim, on_ready)
