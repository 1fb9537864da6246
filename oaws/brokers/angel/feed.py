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
  with the difference. Client mode 1 is Angel LTP, 2 QUOTE, 3 SNAP_QUOTE.
- Limits: at most ``max_connections`` connections of ``tokens_per_connection``
  subscriptions each (Angel: 3 and 1000, unverified); past them, or when Angel answers
  E1002, the client gets LIMIT_EXCEEDED through ``publisher.reject``. Depth 20 (Angel
  mode 4) is never requested: the bus has no topic for it, so its quota (50 tokens,
  exchange type 1) cannot be exceeded; ``wire`` decodes its packets all the same.
- Each connection reconnects on its own with exponential backoff and jitter (reset
  once a connection has stayed up ``stable_after`` seconds) and resubscribes everything
  it holds; the cause of every disconnect is logged in one line.
- A malformed binary frame is counted and skipped; the connection stays.
- A 401 at the handshake leads to one fresh login; a refusal of fresh tokens stops the
  feed with ``AngelAuthError`` (no retry storm against a locked account).
- A connection that delivers no tick for ``silence_timeout`` while it holds
  subscriptions and its market is open is closed and reconnected; each silent
  reconnect in a row doubles the window (up to 16x), so a trading holiday costs a few
  reconnects, not one every half minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException
from websockets.uri import parse_uri

from oaws import __version__
from oaws.brokers.angel import wire
from oaws.brokers.angel.errors import AngelAuthError, AngelError, AngelUnavailable
from oaws.brokers.angel.master import Master, load_master
from oaws.brokers.angel.session import Session, load_session, login, save_session
from oaws.brokers.angel.settings import AngelSettings, load_settings
from oaws.brokers.angel.ticks import ANGEL_MODE, CLIENT_MODE, tick
from oaws.brokers.api import Feed, Rejection
from oaws.instruments import Instrument

log = logging.getLogger(__name__)
# websockets logs handshake headers (the tokens) at DEBUG: keep its logger above that, even under -v.
_ws_log = logging.getLogger("oaws.angel.websocket")
_ws_log.setLevel(logging.INFO)

LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
BROKER_ERROR = "BROKER_ERROR"

Key = tuple[int, int, str]  # (Angel mode, exchange type, token)

IST = timezone(timedelta(hours=5, minutes=30))
#: Trading session (minutes after midnight IST) by exchange type; pre-open and holidays are not modelled.
SESSIONS = {1: (555, 930), 2: (555, 930), 3: (555, 930), 4: (555, 930), 5: (540, 1435), 7: (540, 1200), 13: (540, 1020)}


def market_open(exchange_types: Iterable[int], now: datetime | None = None) -> bool:
    """Whether any of these exchange types is in its trading session now (weekdays, IST)."""
    t = (now or datetime.now(IST)).astimezone(IST)
    if t.weekday() >= 5:
        return False
    minute = t.hour * 60 + t.minute
    return any(lo <= minute < hi for lo, hi in (SESSIONS.get(et, (555, 930)) for et in exchange_types))


@dataclass(eq=False)
class _Route:
    """The instruments a subscription key is published as, and where it is subscribed."""

    conn: _Connection
    divisor: float
    instruments: dict[Instrument, None] = field(default_factory=dict)


@dataclass(eq=False)
class _Connection:
    index: int
    silence_window: float
    #: keys this connection should hold (the desired state)
    keys: set[Key] = field(default_factory=set)
    #: keys subscribed on the current socket (what Angel was told)
    sent: set[Key] = field(default_factory=set)
    ws: ClientConnection | None = None
    task: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: correlation ID -> keys of the subscribe request, to map E1002 & co. back to instruments
    requests: OrderedDict[str, list[Key]] = field(default_factory=OrderedDict)
    state: str = "idle"
    cause: str | None = None
    last_tick: float = 0.0
    pongs: int = 0
    #: keys that have ticked on this socket: Angel answers a subscription with one tick, so
    #: only a key's second tick proves the market is live (and resets the silence window)
    ticked: set[Key] = field(default_factory=set)


class AngelFeed(Feed):
    """Ticks from Angel One's SmartAPI WebSocket V2 (see the module docstring)."""

    name = "angel"
    depths = (5,)

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
        market_hours: Callable[[Iterable[int]], bool] = market_open,
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
        self.settings = settings
        self.master = master
        self.batch_window = batch_window
        self.backoff_base, self.backoff_cap, self.stable_after = backoff_base, backoff_cap, stable_after
        self.silence_timeout = silence_timeout
        self.heartbeat_interval = heartbeat_interval
        self.open_timeout = open_timeout
        self.login_timeout = login_timeout
        self.tokens_per_connection = tokens_per_connection
        self.market_hours = market_hours
        self.session_file = session_file
        self.store_session = store_session
        self.rng = rng or random.Random()
        self._conns = [_Connection(i, silence_timeout) for i in range(max_connections)]
        self._routes: dict[Key, _Route] = {}
        self._wanted: dict[tuple[Instrument, int], Key] = {}
        self._latest: dict[tuple[Instrument, int], bytes] = {}
        self._flush_task: asyncio.Task[None] | None = None
        self._dirty = False
        self._session_lock = asyncio.Lock()
        self._session: Session | None = None
        self._fatal: asyncio.Future[None] | None = None
        self._correlation = itertools.count(1)
        self._malformed_logged = 0.0
        # figures for status() and tests
        self.malformed = 0
        self.unexpected = 0
        self.reconnects = 0
        self.logins = 0
        self.disconnects: list[str] = []

    @classmethod
    def from_settings(cls, instruments: str | None = None, **options: Any) -> AngelFeed:
        """The feed as configured: ``ANGEL_*`` variables, else ``[angel]`` of the config file.

        Raises an AngelError subclass with one sentence when credentials or the
        instrument master are missing.
        """
        settings = load_settings(instruments=instruments)
        settings.require_credentials()
        return cls(settings, load_master(settings.instruments), **options)

    # Feed interface (called from the event loop) ------------------------------------
    def check(self, instrument: Instrument) -> None:
        self.master.resolve(instrument)

    def want(self, instrument: Instrument, mode: int) -> None:
        if (instrument, mode) in self._wanted:
            return
        try:
            resolved = self.master.resolve(instrument)
        except Rejection as exc:
            self._reject(instrument, mode, exc.code, exc.message)
            return
        key = (ANGEL_MODE[mode], resolved.exchange_type, resolved.token)
        route = self._routes.get(key)
        if route is None:
            conn = self._connection_with_room()
            if conn is None:
                capacity = len(self._conns) * self.tokens_per_connection
                self._reject(
                    instrument,
                    mode,
                    LIMIT_EXCEEDED,
                    f"Angel One allows {capacity} subscriptions ({len(self._conns)} connections of "
                    f"{self.tokens_per_connection}); all are in use",
                )
                return
            route = self._routes[key] = _Route(conn, resolved.divisor)
            conn.keys.add(key)
            self._flush_soon()
        route.instruments[instrument] = None
        self._wanted[(instrument, mode)] = key

    def unwant(self, instrument: Instrument, mode: int) -> None:
        key = self._wanted.pop((instrument, mode), None)
        self._latest.pop((instrument, mode), None)
        if key is None:
            return
        route = self._routes[key]
        route.instruments.pop(instrument, None)
        if not route.instruments:
            del self._routes[key]
            route.conn.keys.discard(key)
            self._flush_soon()

    def resend(self, instrument: Instrument, mode: int) -> None:
        payload = self._latest.get((instrument, mode))
        if payload is not None and self.publisher is not None:
            self.publisher.publish(instrument, mode, payload)

    def status(self) -> dict[str, object]:
        active = [c for c in self._conns if c.task is not None]
        if self._fatal is not None and self._fatal.done() and not self._fatal.cancelled():
            state = "error"
        elif active and all(c.state == "connected" for c in active):
            state = "connected"
        else:
            state = "reconnecting" if self.reconnects else "connecting"
        return {
            "adapter_status": state,
            "connections": sum(c.ws is not None for c in self._conns),
            "subscriptions": len(self._routes),
            "malformed_frames": self.malformed,
            "unexpected_ticks": self.unexpected,
            "reconnects": self.reconnects,
            "logins": self.logins,
            "last_disconnect": self.disconnects[-1] if self.disconnects else None,
        }

    async def run(self) -> None:
        """Keep the connections that hold subscriptions (and the first one) up until cancelled.

        Raises the AngelError that made the feed give up (a refused login or refused fresh tokens).
        """
        self._fatal = asyncio.get_running_loop().create_future()
        for conn in self._conns:
            if conn.index == 0 or conn.keys:
                self._start(conn)
        try:
            await self._fatal
        finally:
            tasks = [t for t in (self._flush_task, *(c.task for c in self._conns)) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for conn in self._conns:
                conn.task = None

    # Subscriptions --------------------------------------------------------------------
    def _reject(self, instrument: Instrument, mode: int, code: str, message: str) -> None:
        log.info("cannot serve %s mode %d: %s", instrument, mode, message)
        if self.publisher is not None:
            self.publisher.reject(instrument, mode, code, message)

    def _connection_with_room(self) -> _Connection | None:
        for conn in self._conns:
            if len(conn.keys) < self.tokens_per_connection:
                if conn.task is None and self._fatal is not None and not self._fatal.done():
                    self._start(conn)
                return conn
        return None

    def _flush_soon(self) -> None:
        self._dirty = True
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        """Collect changes for ``batch_window``, then sync every connection; again if more came meanwhile."""
        while self._dirty:
            await asyncio.sleep(self.batch_window)
            self._dirty = False
            for conn in self._conns:
                if conn.index > 0 and not conn.keys and conn.task is not None:
                    conn.task.cancel()  # an extra connection that holds nothing is given back
                    conn.task = None
                else:
                    await self._sync(conn)

    async def _sync(self, conn: _Connection) -> None:
        """Tell Angel the difference between what ``conn`` holds and what it should hold."""
        async with conn.lock:
            ws = conn.ws
            if ws is None:
                return
            add, remove = conn.keys - conn.sent, conn.sent - conn.keys
            if not add and not remove:
                return
            messages = [*self._requests(conn, wire.UNSUBSCRIBE, remove), *self._requests(conn, wire.SUBSCRIBE, add)]
            if add and not (conn.sent - remove):
                conn.last_tick = time.monotonic()  # the silence clock starts with the first subscription
            conn.sent = set(conn.keys)
            with contextlib.suppress(ConnectionClosed):  # the connection's own loop reports the cause
                for message in messages:
                    await ws.send(message)

    def _requests(self, conn: _Connection, action: int, keys: set[Key]) -> list[str]:
        groups: dict[tuple[int, int], list[str]] = {}
        for mode, exchange_type, token in sorted(keys):
            groups.setdefault((mode, exchange_type), []).append(token)
        messages = []
        for (mode, exchange_type), tokens in groups.items():
            correlation = f"oaws{next(self._correlation) % 1_000_000:06d}"  # Angel: 10 characters
            if action == wire.SUBSCRIBE:
                conn.requests[correlation] = [(mode, exchange_type, t) for t in tokens]
                while len(conn.requests) > 256:
                    conn.requests.popitem(last=False)
            messages.append(orjson.dumps(wire.request(action, mode, {exchange_type: tokens}, correlation)).decode())
        return messages

    def _drop_keys(self, keys: Iterable[Key], code: str, message: str) -> None:
        """Angel refused these subscriptions: give them up and tell the clients that wanted them."""
        for key in keys:
            route = self._routes.pop(key, None)
            if route is None:
                continue
            route.conn.keys.discard(key)
            route.conn.sent.discard(key)
            mode = CLIENT_MODE[key[0]]
            for instrument in route.instruments:
                self._wanted.pop((instrument, mode), None)
                self._latest.pop((instrument, mode), None)
                self._reject(instrument, mode, code, message)

    # Frames ------------------------------------------------------------------------------
    def _on_binary(self, conn: _Connection, frame: bytes) -> None:
        try:
            packet = wire.decode(frame)
        except wire.MalformedFrame as exc:
            self.malformed += 1
            now = time.monotonic()
            if now - self._malformed_logged > 10:
                self._malformed_logged = now
                log.warning(
                    "Angel feed connection %d: skipped a malformed frame (%s); %d so far",
                    conn.index,
                    exc,
                    self.malformed,
                )
            return
        conn.last_tick = time.monotonic()
        key = (packet.mode, packet.exchange_type, packet.token)
        if key in conn.ticked:
            conn.silence_window = self.silence_timeout
        else:
            conn.ticked.add(key)
        route = self._routes.get(key)
        if route is None or self.publisher is None:
            self.unexpected += 1  # unsubscribed a moment ago, or a mode we never ask for (depth 20)
            return
        mode = CLIENT_MODE[packet.mode]
        received = int(time.time() * 1000)
        for instrument in route.instruments:
            payload = orjson.dumps(tick(packet, instrument.symbol, instrument.exchange, route.divisor, received))
            self._latest[(instrument, mode)] = payload
            self.publisher.publish(instrument, mode, payload)

    def _on_text(self, conn: _Connection, text: str) -> None:
        if text == "pong":
            conn.pongs += 1
            return
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            log.debug("Angel feed connection %d: ignoring text frame %.80r", conn.index, text)
            return
        if not isinstance(message, dict) or "errorCode" not in message:
            log.debug("Angel feed connection %d: ignoring text frame %.80r", conn.index, text)
            return
        code, reason = str(message.get("errorCode")), str(message.get("errorMessage") or "no reason given")
        keys = conn.requests.pop(str(message.get("correlationID") or ""), None)
        log.warning(
            "Angel feed connection %d: Angel answered %s %s%s",
            conn.index,
            code,
            reason,
            f" to a request for {len(keys)} subscriptions" if keys else "",
        )
        if keys:
            limit = code == "E1002" or "limit" in reason.lower()
            self._drop_keys(keys, LIMIT_EXCEEDED if limit else BROKER_ERROR, f"Angel One refused: {reason} ({code})")

    # Connections --------------------------------------------------------------------------
    def _start(self, conn: _Connection) -> None:
        conn.task = asyncio.get_running_loop().create_task(self._keep_connected(conn), name=f"angel-feed-{conn.index}")

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_cap, self.backoff_base * 2**attempt)
        return delay / 2 + self.rng.uniform(0, delay / 2)  # "equal jitter": never 0, never in lockstep

    async def _keep_connected(self, conn: _Connection) -> None:
        try:
            attempt = 0
            while True:
                cause, stable, again_now = await self._connect_once(conn)
                self.disconnects.append(cause)
                del self.disconnects[:-20]
                if stable:
                    attempt = 0
                if again_now:
                    log.warning("Angel feed connection %d: %s; connecting again", conn.index, cause)
                    continue
                delay = self._backoff(attempt)
                attempt += 1
                self.reconnects += 1
                conn.state = "reconnecting"
                log.warning("Angel feed connection %d: %s; reconnecting in %.1f s", conn.index, cause, delay)
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # AngelError: the feed cannot go on; anything else is a bug, also fatal
            conn.state = "error"
            if not isinstance(exc, AngelError):
                log.exception("Angel feed connection %d failed", conn.index)
            if self._fatal is not None and not self._fatal.done():
                self._fatal.set_exception(exc)

    async def _connect_once(self, conn: _Connection) -> tuple[str, bool, bool]:
        """One connection's life: (cause of its end, whether it was stable, whether to retry at once)."""
        conn.state = "connecting"
        try:
            session = await self._current_session()
        except AngelUnavailable as exc:
            return str(exc), False, False
        headers = {
            "Authorization": session.authorization,
            "x-api-key": self.settings.api_key or "",
            "x-client-code": session.client_code,
            "x-feed-token": session.feed_token,
        }
        url = self.settings.feed_url
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                open_timeout=self.open_timeout,
                ping_interval=self.heartbeat_interval,
                ping_timeout=self.heartbeat_interval * 2,
                close_timeout=2,
                max_size=1 << 20,
                max_queue=4096,
                compression=None,
                user_agent_header=f"oaws/{__version__}",
                logger=_ws_log,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            reason = exc.response.headers.get("x-error-message") or exc.response.reason_phrase
            if status in (401, 403):
                try:
                    await self._refused(session, reason)
                except AngelUnavailable as exc:  # the login itself could not get through: try it all again later
                    return f"Angel refused the session tokens (HTTP {status}: {reason}) and {exc}", False, False
                return f"Angel refused the session tokens (HTTP {status}: {reason}); logged in again", False, True
            return f"Angel refused the connection (HTTP {status}: {reason})", False, False
        except (OSError, TimeoutError, WebSocketException) as exc:
            return f"cannot connect to {url} ({_describe(exc)})", False, False
        session.accepted = True
        started = time.monotonic()
        try:
            cause = await self._serve(conn, ws)
        finally:
            conn.ws = None
            conn.sent = set()
        return cause, time.monotonic() - started >= self.stable_after, False

    async def _serve(self, conn: _Connection, ws: ClientConnection) -> str:
        conn.ws, conn.sent, conn.cause, conn.ticked = ws, set(), None, set()
        conn.state = "connected"
        conn.last_tick = time.monotonic()
        log.info("Angel feed connection %d open; subscribing %d instruments", conn.index, len(conn.keys))
        await self._sync(conn)
        watchdog = asyncio.get_running_loop().create_task(self._watch(conn, ws))
        closed: ConnectionClosed | None = None
        try:
            async for frame in ws:
                try:
                    if isinstance(frame, bytes):
                        self._on_binary(conn, frame)
                    else:
                        self._on_text(conn, frame)
                except Exception:  # a bug in handling one frame must not cost the connection
                    log.exception("Angel feed connection %d: failed to handle a frame", conn.index)
        except ConnectionClosed as exc:
            closed = exc
        finally:
            watchdog.cancel()
            if ws.transport is not None and not ws.transport.is_closing():
                ws.transport.abort()
        return conn.cause or _describe_close(ws, closed)

    async def _watch(self, conn: _Connection, ws: ClientConnection) -> None:
        """Send text pings (Angel's documented heartbeat) and close a connection gone silent."""
        check = max(0.01, min(self.heartbeat_interval, self.silence_timeout / 4, 1.0))
        next_ping = time.monotonic() + self.heartbeat_interval
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(check)
                now = time.monotonic()
                if now >= next_ping:
                    next_ping = now + self.heartbeat_interval
                    await ws.send("ping")
                silent_for = now - conn.last_tick
                if conn.sent and silent_for > conn.silence_window and self.market_hours({k[1] for k in conn.sent}):
                    conn.cause = f"no ticks for {silent_for:.1f} s during market hours"
                    conn.silence_window = min(conn.silence_window * 2, self.silence_timeout * 16)
                    await ws.close(1000, "no ticks")
                    return

    # Session ------------------------------------------------------------------------------
    async def _current_session(self) -> Session:
        async with self._session_lock:
            session = self._session
            if session is not None and not session.expired():
                return session
            if session is None and self.store_session:
                stored = load_session(self.settings, self.session_file)
                if stored is not None:
                    log.info("using the stored Angel session of %s", stored.client_code)
                    self._session = stored
                    return stored
            return await self._login()

    async def _login(self) -> Session:
        self.logins += 1
        session = await asyncio.to_thread(login, self.settings, self.login_timeout)
        log.info("logged in to Angel One as %s", session.client_code)
        if self.store_session:
            try:
                save_session(session, self.session_file)
            except OSError as exc:
                log.warning("cannot store the Angel session: %s", exc.strerror)
        self._session = session
        return session

    async def _refused(self, session: Session, reason: str) -> None:
        """Angel refused ``session`` at the handshake: log in again once; fresh tokens refused is fatal."""
        async with self._session_lock:
            if self._session is not session:
                return  # another connection has logged in again already
            if session.source == "login" and not session.accepted:
                raise AngelAuthError(
                    f"Angel One refused the feed tokens of a fresh login ({reason}); "
                    "check ANGEL_API_KEY and ANGEL_CLIENT_CODE"
                )
            log.warning(
                "Angel One refused the %s session tokens (%s); logging in again",
                "stored" if session.source == "store" else "current",
                reason,
            )
            await self._login()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


def _describe_close(ws: ClientConnection, exc: ConnectionClosed | None) -> str:
    rcvd = exc.rcvd if exc is not None else ws.protocol.close_rcvd
    if rcvd is not None:
        reason = f": {rcvd.reason}" if rcvd.reason else ""
        return f"Angel closed the connection (code {rcvd.code}{reason})"
    sent = exc.sent if exc is not None else ws.protocol.close_sent
    if sent is not None and sent.code == 1011:
        return "the connection stopped answering pings"
    return "the connection dropped without a close frame"
