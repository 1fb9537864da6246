"""An asyncio client of the proxy protocol, for oaws's commands and for scripts.

    async with Client("ws://127.0.0.1:8765", instruments=[parse("RELIANCE:NSE")]) as client:
        async for event in client:
            if isinstance(event, Tick):
                print(event.instrument, event.data["ltp"])

The client holds the wanted subscriptions; after any drop it reconnects with exponential
backoff and full jitter, authenticates and subscribes everything again, reporting each
step as a ``Status`` event. It relies only on what OpenAlgo's server sends too (``type``,
``symbol``, ``exchange``, ``mode``, ``data``; never ``topic``), and asks for batched
frames with ``?batch=1``, which OpenAlgo ignores, so both kinds of frame are read.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from oaws.instruments import Instrument, InstrumentError, make


class ClientError(Exception):
    """The client cannot go on; the message is one sentence for the user."""


class ConnectError(ClientError):
    """Nothing usable answers at the URL."""


class AuthError(ClientError):
    """The server refused the API key."""


@dataclass(slots=True)
class Tick:
    instrument: Instrument
    mode: int
    data: dict[str, Any]
    #: the whole ``market_data`` message as the server sent it
    message: dict[str, Any]
    #: local receive time, epoch ns
    received_ns: int

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
class Status:
    #: "connecting", "connected", "reconnecting"
    state: str
    detail: str = ""
    #: epoch seconds of the next attempt, while reconnecting
    retry_at: float | None = None


@dataclass(slots=True)
class ServerError:
    code: str
    message: str
    instrument: Instrument | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The message, naming the instrument unless it already does."""
        return describe_error(self.message, self.instrument)

    def __str__(self) -> str:
        return f"{self.text} ({self.code})"


def describe_error(message: str, instrument: Instrument | None = None) -> str:
    """``INSTRUMENT: message``, or the message alone when it already starts with the instrument."""
    return message if instrument is None or message.startswith(str(instrument)) else f"{instrument}: {message}"


@dataclass(slots=True)
class Reply:
    """Any other reply (subscriptions, pong, broker_info...)."""

    body: dict[str, Any]


Event = Tick | Status | ServerError | Reply


def explain(url: str, exc: BaseException) -> str:
    """Why a connection attempt failed, in words a user can act on."""
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing is listening at {url} (connection refused)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host of {url}"
    if isinstance(exc, InvalidStatus):
        return f"{url} refused the WebSocket handshake (HTTP {exc.response.status_code})"
    if isinstance(exc, InvalidHandshake):
        return f"{url} does not speak WebSocket ({exc})"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return f"no answer from {url} in time"
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd else None
        reason = exc.rcvd.reason if exc.rcvd and exc.rcvd.reason else ""
        if code is None:
            return "the connection dropped"
        return f"the server closed the connection ({code}{' ' + reason if reason else ''})"
    if isinstance(exc, OSError):
        return f"cannot reach {url}: {exc.strerror or exc}"
    return f"cannot reach {url}: {exc}"


async def dial(url: str, open_timeout: float) -> ClientConnection:
    """A WebSocket connection as oaws's clients open one: no size limit on what the
    server sends, no compression, pings every 20 s."""
    return await connect(
        url,
        open_timeout=open_timeout,
        max_size=None,
        compression=None,
        ping_interval=20,
        ping_timeout=20,
        close_timeout=2,
    )


def with_batch(url: str) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + "batch=1"
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, parts.fragment))


class Client:
    """Connect, authenticate, subscribe, iterate events; reconnects by itself.

    ``retry_first``: whether a failure of the very first connection is retried (a screen
    waits for its server) or raised as ``ConnectError`` (a command says why and exits).
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        instruments: Iterable[Instrument] = (),
        mode: int = 2,
        batch: bool = True,
        retry_first: bool = False,
        reconnect: bool = True,
        backoff: tuple[float, float] = (0.5, 10.0),
        open_timeout: float = 5.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ClientError(f"{url!r} is not a WebSocket URL; write ws://HOST:PORT")
        self.url = url
        self.api_key = api_key
        self.batch = batch
        self.retry_first = retry_first
        self.reconnect = reconnect
        self.backoff = backoff
        self.open_timeout = open_timeout
        self.wanted: dict[Instrument, int] = {i: mode for i in instruments}
        self.ws: ClientConnection | None = None
        self.connected_once = False
        self.attempts = 0

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    # Subscriptions -------------------------------------------------------------
    async def subscribe(self, instruments: Iterable[Instrument], mode: int = 2) -> None:
        new = list(instruments)
        for i in new:
            self.wanted[i] = mode
        await self._send_subscribe(new, mode)

    async def unsubscribe(self, instruments: Iterable[Instrument]) -> None:
        gone = [i for i in instruments if self.wanted.pop(i, None) is not None]
        if gone and self.ws is not None:
            await self._send(
                {"action": "unsubscribe", "symbols": [{"symbol": i.symbol, "exchange": i.exchange} for i in gone]}
            )

    async def request(self, body: dict[str, Any]) -> None:
        """Send any request; its reply comes as an event."""
        await self._send(body)

    async def _send(self, body: dict[str, Any]) -> None:
        if self.ws is None:
            return
        try:
            await self.ws.send(orjson.dumps(body).decode())
        except ConnectionClosed:
            pass  # the reader notices and reconnects

    async def _send_subscribe(self, instruments: list[Instrument], mode: int) -> None:
        for start in range(0, len(instruments), 500):
            chunk = instruments[start : start + 500]
            if chunk:
                await self._send(
                    {
                        "action": "subscribe",
                        "mode": mode,
                        "depth": 5,
                        "symbols": [{"symbol": i.symbol, "exchange": i.exchange} for i in chunk],
                    }
                )

    # Events --------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    def _delay(self) -> float:
        base, cap = self.backoff
        return random.uniform(base / 2, min(cap, base * 2 ** min(self.attempts, 16)))

    async def events(self) -> AsyncIterator[Event]:
        url = with_batch(self.url) if self.batch else self.url
        while True:
            yield Status("connecting", self.url)
            try:
                self.ws = await dial(url, self.open_timeout)
            except InvalidURI:
                raise ClientError(f"{self.url!r} is not a WebSocket URL; write ws://HOST:PORT") from None
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                reason = explain(self.url, exc)
                if not self.connected_once and not self.retry_first:
                    raise ConnectError(reason) from None
                if not self.reconnect:
                    raise ConnectError(reason) from None
                delay = self._delay()
                self.attempts += 1
                yield Status("reconnecting", reason, time.time() + delay)
                await asyncio.sleep(delay)
                continue
            reason = "the connection dropped"
            try:
                async for event in self._session(self.ws):
                    yield event
            except ConnectionClosed as exc:
                reason = explain(self.url, exc)
                if exc.rcvd is not None and exc.rcvd.code == 4401:
                    raise AuthError(
                        f"{self.url} closed the connection: {exc.rcvd.reason or 'not authenticated'}"
                    ) from None
            finally:
                self.ws = None
            if not self.reconnect:
                raise ConnectError(reason)
            delay = self._delay()
            self.attempts += 1
            yield Status("reconnecting", reason, time.time() + delay)
            await asyncio.sleep(delay)

    async def _session(self, ws: ClientConnection) -> AsyncIterator[Event]:
        if self.api_key is not None:
            await ws.send(orjson.dumps({"action": "authenticate", "api_key": self.api_key}).decode())
            async with asyncio.timeout(self.open_timeout):
                while True:
                    body = orjson.loads(await ws.recv())
                    if isinstance(body, dict) and body.get("type") == "auth":
                        break
                    if isinstance(body, dict) and body.get("code") == "AUTHENTICATION_ERROR":
                        raise AuthError(f"{self.url} refused the API key: {body.get('message', 'invalid API key')}")
        self.connected_once = True
        self.attempts = 0
        yield Status("connected", self.url)
        by_mode: dict[int, list[Instrument]] = {}
        for instrument, mode in self.wanted.items():
            by_mode.setdefault(mode, []).append(instrument)
        for mode, instruments in by_mode.items():
            await self._send_subscribe(instruments, mode)
        async for frame in ws:
            received = time.time_ns()
            try:
                body = orjson.loads(frame)
            except orjson.JSONDecodeError:
                continue
            for message in body if isinstance(body, list) else (body,):
                for event in self._events(message, received):
                    yield event

    def _events(self, message: Any, received: int) -> list[Event]:
        if not isinstance(message, dict):
            return []
        kind = message.get("type")
        if kind == "market_data":
            data, mode = message.get("data"), message.get("mode")
            try:
                instrument = make(message.get("symbol"), message.get("exchange"))
            except InstrumentError:
                return []
            if not isinstance(data, dict) or not isinstance(mode, int):
                return []
            return [Tick(instrument, mode, data, message, received)]
        if message.get("status") == "error" and kind in (None, "error", "subscription", "unsubscription"):
            return [_error(message, message)]
        failed = [
            _error(e, message)
            for e in message.get("subscriptions", ())
            if isinstance(e, dict) and e.get("status") == "error"
        ]
        return [*failed, Reply(message)] if failed else [Reply(message)]


def _error(entry: dict[str, Any], raw: dict[str, Any]) -> ServerError:
    instrument = None
    if entry.get("symbol") is not None:
        try:
            instrument = make(entry.get("symbol"), entry.get("exchange"))
        except InstrumentError:
            instrument = None
    return ServerError(str(entry.get("code") or "ERROR"), str(entry.get("message") or "error"), instrument, raw)
