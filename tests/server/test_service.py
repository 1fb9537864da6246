"""Feed + bus + proxy together (in process), and the client library against them."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from oaws.client import AuthError, Client, ConnectError, ServerError, Status, Tick
from oaws.instruments import Instrument, Stream
from oaws.server.service import Service, ServiceError
from oaws.server.settings import ServeSettings

RELIANCE = Instrument("RELIANCE", "NSE")
INFY = Instrument("INFY", "NSE")


def connect(url: str):
    # These clients read only some of what they are sent; without a queue limit the
    # client library keeps reading, and so sees the server's close frame at once.
    return ws_connect(url, max_queue=None)


def options(**kw) -> ServeSettings:
    base = dict(port=0, bus="tcp://127.0.0.1:*", feed={"seed": 7, "rate": 50.0})
    base.update(kw)
    return ServeSettings(**base)


@pytest.fixture
async def service():
    s = Service(options())
    await s.start()
    yield s
    await s.stop()


async def wait_until(predicate, timeout=3.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_feed_starts_on_first_subscriber_and_stops_after_last(service):
    feed = service.feed
    async with connect(service.url) as a, connect(service.url) as b:
        for ws in (a, b):
            await ws.send('{"action":"subscribe","symbol":"RELIANCE","exchange":"NSE","mode":1}')
        await wait_until(lambda: Stream(RELIANCE, 1) in service.hub.wanted)
        assert feed.wanted == {RELIANCE: {1}}
        m = orjson.loads(await a.recv())
        assert m["type"] == "subscription"
        m = orjson.loads(await a.recv())
        assert m["type"] == "market_data" and m["broker"] == "sim" and isinstance(m["data"]["ltp"], float)
        await a.close()
        await asyncio.sleep(0.2)
        assert feed.wanted == {RELIANCE: {1}}  # b still wants it
    await wait_until(lambda: not feed.wanted)


async def test_subscriptions_are_counted_across_proxies(service):
    second = Service(options(role="proxy", bus=service.bus))
    await second.start()
    try:
        async with connect(service.url) as a, connect(second.url) as b:
            for ws in (a, b):
                await ws.send('{"action":"subscribe","symbol":"INFY","exchange":"NSE","mode":2}')
                assert orjson.loads(await ws.recv())["type"] == "subscription"
            # both proxies get ticks; the late one gets the feed's latest at once
            for ws in (a, b):
                assert orjson.loads(await asyncio.wait_for(ws.recv(), 3))["symbol"] == "INFY"
            await a.close()
            await asyncio.sleep(0.3)
            assert INFY in service.feed.wanted
            assert orjson.loads(await asyncio.wait_for(b.recv(), 3))["type"] == "market_data"
        await wait_until(lambda: INFY not in service.feed.wanted)
    finally:
        await second.stop()


async def test_port_in_use_is_one_sentence():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        s = Service(options(port=taken.getsockname()[1]))
        with pytest.raises(ServiceError, match=r"port \d+ on 127.0.0.1 is in use"):
            await s.start()
    finally:
        taken.close()


async def test_bus_in_use_is_one_sentence(service):
    with pytest.raises(ServiceError, match=r"bus address .* is in use"):
        await Service(options(bus=service.bus)).start()


def test_refuses_public_address_without_key():
    with pytest.raises(ServiceError, match="without an API key"):
        Service(options(host="0.0.0.0"))


async def test_stop_closes_clients_with_1001(service):
    async with connect(service.url) as ws:
        await service.stop()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 3)
        assert closed.value.rcvd.code == 1001


async def test_client_iterates_ticks_and_reports_bad_symbols():
    s = Service(options())
    await s.start()
    try:
        client = Client(s.url, instruments=[RELIANCE, Instrument("NIFTY", "NSE_INDEX")], mode=3)
        seen: set[Instrument] = set()
        async with client:
            async for event in client:
                if isinstance(event, Tick):
                    assert event.mode == 3 and len(event.data["depth"]["buy"]) == 5
                    assert event.latency_ms is not None and event.latency_ms < 5000
                    seen.add(event.instrument)
                    if len(seen) == 2:
                        break
    finally:
        await s.stop()


async def test_client_reconnects_and_resubscribes_after_server_restart():
    first = Service(options())
    await first.start()
    port = first.proxy.port
    client = Client(first.url, instruments=[RELIANCE], mode=1, backoff=(0.05, 0.2))
    states: list[str] = []
    ticks_from_second = 0
    second = None
    async with asyncio.timeout(10), client:
        async for event in client:
            if isinstance(event, Status):
                states.append(event.state)
            elif isinstance(event, Tick) and second is None:
                await first.stop()
                second = Service(options(port=port))
                await second.start()
            elif isinstance(event, Tick) and states.count("connected") == 2:
                ticks_from_second += 1
                if ticks_from_second == 3:
                    break
    # the new server got the subscription without the caller doing anything
    assert second.feed.wanted == {RELIANCE: {1}}
    await second.stop()
    assert states[:2] == ["connecting", "connected"]
    assert "reconnecting" in states and states[-1] == "connected"


async def test_client_says_why_it_cannot_connect():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectError, match="connection refused"):
        async for _ in Client(f"ws://127.0.0.1:{port}"):
            pass


async def test_client_auth_refused_is_an_auth_error():
    s = Service(options(api_key="right"))
    await s.start()
    try:
        with pytest.raises(AuthError, match="refused the API key"):
            async for _ in Client(s.url, api_key="wrong", instruments=[RELIANCE]):
                pass
        events = []
        async for event in Client(s.url, api_key="right", instruments=[RELIANCE]):
            events.append(event)
            if isinstance(event, (Tick, ServerError)):
                break
        assert isinstance(events[-1], Tick)
    finally:
        await s.stop()


async def test_the_proxy_knows_the_registered_brokers_and_the_feeds_quota(monkeypatch):
    import dataclasses

    from oaws import brokers
    from oaws.brokers.api import BrokerLimits

    sim = brokers.get("sim")
    limited = dataclasses.replace(sim, limits=BrokerLimits(subscriptions=2))
    monkeypatch.setattr(brokers, "get", lambda name: limited if name == "sim" else sim)
    s = Service(options())
    await s.start()
    try:
        assert s.proxy.options.quota == 2
        async with connect(s.url) as ws:
            await ws.send('{"action":"get_supported_brokers"}')
            reply = orjson.loads(await ws.recv())
            assert reply == {
                "type": "supported_brokers",
                "status": "success",
                "brokers": brokers.names(),
                "count": len(brokers.names()),
            }
            symbols = [{"symbol": name, "exchange": "NSE"} for name in ("RELIANCE", "INFY", "TCS")]
            await ws.send(orjson.dumps({"action": "subscribe", "mode": 1, "symbols": symbols}).decode())
            reply = orjson.loads(await ws.recv())
            assert [e["status"] for e in reply["subscriptions"]] == ["success", "success", "error"]
    finally:
        await s.stop()


async def test_the_sim_broker_refuses_depth_20_per_entry_and_serves_its_five(service):
    async with connect(service.url) as ws:
        await ws.send(orjson.dumps({"action": "authenticate", "api_key": "any"}).decode())
        assert orjson.loads(await ws.recv())["status"] == "success"
        symbols = [{"symbol": "RELIANCE", "exchange": "NSE"}, {"symbol": "INFY", "exchange": "NSE"}]
        await ws.send(orjson.dumps({"action": "subscribe", "mode": 3, "depth": 20, "symbols": symbols}).decode())
        reply = orjson.loads(await ws.recv())
        assert [(e["code"], e["message"]) for e in reply["subscriptions"]] == [
            ("INVALID_DEPTH", "Invalid depth level 20. Must be 5")
        ] * 2
        assert reply["status"] == "partial" and not service.hub.wanted
        await ws.send(orjson.dumps({"action": "subscribe", "mode": 3, "symbols": symbols[:1]}).decode())
        assert orjson.loads(await ws.recv())["subscriptions"][0]["depth"] == 5
        await wait_until(lambda: Stream(RELIANCE, 3) in service.hub.wanted)


def test_is_loopback_takes_only_loopback_addresses_and_localhost_not_names_like_127_attacker():
    from oaws.server.service import is_loopback

    for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost", "[::1]", "LOCALHOST"):
        assert is_loopback(host), host
    for host in (
        "127.attacker.example",
        "127.0.0.1.nip.io",
        "localhost.attacker.example",
        "0.0.0.0",
        "::",
        "",
        "10.0.0.1",
    ):
        assert not is_loopback(host), host
    # so the refusal to listen without a key holds for such a name
    with pytest.raises(ServiceError, match="without an API key"):
        Service(options(host="127.attacker.example"))
