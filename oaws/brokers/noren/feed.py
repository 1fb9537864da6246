"""A Noren broker's feed (Shoonya, Flattrade...): its JSON WebSocket onto the oaws bus.

What it does:

- Modes: oaws 1 (LTP) and 2 (Quote) are served from a touchline subscription (``t``), 3
  (Depth) from a depth subscription (``d``), as OpenAlgo's Shoonya adapter does. A scrip
  wanted at Depth by anyone is subscribed on ``d`` only, and its depth messages serve its
  LTP and Quote clients too (``d`` carries every touchline field): one subscription a scrip.
  A scrip that gains or loses its Depth client moves between ``t`` and ``d``.
- The merge: Noren acknowledges a subscription with a snapshot (``tk`` / ``dk``) and then
  sends only the fields that changed (``tf`` / ``df``). ``wire.Book`` keeps each scrip's
  merged state and every tick published is built from it, so a field an update left out
  keeps its last value, and a field Noren never sent is left out of the tick, never zero.
- Requests go in batches (``wire.BATCH`` scrips a frame), collected for ``batch_window``.
- Limits (unverified; Noren publishes none): ``SUBSCRIPTIONS`` scrips on each of
  ``CONNECTIONS`` connections (``wire``); a scrip beyond them gets
  LIMIT_EXCEEDED through ``publisher.reject``.
- The connection (``oaws.brokers.connection``): the connect message is the greeting,
  followed by the order-feed subscription (``{"t": "o"}``); the session counts as accepted
  when the ``ck`` (``ak``) says OK, and a ``ck`` that does not raises ``AuthRefused``, so
  that the runner logs in again once (QuickAuth) and a fresh session refused too stops the
  feed with ``NorenSessionExpired``, one sentence. ``{"t": "h"}`` is the heartbeat; the
  runner resubscribes everything after every reconnect (NorenApi does not), backs off with
  jitter, and closes a connection silent during its exchanges' market hours.
- Garbage (not JSON, unknown types, unreadable values) is counted and skipped, logged at
  most once in 10 s; a bad value drops that field only.
- Order updates (``om``) become OpenAlgo's ``order_update`` on the bus.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from oaws.brokers.hours import market_open
from oaws.brokers.noren import wire
from oaws.brokers.noren.errors import NorenError, NorenSessionExpired, NorenUnavailable
from oaws.brokers.noren.master import Master, load_master
from oaws.brokers.noren.session import (
    NorenSession,
    from_access_token,
    has_quickauth,
    load_session,
    quickauth,
    save_session,
)
from oaws.brokers.noren.settings import NorenSettings, load_settings
from oaws.brokers.pool import LOG_EVERY, Pool, Throttle
from oaws.instruments import DEFAULT_DEPTH, DEPTH, Instrument
from oaws.protocol import orders
from oaws.protocol.codes import LIMIT_EXCEEDED
from oaws.ticks import at_mode

log = logging.getLogger(__name__)

Scrip = tuple[str, str]  # (Noren exchange, token)
Key = tuple[str, str, str]  # (wire.TOUCHLINE | wire.DEPTH, exchange, token)

#: Noren's order statuses (lower case, ``_`` as a space) -> OpenAlgo's ``order_status`` (its Shoonya adapter's map)
ORDER_STATUS = {
    "complete": orders.COMPLETE,
    "executed": orders.COMPLETE,
    "open": orders.OPEN,
    "new": orders.OPEN,
    "replaced": orders.OPEN,
    "pending": orders.OPEN,
    "open pending": orders.OPEN,
    "modify pending": orders.OPEN,
    "cancel pending": orders.OPEN,
    "after market order req received": orders.OPEN,
    "trigger pending": orders.TRIGGER_PENDING,
    "rejected": orders.REJECTED,
    "reject": orders.REJECTED,
    "canceled": orders.CANCELLED,
    "cancelled": orders.CANCELLED,
}
#: used when ``status`` says nothing known: Noren's ``reporttype`` of a final event
REPORT_STATUS = {"rejected": orders.REJECTED, "canceled": orders.CANCELLED, "cancelled": orders.CANCELLED}
PRICE_TYPES = {"LMT": "LIMIT", "MKT": "MARKET", "SL-LMT": "SL", "SL-MKT": "SL-M"}
PRODUCTS = {"C": "CNC", "M": "NRML", "I": "MIS", "H": "MIS", "B": "MIS"}
ACTIONS = {"B": "BUY", "S": "SELL"}


def _number(value: Any, kind: type = float) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return kind(0)
    return kind(number) if number == number and abs(number) < 1e15 else kind(0)


def order_message(body: dict[str, Any], master: Master | None, broker: str, user_id: str) -> dict[str, Any] | None:
    """OpenAlgo's ``order_update`` for Noren's ``om`` message; None when it names no order."""
    orderid = body.get("norenordno") or body.get("norenoordno")
    exchange, tsym = str(body.get("exch") or ""), str(body.get("tsym") or "")
    if not isinstance(orderid, str) or not orderid or not exchange or not tsym:
        return None
    instrument = None
    if master is not None:
        token = body.get("token") or body.get("tk")
        if isinstance(token, str):
            instrument = master.instrument_of(exchange, token)
        instrument = instrument or master.instrument_of_tsym(exchange, tsym)
    if instrument is None:
        base, _, series = tsym.rpartition("-")
        instrument = Instrument(base if exchange == "NSE" and series == "EQ" else tsym, exchange)
    status_text = str(body.get("status") or "").strip().lower().replace("_", " ")
    status = ORDER_STATUS.get(status_text) or REPORT_STATUS.get(str(body.get("reporttype") or "").strip().lower())
    status = status or status_text or orders.OPEN
    quantity = _number(body.get("qty"), int)
    message = orders.order_update(
        user_id=user_id,
        broker=broker,
        orderid=orderid,
        instrument=instrument,
        action=ACTIONS.get(str(body.get("trantype")), str(body.get("trantype") or "")),
        quantity=quantity,
        price=_number(body.get("prc")),
        pricetype=PRICE_TYPES.get(str(body.get("prctyp")), str(body.get("prctyp") or "")),
        product=PRODUCTS.get(str(body.get("prd")), str(body.get("prd") or "")),
        order_status=status,
        filled_quantity=_number(body.get("fillshares"), int),
        average_price=_number(body.get("avgprc")),
        rejection_reason=str(body.get("rejreason") or "") if status == orders.REJECTED else "",
        trigger_price=_number(body.get("trgprc")),
    )
    message["pending_quantity"] = max(message["pending_quantity"], 0)
    return message


@dataclass(eq=False)
class _Route:
    """A scrip: where it is subscribed, and who wants it at which modes."""

    conn: Connection[Key, NorenSession]
    wanted: dict[tuple[Instrument, int], None] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return wire.DEPTH if any(mode == DEPTH for _, mode in self.wanted) else wire.TOUCHLINE


class _NorenLink(BrokerLink[Key, NorenSession]):
    """Noren's side of one feed connection: the connect greeting, requests, frames."""

    heartbeat = wire.HEARTBEAT_MESSAGE

    def __init__(self, feed: NorenFeed, index: int) -> None:
        self.feed = feed
        self.index = index
        self.name = feed.title

    def endpoint(self, session: NorenSession | None) -> Endpoint:
        return Endpoint(self.feed.settings.feed_url, {})

    def greeting(self, session: NorenSession | None) -> list[Message]:
        assert session is not None, "Noren's feed always runs with a session"
        if session.kind == "access_token":
            connect = wire.connect_access(session.user_id, session.token)
        else:
            connect = wire.connect(session.user_id, session.token)
        greeting: list[Message] = [connect]
        if self.index == 0 and self.feed.order_updates_wanted:
            greeting.append(wire.subscribe_orders(session.user_id))
        return greeting

    def subscribe(self, keys: set[Key]) -> list[Message]:
        return self._requests(keys, wire.subscribe)

    def unsubscribe(self, keys: set[Key]) -> list[Message]:
        return self._requests(keys, wire.unsubscribe)

    def _requests(self, keys: set[Key], make: Callable[[str, Iterable[Scrip], int], list[str]]) -> list[Message]:
        messages: list[Message] = []
        for kind in (wire.TOUCHLINE, wire.DEPTH):
            scrips = [(e, tk) for k, e, tk in keys if k == kind]
            if scrips:
                messages.extend(make(kind, scrips, self.feed.batch))
        return messages

    def market_open(self, keys: set[Key]) -> bool:
        return self.feed.market_hours({exchange for _, exchange, _ in keys})

    def on_frame(self, frame: Message) -> Key | None:
        feed = self.feed
        try:
            message = wire.parse(frame)
        except wire.Malformed as exc:
            feed._garbage(f"skipped a malformed frame ({exc})")
            return None
        t = message.t
        if t in (wire.CONNECT_ACK, wire.OAUTH_ACK):
            if not message.ok:
                raise AuthRefused(message.reason)
            feed.connected_acks += 1
            return None
        if t in wire.MARKET:
            return feed._on_market(message)
        if t == wire.ORDER_UPDATE:
            feed._on_order(message.raw)
        return None


class NorenFeed(Feed):
    """Ticks and order updates from a Noren broker's feed (see the module docstring)."""

    depths = (DEFAULT_DEPTH,)
    orders = True

    def __init__(
        self,
        settings: NorenSettings,
        master: Master,
        *,
        batch_window: float = 0.1,
        batch: int = wire.BATCH,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        stable_after: float = 30.0,
        silence_timeout: float = 30.0,
        heartbeat_interval: float = 10.0,
        open_timeout: float = 10.0,
        login_timeout: float = 15.0,
        max_connections: int | None = None,
        subscriptions_per_connection: int | None = None,
        market_hours: Callable[[Iterable[str]], bool] = market_open,
        session_file: Path | None = None,
        store_session: bool = True,
        order_updates: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        settings.require("user_id", what=f"{settings.host.title}'s feed")
        try:
            parse_uri(settings.feed_url)
        except InvalidURI:
            raise NorenError(
                f"the {settings.host.title} feed address {settings.feed_url!r} is not a ws:// or wss:// URL "
                f"(check {settings.env('feed_url')})"
            ) from None
        self.name = settings.host.name
        self.title = settings.host.title
        self.settings = settings
        self.master = master
        self.batch = batch
        self.login_timeout = login_timeout
        self.per_connection = subscriptions_per_connection or wire.SUBSCRIPTIONS
        self.market_hours = market_hours
        self.session_file = session_file
        self.store_session = store_session
        self.order_updates_wanted = order_updates
        rng = rng or random.Random()
        self._sessions: Sessions[NorenSession] = Sessions(
            self.title,
            self._login,
            stored=self._stored if store_session and not settings.access_token else None,
            expired=lambda session: session.expired(),
            refused_fresh=self._refused_fresh,
            credentials="session",
            log=log,
        )
        self._conns: list[Connection[Key, NorenSession]] = [
            Connection(
                _NorenLink(self, index),
                label=f"{self.title} feed connection {index}",
                sessions=self._sessions,
                backoff=Backoff(backoff_base, backoff_cap, rng=rng),
                stable_after=stable_after,
                silence_timeout=silence_timeout,
                heartbeat_interval=heartbeat_interval,
                open_timeout=open_timeout,
                log=log,
            )
            for index in range(max_connections or wire.CONNECTIONS)
        ]
        self.book = wire.Book()
        self._routes: dict[Scrip, _Route] = {}
        self._latest: dict[tuple[Instrument, int], bytes] = {}
        self._pool = Pool(
            self._conns,
            name=self.name,
            per_connection=self.per_connection,
            batch_window=batch_window,
            expected=NorenError,
            log=log,
        )
        self._throttle = Throttle(LOG_EVERY)
        # figures for status() and tests
        self.malformed = 0
        self.bad_fields = 0
        self.unexpected = 0
        self.order_updates = 0
        self.connected_acks = 0

    @classmethod
    def from_settings(cls, name: str, instruments: str | None = None, **options: Any) -> NorenFeed:
        """The feed of the Noren broker ``name`` as configured; a NorenError (one sentence) when it cannot be."""
        settings = load_settings(name, instruments=instruments)
        settings.require("user_id", what=f"{settings.host.title}'s feed")
        if not settings.access_token and not has_quickauth(settings) and load_session(settings) is None:
            if "quickauth" in settings.host.logins and "oauth" not in settings.host.logins:
                settings.require("password", "totp_secret", "vendor_code", "api_secret")
            quick = "set the QuickAuth settings, or " if "quickauth" in settings.host.logins else ""
            raise NorenSessionExpired(
                f"no {settings.host.title} session: {quick}set {settings.env('access_token')}, "
                f"or run `oaws login {name}`"
            )
        return cls(settings, load_master(name, settings.instruments), **options)

    # Figures -------------------------------------------------------------------------------
    @property
    def logins(self) -> int:
        return self._sessions.logins

    @property
    def batch_window(self) -> float:
        return self._pool.batch_window

    @property
    def reconnects(self) -> int:
        return self._pool.reconnects

    @property
    def disconnects(self) -> list[str]:
        return self._pool.disconnects

    def status(self) -> dict[str, object]:
        return {
            "adapter_status": self._pool.state(),
            "connections": self._pool.connected,
            "subscriptions": len(self._routes),
            "depth_subscriptions": sum(1 for r in self._routes.values() if r.kind == wire.DEPTH),
            "malformed_frames": self.malformed,
            "bad_fields": self.bad_fields,
            "unexpected_ticks": self.unexpected,
            "reconnects": self.reconnects,
            "logins": self.logins,
            "last_disconnect": self._pool.last_disconnect,
            "order_updates": self.order_updates,
        }

    # Feed interface ---------------------------------------------------------------------------
    def check(self, instrument: Instrument) -> None:
        self.master.resolve(instrument)

    def want(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        try:
            resolved = self.master.resolve(instrument)
        except Rejection as exc:
            self._reject(instrument, mode, exc.code, exc.message)
            return
        scrip = (resolved.exchange, resolved.token)
        route = self._routes.get(scrip)
        if route is None:
            conn = self._pool.with_room()
            if conn is None:
                capacity = self._pool.capacity
                self._reject(
                    instrument,
                    mode,
                    LIMIT_EXCEEDED,
                    f"{self.title} is taken to allow {capacity} scrips ({len(self._conns)} connection(s) of "
                    f"{self.per_connection}); all are in use",
                )
                return
            route = self._routes[scrip] = _Route(conn)
        before = route.kind if route.wanted else None
        route.wanted[(instrument, mode)] = None
        self._set_key(route, scrip, before)
        if before is not None and (before == route.kind):
            self._publish_state(scrip, route, only=(instrument, mode))

    def unwant(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        self._latest.pop((instrument, mode), None)
        try:
            resolved = self.master.resolve(instrument)
        except Rejection:
            return
        scrip = (resolved.exchange, resolved.token)
        route = self._routes.get(scrip)
        if route is None or (instrument, mode) not in route.wanted:
            return
        before = route.kind
        del route.wanted[(instrument, mode)]
        if not route.wanted:
            del self._routes[scrip]
            route.conn.keys.discard((before, *scrip))
            self.book.forget(scrip)
            self._pool.flush_soon()
            return
        self._set_key(route, scrip, before)

    def resend(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        payload = self._latest.get((instrument, mode))
        if payload is not None and self.publisher is not None:
            self.publisher.publish(instrument, mode, payload)

    async def run(self) -> None:
        """Keep the connections that hold subscriptions (and the first) up; raises the NorenError that stopped it."""
        await self._pool.run()

    # Subscriptions -----------------------------------------------------------------------------
    def _set_key(self, route: _Route, scrip: Scrip, before: str | None) -> None:
        kind = route.kind
        if before == kind:
            return
        if before is not None:
            route.conn.keys.discard((before, *scrip))
        route.conn.keys.add((kind, *scrip))
        self._pool.flush_soon()

    def _reject(self, instrument: Instrument, mode: int, code: str, message: str) -> None:
        log.info("cannot serve %s mode %d: %s", instrument, mode, message)
        if self.publisher is not None:
            self.publisher.reject(instrument, mode, code, message)

    # Frames ----------------------------------------------------------------------------------------
    def _garbage(self, what: str) -> None:
        self.malformed += 1
        if self._throttle.ready():
            log.warning("%s feed: %s; %d so far", self.title, what, self.malformed)

    def _on_market(self, message: wire.Message) -> Key | None:
        if message.bad_fields:
            self.bad_fields += message.bad_fields
            if self._throttle.ready():
                log.warning(
                    "%s feed: dropped %d unreadable field(s) of a %s message", self.title, message.bad_fields, message.t
                )
        scrip = message.key
        key = (wire.KIND_OF[message.t], *scrip)
        route = self._routes.get(scrip)
        if route is None:
            self.unexpected += 1  # unsubscribed a moment ago
            return key
        if message.t in wire.SNAPSHOTS and wire.KIND_OF[message.t] != route.kind:
            return key  # the other kind's last snapshot while moving between t and d: not the state
        self.book.apply(message)
        self._publish_state(scrip, route)
        return key

    def _publish_state(self, scrip: Scrip, route: _Route, only: tuple[Instrument, int] | None = None) -> None:
        state = self.book.get(scrip)
        if state is None or self.publisher is None:
            return
        received = int(time.time() * 1000)
        depth = route.kind == wire.DEPTH
        full: dict[Instrument, dict[str, Any]] = {}
        for instrument, mode in [only] if only is not None else list(route.wanted):
            if mode == DEPTH and not depth:
                continue
            tick = full.get(instrument)
            if tick is None:
                tick = full[instrument] = wire.tick(
                    state, instrument.symbol, instrument.exchange, received, depth=depth
                )
            payload = orjson.dumps(at_mode(tick, mode))
            self._latest[(instrument, mode)] = payload
            self.publisher.publish(instrument, mode, payload)

    def _on_order(self, body: dict[str, Any]) -> None:
        user = str(self.settings.user_id or "")
        try:
            message = order_message(body, self.master, self.name, user)
        except (TypeError, ValueError) as exc:
            self._garbage(f"skipped an unreadable order update ({exc.__class__.__name__})")
            return
        if message is None:
            self._garbage("skipped an order update without its order")
            return
        self.order_updates += 1
        if self.publisher is not None:
            self.publisher.publish_order(user, orjson.dumps(message))

    # Connections and session ---------------------------------------------------------------------
    def _refused_fresh(self, reason: str) -> Exception:
        session = self._sessions.session
        if session is not None and session.source == "env":
            what = f"{self.settings.env('access_token')}"
            return NorenSessionExpired(
                f"{self.title} refused the session of {what} ({reason}); "
                f"set a fresh one or run `oaws login {self.name}`"
            )
        return NorenSessionExpired(
            f"{self.title} refused the feed session even right after a fresh login ({reason}); "
            f"run `oaws login {self.name}` and check {self.settings.env('user_id')}"
        )

    def _stored(self) -> NorenSession | None:
        stored = load_session(self.settings, self.session_file)
        if stored is not None:
            log.info("using the stored %s session of %s", self.title, stored.user_id)
        return stored

    async def _login(self) -> NorenSession:
        env = from_access_token(self.settings)
        if env is not None:
            return env
        if not has_quickauth(self.settings):
            raise NorenSessionExpired(
                f"{self.title} no longer accepts the stored session, and a new one needs its login page: "
                f"run `oaws login {self.name}`"
            )
        try:
            session = await asyncio.to_thread(quickauth, self.settings, self.login_timeout)
        except NorenUnavailable as exc:
            raise Unavailable(str(exc)) from exc
        log.info("logged in to %s as %s", self.title, session.user_id)
        if self.store_session:
            try:
                save_session(session, self.session_file)
            except OSError as exc:
                log.warning("cannot store the %s session: %s", self.title, exc.strerror)
        return session
