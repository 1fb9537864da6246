"""The Angel One feed: SmartAPI WebSocket V2 ticks onto the oaws bus.

Why the wire protocol is driven directly with ``websockets`` instead of wrapping
smartapi-python's ``SmartWebSocketV2``: that class runs ``websocket-client`` in its own
thread and carries the defects listed in docs/brokers/angel.md (a close handler that
never runs, recursive retries that count across the object's lifetime, causes of
disconnects thrown away, ``struct.error`` on a short frame forcing a reconnect,
subscription state shared between instances and corrupted by ``unsubscribe``, text frames
dropped, OI change decoded with the wrong type, a ``./logs`` directory in the user's
cwd). Wrapping it would mean fighting each of those from the outside, across a thread
boundary. The protocol itself is small and documented (a handshake with four headers,
JSON subscribe / unsubscribe, text ``ping``, fixed binary layouts), so this module speaks
it on the event loop the bus already runs on: no threads, and every failure is ours to
handle. smartapi-python is still used where it is solid, for the REST login
(``session.login``).

What the feed does:

- Subscriptions follow the bus: ``want`` / ``unwant`` change the desired set at once,
  and a flush ``batch_window`` later sends one request per (Angel mode, exchange type)
  with the difference. Client mode 1 is Angel LTP, 2 QUOTE, 3 SNAP_QUOTE, and 3 with
  ``depth`` 20 (the bus topic ``EXCHANGE_SYMBOL_DEPTH_20``) Angel's DEPTH (mode 4), whose
  ticks carry twenty levels a side.
- Limits: at most ``max_connections`` connections of ``tokens_per_connection``
  subscriptions each (Angel: 3 and 1000, unverified); past them, or when Angel answers
  E1002, the client gets LIMIT_EXCEEDED through ``publisher.reject``. Depth 20 Angel
  serves for NSE cash (exchange type 1) only and for ``depth_quota`` instruments (50,
  unverified): other exchanges get INVALID_DEPTH, the 51st LIMIT_EXCEEDED, before anything
  is sent to Angel.
- A malformed binary frame is counted and skipped; the connection stays.
- Keeping each connection up is ``oaws.brokers.connection``'s job, as for every broker:
  backoff with full jitter and resubscription after every reconnect, one log line per
  disconnect with its cause, the market-hours-aware silence watchdog, and one fresh login
  when Angel refuses the tokens (401 at the handshake), fresh tokens refused stopping the
  feed with ``AngelAuthError``. This module gives it Angel's handshake headers, requests,
  text ``ping`` heartbeat and decoding (``_AngelLink``), and Angel's login (``Sessions``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from websockets.exceptions import InvalidURI
from websockets.http11 import Response
from websockets.uri import parse_uri

from oaws.bars.aggregator import Bar, Interval
from oaws.brokers.angel import history as angel_history
from oaws.brokers.angel import orders as order_status
from oaws.brokers.angel import wire
from oaws.brokers.angel.errors import AngelAuthError, AngelError, AngelUnavailable
from oaws.brokers.angel.master import SEGMENT_TYPES, Master, load_master
from oaws.brokers.angel.session import Session, load_session, login, save_session
from oaws.brokers.angel.settings import AngelSettings, load_settings
from oaws.brokers.angel.ticks import CLIENT_MODE, DEPTH_20, STREAM_DEPTH, angel_mode, tick
from oaws.brokers.api import Feed, HistoryError, Rejection
from oaws.brokers.connection import (
    Backoff,
    BrokerLink,
    Connection,
    Endpoint,
    Message,
    Sessions,
    StandDown,
    Unavailable,
)
from oaws.brokers.hours import market_open
from oaws.brokers.pool import Pool, Throttle
from oaws.instruments import DEFAULT_DEPTH, DEPTH, Instrument
from oaws.protocol.codes import BROKER_ERROR, INVALID_DEPTH, LIMIT_EXCEEDED

log = logging.getLogger(__name__)
#: the order-status connection's lines, apart from the tick feed's
order_log = logging.getLogger("oaws.brokers.angel.orders")


Key = tuple[int, int, str]  # (Angel mode, exchange type, token)
Wanted = tuple[Instrument, int, int]  # (instrument, client mode, depth)

#: The exchange each exchange type trades on, for its market hours.
EXCHANGES = {exchange_type: segment for segment, exchange_type in SEGMENT_TYPES.items()}


@dataclass(eq=False)
class _Route:
    """The instruments a subscription key is published as, and where it is subscribed."""

    conn: Connection[Key, Session]
    divisor: float
    instruments: dict[Instrument, None] = field(default_factory=dict)


class _AngelLink(BrokerLink[Key, Session]):
    """Angel's side of one feed connection: handshake headers, requests, frames."""

    name = "Angel"
    heartbeat = "ping"  # Angel's documented heartbeat, answered by text "pong"

    def __init__(self, feed: AngelFeed, index: int) -> None:
        self.feed = feed
        self.index = index
        #: correlation ID -> keys of the subscribe request, to map E1002 & co. back to instruments
        self.requests: OrderedDict[str, list[Key]] = OrderedDict()
        self.pongs = 0

    def endpoint(self, session: Session | None) -> Endpoint:
        assert session is not None, "Angel's feed always runs with a session"
        headers = {
            "Authorization": session.authorization,
            "x-api-key": self.feed.settings.api_key or "",
            "x-client-code": session.client_code,
            "x-feed-token": session.feed_token,
        }
        return Endpoint(self.feed.settings.feed_url, headers)

    def refusal_reason(self, response: Response) -> str:
        return response.headers.get("x-error-message") or response.reason_phrase

    def subscribe(self, keys: set[Key]) -> list[Message]:
        return self._requests(wire.SUBSCRIBE, keys)

    def unsubscribe(self, keys: set[Key]) -> list[Message]:
        return self._requests(wire.UNSUBSCRIBE, keys)

    def market_open(self, keys: set[Key]) -> bool:
        return self.feed.market_hours({EXCHANGES.get(exchange_type, "") for _, exchange_type, _ in keys})

    def on_frame(self, frame: Message) -> Key | None:
        if isinstance(frame, bytes):
            return self._on_binary(frame)
        self._on_text(frame)
        return None

    def _requests(self, action: int, keys: set[Key]) -> list[Message]:
        """One request per (mode, exchange type): Angel takes a token list for each pair."""
        groups: dict[tuple[int, int], list[str]] = {}
        for mode, exchange_type, token in sorted(keys):
            groups.setdefault((mode, exchange_type), []).append(token)
        messages: list[Message] = []
        for (mode, exchange_type), tokens in groups.items():
            correlation = f"oaws{next(self.feed._correlation) % 1_000_000:06d}"  # Angel: 10 characters
            if action == wire.SUBSCRIBE:
                self.requests[correlation] = [(mode, exchange_type, t) for t in tokens]
                while len(self.requests) > 256:
                    self.requests.popitem(last=False)
            messages.append(orjson.dumps(wire.request(action, mode, {exchange_type: tokens}, correlation)).decode())
        return messages

    def _on_binary(self, frame: bytes) -> Key | None:
        feed = self.feed
        try:
            packet = wire.decode(frame)
        except wire.MalformedFrame as exc:
            feed.malformed += 1
            if feed._throttle.ready("ticks"):
                log.warning(
                    "Angel feed connection %d: skipped a malformed frame (%s); %d so far",
                    self.index,
                    exc,
                    feed.malformed,
                )
            return None
        key = (packet.mode, packet.exchange_type, packet.token)
        route = feed._routes.get(key)
        if route is None or feed.publisher is None:
            feed.unexpected += 1  # unsubscribed a moment ago
            return key
        mode, depth = CLIENT_MODE[packet.mode], STREAM_DEPTH[packet.mode]
        received = int(time.time() * 1000)
        for instrument in route.instruments:
            payload = orjson.dumps(tick(packet, instrument.symbol, instrument.exchange, route.divisor, received))
            feed._latest[(instrument, mode, depth)] = payload
            feed._publish(instrument, mode, depth, payload)
        return key

    def _on_text(self, text: str) -> None:
        if text == "pong":
            self.pongs += 1
            return
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            log.debug("Angel feed connection %d: ignoring text frame %.80r", self.index, text)
            return
        if not isinstance(message, dict) or "errorCode" not in message:
            log.debug("Angel feed connection %d: ignoring text frame %.80r", self.index, text)
            return
        code, reason = str(message.get("errorCode")), str(message.get("errorMessage") or "no reason given")
        keys = self.requests.pop(str(message.get("correlationID") or ""), None)
        log.warning(
            "Angel feed connection %d: Angel answered %s %s%s",
            self.index,
            code,
            reason,
            f" to a request for {len(keys)} subscriptions" if keys else "",
        )
        if keys:
            limit = code == "E1002" or "limit" in reason.lower()
            refusal = f"Angel One refused: {reason} ({code})"
            self.feed._drop_keys(keys, LIMIT_EXCEEDED if limit else BROKER_ERROR, refusal)


class _OrderLink(BrokerLink[str, Session]):
    """Angel's order-status socket: the Bearer jwt at the handshake, no subscriptions, JSON frames."""

    name = "Angel order status"
    heartbeat = None  # WebSocket pings every heartbeat interval (Angel asks for about 10 s)

    def __init__(self, feed: AngelFeed) -> None:
        self.feed = feed

    def endpoint(self, session: Session | None) -> Endpoint:
        assert session is not None, "Angel's order status always runs with a session"
        return Endpoint(self.feed.settings.order_url, {"Authorization": session.authorization})

    def refusal_reason(self, response: Response) -> str:
        return response.headers.get("x-error-message") or response.reason_phrase

    def subscribe(self, keys: set[str]) -> list[Message]:
        return []

    def unsubscribe(self, keys: set[str]) -> list[Message]:
        return []

    def market_open(self, keys: set[str]) -> bool:
        return False  # no subscriptions, so no silence watchdog: orders may not change for hours

    def on_frame(self, frame: Message) -> str | None:
        feed = self.feed
        try:
            update = order_status.decode(frame, feed.master, user_id=feed.settings.client_code or "")
        except order_status.MalformedOrderFrame as exc:
            feed.malformed_orders += 1
            if feed._throttle.ready("orders"):
                order_log.warning(
                    "Angel order status: skipped a malformed frame (%s); %d so far", exc, feed.malformed_orders
                )
            return None
        if update is None:
            return None
        feed.order_updates += 1
        if feed.publisher is not None:
            feed.publisher.publish_order(update.user_id, orjson.dumps(update.message))
        return None


class AngelFeed(Feed):
    """Ticks from Angel One's SmartAPI WebSocket V2 (see the module docstring)."""

    name = "angel"
    depths = (DEFAULT_DEPTH, DEPTH_20)
    orders = True

    def __init__(
        self,
        settings: AngelSettings,
        master: Master,
        *,
        batch_window: float = 0.1,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        stable_after: float = 30.0,
        silence_timeout: float = 30.0,
        heartbeat_interval: float = 10.0,
        open_timeout: float = 10.0,
        login_timeout: float = 15.0,
        max_connections: int = 3,
        tokens_per_connection: int = 1000,
        depth_quota: int = 50,
        market_hours: Callable[[Iterable[str]], bool] = market_open,
        session_file: Path | None = None,
        store_session: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        settings.require_credentials()
        try:
            parse_uri(settings.feed_url)
        except InvalidURI:
            raise AngelError(
                f"the Angel feed URL {settings.feed_url!r} is not a ws:// or wss:// URL (check ANGEL_FEED_URL)"
            ) from None
        try:
            parse_uri(settings.order_url)
        except InvalidURI:
            raise AngelError(
                f"the Angel order-status URL {settings.order_url!r} is not a ws:// or wss:// URL "
                "(check ANGEL_ORDER_URL)"
            ) from None
        self.settings = settings
        self.master = master
        self.login_timeout = login_timeout
        self.tokens_per_connection = tokens_per_connection
        #: instruments Angel serves at depth 20 at once
        self.depth_quota = depth_quota
        #: exchanges -> whether any trades now; the silence watchdog asks it
        self.market_hours = market_hours
        self.session_file = session_file
        self.store_session = store_session
        rng = rng or random.Random()
        self._sessions: Sessions[Session] = Sessions(
            "Angel One",
            self._login,
            stored=self._stored if store_session else None,
            expired=lambda session: session.expired(),
            refused_fresh=lambda reason: AngelAuthError(
                f"Angel One refused the feed tokens of a fresh login ({reason}); "
                "check ANGEL_API_KEY and ANGEL_CLIENT_CODE"
            ),
            log=log,
        )
        self._conns: list[Connection[Key, Session]] = [
            Connection(
                _AngelLink(self, index),
                label=f"Angel feed connection {index}",
                sessions=self._sessions,
                backoff=Backoff(backoff_base, backoff_cap, rng=rng),
                stable_after=stable_after,
                silence_timeout=silence_timeout,
                heartbeat_interval=heartbeat_interval,
                open_timeout=open_timeout,
                log=log,
            )
            for index in range(max_connections)
        ]
        #: Angel's order-status socket, one for the feed (not per client), up while ``run`` runs
        self._orders_conn: Connection[str, Session] = Connection(
            _OrderLink(self),
            label="Angel order status",
            sessions=self._sessions,
            # its own random source: the tick connections' backoff draws stay as a seeded rng makes them
            backoff=Backoff(backoff_base, backoff_cap, rng=random.Random()),
            stable_after=stable_after,
            silence_timeout=silence_timeout,
            heartbeat_interval=heartbeat_interval,
            open_timeout=open_timeout,
            log=order_log,
        )
        self._pool = Pool(
            self._conns,
            name="angel",
            per_connection=tokens_per_connection,
            batch_window=batch_window,
            expected=AngelError,
            log=log,
        )
        self._routes: dict[Key, _Route] = {}
        self._wanted: dict[Wanted, Key] = {}
        self._latest: dict[Wanted, bytes] = {}
        self._correlation = itertools.count(1)
        self._throttle = Throttle(10.0)
        # figures for status() and tests
        self.malformed = 0
        self.unexpected = 0
        self.malformed_orders = 0
        self.order_updates = 0

    @classmethod
    def from_settings(cls, instruments: str | None = None, **options: Any) -> AngelFeed:
        """The feed as configured: ``ANGEL_*`` variables, else ``[angel]`` of the config file.

        Raises an AngelError subclass with one sentence when credentials or the
        instrument master are missing.
        """
        settings = load_settings(instruments=instruments)
        settings.require_credentials()
        return cls(settings, load_master(settings.instruments), **options)

    @property
    def batch_window(self) -> float:
        return self._pool.batch_window

    @property
    def reconnects(self) -> int:
        return self._pool.reconnects

    @property
    def logins(self) -> int:
        """Login attempts, failed ones included."""
        return self._sessions.logins

    @property
    def disconnects(self) -> list[str]:
        """The causes of the latest disconnects of all connections, oldest first."""
        return self._pool.disconnects

    # Feed interface (called from the event loop) ------------------------------------
    def check(self, instrument: Instrument) -> None:
        self.master.resolve(instrument)

    history_intervals = tuple(angel_history.ANGEL_INTERVALS)

    def history(self, instrument: Instrument, interval: Interval, start_ms: int, end_ms: int) -> list[Bar]:
        """Angel's candles (``getCandleData``, oaws.brokers.angel.history), in chunks and paced."""
        try:
            resolved = self.master.resolve(instrument)
        except Rejection as exc:
            raise HistoryError(exc.message) from None
        exchange = next((name for name, kind in SEGMENT_TYPES.items() if kind == resolved.exchange_type), None)
        if exchange is None:
            raise HistoryError(f"Angel One has no candles of {instrument}")
        session = self._sessions.session or self._history_session or self._stored()
        if session is None:
            try:
                session = login(self.settings, self.login_timeout)
            except AngelError as exc:
                raise HistoryError(str(exc)) from None
        self._history_session = session
        from oaws.brokers.angel.smartapi import new_smart_connect

        smart = new_smart_connect(
            api_key=self.settings.api_key, root=self.settings.api_url, timeout=self.login_timeout,
            access_token=session.jwt,
        )  # fmt: skip
        return angel_history.candles(
            smart.getCandleData, (instrument.symbol, instrument.exchange), exchange, resolved.token, interval,
            start_ms, end_ms, pace=self.history_pace, retry_pause=self.history_retry_pause,
        )  # fmt: skip

    #: candle requests per second, and the first pause after a rate refusal (tests make them quick)
    history_pace = angel_history.PACE
    history_retry_pause = angel_history.RETRY_PAUSE
    #: the session ``history`` logged in with while the feed has none (it runs in a worker thread)
    _history_session: Session | None = None

    def want(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        wanted = (instrument, mode, depth)
        if wanted in self._wanted:
            return
        angel = angel_mode(mode, depth)
        if angel is None:
            offered = ", ".join(map(str, self.depths))
            self._reject(instrument, mode, depth, INVALID_DEPTH, f"Angel One offers depth {offered}, not {depth}")
            return
        try:
            resolved = self.master.resolve(instrument)
        except Rejection as exc:
            self._reject(instrument, mode, depth, exc.code, exc.message)
            return
        key = (angel, resolved.exchange_type, resolved.token)
        route = self._routes.get(key)
        if route is None:
            refusal = self._depth_refusal(key)
            if refusal is not None:
                self._reject(instrument, mode, depth, *refusal)
                return
            conn = self._pool.with_room()
            if conn is None:
                capacity = self._pool.capacity
                self._reject(
                    instrument,
                    mode,
                    depth,
                    LIMIT_EXCEEDED,
                    f"Angel One allows {capacity} subscriptions ({len(self._conns)} connections of "
                    f"{self.tokens_per_connection}); all are in use",
                )
                return
            route = self._routes[key] = _Route(conn, resolved.divisor)
            conn.keys.add(key)
            self._pool.flush_soon()
        route.instruments[instrument] = None
        self._wanted[wanted] = key

    def unwant(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        key = self._wanted.pop((instrument, mode, depth), None)
        self._latest.pop((instrument, mode, depth), None)
        if key is None:
            return
        route = self._routes[key]
        route.instruments.pop(instrument, None)
        if not route.instruments:
            del self._routes[key]
            route.conn.keys.discard(key)
            self._pool.flush_soon()

    def resend(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        payload = self._latest.get((instrument, mode, depth))
        if payload is not None:
            self._publish(instrument, mode, depth, payload)

    def status(self) -> dict[str, object]:
        return {
            "adapter_status": self._pool.state(),
            "connections": self._pool.connected,
            "subscriptions": len(self._routes),
            "malformed_frames": self.malformed,
            "unexpected_ticks": self.unexpected,
            "reconnects": self.reconnects,
            "logins": self.logins,
            "last_disconnect": self._pool.last_disconnect,
            "order_status": self._orders_conn.state,
            "order_updates": self.order_updates,
            "malformed_order_frames": self.malformed_orders,
            "order_reconnects": self._orders_conn.reconnects,
        }

    async def run(self) -> None:
        """Keep the connections that hold subscriptions (and the first one) up until cancelled.

        Raises the AngelError that made the feed give up (a refused login or refused fresh tokens).
        """
        await self._pool.run(companions=[("angel-orders", self._keep_orders)])

    # Subscriptions --------------------------------------------------------------------
    def _depth_refusal(self, key: Key) -> tuple[str, str] | None:
        """(code, message) when Angel would refuse a new depth-20 subscription ``key``, else None."""
        if key[0] != wire.DEPTH:
            return None
        if key[1] != wire.NSE_CM:
            return INVALID_DEPTH, "Angel One serves depth 20 for NSE cash only (exchange type 1)"
        if sum(1 for k in self._routes if k[0] == wire.DEPTH) >= self.depth_quota:
            return LIMIT_EXCEEDED, f"Angel One serves depth 20 for {self.depth_quota} instruments at once"
        return None

    def _publish(self, instrument: Instrument, mode: int, depth: int, payload: bytes) -> None:
        if self.publisher is None:
            return
        if depth == DEFAULT_DEPTH:
            self.publisher.publish(instrument, mode, payload)
        else:  # on the depth's own topic, EXCHANGE_SYMBOL_DEPTH_20
            self.publisher.publish(instrument, mode, payload, depth=depth)  # type: ignore[call-arg]

    def _reject(self, instrument: Instrument, mode: int, depth: int, code: str, message: str) -> None:
        log.info("cannot serve %s mode %d depth %d: %s", instrument, mode, depth, message)
        if self.publisher is None:
            return
        if depth == DEFAULT_DEPTH or mode != DEPTH:
            self.publisher.reject(instrument, mode, code, message)
        else:
            self.publisher.reject(instrument, mode, code, message, depth=depth)  # type: ignore[call-arg]

    def _drop_keys(self, keys: Iterable[Key], code: str, message: str) -> None:
        """Angel refused these subscriptions: give them up and tell the clients that wanted them."""
        for key in keys:
            route = self._routes.pop(key, None)
            if route is None:
                continue
            route.conn.forget({key})
            mode, depth = CLIENT_MODE[key[0]], STREAM_DEPTH[key[0]]
            for instrument in route.instruments:
                self._wanted.pop((instrument, mode, depth), None)
                self._latest.pop((instrument, mode, depth), None)
                self._reject(instrument, mode, depth, code, message)

    # Connections and session --------------------------------------------------------------
    async def _keep_orders(self) -> None:
        """Run the order-status connection; its standing down costs the order updates, not the ticks.

        It waits for the tick connection's session first: one login at start, and a refused
        login (fatal to the feed) is not tried a second time from here.
        """
        while self._sessions.session is None:
            await asyncio.sleep(0.05)
        try:
            await self._orders_conn.run()
        except asyncio.CancelledError:
            raise
        except (AngelError, StandDown) as exc:
            order_log.error("Angel order status stopped: %s; ticks go on, order updates do not", exc)
        except Exception:
            order_log.exception("Angel order status failed; ticks go on, order updates do not")

    def _stored(self) -> Session | None:
        stored = load_session(self.settings, self.session_file)
        if stored is not None:
            log.info("using the stored Angel session of %s", stored.client_code)
        return stored

    async def _login(self) -> Session:
        try:
            session = await asyncio.to_thread(login, self.settings, self.login_timeout)
        except AngelUnavailable as exc:
            raise Unavailable(str(exc)) from exc
        log.info("logged in to Angel One as %s", session.client_code)
        if self.store_session:
            try:
                save_session(session, self.session_file)
            except OSError as exc:
                log.warning("cannot store the Angel session: %s", exc.strerror)
        return session
