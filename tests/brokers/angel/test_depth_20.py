"""Angel's 20-level depth end to end: Angel simulator -> AngelFeed -> bus -> proxy -> client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from oaws.brokers.angel import wire
from oaws.cli import app as oaws_app
from oaws.client import Client, Reply, ServerError, Status, Subscribed, Tick
from oaws.instruments import DEPTH, parse
from oaws.server.proxy import Proxy, ProxyOptions
from tests.brokers.angel.conftest import make_feed
from tests.brokers.bus import FeedBus as Bus
from tests.helpers import eventually

RELIANCE, SBIN, FUTURE = parse("RELIANCE:NSE"), parse("SBIN:NSE"), parse("NIFTY26DEC24FUT:NFO")


@asynccontextmanager
async def angel_proxy(sim: Any, master: Any, tmp_path: Any, **feed_options: Any) -> AsyncIterator[Proxy]:
    """A proxy on the bus of an AngelFeed on the simulator, as ``oaws serve --broker angel`` wires them."""
    feed = make_feed(sim, master, tmp_path, **feed_options)
    async with Bus(feed) as bus:
        proxy = Proxy(bus.hub.endpoint, ProxyOptions(port=0), check=feed.check, depths=feed.depths)
        await proxy.start()
        try:
            yield proxy
        finally:
            await proxy.close()


async def until(events: AsyncIterator[Any], kind: type, test: Callable[[Any], bool] = lambda e: True) -> Any:
    async with asyncio.timeout(10):
        while True:
            event = await anext(events)
            if isinstance(event, kind) and test(event):
                return event


def levels(tick: Tick) -> int:
    return len(tick.data["depth"]["buy"])


async def test_a_client_gets_twenty_levels_and_another_five_of_the_same_instrument(sim, master, tmp_path):
    async with angel_proxy(sim, master, tmp_path) as proxy:
        deep = Client(proxy.url, api_key="any", instruments=[RELIANCE], mode=DEPTH, depth=20, backoff=(0.05, 0.2))
        five = Client(proxy.url, api_key="any", instruments=[RELIANCE], mode=DEPTH)
        async with deep, five:
            deep_events, five_events = aiter(deep), aiter(five)
            subscribed = await until(deep_events, Subscribed)
            assert subscribed.raw["subscriptions"][0]["depth"] == 20
            tick = await until(deep_events, Tick, lambda t: not t.snapshot)
            assert (tick.instrument, tick.mode, tick.data["depth_level"], levels(tick)) == (RELIANCE, 3, 20, 20)
            packet = next(p for p in sim.sent_depth if p.exchange_timestamp == tick.data["ltt"])
            assert tick.data["depth"]["sell"][19]["price"] == packet.depth_sell[19].price / 100
            tick = await until(five_events, Tick)
            assert (tick.mode, levels(tick)) == (3, 5) and "depth_level" not in tick.data
            modes = {(wire.DEPTH, wire.NSE_CM, "2885"), (wire.SNAP_QUOTE, wire.NSE_CM, "2885")}
            await eventually(lambda: sim.subscriptions() == modes)
            # a new connection asks for twenty levels again
            assert deep.ws is not None
            await deep.ws.close()
            await until(deep_events, Status, lambda s: s.state == "reconnecting")
            tick = await until(deep_events, Tick)
            assert levels(tick) == 20
            # unsubscribing Depth drops the twenty levels held, and Angel's mode 4 is released
            await deep.unsubscribe([RELIANCE], DEPTH)
            await eventually(lambda: sim.subscriptions() == {(wire.SNAP_QUOTE, wire.NSE_CM, "2885")})
            assert levels(await until(five_events, Tick)) == 5


async def test_depth_20_is_refused_outside_nse_cash_and_past_angels_quota(sim, master, tmp_path):
    async with angel_proxy(sim, master, tmp_path, depth_quota=1) as proxy:
        client = Client(proxy.url, api_key="any", instruments=[FUTURE], mode=DEPTH, depth=20)
        async with client:
            events = aiter(client)
            refused = await until(events, ServerError)
            assert (refused.code, refused.instrument, refused.raw["depth"]) == ("INVALID_DEPTH", FUTURE, 20)
            await client.subscribe([RELIANCE], DEPTH, 20)
            assert levels(await until(events, Tick, lambda t: t.instrument == RELIANCE)) == 20
            await client.subscribe([SBIN], DEPTH, 20)
            refused = await until(events, ServerError)
            assert (refused.code, refused.instrument) == ("LIMIT_EXCEEDED", SBIN)
            await client.get_subscriptions()
            held = await until(events, Reply, lambda r: r.body.get("type") == "subscriptions")
            assert held.body["subscriptions"] == [{"symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "depth": 20}]


async def test_oaws_tail_mode_depth_depth_20_prints_twenty_levels(sim, master, tmp_path):
    async with angel_proxy(sim, master, tmp_path) as proxy:
        args = ["tail", "--json", "--count", "2", "--no-autostart", "--url", proxy.url]
        args += ["--mode", "depth", "--depth", "20", "RELIANCE:NSE"]
        result = await asyncio.to_thread(CliRunner().invoke, oaws_app, args)
    assert result.exit_code == 0, result.output
    messages = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(messages) == 2
    for m in messages:
        assert (m["mode"], m["data"]["depth_level"], len(m["data"]["depth"]["sell"])) == (3, 20, 20)


async def test_oaws_subscribe_mode_depth_depth_20_prints_the_twenty_level_snapshot(sim, master, tmp_path):
    async with angel_proxy(sim, master, tmp_path) as proxy:
        args = ["subscribe", "--json", "--no-autostart", "--url", proxy.url, "--mode", "3", "--depth", "20"]
        result = await asyncio.to_thread(CliRunner().invoke, oaws_app, [*args, "RELIANCE:NSE"])
    assert result.exit_code == 0, result.output
    (message,) = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert (message["mode"], len(message["data"]["depth"]["buy"])) == (3, 20)


@pytest.mark.parametrize("command", ["tail", "subscribe"])
def test_depth_without_depth_mode_is_one_sentence(command):
    result = CliRunner().invoke(oaws_app, [command, "--no-autostart", "--depth", "20", "RELIANCE:NSE"])
    assert result.exit_code == 2 and "--depth 20 needs --mode depth" in result.stderr  # a usage error
