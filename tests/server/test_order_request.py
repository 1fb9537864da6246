"""Orders end to end: ``send_order`` (what ``oaws sim order`` does) up the bus to the
simulated market's feed, its updates down the bus, through the proxy to oaws's client and
to a plain WebSocket client."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import orjson
import pytest
import zmq
from websockets.asyncio.client import connect

from oaws.brokers.api import Feed
from oaws.brokers.sim.feed import SimFeed
from oaws.client import Client, OrderUpdate
from oaws.instruments import Instrument
from oaws.protocol.orders import OrderRequest
from oaws.server.bus import BusError, FeedHub, Forwarder
from oaws.server.order_request import send_order
from oaws.server.proxy import Proxy, ProxyOptions
from tests.helpers import eventually, recv_json, send_json

RELIANCE = Instrument("RELIANCE", "NSE")


def order(action: str = "BUY", price: float | None = None, **kw) -> OrderRequest:
    return OrderRequest(uuid.uuid4().hex, action, RELIANCE if action != "CANCEL" else None, 10, price, **kw)


async def place(endpoint: str, request: OrderRequest):
    return await asyncio.to_thread(send_order, endpoint, request, ["sim"])


@contextlib.asynccontextmanager
async def sim_market():
    hub = FeedHub(SimFeed(seed=3), "tcp://127.0.0.1:*")
    task = asyncio.create_task(hub.run())
    proxy = Proxy(hub.endpoint, ProxyOptions(port=0))
    await proxy.start()
    try:
        yield hub, proxy
    finally:
        await proxy.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_simulated_order_reaches_oaws_client_and_a_plain_websocket():
    async with sim_market() as (hub, proxy), connect(proxy.url) as ws:
        await send_json(ws, action="subscribe_orders")
        assert (await recv_json(ws))["status"] == "success"
        async with Client(proxy.url, instruments=[]) as client:
            await client.subscribe_orders()
            updates: list[OrderUpdate] = []

            async def collect() -> None:
                async for event in client:
                    if isinstance(event, OrderUpdate):
                        updates.append(event)

            reader = asyncio.create_task(collect())
            await eventually(lambda: len(proxy.orders.clients) == 2, what="both clients to want orders")
            await asyncio.sleep(0.2)  # the bus subscription reaches the feed
            answer, seen = await place(hub.endpoint, order())
            orderid = answer["orderid"]
            assert answer == {"status": "success", "orderid": orderid}
            assert [(u["orderid"], u["order_status"]) for u in seen] == [(orderid, "open"), (orderid, "complete")]
            messages = [await recv_json(ws), await recv_json(ws)]
            assert messages == seen
            assert messages[1]["average_price"] == hub.feed.latest(RELIANCE)["ltp"]
            await eventually(lambda: len(updates) == 2, what="oaws's client to see both updates")
            assert [(u.orderid, u.status) for u in updates] == [(orderid, "open"), (orderid, "complete")]
            assert updates[1].message == messages[1]
            reader.cancel()


async def test_a_limit_order_is_cancelled_and_a_refused_request_says_why():
    async with sim_market() as (hub, proxy), connect(proxy.url) as ws:
        await send_json(ws, action="subscribe_orders")
        await recv_json(ws)
        await asyncio.sleep(0.2)
        answer, _ = await place(hub.endpoint, order(price=1400.0))
        assert (await recv_json(ws))["order_status"] == "open"
        cancel = OrderRequest(uuid.uuid4().hex, "CANCEL", orderid=answer["orderid"])
        assert (await place(hub.endpoint, cancel))[0]["status"] == "success"
        assert (await recv_json(ws))["order_status"] == "cancelled"
        refused, updates = await place(hub.endpoint, cancel)
        assert refused["status"] == "error" and "only an open order" in refused["message"]
        assert updates == []


async def test_an_order_reaches_the_feed_through_a_forwarder():
    forwarder = Forwarder("tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
    forwarder.start()
    try:
        hub = FeedHub(SimFeed(seed=3), forwarder.feeds, connect=True)
        task = asyncio.create_task(hub.run())
        try:
            answer, seen = await place(forwarder.bus, order())
            assert answer["status"] == "success" and seen[-1]["order_status"] == "complete"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        forwarder.close()


async def test_hostile_requests_up_the_bus_leave_the_feed_serving():
    async with sim_market() as (hub, _):
        ctx = zmq.Context()
        sock = ctx.socket(zmq.SUB)
        sock.connect(hub.endpoint)
        for raw in (b"{", b"[1]", b'{"nonce": 5}', b'{"nonce": "a/b"}', b"{" + b"x" * 10_000 + b"}"):
            sock.setsockopt(zmq.SUBSCRIBE, b"_oaws.order" + raw)
        answer, _ = await place(hub.endpoint, order())
        assert answer["status"] == "success"
        sock.close(0)
        ctx.term()


def test_no_feed_on_the_bus_is_one_sentence(ipc_bus):
    with pytest.raises(BusError, match="no feed on the bus"):
        send_order(ipc_bus, order(), ["sim"], timeout=0.3)


def test_the_request_is_json_after_its_prefix():
    raw = order().to_bytes()
    assert orjson.loads(raw[len(b"_oaws.order") :])["symbol"] == "RELIANCE"


class NoOrders(Feed):
    name = "quiet"

    async def run(self) -> None:
        await asyncio.Event().wait()

    def want(self, instrument, mode) -> None:
        pass

    def unwant(self, instrument, mode) -> None:
        pass


async def test_a_feed_that_takes_no_orders_stays_quiet_and_says_so_in_its_announcement():
    hub = FeedHub(NoOrders(), "tcp://127.0.0.1:*")
    task = asyncio.create_task(hub.run())
    proxy = Proxy(hub.endpoint, ProxyOptions(port=0))
    await proxy.start()
    try:
        with pytest.raises(BusError, match="no feed on the bus"):
            await asyncio.to_thread(send_order, hub.endpoint, order(), ["quiet"], 0.5)
        await eventually(lambda: proxy.feeds.fresh(), what="the feed's announcement")
        assert proxy.feeds.fresh()[0][0]["orders"] is False
    finally:
        await proxy.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
