"""Shared fixtures: a test feed on a real ZeroMQ bus, a real proxy on port 0."""

from __future__ import annotations

import asyncio
import os

import orjson
import pytest
import zmq
import zmq.asyncio

from oaws.server.proxy import Proxy, ProxyOptions


class TestBus:
    """A stand-in feed: an XPUB socket that records what the proxies subscribe to."""

    def __init__(self) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.events: list[tuple[bool, bytes]] = []

    async def subscription(self, timeout: float = 3.0) -> tuple[bool, bytes]:
        """The next subscription event that is not a control prefix: (subscribed, topic)."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.sock.recv()
                event = (msg[0] == 1, msg[1:])
                if not event[1].startswith(b"_oaws."):
                    self.events.append(event)
                    return event

    async def control_ready(self) -> None:
        """Wait until the proxy's SUB socket has connected (it subscribes to _oaws. first)."""
        async with asyncio.timeout(3):
            while True:
                msg = await self.sock.recv()
                if msg[1:].startswith(b"_oaws."):
                    return

    def publish(self, topic: str, tick: dict) -> bytes:
        payload = orjson.dumps(tick)
        self.sock.send_multipart([topic.encode(), payload])
        return payload

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


async def raw_websocket(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket opened by hand, for clients that misbehave below the library's level."""
    host, port = url.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


def tick(symbol: str = "RELIANCE", exchange: str = "NSE", ltp: float = 1424.5, **extra) -> dict:
    return {
        "symbol": symbol,
        "exchange": exchange,
        "ltp": ltp,
        "ltt": 1_700_000_000_000,
        "timestamp": 1_700_000_000_001,
        **extra,
    }


@pytest.fixture
async def bus():
    b = TestBus()
    yield b
    b.close()


@pytest.fixture
def proxy_options() -> ProxyOptions:
    return ProxyOptions(port=0)


@pytest.fixture
async def proxy(bus, proxy_options):
    p = Proxy(bus.endpoint, proxy_options)
    await p.start()
    await bus.control_ready()
    yield p
    await p.close()


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    """An environment for oaws subprocesses: private state/config dirs, no user config."""
    env = dict(os.environ)
    env.update(
        OAWS_STATE_DIR=str(tmp_path / "state"),
        OAWS_CONFIG=str(tmp_path / "config.toml"),
        OAWS_CACHE_DIR=str(tmp_path / "cache"),
        PYTHONUNBUFFERED="1",
    )
    for key in ("OAWS_URL", "OAWS_API_KEY", "OAWS_BROKER", "OAWS_BUS", "OAWS_PORT", "OAWS_HOST", "OAWS_MODE"):
        env.pop(key, None)
    return env


@pytest.fixture
def ipc_bus():
    """A bus address of this test's own: an ipc socket in a short private directory.

    A tcp address from a port that was free a moment ago can be taken by another test
    (or another run) before the server binds it; a path cannot.
    """
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="oaws-bus-")  # short: ipc paths are limited to ~100 bytes
    yield f"ipc://{directory}/bus"
    shutil.rmtree(directory, ignore_errors=True)
