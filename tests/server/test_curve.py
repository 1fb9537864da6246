"""CURVE on the bus in every role that has a proxy: the all-in-one server's own proxy, and
the extra proxy workers of `--workers N`, get the keys too (they were once left without them)."""

from __future__ import annotations

import asyncio
import urllib.request

import orjson
import pytest

from oaws.server.curve import generate
from oaws.server.service import Service
from oaws.server.settings import ServeSettings
from tests.helpers import first_tick, start_serve


async def test_serve_all_with_curve_serves_its_own_proxy(tmp_path):
    keys = tmp_path / "keys"
    generate(keys)
    service = Service(ServeSettings(port=0, bus="tcp://127.0.0.1:*", curve_dir=str(keys), feed={"rate": 50}))
    await service.start()
    try:
        assert service.hub is not None and service.proxy is not None
        assert (await first_tick(service.url, "RELIANCE"))["symbol"] == "RELIANCE"
        assert service.proxy.stats()["bus_refused"] is None
    finally:
        await service.stop()


def _health_pid(url: str) -> int:
    with urllib.request.urlopen(url.replace("ws://", "http://") + "/health", timeout=5) as answer:
        return int(orjson.loads(answer.read())["answered_by"])  # "pid" is the server's, whoever answers


@pytest.mark.process
async def test_proxy_workers_get_the_curve_keys(tmp_path, cli_env):
    keys = tmp_path / "keys"
    generate(keys)
    feed = Service(ServeSettings(role="feed", bus="tcp://127.0.0.1:*", curve_dir=str(keys), feed={"rate": 50}))
    await feed.start()
    args = ("--role", "proxy", "--workers", "2", "--port", "0", "--bus", feed.bus, "--curve", str(keys))
    server, url = await asyncio.to_thread(start_serve, cli_env, *args, announce=r"serving on (ws://\S+) with 2 proxy")
    try:
        # the kernel spreads new connections over both processes: see both answer...
        pids: set[int] = set()
        deadline = asyncio.get_running_loop().time() + 30  # the worker starts a moment after the first
        while len(pids) < 2 and asyncio.get_running_loop().time() < deadline:
            pids.add(await asyncio.to_thread(_health_pid, url))
            await asyncio.sleep(0.02)
        assert len(pids) == 2, pids
        # ...and every client gets ticks, whichever process took it (1 in 2**12 all land on one)
        ticks = await asyncio.gather(*(first_tick(url, "INFY") for _ in range(12)))
        assert all(t["symbol"] == "INFY" for t in ticks)
    finally:
        server.terminate()
        server.wait(10)
        await feed.stop()
