"""Faults with real processes and sockets: the feed or the proxy killed and restarted,
client churn, resets and half-open connections."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import orjson
import pytest
from websockets.asyncio.client import connect

from oaws.client import Client, Status, Tick
from oaws.instruments import Instrument
from oaws.server.proxy import Proxy, ProxyOptions
from oaws.server.service import ServeOptions, Service
from tests.conftest import raw_websocket

OAWS = [sys.executable, "-m", "oaws"]
RELIANCE = Instrument("RELIANCE", "NSE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(env, *args) -> subprocess.Popen:
    proc = subprocess.Popen([*OAWS, "serve", "--rate", "20", *args], env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "serving" in line:
            return proc
    raise AssertionError(f"server did not start: {proc.wait()}")


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_feed_killed_and_restarted_proxy_and_clients_carry_on(cli_env):
    bus = f"tcp://127.0.0.1:{free_port()}"
    feed = start(cli_env, "--role", "feed", "--bus", bus)
    proxy = Proxy(bus, ProxyOptions(port=0))
    await proxy.start()
    try:
        client = Client(proxy.url, instruments=[RELIANCE], mode=2)
        before, fresh, restarted_ns = 0, 0, None
        async with asyncio.timeout(20), client:
            async for event in client:
                if isinstance(event, Status):
                    assert event.state != "reconnecting"  # the client never notices
                if not isinstance(event, Tick):
                    continue
                if restarted_ns is None:
                    before += 1
                    if before == 3:
                        feed.send_signal(signal.SIGKILL)
                        feed.wait()
                        await asyncio.sleep(0.5)
                        restarted_ns = time.time_ns()
                        feed = start(cli_env, "--role", "feed", "--bus", bus)
                elif event.data["ts_ns"] > restarted_ns:  # made by the new feed
                    fresh += 1
                    if fresh == 3:
                        break
        assert fresh == 3
    finally:
        feed.terminate()
        feed.wait(5)
        await proxy.close()


def test_proxy_killed_and_restarted_tail_resubscribes(cli_env):
    port, bus = free_port(), f"tcp://127.0.0.1:{free_port()}"
    server = start(cli_env, "--port", str(port), "--bus", bus)
    tail = subprocess.Popen(
        [*OAWS, "tail", "--json", "--url", f"ws://127.0.0.1:{port}", "RELIANCE:NSE"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert orjson.loads(tail.stdout.readline())["symbol"] == "RELIANCE"
        server.send_signal(signal.SIGKILL)
        server.wait()
        restarted_ns = time.time_ns()
        server = start(cli_env, "--port", str(port), "--bus", bus)
        # lines keep coming from the new server without tail being told anything
        deadline = time.monotonic() + 15
        seen_new = False
        while time.monotonic() < deadline and not seen_new:
            line = tail.stdout.readline()
            seen_new = orjson.loads(line)["data"]["ts_ns"] > restarted_ns  # made by the new server
        assert seen_new
    finally:
        tail.terminate()
        err = tail.communicate(timeout=5)[1]
        server.terminate()
        server.wait(5)
    assert "reconnecting" in err and "Traceback" not in err


async def test_a_thousand_connect_subscribe_disconnect_cycles_leave_nothing_behind():
    service = Service(ServeOptions(port=0, bus="tcp://127.0.0.1:*", rate=20))
    await service.start()
    try:

        async def cycle(i: int) -> None:
            async with connect(service.url) as ws:
                await ws.send(
                    orjson.dumps(
                        {"action": "subscribe", "symbol": f"S{i % 50}", "exchange": "NSE", "mode": 1 + i % 3}
                    ).decode()
                )
                await ws.recv()

        for i in range(20):  # warm up the loop's own structures
            await cycle(i)
        await asyncio.sleep(0.3)
        fds, tasks, rss = fd_count(), len(asyncio.all_tasks()), rss_mib()
        for start_i in range(0, 1000, 50):
            await asyncio.gather(*(cycle(i) for i in range(start_i, start_i + 50)))
        await asyncio.sleep(0.5)
        p = service.proxy
        assert p.clients == set() and p.routes == {} and p.last == {} and p.conflating == set()
        assert service.feed.wanted == {}
        assert fd_count() <= fds + 2 and len(asyncio.all_tasks()) <= tasks + 1
        assert rss_mib() - rss < 20  # allocator slack, not a leak per connection
    finally:
        await service.stop()


async def test_abrupt_resets_are_cleaned_up(bus, proxy):
    for _ in range(20):
        async with connect(proxy.url) as ws:
            await ws.send('{"action":"subscribe","symbol":"RELIANCE","exchange":"NSE"}')
            await ws.recv()
            sock = ws.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            ws.transport.abort()  # RST, no close frame
    await asyncio.sleep(0.5)
    assert proxy.clients == set() and proxy.routes == {}


@pytest.mark.parametrize("proxy_options", [ProxyOptions(port=0, ping_interval=0.2, ping_timeout=0.3)])
async def test_half_open_connection_is_found_by_ping_timeout(bus, proxy):
    """A peer that vanished without a FIN answers nothing, not even pings."""
    _, writer = await raw_websocket(proxy.url)
    await asyncio.sleep(0.1)
    assert len(proxy.clients) == 1
    deadline = time.monotonic() + 3
    while proxy.clients and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert proxy.clients == set()
    writer.close()


def test_proxy_killed_and_restarted_record_writes_a_gap_and_goes_on(cli_env, tmp_path):
    port, bus = free_port(), f"tcp://127.0.0.1:{free_port()}"
    server = start(cli_env, "--port", str(port), "--bus", bus)
    path = tmp_path / "ticks.jsonl"
    record = subprocess.Popen(
        [*OAWS, "record", str(path), "--url", f"ws://127.0.0.1:{port}", "RELIANCE:NSE"],
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
    )

    def lines() -> list[dict]:
        text = path.read_text() if path.exists() else ""
        return [orjson.loads(line) for line in text.splitlines() if line.endswith("}")]

    def wait(predicate, timeout=15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert predicate()

    try:
        wait(lambda: sum(r["type"] == "market_data" for r in lines()) >= 5)
        server.send_signal(signal.SIGKILL)
        server.wait()
        server = start(cli_env, "--port", str(port), "--bus", bus)
        wait(
            lambda: (
                any(r["type"] == "gap" for r in lines()) and [r["type"] for r in lines()][-3:] == ["market_data"] * 3
            )
        )
    finally:
        record.terminate()
        err = record.communicate(timeout=10)[1]
        server.terminate()
        server.wait(5)
    assert record.returncode == 0 and "Traceback" not in err
    kinds = [r["type"] for r in lines()]
    assert kinds[0] == "header" and kinds.count("gap") == 1
    gap = lines()[kinds.index("gap")]
    assert gap["from_ns"] < gap["to_ns"]
