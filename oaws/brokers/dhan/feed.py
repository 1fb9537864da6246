"""The Dhan feed: DhanHQ v2's binary market feed, 20-level depth and order updates onto the oaws bus.

Dhan's own client (dhanhq's ``MarketFeed``) runs its own event loop, prints instead of
logging, reconnects on its own schedule and decodes only the first response of a
message, so, as for Angel, the protocol is spoken here directly on the bus's event loop,
through the shared connection runner (``oaws.brokers.connection``): backoff with jitter,
resubscription after every reconnect, the market-hours silence watchdog, one line per
disconnect, and the token stripped from every logged URL (Dhan puts it in the query).

What the feed does:

- Modes: client mode 1 is Dhan's ticker (request 15), 2 its quote (17), 3 its full packet
  (21, five levels); one Dhan subscription per instrument, at the highest mode any client
  wants, and every wanted mode published from it (``ticks.at_mode``). Depth with
  ``depth: 20`` is the separate 20-level stream (23), NSE equities and NSE F&O only
  (others get INVALID_DEPTH), published on its own topic (``..._DEPTH_20``).
- Batching: ``want``/``unwant`` change the desired set at once; ``batch_window`` later one
  message per Dhan mode and 100 instruments goes to each connection with the difference.
- Limits: Dhan allows 5 WebSocket connections a user, 5000 instruments on a market-feed
  connection and 50 on a 20-depth connection. Both kinds are counted against the same 5
  (Dhan's documentation does not say they are apart, so the feed assumes they are not);
  past them a client gets LIMIT_EXCEEDED. The order-update stream is a service of its
  own and is not counted.
- Previous close (response 6) and OI (5) are joined onto each instrument's ticks
  (``ticks.Book``), so ``change`` is against the previous close.
- A malformed response is counted (``bad_frames``) and skipped, logged at most once every
  10 seconds; the connection stays.
- A disconnect (response 50) is logged with its reason's sentence. 807-810 (token expired,
  client id or token refused) make the runner ask ``Sessions`` for a fresh session: Dhan
  has no login to redo, so that "login" calls the profile once more; a refused token is one
  sentence (``DhanTokenExpired``) and the feed stands down; a token the profile accepts
  but the feed keeps refusing stands down the second time, with no reconnect storm.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from oaws.brokers.api import Feed, Rejection
from oaws.brokers.connection import (
    AuthRefused,
    Backoff,
    BrokerLink,
    Connection,
    Endpoint,
    Message,
    Sessions,
    Unavailable,
)
from oaws.brokers.dhan import wire
from oaws.brokers.dhan.errors import DhanError, DhanTokenExpired, DhanUnavailable
from oaws.brokers.dhan.settings import DhanSettings, load_settings
from oaws.brokers.dhan.ticks import DEPTH_20, RESPONSE_MODE, Book, depth_20_tick, dhan_mode, tick
from oaws.brokers.hours import market_open
from oaws.brokers.pool import Debounced, Throttle, disconnect_causes, failed, keep
from oaws.instruments import DEFAULT_DEPTH, DEPTH, Instrument, InstrumentError, make
from oaws.protocol import orders as order_protocol
from oaws.protocol.codes import INVALID_DEPTH, LIMIT_EXCEEDED
from oaws.ticks import at_mode

log = logging.getLogger(__name__)
order_log = logging.getLogger("oaws.brokers.dhan.orders")

Pair = tuple[int, str]  # (segment byte, security id)
Key = tuple[int, int, str]  # (Dhan request code, segment byte, security id)
Wanted = tuple[Instrument, int, int]  # (instrument, client mode, depth)

#: the exchange each segment byte trades on, for its market hours
SEGMENT_EXCHANGES = {0: "NSE", 1: "NSE", 2: "NFO", 3: "CDS", 4: "BSE", 5: "MCX", 7: "CDS", 8: "BFO"}
#: the order stream's (exchange, segment letter) -> the feed's segment byte
ORDER_SEGMENTS = {
    ("NSE", "E"): 1,
    ("NSE", "D"): 2,
    ("NSE", "C"): 3,
    ("BSE", "E"): 4,
    ("MCX", "M"): 5,
    ("BSE", "C"): 7,
    ("BSE", "D"): 8,
    ("NSE", "I"): 0,
    ("BSE", "I"): 0,
}
ORDER_EXCHANGES = {1: "NSE", 2: "NFO", 3: "CDS", 4: "BSE", 5: "MCX", 7: "BCD", 8: "BFO"}
#: Dhan's order status -> OpenAlgo's order_status (as OpenAlgo's Dhan order adapter maps them;
#: EXPIRED, which OpenAlgo passes through, is "cancelled": the order is over, nothing filled)
ORDER_STATUS = {
    "TRANSIT": order_protocol.OPEN,
    "PENDING": order_protocol.OPEN,
    "PART_TRADED": order_protocol.OPEN,
    "TRIGGERED": order_protocol.OPEN,
    "TRADED": order_protocol.COMPLETE,
    "CLOSED": order_protocol.COMPLETE,
    "REJECTED": order_protocol.REJECTED,
    "CANCELLED": order_protocol.CANCELLED,
    "EXPIRED": order_protocol.CANCELLED,
}
ORDER_ACTIONS = {"B": "BUY", "S": "SELL", "BUY": "BUY", "SELL": "SELL"}
ORDER_TYPES = {"LMT": "LIMIT", "MKT": "MARKET", "SL": "SL", "SLM": "SL-M", "LIMIT": "LIMIT", "MARKET": "MARKET"}
ORDER_PRODUCTS = {"C": "CNC", "I": "MIS", "M": "NRML", "F": "NRML", "CNC": "CNC", "INTRADAY": "MIS", "MARGIN": "NRML"}


@dataclass
class _Session:
    """What the profile check gave: the token is the settings', the profile proves it works."""

    profile: Any


@dataclass(eq=False)
class _Entry:
    """One Dhan instrument (segment, security id) on the market feed and who wants it."""

    pair: Pair
    conn: Connection[Key, _Session]
    #: instrument -> client modes wanted at five levels
    wanted: dict[Instrument, set[int]] = field(default_factory=dict)
    key: Key | None = None
    book: Book = field(default_factory=Book)


@dataclass(eq=False)
class _DepthEntry:
    pair: Pair
    conn: Connection[Key, _Session]
    instruments: dict[Instrument, None] = field(default_factory=dict)
    book: Book = field(default_factory=Book)

    @property
    def key(self) -> Key:
        return (wire.SUB_DEPTH_20, *self.pair)


def _feed_url(base: str, settings: DhanSettings, version: bool) -> str:
    params = {"token": settings.access_token or "", "clientId": settings.client_id or "", "authType": "2"}
    if version:
        params = {"version": "2", **params}
    return f"{base}{'&' if '?' in base else '?'}{urlencode(params)}"


class _DhanLink(BrokerLink[Key, _Session]):
    """Dhan's side of one market-feed or 20-depth connection: the URL, the requests, the responses."""

    name = "Dhan"

    def __init__(self, feed: DhanFeed, index: int, depth: bool) -> None:
        self.feed = feed
        self.index = index
        self.depth = depth
        self.label = f"Dhan {'20-depth' if depth else 'feed'} connection {index}"

    def endpoint(self, session: _Session | None) -> Endpoint:
        s = self.feed.settings
        return Endpoint(_feed_url(s.depth_url if self.depth else s.feed_url, s, version=not self.depth))

    def subscribe(self, keys: set[Key]) -> list[Message]:
        return self._requests(keys, unsubscribe=False)

    def unsubscribe(self, keys: set[Key]) -> list[Message]:
        return self._requests(keys, unsubscribe=True)

    def _requests(self, keys: set[Key], unsubscribe: bool) -> list[Message]:
        groups: dict[int, list[Pair]] = {}
        for code, segment, security_id in keys:
            groups.setdefault(code, []).append((segment, security_id))
        per = self.feed.instruments_per_request
        messages: list[Message] = []
        for code in sorted(groups):
            request = wire.UNSUBSCRIBE_CODE[code] if unsubscribe else code
            messages.extend(orjson.dumps(m).decode() for m in wire.requests(request, groups[code], per))
        return messages

    def market_open(self, keys: set[Key]) -> bool:
        return self.feed.market_hours({SEGMENT_EXCHANGES.get(segment, "NSE") for _, segment, _ in keys})

    def on_frame(self, frame: Message) -> Key | None:
        feed = self.feed
        decoded = wire.decode_depth(frame) if self.depth else wire.decode(frame)  # type: ignore[arg-type]
        if decoded.bad:
            feed._count_bad(self.label, decoded)
        data_key: Key | None = None
        for r in decoded.responses:
            if isinstance(r, wire.DepthSide):
                data_key = feed._on_depth_side(r) or data_key
            elif r.code == wire.DISCONNECT:
                feed._on_disconnect(self.label, r.reason)
            else:
                data_key = feed._on_response(r) or data_key
        return data_key


class _OrderLink(BrokerLink[str, None]):
    """Dhan's order-update stream: a login message, then JSON ``order_alert`` messages."""

    name = "Dhan"

    def __init__(self, feed: DhanFeed) -> None:
        self.feed = feed

    def endpoint(self, session: None) -> Endpoint:
        return Endpoint(self.feed.settings.order_url)

    def greeting(self, session: None) -> list[Message]:
        s = self.feed.settings
        login = {
            "LoginReq": {"MsgCode": 42, "ClientId": str(s.client_id or ""), "Token": str(s.access_token or "")},
            "UserType": "SELF",
        }
        return [orjson.dumps(login).decode()]

    def subscribe(self, keys: set[str]) -> list[Message]:
        return []

    def unsubscribe(self, keys: set[str]) -> list[Message]:
        return []

    def market_open(self, keys: set[str]) -> bool:
        return False  # no subscriptions: orders may not change for hours

    def on_frame(self, frame: Message) -> str | None:
        self.feed._on_order_frame(frame)
        return None


class DhanFeed(Feed):
    """Ticks from DhanHQ v2 (see the module docstring)."""

    name = "dhan"
    depths = (DEFAULT_DEPTH, DEPTH_20)
    orders = True

    def __init__(
        self,
        settings: DhanSettings,
        master: Any,
        *,
        batch_window: float = 0.1,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        stable_after: float = 30.0,
        silence_timeout: float = 30.0,
        heartbeat_interval: float = 10.0,
        open_timeout: float = 10.0,
        max_connections: int = wire.CONNECTIONS,
        instruments_per_connection: int = wire.INSTRUMENTS_PER_CONNECTION,
        depth_per_connection: int = wire.DEPTH_PER_CONNECTION,
        instruments_per_request: int = wire.MAX_PER_REQUEST,
        market_hours: Callable[[Iterable[str]], bool] = market_open,
        validate: Callable[[DhanSettings], Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        settings.require_credentials()
        for url, variable in (
            (settings.feed_url, "DHAN_FEED_URL"),
            (settings.depth_url, "DHAN_DEPTH_URL"),
            (settings.order_url, "DHAN_ORDER_URL"),
        ):
            try:
                parse_uri(url)
            except InvalidURI:
                raise DhanError(f"the Dhan URL {url!r} is not a ws:// or wss:// URL (check {variable})") from None
        self.settings = settings
        self.master = master
        self.max_connections = max_connections
        self.instruments_per_connection = instruments_per_connection
        self.depth_per_connection = depth_per_connection
        self.instruments_per_request = instruments_per_request
        self.market_hours = market_hours
        self._validate = validate
        self._rng = rng or random.Random()
        self._conn_options = {
            "stable_after": stable_after,
            "silence_timeout": silence_timeout,
            "heartbeat_interval": heartbeat_interval,
            "open_timeout": open_timeout,
        }
        self._backoff = (backoff_base, backoff_cap)
        self._sessions: Sessions[_Session] = Sessions(
            "Dhan",
            self._login,
            refused_fresh=lambda reason: DhanTokenExpired(
                f"Dhan's feed refused the access token ({reason}); generate a new one at web.dhan.co "
                "and set DHAN_ACCESS_TOKEN"
            ),
            credentials="access token",
            log=log,
        )
        self._feed_conns: list[Connection[Key, _Session]] = []
        self._depth_conns: list[Connection[Key, _Session]] = []
        self._tasks: dict[Connection[Key, _Session], asyncio.Task[None]] = {}
        self._order_conn: Connection[str, None] = Connection(
            _OrderLink(self),
            label="Dhan order updates",
            backoff=Backoff(backoff_base, backoff_cap, rng=random.Random()),
            log=order_log,
            **self._conn_options,  # type: ignore[arg-type]
        )
        self._order_task: asyncio.Task[None] | None = None
        self._entries: dict[Pair, _Entry] = {}
        self._depth_entries: dict[Pair, _DepthEntry] = {}
        self._wanted: dict[Wanted, Pair] = {}
        self._latest: dict[Wanted, bytes] = {}
        self._flush = Debounced(batch_window, self._sync, before_loop=True)
        self._fatal: asyncio.Future[None] | None = None
        self._throttle = Throttle(10.0)
        #: the token was checked again after a refusal and no data has come since: a second refusal is the end
        self._rechecked = False
        self._reconnects_before = 0
        self._disconnects: list[tuple[float, str]] = []
        # figures for status() and tests
        self.bad_frames = 0
        self.unexpected = 0
        self.server_disconnects: list[tuple[int, str]] = []
        self.order_updates = 0
        self.bad_order_frames = 0

    @classmethod
    def from_settings(cls, instruments: str | None = None, **options: Any) -> DhanFeed:
        """The feed as configured: ``DHAN_*`` variables, else ``[dhan]`` of the config file.

        Raises a DhanError subclass with one sentence when credentials or the master are missing.
        """
        from oaws.brokers.dhan.master import load_master

        settings = load_settings(instruments=instruments)
        settings.require_credentials()
        return cls(settings, load_master(settings.instruments), **options)

    # Figures ------------------------------------------------------------------------
    @property
    def connections(self) -> list[Connection[Key, _Session]]:
        return [*self._feed_conns, *self._depth_conns]

    @property
    def batch_window(self) -> float:
        return self._flush.window

    @property
    def reconnects(self) -> int:
        return self._reconnects_before + sum(c.reconnects for c in self.connections)

    @property
    def logins(self) -> int:
        """Profile checks of the token, failed ones included."""
        return self._sessions.logins

    @property
    def disconnects(self) -> list[str]:
        """Causes of the latest disconnects of all connections, oldest first."""
        return disconnect_causes(self.connections, self._disconnects)

    def status(self) -> dict[str, object]:
        active = [c for c in self.connections if c in self._tasks]
        if failed(self._fatal):
            state = "error"
        elif active and all(c.state == "connected" for c in active):
            state = "connected"
        elif not active and self._fatal is not None and not self._fatal.done():
            state = "connected" if self._sessions.session is not None else "connecting"
        else:
            state = "reconnecting" if self.reconnects else "connecting"
        disconnects = self.disconnects
        return {
            "adapter_status": state,
            "connections": sum(c.connected for c in self.connections),
            "feed_connections": len(self._feed_conns),
            "depth_connections": len(self._depth_conns),
            "instruments": len(self._entries),
            "depth_instruments": len(self._depth_entries),
            "bad_frames": self.bad_frames,
            "unexpected_ticks": self.unexpected,
            "reconnects": self.reconnects,
            "logins": self.logins,
            "last_disconnect": disconnects[-1] if disconnects else None,
            "last_server_disconnect": self.server_disconnects[-1][1] if self.server_disconnects else None,
            "order_status": self._order_conn.state,
            "order_updates": self.order_updates,
            "bad_order_frames": self.bad_order_frames,
        }

    # Feed interface (the event loop calls these) ---------------------------------------
    def check(self, instrument: Instrument) -> None:
        self.master.resolve(instrument)

    def want(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        wanted = (instrument, mode, depth)
        if wanted in self._wanted:
            return
        if dhan_mode(mode, depth) is None:
            offered = ", ".join(map(str, self.depths))
            message = f"Dhan offers depth {offered} (20 for Depth only), not {depth}"
            self._reject(instrument, mode, depth, INVALID_DEPTH, message)
            return
        try:
            resolved = self.master.resolve(instrument)
        except Rejection as exc:
            self._reject(instrument, mode, depth, exc.code, exc.message)
            return
        pair: Pair = (int(resolved.segment_code), str(resolved.security_id))
        if depth == DEPTH_20:
            self._want_depth(instrument, pair, resolved.segment)
            return
        entry = self._entries.get(pair)
        if entry is None:
            conn = self._room(self._feed_conns, self.instruments_per_connection, depth=False)
            if conn is None:
                self._reject(instrument, mode, depth, LIMIT_EXCEEDED, self._full_message(depth=False))
                return
            entry = self._entries[pair] = _Entry(pair, conn)
        entry.wanted.setdefault(instrument, set()).add(mode)
        self._wanted[wanted] = pair
        self._rekey(entry)

    def unwant(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        pair = self._wanted.pop((instrument, mode, depth), None)
        self._latest.pop((instrument, mode, depth), None)
        if pair is None:
            return
        if depth == DEPTH_20:
            d = self._depth_entries.get(pair)
            if d is None:
                return
            d.instruments.pop(instrument, None)
            if not d.instruments:
                del self._depth_entries[pair]
                d.conn.keys.discard(d.key)
                self._flush.soon()
            return
        entry = self._entries.get(pair)
        if entry is None:
            return
        modes = entry.wanted.get(instrument, set())
        modes.discard(mode)
        if not modes:
            entry.wanted.pop(instrument, None)
        if not entry.wanted:
            del self._entries[pair]
        self._rekey(entry)

    def resend(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        payload = self._latest.get((instrument, mode, depth))
        if payload is not None:
            self._publish(instrument, mode, depth, payload)

    async def run(self) -> None:
        """Check the token (Dhan's profile call), then keep the connections up until cancelled.

        Raises the DhanError that made the feed stand down (a refused token).
        """
        self._fatal = asyncio.get_running_loop().create_future()
        try:
            await self._sessions.current()
        except Unavailable as exc:
            log.warning("cannot check the Dhan access token yet (%s); the connections will try again", exc)
        for conn in self.connections:
            if conn.keys:
                self._start(conn)
        self._order_task = asyncio.get_running_loop().create_task(self._keep_orders(), name="dhan-orders")
        try:
            await self._fatal
        finally:
            tasks = [t for t in (self._flush.task, self._order_task, *self._tasks.values()) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.clear()
            self._order_task = None

    # Subscriptions -------------------------------------------------------------------
    def _want_depth(self, instrument: Instrument, pair: Pair, segment: str) -> None:
        wanted = (instrument, DEPTH, DEPTH_20)
        if pair[0] not in wire.DEPTH_20_SEGMENTS:
            message = f"Dhan serves 20-level depth for NSE equities and NSE F&O only, not {segment}"
            self._reject(instrument, DEPTH, DEPTH_20, INVALID_DEPTH, message)
            return
        d = self._depth_entries.get(pair)
        if d is None:
            conn = self._room(self._depth_conns, self.depth_per_connection, depth=True)
            if conn is None:
                self._reject(instrument, DEPTH, DEPTH_20, LIMIT_EXCEEDED, self._full_message(depth=True))
                return
            d = self._depth_entries[pair] = _DepthEntry(pair, conn)
            conn.keys.add(d.key)
            self._flush.soon()
        d.instruments[instrument] = None
        self._wanted[wanted] = pair

    def _rekey(self, entry: _Entry) -> None:
        """Subscribe ``entry`` at the highest Dhan mode wanted (or not at all), replacing the old one."""
        modes = {m for ms in entry.wanted.values() for m in ms}
        key: Key | None = None
        if modes:
            code = dhan_mode(max(modes))
            assert code is not None
            key = (code, *entry.pair)
        if key == entry.key:
            return
        if entry.key is not None:
            entry.conn.keys.discard(entry.key)
        if key is not None:
            entry.conn.keys.add(key)
        entry.key = key
        self._flush.soon()

    def _full_message(self, depth: bool) -> str:
        per, kind = (
            (self.depth_per_connection, "20-level depth") if depth else (self.instruments_per_connection, "market feed")
        )
        return (
            f"Dhan allows {self.max_connections} connections a user, {per} instruments on each {kind} "
            "connection; all are in use"
        )

    def _room(self, pool: list[Connection[Key, _Session]], per: int, depth: bool) -> Connection[Key, _Session] | None:
        """A connection of ``pool`` with room for one more instrument, opened if the user's budget allows."""
        for conn in pool:
            if len(conn.keys) < per:
                return conn
        if len(self.connections) >= self.max_connections:
            return None
        link = _DhanLink(self, len(pool), depth)
        conn = Connection(
            link,
            label=link.label,
            sessions=self._sessions,
            backoff=Backoff(*self._backoff, rng=self._rng),
            log=log,
            **self._conn_options,  # type: ignore[arg-type]
        )
        pool.append(conn)
        if self._fatal is not None and not self._fatal.done():
            self._start(conn)
        return conn

    async def _sync(self) -> None:
        """The flush (``batch_window`` after a change): sync every connection, give back the empty ones."""
        for pool in (self._feed_conns, self._depth_conns):
            for conn in list(pool):
                if conn.keys:
                    await conn.sync()
                else:
                    self._drop(pool, conn)  # a connection that holds nothing is given back

    def _drop(self, pool: list[Connection[Key, _Session]], conn: Connection[Key, _Session]) -> None:
        pool.remove(conn)
        self._reconnects_before += conn.reconnects
        self._disconnects.extend(conn.disconnects)
        self._disconnects = self._disconnects[-20:]
        task = self._tasks.pop(conn, None)
        if task is not None:
            task.cancel()

    def _start(self, conn: Connection[Key, _Session]) -> None:
        if conn not in self._tasks:
            task = asyncio.get_running_loop().create_task(keep(conn, self._fatal, DhanError, log), name=conn.label)
            self._tasks[conn] = task

    async def _keep_orders(self) -> None:
        """The order-update stream, once the token is known good; its failure costs orders, not ticks."""
        while self._sessions.session is None:
            await asyncio.sleep(0.05)
        try:
            await self._order_conn.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            order_log.error("Dhan order updates stopped: %s; ticks go on, order updates do not", exc)

    async def _login(self) -> _Session:
        """Dhan has no login: check the token with the profile call (once at start, once per refusal)."""
        refused = self._sessions.session is not None  # not the check at start: a connection was refused
        if refused and self._rechecked:
            raise DhanTokenExpired(
                "Dhan's feed keeps refusing the access token that its profile call accepts; "
                "generate a new one at web.dhan.co and set DHAN_ACCESS_TOKEN"
            )
        validate = self._validate
        if validate is None:
            from oaws.brokers.dhan.session import validate
        try:
            if inspect.iscoroutinefunction(validate):
                profile = await validate(self.settings)
            else:
                profile = await asyncio.to_thread(validate, self.settings)
        except DhanUnavailable as exc:
            raise Unavailable(str(exc)) from exc
        self._rechecked = refused
        log.info("Dhan accepted the access token of client %s", self.settings.client_id)
        return _Session(profile)

    # Responses ------------------------------------------------------------------------
    def _count_bad(self, label: str, decoded: wire.Decoded) -> None:
        self.bad_frames += decoded.bad
        if self._throttle.ready("responses"):
            log.warning(
                "%s: skipped a malformed response (%s); %d so far", label, "; ".join(decoded.problems), self.bad_frames
            )

    def _on_disconnect(self, label: str, reason: int) -> None:
        sentence = wire.reason_text(reason)
        self.server_disconnects.append((reason, sentence))
        del self.server_disconnects[:-20]
        if reason in wire.AUTH_REASONS:
            raise AuthRefused(f"{sentence}, reason {reason}")
        log.warning("%s: Dhan disconnects: %s (%d)", label, sentence, reason)

    def _on_response(self, r: wire.Response) -> Key | None:
        entry = self._entries.get((r.segment, str(r.security_id)))
        if entry is None:
            if r.code in RESPONSE_MODE:
                self.unexpected += 1  # unsubscribed a moment ago
            return None
        book = entry.book
        if not book.update(r):
            return None
        last = book.last
        assert last is not None
        self._rechecked = False
        received = int(time.time() * 1000)
        recorded = RESPONSE_MODE[last.code]
        for instrument, modes in entry.wanted.items():
            full = tick(last, book, instrument.symbol, instrument.exchange, received)
            for mode in modes:
                if mode > recorded:
                    continue  # a higher mode waits for the packets of its own subscription
                payload = orjson.dumps(at_mode(full, mode, recorded))
                self._latest[(instrument, mode, DEFAULT_DEPTH)] = payload
                self._publish(instrument, mode, DEFAULT_DEPTH, payload)
        return entry.key if r.code in RESPONSE_MODE else None

    def _on_depth_side(self, side: wire.DepthSide) -> Key | None:
        pair = (side.segment, str(side.security_id))
        d = self._depth_entries.get(pair)
        if d is None:
            self.unexpected += 1
            return None
        main = self._entries.get(pair)
        if not d.book.depth_side(side):
            return d.key
        self._rechecked = False
        received = int(time.time() * 1000)
        last = main.book.last if main is not None else None
        for instrument in d.instruments:
            payload = orjson.dumps(depth_20_tick(d.book, instrument.symbol, instrument.exchange, received, last))
            self._latest[(instrument, DEPTH, DEPTH_20)] = payload
            self._publish(instrument, DEPTH, DEPTH_20, payload)
        return d.key

    def _publish(self, instrument: Instrument, mode: int, depth: int, payload: bytes) -> None:
        if self.publisher is None:
            return
        if depth == DEFAULT_DEPTH:
            self.publisher.publish(instrument, mode, payload)
        else:
            self.publisher.publish(instrument, mode, payload, depth=depth)

    def _reject(self, instrument: Instrument, mode: int, depth: int, code: str, message: str) -> None:
        log.info("cannot serve %s mode %d depth %d: %s", instrument, mode, depth, message)
        if self.publisher is None:
            return
        if depth == DEFAULT_DEPTH or mode != DEPTH:
            self.publisher.reject(instrument, mode, code, message)
        else:
            self.publisher.reject(instrument, mode, code, message, depth=depth)

    # Order updates ----------------------------------------------------------------------
    def _on_order_frame(self, frame: Message) -> None:
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            self._bad_order("not JSON")
            return
        if not isinstance(message, dict) or message.get("Type") != "order_alert":
            return  # the login's answer, or another kind of message
        data = message.get("Data")
        if not isinstance(data, dict):
            self._bad_order("an order_alert without Data")
            return
        try:
            update = self._order_update(data)
        except (ValueError, TypeError, InstrumentError) as exc:
            self._bad_order(str(exc))
            return
        self.order_updates += 1
        if self.publisher is not None:
            self.publisher.publish_order(str(self.settings.client_id), orjson.dumps(update))

    def _bad_order(self, why: str) -> None:
        self.bad_order_frames += 1
        if self._throttle.ready("orders"):
            order_log.warning(
                "Dhan order updates: skipped a malformed message (%s); %d so far", why, self.bad_order_frames
            )

    def _order_update(self, data: dict[str, Any]) -> dict[str, Any]:
        """OpenAlgo's order_update of one Dhan order alert (its camelCase keys, else the documented PascalCase)."""

        def get(*names: str, default: Any = "") -> Any:
            for name in names:
                if name in data and data[name] is not None:
                    return data[name]
            return default

        exchange = str(get("exchange", "Exchange")).upper()
        seg_letter = str(get("segment", "Segment")).upper()
        segment = ORDER_SEGMENTS.get((exchange, seg_letter))
        if segment is None and seg_letter.isdigit():
            segment = int(seg_letter)
        security_id = str(get("securityId", "SecurityId"))
        instrument: Instrument | None = None
        if segment is not None and security_id:
            name = self.master.instrument_of(segment, security_id)
            if name:
                symbol, _, exch = str(name).partition(":")
                instrument = make(symbol, exch)
        if instrument is None:
            symbol = str(get("symbol", "Symbol", "tradingSymbol", "TradingSymbol"))
            instrument = make(symbol, ORDER_EXCHANGES.get(segment or -1, exchange or "NSE"))
        raw_status = str(get("status", "Status")).upper()
        status = ORDER_STATUS.get(raw_status, raw_status.lower() or order_protocol.OPEN)
        action = str(get("txnType", "TxnType", "transactionType")).upper()
        order_type = str(get("orderType", "OrderType")).upper()
        product = str(get("product", "Product", "productType")).upper()
        return order_protocol.order_update(
            user_id=str(self.settings.client_id),
            broker=self.name,
            orderid=str(get("orderNo", "OrderNo", "orderId")),
            instrument=instrument,
            action=ORDER_ACTIONS.get(action, action),
            quantity=int(get("quantity", "Quantity", default=0) or 0),
            price=float(get("price", "Price", default=0) or 0),
            trigger_price=float(get("triggerPrice", "TriggerPrice", default=0) or 0),
            pricetype=ORDER_TYPES.get(order_type, order_type),
            product=ORDER_PRODUCTS.get(product, product),
            order_status=status,
            filled_quantity=int(get("tradedQty", "TradedQty", default=0) or 0),
            average_price=float(get("avgTradedPrice", "AvgTradedPrice", default=0) or 0),
            rejection_reason=str(get("reasonDescription", "ReasonDescription")) if status == "rejected" else "",
        )
