"""What many tests need, once: waiting for a condition, running ``oaws`` in a process, a
fake feed on a real ZeroMQ bus, free ports, and reading JSON frames off a WebSocket.

Fixtures built on these live in ``tests/conftest.py``; see tests/README.md for where a
new test goes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import zmq
import zmq.asyncio
from websockets.asyncio.client import connect

#: ``oaws`` as a subprocess runs it: this interpreter, this checkout
OAWS = [sys.executable, "-m", "oaws"]


# Waiting ---------------------------------------------------------------------------
async def eventually(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.01, what: Any = ""
) -> None:
    """Wait until ``predicate()`` is true; fail the test after ``timeout`` (generous: 2 cores, -n 2).

    ``what`` (a string, or a function giving one) says what was awaited when it never came."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(interval)
    except TimeoutError:
        said = what() if callable(what) else what
        raise AssertionError(f"timed out after {timeout} s waiting for {said or predicate}") from None


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05, what: Any = "") -> None:
    """``eventually`` for tests without an event loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    said = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout} s waiting for {said or predicate}")


# Processes -------------------------------------------------------------------------
def oaws(env: dict[str, str], *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``oaws ARGS`` to its end; its exit code, stdout and stderr as text."""
    return subprocess.run([*OAWS, *args], check=False, env=env, capture_output=True, text=True, timeout=timeout)


def start_serve(
    env: dict[str, str], *args: str, announce: str = r"serving on (ws://\S+?):? ", timeout: float = 30
) -> tuple[subprocess.Popen[str], str]:
    """Start ``oaws serve ARGS`` and return it with the URL it announces on stderr.

    ``announce`` is the regular expression of its ready line, the URL as its first group.
    """
    proc = subprocess.Popen(
        [*OAWS, "serve", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:  # it exited
            break
        seen.append(line)
        found = re.search(announce, line)
        if found:
            return proc, found.group(1)
    proc.kill()
    proc.wait(5)
    raise AssertionError("oaws serve did not start:\n" + "".join(seen) + proc.stderr.read())


def free_port() -> int:
    """A TCP port that was free a moment ago (use port 0 wherever the server can report its port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# WebSocket frames --------------------------------------------------------------------
async def recv_json(ws: Any, timeout: float = 3.0) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def send_json(ws: Any, **body: Any) -> None:
    await ws.send(orjson.dumps(body).decode())


async def first_tick(url: str, symbol: str, exchange: str = "NSE", mode: int = 1, timeout: float = 10.0) -> dict:
    """Connect, subscribe to one instrument and return its first ``market_data`` message."""
    async with connect(url) as ws:
        await send_json(ws, action="subscribe", symbol=symbol, exchange=exchange, mode=mode)
        async with asyncio.timeout(timeout):
            while True:
                message = orjson.loads(await ws.recv())
                if message.get("type") == "market_data":
                    return message
                assert message.get("status") == "success", message


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


def masked_frame(body: bytes, opcode: int = 0x1) -> bytes:
    """A client's (masked) final frame around ``body``: text by default."""
    mask = os.urandom(4)
    n = len(body)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(body))


def never_reading_socket(url: str) -> socket.socket:
    """A blocking raw WebSocket client, past the handshake, with a tiny receive buffer: a
    client that stops reading (it never reads again unless the test does)."""
    host, port = url.removeprefix("ws://").split(":")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    s.recv(4096)
    return s


# A feed that is only a bus ------------------------------------------------------------
def tick(symbol: str = "RELIANCE", exchange: str = "NSE", ltp: float = 1424.5, **extra: Any) -> dict:
    return {
        "symbol": symbol,
        "exchange": exchange,
        "ltp": ltp,
        "ltt": 1_700_000_000_000,
        "timestamp": 1_700_000_000_001,
        **extra,
    }


class FakeBus:
    """A stand-in feed: an XPUB socket that records what the proxies subscribe to and
    publishes whatever a test hands it (good ticks, or hostile ones)."""

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


def broker_sim(
    env: dict[str, str], broker: str, prefix: str, last: str, *args: str
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``oaws sim BROKER ARGS`` on free ports and the ``export PREFIX...`` variables it prints,
    read up to ``last`` (the caller terminates the process)."""
    proc = subprocess.Popen(
        [*OAWS, "sim", broker, "--rest-port", "0", "--feed-port", "0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    exported: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and last not in exported:
        line = proc.stdout.readline()
        if not line:
            break
        found = re.match(rf"export ({prefix}\w+)=(\S+)", line)
        if found:
            exported[found.group(1)] = found.group(2).strip("'\"")
    if last not in exported:
        proc.kill()
        raise AssertionError(f"oaws sim {broker} exported no {last}: " + (proc.stderr.read() if proc.stderr else ""))
    return proc, exported
