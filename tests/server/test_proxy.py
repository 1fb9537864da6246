"""The WebSocket proxy over a real ZeroMQ bus, with real clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from oaws.server.proxy import ProxyOptions, text_frame
from tests.helpers import eventually, masked_frame, never_reading_socket, tick


async def recv_json(ws, timeout=3.0):
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def send(ws, **body):
    await ws.send(orjson.dumps(body).decode())


async def subscribed(ws, bus, topic: bytes, **body):
    """Subscribe and wait until the bus saw the proxy subscribe ``topic``."""
    await send(ws, action="subscribe", **body)
    reply = await recv_json(ws)
    assert reply["status"] == "success", reply
    assert await bus.subscription() == (True, topic)
    return reply


def test_text_frame_lengths():
    assert text_frame(b"x") == b"\x81\x01x"
    assert text_frame(b"y" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert text_frame(b"z" * 70000)[:10] == b"\x81\x7f" + (70000).to_bytes(8, "big")


async def test_seed_and_openalgo_clients_together(bus, proxy):
    async with connect(proxy.url) as seed, connect(proxy.url) as algo:
        # a seed-style client: no auth, single subscribe, reads type/topic/data
        await subscribed(seed, bus, b"NSE_RELIANCE_QUOTE", symbol="RELIANCE", exchange="NSE")
        # an OpenAlgo-style client: authenticates, bulk subscribe with a mode
        await send(algo, action="authenticate", api_key="x")
        assert (await recv_json(algo))["type"] == "auth"
        await send(algo, action="subscribe", symbols=[{"symbol": "RELIANCE", "exchange": "NSE"}], mode=1, depth=5)
        reply = await recv_json(algo)
        assert reply["type"] == "subscribe" and reply["status"] == "success"
        assert await bus.subscription() == (True, b"NSE_RELIANCE_LTP")

        quote = bus.publish("NSE_RELIANCE_QUOTE", tick(volume=10, seq=1))
        ltp = bus.publish("NSE_RELIANCE_LTP", tick(seq=1))
        m = await recv_json(seed)
        assert m["type"] == "market_data" and m["topic"] == "RELIANCE.NSE" and m["mode"] == 2
        assert orjson.dumps(m["data"]) == quote  # every field passed through unchanged
        m = await recv_json(algo)
        assert (m["symbol"], m["exchange"], m["mode"], m["broker"]) == ("RELIANCE", "NSE", 1, "sim")
        assert orjson.dumps(m["data"]) == ltp


async def test_last_tick_sent_on_subscribe_marked_as_a_snapshot(bus, proxy):
    async with connect(proxy.url) as first, connect(proxy.url) as late:
        await subscribed(first, bus, b"NSE_INFY_LTP", symbol="INFY", exchange="NSE", mode=1)
        bus.publish("NSE_INFY_LTP", tick("INFY", ltp=1500.0))
        live = await recv_json(first)
        assert live["data"]["ltp"] == 1500.0 and "snapshot" not in live
        await send(late, action="subscribe", symbol="INFY", exchange="NSE", mode=1)
        assert (await recv_json(late))["type"] == "subscription"
        m = await recv_json(late)  # before any new tick is published
        assert m["type"] == "market_data" and m["data"]["ltp"] == 1500.0 and m["snapshot"] is True
        assert {k: v for k, v in m.items() if k != "snapshot"} == live  # the mark is the only difference
        bus.publish("NSE_INFY_LTP", tick("INFY", ltp=1501.0))
        m = await recv_json(late)
        assert m["data"]["ltp"] == 1501.0 and "snapshot" not in m


async def test_one_message_per_tick_per_mode_held_each_at_its_own_mode(bus, proxy):
    """OpenAlgo issue #1664: subscribe_ltp plus subscribe_quote on one symbol fires both callbacks."""
    async with connect(proxy.url) as ws, connect(proxy.url) as other:
        await subscribed(ws, bus, b"NSE_SBIN_LTP", symbol="SBIN", exchange="NSE", mode=1)
        await send(ws, action="subscribe", symbol="SBIN", exchange="NSE", mode=3)
        await recv_json(ws)
        assert await bus.subscription() == (True, b"NSE_SBIN_DEPTH")  # the feed hears of both modes
        await subscribed(other, bus, b"NSE_SBIN_QUOTE", symbol="SBIN", exchange="NSE", mode=2)
        bus.publish("NSE_SBIN_LTP", tick("SBIN", ltp=800.0))
        bus.publish("NSE_SBIN_QUOTE", tick("SBIN", ltp=800.0, volume=5))
        bus.publish("NSE_SBIN_DEPTH", tick("SBIN", ltp=800.0, depth={"buy": [], "sell": []}))
        got = [await recv_json(ws), await recv_json(ws)]
        assert sorted(m["mode"] for m in got) == [1, 3]
        assert all(("depth" in m["data"]) == (m["mode"] == 3) for m in got)  # each at its own mode's data
        m = await recv_json(other)
        assert m["mode"] == 2 and m["data"]["volume"] == 5
        # dropping depth leaves LTP as it was
        await send(ws, action="unsubscribe", symbol="SBIN", exchange="NSE", mode=3)
        assert (await recv_json(ws))["type"] == "unsubscription"
        assert await bus.subscription() == (False, b"NSE_SBIN_DEPTH")
        bus.publish("NSE_SBIN_LTP", tick("SBIN", ltp=801.0))
        m = await recv_json(ws)
        assert (m["mode"], m["data"]["ltp"]) == (1, 801.0)


async def test_batch_clients_get_arrays(bus, proxy):
    async with connect(proxy.url + "/?batch=1") as ws:
        await subscribed(ws, bus, b"NSE_TCS_LTP", symbol="TCS", exchange="NSE", mode="ltp")
        for i in range(5):
            bus.publish("NSE_TCS_LTP", tick("TCS", ltp=3000.0 + i))
        got = []
        while len(got) < 5:
            frame = await recv_json(ws)
            assert isinstance(frame, list)
            got += [m["data"]["ltp"] for m in frame]
        assert got == [3000.0, 3001.0, 3002.0, 3003.0, 3004.0]
        # replies stay single objects
        await send(ws, action="ping")
        assert (await recv_json(ws))["type"] == "pong"


async def test_last_client_leaving_unsubscribes_the_bus(bus, proxy):
    async with connect(proxy.url) as a:
        await subscribed(a, bus, b"NSE_ITC_QUOTE", symbol="ITC", exchange="NSE")
        async with connect(proxy.url) as b:
            await send(b, action="subscribe", symbol="ITC", exchange="NSE")
            await recv_json(b)
        await asyncio.sleep(0.1)
        assert proxy.routes  # a still holds it
    assert await bus.subscription() == (False, b"NSE_ITC_QUOTE")
    assert proxy.routes == {} and proxy.last == {}


@pytest.mark.parametrize("proxy_options", [ProxyOptions(port=0, api_key="k3y", auth_timeout=0.4)])
async def test_api_key_required_and_auth_timeout(bus, proxy):
    async with connect(proxy.url) as ws:
        await send(ws, action="subscribe", symbol="RELIANCE", exchange="NSE")
        assert (await recv_json(ws))["code"] == "NOT_AUTHENTICATED"
        await send(ws, action="authenticate", api_key="nope")
        assert (await recv_json(ws))["code"] == "AUTHENTICATION_ERROR"
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(ws, timeout=3)
        assert closed.value.rcvd.code == 4401
    async with connect(proxy.url) as ws:
        await send(ws, action="authenticate", api_key="k3y")
        assert (await recv_json(ws))["status"] == "success"
        await asyncio.sleep(0.6)  # past the auth timeout: still open
        await send(ws, action="ping")
        assert (await recv_json(ws))["type"] == "pong"


async def test_bad_input_gets_codes_and_connection_survives(bus, proxy):
    async with connect(proxy.url) as ws:
        for frame, code in [
            ("{oops", "INVALID_JSON"),
            ('{"action":"fly"}', "INVALID_ACTION"),
            ('{"action":"subscribe"}', "INVALID_PARAMETERS"),
            ('{"action":"subscribe","symbol":"A","exchange":"NSE","mode":"fast"}', "INVALID_MODE"),
            ('{"action":"subscribe","symbol":"A","exchange":"NSE","mode":3,"depth":3}', "INVALID_DEPTH"),
            ('{"action":"subscribe","symbol":"A","exchange":"MOON"}', "SYMBOL_NOT_FOUND"),
        ]:
            await ws.send(frame)
            reply = await recv_json(ws)
            assert reply["code"] == code, (frame, reply)
        await ws.send(b"\x00\x01binary")
        assert (await recv_json(ws))["code"] == "INVALID_JSON"
        # a binary frame holding JSON is a request like any other, as in OpenAlgo
        await ws.send(b'{"action":"ping","timestamp":5}')
        assert (await recv_json(ws))["client_timestamp"] == 5


async def test_oversize_frame_closes_1009_and_server_goes_on(bus, proxy):
    assert proxy.options.max_frame == 1024 * 1024  # OpenAlgo's limit (websockets' default)
    async with connect(proxy.url, max_size=None) as ws:
        await ws.send("x" * (proxy.options.max_frame + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(ws)
        assert closed.value.rcvd.code == 1009
    async with connect(proxy.url) as ws:
        await send(ws, action="ping")
        assert (await recv_json(ws))["type"] == "pong"


async def announced(bus, proxy, fid: str = "f1", **info) -> None:
    """A feed on the bus announces itself, as FeedHub does: its refusals are heard from then on."""
    bus.sock.send_multipart([b"_oaws.info", orjson.dumps({"fid": fid, "broker": "sim", "depths": [5], **info})])
    await eventually(lambda: fid in proxy.feeds.announced)


async def test_feed_rejection_reaches_the_client(bus, proxy):
    await announced(bus, proxy)
    async with connect(proxy.url) as ws:
        await subscribed(ws, bus, b"NSE_NOPE_LTP", symbol="NOPE", exchange="NSE", mode=1)
        reject = {"fid": "f1", "topic": "NSE_NOPE_LTP", "code": "SYMBOL_NOT_FOUND", "message": "NOPE is not listed"}
        bus.sock.send_multipart([b"_oaws.reject", orjson.dumps(reject)])
        err = await recv_json(ws)
        assert err["code"] == "SYMBOL_NOT_FOUND" and err["symbol"] == "NOPE"
        assert await bus.subscription() == (False, b"NSE_NOPE_LTP")
        await send(ws, action="get_subscriptions")
        assert (await recv_json(ws))["subscriptions"] == []


async def test_a_feed_rejection_takes_back_that_mode_only(bus, proxy):
    await announced(bus, proxy)
    async with connect(proxy.url) as ws:
        await subscribed(ws, bus, b"NSE_INFY_LTP", symbol="INFY", exchange="NSE", mode=1)
        await subscribed(ws, bus, b"NSE_INFY_DEPTH", symbol="INFY", exchange="NSE", mode=3)
        reject = {"fid": "f1", "topic": "NSE_INFY_DEPTH", "code": "LIMIT_EXCEEDED", "message": "no more depth"}
        bus.sock.send_multipart([b"_oaws.reject", orjson.dumps(reject)])
        err = await recv_json(ws)
        assert (err["code"], err["mode"]) == ("LIMIT_EXCEEDED", 3)
        assert await bus.subscription() == (False, b"NSE_INFY_DEPTH")
        await send(ws, action="get_subscriptions")
        assert (await recv_json(ws))["subscriptions"] == [{"symbol": "INFY", "exchange": "NSE", "mode": 1}]


@pytest.mark.parametrize("proxy_options", [ProxyOptions(port=0, api_key="k3y", brokers=("angel", "sim"))])
async def test_ping_and_supported_brokers_before_authentication(bus, proxy):
    async with connect(proxy.url) as ws:
        await send(ws, action="ping", timestamp=1)
        pong = await recv_json(ws)
        assert (pong["type"], pong["client_timestamp"]) == ("pong", 1)
        await send(ws, action="get_supported_brokers")
        assert await recv_json(ws) == {
            "type": "supported_brokers",
            "status": "success",
            "brokers": ["angel", "sim"],
            "count": 2,
        }
        await send(ws, action="get_broker_info")
        assert (await recv_json(ws))["code"] == "NOT_AUTHENTICATED"
        await send(ws, action="authenticate", api_key="k3y")
        await recv_json(ws)
        await send(ws, action="get_broker_info")
        info = await recv_json(ws)
        assert (info["type"], info["broker"], info["user_id"]) == ("broker_info", "sim", "oaws")


async def test_one_request_of_many_instruments_is_served_whole(bus, proxy):
    """OpenAlgo's SDK sends `subscribe_ltp` of 1,001 instruments as one request; OpenAlgo has no cap per request."""
    async with connect(proxy.url) as ws:
        await send(ws, action="authenticate", api_key="x")
        await recv_json(ws)
        names = [f"S{i}" for i in range(1001)]
        await send(ws, action="subscribe", mode="LTP", symbols=[{"symbol": n, "exchange": "NSE"} for n in names])
        reply = await recv_json(ws)
        assert reply["status"] == "success" and len(reply["subscriptions"]) == 1001
        topics = {(await bus.subscription())[1] for _ in names}
        assert topics == {f"NSE_{n}_LTP".encode() for n in names}
        bus.publish("NSE_S1000_LTP", tick("S1000", ltp=10.0))
        m = await recv_json(ws)
        assert (m["symbol"], m["mode"], m["data"]["ltp"]) == ("S1000", 1, 10.0)


@pytest.mark.parametrize("proxy_options", [ProxyOptions(port=0, quota=3)])
async def test_past_the_brokers_quota_entries_are_refused_and_the_rest_served(bus, proxy):
    async with connect(proxy.url) as a, connect(proxy.url) as b:
        await subscribed(a, bus, b"NSE_A_LTP", symbol="A", exchange="NSE", mode=1)
        await send(b, action="subscribe", mode=1, symbols=[{"symbol": s, "exchange": "NSE"} for s in "ABCD"])
        reply = await recv_json(b)
        assert reply["status"] == "partial"
        # A is served to a already: joining it costs nothing; B and C fill the quota of 3
        assert [e["status"] for e in reply["subscriptions"]] == ["success", "success", "success", "error"]
        assert reply["subscriptions"][3]["code"] == "LIMIT_EXCEEDED"
        assert len(proxy.routes) == 3


def _stalled_client(url: str, subscribe: list[str]) -> socket.socket:
    """A raw WebSocket client that subscribes and then never reads."""
    s = never_reading_socket(url)
    for topic in subscribe:
        sym, exch = topic.split(":")
        s.sendall(masked_frame(orjson.dumps({"action": "subscribe", "symbol": sym, "exchange": exch, "mode": 1})))
    return s


@pytest.mark.parametrize("proxy_options", [ProxyOptions(port=0, soft_limit=64 * 1024, slow_timeout=0.5)])
async def test_stalled_client_is_conflated_then_closed_and_others_get_everything(bus, proxy):
    stalled = await asyncio.to_thread(_stalled_client, proxy.url, ["RELIANCE:NSE"])
    try:
        assert await bus.subscription() == (True, b"NSE_RELIANCE_LTP")
        async with connect(proxy.url) as ws:
            await send(ws, action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1)
            await recv_json(ws)
            n = 20000
            received = 0

            async def reader():
                nonlocal received
                while received < n:
                    m = await recv_json(ws, timeout=10)
                    if m.get("type") == "market_data":
                        assert m["data"]["seq"] == received
                        received += 1

            task = asyncio.create_task(reader())
            pad = "p" * 200
            for i in range(n):
                bus.publish("NSE_RELIANCE_LTP", tick(seq=i, pad=pad))
                if i % 100 == 0:
                    await asyncio.sleep(0.005)  # the reader shares this loop: give it a turn
            await asyncio.wait_for(task, 20)
            assert received == n  # every tick, in order, despite the stalled client
            stalled_client = next(c for c in proxy.clients if c.ws.remote_address[1] == stalled.getsockname()[1])
            assert stalled_client.conflated > 0
            assert proxy.stats()["ticks_conflated"] >= stalled_client.conflated
            deadline = time.monotonic() + 5
            while stalled_client in proxy.clients and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert proxy.stats()["slow_closed"] == 1
            # the count outlives the client: status still shows what it never got
            assert proxy.stats()["ticks_conflated"] >= stalled_client.conflated > 0
    finally:
        stalled.close()


async def test_health_endpoint_reports_figures(bus, proxy):
    import urllib.request

    async with connect(proxy.url) as ws:
        await subscribed(ws, bus, b"NSE_RELIANCE_QUOTE", symbol="RELIANCE", exchange="NSE")
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(proxy.url.replace("ws", "http") + "/health").read()
        )
    stats = orjson.loads(body)
    assert stats["clients"] == 1 and stats["instruments"] == 1 and stats["per_client"][0]["subscriptions"] == 1


@pytest.mark.parametrize("proxy_options", [ProxyOptions(port=0, soft_limit=4096, slow_timeout=30)])
async def test_a_client_that_does_not_read_its_replies_is_not_read_either(bus, proxy):
    """What is queued for a client stays bounded: past the soft limit, its next request waits."""
    stalled = await asyncio.to_thread(_stalled_client, proxy.url, [])
    try:
        while not proxy.clients:
            await asyncio.sleep(0.01)
        (client,) = proxy.clients
        # the kernel's buffers would otherwise hold a megabyte of replies before the proxy's fills
        client.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        symbols = [[{"symbol": f"R{r}X{i}", "exchange": "NSE"} for i in range(200)] for r in range(50)]
        frames = b"".join(masked_frame(orjson.dumps({"action": "subscribe", "mode": 1, "symbols": s})) for s in symbols)
        stalled.settimeout(2)
        with contextlib.suppress(TimeoutError):
            await asyncio.to_thread(stalled.sendall, frames)
        deadline = time.monotonic() + 5
        while not client.conflating and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert client.conflating  # its replies filled its buffer past the soft limit
        served = client.session.pairs()
        await asyncio.sleep(0.5)
        assert client.session.pairs() == served < 50 * 200  # no request was served meanwhile
        assert client.transport.get_write_buffer_size() < 4096 + 200 * 200  # the limit, plus one request's replies
    finally:
        stalled.close()


async def test_depth_20_is_a_route_of_its_own_beside_depth_5(bus, proxy):
    """A feed on the bus that offers depth 20: one client's 20 levels, another's 5, each
    on its own topic and both as mode 3; a late client gets the depth-20 snapshot, and a
    refusal on the depth-20 topic takes back only that stream."""
    info = {"fid": "f1", "broker": "angel", "depths": [5, 20]}
    bus.sock.send_multipart([b"_oaws.info", orjson.dumps(info)])
    await eventually(lambda: proxy.depths() == (5, 20))
    deep_book = {"buy": [{"price": 1, "quantity": 1, "orders": 1}] * 20, "sell": []}
    async with connect(proxy.url) as deep, connect(proxy.url) as five:
        await subscribed(deep, bus, b"NSE_RELIANCE_DEPTH_20", symbol="RELIANCE", exchange="NSE", mode=3, depth=20)
        await subscribed(five, bus, b"NSE_RELIANCE_DEPTH", symbol="RELIANCE", exchange="NSE", mode=3)
        bus.publish("NSE_RELIANCE_DEPTH_20", tick(depth=deep_book, depth_level=20))
        bus.publish("NSE_RELIANCE_DEPTH", tick(depth={"buy": deep_book["buy"][:5], "sell": []}))
        got = await recv_json(deep)
        assert (got["type"], got["mode"], got["data"]["depth_level"]) == ("market_data", 3, 20)
        assert len(got["data"]["depth"]["buy"]) == 20
        assert len((await recv_json(five))["data"]["depth"]["buy"]) == 5
        async with connect(proxy.url) as late:
            await send(late, action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3, depth=20)
            assert (await recv_json(late))["status"] == "success"
            snapshot = await recv_json(late)
            assert snapshot["snapshot"] is True and len(snapshot["data"]["depth"]["buy"]) == 20
        reject = {
            "fid": "f1",
            "topic": "NSE_RELIANCE_DEPTH_20",
            "code": "LIMIT_EXCEEDED",
            "message": "no more depth 20",
        }
        bus.sock.send_multipart([b"_oaws.reject", orjson.dumps(reject)])
        err = await recv_json(deep)
        assert (err["code"], err["mode"], err["depth"]) == ("LIMIT_EXCEEDED", 3, 20)
        assert await bus.subscription() == (False, b"NSE_RELIANCE_DEPTH_20")
        await send(five, action="get_subscriptions")
        assert (await recv_json(five))["subscriptions"] == [
            {"symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "depth": 5}
        ]
