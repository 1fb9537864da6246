"""One upstream WebSocket connection of a broker feed, kept up: the part every broker shares.

Why one runner for every broker: keeping a market-data connection alive is the same job at
Angel, Kite, Dhan or a Noren host (connect, authenticate, subscribe everything again after a
drop, back off, notice a connection gone quiet, refresh a session the broker stopped
accepting), and it is where feeds go wrong. As cryptofeed's ``ConnectionHandler`` does for
its exchanges, ``Connection`` does it once; a broker writes a ``BrokerLink`` with only what
is its own: the URL and handshake, its subscribe messages, its decoding, how it says "your
credentials are refused", its market sessions.

What the runner does for one connection:

- It holds a desired set of subscription keys (``keys``, any hashable the broker likes) and
  what the current socket was told (``sent``); ``sync`` sends the difference, and every
  (re)connect starts from nothing and subscribes everything again.
- Backoff with full jitter: the n-th wait in a row is uniform in [0, min(cap, base * 2**n)],
  never below a small floor (a zero draw must not become a hot loop), and the count starts
  again once a connection has stayed up ``stable_after`` seconds.
- The silence watchdog: a connection that holds subscriptions and delivers no data tick for
  its window while the market of those subscriptions is open is closed and reconnected.
  Each silent reconnect in a row doubles the window (up to 16x) and only a key's second
  tick on a socket resets it: brokers answer a subscription with a snapshot, so on a
  trading holiday the first tick of every key arrives and proves nothing. A watchdog
  that restarts every quiet feed by mistake (cryptofeed's weak spot) would reconnect
  all day; this one costs a holiday a few reconnects.
- Session refresh: a refusal of the credentials (HTTP 401/403 at the handshake, or
  whatever the broker raises as ``AuthRefused``) leads to one fresh login through the
  shared ``Sessions``; fresh credentials refused again stop the feed with the broker's
  error instead of a retry storm against a locked account. A refused login is remembered:
  the other connections that share the ``Sessions`` get the same error, not a login of
  their own.
- One log line per disconnect, with its cause; the figures ``status`` reports.
- An application-level heartbeat when the broker has one (``BrokerLink.heartbeat``), on
  top of the WebSocket pings that tell "stopped answering pings" from a quiet market.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.http11 import Response

from oaws import __version__
from oaws.backoff import Backoff

log = logging.getLogger(__name__)
# websockets logs handshake headers (the tokens) at DEBUG: keep its logger above that, even under -v.
_ws_log = logging.getLogger("oaws.brokers.websocket")
_ws_log.setLevel(logging.INFO)

K = TypeVar("K", bound=Hashable)
S = TypeVar("S")
Message = str | bytes

#: How many times the silence window may double after silent reconnects in a row.
MAX_SILENCE_FACTOR = 16


class Unavailable(Exception):
    """The broker cannot be reached right now (its login API is down...): try again after the backoff."""


class AuthRefused(Exception):
    """The broker refused the credentials on an open connection (an answer to an auth message).

    ``BrokerLink.on_frame`` raises it; the runner handles it as it does a 401 at the handshake.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StandDown(Exception):
    """The broker refused credentials that no refresh can replace: the feed cannot go on."""


@dataclass(frozen=True)
class Endpoint:
    """Where to connect and the handshake headers to send there."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)


class BrokerLink(ABC, Generic[K, S]):
    """What a broker supplies for one connection; the runner calls it, never the other way round.

    ``S`` is the broker's session (tokens from a login) as ``Sessions`` hands it out, or
    ``None`` when the connection runs without one. The defaults fit a broker with no
    application heartbeat, no auth message, and 401/403 for refused credentials.
    """

    #: The broker as causes name it: "Angel closed the connection (code 1000)".
    name: str = "the broker"
    #: A message to send every heartbeat interval (Angel: text "ping"); None for WebSocket pings only.
    heartbeat: Message | None = None

    @abstractmethod
    def endpoint(self, session: S | None) -> Endpoint:
        """The URL and handshake headers for a connection with ``session``."""

    def greeting(self, session: S | None) -> list[Message]:
        """Messages to send once the handshake is done, before subscribing (an auth message).

        With a greeting, the session counts as accepted once a frame comes that ``on_frame``
        does not answer with ``AuthRefused``; without one, once the handshake succeeds.
        """
        return []

    @abstractmethod
    def subscribe(self, keys: set[K]) -> list[Message]:
        """The requests that subscribe ``keys`` (a set never empty)."""

    @abstractmethod
    def unsubscribe(self, keys: set[K]) -> list[Message]:
        """The requests that unsubscribe ``keys`` (a set never empty)."""

    @abstractmethod
    def on_frame(self, frame: Message) -> K | None:
        """Handle one frame; return the key of the data tick it carried, None if it was no data.

        Raise ``AuthRefused`` when the frame says the credentials are refused. Any other
        exception is logged and the frame skipped: one bad frame must not cost the connection.
        """

    @abstractmethod
    def market_open(self, keys: set[K]) -> bool:
        """Whether the market of any of ``keys`` trades now (see ``oaws.brokers.hours``)."""

    def is_auth_refusal(self, response: Response) -> bool:
        """Whether the handshake's HTTP answer refuses the credentials (a session refresh may help)."""
        return response.status_code in (401, 403)

    def refusal_reason(self, response: Response) -> str:
        """The broker's reason for refusing the handshake, for the log line."""
        return response.reason_phrase


class Sessions(Generic[S]):
    """The session a broker's connections share: obtained once, refreshed once per refusal.

    A refused session (a stored one, or one the nightly rollover invalidated) is replaced by
    one fresh login, and every connection refused with it reconnects with the new one. A
    session straight from a login refused before the feed ever accepted it means the login
    works but the feed does not (wrong API key, feed not enabled): logging in again cannot
    help and would hammer the account, so ``refused`` raises the broker's error.
    """

    def __init__(
        self,
        broker: str,
        login: Callable[[], Awaitable[S]],
        *,
        refused_fresh: Callable[[str], Exception],
        stored: Callable[[], S | None] | None = None,
        expired: Callable[[S], bool] = lambda session: False,
        credentials: str = "session tokens",
        refreshing: str = "logging in again",
        refreshed: str = "logged in again",
        log: logging.Logger = log,
    ) -> None:
        self.broker = broker
        self.credentials = credentials
        #: what a refresh is, for the log line ("reading the access token again": Kite has no login to repeat)
        self.refreshing = refreshing
        #: the same, done ("read the access token again")
        self.refreshed = refreshed
        self._login, self._stored, self._expired, self._refused_fresh = login, stored, expired, refused_fresh
        self._log = log
        self._lock = asyncio.Lock()
        self.session: S | None = None
        self._from_login = False
        self._accepted = False
        #: login attempts, failed ones included
        self.logins = 0
        #: the error of a refused login: the feed stands down, and no other connection tries again
        self._failed: Exception | None = None

    async def current(self) -> S:
        """The session to connect with: the current one, else a stored one, else a fresh login.

        Raises ``Unavailable`` when the login cannot get through, the broker's error when it is refused.
        """
        async with self._lock:
            if self._failed is not None:
                raise self._failed
            session = self.session
            if session is not None and not self._expired(session):
                return session
            if session is None and self._stored is not None:
                stored = self._stored()
                if stored is not None:
                    self._set(stored, from_login=False)
                    return stored
            return await self._fresh()

    def accepted(self, session: S) -> None:
        """The broker accepted ``session`` on a connection: a later refusal is worth one refresh."""
        if session is self.session:
            self._accepted = True

    async def refused(self, session: S, reason: str) -> None:
        """The broker refused ``session``: log in again once; a fresh session refused is fatal."""
        async with self._lock:
            if self._failed is not None:
                raise self._failed
            if session is not self.session:
                return  # another connection has logged in again already
            if self._from_login and not self._accepted:
                raise self._refused_fresh(reason)
            self._log.warning(
                "%s refused the %s %s (%s); %s",
                self.broker,
                "current" if self._from_login else "stored",
                self.credentials,
                reason,
                self.refreshing,
            )
            await self._fresh()

    async def _fresh(self) -> S:
        self.logins += 1
        try:
            session = await self._login()
        except Unavailable:
            raise
        except Exception as exc:
            self._failed = exc
            raise
        self._set(session, from_login=True)
        return session

    def _set(self, session: S, *, from_login: bool) -> None:
        self.session, self._from_login, self._accepted = session, from_login, False


class _Outcome(NamedTuple):
    """How one connection attempt ended."""

    cause: str
    stable: bool = False  #: it stayed up ``stable_after``: the backoff starts again
    again: bool = False  #: reconnect at once (a fresh session to try), no backoff


class Connection(Generic[K, S]):
    """One upstream connection of a broker, kept up by ``run`` until cancelled (see the module docstring).

    The feed changes ``keys`` (the subscriptions this connection should hold) and calls
    ``sync`` to tell the broker; ``forget`` drops keys the broker refused. ``state``,
    ``reconnects``, ``disconnects`` and ``last_disconnect`` are the figures for status.
    """

    def __init__(
        self,
        link: BrokerLink[K, S],
        *,
        label: str,
        sessions: Sessions[S] | None = None,
        backoff: Backoff | None = None,
        stable_after: float = 30.0,
        silence_timeout: float = 30.0,
        heartbeat_interval: float = 10.0,
        open_timeout: float = 10.0,
        max_size: int = 1 << 20,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger = log,
    ) -> None:
        self.link = link
        self.label = label
        self.sessions = sessions
        self.backoff = backoff or Backoff()
        self.stable_after = stable_after
        self.silence_timeout = silence_timeout
        self.heartbeat_interval = heartbeat_interval
        self.open_timeout = open_timeout
        self.max_size = max_size
        self.clock = clock
        self.log = log
        #: the subscriptions this connection should hold (the desired state)
        self.keys: set[K] = set()
        #: the subscriptions the current socket was told about
        self.sent: set[K] = set()
        self.state = "idle"
        self.reconnects = 0
        #: (clock time, cause) of the latest disconnects
        self.disconnects: deque[tuple[float, str]] = deque(maxlen=20)
        self.silence_window = silence_timeout
        self._ws: ClientConnection | None = None
        self._lock = asyncio.Lock()
        self._cause: str | None = None
        self._last_data = 0.0
        #: keys that have ticked on this socket: only a key's second tick proves the market is live
        self._ticked: set[K] = set()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def last_disconnect(self) -> str | None:
        return self.disconnects[-1][1] if self.disconnects else None

    def status(self) -> dict[str, object]:
        return {"state": self.state, "reconnects": self.reconnects, "last_disconnect": self.last_disconnect}

    async def run(self) -> None:
        """Connect, serve and reconnect until cancelled.

        Raises what made the connection stand down: the broker's error for refused fresh
        credentials or a refused login, ``StandDown`` for credentials with no session to refresh.
        """
        self.backoff.reset()
        try:
            while True:
                outcome = await self._connect_once()
                self.disconnects.append((self.clock(), outcome.cause))
                if outcome.stable:
                    self.backoff.reset()
                if outcome.again:
                    self.log.warning("%s: %s; connecting again", self.label, outcome.cause)
                    continue
                delay = self.backoff.next()
                self.reconnects += 1
                self.state = "reconnecting"
                self.log.warning("%s: %s; reconnecting in %.1f s", self.label, outcome.cause, delay)
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.state = "error"
            raise

    async def sync(self) -> None:
        """Tell the broker the difference between what the socket holds and what it should hold."""
        async with self._lock:
            ws = self._ws
            if ws is None:
                return  # the next connection subscribes everything
            add, remove = self.keys - self.sent, self.sent - self.keys
            if not add and not remove:
                return
            messages = [
                *(self.link.unsubscribe(remove) if remove else []),
                *(self.link.subscribe(add) if add else []),
            ]
            if add and not (self.sent - remove):
                self._last_data = self.clock()  # the silence clock starts with the first subscription
            self.sent = set(self.keys)
            with contextlib.suppress(ConnectionClosed):  # the connection's own loop reports the cause
                for message in messages:
                    await ws.send(message)

    def forget(self, keys: set[K]) -> None:
        """The broker refused these subscriptions: hold them no longer, and send no unsubscribe."""
        self.keys -= keys
        self.sent -= keys

    async def _connect_once(self) -> _Outcome:
        self.state = "connecting"
        session: S | None = None
        try:
            if self.sessions is not None:
                session = await self.sessions.current()
            endpoint = self.link.endpoint(session)
        except Unavailable as exc:
            return _Outcome(str(exc))
        try:
            ws = await connect(
                endpoint.url,
                additional_headers=endpoint.headers,
                open_timeout=self.open_timeout,
                ping_interval=self.heartbeat_interval,
                ping_timeout=self.heartbeat_interval * 2,
                close_timeout=2,
                max_size=self.max_size,
                max_queue=4096,
                compression=None,
                user_agent_header=f"oaws/{__version__}",
                logger=_ws_log,
            )
        except InvalidStatus as exc:
            status, reason = exc.response.status_code, self.link.refusal_reason(exc.response)
            if self.link.is_auth_refusal(exc.response):
                return await self._refused(session, f"HTTP {status}: {reason}", reason)
            return _Outcome(f"{self.link.name} refused the connection (HTTP {status}: {reason})")
        except (OSError, TimeoutError, WebSocketException) as exc:
            return _Outcome(f"cannot connect to {_public(endpoint.url)} ({_describe(exc)})")
        started = self.clock()
        cause = await self._serve(ws, session)
        if isinstance(cause, AuthRefused):
            return await self._refused(session, cause.reason, cause.reason)
        return _Outcome(cause, stable=self.clock() - started >= self.stable_after)

    async def _refused(self, session: S | None, detail: str, reason: str) -> _Outcome:
        """The broker refused the credentials: refresh the session once (``Sessions`` decides) and retry."""
        if self.sessions is None or session is None:
            raise StandDown(f"{self.link.name} refused the credentials ({detail})")
        what = self.sessions.credentials
        try:
            await self.sessions.refused(session, reason)
        except Unavailable as exc:  # the login itself could not get through: try it all again later
            return _Outcome(f"{self.link.name} refused the {what} ({detail}) and {exc}")
        return _Outcome(f"{self.link.name} refused the {what} ({detail}); {self.sessions.refreshed}", again=True)

    async def _serve(self, ws: ClientConnection, session: S | None) -> str | AuthRefused:
        """Subscribe, read frames until the connection ends; its cause, or the broker's refusal."""
        self._ws, self.sent, self._cause, self._ticked = ws, set(), None, set()
        self.state = "connected"
        self._last_data = self.clock()
        greeting = self.link.greeting(session)
        # with an auth message the broker answers in a frame: the session counts as accepted once one comes
        unconfirmed = session if greeting else None
        if session is not None and self.sessions is not None and not greeting:
            self.sessions.accepted(session)
        self.log.info("%s open; subscribing %d instruments", self.label, len(self.keys))
        watchdog = asyncio.get_running_loop().create_task(self._watch(ws))
        closed: ConnectionClosed | None = None
        try:
            for message in greeting:
                await ws.send(message)
            await self.sync()
            async for frame in ws:
                try:
                    key = self.link.on_frame(frame)
                except AuthRefused as refused:
                    return refused
                except Exception:  # a bug in handling one frame must not cost the connection
                    self.log.exception("%s: failed to handle a frame", self.label)
                    continue
                if unconfirmed is not None and self.sessions is not None:
                    self.sessions.accepted(unconfirmed)
                    unconfirmed = None
                if key is not None:
                    self._on_data(key)
        except ConnectionClosed as exc:
            closed = exc
        finally:
            watchdog.cancel()
            if ws.transport is not None and not ws.transport.is_closing():
                ws.transport.abort()
            self._ws, self.sent = None, set()
        return self._cause or _describe_close(self.link.name, ws, closed)

    def _on_data(self, key: K) -> None:
        self._last_data = self.clock()
        if key in self._ticked:
            self.silence_window = self.silence_timeout
        else:
            self._ticked.add(key)

    async def _watch(self, ws: ClientConnection) -> None:
        """Send the broker's heartbeat and close a connection gone silent during market hours."""
        check = max(0.01, min(self.heartbeat_interval, self.silence_timeout / 4, 1.0))
        next_beat = self.clock() + self.heartbeat_interval
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(check)
                now = self.clock()
                if self.link.heartbeat is not None and now >= next_beat:
                    next_beat = now + self.heartbeat_interval
                    await ws.send(self.link.heartbeat)
                silent_for = now - self._last_data
                if self.sent and silent_for > self.silence_window and self.link.market_open(set(self.sent)):
                    self._cause = f"no ticks for {silent_for:.1f} s during market hours"
                    self.silence_window = min(self.silence_window * 2, self.silence_timeout * MAX_SILENCE_FACTOR)
                    await ws.close(1000, "no ticks")
                    return


def _public(url: str) -> str:
    """``url`` without its query and user info: some brokers (Kite) put the access token there."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=netloc, query="", fragment="").geturl()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


def _describe_close(name: str, ws: ClientConnection, exc: ConnectionClosed | None) -> str:
    rcvd = exc.rcvd if exc is not None else ws.protocol.close_rcvd
    if rcvd is not None:
        reason = f": {rcvd.reason}" if rcvd.reason else ""
        return f"{name} closed the connection (code {rcvd.code}{reason})"
    sent = exc.sent if exc is not None else ws.protocol.close_sent
    if sent is not None and sent.code == 1011:
        return "the connection stopped answering pings"
    return "the connection dropped without a close frame"
