"""The client half of the client protocol (SPEC §1), without I/O: requests out, events in.

A ``ClientProtocol`` holds what a client wants (several modes per instrument) and the state
of one connection. The caller owns the socket: it calls ``connection_made`` once a
WebSocket is open, sends what ``requests_to_send`` returns, passes every frame it receives
to ``receive`` and gets typed events back, and calls ``connection_lost`` when the socket
goes. After every (re)connection the protocol asks for authentication first when it has an
API key, and once that succeeds resubscribes everything it holds, grouped by mode.

It relies only on what OpenAlgo's server sends too (``type``, ``symbol``, ``exchange``,
``mode``, ``data``, ``status``, ``code``, ``message``; never ``topic``), whose errors carry no
``type`` and whose unsubscribe reply lists ``successful`` and ``failed`` entries. Every
request says its mode explicitly, per entry for unsubscribe, because OpenAlgo takes a
missing mode for Quote.

``oaws.client.Client`` runs it over asyncio and websockets; ``oaws record`` and the watch
screen use that client, and the tests drive this class with frames alone.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from oaws.instruments import DEFAULT_DEPTH, DEPTH, MODES, Instrument, InstrumentError, make, parse_mode
from oaws.protocol.codes import (
    AUTHENTICATION_ERROR,
    CLOSE_NOT_AUTHENTICATED,
    FEED_ENDED,
    FEED_LIVE,
    FEED_NONE,
    JSON,
    NOT_AUTHENTICATED,
)

#: instruments in one subscribe or unsubscribe request. Neither oaws nor OpenAlgo caps a
#: request, but their frames are limited (1 MiB): 500 entries stay far below, at ~30 KiB
CHUNK = 500
#: seconds a client waits for the answer to ``authenticate`` by default: OpenAlgo answers only
#: once it has set up the user's broker session, which takes some brokers' adapters 15 s
AUTH_TIMEOUT = 30.0
#: error codes after which retrying cannot help: the server wants a key, or refused ours
FATAL_CODES = frozenset({NOT_AUTHENTICATED, AUTHENTICATION_ERROR})


def fatal_close(code: int | None) -> bool:
    """Whether a connection closed with ``code`` must not be retried: reconnecting would be
    refused the same way (4401, the close of a server that gave up waiting for
    authentication: oaws's and OpenAlgo's, whose reason is ``auth timeout``)."""
    return code == CLOSE_NOT_AUTHENTICATED


def describe_error(message: str, instrument: Instrument | None = None) -> str:
    """``INSTRUMENT: message``, or the message alone when it already starts with the instrument."""
    return message if instrument is None or message.startswith(str(instrument)) else f"{instrument}: {message}"


# Events ------------------------------------------------------------------------------
@dataclass(slots=True)
class Tick:
    """One ``market_data`` message: an instrument's tick at one of the modes subscribed."""

    instrument: Instrument
    mode: int
    data: dict[str, Any]
    #: the whole ``market_data`` message as the server sent it
    message: dict[str, Any]
    #: local receive time, epoch ns
    received_ns: int

    @property
    def snapshot(self) -> bool:
        """Whether the server marked this tick as the last one it held when the subscription
        began (top-level ``"snapshot": true``), not a trade that just happened: it fills a
        screen at once, but says how old the market's last trade is, not how fast the feed is."""
        return self.message.get("snapshot") is True

    @property
    def latency_ms(self) -> float | None:
        """Feed-to-here latency when the tick carries its creation time (``ts_ns`` or ``timestamp``)."""
        ns = self.data.get("ts_ns")
        if isinstance(ns, int):
            return (self.received_ns - ns) / 1e6
        ms = self.data.get("timestamp")
        if isinstance(ms, (int, float)) and ms > 1e12:
            return self.received_ns / 1e6 - ms
        return None


@dataclass(slots=True)
class ServerError:
    """An error reply, or one failed entry of a (un)subscribe reply (then ``instrument`` says which)."""

    code: str
    message: str
    instrument: Instrument | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def fatal(self) -> bool:
        """Retrying cannot help: no API key given where one is needed, or the key refused."""
        return self.code in FATAL_CODES

    @property
    def text(self) -> str:
        """The message, naming the instrument unless it already does."""
        return describe_error(self.message, self.instrument)

    def __str__(self) -> str:
        return f"{self.text} ({self.code})"


@dataclass(slots=True)
class AuthFailed(ServerError):
    """The answer to ``authenticate`` was an error: a refused key (``fatal``) or a server that
    could not set up the session (OpenAlgo's ``BROKER_ERROR``...), worth a new connection later."""


@dataclass(slots=True)
class Subscribed:
    """The server confirmed a subscription. oaws's proxy follows it with the last tick it
    holds of ``instrument``, marked ``Tick.snapshot``; OpenAlgo's sends none."""

    instrument: Instrument
    #: None when the server did not say (OpenAlgo echoes the request's mode, oaws the entry's)
    mode: int | None
    raw: dict[str, Any]


@dataclass(slots=True)
class Unsubscribed:
    """The server confirmed an unsubscription (of ``mode``, or of every mode when None)."""

    instrument: Instrument
    mode: int | None
    raw: dict[str, Any]


@dataclass(slots=True)
class Reply:
    """Any other reply (``subscriptions``...); the subclasses name the ones a client acts on."""

    body: dict[str, Any]


@dataclass(slots=True)
class Authenticated(Reply):
    """The server accepted the API key; the subscriptions follow."""


@dataclass(slots=True)
class Pong(Reply):
    """The answer to ``ping`` (``server_timestamp``, the ``timestamp`` sent echoed)."""


@dataclass(slots=True)
class BrokerInfo(Reply):
    """The answer to ``get_broker_info`` (``broker``, ``adapter_status``...)."""


@dataclass(slots=True)
class FeedStatus(Reply):
    """*(oaws)* The server's word on the feed behind the subscriptions (``feed_status``, sent
    to a client that connected with ``?feed_status=1``): ``state`` is ``live``, ``no_feed``
    (nothing publishes on the server's bus) or ``ended`` (a replay past its end: no tick
    will come), ``message`` one sentence saying so."""

    LIVE = FEED_LIVE
    NONE = FEED_NONE
    ENDED = FEED_ENDED

    @property
    def state(self) -> str:
        return str(self.body.get("state") or FEED_LIVE)

    @property
    def message(self) -> str:
        return str(self.body.get("message") or f"the feed's state: {self.state}")


@dataclass(slots=True)
class OrderUpdate:
    """One ``order_update`` message (after ``subscribe_orders``): an order's new state,
    in OpenAlgo's fields (``orderid``, ``order_status``, ``filled_quantity``...)."""

    message: dict[str, Any]
    #: local receive time, epoch ns
    received_ns: int

    @property
    def orderid(self) -> str:
        return str(self.message.get("orderid", ""))

    @property
    def status(self) -> str:
        return str(self.message.get("order_status", ""))


ProtocolEvent = Tick | Subscribed | Unsubscribed | ServerError | Reply | OrderUpdate


class State(enum.Enum):
    CLOSED = "closed"
    #: connected, ``authenticate`` sent, its answer not yet received
    AUTHENTICATING = "authenticating"
    #: requests go out as they are made
    OPEN = "open"


def encode(request: JSON) -> str:
    """A request as the text frame it travels in (OpenAlgo's server and oaws's read text only)."""
    return orjson.dumps(request).decode()


# The protocol ------------------------------------------------------------------------
class ClientProtocol:
    """What a client wants and what one connection is doing, driven by frames.

    ``wanted`` maps each instrument to the modes held, in the order they were asked for;
    it outlives connections, so that a reconnect resubscribes all of it; ``depths`` holds
    the levels a side of each Depth subscription of other than five (one depth per
    instrument, as the server holds it). Requests are
    queued only while the connection is open: a change made meanwhile goes out with the
    resubscription after the next (re)connection.
    """

    def __init__(self, *, api_key: str | None = None, chunk: int = CHUNK) -> None:
        self.api_key = api_key
        self.chunk = chunk
        self.wanted: dict[Instrument, set[int]] = {}
        self.depths: dict[Instrument, int] = {}
        #: order updates wanted (``subscribe_orders``); asked for again after a reconnect
        self.orders = False
        self.state = State.CLOSED
        self._outbox: list[JSON] = []

    # The connection ------------------------------------------------------------------
    def connection_made(self) -> None:
        """A WebSocket is open: authenticate first if there is a key, else resubscribe."""
        self._outbox.clear()
        if self.api_key is not None:
            self.state = State.AUTHENTICATING
            self._outbox.append({"action": "authenticate", "api_key": self.api_key})
        else:
            self._open()

    def connection_lost(self) -> None:
        """The WebSocket is gone; what was not sent is covered by the next resubscription."""
        self.state = State.CLOSED
        self._outbox.clear()

    def requests_to_send(self) -> list[JSON]:
        """The requests queued since the last call, in order; the caller sends each as ``encode`` frames it."""
        out, self._outbox = self._outbox, []
        return out

    def _open(self) -> None:
        self.state = State.OPEN
        if self.orders:
            self._outbox.append({"action": "subscribe_orders"})
        by_mode: dict[tuple[int, int], list[Instrument]] = {}
        for instrument, modes in self.wanted.items():
            for mode in modes:
                by_mode.setdefault((mode, self.depth_of(instrument, mode)), []).append(instrument)
        for mode, depth in sorted(by_mode):
            self._queue_subscribe(by_mode[mode, depth], mode, depth)

    def depth_of(self, instrument: Instrument, mode: int) -> int:
        """The levels a side asked for of ``instrument`` at ``mode`` (five outside Depth)."""
        return self.depths.get(instrument, DEFAULT_DEPTH) if mode == DEPTH else DEFAULT_DEPTH

    # Requests ------------------------------------------------------------------------
    def subscribe(self, instruments: Iterable[Instrument], mode: int, depth: int = DEFAULT_DEPTH) -> None:
        """Add ``mode`` to each instrument's modes (Depth at ``depth`` levels a side, which
        replaces another depth held); a subscription already held is not asked for again."""
        if mode not in MODES or isinstance(mode, bool):
            raise ValueError(f"invalid mode {mode!r}; use 1 (LTP), 2 (Quote) or 3 (Depth)")
        depth = depth if mode == DEPTH else DEFAULT_DEPTH
        new = []
        for instrument in instruments:
            modes = self.wanted.setdefault(instrument, set())
            if mode not in modes or self.depth_of(instrument, mode) != depth:
                modes.add(mode)
                self._set_depth(instrument, mode, depth)
                new.append(instrument)
        if self.state is State.OPEN:
            self._queue_subscribe(new, mode, depth)

    def _set_depth(self, instrument: Instrument, mode: int, depth: int) -> None:
        if mode != DEPTH:
            return
        if depth == DEFAULT_DEPTH:
            self.depths.pop(instrument, None)
        else:
            self.depths[instrument] = depth

    def unsubscribe(self, instruments: Iterable[Instrument], mode: int | None = None) -> None:
        """Drop ``mode`` of each instrument, or every mode it holds when ``mode`` is None."""
        entries: list[JSON] = []
        for instrument in instruments:
            held = self.wanted.get(instrument)
            if not held:
                continue
            gone = sorted(held) if mode is None else [mode] if mode in held else []
            held.difference_update(gone)
            if DEPTH in gone:
                self.depths.pop(instrument, None)
            if not held:
                del self.wanted[instrument]
            entries.extend({"symbol": instrument.symbol, "exchange": instrument.exchange, "mode": m} for m in gone)
        if self.state is State.OPEN:
            for start in range(0, len(entries), self.chunk):
                self._outbox.append({"action": "unsubscribe", "symbols": entries[start : start + self.chunk]})

    def subscribe_orders(self) -> None:
        """Receive ``order_update`` messages (``OrderUpdate`` events), on this connection and the next."""
        if not self.orders and self.state is State.OPEN:
            self._outbox.append({"action": "subscribe_orders"})
        self.orders = True

    def unsubscribe_orders(self) -> None:
        if self.orders and self.state is State.OPEN:
            self._outbox.append({"action": "unsubscribe_orders"})
        self.orders = False

    def ping(self, timestamp: int | None = None) -> None:
        """Ask for a ``pong``; a ``timestamp`` (ms) comes back with it, for a round-trip time."""
        self.request({"action": "ping"} if timestamp is None else {"action": "ping", "timestamp": timestamp})

    def get_subscriptions(self) -> None:
        """Ask the server what it holds for this connection (an oaws extension: OpenAlgo has no such action)."""
        self.request({"action": "get_subscriptions"})

    def get_broker_info(self) -> None:
        self.request({"action": "get_broker_info"})

    def request(self, body: JSON) -> None:
        """Queue any request while the connection is open; its reply comes back as an event.

        A raw ``subscribe`` sent this way is not remembered for reconnects: ``subscribe`` is.
        """
        if self.state is State.OPEN:
            self._outbox.append(body)

    def _queue_subscribe(self, instruments: list[Instrument], mode: int, depth: int = DEFAULT_DEPTH) -> None:
        for start in range(0, len(instruments), self.chunk):
            chunk = instruments[start : start + self.chunk]
            self._outbox.append(
                {
                    "action": "subscribe",
                    "mode": mode,
                    "depth": depth,
                    "symbols": [{"symbol": i.symbol, "exchange": i.exchange} for i in chunk],
                }
            )

    # Frames --------------------------------------------------------------------------
    def receive(self, frame: str | bytes, received_ns: int) -> list[ProtocolEvent]:
        """The events of one frame: a JSON object, or a ``?batch=1`` array of them. Frames that
        are no JSON, and messages that are no object, are skipped: a client outlives a bad frame."""
        try:
            body = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return []
        events: list[ProtocolEvent] = []
        for message in body if isinstance(body, list) else (body,):
            if isinstance(message, dict):
                self._events(message, received_ns, events)
        return events

    def _events(self, message: JSON, received_ns: int, out: list[ProtocolEvent]) -> None:
        kind = message.get("type")
        if kind == "market_data":
            tick = _tick(message, received_ns)
            if tick is not None:
                out.append(tick)
            return
        if kind == "order_update":
            out.append(OrderUpdate(message, received_ns))
            return
        status = message.get("status")
        if self.state is State.AUTHENTICATING:
            if kind == "auth" and status == "success":
                self._open()
                out.append(Authenticated(message))
                return
            if status == "error" and kind in (None, "error", "auth"):
                # the answer to authenticate: OpenAlgo's errors carry no type
                out.append(AuthFailed(*_error_fields(message), None, message))
                return
        if kind in ("subscribe", "subscription"):
            _results(message, Subscribed, out)
        elif kind in ("unsubscribe", "unsubscription"):
            _results(message, Unsubscribed, out)
        elif status == "error" and kind in (None, "error"):
            out.append(ServerError(*_error_fields(message), _instrument(message), message))
        elif kind == "auth" and status == "success":
            out.append(Authenticated(message))
        elif kind == "pong":
            out.append(Pong(message))
        elif kind == "broker_info":
            out.append(BrokerInfo(message))
        elif kind == "feed_status":
            out.append(FeedStatus(message))
        else:
            out.append(Reply(message))


def _tick(message: JSON, received_ns: int) -> Tick | None:
    data, mode = message.get("data"), _mode(message.get("mode"))
    instrument = _instrument(message)
    if instrument is None or mode is None or not isinstance(data, dict):
        return None
    return Tick(instrument, mode, data, message, received_ns)


def _results(reply: JSON, success: type[Subscribed] | type[Unsubscribed], out: list[ProtocolEvent]) -> None:
    """One event per instrument of a (un)subscribe reply, in any of the servers' shapes: the
    single form (the reply is the entry), ``subscriptions`` (oaws, OpenAlgo's subscribe) or
    ``successful`` and ``failed`` (OpenAlgo's unsubscribe)."""
    lists = [reply.get(key) for key in ("subscriptions", "successful", "failed") if key in reply]
    entries = [e for entries in lists if isinstance(entries, list) for e in entries if isinstance(e, dict)]
    if not lists:
        entries = [reply]
    for entry in entries:
        instrument = _instrument(entry)
        if entry.get("status") == "error":
            out.append(ServerError(*_error_fields(entry), instrument, reply))
        elif entry.get("status") == "success" and instrument is not None:
            out.append(success(instrument, _mode(entry.get("mode")), reply))
    if not entries and reply.get("status") == "error":
        out.append(ServerError(*_error_fields(reply), None, reply))


def _error_fields(entry: JSON) -> tuple[str, str]:
    return str(entry.get("code") or "ERROR"), str(entry.get("message") or "error")


#: instruments of the (symbol, exchange) pairs seen: ``make``'s checks (regular expressions,
#: the topic read back) were a sixth of a watch's CPU at 1,000 ticks a second
_MADE: dict[tuple[str, str], Instrument | None] = {}
_MADE_MAX = 8_192


def _instrument(entry: JSON) -> Instrument | None:
    symbol, exchange = entry.get("symbol"), entry.get("exchange")
    if not isinstance(symbol, str) or not isinstance(exchange, str):
        return None  # make refuses these too
    key = (symbol, exchange)
    try:
        return _MADE[key]
    except KeyError:
        pass
    try:
        instrument: Instrument | None = make(symbol, exchange)
    except InstrumentError:
        instrument = None
    if len(_MADE) >= _MADE_MAX:
        _MADE.clear()
    _MADE[key] = instrument
    return instrument


def _mode(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return parse_mode(value)
    except InstrumentError:
        return None
