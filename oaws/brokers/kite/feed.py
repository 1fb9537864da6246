"""The Zerodha Kite feed: Kite Connect's binary ticker onto the oaws bus.

Kite's ticker is spoken directly with ``websockets`` on the bus's event loop (not through
kiteconnect's ``KiteTicker``, which runs Twisted in a thread of its own and raises
``struct.error`` on a short packet); ``wire`` decodes, ``ticks`` names the fields.

What the feed does:

- Subscriptions follow the bus: ``want`` / ``unwant`` change the desired set at once, and
  a flush ``batch_window`` later tells Kite the difference, ``SUBSCRIBE_BATCH`` tokens a
  message (``{"a": "subscribe"}`` then ``{"a": "mode"}``: subscribing alone puts a token in
  quote mode). oaws mode 1 is Kite's ``ltp``, 2 ``quote``, 3 ``full``; a token is
  subscribed at the highest mode wanted of it and every wanted mode is published from its
  packets. A change of that mode subscribes the token again at the new mode.
- Limits: ``TOKENS_PER_CONNECTION`` tokens on each of ``CONNECTIONS`` connections per API
  key (3000 and 3, Kite's documented figures); a new token goes on the first connection
  with room, the second and third connections open only when needed, and past them the
  client gets LIMIT_EXCEEDED.
- Garbage (a message whose framing does not add up, a packet of an unknown size, a text
  frame that is none of Kite's three kinds) is counted, logged at most every 10 s, and
  skipped; the connection stays. Heartbeats (one-byte messages) are counted, not data.
- Order updates (``{"type": "order"}`` text frames) go to ``publisher.publish_order`` as
  OpenAlgo's ``order_update``, Kite's statuses mapped as OpenAlgo's Zerodha adapter maps them.
- Keeping each connection up is ``oaws.brokers.connection``'s job: backoff, resubscription,
  the market-hours silence watchdog, one log line per disconnect (URLs without their query:
  the access token is there). A refused access token (HTTP 403 at the handshake) is read
  again once (``oaws login kite`` may have stored a new one meanwhile); refused again, the
  feed stops with ``KiteTokenExpired``, one sentence, instead of reconnecting.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
from websockets.exceptions import InvalidURI
from websockets.http11 import Response
from websockets.uri import parse_uri

from oaws.brokers.api import Feed, Rejection
from oaws.brokers.connection import Backoff, BrokerLink, Connection, Endpoint, Message, Sessions
from oaws.brokers.hours import market_open
from oaws.brokers.kite import session as kite_session
from oaws.brokers.kite import wire
from oaws.brokers.kite.errors import LOGIN_AGAIN, KiteCredentialsMissing, KiteError, KiteTokenExpired
from oaws.brokers.kite.master import Master, load_master
from oaws.brokers.kite.session import KiteSession, current_session
from oaws.brokers.kite.settings import KiteSettings, load_settings
from oaws.brokers.kite.ticks import CLIENT_MODE, KITE_MODE, cut, kite_mode, tick
from oaws.brokers.pool import LOG_EVERY, Pool, Throttle
from oaws.instruments import DEFAULT_DEPTH, Instrument, InstrumentError, make, parse
from oaws.protocol.codes import LIMIT_EXCEEDED
from oaws.protocol.orders import CANCELLED, COMPLETE, OPEN, REJECTED, TRIGGER_PENDING, order_update

log = logging.getLogger(__name__)

#: tokens per subscribe / mode / unsubscribe message: OpenAlgo's Kite client's figure (200), which
#: keeps a message near 2 KB; Kite documents no cap per message, only 3000 per connection
SUBSCRIBE_BATCH = 200

#: Kite's order statuses -> OpenAlgo's ``order_status`` (its Zerodha order adapter's table)
ORDER_STATUS = {
    "COMPLETE": COMPLETE,
    "REJECTED": REJECTED,
    "CANCELLED": CANCELLED,
    "OPEN": OPEN,
    "UPDATE": OPEN,
    "TRIGGER PENDING": TRIGGER_PENDING,
    "VALIDATION PENDING": OPEN,
    "PUT ORDER REQ RECEIVED": OPEN,
    "OPEN PENDING": OPEN,
    "MODIFY VALIDATION PENDING": OPEN,
    "MODIFY PENDING": OPEN,
    "MODIFIED": OPEN,
    "CANCEL PENDING": OPEN,
    "AMO REQ RECEIVED": OPEN,
}

Wanted = tuple[Instrument, int]  # (instrument, oaws mode)

#: oaws exchanges whose market hours are another's (``oaws.brokers.hours`` knows the trading exchanges)
HOURS_OF = {"NSE_INDEX": "NSE", "BSE_INDEX": "BSE", "MCX_INDEX": "MCX", "BCD": "CDS"}


@dataclass(eq=False)
class _Route:
    """A token: the connection it is on, the Kite mode it is subscribed at, who wants it at which mode."""

    conn: Connection[int, KiteSession]
    mode: str
    #: the exchange whose market hours the token trades in
    exchange: str
    wanted: dict[Wanted, None] = field(default_factory=dict)


def _chunks(tokens: list[int]) -> Iterable[list[int]]:
    for at in range(0, len(tokens), SUBSCRIBE_BATCH):
        yield tokens[at : at + SUBSCRIBE_BATCH]


class _KiteLink(BrokerLink[int, KiteSession]):
    """Kite's side of one ticker connection: the URL, subscribe and mode messages, frames."""

    name = "Kite"
    heartbeat = None  # Kite sends one-byte heartbeats itself; WebSocket pings tell a dead link

    def __init__(self, feed: KiteFeed, index: int) -> None:
        self.feed = feed
        self.index = index

    def endpoint(self, session: KiteSession | None) -> Endpoint:
        assert session is not None, "Kite's ticker always runs with an access token"
        url = self.feed.settings.feed_url
        query = urlencode({"api_key": session.api_key, "access_token": session.access_token})
        return Endpoint(f"{url}{'&' if '?' in url else '?'}{query}")

    def refusal_reason(self, response: Response) -> str:
        """Kite's own message from the body of the refusal when it sends JSON, else the HTTP reason."""
        try:
            body = orjson.loads(response.body or b"")
        except orjson.JSONDecodeError:
            return response.reason_phrase
        if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
            kind = body.get("error_type")
            return f"{body['message'][:200]}{f', {kind}' if isinstance(kind, str) else ''}"
        return response.reason_phrase

    def subscribe(self, keys: set[int]) -> list[Message]:
        routes = self.feed._routes
        messages: list[Message] = []
        for chunk in _chunks(sorted(keys)):
            messages.append(wire.subscribe(chunk).decode())
            modes: dict[str, list[int]] = {}
            for token in chunk:
                route = routes.get(token)
                modes.setdefault(route.mode if route is not None else wire.QUOTE, []).append(token)
            messages.extend(wire.set_mode(mode, tokens).decode() for mode, tokens in sorted(modes.items()))
        return messages

    def unsubscribe(self, keys: set[int]) -> list[Message]:
        return [wire.unsubscribe(chunk).decode() for chunk in _chunks(sorted(keys))]

    def market_open(self, keys: set[int]) -> bool:
        routes = self.feed._routes
        return self.feed.market_hours({routes[t].exchange for t in keys if t in routes})

    def on_frame(self, frame: Message) -> int | None:
        if isinstance(frame, str):
            self.feed._on_text(frame)
            return None
        if wire.is_heartbeat(frame):
            self.feed.heartbeats += 1
            return None
        return self.feed._on_binary(frame, self.index)


class KiteFeed(Feed):
    """Ticks from Kite Connect's ticker (see the module docstring)."""

    name = "kite"
    depths = (DEFAULT_DEPTH,)
    orders = True

    def __init__(
        self,
        settings: KiteSettings,
        master: Master,
        *,
        batch_window: float = 0.1,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        stable_after: float = 30.0,
        silence_timeout: float = 30.0,
        heartbeat_interval: float = 10.0,
        open_timeout: float = 10.0,
        max_connections: int = 3,
        tokens_per_connection: int = 3000,
        market_hours: Callable[[Iterable[str]], bool] = market_open,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        settings.require("api_key")
        try:
            parse_uri(settings.feed_url)
        except InvalidURI:
            raise KiteError(
                f"the Kite feed URL {settings.feed_url!r} is not a ws:// or wss:// URL (check KITE_FEED_URL)"
            ) from None
        self.settings = settings
        self.master = master
        self.market_hours = market_hours
        #: Kite's documented limits, as the plugin declares them (``oaws.brokers.kite``, which passes its own)
        self.tokens_per_connection = tokens_per_connection
        rng = rng or random.Random()
        self._sessions: Sessions[KiteSession] = Sessions(
            "Kite",
            self._login,
            stored=self._stored,
            expired=kite_session.expired,
            refused_fresh=lambda reason: KiteTokenExpired(f"Kite refused the access token ({reason}); {LOGIN_AGAIN}"),
            credentials="access token",
            refreshing="reading it again (a new `oaws login kite` is picked up)",
            refreshed="read it again",
            log=log,
        )
        self._conns: list[Connection[int, KiteSession]] = [
            Connection(
                _KiteLink(self, index),
                label=f"Kite feed connection {index}",
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
        self._pool = Pool(
            self._conns,
            name="kite",
            per_connection=tokens_per_connection,
            batch_window=batch_window,
            expected=KiteError,
            log=log,
            before_sync=self._resubscribe_remoded,
        )
        self._routes: dict[int, _Route] = {}
        self._wanted: dict[Wanted, int] = {}
        self._latest: dict[Wanted, bytes] = {}
        #: tokens whose Kite mode changed since the last flush: subscribed again at the new one
        self._remode: set[int] = set()
        self._throttle = Throttle(LOG_EVERY)
        # figures for status() and tests
        self.bad_frames = 0
        self.bad_text = 0
        self.heartbeats = 0
        self.unexpected = 0
        self.errors = 0
        self.order_updates = 0

    @classmethod
    def from_settings(cls, instruments: str | None = None, **options: Any) -> KiteFeed:
        """The feed as configured: ``KITE_*`` variables, else ``[kite]`` of the config file.

        Raises a KiteError subclass with one sentence when the API key, an access token or
        the instrument master is missing.
        """
        settings = load_settings(instruments=instruments)
        settings.require("api_key")
        if current_session(settings) is None:
            raise KiteCredentialsMissing(
                f"no current Kite access token (none stored, or it ended at 06:00 IST): {LOGIN_AGAIN}, "
                "or set KITE_ACCESS_TOKEN"
            )
        return cls(settings, load_master(settings.instruments), **options)

    @property
    def batch_window(self) -> float:
        return self._pool.batch_window

    @property
    def reconnects(self) -> int:
        return self._pool.reconnects

    @property
    def disconnects(self) -> list[str]:
        """The causes of the latest disconnects of all connections, oldest first."""
        return self._pool.disconnects

    # Feed interface (called from the event loop) ------------------------------------
    def check(self, instrument: Instrument) -> None:
        self.master.resolve(instrument)

    def want(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        wanted = (instrument, mode)
        if wanted in self._wanted or mode not in KITE_MODE:
            return
        try:
            token = self.master.resolve(instrument).token
        except Rejection as exc:
            self._reject(instrument, mode, exc.code, exc.message)
            return
        route = self._routes.get(token)
        if route is None:
            conn = self._pool.with_room()
            if conn is None:
                capacity = self._pool.capacity
                self._reject(
                    instrument,
                    mode,
                    LIMIT_EXCEEDED,
                    f"Kite allows {capacity} instruments ({len(self._conns)} connections of "
                    f"{self.tokens_per_connection} per API key); all are in use",
                )
                return
            hours = HOURS_OF.get(instrument.exchange, instrument.exchange)
            route = self._routes[token] = _Route(conn, KITE_MODE[mode], hours)
            conn.keys.add(token)
            self._pool.flush_soon()
        route.wanted[wanted] = None
        self._wanted[wanted] = token
        self._set_mode(token, route)

    def unwant(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        token = self._wanted.pop((instrument, mode), None)
        self._latest.pop((instrument, mode), None)
        if token is None:
            return
        route = self._routes[token]
        route.wanted.pop((instrument, mode), None)
        if route.wanted:
            self._set_mode(token, route)
            return
        del self._routes[token]
        self._remode.discard(token)
        route.conn.keys.discard(token)
        self._pool.flush_soon()

    def resend(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        payload = self._latest.get((instrument, mode))
        if payload is not None and self.publisher is not None:
            self.publisher.publish(instrument, mode, payload)

    def status(self) -> dict[str, object]:
        return {
            "adapter_status": self._pool.state(),
            "connections": self._pool.connected,
            "tokens": len(self._routes),
            "subscriptions": len(self._wanted),
            "bad_frames": self.bad_frames,
            "bad_text_frames": self.bad_text,
            "heartbeats": self.heartbeats,
            "unexpected_ticks": self.unexpected,
            "kite_errors": self.errors,
            "order_updates": self.order_updates,
            "reconnects": self.reconnects,
            "last_disconnect": self._pool.last_disconnect,
        }

    async def run(self) -> None:
        """Keep the connections that hold tokens (and the first one) up until cancelled.

        Raises the KiteError that made the feed give up (an access token Kite refused).
        """
        await self._pool.run()

    # Frames --------------------------------------------------------------------------
    def _on_binary(self, frame: bytes, index: int) -> int | None:
        packets, bad = wire.decode(frame)
        if bad:
            self.bad_frames += bad
            self._bounded(
                "binary",
                "Kite feed connection %d: skipped %d malformed packet(s) of a %d-byte message; %d so far",
                index,
                bad,
                len(frame),
                self.bad_frames,
            )
        received = int(time.time() * 1000)
        key: int | None = None
        for packet in packets:
            route = self._routes.get(packet.token)
            key = packet.token
            if route is None or self.publisher is None:
                self.unexpected += 1  # unsubscribed a moment ago
                continue
            top = CLIENT_MODE[packet.mode]
            full: dict[Instrument, dict[str, Any]] = {}
            for instrument, mode in route.wanted:
                if mode > top:
                    continue  # a packet of a lower mode than wanted (just subscribed, not yet at its mode)
                base = full.get(instrument)
                if base is None:
                    base = full[instrument] = tick(packet, instrument.symbol, instrument.exchange, received)
                payload = orjson.dumps(cut(base, mode) if mode < top else base)
                self._latest[(instrument, mode)] = payload
                self.publisher.publish(instrument, mode, payload)
        return key

    def _on_text(self, text: str) -> None:
        message = wire.parse_text(text)
        if message is None:
            self.bad_text += 1
            self._bounded(
                "text", "Kite feed: skipped a text frame that is not Kite's (%.60r); %d so far", text, self.bad_text
            )
        elif message.type == wire.ORDER:
            assert isinstance(message.data, dict)
            self._on_order(message.data)
        elif message.type == wire.ERROR:
            self.errors += 1
            self._bounded("error", "Kite sent an error: %.200s", str(message.data))
        else:
            self._bounded("message", "Kite says: %.200s", str(message.data), level=logging.INFO)

    def _on_order(self, data: dict[str, Any]) -> None:
        update = self._order_update(data)
        if update is None:
            self.bad_text += 1
            self._bounded("order", "Kite feed: skipped an order update without an order id or instrument")
            return
        self.order_updates += 1
        if self.publisher is not None:
            self.publisher.publish_order(update["user_id"], orjson.dumps(update))

    def _order_update(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """OpenAlgo's ``order_update`` of a Kite order (its postback's fields); None when it names no order."""
        orderid = str(data.get("order_id") or "")
        instrument = self._order_instrument(data)
        if not orderid or instrument is None:
            return None
        raw_status = str(data.get("status") or "").upper()
        status = ORDER_STATUS.get(raw_status, OPEN)
        session = self._sessions.session
        try:
            quantity = int(data.get("quantity") or 0)
            filled = int(data.get("filled_quantity") or 0)
            price, trigger, average = (float(data.get(k) or 0) for k in ("price", "trigger_price", "average_price"))
        except (TypeError, ValueError):
            return None
        update = order_update(
            user_id=str(data.get("user_id") or (session.user_id if session is not None else "")),
            broker=self.name,
            orderid=orderid,
            instrument=instrument,
            action=str(data.get("transaction_type") or "").upper(),
            quantity=quantity,
            price=price,
            pricetype=str(data.get("order_type") or "").upper(),
            product=str(data.get("product") or "").upper(),
            order_status=status,
            filled_quantity=filled,
            average_price=average,
            rejection_reason=str(data.get("status_message") or "") if status == REJECTED else "",
            trigger_price=trigger,
        )
        pending = data.get("pending_quantity")
        if isinstance(pending, int) and status not in (COMPLETE, REJECTED, CANCELLED):
            update["pending_quantity"] = pending
        update["kite_status"] = raw_status
        return update

    def _order_instrument(self, data: dict[str, Any]) -> Instrument | None:
        token = data.get("instrument_token")
        if isinstance(token, int):
            name = self.master.instrument_of(token)
            if name is not None:
                try:
                    return parse(name)
                except InstrumentError:
                    pass
        try:
            return make(str(data.get("tradingsymbol") or ""), str(data.get("exchange") or "").upper())
        except InstrumentError:
            return None

    def _bounded(self, kind: str, message: str, *args: object, level: int = logging.WARNING) -> None:
        """Log ``message`` unless one of ``kind`` was logged in the last ``LOG_EVERY`` seconds."""
        if self._throttle.ready(kind):
            log.log(level, message, *args)

    # Subscriptions --------------------------------------------------------------------
    def _set_mode(self, token: int, route: _Route) -> None:
        mode = kite_mode(m for _, m in route.wanted)
        if mode != route.mode:
            route.mode = mode
            self._remode.add(token)
            self._pool.flush_soon()

    def _reject(self, instrument: Instrument, mode: int, code: str, message: str) -> None:
        log.info("cannot serve %s mode %d: %s", instrument, mode, message)
        if self.publisher is not None:
            self.publisher.reject(instrument, mode, code, message)

    def _resubscribe_remoded(self) -> None:
        """At a flush: the tokens whose Kite mode changed are subscribed again (the socket holds the old mode)."""
        remode, self._remode = self._remode, set()
        for token in remode:
            route = self._routes.get(token)
            if route is not None:
                route.conn.sent.discard(token)

    # Connections and session --------------------------------------------------------------
    def _stored(self) -> KiteSession | None:
        return current_session(self.settings)

    async def _login(self) -> KiteSession:
        """No login the feed could do: the access token read again (``oaws login kite`` may have renewed it)."""
        session = await asyncio.to_thread(current_session, self.settings)
        if session is None:
            raise KiteTokenExpired(f"the Kite access token has ended (at 06:00 IST); {LOGIN_AGAIN}")
        return session
