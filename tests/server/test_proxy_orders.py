"""Order updates through the proxy (oaws/server/proxy/orders.py): a real ZeroMQ bus, real
WebSocket clients on 127.0.0.1."""

from __future__ import annotations

import asyncio

import orjson
from websockets.asyncio.client import connect

from oaws.instruments import Instrument
from oaws.protocol.orders import order_update
from tests.helpers import recv_json, send_json, tick

ORDER_PREFIXES = {b"SIM_", b"ANALYZE_"}


def update(orderid: str = "SIM000001", status: str = "open") -> dict:
    return order_update(
        user_id="oaws", broker="sim", orderid=orderid, instrument=Instrument("RELIANCE", "NSE"), action="BUY",
        quantity=10, price=0.0, pricetype="MARKET", product="MIS", order_status=status,
    )  # fmt: skip


async def bus_events(bus, n: int) -> set[tuple[bool, bytes]]:
    return {await bus.subscription() for _ in range(n)}


async def subscribe_orders(ws, bus=None) -> None:
    await send_json(ws, action="subscribe_orders")
    assert await recv_json(ws) == {
        "type": "subscribe_orders",
        "status": "success",
        "message": "Subscribed to order updates",
    }
    if bus is not None:
        assert await bus_events(bus, 2) == {(True, p) for p in ORDER_PREFIXES}


async def test_an_update_on_the_bus_reaches_the_subscribed_client_as_it_was_published(bus, proxy):
    async with connect(proxy.url) as ws:
        await subscribe_orders(ws, bus)
        sent = bus.publish("SIM_oaws_orders", update())
        assert await asyncio.wait_for(ws.recv(decode=False), 3) == sent
        bus.publish("ANALYZE_oaws_orders", update("A1", "complete"))
        assert (await recv_json(ws))["orderid"] == "A1"
    assert proxy.stats()["order_updates"] == 2


async def test_a_client_that_did_not_subscribe_to_orders_gets_none(bus, proxy):
    async with connect(proxy.url) as wants, connect(proxy.url) as other:
        await subscribe_orders(wants, bus)
        await send_json(other, action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1)
        assert (await recv_json(other))["status"] == "success"
        assert await bus.subscription() == (True, b"NSE_RELIANCE_LTP")
        bus.publish("SIM_oaws_orders", update())
        bus.publish("NSE_RELIANCE_LTP", tick())
        assert (await recv_json(wants))["type"] == "order_update"
        assert (await recv_json(other))["type"] == "market_data"  # the update, had it come, came first


async def test_unsubscribe_stops_them_and_the_last_one_leaving_unsubscribes_the_bus(bus, proxy):
    async with connect(proxy.url) as first, connect(proxy.url) as second:
        await subscribe_orders(first, bus)
        await subscribe_orders(second)  # the bus has them already
        await send_json(first, action="unsubscribe_orders")
        assert (await recv_json(first))["type"] == "unsubscribe_orders"
        bus.publish("SIM_oaws_orders", update())
        assert (await recv_json(second))["type"] == "order_update"
        await send_json(first, action="ping")
        assert (await recv_json(first))["type"] == "pong"  # no order update before it
    assert await bus_events(bus, 2) == {(False, p) for p in ORDER_PREFIXES}
    assert not proxy.orders.clients


async def test_batch_clients_get_updates_in_their_arrays(bus, proxy):
    async with connect(proxy.url + "/?batch=1") as ws:
        await subscribe_orders(ws, bus)
        bus.publish("SIM_oaws_orders", update())
        assert [m["orderid"] for m in await recv_json(ws)] == ["SIM000001"]


async def test_hostile_order_payloads_on_the_bus_do_not_crash_the_proxy(bus, proxy):
    async with connect(proxy.url) as ws:
        await subscribe_orders(ws, bus)
        for payload in (
            b"not json",
            b"\xff\xfe",
            b"[1, 2]",
            b'"order_update"',
            b'{"type": "market_data"}',
            b'{"type": "order_update", "orderid": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            orjson.dumps({**update(), "padding": "x" * 100_000}),
            b"",
        ):
            bus.sock.send_multipart([b"SIM_oaws_orders", payload])
        bus.sock.send_multipart([b"SIM_oaws_orders"])  # one frame only
        good = bus.publish("SIM_oaws_orders", update("SIM000002"))
        assert await asyncio.wait_for(ws.recv(decode=False), 3) == good
        assert proxy.orders.refused == 8


async def test_a_conflated_client_keeps_the_latest_update_of_each_order(bus, proxy):
    async with connect(proxy.url) as ws:
        await subscribe_orders(ws, bus)
        (c,) = proxy.clients
        proxy.slow.begin(c)
        bus.publish("SIM_oaws_orders", update("SIM000001", "open"))
        bus.publish("SIM_oaws_orders", update("SIM000002", "open"))
        bus.publish("SIM_oaws_orders", update("SIM000001", "complete"))
        got: dict[str, str] = {}
        async with asyncio.timeout(3):
            while len(got) < 2:
                message = await recv_json(ws)
                got[message["orderid"]] = message["order_status"]
        assert got == {"SIM000001": "complete", "SIM000002": "open"}
        assert c.conflated == 1
