"""An OpenAlgo server as an upstream feed: its WebSocket proxy's ticks onto the oaws bus.

OpenAlgo serves every broker it supports through one WebSocket protocol; as a client of it,
oaws serves all of them with its own fan-out, conflation, batching, record and watch. The
feed subscribes upstream only to what oaws's clients want: the bus reference-counts them
(``want`` / ``unwant`` come once per topic, across every client and proxy), and a
``batch_window`` later the difference goes upstream, one request per mode, the mode always
named. Keeping the connection up is ``oaws.brokers.connection``'s job, as for every broker:
backoff, resubscription after each reconnect, the silence watchdog. OpenAlgo's error reply
to ``authenticate`` is a refusal of the API key: the key is read again from the settings
and tried once more; refused again, the feed stands down with one sentence.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from oaws import config
from oaws.brokers.api import Feed, FeedError
from oaws.brokers.connection import AuthRefused, Backoff, BrokerLink, Connection, Endpoint, Message, Sessions
from oaws.brokers.hours import market_open
from oaws.brokers.openalgo import wire
from oaws.brokers.openalgo.settings import SPEC
from oaws.instruments import Instrument
from oaws.protocol.bus import strip_fseq
from oaws.protocol.codes import BROKER_ERROR, LIMIT_EXCEEDED
from oaws.ticks import at_mode

log = logging.getLogger(__name__)

#: (instrument, mode): one upstream subscription
Key = tuple[Instrument, int]


class OpenAlgoAuthError(FeedError):
    """OpenAlgo refused the API key, read afresh and tried again: the feed stands down."""


class _OpenAlgoLink(BrokerLink[Key, str]):
    """OpenAlgo's side of the connection: authenticate, subscribe by mode, market data."""

    name = "OpenAlgo"

    def __init__(self, feed: OpenAlgoFeed) -> None:
        self.feed = feed
        self.authenticated = False
        #: the broker behind the OpenAlgo server, as its auth reply names it
        self.broker: str | None = None
        #: request_id -> (mode, instruments) of the subscribe requests not yet answered
        self.pending: OrderedDict[str, tuple[int, list[Instrument]]] = OrderedDict()
        self._ids = itertools.count(1)

    def endpoint(self, session: str | None) -> Endpoint:
        return Endpoint(self.feed.url)

    def greeting(self, session: str | None) -> list[Message]:
        assert session is not None, "OpenAlgo's feed always runs with an API key"
        self.authenticated = False  # a new connection: authenticate again
        self.pending.clear()
        return [wire.authenticate(session)]

    def subscribe(self, keys: set[Key]) -> list[Message]:
        out: list[Message] = []
        for mode, instruments in _by_mode(keys):
            request_id = f"oaws-{next(self._ids)}"
            self.pending[request_id] = (mode, instruments)
            while len(self.pending) > 256:
                self.pending.popitem(last=False)
            out.append(wire.subscribe(mode, instruments, request_id))
        return out

    def unsubscribe(self, keys: set[Key]) -> list[Message]:
        return [wire.unsubscribe(mode, instruments, f"oaws-{next(self._ids)}") for mode, instruments in _by_mode(keys)]

    def market_open(self, keys: set[Key]) -> bool:
        return self.feed.market_hours({instrument.exchange for instrument, _ in keys})

    def on_frame(self, frame: Message) -> Key | None:
        data_key = None
        for message in wire.messages(frame):
            kind = message.get("type")
            if kind == "market_data":
                data_key = self.feed.on_market_data(message) or data_key
            elif not self.authenticated and wire.is_error(message):
                # requests are answered in order: the first error before "auth" is authenticate's
                raise AuthRefused(wire.reason(message))
            elif kind == "auth" and message.get("status") == "success":
                self.authenticated = True
                broker = message.get("broker")
                self.broker = str(broker) if broker else None
                log.info("OpenAlgo at %s accepted the API key (broker %s)", self.feed.url, self.broker or "unnamed")
            elif kind == "subscribe" or (wire.is_error(message) and message.get("request_id") in self.pending):
                self._answered(message)
            elif wire.is_error(message):
                log.warning("OpenAlgo at %s answered %s", self.feed.url, wire.reason(message))
        return data_key

    def _answered(self, reply: wire.Message) -> None:
        """A subscribe request's reply: what OpenAlgo refused goes back to the clients that wanted it."""
        request_id = reply.get("request_id")
        if request_id in self.pending:
            mode, instruments = self.pending.pop(request_id)
        elif self.pending:  # a server that does not echo request_id answers in order
            _, (mode, instruments) = self.pending.popitem(last=False)
        else:
            return
        if wire.is_error(reply) and reply.get("type") != "subscribe":  # the whole request was refused
            self.feed.refused({(i, mode) for i in instruments}, _code(reply), wire.reason(reply))
            return
        entries = reply.get("subscriptions")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("status") != "error":
                continue
            instrument = wire.instrument_of(entry)
            if instrument is not None:
                key = (instrument, wire.mode_of(entry.get("mode"), mode) or mode)
                self.feed.refused({key}, _code(entry), str(entry.get("message") or "OpenAlgo refused it"))


def _by_mode(keys: Iterable[Key]) -> list[tuple[int, list[Instrument]]]:
    """Requests' contents: per mode, the instruments in chunks of ``wire.CHUNK``."""
    grouped: dict[int, list[Instrument]] = {}
    for instrument, mode in sorted(keys, key=lambda k: (k[1], k[0].exchange, k[0].symbol)):
        grouped.setdefault(mode, []).append(instrument)
    return [
        (mode, instruments[at : at + wire.CHUNK])
        for mode, instruments in grouped.items()
        for at in range(0, len(instruments), wire.CHUNK)
    ]


def _code(reply: wire.Message) -> str:
    code, text = reply.get("code"), str(reply.get("message") or "")
    if isinstance(code, str) and code:
        return code
    return LIMIT_EXCEEDED if "limit" in text.lower() else BROKER_ERROR


class OpenAlgoFeed(Feed):
    """Ticks from an OpenAlgo server's WebSocket proxy (see the module docstring)."""

    name = "openalgo"
    depths = (5,)

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        reload_key: Callable[[], str | None] | None = None,
        batch_window: float = 0.05,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        stable_after: float = 30.0,
        silence_timeout: float = 60.0,
        open_timeout: float = 10.0,
        market_hours: Callable[[Iterable[str]], bool] = market_open,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        try:
            parse_uri(url)
        except InvalidURI:
            raise FeedError(f"the OpenAlgo server {url!r} is not a ws:// or wss:// URL (check --upstream)") from None
        self.url = url
        self.batch_window = batch_window
        self.market_hours = market_hours
        self._reload_key = reload_key or (lambda: api_key)
        self._sessions: Sessions[str] = Sessions(
            "OpenAlgo",
            self._read_key,
            stored=lambda: api_key,
            refused_fresh=lambda why: OpenAlgoAuthError(
                f"OpenAlgo at {url} refused the API key twice ({why}); check OPENALGO_API_KEY "
                f"(or api_key in the [openalgo] section of {config.config_path()})"
            ),
            credentials="API key",
            log=log,
        )
        self.link = _OpenAlgoLink(self)
        self.connection: Connection[Key, str] = Connection(
            self.link,
            label=f"OpenAlgo feed {url}",
            sessions=self._sessions,
            backoff=Backoff(backoff_base, backoff_cap, rng=rng or random.Random()),
            stable_after=stable_after,
            silence_timeout=silence_timeout,
            open_timeout=open_timeout,
            log=log,
        )
        self._latest: dict[Key, bytes] = {}
        self._flush_task: asyncio.Task[None] | None = None
        #: ticks of a subscription no longer wanted (unsubscribed a moment ago), dropped
        self.unexpected = 0

    @classmethod
    def from_settings(cls, upstream: str | None = None, **options: Any) -> OpenAlgoFeed:
        """The feed of ``upstream`` (else OPENALGO_WS_URL), its key from OPENALGO_API_KEY or ``[openalgo]``."""
        settings = SPEC.load(upstream=upstream)
        if not settings["upstream"]:
            raise FeedError(
                "the OpenAlgo feed needs its server's address: --upstream ws://HOST:8765 "
                f"(or OPENALGO_WS_URL, or upstream in the [openalgo] section of {config.config_path()})"
            )
        SPEC.require(settings, "the OpenAlgo API key is")
        return cls(settings["upstream"], settings["api_key"], reload_key=lambda: SPEC.load()["api_key"], **options)

    async def _read_key(self) -> str:
        """The API key read afresh (the user may have fixed it since), for one more try."""
        return self._reload_key() or ""

    # Feed interface (called from the event loop) ------------------------------------
    def want(self, instrument: Instrument, mode: int) -> None:
        self.connection.keys.add((instrument, mode))
        self._flush_soon()

    def unwant(self, instrument: Instrument, mode: int) -> None:
        self.connection.keys.discard((instrument, mode))
        self._latest.pop((instrument, mode), None)
        self._flush_soon()

    def resend(self, instrument: Instrument, mode: int) -> None:
        payload = self._latest.get((instrument, mode))
        if payload is not None and self.publisher is not None:
            self.publisher.publish(instrument, mode, payload)

    def status(self) -> dict[str, object]:
        state = self.connection.state
        if state == "connected" and not self.link.authenticated:
            state = "authenticating"
        return {
            "adapter_status": state,
            "upstream": self.url,
            "upstream_broker": self.link.broker,
            "subscriptions": len(self.connection.keys),
            "reconnects": self.connection.reconnects,
            "last_disconnect": self.connection.last_disconnect,
            "unexpected_ticks": self.unexpected,
        }

    async def run(self) -> None:
        """Keep the connection up until cancelled; raises OpenAlgoAuthError when the key is refused twice."""
        try:
            await self.connection.run()
        finally:
            if self._flush_task is not None:
                self._flush_task.cancel()

    # From the link -----------------------------------------------------------------------
    def on_market_data(self, message: wire.Message) -> Key | None:
        """Publish one ``market_data`` message at its mode; the key it was, None if it was none."""
        instrument, mode, data = wire.instrument_of(message), wire.mode_of(message.get("mode")), message.get("data")
        if instrument is None or mode is None or not isinstance(data, dict):
            return None
        key = (instrument, mode)
        if key not in self.connection.keys or self.publisher is None:
            self.unexpected += 1
            return key
        strip_fseq(data)  # the upstream bus's count; ours stamps its own
        data.setdefault("symbol", instrument.symbol)
        data.setdefault("exchange", instrument.exchange)
        payload = orjson.dumps(at_mode(data, mode))
        self._latest[key] = payload
        self.publisher.publish(instrument, mode, payload)
        return key

    def refused(self, keys: set[Key], code: str, message: str) -> None:
        """OpenAlgo refused these subscriptions: hold them no longer, and tell the clients."""
        keys &= self.connection.keys
        self.connection.forget(keys)
        for instrument, mode in keys:
            self._latest.pop((instrument, mode), None)
            log.info("OpenAlgo cannot serve %s mode %d: %s", instrument, mode, message)
            if self.publisher is not None:
                self.publisher.reject(instrument, mode, code, message)

    # Subscriptions ------------------------------------------------------------------------
    def _flush_soon(self) -> None:
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        """Collect changes for ``batch_window``, then send the difference upstream."""
        await asyncio.sleep(self.batch_window)
        await self.connection.sync()
