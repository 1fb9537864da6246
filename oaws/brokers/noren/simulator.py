"""A local Noren OMS host: the REST API (QuickAuth, OAuth), the symbol masters, the JSON feed.

No machine here reaches Shoonya's or Flattrade's servers, so the adapter and Noren's own
client (``NorenRestApiPy``) are tested against this, and ``oaws sim noren`` serves it to
people who develop offline. One simulator answers as any ``family.HOSTS`` entry: its paths
are that host's (``/NorenWClientTP``, ``/NorenWSTP/`` for Shoonya, ``/PiConnectTP``,
``/PiConnectWSTp/`` for Flattrade), and ``env()`` names that host's ``{PREFIX}_*`` variables.

REST (``http.server`` in a thread, so a blocking ``NorenApi`` in the same process works). A
request's body is the raw string ``jData=<JSON>``, authenticated calls append ``&jKey=<token>``
or carry ``Authorization: Bearer <token>`` (newer Shoonya); the Content-Type is not looked at.
Repeated slashes in a path are one (``NorenApi`` joins ``host + '/'`` with ``'/QuickAuth'``).
Answers are JSON with ``stat`` ``"Ok"`` or ``"Not_Ok"`` and ``emsg``, HTTP 200 as Noren's are:

- ``QuickAuth``: uid, ``pwd`` = sha256(password), ``factor2`` = the TOTP (one 30-s step of slack),
  ``vc``, ``appkey`` = sha256(f"{uid}|{api_secret}"), ``imei``; ``susertoken`` back. Refusals, in
  the order checked: ``Invalid Input : User Blocked Due to Wrong Password Attempts`` (after
  ``block_user()`` or ``MAX_WRONG_PASSWORDS`` wrong passwords in a row), ``Invalid Input : Invalid
  User Id``, ``Invalid Input : Wrong Password``, ``Invalid Input : Invalid Vendor Code``,
  ``Invalid Input : Invalid App Key``, ``Invalid Input : Invalid OTP``.
- ``UserDetails``, ``Logout``, ``SearchScrip``, ``GetQuotes``, ``GetSecurityInfo``, ``PlaceOrder``,
  ``CancelOrder``, ``OrderBook``, ``Limits``: with a valid token, else ``Session Expired :  Invalid Session Key``.
- OAuth: ``GET auth_url?client_id=KEY`` (Shoonya) or ``?app_key=KEY`` (Flattrade), an optional
  ``redirect_uri``: the login page's stand-in approves at once and redirects (302) to the redirect
  URL with ``?code=...`` (Flattrade: ``&client=UID``); by default to the simulator's own
  ``/callback``, which shows the code. Shoonya's ``POST token_url`` with ``jData={"code",
  "checksum": sha256(api_key + api_secret + code)}`` -> ``{"stat":"Ok","access_token"}``;
  Flattrade's with JSON ``{"api_key","request_code","api_secret": sha256(api_key + code +
  api_secret)}`` -> ``{"stat":"Ok","token","client"}``. A code works once, for five minutes.
- ``GET master_url/NSE_symbols.txt.zip`` ... (``symbols``), with Content-Length; as Flattrade, also
  Flattrade's own CSV files (``NSE_Equity.csv``...: names and columns as OpenAlgo reads them).

Feed (``websockets`` on the caller's event loop): the first message must be the connect,
``{"t":"c","uid","actid","susertoken","source"}`` -> ``{"t":"ck","s":"OK","uid"}``, or with an
access token ``{"t":"a","uid","actid","accesstoken"}`` -> ``{"t":"ak","s":"OK","uid"}``. A bad
token gets ``s: "Not_Ok"`` with ``emsg: "Invalid Session Key"`` and the socket is closed;
anything else first closes it at once. Then ``t``/``d`` (touchline/depth) with
``k: "NSE|2885#NSE|1594"``: each scrip acknowledged on its own with a ``tk``/``dk`` snapshot,
later ``tf``/``df`` carrying only the fields that changed since that connection last heard of
the scrip, all values strings; an unknown scrip's acknowledgement holds only ``t``, ``e``,
``tk`` and it never updates. ``u``/``ud`` -> one ``uk``/``udk`` echoing ``k``. ``{"t":"h"}`` ->
``{"t":"h"}`` (protocol pings get pongs). ``{"t":"o","actid"}`` -> ``{"t":"ok"}``, then ``om``
order messages (``push_order()``; ``PlaceOrder`` pushes New then Fill). Other messages after
the connect are ignored and counted in ``ignored``.

Failures on demand, as methods and as ``POST /sim/...`` on the REST port (one line of JSON):
``drop_all`` (``/sim/drop``), ``go_silent`` (``/sim/silent?seconds=N``), ``send_garbage``
(``/sim/garbage``), ``expire_sessions`` (``/sim/expire``), ``rest_fault`` (``/sim/rest-fault?status=
503&count=1``), ``block_user`` (``/sim/block``), ``restart`` (``/sim/restart?seconds=N``), and
``/sim/order`` (a JSON body pushed as an ``om``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import random
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import SplitResult, parse_qs, quote, unquote_plus, urlsplit

import pyotp
from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from oaws.brokers import simulation
from oaws.brokers.noren import symbols
from oaws.brokers.noren.family import HOSTS, NorenHost

log = logging.getLogger(__name__)
# websockets logs frames at DEBUG (the connect carries the session token): keep it out of logs
_ws_log = logging.getLogger("oaws.noren.simulator.websocket")
_ws_log.setLevel(logging.WARNING)

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
CONTROL_PREFIX = simulation.CONTROL_PREFIX
CONTROLS = ("drop", "silent", "garbage", "expire", "rest-fault", "block", "restart", "order")
CONTROL_HELP = "POST /sim/" + ", /sim/".join(CONTROLS)
DEFAULT_SILENCE = 60.0
MAX_SECONDS = 3600.0
#: wrong passwords in a row after which QuickAuth answers "User Blocked"
MAX_WRONG_PASSWORDS = 5
#: seconds an OAuth code can be exchanged
CODE_TTL = 300.0
#: messages kept per connection in ``last_sent``
SENT_KEPT = 5000
#: entries kept in ``requests``, ``rest_requests`` and ``login_failures``
LOG_KEPT = 20_000
#: seconds between PlaceOrder's New and Fill order messages
FILL_DELAY = 0.05
#: the default redirect of the OAuth login page's stand-in (the simulator's own page)
CALLBACK_PATH = "/callback"
#: the other API and feed paths Noren hosts use (OAuth releases: NorenWClientAPI, NorenWSAPI...)
API_PATHS = ("/NorenWClientTP", "/NorenWClientAPI", "/PiConnectTP", "/PiConnectAPI")
FEED_PATHS = ("/NorenWSTP", "/NorenWSAPI", "/PiConnectWSTp", "/PiConnectWSAPI")
#: Shoonya's OAuth login page, as OpenAlgo opens it (the host entry has none)
SHOONYA_AUTH_PATH = "/OAuthlogin/authorize/oauth"

#: base32; pyotp wants at least 112 bits, so the brief's 80-bit JBSWY3DPEHPK3PXP is doubled
DEFAULT_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

SESSION_EXPIRED = "Session Expired :  Invalid Session Key"
BLOCKED = "Invalid Input : User Blocked Due to Wrong Password Attempts"
WRONG_PASSWORD = "Invalid Input : Wrong Password"
INVALID_OTP = "Invalid Input : Invalid OTP"
INVALID_APP_KEY = "Invalid Input : Invalid App Key"
INVALID_VENDOR = "Invalid Input : Invalid Vendor Code"
INVALID_USER = "Invalid Input : Invalid User Id"
INVALID_CODE = "Invalid Input : Invalid Code"
INVALID_CHECKSUM = "Invalid Input : Invalid Checksum"
FEED_REFUSED = "Invalid Session Key"

#: the fields of a touchline (``tk``/``tf``) and a depth (``dk``/``df``) message, besides t, e, tk
TOUCHLINE_FIELDS = (
    "ts", "pp", "ls", "ti", "lp", "pc", "v", "o", "h", "l", "c", "ap", "ltq", "ltt", "ft",
    "oi", "poi", "toi", "bq1", "bp1", "sq1", "sp1",
)  # fmt: skip
DEPTH_FIELDS = (
    *TOUCHLINE_FIELDS[:18], "tbq", "tsq", "uc", "lc", "52h", "52l",
    *(f"{side}{i}" for i in range(1, 6) for side in ("bp", "sp", "bq", "sq", "bo", "so")),
)  # fmt: skip
#: only derivatives carry open interest (today's, the previous day's, the underlying's total)
OI_FIELDS = ("oi", "poi", "toi")
#: an index carries no volume, depth or open interest
INDEX_FIELDS = ("ts", "pp", "ls", "ti", "lp", "pc", "o", "h", "l", "c", "ft")
#: what ``send_garbage()`` sends by default, one frame each: not JSON, no t, an unknown t, wrong types
GARBAGE = (
    "this is not JSON {",
    '{"e":"NSE","tk":"2885","lp":"1.00"}',
    '{"t":"zz","e":"NSE","tk":"2885"}',
    '{"t":"tf","e":"NSE","tk":2885,"lp":["x"],"v":null}',
    "[1, 2, 3]",
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _now_epoch() -> int:
    return int(time.time())


@dataclass
class _Market:
    """The simulated market of one scrip, prices in units of 1/10**precision rupees."""

    scrip: symbols.Scrip
    rng: random.Random
    tick: int = 0
    lp: int = 0
    o: int = 0
    h: int = 0
    low: int = 0
    c: int = 0
    ap: int = 0
    v: int = 0
    ltq: int = 0
    ltt: int = 0
    oi: int = 0
    poi: int = 0
    toi: int = 0
    tbq: int = 0
    tsq: int = 0
    bids: list[list[int]] = field(default_factory=list)  # [price, quantity, orders]
    asks: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        unit = 10**self.scrip.precision
        self.tick = max(1, round(float(self.scrip.tick_size) * unit))
        base = round(self.scrip.price * unit) // self.tick * self.tick
        self.c = max(self.tick, base + self.rng.randint(-30, 30) * self.tick)
        self.lp = self.o = self.h = self.low = self.ap = max(self.tick, base)
        self.ltt = _now_epoch()
        if not self.scrip.is_index:
            self.v = self.rng.randint(10_000, 500_000)
            self.ltq = self.rng.randint(1, 50) * self.scrip.lot_size
        if self.scrip.is_derivative:
            self.oi = self.poi = self.rng.randint(10_000, 900_000) * self.scrip.lot_size
            self.toi = self.oi * 3
        self._rebook()
        self.tbq = sum(b[1] for b in self.bids) + self.rng.randint(10_000, 200_000)
        self.tsq = sum(a[1] for a in self.asks) + self.rng.randint(10_000, 200_000)

    def _level(self) -> list[int]:
        return [0, self.rng.randint(1, 400) * self.scrip.lot_size, self.rng.randint(1, 30)]

    def _rebook(self) -> None:
        """Price the five levels each side around the last price, keeping sizes where they are."""
        while len(self.bids) < 5:
            self.bids.append(self._level())
            self.asks.append(self._level())
        for i in range(5):
            self.bids[i][0] = max(self.tick, self.lp - (i + 1) * self.tick)
            self.asks[i][0] = self.lp + (i + 1) * self.tick

    def step(self) -> str:
        """Move the market by one event; which one ('trade', 'volume', 'depth', 'oi') is returned."""
        r = self.rng.random()
        if self.scrip.is_index or r < 0.45:
            kind = "trade"
        elif r < 0.6:
            kind = "volume"
        elif r < 0.9 or not self.scrip.is_derivative:
            kind = "depth"
        else:
            kind = "oi"
        if kind == "trade":
            self.lp = max(self.tick, self.lp + self.rng.choice((-2, -1, -1, 0, 1, 1, 2)) * self.tick)
            self.h, self.low = max(self.h, self.lp), min(self.low, self.lp)
            self.ltt = _now_epoch()
            if not self.scrip.is_index:
                self.ltq = self.rng.randint(1, 50) * self.scrip.lot_size
                self.ap = (self.ap * self.v + self.lp * self.ltq) // (self.v + self.ltq)
                self.v += self.ltq
                self._rebook()
        elif kind == "volume":  # a trade at the last price and quantity, in the same second
            self.v += self.ltq
        elif kind == "depth":
            side, totals = (self.bids, "tbq") if self.rng.random() < 0.5 else (self.asks, "tsq")
            level = side[self.rng.randrange(5)]
            change = self.rng.randint(1, 60) * self.scrip.lot_size * self.rng.choice((-1, 1))
            change = max(change, self.scrip.lot_size - level[1])
            level[1] += change
            level[2] = max(1, level[2] + self.rng.choice((-1, 1)))
            setattr(self, totals, max(0, getattr(self, totals) + change))
        else:
            self.oi = max(0, self.oi + self.rng.randint(-20, 30) * self.scrip.lot_size)
        return kind

    def _price(self, value: int) -> str:
        p = self.scrip.precision
        return f"{value / 10**p:.{p}f}"

    def values(self) -> dict[str, str]:
        """Every field the simulator means for this scrip now, as Noren spells it: all strings."""
        s = self.scrip
        price = self._price
        out = {
            "ts": s.trading_symbol,
            "pp": str(s.precision),
            "ls": str(s.lot_size),
            "ti": s.tick_size,
            "lp": price(self.lp),
            "pc": f"{(self.lp - self.c) * 100 / self.c:.2f}".replace("-0.00", "0.00"),
            "v": str(self.v),
            "o": price(self.o),
            "h": price(self.h),
            "l": price(self.low),
            "c": price(self.c),
            "ap": price(self.ap),
            "ltq": str(self.ltq),
            "ltt": dt.datetime.fromtimestamp(self.ltt, IST).strftime("%H:%M:%S"),
            "ft": str(self.ltt),
            "oi": str(self.oi),
            "poi": str(self.poi),
            "toi": str(self.toi),
            "tbq": str(self.tbq),
            "tsq": str(self.tsq),
            "uc": price(self.c * 12 // 10 // self.tick * self.tick),
            "lc": price(self.c * 8 // 10 // self.tick * self.tick),
            "52h": price(self.c * 13 // 10 // self.tick * self.tick),
            "52l": price(self.c * 7 // 10 // self.tick * self.tick),
        }
        for i in range(5):
            bid, ask = self.bids[i], self.asks[i]
            out[f"bp{i + 1}"], out[f"bq{i + 1}"], out[f"bo{i + 1}"] = price(bid[0]), str(bid[1]), str(bid[2])
            out[f"sp{i + 1}"], out[f"sq{i + 1}"], out[f"so{i + 1}"] = price(ask[0]), str(ask[1]), str(ask[2])
        if s.is_index:
            return {k: out[k] for k in INDEX_FIELDS}
        if not s.is_derivative:
            for name in OI_FIELDS:
                del out[name]
        return out

    def fields(self, feed: str) -> tuple[str, ...]:
        if self.scrip.is_index:
            return INDEX_FIELDS
        fields = DEPTH_FIELDS if feed == "d" else TOUCHLINE_FIELDS
        return fields if self.scrip.is_derivative else tuple(f for f in fields if f not in OI_FIELDS)


@dataclass(eq=False)
class SimConnection:
    """One feed connection as the simulator sees it."""

    number: int
    ws: ServerConnection
    #: set by the connect: "c" (a susertoken) or "a" (an access token)
    connected: str = ""
    token: str = ""
    #: (feed "t" or "d", exchange, token) -> what this connection was last told of the scrip
    views: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    orders: bool = False
    silent: bool = False
    resume: asyncio.TimerHandle | None = None
    sent: deque[Any] = field(default_factory=lambda: deque(maxlen=SENT_KEPT))


class NorenSimulator(simulation.Simulator):
    """A Noren OMS host on 127.0.0.1; ``await start()`` or ``async with``."""

    def __init__(
        self,
        host: NorenHost = HOSTS["shoonya"],
        *,
        bind: str = "127.0.0.1",
        rest_port: int = 0,
        feed_port: int = 0,
        user_id: str = "FA12345",
        password: str = "sim-password",
        totp_secret: str = DEFAULT_TOTP_SECRET,
        vendor_code: str = "FA12345_U",
        api_secret: str = "sim-api-secret",
        api_key: str = "sim-app-key",
        tick_interval: float = 0.5,
        seed: int | None = 0,
        redirect_url: str | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.host = host
        self.bind, self._rest_port, self._feed_port = bind, rest_port, feed_port
        self.user_id, self.password, self.totp_secret = user_id, password, totp_secret
        self.vendor_code, self.api_secret, self.api_key = vendor_code, api_secret, api_key
        self.tick_interval = tick_interval
        self.rng = random.Random(seed)
        #: where the OAuth login page's stand-in redirects without ``redirect_uri`` (default: /callback)
        self.redirect_url = redirect_url
        self.scrips = list(symbols.scrips(today))
        self._by_key = {(s.exchange, s.token): s for s in self.scrips}
        self._masters = symbols.master_files(self.scrips)
        #: Flattrade's own CSV files, served beside Noren's zips when answering as Flattrade
        self._csvs = symbols.flattrade_files(self.scrips) if host.name == "flattrade" else {}
        self._api_path = urlsplit(host.api_url).path.rstrip("/")
        self._feed_path = urlsplit(host.feed_url).path.rstrip("/")
        self._master_path = urlsplit(host.master_url).path.rstrip("/")
        self._token_path = urlsplit(host.token_url).path.rstrip("/") if host.token_url else "/NorenWClientAPI/GenAcsTok"
        self._auth_path = urlsplit(host.auth_url).path if host.auth_url else SHOONYA_AUTH_PATH
        self._oauth_style = "flattrade" if host.token_url and "apitoken" in host.token_url else "shoonya"
        self._lock = threading.RLock()  # the REST thread and the event loop share tokens and markets
        self._sessions: dict[str, str] = {}  # token -> "session" (QuickAuth) or "access" (OAuth)
        self._codes: dict[str, float] = {}  # OAuth code -> when it stops working
        self._market: dict[tuple[str, str], _Market] = {}
        self.connections: list[SimConnection] = []
        #: every connection's messages sent (decoded), by connection number, the last SENT_KEPT each
        self.last_sent: dict[int, deque[Any]] = {}
        self.handshakes = 0
        self.logins = 0
        #: what happened, for tests (the last LOG_KEPT of each: ``oaws sim`` may run for days)
        self.login_failures: deque[str] = deque(maxlen=LOG_KEPT)
        self.rest_requests: deque[str] = deque(maxlen=LOG_KEPT)
        #: the REST calls' jData (with "route"; pwd and appkey left out) and the feed's messages, decoded
        self.requests: deque[Any] = deque(maxlen=LOG_KEPT)
        self.ignored = 0
        self.controls: list[str] = []
        self.orders: dict[str, dict[str, str]] = {}
        self._order_ids = 0
        self.blocked = False
        self._wrong_passwords = 0
        self._rest_faults: list[int] = []
        self._down_until = 0.0
        #: when true the market stands still (tests compare what a client merged with ``state()``)
        self.frozen = False
        self._httpd: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._numbers = 0

    def __repr__(self) -> str:  # no secrets
        return f"NorenSimulator({self.host.name!r}, user_id={self.user_id!r})"

    # Lifecycle -------------------------------------------------------------------------
    async def start(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._httpd = simulation.rest_server(self.bind, self._rest_port, _handler_class(self))
        try:
            self._server = await simulation.serve_ws(
                self._serve_feed, self.bind, self._feed_port, process_request=self._handshake, logger=_ws_log
            )
        except OSError as exc:
            self._httpd.server_close()
            if exc.errno is None:
                raise
            raise simulation.os_error(exc) from None
        except BaseException:
            self._httpd.server_close()
            raise
        self._http_thread = simulation.serve_in_thread(self._httpd, "noren-sim-rest")
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
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await simulation.stop_rest(self._httpd)

    # Addresses -------------------------------------------------------------------------
    @property
    def root_url(self) -> str:
        return f"http://{self.bind}:{self.rest_port}"

    @property
    def api_url(self) -> str:
        return f"{self.root_url}{self._api_path}"

    @property
    def feed_url(self) -> str:
        return f"ws://{self.bind}:{self.feed_port}{self._feed_path}/"

    @property
    def master_url(self) -> str:
        return f"{self.root_url}{self._master_path}"

    @property
    def auth_url(self) -> str:
        return f"{self.root_url}{self._auth_path}"

    @property
    def token_url(self) -> str:
        return f"{self.root_url}{self._token_path}"

    @property
    def control_url(self) -> str:
        return f"{self.root_url}/sim"

    def env(self) -> dict[str, str]:
        """The ``{PREFIX}_*`` variables that point oaws at this simulator as ``host``."""
        p = self.host.prefix
        return {
            f"{p}_USER_ID": self.user_id,
            f"{p}_PASSWORD": self.password,
            f"{p}_TOTP_SECRET": self.totp_secret,
            f"{p}_VENDOR_CODE": self.vendor_code,
            f"{p}_API_SECRET": self.api_secret,
            f"{p}_API_KEY": self.api_key,
            f"{p}_API_URL": self.api_url,
            f"{p}_FEED_URL": self.feed_url,
            f"{p}_MASTER_URL": self.master_url,
            f"{p}_AUTH_URL": self.auth_url,
            f"{p}_TOKEN_URL": self.token_url,
        }

    def masters(self) -> dict[str, bytes]:
        """Noren's symbol masters served at ``master_url``: file name -> the zip's bytes."""
        return dict(self._masters)

    def flattrade_csvs(self) -> dict[str, bytes]:
        """As Flattrade, its own CSV masters also served at ``master_url`` (else none): file name -> bytes."""
        return dict(self._csvs)

    # Sessions --------------------------------------------------------------------------
    @property
    def session_tokens(self) -> set[str]:
        """Every token valid now: QuickAuth's susertokens and OAuth access tokens."""
        with self._lock:
            return set(self._sessions)

    @property
    def access_tokens(self) -> set[str]:
        """The OAuth access tokens valid now."""
        with self._lock:
            return {t for t, kind in self._sessions.items() if kind == "access"}

    def _issue(self, kind: str) -> str:
        token = secrets.token_hex(32)
        with self._lock:
            self._sessions[token] = kind
        return token

    def issue_access_token(self) -> str:
        """A valid OAuth access token, as if the user had logged in through the browser."""
        return self._issue("access")

    def issue_oauth_code(self) -> str:
        """A code the token URL exchanges once, as the login page's redirect would carry."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = time.monotonic() + CODE_TTL
        return code

    def _valid(self, token: str) -> bool:
        with self._lock:
            return bool(token) and token in self._sessions

    def expire_sessions(self, drop: bool = True) -> None:
        """Every token issued so far stops working (REST: Session Expired; the feed refuses the connect)."""
        with self._lock:
            self._sessions.clear()
            self._codes.clear()
        if drop:
            self.drop_all()

    def block_user(self, blocked: bool = True) -> None:
        """The next logins are refused as a blocked account's are (or no longer, with False)."""
        with self._lock:
            self.blocked = blocked
            self._wrong_passwords = 0

    def rest_fault(self, status: int = 503, count: int = 1) -> None:
        """The next ``count`` REST requests (masters included) answer HTTP ``status`` with an HTML page."""
        with self._lock:
            self._rest_faults.extend([status] * count)

    # REST ------------------------------------------------------------------------------
    def rest(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict]:
        """One REST request -> (status, JSON or bytes, extra headers). Called from the HTTP thread."""
        path = re.sub("/+", "/", path)
        self.rest_requests.append(f"{method} {path}")
        with self._lock:
            if time.monotonic() < self._down_until:
                return 503, b"<html><body>503 Service Temporarily Unavailable</body></html>", {}
            if self._rest_faults:
                status = self._rest_faults.pop(0)
                return status, f"<html><body>{status} simulated failure</body></html>".encode(), {}
        if method == "GET":
            name = path.removeprefix(self._master_path + "/") if self._master_path else path.lstrip("/")
            if name in self._masters:
                return 200, self._masters[name], {"Content-Type": "application/zip"}
            if name in self._csvs:
                return 200, self._csvs[name], {"Content-Type": "text/csv"}
            if path == self._auth_path or (path == SHOONYA_AUTH_PATH):
                return self._login_page(query)
            if path == CALLBACK_PATH:
                code = parse_qs(query).get("code", [""])[-1]
                return 200, f"Logged in; the code is {code}\n".encode(), {"Content-Type": "text/plain"}
            return 404, b"<html><body>404 Not Found</body></html>", {}
        if method != "POST":
            return 405, {"stat": "Not_Ok", "emsg": "Method Not Allowed"}, {}
        if path == self._token_path or path in ("/NorenWClientAPI/GenAcsTok", "/trade/apitoken"):
            return (*self._exchange_code(path, body), {})
        prefix, _, route = path.rpartition("/")
        if prefix not in (self._api_path, *API_PATHS):
            return 404, {"stat": "Not_Ok", "emsg": f"no such route {path}"}, {}
        data, jkey = _parse_body(body)
        if data is None:
            return 200, {"stat": "Not_Ok", "emsg": "Invalid Input : jData is Missing."}, {}
        self.requests.append({"route": route, **{k: v for k, v in data.items() if k not in ("pwd", "appkey")}})
        if route == "QuickAuth":
            return 200, self._quick_auth(data), {}
        token = jkey or headers.get("authorization", "").removeprefix("Bearer ").strip()
        handler = getattr(self, f"_r_{route}", None)
        if handler is None:
            return 404, {"stat": "Not_Ok", "emsg": f"Invalid Input : no such route {route}"}, {}
        if not self._valid(token):
            return 200, {"stat": "Not_Ok", "emsg": SESSION_EXPIRED}, {}
        return 200, handler(data, token), {}

    def _stamp(self) -> str:
        return dt.datetime.now(IST).strftime("%H:%M:%S %d-%m-%Y")

    def _quick_auth(self, data: dict[str, Any]) -> dict[str, Any]:
        def refuse(message: str) -> dict[str, Any]:
            self.login_failures.append(message)
            return {"request_time": self._stamp(), "stat": "Not_Ok", "emsg": message}

        with self._lock:
            if self.blocked:
                return refuse(BLOCKED)
            if data.get("uid") != self.user_id:
                return refuse(INVALID_USER)
            if data.get("pwd") != sha256(self.password):
                self._wrong_passwords += 1
                if self._wrong_passwords >= MAX_WRONG_PASSWORDS:
                    self.blocked = True
                return refuse(WRONG_PASSWORD)
            self._wrong_passwords = 0
        if data.get("vc") != self.vendor_code:
            return refuse(INVALID_VENDOR)
        if data.get("appkey") != sha256(f"{self.user_id}|{self.api_secret}"):
            return refuse(INVALID_APP_KEY)
        if not pyotp.TOTP(self.totp_secret).verify(str(data.get("factor2", "")), valid_window=1):
            return refuse(INVALID_OTP)
        self.logins += 1
        return {
            "request_time": self._stamp(),
            "actid": self.user_id,
            "uname": "SIMULATED USER",
            "stat": "Ok",
            "susertoken": self._issue("session"),
            "email": "sim@example.invalid",
            "uid": self.user_id,
            "brnchid": "HO",
            "lastaccesstime": str(_now_epoch()),
            "exarr": list(symbols.EXCHANGES),
            "prarr": _PRODUCTS,
            "brkname": self.host.title,
            "values": [],
        }

    def _login_page(self, query: str) -> tuple[int, Any, dict]:
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        client = params.get("client_id") or params.get("app_key") or ""
        if client != self.api_key:
            return 400, b"<html><body>Invalid client id</body></html>", {}
        if self.blocked:
            return 403, f"<html><body>{BLOCKED}</body></html>".encode(), {}
        code = self.issue_oauth_code()
        target = params.get("redirect_uri") or params.get("redirect_url") or self.redirect_url
        target = target or f"{self.root_url}{CALLBACK_PATH}"
        location = f"{target}{'&' if '?' in target else '?'}code={quote(code)}"
        if self._oauth_style == "flattrade":
            location += f"&client={quote(self.user_id)}"
        return 302, b"", {"Location": location, "Content-Type": "text/html"}

    def _take_code(self, code: str) -> bool:
        with self._lock:
            until = self._codes.pop(code, None)
        return until is not None and until > time.monotonic()

    def _exchange_code(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if path.endswith("/apitoken"):  # Flattrade: a JSON body
            request = _json(body)
            code = str(request.get("request_code", ""))
            if request.get("api_key") != self.api_key:
                return 200, {"stat": "Not_Ok", "emsg": INVALID_APP_KEY}
            if request.get("api_secret") != sha256(f"{self.api_key}{code}{self.api_secret}"):
                return 200, {"stat": "Not_Ok", "emsg": INVALID_CHECKSUM}
            if not self._take_code(code):
                return 200, {"stat": "Not_Ok", "emsg": INVALID_CODE}
            return 200, {"stat": "Ok", "token": self._issue("access"), "client": self.user_id, "emsg": ""}
        data, _ = _parse_body(body)
        if data is None:
            return 200, {"stat": "Not_Ok", "emsg": "Invalid Input : jData is Missing."}
        code = str(data.get("code", ""))
        if data.get("checksum") != sha256(f"{self.api_key}{self.api_secret}{code}"):
            return 200, {"stat": "Not_Ok", "emsg": INVALID_CHECKSUM}
        if not self._take_code(code):
            return 200, {"stat": "Not_Ok", "emsg": INVALID_CODE}
        return 200, {"stat": "Ok", "access_token": self._issue("access"), "uid": self.user_id, "actid": self.user_id}

    def _r_UserDetails(self, data: dict[str, Any], token: str) -> dict[str, Any]:
        return {
            "request_time": self._stamp(),
            "prarr": _PRODUCTS,
            "exarr": list(symbols.EXCHANGES),
            "orarr": ["MKT", "LMT", "SL-LMT", "SL-MKT"],
            "brkname": self.host.title,
            "brnchid": "HO",
            "email": "sim@example.invalid",
            "actid": self.user_id,
            "uid": self.user_id,
            "uname": "SIMULATED USER",
            "uprev": "INVESTOR",
            "stat": "Ok",
        }

    def _r_Limits(self, data: dict[str, Any], token: str) -> dict[str, Any]:
        return {"request_time": self._stamp(), "stat": "Ok", "actid": self.user_id, "prfname": "SIM",
                "cash": "100000.00", "payin": "0.00", "payout": "0.00", "marginused": "0.00"}  # fmt: skip

    def _r_Logout(self, data: dict[str, Any], token: str) -> dict[str, Any]:
        with self._lock:
            self._sessions.pop(token, None)
        return {"request_time": self._stamp(), "stat": "Ok"}

    def _scrip_of(self, data: dict[str, Any]) -> symbols.Scrip | None:
        return self._by_key.get((str(data.get("exch", "")), str(data.get("token", ""))))

    def _r_SearchScrip(self, data: dict[str, Any], token: str) -> dict[str, Any]:
        text = unquote_plus(str(data.get("stext", ""))).upper()
        exchange = str(data.get("exch", ""))
        found = [
            {
                "exch": s.exchange,
                "token": s.token,
                "tsym": s.trading_symbol,
                "cname": s.symbol,
                "instname": s.instrument,
                "pp": str(s.precision),
                "ls": str(s.lot_size),
                "ti": s.tick_size,
            }
            for s in self.scrips
            if (not exchange or s.exchange == exchange) and text and text in s.trading_symbol.upper()
        ]
        if not found:
            return {"stat": "Not_Ok", "emsg": "no data"}
        return {"stat": "Ok", "values": found}

    def _security(self, s: symbols.Scrip) -> dict[str, str]:
        return {
            "exch": s.exchange,
            "tsym": s.trading_symbol,
            "cname": s.symbol,
            "symname": s.symbol,
            "instname": s.instrument,
            "pp": str(s.precision),
            "ls": str(s.lot_size),
            "ti": s.tick_size,
            "token": s.token,
            **({"exd": s.expiry, "optt": s.option_type, "strprc": s.strike} if s.expiry else {}),
        }

    def _r_GetSecurityInfo(self, data: dict[str, Any], token: str) -> dict[str, Any]:
        s = self._scrip_of(data)
        if s is None:
            return {"stat": "Not_Ok", "emsg": 'Error Occurred : 5 "no data"'}
        return {"request_time": self._stamp(), "stat": "Ok", **self._security(s)}

    def _r_GetQuotes(self, data: dict[str, Any], token: str) -> dict[str, Any]:
        s = self._scrip_of(data)
        if s is None:
            return {"stat": "Not_Ok", "emsg": 'Error Occurred : 5 "no data"'}
        values = self.state(s.exchange, s.token)
        for name in ("e", "tk", "ts", "pp", "ls", "ti", "ft", "pc"):
            values.pop(name, None)
        return {"request_time": self._stamp(), "stat": "Ok", **self._security(s), **values}

    def _r_PlaceOrder(self, data: dict[str, Any], token: str) -> dict[str, Any]:
        tsym = unquote_plus(str(data.get("tsym", "")))
        exchange = str(data.get("exch", ""))
        scrip = next((s for s in self.scrips if s.exchange == exchange and s.trading_symbol == tsym), None)
        try:
            quantity = int(str(data.get("qty", "0")))
        except ValueError:
            quantity = 0
        if scrip is None or quantity <= 0 or data.get("trantype") not in ("B", "S"):
            return {"request_time": self._stamp(), "stat": "Not_Ok", "emsg": "Invalid Input : Invalid order"}
        with self._lock:
            self._order_ids += 1
            number = f"26120{self._order_ids:010d}"
        order = {
            "norenordno": number,
            "uid": self.user_id,
            "actid": self.user_id,
            "exch": exchange,
            "tsym": tsym,
            "trantype": str(data["trantype"]),
            "prctyp": str(data.get("prctyp", "MKT")),
            "pcode": str(data.get("prd", "I")),
            "ret": str(data.get("ret", "DAY")),
            "qty": str(quantity),
            "prc": str(data.get("prc", "0")),
        }
        if data.get("trgprc") not in (None, "", "None", "0", "0.0"):
            order["trgprc"] = str(data["trgprc"])
        self.orders[number] = order
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._spawn, self._fill(order, scrip))
        return {"request_time": self._stamp(), "stat": "Ok", "norenordno": number}

    async def _fill(self, order: dict[str, str], scrip: symbols.Scrip) -> None:
        await self.push_order({**order, "status": "OPEN", "reporttype": "New", "fillshares": "0"})
        await asyncio.sleep(FILL_DELAY)
        price = order["prc"] if float(order["prc"] or 0) else self.state(scrip.exchange, scrip.token)["lp"]
        await self.push_order(
            {**order, "status": "COMPLETE", "reporttype": "Fill", "fillshares": order["qty"], "avgprc": price,
             "flqty": order["qty"], "flprc": price, "exchordid": f"1100000{order['norenordno'][-8:]}"}
        )  # fmt: skip

    def _r_OrderBook(self, data: dict[str, Any], token: str) -> Any:
        if not self.orders:
            return {"stat": "Not_Ok", "emsg": "no data"}
        return [{"stat": "Ok", **o} for o in self.orders.values()]

    def _r_CancelOrder(self, data: dict[str, Any], token: str) -> dict[str, Any]:
        number = str(data.get("norenordno", ""))
        order = self.orders.get(number)
        if order is None:
            return {"stat": "Not_Ok", "emsg": "Invalid Input : Invalid Order Number"}
        assert self._loop is not None
        message = {**order, "status": "CANCELED", "reporttype": "Canceled"}
        self._loop.call_soon_threadsafe(self._spawn, self.push_order(message))
        return {"request_time": self._stamp(), "stat": "Ok", "result": number}

    # Market --------------------------------------------------------------------------
    def _market_of(self, exchange: str, token: str) -> _Market | None:
        with self._lock:
            market = self._market.get((exchange, token))
            if market is None:
                scrip = self._by_key.get((exchange, token))
                if scrip is None:
                    return None
                market = self._market[(exchange, token)] = _Market(scrip, self.rng)
            return market

    def state(self, exchange: str, token: str) -> dict[str, str]:
        """Every field of the scrip as the simulator means it now (``e``, ``tk`` included), all strings.

        A touchline subscriber that merges ``tk`` and the ``tf`` updates holds these values for
        ``TOUCHLINE_FIELDS`` (an index: ``INDEX_FIELDS``); a depth subscriber for ``DEPTH_FIELDS``.
        """
        market = self._market_of(exchange, token)
        if market is None:
            raise KeyError(f"no scrip {exchange}|{token} in the simulator's masters")
        with self._lock:
            return {"e": exchange, "tk": token, **market.values()}

    def fields(self, feed: str, exchange: str, token: str) -> tuple[str, ...]:
        """The fields a ``feed`` ("t" or "d") subscriber of the scrip hears of, besides t, e and tk."""
        market = self._market_of(exchange, token)
        return market.fields(feed) if market is not None else ()

    def subscriptions(self) -> set[tuple[str, str, str]]:
        """(feed "t" or "d", exchange, token) subscribed on the open connections."""
        return {k for c in self.connections for k in c.views}

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            if not self.frozen:
                await self.tick()

    async def tick(self) -> None:
        """One round now, also while ``frozen``: each subscribed scrip moves once, its subscribers hear what changed."""
        keys = {(e, tk) for c in self.connections for (_, e, tk) in c.views}
        with self._lock:
            for key in sorted(keys):
                market = self._market.get(key)
                if market is not None:
                    market.step()
        for conn in list(self.connections):
            if conn.silent:
                continue
            for key in list(conn.views):
                update = self._update(conn, key)
                if update is not None and not await self._send(conn, update):
                    break

    def _snapshot(self, conn: SimConnection, key: tuple[str, str, str]) -> dict[str, str]:
        feed, exchange, token = key
        market = self._market_of(exchange, token)
        ack = {"t": f"{feed}k", "e": exchange, "tk": token}
        if market is None:
            conn.views[key] = {}
            return ack
        with self._lock:
            values = market.values()
        view = {k: values[k] for k in market.fields(feed)}
        conn.views[key] = view
        return {**ack, **view}

    def _update(self, conn: SimConnection, key: tuple[str, str, str]) -> dict[str, str] | None:
        """The fields of the scrip that changed since ``conn`` last heard of it, or None."""
        feed, exchange, token = key
        market = self._market.get((exchange, token))
        view = conn.views.get(key)
        if market is None or not view:
            return None
        with self._lock:
            values = market.values()
        changed = {k: values[k] for k in market.fields(feed) if view.get(k) != values[k]}
        if not changed:
            return None
        view.update(changed)
        return {"t": f"{feed}f", "e": exchange, "tk": token, **changed}

    # Feed ----------------------------------------------------------------------------
    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        path = urlsplit(request.path).path.rstrip("/")
        if time.monotonic() < self._down_until:
            return connection.respond(503, "Service Temporarily Unavailable\n")
        if path not in (self._feed_path, *FEED_PATHS):
            return connection.respond(404, "Not Found\n")
        return None

    async def _send(self, conn: SimConnection, message: Any) -> bool:
        text = message if isinstance(message, str) else json.dumps(message)
        conn.sent.append(message)
        try:
            await conn.ws.send(text)
        except ConnectionClosed:
            return False
        return True

    async def _serve_feed(self, ws: ServerConnection) -> None:
        self._numbers += 1
        conn = SimConnection(self._numbers, ws)
        self.last_sent[conn.number] = conn.sent
        while len(self.last_sent) > 50:
            del self.last_sent[next(iter(self.last_sent))]
        self.connections.append(conn)
        try:
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    message = None
                self.requests.append(message)
                if not conn.connected:
                    if not await self._connect(conn, message):
                        return
                    continue
                await self._request(conn, message)
        except ConnectionClosed:
            pass
        finally:
            if conn.resume is not None:
                conn.resume.cancel()
            self.connections.remove(conn)

    async def _connect(self, conn: SimConnection, message: Any) -> bool:
        """The first message: the connect, else the socket is closed. True when the session is good."""
        kind = message.get("t") if isinstance(message, dict) else None
        if kind not in ("c", "a"):
            await conn.ws.close(1008, "connect first")
            return False
        token = str(message.get("susertoken" if kind == "c" else "accesstoken") or "")
        ack = "ck" if kind == "c" else "ak"
        if message.get("uid") != self.user_id or not self._valid(token):
            await self._send(conn, {"t": ack, "s": "Not_Ok", "emsg": FEED_REFUSED})
            await conn.ws.close(1000, FEED_REFUSED)
            return False
        conn.connected, conn.token = kind, token
        await self._send(conn, {"t": ack, "s": "OK", "uid": self.user_id})
        return True

    async def _request(self, conn: SimConnection, message: Any) -> None:
        kind = message.get("t") if isinstance(message, dict) else None
        if kind in ("t", "d") and isinstance(message.get("k"), str):
            for key in _keys(kind, message["k"]):
                if not await self._send(conn, self._snapshot(conn, key)):
                    return
        elif kind in ("u", "ud") and isinstance(message.get("k"), str):
            feed = "t" if kind == "u" else "d"
            for key in _keys(feed, message["k"]):
                conn.views.pop(key, None)
            await self._send(conn, {"t": f"{kind}k", "k": message["k"]})
        elif kind == "h":
            if not conn.silent:
                await self._send(conn, {"t": "h"})
        elif kind == "o":
            conn.orders = True
            await self._send(conn, {"t": "ok"})
        elif kind == "uo":
            conn.orders = False
            await self._send(conn, {"t": "uok"})
        else:
            self.ignored += 1

    async def push_order(self, order: dict[str, Any]) -> None:
        """Send ``order`` as an ``om`` message (values as strings) on every order-subscribed connection."""
        message = {"t": "om", "uid": self.user_id, "actid": self.user_id, "norentm": self._norentm()}
        message.update({k: str(v) for k, v in order.items() if k != "t"})
        for conn in list(self.connections):
            if conn.orders:
                await self._send(conn, message)

    def _norentm(self) -> str:
        return dt.datetime.now(IST).strftime("%H:%M:%S %d-%m-%Y")

    # Failures on demand --------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        simulation.spawn(self._tasks, coro)

    def drop_all(self) -> None:
        """Drop every feed connection at the TCP level (no close frame), as a network failure would."""
        for conn in list(self.connections):
            if conn.ws.transport is not None:
                conn.ws.transport.abort()

    def go_silent(self, seconds: float | None = DEFAULT_SILENCE, silent: bool = True) -> None:
        """The connections open now send nothing (no updates, no heartbeat answers, no pongs) for ``seconds``.

        Their sockets stop being read, so protocol pings go unanswered too; None: until told otherwise.
        """
        for conn in self.connections:
            if conn.resume is not None:
                conn.resume.cancel()
                conn.resume = None
            self._set_silent(conn, silent)
            if silent and seconds is not None:
                conn.resume = asyncio.get_running_loop().call_later(seconds, self._set_silent, conn, False)

    @staticmethod
    def _set_silent(conn: SimConnection, silent: bool) -> None:
        conn.silent = silent
        transport = conn.ws.transport
        if transport is None or transport.is_closing():
            return
        with contextlib.suppress(RuntimeError, AttributeError):
            (transport.pause_reading if silent else transport.resume_reading)()

    def send_garbage(self, text: str | None = None) -> int:
        """Send ``text`` (by default each of ``GARBAGE``) on every connected feed connection; frames per connection."""
        frames = (text,) if text is not None else GARBAGE
        for conn in list(self.connections):
            if conn.connected:
                for frame in frames:
                    self._spawn(self._send(conn, frame))
        return len(frames)

    def restart(self, seconds: float = 5.0) -> None:
        """A server restart: close every feed connection, refuse REST and feed for ``seconds``."""
        with self._lock:
            self._down_until = time.monotonic() + seconds
        for conn in list(self.connections):
            self._spawn(conn.ws.close(1012, "service restart"))

    # Control over HTTP (oaws sim noren) ------------------------------------------------
    control_actions = CONTROLS
    control_help = CONTROL_HELP

    def _control_args(self, action: str, params: dict[str, str], body: bytes) -> dict[str, Any]:
        return _control_args(action, params, body)

    async def _control(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        count = len(self.connections)
        noun = f"{count} feed connection{'' if count == 1 else 's'}"
        if action == "drop":
            self.drop_all()
            message = f"dropped {noun} without a close frame"
        elif action == "silent":
            self.go_silent(args["seconds"])
            message = f"{noun} silent (no updates, no heartbeats, no pongs) for {args['seconds']:g} s"
        elif action == "garbage":
            frames = self.send_garbage(args.get("text"))
            message = f"sent {frames} malformed message{'' if frames == 1 else 's'} on {noun}"
        elif action == "expire":
            self.expire_sessions()
            message = f"expired every session token and dropped {noun}"
        elif action == "rest-fault":
            self.rest_fault(args["status"], args["count"])
            message = f"the next {args['count']} REST request(s) answer HTTP {args['status']}"
        elif action == "block":
            self.block_user()
            message = "the next logins are refused: user blocked"
        elif action == "restart":
            self.restart(args["seconds"])
            message = f"closed {noun}; refusing connections for {args['seconds']:g} s"
        else:
            await self.push_order(args["order"])
            message = f"pushed an order message to the order subscribers of {noun}"
        return {"action": action, "connections": count, "message": message, **args}


_PRODUCTS = [
    {"prd": "C", "s_prdt_ali": "CNC", "exch": list(symbols.EXCHANGES)},
    {"prd": "M", "s_prdt_ali": "NRML", "exch": list(symbols.EXCHANGES)},
    {"prd": "I", "s_prdt_ali": "MIS", "exch": list(symbols.EXCHANGES)},
]


def _control_args(action: str, params: dict[str, str], body: bytes) -> dict[str, Any]:
    def number(name: str, default: float, low: float, high: float) -> float:
        return simulation.number(params.get(name, ""), default, low, high, name)

    if action == "silent":
        return {"seconds": number("seconds", DEFAULT_SILENCE, 0, MAX_SECONDS)}
    if action == "restart":
        return {"seconds": number("seconds", 5.0, 0, MAX_SECONDS)}
    if action == "rest-fault":
        return {"status": int(number("status", 503, 99, 599)), "count": int(number("count", 1, 0, 10_000))}
    if action == "garbage":
        text = params.get("text") or body.decode("utf-8", "replace")
        return {"text": text} if text else {}
    if action == "order":
        order = _json(body)
        if not order:
            raise ValueError("POST /sim/order needs a JSON object of Noren order fields as its body")
        return {"order": order}
    return {}


def _keys(feed: str, k: str) -> list[tuple[str, str, str]]:
    """``"NSE|2885#NSE|1594"`` -> [(feed, "NSE", "2885"), ...]; malformed entries skipped."""
    keys = []
    for entry in k.split("#"):
        exchange, bar, token = entry.strip().partition("|")
        if bar and exchange and token:
            keys.append((feed, exchange, token))
    return keys


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _parse_body(body: bytes) -> tuple[dict[str, Any] | None, str]:
    """``jData=<JSON>[&jKey=<token>]`` -> (the JSON object or None, the jKey or "")."""
    text = body.decode("utf-8", "replace")
    if not text.startswith("jData="):
        return None, ""
    text = text.removeprefix("jData=")
    data_text, sep, jkey = text.rpartition("&jKey=")
    if not sep:
        data_text, jkey = text, ""
    for candidate in (data_text, unquote_plus(data_text)):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data, jkey.strip()
    return None, ""


def _handler_class(sim: NorenSimulator) -> type[BaseHTTPRequestHandler]:
    def answer(method: str, url: SplitResult, headers: dict[str, str], body: bytes) -> simulation.Answer:
        status, reply, extra = sim.rest(method, url.path, url.query, headers, body)
        data = simulation.json_bytes(reply)
        if "Content-Type" not in extra:
            html = isinstance(reply, bytes) and data.startswith(b"<html")
            extra = {"Content-Type": "text/html" if html else "application/json", **extra}
        return status, data, extra

    # the path only: the OAuth redirect's query carries a code
    return simulation.handler_class("noren-sim", log, sim.control, answer, ("GET", "POST", "PUT", "DELETE"))


async def run(
    host: NorenHost = HOSTS["shoonya"],
    bind: str = "127.0.0.1",
    rest_port: int = 0,
    feed_port: int = 0,
    tick_interval: float = 0.5,
    on_ready: Any = None,
) -> None:
    """Serve the simulator as ``host`` until SIGINT or SIGTERM, or until cancelled (``oaws sim noren``)."""
    sim = NorenSimulator(
        host, bind=bind, rest_port=rest_port, feed_port=feed_port, tick_interval=tick_interval, seed=None
    )
    await simulation.run_until_signal(sim, on_ready)
