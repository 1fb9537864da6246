"""A local stand-in for Angel One: SmartAPI's REST login and the WebSocket V2 feed.

No machine here reaches Angel's servers, so the adapter (and the real ``SmartConnect``)
are tested against this, and ``oaws angel-sim`` serves it to people who develop offline.
It follows docs/brokers/angel.md wherever that is known:

REST (``http.server`` in a thread, so a blocking ``SmartConnect`` in the same process works):

- ``POST /rest/auth/angelbroking/user/v1/loginByPassword`` checks ``X-PrivateKey`` (the API
  key), the client code, the PIN and the TOTP of the shared secret (one 30-s step of slack),
  and answers ``{"status":true,"data":{"jwtToken","refreshToken","feedToken"}}``.
- ``GET /rest/secure/angelbroking/user/v1/getProfile`` requires ``Authorization: Bearer <jwt>``.
- ``POST /rest/auth/angelbroking/jwt/v1/generateTokens`` trades a refresh token for new tokens
  (``SmartConnect.generateToken`` / ``renewAccessToken``); ``.../user/v1/logout`` ends a session.
- ``GET /OpenAPI_File/files/OpenAPIScripMaster.json`` serves the small fixture master.

Tokens are JWT-shaped (``header.payload.signature``, base64url) with an ``exp`` claim, as
Angel's are. Refusals carry Angel's error codes as far as they are known (unverified).

Feed (``websockets`` server on the same event loop as the caller):

- the handshake requires ``Authorization``, ``x-api-key``, ``x-client-code`` and
  ``x-feed-token``; a bad one gets HTTP 401 with ``x-error-message``; more than
  ``max_connections`` per client code get 429;
- text ``ping`` is answered with text ``pong``; protocol pings by websockets itself;
- subscribe / unsubscribe requests; E1001 for an invalid payload, E1002 past the token
  limit of a connection or the depth-20 quota (exchange type 1 only, ``depth_quota`` tokens);
- a tick right after each subscription, then one per subscription every ``tick_interval``,
  built with ``wire.encode`` in every mode, prices walking by the instrument's tick size.

Orders (a second ``websockets`` server, its own port, ``order_url`` / ``ANGEL_ORDER_URL``):

- ``/smart-order-update`` requires ``Authorization: Bearer <jwt>`` (401 ``Invalid Auth
  Token`` otherwise) and sends the ``AB00`` acknowledgement once open; ``ping`` -> ``pong``;
- ``POST /rest/secure/angelbroking/order/v1/placeOrder`` (with the jwt; what
  ``SmartConnect.placeOrder`` sends) answers with an order id for a token of the master,
  then pushes ``AB01`` (open) and ``AB05`` (complete, at the limit price or the last
  price) with Angel's ``orderData`` fields on every order-status socket;
- ``drop_orders()`` and ``send_order_frame()`` are its failures on demand.

Candles: ``POST /rest/secure/angelbroking/historical/v1/getCandleData`` (with the jwt; 401
``AG8001`` otherwise) answers Angel's rows from ``oaws.brokers.sim.history`` anchored at the
token's live walk, refuses spans beyond Angel's per-interval limits and more than
``candle_rate`` requests a second (403, text, as Angel does); docs/brokers/angel.md section 14.

Every packet sent is kept by its sequence number (``packet(seq)``) so a test can compare
what the adapter decoded with what was encoded, field by field. Failures on demand:
``drop_all()``, ``go_silent()``, ``send_garbage()``, ``expire_tokens()``, ``close_all()``.

Control (for ``oaws angel-sim``, where nobody holds the Python object): ``POST /sim/drop``,
``POST /sim/silent?seconds=N`` (default 60, longer than the adapter's 30-s silence window),
``POST /sim/garbage`` and ``POST /sim/expire`` on the REST port trigger the same failures on
the feed connections open at that moment and answer one line of JSON.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import importlib.resources
import json
import logging
import random
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import SplitResult, urlsplit

import pyotp
from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from oaws.bars.aggregator import parse_interval
from oaws.brokers import simulation
from oaws.brokers.angel import wire
from oaws.brokers.angel.history import ANGEL_INTERVALS
from oaws.brokers.angel.history import MAX_DAYS as CANDLE_MAX_DAYS
from oaws.brokers.angel.master import (
    CDS_DIVISOR,
    NAME,
    PAISE,
    SEGMENT,
    SEGMENT_TYPES,
    SYMBOL,
    TICK,
    TOKEN,
    TYPE,
    Master,
    rows_from_raw,
)
from oaws.brokers.angel.wire import BestFiveEntry, DepthLevel, Packet
from oaws.brokers.sim.history import History
from oaws.config import IST
from oaws.names import contract, today

log = logging.getLogger(__name__)
# websockets logs handshake headers (tokens) at DEBUG; the simulator keeps them out of logs like the adapter does
_ws_log = logging.getLogger("oaws.angel.simulator.websocket")
_ws_log.setLevel(logging.INFO)

LOGIN_PATH = "/rest/auth/angelbroking/user/v1/loginByPassword"
PROFILE_PATH = "/rest/secure/angelbroking/user/v1/getProfile"
TOKENS_PATH = "/rest/auth/angelbroking/jwt/v1/generateTokens"
LOGOUT_PATH = "/rest/secure/angelbroking/user/v1/logout"
MASTER_PATH = "/OpenAPI_File/files/OpenAPIScripMaster.json"
FEED_PATH = "/smart-stream"
ORDER_PATH = "/smart-order-update"
PLACE_ORDER_PATH = "/rest/secure/angelbroking/order/v1/placeOrder"
CANDLE_PATH = "/rest/secure/angelbroking/historical/v1/getCandleData"
#: what Angel answers (HTTP 403, as text) to more candle requests a second than it allows
RATE_REFUSAL = b"Access denied because of exceeding access rate"
#: Seconds between an order's AB01 (open) and its AB05 (complete) on the order-status socket
FILL_DELAY = 0.05
CONTROL_PREFIX = simulation.CONTROL_PREFIX
#: Seconds ``POST /sim/silent`` keeps connections silent without ``?seconds=``: past the adapter's silence timeout.
DEFAULT_SILENCE = 60.0
#: The longest silence ``POST /sim/silent`` accepts (an hour): a typo should not silence the day.
MAX_SILENCE = 3600.0
CONTROL_HELP = "POST /sim/drop, /sim/silent?seconds=N, /sim/garbage or /sim/expire"

DEFAULT_API_KEY = "simapikey"
DEFAULT_CLIENT_CODE = "S9990001"
DEFAULT_PIN = "4821"
DEFAULT_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

#: Rough prices (rupees) so that the simulated market looks familiar; others get one from their token.
BASE_PRICES = {
    "RELIANCE-EQ": 2950.0,
    "SBIN-EQ": 812.0,
    "INFY-EQ": 1890.0,
    "TCS-EQ": 4150.0,
    "HDFCBANK-EQ": 1720.0,
    "ICICIBANK-EQ": 1290.0,
    "Nifty 50": 24350.0,
    "Nifty Bank": 52300.0,
    "SENSEX": 80200.0,
    "USDINR27DEC24FUT": 84.4525,
    "CRUDEOIL19DEC24FUT": 5920.0,
    "RELIANCE": 2951.0,
}
SENT_KEPT = 50_000


def fixture_master_bytes() -> bytes:
    """The small instrument master shipped with oaws (a few dozen real-looking records)."""
    return importlib.resources.files("oaws.brokers.angel").joinpath("sim_master.json").read_bytes()


#: the options angel-sim lists (``oaws.brokers.sim.options``' calendar), each with its index's token
OPTION_UNDERLYINGS = {
    "NIFTY": (wire.NSE_CM, "99926000", "Nifty 50"),
    "BANKNIFTY": (wire.NSE_CM, "99926009", "Nifty Bank"),
    "FINNIFTY": (wire.NSE_CM, "99926037", "Nifty Fin Service"),
    "SENSEX": (wire.BSE_CM, "99919000", "SENSEX"),
}
#: the first token of the generated option records
OPTION_TOKENS = 9_000_000
FINNIFTY_PRICE = 23800.0


def master_with_options(raw: bytes, on: date | None = None) -> bytes:
    """``raw`` (the fixture master) with the index options the simulated market lists on
    ``on`` (default today) appended as Angel's records, strikes around angel-sim's prices."""
    from oaws.brokers.sim.options import option_contracts

    records = json.loads(raw)
    token = OPTION_TOKENS
    for name, (_, _, index) in OPTION_UNDERLYINGS.items():
        around = BASE_PRICES.get(index, FINNIFTY_PRICE)
        for c in option_contracts(name, on or today(), around):
            token += 1
            records.append(
                {
                    "token": str(token),
                    "symbol": c.symbol,
                    "name": name,
                    "expiry": c.expiry.strftime("%d%b%Y").upper(),
                    "strike": f"{c.strike * 100:.6f}",
                    "lotsize": str(c.lot_size),
                    "instrumenttype": "OPTIDX",
                    "exch_seg": c.exchange,
                    "tick_size": "5.000000",
                }
            )
    return json.dumps(records).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _Instrument:
    """The simulated market of one token (prices in the wire's units)."""

    ltp: int
    tick: int
    close: int
    open: int = 0
    high: int = 0
    low: int = 0
    volume: int = 0
    turnover: int = 0
    oi: int = 0

    def __post_init__(self) -> None:
        self.open = self.high = self.low = self.ltp

    def step(self, rng: random.Random) -> int:
        self.ltp = max(self.tick, self.ltp + rng.choice((-2, -1, -1, 0, 1, 1, 2)) * self.tick)
        self.high, self.low = max(self.high, self.ltp), min(self.low, self.ltp)
        quantity = rng.randint(1, 500)
        self.volume += quantity
        self.turnover += quantity * self.ltp
        self.oi = max(0, self.oi + rng.randint(-50, 60))
        return quantity


@dataclass(eq=False)
class SimConnection:
    """One feed connection as the simulator sees it."""

    ws: ServerConnection
    client_code: str
    subscriptions: set[tuple[int, int, str]] = field(default_factory=set)
    silent: bool = False
    #: when set, the timer that ends a silence of ``go_silent(seconds=...)``
    resume: asyncio.TimerHandle | None = None


class AngelSimulator(simulation.Simulator):
    """Angel's REST login and WebSocket feed on 127.0.0.1; ``await start()`` or ``async with``."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        client_code: str = DEFAULT_CLIENT_CODE,
        pin: str = DEFAULT_PIN,
        totp_secret: str = DEFAULT_TOTP_SECRET,
        host: str = "127.0.0.1",
        rest_port: int = 0,
        feed_port: int = 0,
        order_port: int = 0,
        tick_interval: float = 0.2,
        token_ttl: float = 28 * 3600,
        max_connections: int = 3,
        tokens_per_connection: int = 1000,
        depth_quota: int = 50,
        seed: int | None = None,
        master: bytes | None = None,
    ) -> None:
        self.api_key, self.client_code, self.pin, self.totp_secret = api_key, client_code, pin, totp_secret
        self.host, self._rest_port, self._feed_port, self._order_port = host, rest_port, feed_port, order_port
        self.tick_interval = tick_interval
        self.token_ttl = token_ttl
        self.max_connections = max_connections
        self.tokens_per_connection = tokens_per_connection
        self.depth_quota = depth_quota
        self.rng = random.Random(seed)
        #: the seed of the candles' history (oaws.brokers.sim.history)
        self.history_seed = seed if seed is not None else secrets.randbits(32)
        #: candle requests allowed a second (Angel: 3), and the times of the last ones
        self.candle_rate = 3
        self._candle_times: list[float] = []
        #: the candle requests answered (their bodies) and refused for the rate (for tests)
        self.candle_requests: list[dict[str, Any]] = []
        self.candle_refusals = 0
        self.master_bytes = master if master is not None else master_with_options(fixture_master_bytes())
        self.master = Master(rows_from_raw(self.master_bytes), "simulator")
        self._signing_key = secrets.token_bytes(32)
        self._lock = threading.Lock()  # the REST thread and the event loop share the token sets
        self._jwts: set[str] = set()
        self._refresh: set[str] = set()
        self._feed_tokens: set[str] = set()
        self._market: dict[tuple[int, str], _Instrument] = {}
        self._seq = 0
        self.sent: OrderedDict[int, Packet] = OrderedDict()
        self.sent_depth: list[Packet] = []
        self.connections: list[SimConnection] = []
        # what happened, for tests
        self.logins = 0
        self.login_failures: list[str] = []
        self.rest_requests: list[str] = []
        self.handshakes = 0
        self.refused: list[tuple[int, str]] = []
        self.requests: list[dict[str, Any]] = []
        self.text_pings = 0
        #: when set, every feed handshake is refused with 401 and this message (an account without feed access)
        self.refuse_feed: str | None = None
        #: when true, the REST API answers 503 with an HTML page, as a gateway in maintenance does
        self.rest_unavailable = False
        self._httpd: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._server: Server | None = None
        self._order_server: Server | None = None
        #: the order-status sockets open now, and what they were sent (for tests)
        self.order_connections: list[ServerConnection] = []
        self.order_handshakes = 0
        self.order_refused: list[tuple[int, str]] = []
        self.order_frames: list[dict[str, Any]] = []
        #: when set, every order-status handshake is refused with 401 and this message
        self.refuse_orders: str | None = None
        #: orders placed through placeOrder: order id -> the request's body
        self.orders: dict[str, dict[str, Any]] = {}
        self._order_ids = 0
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the /sim control requests answered, e.g. "drop" (for tests)
        self.controls: list[str] = []

    # Lifecycle ---------------------------------------------------------------------
    async def start(self) -> Self:
        self._loop = asyncio.get_running_loop()  # the REST thread hands /sim controls over to it
        self._httpd = simulation.rest_server(self.host, self._rest_port, _handler_class(self))
        self._http_thread = simulation.serve_in_thread(self._httpd, "angel-sim-rest")
        self._server = await simulation.serve_ws(
            self._serve_feed, self.host, self._feed_port, process_request=self._handshake, logger=_ws_log
        )
        self._order_server = await simulation.serve_ws(
            self._serve_orders, self.host, self._order_port, process_request=self._order_handshake, logger=_ws_log
        )
        self._ticker = asyncio.create_task(self._tick_forever())
        return self

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for task in list(self._tasks):
            task.cancel()
        for conn in self.connections:
            if conn.resume is not None:
                conn.resume.cancel()
        for server in (self._server, self._order_server):
            if server is not None:
                server.close()
                await server.wait_closed()
        await simulation.stop_rest(self._httpd)

    @property
    def order_port(self) -> int:
        return simulation.ws_port_of(self._order_server)

    @property
    def order_url(self) -> str:
        return f"ws://{self.host}:{self.order_port}{ORDER_PATH}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def feed_url(self) -> str:
        return f"ws://{self.host}:{self.feed_port}{FEED_PATH}"

    @property
    def master_url(self) -> str:
        return f"{self.api_url}{MASTER_PATH}"

    def env(self) -> dict[str, str]:
        """The environment that points oaws at this simulator."""
        return {
            "ANGEL_API_KEY": self.api_key,
            "ANGEL_CLIENT_CODE": self.client_code,
            "ANGEL_PIN": self.pin,
            "ANGEL_TOTP_SECRET": self.totp_secret,
            "ANGEL_API_URL": self.api_url,
            "ANGEL_FEED_URL": self.feed_url,
            "ANGEL_ORDER_URL": self.order_url,
            "ANGEL_MASTER_URL": self.master_url,
        }

    # Tokens --------------------------------------------------------------------------
    def _jwt(self, kind: str) -> str:
        now = time.time()
        header = _b64(b'{"alg":"HS512"}')
        # exp may be fractional (RFC 7519 NumericDate), which lets tests use sub-second lifetimes
        claims = {
            "username": self.client_code,
            "token": kind,
            "iat": int(now),
            "exp": round(now + self.token_ttl, 3),
            "jti": secrets.token_hex(8),
        }
        payload = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self._signing_key, f"{header}.{payload}".encode(), hashlib.sha512).digest())
        return f"{header}.{payload}.{signature}"

    def _valid(self, token: str, pool: set[str]) -> bool:
        with self._lock:
            if token not in pool:
                return False
        try:
            claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        except (ValueError, IndexError):
            return False
        return claims.get("exp", 0) > time.time()

    def _issue(self) -> dict[str, str]:
        tokens = {"jwtToken": self._jwt("access"), "refreshToken": self._jwt("refresh"), "feedToken": self._jwt("feed")}
        with self._lock:
            self._jwts.add(tokens["jwtToken"])
            self._refresh.add(tokens["refreshToken"])
            self._feed_tokens.add(tokens["feedToken"])
        return tokens

    def expire_tokens(self, drop: bool = True) -> None:
        """Invalidate every token issued so far (Angel's nightly rollover); drop live connections too."""
        with self._lock:
            self._jwts.clear()
            self._refresh.clear()
            self._feed_tokens.clear()
        if drop:
            self.drop_all()

    # REST ----------------------------------------------------------------------------
    def rest(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        """One REST request -> (HTTP status, JSON body or bytes). Called from the HTTP thread."""
        self.rest_requests.append(f"{method} {path}")
        if method == "GET" and path == MASTER_PATH:
            return 200, self.master_bytes
        if self.rest_unavailable:
            return 503, b"<html><body>Service Unavailable</body></html>"
        if method == "POST" and path == LOGIN_PATH:
            return self._login(headers, body)
        if path in (PROFILE_PATH, LOGOUT_PATH):
            jwt = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not self._valid(jwt, self._jwts):
                return 401, _refusal("Invalid Token", "AG8001")
            if path == LOGOUT_PATH:
                with self._lock:
                    self._jwts.discard(jwt)
                return 200, {"status": True, "message": "SUCCESS", "errorcode": "", "data": ""}
            return 200, {
                "status": True,
                "message": "SUCCESS",
                "errorcode": "",
                "data": {
                    "clientcode": self.client_code,
                    "name": "SIMULATED USER",
                    "email": "",
                    "mobileno": "",
                    "exchanges": ["nse_cm", "bse_cm", "nse_fo", "bse_fo", "mcx_fo", "cde_fo"],
                    "products": ["MARGIN", "MIS", "NRML", "CNC", "CO", "BO"],
                    "lastlogintime": "",
                    "broker": "",
                },
            }
        if method == "POST" and path == PLACE_ORDER_PATH:
            jwt = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not self._valid(jwt, self._jwts):
                return 401, _refusal("Invalid Token", "AG8001")
            return self._place_order(_json(body))
        if method == "POST" and path == CANDLE_PATH:
            jwt = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not self._valid(jwt, self._jwts):
                return 401, {"success": False, "message": "Invalid Token", "errorCode": "AG8001", "data": ""}
            return self._candles(_json(body))
        if method == "POST" and path == TOKENS_PATH:
            refresh = str(_json(body).get("refreshToken", ""))
            if not self._valid(refresh, self._refresh):
                return 200, _refusal("Invalid Refresh Token", "AB8050")
            with self._lock:
                self._refresh.discard(refresh)
            return 200, {"status": True, "message": "SUCCESS", "errorcode": "", "data": self._issue()}
        return 404, _refusal(f"no such route {path}", "AB2000")

    def _candles(self, request: dict[str, Any]) -> tuple[int, Any]:
        """``getCandleData``: Angel's rate (403 as text) and span limits, then candles consistent
        with the live walk of the token (its previous close ends the day before)."""
        now = time.monotonic()
        with self._lock:
            self._candle_times = [t for t in self._candle_times if now - t < 1.0]
            if len(self._candle_times) >= self.candle_rate:
                self.candle_refusals += 1
                return 403, RATE_REFUSAL
            self._candle_times.append(now)
            self.candle_requests.append(dict(request))
        exchange = str(request.get("exchange") or "")
        token = str(request.get("symboltoken") or "")
        name = str(request.get("interval") or "")
        interval = next((k for k, v in ANGEL_INTERVALS.items() if v == name), None)
        if interval is None:
            return 200, _refusal("Invalid interval", "AB13000")
        try:
            start = datetime.strptime(str(request.get("fromdate")), "%Y-%m-%d %H:%M").replace(tzinfo=IST)
            end = datetime.strptime(str(request.get("todate")), "%Y-%m-%d %H:%M").replace(tzinfo=IST)
        except ValueError:
            return 200, _refusal("Invalid date or time format", "AB13000")
        if end < start:
            return 200, _refusal("todate is before fromdate", "AB13000")
        if end - start > timedelta(days=CANDLE_MAX_DAYS[name]):
            return 200, _refusal(f"the range exceeds {CANDLE_MAX_DAYS[name]} days for {name}", "AB13000")
        exchange_type = SEGMENT_TYPES.get(exchange)
        state = self._instrument(exchange_type, token) if exchange_type is not None else None
        row = self.master.row_for_token(exchange_type, token) if exchange_type is not None else None
        if state is None or row is None:
            return 200, _refusal("No data found", "AB1004")
        divisor = CDS_DIVISOR if row[SEGMENT] == "CDS" else PAISE
        is_index = str(row[TYPE]).upper() in ("AMXIDX", "INDEX")
        price = state.close / divisor
        past = History(
            str(row[SYMBOL]), exchange, self.history_seed, round(price * 20), round(state.open / divisor * 20),
            int(time.time() * 1000), 0.0 if is_index else max(10.0, 2e6 / max(price, 1.0)),
        )  # fmt: skip
        bars = past.candles(parse_interval(interval), int(start.timestamp() * 1000), int(end.timestamp() * 1000) + 1)
        data = [
            [datetime.fromtimestamp(b.start_ms / 1000, IST).isoformat(), b.open, b.high, b.low, b.close, b.volume]
            for b in bars
        ]
        return 200, {"status": True, "message": "SUCCESS", "errorcode": "", "data": data}

    def _login(self, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        request = _json(body)
        if headers.get("x-privatekey") != self.api_key:
            reason = "Invalid API Key", "AG8004"
        elif request.get("clientcode") != self.client_code:
            reason = "Invalid clientcode", "AB1007"
        elif request.get("password") != self.pin:
            reason = "Invalid PIN", "AB1000"
        elif not pyotp.TOTP(self.totp_secret).verify(str(request.get("totp", "")), valid_window=1):
            reason = "Invalid totp", "AB1050"
        else:
            self.logins += 1
            data = {**self._issue(), "state": None}
            return 200, {"status": True, "message": "SUCCESS", "errorcode": "", "data": data}
        self.login_failures.append(reason[0])
        return 200, _refusal(*reason)

    # Orders ------------------------------------------------------------------------------
    def _place_order(self, request: dict[str, Any]) -> tuple[int, Any]:
        """SmartAPI's placeOrder: an order id now, then AB01 (open) and AB05 (complete) on the order socket."""
        exchange = str(request.get("exchange") or "").upper()
        token = str(request.get("symboltoken") or "")
        exchange_type = SEGMENT_TYPES.get(exchange)
        row = self.master.row_for_token(exchange_type, token) if exchange_type is not None and token else None
        try:
            quantity = int(request.get("quantity") or 0)
        except (TypeError, ValueError):
            quantity = 0
        if row is None or quantity <= 0 or str(request.get("transactiontype")).upper() not in ("BUY", "SELL"):
            return 200, _refusal("Invalid order parameters", "AB4008")
        with self._lock:
            self._order_ids += 1
            orderid = f"2612{self._order_ids:011d}"
            self.orders[orderid] = dict(request)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._spawn, self._push_order(orderid, request, row))
        data = {"script": row[SYMBOL], "orderid": orderid, "uniqueorderid": f"sim-{orderid}"}
        return 200, {"status": True, "message": "SUCCESS", "errorcode": "", "data": data}

    async def _push_order(self, orderid: str, request: dict[str, Any], row: Any) -> None:
        quantity = int(request["quantity"])
        instrument = self._market.get((SEGMENT_TYPES.get(row[SEGMENT], 0), str(row[TOKEN])))
        fill = float(request.get("price") or 0) or (instrument.ltp / PAISE if instrument is not None else 100.0)
        await self._send_order_status("AB01", orderid, request, row, filled=0, average=0.0, quantity=quantity)
        await asyncio.sleep(FILL_DELAY)
        await self._send_order_status("AB05", orderid, request, row, filled=quantity, average=fill, quantity=quantity)

    async def _send_order_status(
        self, code: str, orderid: str, request: dict[str, Any], row: Any, *, filled: int, average: float, quantity: int
    ) -> None:
        now = time.strftime("%d-%b-%Y %H:%M:%S")
        status = {"AB01": "open", "AB05": "complete"}.get(code, "")
        data = {
            "variety": request.get("variety", "NORMAL"),
            "ordertype": request.get("ordertype", "MARKET"),
            "producttype": request.get("producttype", "INTRADAY"),
            "duration": request.get("duration", "DAY"),
            "price": float(request.get("price") or 0),
            "triggerprice": float(request.get("triggerprice") or 0),
            "quantity": str(quantity),
            "disclosedquantity": "0",
            "squareoff": 0.0,
            "stoploss": 0.0,
            "trailingstoploss": 0.0,
            "tradingsymbol": row[SYMBOL],
            "transactiontype": str(request.get("transactiontype")).upper(),
            "exchange": row[SEGMENT],
            "symboltoken": str(row[TOKEN]),
            "instrumenttype": "",
            "strikeprice": -1.0,
            "optiontype": "",
            "expirydate": "",
            "lotsize": "1",
            "cancelsize": "0",
            "averageprice": average,
            "filledshares": str(filled),
            "unfilledshares": str(quantity - filled),
            "orderid": orderid,
            "text": "",
            "status": status,
            "orderstatus": status,
            "updatetime": now,
            "exchtime": now,
            "exchorderupdatetime": now,
            "fillid": "",
            "filltime": "",
            "parentorderid": "",
            "ordertag": request.get("ordertag", ""),
            "uniqueorderid": f"sim-{orderid}",
        }
        message = {
            "user-id": self.client_code,
            "status-code": "200",
            "order-status": code,
            "error-message": "",
            "orderData": data,
        }
        self.order_frames.append(message)
        await self.send_order_frame(json.dumps(message))

    async def send_order_frame(self, frame: str | bytes) -> None:
        """Send one frame on every order-status socket (tests send garbage with it)."""
        for ws in list(self.order_connections):
            with contextlib.suppress(ConnectionClosed):
                await ws.send(frame)

    def drop_orders(self) -> None:
        """Close every order-status socket without a close frame (a dropped connection)."""
        for ws in list(self.order_connections):
            if ws.transport is not None:
                ws.transport.abort()

    def _order_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        self.order_handshakes += 1
        if urlsplit(request.path).path != ORDER_PATH:
            return self._refuse_order(connection, 404, "Not Found")
        if self.refuse_orders:
            return self._refuse_order(connection, 401, self.refuse_orders)
        jwt = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not self._valid(jwt, self._jwts):
            return self._refuse_order(connection, 401, "Invalid Auth Token")
        return None

    def _refuse_order(self, connection: ServerConnection, status: int, message: str) -> Response:
        self.order_refused.append((status, message))
        response = connection.respond(status, f"{message}\n")
        response.headers["x-error-message"] = message
        return response

    async def _serve_orders(self, ws: ServerConnection) -> None:
        self.order_connections.append(ws)
        try:
            ack = {"user-id": self.client_code, "status-code": "200", "order-status": "AB00", "error-message": ""}
            await ws.send(json.dumps({**ack, "orderData": {}}))
            async for message in ws:
                if message == "ping":
                    await ws.send("pong")
        except ConnectionClosed:
            pass
        finally:
            self.order_connections.remove(ws)

    # Feed handshake --------------------------------------------------------------------
    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        h = request.headers
        if urlsplit(request.path).path != FEED_PATH:
            return self._refuse(connection, 404, "Not Found")
        jwt = h.get("Authorization", "").removeprefix("Bearer ").strip()
        if self.refuse_feed:
            return self._refuse(connection, 401, self.refuse_feed)
        if h.get("x-api-key") != self.api_key:
            return self._refuse(connection, 401, "Invalid API Key")
        if h.get("x-client-code") != self.client_code:
            return self._refuse(connection, 401, "Invalid Client Code")
        if not self._valid(jwt, self._jwts):
            return self._refuse(connection, 401, "Invalid Auth Token")
        if not self._valid(h.get("x-feed-token", ""), self._feed_tokens):
            return self._refuse(connection, 401, "Invalid Feed Token")
        if sum(c.client_code == self.client_code for c in self.connections) >= self.max_connections:
            return self._refuse(connection, 429, "Connection Limit Exceeded")
        return None

    def _refuse(self, connection: ServerConnection, status: int, message: str) -> Response:
        self.refused.append((status, message))
        response = connection.respond(status, f"{message}\n")
        response.headers["x-error-message"] = message
        return response

    async def _serve_feed(self, ws: ServerConnection) -> None:
        conn = SimConnection(ws, self.client_code)
        self.connections.append(conn)
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    await ws.send(_error("", "E1001", "Invalid Request Payload."))
                elif message == "ping":
                    self.text_pings += 1
                    if not conn.silent:
                        await ws.send("pong")
                else:
                    for frame in self._request(conn, message):
                        await ws.send(frame)
        except ConnectionClosed:
            pass
        finally:
            self.connections.remove(conn)

    def _request(self, conn: SimConnection, text: str) -> list[str | bytes]:
        try:
            request = json.loads(text)
        except ValueError:
            return [_error("", "E1001", "Invalid Request Payload.")]
        self.requests.append(request)
        correlation = str(request.get("correlationID", "")) if isinstance(request, dict) else ""
        keys = _parse_request(request)
        if keys is None:
            return [_error(correlation, "E1001", "Invalid Request Payload.")]
        action, wanted = keys
        if action == wire.UNSUBSCRIBE:
            conn.subscriptions.difference_update(wanted)
            return []
        new = wanted - conn.subscriptions
        depth = {k for k in conn.subscriptions | new if k[0] == wire.DEPTH}
        if any(k[1] != wire.NSE_CM for k in depth) or len(depth) > self.depth_quota:
            return [_error(correlation, "E1002", "Invalid Request. Depth Subscription Limit Exceeded")]
        if len(conn.subscriptions) + len(new) > self.tokens_per_connection:
            return [_error(correlation, "E1002", "Invalid Request. Subscription Limit Exceeded")]
        conn.subscriptions.update(new)
        return [wire.encode(p) for k in sorted(new) if (p := self._next_packet(*k)) is not None]

    # Ticks -----------------------------------------------------------------------------
    def _instrument(self, exchange_type: int, token: str) -> _Instrument | None:
        state = self._market.get((exchange_type, token))
        if state is None:
            row = self.master.row_for_token(exchange_type, token)
            if row is None:
                return None
            divisor = CDS_DIVISOR if row[SEGMENT] == "CDS" else PAISE
            rupees = BASE_PRICES.get(row[SYMBOL]) or 100 + int(token) % 2900
            tick = max(1, round(float(row[TICK] or 0) / 100 * divisor)) if float(row[TICK] or 0) > 0 else 5
            ltp = round(rupees * divisor) // tick * tick
            close = ltp + self.rng.randint(-20, 20) * tick
            state = self._market[(exchange_type, token)] = _Instrument(ltp=ltp, tick=tick, close=close)
            state.oi = self.rng.randint(0, 100_000) if row[SEGMENT] in ("NFO", "BFO", "MCX", "NCDEX", "CDS") else 0
            if row[TYPE] == "OPTIDX":  # opens at its model price
                self._reprice(exchange_type, token, state)
                state.close = state.open = state.high = state.low = state.ltp
        return state

    def _reprice(self, exchange_type: int, token: str, s: _Instrument) -> None:
        """An index option's price, as the simulated market's (``oaws.brokers.sim.options``):
        Black-Scholes on its smile from the index's price here now."""
        from oaws.brokers.sim.options import price
        from oaws.brokers.sim.universe import RATE

        row = self.master.row_for_token(exchange_type, token)
        if row is None or row[TYPE] != "OPTIDX" or row[NAME] not in OPTION_UNDERLYINGS:
            return
        parts = contract(row[SYMBOL])
        if parts is None or parts.kind == "FUT":
            return
        spot = self._instrument(*OPTION_UNDERLYINGS[row[NAME]][:2])
        if spot is None:
            return
        worth = price(row[NAME], parts.kind, spot.ltp / PAISE, float(parts.strike), parts.expiry, time.time(), RATE)
        s.ltp = max(s.tick, round(worth * PAISE / s.tick) * s.tick)
        s.high, s.low = max(s.high, s.ltp), min(s.low, s.ltp)

    def _next_packet(self, mode: int, exchange_type: int, token: str) -> Packet | None:
        """A fresh tick of ``token`` in ``mode``, remembered by its sequence number."""
        s = self._instrument(exchange_type, token)
        if s is None:
            return None  # like Angel, unknown tokens are accepted and never tick
        quantity = s.step(self.rng)
        if exchange_type in (wire.NSE_FO, wire.BSE_FO):
            self._reprice(exchange_type, token, s)
        now_ms = int(time.time() * 1000)
        if mode == wire.DEPTH:
            packet = Packet(
                mode,
                exchange_type,
                token,
                exchange_timestamp=now_ms,
                packet_received_time=now_ms + 3,
                depth_buy=tuple(
                    DepthLevel(self.rng.randint(1, 5000), s.ltp - (i + 1) * s.tick, self.rng.randint(1, 40))
                    for i in range(20)
                ),
                depth_sell=tuple(
                    DepthLevel(self.rng.randint(1, 5000), s.ltp + (i + 1) * s.tick, self.rng.randint(1, 40))
                    for i in range(20)
                ),
            )
            self.sent_depth = [*self.sent_depth[-999:], packet]
            return packet
        self._seq += 1
        if mode == wire.LTP:
            packet = Packet(mode, exchange_type, token, self._seq, now_ms, s.ltp)
        else:
            quote = {
                "last_traded_quantity": quantity,
                "avg_traded_price": s.turnover // max(1, s.volume),
                "volume": s.volume,
                "total_buy_quantity": float(self.rng.randint(0, 10**6)),
                "total_sell_quantity": float(self.rng.randint(0, 10**6)),
                "open": s.open,
                "high": s.high,
                "low": s.low,
                "close": s.close,
            }
            if mode == wire.QUOTE:
                packet = Packet(mode, exchange_type, token, self._seq, now_ms, s.ltp, **quote)
            else:
                five = [
                    BestFiveEntry(1, self.rng.randint(1, 900), s.ltp - (i + 1) * s.tick, self.rng.randint(1, 30))
                    for i in range(5)
                ]
                five += [
                    BestFiveEntry(0, self.rng.randint(1, 900), s.ltp + (i + 1) * s.tick, self.rng.randint(1, 30))
                    for i in range(5)
                ]
                packet = Packet(
                    mode,
                    exchange_type,
                    token,
                    self._seq,
                    now_ms,
                    s.ltp,
                    **quote,
                    last_traded_timestamp=now_ms // 1000,
                    open_interest=s.oi,
                    oi_change_percent=round(self.rng.uniform(-5, 5), 4),
                    best_five=tuple(five),
                    upper_circuit=s.close * 11 // 10,
                    lower_circuit=s.close * 9 // 10,
                    week52_high=s.close * 13 // 10,
                    week52_low=s.close * 7 // 10,
                )
        self.sent[self._seq] = packet
        while len(self.sent) > SENT_KEPT:
            self.sent.popitem(last=False)
        return packet

    def packet(self, seq: int) -> Packet:
        """The packet sent with sequence number ``seq``."""
        return self.sent[seq]

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            for conn in list(self.connections):
                if conn.silent:
                    continue
                for key in sorted(conn.subscriptions):
                    packet = self._next_packet(*key)
                    if packet is None:
                        continue
                    try:
                        await conn.ws.send(wire.encode(packet))
                    except ConnectionClosed:
                        break

    # Failures on demand ------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        simulation.spawn(self._tasks, coro)

    def drop_all(self) -> None:
        """Drop every feed connection at the TCP level (no close frame), as a network failure would."""
        for conn in list(self.connections):
            conn.ws.transport.abort()

    def close_all(self, code: int = 1000, reason: str = "") -> None:
        """Close every feed connection with a close frame."""
        for conn in list(self.connections):
            self._spawn(conn.ws.close(code, reason))

    def go_silent(self, silent: bool = True, seconds: float | None = None) -> None:
        """Stop (or resume) ticks and pongs on the connections open now; new connections tick normally.

        With ``seconds``, those connections speak again after that long (if still open).
        """
        for conn in self.connections:
            conn.silent = silent
            if conn.resume is not None:  # the latest call decides when a connection speaks again
                conn.resume.cancel()
                conn.resume = None
            if silent and seconds is not None:
                conn.resume = asyncio.get_running_loop().call_later(seconds, setattr, conn, "silent", False)

    def send_garbage(self, frame: bytes | None = None) -> None:
        """Send a malformed binary frame on every connection (by default a truncated snap quote)."""
        truncated = bytes([wire.SNAP_QUOTE, wire.NSE_CM]) + b"2885".ljust(25, b"\0") + b"\x01" * 40
        junk = frame if frame is not None else truncated
        for conn in list(self.connections):
            self._spawn(conn.ws.send(junk))

    # Control over HTTP (oaws angel-sim) --------------------------------------------------
    control_actions = ("drop", "silent", "garbage", "expire")
    control_help = CONTROL_HELP

    def _control_args(self, action: str, params: dict[str, str], body: bytes) -> float:
        return _control_seconds(action, params, body)

    async def _control(self, action: str, seconds: float) -> dict[str, Any]:
        count = len(self.connections)
        noun = f"{count} feed connection{'' if count == 1 else 's'}"
        if action == "drop":
            self.drop_all()
            message = f"dropped {noun} without a close frame"
        elif action == "silent":
            self.go_silent(seconds=seconds)
            message = f"{noun} silent (no ticks, no pongs) for {seconds:g} s"
        elif action == "garbage":
            self.send_garbage()
            message = f"sent a malformed frame on {noun}"
        else:
            self.expire_tokens()
            message = f"expired every token issued so far and dropped {noun}"
        reply: dict[str, Any] = {"action": action, "connections": count, "message": message}
        if action == "silent":
            reply["seconds"] = seconds
        return reply

    def subscriptions(self) -> set[tuple[int, int, str]]:
        """(mode, exchange type, token) subscribed on all open connections."""
        return {k for c in self.connections for k in c.subscriptions}


def _control_seconds(action: str, params: dict[str, str], body: bytes) -> float:
    """The silence of ``POST /sim/silent?seconds=N`` (the others take no argument)."""
    given = params.get("seconds") if action == "silent" else None
    return simulation.number(given, DEFAULT_SILENCE, 0, MAX_SILENCE)


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _refusal(message: str, code: str) -> dict[str, Any]:
    return {"status": False, "message": message, "errorcode": code, "data": None}


def _error(correlation: str, code: str, message: str) -> str:
    return json.dumps({"correlationID": correlation, "errorCode": code, "errorMessage": message})


def _parse_request(request: Any) -> tuple[int, set[tuple[int, int, str]]] | None:
    """(action, {(mode, exchange type, token)}) of a valid request, else None (E1001)."""
    if not isinstance(request, dict) or request.get("action") not in (wire.SUBSCRIBE, wire.UNSUBSCRIBE):
        return None
    params = request.get("params")
    if not isinstance(params, dict) or params.get("mode") not in wire.MODES:
        return None
    token_list = params.get("tokenList")
    if not isinstance(token_list, list) or not token_list:
        return None
    keys: set[tuple[int, int, str]] = set()
    for entry in token_list:
        if not isinstance(entry, dict) or entry.get("exchangeType") not in wire.EXCHANGE_TYPES:
            return None
        tokens = entry.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t.isdigit() for t in tokens):
            return None
        keys.update((params["mode"], entry["exchangeType"], t) for t in tokens)
    return request["action"], keys


def _handler_class(sim: AngelSimulator) -> type[BaseHTTPRequestHandler]:
    def answer(method: str, url: SplitResult, headers: dict[str, str], body: bytes) -> simulation.Answer:
        status, reply = sim.rest(method, url.path, headers, body)
        return status, simulation.json_bytes(reply), {"Content-Type": "application/json"}

    # the log has no request line: getProfile carries the refresh token in its query string
    return simulation.handler_class("angel-sim", log, sim.control, answer)


async def run(
    host: str = "127.0.0.1",
    rest_port: int = 0,
    feed_port: int = 0,
    tick_interval: float = 0.5,
    on_ready: Any = None,
    order_port: int = 0,
) -> None:
    """Serve the simulator until SIGINT or SIGTERM, or until cancelled (``oaws angel-sim``)."""
    sim = AngelSimulator(
        host=host, rest_port=rest_port, feed_port=feed_port, order_port=order_port, tick_interval=tick_interval
    )
    await simulation.run_until_signal(sim, on_ready)
