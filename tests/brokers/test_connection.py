"""The connection runner against a real WebSocket server on 127.0.0.1, with a tiny fake broker.

The fake broker speaks text: ``sub A,B`` / ``unsub A`` to subscribe, ``tick A`` is a data tick
of key ``A``, ``auth TOKEN`` the optional auth message, answered ``refused`` when the token is
refused. Timings are a few hundredths of a second; the backoff's rng and the clock are
injected where a test needs to know the sleeps or the age of a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from oaws.brokers.connection import (
    AuthRefused,
    Backoff,
    BrokerLink,
    Connection,
    Endpoint,
    Message,
    Sessions,
    StandDown,
)

LOG = "oaws.brokers.connection"


@dataclass(eq=False)
class Token:
    value: str


class Upstream:
    """A broker on 127.0.0.1:0 that records handshakes and messages and misbehaves on request."""

    def __init__(self) -> None:
        self.handshakes = 0
        self.tokens: list[str | None] = []
        #: HTTP statuses to answer the next handshakes with, one each
        self.refusals: list[int] = []
        #: tokens answered with 401 at the handshake, or ``refused`` to their auth message
        self.refused_tokens: set[str] = set()
        #: answer each subscription with one tick per key, as brokers send a snapshot
        self.snapshot = False
        self.messages: list[str] = []
        self.sockets: list[ServerConnection] = []
        #: called at every handshake, before it is answered
        self.on_handshake: Callable[[], None] = lambda: None
        self._server: Server | None = None
        self.url = ""

    async def __aenter__(self) -> Upstream:
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._handshake, close_timeout=0.5)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/feed"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def ws(self) -> ServerConnection:
        return self.sockets[-1]

    def subscribes(self) -> list[str]:
        return [m for m in self.messages if m.startswith("sub ")]

    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        self.on_handshake()
        token = request.headers.get("x-token")
        self.tokens.append(token)
        if self.refusals:
            return connection.respond(self.refusals.pop(0), "refused\n")
        if token in self.refused_tokens:
            return connection.respond(401, "bad token\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self.sockets.append(ws)
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                assert isinstance(message, str)
                self.messages.append(message)
                if message.startswith("auth ") and message[5:] in self.refused_tokens:
                    await ws.send("refused")
                elif self.snapshot and message.startswith("sub "):
                    for key in message[4:].split(","):
                        await ws.send(f"tick {key}")

    async def tick(self, key: str) -> None:
        await self.ws.send(f"tick {key}")


class FakeLink(BrokerLink[str, Token]):
    """Everything a broker writes: where to connect, its messages, its decoding, its market."""

    name = "Fake"

    def __init__(self, url: str, *, market_open: bool = True, auth_message: bool = False) -> None:
        self.url = url
        self.open = market_open
        self.auth_message = auth_message
        #: the keys of the data ticks it decoded
        self.ticks: list[str] = []

    def endpoint(self, session: Token | None) -> Endpoint:
        return Endpoint(self.url, {"x-token": session.value} if session and not self.auth_message else {})

    def greeting(self, session: Token | None) -> list[Message]:
        return [f"auth {session.value}"] if session and self.auth_message else []

    def subscribe(self, keys: set[str]) -> list[Message]:
        return [f"sub {','.join(sorted(keys))}"]

    def unsubscribe(self, keys: set[str]) -> list[Message]:
        return [f"unsub {','.join(sorted(keys))}"]

    def on_frame(self, frame: Message) -> str | None:
        if frame == "refused":
            raise AuthRefused("token refused")
        if isinstance(frame, str) and frame.startswith("tick "):
            self.ticks.append(frame[5:])
            return frame[5:]
        return None

    def market_open(self, keys: set[str]) -> bool:
        return self.open


class FakeBrokerError(Exception):
    pass


def sessions(stored: str | None) -> Sessions[Token]:
    """Sessions that start from a stored token (if any); logins give "fresh", "fresh2", "fresh3"..."""
    issued = itertools.count(1)

    async def login() -> Token:
        n = next(issued)
        return Token("fresh" if n == 1 else f"fresh{n}")

    return Sessions(
        "Fake Broker",
        login,
        stored=(lambda: Token(stored)) if stored else None,
        refused_fresh=lambda reason: FakeBrokerError(f"Fake Broker refused a fresh login's token ({reason})"),
    )


def make(link: BrokerLink[str, Token], **options: Any) -> Connection[str, Token]:
    defaults: dict[str, Any] = {
        "label": "Fake feed",
        "backoff": Backoff(0.01, 0.04, rng=random.Random(1)),
        "stable_after": 5.0,
        "silence_timeout": 5.0,
        "heartbeat_interval": 5.0,
        "open_timeout": 2.0,
    }
    return Connection(link, **{**defaults, **options})


@contextlib.asynccontextmanager
async def running(conn: Connection[str, Token]) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(conn.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def eventually(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


class RecordingRng(random.Random):
    """Returns ``fraction`` of each bound the backoff draws below, and remembers the bounds."""

    def __init__(self, fraction: float) -> None:
        super().__init__()
        self.fraction = fraction
        self.draws: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.draws.append((a, b))
        return a + (b - a) * self.fraction


def disconnect_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOG and r.levelno == logging.WARNING]


@pytest.fixture
async def up() -> AsyncIterator[Upstream]:
    async with Upstream() as upstream:
        yield upstream


# Reconnects -------------------------------------------------------------------------------
async def test_a_dropped_connection_is_reconnected_and_everything_resubscribed(up, caplog):
    conn = make(FakeLink(up.url))
    conn.keys |= {"A", "B"}
    async with running(conn):
        await eventually(lambda: up.subscribes() == ["sub A,B"])
        up.ws.transport.abort()
        await eventually(lambda: up.subscribes() == ["sub A,B", "sub A,B"])
        assert up.handshakes == 2 and conn.sent == {"A", "B"}
        assert conn.status() == {
            "state": "connected",
            "reconnects": 1,
            "last_disconnect": "the connection dropped without a close frame",
        }
    line = "Fake feed: the connection dropped without a close frame; reconnecting"
    assert disconnect_lines(caplog)[0].startswith(line)


async def test_sync_sends_only_the_difference_and_forget_sends_nothing(up):
    conn = make(FakeLink(up.url))
    conn.keys.add("A")
    async with running(conn):
        await eventually(lambda: up.subscribes() == ["sub A"])
        conn.keys |= {"B", "C"}
        conn.keys.discard("A")
        await conn.sync()
        conn.forget({"B"})  # the broker refused B: no unsubscribe for it
        await conn.sync()
        await eventually(lambda: len(up.messages) == 3)
        assert up.messages == ["sub A", "unsub A", "sub B,C"] and conn.sent == {"C"}
        up.ws.transport.abort()
        await eventually(lambda: up.subscribes()[-1:] == ["sub C"] and up.handshakes == 2)


async def test_backoff_grows_with_full_jitter_to_its_cap_and_resets_after_a_stable_connection(up, caplog):
    caplog.set_level(logging.INFO, logger=LOG)
    rng = RecordingRng(0.5)
    now = [0.0]
    conn = make(FakeLink(up.url), backoff=Backoff(0.01, 0.04, rng=rng), stable_after=30.0, clock=lambda: now[0])
    up.refusals = [503, 503, 503, 503]
    async with running(conn):
        await eventually(lambda: conn.connected)
        up.ws.transport.abort()  # up for no time at all: the backoff goes on growing
        await eventually(lambda: conn.connected and up.handshakes == 6)
        now[0] += 30.0  # this one stays up long enough
        up.ws.transport.abort()
        await eventually(lambda: conn.connected and up.handshakes == 7)
    assert [bound for _, bound in rng.draws] == [0.01, 0.02, 0.04, 0.04, 0.04, 0.01]
    assert all(low == 0 for low, _ in rng.draws)  # full jitter: from zero, not from half the bound
    delays = [r.args[2] for r in caplog.records if r.name == LOG and "reconnecting in" in r.msg]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.02, 0.02, 0.005])


def test_a_zero_draw_waits_the_floor_not_zero():
    never = RecordingRng(0.0)
    backoff = Backoff(1.0, 8.0, rng=never)
    assert [backoff.next() for _ in range(3)] == [0.1, 0.1, 0.1]
    assert Backoff(1.0, 8.0, floor=0.5, rng=never).next() == 0.5
    with pytest.raises(ValueError, match="floor must be positive"):
        Backoff(0.0, 8.0)


# Silence ----------------------------------------------------------------------------------
async def test_silence_closes_the_connection_only_while_its_market_is_open(up, caplog):
    link = FakeLink(up.url, market_open=False)
    conn = make(link, silence_timeout=0.05)
    conn.keys.add("A")
    async with running(conn):
        await eventually(lambda: up.subscribes())
        await asyncio.sleep(0.3)  # six windows of silence with the market closed
        assert up.handshakes == 1 and conn.reconnects == 0
        link.open = True
        await eventually(lambda: up.handshakes == 2)
    assert conn.last_disconnect is not None
    assert conn.last_disconnect.startswith("no ticks for 0.") and conn.last_disconnect.endswith("during market hours")
    assert conn.silence_window == 0.1


async def test_a_connection_without_subscriptions_is_never_silent(up):
    conn = make(FakeLink(up.url), silence_timeout=0.05)
    async with running(conn):
        await eventually(lambda: conn.connected)
        await asyncio.sleep(0.3)
        assert up.handshakes == 1 and conn.reconnects == 0


async def test_each_silent_reconnect_doubles_the_window_up_to_sixteen_times(up):
    conn = make(FakeLink(up.url), silence_timeout=0.01)
    conn.keys.add("A")
    windows: list[float] = []
    up.on_handshake = lambda: windows.append(conn.silence_window)
    async with running(conn):
        await eventually(lambda: len(windows) == 7)
    assert windows == [0.01, 0.02, 0.04, 0.08, 0.16, 0.16, 0.16]


async def test_only_a_second_tick_of_a_key_resets_the_window(up):
    up.snapshot = True  # every subscription is answered with one tick per key, then nothing
    link = FakeLink(up.url)
    conn = make(link, silence_timeout=0.05)
    conn.keys |= {"A", "B"}
    windows: list[float] = []
    up.on_handshake = lambda: windows.append(conn.silence_window)
    async with running(conn):
        await eventually(lambda: len(link.ticks) == 6)  # three sockets, a snapshot of A and B on each
        assert windows == [0.05, 0.1, 0.2]  # doubled at each silent reconnect: the snapshots proved nothing
        assert conn.silence_window == 0.2
        await up.tick("B")  # with the snapshot's, two ticks of B on one socket: the market is live
        await eventually(lambda: conn.silence_window == 0.05)
        assert up.handshakes == 3


# Credentials ------------------------------------------------------------------------------
async def test_a_refused_stored_session_costs_one_login_and_the_fresh_one_connects(up, caplog):
    caplog.set_level(logging.INFO, logger=LOG)
    up.refused_tokens = {"stored"}
    keeper = sessions(stored="stored")
    conn = make(FakeLink(up.url), sessions=keeper)
    conn.keys.add("A")
    async with running(conn):
        await eventually(lambda: up.subscribes() == ["sub A"])
    assert up.tokens == ["stored", "fresh"] and keeper.logins == 1 and conn.reconnects == 0
    assert "Fake Broker refused the stored session tokens (Unauthorized); logging in again" in caplog.text
    assert "Fake feed: Fake refused the session tokens (HTTP 401: Unauthorized); logged in again; connecting again" in (
        caplog.text
    )


async def test_connections_refused_with_one_session_share_one_login(up):
    up.refused_tokens = {"stored"}
    keeper = sessions(stored="stored")
    conns = [make(FakeLink(up.url), sessions=keeper, label=f"Fake feed {i}") for i in range(3)]
    async with running(conns[0]), running(conns[1]), running(conns[2]):
        await eventually(lambda: all(c.connected for c in conns))
    assert keeper.logins == 1 and sorted(up.tokens) == ["fresh"] * 3 + ["stored"] * 3


async def test_a_fresh_session_refused_again_stands_down_with_the_brokers_error(up):
    up.refused_tokens = {"stored", "fresh"}
    keeper = sessions(stored="stored")
    conn = make(FakeLink(up.url), sessions=keeper)
    with pytest.raises(FakeBrokerError, match=r"refused a fresh login's token \(Unauthorized\)"):
        await asyncio.wait_for(conn.run(), 5)
    assert up.tokens == ["stored", "fresh"] and keeper.logins == 1 and conn.state == "error"


async def test_a_session_from_a_login_refused_at_once_stands_down_without_logging_in_again(up):
    up.refused_tokens = {"fresh"}
    keeper = sessions(stored=None)
    conn = make(FakeLink(up.url), sessions=keeper)
    with pytest.raises(FakeBrokerError):
        await asyncio.wait_for(conn.run(), 5)
    assert up.tokens == ["fresh"] and keeper.logins == 1


async def test_a_session_the_broker_accepted_before_is_refreshed_once_more(up):
    keeper = sessions(stored=None)
    conn = make(FakeLink(up.url), sessions=keeper)
    async with running(conn):
        await eventually(lambda: conn.connected)
        up.refused_tokens = {"fresh"}  # the nightly rollover
        up.ws.transport.abort()
        await eventually(lambda: conn.connected and up.handshakes == 3)
    assert up.tokens == ["fresh", "fresh", "fresh2"] and keeper.logins == 2


async def test_a_refusal_in_a_frame_counts_as_one_too(up):
    up.refused_tokens = {"stored", "fresh"}
    keeper = sessions(stored="stored")
    conn = make(FakeLink(up.url, auth_message=True), sessions=keeper)
    with pytest.raises(FakeBrokerError, match="token refused"):
        await asyncio.wait_for(conn.run(), 5)
    assert [m for m in up.messages if m.startswith("auth")] == ["auth stored", "auth fresh"] and keeper.logins == 1


async def test_refused_credentials_without_a_session_to_refresh_stand_down(up):
    up.refusals = [403]
    conn = make(FakeLink(up.url))
    with pytest.raises(StandDown, match=r"Fake refused the credentials \(HTTP 403: Forbidden\)"):
        await asyncio.wait_for(conn.run(), 5)
    assert up.handshakes == 1


# Causes -----------------------------------------------------------------------------------
async def _close_4000(up: Upstream, link: FakeLink) -> None:
    await up.ws.close(4000, "maintenance")


async def _drop(up: Upstream, link: FakeLink) -> None:
    up.ws.transport.abort()


async def _stop_reading(up: Upstream, link: FakeLink) -> None:
    up.ws.transport.pause_reading()  # the client's pings go unanswered


async def _drop_and_refuse(up: Upstream, link: FakeLink) -> None:
    up.refusals = [503]
    up.ws.transport.abort()


async def _market_opens(up: Upstream, link: FakeLink) -> None:
    link.open = True  # no tick has come, and now the market is open


#: fault -> (what the upstream does, the causes of the disconnects that follow)
FAULTS = {
    "closed by peer": (_close_4000, ["Fake closed the connection (code 4000: maintenance)"]),
    "dropped": (_drop, ["the connection dropped without a close frame"]),
    "stopped answering pings": (_stop_reading, ["the connection stopped answering pings"]),
    "refused HTTP status": (
        _drop_and_refuse,
        ["the connection dropped without a close frame", "Fake refused the connection (HTTP 503: Service Unavailable)"],
    ),
    "silent": (_market_opens, ["no ticks for 0."]),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_each_disconnect_logs_one_line_with_its_cause(up, caplog, fault):
    caplog.set_level(logging.INFO, logger=LOG)
    act, causes = FAULTS[fault]
    link = FakeLink(up.url, market_open=False)
    conn = make(link, heartbeat_interval=0.05, silence_timeout=0.05)
    conn.keys.add("A")
    async with running(conn):
        await eventually(lambda: up.subscribes())
        await act(up, link)
        await eventually(lambda: conn.reconnects >= len(causes))
    lines = disconnect_lines(caplog)
    assert len(lines) == conn.reconnects, lines
    for line, cause in zip(lines, causes, strict=False):
        assert line.startswith(f"Fake feed: {cause}") and "; reconnecting in " in line, lines
    recorded = [cause for _, cause in conn.disconnects]
    assert all(got.startswith(cause) for got, cause in zip(recorded, causes, strict=False)), recorded


async def test_cannot_connect_says_why_and_keeps_a_token_in_the_url_out_of_the_log(caplog):
    conn = make(FakeLink("ws://127.0.0.1:9/feed?access_token=s3cret"))
    async with running(conn):
        await eventually(lambda: conn.reconnects >= 2)
    lines = disconnect_lines(caplog)
    assert lines[0].startswith("Fake feed: cannot connect to ws://127.0.0.1:9/feed (")
    assert len(lines) == conn.reconnects
    assert "s3cret" not in caplog.text and conn.state == "reconnecting"


async def test_the_brokers_heartbeat_is_sent_every_interval(up):
    link = FakeLink(up.url)
    link.heartbeat = "ping"
    conn = make(link, heartbeat_interval=0.05)
    async with running(conn):
        await eventually(lambda: up.messages.count("ping") >= 3)
        assert up.handshakes == 1


async def test_a_frame_the_broker_cannot_handle_is_logged_and_the_connection_stays(up, caplog):
    class Fragile(FakeLink):
        def on_frame(self, frame: Message) -> str | None:
            if frame == "boom":
                raise ValueError("cannot decode")
            return super().on_frame(frame)

    link = Fragile(up.url)
    conn = make(link)
    conn.keys.add("A")
    async with running(conn):
        await eventually(lambda: up.subscribes())
        await up.ws.send("boom")
        await eventually(lambda: "failed to handle a frame" in caplog.text)
        await up.tick("A")
        await eventually(lambda: link.ticks == ["A"])
        assert up.handshakes == 1 and conn.reconnects == 0


def test_the_runner_knows_neither_the_proxy_nor_the_cli_nor_the_tui():
    probe = (
        "import sys, oaws.brokers.connection, oaws.brokers.hours; "
        "print([m for m in sys.modules if m.startswith(('oaws.server', 'oaws.cli', 'oaws.tui'))])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


async def test_a_refused_login_is_not_tried_again_by_another_connection():
    attempts = 0

    async def login() -> Token:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        raise FakeBrokerError("Fake Broker refused the login")

    sessions: Sessions[Token] = Sessions("Fake Broker", login, refused_fresh=FakeBrokerError)
    results = await asyncio.gather(sessions.current(), sessions.current(), return_exceptions=True)
    assert all(isinstance(r, FakeBrokerError) for r in results) and attempts == 1 and sessions.logins == 1
