"""An asyncio client of the proxy protocol, for oaws's commands and for scripts.

    async with Client("ws://127.0.0.1:8765", instruments=[parse("RELIANCE:NSE")]) as client:
        async for event in client:
            if isinstance(event, Tick):
                print(event.instrument, event.data["ltp"])

A thin layer over the protocol's client half (``oaws.protocol.client``), which holds the
wanted subscriptions, builds the requests and turns frames into events: this module dials,
sends what the protocol queues, feeds it every frame received, and after any drop
reconnects with exponential backoff and full jitter (``oaws.backoff``), reporting each step as a ``Status`` event.
It asks for batched frames with ``?batch=1`` and for the server's word on its feed with
``?feed_status=1`` (``FeedStatus`` events: no feed on the bus, a replay that has ended),
both of which OpenAlgo ignores; the protocol reads both kinds of frame.

Under ``-v`` (the ``oaws.client`` logger at DEBUG) it logs each connection's steps, the
requests it sends (an API key masked) and every message other than ticks it receives.

Authentication gets its own patience (``auth_timeout``, 30 s): OpenAlgo answers
``authenticate`` only once it has set up the user's broker session, which takes Zerodha's
and Fyers' adapters up to 15 s. A client still waiting after ``SLOW_AUTH`` says so with a
``Status("authenticating")`` event, so that a command or a screen can tell its user why
nothing happens yet.

``on_frame`` lets a consumer take frames before they are parsed: ``oaws record`` writes
the proxy's market-data frames to its file as bytes, at tens of thousands of ticks a
second, and leaves every other frame to the protocol.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from oaws.backoff import Backoff
from oaws.bars.aggregator import Bar, Interval, parse_interval
from oaws.instruments import DEFAULT_DEPTH, Instrument
from oaws.protocol import history as hist
from oaws.protocol.client import (
    AUTH_TIMEOUT,
    Authenticated,
    AuthFailed,
    BrokerInfo,
    ClientProtocol,
    FeedStatus,
    OrderUpdate,
    Pong,
    ProtocolEvent,
    Reply,
    ServerError,
    State,
    Subscribed,
    Tick,
    Unsubscribed,
    describe_error,
    encode,
    fatal_close,
)
from oaws.protocol.codes import FEED_STATUS_PARAMETER, NOT_AUTHENTICATED

log = logging.getLogger(__name__)

#: after this long (s) without an answer to ``authenticate``, a ``Status("authenticating")`` says so
SLOW_AUTH = 1.0

__all__ = [
    "AUTH_TIMEOUT",
    "AuthError",
    "AuthFailed",
    "Authenticated",
    "BrokerInfo",
    "Client",
    "ClientError",
    "ConnectError",
    "Event",
    "FeedStatus",
    "FrameHook",
    "HistoryUnavailable",
    "OrderUpdate",
    "Pong",
    "Reply",
    "ServerError",
    "Status",
    "Subscribed",
    "Tick",
    "Unsubscribed",
    "describe_error",
    "dial",
    "explain",
    "fetch_history",
    "refusal",
    "with_batch",
]


class ClientError(Exception):
    """The client cannot go on; the message is one sentence for the user."""


class ConnectError(ClientError):
    """Nothing usable answers at the URL."""


class AuthError(ClientError):
    """The server refused the API key, or closed the connection for want of one (4401)."""


class HistoryUnavailable(ClientError):
    """The server gives no history for what was asked; the message is one sentence."""


class _Dropped(Exception):
    """This connection is of no use (authentication failed on the server's side): reconnect."""


@dataclass(slots=True)
class Status:
    #: "connecting", "authenticating" (only when the answer is slow), "connected", "reconnecting"
    state: str
    detail: str = ""
    #: epoch seconds of the next attempt, while reconnecting
    retry_at: float | None = None


Event = ProtocolEvent | Status
#: ``on_frame(frame, received_ns)``: True when it consumed the frame, which then goes no further
FrameHook = Callable[[bytes, int], bool]


def refusal(url: str, error: ServerError) -> str:
    """One sentence for a fatal error (``error.fatal``): the server wants a key, or refused the one given."""
    if error.code == NOT_AUTHENTICATED:
        return f"{url} requires an API key: pass --api-key or set OAWS_API_KEY"
    return f"{url} refused the API key: {error.message}"


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


def with_batch(url: str, *, feed_status: bool = False) -> str:
    """``url`` asking for batched frames (and, with ``feed_status``, for ``feed_status`` messages)."""
    return with_query(url, batch=True, feed_status=feed_status)


def with_query(url: str, *, batch: bool = False, feed_status: bool = False) -> str:
    """``url`` with oaws's own parameters added: ``batch=1``, ``feed_status=1`` (OpenAlgo ignores both)."""
    extra = [name for name, on in (("batch=1", batch), (f"{FEED_STATUS_PARAMETER}=1", feed_status)) if on]
    if not extra:
        return url
    parts = urlsplit(url)
    query = "&".join([parts.query, *extra] if parts.query else extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, parts.fragment))


def _shown(request: dict[str, Any]) -> str:
    """A request as the debug log shows it: the API key masked, a long symbol list summed up."""
    body = dict(request)
    for key in ("api_key", "apikey"):
        if key in body:
            body[key] = "***"
    symbols = body.get("symbols")
    if isinstance(symbols, list) and len(symbols) > 5:
        body["symbols"] = [*symbols[:5], f"... {len(symbols) - 5} more"]
    return encode(body)


class Client:
    """Connect, authenticate, subscribe, iterate events; reconnects by itself.

    ``retry_first``: whether a failure of the very first connection is retried (a screen
    waits for its server) or raised as ``ConnectError`` (a command says why and exits).
    ``retry_auth``: whether a first connection that opened but could not authenticate (no
    answer within ``auth_timeout``, or the server's broker error) is retried all the same
    (a recorder waits for a broker that is still logging in), while one that found nothing
    listening is still raised. ``instruments`` are subscribed at ``mode`` (Depth at
    ``depth`` levels a side) once connected; ``subscribe`` adds modes.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        instruments: Iterable[Instrument] = (),
        mode: int = 2,
        depth: int = DEFAULT_DEPTH,
        batch: bool = True,
        retry_first: bool = False,
        retry_auth: bool = False,
        reconnect: bool = True,
        backoff: tuple[float, float] = (0.5, 10.0),
        open_timeout: float = 5.0,
        auth_timeout: float = AUTH_TIMEOUT,
        on_frame: FrameHook | None = None,
        feed_status: bool = True,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ClientError(f"{url!r} is not a WebSocket URL; write ws://HOST:PORT")
        self.url = url
        self.batch = batch
        #: ask for the server's ``feed_status`` messages (``FeedStatus`` events)
        self.feed_status = feed_status
        self.retry_first = retry_first
        self.retry_auth = retry_auth
        self.reconnect = reconnect
        self.backoff = backoff
        self.open_timeout = open_timeout
        self.auth_timeout = auth_timeout
        self.on_frame = on_frame
        self.protocol = ClientProtocol(api_key=api_key)
        self.protocol.subscribe(instruments, mode, depth)
        self.ws: ClientConnection | None = None
        self.connected_once = False
        #: a first connection opened and failed to authenticate, and ``retry_auth`` says to wait
        self._answered = False
        self.attempts = 0
        self._backoff = Backoff(*backoff)
        # one sender at a time, so that requests leave in the order the protocol queued them
        self._sending = asyncio.Lock()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    # Subscriptions and requests --------------------------------------------------------
    @property
    def wanted(self) -> dict[Instrument, set[int]]:
        """The modes held of each instrument, resubscribed after every reconnect (read only: use ``subscribe``)."""
        return self.protocol.wanted

    async def subscribe(self, instruments: Iterable[Instrument], mode: int = 2, depth: int = DEFAULT_DEPTH) -> None:
        """Add ``mode`` to the modes held of each instrument (Depth at ``depth`` levels a side)."""
        self.protocol.subscribe(instruments, mode, depth)
        await self._flush()

    async def unsubscribe(self, instruments: Iterable[Instrument], mode: int | None = None) -> None:
        """Drop ``mode`` of each instrument, or all its modes when ``mode`` is None."""
        self.protocol.unsubscribe(instruments, mode)
        await self._flush()

    async def subscribe_orders(self) -> None:
        """Receive every order's changes as ``OrderUpdate`` events (kept across reconnects)."""
        self.protocol.subscribe_orders()
        await self._flush()

    async def unsubscribe_orders(self) -> None:
        self.protocol.unsubscribe_orders()
        await self._flush()

    async def ping(self, timestamp: int | None = None) -> None:
        """Its ``Pong`` comes as an event."""
        self.protocol.ping(timestamp)
        await self._flush()

    async def get_broker_info(self) -> None:
        """Its ``BrokerInfo`` comes as an event."""
        self.protocol.get_broker_info()
        await self._flush()

    async def get_subscriptions(self) -> None:
        """Its reply (``type`` ``subscriptions``) comes as a ``Reply``."""
        self.protocol.get_subscriptions()
        await self._flush()

    async def request(self, body: dict[str, Any]) -> None:
        """Send any request while connected; its reply comes as an event."""
        self.protocol.request(body)
        await self._flush()

    async def _flush(self) -> None:
        async with self._sending:
            requests = self.protocol.requests_to_send()
            ws = self.ws
            if ws is None:
                return
            try:
                for request in requests:
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug("sent %s", _shown(request))
                    await ws.send(encode(request))
            except ConnectionClosed:
                pass  # the reader notices, and the next connection resubscribes everything

    # Events ----------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    def _delay(self) -> float:
        return self._backoff.next()

    async def events(self) -> AsyncIterator[Event]:
        url = with_query(self.url, batch=self.batch, feed_status=self.feed_status)
        while True:
            yield Status("connecting", self.url)
            log.debug("connecting to %s", url)
            try:
                ws = await dial(url, self.open_timeout)
            except InvalidURI:
                raise ClientError(f"{self.url!r} is not a WebSocket URL; write ws://HOST:PORT") from None
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                reason = explain(self.url, exc)
                log.debug("could not connect: %s", reason)
            else:
                log.debug("connected to %s", self.url)
                self.ws = ws
                reason = "the connection dropped"
                unready = False
                try:
                    async for event in self._session(ws):
                        yield event
                except ConnectionClosed as exc:
                    if exc.rcvd is not None and fatal_close(exc.rcvd.code):
                        why = exc.rcvd.reason or "not authenticated"
                        raise AuthError(f"{self.url} closed the connection: {why}") from None
                    reason = explain(self.url, exc)
                except (OSError, TimeoutError) as exc:
                    reason = explain(self.url, exc)
                except _Dropped as exc:
                    reason, unready = str(exc), True
                finally:
                    self.protocol.connection_lost()
                    log.debug("connection to %s closed", self.url)
                await ws.close()  # at once when the server closed it; a session given up on is closed here
                # a server that answers but is not ready yet is worth waiting for, from now on as after a drop
                self._answered = self._answered or (unready and self.retry_auth)
            if not self.reconnect or not (self.connected_once or self.retry_first or self._answered):
                raise ConnectError(reason)
            delay = self._delay()
            log.debug("%s; reconnecting in %.1f s (attempt %d)", reason, delay, self.attempts + 1)
            self.attempts += 1
            yield Status("reconnecting", reason, time.time() + delay)
            await asyncio.sleep(delay)

    async def _authenticate(self, ws: ClientConnection, early: list[ProtocolEvent]) -> AsyncIterator[Status]:
        """Wait for the answer to ``authenticate``, up to ``auth_timeout``; other events that come
        first go to ``early``. Yields one ``Status("authenticating")`` once the wait is slow.

        The time the consumer takes over that event is not counted: the deadline is the server's.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.auth_timeout
        told = False
        while self.protocol.state is State.AUTHENTICATING:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _Dropped(f"{self.url} did not answer authenticate within {self.auth_timeout:g} s")
            wait = remaining if told else min(remaining, SLOW_AUTH)
            try:
                async with asyncio.timeout(wait):
                    frame = await ws.recv(decode=False)  # cancelling recv loses no frame
            except TimeoutError:
                if not told and loop.time() < deadline:
                    told = True
                    started = loop.time()
                    yield Status(
                        "authenticating",
                        f"waiting for {self.url} to answer authenticate (up to {self.auth_timeout:g} s)",
                    )
                    deadline += loop.time() - started
                continue
            for event in self.protocol.receive(frame, time.time_ns()):
                if isinstance(event, AuthFailed):
                    if event.fatal:
                        raise AuthError(refusal(self.url, event))
                    raise _Dropped(f"{self.url} could not authenticate: {event}")
                early.append(event)

    async def _session(self, ws: ClientConnection) -> AsyncIterator[Event]:
        protocol = self.protocol
        protocol.connection_made()
        await self._flush()
        early: list[ProtocolEvent] = []
        if protocol.state is State.AUTHENTICATING:
            async for status in self._authenticate(ws, early):
                yield status
            await self._flush()
        self.connected_once = True
        self.attempts = 0
        self._backoff.reset()
        yield Status("connected", self.url)
        debug = log.isEnabledFor(logging.DEBUG)
        for event in early:
            if debug:
                _log_event(event)
            yield event
        hook, receive, recv, time_ns = self.on_frame, protocol.receive, ws.recv, time.time_ns
        while True:
            frame = await recv(decode=False)
            received = time_ns()
            if hook is not None and hook(frame, received):
                continue
            for event in receive(frame, received):
                if debug and type(event) is not Tick:  # ticks are what -v leaves out: thousands a second
                    _log_event(event)
                yield event


def _log_event(event: ProtocolEvent) -> None:
    """One line of the debug log for a message other than a tick (an entry of a subscribe
    reply each: the reply itself would be repeated for every instrument it names)."""
    if isinstance(event, (Subscribed, Unsubscribed)):
        mode = f" mode {event.mode}" if event.mode is not None else ""
        log.debug("received %s: %s%s", type(event).__name__.lower(), event.instrument, mode)
    elif isinstance(event, ServerError):
        log.debug("received an error: %s", event)
    elif isinstance(event, Reply):
        log.debug("received %s", encode(event.body))
    elif isinstance(event, OrderUpdate):
        log.debug("received an order update: %s", encode(event.message))


#: how long ``fetch_history`` waits for the server (which waits up to 30 s for the feed)
HISTORY_TIMEOUT = 35.0


async def fetch_history(
    url: str,
    instrument: Instrument,
    interval: str | Interval,
    *,
    days: int | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    api_key: str | None = None,
    timeout: float = HISTORY_TIMEOUT,
) -> list[Bar]:
    """The broker's bars of ``instrument`` from the server at ``url`` (its ``GET /history``):
    of the last ``days`` (today among them), or of [``start_ms``, ``end_ms``); oldest first.
    Raises HistoryUnavailable (one sentence) when the server gives none or cannot be reached."""
    iv = parse_interval(interval)
    query: dict[str, str | int] = {"symbol": instrument.symbol, "exchange": instrument.exchange, "interval": iv.name}
    if start_ms is not None:
        query["start"] = start_ms
        if end_ms is not None:
            query["end"] = end_ms
    else:
        query["days"] = days or 1
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise HistoryUnavailable(f"{url!r} is not a server URL; write ws://HOST:PORT")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    target = "/history?" + urlencode(query)
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close", "Accept: application/json"]
    if api_key:
        lines.append(f"X-API-Key: {api_key}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                parts.hostname, port, ssl=ssl.create_default_context() if parts.scheme == "wss" else None
            )
            try:
                writer.write(request)
                raw = await _read_to_end(reader, hist.MAX_REPLY + 65536)
            finally:
                writer.close()
    except TimeoutError:
        raise HistoryUnavailable(f"the server at {url} did not answer the history request in {timeout:g} s") from None
    except OSError as exc:
        raise HistoryUnavailable(f"cannot reach the server at {url}: {exc.strerror or exc}") from None
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        status = head.split(b"\r\n", 1)[0].decode("latin-1")[:80]
        raise HistoryUnavailable(f"the server at {url} gives no history ({status or 'no answer'})") from None
    try:
        return hist.bars_of_answer(answer, instrument, iv, int(time.time() * 1000))
    except hist.HistoryRequestError as exc:
        raise HistoryUnavailable(str(exc)) from None


async def _read_to_end(reader: asyncio.StreamReader, limit: int) -> bytes:
    """What the server sends until it closes (``Connection: close``), at most ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := await reader.read(min(65536, limit - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
